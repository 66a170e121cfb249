/* fiber-auth.c — placeholder, being written */
#include <glib.h>

/* fiber-local-backend.c — placeholder, being written */
#include <glib.h>

/* fiber-message.c — placeholder, being written */
#include <glib.h>

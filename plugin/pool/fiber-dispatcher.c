/* fiber-dispatcher.c — placeholder, being written */
#include <glib.h>

/* fiber-map-result.c — placeholder, being written */
#include <glib.h>

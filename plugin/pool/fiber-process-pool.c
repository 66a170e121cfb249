/* fiber-process-pool.c — placeholder, being written */
#include <glib.h>

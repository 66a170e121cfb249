/* fiber-batch.c — placeholder, being written */
#include <glib.h>

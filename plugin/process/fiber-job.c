/* fiber-job.c — placeholder, being written */
#include <glib.h>

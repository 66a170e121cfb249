/* fiber-job-spec.c — placeholder, being written */
#include <glib.h>

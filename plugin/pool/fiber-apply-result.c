/* fiber-apply-result.c — placeholder, being written */
#include <glib.h>

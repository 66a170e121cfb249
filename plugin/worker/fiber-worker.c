/* placeholder, being written */
#include "fiber-init-private.h"
int _fiber_worker_main_from_environment (void) { return 1; }

/* placeholder, being written */
#include "fiber-init-private.h"
int _fiber_process_child_main (void) { return 1; }
void _fiber_process_init_current (void) { }

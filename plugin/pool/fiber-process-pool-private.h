/* fiber-process-pool-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "fiber-process-pool.h"

G_BEGIN_DECLS

/* The endpoint the pool's workers connect to (tests forge peers on it). */
const char *_fiber_process_pool_get_endpoint    (FiberProcessPool *self);
/* The pids of the pool's live worker jobs (gint64). */
GArray     *_fiber_process_pool_list_worker_pids (FiberProcessPool *self);

G_END_DECLS

/* fiber-process-pool.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(FIBER_INSIDE) && !defined(FIBER_COMPILATION)
# error "Only <fiber.h> can be included directly."
#endif

#include "fiber-backend.h"
#include "fiber-pool.h"

G_BEGIN_DECLS

#define FIBER_TYPE_PROCESS_POOL (fiber_process_pool_get_type ())

FIBER_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (FiberProcessPool, fiber_process_pool, FIBER, PROCESS_POOL, FiberPool)

FIBER_AVAILABLE_IN_ALL
FiberPool *fiber_process_pool_new (guint          processes,
                                   gboolean       daemon,
                                   FiberBackend  *backend,
                                   GError       **error);

G_END_DECLS

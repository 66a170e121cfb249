/* fiber-thread-pool.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(FIBER_INSIDE) && !defined(FIBER_COMPILATION)
# error "Only <fiber.h> can be included directly."
#endif

#include "fiber-pool.h"

G_BEGIN_DECLS

#define FIBER_TYPE_THREAD_POOL (fiber_thread_pool_get_type ())

FIBER_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (FiberThreadPool, fiber_thread_pool, FIBER, THREAD_POOL, FiberPool)

FIBER_AVAILABLE_IN_ALL
FiberPool *fiber_thread_pool_new (guint    processes,
                                  GError **error);

G_END_DECLS

/* fiber-coroutine-pool.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(FIBER_INSIDE) && !defined(FIBER_COMPILATION)
# error "Only <fiber.h> can be included directly."
#endif

#include "fiber-pool.h"

G_BEGIN_DECLS

#define FIBER_TYPE_COROUTINE_POOL (fiber_coroutine_pool_get_type ())

FIBER_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (FiberCoroutinePool, fiber_coroutine_pool, FIBER, COROUTINE_POOL, FiberPool)

FIBER_AVAILABLE_IN_ALL
FiberPool *fiber_coroutine_pool_new            (guint    processes,
                                                guint    stack_size,
                                                GError **error);
FIBER_AVAILABLE_IN_ALL
guint      fiber_coroutine_pool_get_stack_size (FiberCoroutinePool *self);

G_END_DECLS

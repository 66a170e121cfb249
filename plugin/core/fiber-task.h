/* fiber-task.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(FIBER_INSIDE) && !defined(FIBER_COMPILATION)
# error "Only <fiber.h> can be included directly."
#endif

#include <gio/gio.h>

#include "fiber-version.h"

G_BEGIN_DECLS

/**
 * FiberTaskFunc:
 * @args: the arguments of this call
 * @cancellable: (nullable): cancelled when the pool is interrupted or terminated
 * @user_data: (closure): the data given to fiber_task_register()
 * @error: return location for an error
 *
 * The body of a task.  It runs in a worker (process, thread or coroutine)
 * and returns its result, or %NULL with @error set.
 *
 * Returns: (transfer full) (nullable): the result; a floating reference is sunk
 */
typedef GVariant *(*FiberTaskFunc) (GVariant      *args,
                                    GCancellable  *cancellable,
                                    gpointer       user_data,
                                    GError       **error);

FIBER_AVAILABLE_IN_ALL
void       fiber_task_register      (const char     *name,
                                     FiberTaskFunc   func,
                                     gpointer        user_data,
                                     GDestroyNotify  destroy);
FIBER_AVAILABLE_IN_ALL
gboolean   fiber_task_unregister    (const char     *name);
FIBER_AVAILABLE_IN_ALL
gboolean   fiber_task_is_registered (const char     *name);
FIBER_AVAILABLE_IN_ALL
char     **fiber_task_list          (void);
FIBER_AVAILABLE_IN_ALL
GVariant  *fiber_task_invoke        (const char     *name,
                                     GVariant       *args,
                                     GCancellable   *cancellable,
                                     GError        **error);

G_END_DECLS

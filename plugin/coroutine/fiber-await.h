/* fiber-await.h
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

/* Await primitives: in a coroutine of a FiberCoroutinePool they switch to
 * other coroutines; anywhere else they block the calling thread. */

FIBER_AVAILABLE_IN_ALL
gboolean      fiber_in_coroutine   (void);
FIBER_AVAILABLE_IN_ALL
void          fiber_yield          (void);
FIBER_AVAILABLE_IN_ALL
gboolean      fiber_sleep          (double         seconds,
                                    GCancellable  *cancellable,
                                    GError       **error);
FIBER_AVAILABLE_IN_ALL
GIOCondition  fiber_await_fd       (int            fd,
                                    GIOCondition   condition,
                                    GCancellable  *cancellable,
                                    GError       **error);

#define FIBER_TYPE_AWAIT (fiber_await_get_type ())

FIBER_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (FiberAwait, fiber_await, FIBER, AWAIT, GObject)

FIBER_AVAILABLE_IN_ALL
FiberAwait   *fiber_await_new      (void);
FIBER_AVAILABLE_IN_ALL
void          fiber_await_callback (GObject       *source_object,
                                    GAsyncResult  *result,
                                    gpointer       user_data);
FIBER_AVAILABLE_IN_ALL
void          fiber_await_complete (FiberAwait    *self,
                                    GAsyncResult  *result);
FIBER_AVAILABLE_IN_ALL
gboolean      fiber_await_is_completed (FiberAwait *self);
FIBER_AVAILABLE_IN_ALL
GAsyncResult *fiber_await_wait     (FiberAwait    *self,
                                    GError       **error);

G_END_DECLS

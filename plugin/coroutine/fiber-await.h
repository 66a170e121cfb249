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
gboolean fiber_sleep (double         seconds,
                      GCancellable  *cancellable,
                      GError       **error);

G_END_DECLS

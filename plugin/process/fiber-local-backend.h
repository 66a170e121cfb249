/* fiber-local-backend.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(FIBER_INSIDE) && !defined(FIBER_COMPILATION)
# error "Only <fiber.h> can be included directly."
#endif

#include "fiber-backend.h"

G_BEGIN_DECLS

#define FIBER_TYPE_LOCAL_BACKEND (fiber_local_backend_get_type ())

FIBER_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (FiberLocalBackend, fiber_local_backend, FIBER, LOCAL_BACKEND, GObject)

FIBER_AVAILABLE_IN_ALL
FiberBackend *fiber_local_backend_new (void);

G_END_DECLS

/* fiber-kubernetes-backend.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(FIBER_INSIDE) && !defined(FIBER_COMPILATION)
# error "Only <fiber.h> can be included directly."
#endif

#include "fiber-backend.h"

G_BEGIN_DECLS

#define FIBER_TYPE_KUBERNETES_BACKEND (fiber_kubernetes_backend_get_type ())

FIBER_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (FiberKubernetesBackend, fiber_kubernetes_backend, FIBER, KUBERNETES_BACKEND, GObject)

FIBER_AVAILABLE_IN_ALL
FiberBackend *fiber_kubernetes_backend_new (const char *url,
                                            const char *image);

G_END_DECLS

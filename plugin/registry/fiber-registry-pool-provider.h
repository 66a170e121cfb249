/* fiber-registry-pool-provider.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(FIBER_INSIDE) && !defined(FIBER_COMPILATION)
# error "Only <fiber.h> can be included directly."
#endif

#include "fiber-pool-provider.h"

G_BEGIN_DECLS

#define FIBER_TYPE_REGISTRY_POOL_PROVIDER (fiber_registry_pool_provider_get_type ())

FIBER_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (FiberRegistryPoolProvider, fiber_registry_pool_provider,
                      FIBER, REGISTRY_POOL_PROVIDER, GObject)

FIBER_AVAILABLE_IN_ALL
FiberPoolProvider *fiber_registry_pool_provider_new (void);

G_END_DECLS

/* fiber-pool-provider.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(FIBER_INSIDE) && !defined(FIBER_COMPILATION)
# error "Only <fiber.h> can be included directly."
#endif

#include <gio/gio.h>

#include "fiber-pool.h"
#include "fiber-version.h"

G_BEGIN_DECLS

#define FIBER_TYPE_POOL_PROVIDER (fiber_pool_provider_get_type ())

FIBER_AVAILABLE_IN_ALL
G_DECLARE_INTERFACE (FiberPoolProvider, fiber_pool_provider, FIBER, POOL_PROVIDER, GObject)

/**
 * FiberPoolProviderInterface:
 * @parent_iface: the parent interface
 * @list_pool_types: returns the names of the pool types the provider
 *   creates, as a %NULL-terminated array (transfer full)
 * @create_pool: creates a pool of one of those types from a workflow
 *   config, a `a{sv}` dictionary (nullable: the type's defaults); returns
 *   %NULL with the error set on failure
 *
 * The virtual methods of a pool provider.
 */
struct _FiberPoolProviderInterface
{
  GTypeInterface parent_iface;

  char      **(*list_pool_types) (FiberPoolProvider  *self);
  FiberPool  *(*create_pool)     (FiberPoolProvider  *self,
                                  const char         *pool_type,
                                  GVariant           *config,
                                  GError            **error);
};

FIBER_AVAILABLE_IN_ALL
char      **fiber_pool_provider_list_pool_types (FiberPoolProvider  *self);
FIBER_AVAILABLE_IN_ALL
gboolean    fiber_pool_provider_has_pool_type   (FiberPoolProvider  *self,
                                                 const char         *pool_type);
FIBER_AVAILABLE_IN_ALL
FiberPool  *fiber_pool_provider_create_pool     (FiberPoolProvider  *self,
                                                 const char         *pool_type,
                                                 GVariant           *config,
                                                 GError            **error);

G_END_DECLS

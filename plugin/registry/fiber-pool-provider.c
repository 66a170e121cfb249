/* fiber-pool-provider.c — pool types offered by a plugin
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "fiber-error.h"
#include "fiber-pool-provider.h"

/**
 * FiberPoolProvider:
 *
 * An object that creates pools of the types it lists.  It is the
 * extension interface of the fiber-glib libpeas plugin (`fiber.plugin`,
 * whose provider, [class@Fiber.RegistryPoolProvider], offers every pool
 * type of [func@Fiber.Pool.list_types]), and what third-party libpeas
 * plugins implement to offer pool types of their own, in C or in Python:
 *
 * ```python
 * class MyProvider(GObject.Object, Fiber.PoolProvider):
 *     def do_list_pool_types(self):
 *         return ["my-pool"]
 *
 *     def do_create_pool(self, pool_type, config):
 *         options = config.unpack() if config is not None else {}
 *         return MyPool(processes=options.get("processes", 1))
 * ```
 *
 * A libpeas host finds the providers with a `PeasExtensionSet` for
 * `FIBER_TYPE_POOL_PROVIDER` and asks the one that has the pool type a
 * workflow names.  The config is a `a{sv}` dictionary with the keys of a
 * workflow config (see [ctor@Fiber.Pool.new_from_config_string]):
 * `processes`, `max_retries`, `backend` (itself a `a{sv}`), …; a
 * `pool_type` entry, if any, must agree with the requested type.
 */

G_DEFINE_INTERFACE (FiberPoolProvider, fiber_pool_provider, G_TYPE_OBJECT)

static void
fiber_pool_provider_default_init (FiberPoolProviderInterface *iface)
{
}

/**
 * fiber_pool_provider_list_pool_types:
 * @self: a pool provider
 *
 * Lists the pool types @self creates.
 *
 * Returns: (transfer full) (array zero-terminated=1): the pool type names
 */
char **
fiber_pool_provider_list_pool_types (FiberPoolProvider *self)
{
  FiberPoolProviderInterface *iface;
  char **types = NULL;

  g_return_val_if_fail (FIBER_IS_POOL_PROVIDER (self), NULL);

  iface = FIBER_POOL_PROVIDER_GET_IFACE (self);
  if (iface->list_pool_types != NULL)
    types = iface->list_pool_types (self);
  if (types == NULL)
    types = g_new0 (char *, 1);
  return types;
}

/**
 * fiber_pool_provider_has_pool_type:
 * @self: a pool provider
 * @pool_type: a pool type name
 *
 * Checks whether @pool_type is one of the types @self lists.
 *
 * Returns: %TRUE when @self creates pools of @pool_type
 */
gboolean
fiber_pool_provider_has_pool_type (FiberPoolProvider *self,
                                   const char        *pool_type)
{
  g_auto(GStrv) types = NULL;

  g_return_val_if_fail (FIBER_IS_POOL_PROVIDER (self), FALSE);
  g_return_val_if_fail (pool_type != NULL, FALSE);

  types = fiber_pool_provider_list_pool_types (self);
  return g_strv_contains ((const char * const *) types, pool_type);
}

/**
 * fiber_pool_provider_create_pool:
 * @self: a pool provider
 * @pool_type: one of the names [method@Fiber.PoolProvider.list_pool_types]
 *   returns
 * @config: (nullable): the workflow config as a `a{sv}` dictionary, or
 *   %NULL for the type's defaults
 * @error: return location for an error
 *
 * Creates a pool of @pool_type configured by @config.  A floating
 * @config is consumed.
 *
 * Returns: (transfer full): the new pool, or %NULL with @error set:
 *   %FIBER_ERROR_INVALID_ARGUMENT when @self does not offer @pool_type or
 *   @config is invalid
 */
FiberPool *
fiber_pool_provider_create_pool (FiberPoolProvider  *self,
                                 const char         *pool_type,
                                 GVariant           *config,
                                 GError            **error)
{
  FiberPoolProviderInterface *iface;
  g_autoptr(GError) local_error = NULL;
  g_autoptr(GVariant) owned_config = NULL;
  FiberPool *pool = NULL;

  g_return_val_if_fail (FIBER_IS_POOL_PROVIDER (self), NULL);
  g_return_val_if_fail (pool_type != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  /* A floating @config is consumed, as GVariant API does. */
  if (config != NULL)
    owned_config = g_variant_ref_sink (config);

  if (config != NULL && !g_variant_is_of_type (config, G_VARIANT_TYPE_VARDICT))
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                   "a pool config must be of type a{sv}, not %s",
                   g_variant_get_type_string (config));
      return NULL;
    }

  iface = FIBER_POOL_PROVIDER_GET_IFACE (self);
  if (iface->create_pool == NULL ||
      !fiber_pool_provider_has_pool_type (self, pool_type))
    {
      g_auto(GStrv) types = fiber_pool_provider_list_pool_types (self);
      g_autofree char *known = g_strjoinv (", ", types);

      g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                   "pool provider %s does not offer pool type “%s” "
                   "(it offers: %s)", G_OBJECT_TYPE_NAME (self), pool_type,
                   *known != '\0' ? known : "none");
      return NULL;
    }

  pool = iface->create_pool (self, pool_type, config, &local_error);
  if (pool == NULL)
    {
      if (local_error == NULL)
        g_set_error (&local_error, FIBER_ERROR, FIBER_ERROR_FAILED,
                     "pool provider %s failed to create a “%s” pool",
                     G_OBJECT_TYPE_NAME (self), pool_type);
      g_propagate_error (error, g_steal_pointer (&local_error));
      return NULL;
    }
  if (local_error != NULL)
    g_critical ("%s::create_pool returned a pool and set an error (%s)",
                G_OBJECT_TYPE_NAME (self), local_error->message);
  g_return_val_if_fail (FIBER_IS_POOL (pool), NULL);
  return pool;
}

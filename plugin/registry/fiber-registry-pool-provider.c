/* fiber-registry-pool-provider.c — the pool types of the registry, as a
 * FiberPoolProvider
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "fiber-config.h"
#include "fiber-error.h"
#include "fiber-registry-pool-provider.h"

/**
 * FiberRegistryPoolProvider:
 *
 * The [iface@Fiber.PoolProvider] of every pool type the library knows:
 * the built-in ones and those of the modules directories and of
 * [func@Fiber.Pool.register_pool_type].  The libpeas plugin `fiber.plugin`
 * registers it as its extension; hosts without libpeas can create it
 * directly.
 *
 * Its configs are workflow configs (see
 * [ctor@Fiber.Pool.new_from_config_string]) as `a{sv}`; `initargs` may be
 * given as the GVariant itself instead of its text form.
 */

struct _FiberRegistryPoolProvider
{
  GObject parent_instance;
};

static void pool_provider_iface_init (FiberPoolProviderInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (FiberRegistryPoolProvider, fiber_registry_pool_provider,
                               G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (FIBER_TYPE_POOL_PROVIDER,
                                                      pool_provider_iface_init))

static char **
fiber_registry_pool_provider_list_pool_types (FiberPoolProvider *provider)
{
  return fiber_pool_list_types ();
}

static FiberPool *
fiber_registry_pool_provider_create_pool (FiberPoolProvider  *provider,
                                          const char         *pool_type,
                                          GVariant           *config,
                                          GError            **error)
{
  g_autoptr(JsonObject) object = NULL;
  g_autoptr(GVariant) pool_type_value = NULL;
  g_autoptr(GVariant) initargs = NULL;

  if (config != NULL)
    {
      g_autoptr(JsonNode) node = json_gvariant_serialize (config);
      object = json_object_ref (json_node_get_object (node));
    }
  else
    object = json_object_new ();

  if (config != NULL)
    pool_type_value = g_variant_lookup_value (config, "pool_type", NULL);
  if (pool_type_value != NULL &&
      (!g_variant_is_of_type (pool_type_value, G_VARIANT_TYPE_STRING) ||
       !g_str_equal (g_variant_get_string (pool_type_value, NULL), pool_type)))
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                   "config key “pool_type” does not match the requested "
                   "pool type “%s”", pool_type);
      return NULL;
    }
  json_object_set_string_member (object, "pool_type", pool_type);

  /* The config's initargs are GVariant text; take the value itself too. */
  if (config != NULL)
    initargs = g_variant_lookup_value (config, "initargs", NULL);
  if (initargs != NULL && !g_variant_is_of_type (initargs, G_VARIANT_TYPE_STRING))
    {
      g_autofree char *text = g_variant_print (initargs, TRUE);
      json_object_set_string_member (object, "initargs", text);
    }

  return fiber_pool_new_from_config (object, error);
}

static void
pool_provider_iface_init (FiberPoolProviderInterface *iface)
{
  iface->list_pool_types = fiber_registry_pool_provider_list_pool_types;
  iface->create_pool = fiber_registry_pool_provider_create_pool;
}

static void
fiber_registry_pool_provider_class_init (FiberRegistryPoolProviderClass *klass)
{
}

static void
fiber_registry_pool_provider_init (FiberRegistryPoolProvider *self)
{
}

/**
 * fiber_registry_pool_provider_new:
 *
 * Creates a provider of the registry's pool types.
 *
 * Returns: (transfer full): a new [class@Fiber.RegistryPoolProvider]
 */
FiberPoolProvider *
fiber_registry_pool_provider_new (void)
{
  return g_object_new (FIBER_TYPE_REGISTRY_POOL_PROVIDER, NULL);
}

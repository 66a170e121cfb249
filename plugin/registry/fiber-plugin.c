/* fiber-plugin.c — the libpeas plugin of fiber-glib
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Built as the module `fiber-plugin` next to data/fiber.plugin.  Its one
 * extension is the library's FiberRegistryPoolProvider, which offers every
 * pool type of the registry (the built-in types and those of the modules
 * directories), so a libpeas host picks pool types through its plugin
 * engine like any other extension.
 */

#include <fiber.h>
#include <libpeas/peas.h>

G_MODULE_EXPORT void peas_register_types (PeasObjectModule *module);

G_MODULE_EXPORT void
peas_register_types (PeasObjectModule *module)
{
  peas_object_module_register_extension_type (module,
                                              FIBER_TYPE_POOL_PROVIDER,
                                              FIBER_TYPE_REGISTRY_POOL_PROVIDER);
}

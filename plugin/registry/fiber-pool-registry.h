/* fiber-pool-registry.h
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
 * FIBER_POOL_EXTENSION_POINT_NAME:
 *
 * The name of the GIO extension point pool types implement,
 * `fiber-pool-type`.  Its required type is [class@Fiber.Pool]; the
 * extension name is the pool type name given to [ctor@Fiber.Pool.new].
 *
 * A GIO module in a modules directory (the `FIBER_MODULE_DIR` environment
 * variable, or the installed `moduledir` of the `fiber-1.0` pkg-config
 * file) registers its pool type from `g_io_module_load()`:
 *
 * ```c
 * void
 * g_io_module_load (GIOModule *module)
 * {
 *   my_pool_register_type (G_TYPE_MODULE (module));
 *   g_io_extension_point_implement (FIBER_POOL_EXTENSION_POINT_NAME,
 *                                   MY_TYPE_POOL, "my-pool", 10);
 * }
 * ```
 *
 * A program registers a type of its own with
 * [func@Fiber.Pool.register_pool_type].
 */
#define FIBER_POOL_EXTENSION_POINT_NAME "fiber-pool-type"

FIBER_AVAILABLE_IN_ALL
gboolean fiber_pool_register_pool_type (const char  *name,
                                        GType        type,
                                        int          priority,
                                        GError     **error);

G_END_DECLS

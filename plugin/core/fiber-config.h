/* fiber-config.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(FIBER_INSIDE) && !defined(FIBER_COMPILATION)
# error "Only <fiber.h> can be included directly."
#endif

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "fiber-pool.h"
#include "fiber-version.h"

G_BEGIN_DECLS

FIBER_AVAILABLE_IN_ALL
FiberPool *fiber_pool_new_from_config        (JsonObject   *config,
                                              GError      **error);
FIBER_AVAILABLE_IN_ALL
FiberPool *fiber_pool_new_from_config_string (const char   *text,
                                              gssize        length,
                                              GError      **error);
FIBER_AVAILABLE_IN_ALL
FiberPool *fiber_pool_new_from_config_file   (const char   *path,
                                              GError      **error);

G_END_DECLS

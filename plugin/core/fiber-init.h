/* fiber-init.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(FIBER_INSIDE) && !defined(FIBER_COMPILATION)
# error "Only <fiber.h> can be included directly."
#endif

#include <glib.h>

#include "fiber-version.h"

G_BEGIN_DECLS

FIBER_AVAILABLE_IN_ALL
gboolean fiber_init       (int      *argc,
                           char   ***argv,
                           GError  **error);
FIBER_AVAILABLE_IN_ALL
gboolean fiber_is_worker  (void);
FIBER_AVAILABLE_IN_ALL
guint    fiber_cpu_count  (void);

G_END_DECLS

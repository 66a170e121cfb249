/* fiber-pool-registry-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "fiber-pool.h"

G_BEGIN_DECLS

/* Creates a pool of the type called @pool_type (NULL: the default type). */
FiberPool *_fiber_pool_registry_create (const char  *pool_type,
                                        guint        processes,
                                        GError     **error);

G_END_DECLS

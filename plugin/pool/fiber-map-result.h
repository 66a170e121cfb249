/* fiber-map-result.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(FIBER_INSIDE) && !defined(FIBER_COMPILATION)
# error "Only <fiber.h> can be included directly."
#endif

#include "fiber-apply-result.h"

G_BEGIN_DECLS

#define FIBER_TYPE_MAP_RESULT (fiber_map_result_get_type ())

FIBER_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (FiberMapResult, fiber_map_result, FIBER, MAP_RESULT, FiberApplyResult)

FIBER_AVAILABLE_IN_ALL
gboolean  fiber_map_result_next            (FiberMapResult  *self,
                                            int              timeout_msec,
                                            guint           *index,
                                            GVariant       **value,
                                            GError         **error);
FIBER_AVAILABLE_IN_ALL
GVariant *fiber_map_result_get             (FiberMapResult  *self,
                                            int              timeout_msec,
                                            GError         **error);
FIBER_AVAILABLE_IN_ALL
guint     fiber_map_result_get_n_items     (FiberMapResult  *self);
FIBER_AVAILABLE_IN_ALL
guint     fiber_map_result_get_n_completed (FiberMapResult  *self);

G_END_DECLS

/* fiber-apply-result.h
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

#define FIBER_TYPE_APPLY_RESULT (fiber_apply_result_get_type ())

FIBER_AVAILABLE_IN_ALL
G_DECLARE_DERIVABLE_TYPE (FiberApplyResult, fiber_apply_result, FIBER, APPLY_RESULT, GObject)

/**
 * FiberApplyResultClass:
 * @parent_class: the parent class
 *
 * The class of [class@Fiber.ApplyResult].
 */
struct _FiberApplyResultClass
{
  GObjectClass parent_class;

  /*< private >*/
  gpointer _reserved[8];
};

FIBER_AVAILABLE_IN_ALL
GVariant *fiber_apply_result_get        (FiberApplyResult  *self,
                                         int                timeout_msec,
                                         GError           **error);
FIBER_AVAILABLE_IN_ALL
gboolean  fiber_apply_result_wait       (FiberApplyResult  *self,
                                         int                timeout_msec);
FIBER_AVAILABLE_IN_ALL
gboolean  fiber_apply_result_ready      (FiberApplyResult  *self);
FIBER_AVAILABLE_IN_ALL
gboolean  fiber_apply_result_successful (FiberApplyResult  *self,
                                         GError           **error);

G_END_DECLS

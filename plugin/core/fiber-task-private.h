/* fiber-task-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "fiber-task.h"

G_BEGIN_DECLS

void      _fiber_register_builtin_tasks (void);
void      _fiber_task_register_builtin  (const char    *name,
                                         FiberTaskFunc  func);
GVariant *_fiber_task_call              (FiberTaskFunc   func,
                                         gpointer        user_data,
                                         GVariant       *args,
                                         GCancellable   *cancellable,
                                         GError        **error);

G_END_DECLS

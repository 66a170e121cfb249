/* fiber-process.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(FIBER_INSIDE) && !defined(FIBER_COMPILATION)
# error "Only <fiber.h> can be included directly."
#endif

#include <gio/gio.h>

#include "fiber-backend.h"
#include "fiber-version.h"

G_BEGIN_DECLS

#define FIBER_TYPE_PROCESS (fiber_process_get_type ())

FIBER_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (FiberProcess, fiber_process, FIBER, PROCESS, GObject)

FIBER_AVAILABLE_IN_ALL
FiberProcess  *fiber_process_new            (const char    *task,
                                             GVariant      *args);
FIBER_AVAILABLE_IN_ALL
gboolean       fiber_process_start          (FiberProcess  *self,
                                             GError       **error);
FIBER_AVAILABLE_IN_ALL
gboolean       fiber_process_join           (FiberProcess  *self,
                                             int            timeout_msec);
FIBER_AVAILABLE_IN_ALL
void           fiber_process_terminate      (FiberProcess  *self);
FIBER_AVAILABLE_IN_ALL
void           fiber_process_kill           (FiberProcess  *self);
FIBER_AVAILABLE_IN_ALL
gboolean       fiber_process_is_alive       (FiberProcess  *self);
FIBER_AVAILABLE_IN_ALL
gboolean       fiber_process_get_exitcode   (FiberProcess  *self,
                                             int           *exitcode);
FIBER_AVAILABLE_IN_ALL
int            fiber_process_get_sentinel   (FiberProcess  *self);
FIBER_AVAILABLE_IN_ALL
GVariant      *fiber_process_run            (FiberProcess  *self,
                                             GError       **error);
FIBER_AVAILABLE_IN_ALL
const char    *fiber_process_get_name       (FiberProcess  *self);
FIBER_AVAILABLE_IN_ALL
void           fiber_process_set_name       (FiberProcess  *self,
                                             const char    *name);
FIBER_AVAILABLE_IN_ALL
gboolean       fiber_process_get_daemon     (FiberProcess  *self);
FIBER_AVAILABLE_IN_ALL
void           fiber_process_set_daemon     (FiberProcess  *self,
                                             gboolean       daemon);
FIBER_AVAILABLE_IN_ALL
gint64         fiber_process_get_pid        (FiberProcess  *self);
FIBER_AVAILABLE_IN_ALL
GBytes        *fiber_process_get_authkey    (FiberProcess  *self);
FIBER_AVAILABLE_IN_ALL
void           fiber_process_set_authkey    (FiberProcess  *self,
                                             GBytes        *authkey);
FIBER_AVAILABLE_IN_ALL
const char    *fiber_process_get_task       (FiberProcess  *self);
FIBER_AVAILABLE_IN_ALL
GVariant      *fiber_process_get_args       (FiberProcess  *self);
FIBER_AVAILABLE_IN_ALL
FiberBackend  *fiber_process_get_backend    (FiberProcess  *self);
FIBER_AVAILABLE_IN_ALL
void           fiber_process_set_backend    (FiberProcess  *self,
                                             FiberBackend  *backend);

FIBER_AVAILABLE_IN_ALL
GPtrArray     *fiber_active_children        (void);
FIBER_AVAILABLE_IN_ALL
FiberProcess  *fiber_current_process        (void);

G_END_DECLS

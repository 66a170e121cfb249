/* fiber-pool.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(FIBER_INSIDE) && !defined(FIBER_COMPILATION)
# error "Only <fiber.h> can be included directly."
#endif

#include <gio/gio.h>

#include "fiber-apply-result.h"
#include "fiber-batch.h"
#include "fiber-map-result.h"
#include "fiber-task.h"
#include "fiber-version.h"

G_BEGIN_DECLS

#define FIBER_TYPE_POOL (fiber_pool_get_type ())

FIBER_AVAILABLE_IN_ALL
G_DECLARE_DERIVABLE_TYPE (FiberPool, fiber_pool, FIBER, POOL, GObject)

/**
 * FiberPoolClass:
 * @parent_class: the parent class
 * @submit: accepts a batch of work; the pool must complete every item of
 *   it exactly once with [method@Fiber.Batch.complete_item] (from any thread).
 *   Called only while the pool is open.
 * @close: stop accepting work; queued work still runs
 * @terminate: stop at once; unfinished items complete with %FIBER_ERROR_CLOSED
 * @join: wait until the workers have exited after close or terminate
 * @interrupt: make running tasks fail with %FIBER_ERROR_INTERRUPTED (their
 *   #GCancellable is cancelled, worker processes get SIGINT); the pool stays usable
 * @supports_func: whether [method@Fiber.Pool.apply_func] can run a
 *   caller-supplied function (in-process pools only)
 *
 * The virtual methods of a pool type.  The public methods of
 * [class@Fiber.Pool] validate their arguments, build a [struct@Fiber.Batch]
 * and hand it to @submit, so a pool type only implements execution.
 */
struct _FiberPoolClass
{
  GObjectClass parent_class;

  gboolean (*submit)        (FiberPool   *self,
                             FiberBatch  *batch,
                             GError     **error);
  void     (*close)         (FiberPool   *self);
  void     (*terminate)     (FiberPool   *self);
  gboolean (*join)          (FiberPool   *self,
                             int          timeout_msec,
                             GError     **error);
  void     (*interrupt)     (FiberPool   *self);
  gboolean (*supports_func) (FiberPool   *self);

  /*< private >*/
  gpointer _reserved[12];
};

FIBER_AVAILABLE_IN_ALL
FiberPool        *fiber_pool_new                (const char           *pool_type,
                                                 guint                 processes,
                                                 GError              **error);
FIBER_AVAILABLE_IN_ALL
char            **fiber_pool_list_types         (void);
FIBER_AVAILABLE_IN_ALL
const char       *fiber_pool_get_pool_type      (FiberPool            *self);
FIBER_AVAILABLE_IN_ALL
guint             fiber_pool_get_processes      (FiberPool            *self);
FIBER_AVAILABLE_IN_ALL
gboolean          fiber_pool_is_closed          (FiberPool            *self);

FIBER_AVAILABLE_IN_ALL
GVariant         *fiber_pool_apply              (FiberPool            *self,
                                                 const char           *task,
                                                 GVariant             *args,
                                                 GError              **error);
FIBER_AVAILABLE_IN_ALL
FiberApplyResult *fiber_pool_apply_async        (FiberPool            *self,
                                                 const char           *task,
                                                 GVariant             *args,
                                                 GCancellable         *cancellable,
                                                 GAsyncReadyCallback   callback,
                                                 gpointer              user_data);
FIBER_AVAILABLE_IN_ALL
GVariant         *fiber_pool_apply_finish       (FiberPool            *self,
                                                 GAsyncResult         *result,
                                                 GError              **error);
FIBER_AVAILABLE_IN_ALL
FiberApplyResult *fiber_pool_apply_func         (FiberPool            *self,
                                                 GVariant             *args,
                                                 FiberTaskFunc         func,
                                                 gpointer              user_data,
                                                 GDestroyNotify        destroy,
                                                 GError              **error);

FIBER_AVAILABLE_IN_ALL
GVariant         *fiber_pool_map                (FiberPool            *self,
                                                 const char           *task,
                                                 GVariant             *iterable,
                                                 guint                 chunksize,
                                                 GError              **error);
FIBER_AVAILABLE_IN_ALL
FiberMapResult   *fiber_pool_map_async          (FiberPool            *self,
                                                 const char           *task,
                                                 GVariant             *iterable,
                                                 guint                 chunksize,
                                                 GCancellable         *cancellable,
                                                 GAsyncReadyCallback   callback,
                                                 gpointer              user_data);
FIBER_AVAILABLE_IN_ALL
GVariant         *fiber_pool_map_finish         (FiberPool            *self,
                                                 GAsyncResult         *result,
                                                 GError              **error);
FIBER_AVAILABLE_IN_ALL
FiberMapResult   *fiber_pool_imap               (FiberPool            *self,
                                                 const char           *task,
                                                 GVariant             *iterable,
                                                 guint                 chunksize,
                                                 GError              **error);
FIBER_AVAILABLE_IN_ALL
FiberMapResult   *fiber_pool_imap_unordered     (FiberPool            *self,
                                                 const char           *task,
                                                 GVariant             *iterable,
                                                 guint                 chunksize,
                                                 GError              **error);
FIBER_AVAILABLE_IN_ALL
GVariant         *fiber_pool_starmap            (FiberPool            *self,
                                                 const char           *task,
                                                 GVariant             *iterable,
                                                 guint                 chunksize,
                                                 GError              **error);
FIBER_AVAILABLE_IN_ALL
FiberMapResult   *fiber_pool_starmap_async      (FiberPool            *self,
                                                 const char           *task,
                                                 GVariant             *iterable,
                                                 guint                 chunksize,
                                                 GCancellable         *cancellable,
                                                 GAsyncReadyCallback   callback,
                                                 gpointer              user_data);

FIBER_AVAILABLE_IN_ALL
void              fiber_pool_close              (FiberPool            *self);
FIBER_AVAILABLE_IN_ALL
void              fiber_pool_terminate          (FiberPool            *self);
FIBER_AVAILABLE_IN_ALL
gboolean          fiber_pool_join               (FiberPool            *self,
                                                 int                   timeout_msec,
                                                 GError              **error);
FIBER_AVAILABLE_IN_ALL
void              fiber_pool_interrupt          (FiberPool            *self);

G_END_DECLS

/* fiber-pool-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Internal API shared by FiberPool, its results and the pool types.
 */

#pragma once

#include "fiber-apply-result.h"
#include "fiber-batch.h"
#include "fiber-map-result.h"
#include "fiber-pool.h"

G_BEGIN_DECLS

/* ---- FiberApplyResult ---- */

/* @callback_context: where @callback runs; NULL means the thread-default
 * context of the calling thread. */
FiberApplyResult *_fiber_apply_result_new      (GType                type,
                                                gpointer             source_object,
                                                GCancellable        *cancellable,
                                                GAsyncReadyCallback  callback,
                                                gpointer             user_data,
                                                gpointer             source_tag,
                                                GMainContext        *callback_context);
/* Completes the result with @value or @error (both transfer full, exactly
 * one non-NULL).  Returns FALSE (and frees both) when already complete. */
gboolean          _fiber_apply_result_complete (FiberApplyResult    *self,
                                                GVariant            *value,
                                                GError              *error);
gboolean          _fiber_apply_result_is_tagged (FiberApplyResult   *self,
                                                 gpointer            source_tag);
GCancellable     *_fiber_apply_result_get_cancellable (FiberApplyResult *self);
/* A pool whose result comes in on a file descriptor can let the thread
 * that waits for it (get() or wait() without a timeout) receive it itself,
 * sparing the hand-over from the pool's own thread.  @pump runs at most
 * once, in the waiting thread, outside of any lock of the result; the
 * result writes @wake_fd (an eventfd) when it completes, so @pump can
 * poll it beside its own fd.  @pump returns when the result is done or
 * when it gives up (the normal wait follows). */
typedef void    (*FiberApplyResultPump)        (FiberApplyResult    *result,
                                                int                  wake_fd,
                                                gpointer             data);
void              _fiber_apply_result_set_pump (FiberApplyResult    *self,
                                                FiberApplyResultPump pump,
                                                gpointer             data,
                                                GDestroyNotify       destroy);

/* ---- FiberMapResult ---- */

FiberMapResult   *_fiber_map_result_new        (gpointer             source_object,
                                                guint                n_items,
                                                gboolean             ordered,
                                                gboolean             collect,
                                                GCancellable        *cancellable,
                                                GAsyncReadyCallback  callback,
                                                gpointer             user_data,
                                                gpointer             source_tag,
                                                GMainContext        *callback_context);
/* Transfer full; returns FALSE (and frees) when the item was already set. */
gboolean          _fiber_map_result_set_item   (FiberMapResult      *self,
                                                guint                index,
                                                GVariant            *value,
                                                GError              *error);
/* The same for a successful item whose value is already boxed in a
 * variant (type "v", as a RESULT message carries it): stored as is. */
gboolean          _fiber_map_result_set_boxed  (FiberMapResult      *self,
                                                guint                index,
                                                GVariant            *boxed);
gboolean          _fiber_map_result_item_is_set (FiberMapResult     *self,
                                                 guint               index);
/* TRUE when every item is done or the map was aborted (cancelled, or a
 * collecting map had an item fail): no further item needs to run. */
gboolean          _fiber_map_result_is_finished (FiberMapResult     *self);

/* ---- FiberBatch ---- */

FiberBatch       *_fiber_batch_new             (const char          *task,
                                                FiberTaskFunc        func,
                                                gpointer             func_data,
                                                GDestroyNotify       func_destroy,
                                                GVariant            *args,
                                                GVariant            *iterable,
                                                guint                chunksize,
                                                FiberApplyResult    *result);
/* Transfer-full fast path for the dispatchers. */
gboolean          _fiber_batch_complete_item_take (FiberBatch       *self,
                                                   guint             index,
                                                   GVariant         *value,
                                                   GError           *error);
gboolean          _fiber_batch_item_is_done    (FiberBatch          *self,
                                                guint                index);
FiberApplyResult *_fiber_batch_get_result      (FiberBatch          *self);

/* Resolved base properties, for pool implementations. */
const char       *_fiber_pool_get_initializer  (FiberPool           *self);
GVariant         *_fiber_pool_get_initargs     (FiberPool           *self);
guint             _fiber_pool_get_maxtasksperchild (FiberPool       *self);
gboolean          _fiber_pool_get_resilient    (FiberPool           *self);
guint             _fiber_pool_get_max_retries  (FiberPool           *self);
/* Subclasses call this first in their dispose: an open pool is terminated
 * and joined so that no worker outlives the object. */
void              _fiber_pool_shutdown_for_dispose (FiberPool       *self);

/* ---- helpers of the in-process pools (thread, coroutine) ---- */

/* Runs the pool initializer task @initializer (nothing when NULL) with
 * @initargs (NULL means `()`) on the calling thread; on failure @error
 * names the initializer. */
gboolean          _fiber_pool_run_initializer  (const char          *initializer,
                                                GVariant            *initargs,
                                                GError             **error);
/* For interrupt(): under @lock, replaces *@cancellable (the one tasks
 * starting now get) with a fresh one and bumps *@generation (unless NULL).
 * Returns the old one (transfer full), for the caller to cancel. */
GCancellable     *_fiber_pool_swap_cancellable (GMutex              *lock,
                                                GCancellable       **cancellable,
                                                int                 *generation);
/* The error of an item whose task failed with @error (transfer full): an
 * interruption when @cancellable (the task's) was cancelled meanwhile. */
GError           *_fiber_pool_item_error       (GError              *error,
                                                GCancellable        *cancellable);

/* Where async callbacks of @pool go (the pool's result thread when
 * `result-thread` is set, else NULL = caller's thread-default context). */
GMainContext     *_fiber_pool_get_callback_context (FiberPool       *self);
/* Registry hook until the pool-type registry lands: sets the name a pool
 * was created under. */
void              _fiber_pool_set_pool_type    (FiberPool           *self,
                                                const char          *pool_type);

G_END_DECLS

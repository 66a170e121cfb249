/* fiber-apply-result.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <sys/eventfd.h>
#include <unistd.h>

#include "fiber-error.h"
#include "fiber-pool-private.h"

/**
 * FiberApplyResult:
 *
 * The pending result of one asynchronous call into a [class@Fiber.Pool],
 * like `multiprocessing.pool.AsyncResult`.
 *
 * It implements [iface@Gio.AsyncResult]: the callback given to the `_async`
 * call runs exactly once, on the thread-default [struct@GLib.MainContext] of
 * the calling thread (or on the process-wide result thread when the pool's
 * [property@Fiber.Pool:result-thread] is set).  Callers that run no main loop
 * can block in [method@Fiber.ApplyResult.get] instead; the result is kept, so
 * `get` can be called again and from any thread.
 */

/* The source object, weakly: one GWeakRef per source object shared by all
 * its results.  GLib 2.74 keeps an object's weak references in a list that
 * g_weak_ref_clear() searches, so a GWeakRef per result made releasing N
 * outstanding results of one pool cost O(N²). */
typedef struct
{
  gatomicrefcount ref;
  GWeakRef        weak;
} SourceRef;

static void
source_ref_unref (gpointer data)
{
  SourceRef *self = data;

  if (!g_atomic_ref_count_dec (&self->ref))
    return;
  g_weak_ref_clear (&self->weak);
  g_free (self);
}

/* The shared SourceRef of @source_object (transfer full), kept in its qdata. */
static SourceRef *
source_ref_get (gpointer source_object)
{
  static GMutex lock;
  static gsize quark;
  SourceRef *self;

  if (source_object == NULL)
    return NULL;

  if (g_once_init_enter (&quark))
    g_once_init_leave (&quark, g_quark_from_static_string ("fiber-apply-result-source"));

  /* Fast path without the lock: the qdata's own reference keeps the
   * SourceRef alive as long as @source_object, which our caller holds. */
  self = g_object_get_qdata (source_object, quark);
  if (self != NULL)
    {
      g_atomic_ref_count_inc (&self->ref);
      return self;
    }

  /* The lock only keeps two threads from creating it at once. */
  g_mutex_lock (&lock);
  self = g_object_get_qdata (source_object, quark);
  if (self == NULL)
    {
      self = g_new0 (SourceRef, 1);
      g_atomic_ref_count_init (&self->ref);
      g_weak_ref_init (&self->weak, source_object);
      g_object_set_qdata_full (source_object, quark, self, source_ref_unref);
    }
  g_atomic_ref_count_inc (&self->ref);
  g_mutex_unlock (&lock);
  return self;
}

typedef struct
{
  GMutex               mutex;
  GCond                cond;
  guint                n_waiters;  /* threads in wait_locked() */
  gboolean             done;
  GVariant            *value;
  GError              *error;

  SourceRef           *source;
  gpointer             source_tag;
  GCancellable        *cancellable;
  gulong               cancelled_id;
  GAsyncReadyCallback  callback;
  gpointer             user_data;
  GMainContext        *context;

  FiberApplyResultPump pump;
  gpointer             pump_data;
  GDestroyNotify       pump_destroy;
  int                  waiter_fd;  /* eventfd of the thread pumping, or -1 */
  GThread             *waiter;     /* that thread */
  gboolean             waiter_woken;
} FiberApplyResultPrivate;

static void async_result_iface_init (GAsyncResultIface *iface);

G_DEFINE_TYPE_WITH_CODE (FiberApplyResult, fiber_apply_result, G_TYPE_OBJECT,
                         G_ADD_PRIVATE (FiberApplyResult)
                         G_IMPLEMENT_INTERFACE (G_TYPE_ASYNC_RESULT, async_result_iface_init))

static gpointer
fiber_apply_result_get_user_data (GAsyncResult *result)
{
  FiberApplyResultPrivate *priv =
    fiber_apply_result_get_instance_private (FIBER_APPLY_RESULT (result));
  return priv->user_data;
}

static GObject *
fiber_apply_result_get_source_object (GAsyncResult *result)
{
  FiberApplyResultPrivate *priv =
    fiber_apply_result_get_instance_private (FIBER_APPLY_RESULT (result));
  return priv->source != NULL ? g_weak_ref_get (&priv->source->weak) : NULL;
}

static gboolean
fiber_apply_result_is_tagged_iface (GAsyncResult *result,
                                    gpointer      source_tag)
{
  return _fiber_apply_result_is_tagged (FIBER_APPLY_RESULT (result), source_tag);
}

static void
async_result_iface_init (GAsyncResultIface *iface)
{
  iface->get_user_data = fiber_apply_result_get_user_data;
  iface->get_source_object = fiber_apply_result_get_source_object;
  iface->is_tagged = fiber_apply_result_is_tagged_iface;
}

static void
fiber_apply_result_finalize (GObject *object)
{
  FiberApplyResult *self = FIBER_APPLY_RESULT (object);
  FiberApplyResultPrivate *priv = fiber_apply_result_get_instance_private (self);

  if (priv->cancellable != NULL && priv->cancelled_id != 0)
    g_cancellable_disconnect (priv->cancellable, priv->cancelled_id);
  g_clear_object (&priv->cancellable);
  g_clear_pointer (&priv->value, g_variant_unref);
  g_clear_error (&priv->error);
  g_clear_pointer (&priv->context, g_main_context_unref);
  g_clear_pointer (&priv->source, source_ref_unref);
  if (priv->pump_destroy != NULL)
    priv->pump_destroy (priv->pump_data);
  g_mutex_clear (&priv->mutex);
  g_cond_clear (&priv->cond);

  G_OBJECT_CLASS (fiber_apply_result_parent_class)->finalize (object);
}

static void
fiber_apply_result_class_init (FiberApplyResultClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = fiber_apply_result_finalize;
}

static void
fiber_apply_result_init (FiberApplyResult *self)
{
  FiberApplyResultPrivate *priv = fiber_apply_result_get_instance_private (self);

  g_mutex_init (&priv->mutex);
  g_cond_init (&priv->cond);
  priv->waiter_fd = -1;
}

static void
on_cancelled (GCancellable *cancellable,
              gpointer      data)
{
  FiberApplyResult *self = data;
  GError *error = NULL;

  g_cancellable_set_error_if_cancelled (cancellable, &error);
  _fiber_apply_result_complete (self, NULL, error);
}

FiberApplyResult *
_fiber_apply_result_new (GType                type,
                         gpointer             source_object,
                         GCancellable        *cancellable,
                         GAsyncReadyCallback  callback,
                         gpointer             user_data,
                         gpointer             source_tag,
                         GMainContext        *callback_context)
{
  FiberApplyResult *self;
  FiberApplyResultPrivate *priv;

  g_return_val_if_fail (g_type_is_a (type, FIBER_TYPE_APPLY_RESULT), NULL);

  self = g_object_new (type, NULL);
  priv = fiber_apply_result_get_instance_private (self);
  priv->source = source_ref_get (source_object);
  priv->source_tag = source_tag;
  priv->callback = callback;
  priv->user_data = user_data;
  if (callback != NULL)
    priv->context = callback_context != NULL
                  ? g_main_context_ref (callback_context)
                  : g_main_context_ref_thread_default ();
  if (cancellable != NULL)
    {
      priv->cancellable = g_object_ref (cancellable);
      /* Weak on purpose: the handler is disconnected in finalize. */
      priv->cancelled_id = g_cancellable_connect (cancellable,
                                                  G_CALLBACK (on_cancelled),
                                                  self, NULL);
    }
  return self;
}

static gboolean
invoke_callback (gpointer data)
{
  FiberApplyResult *self = data;
  FiberApplyResultPrivate *priv = fiber_apply_result_get_instance_private (self);
  g_autoptr(GObject) source = priv->source != NULL ? g_weak_ref_get (&priv->source->weak) : NULL;

  priv->callback (source, G_ASYNC_RESULT (self), priv->user_data);
  return G_SOURCE_REMOVE;
}

gboolean
_fiber_apply_result_complete (FiberApplyResult *self,
                              GVariant         *value,
                              GError           *error)
{
  FiberApplyResultPrivate *priv = fiber_apply_result_get_instance_private (self);
  gboolean wake;
  int waiter_fd;

  g_assert ((value == NULL) != (error == NULL));

  g_mutex_lock (&priv->mutex);
  if (priv->done)
    {
      g_mutex_unlock (&priv->mutex);
      g_clear_pointer (&value, g_variant_unref);
      g_clear_error (&error);
      return FALSE;
    }
  priv->value = value != NULL ? g_variant_take_ref (value) : NULL;
  priv->error = error;
  g_atomic_int_set (&priv->done, TRUE);   /* read without the mutex by wait (0) */
  /* GCond does not count waiters: skip the futex wake when nobody waits.
   * Wake after the unlock, so that the waiter does not at once block on
   * the mutex we still hold (our caller holds a reference to @self). */
  wake = priv->n_waiters > 0;
  /* The pumping thread itself needs no wakeup. */
  waiter_fd = priv->waiter != g_thread_self () ? priv->waiter_fd : -1;
  priv->waiter_woken = waiter_fd >= 0;
  g_mutex_unlock (&priv->mutex);
  if (wake)
    g_cond_broadcast (&priv->cond);
  if (waiter_fd >= 0)
    {
      /* The fd is the waiting thread's own and lives as long as it. */
      guint64 one = 1;
      ssize_t r G_GNUC_UNUSED = write (waiter_fd, &one, sizeof one);
    }

  if (priv->callback != NULL)
    {
      /* Always through a source, never directly: the callback must not run
       * inside the _async call (GTask rules) nor on a worker thread. */
      g_autoptr(GSource) source = g_idle_source_new ();

      g_source_set_priority (source, G_PRIORITY_DEFAULT);
      g_source_set_callback (source, invoke_callback, g_object_ref (self), g_object_unref);
      g_source_set_static_name (source, "[fiber] async result callback");
      g_source_attach (source, priv->context);
    }
  return TRUE;
}

gboolean
_fiber_apply_result_is_tagged (FiberApplyResult *self,
                               gpointer          source_tag)
{
  FiberApplyResultPrivate *priv = fiber_apply_result_get_instance_private (self);
  return priv->source_tag == source_tag;
}

GCancellable *
_fiber_apply_result_get_cancellable (FiberApplyResult *self)
{
  FiberApplyResultPrivate *priv = fiber_apply_result_get_instance_private (self);
  return priv->cancellable;
}

void
_fiber_apply_result_set_pump (FiberApplyResult     *self,
                              FiberApplyResultPump  pump,
                              gpointer              data,
                              GDestroyNotify        destroy)
{
  FiberApplyResultPrivate *priv = fiber_apply_result_get_instance_private (self);
  gpointer old_data;
  GDestroyNotify old_destroy;

  g_mutex_lock (&priv->mutex);
  old_data = priv->pump_data;
  old_destroy = priv->pump_destroy;
  priv->pump = pump;
  priv->pump_data = data;
  priv->pump_destroy = destroy;
  g_mutex_unlock (&priv->mutex);
  if (old_destroy != NULL)
    old_destroy (old_data);
}

static void
close_wake_fd (gpointer data)
{
  close (GPOINTER_TO_INT (data) - 1);
}

/* An eventfd of the calling thread, closed when the thread ends. */
static int
thread_wake_fd (void)
{
  static GPrivate key = G_PRIVATE_INIT (close_wake_fd);
  gpointer stored = g_private_get (&key);
  int fd;

  if (stored != NULL)
    return GPOINTER_TO_INT (stored) - 1;
  fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd >= 0)
    g_private_set (&key, GINT_TO_POINTER (fd + 1));
  return fd;
}

/* Lets the pool's pump receive the result in this thread (see
 * _fiber_apply_result_set_pump()). */
static void
try_pump (FiberApplyResult *self,
          int               timeout_msec)
{
  FiberApplyResultPrivate *priv = fiber_apply_result_get_instance_private (self);
  FiberApplyResultPump pump;
  gpointer data;
  GDestroyNotify destroy;
  guint64 drained;
  gboolean woken;
  int fd;

  if (timeout_msec >= 0 || g_atomic_pointer_get (&priv->pump) == NULL)
    return;
  fd = thread_wake_fd ();
  if (fd < 0)
    return;

  g_mutex_lock (&priv->mutex);
  if (priv->done || priv->pump == NULL || priv->waiter_fd >= 0)
    {
      g_mutex_unlock (&priv->mutex);
      return;
    }
  pump = g_steal_pointer (&priv->pump);
  data = g_steal_pointer (&priv->pump_data);
  destroy = g_steal_pointer (&priv->pump_destroy);
  priv->waiter_fd = fd;
  priv->waiter = g_thread_self ();
  g_mutex_unlock (&priv->mutex);

  pump (self, fd, data);

  g_mutex_lock (&priv->mutex);
  priv->waiter_fd = -1;
  priv->waiter = NULL;
  woken = priv->waiter_woken;
  g_mutex_unlock (&priv->mutex);
  if (destroy != NULL)
    destroy (data);
  if (woken)
    while (read (fd, &drained, sizeof drained) > 0)
      ;
}

/* Waits with priv->mutex held; returns whether the result is done. */
static gboolean
wait_locked (FiberApplyResultPrivate *priv,
             int                      timeout_msec)
{
  gint64 deadline;

  if (priv->done || timeout_msec == 0)
    return priv->done;

  priv->n_waiters++;
  if (timeout_msec < 0)
    {
      while (!priv->done)
        g_cond_wait (&priv->cond, &priv->mutex);
    }
  else
    {
      deadline = g_get_monotonic_time () + (gint64) timeout_msec * G_TIME_SPAN_MILLISECOND;
      while (!priv->done)
        if (!g_cond_wait_until (&priv->cond, &priv->mutex, deadline))
          break;
    }
  priv->n_waiters--;
  return priv->done;
}

/**
 * fiber_apply_result_get:
 * @self: a #FiberApplyResult
 * @timeout_msec: how long to wait: -1 forever, 0 just check
 * @error: return location for an error
 *
 * Waits for the call to finish and returns its result, like
 * `AsyncResult.get()`.  It may be called any number of times, from any
 * thread, and needs no running main loop.
 *
 * Returns: (transfer full): the task's result, or %NULL with the task's
 *   error, or %FIBER_ERROR_TIMEOUT when @timeout_msec ran out
 */
GVariant *
fiber_apply_result_get (FiberApplyResult  *self,
                        int                timeout_msec,
                        GError           **error)
{
  FiberApplyResultPrivate *priv;
  GVariant *value = NULL;

  g_return_val_if_fail (FIBER_IS_APPLY_RESULT (self), NULL);
  priv = fiber_apply_result_get_instance_private (self);

  try_pump (self, timeout_msec);
  g_mutex_lock (&priv->mutex);
  if (!wait_locked (priv, timeout_msec))
    g_set_error (error, FIBER_ERROR, FIBER_ERROR_TIMEOUT,
                 "the result was not ready within %d ms", timeout_msec);
  else if (priv->error != NULL)
    g_propagate_error (error, g_error_copy (priv->error));
  else
    value = g_variant_ref (priv->value);
  g_mutex_unlock (&priv->mutex);

  return value;
}

/**
 * fiber_apply_result_wait:
 * @self: a #FiberApplyResult
 * @timeout_msec: how long to wait: -1 forever, 0 just check
 *
 * Waits until the result is ready, like `AsyncResult.wait()`.
 *
 * Returns: whether the result is ready
 */
gboolean
fiber_apply_result_wait (FiberApplyResult *self,
                         int               timeout_msec)
{
  FiberApplyResultPrivate *priv;
  gboolean done;

  g_return_val_if_fail (FIBER_IS_APPLY_RESULT (self), FALSE);
  priv = fiber_apply_result_get_instance_private (self);

  /* the pools ask this before every item: no lock for a mere check */
  if (timeout_msec == 0)
    return g_atomic_int_get (&priv->done);

  try_pump (self, timeout_msec);
  g_mutex_lock (&priv->mutex);
  done = wait_locked (priv, timeout_msec);
  g_mutex_unlock (&priv->mutex);
  return done;
}

/**
 * fiber_apply_result_ready:
 * @self: a #FiberApplyResult
 *
 * Tells whether the result is available, without waiting.
 *
 * Returns: whether the call has finished (successfully or not)
 */
gboolean
fiber_apply_result_ready (FiberApplyResult *self)
{
  return fiber_apply_result_wait (self, 0);
}

/**
 * fiber_apply_result_successful:
 * @self: a #FiberApplyResult
 * @error: return location for an error
 *
 * Tells whether the call finished without error, like
 * `AsyncResult.successful()`.
 *
 * Unlike most functions with a #GError, a %FALSE return only sets @error
 * when the result is not ready yet (%FIBER_ERROR_STATE, where
 * multiprocessing raises `ValueError`); a finished call that failed returns
 * %FALSE without error — use [method@Fiber.ApplyResult.get] for its error.
 *
 * Returns: %TRUE if the call finished successfully
 */
gboolean
fiber_apply_result_successful (FiberApplyResult  *self,
                               GError           **error)
{
  FiberApplyResultPrivate *priv;
  gboolean ok = FALSE;

  g_return_val_if_fail (FIBER_IS_APPLY_RESULT (self), FALSE);
  priv = fiber_apply_result_get_instance_private (self);

  g_mutex_lock (&priv->mutex);
  if (!priv->done)
    g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_STATE,
                         "the result is not ready yet");
  else
    ok = priv->error == NULL;
  g_mutex_unlock (&priv->mutex);
  return ok;
}

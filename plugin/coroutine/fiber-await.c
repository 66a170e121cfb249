/* fiber-await.c — await primitives usable in coroutines and threads alike
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <errno.h>
#include <math.h>

#include "fiber-await.h"
#include "fiber-error.h"
#include "fiber-scheduler-private.h"

static FiberCoroutine *
current_scheduled_coroutine (void)
{
  FiberCoroutine *co = _fiber_coroutine_get_current ();

  return co != NULL && co->sched != NULL ? co : NULL;
}

/**
 * fiber_in_coroutine:
 *
 * Whether the caller runs on a coroutine stack of a coroutine scheduler
 * (a task of a [class@Fiber.CoroutinePool]).  There the await primitives
 * ([func@Fiber.yield], [func@Fiber.sleep], [func@Fiber.Await.fd],
 * [class@Fiber.Await]) switch to other coroutines; everywhere else they
 * block the calling thread.
 *
 * Returns: %TRUE in a coroutine
 */
gboolean
fiber_in_coroutine (void)
{
  return current_scheduled_coroutine () != NULL;
}

/**
 * fiber_yield:
 *
 * Lets the other ready coroutines of this scheduler run, then continues.
 * Outside a coroutine this yields the processor to other threads
 * (g_thread_yield()).
 */
void
fiber_yield (void)
{
  FiberCoroutine *co = current_scheduled_coroutine ();

  if (co != NULL)
    _fiber_scheduler_yield (co);
  else
    g_thread_yield ();
}

static gboolean
sleep_blocking (double         seconds,
                GCancellable  *cancellable,
                GError       **error)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) (seconds * G_USEC_PER_SEC);
  gboolean have_fd;
  GPollFD pfd;
  gboolean ok = FALSE;

  have_fd = g_cancellable_make_pollfd (cancellable, &pfd);
  for (;;)
    {
      gint64 now = g_get_monotonic_time ();
      int timeout_ms;

      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        break;
      if (now >= deadline)
        {
          ok = TRUE;
          break;
        }
      timeout_ms = (int) MIN ((deadline - now + 999) / 1000, G_MAXINT);
      if (have_fd)
        g_poll (&pfd, 1, timeout_ms);
      else
        g_usleep (deadline - now);
    }
  if (have_fd)
    g_cancellable_release_fd (cancellable);
  return ok;
}

/**
 * fiber_sleep:
 * @seconds: how long to sleep
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for an error
 *
 * Sleeps for @seconds.  In a coroutine of a coroutine pool other coroutines
 * run meanwhile; elsewhere the calling thread blocks.  Cancelling
 * @cancellable wakes the sleeper early with %G_IO_ERROR_CANCELLED.
 *
 * A negative, infinite or NaN @seconds is a %FIBER_ERROR_INVALID_ARGUMENT.
 *
 * Returns: %TRUE after the full sleep, %FALSE if cancelled or invalid
 */
gboolean
fiber_sleep (double         seconds,
             GCancellable  *cancellable,
             GError       **error)
{
  FiberCoroutine *co;

  if (!(seconds >= 0) || isinf (seconds) || seconds > (double) (G_MAXINT64 / G_USEC_PER_SEC))
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                   "sleep length must be a finite, non-negative number of seconds");
      return FALSE;
    }

  co = current_scheduled_coroutine ();
  if (co == NULL)
    return sleep_blocking (seconds, cancellable, error);

  if (!_fiber_scheduler_sleep (co, (gint64) (seconds * G_USEC_PER_SEC), cancellable))
    {
      if (!g_cancellable_set_error_if_cancelled (cancellable, error))
        g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                             "Operation was cancelled");
      return FALSE;
    }
  return TRUE;
}

static GIOCondition
check_revents (int            fd,
               GIOCondition   revents,
               GError       **error)
{
  if (revents & G_IO_NVAL)
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                   "file descriptor %d is not open", fd);
      return 0;
    }
  return revents;
}

static GIOCondition
await_fd_blocking (int            fd,
                   GIOCondition   condition,
                   GCancellable  *cancellable,
                   GError       **error)
{
  GPollFD pfds[2] = { { .fd = fd, .events = condition } };
  guint n = 1;
  GIOCondition revents = 0;

  if (g_cancellable_make_pollfd (cancellable, &pfds[1]))
    n = 2;

  for (;;)
    {
      int r;

      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        break;
      r = g_poll (pfds, n, -1);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        {
          int saved = errno;
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                       "poll: %s", g_strerror (saved));
          break;
        }
      if (pfds[0].revents != 0)
        {
          revents = check_revents (fd, pfds[0].revents, error);
          break;
        }
    }

  if (n == 2)
    g_cancellable_release_fd (cancellable);
  return revents;
}

/**
 * fiber_await_fd:
 * @fd: a file descriptor
 * @condition: the conditions to wait for, such as %G_IO_IN or %G_IO_OUT
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for an error
 *
 * Waits until @fd is ready for @condition.  In a coroutine other coroutines
 * run meanwhile; elsewhere the calling thread blocks in poll().
 *
 * The returned conditions may include %G_IO_HUP or %G_IO_ERR even if not
 * asked for.  A closed @fd is a %FIBER_ERROR_INVALID_ARGUMENT; cancelling
 * @cancellable ends the wait with %G_IO_ERROR_CANCELLED.
 *
 * Returns: the conditions that are met, or 0 with @error set
 */
GIOCondition
fiber_await_fd (int            fd,
                GIOCondition   condition,
                GCancellable  *cancellable,
                GError       **error)
{
  FiberCoroutine *co;
  GIOCondition revents;

  if (fd < 0)
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                   "invalid file descriptor %d", fd);
      return 0;
    }
  if (condition == 0)
    {
      g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                           "no condition to wait for");
      return 0;
    }

  co = current_scheduled_coroutine ();
  if (co == NULL)
    return await_fd_blocking (fd, condition, cancellable, error);

  revents = _fiber_scheduler_await_fd (co, fd, condition, cancellable);
  if (revents == 0)
    {
      if (!g_cancellable_set_error_if_cancelled (cancellable, error))
        g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                             "Operation was cancelled");
      return 0;
    }
  return check_revents (fd, revents, error);
}

/* ---- FiberAwait ---------------------------------------------------------- */

/**
 * FiberAwait:
 *
 * Waits for a GIO asynchronous operation from code written in blocking
 * style.  Start the operation with [func@Fiber.Await.callback] as its
 * callback and the await as its user data, then call
 * [method@Fiber.Await.wait]: it returns the operation's #GAsyncResult for
 * the matching `_finish()` call.
 *
 * ```c
 * g_autoptr(FiberAwait) await = fiber_await_new ();
 * GAsyncResult *result;
 *
 * g_subprocess_wait_async (proc, cancellable, fiber_await_callback, await);
 * result = fiber_await_wait (await, error);
 * if (result == NULL || !g_subprocess_wait_finish (proc, result, error))
 *   return NULL;
 * ```
 *
 * In a coroutine of a [class@Fiber.CoroutinePool] the wait suspends the
 * coroutine and the scheduler runs others until the callback fires.
 * Anywhere else [ctor@Fiber.Await.new] makes a private #GMainContext the
 * thread-default context of the calling thread (so the operation started
 * next completes there) and [method@Fiber.Await.wait] iterates it until the
 * callback fired, then pops it again.  Outside coroutines, awaits on one
 * thread must therefore be waited in the reverse order of their creation.
 *
 * The await must stay alive until the callback fired (wait for it).
 *
 * Bindings, which cannot pass [func@Fiber.Await.callback], pass their own
 * callback and call [method@Fiber.Await.complete] from it.
 */
struct _FiberAwait
{
  GObject         parent_instance;

  GMutex          lock;
  GAsyncResult   *result;
  gboolean        done;
  FiberCoroutine *waiter;

  GThread        *thread;
  GMainContext   *private_context;   /* outside coroutines */
  gboolean        pushed;
};

G_DEFINE_FINAL_TYPE (FiberAwait, fiber_await, G_TYPE_OBJECT)

static void
fiber_await_pop_context (FiberAwait *self)
{
  if (!self->pushed)
    return;
  self->pushed = FALSE;
  if (g_thread_self () == self->thread &&
      g_main_context_get_thread_default () == self->private_context)
    g_main_context_pop_thread_default (self->private_context);
  else
    g_critical ("FiberAwait: waits outside a coroutine must happen on the "
                "creating thread, in the reverse order of creation");
}

static void
fiber_await_finalize (GObject *object)
{
  FiberAwait *self = FIBER_AWAIT (object);

  fiber_await_pop_context (self);
  g_clear_object (&self->result);
  g_clear_pointer (&self->private_context, g_main_context_unref);
  g_mutex_clear (&self->lock);

  G_OBJECT_CLASS (fiber_await_parent_class)->finalize (object);
}

static void
fiber_await_class_init (FiberAwaitClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = fiber_await_finalize;
}

static void
fiber_await_init (FiberAwait *self)
{
  g_mutex_init (&self->lock);
}

/**
 * fiber_await_new:
 *
 * Creates an await for one asynchronous operation, to be started right
 * after this call (see [class@Fiber.Await]).
 *
 * Returns: (transfer full): a new #FiberAwait
 */
FiberAwait *
fiber_await_new (void)
{
  FiberAwait *self = g_object_new (FIBER_TYPE_AWAIT, NULL);

  self->thread = g_thread_self ();
  if (current_scheduled_coroutine () == NULL)
    {
      self->private_context = g_main_context_new ();
      g_main_context_push_thread_default (self->private_context);
      self->pushed = TRUE;
    }
  return self;
}

/**
 * fiber_await_complete:
 * @self: a #FiberAwait
 * @result: the result the operation's callback received
 *
 * Records @result and wakes the waiter.  [func@Fiber.Await.callback] calls
 * this; bindings call it from their own callback.  Completing an await
 * twice is a programming error.
 */
void
fiber_await_complete (FiberAwait   *self,
                      GAsyncResult *result)
{
  FiberCoroutine *waiter;

  g_return_if_fail (FIBER_IS_AWAIT (self));
  g_return_if_fail (G_IS_ASYNC_RESULT (result));

  g_mutex_lock (&self->lock);
  if (self->done)
    {
      g_mutex_unlock (&self->lock);
      g_critical ("FiberAwait completed twice");
      return;
    }
  self->result = g_object_ref (result);
  self->done = TRUE;
  waiter = g_steal_pointer (&self->waiter);
  g_mutex_unlock (&self->lock);

  if (waiter != NULL)
    _fiber_scheduler_wake (waiter, FIBER_WAKE_SIGNAL);
  else if (self->private_context != NULL)
    g_main_context_wakeup (self->private_context);
}

/**
 * fiber_await_callback: (skip)
 * @source_object: (nullable): the source object of the operation
 * @result: the result of the operation
 * @user_data: the #FiberAwait
 *
 * A #GAsyncReadyCallback to start an operation with, with a #FiberAwait as
 * its user data; it calls [method@Fiber.Await.complete].
 */
void
fiber_await_callback (GObject      *source_object,
                      GAsyncResult *result,
                      gpointer      user_data)
{
  fiber_await_complete (user_data, result);
}

/**
 * fiber_await_is_completed:
 * @self: a #FiberAwait
 *
 * Whether the operation's callback already fired.
 *
 * Returns: %TRUE once completed
 */
gboolean
fiber_await_is_completed (FiberAwait *self)
{
  gboolean done;

  g_return_val_if_fail (FIBER_IS_AWAIT (self), FALSE);

  g_mutex_lock (&self->lock);
  done = self->done;
  g_mutex_unlock (&self->lock);
  return done;
}

/**
 * fiber_await_wait:
 * @self: a #FiberAwait
 * @error: return location for an error
 *
 * Waits until the operation's callback fired: in a coroutine by switching
 * to other coroutines, elsewhere by iterating the await's private main
 * context.  Calling it again returns the same result.
 *
 * An await created in a coroutine must be waited in a coroutine and one
 * created outside one outside, on the same thread; otherwise this fails with
 * %FIBER_ERROR_STATE.
 *
 * Returns: (transfer none) (nullable): the operation's result, owned by
 *   @self, or %NULL with @error set
 */
GAsyncResult *
fiber_await_wait (FiberAwait  *self,
                  GError     **error)
{
  FiberCoroutine *co;

  g_return_val_if_fail (FIBER_IS_AWAIT (self), NULL);

  co = current_scheduled_coroutine ();
  if (g_thread_self () != self->thread ||
      (co == NULL) != (self->private_context != NULL))
    {
      g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_STATE,
                           "a FiberAwait must be waited on the thread that created "
                           "it, in a coroutine if and only if created in one");
      return NULL;
    }

  if (co != NULL)
    {
      g_mutex_lock (&self->lock);
      if (!self->done)
        {
          if (self->waiter != NULL)
            {
              g_mutex_unlock (&self->lock);
              g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_STATE,
                                   "another coroutine is already waiting on this FiberAwait");
              return NULL;
            }
          /* Ready to be woken before the lock is released, so the
           * callback cannot slip in between. */
          self->waiter = co;
          _fiber_scheduler_prepare_wait (co);
          g_mutex_unlock (&self->lock);
          _fiber_scheduler_wait (co, NULL);
        }
      else
        g_mutex_unlock (&self->lock);
    }
  else
    {
      while (!fiber_await_is_completed (self))
        g_main_context_iteration (self->private_context, TRUE);
      fiber_await_pop_context (self);
    }

  return self->result;
}

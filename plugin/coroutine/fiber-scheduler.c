/* fiber-scheduler.c — runs coroutines from a GMainContext
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <glib-unix.h>

#include "fiber-error.h"
#include "fiber-scheduler-private.h"

/* How many released stacks a scheduler keeps for reuse. */
#define STACK_CACHE_SIZE 16

/* How long one dispatch may keep resuming coroutines that made each other
 * ready (yield) before the main context polls again, like gevent's switch
 * interval (5 ms) but shorter: a poll per round made fiber_yield () between
 * two coroutines cost a system call each. */
#define DISPATCH_BUDGET_USEC 200

enum
{
  CO_RUNNING,
  CO_WAITING,
  CO_READY,
};

typedef struct
{
  GSource         source;
  FiberScheduler *sched;      /* unowned: the scheduler owns the source */
} SchedulerSource;

struct _FiberScheduler
{
  gatomicrefcount  ref;
  GMainContext    *context;
  GSource         *source;
  GThread         *owner;
  FiberSwitchKind  kind;
  FiberContext     main_ctx;
  FiberStackPool  *stacks;
  guint            n_coroutines;

  GQueue           ready;           /* owner thread only */
  GPtrArray       *timers;          /* owner thread only; binary min-heap on deadline */

  GMutex           remote_lock;
  GQueue           remote;          /* woken from other threads */
  int              remote_pending;  /* atomic: remote is non-empty */
};

/* ---- timer heap ---------------------------------------------------------- */

static inline FiberCoroutine *
heap_at (FiberScheduler *self,
         guint           i)
{
  return g_ptr_array_index (self->timers, i);
}

static inline void
heap_set (FiberScheduler *self,
          guint           i,
          FiberCoroutine *co)
{
  self->timers->pdata[i] = co;
  co->heap_index = i;
}

static void
heap_sift_up (FiberScheduler *self,
              guint           i)
{
  FiberCoroutine *co = heap_at (self, i);

  while (i > 0)
    {
      guint parent = (i - 1) / 2;
      FiberCoroutine *p = heap_at (self, parent);

      if (p->deadline <= co->deadline)
        break;
      heap_set (self, i, p);
      i = parent;
    }
  heap_set (self, i, co);
}

static void
heap_sift_down (FiberScheduler *self,
                guint           i)
{
  guint n = self->timers->len;
  FiberCoroutine *co = heap_at (self, i);

  for (;;)
    {
      guint child = 2 * i + 1;

      if (child >= n)
        break;
      if (child + 1 < n && heap_at (self, child + 1)->deadline < heap_at (self, child)->deadline)
        child++;
      if (co->deadline <= heap_at (self, child)->deadline)
        break;
      heap_set (self, i, heap_at (self, child));
      i = child;
    }
  heap_set (self, i, co);
}

static void
heap_push (FiberScheduler *self,
           FiberCoroutine *co)
{
  g_ptr_array_add (self->timers, co);
  heap_sift_up (self, self->timers->len - 1);
}

static void
heap_remove (FiberScheduler *self,
             FiberCoroutine *co)
{
  guint i = co->heap_index;
  FiberCoroutine *last;

  g_assert (i < self->timers->len && heap_at (self, i) == co);

  last = g_ptr_array_steal_index_fast (self->timers, self->timers->len - 1);
  co->heap_index = G_MAXUINT;
  if (last == co)
    return;
  heap_set (self, i, last);
  if (i > 0 && heap_at (self, (i - 1) / 2)->deadline > last->deadline)
    heap_sift_up (self, i);
  else
    heap_sift_down (self, i);
}

/* ---- ready queues -------------------------------------------------------- */

static void
make_ready (FiberScheduler *self,
            FiberCoroutine *co)
{
  if (g_thread_self () == self->owner)
    {
      g_queue_push_tail_link (&self->ready, &co->link);
      return;
    }

  g_mutex_lock (&self->remote_lock);
  g_queue_push_tail_link (&self->remote, &co->link);
  g_atomic_int_set (&self->remote_pending, 1);
  g_mutex_unlock (&self->remote_lock);
  g_main_context_wakeup (self->context);
}

static void
take_remote (FiberScheduler *self)
{
  GList *link;

  if (!g_atomic_int_get (&self->remote_pending))
    return;
  g_mutex_lock (&self->remote_lock);
  while ((link = g_queue_pop_head_link (&self->remote)) != NULL)
    g_queue_push_tail_link (&self->ready, link);
  g_atomic_int_set (&self->remote_pending, 0);
  g_mutex_unlock (&self->remote_lock);
}

static void
expire_timers (FiberScheduler *self,
               gint64          now)
{
  while (self->timers->len > 0 && heap_at (self, 0)->deadline <= now)
    {
      FiberCoroutine *co = heap_at (self, 0);

      heap_remove (self, co);
      _fiber_scheduler_wake (co, FIBER_WAKE_TIMER);
    }
}

/* ---- GSource ------------------------------------------------------------- */

static gboolean
scheduler_source_prepare (GSource *source,
                          int     *timeout)
{
  FiberScheduler *self = ((SchedulerSource *) source)->sched;
  gint64 now, delta;

  *timeout = -1;
  if (self->ready.length > 0 || g_atomic_int_get (&self->remote_pending))
    {
      *timeout = 0;
      return TRUE;
    }
  if (self->timers->len == 0)
    return FALSE;

  now = g_get_monotonic_time ();
  delta = heap_at (self, 0)->deadline - now;
  if (delta <= 0)
    {
      *timeout = 0;
      return TRUE;
    }
  *timeout = (int) MIN ((delta + 999) / 1000, G_MAXINT);
  return FALSE;
}

static gboolean
scheduler_source_check (GSource *source)
{
  FiberScheduler *self = ((SchedulerSource *) source)->sched;

  return self->ready.length > 0 ||
         g_atomic_int_get (&self->remote_pending) ||
         (self->timers->len > 0 &&
          heap_at (self, 0)->deadline <= g_get_monotonic_time ());
}

static void
run_coroutine (FiberScheduler *self,
               FiberCoroutine *co)
{
  g_atomic_int_set (&co->state, CO_RUNNING);
  _fiber_coroutine_resume (co, &self->main_ctx);
  if (_fiber_coroutine_is_finished (co))
    {
      _fiber_stack_pool_release (self->stacks, _fiber_coroutine_free (co));
      self->n_coroutines--;
    }
}

static gboolean
scheduler_source_dispatch (GSource     *source,
                           GSourceFunc  callback,
                           gpointer     user_data)
{
  FiberScheduler *self = ((SchedulerSource *) source)->sched;
  GMainContext *thread_default;
  gboolean push;
  gint64 deadline = 0;
  guint n, since_check = 0;

  g_assert (g_thread_self () == self->owner);

  take_remote (self);
  if (self->timers->len > 0)
    expire_timers (self, g_get_monotonic_time ());

  /* GIO operations started by a coroutine must complete here. */
  thread_default = g_main_context_get_thread_default ();
  if (thread_default == NULL)
    thread_default = g_main_context_default ();
  push = thread_default != self->context;
  if (push)
    g_main_context_push_thread_default (self->context);

  /* Run what is ready, round after round: coroutines made ready meanwhile
   * (yield, wake-ups from the ones that ran) run in the next round, until
   * none is ready or the budget is spent; then the context polls. */
  for (;;)
    {
      gint64 now;

      for (n = self->ready.length; n > 0; n--)
        {
          GList *link = g_queue_pop_head_link (&self->ready);
          run_coroutine (self, link->data);
          since_check++;
        }
      if (self->ready.length == 0)
        break;
      /* the clock is read every 64 resumptions, not every round */
      if (since_check < 64)
        continue;
      since_check = 0;
      now = g_get_monotonic_time ();
      if (deadline == 0)
        deadline = now + DISPATCH_BUDGET_USEC;
      else if (now >= deadline)
        break;
      take_remote (self);
      if (self->timers->len > 0)
        expire_timers (self, now);
    }

  if (push)
    g_main_context_pop_thread_default (self->context);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs scheduler_source_funcs = {
  .prepare = scheduler_source_prepare,
  .check = scheduler_source_check,
  .dispatch = scheduler_source_dispatch,
};

/* ---- scheduler ----------------------------------------------------------- */

FiberScheduler *
_fiber_scheduler_new (GMainContext     *context,
                      gsize             stack_size,
                      FiberSwitchKind   kind,
                      GError          **error)
{
  FiberScheduler *self;
  gsize rounded;

  if (!_fiber_stack_check_size (stack_size, &rounded, error))
    return NULL;
  if (!_fiber_context_kind_available (kind))
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_NOT_SUPPORTED,
                   "the %s context switch is not available in this build",
                   _fiber_context_kind_name (kind));
      return NULL;
    }

  self = g_new0 (FiberScheduler, 1);
  g_atomic_ref_count_init (&self->ref);
  self->context = context != NULL ? g_main_context_ref (context)
                                  : g_main_context_ref_thread_default ();
  self->owner = g_thread_self ();
  self->kind = kind;
  _fiber_context_init_main (&self->main_ctx, kind);
  self->stacks = _fiber_stack_pool_new (rounded, STACK_CACHE_SIZE);
  self->timers = g_ptr_array_new ();
  g_mutex_init (&self->remote_lock);

  self->source = g_source_new (&scheduler_source_funcs, sizeof (SchedulerSource));
  ((SchedulerSource *) self->source)->sched = self;
  g_source_set_static_name (self->source, "FiberScheduler");
  g_source_set_priority (self->source, G_PRIORITY_DEFAULT);
  g_source_attach (self->source, self->context);
  return self;
}

FiberScheduler *
_fiber_scheduler_ref (FiberScheduler *self)
{
  g_atomic_ref_count_inc (&self->ref);
  return self;
}

void
_fiber_scheduler_unref (FiberScheduler *self)
{
  if (!g_atomic_ref_count_dec (&self->ref))
    return;

  /* A coroutine that never finished still has frames on its stack that may
   * be referenced from elsewhere (cancellable handlers, fd sources): leak it
   * rather than free memory something may still point at. */
  if (self->n_coroutines > 0)
    g_critical ("FiberScheduler freed with %u unfinished coroutines; their "
                "stacks are leaked", self->n_coroutines);

  g_source_destroy (self->source);
  g_source_unref (self->source);
  g_ptr_array_unref (self->timers);
  _fiber_stack_pool_free (self->stacks);
  _fiber_context_clear (&self->main_ctx);
  g_mutex_clear (&self->remote_lock);
  g_main_context_unref (self->context);
  g_free (self);
}

GMainContext *
_fiber_scheduler_get_context (FiberScheduler *self)
{
  return self->context;
}

FiberSwitchKind
_fiber_scheduler_get_switch_kind (FiberScheduler *self)
{
  return self->kind;
}

gsize
_fiber_scheduler_get_stack_size (FiberScheduler *self)
{
  return _fiber_stack_pool_get_stack_size (self->stacks);
}

guint
_fiber_scheduler_get_n_coroutines (FiberScheduler *self)
{
  return self->n_coroutines;
}

FiberScheduler *
_fiber_scheduler_get_current (void)
{
  FiberCoroutine *co = _fiber_coroutine_get_current ();

  return co != NULL ? co->sched : NULL;
}

gboolean
_fiber_scheduler_spawn (FiberScheduler      *self,
                        FiberCoroutineFunc   func,
                        gpointer             data,
                        GError             **error)
{
  FiberStack *stack;
  FiberCoroutine *co;

  g_return_val_if_fail (g_thread_self () == self->owner, FALSE);

  stack = _fiber_stack_pool_take (self->stacks, error);
  if (stack == NULL)
    return FALSE;
  co = _fiber_coroutine_new (stack, self->kind, func, data);
  co->sched = self;
  co->link.data = co;
  co->state = CO_READY;
  self->n_coroutines++;
  g_queue_push_tail_link (&self->ready, &co->link);
  return TRUE;
}

/* ---- wait protocol ------------------------------------------------------- */

void
_fiber_scheduler_prepare_wait (FiberCoroutine *co)
{
  co->wake_reason = FIBER_WAKE_NONE;
  g_atomic_int_set (&co->state, CO_WAITING);
}

gboolean
_fiber_scheduler_wake (FiberCoroutine  *co,
                       FiberWakeReason  reason)
{
  if (!g_atomic_int_compare_and_exchange (&co->state, CO_WAITING, CO_READY))
    return FALSE;
  /* Only the winner writes; the coroutine reads it after it is resumed,
   * which happens after make_ready() (ordered by the queue). */
  co->wake_reason = reason;
  make_ready (co->sched, co);
  return TRUE;
}

static void
on_wait_cancelled (GCancellable *cancellable,
                   gpointer      user_data)
{
  _fiber_scheduler_wake (user_data, FIBER_WAKE_CANCELLED);
}

FiberWakeReason
_fiber_scheduler_wait (FiberCoroutine *co,
                       GCancellable   *cancellable)
{
  gulong handler = 0;

  g_assert (co == _fiber_coroutine_get_current ());

  /* Connecting to a cancelled cancellable runs the handler at once, which
   * queues us: the suspension below then returns on the next dispatch. */
  if (cancellable != NULL)
    handler = g_cancellable_connect (cancellable, G_CALLBACK (on_wait_cancelled), co, NULL);

  _fiber_coroutine_suspend ();

  if (handler != 0)
    g_cancellable_disconnect (cancellable, handler);
  return co->wake_reason;
}

void
_fiber_scheduler_yield (FiberCoroutine *co)
{
  g_atomic_int_set (&co->state, CO_READY);
  g_queue_push_tail_link (&co->sched->ready, &co->link);
  _fiber_coroutine_suspend ();
}

gboolean
_fiber_scheduler_sleep (FiberCoroutine *co,
                        gint64          usec,
                        GCancellable   *cancellable)
{
  FiberScheduler *self = co->sched;
  FiberWakeReason reason;

  if (g_cancellable_is_cancelled (cancellable))
    return FALSE;

  _fiber_scheduler_prepare_wait (co);
  co->deadline = g_get_monotonic_time () + MAX (usec, 0);
  heap_push (self, co);
  reason = _fiber_scheduler_wait (co, cancellable);
  if (co->heap_index != G_MAXUINT)
    heap_remove (self, co);
  return reason != FIBER_WAKE_CANCELLED;
}

static gboolean
on_fd_ready (int           fd,
             GIOCondition  condition,
             gpointer      user_data)
{
  FiberCoroutine *co = user_data;

  co->revents = condition;
  _fiber_scheduler_wake (co, FIBER_WAKE_SIGNAL);
  return G_SOURCE_REMOVE;
}

GIOCondition
_fiber_scheduler_await_fd (FiberCoroutine *co,
                           int             fd,
                           GIOCondition    condition,
                           GCancellable   *cancellable)
{
  g_autoptr(GSource) source = NULL;
  FiberWakeReason reason;

  if (g_cancellable_is_cancelled (cancellable))
    return 0;

  co->revents = 0;
  _fiber_scheduler_prepare_wait (co);
  source = g_unix_fd_source_new (fd, condition);
  g_source_set_callback (source, G_SOURCE_FUNC (on_fd_ready), co, NULL);
  g_source_set_static_name (source, "FiberScheduler fd await");
  g_source_attach (source, co->sched->context);
  reason = _fiber_scheduler_wait (co, cancellable);
  g_source_destroy (source);
  return reason == FIBER_WAKE_CANCELLED ? 0 : co->revents;
}

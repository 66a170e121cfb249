/* fiber-coroutine-pool.c — the `coroutine` pool type: stackful coroutines on
 * one scheduler thread, gevent-style
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "fiber-coroutine-pool.h"
#include "fiber-error.h"
#include "fiber-pool-private.h"
#include "fiber-scheduler-private.h"

/**
 * FiberCoroutinePool:
 *
 * The `coroutine` pool type, modelled on a gevent pool: one scheduler
 * thread runs up to [property@Fiber.Pool:processes] tasks at once, each on
 * its own stackful coroutine (an mmap'd stack of
 * [property@Fiber.CoroutinePool:stack-size] bytes with a guard area below
 * it).  Tasks that wait with the await primitives — [func@Fiber.sleep],
 * [func@Fiber.yield], [func@Fiber.Await.fd], [class@Fiber.Await] for any
 * GIO asynchronous operation, and so the built-in `fiber.sleep` and
 * `fiber.subprocess` tasks — switch to other coroutines instead of blocking
 * the thread.  A task that blocks the thread any other way (a blocking
 * system call, a long computation) stalls the whole pool, as in gevent.
 *
 * `processes` is therefore the number of coroutines running at the same
 * time, like the size of a gevent pool; for I/O-bound work it is usually
 * much larger than the number of CPUs (0 still means one per CPU).
 *
 * Registered tasks run on coroutine stacks.  Functions supplied with
 * [method@Fiber.Pool.apply_func] — language bindings' closures — never do:
 * Python and JavaScript cannot run on a foreign stack or be suspended in
 * the middle of a call, so they run to completion on the scheduler
 * thread's own stack, one at a time; the await primitives block there.
 *
 * [method@Fiber.Pool.interrupt] cancels the #GCancellable of the running
 * tasks, which wakes any await they are in; tasks that then fail, fail with
 * %FIBER_ERROR_INTERRUPTED, and the pool stays usable.
 * [method@Fiber.Pool.terminate] completes every unfinished item with
 * %FIBER_ERROR_CLOSED and cancels the running tasks; the scheduler thread
 * exits once each coroutine has returned (a coroutine cannot be killed).
 * The [property@Fiber.Pool:initializer] task runs once on the scheduler
 * thread before the first task; if it fails every item fails with its
 * error.  [property@Fiber.Pool:maxtasksperchild] does not apply.
 *
 * A task that overflows its coroutine stack runs into the guard area below
 * it.  That is reported as a crash of the pool's scheduler thread (named
 * `fiber-coroutine`): a line on standard error names the thread and the
 * stack size, then the thread dies of SIGSEGV and, as with any crashed
 * thread, the process with it (the signal's previous disposition applies,
 * so a core dump or a sanitizer report follows as usual).  It is never
 * silent memory corruption.  Give tasks that recurse deeply or keep large
 * buffers on the stack a larger [property@Fiber.CoroutinePool:stack-size].
 */

#define SCHEDULER_THREAD_NAME "fiber-coroutine"

typedef struct
{
  FiberBatch *batch;
  guint       next;
  guint       end;
  GList       link;
} Chunk;

typedef struct _Core Core;

/* A coroutine running items one after the other, or the scheduler stack
 * running caller-supplied functions. */
typedef struct
{
  Core         *pool;
  FiberBatch   *batch;       /* current item, under the pool lock */
  guint         index;
  GCancellable *cancellable;
  GList         link;        /* in Core.workers */
} Worker;

/* Everything the scheduler thread uses.  The thread holds a reference
 * until it returns: the pool's last reference may be dropped on it (by a
 * task, or by a closure's destroy notify when an item is released), and
 * dispose cannot join the thread it runs on, so the scheduler goes on with
 * this after the FiberCoroutinePool is gone. */
struct _Core
{
  gatomicrefcount  ref_count;
  guint            max_workers;    /* copies of the base properties */
  char            *initializer;
  GVariant        *initargs;
  guint            stack_size;
  GMainContext    *context;
  GSource         *feeder;
  GThread         *thread;
  GError          *init_error;     /* scheduler thread only */

  GMutex           lock;
  GCond            cond;
  GQueue           tasks;          /* Chunk: registered tasks waiting for a coroutine */
  GQueue           funcs;          /* Chunk: functions for the scheduler stack */
  GQueue           workers;        /* Worker: running coroutines */
  Worker           main_worker;    /* the scheduler stack, running a function */
  GCancellable    *cancellable;    /* of the tasks starting now */
  gboolean         start_attempted;
  gboolean         started;
  gboolean         exited;
  gboolean         closing;
  gboolean         terminated;
  GError          *start_error;
};

struct _FiberCoroutinePool
{
  FiberPool  parent_instance;

  Core      *core;
};

static void fiber_coroutine_pool_initable_iface_init (GInitableIface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (FiberCoroutinePool, fiber_coroutine_pool, FIBER_TYPE_POOL,
                               G_IMPLEMENT_INTERFACE (G_TYPE_INITABLE,
                                                      fiber_coroutine_pool_initable_iface_init))

enum {
  PROP_0,
  PROP_STACK_SIZE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static Core *
core_new (void)
{
  Core *self = g_new0 (Core, 1);

  g_atomic_ref_count_init (&self->ref_count);
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  self->stack_size = FIBER_STACK_DEFAULT_SIZE;
  self->cancellable = g_cancellable_new ();
  self->main_worker.pool = self;
  return self;
}

static Core *
core_ref (Core *self)
{
  g_atomic_ref_count_inc (&self->ref_count);
  return self;
}

static void
core_unref (Core *self)
{
  if (!g_atomic_ref_count_dec (&self->ref_count))
    return;
  /* the scheduler thread has returned, or never started */
  g_assert (self->thread == NULL);
  if (self->feeder != NULL)
    {
      g_source_destroy (self->feeder);
      g_source_unref (self->feeder);
    }
  g_clear_pointer (&self->context, g_main_context_unref);
  g_free (self->initializer);
  g_clear_pointer (&self->initargs, g_variant_unref);
  g_clear_object (&self->cancellable);
  g_clear_error (&self->start_error);
  g_clear_error (&self->init_error);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
  g_free (self);
}

/* ---- items ----------------------------------------------------------------- */

static void
run_item (Core         *self,
          FiberBatch   *batch,
          guint         index,
          GCancellable *cancellable)
{
  GError *error = NULL;
  GVariant *value;

  if (fiber_batch_is_done (batch))
    return;
  if (self->init_error != NULL)
    {
      _fiber_batch_complete_item_take (batch, index, NULL, g_error_copy (self->init_error));
      return;
    }
  value = fiber_batch_invoke (batch, index, cancellable, &error);
  if (value == NULL)
    error = _fiber_pool_item_error (error, cancellable);
  _fiber_batch_complete_item_take (batch, index, value, error);
}

static Chunk *
chunk_new (FiberBatch *batch,
           guint       start,
           guint       end)
{
  Chunk *chunk = g_new0 (Chunk, 1);

  chunk->batch = fiber_batch_ref (batch);
  chunk->next = start;
  chunk->end = end;
  chunk->link.data = chunk;
  return chunk;
}

static void
chunk_free (Chunk *chunk)
{
  fiber_batch_unref (chunk->batch);
  g_free (chunk);
}

/* Under the lock: takes the next item of @queue into @worker. */
static gboolean
take_item_locked (Core   *self,
                  GQueue *queue,
                  Worker *worker)
{
  Chunk *chunk;

  if (self->terminated || queue->length == 0)
    return FALSE;

  chunk = queue->head->data;
  worker->batch = fiber_batch_ref (chunk->batch);
  worker->index = chunk->next++;
  g_set_object (&worker->cancellable, self->cancellable);
  if (chunk->next == chunk->end)
    {
      g_queue_unlink (queue, &chunk->link);
      chunk_free (chunk);
    }
  return TRUE;
}

static void
worker_finish_item (Core   *self,
                    Worker *worker)
{
  FiberBatch *batch;

  g_mutex_lock (&self->lock);
  batch = g_steal_pointer (&worker->batch);
  g_mutex_unlock (&self->lock);
  fiber_batch_unref (batch);
}

/* ---- the scheduler thread --------------------------------------------------- */

static void
worker_main (gpointer data)
{
  Worker *worker = data;
  Core *self = worker->pool;

  for (;;)
    {
      gboolean more;

      run_item (self, worker->batch, worker->index, worker->cancellable);
      worker_finish_item (self, worker);

      g_mutex_lock (&self->lock);
      more = take_item_locked (self, &self->tasks, worker);
      if (!more)
        g_queue_unlink (&self->workers, &worker->link);
      g_mutex_unlock (&self->lock);
      if (!more)
        break;
    }

  g_clear_object (&worker->cancellable);
  g_free (worker);
}

static void
feed (Core           *self,
      FiberScheduler *sched)
{
  guint max_workers = MAX (self->max_workers, 1);

  /* Caller-supplied functions run here, on the scheduler's own stack. */
  for (;;)
    {
      gboolean taken;

      g_mutex_lock (&self->lock);
      taken = take_item_locked (self, &self->funcs, &self->main_worker);
      g_mutex_unlock (&self->lock);
      if (!taken)
        break;
      run_item (self, self->main_worker.batch, self->main_worker.index,
                self->main_worker.cancellable);
      worker_finish_item (self, &self->main_worker);
    }
  g_clear_object (&self->main_worker.cancellable);

  /* A coroutine per item, up to `processes` at once; each then takes the
   * next waiting item until none is left. */
  for (;;)
    {
      g_autoptr(GError) error = NULL;
      Worker *worker = g_new0 (Worker, 1);
      gboolean taken;

      worker->pool = self;
      worker->link.data = worker;
      g_mutex_lock (&self->lock);
      taken = self->workers.length < max_workers &&
              take_item_locked (self, &self->tasks, worker);
      if (taken)
        g_queue_push_tail_link (&self->workers, &worker->link);
      g_mutex_unlock (&self->lock);
      if (!taken)
        {
          g_free (worker);
          break;
        }

      if (!_fiber_scheduler_spawn (sched, worker_main, worker, &error))
        {
          /* no stack could be mapped: the item fails instead of hanging */
          g_mutex_lock (&self->lock);
          g_queue_unlink (&self->workers, &worker->link);
          g_mutex_unlock (&self->lock);
          _fiber_batch_complete_item_take (worker->batch, worker->index, NULL,
                                           g_steal_pointer (&error));
          worker_finish_item (self, worker);
          g_clear_object (&worker->cancellable);
          g_free (worker);
        }
    }
}

static gboolean
feeder_dispatch (GSource     *source,
                 GSourceFunc  callback,
                 gpointer     user_data)
{
  g_source_set_ready_time (source, -1);
  return callback (user_data);
}

static GSourceFuncs feeder_funcs = {
  .dispatch = feeder_dispatch,
};

typedef struct
{
  Core           *pool;
  FiberScheduler *sched;
} FeederData;

static gboolean
feeder_callback (gpointer data)
{
  FeederData *feeder = data;

  feed (feeder->pool, feeder->sched);
  return G_SOURCE_CONTINUE;
}

static gboolean
is_finished_locked (Core *self)
{
  return (self->closing || self->terminated) &&
         self->tasks.length == 0 &&
         self->funcs.length == 0 &&
         self->workers.length == 0;
}

static gpointer
scheduler_thread_main (gpointer data)
{
  Core *self = data;   /* the thread's reference */
  FiberScheduler *sched;
  GError *error = NULL;
  FeederData feeder = { self, NULL };

  g_main_context_push_thread_default (self->context);
  _fiber_coroutine_enable_overflow_report (SCHEDULER_THREAD_NAME);
  sched = _fiber_scheduler_new (self->context, self->stack_size,
                                _fiber_context_default_kind (), &error);

  g_mutex_lock (&self->lock);
  self->started = TRUE;
  self->start_error = error;
  self->exited = sched == NULL;
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
  if (sched == NULL)
    {
      _fiber_coroutine_disable_overflow_report ();
      g_main_context_pop_thread_default (self->context);
      core_unref (self);
      return NULL;
    }

  _fiber_pool_run_initializer (self->initializer, self->initargs, &self->init_error);

  feeder.sched = sched;
  g_source_set_callback (self->feeder, feeder_callback, &feeder, NULL);
  g_source_set_ready_time (self->feeder, 0);

  for (;;)
    {
      gboolean finished;

      g_mutex_lock (&self->lock);
      finished = is_finished_locked (self);
      g_mutex_unlock (&self->lock);
      if (finished && _fiber_scheduler_get_n_coroutines (sched) == 0)
        break;
      g_main_context_iteration (self->context, TRUE);
    }

  g_source_destroy (self->feeder);
  /* let sources that completed (child watches, idles) run their cleanup */
  while (g_main_context_iteration (self->context, FALSE))
    ;
  _fiber_scheduler_unref (sched);
  _fiber_coroutine_disable_overflow_report ();
  g_main_context_pop_thread_default (self->context);

  g_mutex_lock (&self->lock);
  self->exited = TRUE;
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
  core_unref (self);
  return NULL;
}

static gboolean
ensure_started (FiberCoroutinePool  *pool,
                GError             **error)
{
  Core *self = pool->core;
  gboolean ok;

  g_mutex_lock (&self->lock);
  if (!self->start_attempted)
    {
      GError *local_error = NULL;
      gsize rounded;

      self->start_attempted = TRUE;
      if (_fiber_stack_check_size (self->stack_size, &rounded, &local_error))
        {
          self->context = g_main_context_new ();
          self->feeder = g_source_new (&feeder_funcs, sizeof (GSource));
          g_source_set_static_name (self->feeder, "FiberCoroutinePool feeder");
          g_source_attach (self->feeder, self->context);
          self->thread = g_thread_try_new (SCHEDULER_THREAD_NAME, scheduler_thread_main,
                                           core_ref (self), &local_error);
          if (self->thread == NULL)
            core_unref (self);
        }
      if (self->thread != NULL)
        {
          while (!self->started)
            g_cond_wait (&self->cond, &self->lock);
        }
      else
        self->start_error = local_error;
    }
  ok = self->start_error == NULL;
  if (!ok)
    g_propagate_error (error, g_error_copy (self->start_error));
  g_mutex_unlock (&self->lock);
  return ok;
}

static void
wake_scheduler (Core *self)
{
  if (self->feeder != NULL)
    g_source_set_ready_time (self->feeder, 0);
}

/* ---- FiberPool ----------------------------------------------------------------- */

static gboolean
fiber_coroutine_pool_submit (FiberPool   *pool,
                             FiberBatch  *batch,
                             GError     **error)
{
  Core *self = FIBER_COROUTINE_POOL (pool)->core;
  guint n_items = fiber_batch_get_n_items (batch);
  GQueue *queue;

  if (!ensure_started (FIBER_COROUTINE_POOL (pool), error))
    return FALSE;

  queue = fiber_batch_has_func (batch) ? &self->funcs : &self->tasks;
  g_mutex_lock (&self->lock);
  if (self->terminated)
    {
      g_mutex_unlock (&self->lock);
      g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_CLOSED,
                           "the pool was terminated");
      return FALSE;
    }
  /* Coroutines take items one by one: one queue entry per batch. */
  g_queue_push_tail_link (queue, &chunk_new (batch, 0, n_items)->link);
  g_mutex_unlock (&self->lock);

  wake_scheduler (self);
  return TRUE;
}

static void
fiber_coroutine_pool_close (FiberPool *pool)
{
  Core *self = FIBER_COROUTINE_POOL (pool)->core;

  g_mutex_lock (&self->lock);
  self->closing = TRUE;
  g_mutex_unlock (&self->lock);
  wake_scheduler (self);
}

typedef struct
{
  FiberBatch *batch;
  guint       start;
  guint       end;
} Range;

static void
collect_queue_locked (GQueue *queue,
                      GArray *ranges)
{
  GList *link;

  while ((link = g_queue_pop_head_link (queue)) != NULL)
    {
      Chunk *chunk = link->data;
      Range range = { fiber_batch_ref (chunk->batch), chunk->next, chunk->end };

      g_array_append_val (ranges, range);
      chunk_free (chunk);
    }
}

static void
collect_worker_locked (Worker *worker,
                       GArray *ranges)
{
  if (worker->batch != NULL)
    {
      Range range = { fiber_batch_ref (worker->batch), worker->index, worker->index + 1 };
      g_array_append_val (ranges, range);
    }
}

static void
fiber_coroutine_pool_terminate (FiberPool *pool)
{
  Core *self = FIBER_COROUTINE_POOL (pool)->core;
  g_autoptr(GArray) ranges = g_array_new (FALSE, FALSE, sizeof (Range));
  g_autoptr(GCancellable) cancellable = NULL;

  g_mutex_lock (&self->lock);
  self->terminated = TRUE;
  collect_queue_locked (&self->tasks, ranges);
  collect_queue_locked (&self->funcs, ranges);
  for (GList *l = self->workers.head; l != NULL; l = l->next)
    collect_worker_locked (l->data, ranges);
  collect_worker_locked (&self->main_worker, ranges);
  cancellable = g_object_ref (self->cancellable);
  g_mutex_unlock (&self->lock);

  for (guint i = 0; i < ranges->len; i++)
    {
      Range *range = &g_array_index (ranges, Range, i);

      for (guint j = range->start; j < range->end && !fiber_batch_is_done (range->batch); j++)
        _fiber_batch_complete_item_take (range->batch, j, NULL,
                                         g_error_new_literal (FIBER_ERROR, FIBER_ERROR_CLOSED,
                                                              "the pool was terminated"));
      fiber_batch_unref (range->batch);
    }
  /* Then wake every coroutine waiting in an await, so that the thread can
   * exit; their items are complete already. */
  g_cancellable_cancel (cancellable);
  wake_scheduler (self);
}

static gboolean
fiber_coroutine_pool_join (FiberPool  *pool,
                           int         timeout_msec,
                           GError    **error)
{
  Core *self = FIBER_COROUTINE_POOL (pool)->core;
  gint64 deadline = timeout_msec < 0 ? -1
                    : g_get_monotonic_time () + (gint64) timeout_msec * 1000;
  GThread *thread;

  if (self->thread != NULL && self->thread == g_thread_self ())
    {
      g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_STATE,
                           "a coroutine pool cannot be joined from its own scheduler thread");
      return FALSE;
    }

  wake_scheduler (self);
  g_mutex_lock (&self->lock);
  while (self->thread != NULL && !self->exited)
    {
      if (deadline < 0)
        g_cond_wait (&self->cond, &self->lock);
      else if (!g_cond_wait_until (&self->cond, &self->lock, deadline))
        {
          g_mutex_unlock (&self->lock);
          g_set_error (error, FIBER_ERROR, FIBER_ERROR_TIMEOUT,
                       "the coroutine pool's tasks did not finish within %d ms",
                       timeout_msec);
          return FALSE;
        }
    }
  thread = g_steal_pointer (&self->thread);
  g_mutex_unlock (&self->lock);

  if (thread != NULL)
    g_thread_join (thread);
  return TRUE;
}

static void
fiber_coroutine_pool_interrupt (FiberPool *pool)
{
  Core *self = FIBER_COROUTINE_POOL (pool)->core;
  g_autoptr(GCancellable) old = NULL;

  old = _fiber_pool_swap_cancellable (&self->lock, &self->cancellable, NULL);
  g_cancellable_cancel (old);
}

static gboolean
fiber_coroutine_pool_supports_func (FiberPool *pool)
{
  return TRUE;
}

/* ---- GObject -------------------------------------------------------------------- */

static gboolean
fiber_coroutine_pool_initable_init (GInitable     *initable,
                                    GCancellable  *cancellable,
                                    GError       **error)
{
  return ensure_started (FIBER_COROUTINE_POOL (initable), error);
}

static void
fiber_coroutine_pool_initable_iface_init (GInitableIface *iface)
{
  iface->init = fiber_coroutine_pool_initable_init;
}

static void
fiber_coroutine_pool_constructed (GObject *object)
{
  FiberCoroutinePool *self = FIBER_COROUTINE_POOL (object);
  GVariant *initargs;

  G_OBJECT_CLASS (fiber_coroutine_pool_parent_class)->constructed (object);

  self->core->max_workers = fiber_pool_get_processes (FIBER_POOL (self));
  self->core->initializer = g_strdup (_fiber_pool_get_initializer (FIBER_POOL (self)));
  initargs = _fiber_pool_get_initargs (FIBER_POOL (self));
  self->core->initargs = initargs != NULL ? g_variant_ref (initargs) : NULL;
}

static void
fiber_coroutine_pool_dispose (GObject *object)
{
  FiberCoroutinePool *self = FIBER_COROUTINE_POOL (object);
  GThread *thread;

  _fiber_pool_shutdown_for_dispose (FIBER_POOL (object));

  /* Still there when the last reference was dropped on the scheduler
   * thread, which join cannot wait for: terminated, it exits by itself once
   * its coroutines have returned, keeping the Core alive until then. */
  g_mutex_lock (&self->core->lock);
  thread = g_steal_pointer (&self->core->thread);
  g_mutex_unlock (&self->core->lock);
  g_clear_pointer (&thread, g_thread_unref);

  G_OBJECT_CLASS (fiber_coroutine_pool_parent_class)->dispose (object);
}

static void
fiber_coroutine_pool_finalize (GObject *object)
{
  FiberCoroutinePool *self = FIBER_COROUTINE_POOL (object);

  g_clear_pointer (&self->core, core_unref);

  G_OBJECT_CLASS (fiber_coroutine_pool_parent_class)->finalize (object);
}

static void
fiber_coroutine_pool_get_property (GObject    *object,
                                   guint       prop_id,
                                   GValue     *value,
                                   GParamSpec *pspec)
{
  FiberCoroutinePool *self = FIBER_COROUTINE_POOL (object);

  switch (prop_id)
    {
    case PROP_STACK_SIZE:
      g_value_set_uint (value, self->core->stack_size);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
fiber_coroutine_pool_set_property (GObject      *object,
                                   guint         prop_id,
                                   const GValue *value,
                                   GParamSpec   *pspec)
{
  FiberCoroutinePool *self = FIBER_COROUTINE_POOL (object);

  switch (prop_id)
    {
    case PROP_STACK_SIZE:
      self->core->stack_size = g_value_get_uint (value);
      if (self->core->stack_size == 0)
        self->core->stack_size = FIBER_STACK_DEFAULT_SIZE;
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
fiber_coroutine_pool_class_init (FiberCoroutinePoolClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  FiberPoolClass *pool_class = FIBER_POOL_CLASS (klass);

  object_class->constructed = fiber_coroutine_pool_constructed;
  object_class->dispose = fiber_coroutine_pool_dispose;
  object_class->finalize = fiber_coroutine_pool_finalize;
  object_class->get_property = fiber_coroutine_pool_get_property;
  object_class->set_property = fiber_coroutine_pool_set_property;

  pool_class->submit = fiber_coroutine_pool_submit;
  pool_class->close = fiber_coroutine_pool_close;
  pool_class->terminate = fiber_coroutine_pool_terminate;
  pool_class->join = fiber_coroutine_pool_join;
  pool_class->interrupt = fiber_coroutine_pool_interrupt;
  pool_class->supports_func = fiber_coroutine_pool_supports_func;

  /**
   * FiberCoroutinePool:stack-size:
   *
   * The usable size in bytes of each coroutine's stack, rounded up to whole
   * pages; 0 means the default of 256 KiB.  Values outside 16 KiB to
   * 1 GiB make the pool fail to start with %FIBER_ERROR_INVALID_ARGUMENT.
   * Stacks are reserved, not committed: only the pages a task touches use
   * memory.
   */
  properties[PROP_STACK_SIZE] =
    g_param_spec_uint ("stack-size", NULL, NULL, 0, G_MAXUINT, FIBER_STACK_DEFAULT_SIZE,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
fiber_coroutine_pool_init (FiberCoroutinePool *self)
{
  self->core = core_new ();
}

/**
 * fiber_coroutine_pool_new:
 * @processes: how many tasks run at once (coroutines); 0 means one per CPU
 * @stack_size: the stack size of each coroutine in bytes; 0 means 256 KiB
 * @error: return location for an error
 *
 * Creates a `coroutine` pool and starts its scheduler thread.
 * [ctor@Fiber.Pool.new] with `"coroutine"` does the same by name, with the
 * default stack size.
 *
 * Returns: (transfer full) (type FiberCoroutinePool): a new pool, or %NULL
 *   with %FIBER_ERROR_INVALID_ARGUMENT for a stack size out of range
 */
FiberPool *
fiber_coroutine_pool_new (guint    processes,
                          guint    stack_size,
                          GError **error)
{
  return g_initable_new (FIBER_TYPE_COROUTINE_POOL, NULL, error,
                         "processes", processes,
                         "stack-size", stack_size,
                         "pool-type", "coroutine",
                         NULL);
}

/**
 * fiber_coroutine_pool_get_stack_size:
 * @self: a #FiberCoroutinePool
 *
 * Gets the stack size of the pool's coroutines,
 * [property@Fiber.CoroutinePool:stack-size] (the default when it was
 * set to 0).
 *
 * Returns: the stack size of the pool's coroutines in bytes
 */
guint
fiber_coroutine_pool_get_stack_size (FiberCoroutinePool *self)
{
  g_return_val_if_fail (FIBER_IS_COROUTINE_POOL (self), 0);
  return self->core->stack_size;
}

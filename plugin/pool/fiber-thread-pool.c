/* fiber-thread-pool.c — the `thread` pool type: a GThreadPool in this process
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "fiber-error.h"
#include "fiber-pool-private.h"
#include "fiber-thread-pool.h"

/**
 * FiberThreadPool:
 *
 * The `thread` pool type: tasks run on [property@Fiber.Pool:processes]
 * threads of this process (an exclusive #GThreadPool).
 *
 * Besides registered tasks it runs caller-supplied functions
 * ([method@Fiber.Pool.apply_func]), which is how language bindings run
 * their own closures.  Work is handed to the threads in chunks of
 * [method@Fiber.Batch.get_chunksize] items.
 *
 * [method@Fiber.Pool.interrupt] cancels the #GCancellable of the tasks
 * running at that moment; those that fail then fail with
 * %FIBER_ERROR_INTERRUPTED.  The pool stays usable: later tasks get a fresh
 * cancellable.  [method@Fiber.Pool.terminate] completes every unfinished
 * item with %FIBER_ERROR_CLOSED at once and cancels the running tasks;
 * [method@Fiber.Pool.join] then waits for the threads, which cannot be
 * killed, to return from them.
 *
 * The [property@Fiber.Pool:initializer] task runs once on each thread
 * before its first task; if it fails, the items given to that thread fail
 * with its error.  [property@Fiber.Pool:maxtasksperchild] does not apply
 * to threads and is ignored.
 */

typedef struct
{
  FiberBatch *batch;
  guint       start;
  guint       end;
  GList       link;      /* in FiberThreadPool.active */
} Chunk;

/* The part of a batch no runner has taken yet: items [next, end). */
typedef struct
{
  FiberBatch *batch;
  guint       next;
  guint       end;
  GList       link;      /* in FiberThreadPool.pending */
} Pending;

/* Everything the pool's threads use.  Each runner pushed to `threads`
 * holds a reference until it returns: the pool's last reference may be
 * dropped on a runner (by a task, or by a closure's destroy notify when the
 * runner releases a batch), and dispose cannot join the thread it runs on,
 * so the runner goes on with this after the FiberThreadPool is gone. */
typedef struct
{
  gatomicrefcount ref_count;
  char         *initializer;   /* copies of the construct-only properties */
  GVariant     *initargs;
  GThreadPool  *threads;
  /* read for every task; written rarely (interrupt, terminate) */
  GCancellable *cancellable;   /* of the tasks starting now */
  int           generation;    /* atomic: bumped when `cancellable` is replaced */
  int           terminated;    /* atomic */
  GHashTable   *initialized;   /* GThread* → GError* (NULL when the initializer succeeded) */

  /* Keeps the fields above off the cache lines that the lock and the
   * queues below, written for every task, bounce between the threads. */
  char          padding[64];

  GMutex        lock;
  GCond         cond;          /* signalled when `active` and `pending` become empty */
  guint         n_joiners;     /* threads waiting on `cond` */
  GQueue        active;        /* Chunk: running */
  GQueue        pending;       /* Pending: not taken yet */
  guint64       n_pending_chunks; /* chunks left in `pending` */
  int           n_pending;     /* atomic mirror of pending.length, for lingering runners */
  guint         n_runners;     /* runners pushed to `threads` and not returned */
  guint         n_busy;        /* runners running a chunk */
  int           n_lingering;   /* atomic: runners watching for work (at most one) */
} Core;

struct _FiberThreadPool
{
  FiberPool  parent_instance;

  Core      *core;
};

static void fiber_thread_pool_initable_iface_init (GInitableIface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (FiberThreadPool, fiber_thread_pool, FIBER_TYPE_POOL,
                               G_IMPLEMENT_INTERFACE (G_TYPE_INITABLE,
                                                      fiber_thread_pool_initable_iface_init))

static GPrivate current_pool;   /* the Core of the runner on this thread */

static void
free_error (gpointer data)
{
  if (data != NULL)
    g_error_free (data);
}

static Core *
core_new (void)
{
  Core *self = g_new0 (Core, 1);

  g_atomic_ref_count_init (&self->ref_count);
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  self->cancellable = g_cancellable_new ();
  self->initialized = g_hash_table_new_full (NULL, NULL, NULL, free_error);
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
  /* the pool's dispose has released the threads */
  g_assert (self->threads == NULL);
  g_free (self->initializer);
  g_clear_pointer (&self->initargs, g_variant_unref);
  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->initialized, g_hash_table_unref);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
  g_free (self);
}

/* Takes the lock for the hot paths (submitting, a runner taking its next
 * chunk).  Their critical sections are short, but a GMutex sleeps in the
 * kernel as soon as it is contended, and the submitting thread's unlock
 * then pays a futex wake: with small tasks that was a system call per
 * task.  Retrying for a moment first usually finds it free. */
static void
lock_hot (Core *self)
{
  for (guint i = 0; i < 200; i++)
    {
      if (g_mutex_trylock (&self->lock))
        return;
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause ();
#endif
    }
  g_mutex_lock (&self->lock);
}

/* Runs the initializer on this thread once; returns a copy of its error. */
static GError *
ensure_initialized (Core *self)
{
  const char *initializer = self->initializer;
  GThread *thread = g_thread_self ();
  GError *error = NULL;
  gpointer stored;

  if (initializer == NULL)
    return NULL;

  g_mutex_lock (&self->lock);
  if (g_hash_table_lookup_extended (self->initialized, thread, NULL, &stored))
    {
      error = stored != NULL ? g_error_copy (stored) : NULL;
      g_mutex_unlock (&self->lock);
      return error;
    }
  g_mutex_unlock (&self->lock);

  _fiber_pool_run_initializer (initializer, self->initargs, &error);

  g_mutex_lock (&self->lock);
  g_hash_table_insert (self->initialized, thread, error != NULL ? g_error_copy (error) : NULL);
  g_mutex_unlock (&self->lock);
  return error;
}

/* Runs the items of @chunk on this thread.  @cancellable and @generation
 * cache the pool's current cancellable across the chunks of one runner. */
static void
run_chunk (Core          *self,
           Chunk         *chunk,
           GCancellable **cancellable,
           int           *generation)
{
  FiberBatch *batch = chunk->batch;
  g_autoptr(GError) init_error = NULL;

  if (!g_atomic_int_get (&self->terminated))
    init_error = ensure_initialized (self);

  for (guint i = chunk->start; i < chunk->end; i++)
    {
      GError *error = NULL;
      GVariant *value;

      if (g_atomic_int_get (&self->terminated) || fiber_batch_is_done (batch))
        break;
      if (init_error != NULL)
        {
          _fiber_batch_complete_item_take (batch, i, NULL, g_error_copy (init_error));
          continue;
        }

      /* A task sees the cancellable current when it starts: interrupt()
       * cancels running tasks, not the ones after them. */
      if (g_atomic_int_get (&self->generation) != *generation)
        {
          g_mutex_lock (&self->lock);
          g_set_object (cancellable, self->cancellable);
          *generation = self->generation;
          g_mutex_unlock (&self->lock);
        }

      value = fiber_batch_invoke (batch, i, *cancellable, &error);
      if (value == NULL)
        error = _fiber_pool_item_error (error, *cancellable);
      _fiber_batch_complete_item_take (batch, i, value, error);
    }
}

/* Under the lock: carves the next chunk off the first pending batch into
 * @reuse (or a new Chunk) and makes it active; NULL (and @reuse freed)
 * when nothing is pending.  Chunks are made here, by the runners, so that
 * submitting a map of N items costs O(1) and not N allocations. */
static Chunk *
take_chunk_locked (Core  *self,
                   Chunk *reuse)
{
  Pending *pending;
  Chunk *chunk;

  if (self->pending.head == NULL)
    {
      g_free (reuse);
      return NULL;
    }

  pending = self->pending.head->data;
  chunk = reuse != NULL ? reuse : g_new0 (Chunk, 1);
  chunk->start = pending->next;
  chunk->end = pending->next + MIN (MAX (fiber_batch_get_chunksize (pending->batch), 1),
                                    pending->end - pending->next);
  chunk->link.data = chunk;
  pending->next = chunk->end;
  if (pending->next == pending->end)
    {
      g_queue_unlink (&self->pending, &pending->link);
      chunk->batch = pending->batch;       /* takes over its reference */
      g_free (pending);
    }
  else
    chunk->batch = fiber_batch_ref (pending->batch);

  self->n_pending_chunks--;
  g_atomic_int_set (&self->n_pending, (int) self->pending.length);
  g_queue_push_tail_link (&self->active, &chunk->link);
  self->n_busy++;
  return chunk;
}

/* How long a runner that ran out of chunks watches for more before it
 * leaves (and the next submission has to wake a thread). */
#define RUNNER_LINGER_USEC 50

/* Watches n_pending for up to RUNNER_LINGER_USEC. */
static void
linger (Core *self)
{
  gint64 deadline = g_get_monotonic_time () + RUNNER_LINGER_USEC;

  do
    {
      for (guint i = 0; i < 64; i++)
        {
          if (g_atomic_int_get (&self->n_pending) > 0)
            return;
          g_thread_yield ();
        }
    }
  while (g_get_monotonic_time () < deadline);
}

/* What the GThreadPool runs: takes chunks until none is left.  While a
 * runner per thread is busy, submitting only queues work, so a steady
 * stream of small tasks does not cost a thread wake-up (a futex system
 * call and a context switch) per task.  Finishing a chunk and taking the
 * next is one critical section.  @data is the runner's reference to the
 * Core. */
static void
run_queued_chunks (gpointer data,
                   gpointer user_data)
{
  Core *self = data;
  g_autoptr(GCancellable) cancellable = NULL;
  int generation = -1;
  gboolean may_linger = TRUE;
  gboolean lingering;
  Chunk *chunk = NULL;

  g_private_set (&current_pool, self);

  for (;;)
    {
      FiberBatch *finished = NULL;

      lock_hot (self);
      if (chunk != NULL)
        {
          g_queue_unlink (&self->active, &chunk->link);
          finished = g_steal_pointer (&chunk->batch);
          self->n_busy--;
          /* GCond does not count waiters: without this check every
           * drained queue cost a futex call with the lock held. */
          if (self->n_joiners > 0 && self->active.length == 0 && self->pending.length == 0)
            g_cond_broadcast (&self->cond);
        }
      chunk = take_chunk_locked (self, chunk);
      /* One idle runner lingers; the others leave at once, so that on a
       * small machine they do not compete with the submitting thread. */
      lingering = chunk == NULL && may_linger &&
                  g_atomic_int_get (&self->n_lingering) == 0;
      if (lingering)
        g_atomic_int_inc (&self->n_lingering);
      else if (chunk == NULL)
        self->n_runners--;
      g_mutex_unlock (&self->lock);

      g_clear_pointer (&finished, fiber_batch_unref);
      if (chunk != NULL)
        {
          run_chunk (self, chunk, &cancellable, &generation);
          may_linger = TRUE;
        }
      else if (lingering)
        {
          /* then look once more under the lock, and leave if still idle */
          linger (self);
          g_atomic_int_add (&self->n_lingering, -1);
          may_linger = FALSE;
        }
      else
        break;
    }

  g_private_set (&current_pool, NULL);
  core_unref (self);
}

static gboolean
ensure_threads (FiberThreadPool  *pool,
                GError          **error)
{
  Core *self = pool->core;
  GThreadPool *threads;
  guint n = fiber_pool_get_processes (FIBER_POOL (pool));

  if (g_atomic_pointer_get (&self->threads) != NULL)
    return TRUE;

  g_mutex_lock (&self->lock);
  if (self->threads == NULL)
    {
      /* exclusive: the threads are the pool's own and exit on join */
      threads = g_thread_pool_new (run_queued_chunks, NULL, (int) MIN (n, G_MAXINT), TRUE, error);
      g_atomic_pointer_set (&self->threads, threads);
    }
  g_mutex_unlock (&self->lock);
  return self->threads != NULL;
}

static gboolean
fiber_thread_pool_initable_init (GInitable     *initable,
                                 GCancellable  *cancellable,
                                 GError       **error)
{
  return ensure_threads (FIBER_THREAD_POOL (initable), error);
}

static void
fiber_thread_pool_initable_iface_init (GInitableIface *iface)
{
  iface->init = fiber_thread_pool_initable_init;
}

static gboolean
fiber_thread_pool_submit (FiberPool   *pool,
                          FiberBatch  *batch,
                          GError     **error)
{
  Core *self = FIBER_THREAD_POOL (pool)->core;
  guint n_items = fiber_batch_get_n_items (batch);
  guint chunksize = MAX (fiber_batch_get_chunksize (batch), 1);
  guint max_runners;
  Pending *pending;

  if (!ensure_threads (FIBER_THREAD_POOL (pool), error))
    return FALSE;

  /* Under the lock, so that terminate() sees either none or all of the
   * items; submitting never waits for the threads. */
  lock_hot (self);
  if (g_atomic_int_get (&self->terminated))
    {
      g_mutex_unlock (&self->lock);
      g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_CLOSED,
                           "the pool was terminated");
      return FALSE;
    }
  if (n_items == 0)
    {
      g_mutex_unlock (&self->lock);
      return TRUE;
    }
  pending = g_new0 (Pending, 1);
  pending->batch = fiber_batch_ref (batch);
  pending->next = 0;
  pending->end = n_items;
  pending->link.data = pending;
  g_queue_push_tail_link (&self->pending, &pending->link);
  self->n_pending_chunks += (n_items - 1) / chunksize + 1;
  g_atomic_int_set (&self->n_pending, (int) self->pending.length);
  /* A runner never leaves while chunks are pending (it checks under the
   * lock): start runners until every pending chunk has an idle one, or
   * every thread has one. */
  if (self->n_runners - self->n_busy < self->n_pending_chunks)
    {
      max_runners = (guint) MAX (g_thread_pool_get_max_threads (self->threads), 1);
      while (self->n_runners < max_runners &&
             self->n_runners - self->n_busy < self->n_pending_chunks)
        {
          self->n_runners++;
          /* Only fails to start an extra thread; the runner is queued anyway. */
          g_thread_pool_push (self->threads, core_ref (self), NULL);
        }
    }
  g_mutex_unlock (&self->lock);
  return TRUE;
}

static void
fiber_thread_pool_terminate (FiberPool *pool)
{
  Core *self = FIBER_THREAD_POOL (pool)->core;
  g_autoptr(GPtrArray) batches = g_ptr_array_new_with_free_func ((GDestroyNotify) fiber_batch_unref);
  g_autoptr(GArray) ranges = g_array_new (FALSE, FALSE, sizeof (guint) * 2);
  g_autoptr(GCancellable) cancellable = NULL;
  GList *link;

  g_mutex_lock (&self->lock);
  g_atomic_int_set (&self->terminated, 1);
  for (GList *l = self->active.head; l != NULL; l = l->next)
    {
      Chunk *chunk = l->data;
      guint range[2] = { chunk->start, chunk->end };

      g_ptr_array_add (batches, fiber_batch_ref (chunk->batch));
      g_array_append_vals (ranges, range, 1);
    }
  /* nothing pending will run any more */
  while ((link = g_queue_pop_head_link (&self->pending)) != NULL)
    {
      Pending *pending = link->data;
      guint range[2] = { pending->next, pending->end };

      g_ptr_array_add (batches, pending->batch);     /* takes its reference */
      g_array_append_vals (ranges, range, 1);
      g_free (pending);
    }
  self->n_pending_chunks = 0;
  g_atomic_int_set (&self->n_pending, 0);
  if (self->active.length == 0)
    g_cond_broadcast (&self->cond);
  cancellable = g_object_ref (self->cancellable);
  g_mutex_unlock (&self->lock);

  /* Items that already completed refuse the second completion.  The
   * running tasks are cancelled only afterwards, so that their items report
   * the termination rather than an interruption. */
  for (guint i = 0; i < batches->len; i++)
    {
      FiberBatch *batch = g_ptr_array_index (batches, i);
      guint *range = &g_array_index (ranges, guint, 2 * i);

      for (guint j = range[0]; j < range[1] && !fiber_batch_is_done (batch); j++)
        _fiber_batch_complete_item_take (batch, j, NULL,
                                         g_error_new_literal (FIBER_ERROR, FIBER_ERROR_CLOSED,
                                                              "the pool was terminated"));
    }
  g_cancellable_cancel (cancellable);
}

static gboolean
fiber_thread_pool_join (FiberPool  *pool,
                        int         timeout_msec,
                        GError    **error)
{
  Core *self = FIBER_THREAD_POOL (pool)->core;
  gint64 deadline = timeout_msec < 0 ? -1
                    : g_get_monotonic_time () + (gint64) timeout_msec * 1000;
  GThreadPool *threads;

  if (g_private_get (&current_pool) == self)
    {
      g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_STATE,
                           "a thread pool cannot be joined from one of its own tasks");
      return FALSE;
    }

  g_mutex_lock (&self->lock);
  while (self->active.length > 0 || self->pending.length > 0)
    {
      gboolean woken = TRUE;

      self->n_joiners++;
      if (deadline < 0)
        g_cond_wait (&self->cond, &self->lock);
      else
        woken = g_cond_wait_until (&self->cond, &self->lock, deadline);
      self->n_joiners--;
      if (!woken)
        {
          g_mutex_unlock (&self->lock);
          g_set_error (error, FIBER_ERROR, FIBER_ERROR_TIMEOUT,
                       "the thread pool's tasks did not finish within %d ms", timeout_msec);
          return FALSE;
        }
    }
  threads = g_steal_pointer (&self->threads);
  g_mutex_unlock (&self->lock);

  /* Nothing is queued any more: this only waits for the threads to exit. */
  if (threads != NULL)
    g_thread_pool_free (threads, FALSE, TRUE);
  return TRUE;
}

static void
fiber_thread_pool_interrupt (FiberPool *pool)
{
  Core *self = FIBER_THREAD_POOL (pool)->core;
  g_autoptr(GCancellable) old = NULL;

  old = _fiber_pool_swap_cancellable (&self->lock, &self->cancellable, &self->generation);
  g_cancellable_cancel (old);
}

static gboolean
fiber_thread_pool_supports_func (FiberPool *pool)
{
  return TRUE;
}

static void
fiber_thread_pool_constructed (GObject *object)
{
  FiberThreadPool *self = FIBER_THREAD_POOL (object);
  GVariant *initargs;

  G_OBJECT_CLASS (fiber_thread_pool_parent_class)->constructed (object);

  self->core->initializer = g_strdup (_fiber_pool_get_initializer (FIBER_POOL (self)));
  initargs = _fiber_pool_get_initargs (FIBER_POOL (self));
  self->core->initargs = initargs != NULL ? g_variant_ref (initargs) : NULL;
}

static void
fiber_thread_pool_dispose (GObject *object)
{
  FiberThreadPool *self = FIBER_THREAD_POOL (object);
  GThreadPool *threads;

  _fiber_pool_shutdown_for_dispose (FIBER_POOL (object));

  /* Still there when the last reference was dropped on one of the pool's
   * own threads, which join cannot wait for.  The threads are let go
   * without waiting: they exit when their runners have returned (the last
   * one frees the GThreadPool), and each runner keeps the Core alive. */
  g_mutex_lock (&self->core->lock);
  threads = g_steal_pointer (&self->core->threads);
  g_mutex_unlock (&self->core->lock);
  if (threads != NULL)
    g_thread_pool_free (threads, FALSE, FALSE);

  G_OBJECT_CLASS (fiber_thread_pool_parent_class)->dispose (object);
}

static void
fiber_thread_pool_finalize (GObject *object)
{
  FiberThreadPool *self = FIBER_THREAD_POOL (object);

  g_clear_pointer (&self->core, core_unref);

  G_OBJECT_CLASS (fiber_thread_pool_parent_class)->finalize (object);
}

static void
fiber_thread_pool_class_init (FiberThreadPoolClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  FiberPoolClass *pool_class = FIBER_POOL_CLASS (klass);

  object_class->constructed = fiber_thread_pool_constructed;
  object_class->dispose = fiber_thread_pool_dispose;
  object_class->finalize = fiber_thread_pool_finalize;

  pool_class->submit = fiber_thread_pool_submit;
  pool_class->terminate = fiber_thread_pool_terminate;
  pool_class->join = fiber_thread_pool_join;
  pool_class->interrupt = fiber_thread_pool_interrupt;
  pool_class->supports_func = fiber_thread_pool_supports_func;
}

static void
fiber_thread_pool_init (FiberThreadPool *self)
{
  self->core = core_new ();
}

/**
 * fiber_thread_pool_new:
 * @processes: the number of threads; 0 means one per CPU
 * @error: return location for an error
 *
 * Creates a `thread` pool.  [ctor@Fiber.Pool.new] with `"thread"` does the
 * same by name.
 *
 * Returns: (transfer full) (type FiberThreadPool): a new pool, or %NULL
 *   with @error set when the threads cannot be started
 */
FiberPool *
fiber_thread_pool_new (guint    processes,
                       GError **error)
{
  return g_initable_new (FIBER_TYPE_THREAD_POOL, NULL, error,
                         "processes", processes,
                         "pool-type", "thread",
                         NULL);
}

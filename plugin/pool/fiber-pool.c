/* fiber-pool.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "fiber-error.h"
#include "fiber-init.h"
#include "fiber-pool-private.h"
#include "fiber-pool-registry-private.h"

/**
 * FiberPool:
 *
 * A pool of workers with the API of `multiprocessing.Pool` and Fiber's
 * resilient pool: `apply`, `map`, `imap`, `imap_unordered` and `starmap`,
 * each synchronous and asynchronous, then `close`/`terminate` and `join`.
 *
 * A pool type is a subclass: `process` and `ndprocess`
 * ([class@Fiber.ProcessPool]) run tasks in worker processes, `thread` in
 * threads of this process, `coroutine` in stackful coroutines, `remote` in
 * jobs of a cluster scheduler.  Create one by name with [ctor@Fiber.Pool.new].
 *
 * Work is named by a registered task (see [func@Fiber.task_register]) and
 * passed as [struct@GLib.Variant] arguments.  `map` calls the task once per
 * element of an array; elements of an `av` array are unboxed first, so the
 * task sees the inner value.  `starmap` requires every element to be a
 * tuple.  The results of `map` are an `av` array in input order.
 *
 * A task that fails delivers its error (%FIBER_ERROR_TASK_FAILED with the
 * worker's message) and is not retried.  Only a lost worker makes its
 * unfinished items run again, at most [property@Fiber.Pool:max-retries]
 * times.  Every result is delivered exactly once.
 *
 * Asynchronous calls return a [class@Fiber.ApplyResult] (or
 * [class@Fiber.MapResult]) that is also the [iface@Gio.AsyncResult] given to
 * the callback.  Callbacks run on the thread-default main context of the
 * caller; programs that run no GLib main loop (multiprocessing-style code)
 * set [property@Fiber.Pool:result-thread] and get their callbacks on the
 * library's result thread instead, like multiprocessing's result handler.
 * Synchronous calls never need a main loop.
 *
 * ## Writing a pool type
 *
 * Subclass #FiberPool and implement `submit`: every [struct@Fiber.Batch]
 * handed to it must have each item completed exactly once with
 * [method@Fiber.Batch.complete_item], from any thread.  Register the type
 * on the `fiber-pool-type` extension point so that it can be created by name.
 */

typedef struct
{
  char       *pool_type;
  guint       processes;
  char       *initializer;
  GVariant   *initargs;
  guint       maxtasksperchild;
  guint       max_retries;
  gboolean    resilient;
  gboolean    result_thread;
  gint        closed;       /* atomic */
  gboolean    terminated;
  gboolean    joined;
} FiberPoolPrivate;

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE (FiberPool, fiber_pool, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_POOL_TYPE,
  PROP_PROCESSES,
  PROP_INITIALIZER,
  PROP_INITARGS,
  PROP_MAXTASKSPERCHILD,
  PROP_RESILIENT,
  PROP_MAX_RETRIES,
  PROP_RESULT_THREAD,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

#define DEFAULT_MAX_RETRIES 3

/* ---- the process-wide result thread ---------------------------------- */

static gpointer
result_thread_main (gpointer data)
{
  GMainContext *context = data;
  GMainLoop *loop = g_main_loop_new (context, FALSE);

  g_main_context_push_thread_default (context);
  g_main_loop_run (loop);     /* lives as long as the process */
  g_main_context_pop_thread_default (context);
  g_main_loop_unref (loop);
  return NULL;
}

static GMainContext *
get_result_thread_context (void)
{
  static GMainContext *context;

  if (g_once_init_enter (&context))
    {
      GMainContext *ctx = g_main_context_new ();
      g_thread_unref (g_thread_new ("fiber-results", result_thread_main, ctx));
      g_once_init_leave (&context, ctx);
    }
  return context;
}

GMainContext *
_fiber_pool_get_callback_context (FiberPool *self)
{
  FiberPoolPrivate *priv = fiber_pool_get_instance_private (self);

  return priv->result_thread ? get_result_thread_context () : NULL;
}

/* ---- GObject ---------------------------------------------------------- */

static void
fiber_pool_constructed (GObject *object)
{
  FiberPool *self = FIBER_POOL (object);
  FiberPoolPrivate *priv = fiber_pool_get_instance_private (self);

  G_OBJECT_CLASS (fiber_pool_parent_class)->constructed (object);

  if (priv->processes == 0)
    priv->processes = fiber_cpu_count ();
}

static void
fiber_pool_finalize (GObject *object)
{
  FiberPool *self = FIBER_POOL (object);
  FiberPoolPrivate *priv = fiber_pool_get_instance_private (self);

  g_free (priv->pool_type);
  g_free (priv->initializer);
  g_clear_pointer (&priv->initargs, g_variant_unref);

  G_OBJECT_CLASS (fiber_pool_parent_class)->finalize (object);
}

static void
fiber_pool_get_property (GObject    *object,
                         guint       prop_id,
                         GValue     *value,
                         GParamSpec *pspec)
{
  FiberPool *self = FIBER_POOL (object);
  FiberPoolPrivate *priv = fiber_pool_get_instance_private (self);

  switch (prop_id)
    {
    case PROP_POOL_TYPE:
      g_value_set_string (value, priv->pool_type);
      break;
    case PROP_PROCESSES:
      g_value_set_uint (value, priv->processes);
      break;
    case PROP_INITIALIZER:
      g_value_set_string (value, priv->initializer);
      break;
    case PROP_INITARGS:
      g_value_set_variant (value, priv->initargs);
      break;
    case PROP_MAXTASKSPERCHILD:
      g_value_set_uint (value, priv->maxtasksperchild);
      break;
    case PROP_RESILIENT:
      g_value_set_boolean (value, priv->resilient);
      break;
    case PROP_MAX_RETRIES:
      g_value_set_uint (value, priv->max_retries);
      break;
    case PROP_RESULT_THREAD:
      g_value_set_boolean (value, priv->result_thread);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
fiber_pool_set_property (GObject      *object,
                         guint         prop_id,
                         const GValue *value,
                         GParamSpec   *pspec)
{
  FiberPool *self = FIBER_POOL (object);
  FiberPoolPrivate *priv = fiber_pool_get_instance_private (self);

  switch (prop_id)
    {
    case PROP_POOL_TYPE:
      _fiber_pool_set_pool_type (self, g_value_get_string (value));
      break;
    case PROP_PROCESSES:
      priv->processes = g_value_get_uint (value);
      break;
    case PROP_INITIALIZER:
      g_free (priv->initializer);
      priv->initializer = g_value_dup_string (value);
      break;
    case PROP_INITARGS:
      g_clear_pointer (&priv->initargs, g_variant_unref);
      priv->initargs = g_value_dup_variant (value);
      break;
    case PROP_MAXTASKSPERCHILD:
      priv->maxtasksperchild = g_value_get_uint (value);
      break;
    case PROP_RESILIENT:
      priv->resilient = g_value_get_boolean (value);
      break;
    case PROP_MAX_RETRIES:
      priv->max_retries = g_value_get_uint (value);
      break;
    case PROP_RESULT_THREAD:
      /* G_PARAM_EXPLICIT_NOTIFY: announce changes only. */
      if (priv->result_thread != g_value_get_boolean (value))
        {
          priv->result_thread = g_value_get_boolean (value);
          g_object_notify_by_pspec (object, pspec);
        }
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static gboolean
fiber_pool_real_supports_func (FiberPool *self)
{
  return FALSE;
}

static void
fiber_pool_class_init (FiberPoolClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = fiber_pool_constructed;
  object_class->finalize = fiber_pool_finalize;
  object_class->get_property = fiber_pool_get_property;
  object_class->set_property = fiber_pool_set_property;

  klass->supports_func = fiber_pool_real_supports_func;

  /**
   * FiberPool:pool-type:
   *
   * The name this pool was created under (`process`, `thread`, …).
   */
  properties[PROP_POOL_TYPE] =
    g_param_spec_string ("pool-type", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * FiberPool:processes:
   *
   * The number of workers; 0 at construction means one per CPU
   * ([func@Fiber.cpu_count]).  Reads back the resolved number.
   */
  properties[PROP_PROCESSES] =
    g_param_spec_uint ("processes", NULL, NULL, 0, 65536, 0,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * FiberPool:initializer:
   *
   * A registered task each worker runs once, with
   * [property@Fiber.Pool:initargs], before its first task.
   */
  properties[PROP_INITIALIZER] =
    g_param_spec_string ("initializer", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * FiberPool:initargs:
   *
   * The arguments of the [property@Fiber.Pool:initializer] task.
   */
  properties[PROP_INITARGS] =
    g_param_spec_variant ("initargs", NULL, NULL, G_VARIANT_TYPE_ANY, NULL,
                          G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * FiberPool:maxtasksperchild:
   *
   * How many tasks a worker runs before it is replaced by a fresh one;
   * 0 means workers live as long as the pool.
   */
  properties[PROP_MAXTASKSPERCHILD] =
    g_param_spec_uint ("maxtasksperchild", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * FiberPool:resilient:
   *
   * Whether lost workers are replaced and their unfinished items run again
   * (Fiber's resilient pool).  When %FALSE, the items of a lost worker fail
   * with %FIBER_ERROR_WORKER_LOST at once.
   */
  properties[PROP_RESILIENT] =
    g_param_spec_boolean ("resilient", NULL, NULL, TRUE,
                          G_PARAM_READWRITE | G_PARAM_CONSTRUCT | G_PARAM_STATIC_STRINGS);

  /**
   * FiberPool:max-retries:
   *
   * How often an item runs again after the worker running it was lost,
   * before it fails with %FIBER_ERROR_WORKER_LOST.  Tasks that fail by
   * themselves are never retried.
   */
  properties[PROP_MAX_RETRIES] =
    g_param_spec_uint ("max-retries", NULL, NULL, 0, 1000, DEFAULT_MAX_RETRIES,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT | G_PARAM_STATIC_STRINGS);

  /**
   * FiberPool:result-thread:
   *
   * When %TRUE, callbacks of asynchronous calls run on the library's
   * result thread (one per process, like multiprocessing's result handler)
   * instead of the caller's thread-default main context.  For hosts that run
   * no GLib main loop; the callbacks then run concurrently with the caller
   * and must be thread-safe.
   */
  properties[PROP_RESULT_THREAD] =
    g_param_spec_boolean ("result-thread", NULL, NULL, FALSE,
                          G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
fiber_pool_init (FiberPool *self)
{
  FiberPoolPrivate *priv = fiber_pool_get_instance_private (self);

  priv->resilient = TRUE;
  priv->max_retries = DEFAULT_MAX_RETRIES;
}

/* ---- internal accessors ------------------------------------------------ */

void
_fiber_pool_set_pool_type (FiberPool  *self,
                           const char *pool_type)
{
  FiberPoolPrivate *priv = fiber_pool_get_instance_private (self);

  g_free (priv->pool_type);
  priv->pool_type = g_strdup (pool_type);
}

const char *
_fiber_pool_get_initializer (FiberPool *self)
{
  FiberPoolPrivate *priv = fiber_pool_get_instance_private (self);
  return priv->initializer;
}

GVariant *
_fiber_pool_get_initargs (FiberPool *self)
{
  FiberPoolPrivate *priv = fiber_pool_get_instance_private (self);
  return priv->initargs;
}

guint
_fiber_pool_get_maxtasksperchild (FiberPool *self)
{
  FiberPoolPrivate *priv = fiber_pool_get_instance_private (self);
  return priv->maxtasksperchild;
}

gboolean
_fiber_pool_get_resilient (FiberPool *self)
{
  FiberPoolPrivate *priv = fiber_pool_get_instance_private (self);
  return priv->resilient;
}

guint
_fiber_pool_get_max_retries (FiberPool *self)
{
  FiberPoolPrivate *priv = fiber_pool_get_instance_private (self);
  return priv->max_retries;
}

void
_fiber_pool_shutdown_for_dispose (FiberPool *self)
{
  FiberPoolPrivate *priv = fiber_pool_get_instance_private (self);

  if (priv->joined)
    return;
  if (!priv->terminated)
    fiber_pool_terminate (self);
  fiber_pool_join (self, -1, NULL);
}

gboolean
_fiber_pool_run_initializer (const char  *initializer,
                             GVariant    *initargs,
                             GError     **error)
{
  g_autoptr(GVariant) result = NULL;
  g_autoptr(GError) local_error = NULL;

  if (initializer == NULL)
    return TRUE;
  result = fiber_task_invoke (initializer, initargs, NULL, &local_error);
  if (result != NULL)
    return TRUE;
  g_set_error (error, local_error->domain, local_error->code,
               "the pool initializer %s failed: %s", initializer, local_error->message);
  return FALSE;
}

GCancellable *
_fiber_pool_swap_cancellable (GMutex        *lock,
                              GCancellable **cancellable,
                              int           *generation)
{
  GCancellable *old;

  g_mutex_lock (lock);
  old = g_steal_pointer (cancellable);
  *cancellable = g_cancellable_new ();
  if (generation != NULL)
    g_atomic_int_inc (generation);
  g_mutex_unlock (lock);
  return old;
}

GError *
_fiber_pool_item_error (GError       *error,
                        GCancellable *cancellable)
{
  GError *interrupted;

  if (!g_cancellable_is_cancelled (cancellable))
    return error;
  interrupted = g_error_new (FIBER_ERROR, FIBER_ERROR_INTERRUPTED,
                             "the task was interrupted: %s", error->message);
  g_error_free (error);
  return interrupted;
}

/* ---- public API --------------------------------------------------------- */

/**
 * fiber_pool_new:
 * @pool_type: (nullable): a pool type name such as `process`, `ndprocess`,
 *   `thread`, `coroutine` or `remote`; %NULL picks the default (environment
 *   variable `FIBER_POOL_TYPE`, then the GSettings key `default-pool-type`,
 *   then `process`)
 * @processes: the number of workers; 0 means one per CPU
 * @error: return location for an error
 *
 * Creates a pool of the named type.  [func@Fiber.Pool.list_types] lists the
 * names available in this process.
 *
 * Returns: (transfer full): a new pool, or %NULL with
 *   %FIBER_ERROR_INVALID_ARGUMENT for an unknown type, or the error that
 *   prevented the workers from starting
 */
FiberPool *
fiber_pool_new (const char  *pool_type,
                guint        processes,
                GError     **error)
{
  return _fiber_pool_registry_create (pool_type, processes, error);
}

/**
 * fiber_pool_get_pool_type:
 * @self: a #FiberPool
 *
 * Gets the name of the pool's type.
 *
 * Returns: (nullable): the type name the pool was created under
 */
const char *
fiber_pool_get_pool_type (FiberPool *self)
{
  FiberPoolPrivate *priv;

  g_return_val_if_fail (FIBER_IS_POOL (self), NULL);
  priv = fiber_pool_get_instance_private (self);
  return priv->pool_type;
}

/**
 * fiber_pool_get_processes:
 * @self: a #FiberPool
 *
 * Gets the number of workers of the pool.
 *
 * Returns: the number of workers of the pool
 */
guint
fiber_pool_get_processes (FiberPool *self)
{
  FiberPoolPrivate *priv;

  g_return_val_if_fail (FIBER_IS_POOL (self), 0);
  priv = fiber_pool_get_instance_private (self);
  return priv->processes;
}

/**
 * fiber_pool_is_closed:
 * @self: a #FiberPool
 *
 * Tells whether the pool has been closed or terminated.
 *
 * Returns: whether [method@Fiber.Pool.close] or [method@Fiber.Pool.terminate]
 *   was called; new work then fails with %FIBER_ERROR_CLOSED
 */
gboolean
fiber_pool_is_closed (FiberPool *self)
{
  FiberPoolPrivate *priv;

  g_return_val_if_fail (FIBER_IS_POOL (self), TRUE);
  priv = fiber_pool_get_instance_private (self);
  return g_atomic_int_get (&priv->closed) != 0;
}

static gboolean
check_open (FiberPool  *self,
            GError    **error)
{
  if (!fiber_pool_is_closed (self))
    return TRUE;
  g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_CLOSED,
                       "the pool is closed: no new work is accepted");
  return FALSE;
}

static gboolean
check_task_name (const char  *task,
                 GError     **error)
{
  if (task != NULL && *task != '\0' && g_utf8_validate (task, -1, NULL))
    return TRUE;
  g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                       "a task name must be a non-empty UTF-8 string");
  return FALSE;
}

/* Checks that @iterable can be mapped over; for starmap that every item is
 * a tuple. */
static gboolean
check_iterable (GVariant    *iterable,
                gboolean     star,
                GError     **error)
{
  gboolean unwrap;
  gsize n;

  if (iterable == NULL || !g_variant_is_of_type (iterable, G_VARIANT_TYPE_ARRAY))
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                   "%s needs an array of arguments (a GVariant of type a…), got %s",
                   star ? "starmap" : "map",
                   iterable != NULL ? g_variant_get_type_string (iterable) : "NULL");
      return FALSE;
    }
  n = g_variant_n_children (iterable);
  if (n > G_MAXUINT)
    {
      g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                           "too many items");
      return FALSE;
    }
  if (!star)
    return TRUE;

  unwrap = g_variant_is_of_type (iterable, G_VARIANT_TYPE ("av"));
  if (!unwrap)
    {
      const GVariantType *element = g_variant_type_element (g_variant_get_type (iterable));

      if (g_variant_type_is_tuple (element))
        return TRUE;
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                   "starmap needs an array of tuples, got %s",
                   g_variant_get_type_string (iterable));
      return FALSE;
    }

  for (gsize i = 0; i < n; i++)
    {
      g_autoptr(GVariant) boxed = g_variant_get_child_value (iterable, i);
      g_autoptr(GVariant) item = g_variant_get_variant (boxed);

      if (!g_variant_type_is_tuple (g_variant_get_type (item)))
        {
          g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                       "starmap needs an array of tuples; item %" G_GSIZE_FORMAT " is of type %s",
                       i, g_variant_get_type_string (item));
          return FALSE;
        }
    }
  return TRUE;
}

static guint
resolve_chunksize (FiberPool *self,
                   guint      chunksize,
                   guint      n_items)
{
  FiberPoolPrivate *priv = fiber_pool_get_instance_private (self);
  guint64 per;

  if (chunksize > 0)
    return chunksize;
  /* multiprocessing's rule: ceil (n / (4 × processes)) */
  per = 4 * (guint64) MAX (priv->processes, 1);
  return (guint) MAX (1, (n_items + per - 1) / per);
}

/* The arguments of a call given none: one shared empty tuple.  Building
 * it with g_variant_new ("()") went through a GVariantBuilder and the
 * global type-info table on every apply_async. */
static GVariant *
empty_tuple (void)
{
  static GVariant *empty;

  if (g_once_init_enter (&empty))
    g_once_init_leave (&empty, g_variant_ref_sink (g_variant_new_tuple (NULL, 0)));
  return empty;
}

/* Hands a batch to the pool type; on failure completes the result with the
 * error.  Either way the caller's result is returned untouched otherwise. */
static void
submit_batch (FiberPool  *self,
              FiberBatch *batch)
{
  GError *error = NULL;

  if (!check_open (self, &error) ||
      !FIBER_POOL_GET_CLASS (self)->submit (self, batch, &error))
    _fiber_apply_result_complete (_fiber_batch_get_result (batch), NULL, error);
}

/**
 * fiber_pool_apply_async:
 * @self: a #FiberPool
 * @task: a registered task name
 * @args: (nullable): the task's arguments; %NULL means the empty tuple
 * @cancellable: (nullable): cancels the call (a queued call never runs)
 * @callback: (nullable) (scope async) (closure user_data): called once when the task finished
 * @user_data: data for @callback
 *
 * Runs @task with @args on a worker, like `Pool.apply_async()`.  The
 * callback runs exactly once; call [method@Fiber.Pool.apply_finish] in it.
 * The returned result can also be waited on directly.
 *
 * Returns: (transfer full): the pending result
 */
FiberApplyResult *
fiber_pool_apply_async (FiberPool           *self,
                        const char          *task,
                        GVariant            *args,
                        GCancellable        *cancellable,
                        GAsyncReadyCallback  callback,
                        gpointer             user_data)
{
  FiberApplyResult *result;
  g_autoptr(FiberBatch) batch = NULL;
  GError *error = NULL;

  g_return_val_if_fail (FIBER_IS_POOL (self), NULL);

  result = _fiber_apply_result_new (FIBER_TYPE_APPLY_RESULT, self, cancellable,
                                    callback, user_data, fiber_pool_apply_async,
                                    _fiber_pool_get_callback_context (self));
  if (!check_task_name (task, &error))
    {
      if (args != NULL)
        g_variant_unref (g_variant_ref_sink (args));
      _fiber_apply_result_complete (result, NULL, error);
      return result;
    }

  batch = _fiber_batch_new (task, NULL, NULL, NULL,
                            args != NULL ? args : empty_tuple (),
                            NULL, 1, result);
  submit_batch (self, batch);
  return result;
}

/**
 * fiber_pool_apply_finish:
 * @self: a #FiberPool
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for an error
 *
 * Finishes [method@Fiber.Pool.apply_async].
 *
 * Returns: (transfer full): the task's result
 */
GVariant *
fiber_pool_apply_finish (FiberPool     *self,
                         GAsyncResult  *result,
                         GError       **error)
{
  g_return_val_if_fail (FIBER_IS_APPLY_RESULT (result), NULL);
  g_return_val_if_fail (g_async_result_is_tagged (result, fiber_pool_apply_async) ||
                        g_async_result_is_tagged (result, fiber_pool_apply_func), NULL);

  return fiber_apply_result_get (FIBER_APPLY_RESULT (result), -1, error);
}

/**
 * fiber_pool_apply:
 * @self: a #FiberPool
 * @task: a registered task name
 * @args: (nullable): the task's arguments; %NULL means the empty tuple
 * @error: return location for an error
 *
 * Runs @task with @args on a worker and waits for its result, like
 * `Pool.apply()`.  Needs no main loop.
 *
 * Returns: (transfer full): the task's result
 */
GVariant *
fiber_pool_apply (FiberPool   *self,
                  const char  *task,
                  GVariant    *args,
                  GError     **error)
{
  g_autoptr(FiberApplyResult) result = NULL;

  g_return_val_if_fail (FIBER_IS_POOL (self), NULL);

  result = fiber_pool_apply_async (self, task, args, NULL, NULL, NULL);
  return fiber_apply_result_get (result, -1, error);
}

/**
 * fiber_pool_apply_func:
 * @self: a #FiberPool
 * @args: (nullable): the arguments; %NULL means the empty tuple
 * @func: (scope notified) (closure user_data) (destroy destroy): the function to run
 * @user_data: data for @func
 * @destroy: (nullable): frees @user_data once the call is done
 * @error: return location for an error
 *
 * Runs a caller-supplied function instead of a registered task.  Only pools
 * that run tasks in this process (`thread`, `coroutine`) can do this; the
 * others fail with %FIBER_ERROR_NOT_SUPPORTED.  Language bindings use it
 * to run their own closures.
 *
 * Returns: (transfer full) (nullable): the pending result, or %NULL with @error set
 */
FiberApplyResult *
fiber_pool_apply_func (FiberPool       *self,
                       GVariant        *args,
                       FiberTaskFunc    func,
                       gpointer         user_data,
                       GDestroyNotify   destroy,
                       GError         **error)
{
  FiberApplyResult *result;
  g_autoptr(FiberBatch) batch = NULL;

  g_return_val_if_fail (FIBER_IS_POOL (self), NULL);
  g_return_val_if_fail (func != NULL, NULL);

  if (!FIBER_POOL_GET_CLASS (self)->supports_func (self))
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_NOT_SUPPORTED,
                   "the %s pool type cannot run a caller-supplied function "
                   "(its workers are other processes); register a task instead",
                   fiber_pool_get_pool_type (self) ? fiber_pool_get_pool_type (self)
                                                   : G_OBJECT_TYPE_NAME (self));
      if (destroy != NULL)
        destroy (user_data);
      if (args != NULL)
        g_variant_unref (g_variant_ref_sink (args));
      return NULL;
    }
  if (!check_open (self, error))
    {
      if (destroy != NULL)
        destroy (user_data);
      if (args != NULL)
        g_variant_unref (g_variant_ref_sink (args));
      return NULL;
    }

  result = _fiber_apply_result_new (FIBER_TYPE_APPLY_RESULT, self, NULL, NULL, NULL,
                                    fiber_pool_apply_func, NULL);
  batch = _fiber_batch_new (NULL, func, user_data, destroy,
                            args != NULL ? args : empty_tuple (),
                            NULL, 1, result);
  submit_batch (self, batch);
  return result;
}

static FiberMapResult *
map_common (FiberPool           *self,
            const char          *task,
            GVariant            *iterable,
            guint                chunksize,
            gboolean             star,
            gboolean             ordered,
            gboolean             collect,
            GCancellable        *cancellable,
            GAsyncReadyCallback  callback,
            gpointer             user_data,
            gpointer             source_tag)
{
  FiberMapResult *result;
  g_autoptr(FiberBatch) batch = NULL;
  g_autoptr(GVariant) owned = NULL;
  GError *error = NULL;
  guint n_items;

  if (iterable != NULL)
    owned = g_variant_ref_sink (iterable);

  if (!check_task_name (task, &error) || !check_iterable (iterable, star, &error))
    {
      result = _fiber_map_result_new (self, 1, ordered, collect, cancellable, callback,
                                      user_data, source_tag,
                                      _fiber_pool_get_callback_context (self));
      _fiber_apply_result_complete (FIBER_APPLY_RESULT (result), NULL, error);
      return result;
    }

  n_items = (guint) g_variant_n_children (iterable);
  result = _fiber_map_result_new (self, n_items, ordered, collect, cancellable, callback,
                                  user_data, source_tag,
                                  _fiber_pool_get_callback_context (self));
  if (n_items == 0)
    return result;

  batch = _fiber_batch_new (task, NULL, NULL, NULL, NULL, iterable,
                            resolve_chunksize (self, chunksize, n_items),
                            FIBER_APPLY_RESULT (result));
  submit_batch (self, batch);
  return result;
}

/**
 * fiber_pool_map_async:
 * @self: a #FiberPool
 * @task: a registered task name
 * @iterable: an array; the task runs once per element
 * @chunksize: how many consecutive items go to a worker together; 0 picks
 *   multiprocessing's default, ceil (n / (4 × processes))
 * @cancellable: (nullable): cancels the call
 * @callback: (nullable) (scope async) (closure user_data): called once when all items finished or one failed
 * @user_data: data for @callback
 *
 * Like `Pool.map_async()`.  Finish with [method@Fiber.Pool.map_finish].
 *
 * Returns: (transfer full): the pending results
 */
FiberMapResult *
fiber_pool_map_async (FiberPool           *self,
                      const char          *task,
                      GVariant            *iterable,
                      guint                chunksize,
                      GCancellable        *cancellable,
                      GAsyncReadyCallback  callback,
                      gpointer             user_data)
{
  g_return_val_if_fail (FIBER_IS_POOL (self), NULL);
  return map_common (self, task, iterable, chunksize, FALSE, TRUE, TRUE,
                     cancellable, callback, user_data, fiber_pool_map_async);
}

/**
 * fiber_pool_map_finish:
 * @self: a #FiberPool
 * @result: the #GAsyncResult passed to the callback
 * @error: return location for an error
 *
 * Finishes [method@Fiber.Pool.map_async] or [method@Fiber.Pool.starmap_async].
 *
 * Returns: (transfer full): the results as an `av` array in input order
 */
GVariant *
fiber_pool_map_finish (FiberPool     *self,
                       GAsyncResult  *result,
                       GError       **error)
{
  g_return_val_if_fail (FIBER_IS_MAP_RESULT (result), NULL);
  g_return_val_if_fail (g_async_result_is_tagged (result, fiber_pool_map_async) ||
                        g_async_result_is_tagged (result, fiber_pool_starmap_async), NULL);

  return fiber_apply_result_get (FIBER_APPLY_RESULT (result), -1, error);
}

/**
 * fiber_pool_map:
 * @self: a #FiberPool
 * @task: a registered task name
 * @iterable: an array; the task runs once per element
 * @chunksize: items per chunk; 0 picks the default
 * @error: return location for an error
 *
 * Like `Pool.map()`: runs @task over @iterable and waits for all results.
 *
 * Returns: (transfer full): the results as an `av` array in input order, or
 *   %NULL with the error of the first failed item
 */
GVariant *
fiber_pool_map (FiberPool   *self,
                const char  *task,
                GVariant    *iterable,
                guint        chunksize,
                GError     **error)
{
  g_autoptr(FiberMapResult) result = NULL;

  g_return_val_if_fail (FIBER_IS_POOL (self), NULL);

  result = map_common (self, task, iterable, chunksize, FALSE, TRUE, TRUE,
                       NULL, NULL, NULL, fiber_pool_map_async);
  return fiber_apply_result_get (FIBER_APPLY_RESULT (result), -1, error);
}

/* imap and imap_unordered hand back their iterator, unless the call
 * failed before any item ran (closed pool, bad iterable): that error is
 * reported by the call itself.  Takes @result. */
static FiberMapResult *
imap_result_or_error (FiberMapResult  *result,
                      GError         **error)
{
  g_autoptr(FiberMapResult) owned = result;

  if (!fiber_apply_result_ready (FIBER_APPLY_RESULT (owned)) ||
      fiber_map_result_get_n_items (owned) == 0 ||
      fiber_map_result_get_n_completed (owned) > 0)
    return g_steal_pointer (&owned);
  fiber_apply_result_get (FIBER_APPLY_RESULT (owned), 0, error);
  return NULL;
}

/**
 * fiber_pool_imap:
 * @self: a #FiberPool
 * @task: a registered task name
 * @iterable: an array; the task runs once per element
 * @chunksize: items per chunk; 0 means 1, like multiprocessing's imap
 * @error: return location for an error
 *
 * Like `Pool.imap()`: take the results in input order with
 * [method@Fiber.MapResult.next] as they become available.
 *
 * Returns: (transfer full) (nullable): the results, or %NULL if the pool is
 *   closed or @iterable is not an array
 */
FiberMapResult *
fiber_pool_imap (FiberPool   *self,
                 const char  *task,
                 GVariant    *iterable,
                 guint        chunksize,
                 GError     **error)
{
  g_autoptr(FiberMapResult) result = NULL;

  g_return_val_if_fail (FIBER_IS_POOL (self), NULL);

  result = map_common (self, task, iterable, MAX (chunksize, 1), FALSE, TRUE, FALSE,
                       NULL, NULL, NULL, fiber_pool_imap);
  return imap_result_or_error (g_steal_pointer (&result), error);
}

/**
 * fiber_pool_imap_unordered:
 * @self: a #FiberPool
 * @task: a registered task name
 * @iterable: an array; the task runs once per element
 * @chunksize: items per chunk; 0 means 1
 * @error: return location for an error
 *
 * Like `Pool.imap_unordered()`: [method@Fiber.MapResult.next] returns items
 * in the order they finish, with their index.
 *
 * Returns: (transfer full) (nullable): the results, or %NULL if the pool is
 *   closed or @iterable is not an array
 */
FiberMapResult *
fiber_pool_imap_unordered (FiberPool   *self,
                           const char  *task,
                           GVariant    *iterable,
                           guint        chunksize,
                           GError     **error)
{
  g_autoptr(FiberMapResult) result = NULL;

  g_return_val_if_fail (FIBER_IS_POOL (self), NULL);

  result = map_common (self, task, iterable, MAX (chunksize, 1), FALSE, FALSE, FALSE,
                       NULL, NULL, NULL, fiber_pool_imap_unordered);
  return imap_result_or_error (g_steal_pointer (&result), error);
}

/**
 * fiber_pool_starmap_async:
 * @self: a #FiberPool
 * @task: a registered task name
 * @iterable: an array of tuples (or an `av` of tuples)
 * @chunksize: items per chunk; 0 picks the default
 * @cancellable: (nullable): cancels the call
 * @callback: (nullable) (scope async) (closure user_data): called once when done
 * @user_data: data for @callback
 *
 * Like `Pool.starmap_async()`.  The task receives each tuple as its
 * arguments.  Anything but tuples is %FIBER_ERROR_INVALID_ARGUMENT.
 * Finish with [method@Fiber.Pool.map_finish].
 *
 * Returns: (transfer full): the pending results
 */
FiberMapResult *
fiber_pool_starmap_async (FiberPool           *self,
                          const char          *task,
                          GVariant            *iterable,
                          guint                chunksize,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  g_return_val_if_fail (FIBER_IS_POOL (self), NULL);
  return map_common (self, task, iterable, chunksize, TRUE, TRUE, TRUE,
                     cancellable, callback, user_data, fiber_pool_starmap_async);
}

/**
 * fiber_pool_starmap:
 * @self: a #FiberPool
 * @task: a registered task name
 * @iterable: an array of tuples (or an `av` of tuples)
 * @chunksize: items per chunk; 0 picks the default
 * @error: return location for an error
 *
 * Like `Pool.starmap()`.
 *
 * Returns: (transfer full): the results as an `av` array in input order
 */
GVariant *
fiber_pool_starmap (FiberPool   *self,
                    const char  *task,
                    GVariant    *iterable,
                    guint        chunksize,
                    GError     **error)
{
  g_autoptr(FiberMapResult) result = NULL;

  g_return_val_if_fail (FIBER_IS_POOL (self), NULL);

  result = map_common (self, task, iterable, chunksize, TRUE, TRUE, TRUE,
                       NULL, NULL, NULL, fiber_pool_starmap_async);
  return fiber_apply_result_get (FIBER_APPLY_RESULT (result), -1, error);
}

/**
 * fiber_pool_close:
 * @self: a #FiberPool
 *
 * Stops accepting work, like `Pool.close()`: work already submitted still
 * runs, then the workers exit.  Call [method@Fiber.Pool.join] to wait.
 */
void
fiber_pool_close (FiberPool *self)
{
  FiberPoolPrivate *priv;

  g_return_if_fail (FIBER_IS_POOL (self));
  priv = fiber_pool_get_instance_private (self);

  if (!g_atomic_int_compare_and_exchange (&priv->closed, 0, 1))
    return;
  if (FIBER_POOL_GET_CLASS (self)->close != NULL)
    FIBER_POOL_GET_CLASS (self)->close (self);
}

/**
 * fiber_pool_terminate:
 * @self: a #FiberPool
 *
 * Stops at once, like `Pool.terminate()`: workers are stopped and every
 * unfinished item fails with %FIBER_ERROR_CLOSED.
 */
void
fiber_pool_terminate (FiberPool *self)
{
  FiberPoolPrivate *priv;

  g_return_if_fail (FIBER_IS_POOL (self));
  priv = fiber_pool_get_instance_private (self);

  g_atomic_int_set (&priv->closed, 1);
  if (priv->terminated)
    return;
  priv->terminated = TRUE;
  if (FIBER_POOL_GET_CLASS (self)->terminate != NULL)
    FIBER_POOL_GET_CLASS (self)->terminate (self);
}

/**
 * fiber_pool_join:
 * @self: a #FiberPool
 * @timeout_msec: how long to wait: -1 forever, 0 just check
 * @error: return location for an error
 *
 * Waits for the workers to exit, like `Pool.join()`.  The pool must have
 * been closed or terminated first (else %FIBER_ERROR_STATE).  After a
 * successful join no process, thread, socket or file of the pool remains.
 *
 * Returns: %TRUE once the workers have exited; %FALSE with
 *   %FIBER_ERROR_TIMEOUT when @timeout_msec ran out
 */
gboolean
fiber_pool_join (FiberPool  *self,
                 int         timeout_msec,
                 GError    **error)
{
  FiberPoolPrivate *priv;

  g_return_val_if_fail (FIBER_IS_POOL (self), FALSE);
  priv = fiber_pool_get_instance_private (self);

  if (!fiber_pool_is_closed (self))
    {
      g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_STATE,
                           "join() needs close() or terminate() first");
      return FALSE;
    }
  if (priv->joined)
    return TRUE;
  if (FIBER_POOL_GET_CLASS (self)->join != NULL &&
      !FIBER_POOL_GET_CLASS (self)->join (self, timeout_msec, error))
    return FALSE;
  priv->joined = TRUE;
  return TRUE;
}

/**
 * fiber_pool_interrupt:
 * @self: a #FiberPool
 *
 * Interrupts the tasks running now: their #GCancellable is cancelled (and
 * worker processes receive SIGINT, which the worker turns into that
 * cancellation), so they fail with %FIBER_ERROR_INTERRUPTED or
 * %G_IO_ERROR_CANCELLED.  Queued work is not affected and the pool stays
 * usable.
 */
void
fiber_pool_interrupt (FiberPool *self)
{
  g_return_if_fail (FIBER_IS_POOL (self));

  if (FIBER_POOL_GET_CLASS (self)->interrupt != NULL)
    FIBER_POOL_GET_CLASS (self)->interrupt (self);
}

/* fiber-process-pool.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "fiber-process-pool.h"
#include "fiber-process-pool-private.h"

#include <string.h>

#include <gio/gio.h>

#include "fiber-dispatcher-private.h"
#include "fiber-error.h"
#include "fiber-init-private.h"
#include "fiber-pool-private.h"
#include "fiber-process-private.h"
#include "fiber-worker-private.h"

/**
 * FiberProcessPool:
 *
 * A [class@Fiber.Pool] whose workers are processes: the `process` pool type
 * (daemonic workers, which may not start children of their own and die with
 * this process), the `ndprocess` type (non-daemonic workers, which may start
 * processes and nested pools; [method@Fiber.Pool.join] waits for them), and,
 * with a remote [iface@Fiber.Backend], the `remote` type whose workers are
 * jobs of a cluster scheduler.
 *
 * Workers are started through the pool's backend running the
 * [property@Fiber.ProcessPool:worker-command]: by default this very program
 * again when it called fiber_init() first thing in `main()`, otherwise the
 * generic `fiber-worker` executable, which loads the
 * [property@Fiber.ProcessPool:task-modules].  They connect back to the pool
 * (local workers over a unix socket in a private directory, remote ones
 * over ZeroMQ `tcp://` with CURVE encryption; see
 * [property@Fiber.ProcessPool:transport]) and prove that they know the
 * pool's [property@Fiber.ProcessPool:authkey].
 *
 * The pool is resilient: a worker that crashes, is killed or stops sending
 * heartbeats is replaced, and the items it held run again (at most
 * [property@Fiber.Pool:max-retries] times for the item it was running), so
 * every result is delivered exactly once.
 *
 * Local workers stay in this program's process group, as multiprocessing's
 * do: a SIGINT sent to the group (Ctrl-C in a terminal) reaches them, and
 * each turns it into the interruption of the task it runs, which fails
 * with %FIBER_ERROR_INTERRUPTED while the worker carries on.
 * [method@Fiber.Pool.interrupt] sends SIGINT to the local workers that hold
 * work (an interrupt message to remote ones).
 *
 * Items are dispatched fairly: no item waits behind a busy worker while
 * another is idle.  When every worker is busy with short tasks, each worker
 * gets work queued ahead (about two milliseconds' worth, measured) and
 * results come back in batches, so even `map` over millions of tiny items
 * keeps the workers busy.  [property@Fiber.Pool:maxtasksperchild] counts
 * items.
 */

struct _FiberProcessPool
{
  FiberPool         parent_instance;

  gboolean          daemon;
  FiberBackend     *backend;
  char            **worker_command;
  char            **task_modules;
  GBytes           *authkey;
  guint             heartbeat_interval;
  char             *transport;

  FiberDispatcher  *dispatcher;
};

static void initable_iface_init (GInitableIface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (FiberProcessPool, fiber_process_pool, FIBER_TYPE_POOL,
                               G_IMPLEMENT_INTERFACE (G_TYPE_INITABLE, initable_iface_init))

enum {
  PROP_0,
  PROP_DAEMON,
  PROP_BACKEND,
  PROP_WORKER_COMMAND,
  PROP_TASK_MODULES,
  PROP_AUTHKEY,
  PROP_HEARTBEAT_INTERVAL,
  PROP_TRANSPORT,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

/* The command that starts a worker when none was given. */
static char **
default_worker_command (void)
{
  GStrvBuilder *builder = g_strv_builder_new ();
  char **argv;

  if (_fiber_init_was_called ())
    {
      const char * const *saved = _fiber_init_get_argv ();
      g_autofree char *exe = g_file_read_link ("/proc/self/exe", NULL);

      g_strv_builder_add (builder, exe != NULL ? exe : saved[0]);
      for (guint i = 1; saved[i] != NULL; i++)
        g_strv_builder_add (builder, saved[i]);
    }
  else
    g_strv_builder_add (builder, _fiber_get_worker_executable ());

  argv = g_strv_builder_end (builder);
  g_strv_builder_unref (builder);
  return argv;
}

static gboolean
initializer_is_invalid (const char *initializer)
{
  return initializer != NULL && !g_utf8_validate (initializer, -1, NULL);
}

static gboolean
fiber_process_pool_initable_init (GInitable     *initable,
                                  GCancellable  *cancellable,
                                  GError       **error)
{
  FiberProcessPool *self = FIBER_PROCESS_POOL (initable);
  FiberPool *pool = FIBER_POOL (self);
  FiberDispatcherConfig config = { 0 };

  if (self->dispatcher != NULL)
    return TRUE;

  if (!_fiber_process_check_may_have_children (error))
    return FALSE;

  if (self->worker_command != NULL && self->worker_command[0] == NULL)
    g_clear_pointer (&self->worker_command, g_strfreev);
  if (self->worker_command == NULL)
    self->worker_command = default_worker_command ();
  else if (*self->worker_command[0] == '\0')
    {
      g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                           "the worker command must name a program");
      return FALSE;
    }
  if (initializer_is_invalid (_fiber_pool_get_initializer (pool)))
    {
      /* It travels to the workers as a string of the wire protocol. */
      g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                           "the initializer must be a task name in UTF-8");
      return FALSE;
    }
  for (guint i = 0; self->task_modules != NULL && self->task_modules[i] != NULL; i++)
    if (strchr (self->task_modules[i], ':') != NULL)
      {
        /* FIBER_TASK_MODULES is a ':'-separated list. */
        g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                     "a task module path may not contain ':' (%s)", self->task_modules[i]);
        return FALSE;
      }
  if (self->backend == NULL)
    self->backend = g_object_ref (fiber_backend_get_default ());
  if (self->transport == NULL)
    self->transport = g_strdup (fiber_backend_is_remote (self->backend) ? "zmq" : "unix");
  if (!g_str_equal (self->transport, "unix") && !g_str_equal (self->transport, "zmq"))
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                   "unknown transport “%s” (expected “unix” or “zmq”)", self->transport);
      return FALSE;
    }
  if (g_str_equal (self->transport, "unix") && fiber_backend_is_remote (self->backend))
    {
      g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                           "the workers of a remote backend cannot use the “unix” transport");
      return FALSE;
    }
  if (self->authkey == NULL)
    self->authkey = _fiber_process_get_current_authkey ();
  if (g_bytes_get_size (self->authkey) == 0)
    {
      g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                           "the authkey must not be empty");
      return FALSE;
    }

  config.backend = self->backend;
  config.worker_argv = (const char * const *) self->worker_command;
  config.task_modules = (const char * const *) self->task_modules;
  config.authkey = self->authkey;
  config.name = self->daemon ? "PoolWorker" : "NDPoolWorker";
  config.daemon = self->daemon;
  config.processes = fiber_pool_get_processes (pool);
  config.initializer = _fiber_pool_get_initializer (pool);
  config.initargs = _fiber_pool_get_initargs (pool);
  config.maxtasksperchild = _fiber_pool_get_maxtasksperchild (pool);
  config.resilient = _fiber_pool_get_resilient (pool);
  config.max_retries = _fiber_pool_get_max_retries (pool);
  config.heartbeat_ms = self->heartbeat_interval;
  config.local_zmq = g_str_equal (self->transport, "zmq");

  self->dispatcher = _fiber_dispatcher_new (&config, error);
  return self->dispatcher != NULL;
}

static void
initable_iface_init (GInitableIface *iface)
{
  iface->init = fiber_process_pool_initable_init;
}

static gboolean
fiber_process_pool_submit (FiberPool   *pool,
                           FiberBatch  *batch,
                           GError     **error)
{
  FiberProcessPool *self = FIBER_PROCESS_POOL (pool);

  if (self->dispatcher == NULL)
    {
      g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_STATE,
                           "the process pool was not initialized (use g_initable_new())");
      return FALSE;
    }
  if (fiber_batch_has_func (batch))
    {
      g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_NOT_SUPPORTED,
                           "a process pool runs registered tasks only, not functions");
      return FALSE;
    }
  return _fiber_dispatcher_submit (self->dispatcher, batch, error);
}

static void
fiber_process_pool_close (FiberPool *pool)
{
  FiberProcessPool *self = FIBER_PROCESS_POOL (pool);

  if (self->dispatcher != NULL)
    _fiber_dispatcher_close (self->dispatcher);
}

static void
fiber_process_pool_terminate (FiberPool *pool)
{
  FiberProcessPool *self = FIBER_PROCESS_POOL (pool);

  if (self->dispatcher == NULL)
    return;
  /* Like multiprocessing: when terminate() returns the workers are gone
   * and every unfinished item has failed. */
  _fiber_dispatcher_terminate (self->dispatcher);
  _fiber_dispatcher_join (self->dispatcher, -1, NULL);
}

static gboolean
fiber_process_pool_join (FiberPool  *pool,
                         int         timeout_msec,
                         GError    **error)
{
  FiberProcessPool *self = FIBER_PROCESS_POOL (pool);

  if (self->dispatcher == NULL)
    return TRUE;
  return _fiber_dispatcher_join (self->dispatcher, timeout_msec, error);
}

static void
fiber_process_pool_interrupt (FiberPool *pool)
{
  FiberProcessPool *self = FIBER_PROCESS_POOL (pool);

  if (self->dispatcher != NULL)
    _fiber_dispatcher_interrupt (self->dispatcher);
}

static void
fiber_process_pool_dispose (GObject *object)
{
  FiberProcessPool *self = FIBER_PROCESS_POOL (object);

  if (self->dispatcher != NULL)
    {
      _fiber_pool_shutdown_for_dispose (FIBER_POOL (self));
      g_clear_pointer (&self->dispatcher, _fiber_dispatcher_unref);
    }

  G_OBJECT_CLASS (fiber_process_pool_parent_class)->dispose (object);
}

static void
fiber_process_pool_finalize (GObject *object)
{
  FiberProcessPool *self = FIBER_PROCESS_POOL (object);

  g_clear_object (&self->backend);
  g_strfreev (self->worker_command);
  g_strfreev (self->task_modules);
  g_clear_pointer (&self->authkey, g_bytes_unref);
  g_free (self->transport);

  G_OBJECT_CLASS (fiber_process_pool_parent_class)->finalize (object);
}

static void
fiber_process_pool_get_property (GObject    *object,
                                 guint       prop_id,
                                 GValue     *value,
                                 GParamSpec *pspec)
{
  FiberProcessPool *self = FIBER_PROCESS_POOL (object);

  switch (prop_id)
    {
    case PROP_DAEMON:
      g_value_set_boolean (value, self->daemon);
      break;
    case PROP_BACKEND:
      g_value_set_object (value, self->backend);
      break;
    case PROP_WORKER_COMMAND:
      g_value_set_boxed (value, self->worker_command);
      break;
    case PROP_TASK_MODULES:
      g_value_set_boxed (value, self->task_modules);
      break;
    case PROP_AUTHKEY:
      g_value_set_boxed (value, self->authkey);
      break;
    case PROP_HEARTBEAT_INTERVAL:
      g_value_set_uint (value, self->heartbeat_interval);
      break;
    case PROP_TRANSPORT:
      g_value_set_string (value, self->transport);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
fiber_process_pool_set_property (GObject      *object,
                                 guint         prop_id,
                                 const GValue *value,
                                 GParamSpec   *pspec)
{
  FiberProcessPool *self = FIBER_PROCESS_POOL (object);

  switch (prop_id)
    {
    case PROP_DAEMON:
      self->daemon = g_value_get_boolean (value);
      break;
    case PROP_BACKEND:
      g_clear_object (&self->backend);
      self->backend = g_value_dup_object (value);
      break;
    case PROP_WORKER_COMMAND:
      g_strfreev (self->worker_command);
      self->worker_command = g_value_dup_boxed (value);
      break;
    case PROP_TASK_MODULES:
      g_strfreev (self->task_modules);
      self->task_modules = g_value_dup_boxed (value);
      break;
    case PROP_AUTHKEY:
      g_clear_pointer (&self->authkey, g_bytes_unref);
      self->authkey = g_value_dup_boxed (value);
      break;
    case PROP_HEARTBEAT_INTERVAL:
      self->heartbeat_interval = g_value_get_uint (value);
      break;
    case PROP_TRANSPORT:
      g_free (self->transport);
      self->transport = g_value_dup_string (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
fiber_process_pool_class_init (FiberProcessPoolClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  FiberPoolClass *pool_class = FIBER_POOL_CLASS (klass);

  object_class->dispose = fiber_process_pool_dispose;
  object_class->finalize = fiber_process_pool_finalize;
  object_class->get_property = fiber_process_pool_get_property;
  object_class->set_property = fiber_process_pool_set_property;

  pool_class->submit = fiber_process_pool_submit;
  pool_class->close = fiber_process_pool_close;
  pool_class->terminate = fiber_process_pool_terminate;
  pool_class->join = fiber_process_pool_join;
  pool_class->interrupt = fiber_process_pool_interrupt;

  /**
   * FiberProcessPool:daemon:
   *
   * Whether the workers are daemonic: they may not start processes or
   * pools of their own (%FIBER_ERROR_DAEMONIC) and exit when this process
   * exits.  Non-daemonic workers may have children.
   */
  properties[PROP_DAEMON] =
    g_param_spec_boolean ("daemon", NULL, NULL, TRUE,
                          G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * FiberProcessPool:backend:
   *
   * Where the workers run; %NULL at construction means the local backend
   * ([func@Fiber.Backend.get_default]).  With a remote backend, workers
   * connect over `tcp://` with CURVE encryption.
   */
  properties[PROP_BACKEND] =
    g_param_spec_object ("backend", NULL, NULL, FIBER_TYPE_BACKEND,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * FiberProcessPool:worker-command:
   *
   * The command line that starts a worker.  %NULL at construction means
   * this program again (with the arguments it got) when it called
   * fiber_init(), else the `fiber-worker` executable (`FIBER_WORKER`
   * overrides its path).  Language bindings set their own worker here.
   */
  properties[PROP_WORKER_COMMAND] =
    g_param_spec_boxed ("worker-command", NULL, NULL, G_TYPE_STRV,
                        G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * FiberProcessPool:task-modules:
   *
   * Paths of task modules (shared objects exporting
   * `fiber_module_register_tasks()`) every worker loads before serving,
   * passed in `FIBER_TASK_MODULES` (a `:`-separated list, so no path may
   * contain `:`).
   */
  properties[PROP_TASK_MODULES] =
    g_param_spec_boxed ("task-modules", NULL, NULL, G_TYPE_STRV,
                        G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * FiberProcessPool:authkey:
   *
   * The key workers prove they know (HMAC-SHA256 over the pool's random
   * nonce); %NULL at construction means the authkey of this process.
   */
  properties[PROP_AUTHKEY] =
    g_param_spec_boxed ("authkey", NULL, NULL, G_TYPE_BYTES,
                        G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * FiberProcessPool:heartbeat-interval:
   *
   * Milliseconds between heartbeats of the pool and its workers; a worker
   * silent for five intervals is considered lost and replaced, a worker
   * whose pool is silent that long exits.  0 at construction means 1000.
   */
  properties[PROP_HEARTBEAT_INTERVAL] =
    g_param_spec_uint ("heartbeat-interval", NULL, NULL, 0, 3600 * 1000, 0,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * FiberProcessPool:transport:
   *
   * How the workers talk to the pool: `unix` (the default for this
   * machine's workers) is one unix stream connection per worker in a
   * private directory; `zmq` is a ZeroMQ ROUTER/DEALER pair over `ipc://`
   * in that directory, with the same authenticated protocol.  The unix
   * socket is faster (a synchronous round trip does not pass through the
   * I/O thread ZeroMQ runs on each side; `bench-pool` measures both);
   * `zmq` is there to compare the two.  The workers of a remote backend
   * always use `zmq`, over `tcp://` with CURVE encryption.  %NULL at
   * construction means the default; after construction this is the
   * transport in use.
   */
  properties[PROP_TRANSPORT] =
    g_param_spec_string ("transport", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
fiber_process_pool_init (FiberProcessPool *self)
{
  self->daemon = TRUE;
}

/**
 * fiber_process_pool_new:
 * @processes: the number of workers; 0 means one per CPU
 * @daemon: whether the workers are daemonic (the `process` type) or not
 *   (`ndprocess`)
 * @backend: (nullable): where the workers run; %NULL for this machine
 * @error: return location for an error
 *
 * Creates a process pool and starts its workers.  Fails with
 * %FIBER_ERROR_DAEMONIC in a daemonic process, and with the backend's error
 * when a worker cannot be started.
 *
 * Returns: (transfer full): a new pool, or %NULL with @error set
 */
FiberPool *
fiber_process_pool_new (guint          processes,
                        gboolean       daemon,
                        FiberBackend  *backend,
                        GError       **error)
{
  g_return_val_if_fail (backend == NULL || FIBER_IS_BACKEND (backend), NULL);

  return g_initable_new (FIBER_TYPE_PROCESS_POOL, NULL, error,
                         "processes", processes,
                         "daemon", daemon,
                         "backend", backend,
                         NULL);
}

const char *
_fiber_process_pool_get_endpoint (FiberProcessPool *self)
{
  g_return_val_if_fail (FIBER_IS_PROCESS_POOL (self), NULL);
  return self->dispatcher != NULL ? _fiber_dispatcher_get_endpoint (self->dispatcher) : NULL;
}

GArray *
_fiber_process_pool_list_worker_pids (FiberProcessPool *self)
{
  g_return_val_if_fail (FIBER_IS_PROCESS_POOL (self), NULL);
  if (self->dispatcher == NULL)
    return g_array_new (FALSE, FALSE, sizeof (gint64));
  return _fiber_dispatcher_list_pids (self->dispatcher);
}

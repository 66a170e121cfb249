/* fiber-process.c — multiprocessing.Process on top of a job backend
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <errno.h>
#include <glib/gstdio.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/random.h>
#include <unistd.h>

#include "fiber-error.h"
#include "fiber-forkserver-private.h"
#include "fiber-init-private.h"
#include "fiber-job-private.h"
#include "fiber-local-backend.h"
#include "fiber-process.h"
#include "fiber-process-private.h"
#include "fiber-task.h"

/**
 * FiberProcess:
 *
 * A process that runs one task, with the semantics of Python's
 * `multiprocessing.Process`.
 *
 * The target is a registered task (see fiber_task_register()) and its
 * arguments.  fiber_process_start() starts a job on the process'
 * [property@Fiber.Process:backend] (by default a child process of this
 * host); the child runs the target and exits with status 0, or prints the
 * error to its standard error and exits with status 1.
 *
 * The child runs this very program again when fiber_init() was called in
 * `main()` (so it has the same task registrations), and the generic
 * `fiber-worker` otherwise.
 *
 * A top-level program that called fiber_init() starts its local children
 * through a fork server, like multiprocessing's `forkserver` start method:
 * on the first start the program is started once more, runs `main()` up
 * to fiber_init() and from then on forks one child per start, which takes
 * the environment, working directory and standard streams the parent has
 * at that moment.  A start then costs a fork instead of an exec and the
 * start-up of every library.  As in multiprocessing, the child's parent
 * process is the server, and a forked child ends with `_exit()` after
 * flushing its streams and joining its own children (atexit() handlers do
 * not run).  Nested processes and subreapers keep re-executing the
 * program; `FIBER_PROCESS_START_METHOD=spawn` in the environment does so
 * everywhere.
 *
 * ```c
 * g_autoptr(FiberProcess) p = fiber_process_new ("myapp.work", g_variant_new ("(i)", 42));
 * int exitcode;
 *
 * if (!fiber_process_start (p, &error))
 *   return FALSE;
 * fiber_process_join (p, -1);
 * fiber_process_get_exitcode (p, &exitcode);
 * ```
 *
 * A started process is kept referenced (see fiber_active_children())
 * until it has ended and was seen ending, as multiprocessing does.
 */
struct _FiberProcess
{
  GObject        parent_instance;

  GMutex         lock;
  char          *task;
  GVariant      *args;
  char          *name;
  char          *identity;
  gboolean       daemon;
  gboolean       daemon_set;
  GBytes        *authkey;
  FiberBackend  *backend;

  FiberJob      *job;
  char          *payload_dir;
  gboolean       is_current;
  gint64         current_pid;
};

G_DEFINE_FINAL_TYPE (FiberProcess, fiber_process, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_TASK,
  PROP_ARGS,
  PROP_NAME,
  PROP_DAEMON,
  PROP_PID,
  PROP_AUTHKEY,
  PROP_BACKEND,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

#define AUTHKEY_SIZE 32
/* Payloads above this size go through a file: one environment string may
 * be at most 128 KiB on Linux, and the whole environment shares ARG_MAX. */
#define PAYLOAD_ENV_MAX (64 * 1024)
#define PAYLOAD_TYPE G_VARIANT_TYPE ("(msv)")

/* The object fiber_current_process() returns; set once. */
static FiberProcess *current_process;
/* TRUE only in the thread constructing that object, while it does. */
static _Thread_local gboolean constructing_current;
/* The counter behind the identities of this process' children. */
static gint          child_counter;

static GMutex        children_lock;
static GPtrArray    *children;

/* In a child of the fork server: a pidfd of the parent, for the watch of
 * a daemonic child (the server, not the parent, is our parent process). */
static int           inherited_parent_pidfd = -1;
/* This process is a child of the fork server. */
static gboolean      forked_child;

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

static GBytes *
random_authkey (void)
{
  guint8 key[AUTHKEY_SIZE];
  gsize filled = 0;

  while (filled < sizeof key)
    {
      ssize_t r = getrandom (key + filled, sizeof key - filled, 0);

      if (r < 0)
        {
          if (errno == EINTR)
            continue;
          /* No getrandom(): GLib's generator is seeded from /dev/urandom. */
          for (; filled < sizeof key; filled++)
            key[filled] = (guint8) g_random_int_range (0, 256);
          break;
        }
      filled += (gsize) r;
    }
  return g_bytes_new (key, sizeof key);
}

static GBytes *
authkey_from_hex (const char *hex)
{
  gsize len = hex != NULL ? strlen (hex) : 0;
  g_autofree guint8 *key = NULL;

  if (len == 0 || len % 2 != 0)
    return NULL;
  key = g_malloc (len / 2);
  for (gsize i = 0; i < len / 2; i++)
    {
      int hi = g_ascii_xdigit_value (hex[2 * i]);
      int lo = g_ascii_xdigit_value (hex[2 * i + 1]);

      if (hi < 0 || lo < 0)
        return NULL;
      key[i] = (guint8) (hi << 4 | lo);
    }
  return g_bytes_new_take (g_steal_pointer (&key), len / 2);
}

static char *
authkey_to_hex (GBytes *authkey)
{
  gsize len;
  const guint8 *data = g_bytes_get_data (authkey, &len);
  GString *hex = g_string_sized_new (len * 2);

  for (gsize i = 0; i < len; i++)
    g_string_append_printf (hex, "%02x", data[i]);
  return g_string_free (hex, FALSE);
}

static const char *
get_self_exe (void)
{
  static char *path;

  if (g_once_init_enter (&path))
    {
      char *target = g_file_read_link ("/proc/self/exe", NULL);
      const char * const *argv = _fiber_init_get_argv ();

      if (target == NULL)
        target = g_strdup (argv != NULL && argv[0] != NULL ? argv[0] : "/proc/self/exe");
      g_once_init_leave (&path, target);
    }
  return path;
}

static char *
next_child_identity (void)
{
  FiberProcess *current = fiber_current_process ();
  int n = g_atomic_int_add (&child_counter, 1) + 1;

  if (current->identity == NULL || *current->identity == '\0')
    return g_strdup_printf ("%d", n);
  return g_strdup_printf ("%s:%d", current->identity, n);
}

static void
remove_payload_dir (char *dir)
{
  g_autofree char *file = NULL;

  if (dir == NULL)
    return;
  file = g_build_filename (dir, "payload", NULL);
  g_unlink (file);
  g_rmdir (dir);
  g_free (dir);
}

/* ------------------------------------------------------------------------
 * The current process
 * ------------------------------------------------------------------------ */

static gpointer
parent_watch_thread_func (gpointer data)
{
  int pidfd = GPOINTER_TO_INT (data);
  struct pollfd pfd = { .fd = pidfd, .events = POLLIN };

  for (;;)
    {
      int r = poll (&pfd, 1, -1);

      if (r > 0 && (pfd.revents & (POLLIN | POLLHUP | POLLERR)) != 0)
        _exit (1);
    }
  return NULL;
}

static gpointer
parent_poll_thread_func (gpointer data)
{
  GPid parent = GPOINTER_TO_INT (data);

  /* No pidfds here (seccomp, old kernel): our parent is gone once we
   * were re-parented. */
  for (;;)
    {
      if (getppid () != parent)
        _exit (1);
      g_usleep (100 * 1000);
    }
  return NULL;
}

/* A daemonic child ends with the process that started it, however that
 * one ends (even SIGKILL).  PR_SET_PDEATHSIG is no good: it fires when the
 * spawning thread exits, and pools spawn from threads. */
static void
watch_parent (GPid parent)
{
  int pidfd;
  GThread *thread;

  if (parent <= 0)
    return;

  if (inherited_parent_pidfd >= 0)
    {
      /* The fork server opened it while the parent was alive. */
      pidfd = g_steal_fd (&inherited_parent_pidfd);
    }
  else
    {
      pidfd = pidfd_open (parent, 0);
      if (pidfd < 0 && errno == ESRCH)
        _exit (1);
      /* pidfd_open() raced with nothing if our parent is still that pid: a
       * parent that died would have re-parented us first. */
      if (getppid () != parent)
        _exit (1);
    }

  if (pidfd >= 0)
    thread = g_thread_try_new ("fiber-parent-watch", parent_watch_thread_func,
                               GINT_TO_POINTER (pidfd), NULL);
  else
    thread = g_thread_try_new ("fiber-parent-watch", parent_poll_thread_func,
                               GINT_TO_POINTER (parent), NULL);
  if (thread != NULL)
    g_thread_unref (thread);
  else
    g_warning ("cannot watch the parent process %d", (int) parent);
}

/**
 * fiber_current_process:
 *
 * The process object of the calling process, like multiprocessing's
 * `current_process()`: `MainProcess` in a top-level program; in a child
 * started by a [class@Fiber.Process] or a pool, the name and pid the
 * parent assigned, its daemonic flag and its authkey.
 *
 * Returns: (transfer none): the current process
 */
FiberProcess *
fiber_current_process (void)
{
  if (g_once_init_enter (&current_process))
    {
      const char *name = g_getenv (FIBER_ENV_PROCESS_NAME);
      const char *identity = g_getenv (FIBER_ENV_PROCESS_IDENTITY);
      const char *pid = g_getenv (FIBER_ENV_PID);
      const char *daemonic = g_getenv (FIBER_ENV_DAEMONIC);
      const char *parent = g_getenv (FIBER_ENV_PARENT_PID);
      g_autoptr(GBytes) authkey = authkey_from_hex (g_getenv (FIBER_ENV_AUTHKEY));
      gint64 fiber_pid = 0;
      FiberProcess *self;

      if (authkey == NULL)
        authkey = random_authkey ();
      if (pid == NULL || !g_ascii_string_to_signed (pid, 10, 1, G_MAXINT64, &fiber_pid, NULL))
        fiber_pid = getpid ();

      constructing_current = TRUE;
      self = g_object_new (FIBER_TYPE_PROCESS,
                           "name", name != NULL && *name != '\0' ? name : "MainProcess",
                           "daemon", g_strcmp0 (daemonic, "1") == 0,
                           "authkey", authkey,
                           NULL);
      constructing_current = FALSE;
      self->identity = g_strdup (identity != NULL ? identity : "");
      self->current_pid = fiber_pid;

      if (self->daemon && parent != NULL)
        {
          gint64 parent_pid = 0;

          if (g_ascii_string_to_signed (parent, 10, 1, G_MAXINT, &parent_pid, NULL))
            watch_parent ((GPid) parent_pid);
        }

      g_once_init_leave (&current_process, self);
    }
  return current_process;
}

void
_fiber_process_init_current (void)
{
  static const char * const consumed[] = {
    FIBER_ENV_AUTHKEY,
    FIBER_ENV_PARENT_PID,
    FIBER_ENV_DAEMONIC,
    FIBER_ENV_PROCESS_NAME,
    FIBER_ENV_PID,
    FIBER_ENV_PROCESS_IDENTITY,
  };
  int parent_pidfd = -1;

  /* In a fork server this serves requests; it returns in each child.  The
   * server sets up the class of its children first, so that each child
   * does not do it again in pages of its own. */
  if (g_getenv (FIBER_ENV_FORKSERVER_FD) != NULL)
    g_type_class_unref (g_type_class_ref (FIBER_TYPE_PROCESS));
  if (_fiber_forkserver_run_if_requested (&parent_pidfd))
    {
      inherited_parent_pidfd = parent_pidfd;
      forked_child = TRUE;
    }
  fiber_current_process ();
  if (inherited_parent_pidfd >= 0)
    close (g_steal_fd (&inherited_parent_pidfd));
  /* fiber_init() runs first thing in main(): no other thread reads the
   * environment yet.  Grandchildren get these from fill_child_env(). */
  for (guint i = 0; i < G_N_ELEMENTS (consumed); i++)
    if (g_getenv (consumed[i]) != NULL)
      g_unsetenv (consumed[i]);
}

gboolean
_fiber_process_check_may_have_children (GError **error)
{
  if (fiber_process_get_daemon (fiber_current_process ()))
    {
      g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_DAEMONIC,
                           "daemonic processes are not allowed to have children");
      return FALSE;
    }
  return TRUE;
}

GBytes *
_fiber_process_get_current_authkey (void)
{
  FiberProcess *current = fiber_current_process ();
  GBytes *authkey;

  g_mutex_lock (&current->lock);
  authkey = g_bytes_ref (current->authkey);
  g_mutex_unlock (&current->lock);
  return authkey;
}

static void
fill_child_env_full (FiberJobSpec *spec,
                     const char   *name,
                     const char   *identity,
                     gboolean      daemon,
                     GBytes       *authkey)
{
  g_autofree char *hex = authkey_to_hex (authkey);

  fiber_job_spec_setenv (spec, FIBER_ENV_AUTHKEY, hex);
  fiber_job_spec_setenv (spec, FIBER_ENV_DAEMONIC, daemon ? "1" : NULL);
  fiber_job_spec_setenv (spec, FIBER_ENV_PROCESS_NAME, name);
  fiber_job_spec_setenv (spec, FIBER_ENV_PROCESS_IDENTITY, identity);
  fiber_job_spec_setenv (spec, FIBER_ENV_PID, NULL);
  fiber_job_spec_setenv (spec, FIBER_ENV_PARENT_PID, NULL);
  fiber_job_spec_set_daemon (spec, daemon);
  if (fiber_job_spec_get_name (spec) == NULL)
    fiber_job_spec_set_name (spec, name);
}

void
_fiber_process_fill_child_env (FiberJobSpec *spec,
                               const char   *name,
                               gboolean      daemon)
{
  g_autofree char *identity = NULL;
  g_autofree char *default_name = NULL;
  g_autoptr(GBytes) authkey = NULL;

  g_return_if_fail (spec != NULL);

  identity = next_child_identity ();
  if (name == NULL)
    name = default_name = g_strconcat ("Process-", identity, NULL);
  authkey = _fiber_process_get_current_authkey ();
  fill_child_env_full (spec, name, identity, daemon, authkey);
}

/* ------------------------------------------------------------------------
 * The child side
 * ------------------------------------------------------------------------ */

static GVariant *
read_payload (GError **error)
{
  const char *encoded = g_getenv (FIBER_ENV_PROCESS_PAYLOAD);
  const char *file = g_getenv (FIBER_ENV_PROCESS_PAYLOAD_FILE);
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GVariant) payload = NULL;

  if (encoded != NULL)
    {
      gsize len = 0;
      guchar *data = g_base64_decode (encoded, &len);

      bytes = g_bytes_new_take (data, len);
    }
  else if (file != NULL)
    {
      g_autofree char *dir = g_path_get_dirname (file);
      g_autofree char *contents = NULL;
      gsize len = 0;
      gboolean ok = g_file_get_contents (file, &contents, &len, error);

      /* Read once, then gone: the parent cleans up too if we never got
       * here. */
      g_unlink (file);
      g_rmdir (dir);
      if (!ok)
        return NULL;
      bytes = g_bytes_new_take (g_steal_pointer (&contents), len);
    }
  else
    {
      g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                           "no process payload in the environment");
      return NULL;
    }

  payload = g_variant_ref_sink (g_variant_new_from_bytes (PAYLOAD_TYPE, bytes, FALSE));
  if (!g_variant_is_normal_form (payload))
    {
      g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_PROTOCOL,
                           "malformed process payload");
      return NULL;
    }
  return g_steal_pointer (&payload);
}

static void join_children_at_exit (void);

/* Like multiprocessing's forked children (os._exit() after its own
 * clean-up), a child of the fork server flushes its streams, joins its
 * children and leaves without the atexit handlers and library destructors
 * of the server's image; a re-executed child returns to exit(). */
static int
child_exit (int status)
{
  if (!forked_child)
    return status;
  fflush (NULL);
  join_children_at_exit ();
  fflush (NULL);
  _fiber_forkserver_child_exit (status);
}

int
_fiber_process_child_main (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) payload = NULL;
  g_autoptr(GVariant) args = NULL;
  g_autoptr(GVariant) result = NULL;
  const char *task = NULL;

  payload = read_payload (&error);
  g_unsetenv (FIBER_ENV_PROCESS_PAYLOAD);
  g_unsetenv (FIBER_ENV_PROCESS_PAYLOAD_FILE);

  if (payload != NULL)
    {
      g_variant_get (payload, "(m&sv)", &task, &args);
      if (task == NULL)
        return child_exit (0);
      result = fiber_task_invoke (task, args, NULL, &error);
    }

  fflush (stdout);
  if (result == NULL)
    {
      /* As multiprocessing prints the traceback of a failed target. */
      fprintf (stderr, "Process %s:\n%s: %s\n",
               fiber_process_get_name (fiber_current_process ()),
               g_quark_to_string (error->domain), error->message);
      fflush (stderr);
      return child_exit (1);
    }
  return child_exit (0);
}

/* ------------------------------------------------------------------------
 * Active children
 * ------------------------------------------------------------------------ */

static void
children_remove (FiberProcess *self)
{
  g_autoptr(FiberProcess) removed = NULL;

  g_mutex_lock (&children_lock);
  if (children != NULL && g_ptr_array_remove_fast (children, self))
    removed = self;  /* the array's reference, dropped outside the lock */
  g_mutex_unlock (&children_lock);
}

/* As multiprocessing does when the process exits: daemonic children are
 * terminated, then every child is waited for.  (A daemonic child would
 * also exit by itself when it sees this process gone.) */
static void
join_children_at_exit (void)
{
  g_autoptr(GPtrArray) snapshot = fiber_active_children ();

  for (guint i = 0; i < snapshot->len; i++)
    if (fiber_process_get_daemon (snapshot->pdata[i]))
      fiber_process_terminate (snapshot->pdata[i]);
  for (guint i = 0; i < snapshot->len; i++)
    fiber_process_join (snapshot->pdata[i], -1);
}

static void
children_add (FiberProcess *self)
{
  g_mutex_lock (&children_lock);
  if (children == NULL)
    {
      children = g_ptr_array_new ();
      atexit (join_children_at_exit);
    }
  g_ptr_array_add (children, g_object_ref (self));
  g_mutex_unlock (&children_lock);
}

static FiberJob *
dup_job (FiberProcess *self)
{
  FiberJob *job;

  g_mutex_lock (&self->lock);
  job = self->job != NULL ? g_object_ref (self->job) : NULL;
  g_mutex_unlock (&self->lock);
  return job;
}

/* Called once the job is seen ended: cleans up and drops the process from
 * the active children. */
static void
process_ended (FiberProcess *self)
{
  char *dir;

  g_mutex_lock (&self->lock);
  dir = g_steal_pointer (&self->payload_dir);
  g_mutex_unlock (&self->lock);
  remove_payload_dir (dir);
  children_remove (self);
}

/* Non-blocking: TRUE once the process has ended (reaping it). */
static gboolean
poll_ended (FiberProcess *self)
{
  g_autoptr(FiberJob) job = dup_job (self);

  if (job == NULL)
    return FALSE;
  if (!fiber_job_has_ended (job))
    fiber_backend_refresh_job (self->backend, job, NULL);
  if (!fiber_job_has_ended (job))
    return FALSE;
  process_ended (self);
  return TRUE;
}

/* multiprocessing's _cleanup(): forget the children that have ended. */
static void
children_cleanup (void)
{
  g_autoptr(GPtrArray) snapshot = NULL;

  g_mutex_lock (&children_lock);
  if (children != NULL && children->len > 0)
    {
      snapshot = g_ptr_array_new_full (children->len, g_object_unref);
      for (guint i = 0; i < children->len; i++)
        g_ptr_array_add (snapshot, g_object_ref (children->pdata[i]));
    }
  g_mutex_unlock (&children_lock);

  for (guint i = 0; snapshot != NULL && i < snapshot->len; i++)
    poll_ended (snapshot->pdata[i]);
}

/**
 * fiber_active_children:
 *
 * The children of this process that were started and have not ended, like
 * multiprocessing's `active_children()`.  As there, calling it also
 * reaps the children that have ended.
 *
 * Returns: (transfer container) (element-type FiberProcess): the running
 *   children; freeing the array releases them
 */
GPtrArray *
fiber_active_children (void)
{
  GPtrArray *list = g_ptr_array_new_with_free_func (g_object_unref);

  children_cleanup ();
  g_mutex_lock (&children_lock);
  for (guint i = 0; children != NULL && i < children->len; i++)
    g_ptr_array_add (list, g_object_ref (children->pdata[i]));
  g_mutex_unlock (&children_lock);
  return list;
}

/* ------------------------------------------------------------------------
 * GObject
 * ------------------------------------------------------------------------ */

static void
fiber_process_constructed (GObject *object)
{
  FiberProcess *self = FIBER_PROCESS (object);

  G_OBJECT_CLASS (fiber_process_parent_class)->constructed (object);

  if (self->args == NULL)
    self->args = g_variant_ref_sink (g_variant_new ("()"));
  if (self->backend == NULL)
    self->backend = g_object_ref (fiber_backend_get_default ());

  if (constructing_current)
    {
      self->is_current = TRUE;
      return;
    }

  /* As multiprocessing: identity from the parent's counter, the daemon
   * flag and authkey of the creating process. */
  self->identity = next_child_identity ();
  if (self->name == NULL)
    self->name = g_strconcat ("Process-", self->identity, NULL);
  if (self->authkey == NULL)
    self->authkey = _fiber_process_get_current_authkey ();
  if (!self->daemon_set)
    self->daemon = fiber_process_get_daemon (fiber_current_process ());
}

static void
fiber_process_finalize (GObject *object)
{
  FiberProcess *self = FIBER_PROCESS (object);

  remove_payload_dir (g_steal_pointer (&self->payload_dir));
  g_clear_object (&self->job);
  g_clear_object (&self->backend);
  g_clear_pointer (&self->authkey, g_bytes_unref);
  g_clear_pointer (&self->args, g_variant_unref);
  g_free (self->task);
  g_free (self->name);
  g_free (self->identity);
  g_mutex_clear (&self->lock);

  G_OBJECT_CLASS (fiber_process_parent_class)->finalize (object);
}

static void
fiber_process_get_property (GObject    *object,
                            guint       prop_id,
                            GValue     *value,
                            GParamSpec *pspec)
{
  FiberProcess *self = FIBER_PROCESS (object);

  switch (prop_id)
    {
    case PROP_TASK:
      g_value_set_string (value, self->task);
      break;
    case PROP_ARGS:
      g_value_set_variant (value, self->args);
      break;
    case PROP_NAME:
      g_mutex_lock (&self->lock);
      g_value_set_string (value, self->name);
      g_mutex_unlock (&self->lock);
      break;
    case PROP_DAEMON:
      g_value_set_boolean (value, fiber_process_get_daemon (self));
      break;
    case PROP_PID:
      g_value_set_int64 (value, fiber_process_get_pid (self));
      break;
    case PROP_AUTHKEY:
      g_mutex_lock (&self->lock);
      g_value_set_boxed (value, self->authkey);
      g_mutex_unlock (&self->lock);
      break;
    case PROP_BACKEND:
      g_value_set_object (value, self->backend);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
fiber_process_set_property (GObject      *object,
                            guint         prop_id,
                            const GValue *value,
                            GParamSpec   *pspec)
{
  FiberProcess *self = FIBER_PROCESS (object);

  switch (prop_id)
    {
    case PROP_TASK:
      self->task = g_value_dup_string (value);
      break;
    case PROP_ARGS:
      self->args = g_value_dup_variant (value);
      break;
    case PROP_NAME:
      fiber_process_set_name (self, g_value_get_string (value));
      break;
    case PROP_DAEMON:
      fiber_process_set_daemon (self, g_value_get_boolean (value));
      break;
    case PROP_AUTHKEY:
      fiber_process_set_authkey (self, g_value_get_boxed (value));
      break;
    case PROP_BACKEND:
      fiber_process_set_backend (self, g_value_get_object (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
fiber_process_class_init (FiberProcessClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = fiber_process_constructed;
  object_class->finalize = fiber_process_finalize;
  object_class->get_property = fiber_process_get_property;
  object_class->set_property = fiber_process_set_property;

  /**
   * FiberProcess:task:
   *
   * The name of the registered task the process runs, or %NULL for a
   * process that does nothing (multiprocessing's `target=None`).
   */
  properties[PROP_TASK] =
    g_param_spec_string ("task", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
                         G_PARAM_STATIC_STRINGS);

  /**
   * FiberProcess:args:
   *
   * The arguments of the task; the empty tuple when none were given.
   */
  properties[PROP_ARGS] =
    g_param_spec_variant ("args", NULL, NULL, G_VARIANT_TYPE_ANY, NULL,
                          G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
                          G_PARAM_STATIC_STRINGS);

  /**
   * FiberProcess:name:
   *
   * A name for the process, `Process-N` by default (`Process-1:2` for the
   * second child of a process that is itself child `Process-1`), as in
   * multiprocessing.  The child sees it as the name of
   * fiber_current_process().
   */
  properties[PROP_NAME] =
    g_param_spec_string ("name", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY |
                         G_PARAM_STATIC_STRINGS);

  /**
   * FiberProcess:daemon:
   *
   * Whether the process is daemonic: it ends when this process ends (even
   * when killed) and may not start children of its own.  Defaults to the
   * flag of the creating process; may only be changed before
   * fiber_process_start().
   */
  properties[PROP_DAEMON] =
    g_param_spec_boolean ("daemon", NULL, NULL, FALSE,
                          G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY |
                          G_PARAM_STATIC_STRINGS);

  /**
   * FiberProcess:pid:
   *
   * The Fiber pid of the process (the process id of a local child, the
   * job id of a cluster job); 0 before it was started.
   */
  properties[PROP_PID] =
    g_param_spec_int64 ("pid", NULL, NULL, 0, G_MAXINT64, 0,
                        G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * FiberProcess:authkey:
   *
   * The authentication key the child inherits (HMAC key of pools it
   * starts).  Defaults to the key of the creating process: random bytes
   * in a top-level program.
   */
  properties[PROP_AUTHKEY] =
    g_param_spec_boxed ("authkey", NULL, NULL, G_TYPE_BYTES,
                        G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY |
                        G_PARAM_STATIC_STRINGS);

  /**
   * FiberProcess:backend:
   *
   * The backend the process runs on; fiber_backend_get_default() (a local
   * child) when not set.  May only be changed before fiber_process_start().
   */
  properties[PROP_BACKEND] =
    g_param_spec_object ("backend", NULL, NULL, FIBER_TYPE_BACKEND,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY |
                         G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
fiber_process_init (FiberProcess *self)
{
  g_mutex_init (&self->lock);
}

/* ------------------------------------------------------------------------
 * API
 * ------------------------------------------------------------------------ */

/**
 * fiber_process_new:
 * @task: (nullable): the name of a registered task, or %NULL for a process
 *   that does nothing
 * @args: (nullable): its arguments (a floating reference is sunk); %NULL
 *   for the empty tuple
 *
 * Creates a process that will run @task with @args once started.
 *
 * Returns: (transfer full): a new #FiberProcess
 */
FiberProcess *
fiber_process_new (const char *task,
                   GVariant   *args)
{
  return g_object_new (FIBER_TYPE_PROCESS, "task", task, "args", args, NULL);
}

static char *
encode_payload (FiberProcess *self,
                gsize        *size)
{
  g_autoptr(GVariant) payload = NULL;
  g_autoptr(GVariant) normal = NULL;

  payload = g_variant_ref_sink (g_variant_new ("(msv)", self->task, self->args));
  normal = g_variant_get_normal_form (payload);
  *size = g_variant_get_size (normal);
  return g_memdup2 (g_variant_get_data (normal), *size);
}

static gboolean
add_payload (FiberProcess  *self,
             FiberJobSpec  *spec,
             char         **payload_dir,
             GError       **error)
{
  g_autofree char *data = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *file = NULL;
  gsize size;

  data = encode_payload (self, &size);
  if (size <= PAYLOAD_ENV_MAX / 4 * 3)
    {
      g_autofree char *encoded = g_base64_encode ((const guchar *) data, size);

      fiber_job_spec_setenv (spec, FIBER_ENV_PROCESS_PAYLOAD, encoded);
      fiber_job_spec_setenv (spec, FIBER_ENV_PROCESS_PAYLOAD_FILE, NULL);
      return TRUE;
    }

  if (fiber_backend_is_remote (self->backend))
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                   "the arguments of process %s are too large for a remote job "
                   "(%" G_GSIZE_FORMAT " bytes, at most %d)",
                   self->name, size, PAYLOAD_ENV_MAX / 4 * 3);
      return FALSE;
    }

  /* A private 0700 directory: nobody else can read or swap the file. */
  dir = g_dir_make_tmp ("fiber-process-XXXXXX", error);
  if (dir == NULL)
    return FALSE;
  file = g_build_filename (dir, "payload", NULL);
  if (!g_file_set_contents_full (file, data, (gssize) size,
                                 G_FILE_SET_CONTENTS_NONE, 0600, error))
    {
      g_rmdir (dir);
      return FALSE;
    }
  fiber_job_spec_setenv (spec, FIBER_ENV_PROCESS_PAYLOAD, NULL);
  fiber_job_spec_setenv (spec, FIBER_ENV_PROCESS_PAYLOAD_FILE, file);
  *payload_dir = g_steal_pointer (&dir);
  return TRUE;
}

static FiberJobSpec *
build_spec (FiberProcess  *self,
            char         **payload_dir,
            GError       **error)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(FiberJobSpec) spec = NULL;
  static const char * const worker_roles[] = {
    FIBER_ENV_WORKER_ENDPOINT,
    FIBER_ENV_WORKER_ID,
    FIBER_ENV_NONCE,
    FIBER_ENV_CURVE_SERVERKEY,
  };

  if (_fiber_init_was_called ())
    {
      /* Re-execute this very program: it registers the same tasks, and
       * its fiber_init() runs the target. */
      const char * const *saved = _fiber_init_get_argv ();

      g_ptr_array_add (argv, (gpointer) get_self_exe ());
      for (guint i = 1; saved[i] != NULL; i++)
        g_ptr_array_add (argv, (gpointer) saved[i]);
    }
  else
    g_ptr_array_add (argv, (gpointer) _fiber_get_worker_executable ());
  g_ptr_array_add (argv, NULL);

  spec = fiber_job_spec_new ((const char * const *) argv->pdata);
  fill_child_env_full (spec, self->name, self->identity, self->daemon, self->authkey);
  for (guint i = 0; i < G_N_ELEMENTS (worker_roles); i++)
    fiber_job_spec_setenv (spec, worker_roles[i], NULL);
  if (!add_payload (self, spec, payload_dir, error))
    return NULL;
  return g_steal_pointer (&spec);
}

/**
 * fiber_process_start:
 * @self: a #FiberProcess
 * @error: return location for an error
 *
 * Starts the process: a job on [property@Fiber.Process:backend] that runs
 * the target.  A process can be started once.
 *
 * Returns: %TRUE if the process was started; %FALSE with
 *   %FIBER_ERROR_STATE when it was started before (or is the current
 *   process), %FIBER_ERROR_DAEMONIC in a daemonic process, or the error of
 *   the backend
 */
gboolean
fiber_process_start (FiberProcess  *self,
                     GError       **error)
{
  g_autoptr(FiberJobSpec) spec = NULL;
  g_autofree char *payload_dir = NULL;
  FiberJob *job;

  g_return_val_if_fail (FIBER_IS_PROCESS (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (self->is_current)
    {
      g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_STATE,
                           "cannot start the current process");
      return FALSE;
    }
  if (self->task != NULL && !g_utf8_validate (self->task, -1, NULL))
    {
      /* The child gets it in a GVariant string. */
      g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                           "a task name must be UTF-8");
      return FALSE;
    }
  if (!_fiber_process_check_may_have_children (error))
    return FALSE;

  /* As multiprocessing's start(): forget the children that ended. */
  children_cleanup ();

  g_mutex_lock (&self->lock);
  if (self->job != NULL)
    {
      g_mutex_unlock (&self->lock);
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_STATE,
                   "process %s was already started; a process can only be started once",
                   self->name);
      return FALSE;
    }

  spec = build_spec (self, &payload_dir, error);
  if (spec == NULL)
    job = NULL;
  else if (FIBER_IS_LOCAL_BACKEND (self->backend) && _fiber_init_was_called () &&
           fiber_current_process ()->identity != NULL &&
           *fiber_current_process ()->identity == '\0')
    /* A top-level program starts its processes through a fork server;
     * nested processes keep the plain process tree (their children are
     * their own), which is what subreapers and their tests look at. */
    job = _fiber_local_backend_create_forked_job (self->backend, spec, error);
  else
    job = fiber_backend_create_job (self->backend, spec, error);
  if (job == NULL)
    {
      g_mutex_unlock (&self->lock);
      remove_payload_dir (g_steal_pointer (&payload_dir));
      return FALSE;
    }
  self->job = job;
  self->payload_dir = g_steal_pointer (&payload_dir);
  g_mutex_unlock (&self->lock);

  children_add (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PID]);
  return TRUE;
}

/**
 * fiber_process_join:
 * @self: a #FiberProcess
 * @timeout_msec: how long to wait: -1 forever, 0 only checks
 *
 * Waits for the process to end, like multiprocessing's `join()`.  It
 * blocks on the job's file descriptor, not in a polling loop.
 *
 * Returns: %TRUE once the process has ended; %FALSE when it still runs
 *   after @timeout_msec, or was never started
 */
gboolean
fiber_process_join (FiberProcess *self,
                    int           timeout_msec)
{
  g_autoptr(FiberJob) job = NULL;

  g_return_val_if_fail (FIBER_IS_PROCESS (self), FALSE);

  job = dup_job (self);
  if (job == NULL)
    return FALSE;
  if (!fiber_backend_wait_job (self->backend, job, timeout_msec, NULL))
    return FALSE;
  process_ended (self);
  return TRUE;
}

static void
signal_process (FiberProcess *self,
                gboolean      force)
{
  g_autoptr(FiberJob) job = dup_job (self);
  g_autoptr(GError) error = NULL;

  if (job == NULL || fiber_job_has_ended (job))
    return;
  if (!fiber_backend_terminate_job (self->backend, job, force, &error))
    g_debug ("cannot stop process %s: %s", self->name, error->message);
}

/**
 * fiber_process_terminate:
 * @self: a #FiberProcess
 *
 * Asks the process to stop (`SIGTERM` for a local child, a cancellation
 * for a cluster job).  Its exit code then is -15.  Does nothing if the
 * process is not running.
 */
void
fiber_process_terminate (FiberProcess *self)
{
  g_return_if_fail (FIBER_IS_PROCESS (self));

  signal_process (self, FALSE);
}

/**
 * fiber_process_kill:
 * @self: a #FiberProcess
 *
 * Kills the process (`SIGKILL`).  Its exit code then is -9.  Does nothing
 * if the process is not running.
 */
void
fiber_process_kill (FiberProcess *self)
{
  g_return_if_fail (FIBER_IS_PROCESS (self));

  signal_process (self, TRUE);
}

/**
 * fiber_process_is_alive:
 * @self: a #FiberProcess
 *
 * Tells whether the process has started and not yet ended.
 *
 * Returns: %TRUE if the process was started and has not ended (always
 *   %TRUE for fiber_current_process())
 */
gboolean
fiber_process_is_alive (FiberProcess *self)
{
  g_autoptr(FiberJob) job = NULL;

  g_return_val_if_fail (FIBER_IS_PROCESS (self), FALSE);

  if (self->is_current)
    return TRUE;
  job = dup_job (self);
  if (job == NULL)
    return FALSE;
  return !poll_ended (self);
}

/**
 * fiber_process_get_exitcode:
 * @self: a #FiberProcess
 * @exitcode: (out) (optional): the exit code: 0 when the target
 *   succeeded, 1 when it failed, another status the child exited with,
 *   or -N when it was killed by signal N (-15 after
 *   fiber_process_terminate())
 *
 * The exit code of the process, like multiprocessing's `exitcode`
 * attribute (which is `None` where this returns %FALSE).
 *
 * Returns: %TRUE once the process has ended; %FALSE while it runs or if it
 *   was never started
 */
gboolean
fiber_process_get_exitcode (FiberProcess *self,
                            int          *exitcode)
{
  g_autoptr(FiberJob) job = NULL;

  g_return_val_if_fail (FIBER_IS_PROCESS (self), FALSE);

  job = dup_job (self);
  if (job == NULL || !poll_ended (self))
    return FALSE;
  return fiber_job_get_exitcode (job, exitcode);
}

/**
 * fiber_process_get_sentinel:
 * @self: a #FiberProcess
 *
 * A file descriptor that becomes readable when the process ends, like
 * multiprocessing's `sentinel`: wait for several processes (or other
 * events) with poll() or a #GSource.  It stays owned by @self.
 *
 * Returns: the file descriptor, or -1 before the process was started
 */
int
fiber_process_get_sentinel (FiberProcess *self)
{
  g_autoptr(FiberJob) job = NULL;

  g_return_val_if_fail (FIBER_IS_PROCESS (self), -1);

  job = dup_job (self);
  return job != NULL ? fiber_job_get_fd (job) : -1;
}

/**
 * fiber_process_run:
 * @self: a #FiberProcess
 * @error: return location for an error
 *
 * Runs the target in the calling process and thread, like
 * multiprocessing's `run()`.  This is what the child does once started.
 *
 * Returns: (transfer full): the result of the task (the empty tuple for a
 *   process without task), or %NULL with @error set
 */
GVariant *
fiber_process_run (FiberProcess  *self,
                   GError       **error)
{
  g_return_val_if_fail (FIBER_IS_PROCESS (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (self->task == NULL)
    return g_variant_ref_sink (g_variant_new ("()"));
  return fiber_task_invoke (self->task, self->args, NULL, error);
}

/**
 * fiber_process_get_name:
 * @self: a #FiberProcess
 *
 * Gets the name of the process.
 *
 * Returns: the name of the process
 */
const char *
fiber_process_get_name (FiberProcess *self)
{
  g_return_val_if_fail (FIBER_IS_PROCESS (self), NULL);

  return self->name;
}

/**
 * fiber_process_set_name:
 * @self: a #FiberProcess
 * @name: (nullable): the new name; %NULL restores the default `Process-N`
 *
 * Renames the process.  A child sees the name it had when it was started.
 */
void
fiber_process_set_name (FiberProcess *self,
                        const char   *name)
{
  g_autofree char *default_name = NULL;
  g_autofree char *old = NULL;

  g_return_if_fail (FIBER_IS_PROCESS (self));

  if (name == NULL && self->is_current && g_strcmp0 (self->identity, "") == 0)
    name = "MainProcess";
  else if (name == NULL && self->identity != NULL)
    name = default_name = g_strconcat ("Process-", self->identity, NULL);

  g_mutex_lock (&self->lock);
  if (g_strcmp0 (self->name, name) == 0)
    {
      g_mutex_unlock (&self->lock);
      return;
    }
  old = self->name;
  self->name = g_strdup (name);
  g_mutex_unlock (&self->lock);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_NAME]);
}

/**
 * fiber_process_get_daemon:
 * @self: a #FiberProcess
 *
 * Gets whether the process is a daemon.
 *
 * Returns: whether the process is daemonic
 */
gboolean
fiber_process_get_daemon (FiberProcess *self)
{
  g_return_val_if_fail (FIBER_IS_PROCESS (self), FALSE);

  return self->daemon;
}

/**
 * fiber_process_set_daemon:
 * @self: a #FiberProcess
 * @daemon: whether the process is daemonic
 *
 * Sets the daemonic flag; only before fiber_process_start().
 */
void
fiber_process_set_daemon (FiberProcess *self,
                          gboolean      daemon)
{
  g_return_if_fail (FIBER_IS_PROCESS (self));
  g_return_if_fail (self->job == NULL);

  daemon = !!daemon;
  self->daemon_set = TRUE;
  if (self->daemon == daemon)
    return;
  self->daemon = daemon;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_DAEMON]);
}

/**
 * fiber_process_get_pid:
 * @self: a #FiberProcess
 *
 * Gets the Fiber pid of the process.
 *
 * Returns: the Fiber pid: the process id of a local child, the job id of a
 *   cluster job, or 0 before the process was started
 */
gint64
fiber_process_get_pid (FiberProcess *self)
{
  g_autoptr(FiberJob) job = NULL;

  g_return_val_if_fail (FIBER_IS_PROCESS (self), 0);

  if (self->is_current)
    return self->current_pid;
  job = dup_job (self);
  return job != NULL ? fiber_job_get_pid (job) : 0;
}

/**
 * fiber_process_get_authkey:
 * @self: a #FiberProcess
 *
 * Gets the authentication key of the process.
 *
 * Returns: (transfer none): the authentication key
 */
GBytes *
fiber_process_get_authkey (FiberProcess *self)
{
  g_return_val_if_fail (FIBER_IS_PROCESS (self), NULL);

  return self->authkey;
}

/**
 * fiber_process_set_authkey:
 * @self: a #FiberProcess
 * @authkey: the new key (at least one byte)
 *
 * Sets the authentication key a child started afterwards inherits.  On
 * fiber_current_process() it changes the key of this process.
 */
void
fiber_process_set_authkey (FiberProcess *self,
                           GBytes       *authkey)
{
  GBytes *old;

  g_return_if_fail (FIBER_IS_PROCESS (self));
  g_return_if_fail (authkey != NULL && g_bytes_get_size (authkey) > 0);

  g_mutex_lock (&self->lock);
  old = self->authkey;
  self->authkey = g_bytes_ref (authkey);
  g_mutex_unlock (&self->lock);
  g_clear_pointer (&old, g_bytes_unref);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_AUTHKEY]);
}

/**
 * fiber_process_get_task:
 * @self: a #FiberProcess
 *
 * Gets the name of the task the process runs.
 *
 * Returns: (nullable): the name of the task the process runs
 */
const char *
fiber_process_get_task (FiberProcess *self)
{
  g_return_val_if_fail (FIBER_IS_PROCESS (self), NULL);

  return self->task;
}

/**
 * fiber_process_get_args:
 * @self: a #FiberProcess
 *
 * Gets the arguments of the process's task.
 *
 * Returns: (transfer none): the arguments of the task
 */
GVariant *
fiber_process_get_args (FiberProcess *self)
{
  g_return_val_if_fail (FIBER_IS_PROCESS (self), NULL);

  return self->args;
}

/**
 * fiber_process_get_backend:
 * @self: a #FiberProcess
 *
 * Gets the backend that runs the process.
 *
 * Returns: (transfer none): the backend the process runs on
 */
FiberBackend *
fiber_process_get_backend (FiberProcess *self)
{
  g_return_val_if_fail (FIBER_IS_PROCESS (self), NULL);

  return self->backend;
}

/**
 * fiber_process_set_backend:
 * @self: a #FiberProcess
 * @backend: (nullable): the backend, or %NULL for fiber_backend_get_default()
 *
 * Chooses where the process runs; only before fiber_process_start().
 */
void
fiber_process_set_backend (FiberProcess *self,
                           FiberBackend *backend)
{
  g_return_if_fail (FIBER_IS_PROCESS (self));
  g_return_if_fail (backend == NULL || FIBER_IS_BACKEND (backend));
  g_return_if_fail (self->job == NULL);

  if (backend == NULL)
    backend = fiber_backend_get_default ();
  if (g_set_object (&self->backend, backend))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_BACKEND]);
}

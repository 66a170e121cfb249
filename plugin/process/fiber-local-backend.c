/* fiber-local-backend.c — jobs as child processes of this process
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fiber-error.h"
#include "fiber-init-private.h"
#include "fiber-job-private.h"
#include "fiber-local-backend.h"

/**
 * FiberLocalBackend:
 *
 * The default [iface@Fiber.Backend]: every job is a child process of this
 * process, started with posix_spawn().
 *
 * The job's [property@Fiber.Job:fd] is the child's pidfd, the exit code is
 * collected with waitpid() once the child ended, and a child whose
 * [class@Fiber.Job] is dropped while it still runs is reaped by a
 * background thread when it ends: the backend never leaves a zombie.
 */
struct _FiberLocalBackend
{
  GObject parent_instance;
};

static void fiber_local_backend_iface_init (FiberBackendInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (FiberLocalBackend, fiber_local_backend, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (FIBER_TYPE_BACKEND,
                                                      fiber_local_backend_iface_init))

#define LOCAL_JOB_MAGIC 0x4c4f434cu /* "LOCL" */

/* The backend data of a local job.  @lock serialises reaping and
 * signalling, so a signal never reaches a recycled pid. */
typedef struct
{
  guint          magic;
  GMutex         lock;
  GPid           pid;
  gboolean       reaped;
  gboolean       terminate_requested;
  FiberJobState  state;
  int            exitcode;
} LocalJob;

/* ------------------------------------------------------------------------
 * Reaper: children whose job was dropped while they ran
 * ------------------------------------------------------------------------ */

typedef struct
{
  GPid pid;
  int  pidfd;
} Orphan;

static GMutex  reaper_lock;
static GArray *reaper_orphans;
static int     reaper_wakeup = -1;

static gboolean
try_reap (GPid pid)
{
  int status;
  pid_t r;

  do
    r = waitpid (pid, &status, WNOHANG);
  while (r < 0 && errno == EINTR);
  /* Reaped, or not our child any more (ECHILD): either way it is gone. */
  return r != 0;
}

static gpointer
reaper_thread_func (gpointer data)
{
  g_autoptr(GArray) fds = g_array_new (FALSE, FALSE, sizeof (struct pollfd));

  for (;;)
    {
      struct pollfd wake = { .fd = reaper_wakeup, .events = POLLIN };

      g_array_set_size (fds, 0);
      g_array_append_val (fds, wake);
      g_mutex_lock (&reaper_lock);
      for (guint i = 0; i < reaper_orphans->len; i++)
        {
          struct pollfd pfd = {
            .fd = g_array_index (reaper_orphans, Orphan, i).pidfd,
            .events = POLLIN,
          };
          g_array_append_val (fds, pfd);
        }
      g_mutex_unlock (&reaper_lock);

      if (poll ((struct pollfd *) (gpointer) fds->data, fds->len, -1) < 0)
        continue;

      if (g_array_index (fds, struct pollfd, 0).revents & POLLIN)
        {
          uint64_t n;
          while (read (reaper_wakeup, &n, sizeof n) < 0 && errno == EINTR)
            ;
        }

      g_mutex_lock (&reaper_lock);
      for (guint i = reaper_orphans->len; i > 0; i--)
        {
          Orphan *o = &g_array_index (reaper_orphans, Orphan, i - 1);

          if (try_reap (o->pid))
            {
              close (o->pidfd);
              g_array_remove_index_fast (reaper_orphans, i - 1);
            }
        }
      g_mutex_unlock (&reaper_lock);
    }
  return NULL;
}

static gpointer
blocking_reap_thread_func (gpointer data)
{
  GPid pid = GPOINTER_TO_INT (data);
  int status;

  while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
    ;
  return NULL;
}

/* Takes over reaping @pid, a child of this process nobody waits for. */
static void
reaper_adopt (GPid pid)
{
  Orphan orphan = { pid, -1 };
  uint64_t one = 1;

  if (try_reap (pid))
    return;

  orphan.pidfd = pidfd_open (pid, 0);
  if (orphan.pidfd < 0)
    {
      /* No pidfds here (old kernel, seccomp, valgrind): one thread per
       * orphan blocks in waitpid(). */
      GThread *thread = g_thread_try_new ("fiber-reaper", blocking_reap_thread_func,
                                          GINT_TO_POINTER (pid), NULL);
      if (thread != NULL)
        g_thread_unref (thread);
      else
        g_warning ("cannot reap child %d: no thread", (int) pid);
      return;
    }

  g_mutex_lock (&reaper_lock);
  if (reaper_orphans == NULL)
    {
      GThread *thread;

      reaper_orphans = g_array_new (FALSE, FALSE, sizeof (Orphan));
      reaper_wakeup = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
      thread = g_thread_new ("fiber-reaper", reaper_thread_func, NULL);
      g_thread_unref (thread);
    }
  g_array_append_val (reaper_orphans, orphan);
  g_mutex_unlock (&reaper_lock);

  while (write (reaper_wakeup, &one, sizeof one) < 0 && errno == EINTR)
    ;
}

/* ------------------------------------------------------------------------
 * Jobs
 * ------------------------------------------------------------------------ */

static void
local_job_free (gpointer data)
{
  LocalJob *lj = data;

  g_mutex_lock (&lj->lock);
  if (!lj->reaped)
    reaper_adopt (lj->pid);
  g_mutex_unlock (&lj->lock);
  g_mutex_clear (&lj->lock);
  g_free (lj);
}

static LocalJob *
get_local_job (FiberJob  *job,
               GError   **error)
{
  LocalJob *lj = _fiber_job_get_backend_data (job);

  if (lj == NULL || lj->magic != LOCAL_JOB_MAGIC)
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                   "job %s was not created by the local backend",
                   fiber_job_get_id (job));
      return NULL;
    }
  return lj;
}

/* Without pidfds the job fd is an eventfd written by a thread that
 * waits (without reaping) for the child to end. */
typedef struct
{
  GPid pid;
  int  eventfd;
} Waiter;

static gpointer
waiter_thread_func (gpointer data)
{
  Waiter *w = data;
  siginfo_t info;
  uint64_t one = 1;

  while (waitid (P_PID, w->pid, &info, WEXITED | WNOWAIT) < 0 && errno == EINTR)
    ;
  while (write (w->eventfd, &one, sizeof one) < 0 && errno == EINTR)
    ;
  close (w->eventfd);
  g_free (w);
  return NULL;
}

static int
open_job_fd (GPid pid)
{
  int fd = pidfd_open (pid, 0);
  Waiter *w;
  GThread *thread;

  if (fd >= 0)
    return fd;

  fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0)
    return -1;
  w = g_new0 (Waiter, 1);
  w->pid = pid;
  w->eventfd = fcntl (fd, F_DUPFD_CLOEXEC, 3);
  thread = w->eventfd >= 0
    ? g_thread_try_new ("fiber-job-waiter", waiter_thread_func, w, NULL)
    : NULL;
  if (thread == NULL)
    {
      if (w->eventfd >= 0)
        close (w->eventfd);
      g_free (w);
      close (fd);
      errno = EAGAIN;
      return -1;
    }
  g_thread_unref (thread);
  return fd;
}

static FiberJob *
fiber_local_backend_create_job (FiberBackend  *backend,
                                FiberJobSpec  *spec,
                                GError       **error)
{
  const char * const *argv = fiber_job_spec_get_argv (spec);
  const char *cwd = fiber_job_spec_get_cwd (spec);
  g_auto(GStrv) envp = NULL;
  g_autofree char *id = NULL;
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  sigset_t mask, defaults;
  LocalJob *lj;
  pid_t pid;
  int r, fd;

  envp = _fiber_job_spec_apply_environment (spec, g_get_environ ());
  if (fiber_job_spec_get_daemon (spec))
    {
      /* The child's fiber_init() watches this process and exits with it. */
      g_autofree char *self_pid = g_strdup_printf ("%d", (int) getpid ());
      envp = g_environ_setenv (envp, FIBER_ENV_PARENT_PID, self_pid, TRUE);
    }

  posix_spawnattr_init (&attr);
  posix_spawn_file_actions_init (&actions);

  /* The spawning thread may block signals (GLib's worker threads, the
   * dispatcher); the child starts with none blocked and with SIGPIPE at its
   * default action, as a freshly started program expects. */
  sigemptyset (&mask);
  sigemptyset (&defaults);
  sigaddset (&defaults, SIGPIPE);
  posix_spawnattr_setsigmask (&attr, &mask);
  posix_spawnattr_setsigdefault (&attr, &defaults);
  posix_spawnattr_setflags (&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  if (cwd != NULL)
    posix_spawn_file_actions_addchdir_np (&actions, cwd);

  if (strchr (argv[0], '/') != NULL)
    r = posix_spawn (&pid, argv[0], &actions, &attr, (char * const *) argv, envp);
  else
    r = posix_spawnp (&pid, argv[0], &actions, &attr, (char * const *) argv, envp);

  posix_spawn_file_actions_destroy (&actions);
  posix_spawnattr_destroy (&attr);

  if (r != 0)
    {
      if (cwd != NULL)
        g_set_error (error, FIBER_ERROR, FIBER_ERROR_BACKEND,
                     "cannot start “%s” in “%s”: %s", argv[0], cwd, g_strerror (r));
      else
        g_set_error (error, FIBER_ERROR, FIBER_ERROR_BACKEND,
                     "cannot start “%s”: %s", argv[0], g_strerror (r));
      return NULL;
    }

  /* The child is not reaped yet, so its pid cannot have been recycled. */
  fd = open_job_fd (pid);
  if (fd < 0)
    {
      int saved_errno = errno;
      int status;

      kill (pid, SIGKILL);
      while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
        ;
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_BACKEND,
                   "cannot watch child process %d: %s", (int) pid,
                   g_strerror (saved_errno));
      return NULL;
    }

  lj = g_new0 (LocalJob, 1);
  lj->magic = LOCAL_JOB_MAGIC;
  g_mutex_init (&lj->lock);
  lj->pid = pid;

  id = g_strdup_printf ("%d", (int) pid);
  {
    FiberJob *job = _fiber_job_new (id, pid, fd, lj, local_job_free);
    _fiber_job_set_state (job, FIBER_JOB_STATE_RUNNING);
    return job;
  }
}

static gboolean
fiber_local_backend_refresh_job (FiberBackend  *backend,
                                 FiberJob      *job,
                                 GError       **error)
{
  LocalJob *lj = get_local_job (job, error);
  gboolean ended;
  FiberJobState state;
  int exitcode;

  if (lj == NULL)
    return FALSE;

  g_mutex_lock (&lj->lock);
  if (!lj->reaped)
    {
      int status = 0;
      pid_t r;

      do
        r = waitpid (lj->pid, &status, WNOHANG);
      while (r < 0 && errno == EINTR);

      if (r == lj->pid)
        {
          lj->reaped = TRUE;
          lj->exitcode = _fiber_wait_status_to_exitcode (status);
          if (lj->exitcode == 0)
            lj->state = FIBER_JOB_STATE_COMPLETED;
          else if (lj->terminate_requested)
            lj->state = FIBER_JOB_STATE_CANCELLED;
          else
            lj->state = FIBER_JOB_STATE_FAILED;
        }
      else if (r < 0)
        {
          /* Someone else reaped our child (a waitpid(-1) elsewhere, or
           * SIGCHLD set to SIG_IGN): it has ended, its status is lost. */
          lj->reaped = TRUE;
          lj->exitcode = 255;
          lj->state = FIBER_JOB_STATE_LOST;
        }
    }
  ended = lj->reaped;
  state = lj->state;
  exitcode = lj->exitcode;
  g_mutex_unlock (&lj->lock);

  /* Idempotent: whoever gets here first records the end, and every caller
   * returns with the job marked ended. */
  if (ended)
    _fiber_job_set_ended (job, state, exitcode);
  return TRUE;
}

static gboolean
fiber_local_backend_wait_job (FiberBackend  *backend,
                              FiberJob      *job,
                              int            timeout_msec,
                              GError       **error)
{
  if (get_local_job (job, error) == NULL)
    return FALSE;

  if (!fiber_job_has_ended (job))
    {
      /* Block on the pidfd: no polling loop, no SIGCHLD handler. */
      if (_fiber_job_poll (job, timeout_msec) &&
          !fiber_local_backend_refresh_job (backend, job, error))
        return FALSE;
    }
  if (fiber_job_has_ended (job))
    return TRUE;
  g_set_error (error, FIBER_ERROR, FIBER_ERROR_TIMEOUT,
               "process %s is still running", fiber_job_get_id (job));
  return FALSE;
}

static gboolean
fiber_local_backend_terminate_job (FiberBackend  *backend,
                                   FiberJob      *job,
                                   gboolean       force,
                                   GError       **error)
{
  LocalJob *lj = get_local_job (job, error);
  int saved_errno = 0;

  if (lj == NULL)
    return FALSE;

  g_mutex_lock (&lj->lock);
  if (!lj->reaped)
    {
      /* Unreaped, so the pid is still our child (maybe a zombie). */
      lj->terminate_requested = TRUE;
      if (kill (lj->pid, force ? SIGKILL : SIGTERM) < 0)
        saved_errno = errno;
    }
  g_mutex_unlock (&lj->lock);

  if (saved_errno != 0)
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_BACKEND,
                   "cannot signal process %s: %s", fiber_job_get_id (job),
                   g_strerror (saved_errno));
      return FALSE;
    }
  return TRUE;
}

static const char *
fiber_local_backend_get_name (FiberBackend *backend)
{
  return "local";
}

static gboolean
fiber_local_backend_is_remote (FiberBackend *backend)
{
  return FALSE;
}

static char *
fiber_local_backend_get_listen_address (FiberBackend  *backend,
                                        GError       **error)
{
  return g_strdup ("127.0.0.1");
}

static void
fiber_local_backend_iface_init (FiberBackendInterface *iface)
{
  iface->get_name = fiber_local_backend_get_name;
  iface->is_remote = fiber_local_backend_is_remote;
  iface->create_job = fiber_local_backend_create_job;
  iface->refresh_job = fiber_local_backend_refresh_job;
  iface->wait_job = fiber_local_backend_wait_job;
  iface->terminate_job = fiber_local_backend_terminate_job;
  iface->get_listen_address = fiber_local_backend_get_listen_address;
}

static void
fiber_local_backend_class_init (FiberLocalBackendClass *klass)
{
}

static void
fiber_local_backend_init (FiberLocalBackend *self)
{
}

/**
 * fiber_local_backend_new:
 *
 * Creates a backend that runs jobs as child processes of this process.
 * Usually fiber_backend_get_default() is what you want.
 *
 * Returns: (transfer full): a new local backend
 */
FiberBackend *
fiber_local_backend_new (void)
{
  return g_object_new (FIBER_TYPE_LOCAL_BACKEND, NULL);
}

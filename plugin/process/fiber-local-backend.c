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
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fiber-error.h"
#include "fiber-forkserver-private.h"
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
  /* Started by the fork server (not our child): its wait status comes on
   * @status_fd (the job's fd, owned by the job: readable once the status
   * is there, or the server is gone), signals go through @pidfd (ours). */
  gboolean       forked;
  int            status_fd;
  int            pidfd;
  gint64         exited_at;   /* forked: when its pidfd first said exited */
} LocalJob;

/* How long the fork server may take to report the wait status of a child
 * that has exited before the status counts as lost. */
#define STATUS_GRACE_USEC (2 * G_USEC_PER_SEC)

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
  if (!lj->reaped && !lj->forked)
    reaper_adopt (lj->pid);
  g_mutex_unlock (&lj->lock);
  if (lj->pidfd >= 0)
    close (lj->pidfd);
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
  lj->status_fd = -1;
  lj->pidfd = -1;

  id = g_strdup_printf ("%d", (int) pid);
  {
    FiberJob *job = _fiber_job_new (id, pid, fd, lj, local_job_free);
    _fiber_job_set_state (job, FIBER_JOB_STATE_RUNNING);
    return job;
  }
}

static void
record_wait_status (LocalJob *lj,
                    int       status)
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

static void
record_lost (LocalJob *lj)
{
  lj->reaped = TRUE;
  lj->exitcode = 255;
  lj->state = FIBER_JOB_STATE_LOST;
}

/* Whether the process behind @pidfd has exited. */
static gboolean
pidfd_exited (int pidfd)
{
  struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
  int n;

  while ((n = poll (&pfd, 1, 0)) < 0 && errno == EINTR)
    ;
  return n > 0;
}

/* With lj->lock held, never blocking (the pool dispatcher calls this on
 * its thread): the status of a process of the fork server comes on the
 * (non-blocking) status socket, from the child itself when it exits
 * normally, else from the server once it reaped the child.  Until then
 * the job still counts as running; the end of the socket without a status,
 * or no status STATUS_GRACE_USEC after the pidfd said the process exited
 * (a server that hangs), ends the job as LOST. */
static void
forked_job_collect (LocalJob *lj)
{
  int status = 0;
  ssize_t n;

  /* Peeked, not read: the status stays, so the job's fd (its sentinel)
   * stays readable after the end. */
  while ((n = recv (lj->status_fd, &status, sizeof status, MSG_PEEK | MSG_DONTWAIT)) < 0 &&
         errno == EINTR)
    ;
  if (n == sizeof status)
    {
      record_wait_status (lj, status);
      return;
    }
  if (n < 0 && !pidfd_exited (lj->pidfd))
    return;
  if (lj->exited_at == 0)
    lj->exited_at = g_get_monotonic_time ();
  if (n >= 0)
    {
      /* End of the socket (or a torn write): the server is gone without
       * telling, the status is lost. */
      g_debug ("the fork server did not report how process %d ended", (int) lj->pid);
      record_lost (lj);
    }
  else if (g_get_monotonic_time () - lj->exited_at >= STATUS_GRACE_USEC)
    {
      g_debug ("no exit status for process %d within %d ms of its end",
               (int) lj->pid, (int) (STATUS_GRACE_USEC / 1000));
      record_lost (lj);
    }
}

/* Outside lj->lock: waits up to @timeout_msec (-1: the grace period) for
 * the fork server to report the status of a process that has exited. */
static void
forked_job_wait_status (LocalJob *lj,
                        int       timeout_msec)
{
  struct pollfd st = { .fd = lj->status_fd, .events = POLLIN };
  int grace_msec = (int) (STATUS_GRACE_USEC / 1000);

  g_mutex_lock (&lj->lock);
  if (lj->exited_at == 0)
    lj->exited_at = g_get_monotonic_time ();
  g_mutex_unlock (&lj->lock);
  if (timeout_msec < 0 || timeout_msec > grace_msec)
    timeout_msec = grace_msec;
  while (poll (&st, 1, timeout_msec) < 0 && errno == EINTR)
    ;
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
  if (!lj->reaped && lj->forked)
    forked_job_collect (lj);
  else if (!lj->reaped)
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
          record_lost (lj);
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
  LocalJob *lj = get_local_job (job, error);
  gint64 deadline = timeout_msec < 0 ? -1
                    : g_get_monotonic_time () + (gint64) timeout_msec * 1000;

  if (lj == NULL)
    return FALSE;

  if (!fiber_job_has_ended (job) && lj->forked)
    {
      /* Block on the pidfd, then (within the grace period) on the status
       * pipe: a hung fork server cannot hold us beyond that. */
      struct pollfd pfd = { .fd = lj->pidfd, .events = POLLIN };
      int left;

      while (poll (&pfd, 1, timeout_msec) < 0 && errno == EINTR)
        ;
      left = deadline < 0 ? -1
             : (int) MAX (0, (deadline - g_get_monotonic_time ()) / 1000);
      if (pidfd_exited (lj->pidfd))
        forked_job_wait_status (lj, left);
      if (!fiber_local_backend_refresh_job (backend, job, error))
        return FALSE;
    }
  else if (!fiber_job_has_ended (job))
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
  if (!lj->reaped && lj->forked)
    {
      /* Through the pidfd: never a recycled pid. */
      lj->terminate_requested = TRUE;
      if (pidfd_send_signal (lj->pidfd, force ? SIGKILL : SIGTERM, NULL, 0) < 0 &&
          errno != ESRCH)
        saved_errno = errno;
    }
  else if (!lj->reaped)
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

/* ------------------------------------------------------------------------
 * Fork server (see fiber-forkserver-private.h)
 * ------------------------------------------------------------------------ */

#define FORKSERVER_FD        3
#define FORKSERVER_MAX_REQ   (64 * 1024 * 1024)
#define FORKSERVER_REQ_TYPE  "(aayay)"
/* How long the server waits before it tries again when a fork failed. */
#define SPARE_RETRY_MSEC     100

/* Parent side: one server per process, for the command it was started
 * with. */
static GMutex  fs_lock;
static int     fs_sock = -1;
static GPid    fs_owner;
static char  **fs_argv;
static gboolean fs_failed;

static gboolean
write_full (int          fd,
            const void  *data,
            gsize        size)
{
  const guint8 *p = data;

  while (size > 0)
    {
      ssize_t n = send (fd, p, size, MSG_NOSIGNAL);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      p += n;
      size -= (gsize) n;
    }
  return TRUE;
}

static gboolean
read_full (int    fd,
           void  *data,
           gsize  size)
{
  guint8 *p = data;

  while (size > 0)
    {
      ssize_t n = read (fd, p, size);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      p += n;
      size -= (gsize) n;
    }
  return TRUE;
}

/* Sends @size bytes at @data with @n_fds descriptors attached. */
static gboolean
send_with_fds (int          sock,
               const void  *data,
               gsize        size,
               const int   *fds,
               guint        n_fds)
{
  union {
    char           buf[CMSG_SPACE (4 * sizeof (int))];
    struct cmsghdr align;
  } control;
  struct iovec iov = { .iov_base = (void *) data, .iov_len = size };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
  ssize_t n;

  g_assert (n_fds <= 4);
  if (n_fds > 0)
    {
      struct cmsghdr *cmsg;

      memset (&control, 0, sizeof control);
      msg.msg_control = control.buf;
      msg.msg_controllen = CMSG_SPACE (n_fds * sizeof (int));
      cmsg = CMSG_FIRSTHDR (&msg);
      cmsg->cmsg_level = SOL_SOCKET;
      cmsg->cmsg_type = SCM_RIGHTS;
      cmsg->cmsg_len = CMSG_LEN (n_fds * sizeof (int));
      memcpy (CMSG_DATA (cmsg), fds, n_fds * sizeof (int));
    }
  do
    n = sendmsg (sock, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n <= 0)
    return FALSE;
  return write_full (sock, (const guint8 *) data + n, size - (gsize) n);
}

/* Receives @size bytes into @data and exactly @n_fds descriptors (close on
 * exec).  Any other number of descriptors is an error. */
static gboolean
recv_with_fds (int    sock,
               void  *data,
               gsize  size,
               int   *fds,
               guint  n_fds)
{
  union {
    char           buf[CMSG_SPACE (4 * sizeof (int))];
    struct cmsghdr align;
  } control;
  struct iovec iov = { .iov_base = data, .iov_len = size };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
                        .msg_control = control.buf, .msg_controllen = sizeof control.buf };
  guint got = 0;
  ssize_t n;

  do
    n = recvmsg (sock, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n <= 0)
    return FALSE;

  for (struct cmsghdr *cmsg = CMSG_FIRSTHDR (&msg); cmsg != NULL; cmsg = CMSG_NXTHDR (&msg, cmsg))
    if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS)
      {
        guint count = (guint) ((cmsg->cmsg_len - CMSG_LEN (0)) / sizeof (int));
        int received[4];

        memcpy (received, CMSG_DATA (cmsg), MIN (count, 4u) * sizeof (int));
        for (guint i = 0; i < MIN (count, 4u); i++)
          {
            if (got < n_fds)
              fds[got++] = received[i];
            else
              close (received[i]);
          }
      }
  if (got != n_fds || (msg.msg_flags & MSG_CTRUNC) != 0)
    {
      for (guint i = 0; i < got; i++)
        close (fds[i]);
      return FALSE;
    }
  if (!read_full (sock, (guint8 *) data + n, size - (gsize) n))
    {
      for (guint i = 0; i < got; i++)
        close (fds[i]);
      return FALSE;
    }
  return TRUE;
}

/* With fs_lock held. */
static gboolean
forkserver_start (const char * const *argv)
{
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  g_auto(GStrv) envp = NULL;
  g_autofree char *fd_text = g_strdup_printf ("%d", FORKSERVER_FD);
  sigset_t mask, defaults;
  int sv[2], child_end, status = 0, r;
  pid_t pid;

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return FALSE;
  /* Away from FORKSERVER_FD, so that dup2() clears close-on-exec. */
  child_end = fcntl (sv[1], F_DUPFD_CLOEXEC, FORKSERVER_FD + 1);
  close (sv[1]);
  if (child_end < 0)
    {
      close (sv[0]);
      return FALSE;
    }

  /* Not LD_BIND_NOW: resolving every symbol of some 40 libraries up
   * front made the first start (which waits for the server) ~3-6 ms
   * slower, far more than the lazy resolution costs the children. */
  envp = g_environ_setenv (g_get_environ (), FIBER_ENV_FORKSERVER_FD, fd_text, TRUE);
  posix_spawnattr_init (&attr);
  posix_spawn_file_actions_init (&actions);
  sigemptyset (&mask);
  sigemptyset (&defaults);
  sigaddset (&defaults, SIGPIPE);
  posix_spawnattr_setsigmask (&attr, &mask);
  posix_spawnattr_setsigdefault (&attr, &defaults);
  posix_spawnattr_setflags (&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawn_file_actions_adddup2 (&actions, child_end, FORKSERVER_FD);
  r = posix_spawn (&pid, argv[0], &actions, &attr, (char * const *) argv, envp);
  posix_spawn_file_actions_destroy (&actions);
  posix_spawnattr_destroy (&attr);
  close (child_end);
  if (r != 0)
    {
      close (sv[0]);
      return FALSE;
    }

  /* The process detaches by forking the server and exiting: its exit
   * status says whether the server runs. */
  while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    {
      g_debug ("the fork server did not start (wait status %d); spawning instead", status);
      close (sv[0]);
      return FALSE;
    }

  /* A spare that died half-way through a request must not hang us. */
  {
    struct timeval timeout = { .tv_sec = 10 };

    setsockopt (sv[0], SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  }
  fs_sock = sv[0];
  fs_owner = getpid ();
  g_strfreev (fs_argv);
  fs_argv = g_strdupv ((char **) argv);
  return TRUE;
}

/* With fs_lock held: one start.  FALSE when the server is gone. */
static gboolean
forkserver_request (GBytes *request,
                    gint64 *pid,
                    int    *pidfd,
                    int    *status_fd)
{
  gsize size;
  const guint8 *data = g_bytes_get_data (request, &size);
  g_autofree guint8 *framed = g_malloc (4 + size);
  guint32 size32 = (guint32) size;
  int stdio[3], null_fd = -1;
  int fds[2];
  gboolean ok;

  /* The child gets our standard streams as they are now. */
  for (int i = 0; i < 3; i++)
    {
      stdio[i] = i;
      if (fcntl (i, F_GETFD) < 0)
        {
          if (null_fd < 0)
            null_fd = open ("/dev/null", O_RDWR | O_CLOEXEC);
          stdio[i] = null_fd;
        }
    }
  memcpy (framed, &size32, 4);
  memcpy (framed + 4, data, size);
  ok = stdio[0] >= 0 && stdio[1] >= 0 && stdio[2] >= 0 &&
       send_with_fds (fs_sock, framed, 4 + size, stdio, 3);
  if (null_fd >= 0)
    close (null_fd);
  if (!ok)
    return FALSE;

  if (!recv_with_fds (fs_sock, pid, sizeof *pid, fds, 0))
    return FALSE;
  if (*pid <= 0)
    return TRUE;  /* the server could not fork: *pid is -errno */
  /* The two descriptors follow the pid in a message of their own. */
  {
    guint8 ack;

    if (!recv_with_fds (fs_sock, &ack, 1, fds, 2))
      return FALSE;
  }
  *pidfd = fds[0];
  *status_fd = fds[1];
  fcntl (*status_fd, F_SETFL, O_NONBLOCK);
  return TRUE;
}

FiberJob *
_fiber_local_backend_create_forked_job (FiberBackend  *backend,
                                        FiberJobSpec  *spec,
                                        GError       **error)
{
  const char * const *argv = fiber_job_spec_get_argv (spec);
  const char *cwd = fiber_job_spec_get_cwd (spec);
  const char *method = g_getenv (FIBER_ENV_START_METHOD);
  g_auto(GStrv) envp = NULL;
  g_autofree char *here = NULL;
  g_autoptr(GVariant) request = NULL;
  g_autoptr(GBytes) bytes = NULL;
  g_autofree char *id = NULL;
  gint64 pid = 0;
  int pidfd = -1, status_fd = -1;
  gboolean done = FALSE;
  int subreaper = 0;
  LocalJob *lj;
  FiberJob *job;

  g_return_val_if_fail (FIBER_IS_LOCAL_BACKEND (backend), NULL);

  /* A subreaper would adopt the detached server: it spawns instead. */
  if (prctl (PR_GET_CHILD_SUBREAPER, &subreaper) != 0 || subreaper != 0 ||
      (method != NULL && g_str_equal (method, "spawn")) ||
      argv == NULL || argv[0] == NULL || !g_path_is_absolute (argv[0]) ||
      (cwd != NULL && !g_file_test (cwd, G_FILE_TEST_IS_DIR)))
    return fiber_backend_create_job (backend, spec, error);

  envp = _fiber_job_spec_apply_environment (spec, g_get_environ ());
  if (fiber_job_spec_get_daemon (spec))
    {
      g_autofree char *self_pid = g_strdup_printf ("%d", (int) getpid ());
      envp = g_environ_setenv (envp, FIBER_ENV_PARENT_PID, self_pid, TRUE);
    }
  if (cwd == NULL)
    cwd = here = g_get_current_dir ();
  request = g_variant_ref_sink (g_variant_new ("(^aay^ay)", envp, cwd));
  bytes = g_variant_get_data_as_bytes (request);

  g_mutex_lock (&fs_lock);
  if (fs_sock >= 0 && fs_owner != getpid ())
    {
      /* A fork of the process that started the server: not ours. */
      close (fs_sock);
      fs_sock = -1;
      fs_failed = FALSE;
    }
  if (fs_sock >= 0 && !g_strv_equal ((const char * const *) fs_argv, argv))
    {
      g_mutex_unlock (&fs_lock);
      return fiber_backend_create_job (backend, spec, error);
    }
  /* A server that died is replaced once. */
  for (int attempt = 0; attempt < 2 && !done && !fs_failed; attempt++)
    {
      if (fs_sock < 0 && !forkserver_start (argv))
        {
          fs_failed = TRUE;
          break;
        }
      done = forkserver_request (bytes, &pid, &pidfd, &status_fd);
      if (!done)
        {
          close (fs_sock);
          fs_sock = -1;
        }
    }
  g_mutex_unlock (&fs_lock);

  if (!done || pid <= 0)
    return fiber_backend_create_job (backend, spec, error);

  lj = g_new0 (LocalJob, 1);
  lj->magic = LOCAL_JOB_MAGIC;
  g_mutex_init (&lj->lock);
  lj->pid = (GPid) pid;
  lj->forked = TRUE;
  lj->status_fd = status_fd;
  lj->pidfd = pidfd;

  /* The status socket is the job's fd (its sentinel), as in
   * multiprocessing's forkserver: once it is readable the status can be
   * read at once, so whoever saw it can also see the job ended. */
  id = g_strdup_printf ("%" G_GINT64_FORMAT, pid);
  job = _fiber_job_new (id, pid, status_fd, lj, local_job_free);
  _fiber_job_set_state (job, FIBER_JOB_STATE_RUNNING);
  return job;
}

/* Server side. */

/* In a child of the server: where it reports its own exit status. */
static int child_status_fd = -1;

void
_fiber_forkserver_child_exit (int status)
{
  if (child_status_fd >= 0)
    {
      int wait_status = (status & 0xff) << 8;  /* W_EXITCODE (status, 0) */

      if (send (child_status_fd, &wait_status, sizeof wait_status, MSG_NOSIGNAL) < 0)
        { /* the parent no longer cares */ }
    }
  _exit (status);
}

typedef struct
{
  GPid pid;
  int  status_fd;
} ForkedChild;

static int
count_threads (void)
{
  g_autofree char *status = NULL;
  const char *line;

  if (!g_file_get_contents ("/proc/self/status", &status, NULL, NULL))
    return -1;
  line = strstr (status, "\nThreads:");
  return line != NULL ? atoi (line + strlen ("\nThreads:")) : -1;
}

static void
reap_forked (GArray *children)
{
  int status;
  pid_t pid;

  while ((pid = waitpid (-1, &status, WNOHANG)) > 0)
    {
      for (guint i = 0; i < children->len; i++)
        {
          ForkedChild *c = &g_array_index (children, ForkedChild, i);

          if (c->pid != pid)
            continue;
          if (send (c->status_fd, &status, sizeof status, MSG_NOSIGNAL) < 0)
            { /* the parent no longer cares */ }
          close (c->status_fd);
          g_array_remove_index_fast (children, i);
          break;
        }
    }
}

/* In the new child: becomes what a re-executed child would be. */
static void
forked_child_setup (GVariant *request,
                    int      *stdio)
{
  g_autofree const char **env = NULL;
  const char *cwd;
  sigset_t none;

  g_variant_get (request, "(^a&ay^&ay)", &env, &cwd);
  for (int i = 0; i < 3; i++)
    {
      if (stdio[i] != i)
        {
          dup2 (stdio[i], i);
          close (stdio[i]);
        }
      else
        fcntl (i, F_SETFD, 0);
    }
  signal (SIGINT, SIG_DFL);
  signal (SIGPIPE, SIG_DFL);
  signal (SIGCHLD, SIG_DFL);
  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);

  clearenv ();
  for (guint i = 0; env[i] != NULL; i++)
    if (strchr (env[i], '=') != NULL)
      putenv (g_strdup (env[i]));
  if (chdir (cwd) != 0)
    {
      fprintf (stderr, "fiber: cannot change to directory %s: %s\n", cwd, g_strerror (errno));
      _exit (1);
    }
}

/* Forks the next spare.  In the server it returns FALSE with *ctl set to
 * the read end of the spare's ctl pipe (-1 when the fork failed).  In the
 * spare it waits for a request, answers it and returns TRUE, set up as the
 * requested child; it exits when the parent closed the socket. */
static gboolean
spare_fork (int      sock,
            int      sigfd,
            int      ppidfd,
            GArray  *children,
            int     *ctl,
            int     *parent_pidfd)
{
  g_autoptr(GVariant) request = NULL;
  int status_pipe[2], ctl_pipe[2];
  int stdio[3], fds[2];
  guint32 size;
  guint8 *body;
  gint64 reply;
  guint8 ack = 0;
  char taken = 1;
  pid_t pid;

  *ctl = -1;
  /* A socket, not a pipe: the parent peeks at the status, so the job fd
   * stays readable once the job ended. */
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, status_pipe) != 0)
    return FALSE;
  if (pipe2 (ctl_pipe, O_CLOEXEC) != 0)
    {
      close (status_pipe[0]);
      close (status_pipe[1]);
      return FALSE;
    }
  pid = fork ();
  if (pid != 0)
    {
      close (status_pipe[0]);
      close (ctl_pipe[1]);
      if (pid < 0)
        {
          close (status_pipe[1]);
          close (ctl_pipe[0]);
          return FALSE;
        }
      {
        ForkedChild c = { pid, status_pipe[1] };
        g_array_append_val (children, c);
      }
      *ctl = ctl_pipe[0];
      return FALSE;
    }

  /* The spare.  It keeps a write end of its status socket: on a normal
   * exit it reports its status itself, before the server could. */
  close (sigfd);
  child_status_fd = status_pipe[1];
  close (ctl_pipe[0]);
  for (guint i = 0; i < children->len; i++)
    close (g_array_index (children, ForkedChild, i).status_fd);
  g_array_set_size (children, 0);

  if (!recv_with_fds (sock, &size, sizeof size, stdio, 3) || size > FORKSERVER_MAX_REQ)
    _exit (0);  /* the parent closed the socket */
  body = g_malloc (size);
  if (!read_full (sock, body, size))
    _exit (0);
  request = g_variant_ref_sink (g_variant_new_from_data (G_VARIANT_TYPE (FORKSERVER_REQ_TYPE),
                                                         body, size, FALSE, g_free, body));
  reply = getpid ();
  fds[0] = pidfd_open (getpid (), 0);
  fds[1] = status_pipe[0];
  if (fds[0] < 0 ||
      !write_full (sock, &reply, sizeof reply) ||
      !send_with_fds (sock, &ack, 1, fds, 2))
    _exit (0);
  close (fds[0]);
  close (fds[1]);
  close (sock);
  if (write (ctl_pipe[1], &taken, 1) < 0)
    { /* the server is gone: nothing to tell */ }
  close (ctl_pipe[1]);

  forked_child_setup (request, stdio);
  *parent_pidfd = ppidfd;
  return TRUE;
}

gboolean
_fiber_forkserver_run_if_requested (int *parent_pidfd)
{
  const char *text = g_getenv (FIBER_ENV_FORKSERVER_FD);
  g_autoptr(GArray) children = NULL;
  sigset_t chld;
  int sock, sigfd, ppidfd, null_fd, ctl = -1;
  pid_t pid;

  *parent_pidfd = -1;
  if (text == NULL)
    return FALSE;
  sock = atoi (text);
  g_unsetenv (FIBER_ENV_FORKSERVER_FD);
  if (sock < 0 || fcntl (sock, F_SETFD, FD_CLOEXEC) != 0)
    _exit (2);

  /* Forking is only safe while this process has a single thread.  Our
   * parent waits for us, so its pid is its own here. */
  ppidfd = pidfd_open (getppid (), 0);
  if (ppidfd < 0 || count_threads () != 1)
    _exit (3);
  pid = fork ();
  if (pid < 0)
    _exit (4);
  if (pid > 0)
    _exit (0);

  /* The server: detached, holding none of the parent's streams. */
  null_fd = open ("/dev/null", O_RDWR);
  fflush (stdout);
  fflush (stderr);
  for (int i = 0; i < 3 && null_fd >= 0; i++)
    dup2 (null_fd, i);
  if (null_fd > 2)
    close (null_fd);
  signal (SIGINT, SIG_IGN);
  signal (SIGPIPE, SIG_IGN);
  sigemptyset (&chld);
  sigaddset (&chld, SIGCHLD);
  sigprocmask (SIG_BLOCK, &chld, NULL);
  sigfd = signalfd (-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sigfd < 0)
    _exit (0);
  children = g_array_new (FALSE, FALSE, sizeof (ForkedChild));

  /* A spare child forked ahead waits for the next request and reads it
   * itself, so a start does not wait for a fork: the next spare is forked
   * as soon as one took a request, while the new child runs.  Only a
   * spare reads the socket; the server polls it only while it has no
   * spare (its fork failed: it tries again when a request comes, or after
   * a while). */
  for (gboolean want_spare = TRUE, fork_failed = FALSE;;)
    {
      struct pollfd pfds[3];

      if (want_spare && ctl < 0)
        {
          want_spare = FALSE;
          if (spare_fork (sock, sigfd, ppidfd, children, &ctl, parent_pidfd))
            return TRUE;  /* in the spare, which took a request */
          fork_failed = ctl < 0;
        }

      /* A negative fd is ignored by poll(). */
      pfds[0].fd = ctl >= 0 ? ctl : fork_failed ? -1 : sock;
      pfds[0].events = POLLIN;
      pfds[1].fd = sigfd;
      pfds[1].events = POLLIN;
      pfds[2].fd = ppidfd;
      pfds[2].events = POLLIN;
      switch (poll (pfds, 3, ctl >= 0 ? -1 : SPARE_RETRY_MSEC))
        {
        case -1:
          continue;
        case 0:
          want_spare = TRUE;
          continue;
        default:
          break;
        }
      if (pfds[1].revents != 0)
        {
          struct signalfd_siginfo info;

          while (read (sigfd, &info, sizeof info) > 0)
            ;
          reap_forked (children);
        }
      if (pfds[2].revents != 0)
        _exit (0);  /* the parent died */
      if (pfds[0].revents != 0 && ctl < 0)
        want_spare = TRUE;  /* a request and no spare */
      else if (pfds[0].revents != 0)
        {
          char taken;
          ssize_t r G_GNUC_UNUSED = read (ctl, &taken, 1);

          /* A byte: the spare took a request; the end of the pipe: it
           * died.  Either way the next one will be due. */
          close (ctl);
          ctl = -1;
          want_spare = TRUE;
        }
    }
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

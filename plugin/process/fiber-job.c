/* fiber-job.c — one job of a backend: a local child process, a Slurm job,
 * a Kubernetes Job
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fiber-enums.h"
#include "fiber-job.h"
#include "fiber-job-private.h"

/**
 * FiberJob:
 *
 * A job started by a [iface@Fiber.Backend]: a child process for the local
 * backend, a batch job for a cluster scheduler.
 *
 * A job is created by fiber_backend_create_job() and updated by its
 * backend (fiber_backend_refresh_job(), fiber_backend_wait_job()); its
 * getters may be called from any thread.  [property@Fiber.Job:fd] is a
 * file descriptor that becomes readable once the job has ended, so a job
 * can be waited for with poll() or a #GSource together with other events.
 */
struct _FiberJob
{
  GObject         parent_instance;

  GMutex          lock;
  char           *id;
  gint64          pid;
  int             fd;
  gboolean        own_eventfd;
  FiberJobState   state;
  int             exitcode;
  gboolean        ended;

  gpointer        backend_data;
  GDestroyNotify  backend_data_destroy;
};

G_DEFINE_FINAL_TYPE (FiberJob, fiber_job, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_ID,
  PROP_PID,
  PROP_STATE,
  PROP_FD,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void
fiber_job_finalize (GObject *object)
{
  FiberJob *self = FIBER_JOB (object);

  /* The backend data goes first: the local backend hands a child that
   * still runs to its reaper, which opens its own pidfd. */
  if (self->backend_data_destroy != NULL && self->backend_data != NULL)
    self->backend_data_destroy (self->backend_data);
  if (self->fd >= 0)
    close (self->fd);
  g_free (self->id);
  g_mutex_clear (&self->lock);

  G_OBJECT_CLASS (fiber_job_parent_class)->finalize (object);
}

static void
fiber_job_get_property (GObject    *object,
                        guint       prop_id,
                        GValue     *value,
                        GParamSpec *pspec)
{
  FiberJob *self = FIBER_JOB (object);

  switch (prop_id)
    {
    case PROP_ID:
      g_value_set_string (value, self->id);
      break;
    case PROP_PID:
      g_value_set_int64 (value, self->pid);
      break;
    case PROP_STATE:
      g_value_set_enum (value, fiber_job_get_state (self));
      break;
    case PROP_FD:
      g_value_set_int (value, self->fd);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
fiber_job_class_init (FiberJobClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = fiber_job_finalize;
  object_class->get_property = fiber_job_get_property;

  /**
   * FiberJob:id:
   *
   * The identifier the backend gave the job: the process id of a local
   * child, the Slurm job id, the Kubernetes Job name.
   */
  properties[PROP_ID] =
    g_param_spec_string ("id", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * FiberJob:pid:
   *
   * The Fiber pid of the job: the process id of a local child, the
   * numeric job id of a scheduler.
   */
  properties[PROP_PID] =
    g_param_spec_int64 ("pid", NULL, NULL, 0, G_MAXINT64, 0,
                        G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * FiberJob:state:
   *
   * The state of the job as last seen by its backend.  Change
   * notifications are emitted in the thread that updated the job.
   */
  properties[PROP_STATE] =
    g_param_spec_enum ("state", NULL, NULL,
                       FIBER_TYPE_JOB_STATE, FIBER_JOB_STATE_PENDING,
                       G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY |
                       G_PARAM_STATIC_STRINGS);

  /**
   * FiberJob:fd:
   *
   * A file descriptor that becomes readable (`POLLIN`) once the job has
   * ended and stays readable; owned by the job.
   */
  properties[PROP_FD] =
    g_param_spec_int ("fd", NULL, NULL, -1, G_MAXINT, -1,
                      G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
fiber_job_init (FiberJob *self)
{
  g_mutex_init (&self->lock);
  self->fd = -1;
  self->state = FIBER_JOB_STATE_PENDING;
}

FiberJob *
_fiber_job_new (const char     *id,
                gint64          pid,
                int             fd,
                gpointer        backend_data,
                GDestroyNotify  backend_data_destroy)
{
  FiberJob *self;

  g_return_val_if_fail (id != NULL, NULL);

  self = g_object_new (FIBER_TYPE_JOB, NULL);
  self->id = g_strdup (id);
  self->pid = MAX (pid, 0);
  if (fd < 0)
    {
      fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
      if (fd < 0)
        g_critical ("eventfd() failed: %s", g_strerror (errno));
      self->own_eventfd = TRUE;
    }
  self->fd = fd;
  self->backend_data = backend_data;
  self->backend_data_destroy = backend_data_destroy;
  return self;
}

gpointer
_fiber_job_get_backend_data (FiberJob *self)
{
  g_return_val_if_fail (FIBER_IS_JOB (self), NULL);

  return self->backend_data;
}

gboolean
_fiber_job_set_ended (FiberJob      *self,
                      FiberJobState  state,
                      int            exitcode)
{
  gboolean changed = FALSE;

  g_return_val_if_fail (FIBER_IS_JOB (self), FALSE);
  g_return_val_if_fail (state >= FIBER_JOB_STATE_COMPLETED, FALSE);

  g_mutex_lock (&self->lock);
  if (!self->ended)
    {
      self->ended = TRUE;
      self->exitcode = exitcode;
      changed = self->state != state;
      self->state = state;
      if (self->own_eventfd && self->fd >= 0)
        {
          uint64_t one = 1;
          while (write (self->fd, &one, sizeof one) < 0 && errno == EINTR)
            ;
        }
      g_mutex_unlock (&self->lock);
      if (changed)
        g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE]);
      return TRUE;
    }
  g_mutex_unlock (&self->lock);
  return FALSE;
}

void
_fiber_job_set_state (FiberJob      *self,
                      FiberJobState  state)
{
  gboolean changed = FALSE;

  g_return_if_fail (FIBER_IS_JOB (self));
  g_return_if_fail (state <= FIBER_JOB_STATE_RUNNING);

  g_mutex_lock (&self->lock);
  if (!self->ended && self->state != state)
    {
      self->state = state;
      changed = TRUE;
    }
  g_mutex_unlock (&self->lock);
  if (changed)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE]);
}

gboolean
_fiber_job_poll (FiberJob *self,
                 int       timeout_msec)
{
  struct pollfd pfd = { .fd = self->fd, .events = POLLIN };
  gint64 deadline;

  g_return_val_if_fail (FIBER_IS_JOB (self), FALSE);

  if (self->fd < 0)
    return FALSE;
  if (timeout_msec < 0)
    timeout_msec = -1;
  deadline = g_get_monotonic_time () + (gint64) MAX (timeout_msec, 0) * 1000;
  for (;;)
    {
      int r = poll (&pfd, 1, timeout_msec);

      if (r > 0)
        return TRUE;
      if (r == 0 || errno != EINTR)
        return FALSE;
      if (timeout_msec > 0)
        {
          gint64 left = deadline - g_get_monotonic_time ();

          if (left <= 0)
            return FALSE;
          timeout_msec = (int) MIN ((left + 999) / 1000, G_MAXINT);
        }
    }
}

int
_fiber_wait_status_to_exitcode (int wait_status)
{
  if (WIFEXITED (wait_status))
    return WEXITSTATUS (wait_status);
  if (WIFSIGNALED (wait_status))
    return -WTERMSIG (wait_status);
  /* Not an end status (stopped, continued): report what the low bits say
   * rather than inventing a success. */
  return wait_status & 0x7f ? -(wait_status & 0x7f) : (wait_status >> 8) & 0xff;
}

/**
 * fiber_job_get_id:
 * @self: a #FiberJob
 *
 * Gets the identifier the backend gave the job.
 *
 * Returns: the backend's identifier of the job
 */
const char *
fiber_job_get_id (FiberJob *self)
{
  g_return_val_if_fail (FIBER_IS_JOB (self), NULL);

  return self->id;
}

/**
 * fiber_job_get_pid:
 * @self: a #FiberJob
 *
 * Gets the Fiber pid of the job.
 *
 * Returns: the Fiber pid of the job (the process id of a local child, the
 *   numeric job id of a scheduler)
 */
gint64
fiber_job_get_pid (FiberJob *self)
{
  g_return_val_if_fail (FIBER_IS_JOB (self), 0);

  return self->pid;
}

/**
 * fiber_job_get_state:
 * @self: a #FiberJob
 *
 * The state as last seen by the backend; call fiber_backend_refresh_job()
 * to update it.
 *
 * Returns: the state of the job
 */
FiberJobState
fiber_job_get_state (FiberJob *self)
{
  FiberJobState state;

  g_return_val_if_fail (FIBER_IS_JOB (self), FIBER_JOB_STATE_LOST);

  g_mutex_lock (&self->lock);
  state = self->state;
  g_mutex_unlock (&self->lock);
  return state;
}

/**
 * fiber_job_has_ended:
 * @self: a #FiberJob
 *
 * Tells whether the job has ended.
 *
 * Returns: whether the backend has seen the job end
 */
gboolean
fiber_job_has_ended (FiberJob *self)
{
  gboolean ended;

  g_return_val_if_fail (FIBER_IS_JOB (self), FALSE);

  g_mutex_lock (&self->lock);
  ended = self->ended;
  g_mutex_unlock (&self->lock);
  return ended;
}

/**
 * fiber_job_get_exitcode:
 * @self: a #FiberJob
 * @exitcode: (out) (optional): the exit code: the exit status (>= 0), or
 *   -N when the job was killed by signal N
 *
 * Gets the exit code of an ended job.
 *
 * Returns: %TRUE once the job has ended (and @exitcode is set), %FALSE
 *   while it runs
 */
gboolean
fiber_job_get_exitcode (FiberJob *self,
                        int      *exitcode)
{
  gboolean ended;

  g_return_val_if_fail (FIBER_IS_JOB (self), FALSE);

  g_mutex_lock (&self->lock);
  ended = self->ended;
  if (ended && exitcode != NULL)
    *exitcode = self->exitcode;
  g_mutex_unlock (&self->lock);
  return ended;
}

/**
 * fiber_job_get_fd:
 * @self: a #FiberJob
 *
 * A file descriptor that becomes readable once the job has ended (the
 * pidfd of a local child).  It is owned by the job: do not close it, and
 * do not read from it.
 *
 * Returns: the file descriptor, or -1 if the backend has none
 */
int
fiber_job_get_fd (FiberJob *self)
{
  g_return_val_if_fail (FIBER_IS_JOB (self), -1);

  return self->fd;
}

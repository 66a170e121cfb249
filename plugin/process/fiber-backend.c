/* fiber-backend.c — the job backend interface
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "fiber-backend.h"
#include "fiber-error.h"
#include "fiber-job-private.h"
#include "fiber-local-backend.h"

/**
 * FiberBackend:
 *
 * Starts and watches jobs: the processes that run pool workers and
 * [class@Fiber.Process] targets.  [class@Fiber.LocalBackend] spawns them on
 * this host; cluster backends submit them to a scheduler.
 *
 * Every method may be called from any thread.
 */

G_DEFINE_INTERFACE (FiberBackend, fiber_backend, G_TYPE_OBJECT)

static void
fiber_backend_default_init (FiberBackendInterface *iface)
{
}

static gboolean
not_supported (FiberBackend  *self,
               const char    *what,
               GError       **error)
{
  g_set_error (error, FIBER_ERROR, FIBER_ERROR_NOT_SUPPORTED,
               "the %s backend does not support %s",
               fiber_backend_get_name (self), what);
  return FALSE;
}

/**
 * fiber_backend_get_name:
 * @self: a #FiberBackend
 *
 * Gets the name of the backend.
 *
 * Returns: the name of the backend (`local`, `slurm`, `kubernetes`)
 */
const char *
fiber_backend_get_name (FiberBackend *self)
{
  FiberBackendInterface *iface;

  g_return_val_if_fail (FIBER_IS_BACKEND (self), NULL);

  iface = FIBER_BACKEND_GET_IFACE (self);
  if (iface->get_name != NULL)
    return iface->get_name (self);
  return G_OBJECT_TYPE_NAME (self);
}

/**
 * fiber_backend_is_remote:
 * @self: a #FiberBackend
 *
 * Tells whether the backend runs jobs on other machines.
 *
 * Returns: whether jobs of this backend may run on other hosts (workers
 *   then reach the master over `tcp://` with CURVE)
 */
gboolean
fiber_backend_is_remote (FiberBackend *self)
{
  FiberBackendInterface *iface;

  g_return_val_if_fail (FIBER_IS_BACKEND (self), FALSE);

  iface = FIBER_BACKEND_GET_IFACE (self);
  return iface->is_remote != NULL && iface->is_remote (self);
}

/**
 * fiber_backend_create_job:
 * @self: a #FiberBackend
 * @spec: what to run
 * @error: return location for an error
 *
 * Starts a job running @spec.  The job runs until it ends by itself or is
 * terminated; dropping the last reference to it neither waits for it nor
 * stops it (the local backend still reaps it when it ends).
 *
 * Returns: (transfer full): the new job, or %NULL with
 *   %FIBER_ERROR_BACKEND (or another code) set
 */
FiberJob *
fiber_backend_create_job (FiberBackend  *self,
                          FiberJobSpec  *spec,
                          GError       **error)
{
  FiberBackendInterface *iface;

  g_return_val_if_fail (FIBER_IS_BACKEND (self), NULL);
  g_return_val_if_fail (spec != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  iface = FIBER_BACKEND_GET_IFACE (self);
  if (iface->create_job == NULL)
    {
      not_supported (self, "creating jobs", error);
      return NULL;
    }
  return iface->create_job (self, spec, error);
}

/**
 * fiber_backend_refresh_job:
 * @self: a #FiberBackend
 * @job: a job created by @self
 * @error: return location for an error
 *
 * Updates the state of @job from the backend without blocking for long
 * (the local backend reaps an ended child; a scheduler is asked once).
 *
 * Returns: %TRUE if the state was updated, %FALSE with @error set if the
 *   backend could not be asked
 */
gboolean
fiber_backend_refresh_job (FiberBackend  *self,
                           FiberJob      *job,
                           GError       **error)
{
  FiberBackendInterface *iface;

  g_return_val_if_fail (FIBER_IS_BACKEND (self), FALSE);
  g_return_val_if_fail (FIBER_IS_JOB (job), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  iface = FIBER_BACKEND_GET_IFACE (self);
  if (iface->refresh_job == NULL)
    return TRUE;
  return iface->refresh_job (self, job, error);
}

/**
 * fiber_backend_wait_job:
 * @self: a #FiberBackend
 * @job: a job created by @self
 * @timeout_msec: how long to wait: -1 forever, 0 just checks
 * @error: return location for an error
 *
 * Blocks until @job has ended (and its exit code is known) or
 * @timeout_msec has passed.
 *
 * Returns: %TRUE once the job has ended; %FALSE with %FIBER_ERROR_TIMEOUT
 *   when it still runs after @timeout_msec, or another error
 */
gboolean
fiber_backend_wait_job (FiberBackend  *self,
                        FiberJob      *job,
                        int            timeout_msec,
                        GError       **error)
{
  FiberBackendInterface *iface;

  g_return_val_if_fail (FIBER_IS_BACKEND (self), FALSE);
  g_return_val_if_fail (FIBER_IS_JOB (job), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  iface = FIBER_BACKEND_GET_IFACE (self);
  if (iface->wait_job != NULL)
    return iface->wait_job (self, job, timeout_msec, error);

  /* Default: the job fd becomes readable when the job ended. */
  if (!fiber_job_has_ended (job))
    {
      if (fiber_job_get_fd (job) < 0)
        return not_supported (self, "waiting for jobs", error);
      if (_fiber_job_poll (job, timeout_msec) &&
          !fiber_backend_refresh_job (self, job, error))
        return FALSE;
    }
  if (fiber_job_has_ended (job))
    return TRUE;
  g_set_error (error, FIBER_ERROR, FIBER_ERROR_TIMEOUT,
               "job %s is still running", fiber_job_get_id (job));
  return FALSE;
}

/**
 * fiber_backend_terminate_job:
 * @self: a #FiberBackend
 * @job: a job created by @self
 * @force: %FALSE to ask the job to stop (`SIGTERM`, scancel, Job delete),
 *   %TRUE to kill it (`SIGKILL`)
 * @error: return location for an error
 *
 * Stops @job.  This does not wait for it to end: use
 * fiber_backend_wait_job().  Terminating a job that has ended does
 * nothing.
 *
 * Returns: %TRUE if the request was made (or the job had ended)
 */
gboolean
fiber_backend_terminate_job (FiberBackend  *self,
                             FiberJob      *job,
                             gboolean       force,
                             GError       **error)
{
  FiberBackendInterface *iface;

  g_return_val_if_fail (FIBER_IS_BACKEND (self), FALSE);
  g_return_val_if_fail (FIBER_IS_JOB (job), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  iface = FIBER_BACKEND_GET_IFACE (self);
  if (iface->terminate_job == NULL)
    return not_supported (self, "terminating jobs", error);
  return iface->terminate_job (self, job, force, error);
}

/**
 * fiber_backend_get_listen_address:
 * @self: a #FiberBackend
 * @error: return location for an error
 *
 * The host name or IP address at which jobs of this backend can reach
 * the master, for `tcp://` endpoints.
 *
 * Returns: (transfer full): the address, or %NULL with @error set
 */
char *
fiber_backend_get_listen_address (FiberBackend  *self,
                                  GError       **error)
{
  FiberBackendInterface *iface;

  g_return_val_if_fail (FIBER_IS_BACKEND (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  iface = FIBER_BACKEND_GET_IFACE (self);
  if (iface->get_listen_address == NULL)
    {
      not_supported (self, "listen addresses", error);
      return NULL;
    }
  return iface->get_listen_address (self, error);
}

/**
 * fiber_backend_get_default:
 *
 * The process-wide local backend, used by processes and pools that were
 * given no backend.
 *
 * Returns: (transfer none): the default backend
 */
FiberBackend *
fiber_backend_get_default (void)
{
  static FiberBackend *backend;

  if (g_once_init_enter (&backend))
    g_once_init_leave (&backend, fiber_local_backend_new ());
  return backend;
}

/* fiber-job-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "fiber-job.h"
#include "fiber-job-spec.h"

G_BEGIN_DECLS

/* Backends create jobs and update them; everything else reads them.
 * All of these are thread-safe (the job holds a mutex).
 *
 * @fd is the job's pollable fd, readable once the job ended, owned (and
 * closed) by the job.  The local backend gives the child's pidfd.  Pass
 * -1 to let the job make an eventfd of its own that _fiber_job_set_ended()
 * signals: what a remote backend, whose monitor learns of the end from
 * the scheduler, wants. */
FiberJob *_fiber_job_new            (const char     *id,
                                     gint64          pid,
                                     int             fd,
                                     gpointer        backend_data,
                                     GDestroyNotify  backend_data_destroy);
gpointer  _fiber_job_get_backend_data (FiberJob     *self);
/* Records the end of the job.  @exitcode follows multiprocessing:
 * >= 0 exit status, -N killed by signal N.  Only the first call counts;
 * returns whether this call was it. */
gboolean  _fiber_job_set_ended      (FiberJob       *self,
                                     FiberJobState   state,
                                     int             exitcode);
/* Updates the state of a job that has not ended (PENDING, RUNNING);
 * ignored once it ended. */
void      _fiber_job_set_state      (FiberJob       *self,
                                     FiberJobState   state);
/* Polls the job fd: TRUE once it is readable (the job ended), FALSE when
 * @timeout_msec (-1 forever, 0 check) ran out first.  Restarts after
 * signals. */
gboolean  _fiber_job_poll           (FiberJob       *self,
                                     int             timeout_msec);
/* Converts a raw wait status (waitpid, Slurm's exit_code) to the
 * multiprocessing convention used by FiberJob. */
int       _fiber_wait_status_to_exitcode (int        wait_status);

/* Returns @envp (transfer full) with the variables of @spec set on it and
 * the ones it removes unset. */
char    **_fiber_job_spec_apply_environment (FiberJobSpec  *spec,
                                             char         **envp);

G_END_DECLS

/* fiber-job-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "fiber-job.h"

G_BEGIN_DECLS

/* Backends create jobs and update them; everything else reads them.
 * All of these are thread-safe (the job holds a mutex). */
FiberJob *_fiber_job_new            (const char     *id,
                                     gint64          pid,
                                     int             fd,
                                     gpointer        backend_data,
                                     GDestroyNotify  backend_data_destroy);
gpointer  _fiber_job_get_backend_data (FiberJob     *self);
/* Records the end of the job.  @exitcode follows multiprocessing:
 * >= 0 exit status, -N killed by signal N.  Only the first call counts. */
void      _fiber_job_set_ended      (FiberJob       *self,
                                     FiberJobState   state,
                                     int             exitcode);
void      _fiber_job_set_state      (FiberJob       *self,
                                     FiberJobState   state);
/* Converts a raw wait status (waitpid, Slurm's exit_code) to the
 * multiprocessing convention used by FiberJob. */
int       _fiber_wait_status_to_exitcode (int        wait_status);

G_END_DECLS

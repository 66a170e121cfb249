/* fiber-job.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(FIBER_INSIDE) && !defined(FIBER_COMPILATION)
# error "Only <fiber.h> can be included directly."
#endif

#include <glib-object.h>

#include "fiber-version.h"

G_BEGIN_DECLS

/**
 * FiberJobState:
 * @FIBER_JOB_STATE_PENDING: submitted, not running yet
 * @FIBER_JOB_STATE_RUNNING: running
 * @FIBER_JOB_STATE_COMPLETED: ended with exit status 0
 * @FIBER_JOB_STATE_FAILED: ended with a non-zero exit status or a signal
 * @FIBER_JOB_STATE_CANCELLED: cancelled or terminated before it ended by itself
 * @FIBER_JOB_STATE_LOST: the backend no longer knows the job (node failure,
 *   purged record, unreachable scheduler)
 *
 * The life cycle of a job as a backend reports it.
 */
typedef enum
{
  FIBER_JOB_STATE_PENDING,
  FIBER_JOB_STATE_RUNNING,
  FIBER_JOB_STATE_COMPLETED,
  FIBER_JOB_STATE_FAILED,
  FIBER_JOB_STATE_CANCELLED,
  FIBER_JOB_STATE_LOST,
} FiberJobState;

#define FIBER_TYPE_JOB (fiber_job_get_type ())

FIBER_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (FiberJob, fiber_job, FIBER, JOB, GObject)

FIBER_AVAILABLE_IN_ALL
const char    *fiber_job_get_id        (FiberJob *self);
FIBER_AVAILABLE_IN_ALL
gint64         fiber_job_get_pid       (FiberJob *self);
FIBER_AVAILABLE_IN_ALL
FiberJobState  fiber_job_get_state     (FiberJob *self);
FIBER_AVAILABLE_IN_ALL
gboolean       fiber_job_has_ended     (FiberJob *self);
FIBER_AVAILABLE_IN_ALL
gboolean       fiber_job_get_exitcode  (FiberJob *self,
                                        int      *exitcode);
FIBER_AVAILABLE_IN_ALL
int            fiber_job_get_fd        (FiberJob *self);

G_END_DECLS

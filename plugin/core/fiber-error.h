/* fiber-error.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(FIBER_INSIDE) && !defined(FIBER_COMPILATION)
# error "Only <fiber.h> can be included directly."
#endif

#include <glib.h>

#include "fiber-version.h"

G_BEGIN_DECLS

/**
 * FIBER_ERROR:
 *
 * The error domain of fiber-glib.
 */
#define FIBER_ERROR (fiber_error_quark ())

/**
 * FiberError:
 * @FIBER_ERROR_FAILED: a generic failure
 * @FIBER_ERROR_INVALID_ARGUMENT: an argument, option or configuration value is invalid
 * @FIBER_ERROR_UNKNOWN_TASK: no task of that name is registered in the worker
 * @FIBER_ERROR_TASK_FAILED: the task ran and returned an error; the message
 *   carries the worker-side message and traceback
 * @FIBER_ERROR_WORKER_LOST: the worker running the task died (crash, kill,
 *   lost job) more often than `max-retries` allows
 * @FIBER_ERROR_CLOSED: the pool was closed or terminated
 * @FIBER_ERROR_TIMEOUT: a wait ran out of time
 * @FIBER_ERROR_INTERRUPTED: the task was interrupted by fiber_pool_interrupt()
 * @FIBER_ERROR_PROTOCOL: a malformed or unexpected wire message
 * @FIBER_ERROR_AUTH: a peer failed authentication (authkey HMAC, CURVE key or token)
 * @FIBER_ERROR_DAEMONIC: a daemonic process tried to start children
 * @FIBER_ERROR_BACKEND: the job backend (local spawn, Slurm, Kubernetes) failed
 * @FIBER_ERROR_NOT_SUPPORTED: the operation is not supported by this pool type or backend
 * @FIBER_ERROR_STATE: the object is in the wrong state for the call
 *   (for example a process started twice)
 *
 * Error codes of the %FIBER_ERROR domain.
 */
typedef enum
{
  FIBER_ERROR_FAILED,
  FIBER_ERROR_INVALID_ARGUMENT,
  FIBER_ERROR_UNKNOWN_TASK,
  FIBER_ERROR_TASK_FAILED,
  FIBER_ERROR_WORKER_LOST,
  FIBER_ERROR_CLOSED,
  FIBER_ERROR_TIMEOUT,
  FIBER_ERROR_INTERRUPTED,
  FIBER_ERROR_PROTOCOL,
  FIBER_ERROR_AUTH,
  FIBER_ERROR_DAEMONIC,
  FIBER_ERROR_BACKEND,
  FIBER_ERROR_NOT_SUPPORTED,
  FIBER_ERROR_STATE,
} FiberError;

FIBER_AVAILABLE_IN_ALL
GQuark fiber_error_quark (void);

G_END_DECLS

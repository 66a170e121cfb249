/* fiber-backend.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(FIBER_INSIDE) && !defined(FIBER_COMPILATION)
# error "Only <fiber.h> can be included directly."
#endif

#include <gio/gio.h>

#include "fiber-job.h"
#include "fiber-job-spec.h"
#include "fiber-version.h"

G_BEGIN_DECLS

#define FIBER_TYPE_BACKEND (fiber_backend_get_type ())

FIBER_AVAILABLE_IN_ALL
G_DECLARE_INTERFACE (FiberBackend, fiber_backend, FIBER, BACKEND, GObject)

/**
 * FiberBackendInterface:
 * @parent_iface: the parent interface
 * @get_name: returns the backend name (`local`, `slurm`, `kubernetes`)
 * @is_remote: whether jobs run on other hosts (pool workers then connect
 *   over ZeroMQ `tcp://` with CURVE instead of a local unix socket)
 * @create_job: starts a job running @spec and returns it
 * @refresh_job: updates the state of @job from the backend
 * @wait_job: blocks until @job has ended or @timeout_msec passed
 * @terminate_job: asks the job to stop (SIGTERM, scancel, Job delete);
 *   with @force, kills it (SIGKILL)
 * @get_listen_address: the host or IP address workers of this backend can
 *   reach the master at, for `tcp://` endpoints
 *
 * The virtual methods of a job backend.  Every method is thread-safe.
 */
struct _FiberBackendInterface
{
  GTypeInterface parent_iface;

  const char *(*get_name)           (FiberBackend  *self);
  gboolean    (*is_remote)          (FiberBackend  *self);
  FiberJob   *(*create_job)         (FiberBackend  *self,
                                     FiberJobSpec  *spec,
                                     GError       **error);
  gboolean    (*refresh_job)        (FiberBackend  *self,
                                     FiberJob      *job,
                                     GError       **error);
  gboolean    (*wait_job)           (FiberBackend  *self,
                                     FiberJob      *job,
                                     int            timeout_msec,
                                     GError       **error);
  gboolean    (*terminate_job)      (FiberBackend  *self,
                                     FiberJob      *job,
                                     gboolean       force,
                                     GError       **error);
  char       *(*get_listen_address) (FiberBackend  *self,
                                     GError       **error);
};

FIBER_AVAILABLE_IN_ALL
const char *fiber_backend_get_name           (FiberBackend  *self);
FIBER_AVAILABLE_IN_ALL
gboolean    fiber_backend_is_remote          (FiberBackend  *self);
FIBER_AVAILABLE_IN_ALL
FiberJob   *fiber_backend_create_job         (FiberBackend  *self,
                                              FiberJobSpec  *spec,
                                              GError       **error);
FIBER_AVAILABLE_IN_ALL
gboolean    fiber_backend_refresh_job        (FiberBackend  *self,
                                              FiberJob      *job,
                                              GError       **error);
FIBER_AVAILABLE_IN_ALL
gboolean    fiber_backend_wait_job           (FiberBackend  *self,
                                              FiberJob      *job,
                                              int            timeout_msec,
                                              GError       **error);
FIBER_AVAILABLE_IN_ALL
gboolean    fiber_backend_terminate_job      (FiberBackend  *self,
                                              FiberJob      *job,
                                              gboolean       force,
                                              GError       **error);
FIBER_AVAILABLE_IN_ALL
char       *fiber_backend_get_listen_address (FiberBackend  *self,
                                              GError       **error);
FIBER_AVAILABLE_IN_ALL
FiberBackend *fiber_backend_get_default      (void);

G_END_DECLS

/* fiber-process-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "fiber-job-spec.h"
#include "fiber-process.h"

G_BEGIN_DECLS

/* The multiprocessing identity ("1:2") of a child, from which this
 * process' own children derive their default names ("Process-1:2:1"). */
#define FIBER_ENV_PROCESS_IDENTITY "FIBER_PROCESS_IDENTITY"

/* FALSE with FIBER_ERROR_DAEMONIC "daemonic processes are not allowed to
 * have children" when this process is a daemonic child.  Pools and
 * FiberProcess call it before starting anything. */
gboolean  _fiber_process_check_may_have_children (GError **error);

/* The authkey of this process (inherited from the parent, or random),
 * used as the HMAC key by pools that have no authkey of their own.
 * (transfer full).  fiber_init() consumes FIBER_AUTHKEY from the
 * environment: children read their authkey here, not from the
 * environment. */
GBytes   *_fiber_process_get_current_authkey     (void);

/* Adds the environment every child of this process gets: authkey,
 * daemonic flag, name (NULL: a default "Process-N") and identity; unsets
 * the pid and parent-pid fields a child could otherwise inherit.  Also
 * marks the spec daemonic (fiber_job_spec_set_daemon()) and names it:
 * the local backend then adds FIBER_PARENT_PID (its own pid), which
 * makes a daemonic child that calls fiber_init() exit when that process
 * is gone.  Remote backends leave the parent watch to their own means. */
void      _fiber_process_fill_child_env          (FiberJobSpec *spec,
                                                  const char   *name,
                                                  gboolean      daemon);

G_END_DECLS

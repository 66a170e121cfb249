/* fiber-init-private.h — contracts between fiber_init() and the rooms it
 * dispatches to.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Environment a parent hands to the processes it starts.  Every name is
 * consumed (unset) by fiber_init() in the child so that grandchildren do
 * not inherit a role by accident. */
#define FIBER_ENV_WORKER_ENDPOINT  "FIBER_WORKER_ENDPOINT"  /* worker mode: master's ROUTER endpoint */
#define FIBER_ENV_WORKER_ID        "FIBER_WORKER_ID"        /* worker identity (one-time token) */
#define FIBER_ENV_NONCE            "FIBER_NONCE"            /* master's nonce, hex */
#define FIBER_ENV_CURVE_SERVERKEY  "FIBER_CURVE_SERVERKEY"  /* Z85 public key of the master (tcp) */
#define FIBER_ENV_PROCESS_PAYLOAD  "FIBER_PROCESS_PAYLOAD"  /* process mode: base64 GVariant */
#define FIBER_ENV_PROCESS_PAYLOAD_FILE "FIBER_PROCESS_PAYLOAD_FILE"
#define FIBER_ENV_AUTHKEY          "FIBER_AUTHKEY"          /* hex; inherited by descendants */
#define FIBER_ENV_PARENT_PID       "FIBER_PARENT_PID"       /* the parent to watch (daemonic) */
#define FIBER_ENV_DAEMONIC         "FIBER_DAEMONIC"         /* "1" in daemonic children */
#define FIBER_ENV_PROCESS_NAME     "FIBER_PROCESS_NAME"
#define FIBER_ENV_PID              "FIBER_PID"              /* Fiber pid assigned by the parent */
#define FIBER_ENV_WORKER_EXE       "FIBER_WORKER"           /* override of the fiber-worker path */
#define FIBER_ENV_TASK_MODULES     "FIBER_TASK_MODULES"     /* ':'-separated GModule paths */

/* worker/: serves tasks for the master named in the environment; returns
 * the exit status for the process. */
int                  _fiber_worker_main_from_environment (void);

/* process/: runs the FiberProcess target described in the environment;
 * returns the exit status (0 ok, 1 target failed). */
int                  _fiber_process_child_main           (void);

/* process/: sets up fiber_current_process() (name, pid, daemonic, authkey)
 * from the environment and starts the parent watch of daemonic children.
 * Called once by fiber_init() and lazily by fiber_current_process(). */
void                 _fiber_process_init_current         (void);

/* core/: TRUE once fiber_init() ran in this process, with the argv it saw
 * (so pools can re-execute the host program as a worker). */
gboolean             _fiber_init_was_called              (void);
const char * const  *_fiber_init_get_argv                (void);

/* core/: path of the generic worker executable (FIBER_WORKER, else the
 * installed one). */
const char          *_fiber_get_worker_executable        (void);

/* core/: loads the task modules named in @paths (each exports
 * fiber_module_register_tasks()). */
gboolean             _fiber_load_task_modules            (const char * const *paths,
                                                          GError      **error);

G_END_DECLS

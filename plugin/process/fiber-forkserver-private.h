/* fiber-forkserver-private.h — starting FiberProcess children by fork
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Re-executing the program for every FiberProcess costs an exec, the
 * dynamic linking of GLib, GIO, ZeroMQ, libsoup… and GLib's start-up:
 * milliseconds.  Like multiprocessing's "forkserver" start method, the
 * local backend instead starts the program once more as a fork server
 * when the first process starts: it runs main() up to fiber_init(), which
 * (still single-threaded, with the program's tasks registered) waits for
 * requests and forks one child per FiberProcess.  The child takes the
 * environment, working directory and standard streams the parent has at
 * start() time, then goes on in fiber_init() exactly as a re-executed
 * child would.
 *
 * The server detaches from the parent (it is not a child of it, so it
 * never shows up among the parent's children) and exits when the parent
 * closes its end of the socket or dies.  Each start returns the child's
 * pidfd (signals go through it, so they never reach a recycled pid) and a
 * socket on which the child writes its wait status when it exits normally
 * and the server when it reaped it.  That socket is the job fd and
 * sentinel, as in multiprocessing: readable only once the status can be
 * read (the parent peeks at it, so it stays readable), so refreshing the
 * job never has to wait for it.  Daemonic children watch the parent
 * through a pidfd the server opened while the parent waited for it.
 *
 * FIBER_PROCESS_START_METHOD=spawn in the parent's environment turns this
 * off (every process is then re-executed with posix_spawn()).
 */

#pragma once

#include "fiber-backend.h"
#include "fiber-job-spec.h"

G_BEGIN_DECLS

#define FIBER_ENV_FORKSERVER_FD      "FIBER_FORKSERVER_FD"
#define FIBER_ENV_START_METHOD       "FIBER_PROCESS_START_METHOD"

/* process/ (the fork server side): called first thing by
 * _fiber_process_init_current().  In a process started as a fork server it
 * serves requests and never returns, except in each forked child, where it
 * returns TRUE once the child's environment is set up (then *parent_pidfd
 * is a pidfd of the parent that started the process, or -1).  Returns
 * FALSE in any other process. */
gboolean   _fiber_forkserver_run_if_requested (int            *parent_pidfd);

/* process/ (the fork server side): in a child of the server, reports
 * @status to the parent at once (the server would only after reaping the
 * child) and exits with it, without atexit handlers. */
G_GNUC_NORETURN
void       _fiber_forkserver_child_exit (int            status);

/* process/ (the parent side): starts @spec, whose command must be this
 * program (it called fiber_init()), through the fork server of @backend
 * (a FiberLocalBackend).  Falls back to the backend's create_job() when
 * the fork server is turned off or cannot be used. */
FiberJob  *_fiber_local_backend_create_forked_job (FiberBackend  *backend,
                                                   FiberJobSpec  *spec,
                                                   GError       **error);

G_END_DECLS

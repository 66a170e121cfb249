/* fiber-dispatcher-private.h — the engine of FiberProcessPool
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A dispatcher owns the endpoint the workers connect to (a unix stream
 * socket for local workers, or a ZeroMQ ROUTER on ipc:// if asked; a
 * ZeroMQ ROUTER on tcp:// with CURVE for remote ones), the worker jobs and the queue of work of one process
 * pool, all on its own thread.  The pool
 * talks to it only through the functions below, which are thread-safe and
 * never block on the dispatcher (except join).
 */

#pragma once

#include "fiber-backend.h"
#include "fiber-batch.h"

G_BEGIN_DECLS

typedef struct _FiberDispatcher FiberDispatcher;

typedef struct
{
  FiberBackend  *backend;           /* how workers are started */
  const char * const *worker_argv;  /* the worker command */
  const char * const *task_modules; /* FIBER_TASK_MODULES for the workers */
  GBytes        *authkey;           /* HMAC key of the HELLO proof */
  const char    *name;              /* base of the worker names */
  gboolean       daemon;            /* daemonic workers */
  guint          processes;         /* > 0 */
  const char    *initializer;       /* nullable */
  GVariant      *initargs;          /* nullable */
  guint          maxtasksperchild;  /* 0 = unlimited */
  gboolean       resilient;         /* retry items of lost workers */
  guint          max_retries;
  guint          heartbeat_ms;      /* > 0 */
  gboolean       local_zmq;         /* local workers over a ZeroMQ ROUTER on
                                     * ipc:// instead of the unix socket
                                     * (to compare the two) */
} FiberDispatcherConfig;

/* Binds the endpoint, starts the workers and the dispatcher thread. */
FiberDispatcher *_fiber_dispatcher_new          (const FiberDispatcherConfig  *config,
                                                 GError                      **error);
FiberDispatcher *_fiber_dispatcher_ref          (FiberDispatcher  *self);
/* Dropping the last reference of a running dispatcher terminates it. */
void             _fiber_dispatcher_unref        (FiberDispatcher  *self);

/* Queues @batch; FALSE with FIBER_ERROR_CLOSED once the dispatcher has
 * stopped. */
gboolean         _fiber_dispatcher_submit       (FiberDispatcher  *self,
                                                 FiberBatch       *batch,
                                                 GError          **error);
/* No new work; what is queued still runs, then the workers are shut down. */
void             _fiber_dispatcher_close        (FiberDispatcher  *self);
/* Fails unfinished items with FIBER_ERROR_CLOSED and kills the workers. */
void             _fiber_dispatcher_terminate    (FiberDispatcher  *self);
/* Interrupts the items running in the workers (FIBER_ERROR_INTERRUPTED). */
void             _fiber_dispatcher_interrupt    (FiberDispatcher  *self);
/* Waits until the workers have been reaped, the thread ended and the
 * runtime directory is gone.  FALSE with FIBER_ERROR_TIMEOUT after
 * @timeout_msec (-1 = forever). */
gboolean         _fiber_dispatcher_join         (FiberDispatcher  *self,
                                                 int               timeout_msec,
                                                 GError          **error);

/* For tests. */
const char      *_fiber_dispatcher_get_endpoint (FiberDispatcher  *self);
GArray          *_fiber_dispatcher_list_pids    (FiberDispatcher  *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (FiberDispatcher, _fiber_dispatcher_unref)

G_END_DECLS

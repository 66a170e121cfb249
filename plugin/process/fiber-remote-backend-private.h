/* fiber-remote-backend-private.h — internal: what the Slurm and Kubernetes backends share
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "fiber-job-private.h"
#include "fiber-rest-client-private.h"

G_BEGIN_DECLS

/* The properties both remote backends have, with the same meaning and
 * storage (each backend documents them for itself).  A backend numbers
 * its own properties from FIBER_REMOTE_N_PROPS and first offers every
 * property to _fiber_remote_core_get_property() / _set_property(), which
 * return whether it was one of these. */
enum {
  FIBER_REMOTE_PROP_0,
  FIBER_REMOTE_PROP_URL,
  FIBER_REMOTE_PROP_TOKEN,
  FIBER_REMOTE_PROP_TOKEN_FILE,
  FIBER_REMOTE_PROP_REQUEST_TIMEOUT,
  FIBER_REMOTE_PROP_ENVIRONMENT,
  FIBER_REMOTE_PROP_WORKING_DIRECTORY,
  FIBER_REMOTE_PROP_WORKER_COMMAND,
  FIBER_REMOTE_PROP_LISTEN_ADDRESS,
  FIBER_REMOTE_PROP_TIME_LIMIT,
  FIBER_REMOTE_PROP_MEMORY,
  FIBER_REMOTE_PROP_POLL_INTERVAL,
  FIBER_REMOTE_N_PROPS
};

/* The state a remote backend keeps besides its own settings: the common
 * settings, the REST client and the table of live jobs its monitor
 * watches.  Embedded in the backend's instance struct. */
typedef struct
{
  /* Construct-only: the connection. */
  char            *url;
  char            *token;
  char            *token_file;
  guint            request_timeout;

  /* Everything below, and the backend's own settings, under @lock. */
  GMutex           lock;
  char           **environment;
  char            *working_directory;
  char            *worker_command;
  char            *listen_address;
  guint            time_limit;
  guint64          memory;
  guint            poll_interval;

  FiberRestClient *client;     /* created at first use, by the backend */
  GSource         *monitor;    /* on the client thread */
  GPtrArray       *live;       /* (element-type FiberJob): not ended */
} FiberRemoteCore;

/* The backend data of a job of a remote backend. */
typedef struct
{
  char     *name;              /* the scheduler's name: Job name, Slurm job id */
  gboolean  cancel_requested;  /* under the core's lock */
} FiberRemoteJob;

void             _fiber_remote_core_init            (FiberRemoteCore   *core);
/* For finalize: stops the monitor, then drops the client, which joins its
 * thread after the callbacks of the requests still in flight have run. */
void             _fiber_remote_core_clear           (FiberRemoteCore   *core);

/* Fills properties[FIBER_REMOTE_PROP_URL … FIBER_REMOTE_N_PROPS - 1];
 * @max_time_limit is the largest time-limit in minutes. */
void             _fiber_remote_core_install_properties (GParamSpec    **properties,
                                                       guint           max_time_limit);
gboolean         _fiber_remote_core_get_property    (FiberRemoteCore   *core,
                                                     guint              prop_id,
                                                     GValue            *value);
gboolean         _fiber_remote_core_set_property    (FiberRemoteCore   *core,
                                                     guint              prop_id,
                                                     const GValue      *value);
/* Sets *@field to a copy of the string in @value; "" counts as NULL. */
void             _fiber_remote_set_string           (char             **field,
                                                     const GValue      *value);

/* Creates the FiberJob @name with Fiber pid @pid, adds it to the live
 * jobs and makes sure the monitor runs (@monitor_tick on the client
 * thread, every poll-interval ms, from when the client exists).
 * Returns (transfer full) the job. */
FiberJob        *_fiber_remote_core_add_job         (FiberRemoteCore   *core,
                                                     const char        *name,
                                                     gint64             pid,
                                                     GSourceFunc        monitor_tick,
                                                     gpointer           tick_data);
/* Removes an ended @job from the live jobs. */
void             _fiber_remote_core_forget_job      (FiberRemoteCore   *core,
                                                     FiberJob          *job);
/* A snapshot of the live jobs (element-type FiberJob, transfer full). */
GPtrArray       *_fiber_remote_core_dup_live_jobs   (FiberRemoteCore   *core);

/* The data of @job; NULL with FIBER_ERROR_INVALID_ARGUMENT when a remote
 * backend did not create it ("… a @backend_label backend"). */
FiberRemoteJob  *_fiber_remote_job_lookup           (FiberJob          *job,
                                                     const char        *backend_label,
                                                     GError           **error);
void             _fiber_remote_core_request_cancel  (FiberRemoteCore   *core,
                                                     FiberRemoteJob    *data);
gboolean         _fiber_remote_core_cancel_requested (FiberRemoteCore  *core,
                                                     FiberRemoteJob    *data);

/* FiberBackend.wait_job of a backend whose monitor ends its jobs;
 * FIBER_ERROR_TIMEOUT names the job as "@job_label ID". */
gboolean         _fiber_remote_wait_job             (FiberJob          *job,
                                                     int                timeout_msec,
                                                     const char        *job_label,
                                                     GError           **error);

/* The listen-address setting, (transfer full) (nullable). */
char            *_fiber_remote_core_dup_listen_address (FiberRemoteCore *core);
/* The first IPv4 address of this host's name that is not a loopback
 * address, or NULL. */
char            *_fiber_remote_host_address         (void);

/* Returns @envp (transfer full) with the `NAME=value` entries of @extra
 * set on it; entries without a name are skipped. */
char           **_fiber_remote_environ_add          (char             **envp,
                                                     char             **extra);
/* The command line of @spec; NULL with FIBER_ERROR_INVALID_ARGUMENT when
 * it is empty. */
const char * const *_fiber_remote_spec_get_argv     (FiberJobSpec      *spec,
                                                     GError           **error);

G_END_DECLS

/* fiber-remote-backend.c — internal: what the Slurm and Kubernetes backends share
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <string.h>

#include "fiber-error.h"
#include "fiber-remote-backend-private.h"

void
_fiber_remote_core_init (FiberRemoteCore *core)
{
  g_mutex_init (&core->lock);
  core->live = g_ptr_array_new_with_free_func (g_object_unref);
  core->request_timeout = 10000;
  core->poll_interval = 250;
}

void
_fiber_remote_core_clear (FiberRemoteCore *core)
{
  if (core->monitor != NULL)
    {
      g_source_destroy (core->monitor);
      g_clear_pointer (&core->monitor, g_source_unref);
    }
  g_clear_object (&core->client);
  g_clear_pointer (&core->live, g_ptr_array_unref);

  g_clear_pointer (&core->url, g_free);
  g_clear_pointer (&core->token, g_free);
  g_clear_pointer (&core->token_file, g_free);
  g_clear_pointer (&core->environment, g_strfreev);
  g_clear_pointer (&core->working_directory, g_free);
  g_clear_pointer (&core->worker_command, g_free);
  g_clear_pointer (&core->listen_address, g_free);
  g_mutex_clear (&core->lock);
}

/* Settings */

void
_fiber_remote_core_install_properties (GParamSpec **properties,
                                       guint        max_time_limit)
{
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;
  const GParamFlags construct = G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
                                G_PARAM_STATIC_STRINGS;

  properties[FIBER_REMOTE_PROP_URL] =
    g_param_spec_string ("url", NULL, NULL, NULL, construct);
  properties[FIBER_REMOTE_PROP_TOKEN] =
    g_param_spec_string ("token", NULL, NULL, NULL, construct);
  properties[FIBER_REMOTE_PROP_TOKEN_FILE] =
    g_param_spec_string ("token-file", NULL, NULL, NULL, construct);
  properties[FIBER_REMOTE_PROP_REQUEST_TIMEOUT] =
    g_param_spec_uint ("request-timeout", NULL, NULL, 1, G_MAXINT, 10000, construct);
  properties[FIBER_REMOTE_PROP_ENVIRONMENT] =
    g_param_spec_boxed ("environment", NULL, NULL, G_TYPE_STRV, rw);
  properties[FIBER_REMOTE_PROP_WORKING_DIRECTORY] =
    g_param_spec_string ("working-directory", NULL, NULL, NULL, rw);
  properties[FIBER_REMOTE_PROP_WORKER_COMMAND] =
    g_param_spec_string ("worker-command", NULL, NULL, NULL, rw);
  properties[FIBER_REMOTE_PROP_LISTEN_ADDRESS] =
    g_param_spec_string ("listen-address", NULL, NULL, NULL, rw);
  properties[FIBER_REMOTE_PROP_TIME_LIMIT] =
    g_param_spec_uint ("time-limit", NULL, NULL, 0, max_time_limit, 0, rw);
  properties[FIBER_REMOTE_PROP_MEMORY] =
    g_param_spec_uint64 ("memory", NULL, NULL, 0, G_MAXINT64, 0, rw);
  properties[FIBER_REMOTE_PROP_POLL_INTERVAL] =
    g_param_spec_uint ("poll-interval", NULL, NULL, 10, 60000, 250,
                       rw | G_PARAM_CONSTRUCT);
}

gboolean
_fiber_remote_core_get_property (FiberRemoteCore *core,
                                 guint            prop_id,
                                 GValue          *value)
{
  if (prop_id == FIBER_REMOTE_PROP_0 || prop_id >= FIBER_REMOTE_N_PROPS)
    return FALSE;

  g_mutex_lock (&core->lock);
  switch (prop_id)
    {
    case FIBER_REMOTE_PROP_URL:
      g_value_set_string (value, core->url);
      break;
    case FIBER_REMOTE_PROP_TOKEN:
      g_value_set_string (value, core->token);
      break;
    case FIBER_REMOTE_PROP_TOKEN_FILE:
      g_value_set_string (value, core->token_file);
      break;
    case FIBER_REMOTE_PROP_REQUEST_TIMEOUT:
      g_value_set_uint (value, core->request_timeout);
      break;
    case FIBER_REMOTE_PROP_ENVIRONMENT:
      g_value_set_boxed (value, core->environment);
      break;
    case FIBER_REMOTE_PROP_WORKING_DIRECTORY:
      g_value_set_string (value, core->working_directory);
      break;
    case FIBER_REMOTE_PROP_WORKER_COMMAND:
      g_value_set_string (value, core->worker_command);
      break;
    case FIBER_REMOTE_PROP_LISTEN_ADDRESS:
      g_value_set_string (value, core->listen_address);
      break;
    case FIBER_REMOTE_PROP_TIME_LIMIT:
      g_value_set_uint (value, core->time_limit);
      break;
    case FIBER_REMOTE_PROP_MEMORY:
      g_value_set_uint64 (value, core->memory);
      break;
    case FIBER_REMOTE_PROP_POLL_INTERVAL:
      g_value_set_uint (value, core->poll_interval);
      break;
    default:
      g_assert_not_reached ();
    }
  g_mutex_unlock (&core->lock);
  return TRUE;
}

void
_fiber_remote_set_string (char         **field,
                          const GValue  *value)
{
  const char *text = g_value_get_string (value);

  g_free (*field);
  *field = text != NULL && *text != '\0' ? g_strdup (text) : NULL;
}

gboolean
_fiber_remote_core_set_property (FiberRemoteCore *core,
                                 guint            prop_id,
                                 const GValue    *value)
{
  if (prop_id == FIBER_REMOTE_PROP_0 || prop_id >= FIBER_REMOTE_N_PROPS)
    return FALSE;

  g_mutex_lock (&core->lock);
  switch (prop_id)
    {
    case FIBER_REMOTE_PROP_URL:
      _fiber_remote_set_string (&core->url, value);
      break;
    case FIBER_REMOTE_PROP_TOKEN:
      _fiber_remote_set_string (&core->token, value);
      break;
    case FIBER_REMOTE_PROP_TOKEN_FILE:
      _fiber_remote_set_string (&core->token_file, value);
      break;
    case FIBER_REMOTE_PROP_REQUEST_TIMEOUT:
      core->request_timeout = g_value_get_uint (value);
      break;
    case FIBER_REMOTE_PROP_ENVIRONMENT:
      g_strfreev (core->environment);
      core->environment = g_value_dup_boxed (value);
      break;
    case FIBER_REMOTE_PROP_WORKING_DIRECTORY:
      _fiber_remote_set_string (&core->working_directory, value);
      break;
    case FIBER_REMOTE_PROP_WORKER_COMMAND:
      _fiber_remote_set_string (&core->worker_command, value);
      break;
    case FIBER_REMOTE_PROP_LISTEN_ADDRESS:
      _fiber_remote_set_string (&core->listen_address, value);
      break;
    case FIBER_REMOTE_PROP_TIME_LIMIT:
      core->time_limit = g_value_get_uint (value);
      break;
    case FIBER_REMOTE_PROP_MEMORY:
      core->memory = g_value_get_uint64 (value);
      break;
    case FIBER_REMOTE_PROP_POLL_INTERVAL:
      core->poll_interval = g_value_get_uint (value);
      break;
    default:
      g_assert_not_reached ();
    }
  g_mutex_unlock (&core->lock);
  return TRUE;
}

/* The table of live jobs */

static void
remote_job_free (gpointer data)
{
  FiberRemoteJob *job = data;

  g_free (job->name);
  g_free (job);
}

FiberJob *
_fiber_remote_core_add_job (FiberRemoteCore *core,
                            const char      *name,
                            gint64           pid,
                            GSourceFunc      monitor_tick,
                            gpointer         tick_data)
{
  FiberRemoteJob *data = g_new0 (FiberRemoteJob, 1);
  FiberJob *job;

  data->name = g_strdup (name);
  job = _fiber_job_new (name, pid, -1, data, remote_job_free);

  g_mutex_lock (&core->lock);
  g_ptr_array_add (core->live, g_object_ref (job));
  if (core->monitor == NULL && core->client != NULL)
    core->monitor = _fiber_rest_client_add_timeout (core->client,
                                                    MAX (core->poll_interval, 10),
                                                    monitor_tick, tick_data, NULL);
  g_mutex_unlock (&core->lock);
  return job;
}

void
_fiber_remote_core_forget_job (FiberRemoteCore *core,
                               FiberJob        *job)
{
  g_mutex_lock (&core->lock);
  g_ptr_array_remove (core->live, job);
  g_mutex_unlock (&core->lock);
}

GPtrArray *
_fiber_remote_core_dup_live_jobs (FiberRemoteCore *core)
{
  GPtrArray *jobs;

  g_mutex_lock (&core->lock);
  jobs = g_ptr_array_new_full (core->live->len, g_object_unref);
  for (guint i = 0; i < core->live->len; i++)
    g_ptr_array_add (jobs, g_object_ref (g_ptr_array_index (core->live, i)));
  g_mutex_unlock (&core->lock);
  return jobs;
}

FiberRemoteJob *
_fiber_remote_job_lookup (FiberJob    *job,
                          const char  *backend_label,
                          GError     **error)
{
  FiberRemoteJob *data = _fiber_job_get_backend_data (job);

  if (data == NULL)
    g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                 "job %s was not created by a %s backend", fiber_job_get_id (job),
                 backend_label);
  return data;
}

void
_fiber_remote_core_request_cancel (FiberRemoteCore *core,
                                   FiberRemoteJob  *data)
{
  g_mutex_lock (&core->lock);
  data->cancel_requested = TRUE;
  g_mutex_unlock (&core->lock);
}

gboolean
_fiber_remote_core_cancel_requested (FiberRemoteCore *core,
                                     FiberRemoteJob  *data)
{
  gboolean cancelled;

  g_mutex_lock (&core->lock);
  cancelled = data->cancel_requested;
  g_mutex_unlock (&core->lock);
  return cancelled;
}

gboolean
_fiber_remote_wait_job (FiberJob    *job,
                        int          timeout_msec,
                        const char  *job_label,
                        GError     **error)
{
  if (_fiber_job_poll (job, timeout_msec) || fiber_job_has_ended (job))
    return TRUE;
  g_set_error (error, FIBER_ERROR, FIBER_ERROR_TIMEOUT,
               "%s %s has not ended after %d ms", job_label, fiber_job_get_id (job),
               timeout_msec);
  return FALSE;
}

/* Jobs */

char *
_fiber_remote_core_dup_listen_address (FiberRemoteCore *core)
{
  char *address;

  g_mutex_lock (&core->lock);
  address = g_strdup (core->listen_address);
  g_mutex_unlock (&core->lock);
  return address;
}

char *
_fiber_remote_host_address (void)
{
  g_autoptr(GResolver) resolver = g_resolver_get_default ();
  GList *addresses;
  char *result = NULL;

  addresses = g_resolver_lookup_by_name (resolver, g_get_host_name (), NULL, NULL);
  for (GList *l = addresses; l != NULL && result == NULL; l = l->next)
    if (!g_inet_address_get_is_loopback (l->data) &&
        g_inet_address_get_family (l->data) == G_SOCKET_FAMILY_IPV4)
      result = g_inet_address_to_string (l->data);
  g_resolver_free_addresses (addresses);
  return result;
}

char **
_fiber_remote_environ_add (char **envp,
                           char **extra)
{
  for (guint i = 0; extra != NULL && extra[i] != NULL; i++)
    {
      const char *eq = strchr (extra[i], '=');
      g_autofree char *key = NULL;

      if (eq == NULL || eq == extra[i])
        continue;
      key = g_strndup (extra[i], eq - extra[i]);
      envp = g_environ_setenv (envp, key, eq + 1, TRUE);
    }
  return envp;
}

const char * const *
_fiber_remote_spec_get_argv (FiberJobSpec  *spec,
                             GError       **error)
{
  const char * const *argv = fiber_job_spec_get_argv (spec);

  if (argv == NULL || argv[0] == NULL)
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                   "the job spec has an empty command line");
      return NULL;
    }
  return argv;
}

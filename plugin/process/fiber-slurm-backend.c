/* fiber-slurm-backend.c — jobs as Slurm batch jobs, through slurmrestd
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <signal.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "fiber-error.h"
#include "fiber-init-private.h"
#include "fiber-remote-backend-private.h"
#include "fiber-slurm-backend.h"

/**
 * FiberSlurmBackend:
 *
 * A [iface@Fiber.Backend] whose jobs are Slurm batch jobs, submitted,
 * watched and cancelled through the Slurm REST daemon (slurmrestd).
 *
 * The connection is either a unix socket of a slurmrestd started with
 * `rest_auth/local` ([property@Fiber.SlurmBackend:socket]; the daemon
 * trusts the peer's uid), or an `http://` / `https://` URL of one started
 * with `rest_auth/jwt` ([property@Fiber.SlurmBackend:url]), in which case
 * every request carries the `X-SLURM-USER-NAME` and `X-SLURM-USER-TOKEN`
 * headers (a token from `scontrol token`).
 *
 * The OpenAPI version is taken from the daemon's `/openapi/v3` document:
 * the newest of v0.0.38 (Slurm 22.05) to v0.0.41 that it offers, unless
 * [property@Fiber.SlurmBackend:api-version] names one.
 *
 * A job runs a script `exec <worker command>` with the caller's
 * environment (like `sbatch --export=ALL`), the backend's extra
 * [property@Fiber.SlurmBackend:environment] and the spec's variables, in
 * that order of precedence from lowest to highest.  Its Fiber pid is the
 * Slurm job id.
 *
 * A monitor thread asks slurmrestd for the state of every live job
 * about every [property@Fiber.SlurmBackend:poll-interval] milliseconds,
 * records the end and exit code of each job (Slurm reports a raw wait
 * status) and makes the job's fd readable.  A job whose record slurmctld
 * purged (after `MinJobAge`) before its end was seen is reported as
 * %FIBER_JOB_STATE_LOST with exit code `-SIGKILL`, or as cancelled if it
 * was terminated through this backend.
 *
 * Errors of slurmrestd (HTTP 401 plain text, HTTP 500 with a JSON
 * `errors` list) become %FIBER_ERROR_BACKEND errors carrying Slurm's own
 * message; an unreachable or stuck daemon gives a %FIBER_ERROR_BACKEND
 * error within [property@Fiber.SlurmBackend:request-timeout].
 */

#define MIN_API 38
#define MAX_API 41
#define SLURM_INVALID_JOB_ID 2017

struct _FiberSlurmBackend
{
  GObject          parent_instance;

  FiberRemoteCore  core;             /* the common settings, the live jobs */

  /* Construct-only: the connection. */
  char            *socket_path;
  char            *user;

  /* Job settings, under @core.lock. */
  char            *partition;
  guint            cpus_per_task;
  char            *standard_output;
  char            *standard_error;
  char            *api_version;      /* NULL: detect */
  guint            api_minor;        /* 0 until known */
  gboolean         export_environment;

  guint            polls_in_flight;  /* client thread only */
};

static void fiber_slurm_backend_iface_init (FiberBackendInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (FiberSlurmBackend, fiber_slurm_backend, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (FIBER_TYPE_BACKEND,
                                                      fiber_slurm_backend_iface_init))

enum {
  PROP_SOCKET = FIBER_REMOTE_N_PROPS,
  PROP_USER,
  PROP_PARTITION,
  PROP_CPUS_PER_TASK,
  PROP_STANDARD_OUTPUT,
  PROP_STANDARD_ERROR,
  PROP_API_VERSION,
  PROP_EXPORT_ENVIRONMENT,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

/* JSON helpers, shared by every OpenAPI version. */

/* A number, or (v0.0.39+) {"set": true, "infinite": false, "number": N}. */
static gboolean
node_get_number (JsonNode *node,
                 gint64   *number)
{
  if (node == NULL)
    return FALSE;
  if (JSON_NODE_HOLDS_VALUE (node))
    {
      GType type = json_node_get_value_type (node);

      if (type == G_TYPE_INT64 || type == G_TYPE_DOUBLE || type == G_TYPE_BOOLEAN)
        {
          *number = json_node_get_int (node);
          return TRUE;
        }
      return FALSE;
    }
  if (JSON_NODE_HOLDS_OBJECT (node))
    {
      JsonObject *object = json_node_get_object (node);

      if (json_object_has_member (object, "set") &&
          !json_object_get_boolean_member_with_default (object, "set", FALSE))
        return FALSE;
      if (json_object_get_boolean_member_with_default (object, "infinite", FALSE))
        return FALSE;
      return node_get_number (json_object_get_member (object, "number"), number);
    }
  return FALSE;
}

static gboolean
object_member_number (JsonObject *object,
                      const char *name,
                      gint64     *number)
{
  return object != NULL && node_get_number (json_object_get_member (object, name), number);
}

/* "Invalid job id specified: Unable to find JobId=7 (Slurm error 2017)"
 * for every entry of the reply's `errors` list; NULL if there is none. */
static char *
slurm_errors_message (JsonNode *root,
                      gint64   *first_number)
{
  JsonObject *object;
  JsonNode *errors_node;
  JsonArray *errors;
  g_autoptr(GString) message = NULL;

  *first_number = 0;
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return NULL;
  object = json_node_get_object (root);
  errors_node = json_object_get_member (object, "errors");
  if (errors_node == NULL || !JSON_NODE_HOLDS_ARRAY (errors_node))
    return NULL;
  errors = json_node_get_array (errors_node);

  for (guint i = 0; i < json_array_get_length (errors); i++)
    {
      JsonNode *entry_node = json_array_get_element (errors, i);
      JsonObject *entry;
      const char *text, *description;
      gint64 number = 0;

      if (!JSON_NODE_HOLDS_OBJECT (entry_node))
        continue;
      entry = json_node_get_object (entry_node);
      text = _fiber_json_member_string (entry, "error");
      description = _fiber_json_member_string (entry, "description");
      if (!object_member_number (entry, "error_number", &number))
        object_member_number (entry, "error_code", &number);
      if (*first_number == 0)
        *first_number = number;

      if (message == NULL)
        message = g_string_new (NULL);
      else
        g_string_append (message, "; ");
      if (text != NULL && *text != '\0')
        g_string_append (message, text);
      if (description != NULL && *description != '\0' &&
          g_strcmp0 (description, text) != 0)
        g_string_append_printf (message, "%s%s",
                                text != NULL && *text != '\0' ? ": " : "",
                                description);
      if (number != 0)
        g_string_append_printf (message, " (Slurm error %" G_GINT64_FORMAT ")", number);
    }
  return message != NULL ? g_string_free (g_steal_pointer (&message), FALSE) : NULL;
}

static char *
reply_errors_message (JsonNode *root,
                      gpointer  user_data)
{
  return slurm_errors_message (root, user_data);
}

/* Returns the JSON object of a successful reply; otherwise NULL with
 * FIBER_ERROR_BACKEND carrying Slurm's message.  With @gone, *@gone tells
 * whether Slurm reported the job unknown (purged), and such a failure
 * sets no error. */
static JsonNode *
check_reply (FiberRestReply  *reply,
             const char      *what,
             gboolean        *gone,
             GError         **error)
{
  g_autoptr(GError) local_error = NULL;
  gint64 number = 0;
  JsonNode *root;

  root = _fiber_rest_reply_check (reply, "slurmrestd", what,
                                  reply_errors_message, &number, &local_error);
  if (gone != NULL)
    *gone = number == SLURM_INVALID_JOB_ID;
  if (root == NULL && (gone == NULL || !*gone))
    g_propagate_error (error, g_steal_pointer (&local_error));
  return root;
}

/* Connection and API version. */

static FiberRestClient *
dup_client (FiberSlurmBackend  *self,
            GError            **error)
{
  g_autoptr(FiberRestClient) client = NULL;
  FiberRestClient *result;

  g_mutex_lock (&self->core.lock);
  if (self->core.client != NULL)
    {
      result = g_object_ref (self->core.client);
      g_mutex_unlock (&self->core.lock);
      return result;
    }
  g_mutex_unlock (&self->core.lock);

  if (self->core.url != NULL && self->socket_path != NULL)
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                   "the Slurm backend needs either a url or a socket, not both");
      return NULL;
    }
  if (self->core.url == NULL && self->socket_path == NULL)
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                   "the Slurm backend needs the url or the unix socket of slurmrestd");
      return NULL;
    }

  if (self->socket_path != NULL)
    client = _fiber_rest_client_new ("slurmrestd", "http://localhost",
                                     self->socket_path, NULL,
                                     self->core.request_timeout, error);
  else
    client = _fiber_rest_client_new ("slurmrestd", self->core.url, NULL, NULL,
                                     self->core.request_timeout, error);
  if (client == NULL)
    return NULL;

  /* JWT: over TCP always; over a unix socket only when a token is given
   * (a rest_auth/jwt daemon may listen on a socket too). */
  if (self->core.url != NULL || self->core.token != NULL || self->core.token_file != NULL)
    {
      const char *env_token = g_getenv ("SLURM_JWT");

      _fiber_rest_client_add_header (client, "X-SLURM-USER-NAME",
                                     self->user != NULL ? self->user : g_get_user_name ());
      if (self->core.token_file != NULL)
        _fiber_rest_client_add_header_file (client, "X-SLURM-USER-TOKEN", NULL,
                                            self->core.token_file);
      else if (self->core.token != NULL)
        _fiber_rest_client_add_header (client, "X-SLURM-USER-TOKEN", self->core.token);
      else if (env_token != NULL && *env_token != '\0')
        _fiber_rest_client_add_header (client, "X-SLURM-USER-TOKEN", env_token);
    }

  g_mutex_lock (&self->core.lock);
  if (self->core.client == NULL)
    self->core.client = g_steal_pointer (&client);
  result = g_object_ref (self->core.client);
  g_mutex_unlock (&self->core.lock);
  /* A client made concurrently and not used is dropped here, on this
   * thread, which is not its own. */
  return result;
}

static guint
parse_api_version (const char *text)
{
  guint64 minor = 0;

  if (text == NULL || !g_str_has_prefix (text, "v0.0."))
    return 0;
  if (!g_ascii_string_to_unsigned (text + strlen ("v0.0."), 10, 0, 1000, &minor, NULL))
    return 0;
  return (guint) minor;
}

static gboolean
detect_api_version (FiberSlurmBackend  *self,
                    FiberRestClient    *client,
                    GError            **error)
{
  g_autoptr(FiberRestReply) reply = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GString) offered = g_string_new (NULL);
  JsonObject *paths;
  GList *names;
  guint best = 0;

  reply = _fiber_rest_client_call (client, "GET", "/openapi/v3", NULL, error);
  if (reply != NULL && reply->status == 404)
    {
      g_clear_pointer (&reply, _fiber_rest_reply_free);
      reply = _fiber_rest_client_call (client, "GET", "/openapi", NULL, error);
    }
  if (reply == NULL)
    return FALSE;
  root = check_reply (reply, "GET /openapi/v3", NULL, error);
  if (root == NULL)
    return FALSE;

  paths = _fiber_json_member_object (json_node_get_object (root), "paths");
  names = paths != NULL ? json_object_get_members (paths) : NULL;
  for (GList *l = names; l != NULL; l = l->next)
    {
      const char *path = l->data;
      guint64 minor;
      g_autofree char *number = NULL;

      if (!g_str_has_prefix (path, "/slurm/v0.0.") ||
          !g_str_has_suffix (path, "/job/submit"))
        continue;
      number = g_strndup (path + strlen ("/slurm/v0.0."),
                          strlen (path) - strlen ("/slurm/v0.0.") - strlen ("/job/submit"));
      if (!g_ascii_string_to_unsigned (number, 10, 0, 1000, &minor, NULL))
        continue;
      g_string_append_printf (offered, "%sv0.0.%s", offered->len > 0 ? ", " : "", number);
      if (minor >= MIN_API && minor <= MAX_API && minor > best)
        best = (guint) minor;
    }
  g_list_free (names);

  if (best == 0)
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_BACKEND,
                   "slurmrestd offers none of the OpenAPI versions this backend "
                   "speaks (v0.0.%d to v0.0.%d); it offers: %s",
                   MIN_API, MAX_API, offered->len > 0 ? offered->str : "no job API");
      return FALSE;
    }

  g_mutex_lock (&self->core.lock);
  if (self->api_minor == 0)
    self->api_minor = best;
  g_mutex_unlock (&self->core.lock);
  return TRUE;
}

/* The client and the API version, detecting it at the first call. */
static FiberRestClient *
ensure_ready (FiberSlurmBackend  *self,
              guint              *api_minor,
              GError            **error)
{
  g_autoptr(FiberRestClient) client = dup_client (self, error);
  guint minor;

  if (client == NULL)
    return NULL;

  g_mutex_lock (&self->core.lock);
  if (self->api_minor == 0 && self->api_version != NULL)
    {
      minor = parse_api_version (self->api_version);
      if (minor < MIN_API || minor > MAX_API)
        {
          g_mutex_unlock (&self->core.lock);
          g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                       "unsupported Slurm OpenAPI version '%s' (this backend speaks "
                       "v0.0.%d to v0.0.%d)", self->api_version, MIN_API, MAX_API);
          return NULL;
        }
      self->api_minor = minor;
    }
  minor = self->api_minor;
  g_mutex_unlock (&self->core.lock);

  if (minor == 0)
    {
      if (!detect_api_version (self, client, error))
        return NULL;
      g_mutex_lock (&self->core.lock);
      minor = self->api_minor;
      g_mutex_unlock (&self->core.lock);
    }
  *api_minor = minor;
  return g_steal_pointer (&client);
}

/* Job states. */

/* Maps a Slurm job state (v0.0.38: a string; v0.0.39+: a list of the base
 * state and flags) to ours; *@ended_state is set for ended jobs. */
static gboolean
parse_state (JsonNode      *node,
             FiberJobState *state,
             char         **name)
{
  g_autoptr(GPtrArray) names = g_ptr_array_new ();
  const char *base;
  static const struct { const char *name; FiberJobState state; } map[] = {
    { "PENDING", FIBER_JOB_STATE_PENDING },
    { "CONFIGURING", FIBER_JOB_STATE_PENDING },
    { "REQUEUED", FIBER_JOB_STATE_PENDING },
    { "REQUEUE_HOLD", FIBER_JOB_STATE_PENDING },
    { "REQUEUE_FED", FIBER_JOB_STATE_PENDING },
    { "RESV_DEL_HOLD", FIBER_JOB_STATE_PENDING },
    { "RUNNING", FIBER_JOB_STATE_RUNNING },
    { "SUSPENDED", FIBER_JOB_STATE_RUNNING },
    { "COMPLETING", FIBER_JOB_STATE_RUNNING },
    { "STAGE_OUT", FIBER_JOB_STATE_RUNNING },
    { "SIGNALING", FIBER_JOB_STATE_RUNNING },
    { "RESIZING", FIBER_JOB_STATE_RUNNING },
    { "COMPLETED", FIBER_JOB_STATE_COMPLETED },
    { "FAILED", FIBER_JOB_STATE_FAILED },
    { "TIMEOUT", FIBER_JOB_STATE_FAILED },
    { "OUT_OF_MEMORY", FIBER_JOB_STATE_FAILED },
    { "BOOT_FAIL", FIBER_JOB_STATE_FAILED },
    { "DEADLINE", FIBER_JOB_STATE_FAILED },
    { "CANCELLED", FIBER_JOB_STATE_CANCELLED },
    { "PREEMPTED", FIBER_JOB_STATE_CANCELLED },
    { "NODE_FAIL", FIBER_JOB_STATE_LOST },
  };

  if (node == NULL)
    return FALSE;
  if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
    g_ptr_array_add (names, (gpointer) json_node_get_string (node));
  else if (JSON_NODE_HOLDS_ARRAY (node))
    {
      JsonArray *array = json_node_get_array (node);

      for (guint i = 0; i < json_array_get_length (array); i++)
        {
          JsonNode *element = json_array_get_element (array, i);

          if (JSON_NODE_HOLDS_VALUE (element) &&
              json_node_get_value_type (element) == G_TYPE_STRING)
            g_ptr_array_add (names, (gpointer) json_node_get_string (element));
        }
    }
  if (names->len == 0)
    return FALSE;

  base = g_ptr_array_index (names, 0);
  *name = g_strdup (base);
  /* A job still completing (epilog, step cleanup) has not ended yet. */
  for (guint i = 0; i < names->len; i++)
    if (g_str_equal (g_ptr_array_index (names, i), "COMPLETING"))
      {
        *state = FIBER_JOB_STATE_RUNNING;
        return TRUE;
      }
  for (gsize i = 0; i < G_N_ELEMENTS (map); i++)
    if (g_str_equal (base, map[i].name))
      {
        *state = map[i].state;
        return TRUE;
      }
  /* Unknown: a newer Slurm's state; keep waiting rather than guess. */
  *state = FIBER_JOB_STATE_RUNNING;
  return TRUE;
}

/* v0.0.38: a raw wait status.  v0.0.39+: {"status": …, "return_code":
 * {number}, "signal": {"id" or "signal_id": {number}}}. */
static gboolean
parse_exit_code (JsonNode *node,
                 int      *exitcode)
{
  gint64 number;

  if (node == NULL)
    return FALSE;
  if (JSON_NODE_HOLDS_VALUE (node))
    {
      if (!node_get_number (node, &number))
        return FALSE;
      *exitcode = _fiber_wait_status_to_exitcode ((int) number);
      return TRUE;
    }
  if (JSON_NODE_HOLDS_OBJECT (node))
    {
      JsonObject *object = json_node_get_object (node);
      JsonObject *signal_object = _fiber_json_member_object (object, "signal");
      gint64 sig = 0;

      if (signal_object != NULL &&
          (object_member_number (signal_object, "id", &sig) ||
           object_member_number (signal_object, "signal_id", &sig)) && sig > 0)
        {
          *exitcode = (int) -sig;
          return TRUE;
        }
      if (object_member_number (object, "return_code", &number))
        {
          *exitcode = (int) CLAMP (number, 0, 255);
          return TRUE;
        }
    }
  return FALSE;
}

/* Records what a `GET job/{id}` reply says about @job.  Called on any
 * thread; the job and the live list do their own locking. */
static gboolean
apply_job_reply (FiberSlurmBackend  *self,
                 FiberJob           *job,
                 FiberRestReply     *reply,
                 GError            **error)
{
  FiberRemoteJob *data = _fiber_job_get_backend_data (job);
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *what = g_strdup_printf ("GET job %s", data->name);
  g_autofree char *state_name = NULL;
  JsonNode *jobs_node;
  JsonObject *found = NULL;
  FiberJobState state;
  gboolean gone = FALSE;
  int exitcode = 0;
  gboolean ended = FALSE;

  root = check_reply (reply, what, &gone, error);
  if (root == NULL && !gone)
    return FALSE;

  jobs_node = root != NULL ? json_object_get_member (json_node_get_object (root), "jobs") : NULL;
  if (jobs_node != NULL && JSON_NODE_HOLDS_ARRAY (jobs_node))
    {
      JsonArray *jobs = json_node_get_array (jobs_node);

      for (guint i = 0; i < json_array_get_length (jobs); i++)
        {
          JsonNode *entry = json_array_get_element (jobs, i);
          gint64 id;

          if (JSON_NODE_HOLDS_OBJECT (entry) &&
              object_member_number (json_node_get_object (entry), "job_id", &id) &&
              id == fiber_job_get_pid (job))
            found = json_node_get_object (entry);
        }
    }

  if (found == NULL)
    {
      if (!gone)
        {
          g_set_error (error, FIBER_ERROR, FIBER_ERROR_BACKEND,
                       "slurmrestd: %s: the reply does not describe the job", what);
          return FALSE;
        }
      /* Purged after MinJobAge before we saw its end. */
      if (_fiber_remote_core_cancel_requested (&self->core, data))
        _fiber_job_set_ended (job, FIBER_JOB_STATE_CANCELLED, -SIGTERM);
      else
        _fiber_job_set_ended (job, FIBER_JOB_STATE_LOST, -SIGKILL);
      ended = TRUE;
    }
  else
    {
      if (!parse_state (json_object_get_member (found, "job_state"), &state, &state_name))
        {
          g_set_error (error, FIBER_ERROR, FIBER_ERROR_BACKEND,
                       "slurmrestd: %s: the reply has no job_state", what);
          return FALSE;
        }
      if (state <= FIBER_JOB_STATE_RUNNING)
        _fiber_job_set_state (job, state);
      else
        {
          if (!parse_exit_code (json_object_get_member (found, "exit_code"), &exitcode))
            exitcode = 0;
          if (state == FIBER_JOB_STATE_COMPLETED && exitcode != 0)
            state = FIBER_JOB_STATE_FAILED;
          if (state != FIBER_JOB_STATE_COMPLETED && exitcode == 0)
            {
              /* Ended without a status of its own (cancelled while pending,
               * time limit, node failure): say how it was stopped. */
              exitcode = (state == FIBER_JOB_STATE_CANCELLED ||
                          g_str_equal (state_name, "TIMEOUT") ||
                          g_str_equal (state_name, "DEADLINE")) ? -SIGTERM : -SIGKILL;
            }
          _fiber_job_set_ended (job, state, exitcode);
          ended = TRUE;
        }
    }

  if (ended)
    _fiber_remote_core_forget_job (&self->core, job);
  return TRUE;
}

static char *
job_path (guint       api_minor,
          const char *slurm_id)
{
  return g_strdup_printf ("/slurm/v0.0.%u/job/%s", api_minor, slurm_id);
}

/* The monitor, on the client thread. */

typedef struct
{
  FiberSlurmBackend *self;   /* unowned: finalize joins the client thread */
  FiberJob          *job;
} PollData;

static void
poll_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  PollData *poll = user_data;
  FiberSlurmBackend *self = poll->self;
  g_autoptr(FiberRestReply) reply = NULL;
  g_autoptr(GError) error = NULL;

  reply = _fiber_rest_client_call_finish (self->core.client, result, &error);
  if (reply == NULL || !apply_job_reply (self, poll->job, reply, &error))
    g_debug ("Slurm job %s: %s", fiber_job_get_id (poll->job), error->message);

  self->polls_in_flight--;
  g_object_unref (poll->job);
  g_free (poll);
}

static gboolean
monitor_tick (gpointer user_data)
{
  FiberSlurmBackend *self = user_data;
  g_autoptr(GPtrArray) jobs = NULL;
  guint api_minor;

  /* One round of requests at a time: a slow daemon is not flooded. */
  if (self->polls_in_flight > 0)
    return G_SOURCE_CONTINUE;

  jobs = _fiber_remote_core_dup_live_jobs (&self->core);
  g_mutex_lock (&self->core.lock);
  api_minor = self->api_minor;
  g_mutex_unlock (&self->core.lock);

  for (guint i = 0; i < jobs->len; i++)
    {
      FiberJob *job = g_ptr_array_index (jobs, i);
      FiberRemoteJob *data = _fiber_job_get_backend_data (job);
      g_autofree char *path = job_path (api_minor, data->name);
      PollData *poll = g_new0 (PollData, 1);

      poll->self = self;
      poll->job = g_object_ref (job);
      self->polls_in_flight++;
      _fiber_rest_client_call_async (self->core.client, "GET", path, NULL, poll_done, poll);
    }
  return G_SOURCE_CONTINUE;
}

/* FiberBackend */

static const char *
fiber_slurm_backend_get_name (FiberBackend *backend)
{
  return "slurm";
}

static gboolean
fiber_slurm_backend_is_remote (FiberBackend *backend)
{
  return TRUE;
}

static gboolean
is_scheduler_variable (const char *entry)
{
  return g_str_has_prefix (entry, "SLURM_") || g_str_has_prefix (entry, "SBATCH_") ||
         g_str_has_prefix (entry, "SALLOC_") || g_str_has_prefix (entry, "SRUN_");
}

static char **
job_environment (FiberSlurmBackend *self,
                 FiberJobSpec      *spec,
                 gboolean           export_all,
                 char             **extra)
{
  g_auto(GStrv) current = g_get_environ ();
  char **envp = g_new0 (char *, 1);
  static const char * const minimal[] = {
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LD_LIBRARY_PATH", NULL
  };

  if (export_all)
    {
      for (guint i = 0; current[i] != NULL; i++)
        {
          g_autofree char *key = NULL;
          const char *eq = strchr (current[i], '=');

          if (eq == NULL || is_scheduler_variable (current[i]))
            continue;
          key = g_strndup (current[i], eq - current[i]);
          envp = g_environ_setenv (envp, key, eq + 1, TRUE);
        }
    }
  else
    {
      for (guint i = 0; minimal[i] != NULL; i++)
        {
          const char *value = g_environ_getenv (current, minimal[i]);

          if (value != NULL)
            envp = g_environ_setenv (envp, minimal[i], value, TRUE);
        }
    }
  if (g_environ_getenv (envp, "PATH") == NULL)
    envp = g_environ_setenv (envp, "PATH", "/usr/local/bin:/usr/bin:/bin", TRUE);

  envp = _fiber_remote_environ_add (envp, extra);
  return _fiber_job_spec_apply_environment (spec, envp);
}

static char *
job_script (const char * const *argv,
            const char         *worker_command)
{
  /* The Fiber pid of a job is its Slurm job id; the process in it reports
   * that as its own (fiber_current_process()). */
  g_autoptr(GString) script = g_string_new ("#!/bin/sh\n# submitted by fiber-glib\n"
                                            FIBER_ENV_PID "=$SLURM_JOB_ID\n"
                                            "export " FIBER_ENV_PID "\n"
                                            "exec");

  if (worker_command != NULL && *worker_command != '\0')
    g_string_append_printf (script, " %s", worker_command);
  else
    {
      g_autofree char *quoted = g_shell_quote (argv[0]);
      g_string_append_printf (script, " %s", quoted);
    }
  for (guint i = 1; argv[i] != NULL; i++)
    {
      g_autofree char *quoted = g_shell_quote (argv[i]);
      g_string_append_printf (script, " %s", quoted);
    }
  g_string_append_c (script, '\n');
  return g_string_free (g_steal_pointer (&script), FALSE);
}

static void
add_number (JsonBuilder *builder,
            guint        api_minor,
            const char  *name,
            gint64       value)
{
  json_builder_set_member_name (builder, name);
  if (api_minor >= 39)
    {
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "set");
      json_builder_add_boolean_value (builder, TRUE);
      json_builder_set_member_name (builder, "infinite");
      json_builder_add_boolean_value (builder, FALSE);
      json_builder_set_member_name (builder, "number");
      json_builder_add_int_value (builder, value);
      json_builder_end_object (builder);
    }
  else
    json_builder_add_int_value (builder, value);
}

static void
add_string (JsonBuilder *builder,
            const char  *name,
            const char  *value)
{
  if (value == NULL)
    return;
  json_builder_set_member_name (builder, name);
  json_builder_add_string_value (builder, value);
}

static JsonNode *
submit_body (FiberSlurmBackend  *self,
             FiberJobSpec       *spec,
             guint               api_minor,
             GError            **error)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autofree char *script = NULL;
  g_autofree char *cwd = NULL;
  g_auto(GStrv) envp = NULL;
  g_auto(GStrv) extra = NULL;
  g_autofree char *partition = NULL;
  g_autofree char *worker_command = NULL;
  g_autofree char *standard_output = NULL;
  g_autofree char *standard_error = NULL;
  const char * const *argv = _fiber_remote_spec_get_argv (spec, error);
  const char *name = fiber_job_spec_get_name (spec);
  guint time_limit, cpus;
  guint64 memory;
  gboolean export_all;

  if (argv == NULL)
    return NULL;

  g_mutex_lock (&self->core.lock);
  partition = g_strdup (self->partition);
  worker_command = g_strdup (self->core.worker_command);
  standard_output = g_strdup (self->standard_output);
  standard_error = g_strdup (self->standard_error);
  cwd = g_strdup (self->core.working_directory);
  extra = g_strdupv (self->core.environment);
  time_limit = self->core.time_limit;
  cpus = self->cpus_per_task;
  memory = self->core.memory;
  export_all = self->export_environment;
  g_mutex_unlock (&self->core.lock);

  if (cwd == NULL && fiber_job_spec_get_cwd (spec) != NULL)
    cwd = g_strdup (fiber_job_spec_get_cwd (spec));
  if (cwd == NULL)
    cwd = g_get_current_dir ();
  if (cpus == 0)
    cpus = fiber_job_spec_get_cpus (spec);

  script = job_script (argv, worker_command);
  envp = job_environment (self, spec, export_all, extra);

  json_builder_begin_object (builder);
  if (api_minor < 40)
    add_string (builder, "script", script);
  json_builder_set_member_name (builder, "job");
  json_builder_begin_object (builder);
  if (api_minor >= 40)
    add_string (builder, "script", script);
  add_string (builder, "name", name != NULL && *name != '\0' ? name : "fiber-worker");
  add_string (builder, "current_working_directory", cwd);
  add_string (builder, "partition", partition);
  add_string (builder, "standard_output", standard_output);
  add_string (builder, "standard_error", standard_error);
  if (cpus > 0)
    {
      json_builder_set_member_name (builder, "cpus_per_task");
      json_builder_add_int_value (builder, cpus);
    }
  if (time_limit > 0)
    add_number (builder, api_minor, "time_limit", time_limit);
  if (memory > 0)
    add_number (builder, api_minor, "memory_per_node", (gint64) MIN (memory, G_MAXINT64));

  json_builder_set_member_name (builder, "environment");
  if (api_minor == 38)
    {
      json_builder_begin_object (builder);
      for (guint i = 0; envp[i] != NULL; i++)
        {
          const char *eq = strchr (envp[i], '=');
          g_autofree char *key = NULL;

          if (eq == NULL)
            continue;
          key = g_strndup (envp[i], eq - envp[i]);
          json_builder_set_member_name (builder, key);
          json_builder_add_string_value (builder, eq + 1);
        }
      json_builder_end_object (builder);
    }
  else
    {
      json_builder_begin_array (builder);
      for (guint i = 0; envp[i] != NULL; i++)
        json_builder_add_string_value (builder, envp[i]);
      json_builder_end_array (builder);
    }
  json_builder_end_object (builder);
  json_builder_end_object (builder);
  return json_builder_get_root (builder);
}

static FiberJob *
fiber_slurm_backend_create_job (FiberBackend  *backend,
                                FiberJobSpec  *spec,
                                GError       **error)
{
  FiberSlurmBackend *self = FIBER_SLURM_BACKEND (backend);
  g_autoptr(FiberRestClient) client = NULL;
  g_autoptr(FiberRestReply) reply = NULL;
  g_autoptr(JsonNode) body = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *path = NULL;
  g_autofree char *id = NULL;
  gint64 slurm_id = 0;
  guint api_minor = 0;

  client = ensure_ready (self, &api_minor, error);
  if (client == NULL)
    return NULL;
  body = submit_body (self, spec, api_minor, error);
  if (body == NULL)
    return NULL;

  path = g_strdup_printf ("/slurm/v0.0.%u/job/submit", api_minor);
  reply = _fiber_rest_client_call (client, "POST", path, body, error);
  if (reply == NULL)
    return NULL;
  root = check_reply (reply, "job submission", NULL, error);
  if (root == NULL)
    return NULL;
  if (!object_member_number (json_node_get_object (root), "job_id", &slurm_id) ||
      slurm_id <= 0)
    {
      gint64 number;
      g_autofree char *message = slurm_errors_message (root, &number);

      g_set_error (error, FIBER_ERROR, FIBER_ERROR_BACKEND,
                   "slurmrestd: job submission failed: %s",
                   message != NULL ? message : "the reply has no job id");
      return NULL;
    }

  id = g_strdup_printf ("%" G_GINT64_FORMAT, slurm_id);
  return _fiber_remote_core_add_job (&self->core, id, slurm_id, monitor_tick, self);
}

static gboolean
fiber_slurm_backend_refresh_job (FiberBackend  *backend,
                                 FiberJob      *job,
                                 GError       **error)
{
  FiberSlurmBackend *self = FIBER_SLURM_BACKEND (backend);
  g_autoptr(FiberRestClient) client = NULL;
  g_autoptr(FiberRestReply) reply = NULL;
  g_autofree char *path = NULL;
  FiberRemoteJob *data;
  guint api_minor = 0;

  if (fiber_job_has_ended (job))
    return TRUE;
  data = _fiber_remote_job_lookup (job, "Slurm", error);
  client = data != NULL ? ensure_ready (self, &api_minor, error) : NULL;
  if (client == NULL)
    return FALSE;
  path = job_path (api_minor, data->name);
  reply = _fiber_rest_client_call (client, "GET", path, NULL, error);
  if (reply == NULL)
    return FALSE;
  return apply_job_reply (self, job, reply, error);
}

static gboolean
fiber_slurm_backend_wait_job (FiberBackend  *backend,
                              FiberJob      *job,
                              int            timeout_msec,
                              GError       **error)
{
  return _fiber_remote_wait_job (job, timeout_msec, "Slurm job", error);
}

static gboolean
fiber_slurm_backend_terminate_job (FiberBackend  *backend,
                                   FiberJob      *job,
                                   gboolean       force,
                                   GError       **error)
{
  FiberSlurmBackend *self = FIBER_SLURM_BACKEND (backend);
  g_autoptr(FiberRestClient) client = NULL;
  g_autoptr(FiberRestReply) reply = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *path = NULL;
  g_autofree char *what = NULL;
  FiberRemoteJob *data;
  gboolean gone = FALSE;
  guint api_minor = 0;

  if (fiber_job_has_ended (job))
    return TRUE;
  data = _fiber_remote_job_lookup (job, "Slurm", error);
  client = data != NULL ? ensure_ready (self, &api_minor, error) : NULL;
  if (client == NULL)
    return FALSE;
  _fiber_remote_core_request_cancel (&self->core, data);

  /* Both are a cancel: slurmd sends the job SIGCONT and SIGTERM, then
   * SIGKILL after KillWait, and slurmctld records it as CANCELLED.  The
   * REST API has no quicker kill of a whole batch job. */
  path = job_path (api_minor, data->name);
  what = g_strdup_printf ("cancel of job %s", data->name);
  reply = _fiber_rest_client_call (client, "DELETE", path, NULL, error);
  if (reply == NULL)
    return FALSE;
  root = check_reply (reply, what, &gone, error);
  /* Gone already (ended and purged): the monitor records the end. */
  return root != NULL || gone;
}

static char *
default_listen_address (FiberSlurmBackend *self)
{
  char *result;

  if (self->core.url != NULL)
    {
      g_autoptr(GUri) uri = g_uri_parse (self->core.url, G_URI_FLAGS_NONE, NULL);
      const char *host = uri != NULL ? g_uri_get_host (uri) : NULL;
      g_autoptr(GInetAddress) address = host != NULL ? g_inet_address_new_from_string (host) : NULL;

      if (host != NULL && (g_ascii_strcasecmp (host, "localhost") == 0 ||
                           (address != NULL && g_inet_address_get_is_loopback (address))))
        return g_strdup ("127.0.0.1");
    }

  /* Jobs run on the cluster's nodes: offer this host's address. */
  result = _fiber_remote_host_address ();
  /* A host whose name resolves to no other address can only run the jobs
   * itself (a one-node cluster): the loopback interface it is.  ZeroMQ
   * binds to addresses, never to names. */
  return result != NULL ? result : g_strdup ("127.0.0.1");
}

static char *
fiber_slurm_backend_get_listen_address (FiberBackend  *backend,
                                        GError       **error)
{
  FiberSlurmBackend *self = FIBER_SLURM_BACKEND (backend);
  char *address = _fiber_remote_core_dup_listen_address (&self->core);

  return address != NULL ? address : default_listen_address (self);
}

static void
fiber_slurm_backend_iface_init (FiberBackendInterface *iface)
{
  iface->get_name = fiber_slurm_backend_get_name;
  iface->is_remote = fiber_slurm_backend_is_remote;
  iface->create_job = fiber_slurm_backend_create_job;
  iface->refresh_job = fiber_slurm_backend_refresh_job;
  iface->wait_job = fiber_slurm_backend_wait_job;
  iface->terminate_job = fiber_slurm_backend_terminate_job;
  iface->get_listen_address = fiber_slurm_backend_get_listen_address;
}

/* GObject */

static void
fiber_slurm_backend_finalize (GObject *object)
{
  FiberSlurmBackend *self = FIBER_SLURM_BACKEND (object);

  /* First, as the callbacks of the requests still in flight use @self. */
  _fiber_remote_core_clear (&self->core);

  g_free (self->socket_path);
  g_free (self->user);
  g_free (self->partition);
  g_free (self->standard_output);
  g_free (self->standard_error);
  g_free (self->api_version);

  G_OBJECT_CLASS (fiber_slurm_backend_parent_class)->finalize (object);
}

static void
fiber_slurm_backend_get_property (GObject    *object,
                                  guint       prop_id,
                                  GValue     *value,
                                  GParamSpec *pspec)
{
  FiberSlurmBackend *self = FIBER_SLURM_BACKEND (object);

  if (_fiber_remote_core_get_property (&self->core, prop_id, value))
    return;

  g_mutex_lock (&self->core.lock);
  switch (prop_id)
    {
    case PROP_SOCKET:
      g_value_set_string (value, self->socket_path);
      break;
    case PROP_USER:
      g_value_set_string (value, self->user);
      break;
    case PROP_PARTITION:
      g_value_set_string (value, self->partition);
      break;
    case PROP_CPUS_PER_TASK:
      g_value_set_uint (value, self->cpus_per_task);
      break;
    case PROP_STANDARD_OUTPUT:
      g_value_set_string (value, self->standard_output);
      break;
    case PROP_STANDARD_ERROR:
      g_value_set_string (value, self->standard_error);
      break;
    case PROP_API_VERSION:
      if (self->api_minor != 0)
        g_value_take_string (value, g_strdup_printf ("v0.0.%u", self->api_minor));
      else
        g_value_set_string (value, self->api_version);
      break;
    case PROP_EXPORT_ENVIRONMENT:
      g_value_set_boolean (value, self->export_environment);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
  g_mutex_unlock (&self->core.lock);
}

static void
fiber_slurm_backend_set_property (GObject      *object,
                                  guint         prop_id,
                                  const GValue *value,
                                  GParamSpec   *pspec)
{
  FiberSlurmBackend *self = FIBER_SLURM_BACKEND (object);

  if (_fiber_remote_core_set_property (&self->core, prop_id, value))
    return;

  g_mutex_lock (&self->core.lock);
  switch (prop_id)
    {
    case PROP_SOCKET:
      _fiber_remote_set_string (&self->socket_path, value);
      break;
    case PROP_USER:
      _fiber_remote_set_string (&self->user, value);
      break;
    case PROP_PARTITION:
      _fiber_remote_set_string (&self->partition, value);
      break;
    case PROP_CPUS_PER_TASK:
      self->cpus_per_task = g_value_get_uint (value);
      break;
    case PROP_STANDARD_OUTPUT:
      _fiber_remote_set_string (&self->standard_output, value);
      break;
    case PROP_STANDARD_ERROR:
      _fiber_remote_set_string (&self->standard_error, value);
      break;
    case PROP_API_VERSION:
      _fiber_remote_set_string (&self->api_version, value);
      break;
    case PROP_EXPORT_ENVIRONMENT:
      self->export_environment = g_value_get_boolean (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
  g_mutex_unlock (&self->core.lock);
}

static void
fiber_slurm_backend_class_init (FiberSlurmBackendClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;
  const GParamFlags construct = G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
                                G_PARAM_STATIC_STRINGS;

  object_class->finalize = fiber_slurm_backend_finalize;
  object_class->get_property = fiber_slurm_backend_get_property;
  object_class->set_property = fiber_slurm_backend_set_property;

  /* The properties every remote backend has, documented for this one. */

  /**
   * FiberSlurmBackend:url:
   *
   * The `http://` or `https://` URL of a slurmrestd started with
   * `rest_auth/jwt`, for example `http://127.0.0.1:6820`.  Exclusive with
   * [property@Fiber.SlurmBackend:socket].
   */

  /**
   * FiberSlurmBackend:token:
   *
   * The JSON Web Token sent as `X-SLURM-USER-TOKEN` (from `scontrol
   * token`).  When neither this nor [property@Fiber.SlurmBackend:token-file]
   * is set, a URL connection uses the `SLURM_JWT` environment variable.
   */

  /**
   * FiberSlurmBackend:token-file:
   *
   * A file holding the token; it is read again for every request, so a
   * token can be renewed while the backend runs.
   */

  /**
   * FiberSlurmBackend:request-timeout:
   *
   * How long, in milliseconds, a request to slurmrestd may take before it
   * fails with %FIBER_ERROR_BACKEND.
   */

  /**
   * FiberSlurmBackend:time-limit:
   *
   * The time limit of each job in minutes; 0 for the partition's default.
   */

  /**
   * FiberSlurmBackend:memory:
   *
   * The memory each job asks for, in megabytes; 0 for the default.
   */

  /**
   * FiberSlurmBackend:environment:
   *
   * Extra `NAME=value` variables for every job, above the caller's
   * environment and below the job spec's variables.
   */

  /**
   * FiberSlurmBackend:working-directory:
   *
   * The working directory of every job (a path on the compute nodes);
   * %NULL for the job spec's, or else the caller's current directory.
   */

  /**
   * FiberSlurmBackend:worker-command:
   *
   * A shell command that replaces the first word of each job's command
   * line in the job script, for nodes where the worker lives elsewhere or
   * runs through a wrapper (for example `apptainer exec img.sif
   * fiber-worker`); %NULL to run the spec's command line as it is.
   */

  /**
   * FiberSlurmBackend:listen-address:
   *
   * The IP address jobs reach the master at; %NULL for `127.0.0.1` when
   * slurmrestd is reached over the loopback interface, else the first
   * IPv4 address of this host's name that is not a loopback address
   * (`127.0.0.1` when there is none).
   */

  /**
   * FiberSlurmBackend:poll-interval:
   *
   * How often, in milliseconds, the monitor asks for the state of live
   * jobs (taken when the first job is submitted).
   */

  _fiber_remote_core_install_properties (properties, G_MAXINT32);

  /**
   * FiberSlurmBackend:socket:
   *
   * The path of the unix socket of a slurmrestd started with
   * `rest_auth/local` (it trusts the uid of its peer).  Exclusive with
   * [property@Fiber.SlurmBackend:url].
   */
  properties[PROP_SOCKET] =
    g_param_spec_string ("socket", NULL, NULL, NULL, construct);

  /**
   * FiberSlurmBackend:user:
   *
   * The user name sent as `X-SLURM-USER-NAME` with a token; %NULL for the
   * name of the current user.
   */
  properties[PROP_USER] =
    g_param_spec_string ("user", NULL, NULL, NULL, construct);

  /**
   * FiberSlurmBackend:partition:
   *
   * The partition jobs are submitted to; %NULL for the cluster's default.
   */
  properties[PROP_PARTITION] =
    g_param_spec_string ("partition", NULL, NULL, NULL, rw);

  /**
   * FiberSlurmBackend:cpus-per-task:
   *
   * The CPUs each job asks for; 0 for what the job spec says
   * ([method@Fiber.JobSpec.get_cpus]), or the cluster's default.
   */
  properties[PROP_CPUS_PER_TASK] =
    g_param_spec_uint ("cpus-per-task", NULL, NULL, 0, G_MAXUINT16, 0, rw);

  /**
   * FiberSlurmBackend:standard-output:
   *
   * Where Slurm writes the standard output of each job (a path on the
   * compute node, `%j` is the job id); `/dev/null` by default, %NULL or
   * empty for Slurm's default (`slurm-%j.out` in the working directory).
   */
  properties[PROP_STANDARD_OUTPUT] =
    g_param_spec_string ("standard-output", NULL, NULL, "/dev/null",
                         rw | G_PARAM_CONSTRUCT);

  /**
   * FiberSlurmBackend:standard-error:
   *
   * Where Slurm writes the standard error of each job; `/dev/null` by
   * default.
   */
  properties[PROP_STANDARD_ERROR] =
    g_param_spec_string ("standard-error", NULL, NULL, "/dev/null",
                         rw | G_PARAM_CONSTRUCT);

  /**
   * FiberSlurmBackend:api-version:
   *
   * The Slurm OpenAPI version to speak, `v0.0.38` to `v0.0.41`; %NULL to
   * take the newest one slurmrestd offers.  Reads back the version in use
   * once the backend has talked to slurmrestd.
   */
  properties[PROP_API_VERSION] =
    g_param_spec_string ("api-version", NULL, NULL, NULL, rw);

  /**
   * FiberSlurmBackend:export-environment:
   *
   * Whether jobs get the caller's environment (as `sbatch --export=ALL`
   * does, without the caller's own `SLURM_*` variables); if %FALSE they get
   * only `PATH`, `HOME`, `USER`, `LOGNAME`, `LANG`, `LC_ALL` and
   * `LD_LIBRARY_PATH` besides the configured and spec variables.
   */
  properties[PROP_EXPORT_ENVIRONMENT] =
    g_param_spec_boolean ("export-environment", NULL, NULL, TRUE,
                          rw | G_PARAM_CONSTRUCT);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
fiber_slurm_backend_init (FiberSlurmBackend *self)
{
  _fiber_remote_core_init (&self->core);
  self->export_environment = TRUE;
}

/**
 * fiber_slurm_backend_new:
 * @address: (nullable): where slurmrestd listens: an `http://` or
 *   `https://` URL, or the path of its unix socket (optionally prefixed
 *   with `unix:`)
 *
 * Creates a Slurm backend.  Further settings are properties; use
 * g_object_new() to give the construct-only ones (token, user, timeout).
 * Nothing is contacted until the first job is submitted.
 *
 * Returns: (transfer full): a new #FiberSlurmBackend
 */
FiberBackend *
fiber_slurm_backend_new (const char *address)
{
  if (address != NULL && (g_str_has_prefix (address, "http://") ||
                          g_str_has_prefix (address, "https://")))
    return g_object_new (FIBER_TYPE_SLURM_BACKEND, "url", address, NULL);
  if (address != NULL && g_str_has_prefix (address, "unix:"))
    address += strlen ("unix:");
  return g_object_new (FIBER_TYPE_SLURM_BACKEND, "socket", address, NULL);
}

/**
 * fiber_slurm_backend_dup_api_version:
 * @self: a #FiberSlurmBackend
 *
 * The OpenAPI version the backend speaks, once it has talked to
 * slurmrestd (or was told one).
 *
 * Returns: (transfer full) (nullable): the version, like `v0.0.38`, or
 *   %NULL before the first request
 */
char *
fiber_slurm_backend_dup_api_version (FiberSlurmBackend *self)
{
  char *version = NULL;

  g_return_val_if_fail (FIBER_IS_SLURM_BACKEND (self), NULL);

  g_mutex_lock (&self->core.lock);
  if (self->api_minor != 0)
    version = g_strdup_printf ("v0.0.%u", self->api_minor);
  g_mutex_unlock (&self->core.lock);
  return version;
}

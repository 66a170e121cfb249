/* fiber-kubernetes-backend.c — jobs as Kubernetes batch/v1 Jobs
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <signal.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "fiber-error.h"
#include "fiber-init-private.h"
#include "fiber-kubernetes-backend.h"
#include "fiber-remote-backend-private.h"

/**
 * FiberKubernetesBackend:
 *
 * A [iface@Fiber.Backend] whose jobs are Kubernetes `batch/v1` Jobs with
 * one pod each (`backoffLimit: 0`, `restartPolicy: Never`): a failed
 * worker is replaced by the pool, never restarted by Kubernetes behind its
 * back.
 *
 * The API server is either given by [property@Fiber.KubernetesBackend:url]
 * (for example a `kubectl proxy` at `http://127.0.0.1:8001`, which needs
 * no credentials, or an `https://` server with a bearer token), or, when
 * that is %NULL inside a pod, found from the `KUBERNETES_SERVICE_HOST` and
 * `KUBERNETES_SERVICE_PORT` variables with the pod's service-account token,
 * CA and namespace from `/var/run/secrets/kubernetes.io/serviceaccount/`.
 *
 * A Job's container runs the spec's command line in
 * [property@Fiber.KubernetesBackend:image] with the backend's extra
 * [property@Fiber.KubernetesBackend:environment] and the spec's variables
 * (the spec's win); the caller's own environment is not passed.  Every
 * Job and pod carries the labels `app.kubernetes.io/managed-by=fiber-glib`
 * and `fiber-glib/instance=<id of this backend>`.
 *
 * A monitor thread lists this backend's Jobs and pods (two requests for
 * all live jobs) about every
 * [property@Fiber.KubernetesBackend:poll-interval] milliseconds and
 * records the end of each job with the exit code of its container: the
 * exit status, or -N when the container was killed by signal N (reported
 * by the runtime as 128 + N).  Terminating deletes the Job with
 * `propagationPolicy=Background`, so that its pod goes too.
 *
 * Errors of the API server (a `Status` object) become %FIBER_ERROR_BACKEND
 * errors carrying its message; an unreachable server gives a
 * %FIBER_ERROR_BACKEND error within
 * [property@Fiber.KubernetesBackend:request-timeout].
 */

#define SERVICE_ACCOUNT_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define INSTANCE_LABEL "fiber-glib/instance"
#define MANAGED_BY_LABEL "app.kubernetes.io/managed-by"
#define CONTAINER_NAME "worker"

struct _FiberKubernetesBackend
{
  GObject          parent_instance;

  FiberRemoteCore  core;             /* the common settings, the live jobs */

  /* Construct-only: the connection. */
  char            *ca_file;

  /* Job settings, under @core.lock. */
  char            *namespace;
  char            *image;
  char            *image_pull_policy;
  char            *service_account;
  guint            ttl_after_finished;

  char            *instance;         /* label value, fixed */
  char            *resolved_namespace;
  gboolean         poll_in_flight;   /* client thread only */
  JsonNode        *polled_jobs;      /* client thread only: the JobList */
};

static void fiber_kubernetes_backend_iface_init (FiberBackendInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (FiberKubernetesBackend, fiber_kubernetes_backend, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (FIBER_TYPE_BACKEND,
                                                      fiber_kubernetes_backend_iface_init))

enum {
  PROP_CA_FILE = FIBER_REMOTE_N_PROPS,
  PROP_NAMESPACE,
  PROP_IMAGE,
  PROP_IMAGE_PULL_POLICY,
  PROP_SERVICE_ACCOUNT,
  PROP_TTL_AFTER_FINISHED,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static gint job_serial;

/* JSON helpers */

static gboolean
member_int (JsonObject *object,
            const char *name,
            gint64     *value)
{
  JsonNode *node = object != NULL ? json_object_get_member (object, name) : NULL;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_INT64)
    return FALSE;
  *value = json_node_get_int (node);
  return TRUE;
}

/* The message of the API server's Status object, with its reason. */
static char *
status_message (JsonNode *root,
                gpointer  user_data)
{
  JsonObject *object = root != NULL && JSON_NODE_HOLDS_OBJECT (root)
                       ? json_node_get_object (root) : NULL;
  const char *message = _fiber_json_member_string (object, "message");
  const char *reason = _fiber_json_member_string (object, "reason");

  if (message == NULL || *message == '\0')
    return g_strdup (reason);
  if (reason == NULL)
    return g_strdup (message);
  return g_strdup_printf ("%s (%s)", message, reason);
}

/* Returns the JSON object of a successful reply; otherwise NULL with
 * FIBER_ERROR_BACKEND carrying the message of the API server's Status.
 * With @gone, *@gone tells whether the reply is a 404 (the object does not
 * exist), which then sets no error. */
static JsonNode *
check_reply (FiberRestReply  *reply,
             const char      *what,
             gboolean        *gone,
             GError         **error)
{
  if (gone != NULL)
    {
      *gone = reply->status == 404;
      if (*gone)
        return NULL;
    }
  return _fiber_rest_reply_check (reply, "Kubernetes API", what,
                                  status_message, NULL, error);
}

/* Connection */

static char *
read_service_account_file (const char *name)
{
  g_autofree char *path = g_build_filename (SERVICE_ACCOUNT_DIR, name, NULL);
  g_autofree char *contents = NULL;

  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return NULL;
  return g_strdup (g_strstrip (contents));
}

static FiberRestClient *
dup_client (FiberKubernetesBackend  *self,
            char                   **namespace,
            GError                 **error)
{
  g_autoptr(FiberRestClient) client = NULL;
  g_autofree char *url = NULL;
  g_autofree char *token_file = NULL;
  g_autofree char *ca_file = NULL;
  g_autofree char *resolved_namespace = NULL;
  FiberRestClient *result;

  g_mutex_lock (&self->core.lock);
  if (self->core.client != NULL)
    {
      result = g_object_ref (self->core.client);
      *namespace = g_strdup (self->resolved_namespace);
      g_mutex_unlock (&self->core.lock);
      return result;
    }
  resolved_namespace = g_strdup (self->namespace);
  g_mutex_unlock (&self->core.lock);

  url = g_strdup (self->core.url);
  token_file = g_strdup (self->core.token_file);
  ca_file = g_strdup (self->ca_file);
  if (url == NULL)
    {
      /* In a pod: the service's variables and the service account. */
      const char *host = g_getenv ("KUBERNETES_SERVICE_HOST");
      const char *port = g_getenv ("KUBERNETES_SERVICE_PORT");
      g_autofree char *sa_token = g_build_filename (SERVICE_ACCOUNT_DIR, "token", NULL);
      g_autofree char *sa_ca = g_build_filename (SERVICE_ACCOUNT_DIR, "ca.crt", NULL);

      if (host == NULL || *host == '\0' || !g_file_test (sa_token, G_FILE_TEST_EXISTS))
        {
          g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                       "the Kubernetes backend needs the url of the API server "
                       "(for example a kubectl proxy at http://127.0.0.1:8001), or "
                       "to run in a pod with a service account");
          return NULL;
        }
      url = g_strdup_printf (strchr (host, ':') != NULL ? "https://[%s]:%s" : "https://%s:%s",
                             host, port != NULL && *port != '\0' ? port : "443");
      if (token_file == NULL && self->core.token == NULL)
        token_file = g_steal_pointer (&sa_token);
      if (ca_file == NULL && g_file_test (sa_ca, G_FILE_TEST_EXISTS))
        ca_file = g_steal_pointer (&sa_ca);
    }
  if (resolved_namespace == NULL)
    resolved_namespace = read_service_account_file ("namespace");
  if (resolved_namespace == NULL)
    resolved_namespace = g_strdup ("default");

  client = _fiber_rest_client_new ("the Kubernetes API server", url, NULL, ca_file,
                                   self->core.request_timeout, error);
  if (client == NULL)
    return NULL;
  if (token_file != NULL)
    _fiber_rest_client_add_header_file (client, "Authorization", "Bearer ", token_file);
  else if (self->core.token != NULL)
    {
      g_autofree char *value = g_strconcat ("Bearer ", self->core.token, NULL);
      _fiber_rest_client_add_header (client, "Authorization", value);
    }

  g_mutex_lock (&self->core.lock);
  if (self->core.client == NULL)
    {
      self->core.client = g_steal_pointer (&client);
      self->resolved_namespace = g_steal_pointer (&resolved_namespace);
    }
  result = g_object_ref (self->core.client);
  *namespace = g_strdup (self->resolved_namespace);
  g_mutex_unlock (&self->core.lock);
  return result;
}

/* Job states */

/* 128 + N from the container runtime means killed by signal N. */
static int
container_exit_code (JsonObject *terminated)
{
  gint64 code = 0, sig = 0;

  if (member_int (terminated, "signal", &sig) && sig > 0)
    return (int) -sig;
  if (!member_int (terminated, "exitCode", &code))
    return -SIGKILL;
  if (code > 128 && code <= 128 + 64)
    return (int) -(code - 128);
  return (int) CLAMP (code, 0, 255);
}

static JsonObject *
find_job_object (JsonNode   *list,
                 const char *name)
{
  JsonArray *items;

  if (list == NULL || !JSON_NODE_HOLDS_OBJECT (list))
    return NULL;
  items = _fiber_json_member_array (json_node_get_object (list), "items");
  for (guint i = 0; items != NULL && i < json_array_get_length (items); i++)
    {
      JsonNode *item = json_array_get_element (items, i);
      JsonObject *object = JSON_NODE_HOLDS_OBJECT (item) ? json_node_get_object (item) : NULL;
      JsonObject *metadata = _fiber_json_member_object (object, "metadata");

      if (g_strcmp0 (_fiber_json_member_string (metadata, "name"), name) == 0)
        return object;
    }
  return NULL;
}

/* The (last) pod of Job @name in a PodList. */
static JsonObject *
find_pod (JsonNode   *list,
          const char *name)
{
  JsonArray *items;
  JsonObject *found = NULL;

  if (list == NULL || !JSON_NODE_HOLDS_OBJECT (list))
    return NULL;
  items = _fiber_json_member_array (json_node_get_object (list), "items");
  for (guint i = 0; items != NULL && i < json_array_get_length (items); i++)
    {
      JsonNode *item = json_array_get_element (items, i);
      JsonObject *object = JSON_NODE_HOLDS_OBJECT (item) ? json_node_get_object (item) : NULL;
      JsonObject *metadata = _fiber_json_member_object (object, "metadata");
      JsonObject *labels = _fiber_json_member_object (metadata, "labels");

      if (g_strcmp0 (_fiber_json_member_string (labels, "job-name"), name) == 0 ||
          g_strcmp0 (_fiber_json_member_string (labels, "batch.kubernetes.io/job-name"), name) == 0)
        found = object;
    }
  return found;
}

static JsonObject *
pod_terminated_state (JsonObject *pod)
{
  JsonObject *pod_status = _fiber_json_member_object (pod, "status");
  JsonArray *statuses = _fiber_json_member_array (pod_status, "containerStatuses");

  for (guint i = 0; statuses != NULL && i < json_array_get_length (statuses); i++)
    {
      JsonNode *node = json_array_get_element (statuses, i);
      JsonObject *status = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
      const char *name = _fiber_json_member_string (status, "name");

      if (name == NULL || g_str_equal (name, CONTAINER_NAME) ||
          json_array_get_length (statuses) == 1)
        return _fiber_json_member_object (_fiber_json_member_object (status, "state"),
                                          "terminated");
    }
  return NULL;
}

static const char *
job_condition (JsonObject *job_object,
               const char *type)
{
  JsonObject *job_status = _fiber_json_member_object (job_object, "status");
  JsonArray *conditions = _fiber_json_member_array (job_status, "conditions");

  for (guint i = 0; conditions != NULL && i < json_array_get_length (conditions); i++)
    {
      JsonNode *node = json_array_get_element (conditions, i);
      JsonObject *condition = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;

      if (g_strcmp0 (_fiber_json_member_string (condition, "type"), type) == 0 &&
          g_strcmp0 (_fiber_json_member_string (condition, "status"), "True") == 0)
        {
          const char *reason = _fiber_json_member_string (condition, "reason");
          return reason != NULL ? reason : "";
        }
    }
  return NULL;
}

/* Records what the Job object (%NULL: it is gone) and its pod (%NULL: none)
 * say about @job. */
static void
evaluate_job (FiberKubernetesBackend *self,
              FiberJob               *job,
              JsonObject             *job_object,
              JsonObject             *pod)
{
  FiberRemoteJob *data = _fiber_job_get_backend_data (job);
  JsonObject *terminated = pod != NULL ? pod_terminated_state (pod) : NULL;
  JsonObject *pod_status = _fiber_json_member_object (pod, "status");
  const char *phase = _fiber_json_member_string (pod_status, "phase");
  const char *failed = job_condition (job_object, "Failed");
  gboolean cancelled = _fiber_remote_core_cancel_requested (&self->core, data);
  gboolean ended = TRUE;

  if (terminated != NULL || g_strcmp0 (phase, "Succeeded") == 0 ||
      g_strcmp0 (phase, "Failed") == 0)
    {
      int code = terminated != NULL ? container_exit_code (terminated)
                                    : g_strcmp0 (phase, "Succeeded") == 0 ? 0 : -SIGKILL;
      const char *pod_reason = _fiber_json_member_string (pod_status, "reason");

      if (code == 0 && g_strcmp0 (phase, "Failed") != 0)
        _fiber_job_set_ended (job, FIBER_JOB_STATE_COMPLETED, 0);
      else if (cancelled)
        _fiber_job_set_ended (job, FIBER_JOB_STATE_CANCELLED, code != 0 ? code : -SIGTERM);
      else if (g_strcmp0 (pod_reason, "Evicted") == 0)
        _fiber_job_set_ended (job, FIBER_JOB_STATE_LOST, code != 0 ? code : -SIGKILL);
      else
        _fiber_job_set_ended (job, FIBER_JOB_STATE_FAILED, code != 0 ? code : -SIGKILL);
    }
  else if (failed != NULL)
    {
      /* Failed without a pod to tell how (deadline, pod deleted). */
      if (cancelled)
        _fiber_job_set_ended (job, FIBER_JOB_STATE_CANCELLED, -SIGTERM);
      else
        _fiber_job_set_ended (job, FIBER_JOB_STATE_FAILED,
                              g_str_equal (failed, "DeadlineExceeded") ? -SIGTERM : -SIGKILL);
    }
  else if (job_condition (job_object, "Complete") != NULL)
    _fiber_job_set_ended (job, FIBER_JOB_STATE_COMPLETED, 0);
  else if (job_object == NULL && pod == NULL)
    {
      /* Deleted, with its pod. */
      if (cancelled)
        _fiber_job_set_ended (job, FIBER_JOB_STATE_CANCELLED, -SIGTERM);
      else
        _fiber_job_set_ended (job, FIBER_JOB_STATE_LOST, -SIGKILL);
    }
  else
    {
      ended = FALSE;
      _fiber_job_set_state (job, g_strcmp0 (phase, "Running") == 0
                                 ? FIBER_JOB_STATE_RUNNING : FIBER_JOB_STATE_PENDING);
    }

  if (ended)
    _fiber_remote_core_forget_job (&self->core, job);
}

static char *
jobs_path (const char *namespace,
           const char *name)
{
  g_autofree char *ns = _fiber_rest_escape (namespace);

  if (name == NULL)
    return g_strdup_printf ("/apis/batch/v1/namespaces/%s/jobs", ns);
  else
    {
      g_autofree char *escaped = _fiber_rest_escape (name);
      return g_strdup_printf ("/apis/batch/v1/namespaces/%s/jobs/%s", ns, escaped);
    }
}

static char *
list_path (const char *namespace,
           const char *kind,
           const char *selector)
{
  g_autofree char *ns = _fiber_rest_escape (namespace);
  g_autofree char *escaped = _fiber_rest_escape (selector);

  if (g_str_equal (kind, "pods"))
    return g_strdup_printf ("/api/v1/namespaces/%s/pods?labelSelector=%s", ns, escaped);
  return g_strdup_printf ("/apis/batch/v1/namespaces/%s/jobs?labelSelector=%s", ns, escaped);
}

/* The monitor, on the client thread: a JobList, then a PodList, of every
 * Job of this backend. */

static void
monitor_pods_done (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  FiberKubernetesBackend *self = user_data;
  g_autoptr(FiberRestReply) reply = NULL;
  g_autoptr(JsonNode) pods = NULL;
  g_autoptr(JsonNode) jobs_list = g_steal_pointer (&self->polled_jobs);
  g_autoptr(GPtrArray) jobs = NULL;
  g_autoptr(GError) error = NULL;

  self->poll_in_flight = FALSE;
  reply = _fiber_rest_client_call_finish (self->core.client, result, &error);
  if (reply != NULL)
    pods = check_reply (reply, "list of pods", NULL, &error);
  if (pods == NULL)
    {
      g_debug ("Kubernetes monitor: %s", error->message);
      return;
    }

  jobs = _fiber_remote_core_dup_live_jobs (&self->core);
  for (guint i = 0; i < jobs->len; i++)
    {
      FiberJob *job = g_ptr_array_index (jobs, i);
      FiberRemoteJob *data = _fiber_job_get_backend_data (job);

      evaluate_job (self, job, find_job_object (jobs_list, data->name),
                    find_pod (pods, data->name));
    }
}

static void
monitor_jobs_done (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  FiberKubernetesBackend *self = user_data;
  g_autoptr(FiberRestReply) reply = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *path = NULL;
  g_autofree char *selector = NULL;

  reply = _fiber_rest_client_call_finish (self->core.client, result, &error);
  if (reply != NULL)
    self->polled_jobs = check_reply (reply, "list of Jobs", NULL, &error);
  if (self->polled_jobs == NULL)
    {
      g_debug ("Kubernetes monitor: %s", error->message);
      self->poll_in_flight = FALSE;
      return;
    }

  selector = g_strdup_printf (INSTANCE_LABEL "=%s", self->instance);
  path = list_path (self->resolved_namespace, "pods", selector);
  _fiber_rest_client_call_async (self->core.client, "GET", path, NULL, monitor_pods_done, self);
}

static gboolean
monitor_tick (gpointer user_data)
{
  FiberKubernetesBackend *self = user_data;
  g_autofree char *path = NULL;
  g_autofree char *selector = NULL;
  guint n_live;

  if (self->poll_in_flight)
    return G_SOURCE_CONTINUE;
  g_mutex_lock (&self->core.lock);
  n_live = self->core.live->len;
  g_mutex_unlock (&self->core.lock);
  if (n_live == 0)
    return G_SOURCE_CONTINUE;

  self->poll_in_flight = TRUE;
  selector = g_strdup_printf (INSTANCE_LABEL "=%s", self->instance);
  path = list_path (self->resolved_namespace, "jobs", selector);
  _fiber_rest_client_call_async (self->core.client, "GET", path, NULL, monitor_jobs_done, self);
  return G_SOURCE_CONTINUE;
}

/* FiberBackend */

static const char *
fiber_kubernetes_backend_get_name (FiberBackend *backend)
{
  return "kubernetes";
}

static gboolean
fiber_kubernetes_backend_is_remote (FiberBackend *backend)
{
  return TRUE;
}

/* A DNS-1123 label prefix from the spec's name. */
static char *
job_name_prefix (const char *name)
{
  g_autoptr(GString) prefix = g_string_new (NULL);

  for (const char *p = name != NULL ? name : ""; *p != '\0' && prefix->len < 30; p++)
    {
      char c = g_ascii_tolower (*p);

      if (g_ascii_isalnum (c))
        g_string_append_c (prefix, c);
      else if (prefix->len > 0 && prefix->str[prefix->len - 1] != '-')
        g_string_append_c (prefix, '-');
    }
  while (prefix->len > 0 && prefix->str[prefix->len - 1] == '-')
    g_string_truncate (prefix, prefix->len - 1);
  if (prefix->len == 0)
    g_string_assign (prefix, "fiber-worker");
  return g_string_free (g_steal_pointer (&prefix), FALSE);
}

static void
add_labels (JsonBuilder *builder,
            const char  *instance)
{
  json_builder_set_member_name (builder, "labels");
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, MANAGED_BY_LABEL);
  json_builder_add_string_value (builder, "fiber-glib");
  json_builder_set_member_name (builder, INSTANCE_LABEL);
  json_builder_add_string_value (builder, instance);
  json_builder_end_object (builder);
}

static JsonNode *
job_body (FiberKubernetesBackend  *self,
          FiberJobSpec            *spec,
          const char              *name,
          gint                     serial,
          GError                 **error)
{
  g_autofree char *pid = g_strdup_printf ("%d", serial);
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autofree char *image = NULL;
  g_autofree char *pull_policy = NULL;
  g_autofree char *cwd = NULL;
  g_autofree char *worker_command = NULL;
  g_autofree char *service_account = NULL;
  g_auto(GStrv) extra = NULL;
  g_auto(GStrv) envp = NULL;
  g_auto(GStrv) prefix = NULL;
  const char * const *argv = _fiber_remote_spec_get_argv (spec, error);
  guint time_limit, ttl, cpus = fiber_job_spec_get_cpus (spec);
  guint64 memory;
  g_autoptr(GError) parse_error = NULL;

  if (argv == NULL)
    return NULL;

  g_mutex_lock (&self->core.lock);
  image = g_strdup (self->image);
  pull_policy = g_strdup (self->image_pull_policy);
  cwd = g_strdup (self->core.working_directory);
  worker_command = g_strdup (self->core.worker_command);
  service_account = g_strdup (self->service_account);
  extra = g_strdupv (self->core.environment);
  time_limit = self->core.time_limit;
  ttl = self->ttl_after_finished;
  memory = self->core.memory;
  g_mutex_unlock (&self->core.lock);

  if (image == NULL)
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                   "the Kubernetes backend needs the container image of the workers");
      return NULL;
    }
  if (worker_command != NULL &&
      !g_shell_parse_argv (worker_command, NULL, &prefix, &parse_error))
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                   "invalid worker command '%s': %s", worker_command,
                   parse_error->message);
      return NULL;
    }
  if (cwd == NULL && fiber_job_spec_get_cwd (spec) != NULL)
    cwd = g_strdup (fiber_job_spec_get_cwd (spec));

  envp = _fiber_remote_environ_add (g_new0 (char *, 1), extra);
  envp = _fiber_job_spec_apply_environment (spec, envp);
  /* The Fiber pid of the job, which the process in it reports as its own
   * (fiber_current_process()). */
  envp = g_environ_setenv (envp, FIBER_ENV_PID, pid, TRUE);

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "apiVersion");
  json_builder_add_string_value (builder, "batch/v1");
  json_builder_set_member_name (builder, "kind");
  json_builder_add_string_value (builder, "Job");
  json_builder_set_member_name (builder, "metadata");
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "name");
  json_builder_add_string_value (builder, name);
  add_labels (builder, self->instance);
  json_builder_end_object (builder);

  json_builder_set_member_name (builder, "spec");
  json_builder_begin_object (builder);
  /* One attempt: the pool replaces lost workers itself. */
  json_builder_set_member_name (builder, "backoffLimit");
  json_builder_add_int_value (builder, 0);
  if (time_limit > 0)
    {
      json_builder_set_member_name (builder, "activeDeadlineSeconds");
      json_builder_add_int_value (builder, (gint64) time_limit * 60);
    }
  if (ttl > 0)
    {
      json_builder_set_member_name (builder, "ttlSecondsAfterFinished");
      json_builder_add_int_value (builder, ttl);
    }
  json_builder_set_member_name (builder, "template");
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "metadata");
  json_builder_begin_object (builder);
  add_labels (builder, self->instance);
  json_builder_end_object (builder);
  json_builder_set_member_name (builder, "spec");
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "restartPolicy");
  json_builder_add_string_value (builder, "Never");
  if (service_account != NULL)
    {
      json_builder_set_member_name (builder, "serviceAccountName");
      json_builder_add_string_value (builder, service_account);
    }
  json_builder_set_member_name (builder, "containers");
  json_builder_begin_array (builder);
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "name");
  json_builder_add_string_value (builder, CONTAINER_NAME);
  json_builder_set_member_name (builder, "image");
  json_builder_add_string_value (builder, image);
  if (pull_policy != NULL)
    {
      json_builder_set_member_name (builder, "imagePullPolicy");
      json_builder_add_string_value (builder, pull_policy);
    }
  json_builder_set_member_name (builder, "command");
  json_builder_begin_array (builder);
  for (guint i = 0; prefix != NULL && prefix[i] != NULL; i++)
    json_builder_add_string_value (builder, prefix[i]);
  for (guint i = prefix != NULL ? 1 : 0; argv[i] != NULL; i++)
    json_builder_add_string_value (builder, argv[i]);
  json_builder_end_array (builder);
  if (cwd != NULL)
    {
      json_builder_set_member_name (builder, "workingDir");
      json_builder_add_string_value (builder, cwd);
    }
  json_builder_set_member_name (builder, "env");
  json_builder_begin_array (builder);
  for (guint i = 0; envp[i] != NULL; i++)
    {
      const char *eq = strchr (envp[i], '=');
      g_autofree char *key = NULL;

      if (eq == NULL)
        continue;
      key = g_strndup (envp[i], eq - envp[i]);
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "name");
      json_builder_add_string_value (builder, key);
      json_builder_set_member_name (builder, "value");
      json_builder_add_string_value (builder, eq + 1);
      json_builder_end_object (builder);
    }
  json_builder_end_array (builder);
  if (cpus > 0 || memory > 0)
    {
      json_builder_set_member_name (builder, "resources");
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "requests");
      json_builder_begin_object (builder);
      if (cpus > 0)
        {
          g_autofree char *text = g_strdup_printf ("%u", cpus);
          json_builder_set_member_name (builder, "cpu");
          json_builder_add_string_value (builder, text);
        }
      if (memory > 0)
        {
          g_autofree char *text = g_strdup_printf ("%" G_GUINT64_FORMAT "Mi", memory);
          json_builder_set_member_name (builder, "memory");
          json_builder_add_string_value (builder, text);
        }
      json_builder_end_object (builder);
      if (memory > 0)
        {
          g_autofree char *text = g_strdup_printf ("%" G_GUINT64_FORMAT "Mi", memory);
          json_builder_set_member_name (builder, "limits");
          json_builder_begin_object (builder);
          json_builder_set_member_name (builder, "memory");
          json_builder_add_string_value (builder, text);
          json_builder_end_object (builder);
        }
      json_builder_end_object (builder);
    }
  json_builder_end_object (builder);   /* container */
  json_builder_end_array (builder);    /* containers */
  json_builder_end_object (builder);   /* pod spec */
  json_builder_end_object (builder);   /* template */
  json_builder_end_object (builder);   /* job spec */
  json_builder_end_object (builder);
  return json_builder_get_root (builder);
}

static FiberJob *
fiber_kubernetes_backend_create_job (FiberBackend  *backend,
                                     FiberJobSpec  *spec,
                                     GError       **error)
{
  FiberKubernetesBackend *self = FIBER_KUBERNETES_BACKEND (backend);
  g_autoptr(FiberRestClient) client = NULL;
  g_autoptr(FiberRestReply) reply = NULL;
  g_autoptr(JsonNode) body = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *namespace = NULL;
  g_autofree char *prefix = NULL;
  g_autofree char *name = NULL;
  g_autofree char *path = NULL;
  g_autofree char *what = NULL;
  gint serial;

  client = dup_client (self, &namespace, error);
  if (client == NULL)
    return NULL;

  serial = g_atomic_int_add (&job_serial, 1) + 1;
  prefix = job_name_prefix (fiber_job_spec_get_name (spec));
  name = g_strdup_printf ("%s-%.8s-%d", prefix, self->instance, serial);
  body = job_body (self, spec, name, serial, error);
  if (body == NULL)
    return NULL;

  path = jobs_path (namespace, NULL);
  what = g_strdup_printf ("creation of Job %s", name);
  reply = _fiber_rest_client_call (client, "POST", path, body, error);
  if (reply == NULL)
    return NULL;
  root = check_reply (reply, what, NULL, error);
  if (root == NULL)
    return NULL;

  return _fiber_remote_core_add_job (&self->core, name, serial, monitor_tick, self);
}

static gboolean
fiber_kubernetes_backend_refresh_job (FiberBackend  *backend,
                                      FiberJob      *job,
                                      GError       **error)
{
  FiberKubernetesBackend *self = FIBER_KUBERNETES_BACKEND (backend);
  g_autoptr(FiberRestClient) client = NULL;
  g_autoptr(FiberRestReply) job_reply = NULL;
  g_autoptr(FiberRestReply) pods_reply = NULL;
  g_autoptr(JsonNode) job_root = NULL;
  g_autoptr(JsonNode) pods = NULL;
  g_autofree char *namespace = NULL;
  g_autofree char *path = NULL;
  g_autofree char *pods_path = NULL;
  g_autofree char *selector = NULL;
  g_autofree char *what = NULL;
  FiberRemoteJob *data;
  gboolean gone = FALSE;

  if (fiber_job_has_ended (job))
    return TRUE;
  data = _fiber_remote_job_lookup (job, "Kubernetes", error);
  client = data != NULL ? dup_client (self, &namespace, error) : NULL;
  if (client == NULL)
    return FALSE;

  path = jobs_path (namespace, data->name);
  what = g_strdup_printf ("GET Job %s", data->name);
  job_reply = _fiber_rest_client_call (client, "GET", path, NULL, error);
  if (job_reply == NULL)
    return FALSE;
  job_root = check_reply (job_reply, what, &gone, error);
  if (job_root == NULL && !gone)
    return FALSE;

  selector = g_strdup_printf ("job-name=%s", data->name);
  pods_path = list_path (namespace, "pods", selector);
  pods_reply = _fiber_rest_client_call (client, "GET", pods_path, NULL, error);
  if (pods_reply == NULL)
    return FALSE;
  pods = check_reply (pods_reply, "list of pods", NULL, error);
  if (pods == NULL)
    return FALSE;

  evaluate_job (self, job, job_root != NULL ? json_node_get_object (job_root) : NULL,
                find_pod (pods, data->name));
  return TRUE;
}

static gboolean
fiber_kubernetes_backend_wait_job (FiberBackend  *backend,
                                   FiberJob      *job,
                                   int            timeout_msec,
                                   GError       **error)
{
  return _fiber_remote_wait_job (job, timeout_msec, "Kubernetes Job", error);
}

static gboolean
fiber_kubernetes_backend_terminate_job (FiberBackend  *backend,
                                        FiberJob      *job,
                                        gboolean       force,
                                        GError       **error)
{
  FiberKubernetesBackend *self = FIBER_KUBERNETES_BACKEND (backend);
  g_autoptr(FiberRestClient) client = NULL;
  g_autoptr(FiberRestReply) reply = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *namespace = NULL;
  g_autofree char *base = NULL;
  g_autofree char *path = NULL;
  g_autofree char *what = NULL;
  FiberRemoteJob *data;
  gboolean gone = FALSE;

  if (fiber_job_has_ended (job))
    return TRUE;
  data = _fiber_remote_job_lookup (job, "Kubernetes", error);
  client = data != NULL ? dup_client (self, &namespace, error) : NULL;
  if (client == NULL)
    return FALSE;
  _fiber_remote_core_request_cancel (&self->core, data);

  /* Background: the Job goes now, its pod is deleted by the garbage
   * collector (SIGTERM, then SIGKILL after the grace period; force makes
   * that period 0). */
  base = jobs_path (namespace, data->name);
  path = g_strconcat (base, "?propagationPolicy=Background",
                      force ? "&gracePeriodSeconds=0" : "", NULL);
  what = g_strdup_printf ("deletion of Job %s", data->name);
  reply = _fiber_rest_client_call (client, "DELETE", path, NULL, error);
  if (reply == NULL)
    return FALSE;
  root = check_reply (reply, what, &gone, error);
  return root != NULL || gone;
}

static char *
fiber_kubernetes_backend_get_listen_address (FiberBackend  *backend,
                                             GError       **error)
{
  FiberKubernetesBackend *self = FIBER_KUBERNETES_BACKEND (backend);
  const char *pod_ip = g_getenv ("POD_IP");
  char *address = _fiber_remote_core_dup_listen_address (&self->core);

  if (address != NULL)
    return address;
  if (pod_ip != NULL && *pod_ip != '\0')
    return g_strdup (pod_ip);

  /* In a pod, the host name resolves to the pod's IP. */
  address = _fiber_remote_host_address ();
  return address != NULL ? address : g_strdup (g_get_host_name ());
}

static void
fiber_kubernetes_backend_iface_init (FiberBackendInterface *iface)
{
  iface->get_name = fiber_kubernetes_backend_get_name;
  iface->is_remote = fiber_kubernetes_backend_is_remote;
  iface->create_job = fiber_kubernetes_backend_create_job;
  iface->refresh_job = fiber_kubernetes_backend_refresh_job;
  iface->wait_job = fiber_kubernetes_backend_wait_job;
  iface->terminate_job = fiber_kubernetes_backend_terminate_job;
  iface->get_listen_address = fiber_kubernetes_backend_get_listen_address;
}

/* GObject */

static void
fiber_kubernetes_backend_finalize (GObject *object)
{
  FiberKubernetesBackend *self = FIBER_KUBERNETES_BACKEND (object);

  /* First, as the callbacks of the requests still in flight use @self. */
  _fiber_remote_core_clear (&self->core);
  g_clear_pointer (&self->polled_jobs, json_node_unref);

  g_free (self->ca_file);
  g_free (self->namespace);
  g_free (self->image);
  g_free (self->image_pull_policy);
  g_free (self->service_account);
  g_free (self->instance);
  g_free (self->resolved_namespace);

  G_OBJECT_CLASS (fiber_kubernetes_backend_parent_class)->finalize (object);
}

static void
fiber_kubernetes_backend_get_property (GObject    *object,
                                       guint       prop_id,
                                       GValue     *value,
                                       GParamSpec *pspec)
{
  FiberKubernetesBackend *self = FIBER_KUBERNETES_BACKEND (object);

  if (_fiber_remote_core_get_property (&self->core, prop_id, value))
    return;

  g_mutex_lock (&self->core.lock);
  switch (prop_id)
    {
    case PROP_CA_FILE:
      g_value_set_string (value, self->ca_file);
      break;
    case PROP_NAMESPACE:
      g_value_set_string (value, self->resolved_namespace != NULL
                                 ? self->resolved_namespace : self->namespace);
      break;
    case PROP_IMAGE:
      g_value_set_string (value, self->image);
      break;
    case PROP_IMAGE_PULL_POLICY:
      g_value_set_string (value, self->image_pull_policy);
      break;
    case PROP_SERVICE_ACCOUNT:
      g_value_set_string (value, self->service_account);
      break;
    case PROP_TTL_AFTER_FINISHED:
      g_value_set_uint (value, self->ttl_after_finished);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
  g_mutex_unlock (&self->core.lock);
}

static void
fiber_kubernetes_backend_set_property (GObject      *object,
                                       guint         prop_id,
                                       const GValue *value,
                                       GParamSpec   *pspec)
{
  FiberKubernetesBackend *self = FIBER_KUBERNETES_BACKEND (object);

  if (_fiber_remote_core_set_property (&self->core, prop_id, value))
    return;

  g_mutex_lock (&self->core.lock);
  switch (prop_id)
    {
    case PROP_CA_FILE:
      _fiber_remote_set_string (&self->ca_file, value);
      break;
    case PROP_NAMESPACE:
      _fiber_remote_set_string (&self->namespace, value);
      break;
    case PROP_IMAGE:
      _fiber_remote_set_string (&self->image, value);
      break;
    case PROP_IMAGE_PULL_POLICY:
      _fiber_remote_set_string (&self->image_pull_policy, value);
      break;
    case PROP_SERVICE_ACCOUNT:
      _fiber_remote_set_string (&self->service_account, value);
      break;
    case PROP_TTL_AFTER_FINISHED:
      self->ttl_after_finished = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
  g_mutex_unlock (&self->core.lock);
}

static void
fiber_kubernetes_backend_class_init (FiberKubernetesBackendClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;
  const GParamFlags construct = G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
                                G_PARAM_STATIC_STRINGS;

  object_class->finalize = fiber_kubernetes_backend_finalize;
  object_class->get_property = fiber_kubernetes_backend_get_property;
  object_class->set_property = fiber_kubernetes_backend_set_property;

  /* The properties every remote backend has, documented for this one. */

  /**
   * FiberKubernetesBackend:url:
   *
   * The URL of the API server: `https://…`, or the `http://` URL of a
   * `kubectl proxy`.  %NULL inside a pod to use the in-cluster service
   * and service account.
   */

  /**
   * FiberKubernetesBackend:token:
   *
   * A bearer token for the API server.
   */

  /**
   * FiberKubernetesBackend:token-file:
   *
   * A file holding the bearer token, read again for every request (the
   * kubelet rotates service-account tokens).
   */

  /**
   * FiberKubernetesBackend:request-timeout:
   *
   * How long, in milliseconds, a request to the API server may take before
   * it fails with %FIBER_ERROR_BACKEND.
   */

  /**
   * FiberKubernetesBackend:environment:
   *
   * Extra `NAME=value` variables for every worker container, below the job
   * spec's variables.
   */

  /**
   * FiberKubernetesBackend:working-directory:
   *
   * The working directory in the container; %NULL for the spec's, else
   * the image's.
   */

  /**
   * FiberKubernetesBackend:worker-command:
   *
   * A command line (shell syntax, split into words) that replaces the first
   * word of each job's command line, for an image where the worker lives
   * at another path; %NULL to run the spec's command line as it is.
   */

  /**
   * FiberKubernetesBackend:listen-address:
   *
   * The address worker pods reach the master at; %NULL for the `POD_IP`
   * variable if set, else the first IPv4 address of this host's name.
   */

  /**
   * FiberKubernetesBackend:time-limit:
   *
   * The time limit of each Job in minutes (`activeDeadlineSeconds`); 0 for
   * none.
   */

  /**
   * FiberKubernetesBackend:memory:
   *
   * The memory request and limit of each worker container in mebibytes;
   * 0 for none.
   */

  /**
   * FiberKubernetesBackend:poll-interval:
   *
   * How often, in milliseconds, the monitor lists the Jobs and pods of the
   * backend (taken when the first job is created).
   */

  _fiber_remote_core_install_properties (properties, G_MAXINT32 / 60);

  /**
   * FiberKubernetesBackend:ca-file:
   *
   * A PEM file with the CA that signed the API server's certificate; the
   * service account's `ca.crt` in a pod, else the system's CAs.
   */
  properties[PROP_CA_FILE] =
    g_param_spec_string ("ca-file", NULL, NULL, NULL, construct);

  /**
   * FiberKubernetesBackend:namespace:
   *
   * The namespace of the Jobs; %NULL for the pod's own namespace in a
   * cluster, else `default`.  Taken when the backend first talks to the
   * API server.
   */
  properties[PROP_NAMESPACE] =
    g_param_spec_string ("namespace", NULL, NULL, NULL, rw);

  /**
   * FiberKubernetesBackend:image:
   *
   * The container image the workers run in; it must provide the worker
   * command.  Required.
   */
  properties[PROP_IMAGE] =
    g_param_spec_string ("image", NULL, NULL, NULL, rw);

  /**
   * FiberKubernetesBackend:image-pull-policy:
   *
   * `Always`, `IfNotPresent` or `Never`; %NULL for the cluster's default.
   */
  properties[PROP_IMAGE_PULL_POLICY] =
    g_param_spec_string ("image-pull-policy", NULL, NULL, NULL, rw);

  /**
   * FiberKubernetesBackend:service-account:
   *
   * The service account the worker pods run as; %NULL for the namespace's
   * default.
   */
  properties[PROP_SERVICE_ACCOUNT] =
    g_param_spec_string ("service-account", NULL, NULL, NULL, rw);

  /**
   * FiberKubernetesBackend:ttl-after-finished:
   *
   * Seconds after which Kubernetes deletes a finished Job
   * (`ttlSecondsAfterFinished`); 0 to keep finished Jobs.
   */
  properties[PROP_TTL_AFTER_FINISHED] =
    g_param_spec_uint ("ttl-after-finished", NULL, NULL, 0, G_MAXINT32, 600,
                       rw | G_PARAM_CONSTRUCT);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
fiber_kubernetes_backend_init (FiberKubernetesBackend *self)
{
  _fiber_remote_core_init (&self->core);
  self->ttl_after_finished = 600;
  self->instance = g_strdup_printf ("%08x%08x", g_random_int (), g_random_int ());
}

/**
 * fiber_kubernetes_backend_new:
 * @url: (nullable): the URL of the API server, or %NULL inside a pod
 * @image: (nullable): the container image of the workers
 *
 * Creates a Kubernetes backend.  Further settings are properties; use
 * g_object_new() for the construct-only ones (token, CA, timeout).
 * Nothing is contacted until the first job is created.
 *
 * Returns: (transfer full): a new #FiberKubernetesBackend
 */
FiberBackend *
fiber_kubernetes_backend_new (const char *url,
                              const char *image)
{
  return g_object_new (FIBER_TYPE_KUBERNETES_BACKEND, "url", url, "image", image, NULL);
}

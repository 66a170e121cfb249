/* test-kubernetes-backend.c — protocol test of FiberKubernetesBackend
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * No Kubernetes API server can be installed on the test machines, so this
 * is a PROTOCOL TEST: the backend talks to a SoupServer on 127.0.0.1 in
 * this program that implements the documented subset of the API the
 * backend uses, the way a `kubectl proxy` would serve it:
 *
 *   POST   /apis/batch/v1/namespaces/{ns}/jobs                 create a Job
 *   GET    /apis/batch/v1/namespaces/{ns}/jobs/{name}          read a Job
 *   GET    /apis/batch/v1/namespaces/{ns}/jobs?labelSelector=  list Jobs
 *   DELETE /apis/batch/v1/namespaces/{ns}/jobs/{name}?propagationPolicy=
 *   GET    /api/v1/namespaces/{ns}/pods?labelSelector=          list pods
 *
 * with `Status` objects for errors (401, 403, 404, 409, 422), bearer-token
 * authentication, the `job-name` / `controller-uid` pod labels, Job
 * conditions (Complete, Failed/BackoffLimitExceeded) and container states
 * (running, terminated with exitCode = status or 128 + signal).  A Job's
 * pod is its container command run as a local process (GSubprocess) with
 * the container's env and workingDir.  Deleting a Job with
 * `propagationPolicy=Background` (or Foreground) terminates its pod
 * (SIGTERM, or SIGKILL with `gracePeriodSeconds=0`) and removes the pod
 * when it has exited; without it the pod is orphaned and keeps running,
 * as the real API does for batch/v1 Jobs.
 */

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include <fiber.h>

#include "fiber-test-util.h"
#include "remote-test-util.h"

#define JOB_TIMEOUT_MSEC 30000
#define NAMESPACE "fiber-test"
#define IMAGE "registry.invalid/fiber-worker:test"

/* The fake API server */

typedef struct
{
  char       *name;
  char       *uid;
  JsonNode   *manifest;       /* as posted, with metadata filled in */
  int         outcome;        /* 0 active, 1 succeeded, 2 failed */
} FakeJob;

typedef struct
{
  char        *name;
  char        *job_name;
  JsonNode    *labels;
  GSubprocess *process;
  gboolean     started;
  gboolean     terminated;
  int          exit_code;     /* container convention: status or 128 + signal */
  char        *reason;
  gboolean     deleting;
} FakePod;

typedef struct
{
  GMutex        lock;
  GMainContext *context;
  GMainLoop    *loop;
  GThread      *thread;
  SoupServer   *server;
  char         *url;
  GCond         cond;
  gboolean      ready;

  /* Settings, before requests. */
  char         *required_token;
  gboolean      forbid_create;
  gboolean      hang;

  /* State, under @lock. */
  GHashTable   *jobs;         /* name → FakeJob */
  GPtrArray    *pods;         /* FakePod */
  GPtrArray    *requests;     /* "METHOD path[?query]" */
  GPtrArray    *paused;       /* SoupServerMessage, with hang */
} FakeApi;


/* json-glib 1.6 has no _with_default getters for objects and arrays. */
static JsonObject *
object_member_or_null (JsonObject *object,
                       const char *name,
                       gpointer    unused)
{
  JsonNode *node = json_object_get_member (object, name);

  return node != NULL && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

static JsonArray *
array_member_or_null (JsonObject *object,
                      const char *name,
                      gpointer    unused)
{
  JsonNode *node = json_object_get_member (object, name);

  return node != NULL && JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;
}

static void
fake_job_free (gpointer data)
{
  FakeJob *job = data;

  g_free (job->name);
  g_free (job->uid);
  json_node_unref (job->manifest);
  g_free (job);
}

static void
fake_pod_free (gpointer data)
{
  FakePod *pod = data;

  g_free (pod->name);
  g_free (pod->job_name);
  json_node_unref (pod->labels);
  g_clear_object (&pod->process);
  g_free (pod->reason);
  g_free (pod);
}

static void
reply_json (SoupServerMessage *msg,
            guint              status,
            JsonNode          *node)
{
  g_autofree char *text = json_to_string (node, FALSE);

  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY,
                                    text, strlen (text));
}

static void
reply_status (SoupServerMessage *msg,
              guint              code,
              const char        *reason,
              const char        *message)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) node = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "kind");
  json_builder_add_string_value (builder, "Status");
  json_builder_set_member_name (builder, "apiVersion");
  json_builder_add_string_value (builder, "v1");
  json_builder_set_member_name (builder, "metadata");
  json_builder_begin_object (builder);
  json_builder_end_object (builder);
  json_builder_set_member_name (builder, "status");
  json_builder_add_string_value (builder, code < 300 ? "Success" : "Failure");
  if (message != NULL)
    {
      json_builder_set_member_name (builder, "message");
      json_builder_add_string_value (builder, message);
    }
  if (reason != NULL)
    {
      json_builder_set_member_name (builder, "reason");
      json_builder_add_string_value (builder, reason);
    }
  json_builder_set_member_name (builder, "code");
  json_builder_add_int_value (builder, code);
  json_builder_end_object (builder);
  node = json_builder_get_root (builder);
  reply_json (msg, code, node);
}

static gboolean
labels_match (JsonNode   *labels,
              const char *selector)
{
  g_auto(GStrv) terms = NULL;
  JsonObject *object;

  if (selector == NULL || *selector == '\0')
    return TRUE;
  if (labels == NULL || !JSON_NODE_HOLDS_OBJECT (labels))
    return FALSE;
  object = json_node_get_object (labels);
  terms = g_strsplit (selector, ",", -1);
  for (guint i = 0; terms[i] != NULL; i++)
    {
      g_auto(GStrv) kv = g_strsplit (terms[i], "=", 2);
      const char *value;

      if (kv[0] == NULL || kv[1] == NULL)
        return FALSE;
      /* "k==v" is "k=v" too. */
      value = kv[1][0] == '=' ? kv[1] + 1 : kv[1];
      if (!json_object_has_member (object, kv[0]) ||
          g_strcmp0 (json_object_get_string_member (object, kv[0]), value) != 0)
        return FALSE;
    }
  return TRUE;
}

static JsonNode *
job_to_json (FakeJob *job)
{
  JsonNode *node = json_node_copy (job->manifest);
  JsonObject *object = json_node_get_object (node);
  JsonObject *status = json_object_new ();

  if (job->outcome == 0)
    json_object_set_int_member (status, "active", 1);
  else
    {
      JsonArray *conditions = json_array_new ();
      JsonObject *condition = json_object_new ();

      json_object_set_int_member (status, job->outcome == 1 ? "succeeded" : "failed", 1);
      json_object_set_string_member (condition, "type", job->outcome == 1 ? "Complete" : "Failed");
      json_object_set_string_member (condition, "status", "True");
      if (job->outcome == 2)
        {
          json_object_set_string_member (condition, "reason", "BackoffLimitExceeded");
          json_object_set_string_member (condition, "message",
                                         "Job has reached the specified backoff limit");
        }
      json_array_add_object_element (conditions, condition);
      json_object_set_array_member (status, "conditions", conditions);
    }
  json_object_set_object_member (object, "status", status);
  return node;
}

static JsonNode *
pod_to_json (FakePod *pod)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "metadata");
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "name");
  json_builder_add_string_value (builder, pod->name);
  json_builder_set_member_name (builder, "namespace");
  json_builder_add_string_value (builder, NAMESPACE);
  json_builder_set_member_name (builder, "labels");
  json_builder_add_value (builder, json_node_copy (pod->labels));
  if (pod->deleting)
    {
      json_builder_set_member_name (builder, "deletionTimestamp");
      json_builder_add_string_value (builder, "2024-01-01T00:00:00Z");
    }
  json_builder_end_object (builder);
  json_builder_set_member_name (builder, "status");
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "phase");
  json_builder_add_string_value (builder,
                                 !pod->terminated ? (pod->started ? "Running" : "Pending")
                                 : pod->exit_code == 0 ? "Succeeded" : "Failed");
  json_builder_set_member_name (builder, "containerStatuses");
  json_builder_begin_array (builder);
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "name");
  json_builder_add_string_value (builder, "worker");
  json_builder_set_member_name (builder, "state");
  json_builder_begin_object (builder);
  if (pod->terminated)
    {
      json_builder_set_member_name (builder, "terminated");
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "exitCode");
      json_builder_add_int_value (builder, pod->exit_code);
      json_builder_set_member_name (builder, "reason");
      json_builder_add_string_value (builder, pod->reason);
      json_builder_end_object (builder);
    }
  else if (pod->started)
    {
      json_builder_set_member_name (builder, "running");
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "startedAt");
      json_builder_add_string_value (builder, "2024-01-01T00:00:00Z");
      json_builder_end_object (builder);
    }
  json_builder_end_object (builder);
  json_builder_end_object (builder);
  json_builder_end_array (builder);
  json_builder_end_object (builder);
  json_builder_end_object (builder);
  return json_builder_get_root (builder);
}

static void
pod_exited (GObject      *source,
            GAsyncResult *result,
            gpointer      data)
{
  FakeApi *api = data;
  GSubprocess *process = G_SUBPROCESS (source);
  FakePod *pod = NULL;

  g_subprocess_wait_finish (process, result, NULL);

  g_mutex_lock (&api->lock);
  for (guint i = 0; i < api->pods->len && pod == NULL; i++)
    if (((FakePod *) g_ptr_array_index (api->pods, i))->process == process)
      pod = g_ptr_array_index (api->pods, i);
  if (pod != NULL)
    {
      FakeJob *job = g_hash_table_lookup (api->jobs, pod->job_name);

      pod->terminated = TRUE;
      if (g_subprocess_get_if_signaled (process))
        pod->exit_code = 128 + g_subprocess_get_term_sig (process);
      else
        pod->exit_code = g_subprocess_get_exit_status (process);
      pod->reason = g_strdup (pod->exit_code == 0 ? "Completed" : "Error");
      if (job != NULL)
        job->outcome = pod->exit_code == 0 ? 1 : 2;
      /* A deleted pod goes away once its container has stopped. */
      if (pod->deleting)
        g_ptr_array_remove (api->pods, pod);
    }
  g_mutex_unlock (&api->lock);
}

static gboolean
valid_dns_label (const char *name)
{
  gsize len = name != NULL ? strlen (name) : 0;

  if (len == 0 || len > 63 || !g_ascii_isalnum (name[0]) || !g_ascii_isalnum (name[len - 1]))
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!(g_ascii_islower (name[i]) || g_ascii_isdigit (name[i]) || name[i] == '-'))
      return FALSE;
  return TRUE;
}

/* POST …/jobs, lock held. */
static void
create_job (FakeApi           *api,
            SoupServerMessage *msg)
{
  SoupMessageBody *request = soup_server_message_get_request_body (msg);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *message = NULL;
  JsonObject *root, *metadata, *spec, *template, *pod_spec, *container;
  JsonArray *containers, *command, *env;
  JsonNode *labels;
  const char *name, *restart, *image, *cwd;
  FakeJob *job;
  FakePod *pod;

  if (api->forbid_create)
    {
      reply_status (msg, 403, "Forbidden",
                    "jobs.batch is forbidden: User \"system:serviceaccount:" NAMESPACE
                    ":default\" cannot create resource \"jobs\" in API group \"batch\" "
                    "in the namespace \"" NAMESPACE "\"");
      return;
    }
  if (!json_parser_load_from_data (parser, request->data, request->length, &error) ||
      !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      reply_status (msg, 400, "BadRequest", "the body is not a JSON object");
      return;
    }
  root = json_node_get_object (json_parser_get_root (parser));
  metadata = object_member_or_null (root, "metadata", NULL);
  spec = object_member_or_null (root, "spec", NULL);
  template = spec != NULL ? object_member_or_null (spec, "template", NULL) : NULL;
  pod_spec = template != NULL ? object_member_or_null (template, "spec", NULL) : NULL;
  containers = pod_spec != NULL ? array_member_or_null (pod_spec, "containers", NULL) : NULL;
  container = containers != NULL && json_array_get_length (containers) > 0
              ? json_array_get_object_element (containers, 0) : NULL;
  name = metadata != NULL ? json_object_get_string_member_with_default (metadata, "name", NULL) : NULL;

  if (g_strcmp0 (json_object_get_string_member_with_default (root, "kind", NULL), "Job") != 0 ||
      g_strcmp0 (json_object_get_string_member_with_default (root, "apiVersion", NULL), "batch/v1") != 0)
    {
      reply_status (msg, 400, "BadRequest", "expected a batch/v1 Job");
      return;
    }
  if (!valid_dns_label (name))
    {
      message = g_strdup_printf ("Job.batch \"%s\" is invalid: metadata.name: Invalid value",
                                 name != NULL ? name : "");
      reply_status (msg, 422, "Invalid", message);
      return;
    }
  restart = pod_spec != NULL ? json_object_get_string_member_with_default (pod_spec, "restartPolicy", NULL) : NULL;
  if (g_strcmp0 (restart, "Never") != 0 && g_strcmp0 (restart, "OnFailure") != 0)
    {
      message = g_strdup_printf ("Job.batch \"%s\" is invalid: spec.template.spec.restartPolicy: "
                                 "Required value: valid values: \"OnFailure\", \"Never\"", name);
      reply_status (msg, 422, "Invalid", message);
      return;
    }
  image = container != NULL ? json_object_get_string_member_with_default (container, "image", NULL) : NULL;
  command = container != NULL ? array_member_or_null (container, "command", NULL) : NULL;
  if (image == NULL || *image == '\0' || command == NULL || json_array_get_length (command) == 0)
    {
      message = g_strdup_printf ("Job.batch \"%s\" is invalid: spec.template.spec.containers[0]: "
                                 "image and command are required", name);
      reply_status (msg, 422, "Invalid", message);
      return;
    }
  if (g_hash_table_contains (api->jobs, name))
    {
      message = g_strdup_printf ("jobs.batch \"%s\" already exists", name);
      reply_status (msg, 409, "AlreadyExists", message);
      return;
    }

  job = g_new0 (FakeJob, 1);
  job->name = g_strdup (name);
  job->uid = g_uuid_string_random ();
  job->manifest = json_node_copy (json_parser_get_root (parser));
  json_object_set_string_member (json_object_get_object_member (json_node_get_object (job->manifest),
                                                               "metadata"),
                                 "uid", job->uid);
  g_hash_table_insert (api->jobs, job->name, job);

  /* The pod: the container command as a local process, with the image's
   * environment (this program's) below the container's env. */
  pod = g_new0 (FakePod, 1);
  pod->job_name = g_strdup (name);
  pod->name = g_strdup_printf ("%s-%05x", name, g_random_int_range (0, 0xfffff));
  labels = template != NULL && json_object_has_member (template, "metadata")
           ? json_object_get_member (json_object_get_object_member (template, "metadata"), "labels")
           : NULL;
  pod->labels = labels != NULL ? json_node_copy (labels) : json_node_init_object (json_node_alloc (), json_object_new ());
  json_object_set_string_member (json_node_get_object (pod->labels), "job-name", name);
  json_object_set_string_member (json_node_get_object (pod->labels), "batch.kubernetes.io/job-name", name);
  json_object_set_string_member (json_node_get_object (pod->labels), "controller-uid", job->uid);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
  env = array_member_or_null (container, "env", NULL);
  for (guint i = 0; env != NULL && i < json_array_get_length (env); i++)
    {
      JsonObject *entry = json_array_get_object_element (env, i);

      g_subprocess_launcher_setenv (launcher,
                                    json_object_get_string_member (entry, "name"),
                                    json_object_get_string_member_with_default (entry, "value", ""),
                                    TRUE);
    }
  cwd = json_object_get_string_member_with_default (container, "workingDir", NULL);
  if (cwd != NULL)
    g_subprocess_launcher_set_cwd (launcher, cwd);
  for (guint i = 0; i < json_array_get_length (command); i++)
    g_ptr_array_add (argv, (gpointer) json_array_get_string_element (command, i));
  g_ptr_array_add (argv, NULL);
  pod->process = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
  if (pod->process == NULL)
    {
      pod->terminated = TRUE;
      pod->exit_code = 128;
      pod->reason = g_strdup ("StartError");
      job->outcome = 2;
    }
  else
    {
      pod->started = TRUE;
      g_subprocess_wait_async (pod->process, NULL, pod_exited, api);
    }
  g_ptr_array_add (api->pods, pod);

  {
    g_autoptr(JsonNode) reply = job_to_json (job);
    reply_json (msg, 201, reply);
  }
}

/* DELETE …/jobs/{name}, lock held. */
static void
delete_job (FakeApi           *api,
            SoupServerMessage *msg,
            const char        *name,
            GHashTable        *query)
{
  const char *policy = query != NULL ? g_hash_table_lookup (query, "propagationPolicy") : NULL;
  const char *grace = query != NULL ? g_hash_table_lookup (query, "gracePeriodSeconds") : NULL;
  g_autofree char *message = NULL;

  if (!g_hash_table_contains (api->jobs, name))
    {
      message = g_strdup_printf ("jobs.batch \"%s\" not found", name);
      reply_status (msg, 404, "NotFound", message);
      return;
    }
  g_hash_table_remove (api->jobs, name);

  if (g_strcmp0 (policy, "Background") == 0 || g_strcmp0 (policy, "Foreground") == 0)
    {
      for (guint i = 0; i < api->pods->len; )
        {
          FakePod *pod = g_ptr_array_index (api->pods, i);

          if (g_str_equal (pod->job_name, name))
            {
              pod->deleting = TRUE;
              if (pod->terminated)
                {
                  g_ptr_array_remove_index (api->pods, i);
                  continue;
                }
              g_subprocess_send_signal (pod->process,
                                        g_strcmp0 (grace, "0") == 0 ? SIGKILL : SIGTERM);
            }
          i++;
        }
    }
  /* Else (Orphan, the default of batch/v1 Jobs): the pod keeps running. */
  reply_status (msg, 200, NULL, NULL);
}

static void
handle_request (SoupServer        *server,
                SoupServerMessage *msg,
                const char        *path,
                GHashTable        *query,
                gpointer           data)
{
  FakeApi *api = data;
  const char *method = soup_server_message_get_method (msg);
  const char *auth = soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                                   "Authorization");
  const char *selector = query != NULL ? g_hash_table_lookup (query, "labelSelector") : NULL;
  g_auto(GStrv) parts = g_strsplit (path, "/", -1);
  guint n = g_strv_length (parts);
  GUri *uri = soup_server_message_get_uri (msg);
  g_autofree char *line = g_strdup_printf ("%s %s%s%s", method, path,
                                           g_uri_get_query (uri) != NULL ? "?" : "",
                                           g_uri_get_query (uri) != NULL ? g_uri_get_query (uri) : "");

  g_mutex_lock (&api->lock);
  g_ptr_array_add (api->requests, g_steal_pointer (&line));

  if (api->hang)
    {
      soup_server_message_pause (msg);
      g_ptr_array_add (api->paused, g_object_ref (msg));
    }
  else if (api->required_token != NULL &&
           (auth == NULL || !g_str_has_prefix (auth, "Bearer ") ||
            !g_str_equal (auth + strlen ("Bearer "), api->required_token)))
    reply_status (msg, 401, "Unauthorized", "Unauthorized");
  /* parts: "", "apis", "batch", "v1", "namespaces", ns, "jobs"[, name] */
  else if (n >= 7 && g_str_equal (parts[1], "apis") && g_str_equal (parts[2], "batch") &&
           g_str_equal (parts[3], "v1") && g_str_equal (parts[4], "namespaces") &&
           g_str_equal (parts[6], "jobs") && n <= 8)
    {
      const char *name = n == 8 ? parts[7] : NULL;

      if (!g_str_equal (parts[5], NAMESPACE))
        reply_status (msg, 403, "Forbidden", "this protocol test serves one namespace");
      else if (name == NULL && g_str_equal (method, "POST"))
        create_job (api, msg);
      else if (name == NULL && g_str_equal (method, "GET"))
        {
          JsonArray *items = json_array_new ();
          JsonObject *list = json_object_new ();
          g_autoptr(JsonNode) node = NULL;
          GHashTableIter iter;
          gpointer value;

          g_hash_table_iter_init (&iter, api->jobs);
          while (g_hash_table_iter_next (&iter, NULL, &value))
            {
              FakeJob *job = value;
              JsonNode *labels = json_object_get_member (
                json_object_get_object_member (json_node_get_object (job->manifest), "metadata"),
                "labels");

              if (labels_match (labels, selector))
                json_array_add_element (items, job_to_json (job));
            }
          json_object_set_string_member (list, "kind", "JobList");
          json_object_set_string_member (list, "apiVersion", "batch/v1");
          json_object_set_array_member (list, "items", items);
          node = json_node_init_object (json_node_alloc (), list);
          json_object_unref (list);
          reply_json (msg, 200, node);
        }
      else if (name != NULL && g_str_equal (method, "GET"))
        {
          FakeJob *job = g_hash_table_lookup (api->jobs, name);

          if (job == NULL)
            {
              g_autofree char *message = g_strdup_printf ("jobs.batch \"%s\" not found", name);
              reply_status (msg, 404, "NotFound", message);
            }
          else
            {
              g_autoptr(JsonNode) node = job_to_json (job);
              reply_json (msg, 200, node);
            }
        }
      else if (name != NULL && g_str_equal (method, "DELETE"))
        delete_job (api, msg, name, query);
      else
        reply_status (msg, 405, "MethodNotAllowed", "method not allowed");
    }
  else if (n == 6 && g_str_equal (parts[1], "api") && g_str_equal (parts[2], "v1") &&
           g_str_equal (parts[3], "namespaces") && g_str_equal (parts[5], "pods") &&
           g_str_equal (method, "GET"))
    {
      JsonArray *items = json_array_new ();
      JsonObject *list = json_object_new ();
      g_autoptr(JsonNode) node = NULL;

      for (guint i = 0; i < api->pods->len; i++)
        {
          FakePod *pod = g_ptr_array_index (api->pods, i);

          if (g_str_equal (parts[4], NAMESPACE) && labels_match (pod->labels, selector))
            json_array_add_element (items, pod_to_json (pod));
        }
      json_object_set_string_member (list, "kind", "PodList");
      json_object_set_string_member (list, "apiVersion", "v1");
      json_object_set_array_member (list, "items", items);
      node = json_node_init_object (json_node_alloc (), list);
      json_object_unref (list);
      reply_json (msg, 200, node);
    }
  else
    reply_status (msg, 404, "NotFound", "the server could not find the requested resource");
  g_mutex_unlock (&api->lock);
}

static gpointer
fake_api_thread (gpointer data)
{
  FakeApi *api = data;
  g_autoptr(GError) error = NULL;
  GSList *uris;

  g_main_context_push_thread_default (api->context);
  api->server = soup_server_new ("server-header", "fiber-protocol-test", NULL);
  soup_server_add_handler (api->server, NULL, handle_request, api, NULL);
  if (!soup_server_listen_local (api->server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error))
    g_error ("cannot listen on 127.0.0.1: %s", error->message);
  uris = soup_server_get_uris (api->server);
  api->url = g_strdup_printf ("http://127.0.0.1:%d", g_uri_get_port (uris->data));
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);

  g_mutex_lock (&api->lock);
  api->ready = TRUE;
  g_cond_broadcast (&api->cond);
  g_mutex_unlock (&api->lock);

  g_main_loop_run (api->loop);

  /* Stop every pod still running, and reap it. */
  for (guint i = 0; i < api->pods->len; i++)
    {
      FakePod *pod = g_ptr_array_index (api->pods, i);

      if (pod->process != NULL && !pod->terminated)
        {
          g_subprocess_force_exit (pod->process);
          g_subprocess_wait (pod->process, NULL, NULL);
        }
    }
  while (g_main_context_iteration (api->context, FALSE))
    ;
  g_ptr_array_set_size (api->paused, 0);
  soup_server_disconnect (api->server);
  g_clear_object (&api->server);
  while (g_main_context_iteration (api->context, FALSE))
    ;
  g_main_context_pop_thread_default (api->context);
  return NULL;
}

static FakeApi *
fake_api_new (const char *required_token)
{
  FakeApi *api = g_new0 (FakeApi, 1);

  g_mutex_init (&api->lock);
  g_cond_init (&api->cond);
  api->required_token = g_strdup (required_token);
  api->context = g_main_context_new ();
  api->loop = g_main_loop_new (api->context, FALSE);
  api->jobs = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, fake_job_free);
  api->pods = g_ptr_array_new_with_free_func (fake_pod_free);
  api->requests = g_ptr_array_new_with_free_func (g_free);
  api->paused = g_ptr_array_new_with_free_func (g_object_unref);
  api->thread = g_thread_new ("fake-kube-api", fake_api_thread, api);

  g_mutex_lock (&api->lock);
  while (!api->ready)
    g_cond_wait (&api->cond, &api->lock);
  g_mutex_unlock (&api->lock);
  return api;
}

static gboolean
quit_idle (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

static void
fake_api_stop (FakeApi *api)
{
  if (api->thread == NULL)
    return;
  g_main_context_invoke (api->context, quit_idle, api->loop);
  g_thread_join (g_steal_pointer (&api->thread));
}

static void
fake_api_free (FakeApi *api)
{
  fake_api_stop (api);
  g_hash_table_unref (api->jobs);
  g_ptr_array_unref (api->pods);
  g_ptr_array_unref (api->requests);
  g_ptr_array_unref (api->paused);
  g_main_loop_unref (api->loop);
  g_main_context_unref (api->context);
  g_mutex_clear (&api->lock);
  g_cond_clear (&api->cond);
  g_free (api->required_token);
  g_free (api->url);
  g_free (api);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (FakeApi, fake_api_free)

/* A copy of the manifest of Job @name as the server received it. */
static JsonNode *
fake_api_get_manifest (FakeApi    *api,
                       const char *name)
{
  FakeJob *job;
  JsonNode *node = NULL;

  g_mutex_lock (&api->lock);
  job = g_hash_table_lookup (api->jobs, name);
  if (job != NULL)
    node = json_node_copy (job->manifest);
  g_mutex_unlock (&api->lock);
  return node;
}

static guint
fake_api_count_requests (FakeApi    *api,
                         const char *prefix)
{
  guint n = 0;

  g_mutex_lock (&api->lock);
  for (guint i = 0; i < api->requests->len; i++)
    if (g_str_has_prefix (g_ptr_array_index (api->requests, i), prefix))
      n++;
  g_mutex_unlock (&api->lock);
  return n;
}

static gboolean
fake_api_saw_request (FakeApi    *api,
                      const char *prefix,
                      const char *fragment)
{
  gboolean found = FALSE;

  g_mutex_lock (&api->lock);
  for (guint i = 0; i < api->requests->len && !found; i++)
    {
      const char *line = g_ptr_array_index (api->requests, i);

      found = g_str_has_prefix (line, prefix) && strstr (line, fragment) != NULL;
    }
  g_mutex_unlock (&api->lock);
  return found;
}

static gboolean
fake_api_pod_exists (FakeApi    *api,
                     const char *job_name)
{
  gboolean found = FALSE;

  g_mutex_lock (&api->lock);
  for (guint i = 0; i < api->pods->len && !found; i++)
    found = g_str_equal (((FakePod *) g_ptr_array_index (api->pods, i))->job_name, job_name);
  g_mutex_unlock (&api->lock);
  return found;
}

static gboolean
fake_api_pod_terminated (FakeApi    *api,
                         const char *job_name)
{
  gboolean terminated = FALSE;

  g_mutex_lock (&api->lock);
  for (guint i = 0; i < api->pods->len; i++)
    {
      FakePod *pod = g_ptr_array_index (api->pods, i);

      if (g_str_equal (pod->job_name, job_name))
        terminated = pod->terminated;
    }
  g_mutex_unlock (&api->lock);
  return terminated;
}

/* Helpers */

static FiberBackend *
backend_for (FakeApi *api)
{
  return g_object_new (FIBER_TYPE_KUBERNETES_BACKEND,
                       "url", api->url,
                       "image", IMAGE,
                       "namespace", NAMESPACE,
                       "listen-address", "127.0.0.1",
                       "request-timeout", 5000,
                       NULL);
}

static FiberJob *
create (FiberBackend       *backend,
        const char * const *argv)
{
  g_autoptr(FiberJobSpec) spec = fiber_job_spec_new (argv);
  g_autoptr(GError) error = NULL;
  FiberJob *job;

  fiber_job_spec_set_name (spec, "Fiber Test_Worker");
  job = fiber_backend_create_job (backend, spec, &error);
  g_assert_no_error (error);
  g_assert_nonnull (job);
  return job;
}

static JsonObject *
manifest_path (JsonNode   *manifest,
               const char *path)
{
  g_auto(GStrv) names = g_strsplit (path, ".", -1);
  JsonObject *object = json_node_get_object (manifest);

  for (guint i = 0; names[i] != NULL && object != NULL; i++)
    {
      JsonNode *node = json_object_get_member (object, names[i]);

      if (node != NULL && JSON_NODE_HOLDS_ARRAY (node))
        node = json_array_get_element (json_node_get_array (node), 0);
      object = node != NULL && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
    }
  g_assert_nonnull (object);
  return object;
}

/* Tests */

/* A container that exits 3: FAILED, exit code 3; the Job asked for one
 * attempt (backoffLimit 0, restartPolicy Never) with our labels. */
static void
test_protocol_exit_code (void)
{
  g_autoptr(FakeApi) api = fake_api_new (NULL);
  g_autoptr(FiberBackend) backend = backend_for (api);
  g_autoptr(FiberJob) job = NULL;
  g_autoptr(JsonNode) manifest = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *listen = NULL;
  const char *argv[] = { "/bin/sh", "-c", "sleep 0.3; exit 3", NULL };
  JsonObject *spec, *pod_spec, *container, *labels;
  JsonArray *command;
  int exitcode = 0;

  g_assert_cmpstr (fiber_backend_get_name (backend), ==, "kubernetes");
  g_assert_true (fiber_backend_is_remote (backend));
  listen = fiber_backend_get_listen_address (backend, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (listen, ==, "127.0.0.1");

  job = create (backend, argv);
  g_assert_cmpint (fiber_job_get_pid (job), >, 0);
  g_assert_true (g_str_has_prefix (fiber_job_get_id (job), "fiber-test-worker-"));

  manifest = fake_api_get_manifest (api, fiber_job_get_id (job));
  g_assert_nonnull (manifest);
  spec = manifest_path (manifest, "spec");
  g_assert_cmpint (json_object_get_int_member (spec, "backoffLimit"), ==, 0);
  pod_spec = manifest_path (manifest, "spec.template.spec");
  g_assert_cmpstr (json_object_get_string_member (pod_spec, "restartPolicy"), ==, "Never");
  container = manifest_path (manifest, "spec.template.spec.containers");
  g_assert_cmpstr (json_object_get_string_member (container, "image"), ==, IMAGE);
  command = json_object_get_array_member (container, "command");
  g_assert_cmpuint (json_array_get_length (command), ==, 3);
  g_assert_cmpstr (json_array_get_string_element (command, 0), ==, "/bin/sh");
  g_assert_cmpstr (json_array_get_string_element (command, 2), ==, argv[2]);
  labels = manifest_path (manifest, "spec.template.metadata.labels");
  g_assert_cmpstr (json_object_get_string_member (labels, "app.kubernetes.io/managed-by"),
                   ==, "fiber-glib");
  g_assert_true (json_object_has_member (labels, "fiber-glib/instance"));

  if (!fiber_job_has_ended (job))
    g_assert_false (fiber_test_fd_readable (fiber_job_get_fd (job), 0));
  g_assert_true (fiber_test_fd_readable (fiber_job_get_fd (job), JOB_TIMEOUT_MSEC));
  g_assert_true (fiber_backend_wait_job (backend, job, 0, &error));
  g_assert_no_error (error);
  g_assert_cmpint (fiber_job_get_state (job), ==, FIBER_JOB_STATE_FAILED);
  g_assert_true (fiber_job_get_exitcode (job, &exitcode));
  g_assert_cmpint (exitcode, ==, 3);

  fiber_test_assert_no_leaks (2000);
}

/* A container that succeeds, checking what reached it: the spec's and the
 * backend's env, workingDir, the worker command, resources. */
static void
test_protocol_success (void)
{
  g_autoptr(FakeApi) api = fake_api_new (NULL);
  g_autoptr(FiberBackend) backend = backend_for (api);
  g_autoptr(FiberJobSpec) spec = NULL;
  g_autoptr(FiberJob) job = NULL;
  g_autoptr(JsonNode) manifest = NULL;
  g_autoptr(GError) error = NULL;
  const char *extra[] = { "FIBER_TEST_EXTRA=from backend", "FIBER_TEST_BOTH=backend", NULL };
  const char *argv[] = {
    "placeholder-worker", "-c",
    "[ \"$FIBER_TEST_SPEC\" = \"it's spec\" ] || exit 11; "
    "[ \"$FIBER_TEST_EXTRA\" = \"from backend\" ] || exit 12; "
    "[ \"$FIBER_TEST_BOTH\" = spec ] || exit 13; "
    "[ \"$(pwd)\" = / ] || exit 14; "
    "exit 0",
    NULL
  };
  JsonObject *container, *requests, *limits;
  int exitcode = -1;

  g_object_set (backend, "environment", extra, "working-directory", "/",
                "worker-command", "/bin/sh", "memory", (guint64) 64,
                "time-limit", 5, NULL);
  spec = fiber_job_spec_new (argv);
  fiber_job_spec_setenv (spec, "FIBER_TEST_SPEC", "it's spec");
  fiber_job_spec_setenv (spec, "FIBER_TEST_BOTH", "spec");
  fiber_job_spec_set_cpus (spec, 2);
  job = fiber_backend_create_job (backend, spec, &error);
  g_assert_no_error (error);

  manifest = fake_api_get_manifest (api, fiber_job_get_id (job));
  container = manifest_path (manifest, "spec.template.spec.containers");
  g_assert_cmpstr (json_object_get_string_member (container, "workingDir"), ==, "/");
  requests = manifest_path (manifest, "spec.template.spec.containers.resources.requests");
  g_assert_cmpstr (json_object_get_string_member (requests, "cpu"), ==, "2");
  g_assert_cmpstr (json_object_get_string_member (requests, "memory"), ==, "64Mi");
  limits = manifest_path (manifest, "spec.template.spec.containers.resources.limits");
  g_assert_cmpstr (json_object_get_string_member (limits, "memory"), ==, "64Mi");
  g_assert_cmpint (json_object_get_int_member (manifest_path (manifest, "spec"),
                                               "activeDeadlineSeconds"), ==, 300);

  g_assert_true (fiber_backend_wait_job (backend, job, JOB_TIMEOUT_MSEC, &error));
  g_assert_no_error (error);
  g_assert_true (fiber_job_get_exitcode (job, &exitcode));
  g_assert_cmpint (exitcode, ==, 0);
  g_assert_cmpint (fiber_job_get_state (job), ==, FIBER_JOB_STATE_COMPLETED);

  fiber_test_assert_no_leaks (2000);
}

/* Terminating deletes the Job with propagationPolicy=Background: its pod
 * is stopped, the job ends CANCELLED. */
static void
test_protocol_terminate (void)
{
  g_autoptr(FakeApi) api = fake_api_new (NULL);
  g_autoptr(FiberBackend) backend = backend_for (api);
  g_autoptr(FiberJob) job = NULL;
  g_autoptr(FiberJob) forced = NULL;
  g_autoptr(GError) error = NULL;
  const char *argv[] = { "sleep", "60", NULL };
  int exitcode = 0;

  job = create (backend, argv);
  forced = create (backend, argv);
  fiber_test_wait_for_job_state (job, FIBER_JOB_STATE_RUNNING, JOB_TIMEOUT_MSEC);
  fiber_test_wait_for_job_state (forced, FIBER_JOB_STATE_RUNNING, JOB_TIMEOUT_MSEC);
  g_assert_false (fiber_backend_wait_job (backend, job, 100, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_TIMEOUT);
  g_clear_error (&error);

  g_assert_true (fiber_backend_terminate_job (backend, job, FALSE, &error));
  g_assert_no_error (error);
  g_assert_true (fiber_backend_terminate_job (backend, forced, TRUE, &error));
  g_assert_no_error (error);
  g_assert_true (fake_api_saw_request (api, "DELETE", "propagationPolicy=Background"));
  g_assert_true (fake_api_saw_request (api, "DELETE", "gracePeriodSeconds=0"));

  g_assert_true (fiber_backend_wait_job (backend, job, JOB_TIMEOUT_MSEC, &error));
  g_assert_no_error (error);
  g_assert_cmpint (fiber_job_get_state (job), ==, FIBER_JOB_STATE_CANCELLED);
  g_assert_true (fiber_job_get_exitcode (job, &exitcode));
  g_assert_cmpint (exitcode, ==, -SIGTERM);

  g_assert_true (fiber_backend_wait_job (backend, forced, JOB_TIMEOUT_MSEC, &error));
  g_assert_no_error (error);
  g_assert_cmpint (fiber_job_get_state (forced), ==, FIBER_JOB_STATE_CANCELLED);
  g_assert_true (fiber_job_get_exitcode (forced, &exitcode));
  g_assert_cmpint (exitcode, <, 0);

  /* Both pods are gone, not orphaned. */
  g_assert_false (fake_api_pod_exists (api, fiber_job_get_id (job)));
  g_assert_false (fake_api_pod_exists (api, fiber_job_get_id (forced)));
  /* Terminating an ended job is a no-op. */
  g_assert_true (fiber_backend_terminate_job (backend, job, FALSE, &error));
  g_assert_no_error (error);

  fiber_test_assert_no_leaks (2000);
}

#define JOB_LIST "GET /apis/batch/v1/namespaces/" NAMESPACE "/jobs?"
#define POD_LIST "GET /api/v1/namespaces/" NAMESPACE "/pods?"

/* The monitor lists Jobs and pods, two requests per poll whatever the
 * number of live jobs; it never GETs single Jobs. */
static void
test_protocol_polling (void)
{
  g_autoptr(FakeApi) api = fake_api_new (NULL);
  g_autoptr(FiberBackend) backend = backend_for (api);
  g_autoptr(GPtrArray) jobs = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GError) error = NULL;
  const char *argv[] = { "sleep", "60", NULL };
  guint base_job_lists, base_pod_lists, job_lists, pod_lists;
  gint64 deadline;

  for (guint i = 0; i < 4; i++)
    g_ptr_array_add (jobs, create (backend, argv));
  for (guint i = 0; i < jobs->len; i++)
    fiber_test_wait_for_job_state (g_ptr_array_index (jobs, i), FIBER_JOB_STATE_RUNNING,
                                   JOB_TIMEOUT_MSEC);
  /* Let the monitor poll at least twice more with all four jobs live; the
   * deadline is only a guard. */
  base_job_lists = fake_api_count_requests (api, JOB_LIST);
  base_pod_lists = fake_api_count_requests (api, POD_LIST);
  deadline = g_get_monotonic_time () + JOB_TIMEOUT_MSEC * G_TIME_SPAN_MILLISECOND;
  do
    {
      job_lists = fake_api_count_requests (api, JOB_LIST) - base_job_lists;
      pod_lists = fake_api_count_requests (api, POD_LIST) - base_pod_lists;
      if (job_lists >= 2 && pod_lists >= 2)
        break;
      g_usleep (10 * 1000);
    }
  while (g_get_monotonic_time () < deadline);
  g_test_message ("%u Job lists, %u pod lists for 4 jobs", job_lists, pod_lists);
  g_assert_cmpuint (job_lists, >=, 2);
  g_assert_cmpuint (pod_lists, >=, 2);
  g_assert_cmpuint (fake_api_count_requests (api, "GET /apis/batch/v1/namespaces/" NAMESPACE "/jobs/"),
                    ==, 0);
  g_assert_true (fake_api_saw_request (api, "GET /api/v1/namespaces/" NAMESPACE "/pods?",
                                       "labelSelector=fiber-glib"));

  for (guint i = 0; i < jobs->len; i++)
    {
      g_assert_true (fiber_backend_terminate_job (backend, g_ptr_array_index (jobs, i),
                                                  TRUE, &error));
      g_assert_no_error (error);
    }
  for (guint i = 0; i < jobs->len; i++)
    {
      g_assert_true (fiber_backend_wait_job (backend, g_ptr_array_index (jobs, i),
                                             JOB_TIMEOUT_MSEC, &error));
      g_assert_no_error (error);
    }

  fiber_test_assert_no_leaks (2000);
}

/* fiber_backend_refresh_job() asks by itself (GET Job + pods by job-name),
 * without the monitor. */
static void
test_protocol_refresh (void)
{
  g_autoptr(FakeApi) api = fake_api_new (NULL);
  g_autoptr(FiberBackend) backend = NULL;
  g_autoptr(FiberJob) job = NULL;
  g_autoptr(GError) error = NULL;
  const char *argv[] = { "/bin/sh", "-c", "exit 5", NULL };
  gint64 deadline;
  int exitcode = 0;

  backend = backend_for (api);
  g_object_set (backend, "poll-interval", 60000, NULL);
  job = create (backend, argv);

  deadline = g_get_monotonic_time () + JOB_TIMEOUT_MSEC * G_TIME_SPAN_MILLISECOND;
  while (!fake_api_pod_terminated (api, fiber_job_get_id (job)) &&
         g_get_monotonic_time () < deadline)
    g_usleep (10 * 1000);
  g_assert_false (fiber_job_has_ended (job));
  g_assert_true (fiber_backend_refresh_job (backend, job, &error));
  g_assert_no_error (error);
  g_assert_true (fiber_job_has_ended (job));
  g_assert_true (fiber_test_fd_readable (fiber_job_get_fd (job), 0));
  g_assert_cmpint (fiber_job_get_state (job), ==, FIBER_JOB_STATE_FAILED);
  g_assert_true (fiber_job_get_exitcode (job, &exitcode));
  g_assert_cmpint (exitcode, ==, 5);
  g_assert_true (fake_api_saw_request (api, "GET /apis/batch/v1/namespaces/" NAMESPACE "/jobs/",
                                       fiber_job_get_id (job)));
  g_assert_true (fake_api_saw_request (api, "GET /api/v1/namespaces/" NAMESPACE "/pods?",
                                       "labelSelector=job-name"));

  fiber_test_assert_no_leaks (2000);
}

/* Bearer tokens: given, from a file, wrong. */
static void
test_protocol_auth (void)
{
  g_autoptr(FakeApi) api = fake_api_new ("s3cr3t-token");
  g_autoptr(FiberBackend) good = NULL;
  g_autoptr(FiberBackend) from_file = NULL;
  g_autoptr(FiberBackend) wrong = NULL;
  g_autoptr(FiberBackend) none = NULL;
  g_autoptr(FiberJob) job = NULL;
  g_autoptr(FiberJob) job2 = NULL;
  g_autoptr(FiberJobSpec) spec = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *token_file = NULL;
  const char *argv[] = { "true", NULL };
  int fd;

  spec = fiber_job_spec_new (argv);
  good = g_object_new (FIBER_TYPE_KUBERNETES_BACKEND, "url", api->url, "image", IMAGE,
                       "namespace", NAMESPACE, "token", "s3cr3t-token", NULL);
  job = fiber_backend_create_job (good, spec, &error);
  g_assert_no_error (error);
  g_assert_true (fiber_backend_wait_job (good, job, JOB_TIMEOUT_MSEC, &error));
  g_assert_no_error (error);
  g_assert_cmpint (fiber_job_get_state (job), ==, FIBER_JOB_STATE_COMPLETED);

  fd = g_file_open_tmp ("kube-token-XXXXXX", &token_file, &error);
  g_assert_no_error (error);
  g_assert_cmpint (write (fd, "s3cr3t-token\n", 13), ==, 13);
  close (fd);
  from_file = g_object_new (FIBER_TYPE_KUBERNETES_BACKEND, "url", api->url, "image", IMAGE,
                            "namespace", NAMESPACE, "token-file", token_file, NULL);
  job2 = fiber_backend_create_job (from_file, spec, &error);
  g_assert_no_error (error);
  g_assert_true (fiber_backend_wait_job (from_file, job2, JOB_TIMEOUT_MSEC, &error));
  g_assert_no_error (error);
  g_unlink (token_file);

  wrong = g_object_new (FIBER_TYPE_KUBERNETES_BACKEND, "url", api->url, "image", IMAGE,
                        "namespace", NAMESPACE, "token", "nope", NULL);
  g_assert_null (fiber_backend_create_job (wrong, spec, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_BACKEND);
  g_test_message ("wrong token: %s", error->message);
  g_assert_nonnull (strstr (error->message, "HTTP 401"));
  g_assert_nonnull (strstr (error->message, "Unauthorized"));
  g_clear_error (&error);

  none = g_object_new (FIBER_TYPE_KUBERNETES_BACKEND, "url", api->url, "image", IMAGE,
                       "namespace", NAMESPACE, NULL);
  g_assert_null (fiber_backend_create_job (none, spec, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_BACKEND);

  fiber_test_assert_no_leaks (2000);
}

/* API errors carry the Status message; bad settings are clear errors; a
 * stopped or stuck server fails within the request timeout. */
static void
test_protocol_errors (void)
{
  g_autoptr(FakeApi) api = fake_api_new (NULL);
  g_autoptr(FakeApi) stuck = fake_api_new (NULL);
  g_autoptr(FiberBackend) backend = NULL;
  g_autoptr(FiberBackend) no_image = NULL;
  g_autoptr(FiberBackend) no_url = NULL;
  g_autoptr(FiberBackend) gone = NULL;
  g_autoptr(FiberBackend) slow = NULL;
  g_autoptr(FiberBackend) bad_command = NULL;
  g_autoptr(FiberJobSpec) spec = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *gone_url = NULL;
  const char *argv[] = { "true", NULL };
  gint64 start, elapsed;

  spec = fiber_job_spec_new (argv);

  api->forbid_create = TRUE;
  backend = backend_for (api);
  g_assert_null (fiber_backend_create_job (backend, spec, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_BACKEND);
  g_test_message ("forbidden: %s", error->message);
  g_assert_nonnull (strstr (error->message, "HTTP 403"));
  g_assert_nonnull (strstr (error->message, "cannot create resource \"jobs\""));
  g_clear_error (&error);

  no_image = g_object_new (FIBER_TYPE_KUBERNETES_BACKEND, "url", api->url, NULL);
  g_assert_null (fiber_backend_create_job (no_image, spec, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  bad_command = backend_for (api);
  g_object_set (bad_command, "worker-command", "'unterminated", NULL);
  g_assert_null (fiber_backend_create_job (bad_command, spec, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  /* Outside a pod (main() unset KUBERNETES_SERVICE_HOST) a URL is needed. */
  no_url = g_object_new (FIBER_TYPE_KUBERNETES_BACKEND, "image", IMAGE, NULL);
  g_assert_null (fiber_backend_create_job (no_url, spec, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  /* A server that has gone away. */
  {
    g_autoptr(FakeApi) stopped = fake_api_new (NULL);

    gone_url = g_strdup (stopped->url);
  }
  gone = g_object_new (FIBER_TYPE_KUBERNETES_BACKEND, "url", gone_url, "image", IMAGE,
                       "request-timeout", 2000, NULL);
  start = g_get_monotonic_time ();
  g_assert_null (fiber_backend_create_job (gone, spec, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_BACKEND);
  g_test_message ("gone: %s", error->message);
  g_assert_nonnull (strstr (error->message, "cannot reach the Kubernetes API server"));
  g_assert_cmpint (g_get_monotonic_time () - start, <, 10 * G_TIME_SPAN_SECOND);
  g_clear_error (&error);

  /* A server that never answers. */
  stuck->hang = TRUE;
  slow = g_object_new (FIBER_TYPE_KUBERNETES_BACKEND, "url", stuck->url, "image", IMAGE,
                       "namespace", NAMESPACE, "request-timeout", 500, NULL);
  start = g_get_monotonic_time ();
  g_assert_null (fiber_backend_create_job (slow, spec, &error));
  elapsed = g_get_monotonic_time () - start;
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_BACKEND);
  g_test_message ("stuck: %s (after %" G_GINT64_FORMAT " ms)", error->message, elapsed / 1000);
  g_assert_nonnull (strstr (error->message, "within 500 ms"));
  g_assert_cmpint (elapsed, >=, 400 * G_TIME_SPAN_MILLISECOND);
  g_assert_cmpint (elapsed, <, 10 * G_TIME_SPAN_SECOND);

  fiber_test_assert_no_leaks (2000);
}

int
main (int    argc,
      char **argv)
{
  int ret;

  fiber_init (&argc, &argv, NULL);
  /* Outside a cluster whatever the machine says; before any thread. */
  g_unsetenv ("KUBERNETES_SERVICE_HOST");
  g_unsetenv ("KUBERNETES_SERVICE_PORT");
  fiber_test_init_environment ();
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/kubernetes-backend/protocol/exit-code", test_protocol_exit_code);
  g_test_add_func ("/kubernetes-backend/protocol/success", test_protocol_success);
  g_test_add_func ("/kubernetes-backend/protocol/terminate", test_protocol_terminate);
  g_test_add_func ("/kubernetes-backend/protocol/polling", test_protocol_polling);
  g_test_add_func ("/kubernetes-backend/protocol/refresh", test_protocol_refresh);
  g_test_add_func ("/kubernetes-backend/protocol/auth", test_protocol_auth);
  g_test_add_func ("/kubernetes-backend/protocol/errors", test_protocol_errors);

  ret = g_test_run ();
  fiber_test_cleanup_environment ();
  return ret;
}

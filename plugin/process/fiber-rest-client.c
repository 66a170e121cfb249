/* fiber-rest-client.c — a JSON-over-HTTP client on its own thread
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <string.h>

#include <libsoup/soup.h>

#include "fiber-error.h"
#include "fiber-rest-client-private.h"

/* How long a blocking caller waits beyond the request timeout before it
 * gives up on the client thread itself (it never should). */
#define SYNC_GUARD_MSEC 5000

typedef struct
{
  char *name;
  char *value;   /* a fixed value, or */
  char *prefix;  /* @prefix + the contents of @path */
  char *path;
} Header;

struct _FiberRestClient
{
  GObject        parent_instance;

  char          *service;
  char          *base_url;
  char          *socket_path;
  char          *ca_file;
  char          *location;       /* for messages: the URL or unix:path */
  guint          timeout_msec;
  gboolean       no_proxy;

  GMutex         lock;           /* protects headers */
  GPtrArray     *headers;        /* (element-type Header) */

  GMainContext  *context;
  GMainLoop     *loop;
  GThread       *thread;

  /* Only used on the client thread. */
  SoupSession   *session;
  GCancellable  *shutdown;
  guint          n_pending;

  GMutex         start_lock;
  GCond          start_cond;
  gboolean       start_done;
  GError        *start_error;
};

G_DEFINE_FINAL_TYPE (FiberRestClient, _fiber_rest_client, G_TYPE_OBJECT)

static void
header_free (gpointer data)
{
  Header *header = data;

  g_free (header->name);
  g_free (header->value);
  g_free (header->prefix);
  g_free (header->path);
  g_free (header);
}

void
_fiber_rest_reply_free (FiberRestReply *reply)
{
  if (reply == NULL)
    return;
  g_free (reply->reason);
  g_free (reply->content_type);
  g_clear_pointer (&reply->body, g_bytes_unref);
  g_free (reply);
}

JsonNode *
_fiber_rest_reply_get_json (FiberRestReply *reply)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  gsize size = 0;
  const char *data = g_bytes_get_data (reply->body, &size);

  if (size == 0 || size > G_MAXSSIZE)
    return NULL;
  if (!json_parser_load_from_data (parser, data, (gssize) size, NULL))
    return NULL;
  return json_parser_steal_root (parser);
}

char *
_fiber_rest_reply_get_text (FiberRestReply *reply)
{
  gsize size = 0;
  const char *data = g_bytes_get_data (reply->body, &size);
  g_autofree char *valid = g_utf8_make_valid (data != NULL ? data : "",
                                              (gssize) MIN (size, 200));

  return g_strdup (g_strstrip (valid));
}

JsonNode *
_fiber_rest_reply_check (FiberRestReply        *reply,
                         const char            *label,
                         const char            *what,
                         FiberRestDetailsFunc   details_func,
                         gpointer               details_data,
                         GError               **error)
{
  g_autoptr(JsonNode) root = _fiber_rest_reply_get_json (reply);
  g_autofree char *details = NULL;

  if (details_func != NULL)
    details = details_func (root, details_data);

  if (reply->status >= 200 && reply->status < 300)
    {
      if (root != NULL && JSON_NODE_HOLDS_OBJECT (root))
        return g_steal_pointer (&root);
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_BACKEND,
                   "%s: %s: the reply is not a JSON object", label, what);
      return NULL;
    }

  if (details == NULL || *details == '\0')
    {
      g_free (details);
      details = _fiber_rest_reply_get_text (reply);
    }
  g_set_error (error, FIBER_ERROR, FIBER_ERROR_BACKEND,
               "%s: %s failed (HTTP %u %s): %s", label, what, reply->status,
               reply->reason != NULL ? reply->reason : "",
               *details != '\0' ? details : "no details given");
  return NULL;
}

/* The client thread. */

static SoupSession *
create_session (FiberRestClient  *self,
                GError          **error)
{
  g_autoptr(SoupSession) session = NULL;

  if (self->socket_path != NULL)
    {
      g_autoptr(GSocketAddress) address =
        g_unix_socket_address_new (self->socket_path);

      session = soup_session_new_with_options ("remote-connectable", address,
                                               NULL);
    }
  else
    session = soup_session_new ();

  if (self->ca_file != NULL)
    {
      g_autoptr(GTlsDatabase) database =
        g_tls_file_database_new (self->ca_file, error);

      if (database == NULL)
        {
          g_prefix_error (error, "cannot load the CA of %s from %s: ",
                          self->service, self->ca_file);
          return NULL;
        }
      soup_session_set_tls_database (session, database);
    }
  if (self->no_proxy)
    soup_session_set_proxy_resolver (session, NULL);
  soup_session_set_user_agent (session, "fiber-glib");
  return g_steal_pointer (&session);
}

static gpointer
client_thread (gpointer data)
{
  FiberRestClient *self = data;
  g_autoptr(GError) error = NULL;

  g_main_context_push_thread_default (self->context);
  self->session = create_session (self, &error);

  g_mutex_lock (&self->start_lock);
  self->start_done = TRUE;
  if (self->session == NULL)
    self->start_error = g_steal_pointer (&error);
  g_cond_broadcast (&self->start_cond);
  g_mutex_unlock (&self->start_lock);

  if (self->session != NULL)
    g_main_loop_run (self->loop);

  /* Shutting down: fail what is still in flight and let the callbacks
   * run, so that nobody waits for a reply that never comes. */
  g_cancellable_cancel (self->shutdown);
  while (self->n_pending > 0)
    g_main_context_iteration (self->context, TRUE);
  if (self->session != NULL)
    soup_session_abort (self->session);
  g_clear_object (&self->session);
  while (g_main_context_pending (self->context))
    g_main_context_iteration (self->context, FALSE);

  g_main_context_pop_thread_default (self->context);
  return NULL;
}

static gboolean
quit_loop (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

static void
_fiber_rest_client_dispose (GObject *object)
{
  FiberRestClient *self = FIBER_REST_CLIENT (object);

  if (self->thread != NULL)
    {
      if (g_main_context_is_owner (self->context))
        {
          /* Cannot join ourselves: let the thread finish on its own. */
          g_critical ("FiberRestClient disposed on its own thread");
          g_main_loop_quit (self->loop);
          g_thread_unref (g_steal_pointer (&self->thread));
        }
      else
        {
          g_main_context_invoke_full (self->context, G_PRIORITY_HIGH,
                                      quit_loop,
                                      g_main_loop_ref (self->loop),
                                      (GDestroyNotify) g_main_loop_unref);
          g_thread_join (g_steal_pointer (&self->thread));
        }
    }

  G_OBJECT_CLASS (_fiber_rest_client_parent_class)->dispose (object);
}

static void
_fiber_rest_client_finalize (GObject *object)
{
  FiberRestClient *self = FIBER_REST_CLIENT (object);

  g_free (self->service);
  g_free (self->base_url);
  g_free (self->socket_path);
  g_free (self->ca_file);
  g_free (self->location);
  g_ptr_array_unref (self->headers);
  g_mutex_clear (&self->lock);
  g_mutex_clear (&self->start_lock);
  g_cond_clear (&self->start_cond);
  g_clear_error (&self->start_error);
  g_clear_object (&self->shutdown);
  g_main_loop_unref (self->loop);
  g_main_context_unref (self->context);

  G_OBJECT_CLASS (_fiber_rest_client_parent_class)->finalize (object);
}

static void
_fiber_rest_client_class_init (FiberRestClientClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = _fiber_rest_client_dispose;
  object_class->finalize = _fiber_rest_client_finalize;
}

static void
_fiber_rest_client_init (FiberRestClient *self)
{
  g_mutex_init (&self->lock);
  g_mutex_init (&self->start_lock);
  g_cond_init (&self->start_cond);
  self->headers = g_ptr_array_new_with_free_func (header_free);
  self->context = g_main_context_new ();
  self->loop = g_main_loop_new (self->context, FALSE);
  self->shutdown = g_cancellable_new ();
}

static gboolean
is_loopback_host (const char *host)
{
  g_autoptr(GInetAddress) address = NULL;

  if (host == NULL)
    return FALSE;
  if (g_ascii_strcasecmp (host, "localhost") == 0)
    return TRUE;
  address = g_inet_address_new_from_string (host);
  return address != NULL && g_inet_address_get_is_loopback (address);
}

FiberRestClient *
_fiber_rest_client_new (const char  *service,
                        const char  *base_url,
                        const char  *socket_path,
                        const char  *ca_file,
                        guint        timeout_msec,
                        GError     **error)
{
  g_autoptr(FiberRestClient) self = NULL;
  g_autoptr(GUri) uri = NULL;
  g_autoptr(GError) local_error = NULL;
  const char *scheme;

  g_return_val_if_fail (service != NULL, NULL);
  g_return_val_if_fail (base_url != NULL, NULL);

  uri = g_uri_parse (base_url, G_URI_FLAGS_NONE, &local_error);
  scheme = uri != NULL ? g_uri_get_scheme (uri) : NULL;
  if (uri == NULL || g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0' ||
      (g_ascii_strcasecmp (scheme, "http") != 0 &&
       g_ascii_strcasecmp (scheme, "https") != 0))
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                   "invalid %s URL '%s': expected http://host[:port] or "
                   "https://host[:port]%s%s", service, base_url,
                   local_error != NULL ? ": " : "",
                   local_error != NULL ? local_error->message : "");
      return NULL;
    }

  self = g_object_new (FIBER_TYPE_REST_CLIENT, NULL);
  self->service = g_strdup (service);
  /* Paths are appended: drop trailing slashes. */
  self->base_url = g_strdup (base_url);
  while (g_str_has_suffix (self->base_url, "/"))
    self->base_url[strlen (self->base_url) - 1] = '\0';
  self->socket_path = g_strdup (socket_path);
  self->ca_file = g_strdup (ca_file);
  self->timeout_msec = timeout_msec > 0 ? timeout_msec : 10000;
  self->location = socket_path != NULL ? g_strdup_printf ("unix:%s", socket_path)
                                       : g_strdup (self->base_url);
  self->no_proxy = socket_path != NULL || is_loopback_host (g_uri_get_host (uri));

  self->thread = g_thread_try_new ("fiber-rest", client_thread, self, error);
  if (self->thread == NULL)
    return NULL;

  g_mutex_lock (&self->start_lock);
  while (!self->start_done)
    g_cond_wait (&self->start_cond, &self->start_lock);
  g_mutex_unlock (&self->start_lock);
  if (self->start_error != NULL)
    {
      g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_BACKEND,
                           self->start_error->message);
      return NULL;
    }
  return g_steal_pointer (&self);
}

void
_fiber_rest_client_add_header (FiberRestClient *self,
                               const char      *name,
                               const char      *value)
{
  Header *header;

  g_return_if_fail (FIBER_IS_REST_CLIENT (self));
  g_return_if_fail (name != NULL && value != NULL);

  header = g_new0 (Header, 1);
  header->name = g_strdup (name);
  header->value = g_strdup (value);
  g_mutex_lock (&self->lock);
  g_ptr_array_add (self->headers, header);
  g_mutex_unlock (&self->lock);
}

void
_fiber_rest_client_add_header_file (FiberRestClient *self,
                                    const char      *name,
                                    const char      *prefix,
                                    const char      *path)
{
  Header *header;

  g_return_if_fail (FIBER_IS_REST_CLIENT (self));
  g_return_if_fail (name != NULL && path != NULL);

  header = g_new0 (Header, 1);
  header->name = g_strdup (name);
  header->prefix = g_strdup (prefix != NULL ? prefix : "");
  header->path = g_strdup (path);
  g_mutex_lock (&self->lock);
  g_ptr_array_add (self->headers, header);
  g_mutex_unlock (&self->lock);
}

const char *
_fiber_rest_client_get_service (FiberRestClient *self)
{
  g_return_val_if_fail (FIBER_IS_REST_CLIENT (self), NULL);

  return self->service;
}

guint
_fiber_rest_client_get_timeout (FiberRestClient *self)
{
  g_return_val_if_fail (FIBER_IS_REST_CLIENT (self), 0);

  return self->timeout_msec;
}

char *
_fiber_rest_escape (const char *text)
{
  return g_uri_escape_string (text, NULL, FALSE);
}

/* JSON replies */

JsonObject *
_fiber_json_member_object (JsonObject *object,
                           const char *name)
{
  JsonNode *node = object != NULL ? json_object_get_member (object, name) : NULL;

  return node != NULL && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

JsonArray *
_fiber_json_member_array (JsonObject *object,
                          const char *name)
{
  JsonNode *node = object != NULL ? json_object_get_member (object, name) : NULL;

  return node != NULL && JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;
}

const char *
_fiber_json_member_string (JsonObject *object,
                           const char *name)
{
  JsonNode *node = object != NULL ? json_object_get_member (object, name) : NULL;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

/* Requests, on the client thread. */

typedef struct
{
  FiberRestClient *client;     /* unowned: outlived by the thread */
  SoupMessage     *msg;
  GCancellable    *cancellable;
  gulong           shutdown_handler;
  GSource         *timeout_source;
  gboolean         timed_out;
  char            *what;       /* "GET /path" for messages */
} Request;

static void
request_free (gpointer data)
{
  Request *request = data;

  if (request->shutdown_handler != 0)
    g_cancellable_disconnect (request->client->shutdown,
                              request->shutdown_handler);
  if (request->timeout_source != NULL)
    {
      g_source_destroy (request->timeout_source);
      g_source_unref (request->timeout_source);
    }
  g_clear_object (&request->msg);
  g_clear_object (&request->cancellable);
  g_free (request->what);
  g_free (request);
}

static gboolean
request_timed_out (gpointer data)
{
  Request *request = data;

  request->timed_out = TRUE;
  g_cancellable_cancel (request->cancellable);
  return G_SOURCE_REMOVE;
}

static void
cancel_on_shutdown (GCancellable *shutdown,
                    gpointer      data)
{
  g_cancellable_cancel (G_CANCELLABLE (data));
}

static gboolean
apply_headers (FiberRestClient  *self,
               SoupMessage      *msg,
               GError          **error)
{
  SoupMessageHeaders *headers = soup_message_get_request_headers (msg);

  g_mutex_lock (&self->lock);
  for (guint i = 0; i < self->headers->len; i++)
    {
      Header *header = g_ptr_array_index (self->headers, i);

      if (header->path != NULL)
        {
          g_autofree char *contents = NULL;
          g_autofree char *value = NULL;
          g_autoptr(GError) local_error = NULL;

          if (!g_file_get_contents (header->path, &contents, NULL, &local_error))
            {
              g_mutex_unlock (&self->lock);
              g_set_error (error, FIBER_ERROR, FIBER_ERROR_BACKEND,
                           "cannot read the %s token for %s: %s",
                           header->name, self->service, local_error->message);
              return FALSE;
            }
          g_strstrip (contents);
          value = g_strconcat (header->prefix, contents, NULL);
          soup_message_headers_replace (headers, header->name, value);
        }
      else
        soup_message_headers_replace (headers, header->name, header->value);
    }
  g_mutex_unlock (&self->lock);
  return TRUE;
}

static void
request_sent (GObject      *source,
              GAsyncResult *result,
              gpointer      data)
{
  g_autoptr(GTask) task = data;
  Request *request = g_task_get_task_data (task);
  FiberRestClient *self = request->client;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) body = NULL;
  FiberRestReply *reply;

  body = soup_session_send_and_read_finish (SOUP_SESSION (source), result, &error);
  g_assert (self->n_pending > 0);
  self->n_pending--;

  if (body == NULL)
    {
      if (request->timed_out)
        g_task_return_new_error (task, FIBER_ERROR, FIBER_ERROR_BACKEND,
                                 "%s at %s did not answer %s within %u ms",
                                 self->service, self->location, request->what,
                                 self->timeout_msec);
      else if (g_cancellable_is_cancelled (self->shutdown))
        g_task_return_new_error (task, FIBER_ERROR, FIBER_ERROR_BACKEND,
                                 "%s request %s abandoned: the client is "
                                 "shutting down", self->service, request->what);
      else
        g_task_return_new_error (task, FIBER_ERROR, FIBER_ERROR_BACKEND,
                                 "cannot reach %s at %s (%s): %s",
                                 self->service, self->location, request->what,
                                 error->message);
      return;
    }

  reply = g_new0 (FiberRestReply, 1);
  reply->status = soup_message_get_status (request->msg);
  reply->reason = g_strdup (soup_message_get_reason_phrase (request->msg));
  reply->content_type =
    g_strdup (soup_message_headers_get_content_type (
                soup_message_get_response_headers (request->msg), NULL));
  reply->body = g_steal_pointer (&body);
  g_task_return_pointer (task, reply, (GDestroyNotify) _fiber_rest_reply_free);
}

void
_fiber_rest_client_call_async (FiberRestClient     *self,
                               const char          *method,
                               const char          *path,
                               JsonNode            *body,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autofree char *url = NULL;
  g_autoptr(GError) error = NULL;
  Request *request;

  g_return_if_fail (FIBER_IS_REST_CLIENT (self));
  g_return_if_fail (method != NULL && path != NULL && path[0] == '/');
  g_return_if_fail (g_main_context_is_owner (self->context));

  /* No source object: see the header. */
  task = g_task_new (NULL, NULL, callback, user_data);
  g_task_set_source_tag (task, _fiber_rest_client_call_async);
  request = g_new0 (Request, 1);
  request->client = self;
  request->what = g_strdup_printf ("%s %s", method, path);
  g_task_set_task_data (task, request, request_free);

  url = g_strconcat (self->base_url, path, NULL);
  request->msg = soup_message_new (method, url);
  if (request->msg == NULL)
    {
      g_task_return_new_error (task, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                               "invalid %s request URL '%s'", self->service, url);
      return;
    }
  if (!apply_headers (self, request->msg, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  soup_message_headers_replace (soup_message_get_request_headers (request->msg),
                                "Accept", "application/json");
  if (body != NULL)
    {
      g_autofree char *text = json_to_string (body, FALSE);
      gsize len = strlen (text);
      g_autoptr(GBytes) bytes = g_bytes_new_take (g_steal_pointer (&text), len);

      soup_message_set_request_body_from_bytes (request->msg, "application/json",
                                                bytes);
    }

  request->cancellable = g_cancellable_new ();
  request->shutdown_handler = g_cancellable_connect (self->shutdown,
                                                     G_CALLBACK (cancel_on_shutdown),
                                                     request->cancellable, NULL);
  request->timeout_source = g_timeout_source_new (self->timeout_msec);
  g_source_set_callback (request->timeout_source, request_timed_out, request, NULL);
  g_source_set_static_name (request->timeout_source, "[fiber] REST request timeout");
  g_source_attach (request->timeout_source, self->context);

  self->n_pending++;
  soup_session_send_and_read_async (self->session, request->msg,
                                    G_PRIORITY_DEFAULT, request->cancellable,
                                    request_sent, g_steal_pointer (&task));
}

FiberRestReply *
_fiber_rest_client_call_finish (FiberRestClient  *self,
                                GAsyncResult     *result,
                                GError          **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) ==
                        _fiber_rest_client_call_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/* Blocking calls from other threads. */

typedef struct
{
  FiberRestClient *client;   /* unowned; the caller holds a reference */
  char            *method;
  char            *path;
  JsonNode        *body;

  GMutex           lock;
  GCond            cond;
  gboolean         done;
  FiberRestReply  *reply;
  GError          *error;
} SyncCall;

static void
sync_call_clear (gpointer data)
{
  SyncCall *call = data;

  g_free (call->method);
  g_free (call->path);
  g_clear_pointer (&call->body, json_node_unref);
  g_clear_pointer (&call->reply, _fiber_rest_reply_free);
  g_clear_error (&call->error);
  g_mutex_clear (&call->lock);
  g_cond_clear (&call->cond);
}

static void
sync_call_release (gpointer data)
{
  g_atomic_rc_box_release_full (data, sync_call_clear);
}

static void
sync_call_done (GObject      *source,
                GAsyncResult *result,
                gpointer      data)
{
  SyncCall *call = data;
  GError *error = NULL;
  FiberRestReply *reply = _fiber_rest_client_call_finish (call->client, result, &error);

  g_mutex_lock (&call->lock);
  call->reply = reply;
  call->error = error;
  call->done = TRUE;
  g_cond_broadcast (&call->cond);
  g_mutex_unlock (&call->lock);
  sync_call_release (call);
}

static gboolean
sync_call_start (gpointer data)
{
  SyncCall *call = data;

  _fiber_rest_client_call_async (call->client, call->method, call->path,
                                 call->body, sync_call_done,
                                 g_atomic_rc_box_acquire (call));
  return G_SOURCE_REMOVE;
}

FiberRestReply *
_fiber_rest_client_call (FiberRestClient  *self,
                         const char       *method,
                         const char       *path,
                         JsonNode         *body,
                         GError          **error)
{
  g_autoptr(FiberRestClient) hold = NULL;
  SyncCall *call;
  FiberRestReply *reply = NULL;
  gint64 deadline;

  g_return_val_if_fail (FIBER_IS_REST_CLIENT (self), NULL);
  g_return_val_if_fail (method != NULL && path != NULL && path[0] == '/', NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (g_main_context_is_owner (self->context))
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_FAILED,
                   "blocking %s request made on the client thread", self->service);
      return NULL;
    }

  hold = g_object_ref (self);
  call = g_atomic_rc_box_new0 (SyncCall);
  call->client = self;
  call->method = g_strdup (method);
  call->path = g_strdup (path);
  call->body = body != NULL ? json_node_ref (body) : NULL;
  g_mutex_init (&call->lock);
  g_cond_init (&call->cond);

  g_main_context_invoke_full (self->context, G_PRIORITY_DEFAULT,
                              sync_call_start, g_atomic_rc_box_acquire (call),
                              sync_call_release);

  deadline = g_get_monotonic_time () +
             ((gint64) self->timeout_msec + SYNC_GUARD_MSEC) * G_TIME_SPAN_MILLISECOND;
  g_mutex_lock (&call->lock);
  while (!call->done)
    if (!g_cond_wait_until (&call->cond, &call->lock, deadline))
      break;
  if (call->done)
    {
      reply = g_steal_pointer (&call->reply);
      if (call->error != NULL)
        g_propagate_error (error, g_steal_pointer (&call->error));
    }
  else
    g_set_error (error, FIBER_ERROR, FIBER_ERROR_BACKEND,
                 "%s at %s did not answer %s %s within %u ms",
                 self->service, self->location, method, path, self->timeout_msec);
  g_mutex_unlock (&call->lock);
  sync_call_release (call);
  return reply;
}

GSource *
_fiber_rest_client_add_timeout (FiberRestClient *self,
                                guint            interval_msec,
                                GSourceFunc      func,
                                gpointer         data,
                                GDestroyNotify   destroy)
{
  GSource *source;

  g_return_val_if_fail (FIBER_IS_REST_CLIENT (self), NULL);

  source = g_timeout_source_new (interval_msec);
  g_source_set_callback (source, func, data, destroy);
  g_source_set_static_name (source, "[fiber] REST monitor");
  g_source_attach (source, self->context);
  return source;
}

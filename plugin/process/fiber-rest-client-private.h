/* fiber-rest-client-private.h — internal: a JSON-over-HTTP client on its own thread
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* The reply of one request.  @status is the HTTP status; @body may be
 * empty but is never NULL. */
typedef struct
{
  guint   status;
  char   *reason;
  char   *content_type;
  GBytes *body;
} FiberRestReply;

void        _fiber_rest_reply_free        (FiberRestReply *reply);
/* Parses the body as JSON; NULL (and no error) when it is not JSON. */
JsonNode   *_fiber_rest_reply_get_json    (FiberRestReply *reply);
/* The body as text for error messages: trimmed, at most 200 bytes,
 * valid UTF-8. */
char       *_fiber_rest_reply_get_text    (FiberRestReply *reply);

/* Finds the service's own error message in a parsed reply body (NULL when
 * the body is not JSON); returns it (transfer full) or NULL. */
typedef char *(*FiberRestDetailsFunc) (JsonNode *root,
                                       gpointer  user_data);

/* Reads a reply the way the backends read their service's answers: a 2xx
 * reply whose body is a JSON object gives that object (transfer full).
 * Anything else is NULL with FIBER_ERROR_BACKEND, either
 *   "LABEL: WHAT: the reply is not a JSON object"       (2xx), or
 *   "LABEL: WHAT failed (HTTP STATUS REASON): DETAILS"
 * where DETAILS is what @details_func (may be NULL) finds in the body, else
 * the body as text, else "no details given".  @details_func is called for
 * every reply, so it can also record what it found (Slurm's error number). */
JsonNode   *_fiber_rest_reply_check       (FiberRestReply       *reply,
                                           const char           *label,
                                           const char           *what,
                                           FiberRestDetailsFunc  details_func,
                                           gpointer              details_data,
                                           GError              **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (FiberRestReply, _fiber_rest_reply_free)

#define FIBER_TYPE_REST_CLIENT (_fiber_rest_client_get_type ())

G_DECLARE_FINAL_TYPE (FiberRestClient, _fiber_rest_client, FIBER, REST_CLIENT, GObject)

/* A client for one HTTP service (slurmrestd, a Kubernetes API server).
 *
 * A libsoup 3 SoupSession may only be used from one thread, so the client
 * runs its own thread with its own GMainContext that owns the session;
 * every request is made there.  _fiber_rest_client_call() may be called
 * from any other thread and blocks until the reply, a transport error or
 * the request timeout; the *_async() variant and
 * _fiber_rest_client_add_timeout() are for code running on the client
 * thread (a backend's job monitor).
 *
 * @service names the peer in error messages ("slurmrestd").  @base_url is
 * `http://host:port` or `https://…` (request paths are appended to it);
 * with @socket_path the connection goes to that unix socket instead and
 * @base_url only supplies the Host header (`http://localhost`).
 * @ca_file, if set, is the only CA trusted for https.  Every failure to
 * talk to the peer is a FIBER_ERROR_BACKEND error naming @service. */
FiberRestClient *_fiber_rest_client_new            (const char       *service,
                                                    const char       *base_url,
                                                    const char       *socket_path,
                                                    const char       *ca_file,
                                                    guint             timeout_msec,
                                                    GError          **error);
/* Headers sent with every request; the *_file variant re-reads @path for
 * each request (rotated tokens) and sends @prefix + its trimmed contents. */
void             _fiber_rest_client_add_header     (FiberRestClient  *self,
                                                    const char       *name,
                                                    const char       *value);
void             _fiber_rest_client_add_header_file (FiberRestClient *self,
                                                    const char       *name,
                                                    const char       *prefix,
                                                    const char       *path);
const char      *_fiber_rest_client_get_service    (FiberRestClient  *self);
guint            _fiber_rest_client_get_timeout    (FiberRestClient  *self);

/* Blocking request from any thread but the client's.  @body, if not NULL,
 * is sent as application/json.  Returns the reply whatever its status;
 * NULL with FIBER_ERROR_BACKEND when there is no reply in time. */
FiberRestReply  *_fiber_rest_client_call           (FiberRestClient  *self,
                                                    const char       *method,
                                                    const char       *path,
                                                    JsonNode         *body,
                                                    GError          **error);

/* The same, on the client thread only.  The callback gets a NULL source
 * object (a pending request must not keep the client alive: its last
 * reference would then be dropped on its own thread). */
void             _fiber_rest_client_call_async     (FiberRestClient     *self,
                                                    const char          *method,
                                                    const char          *path,
                                                    JsonNode            *body,
                                                    GAsyncReadyCallback  callback,
                                                    gpointer             user_data);
FiberRestReply  *_fiber_rest_client_call_finish    (FiberRestClient  *self,
                                                    GAsyncResult     *result,
                                                    GError          **error);

/* Runs @func every @interval_msec on the client thread until it returns
 * G_SOURCE_REMOVE or the source is destroyed; returns the source (transfer
 * full) so that its owner can g_source_destroy() it from any thread. */
GSource         *_fiber_rest_client_add_timeout    (FiberRestClient  *self,
                                                    guint             interval_msec,
                                                    GSourceFunc       func,
                                                    gpointer          data,
                                                    GDestroyNotify    destroy);

/* Percent-encodes @text for a path segment or query value. */
char            *_fiber_rest_escape                (const char       *text);

/* The member @name of @object (which may be NULL) when it is an object, an
 * array or a string; NULL when it is missing or of another type. */
JsonObject      *_fiber_json_member_object         (JsonObject       *object,
                                                    const char       *name);
JsonArray       *_fiber_json_member_array          (JsonObject       *object,
                                                    const char       *name);
const char      *_fiber_json_member_string         (JsonObject       *object,
                                                    const char       *name);

G_END_DECLS

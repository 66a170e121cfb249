/* test-remote-pool.c — the `remote` pool type on a real one-node Slurm
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Workers are Slurm batch jobs submitted through slurmrestd; they connect
 * back over tcp:// on 127.0.0.1 with CURVE.  Like test-slurm-backend, the
 * program runs itself again under `scripts/slurm-cluster.sh run` when no
 * cluster is given (FIBER_SLURM_SOCKET unset); the script starts munged,
 * slurmctld, slurmd and two slurmrestd with all state in a fresh temporary
 * directory and stops every daemon by pid afterwards.  Without the Slurm
 * binaries every test is skipped.
 *
 * The worker jobs run this very program again (fiber_init() serves), so
 * the C tasks registered below run inside Slurm jobs.
 */

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <zmq.h>

#include <fiber.h>

#include "fiber-auth.h"
#include "fiber-init-private.h"
#include "fiber-message.h"
#include "fiber-process-pool-private.h"
#include "fiber-test-util.h"
#include "remote-test-util.h"

#define GUARD_MSEC 60000

/* ---- tasks (run in the worker jobs) -------------------------------------- */

/* (i) → i * i, after @user_data milliseconds. */
static GVariant *
task_square (GVariant      *args,
             GCancellable  *cancellable,
             gpointer       user_data,
             GError       **error)
{
  gint32 x;
  guint delay_ms = GPOINTER_TO_UINT (user_data);

  if (g_variant_is_of_type (args, G_VARIANT_TYPE_INT32))
    x = g_variant_get_int32 (args);
  else
    g_variant_get (args, "(i)", &x);
  if (delay_ms > 0)
    g_usleep (delay_ms * 1000);
  return g_variant_new_int32 (x * x);
}

/* The Slurm job id the task runs in ("" outside a job). */
static GVariant *
task_job_id (GVariant      *args,
             GCancellable  *cancellable,
             gpointer       user_data,
             GError       **error)
{
  const char *id = g_getenv ("SLURM_JOB_ID");

  return g_variant_new_string (id != NULL ? id : "");
}

/* The target of a FiberProcess on the Slurm backend: succeeds only when
 * the process' pid is the id of the job it runs in. */
static GVariant *
task_check_pid (GVariant      *args,
                GCancellable  *cancellable,
                gpointer       user_data,
                GError       **error)
{
  FiberProcess *me = fiber_current_process ();
  const char *id = g_getenv ("SLURM_JOB_ID");
  g_autofree char *pid = g_strdup_printf ("%" G_GINT64_FORMAT, fiber_process_get_pid (me));

  if (id == NULL || !g_str_equal (id, pid))
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_TASK_FAILED,
                   "pid %s is not the job id %s", pid, id != NULL ? id : "(none)");
      return NULL;
    }
  return g_variant_new_string (id);
}

/* ---- helpers ------------------------------------------------------------- */

/* The job ids squeue lists (any state it shows), sorted text. */
static char *
squeue_ids (void)
{
  g_autofree char *squeue = fiber_test_find_binary ("squeue");
  g_autofree char *out = NULL;
  g_autoptr(GError) error = NULL;
  const char *argv[] = { squeue, "-h", "-o", "%i", NULL };
  int status = 0;

  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL,
                NULL, NULL, &out, NULL, &status, &error);
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  return g_strdup (g_strstrip (out));
}

/* squeue may show a job for a moment while slurmctld records its end. */
static void
assert_queue_empty (void)
{
  gint64 deadline = g_get_monotonic_time () + 10 * G_TIME_SPAN_SECOND;
  g_autofree char *ids = squeue_ids ();

  while (*ids != '\0' && g_get_monotonic_time () < deadline)
    {
      g_usleep (50 * 1000);
      g_free (ids);
      ids = squeue_ids ();
    }
  g_assert_cmpstr (ids, ==, "");
}

static GVariant *
int_array (guint n)
{
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE ("ai"));
  for (guint i = 0; i < n; i++)
    g_variant_builder_add (&b, "i", (gint32) i);
  return g_variant_builder_end (&b);
}

static void
assert_squares (GVariant *out,
                guint     n)
{
  g_assert_nonnull (out);
  g_assert_cmpuint (g_variant_n_children (out), ==, n);
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GVariant) boxed = g_variant_get_child_value (out, i);
      g_autoptr(GVariant) value = g_variant_get_variant (boxed);

      g_assert_true (g_variant_is_of_type (value, G_VARIANT_TYPE_INT32));
      g_assert_cmpint (g_variant_get_int32 (value), ==, (gint32) (i * i));
    }
}

/* The settings a `remote` pool reads: the Slurm backend over the
 * rest_auth/local unix socket.  GSETTINGS_BACKEND=memory in tests. */
static void
configure_settings (void)
{
  g_autoptr(GSettings) settings = g_settings_new ("org.fiberglib.Fiber");

  g_assert_true (g_settings_set_string (settings, "remote-backend", "slurm"));
  g_assert_true (g_settings_set_string (settings, "slurm-socket",
                                        g_getenv ("FIBER_SLURM_SOCKET")));
  g_assert_true (g_settings_set_uint (settings, "max-retries", 3));
}

static FiberPool *
new_remote_pool (guint processes)
{
  g_autoptr(GError) error = NULL;
  FiberPool *pool;

  pool = fiber_pool_new ("remote", processes, &error);
  g_assert_no_error (error);
  g_assert_nonnull (pool);
  return pool;
}

static void
close_and_join (FiberPool *pool)
{
  g_autoptr(GError) error = NULL;

  fiber_pool_close (pool);
  g_assert_true (fiber_pool_join (pool, GUARD_MSEC, &error));
  g_assert_no_error (error);
}

static GArray *
worker_pids (FiberPool *pool)
{
  return _fiber_process_pool_list_worker_pids (FIBER_PROCESS_POOL (pool));
}

static gboolean
array_has (GArray *pids,
           gint64  pid)
{
  for (guint i = 0; i < pids->len; i++)
    if (g_array_index (pids, gint64, i) == pid)
      return TRUE;
  return FALSE;
}

/* ---- a backend that records what the pool asks for ------------------------ */

/* Wraps a real backend.  It keeps the spec of every job, and can start a
 * stand-in (`sleep`) instead of the worker for one job, so that the test
 * can play that worker with its one-time token. */
#define TEST_TYPE_RECORDING_BACKEND (test_recording_backend_get_type ())
G_DECLARE_FINAL_TYPE (TestRecordingBackend, test_recording_backend,
                      TEST, RECORDING_BACKEND, GObject)

struct _TestRecordingBackend
{
  GObject       parent_instance;
  FiberBackend *inner;
  GMutex        lock;
  GPtrArray    *specs;       /* FiberJobSpec */
  guint         stand_in;    /* 1-based job number that runs `sleep`, or 0 */
};

static void backend_iface_init (FiberBackendInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (TestRecordingBackend, test_recording_backend, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (FIBER_TYPE_BACKEND, backend_iface_init))

static const char *
recording_get_name (FiberBackend *backend)
{
  return fiber_backend_get_name (TEST_RECORDING_BACKEND (backend)->inner);
}

static gboolean
recording_is_remote (FiberBackend *backend)
{
  return fiber_backend_is_remote (TEST_RECORDING_BACKEND (backend)->inner);
}

static FiberJob *
recording_create_job (FiberBackend  *backend,
                      FiberJobSpec  *spec,
                      GError       **error)
{
  TestRecordingBackend *self = TEST_RECORDING_BACKEND (backend);
  g_autoptr(FiberJobSpec) sleeper = NULL;
  guint number;

  g_mutex_lock (&self->lock);
  g_ptr_array_add (self->specs, fiber_job_spec_ref (spec));
  number = self->specs->len;
  g_mutex_unlock (&self->lock);

  if (number == self->stand_in)
    {
      const char *argv[] = { "sleep", "300", NULL };

      sleeper = fiber_job_spec_new (argv);
      fiber_job_spec_set_name (sleeper, "fiber-test-stand-in");
      return fiber_backend_create_job (self->inner, sleeper, error);
    }
  return fiber_backend_create_job (self->inner, spec, error);
}

static gboolean
recording_refresh_job (FiberBackend *backend, FiberJob *job, GError **error)
{
  return fiber_backend_refresh_job (TEST_RECORDING_BACKEND (backend)->inner, job, error);
}

static gboolean
recording_wait_job (FiberBackend *backend, FiberJob *job, int timeout_msec, GError **error)
{
  return fiber_backend_wait_job (TEST_RECORDING_BACKEND (backend)->inner, job,
                                 timeout_msec, error);
}

static gboolean
recording_terminate_job (FiberBackend *backend, FiberJob *job, gboolean force, GError **error)
{
  return fiber_backend_terminate_job (TEST_RECORDING_BACKEND (backend)->inner, job,
                                      force, error);
}

static char *
recording_get_listen_address (FiberBackend *backend, GError **error)
{
  return fiber_backend_get_listen_address (TEST_RECORDING_BACKEND (backend)->inner, error);
}

static void
backend_iface_init (FiberBackendInterface *iface)
{
  iface->get_name = recording_get_name;
  iface->is_remote = recording_is_remote;
  iface->create_job = recording_create_job;
  iface->refresh_job = recording_refresh_job;
  iface->wait_job = recording_wait_job;
  iface->terminate_job = recording_terminate_job;
  iface->get_listen_address = recording_get_listen_address;
}

static void
test_recording_backend_finalize (GObject *object)
{
  TestRecordingBackend *self = TEST_RECORDING_BACKEND (object);

  g_clear_object (&self->inner);
  g_ptr_array_unref (self->specs);
  g_mutex_clear (&self->lock);
  G_OBJECT_CLASS (test_recording_backend_parent_class)->finalize (object);
}

static void
test_recording_backend_class_init (TestRecordingBackendClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = test_recording_backend_finalize;
}

static void
test_recording_backend_init (TestRecordingBackend *self)
{
  g_mutex_init (&self->lock);
  self->specs = g_ptr_array_new_with_free_func ((GDestroyNotify) fiber_job_spec_unref);
}

static FiberJobSpec *
recording_get_spec (TestRecordingBackend *self,
                    guint                 number)
{
  FiberJobSpec *spec = NULL;

  g_mutex_lock (&self->lock);
  if (number >= 1 && number <= self->specs->len)
    spec = fiber_job_spec_ref (g_ptr_array_index (self->specs, number - 1));
  g_mutex_unlock (&self->lock);
  return spec;
}

/* ---- a forged worker ----------------------------------------------------- */

typedef enum
{
  FORGED_NO_ANSWER,
  FORGED_WELCOME,
  FORGED_REJECT,
} ForgedOutcome;

/* Connects a DEALER to @endpoint (with CURVE when @server_key is set),
 * sends a HELLO for @token with a proof made with @authkey, and reports
 * what the pool answered within @wait_msec. */
static ForgedOutcome
forged_hello (const char *endpoint,
              const char *server_key,
              const char *token,
              GBytes     *authkey,
              GBytes     *nonce,
              int         wait_msec)
{
  void *ctx = zmq_ctx_new ();
  void *dealer = zmq_socket (ctx, ZMQ_DEALER);
  guint8 proof[FIBER_AUTH_PROOF_SIZE];
  g_autoptr(GBytes) frame = NULL;
  ForgedOutcome outcome = FORGED_NO_ANSWER;
  zmq_pollitem_t item = { .socket = dealer, .events = ZMQ_POLLIN };
  gsize key_size, nonce_size;
  const guint8 *key = g_bytes_get_data (authkey, &key_size);
  const guint8 *nonce_data = g_bytes_get_data (nonce, &nonce_size);
  int zero = 0;

  zmq_setsockopt (dealer, ZMQ_LINGER, &zero, sizeof zero);
  if (server_key != NULL)
    {
      g_autofree char *public_key = NULL;
      char *secret_key = NULL;
      g_autoptr(GError) error = NULL;

      g_assert_true (_fiber_auth_curve_keypair (&public_key, &secret_key, &error));
      g_assert_no_error (error);
      zmq_setsockopt (dealer, ZMQ_CURVE_SERVERKEY, server_key, strlen (server_key));
      zmq_setsockopt (dealer, ZMQ_CURVE_PUBLICKEY, public_key, strlen (public_key));
      zmq_setsockopt (dealer, ZMQ_CURVE_SECRETKEY, secret_key, strlen (secret_key));
      _fiber_auth_free_secret (secret_key);
    }
  g_assert_cmpint (zmq_connect (dealer, endpoint), ==, 0);

  _fiber_auth_compute_proof (key, key_size, nonce_data, nonce_size, token, proof);
  frame = _fiber_message_encode (FIBER_MESSAGE_HELLO,
                                 g_variant_new ("(sxs@ay)", token, (gint64) getpid (),
                                                "forged",
                                                g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE,
                                                                           proof, sizeof proof, 1)));
  /* Without a completed handshake the message never leaves; that is the
   * point, so do not block on it. */
  zmq_send (dealer, g_bytes_get_data (frame, NULL), g_bytes_get_size (frame), ZMQ_DONTWAIT);

  if (zmq_poll (&item, 1, wait_msec) > 0)
    {
      zmq_msg_t msg;

      zmq_msg_init (&msg);
      if (zmq_msg_recv (&msg, dealer, 0) > 0)
        {
          const char *data = zmq_msg_data (&msg);

          if (data[0] == FIBER_MESSAGE_WELCOME)
            outcome = FORGED_WELCOME;
          else if (data[0] == FIBER_MESSAGE_REJECT)
            outcome = FORGED_REJECT;
        }
      zmq_msg_close (&msg);
    }

  zmq_close (dealer);
  zmq_ctx_term (ctx);
  return outcome;
}

/* ---- tests --------------------------------------------------------------- */

/* A map of C tasks over a 2-worker remote pool: exact results, computed
 * in the pool's Slurm jobs (whose ids are the worker pids); the master
 * listens on tcp:// at 127.0.0.1.  close() leaves no job in squeue. */
static void
test_map (void)
{
  g_autoptr(FiberPool) pool = NULL;
  g_autoptr(GVariant) out = NULL;
  g_autoptr(GVariant) where = NULL;
  g_autoptr(GArray) pids = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) jobs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  GVariantBuilder b;
  const char *endpoint;

  if (fiber_test_skip_without_slurm ())
    return;

  configure_settings ();
  pool = new_remote_pool (2);
  g_assert_cmpstr (fiber_pool_get_pool_type (pool), ==, "remote");
  endpoint = _fiber_process_pool_get_endpoint (FIBER_PROCESS_POOL (pool));
  g_test_message ("endpoint %s", endpoint);
  g_assert_true (g_str_has_prefix (endpoint, "tcp://127.0.0.1:"));

  out = fiber_pool_map (pool, "remote.square", int_array (200), 1, &error);
  g_assert_no_error (error);
  assert_squares (out, 200);
  g_clear_pointer (&out, g_variant_unref);

  out = fiber_pool_map (pool, "remote.square", int_array (1000), 0, &error);
  g_assert_no_error (error);
  assert_squares (out, 1000);

  /* The tasks ran in the pool's jobs. */
  pids = worker_pids (pool);
  g_assert_cmpuint (pids->len, ==, 2);
  g_variant_builder_init (&b, G_VARIANT_TYPE ("ai"));
  for (guint i = 0; i < 20; i++)
    g_variant_builder_add (&b, "i", (gint32) i);
  where = fiber_pool_map (pool, "remote.job-id", g_variant_builder_end (&b), 1, &error);
  g_assert_no_error (error);
  for (gsize i = 0; i < g_variant_n_children (where); i++)
    {
      g_autoptr(GVariant) boxed = g_variant_get_child_value (where, i);
      g_autoptr(GVariant) id = g_variant_get_variant (boxed);
      guint64 job_id = 0;

      g_assert_true (g_ascii_string_to_unsigned (g_variant_get_string (id, NULL), 10, 1,
                                                 G_MAXINT64, &job_id, NULL));
      g_assert_true (array_has (pids, (gint64) job_id));
      g_hash_table_add (jobs, g_variant_dup_string (id, NULL));
    }
  g_test_message ("tasks ran in %u job(s)", g_hash_table_size (jobs));

  close_and_join (pool);
  assert_queue_empty ();
  fiber_test_assert_no_leaks (2000);
}

/* scancel of a worker job in the middle of a map: the job is replaced,
 * the items it held run again, and every result arrives exactly once. */
static void
test_scancel (void)
{
  g_autoptr(FiberPool) pool = NULL;
  g_autoptr(FiberMapResult) result = NULL;
  g_autoptr(GVariant) warm = NULL;
  g_autoptr(GArray) before = NULL;
  g_autoptr(GArray) after = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree gboolean *seen = g_new0 (gboolean, 120);
  gint64 victim;
  guint received = 0;
  gboolean replaced = FALSE;

  if (fiber_test_skip_without_slurm ())
    return;

  configure_settings ();
  pool = new_remote_pool (2);
  /* Both workers connected and serving. */
  warm = fiber_pool_map (pool, "remote.square", int_array (4), 1, &error);
  g_assert_no_error (error);
  before = worker_pids (pool);
  g_assert_cmpuint (before->len, ==, 2);
  victim = g_array_index (before, gint64, 0);

  /* 120 items of 25 ms on 2 workers: about 1.5 s of work. */
  result = fiber_pool_imap_unordered (pool, "remote.slow-square", int_array (120), 1, &error);
  g_assert_no_error (error);
  while (received < 120)
    {
      g_autoptr(GVariant) value = NULL;
      guint index = G_MAXUINT;

      g_assert_true (fiber_map_result_next (result, GUARD_MSEC, &index, &value, &error));
      g_assert_no_error (error);
      g_assert_cmpuint (index, <, 120);
      g_assert_false (seen[index]);
      seen[index] = TRUE;
      g_assert_cmpint (g_variant_get_int32 (value), ==, (gint32) (index * index));
      if (++received == 20)
        {
          g_test_message ("scancel %" G_GINT64_FORMAT " after %u results", victim, received);
          g_assert_true (fiber_test_scancel (victim));
        }
    }
  /* Nothing more: each result came exactly once. */
  g_assert_false (fiber_map_result_next (result, 0, NULL, NULL, &error));
  g_assert_no_error (error);
  for (guint i = 0; i < 120; i++)
    g_assert_true (seen[i]);

  /* A replacement job was submitted. */
  {
    gint64 deadline = g_get_monotonic_time () + GUARD_MSEC * G_TIME_SPAN_MILLISECOND;

    while (!replaced && g_get_monotonic_time () < deadline)
      {
        g_clear_pointer (&after, g_array_unref);
        after = worker_pids (pool);
        replaced = after->len == 2 && !array_has (after, victim);
        if (!replaced)
          g_usleep (50 * 1000);
      }
    g_assert_true (replaced);
  }

  close_and_join (pool);
  assert_queue_empty ();
  fiber_test_assert_no_leaks (2000);
}

/* terminate() while tasks run and jobs are still starting: every job the
 * pool submitted is cancelled. */
static void
test_terminate (void)
{
  g_autoptr(FiberPool) pool = NULL;
  g_autoptr(FiberMapResult) result = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *queued = NULL;
  gint64 deadline;

  if (fiber_test_skip_without_slurm ())
    return;

  configure_settings ();
  pool = new_remote_pool (2);
  result = fiber_pool_map_async (pool, "remote.slow-square", int_array (400), 1,
                                 NULL, NULL, NULL);
  /* Terminate once the pool has submitted its jobs (the map itself runs
   * for seconds); the deadline is only a guard. */
  deadline = g_get_monotonic_time () + GUARD_MSEC * G_TIME_SPAN_MILLISECOND;
  queued = squeue_ids ();
  while (*queued == '\0' && g_get_monotonic_time () < deadline)
    {
      g_usleep (20 * 1000);
      g_free (queued);
      queued = squeue_ids ();
    }
  g_assert_cmpstr (queued, !=, "");
  fiber_pool_terminate (pool);
  value = fiber_apply_result_get (FIBER_APPLY_RESULT (result), GUARD_MSEC, &error);
  g_assert_null (value);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_CLOSED);
  assert_queue_empty ();
  fiber_test_assert_no_leaks (2000);
}

/* A FiberProcess on the Slurm backend: its pid is the job id (the target
 * checks that in the job), exit code 0. */
static void
test_process (void)
{
  g_autoptr(FiberBackend) backend = NULL;
  g_autoptr(FiberProcess) process = NULL;
  g_autoptr(GError) error = NULL;
  int exitcode = -1;

  if (fiber_test_skip_without_slurm ())
    return;

  backend = g_object_new (FIBER_TYPE_SLURM_BACKEND,
                          "socket", g_getenv ("FIBER_SLURM_SOCKET"),
                          "standard-error", g_getenv ("FIBER_TEST_JOB_STDERR"), NULL);
  process = fiber_process_new ("remote.check-pid", NULL);
  fiber_process_set_backend (process, backend);
  g_assert_cmpint (fiber_process_get_pid (process), ==, 0);
  g_assert_true (fiber_process_start (process, &error));
  g_assert_no_error (error);
  g_assert_cmpint (fiber_process_get_pid (process), >, 0);
  g_assert_true (fiber_process_join (process, GUARD_MSEC));
  g_assert_true (fiber_process_get_exitcode (process, &exitcode));
  g_assert_cmpint (exitcode, ==, 0);
  assert_queue_empty ();
  fiber_test_assert_no_leaks (2000);
}

/* The workflow config with JWT over http://: the right token works; a
 * wrong one is FIBER_ERROR_BACKEND carrying Slurm's own message. */
static void
test_jwt_config (void)
{
  g_autoptr(FiberPool) pool = NULL;
  g_autoptr(FiberPool) refused = NULL;
  g_autoptr(GVariant) out = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *good = NULL;
  g_autofree char *wrong = NULL;
  const char *url = g_getenv ("FIBER_SLURM_URL");

  if (fiber_test_skip_without_slurm ())
    return;

  good = g_strdup_printf ("{\"pool_type\": \"remote\", \"processes\": 1,"
                          " \"backend\": {\"name\": \"slurm\", \"url\": \"%s\","
                          " \"user\": \"root\", \"token\": \"%s\", \"time_limit\": 10}}",
                          url, g_getenv ("FIBER_SLURM_TOKEN"));
  pool = fiber_pool_new_from_config_string (good, -1, &error);
  g_assert_no_error (error);
  out = fiber_pool_map (pool, "remote.square", int_array (10), 1, &error);
  g_assert_no_error (error);
  assert_squares (out, 10);
  close_and_join (pool);

  wrong = g_strdup_printf ("{\"pool_type\": \"remote\", \"processes\": 1,"
                           " \"backend\": {\"name\": \"slurm\", \"url\": \"%s\","
                           " \"user\": \"root\","
                           " \"token\": \"eyJhbGciOiJIUzI1NiJ9.e30.not-a-valid-signature\"}}",
                           url);
  refused = fiber_pool_new_from_config_string (wrong, -1, &error);
  g_assert_null (refused);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_BACKEND);
  g_test_message ("wrong JWT: %s", error->message);
  /* Slurm's words from the reply's errors[] list. */
  g_assert_nonnull (strstr (error->message, "Slurm error"));

  assert_queue_empty ();
  fiber_test_assert_no_leaks (2000);
}

/* slurmrestd stopped (SIGSTOP): creating a remote pool fails with a clear
 * FIBER_ERROR_BACKEND error within the configured request timeout. */
static void
test_daemon_stopped (void)
{
  g_autoptr(FiberPool) pool = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *config = NULL;
  gint64 start, elapsed;
  GPid pid;

  if (fiber_test_skip_without_slurm ())
    return;

  pid = fiber_test_env_pid ("SLURMRESTD_JWT_PID");
  config = g_strdup_printf ("{\"pool_type\": \"remote\", \"processes\": 2,"
                            " \"backend\": {\"name\": \"slurm\", \"url\": \"%s\","
                            " \"user\": \"root\", \"token\": \"%s\","
                            " \"request_timeout\": 1000}}",
                            g_getenv ("FIBER_SLURM_URL"), g_getenv ("FIBER_SLURM_TOKEN"));

  g_assert_cmpint (kill (pid, SIGSTOP), ==, 0);
  start = g_get_monotonic_time ();
  pool = fiber_pool_new_from_config_string (config, -1, &error);
  elapsed = g_get_monotonic_time () - start;
  g_assert_cmpint (kill (pid, SIGCONT), ==, 0);

  g_assert_null (pool);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_BACKEND);
  g_test_message ("slurmrestd stopped: %s (after %" G_GINT64_FORMAT " ms)",
                  error->message, elapsed / 1000);
  g_assert_nonnull (strstr (error->message, "slurmrestd"));
  g_assert_nonnull (strstr (error->message, "1000 ms"));
  g_assert_cmpint (elapsed, <, 10 * G_TIME_SPAN_SECOND);

  assert_queue_empty ();
  fiber_test_assert_no_leaks (2000);
}

/* The pool's tcp:// endpoint refuses a peer without the server's CURVE
 * key (no handshake: nothing reaches the pool), and, with the key, a
 * HELLO whose one-time token is unknown or already used, or whose proof
 * is not made with the authkey.  The same HELLO with the right key, token
 * and authkey is welcomed, so the refusals are for those reasons alone. */
static void
test_refuse_peers (void)
{
  g_autoptr(TestRecordingBackend) backend = NULL;
  g_autoptr(FiberPool) pool = NULL;
  g_autoptr(FiberJobSpec) first = NULL;
  g_autoptr(FiberJobSpec) second = NULL;
  g_autoptr(GVariant) out = NULL;
  g_autoptr(GBytes) authkey = NULL;
  g_autoptr(GBytes) wrong_authkey = NULL;
  g_autoptr(GBytes) nonce = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *other_public = NULL;
  char *other_secret = NULL;
  const char *endpoint, *server_key, *token, *used_token;
  guint8 random_token[16];
  g_autofree char *random_hex = NULL;

  if (fiber_test_skip_without_slurm ())
    return;

  backend = g_object_new (TEST_TYPE_RECORDING_BACKEND, NULL);
  backend->inner = g_object_new (FIBER_TYPE_SLURM_BACKEND,
                                 "socket", g_getenv ("FIBER_SLURM_SOCKET"), NULL);
  backend->stand_in = 2;
  pool = g_initable_new (FIBER_TYPE_PROCESS_POOL, NULL, &error,
                         "processes", 2, "backend", backend, "max-retries", 0, NULL);
  g_assert_no_error (error);

  /* Worker 1 is real: it serves. */
  out = fiber_pool_map (pool, "remote.square", int_array (10), 1, &error);
  g_assert_no_error (error);
  assert_squares (out, 10);

  first = recording_get_spec (backend, 1);
  second = recording_get_spec (backend, 2);
  g_assert_nonnull (first);
  g_assert_nonnull (second);
  endpoint = fiber_job_spec_getenv (second, FIBER_ENV_WORKER_ENDPOINT);
  server_key = fiber_job_spec_getenv (second, FIBER_ENV_CURVE_SERVERKEY);
  token = fiber_job_spec_getenv (second, FIBER_ENV_WORKER_ID);
  used_token = fiber_job_spec_getenv (first, FIBER_ENV_WORKER_ID);
  g_assert_true (g_str_has_prefix (endpoint, "tcp://127.0.0.1:"));
  g_assert_true (_fiber_auth_z85_key_is_valid (server_key));
  g_assert_cmpstr (token, !=, used_token);
  authkey = _fiber_auth_hex_decode (fiber_job_spec_getenv (second, FIBER_ENV_AUTHKEY), &error);
  g_assert_no_error (error);
  nonce = _fiber_auth_hex_decode (fiber_job_spec_getenv (second, FIBER_ENV_NONCE), &error);
  g_assert_no_error (error);
  wrong_authkey = g_bytes_new_static ("not the authkey", 15);
  g_assert_true (_fiber_auth_random_bytes (random_token, sizeof random_token, NULL));
  random_hex = _fiber_auth_hex_encode (random_token, sizeof random_token);
  g_assert_true (_fiber_auth_curve_keypair (&other_public, &other_secret, NULL));
  _fiber_auth_free_secret (other_secret);

  /* No CURVE, or another server key: the handshake fails, no answer. */
  g_assert_cmpint (forged_hello (endpoint, NULL, token, authkey, nonce, 1500),
                   ==, FORGED_NO_ANSWER);
  g_assert_cmpint (forged_hello (endpoint, other_public, token, authkey, nonce, 1500),
                   ==, FORGED_NO_ANSWER);
  /* The right key, but an unknown token, a used one, a wrong authkey. */
  g_assert_cmpint (forged_hello (endpoint, server_key, random_hex, authkey, nonce, GUARD_MSEC),
                   ==, FORGED_REJECT);
  g_assert_cmpint (forged_hello (endpoint, server_key, used_token, authkey, nonce, GUARD_MSEC),
                   ==, FORGED_REJECT);
  g_assert_cmpint (forged_hello (endpoint, server_key, token, wrong_authkey, nonce, GUARD_MSEC),
                   ==, FORGED_REJECT);
  /* Everything right: welcomed, once. */
  g_assert_cmpint (forged_hello (endpoint, server_key, token, authkey, nonce, GUARD_MSEC),
                   ==, FORGED_WELCOME);
  g_assert_cmpint (forged_hello (endpoint, server_key, token, authkey, nonce, GUARD_MSEC),
                   ==, FORGED_REJECT);

  /* The pool kept working with its real worker. */
  g_clear_pointer (&out, g_variant_unref);
  out = fiber_pool_map (pool, "remote.square", int_array (10), 1, &error);
  g_assert_no_error (error);
  assert_squares (out, 10);

  fiber_pool_terminate (pool);
  assert_queue_empty ();
  fiber_test_assert_no_leaks (2000);
}

/* `fiber map -t remote --backend slurm`: the CLI's pool runs the command
 * lines in Slurm jobs, configured by the settings (a keyfile here). */
static void
test_cli (void)
{
  g_autofree char *config_home = NULL;
  g_autofree char *settings_dir = NULL;
  g_autofree char *keyfile = NULL;
  g_autofree char *contents = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_auto(GStrv) envp = g_get_environ ();
  g_auto(GStrv) lines = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) process = NULL;
  const char *cli = g_getenv ("FIBER_CLI");
  const char *argv[] = {
    cli, "map", "-t", "remote", "--backend", "slurm", "-j", "2", "--",
    "sh", "-c", "echo \"$SLURM_JOB_ID:$0\"", "{}", NULL
  };

  if (fiber_test_skip_without_slurm ())
    return;
  g_assert_nonnull (cli);

  config_home = g_dir_make_tmp ("fiber-cli-XXXXXX", &error);
  g_assert_no_error (error);
  settings_dir = g_build_filename (config_home, "glib-2.0", "settings", NULL);
  g_assert_cmpint (g_mkdir_with_parents (settings_dir, 0700), ==, 0);
  keyfile = g_build_filename (settings_dir, "keyfile", NULL);
  contents = g_strdup_printf ("[org/fiberglib/Fiber]\nslurm-socket='%s'\n",
                              g_getenv ("FIBER_SLURM_SOCKET"));
  g_assert_true (g_file_set_contents (keyfile, contents, -1, &error));
  envp = g_environ_setenv (envp, "GSETTINGS_BACKEND", "keyfile", TRUE);
  envp = g_environ_setenv (envp, "XDG_CONFIG_HOME", config_home, TRUE);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE |
                                        G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                        G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_subprocess_launcher_set_environ (launcher, envp);
  process = g_subprocess_launcher_spawnv (launcher, argv, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_communicate_utf8 (process, "1\n2\n3\n", NULL, &out, &err, &error));
  g_assert_no_error (error);
  if (g_subprocess_get_exit_status (process) != 0)
    g_test_message ("fiber map said: %s", err);
  g_assert_cmpint (g_subprocess_get_exit_status (process), ==, 0);

  lines = g_strsplit (g_strstrip (out), "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, 3);
  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *suffix = g_strdup_printf (":%u", i + 1);
      guint64 job = 0;
      g_auto(GStrv) parts = g_strsplit (lines[i], ":", 2);

      g_assert_true (g_str_has_suffix (lines[i], suffix));
      /* Each line ran in a Slurm job. */
      g_assert_true (g_ascii_string_to_unsigned (parts[0], 10, 1, G_MAXINT64, &job, NULL));
    }

  g_unlink (keyfile);
  g_rmdir (settings_dir);
  *strrchr (settings_dir, '/') = '\0';
  g_rmdir (settings_dir);
  g_rmdir (config_home);
  assert_queue_empty ();
  fiber_test_assert_no_leaks (2000);
}

int
main (int    argc,
      char **argv)
{
  int ret;

  fiber_task_register ("remote.square", task_square, NULL, NULL);
  fiber_task_register ("remote.slow-square", task_square, GUINT_TO_POINTER (25), NULL);
  fiber_task_register ("remote.job-id", task_job_id, NULL, NULL);
  fiber_task_register ("remote.check-pid", task_check_pid, NULL, NULL);
  fiber_init (&argc, &argv, NULL);

  if (!fiber_test_slurm_init ("test-remote-pool", argc, argv))
    return 1;

  /* Tokens are given explicitly; unset before any thread. */
  g_unsetenv ("SLURM_JWT");
  fiber_test_init_environment ();
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/remote-pool/map", test_map);
  g_test_add_func ("/remote-pool/scancel", test_scancel);
  g_test_add_func ("/remote-pool/terminate", test_terminate);
  g_test_add_func ("/remote-pool/process", test_process);
  g_test_add_func ("/remote-pool/jwt-config", test_jwt_config);
  g_test_add_func ("/remote-pool/daemon-stopped", test_daemon_stopped);
  g_test_add_func ("/remote-pool/refuse-peers", test_refuse_peers);
  g_test_add_func ("/remote-pool/cli", test_cli);

  ret = g_test_run ();
  fiber_test_cleanup_environment ();
  fiber_test_slurm_cleanup ();
  return ret;
}

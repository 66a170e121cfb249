/* test-slurm-backend.c — FiberSlurmBackend against a real one-node Slurm
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Needs the Slurm daemons (slurmctld, slurmd, slurmrestd, munged).  When
 * started without a cluster, the program runs itself again under
 * `scripts/slurm-cluster.sh run`, which starts a private cluster on
 * 127.0.0.1, exports its cluster.env (SLURM_CONF, FIBER_SLURM_SOCKET,
 * FIBER_SLURM_URL, FIBER_SLURM_TOKEN, the daemons' pids) and stops every
 * daemon by pid when the tests end, also when they fail.  Without the
 * binaries every test is skipped.
 */

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <fiber.h>

#include "fiber-test-util.h"
#include "remote-test-util.h"

#define JOB_TIMEOUT_MSEC 60000

static FiberBackend *
socket_backend (void)
{
  const char *socket = g_getenv ("FIBER_SLURM_SOCKET");

  g_assert_nonnull (socket);
  return g_object_new (FIBER_TYPE_SLURM_BACKEND,
                       "socket", socket,
                       "request-timeout", 10000,
                       "listen-address", "127.0.0.1",
                       NULL);
}

static FiberJob *
submit (FiberBackend       *backend,
        const char * const *argv)
{
  g_autoptr(FiberJobSpec) spec = fiber_job_spec_new (argv);
  g_autoptr(GError) error = NULL;
  FiberJob *job;

  fiber_job_spec_set_name (spec, "fiber-test");
  job = fiber_backend_create_job (backend, spec, &error);
  g_assert_no_error (error);
  g_assert_nonnull (job);
  return job;
}

static char *
squeue_job (gint64 id)
{
  g_autofree char *id_text = g_strdup_printf ("%" G_GINT64_FORMAT, id);
  g_autofree char *out = NULL;
  g_autofree char *squeue = fiber_test_find_binary ("squeue");
  const char *argv[] = { squeue, "-h", "-j", id_text, "-o", "%i %T", NULL };
  g_autoptr(GError) error = NULL;
  int status = 0;

  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL,
                NULL, NULL, &out, NULL, &status, &error);
  g_assert_no_error (error);
  return g_strdup (g_strstrip (out));
}

/* The daemons are not our children: watch /proc. */
static gboolean
process_exists (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/stat", (int) pid);
  g_autofree char *contents = NULL;
  const char *p;

  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return FALSE;
  p = strrchr (contents, ')');
  return p != NULL && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

/* A job that exits 3 ends FAILED with exit code 3 (Slurm reports the raw
 * wait status 768); its fd becomes readable when it ends. */
static void
test_exit_code (void)
{
  g_autoptr(FiberBackend) backend = NULL;
  g_autoptr(FiberJob) job = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *version = NULL;
  const char *argv[] = { "/bin/sh", "-c", "sleep 0.5; exit 3", NULL };
  int exitcode = 12345;

  if (fiber_test_skip_without_slurm ())
    return;

  backend = socket_backend ();
  g_assert_cmpstr (fiber_backend_get_name (backend), ==, "slurm");
  g_assert_true (fiber_backend_is_remote (backend));
  job = submit (backend, argv);
  g_assert_cmpint (fiber_job_get_pid (job), >, 0);
  g_assert_cmpint (fiber_job_get_fd (job), >=, 0);
  version = fiber_slurm_backend_dup_api_version (FIBER_SLURM_BACKEND (backend));
  g_assert_nonnull (version);
  g_test_message ("slurmrestd OpenAPI %s, job %s", version, fiber_job_get_id (job));

  /* The fd is what callers poll: readable once the job ended, not before. */
  if (!fiber_job_has_ended (job))
    g_assert_false (fiber_test_fd_readable (fiber_job_get_fd (job), 0));
  g_assert_true (fiber_test_fd_readable (fiber_job_get_fd (job), JOB_TIMEOUT_MSEC));
  g_assert_true (fiber_job_has_ended (job));
  g_assert_true (fiber_backend_wait_job (backend, job, 0, &error));
  g_assert_no_error (error);
  g_assert_cmpint (fiber_job_get_state (job), ==, FIBER_JOB_STATE_FAILED);
  g_assert_true (fiber_job_get_exitcode (job, &exitcode));
  g_assert_cmpint (exitcode, ==, 3);
  /* Refreshing an ended job changes nothing. */
  g_assert_true (fiber_backend_refresh_job (backend, job, &error));
  g_assert_no_error (error);
  g_assert_cmpint (fiber_job_get_state (job), ==, FIBER_JOB_STATE_FAILED);

  fiber_test_assert_no_leaks (2000);
}

/* A successful job: the spec's and the backend's variables and the working
 * directory reach the job; it ends COMPLETED with 0. */
static void
test_environment (void)
{
  g_autoptr(FiberBackend) backend = NULL;
  g_autoptr(FiberJobSpec) spec = NULL;
  g_autoptr(FiberJob) job = NULL;
  g_autoptr(GError) error = NULL;
  const char *extra[] = { "FIBER_TEST_EXTRA=from backend", "FIBER_TEST_BOTH=backend", NULL };
  const char *argv[] = {
    "/bin/sh", "-c",
    "[ \"$FIBER_TEST_SPEC\" = \"it's spec\" ] || exit 11; "
    "[ \"$FIBER_TEST_EXTRA\" = \"from backend\" ] || exit 12; "
    "[ \"$FIBER_TEST_BOTH\" = spec ] || exit 13; "
    "[ \"$(pwd)\" = / ] || exit 14; "
    "[ -n \"$PATH\" ] || exit 15; "
    "exit 0",
    NULL
  };
  int exitcode = -1;

  if (fiber_test_skip_without_slurm ())
    return;

  backend = socket_backend ();
  g_object_set (backend, "environment", extra, "working-directory", "/", NULL);
  spec = fiber_job_spec_new (argv);
  fiber_job_spec_setenv (spec, "FIBER_TEST_SPEC", "it's spec");
  fiber_job_spec_setenv (spec, "FIBER_TEST_BOTH", "spec");
  job = fiber_backend_create_job (backend, spec, &error);
  g_assert_no_error (error);

  g_assert_true (fiber_backend_wait_job (backend, job, JOB_TIMEOUT_MSEC, &error));
  g_assert_no_error (error);
  g_assert_true (fiber_job_get_exitcode (job, &exitcode));
  g_assert_cmpint (exitcode, ==, 0);
  g_assert_cmpint (fiber_job_get_state (job), ==, FIBER_JOB_STATE_COMPLETED);

  fiber_test_assert_no_leaks (2000);
}

/* A running job, terminated: CANCELLED, and gone from squeue. */
static void
test_terminate (void)
{
  g_autoptr(FiberBackend) backend = NULL;
  g_autoptr(FiberJob) job = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *queued = NULL;
  g_autofree char *after = NULL;
  const char *argv[] = { "sleep", "60", NULL };
  int exitcode = 0;

  if (fiber_test_skip_without_slurm ())
    return;

  backend = socket_backend ();
  job = submit (backend, argv);
  fiber_test_wait_for_job_state (job, FIBER_JOB_STATE_RUNNING, JOB_TIMEOUT_MSEC);
  queued = squeue_job (fiber_job_get_pid (job));
  g_assert_true (g_str_has_suffix (queued, "RUNNING"));
  g_assert_false (fiber_test_fd_readable (fiber_job_get_fd (job), 0));

  /* Not ended yet after a short wait. */
  g_assert_false (fiber_backend_wait_job (backend, job, 100, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_TIMEOUT);
  g_clear_error (&error);

  g_assert_true (fiber_backend_terminate_job (backend, job, FALSE, &error));
  g_assert_no_error (error);
  g_assert_true (fiber_backend_wait_job (backend, job, JOB_TIMEOUT_MSEC, &error));
  g_assert_no_error (error);
  g_assert_true (fiber_test_fd_readable (fiber_job_get_fd (job), 0));
  g_assert_cmpint (fiber_job_get_state (job), ==, FIBER_JOB_STATE_CANCELLED);
  g_assert_true (fiber_job_get_exitcode (job, &exitcode));
  g_assert_cmpint (exitcode, <, 0);
  after = squeue_job (fiber_job_get_pid (job));
  g_assert_cmpstr (after, ==, "");

  /* Terminating an ended job is a no-op. */
  g_assert_true (fiber_backend_terminate_job (backend, job, TRUE, &error));
  g_assert_no_error (error);

  fiber_test_assert_no_leaks (2000);
}

/* Several jobs at once, some forced: every one is seen to end. */
static void
test_many (void)
{
  g_autoptr(FiberBackend) backend = NULL;
  g_autoptr(GPtrArray) jobs = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GError) error = NULL;
  const char *short_argv[] = { "/bin/sh", "-c", "exit 0", NULL };
  const char *long_argv[] = { "sleep", "60", NULL };

  if (fiber_test_skip_without_slurm ())
    return;

  backend = socket_backend ();
  for (guint i = 0; i < 6; i++)
    g_ptr_array_add (jobs, submit (backend, i % 2 == 0 ? short_argv : long_argv));
  for (guint i = 1; i < jobs->len; i += 2)
    {
      g_assert_true (fiber_backend_terminate_job (backend, g_ptr_array_index (jobs, i),
                                                  TRUE, &error));
      g_assert_no_error (error);
    }
  for (guint i = 0; i < jobs->len; i++)
    {
      FiberJob *job = g_ptr_array_index (jobs, i);

      g_assert_true (fiber_backend_wait_job (backend, job, JOB_TIMEOUT_MSEC, &error));
      g_assert_no_error (error);
      g_assert_cmpint (fiber_job_get_state (job), ==,
                       i % 2 == 0 ? FIBER_JOB_STATE_COMPLETED : FIBER_JOB_STATE_CANCELLED);
    }

  fiber_test_assert_no_leaks (2000);
}

/* JWT over TCP: the right token works; a wrong or missing one is a
 * FIBER_ERROR_BACKEND error with what Slurm said. */
static void
test_jwt (void)
{
  g_autoptr(FiberBackend) good = NULL;
  g_autoptr(FiberBackend) wrong = NULL;
  g_autoptr(FiberBackend) missing = NULL;
  g_autoptr(FiberJob) job = NULL;
  g_autoptr(FiberJobSpec) spec = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *listen = NULL;
  const char *url = g_getenv ("FIBER_SLURM_URL");
  const char *token = g_getenv ("FIBER_SLURM_TOKEN");
  const char *argv[] = { "/bin/sh", "-c", "exit 0", NULL };
  int exitcode = -1;

  if (fiber_test_skip_without_slurm ())
    return;
  g_assert_nonnull (url);
  g_assert_nonnull (token);
  spec = fiber_job_spec_new (argv);

  good = g_object_new (FIBER_TYPE_SLURM_BACKEND, "url", url, "user", "root",
                       "token", token, NULL);
  job = fiber_backend_create_job (good, spec, &error);
  g_assert_no_error (error);
  g_assert_true (fiber_backend_wait_job (good, job, JOB_TIMEOUT_MSEC, &error));
  g_assert_no_error (error);
  g_assert_true (fiber_job_get_exitcode (job, &exitcode));
  g_assert_cmpint (exitcode, ==, 0);
  /* slurmrestd on 127.0.0.1: the master is reached there too. */
  listen = fiber_backend_get_listen_address (good, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (listen, ==, "127.0.0.1");

  wrong = g_object_new (FIBER_TYPE_SLURM_BACKEND, "url", url, "user", "root",
                        "token", "eyJhbGciOiJIUzI1NiJ9.e30.not-a-valid-signature", NULL);
  g_assert_null (fiber_backend_create_job (wrong, spec, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_BACKEND);
  g_test_message ("wrong token: %s", error->message);
  g_assert_nonnull (strstr (error->message, "slurmrestd"));
  g_assert_nonnull (strstr (error->message, "HTTP 500"));
  /* Slurm's own words, from the reply's errors list. */
  g_assert_nonnull (strstr (error->message, "Slurm error"));
  g_clear_error (&error);

  /* main() unset SLURM_JWT, the backend's fallback token. */
  missing = g_object_new (FIBER_TYPE_SLURM_BACKEND, "url", url, "user", "root", NULL);
  g_assert_null (fiber_backend_create_job (missing, spec, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_BACKEND);
  g_test_message ("no token: %s", error->message);
  g_assert_nonnull (strstr (error->message, "HTTP 401"));
  g_assert_nonnull (strstr (error->message, "Authentication failure"));

  fiber_test_assert_no_leaks (2000);
}

/* Configuration mistakes are clear errors, not hangs. */
static void
test_bad_config (void)
{
  g_autoptr(FiberBackend) none = NULL;
  g_autoptr(FiberBackend) bad_url = NULL;
  g_autoptr(FiberBackend) bad_version = NULL;
  g_autoptr(FiberBackend) no_socket = NULL;
  g_autoptr(FiberJobSpec) spec = NULL;
  g_autoptr(GError) error = NULL;
  const char *argv[] = { "true", NULL };
  gint64 start;

  spec = fiber_job_spec_new (argv);

  none = g_object_new (FIBER_TYPE_SLURM_BACKEND, NULL);
  g_assert_null (fiber_backend_create_job (none, spec, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  bad_url = fiber_slurm_backend_new ("http://");
  g_assert_null (fiber_backend_create_job (bad_url, spec, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  if (!fiber_test_skip_without_slurm ())
    {
      bad_version = g_object_new (FIBER_TYPE_SLURM_BACKEND,
                                  "socket", g_getenv ("FIBER_SLURM_SOCKET"),
                                  "api-version", "v0.0.12", NULL);
      g_assert_null (fiber_backend_create_job (bad_version, spec, &error));
      g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
      g_clear_error (&error);
    }

  start = g_get_monotonic_time ();
  no_socket = fiber_slurm_backend_new ("unix:/nonexistent/slurmrestd.sock");
  g_assert_null (fiber_backend_create_job (no_socket, spec, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_BACKEND);
  g_test_message ("no socket: %s", error->message);
  g_assert_nonnull (strstr (error->message, "/nonexistent/slurmrestd.sock"));
  g_assert_cmpint (g_get_monotonic_time () - start, <, 10 * G_TIME_SPAN_SECOND);

  fiber_test_assert_no_leaks (2000);
}

/* A stuck slurmrestd (stopped with SIGSTOP) gives an error within the
 * request timeout, not a hang. */
static void
test_stuck_daemon (void)
{
  g_autoptr(FiberBackend) backend = NULL;
  g_autoptr(FiberJobSpec) spec = NULL;
  g_autoptr(GError) error = NULL;
  const char *argv[] = { "true", NULL };
  GPid pid;
  gint64 start, elapsed;

  if (fiber_test_skip_without_slurm ())
    return;

  pid = fiber_test_env_pid ("SLURMRESTD_JWT_PID");
  spec = fiber_job_spec_new (argv);
  backend = g_object_new (FIBER_TYPE_SLURM_BACKEND,
                          "url", g_getenv ("FIBER_SLURM_URL"),
                          "token", g_getenv ("FIBER_SLURM_TOKEN"),
                          "user", "root", "request-timeout", 1000, NULL);

  g_assert_cmpint (kill (pid, SIGSTOP), ==, 0);
  start = g_get_monotonic_time ();
  g_assert_null (fiber_backend_create_job (backend, spec, &error));
  elapsed = g_get_monotonic_time () - start;
  g_assert_cmpint (kill (pid, SIGCONT), ==, 0);

  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_BACKEND);
  g_test_message ("stuck slurmrestd: %s (after %" G_GINT64_FORMAT " ms)",
                  error->message, elapsed / 1000);
  g_assert_nonnull (strstr (error->message, "within 1000 ms"));
  g_assert_cmpint (elapsed, >=, 900 * G_TIME_SPAN_MILLISECOND);
  g_assert_cmpint (elapsed, <, 10 * G_TIME_SPAN_SECOND);

  fiber_test_assert_no_leaks (2000);
}

/* slurmrestd killed while a job runs: calls fail with a clear error within
 * the timeout; the job keeps its last known state.  Must run last: the
 * unix-socket slurmrestd stays down. */
static void
test_daemon_killed (void)
{
  g_autoptr(FiberBackend) backend = NULL;
  g_autoptr(FiberJob) job = NULL;
  g_autoptr(FiberJob) second = NULL;
  g_autoptr(FiberJobSpec) spec = NULL;
  g_autoptr(GError) error = NULL;
  const char *argv[] = { "sleep", "60", NULL };
  gint64 deadline, start;
  GPid pid;

  if (fiber_test_skip_without_slurm ())
    return;

  pid = fiber_test_env_pid ("SLURMRESTD_PID");
  backend = g_object_new (FIBER_TYPE_SLURM_BACKEND,
                          "socket", g_getenv ("FIBER_SLURM_SOCKET"),
                          "request-timeout", 2000, NULL);
  job = submit (backend, argv);
  fiber_test_wait_for_job_state (job, FIBER_JOB_STATE_RUNNING, JOB_TIMEOUT_MSEC);

  g_assert_cmpint (kill (pid, SIGTERM), ==, 0);
  deadline = g_get_monotonic_time () + 10 * G_TIME_SPAN_SECOND;
  while (process_exists (pid) && g_get_monotonic_time () < deadline)
    g_usleep (20 * 1000);
  if (process_exists (pid))
    kill (pid, SIGKILL);

  start = g_get_monotonic_time ();
  g_assert_false (fiber_backend_refresh_job (backend, job, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_BACKEND);
  g_test_message ("slurmrestd gone: %s", error->message);
  g_assert_nonnull (strstr (error->message, "slurmrestd"));
  g_clear_error (&error);

  spec = fiber_job_spec_new (argv);
  second = fiber_backend_create_job (backend, spec, &error);
  g_assert_null (second);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_BACKEND);
  g_clear_error (&error);

  g_assert_false (fiber_backend_terminate_job (backend, job, FALSE, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_BACKEND);
  g_clear_error (&error);
  g_assert_cmpint (g_get_monotonic_time () - start, <, 3 * 3 * G_TIME_SPAN_SECOND);

  /* The job is still known as running; the monitor's failed polls do
   * not invent an end. */
  g_usleep (600 * 1000);
  g_assert_false (fiber_job_has_ended (job));
  g_assert_cmpint (fiber_job_get_state (job), ==, FIBER_JOB_STATE_RUNNING);

  fiber_test_scancel (fiber_job_get_pid (job));
  fiber_test_assert_no_leaks (2000);
}

int
main (int    argc,
      char **argv)
{
  int ret;

  fiber_init (&argc, &argv, NULL);

  if (!fiber_test_slurm_init ("test-slurm-backend", argc, argv))
    return 1;

  /* The JWT tests give their tokens explicitly; unset before any thread. */
  g_unsetenv ("SLURM_JWT");
  fiber_test_init_environment ();
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/slurm-backend/exit-code", test_exit_code);
  g_test_add_func ("/slurm-backend/environment", test_environment);
  g_test_add_func ("/slurm-backend/terminate", test_terminate);
  g_test_add_func ("/slurm-backend/many", test_many);
  g_test_add_func ("/slurm-backend/jwt", test_jwt);
  g_test_add_func ("/slurm-backend/bad-config", test_bad_config);
  g_test_add_func ("/slurm-backend/stuck-daemon", test_stuck_daemon);
  /* Last: it kills the unix-socket slurmrestd. */
  g_test_add_func ("/slurm-backend/daemon-killed", test_daemon_killed);

  ret = g_test_run ();
  fiber_test_cleanup_environment ();
  fiber_test_slurm_cleanup ();
  return ret;
}

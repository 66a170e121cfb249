/* test-local-backend.c — FiberJobSpec, FiberJob and the local backend
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <fiber.h>
#include <errno.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fiber-test-util.h"

/* Guards only: a healthy run takes milliseconds. */
#define GUARD_MSEC 30000

/* Under valgrind posix_spawn() cannot report exec failures (its vfork
 * becomes a fork): the child exits with 127 instead. */
static gboolean
under_valgrind (void)
{
  const char *preload = g_getenv ("LD_PRELOAD");

  return preload != NULL && strstr (preload, "vgpreload") != NULL;
}

static int wait_exitcode (FiberJob *job);

static void
assert_spawn_fails (FiberJobSpec *spec,
                    const char   *in_message)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(FiberJob) job = NULL;

  job = fiber_backend_create_job (fiber_backend_get_default (), spec, &error);
  if (job != NULL && under_valgrind ())
    {
      g_assert_cmpint (wait_exitcode (job), ==, 127);
      return;
    }
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_BACKEND);
  g_assert_nonnull (strstr (error->message, in_message));
  g_assert_null (job);
}

static FiberJob *
spawn_spec (FiberJobSpec *spec)
{
  g_autoptr(GError) error = NULL;
  FiberJob *job;

  job = fiber_backend_create_job (fiber_backend_get_default (), spec, &error);
  g_assert_no_error (error);
  g_assert_nonnull (job);
  return job;
}

static FiberJob *
spawn_sh (const char *script,
          const char *arg)
{
  const char *argv[] = { "/bin/sh", "-c", script, "sh", arg, NULL };
  g_autoptr(FiberJobSpec) spec = fiber_job_spec_new (argv);

  return spawn_spec (spec);
}

static int
wait_exitcode (FiberJob *job)
{
  g_autoptr(GError) error = NULL;
  int exitcode = 12345;

  g_assert_true (fiber_backend_wait_job (fiber_backend_get_default (), job,
                                         GUARD_MSEC, &error));
  g_assert_no_error (error);
  g_assert_true (fiber_job_has_ended (job));
  g_assert_true (fiber_job_get_exitcode (job, &exitcode));
  return exitcode;
}

static void
test_backend_basics (void)
{
  FiberBackend *backend = fiber_backend_get_default ();
  g_autofree char *address = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (FIBER_IS_LOCAL_BACKEND (backend));
  g_assert_true (backend == fiber_backend_get_default ());
  g_assert_cmpstr (fiber_backend_get_name (backend), ==, "local");
  g_assert_false (fiber_backend_is_remote (backend));
  address = fiber_backend_get_listen_address (backend, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (address, ==, "127.0.0.1");

  fiber_test_assert_no_leaks (2000);
}

static void
test_spec (void)
{
  const char *argv[] = { "/bin/true", "a b", NULL };
  g_autoptr(FiberJobSpec) spec = fiber_job_spec_new (argv);
  g_autoptr(FiberJobSpec) ref = NULL;
  g_auto(GStrv) env = NULL;

  g_assert_cmpstrv (fiber_job_spec_get_argv (spec), argv);
  g_assert_null (fiber_job_spec_get_name (spec));
  g_assert_null (fiber_job_spec_get_cwd (spec));
  g_assert_false (fiber_job_spec_get_daemon (spec));
  g_assert_cmpuint (fiber_job_spec_get_cpus (spec), ==, 1);

  fiber_job_spec_setenv (spec, "ZED", "last");
  fiber_job_spec_setenv (spec, "ALPHA", "first");
  fiber_job_spec_setenv (spec, "GONE", NULL);
  fiber_job_spec_set_name (spec, "job");
  fiber_job_spec_set_cwd (spec, "/");
  fiber_job_spec_set_daemon (spec, TRUE);
  fiber_job_spec_set_cpus (spec, 0);

  g_assert_cmpstr (fiber_job_spec_getenv (spec, "ZED"), ==, "last");
  g_assert_null (fiber_job_spec_getenv (spec, "GONE"));
  g_assert_null (fiber_job_spec_getenv (spec, "UNSET"));
  env = fiber_job_spec_get_environment (spec);
  g_assert_cmpstrv (env, ((const char * const[]) { "ALPHA=first", "ZED=last", NULL }));
  g_assert_cmpstr (fiber_job_spec_get_name (spec), ==, "job");
  g_assert_cmpstr (fiber_job_spec_get_cwd (spec), ==, "/");
  g_assert_true (fiber_job_spec_get_daemon (spec));
  g_assert_cmpuint (fiber_job_spec_get_cpus (spec), ==, 1);

  ref = g_boxed_copy (FIBER_TYPE_JOB_SPEC, spec);
  g_assert_true (ref == spec);

  fiber_test_assert_no_leaks (2000);
}

static void
test_exit_status (void)
{
  g_autoptr(FiberJob) fail = spawn_sh ("exit 3", NULL);
  g_autoptr(FiberJob) ok = NULL;
  const char *path_argv[] = { "true", NULL };  /* no '/': PATH search */
  g_autoptr(FiberJobSpec) spec = fiber_job_spec_new (path_argv);
  g_autofree char *id = NULL;

  g_assert_cmpint (fiber_job_get_pid (fail), >, 0);
  id = g_strdup_printf ("%" G_GINT64_FORMAT, fiber_job_get_pid (fail));
  g_assert_cmpstr (fiber_job_get_id (fail), ==, id);
  g_assert_cmpint (wait_exitcode (fail), ==, 3);
  g_assert_cmpint (fiber_job_get_state (fail), ==, FIBER_JOB_STATE_FAILED);

  ok = spawn_spec (spec);
  g_assert_cmpint (wait_exitcode (ok), ==, 0);
  g_assert_cmpint (fiber_job_get_state (ok), ==, FIBER_JOB_STATE_COMPLETED);
  /* Reaped as soon as the wait returned: no zombie left. */
  g_assert_cmpuint (fiber_test_count_children (), ==, 0);

  fiber_test_assert_no_leaks (2000);
}

static void
test_signal (void)
{
  g_autoptr(FiberJob) job = spawn_sh ("kill -USR1 $$; sleep 5", NULL);

  g_assert_cmpint (wait_exitcode (job), ==, -SIGUSR1);
  g_assert_cmpint (fiber_job_get_state (job), ==, FIBER_JOB_STATE_FAILED);

  fiber_test_assert_no_leaks (2000);
}

static void
test_terminate (void)
{
  FiberBackend *backend = fiber_backend_get_default ();
  g_autoptr(FiberJob) job = spawn_sh ("exec sleep 60", NULL);
  g_autoptr(GError) error = NULL;
  int exitcode;

  g_assert_false (fiber_backend_wait_job (backend, job, 0, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_TIMEOUT);
  g_clear_error (&error);
  g_assert_true (fiber_backend_refresh_job (backend, job, &error));
  g_assert_no_error (error);
  g_assert_false (fiber_job_has_ended (job));
  g_assert_false (fiber_job_get_exitcode (job, &exitcode));
  g_assert_cmpint (fiber_job_get_state (job), ==, FIBER_JOB_STATE_RUNNING);

  g_assert_true (fiber_backend_terminate_job (backend, job, FALSE, &error));
  g_assert_no_error (error);
  g_assert_cmpint (wait_exitcode (job), ==, -SIGTERM);
  g_assert_cmpint (fiber_job_get_state (job), ==, FIBER_JOB_STATE_CANCELLED);

  /* Terminating an ended job is a no-op. */
  g_assert_true (fiber_backend_terminate_job (backend, job, TRUE, &error));
  g_assert_no_error (error);

  fiber_test_assert_no_leaks (2000);
}

static void
test_kill (void)
{
  FiberBackend *backend = fiber_backend_get_default ();
  /* Ignores SIGTERM: only SIGKILL stops it. */
  g_autoptr(FiberJob) job = spawn_sh ("trap '' TERM; exec sleep 60", NULL);
  g_autoptr(GError) error = NULL;

  g_assert_true (fiber_backend_terminate_job (backend, job, TRUE, &error));
  g_assert_no_error (error);
  g_assert_cmpint (wait_exitcode (job), ==, -SIGKILL);
  g_assert_cmpint (fiber_job_get_state (job), ==, FIBER_JOB_STATE_CANCELLED);

  fiber_test_assert_no_leaks (2000);
}

static void
test_cwd (void)
{
  const char *tmp = g_getenv ("TMPDIR");
  g_autofree char *dir = g_build_filename (tmp, "cwd-test", NULL);
  g_autofree char *missing = g_build_filename (tmp, "does-not-exist", NULL);
  g_autofree char *real = NULL;
  const char *argv[] = { "/bin/sh", "-c", "[ \"$(pwd -P)\" = \"$1\" ]", "sh", NULL, NULL };
  g_autoptr(FiberJobSpec) spec = NULL;
  g_autoptr(FiberJobSpec) bad = NULL;
  g_autoptr(FiberJob) job = NULL;

  g_assert_cmpint (g_mkdir (dir, 0700), ==, 0);
  real = realpath (dir, NULL);
  g_assert_nonnull (real);
  argv[4] = real;
  spec = fiber_job_spec_new (argv);
  fiber_job_spec_set_cwd (spec, dir);
  job = spawn_spec (spec);
  g_assert_cmpint (wait_exitcode (job), ==, 0);

  bad = fiber_job_spec_new (argv);
  fiber_job_spec_set_cwd (bad, missing);
  assert_spawn_fails (bad, missing);

  g_assert_cmpint (g_rmdir (dir), ==, 0);
  fiber_test_assert_no_leaks (2000);
}

static void
test_environment (void)
{
  const char *argv[] = {
    "/bin/sh", "-c",
    "[ \"$FIBER_TEST_SET\" = hello ] && [ \"$FIBER_TEST_INHERITED\" = kept ] && "
    "[ \"$FIBER_TEST_OVERRIDDEN\" = new ] && [ -z \"${FIBER_TEST_REMOVED+set}\" ]",
    NULL
  };
  g_autoptr(FiberJobSpec) spec = fiber_job_spec_new (argv);
  g_autoptr(FiberJob) job = NULL;

  /* main() set FIBER_TEST_INHERITED=kept, FIBER_TEST_OVERRIDDEN=old and
   * FIBER_TEST_REMOVED=present (before any thread existed). */
  fiber_job_spec_setenv (spec, "FIBER_TEST_SET", "hello");
  fiber_job_spec_setenv (spec, "FIBER_TEST_OVERRIDDEN", "new");
  fiber_job_spec_setenv (spec, "FIBER_TEST_REMOVED", NULL);
  job = spawn_spec (spec);
  g_assert_cmpint (wait_exitcode (job), ==, 0);

  fiber_test_assert_no_leaks (2000);
}

static void
test_spawn_failure (void)
{
  const char *missing[] = { "/nonexistent/fiber-test-program", NULL };
  const char *missing_in_path[] = { "fiber-test-no-such-program", NULL };
  /* A path with a '/' is run as is, never looked up in PATH. */
  const char *relative[] = { "./true", NULL };
  const char * const *cases[] = { missing, missing_in_path, relative };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(FiberJobSpec) spec = fiber_job_spec_new (cases[i]);

      fiber_job_spec_set_cwd (spec, "/");
      assert_spawn_fails (spec, cases[i][0]);
    }

  fiber_test_assert_no_leaks (2000);
}

static void
test_fd_readable_at_exit (void)
{
  g_autofree char *flag = g_build_filename (g_getenv ("TMPDIR"), "go", NULL);
  g_autoptr(FiberJob) job = spawn_sh ("while [ ! -e \"$1\" ]; do sleep 0.01; done", flag);
  g_autoptr(GError) error = NULL;
  int fd = fiber_job_get_fd (job);

  g_assert_cmpint (fd, >=, 0);
  /* Not readable while the child runs... */
  g_assert_false (fiber_test_fd_readable (fd, 0));
  g_assert_false (fiber_test_fd_readable (fd, 200));
  g_assert_false (fiber_job_has_ended (job));
  g_assert_true (fiber_test_pid_alive ((GPid) fiber_job_get_pid (job)));

  /* ...readable once it ended, and the exit code is there at once. */
  g_assert_true (g_file_set_contents (flag, "", 0, NULL));
  g_assert_true (fiber_test_fd_readable (fd, GUARD_MSEC));
  g_assert_true (fiber_backend_refresh_job (fiber_backend_get_default (), job, &error));
  g_assert_no_error (error);
  g_assert_true (fiber_job_has_ended (job));
  g_assert_cmpint (fiber_job_get_state (job), ==, FIBER_JOB_STATE_COMPLETED);
  /* It stays readable. */
  g_assert_true (fiber_test_fd_readable (fd, 0));

  g_unlink (flag);
  fiber_test_assert_no_leaks (2000);
}

static void
test_no_zombies (void)
{
  /* Jobs dropped while their child runs: the backend still reaps them. */
  for (guint i = 0; i < 5; i++)
    {
      g_autoptr(FiberJob) job = spawn_sh ("sleep 0.2", NULL);
      g_assert_false (fiber_job_has_ended (job));
    }

  /* A job dropped after its child ended but before anyone reaped it. */
  {
    g_autoptr(FiberJob) job = spawn_sh ("exit 0", NULL);
    g_assert_true (fiber_test_fd_readable (fiber_job_get_fd (job), GUARD_MSEC));
  }

  fiber_test_assert_no_leaks (5000);
}

static gpointer
spawn_many_thread (gpointer data)
{
  for (guint i = 0; i < 10; i++)
    {
      g_autoptr(FiberJob) job = spawn_sh ("exit $1", "7");
      g_assert_cmpint (wait_exitcode (job), ==, 7);
    }
  return NULL;
}

static void
test_threads (void)
{
  GThread *threads[4];

  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    threads[i] = g_thread_new ("spawner", spawn_many_thread, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    g_thread_join (threads[i]);

  fiber_test_assert_no_leaks (2000);
}

static gpointer
wait_thread (gpointer data)
{
  return GINT_TO_POINTER (wait_exitcode (data));
}

static void
test_concurrent_wait (void)
{
  /* Several threads wait for the same job; each sees it ended. */
  g_autoptr(FiberJob) job = spawn_sh ("sleep 0.1; exit 4", NULL);
  GThread *threads[3];

  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    threads[i] = g_thread_new ("waiter", wait_thread, job);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    g_assert_cmpint (GPOINTER_TO_INT (g_thread_join (threads[i])), ==, 4);

  fiber_test_assert_no_leaks (2000);
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GError) error = NULL;
  int ret;

  if (!fiber_init (&argc, &argv, &error))
    g_error ("fiber_init: %s", error->message);
  fiber_test_init_environment ();
  g_test_init (&argc, &argv, NULL);
  g_setenv ("FIBER_TEST_INHERITED", "kept", TRUE);
  g_setenv ("FIBER_TEST_OVERRIDDEN", "old", TRUE);
  g_setenv ("FIBER_TEST_REMOVED", "present", TRUE);

  g_test_add_func ("/local-backend/basics", test_backend_basics);
  g_test_add_func ("/local-backend/spec", test_spec);
  g_test_add_func ("/local-backend/exit-status", test_exit_status);
  g_test_add_func ("/local-backend/signal", test_signal);
  g_test_add_func ("/local-backend/terminate", test_terminate);
  g_test_add_func ("/local-backend/kill", test_kill);
  g_test_add_func ("/local-backend/cwd", test_cwd);
  g_test_add_func ("/local-backend/environment", test_environment);
  g_test_add_func ("/local-backend/spawn-failure", test_spawn_failure);
  g_test_add_func ("/local-backend/fd-readable-at-exit", test_fd_readable_at_exit);
  g_test_add_func ("/local-backend/no-zombies", test_no_zombies);
  g_test_add_func ("/local-backend/threads", test_threads);
  g_test_add_func ("/local-backend/concurrent-wait", test_concurrent_wait);

  ret = g_test_run ();
  fiber_test_cleanup_environment ();
  return ret;
}

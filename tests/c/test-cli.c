/* test-cli.c — the `fiber` command-line tool, run as a subprocess
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The tool is found through $FIBER_CLI and runs with TMPDIR pointing at the
 * test's private directory, so fiber_test_assert_no_leaks() also sees any
 * runtime directory or socket the tool's pool left behind.
 */

#include <fiber.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "fiber-test-util.h"

#define RUN_TIMEOUT_SECONDS 90

typedef struct
{
  int   exit_status;   /* the exit status, or 128 + signal number */
  char *out;
  char *err;
} CliRun;

static void
cli_run_clear (CliRun *run)
{
  g_clear_pointer (&run->out, g_free);
  g_clear_pointer (&run->err, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (CliRun, cli_run_clear)

typedef struct
{
  gboolean  done;
  GError   *error;
  char     *out;
  char     *err;
} Communicate;

static void
on_communicated (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Communicate *c = user_data;

  g_subprocess_communicate_utf8_finish (G_SUBPROCESS (source), result,
                                        &c->out, &c->err, &c->error);
  c->done = TRUE;
}

static gboolean
on_timeout (gpointer user_data)
{
  gboolean *timed_out = user_data;
  *timed_out = TRUE;
  return G_SOURCE_REMOVE;
}

static const char *
cli_path (void)
{
  const char *path = g_getenv ("FIBER_CLI");

  g_assert_nonnull (path);
  return path;
}

/* Runs `fiber ARGS…` with @input on its standard input and the
 * `KEY=VALUE` settings of @env (may be %NULL) in its environment. */
static void
run_cliv_env (CliRun             *run,
              const char         *input,
              const char * const *env,
              const char * const *args)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GSource) timeout = NULL;
  g_autoptr(GError) error = NULL;
  Communicate c = { 0 };
  gboolean timed_out = FALSE;

  g_ptr_array_add (argv, (gpointer) cli_path ());
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE |
                                        G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                        G_SUBPROCESS_FLAGS_STDERR_PIPE);
  /* Whatever the harness has, the tool sees a plain, non-terminal run. */
  g_subprocess_launcher_unsetenv (launcher, "FIBER_POOL_TYPE");
  g_subprocess_launcher_unsetenv (launcher, "FIBER_BENCH_DRIVER");
  g_subprocess_launcher_unsetenv (launcher, "FIBER_BENCH_DIR");
  for (guint i = 0; env != NULL && env[i] != NULL; i++)
    {
      g_auto(GStrv) kv = g_strsplit (env[i], "=", 2);

      g_assert_nonnull (kv[1]);
      g_subprocess_launcher_setenv (launcher, kv[0], kv[1], TRUE);
    }

  g_main_context_push_thread_default (context);

  proc = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
  g_assert_no_error (error);

  timeout = g_timeout_source_new_seconds (RUN_TIMEOUT_SECONDS);
  g_source_set_callback (timeout, on_timeout, &timed_out, NULL);
  g_source_attach (timeout, context);

  g_subprocess_communicate_utf8_async (proc, input != NULL ? input : "", NULL,
                                       on_communicated, &c);
  while (!c.done && !timed_out)
    g_main_context_iteration (context, TRUE);

  if (!c.done)
    {
      g_subprocess_force_exit (proc);
      while (!c.done)
        g_main_context_iteration (context, TRUE);
    }
  g_source_destroy (timeout);
  g_subprocess_wait (proc, NULL, NULL);
  g_main_context_pop_thread_default (context);

  g_assert_false (timed_out);
  g_assert_no_error (c.error);

  if (g_subprocess_get_if_signaled (proc))
    run->exit_status = 128 + g_subprocess_get_term_sig (proc);
  else
    run->exit_status = g_subprocess_get_exit_status (proc);
  run->out = c.out;
  run->err = c.err;

  if (g_test_verbose ())
    g_printerr ("fiber exit %d\n--- stdout\n%s--- stderr\n%s---\n",
                run->exit_status, run->out, run->err);
}

static void
run_cliv (CliRun             *run,
          const char         *input,
          const char * const *args)
{
  run_cliv_env (run, input, NULL, args);
}

static void run_cli (CliRun     *run,
                     const char *input,
                     ...) G_GNUC_NULL_TERMINATED;

static void
run_cli (CliRun     *run,
         const char *input,
         ...)
{
  g_autoptr(GPtrArray) args = g_ptr_array_new ();
  va_list ap;
  const char *arg;

  va_start (ap, input);
  while ((arg = va_arg (ap, const char *)) != NULL)
    g_ptr_array_add (args, (gpointer) arg);
  va_end (ap);
  g_ptr_array_add (args, NULL);

  run_cliv (run, input, (const char * const *) args->pdata);
}

/* No process running the tool's binary is left (its pool workers re-execute
 * it), besides the checks of fiber_test_assert_no_leaks(). */
static guint
count_cli_processes (void)
{
  g_autofree char *cli = g_canonicalize_filename (cli_path (), NULL);
  g_autoptr(GDir) dir = g_dir_open ("/proc", 0, NULL);
  const char *name;
  guint n = 0;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *link = NULL;
      g_autofree char *exe = NULL;

      if (!g_ascii_isdigit (name[0]))
        continue;
      link = g_build_filename ("/proc", name, "exe", NULL);
      exe = g_file_read_link (link, NULL);
      if (exe != NULL && g_str_equal (exe, cli))
        n++;
    }
  return n;
}

static void
assert_no_leaks (void)
{
  gint64 deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;

  while (count_cli_processes () > 0 && g_get_monotonic_time () < deadline)
    g_usleep (20000);
  g_assert_cmpuint (count_cli_processes (), ==, 0);
  fiber_test_assert_no_leaks (2000);
}

static char *
numbered_lines (const char *prefix,
                guint       first,
                guint       last)
{
  GString *s = g_string_new (NULL);

  for (guint i = first; i <= last; i++)
    {
      g_string_append_printf (s, "%s%u\n", prefix, i);
    }
  return g_string_free (s, FALSE);
}

/* ---- tests ---------------------------------------------------------- */

static void
test_pool_types (void)
{
  g_auto(CliRun) run = { 0 };
  g_auto(GStrv) lines = NULL;

  run_cli (&run, NULL, "pool-types", NULL);
  g_assert_cmpint (run.exit_status, ==, 0);
  lines = g_strsplit (run.out, "\n", -1);
  g_assert_true (g_strv_contains ((const char * const *) lines, "process"));
  g_assert_true (g_strv_contains ((const char * const *) lines, "ndprocess"));
  assert_no_leaks ();
}

static void
test_map_in_order (void)
{
  g_auto(CliRun) run = { 0 };
  g_autofree char *input = numbered_lines ("line ", 1, 100);

  run_cli (&run, input, "map", "-j", "2", "--", "echo", "{}", NULL);
  g_assert_cmpint (run.exit_status, ==, 0);
  g_assert_cmpstr (run.out, ==, input);
  /* standard error is no terminal: no progress bar, nothing else either */
  g_assert_cmpstr (run.err, ==, "");
  assert_no_leaks ();
}

static void
test_map_placeholder (void)
{
  g_auto(CliRun) run = { 0 };

  /* {} inside an argument; without {} the line is appended */
  run_cli (&run, "a b\nc\n", "map", "-j", "2", "--", "echo", "<{}>", "x{}{}", NULL);
  g_assert_cmpint (run.exit_status, ==, 0);
  g_assert_cmpstr (run.out, ==, "<a b> xa ba b\n<c> xcc\n");
  cli_run_clear (&run);

  run_cli (&run, "one\ntwo\n", "map", "-j", "1", "echo", "-n", "arg:", NULL);
  g_assert_cmpint (run.exit_status, ==, 0);
  g_assert_cmpstr (run.out, ==, "arg: onearg: two");
  assert_no_leaks ();
}

/* Short options take their value attached too (`-j2`, `-tthread`), as
 * with getopt; the command's own options are left alone. */
static void
test_map_attached_values (void)
{
  g_auto(CliRun) run = { 0 };
  g_auto(CliRun) cmd_opts = { 0 };

  run_cli (&run, "a\nb\nc\n", "map", "-j2", "-tthread", "--chunksize", "1",
           "--", "echo", "{}", NULL);
  g_assert_cmpint (run.exit_status, ==, 0);
  g_assert_cmpstr (run.out, ==, "a\nb\nc\n");
  g_assert_cmpstr (run.err, ==, "");

  run_cli (&cmd_opts, "x\n", "map", "-j1", "echo", "-j3", "-tthread", NULL);
  g_assert_cmpint (cmd_opts.exit_status, ==, 0);
  g_assert_cmpstr (cmd_opts.out, ==, "-j3 -tthread x\n");
  assert_no_leaks ();
}

static void
test_map_failures (void)
{
  g_auto(CliRun) run = { 0 };
  g_autofree char *input = numbered_lines ("", 1, 12);

  /* lines 7 and 9 fail with different exit statuses; the rest still run */
  run_cli (&run, input, "map", "-j", "2", "--", "sh", "-c",
           "echo out {}; echo err {} >&2; case {} in 7) exit 3;; 9) exit 5;; esac", NULL);
  g_assert_cmpint (run.exit_status, ==, 1);
  g_assert_nonnull (strstr (run.out, "out 1\nout 2\n"));
  g_assert_nonnull (strstr (run.out, "out 12\n"));
  g_assert_nonnull (strstr (run.err, "err 7\n"));
  g_assert_nonnull (strstr (run.err, "2 of 12 lines failed"));
  g_assert_nonnull (strstr (run.err, "line 7 (“7”): exit status 3"));
  g_assert_nonnull (strstr (run.err, "line 9 (“9”): exit status 5"));
  g_assert_null (strstr (run.err, "line 8 "));
  cli_run_clear (&run);

  /* a command that cannot start fails its line, not the tool */
  run_cli (&run, "x\n", "map", "-j", "1", "--", "/nonexistent/command", "{}", NULL);
  g_assert_cmpint (run.exit_status, ==, 1);
  g_assert_nonnull (strstr (run.err, "1 of 1 line failed"));
  g_assert_nonnull (strstr (run.err, "line 1 (“x”)"));
  assert_no_leaks ();
}

static void
test_map_task (void)
{
  g_auto(CliRun) run = { 0 };
  GString *input = g_string_new (NULL);
  GString *expected = g_string_new (NULL);
  g_autofree char *input_str = NULL;
  g_autofree char *expected_str = NULL;

  for (guint i = 0; i < 50; i++)
    {
      g_autoptr(GVariant) v = g_variant_ref_sink (g_variant_new ("(is)", (gint32) i, "x"));
      g_autofree char *text = g_variant_print (v, FALSE);

      /* blank lines are skipped in --task mode */
      g_string_append_printf (input, "%s\n%s", text, i % 10 == 0 ? "\n" : "");
      g_string_append_printf (expected, "%s\n", text);
    }
  input_str = g_string_free (input, FALSE);
  expected_str = g_string_free (expected, FALSE);

  run_cli (&run, input_str, "map", "-j", "2", "--task", "fiber.echo", NULL);
  g_assert_cmpint (run.exit_status, ==, 0);
  g_assert_cmpstr (run.out, ==, expected_str);
  cli_run_clear (&run);

  run_cli (&run, "('ok',)\n('boom',)\n", "map", "-j", "1", "--chunksize", "1",
           "--task", "fiber.fail", NULL);
  g_assert_cmpint (run.exit_status, ==, 1);
  g_assert_nonnull (strstr (run.err, "2 of 2 lines failed"));
  g_assert_nonnull (strstr (run.err, "boom"));
  assert_no_leaks ();
}

static void
test_map_progress (void)
{
  g_auto(CliRun) run = { 0 };
  g_autofree char *input = numbered_lines ("", 1, 20);

  run_cli (&run, input, "map", "-j", "2", "--progress", "--", "true", NULL);
  g_assert_cmpint (run.exit_status, ==, 0);
  g_assert_cmpstr (run.out, ==, "");
  g_assert_nonnull (strstr (run.err, "20/20"));
  g_assert_nonnull (strstr (run.err, "/s"));
  g_assert_nonnull (strstr (run.err, "ETA"));
  assert_no_leaks ();
}

static void
test_bad_input (void)
{
  struct {
    const char *input;
    const char *args[8];
    const char *message;
  } cases[] = {
    { "a\n", { "map", "-t", "no-such-type", "--", "echo", NULL }, "no-such-type" },
    { "a\n", { "map", "-j", "abc", "--", "echo", NULL }, "-j" },
    { "a\n", { "map", "-jabc", "--", "echo", NULL }, "-j" },
    { "a\n", { "map", "-tno-such-type", "--", "echo", NULL }, "no-such-type" },
    { "a\n", { "map", "-j", "-1", "--", "echo", NULL }, "-j" },
    { "a\n", { "map", "-j", "99999999999", "--", "echo", NULL }, "-j" },
    { "a\n", { "map", "--chunksize", "x", "--", "echo", NULL }, "--chunksize" },
    { "a\n", { "map", NULL }, "no command" },
    { "a\n", { "map", "--no-such-option", "--", "echo", NULL }, "no-such-option" },
    { "(1,)\n(1,\n", { "map", "--task", "fiber.echo", NULL }, "line 2" },
    { "(1,)\n", { "map", "--task", "no.such.task", NULL }, "no.such.task" },
    { "(1,)\n", { "map", "--task", "fiber.echo", "--", "echo", NULL }, "takes no command" },
    { "a\xff\n", { "map", "--", "echo", NULL }, "UTF-8" },
    { "", { "no-such-command", NULL }, "no-such-command" },
    { "", { "pool-types", "extra", NULL }, "extra" },
    { "", { "worker", NULL }, "started by pools" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_auto(CliRun) run = { 0 };

      g_test_message ("case %u: %s", i, cases[i].args[0]);
      run_cliv (&run, cases[i].input, cases[i].args);
      g_assert_cmpint (run.exit_status, ==, 2);
      g_assert_cmpstr (run.out, ==, "");
      g_assert_nonnull (strstr (run.err, cases[i].message));
      g_assert_null (strstr (run.err, "CRITICAL"));
    }
  assert_no_leaks ();
}

/* `fiber bench` runs the driver named by FIBER_BENCH_DRIVER with the bench
 * directory of FIBER_BENCH_DIR and the caller's arguments. */
static void
test_bench_env (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("fiber-cli-bench-XXXXXX", &error);
  g_autofree char *driver = NULL;
  g_autofree char *env_driver = NULL;
  const char *env[3] = { NULL, "FIBER_BENCH_DIR=/bench/programs", NULL };
  const char *args[] = { "bench", "--quick", NULL };
  const char *missing_env[] = { "FIBER_BENCH_DRIVER=/nonexistent/run.py", NULL };
  g_auto(CliRun) run = { 0 };
  g_auto(CliRun) missing = { 0 };

  g_assert_no_error (error);
  driver = g_build_filename (dir, "run.py", NULL);
  g_file_set_contents (driver, "import sys\nprint(' '.join(sys.argv[1:]))\n", -1, &error);
  g_assert_no_error (error);
  env_driver = g_strconcat ("FIBER_BENCH_DRIVER=", driver, NULL);
  env[0] = env_driver;

  run_cliv_env (&run, NULL, env, args);
  g_assert_cmpint (run.exit_status, ==, 0);
  g_assert_cmpstr (run.out, ==, "--bench-dir /bench/programs --quick\n");

  run_cliv_env (&missing, NULL, missing_env, args);
  g_assert_cmpint (missing.exit_status, ==, 1);
  g_assert_nonnull (strstr (missing.err, "FIBER_BENCH_DRIVER"));

  g_assert_cmpint (g_unlink (driver), ==, 0);
  g_assert_cmpint (g_rmdir (dir), ==, 0);
  assert_no_leaks ();
}

/* Run from a build tree, `fiber bench` finds the driver that
 * bench/meson.build copies to BUILD/bench, without any path compiled in.
 * A later --bench-dir wins in run.py, so a missing directory makes it
 * stop at once with its own message instead of running the benchmarks. */
static void
test_bench_build_tree (void)
{
  g_auto(CliRun) run = { 0 };

  run_cli (&run, NULL, "bench", "--bench-dir", "/nonexistent-bench", NULL);
  g_assert_cmpint (run.exit_status, !=, 0);
  g_assert_nonnull (strstr (run.err, "run.py: /nonexistent-bench/bench-pool not found"));
  assert_no_leaks ();
}

static void
test_empty_input (void)
{
  g_auto(CliRun) run = { 0 };

  run_cli (&run, "", "map", "--", "echo", NULL);
  g_assert_cmpint (run.exit_status, ==, 0);
  g_assert_cmpstr (run.out, ==, "");
  g_assert_cmpstr (run.err, ==, "");
  assert_no_leaks ();
}

int
main (int    argc,
      char **argv)
{
  int ret;

  fiber_init (&argc, &argv, NULL);
  fiber_test_init_environment ();
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/cli/pool-types", test_pool_types);
  g_test_add_func ("/cli/map/in-order", test_map_in_order);
  g_test_add_func ("/cli/map/placeholder", test_map_placeholder);
  g_test_add_func ("/cli/map/failures", test_map_failures);
  g_test_add_func ("/cli/map/attached-values", test_map_attached_values);
  g_test_add_func ("/cli/map/task", test_map_task);
  g_test_add_func ("/cli/map/progress", test_map_progress);
  g_test_add_func ("/cli/map/empty-input", test_empty_input);
  g_test_add_func ("/cli/bad-input", test_bad_input);
  g_test_add_func ("/cli/bench/env", test_bench_env);
  g_test_add_func ("/cli/bench/build-tree", test_bench_build_tree);

  ret = g_test_run ();
  fiber_test_cleanup_environment ();
  return ret;
}

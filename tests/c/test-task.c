/* test-task.c — the task registry, the built-in tasks and fiber_init()
 *
 * Everything here runs in this process: fiber_task_invoke() is what a
 * worker calls for every item, so the built-ins are checked as a worker
 * sees them.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <fiber.h>
#include <string.h>

#include "fiber-test-util.h"

/* ------------------------------------------------------------------------
 * Tasks of this test
 * ------------------------------------------------------------------------ */

static GVariant *
task_add (GVariant *args, GCancellable *cancellable, gpointer user_data, GError **error)
{
  gint32 a, b;

  if (!g_variant_is_of_type (args, G_VARIANT_TYPE ("(ii)")))
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                   "test.add expects (ii), got %s", g_variant_get_type_string (args));
      return NULL;
    }
  g_variant_get (args, "(ii)", &a, &b);
  return g_variant_new ("(i)", a + b + GPOINTER_TO_INT (user_data));
}

/* Returns neither a value nor an error: a broken task. */
static GVariant *
task_broken (GVariant *args, GCancellable *cancellable, gpointer user_data, GError **error)
{
  return NULL;
}

/* Sets an error and returns a value anyway: the value wins. */
static GVariant *
task_value_and_error (GVariant *args, GCancellable *cancellable, gpointer user_data, GError **error)
{
  g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_FAILED, "ignored");
  return g_variant_new_int32 (7);
}

static void
count_destroy (gpointer data)
{
  (*(guint *) data)++;
}

static GVariant *
task_count (GVariant *args, GCancellable *cancellable, gpointer user_data, GError **error)
{
  return g_variant_new_uint32 (*(guint *) user_data);
}

/* ------------------------------------------------------------------------
 * Registry
 * ------------------------------------------------------------------------ */

static void
test_builtins_listed (void)
{
  const char *builtins[] = { "fiber.echo", "fiber.fail", "fiber.noop", "fiber.sleep",
                             "fiber.subprocess" };
  g_auto(GStrv) names = fiber_task_list ();

  for (guint i = 0; i < G_N_ELEMENTS (builtins); i++)
    {
      g_assert_true (fiber_task_is_registered (builtins[i]));
      g_assert_true (g_strv_contains ((const char * const *) names, builtins[i]));
    }
  g_assert_true (g_strv_contains ((const char * const *) names, "test.add"));

  /* The list is sorted. */
  for (guint i = 1; names[i] != NULL; i++)
    g_assert_cmpstr (names[i - 1], <, names[i]);

  fiber_test_assert_no_leaks (2000);
}

static void
test_register_invoke (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  gint32 sum;

  result = fiber_task_invoke ("test.add", g_variant_new ("(ii)", 2, 3), NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_is_of_type (result, G_VARIANT_TYPE ("(i)")));
  g_assert_false (g_variant_is_floating (result));
  g_variant_get (result, "(i)", &sum);
  g_assert_cmpint (sum, ==, 5);
  g_clear_pointer (&result, g_variant_unref);

  result = fiber_task_invoke ("test.add", g_variant_new ("(s)", "x"), NULL, &error);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_assert_null (result);

  fiber_test_assert_no_leaks (2000);
}

static void
test_replace_unregister (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  guint destroyed = 0;
  guint first = 1, second = 2;

  g_assert_false (fiber_task_is_registered ("test.count"));
  fiber_task_register ("test.count", task_count, &first, NULL);
  result = fiber_task_invoke ("test.count", NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_get_uint32 (result), ==, 1);
  g_clear_pointer (&result, g_variant_unref);

  /* Registering a name again replaces the task; the old user data is
   * released exactly once. */
  fiber_task_register ("test.count", task_count, &destroyed, count_destroy);
  fiber_task_register ("test.count", task_count, &second, NULL);
  g_assert_cmpuint (destroyed, ==, 1);
  result = fiber_task_invoke ("test.count", NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_get_uint32 (result), ==, 2);
  g_clear_pointer (&result, g_variant_unref);

  fiber_task_register ("test.count", task_count, &destroyed, count_destroy);
  g_assert_true (fiber_task_unregister ("test.count"));
  g_assert_cmpuint (destroyed, ==, 2);
  g_assert_false (fiber_task_unregister ("test.count"));
  g_assert_false (fiber_task_is_registered ("test.count"));

  result = fiber_task_invoke ("test.count", NULL, NULL, &error);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_UNKNOWN_TASK);
  g_assert_null (result);

  fiber_test_assert_no_leaks (2000);
}

static void
test_bad_names (void)
{
  const char *bad[] = { "", "no.such.task", "fiber", "fiber.", "FIBER.NOOP", " fiber.noop",
                        "fiber.noop ", "fiber.noop\n", "☃" };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) result = NULL;

      g_assert_false (fiber_task_is_registered (bad[i]));
      result = fiber_task_invoke (bad[i], NULL, NULL, &error);
      g_assert_error (error, FIBER_ERROR, FIBER_ERROR_UNKNOWN_TASK);
      g_assert_null (result);
      if (*bad[i] != '\0')
        g_assert_nonnull (strstr (error->message, bad[i]));
    }

  /* An empty name is a programmer error, refused without registering. */
  if (g_test_undefined ())
    {
      g_test_expect_message ("Fiber", G_LOG_LEVEL_CRITICAL, "*name != NULL*");
      fiber_task_register ("", task_add, NULL, NULL);
      g_test_assert_expected_messages ();
      g_assert_false (fiber_task_is_registered (""));
    }

  fiber_test_assert_no_leaks (2000);
}

static void
test_result_contract (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  /* NULL without an error becomes a task failure, never a crash. */
  fiber_task_register ("test.broken", task_broken, NULL, NULL);
  result = fiber_task_invoke ("test.broken", NULL, NULL, &error);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_TASK_FAILED);
  g_assert_null (result);
  g_clear_error (&error);

  /* A value is a success even when an error was set on the side. */
  fiber_task_register ("test.value-and-error", task_value_and_error, NULL, NULL);
  result = fiber_task_invoke ("test.value-and-error", NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_variant_get_int32 (result), ==, 7);

  fiber_task_unregister ("test.broken");
  fiber_task_unregister ("test.value-and-error");
  fiber_test_assert_no_leaks (2000);
}

/* ------------------------------------------------------------------------
 * Built-in tasks
 * ------------------------------------------------------------------------ */

static void
test_noop_echo (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autoptr(GVariant) args = g_variant_ref_sink (g_variant_new_parsed ("(1, 'two', [3.0], {'k': <true>})"));

  result = fiber_task_invoke ("fiber.noop", args, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (result), ==, "()");
  g_clear_pointer (&result, g_variant_unref);

  result = fiber_task_invoke ("fiber.noop", NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (result), ==, "()");
  g_clear_pointer (&result, g_variant_unref);

  result = fiber_task_invoke ("fiber.echo", args, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_equal (result, args));
  g_clear_pointer (&result, g_variant_unref);

  /* echo of no arguments is the empty tuple */
  result = fiber_task_invoke ("fiber.echo", NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (result), ==, "()");

  fiber_test_assert_no_leaks (2000);
}

static void
test_sleep (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  gint64 start = g_get_monotonic_time ();

  result = fiber_task_invoke ("fiber.sleep", g_variant_new ("(d)", 0.05), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (result), ==, "()");
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 50 * 1000);
  g_clear_pointer (&result, g_variant_unref);

  result = fiber_task_invoke ("fiber.sleep", g_variant_new ("(i)", 1), NULL, &error);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "(d)"));
  g_clear_error (&error);

  result = fiber_task_invoke ("fiber.sleep", g_variant_new ("(d)", -1.0), NULL, &error);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  /* A cancelled sleep returns at once (a guard, not a measurement). */
  g_cancellable_cancel (cancellable);
  start = g_get_monotonic_time ();
  result = fiber_task_invoke ("fiber.sleep", g_variant_new ("(d)", 60.0), cancellable, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_null (result);
  g_assert_cmpint (g_get_monotonic_time () - start, <, 30 * G_USEC_PER_SEC);

  fiber_test_assert_no_leaks (2000);
}

static void
test_fail (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  result = fiber_task_invoke ("fiber.fail", g_variant_new ("(s)", "the message ✓"), NULL, &error);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_TASK_FAILED);
  g_assert_cmpstr (error->message, ==, "the message ✓");
  g_assert_null (result);
  g_clear_error (&error);

  result = fiber_task_invoke ("fiber.fail", g_variant_new ("(i)", 3), NULL, &error);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);

  fiber_test_assert_no_leaks (2000);
}

static GVariant *
run_subprocess (const char * const  *argv,
                GError             **error)
{
  return fiber_task_invoke ("fiber.subprocess",
                            g_variant_new ("(^as)", argv), NULL, error);
}

static void
test_subprocess (void)
{
  const char *ok_argv[] = { "sh", "-c", "printf out; printf err >&2; exit 3", NULL };
  const char *signal_argv[] = { "sh", "-c", "kill -TERM $$", NULL };
  const char *missing_argv[] = { "/nonexistent/fiber-test-program", NULL };
  const char *empty_argv[] = { NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autoptr(GBytes) out = NULL;
  g_autoptr(GBytes) err = NULL;
  g_autoptr(GVariant) out_v = NULL;
  g_autoptr(GVariant) err_v = NULL;
  gint32 status;

  result = run_subprocess (ok_argv, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (result), ==, "(iayay)");
  g_variant_get (result, "(i@ay@ay)", &status, &out_v, &err_v);
  g_assert_cmpint (status, ==, 3);
  out = g_variant_get_data_as_bytes (out_v);
  err = g_variant_get_data_as_bytes (err_v);
  g_assert_cmpmem (g_bytes_get_data (out, NULL), g_bytes_get_size (out), "out", 3);
  g_assert_cmpmem (g_bytes_get_data (err, NULL), g_bytes_get_size (err), "err", 3);
  g_clear_pointer (&result, g_variant_unref);

  /* Killed by a signal: the negative signal number. */
  result = run_subprocess (signal_argv, &error);
  g_assert_no_error (error);
  g_variant_get (result, "(i@ay@ay)", &status, NULL, NULL);
  g_assert_cmpint (status, ==, -15);
  g_clear_pointer (&result, g_variant_unref);

  result = run_subprocess (missing_argv, &error);
  g_assert_nonnull (error);
  g_assert_null (result);
  g_clear_error (&error);

  result = run_subprocess (empty_argv, &error);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  result = fiber_task_invoke ("fiber.subprocess", g_variant_new ("(s)", "ls"), NULL, &error);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);

  fiber_test_assert_no_leaks (2000);
}

/* ------------------------------------------------------------------------
 * fiber_init
 * ------------------------------------------------------------------------ */

static void
test_init_in_parent (void)
{
  g_autoptr(GError) error = NULL;
  char *args[] = { (char *) "test-task", NULL };
  char **argv = args;
  int argc = 1;

  /* In a program that is no worker, fiber_init() returns (again and
   * again) and leaves the arguments alone. */
  g_assert_false (fiber_is_worker ());
  g_assert_true (fiber_init (&argc, &argv, &error));
  g_assert_no_error (error);
  g_assert_true (fiber_init (NULL, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (argc, ==, 1);
  g_assert_true (argv == args);
  g_assert_false (fiber_is_worker ());
  g_assert_cmpuint (fiber_cpu_count (), >=, 1);

  /* The parent's registrations are untouched by fiber_init(). */
  g_assert_true (fiber_task_is_registered ("test.add"));

  fiber_test_assert_no_leaks (2000);
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GError) error = NULL;
  int ret;

  fiber_task_register ("test.add", task_add, NULL, NULL);

  if (!fiber_init (&argc, &argv, &error))
    g_error ("fiber_init: %s", error->message);
  fiber_test_init_environment ();
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/task/builtins-listed", test_builtins_listed);
  g_test_add_func ("/task/register-invoke", test_register_invoke);
  g_test_add_func ("/task/replace-unregister", test_replace_unregister);
  g_test_add_func ("/task/bad-names", test_bad_names);
  g_test_add_func ("/task/result-contract", test_result_contract);
  g_test_add_func ("/task/noop-echo", test_noop_echo);
  g_test_add_func ("/task/sleep", test_sleep);
  g_test_add_func ("/task/fail", test_fail);
  g_test_add_func ("/task/builtin-subprocess", test_subprocess);
  g_test_add_func ("/task/init-in-parent", test_init_in_parent);

  ret = g_test_run ();
  fiber_test_cleanup_environment ();
  return ret;
}

/* test-pool.c — the process pools (`process`, `ndprocess`): the behaviours
 * Fiber's own test_pool checks, plus initializer, maxtasksperchild,
 * daemonic children and interrupt.
 *
 * The workers re-execute this test program: its main() registers the test
 * tasks and calls fiber_init(), which serves the pool and exits.  Every
 * case runs once per pool type.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <fiber.h>
#include <errno.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <libglib-testing/signal-logger.h>

#include "fiber-test-util.h"
#include "pool-test-util.h"

static const char *pool_types[] = { "process", "ndprocess" };

/* ------------------------------------------------------------------------
 * Tasks (run in the workers)
 * ------------------------------------------------------------------------ */

/* (id): sleeps d seconds, returns i (scrambles completion order) */
static GVariant *
task_sleep_return (GVariant *args, GCancellable *cancellable, gpointer data, GError **error)
{
  gint32 value;
  double seconds;

  g_variant_get (args, "(id)", &value, &seconds);
  if (!fiber_sleep (seconds, cancellable, error))
    return NULL;
  return g_variant_new_int32 (value);
}

/* any → x: the worker's process id */
static GVariant *
task_getpid (GVariant *args, GCancellable *cancellable, gpointer data, GError **error)
{
  return g_variant_new_int64 (getpid ());
}

/* (sui): creates <dir>/<i>, then waits until <dir> holds u files. */
static GVariant *
task_barrier (GVariant *args, GCancellable *cancellable, gpointer data, GError **error)
{
  const char *dir;
  guint32 parties;
  gint32 index;
  g_autofree char *name = NULL;
  g_autofree char *path = NULL;
  gint64 deadline = g_get_monotonic_time () + (gint64) POOL_TEST_GUARD_MSEC * 1000;

  g_variant_get (args, "(&sui)", &dir, &parties, &index);
  name = g_strdup_printf ("%d", index);
  path = g_build_filename (dir, name, NULL);
  if (!g_file_set_contents (path, "", 0, error))
    return NULL;
  while (pool_test_count_entries (dir) < parties)
    {
      if (g_get_monotonic_time () > deadline)
        {
          g_set_error (error, FIBER_ERROR, FIBER_ERROR_TIMEOUT,
                       "only %u of %u tasks started", pool_test_count_entries (dir), parties);
          return NULL;
        }
      g_usleep (2000);
    }
  return g_variant_new_int32 (index);
}

/* (uu) samples, seed → u: samples that fell in the quarter circle */
static GVariant *
task_pi (GVariant *args, GCancellable *cancellable, gpointer data, GError **error)
{
  guint32 samples, seed, inside = 0;
  g_autoptr(GRand) rand = NULL;

  g_variant_get (args, "(uu)", &samples, &seed);
  rand = g_rand_new_with_seed (seed);
  for (guint32 i = 0; i < samples; i++)
    {
      double x = g_rand_double (rand);
      double y = g_rand_double (rand);

      if (x * x + y * y <= 1.0)
        inside++;
    }
  return g_variant_new_uint32 (inside);
}

static char *init_value;

/* The initializer: remembers its argument in the worker. */
static GVariant *
task_init (GVariant *args, GCancellable *cancellable, gpointer data, GError **error)
{
  const char *value;

  g_variant_get (args, "(&s)", &value);
  g_free (init_value);
  init_value = g_strdup (value);
  return g_variant_new ("()");
}

/* any → s: what the initializer saw ("" when it did not run) */
static GVariant *
task_get_init (GVariant *args, GCancellable *cancellable, gpointer data, GError **error)
{
  return g_variant_new_string (init_value != NULL ? init_value : "");
}

/* any → i: starts a FiberProcess running fiber.noop and returns its exit
 * code (this fails in a daemonic worker). */
static GVariant *
task_start_child (GVariant *args, GCancellable *cancellable, gpointer data, GError **error)
{
  g_autoptr(FiberProcess) child = fiber_process_new ("fiber.noop", NULL);
  int exitcode = G_MININT;

  if (!fiber_process_start (child, error))
    return NULL;
  if (!fiber_process_join (child, POOL_TEST_GUARD_MSEC))
    {
      fiber_process_terminate (child);
      fiber_process_join (child, -1);
      g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_TIMEOUT, "the child did not end");
      return NULL;
    }
  fiber_process_get_exitcode (child, &exitcode);
  return g_variant_new_int32 (exitcode);
}

/* (s) type → i: makes a pool of that type here, maps squares over
 * [0, 10) on it and returns their sum (fails in a daemonic worker). */
static GVariant *
task_nested_pool (GVariant *args, GCancellable *cancellable, gpointer data, GError **error)
{
  const char *type;
  g_autoptr(FiberPool) pool = NULL;
  g_autoptr(GVariant) results = NULL;
  gint32 sum = 0;

  g_variant_get (args, "(&s)", &type);
  pool = fiber_pool_new (type, 2, error);
  if (pool == NULL)
    return NULL;
  results = fiber_pool_map (pool, "test.square", g_variant_new_parsed ("[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"),
                            1, error);
  fiber_pool_close (pool);
  if (!fiber_pool_join (pool, POOL_TEST_GUARD_MSEC, error) || results == NULL)
    return NULL;
  for (gsize i = 0; i < g_variant_n_children (results); i++)
    {
      g_autoptr(GVariant) boxed = g_variant_get_child_value (results, i);
      g_autoptr(GVariant) value = g_variant_get_variant (boxed);

      sum += g_variant_get_int32 (value);
    }
  return g_variant_new_int32 (sum);
}

/* (s): "-" returns at once, anything else is started-then-sleep. */
static GVariant *
task_started_then_sleep_or_not (GVariant *args, GCancellable *cancellable, gpointer data, GError **error)
{
  const char *path;

  g_variant_get (args, "(&s)", &path);
  if (g_str_equal (path, "-"))
    return g_variant_new ("()");
  return pool_test_task_started_then_sleep (args, cancellable, data, error);
}

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

static FiberPool *
new_pool (const char *type,
          guint       processes)
{
  FiberPool *pool = pool_test_new (type, processes);

  g_assert_cmpuint (fiber_pool_get_processes (pool), ==, processes);
  return pool;
}

/* A pool of @type with extra construct properties. */
static FiberPool *
new_pool_with (const char *first_property,
               ...)
{
  g_autoptr(GError) error = NULL;
  GObject *object;
  va_list ap;

  va_start (ap, first_property);
  object = g_initable_new_valist (FIBER_TYPE_PROCESS_POOL, first_property, ap, NULL, &error);
  va_end (ap);
  g_assert_no_error (error);
  g_assert_nonnull (object);
  g_assert_true (FIBER_IS_PROCESS_POOL (object));
  return FIBER_POOL (object);
}

/* ------------------------------------------------------------------------
 * Fiber's test_pool
 * ------------------------------------------------------------------------ */

static void
test_map_small (gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) results = NULL;
  FiberPool *pool = new_pool (data, 2);

  results = fiber_pool_map (pool, "test.square", g_variant_new_parsed ("[1, 2, 3]"), 0, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (results), ==, 3);
  g_assert_cmpint (pool_test_av_int32 (results, 0), ==, 1);
  g_assert_cmpint (pool_test_av_int32 (results, 1), ==, 4);
  g_assert_cmpint (pool_test_av_int32 (results, 2), ==, 9);
  g_clear_pointer (&results, g_variant_unref);

  /* An empty input maps to an empty output. */
  results = fiber_pool_map (pool, "test.square", g_variant_new_parsed ("@ai []"), 0, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (results), ==, 0);

  pool_test_finish (pool);
  fiber_test_assert_no_leaks (2000);
}

static void
test_map_1000 (gconstpointer data)
{
  FiberPool *pool = new_pool (data, 2);
  guint chunksizes[] = { 0, 1, 7, 1000 };

  for (guint c = 0; c < G_N_ELEMENTS (chunksizes); c++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) results = NULL;

      results = fiber_pool_map (pool, "test.square", pool_test_int_array (0, 1000), chunksizes[c], &error);
      g_assert_no_error (error);
      pool_test_assert_squares (results, 1000);
    }

  pool_test_finish (pool);
  fiber_test_assert_no_leaks (2000);
}

static void
test_apply (gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  FiberPool *pool = new_pool (data, 2);

  result = fiber_pool_apply (pool, "test.square", g_variant_new_int32 (7), &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_variant_get_int32 (result), ==, 49);
  g_clear_pointer (&result, g_variant_unref);

  result = fiber_pool_apply (pool, "test.add", g_variant_new ("(ii)", 40, 2), &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_variant_get_int32 (result), ==, 42);
  g_clear_pointer (&result, g_variant_unref);

  /* The worker's message comes back; the pool carries on. */
  result = fiber_pool_apply (pool, "fiber.fail", g_variant_new ("(s)", "as planned"), &error);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_TASK_FAILED);
  g_assert_cmpstr (error->message, ==, "as planned");
  g_assert_null (result);
  g_clear_error (&error);

  result = fiber_pool_apply (pool, "fiber.echo", g_variant_new_parsed ("('x', [1, 2])"), &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_equal (result, g_variant_new_parsed ("('x', [1, 2])")));

  pool_test_finish (pool);
  fiber_test_assert_no_leaks (2000);
}

typedef struct
{
  GMainContext *context;
  GThread      *thread;
  guint         calls;
  GVariant     *value;
  GError       *error;
} AsyncState;

static void
apply_done (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  AsyncState *state = user_data;

  g_assert_true (g_main_context_get_thread_default () == state->context);
  g_assert_true (g_thread_self () == state->thread);
  /* Results hold their pool weakly: a pool the caller dropped is gone
   * (and was terminated) by the time the callback runs. */
  g_assert_true (source == NULL || FIBER_IS_POOL (source));
  g_assert_true (FIBER_IS_APPLY_RESULT (result));
  state->calls++;
  state->value = fiber_pool_apply_finish ((FiberPool *) source, result, &state->error);
}

static gboolean
set_flag (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Iterates @context until @state saw a call, then a little more to catch
 * a second one. */
static void
run_until_called (AsyncState *state)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) POOL_TEST_GUARD_MSEC * 1000;
  gboolean settled = FALSE;
  g_autoptr(GSource) timeout = NULL;

  while (state->calls == 0 && g_get_monotonic_time () < deadline)
    if (!g_main_context_iteration (state->context, FALSE))
      g_usleep (1000);
  g_assert_cmpuint (state->calls, ==, 1);

  timeout = g_timeout_source_new (100);
  g_source_set_callback (timeout, set_flag, &settled, NULL);
  g_source_attach (timeout, state->context);
  while (!settled)
    g_main_context_iteration (state->context, TRUE);
  g_source_destroy (timeout);
  g_assert_cmpuint (state->calls, ==, 1);
}

static void
test_apply_async (gconstpointer data)
{
  FiberPool *pool = new_pool (data, 2);
  g_autoptr(GMainContext) context = g_main_context_new ();
  AsyncState ok = { context, g_thread_self (), 0, NULL, NULL };
  AsyncState failed = { context, g_thread_self (), 0, NULL, NULL };
  g_autoptr(FiberApplyResult) r1 = NULL;
  g_autoptr(FiberApplyResult) r2 = NULL;
  g_autoptr(GVariant) again = NULL;
  g_autoptr(GError) error = NULL;

  g_main_context_push_thread_default (context);
  r1 = fiber_pool_apply_async (pool, "test.square", g_variant_new_int32 (12), NULL,
                               apply_done, &ok);
  r2 = fiber_pool_apply_async (pool, "fiber.fail", g_variant_new ("(s)", "async failure"), NULL,
                               apply_done, &failed);
  g_assert_nonnull (r1);
  g_assert_nonnull (r2);

  /* The callbacks run only from the caller's context, never from the
   * pool's threads: nothing is called while the context is not iterated. */
  g_assert_true (fiber_apply_result_wait (r1, POOL_TEST_GUARD_MSEC));
  g_assert_true (fiber_apply_result_wait (r2, POOL_TEST_GUARD_MSEC));
  g_assert_cmpuint (ok.calls, ==, 0);
  g_assert_cmpuint (failed.calls, ==, 0);

  run_until_called (&ok);
  run_until_called (&failed);
  g_main_context_pop_thread_default (context);

  g_assert_no_error (ok.error);
  g_assert_cmpint (g_variant_get_int32 (ok.value), ==, 144);
  g_assert_error (failed.error, FIBER_ERROR, FIBER_ERROR_TASK_FAILED);
  g_assert_cmpstr (failed.error->message, ==, "async failure");
  g_assert_null (failed.value);

  /* The result object answers again and again. */
  g_assert_true (fiber_apply_result_ready (r1));
  g_assert_true (fiber_apply_result_successful (r1, NULL));
  again = fiber_apply_result_get (r1, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_variant_get_int32 (again), ==, 144);
  g_assert_false (fiber_apply_result_successful (r2, &error));
  g_assert_no_error (error);
  g_clear_pointer (&again, g_variant_unref);
  again = fiber_apply_result_get (r2, 0, &error);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_TASK_FAILED);
  g_assert_null (again);

  g_variant_unref (ok.value);
  g_error_free (failed.error);
  pool_test_finish (pool);
  fiber_test_assert_no_leaks (2000);
}

static GVariant *
scrambled_items (int n)
{
  g_autoptr(GVariantBuilder) b = g_variant_builder_new (G_VARIANT_TYPE ("a(id)"));

  /* Early items take longest. */
  for (int i = 0; i < n; i++)
    g_variant_builder_add (b, "(id)", i, (double) ((n - i) % 4) * 0.01);
  return g_variant_builder_end (b);
}

static void
test_imap (gconstpointer data)
{
  FiberPool *pool = new_pool (data, 2);
  g_autoptr(GError) error = NULL;
  g_autoptr(FiberMapResult) r = NULL;
  guint expected = 0, index;
  GVariant *value;

  r = fiber_pool_imap (pool, "test.sleep-return", scrambled_items (20), 1, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (fiber_map_result_get_n_items (r), ==, 20);
  while (fiber_map_result_next (r, POOL_TEST_GUARD_MSEC, &index, &value, &error))
    {
      g_assert_cmpuint (index, ==, expected);
      g_assert_cmpint (g_variant_get_int32 (value), ==, (gint32) expected);
      g_variant_unref (value);
      expected++;
    }
  g_assert_no_error (error);
  g_assert_cmpuint (expected, ==, 20);
  g_assert_cmpuint (fiber_map_result_get_n_completed (r), ==, 20);

  pool_test_finish (pool);
  fiber_test_assert_no_leaks (2000);
}

static void
test_imap_unordered (gconstpointer data)
{
  FiberPool *pool = new_pool (data, 2);
  g_autoptr(GError) error = NULL;
  g_autoptr(FiberMapResult) r = NULL;
  g_autoptr(GHashTable) seen = g_hash_table_new (NULL, NULL);
  guint index;
  GVariant *value;

  r = fiber_pool_imap_unordered (pool, "test.sleep-return", scrambled_items (20), 1, &error);
  g_assert_no_error (error);
  while (fiber_map_result_next (r, POOL_TEST_GUARD_MSEC, &index, &value, &error))
    {
      gint32 v = g_variant_get_int32 (value);

      g_assert_cmpint (v, ==, (gint32) index);
      g_assert_false (g_hash_table_contains (seen, GINT_TO_POINTER (v + 1)));
      g_hash_table_add (seen, GINT_TO_POINTER (v + 1));
      g_variant_unref (value);
    }
  g_assert_no_error (error);
  /* The set of results is the set of inputs, each once. */
  g_assert_cmpuint (g_hash_table_size (seen), ==, 20);
  for (int i = 0; i < 20; i++)
    g_assert_true (g_hash_table_contains (seen, GINT_TO_POINTER (i + 1)));

  pool_test_finish (pool);
  fiber_test_assert_no_leaks (2000);
}

static void
test_starmap (gconstpointer data)
{
  FiberPool *pool = new_pool (data, 2);
  guint chunksizes[] = { 1, 10 };

  for (guint c = 0; c < G_N_ELEMENTS (chunksizes); c++)
    {
      g_autoptr(GVariantBuilder) b = g_variant_builder_new (G_VARIANT_TYPE ("a(ii)"));
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) results = NULL;

      for (int i = 0; i < 100; i++)
        g_variant_builder_add (b, "(ii)", i, 2 * i);
      results = fiber_pool_starmap (pool, "test.add", g_variant_builder_end (b),
                                    chunksizes[c], &error);
      g_assert_no_error (error);
      g_assert_cmpuint (g_variant_n_children (results), ==, 100);
      for (int i = 0; i < 100; i++)
        g_assert_cmpint (pool_test_av_int32 (results, i), ==, 3 * i);
    }

  pool_test_finish (pool);
  fiber_test_assert_no_leaks (2000);
}

static void
test_closed (gconstpointer data)
{
  FiberPool *pool = new_pool (data, 2);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autoptr(FiberApplyResult) ar = NULL;
  g_autoptr(FiberMapResult) mr = NULL;

  result = fiber_pool_apply (pool, "test.square", g_variant_new_int32 (3), &error);
  g_assert_no_error (error);
  g_clear_pointer (&result, g_variant_unref);

  fiber_pool_close (pool);
  g_assert_true (fiber_pool_is_closed (pool));

  result = fiber_pool_apply (pool, "test.square", g_variant_new_int32 (3), &error);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_CLOSED);
  g_assert_null (result);
  g_clear_error (&error);

  result = fiber_pool_map (pool, "test.square", g_variant_new_parsed ("[1, 2, 3]"), 1, &error);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_CLOSED);
  g_clear_error (&error);

  result = fiber_pool_starmap (pool, "test.add", g_variant_new_parsed ("[(1, 2)]"), 1, &error);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_CLOSED);
  g_clear_error (&error);

  mr = fiber_pool_imap (pool, "test.square", g_variant_new_parsed ("[1, 2, 3]"), 1, &error);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_CLOSED);
  g_assert_null (mr);
  g_clear_error (&error);

  /* The async form reports it through its result. */
  ar = fiber_pool_apply_async (pool, "test.square", g_variant_new_int32 (3), NULL, NULL, NULL);
  g_assert_nonnull (ar);
  result = fiber_apply_result_get (ar, POOL_TEST_GUARD_MSEC, &error);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_CLOSED);
  g_clear_error (&error);

  g_assert_true (fiber_pool_join (pool, POOL_TEST_GUARD_MSEC, &error));
  g_assert_no_error (error);

  /* Still closed after join, and after terminate. */
  fiber_pool_terminate (pool);
  result = fiber_pool_apply (pool, "test.square", g_variant_new_int32 (3), &error);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_CLOSED);

  g_object_unref (pool);
  fiber_test_assert_no_leaks (2000);
}

static void
test_terminate_fails_work (gconstpointer data)
{
  FiberPool *pool = new_pool (data, 2);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autoptr(FiberMapResult) r = NULL;
  g_autofree char *dir = pool_test_make_dir ();
  g_autofree char *marker = g_build_filename (dir, "started", NULL);
  g_autoptr(GVariantBuilder) b = g_variant_builder_new (G_VARIANT_TYPE ("a(s)"));

  for (int i = 0; i < 4; i++)
    g_variant_builder_add (b, "(s)", marker);
  r = fiber_pool_map_async (pool, "test.started-then-sleep", g_variant_builder_end (b), 1,
                            NULL, NULL, NULL);
  pool_test_wait_for_entries (dir, 2);

  /* terminate() returns once the workers are gone and every unfinished
   * item has failed. */
  fiber_pool_terminate (pool);
  g_assert_true (fiber_apply_result_ready (FIBER_APPLY_RESULT (r)));
  result = fiber_map_result_get (r, 0, &error);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_CLOSED);
  g_assert_null (result);
  g_assert_true (fiber_pool_join (pool, POOL_TEST_GUARD_MSEC, NULL));
  g_object_unref (pool);

  g_assert_cmpuint (pool_test_count_entries (dir), ==, 2);
  pool_test_remove_dir (dir);
  fiber_test_assert_no_leaks (2000);
}

/* Nine tasks that each wait until all nine have started: none may queue
 * behind a busy worker. */
static void
test_nine_workers (gconstpointer data)
{
  FiberPool *pool = new_pool (data, 9);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) results = NULL;
  g_autofree char *dir = pool_test_make_dir ();
  g_autoptr(GVariantBuilder) b = g_variant_builder_new (G_VARIANT_TYPE ("a(sui)"));

  for (int i = 0; i < 9; i++)
    g_variant_builder_add (b, "(sui)", dir, 9, i);
  results = fiber_pool_starmap (pool, "test.barrier", g_variant_builder_end (b), 1, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (results), ==, 9);
  for (int i = 0; i < 9; i++)
    {
      g_autofree char *name = g_strdup_printf ("%d", i);
      g_autofree char *path = g_build_filename (dir, name, NULL);

      g_assert_cmpint (pool_test_av_int32 (results, i), ==, i);
      g_assert_cmpint (g_unlink (path), ==, 0);
    }
  g_rmdir (dir);

  pool_test_finish (pool);
  fiber_test_assert_no_leaks (2000);
}

/* Fiber's framework-overhead pattern: rounds of 5 apply_async, each round
 * collected before the next. */
static void
test_apply_async_rounds (gconstpointer data)
{
  FiberPool *pool = new_pool (data, 2);

  for (int round = 0; round < 1000; round++)
    {
      FiberApplyResult *r[5];

      for (int k = 0; k < 5; k++)
        r[k] = fiber_pool_apply_async (pool, "test.square", g_variant_new_int32 (round + k),
                                       NULL, NULL, NULL);
      for (int k = 0; k < 5; k++)
        {
          g_autoptr(GError) error = NULL;
          g_autoptr(GVariant) value = fiber_apply_result_get (r[k], POOL_TEST_GUARD_MSEC, &error);

          g_assert_no_error (error);
          g_assert_cmpint (g_variant_get_int32 (value), ==, (round + k) * (round + k));
          g_object_unref (r[k]);
        }
    }

  pool_test_finish (pool);
  fiber_test_assert_no_leaks (2000);
}

static void
test_pi (gconstpointer data)
{
  FiberPool *pool = new_pool (data, 2);
  g_autoptr(GVariantBuilder) b = g_variant_builder_new (G_VARIANT_TYPE ("a(uu)"));
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) results = NULL;
  const guint32 chunks = 20, per_chunk = 50000;
  guint64 inside = 0;
  double pi;

  for (guint32 i = 0; i < chunks; i++)
    g_variant_builder_add (b, "(uu)", per_chunk, i + 1);
  results = fiber_pool_starmap (pool, "test.pi", g_variant_builder_end (b), 1, &error);
  g_assert_no_error (error);
  for (guint32 i = 0; i < chunks; i++)
    {
      g_autoptr(GVariant) boxed = g_variant_get_child_value (results, i);
      g_autoptr(GVariant) value = g_variant_get_variant (boxed);

      inside += g_variant_get_uint32 (value);
    }
  pi = 4.0 * (double) inside / ((double) chunks * per_chunk);
  g_test_message ("pi ~ %f over %u samples", pi, chunks * per_chunk);
  /* The standard error is 0.0016: 0.01 is six of them. */
  g_assert_cmpfloat_with_epsilon (pi, G_PI, 0.01);

  pool_test_finish (pool);
  fiber_test_assert_no_leaks (2000);
}

/* ------------------------------------------------------------------------
 * Properties
 * ------------------------------------------------------------------------ */

static void
test_maxtasksperchild (gconstpointer data)
{
  const char *type = data;
  FiberPool *pool = new_pool_with ("pool-type", type,
                                   "processes", 2,
                                   "daemon", g_str_equal (type, "process"),
                                   "maxtasksperchild", 2,
                                   NULL);
  g_autoptr(GHashTable) uses = g_hash_table_new (g_int64_hash, g_int64_equal);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) results = NULL;
  GHashTableIter iter;
  gpointer key, value;

  g_assert_cmpuint (fiber_pool_get_processes (pool), ==, 2);
  results = fiber_pool_map (pool, "test.getpid", pool_test_int_array (0, 12), 1, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (results), ==, 12);
  for (gsize i = 0; i < 12; i++)
    {
      g_autoptr(GVariant) boxed = g_variant_get_child_value (results, i);
      g_autoptr(GVariant) pid = g_variant_get_variant (boxed);
      gint64 *k = g_new (gint64, 1);

      *k = g_variant_get_int64 (pid);
      if (g_hash_table_lookup_extended (uses, k, &key, &value))
        {
          g_hash_table_insert (uses, key, GUINT_TO_POINTER (GPOINTER_TO_UINT (value) + 1));
          g_free (k);
        }
      else
        g_hash_table_insert (uses, k, GUINT_TO_POINTER (1));
    }

  /* No worker ran more than two items: at least six workers served. */
  g_assert_cmpuint (g_hash_table_size (uses), >=, 6);
  g_hash_table_iter_init (&iter, uses);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      g_assert_cmpuint (GPOINTER_TO_UINT (value), <=, 2);
      g_free (key);
    }

  pool_test_finish (pool);
  fiber_test_assert_no_leaks (2000);
}

static void
test_initializer (gconstpointer data)
{
  const char *type = data;
  FiberPool *pool = new_pool_with ("pool-type", type,
                                   "processes", 2,
                                   "daemon", g_str_equal (type, "process"),
                                   "initializer", "test.init",
                                   "initargs", g_variant_new ("(s)", "initialized ✓"),
                                   "maxtasksperchild", 3,
                                   NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GVariant) initargs = NULL;
  g_autofree char *initializer = NULL;

  g_object_get (pool, "initializer", &initializer, "initargs", &initargs, NULL);
  g_assert_cmpstr (initializer, ==, "test.init");
  g_assert_true (g_variant_equal (initargs, g_variant_new ("(s)", "initialized ✓")));

  /* Every worker ran it, replacements too (maxtasksperchild). */
  results = fiber_pool_map (pool, "test.get-init", pool_test_int_array (0, 12), 1, &error);
  g_assert_no_error (error);
  for (gsize i = 0; i < 12; i++)
    {
      g_autoptr(GVariant) boxed = g_variant_get_child_value (results, i);
      g_autoptr(GVariant) value = g_variant_get_variant (boxed);

      g_assert_cmpstr (g_variant_get_string (value, NULL), ==, "initialized ✓");
    }

  pool_test_finish (pool);
  fiber_test_assert_no_leaks (2000);
}

/* An initializer that fails: work fails with its message, no hang. */
static void
test_initializer_fails (gconstpointer data)
{
  const char *type = data;
  FiberPool *pool = new_pool_with ("pool-type", type,
                                   "processes", 2,
                                   "daemon", g_str_equal (type, "process"),
                                   "initializer", "fiber.fail",
                                   "initargs", g_variant_new ("(s)", "init broke"),
                                   NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  result = fiber_pool_apply (pool, "test.square", g_variant_new_int32 (2), &error);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_WORKER_LOST);
  g_assert_nonnull (strstr (error->message, "init broke"));
  g_assert_null (result);

  pool_test_finish (pool);
  fiber_test_assert_no_leaks (2000);
}

static void
test_result_thread_notify (gconstpointer data)
{
  FiberPool *pool = new_pool (data, 1);
  g_autoptr(GtSignalLogger) logger = gt_signal_logger_new ();
  gboolean value = TRUE;

  gt_signal_logger_connect (logger, pool, "notify::result-thread");

  /* Explicit notify: only a change is announced. */
  g_object_set (pool, "result-thread", FALSE, NULL);
  gt_signal_logger_assert_no_emissions (logger);
  g_object_set (pool, "result-thread", TRUE, NULL);
  gt_signal_logger_assert_emission_pop (logger, pool, "notify::result-thread", NULL);
  g_object_set (pool, "result-thread", TRUE, NULL);
  gt_signal_logger_assert_no_emissions (logger);
  g_object_get (pool, "result-thread", &value, NULL);
  g_assert_true (value);

  pool_test_finish (pool);
  fiber_test_assert_no_leaks (2000);
}

/* ------------------------------------------------------------------------
 * Daemonic workers and children
 * ------------------------------------------------------------------------ */

static void
test_daemonic_children (gconstpointer data)
{
  const char *type = data;
  FiberPool *pool = new_pool (type, 1);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  gboolean daemon;

  g_object_get (pool, "daemon", &daemon, NULL);
  g_assert_cmpint (daemon, ==, g_str_equal (type, "process"));

  result = fiber_pool_apply (pool, "test.start-child", NULL, &error);
  if (daemon)
    {
      g_assert_error (error, FIBER_ERROR, FIBER_ERROR_DAEMONIC);
      g_assert_cmpstr (error->message, ==, "daemonic processes are not allowed to have children");
      g_assert_null (result);
    }
  else
    {
      g_assert_no_error (error);
      g_assert_cmpint (g_variant_get_int32 (result), ==, 0);
    }
  g_clear_pointer (&result, g_variant_unref);
  g_clear_error (&error);

  /* Pools in a worker: the same rule, for both nested types. */
  for (guint i = 0; i < G_N_ELEMENTS (pool_types); i++)
    {
      result = fiber_pool_apply (pool, "test.nested-pool", g_variant_new ("(s)", pool_types[i]), &error);
      if (daemon)
        {
          g_assert_error (error, FIBER_ERROR, FIBER_ERROR_DAEMONIC);
          g_assert_cmpstr (error->message, ==, "daemonic processes are not allowed to have children");
          g_clear_error (&error);
        }
      else
        {
          g_assert_no_error (error);
          g_assert_cmpint (g_variant_get_int32 (result), ==, 285);
          g_clear_pointer (&result, g_variant_unref);
        }
    }

  pool_test_finish (pool);
  fiber_test_assert_no_leaks (2000);
}

/* ------------------------------------------------------------------------
 * Interrupt
 * ------------------------------------------------------------------------ */

static void
test_interrupt (gconstpointer data)
{
  FiberPool *pool = new_pool (data, 2);
  g_autofree char *dir = pool_test_make_dir ();
  g_autofree char *marker = g_build_filename (dir, "running", NULL);
  FiberApplyResult *running[2];
  g_autoptr(FiberApplyResult) queued = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autoptr(GError) error = NULL;
  gint64 start;

  for (int i = 0; i < 2; i++)
    running[i] = fiber_pool_apply_async (pool, "test.started-then-sleep",
                                         g_variant_new ("(s)", marker), NULL, NULL, NULL);
  pool_test_wait_for_entries (dir, 2);
  /* Queued behind them, not running: the interrupt leaves it alone. */
  queued = fiber_pool_apply_async (pool, "test.square", g_variant_new_int32 (5),
                                   NULL, NULL, NULL);

  start = g_get_monotonic_time ();
  fiber_pool_interrupt (pool);
  for (int i = 0; i < 2; i++)
    {
      g_autoptr(GError) local_error = NULL;
      g_autoptr(GVariant) value = fiber_apply_result_get (running[i], POOL_TEST_GUARD_MSEC, &local_error);

      g_assert_error (local_error, FIBER_ERROR, FIBER_ERROR_INTERRUPTED);
      g_assert_null (value);
      g_object_unref (running[i]);
    }
  g_test_message ("both running tasks failed %.1f ms after interrupt()",
                  (g_get_monotonic_time () - start) / 1000.0);
  result = fiber_apply_result_get (queued, POOL_TEST_GUARD_MSEC, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_variant_get_int32 (result), ==, 25);
  g_clear_pointer (&result, g_variant_unref);

  /* The pool stays usable: the same workers serve on. */
  result = fiber_pool_map (pool, "test.square", pool_test_int_array (0, 50), 1, &error);
  g_assert_no_error (error);
  pool_test_assert_squares (result, 50);

  /* A worker holding a whole chunk: only the item it runs is
   * interrupted, the rest of the chunk runs as usual. */
  {
    g_autoptr(GVariantBuilder) b = g_variant_builder_new (G_VARIANT_TYPE ("av"));
    g_autoptr(FiberMapResult) mr = NULL;
    g_autofree char *chunk_marker = g_build_filename (dir, "chunk", NULL);
    guint index, n_ok = 0;

    g_variant_builder_add (b, "v", g_variant_new ("(s)", chunk_marker));
    for (int i = 1; i < 8; i++)
      g_variant_builder_add (b, "v", g_variant_new ("(s)", "-"));
    mr = fiber_pool_imap (pool, "test.started-then-sleep-or-not", g_variant_builder_end (b), 8, &error);
    g_assert_no_error (error);
    pool_test_wait_for_entries (dir, 3);
    fiber_pool_interrupt (pool);
    for (;;)
      {
        g_autoptr(GError) item_error = NULL;
        g_autoptr(GVariant) value = NULL;

        if (fiber_map_result_next (mr, POOL_TEST_GUARD_MSEC, &index, &value, &item_error))
          n_ok++;
        else if (item_error != NULL)
          {
            g_assert_error (item_error, FIBER_ERROR, FIBER_ERROR_INTERRUPTED);
            g_assert_cmpuint (index, ==, 0);
          }
        else
          break;
      }
    g_assert_cmpuint (n_ok, ==, 7);
  }

  /* Interrupting an idle pool does nothing. */
  fiber_pool_interrupt (pool);
  g_clear_pointer (&result, g_variant_unref);
  result = fiber_pool_apply (pool, "test.square", g_variant_new_int32 (6), &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_variant_get_int32 (result), ==, 36);

  pool_test_finish (pool);
  pool_test_remove_dir (dir);
  fiber_test_assert_no_leaks (2000);
}

/* pypushflow's "subprocess" task type: interrupting it ends the command. */
static void
test_interrupt_subprocess (gconstpointer data)
{
  FiberPool *pool = new_pool (data, 1);
  g_autofree char *dir = pool_test_make_dir ();
  g_autofree char *pidfile = g_build_filename (dir, "pid", NULL);
  g_autofree char *script = g_strdup_printf ("echo $$ > '%s.tmp' && mv '%s.tmp' '%s' && exec sleep 60",
                                             pidfile, pidfile, pidfile);
  const char *argv[] = { "sh", "-c", script, NULL };
  g_autoptr(FiberApplyResult) r = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  gint64 deadline;
  GPid pid;

  r = fiber_pool_apply_async (pool, "fiber.subprocess", g_variant_new ("(^as)", argv),
                              NULL, NULL, NULL);
  deadline = g_get_monotonic_time () + (gint64) POOL_TEST_GUARD_MSEC * 1000;
  while (!g_file_get_contents (pidfile, &text, NULL, NULL))
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_usleep (2000);
    }
  pid = (GPid) g_ascii_strtoll (text, NULL, 10);
  g_assert_cmpint (pid, >, 0);

  fiber_pool_interrupt (pool);
  value = fiber_apply_result_get (r, POOL_TEST_GUARD_MSEC, &error);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INTERRUPTED);
  g_assert_null (value);

  /* The command was stopped and reaped, not left running. */
  deadline = g_get_monotonic_time () + (gint64) POOL_TEST_GUARD_MSEC * 1000;
  while (fiber_test_pid_alive (pid))
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_usleep (5000);
    }

  pool_test_finish (pool);
  pool_test_remove_dir (dir);
  fiber_test_assert_no_leaks (2000);
}

/* Cancelling a queued call: its callback runs once with
 * G_IO_ERROR_CANCELLED and the task never runs. */
static void
test_cancel_queued (gconstpointer data)
{
  FiberPool *pool = new_pool (data, 1);
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autofree char *dir = pool_test_make_dir ();
  g_autofree char *busy = g_build_filename (dir, "busy", NULL);
  g_autofree char *never = g_build_filename (dir, "never", NULL);
  AsyncState state = { context, g_thread_self (), 0, NULL, NULL };
  g_autoptr(FiberApplyResult) running = NULL;
  g_autoptr(FiberApplyResult) queued = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GError) error = NULL;

  g_main_context_push_thread_default (context);
  running = fiber_pool_apply_async (pool, "test.started-then-sleep", g_variant_new ("(s)", busy),
                                    NULL, NULL, NULL);
  pool_test_wait_for_entries (dir, 1);
  queued = fiber_pool_apply_async (pool, "test.started-then-sleep", g_variant_new ("(s)", never),
                                   cancellable, apply_done, &state);
  g_cancellable_cancel (cancellable);
  run_until_called (&state);
  g_main_context_pop_thread_default (context);
  g_assert_error (state.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_null (state.value);
  g_clear_error (&state.error);

  fiber_pool_interrupt (pool);
  value = fiber_apply_result_get (running, POOL_TEST_GUARD_MSEC, &error);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INTERRUPTED);
  g_clear_error (&error);

  /* The one worker runs in order: had the cancelled call been sent, it
   * would have run before this one. */
  value = fiber_pool_apply (pool, "test.square", g_variant_new_int32 (4), &error);
  g_assert_no_error (error);
  g_assert_cmpuint (pool_test_count_entries (dir), ==, 1);

  pool_test_finish (pool);
  pool_test_remove_dir (dir);
  fiber_test_assert_no_leaks (2000);
}

/* join() with a timeout returns on time while work runs; dropping the last
 * reference of a busy pool stops it. */
static void
test_join_timeout_dispose (gconstpointer data)
{
  FiberPool *pool = new_pool (data, 2);
  g_autofree char *dir = pool_test_make_dir ();
  g_autofree char *marker = g_build_filename (dir, "running", NULL);
  g_autoptr(FiberApplyResult) r = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GError) error = NULL;

  r = fiber_pool_apply_async (pool, "test.started-then-sleep", g_variant_new ("(s)", marker),
                              NULL, NULL, NULL);
  pool_test_wait_for_entries (dir, 1);
  fiber_pool_close (pool);
  g_assert_false (fiber_pool_join (pool, 50, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_TIMEOUT);
  g_clear_error (&error);
  g_assert_false (fiber_apply_result_ready (r));

  /* The last reference goes while the task runs: the workers are stopped,
   * the call fails instead of hanging. */
  g_object_unref (pool);
  value = fiber_apply_result_get (r, POOL_TEST_GUARD_MSEC, &error);
  g_assert_nonnull (error);
  g_assert_null (value);

  pool_test_remove_dir (dir);
  fiber_test_assert_no_leaks (2000);
}

/* Arguments and results of several MiB travel whole. */
static void
test_large_payload (gconstpointer data)
{
  FiberPool *pool = new_pool (data, 2);
  const gsize size = 3 * 1024 * 1024;
  g_autofree guint8 *bytes = g_malloc (size);
  g_autoptr(GVariant) args = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;

  for (gsize i = 0; i < size; i++)
    bytes[i] = (guint8) (i * 7 + (i >> 13));
  args = g_variant_ref_sink (g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, bytes, size, 1));

  value = fiber_pool_apply (pool, "fiber.echo", args, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_equal (value, args));

  /* several at once, through both workers */
  results = fiber_pool_map (pool, "fiber.echo",
                            g_variant_new_array (NULL, (GVariant *[]) { args, args, args }, 3),
                            1, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (results), ==, 3);
  for (gsize i = 0; i < 3; i++)
    {
      g_autoptr(GVariant) boxed = g_variant_get_child_value (results, i);
      g_autoptr(GVariant) item = g_variant_get_variant (boxed);

      g_assert_true (g_variant_equal (item, args));
    }

  pool_test_finish (pool);
  fiber_test_assert_no_leaks (2000);
}

typedef struct
{
  FiberPool *pool;
  int        offset;
} ThreadJob;

static gpointer
map_in_thread (gpointer data)
{
  ThreadJob *job = data;

  for (int round = 0; round < 5; round++)
    {
      g_autoptr(GVariantBuilder) b = g_variant_builder_new (G_VARIANT_TYPE ("ai"));
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) results = NULL;

      for (int i = 0; i < 200; i++)
        g_variant_builder_add (b, "i", job->offset + i);
      results = fiber_pool_map (job->pool, "test.square", g_variant_builder_end (b), 0, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (g_variant_n_children (results), ==, 200);
      for (int i = 0; i < 200; i++)
        g_assert_cmpint (pool_test_av_int32 (results, i), ==, (job->offset + i) * (job->offset + i));
    }
  return NULL;
}

/* One pool used from several threads at once. */
static void
test_threads (gconstpointer data)
{
  FiberPool *pool = new_pool (data, 2);
  ThreadJob jobs[4];
  GThread *threads[4];

  for (int t = 0; t < 4; t++)
    {
      jobs[t].pool = pool;
      jobs[t].offset = t * 1000;
      threads[t] = g_thread_new ("mapper", map_in_thread, &jobs[t]);
    }
  for (int t = 0; t < 4; t++)
    g_thread_join (threads[t]);

  pool_test_finish (pool);
  fiber_test_assert_no_leaks (2000);
}

/* The callback runs exactly once however the call ends: the pool
 * terminated under it, or the caller dropped its last reference to the
 * pool before the result came. */
static void
test_callback_once_on_terminate (gconstpointer data)
{
  FiberPool *pool = new_pool (data, 1);
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autofree char *dir = pool_test_make_dir ();
  g_autofree char *marker = g_build_filename (dir, "running", NULL);
  AsyncState running = { context, g_thread_self (), 0, NULL, NULL };
  AsyncState queued = { context, g_thread_self (), 0, NULL, NULL };
  AsyncState orphan = { context, g_thread_self (), 0, NULL, NULL };
  g_autoptr(FiberApplyResult) r1 = NULL;
  g_autoptr(FiberApplyResult) r2 = NULL;
  FiberApplyResult *r3;

  g_main_context_push_thread_default (context);
  r1 = fiber_pool_apply_async (pool, "test.started-then-sleep", g_variant_new ("(s)", marker),
                               NULL, apply_done, &running);
  r2 = fiber_pool_apply_async (pool, "test.square", g_variant_new_int32 (3),
                               NULL, apply_done, &queued);
  pool_test_wait_for_entries (dir, 1);
  fiber_pool_terminate (pool);
  run_until_called (&running);
  run_until_called (&queued);
  g_assert_error (running.error, FIBER_ERROR, FIBER_ERROR_CLOSED);
  g_assert_error (queued.error, FIBER_ERROR, FIBER_ERROR_CLOSED);
  g_clear_error (&running.error);
  g_clear_error (&queued.error);
  g_object_unref (pool);

  /* A call whose pool the caller lets go of at once. */
  pool = new_pool (data, 1);
  r3 = fiber_pool_apply_async (pool, "test.square", g_variant_new_int32 (9),
                               NULL, apply_done, &orphan);
  g_object_unref (r3);
  g_object_unref (pool);
  run_until_called (&orphan);
  g_main_context_pop_thread_default (context);
  if (orphan.error == NULL)
    {
      g_assert_cmpint (g_variant_get_int32 (orphan.value), ==, 81);
      g_variant_unref (orphan.value);
    }
  else
    {
      /* dropping the last reference terminates the pool */
      g_assert_error (orphan.error, FIBER_ERROR, FIBER_ERROR_CLOSED);
      g_clear_error (&orphan.error);
    }

  pool_test_remove_dir (dir);
  fiber_test_assert_no_leaks (2000);
}

static guint
count_fds (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
  guint n = 0;

  while (dir != NULL && g_dir_read_name (dir) != NULL)
    n++;
  return n;
}

/* Pools come and go without leaving descriptors or threads behind. */
static void
test_no_fd_leak (gconstpointer data)
{
  guint before, after;

  /* a first pool sets up whatever the process keeps for good */
  pool_test_finish (new_pool (data, 2));
  before = count_fds ();
  for (int i = 0; i < 8; i++)
    {
      FiberPool *pool = new_pool (data, 2);
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) results = NULL;

      results = fiber_pool_map (pool, "test.square", pool_test_int_array (0, 10), 1, &error);
      g_assert_no_error (error);
      if (i % 2 == 0)
        pool_test_finish (pool);
      else
        {
          fiber_pool_terminate (pool);
          g_object_unref (pool);
        }
    }
  after = count_fds ();
  g_assert_cmpuint (after, ==, before);

  fiber_test_assert_no_leaks (2000);
}

/* processes 0 means one per CPU; pools closed or terminated before their
 * workers even connected end cleanly. */
static void
test_lifecycle_edges (gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  FiberPool *pool;

  pool = fiber_pool_new (data, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (fiber_pool_get_processes (pool), ==, fiber_cpu_count ());
  result = fiber_pool_apply (pool, "test.square", g_variant_new_int32 (11), &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_variant_get_int32 (result), ==, 121);
  pool_test_finish (pool);

  /* closed at once: queued work still runs */
  pool = new_pool (data, 3);
  {
    g_autoptr(FiberApplyResult) r = fiber_pool_apply_async (pool, "test.square",
                                                            g_variant_new_int32 (5),
                                                            NULL, NULL, NULL);
    g_autoptr(GVariant) value = NULL;

    fiber_pool_close (pool);
    value = fiber_apply_result_get (r, POOL_TEST_GUARD_MSEC, &error);
    g_assert_no_error (error);
    g_assert_cmpint (g_variant_get_int32 (value), ==, 25);
  }
  g_assert_true (fiber_pool_join (pool, POOL_TEST_GUARD_MSEC, &error));
  g_assert_no_error (error);
  g_object_unref (pool);

  /* closed with nothing to do, terminated, dropped: all before the
   * workers said HELLO */
  pool = new_pool (data, 3);
  pool_test_finish (pool);
  pool = new_pool (data, 3);
  fiber_pool_terminate (pool);
  g_object_unref (pool);
  g_object_unref (new_pool (data, 3));

  /* terminate and close are idempotent, in any order */
  pool = new_pool (data, 1);
  fiber_pool_close (pool);
  fiber_pool_terminate (pool);
  fiber_pool_close (pool);
  fiber_pool_terminate (pool);
  g_assert_true (fiber_pool_join (pool, POOL_TEST_GUARD_MSEC, &error));
  g_assert_true (fiber_pool_join (pool, 0, &error));
  g_assert_no_error (error);
  g_object_unref (pool);

  fiber_test_assert_no_leaks (2000);
}

static volatile sig_atomic_t sigint_seen;

static void
on_sigint (int signum)
{
  sigint_seen = 1;
}

/* Ctrl-C in a terminal: SIGINT to the whole foreground process group
 * reaches the workers (ndprocess, and process ones too), whose running
 * tasks fail; the pool lives on. */
static void
test_sigint_group (gconstpointer data)
{
  struct sigaction action = { 0 }, old_action;
  FiberPool *pool = NULL;
  g_autofree char *dir = pool_test_make_dir ();
  g_autofree char *marker = g_build_filename (dir, "running", NULL);
  g_autoptr(GArray) children = NULL;
  FiberApplyResult *running[2];
  g_autoptr(GVariant) result = NULL;
  g_autoptr(GError) error = NULL;

  /* Have a process group of our own, so that the signal reaches nobody
   * else (meson already runs each test in its own session). */
  if (getpgrp () != getpid ())
    g_assert_cmpint (setpgid (0, 0), ==, 0);

  action.sa_handler = on_sigint;
  sigemptyset (&action.sa_mask);
  g_assert_cmpint (sigaction (SIGINT, &action, &old_action), ==, 0);

  pool = new_pool (data, 2);
  for (int i = 0; i < 2; i++)
    running[i] = fiber_pool_apply_async (pool, "test.started-then-sleep",
                                         g_variant_new ("(s)", marker), NULL, NULL, NULL);
  pool_test_wait_for_entries (dir, 2);

  /* The workers are in our group. */
  children = fiber_test_list_children ();
  g_assert_cmpuint (children->len, ==, 2);
  for (guint i = 0; i < children->len; i++)
    g_assert_cmpint (getpgid (g_array_index (children, GPid, i)), ==, getpgrp ());

  sigint_seen = 0;
  g_assert_cmpint (kill (-getpgrp (), SIGINT), ==, 0);
  for (int i = 0; i < 2; i++)
    {
      g_autoptr(GError) local_error = NULL;
      g_autoptr(GVariant) value = fiber_apply_result_get (running[i], POOL_TEST_GUARD_MSEC, &local_error);

      g_assert_error (local_error, FIBER_ERROR, FIBER_ERROR_INTERRUPTED);
      g_assert_null (value);
      g_object_unref (running[i]);
    }
  g_assert_true (sigint_seen);

  result = fiber_pool_map (pool, "test.square", pool_test_int_array (0, 20), 1, &error);
  g_assert_no_error (error);
  pool_test_assert_squares (result, 20);
  g_clear_pointer (&result, g_variant_unref);

  /* Idle workers shrug a SIGINT off: the same two serve on. */
  g_assert_cmpint (kill (-getpgrp (), SIGINT), ==, 0);
  g_usleep (100 * 1000);
  result = fiber_pool_map (pool, "test.square", pool_test_int_array (0, 20), 1, &error);
  g_assert_no_error (error);
  pool_test_assert_squares (result, 20);
  {
    g_autoptr(GArray) now = fiber_test_list_children ();

    g_assert_cmpuint (now->len, ==, children->len);
    for (guint i = 0; i < now->len; i++)
      g_assert_cmpint (g_array_index (now, GPid, i), ==, g_array_index (children, GPid, i));
  }

  pool_test_finish (pool);
  sigaction (SIGINT, &old_action, NULL);
  pool_test_remove_dir (dir);
  fiber_test_assert_no_leaks (2000);
}

static const PoolTestCase cases[] = {
  { "map-small", test_map_small },
  { "map-1000", test_map_1000 },
  { "apply", test_apply },
  { "apply-async", test_apply_async },
  { "imap", test_imap },
  { "imap-unordered", test_imap_unordered },
  { "starmap", test_starmap },
  { "closed", test_closed },
  { "terminate", test_terminate_fails_work },
  { "nine-workers", test_nine_workers },
  { "apply-async-rounds", test_apply_async_rounds },
  { "pi", test_pi },
  { "maxtasksperchild", test_maxtasksperchild },
  { "initializer", test_initializer },
  { "initializer-fails", test_initializer_fails },
  { "result-thread-notify", test_result_thread_notify },
  { "daemonic-children", test_daemonic_children },
  { "interrupt", test_interrupt },
  { "interrupt-subprocess", test_interrupt_subprocess },
  { "cancel-queued", test_cancel_queued },
  { "callback-once-on-terminate", test_callback_once_on_terminate },
  { "join-timeout-dispose", test_join_timeout_dispose },
  { "large-payload", test_large_payload },
  { "threads", test_threads },
  { "no-fd-leak", test_no_fd_leak },
  { "lifecycle-edges", test_lifecycle_edges },
  { "sigint-group", test_sigint_group },
};

int
main (int    argc,
      char **argv)
{
  g_autoptr(GError) error = NULL;
  int ret;

  fiber_task_register ("test.square", pool_test_task_square, NULL, NULL);
  fiber_task_register ("test.add", pool_test_task_add, NULL, NULL);
  fiber_task_register ("test.sleep-return", task_sleep_return, NULL, NULL);
  fiber_task_register ("test.getpid", task_getpid, NULL, NULL);
  fiber_task_register ("test.barrier", task_barrier, NULL, NULL);
  fiber_task_register ("test.pi", task_pi, NULL, NULL);
  fiber_task_register ("test.init", task_init, NULL, NULL);
  fiber_task_register ("test.get-init", task_get_init, NULL, NULL);
  fiber_task_register ("test.start-child", task_start_child, NULL, NULL);
  fiber_task_register ("test.nested-pool", task_nested_pool, NULL, NULL);
  fiber_task_register ("test.started-then-sleep", pool_test_task_started_then_sleep, NULL, NULL);
  fiber_task_register ("test.started-then-sleep-or-not", task_started_then_sleep_or_not, NULL, NULL);

  if (!fiber_init (&argc, &argv, &error))
    g_error ("fiber_init: %s", error->message);
  fiber_test_init_environment ();
  g_test_init (&argc, &argv, NULL);

  pool_test_add_typed_cases ("pool", cases, G_N_ELEMENTS (cases));

  ret = g_test_run ();
  fiber_test_cleanup_environment ();
  return ret;
}

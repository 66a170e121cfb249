/* test-conformance.c — the behaviours of the core pool contract, run
 * against every pool type fiber_pool_list_types() knows (except `remote`,
 * which needs a cluster and has its own tests)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Each case is added once per type as /conformance/<type>/<case> with the
 * type name as its data and creates its pools with fiber_pool_new(), so a
 * pool type from a module (FIBER_MODULE_DIR) is checked the same way.  The
 * tasks are registered before fiber_init(), so worker processes (this
 * program re-executed) run them too; tasks that must be seen from here
 * leave their traces in the filesystem, the one thing every pool type
 * shares with the test.
 */

#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include <fiber.h>

#include "fiber-test-util.h"
#include "pool-test-util.h"

/* ---- tasks -------------------------------------------------------------------- */

/* (si): marks itself started in the directory, then sleeps until it is
 * cancelled (cooperatively in a coroutine). */
static GVariant *
task_block (GVariant *args, GCancellable *cancellable, gpointer user_data, GError **error)
{
  const char *dir;
  gint32 index;
  g_autofree char *name = NULL;

  g_variant_get (args, "(&si)", &dir, &index);
  name = g_strdup_printf ("started-%d", index);
  if (!pool_test_touch (dir, name, error))
    return NULL;
  if (!fiber_sleep (POOL_TEST_GUARD_MSEC / 1000.0, cancellable, error))
    return NULL;
  return g_variant_new ("()");
}

/* (s): appends one byte to the file (one line per run), then fails. */
static GVariant *
task_fail_counted (GVariant *args, GCancellable *cancellable, gpointer user_data, GError **error)
{
  const char *path;

  g_variant_get (args, "(&s)", &path);
  if (!pool_test_append_line (path, "x", error))
    return NULL;
  g_set_error (error, FIBER_ERROR, FIBER_ERROR_TASK_FAILED, "deliberate failure");
  return NULL;
}

/* (sii) dir, index, n: arrives in the directory, then waits until all n
 * tasks have arrived.  Finishes only if the n tasks run at the same time. */
static GVariant *
task_rendezvous (GVariant *args, GCancellable *cancellable, gpointer user_data, GError **error)
{
  const char *dir;
  gint32 index, n;
  g_autofree char *name = NULL;
  gint64 deadline = g_get_monotonic_time () + (gint64) POOL_TEST_GUARD_MSEC / 2 * 1000;
  guint arrived;

  g_variant_get (args, "(&sii)", &dir, &index, &n);
  name = g_strdup_printf ("%d", index);
  if (!pool_test_touch (dir, name, error))
    return NULL;
  while ((arrived = pool_test_count_entries (dir)) < (guint) n)
    {
      if (g_get_monotonic_time () > deadline)
        {
          g_set_error (error, FIBER_ERROR, FIBER_ERROR_TIMEOUT,
                       "task %d: only %u of %d tasks ever ran at the same time",
                       index, arrived, n);
          return NULL;
        }
      if (!fiber_sleep (0.01, cancellable, error))
        return NULL;
    }
  return g_variant_new_int32 (index);
}

static void
register_tasks (void)
{
  fiber_task_register ("conf.add", pool_test_task_add, NULL, NULL);
  fiber_task_register ("conf.block", task_block, NULL, NULL);
  fiber_task_register ("conf.fail-counted", task_fail_counted, NULL, NULL);
  fiber_task_register ("conf.rendezvous", task_rendezvous, NULL, NULL);
}

/* ---- helpers ----------------------------------------------------------------- */

/* Closes, joins and drops the pool, then checks that it left nothing. */
static void
finish (FiberPool **pool)
{
  pool_test_close_and_join (*pool);
  g_clear_object (pool);
  fiber_test_assert_no_leaks (5000);
}

/* ---- cases ------------------------------------------------------------------- */

static void
test_map_small (gconstpointer type)
{
  g_autoptr(FiberPool) pool = pool_test_new (type, 2);
  g_autoptr(GVariant) out = NULL;
  g_autoptr(GError) error = NULL;

  out = fiber_pool_map (pool, "fiber.echo", pool_test_int_array (1, 3), 0, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (out), ==, "av");
  g_assert_cmpuint (g_variant_n_children (out), ==, 3);
  for (guint i = 0; i < 3; i++)
    g_assert_cmpint (pool_test_av_int32 (out, i), ==, (gint32) i + 1);

  /* an empty iterable is an empty result, not an error */
  g_clear_pointer (&out, g_variant_unref);
  out = fiber_pool_map (pool, "fiber.echo", pool_test_int_array (0, 0), 0, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (out), ==, 0);
  finish (&pool);
}

static void
test_map_thousand (gconstpointer type)
{
  g_autoptr(FiberPool) pool = pool_test_new (type, 2);
  const guint chunksizes[] = { 0, 1, 7 };

  for (gsize c = 0; c < G_N_ELEMENTS (chunksizes); c++)
    {
      g_autoptr(GVariant) out = NULL;
      g_autoptr(GError) error = NULL;

      out = fiber_pool_map (pool, "fiber.echo", pool_test_int_array (0, 1000), chunksizes[c], &error);
      g_assert_no_error (error);
      g_assert_cmpuint (g_variant_n_children (out), ==, 1000);
      for (guint i = 0; i < 1000; i++)
        g_assert_cmpint (pool_test_av_int32 (out, i), ==, (gint32) i);
    }
  finish (&pool);
}

static void
test_apply (gconstpointer type)
{
  g_autoptr(FiberPool) pool = pool_test_new (type, 2);
  g_autoptr(GVariant) out = NULL;
  g_autoptr(GVariant) unit = NULL;
  g_autoptr(GError) error = NULL;
  const char *text;
  gint32 n;

  out = fiber_pool_apply (pool, "fiber.echo", g_variant_new ("(si)", "x", 5), &error);
  g_assert_no_error (error);
  g_variant_get (out, "(&si)", &text, &n);
  g_assert_cmpstr (text, ==, "x");
  g_assert_cmpint (n, ==, 5);

  g_clear_pointer (&out, g_variant_unref);
  out = fiber_pool_apply (pool, "conf.add", g_variant_new ("(ii)", 40, 2), &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_variant_get_int32 (out), ==, 42);

  /* NULL args is the empty tuple */
  unit = fiber_pool_apply (pool, "fiber.noop", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (unit), ==, "()");
  finish (&pool);
}

typedef struct
{
  guint    calls;
  GThread *thread;
  gint32   value;
} CallbackData;

static void
on_apply_done (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  CallbackData *data = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = fiber_pool_apply_finish (FIBER_POOL (source), result, &error);

  g_assert_no_error (error);
  data->value = g_variant_get_int32 (value);
  data->thread = g_thread_self ();
  data->calls++;
}

static void
test_apply_async_callback (gconstpointer type)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(FiberPool) pool = pool_test_new (type, 2);
  g_autoptr(FiberApplyResult) result = NULL;
  CallbackData data = { 0, NULL, 0 };
  gint64 until;

  g_main_context_push_thread_default (context);
  result = fiber_pool_apply_async (pool, "fiber.echo", g_variant_new_int32 (42),
                                   NULL, on_apply_done, &data);
  g_assert_cmpuint (data.calls, ==, 0);
  g_assert_true (fiber_apply_result_wait (result, POOL_TEST_GUARD_MSEC));
  /* ready, but the callback waits for the caller's context */
  g_assert_cmpuint (data.calls, ==, 0);
  while (data.calls == 0)
    g_main_context_iteration (context, TRUE);
  /* exactly once: nothing else arrives for a while */
  until = g_get_monotonic_time () + 100 * 1000;
  while (g_get_monotonic_time () < until)
    if (!g_main_context_iteration (context, FALSE))
      g_usleep (1000);
  g_main_context_pop_thread_default (context);

  g_assert_cmpuint (data.calls, ==, 1);
  g_assert_true (data.thread == g_thread_self ());
  g_assert_cmpint (data.value, ==, 42);
  g_assert_true (fiber_apply_result_successful (result, NULL));
  finish (&pool);
}

static void
test_imap (gconstpointer type)
{
  g_autoptr(FiberPool) pool = pool_test_new (type, 3);
  g_autoptr(FiberMapResult) it = NULL;
  g_autoptr(GError) error = NULL;
  guint expect = 0, index;

  it = fiber_pool_imap (pool, "fiber.echo", pool_test_int_array (0, 50), 3, &error);
  g_assert_no_error (error);
  for (;;)
    {
      g_autoptr(GVariant) value = NULL;
      g_autoptr(GError) item_error = NULL;

      if (!fiber_map_result_next (it, POOL_TEST_GUARD_MSEC, &index, &value, &item_error))
        {
          g_assert_no_error (item_error);
          break;
        }
      g_assert_cmpuint (index, ==, expect);
      g_assert_cmpint (g_variant_get_int32 (value), ==, (gint32) expect);
      expect++;
    }
  g_assert_cmpuint (expect, ==, 50);
  finish (&pool);
}

static void
test_imap_unordered (gconstpointer type)
{
  g_autoptr(FiberPool) pool = pool_test_new (type, 3);
  g_autoptr(FiberMapResult) it = NULL;
  g_autoptr(GError) error = NULL;
  gboolean seen[50] = { FALSE, };
  guint n_seen = 0, index;

  it = fiber_pool_imap_unordered (pool, "fiber.echo", pool_test_int_array (0, 50), 1, &error);
  g_assert_no_error (error);
  for (;;)
    {
      g_autoptr(GVariant) value = NULL;
      g_autoptr(GError) item_error = NULL;

      if (!fiber_map_result_next (it, POOL_TEST_GUARD_MSEC, &index, &value, &item_error))
        {
          g_assert_no_error (item_error);
          break;
        }
      g_assert_cmpuint (index, <, 50);
      g_assert_false (seen[index]);
      g_assert_cmpint (g_variant_get_int32 (value), ==, (gint32) index);
      seen[index] = TRUE;
      n_seen++;
    }
  g_assert_cmpuint (n_seen, ==, 50);
  finish (&pool);
}

static void
test_starmap (gconstpointer type)
{
  g_autoptr(FiberPool) pool = pool_test_new (type, 2);
  const guint chunksizes[] = { 1, 10 };

  for (gsize c = 0; c < G_N_ELEMENTS (chunksizes); c++)
    {
      g_autoptr(GVariant) out = NULL;
      g_autoptr(GError) error = NULL;
      GVariantBuilder b;

      g_variant_builder_init (&b, G_VARIANT_TYPE ("a(ii)"));
      for (int i = 0; i < 100; i++)
        g_variant_builder_add (&b, "(ii)", i, 2 * i);
      out = fiber_pool_starmap (pool, "conf.add", g_variant_builder_end (&b),
                                chunksizes[c], &error);
      g_assert_no_error (error);
      g_assert_cmpuint (g_variant_n_children (out), ==, 100);
      for (guint i = 0; i < 100; i++)
        g_assert_cmpint (pool_test_av_int32 (out, i), ==, (gint32) (3 * i));
    }

  /* starmap needs tuples */
  {
    g_autoptr(GVariant) out = NULL;
    g_autoptr(GError) error = NULL;

    out = fiber_pool_starmap (pool, "conf.add", pool_test_int_array (0, 3), 1, &error);
    g_assert_null (out);
    g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  }
  finish (&pool);
}

static void
test_closed (gconstpointer type)
{
  g_autoptr(FiberPool) pool = pool_test_new (type, 2);
  g_autoptr(FiberApplyResult) async = NULL;
  g_autoptr(FiberMapResult) it = NULL;
  g_autoptr(GVariant) out = NULL;
  g_autoptr(GError) error = NULL;

  out = fiber_pool_apply (pool, "fiber.noop", NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&out, g_variant_unref);

  fiber_pool_close (pool);
  g_assert_true (fiber_pool_is_closed (pool));

  out = fiber_pool_apply (pool, "fiber.echo", g_variant_new_int32 (1), &error);
  g_assert_null (out);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_CLOSED);
  g_clear_error (&error);

  out = fiber_pool_map (pool, "fiber.echo", pool_test_int_array (0, 3), 0, &error);
  g_assert_null (out);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_CLOSED);
  g_clear_error (&error);

  async = fiber_pool_apply_async (pool, "fiber.echo", NULL, NULL, NULL, NULL);
  g_assert_null (fiber_apply_result_get (async, POOL_TEST_GUARD_MSEC, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_CLOSED);
  g_clear_error (&error);

  it = fiber_pool_imap (pool, "fiber.echo", pool_test_int_array (0, 3), 1, &error);
  if (it != NULL)
    {
      guint index;
      g_autoptr(GVariant) value = NULL;

      g_assert_false (fiber_map_result_next (it, POOL_TEST_GUARD_MSEC, &index, &value, &error));
    }
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_CLOSED);
  g_clear_error (&error);

  g_assert_true (fiber_pool_join (pool, POOL_TEST_GUARD_MSEC, &error));
  g_assert_no_error (error);
  g_clear_object (&pool);
  fiber_test_assert_no_leaks (5000);
}

static void
test_task_error_not_retried (gconstpointer type)
{
  g_autoptr(FiberPool) pool = pool_test_new (type, 2);
  g_autofree char *dir = pool_test_make_dir ();
  g_autofree char *counter = g_build_filename (dir, "runs", NULL);
  g_autofree char *contents = NULL;
  g_autoptr(GVariant) out = NULL;
  g_autoptr(GError) error = NULL;
  gsize length = 0;

  out = fiber_pool_apply (pool, "fiber.fail", g_variant_new ("(s)", "the message"), &error);
  g_assert_null (out);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_TASK_FAILED);
  g_assert_nonnull (strstr (error->message, "the message"));
  g_clear_error (&error);

  out = fiber_pool_apply (pool, "conf.fail-counted", g_variant_new ("(s)", counter), &error);
  g_assert_null (out);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_TASK_FAILED);
  g_assert_nonnull (strstr (error->message, "deliberate failure"));
  g_clear_error (&error);

  /* the pool is still fine, and the task ran exactly once */
  out = fiber_pool_apply (pool, "conf.add", g_variant_new ("(ii)", 1, 2), &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_variant_get_int32 (out), ==, 3);
  g_assert_true (g_file_get_contents (counter, &contents, &length, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (length, ==, 1);

  pool_test_close_and_join (pool);
  g_clear_object (&pool);
  pool_test_remove_dir (dir);
  fiber_test_assert_no_leaks (5000);
}

static void
test_unknown_task (gconstpointer type)
{
  g_autoptr(FiberPool) pool = pool_test_new (type, 2);
  g_autoptr(GVariant) out = NULL;
  g_autoptr(GError) error = NULL;

  out = fiber_pool_apply (pool, "no.such.task", NULL, &error);
  g_assert_null (out);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_UNKNOWN_TASK);
  g_assert_nonnull (strstr (error->message, "no.such.task"));
  g_clear_error (&error);

  out = fiber_pool_map (pool, "no.such.task", pool_test_int_array (0, 5), 2, &error);
  g_assert_null (out);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_UNKNOWN_TASK);
  g_clear_error (&error);

  /* still usable */
  out = fiber_pool_apply (pool, "fiber.echo", g_variant_new_int32 (7), &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_variant_get_int32 (out), ==, 7);
  finish (&pool);
}

static void
test_interrupt (gconstpointer type)
{
  g_autoptr(FiberPool) pool = pool_test_new (type, 2);
  g_autofree char *dir = pool_test_make_dir ();
  FiberApplyResult *blocked[2] = { NULL, NULL };
  g_autoptr(GVariant) out = NULL;
  g_autoptr(GError) error = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (blocked); i++)
    blocked[i] = fiber_pool_apply_async (pool, "conf.block",
                                         g_variant_new ("(si)", dir, (gint32) i),
                                         NULL, NULL, NULL);
  pool_test_wait_for_entries (dir, G_N_ELEMENTS (blocked));
  fiber_pool_interrupt (pool);

  for (guint i = 0; i < G_N_ELEMENTS (blocked); i++)
    {
      g_assert_null (fiber_apply_result_get (blocked[i], POOL_TEST_GUARD_MSEC, &error));
      g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INTERRUPTED);
      g_clear_error (&error);
      g_clear_object (&blocked[i]);
    }

  /* still usable, and later tasks are not interrupted */
  out = fiber_pool_map (pool, "fiber.sleep", g_variant_new_parsed ("[(0.01,), (0.01,), (0.01,)]"),
                        1, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (out), ==, 3);

  pool_test_close_and_join (pool);
  g_clear_object (&pool);
  pool_test_remove_dir (dir);
  fiber_test_assert_no_leaks (5000);
}

/* 9 tasks on 9 workers that only finish once all 9 run at the same time:
 * every worker takes a task, none hoards two. */
static void
test_nine_rendezvous (gconstpointer type)
{
  const guint n = 9;
  g_autoptr(FiberPool) pool = pool_test_new (type, n);
  g_autofree char *dir = pool_test_make_dir ();
  g_autoptr(GVariant) out = NULL;
  g_autoptr(GError) error = NULL;
  GVariantBuilder b;
  gint64 start = g_get_monotonic_time ();

  g_assert_cmpuint (fiber_pool_get_processes (pool), ==, n);
  g_variant_builder_init (&b, G_VARIANT_TYPE ("a(sii)"));
  for (guint i = 0; i < n; i++)
    g_variant_builder_add (&b, "(sii)", dir, (gint32) i, (gint32) n);
  out = fiber_pool_starmap (pool, "conf.rendezvous", g_variant_builder_end (&b), 1, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (out), ==, n);
  for (guint i = 0; i < n; i++)
    g_assert_cmpint (pool_test_av_int32 (out, i), ==, (gint32) i);
  g_test_message ("%s: %u tasks met in %.3f s", (const char *) type, n,
                  (g_get_monotonic_time () - start) / 1e6);

  pool_test_close_and_join (pool);
  g_clear_object (&pool);
  pool_test_remove_dir (dir);
  fiber_test_assert_no_leaks (5000);
}

typedef struct
{
  int destroyed;   /* atomic */
} FuncData;

static GVariant *
times_six (GVariant *args, GCancellable *cancellable, gpointer user_data, GError **error)
{
  return g_variant_new_int32 (6 * g_variant_get_int32 (args));
}

static void
func_data_destroy (gpointer data)
{
  FuncData *fd = data;

  g_atomic_int_inc (&fd->destroyed);
}

/* A caller-supplied function: runs on in-process pools, and is a clear
 * FIBER_ERROR_NOT_SUPPORTED on pools whose workers are other processes;
 * either way the data is released exactly once. */
static void
test_apply_func (gconstpointer type)
{
  g_autoptr(FiberPool) pool = pool_test_new (type, 2);
  g_autoptr(FiberApplyResult) result = NULL;
  g_autoptr(GError) error = NULL;
  FuncData data = { 0 };

  result = fiber_pool_apply_func (pool, g_variant_new_int32 (7), times_six,
                                  &data, func_data_destroy, &error);
  if (FIBER_IS_PROCESS_POOL (pool))
    {
      g_assert_null (result);
      g_assert_error (error, FIBER_ERROR, FIBER_ERROR_NOT_SUPPORTED);
      g_assert_nonnull (strstr (error->message, type));
      g_assert_cmpint (g_atomic_int_get (&data.destroyed), ==, 1);
    }
  else
    {
      g_autoptr(GVariant) value = NULL;

      g_assert_no_error (error);
      value = fiber_apply_result_get (result, POOL_TEST_GUARD_MSEC, &error);
      g_assert_no_error (error);
      g_assert_cmpint (g_variant_get_int32 (value), ==, 42);
    }
  pool_test_close_and_join (pool);
  g_clear_object (&result);
  g_clear_object (&pool);
  g_assert_cmpint (g_atomic_int_get (&data.destroyed), ==, 1);
  fiber_test_assert_no_leaks (5000);
}

int
main (int argc, char **argv)
{
  g_auto(GStrv) types = NULL;
  int ret;

  register_tasks ();
  fiber_init (&argc, &argv, NULL);
  fiber_test_init_environment ();
  g_test_init (&argc, &argv, NULL);

  types = fiber_pool_list_types ();
  for (guint i = 0; types[i] != NULL; i++)
    {
      struct { const char *name; GTestDataFunc func; } cases[] = {
        { "map-small", test_map_small },
        { "map-thousand", test_map_thousand },
        { "apply", test_apply },
        { "apply-async-callback", test_apply_async_callback },
        { "imap", test_imap },
        { "imap-unordered", test_imap_unordered },
        { "starmap", test_starmap },
        { "closed", test_closed },
        { "task-error-not-retried", test_task_error_not_retried },
        { "unknown-task", test_unknown_task },
        { "interrupt", test_interrupt },
        { "nine-rendezvous", test_nine_rendezvous },
        { "apply-func", test_apply_func },
      };

      /* remote needs a cluster: tests/c/test-slurm-backend.c covers it */
      if (g_str_equal (types[i], "remote"))
        continue;
      for (gsize j = 0; j < G_N_ELEMENTS (cases); j++)
        {
          g_autofree char *path = g_strdup_printf ("/conformance/%s/%s", types[i], cases[j].name);
          g_test_add_data_func (path, types[i], cases[j].func);
        }
    }

  ret = g_test_run ();
  fiber_test_cleanup_environment ();
  return ret;
}

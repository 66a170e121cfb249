/* inproc-pool-tests.h — behaviours every in-process pool type (thread,
 * coroutine) must show; included by test-thread-pool.c and
 * test-coroutine-pool.c, which set make_pool and call add_inproc_pool_tests().
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <fiber.h>

#include <string.h>

#include "fiber-test-util.h"
#include "pool-test-util.h"

/* Creates the pool type under test with @processes workers. */
static FiberPool *(*make_pool) (guint processes);

static int n_blocking;      /* atomic: test.block tasks running now */
static int max_blocking;    /* atomic: the most test.block tasks seen running at once */
static int n_initialized;   /* atomic: test.init calls */

/* ---- tasks ------------------------------------------------------------------- */

static GVariant *
task_maybe_fail (GVariant *args, GCancellable *cancellable, gpointer user_data, GError **error)
{
  gint32 i = g_variant_get_int32 (args);

  if (i % 20 == 0)
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_TASK_FAILED, "item %d failed", i);
      return NULL;
    }
  return g_variant_new_int32 (i);
}

/* Blocks (cooperatively in a coroutine) until cancelled. */
static GVariant *
task_block (GVariant *args, GCancellable *cancellable, gpointer user_data, GError **error)
{
  gboolean ok;
  int now = g_atomic_int_add (&n_blocking, 1) + 1;
  int max;

  while ((max = g_atomic_int_get (&max_blocking)) < now &&
         !g_atomic_int_compare_and_exchange (&max_blocking, max, now))
    ;
  ok = fiber_sleep (60.0, cancellable, error);
  g_atomic_int_add (&n_blocking, -1);
  return ok ? g_variant_new ("()") : NULL;
}

static GVariant *
task_init (GVariant *args, GCancellable *cancellable, gpointer user_data, GError **error)
{
  g_atomic_int_inc (&n_initialized);
  return g_variant_new ("()");
}

static void
register_inproc_pool_tasks (void)
{
  fiber_task_register ("test.add", pool_test_task_add, NULL, NULL);
  fiber_task_register ("test.maybe-fail", task_maybe_fail, NULL, NULL);
  fiber_task_register ("test.block", task_block, NULL, NULL);
  fiber_task_register ("test.init", task_init, NULL, NULL);
}

/* ---- helpers ----------------------------------------------------------------- */

/* The short names the including tests use for the shared helpers. */
#define int_array      pool_test_int_array
#define av_int         pool_test_av_int32
#define close_and_join pool_test_close_and_join

static void
wait_for_blocking (int n)
{
  gint64 deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;

  while (g_atomic_int_get (&n_blocking) < n)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_usleep (1000);
    }
}

/* ---- tests ------------------------------------------------------------------- */

static void
test_map_small (void)
{
  g_autoptr(FiberPool) pool = make_pool (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) out = NULL;

  out = fiber_pool_map (pool, "fiber.echo", int_array (1, 3), 0, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (out), ==, "av");
  g_assert_cmpuint (g_variant_n_children (out), ==, 3);
  for (guint i = 0; i < 3; i++)
    g_assert_cmpint (av_int (out, i), ==, (gint32) i + 1);
  close_and_join (pool);
  g_clear_object (&pool);
  fiber_test_assert_no_leaks (2000);
}

static void
test_map_thousand (void)
{
  g_autoptr(FiberPool) pool = make_pool (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) out = NULL;

  for (guint cs = 0; cs <= 7; cs += 7)
    {
      g_clear_pointer (&out, g_variant_unref);
      out = fiber_pool_map (pool, "fiber.echo", int_array (0, 1000), cs, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (g_variant_n_children (out), ==, 1000);
      for (guint i = 0; i < 1000; i++)
        g_assert_cmpint (av_int (out, i), ==, (gint32) i);
    }
  close_and_join (pool);
  g_clear_object (&pool);
  fiber_test_assert_no_leaks (2000);
}

static void
test_apply (void)
{
  g_autoptr(FiberPool) pool = make_pool (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) out = NULL;
  g_autoptr(GVariant) sub = NULL;
  const char *text;
  gint32 n;

  out = fiber_pool_apply (pool, "fiber.echo", g_variant_new ("(si)", "x", 5), &error);
  g_assert_no_error (error);
  g_variant_get (out, "(&si)", &text, &n);
  g_assert_cmpstr (text, ==, "x");
  g_assert_cmpint (n, ==, 5);

  g_clear_pointer (&out, g_variant_unref);
  out = fiber_pool_apply (pool, "no.such.task", NULL, &error);
  g_assert_null (out);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_UNKNOWN_TASK);
  g_clear_error (&error);

  {
    const char *argv[] = { "sh", "-c", "echo out; echo err >&2; exit 3", NULL };
    g_autoptr(GVariant) so = NULL;
    g_autoptr(GVariant) se = NULL;
    gint32 status;

    sub = fiber_pool_apply (pool, "fiber.subprocess", g_variant_new ("(^as)", argv), &error);
    g_assert_no_error (error);
    g_variant_get (sub, "(i@ay@ay)", &status, &so, &se);
    g_assert_cmpint (status, ==, 3);
    g_assert_cmpmem (g_variant_get_data (so), g_variant_get_size (so), "out\n", 4);
    g_assert_cmpmem (g_variant_get_data (se), g_variant_get_size (se), "err\n", 4);
  }

  close_and_join (pool);
  g_clear_object (&pool);
  fiber_test_assert_no_leaks (2000);
}

static void
on_apply_done (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  guint *calls = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = fiber_pool_apply_finish (FIBER_POOL (source), result, &error);

  g_assert_no_error (error);
  g_assert_cmpint (g_variant_get_int32 (value), ==, 42);
  (*calls)++;
}

static void
test_apply_async_callback (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(FiberPool) pool = make_pool (2);
  g_autoptr(FiberApplyResult) result = NULL;
  guint calls = 0;

  g_main_context_push_thread_default (context);
  result = fiber_pool_apply_async (pool, "fiber.echo", g_variant_new_int32 (42),
                                   NULL, on_apply_done, &calls);
  g_assert_cmpuint (calls, ==, 0);
  g_assert_true (fiber_apply_result_wait (result, 20000));
  /* ready, but the callback waits for the caller's context */
  g_assert_cmpuint (calls, ==, 0);
  while (calls == 0)
    g_main_context_iteration (context, TRUE);
  while (g_main_context_iteration (context, FALSE))
    ;
  g_assert_cmpuint (calls, ==, 1);
  g_main_context_pop_thread_default (context);

  close_and_join (pool);
  g_clear_object (&pool);
  fiber_test_assert_no_leaks (2000);
}

static void
test_imap (void)
{
  g_autoptr(FiberPool) pool = make_pool (3);
  g_autoptr(FiberMapResult) ordered = NULL;
  g_autoptr(FiberMapResult) unordered = NULL;
  g_autoptr(GError) error = NULL;
  gboolean seen[50] = { FALSE, };
  guint expect = 0, n_seen = 0, index;

  ordered = fiber_pool_imap (pool, "fiber.echo", int_array (0, 50), 3, &error);
  g_assert_no_error (error);
  for (;;)
    {
      g_autoptr(GVariant) value = NULL;
      g_autoptr(GError) item_error = NULL;

      if (!fiber_map_result_next (ordered, 20000, &index, &value, &item_error))
        {
          g_assert_no_error (item_error);
          break;
        }
      g_assert_cmpuint (index, ==, expect);
      g_assert_cmpint (g_variant_get_int32 (value), ==, (gint32) expect);
      expect++;
    }
  g_assert_cmpuint (expect, ==, 50);

  unordered = fiber_pool_imap_unordered (pool, "fiber.echo", int_array (0, 50), 1, &error);
  g_assert_no_error (error);
  for (;;)
    {
      g_autoptr(GVariant) value = NULL;
      g_autoptr(GError) item_error = NULL;

      if (!fiber_map_result_next (unordered, 20000, &index, &value, &item_error))
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

  close_and_join (pool);
  g_clear_object (&pool);
  fiber_test_assert_no_leaks (2000);
}

static void
test_starmap (void)
{
  g_autoptr(FiberPool) pool = make_pool (2);
  g_autoptr(GError) error = NULL;

  for (guint cs = 1; cs <= 10; cs += 9)
    {
      g_autoptr(GVariant) out = NULL;
      GVariantBuilder b;

      g_variant_builder_init (&b, G_VARIANT_TYPE ("a(ii)"));
      for (int i = 0; i < 100; i++)
        g_variant_builder_add (&b, "(ii)", i, 2 * i);
      out = fiber_pool_starmap (pool, "test.add", g_variant_builder_end (&b), cs, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (g_variant_n_children (out), ==, 100);
      for (guint i = 0; i < 100; i++)
        g_assert_cmpint (av_int (out, i), ==, (gint32) (3 * i));
    }
  close_and_join (pool);
  g_clear_object (&pool);
  fiber_test_assert_no_leaks (2000);
}

static void
test_closed (void)
{
  g_autoptr(FiberPool) pool = make_pool (2);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) out = NULL;
  g_autoptr(FiberApplyResult) func_result = NULL;

  g_assert_false (fiber_pool_join (pool, 0, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_STATE);
  g_clear_error (&error);

  fiber_pool_close (pool);
  out = fiber_pool_apply (pool, "fiber.echo", g_variant_new_int32 (1), &error);
  g_assert_null (out);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_CLOSED);
  g_clear_error (&error);
  out = fiber_pool_map (pool, "fiber.echo", int_array (0, 3), 0, &error);
  g_assert_null (out);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_CLOSED);
  g_clear_error (&error);
  g_assert_true (fiber_pool_join (pool, 20000, &error));
  g_assert_no_error (error);
  g_clear_object (&pool);
  fiber_test_assert_no_leaks (2000);
}

static void
test_interrupt (void)
{
  g_autoptr(FiberPool) pool = make_pool (2);
  g_autoptr(FiberApplyResult) r1 = NULL;
  g_autoptr(FiberApplyResult) r2 = NULL;
  g_autoptr(GVariant) out = NULL;
  g_autoptr(GError) error = NULL;

  r1 = fiber_pool_apply_async (pool, "test.block", NULL, NULL, NULL, NULL);
  r2 = fiber_pool_apply_async (pool, "test.block", NULL, NULL, NULL, NULL);
  wait_for_blocking (2);
  fiber_pool_interrupt (pool);

  g_assert_null (fiber_apply_result_get (r1, 20000, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INTERRUPTED);
  g_clear_error (&error);
  g_assert_null (fiber_apply_result_get (r2, 20000, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INTERRUPTED);
  g_clear_error (&error);

  /* still usable, and later tasks are not cancelled */
  out = fiber_pool_map (pool, "fiber.sleep", g_variant_new_parsed ("[(0.01,), (0.01,)]"), 1, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (out), ==, 2);

  close_and_join (pool);
  g_clear_object (&pool);
  fiber_test_assert_no_leaks (2000);
}

static void
test_some_fail (void)
{
  g_autoptr(FiberPool) pool = make_pool (2);
  g_autoptr(FiberMapResult) it = NULL;
  g_autoptr(GVariant) out = NULL;
  g_autoptr(GError) error = NULL;
  guint n_ok = 0, n_failed = 0, index;

  /* map fails as a whole with an item's error */
  out = fiber_pool_map (pool, "test.maybe-fail", int_array (1, 100), 4, &error);
  g_assert_null (out);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_TASK_FAILED);
  g_assert_nonnull (strstr (error->message, "failed"));
  g_clear_error (&error);

  /* imap reports each of the 5 % in place */
  it = fiber_pool_imap (pool, "test.maybe-fail", int_array (1, 100), 4, &error);
  g_assert_no_error (error);
  for (;;)
    {
      g_autoptr(GVariant) value = NULL;
      g_autoptr(GError) item_error = NULL;

      if (fiber_map_result_next (it, 20000, &index, &value, &item_error))
        {
          g_assert_cmpint (g_variant_get_int32 (value), ==, (gint32) index + 1);
          n_ok++;
        }
      else if (item_error != NULL)
        {
          g_assert_error (item_error, FIBER_ERROR, FIBER_ERROR_TASK_FAILED);
          g_assert_cmpuint ((index + 1) % 20, ==, 0);
          n_failed++;
        }
      else
        break;
    }
  g_assert_cmpuint (n_ok, ==, 95);
  g_assert_cmpuint (n_failed, ==, 5);

  close_and_join (pool);
  g_clear_object (&pool);
  fiber_test_assert_no_leaks (2000);
}

typedef struct
{
  int      factor;
  int      destroyed;   /* atomic */
  gboolean in_coroutine;
  GThread *thread;
} Closure;

static GVariant *
closure_func (GVariant *args, GCancellable *cancellable, gpointer user_data, GError **error)
{
  Closure *closure = user_data;
  gint32 x;

  closure->in_coroutine = fiber_in_coroutine ();
  closure->thread = g_thread_self ();
  g_variant_get (args, "(i)", &x);
  if (x < 0)
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_TASK_FAILED, "negative %d", x);
      return NULL;
    }
  return g_variant_new_int32 (x * closure->factor);
}

static void
closure_destroy (gpointer data)
{
  Closure *closure = data;

  g_atomic_int_inc (&closure->destroyed);
}

static void
test_apply_func (void)
{
  g_autoptr(FiberPool) pool = make_pool (2);
  g_autoptr(FiberApplyResult) result = NULL;
  g_autoptr(FiberApplyResult) failed = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GError) error = NULL;
  Closure closure = { 7, 0, TRUE, NULL };

  result = fiber_pool_apply_func (pool, g_variant_new ("(i)", 6), closure_func,
                                  &closure, closure_destroy, &error);
  g_assert_no_error (error);
  value = fiber_apply_result_get (result, 20000, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_variant_get_int32 (value), ==, 42);
  /* supplied functions never run on a coroutine stack nor on the caller */
  g_assert_false (closure.in_coroutine);
  g_assert_true (closure.thread != g_thread_self ());

  failed = fiber_pool_apply_func (pool, g_variant_new ("(i)", -1), closure_func,
                                  &closure, NULL, &error);
  g_assert_no_error (error);
  g_assert_null (fiber_apply_result_get (failed, 20000, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_TASK_FAILED);
  g_clear_error (&error);

  close_and_join (pool);
  g_clear_object (&result);
  g_clear_object (&failed);
  g_clear_object (&pool);
  g_assert_cmpint (g_atomic_int_get (&closure.destroyed), ==, 1);

  /* on a closed pool the data is released at once */
  pool = make_pool (1);
  fiber_pool_close (pool);
  g_assert_null (fiber_pool_apply_func (pool, NULL, closure_func, &closure,
                                        closure_destroy, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_CLOSED);
  g_assert_cmpint (g_atomic_int_get (&closure.destroyed), ==, 2);
  g_assert_true (fiber_pool_join (pool, 20000, NULL));
  g_clear_object (&pool);
  fiber_test_assert_no_leaks (2000);
}

static void
test_terminate (void)
{
  g_autoptr(FiberPool) pool = make_pool (1);
  g_autoptr(FiberMapResult) it = NULL;
  g_autoptr(FiberApplyResult) later = NULL;
  g_autoptr(GError) error = NULL;
  GVariantBuilder b;
  guint n_closed = 0, index;

  g_variant_builder_init (&b, G_VARIANT_TYPE ("a()"));
  for (guint i = 0; i < 10; i++)
    g_variant_builder_add (&b, "()");
  it = fiber_pool_imap (pool, "test.block", g_variant_builder_end (&b), 1, &error);
  g_assert_no_error (error);
  wait_for_blocking (1);

  fiber_pool_terminate (pool);
  for (;;)
    {
      g_autoptr(GVariant) value = NULL;
      g_autoptr(GError) item_error = NULL;

      if (fiber_map_result_next (it, 20000, &index, &value, &item_error))
        g_assert_not_reached ();
      if (item_error == NULL)
        break;
      g_assert_error (item_error, FIBER_ERROR, FIBER_ERROR_CLOSED);
      n_closed++;
    }
  g_assert_cmpuint (n_closed, ==, 10);

  later = fiber_pool_apply_async (pool, "fiber.echo", NULL, NULL, NULL, NULL);
  g_assert_null (fiber_apply_result_get (later, 20000, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_CLOSED);
  g_clear_error (&error);

  g_assert_true (fiber_pool_join (pool, 20000, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_atomic_int_get (&n_blocking), ==, 0);
  g_clear_object (&pool);
  fiber_test_assert_no_leaks (2000);
}

static void
test_initializer (void)
{
  g_autoptr(FiberPool) pool = NULL;
  g_autoptr(GVariant) out = NULL;
  g_autoptr(GError) error = NULL;
  GType type;

  /* the same type as make_pool() builds, with an initializer */
  pool = make_pool (1);
  type = G_OBJECT_TYPE (pool);
  g_clear_object (&pool);

  g_atomic_int_set (&n_initialized, 0);
  pool = g_initable_new (type, NULL, &error, "processes", 2, "initializer", "test.init", NULL);
  g_assert_no_error (error);
  out = fiber_pool_map (pool, "fiber.echo", int_array (0, 20), 1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_atomic_int_get (&n_initialized), >=, 1);
  g_assert_cmpint (g_atomic_int_get (&n_initialized), <=, 2);
  close_and_join (pool);
  g_clear_object (&pool);

  /* a failing initializer fails the items instead of hanging */
  pool = g_initable_new (type, NULL, &error, "processes", 1, "initializer", "no.such.task", NULL);
  g_assert_no_error (error);
  g_clear_pointer (&out, g_variant_unref);
  out = fiber_pool_apply (pool, "fiber.echo", NULL, &error);
  g_assert_null (out);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_UNKNOWN_TASK);
  g_assert_nonnull (strstr (error->message, "initializer"));
  close_and_join (pool);
  g_clear_object (&pool);
  fiber_test_assert_no_leaks (2000);
}

/* The last reference to a pool dropped on the pool's own thread: by a
 * closure's destroy notify (how a language binding releases the closure
 * that captured the pool) or by the task itself.  Dispose then cannot join
 * that thread; the thread must not touch the freed pool afterwards (this
 * test is meant to run under AddressSanitizer or valgrind too). */
typedef struct
{
  FiberPool *pool;        /* the closure's reference */
  int        release;     /* atomic: the test has dropped its own reference */
  int        finalized;   /* atomic */
} LastRef;

static GVariant *
last_ref_func (GVariant *args, GCancellable *cancellable, gpointer user_data, GError **error)
{
  LastRef *last = user_data;
  gint64 deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;
  gboolean from_task;

  g_variant_get (args, "(b)", &from_task);
  while (!g_atomic_int_get (&last->release))
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_usleep (1000);
    }
  if (from_task)
    g_clear_object (&last->pool);
  return g_variant_new ("()");
}

static void
last_ref_destroy (gpointer data)
{
  LastRef *last = data;

  g_clear_object (&last->pool);
}

static void
last_ref_finalized (gpointer data)
{
  LastRef *last = data;

  g_atomic_int_set (&last->finalized, 1);
}

static void
test_last_ref_on_own_thread (void)
{
  for (guint from_task = 0; from_task <= 1; from_task++)
    {
      LastRef last = { NULL, 0, 0 };
      g_autoptr(GError) error = NULL;
      FiberApplyResult *result;
      FiberPool *pool = make_pool (2);
      gint64 deadline;

      g_test_message ("last reference dropped by the %s", from_task ? "task" : "destroy notify");
      last.pool = g_object_ref (pool);
      /* qdata is released at the very end of finalize */
      g_object_set_data_full (G_OBJECT (pool), "test-last-ref", &last, last_ref_finalized);
      result = fiber_pool_apply_func (pool, g_variant_new ("(b)", from_task), last_ref_func,
                                      &last, last_ref_destroy, &error);
      g_assert_no_error (error);
      g_clear_object (&result);
      g_object_unref (pool);
      g_atomic_int_set (&last.release, 1);

      deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;
      while (!g_atomic_int_get (&last.finalized))
        {
          if (g_get_monotonic_time () > deadline)
            g_error ("the pool was not finalized 20 s after its last reference was dropped");
          g_usleep (1000);
        }
      g_assert_null (last.pool);
    }
  fiber_test_assert_no_leaks (2000);
}

static void
add_inproc_pool_tests (const char *prefix)
{
  struct { const char *name; GTestFunc func; } cases[] = {
    { "map-small", test_map_small },
    { "map-thousand", test_map_thousand },
    { "apply", test_apply },
    { "apply-async-callback", test_apply_async_callback },
    { "imap", test_imap },
    { "starmap", test_starmap },
    { "closed", test_closed },
    { "interrupt", test_interrupt },
    { "some-fail", test_some_fail },
    { "apply-func", test_apply_func },
    { "terminate", test_terminate },
    { "initializer", test_initializer },
    { "last-ref-on-own-thread", test_last_ref_on_own_thread },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("%s/%s", prefix, cases[i].name);
      g_test_add_func (path, cases[i].func);
    }
}

/* test-pool-base.c — FiberPool's shared behaviour, through a minimal pool
 * type defined here (runs each batch on a thread of its own)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <fiber.h>

#include "fiber-test-util.h"

/* ---- an inline pool type --------------------------------------------------- */

#define TEST_TYPE_INLINE_POOL (test_inline_pool_get_type ())
G_DECLARE_FINAL_TYPE (TestInlinePool, test_inline_pool, TEST, INLINE_POOL, FiberPool)

struct _TestInlinePool
{
  FiberPool  parent_instance;
  GPtrArray *threads;
  guint      deliver_twice : 1;
};

G_DEFINE_FINAL_TYPE (TestInlinePool, test_inline_pool, FIBER_TYPE_POOL)

static gpointer
run_batch (gpointer data)
{
  g_autoptr(FiberBatch) batch = data;

  for (guint i = 0; i < fiber_batch_get_n_items (batch); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) value = NULL;

      if (fiber_batch_is_done (batch))
        break;
      value = fiber_batch_invoke (batch, i, NULL, &error);
      g_assert_true (fiber_batch_complete_item (batch, i, value, error));
      /* a second delivery of the same item must be refused */
      g_assert_false (fiber_batch_complete_item (batch, i, value, error));
    }
  return NULL;
}

static gboolean
test_inline_pool_submit (FiberPool   *pool,
                         FiberBatch  *batch,
                         GError     **error)
{
  TestInlinePool *self = TEST_INLINE_POOL (pool);

  g_ptr_array_add (self->threads,
                   g_thread_new ("inline", run_batch, fiber_batch_ref (batch)));
  return TRUE;
}

static gboolean
test_inline_pool_join (FiberPool  *pool,
                       int         timeout_msec,
                       GError    **error)
{
  TestInlinePool *self = TEST_INLINE_POOL (pool);

  for (guint i = 0; i < self->threads->len; i++)
    g_thread_join (g_ptr_array_index (self->threads, i));
  g_ptr_array_set_size (self->threads, 0);
  return TRUE;
}

static void
test_inline_pool_dispose (GObject *object)
{
  TestInlinePool *self = TEST_INLINE_POOL (object);

  if (!fiber_pool_is_closed (FIBER_POOL (self)))
    fiber_pool_close (FIBER_POOL (self));
  if (self->threads != NULL)
    test_inline_pool_join (FIBER_POOL (self), -1, NULL);
  g_clear_pointer (&self->threads, g_ptr_array_unref);
  G_OBJECT_CLASS (test_inline_pool_parent_class)->dispose (object);
}

static void
test_inline_pool_class_init (TestInlinePoolClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = test_inline_pool_dispose;
  FIBER_POOL_CLASS (klass)->submit = test_inline_pool_submit;
  FIBER_POOL_CLASS (klass)->join = test_inline_pool_join;
}

static void
test_inline_pool_init (TestInlinePool *self)
{
  self->threads = g_ptr_array_new ();
}

static FiberPool *
new_pool (void)
{
  return g_object_new (TEST_TYPE_INLINE_POOL, "processes", 2, NULL);
}

/* ---- tasks --------------------------------------------------------------- */

static GVariant *
task_square (GVariant *args, GCancellable *cancellable, gpointer user_data, GError **error)
{
  gint32 x;

  if (g_variant_is_of_type (args, G_VARIANT_TYPE_INT32))
    x = g_variant_get_int32 (args);
  else
    g_variant_get (args, "(i)", &x);
  if (x == 13 && user_data != NULL)
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_TASK_FAILED, "unlucky %d", x);
      return NULL;
    }
  return g_variant_new_int32 (x * x);
}

static GVariant *
task_add (GVariant *args, GCancellable *cancellable, gpointer user_data, GError **error)
{
  gint32 a, b;

  g_variant_get (args, "(ii)", &a, &b);
  return g_variant_new_int32 (a + b);
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

/* ---- tests ------------------------------------------------------------- */

static void
test_map_order (void)
{
  g_autoptr(FiberPool) pool = new_pool ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) out = NULL;

  out = fiber_pool_map (pool, "test.square", int_array (1000), 0, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (out), ==, "av");
  g_assert_cmpuint (g_variant_n_children (out), ==, 1000);
  for (guint i = 0; i < 1000; i += 97)
    {
      g_autoptr(GVariant) v = g_variant_get_child_value (out, i);
      g_autoptr(GVariant) inner = g_variant_get_variant (v);
      g_assert_cmpint (g_variant_get_int32 (inner), ==, (gint32) (i * i));
    }
  fiber_pool_close (pool);
  g_assert_true (fiber_pool_join (pool, -1, &error));
  g_clear_object (&pool);
  fiber_test_assert_no_leaks (2000);
}

static void
test_map_fails_with_first_error (void)
{
  g_autoptr(FiberPool) pool = new_pool ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) out = NULL;

  out = fiber_pool_map (pool, "test.square13", int_array (20), 1, &error);
  g_assert_null (out);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_TASK_FAILED);
  g_assert_nonnull (strstr (error->message, "unlucky 13"));
}

static void
test_imap_ordered_and_unordered (void)
{
  g_autoptr(FiberPool) pool = new_pool ();
  g_autoptr(FiberMapResult) ordered = NULL;
  g_autoptr(FiberMapResult) unordered = NULL;
  g_autoptr(GError) error = NULL;
  gboolean seen[20] = { FALSE, };
  guint n_seen = 0;
  guint expect = 0;
  guint index;

  ordered = fiber_pool_imap (pool, "test.square13", int_array (20), 3, &error);
  g_assert_no_error (error);
  for (;;)
    {
      g_autoptr(GVariant) value = NULL;
      g_autoptr(GError) item_error = NULL;

      if (fiber_map_result_next (ordered, 5000, &index, &value, &item_error))
        {
          g_assert_cmpuint (index, ==, expect);
          g_assert_cmpint (g_variant_get_int32 (value), ==, (gint32) (index * index));
        }
      else if (item_error != NULL)
        {
          /* the one failing item is reported in place; iteration goes on */
          g_assert_error (item_error, FIBER_ERROR, FIBER_ERROR_TASK_FAILED);
          g_assert_cmpuint (index, ==, 13);
          g_assert_cmpuint (expect, ==, 13);
        }
      else
        break;
      expect++;
    }
  g_assert_cmpuint (expect, ==, 20);

  unordered = fiber_pool_imap_unordered (pool, "test.square13", int_array (20), 1, &error);
  g_assert_no_error (error);
  for (;;)
    {
      g_autoptr(GVariant) value = NULL;
      g_autoptr(GError) item_error = NULL;

      if (!fiber_map_result_next (unordered, 5000, &index, &value, &item_error) &&
          item_error == NULL)
        break;
      g_assert_cmpuint (index, <, 20);
      g_assert_false (seen[index]);
      seen[index] = TRUE;
      n_seen++;
    }
  g_assert_cmpuint (n_seen, ==, 20);
}

static void
test_starmap (void)
{
  g_autoptr(FiberPool) pool = new_pool ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) out = NULL;
  g_autoptr(GVariant) bad = NULL;
  GVariantBuilder b;

  for (guint cs = 1; cs <= 10; cs += 9)
    {
      g_clear_pointer (&out, g_variant_unref);
      g_variant_builder_init (&b, G_VARIANT_TYPE ("a(ii)"));
      for (int i = 0; i < 50; i++)
        g_variant_builder_add (&b, "(ii)", i, 2 * i);
      out = fiber_pool_starmap (pool, "test.add", g_variant_builder_end (&b), cs, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (g_variant_n_children (out), ==, 50);
      {
        g_autoptr(GVariant) v = g_variant_get_child_value (out, 49);
        g_autoptr(GVariant) inner = g_variant_get_variant (v);
        g_assert_cmpint (g_variant_get_int32 (inner), ==, 49 * 3);
      }
    }

  /* non-tuples are refused before anything runs */
  bad = fiber_pool_starmap (pool, "test.add", int_array (3), 1, &error);
  g_assert_null (bad);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  g_variant_builder_init (&b, G_VARIANT_TYPE ("av"));
  g_variant_builder_add (&b, "v", g_variant_new ("(ii)", 1, 2));
  g_variant_builder_add (&b, "v", g_variant_new_int32 (3));
  bad = fiber_pool_starmap (pool, "test.add", g_variant_builder_end (&b), 1, &error);
  g_assert_null (bad);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "item 1"));
}

static void
test_bad_input (void)
{
  g_autoptr(FiberPool) pool = new_pool ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) out = NULL;
  g_autoptr(FiberMapResult) it = NULL;

  out = fiber_pool_map (pool, "test.square", g_variant_new_int32 (3), 0, &error);
  g_assert_null (out);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  out = fiber_pool_apply (pool, "", NULL, &error);
  g_assert_null (out);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  out = fiber_pool_apply (pool, "no.such.task", NULL, &error);
  g_assert_null (out);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_UNKNOWN_TASK);
  g_clear_error (&error);

  it = fiber_pool_imap (pool, "test.square", g_variant_new_string ("x"), 1, &error);
  g_assert_null (it);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
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
  g_assert_cmpint (g_variant_get_int32 (value), ==, 49);
  (*calls)++;
}

static void
test_async_callback_on_caller_context (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(FiberPool) pool = new_pool ();
  g_autoptr(FiberApplyResult) result = NULL;
  g_autoptr(GVariant) again = NULL;
  guint calls = 0;

  g_main_context_push_thread_default (context);
  result = fiber_pool_apply_async (pool, "test.square", g_variant_new ("(i)", 7),
                                   NULL, on_apply_done, &calls);
  /* never called inside the _async call */
  g_assert_cmpuint (calls, ==, 0);
  g_assert_true (fiber_apply_result_wait (result, 5000));
  /* ready, but the callback waits for its context */
  g_assert_cmpuint (calls, ==, 0);
  while (calls == 0)
    g_main_context_iteration (context, TRUE);
  while (g_main_context_iteration (context, FALSE))
    ;
  g_assert_cmpuint (calls, ==, 1);
  g_main_context_pop_thread_default (context);

  /* get is repeatable */
  again = fiber_apply_result_get (result, 0, NULL);
  g_assert_cmpint (g_variant_get_int32 (again), ==, 49);
  g_assert_true (fiber_apply_result_successful (result, NULL));
}

typedef struct
{
  GMutex   mutex;
  GCond    cond;
  guint    calls;
  GThread *thread;
} ThreadCheck;

static void
on_result_thread (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  ThreadCheck *check = user_data;

  g_mutex_lock (&check->mutex);
  check->calls++;
  check->thread = g_thread_self ();
  g_cond_signal (&check->cond);
  g_mutex_unlock (&check->mutex);
}

static void
test_result_thread (void)
{
  g_autoptr(FiberPool) pool = new_pool ();
  g_autoptr(FiberApplyResult) result = NULL;
  ThreadCheck check = { 0, };

  g_object_set (pool, "result-thread", TRUE, NULL);
  g_mutex_init (&check.mutex);
  g_cond_init (&check.cond);
  /* nobody iterates a main context here: the callback still comes */
  result = fiber_pool_apply_async (pool, "test.square", g_variant_new ("(i)", 3),
                                   NULL, on_result_thread, &check);
  g_mutex_lock (&check.mutex);
  while (check.calls == 0)
    g_cond_wait (&check.cond, &check.mutex);
  g_mutex_unlock (&check.mutex);
  g_assert_cmpuint (check.calls, ==, 1);
  g_assert_true (check.thread != g_thread_self ());
  g_mutex_clear (&check.mutex);
  g_cond_clear (&check.cond);
}

static void
test_closed (void)
{
  g_autoptr(FiberPool) pool = new_pool ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) out = NULL;

  g_assert_false (fiber_pool_join (pool, 0, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_STATE);
  g_clear_error (&error);

  fiber_pool_close (pool);
  g_assert_true (fiber_pool_is_closed (pool));
  out = fiber_pool_apply (pool, "test.square", g_variant_new ("(i)", 2), &error);
  g_assert_null (out);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_CLOSED);
  g_clear_error (&error);
  out = fiber_pool_map (pool, "test.square", int_array (3), 0, &error);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_CLOSED);
  g_assert_true (fiber_pool_join (pool, -1, NULL));
}

static void
test_cancel_before_run (void)
{
  g_autoptr(FiberPool) pool = new_pool ();
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(FiberMapResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) out = NULL;

  g_cancellable_cancel (cancellable);
  result = fiber_pool_map_async (pool, "test.square", int_array (100), 1,
                                 cancellable, NULL, NULL);
  out = fiber_map_result_get (result, 5000, &error);
  g_assert_null (out);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

static void
test_chunksize_default (void)
{
  /* map over nothing completes at once with an empty av */
  g_autoptr(FiberPool) pool = new_pool ();
  g_autoptr(GVariant) out = NULL;

  out = fiber_pool_map (pool, "test.square", int_array (0), 0, NULL);
  g_assert_nonnull (out);
  g_assert_cmpuint (g_variant_n_children (out), ==, 0);
  g_assert_cmpuint (fiber_pool_get_processes (pool), ==, 2);
}

int
main (int argc, char **argv)
{
  int ret;

  fiber_task_register ("test.square", task_square, NULL, NULL);
  fiber_task_register ("test.square13", task_square, GINT_TO_POINTER (1), NULL);
  fiber_task_register ("test.add", task_add, NULL, NULL);
  fiber_init (&argc, &argv, NULL);
  fiber_test_init_environment ();
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/pool-base/map-order", test_map_order);
  g_test_add_func ("/pool-base/map-first-error", test_map_fails_with_first_error);
  g_test_add_func ("/pool-base/imap", test_imap_ordered_and_unordered);
  g_test_add_func ("/pool-base/starmap", test_starmap);
  g_test_add_func ("/pool-base/bad-input", test_bad_input);
  g_test_add_func ("/pool-base/async-callback-context", test_async_callback_on_caller_context);
  g_test_add_func ("/pool-base/result-thread", test_result_thread);
  g_test_add_func ("/pool-base/closed", test_closed);
  g_test_add_func ("/pool-base/cancel", test_cancel_before_run);
  g_test_add_func ("/pool-base/empty-map", test_chunksize_default);

  ret = g_test_run ();
  fiber_test_cleanup_environment ();
  return ret;
}

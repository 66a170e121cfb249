/* test-coroutine-pool.c — the `coroutine` pool type
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <signal.h>
#include <sys/resource.h>

#include "inproc-pool-tests.h"

#define OVERFLOW_CHILD_ARG "--overflow-child"

#if defined(__SANITIZE_ADDRESS__)
# define TEST_ASAN 1
#elif defined(__has_feature)
# if __has_feature(address_sanitizer)
#  define TEST_ASAN 1
# endif
#endif

static FiberPool *
new_coroutine_pool (guint processes)
{
  g_autoptr(GError) error = NULL;
  FiberPool *pool = fiber_coroutine_pool_new (processes, 0, &error);

  g_assert_no_error (error);
  g_assert_true (FIBER_IS_COROUTINE_POOL (pool));
  return pool;
}

/* ---- tasks ------------------------------------------------------------------ */

static gboolean registered_in_coroutine;

static GVariant *
task_where (GVariant *args, GCancellable *cancellable, gpointer user_data, GError **error)
{
  registered_in_coroutine = fiber_in_coroutine ();
  return g_variant_new_boolean (registered_in_coroutine);
}

/* test.sleep-together (u n): sleeps until all @n of its kind sleep at the
 * same time, which they only can if the pool runs them side by side, then
 * sleeps 0.2 s on its own timer.  The wait for the others is guarded: a
 * task still waiting after ALL_ASLEEP_GUARD_S fails with a clear error. */
#define ALL_ASLEEP_GUARD_S 60

static int n_asleep;                  /* atomic */
static GCancellable *all_asleep;     /* cancelled by the last to fall asleep */

static GVariant *
task_sleep_together (GVariant *args, GCancellable *cancellable, gpointer user_data, GError **error)
{
  g_autoptr(GError) local_error = NULL;
  guint n;

  g_variant_get (args, "(u)", &n);
  if ((guint) g_atomic_int_add (&n_asleep, 1) + 1 == n)
    g_cancellable_cancel (all_asleep);
  else if (fiber_sleep (ALL_ASLEEP_GUARD_S, all_asleep, &local_error))
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_TIMEOUT,
                   "only %d of %u tasks were asleep at once after %d s",
                   g_atomic_int_get (&n_asleep), n, ALL_ASLEEP_GUARD_S);
      return NULL;
    }
  else if (!g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return NULL;
    }
  if (!fiber_sleep (0.2, cancellable, error))
    return NULL;
  return g_variant_new ("()");
}

/* Counts tasks in flight; returns how many had started when this one
 * finished its subprocess. */
static int n_started;

static GVariant *
task_overlap (GVariant *args, GCancellable *cancellable, gpointer user_data, GError **error)
{
  g_autoptr(GVariant) out = NULL;
  const char *argv[] = { "sleep", "0.2", NULL };
  /* fiber_task_invoke() takes its arguments transfer none */
  g_autoptr(GVariant) sub_args = g_variant_ref_sink (g_variant_new ("(^as)", argv));

  g_atomic_int_inc (&n_started);
  out = fiber_task_invoke ("fiber.subprocess", sub_args, cancellable, error);
  if (out == NULL)
    return NULL;
  return g_variant_new_int32 (g_atomic_int_get (&n_started));
}

/* Awaits g_subprocess_wait_async on a `sleep`. */
static GVariant *
task_wait_subprocess (GVariant *args, GCancellable *cancellable, gpointer user_data, GError **error)
{
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(FiberAwait) await = NULL;
  GAsyncResult *result;

  proc = g_subprocess_new (G_SUBPROCESS_FLAGS_NONE, error, "sleep", "0.5", NULL);
  if (proc == NULL)
    return NULL;
  await = fiber_await_new ();
  g_subprocess_wait_async (proc, cancellable, fiber_await_callback, await);
  result = fiber_await_wait (await, error);
  if (result == NULL || !g_subprocess_wait_finish (proc, result, error))
    return NULL;
  return g_variant_new_int32 (g_subprocess_get_exit_status (proc));
}

static GVariant *
task_yield (GVariant *args, GCancellable *cancellable, gpointer user_data, GError **error)
{
  gint32 n = g_variant_get_int32 (args);

  for (gint32 i = 0; i < n; i++)
    fiber_yield ();
  return g_variant_new_int32 (n);
}

static guint
recurse (guint depth)
{
  volatile char frame[512];

  if (depth == G_MAXUINT)
    return 0;
  frame[0] = (char) depth;
  return (depth > 0 ? recurse (depth - 1) : 0) + frame[0];
}

static GVariant *
task_deep (GVariant *args, GCancellable *cancellable, gpointer user_data, GError **error)
{
  return g_variant_new_uint32 (recurse (g_variant_get_uint32 (args)));
}

/* Runs in a child: a task recursing far past its 64 KiB stack. */
static int
overflow_child_main (void)
{
  struct rlimit no_core = { 0, 0 };
  g_autoptr(FiberPool) pool = NULL;
  g_autoptr(GVariant) out = NULL;
  g_autoptr(GError) error = NULL;

  setrlimit (RLIMIT_CORE, &no_core);
  pool = fiber_coroutine_pool_new (2, 64 * 1024, &error);
  g_assert_no_error (error);
  /* a neighbour that is running (asleep) when the crash comes */
  fiber_pool_apply_async (pool, "fiber.sleep", g_variant_new ("(d)", 30.0), NULL, NULL, NULL);
  out = fiber_pool_apply (pool, "test.deep", g_variant_new_uint32 (G_MAXUINT - 1), &error);
  /* not reached */
  g_printerr ("the overflowing task returned\n");
  return 0;
}

/* ---- tests -------------------------------------------------------------------- */

/* A stack overflow is a reported crash of the scheduler thread, not silent
 * corruption (in a child process: it ends the process). */
static void
test_stack_overflow (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) proc = NULL;
  g_autofree char *self_exe = g_file_read_link ("/proc/self/exe", &error);
  g_autofree char *err_text = NULL;
  int sig;

  g_assert_no_error (error);
  proc = g_subprocess_new (G_SUBPROCESS_FLAGS_STDERR_PIPE | G_SUBPROCESS_FLAGS_STDOUT_SILENCE,
                           &error, self_exe, OVERFLOW_CHILD_ARG, NULL);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_communicate_utf8 (proc, NULL, NULL, NULL, &err_text, &error));
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_signaled (proc));
  sig = g_subprocess_get_term_sig (proc);
  g_test_message ("overflowing child died of signal %d; stderr: %s", sig, err_text);
  g_assert_nonnull (strstr (err_text, "overflowed its coroutine stack (65536 bytes)"));
  g_assert_nonnull (strstr (err_text, "fiber-coroutine"));
#ifdef TEST_ASAN
  /* then AddressSanitizer reports the stack overflow and aborts */
  g_assert_true (sig == SIGSEGV || sig == SIGABRT);
#else
  g_assert_cmpint (sig, ==, SIGSEGV);
#endif
  fiber_test_assert_no_leaks (2000);
}

static GVariant *
sleep_items (guint  n,
             double seconds)
{
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE ("a(d)"));
  for (guint i = 0; i < n; i++)
    g_variant_builder_add (&b, "(d)", seconds);
  return g_variant_builder_end (&b);
}

static GVariant *
sleep_together_items (guint n)
{
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE ("a(u)"));
  for (guint i = 0; i < n; i++)
    g_variant_builder_add (&b, "(u)", n);
  return g_variant_builder_end (&b);
}

/* 10,000 tasks asleep at once on one scheduler thread, then each on its
 * own timer */
static void
test_ten_thousand_sleeps (void)
{
  g_autoptr(FiberPool) pool = new_coroutine_pool (10000);
  g_autoptr(GVariant) out = NULL;
  g_autoptr(GError) error = NULL;
  gint64 start = g_get_monotonic_time ();

  g_atomic_int_set (&n_asleep, 0);
  all_asleep = g_cancellable_new ();
  out = fiber_pool_map (pool, "test.sleep-together", sleep_together_items (10000), 0, &error);
  g_test_message ("10000 tasks asleep at once, then 0.2 s each: %.3f s",
                  (g_get_monotonic_time () - start) / 1e6);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (out), ==, 10000);
  g_assert_cmpint (g_atomic_int_get (&n_asleep), ==, 10000);
  g_clear_object (&all_asleep);
  close_and_join (pool);
  g_clear_object (&pool);
  fiber_test_assert_no_leaks (2000);
}

/* processes bounds how many run at once */
static void
test_concurrency_limit (void)
{
  g_autoptr(FiberPool) pool = new_coroutine_pool (3);
  g_autoptr(FiberMapResult) it = NULL;
  g_autoptr(GError) error = NULL;
  GVariantBuilder b;

  g_atomic_int_set (&max_blocking, 0);
  g_variant_builder_init (&b, G_VARIANT_TYPE ("a()"));
  for (guint i = 0; i < 5; i++)
    g_variant_builder_add (&b, "()");
  it = fiber_pool_imap (pool, "test.block", g_variant_builder_end (&b), 1, &error);
  g_assert_no_error (error);
  wait_for_blocking (3);
  /* the first three are interrupted, then the other two start */
  fiber_pool_interrupt (pool);
  for (guint i = 0; i < 5; i++)
    {
      g_autoptr(GVariant) value = NULL;
      g_autoptr(GError) item_error = NULL;
      guint index;

      if (i == 3)
        {
          wait_for_blocking (2);
          fiber_pool_interrupt (pool);
        }
      g_assert_false (fiber_map_result_next (it, 20000, &index, &value, &item_error));
      g_assert_error (item_error, FIBER_ERROR, FIBER_ERROR_INTERRUPTED);
      g_assert_cmpuint (index, ==, i);
    }
  /* Never more than three at once: each test.block runs until interrupted,
   * so a fourth started while three blocked would still be counted here
   * (the 4th and 5th only started after the first interrupt). */
  g_assert_cmpint (g_atomic_int_get (&max_blocking), ==, 3);
  close_and_join (pool);
  g_clear_object (&pool);
  fiber_test_assert_no_leaks (2000);
}

static void
test_subprocess_cooperates (void)
{
  g_autoptr(FiberPool) pool = new_coroutine_pool (10);
  g_autoptr(GVariant) out = NULL;
  g_autoptr(GError) error = NULL;
  GVariantBuilder b;

  g_atomic_int_set (&n_started, 0);
  g_variant_builder_init (&b, G_VARIANT_TYPE ("a()"));
  for (guint i = 0; i < 5; i++)
    g_variant_builder_add (&b, "()");
  out = fiber_pool_map (pool, "test.overlap", g_variant_builder_end (&b), 1, &error);
  g_assert_no_error (error);
  /* every subprocess was started before the first one was reaped: the
   * tasks waited on their children side by side */
  for (guint i = 0; i < 5; i++)
    g_assert_cmpint (av_int (out, i), ==, 5);
  close_and_join (pool);
  g_clear_object (&pool);
  fiber_test_assert_no_leaks (2000);
}

static void
test_await_subprocess_lets_others_run (void)
{
  g_autoptr(FiberPool) pool = new_coroutine_pool (100);
  g_autoptr(FiberApplyResult) waiter = NULL;
  g_autoptr(GVariant) ticks = NULL;
  g_autoptr(GVariant) status = NULL;
  g_autoptr(GError) error = NULL;

  waiter = fiber_pool_apply_async (pool, "test.wait-subprocess", NULL, NULL, NULL, NULL);
  /* 20 short sleeps in a row on one coroutine each, while the other
   * coroutine waits for its child (0.5 s) */
  ticks = fiber_pool_map (pool, "fiber.sleep", sleep_items (20, 0.001), 1, &error);
  g_assert_no_error (error);
  g_assert_false (fiber_apply_result_ready (waiter));
  status = fiber_apply_result_get (waiter, 20000, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_variant_get_int32 (status), ==, 0);
  close_and_join (pool);
  g_clear_object (&pool);
  fiber_test_assert_no_leaks (2000);
}

static void
test_where_code_runs (void)
{
  g_autoptr(FiberPool) pool = new_coroutine_pool (4);
  g_autoptr(GVariant) out = NULL;
  g_autoptr(GVariant) yields = NULL;
  g_autoptr(GError) error = NULL;

  out = fiber_pool_apply (pool, "test.where", NULL, &error);
  g_assert_no_error (error);
  /* registered C tasks run on coroutine stacks */
  g_assert_true (g_variant_get_boolean (out));
  g_assert_false (fiber_in_coroutine ());

  yields = fiber_pool_map (pool, "test.yield", int_array (0, 40), 1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (av_int (yields, 39), ==, 39);
  close_and_join (pool);
  g_clear_object (&pool);
  fiber_test_assert_no_leaks (2000);
}

static void
test_stack_size (void)
{
  g_autoptr(FiberPool) pool = NULL;
  g_autoptr(GVariant) out = NULL;
  g_autoptr(GError) error = NULL;
  guint size = 0;

  pool = new_coroutine_pool (1);
  g_assert_cmpuint (fiber_coroutine_pool_get_stack_size (FIBER_COROUTINE_POOL (pool)), ==, 256 * 1024);
  close_and_join (pool);
  g_clear_object (&pool);

  pool = fiber_coroutine_pool_new (2, 2 * 1024 * 1024, &error);
  g_assert_no_error (error);
  g_object_get (pool, "stack-size", &size, NULL);
  g_assert_cmpuint (size, ==, 2 * 1024 * 1024);
  /* ~1 MiB of frames: fits in 2 MiB */
  out = fiber_pool_apply (pool, "test.deep", g_variant_new_uint32 (1500), &error);
  g_assert_no_error (error);
  close_and_join (pool);
  g_clear_object (&pool);

  g_assert_null (fiber_coroutine_pool_new (1, 1000, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_null (fiber_coroutine_pool_new (1, G_MAXUINT, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  fiber_test_assert_no_leaks (2000);
}

int
main (int argc, char **argv)
{
  int ret;

  register_inproc_pool_tasks ();
  fiber_task_register ("test.where", task_where, NULL, NULL);
  fiber_task_register ("test.overlap", task_overlap, NULL, NULL);
  fiber_task_register ("test.sleep-together", task_sleep_together, NULL, NULL);
  fiber_task_register ("test.wait-subprocess", task_wait_subprocess, NULL, NULL);
  fiber_task_register ("test.yield", task_yield, NULL, NULL);
  fiber_task_register ("test.deep", task_deep, NULL, NULL);
  if (argc == 2 && g_str_equal (argv[1], OVERFLOW_CHILD_ARG))
    return overflow_child_main ();
  fiber_init (&argc, &argv, NULL);
  fiber_test_init_environment ();
  g_test_init (&argc, &argv, NULL);

  make_pool = new_coroutine_pool;
  add_inproc_pool_tests ("/coroutine-pool");
  g_test_add_func ("/coroutine-pool/ten-thousand-sleeps", test_ten_thousand_sleeps);
  g_test_add_func ("/coroutine-pool/concurrency-limit", test_concurrency_limit);
  g_test_add_func ("/coroutine-pool/cooperative-subprocess", test_subprocess_cooperates);
  g_test_add_func ("/coroutine-pool/await-subprocess", test_await_subprocess_lets_others_run);
  g_test_add_func ("/coroutine-pool/where-code-runs", test_where_code_runs);
  g_test_add_func ("/coroutine-pool/stack-size", test_stack_size);
  g_test_add_func ("/coroutine-pool/stack-overflow", test_stack_overflow);

  ret = g_test_run ();
  fiber_test_cleanup_environment ();
  return ret;
}

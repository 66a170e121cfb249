/* test-thread-pool.c — the `thread` pool type
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "inproc-pool-tests.h"

static FiberPool *
new_thread_pool (guint processes)
{
  g_autoptr(GError) error = NULL;
  FiberPool *pool = fiber_thread_pool_new (processes, &error);

  g_assert_no_error (error);
  g_assert_true (FIBER_IS_THREAD_POOL (pool));
  return pool;
}

/* Tasks run in parallel on the pool's threads. */
static void
test_parallel (void)
{
  g_autoptr(FiberPool) pool = new_thread_pool (3);
  FiberApplyResult *results[3] = { NULL, };

  g_assert_cmpuint (fiber_pool_get_processes (pool), ==, 3);
  for (guint i = 0; i < 3; i++)
    results[i] = fiber_pool_apply_async (pool, "test.block", NULL, NULL, NULL, NULL);
  /* three blocking tasks at once: one per thread */
  wait_for_blocking (3);
  fiber_pool_interrupt (pool);
  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(GError) error = NULL;

      g_assert_null (fiber_apply_result_get (results[i], 20000, &error));
      g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INTERRUPTED);
      g_clear_object (&results[i]);
    }
  fiber_pool_close (pool);
  g_assert_true (fiber_pool_join (pool, 20000, NULL));
  g_clear_object (&pool);
  fiber_test_assert_no_leaks (2000);
}

/* join() with a timeout while a task still runs */
static void
test_join_timeout (void)
{
  g_autoptr(FiberPool) pool = new_thread_pool (1);
  g_autoptr(FiberApplyResult) result = NULL;
  g_autoptr(GError) error = NULL;

  result = fiber_pool_apply_async (pool, "test.block", NULL, NULL, NULL, NULL);
  wait_for_blocking (1);
  fiber_pool_close (pool);
  g_assert_false (fiber_pool_join (pool, 50, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_TIMEOUT);
  g_clear_error (&error);
  fiber_pool_interrupt (pool);
  g_assert_true (fiber_pool_join (pool, 20000, &error));
  g_assert_no_error (error);
  g_assert_null (fiber_apply_result_get (result, 0, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INTERRUPTED);
  g_clear_object (&pool);
  fiber_test_assert_no_leaks (2000);
}

int
main (int argc, char **argv)
{
  int ret;

  register_inproc_pool_tasks ();
  fiber_init (&argc, &argv, NULL);
  fiber_test_init_environment ();
  g_test_init (&argc, &argv, NULL);

  make_pool = new_thread_pool;
  add_inproc_pool_tests ("/thread-pool");
  g_test_add_func ("/thread-pool/parallel", test_parallel);
  g_test_add_func ("/thread-pool/join-timeout", test_join_timeout);

  ret = g_test_run ();
  fiber_test_cleanup_environment ();
  return ret;
}

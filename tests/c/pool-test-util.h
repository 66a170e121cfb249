/* pool-test-util.h — pool helpers shared by the C pool tests: making and
 * finishing pools, checking results, the file barriers tasks use to show
 * they run, tasks several suites register, and an inline pool class.
 *
 * Compiled into each test that uses it (c_test_extra_sources), so it works
 * with the public library and with the internal archive alike.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <fiber.h>

G_BEGIN_DECLS

/* Guards only: a healthy run takes a fraction of this. */
#define POOL_TEST_GUARD_MSEC 60000

/* ---- pools ------------------------------------------------------------------ */

/* fiber_pool_new() that asserts success and the type of the new pool. */
FiberPool *pool_test_new             (const char *type,
                                      guint       processes);

/* Closes @pool and joins it (within the guard), asserting success. */
void       pool_test_close_and_join  (FiberPool  *pool);

/* pool_test_close_and_join(), then drops @pool (transfer full). */
void       pool_test_finish          (FiberPool  *pool);

/* Adds @func once per process pool type (process, ndprocess) as
 * /<prefix>/<type>/<name>, with the type name as its data. */
void       pool_test_add_typed       (const char    *prefix,
                                      const char    *name,
                                      GTestDataFunc  func);

/* One test case of a table for pool_test_add_typed_cases(). */
typedef struct
{
  const char    *name;
  GTestDataFunc  func;
} PoolTestCase;

/* pool_test_add_typed() for each of the @n_cases @cases, in order. */
void       pool_test_add_typed_cases (const char         *prefix,
                                      const PoolTestCase *cases,
                                      gsize               n_cases);

/* The same with a fixture of @fixture_size bytes (see g_test_add()). */
void       pool_test_add_typed_full  (const char       *prefix,
                                      const char       *name,
                                      gsize             fixture_size,
                                      GTestFixtureFunc  setup,
                                      GTestFixtureFunc  func,
                                      GTestFixtureFunc  teardown);

/* ---- values ----------------------------------------------------------------- */

/* [first, first + 1, …] of @n int32 values (floating). */
GVariant  *pool_test_int_array       (gint32 first,
                                      guint  n);

/* The int32 boxed in item @i of the `av` @results. */
gint32     pool_test_av_int32        (GVariant *results,
                                      gsize     i);

/* @results is the `av` [0, 1, 4, …] of @n squares. */
void       pool_test_assert_squares  (GVariant *results,
                                      guint     n);

/* Maps fiber.echo over (0,) … (n-1,) and checks the results, in order. */
void       pool_test_assert_echo_map (FiberPool *pool,
                                      guint      n);

/* ---- file barriers ------------------------------------------------------------ */

/* A new private temporary directory (asserts success). */
char      *pool_test_make_dir        (void);

/* How many entries @dir holds (0 when it does not exist). */
guint      pool_test_count_entries   (const char *dir);

/* Waits (within the guard) until @dir holds at least @n entries. */
void       pool_test_wait_for_entries (const char *dir,
                                       guint       n);

/* Removes the files in @dir, then @dir itself, asserting success. */
void       pool_test_remove_dir      (const char *dir);

/* Creates the empty file @name in @dir. */
gboolean   pool_test_touch           (const char  *dir,
                                      const char  *name,
                                      GError     **error);

/* Appends @line to the file @path (O_APPEND: one write, never torn). */
gboolean   pool_test_append_line     (const char  *path,
                                      const char  *line,
                                      GError     **error);

/* ---- tasks ------------------------------------------------------------------ */

/* i → i * i */
GVariant  *pool_test_task_square     (GVariant      *args,
                                      GCancellable  *cancellable,
                                      gpointer       user_data,
                                      GError       **error);

/* (ii) → a + b */
GVariant  *pool_test_task_add        (GVariant      *args,
                                      GCancellable  *cancellable,
                                      gpointer       user_data,
                                      GError       **error);

/* (s) path: creates the file <path>.<pid> (the start marker), then sleeps
 * (cancellably) for the guard time. */
GVariant  *pool_test_task_started_then_sleep (GVariant      *args,
                                              GCancellable  *cancellable,
                                              gpointer       user_data,
                                              GError       **error);

/* ---- an inline pool type ------------------------------------------------------- */

/* Fills @pool_class with vfuncs that run every item of a batch at once in
 * the calling thread; close, terminate, interrupt do nothing and join
 * succeeds at once. */
void       pool_test_inline_class_setup (FiberPoolClass *pool_class);

/* Declares and defines the final FiberPool subclass TypeName (type_name,
 * MODULE, OBJ_NAME as for G_DECLARE_FINAL_TYPE) with the inline vfuncs. */
#define POOL_TEST_DEFINE_INLINE_POOL(TypeName, type_name, MODULE, OBJ_NAME)      \
  G_DECLARE_FINAL_TYPE (TypeName, type_name, MODULE, OBJ_NAME, FiberPool)        \
  struct _##TypeName { FiberPool parent_instance; };                             \
  G_DEFINE_FINAL_TYPE (TypeName, type_name, FIBER_TYPE_POOL)                     \
  static void type_name##_class_init (TypeName##Class *klass)                    \
  {                                                                              \
    pool_test_inline_class_setup (FIBER_POOL_CLASS (klass));                     \
  }                                                                              \
  static void type_name##_init (TypeName *self) {}

G_END_DECLS

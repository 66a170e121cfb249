/* pool-test-util.c — pool helpers shared by the C pool tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "pool-test-util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

static const char *const process_pool_types[] = { "process", "ndprocess" };

/* ---- pools ------------------------------------------------------------------ */

FiberPool *
pool_test_new (const char *type,
               guint       processes)
{
  g_autoptr(GError) error = NULL;
  FiberPool *pool = fiber_pool_new (type, processes, &error);

  g_assert_no_error (error);
  g_assert_nonnull (pool);
  g_assert_cmpstr (fiber_pool_get_pool_type (pool), ==, type);
  return pool;
}

void
pool_test_close_and_join (FiberPool *pool)
{
  g_autoptr(GError) error = NULL;

  fiber_pool_close (pool);
  g_assert_true (fiber_pool_join (pool, POOL_TEST_GUARD_MSEC, &error));
  g_assert_no_error (error);
}

void
pool_test_finish (FiberPool *pool)
{
  pool_test_close_and_join (pool);
  g_object_unref (pool);
}

void
pool_test_add_typed (const char    *prefix,
                     const char    *name,
                     GTestDataFunc  func)
{
  for (guint i = 0; i < G_N_ELEMENTS (process_pool_types); i++)
    {
      g_autofree char *path = g_strdup_printf ("/%s/%s/%s", prefix, process_pool_types[i], name);

      g_test_add_data_func (path, process_pool_types[i], func);
    }
}

void
pool_test_add_typed_cases (const char         *prefix,
                           const PoolTestCase *cases,
                           gsize               n_cases)
{
  for (gsize i = 0; i < n_cases; i++)
    pool_test_add_typed (prefix, cases[i].name, cases[i].func);
}

void
pool_test_add_typed_full (const char       *prefix,
                          const char       *name,
                          gsize             fixture_size,
                          GTestFixtureFunc  setup,
                          GTestFixtureFunc  func,
                          GTestFixtureFunc  teardown)
{
  for (guint i = 0; i < G_N_ELEMENTS (process_pool_types); i++)
    {
      g_autofree char *path = g_strdup_printf ("/%s/%s/%s", prefix, process_pool_types[i], name);

      g_test_add_vtable (path, fixture_size, process_pool_types[i], setup, func, teardown);
    }
}

/* ---- values ----------------------------------------------------------------- */

GVariant *
pool_test_int_array (gint32 first,
                     guint  n)
{
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE ("ai"));
  for (guint i = 0; i < n; i++)
    g_variant_builder_add (&b, "i", first + (gint32) i);
  return g_variant_builder_end (&b);
}

gint32
pool_test_av_int32 (GVariant *results,
                    gsize     i)
{
  g_autoptr(GVariant) boxed = g_variant_get_child_value (results, i);
  g_autoptr(GVariant) value = g_variant_get_variant (boxed);

  return g_variant_get_int32 (value);
}

void
pool_test_assert_squares (GVariant *results,
                          guint     n)
{
  g_assert_nonnull (results);
  g_assert_cmpstr (g_variant_get_type_string (results), ==, "av");
  g_assert_cmpuint (g_variant_n_children (results), ==, n);
  for (guint i = 0; i < n; i++)
    g_assert_cmpint (pool_test_av_int32 (results, i), ==, (gint32) (i * i));
}

void
pool_test_assert_echo_map (FiberPool *pool,
                           guint      n)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) results = NULL;
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(i)"));
  for (guint i = 0; i < n; i++)
    g_variant_builder_add (&builder, "(i)", (gint32) i);

  results = fiber_pool_map (pool, "fiber.echo", g_variant_builder_end (&builder), 1, &error);
  g_assert_no_error (error);
  g_assert_nonnull (results);
  g_assert_cmpuint (g_variant_n_children (results), ==, n);
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GVariant) boxed = g_variant_get_child_value (results, i);
      g_autoptr(GVariant) item = g_variant_get_variant (boxed);
      gint32 v = -1;

      g_assert_true (g_variant_is_of_type (item, G_VARIANT_TYPE ("(i)")));
      g_variant_get (item, "(i)", &v);
      g_assert_cmpint (v, ==, (gint32) i);
    }
}

/* ---- file barriers ------------------------------------------------------------ */

char *
pool_test_make_dir (void)
{
  g_autoptr(GError) error = NULL;
  char *dir = g_dir_make_tmp ("fiber-test-XXXXXX", &error);

  g_assert_no_error (error);
  return dir;
}

guint
pool_test_count_entries (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  guint n = 0;

  while (d != NULL && g_dir_read_name (d) != NULL)
    n++;
  return n;
}

void
pool_test_wait_for_entries (const char *dir,
                            guint       n)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) POOL_TEST_GUARD_MSEC * 1000;

  while (pool_test_count_entries (dir) < n)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_usleep (2000);
    }
}

void
pool_test_remove_dir (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);

      g_assert_cmpint (g_unlink (path), ==, 0);
    }
  g_assert_cmpint (g_rmdir (dir), ==, 0);
}

gboolean
pool_test_touch (const char  *dir,
                 const char  *name,
                 GError     **error)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);

  return g_file_set_contents (path, "", 0, error);
}

gboolean
pool_test_append_line (const char  *path,
                       const char  *line,
                       GError     **error)
{
  int fd = g_open (path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  gsize len = strlen (line);
  gssize written;

  if (fd < 0)
    {
      int errsv = errno;

      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errsv),
                   "open %s: %s", path, g_strerror (errsv));
      return FALSE;
    }
  written = write (fd, line, len);
  close (fd);
  if (written != (gssize) len)
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_IO, "short write to %s", path);
      return FALSE;
    }
  return TRUE;
}

/* ---- tasks ------------------------------------------------------------------ */

GVariant *
pool_test_task_square (GVariant      *args,
                       GCancellable  *cancellable,
                       gpointer       user_data,
                       GError       **error)
{
  gint32 x;

  if (!g_variant_is_of_type (args, G_VARIANT_TYPE_INT32))
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                   "test.square expects i, got %s", g_variant_get_type_string (args));
      return NULL;
    }
  x = g_variant_get_int32 (args);
  return g_variant_new_int32 (x * x);
}

GVariant *
pool_test_task_add (GVariant      *args,
                    GCancellable  *cancellable,
                    gpointer       user_data,
                    GError       **error)
{
  gint32 a, b;

  g_variant_get (args, "(ii)", &a, &b);
  return g_variant_new_int32 (a + b);
}

GVariant *
pool_test_task_started_then_sleep (GVariant      *args,
                                   GCancellable  *cancellable,
                                   gpointer       user_data,
                                   GError       **error)
{
  const char *path;
  g_autofree char *mine = NULL;

  g_variant_get (args, "(&s)", &path);
  mine = g_strdup_printf ("%s.%d", path, (int) getpid ());
  if (!g_file_set_contents (mine, "", 0, error))
    return NULL;
  if (!fiber_sleep (POOL_TEST_GUARD_MSEC / 1000.0, cancellable, error))
    return NULL;
  return g_variant_new ("()");
}

/* ---- an inline pool type ------------------------------------------------------- */

static gboolean
inline_submit (FiberPool   *pool,
               FiberBatch  *batch,
               GError     **error)
{
  for (guint i = 0; i < fiber_batch_get_n_items (batch); i++)
    {
      g_autoptr(GError) item_error = NULL;
      g_autoptr(GVariant) value = fiber_batch_invoke (batch, i, NULL, &item_error);

      fiber_batch_complete_item (batch, i, value, item_error);
    }
  return TRUE;
}

static void
inline_nothing (FiberPool *pool)
{
}

static gboolean
inline_join (FiberPool  *pool,
             int         timeout_msec,
             GError    **error)
{
  return TRUE;
}

void
pool_test_inline_class_setup (FiberPoolClass *pool_class)
{
  pool_class->submit = inline_submit;
  pool_class->close = inline_nothing;
  pool_class->terminate = inline_nothing;
  pool_class->join = inline_join;
  pool_class->interrupt = inline_nothing;
}

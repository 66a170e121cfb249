/* test-pool-transport.c — FiberProcessPool:transport
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Local workers talk to the pool over a unix stream socket by default, or
 * over ZeroMQ ROUTER/DEALER on ipc:// with transport "zmq" (the code path
 * of remote pools, without CURVE).  The basics — map, apply, apply_async,
 * imap, a worker lost and replaced, interrupt — run on both, and a
 * transport that does not exist is a clear error.
 */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "fiber.h"
#include "fiber-process-pool-private.h"
#include "fiber-test-util.h"

#define GUARD_MSEC 60000

/* (si) marker, i: the first worker to run item i == 3 dies with it (the
 * marker file says it happened); every other run returns i. */
static GVariant *
task_die_once (GVariant      *args,
               GCancellable  *cancellable,
               gpointer       data,
               GError       **error)
{
  const char *marker;
  gint32 i;

  g_variant_get (args, "(&si)", &marker, &i);
  if (i == 3)
    {
      int fd = open (marker, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

      if (fd >= 0)
        {
          close (fd);
          _exit (3);
        }
    }
  return g_variant_new_int32 (i);
}

static FiberPool *
new_pool (const char *transport,
          GError    **error)
{
  return g_initable_new (FIBER_TYPE_PROCESS_POOL, NULL, error,
                         "processes", 2,
                         "transport", transport,
                         "max-retries", 1,
                         NULL);
}

static void
finish_pool (FiberPool *pool)
{
  g_autoptr(GError) error = NULL;

  fiber_pool_close (pool);
  g_assert_true (fiber_pool_join (pool, GUARD_MSEC, &error));
  g_assert_no_error (error);
  g_object_unref (pool);
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

static void
assert_echoed (GVariant *result,
               guint     n)
{
  g_assert_cmpuint (g_variant_n_children (result), ==, n);
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GVariant) child = g_variant_get_child_value (result, i);
      g_autoptr(GVariant) inner = g_variant_is_of_type (child, G_VARIANT_TYPE_VARIANT)
                                    ? g_variant_get_variant (child) : g_variant_ref (child);

      g_assert_cmpint (g_variant_get_int32 (inner), ==, (gint32) i);
    }
}

static void
test_basics (gconstpointer data)
{
  const char *transport = data;
  g_autoptr(GError) error = NULL;
  FiberPool *pool = new_pool (transport, &error);
  g_autoptr(GVariant) mapped = NULL;
  g_autoptr(GVariant) mapped_cs1 = NULL;
  g_autoptr(GVariant) applied = NULL;
  g_autoptr(GPtrArray) asyncs = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(FiberMapResult) imap = NULL;
  g_autofree char *got_transport = NULL;
  const char *endpoint;
  guint index, expected = 0;

  g_assert_no_error (error);
  g_object_get (pool, "transport", &got_transport, NULL);
  g_assert_cmpstr (got_transport, ==, transport);
  endpoint = _fiber_process_pool_get_endpoint (FIBER_PROCESS_POOL (pool));
  g_assert_true (g_str_has_prefix (endpoint, g_str_equal (transport, "zmq") ? "ipc://" : "unix:"));

  mapped = fiber_pool_map (pool, "fiber.echo", int_array (5000), 0, &error);
  g_assert_no_error (error);
  assert_echoed (mapped, 5000);
  mapped_cs1 = fiber_pool_map (pool, "fiber.echo", int_array (300), 1, &error);
  g_assert_no_error (error);
  assert_echoed (mapped_cs1, 300);

  for (gint32 i = 0; i < 200; i++)
    {
      g_autoptr(GVariant) value = fiber_pool_apply (pool, "fiber.echo",
                                                    g_variant_new ("(i)", i), &error);
      gint32 v;

      g_assert_no_error (error);
      g_variant_get (value, "(i)", &v);
      g_assert_cmpint (v, ==, i);
    }
  applied = fiber_pool_apply (pool, "fiber.echo", g_variant_new ("(s)", "ünïcode"), &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (applied), ==, "(s)");

  for (gint32 i = 0; i < 100; i++)
    g_ptr_array_add (asyncs, fiber_pool_apply_async (pool, "fiber.echo", g_variant_new ("(i)", i),
                                                     NULL, NULL, NULL));
  for (guint i = 0; i < asyncs->len; i++)
    {
      g_autoptr(GVariant) value = fiber_apply_result_get (asyncs->pdata[i], GUARD_MSEC, &error);
      gint32 v;

      g_assert_no_error (error);
      g_variant_get (value, "(i)", &v);
      g_assert_cmpint (v, ==, (gint32) i);
    }

  imap = fiber_pool_imap (pool, "fiber.echo", int_array (50), 3, &error);
  g_assert_no_error (error);
  for (;;)
    {
      g_autoptr(GVariant) item = NULL;
      g_autoptr(GError) item_error = NULL;

      if (!fiber_map_result_next (imap, GUARD_MSEC, &index, &item, &item_error))
        {
          g_assert_no_error (item_error);
          break;
        }
      g_assert_cmpuint (index, ==, expected);
      g_assert_cmpint (g_variant_get_int32 (item), ==, (gint32) expected);
      expected++;
    }
  g_assert_cmpuint (expected, ==, 50);

  finish_pool (pool);
  fiber_test_assert_no_leaks (2000);
}

/* A worker that dies holding an item is replaced and the item runs again. */
static void
test_resilience (gconstpointer data)
{
  const char *transport = data;
  g_autoptr(GError) error = NULL;
  FiberPool *pool = new_pool (transport, &error);
  g_autofree char *dir = g_dir_make_tmp ("fiber-transport-XXXXXX", &error);
  g_autofree char *marker = NULL;
  g_autoptr(GVariant) result = NULL;
  GVariantBuilder b;

  g_assert_no_error (error);
  marker = g_build_filename (dir, "died", NULL);
  g_variant_builder_init (&b, G_VARIANT_TYPE ("a(si)"));
  for (gint32 i = 0; i < 10; i++)
    g_variant_builder_add (&b, "(si)", marker, i);
  result = fiber_pool_map (pool, "transport.die-once", g_variant_builder_end (&b), 1, &error);
  g_assert_no_error (error);
  g_assert_true (g_file_test (marker, G_FILE_TEST_EXISTS));
  assert_echoed (result, 10);

  finish_pool (pool);
  g_unlink (marker);
  g_rmdir (dir);
  fiber_test_assert_no_leaks (2000);
}

static void
test_interrupt (gconstpointer data)
{
  const char *transport = data;
  g_autoptr(GError) error = NULL;
  FiberPool *pool = new_pool (transport, &error);
  g_autoptr(FiberApplyResult) sleeping = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GVariant) after = NULL;

  g_assert_no_error (error);
  /* Every worker connected and ready first. */
  after = fiber_pool_map (pool, "fiber.echo", int_array (4), 1, &error);
  g_assert_no_error (error);
  g_clear_pointer (&after, g_variant_unref);

  sleeping = fiber_pool_apply_async (pool, "fiber.sleep", g_variant_new ("(d)", 60.0),
                                     NULL, NULL, NULL);
  g_assert_false (fiber_apply_result_wait (sleeping, 300));
  fiber_pool_interrupt (pool);
  value = fiber_apply_result_get (sleeping, GUARD_MSEC, &error);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INTERRUPTED);
  g_assert_null (value);
  g_clear_error (&error);

  /* The worker carries on. */
  after = fiber_pool_apply (pool, "fiber.echo", g_variant_new ("(i)", 7), &error);
  g_assert_no_error (error);

  finish_pool (pool);
  fiber_test_assert_no_leaks (2000);
}

static void
test_unknown_transport (void)
{
  g_autoptr(GError) error = NULL;
  FiberPool *pool = new_pool ("tcp", &error);

  g_assert_null (pool);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "tcp"));
  fiber_test_assert_no_leaks (2000);
}

static void
test_default_is_unix (void)
{
  g_autoptr(GError) error = NULL;
  FiberPool *pool = new_pool (NULL, &error);
  g_autofree char *transport = NULL;

  g_assert_no_error (error);
  g_object_get (pool, "transport", &transport, NULL);
  g_assert_cmpstr (transport, ==, "unix");
  finish_pool (pool);
  fiber_test_assert_no_leaks (2000);
}

/* The workflow config key "transport" sets the property. */
static void
test_config_key (void)
{
  g_autoptr(GError) error = NULL;
  FiberPool *pool = fiber_pool_new_from_config_string (
    "{\"pool_type\": \"process\", \"processes\": 1, \"transport\": \"zmq\"}", -1, &error);
  g_autoptr(GVariant) value = NULL;
  g_autofree char *transport = NULL;

  g_assert_no_error (error);
  g_object_get (pool, "transport", &transport, NULL);
  g_assert_cmpstr (transport, ==, "zmq");
  value = fiber_pool_apply (pool, "fiber.echo", g_variant_new ("(i)", 1), &error);
  g_assert_no_error (error);
  finish_pool (pool);

  pool = fiber_pool_new_from_config_string (
    "{\"pool_type\": \"process\", \"transport\": \"carrier-pigeon\"}", -1, &error);
  g_assert_null (pool);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  fiber_test_assert_no_leaks (2000);
}

int
main (int   argc,
      char *argv[])
{
  static const char * const transports[] = { "unix", "zmq" };
  int ret;

  fiber_task_register ("transport.die-once", task_die_once, NULL, NULL);
  fiber_init (&argc, &argv, NULL);
  fiber_test_init_environment ();
  g_test_init (&argc, &argv, NULL);

  for (guint i = 0; i < G_N_ELEMENTS (transports); i++)
    {
      g_autofree char *basics = g_strdup_printf ("/pool-transport/%s/basics", transports[i]);
      g_autofree char *resilience = g_strdup_printf ("/pool-transport/%s/resilience",
                                                     transports[i]);
      g_autofree char *interrupt = g_strdup_printf ("/pool-transport/%s/interrupt", transports[i]);

      g_test_add_data_func (basics, transports[i], test_basics);
      g_test_add_data_func (resilience, transports[i], test_resilience);
      g_test_add_data_func (interrupt, transports[i], test_interrupt);
    }
  g_test_add_func ("/pool-transport/default-is-unix", test_default_is_unix);
  g_test_add_func ("/pool-transport/unknown", test_unknown_transport);
  g_test_add_func ("/pool-transport/config-key", test_config_key);

  ret = g_test_run ();
  fiber_test_cleanup_environment ();
  return ret;
}

/* test-registry.c — pool types by name: the extension point, defaults,
 * modules
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <glib/gstdio.h>

#include <fiber.h>

#include "fiber-test-util.h"
#include "pool-test-util.h"

/* ---- an in-test pool type: runs batches inline ---- */

#define TEST_TYPE_INLINE_POOL (test_inline_pool_get_type ())
POOL_TEST_DEFINE_INLINE_POOL (TestInlinePool, test_inline_pool, TEST, INLINE_POOL)

/* A second class, to check that one name holds one class. */
#define TEST_TYPE_OTHER_POOL (test_other_pool_get_type ())
POOL_TEST_DEFINE_INLINE_POOL (TestOtherPool, test_other_pool, TEST, OTHER_POOL)

/* ---- helpers ---- */

static gboolean
type_is_built (const char *type_name)
{
  return g_type_from_name (type_name) != 0;
}

/* ---- tests ---- */

static void
test_list_types (void)
{
  g_auto(GStrv) types = fiber_pool_list_types ();
  g_autofree char *joined = g_strjoinv (" ", types);

  g_test_message ("pool types: %s", joined);

  /* Highest priority first: the built-in process types lead. */
  g_assert_cmpstr (types[0], ==, "process");
  g_assert_cmpstr (types[1], ==, "ndprocess");
  g_assert_cmpstr (types[2], ==, "thread");
  g_assert_cmpstr (types[3], ==, "coroutine");
  g_assert_true (type_is_built ("FiberThreadPool"));
  g_assert_true (type_is_built ("FiberCoroutinePool"));
  g_assert_true (g_strv_contains ((const char * const *) types, "remote"));
  g_assert_true (g_strv_contains ((const char * const *) types, "test-inline"));

  /* No duplicates. */
  for (guint i = 0; types[i] != NULL; i++)
    for (guint j = i + 1; types[j] != NULL; j++)
      g_assert_cmpstr (types[i], !=, types[j]);

  fiber_test_assert_no_leaks (2000);
}

static void
test_extension_point (void)
{
  g_auto(GStrv) types = fiber_pool_list_types ();  /* registers the point */
  GIOExtensionPoint *point = g_io_extension_point_lookup (FIBER_POOL_EXTENSION_POINT_NAME);
  GIOExtension *extension;

  g_assert_nonnull (point);
  g_assert_true (g_io_extension_point_get_required_type (point) == FIBER_TYPE_POOL);

  extension = g_io_extension_point_get_extension_by_name (point, "process");
  g_assert_nonnull (extension);
  g_assert_true (g_io_extension_get_type (extension) == FIBER_TYPE_PROCESS_POOL);
  g_assert_cmpint (g_io_extension_get_priority (extension), ==, 100);

  /* ndprocess is a variant of the same class, not an extension. */
  g_assert_null (g_io_extension_point_get_extension_by_name (point, "ndprocess"));

  extension = g_io_extension_point_get_extension_by_name (point, "test-inline");
  g_assert_nonnull (extension);
  g_assert_cmpstr (g_type_name (g_io_extension_get_type (extension)), ==,
                   "FiberTestInlinePool");

  fiber_test_assert_no_leaks (2000);
}

/* The GIO module in FIBER_MODULE_DIR provides "test-inline". */
static void
test_module_type (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(FiberPool) pool = fiber_pool_new ("test-inline", 3, &error);

  g_assert_no_error (error);
  g_assert_nonnull (pool);
  g_assert_cmpstr (G_OBJECT_TYPE_NAME (pool), ==, "FiberTestInlinePool");
  g_assert_cmpstr (fiber_pool_get_pool_type (pool), ==, "test-inline");
  g_assert_cmpuint (fiber_pool_get_processes (pool), ==, 3);

  pool_test_assert_echo_map (pool, 50);
  pool_test_close_and_join (pool);
  fiber_test_assert_no_leaks (2000);
}

static void
test_unknown_type (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(FiberPool) pool = fiber_pool_new ("no-such-pool", 1, &error);

  g_assert_null (pool);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "no-such-pool"));
  /* The message lists the known names. */
  g_assert_nonnull (strstr (error->message, "process"));
  g_assert_nonnull (strstr (error->message, "ndprocess"));
  g_assert_nonnull (strstr (error->message, "test-inline"));
  g_clear_error (&error);

  pool = fiber_pool_new ("", 1, &error);
  g_assert_null (pool);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  pool = fiber_pool_new ("bad\xff", 1, &error);
  g_assert_null (pool);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_assert_true (g_utf8_validate (error->message, -1, NULL));

  fiber_test_assert_no_leaks (2000);
}

static GSettings *
fiber_settings (void)
{
  GSettingsSchemaSource *source = g_settings_schema_source_get_default ();
  g_autoptr(GSettingsSchema) schema = NULL;

  g_assert_nonnull (source);
  schema = g_settings_schema_source_lookup (source, "org.fiberglib.Fiber", FALSE);
  g_assert_nonnull (schema);  /* compiled into the build (GSETTINGS_SCHEMA_DIR) */
  return g_settings_new_full (schema, NULL, NULL);
}

static void
test_default_env (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(FiberPool) pool = NULL;

  g_setenv ("FIBER_POOL_TYPE", "test-inline", TRUE);
  pool = fiber_pool_new (NULL, 1, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (fiber_pool_get_pool_type (pool), ==, "test-inline");
  pool_test_close_and_join (pool);
  g_clear_object (&pool);

  /* An unknown name from the environment says where it came from. */
  g_setenv ("FIBER_POOL_TYPE", "nonesuch", TRUE);
  pool = fiber_pool_new (NULL, 1, &error);
  g_assert_null (pool);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "nonesuch"));
  g_assert_nonnull (strstr (error->message, "FIBER_POOL_TYPE"));
  g_clear_error (&error);

  /* An explicit name wins over the environment. */
  pool = fiber_pool_new ("test-inline", 1, &error);
  g_assert_no_error (error);
  pool_test_close_and_join (pool);

  g_unsetenv ("FIBER_POOL_TYPE");
  fiber_test_assert_no_leaks (2000);
}

static void
test_default_settings (void)
{
  g_autoptr(GSettings) settings = fiber_settings ();
  g_autoptr(GError) error = NULL;
  g_autoptr(FiberPool) pool = NULL;

  g_assert_cmpstr (g_getenv ("GSETTINGS_BACKEND"), ==, "memory");
  g_unsetenv ("FIBER_POOL_TYPE");

  g_assert_true (g_settings_set_string (settings, "default-pool-type", "test-inline"));
  pool = fiber_pool_new (NULL, 1, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (fiber_pool_get_pool_type (pool), ==, "test-inline");
  pool_test_close_and_join (pool);
  g_clear_object (&pool);

  /* The environment wins over the settings. */
  g_assert_true (g_settings_set_string (settings, "default-pool-type", "nonesuch"));
  g_setenv ("FIBER_POOL_TYPE", "test-inline", TRUE);
  pool = fiber_pool_new (NULL, 1, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (fiber_pool_get_pool_type (pool), ==, "test-inline");
  pool_test_close_and_join (pool);
  g_clear_object (&pool);
  g_unsetenv ("FIBER_POOL_TYPE");

  /* A bad setting is reported as such. */
  pool = fiber_pool_new (NULL, 1, &error);
  g_assert_null (pool);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "nonesuch"));
  g_assert_nonnull (strstr (error->message, "default-pool-type"));
  g_clear_error (&error);

  /* Neither set (an empty setting is unset): process. */
  g_assert_true (g_settings_set_string (settings, "default-pool-type", ""));
  pool = fiber_pool_new (NULL, 1, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (fiber_pool_get_pool_type (pool), ==, "process");
  g_assert_true (FIBER_IS_PROCESS_POOL (pool));
  pool_test_close_and_join (pool);
  g_clear_object (&pool);

  g_settings_reset (settings, "default-pool-type");
  fiber_test_assert_no_leaks (2000);
}

/* A remote pool without a backend gets one from the settings; every
 * remote key is accepted (worker-command, a list of words, becomes the
 * backend's command line), so what fails here is reaching slurmrestd. */
static void
test_remote_settings (void)
{
  g_autoptr(GSettings) settings = fiber_settings ();
  g_autoptr(GError) error = NULL;
  g_autoptr(FiberPool) pool = NULL;
  g_autofree char *dir = g_dir_make_tmp ("fiber-remote-settings-XXXXXX", NULL);
  g_autofree char *socket = g_build_filename (dir, "no-slurmrestd.socket", NULL);
  const char *command[] = { "/opt/fiber worker", "--verbose", NULL };

  g_assert_true (g_settings_set_string (settings, "remote-backend", "slurm"));
  g_assert_true (g_settings_set_string (settings, "slurm-socket", socket));
  g_assert_true (g_settings_set_string (settings, "slurm-partition", "debug"));
  g_assert_true (g_settings_set_uint (settings, "slurm-time-limit", 5));
  g_assert_true (g_settings_set_uint (settings, "slurm-memory", 512));
  g_assert_true (g_settings_set_strv (settings, "worker-command", command));

  pool = fiber_pool_new ("remote", 1, &error);
  if (pool != NULL)
    {
      fiber_pool_terminate (pool);
      g_assert_true (fiber_pool_join (pool, 30000, NULL));
    }
  else
    {
      g_test_message ("%s", error->message);
      g_assert_false (g_error_matches (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT));
      g_assert_nonnull (strstr (error->message, "slurmrestd"));
    }
  g_clear_error (&error);
  g_clear_object (&pool);

  /* an unknown backend name is reported as such */
  g_assert_true (g_settings_set_string (settings, "remote-backend", "nonesuch"));
  pool = fiber_pool_new ("remote", 1, &error);
  g_assert_null (pool);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "nonesuch"));
  g_assert_nonnull (strstr (error->message, "kubernetes"));  /* the known list */

  g_settings_reset (settings, "remote-backend");
  g_settings_reset (settings, "slurm-socket");
  g_settings_reset (settings, "slurm-partition");
  g_settings_reset (settings, "slurm-time-limit");
  g_settings_reset (settings, "slurm-memory");
  g_settings_reset (settings, "worker-command");
  g_assert_cmpint (g_rmdir (dir), ==, 0);
  fiber_test_assert_no_leaks (2000);
}

/* default-processes fills in processes = 0. */
static void
test_default_processes (void)
{
  g_autoptr(GSettings) settings = fiber_settings ();
  g_autoptr(GError) error = NULL;
  g_autoptr(FiberPool) pool = NULL;

  g_assert_true (g_settings_set_uint (settings, "default-processes", 5));
  pool = fiber_pool_new ("test-inline", 0, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (fiber_pool_get_processes (pool), ==, 5);
  pool_test_close_and_join (pool);
  g_clear_object (&pool);

  /* An explicit count wins. */
  pool = fiber_pool_new ("test-inline", 2, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (fiber_pool_get_processes (pool), ==, 2);
  pool_test_close_and_join (pool);
  g_clear_object (&pool);

  /* 0 in the settings too: the pool type's own default (one per CPU). */
  g_settings_reset (settings, "default-processes");
  pool = fiber_pool_new ("test-inline", 0, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (fiber_pool_get_processes (pool), >=, 1);
  pool_test_close_and_join (pool);

  fiber_test_assert_no_leaks (2000);
}

/* Without the schema installed, the registry still works: the child runs
 * with an empty schema directory. */
static void
test_no_schema (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(FiberPool) pool = NULL;
      GSettingsSchemaSource *source = g_settings_schema_source_get_default ();

      g_assert_true (source == NULL ||
                     g_settings_schema_source_lookup (source, "org.fiberglib.Fiber", TRUE) == NULL);
      pool = fiber_pool_new ("test-inline", 0, &error);
      g_assert_no_error (error);
      pool_test_assert_echo_map (pool, 5);
      pool_test_close_and_join (pool);
      return;
    }
  else
    {
      g_autofree char *empty = g_dir_make_tmp ("fiber-no-schema-XXXXXX", NULL);
      g_autofree char *saved_schema_dir = g_strdup (g_getenv ("GSETTINGS_SCHEMA_DIR"));
      g_autofree char *saved_data_dirs = g_strdup (g_getenv ("XDG_DATA_DIRS"));

      g_assert_nonnull (empty);
      g_setenv ("GSETTINGS_SCHEMA_DIR", empty, TRUE);
      g_setenv ("XDG_DATA_DIRS", empty, TRUE);
      g_test_trap_subprocess (NULL, 60 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_DEFAULT);
      g_setenv ("GSETTINGS_SCHEMA_DIR", saved_schema_dir, TRUE);
      if (saved_data_dirs != NULL)
        g_setenv ("XDG_DATA_DIRS", saved_data_dirs, TRUE);
      else
        g_unsetenv ("XDG_DATA_DIRS");
      g_rmdir (empty);
      g_test_trap_assert_passed ();
    }
  fiber_test_assert_no_leaks (2000);
}

static void
test_register_pool_type (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(FiberPool) pool = NULL;
  g_auto(GStrv) types = NULL;

  g_assert_true (fiber_pool_register_pool_type ("test-local", TEST_TYPE_INLINE_POOL, 5, &error));
  g_assert_no_error (error);
  /* Again, same class: nothing to do. */
  g_assert_true (fiber_pool_register_pool_type ("test-local", TEST_TYPE_INLINE_POOL, 5, &error));
  g_assert_no_error (error);

  types = fiber_pool_list_types ();
  g_assert_true (g_strv_contains ((const char * const *) types, "test-local"));

  pool = fiber_pool_new ("test-local", 2, &error);
  g_assert_no_error (error);
  g_assert_true (TEST_IS_INLINE_POOL (pool));
  g_assert_cmpstr (fiber_pool_get_pool_type (pool), ==, "test-local");
  pool_test_assert_echo_map (pool, 20);
  pool_test_close_and_join (pool);

  /* The name is taken by another class. */
  g_assert_false (fiber_pool_register_pool_type ("test-local", TEST_TYPE_OTHER_POOL, 5, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  /* One class, one name. */
  g_assert_false (fiber_pool_register_pool_type ("test-local-2", TEST_TYPE_INLINE_POOL, 5, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "test-local"));
  g_clear_error (&error);

  /* Built-in names and non-pool or abstract classes are refused. */
  g_assert_false (fiber_pool_register_pool_type ("ndprocess", TEST_TYPE_OTHER_POOL, 5, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (fiber_pool_register_pool_type ("test-abstract", FIBER_TYPE_POOL, 5, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (fiber_pool_register_pool_type ("test-object", G_TYPE_OBJECT, 5, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (fiber_pool_register_pool_type ("", TEST_TYPE_OTHER_POOL, 5, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  fiber_test_assert_no_leaks (2000);
}

int
main (int    argc,
      char **argv)
{
  int ret;

  if (!fiber_init (&argc, &argv, NULL))
    return 1;
  fiber_test_init_environment ();

  /* The module directory is read once, when the registry is first used. */
  g_setenv ("FIBER_MODULE_DIR", FIBER_TEST_BUILDDIR "/modules", TRUE);
  g_unsetenv ("FIBER_POOL_TYPE");

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/registry/list-types", test_list_types);
  g_test_add_func ("/registry/extension-point", test_extension_point);
  g_test_add_func ("/registry/module-type", test_module_type);
  g_test_add_func ("/registry/unknown-type", test_unknown_type);
  g_test_add_func ("/registry/default/env", test_default_env);
  g_test_add_func ("/registry/default/settings", test_default_settings);
  g_test_add_func ("/registry/default/processes", test_default_processes);
  g_test_add_func ("/registry/default/no-schema", test_no_schema);
  g_test_add_func ("/registry/default/remote-settings", test_remote_settings);
  g_test_add_func ("/registry/register-pool-type", test_register_pool_type);

  ret = g_test_run ();
  fiber_test_cleanup_environment ();
  return ret;
}

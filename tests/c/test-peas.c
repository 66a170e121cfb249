/* test-peas.c — pool types through libpeas: the C plugin (fiber.plugin)
 * and a Python plugin under tests/c/peas
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <gmodule.h>

#include <fiber.h>
#include <libpeas/peas.h>

#include "fiber-test-util.h"
#include "pool-test-util.h"

/* Loads the plugin called @module_name from @dir and returns the pool
 * provider it adds to @set. */
static FiberPoolProvider *
load_provider (PeasEngine       *engine,
               PeasExtensionSet *set,
               const char       *dir,
               const char       *module_name)
{
  PeasPluginInfo *info;
  g_autoptr(GError) error = NULL;
  PeasExtension *extension;

  peas_engine_add_search_path (engine, dir, NULL);
  info = peas_engine_get_plugin_info (engine, module_name);
  g_assert_nonnull (info);
  if (!peas_engine_load_plugin (engine, info))
    {
      peas_plugin_info_is_available (info, &error);
      g_error ("cannot load plugin %s: %s", module_name,
               error != NULL ? error->message : "(no reason given)");
    }
  g_assert_true (peas_plugin_info_is_loaded (info));

  /* The set follows the engine: the plugin's extension is now in it. */
  extension = peas_extension_set_get_extension (set, info);
  g_assert_nonnull (extension);
  g_assert_true (FIBER_IS_POOL_PROVIDER (extension));
  return FIBER_POOL_PROVIDER (extension);
}

static void
count_extension (PeasExtensionSet *set,
                 PeasPluginInfo   *info,
                 PeasExtension    *extension,
                 gpointer          user_data)
{
  guint *n = user_data;

  g_assert_true (FIBER_IS_POOL_PROVIDER (extension));
  (*n)++;
}

/* The C plugin provides every pool type of the registry; each one is
 * created through it and runs a map. */
static void
test_builtin_provider (void)
{
  g_autoptr(PeasEngine) engine = peas_engine_new ();
  g_autoptr(PeasExtensionSet) set = peas_extension_set_new (engine, FIBER_TYPE_POOL_PROVIDER, NULL);
  FiberPoolProvider *provider;
  g_auto(GStrv) types = NULL;
  g_autofree char *joined = NULL;
  guint n_extensions = 0;

  provider = load_provider (engine, set, FIBER_PEAS_PLUGIN_DIR, "fiber-plugin");
  g_assert_true (FIBER_IS_REGISTRY_POOL_PROVIDER (provider));
  peas_extension_set_foreach (set, count_extension, &n_extensions);
  g_assert_cmpuint (n_extensions, ==, 1);

  types = fiber_pool_provider_list_pool_types (provider);
  joined = g_strjoinv (" ", types);
  g_test_message ("pool types of fiber.plugin: %s", joined);
  g_assert_true (g_strv_contains ((const char * const *) types, "process"));
  g_assert_true (g_strv_contains ((const char * const *) types, "ndprocess"));
  g_assert_true (g_strv_contains ((const char * const *) types, "thread"));
  g_assert_true (g_strv_contains ((const char * const *) types, "coroutine"));
  g_assert_true (g_strv_contains ((const char * const *) types, "test-inline"));

  for (guint i = 0; types[i] != NULL; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(FiberPool) pool = NULL;

      if (g_str_equal (types[i], "remote"))
        {
          g_test_message ("remote: needs a cluster, covered by the remote tests");
          continue;
        }

      pool = fiber_pool_provider_create_pool (provider, types[i],
                                              g_variant_new_parsed ("{'processes': <2>}"),
                                              &error);
      g_assert_no_error (error);
      g_assert_cmpstr (fiber_pool_get_pool_type (pool), ==, types[i]);
      g_assert_cmpuint (fiber_pool_get_processes (pool), ==, 2);
      pool_test_assert_echo_map (pool, 20);
      pool_test_close_and_join (pool);
      g_test_message ("%s: created through the plugin, map of 20 ok", types[i]);
    }

  /* Unknown types and bad configs are errors, through the plugin too. */
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(FiberPool) pool = NULL;

    pool = fiber_pool_provider_create_pool (provider, "nonesuch", NULL, &error);
    g_assert_null (pool);
    g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
    g_clear_error (&error);

    pool = fiber_pool_provider_create_pool (provider, "process",
                                            g_variant_new_parsed ("{'procs': <2>}"), &error);
    g_assert_null (pool);
    g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull (strstr (error->message, "procs"));
  }

  g_clear_object (&set);
  fiber_test_assert_no_leaks (5000);
}

static char *
typelib_path (void)
{
  if (*FIBER_TYPELIB_DIR == '\0')
    return NULL;
  return g_build_filename (FIBER_TYPELIB_DIR, "Fiber-1.0.typelib", NULL);
}

/* A pool type written in Python, provided by a plugin of libpeas' python3
 * loader: tests/c/peas/fiber-python-pool.plugin. */
static void
test_python_provider (void)
{
  g_autofree char *typelib = typelib_path ();
  g_autoptr(PeasEngine) engine = NULL;
  g_autoptr(PeasExtensionSet) set = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(FiberPool) pool = NULL;
  g_auto(GStrv) types = NULL;
  g_auto(GStrv) all_types = NULL;
  FiberPoolProvider *provider;

  if (typelib == NULL)
    {
      g_test_skip ("built with -Dintrospection=false: Python plugins need Fiber-1.0.typelib");
      return;
    }
  /* the typelib is a dependency of this test: it must be there */
  g_assert_true (g_file_test (typelib, G_FILE_TEST_EXISTS));

  engine = peas_engine_new ();
  peas_engine_enable_loader (engine, "python3");
  set = peas_extension_set_new (engine, FIBER_TYPE_POOL_PROVIDER, NULL);
  provider = load_provider (engine, set, FIBER_PEAS_TEST_PLUGIN_DIR, "fiber_python_pool");
  g_assert_cmpstr (G_OBJECT_TYPE_NAME (provider), ==, "FiberTestPythonPoolProvider");

  types = fiber_pool_provider_list_pool_types (provider);
  g_assert_cmpstrv (types, ((const char *[]) { "python-inline", NULL }));

  pool = fiber_pool_provider_create_pool (provider, "python-inline",
                                          g_variant_new_parsed ("{'processes': <3>}"),
                                          &error);
  g_assert_no_error (error);
  g_assert_cmpstr (G_OBJECT_TYPE_NAME (pool), ==, "FiberTestPythonInlinePool");
  g_assert_cmpstr (fiber_pool_get_pool_type (pool), ==, "python-inline");
  g_assert_cmpuint (fiber_pool_get_processes (pool), ==, 3);
  pool_test_assert_echo_map (pool, 20);

  /* A failing task comes back as the task's error. */
  {
    g_autoptr(GVariant) value = fiber_pool_apply (pool, "fiber.fail",
                                                  g_variant_new ("(s)", "from python"), &error);
    g_assert_null (value);
    g_assert_nonnull (error);
    g_assert_nonnull (strstr (error->message, "from python"));
    g_clear_error (&error);
  }
  pool_test_close_and_join (pool);
  g_clear_object (&pool);

  /* The plugin also registered its type by name, for fiber_pool_new(). */
  all_types = fiber_pool_list_types ();
  g_assert_true (g_strv_contains ((const char * const *) all_types, "python-inline"));
  pool = fiber_pool_new ("python-inline", 2, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (G_OBJECT_TYPE_NAME (pool), ==, "FiberTestPythonInlinePool");
  pool_test_assert_echo_map (pool, 5);
  pool_test_close_and_join (pool);
  g_clear_object (&pool);

  /* The provider refuses types it does not have. */
  pool = fiber_pool_provider_create_pool (provider, "process", NULL, &error);
  g_assert_null (pool);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);

  fiber_test_assert_no_leaks (5000);
}

int
main (int    argc,
      char **argv)
{
  int ret;

  if (!fiber_init (&argc, &argv, NULL))
    return 1;
  fiber_test_init_environment ();

  g_setenv ("FIBER_MODULE_DIR", FIBER_TEST_BUILDDIR "/modules", TRUE);
  g_unsetenv ("FIBER_POOL_TYPE");
  /* The Python plugin lives in the source tree: leave no bytecode there. */
  g_setenv ("PYTHONDONTWRITEBYTECODE", "1", TRUE);
  if (*FIBER_TYPELIB_DIR != '\0')
    {
      const char *old = g_getenv ("GI_TYPELIB_PATH");
      g_autofree char *path = old != NULL && *old != '\0'
        ? g_strjoin (G_SEARCHPATH_SEPARATOR_S, FIBER_TYPELIB_DIR, old, NULL)
        : g_strdup (FIBER_TYPELIB_DIR);
      g_setenv ("GI_TYPELIB_PATH", path, TRUE);
    }

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/peas/builtin-provider", test_builtin_provider);
  g_test_add_func ("/peas/python-provider", test_python_provider);

  ret = g_test_run ();
  fiber_test_cleanup_environment ();
  return ret;
}

/* test-config.c — pools from workflow configs
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Linked with the internal archive: fiber-config.h needs json-glib's
 * include path, which the public dependency does not carry yet.
 */

#include <glib/gstdio.h>

#include <fiber.h>
#include "fiber-config.h"

#include "fiber-test-util.h"
#include "pool-test-util.h"

/* ---- an in-test backend: "test" (FiberTestBackend by the naming rule) ---- */

#define TEST_TYPE_BACKEND (fiber_test_backend_get_type ())
G_DECLARE_FINAL_TYPE (FiberTestBackend, fiber_test_backend, FIBER_TEST, BACKEND, GObject)

struct _FiberTestBackend
{
  GObject   parent_instance;
  char     *partition;
  guint     time_limit;
  char    **worker_command;
  gboolean  remote;
};

enum { BACKEND_PROP_0, BACKEND_PROP_PARTITION, BACKEND_PROP_TIME_LIMIT,
       BACKEND_PROP_WORKER_COMMAND, BACKEND_PROP_REMOTE, BACKEND_N_PROPS };

static const char *
test_backend_get_name (FiberBackend *backend)
{
  return "test";
}

static gboolean
test_backend_is_remote (FiberBackend *backend)
{
  return FIBER_TEST_BACKEND (backend)->remote;
}

static void
test_backend_iface_init (FiberBackendInterface *iface)
{
  iface->get_name = test_backend_get_name;
  iface->is_remote = test_backend_is_remote;
}

G_DEFINE_FINAL_TYPE_WITH_CODE (FiberTestBackend, fiber_test_backend, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (FIBER_TYPE_BACKEND, test_backend_iface_init))

static void
fiber_test_backend_get_property (GObject    *object,
                                 guint       prop_id,
                                 GValue     *value,
                                 GParamSpec *pspec)
{
  FiberTestBackend *self = FIBER_TEST_BACKEND (object);

  switch (prop_id)
    {
    case BACKEND_PROP_PARTITION:
      g_value_set_string (value, self->partition);
      break;
    case BACKEND_PROP_TIME_LIMIT:
      g_value_set_uint (value, self->time_limit);
      break;
    case BACKEND_PROP_WORKER_COMMAND:
      g_value_set_boxed (value, self->worker_command);
      break;
    case BACKEND_PROP_REMOTE:
      g_value_set_boolean (value, self->remote);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
fiber_test_backend_set_property (GObject      *object,
                                 guint         prop_id,
                                 const GValue *value,
                                 GParamSpec   *pspec)
{
  FiberTestBackend *self = FIBER_TEST_BACKEND (object);

  switch (prop_id)
    {
    case BACKEND_PROP_PARTITION:
      g_free (self->partition);
      self->partition = g_value_dup_string (value);
      break;
    case BACKEND_PROP_TIME_LIMIT:
      self->time_limit = g_value_get_uint (value);
      break;
    case BACKEND_PROP_WORKER_COMMAND:
      g_strfreev (self->worker_command);
      self->worker_command = g_value_dup_boxed (value);
      break;
    case BACKEND_PROP_REMOTE:
      self->remote = g_value_get_boolean (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
fiber_test_backend_finalize (GObject *object)
{
  FiberTestBackend *self = FIBER_TEST_BACKEND (object);

  g_free (self->partition);
  g_strfreev (self->worker_command);
  G_OBJECT_CLASS (fiber_test_backend_parent_class)->finalize (object);
}

static void
fiber_test_backend_class_init (FiberTestBackendClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags flags = G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS;

  object_class->get_property = fiber_test_backend_get_property;
  object_class->set_property = fiber_test_backend_set_property;
  object_class->finalize = fiber_test_backend_finalize;

  g_object_class_install_property (object_class, BACKEND_PROP_PARTITION,
    g_param_spec_string ("partition", NULL, NULL, NULL, flags));
  g_object_class_install_property (object_class, BACKEND_PROP_TIME_LIMIT,
    g_param_spec_uint ("time-limit", NULL, NULL, 0, 10000, 0, flags));
  g_object_class_install_property (object_class, BACKEND_PROP_WORKER_COMMAND,
    g_param_spec_boxed ("worker-command", NULL, NULL, G_TYPE_STRV, flags));
  g_object_class_install_property (object_class, BACKEND_PROP_REMOTE,
    g_param_spec_boolean ("remote", NULL, NULL, FALSE, flags));
}

static void
fiber_test_backend_init (FiberTestBackend *self)
{
}

/* ---- in-test pool types: inline execution, with and without the extra
 * properties of the config (stack-size, backend) ---- */

#define TEST_TYPE_PLAIN_POOL (test_plain_pool_get_type ())
POOL_TEST_DEFINE_INLINE_POOL (TestPlainPool, test_plain_pool, TEST, PLAIN_POOL)

#define TEST_TYPE_FULL_POOL (test_full_pool_get_type ())
G_DECLARE_FINAL_TYPE (TestFullPool, test_full_pool, TEST, FULL_POOL, FiberPool)

struct _TestFullPool
{
  FiberPool     parent_instance;
  guint         stack_size;
  FiberBackend *backend;
};

enum { POOL_PROP_0, POOL_PROP_STACK_SIZE, POOL_PROP_BACKEND, POOL_N_PROPS };

G_DEFINE_FINAL_TYPE (TestFullPool, test_full_pool, FIBER_TYPE_POOL)

static void
test_full_pool_get_property (GObject    *object,
                             guint       prop_id,
                             GValue     *value,
                             GParamSpec *pspec)
{
  TestFullPool *self = TEST_FULL_POOL (object);

  switch (prop_id)
    {
    case POOL_PROP_STACK_SIZE:
      g_value_set_uint (value, self->stack_size);
      break;
    case POOL_PROP_BACKEND:
      g_value_set_object (value, self->backend);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
test_full_pool_set_property (GObject      *object,
                             guint         prop_id,
                             const GValue *value,
                             GParamSpec   *pspec)
{
  TestFullPool *self = TEST_FULL_POOL (object);

  switch (prop_id)
    {
    case POOL_PROP_STACK_SIZE:
      self->stack_size = g_value_get_uint (value);
      break;
    case POOL_PROP_BACKEND:
      g_set_object (&self->backend, g_value_get_object (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
test_full_pool_dispose (GObject *object)
{
  g_clear_object (&TEST_FULL_POOL (object)->backend);
  G_OBJECT_CLASS (test_full_pool_parent_class)->dispose (object);
}

static void
test_full_pool_class_init (TestFullPoolClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags flags = G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS;

  object_class->get_property = test_full_pool_get_property;
  object_class->set_property = test_full_pool_set_property;
  object_class->dispose = test_full_pool_dispose;
  pool_test_inline_class_setup (FIBER_POOL_CLASS (klass));

  g_object_class_install_property (object_class, POOL_PROP_STACK_SIZE,
    g_param_spec_uint ("stack-size", NULL, NULL, 16384, G_MAXUINT, 65536, flags));
  g_object_class_install_property (object_class, POOL_PROP_BACKEND,
    g_param_spec_object ("backend", NULL, NULL, FIBER_TYPE_BACKEND, flags));
}

static void
test_full_pool_init (TestFullPool *self)
{
}

/* ---- helpers ---- */

static gboolean
has_pool_type (const char *name)
{
  g_auto(GStrv) types = fiber_pool_list_types ();
  return g_strv_contains ((const char * const *) types, name);
}

static GSettings *
fiber_settings (void)
{
  GSettingsSchemaSource *source = g_settings_schema_source_get_default ();
  g_autoptr(GSettingsSchema) schema = NULL;

  g_assert_nonnull (source);
  schema = g_settings_schema_source_lookup (source, "org.fiberglib.Fiber", FALSE);
  g_assert_nonnull (schema);
  return g_settings_new_full (schema, NULL, NULL);
}

/* ---- tests ---- */

static void
test_valid_full (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(FiberPool) pool = NULL;
  g_autoptr(FiberTestBackend) backend = NULL;
  g_autoptr(GVariant) initargs = NULL;
  g_autofree char *initializer = NULL;
  guint maxtasks = 0, retries = 0, stack_size = 0;
  gboolean resilient = TRUE;

  pool = fiber_pool_new_from_config_string (
    "{"
    "  \"pool_type\": \"test-config\","
    "  \"processes\": 3,"
    "  \"max_retries\": 5,"
    "  \"maxtasksperchild\": 10,"
    "  \"initializer\": \"fiber.noop\","
    "  \"initargs\": \"(1, 'a')\","
    "  \"resilient\": false,"
    "  \"stack_size\": 131072,"
    "  \"backend\": {"
    "    \"name\": \"test\","
    "    \"partition\": \"debug\","
    "    \"time_limit\": 60,"
    "    \"worker-command\": [\"fiber-worker\", \"--verbose\"]"
    "  }"
    "}", -1, &error);
  g_assert_no_error (error);
  g_assert_true (TEST_IS_FULL_POOL (pool));
  g_assert_cmpstr (fiber_pool_get_pool_type (pool), ==, "test-config");
  g_assert_cmpuint (fiber_pool_get_processes (pool), ==, 3);

  g_object_get (pool,
                "max-retries", &retries,
                "maxtasksperchild", &maxtasks,
                "initializer", &initializer,
                "initargs", &initargs,
                "resilient", &resilient,
                "stack-size", &stack_size,
                "backend", &backend,
                NULL);
  g_assert_cmpuint (retries, ==, 5);
  g_assert_cmpuint (maxtasks, ==, 10);
  g_assert_cmpstr (initializer, ==, "fiber.noop");
  g_assert_nonnull (initargs);
  g_assert_true (g_variant_equal (initargs, g_variant_new_parsed ("(1, 'a')")));
  g_assert_false (resilient);
  g_assert_cmpuint (stack_size, ==, 131072);

  g_assert_nonnull (backend);
  g_assert_cmpstr (backend->partition, ==, "debug");
  g_assert_cmpuint (backend->time_limit, ==, 60);
  g_assert_nonnull (backend->worker_command);
  g_assert_cmpstr (backend->worker_command[0], ==, "fiber-worker");
  g_assert_cmpstr (backend->worker_command[1], ==, "--verbose");
  g_assert_null (backend->worker_command[2]);

  pool_test_assert_echo_map (pool, 20);
  pool_test_close_and_join (pool);
  fiber_test_assert_no_leaks (2000);
}

/* Members set to null and absent members take the defaults. */
static void
test_valid_defaults (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(FiberPool) pool = NULL;
  g_autoptr(JsonObject) config = json_object_new ();
  guint retries = 0, stack_size = 0;
  gboolean resilient = FALSE;

  json_object_set_string_member (config, "pool_type", "test-config");
  json_object_set_null_member (config, "max_retries");
  json_object_set_null_member (config, "backend");

  pool = fiber_pool_new_from_config (config, &error);
  g_assert_no_error (error);
  g_object_get (pool, "max-retries", &retries, "resilient", &resilient,
                "stack-size", &stack_size, NULL);
  g_assert_cmpuint (retries, ==, 3);
  g_assert_true (resilient);
  g_assert_cmpuint (stack_size, ==, 65536);
  g_assert_cmpuint (fiber_pool_get_processes (pool), >=, 1);
  pool_test_close_and_join (pool);
  fiber_test_assert_no_leaks (2000);
}

static void
test_valid_file (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(FiberPool) pool = NULL;
  g_autofree char *path = g_build_filename (g_get_tmp_dir (), "workflow.json", NULL);
  const char *text = "{ \"pool_type\": \"test-config-plain\", \"processes\": 2 }\n";

  g_assert_true (g_file_set_contents (path, text, -1, &error));
  pool = fiber_pool_new_from_config_file (path, &error);
  g_assert_no_error (error);
  g_assert_true (TEST_IS_PLAIN_POOL (pool));
  g_assert_cmpuint (fiber_pool_get_processes (pool), ==, 2);
  pool_test_assert_echo_map (pool, 5);
  pool_test_close_and_join (pool);
  g_unlink (path);
  fiber_test_assert_no_leaks (2000);
}

/* Every error is FIBER_ERROR_INVALID_ARGUMENT and names the key. */
static const struct
{
  const char *json;
  const char *key;
} bad_configs[] = {
  { "{\"pool_type\": \"test-config\", \"procs\": 2}", "“procs”" },
  { "{\"pool_type\": \"test-config\", \"processes\": \"two\"}", "“processes”" },
  { "{\"pool_type\": \"test-config\", \"processes\": -1}", "“processes”" },
  { "{\"pool_type\": \"test-config\", \"processes\": 1.5}", "“processes”" },
  { "{\"pool_type\": \"test-config\", \"processes\": 100000}", "“processes”" },
  { "{\"pool_type\": \"test-config\", \"processes\": true}", "“processes”" },
  { "{\"pool_type\": \"test-config\", \"max_retries\": 1001}", "“max_retries”" },
  { "{\"pool_type\": \"test-config\", \"max_retries\": [3]}", "“max_retries”" },
  { "{\"pool_type\": \"test-config\", \"maxtasksperchild\": -5}", "“maxtasksperchild”" },
  { "{\"pool_type\": \"test-config\", \"resilient\": \"yes\"}", "“resilient”" },
  { "{\"pool_type\": \"test-config\", \"resilient\": 1}", "“resilient”" },
  { "{\"pool_type\": \"test-config\", \"initializer\": 5}", "“initializer”" },
  { "{\"pool_type\": \"test-config\", \"initargs\": \"(1,\"}", "“initargs”" },
  { "{\"pool_type\": \"test-config\", \"initargs\": [1, 2]}", "“initargs”" },
  { "{\"pool_type\": \"test-config\", \"stack_size\": 4096}", "“stack_size”" },
  { "{\"pool_type\": \"test-config-plain\", \"stack_size\": 65536}", "“stack_size”" },
  { "{\"pool_type\": \"test-config-plain\", \"backend\": {\"name\": \"test\"}}", "“backend”" },
  { "{\"pool_type\": \"nonesuch\"}", "“pool_type”" },
  { "{\"pool_type\": 7}", "“pool_type”" },
  { "{\"pool_type\": \"test-config\", \"backend\": \"slurm\"}", "“backend”" },
  { "{\"pool_type\": \"test-config\", \"backend\": {}}", "“backend.name”" },
  { "{\"pool_type\": \"test-config\", \"backend\": {\"name\": 1}}", "“backend.name”" },
  { "{\"pool_type\": \"test-config\", \"backend\": {\"name\": \"nonesuch\"}}", "“backend.name”" },
  { "{\"pool_type\": \"test-config\", \"backend\": {\"name\": \"test\", \"colour\": \"red\"}}", "“backend.colour”" },
  { "{\"pool_type\": \"test-config\", \"backend\": {\"name\": \"test\", \"time_limit\": \"1h\"}}", "“backend.time_limit”" },
  { "{\"pool_type\": \"test-config\", \"backend\": {\"name\": \"test\", \"time_limit\": 99999}}", "“backend.time_limit”" },
  { "{\"pool_type\": \"test-config\", \"backend\": {\"name\": \"test\", \"worker_command\": [\"a\", 1]}}", "“backend.worker_command”" },
};

static void
test_errors (void)
{
  for (gsize i = 0; i < G_N_ELEMENTS (bad_configs); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(FiberPool) pool = NULL;

      pool = fiber_pool_new_from_config_string (bad_configs[i].json, -1, &error);
      g_test_message ("%s → %s", bad_configs[i].json, error != NULL ? error->message : "(no error)");
      g_assert_null (pool);
      g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
      g_assert_nonnull (strstr (error->message, bad_configs[i].key));
    }

  /* The unknown pool type and the unknown backend are named too. */
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(FiberPool) pool = fiber_pool_new_from_config_string (
      "{\"pool_type\": \"nonesuch\"}", -1, &error);
    g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull (strstr (error->message, "nonesuch"));
    g_assert_nonnull (strstr (error->message, "test-config"));  /* the known list */
  }
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(FiberPool) pool = fiber_pool_new_from_config_string (
      "{\"pool_type\": \"test-config\", \"backend\": {\"name\": \"nonesuch\"}}", -1, &error);
    g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull (strstr (error->message, "nonesuch"));
    g_assert_nonnull (strstr (error->message, "local"));  /* the known list */
  }
  fiber_test_assert_no_leaks (2000);
}

static void
test_bad_json (void)
{
  const char *texts[] = { "", "{", "{\"processes\": }", "[1, 2]", "42", "null", "{\"a\": 1,}" };
  g_autofree char *path = g_build_filename (g_get_tmp_dir (), "broken.json", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(FiberPool) pool = NULL;

  for (gsize i = 0; i < G_N_ELEMENTS (texts); i++)
    {
      g_autoptr(GError) text_error = NULL;
      g_autoptr(FiberPool) text_pool = fiber_pool_new_from_config_string (texts[i], -1, &text_error);

      g_test_message ("%s → %s", texts[i], text_error != NULL ? text_error->message : "(no error)");
      g_assert_null (text_pool);
      g_assert_error (text_error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
    }

  /* Length-delimited text: the tail is not read. */
  pool = fiber_pool_new_from_config_string ("{\"pool_type\": \"test-config-plain\"}garbage", 34, &error);
  g_assert_no_error (error);
  pool_test_close_and_join (pool);
  g_clear_object (&pool);

  /* Files: a missing file is a file error, bad contents name the file. */
  pool = fiber_pool_new_from_config_file (path, &error);
  g_assert_null (pool);
  g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
  g_clear_error (&error);

  g_assert_true (g_file_set_contents (path, "{ \"processes\": 2,, }", -1, NULL));
  pool = fiber_pool_new_from_config_file (path, &error);
  g_assert_null (pool);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "broken.json"));
  g_clear_error (&error);

  g_assert_true (g_file_set_contents (path, "{ \"pool_type\": \"test-config\", \"procs\": 2 }", -1, NULL));
  pool = fiber_pool_new_from_config_file (path, &error);
  g_assert_null (pool);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "broken.json"));
  g_assert_nonnull (strstr (error->message, "procs"));
  g_clear_error (&error);

  g_unlink (path);
  fiber_test_assert_no_leaks (2000);
}

/* Settings fill in what the config leaves out; the config wins. */
static void
test_settings_defaults (void)
{
  g_autoptr(GSettings) settings = fiber_settings ();
  g_autoptr(GError) error = NULL;
  g_autoptr(FiberPool) pool = NULL;
  guint retries = 0, stack_size = 0;

  g_assert_true (g_settings_set_uint (settings, "max-retries", 7));
  g_assert_true (g_settings_set_uint (settings, "stack-size", 32768));
  g_assert_true (g_settings_set_uint (settings, "default-processes", 4));

  pool = fiber_pool_new_from_config_string ("{\"pool_type\": \"test-config\"}", -1, &error);
  g_assert_no_error (error);
  g_object_get (pool, "max-retries", &retries, "stack-size", &stack_size, NULL);
  g_assert_cmpuint (retries, ==, 7);
  g_assert_cmpuint (stack_size, ==, 32768);
  g_assert_cmpuint (fiber_pool_get_processes (pool), ==, 4);
  pool_test_close_and_join (pool);
  g_clear_object (&pool);

  pool = fiber_pool_new_from_config_string (
    "{\"pool_type\": \"test-config\", \"max_retries\": 0, \"stack_size\": 20000, \"processes\": 1}",
    -1, &error);
  g_assert_no_error (error);
  g_object_get (pool, "max-retries", &retries, "stack-size", &stack_size, NULL);
  g_assert_cmpuint (retries, ==, 0);
  g_assert_cmpuint (stack_size, ==, 20000);
  g_assert_cmpuint (fiber_pool_get_processes (pool), ==, 1);
  pool_test_close_and_join (pool);
  g_clear_object (&pool);

  g_settings_reset (settings, "max-retries");
  g_settings_reset (settings, "stack-size");
  g_settings_reset (settings, "default-processes");
  fiber_test_assert_no_leaks (2000);
}

/* The registry provider takes a{sv} configs. */
static void
test_provider (void)
{
  g_autoptr(FiberPoolProvider) provider = fiber_registry_pool_provider_new ();
  g_auto(GStrv) types = fiber_pool_provider_list_pool_types (provider);
  g_autoptr(GError) error = NULL;
  g_autoptr(FiberPool) pool = NULL;
  g_autoptr(GVariant) initargs = NULL;
  g_autoptr(FiberTestBackend) backend = NULL;

  g_assert_true (g_strv_contains ((const char * const *) types, "process"));
  g_assert_true (g_strv_contains ((const char * const *) types, "test-config"));
  g_assert_true (fiber_pool_provider_has_pool_type (provider, "test-config"));
  g_assert_false (fiber_pool_provider_has_pool_type (provider, "nonesuch"));

  pool = fiber_pool_provider_create_pool (provider, "test-config",
    g_variant_new_parsed ("{'processes': <uint32 2>, 'initargs': <(1, 'a')>, "
                          "'backend': <{'name': <'test'>, 'partition': <'p'>}>}"),
    &error);
  g_assert_no_error (error);
  g_assert_true (TEST_IS_FULL_POOL (pool));
  g_assert_cmpuint (fiber_pool_get_processes (pool), ==, 2);
  g_object_get (pool, "initargs", &initargs, "backend", &backend, NULL);
  g_assert_true (g_variant_equal (initargs, g_variant_new_parsed ("(1, 'a')")));
  g_assert_cmpstr (backend->partition, ==, "p");
  pool_test_assert_echo_map (pool, 10);
  pool_test_close_and_join (pool);
  g_clear_object (&pool);

  /* No config: the defaults. */
  pool = fiber_pool_provider_create_pool (provider, "test-config-plain", NULL, &error);
  g_assert_no_error (error);
  pool_test_close_and_join (pool);
  g_clear_object (&pool);

  /* A pool_type entry must agree. */
  pool = fiber_pool_provider_create_pool (provider, "test-config",
    g_variant_new_parsed ("{'pool_type': <'test-config-plain'>}"), &error);
  g_assert_null (pool);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "pool_type"));
  g_clear_error (&error);

  /* Not a{sv}, unknown types, bad keys. */
  pool = fiber_pool_provider_create_pool (provider, "test-config",
                                          g_variant_new_parsed ("[1, 2]"), &error);
  g_assert_null (pool);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  pool = fiber_pool_provider_create_pool (provider, "nonesuch", NULL, &error);
  g_assert_null (pool);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "nonesuch"));
  g_clear_error (&error);

  pool = fiber_pool_provider_create_pool (provider, "test-config",
    g_variant_new_parsed ("{'processes': <'many'>}"), &error);
  g_assert_null (pool);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "processes"));
  g_clear_error (&error);

  fiber_test_assert_no_leaks (2000);
}

/* Real pool types from configs. */
static void
test_process_types (void)
{
  const char *names[] = { "process", "ndprocess" };

  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(FiberPool) pool = NULL;
      g_autofree char *text = g_strdup_printf (
        "{\"pool_type\": \"%s\", \"processes\": 2, \"max_retries\": 4}", names[i]);
      gboolean daemon = i == 0 ? FALSE : TRUE;
      guint retries = 0;

      pool = fiber_pool_new_from_config_string (text, -1, &error);
      g_assert_no_error (error);
      g_assert_true (FIBER_IS_PROCESS_POOL (pool));
      g_assert_cmpstr (fiber_pool_get_pool_type (pool), ==, names[i]);
      g_assert_cmpuint (fiber_pool_get_processes (pool), ==, 2);
      g_object_get (pool, "daemon", &daemon, "max-retries", &retries, NULL);
      g_assert_true (daemon == (i == 0));
      g_assert_cmpuint (retries, ==, 4);
      pool_test_assert_echo_map (pool, 20);
      pool_test_close_and_join (pool);
    }
  fiber_test_assert_no_leaks (5000);
}

/* The example configs shipped in data/workflows. */
static void
test_examples (void)
{
  const char *local[] = { "process", "ndprocess", "thread", "coroutine" };

  for (gsize i = 0; i < G_N_ELEMENTS (local); i++)
    {
      g_autofree char *file = g_strconcat (local[i], ".json", NULL);
      g_autofree char *path = g_test_build_filename (G_TEST_DIST, "..", "data", "workflows", file, NULL);
      g_autoptr(GError) error = NULL;
      g_autoptr(FiberPool) pool = NULL;

      if (!has_pool_type (local[i]))
        {
          g_test_message ("pool type %s not built yet: skipping %s", local[i], file);
          continue;
        }
      pool = fiber_pool_new_from_config_file (path, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (fiber_pool_get_pool_type (pool), ==, local[i]);
      pool_test_assert_echo_map (pool, 10);
      pool_test_close_and_join (pool);
    }

  /* The remote example needs a cluster: its keys are all valid, so what
   * fails is reaching slurmrestd, not the config. */
  if (has_pool_type ("remote"))
    {
      g_autofree char *path = g_test_build_filename (G_TEST_DIST, "..", "data", "workflows",
                                                     "remote-slurm.json", NULL);
      g_autoptr(GError) error = NULL;
      g_autoptr(FiberPool) pool = fiber_pool_new_from_config_file (path, &error);

      if (pool != NULL)
        {
          fiber_pool_terminate (pool);
          g_assert_true (fiber_pool_join (pool, 30000, NULL));
        }
      else
        {
          g_test_message ("remote-slurm.json: %s", error->message);
          g_assert_false (g_error_matches (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT));
        }
    }
  else
    {
      g_autofree char *path = g_test_build_filename (G_TEST_DIST, "..", "data", "workflows",
                                                     "remote-slurm.json", NULL);
      g_autoptr(GError) error = NULL;
      g_autoptr(FiberPool) pool = fiber_pool_new_from_config_file (path, &error);

      g_assert_null (pool);
      g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
      g_assert_nonnull (strstr (error->message, "“pool_type”"));
    }
  fiber_test_assert_no_leaks (5000);
}

/* Runs `fiber map --no-progress ARGS… --task fiber.echo` with @input. */
static int
run_cli_map (const char  *config,
             const char  *extra_option,
             const char  *input,
             char       **out,
             char       **err)
{
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GError) error = NULL;
  const char *cli = g_getenv ("FIBER_CLI");
  const char *argv[] = { cli, "map", "--no-progress", "--config", config,
                         "--task", "fiber.echo", extra_option, NULL };

  g_assert_nonnull (cli);
  proc = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDIN_PIPE |
                                  G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                  G_SUBPROCESS_FLAGS_STDERR_PIPE, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_communicate_utf8 (proc, input, NULL, out, err, &error));
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (proc));
  return g_subprocess_get_exit_status (proc);
}

/* `fiber map --config FILE`: the example configs work, a bad one is a
 * usage error naming the key. */
static void
test_cli_config (void)
{
  const char *examples[] = { "thread.json", "coroutine.json", "process.json" };
  g_autofree char *dir = NULL;
  g_autofree char *bad = NULL;

  for (gsize i = 0; i < G_N_ELEMENTS (examples); i++)
    {
      g_autofree char *path = g_test_build_filename (G_TEST_DIST, "..", "data", "workflows",
                                                     examples[i], NULL);
      g_autofree char *out = NULL;
      g_autofree char *err = NULL;

      g_assert_cmpint (run_cli_map (path, NULL, "(1,)\n(2,)\n(3,)\n", &out, &err), ==, 0);
      g_assert_cmpstr (out, ==, "(1,)\n(2,)\n(3,)\n");
    }

  dir = g_dir_make_tmp ("fiber-cli-config-XXXXXX", NULL);
  g_assert_nonnull (dir);
  bad = g_build_filename (dir, "bad.json", NULL);
  g_assert_true (g_file_set_contents (bad, "{\"pool_type\": \"thread\", \"procs\": 2}", -1, NULL));
  {
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;

    g_assert_cmpint (run_cli_map (bad, NULL, "(1,)\n", &out, &err), ==, 2);
    g_assert_nonnull (strstr (err, "procs"));
    g_assert_nonnull (strstr (err, "bad.json"));
  }
  {
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;

    /* --config says how many workers: -j does not go with it */
    g_assert_cmpint (run_cli_map (bad, "--jobs=2", "(1,)\n", &out, &err), ==, 2);
    g_assert_nonnull (strstr (err, "--config"));
  }
  g_assert_cmpint (g_unlink (bad), ==, 0);
  {
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;

    g_assert_cmpint (run_cli_map (bad, NULL, "(1,)\n", &out, &err), ==, 2);
    g_assert_nonnull (strstr (err, "bad.json"));
  }
  g_assert_cmpint (g_rmdir (dir), ==, 0);
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
  g_unsetenv ("FIBER_POOL_TYPE");

  g_type_ensure (TEST_TYPE_BACKEND);
  if (!fiber_pool_register_pool_type ("test-config", TEST_TYPE_FULL_POOL, 1, NULL) ||
      !fiber_pool_register_pool_type ("test-config-plain", TEST_TYPE_PLAIN_POOL, 1, NULL))
    g_error ("cannot register the test pool types");

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/config/valid/full", test_valid_full);
  g_test_add_func ("/config/valid/defaults", test_valid_defaults);
  g_test_add_func ("/config/valid/file", test_valid_file);
  g_test_add_func ("/config/errors", test_errors);
  g_test_add_func ("/config/bad-json", test_bad_json);
  g_test_add_func ("/config/settings-defaults", test_settings_defaults);
  g_test_add_func ("/config/provider", test_provider);
  g_test_add_func ("/config/process-types", test_process_types);
  g_test_add_func ("/config/examples", test_examples);
  g_test_add_func ("/config/cli", test_cli_config);

  ret = g_test_run ();
  fiber_test_cleanup_environment ();
  return ret;
}

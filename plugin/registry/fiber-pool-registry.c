/* fiber-pool-registry.c — pool types by name
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Pool types are found through the GIO extension point "fiber-pool-type"
 * (required type FIBER_TYPE_POOL).  The extension name is the pool type
 * name users write ("thread", "coroutine", or a module's own name) and the
 * extension type is the class of its pools; the priority orders
 * fiber_pool_list_types().
 *
 * A GIO extension point holds one extension per GType, so a name that is a
 * configuration of a class already registered under another name cannot be
 * an extension of its own.  The library therefore knows two kinds of names:
 *
 *  - extensions: one per pool class (process → FiberProcessPool, thread →
 *    FiberThreadPool, coroutine → FiberCoroutinePool, and every type a
 *    module registers);
 *  - variants: a name bound to a class plus construct properties the
 *    registry sets when it creates the pool (ndprocess → FiberProcessPool
 *    with daemon = FALSE; remote → FiberProcessPool with a remote backend
 *    built from the workflow config or the GSettings keys).
 *
 * Both kinds are listed by fiber_pool_list_types() and created by name with
 * fiber_pool_new(); a name is looked up among the variants first, so a
 * module cannot shadow a built-in variant.  The registered name of a pool
 * is what fiber_pool_get_pool_type() returns.
 *
 * Extra types come from GIO modules (files lib*.so exporting
 * g_io_module_load()) in the directories of the FIBER_MODULE_DIR
 * environment variable (a search path) and in the installed modules
 * directory; both are read once, the first time the registry is used.
 *
 * The default type (pool_type NULL): the FIBER_POOL_TYPE environment
 * variable, else the GSettings key default-pool-type (when the schema is
 * installed), else "process".
 */

#include <string.h>

#include "fiber-error.h"
#include "fiber-backend.h"
#include "fiber-local-backend.h"
#include "fiber-pool-registry.h"
#include "fiber-pool-registry-private.h"
#include "fiber-coroutine-pool.h"
#include "fiber-kubernetes-backend.h"
#include "fiber-process-pool.h"
#include "fiber-slurm-backend.h"
#include "fiber-thread-pool.h"

#ifndef FIBER_MODULE_DIR
# error "FIBER_MODULE_DIR must be defined by the build"
#endif

#define DEFAULT_POOL_TYPE "process"

/* ---- construct property lists ---- */

typedef struct
{
  GPtrArray *names;   /* (element-type utf8) owned */
  GArray    *values;  /* (element-type GValue) */
} PropList;

static void
prop_list_init (PropList *props)
{
  props->names = g_ptr_array_new_with_free_func (g_free);
  props->values = g_array_new (FALSE, TRUE, sizeof (GValue));
  g_array_set_clear_func (props->values, (GDestroyNotify) g_value_unset);
}

static void
prop_list_clear (PropList *props)
{
  g_clear_pointer (&props->names, g_ptr_array_unref);
  g_clear_pointer (&props->values, g_array_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (PropList, prop_list_clear)

static int
prop_list_find (PropList   *props,
                const char *name)
{
  for (guint i = 0; i < props->names->len; i++)
    if (g_str_equal (g_ptr_array_index (props->names, i), name))
      return (int) i;
  return -1;
}

/* Takes over @value (which the caller must not unset). */
static void
prop_list_take (PropList   *props,
                const char *name,
                GValue     *value)
{
  int pos = prop_list_find (props, name);

  if (pos >= 0)
    {
      GValue *slot = &g_array_index (props->values, GValue, pos);
      g_value_unset (slot);
      *slot = *value;
    }
  else
    {
      g_ptr_array_add (props->names, g_strdup (name));
      g_array_append_vals (props->values, value, 1);
    }
  memset (value, 0, sizeof *value);
}

static void
prop_list_set_boolean (PropList   *props,
                       const char *name,
                       gboolean    v_boolean)
{
  GValue value = G_VALUE_INIT;

  g_value_init (&value, G_TYPE_BOOLEAN);
  g_value_set_boolean (&value, v_boolean);
  prop_list_take (props, name, &value);
}

/* Checks that every property of @props exists on @klass, is settable at
 * construction and holds a valid value.  @what names the object kind for
 * the message ("pool type “thread”"). */
static gboolean
prop_list_validate (PropList      *props,
                    GObjectClass  *klass,
                    const char    *what,
                    GError       **error)
{
  for (guint i = 0; i < props->names->len; i++)
    {
      const char *name = g_ptr_array_index (props->names, i);
      const GValue *value = &g_array_index (props->values, GValue, i);
      GParamSpec *pspec = g_object_class_find_property (klass, name);
      g_auto(GValue) copy = G_VALUE_INIT;

      if (pspec == NULL || !(pspec->flags & G_PARAM_WRITABLE))
        {
          g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                       "%s has no property “%s”", what, name);
          return FALSE;
        }
      if (!g_value_type_compatible (G_VALUE_TYPE (value), pspec->value_type))
        {
          g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                       "property “%s” of %s holds %s values, not %s",
                       name, what, g_type_name (pspec->value_type),
                       g_type_name (G_VALUE_TYPE (value)));
          return FALSE;
        }
      g_value_init (&copy, pspec->value_type);
      g_value_copy (value, &copy);
      if (g_param_value_validate (pspec, &copy))
        {
          g_autofree char *contents = g_strdup_value_contents (value);
          g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                       "value %s is out of range for property “%s” of %s",
                       contents, name, what);
          return FALSE;
        }
    }
  return TRUE;
}

static GObject *
prop_list_new_object (PropList      *props,
                      GType          type,
                      GError       **error)
{
  g_autoptr(GObject) object = NULL;

  object = g_object_new_with_properties (type, props->names->len,
                                         (const char **) props->names->pdata,
                                         (const GValue *) props->values->data);
  if (G_IS_INITABLE (object) &&
      !g_initable_init (G_INITABLE (object), NULL, error))
    return NULL;
  return g_steal_pointer (&object);
}

/* ---- settings ---- */

GSettings *
_fiber_settings_new (void)
{
  GSettingsSchemaSource *source = g_settings_schema_source_get_default ();
  g_autoptr(GSettingsSchema) schema = NULL;

  if (source == NULL)
    return NULL;
  schema = g_settings_schema_source_lookup (source, FIBER_SETTINGS_SCHEMA_ID, TRUE);
  if (schema == NULL)
    return NULL;
  return g_settings_new_full (schema, NULL, NULL);
}

/* The value of @key, or NULL when the schema (or an older installed
 * version of it) lacks the key. */
static GVariant *
settings_get (GSettings  *settings,
              const char *key)
{
  g_autoptr(GSettingsSchema) schema = NULL;

  if (settings == NULL)
    return NULL;
  g_object_get (settings, "settings-schema", &schema, NULL);
  if (!g_settings_schema_has_key (schema, key))
    return NULL;
  return g_settings_get_value (settings, key);
}

/* Whether @variant is the "not set" value of its settings key. */
static gboolean
settings_value_is_unset (GVariant *variant)
{
  if (g_variant_is_of_type (variant, G_VARIANT_TYPE_STRING))
    return *g_variant_get_string (variant, NULL) == '\0';
  if (g_variant_is_of_type (variant, G_VARIANT_TYPE_UINT32))
    return g_variant_get_uint32 (variant) == 0;
  if (g_variant_is_container (variant))
    return g_variant_n_children (variant) == 0;
  return FALSE;
}

/* Converts a settings value to the type of @pspec; FALSE if it cannot be
 * converted or is out of the property's range. */
static gboolean
settings_value_to_property (GVariant   *variant,
                            GParamSpec *pspec,
                            GValue     *out)
{
  g_auto(GValue) raw = G_VALUE_INIT;

  g_dbus_gvariant_to_gvalue (variant, &raw);
  if (!g_value_type_transformable (G_VALUE_TYPE (&raw), pspec->value_type))
    return FALSE;
  g_value_init (out, pspec->value_type);
  if (!g_value_transform (&raw, out) || g_param_value_validate (pspec, out))
    {
      g_value_unset (out);
      return FALSE;
    }
  return TRUE;
}

/* Settings that are defaults of pool properties.  With @zero_is_default,
 * the value 0 means "the pool type's own default" and is not applied. */
static const struct
{
  const char *key;
  const char *property;
  gboolean    zero_is_default;
} pool_settings[] = {
  { "default-processes",  "processes",          TRUE },
  { "max-retries",        "max-retries",        FALSE },
  { "heartbeat-interval", "heartbeat-interval", TRUE },
  { "stack-size",         "stack-size",         TRUE },
};

static void
apply_settings_defaults (PropList     *props,
                         GObjectClass *klass)
{
  g_autoptr(GSettings) settings = _fiber_settings_new ();
  int pos;

  if (settings == NULL)
    return;

  /* processes = 0 asks for the default, which the settings may give. */
  pos = prop_list_find (props, "processes");
  if (pos >= 0)
    {
      GValue *value = &g_array_index (props->values, GValue, pos);
      if (G_VALUE_HOLDS_UINT (value) && g_value_get_uint (value) == 0)
        {
          g_ptr_array_remove_index (props->names, pos);
          g_array_remove_index (props->values, pos);
        }
    }

  for (gsize i = 0; i < G_N_ELEMENTS (pool_settings); i++)
    {
      GParamSpec *pspec = g_object_class_find_property (klass, pool_settings[i].property);
      g_autoptr(GVariant) variant = NULL;
      GValue value = G_VALUE_INIT;

      if (pspec == NULL || !(pspec->flags & G_PARAM_WRITABLE) ||
          prop_list_find (props, pool_settings[i].property) >= 0)
        continue;
      variant = settings_get (settings, pool_settings[i].key);
      if (variant == NULL ||
          (pool_settings[i].zero_is_default && settings_value_is_unset (variant)))
        continue;
      if (!settings_value_to_property (variant, pspec, &value))
        {
          g_autofree char *text = g_variant_print (variant, FALSE);
          g_warning ("Ignoring setting %s = %s: not a valid value of the "
                     "pool property “%s”", pool_settings[i].key, text,
                     pool_settings[i].property);
          continue;
        }
      prop_list_take (props, pool_settings[i].property, &value);
    }
}

/* ---- backends ---- */

static void
ensure_backend_types (void)
{
  /* Backends are found by type name, so their types must exist. */
  g_type_ensure (FIBER_TYPE_LOCAL_BACKEND);
  g_type_ensure (FIBER_TYPE_SLURM_BACKEND);
  g_type_ensure (FIBER_TYPE_KUBERNETES_BACKEND);
}

/* "slurm" → "FiberSlurmBackend", "my-batch" → "FiberMyBatchBackend". */
static char *
backend_type_name (const char *name)
{
  GString *type_name = g_string_new ("Fiber");
  gboolean upper = TRUE;

  for (const char *p = name; *p != '\0'; p++)
    {
      if (*p == '-' || *p == '_')
        {
          upper = TRUE;
          continue;
        }
      g_string_append_c (type_name, upper ? g_ascii_toupper (*p) : *p);
      upper = FALSE;
    }
  g_string_append (type_name, "Backend");
  return g_string_free (type_name, FALSE);
}

static gboolean
is_backend_class (GType type)
{
  return type != 0 &&
         g_type_is_a (type, FIBER_TYPE_BACKEND) &&
         G_TYPE_IS_INSTANTIATABLE (type) &&
         !G_TYPE_IS_ABSTRACT (type);
}

static void
collect_backend_names (GType      parent,
                       GPtrArray *names)
{
  g_autofree GType *children = NULL;
  guint n_children = 0;

  children = g_type_children (parent, &n_children);
  for (guint i = 0; i < n_children; i++)
    {
      const char *type_name = g_type_name (children[i]);
      gsize len = strlen (type_name);

      if (is_backend_class (children[i]) &&
          g_str_has_prefix (type_name, "Fiber") &&
          g_str_has_suffix (type_name, "Backend") &&
          len > strlen ("Fiber") + strlen ("Backend"))
        {
          g_autofree char *middle = g_strndup (type_name + strlen ("Fiber"),
                                               len - strlen ("Fiber") - strlen ("Backend"));
          g_ptr_array_add (names, g_ascii_strdown (middle, -1));
        }
      collect_backend_names (children[i], names);
    }
}

GType
_fiber_pool_registry_lookup_backend (const char  *name,
                                     GError     **error)
{
  g_autofree char *type_name = NULL;
  GType type;

  ensure_backend_types ();

  if (name != NULL && *name != '\0' && g_utf8_validate (name, -1, NULL))
    {
      type_name = backend_type_name (name);
      type = g_type_from_name (type_name);
      if (is_backend_class (type))
        return type;
    }

  {
    g_autoptr(GPtrArray) known = g_ptr_array_new_with_free_func (g_free);
    g_autofree char *list = NULL;

    collect_backend_names (G_TYPE_OBJECT, known);
    g_ptr_array_add (known, NULL);
    list = g_strjoinv (", ", (char **) known->pdata);
    g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                 "unknown backend “%s” (known: %s)",
                 name != NULL ? name : "(null)", list);
  }
  return 0;
}

static gboolean add_backend_settings (PropList      *props,
                                      const char    *name,
                                      GObjectClass  *klass,
                                      GError       **error);

GObject *
_fiber_pool_registry_create_backend (const char    *name,
                                     guint          n_properties,
                                     const char    *names[],
                                     const GValue   values[],
                                     GError       **error)
{
  g_auto(PropList) props = { 0 };
  g_autoptr(GTypeClass) klass = NULL;
  g_autofree char *what = NULL;
  GType type;

  type = _fiber_pool_registry_lookup_backend (name, error);
  if (type == 0)
    return NULL;

  prop_list_init (&props);
  for (guint i = 0; i < n_properties; i++)
    {
      GValue copy = G_VALUE_INIT;
      g_value_init (&copy, G_VALUE_TYPE (&values[i]));
      g_value_copy (&values[i], &copy);
      prop_list_take (&props, names[i], &copy);
    }

  klass = g_type_class_ref (type);
  what = g_strdup_printf ("backend “%s”", name);
  if (!prop_list_validate (&props, G_OBJECT_CLASS (klass), what, error))
    return NULL;
  /* What the caller leaves out comes from the settings. */
  if (!add_backend_settings (&props, name, G_OBJECT_CLASS (klass), error))
    return NULL;
  return prop_list_new_object (&props, type, error);
}

/* Backend properties that are alternatives: when the caller sets one, the
 * settings give neither (a config's url must not meet the settings'
 * socket). */
static const char * const backend_alternatives[][2] = {
  { "url", "socket" },
  { "token", "token-file" },
};

static gboolean
backend_property_is_set (PropList   *props,
                         const char *property)
{
  if (prop_list_find (props, property) >= 0)
    return TRUE;
  for (gsize i = 0; i < G_N_ELEMENTS (backend_alternatives); i++)
    for (guint k = 0; k < 2; k++)
      if (g_str_equal (backend_alternatives[i][k], property) &&
          prop_list_find (props, backend_alternatives[i][1 - k]) >= 0)
        return TRUE;
  return FALSE;
}

/* Adds to @props the settings "<name>-<property>" of the backend called
 * @name (and worker-command), for the properties @props does not set. */
static gboolean
add_backend_settings (PropList      *props,
                      const char    *name,
                      GObjectClass  *klass,
                      GError       **error)
{
  g_autoptr(GSettings) settings = _fiber_settings_new ();
  g_autoptr(GSettingsSchema) schema = NULL;
  g_auto(GStrv) keys = NULL;
  g_autofree char *prefix = NULL;

  if (settings == NULL)
    return TRUE;
  g_object_get (settings, "settings-schema", &schema, NULL);
  keys = g_settings_schema_list_keys (schema);
  prefix = g_strconcat (name, "-", NULL);

  for (guint i = 0; keys[i] != NULL; i++)
    {
      const char *property;
      g_autoptr(GVariant) variant = NULL;
      GParamSpec *pspec;
      GValue value = G_VALUE_INIT;

      if (g_str_has_prefix (keys[i], prefix))
        property = keys[i] + strlen (prefix);
      else if (g_str_equal (keys[i], "worker-command"))
        property = keys[i];
      else
        continue;
      if (backend_property_is_set (props, property))
        continue;

      variant = g_settings_get_value (settings, keys[i]);
      if (settings_value_is_unset (variant))
        continue;
      pspec = g_object_class_find_property (klass, property);
      /* worker-command is a list of words in the settings; backends take
       * it as one shell command line. */
      if (pspec != NULL && pspec->value_type == G_TYPE_STRING &&
          g_variant_is_of_type (variant, G_VARIANT_TYPE_STRING_ARRAY))
        {
          g_autofree const char **words = g_variant_get_strv (variant, NULL);
          GString *line = g_string_new (NULL);

          for (guint j = 0; words[j] != NULL; j++)
            {
              g_autofree char *quoted = g_shell_quote (words[j]);
              if (j > 0)
                g_string_append_c (line, ' ');
              g_string_append (line, quoted);
            }
          g_clear_pointer (&variant, g_variant_unref);
          variant = g_variant_ref_sink (g_variant_new_take_string (g_string_free (line, FALSE)));
        }
      if (pspec == NULL || !(pspec->flags & G_PARAM_WRITABLE))
        {
          g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                       "setting %s: backend “%s” has no property “%s”",
                       keys[i], name, property);
          return FALSE;
        }
      if (!settings_value_to_property (variant, pspec, &value))
        {
          g_autofree char *text = g_variant_print (variant, FALSE);
          g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                       "setting %s: %s is not a valid value of the property "
                       "“%s” of backend “%s”", keys[i], text, property, name);
          return FALSE;
        }
      prop_list_take (props, property, &value);
    }
  return TRUE;
}

/* Builds the backend of a remote pool from the settings: the backend named
 * by remote-backend, with the keys "<backend>-<property>" and
 * worker-command as its properties. */
static GObject *
backend_from_settings (GError **error)
{
  g_autoptr(GSettings) settings = _fiber_settings_new ();
  g_autoptr(GVariant) backend_name = NULL;
  const char *name = "slurm";

  backend_name = settings_get (settings, "remote-backend");
  if (backend_name != NULL && !settings_value_is_unset (backend_name))
    name = g_variant_get_string (backend_name, NULL);

  return _fiber_pool_registry_create_backend (name, 0, NULL, NULL, error);
}

/* ---- the table of built-in types ---- */

/* Adds the construct properties that make a pool of @type the variant
 * called by its name; never overrides a property the caller set. */
typedef gboolean (*PresetFunc) (PropList  *props,
                                GError   **error);

static gboolean
preset_daemonic (PropList  *props,
                 GError   **error)
{
  if (prop_list_find (props, "daemon") < 0)
    prop_list_set_boolean (props, "daemon", TRUE);
  return TRUE;
}

static gboolean
preset_non_daemonic (PropList  *props,
                     GError   **error)
{
  if (prop_list_find (props, "daemon") < 0)
    prop_list_set_boolean (props, "daemon", FALSE);
  return TRUE;
}

static gboolean
preset_remote (PropList  *props,
               GError   **error)
{
  int pos = prop_list_find (props, "backend");

  if (pos < 0)
    {
      GValue value = G_VALUE_INIT;
      g_autoptr(GObject) backend = backend_from_settings (error);

      if (backend == NULL)
        return FALSE;
      g_value_init (&value, FIBER_TYPE_BACKEND);
      g_value_set_object (&value, backend);
      prop_list_take (props, "backend", &value);
    }
  else
    {
      GValue *value = &g_array_index (props->values, GValue, pos);
      FiberBackend *backend = g_value_get_object (value);

      if (backend != NULL && !fiber_backend_is_remote (backend))
        {
          g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                       "the remote pool type needs a remote backend, "
                       "not “%s”", fiber_backend_get_name (backend));
          return FALSE;
        }
    }
  return preset_daemonic (props, error);
}

typedef struct
{
  const char   *name;
  int           priority;
  GType       (*get_type) (void);
  gboolean      is_extension;  /* FALSE: a variant (see the top of this file) */
  PresetFunc    preset;
} BuiltinType;

static const BuiltinType builtin_types[] = {
  { "process",   100, fiber_process_pool_get_type, TRUE,  preset_daemonic },
  { "ndprocess",  90, fiber_process_pool_get_type, FALSE, preset_non_daemonic },
  { "thread",     80, fiber_thread_pool_get_type,  TRUE,  NULL },
  { "coroutine",  70, fiber_coroutine_pool_get_type, TRUE, NULL },
  { "remote",     50, fiber_process_pool_get_type, FALSE, preset_remote },
};

static const BuiltinType *
find_builtin (const char *name)
{
  for (gsize i = 0; i < G_N_ELEMENTS (builtin_types); i++)
    if (g_str_equal (builtin_types[i].name, name))
      return &builtin_types[i];
  return NULL;
}

static void
load_modules (GIOModuleScope *scope,
              const char     *directory)
{
  GList *modules;

  if (!g_file_test (directory, G_FILE_TEST_IS_DIR))
    return;
  /* The modules stay loaded: their types are in use for the rest of the
   * process' life (as GIO does with its own modules). */
  modules = g_io_modules_load_all_in_directory_with_scope (directory, scope);
  g_list_free (modules);
}

void
_fiber_pool_registry_ensure (void)
{
  static gsize initialized;

  if (g_once_init_enter (&initialized))
    {
      GIOExtensionPoint *point;
      GIOModuleScope *scope;
      const char *env_dirs;

      point = g_io_extension_point_register (FIBER_POOL_EXTENSION_POINT_NAME);
      g_io_extension_point_set_required_type (point, FIBER_TYPE_POOL);

      for (gsize i = 0; i < G_N_ELEMENTS (builtin_types); i++)
        if (builtin_types[i].is_extension)
          g_io_extension_point_implement (FIBER_POOL_EXTENSION_POINT_NAME,
                                          builtin_types[i].get_type (),
                                          builtin_types[i].name,
                                          builtin_types[i].priority);

      scope = g_io_module_scope_new (G_IO_MODULE_SCOPE_BLOCK_DUPLICATES);
      env_dirs = g_getenv ("FIBER_MODULE_DIR");
      if (env_dirs != NULL && *env_dirs != '\0')
        {
          g_auto(GStrv) dirs = g_strsplit (env_dirs, G_SEARCHPATH_SEPARATOR_S, -1);
          for (guint i = 0; dirs[i] != NULL; i++)
            if (*dirs[i] != '\0')
              load_modules (scope, dirs[i]);
        }
      load_modules (scope, FIBER_MODULE_DIR);
      g_io_module_scope_free (scope);

      g_once_init_leave (&initialized, 1);
    }
}

/* ---- lookup ---- */

typedef struct
{
  const char *name;
  int         priority;
} ListedType;

static int
compare_listed (gconstpointer a,
                gconstpointer b)
{
  const ListedType *la = a, *lb = b;

  if (la->priority != lb->priority)
    return la->priority > lb->priority ? -1 : 1;
  return strcmp (la->name, lb->name);
}

static GArray *
list_types (void)
{
  GIOExtensionPoint *point;
  GArray *listed = g_array_new (FALSE, FALSE, sizeof (ListedType));

  _fiber_pool_registry_ensure ();
  point = g_io_extension_point_lookup (FIBER_POOL_EXTENSION_POINT_NAME);

  for (gsize i = 0; i < G_N_ELEMENTS (builtin_types); i++)
    {
      ListedType item = { builtin_types[i].name, builtin_types[i].priority };
      g_array_append_val (listed, item);
    }
  for (GList *l = g_io_extension_point_get_extensions (point); l != NULL; l = l->next)
    {
      GIOExtension *extension = l->data;
      ListedType item = { g_io_extension_get_name (extension),
                          g_io_extension_get_priority (extension) };

      if (find_builtin (item.name) == NULL)
        g_array_append_val (listed, item);
    }
  g_array_sort (listed, compare_listed);

  /* Two modules may use one name: the first (highest priority) wins. */
  for (guint i = 1; i < listed->len;)
    {
      gboolean duplicate = FALSE;
      for (guint j = 0; j < i && !duplicate; j++)
        duplicate = g_str_equal (g_array_index (listed, ListedType, i).name,
                                 g_array_index (listed, ListedType, j).name);
      if (duplicate)
        g_array_remove_index (listed, i);
      else
        i++;
    }
  return listed;
}

static char *
known_types_text (void)
{
  g_autoptr(GArray) listed = list_types ();
  GString *text = g_string_new (NULL);

  for (guint i = 0; i < listed->len; i++)
    {
      if (i > 0)
        g_string_append (text, ", ");
      g_string_append (text, g_array_index (listed, ListedType, i).name);
    }
  return g_string_free (text, FALSE);
}

/* Resolves NULL to the default type name; *source says where it came from. */
static char *
default_type_name (const char **source)
{
  const char *env = g_getenv ("FIBER_POOL_TYPE");
  g_autoptr(GSettings) settings = NULL;
  g_autoptr(GVariant) value = NULL;

  if (env != NULL && *env != '\0')
    {
      *source = "the FIBER_POOL_TYPE environment variable";
      return g_strdup (env);
    }

  settings = _fiber_settings_new ();
  value = settings_get (settings, "default-pool-type");
  if (value != NULL && !settings_value_is_unset (value))
    {
      *source = "the setting " FIBER_SETTINGS_SCHEMA_ID " default-pool-type";
      return g_variant_dup_string (value, NULL);
    }

  *source = NULL;
  return g_strdup (DEFAULT_POOL_TYPE);
}

/* The entry called @name: its class and, for built-ins, the preset. */
static gboolean
lookup_entry (const char          *name,
              GType               *out_type,
              const BuiltinType  **out_builtin)
{
  const BuiltinType *builtin = find_builtin (name);
  GIOExtensionPoint *point;
  GIOExtension *extension;

  if (builtin != NULL)
    {
      *out_type = builtin->get_type ();
      *out_builtin = builtin;
      return TRUE;
    }

  point = g_io_extension_point_lookup (FIBER_POOL_EXTENSION_POINT_NAME);
  extension = g_io_extension_point_get_extension_by_name (point, name);
  if (extension == NULL)
    return FALSE;
  *out_type = g_io_extension_get_type (extension);
  *out_builtin = NULL;
  return TRUE;
}

gboolean
_fiber_pool_registry_lookup (const char  *pool_type,
                             char       **out_name,
                             GType       *out_type,
                             GError     **error)
{
  g_autofree char *name = NULL;
  const char *source = NULL;
  const BuiltinType *builtin;
  GType type;

  _fiber_pool_registry_ensure ();

  if (pool_type != NULL)
    name = g_strdup (pool_type);
  else
    name = default_type_name (&source);

  if (!g_utf8_validate (name, -1, NULL) || !lookup_entry (name, &type, &builtin))
    {
      g_autofree char *known = known_types_text ();
      g_autofree char *shown = g_utf8_make_valid (name, -1);

      if (source != NULL)
        g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                     "unknown pool type “%s” (from %s; known: %s)",
                     shown, source, known);
      else
        g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                     "unknown pool type “%s” (known: %s)", shown, known);
      return FALSE;
    }

  if (!G_TYPE_IS_INSTANTIATABLE (type) || G_TYPE_IS_ABSTRACT (type))
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                   "pool type “%s” is registered with the abstract class %s",
                   name, g_type_name (type));
      return FALSE;
    }

  if (out_name != NULL)
    *out_name = g_steal_pointer (&name);
  if (out_type != NULL)
    *out_type = type;
  return TRUE;
}

/* ---- creation ---- */

static FiberPool *
create_pool (const char  *pool_type,
             PropList    *props,
             GError     **error)
{
  g_autofree char *name = NULL;
  g_autofree char *what = NULL;
  g_autoptr(GTypeClass) klass = NULL;
  g_autoptr(GObject) object = NULL;
  const BuiltinType *builtin;
  GType type;

  if (!_fiber_pool_registry_lookup (pool_type, &name, &type, error))
    return NULL;
  lookup_entry (name, &type, &builtin);

  klass = g_type_class_ref (type);
  what = g_strdup_printf ("pool type “%s”", name);

  if (builtin != NULL && builtin->preset != NULL && !builtin->preset (props, error))
    return NULL;
  apply_settings_defaults (props, G_OBJECT_CLASS (klass));
  if (!prop_list_validate (props, G_OBJECT_CLASS (klass), what, error))
    return NULL;

  /* The name the pool was created under (FiberPool:pool-type). */
  {
    GValue value = G_VALUE_INIT;

    g_value_init (&value, G_TYPE_STRING);
    g_value_set_string (&value, name);
    prop_list_take (props, "pool-type", &value);
  }

  object = prop_list_new_object (props, type, error);
  if (object == NULL)
    return NULL;
  return FIBER_POOL (g_steal_pointer (&object));
}

FiberPool *
_fiber_pool_registry_create_with_properties (const char    *pool_type,
                                             guint          n_properties,
                                             const char    *names[],
                                             const GValue   values[],
                                             GError       **error)
{
  g_auto(PropList) props = { 0 };

  prop_list_init (&props);
  for (guint i = 0; i < n_properties; i++)
    {
      GValue copy = G_VALUE_INIT;
      g_value_init (&copy, G_VALUE_TYPE (&values[i]));
      g_value_copy (&values[i], &copy);
      prop_list_take (&props, names[i], &copy);
    }
  return create_pool (pool_type, &props, error);
}

FiberPool *
_fiber_pool_registry_create (const char  *pool_type,
                             guint        processes,
                             GError     **error)
{
  g_auto(PropList) props = { 0 };
  GValue value = G_VALUE_INIT;

  prop_list_init (&props);
  g_value_init (&value, G_TYPE_UINT);
  g_value_set_uint (&value, processes);
  prop_list_take (&props, "processes", &value);
  return create_pool (pool_type, &props, error);
}

/**
 * fiber_pool_list_types:
 *
 * Lists the names of the pool types that fiber_pool_new() accepts: the
 * built-in ones (`process`, `ndprocess`, `thread`, `coroutine`, and
 * `remote` when a remote backend is built in) and those registered on the
 * `fiber-pool-type` GIO extension point, by modules in `FIBER_MODULE_DIR`
 * or by the host program, highest priority first.
 *
 * Returns: (transfer full) (array zero-terminated=1): the type names
 */
char **
fiber_pool_list_types (void)
{
  g_autoptr(GArray) listed = list_types ();
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();

  for (guint i = 0; i < listed->len; i++)
    g_strv_builder_add (builder, g_array_index (listed, ListedType, i).name);
  return g_strv_builder_end (builder);
}

/**
 * fiber_pool_register_pool_type:
 * @name: the pool type name, as given to [ctor@Fiber.Pool.new]
 * @type: a non-abstract subclass of [class@Fiber.Pool]
 * @priority: where the type goes in [func@Fiber.Pool.list_types]
 *   (higher first; the built-in types use 50 to 100)
 * @error: return location for an error
 *
 * Makes pools of @type available under @name, by implementing the
 * [const@Fiber.POOL_EXTENSION_POINT_NAME] extension point.  Pools are
 * created with g_object_new() and the construct properties the caller
 * gives (`processes`, and those of a workflow config), then initialized
 * with g_initable_init() when @type implements #GInitable.
 *
 * Registering the same name with the same type again does nothing.  A
 * GIO extension point holds one name per type, so a class already
 * registered under another name cannot be added again.
 *
 * Returns: %TRUE on success; %FALSE with @error set
 *   (%FIBER_ERROR_INVALID_ARGUMENT) when @name is taken, @type is already
 *   registered under another name, or @type is not a pool class
 */
gboolean
fiber_pool_register_pool_type (const char  *name,
                               GType        type,
                               int          priority,
                               GError     **error)
{
  GIOExtensionPoint *point;
  GIOExtension *extension;

  g_return_val_if_fail (name != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  _fiber_pool_registry_ensure ();

  if (*name == '\0' || !g_utf8_validate (name, -1, NULL))
    {
      g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                           "a pool type name must be a non-empty UTF-8 string");
      return FALSE;
    }
  if (!g_type_is_a (type, FIBER_TYPE_POOL) || G_TYPE_IS_ABSTRACT (type))
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                   "cannot register pool type “%s”: %s is not a "
                   "non-abstract subclass of FiberPool", name,
                   type != 0 ? g_type_name (type) : "(invalid type)");
      return FALSE;
    }

  point = g_io_extension_point_lookup (FIBER_POOL_EXTENSION_POINT_NAME);
  if (find_builtin (name) != NULL)
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                   "pool type “%s” is built in", name);
      return FALSE;
    }
  extension = g_io_extension_point_get_extension_by_name (point, name);
  if (extension != NULL)
    {
      if (g_io_extension_get_type (extension) == type)
        return TRUE;
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                   "pool type “%s” is already registered for %s", name,
                   g_type_name (g_io_extension_get_type (extension)));
      return FALSE;
    }
  for (GList *l = g_io_extension_point_get_extensions (point); l != NULL; l = l->next)
    if (g_io_extension_get_type (l->data) == type)
      {
        g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                     "%s is already registered as pool type “%s”",
                     g_type_name (type), g_io_extension_get_name (l->data));
        return FALSE;
      }

  g_io_extension_point_implement (FIBER_POOL_EXTENSION_POINT_NAME, type,
                                  name, priority);
  return TRUE;
}

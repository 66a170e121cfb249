/* fiber-config.c — pools from workflow configs (JSON)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A config key is a construct property of the pool (its name with '_'
 * for '-'); the value is converted by the type of that property, so the
 * same code checks every key of every pool type, and the backend object
 * is handled the same way against the properties of the backend class.
 */

#include <string.h>

#include "fiber-backend.h"
#include "fiber-config.h"
#include "fiber-error.h"
#include "fiber-pool-registry-private.h"

/* The keys a workflow config may have, and the pool property each sets
 * (NULL: handled here). */
static const struct
{
  const char *key;
  const char *property;
} config_keys[] = {
  { "pool_type",        NULL },
  { "processes",        "processes" },
  { "max_retries",      "max-retries" },
  { "maxtasksperchild", "maxtasksperchild" },
  { "initializer",      "initializer" },
  { "initargs",         "initargs" },
  { "resilient",        "resilient" },
  { "stack_size",       "stack-size" },
  { "backend",          "backend" },
  { "worker_command",   "worker-command" },
  { "transport",        "transport" },
};

/* A list of construct properties being collected. */
typedef struct
{
  GPtrArray *names;   /* (element-type utf8) owned */
  GArray    *values;  /* (element-type GValue) */
} Props;

static void
props_init (Props *props)
{
  props->names = g_ptr_array_new_with_free_func (g_free);
  props->values = g_array_new (FALSE, TRUE, sizeof (GValue));
  g_array_set_clear_func (props->values, (GDestroyNotify) g_value_unset);
}

static void
props_clear (Props *props)
{
  g_clear_pointer (&props->names, g_ptr_array_unref);
  g_clear_pointer (&props->values, g_array_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Props, props_clear)

/* Takes over @value. */
static void
props_take (Props      *props,
            const char *name,
            GValue     *value)
{
  g_ptr_array_add (props->names, g_strdup (name));
  g_array_append_vals (props->values, value, 1);
  memset (value, 0, sizeof *value);
}

static gboolean G_GNUC_PRINTF (3, 4)
key_error (GError     **error,
           const char  *key,
           const char  *format,
           ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
               "config key “%s”: %s", key, message);
  return FALSE;
}

static const char *
describe_node (JsonNode *node)
{
  switch (JSON_NODE_TYPE (node))
    {
    case JSON_NODE_OBJECT:
      return "an object";
    case JSON_NODE_ARRAY:
      return "an array";
    case JSON_NODE_NULL:
      return "null";
    case JSON_NODE_VALUE:
    default:
      break;
    }

  switch (json_node_get_value_type (node))
    {
    case G_TYPE_INT64:
      return "an integer";
    case G_TYPE_DOUBLE:
      return "a fractional number";
    case G_TYPE_BOOLEAN:
      return "a boolean";
    case G_TYPE_STRING:
      return "a string";
    default:
      return "a value";
    }
}

static gboolean
node_holds (JsonNode *node,
            GType     value_type)
{
  return JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == value_type;
}

static gboolean
out_of_range (const char  *key,
              gint64       v,
              const char  *range,
              GError     **error)
{
  return key_error (error, key, "%" G_GINT64_FORMAT " is out of range (%s)", v, range);
}

static gboolean
check_signed (const char  *key,
              gint64       v,
              gint64       minimum,
              gint64       maximum,
              GError     **error)
{
  g_autofree char *range = NULL;

  if (v >= minimum && v <= maximum)
    return TRUE;
  range = g_strdup_printf ("%" G_GINT64_FORMAT " to %" G_GINT64_FORMAT, minimum, maximum);
  return out_of_range (key, v, range, error);
}

static gboolean
check_unsigned (const char  *key,
                gint64       v,
                guint64      minimum,
                guint64      maximum,
                GError     **error)
{
  g_autofree char *range = NULL;

  if (v >= 0 && (guint64) v >= minimum && (guint64) v <= maximum)
    return TRUE;
  range = g_strdup_printf ("%" G_GUINT64_FORMAT " to %" G_GUINT64_FORMAT, minimum, maximum);
  return out_of_range (key, v, range, error);
}

static gboolean
integer_to_value (const char  *key,
                  JsonNode    *node,
                  GParamSpec  *pspec,
                  GValue      *out,
                  GError     **error)
{
  gint64 v;

  if (!node_holds (node, G_TYPE_INT64))
    return key_error (error, key, "expected an integer, got %s", describe_node (node));
  v = json_node_get_int (node);

  switch (G_TYPE_FUNDAMENTAL (pspec->value_type))
    {
    case G_TYPE_INT:
      if (!check_signed (key, v, G_PARAM_SPEC_INT (pspec)->minimum,
                         G_PARAM_SPEC_INT (pspec)->maximum, error))
        return FALSE;
      g_value_init (out, pspec->value_type);
      g_value_set_int (out, (int) v);
      return TRUE;
    case G_TYPE_UINT:
      if (!check_unsigned (key, v, G_PARAM_SPEC_UINT (pspec)->minimum,
                           G_PARAM_SPEC_UINT (pspec)->maximum, error))
        return FALSE;
      g_value_init (out, pspec->value_type);
      g_value_set_uint (out, (guint) v);
      return TRUE;
    case G_TYPE_LONG:
      if (!check_signed (key, v, G_PARAM_SPEC_LONG (pspec)->minimum,
                         G_PARAM_SPEC_LONG (pspec)->maximum, error))
        return FALSE;
      g_value_init (out, pspec->value_type);
      g_value_set_long (out, (long) v);
      return TRUE;
    case G_TYPE_ULONG:
      if (!check_unsigned (key, v, G_PARAM_SPEC_ULONG (pspec)->minimum,
                           G_PARAM_SPEC_ULONG (pspec)->maximum, error))
        return FALSE;
      g_value_init (out, pspec->value_type);
      g_value_set_ulong (out, (gulong) v);
      return TRUE;
    case G_TYPE_INT64:
      if (!check_signed (key, v, G_PARAM_SPEC_INT64 (pspec)->minimum,
                         G_PARAM_SPEC_INT64 (pspec)->maximum, error))
        return FALSE;
      g_value_init (out, pspec->value_type);
      g_value_set_int64 (out, v);
      return TRUE;
    case G_TYPE_UINT64:
      if (!check_unsigned (key, v, G_PARAM_SPEC_UINT64 (pspec)->minimum,
                           G_PARAM_SPEC_UINT64 (pspec)->maximum, error))
        return FALSE;
      g_value_init (out, pspec->value_type);
      g_value_set_uint64 (out, (guint64) v);
      return TRUE;
    default:
      return key_error (error, key, "cannot set a property of type %s",
                        g_type_name (pspec->value_type));
    }
}

/* Converts @node to the type of @pspec.  @key names the value in errors. */
static gboolean
node_to_value (const char  *key,
               JsonNode    *node,
               GParamSpec  *pspec,
               GValue      *out,
               GError     **error)
{
  GType type = pspec->value_type;

  switch (G_TYPE_FUNDAMENTAL (type))
    {
    case G_TYPE_BOOLEAN:
      if (!node_holds (node, G_TYPE_BOOLEAN))
        return key_error (error, key, "expected true or false, got %s", describe_node (node));
      g_value_init (out, type);
      g_value_set_boolean (out, json_node_get_boolean (node));
      return TRUE;

    case G_TYPE_INT:
    case G_TYPE_UINT:
    case G_TYPE_LONG:
    case G_TYPE_ULONG:
    case G_TYPE_INT64:
    case G_TYPE_UINT64:
      return integer_to_value (key, node, pspec, out, error);

    case G_TYPE_DOUBLE:
    case G_TYPE_FLOAT:
      if (!node_holds (node, G_TYPE_INT64) && !node_holds (node, G_TYPE_DOUBLE))
        return key_error (error, key, "expected a number, got %s", describe_node (node));
      g_value_init (out, G_TYPE_DOUBLE);
      g_value_set_double (out, json_node_get_double (node));
      if (type == G_TYPE_FLOAT)
        {
          double d = g_value_get_double (out);
          g_value_unset (out);
          g_value_init (out, G_TYPE_FLOAT);
          g_value_set_float (out, (float) d);
        }
      if (g_param_value_validate (pspec, out))
        {
          g_value_unset (out);
          return key_error (error, key, "%g is out of range", json_node_get_double (node));
        }
      return TRUE;

    case G_TYPE_STRING:
      if (!node_holds (node, G_TYPE_STRING))
        return key_error (error, key, "expected a string, got %s", describe_node (node));
      g_value_init (out, type);
      g_value_set_string (out, json_node_get_string (node));
      return TRUE;

    case G_TYPE_ENUM:
      {
        g_autoptr(GEnumClass) enum_class = g_type_class_ref (type);
        GEnumValue *enum_value = NULL;

        if (node_holds (node, G_TYPE_STRING))
          {
            const char *nick = json_node_get_string (node);
            enum_value = g_enum_get_value_by_nick (enum_class, nick);
            if (enum_value == NULL)
              enum_value = g_enum_get_value_by_name (enum_class, nick);
          }
        if (enum_value == NULL)
          {
            g_autoptr(GString) nicks = g_string_new (NULL);
            for (guint i = 0; i < enum_class->n_values; i++)
              g_string_append_printf (nicks, "%s%s", i > 0 ? ", " : "",
                                      enum_class->values[i].value_nick);
            return key_error (error, key, "expected one of %s", nicks->str);
          }
        g_value_init (out, type);
        g_value_set_enum (out, enum_value->value);
        return TRUE;
      }

    case G_TYPE_VARIANT:
      {
        const GVariantType *variant_type = G_PARAM_SPEC_VARIANT (pspec)->type;
        g_autoptr(GError) parse_error = NULL;
        const char *text;
        GVariant *variant;

        if (!node_holds (node, G_TYPE_STRING))
          return key_error (error, key, "expected a GVariant in text form "
                            "(a string such as \"(1, 'a')\"), got %s",
                            describe_node (node));
        text = json_node_get_string (node);
        /* g_variant_parse() only takes definite types as a hint. */
        variant = g_variant_parse (g_variant_type_is_definite (variant_type) ? variant_type : NULL,
                                   text, NULL, NULL, &parse_error);
        if (variant == NULL)
          {
            g_autofree char *context = g_variant_parse_error_print_context (parse_error, text);
            return key_error (error, key, "not a GVariant in text form: %s", context);
          }
        if (!g_variant_is_of_type (variant, variant_type))
          {
            g_variant_unref (g_variant_ref_sink (variant));
            return key_error (error, key, "expected a GVariant of type %.*s",
                              (int) g_variant_type_get_string_length (variant_type),
                              g_variant_type_peek_string (variant_type));
          }
        g_value_init (out, type);
        g_value_take_variant (out, variant);
        return TRUE;
      }

    default:
      if (type == G_TYPE_STRV)
        {
          JsonArray *array;
          g_autoptr(GStrvBuilder) builder = NULL;

          if (!JSON_NODE_HOLDS_ARRAY (node))
            return key_error (error, key, "expected an array of strings, got %s",
                              describe_node (node));
          array = json_node_get_array (node);
          builder = g_strv_builder_new ();
          for (guint i = 0; i < json_array_get_length (array); i++)
            {
              JsonNode *element = json_array_get_element (array, i);
              if (!node_holds (element, G_TYPE_STRING))
                return key_error (error, key, "expected an array of strings, "
                                  "element %u is %s", i, describe_node (element));
              g_strv_builder_add (builder, json_node_get_string (element));
            }
          g_value_init (out, type);
          g_value_take_boxed (out, g_strv_builder_end (builder));
          return TRUE;
        }
      return key_error (error, key, "cannot set a property of type %s from a config",
                        g_type_name (type));
    }
}

/* "backend": {"name": "slurm", "partition": "debug", …}: the backend called
 * name, with every other member as the property of the same name. */
static GObject *
backend_from_config (JsonNode  *node,
                     GError   **error)
{
  JsonObject *object;
  JsonNode *name_node;
  const char *name;
  g_autoptr(GTypeClass) klass = NULL;
  g_autoptr(GList) members = NULL;
  g_auto(Props) props = { 0 };
  g_autoptr(GError) local_error = NULL;
  GObject *backend;
  GType type;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      key_error (error, "backend", "expected an object with a “name” member, got %s",
                 describe_node (node));
      return NULL;
    }
  object = json_node_get_object (node);

  name_node = json_object_get_member (object, "name");
  if (name_node == NULL)
    {
      key_error (error, "backend.name", "missing: name the backend, "
                 "for example \"slurm\" or \"kubernetes\"");
      return NULL;
    }
  if (!node_holds (name_node, G_TYPE_STRING))
    {
      key_error (error, "backend.name", "expected a string, got %s",
                 describe_node (name_node));
      return NULL;
    }
  name = json_node_get_string (name_node);

  type = _fiber_pool_registry_lookup_backend (name, &local_error);
  if (type == 0)
    {
      key_error (error, "backend.name", "%s", local_error->message);
      return NULL;
    }
  klass = g_type_class_ref (type);
  props_init (&props);

  members = json_object_get_members (object);
  for (GList *l = members; l != NULL; l = l->next)
    {
      const char *member = l->data;
      JsonNode *value_node = json_object_get_member (object, member);
      g_autofree char *key = g_strconcat ("backend.", member, NULL);
      g_autofree char *property = NULL;
      GParamSpec *pspec;
      GValue value = G_VALUE_INIT;

      if (g_str_equal (member, "name") || JSON_NODE_HOLDS_NULL (value_node))
        continue;
      property = g_strdelimit (g_strdup (member), "_", '-');
      pspec = g_object_class_find_property (G_OBJECT_CLASS (klass), property);
      if (pspec == NULL || !(pspec->flags & G_PARAM_WRITABLE))
        {
          key_error (error, key, "backend “%s” has no setting “%s”", name, member);
          return NULL;
        }
      if (!node_to_value (key, value_node, pspec, &value, error))
        return NULL;
      props_take (&props, property, &value);
    }

  backend = _fiber_pool_registry_create_backend (name, props.names->len,
                                                 (const char **) props.names->pdata,
                                                 (const GValue *) props.values->data,
                                                 &local_error);
  if (backend == NULL)
    {
      key_error (error, "backend", "%s", local_error->message);
      return NULL;
    }
  return backend;
}

static gboolean
is_config_key (const char *member)
{
  for (gsize i = 0; i < G_N_ELEMENTS (config_keys); i++)
    if (g_str_equal (config_keys[i].key, member))
      return TRUE;
  return FALSE;
}

/**
 * fiber_pool_new_from_config:
 * @config: a workflow config object
 * @error: return location for an error
 *
 * Creates a pool as a workflow configuration describes it, for example
 *
 * ```json
 * {
 *   "pool_type": "remote",
 *   "processes": 8,
 *   "max_retries": 2,
 *   "backend": { "name": "slurm", "partition": "debug", "time_limit": 60 }
 * }
 * ```
 *
 * Every member is optional:
 *
 * - `pool_type` (string): a name of [func@Fiber.Pool.list_types]; absent
 *   or null means the default type (see [ctor@Fiber.Pool.new])
 * - `processes` (integer ≥ 0): the number of workers; 0 means the
 *   `default-processes` setting, else one per CPU
 * - `max_retries` (integer ≥ 0): the `max-retries` property
 * - `maxtasksperchild` (integer ≥ 0): the `maxtasksperchild` property
 * - `initializer` (string): a registered task run once in every worker
 * - `initargs` (string): the initializer's arguments as a GVariant in text
 *   form, such as `"(1, 'a')"`
 * - `resilient` (boolean): the `resilient` property
 * - `stack_size` (integer, bytes): the coroutine stack size
 * - `backend` (object): the job backend: `name` (such as `local`, `slurm`,
 *   `kubernetes`) and that backend's settings, each member setting the
 *   backend property of the same name (`_` and `-` are the same)
 * - `worker_command` (array of strings): the command line that starts a
 *   worker of a process or remote pool (language bindings set their own)
 * - `transport` (string): how the workers of a process pool talk to it,
 *   `unix` or `zmq` (see [property@Fiber.ProcessPool:transport])
 *
 * A member whose value is null is ignored.  Values the config leaves out
 * come from the GSettings schema `org.fiberglib.Fiber` when it is
 * installed, else from the pool type's defaults.
 *
 * Returns: (transfer full): the new pool, or %NULL with @error set:
 *   %FIBER_ERROR_INVALID_ARGUMENT, its message naming the offending key,
 *   for an unknown key, a value of the wrong type or out of range, an
 *   unknown pool type or backend, or a key the pool type does not have
 *   (such as `stack_size` for a process pool)
 */
FiberPool *
fiber_pool_new_from_config (JsonObject  *config,
                            GError     **error)
{
  g_autoptr(GList) members = NULL;
  g_autoptr(GTypeClass) klass = NULL;
  g_autofree char *pool_type = NULL;
  g_auto(Props) props = { 0 };
  JsonNode *type_node;
  const char *requested = NULL;
  GType type;

  g_return_val_if_fail (config != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  members = json_object_get_members (config);
  for (GList *l = members; l != NULL; l = l->next)
    if (!is_config_key (l->data))
      {
        g_autoptr(GString) known = g_string_new (NULL);
        for (gsize i = 0; i < G_N_ELEMENTS (config_keys); i++)
          g_string_append_printf (known, "%s%s", i > 0 ? ", " : "", config_keys[i].key);
        g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                     "unknown config key “%s” (known keys: %s)",
                     (const char *) l->data, known->str);
        return NULL;
      }

  type_node = json_object_get_member (config, "pool_type");
  if (type_node != NULL && !JSON_NODE_HOLDS_NULL (type_node))
    {
      if (!node_holds (type_node, G_TYPE_STRING))
        {
          key_error (error, "pool_type", "expected a string, got %s",
                     describe_node (type_node));
          return NULL;
        }
      requested = json_node_get_string (type_node);
    }

  {
    g_autoptr(GError) local_error = NULL;

    if (!_fiber_pool_registry_lookup (requested, &pool_type, &type, &local_error))
      {
        if (requested != NULL)
          g_prefix_error (&local_error, "config key “pool_type”: ");
        g_propagate_error (error, g_steal_pointer (&local_error));
        return NULL;
      }
  }

  klass = g_type_class_ref (type);
  props_init (&props);

  for (gsize i = 0; i < G_N_ELEMENTS (config_keys); i++)
    {
      const char *key = config_keys[i].key;
      JsonNode *node = json_object_get_member (config, key);
      GParamSpec *pspec;
      GValue value = G_VALUE_INIT;

      if (config_keys[i].property == NULL || node == NULL || JSON_NODE_HOLDS_NULL (node))
        continue;

      pspec = g_object_class_find_property (G_OBJECT_CLASS (klass), config_keys[i].property);
      if (pspec == NULL || !(pspec->flags & G_PARAM_WRITABLE))
        {
          key_error (error, key, "pool type “%s” has no such setting", pool_type);
          return NULL;
        }

      if (g_str_equal (key, "backend"))
        {
          g_autoptr(GObject) backend = backend_from_config (node, error);

          if (backend == NULL)
            return NULL;
          if (!g_type_is_a (G_OBJECT_TYPE (backend), pspec->value_type))
            {
              key_error (error, key, "pool type “%s” cannot use a %s",
                         pool_type, G_OBJECT_TYPE_NAME (backend));
              return NULL;
            }
          g_value_init (&value, pspec->value_type);
          g_value_set_object (&value, backend);
        }
      else if (!node_to_value (key, node, pspec, &value, error))
        return NULL;

      props_take (&props, config_keys[i].property, &value);
    }

  return _fiber_pool_registry_create_with_properties (pool_type, props.names->len,
                                                      (const char **) props.names->pdata,
                                                      (const GValue *) props.values->data,
                                                      error);
}

static FiberPool *
pool_new_from_parser (JsonParser  *parser,
                      GError     **error)
{
  JsonNode *root = json_parser_get_root (parser);

  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                   "a workflow config must be a JSON object, not %s",
                   root != NULL ? describe_node (root) : "empty");
      return NULL;
    }
  return fiber_pool_new_from_config (json_node_get_object (root), error);
}

/**
 * fiber_pool_new_from_config_string:
 * @text: a workflow config in JSON
 * @length: the length of @text in bytes, or -1 when it is nul-terminated
 * @error: return location for an error
 *
 * Parses @text and creates the pool it describes, see
 * [ctor@Fiber.Pool.new_from_config].
 *
 * Returns: (transfer full): the new pool, or %NULL with @error set
 *   (%FIBER_ERROR_INVALID_ARGUMENT for text that is not a JSON object and
 *   for every error of [ctor@Fiber.Pool.new_from_config])
 */
FiberPool *
fiber_pool_new_from_config_string (const char  *text,
                                   gssize       length,
                                   GError     **error)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  g_autoptr(GError) local_error = NULL;

  g_return_val_if_fail (text != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!json_parser_load_from_data (parser, text, length, &local_error))
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                   "invalid JSON in workflow config: %s", local_error->message);
      return NULL;
    }
  return pool_new_from_parser (parser, error);
}

/**
 * fiber_pool_new_from_config_file:
 * @path: (type filename): a file holding a workflow config in JSON
 * @error: return location for an error
 *
 * Reads @path and creates the pool it describes, see
 * [ctor@Fiber.Pool.new_from_config].  Error messages start with @path.
 *
 * Returns: (transfer full): the new pool, or %NULL with @error set: a
 *   #GFileError when the file cannot be read, else as
 *   [ctor@Fiber.Pool.new_from_config_string]
 */
FiberPool *
fiber_pool_new_from_config_file (const char  *path,
                                 GError     **error)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  g_autoptr(GError) local_error = NULL;
  g_autofree char *display = NULL;
  FiberPool *pool;

  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  display = g_filename_display_name (path);
  if (!json_parser_load_from_mapped_file (parser, path, &local_error))
    {
      if (local_error->domain == JSON_PARSER_ERROR)
        g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                     "%s: invalid JSON: %s", display, local_error->message);
      else
        g_propagate_prefixed_error (error, g_steal_pointer (&local_error),
                                    "cannot read workflow config %s: ", display);
      return NULL;
    }

  pool = pool_new_from_parser (parser, &local_error);
  if (pool == NULL)
    g_propagate_prefixed_error (error, g_steal_pointer (&local_error), "%s: ", display);
  return pool;
}

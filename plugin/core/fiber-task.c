/* fiber-task.c — the process-wide task registry
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "fiber-error.h"
#include "fiber-task.h"
#include "fiber-task-private.h"

typedef struct
{
  gatomicrefcount  ref;
  FiberTaskFunc    func;
  gpointer         user_data;
  GDestroyNotify   destroy;
} TaskEntry;

static GRWLock     registry_lock;
static GHashTable *registry;

static TaskEntry *
task_entry_ref (TaskEntry *entry)
{
  g_atomic_ref_count_inc (&entry->ref);
  return entry;
}

static void
task_entry_unref (TaskEntry *entry)
{
  if (g_atomic_ref_count_dec (&entry->ref))
    {
      if (entry->destroy != NULL)
        entry->destroy (entry->user_data);
      g_free (entry);
    }
}

static void
insert_entry (const char     *name,
              FiberTaskFunc   func,
              gpointer        user_data,
              GDestroyNotify  destroy)
{
  TaskEntry *entry = g_new0 (TaskEntry, 1);

  g_atomic_ref_count_init (&entry->ref);
  entry->func = func;
  entry->user_data = user_data;
  entry->destroy = destroy;

  g_rw_lock_writer_lock (&registry_lock);
  g_hash_table_replace (registry, g_strdup (name), entry);
  g_rw_lock_writer_unlock (&registry_lock);
}

static GHashTable *
ensure_registry (void)
{
  static gsize initialized;

  if (g_once_init_enter (&initialized))
    {
      registry = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                        (GDestroyNotify) task_entry_unref);
      _fiber_register_builtin_tasks ();
      g_once_init_leave (&initialized, 1);
    }
  return registry;
}

/**
 * fiber_task_register:
 * @name: the task name, such as `myapp.resize`
 * @func: (scope notified) (closure user_data) (destroy destroy): the task body
 * @user_data: data passed to @func
 * @destroy: (nullable): frees @user_data when the task is unregistered or replaced
 *
 * Registers @func under @name in this process.  Workers run the same
 * registrations, either because the host program re-executes itself and
 * calls fiber_init() first thing in `main()`, or because the generic
 * `fiber-worker` loads a task module that registers them.
 *
 * Registering a name again replaces the earlier registration.  The names
 * starting with `fiber.` are reserved for the built-in tasks.
 */
void
fiber_task_register (const char     *name,
                     FiberTaskFunc   func,
                     gpointer        user_data,
                     GDestroyNotify  destroy)
{
  g_return_if_fail (name != NULL && *name != '\0');
  g_return_if_fail (func != NULL);

  ensure_registry ();
  insert_entry (name, func, user_data, destroy);
}

/* Used while the registry is being created (no ensure_registry()). */
void
_fiber_task_register_builtin (const char    *name,
                              FiberTaskFunc  func)
{
  insert_entry (name, func, NULL, NULL);
}

/**
 * fiber_task_unregister:
 * @name: a task name
 *
 * Removes a registration made with fiber_task_register().  Calls that are
 * already running keep their reference until they return.
 *
 * Returns: %TRUE if @name was registered
 */
gboolean
fiber_task_unregister (const char *name)
{
  gboolean removed;

  g_return_val_if_fail (name != NULL, FALSE);

  ensure_registry ();
  g_rw_lock_writer_lock (&registry_lock);
  removed = g_hash_table_remove (registry, name);
  g_rw_lock_writer_unlock (&registry_lock);
  return removed;
}

static TaskEntry *
lookup (const char *name)
{
  TaskEntry *entry;

  ensure_registry ();
  g_rw_lock_reader_lock (&registry_lock);
  entry = g_hash_table_lookup (registry, name);
  if (entry != NULL)
    task_entry_ref (entry);
  g_rw_lock_reader_unlock (&registry_lock);
  return entry;
}

/**
 * fiber_task_is_registered:
 * @name: a task name
 *
 * Tells whether a task of this name is registered.
 *
 * Returns: whether a task called @name is registered in this process
 */
gboolean
fiber_task_is_registered (const char *name)
{
  TaskEntry *entry;

  g_return_val_if_fail (name != NULL, FALSE);

  entry = lookup (name);
  if (entry == NULL)
    return FALSE;
  task_entry_unref (entry);
  return TRUE;
}

static int
compare_names (gconstpointer a,
               gconstpointer b)
{
  return g_strcmp0 (*(const char * const *) a, *(const char * const *) b);
}

/**
 * fiber_task_list:
 *
 * Lists the tasks registered in this process, sorted by name.
 *
 * Returns: (transfer full) (array zero-terminated=1): the names
 */
char **
fiber_task_list (void)
{
  g_autoptr(GPtrArray) names = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer key;

  ensure_registry ();
  g_rw_lock_reader_lock (&registry_lock);
  g_hash_table_iter_init (&iter, registry);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (names, g_strdup (key));
  g_rw_lock_reader_unlock (&registry_lock);

  g_ptr_array_sort (names, compare_names);
  g_ptr_array_add (names, NULL);
  return (char **) g_ptr_array_free (g_steal_pointer (&names), FALSE);
}

/**
 * fiber_task_invoke:
 * @name: a registered task name
 * @args: (nullable): the arguments; %NULL means the empty tuple
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for an error
 *
 * Runs the task @name in the calling thread.  This is what workers do with
 * every item they receive.
 *
 * Returns: (transfer full): the result, or %NULL with %FIBER_ERROR_UNKNOWN_TASK
 *   or the task's own error
 */
GVariant *
fiber_task_invoke (const char    *name,
                   GVariant      *args,
                   GCancellable  *cancellable,
                   GError       **error)
{
  TaskEntry *entry;
  g_autoptr(GVariant) owned_args = NULL;
  GVariant *result;
  GError *local_error = NULL;

  g_return_val_if_fail (name != NULL, NULL);

  entry = lookup (name);
  if (entry == NULL)
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_UNKNOWN_TASK,
                   "no task named “%s” is registered in this worker", name);
      return NULL;
    }

  if (args == NULL)
    args = owned_args = g_variant_ref_sink (g_variant_new ("()"));

  result = _fiber_task_call (entry->func, entry->user_data, args,
                             cancellable, &local_error);
  task_entry_unref (entry);

  if (result == NULL)
    {
      g_propagate_error (error, local_error);
      return NULL;
    }
  return result;
}

/* Calls @func and normalises what it returns: a sunk, non-NULL result or a
 * set error, whatever the function did. */
GVariant *
_fiber_task_call (FiberTaskFunc   func,
                  gpointer        user_data,
                  GVariant       *args,
                  GCancellable   *cancellable,
                  GError        **error)
{
  GError *local_error = NULL;
  GVariant *result;

  result = func (args, cancellable, user_data, &local_error);
  if (result != NULL)
    {
      g_clear_error (&local_error);
      return g_variant_take_ref (result);
    }
  if (local_error == NULL)
    local_error = g_error_new_literal (FIBER_ERROR, FIBER_ERROR_TASK_FAILED,
                                       "the task returned no result and no error");
  g_propagate_error (error, local_error);
  return NULL;
}

/* fiber-batch.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <string.h>

#include "fiber-error.h"
#include "fiber-pool-private.h"
#include "fiber-task-private.h"

struct _FiberBatch
{
  gatomicrefcount    ref;
  guint64            id;
  char              *task;
  FiberTaskFunc      func;
  gpointer           func_data;
  GDestroyNotify     func_destroy;
  GVariant          *args;       /* apply: the one item's args */
  GVariant          *iterable;   /* map: one item per element */
  gboolean           unwrap;     /* iterable is av: items are the boxed values */
  guint              n_items;
  guint              chunksize;
  FiberApplyResult  *result;     /* a FiberMapResult for maps */
  FiberMapResult    *map_result; /* same object, or NULL for apply */
  char               task_buf[]; /* where `task` points, in the same block */
};

G_DEFINE_BOXED_TYPE (FiberBatch, fiber_batch, fiber_batch_ref, fiber_batch_unref)

FiberBatch *
_fiber_batch_new (const char        *task,
                  FiberTaskFunc      func,
                  gpointer           func_data,
                  GDestroyNotify     func_destroy,
                  GVariant          *args,
                  GVariant          *iterable,
                  guint              chunksize,
                  FiberApplyResult  *result)
{
  static gsize next_id = 1;
  gsize task_size = task != NULL ? strlen (task) + 1 : 0;
  /* one allocation for the batch and its task name: an apply_async makes
   * a batch per call */
  FiberBatch *self = g_malloc0 (sizeof (FiberBatch) + task_size);

  g_atomic_ref_count_init (&self->ref);
  self->id = (guint64) g_atomic_pointer_add (&next_id, 1);
  if (task != NULL)
    self->task = memcpy (self->task_buf, task, task_size);
  self->func = func;
  self->func_data = func_data;
  self->func_destroy = func_destroy;
  if (iterable != NULL)
    {
      self->iterable = g_variant_ref_sink (iterable);
      self->unwrap = g_variant_is_of_type (iterable, G_VARIANT_TYPE ("av"));
      self->n_items = (guint) g_variant_n_children (iterable);
    }
  else
    {
      self->args = g_variant_ref_sink (args);
      self->n_items = 1;
    }
  self->chunksize = MAX (chunksize, 1);
  self->result = g_object_ref (result);
  if (FIBER_IS_MAP_RESULT (result))
    self->map_result = FIBER_MAP_RESULT (result);
  return self;
}

/**
 * fiber_batch_ref:
 * @self: a #FiberBatch
 *
 * Acquires a reference.
 *
 * Returns: (transfer full): @self
 */
FiberBatch *
fiber_batch_ref (FiberBatch *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  g_atomic_ref_count_inc (&self->ref);
  return self;
}

/**
 * fiber_batch_unref:
 * @self: (transfer full): a #FiberBatch
 *
 * Releases a reference.
 */
void
fiber_batch_unref (FiberBatch *self)
{
  g_return_if_fail (self != NULL);
  if (!g_atomic_ref_count_dec (&self->ref))
    return;
  if (self->func_destroy != NULL)
    self->func_destroy (self->func_data);
  g_clear_pointer (&self->args, g_variant_unref);
  g_clear_pointer (&self->iterable, g_variant_unref);
  g_clear_object (&self->result);
  g_free (self);
}

/**
 * fiber_batch_get_id:
 * @self: a #FiberBatch
 *
 * Identifies the batch, for instance in a pool's logs.
 *
 * Returns: a number unique to this batch in this process (never 0)
 */
guint64
fiber_batch_get_id (FiberBatch *self)
{
  g_return_val_if_fail (self != NULL, 0);

  return self->id;
}

/**
 * fiber_batch_get_task:
 * @self: a #FiberBatch
 *
 * Gets the name of the task the batch runs.
 *
 * Returns: (nullable): the registered task name, or %NULL when the batch
 *   runs a caller-supplied function
 */
const char *
fiber_batch_get_task (FiberBatch *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  return self->task;
}

/**
 * fiber_batch_has_func:
 * @self: a #FiberBatch
 *
 * Tells whether the batch runs a function instead of a task.
 *
 * Returns: whether the batch runs a caller-supplied function (which only an
 *   in-process pool can do) instead of a registered task
 */
gboolean
fiber_batch_has_func (FiberBatch *self)
{
  g_return_val_if_fail (self != NULL, FALSE);

  return self->func != NULL;
}

/**
 * fiber_batch_get_n_items:
 * @self: a #FiberBatch
 *
 * Gets the number of items of the batch.
 *
 * Returns: the number of items: 1 for `apply`, the length of the iterable for maps
 */
guint
fiber_batch_get_n_items (FiberBatch *self)
{
  g_return_val_if_fail (self != NULL, 0);

  return self->n_items;
}

/**
 * fiber_batch_get_chunksize:
 * @self: a #FiberBatch
 *
 * How many consecutive items should go to a worker together.  Already
 * resolved: never 0.
 *
 * Returns: the chunk size
 */
guint
fiber_batch_get_chunksize (FiberBatch *self)
{
  g_return_val_if_fail (self != NULL, 1);

  return self->chunksize;
}

/**
 * fiber_batch_get_args:
 * @self: a #FiberBatch
 * @index: an item index, below [method@Fiber.Batch.get_n_items]
 *
 * Gets the arguments the task receives for item @index.
 *
 * Returns: (transfer full): the arguments of item @index
 */
GVariant *
fiber_batch_get_args (FiberBatch *self,
                      guint       index)
{
  GVariant *child;

  g_return_val_if_fail (self != NULL, NULL);
  g_return_val_if_fail (index < self->n_items, NULL);

  if (self->iterable == NULL)
    return g_variant_ref (self->args);

  child = g_variant_get_child_value (self->iterable, index);
  if (self->unwrap)
    {
      GVariant *inner = g_variant_get_variant (child);
      g_variant_unref (child);
      return inner;
    }
  return child;
}

/**
 * fiber_batch_invoke:
 * @self: a #FiberBatch
 * @index: an item index
 * @cancellable: (nullable): cancelled to interrupt the item
 * @error: return location for an error
 *
 * Runs item @index in the calling thread: the caller-supplied function, or
 * the registered task (%FIBER_ERROR_UNKNOWN_TASK if it is not registered in
 * this process).  Does not complete the item.
 *
 * Returns: (transfer full): the item's result
 */
GVariant *
fiber_batch_invoke (FiberBatch    *self,
                    guint          index,
                    GCancellable  *cancellable,
                    GError       **error)
{
  g_autoptr(GVariant) args = NULL;

  g_return_val_if_fail (self != NULL, NULL);
  g_return_val_if_fail (index < self->n_items, NULL);

  args = fiber_batch_get_args (self, index);
  if (self->func != NULL)
    return _fiber_task_call (self->func, self->func_data, args, cancellable, error);
  return fiber_task_invoke (self->task, args, cancellable, error);
}

gboolean
_fiber_batch_complete_item_take (FiberBatch *self,
                                 guint       index,
                                 GVariant   *value,
                                 GError     *error)
{
  if (index >= self->n_items || (value == NULL) == (error == NULL))
    {
      g_clear_pointer (&value, g_variant_unref);
      g_clear_error (&error);
      return FALSE;
    }
  if (self->map_result != NULL)
    return _fiber_map_result_set_item (self->map_result, index, value, error);
  return _fiber_apply_result_complete (self->result, value, error);
}

/**
 * fiber_batch_complete_item:
 * @self: a #FiberBatch
 * @index: an item index
 * @value: (nullable): the item's result, or %NULL if it failed
 * @error: (nullable): the item's error, or %NULL if it succeeded
 *
 * Delivers the outcome of item @index to the caller.  Exactly one of @value
 * and @error must be given.  Only the first completion of an item counts,
 * so a pool that ran an item twice (after losing a worker) cannot deliver
 * it twice.  Thread-safe.
 *
 * Returns: %TRUE if this call delivered the item
 */
gboolean
fiber_batch_complete_item (FiberBatch   *self,
                           guint         index,
                           GVariant     *value,
                           const GError *error)
{
  g_return_val_if_fail (self != NULL, FALSE);

  return _fiber_batch_complete_item_take (self, index,
                                          value ? g_variant_ref_sink (value) : NULL,
                                          error ? g_error_copy (error) : NULL);
}

/**
 * fiber_batch_complete_item_value:
 * @self: a #FiberBatch
 * @index: an item index
 * @value: the item's result
 *
 * Delivers the result of item @index, like
 * [method@Fiber.Batch.complete_item] for an item that succeeded.  For
 * language bindings that cannot pass %NULL for a #GError argument (pool
 * types written in Python).
 *
 * Returns: %TRUE if this call delivered the item
 */
gboolean
fiber_batch_complete_item_value (FiberBatch *self,
                                 guint       index,
                                 GVariant   *value)
{
  g_return_val_if_fail (self != NULL, FALSE);
  g_return_val_if_fail (value != NULL, FALSE);

  return _fiber_batch_complete_item_take (self, index, g_variant_ref_sink (value), NULL);
}

/**
 * fiber_batch_complete_item_error:
 * @self: a #FiberBatch
 * @index: an item index
 * @error: the item's error
 *
 * Delivers the failure of item @index, like
 * [method@Fiber.Batch.complete_item] for an item that failed.
 *
 * Returns: %TRUE if this call delivered the item
 */
gboolean
fiber_batch_complete_item_error (FiberBatch   *self,
                                 guint         index,
                                 const GError *error)
{
  g_return_val_if_fail (self != NULL, FALSE);
  g_return_val_if_fail (error != NULL, FALSE);

  return _fiber_batch_complete_item_take (self, index, NULL, g_error_copy (error));
}

gboolean
_fiber_batch_item_is_done (FiberBatch *self,
                           guint       index)
{
  if (self->map_result != NULL)
    return _fiber_map_result_item_is_set (self->map_result, index);
  return fiber_apply_result_ready (self->result);
}

/**
 * fiber_batch_is_done:
 * @self: a #FiberBatch
 *
 * Tells whether the pool can stop working on the batch.
 *
 * Returns: %TRUE once no item of the batch needs to run any more: all are
 *   complete, or the call was cancelled, or a `map` already failed
 */
gboolean
fiber_batch_is_done (FiberBatch *self)
{
  g_return_val_if_fail (self != NULL, TRUE);

  if (self->map_result != NULL)
    return _fiber_map_result_is_finished (self->map_result);
  return fiber_apply_result_ready (self->result);
}

FiberApplyResult *
_fiber_batch_get_result (FiberBatch *self)
{
  return self->result;
}

/* fiber-map-result.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "fiber-error.h"
#include "fiber-pool-private.h"

/**
 * FiberMapResult:
 *
 * The results of a `map`, `imap`, `imap_unordered` or `starmap` call.
 *
 * Items can be taken one by one as they finish with
 * [method@Fiber.MapResult.next] — in input order for `imap`, in completion
 * order for `imap_unordered` — each with its own value or error, so one
 * failing item never hides the others.  For `map_async` and `starmap_async`
 * the inherited [method@Fiber.ApplyResult.get] returns all results as an
 * `av` array in input order, or the error of the first failed item (the
 * result completes as soon as one item fails, like multiprocessing).
 */

enum { ITEM_PENDING, ITEM_DONE, ITEM_TAKEN };

struct _FiberMapResult
{
  FiberApplyResult  parent_instance;

  GMutex            mutex;
  GCond             cond;
  guint             n_items;
  guint             n_done;
  gboolean          ordered;
  gboolean          collect;
  gboolean          aborted;     /* cancelled, or collecting and failed */
  guint8           *state;
  GVariant        **values;      /* boxed: each of type "v" */
  GError          **errors;      /* allocated on the first error */
  guint            *order;       /* completion order, for imap_unordered */
  guint             order_read;
  guint             next_index;  /* next item for ordered next() */
  guint             n_waiters;   /* threads in next(): set_item() wakes them */
};

G_DEFINE_FINAL_TYPE (FiberMapResult, fiber_map_result, FIBER_TYPE_APPLY_RESULT)

static void
fiber_map_result_finalize (GObject *object)
{
  FiberMapResult *self = FIBER_MAP_RESULT (object);

  for (guint i = 0; i < self->n_items; i++)
    {
      g_clear_pointer (&self->values[i], g_variant_unref);
      if (self->errors != NULL)
        g_clear_error (&self->errors[i]);
    }
  g_free (self->values);
  g_free (self->errors);
  g_free (self->state);
  g_free (self->order);
  g_mutex_clear (&self->mutex);
  g_cond_clear (&self->cond);

  G_OBJECT_CLASS (fiber_map_result_parent_class)->finalize (object);
}

static void
fiber_map_result_class_init (FiberMapResultClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = fiber_map_result_finalize;
}

static void
fiber_map_result_init (FiberMapResult *self)
{
  g_mutex_init (&self->mutex);
  g_cond_init (&self->cond);
}

static void
abort_on_cancel (GCancellable *cancellable,
                 gpointer      data)
{
  FiberMapResult *self = data;

  g_mutex_lock (&self->mutex);
  g_atomic_int_set (&self->aborted, TRUE);
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->mutex);
}

FiberMapResult *
_fiber_map_result_new (gpointer             source_object,
                       guint                n_items,
                       gboolean             ordered,
                       gboolean             collect,
                       GCancellable        *cancellable,
                       GAsyncReadyCallback  callback,
                       gpointer             user_data,
                       gpointer             source_tag,
                       GMainContext        *callback_context)
{
  FiberMapResult *self;

  self = (FiberMapResult *) _fiber_apply_result_new (FIBER_TYPE_MAP_RESULT, source_object,
                                                     cancellable, callback, user_data,
                                                     source_tag, callback_context);
  self->n_items = n_items;
  self->ordered = ordered;
  self->collect = collect;
  self->state = g_new0 (guint8, MAX (n_items, 1));
  self->values = g_new0 (GVariant *, MAX (n_items, 1));
  if (!ordered)
    self->order = g_new (guint, MAX (n_items, 1));
  if (cancellable != NULL)
    g_signal_connect_object (cancellable, "cancelled",
                             G_CALLBACK (abort_on_cancel), self, 0);

  if (n_items == 0)
    _fiber_apply_result_complete (FIBER_APPLY_RESULT (self),
                                  collect ? g_variant_new_array (G_VARIANT_TYPE_VARIANT, NULL, 0)
                                          : g_variant_new ("()"),
                                  NULL);
  return self;
}

/* Called with the mutex held, when every item is done.  The values are
 * boxed already (not through a GVariantBuilder either: its format-string
 * path cost about a third of a noop map's run time), so the array takes
 * them as its children: a map of a million items keeps one value per
 * item, not two. */
static GVariant *
build_collected_locked (FiberMapResult *self)
{
  return g_variant_new_array (G_VARIANT_TYPE_VARIANT,
                              (GVariant * const *) self->values, self->n_items);
}

static gboolean set_item (FiberMapResult *self,
                          guint           index,
                          GVariant       *boxed,
                          GError         *error);

gboolean
_fiber_map_result_set_item (FiberMapResult *self,
                            guint           index,
                            GVariant       *value,
                            GError         *error)
{
  GVariant *boxed = NULL;

  g_return_val_if_fail (index < self->n_items, FALSE);
  g_assert ((value == NULL) != (error == NULL));

  if (value != NULL)
    {
      boxed = g_variant_ref_sink (g_variant_new_variant (value));
      g_variant_unref (value);
    }
  return set_item (self, index, boxed, error);
}

gboolean
_fiber_map_result_set_boxed (FiberMapResult *self,
                             guint           index,
                             GVariant       *boxed)
{
  g_return_val_if_fail (index < self->n_items, FALSE);
  g_return_val_if_fail (boxed != NULL && g_variant_is_of_type (boxed, G_VARIANT_TYPE_VARIANT),
                        FALSE);

  return set_item (self, index, g_variant_take_ref (boxed), NULL);
}

/* Takes @value (boxed, owned) or @error. */
static gboolean
set_item (FiberMapResult *self,
          guint           index,
          GVariant       *value,
          GError         *error)
{
  GVariant *complete_value = NULL;
  GError *complete_error = NULL;
  gboolean complete = FALSE;
  gboolean wake;

  g_return_val_if_fail (index < self->n_items, FALSE);
  g_assert ((value == NULL) != (error == NULL));

  g_mutex_lock (&self->mutex);
  if (self->state[index] != ITEM_PENDING || self->aborted)
    {
      g_mutex_unlock (&self->mutex);
      g_clear_pointer (&value, g_variant_unref);
      g_clear_error (&error);
      return FALSE;
    }

  self->state[index] = ITEM_DONE;
  g_atomic_int_inc (&self->n_done);
  if (!self->ordered)
    self->order[self->n_done - 1] = index;

  if (error != NULL)
    {
      if (self->collect)
        {
          /* map()/starmap() fail as a whole on the first failed item. */
          complete_error = g_error_copy (error);
          g_atomic_int_set (&self->aborted, TRUE);
          complete = TRUE;
        }
      if (self->errors == NULL)
        self->errors = g_new0 (GError *, self->n_items);
      self->errors[index] = error;
    }
  else
    self->values[index] = value;

  if (!complete && self->n_done == self->n_items)
    {
      complete = TRUE;
      complete_value = self->collect ? build_collected_locked (self) : g_variant_new ("()");
    }
  /* A futex wake per item would cost a system call each even with nobody
   * waiting (GCond does not count waiters): only wake next() callers, and
   * after the unlock, so that they do not block on the mutex at once (the
   * batch completing this item holds a reference to @self). */
  wake = self->n_waiters > 0;
  g_mutex_unlock (&self->mutex);
  if (wake)
    g_cond_broadcast (&self->cond);

  if (complete)
    _fiber_apply_result_complete (FIBER_APPLY_RESULT (self), complete_value, complete_error);
  return TRUE;
}

gboolean
_fiber_map_result_item_is_set (FiberMapResult *self,
                               guint           index)
{
  gboolean set;

  g_mutex_lock (&self->mutex);
  set = self->aborted || index >= self->n_items || self->state[index] != ITEM_PENDING;
  g_mutex_unlock (&self->mutex);
  return set;
}

gboolean
_fiber_map_result_is_finished (FiberMapResult *self)
{
  /* asked before every item by the pools: no lock (aborted and n_done
   * are written atomically, under the mutex) */
  return g_atomic_int_get (&self->aborted) ||
         (guint) g_atomic_int_get (&self->n_done) == self->n_items;
}

/**
 * fiber_map_result_next:
 * @self: a #FiberMapResult
 * @timeout_msec: how long to wait for the next item: -1 forever, 0 just check
 * @index: (out) (optional): the index of the item in the input
 * @value: (out) (optional) (transfer full): the item's result
 * @error: return location for an error
 *
 * Takes the next finished item, like `next()` on the iterator of `imap`
 * (input order) or `imap_unordered` (completion order).
 *
 * Returns %TRUE with @value set for an item that succeeded.  For an item that
 * failed it returns %FALSE with @index and @error set to that item's error;
 * iteration continues with the next call.  When all items have been taken it
 * returns %FALSE without setting @error.  When @timeout_msec ran out it
 * returns %FALSE with %FIBER_ERROR_TIMEOUT; when the call was cancelled,
 * with %G_IO_ERROR_CANCELLED.
 *
 * For `map`/`starmap` results the items stay available to
 * [method@Fiber.MapResult.get]; for `imap` results a taken value is released.
 *
 * Returns: %TRUE if an item was taken successfully
 */
gboolean
fiber_map_result_next (FiberMapResult  *self,
                       int              timeout_msec,
                       guint           *index,
                       GVariant       **value,
                       GError         **error)
{
  gint64 deadline = 0;
  guint i;
  gboolean ok;

  g_return_val_if_fail (FIBER_IS_MAP_RESULT (self), FALSE);

  if (timeout_msec > 0)
    deadline = g_get_monotonic_time () + (gint64) timeout_msec * G_TIME_SPAN_MILLISECOND;

  g_mutex_lock (&self->mutex);
  for (;;)
    {
      gboolean available;
      gboolean timed_out = FALSE;

      if (self->next_index >= self->n_items)
        {
          g_mutex_unlock (&self->mutex);
          return FALSE;
        }
      if (self->ordered)
        available = self->state[self->next_index] == ITEM_DONE;
      else
        available = self->order_read < self->n_done;
      if (available)
        break;

      if (self->aborted)
        {
          GCancellable *cancellable =
            _fiber_apply_result_get_cancellable (FIBER_APPLY_RESULT (self));

          g_mutex_unlock (&self->mutex);
          if (!g_cancellable_set_error_if_cancelled (cancellable, error))
            g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_FAILED,
                                 "the map was aborted after an item failed");
          return FALSE;
        }
      if (timeout_msec == 0)
        timed_out = TRUE;
      else
        {
          self->n_waiters++;
          if (timeout_msec > 0)
            timed_out = !g_cond_wait_until (&self->cond, &self->mutex, deadline);
          else
            g_cond_wait (&self->cond, &self->mutex);
          self->n_waiters--;
        }
      if (timed_out)
        {
          g_mutex_unlock (&self->mutex);
          g_set_error (error, FIBER_ERROR, FIBER_ERROR_TIMEOUT,
                       "no result was ready within %d ms", timeout_msec);
          return FALSE;
        }
    }

  if (self->ordered)
    i = self->next_index;
  else
    i = self->order[self->order_read++];
  self->next_index++;

  if (index != NULL)
    *index = i;
  ok = self->errors == NULL || self->errors[i] == NULL;
  if (!ok)
    g_propagate_error (error, g_error_copy (self->errors[i]));
  else if (value != NULL)
    *value = g_variant_get_variant (self->values[i]);
  if (!self->collect)
    {
      g_clear_pointer (&self->values[i], g_variant_unref);
      self->state[i] = ITEM_TAKEN;
    }
  g_mutex_unlock (&self->mutex);

  return ok;
}

/**
 * fiber_map_result_get:
 * @self: a #FiberMapResult
 * @timeout_msec: how long to wait: -1 forever, 0 just check
 * @error: return location for an error
 *
 * Waits for the whole map and returns all results as an `av` array in
 * input order (the same as [method@Fiber.ApplyResult.get]).  For `imap`
 * results, which do not keep their values, it returns an empty tuple once
 * every item has finished.
 *
 * Returns: (transfer full): the results, or %NULL with the first item's error
 */
GVariant *
fiber_map_result_get (FiberMapResult  *self,
                      int              timeout_msec,
                      GError         **error)
{
  g_return_val_if_fail (FIBER_IS_MAP_RESULT (self), NULL);
  return fiber_apply_result_get (FIBER_APPLY_RESULT (self), timeout_msec, error);
}

/**
 * fiber_map_result_get_n_items:
 * @self: a #FiberMapResult
 *
 * Gets the number of items of the call.
 *
 * Returns: the number of items of the call
 */
guint
fiber_map_result_get_n_items (FiberMapResult *self)
{
  g_return_val_if_fail (FIBER_IS_MAP_RESULT (self), 0);
  return self->n_items;
}

/**
 * fiber_map_result_get_n_completed:
 * @self: a #FiberMapResult
 *
 * Gets how many items have completed so far.
 *
 * Returns: how many items have finished so far (for progress reports)
 */
guint
fiber_map_result_get_n_completed (FiberMapResult *self)
{
  guint n;

  g_return_val_if_fail (FIBER_IS_MAP_RESULT (self), 0);
  g_mutex_lock (&self->mutex);
  n = self->n_done;
  g_mutex_unlock (&self->mutex);
  return n;
}

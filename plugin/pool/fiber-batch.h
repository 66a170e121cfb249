/* fiber-batch.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(FIBER_INSIDE) && !defined(FIBER_COMPILATION)
# error "Only <fiber.h> can be included directly."
#endif

#include <gio/gio.h>

#include "fiber-version.h"

G_BEGIN_DECLS

#define FIBER_TYPE_BATCH (fiber_batch_get_type ())

/**
 * FiberBatch:
 *
 * One call into a pool, as the pool implementation sees it: a task (a
 * registered name, or a function for the in-process pools) and
 * [method@Fiber.Batch.get_n_items] argument tuples, to be completed item by
 * item with [method@Fiber.Batch.complete_item].  `apply` makes a batch of one
 * item, `map` one item per element of the iterable.
 *
 * Pool types written outside this library (see [class@Fiber.Pool]) receive
 * batches in their `submit` virtual method.
 */
typedef struct _FiberBatch FiberBatch;

FIBER_AVAILABLE_IN_ALL
GType       fiber_batch_get_type      (void) G_GNUC_CONST;
FIBER_AVAILABLE_IN_ALL
FiberBatch *fiber_batch_ref           (FiberBatch    *self);
FIBER_AVAILABLE_IN_ALL
void        fiber_batch_unref         (FiberBatch    *self);
FIBER_AVAILABLE_IN_ALL
guint64     fiber_batch_get_id        (FiberBatch    *self);
FIBER_AVAILABLE_IN_ALL
const char *fiber_batch_get_task      (FiberBatch    *self);
FIBER_AVAILABLE_IN_ALL
gboolean    fiber_batch_has_func      (FiberBatch    *self);
FIBER_AVAILABLE_IN_ALL
guint       fiber_batch_get_n_items   (FiberBatch    *self);
FIBER_AVAILABLE_IN_ALL
guint       fiber_batch_get_chunksize (FiberBatch    *self);
FIBER_AVAILABLE_IN_ALL
GVariant   *fiber_batch_get_args      (FiberBatch    *self,
                                       guint          index);
FIBER_AVAILABLE_IN_ALL
GVariant   *fiber_batch_invoke        (FiberBatch    *self,
                                       guint          index,
                                       GCancellable  *cancellable,
                                       GError       **error);
FIBER_AVAILABLE_IN_ALL
gboolean    fiber_batch_complete_item (FiberBatch    *self,
                                       guint          index,
                                       GVariant      *value,
                                       const GError  *error);
FIBER_AVAILABLE_IN_ALL
gboolean    fiber_batch_complete_item_value (FiberBatch   *self,
                                             guint         index,
                                             GVariant     *value);
FIBER_AVAILABLE_IN_ALL
gboolean    fiber_batch_complete_item_error (FiberBatch   *self,
                                             guint         index,
                                             const GError *error);
FIBER_AVAILABLE_IN_ALL
gboolean    fiber_batch_is_done       (FiberBatch    *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (FiberBatch, fiber_batch_unref)

G_END_DECLS

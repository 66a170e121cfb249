/* fiber-stack-private.h — coroutine stacks
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A FiberStack is an mmap'd region: a PROT_NONE guard area at the low end
 * (stacks grow down on every architecture we support), the usable stack
 * above it.  Running off the end of a stack hits the guard and the process
 * gets SIGSEGV instead of silently corrupting whatever lies below.
 *
 * A FiberStackPool keeps a few released stacks of one size for reuse; it is
 * not thread-safe (each scheduler owns one).
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Default usable size of a coroutine stack. */
#define FIBER_STACK_DEFAULT_SIZE   (256 * 1024)
/* Smallest accepted stack size. */
#define FIBER_STACK_MIN_SIZE       (16 * 1024)
/* Largest accepted stack size. */
#define FIBER_STACK_MAX_SIZE       ((gsize) 1024 * 1024 * 1024)

typedef struct
{
  guint8 *map;          /* start of the mapping (the guard area) */
  gsize   map_size;     /* guard + usable size */
  guint8 *base;         /* lowest usable address */
  gsize   size;         /* usable size */
  guint   valgrind_id;
} FiberStack;

typedef struct _FiberStackPool FiberStackPool;

gsize           _fiber_stack_page_size       (void);
gsize           _fiber_stack_guard_size      (void);
/* Rounds @size up to whole pages; FALSE + error when out of range. */
gboolean        _fiber_stack_check_size      (gsize            size,
                                              gsize           *rounded,
                                              GError         **error);

FiberStack     *_fiber_stack_new             (gsize            size,
                                              GError         **error);
void            _fiber_stack_free            (FiberStack      *stack);

FiberStackPool *_fiber_stack_pool_new        (gsize            stack_size,
                                              guint            max_cached);
void            _fiber_stack_pool_free       (FiberStackPool  *pool);
gsize           _fiber_stack_pool_get_stack_size (FiberStackPool *pool);
FiberStack     *_fiber_stack_pool_take       (FiberStackPool  *pool,
                                              GError         **error);
void            _fiber_stack_pool_release    (FiberStackPool  *pool,
                                              FiberStack      *stack);
guint           _fiber_stack_pool_get_n_cached (FiberStackPool *pool);

G_END_DECLS

/* fiber-stack.c — mmap'd coroutine stacks with a guard area, and a small pool
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "fiber-coroutine-config.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if FIBER_HAVE_VALGRIND
# include <valgrind/valgrind.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
# define FIBER_ASAN 1
#elif defined(__has_feature)
# if __has_feature(address_sanitizer)
#  define FIBER_ASAN 1
# endif
#endif
#ifdef FIBER_ASAN
# include <sanitizer/asan_interface.h>
#endif

#include "fiber-error.h"
#include "fiber-stack-private.h"

#ifndef MAP_STACK
# define MAP_STACK 0
#endif
#ifndef MAP_NORESERVE
# define MAP_NORESERVE 0
#endif

/* Pages of PROT_NONE below every stack.  More than one page, so that a
 * function with a large frame cannot step over the guard into the
 * neighbouring mapping. */
#define GUARD_PAGES 16

gsize
_fiber_stack_page_size (void)
{
  static gsize page_size;

  if (g_once_init_enter (&page_size))
    {
      long size = sysconf (_SC_PAGESIZE);
      g_once_init_leave (&page_size, size > 0 ? (gsize) size : 4096);
    }
  return page_size;
}

gsize
_fiber_stack_guard_size (void)
{
  return GUARD_PAGES * _fiber_stack_page_size ();
}

gboolean
_fiber_stack_check_size (gsize    size,
                         gsize   *rounded,
                         GError **error)
{
  gsize page = _fiber_stack_page_size ();

  if (size < FIBER_STACK_MIN_SIZE || size > FIBER_STACK_MAX_SIZE)
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                   "coroutine stack size %" G_GSIZE_FORMAT " is out of range "
                   "(%d to %" G_GSIZE_FORMAT " bytes)",
                   size, FIBER_STACK_MIN_SIZE, FIBER_STACK_MAX_SIZE);
      return FALSE;
    }
  if (rounded != NULL)
    *rounded = (size + page - 1) / page * page;
  return TRUE;
}

FiberStack *
_fiber_stack_new (gsize    size,
                  GError **error)
{
  g_autofree FiberStack *stack = NULL;
  gsize guard = _fiber_stack_guard_size ();
  gsize usable;
  void *map;

  if (!_fiber_stack_check_size (size, &usable, error))
    return NULL;

  /* MAP_NORESERVE: only the pages a coroutine touches cost memory, so
   * thousands of mostly idle stacks stay cheap. */
  map = mmap (NULL, guard + usable, PROT_READ | PROT_WRITE,
              MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
  if (map == MAP_FAILED)
    {
      int saved = errno;
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_FAILED,
                   "cannot map a coroutine stack of %" G_GSIZE_FORMAT " bytes: %s",
                   usable, g_strerror (saved));
      return NULL;
    }
  if (mprotect (map, guard, PROT_NONE) != 0)
    {
      int saved = errno;
      munmap (map, guard + usable);
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_FAILED,
                   "cannot protect the guard area of a coroutine stack: %s",
                   g_strerror (saved));
      return NULL;
    }

  stack = g_new0 (FiberStack, 1);
  stack->map = map;
  stack->map_size = guard + usable;
  stack->base = stack->map + guard;
  stack->size = usable;
#if FIBER_HAVE_VALGRIND
  stack->valgrind_id = VALGRIND_STACK_REGISTER (stack->base, stack->base + stack->size);
#endif
  return g_steal_pointer (&stack);
}

void
_fiber_stack_free (FiberStack *stack)
{
  if (stack == NULL)
    return;
#if FIBER_HAVE_VALGRIND
  VALGRIND_STACK_DEREGISTER (stack->valgrind_id);
#endif
#ifdef FIBER_ASAN
  /* Frames of a coroutine that never returned leave poisoned redzones. */
  ASAN_UNPOISON_MEMORY_REGION (stack->base, stack->size);
#endif
  munmap (stack->map, stack->map_size);
  g_free (stack);
}

struct _FiberStackPool
{
  gsize       stack_size;
  guint       max_cached;
  GPtrArray  *cached;
};

FiberStackPool *
_fiber_stack_pool_new (gsize stack_size,
                       guint max_cached)
{
  FiberStackPool *pool = g_new0 (FiberStackPool, 1);

  pool->stack_size = stack_size;
  pool->max_cached = max_cached;
  pool->cached = g_ptr_array_new_full (max_cached, (GDestroyNotify) _fiber_stack_free);
  return pool;
}

void
_fiber_stack_pool_free (FiberStackPool *pool)
{
  if (pool == NULL)
    return;
  g_ptr_array_unref (pool->cached);
  g_free (pool);
}

gsize
_fiber_stack_pool_get_stack_size (FiberStackPool *pool)
{
  return pool->stack_size;
}

guint
_fiber_stack_pool_get_n_cached (FiberStackPool *pool)
{
  return pool->cached->len;
}

FiberStack *
_fiber_stack_pool_take (FiberStackPool  *pool,
                        GError         **error)
{
  if (pool->cached->len > 0)
    return g_ptr_array_steal_index_fast (pool->cached, pool->cached->len - 1);
  return _fiber_stack_new (pool->stack_size, error);
}

void
_fiber_stack_pool_release (FiberStackPool *pool,
                           FiberStack     *stack)
{
  if (pool->cached->len >= pool->max_cached)
    {
      _fiber_stack_free (stack);
      return;
    }
#ifdef FIBER_ASAN
  ASAN_UNPOISON_MEMORY_REGION (stack->base, stack->size);
#endif
  g_ptr_array_add (pool->cached, stack);
}

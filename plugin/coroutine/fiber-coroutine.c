/* fiber-coroutine.c — a stackful coroutine
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "fiber-coroutine-private.h"

/* Coroutines never migrate between threads, so a thread-local pointer read
 * on either side of a switch always refers to the same thread. */
static __thread FiberCoroutine *current_coroutine;

static void
coroutine_entry (void *arg)
{
  FiberCoroutine *self = arg;

  _fiber_context_entered (self->caller);
  self->func (self->data);
  self->finished = TRUE;
  _fiber_context_exit (&self->ctx, self->caller);
}

FiberCoroutine *
_fiber_coroutine_new (FiberStack         *stack,
                      FiberSwitchKind     kind,
                      FiberCoroutineFunc  func,
                      gpointer            data)
{
  FiberCoroutine *self = g_new0 (FiberCoroutine, 1);

  self->stack = stack;
  self->func = func;
  self->data = data;
  self->heap_index = G_MAXUINT;
  _fiber_context_init (&self->ctx, kind, stack->base, stack->size,
                       coroutine_entry, self);
  return self;
}

FiberStack *
_fiber_coroutine_free (FiberCoroutine *self)
{
  FiberStack *stack;

  g_return_val_if_fail (self != current_coroutine, NULL);

  stack = g_steal_pointer (&self->stack);
  _fiber_context_clear (&self->ctx);
  g_free (self);
  return stack;
}

void
_fiber_coroutine_resume (FiberCoroutine *self,
                         FiberContext   *caller)
{
  FiberCoroutine *previous = current_coroutine;

  g_return_if_fail (!self->finished);
  g_return_if_fail (caller->kind == self->ctx.kind);

  self->caller = caller;
  self->started = TRUE;
  current_coroutine = self;
  _fiber_context_switch (caller, &self->ctx);
  current_coroutine = previous;
}

void
_fiber_coroutine_suspend (void)
{
  FiberCoroutine *self = current_coroutine;

  g_return_if_fail (self != NULL);

  _fiber_context_switch (&self->ctx, self->caller);
}

FiberCoroutine *
_fiber_coroutine_get_current (void)
{
  return current_coroutine;
}

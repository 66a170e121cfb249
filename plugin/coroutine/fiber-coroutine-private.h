/* fiber-coroutine-private.h — a stackful coroutine
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A FiberCoroutine runs a function on its own FiberStack.  Whoever calls
 * _fiber_coroutine_resume() runs it until it calls _fiber_coroutine_suspend()
 * or returns from its function; control then comes back to the resumer.
 * Coroutines never move between threads: a coroutine must always be resumed
 * by the thread that first resumed it.
 */

#pragma once

#include <glib.h>

#include "fiber-context-private.h"
#include "fiber-stack-private.h"

G_BEGIN_DECLS

typedef void (*FiberCoroutineFunc) (gpointer data);

typedef struct _FiberScheduler FiberScheduler;
typedef struct _FiberCoroutine FiberCoroutine;

struct _FiberCoroutine
{
  FiberContext        ctx;
  FiberContext       *caller;
  FiberStack         *stack;
  FiberCoroutineFunc  func;
  gpointer            data;
  gboolean            started;
  gboolean            finished;

  /* Managed by the FiberScheduler that owns the coroutine. */
  FiberScheduler     *sched;
  GList               link;          /* ready queues */
  int                 state;         /* atomic: FiberCoroutineState */
  int                 wake_reason;
  gint64              deadline;      /* sleeping: monotonic time */
  guint               heap_index;    /* sleeping: index in the timer heap */
  GIOCondition        revents;       /* fd await result */
};

/* Takes ownership of @stack. */
FiberCoroutine *_fiber_coroutine_new          (FiberStack         *stack,
                                               FiberSwitchKind     kind,
                                               FiberCoroutineFunc  func,
                                               gpointer            data);
/* Frees a coroutine that finished or never started and returns its stack
 * (transfer full) for reuse. */
FiberStack     *_fiber_coroutine_free         (FiberCoroutine     *self);
/* Runs @self from @caller (the resumer's context, of the same switch kind)
 * until it suspends or finishes. */
void            _fiber_coroutine_resume       (FiberCoroutine     *self,
                                               FiberContext       *caller);
/* Called on a coroutine stack: switches back to the resumer. */
void            _fiber_coroutine_suspend      (void);
/* The coroutine running on the calling thread, or NULL on a thread stack. */
FiberCoroutine *_fiber_coroutine_get_current  (void);

/* Makes a stack overflow of a coroutine on the calling thread a reported
 * crash: a SIGSEGV in the guard area of the running coroutine's stack
 * writes a line naming @thread_name and the stack size to stderr, then
 * takes the signal's previous disposition (by default, the process dies of
 * SIGSEGV).  Installs the process-wide handler once and an alternate
 * signal stack for this thread, unless it has one already.  Disable it on
 * the same thread before the thread exits. */
void            _fiber_coroutine_enable_overflow_report  (const char *thread_name);
void            _fiber_coroutine_disable_overflow_report (void);

static inline gboolean
_fiber_coroutine_is_finished (FiberCoroutine *self)
{
  return self->finished;
}

G_END_DECLS

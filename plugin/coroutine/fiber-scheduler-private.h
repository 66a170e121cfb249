/* fiber-scheduler-private.h — runs coroutines from a GMainContext
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A FiberScheduler belongs to the thread that creates it, and that thread
 * must iterate its GMainContext: a GSource attached there resumes ready
 * coroutines, wakes sleepers from a timer heap, and takes wake-ups from
 * other threads (cancellation) through a locked queue.  While a coroutine
 * runs, the scheduler's context is the thread-default main context, so GIO
 * operations started in a coroutine complete on the scheduler's thread.
 *
 * Suspended coroutines are only ever resumed by their scheduler; the await
 * primitives (fiber-await.h) are built on the wait protocol below.
 */

#pragma once

#include <gio/gio.h>

#include "fiber-coroutine-private.h"

G_BEGIN_DECLS

typedef enum
{
  FIBER_WAKE_NONE,
  FIBER_WAKE_SIGNAL,      /* the awaited event happened */
  FIBER_WAKE_TIMER,
  FIBER_WAKE_CANCELLED,
} FiberWakeReason;

FiberScheduler *_fiber_scheduler_new          (GMainContext       *context,
                                               gsize               stack_size,
                                               FiberSwitchKind     kind,
                                               GError            **error);
FiberScheduler *_fiber_scheduler_ref          (FiberScheduler     *self);
void            _fiber_scheduler_unref        (FiberScheduler     *self);

GMainContext   *_fiber_scheduler_get_context  (FiberScheduler     *self);
FiberSwitchKind _fiber_scheduler_get_switch_kind (FiberScheduler  *self);
gsize           _fiber_scheduler_get_stack_size (FiberScheduler   *self);
/* Coroutines spawned and not finished yet. */
guint           _fiber_scheduler_get_n_coroutines (FiberScheduler *self);

/* On the scheduler's thread: creates a coroutine running @func (@data) and
 * makes it ready.  Fails only when no stack can be mapped. */
gboolean        _fiber_scheduler_spawn        (FiberScheduler     *self,
                                               FiberCoroutineFunc  func,
                                               gpointer            data,
                                               GError            **error);

/* The scheduler of the running coroutine (NULL on a thread stack). */
FiberScheduler *_fiber_scheduler_get_current  (void);

/* ---- wait protocol (on a coroutine of a scheduler) ----
 *
 *   _fiber_scheduler_prepare_wait (co);
 *   register something that will call _fiber_scheduler_wake (co, reason);
 *   reason = _fiber_scheduler_wait (co, cancellable);
 *
 * _fiber_scheduler_wake() may be called from any thread; only the first
 * call after prepare_wait() counts.  A cancelled @cancellable wakes the
 * coroutine with FIBER_WAKE_CANCELLED. */
void            _fiber_scheduler_prepare_wait (FiberCoroutine     *co);
gboolean        _fiber_scheduler_wake         (FiberCoroutine     *co,
                                               FiberWakeReason     reason);
FiberWakeReason _fiber_scheduler_wait         (FiberCoroutine     *co,
                                               GCancellable       *cancellable);

/* Primitives for the running coroutine. */
void            _fiber_scheduler_yield        (FiberCoroutine     *co);
/* FALSE when woken early by @cancellable. */
gboolean        _fiber_scheduler_sleep        (FiberCoroutine     *co,
                                               gint64              usec,
                                               GCancellable       *cancellable);
/* 0 when woken by @cancellable. */
GIOCondition    _fiber_scheduler_await_fd     (FiberCoroutine     *co,
                                               int                 fd,
                                               GIOCondition        condition,
                                               GCancellable       *cancellable);

G_END_DECLS

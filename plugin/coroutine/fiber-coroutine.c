/* fiber-coroutine.c — a stackful coroutine
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

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

/* ---- stack overflow report ------------------------------------------------ */

/* Size of the alternate signal stack the handler runs on (the faulting
 * stack has no room left). */
#define OVERFLOW_ALTSTACK_SIZE (64 * 1024)

static struct sigaction previous_segv;
static __thread char overflow_thread_name[32];
static __thread gpointer overflow_altstack;   /* ours, when we installed one */

static void
write_text (const char *text)
{
  gsize len = strlen (text);

  while (len > 0)
    {
      ssize_t n = write (STDERR_FILENO, text, len);
      if (n <= 0)
        return;
      text += n;
      len -= (gsize) n;
    }
}

/* Async-signal-safe formatting of a size. */
static void
write_size (gsize value)
{
  char digits[24];
  guint i = sizeof digits - 1;

  digits[i] = '\0';
  do
    {
      digits[--i] = (char) ('0' + value % 10);
      value /= 10;
    }
  while (value > 0 && i > 0);
  write_text (digits + i);
}

static void
overflow_handler (int        sig,
                  siginfo_t *info,
                  void      *ucontext)
{
  FiberCoroutine *co = current_coroutine;
  int saved_errno = errno;

  if (co != NULL && co->stack != NULL &&
      (guint8 *) info->si_addr >= co->stack->map &&
      (guint8 *) info->si_addr < co->stack->base)
    {
      write_text ("fiber: a task overflowed its coroutine stack (");
      write_size (co->stack->size);
      write_text (" bytes) on the thread \u201c");
      write_text (overflow_thread_name[0] != '\0' ? overflow_thread_name : "?");
      write_text ("\u201d and hit the guard page below it: that thread crashed, and "
                  "with it the process. Give the pool a larger stack-size.\n");
      /* The fault happens again on return, with the previous disposition:
       * the default kills the process with SIGSEGV (and a core dump). */
      sigaction (sig, &previous_segv, NULL);
      errno = saved_errno;
      return;
    }

  /* Not ours: whatever handled SIGSEGV before us. */
  if (previous_segv.sa_flags & SA_SIGINFO)
    previous_segv.sa_sigaction (sig, info, ucontext);
  else if (previous_segv.sa_handler == SIG_DFL || previous_segv.sa_handler == SIG_IGN)
    sigaction (sig, &previous_segv, NULL);
  else
    previous_segv.sa_handler (sig);
  errno = saved_errno;
}

void
_fiber_coroutine_enable_overflow_report (const char *thread_name)
{
  static gsize installed;
  stack_t current;

  if (g_once_init_enter (&installed))
    {
      struct sigaction action;

      memset (&action, 0, sizeof action);
      action.sa_sigaction = overflow_handler;
      action.sa_flags = SA_SIGINFO | SA_ONSTACK;
      sigemptyset (&action.sa_mask);
      sigaction (SIGSEGV, &action, &previous_segv);
      g_once_init_leave (&installed, 1);
    }

  g_strlcpy (overflow_thread_name, thread_name != NULL ? thread_name : "",
             sizeof overflow_thread_name);

  /* Keep an alternate stack somebody else (AddressSanitizer) set up. */
  if (sigaltstack (NULL, &current) == 0 && !(current.ss_flags & SS_DISABLE))
    return;
  if (overflow_altstack == NULL)
    {
      stack_t altstack;

      overflow_altstack = g_malloc (OVERFLOW_ALTSTACK_SIZE);
      altstack.ss_sp = overflow_altstack;
      altstack.ss_size = OVERFLOW_ALTSTACK_SIZE;
      altstack.ss_flags = 0;
      if (sigaltstack (&altstack, NULL) != 0)
        g_clear_pointer (&overflow_altstack, g_free);
    }
}

void
_fiber_coroutine_disable_overflow_report (void)
{
  overflow_thread_name[0] = '\0';
  if (overflow_altstack != NULL)
    {
      stack_t disable;

      memset (&disable, 0, sizeof disable);
      disable.ss_flags = SS_DISABLE;
      sigaltstack (&disable, NULL);
      g_clear_pointer (&overflow_altstack, g_free);
    }
}

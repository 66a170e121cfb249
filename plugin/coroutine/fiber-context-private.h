/* fiber-context-private.h — the machine context switch of the coroutines
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Two implementations:
 *  - FIBER_SWITCH_ASM: a hand-written switch (x86-64, aarch64) that saves
 *    only what the calling convention makes callee-saved (x86-64: rbx, rbp,
 *    r12–r15, rsp, MXCSR and the x87 control word; aarch64: x19–x30, sp,
 *    d8–d15, FPCR).  Chosen by default where the build has it.
 *  - FIBER_SWITCH_UCONTEXT: makecontext/swapcontext, portable but slower
 *    (swapcontext also saves and restores the signal mask: a system call).
 *
 * The switch is symmetric between a "main" context (a thread's own stack:
 * the scheduler) and coroutine contexts: a coroutine always switches back
 * to the context that resumed it.  The AddressSanitizer fiber annotations
 * rely on that.
 */

#pragma once

#include "fiber-coroutine-config.h"

#include <glib.h>
#include <ucontext.h>

#if defined(__SANITIZE_ADDRESS__)
# define FIBER_ASAN 1
#elif defined(__has_feature)
# if __has_feature(address_sanitizer)
#  define FIBER_ASAN 1
# endif
#endif
#ifdef FIBER_ASAN
# include <sanitizer/asan_interface.h>
# include <sanitizer/common_interface_defs.h>
#endif

/* The asm switch is usable when the build detected a supported CPU and the
 * code is not built for a CET shadow stack (the switch rewrites return
 * addresses, which a shadow stack would reject). */
#if FIBER_HAVE_ASM_SWITCH && (defined(__x86_64__) || defined(__aarch64__)) \
    && !(defined(__CET__) && (__CET__ & 2))
# define FIBER_ASM_SWITCH_ENABLED 1
#else
# define FIBER_ASM_SWITCH_ENABLED 0
#endif

G_BEGIN_DECLS

typedef enum
{
  FIBER_SWITCH_ASM,
  FIBER_SWITCH_UCONTEXT,
} FiberSwitchKind;

typedef void (*FiberContextEntry) (void *arg);

typedef struct
{
  void              *sp;            /* asm: saved stack pointer */
  ucontext_t        *uc;            /* ucontext: saved context */
  FiberSwitchKind    kind;
  FiberContextEntry  entry;
  void              *arg;
  /* AddressSanitizer bookkeeping (unused otherwise) */
  const void        *stack_bottom;
  size_t             stack_size;
  void              *fake_stack;
} FiberContext;

void     _fiber_context_swap_asm          (void         **save_sp,
                                           void          *load_sp);

/* The switch used when a scheduler does not ask for one: the asm one when
 * available, unless the environment variable FIBER_COROUTINE_SWITCH is
 * "ucontext". */
FiberSwitchKind _fiber_context_default_kind (void);
gboolean        _fiber_context_kind_available (FiberSwitchKind kind);
const char     *_fiber_context_kind_name    (FiberSwitchKind kind);

/* The context of the calling thread's own stack. */
void     _fiber_context_init_main         (FiberContext  *self,
                                           FiberSwitchKind kind);
/* A context that, when first switched to, calls @entry (@arg) on the stack
 * [@stack_base, @stack_base + @stack_size).  @entry must never return: it
 * ends with _fiber_context_exit(). */
void     _fiber_context_init              (FiberContext  *self,
                                           FiberSwitchKind kind,
                                           void          *stack_base,
                                           gsize          stack_size,
                                           FiberContextEntry entry,
                                           void          *arg);
void     _fiber_context_clear             (FiberContext  *self);

/* First thing a coroutine entry does: completes the switch from @caller. */
static inline void
_fiber_context_entered (FiberContext *caller)
{
#ifdef FIBER_ASAN
  __sanitizer_finish_switch_fiber (NULL, &caller->stack_bottom, &caller->stack_size);
#else
  (void) caller;
#endif
}

/* Saves the current state in @from and continues @to; returns when
 * something switches back to @from. */
static inline void
_fiber_context_switch (FiberContext *from,
                       FiberContext *to)
{
#ifdef FIBER_ASAN
  __sanitizer_start_switch_fiber (&from->fake_stack, to->stack_bottom, to->stack_size);
#endif
#if FIBER_ASM_SWITCH_ENABLED
  if (G_LIKELY (to->kind == FIBER_SWITCH_ASM))
    _fiber_context_swap_asm (&from->sp, to->sp);
  else
#endif
    swapcontext (from->uc, to->uc);
#ifdef FIBER_ASAN
  /* Whoever resumed us is @to (the switch is symmetric). */
  __sanitizer_finish_switch_fiber (from->fake_stack, &to->stack_bottom, &to->stack_size);
#endif
}

/* Leaves @from for good (its stack may be freed once @to runs). */
G_GNUC_NORETURN void _fiber_context_exit  (FiberContext  *from,
                                           FiberContext  *to);

G_END_DECLS

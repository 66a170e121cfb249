/* fiber-context.c — context switch: hand-written asm and ucontext
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "fiber-context-private.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * Hand-written switch
 *
 * void _fiber_context_swap_asm (void **save_sp, void *load_sp);
 *
 * Pushes the callee-saved state on the current stack, stores the stack
 * pointer in *save_sp, loads load_sp and pops the state saved there.  A new
 * context gets a hand-made frame whose return address is the trampoline,
 * which calls entry (arg) with the frame-pointer chain terminated.
 * ------------------------------------------------------------------------ */

#if FIBER_ASM_SWITCH_ENABLED && defined(__x86_64__)

/* Frame, from the saved stack pointer up:
 *   0  MXCSR (4 bytes), x87 control word (2 bytes), padding
 *   8  r15   16 r14   24 r13 (entry)   32 r12 (arg)   40 rbx   48 rbp
 *  56  return address */
# define FRAME_WORDS 8

# if defined(__CET__) && (__CET__ & 1)
#  define FIBER_ENDBR "endbr64\n\t"
# else
#  define FIBER_ENDBR ""
# endif

__asm__ (
  ".text\n\t"
  ".globl  _fiber_context_swap_asm\n\t"
  ".hidden _fiber_context_swap_asm\n\t"
  ".type   _fiber_context_swap_asm, @function\n\t"
  ".p2align 4\n"
  "_fiber_context_swap_asm:\n\t"
  ".cfi_startproc\n\t"
  FIBER_ENDBR
  "pushq   %rbp\n\t"
  "pushq   %rbx\n\t"
  "pushq   %r12\n\t"
  "pushq   %r13\n\t"
  "pushq   %r14\n\t"
  "pushq   %r15\n\t"
  "subq    $8, %rsp\n\t"
  "stmxcsr (%rsp)\n\t"
  "fnstcw  4(%rsp)\n\t"
  "movq    %rsp, (%rdi)\n\t"
  "movq    %rsi, %rsp\n\t"
  "ldmxcsr (%rsp)\n\t"
  "fldcw   4(%rsp)\n\t"
  "addq    $8, %rsp\n\t"
  "popq    %r15\n\t"
  "popq    %r14\n\t"
  "popq    %r13\n\t"
  "popq    %r12\n\t"
  "popq    %rbx\n\t"
  "popq    %rbp\n\t"
  "ret\n\t"
  ".cfi_endproc\n\t"
  ".size   _fiber_context_swap_asm, .-_fiber_context_swap_asm\n\t"

  ".globl  _fiber_context_trampoline\n\t"
  ".hidden _fiber_context_trampoline\n\t"
  ".type   _fiber_context_trampoline, @function\n\t"
  ".p2align 4\n"
  "_fiber_context_trampoline:\n\t"
  ".cfi_startproc\n\t"
  ".cfi_undefined rip\n\t"
  FIBER_ENDBR
  "movq    %r12, %rdi\n\t"
  "callq   *%r13\n\t"
  "ud2\n\t"
  ".cfi_endproc\n\t"
  ".size   _fiber_context_trampoline, .-_fiber_context_trampoline\n\t"
  ".text\n"
);

void _fiber_context_trampoline (void);

static void *
asm_make_frame (void              *stack_base,
                gsize              stack_size,
                FiberContextEntry  entry,
                void              *arg)
{
  uintptr_t top = ((uintptr_t) stack_base + stack_size) & ~(uintptr_t) 15;
  guint64 *frame = (guint64 *) (top - FRAME_WORDS * sizeof (guint64));
  guint32 mxcsr;
  guint16 fpucw;

  /* A new coroutine starts with the floating-point modes of its creator. */
  __asm__ volatile ("stmxcsr %0" : "=m" (mxcsr));
  __asm__ volatile ("fnstcw %0" : "=m" (fpucw));

  memset (frame, 0, FRAME_WORDS * sizeof (guint64));
  frame[0] = (guint64) mxcsr | ((guint64) fpucw << 32);
  frame[3] = (guint64) (uintptr_t) entry;                          /* r13 */
  frame[4] = (guint64) (uintptr_t) arg;                            /* r12 */
  frame[6] = 0;                                                    /* rbp */
  frame[7] = (guint64) (uintptr_t) _fiber_context_trampoline;      /* ret */
  /* After the ret the stack pointer is `top` (16-byte aligned), so the
   * trampoline's call enters @entry with the alignment the ABI demands. */
  return frame;
}

#elif FIBER_ASM_SWITCH_ENABLED && defined(__aarch64__)

/* Written for AAPCS64 but, unlike the x86-64 switch, not run on this
 * project's CI (no aarch64 machine).  Frame, from the saved sp up (176 B):
 *   0 x19 (arg)  8 x20 (entry)  16..72 x21–x28  80 x29  88 x30 (return)
 *  96..152 d8–d15  160 FPCR  168 padding */
# define FRAME_BYTES 176

__asm__ (
  ".text\n\t"
  ".globl  _fiber_context_swap_asm\n\t"
  ".hidden _fiber_context_swap_asm\n\t"
  ".type   _fiber_context_swap_asm, %function\n\t"
  ".p2align 4\n"
  "_fiber_context_swap_asm:\n\t"
  ".cfi_startproc\n\t"
  "sub     sp, sp, #176\n\t"
  "stp     x19, x20, [sp, #0]\n\t"
  "stp     x21, x22, [sp, #16]\n\t"
  "stp     x23, x24, [sp, #32]\n\t"
  "stp     x25, x26, [sp, #48]\n\t"
  "stp     x27, x28, [sp, #64]\n\t"
  "stp     x29, x30, [sp, #80]\n\t"
  "stp     d8,  d9,  [sp, #96]\n\t"
  "stp     d10, d11, [sp, #112]\n\t"
  "stp     d12, d13, [sp, #128]\n\t"
  "stp     d14, d15, [sp, #144]\n\t"
  "mrs     x9, fpcr\n\t"
  "str     x9, [sp, #160]\n\t"
  "mov     x9, sp\n\t"
  "str     x9, [x0]\n\t"
  "mov     sp, x1\n\t"
  "ldp     x19, x20, [sp, #0]\n\t"
  "ldp     x21, x22, [sp, #16]\n\t"
  "ldp     x23, x24, [sp, #32]\n\t"
  "ldp     x25, x26, [sp, #48]\n\t"
  "ldp     x27, x28, [sp, #64]\n\t"
  "ldp     x29, x30, [sp, #80]\n\t"
  "ldp     d8,  d9,  [sp, #96]\n\t"
  "ldp     d10, d11, [sp, #112]\n\t"
  "ldp     d12, d13, [sp, #128]\n\t"
  "ldp     d14, d15, [sp, #144]\n\t"
  "ldr     x9, [sp, #160]\n\t"
  "msr     fpcr, x9\n\t"
  "add     sp, sp, #176\n\t"
  "ret\n\t"
  ".cfi_endproc\n\t"
  ".size   _fiber_context_swap_asm, .-_fiber_context_swap_asm\n\t"

  ".globl  _fiber_context_trampoline\n\t"
  ".hidden _fiber_context_trampoline\n\t"
  ".type   _fiber_context_trampoline, %function\n\t"
  ".p2align 4\n"
  "_fiber_context_trampoline:\n\t"
  ".cfi_startproc\n\t"
  ".cfi_undefined x30\n\t"
  "mov     x0, x19\n\t"
  "blr     x20\n\t"
  "brk     #0\n\t"
  ".cfi_endproc\n\t"
  ".size   _fiber_context_trampoline, .-_fiber_context_trampoline\n\t"
  ".text\n"
);

void _fiber_context_trampoline (void);

static void *
asm_make_frame (void              *stack_base,
                gsize              stack_size,
                FiberContextEntry  entry,
                void              *arg)
{
  uintptr_t top = ((uintptr_t) stack_base + stack_size) & ~(uintptr_t) 15;
  guint64 *frame = (guint64 *) (top - FRAME_BYTES);
  guint64 fpcr;

  __asm__ volatile ("mrs %0, fpcr" : "=r" (fpcr));

  memset (frame, 0, FRAME_BYTES);
  frame[0] = (guint64) (uintptr_t) arg;                            /* x19 */
  frame[1] = (guint64) (uintptr_t) entry;                          /* x20 */
  frame[10] = 0;                                                   /* x29 */
  frame[11] = (guint64) (uintptr_t) _fiber_context_trampoline;     /* x30 */
  frame[20] = fpcr;
  return frame;
}

#else

/* No asm switch in this build: keep the symbol so the header's prototype
 * has a definition; it is never called. */
void
_fiber_context_swap_asm (void **save_sp,
                         void  *load_sp)
{
  g_assert_not_reached ();
}

#endif

/* ------------------------------------------------------------------------ */

FiberSwitchKind
_fiber_context_default_kind (void)
{
  static gsize kind;

  if (g_once_init_enter (&kind))
    {
      const char *env = g_getenv ("FIBER_COROUTINE_SWITCH");
      FiberSwitchKind value = FIBER_ASM_SWITCH_ENABLED ? FIBER_SWITCH_ASM
                                                       : FIBER_SWITCH_UCONTEXT;

      if (env != NULL && g_str_equal (env, "ucontext"))
        value = FIBER_SWITCH_UCONTEXT;
      /* 0 cannot be stored by g_once_init_leave: offset by one. */
      g_once_init_leave (&kind, (gsize) value + 1);
    }
  return (FiberSwitchKind) (kind - 1);
}

gboolean
_fiber_context_kind_available (FiberSwitchKind kind)
{
  if (kind == FIBER_SWITCH_ASM)
    return FIBER_ASM_SWITCH_ENABLED;
  return kind == FIBER_SWITCH_UCONTEXT;
}

const char *
_fiber_context_kind_name (FiberSwitchKind kind)
{
  return kind == FIBER_SWITCH_ASM ? "asm-" FIBER_ASM_SWITCH_ARCH : "ucontext";
}

void
_fiber_context_init_main (FiberContext    *self,
                          FiberSwitchKind  kind)
{
  memset (self, 0, sizeof *self);
  self->kind = kind;
  if (kind == FIBER_SWITCH_UCONTEXT)
    self->uc = g_new0 (ucontext_t, 1);
}

static void
ucontext_trampoline (unsigned int hi,
                     unsigned int lo)
{
  FiberContext *self = (FiberContext *) (uintptr_t) (((guint64) hi << 32) | (guint64) lo);

  self->entry (self->arg);
  abort ();
}

void
_fiber_context_init (FiberContext      *self,
                     FiberSwitchKind    kind,
                     void              *stack_base,
                     gsize              stack_size,
                     FiberContextEntry  entry,
                     void              *arg)
{
  g_assert (_fiber_context_kind_available (kind));

  memset (self, 0, sizeof *self);
  self->kind = kind;
  self->entry = entry;
  self->arg = arg;
  self->stack_bottom = stack_base;
  self->stack_size = stack_size;

#if FIBER_ASM_SWITCH_ENABLED
  if (kind == FIBER_SWITCH_ASM)
    {
      self->sp = asm_make_frame (stack_base, stack_size, entry, arg);
      return;
    }
#endif

  {
    guint64 ptr = (guint64) (uintptr_t) self;

    self->uc = g_new0 (ucontext_t, 1);
    if (getcontext (self->uc) != 0)
      g_error ("getcontext failed: %s", g_strerror (errno));
    self->uc->uc_stack.ss_sp = stack_base;
    self->uc->uc_stack.ss_size = stack_size;
    self->uc->uc_link = NULL;
    makecontext (self->uc, (void (*) (void)) ucontext_trampoline, 2,
                 (unsigned int) (ptr >> 32), (unsigned int) (ptr & 0xffffffffu));
  }
}

void
_fiber_context_clear (FiberContext *self)
{
  g_clear_pointer (&self->uc, g_free);
  self->sp = NULL;
}

void
_fiber_context_exit (FiberContext *from,
                     FiberContext *to)
{
#ifdef FIBER_ASAN
  /* NULL: the fake stack of @from is not needed any more. */
  __sanitizer_start_switch_fiber (NULL, to->stack_bottom, to->stack_size);
#endif
#if FIBER_ASM_SWITCH_ENABLED
  if (to->kind == FIBER_SWITCH_ASM)
    _fiber_context_swap_asm (&from->sp, to->sp);
  else
#endif
    setcontext (to->uc);
  abort ();
}

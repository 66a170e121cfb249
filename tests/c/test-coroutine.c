/* test-coroutine.c — stacks, both context switches, the scheduler and the
 * await primitives (in and outside coroutines)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <fiber.h>

#include <errno.h>
#include <fcntl.h>
#include <fenv.h>
#include <glib-unix.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "fiber-scheduler-private.h"
#include "fiber-test-util.h"

#define OVERFLOW_CHILD_ARG "--overflow-child"

static const FiberSwitchKind kinds[] = { FIBER_SWITCH_ASM, FIBER_SWITCH_UCONTEXT };

static gboolean
skip_unless_available (FiberSwitchKind kind)
{
  if (_fiber_context_kind_available (kind))
    return FALSE;
  g_test_skip ("this context switch is not built on this architecture");
  return TRUE;
}

/* A scheduler on a fresh context, made thread-default for the test. */
typedef struct
{
  GMainContext   *context;
  FiberScheduler *sched;
} Fixture;

static void
fixture_init (Fixture         *fx,
              FiberSwitchKind  kind,
              gsize            stack_size)
{
  g_autoptr(GError) error = NULL;

  fx->context = g_main_context_new ();
  g_main_context_push_thread_default (fx->context);
  fx->sched = _fiber_scheduler_new (fx->context, stack_size, kind, &error);
  g_assert_no_error (error);
  g_assert_nonnull (fx->sched);
}

static void
fixture_run (Fixture *fx)
{
  while (_fiber_scheduler_get_n_coroutines (fx->sched) > 0)
    g_main_context_iteration (fx->context, TRUE);
}

static void
fixture_clear (Fixture *fx)
{
  _fiber_scheduler_unref (fx->sched);
  g_main_context_pop_thread_default (fx->context);
  while (g_main_context_iteration (fx->context, FALSE))
    ;
  g_main_context_unref (fx->context);
}

static void
spawn (Fixture            *fx,
       FiberCoroutineFunc  func,
       gpointer            data)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (_fiber_scheduler_spawn (fx->sched, func, data, &error));
  g_assert_no_error (error);
}

/* ---- raw switch: values survive suspension --------------------------------- */

typedef struct
{
  guint64  fib;       /* coroutine → main */
  double   real;
  guint    steps;
  int      round_in;  /* rounding mode seen inside after the main changed its own */
} RawShared;

static void
raw_body (gpointer data)
{
  RawShared *shared = data;
  /* Many live locals, so that callee-saved registers and stack slots both
   * carry state across the switches. */
  guint64 a = 0, b = 1;
  double x = 1.0, y = 0.5;
  guint32 mix = 0x9e3779b9u;
  volatile char pad[512];

  memset ((char *) pad, 0x5a, sizeof pad);
  for (guint i = 0; i < 90; i++)
    {
      guint64 t = a + b;

      fesetround (FE_TONEAREST);
      a = b;
      b = t;
      x = x * 1.5 + y;
      y = y / 2.0;
      mix = (mix << 5) ^ (mix >> 27) ^ i;
      shared->fib = a;
      shared->real = x;
      shared->steps = i + 1;
      /* this coroutine's floating-point mode must survive the switches,
       * whatever the main side sets meanwhile */
      fesetround (FE_UPWARD);
      _fiber_coroutine_suspend ();
      shared->round_in = fegetround ();
      g_assert_cmpint (pad[i], ==, 0x5a);
    }
  g_assert_cmpuint (mix, !=, 0);
  fesetround (FE_TONEAREST);
}

static void
test_raw_switch (gconstpointer data)
{
  FiberSwitchKind kind = GPOINTER_TO_INT (data);
  g_autoptr(GError) error = NULL;
  FiberContext main_ctx;
  FiberCoroutine *co;
  FiberStack *stack;
  RawShared shared = { 0, };
  guint64 a = 0, b = 1;
  double x = 1.0, y = 0.5;
  guint i = 0;

  if (skip_unless_available (kind))
    return;

  stack = _fiber_stack_new (FIBER_STACK_DEFAULT_SIZE, &error);
  g_assert_no_error (error);
  _fiber_context_init_main (&main_ctx, kind);
  co = _fiber_coroutine_new (stack, kind, raw_body, &shared);

  while (!_fiber_coroutine_is_finished (co))
    {
      fesetround (FE_DOWNWARD);
      _fiber_coroutine_resume (co, &main_ctx);
      g_assert_cmpint (fegetround (), ==, FE_DOWNWARD);
      fesetround (FE_TONEAREST);
      if (_fiber_coroutine_is_finished (co))
        break;

      /* the same sequence computed on this side */
      {
        guint64 t = a + b;
        a = b;
        b = t;
        x = x * 1.5 + y;
        y = y / 2.0;
      }
      i++;
      g_assert_cmpuint (shared.steps, ==, i);
      g_assert_cmpuint (shared.fib, ==, a);
      g_assert_cmpfloat (shared.real, ==, x);
      if (i > 1)
        g_assert_cmpint (shared.round_in, ==, FE_UPWARD);
    }
  g_assert_cmpuint (i, ==, 90);
  g_assert_cmpuint (shared.fib, ==, G_GUINT64_CONSTANT (2880067194370816120));

  _fiber_stack_free (_fiber_coroutine_free (co));
  _fiber_context_clear (&main_ctx);
  fiber_test_assert_no_leaks (2000);
}

/* ---- raw switch: a coroutine resuming another ------------------------------ */

typedef struct
{
  FiberCoroutine *inner;
  GString        *trace;
} NestShared;

static void
nest_inner (gpointer data)
{
  NestShared *shared = data;

  g_string_append (shared->trace, "i1 ");
  _fiber_coroutine_suspend ();
  g_string_append (shared->trace, "i2 ");
}

static void
nest_outer (gpointer data)
{
  NestShared *shared = data;

  g_string_append (shared->trace, "o1 ");
  _fiber_coroutine_resume (shared->inner, &_fiber_coroutine_get_current ()->ctx);
  g_string_append (shared->trace, "o2 ");
  _fiber_coroutine_suspend ();
  _fiber_coroutine_resume (shared->inner, &_fiber_coroutine_get_current ()->ctx);
  g_string_append (shared->trace, "o3");
}

static void
test_raw_nested (gconstpointer data)
{
  FiberSwitchKind kind = GPOINTER_TO_INT (data);
  FiberContext main_ctx;
  FiberCoroutine *outer, *inner;
  NestShared shared;

  if (skip_unless_available (kind))
    return;

  shared.trace = g_string_new (NULL);
  _fiber_context_init_main (&main_ctx, kind);
  inner = _fiber_coroutine_new (_fiber_stack_new (64 * 1024, NULL), kind,
                                nest_inner, &shared);
  outer = _fiber_coroutine_new (_fiber_stack_new (64 * 1024, NULL), kind,
                                nest_outer, &shared);
  shared.inner = inner;

  _fiber_coroutine_resume (outer, &main_ctx);
  g_string_append (shared.trace, "m ");
  g_assert_null (_fiber_coroutine_get_current ());
  _fiber_coroutine_resume (outer, &main_ctx);
  g_assert_true (_fiber_coroutine_is_finished (outer));
  g_assert_true (_fiber_coroutine_is_finished (inner));
  g_assert_cmpstr (shared.trace->str, ==, "o1 i1 o2 m i2 o3");

  _fiber_stack_free (_fiber_coroutine_free (outer));
  _fiber_stack_free (_fiber_coroutine_free (inner));
  _fiber_context_clear (&main_ctx);
  g_string_free (shared.trace, TRUE);
}

/* ---- scheduler: many coroutines, strict round-robin ------------------------ */

#define N_MANY   1000
#define N_ROUNDS 10

typedef struct
{
  guint  next;        /* global step counter */
  guint  ids[N_MANY];
  guint  errors;
} ManyShared;

typedef struct
{
  ManyShared *shared;
  guint       id;
} ManyArg;

static void
many_body (gpointer data)
{
  ManyArg *arg = data;
  ManyShared *shared = arg->shared;

  g_assert_true (fiber_in_coroutine ());
  for (guint round = 0; round < N_ROUNDS; round++)
    {
      /* FIFO ready queue: step k of coroutine i is global step k·N + i */
      if (shared->next != round * N_MANY + arg->id)
        shared->errors++;
      shared->next++;
      fiber_yield ();
    }
  shared->ids[arg->id]++;
}

static void
test_many (gconstpointer data)
{
  FiberSwitchKind kind = GPOINTER_TO_INT (data);
  g_autofree ManyArg *args = g_new0 (ManyArg, N_MANY);
  g_autofree ManyShared *shared = g_new0 (ManyShared, 1);
  Fixture fx;

  if (skip_unless_available (kind))
    return;

  fixture_init (&fx, kind, 64 * 1024);
  for (guint i = 0; i < N_MANY; i++)
    {
      args[i].shared = shared;
      args[i].id = i;
      spawn (&fx, many_body, &args[i]);
    }
  g_assert_cmpuint (_fiber_scheduler_get_n_coroutines (fx.sched), ==, N_MANY);
  fixture_run (&fx);
  g_assert_cmpuint (shared->errors, ==, 0);
  g_assert_cmpuint (shared->next, ==, N_MANY * N_ROUNDS);
  for (guint i = 0; i < N_MANY; i++)
    g_assert_cmpuint (shared->ids[i], ==, 1);
  g_assert_false (fiber_in_coroutine ());
  fixture_clear (&fx);
  fiber_test_assert_no_leaks (2000);
}

/* ---- scheduler: sleeps wake in deadline order ------------------------------ */

typedef struct
{
  GString *order;
  double   seconds;
  char     name;
} SleepArg;

static void
sleep_body (gpointer data)
{
  SleepArg *arg = data;
  g_autoptr(GError) error = NULL;

  g_assert_true (fiber_sleep (arg->seconds, NULL, &error));
  g_assert_no_error (error);
  g_string_append_c (arg->order, arg->name);
}

static void
test_sleep_order (gconstpointer data)
{
  FiberSwitchKind kind = GPOINTER_TO_INT (data);
  g_autoptr(GString) order = g_string_new (NULL);
  SleepArg args[] = {
    { order, 0.15, 'c' }, { order, 0.05, 'a' }, { order, 0.10, 'b' }, { order, 0.0, '0' },
  };
  gint64 start;
  Fixture fx;

  if (skip_unless_available (kind))
    return;

  fixture_init (&fx, kind, FIBER_STACK_DEFAULT_SIZE);
  for (guint i = 0; i < G_N_ELEMENTS (args); i++)
    spawn (&fx, sleep_body, &args[i]);
  start = g_get_monotonic_time ();
  fixture_run (&fx);
  g_assert_cmpstr (order->str, ==, "0abc");
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 150000);
  fixture_clear (&fx);
  fiber_test_assert_no_leaks (2000);
}

/* ---- 10,000 sleepers on one scheduler ------------------------------------- */

/* How long the sleepers wait for each other before the test gives up: a
 * guard against a hang, far above the fraction of a second it takes. */
#define ALL_ASLEEP_GUARD_S 60

typedef struct
{
  guint         n;
  guint         n_asleep;     /* coroutines that reached their first sleep */
  guint         done;         /* coroutines whose own 0.2 s sleep ran out */
  guint         timed_out;
  GCancellable *all_asleep;   /* cancelled by the last one to fall asleep */
} Sleepers;

static void
sleeper_body (gpointer data)
{
  Sleepers *sleepers = data;

  /* Everyone sleeps until the last of them has fallen asleep too: that
   * only happens if the scheduler runs all of them side by side. */
  if (++sleepers->n_asleep == sleepers->n)
    g_cancellable_cancel (sleepers->all_asleep);
  else if (fiber_sleep (ALL_ASLEEP_GUARD_S, sleepers->all_asleep, NULL))
    {
      sleepers->timed_out++;
      return;
    }
  /* then each one waits for its own timer, 10,000 of them at once */
  if (fiber_sleep (0.2, NULL, NULL))
    sleepers->done++;
}

static void
test_ten_thousand_sleepers (void)
{
  Sleepers sleepers = { 10000, 0, 0, 0, g_cancellable_new () };
  Fixture fx;
  gint64 start;

  fixture_init (&fx, _fiber_context_default_kind (), FIBER_STACK_DEFAULT_SIZE);
  start = g_get_monotonic_time ();
  for (guint i = 0; i < sleepers.n; i++)
    spawn (&fx, sleeper_body, &sleepers);
  fixture_run (&fx);
  g_test_message ("10000 coroutines asleep at once, then 0.2 s each: %.3f s",
                  (g_get_monotonic_time () - start) / 1e6);
  if (sleepers.timed_out > 0)
    g_error ("only %u of %u coroutines were asleep at once after %d s",
             sleepers.n_asleep, sleepers.n, ALL_ASLEEP_GUARD_S);
  g_assert_cmpuint (sleepers.n_asleep, ==, sleepers.n);
  g_assert_cmpuint (sleepers.done, ==, sleepers.n);
  g_clear_object (&sleepers.all_asleep);
  fixture_clear (&fx);
  fiber_test_assert_no_leaks (2000);
}

/* ---- fd awaits ------------------------------------------------------------- */

typedef struct
{
  int          fds[2];
  GString     *trace;
  GIOCondition got;
} PipeShared;

static void
pipe_reader (gpointer data)
{
  PipeShared *shared = data;
  g_autoptr(GError) error = NULL;
  char c;

  g_string_append (shared->trace, "r-wait ");
  shared->got = fiber_await_fd (shared->fds[0], G_IO_IN, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (read (shared->fds[0], &c, 1), ==, 1);
  g_string_append_printf (shared->trace, "r-got-%c", c);
}

static void
pipe_writer (gpointer data)
{
  PipeShared *shared = data;

  g_string_append (shared->trace, "w-sleep ");
  g_assert_true (fiber_sleep (0.05, NULL, NULL));
  g_string_append (shared->trace, "w-write ");
  g_assert_cmpint (write (shared->fds[1], "x", 1), ==, 1);
}

static void
test_await_fd (gconstpointer data)
{
  FiberSwitchKind kind = GPOINTER_TO_INT (data);
  PipeShared shared = { { -1, -1 }, NULL, 0 };
  Fixture fx;

  if (skip_unless_available (kind))
    return;

  g_assert_true (g_unix_open_pipe (shared.fds, FD_CLOEXEC, NULL));
  shared.trace = g_string_new (NULL);
  fixture_init (&fx, kind, FIBER_STACK_DEFAULT_SIZE);
  spawn (&fx, pipe_reader, &shared);
  spawn (&fx, pipe_writer, &shared);
  fixture_run (&fx);
  g_assert_cmpstr (shared.trace->str, ==, "r-wait w-sleep w-write r-got-x");
  g_assert_true (shared.got & G_IO_IN);
  fixture_clear (&fx);
  close (shared.fds[0]);
  close (shared.fds[1]);
  g_string_free (shared.trace, TRUE);
  fiber_test_assert_no_leaks (2000);
}

/* ---- GIO awaits ------------------------------------------------------------ */

/* A small asynchronous operation: returns @value after @msec, computed on a
 * GTask worker thread. */
static void
slow_thread (GTask        *task,
             gpointer      source,
             gpointer      task_data,
             GCancellable *cancellable)
{
  g_usleep (GPOINTER_TO_UINT (task_data) % 1000 * 1000);
  g_task_return_int (task, GPOINTER_TO_UINT (task_data) / 1000);
}

static void
slow_async (guint                msec,
            guint                value,
            GAsyncReadyCallback  callback,
            gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (NULL, NULL, callback, user_data);

  g_assert_cmpuint (msec, <, 1000);
  g_task_set_task_data (task, GUINT_TO_POINTER (value * 1000 + msec), NULL);
  g_task_run_in_thread (task, slow_thread);
}

static guint
slow_finish (GAsyncResult *result)
{
  g_autoptr(GError) error = NULL;
  gssize v = g_task_propagate_int (G_TASK (result), &error);

  g_assert_no_error (error);
  return (guint) v;
}

static guint
await_slow (guint msec,
            guint value)
{
  g_autoptr(FiberAwait) await = fiber_await_new ();
  g_autoptr(GError) error = NULL;
  GAsyncResult *result;

  slow_async (msec, value, fiber_await_callback, await);
  result = fiber_await_wait (await, &error);
  g_assert_no_error (error);
  g_assert_true (fiber_await_is_completed (await));
  /* waiting again hands back the same result */
  g_assert_true (fiber_await_wait (await, NULL) == result);
  return slow_finish (result);
}

typedef struct
{
  guint    ticks;
  gboolean done;
  guint    sum;
} NestedShared;

/* An await inside a helper that is itself between the start and the wait
 * of an outer await; then two awaits waited in the order opposite to their
 * start. */
static void
nested_body (gpointer data)
{
  NestedShared *shared = data;
  g_autoptr(FiberAwait) outer = fiber_await_new ();
  g_autoptr(FiberAwait) first = NULL;
  g_autoptr(FiberAwait) second = NULL;
  GAsyncResult *r1, *r2;

  slow_async (60, 1, fiber_await_callback, outer);
  shared->sum += await_slow (10, 2);
  shared->sum += slow_finish (fiber_await_wait (outer, NULL));

  first = fiber_await_new ();
  second = fiber_await_new ();
  slow_async (40, 10, fiber_await_callback, first);
  slow_async (5, 20, fiber_await_callback, second);
  r1 = fiber_await_wait (first, NULL);
  r2 = fiber_await_wait (second, NULL);
  shared->sum += slow_finish (r1) + slow_finish (r2);
  shared->done = TRUE;
}

static void
ticker_body (gpointer data)
{
  NestedShared *shared = data;

  while (!shared->done)
    {
      shared->ticks++;
      fiber_sleep (0.005, NULL, NULL);
    }
}

static void
test_await_nested (gconstpointer data)
{
  FiberSwitchKind kind = GPOINTER_TO_INT (data);
  NestedShared shared = { 0, };
  Fixture fx;

  if (skip_unless_available (kind))
    return;

  fixture_init (&fx, kind, FIBER_STACK_DEFAULT_SIZE);
  spawn (&fx, nested_body, &shared);
  spawn (&fx, ticker_body, &shared);
  fixture_run (&fx);
  g_assert_cmpuint (shared.sum, ==, 33);
  /* the awaits took ≥ 100 ms; the ticker ran meanwhile */
  g_assert_cmpuint (shared.ticks, >=, 3);
  fixture_clear (&fx);
  fiber_test_assert_no_leaks (2000);
}

/* A coroutine awaiting g_subprocess_wait_async lets others run. */
typedef struct
{
  gboolean done;
  guint    ticks;
  guint    ticks_when_done;
  int      status;
} SubprocessShared;

static void
subprocess_body (gpointer data)
{
  SubprocessShared *shared = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(FiberAwait) await = NULL;
  GAsyncResult *result;

  proc = g_subprocess_new (G_SUBPROCESS_FLAGS_NONE, &error, "sleep", "0.3", NULL);
  g_assert_no_error (error);
  await = fiber_await_new ();
  g_subprocess_wait_async (proc, NULL, fiber_await_callback, await);
  result = fiber_await_wait (await, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_wait_finish (proc, result, &error));
  g_assert_no_error (error);
  shared->status = g_subprocess_get_exit_status (proc);
  shared->ticks_when_done = shared->ticks;
  shared->done = TRUE;
}

static void
subprocess_ticker (gpointer data)
{
  SubprocessShared *shared = data;

  while (!shared->done)
    {
      shared->ticks++;
      fiber_sleep (0.01, NULL, NULL);
    }
}

static void
test_await_subprocess (gconstpointer data)
{
  FiberSwitchKind kind = GPOINTER_TO_INT (data);
  SubprocessShared shared = { 0, };
  Fixture fx;

  if (skip_unless_available (kind))
    return;

  fixture_init (&fx, kind, FIBER_STACK_DEFAULT_SIZE);
  spawn (&fx, subprocess_body, &shared);
  spawn (&fx, subprocess_ticker, &shared);
  fixture_run (&fx);
  g_assert_cmpint (shared.status, ==, 0);
  g_test_message ("ticks while the subprocess ran: %u", shared.ticks_when_done);
  g_assert_cmpuint (shared.ticks_when_done, >=, 5);
  fixture_clear (&fx);
  fiber_test_assert_no_leaks (2000);
}

/* ---- cancellation ---------------------------------------------------------- */

static gpointer
cancel_later (gpointer data)
{
  g_usleep (50000);
  g_cancellable_cancel (data);
  return NULL;
}

typedef struct
{
  GCancellable *cancellable;
  int           fd;
  double        slept;
  gboolean      sleep_cancelled;
  gboolean      fd_cancelled;
  gboolean      pre_cancelled;
} CancelShared;

static void
cancel_sleep_body (gpointer data)
{
  CancelShared *shared = data;
  g_autoptr(GError) error = NULL;
  gint64 start = g_get_monotonic_time ();

  g_assert_false (fiber_sleep (30.0, shared->cancellable, &error));
  shared->slept = (g_get_monotonic_time () - start) / 1e6;
  shared->sleep_cancelled = g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

static void
cancel_fd_body (gpointer data)
{
  CancelShared *shared = data;
  g_autoptr(GError) error = NULL;

  g_assert_cmpint (fiber_await_fd (shared->fd, G_IO_IN, shared->cancellable, &error), ==, 0);
  shared->fd_cancelled = g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  /* already cancelled: returns at once */
  g_clear_error (&error);
  g_assert_false (fiber_sleep (10.0, shared->cancellable, &error));
  shared->pre_cancelled = g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

static void
test_cancel (gconstpointer data)
{
  FiberSwitchKind kind = GPOINTER_TO_INT (data);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  CancelShared shared = { cancellable, -1, };
  GThread *thread;
  int fds[2];
  Fixture fx;

  if (skip_unless_available (kind))
    return;

  g_assert_true (g_unix_open_pipe (fds, FD_CLOEXEC, NULL));
  shared.fd = fds[0];
  fixture_init (&fx, kind, FIBER_STACK_DEFAULT_SIZE);
  spawn (&fx, cancel_sleep_body, &shared);
  spawn (&fx, cancel_fd_body, &shared);
  /* cancelled from another thread, while both wait */
  thread = g_thread_new ("canceller", cancel_later, cancellable);
  fixture_run (&fx);
  g_thread_join (thread);
  g_assert_true (shared.sleep_cancelled);
  g_assert_true (shared.fd_cancelled);
  g_assert_true (shared.pre_cancelled);
  g_assert_cmpfloat (shared.slept, <, 10.0);
  fixture_clear (&fx);
  close (fds[0]);
  close (fds[1]);
  fiber_test_assert_no_leaks (2000);
}

/* ---- outside a coroutine the primitives block ----------------------------- */

static gpointer
write_later (gpointer data)
{
  g_usleep (30000);
  g_assert_cmpint (write (GPOINTER_TO_INT (data), "y", 1), ==, 1);
  return NULL;
}

static void
blocking_checks (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  GMainContext *before = g_main_context_get_thread_default ();
  GThread *thread;
  gint64 start;
  int fds[2];
  char c;

  g_assert_false (fiber_in_coroutine ());
  fiber_yield ();

  start = g_get_monotonic_time ();
  g_assert_true (fiber_sleep (0.05, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 50000);

  g_assert_true (g_unix_open_pipe (fds, FD_CLOEXEC, NULL));
  thread = g_thread_new ("writer", write_later, GINT_TO_POINTER (fds[1]));
  g_assert_true (fiber_await_fd (fds[0], G_IO_IN, NULL, &error) & G_IO_IN);
  g_assert_no_error (error);
  g_assert_cmpint (read (fds[0], &c, 1), ==, 1);
  g_thread_join (thread);

  /* cancellation of a blocking sleep and fd wait */
  thread = g_thread_new ("canceller", cancel_later, cancellable);
  g_assert_cmpint (fiber_await_fd (fds[0], G_IO_IN, cancellable, &error), ==, 0);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_false (fiber_sleep (5.0, cancellable, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_thread_join (thread);
  close (fds[0]);
  close (fds[1]);

  /* GIO awaits iterate a private context; nested ones in LIFO order */
  g_assert_cmpuint (await_slow (20, 7), ==, 7);
  {
    g_autoptr(FiberAwait) outer = fiber_await_new ();
    guint inner_value;

    slow_async (30, 1, fiber_await_callback, outer);
    inner_value = await_slow (5, 2);
    g_assert_cmpuint (inner_value + slow_finish (fiber_await_wait (outer, NULL)), ==, 3);
  }

  proc = g_subprocess_new (G_SUBPROCESS_FLAGS_NONE, &error, "true", NULL);
  g_assert_no_error (error);
  {
    g_autoptr(FiberAwait) await = fiber_await_new ();
    GAsyncResult *result;

    g_subprocess_wait_async (proc, NULL, fiber_await_callback, await);
    result = fiber_await_wait (await, &error);
    g_assert_no_error (error);
    g_assert_true (g_subprocess_wait_finish (proc, result, &error));
    g_assert_true (g_subprocess_get_successful (proc));
  }

  /* the thread-default context is restored */
  g_assert_true (g_main_context_get_thread_default () == before);
}

static gpointer
blocking_thread (gpointer data)
{
  blocking_checks ();
  return NULL;
}

static void
test_outside_blocks (void)
{
  g_autoptr(GError) error = NULL;

  /* on the main thread ... */
  blocking_checks ();
  /* ... and on a thread whose thread-default context is the global one,
   * which nobody iterates meanwhile */
  g_thread_join (g_thread_new ("blocking", blocking_thread, NULL));

  /* bad input */
  g_assert_false (fiber_sleep (-1, NULL, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (fiber_sleep (NAN, NULL, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (fiber_sleep (INFINITY, NULL, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_cmpint (fiber_await_fd (-1, G_IO_IN, NULL, &error), ==, 0);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_cmpint (fiber_await_fd (0, 0, NULL, &error), ==, 0);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  {
    int fds[2];

    /* a closed descriptor */
    g_assert_true (g_unix_open_pipe (fds, FD_CLOEXEC, NULL));
    close (fds[0]);
    close (fds[1]);
    g_assert_cmpint (fiber_await_fd (fds[0], G_IO_IN, NULL, &error), ==, 0);
    g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
    g_clear_error (&error);
  }
  fiber_test_assert_no_leaks (2000);
}

/* An await created outside a coroutine cannot be waited in one, and the
 * other way round. */
typedef struct
{
  FiberAwait *outside;
  gboolean    checked;
} MixShared;

static void
mix_body (gpointer data)
{
  MixShared *shared = data;
  g_autoptr(GError) error = NULL;

  g_assert_null (fiber_await_wait (shared->outside, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_STATE);
  shared->checked = TRUE;
}

static void
test_await_misuse (void)
{
  g_autoptr(GError) error = NULL;
  MixShared shared = { NULL, FALSE };
  Fixture fx;

  fixture_init (&fx, _fiber_context_default_kind (), FIBER_STACK_DEFAULT_SIZE);
  shared.outside = fiber_await_new ();
  slow_async (1, 5, fiber_await_callback, shared.outside);
  spawn (&fx, mix_body, &shared);
  fixture_run (&fx);
  g_assert_true (shared.checked);
  g_assert_cmpuint (slow_finish (fiber_await_wait (shared.outside, &error)), ==, 5);
  g_assert_no_error (error);
  g_clear_object (&shared.outside);
  fixture_clear (&fx);

  /* bad scheduler parameters */
  g_assert_null (_fiber_scheduler_new (NULL, 100, FIBER_SWITCH_UCONTEXT, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
}

/* ---- stacks ---------------------------------------------------------------- */

/* TRUE when [start, end) lies in a PROT_NONE mapping of /proc/self/maps. */
static gboolean
range_is_inaccessible (guintptr start,
                       guintptr end)
{
  g_autofree char *maps = NULL;
  g_auto(GStrv) lines = NULL;

  g_assert_true (g_file_get_contents ("/proc/self/maps", &maps, NULL, NULL));
  lines = g_strsplit (maps, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      guint64 lo, hi;
      char perms[5];

      if (sscanf (lines[i], "%" G_GINT64_MODIFIER "x-%" G_GINT64_MODIFIER "x %4s",
                  &lo, &hi, perms) != 3)
        continue;
      if (lo <= start && end <= hi)
        return g_str_has_prefix (perms, "---");
    }
  return FALSE;
}

static void
count_body (gpointer data)
{
  guint *count = data;
  volatile char touch[4096];

  memset ((char *) touch, 1, sizeof touch);
  (*count)++;
}

static void
test_stacks (void)
{
  g_autoptr(GError) error = NULL;
  FiberStack *stack;
  guint count = 0;
  Fixture fx;

  stack = _fiber_stack_new (100 * 1024 + 1, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (stack->size % _fiber_stack_page_size (), ==, 0);
  g_assert_cmpuint (stack->size, >=, 100 * 1024 + 1);
  /* the usable part is writable, the guard below it is not */
  memset (stack->base, 0xab, stack->size);
  g_assert_true (range_is_inaccessible ((guintptr) stack->map,
                                        (guintptr) stack->base));
  g_assert_cmpuint (stack->base - stack->map, ==, _fiber_stack_guard_size ());
  _fiber_stack_free (stack);

  g_assert_null (_fiber_stack_new (1024, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  /* finished coroutines give their stacks back; a few are kept */
  fixture_init (&fx, _fiber_context_default_kind (), 64 * 1024);
  for (guint i = 0; i < 100; i++)
    spawn (&fx, count_body, &count);
  fixture_run (&fx);
  g_assert_cmpuint (count, ==, 100);
  for (guint round = 0; round < 50; round++)
    {
      spawn (&fx, count_body, &count);
      fixture_run (&fx);
    }
  g_assert_cmpuint (count, ==, 150);
  g_assert_cmpuint (_fiber_scheduler_get_stack_size (fx.sched), ==, 64 * 1024);
  fixture_clear (&fx);
  fiber_test_assert_no_leaks (2000);
}

/* ---- a stack overflow hits the guard --------------------------------------- */

static guint
recurse (guint depth)
{
  volatile char frame[1024];

  /* never true; keeps the compiler from calling this infinite recursion */
  if (depth == G_MAXUINT)
    return 0;
  frame[0] = (char) depth;
  frame[sizeof frame - 1] = (char) depth;
  /* not a tail call: the frame must stay live */
  return recurse (depth + 1) + frame[0] + frame[sizeof frame - 1];
}

static void
overflow_body (gpointer data)
{
  *(guint *) data = recurse (0);
}

static int
overflow_child_main (void)
{
  struct rlimit no_core = { 0, 0 };
  guint result = 0;
  Fixture fx;

  setrlimit (RLIMIT_CORE, &no_core);
  fixture_init (&fx, _fiber_context_default_kind (), 64 * 1024);
  spawn (&fx, overflow_body, &result);
  fixture_run (&fx);
  /* not reached */
  return 0;
}

static void
test_guard_page (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) proc = NULL;
  g_autofree char *self_exe = g_file_read_link ("/proc/self/exe", &error);
  g_autofree char *err_text = NULL;
  int sig;

  g_assert_no_error (error);
  proc = g_subprocess_new (G_SUBPROCESS_FLAGS_STDERR_PIPE | G_SUBPROCESS_FLAGS_STDOUT_SILENCE,
                           &error, self_exe, OVERFLOW_CHILD_ARG, NULL);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_communicate_utf8 (proc, NULL, NULL, NULL, &err_text, &error));
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_signaled (proc));
  sig = g_subprocess_get_term_sig (proc);
  g_test_message ("overflowing child died of signal %d; stderr: %s", sig, err_text);
#ifdef FIBER_ASAN
  /* AddressSanitizer catches the SIGSEGV, reports a stack overflow and
   * aborts (abort_on_error=1 in the test environment). */
  g_assert_true (sig == SIGSEGV || sig == SIGABRT);
  g_assert_nonnull (strstr (err_text, "AddressSanitizer"));
#else
  g_assert_cmpint (sig, ==, SIGSEGV);
#endif
  fiber_test_assert_no_leaks (2000);
}

int
main (int argc, char **argv)
{
  int ret;

  if (argc == 2 && g_str_equal (argv[1], OVERFLOW_CHILD_ARG))
    return overflow_child_main ();

  fiber_init (&argc, &argv, NULL);
  fiber_test_init_environment ();
  g_test_init (&argc, &argv, NULL);

  for (guint i = 0; i < G_N_ELEMENTS (kinds); i++)
    {
      const char *name = kinds[i] == FIBER_SWITCH_ASM ? "asm" : "ucontext";
      gconstpointer kind = GINT_TO_POINTER (kinds[i]);
      struct { const char *path; GTestDataFunc func; } cases[] = {
        { "raw-switch", test_raw_switch },
        { "raw-nested", test_raw_nested },
        { "many", test_many },
        { "sleep-order", test_sleep_order },
        { "await-fd", test_await_fd },
        { "await-nested", test_await_nested },
        { "await-subprocess", test_await_subprocess },
        { "cancel", test_cancel },
      };

      for (guint j = 0; j < G_N_ELEMENTS (cases); j++)
        {
          g_autofree char *path = g_strdup_printf ("/coroutine/%s/%s", name, cases[j].path);
          g_test_add_data_func (path, kind, cases[j].func);
        }
    }
  g_test_add_func ("/coroutine/ten-thousand-sleepers", test_ten_thousand_sleepers);
  g_test_add_func ("/coroutine/outside-blocks", test_outside_blocks);
  g_test_add_func ("/coroutine/await-misuse", test_await_misuse);
  g_test_add_func ("/coroutine/stacks", test_stacks);
  g_test_add_func ("/coroutine/guard-page", test_guard_page);

  ret = g_test_run ();
  fiber_test_cleanup_environment ();
  return ret;
}

/* bench-inproc.c — the in-process pools' benchmarks (bench/inproc.py)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   bench-inproc [--json] [--quick] [--only thread|switch|sleep]
 *                [--tasks N] [--seconds S]
 *
 * thread  The `thread` pool (2 threads, public API) running fiber.noop:
 *         map with chunksize 1, map with the automatic chunksize, and
 *         apply_async ×N then get each; next to a raw GThreadPool (2
 *         threads) running the same noop (build and drop an empty tuple)
 *         in the same run.  items/s, best of a few rounds, interleaved.
 * switch  The coroutine context switch, for each switch kind built (asm,
 *         ucontext): a bare _fiber_context_switch ping-pong and the
 *         coroutine resume/suspend pair (ns per switch), and yields/s
 *         through a FiberScheduler (fiber_yield, 2 and 100 coroutines).
 * sleep   N coroutine tasks each sleeping S seconds (fiber.sleep) on a
 *         `coroutine` pool of N coroutines (one scheduler thread): map, and
 *         apply_async ×N then get each.  Wall seconds, best of a few.
 *
 * Uses internal API (the switch), so it links the internal archive.
 */

#include <fiber.h>

#include <stdio.h>
#include <stdlib.h>

#include "fiber-scheduler-private.h"

static gboolean opt_json;
static gboolean opt_quick;
static char    *opt_only;
static int      opt_tasks = 10000;
static double   opt_seconds = 0.2;

static GString *json;           /* the JSON object being built */

static double
now_s (void)
{
  return g_get_monotonic_time () / (double) G_USEC_PER_SEC;
}

/* Cycle-accurate enough for ns figures over millions of switches. */
static double
precise_now_s (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
json_add (const char *key,
          double      value)
{
  g_string_append_printf (json, "%s\"%s\": %.6g",
                          json->str[json->len - 1] == '{' ? "" : ", ", key, value);
}

static void
json_open (const char *key)
{
  g_string_append_printf (json, "%s\"%s\": {",
                          json->str[json->len - 1] == '{' ? "" : ", ", key);
}

static void
json_close (void)
{
  g_string_append_c (json, '}');
}

static void
say (const char *format,
     ...) G_GNUC_PRINTF (1, 2);

static void
say (const char *format,
     ...)
{
  va_list ap;

  if (opt_json)
    return;
  va_start (ap, format);
  vprintf (format, ap);
  va_end (ap);
  fflush (stdout);
}

/* ---- thread pool vs raw GThreadPool ----------------------------------------- */

typedef struct
{
  GMutex lock;
  GCond  cond;
  int    remaining;      /* atomic */
} RawState;

static void
raw_noop (gpointer data,
          gpointer user_data)
{
  RawState *state = user_data;

  /* the same work as fiber.noop: an empty tuple, made and dropped */
  g_variant_unref (g_variant_ref_sink (g_variant_new ("()")));

  if (g_atomic_int_dec_and_test (&state->remaining))
    {
      g_mutex_lock (&state->lock);
      g_cond_signal (&state->cond);
      g_mutex_unlock (&state->lock);
    }
}

static double
bench_raw_threadpool (guint n)
{
  g_autoptr(GError) error = NULL;
  RawState state;
  GThreadPool *pool;
  double start, elapsed;

  g_mutex_init (&state.lock);
  g_cond_init (&state.cond);
  state.remaining = (int) n;
  pool = g_thread_pool_new (raw_noop, &state, 2, TRUE, &error);
  g_assert_no_error (error);

  /* exclusive: both threads exist before the clock starts, as the fiber pool's do */
  start = now_s ();
  for (guint i = 0; i < n; i++)
    g_thread_pool_push (pool, GUINT_TO_POINTER (i + 1), NULL);
  g_mutex_lock (&state.lock);
  while (g_atomic_int_get (&state.remaining) > 0)
    g_cond_wait (&state.cond, &state.lock);
  g_mutex_unlock (&state.lock);
  elapsed = now_s () - start;

  g_thread_pool_free (pool, FALSE, TRUE);
  g_mutex_clear (&state.lock);
  g_cond_clear (&state.cond);
  return n / elapsed;
}

static GVariant *
empty_tuples (guint n)
{
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE ("a()"));
  for (guint i = 0; i < n; i++)
    g_variant_builder_add (&b, "()");
  return g_variant_ref_sink (g_variant_builder_end (&b));
}

static gboolean
bench_fiber_map (FiberPool  *pool,
                 GVariant   *items,
                 guint       chunksize,
                 double     *rate,
                 GError    **error)
{
  g_autoptr(GVariant) out = NULL;
  guint n = (guint) g_variant_n_children (items);
  double start = now_s ();

  out = fiber_pool_map (pool, "fiber.noop", items, chunksize, error);
  if (out == NULL)
    return FALSE;
  *rate = n / (now_s () - start);
  if (g_variant_n_children (out) != n)
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_FAILED, "map returned %" G_GSIZE_FORMAT
                   " results for %u items", g_variant_n_children (out), n);
      return FALSE;
    }
  return TRUE;
}

static gboolean
bench_fiber_apply_async (FiberPool  *pool,
                         guint       n,
                         double     *rate,
                         GError    **error)
{
  g_autoptr(GPtrArray) results = g_ptr_array_new_full (n, g_object_unref);
  double start = now_s ();

  for (guint i = 0; i < n; i++)
    g_ptr_array_add (results, fiber_pool_apply_async (pool, "fiber.noop", NULL, NULL,
                                                      NULL, NULL));
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GVariant) value = fiber_apply_result_get (g_ptr_array_index (results, i),
                                                          -1, error);
      if (value == NULL)
        return FALSE;
    }
  *rate = n / (now_s () - start);
  return TRUE;
}

static gboolean
bench_thread (GError **error)
{
  guint n = opt_quick ? 50000 : 200000;
  guint rounds = opt_quick ? 2 : 6;
  g_autoptr(FiberPool) pool = NULL;
  g_autoptr(GVariant) items = empty_tuples (n);
  double raw = 0, map1 = 0, mapd = 0, apply = 0;

  pool = fiber_pool_new ("thread", 2, error);
  if (pool == NULL)
    return FALSE;

  say ("thread pool (2 threads) vs raw GThreadPool (2 threads), fiber.noop, %u items, best of %u\n",
       n, rounds);
  /* interleaved, so that load from elsewhere hits every figure alike */
  for (guint r = 0; r < rounds; r++)
    {
      double v;

      raw = MAX (raw, bench_raw_threadpool (n));
      if (!bench_fiber_map (pool, items, 1, &v, error))
        return FALSE;
      map1 = MAX (map1, v);
      if (!bench_fiber_apply_async (pool, n, &v, error))
        return FALSE;
      apply = MAX (apply, v);
      if (!bench_fiber_map (pool, items, 0, &v, error))
        return FALSE;
      mapd = MAX (mapd, v);
    }
  fiber_pool_close (pool);
  if (!fiber_pool_join (pool, -1, error))
    return FALSE;

  say ("  raw GThreadPool push              %10.0f items/s\n", raw);
  say ("  map, chunksize 1                  %10.0f items/s  (%.2f× raw)\n", map1, map1 / raw);
  say ("  apply_async ×N, then get          %10.0f items/s  (%.2f× raw)\n", apply, apply / raw);
  say ("  map, automatic chunksize          %10.0f items/s  (%.2f× raw)\n", mapd, mapd / raw);

  json_open ("thread");
  json_add ("n", n);
  json_add ("raw_threadpool", raw);
  json_add ("map_cs1", map1);
  json_add ("apply_async", apply);
  json_add ("map_default", mapd);
  json_close ();
  return TRUE;
}

/* ---- context switch ------------------------------------------------------------ */

typedef struct
{
  FiberContext  main_ctx;
  FiberContext  co_ctx;
  volatile gboolean stop;
} BarePair;

static void
bare_entry (void *arg)
{
  BarePair *pair = arg;

  _fiber_context_entered (&pair->main_ctx);
  while (!pair->stop)
    _fiber_context_switch (&pair->co_ctx, &pair->main_ctx);
  _fiber_context_exit (&pair->co_ctx, &pair->main_ctx);
}

/* ns per switch of _fiber_context_switch alone (two per round trip) */
static double
bench_bare_switch (FiberSwitchKind kind,
                   guint           rounds)
{
  g_autoptr(GError) error = NULL;
  FiberStack *stack = _fiber_stack_new (64 * 1024, &error);
  BarePair pair = { 0, };
  double start, elapsed;

  g_assert_no_error (error);
  _fiber_context_init_main (&pair.main_ctx, kind);
  _fiber_context_init (&pair.co_ctx, kind, stack->base, stack->size, bare_entry, &pair);

  _fiber_context_switch (&pair.main_ctx, &pair.co_ctx);      /* warm up */
  start = precise_now_s ();
  for (guint i = 0; i < rounds; i++)
    _fiber_context_switch (&pair.main_ctx, &pair.co_ctx);
  elapsed = precise_now_s () - start;
  pair.stop = TRUE;
  _fiber_context_switch (&pair.main_ctx, &pair.co_ctx);

  _fiber_context_clear (&pair.co_ctx);
  _fiber_context_clear (&pair.main_ctx);
  _fiber_stack_free (stack);
  return elapsed * 1e9 / (2.0 * rounds);
}

static volatile gboolean resume_stop;

static void
resume_body (gpointer data)
{
  while (!resume_stop)
    _fiber_coroutine_suspend ();
}

/* ns per switch of a coroutine resume + suspend (two per round trip) */
static double
bench_resume_suspend (FiberSwitchKind kind,
                      guint           rounds)
{
  g_autoptr(GError) error = NULL;
  FiberStack *stack = _fiber_stack_new (64 * 1024, &error);
  FiberContext main_ctx;
  FiberCoroutine *co;
  double start, elapsed;

  g_assert_no_error (error);
  _fiber_context_init_main (&main_ctx, kind);
  co = _fiber_coroutine_new (stack, kind, resume_body, NULL);
  resume_stop = FALSE;

  _fiber_coroutine_resume (co, &main_ctx);
  start = precise_now_s ();
  for (guint i = 0; i < rounds; i++)
    _fiber_coroutine_resume (co, &main_ctx);
  elapsed = precise_now_s () - start;
  resume_stop = TRUE;
  _fiber_coroutine_resume (co, &main_ctx);
  g_assert_true (_fiber_coroutine_is_finished (co));

  _fiber_stack_free (_fiber_coroutine_free (co));
  _fiber_context_clear (&main_ctx);
  return elapsed * 1e9 / (2.0 * rounds);
}

static void
yield_body (gpointer data)
{
  guint n = GPOINTER_TO_UINT (data);

  for (guint i = 0; i < n; i++)
    fiber_yield ();
}

/* fiber_yield () calls per second, @n_coroutines each yielding @per times,
 * on a FiberScheduler driven by this thread's own main context */
static double
bench_yields (FiberSwitchKind kind,
              guint           n_coroutines,
              guint           per)
{
  g_autoptr(GError) error = NULL;
  GMainContext *context = g_main_context_new ();
  FiberScheduler *sched;
  double start, elapsed;

  g_main_context_push_thread_default (context);
  sched = _fiber_scheduler_new (context, 64 * 1024, kind, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < n_coroutines; i++)
    {
      _fiber_scheduler_spawn (sched, yield_body, GUINT_TO_POINTER (per), &error);
      g_assert_no_error (error);
    }
  start = precise_now_s ();
  while (_fiber_scheduler_get_n_coroutines (sched) > 0)
    g_main_context_iteration (context, TRUE);
  elapsed = precise_now_s () - start;

  _fiber_scheduler_unref (sched);
  g_main_context_pop_thread_default (context);
  g_main_context_unref (context);
  return (double) n_coroutines * per / elapsed;
}

static gboolean
bench_switch (GError **error)
{
  static const FiberSwitchKind kinds[] = { FIBER_SWITCH_ASM, FIBER_SWITCH_UCONTEXT };
  guint repeats = opt_quick ? 3 : 7;

  say ("coroutine context switch (best of %u)\n", repeats);
  json_open ("switch");
  json_add ("default_is_asm", _fiber_context_default_kind () == FIBER_SWITCH_ASM);
  for (guint k = 0; k < G_N_ELEMENTS (kinds); k++)
    {
      FiberSwitchKind kind = kinds[k];
      /* ucontext's swapcontext is a system call: fewer rounds */
      guint rounds = (kind == FIBER_SWITCH_ASM ? 5000000 : 500000) / (opt_quick ? 5 : 1);
      guint per = (kind == FIBER_SWITCH_ASM ? 1000000 : 200000) / (opt_quick ? 5 : 1);
      double bare = G_MAXDOUBLE, resume = G_MAXDOUBLE, y2 = 0, y100 = 0;

      if (!_fiber_context_kind_available (kind))
        {
          say ("  %-10s not built for this machine\n", _fiber_context_kind_name (kind));
          continue;
        }
      for (guint r = 0; r < repeats; r++)
        {
          bare = MIN (bare, bench_bare_switch (kind, rounds));
          resume = MIN (resume, bench_resume_suspend (kind, rounds));
          y2 = MAX (y2, bench_yields (kind, 2, per / 2));
          y100 = MAX (y100, bench_yields (kind, 100, per / 100));
        }
      say ("  %-12s bare switch %7.1f ns   resume/suspend %7.1f ns per switch (%5.1f M switches/s)\n",
           _fiber_context_kind_name (kind), bare, resume, 1e3 / resume);
      say ("  %-12s fiber_yield through the scheduler: %5.2f M/s (2 coroutines), "
           "%5.2f M/s (100 coroutines)\n",
           "", y2 / 1e6, y100 / 1e6);

      json_open (kind == FIBER_SWITCH_ASM ? "asm" : "ucontext");
      json_add ("bare_ns", bare);
      json_add ("resume_suspend_ns", resume);
      json_add ("switches_per_s", 1e9 / resume);
      json_add ("yields_per_s_2", y2);
      json_add ("yields_per_s_100", y100);
      json_close ();
    }
  json_close ();
  return TRUE;
}

/* ---- sleeping tasks --------------------------------------------------------------- */

static GVariant *
sleep_items (guint  n,
             double seconds)
{
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE ("a(d)"));
  for (guint i = 0; i < n; i++)
    g_variant_builder_add (&b, "(d)", seconds);
  return g_variant_ref_sink (g_variant_builder_end (&b));
}

static gboolean
run_sleep_map (FiberPool  *pool,
               guint       n,
               double      seconds,
               double     *elapsed,
               GError    **error)
{
  g_autoptr(GVariant) items = sleep_items (n, seconds);
  g_autoptr(GVariant) out = NULL;
  double start = now_s ();

  out = fiber_pool_map (pool, "fiber.sleep", items, 0, error);
  *elapsed = now_s () - start;
  return out != NULL;
}

static gboolean
run_sleep_apply (FiberPool  *pool,
                 guint       n,
                 double      seconds,
                 double     *elapsed,
                 GError    **error)
{
  g_autoptr(GPtrArray) results = g_ptr_array_new_full (n, g_object_unref);
  double start = now_s ();

  for (guint i = 0; i < n; i++)
    g_ptr_array_add (results, fiber_pool_apply_async (pool, "fiber.sleep",
                                                      g_variant_new ("(d)", seconds),
                                                      NULL, NULL, NULL));
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GVariant) value = fiber_apply_result_get (g_ptr_array_index (results, i),
                                                          -1, error);
      if (value == NULL)
        return FALSE;
    }
  *elapsed = now_s () - start;
  return TRUE;
}

static gboolean
bench_sleep (GError **error)
{
  guint n = (guint) opt_tasks;
  guint repeats = opt_quick ? 1 : 3;
  g_autoptr(FiberPool) pool = NULL;
  double start, pool_start, best_map = G_MAXDOUBLE, best_apply = G_MAXDOUBLE, v;

  start = now_s ();
  pool = fiber_pool_new ("coroutine", n, error);
  if (pool == NULL)
    return FALSE;
  pool_start = now_s () - start;

  /* warm up, as the gevent side does */
  if (!run_sleep_map (pool, 100, 0.001, &v, error))
    return FALSE;
  for (guint r = 0; r < repeats; r++)
    {
      if (!run_sleep_map (pool, n, opt_seconds, &v, error))
        return FALSE;
      best_map = MIN (best_map, v);
      if (!run_sleep_apply (pool, n, opt_seconds, &v, error))
        return FALSE;
      best_apply = MIN (best_apply, v);
    }
  fiber_pool_close (pool);
  if (!fiber_pool_join (pool, -1, error))
    return FALSE;

  say ("coroutine pool (1 scheduler thread, %u coroutines): %u × fiber.sleep %.3g s, best of %u\n",
       n, n, opt_seconds, repeats);
  say ("  map                      %.3f s\n", best_map);
  say ("  apply_async ×N, then get %.3f s\n", best_apply);

  json_open ("sleep");
  json_add ("tasks", n);
  json_add ("sleep", opt_seconds);
  json_add ("pool_start_s", pool_start);
  json_add ("map_s", best_map);
  json_add ("apply_async_s", best_apply);
  json_close ();
  return TRUE;
}

/* ------------------------------------------------------------------------------------ */

int
main (int    argc,
      char **argv)
{
  const GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json, "Print one JSON object", NULL },
    { "quick", 0, 0, G_OPTION_ARG_NONE, &opt_quick, "Fewer iterations", NULL },
    { "only", 0, 0, G_OPTION_ARG_STRING, &opt_only, "Run one benchmark: thread, switch or sleep", "NAME" },
    { "tasks", 0, 0, G_OPTION_ARG_INT, &opt_tasks, "Sleeping tasks (default 10000)", "N" },
    { "seconds", 0, 0, G_OPTION_ARG_DOUBLE, &opt_seconds, "Sleep per task (default 0.2)", "S" },
    G_OPTION_ENTRY_NULL
  };
  static const struct
  {
    const char *name;
    gboolean  (*run) (GError **error);
  } benches[] = {
    { "thread", bench_thread },
    { "switch", bench_switch },
    { "sleep", bench_sleep },
  };
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  gboolean found = FALSE;

  if (!fiber_init (&argc, &argv, &error))
    {
      g_printerr ("bench-inproc: %s\n", error->message);
      return 1;
    }

  context = g_option_context_new (NULL);
  g_option_context_set_summary (context, "the in-process pools' benchmarks (see bench/inproc.py)");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("bench-inproc: %s\n", error->message);
      return 2;
    }
  if (opt_tasks < 1 || opt_seconds < 0 || opt_seconds > 60)
    {
      g_printerr ("bench-inproc: --tasks must be at least 1 and --seconds within 0 to 60\n");
      return 2;
    }

  json = g_string_new ("{");
  for (guint i = 0; i < G_N_ELEMENTS (benches); i++)
    {
      if (opt_only != NULL && !g_str_equal (opt_only, benches[i].name))
        continue;
      found = TRUE;
      if (!benches[i].run (&error))
        {
          g_printerr ("bench-inproc: %s: %s\n", benches[i].name, error->message);
          return 1;
        }
    }
  if (!found)
    {
      g_printerr ("bench-inproc: unknown benchmark “%s” (thread, switch or sleep)\n", opt_only);
      return 2;
    }
  json_close ();
  if (opt_json)
    g_print ("%s\n", json->str);
  g_string_free (json, TRUE);
  g_free (opt_only);
  return 0;
}

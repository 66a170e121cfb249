/* bench-pool.c — fiber's side of the pool benchmarks (bench/run.py)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Measures, against the public API, on a `process` pool with the identity
 * task `fiber.echo`:
 *   map_cs1          map with chunksize 1                 items/s
 *   apply_async      apply_async ×N, then get each         items/s
 *   apply_sync       synchronous apply round trip          µs (“us”)
 *   map_default      map with the automatic chunksize      items/s
 *   process_start    FiberProcess start + join (fiber.noop) ms
 *   pool_start       fiber_pool_new + first apply          ms
 *   apply_sync_zmq   apply_sync on a pool whose transport is "zmq"
 *                    (ZeroMQ ipc:// instead of the unix socket)  µs
 * and, with --rss N, the peak RSS of this process (getrusage ru_maxrss)
 * after a map of N integers.
 *
 * Workers re-execute this program, so fiber_init() comes first.
 */

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <fiber.h>

typedef struct
{
  const char *key;
  const char *label;
  const char *unit;
  double      value;
  guint       n;
} Figure;

static gboolean opt_json;
static gboolean opt_quick;
static int      opt_workers = 2;
static int      opt_rss;
static char    *opt_only;
static double   opt_scale = 1.0;

/* With --only KEY, only that figure is measured (for profiling). */
static gboolean
wanted (const char *key)
{
  return opt_only == NULL || g_str_equal (opt_only, key);
}

static double
seconds_since (gint64 start)
{
  return (g_get_monotonic_time () - start) / (double) G_USEC_PER_SEC;
}

static GVariant *
int_array (guint n)
{
  g_autofree gint32 *data = g_new (gint32, n);

  for (guint i = 0; i < n; i++)
    data[i] = (gint32) i;
  return g_variant_ref_sink (g_variant_new_fixed_array (G_VARIANT_TYPE_INT32, data, n,
                                                        sizeof (gint32)));
}

static gboolean
check_map_result (GVariant  *result,
                  guint      n,
                  GError   **error)
{
  gsize len = g_variant_n_children (result);

  if (len != n)
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_FAILED,
                   "map returned %" G_GSIZE_FORMAT " results for %u items", len, n);
      return FALSE;
    }
  for (gsize i = 0; i < len; i += MAX (1, len / 97))
    {
      g_autoptr(GVariant) child = g_variant_get_child_value (result, i);
      g_autoptr(GVariant) inner = g_variant_is_of_type (child, G_VARIANT_TYPE_VARIANT)
                                    ? g_variant_get_variant (child) : g_variant_ref (child);

      if (!g_variant_is_of_type (inner, G_VARIANT_TYPE_INT32) ||
          g_variant_get_int32 (inner) != (gint32) i)
        {
          g_set_error (error, FIBER_ERROR, FIBER_ERROR_FAILED,
                       "map result %" G_GSIZE_FORMAT " is wrong", i);
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
bench_map (FiberPool  *pool,
           guint       n,
           guint       chunksize,
           double     *rate,
           GError    **error)
{
  g_autoptr(GVariant) items = int_array (n);
  g_autoptr(GVariant) result = NULL;
  gint64 start = g_get_monotonic_time ();
  double elapsed;

  result = fiber_pool_map (pool, "fiber.echo", items, chunksize, error);
  elapsed = seconds_since (start);
  if (result == NULL)
    return FALSE;
  g_variant_ref_sink (result);
  if (!check_map_result (result, n, error))
    return FALSE;
  *rate = n / elapsed;
  return TRUE;
}

static gboolean
bench_apply_async (FiberPool  *pool,
                   guint       n,
                   double     *rate,
                   GError    **error)
{
  g_autoptr(GPtrArray) results = g_ptr_array_new_full (n, g_object_unref);
  gint64 start = g_get_monotonic_time ();

  for (guint i = 0; i < n; i++)
    g_ptr_array_add (results, fiber_pool_apply_async (pool, "fiber.echo",
                                                      g_variant_new ("(i)", (gint32) i),
                                                      NULL, NULL, NULL));
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GVariant) value = fiber_apply_result_get (results->pdata[i], -1, error);
      gint32 v;

      if (value == NULL)
        return FALSE;
      g_variant_get (value, "(i)", &v);
      if (v != (gint32) i)
        {
          g_set_error (error, FIBER_ERROR, FIBER_ERROR_FAILED, "apply_async result %u is wrong", i);
          return FALSE;
        }
    }
  *rate = n / seconds_since (start);
  return TRUE;
}

static gboolean
bench_apply_sync (FiberPool  *pool,
                  guint       n,
                  double     *usec,
                  GError    **error)
{
  gint64 start = g_get_monotonic_time ();

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GVariant) value = fiber_pool_apply (pool, "fiber.echo",
                                                    g_variant_new ("(i)", (gint32) i), error);
      if (value == NULL)
        return FALSE;
    }
  *usec = (g_get_monotonic_time () - start) / (double) n;
  return TRUE;
}

/* The mean over @n starts, and the first one alone (*first_msec): that one
 * also starts the fork server. */
static gboolean
bench_process_start (guint    n,
                     double  *msec,
                     double  *first_msec,
                     GError **error)
{
  gint64 start = g_get_monotonic_time ();

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(FiberProcess) process = fiber_process_new ("fiber.noop", g_variant_new ("()"));
      int exitcode = -1;

      if (!fiber_process_start (process, error))
        return FALSE;
      if (!fiber_process_join (process, 60000))
        {
          fiber_process_kill (process);
          fiber_process_join (process, -1);
          g_set_error (error, FIBER_ERROR, FIBER_ERROR_TIMEOUT, "a process did not exit in 60 s");
          return FALSE;
        }
      if (!fiber_process_get_exitcode (process, &exitcode) || exitcode != 0)
        {
          g_set_error (error, FIBER_ERROR, FIBER_ERROR_FAILED,
                       "a process exited with code %d", exitcode);
          return FALSE;
        }
      if (i == 0)
        *first_msec = (g_get_monotonic_time () - start) / 1000.0;
    }
  *msec = (g_get_monotonic_time () - start) / 1000.0 / n;
  return TRUE;
}

static gboolean
stop_pool (FiberPool  *pool,
           GError    **error)
{
  fiber_pool_close (pool);
  return fiber_pool_join (pool, 30000, error);
}

static glong
peak_rss_kib (void)
{
  struct rusage usage;

  if (getrusage (RUSAGE_SELF, &usage) != 0)
    return -1;
  return usage.ru_maxrss;  /* KiB on Linux */
}

static int
run_rss (guint n)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(FiberPool) pool = NULL;
  double rate = 0;
  gint64 start = g_get_monotonic_time ();

  pool = fiber_pool_new ("process", opt_workers, &error);
  if (pool == NULL)
    {
      g_printerr ("bench-pool: %s\n", error->message);
      return 1;
    }
  if (!bench_map (pool, n, 0, &rate, &error))
    {
      g_printerr ("bench-pool: %s\n", error->message);
      fiber_pool_terminate (pool);
      fiber_pool_join (pool, 10000, NULL);
      return 1;
    }
  if (!stop_pool (pool, &error))
    {
      g_printerr ("bench-pool: %s\n", error->message);
      return 1;
    }
  if (opt_json)
    g_print ("{\"items\": %u, \"peak_rss_kib\": %ld, \"seconds\": %.3f}\n",
             n, peak_rss_kib (), seconds_since (start));
  else
    g_print ("map of %u integers: peak RSS %.1f MiB, %.2f s\n",
             n, peak_rss_kib () / 1024.0, seconds_since (start));
  return 0;
}

/* The synchronous round trip again, on a pool whose workers use ZeroMQ
 * over ipc:// (FiberProcessPool:transport "zmq"): what the unix socket
 * saves. */
static gboolean
run_apply_sync_zmq (Figure  *figure,
                    GError **error)
{
  g_autoptr(FiberPool) pool = NULL;
  double warm;
  gboolean ok;

  pool = g_initable_new (FIBER_TYPE_PROCESS_POOL, NULL, error,
                         "processes", opt_workers, "transport", "zmq", NULL);
  if (pool == NULL)
    return FALSE;
  ok = bench_map (pool, 200, 1, &warm, error) &&
       bench_apply_sync (pool, figure->n, &figure->value, error);
  if (!ok)
    {
      fiber_pool_terminate (pool);
      fiber_pool_join (pool, 10000, NULL);
      return FALSE;
    }
  return stop_pool (pool, error);
}

/* Runs the pool figures 0–4 on one pool, then the process figures 5–6 and
 * the ZeroMQ transport figure 7. */
static gboolean
run_all (Figure  *figures,
         GError **error)
{
  g_autoptr(FiberPool) pool = NULL;
  g_autoptr(GVariant) first = NULL;
  gint64 start = g_get_monotonic_time ();
  double warm;
  gboolean ok;

  pool = fiber_pool_new ("process", opt_workers, error);
  if (pool == NULL)
    return FALSE;

  first = fiber_pool_apply (pool, "fiber.echo", g_variant_new ("(i)", 0), error);
  ok = first != NULL;
  if (ok)
    figures[0].value = (g_get_monotonic_time () - start) / 1000.0;

  /* Warm up (every worker connected and busy once), then measure. */
  ok = ok &&
       bench_map (pool, 200, 1, &warm, error) &&
       (!wanted (figures[1].key) ||
        bench_map (pool, figures[1].n, 1, &figures[1].value, error)) &&
       (!wanted (figures[2].key) ||
        bench_apply_async (pool, figures[2].n, &figures[2].value, error)) &&
       (!wanted (figures[3].key) ||
        bench_apply_sync (pool, figures[3].n, &figures[3].value, error)) &&
       (!wanted (figures[4].key) ||
        bench_map (pool, figures[4].n, 0, &figures[4].value, error));

  if (!ok)
    {
      fiber_pool_terminate (pool);
      fiber_pool_join (pool, 10000, NULL);
      return FALSE;
    }
  if (!stop_pool (pool, error))
    return FALSE;
  g_clear_object (&pool);

  if (wanted (figures[5].key) &&
      !bench_process_start (figures[5].n, &figures[5].value, &figures[6].value, error))
    return FALSE;
  if (!wanted (figures[7].key))
    return TRUE;
  return run_apply_sync_zmq (&figures[7], error);
}

int
main (int    argc,
      char **argv)
{
  const GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json, "Print JSON", NULL },
    { "quick", 0, 0, G_OPTION_ARG_NONE, &opt_quick, "Fewer iterations", NULL },
    { "workers", 'j', 0, G_OPTION_ARG_INT, &opt_workers, "Workers (default 2)", "N" },
    { "rss", 0, 0, G_OPTION_ARG_INT, &opt_rss,
      "Only map N integers and report the peak RSS", "N" },
    { "only", 0, 0, G_OPTION_ARG_STRING, &opt_only,
      "Only measure this figure (for profiling)", "KEY" },
    { "scale", 0, 0, G_OPTION_ARG_DOUBLE, &opt_scale,
      "Multiply the iteration counts by F", "F" },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  Figure figures[] = {
    { "pool_start",    "pool start (new + first apply)",  "ms",      0, 1 },
    { "map_cs1",       "map, chunksize 1",                "items/s", 0, 20000 },
    { "apply_async",   "apply_async ×N, then get",        "items/s", 0, 20000 },
    { "apply_sync",    "apply, synchronous round trip",   "us",      0, 3000 },
    { "map_default",   "map, automatic chunksize",        "items/s", 0, 200000 },
    { "process_start", "FiberProcess start + join",       "ms",      0, 30 },
    { "process_first", "first FiberProcess start + join", "ms",      0, 1 },
    { "apply_sync_zmq", "apply, sync round trip, zmq ipc", "us",     0, 3000 },
  };

  if (!fiber_init (&argc, &argv, &error))
    {
      g_printerr ("bench-pool: %s\n", error->message);
      return 1;
    }

  context = g_option_context_new (NULL);
  g_option_context_set_summary (context, "fiber's side of the pool benchmarks (see bench/run.py)");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("bench-pool: %s\n", error->message);
      return 2;
    }
  if (opt_workers < 1 || opt_rss < 0 || opt_scale <= 0)
    {
      g_printerr ("bench-pool: --workers must be at least 1, --rss not negative, --scale positive\n");
      return 2;
    }

  if (opt_rss > 0)
    return run_rss ((guint) opt_rss);

  for (guint i = 0; i < G_N_ELEMENTS (figures); i++)
    if (figures[i].n > 1)
      figures[i].n = MAX (1, (guint) (figures[i].n * opt_scale / (opt_quick ? 5 : 1)));

  if (!run_all (figures, &error))
    {
      g_printerr ("bench-pool: %s\n", error->message);
      return 1;
    }

  if (opt_json)
    {
      g_print ("{\"workers\": %d", opt_workers);
      for (guint i = 0; i < G_N_ELEMENTS (figures); i++)
        if (i == 0 || wanted (figures[i].key) ||
            (i == 6 && wanted (figures[5].key)))
          g_print (", \"%s\": {\"value\": %.6g, \"unit\": \"%s\", \"n\": %u}",
                 figures[i].key, figures[i].value, figures[i].unit, figures[i].n);
      g_print ("}\n");
    }
  else
    {
      g_print ("fiber, process pool, %d workers, task fiber.echo\n", opt_workers);
      for (guint i = 0; i < G_N_ELEMENTS (figures); i++)
        if (i == 0 || wanted (figures[i].key) ||
            (i == 6 && wanted (figures[5].key)))
          g_print ("  %-34s %12.1f %-8s (n=%u)\n", figures[i].label, figures[i].value,
                 figures[i].unit, figures[i].n);
    }
  return 0;
}

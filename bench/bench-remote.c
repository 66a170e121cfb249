/* bench-remote.c — the remote pool over tcp+CURVE next to the local
 * process pool, in the same run (bench/remote.sh starts the Slurm)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Both pools have 2 workers and run the identity task `fiber.echo`:
 *   connect          fiber_pool_new → every worker connected   ms
 *   map_cs1          map with chunksize 1                       items/s
 *   apply_sync       synchronous apply round trip               µs (“us”)
 * The `process` pool's workers are local processes on ipc://; the
 * `remote` pool's are Slurm jobs (slurmrestd over the unix socket given in
 * FIBER_SLURM_SOCKET) that connect back over tcp://127.0.0.1 with CURVE.
 * The ratios are remote / local.  "Every worker connected" is measured
 * with a map of one rendezvous item per worker (chunksize 1): each waits
 * until all of them have started, so it returns once every worker serves.
 *
 * Workers re-execute this program, so fiber_init() comes first.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include <fiber.h>

#define WORKERS 2

typedef struct
{
  const char *key;
  const char *label;
  const char *unit;
  gboolean    higher_is_better;
  double      local;
  double      remote;
} Figure;

static gboolean opt_json;
static gboolean opt_quick;

static double
seconds_since (gint64 start)
{
  return (g_get_monotonic_time () - start) / (double) G_USEC_PER_SEC;
}

/* ("dir", n): marks its start in dir and waits (≤ 60 s) until n items
 * have started there. */
static GVariant *
task_rendezvous (GVariant      *args,
                 GCancellable  *cancellable,
                 gpointer       user_data,
                 GError       **error)
{
  const char *dir;
  gint32 n;
  g_autofree char *mark = NULL;
  gint64 deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;

  g_variant_get (args, "(&si)", &dir, &n);
  mark = g_strdup_printf ("%s/%d", dir, (int) getpid ());
  if (!g_file_set_contents (mark, "", 0, error))
    return NULL;
  while (g_get_monotonic_time () < deadline)
    {
      g_autoptr(GDir) d = g_dir_open (dir, 0, error);
      gint32 seen = 0;

      if (d == NULL)
        return NULL;
      while (g_dir_read_name (d) != NULL)
        seen++;
      if (seen >= n)
        return g_variant_new_int32 (seen);
      g_usleep (500);
    }
  g_set_error (error, FIBER_ERROR, FIBER_ERROR_TIMEOUT, "rendezvous timed out");
  return NULL;
}

static void
die (const char *what,
     GError     *error)
{
  g_printerr ("bench-remote: %s: %s\n", what, error != NULL ? error->message : "failed");
  exit (1);
}

/* Time from creating the pool (by @make) to every worker serving. */
static FiberPool *
start_pool (FiberPool *(*make) (GError **error),
            double     *connect_ms)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) out = NULL;
  g_autofree char *dir = g_dir_make_tmp ("bench-remote-XXXXXX", &error);
  GVariantBuilder b;
  FiberPool *pool;
  gint64 start;

  if (dir == NULL)
    die ("temporary directory", error);
  g_variant_builder_init (&b, G_VARIANT_TYPE ("a(si)"));
  for (guint i = 0; i < WORKERS; i++)
    g_variant_builder_add (&b, "(si)", dir, (gint32) WORKERS);

  start = g_get_monotonic_time ();
  pool = make (&error);
  if (pool == NULL)
    die ("pool", error);
  out = fiber_pool_map (pool, "bench.rendezvous", g_variant_builder_end (&b), 1, &error);
  if (out == NULL)
    die ("rendezvous", error);
  *connect_ms = seconds_since (start) * 1000.0;

  {
    g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
    const char *name;

    while (d != NULL && (name = g_dir_read_name (d)) != NULL)
      {
        g_autofree char *path = g_build_filename (dir, name, NULL);
        g_unlink (path);
      }
    g_rmdir (dir);
  }
  return pool;
}

static FiberPool *
make_local (GError **error)
{
  return fiber_pool_new ("process", WORKERS, error);
}

static FiberPool *
make_remote (GError **error)
{
  g_autoptr(FiberBackend) backend =
    g_object_new (FIBER_TYPE_SLURM_BACKEND,
                  "socket", g_getenv ("FIBER_SLURM_SOCKET"),
                  "listen-address", "127.0.0.1",
                  NULL);

  return fiber_process_pool_new (WORKERS, TRUE, backend, error);
}

static GVariant *
int_array (guint n)
{
  g_autofree gint32 *data = g_new (gint32, n);

  for (guint i = 0; i < n; i++)
    data[i] = (gint32) i;
  return g_variant_new_fixed_array (G_VARIANT_TYPE_INT32, data, n, sizeof (gint32));
}

static double
bench_map_cs1 (FiberPool *pool,
               guint      n)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) out = NULL;
  gint64 start = g_get_monotonic_time ();

  out = fiber_pool_map (pool, "fiber.echo", int_array (n), 1, &error);
  if (out == NULL || g_variant_n_children (out) != n)
    die ("map", error);
  return n / seconds_since (start);
}

static double
bench_apply_sync (FiberPool *pool,
                  guint      n)
{
  gint64 start;

  /* Warm up: both workers busy once. */
  for (guint i = 0; i < 50; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) out = fiber_pool_apply (pool, "fiber.echo",
                                                  g_variant_new ("(i)", (gint32) i), &error);
      if (out == NULL)
        die ("apply", error);
    }
  start = g_get_monotonic_time ();
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) out = fiber_pool_apply (pool, "fiber.echo",
                                                  g_variant_new ("(i)", (gint32) i), &error);
      if (out == NULL)
        die ("apply", error);
    }
  return seconds_since (start) * 1e6 / n;
}

static void
measure (FiberPool *(*make) (GError **error),
         Figure     *figures,
         gboolean    remote)
{
  g_autoptr(FiberPool) pool = NULL;
  g_autoptr(GError) error = NULL;
  guint n_map = opt_quick ? 5000 : 50000;
  guint n_apply = opt_quick ? 500 : 3000;
  double values[3];

  pool = start_pool (make, &values[0]);
  values[1] = bench_map_cs1 (pool, n_map);
  values[2] = bench_apply_sync (pool, n_apply);
  fiber_pool_close (pool);
  if (!fiber_pool_join (pool, 60000, &error))
    die ("join", error);

  for (guint i = 0; i < 3; i++)
    {
      if (remote)
        figures[i].remote = values[i];
      else
        figures[i].local = values[i];
    }
}

int
main (int    argc,
      char **argv)
{
  const GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json, "Print JSON", NULL },
    { "quick", 0, 0, G_OPTION_ARG_NONE, &opt_quick, "Fewer items", NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  Figure figures[] = {
    { "connect", "fiber_pool_new → all workers connected", "ms", FALSE, 0, 0 },
    { "map_cs1", "map, chunksize 1", "items/s", TRUE, 0, 0 },
    { "apply_sync", "apply, sync round trip", "us", FALSE, 0, 0 },
  };

  fiber_task_register ("bench.rendezvous", task_rendezvous, NULL, NULL);
  if (!fiber_init (&argc, &argv, &error))
    die ("fiber_init", error);

  context = g_option_context_new ("— remote (Slurm, tcp+CURVE) vs local process pool");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    die ("options", error);
  if (g_getenv ("FIBER_SLURM_SOCKET") == NULL)
    {
      g_printerr ("bench-remote: FIBER_SLURM_SOCKET is not set; run it through "
                  "bench/remote.sh, which starts a one-node Slurm\n");
      return 2;
    }

  measure (make_local, figures, FALSE);
  measure (make_remote, figures, TRUE);

  if (opt_json)
    {
      g_autoptr(GString) json = g_string_new ("{\"workers\": 2, \"task\": \"fiber.echo\"");

      for (guint i = 0; i < G_N_ELEMENTS (figures); i++)
        g_string_append_printf (json,
                                ", \"%s\": {\"unit\": \"%s\", \"local\": %.6g, "
                                "\"remote\": %.6g, \"ratio\": %.4g}",
                                figures[i].key, figures[i].unit, figures[i].local,
                                figures[i].remote, figures[i].remote / figures[i].local);
      g_string_append (json, "}");
      printf ("%s\n", json->str);
      return 0;
    }

  printf ("remote pool (Slurm jobs, tcp+CURVE) vs local process pool (ipc), "
          "2 workers, fiber.echo\n");
  printf ("%-42s %14s %14s %10s\n", "", "local", "remote", "remote/local");
  for (guint i = 0; i < G_N_ELEMENTS (figures); i++)
    {
      g_autofree char *label = g_strdup_printf ("%s (%s)", figures[i].label, figures[i].unit);

      printf ("%-42s %14.1f %14.1f %10.2f\n", label, figures[i].local,
              figures[i].remote, figures[i].remote / figures[i].local);
    }
  return 0;
}

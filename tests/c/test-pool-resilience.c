/* test-pool-resilience.c — failing tasks and lost workers in the process
 * pools: task errors come back and are not retried; the items of a killed
 * worker run again, every result is delivered exactly once; an item that
 * keeps killing its worker fails with FIBER_ERROR_WORKER_LOST.
 *
 * The tasks append to a log file (O_APPEND, one short line per write), so
 * the test sees how often each item really ran.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <fiber.h>
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fiber-test-util.h"
#include "pool-test-util.h"

/* ------------------------------------------------------------------------
 * Tasks (run in the workers)
 * ------------------------------------------------------------------------ */

/* (si) log, i: logs i; fails for one item in twenty, else returns i * i. */
static GVariant *
task_fail_some (GVariant *args, GCancellable *cancellable, gpointer data, GError **error)
{
  const char *log;
  gint32 i;
  g_autofree char *line = NULL;

  g_variant_get (args, "(&si)", &log, &i);
  line = g_strdup_printf ("%d\n", i);
  if (!pool_test_append_line (log, line, error))
    return NULL;
  if (i % 20 == 7)
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_TASK_FAILED, "item %d refused (pid %d)",
                   i, (int) getpid ());
      return NULL;
    }
  return g_variant_new_int32 (i * i);
}

/* (sid) log, i, seconds: works for a while, logs i, returns i * i. */
static GVariant *
task_slow_square (GVariant *args, GCancellable *cancellable, gpointer data, GError **error)
{
  const char *log;
  gint32 i;
  double seconds;
  g_autofree char *line = NULL;

  g_variant_get (args, "(&sid)", &log, &i, &seconds);
  if (!fiber_sleep (seconds, cancellable, error))
    return NULL;
  line = g_strdup_printf ("%d\n", i);
  if (!pool_test_append_line (log, line, error))
    return NULL;
  return g_variant_new_int32 (i * i);
}

/* (sii) log, i, victim: logs i; the victim kills its own worker. */
static GVariant *
task_die_on (GVariant *args, GCancellable *cancellable, gpointer data, GError **error)
{
  const char *log;
  gint32 i, victim;
  g_autofree char *line = NULL;

  g_variant_get (args, "(&sii)", &log, &i, &victim);
  line = g_strdup_printf ("%d\n", i);
  if (!pool_test_append_line (log, line, error))
    return NULL;
  if (i == victim)
    raise (SIGKILL);
  return g_variant_new_int32 (i);
}

/* (ss) pool type, dir: makes a pool of two workers in a non-daemonic
 * process, writes the workers' pids to <dir>/pids, keeps them busy (both
 * wrote their start marker in <dir>/tmp/started) and dies by SIGKILL. */
static GVariant *
task_pool_then_die (GVariant *args, GCancellable *cancellable, gpointer data, GError **error)
{
  const char *type, *dir;
  g_autofree char *tmp = NULL;
  g_autofree char *pids_path = NULL;
  g_autofree char *pids_tmp = NULL;
  g_autofree char *started = NULL;
  g_autofree char *marker = NULL;
  g_autoptr(GString) text = g_string_new (NULL);
  g_autoptr(GArray) children = NULL;
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GVariantBuilder) b = g_variant_builder_new (G_VARIANT_TYPE ("a(s)"));
  FiberPool *pool;

  g_variant_get (args, "(&s&s)", &type, &dir);
  /* The pool's runtime directory, left behind by the SIGKILL, goes here. */
  tmp = g_build_filename (dir, "tmp", NULL);
  g_mkdir (tmp, 0700);
  g_setenv ("TMPDIR", tmp, TRUE);
  started = g_build_filename (tmp, "started", NULL);
  g_mkdir (started, 0700);
  marker = g_build_filename (started, "busy", NULL);

  pool = fiber_pool_new (type, 2, error);
  if (pool == NULL)
    return NULL;
  results = fiber_pool_map (pool, "fiber.echo", g_variant_new_parsed ("[1, 2, 3, 4]"), 1, error);
  if (results == NULL)
    return NULL;

  children = fiber_test_list_children ();
  for (guint i = 0; i < children->len; i++)
    g_string_append_printf (text, "%d\n", (int) g_array_index (children, GPid, i));

  /* Busy workers: a task that would take a minute each, running in both
   * once their start markers are there. */
  for (int i = 0; i < 2; i++)
    g_variant_builder_add (b, "(s)", marker);
  g_object_unref (fiber_pool_map_async (pool, "test.started-then-sleep", g_variant_builder_end (b),
                                        1, NULL, NULL, NULL));
  pool_test_wait_for_entries (started, 2);

  pids_path = g_build_filename (dir, "pids", NULL);
  pids_tmp = g_build_filename (dir, "pids.tmp", NULL);
  if (!g_file_set_contents (pids_tmp, text->str, -1, error) || g_rename (pids_tmp, pids_path) != 0)
    return NULL;
  raise (SIGKILL);
  return NULL;
}

/* (sd) log, seconds: logs a line, then blocks (no cancellable, no main
 * loop) for that long. */
static GVariant *
task_block (GVariant *args, GCancellable *cancellable, gpointer data, GError **error)
{
  const char *log;
  double seconds;

  g_variant_get (args, "(&sd)", &log, &seconds);
  if (!pool_test_append_line (log, "0\n", error))
    return NULL;
  g_usleep ((gulong) (seconds * G_USEC_PER_SEC));
  return g_variant_new ("()");
}

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

typedef struct
{
  char *dir;
  char *log;
} Fixture;

static void
fixture_setup (Fixture       *fx,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  fx->dir = g_dir_make_tmp ("fiber-resilience-XXXXXX", &error);
  g_assert_no_error (error);
  fx->log = g_build_filename (fx->dir, "log", NULL);
}

static void
fixture_teardown (Fixture       *fx,
                  gconstpointer  data)
{
  g_unlink (fx->log);
  g_rmdir (fx->dir);
  g_free (fx->log);
  g_free (fx->dir);
  fiber_test_assert_no_leaks (2000);
}

/* How often each index appears in the log (array of @n counts). */
static GArray *
read_log_counts (const char *log,
                 guint       n)
{
  g_autofree char *contents = NULL;
  g_auto(GStrv) lines = NULL;
  GArray *counts = g_array_sized_new (FALSE, TRUE, sizeof (guint), n);

  g_array_set_size (counts, n);
  if (!g_file_get_contents (log, &contents, NULL, NULL))
    return counts;
  lines = g_strsplit (contents, "\n", -1);
  for (guint k = 0; lines[k] != NULL; k++)
    {
      guint64 i;

      if (*lines[k] == '\0')
        continue;
      g_assert_true (g_ascii_string_to_unsigned (lines[k], 10, 0, n - 1, &i, NULL));
      g_array_index (counts, guint, i)++;
    }
  return counts;
}

static guint
count_lines (const char *log)
{
  g_autofree char *contents = NULL;
  guint n = 0;

  if (!g_file_get_contents (log, &contents, NULL, NULL))
    return 0;
  for (const char *p = contents; *p != '\0'; p++)
    if (*p == '\n')
      n++;
  return n;
}

/* Waits (within the guard) until the log holds at least @n lines. */
static void
wait_for_lines (const char *log,
                guint       n)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) POOL_TEST_GUARD_MSEC * 1000;

  while (count_lines (log) < n)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_usleep (1000);
    }
}

static FiberPool *
new_pool (const char *type,
          guint       processes,
          guint       max_retries,
          gboolean    resilient)
{
  g_autoptr(GError) error = NULL;
  GObject *object;

  object = g_initable_new (FIBER_TYPE_PROCESS_POOL, NULL, &error,
                           "pool-type", type,
                           "processes", processes,
                           "daemon", g_str_equal (type, "process"),
                           "max-retries", max_retries,
                           "resilient", resilient,
                           NULL);
  g_assert_no_error (error);
  return FIBER_POOL (object);
}

/* ------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------ */

/* 5 % of the items fail: their errors come back with the worker's message,
 * every other item has its result, nothing ran twice. */
static void
test_failing_items (Fixture       *fx,
                    gconstpointer  data)
{
  const guint n = 400;
  FiberPool *pool = fiber_pool_new (data, 2, NULL);
  g_autoptr(GVariantBuilder) b = g_variant_builder_new (G_VARIANT_TYPE ("a(si)"));
  g_autoptr(FiberMapResult) r = NULL;
  g_autoptr(GArray) counts = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) all = NULL;
  guint n_ok = 0, n_failed = 0, expected = 0;

  g_assert_nonnull (pool);
  for (guint i = 0; i < n; i++)
    g_variant_builder_add (b, "(si)", fx->log, (gint32) i);
  /* imap: every item reports on its own (a map stops at the first error) */
  r = fiber_pool_imap (pool, "test.fail-some", g_variant_builder_end (b), 5, &error);
  g_assert_no_error (error);

  for (;;)
    {
      g_autoptr(GError) item_error = NULL;
      g_autoptr(GVariant) value = NULL;
      guint index = G_MAXUINT;

      if (fiber_map_result_next (r, POOL_TEST_GUARD_MSEC, &index, &value, &item_error))
        {
          g_assert_cmpuint (index, ==, expected);
          g_assert_cmpuint (index % 20, !=, 7);
          g_assert_cmpint (g_variant_get_int32 (value), ==, (gint32) (index * index));
          n_ok++;
        }
      else if (item_error != NULL)
        {
          g_autofree char *prefix = g_strdup_printf ("item %u refused (pid ", index);
          g_autofree char *ours = g_strdup_printf ("pid %d)", (int) getpid ());

          g_assert_error (item_error, FIBER_ERROR, FIBER_ERROR_TASK_FAILED);
          g_assert_cmpuint (index, ==, expected);
          g_assert_cmpuint (index % 20, ==, 7);
          /* the message made in the worker, not ours */
          g_assert_true (g_str_has_prefix (item_error->message, prefix));
          g_assert_null (strstr (item_error->message, ours));
          n_failed++;
        }
      else
        break;
      expected++;
    }
  g_assert_cmpuint (n_ok, ==, n - n / 20);
  g_assert_cmpuint (n_failed, ==, n / 20);

  /* A map of the same items stops at the first error, which it reports. */
  all = fiber_pool_starmap (pool, "test.fail-some", g_variant_new_parsed ("[(%s, 27)]", fx->log), 1, &error);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_TASK_FAILED);
  g_assert_true (g_str_has_prefix (error->message, "item 27 refused"));
  g_assert_null (all);

  /* Failures are not retried: every item ran exactly once. */
  counts = read_log_counts (fx->log, n);
  for (guint i = 0; i < n; i++)
    g_assert_cmpuint (g_array_index (counts, guint, i), ==, (i == 27 ? 2u : 1u));

  pool_test_finish (pool);
}

static GPid
pick_worker (void)
{
  g_autoptr(GArray) children = fiber_test_list_children ();

  g_assert_cmpuint (children->len, >, 0);
  return g_array_index (children, GPid, 0);
}

/* A worker SIGKILLed in the middle of a map: the result list is still
 * exact and complete, and only what the dead worker was running ran
 * again. */
static void
test_worker_killed (Fixture       *fx,
                    gconstpointer  data)
{
  const guint n = 300;
  FiberPool *pool = fiber_pool_new (data, 2, NULL);
  g_autoptr(GVariantBuilder) b = g_variant_builder_new (G_VARIANT_TYPE ("a(sid)"));
  g_autoptr(FiberMapResult) r = NULL;
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GArray) counts = NULL;
  g_autoptr(GArray) children = NULL;
  g_autoptr(GError) error = NULL;
  guint twice = 0;
  GPid victim;

  g_assert_nonnull (pool);
  for (guint i = 0; i < n; i++)
    g_variant_builder_add (b, "(sid)", fx->log, (gint32) i, 0.002);
  r = fiber_pool_starmap_async (pool, "test.slow-square", g_variant_builder_end (b), 0,
                                NULL, NULL, NULL);

  /* Kill one worker once a third of the items are done. */
  wait_for_lines (fx->log, n / 3);
  victim = pick_worker ();
  g_assert_cmpint (kill (victim, SIGKILL), ==, 0);

  results = fiber_map_result_get (r, POOL_TEST_GUARD_MSEC, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (results), ==, n);
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GVariant) boxed = g_variant_get_child_value (results, i);
      g_autoptr(GVariant) value = g_variant_get_variant (boxed);

      g_assert_cmpint (g_variant_get_int32 (value), ==, (gint32) (i * i));
    }
  g_assert_cmpuint (fiber_map_result_get_n_completed (r), ==, n);

  /* Every item ran; at most the one the victim had finished but not yet
   * reported ran twice — never a whole chunk. */
  counts = read_log_counts (fx->log, n);
  for (guint i = 0; i < n; i++)
    {
      guint c = g_array_index (counts, guint, i);

      g_assert_cmpuint (c, >=, 1);
      g_assert_cmpuint (c, <=, 2);
      if (c == 2)
        twice++;
    }
  g_test_message ("%u item(s) ran twice", twice);
  g_assert_cmpuint (twice, <=, 1);

  /* The victim was replaced: the pool has two workers again and works. */
  g_clear_pointer (&results, g_variant_unref);
  results = fiber_pool_map (pool, "fiber.echo", g_variant_new_parsed ("[1, 2, 3, 4]"), 1, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (results), ==, 4);
  children = fiber_test_list_children ();
  g_assert_cmpuint (children->len, ==, 2);
  for (guint i = 0; i < children->len; i++)
    g_assert_cmpint (g_array_index (children, GPid, i), !=, victim);

  pool_test_finish (pool);
}

/* An item that kills every worker that runs it: it runs 1 + max-retries
 * times, then fails with FIBER_ERROR_WORKER_LOST; the others succeed. */
static void
test_max_retries (Fixture       *fx,
                  gconstpointer  data)
{
  const guint n = 20, victim = 13, max_retries = 2;
  FiberPool *pool = new_pool (data, 2, max_retries, TRUE);
  g_autoptr(GVariantBuilder) b = g_variant_builder_new (G_VARIANT_TYPE ("a(sii)"));
  g_autoptr(FiberMapResult) r = NULL;
  g_autoptr(GArray) counts = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GError) error = NULL;
  guint index, n_ok = 0, n_lost = 0;

  for (guint i = 0; i < n; i++)
    g_variant_builder_add (b, "(sii)", fx->log, (gint32) i, (gint32) victim);
  r = fiber_pool_imap_unordered (pool, "test.die-on", g_variant_builder_end (b), 3, &error);
  g_assert_no_error (error);
  for (;;)
    {
      g_autoptr(GError) item_error = NULL;
      g_autoptr(GVariant) item = NULL;

      if (fiber_map_result_next (r, POOL_TEST_GUARD_MSEC, &index, &item, &item_error))
        {
          g_assert_cmpint (g_variant_get_int32 (item), ==, (gint32) index);
          n_ok++;
        }
      else if (item_error != NULL)
        {
          g_assert_error (item_error, FIBER_ERROR, FIBER_ERROR_WORKER_LOST);
          g_assert_cmpuint (index, ==, victim);
          n_lost++;
        }
      else
        break;
    }
  g_assert_cmpuint (n_ok, ==, n - 1);
  g_assert_cmpuint (n_lost, ==, 1);

  /* A loss counts against an item when the blame is exact: the worker
   * held that item alone.  A worker lost with a whole chunk in flight has
   * each of its items run again alone first, so the victim may run once
   * more than 1 + max-retries times, never endlessly. */
  counts = read_log_counts (fx->log, n);
  g_assert_cmpuint (g_array_index (counts, guint, victim), >=, 1 + max_retries);
  g_assert_cmpuint (g_array_index (counts, guint, victim), <=, 2 + max_retries);
  for (guint i = 0; i < n; i++)
    if (i != victim)
      g_assert_cmpuint (g_array_index (counts, guint, i), <=, 2);
  g_unlink (fx->log);

  /* Alone, the item runs exactly 1 + max-retries times. */
  value = fiber_pool_apply (pool, "test.die-on",
                            g_variant_new ("(sii)", fx->log, 0, 0), &error);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_WORKER_LOST);
  g_assert_null (value);
  g_clear_error (&error);
  g_clear_pointer (&counts, g_array_unref);
  counts = read_log_counts (fx->log, 1);
  g_assert_cmpuint (g_array_index (counts, guint, 0), ==, 1 + max_retries);

  /* The pool recovered. */
  value = fiber_pool_apply (pool, "fiber.echo", g_variant_new_int32 (5), &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_variant_get_int32 (value), ==, 5);

  pool_test_finish (pool);
}

/* max-retries 0: the item that took its worker down (the first of its
 * chunk) is not run again; the rest of the chunk is. */
static void
test_no_retries (Fixture       *fx,
                 gconstpointer  data)
{
  const guint n = 6, victim = 3;
  FiberPool *pool = new_pool (data, 2, 0, TRUE);
  g_autoptr(GVariantBuilder) b = g_variant_builder_new (G_VARIANT_TYPE ("a(sii)"));
  g_autoptr(FiberMapResult) r = NULL;
  g_autoptr(GArray) counts = NULL;
  g_autoptr(GError) error = NULL;
  guint index, n_ok = 0, n_lost = 0;

  for (guint i = 0; i < n; i++)
    g_variant_builder_add (b, "(sii)", fx->log, (gint32) i, (gint32) victim);
  r = fiber_pool_imap (pool, "test.die-on", g_variant_builder_end (b), 3, &error);
  g_assert_no_error (error);
  for (;;)
    {
      g_autoptr(GError) item_error = NULL;
      g_autoptr(GVariant) item = NULL;

      if (fiber_map_result_next (r, POOL_TEST_GUARD_MSEC, &index, &item, &item_error))
        n_ok++;
      else if (item_error != NULL)
        {
          g_assert_error (item_error, FIBER_ERROR, FIBER_ERROR_WORKER_LOST);
          g_assert_cmpuint (index, ==, victim);
          n_lost++;
        }
      else
        break;
    }
  g_assert_cmpuint (n_ok, ==, n - 1);
  g_assert_cmpuint (n_lost, ==, 1);
  counts = read_log_counts (fx->log, n);
  g_assert_cmpuint (g_array_index (counts, guint, victim), ==, 1);

  pool_test_finish (pool);
}

/* Not resilient: the items of a lost worker fail at once. */
static void
test_not_resilient (Fixture       *fx,
                    gconstpointer  data)
{
  FiberPool *pool = new_pool (data, 1, 3, FALSE);
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) counts = NULL;

  value = fiber_pool_apply (pool, "test.die-on", g_variant_new ("(sii)", fx->log, 0, 0), &error);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_WORKER_LOST);
  g_assert_null (value);
  g_clear_error (&error);
  counts = read_log_counts (fx->log, 1);
  g_assert_cmpuint (g_array_index (counts, guint, 0), ==, 1);

  /* A fresh worker serves the next call. */
  value = fiber_pool_apply (pool, "fiber.echo", g_variant_new_int32 (5), &error);
  g_assert_no_error (error);

  pool_test_finish (pool);
}

/* A worker that stops answering (SIGSTOP) is given up after five missed
 * heartbeats, killed and replaced; the map completes exactly. */
static void
test_worker_silent (Fixture       *fx,
                    gconstpointer  data)
{
  const char *type = data;
  const guint n = 60;
  g_autoptr(GError) error = NULL;
  FiberPool *pool = FIBER_POOL (g_initable_new (FIBER_TYPE_PROCESS_POOL, NULL, &error,
                                                "pool-type", type,
                                                "processes", 2,
                                                "daemon", g_str_equal (type, "process"),
                                                "heartbeat-interval", 100,
                                                NULL));
  g_autoptr(GVariantBuilder) b = g_variant_builder_new (G_VARIANT_TYPE ("a(sid)"));
  g_autoptr(FiberMapResult) r = NULL;
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GArray) counts = NULL;
  gint64 deadline;
  guint twice = 0;
  GPid victim;

  g_assert_no_error (error);
  for (guint i = 0; i < n; i++)
    g_variant_builder_add (b, "(sid)", fx->log, (gint32) i, 0.01);
  r = fiber_pool_starmap_async (pool, "test.slow-square", g_variant_builder_end (b), 1,
                                NULL, NULL, NULL);
  wait_for_lines (fx->log, 5);
  victim = pick_worker ();
  g_assert_cmpint (kill (victim, SIGSTOP), ==, 0);

  results = fiber_map_result_get (r, POOL_TEST_GUARD_MSEC, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (results), ==, n);
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GVariant) boxed = g_variant_get_child_value (results, i);
      g_autoptr(GVariant) value = g_variant_get_variant (boxed);

      g_assert_cmpint (g_variant_get_int32 (value), ==, (gint32) (i * i));
    }
  counts = read_log_counts (fx->log, n);
  for (guint i = 0; i < n; i++)
    {
      g_assert_cmpuint (g_array_index (counts, guint, i), >=, 1);
      if (g_array_index (counts, guint, i) > 1)
        twice++;
    }
  g_assert_cmpuint (twice, <=, 1);

  /* The frozen worker was killed (SIGKILL ends a stopped process too). */
  deadline = g_get_monotonic_time () + (gint64) POOL_TEST_GUARD_MSEC * 1000;
  while (fiber_test_pid_alive (victim))
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_usleep (5000);
    }

  pool_test_finish (pool);
}

/* A task that blocks far longer than the liveness window (five missed
 * heartbeats) does not get its worker declared lost: the watchdog keeps
 * the heartbeats going.  Interrupting it takes effect when it returns. */
static void
test_long_blocking_task (Fixture       *fx,
                         gconstpointer  data)
{
  const char *type = data;
  g_autoptr(GError) error = NULL;
  FiberPool *pool = FIBER_POOL (g_initable_new (FIBER_TYPE_PROCESS_POOL, NULL, &error,
                                                "pool-type", type,
                                                "processes", 1,
                                                "daemon", g_str_equal (type, "process"),
                                                "heartbeat-interval", 50,
                                                NULL));
  g_autoptr(GVariant) value = NULL;
  g_autoptr(FiberApplyResult) r = NULL;
  g_autoptr(GArray) before = NULL;
  g_autoptr(GArray) after = NULL;

  g_assert_no_error (error);
  before = fiber_test_list_children ();
  value = fiber_pool_apply (pool, "test.block", g_variant_new ("(sd)", fx->log, 1.0), &error);
  g_assert_no_error (error);
  g_clear_pointer (&value, g_variant_unref);
  g_assert_cmpuint (count_lines (fx->log), ==, 1);

  r = fiber_pool_apply_async (pool, "test.block", g_variant_new ("(sd)", fx->log, 0.6),
                              NULL, NULL, NULL);
  wait_for_lines (fx->log, 2);
  fiber_pool_interrupt (pool);
  value = fiber_apply_result_get (r, POOL_TEST_GUARD_MSEC, &error);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INTERRUPTED);
  g_clear_error (&error);

  /* the same worker throughout */
  after = fiber_test_list_children ();
  g_assert_cmpuint (after->len, ==, 1);
  g_assert_cmpint (g_array_index (after, GPid, 0), ==, g_array_index (before, GPid, 0));
  g_assert_cmpuint (count_lines (fx->log), ==, 2);

  pool_test_finish (pool);
}

static void
remove_tree (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);

      if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        remove_tree (child);
      else
        g_unlink (child);
    }
  g_rmdir (path);
}

/* The process that owns a pool is SIGKILLed: its workers, busy or not, do
 * not outlive it for long (daemonic ones watch it; all of them lose the
 * connection to their pool). */
static void
test_owner_killed (Fixture       *fx,
                   gconstpointer  data)
{
  g_autofree char *pids_path = g_build_filename (fx->dir, "pids", NULL);
  g_autofree char *tmp = g_build_filename (fx->dir, "tmp", NULL);
  g_autofree char *contents = NULL;
  g_auto(GStrv) lines = NULL;
  g_autoptr(FiberProcess) owner = NULL;
  g_autoptr(GError) error = NULL;
  gint64 deadline;
  int exitcode = 0;

  /* The orphaned workers are re-parented to us, so we can reap them. */
  g_assert_cmpint (prctl (PR_SET_CHILD_SUBREAPER, 1), ==, 0);

  owner = fiber_process_new ("test.pool-then-die", g_variant_new ("(ss)", (const char *) data, fx->dir));
  g_assert_true (fiber_process_start (owner, &error));
  g_assert_no_error (error);
  g_assert_true (fiber_process_join (owner, POOL_TEST_GUARD_MSEC));
  g_assert_true (fiber_process_get_exitcode (owner, &exitcode));
  g_assert_cmpint (exitcode, ==, -SIGKILL);

  g_assert_true (g_file_get_contents (pids_path, &contents, NULL, NULL));
  lines = g_strsplit (contents, "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, 3);
  deadline = g_get_monotonic_time () + (gint64) POOL_TEST_GUARD_MSEC * 1000;
  for (guint i = 0; lines[i] != NULL && *lines[i] != '\0'; i++)
    {
      GPid pid = (GPid) g_ascii_strtoll (lines[i], NULL, 10);
      gint64 start = g_get_monotonic_time ();
      int status;
      pid_t got;

      g_assert_cmpint (pid, >, 0);
      while ((got = waitpid (pid, &status, WNOHANG)) == 0 &&
             g_get_monotonic_time () < deadline)
        g_usleep (2000);
      if (got == 0)
        kill (pid, SIGKILL);
      g_assert_cmpint (got, ==, pid);
      g_test_message ("worker %d gone after %.2f s", (int) pid,
                      (g_get_monotonic_time () - start) / 1e6);
    }

  g_assert_cmpint (prctl (PR_SET_CHILD_SUBREAPER, 0), ==, 0);
  g_unlink (pids_path);
  remove_tree (tmp);
}

static const struct
{
  const char *name;
  void      (*func) (Fixture *, gconstpointer);
} cases[] = {
  { "failing-items", test_failing_items },
  { "worker-killed", test_worker_killed },
  { "max-retries", test_max_retries },
  { "no-retries", test_no_retries },
  { "not-resilient", test_not_resilient },
  { "worker-silent", test_worker_silent },
  { "long-blocking-task", test_long_blocking_task },
  { "owner-killed", test_owner_killed },
};

int
main (int    argc,
      char **argv)
{
  g_autoptr(GError) error = NULL;
  int ret;

  fiber_task_register ("test.fail-some", task_fail_some, NULL, NULL);
  fiber_task_register ("test.slow-square", task_slow_square, NULL, NULL);
  fiber_task_register ("test.die-on", task_die_on, NULL, NULL);
  fiber_task_register ("test.pool-then-die", task_pool_then_die, NULL, NULL);
  fiber_task_register ("test.block", task_block, NULL, NULL);
  fiber_task_register ("test.started-then-sleep", pool_test_task_started_then_sleep, NULL, NULL);

  if (!fiber_init (&argc, &argv, &error))
    g_error ("fiber_init: %s", error->message);
  fiber_test_init_environment ();
  g_test_init (&argc, &argv, NULL);

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    pool_test_add_typed_full ("pool-resilience", cases[i].name, sizeof (Fixture),
                              (GTestFixtureFunc) fixture_setup,
                              (GTestFixtureFunc) cases[i].func,
                              (GTestFixtureFunc) fixture_teardown);

  ret = g_test_run ();
  fiber_test_cleanup_environment ();
  return ret;
}

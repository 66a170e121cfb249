/* test-process.c — FiberProcess: multiprocessing.Process semantics
 *
 * The children re-execute this test program: its main() registers the test
 * tasks and calls fiber_init(), which runs the target and exits.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <fiber.h>
#include <errno.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fiber-test-util.h"

/* Guards only: a healthy run takes milliseconds. */
#define GUARD_MSEC 30000

/* ------------------------------------------------------------------------
 * Tasks (run in the children)
 * ------------------------------------------------------------------------ */

static char *
bytes_to_hex (GBytes *bytes)
{
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  GString *hex = g_string_new (NULL);

  for (gsize i = 0; i < len; i++)
    g_string_append_printf (hex, "%02x", data[i]);
  return g_string_free (hex, FALSE);
}

/* Writes atomically, so the parent never reads half a file. */
static gboolean
write_file (const char  *path,
            const char  *contents,
            GError     **error)
{
  g_autofree char *tmp = g_strconcat (path, ".tmp", NULL);

  if (!g_file_set_contents (tmp, contents, -1, error))
    return FALSE;
  if (g_rename (tmp, path) != 0)
    {
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
                   "rename: %s", g_strerror (errno));
      return FALSE;
    }
  return TRUE;
}

/* (s path) → writes "pid\nname\ndaemon\nauthkey-hex\n" of the current process. */
static GVariant *
task_write_identity (GVariant *args, GCancellable *cancellable, gpointer data, GError **error)
{
  FiberProcess *self = fiber_current_process ();
  g_autofree char *hex = bytes_to_hex (fiber_process_get_authkey (self));
  g_autofree char *text = NULL;
  const char *path;

  g_variant_get (args, "(&s)", &path);
  text = g_strdup_printf ("%" G_GINT64_FORMAT "\n%s\n%d\n%s\n",
                          fiber_process_get_pid (self),
                          fiber_process_get_name (self),
                          fiber_process_get_daemon (self), hex);
  if (fiber_process_get_pid (self) != getpid ())
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_FAILED, "pid mismatch");
      return NULL;
    }
  if (!write_file (path, text, error))
    return NULL;
  return g_variant_new ("()");
}

/* (s path) → tries to start a child; writes the error message. */
static GVariant *
task_start_child (GVariant *args, GCancellable *cancellable, gpointer data, GError **error)
{
  g_autoptr(FiberProcess) child = fiber_process_new ("fiber.noop", NULL);
  g_autoptr(GError) local_error = NULL;
  const char *path;

  g_variant_get (args, "(&s)", &path);
  if (fiber_process_start (child, &local_error))
    {
      fiber_process_join (child, -1);
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_FAILED, "a daemonic process started a child");
      return NULL;
    }
  if (!g_error_matches (local_error, FIBER_ERROR, FIBER_ERROR_DAEMONIC))
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return NULL;
    }
  if (!write_file (path, local_error->message, error))
    return NULL;
  return g_variant_new ("()");
}

/* (s path) → starts a daemonic child sleeping for a minute, writes its pid,
 * then sleeps itself (until the test kills it). */
static GVariant *
task_spawn_daemonic (GVariant *args, GCancellable *cancellable, gpointer data, GError **error)
{
  g_autoptr(FiberProcess) child = fiber_process_new ("fiber.sleep", g_variant_new ("(d)", 60.0));
  g_autofree char *text = NULL;
  const char *path;

  g_variant_get (args, "(&s)", &path);
  fiber_process_set_daemon (child, TRUE);
  if (!fiber_process_start (child, error))
    return NULL;
  text = g_strdup_printf ("%" G_GINT64_FORMAT, fiber_process_get_pid (child));
  if (!write_file (path, text, error))
    return NULL;
  g_usleep (60 * G_USEC_PER_SEC);
  return g_variant_new ("()");
}

/* (s path) → starts a child that writes its identity to @path, joins it. */
static GVariant *
task_nested (GVariant *args, GCancellable *cancellable, gpointer data, GError **error)
{
  g_autoptr(FiberProcess) child = fiber_process_new ("test.write-identity", args);
  int exitcode = -1;

  if (!fiber_process_start (child, error))
    return NULL;
  fiber_process_join (child, -1);
  if (!fiber_process_get_exitcode (child, &exitcode) || exitcode != 0)
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_FAILED, "child exit code %d", exitcode);
      return NULL;
    }
  return g_variant_new ("()");
}

/* (sd) → sleeps, then writes "done" to the file. */
static GVariant *
task_sleep_then_write (GVariant *args, GCancellable *cancellable, gpointer data, GError **error)
{
  const char *path;
  double seconds;

  g_variant_get (args, "(&sd)", &path, &seconds);
  g_usleep ((gulong) (seconds * G_USEC_PER_SEC));
  if (!write_file (path, "done", error))
    return NULL;
  return g_variant_new ("()");
}

/* (s) → starts a child that writes to the file a little later, and
 * returns without joining it. */
static GVariant *
task_leave_child (GVariant *args, GCancellable *cancellable, gpointer data, GError **error)
{
  const char *path;
  g_autoptr(FiberProcess) child = NULL;

  g_variant_get (args, "(&s)", &path);
  child = fiber_process_new ("test.sleep-then-write", g_variant_new ("(sd)", path, 0.3));
  if (!fiber_process_start (child, error))
    return NULL;
  return g_variant_new ("()");
}

/* (su) → checks that the string has the given length. */
static GVariant *
task_check_size (GVariant *args, GCancellable *cancellable, gpointer data, GError **error)
{
  const char *s;
  guint32 len;

  g_variant_get (args, "(&su)", &s, &len);
  if (strlen (s) != len)
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_FAILED, "got %zu bytes, not %u",
                   strlen (s), len);
      return NULL;
    }
  return g_variant_new ("()");
}

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

static char *
tmp_path (const char *name)
{
  return g_build_filename (g_getenv ("TMPDIR"), name, NULL);
}

static FiberProcess *
start_process (const char *task,
               GVariant   *args)
{
  g_autoptr(GError) error = NULL;
  FiberProcess *p = fiber_process_new (task, args);

  g_assert_true (fiber_process_start (p, &error));
  g_assert_no_error (error);
  return p;
}

static int
join_exitcode (FiberProcess *p)
{
  int exitcode = 12345;

  g_assert_true (fiber_process_join (p, GUARD_MSEC));
  g_assert_false (fiber_process_is_alive (p));
  g_assert_true (fiber_process_get_exitcode (p, &exitcode));
  return exitcode;
}

/* Waits (guard) for a file a child writes; returns its contents. */
static char *
wait_for_file (const char *path)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) GUARD_MSEC * 1000;
  char *contents = NULL;

  while (!g_file_get_contents (path, &contents, NULL, NULL))
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_usleep (5000);
    }
  return contents;
}

static gboolean
in_list (GPtrArray    *list,
         FiberProcess *p)
{
  return g_ptr_array_find (list, p, NULL);
}

/* ------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------ */

static void
test_exitcode_ok (void)
{
  g_autoptr(FiberProcess) p = fiber_process_new ("fiber.noop", NULL);
  int exitcode;

  g_assert_cmpint (fiber_process_get_pid (p), ==, 0);
  g_assert_false (fiber_process_is_alive (p));
  g_assert_false (fiber_process_get_exitcode (p, &exitcode));
  g_assert_false (fiber_process_join (p, 0));
  g_assert_true (fiber_process_start (p, NULL));
  g_assert_cmpint (fiber_process_get_pid (p), >, 0);
  g_assert_cmpint (join_exitcode (p), ==, 0);
  /* join again, and the exit code stays. */
  g_assert_true (fiber_process_join (p, -1));
  g_assert_true (fiber_process_get_exitcode (p, &exitcode));
  g_assert_cmpint (exitcode, ==, 0);

  fiber_test_assert_no_leaks (2000);
}

static void
test_exitcode_fail (void)
{
  g_autoptr(FiberProcess) p = start_process ("fiber.fail", g_variant_new ("(s)", "expected failure"));

  g_assert_cmpint (join_exitcode (p), ==, 1);

  fiber_test_assert_no_leaks (2000);
}

static void
test_unknown_task (void)
{
  g_autoptr(FiberProcess) p = start_process ("test.no-such-task", NULL);

  g_assert_cmpint (join_exitcode (p), ==, 1);

  fiber_test_assert_no_leaks (2000);
}

static void
test_no_target (void)
{
  g_autoptr(FiberProcess) p = start_process (NULL, NULL);
  g_autoptr(GVariant) result = NULL;

  g_assert_cmpint (join_exitcode (p), ==, 0);
  result = fiber_process_run (p, NULL);
  g_assert_cmpstr (g_variant_get_type_string (result), ==, "()");

  fiber_test_assert_no_leaks (2000);
}

static void
test_terminate (void)
{
  g_autoptr(FiberProcess) p = start_process ("fiber.sleep", g_variant_new ("(d)", 60.0));
  int exitcode;

  g_assert_true (fiber_process_is_alive (p));
  g_assert_false (fiber_process_get_exitcode (p, &exitcode));
  fiber_process_terminate (p);
  g_assert_cmpint (join_exitcode (p), ==, -SIGTERM);
  /* Terminating an ended process does nothing. */
  fiber_process_terminate (p);
  fiber_process_kill (p);

  fiber_test_assert_no_leaks (2000);
}

static void
test_kill (void)
{
  g_autoptr(FiberProcess) p = start_process ("fiber.sleep", g_variant_new ("(d)", 60.0));

  fiber_process_kill (p);
  g_assert_cmpint (join_exitcode (p), ==, -SIGKILL);

  fiber_test_assert_no_leaks (2000);
}

static void
test_join_timeout (void)
{
  g_autoptr(FiberProcess) p = start_process ("fiber.sleep", g_variant_new ("(d)", 60.0));
  gint64 start, elapsed;

  start = g_get_monotonic_time ();
  g_assert_false (fiber_process_join (p, 200));
  elapsed = g_get_monotonic_time () - start;
  /* It returned because the timeout ran out, and not much later. */
  g_assert_cmpint (elapsed, >=, 190 * 1000);
  g_assert_cmpint (elapsed, <, 20 * G_USEC_PER_SEC);
  g_assert_true (fiber_process_is_alive (p));
  g_assert_false (fiber_process_join (p, 0));

  fiber_process_terminate (p);
  g_assert_cmpint (join_exitcode (p), ==, -SIGTERM);

  fiber_test_assert_no_leaks (2000);
}

static void
test_sentinel (void)
{
  g_autoptr(FiberProcess) p = fiber_process_new ("fiber.sleep", g_variant_new ("(d)", 60.0));
  int sentinel;

  g_assert_cmpint (fiber_process_get_sentinel (p), ==, -1);
  g_assert_true (fiber_process_start (p, NULL));
  sentinel = fiber_process_get_sentinel (p);
  g_assert_cmpint (sentinel, >=, 0);
  g_assert_false (fiber_test_fd_readable (sentinel, 0));
  g_assert_false (fiber_test_fd_readable (sentinel, 100));

  fiber_process_terminate (p);
  g_assert_true (fiber_test_fd_readable (sentinel, GUARD_MSEC));
  g_assert_cmpint (join_exitcode (p), ==, -SIGTERM);
  g_assert_true (fiber_test_fd_readable (sentinel, 0));

  fiber_test_assert_no_leaks (2000);
}

static void
test_active_children (void)
{
  g_autoptr(FiberProcess) a = start_process ("fiber.sleep", g_variant_new ("(d)", 60.0));
  g_autoptr(FiberProcess) b = start_process ("fiber.sleep", g_variant_new ("(d)", 60.0));
  g_autoptr(FiberProcess) never = fiber_process_new ("fiber.noop", NULL);
  g_autoptr(GPtrArray) list = NULL;

  list = fiber_active_children ();
  g_assert_cmpuint (list->len, ==, 2);
  g_assert_true (in_list (list, a));
  g_assert_true (in_list (list, b));
  g_assert_false (in_list (list, never));
  g_clear_pointer (&list, g_ptr_array_unref);

  fiber_process_terminate (a);
  g_assert_cmpint (join_exitcode (a), ==, -SIGTERM);
  list = fiber_active_children ();
  g_assert_cmpuint (list->len, ==, 1);
  g_assert_true (in_list (list, b));
  g_clear_pointer (&list, g_ptr_array_unref);

  /* Ended without a join: active_children() reaps it. */
  fiber_process_kill (b);
  g_assert_true (fiber_test_fd_readable (fiber_process_get_sentinel (b), GUARD_MSEC));
  list = fiber_active_children ();
  g_assert_cmpuint (list->len, ==, 0);
  g_assert_cmpuint (fiber_test_count_children (), ==, 0);
  g_assert_false (fiber_process_is_alive (b));

  fiber_test_assert_no_leaks (2000);
}

static void
test_pid_and_name (void)
{
  g_autofree char *path = tmp_path ("identity");
  g_autoptr(FiberProcess) p = fiber_process_new ("test.write-identity", g_variant_new ("(s)", path));
  g_autoptr(GBytes) key = g_bytes_new_static ("0123456789abcdef", 16);
  g_autofree char *contents = NULL;
  g_auto(GStrv) lines = NULL;

  fiber_process_set_name (p, "custom name");
  fiber_process_set_authkey (p, key);
  g_assert_true (fiber_process_start (p, NULL));
  g_assert_cmpint (join_exitcode (p), ==, 0);

  g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  lines = g_strsplit (contents, "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, 5);
  g_assert_cmpint (g_ascii_strtoll (lines[0], NULL, 10), ==, fiber_process_get_pid (p));
  g_assert_cmpstr (lines[1], ==, "custom name");
  g_assert_cmpstr (lines[2], ==, "0");
  g_assert_cmpstr (lines[3], ==, "30313233343536373839616263646566");

  g_unlink (path);
  fiber_test_assert_no_leaks (2000);
}

static void
test_default_names (void)
{
  g_autofree char *path = tmp_path ("nested");
  g_autoptr(FiberProcess) p = fiber_process_new ("test.nested", g_variant_new ("(s)", path));
  g_autoptr(FiberProcess) q = fiber_process_new (NULL, NULL);
  g_autofree char *expected = NULL;
  g_autofree char *contents = NULL;
  g_autofree char *current_key = NULL;
  g_auto(GStrv) lines = NULL;
  guint64 n = 0;

  /* Process-N, numbered in creation order. */
  g_assert_true (g_str_has_prefix (fiber_process_get_name (p), "Process-"));
  g_assert_true (g_ascii_string_to_unsigned (fiber_process_get_name (p) + 8, 10, 1,
                                             G_MAXINT, &n, NULL));
  expected = g_strdup_printf ("Process-%" G_GUINT64_FORMAT, n + 1);
  g_assert_cmpstr (fiber_process_get_name (q), ==, expected);
  g_clear_pointer (&expected, g_free);

  /* The child's own child is Process-N:1, and inherits the authkey. */
  g_assert_true (fiber_process_start (p, NULL));
  g_assert_cmpint (join_exitcode (p), ==, 0);
  g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  lines = g_strsplit (contents, "\n", -1);
  expected = g_strdup_printf ("Process-%" G_GUINT64_FORMAT ":1", n);
  g_assert_cmpstr (lines[1], ==, expected);
  current_key = bytes_to_hex (fiber_process_get_authkey (fiber_current_process ()));
  g_assert_cmpstr (lines[3], ==, current_key);

  /* A name set to NULL goes back to the default. */
  fiber_process_set_name (p, "other");
  fiber_process_set_name (p, NULL);
  g_clear_pointer (&expected, g_free);
  expected = g_strdup_printf ("Process-%" G_GUINT64_FORMAT, n);
  g_assert_cmpstr (fiber_process_get_name (p), ==, expected);

  g_unlink (path);
  fiber_test_assert_no_leaks (2000);
}

static void
test_start_twice (void)
{
  g_autoptr(FiberProcess) p = start_process ("fiber.sleep", g_variant_new ("(d)", 60.0));
  g_autoptr(GError) error = NULL;

  g_assert_false (fiber_process_start (p, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_STATE);
  g_clear_error (&error);

  fiber_process_terminate (p);
  g_assert_cmpint (join_exitcode (p), ==, -SIGTERM);
  g_assert_false (fiber_process_start (p, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_STATE);

  fiber_test_assert_no_leaks (2000);
}

static void
test_current_process (void)
{
  FiberProcess *self = fiber_current_process ();
  g_autoptr(GError) error = NULL;
  GBytes *authkey;

  g_assert_true (self == fiber_current_process ());
  g_assert_cmpstr (fiber_process_get_name (self), ==, "MainProcess");
  g_assert_false (fiber_process_get_daemon (self));
  g_assert_cmpint (fiber_process_get_pid (self), ==, getpid ());
  g_assert_true (fiber_process_is_alive (self));
  authkey = fiber_process_get_authkey (self);
  g_assert_cmpuint (g_bytes_get_size (authkey), ==, 32);
  g_assert_false (fiber_process_start (self, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_STATE);
  /* No FIBER_* role variables are left in the environment. */
  g_assert_null (g_getenv ("FIBER_AUTHKEY"));
  g_assert_null (g_getenv ("FIBER_PROCESS_NAME"));

  fiber_test_assert_no_leaks (2000);
}

static void
test_properties (void)
{
  g_autoptr(FiberProcess) p = fiber_process_new ("fiber.echo", g_variant_new ("(i)", 42));
  g_autoptr(GVariant) args = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autoptr(GBytes) authkey = NULL;
  g_autoptr(FiberBackend) backend = NULL;
  g_autofree char *task = NULL;
  g_autofree char *name = NULL;
  g_autofree char *printed = NULL;
  gboolean daemon = TRUE;
  gint64 pid = -1;
  g_autoptr(GError) error = NULL;

  g_object_get (p, "task", &task, "args", &args, "name", &name, "daemon", &daemon,
                "pid", &pid, "authkey", &authkey, "backend", &backend, NULL);
  g_assert_cmpstr (task, ==, "fiber.echo");
  printed = g_variant_print (args, FALSE);
  g_assert_cmpstr (printed, ==, "(42,)");
  g_assert_cmpstr (name, ==, fiber_process_get_name (p));
  g_assert_false (daemon);
  g_assert_cmpint (pid, ==, 0);
  g_assert_true (g_bytes_equal (authkey, fiber_process_get_authkey (fiber_current_process ())));
  g_assert_true (backend == fiber_backend_get_default ());

  /* run() executes the target here. */
  result = fiber_process_run (p, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_equal (result, args));
  g_assert_false (fiber_process_is_alive (p));

  fiber_test_assert_no_leaks (2000);
}

static void
test_daemonic_no_children (void)
{
  g_autofree char *path = tmp_path ("daemonic-error");
  g_autoptr(FiberProcess) p = fiber_process_new ("test.start-child", g_variant_new ("(s)", path));
  g_autofree char *message = NULL;

  fiber_process_set_daemon (p, TRUE);
  g_assert_true (fiber_process_get_daemon (p));
  g_assert_true (fiber_process_start (p, NULL));
  g_assert_cmpint (join_exitcode (p), ==, 0);
  g_assert_true (g_file_get_contents (path, &message, NULL, NULL));
  g_assert_cmpstr (message, ==, "daemonic processes are not allowed to have children");

  g_unlink (path);
  fiber_test_assert_no_leaks (2000);
}

static void
test_daemon_dies_with_parent (void)
{
  g_autofree char *path = tmp_path ("grandchild-pid");
  g_autoptr(FiberProcess) parent = NULL;
  g_autofree char *contents = NULL;
  gint64 deadline;
  GPid grandchild;
  int status;
  pid_t r;

  /* The orphaned grandchild is re-parented to us, so we can reap it. */
  g_assert_cmpint (prctl (PR_SET_CHILD_SUBREAPER, 1), ==, 0);

  parent = start_process ("test.spawn-daemonic", g_variant_new ("(s)", path));
  contents = wait_for_file (path);
  grandchild = (GPid) g_ascii_strtoll (contents, NULL, 10);
  g_assert_cmpint (grandchild, >, 0);
  g_assert_true (fiber_test_pid_alive (grandchild));

  fiber_process_kill (parent);
  g_assert_cmpint (join_exitcode (parent), ==, -SIGKILL);

  /* Gone within 2 s (it takes microseconds: it watches a pidfd). */
  deadline = g_get_monotonic_time () + 2 * G_USEC_PER_SEC;
  while ((r = waitpid (grandchild, &status, WNOHANG)) == 0 &&
         g_get_monotonic_time () < deadline)
    g_usleep (1000);
  if (r == 0)
    kill (grandchild, SIGKILL);
  g_assert_cmpint (r, ==, grandchild);
  g_assert_false (fiber_test_pid_alive (grandchild));

  g_assert_cmpint (prctl (PR_SET_CHILD_SUBREAPER, 0), ==, 0);
  g_unlink (path);
  fiber_test_assert_no_leaks (2000);
}

static void
test_exit_joins_children (void)
{
  g_autofree char *path = tmp_path ("left-child");
  g_autoptr(FiberProcess) p = start_process ("test.leave-child", g_variant_new ("(s)", path));
  g_autofree char *contents = NULL;

  /* The child's exit waited for its own non-daemonic child. */
  g_assert_cmpint (join_exitcode (p), ==, 0);
  g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  g_assert_cmpstr (contents, ==, "done");

  g_unlink (path);
  fiber_test_assert_no_leaks (2000);
}

static void
test_large_payload (void)
{
  gsize size = 300 * 1024;
  g_autofree char *big = g_malloc (size + 1);
  g_autoptr(FiberProcess) p = NULL;

  memset (big, 'x', size);
  big[size] = '\0';
  p = start_process ("test.check-size", g_variant_new ("(su)", big, (guint32) size));
  g_assert_cmpint (join_exitcode (p), ==, 0);

  /* The payload file (and its directory) are gone: the leak check looks
   * at TMPDIR. */
  fiber_test_assert_no_leaks (2000);
}

static void
test_large_payload_killed (void)
{
  gsize size = 300 * 1024;
  g_autofree char *big = g_malloc (size + 1);
  g_autoptr(FiberProcess) p = NULL;

  memset (big, 'y', size);
  big[size] = '\0';
  p = start_process ("test.check-size", g_variant_new ("(su)", big, (guint32) size));
  /* Killed before it could read (and delete) its payload: the parent
   * deletes it. */
  fiber_process_kill (p);
  join_exitcode (p);

  fiber_test_assert_no_leaks (2000);
}

static void
test_many (void)
{
  g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func (g_object_unref);

  for (guint i = 0; i < 8; i++)
    g_ptr_array_add (list, start_process ("fiber.echo", g_variant_new ("(u)", i)));
  for (guint i = 0; i < list->len; i++)
    g_assert_cmpint (join_exitcode (list->pdata[i]), ==, 0);

  fiber_test_assert_no_leaks (2000);
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GError) error = NULL;
  int ret;

  fiber_task_register ("test.write-identity", task_write_identity, NULL, NULL);
  fiber_task_register ("test.start-child", task_start_child, NULL, NULL);
  fiber_task_register ("test.spawn-daemonic", task_spawn_daemonic, NULL, NULL);
  fiber_task_register ("test.nested", task_nested, NULL, NULL);
  fiber_task_register ("test.check-size", task_check_size, NULL, NULL);
  fiber_task_register ("test.sleep-then-write", task_sleep_then_write, NULL, NULL);
  fiber_task_register ("test.leave-child", task_leave_child, NULL, NULL);

  if (!fiber_init (&argc, &argv, &error))
    g_error ("fiber_init: %s", error->message);
  fiber_test_init_environment ();
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/process/exitcode-ok", test_exitcode_ok);
  g_test_add_func ("/process/exitcode-fail", test_exitcode_fail);
  g_test_add_func ("/process/unknown-task", test_unknown_task);
  g_test_add_func ("/process/no-target", test_no_target);
  g_test_add_func ("/process/terminate", test_terminate);
  g_test_add_func ("/process/kill", test_kill);
  g_test_add_func ("/process/join-timeout", test_join_timeout);
  g_test_add_func ("/process/sentinel", test_sentinel);
  g_test_add_func ("/process/active-children", test_active_children);
  g_test_add_func ("/process/pid-and-name", test_pid_and_name);
  g_test_add_func ("/process/default-names", test_default_names);
  g_test_add_func ("/process/start-twice", test_start_twice);
  g_test_add_func ("/process/current-process", test_current_process);
  g_test_add_func ("/process/properties", test_properties);
  g_test_add_func ("/process/daemonic-no-children", test_daemonic_no_children);
  g_test_add_func ("/process/daemon-dies-with-parent", test_daemon_dies_with_parent);
  g_test_add_func ("/process/exit-joins-children", test_exit_joins_children);
  g_test_add_func ("/process/large-payload", test_large_payload);
  g_test_add_func ("/process/large-payload-killed", test_large_payload_killed);
  g_test_add_func ("/process/many", test_many);

  ret = g_test_run ();
  fiber_test_cleanup_environment ();
  return ret;
}

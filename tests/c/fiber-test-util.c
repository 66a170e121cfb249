/* fiber-test-util.c — shared checks for the C test suites
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "fiber-test-util.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static char *test_tmpdir;

static void
remove_tree (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  if (dir != NULL)
    {
      while ((name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *child = g_build_filename (path, name, NULL);

          if (g_file_test (child, G_FILE_TEST_IS_DIR) &&
              !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
            remove_tree (child);
          else
            g_unlink (child);
        }
    }
  g_rmdir (path);
}

void
fiber_test_init_environment (void)
{
  g_autofree char *tmpl = NULL;
  const char *base = g_getenv ("TMPDIR");

  if (base == NULL || *base == '\0')
    base = "/tmp";
  tmpl = g_build_filename (base, "fiber-test-XXXXXX", NULL);
  test_tmpdir = g_mkdtemp (g_steal_pointer (&tmpl));
  g_assert_nonnull (test_tmpdir);
  g_setenv ("TMPDIR", test_tmpdir, TRUE);
}

static gboolean
read_ppid_state (const char *pid_dir, GPid *ppid, char *state)
{
  g_autofree char *path = g_build_filename ("/proc", pid_dir, "stat", NULL);
  g_autofree char *contents = NULL;
  const char *p;

  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return FALSE;
  /* comm may contain spaces and parentheses: parse after the last ')' */
  p = strrchr (contents, ')');
  if (p == NULL)
    return FALSE;
  return sscanf (p + 1, " %c %d", state, ppid) == 2;
}

GArray *
fiber_test_list_children (void)
{
  GArray *pids = g_array_new (FALSE, FALSE, sizeof (GPid));
  g_autoptr(GDir) dir = g_dir_open ("/proc", 0, NULL);
  const char *name;
  GPid self = getpid ();

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      GPid ppid = 0;
      char state = 0;

      if (!g_ascii_isdigit (name[0]))
        continue;
      if (!read_ppid_state (name, &ppid, &state))
        continue;
      if (ppid == self)
        {
          GPid pid = (GPid) g_ascii_strtoll (name, NULL, 10);
          g_array_append_val (pids, pid);
        }
    }
  return pids;
}

guint
fiber_test_count_children (void)
{
  g_autoptr(GArray) pids = fiber_test_list_children ();
  return pids->len;
}

gboolean
fiber_test_pid_alive (GPid pid)
{
  g_autofree char *pid_dir = g_strdup_printf ("%d", (int) pid);
  GPid ppid;
  char state = 0;

  if (!read_ppid_state (pid_dir, &ppid, &state))
    return FALSE;
  return state != 'Z' && state != 'X';
}

static guint
count_entries (const char *path, GString *names)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;
  guint n = 0;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      n++;
      g_string_append_printf (names, " %s", name);
    }
  return n;
}

void
fiber_test_assert_no_leaks (int grace_msec)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) grace_msec * 1000;
  g_autoptr(GString) names = g_string_new (NULL);
  guint n_children;
  guint n_files;

  while ((n_children = fiber_test_count_children ()) > 0 &&
         g_get_monotonic_time () < deadline)
    g_usleep (10 * 1000);
  if (n_children > 0)
    {
      g_autoptr(GArray) pids = fiber_test_list_children ();
      for (guint i = 0; i < pids->len; i++)
        g_test_message ("leaked child process %d",
                        (int) g_array_index (pids, GPid, i));
    }
  g_assert_cmpuint (n_children, ==, 0);

  if (test_tmpdir == NULL)
    return;
  while ((n_files = count_entries (test_tmpdir, g_string_truncate (names, 0))) > 0 &&
         g_get_monotonic_time () < deadline)
    g_usleep (10 * 1000);
  if (n_files > 0)
    g_test_message ("left behind in %s:%s", test_tmpdir, names->str);
  g_assert_cmpuint (n_files, ==, 0);
}

gboolean
fiber_test_fd_readable (int fd,
                        int timeout_msec)
{
  struct pollfd pfd = { .fd = fd, .events = POLLIN };
  int r;

  do
    r = poll (&pfd, 1, timeout_msec);
  while (r < 0 && errno == EINTR);
  g_assert_cmpint (r, >=, 0);
  return r > 0 && (pfd.revents & POLLIN) != 0;
}

void
fiber_test_cleanup_environment (void)
{
  if (test_tmpdir != NULL)
    remove_tree (test_tmpdir);
  g_clear_pointer (&test_tmpdir, g_free);
}

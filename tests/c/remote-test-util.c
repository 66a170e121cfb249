/* remote-test-util.c — helpers shared by the remote suites
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "remote-test-util.h"

static const char *slurm_binaries[] = {
  "slurmctld", "slurmd", "slurmrestd", "munged", "mungekey", "sinfo", "squeue",
  "scancel", NULL
};

static char *missing_binary;

char *
fiber_test_find_binary (const char *name)
{
  char *path = g_find_program_in_path (name);

  if (path == NULL)
    {
      g_autofree char *sbin = g_build_filename ("/usr/sbin", name, NULL);

      if (g_file_test (sbin, G_FILE_TEST_IS_EXECUTABLE))
        path = g_steal_pointer (&sbin);
    }
  return path;
}

/* Runs this program again under scripts/slurm-cluster.sh run.  Returns
 * only on failure. */
static void
reexec_under_cluster (const char  *test_name,
                      int          argc,
                      char       **argv)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_auto(GStrv) args = NULL;
  g_autofree char *script = NULL;
  g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
  const char *srcdir = g_getenv ("G_TEST_SRCDIR");

  if (srcdir != NULL)
    script = g_build_filename (srcdir, "..", "scripts", "slurm-cluster.sh", NULL);
  if (script == NULL || !g_file_test (script, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_printerr ("%s: no cluster (FIBER_SLURM_SOCKET unset) and "
                  "scripts/slurm-cluster.sh not found (G_TEST_SRCDIR unset?); run "
                  "it as 'scripts/slurm-cluster.sh run -- %s'\n", test_name, argv[0]);
      return;
    }

  g_strv_builder_add_many (builder, script, "run", "--", self != NULL ? self : argv[0], NULL);
  for (int i = 1; i < argc; i++)
    g_strv_builder_add (builder, argv[i]);
  args = g_strv_builder_end (builder);
  g_setenv ("FIBER_SLURM_REEXEC", "1", TRUE);
  execv (script, args);
  g_printerr ("%s: cannot run %s: %s\n", test_name, script, g_strerror (errno));
}

gboolean
fiber_test_slurm_init (const char  *test_name,
                       int          argc,
                       char       **argv)
{
  for (guint i = 0; slurm_binaries[i] != NULL && missing_binary == NULL; i++)
    {
      g_autofree char *path = fiber_test_find_binary (slurm_binaries[i]);

      if (path == NULL)
        missing_binary = g_strdup (slurm_binaries[i]);
    }
  if (missing_binary != NULL || g_getenv ("FIBER_SLURM_SOCKET") != NULL)
    return TRUE;

  if (g_getenv ("FIBER_SLURM_REEXEC") != NULL)
    {
      g_printerr ("%s: slurm-cluster.sh run gave no cluster\n", test_name);
      return FALSE;
    }
  reexec_under_cluster (test_name, argc, argv);
  return FALSE;
}

void
fiber_test_slurm_cleanup (void)
{
  g_clear_pointer (&missing_binary, g_free);
}

gboolean
fiber_test_skip_without_slurm (void)
{
  if (missing_binary == NULL)
    return FALSE;
  g_test_skip_printf ("Slurm is not installed ('%s' not found); "
                      "scripts/slurm-cluster.sh install installs it",
                      missing_binary);
  return TRUE;
}

gboolean
fiber_test_scancel (gint64 id)
{
  g_autofree char *id_text = g_strdup_printf ("%" G_GINT64_FORMAT, id);
  g_autofree char *scancel = fiber_test_find_binary ("scancel");
  const char *argv[] = { scancel, id_text, NULL };
  int status = 0;

  if (scancel == NULL)
    return FALSE;
  if (!g_spawn_sync (NULL, (char **) argv, NULL,
                     G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                     NULL, NULL, NULL, NULL, &status, NULL))
    return FALSE;
  return g_spawn_check_wait_status (status, NULL);
}

GPid
fiber_test_env_pid (const char *name)
{
  const char *text = g_getenv (name);
  guint64 pid = 0;

  g_assert_nonnull (text);
  g_assert_true (g_ascii_string_to_unsigned (text, 10, 1, G_MAXINT, &pid, NULL));
  return (GPid) pid;
}

void
fiber_test_wait_for_job_state (FiberJob      *job,
                               FiberJobState  state,
                               guint          timeout_msec)
{
  gint64 deadline = g_get_monotonic_time () + timeout_msec * G_TIME_SPAN_MILLISECOND;

  while (fiber_job_get_state (job) != state && g_get_monotonic_time () < deadline)
    g_usleep (10 * 1000);
  g_assert_cmpint (fiber_job_get_state (job), ==, state);
}

/* fuzz-replay.c — runs a libFuzzer target over files without libFuzzer
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Builds with any compiler, so the seed corpus (and any crash input saved
 * next to it) is replayed by the ordinary test suite.  Arguments are files
 * or directories of files.
 */

#include <glib.h>
#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static gboolean
replay (const char *path,
        guint      *count)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *contents = NULL;
  gsize size;

  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_autoptr(GDir) dir = g_dir_open (path, 0, &error);
      const char *name;

      if (dir == NULL)
        {
          fprintf (stderr, "%s\n", error->message);
          return FALSE;
        }
      while ((name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *child = g_build_filename (path, name, NULL);

          if (!replay (child, count))
            return FALSE;
        }
      return TRUE;
    }

  if (!g_file_get_contents (path, &contents, &size, &error))
    {
      fprintf (stderr, "%s\n", error->message);
      return FALSE;
    }
  LLVMFuzzerTestOneInput ((const uint8_t *) contents, size);
  (*count)++;
  return TRUE;
}

int
main (int   argc,
      char *argv[])
{
  guint count = 0;

  LLVMFuzzerInitialize (&argc, &argv);
  for (int i = 1; i < argc; i++)
    if (!replay (argv[i], &count))
      return 1;
  printf ("replayed %u inputs\n", count);
  return count > 0 ? 0 : 1;
}

/* gen-message-corpus.c — writes the seed corpus of fuzz-message
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Usage: gen-message-corpus DIR   (writes one file per seed into DIR)
 * The committed tests/fuzz/corpus/message/ was made with it.
 */

#include <stdio.h>

#include "fiber-error.h"
#include "fiber-message.h"

static const char *outdir;

static void
save_bytes (const char *name,
            GBytes     *frame)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = g_build_filename (outdir, name, NULL);
  gsize size;
  const char *data = g_bytes_get_data (frame, &size);

  if (!g_file_set_contents (path, data, size, &error))
    g_error ("%s", error->message);
}

static void
save (const char       *name,
      FiberMessageType  type,
      GVariant         *body)
{
  g_autoptr(GBytes) frame = _fiber_message_encode (type, body);

  save_bytes (name, frame);
}

static GVariant *
task_body (guint n_items)
{
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("(sa(tuv))"));
  g_variant_builder_add (&builder, "s", "square");
  g_variant_builder_open (&builder, G_VARIANT_TYPE ("a(tuv)"));
  for (guint i = 0; i < n_items; i++)
    g_variant_builder_add (&builder, "(tuv)", (guint64) 9, i,
                           i % 3 == 0 ? g_variant_new ("(i)", (gint32) i) :
                           i % 3 == 1 ? g_variant_new ("(sd)", "x", i / 2.0) :
                           g_variant_new ("av", NULL));
  g_variant_builder_close (&builder);
  return g_variant_builder_end (&builder);
}

int
main (int   argc,
      char *argv[])
{
  static const guint8 proof[32] = { 0xde, 0xad, 0xbe, 0xef };
  GVariantBuilder builder;

  if (argc != 2)
    {
      fprintf (stderr, "usage: %s DIR\n", argv[0]);
      return 2;
    }
  outdir = argv[1];
  g_mkdir_with_parents (outdir, 0755);

  save ("hello", FIBER_MESSAGE_HELLO,
        g_variant_new ("(sxs@ay)", "worker-1", (gint64) 1234, "localhost",
                       g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, proof,
                                                  sizeof proof, 1)));
  save ("ready", FIBER_MESSAGE_READY, g_variant_new ("(u)", 4));
  save ("heartbeat", FIBER_MESSAGE_HEARTBEAT, g_variant_new ("()"));
  save ("goodbye", FIBER_MESSAGE_GOODBYE, g_variant_new ("(s)", "done"));
  save ("welcome", FIBER_MESSAGE_WELCOME,
        g_variant_new ("(svuu)", "", g_variant_new ("()"), 0, 1000));
  save ("welcome-init", FIBER_MESSAGE_WELCOME,
        g_variant_new ("(svuu)", "setup", g_variant_new ("(sas)", "a", NULL),
                       10, 5000));
  save ("reject", FIBER_MESSAGE_REJECT, g_variant_new ("(s)", "bad proof"));
  save ("shutdown", FIBER_MESSAGE_SHUTDOWN, g_variant_new ("()"));
  save ("interrupt", FIBER_MESSAGE_INTERRUPT, g_variant_new ("(t)", (guint64) 3));
  save ("task-1", FIBER_MESSAGE_TASK, task_body (1));
  save ("task-8", FIBER_MESSAGE_TASK, task_body (8));

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(tubv)"));
  g_variant_builder_add (&builder, "(tubv)", (guint64) 9, 0, TRUE,
                         g_variant_new_int32 (0));
  g_variant_builder_add (&builder, "(tubv)", (guint64) 9, 1, TRUE,
                         g_variant_new ("(sd)", "y", 0.5));
  g_variant_builder_add (&builder, "(tubv)", (guint64) 9, 2, FALSE,
                         g_variant_new ("(siss)", "fiber-error-quark",
                                        FIBER_ERROR_INTERRUPTED, "stopped", ""));
  g_variant_builder_add (&builder, "(tubv)", (guint64) 9, 3, FALSE,
                         g_variant_new ("(siss)", "g-io-error-quark", 1,
                                        "not found", "Traceback:\n  f()"));
  save ("result", FIBER_MESSAGE_RESULT, g_variant_builder_end (&builder));

  /* a few invalid frames */
  {
    static const guint8 unknown[] = { 'Z', 0 };
    static const guint8 bad_bool[] = { 'r', 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0,
                                       2, 0, 0, 0, 0, 'i', 0 };
    g_autoptr(GBytes) u = g_bytes_new_static (unknown, sizeof unknown);
    g_autoptr(GBytes) b = g_bytes_new_static (bad_bool, sizeof bad_bool);
    g_autoptr(GBytes) task = _fiber_message_encode (FIBER_MESSAGE_TASK, task_body (3));
    g_autoptr(GBytes) cut = g_bytes_new_from_bytes (task, 0, g_bytes_get_size (task) - 3);

    save_bytes ("bad-unknown-type", u);
    save_bytes ("bad-result-bool", b);
    save_bytes ("bad-task-truncated", cut);
  }

  return 0;
}

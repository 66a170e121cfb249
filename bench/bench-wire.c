/* bench-wire.c — cost of the wire codec (plugin/wire/fiber-message.c)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Times, per message: building + encoding, decoding, and decoding + reading
 * every item, for a TASK and a RESULT of 64 small items (an int32 each).
 * Usage: bench-wire [ITERATIONS]
 */

#include <stdio.h>
#include <stdlib.h>

#include "fiber-message.h"

#define N_ITEMS 64

static GVariant *
build_task (guint64 batch)
{
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("(sa(tuv))"));
  g_variant_builder_add (&builder, "s", "square");
  g_variant_builder_open (&builder, G_VARIANT_TYPE ("a(tuv)"));
  for (guint i = 0; i < N_ITEMS; i++)
    g_variant_builder_add (&builder, "(tuv)", batch, i,
                           g_variant_new_int32 ((gint32) i));
  g_variant_builder_close (&builder);
  return g_variant_builder_end (&builder);
}

static GVariant *
build_result (guint64 batch)
{
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(tubv)"));
  for (guint i = 0; i < N_ITEMS; i++)
    g_variant_builder_add (&builder, "(tubv)", batch, i, TRUE,
                           g_variant_new_int32 ((gint32) (i * i)));
  return g_variant_builder_end (&builder);
}

/* Reads every item the way a consumer would. */
static gint64
read_items (FiberMessageType  type,
            GVariant         *body)
{
  g_autoptr(GVariant) items = NULL;
  gint64 sum = 0;
  gsize n;

  if (type == FIBER_MESSAGE_TASK)
    items = g_variant_get_child_value (body, 1);
  else
    items = g_variant_ref (body);

  n = g_variant_n_children (items);
  for (gsize i = 0; i < n; i++)
    {
      g_autoptr(GVariant) item = g_variant_get_child_value (items, i);
      g_autoptr(GVariant) boxed = g_variant_get_child_value (item, g_variant_n_children (item) - 1);
      g_autoptr(GVariant) value = g_variant_get_variant (boxed);

      sum += g_variant_get_int32 (value);
    }
  return sum;
}

static void
run (const char       *name,
     FiberMessageType  type,
     GVariant        *(*build) (guint64),
     guint             iterations)
{
  g_autoptr(GBytes) sample = _fiber_message_encode (type, build (1));
  gint64 start, t_encode, t_decode, t_read;
  gint64 sink = 0;

  start = g_get_monotonic_time ();
  for (guint i = 0; i < iterations; i++)
    {
      g_autoptr(GBytes) frame = _fiber_message_encode (type, build (i));

      sink += g_bytes_get_size (frame);
    }
  t_encode = g_get_monotonic_time () - start;

  start = g_get_monotonic_time ();
  for (guint i = 0; i < iterations; i++)
    {
      g_autoptr(GVariant) body = NULL;
      FiberMessageType got;

      if (!_fiber_message_decode (sample, &got, &body, NULL))
        abort ();
      sink += g_variant_get_size (body);
    }
  t_decode = g_get_monotonic_time () - start;

  start = g_get_monotonic_time ();
  for (guint i = 0; i < iterations; i++)
    {
      g_autoptr(GVariant) body = NULL;
      FiberMessageType got;

      if (!_fiber_message_decode (sample, &got, &body, NULL))
        abort ();
      sink += read_items (got, body);
    }
  t_read = g_get_monotonic_time () - start;

  printf ("%-6s %2d items, %4" G_GSIZE_FORMAT " bytes: build+encode %.2f µs, "
          "decode %.2f µs, decode+read %.2f µs per message (%.0f k round trips/s)%s\n",
          name, N_ITEMS, g_bytes_get_size (sample),
          (double) t_encode / iterations, (double) t_decode / iterations,
          (double) t_read / iterations,
          1e3 * iterations / (double) (t_encode + t_read),
          sink == 42 ? " " : "");
}

int
main (int   argc,
      char *argv[])
{
  guint iterations = argc > 1 ? (guint) atoi (argv[1]) : 100000;

  run ("TASK", FIBER_MESSAGE_TASK, build_task, iterations);
  run ("RESULT", FIBER_MESSAGE_RESULT, build_result, iterations);
  return 0;
}

/* test-message.c — the wire codec (plugin/wire/fiber-message.c)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <string.h>

#include "fiber.h"
#include "fiber-message.h"
#include "fiber-test-util.h"

static const FiberMessageType all_types[] = {
  FIBER_MESSAGE_HELLO, FIBER_MESSAGE_READY, FIBER_MESSAGE_RESULT,
  FIBER_MESSAGE_HEARTBEAT, FIBER_MESSAGE_GOODBYE, FIBER_MESSAGE_WELCOME,
  FIBER_MESSAGE_REJECT, FIBER_MESSAGE_TASK, FIBER_MESSAGE_SHUTDOWN,
  FIBER_MESSAGE_INTERRUPT,
};

/* A typical body of each message type (floating). */
static GVariant *
sample_body (FiberMessageType type)
{
  static const guint8 proof[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0xff };
  GVariantBuilder builder;

  switch (type)
    {
    case FIBER_MESSAGE_HELLO:
      return g_variant_new ("(sxs@ay)", "worker-3", (gint64) 4242, "node-1",
                            g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE,
                                                       proof, sizeof proof, 1));
    case FIBER_MESSAGE_READY:
      return g_variant_new ("(u)", 16);
    case FIBER_MESSAGE_RESULT:
      g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(tubv)"));
      g_variant_builder_add (&builder, "(tubv)", (guint64) 7, 0, TRUE,
                             g_variant_new_int32 (42));
      g_variant_builder_add (&builder, "(tubv)", (guint64) 7, 1, FALSE,
                             g_variant_new ("(siss)", "fiber-error-quark",
                                            FIBER_ERROR_TASK_FAILED, "boom",
                                            "Traceback:\n  in f()"));
      g_variant_builder_add (&builder, "(tubv)", G_MAXUINT64, G_MAXUINT32,
                             TRUE, g_variant_new ("(sas)", "x", NULL));
      return g_variant_builder_end (&builder);
    case FIBER_MESSAGE_HEARTBEAT:
    case FIBER_MESSAGE_SHUTDOWN:
      return g_variant_new ("()");
    case FIBER_MESSAGE_GOODBYE:
      return g_variant_new ("(s)", "maxtasksperchild reached");
    case FIBER_MESSAGE_WELCOME:
      return g_variant_new ("(svuu)", "init", g_variant_new ("(ii)", 1, 2),
                            100, 5000);
    case FIBER_MESSAGE_REJECT:
      return g_variant_new ("(s)", "bad authkey");
    case FIBER_MESSAGE_TASK:
      g_variant_builder_init (&builder, G_VARIANT_TYPE ("(sa(tuv))"));
      g_variant_builder_add (&builder, "s", "square");
      g_variant_builder_open (&builder, G_VARIANT_TYPE ("a(tuv)"));
      for (guint i = 0; i < 5; i++)
        g_variant_builder_add (&builder, "(tuv)", (guint64) 3, i,
                               g_variant_new ("(d)", i * 1.5));
      g_variant_builder_close (&builder);
      return g_variant_builder_end (&builder);
    case FIBER_MESSAGE_INTERRUPT:
      return g_variant_new ("(t)", (guint64) 12);
    default:
      g_assert_not_reached ();
    }
}

static GBytes *
frame_from (const void *data,
            gsize       size)
{
  return g_bytes_new (data, size);
}

/* Decoding must fail with FIBER_ERROR_PROTOCOL (and not crash). */
static void
assert_rejected (GBytes *frame)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) body = NULL;
  FiberMessageType type = 0;

  g_assert_false (_fiber_message_decode (frame, &type, &body, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_PROTOCOL);
  g_assert_nonnull (error->message);
  g_assert_null (body);
}

static void
assert_rejected_data (const void *data,
                      gsize       size)
{
  g_autoptr(GBytes) frame = frame_from (data, size);

  assert_rejected (frame);
}

static GVariant *
decode_ok (GBytes           *frame,
           FiberMessageType *type)
{
  g_autoptr(GError) error = NULL;
  GVariant *body = NULL;

  g_assert_true (_fiber_message_decode (frame, type, &body, &error));
  g_assert_no_error (error);
  g_assert_nonnull (body);
  g_assert_false (g_variant_is_floating (body));
  return body;
}

static void
test_body_types (void)
{
  guint known = 0;

  for (int c = -1; c < 257; c++)
    if (_fiber_message_body_type (c) != NULL)
      known++;
  g_assert_cmpuint (known, ==, G_N_ELEMENTS (all_types));

  for (gsize i = 0; i < G_N_ELEMENTS (all_types); i++)
    g_assert_nonnull (_fiber_message_body_type (all_types[i]));

  g_assert_true (g_variant_type_equal (_fiber_message_body_type ('T'),
                                       G_VARIANT_TYPE ("(sa(tuv))")));
  g_assert_true (g_variant_type_equal (_fiber_message_body_type ('r'),
                                       G_VARIANT_TYPE ("a(tubv)")));
  fiber_test_assert_no_leaks (2000);
}

static void
test_round_trip (void)
{
  for (gsize i = 0; i < G_N_ELEMENTS (all_types); i++)
    {
      g_autoptr(GVariant) sent = g_variant_ref_sink (sample_body (all_types[i]));
      g_autoptr(GBytes) frame = NULL;
      g_autoptr(GBytes) again = NULL;
      g_autoptr(GVariant) received = NULL;
      g_autoptr(GVariant) normal = g_variant_get_normal_form (sent);
      FiberMessageType type = 0;
      const guint8 *data;
      gsize size;

      g_test_message ("message %c", all_types[i]);
      frame = _fiber_message_encode (all_types[i], sent);
      data = g_bytes_get_data (frame, &size);
      g_assert_cmpuint (size, ==, g_variant_get_size (sent) + 1);
      g_assert_cmpint (data[0], ==, all_types[i]);
      g_assert_cmpmem (data + 1, size - 1,
                       g_variant_get_data (normal), g_variant_get_size (normal));

      received = decode_ok (frame, &type);
      g_assert_cmpint (type, ==, all_types[i]);
      g_assert_true (g_variant_equal (sent, received));

      /* Re-encoding a decoded body gives the same bytes. */
      again = _fiber_message_encode (type, received);
      g_assert_true (g_bytes_equal (frame, again));
    }
  fiber_test_assert_no_leaks (2000);
}

static void
test_encode_sinks_floating (void)
{
  g_autoptr(GVariant) kept = g_variant_ref_sink (g_variant_new ("(u)", 3));
  g_autoptr(GBytes) a = NULL;
  g_autoptr(GBytes) b = NULL;
  g_autoptr(GVariant) child = NULL;

  /* A floating body is consumed... */
  a = _fiber_message_encode (FIBER_MESSAGE_READY, g_variant_new ("(u)", 3));
  /* ...a non-floating one is not. */
  b = _fiber_message_encode (FIBER_MESSAGE_READY, kept);
  g_assert_true (g_bytes_equal (a, b));
  g_assert_false (g_variant_is_floating (kept));
  child = g_variant_get_child_value (kept, 0);
  g_assert_cmpuint (g_variant_get_uint32 (child), ==, 3);
  fiber_test_assert_no_leaks (2000);
}

/* A body holding a non-normal untrusted value (a boolean byte 2 inside a
 * 'v') is normalised by the encoder, so the peer accepts it. */
static void
test_encode_normalises (void)
{
  static const guint8 bad_bool[] = { 2 };
  g_autoptr(GVariant) args = NULL;
  g_autoptr(GVariant) body = NULL;
  g_autoptr(GVariant) received = NULL;
  g_autoptr(GBytes) frame = NULL;
  GVariantBuilder builder;
  FiberMessageType type;

  args = g_variant_ref_sink (g_variant_new_from_data (G_VARIANT_TYPE_BOOLEAN,
                                                      bad_bool, 1, FALSE,
                                                      NULL, NULL));
  g_assert_false (g_variant_is_normal_form (args));

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("(sa(tuv))"));
  g_variant_builder_add (&builder, "s", "identity");
  g_variant_builder_open (&builder, G_VARIANT_TYPE ("a(tuv)"));
  g_variant_builder_add (&builder, "(tuv)", (guint64) 1, 0, args);
  g_variant_builder_close (&builder);
  body = g_variant_ref_sink (g_variant_builder_end (&builder));
  g_assert_false (g_variant_is_normal_form (body));

  frame = _fiber_message_encode (FIBER_MESSAGE_TASK, body);
  received = decode_ok (frame, &type);
  g_assert_cmpint (type, ==, FIBER_MESSAGE_TASK);
  fiber_test_assert_no_leaks (2000);
}

/* The decoded body may reference the frame when the body is aligned, and
 * is a private aligned copy otherwise; both decode the same. */
static void
test_decode_alignment (void)
{
  g_autoptr(GVariant) sent = g_variant_ref_sink (sample_body (FIBER_MESSAGE_TASK));
  g_autoptr(GBytes) frame = _fiber_message_encode (FIBER_MESSAGE_TASK, sent);
  gsize size;
  const guint8 *data = g_bytes_get_data (frame, &size);

  for (gsize offset = 0; offset < 16; offset++)
    {
      g_autofree guint8 *buffer = g_malloc (size + 16);
      g_autoptr(GBytes) whole = NULL;
      g_autoptr(GBytes) shifted = NULL;
      g_autoptr(GVariant) received = NULL;
      FiberMessageType type;

      memcpy (buffer + offset, data, size);
      whole = g_bytes_new_static (buffer, size + 16);
      shifted = g_bytes_new_from_bytes (whole, offset, size);
      received = decode_ok (shifted, &type);
      g_assert_true (g_variant_equal (sent, received));
      g_assert_cmpuint ((guintptr) g_variant_get_data (received) % 8, ==, 0);
    }
  fiber_test_assert_no_leaks (2000);
}

static void
test_reject_empty_and_unknown (void)
{
  g_autoptr(GBytes) empty = g_bytes_new (NULL, 0);

  assert_rejected (empty);

  for (int c = 0; c < 256; c++)
    {
      guint8 frame[2] = { (guint8) c, 0 };

      if (_fiber_message_body_type (c) != NULL)
        continue;
      assert_rejected_data (frame, 1);
      assert_rejected_data (frame, 2);
    }
  fiber_test_assert_no_leaks (2000);
}

static void
test_reject_truncated (void)
{
  for (gsize i = 0; i < G_N_ELEMENTS (all_types); i++)
    {
      g_autoptr(GBytes) frame =
        _fiber_message_encode (all_types[i], sample_body (all_types[i]));
      gsize size;
      const guint8 *data = g_bytes_get_data (frame, &size);

      /* A lone type byte is an empty body; only an empty RESULT array
       * takes that as valid. */
      for (gsize len = 1; len < size; len++)
        {
          g_autoptr(GBytes) part = NULL;

          if (len == 1 && all_types[i] == FIBER_MESSAGE_RESULT)
            continue;
          part = g_bytes_new_from_bytes (frame, 0, len);
          assert_rejected (part);
        }

      /* One byte more is not valid either (for these samples). */
        {
          g_autofree guint8 *longer = g_malloc0 (size + 1);

          memcpy (longer, data, size);
          assert_rejected_data (longer, size + 1);
        }
    }
  fiber_test_assert_no_leaks (2000);
}

static void
test_reject_wrong_body_type (void)
{
  /* Pairs of (type byte, body of another message) that cannot parse as
   * the type byte's body. */
  static const struct { FiberMessageType type; FiberMessageType body_of; } cases[] = {
    { FIBER_MESSAGE_READY,     FIBER_MESSAGE_INTERRUPT },
    { FIBER_MESSAGE_INTERRUPT, FIBER_MESSAGE_READY },
    { FIBER_MESSAGE_HEARTBEAT, FIBER_MESSAGE_READY },
    { FIBER_MESSAGE_SHUTDOWN,  FIBER_MESSAGE_GOODBYE },
    { FIBER_MESSAGE_TASK,      FIBER_MESSAGE_HELLO },
    { FIBER_MESSAGE_HELLO,     FIBER_MESSAGE_TASK },
    { FIBER_MESSAGE_WELCOME,   FIBER_MESSAGE_REJECT },
    { FIBER_MESSAGE_RESULT,    FIBER_MESSAGE_TASK },
    { FIBER_MESSAGE_TASK,      FIBER_MESSAGE_RESULT },
    { FIBER_MESSAGE_GOODBYE,   FIBER_MESSAGE_READY },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GBytes) frame =
        _fiber_message_encode (cases[i].body_of, sample_body (cases[i].body_of));
      gsize size;
      const guint8 *orig = g_bytes_get_data (frame, &size);
      g_autofree guint8 *data = g_memdup2 (orig, size);

      g_test_message ("%c body sent as %c", cases[i].body_of, cases[i].type);
      data[0] = cases[i].type;
      assert_rejected_data (data, size);
    }
  fiber_test_assert_no_leaks (2000);
}

static void
test_reject_non_normal (void)
{
  /* "(s)" without its nul terminator */
  static const guint8 unterminated[] = { 'G', 'b', 'y', 'e' };
  /* "(s)" with a nul before the end */
  static const guint8 inner_nul[] = { 'X', 'a', 0, 'b', 0 };
  /* "(s)" that is not UTF-8 */
  static const guint8 not_utf8[] = { 'G', 0xc3, 0x28, 0 };
  /* "()" must be a single zero byte */
  static const guint8 unit_nonzero[] = { 'h', 1 };
  static const guint8 unit_long[] = { 'S', 0, 0 };
  /* "(u)" of the wrong size */
  static const guint8 ready_short[] = { 'R', 1, 0, 0 };
  static const guint8 ready_long[] = { 'R', 1, 0, 0, 0, 0 };
  g_autoptr(GVariant) result = NULL;
  g_autoptr(GBytes) frame = NULL;
  g_autofree guint8 *data = NULL;
  const guint8 *orig;
  gsize size;

  assert_rejected_data (unterminated, sizeof unterminated);
  assert_rejected_data (inner_nul, sizeof inner_nul);
  assert_rejected_data (not_utf8, sizeof not_utf8);
  assert_rejected_data (unit_nonzero, sizeof unit_nonzero);
  assert_rejected_data (unit_long, sizeof unit_long);
  assert_rejected_data (ready_short, sizeof ready_short);
  assert_rejected_data (ready_long, sizeof ready_long);

  /* A RESULT whose ok flag is 2: the value is a boolean in GVariant terms,
   * but not in normal form. */
  result = g_variant_ref_sink (g_variant_new_parsed ("[(uint64 1, uint32 0, true, <int32 5>)]"));
  frame = _fiber_message_encode (FIBER_MESSAGE_RESULT, result);
  orig = g_bytes_get_data (frame, &size);
  data = g_memdup2 (orig, size);
  /* layout: t at 0..7, u at 8..11, b at 12 (frame offset +1) */
  g_assert_cmpint (data[1 + 12], ==, 1);
  data[1 + 12] = 2;
  assert_rejected_data (data, size);
  fiber_test_assert_no_leaks (2000);
}

/* A 'v' nested deeper than GVariant allows is not normal form. */
static void
test_reject_deep_nesting (void)
{
  g_autoptr(GVariant) inner = g_variant_ref_sink (g_variant_new_int32 (1));
  g_autoptr(GBytes) frame = NULL;
  GVariantBuilder builder;

  for (guint i = 0; i < 200; i++)
    {
      GVariant *boxed = g_variant_ref_sink (g_variant_new_variant (inner));

      g_variant_unref (inner);
      inner = boxed;
    }

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(tubv)"));
  g_variant_builder_add (&builder, "(tubv)", (guint64) 1, 0, TRUE, inner);
  frame = _fiber_message_encode (FIBER_MESSAGE_RESULT,
                                 g_variant_builder_end (&builder));
  assert_rejected (frame);
  fiber_test_assert_no_leaks (2000);
}

static GBytes *
result_frame_with_value (gboolean  ok,
                         GVariant *value)
{
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(tubv)"));
  g_variant_builder_add (&builder, "(tubv)", (guint64) 1, 0, TRUE,
                         g_variant_new_string ("fine"));
  g_variant_builder_add (&builder, "(tubv)", (guint64) 1, 1, ok, value);
  return _fiber_message_encode (FIBER_MESSAGE_RESULT,
                                g_variant_builder_end (&builder));
}

static void
test_reject_bad_error_tuple (void)
{
  GVariant *bad[] = {
    g_variant_new_string ("boom"),
    g_variant_new ("(sis)", "d", 1, "m"),
    g_variant_new ("(sisss)", "d", 1, "m", "t", "x"),
    g_variant_new ("(suss)", "d", 1, "m", "t"),
    g_variant_new ("()"),
    g_variant_new_variant (g_variant_new ("(siss)", "d", 1, "m", "t")),
  };

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GBytes) frame = result_frame_with_value (FALSE, bad[i]);
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) body = NULL;
      FiberMessageType type;

      g_assert_false (_fiber_message_decode (frame, &type, &body, &error));
      g_assert_error (error, FIBER_ERROR, FIBER_ERROR_PROTOCOL);
      g_assert_nonnull (strstr (error->message, "item 1"));
    }

  /* The same values are fine as results of ok items. */
  {
    g_autoptr(GBytes) frame = result_frame_with_value (TRUE, g_variant_new ("(sis)", "d", 1, "m"));
    g_autoptr(GVariant) body = NULL;
    FiberMessageType type;

    body = decode_ok (frame, &type);
    g_assert_cmpuint (g_variant_n_children (body), ==, 2);
  }
  /* And a proper error tuple is accepted. */
  {
    g_autoptr(GBytes) frame =
      result_frame_with_value (FALSE, g_variant_new ("(siss)", "d", 1, "m", ""));
    g_autoptr(GVariant) body = NULL;
    FiberMessageType type;

    body = decode_ok (frame, &type);
    g_assert_cmpint (type, ==, FIBER_MESSAGE_RESULT);
  }
  fiber_test_assert_no_leaks (2000);
}

/* Bytes flipped all over valid frames: every outcome is a clean accept or
 * a FIBER_ERROR_PROTOCOL, and accepted bodies re-encode to the same bytes. */
static void
test_random_corruption (void)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (20240601);

  for (gsize i = 0; i < G_N_ELEMENTS (all_types); i++)
    {
      g_autoptr(GBytes) frame =
        _fiber_message_encode (all_types[i], sample_body (all_types[i]));
      gsize size;
      const guint8 *orig = g_bytes_get_data (frame, &size);

      for (guint round = 0; round < 2000; round++)
        {
          g_autofree guint8 *data = g_memdup2 (orig, size);
          g_autoptr(GBytes) mutated = NULL;
          g_autoptr(GError) error = NULL;
          g_autoptr(GVariant) body = NULL;
          guint flips = g_rand_int_range (rand, 1, 4);
          gsize len = size;
          FiberMessageType type;

          for (guint f = 0; f < flips; f++)
            data[g_rand_int_range (rand, 0, size)] = g_rand_int_range (rand, 0, 256);
          if (g_rand_boolean (rand))
            len = g_rand_int_range (rand, 0, size + 1);

          mutated = g_bytes_new (data, len);
          if (_fiber_message_decode (mutated, &type, &body, &error))
            {
              g_autoptr(GBytes) again = _fiber_message_encode (type, body);

              g_assert_no_error (error);
              g_assert_true (g_bytes_equal (mutated, again));
            }
          else
            g_assert_error (error, FIBER_ERROR, FIBER_ERROR_PROTOCOL);
        }
    }
  fiber_test_assert_no_leaks (2000);
}

static void
test_error_from_tuple (void)
{
  static const struct {
    const char *domain;
    gint32 code;
    const char *message;
    const char *traceback;
    int expected_code;
    const char *expected_message;
  } cases[] = {
    { "fiber-error-quark", FIBER_ERROR_UNKNOWN_TASK, "no such task", "",
      FIBER_ERROR_UNKNOWN_TASK, "no such task" },
    { "fiber-error-quark", FIBER_ERROR_INTERRUPTED, "stop", "tb",
      FIBER_ERROR_INTERRUPTED, "stop\ntb" },
    { "fiber-error-quark", FIBER_ERROR_STATE, "s", "",
      FIBER_ERROR_STATE, "s" },
    { "fiber-error-quark", FIBER_ERROR_FAILED, "f", "",
      FIBER_ERROR_FAILED, "f" },
    { "fiber-error-quark", 9999, "future code", "",
      FIBER_ERROR_TASK_FAILED, "future code" },
    { "fiber-error-quark", -1, "negative", "",
      FIBER_ERROR_TASK_FAILED, "negative" },
    { "g-io-error-quark", G_IO_ERROR_NOT_FOUND, "No such file", "Traceback:\n  open()",
      FIBER_ERROR_TASK_FAILED, "No such file\nTraceback:\n  open()" },
    { "ValueError", 0, "bad value", "", FIBER_ERROR_TASK_FAILED, "bad value" },
    { "", 0, "", "", FIBER_ERROR_TASK_FAILED, "" },
  };

  /* make sure the GIO domain exists as a quark, as in a real worker */
  g_assert_cmpuint (G_IO_ERROR, !=, 0);

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GVariant) tuple =
        g_variant_ref_sink (g_variant_new ("(siss)", cases[i].domain,
                                           cases[i].code, cases[i].message,
                                           cases[i].traceback));
      g_autoptr(GError) error = _fiber_message_error_from_tuple (tuple);

      g_assert_error (error, FIBER_ERROR, cases[i].expected_code);
      g_assert_cmpstr (error->message, ==, cases[i].expected_message);
    }

  /* A domain never seen in this process stays unknown: no quark is made
   * from wire data. */
  {
    const char *fresh = "fiber-test-never-registered-domain-quark";
    g_autoptr(GVariant) tuple =
      g_variant_ref_sink (g_variant_new ("(siss)", fresh, 3, "m", ""));
    g_autoptr(GError) error = NULL;

    g_assert_cmpuint (g_quark_try_string (fresh), ==, 0);
    error = _fiber_message_error_from_tuple (tuple);
    g_assert_error (error, FIBER_ERROR, FIBER_ERROR_TASK_FAILED);
    g_assert_cmpuint (g_quark_try_string (fresh), ==, 0);
  }
  fiber_test_assert_no_leaks (2000);
}

static void
test_error_to_tuple (void)
{
  g_autoptr(GError) io = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_EXISTS,
                                              "exists");
  g_autoptr(GError) fiber = g_error_new_literal (FIBER_ERROR,
                                                 FIBER_ERROR_TIMEOUT, "late");
  g_autoptr(GError) binary = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_FAILED,
                                                  "file \xff\xfe.txt");
  g_autoptr(GVariant) t1 = NULL;
  g_autoptr(GVariant) t2 = NULL;
  g_autoptr(GVariant) t3 = NULL;
  g_autoptr(GError) back = NULL;
  const char *domain, *message, *traceback;
  gint32 code;

  t1 = g_variant_ref_sink (_fiber_message_error_to_tuple (io, NULL));
  g_assert_cmpstr (g_variant_get_type_string (t1), ==, "(siss)");
  g_variant_get (t1, "(&si&s&s)", &domain, &code, &message, &traceback);
  g_assert_cmpstr (domain, ==, "g-io-error-quark");
  g_assert_cmpint (code, ==, G_IO_ERROR_EXISTS);
  g_assert_cmpstr (message, ==, "exists");
  g_assert_cmpstr (traceback, ==, "");

  t2 = g_variant_ref_sink (_fiber_message_error_to_tuple (fiber, "at f()"));
  back = _fiber_message_error_from_tuple (t2);
  g_assert_error (back, FIBER_ERROR, FIBER_ERROR_TIMEOUT);
  g_assert_cmpstr (back->message, ==, "late\nat f()");

  /* Messages that are not UTF-8 still make a valid tuple. */
  t3 = g_variant_ref_sink (_fiber_message_error_to_tuple (binary, "\xc0"));
  g_assert_true (g_variant_is_normal_form (t3));
  g_variant_get (t3, "(&si&s&s)", &domain, &code, &message, &traceback);
  g_assert_true (g_str_has_prefix (message, "file "));
  g_assert_true (g_utf8_validate (message, -1, NULL));
  g_assert_true (g_utf8_validate (traceback, -1, NULL));
  fiber_test_assert_no_leaks (2000);
}

/* ------------------------------------------------------------------ */
/* FiberMessageWriter: byte for byte what GLib makes of the same body    */

static const char * const string_pieces[] = {
  "", "a", "task", "héllo wörld", "日本語のテキスト", "emoji 🎉🐍", "\t\n", "Ω≈ç√∫",
};

static char *
random_string (GRand *rand)
{
  GString *s = g_string_new (NULL);
  guint n = (guint) g_rand_int_range (rand, 0, 6);

  for (guint i = 0; i < n; i++)
    g_string_append (s, string_pieces[g_rand_int_range (rand, 0, G_N_ELEMENTS (string_pieces))]);
  if (g_rand_int_range (rand, 0, 16) == 0)
    for (guint i = (guint) g_rand_int_range (rand, 200, 700); i > 0; i--)
      g_string_append_c (s, (char) ('a' + i % 26));
  return g_string_free (s, FALSE);
}

/* A random value (floating): scalars, strings, byte arrays, empty and full
 * arrays, tuples (the unit too), nested variants, maybes, dictionaries. */
static GVariant *
random_value (GRand *rand,
              guint  depth)
{
  int kind = g_rand_int_range (rand, 0, depth >= 4 ? 8 : 16);

  switch (kind)
    {
    case 0:
      return g_variant_new_boolean (g_rand_boolean (rand));
    case 1:
      return g_variant_new_byte ((guint8) g_rand_int (rand));
    case 2:
      return g_variant_new_int16 ((gint16) g_rand_int (rand));
    case 3:
      return g_variant_new_uint32 (g_rand_int (rand));
    case 4:
      return g_variant_new_int64 ((gint64) (((guint64) g_rand_int (rand) << 32) | g_rand_int (rand)));
    case 5:
      return g_variant_new_double (g_rand_double_range (rand, -1e6, 1e6));
    case 6:
      {
        g_autofree char *str = random_string (rand);
        return g_variant_new_string (str);
      }
    case 7:
      {
        gsize n = (gsize) g_rand_int_range (rand, 0, 300);
        g_autofree guint8 *bytes = g_malloc (MAX (n, 1));

        for (gsize i = 0; i < n; i++)
          bytes[i] = (guint8) g_rand_int (rand);
        return g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, bytes, n, 1);
      }
    case 8:
      {
        static const char * const types[] = { "(sv)", "s", "ay", "a{sv}", "(ii)", "mv" };
        const char *type = types[g_rand_int_range (rand, 0, G_N_ELEMENTS (types))];

        /* An empty array. */
        return g_variant_new_array (G_VARIANT_TYPE (type), NULL, 0);
      }
    case 9:
      {
        GVariant *children[4];
        guint n = (guint) g_rand_int_range (rand, 0, 5);

        for (guint i = 0; i < n; i++)
          children[i] = random_value (rand, depth + 1);
        return g_variant_new_tuple (children, n);
      }
    case 10:
      return g_variant_new_variant (random_value (rand, depth + 1));
    case 11:
      return g_variant_new_maybe (G_VARIANT_TYPE_VARIANT, NULL);
    case 12:
      return g_variant_new_maybe (NULL, random_value (rand, depth + 1));
    case 13:
      {
        GVariantBuilder builder;
        guint n = (guint) g_rand_int_range (rand, 0, 4);

        g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
        for (guint i = 0; i < n; i++)
          {
            g_autofree char *key = random_string (rand);
            g_variant_builder_add (&builder, "{sv}", key, random_value (rand, depth + 1));
          }
        return g_variant_builder_end (&builder);
      }
    case 14:
      {
        GVariantBuilder builder;
        guint n = (guint) g_rand_int_range (rand, 0, 8);

        g_variant_builder_init (&builder, G_VARIANT_TYPE ("as"));
        for (guint i = 0; i < n; i++)
          {
            g_autofree char *str = random_string (rand);
            g_variant_builder_add (&builder, "s", str);
          }
        return g_variant_builder_end (&builder);
      }
    default:
      {
        GVariantBuilder builder;
        guint n = (guint) g_rand_int_range (rand, 0, 6);

        g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(sxmd)"));
        for (guint i = 0; i < n; i++)
          {
            g_autofree char *str = random_string (rand);
            g_variant_builder_add (&builder, "(sxmd)", str, (gint64) g_rand_int (rand) - G_MAXINT32,
                                   g_rand_boolean (rand), g_rand_double (rand));
          }
        return g_variant_builder_end (&builder);
      }
    }
}

/* A value of @size bytes or more (a string or a byte array). */
static GVariant *
large_value (GRand *rand,
             gsize  size)
{
  if (g_rand_boolean (rand))
    {
      g_autofree char *str = g_malloc (size + 1);

      memset (str, 'x', size);
      str[size] = '\0';
      if (size >= strlen ("ünïcode "))
        memcpy (str, "ünïcode ", strlen ("ünïcode "));
      return g_variant_new_string (str);
    }
  else
    {
      g_autofree guint8 *bytes = g_malloc0 (size);

      return g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, bytes, size, 1);
    }
}

typedef struct
{
  guint64   batch_id;
  guint32   index;
  gboolean  ok;
  GVariant *value;
} WriterItem;

static void
writer_item_clear (WriterItem *item)
{
  g_clear_pointer (&item->value, g_variant_unref);
}

/* Writes @items with a FiberMessageWriter, builds the same body with a
 * GVariantBuilder and _fiber_message_encode(), and wants the same bytes. */
static void
assert_writer_matches (FiberMessageType  type,
                       const char       *task,
                       GArray           *items)
{
  g_autoptr(FiberMessageWriter) writer = _fiber_message_writer_new (type, task);
  g_autoptr(GBytes) written = NULL;
  g_autoptr(GBytes) expected = NULL;
  g_autoptr(GVariant) decoded = NULL;
  GVariantBuilder builder;
  GVariant *body;
  FiberMessageType decoded_type = 0;
  const guint8 *a, *b;
  gsize a_size, b_size;

  if (type == FIBER_MESSAGE_TASK)
    {
      g_variant_builder_init (&builder, G_VARIANT_TYPE ("(sa(tuv))"));
      g_variant_builder_add (&builder, "s", task);
      g_variant_builder_open (&builder, G_VARIANT_TYPE ("a(tuv)"));
    }
  else
    g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(tubv)"));

  for (guint i = 0; i < items->len; i++)
    {
      WriterItem *item = &g_array_index (items, WriterItem, i);

      _fiber_message_writer_add (writer, item->batch_id, item->index, item->ok,
                                 g_variant_ref (item->value));
      if (type == FIBER_MESSAGE_TASK)
        g_variant_builder_add (&builder, "(tuv)", item->batch_id, item->index, item->value);
      else
        g_variant_builder_add (&builder, "(tubv)", item->batch_id, item->index, item->ok,
                               item->value);
    }
  g_assert_cmpuint (_fiber_message_writer_get_n_items (writer), ==, items->len);
  if (type == FIBER_MESSAGE_TASK)
    g_variant_builder_close (&builder);
  body = g_variant_builder_end (&builder);

  written = _fiber_message_writer_finish (g_steal_pointer (&writer));
  expected = _fiber_message_encode (type, body);

  a = g_bytes_get_data (written, &a_size);
  b = g_bytes_get_data (expected, &b_size);
  for (gsize i = 0; i < MIN (a_size, b_size); i++)
    if (a[i] != b[i])
      g_error ("%s of %u items: byte %" G_GSIZE_FORMAT " is 0x%02x, GLib's 0x%02x",
               type == FIBER_MESSAGE_TASK ? "TASK" : "RESULT", items->len, i, a[i], b[i]);
  g_assert_cmpuint (a_size, ==, b_size);

  /* And the decoder takes it as the same body. */
  decoded = decode_ok (written, &decoded_type);
  g_assert_cmpint (decoded_type, ==, type);
  {
    g_autoptr(GVariant) expected_body = NULL;
    FiberMessageType expected_type = 0;

    expected_body = decode_ok (expected, &expected_type);
    g_assert_true (g_variant_equal (decoded, expected_body));
  }
}

static GVariant *
random_item_value (GRand    *rand,
                   gboolean  task,
                   gboolean *ok)
{
  *ok = TRUE;
  if (!task && g_rand_int_range (rand, 0, 5) == 0)
    {
      g_autofree char *message = random_string (rand);
      g_autofree char *traceback = random_string (rand);

      *ok = FALSE;
      return g_variant_new ("(siss)", "fiber-error-quark", FIBER_ERROR_TASK_FAILED,
                            message, traceback);
    }
  return random_value (rand, 0);
}

static void
add_item (GArray   *items,
          guint64   batch_id,
          guint32   index,
          gboolean  ok,
          GVariant *value)
{
  WriterItem item = { batch_id, index, ok, g_variant_ref_sink (value) };

  g_array_append_val (items, item);
}

static void
test_writer_matches_glib (void)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (g_test_rand_int ());
  /* Item counts around the 1-, 2- and 4-byte framing offset limits. */
  static const guint counts[] = { 0, 1, 2, 3, 7, 31, 100, 254, 255, 256, 1000 };

  for (guint round = 0; round < 60; round++)
    for (guint t = 0; t < 2; t++)
      {
        gboolean task = t == 0;
        g_autoptr(GArray) items = g_array_new (FALSE, FALSE, sizeof (WriterItem));
        g_autofree char *name = task ? random_string (rand) : NULL;
        guint n = counts[round % G_N_ELEMENTS (counts)];

        g_array_set_clear_func (items, (GDestroyNotify) writer_item_clear);
        for (guint i = 0; i < n; i++)
          {
            gboolean ok;
            GVariant *value = random_item_value (rand, task, &ok);

            add_item (items, (guint64) g_rand_int (rand) << (round % 33), g_rand_int (rand),
                      ok, value);
          }
        assert_writer_matches (task ? FIBER_MESSAGE_TASK : FIBER_MESSAGE_RESULT, name, items);
      }
  fiber_test_assert_no_leaks (2000);
}

static void
test_writer_edge_cases (void)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (g_test_rand_int ());
  /* Item and message sizes around the framing offset limits (255, 64 KiB)
   * and beyond them. */
  static const gsize sizes[] = { 0, 200, 240, 250, 260, 65000, 65520, 65535, 65600, 70000, 300000 };

  for (guint t = 0; t < 2; t++)
    {
      gboolean task = t == 0;
      FiberMessageType type = task ? FIBER_MESSAGE_TASK : FIBER_MESSAGE_RESULT;

      for (guint s = 0; s < G_N_ELEMENTS (sizes); s++)
        {
          g_autoptr(GArray) one = g_array_new (FALSE, FALSE, sizeof (WriterItem));
          g_autoptr(GArray) many = g_array_new (FALSE, FALSE, sizeof (WriterItem));

          g_array_set_clear_func (one, (GDestroyNotify) writer_item_clear);
          g_array_set_clear_func (many, (GDestroyNotify) writer_item_clear);
          add_item (one, G_MAXUINT64, G_MAXUINT32, TRUE, large_value (rand, sizes[s]));
          assert_writer_matches (type, "large", one);

          /* Many small items adding up to about the size. */
          for (gsize total = 0; total < sizes[s];)
            {
              GVariant *value = g_variant_new_int32 ((gint32) total);

              total += 24;
              add_item (many, 1, (guint32) total, TRUE, value);
            }
          assert_writer_matches (type, "many", many);
        }

      {
        g_autoptr(GArray) items = g_array_new (FALSE, FALSE, sizeof (WriterItem));
        /* A boolean stored as 2 is not in normal form: both sides
         * normalise it. */
        static const guint8 two = 2;
        GVariant *odd = g_variant_new_from_data (G_VARIANT_TYPE_BOOLEAN, &two, 1,
                                                 FALSE, NULL, NULL);

        g_array_set_clear_func (items, (GDestroyNotify) writer_item_clear);
        g_assert_false (g_variant_is_normal_form (odd));
        add_item (items, 0, 0, TRUE, odd);
        add_item (items, 0, 1, TRUE, g_variant_new ("()"));
        add_item (items, 0, 2, TRUE, g_variant_new_variant (g_variant_new_variant (
                                       g_variant_new_variant (g_variant_new_string ("ß")))));
        add_item (items, 0, 3, TRUE, g_variant_new ("(msmv)", NULL, NULL));
        add_item (items, 0, 4, TRUE, g_variant_new_array (G_VARIANT_TYPE ("a{sv}"), NULL, 0));
        assert_writer_matches (type, task ? "名前 with a very long task name, ünïcode" : NULL,
                               items);
      }
    }
  fiber_test_assert_no_leaks (2000);
}

int
main (int   argc,
      char *argv[])
{
  int ret;

  fiber_init (&argc, &argv, NULL);
  fiber_test_init_environment ();
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/message/body-types", test_body_types);
  g_test_add_func ("/message/round-trip", test_round_trip);
  g_test_add_func ("/message/encode-sinks-floating", test_encode_sinks_floating);
  g_test_add_func ("/message/encode-normalises", test_encode_normalises);
  g_test_add_func ("/message/decode-alignment", test_decode_alignment);
  g_test_add_func ("/message/reject/empty-and-unknown", test_reject_empty_and_unknown);
  g_test_add_func ("/message/reject/truncated", test_reject_truncated);
  g_test_add_func ("/message/reject/wrong-body-type", test_reject_wrong_body_type);
  g_test_add_func ("/message/reject/non-normal", test_reject_non_normal);
  g_test_add_func ("/message/reject/deep-nesting", test_reject_deep_nesting);
  g_test_add_func ("/message/reject/bad-error-tuple", test_reject_bad_error_tuple);
  g_test_add_func ("/message/random-corruption", test_random_corruption);
  g_test_add_func ("/message/error-from-tuple", test_error_from_tuple);
  g_test_add_func ("/message/error-to-tuple", test_error_to_tuple);
  g_test_add_func ("/message/writer/matches-glib", test_writer_matches_glib);
  g_test_add_func ("/message/writer/edge-cases", test_writer_edge_cases);

  ret = g_test_run ();
  fiber_test_cleanup_environment ();
  return ret;
}

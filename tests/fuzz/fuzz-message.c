/* fuzz-message.c — libFuzzer target for the wire decoder
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Whatever the bytes, _fiber_message_decode() either fails with
 * FIBER_ERROR_PROTOCOL or returns a body that re-encodes to exactly the
 * same frame (normal form is unique), whose error tuples map to FIBER_ERROR
 * errors, and which can be walked without GLib complaining.  GLib criticals
 * and warnings are made fatal so the fuzzer reports them as crashes.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fiber-error.h"
#include "fiber-message.h"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize (int    *argc,
                      char ***argv)
{
  g_log_set_always_fatal (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
  return 0;
}

static void
check_result_errors (GVariant *body)
{
  gsize n = g_variant_n_children (body);

  for (gsize i = 0; i < n; i++)
    {
      g_autoptr(GVariant) value = NULL;
      g_autoptr(GError) error = NULL;
      gboolean ok;

      g_variant_get_child (body, i, "(tub@v)", NULL, NULL, &ok, NULL);
      if (ok)
        continue;
      g_variant_get_child (body, i, "(tubv)", NULL, NULL, NULL, &value);
      error = _fiber_message_error_from_tuple (value);
      if (error == NULL || error->domain != FIBER_ERROR || error->message == NULL)
        abort ();
    }
}

/* GLib is not instrumented, so the fuzzer only sees coverage in this
 * file and the codec: walking the decoded value here, branching on each
 * nested type, rewards inputs that reach new shapes of 'v' contents. */
static guint
walk (GVariant *value,
      guint     depth)
{
  guint score = depth;

  switch (g_variant_classify (value))
    {
    case G_VARIANT_CLASS_VARIANT:
      {
        g_autoptr(GVariant) inner = g_variant_get_variant (value);

        score += walk (inner, depth + 1);
      }
      break;
    case G_VARIANT_CLASS_ARRAY:
    case G_VARIANT_CLASS_TUPLE:
    case G_VARIANT_CLASS_DICT_ENTRY:
    case G_VARIANT_CLASS_MAYBE:
      {
        gsize n = g_variant_n_children (value);

        for (gsize i = 0; i < n; i++)
          {
            g_autoptr(GVariant) child = g_variant_get_child_value (value, i);

            score += walk (child, depth + 1);
          }
      }
      break;
    case G_VARIANT_CLASS_STRING:
    case G_VARIANT_CLASS_OBJECT_PATH:
    case G_VARIANT_CLASS_SIGNATURE:
      {
        gsize len;
        const char *str = g_variant_get_string (value, &len);

        if (strlen (str) != len || !g_utf8_validate (str, len, NULL))
          abort ();
        score += len > 0;
      }
      break;
    case G_VARIANT_CLASS_BOOLEAN:
      score += g_variant_get_boolean (value) ? 1 : 2;
      break;
    case G_VARIANT_CLASS_DOUBLE:
      score += g_variant_get_double (value) != 0.0;
      break;
    default:
      score += g_variant_get_size (value);
      break;
    }

  return score;
}

static void
decode_one (GBytes *frame)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) body = NULL;
  g_autoptr(GBytes) again = NULL;
  g_autofree char *text = NULL;
  FiberMessageType type;

  if (!_fiber_message_decode (frame, &type, &body, &error))
    {
      if (!g_error_matches (error, FIBER_ERROR, FIBER_ERROR_PROTOCOL) ||
          body != NULL)
        abort ();
      return;
    }

  if (error != NULL || body == NULL ||
      !g_variant_is_of_type (body, _fiber_message_body_type (type)))
    abort ();

  again = _fiber_message_encode (type, body);
  if (!g_bytes_equal (frame, again))
    abort ();

  if (type == FIBER_MESSAGE_RESULT)
    check_result_errors (body);

  /* Walk every value, 'v' contents included. */
  if (walk (body, 0) == G_MAXUINT)
    abort ();
  text = g_variant_print (body, TRUE);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr(GBytes) frame = g_bytes_new_static (data, size);
  /* The same frame placed so that its body is 8-byte aligned: the decoder
   * then references it instead of copying. */
  g_autofree guint8 *block = g_malloc (size + 8);
  g_autoptr(GBytes) aligned = NULL;

  if (size > 0)
    memcpy (block + 7, data, size);
  aligned = g_bytes_new_static (block + 7, size);

  decode_one (frame);
  decode_one (aligned);
  return 0;
}

/* fiber-message.c — wire messages between a pool (master) and its workers
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A frame is one type byte followed by the serialised body.  Encoding
 * writes the body straight behind the type byte with g_variant_store(), so
 * a body built with g_variant_new() or a builder is serialised exactly
 * once, into the frame's own buffer (no intermediate GBytes, no copy).  Decoding treats the bytes as
 * untrusted: the body must be of the fixed type of the type byte and in
 * normal form (which also bounds the nesting depth of the 'v' values), and
 * the error tuples of a RESULT are checked, so code reading a decoded body
 * never meets a value it did not expect.
 */

#include "fiber-message.h"

#include <string.h>

#include "fiber-enums.h"
#include "fiber-error.h"

/* GVariant data needs at most 8-byte alignment. */
#define BODY_ALIGNMENT 8

#define ERROR_TUPLE_TYPE ((const GVariantType *) "(siss)")

const GVariantType *
_fiber_message_body_type (int type)
{
  switch (type)
    {
    case FIBER_MESSAGE_HELLO:
      return G_VARIANT_TYPE ("(sxsay)");
    case FIBER_MESSAGE_READY:
      return G_VARIANT_TYPE ("(u)");
    case FIBER_MESSAGE_RESULT:
      return G_VARIANT_TYPE ("a(tubv)");
    case FIBER_MESSAGE_HEARTBEAT:
    case FIBER_MESSAGE_SHUTDOWN:
      return G_VARIANT_TYPE_UNIT;
    case FIBER_MESSAGE_GOODBYE:
    case FIBER_MESSAGE_REJECT:
      return G_VARIANT_TYPE ("(s)");
    case FIBER_MESSAGE_WELCOME:
      return G_VARIANT_TYPE ("(svuu)");
    case FIBER_MESSAGE_TASK:
      return G_VARIANT_TYPE ("(sa(tuv))");
    case FIBER_MESSAGE_INTERRUPT:
      return G_VARIANT_TYPE ("(t)");
    default:
      return NULL;
    }
}

GBytes *
_fiber_message_encode (FiberMessageType  type,
                       GVariant         *body)
{
  g_autoptr(GVariant) owned = NULL;
  const GVariantType *body_type;
  guint8 *block;
  gsize size;

  g_return_val_if_fail (body != NULL, NULL);

  owned = g_variant_ref_sink (body);
  body_type = _fiber_message_body_type (type);
  g_return_val_if_fail (body_type != NULL, NULL);
  g_return_val_if_fail (g_variant_is_of_type (owned, body_type), NULL);

  /* Cheap for the usual case: a value built with g_variant_new() or a
   * builder from trusted parts is flagged as such and the check returns
   * at once.  Only values holding untrusted serialised data get walked
   * (and rewritten when they are not normal). */
  if (G_UNLIKELY (!g_variant_is_normal_form (owned)))
    {
      GVariant *normal = g_variant_get_normal_form (owned);

      g_variant_unref (owned);
      owned = normal;
    }

  /* g_variant_store() needs an aligned destination: the body goes at an
   * aligned offset of a g_malloc() block (aligned for any GVariant), and
   * the type byte right before it.  The frame starts one byte before the
   * aligned body, which also lets the decoder use such a frame without
   * copying. */
  size = g_variant_get_size (owned);
  block = g_malloc (BODY_ALIGNMENT + size);
  block[BODY_ALIGNMENT - 1] = (guint8) type;
  g_variant_store (owned, block + BODY_ALIGNMENT);

  return g_bytes_new_with_free_func (block + BODY_ALIGNMENT - 1, size + 1,
                                     g_free, block);
}

/* ------------------------------------------------------------------ */
/* Writer                                                              */

struct _FiberMessageWriter
{
  FiberMessageType  type;
  GByteArray       *buf;          /* BODY_ALIGNMENT - 1 spare bytes, type byte, body */
  gsize             name_end;     /* TASK: end of the task name in the body */
  gsize             array_start;  /* start of the item array in the body */
  GArray           *ends;         /* gsize: item ends, relative to array_start */
};

#define BODY_START BODY_ALIGNMENT

static void
writer_pad (GByteArray *buf,
            gsize       alignment)
{
  static const guint8 zeros[8] = { 0 };
  gsize misalign = (buf->len - BODY_START) % alignment;

  if (misalign != 0)
    g_byte_array_append (buf, zeros, (guint) (alignment - misalign));
}

/* The size of the framing offsets of a container whose body (without
 * offsets) is @body_size with @n offsets (gvs_calculate_total_size). */
static guint
offset_size (gsize body_size,
             gsize n)
{
  if (n == 0 && body_size == 0)
    return 0;
  if (body_size + n <= G_MAXUINT8)
    return 1;
  if (body_size + 2 * n <= G_MAXUINT16)
    return 2;
  if (body_size + 4 * n <= G_MAXUINT32)
    return 4;
  return 8;
}

static void
writer_append_offset (GByteArray *buf,
                      guint64     value,
                      guint       size)
{
  guint64 le = GUINT64_TO_LE (value);

  g_byte_array_append (buf, (const guint8 *) &le, size);
}

FiberMessageWriter *
_fiber_message_writer_new (FiberMessageType  type,
                           const char       *task)
{
  FiberMessageWriter *writer = g_new0 (FiberMessageWriter, 1);
  guint8 head[BODY_START] = { 0 };

  g_return_val_if_fail (type == FIBER_MESSAGE_TASK || type == FIBER_MESSAGE_RESULT, NULL);
  g_return_val_if_fail (type != FIBER_MESSAGE_TASK || task != NULL, NULL);

  writer->type = type;
  writer->buf = g_byte_array_sized_new (4096);
  writer->ends = g_array_new (FALSE, FALSE, sizeof (gsize));
  head[BODY_START - 1] = (guint8) type;
  g_byte_array_append (writer->buf, head, BODY_START);
  if (type == FIBER_MESSAGE_TASK)
    {
      g_byte_array_append (writer->buf, (const guint8 *) task, (guint) strlen (task) + 1);
      writer->name_end = writer->buf->len - BODY_START;
      writer_pad (writer->buf, 8);
    }
  writer->array_start = writer->buf->len - BODY_START;
  return writer;
}

void
_fiber_message_writer_add (FiberMessageWriter *writer,
                           guint64             batch_id,
                           guint32             index,
                           gboolean            ok,
                           GVariant           *value)
{
  g_autoptr(GVariant) owned = g_variant_ref_sink (value);
  g_autoptr(GVariant) normal = NULL;
  GVariant *item = owned;
  GByteArray *buf = writer->buf;
  guint8 head[16] = { 0 };
  const char *type_string;
  gsize size, at, end;

  /* Cheap for trusted values (a flag); others are rewritten if needed. */
  if (G_UNLIKELY (!g_variant_is_normal_form (owned)))
    item = normal = g_variant_get_normal_form (owned);

  /* (tuv) / (tubv): t at 0, u at 8, b at 12, v at 16 (GVariant §2.3). */
  writer_pad (buf, 8);
  memcpy (head, &batch_id, 8);
  memcpy (head + 8, &index, 4);
  if (writer->type == FIBER_MESSAGE_RESULT)
    head[12] = ok ? 1 : 0;
  g_byte_array_append (buf, head, 16);

  /* The variant: the value, a zero byte, its type string. */
  size = g_variant_get_size (item);
  type_string = g_variant_get_type_string (item);
  at = buf->len;
  g_byte_array_set_size (buf, (guint) (at + size));
  g_variant_store (item, buf->data + at);
  g_byte_array_append (buf, (const guint8 *) "", 1);
  g_byte_array_append (buf, (const guint8 *) type_string, (guint) strlen (type_string));

  end = buf->len - BODY_START - writer->array_start;
  g_array_append_val (writer->ends, end);
}

guint
_fiber_message_writer_get_n_items (FiberMessageWriter *writer)
{
  return writer->ends->len;
}

void
_fiber_message_writer_free (FiberMessageWriter *writer)
{
  if (writer == NULL)
    return;
  g_byte_array_unref (writer->buf);
  g_array_unref (writer->ends);
  g_free (writer);
}

GBytes *
_fiber_message_writer_finish (FiberMessageWriter *writer)
{
  GByteArray *buf = writer->buf;
  gsize array_body = buf->len - BODY_START - writer->array_start;
  guint k = offset_size (array_body, writer->ends->len);
  g_autoptr(GBytes) block = NULL;

  for (guint i = 0; i < writer->ends->len; i++)
    writer_append_offset (buf, g_array_index (writer->ends, gsize, i), k);

  if (writer->type == FIBER_MESSAGE_TASK)
    {
      /* (sa(tuv)): the end of the name is the one framing offset. */
      gsize tuple_body = buf->len - BODY_START;

      writer_append_offset (buf, writer->name_end, offset_size (tuple_body, 1));
    }

  g_array_unref (writer->ends);
  block = g_byte_array_free_to_bytes (buf);
  g_free (writer);
  return g_bytes_new_from_bytes (block, BODY_START - 1,
                                 g_bytes_get_size (block) - (BODY_START - 1));
}

static const char *
message_name (int type)
{
  switch (type)
    {
    case FIBER_MESSAGE_HELLO:     return "HELLO";
    case FIBER_MESSAGE_READY:     return "READY";
    case FIBER_MESSAGE_RESULT:    return "RESULT";
    case FIBER_MESSAGE_HEARTBEAT: return "HEARTBEAT";
    case FIBER_MESSAGE_GOODBYE:   return "GOODBYE";
    case FIBER_MESSAGE_WELCOME:   return "WELCOME";
    case FIBER_MESSAGE_REJECT:    return "REJECT";
    case FIBER_MESSAGE_TASK:      return "TASK";
    case FIBER_MESSAGE_SHUTDOWN:  return "SHUTDOWN";
    case FIBER_MESSAGE_INTERRUPT: return "INTERRUPT";
    default:                      return "unknown";
    }
}

/* In the serialised form of a (tubv) tuple the fixed-size members sit at
 * fixed offsets (GVariant specification, §2.3): t at 0, u at 8, b at 12,
 * then v aligned to 8.  Reading the flag in place saves allocating a child
 * value per item on the hot path. */
#define RESULT_ITEM_OK_OFFSET 12

/* @body is a normal-form a(tubv), so each item is at least 16 bytes and
 * its flag is 0 or 1. */
static gboolean
check_result_items (GVariant  *body,
                    GError   **error)
{
  gsize n = g_variant_n_children (body);
  gsize size = g_variant_get_size (body);
  const guint8 *data = g_variant_get_data (body);
  guint k = offset_size (size, 0);
  gsize table = size - n * k;
  gsize start = 0;

  for (gsize i = 0; i < n; i++)
    {
      g_autoptr(GVariant) item = NULL;
      g_autoptr(GVariant) boxed = NULL;
      g_autoptr(GVariant) value = NULL;
      guint64 end = 0;

      /* The flag in place, through the framing offsets of the (normal
       * form, hence well-framed) array: no child value per good item.
       * Items are 8-aligned; item i ends where offset i says. */
      memcpy (&end, data + table + i * k, k);
      end = GUINT64_FROM_LE (end);
      if (G_LIKELY (end > start + RESULT_ITEM_OK_OFFSET && end <= table &&
                    data[start + RESULT_ITEM_OK_OFFSET] != 0))
        {
          start = (gsize) ((end + 7) & ~(guint64) 7);
          continue;
        }
      start = (gsize) ((end + 7) & ~(guint64) 7);

      item = g_variant_get_child_value (body, i);
      if (g_variant_get_size (item) > RESULT_ITEM_OK_OFFSET &&
          ((const guint8 *) g_variant_get_data (item))[RESULT_ITEM_OK_OFFSET] != 0)
        continue;

      boxed = g_variant_get_child_value (item, 3);
      value = g_variant_get_variant (boxed);
      if (!g_variant_is_of_type (value, ERROR_TUPLE_TYPE))
        {
          g_set_error (error, FIBER_ERROR, FIBER_ERROR_PROTOCOL,
                       "Malformed RESULT message: failed item %" G_GSIZE_FORMAT
                       " carries a value of type “%s” instead of an error "
                       "tuple (siss)",
                       i, g_variant_get_type_string (value));
          return FALSE;
        }
    }

  return TRUE;
}

gboolean
_fiber_message_decode (GBytes            *frame,
                       FiberMessageType  *type,
                       GVariant         **body,
                       GError           **error)
{
  g_autoptr(GBytes) body_bytes = NULL;
  g_autoptr(GVariant) value = NULL;
  const GVariantType *body_type;
  const guint8 *data;
  gsize size;
  int type_byte;

  g_return_val_if_fail (frame != NULL, FALSE);
  g_return_val_if_fail (type != NULL, FALSE);
  g_return_val_if_fail (body != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  data = g_bytes_get_data (frame, &size);
  if (size == 0)
    {
      g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_PROTOCOL,
                           "Malformed message: empty frame");
      return FALSE;
    }

  type_byte = data[0];
  body_type = _fiber_message_body_type (type_byte);
  if (body_type == NULL)
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_PROTOCOL,
                   "Malformed message: unknown message type 0x%02x",
                   (guint) type_byte);
      return FALSE;
    }

  /* The body follows the type byte, so in a frame from an aligned buffer
   * it is misaligned: copy it then (g_malloc() memory is aligned for any
   * GVariant).  The copy is what lets the decoded value reference the
   * frame's memory in the other case. */
  if (((guintptr) (data + 1)) % BODY_ALIGNMENT == 0)
    body_bytes = g_bytes_new_from_bytes (frame, 1, size - 1);
  else
    body_bytes = g_bytes_new (data + 1, size - 1);

  value = g_variant_ref_sink (g_variant_new_from_bytes (body_type, body_bytes,
                                                        FALSE));
  /* A fixed-size body of the wrong size is replaced by zeros in
   * g_variant_new_from_bytes(), so compare sizes as well. */
  if (g_variant_get_size (value) != size - 1 ||
      !g_variant_is_normal_form (value))
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_PROTOCOL,
                   "Malformed %s message: the body is not a valid “%s” value "
                   "in normal form (%" G_GSIZE_FORMAT " bytes)",
                   message_name (type_byte),
                   g_variant_type_peek_string (body_type),
                   size - 1);
      return FALSE;
    }

  if (type_byte == FIBER_MESSAGE_RESULT && !check_result_items (value, error))
    return FALSE;

  *type = (FiberMessageType) type_byte;
  *body = g_steal_pointer (&value);
  return TRUE;
}

static gboolean
is_fiber_error_code (int code)
{
  g_autoptr(GEnumClass) klass = g_type_class_ref (FIBER_TYPE_ERROR);

  return g_enum_get_value (klass, code) != NULL;
}

GError *
_fiber_message_error_from_tuple (GVariant *error_tuple)
{
  const char *domain;
  const char *message;
  const char *traceback;
  gint32 code;
  GQuark fiber_domain;

  g_return_val_if_fail (error_tuple != NULL, NULL);
  g_return_val_if_fail (g_variant_is_of_type (error_tuple, ERROR_TUPLE_TYPE),
                        NULL);

  g_variant_get (error_tuple, "(&si&s&s)", &domain, &code, &message,
                 &traceback);

  /* g_quark_try_string() never creates a quark: a peer cannot grow the
   * quark table with made-up domains.  FIBER_ERROR is registered first: in
   * a process that never made one of its errors yet, the lookup would
   * otherwise miss it and every code would become TASK_FAILED. */
  fiber_domain = FIBER_ERROR;
  if (g_quark_try_string (domain) != fiber_domain || !is_fiber_error_code (code))
    code = FIBER_ERROR_TASK_FAILED;

  if (*traceback != '\0')
    return g_error_new (FIBER_ERROR, code, "%s\n%s", message, traceback);
  return g_error_new_literal (FIBER_ERROR, code, message);
}

/* Wire strings must be valid UTF-8; error messages (file names…) need not
 * be. */
static char *
dup_valid_utf8 (const char *str)
{
  if (str == NULL)
    return g_strdup ("");
  return g_utf8_make_valid (str, -1);
}

GVariant *
_fiber_message_error_to_tuple (const GError *error,
                               const char   *traceback)
{
  g_autofree char *domain = NULL;
  g_autofree char *message = NULL;
  g_autofree char *text = NULL;

  g_return_val_if_fail (error != NULL, NULL);

  domain = dup_valid_utf8 (g_quark_to_string (error->domain));
  message = dup_valid_utf8 (error->message);
  text = dup_valid_utf8 (traceback);

  return g_variant_new ("(siss)", domain, (gint32) error->code, message, text);
}

/* fiber-message.h — wire messages between a pool (master) and its workers
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Internal API (not installed).  Every ZeroMQ message is one frame (after
 * the ROUTER's identity frame): one type byte, then one GVariant in normal
 * form whose type is fixed by the type byte:
 *
 *  worker → master
 *   'H' HELLO     (sxsay)   worker id, pid, host name,
 *                           HMAC-SHA256(authkey, nonce ‖ worker id)
 *   'R' READY     (u)       credits: how many more items it can take now
 *   'r' RESULT    a(tubv)   (batch id, item index, ok, value); when ok is
 *                           false, value is (siss): error domain, code,
 *                           message, traceback text
 *   'h' HEARTBEAT ()
 *   'G' GOODBYE   (s)       the worker leaves by itself (reason)
 *
 *  master → worker
 *   'W' WELCOME   (svuu)    initializer task ('' = none), initargs,
 *                           maxtasksperchild (0 = unlimited), heartbeat ms
 *   'X' REJECT    (s)       reason; the worker exits
 *   'T' TASK      (sa(tuv)) task name, items: (batch id, index, args)
 *   'S' SHUTDOWN  ()        finish what was sent, then exit
 *   'I' INTERRUPT (t)       interrupt running items of a batch (0 = all)
 *   'h' HEARTBEAT ()
 *
 * The decoder accepts only these types, in normal form, and (for RESULT)
 * checks the error tuples; anything else is FIBER_ERROR_PROTOCOL.  It never
 * aborts, whatever the bytes (tests/fuzz/ fuzzes it).
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum
{
  FIBER_MESSAGE_HELLO     = 'H',
  FIBER_MESSAGE_READY     = 'R',
  FIBER_MESSAGE_RESULT    = 'r',
  FIBER_MESSAGE_HEARTBEAT = 'h',
  FIBER_MESSAGE_GOODBYE   = 'G',
  FIBER_MESSAGE_WELCOME   = 'W',
  FIBER_MESSAGE_REJECT    = 'X',
  FIBER_MESSAGE_TASK      = 'T',
  FIBER_MESSAGE_SHUTDOWN  = 'S',
  FIBER_MESSAGE_INTERRUPT = 'I',
} FiberMessageType;

/* The fixed body type of @type, or NULL for an unknown type byte. */
const GVariantType *_fiber_message_body_type (int type);

/* Serialises @body (sunk if floating; must be of the body type of @type)
 * as type byte + normal-form data.  Never fails for a well-typed body. */
GBytes   *_fiber_message_encode (FiberMessageType   type,
                                 GVariant          *body);

/* Parses one frame.  On success *type and *body (transfer full, a GVariant
 * that may reference @frame's memory) are set.  Rejects an empty frame, an
 * unknown type byte, a body of the wrong type or not in normal form, and a
 * RESULT whose failed items do not carry a (siss) tuple. */
gboolean  _fiber_message_decode (GBytes            *frame,
                                 FiberMessageType  *type,
                                 GVariant         **body,
                                 GError           **error);

/* Builds the GError a failed RESULT item describes.  Errors of the
 * fiber-error-quark domain keep their code; every other domain becomes
 * FIBER_ERROR_TASK_FAILED.  The message is the remote message, followed by
 * "\n" and the traceback text when there is one.  Never creates quarks from
 * wire data. */
GError   *_fiber_message_error_from_tuple (GVariant      *error_tuple);

/* Writes the frame of a TASK (sa(tuv)) or RESULT a(tubv) message item by
 * item, straight into the frame's buffer, in normal form: the same bytes
 * _fiber_message_encode() makes of a body built with a GVariantBuilder,
 * without a GVariant per item.  For a TASK the task name comes first; a
 * RESULT has none. */
typedef struct _FiberMessageWriter FiberMessageWriter;

FiberMessageWriter *_fiber_message_writer_new    (FiberMessageType    type,
                                                  const char         *task);
/* Appends one item: @value is the task's args (TASK), or the result or
 * error tuple (RESULT; @ok says which).  A floating @value is sunk. */
void                _fiber_message_writer_add    (FiberMessageWriter *writer,
                                                  guint64             batch_id,
                                                  guint32             index,
                                                  gboolean            ok,
                                                  GVariant           *value);
guint               _fiber_message_writer_get_n_items (FiberMessageWriter *writer);
/* Frees @writer and returns the frame (type byte + body). */
GBytes             *_fiber_message_writer_finish (FiberMessageWriter *writer);
void                _fiber_message_writer_free   (FiberMessageWriter *writer);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (FiberMessageWriter, _fiber_message_writer_free)

/* The (siss) tuple for @error (floating), with @traceback (nullable). */
GVariant *_fiber_message_error_to_tuple   (const GError  *error,
                                           const char    *traceback);

G_END_DECLS

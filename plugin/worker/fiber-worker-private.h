/* fiber-worker-private.h — what the dispatcher and the worker runtime share
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The message set itself is in fiber-message.h.  This header pins the
 * conventions on top of it:
 *
 *  - A worker connects a DEALER, sends HELLO and waits for WELCOME (or
 *    REJECT, then exits).  After WELCOME it runs the initializer, then sends
 *    READY n: n credits, the number of items it accepts in its local queue.
 *    Every item it reports in a RESULT gives one credit back, so a worker
 *    sends READY once (more only to widen its window).
 *  - The master never sends more items than the worker has credits, nor
 *    more than its maxtasksperchild allowance (counted in items).  A worker
 *    that has completed its allowance sends GOODBYE "maxtasksperchild" and
 *    exits; one that fails its initializer sends GOODBYE "initializer: …".
 *  - Both sides send HEARTBEAT every heartbeat interval when they have sent
 *    nothing else; a peer silent for FIBER_HEARTBEAT_LIVENESS intervals is
 *    lost (the master replaces the worker, the worker exits).
 *  - A worker runs its items in order and returns results in order, batched:
 *    it flushes when its queue is empty or FIBER_WORKER_FLUSH_USEC passed
 *    since the last flush.
 */

#pragma once

#include <glib.h>

#include "fiber-message.h"

G_BEGIN_DECLS

#define FIBER_HEARTBEAT_LIVENESS       5
#define FIBER_DEFAULT_HEARTBEAT_MS     1000
#define FIBER_WORKER_DEFAULT_CREDITS   65536
#define FIBER_WORKER_FLUSH_USEC        500

#define FIBER_GOODBYE_MAXTASKS         "maxtasksperchild"
#define FIBER_GOODBYE_SHUTDOWN         "shutdown"
#define FIBER_GOODBYE_INITIALIZER      "initializer: "

/* Receives one frame of a message.  Returns NULL with errno set when
 * nothing could be received (EAGAIN with ZMQ_DONTWAIT, ETERM, EINTR…).
 * The returned bytes are laid out so that the body behind the type byte is
 * 8-byte aligned, which lets _fiber_message_decode() reference it without
 * copying. */
GBytes   *_fiber_wire_recv_frame   (void              *socket,
                                    int                flags,
                                    gboolean          *more);
/* Drops the remaining frames of a multi-frame message. */
void      _fiber_wire_drain        (void              *socket);
/* Sends @frame without copying it when it is large. */
gboolean  _fiber_wire_send_frame   (void              *socket,
                                    GBytes            *frame,
                                    int                flags);
/* Encodes and sends one message (@body is sunk if floating). */
gboolean  _fiber_wire_send_message (void              *socket,
                                    FiberMessageType   type,
                                    GVariant          *body,
                                    int                flags);

/* Local workers talk to their pool over a plain unix stream socket instead
 * of ZeroMQ (endpoint "unix:PATH"): no I/O threads between the two ends,
 * which halves the latency of a round trip.  A frame travels as a 4-byte
 * little-endian length and the same bytes a ZeroMQ frame carries.  The
 * stream is non-blocking; what the socket does not take at once is queued
 * and written by _fiber_wire_stream_flush(). */
typedef struct _FiberWireStream FiberWireStream;

#define FIBER_WIRE_UNIX_PREFIX   "unix:"
#define FIBER_WIRE_MAX_FRAME     (256u * 1024 * 1024)

/* Takes ownership of @fd (made non-blocking). */
FiberWireStream *_fiber_wire_stream_new        (int               fd);
void             _fiber_wire_stream_free       (FiberWireStream  *stream);
int              _fiber_wire_stream_get_fd     (FiberWireStream  *stream);
/* Queues one message (@body is sunk if floating) and writes what the
 * socket takes now.  FALSE once the peer is gone. */
gboolean         _fiber_wire_stream_send       (FiberWireStream  *stream,
                                                FiberMessageType  type,
                                                GVariant         *body);
/* The same for an encoded frame (type byte + body). */
gboolean         _fiber_wire_stream_send_frame (FiberWireStream *stream,
                                                GBytes          *frame);
/* Writes queued bytes without blocking.  FALSE once the peer is gone. */
gboolean         _fiber_wire_stream_flush      (FiberWireStream  *stream);
/* Writes every queued byte, waiting at most @timeout_msec (-1 forever). */
gboolean         _fiber_wire_stream_flush_blocking (FiberWireStream *stream,
                                                    int              timeout_msec);
gboolean         _fiber_wire_stream_wants_write (FiberWireStream *stream);
/* Reads what has arrived: 1 when bytes came, 0 when none were waiting,
 * -1 at the end of the stream or on an error. */
int              _fiber_wire_stream_fill       (FiberWireStream  *stream);
/* The next complete frame (aligned as by _fiber_wire_recv_frame()), or
 * NULL; *broken is set when the stream announces a frame that cannot be
 * valid (empty or above FIBER_WIRE_MAX_FRAME): the peer must be dropped. */
GBytes          *_fiber_wire_stream_next_frame (FiberWireStream  *stream,
                                                gboolean         *broken);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (FiberWireStream, _fiber_wire_stream_free)

/* Reads the fixed-size head of a TASK item (tuv) or a RESULT item (tubv),
 * which must come from a decoded (normal-form) message. */
void      _fiber_wire_read_item_head (GVariant        *item,
                                      guint64         *batch_id,
                                      guint           *index,
                                      gboolean        *ok);

G_END_DECLS

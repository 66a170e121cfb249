/* fiber-worker.c — the worker runtime: serves tasks for a pool
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Tasks run on the main thread (language bindings need that).  The
 * connection to the master (a unix stream socket for a local pool, a
 * ZeroMQ DEALER for a remote one) is used by one thread at a time: the
 * main thread holds it (the
 * `socket_lock` mutex) while it receives work, sends results or waits for
 * the master, and lets go of it while a task runs.  A watchdog thread takes
 * it over only when a task has been running for a while: it then keeps the
 * heartbeats flowing, queues the TASKs that arrive and delivers INTERRUPTs
 * (by cancelling the running task), and hands the socket back as soon as
 * the task returns.  Short tasks thus cost no thread switch at all; the
 * mutex hand-over is the memory barrier ZeroMQ asks for when a socket moves
 * between threads.
 *
 * SIGINT in a worker interrupts the running task (it fails with
 * FIBER_ERROR_INTERRUPTED); the worker carries on.
 */

#include "fiber-worker-private.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gio/gio.h>
#include <zmq.h>

#include "fiber-auth.h"
#include "fiber-error.h"
#include "fiber-init-private.h"
#include "fiber-message.h"
#include "fiber-process-private.h"
#include "fiber-task.h"

/* A task running longer than this gets the watchdog's attention. */
#define WATCHDOG_PERIOD_MSEC   10
/* How long to wait for WELCOME. */
#define HANDSHAKE_TIMEOUT_MSEC (60 * 1000)
/* How long queued results may take to leave when the worker exits. */
#define EXIT_LINGER_MSEC       5000

/* ------------------------------------------------------------------ */
/* Frames (shared with the dispatcher)                                 */

GBytes *
_fiber_wire_recv_frame (void     *socket,
                        int       flags,
                        gboolean *more)
{
  zmq_msg_t msg;
  guint8 *buffer;
  gsize size;

  zmq_msg_init (&msg);
  if (zmq_msg_recv (&msg, socket, flags) < 0)
    {
      int errsv = errno;

      zmq_msg_close (&msg);
      errno = errsv;
      return NULL;
    }
  size = zmq_msg_size (&msg);
  /* g_malloc() memory is 16-byte aligned: with the frame at offset 7, the
   * body behind the type byte lands on an 8-byte boundary. */
  buffer = g_malloc (size + 7);
  memcpy (buffer + 7, zmq_msg_data (&msg), size);
  if (more != NULL)
    *more = zmq_msg_more (&msg);
  zmq_msg_close (&msg);
  return g_bytes_new_with_free_func (buffer + 7, size, g_free, buffer);
}

void
_fiber_wire_drain (void *socket)
{
  int more = 1;
  size_t more_size = sizeof more;

  while (zmq_getsockopt (socket, ZMQ_RCVMORE, &more, &more_size) == 0 && more)
    {
      zmq_msg_t msg;

      zmq_msg_init (&msg);
      if (zmq_msg_recv (&msg, socket, ZMQ_DONTWAIT) < 0)
        {
          zmq_msg_close (&msg);
          return;
        }
      zmq_msg_close (&msg);
      more_size = sizeof more;
    }
}

static void
free_frame (void *data,
            void *hint)
{
  g_bytes_unref (hint);
}

gboolean
_fiber_wire_send_frame (void   *socket,
                        GBytes *frame,
                        int     flags)
{
  zmq_msg_t msg;
  gsize size;
  const void *data = g_bytes_get_data (frame, &size);

  if (size <= 512)
    return zmq_send (socket, data, size, flags) >= 0;

  zmq_msg_init_data (&msg, (void *) data, size, free_frame, g_bytes_ref (frame));
  if (zmq_msg_send (&msg, socket, flags) < 0)
    {
      zmq_msg_close (&msg);
      return FALSE;
    }
  return TRUE;
}

gboolean
_fiber_wire_send_message (void             *socket,
                          FiberMessageType  type,
                          GVariant         *body,
                          int               flags)
{
  g_autoptr(GBytes) frame = _fiber_message_encode (type, body);

  return frame != NULL && _fiber_wire_send_frame (socket, frame, flags);
}

void
_fiber_wire_read_item_head (GVariant *item,
                            guint64  *batch_id,
                            guint    *index,
                            gboolean *ok)
{
  /* (tuv) and (tubv) start with t at 0, u at 8 and (tubv) has b at 12:
   * fixed offsets of the GVariant serialisation. */
  const guint8 *data = g_variant_get_data (item);
  guint32 idx;

  memcpy (batch_id, data, sizeof *batch_id);
  memcpy (&idx, data + 8, sizeof idx);
  *index = idx;
  if (ok != NULL)
    *ok = data[12] != 0;
}

/* ------------------------------------------------------------------ */
/* Unix stream transport (local workers)                               */

struct _FiberWireStream
{
  int         fd;
  GByteArray *in;
  gsize       in_pos;      /* parsed bytes at the start of @in */
  GByteArray *out;
  gsize       out_pos;     /* written bytes at the start of @out */
};

#define STREAM_READ_CHUNK  (64 * 1024)
#define STREAM_READ_LIMIT  (4 * 1024 * 1024)

FiberWireStream *
_fiber_wire_stream_new (int fd)
{
  FiberWireStream *stream = g_new0 (FiberWireStream, 1);
  int flags = fcntl (fd, F_GETFL);

  if (flags >= 0 && (flags & O_NONBLOCK) == 0)
    fcntl (fd, F_SETFL, flags | O_NONBLOCK);
  stream->fd = fd;
  stream->in = g_byte_array_sized_new (STREAM_READ_CHUNK);
  stream->out = g_byte_array_new ();
  return stream;
}

void
_fiber_wire_stream_free (FiberWireStream *stream)
{
  if (stream == NULL)
    return;
  if (stream->fd >= 0)
    close (stream->fd);
  g_byte_array_unref (stream->in);
  g_byte_array_unref (stream->out);
  g_free (stream);
}

int
_fiber_wire_stream_get_fd (FiberWireStream *stream)
{
  return stream->fd;
}

gboolean
_fiber_wire_stream_wants_write (FiberWireStream *stream)
{
  return stream->out_pos < stream->out->len;
}

gboolean
_fiber_wire_stream_flush (FiberWireStream *stream)
{
  while (stream->out_pos < stream->out->len)
    {
      ssize_t n = send (stream->fd, stream->out->data + stream->out_pos,
                        stream->out->len - stream->out_pos, MSG_NOSIGNAL | MSG_DONTWAIT);

      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          return errno == EAGAIN || errno == EWOULDBLOCK;
        }
      stream->out_pos += (gsize) n;
    }
  g_byte_array_set_size (stream->out, 0);
  stream->out_pos = 0;
  return TRUE;
}

gboolean
_fiber_wire_stream_send (FiberWireStream  *stream,
                         FiberMessageType  type,
                         GVariant         *body)
{
  g_autoptr(GBytes) frame = _fiber_message_encode (type, body);

  return frame != NULL && _fiber_wire_stream_send_frame (stream, frame);
}

gboolean
_fiber_wire_stream_send_frame (FiberWireStream *stream,
                               GBytes          *frame)
{
  gsize size;
  const guint8 *data;
  guint8 head[4];
  gsize sent = 0;

  data = g_bytes_get_data (frame, &size);
  if (size == 0 || size > FIBER_WIRE_MAX_FRAME)
    return FALSE;
  head[0] = (guint8) size;
  head[1] = (guint8) (size >> 8);
  head[2] = (guint8) (size >> 16);
  head[3] = (guint8) (size >> 24);

  if (!_fiber_wire_stream_wants_write (stream))
    {
      /* Usually the whole frame goes at once, without a copy. */
      struct iovec iov[2] = {
        { .iov_base = head, .iov_len = sizeof head },
        { .iov_base = (void *) data, .iov_len = size },
      };
      struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };
      ssize_t n;

      do
        n = sendmsg (stream->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
      while (n < 0 && errno == EINTR);
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
        return FALSE;
      sent = n > 0 ? (gsize) n : 0;
      if (sent == sizeof head + size)
        return TRUE;
    }

  if (sent < sizeof head)
    {
      g_byte_array_append (stream->out, head + sent, (guint) (sizeof head - sent));
      g_byte_array_append (stream->out, data, (guint) size);
    }
  else
    g_byte_array_append (stream->out, data + (sent - sizeof head),
                         (guint) (size - (sent - sizeof head)));
  return _fiber_wire_stream_flush (stream);
}

gboolean
_fiber_wire_stream_flush_blocking (FiberWireStream *stream,
                                   int              timeout_msec)
{
  gint64 deadline = timeout_msec < 0 ? -1
                    : g_get_monotonic_time () + (gint64) timeout_msec * 1000;

  for (;;)
    {
      struct pollfd pfd = { .fd = stream->fd, .events = POLLOUT };
      int wait_msec = -1;

      if (!_fiber_wire_stream_flush (stream))
        return FALSE;
      if (!_fiber_wire_stream_wants_write (stream))
        return TRUE;
      if (deadline >= 0)
        {
          gint64 left = deadline - g_get_monotonic_time ();

          if (left <= 0)
            return FALSE;
          wait_msec = (int) (left / 1000) + 1;
        }
      if (poll (&pfd, 1, wait_msec) < 0 && errno != EINTR)
        return FALSE;
    }
}

int
_fiber_wire_stream_fill (FiberWireStream *stream)
{
  gsize total = 0;

  if (stream->in_pos > 0 && stream->in_pos == stream->in->len)
    {
      g_byte_array_set_size (stream->in, 0);
      stream->in_pos = 0;
    }
  else if (stream->in_pos > STREAM_READ_CHUNK && stream->in_pos * 2 > stream->in->len)
    {
      g_byte_array_remove_range (stream->in, 0, (guint) stream->in_pos);
      stream->in_pos = 0;
    }

  while (total < STREAM_READ_LIMIT)
    {
      guint len = stream->in->len;
      ssize_t n;

      g_byte_array_set_size (stream->in, len + STREAM_READ_CHUNK);
      n = read (stream->fd, stream->in->data + len, STREAM_READ_CHUNK);
      g_byte_array_set_size (stream->in, len + (guint) MAX (n, 0));
      if (n > 0)
        {
          total += (gsize) n;
          if (n < STREAM_READ_CHUNK)
            break;
          continue;
        }
      if (n == 0)
        return total > 0 ? 1 : -1;
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        break;
      return total > 0 ? 1 : -1;
    }
  return total > 0 ? 1 : 0;
}

GBytes *
_fiber_wire_stream_next_frame (FiberWireStream *stream,
                               gboolean        *broken)
{
  const guint8 *head = stream->in->data + stream->in_pos;
  gsize avail = stream->in->len - stream->in_pos;
  guint32 size;
  guint8 *buffer;

  *broken = FALSE;
  if (avail < 4)
    return NULL;
  size = (guint32) head[0] | (guint32) head[1] << 8 | (guint32) head[2] << 16 |
         (guint32) head[3] << 24;
  if (size == 0 || size > FIBER_WIRE_MAX_FRAME)
    {
      *broken = TRUE;
      return NULL;
    }
  if (avail - 4 < size)
    return NULL;
  /* As _fiber_wire_recv_frame(): the body lands on an 8-byte boundary. */
  buffer = g_malloc (size + 7);
  memcpy (buffer + 7, head + 4, size);
  stream->in_pos += 4 + (gsize) size;
  return g_bytes_new_with_free_func (buffer + 7, size, g_free, buffer);
}

/* ------------------------------------------------------------------ */
/* The worker                                                          */

typedef struct
{
  GVariant   *body;      /* (sa(tuv)) */
  const char *task;
  GVariant   *items;
  gsize       n;
  gsize       pos;
} TaskUnit;

typedef struct
{
  char          *endpoint;
  char          *id;
  GBytes        *nonce;
  char          *curve_serverkey;
  GBytes        *authkey;

  void          *zctx;
  void          *dealer;
  FiberWireStream *stream;         /* instead of @dealer for local pools */
  gboolean       master_gone;      /* the stream ended */
  int            wakefd;           /* main → watchdog: give the socket back */

  /* the socket and what travels through it: held by one thread at a time */
  GMutex         socket_lock;
  GQueue         units;            /* TaskUnit */
  gboolean       shutdown;
  gboolean       rejected;
  gint64         last_recv;
  gint64         last_send;

  /* shared with the watchdog */
  GMutex         state_lock;
  gboolean       in_task;
  gint64         task_started;
  guint64        task_serial;
  guint64        task_batch;
  GCancellable  *cancellable;
  gboolean       interrupted;
  gboolean       watchdog_holds;
  gboolean       quit;
  GThread       *watchdog;

  /* from WELCOME */
  char          *initializer;
  GVariant      *initargs;
  guint          maxtasks;
  guint          heartbeat_ms;

  /* main thread only */
  FiberMessageWriter *results;
  guint           n_results;
  gint64          last_flush;
  guint           completed;
} Worker;

static int sigint_fd = -1;

static void
on_sigint (int signum)
{
  guint64 one = 1;
  int errsv = errno;
  ssize_t r G_GNUC_UNUSED = write (sigint_fd, &one, sizeof one);

  errno = errsv;
}

static gint64
heartbeat_usec (Worker *self)
{
  return (gint64) self->heartbeat_ms * 1000;
}

static gboolean
worker_send (Worker           *self,
             FiberMessageType  type,
             GVariant         *body)
{
  self->last_send = g_get_monotonic_time ();
  if (self->stream != NULL)
    {
      if (_fiber_wire_stream_send (self->stream, type, body) &&
          _fiber_wire_stream_flush_blocking (self->stream, -1))
        return TRUE;
      self->master_gone = TRUE;
      return FALSE;
    }
  return _fiber_wire_send_message (self->dealer, type, body, 0);
}

/* Sends an encoded frame. */
static gboolean
worker_send_frame (Worker *self,
                   GBytes *frame)
{
  self->last_send = g_get_monotonic_time ();
  if (self->stream != NULL)
    {
      if (_fiber_wire_stream_send_frame (self->stream, frame) &&
          _fiber_wire_stream_flush_blocking (self->stream, -1))
        return TRUE;
      self->master_gone = TRUE;
      return FALSE;
    }
  return _fiber_wire_send_frame (self->dealer, frame, 0);
}

/* The next message frame from the master, or NULL when none is waiting. */
static GBytes *
worker_recv_frame (Worker *self)
{
  gboolean more = FALSE;
  GBytes *frame;

  if (self->stream == NULL)
    {
      frame = _fiber_wire_recv_frame (self->dealer, ZMQ_DONTWAIT, &more);
      if (frame != NULL && more)
        _fiber_wire_drain (self->dealer);
      return frame;
    }

  for (;;)
    {
      gboolean broken = FALSE;
      int r;

      frame = _fiber_wire_stream_next_frame (self->stream, &broken);
      if (frame != NULL)
        return frame;
      if (broken)
        {
          self->master_gone = TRUE;
          return NULL;
        }
      r = _fiber_wire_stream_fill (self->stream);
      if (r < 0)
        self->master_gone = TRUE;
      if (r <= 0)
        return NULL;
    }
}

/* What to poll for messages from the master. */
static zmq_pollitem_t
worker_pollitem (Worker *self)
{
  zmq_pollitem_t item = { .events = ZMQ_POLLIN };

  if (self->stream != NULL)
    item.fd = _fiber_wire_stream_get_fd (self->stream);
  else
    item.socket = self->dealer;
  return item;
}

static void
task_unit_free (TaskUnit *unit)
{
  g_variant_unref (unit->items);
  g_variant_unref (unit->body);
  g_free (unit);
}

static void
interrupt_current (Worker  *self,
                   guint64  batch)
{
  g_autoptr(GCancellable) cancellable = NULL;

  g_mutex_lock (&self->state_lock);
  if (self->in_task && (batch == 0 || batch == self->task_batch))
    {
      self->interrupted = TRUE;
      cancellable = g_object_ref (self->cancellable);
    }
  g_mutex_unlock (&self->state_lock);

  if (cancellable != NULL)
    g_cancellable_cancel (cancellable);
}

/* Called by whichever thread holds the socket. */
static void
handle_incoming (Worker *self)
{
  for (;;)
    {
      g_autoptr(GBytes) frame = NULL;
      g_autoptr(GVariant) body = NULL;
      g_autoptr(GError) error = NULL;
      FiberMessageType type;

      frame = worker_recv_frame (self);
      if (frame == NULL)
        return;
      self->last_recv = g_get_monotonic_time ();

      if (!_fiber_message_decode (frame, &type, &body, &error))
        {
          g_warning ("worker: dropping a message from the master: %s", error->message);
          continue;
        }

      switch (type)
        {
        case FIBER_MESSAGE_TASK:
          {
            TaskUnit *unit = g_new0 (TaskUnit, 1);

            unit->body = g_steal_pointer (&body);
            g_variant_get (unit->body, "(&s@a(tuv))", &unit->task, &unit->items);
            unit->n = g_variant_n_children (unit->items);
            g_queue_push_tail (&self->units, unit);
          }
          break;
        case FIBER_MESSAGE_INTERRUPT:
          {
            guint64 batch;

            g_variant_get (body, "(t)", &batch);
            interrupt_current (self, batch);
          }
          break;
        case FIBER_MESSAGE_SHUTDOWN:
          self->shutdown = TRUE;
          break;
        case FIBER_MESSAGE_REJECT:
          {
            const char *reason;

            g_variant_get (body, "(&s)", &reason);
            g_printerr ("fiber worker: rejected by the pool: %s\n", reason);
            self->rejected = TRUE;
          }
          break;
        case FIBER_MESSAGE_HEARTBEAT:
        case FIBER_MESSAGE_WELCOME:
        default:
          break;
        }
    }
}

static gboolean
master_is_silent (Worker *self,
                  gint64  now)
{
  return now - self->last_recv > FIBER_HEARTBEAT_LIVENESS * heartbeat_usec (self);
}

/* Owns the socket while a long task runs.  Returns when the task ended. */
static void
watchdog_hold_socket (Worker  *self,
                      guint64  serial)
{
  zmq_pollitem_t items[3] = {
    worker_pollitem (self),
    { .fd = self->wakefd, .events = ZMQ_POLLIN },
    { .fd = sigint_fd, .events = ZMQ_POLLIN },
  };

  g_mutex_lock (&self->socket_lock);
  g_mutex_lock (&self->state_lock);
  if (!self->in_task || self->task_serial != serial)
    {
      g_mutex_unlock (&self->state_lock);
      g_mutex_unlock (&self->socket_lock);
      return;
    }
  self->watchdog_holds = TRUE;
  g_mutex_unlock (&self->state_lock);

  for (;;)
    {
      gint64 now = g_get_monotonic_time ();
      gint64 wait = heartbeat_usec (self) - (now - self->last_send);
      gboolean done;
      int rc;

      if (wait <= 0)
        {
          worker_send (self, FIBER_MESSAGE_HEARTBEAT, g_variant_new ("()"));
          wait = heartbeat_usec (self);
        }

      rc = zmq_poll (items, 3, (long) (wait / 1000) + 1);
      if (rc > 0 && (items[1].revents & ZMQ_POLLIN))
        {
          guint64 value;
          ssize_t r G_GNUC_UNUSED = read (self->wakefd, &value, sizeof value);
        }
      if (rc > 0 && (items[2].revents & ZMQ_POLLIN))
        {
          guint64 value;
          ssize_t r G_GNUC_UNUSED = read (sigint_fd, &value, sizeof value);
          interrupt_current (self, 0);
        }
      if (rc > 0 && (items[0].revents & ZMQ_POLLIN))
        handle_incoming (self);

      if (master_is_silent (self, g_get_monotonic_time ()) || self->rejected ||
          self->master_gone)
        {
          /* The task may run forever: leave without it. */
          g_printerr ("fiber worker: the pool stopped answering; exiting\n");
          _exit (1);
        }

      g_mutex_lock (&self->state_lock);
      done = !self->in_task || self->task_serial != serial || self->quit;
      if (done)
        self->watchdog_holds = FALSE;
      g_mutex_unlock (&self->state_lock);
      if (done)
        break;
    }
  g_mutex_unlock (&self->socket_lock);
}

static gpointer
watchdog_thread (gpointer data)
{
  Worker *self = data;
  struct pollfd pfd = { .fd = sigint_fd, .events = POLLIN };

  for (;;)
    {
      gboolean quit, long_task = FALSE;
      guint64 serial = 0;
      gint64 now;

      /* SIGINT interrupts the running task at once; the periodic wakeup
       * looks for tasks that run long enough to need the socket watched. */
      if (poll (&pfd, 1, WATCHDOG_PERIOD_MSEC) > 0)
        {
          guint64 value;
          ssize_t r G_GNUC_UNUSED = read (sigint_fd, &value, sizeof value);
          interrupt_current (self, 0);
        }

      now = g_get_monotonic_time ();
      g_mutex_lock (&self->state_lock);
      quit = self->quit;
      if (self->in_task && now - self->task_started >= WATCHDOG_PERIOD_MSEC * 1000)
        {
          long_task = TRUE;
          serial = self->task_serial;
        }
      g_mutex_unlock (&self->state_lock);

      if (quit)
        break;
      if (long_task)
        watchdog_hold_socket (self, serial);
    }
  return NULL;
}

/* Releases the socket around one task run (or the initializer). */
static GVariant *
run_task (Worker      *self,
          const char  *task,
          GVariant    *args,
          guint64      batch,
          GError     **error)
{
  GVariant *value;
  gboolean interrupted, holds;
  GError *local_error = NULL;
  GCancellable *cancellable;

  g_mutex_lock (&self->state_lock);
  if (self->cancellable == NULL || g_cancellable_is_cancelled (self->cancellable))
    {
      g_clear_object (&self->cancellable);
      self->cancellable = g_cancellable_new ();
    }
  cancellable = self->cancellable;
  self->in_task = TRUE;
  self->interrupted = FALSE;
  self->task_started = g_get_monotonic_time ();
  self->task_serial++;
  self->task_batch = batch;
  g_mutex_unlock (&self->state_lock);
  g_mutex_unlock (&self->socket_lock);

  value = fiber_task_invoke (task, args, cancellable, &local_error);

  g_mutex_lock (&self->state_lock);
  self->in_task = FALSE;
  interrupted = self->interrupted;
  holds = self->watchdog_holds;
  g_mutex_unlock (&self->state_lock);
  if (holds)
    {
      guint64 one = 1;
      ssize_t r G_GNUC_UNUSED = write (self->wakefd, &one, sizeof one);
    }
  g_mutex_lock (&self->socket_lock);

  if (interrupted)
    {
      g_clear_pointer (&value, g_variant_unref);
      g_clear_error (&local_error);
      g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_INTERRUPTED,
                           "the task was interrupted");
      return NULL;
    }
  if (value == NULL)
    g_propagate_error (error, local_error);
  return value;
}

static void
flush_results (Worker *self)
{
  g_autoptr(GBytes) frame = NULL;

  self->last_flush = g_get_monotonic_time ();
  if (self->n_results == 0)
    return;
  frame = _fiber_message_writer_finish (g_steal_pointer (&self->results));
  self->n_results = 0;
  worker_send_frame (self, frame);
}

static void
add_result (Worker   *self,
            guint64   batch,
            guint     index,
            GVariant *value,
            GError   *error)
{
  if (self->results == NULL)
    self->results = _fiber_message_writer_new (FIBER_MESSAGE_RESULT, NULL);
  if (value != NULL)
    _fiber_message_writer_add (self->results, batch, index, TRUE, value);
  else
    _fiber_message_writer_add (self->results, batch, index, FALSE,
                               _fiber_message_error_to_tuple (error, NULL));
  self->n_results++;
}

/* Runs the next queued item; returns FALSE when the queue is empty. */
static gboolean
run_next_item (Worker *self)
{
  TaskUnit *unit = g_queue_peek_head (&self->units);
  g_autoptr(GVariant) entry = NULL;
  g_autoptr(GVariant) boxed = NULL;
  g_autoptr(GVariant) args = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GError) error = NULL;
  const char *task;
  guint64 batch;
  guint index;

  if (unit == NULL)
    return FALSE;

  entry = g_variant_get_child_value (unit->items, unit->pos);
  _fiber_wire_read_item_head (entry, &batch, &index, NULL);
  boxed = g_variant_get_child_value (entry, 2);
  args = g_variant_get_variant (boxed);
  task = unit->task;

  value = run_task (self, task, args, batch, &error);
  add_result (self, batch, index, value, error);
  self->completed++;

  /* The unit (and the task name) may only go once the item is done. */
  if (++unit->pos == unit->n)
    task_unit_free (g_queue_pop_head (&self->units));
  return TRUE;
}

/* Waits (holding the socket) for something to do, sending heartbeats. */
static gboolean
wait_for_master (Worker *self)
{
  zmq_pollitem_t item = worker_pollitem (self);
  gint64 now = g_get_monotonic_time ();
  gint64 wait = heartbeat_usec (self) - (now - self->last_send);
  int rc;

  if (wait <= 0)
    {
      worker_send (self, FIBER_MESSAGE_HEARTBEAT, g_variant_new ("()"));
      wait = heartbeat_usec (self);
    }
  if (self->stream != NULL)
    {
      /* One poll(): zmq_poll() would make a non-blocking pass first. */
      struct pollfd pfd = { .fd = item.fd, .events = POLLIN };

      rc = poll (&pfd, 1, (int) (wait / 1000) + 1);
    }
  else
    rc = zmq_poll (&item, 1, (long) (wait / 1000) + 1);
  if (rc < 0 && errno != EINTR)
    return FALSE;
  handle_incoming (self);
  if (self->master_gone)
    return FALSE;
  if (master_is_silent (self, g_get_monotonic_time ()))
    {
      g_printerr ("fiber worker: the pool stopped answering; exiting\n");
      return FALSE;
    }
  return TRUE;
}

static int
serve (Worker *self)
{
  for (;;)
    {
      if (self->rejected || self->master_gone)
        return 1;

      if (run_next_item (self))
        {
          gint64 now;

          if (self->maxtasks > 0 && self->completed >= self->maxtasks)
            {
              flush_results (self);
              worker_send (self, FIBER_MESSAGE_GOODBYE,
                           g_variant_new ("(s)", FIBER_GOODBYE_MAXTASKS));
              return 0;
            }
          now = g_get_monotonic_time ();
          if (g_queue_is_empty (&self->units))
            flush_results (self);  /* the idle path below reads what came */
          else if (now - self->last_flush >= FIBER_WORKER_FLUSH_USEC)
            {
              flush_results (self);
              handle_incoming (self);
            }
          continue;
        }

      flush_results (self);
      handle_incoming (self);
      if (!g_queue_is_empty (&self->units))
        continue;
      if (self->shutdown)
        {
          worker_send (self, FIBER_MESSAGE_GOODBYE,
                       g_variant_new ("(s)", FIBER_GOODBYE_SHUTDOWN));
          return 0;
        }
      if (!wait_for_master (self))
        return 1;
    }
}

static gboolean
handshake (Worker  *self,
           GError **error)
{
  guint8 proof[FIBER_AUTH_PROOF_SIZE];
  g_autofree char *host = g_strdup (g_get_host_name ());
  const guint8 *key;
  const guint8 *nonce;
  gsize key_size, nonce_size;
  gint64 deadline = g_get_monotonic_time () + HANDSHAKE_TIMEOUT_MSEC * 1000;

  key = g_bytes_get_data (self->authkey, &key_size);
  nonce = g_bytes_get_data (self->nonce, &nonce_size);
  _fiber_auth_compute_proof (key, key_size, nonce, nonce_size, self->id, proof);

  worker_send (self, FIBER_MESSAGE_HELLO,
               g_variant_new ("(sxs@ay)", self->id, (gint64) getpid (), host,
                              g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, proof,
                                                         sizeof proof, 1)));

  for (;;)
    {
      zmq_pollitem_t item = worker_pollitem (self);
      g_autoptr(GBytes) frame = NULL;
      g_autoptr(GVariant) body = NULL;
      g_autoptr(GError) local_error = NULL;
      FiberMessageType type;
      gint64 left = deadline - g_get_monotonic_time ();

      if (left <= 0)
        {
          g_set_error (error, FIBER_ERROR, FIBER_ERROR_TIMEOUT,
                       "no answer from the pool at %s", self->endpoint);
          return FALSE;
        }
      frame = worker_recv_frame (self);
      if (frame == NULL && self->master_gone)
        {
          g_set_error (error, FIBER_ERROR, FIBER_ERROR_FAILED,
                       "the pool at %s closed the connection", self->endpoint);
          return FALSE;
        }
      if (frame == NULL)
        {
          zmq_poll (&item, 1, (long) (left / 1000) + 1);
          continue;
        }
      if (!_fiber_message_decode (frame, &type, &body, &local_error))
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return FALSE;
        }
      if (type == FIBER_MESSAGE_REJECT)
        {
          const char *reason;

          g_variant_get (body, "(&s)", &reason);
          g_set_error (error, FIBER_ERROR, FIBER_ERROR_AUTH,
                       "the pool rejected this worker: %s", reason);
          return FALSE;
        }
      if (type != FIBER_MESSAGE_WELCOME)
        continue;

      {
        const char *initializer;
        g_autoptr(GVariant) boxed = NULL;
        guint32 maxtasks, heartbeat;

        g_variant_get (body, "(&s@vuu)", &initializer, &boxed, &maxtasks, &heartbeat);
        self->initializer = *initializer != '\0' ? g_strdup (initializer) : NULL;
        self->initargs = g_variant_get_variant (boxed);
        self->maxtasks = maxtasks;
        self->heartbeat_ms = heartbeat > 0 ? heartbeat : FIBER_DEFAULT_HEARTBEAT_MS;
      }
      self->last_recv = g_get_monotonic_time ();
      return TRUE;
    }
}

static char *
take_env (const char *name)
{
  char *value = g_strdup (g_getenv (name));

  g_unsetenv (name);
  return value;
}

/* Connects the ZeroMQ DEALER: tcp:// with CURVE to a remote pool, ipc://
 * to a local pool whose transport is "zmq". */
static gboolean
worker_connect_zmq (Worker  *self,
                    GError **error)
{
  int linger = EXIT_LINGER_MSEC;

  self->zctx = zmq_ctx_new ();
  self->dealer = zmq_socket (self->zctx, ZMQ_DEALER);
  zmq_setsockopt (self->dealer, ZMQ_LINGER, &linger, sizeof linger);
  if (self->curve_serverkey != NULL && *self->curve_serverkey != '\0')
    {
      char *public_key = NULL;
      char *secret_key = NULL;

      if (!_fiber_auth_z85_key_is_valid (self->curve_serverkey))
        {
          g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                               FIBER_ENV_CURVE_SERVERKEY " is not a CURVE key");
          return FALSE;
        }
      if (!_fiber_auth_curve_keypair (&public_key, &secret_key, error))
        return FALSE;
      zmq_setsockopt (self->dealer, ZMQ_CURVE_SERVERKEY, self->curve_serverkey,
                      strlen (self->curve_serverkey));
      zmq_setsockopt (self->dealer, ZMQ_CURVE_PUBLICKEY, public_key, strlen (public_key));
      zmq_setsockopt (self->dealer, ZMQ_CURVE_SECRETKEY, secret_key, strlen (secret_key));
      g_free (public_key);
      _fiber_auth_free_secret (secret_key);
    }
  if (zmq_connect (self->dealer, self->endpoint) != 0)
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_FAILED,
                   "cannot connect to %s: %s", self->endpoint, zmq_strerror (errno));
      return FALSE;
    }

  return TRUE;
}

static gboolean
worker_setup (Worker  *self,
              GError **error)
{
  g_autofree char *nonce_hex = NULL;
  g_autofree char *modules = NULL;

  /* Consume the role so that children of this worker start afresh. */
  self->endpoint = take_env (FIBER_ENV_WORKER_ENDPOINT);
  self->id = take_env (FIBER_ENV_WORKER_ID);
  nonce_hex = take_env (FIBER_ENV_NONCE);
  self->curve_serverkey = take_env (FIBER_ENV_CURVE_SERVERKEY);

  if (self->endpoint == NULL || *self->endpoint == '\0' ||
      self->id == NULL || *self->id == '\0' || nonce_hex == NULL)
    {
      g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                           "incomplete worker environment (" FIBER_ENV_WORKER_ENDPOINT ", "
                           FIBER_ENV_WORKER_ID " and " FIBER_ENV_NONCE " are needed)");
      return FALSE;
    }
  self->nonce = _fiber_auth_hex_decode (nonce_hex, error);
  if (self->nonce == NULL)
    return FALSE;
  self->authkey = _fiber_process_get_current_authkey ();
  if (self->authkey == NULL)
    {
      g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_AUTH, "no authkey");
      return FALSE;
    }

  modules = g_strdup (g_getenv (FIBER_ENV_TASK_MODULES));
  if (modules != NULL && *modules != '\0')
    {
      g_auto(GStrv) paths = g_strsplit (modules, ":", -1);

      if (!_fiber_load_task_modules ((const char * const *) paths, error))
        return FALSE;
    }

  if (g_str_has_prefix (self->endpoint, FIBER_WIRE_UNIX_PREFIX))
    {
      const char *path = self->endpoint + strlen (FIBER_WIRE_UNIX_PREFIX);
      struct sockaddr_un addr = { .sun_family = AF_UNIX };
      int fd;

      if (strlen (path) >= sizeof addr.sun_path)
        {
          g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                       "socket path too long: %s", path);
          return FALSE;
        }
      strcpy (addr.sun_path, path);
      fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0 || connect (fd, (struct sockaddr *) &addr, sizeof addr) != 0)
        {
          int errsv = errno;

          if (fd >= 0)
            close (fd);
          g_set_error (error, FIBER_ERROR, FIBER_ERROR_FAILED,
                       "cannot connect to %s: %s", self->endpoint, g_strerror (errsv));
          return FALSE;
        }
      self->stream = _fiber_wire_stream_new (fd);
    }
  else if (!worker_connect_zmq (self, error))
    return FALSE;

  self->wakefd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  sigint_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (self->wakefd < 0 || sigint_fd < 0)
    {
      int errsv = errno;
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_FAILED,
                   "cannot create an eventfd: %s", g_strerror (errsv));
      return FALSE;
    }
  return TRUE;
}

static void
worker_teardown (Worker *self)
{
  if (self->watchdog != NULL)
    {
      guint64 one = 1;
      ssize_t r G_GNUC_UNUSED;

      g_mutex_lock (&self->state_lock);
      self->quit = TRUE;
      g_mutex_unlock (&self->state_lock);
      r = write (sigint_fd, &one, sizeof one);
      g_thread_join (g_steal_pointer (&self->watchdog));
    }
  if (self->stream != NULL)
    {
      /* Like the DEALER's linger: queued results may still leave. */
      _fiber_wire_stream_flush_blocking (self->stream, EXIT_LINGER_MSEC);
      g_clear_pointer (&self->stream, _fiber_wire_stream_free);
    }
  if (self->dealer != NULL)
    zmq_close (self->dealer);
  if (self->zctx != NULL)
    zmq_ctx_term (self->zctx);
  if (self->wakefd >= 0)
    close (self->wakefd);

  g_queue_clear_full (&self->units, (GDestroyNotify) task_unit_free);
  g_clear_pointer (&self->results, _fiber_message_writer_free);
  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->initargs, g_variant_unref);
  g_free (self->initializer);
  g_clear_pointer (&self->authkey, g_bytes_unref);
  g_clear_pointer (&self->nonce, g_bytes_unref);
  g_free (self->curve_serverkey);
  g_free (self->id);
  g_free (self->endpoint);
  g_mutex_clear (&self->socket_lock);
  g_mutex_clear (&self->state_lock);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Worker, worker_teardown)

/* With socket_lock held: the handshake, the initializer, then serving
 * until the worker leaves.  Returns the exit status; @error is set when
 * the worker could not even say HELLO (an initializer that fails is
 * reported to the pool in a GOODBYE instead). */
static int
worker_run (Worker  *self,
            GError **error)
{
  guint credits = FIBER_WORKER_DEFAULT_CREDITS;

  if (!handshake (self, error))
    return 1;

  self->watchdog = g_thread_new ("fiber-watchdog", watchdog_thread, self);

  if (self->initializer != NULL)
    {
      g_autoptr(GError) init_error = NULL;
      g_autoptr(GVariant) ignored = run_task (self, self->initializer, self->initargs, 0,
                                              &init_error);

      if (ignored == NULL)
        {
          g_autofree char *reason = g_strconcat (FIBER_GOODBYE_INITIALIZER,
                                                 init_error->message, NULL);

          worker_send (self, FIBER_MESSAGE_GOODBYE, g_variant_new ("(s)", reason));
          return 1;
        }
    }

  if (self->maxtasks > 0)
    credits = MIN (credits, self->maxtasks);
  worker_send (self, FIBER_MESSAGE_READY, g_variant_new ("(u)", (guint32) credits));
  self->last_flush = g_get_monotonic_time ();
  return serve (self);
}

int
_fiber_worker_main_from_environment (void)
{
  /* Torn down on every return, after SIGINT got its default action back. */
  g_auto(Worker) worker = { .wakefd = -1 };
  g_autoptr(GError) error = NULL;
  struct sigaction action = { 0 };
  int status;

  g_mutex_init (&worker.socket_lock);
  g_mutex_init (&worker.state_lock);
  g_queue_init (&worker.units);
  worker.heartbeat_ms = FIBER_DEFAULT_HEARTBEAT_MS;

  if (!worker_setup (&worker, &error))
    {
      g_printerr ("fiber worker: %s\n", error->message);
      return 1;
    }

  action.sa_handler = on_sigint;
  action.sa_flags = SA_RESTART;
  sigemptyset (&action.sa_mask);
  sigaction (SIGINT, &action, NULL);

  g_mutex_lock (&worker.socket_lock);
  status = worker_run (&worker, &error);
  g_mutex_unlock (&worker.socket_lock);
  signal (SIGINT, SIG_DFL);

  if (error != NULL)
    g_printerr ("fiber worker: %s\n", error->message);
  return status;
}

/* fiber-dispatcher.c — the engine of FiberProcessPool
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One thread per pool owns the worker jobs, all dispatch state and the
 * endpoint the workers connect to: for local workers a unix stream socket
 * in a private 0700 directory (one connection per worker, length-prefixed
 * frames, no ZeroMQ I/O thread between the two ends), for remote workers
 * a ZeroMQ ROUTER on tcp:// with CURVE.  A local pool can also be asked to
 * use a ZeroMQ ROUTER on ipc:// (the `transport` of FiberProcessPool), the
 * remote code path without CURVE, so the two can be compared.  Either way
 * a worker first proves the authkey in its HELLO.
 *
 * API calls queue commands on a list under `lock` (checked against
 * `stopped` in the same critical section, so that none is queued after
 * the thread took its last ones) and wake the thread through an eventfd,
 * written only when the list goes from empty to non-empty; the thread
 * takes the whole list at once.  A submission of a pool on the unix
 * socket is dispatched by the calling thread itself when the dispatcher
 * thread is idle in poll() and no command is queued ahead of it (the
 * dispatch state is under `state_lock`, which the thread releases only
 * while it polls).
 * The thread polls the listening socket (or the ROUTER), the eventfd, the
 * fd of every worker job (readable once the job ended) and every worker
 * connection.
 *
 * Work is kept as ranges of batch items; a worker gets whole chunks.  While
 * a worker is idle or not every worker has connected, each worker gets at
 * most one chunk at a time, so no item waits behind a busy worker while
 * another is free.  Once every worker is connected and busy, a worker gets
 * more chunks ahead, enough for about PREFETCH_NSEC of work at the item
 * time measured on it: short tasks then travel by the thousand in one TASK
 * message and come back in batched RESULTs.
 *
 * Every item is at any time in exactly one place: a queued range, the
 * suspect queue, or the in-flight list of one worker; a result is accepted
 * only from the worker that holds the item, so it is delivered once.  When
 * a worker is lost (its job ended, or it stayed silent), the items it held
 * become suspects: they are resent one at a time to an otherwise idle
 * worker, so that when a worker dies holding a single item the blame is
 * exact.  Such a loss counts against the item's max-retries, and so does a
 * loss for the first item a worker held (workers run their items in
 * order: that one was running); beyond it the item fails with
 * FIBER_ERROR_WORKER_LOST.
 */

#include "fiber-dispatcher-private.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <zmq.h>

#include "fiber-auth.h"
#include "fiber-error.h"
#include "fiber-init-private.h"
#include "fiber-message.h"
#include "fiber-pool-private.h"
#include "fiber-process-private.h"
#include "fiber-worker-private.h"

/* How much work to queue ahead on a busy worker. */
#define PREFETCH_NSEC        (2 * 1000 * 1000)
#define MAX_PREFETCH_ITEMS   16384
/* Chunks a busy worker may hold of a call whose items were not measured. */
#define UNMEASURED_DEPTH     4
/* Messages handled per wakeup before the other sources get a turn. */
#define MAX_RECV_BURST       256
/* A worker that has not said HELLO this long after it started (a remote
 * job: after it began to run) is lost. */
#define START_TIMEOUT_USEC   (60 * G_USEC_PER_SEC)
/* Consecutive workers that exit before serving before queued work fails. */
#define MAX_START_FAILURES   3
#define SPAWN_BACKOFF_USEC   (G_USEC_PER_SEC)
/* Local connections that have not said HELLO yet: at most this many, for
 * at most this long. */
#define MAX_PEERS            64
#define PEER_TIMEOUT_USEC    (10 * G_USEC_PER_SEC)
/* How long the last messages of a worker whose job ended may take. */
#define ENDED_GRACE_USEC     (200 * 1000)

typedef enum
{
  COMMAND_SUBMIT,
  COMMAND_CLOSE,
  COMMAND_TERMINATE,
  COMMAND_INTERRUPT,
} CommandKind;

typedef struct _Command Command;
struct _Command
{
  Command     *next;
  CommandKind  kind;
  FiberBatch  *batch;
};

typedef struct
{
  FiberBatch  *batch;
  guint64      id;
  const char  *task;
  guint        chunksize;
  guint        unresolved;   /* items the dispatcher still has to settle */
  gint64       item_nsec;    /* measured time per item, 0 = unknown */
  GHashTable  *losses;       /* index → times lost with a worker */
} BatchState;

typedef struct
{
  BatchState *bs;
  guint       next;
  guint       end;
} Range;

typedef struct
{
  BatchState *bs;
  guint       index;
  gboolean    suspect;
} Item;

/* An accepted local connection that has not said HELLO yet. */
typedef struct
{
  FiberWireStream *stream;
  gint64           since;
} Peer;

typedef enum
{
  WORKER_STARTING,   /* job created, no HELLO yet */
  WORKER_CONNECTED,  /* welcomed */
  WORKER_LEAVING,    /* said GOODBYE or was told to stop: gets no work */
  WORKER_LOST,       /* given up; waiting for the job to end */
} WorkerState;

typedef struct
{
  guint        serial;
  char        *id;
  FiberJob    *job;
  int          fd;
  gboolean     poll_fd;
  GBytes      *identity;
  FiberWireStream *stream;     /* local workers: the unix stream */
  gboolean     claimed;        /* a waiting caller reads the stream (pump) */
  WorkerState  state;
  gboolean     ready;
  guint        credits;
  guint        allowance;      /* G_MAXUINT: unlimited */
  guint        completed;
  gboolean     isolating;      /* holds a suspect: gets nothing else */
  gboolean     shutdown_sent;
  gboolean     kill_sent;
  char        *goodbye;

  /* in-flight ring */
  Item        *ring;
  guint        ring_size;
  guint        ring_head;
  guint        n_inflight;

  gint64       started_at;
  gint64       running_at;     /* remote: when the job was first seen running */
  gint64       last_recv;
  gint64       last_send;
  gint64       busy_mark;      /* since when the worker has had work */
  gint64       ended_at;       /* job ended with work held: 0, or when seen */
} Worker;

struct _FiberDispatcher
{
  gatomicrefcount  ref;

  /* configuration (immutable) */
  FiberBackend    *backend;
  char           **worker_argv;
  char            *task_modules;
  GBytes          *authkey;
  char            *authkey_hex;
  char            *name;
  gboolean         daemon;
  guint            processes;
  char            *initializer;
  GVariant        *initargs;
  guint            maxtasksperchild;
  gboolean         resilient;
  guint            max_retries;
  guint            heartbeat_ms;
  gboolean         remote;
  gboolean         local_zmq;

  guint8           nonce[FIBER_AUTH_NONCE_SIZE];
  char            *nonce_hex;
  char            *runtime_dir;
  char            *socket_path;
  char            *endpoint;
  char            *curve_public;
  char            *curve_secret;

  /* cross-thread */
  GMutex           state_lock;   /* the dispatch state below; the thread
                                  * lets go of it only while it polls */
  Command         *commands;     /* newest first; changed under `lock` */
  int              wakefd;
  GMutex           lock;         /* commands, stopped, finished, pids */
  GCond            cond;
  gboolean         stopped;      /* no more commands accepted */
  gboolean         finished;     /* thread done, directory removed */
  GArray          *pids;         /* gint64, live worker jobs */
  GThread         *thread;

  /* dispatcher thread only */
  void            *zctx;
  void            *router;       /* remote pools (tcp + CURVE), or local
                                  * ones with local_zmq (ipc) */
  int              listen_fd;    /* local pools: the unix socket */
  GPtrArray       *peers;        /* Peer, accepted without HELLO yet */
  GPtrArray       *poll_streams; /* Worker, in poll order after the job fds */
  GPtrArray       *poll_peers;   /* Peer, in poll order after the streams */
  guint            n_job_items;
  GPtrArray       *workers;
  GHashTable      *by_identity;  /* GBytes → Worker */
  GHashTable      *by_id;        /* worker id → Worker (STARTING only) */
  GHashTable      *batches;      /* guint64 id → BatchState */
  GQueue           queue;        /* Range */
  GQueue           suspects;     /* Item (heap) */
  GArray          *pollitems;
  GArray          *pollfds;      /* struct pollfd, for poll_items() */
  int              epfd;         /* local pools: an epoll set of the items */
  gboolean         ep_stale;     /* the set must be made again */
  GArray          *ep_registered; /* short per item: the events in the set, -1 none */
  GArray          *ep_events;    /* struct epoll_event, for epoll_wait() */
  GPtrArray       *poll_workers;
  gboolean         poll_dirty;
  guint            serial;
  guint            rr;
  gboolean         closing;
  gboolean         terminating;
  gboolean         shutdown_sent;
  gboolean         broken;
  guint            start_failures;
  gint64           spawn_retry_at;
  gint64           next_tick;
  gboolean         exit_loop;
};

static void dispatcher_free (FiberDispatcher *self);

/* ------------------------------------------------------------------ */
/* Batches and items                                                   */

static void
batch_state_free (BatchState *bs)
{
  g_clear_pointer (&bs->losses, g_hash_table_unref);
  fiber_batch_unref (bs->batch);
  g_free (bs);
}

/* The dispatcher is done with @n items of @bs. */
static void
batch_state_settle (FiberDispatcher *self,
                    BatchState      *bs,
                    guint            n)
{
  g_assert (bs->unresolved >= n);
  bs->unresolved -= n;
  if (bs->unresolved > 0)
    return;
  g_hash_table_remove (self->batches, &bs->id);   /* frees */
}

static void
complete_item (FiberDispatcher *self,
               BatchState      *bs,
               guint            index,
               GVariant        *value,
               GError          *error)
{
  _fiber_batch_complete_item_take (bs->batch, index, value, error);
  batch_state_settle (self, bs, 1);
}

static void
fail_item (FiberDispatcher *self,
           BatchState      *bs,
           guint            index,
           int              code,
           const char      *message)
{
  complete_item (self, bs, index, NULL,
                 g_error_new_literal (FIBER_ERROR, code, message));
}

static void
fail_queued (FiberDispatcher *self,
             int              code,
             const char      *message)
{
  Range *range;
  Item *item;

  while ((item = g_queue_pop_head (&self->suspects)) != NULL)
    {
      fail_item (self, item->bs, item->index, code, message);
      g_free (item);
    }
  while ((range = g_queue_pop_head (&self->queue)) != NULL)
    {
      BatchState *bs = range->bs;

      if (fiber_batch_is_done (bs->batch))
        batch_state_settle (self, bs, range->end - range->next);
      else
        for (guint i = range->next; i < range->end; i++)
          fail_item (self, bs, i, code, message);
      g_free (range);
    }
}

static gboolean
has_queued_work (FiberDispatcher *self)
{
  return !g_queue_is_empty (&self->queue) || !g_queue_is_empty (&self->suspects);
}

/* ------------------------------------------------------------------ */
/* In-flight ring                                                      */

static void
ring_push (Worker     *w,
           BatchState *bs,
           guint       index,
           gboolean    suspect)
{
  Item *slot;

  if (w->n_inflight == w->ring_size)
    {
      guint new_size = MAX (16, w->ring_size * 2);
      Item *ring = g_new (Item, new_size);

      for (guint i = 0; i < w->n_inflight; i++)
        ring[i] = w->ring[(w->ring_head + i) % w->ring_size];
      g_free (w->ring);
      w->ring = ring;
      w->ring_size = new_size;
      w->ring_head = 0;
    }
  slot = &w->ring[(w->ring_head + w->n_inflight) % w->ring_size];
  slot->bs = bs;
  slot->index = index;
  slot->suspect = suspect;
  w->n_inflight++;
}

static Item *
ring_nth (Worker *w,
          guint   n)
{
  return &w->ring[(w->ring_head + n) % w->ring_size];
}

/* Removes the in-flight entry for (@batch_id, @index); results come back
 * in order, so this is almost always the head. */
static gboolean
ring_take (Worker  *w,
           guint64  batch_id,
           guint    index,
           Item    *out)
{
  for (guint n = 0; n < w->n_inflight; n++)
    {
      Item *it = ring_nth (w, n);

      if (it->index != index || it->bs->id != batch_id)
        continue;
      *out = *it;
      if (n == 0)
        {
          w->ring_head = (w->ring_head + 1) % w->ring_size;
        }
      else
        {
          for (guint k = n; k + 1 < w->n_inflight; k++)
            *ring_nth (w, k) = *ring_nth (w, k + 1);
        }
      w->n_inflight--;
      return TRUE;
    }
  return FALSE;
}

/* ------------------------------------------------------------------ */
/* Workers                                                             */

static void
publish_pids (FiberDispatcher *self)
{
  g_mutex_lock (&self->lock);
  g_array_set_size (self->pids, 0);
  for (guint i = 0; i < self->workers->len; i++)
    {
      Worker *w = g_ptr_array_index (self->workers, i);
      gint64 pid = fiber_job_get_pid (w->job);

      g_array_append_val (self->pids, pid);
    }
  g_mutex_unlock (&self->lock);
}

static void
worker_free (Worker *w)
{
  g_clear_object (&w->job);
  g_clear_pointer (&w->identity, g_bytes_unref);
  g_clear_pointer (&w->stream, _fiber_wire_stream_free);
  g_free (w->ring);
  g_free (w->goodbye);
  g_free (w->id);
  g_free (w);
}

static guint
count_workers (FiberDispatcher *self,
               WorkerState      state)
{
  guint n = 0;

  for (guint i = 0; i < self->workers->len; i++)
    if (((Worker *) g_ptr_array_index (self->workers, i))->state == state)
      n++;
  return n;
}

static FiberJobSpec *
build_job_spec (FiberDispatcher *self,
                const char      *name,
                const char      *id)
{
  FiberJobSpec *spec = fiber_job_spec_new ((const char * const *) self->worker_argv);

  fiber_job_spec_set_name (spec, name);
  fiber_job_spec_set_daemon (spec, self->daemon);
  _fiber_process_fill_child_env (spec, name, self->daemon);
  fiber_job_spec_setenv (spec, FIBER_ENV_AUTHKEY, self->authkey_hex);
  fiber_job_spec_setenv (spec, FIBER_ENV_WORKER_ENDPOINT, self->endpoint);
  fiber_job_spec_setenv (spec, FIBER_ENV_WORKER_ID, id);
  fiber_job_spec_setenv (spec, FIBER_ENV_NONCE, self->nonce_hex);
  if (self->curve_public != NULL)
    fiber_job_spec_setenv (spec, FIBER_ENV_CURVE_SERVERKEY, self->curve_public);
  if (self->task_modules != NULL)
    fiber_job_spec_setenv (spec, FIBER_ENV_TASK_MODULES, self->task_modules);
  return spec;
}

static Worker *
spawn_worker (FiberDispatcher  *self,
              GError          **error)
{
  g_autoptr(FiberJobSpec) spec = NULL;
  g_autofree char *name = NULL;
  guint8 raw_id[16];
  Worker *w;
  FiberJob *job;

  if (!_fiber_auth_random_bytes (raw_id, sizeof raw_id, error))
    return NULL;

  w = g_new0 (Worker, 1);
  w->serial = ++self->serial;
  w->id = _fiber_auth_hex_encode (raw_id, sizeof raw_id);
  name = g_strdup_printf ("%s-%u", self->name, w->serial);
  spec = build_job_spec (self, name, w->id);

  job = fiber_backend_create_job (self->backend, spec, error);
  if (job == NULL)
    {
      worker_free (w);
      return NULL;
    }

  w->job = job;
  w->fd = fiber_job_get_fd (job);
  w->poll_fd = w->fd >= 0;
  w->state = WORKER_STARTING;
  w->allowance = self->maxtasksperchild > 0 ? self->maxtasksperchild : G_MAXUINT;
  w->started_at = g_get_monotonic_time ();
  g_ptr_array_add (self->workers, w);
  g_hash_table_insert (self->by_id, w->id, w);
  self->poll_dirty = TRUE;
  publish_pids (self);
  return w;
}

static gboolean
send_to (FiberDispatcher  *self,
         Worker           *w,
         FiberMessageType  type,
         GVariant         *body)
{
  gsize id_size;
  const void *id_data;

  if (w->stream != NULL)
    {
      w->last_send = g_get_monotonic_time ();
      if (_fiber_wire_stream_send (w->stream, type, body))
        return TRUE;
      g_debug ("cannot send to worker %s: %s", w->id, g_strerror (errno));
      return FALSE;
    }
  if (w->identity == NULL)
    {
      g_variant_unref (g_variant_ref_sink (body));
      return FALSE;
    }
  id_data = g_bytes_get_data (w->identity, &id_size);
  if (zmq_send (self->router, id_data, id_size, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
    {
      g_variant_unref (g_variant_ref_sink (body));
      g_debug ("cannot send to worker %s: %s", w->id, zmq_strerror (errno));
      return FALSE;
    }
  w->last_send = g_get_monotonic_time ();
  return _fiber_wire_send_message (self->router, type, body, ZMQ_DONTWAIT);
}

/* Sends an encoded frame to @w. */
static gboolean
send_frame_to (FiberDispatcher *self,
               Worker          *w,
               GBytes          *frame)
{
  gsize id_size;
  const void *id_data;

  if (w->stream != NULL)
    {
      w->last_send = g_get_monotonic_time ();
      if (_fiber_wire_stream_send_frame (w->stream, frame))
        return TRUE;
      g_debug ("cannot send to worker %s: %s", w->id, g_strerror (errno));
      return FALSE;
    }
  if (w->identity == NULL)
    return FALSE;
  id_data = g_bytes_get_data (w->identity, &id_size);
  if (zmq_send (self->router, id_data, id_size, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
    {
      g_debug ("cannot send to worker %s: %s", w->id, zmq_strerror (errno));
      return FALSE;
    }
  w->last_send = g_get_monotonic_time ();
  return _fiber_wire_send_frame (self->router, frame, ZMQ_DONTWAIT);
}

static void
send_raw (FiberDispatcher  *self,
          GBytes           *identity,
          FiberMessageType  type,
          GVariant         *body)
{
  gsize id_size;
  const void *id_data = g_bytes_get_data (identity, &id_size);

  if (zmq_send (self->router, id_data, id_size, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
    {
      g_variant_unref (g_variant_ref_sink (body));
      return;
    }
  _fiber_wire_send_message (self->router, type, body, ZMQ_DONTWAIT);
}

static void
forget_identity (FiberDispatcher *self,
                 Worker          *w)
{
  if (w->identity != NULL)
    g_hash_table_remove (self->by_identity, w->identity);
  g_hash_table_remove (self->by_id, w->id);
  if (w->stream != NULL)
    {
      /* The worker sees its connection end and exits. */
      g_clear_pointer (&w->stream, _fiber_wire_stream_free);
      self->poll_dirty = TRUE;
    }
}

/* Workers that have said READY: connected, and their initializer ran. */
static guint
count_serving (FiberDispatcher *self)
{
  guint n = 0;

  for (guint i = 0; i < self->workers->len; i++)
    {
      Worker *w = g_ptr_array_index (self->workers, i);

      if (w->state == WORKER_CONNECTED && w->ready)
        n++;
    }
  return n;
}

/* A worker ended (or could not be started) before it served anything.
 * After a few in a row, spawning slows down, and when no worker is left to
 * run the queued work, that work fails instead of waiting forever. */
static void
note_start_failure (FiberDispatcher *self,
                    const char      *why)
{
  self->start_failures++;
  g_debug ("a pool worker ended before serving: %s", why);
  if (self->start_failures < MAX_START_FAILURES)
    return;

  self->spawn_retry_at = g_get_monotonic_time () + SPAWN_BACKOFF_USEC;
  if (count_serving (self) == 0)
    {
      g_autofree char *message =
        g_strdup_printf ("the pool's workers exit before serving any task (%s)", why);

      self->broken = TRUE;
      fail_queued (self, FIBER_ERROR_WORKER_LOST, message);
    }
}

static char *
describe_end (Worker *w)
{
  int exitcode;

  if (w->goodbye != NULL)
    return g_strdup (w->goodbye);
  if (fiber_job_get_exitcode (w->job, &exitcode))
    {
      if (exitcode < 0)
        return g_strdup_printf ("killed by signal %d", -exitcode);
      return g_strdup_printf ("exit status %d", exitcode);
    }
  return g_strdup ("lost");
}

/* How often the item was running on a worker that was lost, this time
 * included. */
static guint
charge_loss (BatchState *bs,
             guint       index)
{
  gpointer key = GUINT_TO_POINTER (index);
  guint losses;

  if (bs->losses == NULL)
    bs->losses = g_hash_table_new (NULL, NULL);
  losses = GPOINTER_TO_UINT (g_hash_table_lookup (bs->losses, key)) + 1;
  g_hash_table_insert (bs->losses, key, GUINT_TO_POINTER (losses));
  return losses;
}

/* @w is gone (its job ended) or given up: whatever it held goes back to
 * the queue as suspects, or fails. */
static void
worker_lost (FiberDispatcher *self,
             Worker          *w,
             const char      *why)
{
  gboolean normal_exit;
  guint n = w->n_inflight;

  if (w->goodbye != NULL)
    normal_exit = g_str_equal (w->goodbye, FIBER_GOODBYE_MAXTASKS) ||
                  g_str_equal (w->goodbye, FIBER_GOODBYE_SHUTDOWN);
  else
    normal_exit = w->shutdown_sent || w->state == WORKER_LEAVING;

  forget_identity (self, w);
  w->state = WORKER_LOST;
  w->isolating = FALSE;

  if (n == 0)
    {
      if (!normal_exit && !self->terminating && w->completed == 0)
        note_start_failure (self, why);
      return;
    }

  g_debug ("worker %s lost with %u items in flight: %s", w->id, n, why);

  /* A worker runs its items in order: the first one it still held was
   * running when it was lost (or had just finished, unreported), so that
   * one is charged with the loss at once — with max-retries 0 it is not
   * run again.  The blame is certain only when the worker held one item:
   * the others run again one by one, alone on a worker, and are charged
   * when they take that worker down. */
  for (guint i = 0; i < n; i++)
    {
      Item it = *ring_nth (w, i);
      Item *copy;

      if (!self->resilient)
        {
          g_autofree char *message =
            g_strdup_printf ("the worker running this task was lost (%s)", why);
          fail_item (self, it.bs, it.index, FIBER_ERROR_WORKER_LOST, message);
          continue;
        }
      if (i == 0)
        {
          guint losses = charge_loss (it.bs, it.index);

          if (losses > self->max_retries)
            {
              g_autofree char *message =
                g_strdup_printf ("the worker running this task was lost %u time%s (%s)",
                                 losses, losses == 1 ? "" : "s", why);
              fail_item (self, it.bs, it.index, FIBER_ERROR_WORKER_LOST, message);
              continue;
            }
        }
      copy = g_memdup2 (&it, sizeof it);
      copy->suspect = TRUE;
      if (n == 1)
        g_queue_push_head (&self->suspects, copy);
      else
        g_queue_push_tail (&self->suspects, copy);
    }
  w->n_inflight = 0;
}

static void
worker_kill (FiberDispatcher *self,
             Worker          *w)
{
  g_autoptr(GError) error = NULL;

  if (w->kill_sent || fiber_job_has_ended (w->job))
    return;
  w->kill_sent = TRUE;
  if (!fiber_backend_terminate_job (self->backend, w->job, TRUE, &error))
    g_debug ("cannot terminate worker %s: %s", w->id, error->message);
}

/* The job of @w may have ended: reap it. */
static void
worker_check_ended (FiberDispatcher *self,
                    Worker          *w)
{
  g_autoptr(GError) error = NULL;

  if (!fiber_job_has_ended (w->job) &&
      !fiber_backend_refresh_job (self->backend, w->job, &error))
    {
      g_debug ("cannot refresh worker %s: %s", w->id, error->message);
      /* Do not spin on an fd that stays readable. */
      if (w->poll_fd)
        {
          w->poll_fd = FALSE;
          self->poll_dirty = TRUE;
        }
      return;
    }

  if (!fiber_job_has_ended (w->job))
    {
      if (w->poll_fd && w->fd >= 0)
        {
          /* A pidfd is readable only once the process exited; a job whose
           * fd woke us without having ended is refreshed on ticks. */
          w->poll_fd = FALSE;
          self->poll_dirty = TRUE;
        }
      return;
    }

  /* The job's fd can report the end before ZeroMQ has delivered the last
   * RESULTs and GOODBYE the worker sent on its way out (it exits only once
   * they left its socket).  Hold on to the worker for a moment, giving it
   * no more work, rather than running items again that are done. */
  if (w->state != WORKER_LOST && w->n_inflight > 0 && w->goodbye == NULL &&
      (w->identity != NULL || w->stream != NULL) && !self->terminating)
    {
      gint64 now = g_get_monotonic_time ();

      if (w->ended_at == 0)
        {
          w->ended_at = now;
          w->state = WORKER_LEAVING;
          if (w->poll_fd)
            {
              w->poll_fd = FALSE;
              self->poll_dirty = TRUE;
            }
        }
      if (now - w->ended_at < ENDED_GRACE_USEC)
        return;
    }

  if (w->state != WORKER_LOST)
    {
      g_autofree char *why = describe_end (w);
      worker_lost (self, w, why);
    }

  g_ptr_array_remove (self->workers, w);
  worker_free (w);
  self->poll_dirty = TRUE;
  publish_pids (self);
}

static guint
count_active (FiberDispatcher *self)
{
  return count_workers (self, WORKER_STARTING) + count_workers (self, WORKER_CONNECTED);
}

static void
maintain_workers (FiberDispatcher *self)
{
  if (self->terminating || self->broken)
    return;
  if (self->closing && !has_queued_work (self))
    return;
  if (self->start_failures >= MAX_START_FAILURES &&
      g_get_monotonic_time () < self->spawn_retry_at)
    return;

  while (count_active (self) < self->processes && !self->broken)
    {
      g_autoptr(GError) error = NULL;

      if (spawn_worker (self, &error) == NULL)
        {
          g_warning ("cannot start a pool worker: %s", error->message);
          note_start_failure (self, error->message);
          return;
        }
    }
}

/* ------------------------------------------------------------------ */
/* Dispatch                                                            */

static gboolean
worker_can_take (Worker *w)
{
  return w->state == WORKER_CONNECTED && w->ready && !w->isolating &&
         w->credits > 0 && w->allowance > 0;
}

static guint
worker_room (Worker *w)
{
  return MIN (w->credits, w->allowance);
}

typedef struct
{
  FiberMessageWriter *writer;
  const char         *task;
  guint               n;
} TaskMessage;

static void
task_message_add (Worker      *w,
                  TaskMessage *msg,
                  BatchState  *bs,
                  guint        index,
                  gboolean     suspect)
{
  g_autoptr(GVariant) args = fiber_batch_get_args (bs->batch, index);

  if (msg->n == 0)
    {
      msg->writer = _fiber_message_writer_new (FIBER_MESSAGE_TASK, bs->task);
      msg->task = bs->task;
    }
  _fiber_message_writer_add (msg->writer, bs->id, index, TRUE, args);
  msg->n++;
  ring_push (w, bs, index, suspect);
}

static void
task_message_send (FiberDispatcher *self,
                   Worker          *w,
                   TaskMessage     *msg)
{
  g_autoptr(GBytes) frame = NULL;

  if (msg->n == 0)
    return;
  frame = _fiber_message_writer_finish (g_steal_pointer (&msg->writer));
  w->credits -= msg->n;
  if (w->allowance != G_MAXUINT)
    w->allowance -= msg->n;
  send_frame_to (self, w, frame);
  msg->n = 0;
  msg->task = NULL;
}

/* Moves up to @max_items queued items (whole chunks, at least one chunk)
 * to @w, in as few TASK messages as the task names allow. */
static void
send_chunks (FiberDispatcher *self,
             Worker          *w,
             guint            max_items,
             gboolean         one_chunk)
{
  TaskMessage msg = { .n = 0 };
  guint sent = 0;

  if (w->n_inflight == 0)
    w->busy_mark = g_get_monotonic_time ();

  while (sent < max_items)
    {
      Range *range = g_queue_peek_head (&self->queue);
      BatchState *bs;
      guint take;

      if (range == NULL)
        break;
      bs = range->bs;
      if (fiber_batch_is_done (bs->batch))
        {
          /* Cancelled, or a map that already failed. */
          g_queue_pop_head (&self->queue);
          batch_state_settle (self, bs, range->end - range->next);
          g_free (range);
          continue;
        }
      if (msg.n > 0 && !g_str_equal (msg.task, bs->task))
        task_message_send (self, w, &msg);

      take = MIN (bs->chunksize, range->end - range->next);
      if (sent > 0 && sent + take > max_items)
        break;
      /* Never beyond the worker's credits or maxtasksperchild allowance. */
      take = MIN (take, max_items - sent);
      for (guint i = 0; i < take; i++)
        task_message_add (w, &msg, bs, range->next + i, FALSE);
      range->next += take;
      sent += take;
      if (range->next == range->end)
        {
          g_queue_pop_head (&self->queue);
          g_free (range);
        }
      if (one_chunk)
        break;
    }
  task_message_send (self, w, &msg);
}

/* How many items of @bs a busy worker may hold. */
static guint
prefetch_items (BatchState *bs,
                guint       backlog_per_worker)
{
  guint64 n;

  /* Not measured yet (each apply_async is a batch of its own and is never
   * measured before it is done): with a backlog of several chunks per
   * worker every worker stays busy for a while anyway, so it may hold a
   * few chunks, and its results no longer wait for a round trip each.
   * At most UNMEASURED_DEPTH - 1 chunks can end up behind a long one. */
  if (bs->item_nsec <= 0)
    return bs->chunksize * CLAMP (backlog_per_worker, 1, UNMEASURED_DEPTH);
  n = PREFETCH_NSEC / (guint64) bs->item_nsec;
  n = CLAMP (n, bs->chunksize, MAX (MAX_PREFETCH_ITEMS, bs->chunksize));
  return (guint) n;
}

/* A sample is the time a worker took per item between two of its
 * results.  Pauses in the pipeline only ever make samples too long, so the
 * estimate follows shorter samples at once and longer ones slowly.  It is
 * kept per batch: a new call (maybe of much longer tasks) starts with no
 * prefetch until its own items were measured. */
static void
batch_state_measure (BatchState *bs,
                     gint64      sample_nsec)
{
  if (sample_nsec <= 0)
    sample_nsec = 1;
  if (bs->item_nsec <= 0 || sample_nsec < bs->item_nsec)
    bs->item_nsec = sample_nsec;
  else
    bs->item_nsec = (7 * bs->item_nsec + sample_nsec) / 8;
}

static void
dispatch (FiberDispatcher *self)
{
  guint n_workers = self->workers->len;
  gboolean all_busy = TRUE;
  guint backlog_per_worker;

  if (self->terminating || n_workers == 0 || !has_queued_work (self))
    return;

  /* Suspects, each alone on an idle worker. */
  for (guint k = 0; k < n_workers && !g_queue_is_empty (&self->suspects); k++)
    {
      Worker *w = g_ptr_array_index (self->workers, (self->rr + k) % n_workers);
      TaskMessage msg = { .n = 0 };
      Item *it;

      if (!worker_can_take (w) || w->n_inflight > 0)
        continue;
      while ((it = g_queue_pop_head (&self->suspects)) != NULL &&
             _fiber_batch_item_is_done (it->bs->batch, it->index))
        {
          batch_state_settle (self, it->bs, 1);
          g_free (it);
        }
      if (it == NULL)
        break;
      w->busy_mark = g_get_monotonic_time ();
      w->isolating = TRUE;
      task_message_add (w, &msg, it->bs, it->index, TRUE);
      task_message_send (self, w, &msg);
      g_free (it);
    }

  /* One chunk for every idle worker. */
  for (guint k = 0; k < n_workers && !g_queue_is_empty (&self->queue); k++)
    {
      Worker *w = g_ptr_array_index (self->workers, (self->rr + k) % n_workers);

      if (worker_can_take (w) && w->n_inflight == 0)
        send_chunks (self, w, worker_room (w), TRUE);
    }
  self->rr++;

  if (g_queue_is_empty (&self->queue))
    return;

  /* Deeper prefetch only when every worker is connected and busy. */
  if (count_workers (self, WORKER_STARTING) > 0 ||
      count_workers (self, WORKER_CONNECTED) < self->processes)
    return;
  for (guint k = 0; k < n_workers; k++)
    {
      Worker *w = g_ptr_array_index (self->workers, k);

      if (w->state == WORKER_CONNECTED && w->n_inflight == 0)
        all_busy = FALSE;
    }
  if (!all_busy)
    return;

  backlog_per_worker = g_queue_get_length (&self->queue) / MAX (self->processes, 1);
  for (guint k = 0; k < n_workers && !g_queue_is_empty (&self->queue); k++)
    {
      Worker *w = g_ptr_array_index (self->workers, (self->rr + k) % n_workers);
      Range *range = g_queue_peek_head (&self->queue);
      guint limit;

      if (!worker_can_take (w))
        continue;
      limit = prefetch_items (range->bs, backlog_per_worker);
      if (w->n_inflight + range->bs->chunksize > limit)
        continue;
      send_chunks (self, w, MIN (limit - w->n_inflight, worker_room (w)), FALSE);
    }
}

/* ------------------------------------------------------------------ */
/* Incoming messages                                                   */

static void
reject_peer (FiberDispatcher *self,
             GBytes          *identity,
             FiberWireStream *stream,
             const char      *reason)
{
  GVariant *body = g_variant_new ("(s)", reason);

  if (stream != NULL)
    {
      /* Best effort: the connection is closed right after. */
      if (_fiber_wire_stream_send (stream, FIBER_MESSAGE_REJECT, body))
        _fiber_wire_stream_flush_blocking (stream, 100);
    }
  else
    send_raw (self, identity, FIBER_MESSAGE_REJECT, body);
}

/* A HELLO from a ROUTER peer (@identity) or a new local connection
 * (@stream, which the worker takes over when it is welcomed).  Returns
 * whether the peer was welcomed. */
static gboolean
handle_hello (FiberDispatcher *self,
              GBytes          *identity,
              FiberWireStream *stream,
              GVariant        *body)
{
  g_autoptr(GError) error = NULL;
  const char *id;
  const char *host;
  gint64 pid;
  g_autoptr(GVariant) proof = NULL;
  const guint8 *proof_data;
  gsize proof_size, key_size;
  const guint8 *key;
  Worker *w;

  g_variant_get (body, "(&sx&s@ay)", &id, &pid, &host, &proof);

  w = g_hash_table_lookup (self->by_id, id);
  if (w == NULL || w->state != WORKER_STARTING)
    {
      g_debug ("rejecting a peer that claims an unknown worker id");
      reject_peer (self, identity, stream, "unknown or already connected worker id");
      return FALSE;
    }

  proof_data = g_variant_get_fixed_array (proof, &proof_size, 1);
  key = g_bytes_get_data (self->authkey, &key_size);
  if (!_fiber_auth_verify_proof (key, key_size, self->nonce, sizeof self->nonce,
                                 id, proof_data, proof_size, &error))
    {
      g_debug ("rejecting a peer: %s", error->message);
      reject_peer (self, identity, stream, "authentication failed");
      return FALSE;
    }

  g_hash_table_remove (self->by_id, w->id);
  if (stream != NULL)
    {
      w->stream = stream;
      self->poll_dirty = TRUE;
    }
  else
    {
      w->identity = g_bytes_ref (identity);
      g_hash_table_insert (self->by_identity, w->identity, w);
    }
  w->state = WORKER_CONNECTED;
  w->last_recv = g_get_monotonic_time ();

  send_to (self, w, FIBER_MESSAGE_WELCOME,
           g_variant_new ("(s@vuu)",
                          self->initializer != NULL ? self->initializer : "",
                          g_variant_new_variant (self->initargs != NULL
                                                 ? self->initargs
                                                 : g_variant_new ("()")),
                          self->maxtasksperchild, self->heartbeat_ms));
  if (self->closing && !has_queued_work (self))
    {
      w->shutdown_sent = TRUE;
      w->state = WORKER_LEAVING;
      send_to (self, w, FIBER_MESSAGE_SHUTDOWN, g_variant_new ("()"));
    }
  return TRUE;
}

static void
handle_result (FiberDispatcher *self,
               Worker          *w,
               GVariant        *body)
{
  gsize n = g_variant_n_children (body);
  gint64 now = g_get_monotonic_time ();
  BatchState *measured = NULL;
  guint64 measured_id = 0;

  for (gsize i = 0; i < n; i++)
    {
      g_autoptr(GVariant) entry = g_variant_get_child_value (body, i);
      g_autoptr(GVariant) boxed = NULL;
      GVariant *value;
      FiberApplyResult *result;
      guint64 batch_id;
      guint index;
      gboolean ok;
      Item it;

      _fiber_wire_read_item_head (entry, &batch_id, &index, &ok);
      if (!ring_take (w, batch_id, index, &it))
        {
          g_debug ("worker %s sent a result for an item it does not hold", w->id);
          continue;
        }
      w->credits++;
      w->completed++;
      measured = it.bs;
      measured_id = it.bs->id;
      if (it.suspect)
        w->isolating = FALSE;

      boxed = g_variant_get_child_value (entry, 3);
      result = _fiber_batch_get_result (it.bs->batch);
      if (ok && FIBER_IS_MAP_RESULT (result))
        {
          /* Maps keep the value boxed, as it came. */
          _fiber_map_result_set_boxed (FIBER_MAP_RESULT (result), index,
                                       g_steal_pointer (&boxed));
          batch_state_settle (self, it.bs, 1);
          continue;
        }
      value = g_variant_get_variant (boxed);
      if (ok)
        complete_item (self, it.bs, index, value, NULL);
      else
        {
          GError *error = _fiber_message_error_from_tuple (value);

          g_variant_unref (value);
          complete_item (self, it.bs, index, NULL, error);
        }
    }

  if (measured != NULL)
    {
      /* @measured may have been settled and freed by now. */
      BatchState *bs = g_hash_table_lookup (self->batches, &measured_id);

      if (bs != NULL)
        batch_state_measure (bs, (now - w->busy_mark) * 1000 / (gint64) n);
    }
  w->busy_mark = now;
}

static void handle_worker_message (FiberDispatcher  *self,
                                   Worker           *w,
                                   FiberMessageType  type,
                                   GVariant         *body);

static void
handle_message (FiberDispatcher *self,
                GBytes          *identity,
                GBytes          *frame)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) body = NULL;
  FiberMessageType type;
  Worker *w;

  if (!_fiber_message_decode (frame, &type, &body, &error))
    {
      g_debug ("dropping a message: %s", error->message);
      return;
    }

  w = g_hash_table_lookup (self->by_identity, identity);
  if (w == NULL)
    {
      if (type == FIBER_MESSAGE_HELLO && !self->terminating)
        handle_hello (self, identity, NULL, body);
      else
        g_debug ("dropping a message from an unauthenticated peer");
      return;
    }
  handle_worker_message (self, w, type, body);
}

/* A message from the connected worker @w. */
static void
handle_worker_message (FiberDispatcher  *self,
                       Worker           *w,
                       FiberMessageType  type,
                       GVariant         *body)
{
  w->last_recv = g_get_monotonic_time ();

  switch (type)
    {
    case FIBER_MESSAGE_READY:
      {
        guint32 credits;

        g_variant_get (body, "(u)", &credits);
        w->credits = (guint) MIN ((guint64) w->credits + credits, G_MAXUINT / 2);
        w->ready = TRUE;
        /* Only now it serves: its initializer ran. */
        self->start_failures = 0;
      }
      break;

    case FIBER_MESSAGE_RESULT:
      handle_result (self, w, body);
      break;

    case FIBER_MESSAGE_HEARTBEAT:
      break;

    case FIBER_MESSAGE_GOODBYE:
      {
        const char *reason;

        g_variant_get (body, "(&s)", &reason);
        g_free (w->goodbye);
        w->goodbye = g_strdup (reason);
        if (w->state == WORKER_CONNECTED)
          w->state = WORKER_LEAVING;
      }
      break;

    case FIBER_MESSAGE_HELLO:
    case FIBER_MESSAGE_WELCOME:
    case FIBER_MESSAGE_REJECT:
    case FIBER_MESSAGE_TASK:
    case FIBER_MESSAGE_SHUTDOWN:
    case FIBER_MESSAGE_INTERRUPT:
    default:
      g_debug ("worker %s sent an unexpected message '%c'", w->id, type);
      break;
    }
}

static void
receive_messages (FiberDispatcher *self)
{
  for (guint n = 0; n < MAX_RECV_BURST; n++)
    {
      g_autoptr(GBytes) identity = NULL;
      g_autoptr(GBytes) frame = NULL;
      gboolean more = FALSE;

      identity = _fiber_wire_recv_frame (self->router, ZMQ_DONTWAIT, &more);
      if (identity == NULL)
        break;
      if (!more)
        continue;
      frame = _fiber_wire_recv_frame (self->router, ZMQ_DONTWAIT, &more);
      if (frame == NULL)
        continue;
      if (more)
        {
          _fiber_wire_drain (self->router);
          g_debug ("dropping a multi-frame message");
          continue;
        }
      handle_message (self, identity, frame);
    }
}

/* Everything a local worker sent.  At the end of its connection the
 * worker gets no more work; its job ending (seen on the job fd, or by the
 * heartbeat check) settles what it held. */
static void
receive_from_stream (FiberDispatcher *self,
                     Worker          *w)
{
  gboolean closed = _fiber_wire_stream_fill (w->stream) < 0;

  while (w->stream != NULL)
    {
      g_autoptr(GBytes) frame = NULL;
      g_autoptr(GVariant) body = NULL;
      g_autoptr(GError) error = NULL;
      FiberMessageType type;
      gboolean broken = FALSE;

      frame = _fiber_wire_stream_next_frame (w->stream, &broken);
      if (frame == NULL)
        {
          closed = closed || broken;
          break;
        }
      if (!_fiber_message_decode (frame, &type, &body, &error))
        {
          g_debug ("dropping a message from worker %s: %s", w->id, error->message);
          continue;
        }
      handle_worker_message (self, w, type, body);
    }

  if (closed && w->stream != NULL)
    {
      g_debug ("worker %s closed its connection", w->id);
      g_clear_pointer (&w->stream, _fiber_wire_stream_free);
      if (w->state == WORKER_CONNECTED)
        w->state = WORKER_LEAVING;
      self->poll_dirty = TRUE;
    }
}

static void
accept_peers (FiberDispatcher *self)
{
  for (;;)
    {
      int fd = accept4 (self->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
      Peer *peer;

      if (fd < 0)
        {
          if (errno == EINTR)
            continue;
          break;
        }
      if (self->terminating)
        {
          close (fd);
          continue;
        }
      if (self->peers->len >= MAX_PEERS)
        g_ptr_array_remove_index (self->peers, 0);
      peer = g_new0 (Peer, 1);
      peer->stream = _fiber_wire_stream_new (fd);
      peer->since = g_get_monotonic_time ();
      g_ptr_array_add (self->peers, peer);
      self->poll_dirty = TRUE;
    }
}

static void
peer_free (Peer *peer)
{
  g_clear_pointer (&peer->stream, _fiber_wire_stream_free);
  g_free (peer);
}

/* The first message of a local connection must be a valid HELLO; the
 * connection is closed otherwise. */
static void
receive_from_peer (FiberDispatcher *self,
                   Peer            *peer)
{
  g_autoptr(GBytes) frame = NULL;
  g_autoptr(GVariant) body = NULL;
  g_autoptr(GError) error = NULL;
  FiberMessageType type;
  gboolean closed = _fiber_wire_stream_fill (peer->stream) < 0;
  gboolean broken = FALSE;

  frame = _fiber_wire_stream_next_frame (peer->stream, &broken);
  if (frame == NULL && !broken && !closed)
    return;

  if (frame == NULL)
    g_debug ("dropping a local connection that ended before HELLO");
  else if (!_fiber_message_decode (frame, &type, &body, &error))
    g_debug ("dropping a local connection: %s", error->message);
  else if (type != FIBER_MESSAGE_HELLO || self->terminating)
    g_debug ("dropping a local connection that did not start with HELLO");
  else if (handle_hello (self, NULL, peer->stream, body))
    peer->stream = NULL;  /* the worker's now */

  g_ptr_array_remove (self->peers, peer);
  self->poll_dirty = TRUE;
}

/* ------------------------------------------------------------------ */
/* Commands                                                            */

/* With self->lock held, so that no command is pushed after the thread
 * stopped taking them (see queue_command()). */
static void
push_command (FiberDispatcher *self,
              Command         *cmd)
{
  cmd->next = self->commands;
  /* Atomic only for the unlocked peek of submit_directly(). */
  g_atomic_pointer_set (&self->commands, cmd);

  if (cmd->next == NULL)
    {
      guint64 one = 1;
      ssize_t r;

      do
        r = write (self->wakefd, &one, sizeof one);
      while (r < 0 && errno == EINTR);
    }
}

static gboolean
queue_command (FiberDispatcher *self,
               CommandKind      kind,
               FiberBatch      *batch)
{
  Command *cmd;

  g_mutex_lock (&self->lock);
  if (self->stopped)
    {
      g_mutex_unlock (&self->lock);
      return FALSE;
    }
  cmd = g_new (Command, 1);
  cmd->kind = kind;
  cmd->batch = batch != NULL ? fiber_batch_ref (batch) : NULL;
  push_command (self, cmd);
  g_mutex_unlock (&self->lock);
  return TRUE;
}

static void
accept_batch (FiberDispatcher *self,
              FiberBatch      *batch)
{
  BatchState *bs;
  Range *range;
  guint n = fiber_batch_get_n_items (batch);

  if (self->terminating)
    {
      for (guint i = 0; i < n; i++)
        _fiber_batch_complete_item_take (batch, i, NULL,
                                         g_error_new_literal (FIBER_ERROR, FIBER_ERROR_CLOSED,
                                                              "the pool was terminated"));
      fiber_batch_unref (batch);
      return;
    }
  if (n == 0)
    {
      fiber_batch_unref (batch);
      return;
    }

  bs = g_new0 (BatchState, 1);
  bs->batch = batch;
  bs->id = fiber_batch_get_id (batch);
  bs->task = fiber_batch_get_task (batch);
  bs->chunksize = MAX (1, fiber_batch_get_chunksize (batch));
  bs->unresolved = n;
  g_hash_table_insert (self->batches, &bs->id, bs);

  range = g_new (Range, 1);
  range->bs = bs;
  range->next = 0;
  range->end = n;
  g_queue_push_tail (&self->queue, range);

  if (self->broken)
    {
      /* Try again with fresh workers. */
      self->broken = FALSE;
      self->start_failures = 0;
    }
}

static void
begin_terminate (FiberDispatcher *self)
{
  if (self->terminating)
    return;
  self->terminating = TRUE;
  self->closing = TRUE;

  fail_queued (self, FIBER_ERROR_CLOSED, "the pool was terminated");
  for (guint i = 0; i < self->workers->len; i++)
    {
      Worker *w = g_ptr_array_index (self->workers, i);

      for (guint k = 0; k < w->n_inflight; k++)
        {
          Item *it = ring_nth (w, k);
          fail_item (self, it->bs, it->index, FIBER_ERROR_CLOSED, "the pool was terminated");
        }
      w->n_inflight = 0;
      forget_identity (self, w);
      w->state = WORKER_LOST;
      worker_kill (self, w);
    }
}

/* Signals the process of a local @job through its pidfd: a worker may
 * have been started by the fork server (not our child, never reaped by
 * us), so its pid could already name another process; the pidfd cannot.
 * FALSE when the job's fd is not a pidfd (a backend that has none) or the
 * process is gone. */
static gboolean
signal_job (FiberJob *job,
            int       signo)
{
  int fd = fiber_job_get_fd (job);

  if (fd < 0)
    return FALSE;
  if (pidfd_send_signal (fd, signo, NULL, 0) == 0)
    return TRUE;
  g_debug ("cannot signal job %s through its fd: %s",
           fiber_job_get_id (job), g_strerror (errno));
  return FALSE;
}

/* Interrupts the items running in the workers, as pypushflow's pools do:
 * SIGINT through the pidfd of each local worker that holds work (a
 * binding's worker turns it into an exception in the running task, a task
 * blocked in a system call sees EINTR), an INTERRUPT message to a remote
 * one (or to a local one whose job fd is not a pidfd).  Sending only one of
 * them keeps a late duplicate from interrupting the worker's next item.  A
 * worker between items ignores both. */
static void
interrupt_workers (FiberDispatcher *self)
{
  for (guint i = 0; i < self->workers->len; i++)
    {
      Worker *w = g_ptr_array_index (self->workers, i);

      if (w->state != WORKER_CONNECTED && w->state != WORKER_LEAVING)
        continue;
      if (w->n_inflight == 0)
        continue;
      if (!self->remote && !fiber_job_has_ended (w->job) &&
          signal_job (w->job, SIGINT))
        continue;
      send_to (self, w, FIBER_MESSAGE_INTERRUPT, g_variant_new ("(t)", (guint64) 0));
    }
}

static void
process_commands (FiberDispatcher *self)
{
  Command *list;
  Command *reversed = NULL;

  g_mutex_lock (&self->lock);
  list = self->commands;
  g_atomic_pointer_set (&self->commands, NULL);
  g_mutex_unlock (&self->lock);

  while (list != NULL)
    {
      Command *next = list->next;
      list->next = reversed;
      reversed = list;
      list = next;
    }

  while (reversed != NULL)
    {
      Command *cmd = reversed;
      reversed = cmd->next;

      switch (cmd->kind)
        {
        case COMMAND_SUBMIT:
          accept_batch (self, cmd->batch);
          break;
        case COMMAND_CLOSE:
          self->closing = TRUE;
          break;
        case COMMAND_TERMINATE:
          begin_terminate (self);
          break;
        case COMMAND_INTERRUPT:
          interrupt_workers (self);
          break;
        default:
          g_assert_not_reached ();
        }
      g_free (cmd);
    }
}

/* ------------------------------------------------------------------ */
/* Heartbeats and the end                                              */

static void
tick (FiberDispatcher *self,
      gint64           now)
{
  gint64 interval = (gint64) self->heartbeat_ms * 1000;
  g_autoptr(GPtrArray) snapshot = g_ptr_array_copy (self->workers, NULL, NULL);

  for (guint i = self->peers->len; i > 0; i--)
    if (now - ((Peer *) g_ptr_array_index (self->peers, i - 1))->since > PEER_TIMEOUT_USEC)
      {
        g_ptr_array_remove_index (self->peers, i - 1);
        self->poll_dirty = TRUE;
      }

  /* Jobs without an fd to poll are refreshed here (this may free them). */
  for (guint i = 0; i < snapshot->len; i++)
    {
      Worker *w = g_ptr_array_index (snapshot, i);

      if (!w->poll_fd)
        worker_check_ended (self, w);
    }

  for (guint i = 0; i < self->workers->len; i++)
    {
      Worker *w = g_ptr_array_index (self->workers, i);

      switch (w->state)
        {
        case WORKER_STARTING:
          /* A remote job may wait in the scheduler's queue for long; its
           * time to connect counts from when it runs. */
          if (self->remote && w->running_at == 0 &&
              fiber_job_get_state (w->job) == FIBER_JOB_STATE_RUNNING)
            w->running_at = now;
          if ((!self->remote || w->running_at != 0) &&
              now - (self->remote ? w->running_at : w->started_at) > START_TIMEOUT_USEC)
            {
              worker_lost (self, w, "the worker did not connect in time");
              worker_kill (self, w);
            }
          break;
        case WORKER_CONNECTED:
        case WORKER_LEAVING:
          if (now - w->last_recv > FIBER_HEARTBEAT_LIVENESS * interval)
            {
              worker_lost (self, w, "the worker stopped sending heartbeats");
              worker_kill (self, w);
            }
          else if (now - w->last_send >= interval)
            send_to (self, w, FIBER_MESSAGE_HEARTBEAT, g_variant_new ("()"));
          break;
        case WORKER_LOST:
          worker_kill (self, w);
          break;
        default:
          break;
        }
    }
}

static gboolean
work_pending (FiberDispatcher *self)
{
  return g_hash_table_size (self->batches) > 0;
}

static void
check_finished (FiberDispatcher *self)
{
  if (!self->closing)
    return;

  if (!self->terminating)
    {
      if (work_pending (self))
        return;
      if (!self->shutdown_sent)
        {
          self->shutdown_sent = TRUE;
          for (guint i = 0; i < self->workers->len; i++)
            {
              Worker *w = g_ptr_array_index (self->workers, i);

              if (w->state == WORKER_STARTING)
                {
                  /* It would only be told to leave: stop it now. */
                  w->state = WORKER_LEAVING;
                  fiber_backend_terminate_job (self->backend, w->job, FALSE, NULL);
                }
            }
        }
      for (guint i = 0; i < self->workers->len; i++)
        {
          Worker *w = g_ptr_array_index (self->workers, i);

          if ((w->state == WORKER_CONNECTED || w->state == WORKER_LEAVING) &&
              !w->shutdown_sent && (w->identity != NULL || w->stream != NULL))
            {
              w->shutdown_sent = TRUE;
              w->state = WORKER_LEAVING;
              send_to (self, w, FIBER_MESSAGE_SHUTDOWN, g_variant_new ("()"));
            }
        }
    }

  if (self->workers->len == 0)
    self->exit_loop = TRUE;
}

static void
rebuild_pollitems (FiberDispatcher *self)
{
  zmq_pollitem_t item = { 0 };

  g_array_set_size (self->pollitems, 0);
  g_ptr_array_set_size (self->poll_workers, 0);
  g_ptr_array_set_size (self->poll_streams, 0);
  g_ptr_array_set_size (self->poll_peers, 0);

  item.socket = self->router;
  item.fd = self->listen_fd;
  item.events = ZMQ_POLLIN;
  g_array_append_val (self->pollitems, item);

  item.socket = NULL;
  item.fd = self->wakefd;
  g_array_append_val (self->pollitems, item);

  for (guint i = 0; i < self->workers->len; i++)
    {
      Worker *w = g_ptr_array_index (self->workers, i);

      if (!w->poll_fd)
        continue;
      item.fd = w->fd;
      g_array_append_val (self->pollitems, item);
      g_ptr_array_add (self->poll_workers, w);
    }
  self->n_job_items = self->poll_workers->len;

  for (guint i = 0; i < self->workers->len; i++)
    {
      Worker *w = g_ptr_array_index (self->workers, i);

      if (w->stream == NULL)
        continue;
      item.fd = _fiber_wire_stream_get_fd (w->stream);
      g_array_append_val (self->pollitems, item);
      g_ptr_array_add (self->poll_streams, w);
    }
  for (guint i = 0; i < self->peers->len; i++)
    {
      Peer *peer = g_ptr_array_index (self->peers, i);

      item.fd = _fiber_wire_stream_get_fd (peer->stream);
      g_array_append_val (self->pollitems, item);
      g_ptr_array_add (self->poll_peers, peer);
    }
  self->poll_dirty = FALSE;
  self->ep_stale = TRUE;
}

/* The events the dispatcher thread waits for on the connection of @w: not
 * its input while a waiting caller reads it itself. */
static short
stream_events (Worker *w)
{
  return (short) ((w->claimed ? 0 : ZMQ_POLLIN) |
                  (_fiber_wire_stream_wants_write (w->stream) ? ZMQ_POLLOUT : 0));
}

static guint32
to_epoll (short events)
{
  return ((events & ZMQ_POLLIN) ? EPOLLIN : 0) | ((events & ZMQ_POLLOUT) ? EPOLLOUT : 0);
}

/* With state_lock held: makes the epoll set say what @items ask.  The set
 * is also changed by callers while the thread waits in it (claim_stream()),
 * so this runs under the lock; the wait itself does not. */
static void
sync_epoll (FiberDispatcher *self,
            zmq_pollitem_t  *items,
            guint            n)
{
  short *registered;

  if (self->router != NULL)
    return;
  if (self->ep_stale || self->epfd < 0)
    {
      if (self->epfd >= 0)
        close (self->epfd);
      self->epfd = epoll_create1 (EPOLL_CLOEXEC);
      g_array_set_size (self->ep_registered, n);
      for (guint i = 0; i < n; i++)
        g_array_index (self->ep_registered, short, i) = -1;
      self->ep_stale = FALSE;
    }
  registered = (short *) (void *) self->ep_registered->data;
  for (guint i = 0; i < n; i++)
    if (registered[i] != items[i].events)
      {
        struct epoll_event ev = { .events = to_epoll (items[i].events), .data.u32 = i };

        if (epoll_ctl (self->epfd, registered[i] < 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD,
                       items[i].fd, &ev) == 0)
          registered[i] = items[i].events;
      }
}

/* With state_lock held, from any thread: (un)claims the connection of @w
 * for a waiting caller, taking it out of (or back into) the set the
 * dispatcher thread may be waiting in right now. */
static void
claim_stream (FiberDispatcher *self,
              Worker          *w,
              gboolean         claimed)
{
  zmq_pollitem_t *items = (zmq_pollitem_t *) (void *) self->pollitems->data;

  w->claimed = claimed;
  if (self->router != NULL || self->ep_stale || self->epfd < 0 || self->poll_dirty)
    return;
  for (guint i = 0; i < self->poll_streams->len; i++)
    if (g_ptr_array_index (self->poll_streams, i) == w)
      {
        guint index = 2 + self->n_job_items + i;

        items[index].events = stream_events (w);
        sync_epoll (self, items, self->pollitems->len);
        break;
      }
}

/* zmq_poll() makes a non-blocking pass before it blocks: two system calls
 * per wakeup.  A local pool polls only plain fds, with one poll(). */
static int
poll_items (FiberDispatcher *self,
            zmq_pollitem_t  *items,
            guint            n,
            long             timeout)
{
  struct pollfd *pfds;
  int rc;

  if (self->router != NULL)
    return zmq_poll (items, (int) n, timeout);

  if (self->epfd >= 0)
    {
      struct epoll_event *evs;

      g_array_set_size (self->ep_events, MAX (n, 1));
      evs = (struct epoll_event *) (void *) self->ep_events->data;
      for (guint i = 0; i < n; i++)
        items[i].revents = 0;
      rc = epoll_wait (self->epfd, evs, (int) MAX (n, 1), (int) timeout);
      for (int k = 0; k < rc; k++)
        if (evs[k].data.u32 < n)
          items[evs[k].data.u32].revents =
            (short) (((evs[k].events & EPOLLIN) ? ZMQ_POLLIN : 0) |
                     ((evs[k].events & EPOLLOUT) ? ZMQ_POLLOUT : 0) |
                     ((evs[k].events & ~(guint32) (EPOLLIN | EPOLLOUT)) ? ZMQ_POLLERR : 0));
      return rc;
    }

  g_array_set_size (self->pollfds, n);
  pfds = (struct pollfd *) (void *) self->pollfds->data;
  for (guint i = 0; i < n; i++)
    {
      pfds[i].fd = items[i].fd;
      pfds[i].events = (short) (((items[i].events & ZMQ_POLLIN) ? POLLIN : 0) |
                                ((items[i].events & ZMQ_POLLOUT) ? POLLOUT : 0));
      pfds[i].revents = 0;
    }
  rc = poll (pfds, n, (int) timeout);
  for (guint i = 0; i < n; i++)
    items[i].revents = (short) (((pfds[i].revents & POLLIN) ? ZMQ_POLLIN : 0) |
                                ((pfds[i].revents & POLLOUT) ? ZMQ_POLLOUT : 0) |
                                ((pfds[i].revents & ~(POLLIN | POLLOUT)) ? ZMQ_POLLERR : 0));
  return rc;
}

static gboolean
needs_refresh_polling (FiberDispatcher *self)
{
  for (guint i = 0; i < self->workers->len; i++)
    if (!((Worker *) g_ptr_array_index (self->workers, i))->poll_fd)
      return TRUE;
  return FALSE;
}

static gboolean
has_ended_workers (FiberDispatcher *self)
{
  for (guint i = 0; i < self->workers->len; i++)
    if (((Worker *) g_ptr_array_index (self->workers, i))->ended_at != 0)
      return TRUE;
  return FALSE;
}

static gpointer
dispatcher_thread (gpointer data)
{
  FiberDispatcher *self = data;
  g_autoptr(GPtrArray) ended = g_ptr_array_new ();

  self->next_tick = g_get_monotonic_time () + (gint64) self->heartbeat_ms * 1000;

  g_mutex_lock (&self->state_lock);
  while (!self->exit_loop)
    {
      zmq_pollitem_t *items;
      gint64 now;
      long timeout;
      int rc;

      if (self->poll_dirty)
        rebuild_pollitems (self);

      now = g_get_monotonic_time ();
      timeout = (long) MAX (0, (self->next_tick - now + 999) / 1000);
      if ((self->terminating || self->closing) && needs_refresh_polling (self))
        timeout = MIN (timeout, 50);
      if (has_ended_workers (self))
        timeout = MIN (timeout, 5);

      items = (zmq_pollitem_t *) (void *) self->pollitems->data;
      for (guint i = 0; i < self->poll_streams->len; i++)
        {
          Worker *w = g_ptr_array_index (self->poll_streams, i);

          items[2 + self->n_job_items + i].events = stream_events (w);
        }
      sync_epoll (self, items, self->pollitems->len);
      g_mutex_unlock (&self->state_lock);
      rc = poll_items (self, items, self->pollitems->len, timeout);
      g_mutex_lock (&self->state_lock);
      if (rc < 0)
        {
          if (errno == EINTR)
            continue;
          g_critical ("zmq_poll failed in the pool dispatcher: %s", zmq_strerror (errno));
          begin_terminate (self);
          g_usleep (10000);
        }

      if (rc > 0 && (items[1].revents & ZMQ_POLLIN))
        {
          guint64 value;
          ssize_t r G_GNUC_UNUSED = read (self->wakefd, &value, sizeof value);
        }
      process_commands (self);

      if (rc > 0 && (items[0].revents & ZMQ_POLLIN))
        {
          if (self->router != NULL)
            receive_messages (self);
          else
            accept_peers (self);
        }

      if (rc > 0)
        {
          guint first_stream = 2 + self->n_job_items;
          guint first_peer = first_stream + self->poll_streams->len;

          /* Workers are only freed below (job ended), peers only here. */
          for (guint i = 0; i < self->poll_streams->len; i++)
            {
              Worker *w = g_ptr_array_index (self->poll_streams, i);
              short revents = items[first_stream + i].revents;

              if (w->stream != NULL && (revents & ZMQ_POLLOUT) &&
                  !_fiber_wire_stream_flush (w->stream))
                revents |= ZMQ_POLLERR;
              if (w->stream != NULL && (revents & (ZMQ_POLLIN | ZMQ_POLLERR)))
                receive_from_stream (self, w);
            }
          g_ptr_array_set_size (ended, 0);
          for (guint i = first_peer; i < first_peer + self->poll_peers->len; i++)
            if (items[i].revents != 0)
              g_ptr_array_add (ended, g_ptr_array_index (self->poll_peers, i - first_peer));
          for (guint i = 0; i < ended->len; i++)
            receive_from_peer (self, g_ptr_array_index (ended, i));

          g_ptr_array_set_size (ended, 0);
          for (guint i = 2; i < first_stream; i++)
            if (items[i].revents != 0)
              g_ptr_array_add (ended, g_ptr_array_index (self->poll_workers, i - 2));
          for (guint i = 0; i < ended->len; i++)
            worker_check_ended (self, g_ptr_array_index (ended, i));
        }
      if (has_ended_workers (self))
        {
          /* Workers whose last messages were awaited (this may free them). */
          g_ptr_array_set_size (ended, 0);
          for (guint i = 0; i < self->workers->len; i++)
            {
              Worker *w = g_ptr_array_index (self->workers, i);

              if (w->ended_at != 0)
                g_ptr_array_add (ended, w);
            }
          for (guint i = 0; i < ended->len; i++)
            worker_check_ended (self, g_ptr_array_index (ended, i));
        }

      now = g_get_monotonic_time ();
      if (now >= self->next_tick ||
          ((self->terminating || self->closing) && needs_refresh_polling (self)))
        {
          tick (self, now);
          if (now >= self->next_tick)
            self->next_tick = now + (gint64) self->heartbeat_ms * 1000;
        }

      maintain_workers (self);
      dispatch (self);
      check_finished (self);
    }

  /* Nothing more is accepted; settle whatever raced with the end. */
  g_mutex_lock (&self->lock);
  self->stopped = TRUE;
  g_mutex_unlock (&self->lock);
  self->terminating = FALSE;
  process_commands (self);
  begin_terminate (self);

  g_ptr_array_set_size (self->peers, 0);
  if (self->listen_fd >= 0)
    close (self->listen_fd);
  self->listen_fd = -1;
  if (self->router != NULL)
    zmq_close (self->router);
  self->router = NULL;
  if (self->zctx != NULL)
    zmq_ctx_term (self->zctx);
  self->zctx = NULL;
  if (self->socket_path != NULL)
    g_unlink (self->socket_path);
  if (self->runtime_dir != NULL)
    g_rmdir (self->runtime_dir);

  g_mutex_lock (&self->lock);
  self->finished = TRUE;
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
  g_mutex_unlock (&self->state_lock);

  _fiber_dispatcher_unref (self);
  return NULL;
}

/* ------------------------------------------------------------------ */
/* Setup                                                               */

/* Local workers connect to a unix stream socket in a private 0700
 * directory (and still prove the authkey in their HELLO). */
static gboolean
bind_local (FiberDispatcher  *self,
            GError          **error)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };

  self->runtime_dir = g_dir_make_tmp ("fiber-pool-XXXXXX", error);
  if (self->runtime_dir == NULL)
    return FALSE;
  self->socket_path = g_build_filename (self->runtime_dir, "pool.sock", NULL);
  if (strlen (self->socket_path) >= sizeof addr.sun_path)
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_FAILED,
                   "the socket path %s is too long (set TMPDIR to a shorter directory)",
                   self->socket_path);
      g_clear_pointer (&self->socket_path, g_free);
      return FALSE;
    }
  strcpy (addr.sun_path, self->socket_path);
  self->endpoint = g_strconcat (FIBER_WIRE_UNIX_PREFIX, self->socket_path, NULL);
  self->listen_fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (self->listen_fd < 0 ||
      bind (self->listen_fd, (struct sockaddr *) &addr, sizeof addr) != 0 ||
      listen (self->listen_fd, SOMAXCONN) != 0)
    {
      int errsv = errno;

      g_set_error (error, FIBER_ERROR, FIBER_ERROR_FAILED,
                   "cannot listen on %s: %s", self->socket_path, g_strerror (errsv));
      return FALSE;
    }
  return TRUE;
}

static gboolean
bind_endpoint (FiberDispatcher  *self,
               GError          **error)
{
  char last[256];
  size_t last_size = sizeof last;
  int zero = 0;
  int one = 1;

  if (!self->remote && !self->local_zmq)
    return bind_local (self, error);

  self->zctx = zmq_ctx_new ();
  if (self->zctx == NULL)
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_FAILED,
                   "cannot create a ZeroMQ context: %s", zmq_strerror (errno));
      return FALSE;
    }
  zmq_ctx_set (self->zctx, ZMQ_BLOCKY, 0);
  self->router = zmq_socket (self->zctx, ZMQ_ROUTER);
  zmq_setsockopt (self->router, ZMQ_LINGER, &zero, sizeof zero);
  zmq_setsockopt (self->router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
  zmq_setsockopt (self->router, ZMQ_SNDHWM, &zero, sizeof zero);

  if (self->remote)
    {
      g_autofree char *address = NULL;
      g_autofree char *spec = NULL;

      if (!_fiber_auth_curve_keypair (&self->curve_public, &self->curve_secret, error))
        return FALSE;
      address = fiber_backend_get_listen_address (self->backend, error);
      if (address == NULL)
        return FALSE;
      zmq_setsockopt (self->router, ZMQ_CURVE_SERVER, &one, sizeof one);
      zmq_setsockopt (self->router, ZMQ_CURVE_SECRETKEY, self->curve_secret,
                      strlen (self->curve_secret));
      spec = strchr (address, ':') != NULL
             ? g_strdup_printf ("tcp://[%s]:*", address)
             : g_strdup_printf ("tcp://%s:*", address);
      if (strchr (address, ':') != NULL)
        zmq_setsockopt (self->router, ZMQ_IPV6, &one, sizeof one);
      if (zmq_bind (self->router, spec) != 0)
        {
          g_set_error (error, FIBER_ERROR, FIBER_ERROR_FAILED,
                       "cannot listen on %s: %s", spec, zmq_strerror (errno));
          return FALSE;
        }
      if (zmq_getsockopt (self->router, ZMQ_LAST_ENDPOINT, last, &last_size) != 0)
        {
          g_set_error (error, FIBER_ERROR, FIBER_ERROR_FAILED,
                       "cannot read the endpoint: %s", zmq_strerror (errno));
          return FALSE;
        }
      self->endpoint = g_strndup (last, last_size);
      return TRUE;
    }

  /* Local workers over ZeroMQ: ipc:// in a private 0700 directory, the
   * same HELLO proof, no CURVE. */
  self->runtime_dir = g_dir_make_tmp ("fiber-pool-XXXXXX", error);
  if (self->runtime_dir == NULL)
    return FALSE;
  self->socket_path = g_build_filename (self->runtime_dir, "pool.ipc", NULL);
  self->endpoint = g_strconcat ("ipc://", self->socket_path, NULL);
  if (zmq_bind (self->router, self->endpoint) != 0)
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_FAILED,
                   "cannot listen on %s: %s (set TMPDIR to a shorter directory if "
                   "the path is too long)", self->endpoint, zmq_strerror (errno));
      return FALSE;
    }
  return TRUE;
}

FiberDispatcher *
_fiber_dispatcher_new (const FiberDispatcherConfig  *config,
                       GError                      **error)
{
  g_autoptr(FiberDispatcher) self = NULL;
  const guint8 *key;
  gsize key_size;

  g_return_val_if_fail (config != NULL, NULL);
  g_return_val_if_fail (FIBER_IS_BACKEND (config->backend), NULL);
  g_return_val_if_fail (config->worker_argv != NULL && config->worker_argv[0] != NULL, NULL);
  g_return_val_if_fail (config->authkey != NULL, NULL);
  g_return_val_if_fail (config->processes > 0, NULL);

  self = g_new0 (FiberDispatcher, 1);
  g_atomic_ref_count_init (&self->ref);
  g_mutex_init (&self->lock);
  g_mutex_init (&self->state_lock);
  g_cond_init (&self->cond);
  self->wakefd = -1;
  self->listen_fd = -1;
  self->backend = g_object_ref (config->backend);
  self->worker_argv = g_strdupv ((char **) config->worker_argv);
  if (config->task_modules != NULL && config->task_modules[0] != NULL)
    self->task_modules = g_strjoinv (":", (char **) config->task_modules);
  self->authkey = g_bytes_ref (config->authkey);
  key = g_bytes_get_data (self->authkey, &key_size);
  self->authkey_hex = _fiber_auth_hex_encode (key, key_size);
  self->name = g_strdup (config->name != NULL ? config->name : "FiberPoolWorker");
  self->daemon = config->daemon;
  self->processes = config->processes;
  if (config->initializer != NULL && *config->initializer != '\0')
    self->initializer = g_strdup (config->initializer);
  if (config->initargs != NULL)
    self->initargs = g_variant_ref_sink (config->initargs);
  self->maxtasksperchild = config->maxtasksperchild;
  self->resilient = config->resilient;
  self->max_retries = config->max_retries;
  self->heartbeat_ms = config->heartbeat_ms > 0 ? config->heartbeat_ms : FIBER_DEFAULT_HEARTBEAT_MS;
  self->remote = fiber_backend_is_remote (self->backend);
  self->local_zmq = !self->remote && config->local_zmq;

  self->pids = g_array_new (FALSE, FALSE, sizeof (gint64));
  self->workers = g_ptr_array_new ();
  self->by_identity = g_hash_table_new (g_bytes_hash, g_bytes_equal);
  self->by_id = g_hash_table_new (g_str_hash, g_str_equal);
  self->batches = g_hash_table_new_full (g_int64_hash, g_int64_equal, NULL,
                                         (GDestroyNotify) batch_state_free);
  g_queue_init (&self->queue);
  g_queue_init (&self->suspects);
  self->pollitems = g_array_new (FALSE, TRUE, sizeof (zmq_pollitem_t));
  self->pollfds = g_array_new (FALSE, TRUE, sizeof (struct pollfd));
  self->epfd = -1;
  self->ep_registered = g_array_new (FALSE, TRUE, sizeof (short));
  self->ep_events = g_array_new (FALSE, TRUE, sizeof (struct epoll_event));
  self->poll_workers = g_ptr_array_new ();
  self->poll_streams = g_ptr_array_new ();
  self->poll_peers = g_ptr_array_new ();
  self->peers = g_ptr_array_new_with_free_func ((GDestroyNotify) peer_free);
  self->poll_dirty = TRUE;

  if (!_fiber_auth_random_bytes (self->nonce, sizeof self->nonce, error))
    return NULL;
  self->nonce_hex = _fiber_auth_hex_encode (self->nonce, sizeof self->nonce);

  self->wakefd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (self->wakefd < 0)
    {
      int errsv = errno;
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_FAILED,
                   "cannot create an eventfd: %s", g_strerror (errsv));
      return NULL;
    }

  if (!bind_endpoint (self, error))
    return NULL;

  /* Start the first workers here, so that a worker command that cannot be
   * started is reported by the constructor. */
  for (guint i = 0; i < self->processes; i++)
    if (spawn_worker (self, error) == NULL)
      return NULL;

  /* The thread holds a reference until it ends. */
  _fiber_dispatcher_ref (self);
  self->thread = g_thread_try_new ("fiber-dispatch", dispatcher_thread, self, error);
  if (self->thread == NULL)
    {
      g_atomic_ref_count_dec (&self->ref);
      return NULL;
    }
  return g_steal_pointer (&self);
}

/* Only reached when the thread never ran or has ended; a dispatcher that
 * failed half-way through _fiber_dispatcher_new() is cleaned up here too. */
static void
dispatcher_free (FiberDispatcher *self)
{
  for (guint i = 0; i < self->workers->len; i++)
    {
      Worker *w = g_ptr_array_index (self->workers, i);

      fiber_backend_terminate_job (self->backend, w->job, TRUE, NULL);
      fiber_backend_wait_job (self->backend, w->job, 5000, NULL);
      worker_free (w);
    }
  g_ptr_array_unref (self->workers);
  if (self->router != NULL)
    zmq_close (self->router);
  if (self->zctx != NULL)
    zmq_ctx_term (self->zctx);
  if (self->listen_fd >= 0)
    close (self->listen_fd);
  if (self->socket_path != NULL)
    g_unlink (self->socket_path);
  if (self->runtime_dir != NULL)
    g_rmdir (self->runtime_dir);
  if (self->wakefd >= 0)
    close (self->wakefd);

  g_hash_table_unref (self->batches);
  g_hash_table_unref (self->by_identity);
  g_hash_table_unref (self->by_id);
  g_queue_clear_full (&self->queue, g_free);
  g_queue_clear_full (&self->suspects, g_free);
  g_array_unref (self->pollitems);
  g_array_unref (self->pollfds);
  g_array_unref (self->ep_registered);
  g_array_unref (self->ep_events);
  if (self->epfd >= 0)
    close (self->epfd);
  g_ptr_array_unref (self->poll_workers);
  g_ptr_array_unref (self->poll_streams);
  g_ptr_array_unref (self->poll_peers);
  g_ptr_array_unref (self->peers);
  g_array_unref (self->pids);
  g_clear_pointer (&self->thread, g_thread_unref);

  g_free (self->endpoint);
  g_free (self->socket_path);
  g_free (self->runtime_dir);
  g_free (self->nonce_hex);
  g_free (self->curve_public);
  _fiber_auth_free_secret (self->curve_secret);
  g_clear_pointer (&self->initargs, g_variant_unref);
  g_free (self->initializer);
  g_free (self->name);
  g_free (self->authkey_hex);
  g_bytes_unref (self->authkey);
  g_free (self->task_modules);
  g_strfreev (self->worker_argv);
  g_object_unref (self->backend);
  g_mutex_clear (&self->lock);
  g_mutex_clear (&self->state_lock);
  g_cond_clear (&self->cond);
  g_free (self);
}

FiberDispatcher *
_fiber_dispatcher_ref (FiberDispatcher *self)
{
  g_atomic_ref_count_inc (&self->ref);
  return self;
}

void
_fiber_dispatcher_unref (FiberDispatcher *self)
{
  if (g_atomic_ref_count_dec (&self->ref))
    dispatcher_free (self);
}

/* A call sent by the calling thread to one worker (submit_directly()). */
typedef struct
{
  FiberDispatcher *self;
  guint            serial;   /* of the worker holding the item */
} Pump;

static void
pump_free (gpointer data)
{
  Pump *pump = data;

  _fiber_dispatcher_unref (pump->self);
  g_free (pump);
}

static Worker *
find_worker (FiberDispatcher *self,
             guint            serial)
{
  for (guint i = 0; i < self->workers->len; i++)
    {
      Worker *w = g_ptr_array_index (self->workers, i);

      if (w->serial == serial)
        return w;
    }
  return NULL;
}

static void
wake_thread (FiberDispatcher *self)
{
  guint64 one = 1;
  ssize_t r;

  do
    r = write (self->wakefd, &one, sizeof one);
  while (r < 0 && errno == EINTR);
}

static void pump_wait (FiberDispatcher  *self,
                       Pump             *pump,
                       FiberApplyResult *result,
                       int               wake_fd);

/* Runs in the thread that waits for @result (see
 * _fiber_apply_result_set_pump()): it receives from the worker holding the
 * item itself, so the result reaches the caller without a hand-over from
 * the dispatcher thread (which may wake for the same bytes and then find
 * them taken).  Whoever reads the RESULT completes the item; the result
 * then writes @wake_fd.  Gives up when the worker is gone or no longer
 * holds work: the dispatcher thread then settles the item as usual. */
static void
pump_result (FiberApplyResult *result,
             int               wake_fd,
             gpointer          data)
{
  Pump *pump = data;
  FiberDispatcher *self = pump->self;
  Worker *w;

  /* The dispatcher thread stops watching the worker's input meanwhile:
   * it would only wake for bytes this thread takes. */
  g_mutex_lock (&self->state_lock);
  w = find_worker (self, pump->serial);
  if (w != NULL && w->stream != NULL)
    claim_stream (self, w, TRUE);
  g_mutex_unlock (&self->state_lock);

  pump_wait (self, pump, result, wake_fd);

  g_mutex_lock (&self->state_lock);
  w = find_worker (self, pump->serial);
  if (w != NULL && w->claimed)
    claim_stream (self, w, FALSE);
  g_mutex_unlock (&self->state_lock);
}

static void
pump_wait (FiberDispatcher  *self,
           Pump             *pump,
           FiberApplyResult *result,
           int               wake_fd)
{
  while (!fiber_apply_result_ready (result))
    {
      struct pollfd pfds[2] = {
        { .fd = -1, .events = POLLIN },
        { .fd = wake_fd, .events = POLLIN },
      };
      Worker *w;
      int fd;

      g_mutex_lock (&self->state_lock);
      w = find_worker (self, pump->serial);
      if (w == NULL || w->stream == NULL || w->n_inflight == 0 || self->exit_loop)
        {
          g_mutex_unlock (&self->state_lock);
          return;
        }
      fd = pfds[0].fd = _fiber_wire_stream_get_fd (w->stream);
      g_mutex_unlock (&self->state_lock);

      if (poll (pfds, 2, -1) < 0 && errno != EINTR)
        return;
      if (pfds[0].revents == 0)
        continue;

      g_mutex_lock (&self->state_lock);
      w = find_worker (self, pump->serial);
      if (w != NULL && w->stream != NULL && _fiber_wire_stream_get_fd (w->stream) == fd)
        {
          receive_from_stream (self, w);
          dispatch (self);
          if (has_queued_work (self))
            wake_thread (self);
        }
      g_mutex_unlock (&self->state_lock);
    }
}

/* The calling thread dispatches @batch itself when the dispatcher thread
 * waits in poll() and no command is queued ahead: the work then reaches a
 * local worker without first waking the dispatcher thread (one thread
 * switch less on every synchronous call).  The thread is woken only when
 * something is left for it (work that could not go out at once, bytes
 * the socket did not take). */
static gboolean
submit_directly (FiberDispatcher *self,
                 FiberBatch      *batch)
{
  gboolean done = FALSE;

  /* Not with a ZeroMQ socket, which only the dispatcher thread uses. */
  if (self->router != NULL || !g_mutex_trylock (&self->state_lock))
    return FALSE;

  if (!self->stopped && !self->terminating && !self->closing && !self->exit_loop &&
      g_atomic_pointer_get (&self->commands) == NULL)
    {
      gboolean wake = FALSE;

      Worker *holder = NULL;

      accept_batch (self, fiber_batch_ref (batch));
      dispatch (self);
      wake = has_queued_work (self);
      for (guint i = 0; i < self->workers->len; i++)
        {
          Worker *w = g_ptr_array_index (self->workers, i);

          if (w->stream != NULL && _fiber_wire_stream_wants_write (w->stream))
            wake = TRUE;
          else if (w->stream != NULL && w->n_inflight > 0 &&
                   ring_nth (w, w->n_inflight - 1)->bs->batch == batch)
            holder = w;
        }
      if (wake)
        wake_thread (self);
      else if (holder != NULL && fiber_batch_get_n_items (batch) == 1)
        {
          /* The one item went out whole: whoever waits for it may take
           * the result from that worker directly. */
          Pump *pump = g_new0 (Pump, 1);

          pump->self = _fiber_dispatcher_ref (self);
          pump->serial = holder->serial;
          _fiber_apply_result_set_pump (_fiber_batch_get_result (batch), pump_result,
                                        pump, pump_free);
        }
      done = TRUE;
    }
  g_mutex_unlock (&self->state_lock);
  return done;
}

gboolean
_fiber_dispatcher_submit (FiberDispatcher  *self,
                          FiberBatch       *batch,
                          GError          **error)
{
  if (submit_directly (self, batch))
    return TRUE;
  if (!queue_command (self, COMMAND_SUBMIT, batch))
    {
      g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_CLOSED, "the pool has stopped");
      return FALSE;
    }
  return TRUE;
}

void
_fiber_dispatcher_close (FiberDispatcher *self)
{
  queue_command (self, COMMAND_CLOSE, NULL);
}

void
_fiber_dispatcher_terminate (FiberDispatcher *self)
{
  queue_command (self, COMMAND_TERMINATE, NULL);
}

void
_fiber_dispatcher_interrupt (FiberDispatcher *self)
{
  queue_command (self, COMMAND_INTERRUPT, NULL);
}

gboolean
_fiber_dispatcher_join (FiberDispatcher  *self,
                        int               timeout_msec,
                        GError          **error)
{
  gint64 deadline = timeout_msec < 0 ? -1
                    : g_get_monotonic_time () + (gint64) timeout_msec * 1000;
  GThread *thread;

  g_mutex_lock (&self->lock);
  if (self->thread != NULL && self->thread == g_thread_self ())
    {
      g_mutex_unlock (&self->lock);
      g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_STATE,
                           "a pool cannot be joined from its own dispatcher thread");
      return FALSE;
    }
  while (!self->finished)
    {
      if (deadline < 0)
        g_cond_wait (&self->cond, &self->lock);
      else if (!g_cond_wait_until (&self->cond, &self->lock, deadline) && !self->finished)
        {
          g_mutex_unlock (&self->lock);
          g_set_error (error, FIBER_ERROR, FIBER_ERROR_TIMEOUT,
                       "the pool's workers did not exit within %d ms", timeout_msec);
          return FALSE;
        }
    }
  thread = g_steal_pointer (&self->thread);
  g_mutex_unlock (&self->lock);

  if (thread != NULL)
    {
      if (thread != g_thread_self ())
        g_thread_join (thread);
      else
        g_thread_unref (thread);
    }
  return TRUE;
}

const char *
_fiber_dispatcher_get_endpoint (FiberDispatcher *self)
{
  return self->endpoint;
}

GArray *
_fiber_dispatcher_list_pids (FiberDispatcher *self)
{
  GArray *copy;

  g_mutex_lock (&self->lock);
  copy = g_array_copy (self->pids);
  g_mutex_unlock (&self->lock);
  return copy;
}

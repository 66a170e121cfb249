/* test-pool-badinput.c — bad input to the process pools: unknown tasks,
 * arguments of the wrong shape, and hostile peers on the pool's ROUTER
 * socket (garbage, truncated frames, a wrong authkey).  The pool answers
 * each with an error or ignores it, never hangs, and keeps working.
 *
 * Internal API: the pool's endpoint and worker pids, the message codec
 * and the HELLO proof.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "fiber.h"
#include "fiber-auth.h"
#include "fiber-init-private.h"
#include "fiber-message.h"
#include "fiber-process-pool-private.h"
#include "fiber-worker-private.h"
#include "fiber-test-util.h"
#include "pool-test-util.h"

/* In a worker of the wrong-authkey test: the file the first worker claims
 * to play a peer that does not know the authkey. */
#define ENV_FAKE_MARKER "FIBER_TEST_FAKE_WORKER_MARKER"

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

/* The pool still computes the right thing. */
static void
assert_pool_works (FiberPool *pool)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) results = NULL;

  results = fiber_pool_map (pool, "fiber.echo", g_variant_new_parsed ("[1, 2, 3, 4, 5]"), 1, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_equal (results, g_variant_new_parsed ("[<1>, <2>, <3>, <4>, <5>]")));
}

static GArray *
worker_pids (FiberPool *pool)
{
  return _fiber_process_pool_list_worker_pids (FIBER_PROCESS_POOL (pool));
}

static gboolean
same_pids (GArray *a,
           GArray *b)
{
  if (a->len != b->len)
    return FALSE;
  for (guint i = 0; i < a->len; i++)
    if (g_array_index (a, gint64, i) != g_array_index (b, gint64, i))
      return FALSE;
  return TRUE;
}

/* Local pools talk over a unix stream socket: each frame is a 4-byte
 * little-endian length and the message bytes. */
static int
unix_connect (const char *endpoint)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  const char *path;
  int fd;

  g_assert_true (g_str_has_prefix (endpoint, FIBER_WIRE_UNIX_PREFIX));
  path = endpoint + strlen (FIBER_WIRE_UNIX_PREFIX);
  g_assert_cmpuint (strlen (path), <, sizeof addr.sun_path);
  strcpy (addr.sun_path, path);
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (connect (fd, (struct sockaddr *) &addr, sizeof addr), ==, 0);
  return fd;
}

/* Writes what the pool accepts; FALSE once it closed the connection. */
static gboolean
write_all (int         fd,
           const void *data,
           gsize       size)
{
  const guint8 *p = data;

  while (size > 0)
    {
      gssize n = send (fd, p, size, MSG_NOSIGNAL);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      p += n;
      size -= (gsize) n;
    }
  return TRUE;
}

static gboolean
send_frame (int         fd,
            const void *data,
            gsize       size)
{
  guint32 len = GUINT32_TO_LE ((guint32) size);

  return write_all (fd, &len, sizeof len) && write_all (fd, data, size);
}

static gboolean
send_message (int               fd,
              FiberMessageType  type,
              GVariant         *body)
{
  g_autoptr(GBytes) frame = _fiber_message_encode (type, body);

  g_assert_nonnull (frame);
  return send_frame (fd, g_bytes_get_data (frame, NULL), g_bytes_get_size (frame));
}

/* Reads exactly @size bytes within the deadline; FALSE at the end of the
 * stream or when time ran out. */
static gboolean
read_exact (int     fd,
            void   *buffer,
            gsize   size,
            gint64  deadline)
{
  guint8 *p = buffer;

  while (size > 0)
    {
      struct pollfd pfd = { .fd = fd, .events = POLLIN };
      gint64 left = (deadline - g_get_monotonic_time ()) / 1000;
      gssize n;

      if (left <= 0 || poll (&pfd, 1, (int) left) <= 0)
        return FALSE;
      n = read (fd, p, size);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      p += n;
      size -= (gsize) n;
    }
  return TRUE;
}

/* The next frame from the pool within @timeout_msec, or NULL. */
static GBytes *
recv_frame (int fd,
            int timeout_msec)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_msec * 1000;
  guint32 len;
  g_autofree guint8 *data = NULL;

  if (!read_exact (fd, &len, sizeof len, deadline))
    return NULL;
  len = GUINT32_FROM_LE (len);
  if (len == 0 || len > 1024 * 1024)
    return NULL;
  data = g_malloc (len);
  if (!read_exact (fd, data, len, deadline))
    return NULL;
  return g_bytes_new_take (g_steal_pointer (&data), len);
}

/* The pool closes the connection (without a word). */
static void
assert_dropped (int fd)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) POOL_TEST_GUARD_MSEC * 1000;
  char c;

  for (;;)
    {
      struct pollfd pfd = { .fd = fd, .events = POLLIN };
      gssize n;

      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      if (poll (&pfd, 1, 100) <= 0)
        continue;
      n = read (fd, &c, 1);
      if (n == 0 || (n < 0 && errno == ECONNRESET))
        break;
      /* nothing may come back but the end of the stream */
      g_assert_cmpint (n, <, 0);
    }
  close (fd);
}

/* ------------------------------------------------------------------------
 * The fake worker (runs in a worker process instead of the real runtime)
 * ------------------------------------------------------------------------ */

/* Says HELLO with a proof made from the wrong key, writes what the pool
 * answered to the marker, tries to talk on anyway, and exits. */
static int
fake_worker_main (const char *marker)
{
  const char *endpoint = g_getenv (FIBER_ENV_WORKER_ENDPOINT);
  const char *id = g_getenv (FIBER_ENV_WORKER_ID);
  g_autoptr(GBytes) nonce = _fiber_auth_hex_decode (g_getenv (FIBER_ENV_NONCE), NULL);
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GVariant) body = NULL;
  g_autoptr(GString) report = g_string_new (NULL);
  const char *wrong_key = "not the pool's authkey";
  guint8 proof[FIBER_AUTH_PROOF_SIZE];
  FiberMessageType type;
  g_autofree char *tmp = g_strconcat (marker, ".tmp", NULL);
  int fd;

  if (endpoint == NULL || id == NULL || nonce == NULL)
    return 3;
  fd = unix_connect (endpoint);

  _fiber_auth_compute_proof ((const guint8 *) wrong_key, strlen (wrong_key),
                             g_bytes_get_data (nonce, NULL), g_bytes_get_size (nonce),
                             id, proof);
  send_message (fd, FIBER_MESSAGE_HELLO,
                g_variant_new ("(sxs@ay)", id, (gint64) getpid (), "fake",
                               g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, proof,
                                                          sizeof proof, 1)));

  reply = recv_frame (fd, POOL_TEST_GUARD_MSEC);
  if (reply == NULL)
    g_string_append (report, "no answer");
  else if (!_fiber_message_decode (reply, &type, &body, NULL))
    g_string_append (report, "undecodable answer");
  else if (type == FIBER_MESSAGE_REJECT)
    {
      const char *reason;

      g_variant_get (body, "(&s)", &reason);
      g_string_append_printf (report, "REJECT %s", reason);
    }
  else
    g_string_append_printf (report, "answer '%c'", type);

  /* A rejected peer is not listened to: offering credits gets it no work,
   * the pool has hung up. */
  send_message (fd, FIBER_MESSAGE_READY, g_variant_new ("(u)", 100));
  g_clear_pointer (&reply, g_bytes_unref);
  reply = recv_frame (fd, 300);
  if (reply != NULL)
    g_string_append (report, " + unexpected message");

  close (fd);
  if (g_file_set_contents (tmp, report->str, -1, NULL))
    g_rename (tmp, marker);
  return 0;
}

/* ------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------ */

static void
test_unknown_task (gconstpointer data)
{
  FiberPool *pool = pool_test_new (data, 2);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autoptr(FiberApplyResult) ar = NULL;
  g_autoptr(FiberMapResult) mr = NULL;
  guint index;

  result = fiber_pool_apply (pool, "no.such.task", NULL, &error);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_UNKNOWN_TASK);
  g_assert_nonnull (strstr (error->message, "no.such.task"));
  g_assert_null (result);
  g_clear_error (&error);

  result = fiber_pool_map (pool, "no.such.task", g_variant_new_parsed ("[1, 2, 3]"), 1, &error);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_UNKNOWN_TASK);
  g_clear_error (&error);

  ar = fiber_pool_apply_async (pool, "", NULL, NULL, NULL, NULL);
  result = fiber_apply_result_get (ar, POOL_TEST_GUARD_MSEC, &error);
  g_assert_nonnull (error);
  g_assert_true (error->domain == FIBER_ERROR);
  g_assert_true (error->code == FIBER_ERROR_UNKNOWN_TASK ||
                 error->code == FIBER_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  /* A name that cannot travel (not UTF-8) is refused up front. */
  result = fiber_pool_apply (pool, "bad\xff\xfename", NULL, &error);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_assert_null (result);
  g_clear_error (&error);
  result = fiber_pool_map (pool, "bad\xffname", g_variant_new_parsed ("[1]"), 1, &error);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  /* imap: every item fails on its own, then the iteration ends. */
  mr = fiber_pool_imap (pool, "no.such.task", g_variant_new_parsed ("[1, 2, 3]"), 1, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < 3; i++)
    {
      g_assert_false (fiber_map_result_next (mr, POOL_TEST_GUARD_MSEC, &index, NULL, &error));
      g_assert_error (error, FIBER_ERROR, FIBER_ERROR_UNKNOWN_TASK);
      g_assert_cmpuint (index, ==, i);
      g_clear_error (&error);
    }
  g_assert_false (fiber_map_result_next (mr, POOL_TEST_GUARD_MSEC, &index, NULL, &error));
  g_assert_no_error (error);

  /* Wrong arguments to a real task. */
  result = fiber_pool_apply (pool, "fiber.sleep", g_variant_new ("(s)", "long"), &error);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  assert_pool_works (pool);
  pool_test_finish (pool);
  fiber_test_assert_no_leaks (2000);
}

static void
test_bad_iterables (gconstpointer data)
{
  FiberPool *pool = pool_test_new (data, 1);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autoptr(FiberMapResult) mr = NULL;
  const char *not_iterables[] = { "'a string'", "42", "(1, 2)", "<[1]>" };

  /* starmap needs tuples */
  result = fiber_pool_starmap (pool, "fiber.echo", g_variant_new_parsed ("[1, 2, 3]"), 1, &error);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_assert_null (result);
  g_clear_error (&error);

  result = fiber_pool_starmap (pool, "fiber.echo", g_variant_new_parsed ("[<(1, 2)>, <3>]"), 1, &error);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  mr = fiber_pool_starmap_async (pool, "fiber.echo", g_variant_new_parsed ("['x', 'y']"), 1,
                                 NULL, NULL, NULL);
  g_assert_nonnull (mr);
  result = fiber_map_result_get (mr, POOL_TEST_GUARD_MSEC, &error);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  /* a tuple inside a variant is fine */
  result = fiber_pool_starmap (pool, "fiber.echo", g_variant_new_parsed ("[<(1, 2)>, <(3, 4)>]"), 1, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (result), ==, 2);
  g_clear_pointer (&result, g_variant_unref);

  /* map over something that is no array */
  for (guint i = 0; i < G_N_ELEMENTS (not_iterables); i++)
    {
      result = fiber_pool_map (pool, "fiber.echo", g_variant_new_parsed (not_iterables[i]), 1, &error);
      g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
      g_assert_null (result);
      g_clear_error (&error);
    }

  assert_pool_works (pool);
  pool_test_finish (pool);
  fiber_test_assert_no_leaks (2000);
}

/* Garbage and truncated frames on the pool's socket: the first message of
 * a connection must be a valid HELLO, anything else closes it. */
static void
test_garbage_frames (gconstpointer data)
{
  FiberPool *pool = pool_test_new (data, 2);
  const char *endpoint = _fiber_process_pool_get_endpoint (FIBER_PROCESS_POOL (pool));
  g_autoptr(GArray) before = NULL;
  g_autoptr(GArray) after = NULL;
  g_autoptr(GArray) idle = g_array_new (FALSE, FALSE, sizeof (int));
  g_autoptr(GBytes) hello = NULL;
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GVariant) body = NULL;
  g_autoptr(GRand) rand = g_rand_new_with_seed (1234);
  g_autofree guint8 *big = g_malloc (1024 * 1024);
  guint8 proof[FIBER_AUTH_PROOF_SIZE] = { 0 };
  FiberMessageType type;
  const char *reason;
  const guint8 *raw;
  gsize size;
  int fd;

  g_assert_nonnull (endpoint);
  assert_pool_works (pool);
  before = worker_pids (pool);
  g_assert_cmpuint (before->len, ==, 2);

  /* an empty frame, and lengths no frame may have */
  fd = unix_connect (endpoint);
  send_frame (fd, "", 0);
  assert_dropped (fd);
  fd = unix_connect (endpoint);
  write_all (fd, "\xff\xff\xff\xff", 4);
  assert_dropped (fd);

  /* not our protocol at all */
  fd = unix_connect (endpoint);
  write_all (fd, "GET / HTTP/1.0\r\n\r\n", 18);
  assert_dropped (fd);

  /* unknown type bytes, bare type bytes, random frames */
  for (guint i = 0; i < 60; i++)
    {
      guint8 buf[64];
      gsize n = (gsize) g_rand_int_range (rand, 1, sizeof buf);

      for (gsize k = 0; k < n; k++)
        buf[k] = (guint8) g_rand_int (rand);
      if (i < 4)
        {
          buf[0] = "ZHrR"[i];
          n = 1;
        }
      fd = unix_connect (endpoint);
      send_frame (fd, buf, n);
      assert_dropped (fd);
    }

  /* 1 MiB of noise behind a HELLO type byte */
  for (gsize k = 0; k < 1024 * 1024; k++)
    big[k] = (guint8) g_rand_int (rand);
  big[0] = FIBER_MESSAGE_HELLO;
  fd = unix_connect (endpoint);
  send_frame (fd, big, 1024 * 1024);
  assert_dropped (fd);

  /* every truncation of a well-formed HELLO */
  hello = _fiber_message_encode (FIBER_MESSAGE_HELLO,
                                 g_variant_new ("(sxs@ay)", "0123456789abcdef", (gint64) 1, "host",
                                                g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, proof,
                                                                           sizeof proof, 1)));
  raw = g_bytes_get_data (hello, &size);
  for (gsize cut = 1; cut < size; cut++)
    {
      fd = unix_connect (endpoint);
      send_frame (fd, raw, cut);
      assert_dropped (fd);
    }

  /* a frame that announces more than it brings, then hangs up */
  fd = unix_connect (endpoint);
  write_all (fd, "\x64\x00\x00\x00HELLO", 9);
  close (fd);

  /* well-formed messages that may not open a connection */
  fd = unix_connect (endpoint);
  send_message (fd, FIBER_MESSAGE_RESULT, g_variant_new_parsed ("[(@t 1, @u 0, true, <<42>>)]"));
  assert_dropped (fd);
  fd = unix_connect (endpoint);
  send_message (fd, FIBER_MESSAGE_READY, g_variant_new ("(u)", 1000));
  assert_dropped (fd);

  /* a READY body under a HELLO type byte */
  {
    g_autoptr(GBytes) wrong = _fiber_message_encode (FIBER_MESSAGE_READY, g_variant_new ("(u)", 5));
    g_autofree guint8 *copy = g_memdup2 (g_bytes_get_data (wrong, NULL), g_bytes_get_size (wrong));

    copy[0] = FIBER_MESSAGE_HELLO;
    fd = unix_connect (endpoint);
    send_frame (fd, copy, g_bytes_get_size (wrong));
    assert_dropped (fd);
  }

  /* A HELLO with an id the pool did not hand out: rejected, in words. */
  fd = unix_connect (endpoint);
  send_frame (fd, raw, size);
  reply = recv_frame (fd, POOL_TEST_GUARD_MSEC);
  g_assert_nonnull (reply);
  g_assert_true (_fiber_message_decode (reply, &type, &body, NULL));
  g_assert_cmpint (type, ==, FIBER_MESSAGE_REJECT);
  g_variant_get (body, "(&s)", &reason);
  g_assert_cmpstr (reason, ==, "unknown or already connected worker id");
  assert_dropped (fd);

  /* Connections that never say anything do not lock the pool up. */
  for (guint i = 0; i < 100; i++)
    {
      fd = unix_connect (endpoint);
      g_array_append_val (idle, fd);
    }
  assert_pool_works (pool);
  for (guint i = 0; i < idle->len; i++)
    close (g_array_index (idle, int, i));

  /* The same workers serve on. */
  assert_pool_works (pool);
  after = worker_pids (pool);
  g_assert_true (same_pids (before, after));

  pool_test_finish (pool);
  fiber_test_assert_no_leaks (2000);
}

/* A worker whose HELLO proof was made with the wrong key is rejected and
 * ignored; the pool replaces it and works. */
static void
test_wrong_authkey (gconstpointer data)
{
  g_autofree char *dir = g_dir_make_tmp ("fiber-badinput-XXXXXX", NULL);
  g_autofree char *marker = g_build_filename (dir, "fake", NULL);
  g_autofree char *claim = g_strconcat (marker, ".claimed", NULL);
  g_autofree char *report = NULL;
  gint64 deadline;
  FiberPool *pool;

  /* Workers inherit the environment: the first one to claim the marker
   * plays the impostor. */
  g_setenv (ENV_FAKE_MARKER, marker, TRUE);
  pool = pool_test_new (data, 2);

  assert_pool_works (pool);
  deadline = g_get_monotonic_time () + (gint64) POOL_TEST_GUARD_MSEC * 1000;
  while (!g_file_test (marker, G_FILE_TEST_EXISTS))
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_usleep (5000);
    }
  g_assert_true (g_file_get_contents (marker, &report, NULL, NULL));
  g_assert_cmpstr (report, ==, "REJECT authentication failed");

  /* Enough work for both workers, the impostor's replacement included. */
  for (int i = 0; i < 5; i++)
    assert_pool_works (pool);

  pool_test_finish (pool);
  g_unsetenv (ENV_FAKE_MARKER);
  g_unlink (marker);
  g_unlink (claim);
  g_rmdir (dir);
  fiber_test_assert_no_leaks (2000);
}

/* An initializer name that cannot travel is refused by the constructor. */
static void
test_bad_initializer (gconstpointer data)
{
  const char *type = data;
  g_autoptr(GError) error = NULL;
  GObject *object;

  object = g_initable_new (FIBER_TYPE_PROCESS_POOL, NULL, &error,
                           "pool-type", type, "processes", 1,
                           "daemon", g_str_equal (type, "process"),
                           "initializer", "init\xff", NULL);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_assert_null (object);
  g_clear_error (&error);

  /* Task modules travel as a ':'-separated list. */
  object = g_initable_new (FIBER_TYPE_PROCESS_POOL, NULL, &error,
                           "pool-type", type, "processes", 1,
                           "daemon", g_str_equal (type, "process"),
                           "task-modules", (const char * const []) { "/a:/b.so", NULL }, NULL);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_assert_null (object);

  fiber_test_assert_no_leaks (2000);
}

/* Worker commands that cannot serve: an error at once, or failed work
 * after a few attempts — never a hang. */
static void
test_bad_worker_command (gconstpointer data)
{
  const char *type = data;
  const char *missing[] = { "/nonexistent/fiber-worker", NULL };
  const char *quits[] = { "/bin/true", NULL };
  const char *empty[] = { "", NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  GObject *object;
  FiberPool *pool;

  object = g_initable_new (FIBER_TYPE_PROCESS_POOL, NULL, &error,
                           "pool-type", type, "processes", 1,
                           "daemon", g_str_equal (type, "process"),
                           "worker-command", missing, NULL);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_BACKEND);
  g_assert_nonnull (strstr (error->message, "/nonexistent/fiber-worker"));
  g_assert_null (object);
  g_clear_error (&error);

  object = g_initable_new (FIBER_TYPE_PROCESS_POOL, NULL, &error,
                           "pool-type", type, "processes", 1,
                           "daemon", g_str_equal (type, "process"),
                           "worker-command", empty, NULL);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_assert_null (object);
  g_clear_error (&error);

  /* Starts, but exits before it says HELLO. */
  object = g_initable_new (FIBER_TYPE_PROCESS_POOL, NULL, &error,
                           "pool-type", type, "processes", 2,
                           "daemon", g_str_equal (type, "process"),
                           "worker-command", quits, NULL);
  g_assert_no_error (error);
  pool = FIBER_POOL (object);
  result = fiber_pool_apply (pool, "fiber.noop", NULL, &error);
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_WORKER_LOST);
  g_assert_null (result);
  g_clear_error (&error);

  /* join() before close() is a usage error, not a hang. */
  g_assert_false (fiber_pool_join (pool, -1, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_STATE);
  g_clear_error (&error);

  pool_test_finish (pool);
  fiber_test_assert_no_leaks (2000);
}

/* FiberProcess takes the same care with a task name that cannot travel. */
static void
test_process_bad_task_name (void)
{
  g_autoptr(FiberProcess) p = fiber_process_new ("bad\xffname", NULL);
  g_autoptr(GError) error = NULL;

  g_assert_false (fiber_process_start (p, &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
  g_assert_false (fiber_process_is_alive (p));

  fiber_test_assert_no_leaks (2000);
}

static const PoolTestCase cases[] = {
  { "unknown-task", test_unknown_task },
  { "bad-iterables", test_bad_iterables },
  { "garbage-frames", test_garbage_frames },
  { "wrong-authkey", test_wrong_authkey },
  { "bad-worker-command", test_bad_worker_command },
  { "bad-initializer", test_bad_initializer },
};

int
main (int    argc,
      char **argv)
{
  g_autoptr(GError) error = NULL;
  const char *marker = g_getenv (ENV_FAKE_MARKER);
  int ret;

  if (marker != NULL && g_getenv (FIBER_ENV_WORKER_ENDPOINT) != NULL)
    {
      g_autofree char *claim = g_strconcat (marker, ".claimed", NULL);
      int fd = open (claim, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

      if (fd >= 0)
        {
          close (fd);
          return fake_worker_main (marker);
        }
    }

  if (!fiber_init (&argc, &argv, &error))
    g_error ("fiber_init: %s", error->message);
  fiber_test_init_environment ();
  g_test_init (&argc, &argv, NULL);

  pool_test_add_typed_cases ("pool-badinput", cases, G_N_ELEMENTS (cases));
  g_test_add_func ("/pool-badinput/process-object/bad-task-name", test_process_bad_task_name);

  ret = g_test_run ();
  fiber_test_cleanup_environment ();
  return ret;
}

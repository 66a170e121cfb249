/* test-auth.c — authentication helpers (plugin/wire/fiber-auth.c)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <string.h>
#include <zmq.h>

#include "fiber.h"
#include "fiber-auth.h"
#include "fiber-test-util.h"

static GBytes *
hex (const char *text)
{
  g_autoptr(GError) error = NULL;
  GBytes *bytes = _fiber_auth_hex_decode (text, &error);

  g_assert_no_error (error);
  g_assert_nonnull (bytes);
  return bytes;
}

static void
test_random (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) a = _fiber_auth_random (FIBER_AUTH_NONCE_SIZE, &error);
  g_autoptr(GBytes) b = NULL;
  g_autoptr(GBytes) empty = NULL;
  g_autofree guint8 *big = g_malloc0 (100000);
  gsize zeros = 0;

  g_assert_no_error (error);
  b = _fiber_auth_random (FIBER_AUTH_NONCE_SIZE, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_bytes_get_size (a), ==, FIBER_AUTH_NONCE_SIZE);
  g_assert_false (g_bytes_equal (a, b));

  empty = _fiber_auth_random (0, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_bytes_get_size (empty), ==, 0);

  /* more than one getrandom() call can deliver at once */
  g_assert_true (_fiber_auth_random_bytes (big, 100000, &error));
  g_assert_no_error (error);
  for (gsize i = 0; i < 100000; i++)
    zeros += big[i] == 0;
  g_assert_cmpuint (zeros, <, 1000);  /* ~390 expected */
  fiber_test_assert_no_leaks (2000);
}

static void
test_hex (void)
{
  static const guint8 data[] = { 0x00, 0x01, 0x7f, 0x80, 0xab, 0xff };
  static const char *garbage[] = {
    "0", "abc", "0g", "g0", "zz", " 00", "00 ", "0x00", "-1", "0\n", "é0",
  };
  g_autofree char *text = _fiber_auth_hex_encode (data, sizeof data);
  g_autofree char *none = _fiber_auth_hex_encode (NULL, 0);
  g_autoptr(GBytes) back = NULL;
  g_autoptr(GBytes) upper = NULL;
  g_autoptr(GBytes) empty = NULL;

  g_assert_cmpstr (text, ==, "00017f80abff");
  g_assert_cmpstr (none, ==, "");

  back = hex (text);
  g_assert_cmpmem (g_bytes_get_data (back, NULL), g_bytes_get_size (back),
                   data, sizeof data);
  upper = hex ("00017F80ABFF");
  g_assert_true (g_bytes_equal (back, upper));
  empty = hex ("");
  g_assert_cmpuint (g_bytes_get_size (empty), ==, 0);

  for (gsize i = 0; i < G_N_ELEMENTS (garbage); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GBytes) bytes = _fiber_auth_hex_decode (garbage[i], &error);

      g_assert_null (bytes);
      g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
    }
  fiber_test_assert_no_leaks (2000);
}

static void
test_equal (void)
{
  static const guint8 a[] = { 1, 2, 3, 4 };
  static const guint8 b[] = { 1, 2, 3, 5 };

  g_assert_true (_fiber_auth_equal (a, a, sizeof a));
  g_assert_false (_fiber_auth_equal (a, b, sizeof a));
  g_assert_true (_fiber_auth_equal (a, b, 3));
  g_assert_true (_fiber_auth_equal (NULL, NULL, 0));
  fiber_test_assert_no_leaks (2000);
}

/* RFC 4231 test cases for HMAC-SHA256.  The message is split into a
 * "nonce" and a "worker id" to check that the proof hashes exactly their
 * concatenation. */
static void
test_proof_known_answer (void)
{
  static const struct {
    const char *key_hex;
    const char *nonce;
    const char *worker_id;
    const char *hmac_hex;
  } cases[] = {
    /* RFC 4231 §4.2, test case 1 */
    { "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "Hi ", "There",
      "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7" },
    /* RFC 4231 §4.3, test case 2 (key "Jefe") */
    { "4a656665", "what do ya want ", "for nothing?",
      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" },
    { "4a656665", "", "what do ya want for nothing?",
      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" },
    /* RFC 4231 §4.7, test case 6 (key longer than a block) */
    { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaa",
      "Test Using Larger Than Block-Size Key ", "- Hash Key First",
      "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GBytes) key = hex (cases[i].key_hex);
      g_autoptr(GBytes) expected = hex (cases[i].hmac_hex);
      g_autoptr(GError) error = NULL;
      guint8 proof[FIBER_AUTH_PROOF_SIZE];
      gsize key_size;
      const guint8 *key_data = g_bytes_get_data (key, &key_size);

      _fiber_auth_compute_proof (key_data, key_size,
                                 (const guint8 *) cases[i].nonce,
                                 strlen (cases[i].nonce),
                                 cases[i].worker_id, proof);
      g_assert_cmpmem (proof, sizeof proof, g_bytes_get_data (expected, NULL),
                       g_bytes_get_size (expected));

      g_assert_true (_fiber_auth_verify_proof (key_data, key_size,
                                               (const guint8 *) cases[i].nonce,
                                               strlen (cases[i].nonce),
                                               cases[i].worker_id,
                                               proof, sizeof proof, &error));
      g_assert_no_error (error);
    }
  fiber_test_assert_no_leaks (2000);
}

static void
assert_verify_fails (const guint8 *key, gsize key_size,
                     const guint8 *nonce, gsize nonce_size,
                     const char *worker_id,
                     const guint8 *proof, gsize proof_size)
{
  g_autoptr(GError) error = NULL;

  g_assert_false (_fiber_auth_verify_proof (key, key_size, nonce, nonce_size,
                                            worker_id, proof, proof_size,
                                            &error));
  g_assert_error (error, FIBER_ERROR, FIBER_ERROR_AUTH);
}

static void
test_proof_rejects (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) key = _fiber_auth_random (FIBER_AUTH_KEY_SIZE, &error);
  g_autoptr(GBytes) other_key = _fiber_auth_random (FIBER_AUTH_KEY_SIZE, &error);
  g_autoptr(GBytes) nonce = _fiber_auth_random (FIBER_AUTH_NONCE_SIZE, &error);
  g_autoptr(GBytes) other_nonce = _fiber_auth_random (FIBER_AUTH_NONCE_SIZE, &error);
  const guint8 *k = g_bytes_get_data (key, NULL);
  const guint8 *k2 = g_bytes_get_data (other_key, NULL);
  const guint8 *n = g_bytes_get_data (nonce, NULL);
  const guint8 *n2 = g_bytes_get_data (other_nonce, NULL);
  guint8 proof[FIBER_AUTH_PROOF_SIZE];
  guint8 tampered[FIBER_AUTH_PROOF_SIZE];

  g_assert_no_error (error);
  _fiber_auth_compute_proof (k, FIBER_AUTH_KEY_SIZE, n, FIBER_AUTH_NONCE_SIZE,
                             "worker-1", proof);
  g_assert_true (_fiber_auth_verify_proof (k, FIBER_AUTH_KEY_SIZE, n,
                                           FIBER_AUTH_NONCE_SIZE, "worker-1",
                                           proof, sizeof proof, &error));
  g_assert_no_error (error);

  /* wrong key, nonce, worker id */
  assert_verify_fails (k2, FIBER_AUTH_KEY_SIZE, n, FIBER_AUTH_NONCE_SIZE,
                       "worker-1", proof, sizeof proof);
  assert_verify_fails (k, FIBER_AUTH_KEY_SIZE - 1, n, FIBER_AUTH_NONCE_SIZE,
                       "worker-1", proof, sizeof proof);
  assert_verify_fails (k, FIBER_AUTH_KEY_SIZE, n2, FIBER_AUTH_NONCE_SIZE,
                       "worker-1", proof, sizeof proof);
  assert_verify_fails (k, FIBER_AUTH_KEY_SIZE, n, FIBER_AUTH_NONCE_SIZE,
                       "worker-2", proof, sizeof proof);
  assert_verify_fails (k, FIBER_AUTH_KEY_SIZE, n, FIBER_AUTH_NONCE_SIZE,
                       "worker-1 ", proof, sizeof proof);

  /* a proof of the wrong size, or with any single bit flipped */
  assert_verify_fails (k, FIBER_AUTH_KEY_SIZE, n, FIBER_AUTH_NONCE_SIZE,
                       "worker-1", proof, sizeof proof - 1);
  assert_verify_fails (k, FIBER_AUTH_KEY_SIZE, n, FIBER_AUTH_NONCE_SIZE,
                       "worker-1", NULL, 0);
  for (gsize bit = 0; bit < 8 * sizeof proof; bit++)
    {
      memcpy (tampered, proof, sizeof proof);
      tampered[bit / 8] ^= 1u << (bit % 8);
      assert_verify_fails (k, FIBER_AUTH_KEY_SIZE, n, FIBER_AUTH_NONCE_SIZE,
                           "worker-1", tampered, sizeof tampered);
    }
  fiber_test_assert_no_leaks (2000);
}

static void
test_z85_validation (void)
{
  static const char *bad[] = {
    "",
    "0123456789012345678901234567890123456789X",   /* 41 */
    "012345678901234567890123456789012345678",     /* 39 */
    "01234567890123456789012345678901234567 9",    /* space */
    "01234567890123456789012345678901234567\"9",   /* not in Z85 */
    "########################################",    /* > 32 bits per group */
  };

  g_assert_false (_fiber_auth_z85_key_is_valid (NULL));
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *pub = NULL;

      g_assert_false (_fiber_auth_z85_key_is_valid (bad[i]));
      pub = _fiber_auth_curve_public_from_secret (bad[i], &error);
      g_assert_null (pub);
      g_assert_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT);
    }
  /* the ZeroMQ documentation's example server key */
  g_assert_true (_fiber_auth_z85_key_is_valid ("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"));
  fiber_test_assert_no_leaks (2000);
}

static void
test_curve_keypair (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *pub1 = NULL;
  g_autofree char *pub2 = NULL;
  g_autofree char *derived = NULL;
  char *sec1 = NULL;
  char *sec2 = NULL;

  if (!_fiber_auth_curve_supported ())
    {
      g_assert_false (_fiber_auth_curve_keypair (&pub1, &sec1, &error));
      g_assert_error (error, FIBER_ERROR, FIBER_ERROR_NOT_SUPPORTED);
      g_test_skip ("libzmq without CURVE");
      return;
    }

  g_assert_true (_fiber_auth_curve_keypair (&pub1, &sec1, &error));
  g_assert_no_error (error);
  g_assert_true (_fiber_auth_curve_keypair (&pub2, &sec2, &error));
  g_assert_no_error (error);

  g_assert_cmpuint (strlen (pub1), ==, FIBER_AUTH_Z85_KEY_LEN);
  g_assert_cmpuint (strlen (sec1), ==, FIBER_AUTH_Z85_KEY_LEN);
  g_assert_true (_fiber_auth_z85_key_is_valid (pub1));
  g_assert_true (_fiber_auth_z85_key_is_valid (sec1));
  g_assert_true (_fiber_auth_z85_key_is_valid (pub2));
  g_assert_true (_fiber_auth_z85_key_is_valid (sec2));
  g_assert_cmpstr (pub1, !=, pub2);
  g_assert_cmpstr (sec1, !=, sec2);
  g_assert_cmpstr (pub1, !=, sec1);

  derived = _fiber_auth_curve_public_from_secret (sec1, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (derived, ==, pub1);

  _fiber_auth_free_secret (sec1);
  _fiber_auth_free_secret (sec2);
  _fiber_auth_free_secret (NULL);
  fiber_test_assert_no_leaks (2000);
}

/* The generated keys work for a real CURVE handshake over loopback TCP. */
static void
test_curve_handshake (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *server_pub = NULL;
  g_autofree char *client_pub = NULL;
  char *server_sec = NULL;
  char *client_sec = NULL;
  char endpoint[256];
  size_t endpoint_len = sizeof endpoint;
  int as_server = 1;
  int timeout_ms = 30000;
  char buffer[16];
  void *ctx, *server, *client;

  if (!_fiber_auth_curve_supported ())
    {
      g_test_skip ("libzmq without CURVE");
      return;
    }

  g_assert_true (_fiber_auth_curve_keypair (&server_pub, &server_sec, &error));
  g_assert_true (_fiber_auth_curve_keypair (&client_pub, &client_sec, &error));
  g_assert_no_error (error);

  ctx = zmq_ctx_new ();
  server = zmq_socket (ctx, ZMQ_PAIR);
  client = zmq_socket (ctx, ZMQ_PAIR);
  g_assert_cmpint (zmq_setsockopt (server, ZMQ_CURVE_SERVER, &as_server, sizeof as_server), ==, 0);
  g_assert_cmpint (zmq_setsockopt (server, ZMQ_CURVE_SECRETKEY, server_sec, 40), ==, 0);
  g_assert_cmpint (zmq_setsockopt (server, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms), ==, 0);
  g_assert_cmpint (zmq_bind (server, "tcp://127.0.0.1:*"), ==, 0);
  g_assert_cmpint (zmq_getsockopt (server, ZMQ_LAST_ENDPOINT, endpoint, &endpoint_len), ==, 0);

  g_assert_cmpint (zmq_setsockopt (client, ZMQ_CURVE_SERVERKEY, server_pub, 40), ==, 0);
  g_assert_cmpint (zmq_setsockopt (client, ZMQ_CURVE_PUBLICKEY, client_pub, 40), ==, 0);
  g_assert_cmpint (zmq_setsockopt (client, ZMQ_CURVE_SECRETKEY, client_sec, 40), ==, 0);
  g_assert_cmpint (zmq_connect (client, endpoint), ==, 0);

  g_assert_cmpint (zmq_send (client, "hello", 5, 0), ==, 5);
  g_assert_cmpint (zmq_recv (server, buffer, sizeof buffer, 0), ==, 5);
  g_assert_cmpmem (buffer, 5, "hello", 5);

  zmq_close (client);
  zmq_close (server);
  zmq_ctx_term (ctx);
  _fiber_auth_free_secret (server_sec);
  _fiber_auth_free_secret (client_sec);
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

  g_test_add_func ("/auth/random", test_random);
  g_test_add_func ("/auth/hex", test_hex);
  g_test_add_func ("/auth/equal", test_equal);
  g_test_add_func ("/auth/proof/known-answer", test_proof_known_answer);
  g_test_add_func ("/auth/proof/rejects", test_proof_rejects);
  g_test_add_func ("/auth/curve/z85-validation", test_z85_validation);
  g_test_add_func ("/auth/curve/keypair", test_curve_keypair);
  g_test_add_func ("/auth/curve/handshake", test_curve_handshake);

  ret = g_test_run ();
  fiber_test_cleanup_environment ();
  return ret;
}

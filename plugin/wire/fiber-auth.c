/* fiber-auth.c — authentication helpers for the wire protocol
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "fiber-auth.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <zmq.h>

#include "fiber-error.h"

gboolean
_fiber_auth_random_bytes (void    *buffer,
                          gsize    size,
                          GError **error)
{
  guint8 *p = buffer;

  g_return_val_if_fail (buffer != NULL || size == 0, FALSE);

  /* getrandom() may return fewer bytes than asked for (more than 256 at a
   * time) or be interrupted by a signal. */
  while (size > 0)
    {
      ssize_t n = getrandom (p, size, 0);

      if (n < 0)
        {
          int saved_errno = errno;

          if (saved_errno == EINTR)
            continue;
          g_set_error (error, FIBER_ERROR, FIBER_ERROR_FAILED,
                       "Could not read random bytes: %s",
                       g_strerror (saved_errno));
          return FALSE;
        }
      p += n;
      size -= (gsize) n;
    }

  return TRUE;
}

GBytes *
_fiber_auth_random (gsize    size,
                    GError **error)
{
  g_autofree guint8 *buffer = g_malloc (MAX (size, 1));

  if (!_fiber_auth_random_bytes (buffer, size, error))
    return NULL;
  return g_bytes_new_take (g_steal_pointer (&buffer), size);
}

char *
_fiber_auth_hex_encode (const guint8 *data,
                        gsize         size)
{
  static const char digits[] = "0123456789abcdef";
  char *hex;

  g_return_val_if_fail (data != NULL || size == 0, NULL);

  hex = g_malloc (size * 2 + 1);
  for (gsize i = 0; i < size; i++)
    {
      hex[2 * i] = digits[data[i] >> 4];
      hex[2 * i + 1] = digits[data[i] & 0xf];
    }
  hex[size * 2] = '\0';
  return hex;
}

GBytes *
_fiber_auth_hex_decode (const char  *hex,
                        GError     **error)
{
  g_autofree guint8 *data = NULL;
  gsize len;

  g_return_val_if_fail (hex != NULL, NULL);

  len = strlen (hex);
  if (len % 2 != 0)
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                   "Invalid hex text: odd length %" G_GSIZE_FORMAT, len);
      return NULL;
    }

  data = g_malloc (MAX (len / 2, 1));
  for (gsize i = 0; i < len; i += 2)
    {
      int hi = g_ascii_xdigit_value (hex[i]);
      int lo = g_ascii_xdigit_value (hex[i + 1]);

      if (hi < 0 || lo < 0)
        {
          g_set_error (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                       "Invalid hex text: not a hex digit at offset %" G_GSIZE_FORMAT,
                       hi < 0 ? i : i + 1);
          return NULL;
        }
      data[i / 2] = (guint8) (hi << 4 | lo);
    }

  return g_bytes_new_take (g_steal_pointer (&data), len / 2);
}

gboolean
_fiber_auth_equal (const void *a,
                   const void *b,
                   gsize       size)
{
  const volatile guint8 *pa = a;
  const volatile guint8 *pb = b;
  guint8 diff = 0;

  g_return_val_if_fail (a != NULL || size == 0, FALSE);
  g_return_val_if_fail (b != NULL || size == 0, FALSE);

  /* No early exit: the time taken does not depend on where the buffers
   * differ. */
  for (gsize i = 0; i < size; i++)
    diff |= pa[i] ^ pb[i];

  return diff == 0;
}

void
_fiber_auth_compute_proof (const guint8 *authkey,
                           gsize         authkey_size,
                           const guint8 *nonce,
                           gsize         nonce_size,
                           const char   *worker_id,
                           guint8        proof[FIBER_AUTH_PROOF_SIZE])
{
  static const guint8 empty[1] = { 0 };
  g_autoptr(GHmac) hmac = NULL;
  gsize proof_size = FIBER_AUTH_PROOF_SIZE;

  g_return_if_fail (authkey != NULL || authkey_size == 0);
  g_return_if_fail (nonce != NULL || nonce_size == 0);
  g_return_if_fail (worker_id != NULL);
  g_return_if_fail (proof != NULL);

  hmac = g_hmac_new (G_CHECKSUM_SHA256, authkey != NULL ? authkey : empty,
                     authkey_size);
  if (nonce_size > 0)
    g_hmac_update (hmac, nonce, nonce_size);
  g_hmac_update (hmac, (const guchar *) worker_id, strlen (worker_id));
  g_hmac_get_digest (hmac, proof, &proof_size);
  g_assert (proof_size == FIBER_AUTH_PROOF_SIZE);
}

gboolean
_fiber_auth_verify_proof (const guint8  *authkey,
                          gsize          authkey_size,
                          const guint8  *nonce,
                          gsize          nonce_size,
                          const char    *worker_id,
                          const guint8  *proof,
                          gsize          proof_size,
                          GError       **error)
{
  guint8 expected[FIBER_AUTH_PROOF_SIZE];
  gboolean equal;

  g_return_val_if_fail (authkey != NULL || authkey_size == 0, FALSE);
  g_return_val_if_fail (nonce != NULL || nonce_size == 0, FALSE);
  g_return_val_if_fail (worker_id != NULL, FALSE);
  g_return_val_if_fail (proof != NULL || proof_size == 0, FALSE);

  /* The size is public (fixed by the protocol): no need to hide it. */
  if (proof_size != FIBER_AUTH_PROOF_SIZE)
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_AUTH,
                   "Worker “%s” failed authentication: proof of %" G_GSIZE_FORMAT
                   " bytes instead of %d", worker_id, proof_size,
                   FIBER_AUTH_PROOF_SIZE);
      return FALSE;
    }

  _fiber_auth_compute_proof (authkey, authkey_size, nonce, nonce_size,
                             worker_id, expected);
  equal = _fiber_auth_equal (expected, proof, FIBER_AUTH_PROOF_SIZE);
  explicit_bzero (expected, sizeof expected);

  if (!equal)
    {
      g_set_error (error, FIBER_ERROR, FIBER_ERROR_AUTH,
                   "Worker “%s” failed authentication: wrong authkey proof",
                   worker_id);
      return FALSE;
    }

  return TRUE;
}

gboolean
_fiber_auth_curve_supported (void)
{
  return zmq_has ("curve") != 0;
}

gboolean
_fiber_auth_curve_keypair (char   **public_key,
                           char   **secret_key,
                           GError **error)
{
  char public_z85[FIBER_AUTH_Z85_KEY_LEN + 1];
  char secret_z85[FIBER_AUTH_Z85_KEY_LEN + 1];

  g_return_val_if_fail (public_key != NULL, FALSE);
  g_return_val_if_fail (secret_key != NULL, FALSE);

  if (!_fiber_auth_curve_supported () ||
      zmq_curve_keypair (public_z85, secret_z85) != 0)
    {
      g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_NOT_SUPPORTED,
                           "The ZeroMQ library was built without CURVE "
                           "security: encrypted remote workers are not "
                           "available");
      return FALSE;
    }

  *public_key = g_strndup (public_z85, FIBER_AUTH_Z85_KEY_LEN);
  *secret_key = g_strndup (secret_z85, FIBER_AUTH_Z85_KEY_LEN);
  explicit_bzero (secret_z85, sizeof secret_z85);
  return TRUE;
}

gboolean
_fiber_auth_z85_key_is_valid (const char *key)
{
  static const char alphabet[] =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    ".-:+=^!/*?&<>()[]{}@%$#";
  guint8 decoded[32];
  gboolean valid;

  if (key == NULL || strlen (key) != FIBER_AUTH_Z85_KEY_LEN ||
      strspn (key, alphabet) != FIBER_AUTH_Z85_KEY_LEN)
    return FALSE;

  /* Also rejects groups of five characters worth more than 32 bits. */
  valid = zmq_z85_decode (decoded, key) != NULL;
  explicit_bzero (decoded, sizeof decoded);
  return valid;
}

char *
_fiber_auth_curve_public_from_secret (const char  *secret_key,
                                      GError     **error)
{
  char public_z85[FIBER_AUTH_Z85_KEY_LEN + 1];

  g_return_val_if_fail (secret_key != NULL, NULL);

  if (!_fiber_auth_z85_key_is_valid (secret_key))
    {
      g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_INVALID_ARGUMENT,
                           "Invalid CURVE secret key: expected 40 characters "
                           "of Z85 text");
      return NULL;
    }

  if (!_fiber_auth_curve_supported () ||
      zmq_curve_public (public_z85, secret_key) != 0)
    {
      g_set_error_literal (error, FIBER_ERROR, FIBER_ERROR_NOT_SUPPORTED,
                           "The ZeroMQ library was built without CURVE "
                           "security: encrypted remote workers are not "
                           "available");
      return NULL;
    }

  return g_strndup (public_z85, FIBER_AUTH_Z85_KEY_LEN);
}

void
_fiber_auth_free_secret (char *secret)
{
  if (secret == NULL)
    return;
  explicit_bzero (secret, strlen (secret));
  g_free (secret);
}

/* fiber-auth.h — authentication helpers for the wire protocol
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Internal API (not installed).  A worker proves it knows the pool's
 * authkey by sending, in its HELLO, HMAC-SHA256(authkey, nonce ‖ worker id)
 * where the nonce is the master's (fixed-size, random) and the worker id is
 * its UTF-8 bytes without the terminating nul.  Remote (tcp://) links are
 * additionally encrypted with ZeroMQ CURVE, whose keys travel as 40-char
 * Z85 strings.
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Size of a master nonce and of a generated authkey, in bytes. */
#define FIBER_AUTH_NONCE_SIZE   32
#define FIBER_AUTH_KEY_SIZE     32
/* Size of a HELLO proof (a SHA-256 HMAC), in bytes. */
#define FIBER_AUTH_PROOF_SIZE   32
/* Length of a CURVE key in Z85 text (without the nul). */
#define FIBER_AUTH_Z85_KEY_LEN  40

/* Fills @buffer with @size bytes from the kernel CSPRNG (getrandom(2)). */
gboolean  _fiber_auth_random_bytes  (void          *buffer,
                                     gsize          size,
                                     GError       **error);

/* @size fresh random bytes. */
GBytes   *_fiber_auth_random        (gsize          size,
                                     GError       **error);

/* Lower-case hex text of @data. */
char     *_fiber_auth_hex_encode    (const guint8  *data,
                                     gsize          size);

/* Parses hex text (either case, even length, nothing else); bad text is
 * FIBER_ERROR_INVALID_ARGUMENT. */
GBytes   *_fiber_auth_hex_decode    (const char    *hex,
                                     GError       **error);

/* Constant-time comparison of two buffers of @size bytes. */
gboolean  _fiber_auth_equal         (const void    *a,
                                     const void    *b,
                                     gsize          size);

/* Writes HMAC-SHA256(authkey, nonce ‖ worker_id) to @proof. */
void      _fiber_auth_compute_proof (const guint8  *authkey,
                                     gsize          authkey_size,
                                     const guint8  *nonce,
                                     gsize          nonce_size,
                                     const char    *worker_id,
                                     guint8         proof[FIBER_AUTH_PROOF_SIZE]);

/* Checks a HELLO proof in constant time; a wrong proof (or one of the
 * wrong size) is FIBER_ERROR_AUTH. */
gboolean  _fiber_auth_verify_proof  (const guint8  *authkey,
                                     gsize          authkey_size,
                                     const guint8  *nonce,
                                     gsize          nonce_size,
                                     const char    *worker_id,
                                     const guint8  *proof,
                                     gsize          proof_size,
                                     GError       **error);

/* Whether the linked libzmq supports CURVE security. */
gboolean  _fiber_auth_curve_supported (void);

/* A new CURVE keypair as Z85 text; FIBER_ERROR_NOT_SUPPORTED when libzmq
 * lacks CURVE.  Free the secret with _fiber_auth_free_secret(). */
gboolean  _fiber_auth_curve_keypair (char         **public_key,
                                     char         **secret_key,
                                     GError       **error);

/* The public key of a Z85 secret key; a malformed key is
 * FIBER_ERROR_INVALID_ARGUMENT. */
char     *_fiber_auth_curve_public_from_secret (const char  *secret_key,
                                                GError     **error);

/* Whether @key is a well-formed 40-char Z85 CURVE key. */
gboolean  _fiber_auth_z85_key_is_valid (const char *key);

/* Wipes a nul-terminated secret, then frees it (NULL is fine). */
void      _fiber_auth_free_secret   (char          *secret);

G_END_DECLS

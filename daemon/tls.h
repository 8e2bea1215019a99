/*
 * tls.h - the server-side TLS context (STARTTLS and implicit TLS) and
 * the TLS facts we log and write into Received headers.
 *
 * Lifetime and reload: a context is built once per configuration, before
 * privileges are dropped (it reads the key file). It is an OpenSSL
 * SSL_CTX, reference-counted by OpenSSL: each SSL made by tls_server_new()
 * holds a reference, so a reload builds a new context, swaps it into the
 * new configuration and calls tls_ctx_free() on the old one; sessions in
 * flight keep the old context alive until their SSL is freed. Whoever
 * else keeps a pointer takes its own reference with SSL_CTX_up_ref() and
 * drops it with tls_ctx_free(). OpenSSL clears private key material when
 * the last reference goes (BN_clear_free), which is what STYLE.md 11 asks.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_TLS_H
#define POSTERN_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

/* Used when the configuration leaves min_version or ciphers unset. */
#define TLS_DEFAULT_MIN_VERSION	"TLSv1.2"
#define TLS_DEFAULT_CIPHERS						\
	"ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL"

/*
 * tls_server_ctx_new - a server context for cert_file (PEM: the server
 * certificate first, then its chain) and key_file (PEM private key, not
 * encrypted: we never prompt). min_version is "TLSv1", "TLSv1.1",
 * "TLSv1.2" or "TLSv1.3" (NULL: TLS_DEFAULT_MIN_VERSION). ciphers is an
 * OpenSSL cipher list for TLS 1.2 and older (NULL: TLS_DEFAULT_CIPHERS);
 * TLS 1.3 uses OpenSSL's default suites. Sets renegotiation and
 * compression off, server cipher preference, a server session cache with
 * our session id context, and SSL_OP_IGNORE_UNEXPECTED_EOF (libevent
 * 2.1.12 otherwise reports a peer's missing close_notify as an error).
 * Returns the context (one reference, the caller's) or NULL with
 * *error_r set to a message naming the file and the OpenSSL reason; the
 * message lives in thread-local storage until the next call in the same
 * thread. Clears the thread's OpenSSL error queue in both cases.
 */
SSL_CTX	*tls_server_ctx_new(const char *cert_file, const char *key_file,
	    const char *min_version, const char *ciphers, const char **error_r);

/* tls_ctx_free - drop one reference; NULL-safe; sets *ctx to NULL */
void	 tls_ctx_free(SSL_CTX **ctx);

/*
 * tls_server_new - a new server-side SSL for one connection (accept
 * state set). It holds its own reference to ctx. The caller owns it
 * (usually by handing it to bufferevent_openssl_*_new with
 * BEV_OPT_CLOSE_ON_FREE, which frees it). Never NULL (exits on OOM).
 */
SSL	*tls_server_new(SSL_CTX *ctx);

/*
 * tls_version, tls_cipher - "TLSv1.3", "TLS_AES_256_GCM_SHA384"; "none"
 * before the handshake. Static strings owned by OpenSSL.
 */
const char *tls_version(SSL *);
const char *tls_cipher(SSL *);
/* tls_cipher_bits - secret bits used by the cipher (0 before handshake) */
int	 tls_cipher_bits(SSL *);
/* tls_cipher_alg_bits - bits of the cipher algorithm (0 likewise) */
int	 tls_cipher_alg_bits(SSL *);

/*
 * tls_describe - "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256
 * bits)", the form Postfix logs, into out (size n, truncated, always
 * NUL-terminated).
 */
void	 tls_describe(SSL *, char *out, size_t n);

#endif

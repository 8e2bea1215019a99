/*
 * tls_client.c - the client-side SSL_CTX for STARTTLS to next hops.
 *
 * Owns one SSL_CTX for the whole process (OpenSSL contexts are safe to
 * share between threads once configured). Leaves the handshake, its
 * timeouts and the fallback policy to deliver_smtp.c. Certificate
 * verification (levels "verify" and "dane") is a later issue: the
 * context already loads the default trust store so that they only need
 * SSL_set_verify and SSL_set1_host per connection.
 *
 * RFCs: 3207 (STARTTLS), 7435 (opportunistic security), 6066 3 (SNI).
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/socket.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "dns.h"
#include "log.h"
#include "tls_client.h"

static pthread_once_t tls_client_once = PTHREAD_ONCE_INIT;
static SSL_CTX *tls_client_shared;	/* owned; lives until exit */
static const char *tls_client_error;	/* set once by the init */

/* tls_client_init - build the shared context (runs once) */
static void
tls_client_init(void)
{
	SSL_CTX *ctx;

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		tls_client_error = "SSL_CTX_new failed";
		return;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		tls_client_error = "cannot set the minimum TLS version";
		SSL_CTX_free(ctx);
		return;
	}
	/*
	 * libevent 2.1.12 reports a peer's missing close_notify as an
	 * error under OpenSSL 3 (notes 0.11); for SMTP the "." and its
	 * reply frame the message, so a plain EOF is what it means.
	 */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF |
	    SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (SSL_CTX_set_default_verify_paths(ctx) != 1)
		log_debug("smtp", "TLS: no default trust store");
	ERR_clear_error();
	tls_client_shared = ctx;
}

SSL_CTX *
tls_client_ctx(const char **error_r)
{
	pthread_once(&tls_client_once, tls_client_init);
	if (tls_client_shared == NULL)
		*error_r = tls_client_error != NULL ? tls_client_error :
		    "TLS client context unavailable";
	return tls_client_shared;
}

SSL *
tls_client_ssl(const char *host, const char **error_r)
{
	struct sockaddr_storage ss;
	SSL_CTX *ctx;
	SSL *ssl;

	if ((ctx = tls_client_ctx(error_r)) == NULL)
		return NULL;
	if ((ssl = SSL_new(ctx)) == NULL) {
		*error_r = "SSL_new failed";
		return NULL;
	}
	/* RFC 6066 3: SNI carries host names only, never literals. */
	if (host != NULL && !dns_parse_ip_literal(host, &ss) &&
	    SSL_set_tlsext_host_name(ssl, host) != 1) {
		SSL_free(ssl);
		*error_r = "cannot set the TLS server name";
		return NULL;
	}
	return ssl;
}

void
tls_client_describe(SSL *ssl, char *out, size_t n)
{
	const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
	int alg = 0, bits;

	bits = c != NULL ? SSL_CIPHER_get_bits(c, &alg) : 0;
	snprintf(out, n, "%s with cipher %s (%d/%d bits)", SSL_get_version(ssl),
	    c != NULL ? SSL_CIPHER_get_name(c) : "none", bits, alg);
}

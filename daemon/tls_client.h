/*
 * tls_client.h - the TLS client context used by the SMTP transport for
 * STARTTLS (RFC 3207) to next hops.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_TLS_CLIENT_H
#define POSTERN_TLS_CLIENT_H

#include <stddef.h>

#include <openssl/ssl.h>

/*
 * tls_client_ctx - the process-wide client SSL_CTX, created on the first
 * call (thread-safe) and kept until exit. TLS 1.2 minimum, unexpected EOF
 * treated as EOF (notes 7.1), no certificate verification: the levels
 * "may" and "encrypt" are opportunistic (RFC 7435). NULL and *error_r
 * (static text) when OpenSSL fails.
 */
SSL_CTX	*tls_client_ctx(const char **error_r);
/*
 * tls_client_ssl - a new SSL for one connection to host, with SNI set
 * unless host is an address literal. The caller owns it (usually by
 * handing it to bufferevent_openssl_filter_new). NULL and *error_r.
 */
SSL	*tls_client_ssl(const char *host, const char **error_r);
/*
 * tls_client_describe - "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384
 * (256/256 bits)" for debug logs, into out.
 */
void	tls_client_describe(SSL *, char *out, size_t n);

#endif

/*
 * tls.c - OpenSSL server context for STARTTLS (RFC 3207) and implicit
 * TLS (RFC 8314), and the TLS facts for logs and Received headers.
 *
 * Owns: nothing but the SSL_CTX it returns to the caller. Leaves to
 * others: the STARTTLS command and its pipelining check (session code),
 * wrapping sockets in bufferevents (listener/session), the client side of
 * delivery (delivery code), and which configuration keys feed us.
 *
 * Defaults follow RFC 8314 section 4.1 and RFC 9325 (BCP 195): TLS 1.2 or
 * newer, AEAD ciphers with forward secrecy, no renegotiation, no
 * compression (CRIME).
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "log.h"
#include "tls.h"

/* Server session cache: entries per context (OpenSSL's default is 20k). */
#define TLS_SESSION_CACHE_SIZE	10240
#define TLS_SESSION_TIMEOUT	300	/* seconds, RFC 5246 leaves it open */

static const unsigned char tls_sid_ctx[] = "postern";

/* Error text for error_r: one per thread, see tls.h. */
static __thread char tls_errbuf[512];

/*
 * tls_error - format the message for error_r, appending the reason of
 * the first queued OpenSSL error (the root cause; later entries are the
 * callers' "PEM lib"-style summaries). Clears the error queue.
 */
static const char *tls_error(const char *, ...)
    __attribute__((format(printf, 1, 2)));

static const char *
tls_error(const char *fmt, ...)
{
	va_list ap;
	unsigned long e;
	const char *reason;
	char detail[256];
	size_t len;

	va_start(ap, fmt);
	vsnprintf(tls_errbuf, sizeof(tls_errbuf), fmt, ap);
	va_end(ap);
	if ((e = ERR_get_error()) != 0) {
		if ((reason = ERR_reason_error_string(e)) == NULL) {
			ERR_error_string_n(e, detail, sizeof(detail));
			reason = detail;
		}
		len = strlen(tls_errbuf);
		snprintf(tls_errbuf + len, sizeof(tls_errbuf) - len, ": %s",
		    reason);
	}
	ERR_clear_error();
	return tls_errbuf;
}

/*
 * check_readable - fail early with errno text for a file OpenSSL would
 * otherwise report as "system library" noise. Keys are opened as root
 * before the privilege drop, so this reflects what OpenSSL will see.
 */
static int
check_readable(const char *what, const char *path, const char **error_r)
{
	FILE *fp;

	int saved;

	if ((fp = fopen(path, "r")) == NULL) {
		saved = errno;	/* the caller tells EACCES from the rest */
		snprintf(tls_errbuf, sizeof(tls_errbuf), "%s %s: %s", what,
		    path, strerror(saved));
		*error_r = tls_errbuf;
		errno = saved;
		return -1;
	}
	fclose(fp);
	return 0;
}

/* parse_version - protocol version constant for a name, -1 if unknown */
static int
parse_version(const char *name)
{
	static const struct {
		const char *name;
		int version;
	} versions[] = {
		{ "TLSv1", TLS1_VERSION },
		{ "TLSv1.0", TLS1_VERSION },
		{ "TLSv1.1", TLS1_1_VERSION },
		{ "TLSv1.2", TLS1_2_VERSION },
		{ "TLSv1.3", TLS1_3_VERSION },
	};
	size_t i;

	for (i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
		if (strcasecmp(name, versions[i].name) == 0)
			return versions[i].version;
	return -1;
}

/* no_passphrase - never prompt on a terminal for an encrypted key */
static int
no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)arg;
	return 0;
}

SSL_CTX *
tls_server_ctx_new(const char *cert_file, const char *key_file,
    const char *min_version, const char *ciphers, const char **error_r)
{
	SSL_CTX *ctx;
	int version;

	ERR_clear_error();
	if (min_version == NULL)
		min_version = TLS_DEFAULT_MIN_VERSION;
	if (ciphers == NULL)
		ciphers = TLS_DEFAULT_CIPHERS;
	if ((version = parse_version(min_version)) == -1) {
		snprintf(tls_errbuf, sizeof(tls_errbuf),
		    "unknown TLS protocol version \"%s\" (use TLSv1.2 or "
		    "TLSv1.3)", min_version);
		*error_r = tls_errbuf;
		return NULL;
	}
	if (check_readable("certificate file", cert_file, error_r) == -1 ||
	    check_readable("key file", key_file, error_r) == -1)
		return NULL;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		*error_r = tls_error("cannot create TLS context");
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, version) != 1) {
		*error_r = tls_error("cannot set minimum TLS version %s",
		    min_version);
		goto fail;
	}
	/*
	 * Renegotiation is a DoS lever and pointless for SMTP; compression
	 * leaks plaintext lengths (CRIME). Server preference keeps weak
	 * clients from choosing the weakest suite. Ignoring a missing
	 * close_notify is safe for SMTP: the DATA terminator and our reply
	 * frame the message (notes/libraries.md 7.1).
	 */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
	    SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
		*error_r = tls_error("bad cipher list \"%s\"", ciphers);
		goto fail;
	}
	/* DHE suites need parameters; let OpenSSL pick them by key size. */
	SSL_CTX_set_dh_auto(ctx, 1);

	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_sess_set_cache_size(ctx, TLS_SESSION_CACHE_SIZE);
	SSL_CTX_set_timeout(ctx, TLS_SESSION_TIMEOUT);
	if (SSL_CTX_set_session_id_context(ctx, tls_sid_ctx,
	    sizeof(tls_sid_ctx) - 1) != 1) {
		*error_r = tls_error("cannot set session id context");
		goto fail;
	}

	SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		*error_r = tls_error("cannot load certificate chain from %s",
		    cert_file);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) !=
	    1) {
		/* A key that does not match the certificate fails here. */
		if (ERR_GET_LIB(ERR_peek_last_error()) == ERR_LIB_X509 &&
		    ERR_GET_REASON(ERR_peek_last_error()) ==
		    X509_R_KEY_VALUES_MISMATCH)
			*error_r = tls_error("private key in %s does not "
			    "match the certificate in %s", key_file,
			    cert_file);
		else
			*error_r = tls_error("cannot load private key from "
			    "%s (must be an unencrypted PEM key)", key_file);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		*error_r = tls_error("private key in %s does not match the "
		    "certificate", key_file);
		goto fail;
	}
	ERR_clear_error();
	return ctx;

fail:
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return NULL;
}

void
tls_ctx_free(SSL_CTX **ctx)
{
	if (ctx == NULL || *ctx == NULL)
		return;
	SSL_CTX_free(*ctx);
	*ctx = NULL;
}

SSL *
tls_server_new(SSL_CTX *ctx)
{
	SSL *ssl;

	if ((ssl = SSL_new(ctx)) == NULL)
		fatalx("SSL_new: out of memory");
	SSL_set_accept_state(ssl);
	return ssl;
}

const char *
tls_version(SSL *ssl)
{
	if (ssl == NULL || SSL_get_current_cipher(ssl) == NULL)
		return "none";
	return SSL_get_version(ssl);
}

const char *
tls_cipher(SSL *ssl)
{
	const SSL_CIPHER *c;

	if (ssl == NULL || (c = SSL_get_current_cipher(ssl)) == NULL)
		return "none";
	return SSL_CIPHER_get_name(c);
}

int
tls_cipher_bits(SSL *ssl)
{
	const SSL_CIPHER *c;

	if (ssl == NULL || (c = SSL_get_current_cipher(ssl)) == NULL)
		return 0;
	return SSL_CIPHER_get_bits(c, NULL);
}

int
tls_cipher_alg_bits(SSL *ssl)
{
	const SSL_CIPHER *c;
	int alg_bits = 0;

	if (ssl == NULL || (c = SSL_get_current_cipher(ssl)) == NULL)
		return 0;
	(void)SSL_CIPHER_get_bits(c, &alg_bits);
	return alg_bits;
}

void
tls_describe(SSL *ssl, char *out, size_t n)
{
	if (n == 0)
		return;
	snprintf(out, n, "%s with cipher %s (%d/%d bits)", tls_version(ssl),
	    tls_cipher(ssl), tls_cipher_bits(ssl), tls_cipher_alg_bits(ssl));
}

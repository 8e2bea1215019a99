/*
 * test_tls.c - unit tests for daemon/tls.c: context creation and its
 * error messages, the minimum protocol version (handshakes over a
 * socketpair against OpenSSL clients limited to older versions),
 * certificate chains, session resumption, the dirty-EOF option, the
 * reference counting a reload relies on, and tls_describe's format.
 *
 * Certificates are made with the openssl(1) CLI in a temporary directory.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tap.h"
#include "tls.h"

static char dir[] = "/tmp/test_tls.XXXXXX";

/* path - a file in the temporary directory (static buffer, rotating) */
static const char *
path(const char *name)
{
	static char bufs[8][256];
	static int next;
	char *p = bufs[next++ % 8];

	snprintf(p, sizeof(bufs[0]), "%s/%s", dir, name);
	return p;
}

static int
make_certs(void)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd),
	    "(set -e; cd %s; "
	    "ec='-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes'; "
	    "openssl req -x509 $ec -keyout key.pem -out cert.pem -days 2 "
	    "  -subj /CN=localhost; "
	    "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
	    "  -out other.pem; "
	    "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
	    "  -aes256 -pass pass:secret -out enc.pem; "
	    "openssl req -x509 $ec -keyout ca.key -out ca.pem -days 2 "
	    "  -subj '/CN=Postern Test CA'; "
	    "openssl req $ec -keyout leaf.key -out leaf.csr -subj /CN=leaf; "
	    "openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key "
	    "  -CAcreateserial -out leaf.pem -days 2; "
	    "cat leaf.pem ca.pem > chain.pem; "
	    "echo 'not a certificate' > garbage.pem) >/dev/null 2>&1",
	    dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
cleanup(void)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", dir);
}

/*
 * handshake - run both sides of a handshake over a socketpair in this
 * thread. Returns 0 when both sides completed, -1 otherwise. *fds_r gets
 * the sockets (client, server) when not NULL, else they are closed.
 */
static int
handshake(SSL *c, SSL *s, int *fds_r)
{
	int fds[2], i, rc_c = 0, rc_s = 0, e;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == -1)
		return -1;
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	fcntl(fds[1], F_SETFL, O_NONBLOCK);
	SSL_set_fd(c, fds[0]);
	SSL_set_fd(s, fds[1]);
	SSL_set_connect_state(c);
	for (i = 0; i < 200 && (rc_c != 1 || rc_s != 1); i++) {
		if (rc_c != 1) {
			rc_c = SSL_do_handshake(c);
			e = SSL_get_error(c, rc_c);
			if (rc_c != 1 && e != SSL_ERROR_WANT_READ &&
			    e != SSL_ERROR_WANT_WRITE)
				break;
		}
		if (rc_s != 1) {
			rc_s = SSL_do_handshake(s);
			e = SSL_get_error(s, rc_s);
			if (rc_s != 1 && e != SSL_ERROR_WANT_READ &&
			    e != SSL_ERROR_WANT_WRITE)
				break;
		}
	}
	ERR_clear_error();
	if (fds_r != NULL) {
		fds_r[0] = fds[0];
		fds_r[1] = fds[1];
	} else {
		close(fds[0]);
		close(fds[1]);
	}
	return rc_c == 1 && rc_s == 1 ? 0 : -1;
}

/* client_ctx - an OpenSSL client limited to [min, max] */
static SSL_CTX *
client_ctx(int min, int max, bool legacy)
{
	SSL_CTX *ctx;

	ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_min_proto_version(ctx, min);
	SSL_CTX_set_max_proto_version(ctx, max);
	if (legacy) {
		/* OpenSSL 3 refuses TLS < 1.2 above security level 0. */
		SSL_CTX_set_security_level(ctx, 0);
		SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0");
	}
	return ctx;
}

static const struct hs_case {
	const char	*name;
	const char	*server_min;	/* NULL: default (TLSv1.2) */
	const char	*server_ciphers;
	int		 client_min, client_max;
	bool		 legacy;
	bool		 want_ok;
	const char	*want_version;
	const char	*want_describe_prefix;
} hs_cases[] = {
	{ "default server, TLS 1.1 client fails", NULL, NULL,
	    TLS1_VERSION, TLS1_1_VERSION, true, false, NULL, NULL },
	{ "default server, TLS 1.0 client fails", NULL, NULL,
	    TLS1_VERSION, TLS1_VERSION, true, false, NULL, NULL },
	/* Security level 0 as below: only the minimum version refuses. */
	{ "TLSv1.2 server at seclevel 0, TLS 1.1 client fails", "TLSv1.2",
	    "DEFAULT:@SECLEVEL=0", TLS1_VERSION, TLS1_1_VERSION, true, false,
	    NULL, NULL },
	{ "control: TLSv1 server, TLS 1.1 client works", "TLSv1",
	    "DEFAULT:@SECLEVEL=0", TLS1_VERSION, TLS1_1_VERSION, true, true,
	    "TLSv1.1", "TLSv1.1 with cipher ECDHE-ECDSA-" },
	{ "default server, TLS 1.2 client", NULL, NULL,
	    TLS1_2_VERSION, TLS1_2_VERSION, false, true, "TLSv1.2",
	    "TLSv1.2 with cipher ECDHE-ECDSA-AES256-GCM-SHA384 (256/256 bits)" },
	{ "default server, TLS 1.3 client", NULL, NULL,
	    TLS1_3_VERSION, TLS1_3_VERSION, false, true, "TLSv1.3",
	    "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)" },
	{ "default server, any client gets 1.3", NULL, NULL,
	    0, 0, false, true, "TLSv1.3", "TLSv1.3 with cipher TLS_" },
	{ "TLSv1.3 server, TLS 1.2 client fails", "TLSv1.3", NULL,
	    TLS1_2_VERSION, TLS1_2_VERSION, false, false, NULL, NULL },
	{ "TLSv1.2 server preference: AES-256-GCM over client order",
	    "TLSv1.2", "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-"
	    "GCM-SHA256", TLS1_2_VERSION, TLS1_2_VERSION, false, true,
	    "TLSv1.2", "TLSv1.2 with cipher ECDHE-ECDSA-AES256-GCM-SHA384" },
};

static void
test_handshakes(void)
{
	SSL_CTX *sctx, *cctx;
	SSL *c, *s;
	const char *err = NULL;
	char desc[128];
	size_t i;
	int rc;

	for (i = 0; i < sizeof(hs_cases) / sizeof(hs_cases[0]); i++) {
		const struct hs_case *hc = &hs_cases[i];

		sctx = tls_server_ctx_new(path("cert.pem"), path("key.pem"),
		    hc->server_min, hc->server_ciphers, &err);
		ok(sctx != NULL, "ctx: %s", hc->name);
		if (sctx == NULL) {
			printf("#   error: %s\n", err);
			continue;
		}
		cctx = client_ctx(hc->client_min, hc->client_max, hc->legacy);
		if (strstr(hc->name, "preference") != NULL)
			SSL_CTX_set_cipher_list(cctx, "ECDHE-ECDSA-AES128-GCM-"
			    "SHA256:ECDHE-ECDSA-AES256-GCM-SHA384");
		c = SSL_new(cctx);
		s = tls_server_new(sctx);
		rc = handshake(c, s, NULL);
		is_int(rc, hc->want_ok ? 0 : -1, "handshake: %s", hc->name);
		if (rc == 0 && hc->want_ok) {
			is_str(tls_version(s), hc->want_version,
			    "version: %s", hc->name);
			tls_describe(s, desc, sizeof(desc));
			ok(strncmp(desc, hc->want_describe_prefix,
			    strlen(hc->want_describe_prefix)) == 0 &&
			    strstr(desc, " bits)") != NULL,
			    "describe: %s", hc->name);
			if (strncmp(desc, hc->want_describe_prefix,
			    strlen(hc->want_describe_prefix)) != 0)
				printf("#   got \"%s\", want \"%s...\"\n", desc,
				    hc->want_describe_prefix);
			is_str(tls_cipher(s), SSL_get_cipher_name(c),
			    "cipher agrees with the client: %s", hc->name);
			is_int(tls_cipher_bits(s), SSL_get_cipher_bits(c, NULL),
			    "bits agree with the client: %s", hc->name);
		}
		SSL_free(c);
		SSL_free(s);
		SSL_CTX_free(cctx);
		tls_ctx_free(&sctx);
	}
}

static const struct err_case {
	const char	*name;
	const char	*cert;
	const char	*key;
	const char	*min_version;
	const char	*ciphers;
	const char	*want1;		/* substrings of the error */
	const char	*want2;
} err_cases[] = {
	{ "key does not match certificate", "cert.pem", "other.pem", NULL,
	    NULL, "other.pem", "key values mismatch" },
	{ "missing certificate file", "nosuch.pem", "key.pem", NULL, NULL,
	    "nosuch.pem", "No such file or directory" },
	{ "missing key file", "cert.pem", "nokey.pem", NULL, NULL,
	    "nokey.pem", "No such file or directory" },
	{ "certificate file is not PEM", "garbage.pem", "key.pem", NULL,
	    NULL, "garbage.pem", "no start line" },
	{ "key is a certificate", "cert.pem", "cert.pem", NULL, NULL,
	    "cert.pem", "private key" },
	{ "encrypted key is not prompted for", "cert.pem", "enc.pem", NULL,
	    NULL, "enc.pem", "private key" },
	{ "unknown protocol version", "cert.pem", "key.pem", "TLSv9", NULL,
	    "TLSv9", "unknown TLS protocol version" },
	{ "bad cipher list", "cert.pem", "key.pem", NULL, "NOPE-CIPHER",
	    "NOPE-CIPHER", "bad cipher list" },
};

static void
test_errors(void)
{
	SSL_CTX *ctx;
	const char *err;
	size_t i;

	for (i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
		const struct err_case *ec = &err_cases[i];

		err = NULL;
		ctx = tls_server_ctx_new(path(ec->cert), path(ec->key),
		    ec->min_version, ec->ciphers, &err);
		ok(ctx == NULL, "refused: %s", ec->name);
		ok(err != NULL && strstr(err, ec->want1) != NULL &&
		    strstr(err, ec->want2) != NULL,
		    "error names \"%s\" and \"%s\": %s", ec->want1, ec->want2,
		    ec->name);
		printf("#   error: %s\n", err != NULL ? err : "(null)");
		is_int(ERR_peek_error(), 0, "error queue cleared: %s",
		    ec->name);
		tls_ctx_free(&ctx);
	}
}

/* test_chain - the whole chain file is sent; resumption; refcount */
static void
test_chain_and_lifetime(void)
{
	SSL_CTX *sctx, *cctx;
	SSL *c, *s;
	const char *err = NULL;
	char buf[16];
	int fds[2], rc;

	sctx = tls_server_ctx_new(path("chain.pem"), path("leaf.key"), NULL,
	    NULL, &err);
	ok(sctx != NULL, "ctx from chain file");
	if (sctx == NULL) {
		printf("#   error: %s\n", err);
		return;
	}
	cctx = client_ctx(TLS1_2_VERSION, TLS1_2_VERSION, false);
	SSL_CTX_load_verify_locations(cctx, path("ca.pem"), NULL);
	SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
	c = SSL_new(cctx);
	s = tls_server_new(sctx);
	/*
	 * Reload semantics: the SSL keeps the context alive after the
	 * configuration drops its reference.
	 */
	tls_ctx_free(&sctx);
	ok(sctx == NULL, "tls_ctx_free clears the pointer");
	tls_ctx_free(&sctx);
	ok(1, "tls_ctx_free(NULL) is harmless");
	is_str(tls_version(s), "none", "version before handshake");
	is_str(tls_cipher(s), "none", "cipher before handshake");
	is_int(tls_cipher_bits(s), 0, "bits before handshake");
	rc = handshake(c, s, fds);
	is_int(rc, 0, "handshake with chain, client verifies against CA");
	is_int(SSL_get_verify_result(c), X509_V_OK, "client verify result");
	{
		STACK_OF(X509) *chain = SSL_get_peer_cert_chain(c);

		is_int(chain != NULL ? sk_X509_num(chain) : 0, 2,
		    "server sent leaf and CA");
	}
	/*
	 * The peer vanishing without close_notify reads as a clean EOF
	 * (SSL_OP_IGNORE_UNEXPECTED_EOF), not as a protocol error.
	 */
	close(fds[0]);
	rc = SSL_read(s, buf, sizeof(buf));
	is_int(SSL_get_error(s, rc), SSL_ERROR_ZERO_RETURN,
	    "missing close_notify is a clean EOF");
	ERR_clear_error();
	close(fds[1]);

	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(cctx);
}

/*
 * test_resumption - a client without tickets resumes by session id, so
 * this exercises the server session cache and its id context.
 */
static void
test_resumption(void)
{
	SSL_CTX *sctx, *cctx;
	SSL *c, *s;
	SSL_SESSION *sess;
	const char *err = NULL;
	int fds[2];

	sctx = tls_server_ctx_new(path("cert.pem"), path("key.pem"), NULL,
	    NULL, &err);
	ok(sctx != NULL, "ctx for resumption");
	if (sctx == NULL)
		return;
	cctx = client_ctx(TLS1_2_VERSION, TLS1_2_VERSION, false);
	SSL_CTX_set_options(cctx, SSL_OP_NO_TICKET);
	c = SSL_new(cctx);
	s = tls_server_new(sctx);
	is_int(handshake(c, s, fds), 0, "first handshake");
	is_int(SSL_session_reused(s), 0, "first session is new");
	/* A clean close keeps the session in the server's cache. */
	SSL_shutdown(c);
	SSL_shutdown(s);
	sess = SSL_get1_session(c);
	SSL_free(c);
	SSL_free(s);
	close(fds[0]);
	close(fds[1]);
	c = SSL_new(cctx);
	s = tls_server_new(sctx);
	SSL_set_session(c, sess);
	is_int(handshake(c, s, NULL), 0, "second handshake");
	is_int(SSL_session_reused(s), 1, "session resumed by id");
	SSL_SESSION_free(sess);
	SSL_free(c);
	SSL_free(s);
	tls_ctx_free(&sctx);
	SSL_CTX_free(cctx);
}

int
main(void)
{
	if (mkdtemp(dir) == NULL) {
		ok(0, "mkdtemp");
		return done_testing();
	}
	if (make_certs() == -1) {
		ok(0, "openssl CLI made the test certificates");
		cleanup();
		return done_testing();
	}
	test_errors();
	test_handshakes();
	test_chain_and_lifetime();
	test_resumption();
	cleanup();
	return done_testing();
}

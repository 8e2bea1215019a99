/*
 * opendkim_verify.c - verify every DKIM-Signature of a message with
 * libopendkim's own verifier, independent of Postern's code: the keys
 * come from a file (DKIM_QUERY_FILE), not from DNS.
 *
 * usage: opendkim_verify KEYFILE FILE
 *
 * KEYFILE has one line per key, "sel._domainkey.example.org v=DKIM1;
 * k=rsa; p=...". FILE holds one message, CRLF or LF line ends. For each
 * DKIM-Signature, in the order libopendkim lists them (top to bottom),
 * one line on stdout:
 *
 *	pass|fail d=DOMAIN s=SELECTOR a=ALGORITHM
 *
 * and, for a failure, libopendkim's reason on stderr. Exit status: 0 when
 * there is at least one signature and all pass, 1 otherwise, 2 on usage
 * or I/O errors.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opendkim/dkim.h>

#define OPENDKIM_VERIFY_MAX	(16 * 1024 * 1024)	/* message bytes */

/* a growing byte string */
struct bytes {
	char	*data;		/* owned */
	size_t	 len, size;
};

static void __attribute__((noreturn))
die(const char *what, const char *why)
{
	fprintf(stderr, "opendkim_verify: %s: %s\n", what, why);
	exit(2);
}

static void
bytes_add(struct bytes *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->size) {
		b->size = (b->len + n + 1) * 2;
		if ((b->data = realloc(b->data, b->size)) == NULL)
			die("realloc", "out of memory");
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

/* read_crlf - the whole file, every line end (LF or CRLF) as CRLF */
static void
read_crlf(const char *path, struct bytes *out)
{
	FILE *fp;
	int c, prev = 0;
	char ch;

	if ((fp = fopen(path, "rb")) == NULL)
		die(path, "cannot open");
	while ((c = getc(fp)) != EOF) {
		if (c == '\n' && prev != '\r')
			bytes_add(out, "\r", 1);
		ch = (char)c;
		bytes_add(out, &ch, 1);
		prev = c;
		if (out->len > OPENDKIM_VERIFY_MAX)
			die(path, "message too large");
	}
	if (ferror(fp))
		die(path, "read error");
	fclose(fp);
	if (out->len == 0)
		die(path, "empty");
}

static const char *
alg_name(DKIM_SIGINFO *sig)
{
	dkim_alg_t alg;

	if (dkim_sig_getsignalg(sig, &alg) != DKIM_STAT_OK)
		return "?";
	switch (alg) {
	case DKIM_SIGN_RSASHA256:
		return "rsa-sha256";
	case DKIM_SIGN_ED25519SHA256:
		return "ed25519-sha256";
	case DKIM_SIGN_RSASHA1:
		return "rsa-sha1";
	default:
		return "?";
	}
}

/*
 * feed - the header fields one by one (folded lines kept, no trailing
 * CRLF), the end of the header, then the body. Returns the status of the
 * last call.
 */
static DKIM_STAT
feed(DKIM *d, const char *m, size_t len)
{
	const char *p = m, *end = m + len, *eol;
	size_t n;
	DKIM_STAT st;

	while (p < end && !(p + 1 < end && p[0] == '\r' && p[1] == '\n')) {
		/* one field: up to a CRLF not followed by space or tab */
		eol = p;
		for (;;) {
			eol = memchr(eol, '\n', (size_t)(end - eol));
			if (eol == NULL) {
				eol = end;
				break;
			}
			if (eol + 1 == end || (eol[1] != ' ' &&
			    eol[1] != '\t'))
				break;
			eol++;
		}
		n = (size_t)(eol - p);
		if (n > 0 && p[n - 1] == '\r')
			n--;
		st = dkim_header(d, (u_char *)p, n);
		if (st != DKIM_STAT_OK)
			fprintf(stderr, "dkim_header: %s\n",
			    dkim_getresultstr(st));
		p = eol < end ? eol + 1 : end;
	}
	if ((st = dkim_eoh(d)) != DKIM_STAT_OK)
		return st;
	if (p < end)
		p += 2;		/* the empty line */
	if (p < end && (st = dkim_body(d, (u_char *)p,
	    (size_t)(end - p))) != DKIM_STAT_OK)
		return st;
	return dkim_eom(d, NULL);
}

int
main(int argc, char **argv)
{
	struct bytes msg = { NULL, 0, 0 };
	DKIM_LIB *lib;
	DKIM *d;
	DKIM_STAT st;
	DKIM_SIGINFO **sigs = NULL;
	dkim_query_t qm = DKIM_QUERY_FILE;
	int i, nsigs = 0;
	bool all_pass = true;

	if (argc != 3) {
		fprintf(stderr, "usage: opendkim_verify KEYFILE FILE\n");
		return 2;
	}
	read_crlf(argv[2], &msg);
	if ((lib = dkim_init(NULL, NULL)) == NULL)
		die("dkim_init", "failed");
	if (dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYMETHOD, &qm,
	    sizeof(qm)) != DKIM_STAT_OK ||
	    dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYINFO, argv[1],
	    strlen(argv[1])) != DKIM_STAT_OK)
		die("dkim_options", "cannot set the key file");
	d = dkim_verify(lib, (u_char *)"opendkim_verify", NULL, &st);
	if (d == NULL)
		die("dkim_verify", dkim_getresultstr(st));

	st = feed(d, msg.data, msg.len);
	if (st != DKIM_STAT_OK)
		fprintf(stderr, "dkim_eom: %s (%s)\n", dkim_getresultstr(st),
		    dkim_geterror(d) != NULL ? dkim_geterror(d) : "");
	if (dkim_getsiglist(d, &sigs, &nsigs) != DKIM_STAT_OK || nsigs == 0) {
		fprintf(stderr, "no DKIM-Signature\n");
		all_pass = false;
	}
	for (i = 0; i < nsigs; i++) {
		bool ok = DKIM_SIG_CHECK(sigs[i]);
		const u_char *dom = dkim_sig_getdomain(sigs[i]);
		const u_char *sel = dkim_sig_getselector(sigs[i]);

		printf("%s d=%s s=%s a=%s\n", ok ? "pass" : "fail",
		    dom != NULL ? (const char *)dom : "?",
		    sel != NULL ? (const char *)sel : "?", alg_name(sigs[i]));
		if (!ok) {
			all_pass = false;
			fprintf(stderr, "d=%s s=%s: %s (flags 0x%x, body hash "
			    "%s)\n", dom != NULL ? (const char *)dom : "?",
			    sel != NULL ? (const char *)sel : "?",
			    dkim_sig_geterrorstr(dkim_sig_geterror(sigs[i])),
			    dkim_sig_getflags(sigs[i]),
			    dkim_sig_getbh(sigs[i]) == DKIM_SIGBH_MATCH ?
			    "matched" : "did not match");
		}
	}
	fflush(stdout);
	dkim_free(d);
	dkim_close(lib);
	free(msg.data);
	return all_pass ? 0 : 1;
}

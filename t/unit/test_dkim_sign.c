/*
 * test_dkim_sign.c - our DKIM signer (filters/dkim_sign.c) against
 * libopendkim 2.11: byte-identical rsa-sha256 DKIM-Signature values for a
 * table of messages, both canonicalizations, with and without oversigning
 * From, PKCS#8 and PKCS#1 keys; every signature (rsa and ed25519)
 * verified by libopendkim with the record sign_key_dns_record() gives;
 * tampered messages fail; chunking does not matter; bad keys are refused
 * with a clear error; threads share a key.
 *
 * DKIM_SIGN_LOOPS=N also signs N messages per key type and prints the
 * time per signature (run it under valgrind to check for leaks).
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/time.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <opendkim/dkim.h>

#include "buf.h"
#include "dkim_sign.h"
#include "message_edit.h"
#include "tap.h"
#include "xmalloc.h"

#define T0	1700000000

static char keydir[4096];
static char keysfile[4096];

/* key_path - a fixture of t/unit/data/dkim (static buffer) */
static const char *
key_path(const char *name)
{
	static char path[sizeof(keydir) + 256];

	snprintf(path, sizeof(path), "%s/%s", keydir, name);
	return path;
}

static char *
slurp(const char *path)
{
	struct buf b;
	char chunk[4096];
	size_t n;
	FILE *f;

	if ((f = fopen(path, "r")) == NULL) {
		printf("# cannot open %s\n", path);
		return xstrdup("");
	}
	buf_init(&b, 0);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);
	return b.len == 0 ? (buf_deinit(&b), xstrdup("")) : buf_steal(&b);
}

static struct sign_key *
load(const char *name)
{
	struct sign_key *key;
	char *err = NULL;

	if ((key = sign_key_load(key_path(name), &err)) == NULL) {
		printf("# key %s: %s\n", name, err);
		free(err);
	}
	return key;
}

/* a message split into its header block and body */
struct msg {
	char	*hdr;		/* header block, CRLF-terminated fields */
	size_t	 hdrlen;
	const char *body;	/* borrowed from the text */
	size_t	 bodylen;
};

static void
msg_split(const char *text, struct msg *m)
{
	const char *sep = strstr(text, "\r\n\r\n");

	if (sep == NULL) {
		m->hdr = xstrdup(text);
		m->hdrlen = strlen(text);
		m->body = text + m->hdrlen;
	} else {
		m->hdr = xstrndup(text, (size_t)(sep - text) + 2);
		m->hdrlen = (size_t)(sep - text) + 2;
		m->body = sep + 4;
	}
	m->bodylen = strlen(m->body);
}

struct cfg {
	enum sign_canon hc, bc;
	bool	 over_from;
	const char *const *sign;	/* NULL: default */
	long	 ttl;
	const char *identity;
	time_t	 t;
};

/* ours - our signature value; chunk 0: the body at once */
static char *
ours(const struct sign_key *key, const char *sel, const char *text,
    const struct cfg *c, size_t chunk, char **err)
{
	static const char *const over[] = { "From", NULL };
	struct signer_params p = {
		.key = key, .domain = "example.test", .selector = sel,
		.header_canon = c->hc, .body_canon = c->bc,
		.sign_headers = c->sign,
		.oversign_headers = c->over_from ? over : NULL,
		.timestamp = c->t != 0 ? c->t : T0,
		.expire_after = c->ttl, .identity = c->identity,
	};
	struct header_list hl;
	struct signer *s;
	struct msg m;
	size_t off, n;
	char *v;

	msg_split(text, &m);
	if (header_list_parse(&hl, m.hdr, m.hdrlen) == -1)
		printf("# header_list_parse failed\n");
	s = signer_new(&p);
	if (chunk == 0)
		signer_body(s, m.body, m.bodylen);
	else
		for (off = 0; off < m.bodylen; off += n) {
			n = m.bodylen - off < chunk ? m.bodylen - off : chunk;
			signer_body(s, m.body + off, n);
		}
	v = signer_finish(s, &hl, err);
	signer_free(&s);
	header_list_deinit(&hl);
	free(m.hdr);
	return v;
}

static void
feed_headers(DKIM *d, const struct msg *m)
{
	struct header_list hl;
	size_t i, len;

	header_list_parse(&hl, m->hdr, m->hdrlen);
	for (i = 0; i < hl.n; i++) {
		len = strlen(hl.fields[i].raw);
		if (len >= 2)
			len -= 2;
		dkim_header(d, (u_char *)hl.fields[i].raw, len);
	}
	header_list_deinit(&hl);
}

/*
 * reference - libopendkim's value for the same input. A body without its
 * final CRLF gets one first: that is the RFC's canonical form, which our
 * signer follows and libopendkim does not (see dkim_sign.c).
 */
static char *
reference(const char *keytext, const char *text, const struct cfg *c)
{
	static const char *const over[] = { "From", NULL };
	uint64_t ft = c->t != 0 ? (uint64_t)c->t : T0, ttl = (uint64_t)c->ttl;
	const char *const *sign = c->sign != NULL ? c->sign :
	    (const char *const *)dkim_should_signhdrs;
	DKIM_LIB *lib = dkim_init(NULL, NULL);
	char *v = NULL, *body;
	DKIM_STAT st;
	size_t hl;
	u_char *hv;
	struct msg m;
	DKIM *d;

	dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_FIXEDTIME, &ft, sizeof(ft));
	dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS, (void *)sign,
	    sizeof(char **));
	if (c->over_from)
		dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_OVERSIGNHDRS,
		    (void *)over, sizeof(char **));
	if (ttl != 0)
		dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNATURETTL,
		    &ttl, sizeof(ttl));
	msg_split(text, &m);
	d = dkim_sign(lib, (u_char *)"ref", NULL, (dkim_sigkey_t)keytext,
	    (u_char *)"rsa", (u_char *)"example.test",
	    c->hc == SIGN_CANON_RELAXED ? DKIM_CANON_RELAXED :
	    DKIM_CANON_SIMPLE, c->bc == SIGN_CANON_RELAXED ?
	    DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE, DKIM_SIGN_RSASHA256, -1,
	    &st);
	if (d == NULL)
		goto out;
	if (c->identity != NULL)
		dkim_set_signer(d, (u_char *)c->identity);
	feed_headers(d, &m);
	dkim_eoh(d);
	body = xasprintf("%s%s", m.body, m.bodylen > 0 &&
	    m.body[m.bodylen - 1] != '\n' ? "\r\n" : "");
	if (*body != '\0')
		dkim_body(d, (u_char *)body, strlen(body));
	free(body);
	if ((st = dkim_eom(d, NULL)) == DKIM_STAT_OK &&
	    dkim_getsighdr_d(d, strlen(DKIM_SIGNHEADER) + 2, &hv,
	    &hl) == DKIM_STAT_OK)
		v = xstrndup((char *)hv, hl);
	else
		printf("# libopendkim: %s\n", dkim_geterror(d));
	dkim_free(d);
out:
	free(m.hdr);
	dkim_close(lib);
	return v;
}

/*
 * verify - libopendkim's verdict on the message with our field on top:
 * "pass", or the status and signature error. Like reference(), a body
 * without its final CRLF gets one: libopendkim's relaxed canonicalization
 * refuses such a body ("CRLF at end of body missing").
 */
static char *
verify(const char *value, const char *text)
{
	dkim_query_t qm = DKIM_QUERY_FILE;
	DKIM_LIB *lib = dkim_init(NULL, NULL);
	DKIM_SIGINFO *sig;
	DKIM_STAT st;
	char *field, *r, *body;
	struct msg m;
	DKIM *d;

	dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYMETHOD, &qm,
	    sizeof(qm));
	dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYINFO, keysfile,
	    strlen(keysfile));
	d = dkim_verify(lib, (u_char *)"ver", NULL, &st);
	msg_split(text, &m);
	field = xasprintf("DKIM-Signature: %s", value);
	dkim_header(d, (u_char *)field, strlen(field));
	feed_headers(d, &m);
	dkim_eoh(d);
	body = xasprintf("%s%s", m.body, m.bodylen > 0 &&
	    m.body[m.bodylen - 1] != '\n' ? "\r\n" : "");
	if (*body != '\0')
		dkim_body(d, (u_char *)body, strlen(body));
	free(body);
	st = dkim_eom(d, NULL);
	sig = dkim_getsignature(d);
	if (st == DKIM_STAT_OK && sig != NULL && DKIM_SIG_CHECK(sig))
		r = xstrdup("pass");
	else if (sig == NULL)
		r = xasprintf("stat %d (%s), no signature", st,
		    dkim_getresultstr(st));
	else
		r = xasprintf("stat %d (%s), %s, body hash %s", st,
		    dkim_getresultstr(st),
		    dkim_sig_geterrorstr(dkim_sig_geterror(sig)),
		    dkim_sig_getbh(sig) == DKIM_SIGBH_MATCH ? "matches" :
		    dkim_sig_getbh(sig) == DKIM_SIGBH_MISMATCH ? "differs" :
		    "not checked");
	dkim_free(d);
	dkim_close(lib);
	free(field);
	free(m.hdr);
	return r;
}

/* tag - the value of one tag of a signature (caller frees) */
static char *
tag(const char *value, const char *name)
{
	char *flat = xstrdup(value), *p, *q, *want, *r = NULL;

	for (p = q = flat; *p != '\0'; p++)
		if (*p != '\r' && *p != '\n' && *p != '\t' && *p != ' ')
			*q++ = *p;
	*q = '\0';
	want = xasprintf(";%s=", name);
	p = strncmp(flat, want + 1, strlen(want + 1)) == 0 ? flat - 1 :
	    strstr(flat, want);
	if (p != NULL) {
		p += strlen(want);
		r = xstrndup(p, strcspn(p, ";"));
	}
	free(want);
	free(flat);
	return r;
}

static const struct {
	const char *name;
	const char *text;
} msgs[] = {
	{ "plain", "From: Alice <alice@example.test>\r\nTo: bob@example.net\r\nSubject: Hello\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: <1@example.test>\r\n\r\nHello Bob.\r\n" },
	{ "folded headers", "From: Alice\r\n <alice@example.test>\r\nTo: bob@example.net,\r\n\tcarol@example.net\r\nSubject: a long\r\n   folded \t subject \r\n\r\nbody\r\n" },
	{ "repeated headers", "Received: from x by y\r\nFrom: alice@example.test\r\nTo: one@example.net\r\nCc: a@example.net\r\nSubject: s\r\nto: two@example.net\r\nCc: b@example.net\r\nReply-To: r@example.test\r\nTO: three@example.net\r\n\r\nbody\r\n" },
	{ "missing optional headers", "From: alice@example.test\r\n\r\nonly from\r\n" },
	{ "empty body", "From: alice@example.test\r\nSubject: empty\r\n\r\n" },
	{ "body without final CRLF", "From: alice@example.test\r\nSubject: x\r\n\r\nline one\r\nno newline   " },
	{ "trailing blank lines", "From: alice@example.test\r\nSubject: x\r\n\r\ntext\r\n\r\n\r\n \r\n\r\n" },
	{ "only blank lines", "From: alice@example.test\r\n\r\n\r\n\r\n\r\n" },
	{ "whitespace runs", "From:   alice@example.test  \r\nSubject:\ta  \t b\t \r\n\r\n  leading\r\nin  the \t middle \t\r\n\t\r\ntrailing   \r\n  \r\nend\r\n" },
	{ "header spacing", "From:alice@example.test\r\nSubject : spaced name\r\nsubject:second\r\nX-Custom: custom\r\nDate:\r\n\r\nb\r\n" },
	{ "long header values", "From: alice@example.test\r\nTo: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@example.net, bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb@example.net, ccccccccccccccccccccccccccccccccccccc@example.net\r\nSubject: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\nReply-To: r@example.test\r\nCc: c@example.net\r\nCc: d@example.net\r\nIn-Reply-To: <a@b>\r\nReferences: <a@b> <c@d>\r\nList-Id: <list.example.test>\r\nList-Unsubscribe: <mailto:u@example.test>\r\nList-Subscribe: <mailto:s@example.test>\r\nList-Post: <mailto:p@example.test>\r\nList-Owner: <mailto:o@example.test>\r\nList-Archive: <https://example.test/a>\r\nList-Help: <mailto:h@example.test>\r\nResent-Date: now\r\nResent-From: x@example.test\r\nResent-Sender: y@example.test\r\nResent-To: z@example.net\r\nResent-Cc: w@example.net\r\nDate: today\r\n\r\nbody\r\n" },
	{ "8-bit", "From: =?utf-8?q?J=C3=BCrgen?= <j@example.test>\r\nSubject: Gr\xc3\xbc\xc3\x9f\x65 \xe2\x82\xac\r\n\r\nK\xe4se \xff\xfe\r\n\x80 \x81\r\n" },
	{ "long body lines", "From: alice@example.test\r\n\r\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx yyyy\r\n.\r\n..dot\r\n" },
};
#define NMSGS	(sizeof(msgs) / sizeof(msgs[0]))

static const char *const canon_name[] = { "simple", "relaxed" };

/* (1) + (2): identical to libopendkim, and verifies */
static void
test_vs_libopendkim(void)
{
	static const char *const keyfiles[] = {
		"rsa2048.pem", "rsa2048-pkcs1.pem", "rsa2048.der.b64", NULL
	};
	struct sign_key *key;
	struct cfg c;
	char *keytext, *want, *got, *err, *v;
	size_t i, k;
	int hc, bc, over;

	for (k = 0; keyfiles[k] != NULL; k++) {
		if ((key = load(keyfiles[k])) == NULL) {
			ok(0, "load %s", keyfiles[k]);
			continue;
		}
		/* the reference always gets the PEM: same key */
		keytext = slurp(key_path("rsa2048.pem"));
		for (i = 0; i < NMSGS; i++)
		for (hc = 0; hc < 2; hc++)
		for (bc = 0; bc < 2; bc++)
		for (over = 0; over < 2; over++) {
			if (k > 0 && (hc != bc || i % 3 != 0))
				continue;	/* keep the table small */
			memset(&c, 0, sizeof(c));
			c.hc = (enum sign_canon)hc;
			c.bc = (enum sign_canon)bc;
			c.over_from = over;
			err = NULL;
			want = reference(keytext, msgs[i].text, &c);
			got = ours(key, "rsa", msgs[i].text, &c, 0, &err);
			is_str(got, want, "%s, %s/%s%s, %s: same as "
			    "libopendkim", msgs[i].name, canon_name[hc],
			    canon_name[bc], over ? ", From oversigned" : "",
			    keyfiles[k]);
			if (got == NULL)
				printf("#   error: %s\n", err);
			if (k == 0) {
				v = verify(got != NULL ? got : "",
				    msgs[i].text);
				is_str(v, "pass", "%s, %s/%s%s: libopendkim "
				    "verifies it", msgs[i].name,
				    canon_name[hc], canon_name[bc],
				    over ? ", From oversigned" : "");
				free(v);
			}
			free(want);
			free(got);
			free(err);
		}
		explicit_bzero(keytext, strlen(keytext));
		free(keytext);
		sign_key_free(&key);
	}
}

/* custom sign lists, x= and i=, and a 1024-bit key */
static void
test_vs_libopendkim_options(void)
{
	static const char *const custom[] = {
		"From", "Subject", "X-Custom", "Date", NULL
	};
	static const char *const nofrom[] = { "to", "subject", NULL };
	static const char *const wild[] = { "from", "x-*", NULL };
	struct {
		const char *name;
		const char *keyfile;
		struct cfg c;
		size_t msg;
	} cases[] = {
		{ "custom list", "rsa2048.pem",
		    { SIGN_CANON_RELAXED, SIGN_CANON_RELAXED, true, custom,
		    0, NULL, 0 }, 9 },
		{ "list without From", "rsa2048.pem",
		    { SIGN_CANON_RELAXED, SIGN_CANON_SIMPLE, false, nofrom,
		    0, NULL, 0 }, 2 },
		{ "wildcard in list", "rsa2048.pem",
		    { SIGN_CANON_SIMPLE, SIGN_CANON_RELAXED, false, wild,
		    0, NULL, 0 }, 9 },
		{ "x= and i=", "rsa2048.pem",
		    { SIGN_CANON_RELAXED, SIGN_CANON_RELAXED, true, NULL,
		    86400, "alice@mail.example.test", 0 }, 0 },
		{ "1024-bit key", "rsa1024.pem",
		    { SIGN_CANON_SIMPLE, SIGN_CANON_SIMPLE, true, NULL,
		    0, NULL, 0 }, 10 },
		{ "1024-bit key relaxed", "rsa1024.pem",
		    { SIGN_CANON_RELAXED, SIGN_CANON_RELAXED, false, NULL,
		    0, NULL, 0 }, 2 },
	};
	struct sign_key *key;
	char *keytext, *want, *got, *err, *v;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cases[i].c.t = time(NULL);	/* x= must be in the future */
		if ((key = load(cases[i].keyfile)) == NULL) {
			ok(0, "load %s", cases[i].keyfile);
			continue;
		}
		keytext = slurp(key_path(cases[i].keyfile));
		err = NULL;
		want = reference(keytext, msgs[cases[i].msg].text,
		    &cases[i].c);
		got = ours(key, "rsa", msgs[cases[i].msg].text, &cases[i].c,
		    0, &err);
		is_str(got, want, "%s (%s): same as libopendkim",
		    cases[i].name, msgs[cases[i].msg].name);
		if (got != NULL && strcmp(cases[i].keyfile, "rsa2048.pem") ==
		    0) {
			v = verify(got, msgs[cases[i].msg].text);
			is_str(v, "pass", "%s: libopendkim verifies it",
			    cases[i].name);
			free(v);
		}
		free(want);
		free(got);
		free(err);
		free(keytext);
		sign_key_free(&key);
	}
}

/* (2) ed25519 in every canonicalization verifies */
static void
test_ed25519(void)
{
	static const char *const keyfiles[] = {
		"ed25519.pem", "ed25519.der.b64", NULL
	};
	struct sign_key *key;
	struct cfg c;
	char *got, *err, *v, *first[NMSGS] = { NULL };
	size_t i, k;
	int hc, bc;

	for (k = 0; keyfiles[k] != NULL; k++) {
		if ((key = load(keyfiles[k])) == NULL) {
			ok(0, "load %s", keyfiles[k]);
			continue;
		}
		is_int(sign_key_type(key), SIGN_KEY_ED25519, "%s: ed25519",
		    keyfiles[k]);
		is_int(sign_key_bits(key), 256, "%s: 256 bits", keyfiles[k]);
		for (i = 0; i < NMSGS; i++)
		for (hc = 0; hc < 2; hc++)
		for (bc = 0; bc < 2; bc++) {
			memset(&c, 0, sizeof(c));
			c.hc = (enum sign_canon)hc;
			c.bc = (enum sign_canon)bc;
			c.over_from = (i % 2) == 0;
			err = NULL;
			got = ours(key, "ed", msgs[i].text, &c, 0, &err);
			if (got == NULL) {
				ok(0, "ed25519 %s: signed (%s)", msgs[i].name,
				    err);
				free(err);
				continue;
			}
			if (k == 0) {
				v = verify(got, msgs[i].text);
				is_str(v, "pass", "ed25519 %s, %s/%s: "
				    "libopendkim verifies it", msgs[i].name,
				    canon_name[hc], canon_name[bc]);
				free(v);
				if (hc == 1 && bc == 1)
					first[i] = xstrdup(got);
			} else if (hc == 1 && bc == 1) {
				/* deterministic: PEM and DER sign alike */
				is_str(got, first[i], "ed25519 %s: DER key "
				    "signs like the PEM key", msgs[i].name);
			}
			free(got);
		}
		sign_key_free(&key);
	}
	for (i = 0; i < NMSGS; i++)
		free(first[i]);
}

/* (3) a message altered after signing fails */
static void
test_tamper(void)
{
	static const struct {
		const char *name;
		const char *keyfile, *sel;
		const char *signed_text, *altered;
		const char *want;
	} cases[] = {
		{ "body byte", "rsa2048.pem", "rsa",
		    "From: a@example.test\r\nSubject: s\r\n\r\nHello\r\n",
		    "From: a@example.test\r\nSubject: s\r\n\r\nHellp\r\n",
		    "stat 1 (Bad signature), signature verification failed, body hash differs" },
		{ "signed header", "rsa2048.pem", "rsa",
		    "From: a@example.test\r\nSubject: s\r\n\r\nHello\r\n",
		    "From: a@example.test\r\nSubject: t\r\n\r\nHello\r\n",
		    "stat 1 (Bad signature), signature verification failed, body hash not checked" },
		{ "From added on top (oversigned)", "rsa2048.pem", "rsa",
		    "From: a@example.test\r\nSubject: s\r\n\r\nHello\r\n",
		    "From: evil@example.net\r\nFrom: a@example.test\r\nSubject: s\r\n\r\nHello\r\n",
		    "stat 1 (Bad signature), signature verification failed, body hash not checked" },
		{ "ed25519 body byte", "ed25519.pem", "ed",
		    "From: a@example.test\r\nSubject: s\r\n\r\nHello\r\n",
		    "From: a@example.test\r\nSubject: s\r\n\r\nHello!\r\n",
		    "stat 1 (Bad signature), signature verification failed, body hash differs" },
		{ "ed25519 signed header", "ed25519.pem", "ed",
		    "From: a@example.test\r\nSubject: s\r\n\r\nHello\r\n",
		    "From: b@example.test\r\nSubject: s\r\n\r\nHello\r\n",
		    "stat 1 (Bad signature), signature verification failed, body hash not checked" },
		{ "unsigned header added (control)", "rsa2048.pem", "rsa",
		    "From: a@example.test\r\nSubject: s\r\n\r\nHello\r\n",
		    "Received: by relay\r\nFrom: a@example.test\r\nSubject: s\r\n\r\nHello\r\n",
		    "pass" },
	};
	struct cfg c = { SIGN_CANON_RELAXED, SIGN_CANON_RELAXED, true, NULL,
	    0, NULL, 0 };
	struct sign_key *key;
	char *got, *err = NULL, *v;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if ((key = load(cases[i].keyfile)) == NULL) {
			ok(0, "load %s", cases[i].keyfile);
			continue;
		}
		got = ours(key, cases[i].sel, cases[i].signed_text, &c, 0,
		    &err);
		v = verify(got != NULL ? got : "", cases[i].signed_text);
		is_str(v, "pass", "tamper %s: the original passes",
		    cases[i].name);
		free(v);
		v = verify(got != NULL ? got : "", cases[i].altered);
		is_str(v, cases[i].want, "tamper %s: the altered message",
		    cases[i].name);
		free(v);
		free(got);
		sign_key_free(&key);
	}
}

/* (4) chunking independence, and the RFC's empty-body hashes */
static void
test_chunking(void)
{
	static const size_t chunks[] = { 1, 2, 3, 7, 64 };
	struct sign_key *rsa = load("rsa2048.pem"), *ed = load("ed25519.pem");
	struct cfg c;
	char *whole, *part, *err = NULL, *bw, *bp;
	size_t i, j;
	int canon;

	for (i = 0; i < NMSGS; i++)
	for (canon = 0; canon < 2; canon++) {
		memset(&c, 0, sizeof(c));
		c.hc = c.bc = (enum sign_canon)canon;
		whole = ours(canon ? ed : rsa, "x", msgs[i].text, &c, 0,
		    &err);
		bw = whole != NULL ? tag(whole, "bh") : NULL;
		for (j = 0; j < sizeof(chunks) / sizeof(chunks[0]); j++) {
			part = ours(canon ? ed : rsa, "x", msgs[i].text, &c,
			    chunks[j], &err);
			bp = part != NULL ? tag(part, "bh") : NULL;
			is_str(bp, bw, "%s, %s, %zu-byte chunks: same bh=",
			    msgs[i].name, canon_name[canon], chunks[j]);
			if (chunks[j] == 1 || chunks[j] == 7)
				is_str(part, whole, "%s, %s, %zu-byte chunks: "
				    "same signature", msgs[i].name,
				    canon_name[canon], chunks[j]);
			free(bp);
			free(part);
		}
		free(bw);
		free(whole);
	}

	static const struct {
		const char *name;
		enum sign_canon canon;
		const char *text;
		const char *want;
	} bh[] = {
		{ "empty body, simple", SIGN_CANON_SIMPLE,
		    "From: a@example.test\r\n\r\n",
		    "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=" },
		{ "CRLF CRLF body, simple", SIGN_CANON_SIMPLE,
		    "From: a@example.test\r\n\r\n\r\n\r\n",
		    "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=" },
		{ "empty body, relaxed", SIGN_CANON_RELAXED,
		    "From: a@example.test\r\n\r\n",
		    "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=" },
		{ "blank lines only, relaxed", SIGN_CANON_RELAXED,
		    "From: a@example.test\r\n\r\n \t\r\n\r\n",
		    "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=" },
		/* RFC 6376 3.4.5's example bodies */
		{ "RFC 6376 3.4.5, relaxed", SIGN_CANON_RELAXED,
		    "From: a@example.test\r\n\r\n C \r\nD \t E\r\n\r\n\r\n",
		    NULL },
		{ "same as \" C\\r\\nD E\\r\\n\"", SIGN_CANON_SIMPLE,
		    "From: a@example.test\r\n\r\n C\r\nD E\r\n", NULL },
	};
	char *got[sizeof(bh) / sizeof(bh[0])];

	for (i = 0; i < sizeof(bh) / sizeof(bh[0]); i++) {
		memset(&c, 0, sizeof(c));
		c.hc = c.bc = bh[i].canon;
		whole = ours(rsa, "x", bh[i].text, &c, 0, &err);
		got[i] = whole != NULL ? tag(whole, "bh") : NULL;
		if (bh[i].want != NULL)
			is_str(got[i], bh[i].want, "bh= of %s", bh[i].name);
		free(whole);
	}
	is_str(got[4], got[5], "RFC 6376 3.4.5: relaxed \" C \\r\\nD \\t "
	    "E\\r\\n\\r\\n\\r\\n\" is \" C\\r\\nD E\\r\\n\"");
	for (i = 0; i < sizeof(bh) / sizeof(bh[0]); i++)
		free(got[i]);
	sign_key_free(&rsa);
	sign_key_free(&ed);
}

/* (5) keys: formats, types, bad keys with clear errors */
static void
test_keys(void)
{
	static const struct {
		const char *file;	/* NULL: text, named by label */
		const char *text;
		const char *label;
		int type;		/* -1: refused */
		unsigned bits;
		const char *err;	/* part of the error */
	} cases[] = {
		{ "rsa2048.pem", NULL, NULL, SIGN_KEY_RSA, 2048, NULL },
		{ "rsa2048-pkcs1.pem", NULL, NULL, SIGN_KEY_RSA, 2048, NULL },
		{ "rsa2048.der.b64", NULL, NULL, SIGN_KEY_RSA, 2048, NULL },
		{ "rsa2048-pkcs1.der.b64", NULL, NULL, SIGN_KEY_RSA, 2048, NULL },
		{ "rsa1024.pem", NULL, NULL, SIGN_KEY_RSA, 1024, NULL },
		{ "ed25519.pem", NULL, NULL, SIGN_KEY_ED25519, 256, NULL },
		{ "ed25519.der.b64", NULL, NULL, SIGN_KEY_ED25519, 256, NULL },
		{ "no-such-key.pem", NULL, NULL, -1, 0,
		    "no-such-key.pem: No such file or directory" },
		{ "garbage.pem", NULL, NULL, -1, 0, "cannot parse the PEM" },
		{ "rsa512.pem", NULL, NULL, -1, 0, "RSA key of 512 bits is too small" },
		{ "rsa2048-public.pem", NULL, NULL, -1, 0, "not a private key" },
		{ "encrypted.pem", NULL, NULL, -1, 0, "encrypted private keys" },
		{ "ec-p256.pem", NULL, NULL, -1, 0, "unsupported key type" },
		{ ".", NULL, NULL, -1, 0, "not a key file" },
		{ NULL, "", "empty text", -1, 0, "empty key" },
		{ NULL, " \n\t", "white space only", -1, 0, "empty key" },
		{ NULL, "!!!! not base64", "not base64", -1, 0,
		    "not a PEM or base64 DER private key" },
		{ NULL, "QUJDRA==", "base64 of ABCD", -1, 0,
		    "cannot parse the DER private key" },
		{ NULL, "MCowBQYDK2VwAyEA7I4SYGDpDbdDw1olb27S10t/8aW/VRIe0GDNRQer1yI=",
		    "ed25519 public key DER", -1, 0, "this is a public key" },
		{ NULL, "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n",
		    "empty PEM", -1, 0, "cannot parse the PEM" },
	};
	struct sign_key *key;
	char *err, *text;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err = NULL;
		if (cases[i].file != NULL) {
			key = sign_key_load(key_path(cases[i].file), &err);
		} else {
			text = xstrdup(cases[i].text);
			key = sign_key_parse(text, strlen(text), &err);
			free(text);
		}
		const char *name = cases[i].file != NULL ? cases[i].file :
		    cases[i].label;
		if (cases[i].type == -1) {
			ok(key == NULL && err != NULL &&
			    strstr(err, cases[i].err) != NULL,
			    "key \"%s\" refused: %s", name,
			    err != NULL ? err : "(no error)");
			if (err == NULL || strstr(err, cases[i].err) == NULL)
				printf("#   got \"%s\", want \"...%s...\"\n",
				    err != NULL ? err : "(null)",
				    cases[i].err);
		} else {
			ok(key != NULL && err == NULL, "key %s loads%s%s",
			    name, err != NULL ? ": " : "",
			    err != NULL ? err : "");
			if (key != NULL) {
				is_int(sign_key_type(key), cases[i].type,
				    "key %s: type", name);
				is_int(sign_key_bits(key), cases[i].bits,
				    "key %s: bits", name);
			}
		}
		sign_key_free(&key);
		sign_key_free(&key);	/* NULL is fine */
		free(err);
	}

	static const struct {
		const char *keyfile, *dnsfile;
	} dns[] = {
		{ "rsa2048.pem", "rsa2048.dns" },
		{ "rsa2048-pkcs1.der.b64", "rsa2048.dns" },
		{ "ed25519.pem", "ed25519.dns" },
		{ "ed25519.der.b64", "ed25519.dns" },
	};
	char *want, *got;

	for (i = 0; i < sizeof(dns) / sizeof(dns[0]); i++) {
		key = load(dns[i].keyfile);
		want = slurp(key_path(dns[i].dnsfile));
		want[strcspn(want, "\n")] = '\0';
		got = key != NULL ? sign_key_dns_record(key) : NULL;
		is_str(got, want, "DNS record of %s (from openssl)",
		    dns[i].keyfile);
		free(got);
		free(want);
		sign_key_free(&key);
	}
}

/* signing errors: each a clear message, never a crash */
static void
test_sign_errors(void)
{
	static const char *const badover[] = { "From;x", NULL };
	struct sign_key *key = load("rsa2048.pem");
	static const struct {
		const char *name;
		const char *domain, *selector, *identity;
		bool nokey, badover;
		const char *text;
		const char *err;
	} cases[] = {
		{ "no From", "example.test", "s", NULL, false, false,
		    "Subject: x\r\n\r\nb\r\n", "no From header field" },
		{ "no key", "example.test", "s", NULL, true, false,
		    "From: a@example.test\r\n\r\nb\r\n", "no signing key" },
		{ "i= outside d=", "example.test", "s", "a@example.net",
		    false, false, "From: a@example.test\r\n\r\nb\r\n",
		    "is not in domain" },
		{ "i= look-alike domain", "example.test", "s",
		    "a@badexample.test", false, false,
		    "From: a@example.test\r\n\r\nb\r\n", "is not in domain" },
		{ "domain with ;", "example.test; x=1", "s", NULL, false,
		    false, "From: a@example.test\r\n\r\nb\r\n", "bad domain" },
		{ "empty selector", "example.test", "", NULL, false, false,
		    "From: a@example.test\r\n\r\nb\r\n", "bad domain" },
		{ "bad oversign name", "example.test", "s", NULL, false, true,
		    "From: a@example.test\r\n\r\nb\r\n", "bad oversign" },
	};
	struct signer_params p;
	struct header_list hl;
	struct signer *s;
	struct msg m;
	char *err, *v;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&p, 0, sizeof(p));
		p.key = cases[i].nokey ? NULL : key;
		p.domain = cases[i].domain;
		p.selector = cases[i].selector;
		p.identity = cases[i].identity;
		p.oversign_headers = cases[i].badover ? badover : NULL;
		msg_split(cases[i].text, &m);
		header_list_parse(&hl, m.hdr, m.hdrlen);
		s = signer_new(&p);
		signer_body(s, m.body, m.bodylen);
		err = NULL;
		v = signer_finish(s, &hl, &err);
		ok(v == NULL && err != NULL && strstr(err, cases[i].err) !=
		    NULL, "%s: refused (%s)", cases[i].name,
		    err != NULL ? err : "no error");
		free(v);
		free(err);
		v = signer_finish(s, &hl, &err);
		ok(v == NULL && err != NULL, "%s: a second finish is "
		    "refused", cases[i].name);
		free(v);
		free(err);
		signer_free(&s);
		signer_free(&s);
		header_list_deinit(&hl);
		free(m.hdr);
	}
	sign_key_free(&key);
}

static void
test_default_headers(void)
{
	struct buf got, want;
	size_t i;

	buf_init(&got, 0);
	buf_init(&want, 0);
	for (i = 0; sign_default_headers[i] != NULL; i++)
		buf_printf(&got, "%s:", sign_default_headers[i]);
	for (i = 0; dkim_should_signhdrs[i] != NULL; i++)
		buf_printf(&want, "%s:", (const char *)dkim_should_signhdrs[i]);
	is_str(buf_cstr(&got), buf_cstr(&want),
	    "sign_default_headers is libopendkim's dkim_should_signhdrs");
	buf_deinit(&got);
	buf_deinit(&want);
}

/* threads share one parsed key */
struct thread_arg {
	const struct sign_key *key;
	const char *want;
	int	 bad;
};

static void *
thread_main(void *p)
{
	struct thread_arg *a = p;
	struct cfg c = { SIGN_CANON_RELAXED, SIGN_CANON_RELAXED, true, NULL,
	    0, NULL, 0 };
	char *v, *err = NULL;
	int i;

	for (i = 0; i < 40; i++) {
		v = ours(a->key, "rsa", msgs[0].text, &c,
		    (size_t)(i % 5), &err);
		if (v == NULL || strcmp(v, a->want) != 0)
			a->bad++;
		free(v);
		free(err);
		err = NULL;
	}
	return NULL;
}

static void
test_threads(void)
{
	static const char *const files[] = { "rsa2048.pem", "ed25519.pem" };
	struct cfg c = { SIGN_CANON_RELAXED, SIGN_CANON_RELAXED, true, NULL,
	    0, NULL, 0 };
	struct thread_arg args[4];
	pthread_t tid[4];
	struct sign_key *key;
	char *want, *err = NULL;
	size_t f;
	int i, bad;

	for (f = 0; f < 2; f++) {
		key = load(files[f]);
		want = ours(key, "rsa", msgs[0].text, &c, 0, &err);
		for (i = 0; i < 4; i++) {
			args[i].key = key;
			args[i].want = want != NULL ? want : "";
			args[i].bad = 0;
			pthread_create(&tid[i], NULL, thread_main, &args[i]);
		}
		for (bad = 0, i = 0; i < 4; i++) {
			pthread_join(tid[i], NULL);
			bad += args[i].bad;
		}
		is_int(bad, 0, "%s: 4 threads x 40 signatures with one key, "
		    "all identical", files[f]);
		free(want);
		sign_key_free(&key);
	}
}

/* DKIM_SIGN_LOOPS=N: N signatures per key type, time per signature */
static void
loops(long n)
{
	static const char *const files[] = { "rsa2048.pem", "ed25519.pem" };
	struct cfg c = { SIGN_CANON_RELAXED, SIGN_CANON_RELAXED, true, NULL,
	    0, NULL, 0 };
	struct timeval t0, t1;
	struct sign_key *key;
	char *v, *err = NULL;
	long i, fails;
	size_t f;
	double us;

	for (f = 0; f < 2; f++) {
		key = load(files[f]);
		fails = 0;
		gettimeofday(&t0, NULL);
		for (i = 0; i < n; i++) {
			v = ours(key, "rsa", msgs[0].text, &c, 0, &err);
			if (v == NULL)
				fails++;
			free(v);
			free(err);
			err = NULL;
		}
		gettimeofday(&t1, NULL);
		us = ((double)(t1.tv_sec - t0.tv_sec) * 1e6 +
		    (double)(t1.tv_usec - t0.tv_usec)) / (double)n;
		printf("# %s: %ld signatures, %.1f us per signature "
		    "(key parsed once)\n", files[f], n, us);
		is_int(fails, 0, "%s: %ld signatures in a loop", files[f], n);
		sign_key_free(&key);
	}
}

int
main(void)
{
	const char *srcdir = getenv("srcdir"), *lp;
	char rel[4096], *abs, *rec;
	FILE *f;

	snprintf(rel, sizeof(rel), "%s/t/unit/data/dkim",
	    srcdir != NULL ? srcdir : ".");
	if ((abs = realpath(rel, NULL)) == NULL) {
		printf("Bail out! cannot find %s\n", rel);
		return 1;
	}
	snprintf(keydir, sizeof(keydir), "%s", abs);
	free(abs);

	/* the key records, as libopendkim's DKIM_QUERY_FILE reads them */
	snprintf(keysfile, sizeof(keysfile), "/tmp/test_dkim_sign.%ld.keys",
	    (long)getpid());
	if ((f = fopen(keysfile, "w")) == NULL) {
		printf("Bail out! %s\n", keysfile);
		return 1;
	}
	struct sign_key *rsa = load("rsa2048.pem"), *ed = load("ed25519.pem");
	if (rsa == NULL || ed == NULL) {
		printf("Bail out! test keys\n");
		return 1;
	}
	rec = sign_key_dns_record(rsa);
	fprintf(f, "rsa._domainkey.example.test %s\n", rec);
	free(rec);
	rec = sign_key_dns_record(ed);
	fprintf(f, "ed._domainkey.example.test %s\n", rec);
	free(rec);
	fclose(f);
	sign_key_free(&rsa);
	sign_key_free(&ed);

	test_default_headers();
	test_keys();
	test_vs_libopendkim();
	test_vs_libopendkim_options();
	test_ed25519();
	test_tamper();
	test_chunking();
	test_sign_errors();
	test_threads();
	if ((lp = getenv("DKIM_SIGN_LOOPS")) != NULL && atol(lp) > 0)
		loops(atol(lp));
	unlink(keysfile);
	return done_testing();
}

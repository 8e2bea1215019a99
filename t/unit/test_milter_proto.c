/*
 * test_milter_proto.c - unit tests of filters/milter_proto.c: byte-exact
 * packets for every command, the reply parser on every reply (whole,
 * split at every byte boundary, byte by byte, truncated, oversized,
 * garbage), the option negotiation decision and the mapping of
 * modifications to filter edits.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "milter_proto.h"
#include "tap.h"
#include "xmalloc.h"

/* esc - printable form of bytes for diagnostics and summaries */
static char *
esc(const void *data, size_t n)
{
	const unsigned char *p = data;
	struct buf b;
	size_t i;

	buf_init(&b, 0);
	buf_append(&b, "", 0);
	for (i = 0; i < n; i++) {
		if (p[i] == '\r')
			buf_append_str(&b, "\\r");
		else if (p[i] == '\n')
			buf_append_str(&b, "\\n");
		else if (p[i] == '\t')
			buf_append_str(&b, "\\t");
		else if (p[i] < 0x20 || p[i] >= 0x7f || p[i] == '\\')
			buf_printf(&b, "\\x%02x", p[i]);
		else
			buf_append(&b, &p[i], 1);
	}
	return buf_steal(&b);
}

/* --- packet builders --------------------------------------------------- */

static const struct milter_macro connect_macros[] = {
	{ "j", "mx.example.test" },
	{ "daemon_name", "postern" },
	{ "{daemon_addr}", "127.0.0.1" },
	{ "v", "Postern" },
	{ "_", "client.example [127.0.0.1]" },
	{ "undefined", NULL },
};

static const struct milter_macro mail_macros[] = {
	{ "i", "4XyZ" },
	{ "auth_type", "PLAIN" },
	{ "auth_authen", "alice" },
	{ "mail_addr", "alice@example.org" },
};

static const char *const mail_args[] = { "SIZE=100", "BODY=8BITMIME" };
static char big_chunk[MILTER_CHUNK_SIZE + 1];

static int
b_optneg(struct buf *b, const char **e)
{
	return milter_pkt_optneg(b, 6, MILTER_ACT_ALL, MILTER_P_ALL, e);
}

static int
b_macros_connect(struct buf *b, const char **e)
{
	return milter_pkt_macros(b, 'C', connect_macros, 6, NULL, e);
}

static int
b_macros_wanted(struct buf *b, const char **e)
{
	return milter_pkt_macros(b, 'M', mail_macros, 4,
	    "{auth_type} i", e);
}

static int
b_macros_none(struct buf *b, const char **e)
{
	return milter_pkt_macros(b, 'M', mail_macros, 4, "{rcpt_addr}", e);
}

static int
b_connect4(struct buf *b, const char **e)
{
	return milter_pkt_connect(b, "client.example", '4', 25, "127.0.0.1",
	    e);
}

static int
b_connect6(struct buf *b, const char **e)
{
	return milter_pkt_connect(b, "[::1]", '6', 587, "::1", e);
}

static int
b_connectu(struct buf *b, const char **e)
{
	return milter_pkt_connect(b, "localhost", 'U', 0, NULL, e);
}

static int
b_connect_bad(struct buf *b, const char **e)
{
	return milter_pkt_connect(b, "x", 'X', 0, "1", e);
}

static int
b_helo(struct buf *b, const char **e)
{
	return milter_pkt_helo(b, "client.example", e);
}

static int
b_mail(struct buf *b, const char **e)
{
	return milter_pkt_envelope(b, 'M', "alice@example.org", mail_args, 2,
	    e);
}

static int
b_mail_null(struct buf *b, const char **e)
{
	return milter_pkt_envelope(b, 'M', "", NULL, 0, e);
}

static int
b_rcpt(struct buf *b, const char **e)
{
	return milter_pkt_envelope(b, 'R', "<bob@example.net>", NULL, 0, e);
}

static int
b_envelope_bad(struct buf *b, const char **e)
{
	return milter_pkt_envelope(b, 'H', "x", NULL, 0, e);
}

static int
b_header(struct buf *b, const char **e)
{
	return milter_pkt_header(b, "Subject", " hello", false, e);
}

static int
b_header_leadspc(struct buf *b, const char **e)
{
	return milter_pkt_header(b, "Subject", " hello", true, e);
}

static int
b_header_folded(struct buf *b, const char **e)
{
	return milter_pkt_header(b, "To", " a@x,\r\n\tb@y,\n c@z", false, e);
}

static int
b_header_nospace(struct buf *b, const char **e)
{
	return milter_pkt_header(b, "X-A", "v", false, e);
}

static int
b_header_twospaces(struct buf *b, const char **e)
{
	return milter_pkt_header(b, "X-A", "  v", false, e);
}

static int
b_body(struct buf *b, const char **e)
{
	return milter_pkt_body(b, "line 1\r\n\0x\r\n", 12, e);
}

static int
b_body_max(struct buf *b, const char **e)
{
	int rc = milter_pkt_body(b, big_chunk, MILTER_CHUNK_SIZE, e);

	/* keep the expected bytes short: compare the first 8 only */
	if (rc == 0)
		b->len = 8;
	return rc;
}

static int
b_body_over(struct buf *b, const char **e)
{
	return milter_pkt_body(b, big_chunk, MILTER_CHUNK_SIZE + 1, e);
}

static int
b_unknown(struct buf *b, const char **e)
{
	return milter_pkt_unknown(b, "VRFY bob", e);
}

#define SIMPLE(c, fn)							\
static int								\
fn(struct buf *b, const char **e)					\
{									\
	return milter_pkt_simple(b, c, e);				\
}
SIMPLE('T', b_data)
SIMPLE('N', b_eoh)
SIMPLE('E', b_eob)
SIMPLE('A', b_abort)
SIMPLE('Q', b_quit)
SIMPLE('K', b_quit_nc)
SIMPLE('X', b_simple_bad)
SIMPLE('\0', b_simple_nul)

static int
b_capped(struct buf *b, const char **e)
{
	int rc;

	b->max = 20;
	buf_append(b, "keep", 4);
	rc = milter_pkt_optneg(b, 6, 1, 2, e);
	return rc;
}

#define D(s)	s, sizeof(s) - 1
static const struct {
	const char *name;
	int	(*build)(struct buf *, const char **);
	int	 want_rc;
	const char *want;	/* the whole packet, or the error */
	size_t	 want_len;
} build_cases[] = {
	{ "O negotiate", b_optneg, 0,
	    D("\0\0\0\x0d" "O" "\0\0\0\6" "\0\0\x01\xff" "\0\x1f\xff\xff") },
	{ "D connect macros, braces for long names", b_macros_connect, 0,
	    D("\0\0\0\x69" "D" "C" "j\0mx.example.test\0"
	    "{daemon_name}\0postern\0" "{daemon_addr}\0" "127.0.0.1\0"
	    "v\0Postern\0" "_\0client.example [127.0.0.1]\0") },
	{ "D only the setsymlist names", b_macros_wanted, 0,
	    D("\0\0\0\x1b" "D" "M" "i\0" "4XyZ\0{auth_type}\0PLAIN\0") },
	{ "D nothing to send: no packet", b_macros_none, 0, D("") },
	{ "C inet", b_connect4, 0,
	    D("\0\0\0\x1d" "C" "client.example\0" "4" "\0\x19"
	    "127.0.0.1\0") },
	{ "C inet6", b_connect6, 0,
	    D("\0\0\0\x0e" "C" "[::1]\0" "6" "\x02\x4b" "::1\0") },
	{ "C unknown family: no port, no address", b_connectu, 0,
	    D("\0\0\0\x0c" "C" "localhost\0" "U") },
	{ "C bad family", b_connect_bad, -1,
	    D("unknown address family for milter connect") },
	{ "H", b_helo, 0, D("\0\0\0\x10" "H" "client.example\0") },
	{ "M with ESMTP args", b_mail, 0,
	    D("\0\0\0\x2c" "M" "<alice@example.org>\0" "SIZE=100\0"
	    "BODY=8BITMIME\0") },
	{ "M null sender", b_mail_null, 0, D("\0\0\0\4" "M" "<>\0") },
	{ "R brackets kept", b_rcpt, 0,
	    D("\0\0\0\x13" "R" "<bob@example.net>\0") },
	{ "envelope with a wrong command", b_envelope_bad, -1,
	    D("not an envelope command") },
	{ "L one space dropped", b_header, 0,
	    D("\0\0\0\x0f" "L" "Subject\0hello\0") },
	{ "L HDR_LEADSPC keeps it", b_header_leadspc, 0,
	    D("\0\0\0\x10" "L" "Subject\0 hello\0") },
	{ "L folding as LF", b_header_folded, 0,
	    D("\0\0\0\x14" "L" "To\0a@x,\n\tb@y,\n c@z\0") },
	{ "L no space to drop", b_header_nospace, 0,
	    D("\0\0\0\x07" "L" "X-A\0v\0") },
	{ "L only one space dropped", b_header_twospaces, 0,
	    D("\0\0\0\x08" "L" "X-A\0 v\0") },
	{ "B chunk with a NUL byte", b_body, 0,
	    D("\0\0\0\x0d" "B" "line 1\r\n\0x\r\n") },
	{ "B 65535 bytes", b_body_max, 0, D("\0\1\0\0" "Bxxx") },
	{ "B 65536 bytes refused", b_body_over, -1,
	    D("body chunk larger than 65535 bytes") },
	{ "U", b_unknown, 0, D("\0\0\0\x0a" "U" "VRFY bob\0") },
	{ "T", b_data, 0, D("\0\0\0\1T") },
	{ "N", b_eoh, 0, D("\0\0\0\1N") },
	{ "E", b_eob, 0, D("\0\0\0\1E") },
	{ "A", b_abort, 0, D("\0\0\0\1A") },
	{ "Q", b_quit, 0, D("\0\0\0\1Q") },
	{ "K", b_quit_nc, 0, D("\0\0\0\1K") },
	{ "simple with data command refused", b_simple_bad, -1,
	    D("not a milter command without data") },
	{ "simple with NUL refused", b_simple_nul, -1,
	    D("not a milter command without data") },
	{ "cap reached: buffer unchanged", b_capped, -1,
	    D("milter output buffer full") },
};

static void
test_builders(void)
{
	size_t i;
	struct buf b;
	const char *err;
	char *got, *want;
	int rc;

	memset(big_chunk, 'x', sizeof(big_chunk));
	for (i = 0; i < sizeof(build_cases) / sizeof(*build_cases); i++) {
		buf_init(&b, 0);
		err = NULL;
		rc = build_cases[i].build(&b, &err);
		is_int(rc, build_cases[i].want_rc, "build %s: rc",
		    build_cases[i].name);
		if (rc == 0)
			got = esc(b.data == NULL ? "" : b.data, b.len);
		else
			got = xstrdup(err == NULL ? "(no error)" : err);
		want = esc(build_cases[i].want, build_cases[i].want_len);
		if (rc != 0)
			want = (free(want), xstrdup(build_cases[i].want));
		is_str(got, want, "build %s: bytes", build_cases[i].name);
		if (build_cases[i].build == b_capped)
			is_str(buf_cstr(&b), "keep", "build %s: kept",
			    build_cases[i].name);
		free(got);
		free(want);
		buf_deinit(&b);
	}
}

/* --- reply parser ------------------------------------------------------ */

/* summary - one line for a parsed reply */
static char *
summary(const struct milter_reply *r)
{
	struct buf b;
	char *s;
	size_t i;

	buf_init(&b, 0);
	buf_printf(&b, "%c", r->code);
	if (r->code == 'O') {
		buf_printf(&b, " v=%u a=0x%x p=0x%x", r->version, r->actions,
		    r->protocol);
		for (i = 0; i < MILTER_MACROS_COUNT; i++)
			if (r->symlist[i] != NULL)
				buf_printf(&b, " l%zu=[%s]", i, r->symlist[i]);
	}
	if (r->code == 'i' || r->code == 'm')
		buf_printf(&b, " %u", r->index);
	if (r->name != NULL) {
		s = esc(r->name, strlen(r->name));
		buf_printf(&b, " %s=", s);
		free(s);
	}
	if (r->value != NULL) {
		s = esc(r->value, strlen(r->value));
		buf_printf(&b, "%s%s", r->name != NULL ? "" : " ", s);
		free(s);
	}
	if (r->args != NULL)
		buf_printf(&b, " [%s]", r->args);
	if (r->data != NULL) {
		s = esc(r->data, r->len);
		buf_printf(&b, " %zu %s", r->len, s);
		free(s);
	}
	return buf_steal(&b);
}

/* the packets of the parser cases: the length field is added by pkt() */
#define P(code, data)	code, data, sizeof(data) - 1
static const struct {
	const char *name;
	char	 code;
	const char *data;
	size_t	 len;
	const char *want;	/* summary, or the error */
	int	 want_rc;
} parse_cases[] = {
	{ "continue", P('c', ""), "c", 1 },
	{ "accept", P('a', ""), "a", 1 },
	{ "reject", P('r', ""), "r", 1 },
	{ "tempfail", P('t', ""), "t", 1 },
	{ "discard", P('d', ""), "d", 1 },
	{ "skip", P('s', ""), "s", 1 },
	{ "progress", P('p', ""), "p", 1 },
	{ "conn_fail", P('f', ""), "f", 1 },
	{ "shutdown", P('4', ""), "4", 1 },
	{ "optneg as opendkim answers", P('O',
	    "\0\0\0\6" "\0\0\x01\x11" "\0\x10\x07\x02"),
	    "O v=6 a=0x111 p=0x100702", 1 },
	{ "optneg with macro lists", P('O',
	    "\0\0\0\6" "\0\0\x01\x11" "\0\x10\x07\x02"
	    "\0\0\0\2" "{auth_authen} i {mail_addr}\0"
	    "\0\0\0\6" "i {daemon_name} {auth_type}\0"),
	    "O v=6 a=0x111 p=0x100702 l2=[{auth_authen} i {mail_addr}] "
	    "l6=[i {daemon_name} {auth_type}]", 1 },
	{ "replycode with %%", P('y', "550 5.7.1 100%% spam\0"),
	    "y 550 5.7.1 100% spam", 1 },
	{ "replycode multi-line", P('y', "421-4.7.0 a\r\n421 4.7.0 b\0"),
	    "y 421-4.7.0 a\\r\\n421 4.7.0 b", 1 },
	{ "replycode bare", P('y', "451\0"), "y 451", 1 },
	{ "addheader", P('h', "X-Test\0 hi there\0"), "h X-Test= hi there",
	    1 },
	{ "insheader", P('i', "\0\0\0\0" "DKIM-Signature\0"
	    " v=1; a=rsa-sha256;\n\ts=sel\0"),
	    "i 0 DKIM-Signature= v=1; a=rsa-sha256;\\n\\ts=sel", 1 },
	{ "chgheader delete", P('m', "\0\0\0\2" "Subject\0\0"),
	    "m 2 Subject=", 1 },
	{ "replbody", P('b', "new\0body\r\n"), "b 10 new\\x00body\\r\\n", 1 },
	{ "replbody empty", P('b', ""), "b 0 ", 1 },
	{ "chgfrom", P('e', "<a@b.example>\0"), "e <a@b.example>", 1 },
	{ "chgfrom with args", P('e', "<a@b.example>\0SIZE=10\0"),
	    "e <a@b.example> [SIZE=10]", 1 },
	{ "addrcpt", P('+', "<r@x.example>\0"), "+ <r@x.example>", 1 },
	{ "addrcpt_par", P('2', "<r@x.example>\0NOTIFY=NEVER\0"),
	    "2 <r@x.example> [NOTIFY=NEVER]", 1 },
	{ "delrcpt", P('-', "<r@x.example>\0"), "- <r@x.example>", 1 },
	{ "quarantine", P('q', "looks like spam\0"), "q looks like spam",
	    1 },
	/* malformed */
	{ "unknown code", P('Z', ""), "unknown milter reply code", -1 },
	{ "setsymlist is no reply", P('l', ""), "unknown milter reply code",
	    -1 },
	{ "continue with data", P('c', "x"),
	    "extra data after a milter reply", -1 },
	{ "replycode unterminated", P('y', "550 5.7.1 x"),
	    "unterminated reply code", -1 },
	{ "replycode 250", P('y', "250 ok\0"), "reply code not 4xx or 5xx",
	    -1 },
	{ "replycode short", P('y', "55\0"), "reply code not 4xx or 5xx",
	    -1 },
	{ "replycode no space", P('y', "550x\0"),
	    "reply code not 4xx or 5xx", -1 },
	{ "replycode two strings", P('y', "550 x\0y\0"),
	    "extra data after a milter reply", -1 },
	{ "addheader one string", P('h', "X-Test\0"),
	    "unterminated header edit", -1 },
	{ "addheader empty name", P('h', "\0v\0"),
	    "header edit without a name", -1 },
	{ "insheader short index", P('i', "\0\0\0"),
	    "header edit without an index", -1 },
	{ "chgheader extra", P('m', "\0\0\0\1" "A\0b\0c"),
	    "extra data after a milter reply", -1 },
	{ "optneg short", P('O', "\0\0\0\6\0\0\0\1"),
	    "short option negotiation reply", -1 },
	{ "optneg unknown stage", P('O', "\0\0\0\6\0\0\0\1\0\0\0\1"
	    "\0\0\0\7" "i\0"), "macro list for an unknown stage", -1 },
	{ "optneg stage twice", P('O', "\0\0\0\6\0\0\0\1\0\0\0\1"
	    "\0\0\0\1" "i\0" "\0\0\0\1" "j\0"),
	    "two macro lists for one stage", -1 },
	{ "optneg list unterminated", P('O', "\0\0\0\6\0\0\0\1\0\0\0\1"
	    "\0\0\0\1" "i"), "unterminated macro list in negotiation", -1 },
	{ "optneg truncated stage", P('O', "\0\0\0\6\0\0\0\1\0\0\0\1\0\0"),
	    "truncated macro list in negotiation", -1 },
	{ "chgfrom three strings", P('e', "<a@b>\0x\0y\0"),
	    "extra data after a milter reply", -1 },
	{ "chgfrom unterminated args", P('e', "<a@b>\0x"),
	    "unterminated ESMTP arguments", -1 },
	{ "addrcpt with args", P('+', "<a@b>\0x\0"),
	    "extra data after a milter reply", -1 },
	{ "delrcpt unterminated", P('-', "<a@b>"), "unterminated address",
	    -1 },
	{ "quarantine unterminated", P('q', "x"),
	    "unterminated quarantine reason", -1 },
};

/* pkt - length field + code + data, as the milter sends it */
static char *
pkt(char code, const char *data, size_t len, size_t *n_r)
{
	char *p = xmalloc(len + 5);
	uint32_t l = (uint32_t)len + 1;

	p[0] = (char)(l >> 24);
	p[1] = (char)(l >> 16);
	p[2] = (char)(l >> 8);
	p[3] = (char)l;
	p[4] = code;
	memcpy(p + 5, data, len);
	*n_r = len + 5;
	return p;
}

/*
 * parse_split - feed p[0..k), then the rest; the reply must come only
 * with the last byte. Returns the summary or "ERR: ..." (caller frees).
 */
static char *
parse_split(const char *p, size_t n, size_t k, const char **why)
{
	struct milter_reader rd;
	struct milter_reply r;
	const char *err = NULL;
	char *s = NULL;
	int rc;

	*why = NULL;
	milter_reader_init(&rd, 0);
	if (milter_reader_feed(&rd, p, k, &err) == -1)
		goto fail;
	rc = milter_reader_next(&rd, &r, &err);
	if (rc == -1)
		goto fail;
	if (rc == 1 && k < n) {
		*why = "reply before the last byte";
		milter_reply_deinit(&r);
		goto out;
	}
	if (rc == 0) {
		if (milter_reader_feed(&rd, p + k, n - k, &err) == -1)
			goto fail;
		rc = milter_reader_next(&rd, &r, &err);
		if (rc == -1)
			goto fail;
		if (rc == 0) {
			*why = "no reply after the last byte";
			goto out;
		}
	}
	s = summary(&r);
	milter_reply_deinit(&r);
	if (milter_reader_pending(&rd) != 0 ||
	    milter_reader_next(&rd, &r, &err) != 0)
		*why = "bytes left after the reply";
	goto out;
fail:
	s = xasprintf("ERR: %s", err);
out:
	milter_reader_deinit(&rd);
	return s;
}

/* parse_bytewise - one byte at a time, a reply or error at the end only */
static char *
parse_bytewise(const char *p, size_t n)
{
	struct milter_reader rd;
	struct milter_reply r;
	const char *err = NULL;
	char *s = NULL;
	size_t i;
	int rc = 0;

	milter_reader_init(&rd, 0);
	for (i = 0; i < n && rc == 0; i++) {
		if (milter_reader_feed(&rd, p + i, 1, &err) == -1) {
			rc = -1;
			break;
		}
		rc = milter_reader_next(&rd, &r, &err);
	}
	if (rc == 1) {
		s = summary(&r);
		milter_reply_deinit(&r);
		if (i != n)
			s = (free(s), xstrdup("reply before the last byte"));
	} else if (rc == -1)
		s = xasprintf("ERR: %s", err);
	else
		s = xstrdup("no reply");
	milter_reader_deinit(&rd);
	return s;
}

static void
test_parser(void)
{
	size_t i, k, n;
	char *p, *got, *want, *first_bad;
	const char *why;
	bool all;

	for (i = 0; i < sizeof(parse_cases) / sizeof(*parse_cases); i++) {
		p = pkt(parse_cases[i].code, parse_cases[i].data,
		    parse_cases[i].len, &n);
		want = parse_cases[i].want_rc == 1 ?
		    xstrdup(parse_cases[i].want) :
		    xasprintf("ERR: %s", parse_cases[i].want);
		got = parse_split(p, n, n, &why);
		is_str(got, want, "parse %s: whole", parse_cases[i].name);
		if (why != NULL)
			printf("#   %s\n", why);
		free(got);
		/* the same at every split point */
		all = true;
		first_bad = NULL;
		for (k = 0; k <= n && all; k++) {
			got = parse_split(p, n, k, &why);
			if (strcmp(got, want) != 0 || why != NULL) {
				all = false;
				first_bad = xasprintf("split at %zu: got "
				    "\"%s\" (%s), want \"%s\"", k, got,
				    why ? why : "-", want);
			}
			free(got);
		}
		ok(all, "parse %s: split at every byte", parse_cases[i].name);
		if (first_bad != NULL)
			printf("#   %s\n", first_bad);
		free(first_bad);
		got = parse_bytewise(p, n);
		is_str(got, want, "parse %s: byte by byte",
		    parse_cases[i].name);
		free(got);
		free(want);
		free(p);
	}
}

/* two packets in one read, then a truncated third */
static void
test_stream(void)
{
	struct milter_reader rd;
	struct milter_reply r;
	const char *err = NULL;
	char *s;
	int rc;

	milter_reader_init(&rd, 0);
	milter_reader_feed(&rd, "\0\0\0\1p\0\0\0\1c\0\0\0\x05y5", 16, &err);
	rc = milter_reader_next(&rd, &r, &err);
	s = summary(&r);
	is_str(rc == 1 ? s : "none", "p", "stream: first packet");
	free(s);
	milter_reply_deinit(&r);
	rc = milter_reader_next(&rd, &r, &err);
	s = summary(&r);
	is_str(rc == 1 ? s : "none", "c", "stream: second packet");
	free(s);
	milter_reply_deinit(&r);
	is_int(milter_reader_next(&rd, &r, &err), 0,
	    "stream: truncated third: need more");
	is_int(milter_reader_pending(&rd), 6, "stream: third kept");
	milter_reader_deinit(&rd);
}

static const struct {
	const char *name;
	size_t	 max;		/* reader limit, 0: default */
	const char *head;	/* the length field and what follows */
	size_t	 head_len;
	const char *want;	/* error, or NULL: need more */
} limit_cases[] = {
	{ "zero length", 0, D("\0\0\0\0"),
	    "milter packet without a command" },
	{ "2 GB refused from the length alone", 0, D("\x7f\xff\xff\xff"),
	    "milter packet larger than the limit" },
	{ "4 GB refused", 0, D("\xff\xff\xff\xff"),
	    "milter packet larger than the limit" },
	{ "limit + 1 refused", 0, D("\0\x10\0\1b"),
	    "milter packet larger than the limit" },
	{ "limit itself waits for data", 0, D("\0\x10\0\0b"), NULL },
	{ "small limit", 16, D("\0\0\0\x11h"),
	    "milter packet larger than the limit" },
};

static void
test_limits(void)
{
	struct milter_reader rd;
	struct milter_reply r;
	const char *err;
	char *big;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(limit_cases) / sizeof(*limit_cases); i++) {
		milter_reader_init(&rd, limit_cases[i].max);
		err = NULL;
		milter_reader_feed(&rd, limit_cases[i].head,
		    limit_cases[i].head_len, &err);
		rc = milter_reader_next(&rd, &r, &err);
		if (limit_cases[i].want == NULL)
			is_int(rc, 0, "limit %s: need more",
			    limit_cases[i].name);
		else
			is_str(rc == -1 ? err : "(no error)",
			    limit_cases[i].want, "limit %s",
			    limit_cases[i].name);
		/* an error is final, even if good bytes follow */
		if (rc == -1) {
			rc = milter_reader_feed(&rd, "\0\0\0\1c", 5, &err);
			is_int(rc, -1, "limit %s: feed after error refused",
			    limit_cases[i].name);
			is_int(milter_reader_next(&rd, &r, &err), -1,
			    "limit %s: sticky", limit_cases[i].name);
		}
		milter_reader_deinit(&rd);
	}

	/* a 1 MB body replacement packet is fine, fed in 64 KB reads */
	milter_reader_init(&rd, 0);
	big = xcalloc(1, MILTER_MAX_PACKET + 4);
	memcpy(big, "\0\x10\0\0b", 5);
	rc = 0;
	for (i = 0; i < MILTER_MAX_PACKET + 4 && rc == 0; i += 65536) {
		size_t n = MILTER_MAX_PACKET + 4 - i;

		if (n > 65536)
			n = 65536;
		if (milter_reader_feed(&rd, big + i, n, &err) == -1)
			rc = -1;
		else
			rc = milter_reader_next(&rd, &r, &err);
	}
	is_int(rc, 1, "limit: 1 MB replbody accepted");
	if (rc == 1)
		is_int(r.len, MILTER_MAX_PACKET - 1, "limit: 1 MB body length");
	else
		ok(0, "limit: 1 MB body length");
	milter_reply_deinit(&r);
	/* feeding more than the slack without draining is refused */
	is_int(milter_reader_feed(&rd, big, MILTER_MAX_PACKET, &err), 0,
	    "limit: feed up to the cap");
	is_int(milter_reader_feed(&rd, big, MILTER_READ_SLACK + 8, &err), -1,
	    "limit: feed past the cap refused");
	free(big);
	milter_reader_deinit(&rd);
}

/* random bytes, some with plausible headers: never a crash */
static void
test_garbage(void)
{
	struct milter_reader rd;
	struct milter_reply r;
	unsigned char buf[96];
	const char *err;
	size_t i, j, n, replies = 0, errors = 0;
	unsigned seed = 4;
	int rc;
	bool sane = true;

	for (i = 0; i < 20000; i++) {
		n = (size_t)(rand_r(&seed) % sizeof(buf));
		for (j = 0; j < n; j++)
			buf[j] = (unsigned char)rand_r(&seed);
		if (n >= 5 && i % 2 == 0) {
			/* a length that fits, a code from the alphabet */
			buf[0] = buf[1] = buf[2] = 0;
			buf[3] = (unsigned char)(n - 4 - (size_t)(i % 3));
			buf[4] = (unsigned char)"Ocartdyspf4himbe+2-q"
			    [rand_r(&seed) % 20];
		}
		milter_reader_init(&rd, 64);
		err = NULL;
		milter_reader_feed(&rd, buf, n, &err);
		while ((rc = milter_reader_next(&rd, &r, &err)) == 1) {
			replies++;
			if (r.code == '\0')
				sane = false;
			milter_reply_deinit(&r);
		}
		if (rc == -1) {
			errors++;
			if (err == NULL)
				sane = false;
		}
		if (milter_reader_pending(&rd) > n)
			sane = false;
		milter_reader_deinit(&rd);
	}
	ok(sane && replies > 0 && errors > 0,
	    "garbage: 20000 random inputs (%zu replies, %zu errors)",
	    replies, errors);
}

/* --- negotiation ------------------------------------------------------- */

/* neg_summary - which commands go, which get replies, what is allowed */
static char *
neg_summary(const struct milter_neg *neg)
{
	const char *cmds = "CHMRTLNBUEDAQK", *codes = "himbe+2-qs";
	char sends[16], replies[16], allows[16];
	size_t i;

	for (i = 0; cmds[i] != '\0'; i++) {
		sends[i] = milter_neg_sends(neg, cmds[i]) ? cmds[i] : '-';
		replies[i] = milter_neg_expects_reply(neg, cmds[i]) ?
		    cmds[i] : '-';
	}
	sends[i] = replies[i] = '\0';
	for (i = 0; codes[i] != '\0'; i++)
		allows[i] = milter_neg_allows(neg, codes[i]) ? codes[i] : '-';
	allows[i] = '\0';
	return xasprintf("v=%u send=%s reply=%s allow=%s mail=%s", neg->version,
	    sends, replies, allows,
	    milter_neg_macros(neg, MILTER_MACROS_MAIL) ?
	    milter_neg_macros(neg, MILTER_MACROS_MAIL) : "(ours)");
}

static const struct {
	const char *name;
	char	 code;
	uint32_t version, actions, protocol;
	const char *mail_list;
	uint32_t our_actions;
	const char *want;	/* summary or error */
	int	 want_rc;
} neg_cases[] = {
	{ "opendkim", 'O', 6, 0x111, 0x100702, NULL, MILTER_ACT_ALL,
	    "v=6 send=C-MR-LNB-EDAQK reply=CHMRTLNBUE---- "
	    "allow=him------s mail=(ours)", 0 },
	{ "everything, no replies", 'O', 6, MILTER_ACT_ALL,
	    MILTER_P_NR_CONN | MILTER_P_NR_HELO | MILTER_P_NR_MAIL |
	    MILTER_P_NR_RCPT | MILTER_P_NR_DATA | MILTER_P_NR_HDR |
	    MILTER_P_NR_EOH | MILTER_P_NR_BODY | MILTER_P_NR_UNKN, NULL,
	    MILTER_ACT_ALL,
	    "v=6 send=CHMRTLNBUEDAQK reply=---------E---- "
	    "allow=himbe+2-q- mail=(ours)", 0 },
	{ "version 2: no DATA, no UNKNOWN", 'O', 2, 0x3, 0, NULL,
	    MILTER_ACT_ALL,
	    "v=2 send=CHMR-LNB-EDAQK reply=CHMRTLNBUE---- "
	    "allow=hi-b------ mail=(ours)", 0 },
	{ "version 3: UNKNOWN", 'O', 3, 0, MILTER_P_NOCONNECT, NULL,
	    MILTER_ACT_ALL,
	    "v=3 send=-HMR-LNBUEDAQK reply=CHMRTLNBUE---- "
	    "allow=---------- mail=(ours)", 0 },
	{ "internal bits ignored", 'O', 6, 0, 0x10000000 | MILTER_P_NOBODY,
	    NULL, MILTER_ACT_ALL,
	    "v=6 send=CHMRTLN-UEDAQK reply=CHMRTLNBUE---- "
	    "allow=---------- mail=(ours)", 0 },
	{ "macro list", 'O', 6, MILTER_ACT_SETSYMLIST, 0,
	    "{auth_authen} i", MILTER_ACT_ALL,
	    "v=6 send=CHMRTLNBUEDAQK reply=CHMRTLNBUE---- "
	    "allow=---------- mail={auth_authen} i", 0 },
	{ "macro list without SETSYMLIST", 'O', 6, 0, 0, "i",
	    MILTER_ACT_ALL, "milter sets macro lists without SETSYMLIST",
	    -1 },
	{ "version 7", 'O', 7, 0, 0, NULL, MILTER_ACT_ALL,
	    "milter protocol version not supported", -1 },
	{ "version 1", 'O', 1, 0, 0, NULL, MILTER_ACT_ALL,
	    "milter protocol version not supported", -1 },
	{ "actions not offered", 'O', 6, MILTER_ACT_ADDHDRS |
	    MILTER_ACT_CHGBODY, 0, NULL, MILTER_ACT_ADDHDRS,
	    "milter asks for actions we did not offer", -1 },
	{ "unknown action bit", 'O', 6, 0x200, 0, NULL, MILTER_ACT_ALL,
	    "milter asks for actions we did not offer", -1 },
	{ "unknown protocol bit", 'O', 6, 0, 0x200000, NULL, MILTER_ACT_ALL,
	    "milter asks for protocol steps we did not offer", -1 },
	{ "not an O", 'c', 6, 0, 0, NULL, MILTER_ACT_ALL,
	    "milter did not answer the option negotiation", -1 },
};

static void
test_negotiation(void)
{
	struct milter_reply r;
	struct milter_neg neg;
	const char *err;
	char *got;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(neg_cases) / sizeof(*neg_cases); i++) {
		milter_reply_init(&r);
		r.code = neg_cases[i].code;
		r.version = neg_cases[i].version;
		r.actions = neg_cases[i].actions;
		r.protocol = neg_cases[i].protocol;
		if (neg_cases[i].mail_list != NULL)
			r.symlist[MILTER_MACROS_MAIL] =
			    xstrdup(neg_cases[i].mail_list);
		err = NULL;
		rc = milter_negotiate(&r, MILTER_VERSION,
		    neg_cases[i].our_actions, MILTER_P_ALL, &neg, &err);
		got = rc == 0 ? neg_summary(&neg) :
		    xstrdup(err ? err : "(no error)");
		is_int(rc, neg_cases[i].want_rc, "negotiate %s: rc",
		    neg_cases[i].name);
		is_str(got, neg_cases[i].want, "negotiate %s",
		    neg_cases[i].name);
		free(got);
		milter_neg_deinit(&neg);
		milter_reply_deinit(&r);
	}
}

/* --- modifications to edits -------------------------------------------- */

struct mod {
	char	 code;
	uint32_t index;
	const char *name, *value, *args;
	const char *data;
	size_t	 len;
};

static const char *const kind_names[] = {
	"ADD", "INSERT", "CHANGE", "FROM", "ADDRCPT", "DELRCPT", "BODY",
};

static char *
edits_summary(const struct filter_edits *e)
{
	const struct filter_edit *ed;
	struct buf b;
	char *v;

	buf_init(&b, 0);
	buf_append(&b, "", 0);
	for (ed = e->head; ed != NULL; ed = ed->next) {
		v = ed->value ? esc(ed->value, strlen(ed->value)) : NULL;
		buf_printf(&b, "%s%s %zu %s=%s", b.len ? " | " : "",
		    kind_names[ed->kind], ed->index, ed->name ? ed->name : "",
		    v ? v : "(null)");
		if (ed->args != NULL)
			buf_printf(&b, " [%s]", ed->args);
		free(v);
	}
	return buf_steal(&b);
}

#define DKIM_VALUE " v=1; a=rsa-sha256; d=example.org;\n\ts=sel; b=abc"
static const struct {
	const char *name;
	bool	 leadspc;
	size_t	 max_body;
	struct mod mods[4];
	const char *want;	/* edits summary, or the error */
	int	 want_rc;
} map_cases[] = {
	{ "opendkim signature, HDR_LEADSPC", true, 0,
	    { { 'i', 0, "DKIM-Signature", DKIM_VALUE, NULL, NULL, 0 } },
	    "INSERT 0 DKIM-Signature=v=1; a=rsa-sha256; d=example.org;"
	    "\\r\\n\\ts=sel; b=abc", 0 },
	{ "addheader without HDR_LEADSPC", false, 0,
	    { { 'h', 0, "X-A", "b c", NULL, NULL, 0 } },
	    "ADD 0 X-A=b c", 0 },
	{ "HDR_LEADSPC value without space", true, 0,
	    { { 'h', 0, "X-A", "b", NULL, NULL, 0 } },
	    "ADD 0 X-A=b", 0 },
	{ "CRLF folding kept", false, 0,
	    { { 'h', 0, "X-A", "a\r\n\tb\n c", NULL, NULL, 0 } },
	    "ADD 0 X-A=a\\r\\n\\tb\\r\\n c", 0 },
	{ "chgheader index 0 is 1; empty deletes", false, 0,
	    { { 'm', 0, "Subject", "", NULL, NULL, 0 },
	      { 'm', 3, "Received", "new", NULL, NULL, 0 } },
	    "CHANGE 1 Subject=(null) | CHANGE 3 Received=new", 0 },
	{ "envelope edits", false, 0,
	    { { 'e', 0, NULL, "<new@example.org>", NULL, NULL, 0 },
	      { '+', 0, NULL, "<add@example.net>", NULL, NULL, 0 },
	      { '-', 0, NULL, "<bob@example.net>", NULL, NULL, 0 },
	      { 'q', 0, NULL, "spam", NULL, NULL, 0 } },
	    "FROM 0 =new@example.org | ADDRCPT 0 =add@example.net | "
	    "DELRCPT 0 =bob@example.net", 0 },
	{ "null sender", false, 0,
	    { { 'e', 0, NULL, "<>", NULL, NULL, 0 } }, "FROM 0 =", 0 },
	{ "addrcpt_par args kept", false, 0,
	    { { '2', 0, NULL, "<add@example.net>",
	    "NOTIFY=NEVER ORCPT=rfc822;x@y", NULL, 0 } },
	    "ADDRCPT 0 =add@example.net [NOTIFY=NEVER ORCPT=rfc822;x@y]", 0 },
	{ "chgfrom args kept", false, 0,
	    { { 'e', 0, NULL, "a@b.example", "RET=HDRS", NULL, 0 } },
	    "FROM 0 =a@b.example [RET=HDRS]", 0 },
	{ "empty args are none", false, 0,
	    { { '2', 0, NULL, "<add@example.net>", "", NULL, 0 } },
	    "ADDRCPT 0 =add@example.net", 0 },
	{ "empty recipient", false, 0,
	    { { '+', 0, NULL, "<>", NULL, NULL, 0 } },
	    "empty recipient address in a milter edit", -1 },
	{ "body in chunks, CR LF split, bare LF", false, 0,
	    { { 'b', 0, NULL, NULL, NULL, "a\r", 2 },
	      { 'b', 0, NULL, NULL, NULL, "\nb\n", 3 },
	      { 'h', 0, "X-A", "1", NULL, NULL, 0 } },
	    "ADD 0 X-A=1 | BODY 0 =a\\r\\nb\\r\\n", 0 },
	{ "empty body", false, 0,
	    { { 'b', 0, NULL, NULL, NULL, "", 0 } }, "BODY 0 =", 0 },
	{ "body in two runs", false, 0,
	    { { 'b', 0, NULL, NULL, NULL, "a", 1 },
	      { 'h', 0, "X-A", "1", NULL, NULL, 0 },
	      { 'b', 0, NULL, NULL, NULL, "b", 1 } },
	    "replacement body in two runs", -1 },
	{ "NUL in body", false, 0,
	    { { 'b', 0, NULL, NULL, NULL, "a\0b", 3 } },
	    "NUL byte in the replacement body", -1 },
	{ "body over the cap (LF grows it)", false, 4,
	    { { 'b', 0, NULL, NULL, NULL, "ab\n", 3 },
	      { 'b', 0, NULL, NULL, NULL, "\n", 1 } },
	    "replacement body too large", -1 },
	{ "not a modification", false, 0,
	    { { 'c', 0, NULL, NULL, NULL, NULL, 0 } },
	    "not a milter modification", -1 },
};

static void
test_edit_map(void)
{
	struct filter_edits edits;
	struct milter_edit_map m;
	struct milter_reply r;
	const char *err;
	char *got;
	size_t i, j;
	int rc;

	for (i = 0; i < sizeof(map_cases) / sizeof(*map_cases); i++) {
		filter_edits_init(&edits);
		milter_edit_map_init(&m, &edits, map_cases[i].leadspc,
		    map_cases[i].max_body);
		rc = 0;
		err = NULL;
		for (j = 0; j < 4 && map_cases[i].mods[j].code != '\0' &&
		    rc == 0; j++) {
			const struct mod *md = &map_cases[i].mods[j];

			milter_reply_init(&r);
			r.code = md->code;
			r.index = md->index;
			r.name = md->name ? xstrdup(md->name) : NULL;
			r.value = md->value ? xstrdup(md->value) : NULL;
			r.args = md->args ? xstrdup(md->args) : NULL;
			if (md->data != NULL) {
				r.data = xmalloc(md->len + 1);
				memcpy(r.data, md->data, md->len);
				r.data[md->len] = '\0';
				r.len = md->len;
			}
			rc = milter_edit_map_add(&m, &r, &err);
			milter_reply_deinit(&r);
		}
		if (rc == 0)
			milter_edit_map_finish(&m);
		got = rc == 0 ? edits_summary(&edits) :
		    xstrdup(err ? err : "(no error)");
		is_int(rc, map_cases[i].want_rc, "map %s: rc",
		    map_cases[i].name);
		is_str(got, map_cases[i].want, "map %s", map_cases[i].name);
		free(got);
		milter_edit_map_deinit(&m);
		filter_edits_deinit(&edits);
	}
}

int
main(void)
{
	test_builders();
	test_parser();
	test_stream();
	test_limits();
	test_garbage();
	test_negotiation();
	test_edit_map();
	return done_testing();
}

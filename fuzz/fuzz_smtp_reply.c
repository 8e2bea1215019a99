/*
 * fuzz_smtp_reply.c - libFuzzer target for the SMTP client's reply
 * parser (daemon/smtp_client.c): everything a next-hop server sends us
 * goes through it, so nothing it sends may crash the delivery agent.
 *
 * The input is a server's output stream. It is read two ways, which
 * must agree reply for reply:
 *   - as deliver_smtp.c reads it: lines cut by libevent's
 *     evbuffer_search_eol(EVBUFFER_EOL_CRLF), fed one at a time to
 *     smtp_reply_add_line();
 *   - whole replies at a time with smtp_reply_parse().
 * Each complete reply must then satisfy: a code in 200..599, 1 to
 * SMTP_REPLY_LINES_MAX lines, an enhanced code that is empty or of the
 * reply's class (RFC 3463), a one-line smtp_reply_flatten() of printable
 * ASCII beginning with the code, an smtp_reply_dsn() of the form
 * "c.s.d" with c the reply class; smtp_ehlo_parse() must survive it.
 * Finally smtp_xtext_encode() (RFC 3461 4) of the input must be valid
 * xtext that decodes back to the input.
 *
 * Build for libFuzzer (see fuzz/README.md):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. -Idaemon \
 *     -Iconfig fuzz/fuzz_smtp_reply.c daemon/smtp_client.c \
 *     daemon/buf.c daemon/xmalloc.c daemon/log.c -o fuzz_smtp_reply \
 *     -levent
 * or with -DFUZZ_STANDALONE (any compiler) as a program that runs the
 * files named on its command line, or stdin, as inputs.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "buf.h"
#include "smtp_client.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* digits - length of the run of 1 to 3 digits at s, or 0 */
static size_t
digits(const char *s)
{
	size_t n = 0;

	while (n < 4 && isdigit((unsigned char)s[n]))
		n++;
	return n >= 1 && n <= 3 ? n : 0;
}

/* check_status - "c.s.d" with c the class digit, RFC 3463 2 */
static void
check_status(const char *s, int class)
{
	size_t n;

	if (s[0] != '0' + class || s[1] != '.')
		abort();
	s += 2;
	if ((n = digits(s)) == 0 || s[n] != '.')
		abort();
	s += n + 1;
	if ((n = digits(s)) == 0 || s[n] != '\0')
		abort();
}

/* check_reply - properties of a complete reply; appends it to log */
static void
check_reply(const struct smtp_reply *r, struct buf *log)
{
	struct smtp_ext ext;
	char dsn[16], code[8];
	char *flat;
	size_t i;

	if (r->code < 200 || r->code > 599 || r->nlines == 0 ||
	    r->nlines > SMTP_REPLY_LINES_MAX ||
	    r->text.len > SMTP_REPLY_LINE_MAX * SMTP_REPLY_LINES_MAX)
		abort();
	if (memchr(r->esc, '\0', sizeof(r->esc)) == NULL)
		abort();
	if (r->esc[0] != '\0')
		check_status(r->esc, r->code / 100);

	flat = smtp_reply_flatten(r);
	snprintf(code, sizeof(code), "%d", r->code);
	if (strncmp(flat, code, 3) != 0 || (flat[3] != '\0' &&
	    flat[3] != ' '))
		abort();
	for (i = 0; flat[i] != '\0'; i++)
		if (flat[i] < 0x20 || flat[i] > 0x7e)
			abort();

	smtp_reply_dsn(r, NULL, dsn);
	check_status(dsn, r->code / 100);
	smtp_reply_dsn(r, "7.1", dsn);
	check_status(dsn, r->code / 100);

	smtp_ehlo_parse(r, &ext);
	if (ext.size_max != 0 && !(ext.flags & SMTP_EXT_SIZE))
		abort();

	buf_printf(log, "R %d %s %zu %s", r->code, r->esc, r->nlines, flat);
	buf_append(log, "", 1);
	free(flat);
}

/*
 * read_like_transport - the loop of deliver_smtp.c session_read(),
 * without the network: libevent cuts the lines, add_line parses them.
 */
static void
read_like_transport(const uint8_t *data, size_t size, struct buf *log)
{
	struct evbuffer *in;
	struct evbuffer_ptr eol;
	struct smtp_reply r;
	const char *err;
	size_t len, eol_len;
	int rc;

	if ((in = evbuffer_new()) == NULL)
		abort();
	evbuffer_add(in, data, size);
	smtp_reply_init(&r);
	for (;;) {
		eol = evbuffer_search_eol(in, NULL, &eol_len,
		    EVBUFFER_EOL_CRLF);
		if (eol.pos == -1)
			break;		/* incomplete: the transport waits */
		len = (size_t)eol.pos;
		err = NULL;
		rc = smtp_reply_add_line(&r,
		    (const char *)evbuffer_pullup(in, (ssize_t)(len +
		    eol_len)), len, &err);
		evbuffer_drain(in, len + eol_len);
		if (rc == -1) {
			if (err == NULL)
				abort();
			buf_append(log, "E", 2);
			break;
		}
		if (rc == 1) {
			check_reply(&r, log);
			smtp_reply_reset(&r);
		} else if (rc != 0)
			abort();
	}
	smtp_reply_deinit(&r);
	evbuffer_free(in);
}

/* read_whole - smtp_reply_parse() one reply at a time */
static void
read_whole(const uint8_t *data, size_t size, struct buf *log)
{
	const char *p = (const char *)data, *err;
	struct smtp_reply r;
	size_t off = 0, used;
	int rc;

	smtp_reply_init(&r);
	while (off < size) {
		err = NULL;
		used = 0;
		rc = smtp_reply_parse(&r, p + off, size - off, &used, &err);
		if (rc == 0)
			break;
		if (rc == -1) {
			if (err == NULL)
				abort();
			buf_append(log, "E", 2);
			break;
		}
		if (rc != 1 || used == 0 || used > size - off ||
		    p[off + used - 1] != '\n')
			abort();
		check_reply(&r, log);
		off += used;
	}
	smtp_reply_deinit(&r);
}

/* xtext_check - s encoded is RFC 3461 4 xtext that decodes back to s */
static void
xtext_check(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	struct buf b;
	const char *e;
	size_t i, o = 0;
	const char *h1, *h2;

	buf_init(&b, 0);
	smtp_xtext_encode(&b, s);
	e = buf_cstr(&b);
	for (i = 0; i < b.len; i++, o++) {
		if ((unsigned char)e[i] < 33 || (unsigned char)e[i] > 126 ||
		    e[i] == '=')
			abort();
		if (e[i] != '+') {
			if (s[o] != e[i])
				abort();
			continue;
		}
		if (i + 2 >= b.len || (h1 = strchr(hex, e[i + 1])) == NULL ||
		    (h2 = strchr(hex, e[i + 2])) == NULL || e[i + 1] == '\0' ||
		    e[i + 2] == '\0' ||
		    (unsigned char)s[o] != ((h1 - hex) << 4 | (h2 - hex)))
			abort();
		i += 2;
	}
	if (s[o] != '\0')
		abort();
	buf_deinit(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf a, b;
	size_t whole;
	char *s;

	/*
	 * Compare on the complete lines only: the two readers give up on
	 * an unfinished overlong line at lengths one byte apart, which is
	 * harmless (both drop the connection) but not comparable.
	 */
	for (whole = size; whole > 0 && data[whole - 1] != '\n'; whole--)
		;
	buf_init(&a, 0);
	buf_init(&b, 0);
	read_like_transport(data, whole, &a);
	read_whole(data, whole, &b);
	if (a.len != b.len || memcmp(buf_cstr(&a), buf_cstr(&b), a.len) != 0)
		abort();
	buf_reset(&b);
	if (whole < size)
		read_whole(data, size, &b);
	buf_deinit(&a);
	buf_deinit(&b);

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	if (size > 0)
		memcpy(s, data, size);
	s[size] = '\0';
	xtext_check(s);
	free(s);
	return 0;
}

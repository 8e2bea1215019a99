/*
 * fuzz_smtp_data.c - libFuzzer target for the DATA/BDAT content reader
 * (daemon/smtp_data.c), the code that stands between a client's message
 * bytes and both the spool and the command parser (SMTP smuggling).
 *
 * Input layout: byte 0 selects the mode (bit 0: DATA or BDAT), a limit
 * profile (bits 1-2) and a failing body sink (bit 3, failing after
 * byte 1 & 7 calls); byte 1 seeds the chunk sizes; the rest is content.
 * The content is fed in pseudo-random chunk sizes, so that every split
 * of a CR LF pair or of ".\r\n" across reads is tried.
 *
 * Besides "no crash, no leak" it checks, against a small reference
 * model written here from RFC 5321 2.3.8 and 4.5.2:
 *   - how many bytes are consumed, whatever the chunking: DATA stops
 *     right after the first "." line, and at the first bare CR or LF;
 *   - after SMTP_DATA_BARE_EOL (and after done) nothing more is consumed;
 *   - done implies that the consumed bytes end with "\r\n.\r\n" or are
 *     ".\r\n"; BDAT is never done;
 *   - the sink only ever receives lines ending in CRLF, and nothing at
 *     all once an error is recorded;
 *   - the header block never exceeds header_size_limit;
 *   - d->size is the unstuffed size, and without limits the header block
 *     plus the body is the unstuffed content (minus the separator line);
 *   - BDAT LAST (smtp_data_finish) refuses a content exactly when it
 *     does not end in CRLF.
 * A second pass checks the SMTP client's dot-stuffer (smtp_client.c)
 * against this reader: stuffing then unstuffing a CRLF message gives it
 * back unchanged.
 *
 * Build for libFuzzer (see fuzz/README.md):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. -Idaemon \
 *     -Iconfig fuzz/fuzz_smtp_data.c daemon/smtp_data.c \
 *     daemon/smtp_client.c daemon/buf.c daemon/xmalloc.c daemon/log.c \
 *     -o fuzz_smtp_data -levent
 * or with -DFUZZ_STANDALONE (any compiler) as a program that runs the
 * files named on its command line, or stdin, as inputs.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "buf.h"
#include "smtp_client.h"
#include "smtp_data.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* the limit profiles of byte 0, bits 1-2 (0 in a field means none) */
static const struct smtp_data_limits profiles[4] = {
	{ 0, 0, 0, 0, 0 },
	{ 256, 16, 64, 3, 2 },
	{ 4096, 78, 998, 20, 5 },
	{ 0, 1, 0, 0, 0 },
};

struct sink_state {
	const struct smtp_data *d;	/* borrowed: the reader */
	struct buf out;			/* what the sink accepted */
	bool	 failing;		/* fail every call from fail_after */
	size_t	 fail_after;
	size_t	 calls;
	bool	 failed;		/* returned -1 at least once */
};

/* sink - the body sink: records, checks, and fails on request */
static int
sink(void *arg, const char *p, size_t n)
{
	struct sink_state *s = arg;
	size_t i;

	/* nothing is stored once the content is refused */
	if (s->d->error != SMTP_DATA_OK)
		abort();
	for (i = 0; i < n; i++) {
		/* a line's text has no CR or LF; its end is the CRLF */
		if (p[i] == '\r' && !(n == 2 && i == 0 && p[1] == '\n'))
			abort();
		if (p[i] == '\n' && !(n == 2 && i == 1))
			abort();
	}
	if (s->failing && s->calls++ >= s->fail_after) {
		s->failed = true;
		return -1;
	}
	buf_append(&s->out, p, n);
	return 0;
}

/* prng - xorshift32, so the chunking is a function of the input */
static uint32_t
prng(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

/* expected reader behaviour, computed without chunking */
struct model {
	size_t	 consumed;
	bool	 done;
	bool	 bare_eol;
	struct buf unstuffed;	/* complete lines, unstuffed, CRLF ends */
};

/* model_run - RFC 5321 2.3.8 and 4.5.2 on the whole content at once */
static void
model_run(struct model *m, enum smtp_data_mode mode, const char *s,
    size_t len)
{
	size_t ls = 0, j;

	memset(m, 0, sizeof(*m));
	buf_init(&m->unstuffed, 0);
	for (;;) {
		for (j = ls; j < len && s[j] != '\r' && s[j] != '\n'; j++)
			;
		if (j == len) {			/* partial line or CR pending */
			m->consumed = len;
			return;
		}
		if (s[j] == '\n') {		/* bare LF: not consumed */
			m->consumed = j;
			m->bare_eol = true;
			return;
		}
		if (j + 1 == len) {		/* CR at the end: wait */
			m->consumed = len;
			return;
		}
		if (s[j + 1] != '\n') {		/* bare CR: consumed */
			m->consumed = j + 1;
			m->bare_eol = true;
			return;
		}
		if (mode == SMTP_DATA_DOT && j - ls == 1 && s[ls] == '.') {
			m->consumed = j + 2;
			m->done = true;
			return;
		}
		if (mode == SMTP_DATA_DOT && j > ls && s[ls] == '.')
			buf_append(&m->unstuffed, s + ls + 1, j - ls - 1);
		else
			buf_append(&m->unstuffed, s + ls, j - ls);
		buf_append(&m->unstuffed, "\r\n", 2);
		ls = j + 2;
	}
}

/* split_ok - is want the header block, maybe a separator, then body */
static bool
split_ok(const struct buf *want, const struct buf *h, const struct buf *b)
{
	const char *w = buf_cstr(want), *hp = buf_cstr(h), *bp = buf_cstr(b);

	if (want->len == h->len + b->len)
		return memcmp(w, hp, h->len) == 0 &&
		    memcmp(w + h->len, bp, b->len) == 0;
	if (want->len == h->len + 2 + b->len)
		return memcmp(w, hp, h->len) == 0 &&
		    memcmp(w + h->len, "\r\n", 2) == 0 &&
		    memcmp(w + h->len + 2, bp, b->len) == 0;
	return false;
}

/* run_reader - feed content in chunks and check every property */
static void
run_reader(uint8_t flags, uint8_t seed, const char *s, size_t len)
{
	enum smtp_data_mode mode = (flags & 1) ? SMTP_DATA_CHUNK :
	    SMTP_DATA_DOT;
	const struct smtp_data_limits *lim = &profiles[(flags >> 1) & 3];
	struct smtp_data d;
	struct sink_state ss;
	struct model m;
	uint32_t x = 0x9e3779b9u ^ seed;
	size_t pos = 0, chunk, used;
	bool complete;

	memset(&ss, 0, sizeof(ss));
	buf_init(&ss.out, 0);
	ss.d = &d;
	ss.failing = (flags & 8) != 0;
	ss.fail_after = seed & 7;
	smtp_data_init(&d, mode, lim, sink, &ss);
	model_run(&m, mode, s, len);

	while (pos < len) {
		/* mostly short reads, now and then a long one */
		chunk = (prng(&x) & 7) == 0 ? 1 + prng(&x) % 4096 :
		    1 + prng(&x) % 7;
		if (chunk > len - pos)
			chunk = len - pos;
		used = smtp_data_feed(&d, s + pos, chunk);
		if (used > chunk)
			abort();
		pos += used;
		if (d.limits.max_header != 0 &&
		    d.headers.len > d.limits.max_header)
			abort();
		if (!ss.failed && ss.out.len > 0 &&
		    (ss.out.len < 2 ||
		    memcmp(buf_cstr(&ss.out) + ss.out.len - 2, "\r\n", 2) != 0))
			abort();
		if (d.done || d.error == SMTP_DATA_BARE_EOL) {
			/* stopped for good: nothing more is taken */
			if (pos < len && smtp_data_feed(&d, s + pos,
			    len - pos) != 0)
				abort();
			break;
		}
		if (used < chunk)	/* stops early only for those two */
			abort();
	}

	if (pos != m.consumed || d.done != m.done ||
	    (d.error == SMTP_DATA_BARE_EOL) != m.bare_eol)
		abort();
	if (mode == SMTP_DATA_CHUNK && d.done)
		abort();
	if (d.done && !(pos == 3 && memcmp(s, ".\r\n", 3) == 0) &&
	    !(pos >= 5 && memcmp(s + pos - 5, "\r\n.\r\n", 5) == 0))
		abort();
	/*
	 * the size counts every byte of complete lines, stored or dropped;
	 * an unfinished overlong line is counted as it comes, the model
	 * counts only complete lines
	 */
	if (!d.line_overflow && d.size != m.unstuffed.len)
		abort();
	if (lim->max_size == 0 && lim->max_line == 0 &&
	    lim->max_header == 0 && lim->max_header_count == 0 &&
	    lim->max_hops == 0 && !ss.failing &&
	    (d.error != SMTP_DATA_OK) != m.bare_eol)
		abort();
	if (d.error == SMTP_DATA_OK && !split_ok(&m.unstuffed, &d.headers,
	    &ss.out))
		abort();

	if (mode == SMTP_DATA_CHUNK) {
		/* BDAT LAST: the content must end with a complete line */
		smtp_data_finish(&d);
		complete = len == 0 ||
		    (len >= 2 && memcmp(s + len - 2, "\r\n", 2) == 0);
		if (!m.bare_eol && complete != (d.error != SMTP_DATA_BARE_EOL))
			abort();
	}
	smtp_data_deinit(&d);
	buf_deinit(&ss.out);
	buf_deinit(&m.unstuffed);
}

/*
 * run_dot_roundtrip - make a CRLF message of the content (CR dropped,
 * LF turned into CRLF), stuff it as the SMTP client does, read it back
 * as the server does: same header block and body, nothing left over.
 */
static void
run_dot_roundtrip(uint8_t seed, const char *s, size_t len)
{
	const struct smtp_data_limits none = { 0, 0, 0, 0, 0 };
	struct buf msg;
	struct smtp_dot dot;
	struct smtp_data d;
	struct sink_state ss;
	struct evbuffer *ev;
	unsigned char *wire;
	uint32_t x = 0x85ebca6bu ^ seed;
	size_t i, wlen, pos = 0, chunk, used;

	buf_init(&msg, 0);
	for (i = 0; i < len; i++) {
		if (s[i] == '\r')
			continue;
		if (s[i] == '\n')
			buf_append(&msg, "\r\n", 2);
		else
			buf_append(&msg, s + i, 1);
	}
	if ((ev = evbuffer_new()) == NULL)
		abort();
	/* the client stuffs in pieces too (the spool file is read in blocks) */
	smtp_dot_init(&dot);
	while (pos < msg.len) {
		chunk = 1 + prng(&x) % 64;
		if (chunk > msg.len - pos)
			chunk = msg.len - pos;
		smtp_dot_stuff(&dot, buf_cstr(&msg) + pos, chunk, ev);
		pos += chunk;
	}
	smtp_dot_end(&dot, ev);
	wlen = evbuffer_get_length(ev);
	if ((wire = evbuffer_pullup(ev, -1)) == NULL)
		abort();

	memset(&ss, 0, sizeof(ss));
	buf_init(&ss.out, 0);
	ss.d = &d;
	smtp_data_init(&d, SMTP_DATA_DOT, &none, sink, &ss);
	used = smtp_data_feed(&d, (const char *)wire, wlen);
	if (used != wlen || !d.done || d.error != SMTP_DATA_OK)
		abort();
	/* smtp_dot_end completes a last line that had no line end */
	if (msg.len > 0 && buf_cstr(&msg)[msg.len - 1] != '\n')
		buf_append(&msg, "\r\n", 2);
	if (!split_ok(&msg, &d.headers, &ss.out))
		abort();
	smtp_data_deinit(&d);
	buf_deinit(&ss.out);
	buf_deinit(&msg);
	evbuffer_free(ev);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t flags, seed;

	if (size < 2)
		return 0;
	flags = data[0];
	seed = data[1];
	run_reader(flags, seed, (const char *)data + 2, size - 2);
	run_dot_roundtrip(seed, (const char *)data + 2, size - 2);
	return 0;
}

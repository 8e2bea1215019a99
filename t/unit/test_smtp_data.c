/*
 * test_smtp_data.c - the DATA/BDAT content reader: terminator, dot
 * transparency, bare CR/LF (SMTP smuggling), limits, header/body split.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "smtp_data.h"
#include "tap.h"

static int
sink(void *arg, const char *p, size_t n)
{
	return buf_append(arg, p, n);
}

struct dot_case {
	const char *name;
	const char *input;
	size_t	 chunk;			/* feed in pieces of this size */
	enum smtp_data_error want_error;
	int	 want_done;
	const char *want_headers;
	const char *want_body;
	const char *want_rest;		/* bytes left unconsumed */
};

static const struct dot_case dot_cases[] = {
	{ "simple", "Subject: x\r\n\r\nhello\r\n.\r\n", 0, SMTP_DATA_OK, 1,
	    "Subject: x\r\n", "hello\r\n", "" },
	{ "pipelined command stays", "a: b\r\n\r\nx\r\n.\r\nQUIT\r\n", 0,
	    SMTP_DATA_OK, 1, "a: b\r\n", "x\r\n", "QUIT\r\n" },
	{ "byte by byte", "a: b\r\n\r\nx\r\n.\r\nQUIT\r\n", 1,
	    SMTP_DATA_OK, 1, "a: b\r\n", "x\r\n", "QUIT\r\n" },
	{ "dot unstuffing", "a: b\r\n\r\n..x\r\n..\r\n.\r\n", 0,
	    SMTP_DATA_OK, 1, "a: b\r\n", ".x\r\n.\r\n", "" },
	{ "folded header", "a: b\r\n c\r\nd: e\r\n\r\nbody\r\n.\r\n", 0,
	    SMTP_DATA_OK, 1, "a: b\r\n c\r\nd: e\r\n", "body\r\n", "" },
	{ "no separator", "a: b\r\nnot a header\r\n.\r\n", 0, SMTP_DATA_OK,
	    1, "a: b\r\n", "not a header\r\n", "" },
	{ "empty message", ".\r\n", 0, SMTP_DATA_OK, 1, "", "", "" },
	{ "LF.LF smuggling", "a: b\r\n\r\nx\n.\nMAIL FROM:<e@vil>\r\n", 0,
	    SMTP_DATA_BARE_EOL, 0, NULL, NULL, NULL },
	{ "LF.CRLF smuggling", "a: b\r\n\r\nx\n.\r\nMAIL FROM:<e>\r\n", 0,
	    SMTP_DATA_BARE_EOL, 0, NULL, NULL, NULL },
	{ "CRLF.LF smuggling", "a: b\r\n\r\nx\r\n.\nMAIL FROM:<e>\r\n", 0,
	    SMTP_DATA_BARE_EOL, 0, NULL, NULL, NULL },
	{ "CR.CR smuggling", "a: b\r\n\r\nx\r.\rMAIL FROM:<e>\r\n", 0,
	    SMTP_DATA_BARE_EOL, 0, NULL, NULL, NULL },
	{ "CR.CRLF smuggling", "a: b\r\n\r\nx\r.\r\nMAIL FROM:<e>\r\n", 0,
	    SMTP_DATA_BARE_EOL, 0, NULL, NULL, NULL },
	{ "bare CR mid line", "a: b\r\n\r\nx\ry\r\n.\r\n", 0,
	    SMTP_DATA_BARE_EOL, 0, NULL, NULL, NULL },
	{ "bare LF in header", "a: b\nc: d\r\n\r\n.\r\n", 0,
	    SMTP_DATA_BARE_EOL, 0, NULL, NULL, NULL },
	{ "bare CR split over chunks", "a: b\r\n\r\nx\r.\r\n", 1,
	    SMTP_DATA_BARE_EOL, 0, NULL, NULL, NULL },
	{ "dot not at line start", "a: b\r\n\r\nx.\r\n.\r\n", 0,
	    SMTP_DATA_OK, 1, "a: b\r\n", "x.\r\n", "" },
};

static void
test_dot(void)
{
	const struct smtp_data_limits lim = { 0, 1000, 10000, 100, 50 };
	struct smtp_data d;
	struct buf body;
	size_t i, off, n, len, step, used;

	for (i = 0; i < sizeof(dot_cases) / sizeof(*dot_cases); i++) {
		const struct dot_case *c = &dot_cases[i];

		buf_init(&body, 0);
		smtp_data_init(&d, SMTP_DATA_DOT, &lim, sink, &body);
		len = strlen(c->input);
		step = c->chunk == 0 ? len : c->chunk;
		for (off = 0; off < len && !d.done &&
		    d.error != SMTP_DATA_BARE_EOL; off += used) {
			n = len - off < step ? len - off : step;
			used = smtp_data_feed(&d, c->input + off, n);
			if (used < n) {
				off += used;
				break;
			}
		}
		is_int(d.error, c->want_error, "%s: error", c->name);
		is_int(d.done, c->want_done, "%s: done", c->name);
		if (c->want_headers != NULL) {
			is_str(buf_cstr(&d.headers), c->want_headers,
			    "%s: headers", c->name);
			is_str(buf_cstr(&body), c->want_body, "%s: body",
			    c->name);
			is_str(c->input + off, c->want_rest, "%s: rest",
			    c->name);
		}
		smtp_data_deinit(&d);
		buf_deinit(&body);
	}
}

static void
test_limits(void)
{
	struct smtp_data_limits lim = { 20, 1000, 10000, 100, 50 };
	struct smtp_data d;
	struct buf body;
	const char *big = "a: b\r\n\r\n0123456789012345678901234\r\n.\r\n";
	const char *longline = "a: b\r\n\r\n0123456789\r\n.\r\nNOOP\r\n";
	const char *hops;
	size_t used;

	buf_init(&body, 0);
	smtp_data_init(&d, SMTP_DATA_DOT, &lim, sink, &body);
	used = smtp_data_feed(&d, big, strlen(big));
	is_int(d.error, SMTP_DATA_TOO_BIG, "size limit: error");
	ok(d.done && used == strlen(big), "size limit: still reads to the "
	    "terminator");
	smtp_data_deinit(&d);
	buf_deinit(&body);

	lim.max_size = 0;
	lim.max_line = 5;
	buf_init(&body, 0);
	smtp_data_init(&d, SMTP_DATA_DOT, &lim, sink, &body);
	used = smtp_data_feed(&d, longline, strlen(longline));
	is_int(d.error, SMTP_DATA_LINE_TOO_LONG, "line limit: error");
	is_int(used, strlen(longline) - strlen("NOOP\r\n"),
	    "line limit: stops after the terminator");
	smtp_data_deinit(&d);
	buf_deinit(&body);

	lim.max_line = 1000;
	lim.max_hops = 2;
	buf_init(&body, 0);
	smtp_data_init(&d, SMTP_DATA_DOT, &lim, sink, &body);
	hops = "Received: a\r\nReceived: b\r\nreceived: c\r\n\r\n.\r\n";
	used = smtp_data_feed(&d, hops, strlen(hops));
	is_int(d.error, SMTP_DATA_TOO_MANY_HOPS, "hop limit");
	smtp_data_deinit(&d);
	buf_deinit(&body);
}

static void
test_chunk(void)
{
	const struct smtp_data_limits lim = { 0, 1000, 10000, 100, 50 };
	struct smtp_data d;
	struct buf body;

	buf_init(&body, 0);
	smtp_data_init(&d, SMTP_DATA_CHUNK, &lim, sink, &body);
	smtp_data_feed(&d, "a: b\r\n\r\n.x\r", 11);
	smtp_data_feed(&d, "\n.\r\n", 4);
	smtp_data_finish(&d);
	is_int(d.error, SMTP_DATA_OK, "bdat: ok");
	ok(!d.done, "bdat: a dot line does not end a chunk");
	is_str(buf_cstr(&body), ".x\r\n.\r\n", "bdat: no unstuffing");
	smtp_data_deinit(&d);
	buf_deinit(&body);

	buf_init(&body, 0);
	smtp_data_init(&d, SMTP_DATA_CHUNK, &lim, sink, &body);
	smtp_data_feed(&d, "a: b\r\n\r\nno newline", 18);
	smtp_data_finish(&d);
	is_int(d.error, SMTP_DATA_BARE_EOL, "bdat: unterminated last line");
	smtp_data_deinit(&d);
	buf_deinit(&body);
}

int
main(void)
{
	test_dot();
	test_limits();
	test_chunk();
	return done_testing();
}

/*
 * fuzz_mime.c - libFuzzer target for the streaming MIME parser
 * (filters/mime.c) and its decoders (filters/mime_decode.c), which read
 * every message body that content rules look at.
 *
 * Input layout: byte 0 gives the nesting limit (bits 0-3); byte 1 seeds
 * the chunk sizes; the rest is the top-level Content-Type value, an LF,
 * the Content-Transfer-Encoding value, an LF, then the body (without
 * either LF the whole rest is the body, with no Content-Type).
 *
 * Besides "no crash, no leak" it checks:
 *   - the callbacks see the same events whether the body comes whole
 *     or in pseudo-random chunks (1 to 4096 bytes, many tiny ones);
 *   - body lines hold no LF and are at most 64 KB; header texts hold no
 *     LF that is not followed by a space or tab (a fold), are at most
 *     100 KB, and do not start with white space; attachment types are
 *     lower case "type/subtype" and file names NUL-terminated text;
 *   - mime_decode_words and the parameter parser survive the raw input
 *     and give NULL or a string, and decoding is idempotent in length
 *     terms (never more than 3 bytes out per byte in).
 *
 * Build for libFuzzer (see fuzz/README.md):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. -Idaemon \
 *     -Ifilters fuzz/fuzz_mime.c filters/mime.c filters/mime_decode.c \
 *     daemon/buf.c daemon/xmalloc.c daemon/log.c -o fuzz_mime
 * and once more with -DMIME_LINE_MAX=64 -DMIME_HEADER_MAX=256
 * -DMIME_DECODE_MAX=1024, which makes inputs of a few KB reach every
 * limit (long-line pieces, header truncation, the decoding cap).
 * or with -DFUZZ_STANDALONE (any compiler) as a program that runs the
 * files named on its command line, or stdin, as inputs.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "mime.h"
#include "mime-private.h"

/*
 * The limits of mime.c, which the libFuzzer build may make small (with
 * the same -D flags for both files) so that inputs reach them.
 */
#ifndef MIME_LINE_MAX
#define MIME_LINE_MAX		65536
#endif
#ifndef MIME_HEADER_MAX
#define MIME_HEADER_MAX		102400
#endif

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

struct trace {
	struct buf	 events;	/* every event, length-prefixed */
};

static void
trace_add(struct trace *t, char kind, const char *s, size_t n)
{
	buf_append(&t->events, &kind, 1);
	buf_append(&t->events, &n, sizeof(n));
	buf_append(&t->events, s, n);
}

static void
on_header(void *arg, enum mime_header_class cls, const char *text,
    size_t len)
{
	size_t i;

	if (len == 0 || len > MIME_HEADER_MAX || text[len] != '\0' ||
	    text[0] == ' ' || text[0] == '\t')
		abort();
	for (i = 0; i < len; i++)
		if (text[i] == '\n' && (i + 1 == len ||
		    (text[i + 1] != ' ' && text[i + 1] != '\t')))
			abort();
	trace_add(arg, cls == MIME_HEADER_NESTED ? 'N' : 'H', text, len);
}

static void
on_body(void *arg, const char *line, size_t len, bool decoded)
{
	/* decoded lines may grow by charset conversion (U+FFFD: 3 bytes) */
	if (memchr(line, '\n', len) != NULL ||
	    len > (decoded ? 3 * MIME_LINE_MAX : MIME_LINE_MAX))
		abort();
	trace_add(arg, decoded ? 'D' : 'B', line, len);
}

static void
on_attachment(void *arg, const char *filename, const char *type)
{
	const char *p;

	if (type == NULL || (p = strchr(type, '/')) == NULL ||
	    p == type || p[1] == '\0')
		abort();
	for (p = type; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			abort();
	trace_add(arg, 'A', type, strlen(type));
	if (filename != NULL)
		trace_add(arg, 'F', filename, strlen(filename));
}

static uint32_t
prng(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

/* run - parse body in chunks (seed 0: whole) into t */
static void
run(struct trace *t, const char *ct, const char *cte, unsigned depth,
    const char *body, size_t len, uint32_t seed)
{
	struct mime_callbacks cb = { t, on_header, on_body, on_attachment };
	struct mime_parser *mp;
	uint32_t x = seed;
	size_t pos = 0, n;

	buf_init(&t->events, 0);
	mp = mime_parser_new(&cb, ct, cte, depth);
	while (pos < len) {
		if (seed == 0)
			n = len;
		else
			n = (prng(&x) & 3) == 0 ? 1 + prng(&x) % 4096 :
			    1 + prng(&x) % 5;
		if (n > len - pos)
			n = len - pos;
		mime_parser_feed(mp, body + pos, n);
		pos += n;
	}
	mime_parser_finish(mp);
	mime_parser_free(&mp);
	if (mp != NULL)
		abort();
}

/* check_value - the header value decoders on arbitrary text */
static void
check_value(const char *s, size_t len)
{
	static const char *const names[] = { "filename", "name", "boundary",
	    "charset" };
	char *v;
	size_t i;

	if ((v = mime_decode_words(s, len)) != NULL) {
		if (strlen(v) > 3 * len)
			abort();
		free(v);
	}
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if ((v = mime_param_get(s, len, names[i])) != NULL) {
			if (strlen(v) > 3 * len)
				abort();
			free(v);
		}
	}
	free(mime_value_type(s, len, true));
	free(mime_value_type(s, len, false));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct trace whole, chunked;
	const char *p, *end, *nl1, *nl2;
	char *ct = NULL, *cte = NULL;
	unsigned depth;
	uint32_t seed;

	if (size < 2)
		return 0;
	depth = data[0] & 15;
	seed = 0x9e3779b9u ^ data[1];
	p = (const char *)data + 2;
	end = (const char *)data + size;
	check_value(p, (size_t)(end - p));

	if ((nl1 = memchr(p, '\n', (size_t)(end - p))) != NULL &&
	    (nl2 = memchr(nl1 + 1, '\n', (size_t)(end - nl1 - 1))) != NULL) {
		ct = strndup(p, (size_t)(nl1 - p));
		cte = strndup(nl1 + 1, (size_t)(nl2 - nl1 - 1));
		if (ct == NULL || cte == NULL)
			abort();
		p = nl2 + 1;
	}
	run(&whole, ct, cte, depth, p, (size_t)(end - p), 0);
	run(&chunked, ct, cte, depth, p, (size_t)(end - p), seed);
	if (whole.events.len != chunked.events.len ||
	    memcmp(buf_cstr(&whole.events), buf_cstr(&chunked.events),
	    whole.events.len) != 0)
		abort();
	buf_deinit(&whole.events);
	buf_deinit(&chunked.events);
	free(ct);
	free(cte);
	return 0;
}

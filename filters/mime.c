/*
 * mime.c - the streaming MIME parser behind mime_header_checks,
 * nested_header_checks, body_checks and attachment rules.
 *
 * It reads a message body in chunks of any size, cuts it into lines
 * (CRLF, or a bare LF), and follows the MIME structure line by line:
 * multipart boundaries, the header block of each part, attached messages
 * (message/rfc822) whose headers and body are parsed in turn. It owns
 * its line, header and decode buffers and a stack of open multiparts and
 * attached messages; it owns no policy: what to do with a header, a line
 * or an attachment is the caller's (the regex filter's) business.
 *
 * Bounds, because all of this is untrusted input: a line is handled in
 * pieces of at most MIME_LINE_MAX bytes, a part header keeps at most
 * MIME_HEADER_MAX bytes, nesting is an explicit stack of at most
 * max_depth entries (no recursion on the input), and decoding stops after
 * MIME_DECODE_MAX bytes of output per part (the rest is given raw).
 *
 * Boundaries follow RFC 2046 5.1.1 ("--" boundary, "--" for the close,
 * transport padding ignored); when no boundary matches in that form, a
 * line that merely starts with one still counts, as in Postfix and mail
 * readers, so that trailing garbage cannot hide a part from the rules.
 * The decoders are in mime_decode.c. RFC 2045 (headers, encodings),
 * RFC 2046 5.1 (multipart), 5.2.1 (message/rfc822), RFC 2183
 * (Content-Disposition), RFC 2231 and RFC 2047 (names).
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "mime.h"
#include "mime-private.h"
#include "xmalloc.h"

/* the fuzz target builds with small limits, so that it reaches them */
#ifndef MIME_LINE_MAX
#define MIME_LINE_MAX		65536	/* a line piece */
#endif
#ifndef MIME_HEADER_MAX
#define MIME_HEADER_MAX		102400	/* a logical part header, as Postfix */
#endif
#ifndef MIME_DECODE_MAX
#define MIME_DECODE_MAX		(1024 * 1024)	/* decoded bytes per part */
#endif
#define MIME_BOUNDARY_MAX	256	/* RFC 2046 5.1.1 allows 70 */

enum mime_state {
	MIME_STATE_HEADERS,	/* a part's or an attached message's header */
	MIME_STATE_BODY,	/* body, preamble or epilogue lines */
};

enum mime_cte {
	MIME_CTE_RAW,		/* lines given as they are */
	MIME_CTE_QP,		/* text decoded from quoted-printable */
	MIME_CTE_BASE64,	/* text decoded from base64 */
};

enum mime_frame_kind {
	MIME_FRAME_MULTIPART,	/* ends at its closing boundary */
	MIME_FRAME_MESSAGE,	/* ends with the part that holds it */
};

struct mime_frame {
	enum mime_frame_kind kind;
	char	*boundary;	/* owned; multipart only */
	size_t	 boundary_len;
	bool	 is_digest;	/* parts default to message/rfc822 */
};

struct mime_parser {
	const struct mime_callbacks *cb; /* borrowed: outlives the parser */
	unsigned	 max_depth;
	struct mime_frame *frames;	/* owned: open multiparts, messages */
	unsigned	 depth;		/* frames in use */
	unsigned	 nframes;	/* frames allocated */
	bool		 finished;

	struct buf	 line;		/* the physical line being read */
	bool		 line_continued; /* line's start was given already */

	enum mime_state	 state;
	enum mime_header_class hdr_class;
	struct buf	 hdr;		/* the logical header being read */
	char		*h_type;	/* owned: first Content-Type value */
	char		*h_encoding;	/* owned: Content-Transfer-Encoding */
	char		*h_disposition;	/* owned: Content-Disposition */

	enum mime_cte	 cte;		/* of the current part's lines */
	struct mime_b64	 b64;
	struct mime_conv conv;		/* the part's charset to UTF-8 */
	struct buf	 dec;		/* decoded bytes of the current line */
	struct buf	 scratch;	/* one encoded line's decoded bytes */
	struct buf	 utf8;		/* one decoded line in UTF-8 */
	size_t		 decoded;	/* bytes given decoded in this part */
};

static void	mime_line(struct mime_parser *, const char *, size_t, bool,
		    bool);

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* emit_raw - a line as it is, to body_line */
static void
emit_raw(struct mime_parser *mp, const char *s, size_t n)
{
	if (mp->cb->body_line != NULL)
		mp->cb->body_line(mp->cb->arg, s, n, false);
}

/* leaf_stop - back to raw lines; pending decoded bytes are dropped */
static void
leaf_stop(struct mime_parser *mp)
{
	mp->cte = MIME_CTE_RAW;
	mime_conv_deinit(&mp->conv);
	mime_b64_init(&mp->b64);
	buf_reset(&mp->dec);
}

/* dec_emit - the decoded line so far, in UTF-8, to body_line */
static void
dec_emit(struct mime_parser *mp)
{
	buf_reset(&mp->utf8);
	mime_conv_append(&mp->conv, &mp->utf8, mp->dec.data, mp->dec.len);
	buf_reset(&mp->dec);
	if (mp->cb->body_line != NULL)
		mp->cb->body_line(mp->cb->arg, buf_cstr(&mp->utf8),
		    mp->utf8.len, true);
	/* bound the work a part can cause: raw lines from here on */
	mp->decoded += mp->utf8.len + 1;
	if (mp->decoded > MIME_DECODE_MAX)
		leaf_stop(mp);
}

/* dec_push - decoded bytes, cut into lines at LF (CR before it dropped) */
static void
dec_push(struct mime_parser *mp, const char *p, size_t n)
{
	const char *nl;
	size_t k;

	while (n > 0 && mp->cte != MIME_CTE_RAW) {
		nl = memchr(p, '\n', n);
		k = nl != NULL ? (size_t)(nl - p) : n;
		if (mp->dec.len + k > MIME_LINE_MAX) {
			k = MIME_LINE_MAX - mp->dec.len;
			buf_append(&mp->dec, p, k);
			dec_emit(mp);
			p += k;
			n -= k;
			continue;
		}
		buf_append(&mp->dec, p, k);
		if (nl == NULL)
			break;
		if (mp->dec.len > 0 && mp->dec.data[mp->dec.len - 1] == '\r')
			mp->dec.len--;
		dec_emit(mp);
		p += k + 1;
		n -= k + 1;
	}
}

/* leaf_begin - decode the lines of a text part */
static void
leaf_begin(struct mime_parser *mp, enum mime_cte cte, const char *charset)
{
	leaf_stop(mp);
	mp->cte = cte;
	mp->decoded = 0;
	mime_conv_init(&mp->conv, charset);
}

/* leaf_end - the part ends: give what is left of its decoded text */
static void
leaf_end(struct mime_parser *mp)
{
	if (mp->cte == MIME_CTE_BASE64) {
		buf_reset(&mp->scratch);
		mime_b64_flush(&mp->b64, &mp->scratch);
		dec_push(mp, mp->scratch.data, mp->scratch.len);
	}
	if (mp->cte != MIME_CTE_RAW && mp->dec.len > 0)
		dec_emit(mp);
	leaf_stop(mp);
}

/* push - open a multipart or an attached message; false when too deep */
static bool
push(struct mime_parser *mp, enum mime_frame_kind kind, char *boundary,
    bool is_digest)
{
	struct mime_frame *f;

	if (mp->depth >= mp->max_depth)
		return false;
	if (mp->depth == mp->nframes) {
		mp->nframes = mp->nframes == 0 ? 4 : mp->nframes * 2;
		if (mp->nframes > mp->max_depth)
			mp->nframes = mp->max_depth;
		mp->frames = xreallocarray(mp->frames, mp->nframes,
		    sizeof(*mp->frames));
	}
	f = &mp->frames[mp->depth++];
	f->kind = kind;
	f->boundary = boundary;
	f->boundary_len = boundary != NULL ? strlen(boundary) : 0;
	f->is_digest = is_digest;
	return true;
}

/* pop_to - close the frames above depth */
static void
pop_to(struct mime_parser *mp, unsigned depth)
{
	while (mp->depth > depth) {
		mp->depth--;
		free(mp->frames[mp->depth].boundary);
		mp->frames[mp->depth].boundary = NULL;
	}
}

/* cte_of - the transfer encodings we decode (RFC 2045 6.1) */
static enum mime_cte
cte_of(const char *enc)
{
	if (enc == NULL)
		return MIME_CTE_RAW;
	if (strcmp(enc, "quoted-printable") == 0)
		return MIME_CTE_QP;
	if (strcmp(enc, "base64") == 0)
		return MIME_CTE_BASE64;
	return MIME_CTE_RAW;
}

/*
 * is_attachment - what a mail reader offers to save or run: a part with
 * a file name or an attachment disposition, or any leaf part that is not
 * text (an application/x-msdownload part without a name is still an
 * executable)
 */
static bool
is_attachment(const char *type, const char *disp, const char *name)
{
	if (name != NULL || (disp != NULL && strcmp(disp, "attachment") == 0))
		return true;
	return strncmp(type, "text/", 5) != 0 &&
	    strncmp(type, "multipart/", 10) != 0 &&
	    strncmp(type, "message/", 8) != 0;
}

/*
 * part_begin - a part's header block has ended (or the top-level one,
 * given to mime_parser_new): announce an attachment, and set up what
 * its body is: a multipart, an attached message, decoded text or raw.
 */
static void
part_begin(struct mime_parser *mp, const char *ct, const char *cte,
    const char *cd, const char *default_type)
{
	char *type = NULL, *enc = NULL, *disp = NULL, *name = NULL;
	char *decoded, *boundary, *charset;
	enum mime_cte how;

	if (ct != NULL)
		type = mime_value_type(ct, strlen(ct), true);
	if (type == NULL)
		type = xstrdup(default_type);
	if (cte != NULL)
		enc = mime_value_type(cte, strlen(cte), false);
	if (cd != NULL) {
		disp = mime_value_type(cd, strlen(cd), false);
		name = mime_param_get(cd, strlen(cd), "filename");
	}
	if (name == NULL && ct != NULL)
		name = mime_param_get(ct, strlen(ct), "name");
	if (name != NULL &&
	    (decoded = mime_decode_words(name, strlen(name))) != NULL) {
		free(name);
		name = decoded;
	}
	if (name != NULL && name[0] == '\0') {
		free(name);
		name = NULL;
	}
	if (mp->cb->attachment != NULL && is_attachment(type, disp, name))
		mp->cb->attachment(mp->cb->arg, name, type);

	leaf_stop(mp);
	mp->state = MIME_STATE_BODY;
	how = cte_of(enc);
	if (strncmp(type, "multipart/", 10) == 0) {
		/* RFC 2046 5.1: the encoding of a multipart is meaningless */
		boundary = ct != NULL ?
		    mime_param_get(ct, strlen(ct), "boundary") : NULL;
		if (boundary == NULL || boundary[0] == '\0' ||
		    strlen(boundary) > MIME_BOUNDARY_MAX ||
		    !push(mp, MIME_FRAME_MULTIPART, boundary,
		    strcmp(type, "multipart/digest") == 0))
			free(boundary);
	} else if ((strcmp(type, "message/rfc822") == 0 ||
	    strcmp(type, "message/global") == 0) && how == MIME_CTE_RAW) {
		/* RFC 2046 5.2.1: only 7bit, 8bit or binary; else opaque */
		if (push(mp, MIME_FRAME_MESSAGE, NULL, false)) {
			mp->state = MIME_STATE_HEADERS;
			mp->hdr_class = MIME_HEADER_NESTED;
		}
	} else if (strncmp(type, "text/", 5) == 0 && how != MIME_CTE_RAW) {
		charset = ct != NULL ?
		    mime_param_get(ct, strlen(ct), "charset") : NULL;
		leaf_begin(mp, how, charset);
		free(charset);
	}
	free(type);
	free(enc);
	free(disp);
	free(name);
}

/* unfold - a header value without its line breaks, owned */
static char *
unfold(const char *s, size_t n)
{
	char *v = xmalloc(n + 1);
	size_t i, o = 0;

	for (i = 0; i < n; i++)
		if (s[i] != '\r' && s[i] != '\n')
			v[o++] = s[i];
	v[o] = '\0';
	return v;
}

/* capture - keep the first Content-Type, -Transfer-Encoding, -Disposition */
static void
capture(struct mime_parser *mp, const char *s, size_t n)
{
	static const struct {
		const char *name;
		size_t	 off;
	} fields[] = {
		{ "content-type", offsetof(struct mime_parser, h_type) },
		{ "content-transfer-encoding",
		  offsetof(struct mime_parser, h_encoding) },
		{ "content-disposition",
		  offsetof(struct mime_parser, h_disposition) },
	};
	const char *colon;
	char **field;
	size_t i, nlen;

	if ((colon = memchr(s, ':', n)) == NULL)
		return;
	for (nlen = (size_t)(colon - s); nlen > 0 && is_wsp(s[nlen - 1]);
	    nlen--)
		;
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (strlen(fields[i].name) != nlen ||
		    strncasecmp(s, fields[i].name, nlen) != 0)
			continue;
		field = (char **)((char *)mp + fields[i].off);
		if (*field == NULL)
			*field = unfold(colon + 1, n - (size_t)(colon + 1 - s));
	}
}

/* flush_header - give the logical header read so far */
static void
flush_header(struct mime_parser *mp)
{
	if (mp->hdr.len == 0)
		return;
	if (mp->cb->header != NULL)
		mp->cb->header(mp->cb->arg, mp->hdr_class, buf_cstr(&mp->hdr),
		    mp->hdr.len);
	capture(mp, mp->hdr.data, mp->hdr.len);
	buf_reset(&mp->hdr);
}

/* hdr_append - add to the logical header, silently cut at its limit */
static void
hdr_append(struct mime_parser *mp, const char *s, size_t n)
{
	if (n > MIME_HEADER_MAX - mp->hdr.len)
		n = MIME_HEADER_MAX - mp->hdr.len;
	buf_append(&mp->hdr, s, n);
}

/* end_headers - the header block is over: set up the body */
static void
end_headers(struct mime_parser *mp)
{
	const char *deflt = "text/plain";

	flush_header(mp);
	/* RFC 2046 5.1.5: in a digest, parts are messages by default */
	if (mp->hdr_class == MIME_HEADER_PART && mp->depth > 0 &&
	    mp->frames[mp->depth - 1].is_digest)
		deflt = "message/rfc822";
	part_begin(mp, mp->h_type, mp->h_encoding, mp->h_disposition, deflt);
	free(mp->h_type);
	free(mp->h_encoding);
	free(mp->h_disposition);
	mp->h_type = mp->h_encoding = mp->h_disposition = NULL;
}

/* is_header - "name:" with a printable name (RFC 5322 2.2, 4.5 obs-WSP) */
static bool
is_header(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n && s[i] > ' ' && s[i] < 127 && s[i] != ':')
		i++;
	if (i == 0)
		return false;
	while (i < n && is_wsp(s[i]))
		i++;
	return i < n && s[i] == ':';
}

/*
 * header_line - a line in a header block: a header, a continuation, or
 * the empty line that ends the block (given to body_line as Postfix
 * does). False for a line that is none of these: it ends the block and
 * belongs to the body.
 */
static bool
header_line(struct mime_parser *mp, const char *s, size_t n, bool continued)
{
	if (continued) {
		/* the rest of a long boundary line is no header */
		if (mp->hdr.len == 0)
			emit_raw(mp, s, n);
		else
			hdr_append(mp, s, n);
		return true;
	}
	if (n == 0) {
		end_headers(mp);
		emit_raw(mp, s, 0);
		return true;
	}
	if (is_wsp(s[0])) {
		if (mp->hdr.len == 0)
			return false;
		/* at the limit, not even the "\n": no header ends with one */
		if (mp->hdr.len + 1 < MIME_HEADER_MAX) {
			hdr_append(mp, "\n", 1);
			hdr_append(mp, s, n);
		}
		return true;
	}
	if (!is_header(s, n))
		return false;
	flush_header(mp);
	hdr_append(mp, s, n);
	return true;
}

/* all_wsp - RFC 2046 5.1.1 transport padding */
static bool
all_wsp(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!is_wsp(s[i]))
			return false;
	return true;
}

/*
 * boundary_match - the frame whose boundary this line is, innermost
 * first, or -1. Exact delimiter lines first; then, failing those, a line
 * that only starts with a delimiter.
 */
static int
boundary_match(struct mime_parser *mp, const char *s, size_t n,
    bool *closing_r)
{
	const struct mime_frame *f;
	const char *rest;
	size_t rlen;
	unsigned i;
	int pass;

	if (mp->depth == 0 || n < 3 || s[0] != '-' || s[1] != '-')
		return -1;
	for (pass = 0; pass < 2; pass++) {
		for (i = mp->depth; i-- > 0;) {
			f = &mp->frames[i];
			if (f->kind != MIME_FRAME_MULTIPART ||
			    n < 2 + f->boundary_len ||
			    memcmp(s + 2, f->boundary, f->boundary_len) != 0)
				continue;
			rest = s + 2 + f->boundary_len;
			rlen = n - 2 - f->boundary_len;
			*closing_r = rlen >= 2 && rest[0] == '-' &&
			    rest[1] == '-';
			if (*closing_r) {
				rest += 2;
				rlen -= 2;
			}
			if (pass == 1 || all_wsp(rest, rlen))
				return (int)i;
		}
	}
	return -1;
}

/* boundary - a delimiter line of frames[i]: end the part, maybe the frame */
static void
boundary(struct mime_parser *mp, unsigned i, bool closing, const char *s,
    size_t n)
{
	leaf_end(mp);
	emit_raw(mp, s, n);
	/* RFC 2046 5.1.2: an outer boundary also ends the inner entities */
	pop_to(mp, i + 1);
	if (closing) {
		pop_to(mp, i);
		mp->state = MIME_STATE_BODY;	/* epilogue: raw */
	} else {
		mp->state = MIME_STATE_HEADERS;
		mp->hdr_class = MIME_HEADER_PART;
	}
}

/* body - a body line: decoded for encoded text, else raw */
static void
body(struct mime_parser *mp, const char *s, size_t n, bool continued,
    bool complete)
{
	switch (mp->cte) {
	case MIME_CTE_RAW:
		/* the empty rest of a long line after its last piece */
		if (!continued || n > 0)
			emit_raw(mp, s, n);
		return;
	case MIME_CTE_QP:
		buf_reset(&mp->scratch);
		mime_qp_decode_line(&mp->scratch, s, n, complete);
		break;
	case MIME_CTE_BASE64:
		buf_reset(&mp->scratch);
		mime_b64_decode(&mp->b64, &mp->scratch, s, n);
		break;
	}
	dec_push(mp, mp->scratch.data, mp->scratch.len);
}

/*
 * mime_line - one line (or, for an overlong one, a piece of it:
 * continued when an earlier piece was given, complete for the last)
 */
static void
mime_line(struct mime_parser *mp, const char *s, size_t n, bool continued,
    bool complete)
{
	bool closing = false;
	int i;

	/*
	 * Each turn of the loop but the last ends a header block, which
	 * happens at most max_depth + 1 times in a row (attached messages
	 * without headers), so this is bounded.
	 */
	for (;;) {
		i = continued ? -1 : boundary_match(mp, s, n, &closing);
		if (mp->state == MIME_STATE_HEADERS) {
			if (i < 0 && header_line(mp, s, n, continued))
				return;
			end_headers(mp);
			continue;
		}
		if (i >= 0)
			boundary(mp, (unsigned)i, closing, s, n);
		else
			body(mp, s, n, continued, complete);
		return;
	}
}

/* line_done - a line ended with LF: without its CR */
static void
line_done(struct mime_parser *mp, const char *s, size_t n)
{
	if (n > 0 && s[n - 1] == '\r')
		n--;
	mime_line(mp, s, n, mp->line_continued, true);
	buf_reset(&mp->line);
	mp->line_continued = false;
}

/*
 * line_piece - the line buffer is full and the line goes on: give it as
 * a piece. (A CR at its end is a bare CR: were an LF next, the line would
 * have ended instead.)
 */
static void
line_piece(struct mime_parser *mp)
{
	mime_line(mp, buf_cstr(&mp->line), mp->line.len, mp->line_continued,
	    false);
	buf_reset(&mp->line);
	mp->line_continued = true;
}

struct mime_parser *
mime_parser_new(const struct mime_callbacks *cb, const char *content_type,
    const char *transfer_encoding, unsigned max_depth)
{
	struct mime_parser *mp;
	char *ct = NULL, *cte = NULL;

	mp = xcalloc(1, sizeof(*mp));
	mp->cb = cb;
	mp->max_depth = max_depth;
	buf_init(&mp->line, 0);
	buf_init(&mp->hdr, 0);
	buf_init(&mp->dec, 0);
	buf_init(&mp->scratch, 0);
	buf_init(&mp->utf8, 0);
	mp->conv.cd = (iconv_t)-1;
	mp->hdr_class = MIME_HEADER_PART;
	if (content_type != NULL)
		ct = unfold(content_type, strlen(content_type));
	if (transfer_encoding != NULL)
		cte = unfold(transfer_encoding, strlen(transfer_encoding));
	part_begin(mp, ct, cte, NULL, "text/plain");
	free(ct);
	free(cte);
	return mp;
}

void
mime_parser_feed(struct mime_parser *mp, const void *data, size_t len)
{
	const char *p = data, *nl;
	size_t n;

	if (mp->finished)
		return;
	while (len > 0) {
		nl = memchr(p, '\n', len);
		n = nl != NULL ? (size_t)(nl - p) : len;
		if (mp->line.len + n > MIME_LINE_MAX) {
			n = MIME_LINE_MAX - mp->line.len;
			buf_append(&mp->line, p, n);
			line_piece(mp);
		} else if (nl == NULL) {
			buf_append(&mp->line, p, n);
		} else if (mp->line.len == 0) {
			/* the whole line is in this chunk: no copy */
			line_done(mp, p, n);
			n++;
		} else {
			buf_append(&mp->line, p, n);
			line_done(mp, mp->line.data, mp->line.len);
			n++;
		}
		p += n;
		len -= n;
	}
}

void
mime_parser_finish(struct mime_parser *mp)
{
	if (mp->finished)
		return;
	if (mp->line.len > 0 || mp->line_continued)
		line_done(mp, buf_cstr(&mp->line), mp->line.len);
	/* a header block cut off by the end (bounded as in mime_line) */
	while (mp->state == MIME_STATE_HEADERS)
		end_headers(mp);
	leaf_end(mp);
	mp->finished = true;
}

void
mime_parser_free(struct mime_parser **mpp)
{
	struct mime_parser *mp = *mpp;

	if (mp == NULL)
		return;
	pop_to(mp, 0);
	free(mp->frames);
	mime_conv_deinit(&mp->conv);
	buf_deinit(&mp->line);
	buf_deinit(&mp->hdr);
	buf_deinit(&mp->dec);
	buf_deinit(&mp->scratch);
	buf_deinit(&mp->utf8);
	free(mp->h_type);
	free(mp->h_encoding);
	free(mp->h_disposition);
	free(mp);
	*mpp = NULL;
}

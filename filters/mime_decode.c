/*
 * mime_decode.c - the decoders behind the MIME parser: charset conversion
 * to UTF-8 (iconv), base64 and quoted-printable transfer encodings,
 * Content-Type / Content-Disposition parameters, and RFC 2047 encoded
 * words in header values.
 *
 * Owns nothing beyond the iconv descriptors of its converters. Every
 * decoder here is lenient the way mail readers are, because the point is
 * that a content rule sees what the recipient will see: characters
 * outside the base64 alphabet are skipped, a malformed "=" of
 * quoted-printable stays as it is, unknown charsets pass their bytes
 * through, and invalid multibyte sequences become U+FFFD so that the
 * output is always valid UTF-8 when a conversion ran.
 *
 * RFC 2045 section 5.1 (parameters), 6.7 (quoted-printable), 6.8
 * (base64); RFC 2047 sections 2-6 (encoded words); RFC 2231 sections 3-4
 * (parameter continuations, charset and language).
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <errno.h>
#include <iconv.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base64.h"
#include "buf.h"
#include "mime.h"
#include "mime-private.h"
#include "xmalloc.h"

/* RFC 2231 continuations kept per parameter: name*0 .. name*63 */
#define MIME_PARAM_SEGS		64

static const char utf8_replacement[] = "\xef\xbf\xbd";	/* U+FFFD */

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * charset_is_identity - charsets whose bytes are already what we give
 * on: UTF-8, and US-ASCII (whose 8-bit bytes, if any, we leave alone)
 */
static bool
charset_is_identity(const char *cs)
{
	static const char *const names[] = {
		"utf-8", "utf8", "us-ascii", "ascii", "ansi_x3.4-1968",
		"iso-646-us", "us", "7bit", "",
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(cs, names[i]) == 0)
			return true;
	return false;
}

/*
 * charset_is_sane - only plain names reach iconv_open: glibc reads
 * "//" suffixes as conversion options and looks module names up, so
 * anything but letters, digits and a little punctuation is refused.
 */
static bool
charset_is_sane(const char *cs)
{
	size_t i;

	for (i = 0; cs[i] != '\0'; i++) {
		if (i >= MIME_CHARSET_MAX)
			return false;
		if (!((cs[i] >= 'a' && cs[i] <= 'z') ||
		    (cs[i] >= 'A' && cs[i] <= 'Z') ||
		    (cs[i] >= '0' && cs[i] <= '9') ||
		    strchr("-_.:+", cs[i]) != NULL))
			return false;
	}
	return i > 0;
}

void
mime_conv_init(struct mime_conv *c, const char *charset)
{
	c->cd = (iconv_t)-1;
	if (charset == NULL || charset_is_identity(charset) ||
	    !charset_is_sane(charset))
		return;
	/* unknown to iconv: the bytes pass through, (iconv_t)-1 */
	c->cd = iconv_open("UTF-8", charset);
}

void
mime_conv_deinit(struct mime_conv *c)
{
	if (c->cd != (iconv_t)-1)
		iconv_close(c->cd);
	c->cd = (iconv_t)-1;
}

void
mime_conv_append(struct mime_conv *c, struct buf *out, const void *in,
    size_t len)
{
	char tmp[4096], *ip, *op;
	size_t il, ol, r;

	if (c->cd == (iconv_t)-1) {
		buf_append(out, in, len);
		return;
	}
	/* each piece starts in the initial shift state */
	iconv(c->cd, NULL, NULL, NULL, NULL);
	ip = (char *)in;
	il = len;
	while (il > 0) {
		op = tmp;
		ol = sizeof(tmp);
		r = iconv(c->cd, &ip, &il, &op, &ol);
		buf_append(out, tmp, (size_t)(op - tmp));
		if (r != (size_t)-1 || errno == E2BIG)
			continue;
		/* EILSEQ, or EINVAL for a sequence cut at the end */
		buf_append(out, utf8_replacement, 3);
		ip++;
		il--;
		iconv(c->cd, NULL, NULL, NULL, NULL);
	}
	op = tmp;
	ol = sizeof(tmp);
	if (iconv(c->cd, NULL, NULL, &op, &ol) != (size_t)-1)
		buf_append(out, tmp, (size_t)(op - tmp));
}

void
mime_charset_append(struct buf *out, const char *charset, const void *in,
    size_t len)
{
	struct mime_conv c;

	mime_conv_init(&c, charset);
	mime_conv_append(&c, out, in, len);
	mime_conv_deinit(&c);
}

void
mime_b64_init(struct mime_b64 *b)
{
	b->bits = 0;
	b->n = 0;
}

void
mime_b64_decode(struct mime_b64 *b, struct buf *out, const char *in,
    size_t len)
{
	unsigned char tmp[384];
	size_t i, o = 0;
	int v;

	for (i = 0; i < len; i++) {
		if (in[i] == '=') {
			/*
			 * padding ends a group; a writer that glued two
			 * encodings together goes on after it (RFC 2045 6.8
			 * says to ignore such data, mail readers show it)
			 */
			buf_append(out, tmp, o);
			o = 0;
			mime_b64_flush(b, out);
			continue;
		}
		if ((v = base64_value((unsigned char)in[i])) < 0)
			continue;
		b->bits = (b->bits << 6) | (unsigned int)v;
		if (++b->n < 4)
			continue;
		tmp[o++] = (b->bits >> 16) & 0xff;
		tmp[o++] = (b->bits >> 8) & 0xff;
		tmp[o++] = b->bits & 0xff;
		b->bits = 0;
		b->n = 0;
		if (o + 3 > sizeof(tmp)) {
			buf_append(out, tmp, o);
			o = 0;
		}
	}
	buf_append(out, tmp, o);
}

void
mime_b64_flush(struct mime_b64 *b, struct buf *out)
{
	unsigned char tmp[2];

	/* one sextet alone holds no whole byte: dropped */
	if (b->n == 2) {
		tmp[0] = (b->bits >> 4) & 0xff;
		buf_append(out, tmp, 1);
	} else if (b->n == 3) {
		tmp[0] = (b->bits >> 10) & 0xff;
		tmp[1] = (b->bits >> 2) & 0xff;
		buf_append(out, tmp, 2);
	}
	b->bits = 0;
	b->n = 0;
}

void
mime_qp_decode_line(struct buf *out, const char *in, size_t len,
    bool complete)
{
	size_t i, start, end = len;
	bool soft = false;
	char c;
	int hi, lo;

	if (complete) {
		/* RFC 2045 6.7 (3): trailing white space came in transit */
		while (end > 0 && (in[end - 1] == ' ' || in[end - 1] == '\t'))
			end--;
		if (end > 0 && in[end - 1] == '=') {
			soft = true;
			end--;
		}
	}
	for (i = start = 0; i < end; i++) {
		if (in[i] != '=' || i + 2 >= end ||
		    (hi = hex_value(in[i + 1])) < 0 ||
		    (lo = hex_value(in[i + 2])) < 0)
			continue;
		buf_append(out, in + start, i - start);
		c = (char)(hi << 4 | lo);
		buf_append(out, &c, 1);
		i += 2;
		start = i + 1;
	}
	buf_append(out, in + start, end - start);
	if (complete && !soft)
		buf_append(out, "\n", 1);
}

/*
 * A small lexer for structured header values (RFC 2045 5.1, RFC 5322
 * 3.2.2): white space and comments (nested, with quoted pairs) are
 * skipped between the elements.
 */
struct lex {
	const char	*p;	/* borrowed: the value being parsed */
	const char	*end;
};

static void
lex_cfws(struct lex *lx)
{
	size_t depth = 0;

	while (lx->p < lx->end) {
		if (depth > 0) {
			if (*lx->p == '\\' && lx->p + 1 < lx->end)
				lx->p++;
			else if (*lx->p == '(')
				depth++;
			else if (*lx->p == ')')
				depth--;
			lx->p++;
		} else if (*lx->p == '(') {
			depth = 1;
			lx->p++;
		} else if (is_wsp(*lx->p))
			lx->p++;
		else
			break;
	}
}

/* is_token_char - RFC 2045 token: no space, control or tspecial */
static bool
is_token_char(unsigned char c)
{
	if (c <= 32 || c == 127)
		return false;
	return strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* lex_token - append a token to out (lower-cased when asked) */
static size_t
lex_token(struct lex *lx, struct buf *out, bool lower)
{
	const char *start = lx->p;
	char c;

	for (; lx->p < lx->end && is_token_char((unsigned char)*lx->p);
	    lx->p++) {
		c = *lx->p;
		if (lower && c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		buf_append(out, &c, 1);
	}
	return (size_t)(lx->p - start);
}

/* lex_quoted - a quoted string's content (at '"'), unfolded */
static void
lex_quoted(struct lex *lx, struct buf *out)
{
	for (lx->p++; lx->p < lx->end && *lx->p != '"'; lx->p++) {
		if (*lx->p == '\\' && lx->p + 1 < lx->end)
			lx->p++;
		else if (*lx->p == '\r' || *lx->p == '\n')
			continue;
		buf_append(out, lx->p, 1);
	}
	if (lx->p < lx->end)
		lx->p++;
}

char *
mime_value_type(const char *value, size_t len, bool want_slash)
{
	struct lex lx = { value, value + len };
	struct buf out;

	buf_init(&out, 0);
	lex_cfws(&lx);
	if (lex_token(&lx, &out, true) == 0)
		goto bad;
	if (want_slash) {
		lex_cfws(&lx);
		if (lx.p == lx.end || *lx.p != '/')
			goto bad;
		lx.p++;
		buf_append(&out, "/", 1);
		lex_cfws(&lx);
		if (lex_token(&lx, &out, true) == 0)
			goto bad;
	}
	return buf_steal(&out);
bad:
	buf_deinit(&out);
	return NULL;
}

/*
 * param_next - the next name=value parameter: skips to the next ";"
 * outside quoted strings and comments, so that it also passes over the
 * leading value and over garbage. Unquoted values run to the next ";"
 * (mail readers accept spaces in them), a comment after white space
 * ending them. False at the end of the value.
 */
static bool
param_next(struct lex *lx, struct buf *name, struct buf *val)
{
	const char *start;

	for (;;) {
		buf_reset(name);
		buf_reset(val);
		for (;;) {
			lex_cfws(lx);
			if (lx->p == lx->end)
				return false;
			if (*lx->p == ';')
				break;
			if (*lx->p == '"')
				lex_quoted(lx, val);
			else
				lx->p++;
		}
		lx->p++;
		buf_reset(val);
		lex_cfws(lx);
		if (lex_token(lx, name, true) == 0)
			continue;
		lex_cfws(lx);
		if (lx->p == lx->end || *lx->p != '=')
			continue;
		lx->p++;
		lex_cfws(lx);
		if (lx->p < lx->end && *lx->p == '"') {
			lex_quoted(lx, val);
			return true;
		}
		for (start = lx->p; lx->p < lx->end && *lx->p != ';'; lx->p++)
			if (*lx->p == '(' && lx->p > start && is_wsp(lx->p[-1]))
				break;
		buf_append(val, start, (size_t)(lx->p - start));
		while (val->len > 0 && is_wsp(val->data[val->len - 1]))
			val->data[--val->len] = '\0';
		return true;
	}
}

/*
 * pct_decode - RFC 2231 extended value: %XX to bytes. NUL bytes are
 * dropped: the result is a C string, and "a.txt%00.exe" must not lose
 * its real extension from a file name rule's sight.
 */
static void
pct_decode(struct buf *out, const char *s, size_t len)
{
	size_t i;
	int hi, lo;
	char c;

	for (i = 0; i < len; i++) {
		c = s[i];
		if (c == '%' && i + 2 < len &&
		    (hi = hex_value(s[i + 1])) >= 0 &&
		    (lo = hex_value(s[i + 2])) >= 0) {
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		if (c != '\0')
			buf_append(out, &c, 1);
	}
}

/* rfc2231_index - "*N" or "*N*" after the name: N, or -1 */
static int
rfc2231_index(const char *s, size_t len, bool *ext_r)
{
	size_t i;
	int n = 0;

	if (len < 2 || s[0] != '*')
		return -1;
	*ext_r = s[len - 1] == '*';
	if (*ext_r)
		len--;
	if (len < 2 || len > 4 || (s[1] == '0' && len > 2))
		return -1;
	for (i = 1; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		n = n * 10 + (s[i] - '0');
	}
	return n;
}

/*
 * ext_split - "charset'language'value" (RFC 2231 4): the charset into
 * cs (at most MIME_CHARSET_MAX) and a pointer past the second quote
 */
static const char *
ext_split(const char *v, char *cs, size_t cssize)
{
	const char *q1, *q2;
	size_t n;

	cs[0] = '\0';
	if ((q1 = strchr(v, '\'')) == NULL ||
	    (q2 = strchr(q1 + 1, '\'')) == NULL)
		return v;
	n = (size_t)(q1 - v);
	if (n < cssize) {
		memcpy(cs, v, n);
		cs[n] = '\0';
	}
	return q2 + 1;
}

char *
mime_param_get(const char *value, size_t len, const char *name)
{
	struct lex lx = { value, value + len };
	struct buf pn, pv, raw, out;
	char *plain = NULL, *ext = NULL, *segs[MIME_PARAM_SEGS];
	bool seg_ext[MIME_PARAM_SEGS], is_ext;
	char cs[MIME_CHARSET_MAX + 1];
	const char *v;
	size_t nlen = strlen(name), i;
	int idx;

	memset(segs, 0, sizeof(segs));
	memset(seg_ext, 0, sizeof(seg_ext));
	buf_init(&pn, 0);
	buf_init(&pv, 0);
	while (param_next(&lx, &pn, &pv)) {
		if (pn.len < nlen ||
		    strncasecmp(buf_cstr(&pn), name, nlen) != 0)
			continue;
		/* the first of repeated parameters counts */
		if (pn.len == nlen) {
			if (plain == NULL)
				plain = xstrdup(buf_cstr(&pv));
		} else if (pn.len == nlen + 1 && pn.data[nlen] == '*') {
			if (ext == NULL)
				ext = xstrdup(buf_cstr(&pv));
		} else if ((idx = rfc2231_index(pn.data + nlen, pn.len - nlen,
		    &is_ext)) >= 0 && idx < MIME_PARAM_SEGS &&
		    segs[idx] == NULL) {
			segs[idx] = xstrdup(buf_cstr(&pv));
			seg_ext[idx] = is_ext;
		}
	}
	buf_deinit(&pn);
	buf_deinit(&pv);

	buf_init(&raw, 0);
	buf_init(&out, 0);
	if (ext != NULL || segs[0] != NULL) {
		/* RFC 2231: an extended value wins over the plain one */
		cs[0] = '\0';
		if (ext != NULL) {
			v = ext_split(ext, cs, sizeof(cs));
			pct_decode(&raw, v, strlen(v));
		} else {
			for (i = 0; i < MIME_PARAM_SEGS && segs[i] != NULL;
			    i++) {
				v = segs[i];
				if (i == 0 && seg_ext[0])
					v = ext_split(v, cs, sizeof(cs));
				if (seg_ext[i])
					pct_decode(&raw, v, strlen(v));
				else
					buf_append_str(&raw, v);
			}
		}
		mime_charset_append(&out, cs[0] != '\0' ? cs : NULL,
		    raw.data, raw.len);
		free(plain);
		plain = buf_steal(&out);
	}
	buf_deinit(&raw);
	buf_deinit(&out);
	free(ext);
	for (i = 0; i < MIME_PARAM_SEGS; i++)
		free(segs[i]);
	return plain;
}

/*
 * RFC 2047 encoded words: "=?" charset ["*" language] "?" B|Q "?" text
 * "?=". A word is recognized anywhere, not only between white space as
 * section 5 demands, because mail readers decode it anywhere too.
 */
struct ew {
	char	 charset[MIME_CHARSET_MAX + 1];
	char	 enc;		/* 'b' or 'q' */
	const char *text;	/* borrowed: inside the value */
	size_t	 text_len;
	size_t	 len;		/* of the whole word */
};

/* ew_parse - an encoded word at s, or false */
static bool
ew_parse(const char *s, size_t len, struct ew *w)
{
	size_t i = 2, cs_start = 2, cs_len;

	if (len < 8 || s[0] != '=' || s[1] != '?')
		return false;
	while (i < len && s[i] != '?' && is_token_char((unsigned char)s[i]))
		i++;
	if (i == len || s[i] != '?' || i == cs_start)
		return false;
	cs_len = i - cs_start;
	/* RFC 2231 section 5: "charset*language" */
	if (memchr(s + cs_start, '*', cs_len) != NULL)
		cs_len = (size_t)((const char *)memchr(s + cs_start, '*',
		    cs_len) - (s + cs_start));
	if (cs_len == 0 || cs_len > MIME_CHARSET_MAX)
		return false;
	memcpy(w->charset, s + cs_start, cs_len);
	w->charset[cs_len] = '\0';
	if (i + 3 > len || s[i + 2] != '?')
		return false;
	switch (s[i + 1]) {
	case 'B':
	case 'b':
		w->enc = 'b';
		break;
	case 'Q':
	case 'q':
		w->enc = 'q';
		break;
	default:
		return false;
	}
	i += 3;
	w->text = s + i;
	for (; i < len && s[i] != '?'; i++)
		if (is_wsp(s[i]))
			return false;
	if (i + 1 >= len || s[i + 1] != '=')
		return false;
	w->text_len = (size_t)(s + i - w->text);
	w->len = i + 2;
	return true;
}

/* ew_decode - the bytes of a word's text onto out; false if malformed */
static bool
ew_decode(const struct ew *w, struct buf *out)
{
	struct mime_b64 b;
	size_t i;
	int hi, lo;
	char c;
	bool pad = false;

	if (w->enc == 'b') {
		/* the alphabet, then at most "=" padding: nothing else */
		for (i = 0; i < w->text_len; i++) {
			if (w->text[i] == '=')
				pad = true;
			else if (pad ||
			    base64_value((unsigned char)w->text[i]) < 0)
				return false;
		}
		mime_b64_init(&b);
		mime_b64_decode(&b, out, w->text, w->text_len);
		mime_b64_flush(&b, out);
		return true;
	}
	for (i = 0; i < w->text_len; i++) {
		c = w->text[i];
		if (c == '_')
			c = ' ';
		else if (c == '=' && i + 2 < w->text_len &&
		    (hi = hex_value(w->text[i + 1])) >= 0 &&
		    (lo = hex_value(w->text[i + 2])) >= 0) {
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		buf_append(out, &c, 1);
	}
	return true;
}

/* run_flush - convert the pending run of adjacent words, drop NULs */
static void
run_flush(struct buf *out, struct buf *run, const char *charset)
{
	size_t i, start = out->len, o;

	if (run->len == 0)
		return;
	mime_charset_append(out, charset, run->data, run->len);
	for (i = o = start; i < out->len; i++)
		if (out->data[i] != '\0')
			out->data[o++] = out->data[i];
	if (out->data != NULL) {
		out->len = o;
		out->data[o] = '\0';
	}
	buf_reset(run);
}

char *
mime_decode_words(const char *value, size_t len)
{
	struct buf out, run, bytes;
	struct ew w;
	char run_cs[MIME_CHARSET_MAX + 1] = "";
	size_t i = 0, lit = 0, j;
	bool any = false, gap_is_wsp;

	buf_init(&out, 0);
	buf_init(&run, 0);
	buf_init(&bytes, 0);
	while (i < len) {
		if (value[i] != '=' || !ew_parse(value + i, len - i, &w)) {
			i++;
			continue;
		}
		buf_reset(&bytes);
		if (!ew_decode(&w, &bytes)) {
			i++;
			continue;
		}
		/* RFC 2047 6.2: white space between two words is dropped */
		gap_is_wsp = any;
		for (j = lit; j < i && gap_is_wsp; j++)
			gap_is_wsp = is_wsp(value[j]);
		/*
		 * Words of one charset are joined before conversion: senders
		 * split multibyte characters across words, though section 5
		 * forbids it, and readers put them back together.
		 */
		if (!gap_is_wsp || strcasecmp(run_cs, w.charset) != 0) {
			run_flush(&out, &run, run_cs);
			if (!gap_is_wsp)
				buf_append(&out, value + lit, i - lit);
			memcpy(run_cs, w.charset, sizeof(run_cs));
		}
		buf_append(&run, bytes.data, bytes.len);
		any = true;
		i += w.len;
		lit = i;
	}
	run_flush(&out, &run, run_cs);
	buf_append(&out, value + lit, len - lit);
	buf_deinit(&run);
	buf_deinit(&bytes);
	if (!any) {
		buf_deinit(&out);
		return NULL;
	}
	return buf_steal(&out);
}

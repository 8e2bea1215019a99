/*
 * received.c - build the Received: trace header field; see received.h.
 *
 * Owns nothing: it reads a received_info filled in by the session and
 * appends text to the caller's buffer. Leaves to others: deciding the
 * client name (DNS code), the queue id (spool), where the header goes
 * (first line of the message, by the session at DATA/BDAT).
 *
 * RFC 5321 section 4.4 (trace information: "from", "by", "with", "id",
 * "for", the TCP-info comment with the address literal), RFC 5322
 * sections 2.1.1 (line length: 78 should, 998 must), 2.2.3 (folding) and
 * 3.3 (date-time), RFC 3848 (ESMTPA, ESMTPS, ESMTPSA), RFC 6531 section
 * 3.7.3 (UTF8SMTP and its A/S/SA variants).
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "buf.h"
#include "received.h"

#define RECEIVED_FOLD_COL	78	/* RFC 5322 2.1.1 "SHOULD" */

/* Folding state: words are joined by a space or by CRLF TAB. */
struct folder {
	struct buf	*out;		/* borrowed: the header being built */
	size_t		 col;		/* characters on the current line */
	bool		 has_word;	/* a word is already on this line */
};

/*
 * fold_word - add one unbreakable word, moving it to a continuation line
 * when it would pass column 78 and the current line is not empty. A word
 * longer than a line stays whole; the field caps keep it under 998.
 */
static void
fold_word(struct folder *f, const char *w, size_t len)
{
	if (f->has_word) {
		if (f->col + 1 + len > RECEIVED_FOLD_COL) {
			buf_append(f->out, "\r\n\t", 3);
			f->col = 1;
		} else {
			buf_append(f->out, " ", 1);
			f->col++;
		}
	}
	buf_append(f->out, w, len);
	f->col += len;
	f->has_word = true;
}

static void
fold_str(struct folder *f, const char *w)
{
	fold_word(f, w, strlen(w));
}

/* fold_newline - start a continuation line (Postfix's fixed layout) */
static void
fold_newline(struct folder *f)
{
	buf_append(f->out, "\r\n\t", 3);
	f->col = 1;
	f->has_word = false;
}

/*
 * utf8_len - length of the well-formed UTF-8 sequence (2 to 4 bytes) at
 * p, or 0. Overlong forms and surrogates are not well-formed.
 */
static size_t
utf8_len(const unsigned char *p, size_t n)
{
	size_t len, i;
	unsigned int cp, min;

	if ((p[0] & 0xe0) == 0xc0) {
		len = 2;
		cp = p[0] & 0x1f;
		min = 0x80;
	} else if ((p[0] & 0xf0) == 0xe0) {
		len = 3;
		cp = p[0] & 0x0f;
		min = 0x800;
	} else if ((p[0] & 0xf8) == 0xf0) {
		len = 4;
		cp = p[0] & 0x07;
		min = 0x10000;
	} else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff ||
	    cp <= 0x9f)
		return 0;
	return len;
}

/*
 * sanitize - append at most max bytes of s to b (NULL s: dflt), turning
 * control characters, DEL, non-ASCII bytes (unless utf8 allows a
 * well-formed sequence) and every byte in bad into '?'. CR and LF thus
 * never reach the header, and a client cannot close our comment or
 * angle brackets to forge trace fields.
 */
static void
sanitize(struct buf *b, const char *s, const char *dflt, size_t max,
    const char *bad, bool utf8)
{
	const unsigned char *p;
	size_t i, n, k;

	if (s == NULL || s[0] == '\0')
		s = dflt;
	p = (const unsigned char *)s;
	n = strlen(s);
	if (n > max)
		n = max;
	for (i = 0; i < n; i++) {
		if (p[i] >= 0x80 && utf8 && (k = utf8_len(p + i, n - i)) > 0) {
			buf_append(b, p + i, k);
			i += k - 1;
		} else if (p[i] < 0x21 || p[i] >= 0x7f ||
		    strchr(bad, p[i]) != NULL)
			buf_append(b, "?", 1);
		else
			buf_append(b, p + i, 1);
	}
}

const char *
received_protocol(const struct received_info *ri)
{
	static const char *const esmtp[] = {
		"ESMTP", "ESMTPA", "ESMTPS", "ESMTPSA",
	};
	static const char *const utf8[] = {
		"UTF8SMTP", "UTF8SMTPA", "UTF8SMTPS", "UTF8SMTPSA",
	};
	int i;

	/* HELO has no extensions, so no STARTTLS, AUTH or SMTPUTF8 words. */
	if (!ri->esmtp)
		return "SMTP";
	i = (ri->tls ? 2 : 0) + (ri->auth ? 1 : 0);
	return ri->smtputf8 ? utf8[i] : esmtp[i];
}

char *
received_date(time_t t, char *out, size_t n)
{
	static const char days[7][4] = {
		"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat",
	};
	static const char months[12][4] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
	};
	struct tm tm;
	long off;
	char sign;

	if (localtime_r(&t, &tm) == NULL) {
		/* Out of range for struct tm: only a broken clock. */
		t = 0;
		gmtime_r(&t, &tm);
	}
	off = tm.tm_gmtoff / 60;
	sign = off < 0 ? '-' : '+';
	if (off < 0)
		off = -off;
	/* Written by hand: strftime's %a and %b follow the locale. */
	snprintf(out, n, "%s, %d %s %d %02d:%02d:%02d %c%02ld%02ld",
	    days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, sign,
	    off / 60, off % 60);
	return out;
}

int
received_build(struct buf *out, const struct received_info *ri)
{
	struct buf hdr, w;
	struct folder f;
	char date[64];
	int rc;

	/* Build unbounded, then append whole or not at all. */
	buf_init(&hdr, 0);
	buf_init(&w, 0);
	f.out = &hdr;
	f.col = 0;
	f.has_word = false;

	/* from HELO (name [addr]) -- RFC 5321 4.4 From-domain, TCP-info */
	fold_str(&f, "Received:");
	fold_str(&f, "from");
	sanitize(&w, ri->helo != NULL ? ri->helo : ri->client_name,
	    "unknown", RECEIVED_NAME_MAX, "()\\;<>", false);
	fold_word(&f, w.data, w.len);
	buf_reset(&w);
	buf_append_str(&w, "(");
	sanitize(&w, ri->client_name, "unknown", RECEIVED_NAME_MAX,
	    "()\\;<>[]", false);
	fold_word(&f, w.data, w.len);
	buf_reset(&w);
	buf_append_str(&w, "[");
	/* RFC 5321 4.1.3 IPv6-address-literal; not twice if given so. */
	if (ri->client_addr != NULL && strchr(ri->client_addr, ':') != NULL &&
	    strncasecmp(ri->client_addr, "IPv6:", 5) != 0)
		buf_append_str(&w, "IPv6:");
	sanitize(&w, ri->client_addr, "unknown", RECEIVED_ADDR_MAX,
	    "()\\;<>[]", false);
	buf_append_str(&w, "])");
	fold_word(&f, w.data, w.len);

	/* (using TLSv1.3 with cipher X (256/256 bits)), as Postfix does */
	if (ri->tls) {
		fold_newline(&f);
		buf_reset(&w);
		buf_append_str(&w, "(using");
		fold_word(&f, w.data, w.len);
		buf_reset(&w);
		sanitize(&w, ri->tls_version, "unknown", RECEIVED_TOKEN_MAX,
		    "()\\;", false);
		fold_word(&f, w.data, w.len);
		fold_str(&f, "with");
		fold_str(&f, "cipher");
		buf_reset(&w);
		sanitize(&w, ri->tls_cipher, "unknown", RECEIVED_TOKEN_MAX,
		    "()\\;", false);
		fold_word(&f, w.data, w.len);
		buf_reset(&w);
		buf_printf(&w, "(%d/%d", ri->tls_bits, ri->tls_alg_bits);
		fold_word(&f, w.data, w.len);
		fold_str(&f, "bits))");
	}

	/* by HOST (Postern) with PROTO id QID */
	fold_newline(&f);
	fold_str(&f, "by");
	buf_reset(&w);
	sanitize(&w, ri->by, "localhost", RECEIVED_NAME_MAX, "()\\;<>", false);
	fold_word(&f, w.data, w.len);
	fold_str(&f, "(Postern)");
	fold_str(&f, "with");
	fold_str(&f, received_protocol(ri));
	if (ri->queue_id != NULL && ri->queue_id[0] != '\0') {
		fold_str(&f, "id");
		buf_reset(&w);
		sanitize(&w, ri->queue_id, "", RECEIVED_TOKEN_MAX,
		    "()\\;<>", false);
		fold_word(&f, w.data, w.len);
	}

	/*
	 * for <rcpt> only with exactly one recipient: with more, naming one
	 * would disclose it to the others (RFC 5321 7.2).
	 */
	if (ri->nrcpt == 1 && ri->rcpt != NULL) {
		fold_newline(&f);
		fold_str(&f, "for");
		buf_reset(&w);
		buf_append_str(&w, "<");
		sanitize(&w, ri->rcpt, "", RECEIVED_RCPT_MAX, "<>",
		    ri->smtputf8);
		buf_append_str(&w, ">");
		fold_word(&f, w.data, w.len);
	}
	/* The date follows the last ";" (RFC 5322 3.6.7); kept whole. */
	buf_append_str(&hdr, ";");
	f.col++;
	received_date(ri->date, date, sizeof(date));
	fold_str(&f, date);
	buf_append_str(&hdr, "\r\n");

	rc = buf_append(out, hdr.data, hdr.len);
	buf_deinit(&w);
	buf_deinit(&hdr);
	return rc;
}

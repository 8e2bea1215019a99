/*
 * smtp_client.c - the pure parts of the SMTP client (see smtp_client.h).
 *
 * Owns nothing beyond the reply text buffer. Does no I/O: the transport
 * (deliver_smtp.c) reads lines from the network and feeds them here, and
 * sends what the builders produce. Keeping the parser pure lets the unit
 * tests and a fuzz target throw arbitrary server output at it.
 *
 * RFCs: 5321 4.2 (reply syntax), 4.5.2 (transparency), 4.5.3.1.5 (reply
 * line length); 3463 (enhanced codes); 2920, 1870, 3207, 6152, 6531,
 * 3461, 2034, 3030 (the EHLO keywords); 3461 4 (xtext).
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "delivery.h"
#include "smtp_client.h"
#include "spool.h"
#include "xmalloc.h"

/* The whole text of a reply is bounded by the two limits above. */
#define SMTP_REPLY_TEXT_MAX	(SMTP_REPLY_LINE_MAX * SMTP_REPLY_LINES_MAX)

void
smtp_reply_init(struct smtp_reply *r)
{
	r->code = 0;
	r->esc[0] = '\0';
	buf_init(&r->text, SMTP_REPLY_TEXT_MAX);
	r->nlines = 0;
}

void
smtp_reply_deinit(struct smtp_reply *r)
{
	buf_deinit(&r->text);
}

void
smtp_reply_reset(struct smtp_reply *r)
{
	r->code = 0;
	r->esc[0] = '\0';
	buf_reset(&r->text);
	r->nlines = 0;
}

/*
 * parse_esc - length of an RFC 3463 status code "c.sss.ddd" at the start
 * of s (followed by a space or the end), or 0. The class must be 2, 4 or 5.
 */
static size_t
parse_esc(const char *s, size_t len)
{
	size_t i = 0, n;
	int part;

	if (len < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') ||
	    s[1] != '.')
		return 0;
	i = 2;
	for (part = 0; part < 2; part++) {
		for (n = 0; i < len && n < 4 && isdigit((unsigned char)s[i]);
		    n++)
			i++;
		if (n == 0 || n > 3)
			return 0;
		if (part == 0) {
			if (i >= len || s[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < len && s[i] != ' ')
		return 0;
	return i;
}

int
smtp_reply_add_line(struct smtp_reply *r, const char *line, size_t len,
    const char **error_r)
{
	int code;
	bool last;
	size_t n;

	/* The limit counts the CRLF, as RFC 5321 4.5.3.1.5 does. */
	if (len + 2 > SMTP_REPLY_LINE_MAX) {
		*error_r = "reply line too long";
		return -1;
	}
	if (r->nlines >= SMTP_REPLY_LINES_MAX) {
		*error_r = "too many lines in a multi-line reply";
		return -1;
	}
	/* RFC 5321 4.2: a three-digit code, first digit 2-5, second 0-5. */
	if (len < 3 || !isdigit((unsigned char)line[0]) ||
	    !isdigit((unsigned char)line[1]) ||
	    !isdigit((unsigned char)line[2]) ||
	    line[0] < '2' || line[0] > '5' || line[1] > '5') {
		*error_r = "malformed reply code";
		return -1;
	}
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	/* "250" alone is tolerated as a last line (old servers send it). */
	if (len == 3 || line[3] == ' ')
		last = true;
	else if (line[3] == '-')
		last = false;
	else {
		*error_r = "malformed reply separator";
		return -1;
	}
	if (r->nlines > 0 && code != r->code) {
		*error_r = "reply code changed within a multi-line reply";
		return -1;
	}
	line += len > 3 ? 4 : 3;
	len -= len > 3 ? 4 : 3;
	if (r->nlines == 0) {
		r->code = code;
		n = parse_esc(line, len);
		if (n > 0 && n < sizeof(r->esc) &&
		    line[0] == '0' + code / 100) {
			memcpy(r->esc, line, n);
			r->esc[n] = '\0';
		}
	} else
		(void)buf_append(&r->text, "\n", 1);
	/* Cannot pass the cap: the line and count limits bound it. */
	(void)buf_append(&r->text, line, len);
	r->nlines++;
	return last ? 1 : 0;
}

int
smtp_reply_parse(struct smtp_reply *r, const char *data, size_t len,
    size_t *consumed_r, const char **error_r)
{
	const char *p = data, *end = data + len, *nl;
	size_t linelen;
	int rc;

	smtp_reply_reset(r);
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL) {
			if ((size_t)(end - p) >= SMTP_REPLY_LINE_MAX) {
				*error_r = "reply line too long";
				return -1;
			}
			return 0;
		}
		linelen = (size_t)(nl - p);
		if (linelen > 0 && p[linelen - 1] == '\r')
			linelen--;
		rc = smtp_reply_add_line(r, p, linelen, error_r);
		p = nl + 1;
		if (rc == -1)
			return -1;
		if (rc == 1) {
			*consumed_r = (size_t)(p - data);
			return 1;
		}
	}
	return 0;
}

char *
smtp_reply_flatten(const struct smtp_reply *r)
{
	struct buf out;
	const char *p, *end, *nl;
	size_t esclen = strlen(r->esc), i;

	buf_init(&out, 0);
	buf_printf(&out, "%d", r->code);
	p = buf_cstr(&r->text);
	end = p + r->text.len;
	while (p <= end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		/* Continuation lines usually repeat the enhanced code. */
		if (p != buf_cstr(&r->text) && esclen > 0 &&
		    (size_t)(nl - p) >= esclen &&
		    strncmp(p, r->esc, esclen) == 0) {
			p += esclen;
			while (p < nl && *p == ' ')
				p++;
		}
		if (nl > p) {
			buf_append(&out, " ", 1);
			buf_append(&out, p, (size_t)(nl - p));
		}
		p = nl + 1;
	}
	/* The text ends up in logs and bounces: printable ASCII only. */
	for (i = 0; i < out.len; i++)
		if (out.data[i] < 0x20 || out.data[i] > 0x7e)
			out.data[i] = '?';
	return buf_steal(&out);
}

void
smtp_reply_dsn(const struct smtp_reply *r, const char *dflt, char out[16])
{
	if (r->esc[0] != '\0') {
		memcpy(out, r->esc, strlen(r->esc) + 1);
		return;
	}
	snprintf(out, 16, "%d.%s", r->code / 100,
	    dflt != NULL ? dflt : "0.0");
}

/* ext_table - EHLO keyword to flag */
static const struct {
	const char *keyword;
	unsigned flag;
} ext_table[] = {
	{ "PIPELINING", SMTP_EXT_PIPELINING },
	{ "SIZE", SMTP_EXT_SIZE },
	{ "STARTTLS", SMTP_EXT_STARTTLS },
	{ "8BITMIME", SMTP_EXT_8BITMIME },
	{ "SMTPUTF8", SMTP_EXT_SMTPUTF8 },
	{ "DSN", SMTP_EXT_DSN },
	{ "ENHANCEDSTATUSCODES", SMTP_EXT_ENHANCEDSTATUSCODES },
	{ "CHUNKING", SMTP_EXT_CHUNKING },
};

void
smtp_ehlo_parse(const struct smtp_reply *r, struct smtp_ext *ext)
{
	const char *p, *end, *nl, *sp, *arg;
	unsigned long long v;
	size_t i, kwlen;
	char *ep;

	ext->flags = 0;
	ext->size_max = 0;
	p = buf_cstr(&r->text);
	end = p + r->text.len;
	/* The first line is the server's name and greeting. */
	nl = memchr(p, '\n', (size_t)(end - p));
	if (nl == NULL)
		return;
	for (p = nl + 1; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		sp = memchr(p, ' ', (size_t)(nl - p));
		kwlen = (size_t)((sp != NULL ? sp : nl) - p);
		for (i = 0; i < sizeof(ext_table) / sizeof(ext_table[0]); i++)
			if (strlen(ext_table[i].keyword) == kwlen &&
			    strncasecmp(p, ext_table[i].keyword, kwlen) == 0)
				ext->flags |= ext_table[i].flag;
		if (kwlen == 4 && strncasecmp(p, "SIZE", 4) == 0 &&
		    sp != NULL) {
			arg = sp + 1;
			if (isdigit((unsigned char)*arg)) {
				errno = 0;
				v = strtoull(arg, &ep, 10);
				if (errno == 0 && (ep == nl || *ep == ' '))
					ext->size_max = (size_t)v;
			}
		}
	}
}

void
smtp_orcpt_encode(struct buf *b, const char *orcpt)
{
	const char *semi = strchr(orcpt, ';');

	if (semi == NULL) {
		buf_append_str(b, "rfc822;");
		smtp_xtext_encode(b, orcpt);
	} else if (semi - orcpt == 5 && strncasecmp(orcpt, "utf-8", 5) == 0)
		buf_append_str(b, orcpt);
	else {
		buf_append(b, orcpt, (size_t)(semi - orcpt + 1));
		smtp_xtext_encode(b, semi + 1);
	}
}

void
smtp_xtext_encode(struct buf *b, const char *s)
{
	const unsigned char *p;

	/* RFC 3461 4: "!" through "~" except "+" and "=" pass as they are. */
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p >= 33 && *p <= 126 && *p != '+' && *p != '=')
			buf_append(b, p, 1);
		else
			buf_printf(b, "+%02X", *p);
	}
}

void
smtp_mail_cmd(struct buf *b, const struct delivery_job *job,
    const struct smtp_ext *ext, size_t msg_size)
{
	buf_printf(b, "MAIL FROM:<%s>", job->sender);
	if (ext->flags & SMTP_EXT_SIZE)
		buf_printf(b, " SIZE=%zu", msg_size);
	if ((ext->flags & SMTP_EXT_8BITMIME) && job->body_type != NULL &&
	    strcasecmp(job->body_type, "8BITMIME") == 0)
		buf_append_str(b, " BODY=8BITMIME");
	if ((ext->flags & SMTP_EXT_SMTPUTF8) && job->smtputf8)
		buf_append_str(b, " SMTPUTF8");
	if (ext->flags & SMTP_EXT_DSN) {
		if (job->ret != NULL)
			buf_printf(b, " RET=%s", job->ret);
		if (job->envid != NULL) {
			buf_append_str(b, " ENVID=");
			smtp_xtext_encode(b, job->envid);
		}
	}
	buf_append(b, "\r\n", 2);
}

void
smtp_rcpt_cmd(struct buf *b, const struct delivery_rcpt *rcpt,
    const struct smtp_ext *ext)
{
	const char *sep = "";

	buf_printf(b, "RCPT TO:<%s>", rcpt->address);
	if (ext->flags & SMTP_EXT_DSN) {
		if (rcpt->notify & DSN_NOTIFY_NEVER)
			buf_append_str(b, " NOTIFY=NEVER");
		else if (rcpt->notify != 0) {
			buf_append_str(b, " NOTIFY=");
			if (rcpt->notify & DSN_NOTIFY_SUCCESS) {
				buf_printf(b, "%sSUCCESS", sep);
				sep = ",";
			}
			if (rcpt->notify & DSN_NOTIFY_FAILURE) {
				buf_printf(b, "%sFAILURE", sep);
				sep = ",";
			}
			if (rcpt->notify & DSN_NOTIFY_DELAY)
				buf_printf(b, "%sDELAY", sep);
		}
		if (rcpt->orcpt != NULL) {
			buf_append_str(b, " ORCPT=");
			smtp_orcpt_encode(b, rcpt->orcpt);
		}
	}
	buf_append(b, "\r\n", 2);
}

void
smtp_dot_init(struct smtp_dot *d)
{
	d->bol = true;
	d->any = false;
}

void
smtp_dot_stuff(struct smtp_dot *d, const char *in, size_t len,
    struct evbuffer *out)
{
	const char *p = in, *end = in + len, *nl;

	if (len > 0)
		d->any = true;
	while (p < end) {
		if (d->bol && *p == '.')
			evbuffer_add(out, ".", 1);
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL) {
			evbuffer_add(out, p, (size_t)(end - p));
			d->bol = false;
			return;
		}
		evbuffer_add(out, p, (size_t)(nl + 1 - p));
		d->bol = true;
		p = nl + 1;
	}
}

void
smtp_dot_end(struct smtp_dot *d, struct evbuffer *out)
{
	/* RFC 5321 4.1.1.4: the terminator must follow a complete line. */
	if (d->any && !d->bol)
		evbuffer_add(out, "\r\n", 2);
	evbuffer_add(out, ".\r\n", 3);
}

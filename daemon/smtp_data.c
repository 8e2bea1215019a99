/*
 * smtp_data.c - message content reader for DATA and BDAT; see smtp_data.h.
 *
 * RFC 5321 2.3.8: CR and LF must only occur together as CRLF. Accepting a
 * bare LF (or CR) as a line end is what SMTP smuggling exploits, because
 * then "<LF>.<LF>" or "<LF>.<CR><LF>" ends the data for one MTA and not for
 * the next. We refuse the first bare CR or LF immediately.
 *
 * RFC 5322 2.2 for header fields: a field name is printable ASCII other
 * than ':'; folded continuation lines begin with SP or HTAB. A line that is
 * neither ends the header block (Postfix does the same) and becomes the
 * first body line.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "smtp_data.h"

void
smtp_data_init(struct smtp_data *d, enum smtp_data_mode mode,
    const struct smtp_data_limits *limits, smtp_data_sink_fn sink,
    void *sink_arg)
{
	memset(d, 0, sizeof(*d));
	d->mode = mode;
	d->limits = *limits;
	d->sink = sink;
	d->sink_arg = sink_arg;
	buf_init(&d->headers, 0);
	buf_init(&d->line, 0);
	d->in_header = true;
}

void
smtp_data_deinit(struct smtp_data *d)
{
	buf_deinit(&d->headers);
	buf_deinit(&d->line);
}

static void
set_error(struct smtp_data *d, enum smtp_data_error e)
{
	if (d->error == SMTP_DATA_OK)
		d->error = e;
}

/* header_name_ok - a field name of RFC 5322 2.2 ends at the colon */
static bool
header_name_ok(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] == ':')
			return i > 0;
		if ((unsigned char)p[i] <= 32 || (unsigned char)p[i] >= 127)
			return false;
	}
	return false;
}

static void
body_line(struct smtp_data *d, const char *p, size_t n)
{
	if (d->error != SMTP_DATA_OK)
		return;
	if (d->sink(d->sink_arg, p, n) == -1 ||
	    d->sink(d->sink_arg, "\r\n", 2) == -1)
		set_error(d, SMTP_DATA_SINK_FAILED);
}

/* header_line - add a header line, or end the header block */
static void
header_line(struct smtp_data *d, const char *p, size_t n)
{
	bool continuation = n > 0 && (p[0] == ' ' || p[0] == '\t');

	if (n == 0) {			/* the separator: not stored */
		d->in_header = false;
		return;
	}
	if (continuation && d->header_count == 0) {
		d->in_header = false;
		body_line(d, p, n);
		return;
	}
	if (!continuation && !header_name_ok(p, n)) {
		d->in_header = false;
		body_line(d, p, n);
		return;
	}
	if (!continuation) {
		d->header_count++;
		if (n >= 9 && strncasecmp(p, "Received:", 9) == 0)
			d->hops++;
		if (d->limits.max_header_count != 0 &&
		    d->header_count > d->limits.max_header_count)
			set_error(d, SMTP_DATA_TOO_MANY_HEADERS);
		if (d->limits.max_hops != 0 && d->hops > d->limits.max_hops)
			set_error(d, SMTP_DATA_TOO_MANY_HOPS);
	}
	if (d->limits.max_header != 0 &&
	    d->headers.len + n + 2 > d->limits.max_header)
		set_error(d, SMTP_DATA_HEADER_TOO_BIG);
	if (d->error != SMTP_DATA_OK)
		return;
	buf_append(&d->headers, p, n);
	buf_append(&d->headers, "\r\n", 2);
}

/*
 * finish_line - a complete line (without CRLF): p/n is what is kept of
 * it; overflow says bytes beyond the line limit were dropped (and
 * counted in d->size already)
 */
static void
finish_line(struct smtp_data *d, const char *p, size_t n, bool overflow)
{
	if (d->mode == SMTP_DATA_DOT && n > 0 && p[0] == '.') {
		if (n == 1 && !overflow) {
			d->done = true;
			return;
		}
		p++;			/* RFC 5321 4.5.2 transparency */
		n--;
	}
	d->size += n + 2;
	if (d->limits.max_size != 0 && d->size > d->limits.max_size)
		set_error(d, SMTP_DATA_TOO_BIG);
	if (overflow)
		set_error(d, SMTP_DATA_LINE_TOO_LONG);
	if (d->in_header)
		header_line(d, p, n);
	else
		body_line(d, p, n);
}

/* end_of_line - the line assembled in d->line is complete */
static void
end_of_line(struct smtp_data *d)
{
	finish_line(d, buf_cstr(&d->line), d->line.len, d->line_overflow);
	buf_reset(&d->line);
	d->line_overflow = false;
}

/* has_8bit - a byte >= 0x80 in p/n, eight bytes at a time */
static bool
has_8bit(const char *p, size_t n)
{
	uint64_t w;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		memcpy(&w, p + i, 8);
		if (w & UINT64_C(0x8080808080808080))
			return true;
	}
	for (; i < n; i++)
		if ((unsigned char)p[i] >= 0x80)
			return true;
	return false;
}

/* add_text - bytes of the current line, none of them CR or LF */
static void
add_text(struct smtp_data *d, const char *p, size_t n)
{
	size_t room;

	if (!d->eight_bit && has_8bit(p, n))
		d->eight_bit = true;
	if (d->line_overflow) {
		d->size += n;		/* dropped, but still counted */
		return;
	}
	room = d->limits.max_line > d->line.len ?
	    d->limits.max_line - d->line.len : 0;
	if (d->limits.max_line != 0 && n > room) {
		/* keep the start: it may be the "." that ends DATA */
		buf_append(&d->line, p, room);
		d->line_overflow = true;
		d->size += n - room;
		return;
	}
	buf_append(&d->line, p, n);
}

/*
 * whole_line - fast path: a line that lies complete in the input, CRLF
 * included, and nothing of it was assembled before: no copy into d->line
 */
static void
whole_line(struct smtp_data *d, const char *p, size_t n)
{
	size_t max = d->limits.max_line;

	if (!d->eight_bit && has_8bit(p, n))
		d->eight_bit = true;
	if (max != 0 && n > max) {
		d->size += n - max;
		finish_line(d, p, max, true);
	} else
		finish_line(d, p, n, false);
}

size_t
smtp_data_feed(struct smtp_data *d, const char *p, size_t n)
{
	const char *cr, *lf;
	size_t i = 0, end;

	while (i < n && !d->done && d->error != SMTP_DATA_BARE_EOL) {
		if (d->cr_pending) {
			d->cr_pending = false;
			if (p[i] != '\n') {
				d->error = SMTP_DATA_BARE_EOL;
				break;
			}
			i++;
			end_of_line(d);
			continue;
		}
		/* the run of ordinary bytes up to the next CR; no LF in it */
		cr = memchr(p + i, '\r', n - i);
		end = cr != NULL ? (size_t)(cr - p) : n;
		if ((lf = memchr(p + i, '\n', end - i)) != NULL) {
			add_text(d, p + i, (size_t)(lf - p) - i);
			i = (size_t)(lf - p);
			d->error = SMTP_DATA_BARE_EOL;
			break;
		}
		if (cr != NULL && end + 1 < n && p[end + 1] == '\n' &&
		    d->line.len == 0 && !d->line_overflow) {
			whole_line(d, p + i, end - i);
			i = end + 2;
			continue;
		}
		add_text(d, p + i, end - i);
		i = end;
		if (i == n)
			break;
		d->cr_pending = true;
		i++;
	}
	return i;
}

void
smtp_data_finish(struct smtp_data *d)
{
	if (d->cr_pending || d->line.len > 0 || d->line_overflow)
		d->error = SMTP_DATA_BARE_EOL;
}

const char *
smtp_data_error_reply(enum smtp_data_error e)
{
	switch (e) {
	case SMTP_DATA_OK:
		return "250 2.0.0 Ok";
	case SMTP_DATA_BARE_EOL:
		return "554 5.6.0 Error: bare <CR> or <LF> in message data "
		    "(RFC 5321 section 2.3.8)";
	case SMTP_DATA_LINE_TOO_LONG:
		return "554 5.6.0 Error: message line too long";
	case SMTP_DATA_TOO_BIG:
		return "552 5.3.4 Error: message file too big";
	case SMTP_DATA_HEADER_TOO_BIG:
		return "552 5.3.4 Error: message header too big";
	case SMTP_DATA_TOO_MANY_HEADERS:
		return "552 5.3.4 Error: too many header fields";
	case SMTP_DATA_TOO_MANY_HOPS:
		return "554 5.4.6 Error: too many hops (mail loop?)";
	case SMTP_DATA_SINK_FAILED:
		return "451 4.3.0 Error: queue file write error";
	}
	return "451 4.3.0 Error: internal error";
}

/*
 * bounce.c - build non-delivery notifications as RFC 3464 delivery status
 * notifications: a multipart/report (RFC 6522) with a human-readable part,
 * a message/delivery-status part and the returned message.
 *
 * This module only formats. It does not decide who bounces (qmgr.c), does
 * not write the spool (qmgr.c through spool.c) and never sees a file
 * descriptor, so the unit test can check every byte.
 *
 * Rules applied here:
 *   - RFC 3461 section 4.1: NOTIFY=NEVER means no DSN for that recipient;
 *     without NOTIFY, or with FAILURE, a failure DSN is sent.
 *   - RFC 3461 section 4.3: RET=HDRS returns the headers only
 *     (text/rfc822-headers); we also do so when the original is larger
 *     than BOUNCE_SIZE_LIMIT, rather than cutting a MIME part in half.
 *   - RFC 3464 section 2.2 (per-message fields) and 2.3 (per-recipient
 *     fields); the null sender is never sent a DSN (RFC 5321 6.1), which
 *     bounce_needed encodes and qmgr.c respects.
 * Every value that came from a peer is stripped of control characters
 * before it goes into a header field, so no reply text can add fields.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bounce.h"
#include "buf.h"
#include "spool.h"

bool
bounce_wanted(unsigned notify)
{
	if (notify & DSN_NOTIFY_NEVER)
		return false;
	return notify == 0 || (notify & DSN_NOTIFY_FAILURE) != 0;
}

bool
bounce_needed(const char *sender, const struct bounce_rcpt *rcpts,
    size_t nrcpts)
{
	size_t i;

	if (sender == NULL || *sender == '\0')
		return false;
	for (i = 0; i < nrcpts; i++) {
		if (bounce_wanted(rcpts[i].notify))
			return true;
	}
	return false;
}

/* put_clean - append s with CR, LF and other controls turned into spaces */
static void
put_clean(struct buf *b, const char *s)
{
	const unsigned char *p;
	char c;

	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		c = (*p < 0x20 || *p == 0x7f) ? ' ' : (char)*p;
		buf_append(b, &c, 1);
	}
}

/* put_date - RFC 5322 section 3.3 date-time, in UTC (no locale) */
static void
put_date(struct buf *b, time_t t)
{
	static const char *const days[] = {
		"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"
	};
	static const char *const months[] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
	};
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL) {
		/* out of range for struct tm: say the epoch, never garbage */
		t = 0;
		gmtime_r(&t, &tm);
	}
	buf_printf(b, "%s, %d %s %d %02d:%02d:%02d +0000",
	    days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* is_smtp_reply - "ddd" followed by space, '-' or end: an SMTP reply */
static bool
is_smtp_reply(const char *s)
{
	return s != NULL && s[0] >= '2' && s[0] <= '5' &&
	    isdigit((unsigned char)s[1]) && isdigit((unsigned char)s[2]) &&
	    (s[3] == ' ' || s[3] == '-' || s[3] == '\0');
}

/*
 * remote_reply - the SMTP reply inside the SMTP transport's diagnosis
 * "host H said: 550 5.1.1 text (in reply to RCPT TO command)", into out;
 * any other text is returned as it is. The DSN wants the reply alone
 * (RFC 3464 2.3.6), the human-readable part adds the host itself.
 */
static const char *
remote_reply(const char *text, char *out, size_t n)
{
	const char *p, *end;
	size_t len;

	if (text == NULL || strncmp(text, "host ", 5) != 0 ||
	    (p = strstr(text, " said: ")) == NULL)
		return text;
	p += 7;
	len = strlen(p);
	if ((end = strstr(p, " (in reply to ")) != NULL)
		len = (size_t)(end - p);
	if (len >= n)
		len = n - 1;
	memcpy(out, p, len);
	out[len] = '\0';
	return out;
}

/*
 * relay_host - "mx.example.net" out of "mx.example.net[192.0.2.25]:25"
 * (the form of the log's relay= field), into out.
 */
static void
relay_host(char *out, size_t n, const char *relay)
{
	size_t len = strcspn(relay, "[");

	if (len >= n)
		len = n - 1;
	memcpy(out, relay, len);
	out[len] = '\0';
}

/* put_status - the Status: of a failed recipient must be 5.x.y */
static void
put_status(struct buf *b, const char *dsn)
{
	/*
	 * A temporary code (4.4.7 on expiry) is reported as permanent: the
	 * recipient has failed for good (Postfix does the same).
	 */
	if (dsn != NULL && (dsn[0] == '4' || dsn[0] == '5') && dsn[1] == '.')
		buf_printf(b, "5%s", dsn + 1);
	else
		buf_append_str(b, "5.0.0");
}

static void
human_part(struct buf *b, const struct bounce_input *in)
{
	size_t i;
	char host[256];

	buf_printf(b, "This is the mail relay at %s.\r\n\r\n",
	    in->myhostname);
	buf_append_str(b,
	    "Your message could not be delivered to one or more of its\r\n"
	    "recipients, and no further attempt will be made. The reasons\r\n"
	    "are given below; the message itself is attached.\r\n\r\n"
	    "If you need help, write to the postmaster of this site and\r\n"
	    "include this report.\r\n\r\n");
	for (i = 0; i < in->nrcpts; i++) {
		const struct bounce_rcpt *r = &in->rcpts[i];
		char rbuf[1024];
		const char *reply = remote_reply(r->reply, rbuf, sizeof(rbuf));

		if (!bounce_wanted(r->notify))
			continue;
		buf_append_str(b, "<");
		put_clean(b, r->address);
		buf_append_str(b, ">: ");
		if (r->relay != NULL && is_smtp_reply(reply)) {
			const char *rb = strchr(r->relay, ']');
			size_t len = rb != NULL ? (size_t)(rb - r->relay + 1) :
			    strlen(r->relay);

			/* "host name[address]", without the port */
			if (len >= sizeof(host))
				len = sizeof(host) - 1;
			memcpy(host, r->relay, len);
			host[len] = '\0';
			buf_append_str(b, "host ");
			put_clean(b, host);
			buf_append_str(b, " said: ");
		}
		put_clean(b, reply != NULL ? reply : "delivery failed");
		buf_append_str(b, "\r\n");
	}
}

static size_t
status_part(struct buf *b, const struct bounce_input *in)
{
	char host[256];
	size_t i, n = 0;

	/* RFC 3464 section 2.2: per-message fields */
	buf_printf(b, "Reporting-MTA: dns; %s\r\n", in->myhostname);
	buf_printf(b, "X-Postern-Queue-ID: %s\r\n", in->queue_id);
	if (in->envid != NULL) {
		buf_append_str(b, "Original-Envelope-Id: ");
		put_clean(b, in->envid);
		buf_append_str(b, "\r\n");
	}
	buf_append_str(b, "Arrival-Date: ");
	put_date(b, in->arrival);
	buf_append_str(b, "\r\n");

	/* section 2.3: one group per recipient, each after a blank line */
	for (i = 0; i < in->nrcpts; i++) {
		const struct bounce_rcpt *r = &in->rcpts[i];
		char rbuf[1024];
		const char *reply = remote_reply(r->reply, rbuf, sizeof(rbuf));

		if (!bounce_wanted(r->notify))
			continue;
		n++;
		buf_append_str(b, "\r\n");
		if (r->orcpt != NULL) {
			buf_append_str(b, "Original-Recipient: ");
			put_clean(b, r->orcpt);
			buf_append_str(b, "\r\n");
		}
		buf_append_str(b, "Final-Recipient: rfc822; ");
		put_clean(b, r->address);
		buf_append_str(b, "\r\nAction: failed\r\nStatus: ");
		put_status(b, r->dsn);
		buf_append_str(b, "\r\n");
		if (r->relay != NULL && is_smtp_reply(reply)) {
			relay_host(host, sizeof(host), r->relay);
			buf_append_str(b, "Remote-MTA: dns; ");
			put_clean(b, host);
			buf_append_str(b, "\r\n");
		}
		/* RFC 3464 2.3.6: diagnostic-type "smtp" only for replies */
		buf_append_str(b, is_smtp_reply(reply) ?
		    "Diagnostic-Code: smtp; " : "Diagnostic-Code: X-Postern; ");
		put_clean(b, reply != NULL ? reply : "delivery failed");
		buf_append_str(b, "\r\n");
	}
	return n;
}

size_t
bounce_build(const struct bounce_input *in, struct buf *headers,
    struct buf *body)
{
	char boundary[160];
	bool full;
	size_t n, total;

	if (!bounce_needed(in->sender, in->rcpts, in->nrcpts))
		return 0;
	snprintf(boundary, sizeof(boundary), "%s.%lld/%s", in->dsn_queue_id,
	    (long long)in->now, in->myhostname);
	total = in->header_len + 2 + in->body_len;
	full = in->body != NULL && (in->ret == NULL ||
	    strcmp(in->ret, "HDRS") != 0) && total <= BOUNCE_SIZE_LIMIT;

	/* RFC 3464 section 2: the DSN's own header */
	buf_printf(headers, "From: MAILER-DAEMON@%s (Mail Delivery System)"
	    "\r\n", in->myhostname);
	buf_append_str(headers, "To: <");
	put_clean(headers, in->sender);
	buf_append_str(headers, ">\r\n");
	buf_append_str(headers,
	    "Subject: Undelivered Mail Returned to Sender\r\n");
	buf_append_str(headers, "Date: ");
	put_date(headers, in->now);
	buf_append_str(headers, "\r\n");
	buf_printf(headers, "Message-ID: <%s.%lld@%s>\r\n", in->dsn_queue_id,
	    (long long)in->now, in->myhostname);
	/* RFC 3834 section 5: no auto-reply to this, please */
	buf_append_str(headers, "Auto-Submitted: auto-replied\r\n");
	buf_append_str(headers, "MIME-Version: 1.0\r\n");
	buf_printf(headers, "Content-Type: multipart/report; "
	    "report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n", boundary);
	buf_printf(headers, "Content-Transfer-Encoding: %s\r\n",
	    in->eightbit ? "8bit" : "7bit");

	buf_append_str(body, "This is a MIME-encapsulated message.\r\n\r\n");

	/* part 1: for people */
	buf_printf(body, "--%s\r\n", boundary);
	buf_append_str(body, "Content-Description: Notification\r\n"
	    "Content-Type: text/plain; charset=us-ascii\r\n\r\n");
	human_part(body, in);
	buf_append_str(body, "\r\n");

	/* part 2: for programs (RFC 3464 section 2.1) */
	buf_printf(body, "--%s\r\n", boundary);
	buf_append_str(body, "Content-Description: Delivery report\r\n"
	    "Content-Type: message/delivery-status\r\n\r\n");
	n = status_part(body, in);
	buf_append_str(body, "\r\n");

	/* part 3: the returned message or its headers (RFC 3462/6522) */
	if (in->headers != NULL) {
		buf_printf(body, "--%s\r\n", boundary);
		if (full) {
			buf_append_str(body, "Content-Description: "
			    "Undelivered Message\r\n"
			    "Content-Type: message/rfc822\r\n");
		} else {
			buf_append_str(body, "Content-Description: "
			    "Undelivered Message Headers\r\n"
			    "Content-Type: text/rfc822-headers\r\n");
		}
		if (in->eightbit)
			buf_append_str(body,
			    "Content-Transfer-Encoding: 8bit\r\n");
		buf_append_str(body, "\r\n");
		buf_append(body, in->headers, in->header_len);
		if (full) {
			buf_append_str(body, "\r\n");
			buf_append(body, in->body, in->body_len);
			/* the closing delimiter must start a line */
			if (in->body_len > 0 &&
			    in->body[in->body_len - 1] != '\n')
				buf_append_str(body, "\r\n");
		}
		buf_append_str(body, "\r\n");
	}
	buf_printf(body, "--%s--\r\n", boundary);
	return n;
}

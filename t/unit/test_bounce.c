/*
 * test_bounce.c - unit tests of daemon/bounce.c: the DSN is parsed back
 * (header fields, MIME parts, delivery-status groups) and compared with
 * what RFC 3461/3464 require for each case.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bounce.h"
#include "buf.h"
#include "spool.h"
#include "tap.h"
#include "xmalloc.h"

#define MAXPARTS 8

struct parsed {
	char	*content_type;		/* of the whole message */
	char	*boundary;
	size_t	 nparts;
	char	*part_type[MAXPARTS];	/* Content-Type of each part */
	char	*part_body[MAXPARTS];
	bool	 closed;		/* saw the closing delimiter */
	/* from the delivery-status part */
	struct buf statuses;		/* "5.1.1,5.4.7," */
	struct buf finals;		/* "a@x,b@y," */
	struct buf remotes;		/* "dns; mx,..." */
	struct buf diags;		/* diagnostic types, "smtp," */
	bool	 has_envid;
	bool	 has_reporting_mta;
	bool	 has_arrival;
	int	 orcpts;
};

/* header_value - value of the first "name:" field in a CRLF header block */
static char *
header_value(const char *hdrs, const char *name)
{
	const char *p = hdrs, *eol;
	size_t nl = strlen(name);
	struct buf v;

	for (; *p != '\0'; p = eol + 2) {
		if ((eol = strstr(p, "\r\n")) == NULL)
			return NULL;
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			buf_init(&v, 0);
			p += nl + 1;
			while (*p == ' ')
				p++;
			buf_append(&v, p, (size_t)(eol - p));
			/* unfold continuation lines */
			while (eol[2] == ' ' || eol[2] == '\t') {
				p = eol + 2;
				eol = strstr(p, "\r\n");
				buf_append(&v, p, (size_t)(eol - p));
			}
			return buf_steal(&v);
		}
	}
	return NULL;
}

static void
parse_status(struct parsed *ps, const char *s)
{
	const char *p = s, *eol;

	for (; (eol = strstr(p, "\r\n")) != NULL; p = eol + 2) {
		size_t l = (size_t)(eol - p);
		char line[1024];

		if (l >= sizeof(line))
			l = sizeof(line) - 1;
		memcpy(line, p, l);
		line[l] = '\0';
		if (strncmp(line, "Status: ", 8) == 0)
			buf_printf(&ps->statuses, "%s,", line + 8);
		else if (strncmp(line, "Final-Recipient: rfc822; ", 25) == 0)
			buf_printf(&ps->finals, "%s,", line + 25);
		else if (strncmp(line, "Remote-MTA: ", 12) == 0)
			buf_printf(&ps->remotes, "%s,", line + 12);
		else if (strncmp(line, "Diagnostic-Code: ", 17) == 0)
			buf_printf(&ps->diags, "%.*s,",
			    (int)strcspn(line + 17, ";"), line + 17);
		else if (strncmp(line, "Original-Envelope-Id: ", 22) == 0)
			ps->has_envid = true;
		else if (strncmp(line, "Reporting-MTA: dns; ", 20) == 0)
			ps->has_reporting_mta = true;
		else if (strncmp(line, "Arrival-Date: ", 14) == 0)
			ps->has_arrival = true;
		else if (strncmp(line, "Original-Recipient: ", 20) == 0)
			ps->orcpts++;
	}
}

/* parse_dsn - split the body into MIME parts along the boundary */
static void
parse_dsn(struct parsed *ps, const char *hdrs, const char *body)
{
	char *delim, *close_delim, *q;
	const char *p, *next;

	memset(ps, 0, sizeof(*ps));
	buf_init(&ps->statuses, 0);
	buf_init(&ps->finals, 0);
	buf_init(&ps->remotes, 0);
	buf_init(&ps->diags, 0);
	ps->content_type = header_value(hdrs, "Content-Type");
	if (ps->content_type == NULL ||
	    (q = strstr(ps->content_type, "boundary=\"")) == NULL)
		return;
	ps->boundary = xstrndup(q + 10, strcspn(q + 10, "\""));
	delim = xasprintf("\r\n--%s\r\n", ps->boundary);
	close_delim = xasprintf("\r\n--%s--\r\n", ps->boundary);
	p = strstr(body, delim);
	while (p != NULL && ps->nparts < MAXPARTS) {
		const char *start = p + strlen(delim), *sep;
		char *ph;

		next = strstr(start, delim);
		if (next == NULL) {
			next = strstr(start, close_delim);
			ps->closed = next != NULL;
			if (next == NULL)
				break;
		}
		sep = strstr(start, "\r\n\r\n");
		if (sep == NULL || sep > next)
			break;
		ph = xstrndup(start, (size_t)(sep - start + 2));
		ps->part_type[ps->nparts] = header_value(ph, "Content-Type");
		ps->part_body[ps->nparts] = xstrndup(sep + 4,
		    (size_t)(next - sep - 4 + 2));
		free(ph);
		ps->nparts++;
		p = ps->closed ? NULL : next;
	}
	if (ps->nparts >= 2 && ps->part_type[1] != NULL &&
	    strcmp(ps->part_type[1], "message/delivery-status") == 0)
		parse_status(ps, ps->part_body[1]);
	free(delim);
	free(close_delim);
}

static void
parsed_free(struct parsed *ps)
{
	size_t i;

	free(ps->content_type);
	free(ps->boundary);
	for (i = 0; i < ps->nparts; i++) {
		free(ps->part_type[i]);
		free(ps->part_body[i]);
	}
	buf_deinit(&ps->statuses);
	buf_deinit(&ps->finals);
	buf_deinit(&ps->remotes);
	buf_deinit(&ps->diags);
}

static const char orig_hdrs[] =
    "From: alice@example.org\r\nTo: bob@example.net\r\nSubject: hi\r\n";
static const char orig_body[] = "Hello Bob.\r\n";

struct want {
	size_t	 n;		/* recipients reported; 0: no DSN */
	const char *part3;	/* Content-Type of the returned part */
	const char *statuses;
	const char *finals;
	const char *remotes;
	const char *diags;
	bool	 envid;
	int	 orcpts;
	bool	 body_returned;	/* the original body is in part 3 */
};

struct tcase {
	const char *name;
	const char *sender;
	const char *ret;
	const char *envid;
	size_t	 body_size;	/* 0: orig_body; else that many 'x' */
	struct bounce_rcpt rcpts[3];
	size_t	 nrcpts;
	struct want want;
};

static const struct tcase cases[] = {
	{ "one smtp failure", "alice@example.org", NULL, "ENV1", 0,
	    { { "bob@example.net", "rfc822;Bob@example.net", 0, "5.1.1",
	    "550 5.1.1 <bob@example.net>: user unknown",
	    "mx.example.net[192.0.2.25]:25" } }, 1,
	    { 1, "message/rfc822", "5.1.1,", "bob@example.net,",
	    "dns; mx.example.net,", "smtp,", true, 1, true } },
	{ "transport diagnosis", "alice@example.org", NULL, NULL, 0,
	    { { "bob@example.net", NULL, 0, "5.1.1",
	    "host mx.example.net[192.0.2.25] said: 550 5.1.1 "
	    "<bob@example.net>: user unknown (in reply to RCPT TO command)",
	    "mx.example.net[192.0.2.25]:25" } }, 1,
	    { 1, "message/rfc822", "5.1.1,", "bob@example.net,",
	    "dns; mx.example.net,", "smtp,", false, 0, true } },
	{ "RET=HDRS", "alice@example.org", "HDRS", NULL, 0,
	    { { "bob@example.net", NULL, DSN_NOTIFY_FAILURE, "5.7.1",
	    "554 5.7.1 rejected", "mx[192.0.2.1]:25" } }, 1,
	    { 1, "text/rfc822-headers", "5.7.1,", "bob@example.net,",
	    "dns; mx,", "smtp,", false, 0, false } },
	{ "NOTIFY=NEVER skips one", "alice@example.org", "FULL", NULL, 0,
	    { { "a@x.example", NULL, DSN_NOTIFY_NEVER, "5.1.1", "550 no",
	    "mx[192.0.2.1]:25" },
	    { "b@x.example", NULL, DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY,
	    "5.2.2", "552 full", "mx[192.0.2.1]:25" } }, 2,
	    { 1, "message/rfc822", "5.2.2,", "b@x.example,", "dns; mx,",
	    "smtp,", false, 0, true } },
	{ "all NEVER: no DSN", "alice@example.org", NULL, NULL, 0,
	    { { "a@x.example", NULL, DSN_NOTIFY_NEVER, "5.1.1", "550 no",
	    NULL } }, 1, { 0, NULL, NULL, NULL, NULL, NULL, false, 0,
	    false } },
	{ "SUCCESS only: no DSN", "alice@example.org", NULL, NULL, 0,
	    { { "a@x.example", NULL, DSN_NOTIFY_SUCCESS, "5.1.1", "550 no",
	    NULL } }, 1, { 0, NULL, NULL, NULL, NULL, NULL, false, 0,
	    false } },
	{ "null sender: no DSN", "", NULL, NULL, 0,
	    { { "a@x.example", NULL, 0, "5.1.1", "550 no", NULL } }, 1,
	    { 0, NULL, NULL, NULL, NULL, NULL, false, 0, false } },
	{ "expired, local diagnosis", "alice@example.org", NULL, NULL, 0,
	    { { "a@x.example", NULL, 0, "4.4.7",
	    "message expired: connection refused", NULL },
	    { "b@y.example", NULL, 0, "4.4.1", "421 4.4.1 busy",
	    "mx.y[192.0.2.9]:25" } }, 2,
	    { 2, "message/rfc822", "5.4.7,5.4.1,", "a@x.example,b@y.example,",
	    "dns; mx.y,", "X-Postern,smtp,", false, 0, true } },
	{ "CRLF in reply cannot add fields", "alice@example.org", NULL,
	    "E\r\nX-Evil: 1", 0,
	    { { "a@x.example", "rfc822;a\r\nStatus: 2.0.0", 0, "5.1.1",
	    "550 5.1.1 no\r\nStatus: 2.0.0\r\nFinal-Recipient: rfc822; z",
	    "mx[192.0.2.1]:25" } }, 1,
	    { 1, "message/rfc822", "5.1.1,", "a@x.example,", "dns; mx,",
	    "smtp,", true, 1, true } },
	{ "too big: headers only", "alice@example.org", NULL, NULL, 60000,
	    { { "a@x.example", NULL, 0, "5.3.4", "552 5.3.4 too big",
	    "mx[192.0.2.1]:25" } }, 1,
	    { 1, "text/rfc822-headers", "5.3.4,", "a@x.example,", "dns; mx,",
	    "smtp,", false, 0, false } },
	{ "bad dsn code", "alice@example.org", NULL, NULL, 0,
	    { { "a@x.example", NULL, 0, "", "maildir: invalid user", NULL } },
	    1, { 1, "message/rfc822", "5.0.0,", "a@x.example,", "",
	    "X-Postern,", false, 0, true } },
};

static void
check_case(const struct tcase *c)
{
	struct bounce_input in;
	struct buf h, b;
	struct parsed ps;
	char *big = NULL, *v;
	size_t n;

	memset(&in, 0, sizeof(in));
	in.myhostname = "relay.example.test";
	in.queue_id = "00ORIGINAL1";
	in.dsn_queue_id = "00BOUNCE001";
	in.sender = c->sender;
	in.envid = c->envid;
	in.ret = c->ret;
	in.arrival = 1700000000;
	in.now = 1700003600;
	in.rcpts = c->rcpts;
	in.nrcpts = c->nrcpts;
	in.headers = orig_hdrs;
	in.header_len = strlen(orig_hdrs);
	if (c->body_size > 0) {
		big = xmalloc(c->body_size + 1);
		memset(big, 'x', c->body_size);
		big[c->body_size] = '\0';
		in.body = big;
		in.body_len = c->body_size;
	} else {
		in.body = orig_body;
		in.body_len = strlen(orig_body);
	}
	buf_init(&h, 0);
	buf_init(&b, 0);
	n = bounce_build(&in, &h, &b);
	is_int(n, c->want.n, "%s: recipients reported", c->name);
	if (c->want.n == 0) {
		is_int(h.len + b.len, 0, "%s: nothing built", c->name);
		goto out;
	}
	/* the header block: no blank line inside, CRLF terminated */
	ok(strstr(buf_cstr(&h), "\r\n\r\n") == NULL && h.len > 2 &&
	    memcmp(h.data + h.len - 2, "\r\n", 2) == 0,
	    "%s: header block well formed", c->name);
	v = header_value(buf_cstr(&h), "From");
	is_str(v, "MAILER-DAEMON@relay.example.test (Mail Delivery System)",
	    "%s: From", c->name);
	free(v);
	v = header_value(buf_cstr(&h), "To");
	is_str(v, "<alice@example.org>", "%s: To", c->name);
	free(v);
	v = header_value(buf_cstr(&h), "Subject");
	is_str(v, "Undelivered Mail Returned to Sender", "%s: Subject",
	    c->name);
	free(v);
	v = header_value(buf_cstr(&h), "Auto-Submitted");
	is_str(v, "auto-replied", "%s: Auto-Submitted", c->name);
	free(v);
	v = header_value(buf_cstr(&h), "Date");
	is_str(v, "Tue, 14 Nov 2023 23:13:20 +0000", "%s: Date", c->name);
	free(v);
	v = header_value(buf_cstr(&h), "Message-ID");
	is_str(v, "<00BOUNCE001.1700003600@relay.example.test>",
	    "%s: Message-ID", c->name);
	free(v);
	/* the body: 3 parts */
	parse_dsn(&ps, buf_cstr(&h), buf_cstr(&b));
	ok(ps.content_type != NULL && strncmp(ps.content_type,
	    "multipart/report; report-type=delivery-status;", 46) == 0,
	    "%s: multipart/report", c->name);
	is_int(ps.nparts, 3, "%s: three parts", c->name);
	ok(ps.closed, "%s: closing delimiter", c->name);
	if (ps.nparts == 3) {
		ok(strncmp(ps.part_type[0], "text/plain", 10) == 0,
		    "%s: part 1 text/plain", c->name);
		is_str(ps.part_type[1], "message/delivery-status",
		    "%s: part 2 type", c->name);
		is_str(ps.part_type[2], c->want.part3, "%s: part 3 type",
		    c->name);
		ok(strstr(ps.part_body[2], "Subject: hi\r\n") != NULL,
		    "%s: original headers returned", c->name);
		is_int(strstr(ps.part_body[2], c->body_size ? "xxxx" :
		    "Hello Bob.") != NULL, c->want.body_returned,
		    "%s: body returned or not", c->name);
	}
	ok(ps.has_reporting_mta && ps.has_arrival,
	    "%s: Reporting-MTA and Arrival-Date", c->name);
	is_int(ps.has_envid, c->want.envid, "%s: Original-Envelope-Id",
	    c->name);
	is_int(ps.orcpts, c->want.orcpts, "%s: Original-Recipient count",
	    c->name);
	is_str(buf_cstr(&ps.statuses), c->want.statuses, "%s: Status",
	    c->name);
	is_str(buf_cstr(&ps.finals), c->want.finals, "%s: Final-Recipient",
	    c->name);
	is_str(buf_cstr(&ps.remotes), c->want.remotes, "%s: Remote-MTA",
	    c->name);
	is_str(buf_cstr(&ps.diags), c->want.diags, "%s: Diagnostic-Code type",
	    c->name);
	parsed_free(&ps);
out:
	buf_deinit(&h);
	buf_deinit(&b);
	free(big);
}

static void
test_wanted(void)
{
	static const struct {
		unsigned notify;
		bool	 want;
	} t[] = {
		{ 0, true },
		{ DSN_NOTIFY_FAILURE, true },
		{ DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY, true },
		{ DSN_NOTIFY_SUCCESS, false },
		{ DSN_NOTIFY_DELAY, false },
		{ DSN_NOTIFY_NEVER, false },
		{ DSN_NOTIFY_NEVER | DSN_NOTIFY_FAILURE, false },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		is_int(bounce_wanted(t[i].notify), t[i].want,
		    "bounce_wanted(0x%x)", t[i].notify);
}

int
main(void)
{
	size_t i;

	test_wanted();
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(&cases[i]);
	return done_testing();
}

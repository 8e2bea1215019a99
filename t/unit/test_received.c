/*
 * test_received.c - unit tests for daemon/received.c: the protocol
 * keywords of RFC 3848 and RFC 6531, the Postfix-like layout, the TLS
 * comment, "for" only with one recipient, sanitizing of client text,
 * folding, and the RFC 5322 date in several time zones.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "received.h"
#include "tap.h"

/* Tue, 14 May 2024 10:00:00 UTC */
#define T0	((time_t)1715680800)

#define BASE	.helo = "helo.example", .client_name = "client.example", \
		.client_addr = "192.0.2.7", .by = "relay.example.test",  \
		.queue_id = "4bKx7Q2mVZz9", .date = T0
#define TLS13	.tls = true, .tls_version = "TLSv1.3",			\
		.tls_cipher = "TLS_AES_256_GCM_SHA384",			\
		.tls_bits = 256, .tls_alg_bits = 256

static const struct proto_case {
	const char		*name;
	struct received_info	 ri;
	const char		*want;
} proto_cases[] = {
	{ "HELO", { BASE }, "SMTP" },
	{ "HELO ignores tls and auth", { BASE, .tls = true, .auth = true },
	    "SMTP" },
	{ "EHLO", { BASE, .esmtp = true }, "ESMTP" },
	{ "EHLO + TLS", { BASE, .esmtp = true, .tls = true }, "ESMTPS" },
	{ "EHLO + AUTH", { BASE, .esmtp = true, .auth = true }, "ESMTPA" },
	{ "EHLO + TLS + AUTH", { BASE, .esmtp = true, .tls = true,
	    .auth = true }, "ESMTPSA" },
	{ "SMTPUTF8", { BASE, .esmtp = true, .smtputf8 = true }, "UTF8SMTP" },
	{ "SMTPUTF8 + TLS + AUTH", { BASE, .esmtp = true, .smtputf8 = true,
	    .tls = true, .auth = true }, "UTF8SMTPSA" },
};

static const struct build_case {
	const char		*name;
	struct received_info	 ri;
	const char		*want;
} build_cases[] = {
	{ "ESMTP, one recipient",
	    { BASE, .esmtp = true, .rcpt = "bob@example.net", .nrcpt = 1 },
	    "Received: from helo.example (client.example [192.0.2.7])\r\n"
	    "\tby relay.example.test (Postern) with ESMTP id 4bKx7Q2mVZz9\r\n"
	    "\tfor <bob@example.net>; Tue, 14 May 2024 10:00:00 +0000\r\n" },
	{ "ESMTPSA with TLS comment",
	    { BASE, TLS13, .esmtp = true, .auth = true,
	    .rcpt = "bob@example.net", .nrcpt = 1 },
	    "Received: from helo.example (client.example [192.0.2.7])\r\n"
	    "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 "
	    "(256/256 bits))\r\n"
	    "\tby relay.example.test (Postern) with ESMTPSA id 4bKx7Q2mVZz9"
	    "\r\n"
	    "\tfor <bob@example.net>; Tue, 14 May 2024 10:00:00 +0000\r\n" },
	{ "TLS 1.2, 128 bits",
	    { BASE, .esmtp = true, .tls = true, .tls_version = "TLSv1.2",
	    .tls_cipher = "ECDHE-RSA-AES128-GCM-SHA256", .tls_bits = 128,
	    .tls_alg_bits = 128, .rcpt = "b@x.example", .nrcpt = 1 },
	    "Received: from helo.example (client.example [192.0.2.7])\r\n"
	    "\t(using TLSv1.2 with cipher ECDHE-RSA-AES128-GCM-SHA256 "
	    "(128/128 bits))\r\n"
	    "\tby relay.example.test (Postern) with ESMTPS id 4bKx7Q2mVZz9"
	    "\r\n"
	    "\tfor <b@x.example>; Tue, 14 May 2024 10:00:00 +0000\r\n" },
	{ "two recipients: no for",
	    { BASE, .esmtp = true, .rcpt = "bob@example.net", .nrcpt = 2 },
	    "Received: from helo.example (client.example [192.0.2.7])\r\n"
	    "\tby relay.example.test (Postern) with ESMTP id 4bKx7Q2mVZz9;"
	    "\r\n"
	    "\tTue, 14 May 2024 10:00:00 +0000\r\n" },
	{ "short line keeps the date",
	    { .helo = "h", .client_name = "c", .client_addr = "192.0.2.7",
	    .by = "r", .queue_id = "Q", .date = T0, .nrcpt = 0 },
	    "Received: from h (c [192.0.2.7])\r\n"
	    "\tby r (Postern) with SMTP id Q; Tue, 14 May 2024 10:00:00 "
	    "+0000\r\n" },
	{ "no HELO, no name, no queue id",
	    { .client_addr = "192.0.2.7", .by = "relay.example.test",
	    .date = T0 },
	    "Received: from unknown (unknown [192.0.2.7])\r\n"
	    "\tby relay.example.test (Postern) with SMTP; Tue, 14 May 2024 "
	    "10:00:00 +0000\r\n" },
	{ "IPv6 client",
	    { .helo = "helo.example", .client_name = "client.example",
	    .client_addr = "2001:db8::1", .by = "relay.example.test",
	    .queue_id = "4bKx7Q2mVZz9", .date = T0, .esmtp = true },
	    "Received: from helo.example (client.example [IPv6:2001:db8::1])"
	    "\r\n"
	    "\tby relay.example.test (Postern) with ESMTP id 4bKx7Q2mVZz9;"
	    "\r\n"
	    "\tTue, 14 May 2024 10:00:00 +0000\r\n" },
	{ "IPv6 prefix not doubled",
	    { .helo = "h", .client_name = "c", .client_addr = "IPv6:::1",
	    .by = "r", .date = T0 },
	    "Received: from h (c [IPv6:::1])\r\n"
	    "\tby r (Postern) with SMTP; Tue, 14 May 2024 10:00:00 +0000\r\n" },
	{ "HELO with CRLF and a fake header",
	    { .helo = "evil\r\nX-Injected: yes", .client_name = "c",
	    .client_addr = "192.0.2.7", .by = "r", .date = T0 },
	    "Received: from evil??X-Injected:?yes (c [192.0.2.7])\r\n"
	    "\tby r (Postern) with SMTP; Tue, 14 May 2024 10:00:00 +0000\r\n" },
	{ "HELO forging a comment",
	    { .helo = "x (trusted.example [10.0.0.1]);", .client_name = "c",
	    .client_addr = "192.0.2.7", .by = "r", .date = T0 },
	    "Received: from x??trusted.example?[10.0.0.1]?? (c [192.0.2.7])"
	    "\r\n"
	    "\tby r (Postern) with SMTP; Tue, 14 May 2024 10:00:00 +0000\r\n" },
	{ "HELO address literal kept",
	    { .helo = "[192.0.2.7]", .client_name = "c",
	    .client_addr = "192.0.2.7", .by = "r", .date = T0 },
	    "Received: from [192.0.2.7] (c [192.0.2.7])\r\n"
	    "\tby r (Postern) with SMTP; Tue, 14 May 2024 10:00:00 +0000\r\n" },
	{ "non-ASCII, tab, DEL in HELO; brackets in name",
	    { .helo = "h\xc3\xa9\t\x7f", .client_name = "c(x)[y]",
	    .client_addr = "192.0.2.7", .by = "r", .date = T0 },
	    "Received: from h???? (c?x??y? [192.0.2.7])\r\n"
	    "\tby r (Postern) with SMTP; Tue, 14 May 2024 10:00:00 +0000\r\n" },
	{ "recipient with angle brackets and LF",
	    { .helo = "h", .client_name = "c", .client_addr = "192.0.2.7",
	    .by = "r", .date = T0, .rcpt = "a>\nb@x", .nrcpt = 1 },
	    "Received: from h (c [192.0.2.7])\r\n"
	    "\tby r (Postern) with SMTP\r\n"
	    "\tfor <a??b@x>; Tue, 14 May 2024 10:00:00 +0000\r\n" },
	{ "UTF-8 recipient kept with SMTPUTF8",
	    { .helo = "h", .client_name = "c", .client_addr = "192.0.2.7",
	    .by = "r", .date = T0, .esmtp = true, .smtputf8 = true,
	    .rcpt = "j\xc3\xbcrgen@x", .nrcpt = 1 },
	    "Received: from h (c [192.0.2.7])\r\n"
	    "\tby r (Postern) with UTF8SMTP\r\n"
	    "\tfor <j\xc3\xbcrgen@x>; Tue, 14 May 2024 10:00:00 +0000\r\n" },
	{ "UTF-8 recipient replaced without SMTPUTF8",
	    { .helo = "h", .client_name = "c", .client_addr = "192.0.2.7",
	    .by = "r", .date = T0, .esmtp = true,
	    .rcpt = "j\xc3\xbcrgen@x", .nrcpt = 1 },
	    "Received: from h (c [192.0.2.7])\r\n"
	    "\tby r (Postern) with ESMTP\r\n"
	    "\tfor <j??rgen@x>; Tue, 14 May 2024 10:00:00 +0000\r\n" },
	{ "broken UTF-8 replaced even with SMTPUTF8",
	    { .helo = "h", .client_name = "c", .client_addr = "192.0.2.7",
	    .by = "r", .date = T0, .esmtp = true, .smtputf8 = true,
	    .rcpt = "j\xc3rgen@x", .nrcpt = 1 },
	    "Received: from h (c [192.0.2.7])\r\n"
	    "\tby r (Postern) with UTF8SMTP\r\n"
	    "\tfor <j?rgen@x>; Tue, 14 May 2024 10:00:00 +0000\r\n" },
	{ "long HELO folds before the comment",
	    { .helo = "a-rather-long-helo-name.with.many.labels.example.org",
	    .client_name = "mail.client.example.com",
	    .client_addr = "198.51.100.200", .by = "r", .date = T0 },
	    "Received: from a-rather-long-helo-name.with.many.labels.example.org"
	    "\r\n"
	    "\t(mail.client.example.com [198.51.100.200])\r\n"
	    "\tby r (Postern) with SMTP; Tue, 14 May 2024 10:00:00 +0000\r\n" },
};

/* check_lines - CRLF only, continuation lines start with TAB, lengths */
static void
check_lines(const char *name, const char *h, size_t soft, size_t hard)
{
	const char *p, *eol;
	size_t len, longest = 0;
	int bad_eol = 0, bad_cont = 0, first = 1;

	for (p = h; *p != '\0'; p = eol + 2) {
		if ((eol = strstr(p, "\r\n")) == NULL) {
			bad_eol++;
			break;
		}
		len = eol - p;
		if (memchr(p, '\r', len) != NULL || memchr(p, '\n', len) !=
		    NULL)
			bad_eol++;
		if (!first && *p != '\t')
			bad_cont++;
		if (len > longest)
			longest = len;
		first = 0;
	}
	is_int(bad_eol, 0, "%s: only CRLF line ends, ends in CRLF", name);
	is_int(bad_cont, 0, "%s: continuation lines begin with TAB", name);
	ok(longest <= hard, "%s: longest line %zu <= %zu", name, longest,
	    hard);
	if (soft != 0)
		ok(longest <= soft, "%s: longest line %zu <= %zu", name,
		    longest, soft);
}

static void
test_build(void)
{
	struct buf b;
	size_t i;

	buf_init(&b, 0);
	for (i = 0; i < sizeof(build_cases) / sizeof(build_cases[0]); i++) {
		const struct build_case *c = &build_cases[i];

		buf_reset(&b);
		is_int(received_build(&b, &c->ri), 0, "build: %s", c->name);
		is_str(buf_cstr(&b), c->want, "header: %s", c->name);
		check_lines(c->name, buf_cstr(&b), 78, 998);
	}
	buf_deinit(&b);
}

static void
test_protocol(void)
{
	size_t i;

	for (i = 0; i < sizeof(proto_cases) / sizeof(proto_cases[0]); i++)
		is_str(received_protocol(&proto_cases[i].ri),
		    proto_cases[i].want, "protocol: %s", proto_cases[i].name);
}

/* test_limits - hostile lengths: never a line over 998 */
static void
test_limits(void)
{
	struct received_info ri = { BASE, TLS13, .esmtp = true, .nrcpt = 1 };
	static char helo[4000], rcpt[4000], name[4000];
	struct buf b;

	memset(helo, 'h', sizeof(helo) - 1);
	memset(rcpt, 'r', sizeof(rcpt) - 1);
	memset(name, 'n', sizeof(name) - 1);
	ri.helo = helo;
	ri.client_name = name;
	ri.rcpt = rcpt;
	buf_init(&b, 0);
	is_int(received_build(&b, &ri), 0, "build: huge fields");
	check_lines("huge fields", buf_cstr(&b), 0, 998);
	ok(strstr(buf_cstr(&b), "[192.0.2.7])") != NULL &&
	    strstr(buf_cstr(&b), "ESMTPS id 4bKx7Q2mVZz9") != NULL,
	    "huge fields: the rest is intact");
	buf_deinit(&b);

	/* A capped buffer is left untouched. */
	buf_init(&b, 40);
	buf_append_str(&b, "X: y\r\n");
	is_int(received_build(&b, &ri), -1, "build: cap reached");
	is_str(buf_cstr(&b), "X: y\r\n", "build: buffer unchanged at cap");
	buf_deinit(&b);
}

static const struct date_case {
	const char	*name;
	const char	*tz;
	time_t		 t;
	const char	*want;
} date_cases[] = {
	{ "UTC", "UTC0", T0, "Tue, 14 May 2024 10:00:00 +0000" },
	{ "CEST (summer)", "CET-1CEST,M3.5.0,M10.5.0/3", T0,
	    "Tue, 14 May 2024 12:00:00 +0200" },
	{ "CET (winter)", "CET-1CEST,M3.5.0,M10.5.0/3", (time_t)1704067200,
	    "Mon, 1 Jan 2024 01:00:00 +0100" },
	{ "negative zone", "EST5", T0, "Tue, 14 May 2024 05:00:00 -0500" },
	{ "half-hour zone", "IST-5:30", T0,
	    "Tue, 14 May 2024 15:30:00 +0530" },
	{ "epoch", "UTC0", 0, "Thu, 1 Jan 1970 00:00:00 +0000" },
	{ "leap day", "UTC0", (time_t)1709208000,
	    "Thu, 29 Feb 2024 12:00:00 +0000" },
};

static void
test_date(void)
{
	char out[64];
	size_t i;

	for (i = 0; i < sizeof(date_cases) / sizeof(date_cases[0]); i++) {
		setenv("TZ", date_cases[i].tz, 1);
		tzset();
		is_str(received_date(date_cases[i].t, out, sizeof(out)),
		    date_cases[i].want, "date: %s", date_cases[i].name);
	}
	setenv("TZ", "UTC0", 1);
	tzset();
}

int
main(void)
{
	setenv("TZ", "UTC0", 1);
	tzset();
	test_protocol();
	test_date();
	test_build();
	test_limits();
	return done_testing();
}

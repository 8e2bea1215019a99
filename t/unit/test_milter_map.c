/*
 * test_milter_map.c - the pure mappings of postern-milter: chain replies
 * for smfi_setreply, envfrom/envrcpt arguments, header fields as libmilter
 * hands them, forged Authentication-Results as deletions, the client.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "milter/milter_map.h"
#include "tap.h"

static const struct {
	const char *name;
	const char *reply;
	char	 want_class;
	int	 want_rc;
	const char *code, *enhanced, *text;
} reply_cases[] = {
	{ "plain reject", "554 5.7.1 Relay access denied", '5', 0,
	    "554", "5.7.1", "Relay access denied" },
	{ "tempfail", "451 4.7.24 SPF temporary error", '4', 0,
	    "451", "4.7.24", "SPF temporary error" },
	{ "421 as tempfail", "421 4.3.2 Shutting down", '4', 0,
	    "421", "4.3.2", "Shutting down" },
	{ "no enhanced code", "550 Go away", '5', 0, "550", "", "Go away" },
	{ "percent doubled", "550 5.7.1 100% spam", '5', 0,
	    "550", "5.7.1", "100%% spam" },
	{ "CR LF become spaces", "550 5.7.1 a\r\nb", '5', 0,
	    "550", "5.7.1", "a  b" },
	{ "enhanced of the other class kept as text", "550 4.7.1 x", '5', 0,
	    "550", "", "4.7.1 x" },
	{ "5xx for a tempfail: fallback", "550 5.7.1 no", '4', -1,
	    "451", "4.3.0", "Error: filter reply" },
	{ "4xx for a reject: fallback", "451 4.3.0 later", '5', -1,
	    "554", "5.7.1", "Rejected" },
	{ "garbage: fallback", "hello", '5', -1, "554", "5.7.1", "Rejected" },
	{ "empty: fallback", "", '4', -1, "451", "4.3.0",
	    "Error: filter reply" },
	{ "code only", "554", '5', 0, "554", "", "" },
	{ "multiline dash", "550-5.7.1 first", '5', 0, "550", "5.7.1",
	    "first" },
};

static void
test_reply(void)
{
	struct milter_reply r;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(reply_cases) / sizeof(reply_cases[0]); i++) {
		rc = milter_map_reply(reply_cases[i].reply,
		    reply_cases[i].want_class, &r);
		is_int(rc, reply_cases[i].want_rc, "reply %s: rc",
		    reply_cases[i].name);
		is_str(r.code, reply_cases[i].code, "reply %s: code",
		    reply_cases[i].name);
		is_str(r.enhanced, reply_cases[i].enhanced,
		    "reply %s: enhanced", reply_cases[i].name);
		is_str(r.text, reply_cases[i].text, "reply %s: text",
		    reply_cases[i].name);
	}
}

static const struct {
	const char *name, *input, *want;
} address_cases[] = {
	{ "angle brackets", "<alice@example.test>", "alice@example.test" },
	{ "null sender", "<>", "" },
	{ "no brackets", "bob@example.test", "bob@example.test" },
	{ "spaces", "  <a@b.example> ", "a@b.example" },
	{ "source route", "<@x.example,@y.example:c@d.example>",
	    "c@d.example" },
	{ "NULL", NULL, "" },
	{ "one bracket", "<a@b", "<a@b" },
};

static void
test_address(void)
{
	char *got;
	size_t i;

	for (i = 0; i < sizeof(address_cases) / sizeof(address_cases[0]);
	    i++) {
		got = milter_map_address(address_cases[i].input);
		is_str(got, address_cases[i].want, "address %s",
		    address_cases[i].name);
		free(got);
	}
}

static void
test_esmtp(void)
{
	char *args1[] = { "SIZE=1234", "BODY=8bitmime", "SMTPUTF8", NULL };
	char *args2[] = { "NOTIFY=SUCCESS,FAILURE",
	    "ORCPT=rfc822;a+2Bb@example.test", "X-UNKNOWN=1", NULL };
	char *args3[] = { "SIZE=-5", "BODY=BINARYMIME", NULL };
	struct milter_esmtp e;

	milter_map_esmtp(args1, &e);
	is_int(e.size, 1234, "esmtp SIZE");
	is_str(e.body_type, "8BITMIME", "esmtp BODY case-insensitive");
	is_int(e.smtputf8, 1, "esmtp SMTPUTF8");
	is_str(e.notify, NULL, "esmtp no NOTIFY");
	milter_map_esmtp_deinit(&e);

	milter_map_esmtp(args2, &e);
	is_str(e.notify, "SUCCESS,FAILURE", "esmtp NOTIFY");
	is_str(e.orcpt, "rfc822;a+2Bb@example.test", "esmtp ORCPT as sent");
	is_int(e.size, 0, "esmtp no SIZE");
	milter_map_esmtp_deinit(&e);

	milter_map_esmtp(args3, &e);
	is_int(e.size, 0, "esmtp negative SIZE ignored");
	is_str(e.body_type, NULL, "esmtp unknown BODY ignored");
	milter_map_esmtp_deinit(&e);

	milter_map_esmtp(NULL, &e);
	is_int(e.size, 0, "esmtp NULL argv");
	milter_map_esmtp_deinit(&e);
}

static const struct {
	const char *name, *hname, *value;
	bool	 leadspc;
	const char *want;
} field_cases[] = {
	{ "leadspc kept", "Subject", " hello", true, "Subject: hello\r\n" },
	{ "leadspc none", "Subject", "hello", true, "Subject:hello\r\n" },
	{ "leadspc two spaces", "Subject", "  x", true, "Subject:  x\r\n" },
	{ "no leadspc: space added", "Subject", "hello", false,
	    "Subject: hello\r\n" },
	{ "LF folding to CRLF", "To", " a,\n\tb", true, "To: a,\r\n\tb\r\n" },
	{ "CRLF folding kept", "To", " a,\r\n\tb", true,
	    "To: a,\r\n\tb\r\n" },
	{ "empty value", "X-Empty", "", true, "X-Empty:\r\n" },
};

static void
test_field(void)
{
	struct buf b;
	size_t i;

	for (i = 0; i < sizeof(field_cases) / sizeof(field_cases[0]); i++) {
		buf_init(&b, 0);
		is_int(milter_map_field(&b, field_cases[i].hname,
		    field_cases[i].value, field_cases[i].leadspc), 0,
		    "field %s: rc", field_cases[i].name);
		is_str(buf_cstr(&b), field_cases[i].want, "field %s",
		    field_cases[i].name);
		buf_deinit(&b);
	}
	buf_init(&b, 10);
	is_int(milter_map_field(&b, "Subject", " far too long", true), -1,
	    "field over the cap refused");
	is_int(b.len, 0, "field over the cap: nothing appended");
	buf_deinit(&b);
}

static const struct {
	const char *name, *block;
	const char *want;	/* "name/index;..." in deletion order */
} ar_cases[] = {
	{ "none", "From: a@b\r\nSubject: x\r\n", "" },
	{ "foreign id kept",
	    "Authentication-Results: other.example; spf=pass\r\n", "" },
	{ "ours removed",
	    "Authentication-Results: relay.example.test; spf=pass\r\n",
	    "Authentication-Results/1" },
	{ "second of three",
	    "Authentication-Results: a.example; dkim=pass\r\n"
	    "Authentication-Results: relay.example.test; auth=pass\r\n"
	    "Authentication-Results: b.example; none\r\n",
	    "Authentication-Results/2" },
	{ "two ours, highest first",
	    "Authentication-Results: relay.example.test; spf=fail\r\n"
	    "Subject: x\r\n"
	    "authentication-results: RELAY.example.test; dkim=pass\r\n",
	    "authentication-results/2;Authentication-Results/1" },
	{ "folded and commented",
	    "Authentication-Results: (c) relay.example.test;\r\n"
	    "\tspf=pass\r\n", "Authentication-Results/1" },
};

static void
test_forged(void)
{
	struct milter_delete *del;
	struct buf got;
	size_t i, k, n;

	for (i = 0; i < sizeof(ar_cases) / sizeof(ar_cases[0]); i++) {
		n = milter_map_forged_ar(ar_cases[i].block,
		    strlen(ar_cases[i].block), "relay.example.test", &del);
		buf_init(&got, 0);
		for (k = 0; k < n; k++)
			buf_printf(&got, "%s%s/%d", k > 0 ? ";" : "",
			    del[k].name, del[k].index);
		is_str(buf_cstr(&got), ar_cases[i].want, "forged A-R %s",
		    ar_cases[i].name);
		buf_deinit(&got);
		milter_map_deletes_free(&del, n);
		ok(del == NULL, "forged A-R %s: freed", ar_cases[i].name);
	}
}

static void
test_client(void)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	struct sockaddr sun;
	char *addr, *name;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	inet_pton(AF_INET, "192.0.2.7", &sin.sin_addr);
	milter_map_client((struct sockaddr *)&sin, "mx.example.test", &addr,
	    &name);
	is_str(addr, "192.0.2.7", "client inet addr");
	is_str(name, "mx.example.test", "client inet name");
	free(addr);
	free(name);

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr);
	milter_map_client((struct sockaddr *)&sin6, "[2001:db8::1]", &addr,
	    &name);
	is_str(addr, "2001:db8::1", "client inet6 addr");
	is_str(name, "unknown", "client unverified name is unknown");
	free(addr);
	free(name);

	memset(&sun, 0, sizeof(sun));
	sun.sa_family = AF_UNIX;
	milter_map_client(&sun, NULL, &addr, &name);
	is_str(addr, "unknown", "client unix addr");
	is_str(name, "unknown", "client NULL name");
	free(addr);
	free(name);

	milter_map_client(NULL, "", &addr, &name);
	is_str(addr, "unknown", "client NULL sockaddr");
	is_str(name, "unknown", "client empty name");
	free(addr);
	free(name);
}

int
main(void)
{
	test_reply();
	test_address();
	test_esmtp();
	test_field();
	test_forged();
	test_client();
	return done_testing();
}

/*
 * test_milter_map.c - the pure mappings of postern-milter: chain replies
 * for smfi_setreply, envfrom/envrcpt arguments, header fields as libmilter
 * hands them, forged Authentication-Results as deletions, the client,
 * the actions a chain needs and what to do when the MTA lacks one, and
 * insert indexes under Postfix's hidden Received: header.
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
	char *args4[] = { "ORCPT=rfc822;a+zzb@example.test", NULL };
	char *args5[] = { "ORCPT=utf-8;b\\x{E9}b@example.test", NULL };
	struct milter_esmtp e;

	milter_map_esmtp(args1, &e);
	is_int(e.size, 1234, "esmtp SIZE");
	is_str(e.body_type, "8BITMIME", "esmtp BODY case-insensitive");
	is_int(e.smtputf8, 1, "esmtp SMTPUTF8");
	is_str(e.notify, NULL, "esmtp no NOTIFY");
	milter_map_esmtp_deinit(&e);

	milter_map_esmtp(args2, &e);
	is_str(e.notify, "SUCCESS,FAILURE", "esmtp NOTIFY");
	is_str(e.orcpt, "rfc822;a+b@example.test", "esmtp ORCPT decoded");
	is_int(e.size, 0, "esmtp no SIZE");
	milter_map_esmtp_deinit(&e);

	milter_map_esmtp(args4, &e);
	is_str(e.orcpt, NULL, "esmtp ORCPT with bad xtext dropped");
	milter_map_esmtp_deinit(&e);
	milter_map_esmtp(args5, &e);
	is_str(e.orcpt, "utf-8;b\\x{E9}b@example.test",
	    "esmtp utf-8 ORCPT as it came");
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

static const struct {
	const char *name;
	bool	 edits;
	unsigned want;
} needs_cases[] = {
	{ "relay", false, 0 },
	{ "dkim", true, MILTER_MAP_ADDHDRS },
	{ "sender", true, MILTER_MAP_ADDHDRS },
	{ "spf", true, MILTER_MAP_ADDHDRS | MILTER_MAP_QUARANTINE },
	{ "regex", true, MILTER_MAP_ADDHDRS | MILTER_MAP_CHGHDRS |
	    MILTER_MAP_ADDRCPT | MILTER_MAP_DELRCPT | MILTER_MAP_QUARANTINE },
	{ "policy", true, MILTER_MAP_ADDHDRS | MILTER_MAP_ADDRCPT |
	    MILTER_MAP_DELRCPT | MILTER_MAP_QUARANTINE },
	{ "unknown editor", true, MILTER_MAP_EDITS },
	{ "unknown checker", false, MILTER_MAP_QUARANTINE },
};

static void
test_needs(void)
{
	size_t i;

	for (i = 0; i < sizeof(needs_cases) / sizeof(needs_cases[0]); i++)
		is_int(milter_map_filter_needs(needs_cases[i].name,
		    needs_cases[i].edits), needs_cases[i].want, "needs %s",
		    needs_cases[i].name);
}

static const struct {
	const char *name;
	enum filter_edit_kind kind;
	const char *header;
	unsigned offered;
	enum milter_map_fallback want;
} fallback_cases[] = {
	{ "insert offered", FILTER_EDIT_INSERT_HEADER, "DKIM-Signature",
	    MILTER_MAP_ADDHDRS, MILTER_MAP_SEND },
	{ "signature without ADDHDRS", FILTER_EDIT_INSERT_HEADER,
	    "dkim-signature", MILTER_MAP_CHGHDRS, MILTER_MAP_UNSIGNED },
	{ "A-R without ADDHDRS", FILTER_EDIT_INSERT_HEADER,
	    "Authentication-Results", 0, MILTER_MAP_SKIP },
	{ "added note without ADDHDRS", FILTER_EDIT_ADD_HEADER,
	    "X-Note", MILTER_MAP_EDITS & ~MILTER_MAP_ADDHDRS, MILTER_MAP_SKIP },
	{ "change without CHGHDRS", FILTER_EDIT_CHANGE_HEADER, "Subject",
	    MILTER_MAP_ADDHDRS, MILTER_MAP_FAIL },
	{ "change offered", FILTER_EDIT_CHANGE_HEADER, "Subject",
	    MILTER_MAP_CHGHDRS, MILTER_MAP_SEND },
	{ "redirect without ADDRCPT", FILTER_EDIT_ADD_RCPT, NULL,
	    MILTER_MAP_DELRCPT, MILTER_MAP_FAIL },
	{ "delete rcpt without DELRCPT", FILTER_EDIT_DELETE_RCPT, NULL,
	    MILTER_MAP_ADDRCPT, MILTER_MAP_FAIL },
	{ "sender without CHGFROM", FILTER_EDIT_CHANGE_FROM, NULL,
	    MILTER_MAP_EDITS & ~MILTER_MAP_CHGFROM, MILTER_MAP_FAIL },
	{ "body without CHGBODY", FILTER_EDIT_REPLACE_BODY, NULL,
	    MILTER_MAP_EDITS & ~MILTER_MAP_CHGBODY, MILTER_MAP_FAIL },
	{ "body offered", FILTER_EDIT_REPLACE_BODY, NULL, MILTER_MAP_CHGBODY,
	    MILTER_MAP_SEND },
};

static void
test_fallback(void)
{
	struct filter_edit e;
	size_t i;

	for (i = 0; i < sizeof(fallback_cases) / sizeof(fallback_cases[0]);
	    i++) {
		memset(&e, 0, sizeof(e));
		e.kind = fallback_cases[i].kind;
		e.name = (char *)fallback_cases[i].header;
		is_int(milter_map_edit_fallback(&e, fallback_cases[i].offered),
		    fallback_cases[i].want, "fallback %s",
		    fallback_cases[i].name);
	}
}

static const struct {
	const char *name;
	unsigned mask;
	size_t outlen;
	const char *want;
} text_cases[] = {
	{ "none", 0, 64, "none" },
	{ "one", MILTER_MAP_QUARANTINE, 64, "quarantine" },
	{ "two in table order", MILTER_MAP_CHGHDRS | MILTER_MAP_ADDHDRS, 64,
	    "add headers, change headers" },
	{ "truncated at a whole word", MILTER_MAP_ADDHDRS |
	    MILTER_MAP_CHGHDRS, 16, "add headers" },
};

static void
test_actions_text(void)
{
	char out[64];
	size_t i;

	for (i = 0; i < sizeof(text_cases) / sizeof(text_cases[0]); i++) {
		memset(out, 'x', sizeof(out));
		is_str(milter_map_actions_text(text_cases[i].mask, out,
		    text_cases[i].outlen), text_cases[i].want,
		    "actions text %s", text_cases[i].name);
	}
}

static const struct {
	const char *name;
	const char *v;		/* macro v */
	size_t	 index;
	bool	 want_hides;
	int	 want;
} insert_cases[] = {
	{ "Postfix top stays top", "Postfix 3.7.11", 0, true, 0 },
	{ "Postfix below the first", "Postfix 3.7.11", 1, true, 2 },
	{ "Postfix below the fifth", "Postfix 3.7.11", 5, true, 6 },
	{ "Sendmail as given", "8.17.1", 3, false, 3 },
	{ "no macro v as given", NULL, 2, false, 2 },
	{ "Postfixish is not Postfix", "Postfixer 1", 2, false, 2 },
	{ "huge index clamped", "Postfix", (size_t)1 << 40, true,
	    2147483647 },
};

static void
test_insert_index(void)
{
	bool hides;
	size_t i;

	for (i = 0; i < sizeof(insert_cases) / sizeof(insert_cases[0]); i++) {
		hides = milter_map_hides_received(insert_cases[i].v);
		is_int(hides, insert_cases[i].want_hides, "hides Received: %s",
		    insert_cases[i].name);
		is_int(milter_map_insert_index(insert_cases[i].index, hides),
		    insert_cases[i].want, "insert index %s",
		    insert_cases[i].name);
	}
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
	test_needs();
	test_fallback();
	test_actions_text();
	test_insert_index();
	return done_testing();
}

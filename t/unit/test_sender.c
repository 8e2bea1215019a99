/*
 * test_sender.c - the sender identity policy: address-list parsing of
 * From:/Sender:, ownership lookups in smtpd_sender_login_maps, and the
 * filter at MAIL and at end of message with each mismatch action.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config/config.h"
#include "fixtures.h"
#include "filter.h"
#include "header_address.h"
#include "message_edit.h"
#include "sender.h"
#include "tap.h"

/* ---- header_addresses ---- */

static const struct {
	const char *name, *value;
	const char *want;	/* the addresses, "|"-joined */
} addr_cases[] = {
	{ "bare", "alice@example.org", "alice@example.org" },
	{ "angle", "<alice@example.org>", "alice@example.org" },
	{ "display name", "Alice Smith <alice@example.org>",
	    "alice@example.org" },
	{ "quoted display with comma", "\"Smith, Alice\" <alice@example.org>",
	    "alice@example.org" },
	{ "display name with @", "\"bob@evil.test\" <alice@example.org>",
	    "alice@example.org" },
	{ "comment", "alice@example.org (Alice)", "alice@example.org" },
	{ "comment with <>", "alice@example.org (<mallory@evil.test>)",
	    "alice@example.org" },
	{ "nested comment", "(a (b) c) alice@example.org",
	    "alice@example.org" },
	{ "two mailboxes", "a@x.test, Bob <b@y.test>", "a@x.test|b@y.test" },
	{ "group", "Team: a@x.test, B <b@y.test>;", "a@x.test|b@y.test" },
	{ "empty group", "undisclosed-recipients:;", "" },
	{ "obsolete route", "<@relay.test:alice@example.org>",
	    "alice@example.org" },
	{ "quoted local part", "\"a b\"@example.org", "\"a b\"@example.org" },
	{ "folded", "Alice\r\n <alice@example.org>", "alice@example.org" },
	{ "folded inside a quoted local part", "\"a\r\n b\"@example.org",
	    "\"a b\"@example.org" },
	{ "no address", "Alice", "" },
	{ "two angle addresses", "<bob@other.org> <alice@example.org>",
	    "bob@other.org|alice@example.org" },
	{ "address after the angle", "<alice@example.org>bob@other.org",
	    "alice@example.org|bob@other.org" },
	{ "address after the angle, spaced",
	    "Alice <alice@example.org> bob@other.org",
	    "alice@example.org|bob@other.org" },
	{ "empty", "", "" },
	{ "unterminated angle", "Alice <alice@example.org",
	    "alice@example.org" },
	{ "unterminated comment", "alice@example.org (oops",
	    "alice@example.org" },
};

static void
test_addresses(void)
{
	struct buf got;
	char **addrs;
	size_t i, k, n;

	buf_init(&got, 0);
	for (i = 0; i < sizeof(addr_cases) / sizeof(*addr_cases); i++) {
		n = header_addresses(addr_cases[i].value,
		    strlen(addr_cases[i].value), &addrs);
		buf_reset(&got);
		for (k = 0; k < n; k++) {
			if (k > 0)
				buf_append(&got, "|", 1);
			buf_append(&got, addrs[k], strlen(addrs[k]));
		}
		is_str(buf_cstr(&got), addr_cases[i].want, "addresses: %s",
		    addr_cases[i].name);
		header_addresses_free(addrs, n);
	}
	buf_deinit(&got);
}

/* ---- ownership ---- */

#define MAP	"texthash:@DIR@/sender_login"

static const struct {
	const char *login, *sender;
	bool	 want;
} own_cases[] = {
	{ "alice", "alice@example.org", true },
	{ "alice", "ALICE@Example.ORG", true },
	{ "alice", "alice@example.org.", true },
	{ "ALICE", "alice@example.org", true },
	{ "bob", "alice@example.org", false },
	{ "bob", "shared@example.org", true },
	{ "alice", "shared@example.org", true },
	{ "carol", "anyone@corp.test", true },
	{ "carol", "anyone@sub.corp.test", false },
	{ "alice", "anyone@corp.test", false },
	{ "alice", "unknown@example.org", false },
	{ "alice", "", true },
	{ "alice", "alice", false },
	{ "alice", "\"alice\"@example.org", true },
	{ "alice", "\"unterminated@example.org", false },
	{ "alic", "alice@example.org", false },
	{ "alice,bob", "shared@example.org", false },
};

static void
test_owns(const struct table *map)
{
	size_t i;

	for (i = 0; i < sizeof(own_cases) / sizeof(*own_cases); i++)
		ok(sender_login_owns(map, own_cases[i].login,
		    own_cases[i].sender) == own_cases[i].want,
		    "owns: %s as <%s> -> %s", own_cases[i].login,
		    own_cases[i].sender, own_cases[i].want ? "yes" : "no");
}

/* ---- the filter ---- */

static const struct {
	const char *name;
	const char *login;	/* NULL: not authenticated */
	const char *sender;
	const char *want_mail;	/* reply or "" */
} mail_cases[] = {
	{ "own sender", "alice", "alice@example.org", "" },
	{ "foreign sender", "bob", "alice@example.org",
	    "553 5.7.1 <alice@example.org>: Sender address rejected: "
	    "not owned by user bob" },
	{ "unknown sender", "alice", "nobody@example.org",
	    "553 5.7.1 <nobody@example.org>: Sender address rejected: "
	    "not owned by user alice" },
	{ "null sender", "bob", "", "" },
	{ "not authenticated", NULL, "alice@example.org", "" },
};

static const struct {
	const char *name;
	const char *action;
	const char *headers;
	enum filter_verdict want;
	const char *want_reply;
} eom_cases[] = {
	{ "own From", "reject", "From: Alice <alice@example.org>\r\n"
	    "Subject: x\r\n", FILTER_CONTINUE, "" },
	{ "foreign From", "reject", "From: Bob <bob@example.org>\r\n",
	    FILTER_REJECT, "550 5.7.1 From: header address "
	    "<bob@example.org> not owned by user alice" },
	{ "second From address foreign", "reject",
	    "From: alice@example.org, bob@example.org\r\n", FILTER_REJECT,
	    "550 5.7.1 From: header address <bob@example.org> not owned by "
	    "user alice" },
	{ "foreign Sender", "reject", "From: alice@example.org\r\n"
	    "Sender: carol@corp.test\r\n", FILTER_REJECT,
	    "550 5.7.1 Sender: header address <carol@corp.test> not owned "
	    "by user alice" },
	{ "display name spoof", "reject",
	    "From: \"alice@example.org\" <ceo@example.org>\r\n",
	    FILTER_REJECT, "550 5.7.1 From: header address "
	    "<ceo@example.org> not owned by user alice" },
	{ "hold", "hold", "From: bob@example.org\r\n", FILTER_HOLD,
	    "550 5.7.1 From: header address <bob@example.org> not owned by "
	    "user alice" },
	{ "warn", "warn", "From: bob@example.org\r\n", FILTER_CONTINUE, "" },
	{ "ignore", "ignore", "From: bob@example.org\r\n", FILTER_CONTINUE,
	    "" },
	{ "no From at all", "reject", "Subject: x\r\n", FILTER_CONTINUE, "" },
	{ "folded From", "reject", "From: Bob\r\n <bob@example.org>\r\n",
	    FILTER_REJECT, "550 5.7.1 From: header address "
	    "<bob@example.org> not owned by user alice" },
	{ "two addresses, first foreign", "reject",
	    "From: <bob@other.org> <alice@example.org>\r\n", FILTER_REJECT,
	    "550 5.7.1 From: header address <bob@other.org> not owned by "
	    "user alice" },
	{ "space before the colon", "reject", "From : bob@other.org\r\n",
	    FILTER_REJECT, "550 5.7.1 From: header address <bob@other.org> "
	    "not owned by user alice" },
	{ "lower-case name", "reject", "from: bob@example.org\r\n",
	    FILTER_REJECT, "550 5.7.1 from: header address "
	    "<bob@example.org> not owned by user alice" },
};

static void
test_filter(struct config *cfg)
{
	struct filter_conn conn;
	struct filter_tx ftx;
	struct filter_call call;
	struct filter_message view;
	struct filter_edits edits;
	struct header_list hl;
	enum filter_verdict v;
	bool want_ar;
	size_t i;

	cfg->authserv_id = (char *)"relay.test";
	for (i = 0; i < sizeof(mail_cases) / sizeof(*mail_cases); i++) {
		memset(&conn, 0, sizeof(conn));
		memset(&call, 0, sizeof(call));
		conn.config = cfg;
		conn.is_authenticated = mail_cases[i].login != NULL;
		conn.sasl_username = mail_cases[i].login;
		call.conn = &conn;
		call.stage = FILTER_STAGE_MAIL;
		call.arg = mail_cases[i].sender;
		v = filter_sender.cb[FILTER_STAGE_MAIL](&call);
		is_str(call.reply, mail_cases[i].want_mail, "mail: %s",
		    mail_cases[i].name);
		ok(v == (*mail_cases[i].want_mail == '\0' ? FILTER_CONTINUE :
		    FILTER_REJECT), "mail: %s: verdict %s", mail_cases[i].name,
		    filter_verdict_name(v));
	}
	for (i = 0; i < sizeof(eom_cases) / sizeof(*eom_cases); i++) {
		memset(&conn, 0, sizeof(conn));
		memset(&call, 0, sizeof(call));
		memset(&ftx, 0, sizeof(ftx));
		cfg->header_from_login_mismatch = (char *)eom_cases[i].action;
		conn.config = cfg;
		conn.is_authenticated = true;
		conn.sasl_username = "alice";
		ftx.queue_id = "4XyZtest";
		ftx.sender = "alice@example.org";
		if (header_list_parse(&hl, eom_cases[i].headers,
		    strlen(eom_cases[i].headers)) == -1) {
			ok(0, "eom: %s: parse", eom_cases[i].name);
			continue;
		}
		view.headers = &hl;
		view.body = NULL;
		call.conn = &conn;
		call.tx = &ftx;
		call.stage = FILTER_STAGE_EOM;
		call.message = &view;
		filter_edits_init(&edits);
		call.edits = &edits;
		v = filter_sender.cb[FILTER_STAGE_EOM](&call);
		want_ar = v == FILTER_CONTINUE || v == FILTER_HOLD;
		ok(want_ar ? edits.head != NULL && edits.head->next == NULL &&
		    edits.head->kind == FILTER_EDIT_INSERT_HEADER &&
		    strcmp(edits.head->name, "Authentication-Results") == 0 &&
		    strcmp(edits.head->value, "relay.test; auth=pass "
		    "smtp.mailfrom=alice@example.org") == 0 :
		    edits.head == NULL, "eom: %s: Authentication-Results %s",
		    eom_cases[i].name, want_ar ? "added" : "not added");
		filter_edits_deinit(&edits);
		is_str(filter_verdict_name(v),
		    filter_verdict_name(eom_cases[i].want), "eom: %s: verdict",
		    eom_cases[i].name);
		is_str(call.reply, eom_cases[i].want_reply, "eom: %s: reply",
		    eom_cases[i].name);
		header_list_deinit(&hl);
	}
}

int
main(void)
{
	struct config cfg;
	char *error = NULL, *spec;

	test_addresses();
	memset(&cfg, 0, sizeof(cfg));
	spec = with_dir(MAP);
	cfg.smtpd_sender_login_maps = table_open(spec, &error);
	free(spec);
	if (cfg.smtpd_sender_login_maps == NULL) {
		ok(0, "map: %s", error);
		free(error);
		return done_testing();
	}
	test_owns(cfg.smtpd_sender_login_maps);
	test_filter(&cfg);
	table_free(&cfg.smtpd_sender_login_maps);
	return done_testing();
}

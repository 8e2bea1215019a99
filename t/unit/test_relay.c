/*
 * test_relay.c - the relay policy against every classic open-relay trick,
 * for an untrusted and for a trusted client, through relay_check() and
 * through the filter callback.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "filter.h"
#include "matchlist.h"
#include "relay.h"
#include "tap.h"

#define ACCEPT	0
#define REJECT	(-1)

/* the configurations the cases refer to */
enum cfg_id {
	CFG_PLAIN,	/* example.test; relay_domains relay.example */
	CFG_LITERAL,	/* plus [192.0.2.1] and [IPv6:2001:db8::1] */
	CFG_SUBDOMAINS,	/* mydestination = .example.test (subdomains only) */
	CFG_EMPTY,	/* neither list set */
	CFG_COUNT
};

static const struct {
	const char *mydestination, *relay_domains;
} cfg_text[CFG_COUNT] = {
	[CFG_PLAIN] = { "example.test", "relay.example" },
	[CFG_LITERAL] = {
	    "example.test, [192.0.2.1] [IPv6:2001:db8::1]", NULL },
	[CFG_SUBDOMAINS] = { ".example.test", NULL },
	[CFG_EMPTY] = { NULL, NULL },
};

struct rcase {
	const char *name;
	enum cfg_id cfg;
	const char *rcpt;
	int	 want_untrusted;	/* trusted clients: always ACCEPT */
};

static const struct rcase cases[] = {
	/* ours */
	{ "local", CFG_PLAIN, "user@example.test", ACCEPT },
	{ "local upper", CFG_PLAIN, "USER@EXAMPLE.TEST", ACCEPT },
	{ "local mixed case", CFG_PLAIN, "user@Example.Test", ACCEPT },
	{ "local trailing dot", CFG_PLAIN, "user@example.test.", ACCEPT },
	{ "relay_domains", CFG_PLAIN, "user@relay.example", ACCEPT },
	{ "relay_domains upper dot", CFG_PLAIN, "user@RELAY.EXAMPLE.", ACCEPT },
	{ "quoted plain local", CFG_PLAIN, "\"user\"@example.test", ACCEPT },
	{ "quoted space local", CFG_PLAIN, "\"john smith\"@example.test",
	  ACCEPT },
	{ "postmaster", CFG_PLAIN, "postmaster", ACCEPT },
	{ "Postmaster case", CFG_PLAIN, "PostMaster", ACCEPT },
	{ "postmaster empty config", CFG_EMPTY, "postmaster", ACCEPT },
	{ "route to local", CFG_PLAIN, "@other.example:user@example.test",
	  ACCEPT },
	{ "plus address", CFG_PLAIN, "user+tag@example.test", ACCEPT },

	/* plainly foreign */
	{ "foreign", CFG_PLAIN, "user@other.example", REJECT },
	{ "foreign trailing dot", CFG_PLAIN, "user@other.example.", REJECT },
	{ "foreign upper", CFG_PLAIN, "USER@OTHER.EXAMPLE", REJECT },
	{ "empty config", CFG_EMPTY, "user@example.test", REJECT },

	/* domain look-alikes */
	{ "subdomain", CFG_PLAIN, "user@evil.example.test", REJECT },
	{ "subdomain of relay_domains", CFG_PLAIN, "user@sub.relay.example",
	  REJECT },
	{ "suffix", CFG_PLAIN, "user@example.test.evil.example", REJECT },
	{ "prefix glued", CFG_PLAIN, "user@evilexample.test", REJECT },
	{ "two trailing dots", CFG_PLAIN, "user@example.test..", REJECT },
	{ "leading dot", CFG_PLAIN, "user@.example.test", REJECT },
	{ "subdomain list: sub", CFG_SUBDOMAINS, "user@a.example.test",
	  ACCEPT },
	{ "subdomain list: parent", CFG_SUBDOMAINS, "user@example.test",
	  REJECT },

	/* percent hack */
	{ "percent", CFG_PLAIN, "user%other.example@example.test", REJECT },
	{ "percent upper", CFG_PLAIN, "USER%OTHER.EXAMPLE@EXAMPLE.TEST",
	  REJECT },
	{ "percent to local", CFG_PLAIN, "user%example.test@example.test",
	  REJECT },
	{ "percent no domain", CFG_PLAIN, "user%other.example", REJECT },
	{ "percent trailing dot", CFG_PLAIN, "user%other.example@example.test.",
	  REJECT },

	/* bang paths */
	{ "bang", CFG_PLAIN, "other.example!user@example.test", REJECT },
	{ "bang no domain", CFG_PLAIN, "other.example!user", REJECT },
	{ "bang chain", CFG_PLAIN, "a!b!user@example.test", REJECT },
	{ "bang relay_domains", CFG_PLAIN, "other!user@relay.example", REJECT },

	/* quoted local parts hiding routing */
	{ "quoted @", CFG_PLAIN, "\"user@other.example\"@example.test",
	  REJECT },
	{ "quoted %", CFG_PLAIN, "\"user%other.example\"@example.test",
	  REJECT },
	{ "quoted !", CFG_PLAIN, "\"other.example!user\"@example.test",
	  REJECT },
	{ "quoted escaped @", CFG_PLAIN,
	  "\"user\\@other.example\"@example.test",
	  REJECT },
	{ "quoted route", CFG_PLAIN, "\"@other.example:user\"@example.test",
	  REJECT },
	{ "quoted no domain", CFG_PLAIN, "\"user@other.example\"", REJECT },
	{ "unquoted double @", CFG_PLAIN, "user@other.example@example.test",
	  REJECT },
	{ "unquoted double @ reversed", CFG_PLAIN,
	  "user@example.test@other.example", REJECT },

	/* source routes: the final domain counts */
	{ "route from local", CFG_PLAIN, "@example.test:user@other.example",
	  REJECT },
	{ "route two hops", CFG_PLAIN,
	  "@example.test,@relay.example:user@other.example", REJECT },
	{ "route literal", CFG_PLAIN, "@[192.0.2.1]:user@other.example",
	  REJECT },
	{ "route malformed", CFG_PLAIN, "@example.test,user@other.example",
	  REJECT },

	/* address literals */
	{ "ipv4 literal", CFG_PLAIN, "user@[192.0.2.1]", REJECT },
	{ "loopback literal", CFG_PLAIN, "user@[127.0.0.1]", REJECT },
	{ "ipv6 literal", CFG_PLAIN, "user@[IPv6:2001:db8::1]", REJECT },
	{ "ipv4 literal listed", CFG_LITERAL, "user@[192.0.2.1]", ACCEPT },
	{ "ipv4 literal other", CFG_LITERAL, "user@[192.0.2.2]", REJECT },
	{ "ipv6 literal listed", CFG_LITERAL, "user@[IPv6:2001:db8::1]",
	  ACCEPT },
	{ "ipv6 literal listed other spelling", CFG_LITERAL,
	  "user@[ipv6:2001:DB8:0::1]", ACCEPT },
	{ "ipv6 literal other", CFG_LITERAL, "user@[IPv6:2001:db8::2]",
	  REJECT },
	{ "literal with percent", CFG_LITERAL,
	  "user%other.example@[192.0.2.1]", REJECT },
	{ "bare ip as domain", CFG_LITERAL, "user@192.0.2.1", REJECT },

	/* no domain, malformed */
	{ "no domain", CFG_PLAIN, "user", REJECT },
	{ "empty", CFG_PLAIN, "", REJECT },
	{ "empty domain", CFG_PLAIN, "user@", REJECT },
	{ "unterminated quote", CFG_PLAIN, "\"user@example.test", REJECT },
	{ "control char", CFG_PLAIN, "user@example.test\r", REJECT },
};

static struct config cfgs[CFG_COUNT];

static void
setup(void)
{
	char *err = NULL;
	size_t i;

	for (i = 0; i < CFG_COUNT; i++) {
		memset(&cfgs[i], 0, sizeof(cfgs[i]));
		if (cfg_text[i].mydestination != NULL &&
		    (cfgs[i].mydestination = matchlist_new(MATCHLIST_DOMAIN,
		    cfg_text[i].mydestination, &err)) == NULL) {
			printf("Bail out! mydestination: %s\n", err);
			exit(1);
		}
		if (cfg_text[i].relay_domains != NULL &&
		    (cfgs[i].relay_domains = matchlist_new(MATCHLIST_DOMAIN,
		    cfg_text[i].relay_domains, &err)) == NULL) {
			printf("Bail out! relay_domains: %s\n", err);
			exit(1);
		}
	}
}

static void
teardown(void)
{
	size_t i;

	for (i = 0; i < CFG_COUNT; i++) {
		matchlist_free(&cfgs[i].mydestination);
		matchlist_free(&cfgs[i].relay_domains);
	}
}

/* want_reply - the reply the policy must give for rcpt */
static void
want_reply(char *out, size_t size, const char *rcpt)
{
	size_t i, n;

	n = (size_t)snprintf(out, size, "554 5.7.1 <");
	for (i = 0; rcpt[i] != '\0' && n + 1 < size; i++)
		out[n++] = (unsigned char)rcpt[i] < 0x20 ? '?' : rcpt[i];
	snprintf(out + n, size - n, ">: Relay access denied");
}

static void
check_cases(void)
{
	const struct rcase *c;
	char reply[512], want[512];
	size_t i;
	int rc;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		c = &cases[i];
		reply[0] = '\0';
		rc = relay_check(&cfgs[c->cfg], false, c->rcpt, reply,
		    sizeof(reply));
		is_int(rc, c->want_untrusted, "untrusted: %s", c->name);
		if (c->want_untrusted == REJECT) {
			want_reply(want, sizeof(want), c->rcpt);
			is_str(reply, want, "untrusted: %s: reply", c->name);
		}
		rc = relay_check(&cfgs[c->cfg], true, c->rcpt, reply,
		    sizeof(reply));
		is_int(rc, ACCEPT, "trusted: %s", c->name);
	}
}

/* the filter as the chain calls it */
static void
check_filter(void)
{
	static const struct {
		const char *name;
		bool	 is_mynetworks, is_authenticated;
		const char *rcpt;
		enum filter_verdict want;
		const char *want_reply;
	} fc[] = {
		{ "untrusted local", false, false, "user@example.test",
		  FILTER_CONTINUE, "" },
		{ "untrusted foreign", false, false, "user@other.example",
		  FILTER_REJECT,
		  "554 5.7.1 <user@other.example>: Relay access denied" },
		{ "untrusted percent", false, false,
		  "user%other.example@example.test", FILTER_REJECT,
		  "554 5.7.1 <user%other.example@example.test>: "
		  "Relay access denied" },
		{ "mynetworks foreign", true, false, "user@other.example",
		  FILTER_CONTINUE, "" },
		{ "authenticated foreign", false, true, "user@other.example",
		  FILTER_CONTINUE, "" },
		{ "authenticated percent", false, true,
		  "user%other.example@example.test", FILTER_CONTINUE, "" },
	};
	struct filter_conn conn;
	struct filter_rcpt rcpt;
	struct filter_call call;
	enum filter_verdict v;
	size_t i;

	is_str(filter_relay.name, "relay", "filter name");
	is_int(filter_relay.stages, FILTER_STAGE_BIT(FILTER_STAGE_RCPT),
	    "filter stages: RCPT only");
	is_int(filter_relay.may_block, 0, "filter does not block");
	for (i = 0; i < sizeof(fc) / sizeof(fc[0]); i++) {
		memset(&conn, 0, sizeof(conn));
		memset(&rcpt, 0, sizeof(rcpt));
		memset(&call, 0, sizeof(call));
		conn.config = &cfgs[CFG_PLAIN];
		conn.is_mynetworks = fc[i].is_mynetworks;
		conn.is_authenticated = fc[i].is_authenticated;
		conn.client_addr = "203.0.113.9";
		rcpt.address = fc[i].rcpt;
		call.conn = &conn;
		call.stage = FILTER_STAGE_RCPT;
		call.arg = fc[i].rcpt;
		call.rcpt = &rcpt;
		v = filter_relay.cb[FILTER_STAGE_RCPT](&call);
		is_int(v, fc[i].want, "filter %s: verdict", fc[i].name);
		is_str(call.reply, fc[i].want_reply, "filter %s: reply",
		    fc[i].name);
	}
}

int
main(void)
{
	char reply[40];

	setup();
	check_cases();
	check_filter();

	/* a short reply buffer truncates, never overflows */
	relay_check(&cfgs[CFG_PLAIN], false, "someone@other.example", reply,
	    sizeof(reply));
	is_int(strlen(reply), sizeof(reply) - 1, "reply truncated to buffer");
	teardown();
	return done_testing();
}

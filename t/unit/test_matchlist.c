/*
 * test_matchlist.c - Postfix-style match lists: domain lists (exact,
 * .subdomain, negation, tables, files) and address lists (IPv4, IPv6,
 * both CIDR spellings, IPv4-mapped clients, cidr tables, files), plus
 * the errors a bad list gives.
 *
 * SPDX-License-Identifier: ISC
 */
#include <config.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fixtures.h"
#include "tap.h"
#include "config/matchlist.h"
#include "xmalloc.h"

struct match_case {
	const char *name;
	const char *list;	/* @DIR@ is the fixture directory */
	const char *input;	/* domain or IP address */
	bool	 want;
};

struct error_case {
	const char *name;
	enum matchlist_kind kind;
	const char *list;
	const char *want;	/* @DIR@ is the fixture directory */
};

static void
test_domains(void)
{
	static const struct match_case cases[] = {
		{ "exact", "example.test", "example.test", true },
		{ "case-insensitive input", "example.test", "EXAMPLE.Test",
		    true },
		{ "case-insensitive pattern", "Example.TEST", "example.test",
		    true },
		{ "trailing dot in input", "example.test", "example.test.",
		    true },
		{ "trailing dot in pattern", "example.test.", "example.test",
		    true },
		{ "exact does not match subdomain", "example.test",
		    "relay.example.test", false },
		{ "exact does not match parent", "relay.example.test",
		    "example.test", false },
		{ "no suffix confusion", "example.test", "badexample.test",
		    false },
		{ ".domain matches subdomain", ".example.test",
		    "a.b.example.test", true },
		{ ".domain does not match itself", ".example.test",
		    "example.test", false },
		{ ".domain no suffix confusion", ".example.test",
		    "badexample.test", false },
		{ "comma and space separated", "a.test, b.test c.test",
		    "c.test", true },
		{ "not listed", "a.test, b.test", "d.test", false },
		{ "negation first match wins", "!bad.example.test, "
		    ".example.test", "bad.example.test", false },
		{ "negation does not block others", "!bad.example.test, "
		    ".example.test", "good.example.test", true },
		{ "negation after a match is too late", ".example.test "
		    "!bad.example.test", "bad.example.test", true },
		{ "empty list", "", "example.test", false },
		{ "empty input", "example.test", "", false },
		{ "texthash table", "texthash:@DIR@/relay.texthash",
		    "relayed.example", true },
		{ "texthash table, case", "texthash:@DIR@/relay.texthash",
		    "RELAYED.example.", true },
		{ "table: .parent key matches subdomains",
		    "texthash:@DIR@/relay.texthash", "x.y.parent.example",
		    true },
		{ "table: .parent key does not match parent",
		    "texthash:@DIR@/relay.texthash", "parent.example", false },
		{ "table: absent", "texthash:@DIR@/relay.texthash",
		    "other.example", false },
		{ "negated table", "!texthash:@DIR@/relay.texthash, "
		    ".example", "relayed.example", false },
		{ "inline table", "inline:{ inl.test=yes, other=1 }",
		    "inl.test", true },
		{ "file of patterns", "@DIR@/domains", "from-file.example",
		    true },
		{ "file: .sub pattern", "@DIR@/domains",
		    "a.sub.from-file.example", true },
		{ "file: negation inside", "@DIR@/domains, .file.example",
		    "blocked.file.example", false },
		{ "after file", "@DIR@/domains, .file.example",
		    "ok.file.example", true },
	};
	struct matchlist *ml;
	char *list, *err;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		list = with_dir(cases[i].list);
		err = NULL;
		ml = matchlist_new(MATCHLIST_DOMAIN, list, &err);
		if (ml == NULL) {
			ok(0, "domain: %s: list loads", cases[i].name);
			printf("#   error: %s\n", err);
			free(err);
			free(list);
			continue;
		}
		is_int(matchlist_match_domain(ml, cases[i].input),
		    cases[i].want, "domain: %s", cases[i].name);
		matchlist_free(&ml);
		free(list);
	}
}

static void
test_addresses(void)
{
	static const struct match_case cases[] = {
		{ "v4 network", "192.0.2.0/24", "192.0.2.77", true },
		{ "v4 network, outside", "192.0.2.0/24", "192.0.3.1", false },
		{ "v4 host", "127.0.0.1", "127.0.0.1", true },
		{ "v4 host, other", "127.0.0.1", "127.0.0.2", false },
		{ "v4 /0", "0.0.0.0/0", "203.0.113.9", true },
		{ "v4 odd prefix", "10.0.0.0/9", "10.127.255.255", true },
		{ "v4 odd prefix, outside", "10.0.0.0/9", "10.128.0.0",
		    false },
		{ "v6 in brackets", "[2001:db8::]/32", "2001:db8:1::5", true },
		{ "v6 without brackets", "2001:db8::/32", "2001:db8::5",
		    true },
		{ "v6 host in brackets", "[::1]", "::1", true },
		{ "v6 outside", "[2001:db8::]/32", "2001:db9::1", false },
		{ "v4-mapped client matches v4 net", "192.0.2.0/24",
		    "::ffff:192.0.2.9", true },
		{ "v4-mapped client outside", "192.0.2.0/24",
		    "::ffff:192.0.3.9", false },
		{ "v4 net does not match v6", "0.0.0.0/0", "2001:db8::1",
		    false },
		{ "v6 net does not match v4", "::/0", "192.0.2.1", false },
		{ "default mynetworks: 127/8", "127.0.0.0/8 [::1]/128",
		    "127.1.2.3", true },
		{ "default mynetworks: ::1", "127.0.0.0/8 [::1]/128", "::1",
		    true },
		{ "default mynetworks: other", "127.0.0.0/8 [::1]/128",
		    "192.0.2.1", false },
		{ "negation first match wins", "!192.0.2.5, 192.0.2.0/24",
		    "192.0.2.5", false },
		{ "negation: others still match", "!192.0.2.5, 192.0.2.0/24",
		    "192.0.2.6", true },
		{ "cidr table", "cidr:@DIR@/access.cidr", "192.0.2.1", true },
		{ "cidr table, v6", "cidr:@DIR@/access.cidr", "2001:db8::9",
		    true },
		{ "cidr table, absent", "cidr:@DIR@/access.cidr", "11.0.0.1",
		    false },
		{ "negated cidr table", "!cidr:@DIR@/access.cidr, 0.0.0.0/0",
		    "192.0.2.1", false },
		{ "file of networks", "@DIR@/networks", "198.51.100.1", true },
		{ "file of networks, v6", "@DIR@/networks",
		    "2001:db8:f00:1::1", true },
		{ "file of networks, outside", "@DIR@/networks",
		    "198.51.101.1", false },
		{ "empty list", "", "127.0.0.1", false },
	};
	struct sockaddr_storage ss;
	struct matchlist *ml;
	char *list, *err;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		list = with_dir(cases[i].list);
		err = NULL;
		ml = matchlist_new(MATCHLIST_ADDRESS, list, &err);
		if (ml == NULL) {
			ok(0, "address: %s: list loads", cases[i].name);
			printf("#   error: %s\n", err);
			free(err);
			free(list);
			continue;
		}
		make_sa(cases[i].input, &ss);
		is_int(matchlist_match_addr(ml, (struct sockaddr *)&ss),
		    cases[i].want, "address: %s", cases[i].name);
		matchlist_free(&ml);
		free(list);
	}
}

static void
test_kinds_and_text(void)
{
	struct sockaddr_storage ss;
	struct matchlist *ml;
	char *err = NULL;

	ml = matchlist_new(MATCHLIST_DOMAIN, "a.test,  !b.test", &err);
	ok(ml != NULL, "text: list loads");
	if (ml == NULL)
		return;
	is_str(matchlist_text(ml), "a.test,  !b.test",
	    "text: matchlist_text is the list as written");
	make_sa("192.0.2.1", &ss);
	is_int(matchlist_match_addr(ml, (struct sockaddr *)&ss), false,
	    "kind: a domain list never matches an address");
	matchlist_free(&ml);
	ok(ml == NULL, "matchlist_free sets the pointer to NULL");
	matchlist_free(&ml);

	ml = matchlist_new(MATCHLIST_ADDRESS, "0.0.0.0/0", &err);
	ok(ml != NULL && !matchlist_match_domain(ml, "example.test"),
	    "kind: an address list never matches a domain");
	matchlist_free(&ml);
}

static void
test_errors(void)
{
	static const struct error_case cases[] = {
		{ "host bits", MATCHLIST_ADDRESS, "192.0.2.0/24 192.0.2.1/24",
		    "\"192.0.2.1/24\": non-null host address bits beyond /24" },
		{ "hostname in address list", MATCHLIST_ADDRESS,
		    "host.example", "\"host.example\": bad IP address" },
		{ "bad prefix", MATCHLIST_ADDRESS, "10.0.0.0/x",
		    "\"10.0.0.0/x\": bad prefix length" },
		{ "unclosed bracket", MATCHLIST_ADDRESS, "[::1/128",
		    "\"[::1/128\": missing ']'" },
		{ "lone negation", MATCHLIST_DOMAIN, "a.test !",
		    "\"\": bad negation" },
		{ "double negation", MATCHLIST_DOMAIN, "!!a.test",
		    "\"!a.test\": bad negation" },
		{ "unsupported table", MATCHLIST_DOMAIN, "hash:/etc/x",
		    "hash:/etc/x: unsupported table type \"hash\" "
		    "(supported: texthash, cidr, pcre, inline)" },
		{ "missing table file", MATCHLIST_ADDRESS,
		    "cidr:@DIR@/no-such.cidr", "@DIR@/no-such.cidr: cannot "
		    "open: No such file or directory" },
		{ "missing pattern file", MATCHLIST_DOMAIN, "@DIR@/nothere",
		    "@DIR@/nothere: cannot open: No such file or directory" },
		{ "negated file", MATCHLIST_DOMAIN, "!@DIR@/domains",
		    "\"!@DIR@/domains\": a file of patterns cannot be "
		    "negated; negate its elements" },
		{ "bad element in a file names file and line",
		    MATCHLIST_ADDRESS, "@DIR@/domains",
		    "@DIR@/domains:2: \"from-file.example\": bad IP address" },
		{ "table error inside", MATCHLIST_DOMAIN,
		    "pcre:@DIR@/badregex.pcre", "@DIR@/badregex.pcre:2: bad "
		    "regex /^broken(/: missing closing parenthesis at "
		    "offset 8" },
		{ "bad domain", MATCHLIST_DOMAIN, ".",
		    "\".\": bad domain pattern" },
	};
	struct matchlist *ml;
	char *list, *want, *err;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		list = with_dir(cases[i].list);
		want = with_dir(cases[i].want);
		err = NULL;
		ml = matchlist_new(cases[i].kind, list, &err);
		ok(ml == NULL, "error: %s: refused", cases[i].name);
		is_str(err, want, "error: %s: message", cases[i].name);
		matchlist_free(&ml);
		free(err);
		free(list);
		free(want);
	}
}

int
main(void)
{
	test_domains();
	test_addresses();
	test_kinds_and_text();
	test_errors();
	return done_testing();
}

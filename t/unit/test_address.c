/*
 * test_address.c - table-driven tests of the canonical address forms.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "tap.h"

struct acase {
	const char *name;
	const char *in;
	/* "local|domain|flags|canonical" or "error: text" */
	const char *want;
};

static const struct acase cases[] = {
	{ "plain", "user@example.test",
	  "user|example.test|-|user@example.test" },
	{ "domain case", "User@EXAMPLE.Test",
	  "User|example.test|-|User@example.test" },
	{ "local case kept", "USER@example.test",
	  "USER|example.test|-|USER@example.test" },
	{ "trailing dot", "user@example.test.",
	  "user|example.test|-|user@example.test" },
	{ "only one trailing dot", "user@example.test..",
	  "user|example.test.|-|user@example.test." },
	{ "no domain", "postmaster", "postmaster||-|postmaster" },
	{ "null sender", "", "||-|" },
	{ "quoted plain", "\"user\"@example.test",
	  "user|example.test|q|user@example.test" },
	{ "quoted space", "\"john smith\"@example.test",
	  "john smith|example.test|q|\"john smith\"@example.test" },
	{ "quoted pair", "\"a\\\"b\"@example.test",
	  "a\"b|example.test|q|\"a\\\"b\"@example.test" },
	{ "quoted backslash", "\"a\\\\b\"@example.test",
	  "a\\b|example.test|q|\"a\\\\b\"@example.test" },
	{ "quoted @", "\"user@other.example\"@example.test",
	  "user@other.example|example.test|qr|"
	  "\"user@other.example\"@example.test" },
	{ "quoted no domain", "\"postmaster\"", "postmaster||q|postmaster" },
	{ "quoted dots", "\"a..b\"@x.example",
	  "a..b|x.example|q|\"a..b\"@x.example" },
	{ "quoted empty", "\"\"@x.example", "|x.example|q|\"\"@x.example" },
	{ "percent", "user%other.example@example.test",
	  "user%other.example|example.test|r|user%other.example@example.test" },
	{ "bang", "other!user@example.test",
	  "other!user|example.test|r|other!user@example.test" },
	{ "two @ unquoted", "user@other.example@example.test",
	  "user@other.example|example.test|r|"
	  "\"user@other.example\"@example.test" },
	{ "source route", "@example.test:user@other.example",
	  "user|other.example|-|user@other.example" },
	{ "source route two", "@a.example,@b.example:user@c.example",
	  "user|c.example|-|user@c.example" },
	{ "source route v6", "@[IPv6:2001:db8::1]:user@c.example",
	  "user|c.example|-|user@c.example" },
	{ "ipv4 literal", "user@[192.0.2.1]",
	  "user|[192.0.2.1]|l4|user@[192.0.2.1]" },
	{ "ipv6 literal", "user@[IPv6:2001:DB8:0:0::1]",
	  "user|[ipv6:2001:db8::1]|l6|user@[ipv6:2001:db8::1]" },
	{ "ipv6 literal lower", "user@[ipv6:2001:db8::1]",
	  "user|[ipv6:2001:db8::1]|l6|user@[ipv6:2001:db8::1]" },
	{ "general literal", "user@[X-Tag:Stuff]",
	  "user|[x-tag:stuff]|l|user@[x-tag:stuff]" },
	{ "bad ipv4 literal", "user@[999.0.2.1]",
	  "user|[999.0.2.1]|l|user@[999.0.2.1]" },
	{ "utf8 domain kept", "user@B\xc3\x9c.example",
	  "user|b\xc3\x9c.example|-|user@b\xc3\x9c.example" },
	{ "utf8 local", "j\xc3\xb6rg@example.test",
	  "j\xc3\xb6rg|example.test|-|j\xc3\xb6rg@example.test" },
	{ "empty domain", "user@", "error: empty domain" },
	{ "unterminated quote", "\"user@example.test",
	  "error: unterminated quoted local part" },
	{ "unterminated pair", "\"user\\",
	  "error: unterminated quoted local part" },
	{ "text after quote", "\"a\"b@example.test",
	  "error: text after quoted local part" },
	{ "route without colon", "@example.test,user@x.example",
	  "error: malformed source route" },
	{ "route unclosed literal", "@[1.2.3.4:user@x.example",
	  "error: malformed source route" },
};

static void
describe(const struct address *a, char *out, size_t size)
{
	char flags[8], *canon;
	size_t n = 0;

	if (a->is_quoted)
		flags[n++] = 'q';
	if (address_has_routing(a))
		flags[n++] = 'r';
	if (a->is_literal) {
		flags[n++] = 'l';
		if (a->literal_family == AF_INET)
			flags[n++] = '4';
		else if (a->literal_family == AF_INET6)
			flags[n++] = '6';
	}
	if (n == 0)
		flags[n++] = '-';
	flags[n] = '\0';
	canon = address_canonical(a);
	snprintf(out, size, "%s|%s|%s|%s", a->local, a->domain, flags, canon);
	free(canon);
}

int
main(void)
{
	struct address a;
	const char *error;
	char got[512];
	char *d;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (address_parse(cases[i].in, &a, &error) == 0) {
			describe(&a, got, sizeof(got));
			address_deinit(&a);
		} else
			snprintf(got, sizeof(got), "error: %s", error);
		is_str(got, cases[i].want, "%s", cases[i].name);
	}

	d = address_domain_canonical("Example.TEST.");
	is_str(d, "example.test", "domain_canonical: case and dot");
	free(d);
	d = address_domain_canonical("[IPv6:2001:db8:0::1]");
	is_str(d, "[ipv6:2001:db8::1]", "domain_canonical: ipv6 literal");
	free(d);
	d = address_domain_canonical("");
	is_str(d, "", "domain_canonical: empty");
	free(d);
	return done_testing();
}

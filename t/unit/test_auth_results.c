/*
 * test_auth_results.c - forged Authentication-Results fields (ours by
 * authserv-id) are removed; everyone else's stay.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "auth_results.h"
#include "buf.h"
#include "tap.h"

static const struct {
	const char *name, *in, *want;
	size_t	 removed;
} cases[] = {
	{ "ours removed", "Authentication-Results: relay.test; spf=pass\r\n"
	    "Subject: x\r\n", "Subject: x\r\n", 1 },
	{ "case of id and name ignored",
	    "authentication-results: RELAY.Test; dkim=pass\r\nSubject: x\r\n",
	    "Subject: x\r\n", 1 },
	{ "comment before the id", "Authentication-Results: (forged)\r\n"
	    " relay.test;\r\n\tdkim=pass\r\nSubject: x\r\n", "Subject: x\r\n",
	    1 },
	{ "someone else's kept",
	    "Authentication-Results: mx.other.test; spf=pass\r\n",
	    "Authentication-Results: mx.other.test; spf=pass\r\n", 0 },
	{ "prefix of ours is not ours",
	    "Authentication-Results: relay.test.evil; spf=pass\r\n",
	    "Authentication-Results: relay.test.evil; spf=pass\r\n", 0 },
	{ "id without results", "Authentication-Results: relay.test\r\n"
	    "X: y\r\n", "X: y\r\n", 1 },
	{ "several", "Authentication-Results: relay.test; a=b\r\nX: 1\r\n"
	    "Authentication-Results: relay.test; c=d\r\nX: 2\r\n",
	    "X: 1\r\nX: 2\r\n", 2 },
	{ "no such field", "Subject: Authentication-Results: relay.test\r\n",
	    "Subject: Authentication-Results: relay.test\r\n", 0 },
	{ "space before the colon", "Authentication-Results : relay.test; "
	    "dkim=pass\r\nX: y\r\n", "X: y\r\n", 1 },
	{ "empty block", "", "", 0 },
};

static const struct {
	const char *value, *want;
} value_cases[] = {
	{ "alice@example.org", "alice@example.org" },
	{ "example.org", "example.org" },
	{ "a+b=c@x.test", "a+b=c@x.test" },
	{ "\"x;dkim=pass header.d=paypal.com\"@evil.test",
	    "\"\\\"x;dkim=pass header.d=paypal.com\\\"@evil.test\"" },
	{ "a b@x", "\"a b@x\"" },
	{ "back\\slash", "\"back\\\\slash\"" },
	{ "cr\r\nlf", "\"crlf\"" },
	{ "", "\"\"" },
	{ "(comment)", "\"(comment)\"" },
};

static const struct {
	const char *text, *want;
} comment_cases[] = {
	{ "bad signature", " (bad signature)" },
	{ "x) dkim=pass (y", " (x  dkim=pass  y)" },
	{ "a\\b\r\n", " (a b)" },
	{ "", "" },
};

static void
test_values(void)
{
	struct buf b;
	size_t i;

	for (i = 0; i < sizeof(value_cases) / sizeof(*value_cases); i++) {
		buf_init(&b, 0);
		auth_results_add_value(&b, value_cases[i].value);
		is_str(buf_cstr(&b), value_cases[i].want, "value %zu", i);
		buf_deinit(&b);
	}
	for (i = 0; i < sizeof(comment_cases) / sizeof(*comment_cases); i++) {
		buf_init(&b, 0);
		auth_results_add_comment(&b, comment_cases[i].text);
		is_str(buf_cstr(&b), comment_cases[i].want, "comment %zu", i);
		buf_deinit(&b);
	}
}

int
main(void)
{
	struct buf b;
	size_t i, n;

	test_values();
	for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		buf_init(&b, 0);
		buf_append(&b, cases[i].in, strlen(cases[i].in));
		n = auth_results_strip(&b, "relay.test");
		is_int((int)n, (int)cases[i].removed, "%s: removed",
		    cases[i].name);
		is_str(buf_cstr(&b), cases[i].want, "%s: block", cases[i].name);
		buf_deinit(&b);
	}
	return done_testing();
}

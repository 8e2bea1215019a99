/*
 * test_table.c - lookup tables: texthash, cidr (v4, v6, if/endif, !),
 * pcre (flags, if/endif, !, $n), inline, and their load errors with the
 * file and line they name.
 *
 * Fixtures live in t/unit/data/config/ ($srcdir-relative, so that prove
 * and make check both find them).
 *
 * SPDX-License-Identifier: ISC
 */
#include <config.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fixtures.h"
#include "tap.h"
#include "config/table.h"
#include "xmalloc.h"

struct lookup_case {
	const char *name;
	const char *key;
	const char *want;	/* NULL: not found */
};

struct error_case {
	const char *name;
	const char *spec;	/* @DIR@ is the data directory */
	const char *want;	/* expected error text, @DIR@ likewise */
};

static struct table *
open_fixture(const char *type, const char *file)
{
	struct table *t;
	char *spec, *err = NULL;

	spec = xasprintf("%s:%s/%s", type, data_dir(), file);
	t = table_open(spec, &err);
	ok(t != NULL, "open %s", spec);
	if (t == NULL)
		printf("#   error: %s\n", err);
	free(err);
	free(spec);
	return t;
}

static void
run_lookups(const struct table *t, const char *what,
    const struct lookup_case *cases, size_t n)
{
	size_t i;
	char *dup;

	for (i = 0; i < n; i++) {
		is_str(table_lookup(t, cases[i].key), cases[i].want,
		    "%s: %s", what, cases[i].name);
		dup = table_lookup_dup(t, cases[i].key);
		is_str(dup, cases[i].want, "%s: %s (dup)", what,
		    cases[i].name);
		free(dup);
	}
}

static void
run_errors(const struct error_case *cases, size_t n)
{
	struct table *t;
	char *spec, *want, *err = NULL;
	size_t i;

	for (i = 0; i < n; i++) {
		spec = with_dir(cases[i].spec);
		want = with_dir(cases[i].want);
		err = NULL;
		t = table_open(spec, &err);
		ok(t == NULL, "error: %s: refused", cases[i].name);
		is_str(err, want, "error: %s: message", cases[i].name);
		table_free(&t);
		free(err);
		free(spec);
		free(want);
	}
}

static void
test_texthash(void)
{
	static const struct lookup_case cases[] = {
		{ "colon after key is dropped", "alice",
		    "$6$saltsalt$hashhashhash" },
		{ "keys ignore case", "ALICE", "$6$saltsalt$hashhashhash" },
		{ "folded key in file", "bob",
		    "$2b$05$abcdefghijklmnopqrstuv" },
		{ "continuation line", "carol", "$y$j9T$continued" },
		{ "absent key", "mallory", NULL },
		{ "key with colon is not a key", "alice:", NULL },
		{ "comment is not a key", "#", NULL },
		{ "empty key", "", NULL },
	};
	struct table *t;

	if ((t = open_fixture("texthash", "users")) == NULL)
		return;
	run_lookups(t, "texthash", cases, sizeof(cases) / sizeof(cases[0]));
	is_str(table_lookup_addr(t, (const struct sockaddr *)&(struct
	    sockaddr_in){ .sin_family = AF_INET }), NULL,
	    "texthash: lookup_addr of an absent address");
	table_free(&t);
	ok(t == NULL, "table_free sets the pointer to NULL");
	table_free(&t);
	ok(1, "table_free(NULL) is harmless");
}

static void
test_cidr(void)
{
	static const struct lookup_case cases[] = {
		{ "host entry before its network", "192.0.2.1", "host-one" },
		{ "v4 network", "192.0.2.200", "net-192" },
		{ "v4 brackets in key", "[192.0.2.9]", "net-192" },
		{ "v6 network in brackets", "2001:db8::25", "net-v6" },
		{ "first match wins over later host", "2001:db8:1::1",
		    "net-v6" },
		{ "v6 key in brackets", "[2001:db8::1]", "net-v6" },
		{ "v4-mapped key matches v4 net", "::ffff:192.0.2.77",
		    "net-192" },
		{ "inside if block", "10.1.2.3", "ten-one" },
		{ "negated rule inside if", "10.3.0.1", "ten-not-two" },
		{ "negated rule inside if, excluded", "10.2.0.1", NULL },
		{ "negated rule: upper half", "203.0.113.5", "upper-half" },
		{ "negated rule: lower half", "11.0.0.1", NULL },
		{ "negation never crosses family", "2001:db9::1", NULL },
		{ "not an address", "example.com", NULL },
		{ "empty key", "", NULL },
	};
	static const struct {
		const char *name, *ip, *want;
	} addr_cases[] = {
		{ "sockaddr v4 host", "192.0.2.1", "host-one" },
		{ "sockaddr v4 net", "192.0.2.9", "net-192" },
		{ "sockaddr v6", "2001:db8:ffff::1", "net-v6" },
		{ "sockaddr v4-mapped v6", "::ffff:192.0.2.1", "host-one" },
		{ "sockaddr v4-mapped, if block", "::ffff:10.1.0.1",
		    "ten-one" },
		{ "sockaddr v6 outside", "2001:db9::1", NULL },
		{ "sockaddr v6 loopback", "::1", NULL },
	};
	struct sockaddr_storage ss;
	struct table *t;
	size_t i;

	if ((t = open_fixture("cidr", "access.cidr")) == NULL)
		return;
	run_lookups(t, "cidr", cases, sizeof(cases) / sizeof(cases[0]));
	for (i = 0; i < sizeof(addr_cases) / sizeof(addr_cases[0]); i++) {
		make_sa(addr_cases[i].ip, &ss);
		is_str(table_lookup_addr(t, (struct sockaddr *)&ss),
		    addr_cases[i].want, "cidr: %s", addr_cases[i].name);
	}
	table_free(&t);
}

static void
test_pcre(void)
{
	static const struct lookup_case cases[] = {
		{ "plain match", "Subject: make money fast!!", "REJECT spam" },
		{ "caseless by default", "SUBJECT: MAKE MONEY FAST",
		    "REJECT spam" },
		{ "i flag makes it case-sensitive", "X-Case: exact",
		    "case-sensitive" },
		{ "i flag: other case does not match", "x-case: EXACT",
		    "no-at-sign" },
		{ "${1} and ${2} substitution", "staff-outgoing@example.com",
		    "550 Use staff@example.com instead" },
		{ "$$ and $1", "price: $42", "costs $42" },
		{ "other delimiter", "path: /usr/bin/env", "pipe-delimited" },
		{ "escaped delimiter", "slash: a/b", "escaped-delimiter" },
		{ "if ! block taken, $1", "list-users@example.com",
		    "list users" },
		{ "if ! block skipped", "owner-list-users@example.com", NULL },
		{ "m flag: ^ and $ at newlines", "multi\nsecond",
		    "multiline-hit" },
		{ "m flag, middle line", "multi\nsecond\nx",
		    "multiline-hit" },
		{ "s flag on by default: . crosses newline",
		    "multi first\nsecond!", "dotall-hit" },
		{ "without m, ^ is the start of the subject only",
		    "head\ntail", "no-at-sign" },
		{ "without m, plain anchors", "tail", "tail-hit" },
		{ "x flag ignores pattern whitespace", "-abc-",
		    "extended-hit" },
		{ "negated pattern", "nothing here", "no-at-sign" },
		{ "no rule matches", "user@example.com", NULL },
		{ "UTF-8 subject, caseless",
		    "SUBJECT: MAKE MONEY FAST \xc3\xa9",
		    "REJECT spam" },
		{ "invalid UTF-8 subject still matches",
		    "Subject: make money fast \xff\xfe", "REJECT spam" },
	};
	struct table *t;

	if ((t = open_fixture("pcre", "checks.pcre")) == NULL)
		return;
	run_lookups(t, "pcre", cases, sizeof(cases) / sizeof(cases[0]));
	table_free(&t);
}

static void
test_inline(void)
{
	static const struct lookup_case cases[] = {
		{ "first pair", "a", "1" },
		{ "case-insensitive key", "B", "2" },
		{ "braced pair with spaces and commas", "c",
		    "three, four" },
		{ "absent", "d", NULL },
	};
	struct table *t;
	char *err = NULL;

	t = table_open("inline:{ a=1, b=2 {c = three, four} }", &err);
	ok(t != NULL, "inline: opens");
	if (t == NULL) {
		printf("#   error: %s\n", err);
		free(err);
		return;
	}
	is_str(table_spec(t), "inline:{ a=1, b=2 {c = three, four} }",
	    "inline: table_spec is the spec as given");
	run_lookups(t, "inline", cases, sizeof(cases) / sizeof(cases[0]));
	table_free(&t);
	t = table_open("inline:{}", &err);
	ok(t != NULL && table_lookup(t, "a") == NULL,
	    "inline: empty table finds nothing");
	table_free(&t);
}

static void
test_errors(void)
{
	static const struct error_case cases[] = {
		{ "unsupported type", "hash:/etc/aliases",
		    "hash:/etc/aliases: unsupported table type \"hash\" "
		    "(supported: texthash, cidr, pcre, inline)" },
		{ "no type", "/etc/aliases",
		    "/etc/aliases: expected type:name" },
		{ "no name", "cidr:", "cidr:: missing table name after "
		    "\"cidr:\"" },
		{ "missing file", "texthash:@DIR@/no-such-file",
		    "@DIR@/no-such-file: cannot open: No such file or "
		    "directory" },
		{ "texthash key without value", "texthash:@DIR@/users-bad",
		    "@DIR@/users-bad:3: expected format: key whitespace "
		    "value" },
		{ "cidr host bits", "cidr:@DIR@/hostbits.cidr",
		    "@DIR@/hostbits.cidr:3: \"192.0.2.1/24\": non-null host "
		    "address bits beyond /24" },
		{ "pcre bad regex names PCRE2's error",
		    "pcre:@DIR@/badregex.pcre",
		    "@DIR@/badregex.pcre:2: bad regex /^broken(/: missing "
		    "closing parenthesis at offset 8" },
		{ "inline without braces", "inline:a=1",
		    "inline:a=1: expected inline:{ key=value, ... }" },
		{ "inline pair without =", "inline:{ a=1, b }",
		    "inline:{ a=1, b }: \"b\": expected key=value" },
		{ "inline unbalanced braces", "inline:{ {a=1 }",
		    "inline:{ {a=1 }: unbalanced '{' in \"{a=1 \"" },
	};

	run_errors(cases, sizeof(cases) / sizeof(cases[0]));
}

/*
 * Error cases written to temporary files: {name, file content, type,
 * expected error after "path:"}.
 */
static void
test_file_errors(void)
{
	static const struct {
		const char *name, *type, *content, *want;
	} cases[] = {
		{ "cidr bad address", "cidr", "192.0.2.0/24 ok\n300.1.2.3 x\n",
		    ":2: \"300.1.2.3\": bad IP address" },
		{ "cidr prefix too long", "cidr", "192.0.2.0/33 x\n",
		    ":1: \"192.0.2.0/33\": bad prefix length" },
		{ "cidr v6 prefix", "cidr", "\n\n[2001:db8::]/129 x\n",
		    ":3: \"[2001:db8::]/129\": bad prefix length" },
		{ "cidr missing result", "cidr", "# c\n10.0.0.0/8\n",
		    ":2: missing result after pattern" },
		{ "cidr endif without if", "cidr", "endif\n",
		    ":1: \"endif\" without \"if\"" },
		{ "cidr missing endif", "cidr", "if 10.0.0.0/8\n",
		    ": missing \"endif\"" },
		{ "cidr text after if", "cidr", "if 10.0.0.0/8 x\nendif\n",
		    ":1: text after \"if\" pattern" },
		{ "continuation first", "cidr", "  10.0.0.0/8 x\n",
		    ":1: logical line must not start with whitespace" },
		{ "pcre unknown flag", "pcre", "/a/q x\n",
		    ":1: unknown regex flag 'q'" },
		{ "pcre $2 out of range", "pcre", "/(a)/ x $2\n",
		    ":1: $2 in result, but the pattern has 1 capture group" },
		{ "pcre $1 in negated rule", "pcre", "!/(a)/ x $1\n",
		    ":1: $1 in the result of a negated pattern: nothing "
		    "matched" },
		{ "pcre bad $", "pcre", "/a/ cost $x\n",
		    ":1: bad '$' in result (write $$ for a dollar sign)" },
		{ "pcre missing close", "pcre", "/abc x\n",
		    ":1: missing closing '/' after pattern" },
		{ "pcre no delimiter", "pcre", "abc x\n",
		    ":1: expected /pattern/" },
		{ "pcre missing result", "pcre", "/a/\n",
		    ":1: missing result after pattern" },
		{ "pcre endif without if", "pcre", "/a/ b\nendif\n",
		    ":2: \"endif\" without \"if\"" },
		{ "pcre nested if missing endif", "pcre",
		    "if /a/\nif /b/\n/c/ d\nendif\n", ": missing \"endif\"" },
		{ "pcre continuation joins lines", "pcre",
		    "/a/\n  result\n/(/ x\n", ":3: bad regex /(/: missing "
		    "closing parenthesis at offset 1" },
	};
	char dir[] = "/tmp/test_table.XXXXXX", *path, *spec, *want, *err;
	struct table *t;
	FILE *fp;
	size_t i;

	if (mkdtemp(dir) == NULL) {
		ok(0, "mkdtemp");
		return;
	}
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		path = xasprintf("%s/case%zu", dir, i);
		if ((fp = fopen(path, "w")) == NULL) {
			ok(0, "create %s", path);
			free(path);
			continue;
		}
		fputs(cases[i].content, fp);
		fclose(fp);
		spec = xasprintf("%s:%s", cases[i].type, path);
		want = xasprintf("%s%s", path, cases[i].want);
		err = NULL;
		t = table_open(spec, &err);
		ok(t == NULL, "file error: %s: refused", cases[i].name);
		is_str(err, want, "file error: %s: message", cases[i].name);
		table_free(&t);
		free(err);
		unlink(path);
		free(path);
		free(spec);
		free(want);
	}
	rmdir(dir);
}

/* pcre_worker - many substituting lookups; returns the number wrong */
static void *
pcre_worker(void *arg)
{
	const struct table *t = arg;
	char key[64], want[80];
	const char *got;
	long bad = 0;
	int i;

	for (i = 0; i < 2000; i++) {
		snprintf(key, sizeof(key), "u%d-outgoing@d%d.test", i, i % 7);
		snprintf(want, sizeof(want), "550 Use u%d@d%d.test instead",
		    i, i % 7);
		got = table_lookup(t, key);
		if (got == NULL || strcmp(got, want) != 0)
			bad++;
	}
	return (void *)bad;
}

static void
test_pcre_threads(void)
{
	pthread_t th[4];
	struct table *t;
	void *bad;
	long total = 0;
	int i, started = 0;

	if ((t = open_fixture("pcre", "checks.pcre")) == NULL)
		return;
	for (i = 0; i < 4; i++)
		if (pthread_create(&th[i], NULL, pcre_worker, t) == 0)
			started++;
	for (i = 0; i < started; i++) {
		pthread_join(th[i], &bad);
		total += (long)bad;
	}
	is_int(started, 4, "pcre threads: started");
	is_int(total, 0, "pcre threads: every $n result right in 4 threads");
	table_free(&t);
}

int
main(void)
{
	test_texthash();
	test_cidr();
	test_pcre();
	test_pcre_threads();
	test_inline();
	test_errors();
	test_file_errors();
	return done_testing();
}

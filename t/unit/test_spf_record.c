/*
 * test_spf_record.c - the RFC 7208 record checker and rewriter and the
 * explanation macro expander (spf/spf_record.c).
 *
 * Each record case gives the record, the client's family and what
 * libspf2 should be handed ("ERR" when the record is invalid: permerror,
 * RFC 7208 4.6). The macro cases use the examples of RFC 7208 7.4 and
 * the suite's explanation cases.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "spf_record.h"
#include "tap.h"

#define ANY	"x-any"

struct rec_case {
	const char *name;
	const char *record;
	size_t	 len;		/* 0: strlen(record) */
	bool	 is_ip6;
	const char *want;	/* rewritten record, or "ERR" */
};

static const struct rec_case rec_cases[] = {
	/* valid records, unchanged */
	{ "bare version", "v=spf1", 0, false, "v=spf1 " },
	{ "simple", "v=spf1 a mx -all", 0, false, "v=spf1 a mx -all" },
	{ "trailing spaces", "v=spf1 a -all  ", 0, false, "v=spf1 a -all" },
	{ "upper case terms", "V=SPF1 A:Example.COM -ALL", 0, false,
	    "v=spf1 a:Example.COM -ALL" },
	{ "ip4 cidr", "v=spf1 ip4:192.0.2.0/24 -all", 0, false,
	    "v=spf1 ip4:192.0.2.0/24 -all" },
	{ "ip6 cidr", "v=spf1 ip6:2001:db8::/32", 0, true,
	    "v=spf1 ip6:2001:db8::/32" },
	{ "ip6 with ip4 tail", "v=spf1 ip6:::FFFF:1.2.3.4", 0, false,
	    "v=spf1 ip6:::FFFF:1.2.3.4" },
	{ "macro domain", "v=spf1 exists:%{ir}.%{l1r-}.lp._spf.%{d}", 0,
	    false, "v=spf1 exists:%{ir}.%{l1r-}.lp._spf.%{d}" },
	{ "slash in domain", "v=spf1 a:foo:bar/baz.example.com", 0, false,
	    "v=spf1 a:foo:bar/baz.example.com" },
	{ "escape ends a domain", "v=spf1 a:macro%%percent%_space%-",
	    0, false, "v=spf1 a:macro%%percent%_space%-" },
	{ "literal after escape", "v=spf1 a:macro%_space%-url", 0, false,
	    "ERR" },
	{ "dual cidr, ip4 client", "v=spf1 a/24//64 -all", 0, false,
	    "v=spf1 a/24 -all" },
	{ "dual cidr, ip6 client", "v=spf1 a/24//64 -all", 0, true,
	    "v=spf1 a//64 -all" },
	{ "ip6 cidr 33 on a", "v=spf1 a//33 -all", 0, true,
	    "v=spf1 a//33 -all" },
	{ "toplabel with dash", "v=spf1 a:foo.1-2 -all", 0, false,
	    "v=spf1 a:foo.1-2 -all" },
	{ "trailing dot", "v=spf1 include:o.spf.example.com. ~all", 0,
	    false, "v=spf1 include:o.spf.example.com. ~all" },
	{ "empty labels are syntax", "v=spf1 a:mail.example...com -all", 0,
	    false, "v=spf1 a:mail.example...com -all" },
	/* rewrites */
	{ "ip4 /0", "v=spf1 -ip4:1.2.3.4/0", 0, false,
	    "v=spf1 -ip4:0.0.0.0/1 -ip4:128.0.0.0/1" },
	{ "ip6 /0", "v=spf1 ip6:::1.1.1.1/0", 0, false,
	    "v=spf1 ip6:::/1 ip6:8000::/1" },
	{ "a /0, ip4 client", "v=spf1 a/0 -all", 0, false,
	    "v=spf1 a:" ANY ".%{d} -all" },
	{ "a /0, ip6 client", "v=spf1 a/0 -all", 0, true, "v=spf1 a -all" },
	{ "a //0, ip6 client", "v=spf1 ?a:e.example.com//0 -all", 0, true,
	    "v=spf1 ?a:" ANY ".e.example.com -all" },
	{ "mx //0, ip4 client", "v=spf1 mx//0 -all", 0, false,
	    "v=spf1 mx -all" },
	{ "mx /0, ip4 client", "v=spf1 mx:e.example.com/0 -all", 0, false,
	    "v=spf1 mx:" ANY ".e.example.com -all" },
	{ "unknown modifiers dropped",
	    "v=spf1 moo.cow-far_out=man:dog/cat ip4:1.2.3.4 -all", 0, false,
	    "v=spf1 ip4:1.2.3.4 -all" },
	{ "redirect with all dropped",
	    "v=spf1 redirect=t5.example.com ~all", 0, false,
	    "v=spf1 ~all" },
	{ "redirect kept and last", "v=spf1 redirect=x.example.com a", 0,
	    false, "v=spf1 a redirect=x.example.com" },
	{ "exp kept", "v=spf1 -all exp=%{d}.example.com", 0, false,
	    "v=spf1 -all exp=%{d}.example.com" },
	{ "exp-only letter in exp=", "v=spf1 -all exp=%{r}.example.com", 0,
	    false, "ERR" },
	/* invalid records (RFC 7208 section 12) */
	{ "not spf1", "v=spf10 a", 0, false, "ERR" },
	{ "a only toplabel", "v=spf1 a:museum", 0, false, "ERR" },
	{ "a only toplabel dot", "v=spf1 a:museum.", 0, false, "ERR" },
	{ "numeric toplabel", "v=spf1 a:abc.123", 0, false, "ERR" },
	{ "address as domain", "v=spf1 a:111.222.33.44", 0, false, "ERR" },
	{ "bad toplabel", "v=spf1 a:example.-com", 0, false, "ERR" },
	{ "empty a domain", "v=spf1 a: -all", 0, false, "ERR" },
	{ "empty ptr domain", "v=spf1 ptr:", 0, false, "ERR" },
	{ "empty include", "v=spf1 include: -all", 0, false, "ERR" },
	{ "include with cidr", "v=spf1 include:ip5.example.com/24", 0,
	    false, "ERR" },
	{ "exists with cidr", "v=spf1 exists:mail.example.com/24", 0,
	    false, "ERR" },
	{ "exists empty", "v=spf1 exists:", 0, false, "ERR" },
	{ "NUL in record", "v=spf1 a:foo.example.com\0", 25, false, "ERR" },
	{ "non-ASCII", "v=spf1 a:\xc3\xaf.example.com", 0, false, "ERR" },
	{ "control char", "v=spf1 ip4:192.0.2.5\n include:x.com", 0, false,
	    "ERR" },
	{ "tab separator", "v=spf1\ta", 0, false, "ERR" },
	{ "cidr leading zero", "v=spf1 ip4:1.2.3.4/032", 0, false, "ERR" },
	{ "cidr 33", "v=spf1 ip4:1.2.3.4/33", 0, false, "ERR" },
	{ "a cidr 33", "v=spf1 a/33", 0, false, "ERR" },
	{ "a cidr6 129", "v=spf1 a//129", 0, false, "ERR" },
	{ "ip4 double slash", "v=spf1 ip4:1.2.3.4//32", 0, false, "ERR" },
	{ "ip4 port", "v=spf1 ip4:1.2.3.4:8080", 0, false, "ERR" },
	{ "ip4 short", "v=spf1 ip4:1.2.3", 0, false, "ERR" },
	{ "ip4 leading zero", "v=spf1 ip4:1.2.3.04", 0, false, "ERR" },
	{ "ip4 bare", "v=spf1 ip4", 0, false, "ERR" },
	{ "all with cidr", "v=spf1 -all/8", 0, false, "ERR" },
	{ "redirect with colon", "v=spf1 redirect:t5.example.com", 0, false,
	    "ERR" },
	{ "unknown mechanism", "v=spf1 foo", 0, false, "ERR" },
	{ "exp twice", "v=spf1 exp=a.example.com exp=b.example.com", 0,
	    false, "ERR" },
	{ "redirect twice",
	    "v=spf1 redirect=a.example.com redirect=b.example.com", 0, false,
	    "ERR" },
	{ "empty exp", "v=spf1 exp= -all", 0, false, "ERR" },
	{ "empty redirect", "v=spf1 redirect=", 0, false, "ERR" },
	{ "exp syntax", "v=spf1 exp=mail.example.com/24 -all", 0, false,
	    "ERR" },
	{ "unknown modifier, bad macro", "v=spf1 foo=%abc -all", 0, false,
	    "ERR" },
	{ "macro letter", "v=spf1 a:%{a}.example.com", 0, false, "ERR" },
	{ "macro with parens", "v=spf1 -exists:%(ir).sbl.example.com", 0,
	    false, "ERR" },
	{ "trailing lone percent", "v=spf1 exists:foo%.sbl.example.com", 0,
	    false, "ERR" },
	{ "exp-only letter", "v=spf1 exists:%{c}.example.com", 0, false,
	    "ERR" },
	{ "zero transformer", "v=spf1 exists:%{d0}", 0, false, "ERR" },
};

static void
test_rewrite(void)
{
	struct spf_record_opts o;
	struct buf b;
	const char *err, *got;
	size_t i, len;

	for (i = 0; i < sizeof(rec_cases) / sizeof(rec_cases[0]); i++) {
		const struct rec_case *c = &rec_cases[i];

		memset(&o, 0, sizeof(o));
		o.client_is_ip6 = c->is_ip6;
		o.any_label = ANY;
		len = c->len > 0 ? c->len : strlen(c->record);
		buf_init(&b, 0);
		err = NULL;
		got = spf_record_rewrite(c->record, len, &o, &b, &err) == 0 ?
		    buf_cstr(&b) : "ERR";
		is_str(got, c->want, "record: %s", c->name);
		if (strcmp(got, "ERR") == 0)
			ok(err != NULL && *err != '\0',
			    "record: %s: an error text", c->name);
		buf_deinit(&b);
	}
}

struct spf1_case {
	const char *name;
	const char *text;
	bool	 want;
};

static const struct spf1_case spf1_cases[] = {
	{ "exact", "v=spf1", true },
	{ "with terms", "v=spf1 -all", true },
	{ "upper case", "V=SPF1 -all", true },
	{ "longer version", "v=spf10", false },
	{ "other text", "This is a test.", false },
	{ "short", "v=spf", false },
};

static void
test_is_spf1(void)
{
	size_t i;

	for (i = 0; i < sizeof(spf1_cases) / sizeof(spf1_cases[0]); i++)
		is_int(spf_record_is_spf1(spf1_cases[i].text,
		    strlen(spf1_cases[i].text)), spf1_cases[i].want,
		    "is_spf1: %s", spf1_cases[i].name);
}

struct macro_case {
	const char *name;
	const char *sender;
	const char *client;
	const char *macro;
	bool	 is_exp;
	const char *want;	/* "ERR": a syntax error */
};

#define RFC_S	"strong-bad@email.example.com"

/* RFC 7208 7.4, and the suite's explanation cases */
static const struct macro_case macro_cases[] = {
	{ "s", RFC_S, "192.0.2.3", "%{s}", false, RFC_S },
	{ "o", RFC_S, "192.0.2.3", "%{o}", false, "email.example.com" },
	{ "d", RFC_S, "192.0.2.3", "%{d}", false, "email.example.com" },
	{ "d4", RFC_S, "192.0.2.3", "%{d4}", false, "email.example.com" },
	{ "d3", RFC_S, "192.0.2.3", "%{d3}", false, "email.example.com" },
	{ "d2", RFC_S, "192.0.2.3", "%{d2}", false, "example.com" },
	{ "d1", RFC_S, "192.0.2.3", "%{d1}", false, "com" },
	{ "dr", RFC_S, "192.0.2.3", "%{dr}", false, "com.example.email" },
	{ "d2r", RFC_S, "192.0.2.3", "%{d2r}", false, "example.email" },
	{ "l", RFC_S, "192.0.2.3", "%{l}", false, "strong-bad" },
	{ "l-", RFC_S, "192.0.2.3", "%{l-}", false, "strong.bad" },
	{ "lr", RFC_S, "192.0.2.3", "%{lr}", false, "strong-bad" },
	{ "lr-", RFC_S, "192.0.2.3", "%{lr-}", false, "bad.strong" },
	{ "l1r-", RFC_S, "192.0.2.3", "%{l1r-}", false, "strong" },
	{ "ir v d2", RFC_S, "192.0.2.3", "%{ir}.%{v}._spf.%{d2}", false,
	    "3.2.0.192.in-addr._spf.example.com" },
	{ "lr- l", RFC_S, "192.0.2.3", "%{lr-}.lp._spf.%{d2}", false,
	    "bad.strong.lp._spf.example.com" },
	{ "ir l1r-", RFC_S, "192.0.2.3",
	    "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", false,
	    "3.2.0.192.in-addr.strong.lp._spf.example.com" },
	{ "d2 ip6", RFC_S, "2001:db8::cb01", "%{ir}.%{v}._spf.%{d2}", false,
	    "1.0.B.C.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2."
	    "ip6._spf.example.com" },
	{ "c ip6", RFC_S, "2001:db8::cb01", "%{c}", true, "2001:db8::cb01" },
	{ "upper URL-escapes", "~jack&jill=up-a_b3.c@e8.example.com",
	    "192.168.218.42", "http://example.com/why.html?l=%{L}", true,
	    "http://example.com/why.html?l=~jack%26jill%3Dup-a_b3.c" },
	{ "escapes", RFC_S, "192.0.2.3", "a%%b%_c%-d", false, "a%b c%20d" },
	{ "spaces in exp", RFC_S, "192.0.2.3", "%{i} is bad", true,
	    "192.0.2.3 is bad" },
	{ "space outside exp", RFC_S, "192.0.2.3", "a b", false, "ERR" },
	{ "r in exp", RFC_S, "192.0.2.3", "%{r}", true, "receiver.test" },
	{ "r outside exp", RFC_S, "192.0.2.3", "%{r}", false, "ERR" },
	{ "p unknown", RFC_S, "192.0.2.3", "%{p}", true, "unknown" },
	{ "h", RFC_S, "192.0.2.3", "%{h}", false, "mx.example.org" },
	{ "delimiter set", "foo-bar+zip+quux@e12.example.com", "1.2.3.4",
	    "%{l2r+-}", false, "bar.foo" },
	{ "lone percent", RFC_S, "192.0.2.3", "100%", true, "ERR" },
	{ "bad letter", RFC_S, "192.0.2.3", "%{x}", true, "ERR" },
	{ "unterminated", RFC_S, "192.0.2.3", "%{d", true, "ERR" },
};

static void
test_macros(void)
{
	struct spf_macro_env env;
	struct buf b;
	const char *err, *got;
	size_t i;

	for (i = 0; i < sizeof(macro_cases) / sizeof(macro_cases[0]); i++) {
		const struct macro_case *c = &macro_cases[i];

		memset(&env, 0, sizeof(env));
		env.sender = c->sender;
		env.domain = strchr(c->sender, '@') + 1;
		env.helo = "mx.example.org";
		env.receiver = "receiver.test";
		env.now = 1;
		if (inet_pton(AF_INET, c->client, &env.addr4) == 1)
			env.family = AF_INET;
		else {
			env.family = AF_INET6;
			inet_pton(AF_INET6, c->client, &env.addr6);
		}
		buf_init(&b, 0);
		got = spf_macro_expand(c->macro, strlen(c->macro), &env,
		    c->is_exp, &b, &err) == 0 ? buf_cstr(&b) : "ERR";
		is_str(got, c->want, "macro: %s", c->name);
		is_int(spf_macro_check(c->macro, strlen(c->macro), c->is_exp,
		    &err), strcmp(c->want, "ERR") == 0 ? -1 : 0,
		    "macro check: %s", c->name);
		buf_deinit(&b);
	}
	is_int(spf_macro_uses_p("connect from %{p}", 17), 1, "uses p");
	is_int(spf_macro_uses_p("connect from %{d}", 17), 0, "no p");
}

struct name_case {
	const char *name;
	const char *domain;
	bool	 valid;
	size_t	 trim;
};

static const struct name_case name_cases[] = {
	{ "plain", "mail.example.com", true, 0 },
	{ "trailing dot", "mail.example.com.", true, 0 },
	{ "empty label", "mail.example...com", false, 0 },
	{ "leading dot", ".example.com", false, 0 },
	{ "long label",
	    "a123456789012345678901234567890123456789012345678901234567890123"
	    ".example.com", false, 0 },
	{ "empty", "", false, 0 },
	/* 5 x 50 + ".example.com": 262 octets, the first label goes */
	{ "over 253",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
	    "example.com", true, 50 },
};

static void
test_names(void)
{
	size_t i;

	for (i = 0; i < sizeof(name_cases) / sizeof(name_cases[0]); i++) {
		is_int(spf_record_name_check(name_cases[i].domain),
		    name_cases[i].valid, "name check: %s",
		    name_cases[i].name);
		is_int(spf_record_name_trim(name_cases[i].domain),
		    name_cases[i].trim, "name trim: %s", name_cases[i].name);
	}
}

int
main(void)
{
	test_rewrite();
	test_is_spf1();
	test_macros();
	test_names();
	return done_testing();
}

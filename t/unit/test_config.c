/*
 * test_config.c - main.cf parsing (logical lines, comments,
 * continuation), $name expansion (defaults, recursion, loops), time and
 * size values, every kind of load error with its line number, the
 * acceptance configuration, -P output, and reference counting.
 *
 * SPDX-License-Identifier: ISC
 */
#include <config.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tap.h"
#include "config/cf_parse.h"
#include "config/config.h"
#include "config/schema.h"
#include "xmalloc.h"

static char tmpdir[] = "/tmp/test_config.XXXXXX";
static int ntmp;

/* write_file - content into a new file under tmpdir (caller frees path) */
static char *
write_file(const char *name, const char *content)
{
	char *path;
	FILE *fp;

	if (name != NULL)
		path = xasprintf("%s/%s", tmpdir, name);
	else
		path = xasprintf("%s/main%d.cf", tmpdir, ++ntmp);
	if ((fp = fopen(path, "w")) == NULL) {
		printf("# cannot create %s\n", path);
		return path;
	}
	fputs(content, fp);
	fclose(fp);
	return path;
}

/* with_tmp - tmpl with every "@TMP@" replaced by tmpdir */
static char *
with_tmp(const char *tmpl)
{
	const char *at = strstr(tmpl, "@TMP@");
	char *head, *rest, *out;

	if (at == NULL)
		return xstrdup(tmpl);
	head = xstrndup(tmpl, (size_t)(at - tmpl));
	rest = with_tmp(at + 5);
	out = xasprintf("%s%s%s", head, tmpdir, rest);
	free(head);
	free(rest);
	return out;
}

static void
test_lexer(void)
{
	static const char text[] =
	    "# comment line\n"
	    "\n"
	    "a = one\n"
	    "b=two   \n"
	    "c = first,\n"
	    "    second\n"
	    "# a comment between continuation lines is skipped\n"
	    "\tthird\n"
	    "d = value # not a comment\n"
	    "e =\n"
	    "f = crlf\r\n"
	    "   \n"
	    "a = override\n";
	static const struct {
		const char *name, *value;
		int line;
	} want[] = {
		{ "a", "one", 3 },
		{ "b", "two", 4 },
		{ "c", "first, second third", 5 },
		{ "d", "value # not a comment", 9 },
		{ "e", "", 10 },
		{ "f", "crlf", 11 },
		{ "a", "override", 13 },
	};
	struct cf_file *cf = NULL;
	char *err = NULL;
	size_t i;

	ok(cf_parse_text("t.cf", text, &cf, &err) == 0, "lexer: parses");
	if (cf == NULL) {
		printf("#   error: %s\n", err);
		free(err);
		return;
	}
	is_int(cf->nentries, sizeof(want) / sizeof(want[0]),
	    "lexer: entry count");
	for (i = 0; i < cf->nentries && i < sizeof(want) / sizeof(want[0]);
	    i++) {
		is_str(cf->entries[i].name, want[i].name, "lexer: name %zu",
		    i);
		is_str(cf->entries[i].value, want[i].value,
		    "lexer: value of %s", want[i].name);
		is_int(cf->entries[i].line, want[i].line,
		    "lexer: line of %s", want[i].name);
	}
	is_str(cf_file_find(cf, "a")->value, "override",
	    "lexer: a later entry overrides");
	ok(cf_file_find(cf, "zz") == NULL, "lexer: absent name");
	cf_file_free(&cf);
	ok(cf == NULL, "lexer: cf_file_free clears the pointer");
}

static void
test_lexer_errors(void)
{
	static const struct {
		const char *name, *text, *want;
	} cases[] = {
		{ "leading whitespace", "  a = b\n",
		    "t.cf:1: logical line must not start with whitespace" },
		{ "missing =", "a = b\n\nc d\n",
		    "t.cf:3: missing '=' after parameter name \"c\"" },
		{ "no name", "a = b\n= c\n",
		    "t.cf:2: expected a parameter name" },
		{ "bad name char", "a-b = c\n",
		    "t.cf:1: missing '=' after parameter name \"a\"" },
		{ "error in continued line names its start",
		    "a = b\nc\n  = d\nfoo bar\n",
		    "t.cf:4: missing '=' after parameter name \"foo\"" },
	};
	struct cf_file *cf;
	char *err;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cf = NULL;
		err = NULL;
		ok(cf_parse_text("t.cf", cases[i].text, &cf, &err) == -1 &&
		    cf == NULL, "lexer error: %s: refused", cases[i].name);
		is_str(err, cases[i].want, "lexer error: %s: message",
		    cases[i].name);
		free(err);
		cf_file_free(&cf);
	}
}

/* a fixed parameter set for cf_expand */
static const char *
test_lookup(void *ctx, const char *name)
{
	static const char *const vars[][2] = {
		{ "a", "x" },
		{ "b", "$a y" },
		{ "c", "${b}-$(a)" },
		{ "empty", "" },
		{ "loop1", "$loop2" },
		{ "loop2", "${loop3}" },
		{ "loop3", "$loop1" },
		{ "self", "pre $self" },
		{ "dollar", "$$5" },
		{ "cond", "${empty?never}${a?yes}" },
	};
	size_t i;

	(void)ctx;
	for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		if (strcmp(vars[i][0], name) == 0)
			return vars[i][1];
	return NULL;
}

static void
test_expand(void)
{
	static const struct {
		const char *name, *text, *want, *want_err;
	} cases[] = {
		{ "no dollar", "plain text", "plain text", NULL },
		{ "simple", "$a", "x", NULL },
		{ "recursive", "$b", "x y", NULL },
		{ "braces and parens", "$c!", "x y-x!", NULL },
		{ "name ends at non-name char", "$a.example", "x.example",
		    NULL },
		{ "$$ is a dollar", "cost $$10", "cost $10", NULL },
		{ "$$ inside a value", "$dollar", "$5", NULL },
		{ "${name?text} when set", "${a?set}", "set", NULL },
		{ "${name?text} when empty", "${empty?set}", "", NULL },
		{ "${name:text} when empty", "${empty:dflt}", "dflt", NULL },
		{ "${name:text} when set", "${a:dflt}", "", NULL },
		{ "conditional text expands", "${a?<$b>}", "<x y>", NULL },
		{ "nested conditional", "$cond", "yes", NULL },
		{ "empty value", "[$empty]", "[]", NULL },
		{ "undefined", "$nope", NULL, "undefined parameter $nope" },
		{ "self loop", "$self", NULL,
		    "parameter loop: $self -> $self" },
		{ "three-step loop", "$loop1", NULL,
		    "parameter loop: $loop1 -> $loop2 -> $loop3 -> $loop1" },
		{ "lone dollar", "a $ b", NULL, "'$' must be followed by a "
		    "parameter name (write $$ for a dollar sign)" },
		{ "trailing dollar", "a$", NULL, "'$' must be followed by a "
		    "parameter name (write $$ for a dollar sign)" },
		{ "unclosed brace", "${a", NULL, "missing '}' after ${a" },
		{ "unclosed paren", "$(a", NULL, "missing ')' after $(a" },
		{ "empty braces", "${}", NULL,
		    "empty parameter name after '$'" },
	};
	char *out, *err;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		out = err = NULL;
		if (cases[i].want != NULL) {
			ok(cf_expand(cases[i].text, test_lookup, NULL, &out,
			    &err) == 0, "expand: %s: succeeds", cases[i].name);
			is_str(out, cases[i].want, "expand: %s", cases[i].name);
		} else {
			ok(cf_expand(cases[i].text, test_lookup, NULL, &out,
			    &err) == -1, "expand: %s: fails", cases[i].name);
			is_str(err, cases[i].want_err, "expand: %s: error",
			    cases[i].name);
		}
		free(out);
		free(err);
	}
}

static void
test_tokenize(void)
{
	static const struct {
		const char *name, *text, *want;	/* tokens joined by | */
	} cases[] = {
		{ "commas and spaces", "a, b  c,,d", "a|b|c|d" },
		{ "empty", "  , ", "" },
		{ "braces keep commas", "x inline:{ a=1, b=2 } y",
		    "x|inline:{ a=1, b=2 }|y" },
		{ "nested braces", "t:{ {k = v, w} }", "t:{ {k = v, w} }" },
	};
	char **tok, *err = NULL;
	char joined[256];
	size_t i, j, n;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (cf_tokenize(cases[i].text, &tok, &n, &err) == -1) {
			ok(0, "tokenize: %s", cases[i].name);
			free(err);
			continue;
		}
		joined[0] = '\0';
		for (j = 0; j < n; j++) {
			if (j > 0)
				strncat(joined, "|", sizeof(joined) -
				    strlen(joined) - 1);
			strncat(joined, tok[j], sizeof(joined) -
			    strlen(joined) - 1);
		}
		is_str(joined, cases[i].want, "tokenize: %s", cases[i].name);
		cf_tokens_free(&tok);
	}
	ok(cf_tokenize("a }", &tok, &n, &err) == -1, "tokenize: stray }");
	free(err);
}

static void
test_time(void)
{
	static const struct {
		const char *text;
		char unit;
		int rc, want;
	} cases[] = {
		{ "30s", 's', 0, 30 },
		{ "5m", 's', 0, 300 },
		{ "4h", 's', 0, 14400 },
		{ "5d", 's', 0, 432000 },
		{ "1w", 's', 0, 604800 },
		{ "0s", 's', 0, 0 },
		{ "10", 's', 0, 10 },
		{ "10", 'd', 0, 864000 },
		{ "3", 'm', 0, 180 },
		{ "", 's', -1, 0 },
		{ "s", 's', -1, 0 },
		{ "5x", 's', -1, 0 },
		{ "5ss", 's', -1, 0 },
		{ "5 s", 's', -1, 0 },
		{ " 5s", 's', -1, 0 },
		{ "-1s", 's', -1, 0 },
		{ "1.5h", 's', -1, 0 },
		{ "5S", 's', -1, 0 },
		{ "2147483647s", 's', 0, 2147483647 },
		{ "2147483648s", 's', -1, 0 },
		{ "3550w", 's', 0, 3550 * 604800 },
		{ "3551w", 's', -1, 0 },
		{ "99999999999999999999", 's', -1, 0 },
		{ "10", '\0', -1, 0 },
	};
	size_t i;
	int secs;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		secs = -12345;
		is_int(config_parse_time(cases[i].text, cases[i].unit, &secs),
		    cases[i].rc, "time: \"%s\" (unit %c) rc", cases[i].text,
		    cases[i].unit ? cases[i].unit : '0');
		if (cases[i].rc == 0)
			is_int(secs, cases[i].want, "time: \"%s\" value",
			    cases[i].text);
	}
}

static void
test_size(void)
{
	static const struct {
		const char *text;
		int rc;
		size_t want;
	} cases[] = {
		{ "0", 0, 0 },
		{ "10240000", 0, 10240000 },
		{ "10485760", 0, 10485760 },
		{ "18446744073709551615", 0, 18446744073709551615ULL },
		{ "18446744073709551616", -1, 0 },
		{ "", -1, 0 },
		{ "10k", -1, 0 },
		{ "10M", -1, 0 },
		{ "-1", -1, 0 },
		{ "+1", -1, 0 },
		{ "1 ", -1, 0 },
		{ "0x10", -1, 0 },
	};
	size_t i, n;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		n = 4242;
		is_int(config_parse_size(cases[i].text, &n), cases[i].rc,
		    "size: \"%s\" rc", cases[i].text);
		if (cases[i].rc == 0)
			ok(n == cases[i].want, "size: \"%s\" value",
			    cases[i].text);
	}
}

static bool
match_ip(const struct matchlist *ml, const char *ip)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, ip, &s6->sin6_addr);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		inet_pton(AF_INET, ip, &s4->sin_addr);
	}
	return matchlist_match_addr(ml, (struct sockaddr *)&ss);
}

static const char acceptance[] =
    "myhostname = relay.example.test\n"
    "mydestination = example.test\n"
    "mynetworks = 192.0.2.0/24\n"
    "relayhost = [127.0.0.1]:2526\n"
    "queue_directory = /var/tmp/postern/spool\n"
    "local_transport = maildir:/var/tmp/postern/mail\n"
    "listen = smtp/127.0.0.1:2525 submission/127.0.0.1:2587 "
    "smtps/127.0.0.1:2465\n"
    "smtpd_tls_cert_file = /var/tmp/postern/cert.pem\n"
    "smtpd_tls_key_file = /var/tmp/postern/key.pem\n"
    "smtpd_sasl_password_maps = texthash:@TMP@/users\n"
    "smtpd_filters = relay\n"
    "message_size_limit = 10485760\n"
    "smtpd_recipient_limit = 100\n";

static struct config *
load_text(const char *text, const char **err_r)
{
	char *body = with_tmp(text), *path = write_file(NULL, body);
	struct config *cfg;

	cfg = config_load(path, err_r);
	free(body);
	free(path);
	return cfg;
}

static void
test_acceptance(void)
{
	struct config *cfg;
	const char *err = NULL;
	char *users;

	users = write_file("users", "alice: $6$salt$hash\n");
	free(users);
	cfg = load_text(acceptance, &err);
	ok(cfg != NULL, "acceptance config loads");
	if (cfg == NULL) {
		printf("#   error: %s\n", err);
		return;
	}
	is_int(cfg->refcount, 1, "accept: one reference");
	is_str(cfg->myhostname, "relay.example.test", "accept: myhostname");
	is_str(cfg->mydomain, "example.test",
	    "accept: mydomain defaults to myhostname minus a label");
	is_str(cfg->myorigin, "relay.example.test",
	    "accept: myorigin defaults to $myhostname");
	is_str(cfg->smtpd_banner, "relay.example.test ESMTP Postern",
	    "accept: banner expands $myhostname");
	ok(matchlist_match_domain(cfg->mydestination, "example.test"),
	    "accept: mydestination lists example.test");
	ok(!matchlist_match_domain(cfg->mydestination, "relay.example.test"),
	    "accept: mydestination is exactly what was written");
	ok(cfg->relay_domains != NULL &&
	    !matchlist_match_domain(cfg->relay_domains, "example.test"),
	    "accept: relay_domains is an empty list");
	ok(match_ip(cfg->mynetworks, "192.0.2.44"),
	    "accept: mynetworks has 192.0.2.44");
	ok(!match_ip(cfg->mynetworks, "127.0.0.1"),
	    "accept: mynetworks replaces the default");
	is_str(cfg->relayhost.host, "127.0.0.1", "accept: relayhost host");
	is_str(cfg->relayhost.port, "2526", "accept: relayhost port");
	ok(!cfg->relayhost.use_mx, "accept: [relayhost] skips MX");
	is_str(cfg->queue_directory, "/var/tmp/postern/spool",
	    "accept: queue_directory");
	is_str(cfg->local_transport, "maildir:/var/tmp/postern/mail",
	    "accept: local_transport");
	is_str(cfg->maildir_base, "/var/tmp/postern/mail",
	    "accept: maildir_base");
	is_int(cfg->nlisten, 3, "accept: three listeners");
	if (cfg->nlisten == 3) {
		is_int(cfg->listen[0].kind, LISTENER_SMTP, "accept: smtp");
		is_int(cfg->listen[1].kind, LISTENER_SUBMISSION,
		    "accept: submission");
		is_int(cfg->listen[2].kind, LISTENER_SMTPS, "accept: smtps");
		is_str(cfg->listen[1].host, "127.0.0.1",
		    "accept: listener host");
		is_str(cfg->listen[2].port, "2465", "accept: listener port");
	}
	is_str(cfg->smtpd_tls_cert_file, "/var/tmp/postern/cert.pem",
	    "accept: cert file (need not exist)");
	is_str(cfg->smtpd_tls_key_file, "/var/tmp/postern/key.pem",
	    "accept: key file");
	ok(cfg->smtpd_sasl_password_maps != NULL,
	    "accept: password table opened");
	if (cfg->smtpd_sasl_password_maps != NULL)
		is_str(table_lookup(cfg->smtpd_sasl_password_maps, "alice"),
		    "$6$salt$hash", "accept: password lookup");
	ok(cfg->smtpd_filters != NULL && cfg->smtpd_filters[0] != NULL &&
	    strcmp(cfg->smtpd_filters[0], "relay") == 0 &&
	    cfg->smtpd_filters[1] == NULL, "accept: smtpd_filters = relay");
	is_int(cfg->message_size_limit, 10485760, "accept: size limit");
	is_int(cfg->smtpd_recipient_limit, 100, "accept: recipient limit");
	/* defaults */
	is_int(cfg->smtpd_timeout, 300, "default: smtpd_timeout");
	is_int(cfg->smtpd_data_timeout, 600, "default: smtpd_data_timeout");
	is_int(cfg->maximal_queue_lifetime, 5 * 86400,
	    "default: maximal_queue_lifetime");
	is_int(cfg->maximal_backoff_time, 4000,
	    "default: maximal_backoff_time");
	is_int(cfg->smtp_connection_cache_time_limit, 2,
	    "default: smtp_connection_cache_time_limit");
	ok(cfg->smtpd_tls_auth_only, "default: smtpd_tls_auth_only");
	is_str(cfg->smtpd_tls_protocols_min, "TLSv1.2",
	    "default: smtpd_tls_protocols_min");
	is_str(cfg->smtp_tls_security_level, "may",
	    "default: smtp_tls_security_level");
	ok(cfg->dns_resolver == NULL, "default: dns_resolver unset");
	ok(cfg->debug_subsystems == NULL, "default: debug_subsystems unset");
	is_str(cfg->mail_owner, "postern", "default: mail_owner");
	is_int(cfg->smtpd_line_length_limit, 2048,
	    "default: smtpd_line_length_limit");
	is_int(cfg->line_length_limit, 10240, "default: line_length_limit");
	is_int(cfg->header_size_limit, 102400, "default: header_size_limit");
	is_int(cfg->smtpd_hard_error_limit, 20, "default: hard errors");
	is_int(cfg->loop_threads, 0, "default: loop_threads");
	is_str(cfg->path != NULL ? strrchr(cfg->path, '/') : NULL,
	    "/main1.cf", "accept: path kept");
	config_unref(&cfg);
	ok(cfg == NULL, "config_unref clears the pointer");
}

static void
test_values(void)
{
	static const struct {
		const char *name, *text, *param, *want;
	} cases[] = {
		/* param/want compared through config_print's line */
		{ "default mydestination expands", "myhostname = mx.a.test\n",
		    "mydestination",
		    "mx.a.test, localhost.a.test, localhost" },
		{ "single-label host gets localdomain",
		    "myhostname = solo\n", "mydomain", "localdomain" },
		{ "explicit mydomain", "myhostname = h.a.test\n"
		    "mydomain = b.test\nmyorigin = $mydomain\n", "myorigin",
		    "b.test" },
		{ "default local_transport uses queue_directory",
		    "queue_directory = /srv/q\n", "local_transport",
		    "maildir:/srv/q/maildir" },
		{ "continued list", "mynetworks = 192.0.2.0/24,\n"
		    "  [2001:db8::]/32\n", "mynetworks",
		    "192.0.2.0/24, [2001:db8::]/32" },
		{ "later value wins", "smtpd_timeout = 10s\n"
		    "smtpd_timeout = 20s\n", "smtpd_timeout", "20s" },
		{ "time in minutes", "smtpd_timeout = 5m\n", "smtpd_timeout",
		    "300s" },
		{ "bare number uses the default unit (days)",
		    "maximal_queue_lifetime = 2\n", "maximal_queue_lifetime",
		    "2d" },
		{ "week", "bounce_queue_lifetime = 1w\n",
		    "bounce_queue_lifetime", "7d" },
		{ "relayhost host:port uses MX", "relayhost = mx.a.test:587\n",
		    "relayhost", "mx.a.test:587" },
		{ "relayhost host only", "relayhost = mx.a.test\n",
		    "relayhost", "mx.a.test:25" },
		{ "relayhost [host]", "relayhost = [mx.a.test]\n",
		    "relayhost", "[mx.a.test]:25" },
		{ "relayhost IPv6", "relayhost = [2001:db8::1]:25\n",
		    "relayhost", "[2001:db8::1]:25" },
		{ "listen IPv6 and commas",
		    "listen = smtp/[::1]:25, policy/127.0.0.1:10023\n",
		    "listen", "smtp/[::1]:25 policy/127.0.0.1:10023" },
		{ "filters list", "smtpd_filters = relay, sender spf\n",
		    "smtpd_filters", "relay, sender, spf" },
		{ "bool no", "smtpd_tls_auth_only = no\n",
		    "smtpd_tls_auth_only", "no" },
		{ "bool case", "smtpd_tls_auth_only = YES\n",
		    "smtpd_tls_auth_only", "yes" },
		{ "dns_resolver with port",
		    "dns_resolver = 127.0.0.1@5353\n", "dns_resolver",
		    "127.0.0.1@5353" },
		{ "dns_resolver IPv6", "dns_resolver = ::1\n",
		    "dns_resolver", "::1" },
		{ "inline table", "smtpd_sasl_password_maps = "
		    "inline:{ bob=x, carol=y }\n", "smtpd_sasl_password_maps",
		    "inline:{ bob=x, carol=y }" },
		{ "$$ in a value", "smtpd_banner = $myhostname costs $$0\n"
		    "myhostname = h.test\n", "smtpd_banner",
		    "h.test costs $0" },
		{ "${name} form", "myhostname = h.test\n"
		    "smtpd_banner = ${myhostname}ESMTP\n", "smtpd_banner",
		    "h.testESMTP" },
		{ "TLS 1.3 minimum", "smtpd_tls_protocols_min = TLSv1.3\n",
		    "smtpd_tls_protocols_min", "TLSv1.3" },
		{ "encrypt level", "smtp_tls_security_level = encrypt\n",
		    "smtp_tls_security_level", "encrypt" },
		{ "empty relay_domains", "relay_domains =\n", "relay_domains",
		    "" },
		{ "line limit at the RFC minimum",
		    "smtpd_line_length_limit = 512\n",
		    "smtpd_line_length_limit", "512" },
		{ "filters of the issue", "smtpd_filters = relay, sender, "
		    "spf, regex, dkim\n", "smtpd_filters",
		    "relay, sender, spf, regex, dkim" },
		{ "mismatch hold", "header_from_login_mismatch = hold\n",
		    "header_from_login_mismatch", "hold" },
		{ "spf fail holds", "spf_fail_action = hold\n",
		    "spf_fail_action", "hold" },
		{ "egress addresses", "spf_egress_addresses = 192.0.2.10, "
		    "2001:db8::10\n", "spf_egress_addresses",
		    "192.0.2.10, 2001:db8::10" },
		{ "canonicalization", "dkim_canonicalization = simple/simple\n",
		    "dkim_canonicalization", "simple/simple" },
		{ "signing table", "dkim_signing_table = texthash:/etc/x\n",
		    "dkim_signing_table", "texthash:/etc/x" },
		{ "authserv_id follows myhostname", "myhostname = h.test\n",
		    "authserv_id", "h.test" },
	};
	struct config *cfg;
	const char *err;
	char *out = NULL, *want, *line;
	size_t i, outlen;
	FILE *fp;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err = NULL;
		cfg = load_text(cases[i].text, &err);
		if (cfg == NULL) {
			ok(0, "value: %s: loads", cases[i].name);
			printf("#   error: %s\n", err);
			continue;
		}
		fp = open_memstream(&out, &outlen);
		fputc('\n', fp);	/* so that every line starts with \n */
		config_print(cfg, fp);
		fclose(fp);
		want = xasprintf("\n%s = ", cases[i].param);
		line = strstr(out, want);
		if (line != NULL) {
			line += strlen(want);
			line[strcspn(line, "\n")] = '\0';
		}
		is_str(line, cases[i].want, "value: %s", cases[i].name);
		free(want);
		free(out);
		out = NULL;
		config_unref(&cfg);
	}
}

static void
test_errors(void)
{
	static const struct {
		const char *name, *text;
		int line;		/* 0: no line (a default) */
		const char *want;	/* after "path:line: " */
	} cases[] = {
		{ "unknown parameter", "myhostname = a.test\n\n"
		    "no_such_thing = 1\n", 3,
		    "unknown parameter \"no_such_thing\"" },
		{ "lexer error", "# c\n  x = 1\n", 2,
		    "logical line must not start with whitespace" },
		{ "bad size", "message_size_limit = 10k\n", 1,
		    "message_size_limit: \"10k\": expected a number of bytes" },
		{ "size too small", "\nmessage_size_limit = 10\n", 2,
		    "message_size_limit: 10: out of range 1000..2147483647" },
		{ "count not a number", "smtpd_recipient_limit = many\n", 1,
		    "smtpd_recipient_limit: \"many\": expected a number" },
		{ "count zero", "smtpd_recipient_limit = 0\n", 1,
		    "smtpd_recipient_limit: 0: out of range 1..10000000" },
		{ "line limit under RFC minimum",
		    "smtpd_line_length_limit = 100\n", 1,
		    "smtpd_line_length_limit: 100: out of range 512..1048576" },
		{ "bad time", "a = 1\n", 1, "unknown parameter \"a\"" },
		{ "bad time unit", "smtpd_timeout = 5x\n", 1,
		    "smtpd_timeout: \"5x\": expected a time (a number with "
		    "unit s, m, h, d or w)" },
		{ "time out of range", "smtpd_timeout = 2d\n", 1,
		    "smtpd_timeout: \"2d\": out of range 1s..86400s" },
		{ "bad bool", "smtpd_tls_auth_only = maybe\n", 1,
		    "smtpd_tls_auth_only: \"maybe\": expected yes or no" },
		{ "bad CIDR in mynetworks",
		    "myhostname = a.test\nmynetworks = 127.0.0.0/8,\n"
		    "  192.0.2.1/24\n", 2, "mynetworks: \"192.0.2.1/24\": "
		    "non-null host address bits beyond /24" },
		{ "hostname in mynetworks", "mynetworks = localhost\n", 1,
		    "mynetworks: \"localhost\": bad IP address" },
		{ "unreadable table file",
		    "smtpd_sasl_password_maps = texthash:@TMP@/nope\n", 1,
		    "smtpd_sasl_password_maps: @TMP@/nope: cannot open: No "
		    "such file or directory" },
		{ "unsupported table type",
		    "smtpd_sasl_password_maps = hash:/etc/x\n", 1,
		    "smtpd_sasl_password_maps: hash:/etc/x: unsupported "
		    "table type \"hash\" (supported: texthash, cidr, pcre, "
		    "inline)" },
		{ "bad regex with PCRE2 error and file:line",
		    "relay_domains = pcre:@TMP@/bad.pcre\n", 1,
		    "relay_domains: @TMP@/bad.pcre:2: bad regex /a(/: "
		    "missing closing parenthesis at offset 2" },
		{ "table error line inside a table",
		    "\n\nsmtpd_sasl_password_maps = texthash:@TMP@/badusers\n",
		    3, "smtpd_sasl_password_maps: @TMP@/badusers:2: expected "
		    "format: key whitespace value" },
		{ "relative maildir", "local_transport = maildir:mail\n", 1,
		    "local_transport: \"maildir:mail\": the maildir base must "
		    "be an absolute path" },
		{ "other transport", "local_transport = lmtp:unix:/x\n", 1,
		    "local_transport: \"lmtp:unix:/x\": unsupported transport "
		    "(only maildir:/path is supported)" },
		{ "relative queue_directory", "queue_directory = spool\n", 1,
		    "queue_directory: \"spool\": must be an absolute path" },
		{ "relative default maildir via queue_directory",
		    "queue_directory = /q\nlocal_transport = maildir:\n", 2,
		    "local_transport: \"maildir:\": the maildir base must be "
		    "an absolute path" },
		{ "loop", "mydomain = $myorigin\nmyorigin = $mydomain\n", 1,
		    "mydomain: parameter loop: $mydomain -> $myorigin -> "
		    "$mydomain" },
		{ "self loop", "myhostname = a.test\n"
		    "smtpd_banner = $smtpd_banner x\n", 2,
		    "smtpd_banner: parameter loop: $smtpd_banner -> "
		    "$smtpd_banner" },
		{ "loop through a computed default",
		    "myhostname = mx.$mydomain\n", 1,
		    "myhostname: parameter loop through the default of "
		    "$mydomain ($myhostname minus its first label)" },
		{ "undefined parameter", "myhostname = a.test\n"
		    "smtpd_banner = $nonesuch\n", 2,
		    "smtpd_banner: undefined parameter $nonesuch" },
		{ "stray dollar", "smtpd_banner = costs $ 5\n", 1,
		    "smtpd_banner: '$' must be followed by a parameter name "
		    "(write $$ for a dollar sign)" },
		{ "bad hostname", "myhostname = bad host\n", 1,
		    "myhostname: \"bad host\": not a valid host or domain "
		    "name" },
		{ "empty hostname", "myhostname =\n", 1,
		    "myhostname: must not be empty" },
		{ "relayhost unclosed", "relayhost = [127.0.0.1\n", 1,
		    "relayhost: \"[127.0.0.1\": missing ']'" },
		{ "relayhost bare IPv6", "relayhost = 2001:db8::1:25\n", 1,
		    "relayhost: \"2001:db8::1:25\": write IPv6 addresses in "
		    "brackets: [2001:db8::1]:25" },
		{ "relayhost port 0", "relayhost = [h.test]:0\n", 1,
		    "relayhost: \"[h.test]:0\": bad port" },
		{ "listen unknown kind", "listen = lmtp/127.0.0.1:24\n", 1,
		    "listen: \"lmtp/127.0.0.1:24\": unknown listener kind "
		    "(expected smtp, submission, smtps or policy)" },
		{ "listen no port", "listen = smtp/127.0.0.1\n", 1,
		    "listen: \"smtp/127.0.0.1\": expected kind/host:port" },
		{ "listen bad port", "listen = smtp/127.0.0.1:99999\n", 1,
		    "listen: \"smtp/127.0.0.1:99999\": bad port" },
		{ "listen bare IPv6", "listen = smtp/::1:25\n", 1,
		    "listen: \"smtp/::1:25\": write IPv6 addresses in "
		    "brackets: [::1]:25" },
		{ "listen empty", "listen =\n", 1,
		    "listen: must not be empty" },
		{ "listen only commas", "listen = ,\n", 1,
		    "listen: no listeners" },
		{ "dns_resolver name", "dns_resolver = ns.example\n", 1,
		    "dns_resolver: \"ns.example\": expected IP or IP@PORT "
		    "with a numeric IP address" },
		{ "dns_resolver bad port", "dns_resolver = 127.0.0.1@x\n", 1,
		    "dns_resolver: \"127.0.0.1@x\": bad port after '@'" },
		{ "mismatch action", "header_from_login_mismatch = drop\n", 1,
		    "header_from_login_mismatch: \"drop\": expected reject, "
		    "hold, warn or ignore" },
		{ "spf action", "spf_temperror_action = bounce\n", 1,
		    "spf_temperror_action: \"bounce\": expected reject, "
		    "tempfail, hold or accept" },
		{ "egress action", "spf_egress_action = accept\n", 1,
		    "spf_egress_action: \"accept\": expected warn, hold or "
		    "reject" },
		{ "dkim failure action", "dkim_sign_failure_action = hold\n", 1,
		    "dkim_sign_failure_action: \"hold\": expected accept or "
		    "tempfail" },
		{ "canon", "dkim_canonicalization = nofws\n", 1,
		    "dkim_canonicalization: \"nofws\": expected "
		    "relaxed/relaxed, relaxed/simple, simple/relaxed or "
		    "simple/simple" },
		{ "signing table type", "dkim_signing_table = pcre:/etc/x\n",
		    1, "dkim_signing_table: \"pcre:/etc/x\": expected "
		    "texthash:/absolute/path" },
		{ "tls level", "smtp_tls_security_level = dane\n", 1,
		    "smtp_tls_security_level: \"dane\": expected none, may or "
		    "encrypt" },
		{ "tls protocol", "smtpd_tls_protocols_min = SSLv3\n", 1,
		    "smtpd_tls_protocols_min: \"SSLv3\": expected TLSv1, "
		    "TLSv1.1, TLSv1.2 or TLSv1.3" },
		{ "relative cert", "smtpd_tls_cert_file = cert.pem\n", 1,
		    "smtpd_tls_cert_file: \"cert.pem\": must be an absolute "
		    "path" },
		{ "backoff order", "minimal_backoff_time = 2h\n"
		    "maximal_backoff_time = 1h\n", 2,
		    "minimal_backoff_time (7200s) is greater than "
		    "maximal_backoff_time (3600s)" },
		{ "backoff order vs default", "minimal_backoff_time = 2h\n", 1,
		    "minimal_backoff_time (7200s) is greater than "
		    "maximal_backoff_time (4000s)" },
		{ "bad domain list", "mydestination = a.test, !\n", 1,
		    "mydestination: \"\": bad negation" },
		{ "unbalanced braces",
		    "smtpd_sasl_password_maps = inline:{ a=1\n", 1,
		    "smtpd_sasl_password_maps: inline:{ a=1: expected "
		    "inline:{ key=value, ... }" },
		{ "unbalanced braces in a list",
		    "relay_domains = inline:{ a=1\n", 1,
		    "relay_domains: unbalanced '{' in \"inline:{ a=1\"" },
	};
	struct config *cfg;
	const char *err;
	char *bad, *want, *path, *expect;
	size_t i;

	bad = write_file("bad.pcre", "/ok/ fine\n/a(/ never\n");
	free(bad);
	bad = write_file("badusers", "alice: x\nbob\n");
	free(bad);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *body = with_tmp(cases[i].text);

		path = write_file(NULL, body);
		free(body);
		err = NULL;
		cfg = config_load(path, &err);
		ok(cfg == NULL, "error: %s: refused", cases[i].name);
		want = with_tmp(cases[i].want);
		if (cases[i].line > 0)
			expect = xasprintf("%s:%d: %s", path, cases[i].line,
			    want);
		else
			expect = xasprintf("%s: %s", path, want);
		is_str(err, expect, "error: %s: message", cases[i].name);
		free(expect);
		free(want);
		free(path);
		config_unref(&cfg);
	}
	err = NULL;
	cfg = config_load("/nonexistent/main.cf", &err);
	is_str(err, "/nonexistent/main.cf: cannot open: No such file or "
	    "directory", "error: missing main.cf");
}

static void
test_print(void)
{
	struct config *cfg;
	const char *err = NULL;
	char *out = NULL, *p, *prev = NULL, *nl;
	size_t len, lines = 0;
	FILE *fp;
	bool sorted = true;

	cfg = load_text(acceptance, &err);
	if (cfg == NULL) {
		ok(0, "print: loads: %s", err);
		return;
	}
	fp = open_memstream(&out, &len);
	config_print(cfg, fp);
	fclose(fp);
	ok(strstr(out, "\nmyhostname = relay.example.test\n") != NULL,
	    "print: myhostname");
	ok(strstr(out, "\nrelayhost = [127.0.0.1]:2526\n") != NULL,
	    "print: relayhost");
	ok(strstr(out, "\nlisten = smtp/127.0.0.1:2525 "
	    "submission/127.0.0.1:2587 smtps/127.0.0.1:2465\n") != NULL,
	    "print: listen");
	ok(strstr(out, "\nmaximal_queue_lifetime = 5d\n") != NULL,
	    "print: time in its unit");
	ok(strstr(out, "\ndns_resolver = \n") != NULL,
	    "print: unset value is empty");
	ok(strncmp(out, "attachment_checks = \n", 21) == 0,
	    "print: first line");
	for (p = out; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
		*nl = '\0';
		if (prev != NULL && strcmp(prev, p) >= 0)
			sorted = false;
		prev = p;
		lines++;
	}
	ok(sorted, "print: sorted by name");
	is_int(lines, schema_nparams, "print: one line per parameter");
	free(out);
	config_unref(&cfg);
}

static void
test_schema(void)
{
	size_t i;
	bool sorted = true, defaults = true;

	for (i = 0; i < schema_nparams; i++) {
		if (i > 0 && strcmp(schema_params[i - 1].name,
		    schema_params[i].name) >= 0)
			sorted = false;
		if ((schema_params[i].def == NULL) !=
		    ((schema_params[i].flags & SCHEMA_F_COMPUTED) != 0))
			defaults = false;
		if (schema_find(schema_params[i].name) != &schema_params[i])
			ok(0, "schema_find %s", schema_params[i].name);
	}
	ok(sorted, "schema: rows sorted (schema_find is a binary search)");
	ok(defaults, "schema: a default text unless computed");
	ok(schema_find("nonesuch") == NULL, "schema: unknown name");
	is_int(schema_nparams, 102, "schema: every parameter we document");
}

static void
test_refcount(void)
{
	struct config *a, *b, *cur;
	const char *err = NULL;

	a = load_text("myhostname = a.test\n", &err);
	b = load_text("myhostname = b.test\n", &err);
	if (a == NULL || b == NULL) {
		ok(0, "refcount: loads: %s", err);
		config_unref(&a);
		config_unref(&b);
		return;
	}
	ok(config_current() == NULL, "current: none before the first swap");
	config_swap(a);		/* takes our reference */
	cur = config_current();
	ok(cur == a, "current: the swapped-in config");
	is_int(a->refcount, 2, "current: a new reference");
	config_swap(b);
	is_int(a->refcount, 1, "swap: drops the old one's reference");
	is_str(cur->myhostname, "a.test", "swap: old config still usable");
	config_unref(&cur);
	cur = config_current();
	is_str(cur->myhostname, "b.test", "swap: new config current");
	config_ref(cur);
	is_int(cur->refcount, 3, "config_ref adds one");
	config_unref(&cur);
	ok(cur == NULL, "config_unref clears the caller's pointer");
	cur = b;
	config_unref(&cur);
	config_swap(NULL);	/* frees b */
	ok(config_current() == NULL, "swap: NULL empties current");
	config_unref(&cur);
	ok(1, "config_unref(NULL) is harmless");
}

/* error_thread - a thread whose config_load fails, then exits */
static void *
error_thread(void *arg)
{
	const char **err_r = arg;
	struct config *cfg;

	cfg = load_text("myhostname = a.test\nno_such_parameter = 1\n",
	    err_r);
	return cfg;
}

/*
 * A thread's last error belongs to the thread: another thread's load
 * does not overwrite it, and it is freed when the thread exits (the
 * sanitizer build's leak check fails this test otherwise).
 */
static void
test_thread_error(void)
{
	const char *err = NULL, *terr = NULL;
	struct config *cfg;
	pthread_t th;
	void *ret = NULL;

	cfg = load_text("message_size_limit = lots\n", &err);
	ok(cfg == NULL && err != NULL && strstr(err, "message_size_limit"),
	    "thread error: this thread's error (%s)", err ? err : "-");
	if (pthread_create(&th, NULL, error_thread, &terr) != 0) {
		ok(0, "thread error: pthread_create");
		return;
	}
	pthread_join(th, &ret);
	ok(ret == NULL && terr != NULL,
	    "thread error: the thread's load failed");
	ok(err != NULL && strstr(err, "message_size_limit") != NULL,
	    "thread error: ours is still ours (%s)", err ? err : "-");
}

static void
cleanup(void)
{
	char *cmd = xasprintf("rm -rf '%s'", tmpdir);

	if (system(cmd) != 0)
		printf("# cleanup of %s failed\n", tmpdir);
	free(cmd);
}

int
main(void)
{
	if (mkdtemp(tmpdir) == NULL) {
		printf("Bail out! mkdtemp\n");
		return 1;
	}
	test_lexer();
	test_lexer_errors();
	test_expand();
	test_tokenize();
	test_time();
	test_size();
	test_acceptance();
	test_values();
	test_errors();
	test_print();
	test_schema();
	test_refcount();
	test_thread_error();
	cleanup();
	return done_testing();
}

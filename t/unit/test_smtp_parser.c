/*
 * test_smtp_parser.c - table-driven tests of the SMTP command parser.
 *
 * Each case is one command line and either the complete error reply the
 * parser must name, or a summary of every field it must fill in (see
 * summarize()), so that a case checks all fields at once.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "smtp_parser.h"
#include "tap.h"

#define OK	0
#define ERR	(-1)

struct pcase {
	const char *name;
	const char *line;
	int	 want_rc;
	enum smtp_verb want_verb;
	const char *want;	/* summary on success, reply on error */
};

#define V(x)	SMTP_VERB_##x

static const char *L65 =
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/*
 * Some inputs below are longer than 80 columns: they are kept on one line
 * so that each reads exactly as a client would send it.
 */
static const struct pcase cases[] = {
	/* verbs and case insensitivity */
	{ "EHLO", "EHLO client.example", OK, V(EHLO), "arg=client.example" },
	{ "ehlo lower", "ehlo client.example", OK, V(EHLO), "arg=client.example" },
	{ "EhLo mixed", "EhLo client.example", OK, V(EHLO), "arg=client.example" },
	{ "EHLO literal", "EHLO [192.0.2.1]", OK, V(EHLO), "arg=[192.0.2.1]" },
	{ "EHLO v6 literal", "EHLO [IPv6:2001:db8::1]", OK, V(EHLO),
	  "arg=[IPv6:2001:db8::1]" },
	{ "EHLO trailing space", "EHLO a.example  ", OK, V(EHLO), "arg=a.example" },
	{ "EHLO tab", "EHLO\ta.example", OK, V(EHLO), "arg=a.example" },
	{ "EHLO no arg", "EHLO", ERR, V(EHLO), "501 5.5.4 Syntax: EHLO hostname" },
	{ "EHLO only space", "EHLO   ", ERR, V(EHLO),
	  "501 5.5.4 Syntax: EHLO hostname" },
	{ "EHLO two words", "EHLO a.example b", ERR, V(EHLO),
	  "501 5.5.4 Syntax: EHLO hostname" },
	{ "EHLO control", "EHLO a\x01" "b", ERR, V(EHLO),
	  "501 5.5.4 Syntax: EHLO hostname" },
	{ "HELO", "HELO client.example", OK, V(HELO), "arg=client.example" },
	{ "helo", "helo x", OK, V(HELO), "arg=x" },
	{ "HELO no arg", "HELO", ERR, V(HELO), "501 5.5.4 Syntax: HELO hostname" },
	{ "DATA", "DATA", OK, V(DATA), "" },
	{ "data", "data", OK, V(DATA), "" },
	{ "DATA trailing space", "DATA ", OK, V(DATA), "" },
	{ "DATA arg", "DATA x", ERR, V(DATA), "501 5.5.4 Syntax: DATA" },
	{ "RSET", "RSET", OK, V(RSET), "" },
	{ "rset", "rSeT", OK, V(RSET), "" },
	{ "RSET arg", "RSET now", ERR, V(RSET), "501 5.5.4 Syntax: RSET" },
	{ "QUIT", "QUIT", OK, V(QUIT), "" },
	{ "quit", "quit", OK, V(QUIT), "" },
	{ "QUIT arg", "QUIT bye", ERR, V(QUIT), "501 5.5.4 Syntax: QUIT" },
	{ "STARTTLS", "STARTTLS", OK, V(STARTTLS), "" },
	{ "starttls", "starttls", OK, V(STARTTLS), "" },
	{ "STARTTLS arg", "STARTTLS x", ERR, V(STARTTLS),
	  "501 5.5.4 Syntax: STARTTLS" },
	{ "NOOP", "NOOP", OK, V(NOOP), "" },
	{ "NOOP arg", "NOOP hello there", OK, V(NOOP), "arg=hello there" },
	{ "noop", "noop", OK, V(NOOP), "" },
	{ "VRFY", "VRFY user", OK, V(VRFY), "arg=user" },
	{ "VRFY bare", "VRFY", OK, V(VRFY), "" },
	{ "vrfy brackets", "vrfy <a@b.example>", OK, V(VRFY),
	  "arg=<a@b.example>" },
	{ "EXPN", "EXPN list", OK, V(EXPN), "arg=list" },
	{ "EXPN bare", "EXPN", OK, V(EXPN), "" },
	{ "HELP", "HELP", OK, V(HELP), "" },
	{ "HELP arg", "HELP MAIL", OK, V(HELP), "arg=MAIL" },
	{ "help lower", "help", OK, V(HELP), "" },
	{ "unknown", "FOO bar", ERR, V(UNKNOWN),
	  "500 5.5.2 Error: command not recognized" },
	{ "TURN", "TURN", ERR, V(UNKNOWN),
	  "500 5.5.2 Error: command not recognized" },
	{ "ETRN", "ETRN example.com", ERR, V(UNKNOWN),
	  "500 5.5.2 Error: command not recognized" },
	{ "verb prefix", "MAI FROM:<a@b.example>", ERR, V(UNKNOWN),
	  "500 5.5.2 Error: command not recognized" },
	{ "verb longer", "MAILX FROM:<a@b.example>", ERR, V(UNKNOWN),
	  "500 5.5.2 Error: command not recognized" },
	{ "verb glued", "MAILFROM:<a@b.example>", ERR, V(UNKNOWN),
	  "500 5.5.2 Error: command not recognized" },
	{ "empty", "", ERR, V(UNKNOWN), "500 5.5.2 Error: bad syntax" },
	{ "spaces only", "   ", ERR, V(UNKNOWN), "500 5.5.2 Error: bad syntax" },
	{ "leading space", " NOOP", OK, V(NOOP), "" },
	{ "bare CR", "NOOP\rRSET", ERR, V(UNKNOWN),
	  "500 5.5.2 Error: bare CR or LF in command" },
	{ "bare LF", "NOOP\nRSET", ERR, V(UNKNOWN),
	  "500 5.5.2 Error: bare CR or LF in command" },
	{ "UTF-8 verb", "M\xc3\x80IL FROM:<a@b.example>", ERR, V(UNKNOWN),
	  "500 5.5.2 Error: command not recognized" },
	{ "HTTP", "GET / HTTP/1.0", ERR, V(UNKNOWN),
	  "500 5.5.2 Error: command not recognized" },

	/* MAIL basics */
	{ "MAIL", "MAIL FROM:<alice@example.org>", OK, V(MAIL),
	  "path=alice@example.org" },
	{ "mail lower", "mail from:<alice@example.org>", OK, V(MAIL),
	  "path=alice@example.org" },
	{ "MAIL From mixed", "Mail From:<alice@example.org>", OK, V(MAIL),
	  "path=alice@example.org" },
	{ "MAIL null", "MAIL FROM:<>", OK, V(MAIL), "path=" },
	{ "MAIL space after colon", "MAIL FROM: <alice@example.org>", OK,
	  V(MAIL), "path=alice@example.org" },
	{ "MAIL spaces after colon", "MAIL FROM:   <alice@example.org>", OK,
	  V(MAIL), "path=alice@example.org" },
	{ "MAIL space before colon", "MAIL FROM :<alice@example.org>", ERR,
	  V(MAIL), "501 5.5.4 Syntax: MAIL FROM:<address>" },
	{ "MAIL no brackets", "MAIL FROM:alice@example.org", ERR, V(MAIL),
	  "501 5.5.4 Syntax: MAIL FROM:<address>" },
	{ "MAIL no arg", "MAIL", ERR, V(MAIL),
	  "501 5.5.4 Syntax: MAIL FROM:<address>" },
	{ "MAIL no FROM", "MAIL <alice@example.org>", ERR, V(MAIL),
	  "501 5.5.4 Syntax: MAIL FROM:<address>" },
	{ "MAIL TO:", "MAIL TO:<alice@example.org>", ERR, V(MAIL),
	  "501 5.5.4 Syntax: MAIL FROM:<address>" },
	{ "MAIL FROM only", "MAIL FROM:", ERR, V(MAIL),
	  "501 5.5.4 Syntax: MAIL FROM:<address>" },
	{ "MAIL unclosed", "MAIL FROM:<alice@example.org", ERR, V(MAIL),
	  "501 5.1.7 Bad sender address syntax" },
	{ "MAIL junk after >", "MAIL FROM:<alice@example.org>x", ERR, V(MAIL),
	  "501 5.5.4 Syntax: MAIL FROM:<address>" },
	{ "MAIL double brackets", "MAIL FROM:<<alice@example.org>>", ERR,
	  V(MAIL), "501 5.1.7 Bad sender address syntax" },
	{ "MAIL trailing space", "MAIL FROM:<a@b.example>  ", OK, V(MAIL),
	  "path=a@b.example" },
	{ "MAIL no domain", "MAIL FROM:<alice>", ERR, V(MAIL),
	  "501 5.1.7 Bad sender address syntax" },
	{ "MAIL postmaster no domain", "MAIL FROM:<postmaster>", ERR, V(MAIL),
	  "501 5.1.7 Bad sender address syntax" },
	{ "MAIL empty local", "MAIL FROM:<@example.org>", ERR, V(MAIL),
	  "501 5.1.7 Bad sender address syntax" },
	{ "MAIL empty domain", "MAIL FROM:<alice@>", ERR, V(MAIL),
	  "501 5.1.7 Bad sender address syntax" },
	{ "MAIL two @", "MAIL FROM:<a@b@example.org>", ERR, V(MAIL),
	  "501 5.1.7 Bad sender address syntax" },
	{ "MAIL leading dot", "MAIL FROM:<.a@example.org>", ERR, V(MAIL),
	  "501 5.1.7 Bad sender address syntax" },
	{ "MAIL trailing dot local", "MAIL FROM:<a.@example.org>", ERR,
	  V(MAIL), "501 5.1.7 Bad sender address syntax" },
	{ "MAIL double dot local", "MAIL FROM:<a..b@example.org>", ERR,
	  V(MAIL), "501 5.1.7 Bad sender address syntax" },
	{ "MAIL space in local", "MAIL FROM:<a b@example.org>", ERR, V(MAIL),
	  "501 5.1.7 Bad sender address syntax" },
	{ "MAIL atext specials", "MAIL FROM:<a!#$%&'*+-/=?^_`{|}~z@x.example>",
	  OK, V(MAIL), "path=a!#$%&'*+-/=?^_`{|}~z@x.example" },
	{ "MAIL comma in local", "MAIL FROM:<a,b@example.org>", ERR, V(MAIL),
	  "501 5.1.7 Bad sender address syntax" },
	{ "MAIL quoted", "MAIL FROM:<\"john smith\"@example.org>", OK, V(MAIL),
	  "path=\"john smith\"@example.org" },
	{ "MAIL quoted pair", "MAIL FROM:<\"a\\\"b\"@example.org>", OK, V(MAIL),
	  "path=\"a\\\"b\"@example.org" },
	{ "MAIL quoted >", "MAIL FROM:<\"a>b\"@example.org>", OK, V(MAIL),
	  "path=\"a>b\"@example.org" },
	{ "MAIL quoted unterminated", "MAIL FROM:<\"ab@example.org>", ERR,
	  V(MAIL), "501 5.1.7 Bad sender address syntax" },
	{ "MAIL quoted control", "MAIL FROM:<\"a\x01" "b\"@example.org>", ERR,
	  V(MAIL), "501 5.1.7 Bad sender address syntax" },
	{ "MAIL domain hyphen end", "MAIL FROM:<a@b-.example>", ERR, V(MAIL),
	  "501 5.1.7 Bad sender address syntax" },
	{ "MAIL domain hyphen start", "MAIL FROM:<a@-b.example>", ERR, V(MAIL),
	  "501 5.1.7 Bad sender address syntax" },
	{ "MAIL domain hyphen mid", "MAIL FROM:<a@b-c.example>", OK, V(MAIL),
	  "path=a@b-c.example" },
	{ "MAIL domain underscore", "MAIL FROM:<a@b_c.example>", ERR, V(MAIL),
	  "501 5.1.7 Bad sender address syntax" },
	{ "MAIL domain empty label", "MAIL FROM:<a@b..example>", ERR, V(MAIL),
	  "501 5.1.7 Bad sender address syntax" },
	{ "MAIL domain leading dot", "MAIL FROM:<a@.example>", ERR, V(MAIL),
	  "501 5.1.7 Bad sender address syntax" },
	{ "MAIL domain trailing dot", "MAIL FROM:<a@b.example.>", OK, V(MAIL),
	  "path=a@b.example." },
	{ "MAIL domain two trailing dots", "MAIL FROM:<a@b.example..>", ERR,
	  V(MAIL), "501 5.1.7 Bad sender address syntax" },
	{ "MAIL single label", "MAIL FROM:<a@localhost>", OK, V(MAIL),
	  "path=a@localhost" },
	{ "MAIL ipv4 literal", "MAIL FROM:<a@[192.0.2.1]>", OK, V(MAIL),
	  "path=a@[192.0.2.1]" },
	{ "MAIL ipv4 literal bad", "MAIL FROM:<a@[192.0.2.256]>", ERR, V(MAIL),
	  "501 5.1.7 Bad sender address syntax" },
	{ "MAIL ipv4 literal short", "MAIL FROM:<a@[192.0.2]>", ERR, V(MAIL),
	  "501 5.1.7 Bad sender address syntax" },
	{ "MAIL ipv6 literal", "MAIL FROM:<a@[IPv6:2001:db8::1]>", OK, V(MAIL),
	  "path=a@[IPv6:2001:db8::1]" },
	{ "MAIL ipv6 literal lower tag", "MAIL FROM:<a@[ipv6:::1]>", OK, V(MAIL),
	  "path=a@[ipv6:::1]" },
	{ "MAIL ipv6 literal bad", "MAIL FROM:<a@[IPv6:2001:db8::g]>", ERR,
	  V(MAIL), "501 5.1.7 Bad sender address syntax" },
	{ "MAIL ipv6 without tag", "MAIL FROM:<a@[2001:db8::1]>", ERR, V(MAIL),
	  "501 5.1.7 Bad sender address syntax" },
	{ "MAIL general literal", "MAIL FROM:<a@[x-tag:stuff]>", ERR, V(MAIL),
	  "501 5.1.7 Bad sender address syntax" },
	{ "MAIL ipv4 leading zero", "MAIL FROM:<a@[192.0.2.01]>", ERR, V(MAIL),
	  "501 5.1.7 Bad sender address syntax" },
	{ "MAIL ipv4-mapped v6", "MAIL FROM:<a@[IPv6:::ffff:192.0.2.1]>", OK,
	  V(MAIL), "path=a@[IPv6:::ffff:192.0.2.1]" },
	{ "MAIL empty literal", "MAIL FROM:<a@[]>", ERR, V(MAIL),
	  "501 5.1.7 Bad sender address syntax" },
	{ "MAIL unclosed literal", "MAIL FROM:<a@[192.0.2.1>", ERR, V(MAIL),
	  "501 5.1.7 Bad sender address syntax" },
	{ "MAIL source route", "MAIL FROM:<@a.example,@b.example:u@c.example>",
	  OK, V(MAIL), "path=u@c.example" },
	{ "MAIL source route one", "MAIL FROM:<@a.example:u@c.example>", OK,
	  V(MAIL), "path=u@c.example" },
	{ "MAIL source route literal", "MAIL FROM:<@[192.0.2.1]:u@c.example>",
	  OK, V(MAIL), "path=u@c.example" },
	{ "MAIL source route no colon", "MAIL FROM:<@a.example,u@c.example>",
	  ERR, V(MAIL), "501 5.1.7 Bad sender address syntax" },
	{ "MAIL source route empty", "MAIL FROM:<@:u@c.example>", ERR, V(MAIL),
	  "501 5.1.7 Bad sender address syntax" },
	{ "MAIL source route only", "MAIL FROM:<@a.example:>", ERR, V(MAIL),
	  "501 5.1.7 Bad sender address syntax" },

	/* lengths, RFC 5321 4.5.3.1 */
	{ "MAIL local 64", "MAIL FROM:<aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@x.example>",
	  OK, V(MAIL), "path=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@x.example" },
	{ "MAIL local 65", "MAIL FROM:<aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@x.example>",
	  ERR, V(MAIL), "501 5.1.7 Local part of address too long" },
	{ "RCPT local 65", "RCPT TO:<aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@x.example>",
	  ERR, V(RCPT), "501 5.1.3 Local part of address too long" },
	{ "RCPT label 64",
	  "RCPT TO:<a@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example>",
	  ERR, V(RCPT), "501 5.1.3 Bad recipient address syntax" },
	/* long domain and path cases are built at run time, see main() */

	/* MAIL parameters */
	{ "SIZE", "MAIL FROM:<a@b.example> SIZE=1000", OK, V(MAIL),
	  "path=a@b.example size=1000" },
	{ "size lower", "MAIL FROM:<a@b.example> size=1000", OK, V(MAIL),
	  "path=a@b.example size=1000" },
	{ "SIZE zero", "MAIL FROM:<a@b.example> SIZE=0", OK, V(MAIL),
	  "path=a@b.example size=0" },
	{ "SIZE huge saturates", "MAIL FROM:<a@b.example> SIZE=99999999999999999999999",
	  OK, V(MAIL), "path=a@b.example size=18446744073709551615" },
	{ "SIZE max", "MAIL FROM:<a@b.example> SIZE=18446744073709551615", OK,
	  V(MAIL), "path=a@b.example size=18446744073709551615" },
	{ "SIZE no value", "MAIL FROM:<a@b.example> SIZE", ERR, V(MAIL),
	  "501 5.5.4 Bad SIZE parameter syntax" },
	{ "SIZE empty value", "MAIL FROM:<a@b.example> SIZE=", ERR, V(MAIL),
	  "501 5.5.4 Error: bad parameter syntax" },
	{ "SIZE letters", "MAIL FROM:<a@b.example> SIZE=12k", ERR, V(MAIL),
	  "501 5.5.4 Bad SIZE parameter syntax" },
	{ "SIZE negative", "MAIL FROM:<a@b.example> SIZE=-1", ERR, V(MAIL),
	  "501 5.5.4 Bad SIZE parameter syntax" },
	{ "SIZE duplicate", "MAIL FROM:<a@b.example> SIZE=1 SIZE=2", ERR,
	  V(MAIL), "501 5.5.4 Duplicate SIZE parameter" },
	{ "SIZE duplicate case", "MAIL FROM:<a@b.example> SIZE=1 size=2", ERR,
	  V(MAIL), "501 5.5.4 Duplicate SIZE parameter" },
	{ "BODY=7BIT", "MAIL FROM:<a@b.example> BODY=7BIT", OK, V(MAIL),
	  "path=a@b.example body=7BIT" },
	{ "BODY=8BITMIME", "MAIL FROM:<a@b.example> BODY=8BITMIME", OK, V(MAIL),
	  "path=a@b.example body=8BITMIME" },
	{ "body=8bitmime", "MAIL FROM:<a@b.example> body=8bitmime", OK, V(MAIL),
	  "path=a@b.example body=8BITMIME" },
	{ "BODY=BINARYMIME", "MAIL FROM:<a@b.example> BODY=BINARYMIME", OK,
	  V(MAIL), "path=a@b.example body=BINARYMIME" },
	{ "BODY bad", "MAIL FROM:<a@b.example> BODY=9BIT", ERR, V(MAIL),
	  "501 5.5.4 Bad BODY parameter syntax" },
	{ "BODY no value", "MAIL FROM:<a@b.example> BODY", ERR, V(MAIL),
	  "501 5.5.4 Bad BODY parameter syntax" },
	{ "SMTPUTF8", "MAIL FROM:<a@b.example> SMTPUTF8", OK, V(MAIL),
	  "path=a@b.example smtputf8" },
	{ "smtputf8 lower", "MAIL FROM:<a@b.example> smtputf8", OK, V(MAIL),
	  "path=a@b.example smtputf8" },
	{ "SMTPUTF8 value", "MAIL FROM:<a@b.example> SMTPUTF8=yes", ERR, V(MAIL),
	  "501 5.5.4 Bad SMTPUTF8 parameter syntax" },
	{ "RET=FULL", "MAIL FROM:<a@b.example> RET=FULL", OK, V(MAIL),
	  "path=a@b.example ret=FULL" },
	{ "RET=HDRS", "MAIL FROM:<a@b.example> RET=hdrs", OK, V(MAIL),
	  "path=a@b.example ret=HDRS" },
	{ "RET bad", "MAIL FROM:<a@b.example> RET=BODY", ERR, V(MAIL),
	  "501 5.5.4 Bad RET parameter syntax" },
	{ "RET none", "MAIL FROM:<a@b.example> RET", ERR, V(MAIL),
	  "501 5.5.4 Bad RET parameter syntax" },
	{ "ENVID", "MAIL FROM:<a@b.example> ENVID=QQ314159", OK, V(MAIL),
	  "path=a@b.example envid=QQ314159/QQ314159" },
	{ "ENVID xtext", "MAIL FROM:<a@b.example> ENVID=a+2Bb+3Dc", OK, V(MAIL),
	  "path=a@b.example envid=a+2Bb+3Dc/a+b=c" },
	{ "ENVID lower hex", "MAIL FROM:<a@b.example> ENVID=a+2bb", OK, V(MAIL),
	  "path=a@b.example envid=a+2bb/a+b" },
	{ "ENVID bad hex", "MAIL FROM:<a@b.example> ENVID=a+2G", ERR, V(MAIL),
	  "501 5.5.4 Bad ENVID parameter syntax" },
	{ "ENVID short hex", "MAIL FROM:<a@b.example> ENVID=a+2", ERR, V(MAIL),
	  "501 5.5.4 Bad ENVID parameter syntax" },
	{ "ENVID encoded CR", "MAIL FROM:<a@b.example> ENVID=a+0Db", ERR, V(MAIL),
	  "501 5.5.4 Bad ENVID parameter syntax" },
	{ "ENVID encoded NUL", "MAIL FROM:<a@b.example> ENVID=a+00b", ERR,
	  V(MAIL), "501 5.5.4 Bad ENVID parameter syntax" },
	{ "ENVID utf8", "MAIL FROM:<a@b.example> ENVID=\xc3\xa9", ERR, V(MAIL),
	  "501 5.5.4 Bad ENVID parameter syntax" },
	{ "ENVID none", "MAIL FROM:<a@b.example> ENVID", ERR, V(MAIL),
	  "501 5.5.4 Bad ENVID parameter syntax" },
	{ "ENVID 100", "MAIL FROM:<a@b.example> ENVID=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	  OK, V(MAIL), "path=a@b.example envid=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" },
	{ "ENVID 101", "MAIL FROM:<a@b.example> ENVID=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	  ERR, V(MAIL), "501 5.5.4 ENVID parameter too long" },
	{ "AUTH=<>", "MAIL FROM:<a@b.example> AUTH=<>", OK, V(MAIL),
	  "path=a@b.example auth=<>" },
	{ "AUTH=xtext", "MAIL FROM:<a@b.example> AUTH=e+3Dmc2@example.com", OK,
	  V(MAIL), "path=a@b.example auth=e+3Dmc2@example.com" },
	{ "AUTH= bad", "MAIL FROM:<a@b.example> AUTH=a+zz", ERR, V(MAIL),
	  "501 5.5.4 Bad AUTH parameter syntax" },
	{ "all MAIL params",
	  "MAIL FROM:<a@b.example> SIZE=5 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=x AUTH=<>",
	  OK, V(MAIL),
	  "path=a@b.example size=5 body=8BITMIME smtputf8 ret=HDRS envid=x/x auth=<>" },
	{ "params several spaces", "MAIL FROM:<a@b.example>   SIZE=5    RET=FULL",
	  OK, V(MAIL), "path=a@b.example size=5 ret=FULL" },
	{ "param tab", "MAIL FROM:<a@b.example>\tSIZE=5", OK, V(MAIL),
	  "path=a@b.example size=5" },
	{ "unknown param", "MAIL FROM:<a@b.example> FOO=bar", ERR, V(MAIL),
	  "555 5.5.4 Unsupported option: FOO" },
	{ "unknown param no value", "MAIL FROM:<a@b.example> XYZZY", ERR, V(MAIL),
	  "555 5.5.4 Unsupported option: XYZZY" },
	{ "RCPT param on MAIL", "MAIL FROM:<a@b.example> NOTIFY=NEVER", ERR,
	  V(MAIL), "555 5.5.4 Unsupported option: NOTIFY" },
	{ "ORCPT on MAIL", "MAIL FROM:<a@b.example> ORCPT=rfc822;a@b", ERR,
	  V(MAIL), "555 5.5.4 Unsupported option: ORCPT" },
	{ "bad keyword", "MAIL FROM:<a@b.example> -SIZE=1", ERR, V(MAIL),
	  "501 5.5.4 Error: bad parameter syntax" },
	{ "bad keyword char", "MAIL FROM:<a@b.example> SI_ZE=1", ERR, V(MAIL),
	  "501 5.5.4 Error: bad parameter syntax" },
	{ "value with =", "MAIL FROM:<a@b.example> ENVID=a=b", ERR, V(MAIL),
	  "501 5.5.4 Error: bad parameter syntax" },
	{ "value control", "MAIL FROM:<a@b.example> ENVID=a\x7f" "b", ERR,
	  V(MAIL), "501 5.5.4 Error: bad parameter syntax" },
	{ "param hyphen keyword", "MAIL FROM:<a@b.example> X-FOO=1", ERR, V(MAIL),
	  "555 5.5.4 Unsupported option: X-FOO" },

	/* SMTPUTF8 and non-ASCII, RFC 6531 */
	{ "utf8 local with SMTPUTF8", "MAIL FROM:<j\xc3\xb6rg@b.example> SMTPUTF8",
	  OK, V(MAIL), "path=j\xc3\xb6rg@b.example utf8path smtputf8" },
	{ "utf8 local without", "MAIL FROM:<j\xc3\xb6rg@b.example>", ERR, V(MAIL),
	  "553 5.6.7 Non-ASCII address requires SMTPUTF8" },
	{ "utf8 domain with SMTPUTF8", "MAIL FROM:<a@b\xc3\xbc.example> SMTPUTF8",
	  OK, V(MAIL), "path=a@b\xc3\xbc.example utf8path smtputf8" },
	{ "utf8 domain without", "MAIL FROM:<a@b\xc3\xbc.example>", ERR, V(MAIL),
	  "553 5.6.7 Non-ASCII address requires SMTPUTF8" },
	{ "utf8 quoted", "MAIL FROM:<\"j\xc3\xb6 rg\"@b.example> SMTPUTF8", OK,
	  V(MAIL), "path=\"j\xc3\xb6 rg\"@b.example utf8path smtputf8" },
	{ "invalid utf8", "MAIL FROM:<j\xff" "rg@b.example> SMTPUTF8", ERR,
	  V(MAIL), "501 5.1.7 Bad sender address syntax" },
	{ "overlong utf8", "MAIL FROM:<j\xc0\xafrg@b.example> SMTPUTF8", ERR,
	  V(MAIL), "501 5.1.7 Bad sender address syntax" },
	{ "truncated utf8", "MAIL FROM:<j\xe2\x82@b.example> SMTPUTF8", ERR,
	  V(MAIL), "501 5.1.7 Bad sender address syntax" },
	{ "surrogate utf8", "MAIL FROM:<j\xed\xa0\x80@b.example> SMTPUTF8", ERR,
	  V(MAIL), "501 5.1.7 Bad sender address syntax" },
	{ "utf8 rcpt flagged", "RCPT TO:<j\xc3\xb6rg@b.example>", OK, V(RCPT),
	  "path=j\xc3\xb6rg@b.example utf8path" },
	{ "utf8 4-byte", "RCPT TO:<\xf0\x9f\x98\x80@b.example>", OK, V(RCPT),
	  "path=\xf0\x9f\x98\x80@b.example utf8path" },

	/* RCPT */
	{ "RCPT", "RCPT TO:<bob@example.net>", OK, V(RCPT), "path=bob@example.net" },
	{ "rcpt lower", "rcpt to:<bob@example.net>", OK, V(RCPT),
	  "path=bob@example.net" },
	{ "RCPT space after colon", "RCPT TO: <bob@example.net>", OK, V(RCPT),
	  "path=bob@example.net" },
	{ "RCPT null", "RCPT TO:<>", ERR, V(RCPT),
	  "501 5.1.3 Bad recipient address syntax" },
	{ "RCPT postmaster", "RCPT TO:<postmaster>", OK, V(RCPT),
	  "path=postmaster" },
	{ "RCPT Postmaster case", "RCPT TO:<PostMaster>", OK, V(RCPT),
	  "path=PostMaster" },
	{ "RCPT no domain", "RCPT TO:<bob>", ERR, V(RCPT),
	  "501 5.1.3 Bad recipient address syntax" },
	{ "RCPT postmasterx", "RCPT TO:<postmasters>", ERR, V(RCPT),
	  "501 5.1.3 Bad recipient address syntax" },
	{ "RCPT no brackets", "RCPT TO:bob@example.net", ERR, V(RCPT),
	  "501 5.5.4 Syntax: RCPT TO:<address>" },
	{ "RCPT FROM:", "RCPT FROM:<bob@example.net>", ERR, V(RCPT),
	  "501 5.5.4 Syntax: RCPT TO:<address>" },
	{ "RCPT no arg", "RCPT", ERR, V(RCPT),
	  "501 5.5.4 Syntax: RCPT TO:<address>" },
	{ "RCPT percent", "RCPT TO:<u%other.example@example.test>", OK, V(RCPT),
	  "path=u%other.example@example.test" },
	{ "RCPT bang", "RCPT TO:<other!u@example.test>", OK, V(RCPT),
	  "path=other!u@example.test" },
	{ "RCPT quoted @", "RCPT TO:<\"u@other.example\"@example.test>", OK,
	  V(RCPT), "path=\"u@other.example\"@example.test" },
	{ "RCPT source route", "RCPT TO:<@example.test:u@other.example>", OK,
	  V(RCPT), "path=u@other.example" },
	{ "RCPT route two hops", "RCPT TO:<@a.example,@b.example:u@c.example>",
	  OK, V(RCPT), "path=u@c.example" },
	{ "RCPT bad route", "RCPT TO:<@a.example;u@c.example>", ERR, V(RCPT),
	  "501 5.1.3 Bad recipient address syntax" },
	{ "RCPT two @", "RCPT TO:<u@other.example@example.test>", ERR, V(RCPT),
	  "501 5.1.3 Bad recipient address syntax" },
	{ "RCPT literal", "RCPT TO:<u@[192.0.2.1]>", OK, V(RCPT),
	  "path=u@[192.0.2.1]" },
	{ "RCPT trailing dot", "RCPT TO:<u@example.test.>", OK, V(RCPT),
	  "path=u@example.test." },
	{ "NOTIFY=NEVER", "RCPT TO:<b@c.example> NOTIFY=NEVER", OK, V(RCPT),
	  "path=b@c.example notify=N" },
	{ "NOTIFY list", "RCPT TO:<b@c.example> NOTIFY=SUCCESS,FAILURE,DELAY",
	  OK, V(RCPT), "path=b@c.example notify=SFD" },
	{ "NOTIFY lower", "RCPT TO:<b@c.example> notify=failure,delay", OK,
	  V(RCPT), "path=b@c.example notify=FD" },
	{ "NOTIFY one", "RCPT TO:<b@c.example> NOTIFY=DELAY", OK, V(RCPT),
	  "path=b@c.example notify=D" },
	{ "NOTIFY NEVER mixed", "RCPT TO:<b@c.example> NOTIFY=NEVER,DELAY", ERR,
	  V(RCPT), "501 5.5.4 Bad NOTIFY parameter syntax" },
	{ "NOTIFY bad", "RCPT TO:<b@c.example> NOTIFY=ALWAYS", ERR, V(RCPT),
	  "501 5.5.4 Bad NOTIFY parameter syntax" },
	{ "NOTIFY empty item", "RCPT TO:<b@c.example> NOTIFY=SUCCESS,", ERR,
	  V(RCPT), "501 5.5.4 Bad NOTIFY parameter syntax" },
	{ "NOTIFY no value", "RCPT TO:<b@c.example> NOTIFY", ERR, V(RCPT),
	  "501 5.5.4 Bad NOTIFY parameter syntax" },
	{ "ORCPT", "RCPT TO:<b@c.example> ORCPT=rfc822;b@c.example", OK, V(RCPT),
	  "path=b@c.example orcpt=rfc822|b@c.example|rfc822;b@c.example" },
	{ "ORCPT xtext", "RCPT TO:<b@c.example> ORCPT=rfc822;a+2Bb@c.example",
	  OK, V(RCPT),
	  "path=b@c.example orcpt=rfc822|a+b@c.example|rfc822;a+2Bb@c.example" },
	{ "ORCPT utf-8", "RCPT TO:<b@c.example> ORCPT=utf-8;j\xc3\xb6@c.example",
	  OK, V(RCPT),
	  "path=b@c.example orcpt=utf-8|j\xc3\xb6@c.example|utf-8;j\xc3\xb6@c.example" },
	{ "ORCPT no type", "RCPT TO:<b@c.example> ORCPT=b@c.example", ERR,
	  V(RCPT), "501 5.5.4 Bad ORCPT parameter syntax" },
	{ "ORCPT empty type", "RCPT TO:<b@c.example> ORCPT=;b@c.example", ERR,
	  V(RCPT), "501 5.5.4 Bad ORCPT parameter syntax" },
	{ "ORCPT empty addr", "RCPT TO:<b@c.example> ORCPT=rfc822;", ERR,
	  V(RCPT), "501 5.5.4 Bad ORCPT parameter syntax" },
	{ "ORCPT bad xtext", "RCPT TO:<b@c.example> ORCPT=rfc822;a+ZZ", ERR,
	  V(RCPT), "501 5.5.4 Bad ORCPT parameter syntax" },
	{ "ORCPT bad type", "RCPT TO:<b@c.example> ORCPT=rfc.822;a", ERR,
	  V(RCPT), "501 5.5.4 Bad ORCPT parameter syntax" },
	{ "NOTIFY and ORCPT",
	  "RCPT TO:<b@c.example> NOTIFY=FAILURE ORCPT=rfc822;b@c.example", OK,
	  V(RCPT),
	  "path=b@c.example notify=F orcpt=rfc822|b@c.example|rfc822;b@c.example" },
	{ "NOTIFY duplicate",
	  "RCPT TO:<b@c.example> NOTIFY=FAILURE NOTIFY=DELAY", ERR, V(RCPT),
	  "501 5.5.4 Duplicate NOTIFY parameter" },
	{ "SIZE on RCPT", "RCPT TO:<b@c.example> SIZE=100", ERR, V(RCPT),
	  "555 5.5.4 Unsupported option: SIZE" },
	{ "SMTPUTF8 on RCPT", "RCPT TO:<b@c.example> SMTPUTF8", ERR, V(RCPT),
	  "555 5.5.4 Unsupported option: SMTPUTF8" },
	{ "RCPT junk", "RCPT TO:<b@c.example>junk", ERR, V(RCPT),
	  "501 5.5.4 Syntax: RCPT TO:<address>" },

	/* BDAT, RFC 3030 */
	{ "BDAT", "BDAT 1000", OK, V(BDAT), "bdat=1000" },
	{ "BDAT LAST", "BDAT 1000 LAST", OK, V(BDAT), "bdat=1000 last" },
	{ "bdat last lower", "bdat 0 last", OK, V(BDAT), "bdat=0 last" },
	{ "BDAT zero", "BDAT 0", OK, V(BDAT), "bdat=0" },
	{ "BDAT no size", "BDAT", ERR, V(BDAT), "501 5.5.4 Syntax: BDAT size [LAST]" },
	{ "BDAT LAST only", "BDAT LAST", ERR, V(BDAT),
	  "501 5.5.4 Syntax: BDAT size [LAST]" },
	{ "BDAT negative", "BDAT -1", ERR, V(BDAT),
	  "501 5.5.4 Syntax: BDAT size [LAST]" },
	{ "BDAT hex", "BDAT 0x10", ERR, V(BDAT),
	  "501 5.5.4 Syntax: BDAT size [LAST]" },
	{ "BDAT overflow", "BDAT 18446744073709551616", ERR, V(BDAT),
	  "501 5.5.4 Syntax: BDAT size [LAST]" },
	{ "BDAT max", "BDAT 18446744073709551615", OK, V(BDAT),
	  "bdat=18446744073709551615" },
	{ "BDAT bad marker", "BDAT 10 FIRST", ERR, V(BDAT),
	  "501 5.5.4 Syntax: BDAT size [LAST]" },
	{ "BDAT extra", "BDAT 10 LAST x", ERR, V(BDAT),
	  "501 5.5.4 Syntax: BDAT size [LAST]" },

	/* AUTH, RFC 4954 */
	{ "AUTH PLAIN", "AUTH PLAIN", OK, V(AUTH), "arg=PLAIN" },
	{ "auth plain lower", "auth plain", OK, V(AUTH), "arg=PLAIN" },
	{ "AUTH LOGIN", "AUTH LOGIN", OK, V(AUTH), "arg=LOGIN" },
	{ "AUTH PLAIN ir", "AUTH PLAIN AGFsaWNlAHNlY3JldA==", OK, V(AUTH),
	  "arg=PLAIN ir=AGFsaWNlAHNlY3JldA==" },
	{ "AUTH empty ir", "AUTH PLAIN =", OK, V(AUTH), "arg=PLAIN ir=" },
	{ "AUTH mech chars", "AUTH SCRAM-SHA-256", OK, V(AUTH),
	  "arg=SCRAM-SHA-256" },
	{ "AUTH underscore", "AUTH X_MECH", OK, V(AUTH), "arg=X_MECH" },
	{ "AUTH no mech", "AUTH", ERR, V(AUTH),
	  "501 5.5.4 Syntax: AUTH mechanism [initial-response]" },
	{ "AUTH mech too long", "AUTH ABCDEFGHIJKLMNOPQRSTU", ERR, V(AUTH),
	  "501 5.5.4 Syntax: AUTH mechanism [initial-response]" },
	{ "AUTH mech 20", "AUTH ABCDEFGHIJKLMNOPQRST", OK, V(AUTH),
	  "arg=ABCDEFGHIJKLMNOPQRST" },
	{ "AUTH bad mech", "AUTH PL.AIN", ERR, V(AUTH),
	  "501 5.5.4 Syntax: AUTH mechanism [initial-response]" },
	{ "AUTH three words", "AUTH PLAIN abc def", ERR, V(AUTH),
	  "501 5.5.4 Syntax: AUTH mechanism [initial-response]" },
	{ "AUTH bad base64", "AUTH PLAIN ab*c", ERR, V(AUTH),
	  "501 5.5.2 Error: invalid base64 in initial response" },
	{ "AUTH pad in middle", "AUTH PLAIN ab=c", ERR, V(AUTH),
	  "501 5.5.2 Error: invalid base64 in initial response" },
	{ "AUTH double =", "AUTH PLAIN ==", OK, V(AUTH), "arg=PLAIN ir===" },
};

static void
summarize(const struct smtp_command *cmd, char *out, size_t size)
{
	static const char *bodies[] = { "", "7BIT", "8BITMIME", "BINARYMIME" };
	static const char *rets[] = { "", "FULL", "HDRS" };
	size_t n = 0;

#define ADD(...) do {							\
	int r_ = snprintf(out + n, size - n, __VA_ARGS__);		\
	if (r_ > 0 && (size_t)r_ < size - n)				\
		n += (size_t)r_;					\
} while (0)
#define SEP()	(n > 0 ? " " : "")

	out[0] = '\0';
	if (cmd->arg != NULL)
		ADD("%sarg=%s", SEP(), cmd->arg);
	if (cmd->path != NULL)
		ADD("%spath=%s", SEP(), cmd->path);
	if (cmd->is_utf8_path)
		ADD("%sutf8path", SEP());
	if (cmd->has_size)
		ADD("%ssize=%llu", SEP(), (unsigned long long)cmd->size);
	if (cmd->body != SMTP_BODY_NONE)
		ADD("%sbody=%s", SEP(), bodies[cmd->body]);
	if (cmd->smtputf8)
		ADD("%ssmtputf8", SEP());
	if (cmd->ret != SMTP_RET_NONE)
		ADD("%sret=%s", SEP(), rets[cmd->ret]);
	if (cmd->envid != NULL)
		ADD("%senvid=%s/%s", SEP(), cmd->envid, cmd->envid_decoded);
	if (cmd->mail_auth != NULL)
		ADD("%sauth=%s", SEP(), cmd->mail_auth);
	if (cmd->notify != 0)
		ADD("%snotify=%s%s%s%s", SEP(),
		    cmd->notify & SMTP_NOTIFY_NEVER ? "N" : "",
		    cmd->notify & SMTP_NOTIFY_SUCCESS ? "S" : "",
		    cmd->notify & SMTP_NOTIFY_FAILURE ? "F" : "",
		    cmd->notify & SMTP_NOTIFY_DELAY ? "D" : "");
	if (cmd->orcpt != NULL)
		ADD("%sorcpt=%s|%s|%s", SEP(), cmd->orcpt_type, cmd->orcpt_addr,
		    cmd->orcpt);
	if (cmd->verb == SMTP_VERB_BDAT)
		ADD("%sbdat=%llu%s", SEP(), (unsigned long long)cmd->bdat_size,
		    cmd->bdat_last ? " last" : "");
	if (cmd->auth_initial != NULL)
		ADD("%sir=%s", SEP(), cmd->auth_initial);
#undef ADD
#undef SEP
}

/* run_case - parse line/len and compare with the expectation */
static void
run_case(struct smtp_command *cmd, const char *name, const char *line,
    size_t len, int want_rc, enum smtp_verb want_verb, const char *want)
{
	const char *error = NULL;
	char got[2048];
	int rc;

	rc = smtp_parse_command(line, len, cmd, &error);
	if (rc == 0)
		summarize(cmd, got, sizeof(got));
	else
		snprintf(got, sizeof(got), "%s",
		    error != NULL ? error : "(null)");
	if (rc != want_rc) {
		ok(0, "%s: return code", name);
		printf("#   got %d (%s), want %d (%s)\n", rc, got, want_rc,
		    want);
		return;
	}
	if (cmd->verb != want_verb) {
		ok(0, "%s: verb", name);
		printf("#   got %s, want %s\n", smtp_verb_name(cmd->verb),
		    smtp_verb_name(want_verb));
		return;
	}
	is_str(got, want, "%s", name);
}

/*
 * make_domain - a valid domain of exactly n octets: labels of 63 "d"
 * separated by dots, never ending in a dot.
 */
static void
make_domain(char *out, size_t n)
{
	size_t k;

	for (k = 0; k < n; k++)
		out[k] = k % 64 == 63 ? '.' : 'd';
	if (out[n - 1] == '.') {
		out[n - 2] = '.';
		out[n - 1] = 'd';
	}
	out[n] = '\0';
}

/* long addresses are easier to build than to write out */
static void
length_cases(struct smtp_command *cmd)
{
	char line[1024], want[1024], dom[300];

	make_domain(dom, 256);
	snprintf(line, sizeof(line), "RCPT TO:<u@%s>", dom);
	run_case(cmd, "RCPT domain 256", line, strlen(line), ERR,
	    SMTP_VERB_RCPT, "501 5.1.3 Domain of address too long");
	snprintf(line, sizeof(line), "MAIL FROM:<u@%s>", dom);
	run_case(cmd, "MAIL domain 256", line, strlen(line), ERR,
	    SMTP_VERB_MAIL, "501 5.1.7 Domain of address too long");

	/* 255 is the domain limit, but "<u@" ">" make the path 259 */
	make_domain(dom, 255);
	snprintf(line, sizeof(line), "RCPT TO:<u@%s>", dom);
	run_case(cmd, "RCPT domain 255 path 259", line, strlen(line), ERR,
	    SMTP_VERB_RCPT, "501 5.1.3 Path too long");

	/* the path limit is 256 octets with the brackets */
	make_domain(dom, 251);
	snprintf(line, sizeof(line), "RCPT TO:<a@%s>", dom);
	snprintf(want, sizeof(want), "path=a@%s", dom);
	run_case(cmd, "RCPT path 255", line, strlen(line), OK,
	    SMTP_VERB_RCPT, want);
	snprintf(line, sizeof(line), "RCPT TO:<ab@%s>", dom);
	snprintf(want, sizeof(want), "path=ab@%s", dom);
	run_case(cmd, "RCPT path 256", line, strlen(line), OK,
	    SMTP_VERB_RCPT, want);
	snprintf(line, sizeof(line), "RCPT TO:<abc@%s>", dom);
	run_case(cmd, "RCPT path 257", line, strlen(line), ERR,
	    SMTP_VERB_RCPT, "501 5.1.3 Path too long");
	snprintf(line, sizeof(line), "MAIL FROM:<abc@%s>", dom);
	run_case(cmd, "MAIL path 257", line, strlen(line), ERR,
	    SMTP_VERB_MAIL, "501 5.1.7 Path too long");
	/* a source route counts towards the path (RFC 5321 4.5.3.1.3) */
	snprintf(line, sizeof(line), "RCPT TO:<@r.example:a@%s>", dom);
	run_case(cmd, "RCPT path with route too long", line, strlen(line),
	    ERR, SMTP_VERB_RCPT, "501 5.1.3 Path too long");

	/* the quotes of a quoted local part count towards its 64 octets */
	snprintf(line, sizeof(line), "RCPT TO:<\"%.63s\"@x.example>", L65);
	run_case(cmd, "RCPT quoted local 65 with quotes", line, strlen(line),
	    ERR, SMTP_VERB_RCPT, "501 5.1.3 Local part of address too long");
	snprintf(line, sizeof(line), "RCPT TO:<\"%.62s\"@x.example>", L65);
	snprintf(want, sizeof(want), "path=\"%.62s\"@x.example", L65);
	run_case(cmd, "RCPT quoted local 64 with quotes", line, strlen(line),
	    OK, SMTP_VERB_RCPT, want);
}

/* commands with NUL bytes cannot be written as C strings */
static void
nul_cases(struct smtp_command *cmd)
{
	static const char nul1[] = "MAIL FROM:<a@b.example>\0 SIZE=1";
	static const char nul2[] = "RCPT TO:<a\0@b.example>";
	static const char nul3[] = "\0";
	static const char nul4[] = "QUIT\0";

	run_case(cmd, "NUL after path", nul1, sizeof(nul1) - 1, ERR,
	    SMTP_VERB_UNKNOWN, "500 5.5.2 Error: NUL character in command");
	run_case(cmd, "NUL in address", nul2, sizeof(nul2) - 1, ERR,
	    SMTP_VERB_UNKNOWN, "500 5.5.2 Error: NUL character in command");
	run_case(cmd, "NUL alone", nul3, sizeof(nul3) - 1, ERR,
	    SMTP_VERB_UNKNOWN, "500 5.5.2 Error: NUL character in command");
	run_case(cmd, "NUL after QUIT", nul4, sizeof(nul4) - 1, ERR,
	    SMTP_VERB_UNKNOWN, "500 5.5.2 Error: NUL character in command");
	/* the line need not be NUL-terminated: only len bytes count */
	run_case(cmd, "length shorter than string", "QUIT now", 4, OK,
	    SMTP_VERB_QUIT, "");
}

/* one struct for a whole session: old fields must not leak into new ones */
static void
reuse_cases(struct smtp_command *cmd)
{
	const char *error;
	char got[512];

	(void)smtp_parse_command("MAIL FROM:<a@b.example> SIZE=5 SMTPUTF8",
	    39, cmd, &error);
	run_case(cmd, "reuse: RCPT after MAIL", "RCPT TO:<c@d.example>", 21,
	    OK, SMTP_VERB_RCPT, "path=c@d.example");
	run_case(cmd, "reuse: DATA after RCPT", "DATA", 4, OK, SMTP_VERB_DATA,
	    "");
	smtp_parse_command("FOO", 3, cmd, &error);
	summarize(cmd, got, sizeof(got));
	is_str(got, "", "reuse: nothing left after an error");
}

static void
xtext_cases(void)
{
	static const struct {
		const char *name, *in;
		ssize_t want_len;
		const char *want;
	} xc[] = {
		{ "plain", "abc", 3, "abc" },
		{ "plus", "a+2Bb", 3, "a+b" },
		{ "equals", "+3D", 1, "=" },
		{ "space", "a+20b", 3, "a b" },
		{ "utf8 byte", "+C3+A9", 2, "\xc3\xa9" },
		{ "empty", "", -1, NULL },
		{ "bare plus", "+", -1, NULL },
		{ "one hex", "+4", -1, NULL },
		{ "bare =", "a=b", -1, NULL },
		{ "space", "a b", -1, NULL },
		{ "control", "+1F", -1, NULL },
		{ "DEL", "+7F", -1, NULL },
		{ "non-ASCII", "\xc3\xa9", -1, NULL },
	};
	char out[64];
	ssize_t n;
	size_t i;

	for (i = 0; i < sizeof(xc) / sizeof(xc[0]); i++) {
		n = smtp_xtext_decode(xc[i].in, strlen(xc[i].in), out);
		is_int(n, xc[i].want_len, "xtext %s: length", xc[i].name);
		if (n >= 0 && xc[i].want != NULL)
			is_str(out, xc[i].want, "xtext %s: value", xc[i].name);
	}
}

int
main(void)
{
	struct smtp_command cmd;
	size_t i;

	smtp_command_init(&cmd);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cmd, cases[i].name, cases[i].line,
		    strlen(cases[i].line), cases[i].want_rc, cases[i].want_verb,
		    cases[i].want);
	length_cases(&cmd);
	nul_cases(&cmd);
	reuse_cases(&cmd);
	xtext_cases();
	is_str(smtp_verb_name(SMTP_VERB_STARTTLS), "STARTTLS", "verb name");
	is_str(smtp_verb_name(SMTP_VERB_UNKNOWN), "UNKNOWN", "unknown name");
	smtp_command_deinit(&cmd);
	return done_testing();
}

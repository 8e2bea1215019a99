/*
 * test_policy_server.c - the policy listener without sockets: the
 * request parser (complete, partial, pipelined, every limit and kind of
 * garbage), the verdict -> action mapping, and whole answers from a
 * chain of relay and sender with the limits, as Postfix would ask, and
 * the outcome before RCPT kept for the other recipients of a message.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "config/config.h"
#include "filter.h"
#include "policy_server_answer.h"
#include "policy_server_request.h"
#include "tap.h"
#include "xmalloc.h"

#define REQ_HEAD	"request=smtpd_access_policy\n"

/* ---- parser ---- */

struct parse_case {
	const char *name;
	const char *input;
	int	 want_rc;
	const char *want_state;		/* protocol_state when rc is 1 */
	const char *want_sender;
	const char *want_rcpt;
	size_t	 want_count;
	size_t	 want_size;
	long	 want_used;		/* -1: the whole input */
	const char *want_error;		/* when rc is -1 */
};

static const struct parse_case parse_cases[] = {
	{ "full request", REQ_HEAD "protocol_state=RCPT\n"
	    "protocol_name=ESMTP\nclient_address=192.0.2.7\n"
	    "sender=a@example.test\nrecipient=b@example.net\n"
	    "recipient_count=0\nsize=1234\n\n",
	    1, "RCPT", "a@example.test", "b@example.net", 0, 1234, -1, NULL },
	{ "no empty line yet", REQ_HEAD "protocol_state=RCPT\n",
	    0, NULL, NULL, NULL, 0, 0, 0, NULL },
	{ "half a line", REQ_HEAD "protocol_sta",
	    0, NULL, NULL, NULL, 0, 0, 0, NULL },
	{ "empty input", "", 0, NULL, NULL, NULL, 0, 0, 0, NULL },
	{ "CRLF lines", "request=smtpd_access_policy\r\n"
	    "protocol_state=DATA\r\nrecipient_count=3\r\n\r\n",
	    1, "DATA", "", "", 3, 0, -1, NULL },
	{ "pipelined: first only", REQ_HEAD "protocol_state=MAIL\n\n"
	    REQ_HEAD "protocol_state=RCPT\n\n",
	    1, "MAIL", "", "", 0, 0,
	    (long)sizeof(REQ_HEAD "protocol_state=MAIL\n\n") - 1, NULL },
	{ "unknown attributes ignored", REQ_HEAD "compatibility_level=3.7\n"
	    "mail_version=3.7.11\nprotocol_state=RCPT\n\n",
	    1, "RCPT", "", "", 0, 0, -1, NULL },
	{ "last of a repeated attribute", REQ_HEAD "sender=x@a.test\n"
	    "sender=y@b.test\n\n",
	    1, "", "y@b.test", "", 0, 0, -1, NULL },
	{ "null sender", REQ_HEAD "sender=\nprotocol_state=RCPT\n\n",
	    1, "RCPT", "", "", 0, 0, -1, NULL },
	{ "value with '='", REQ_HEAD "sender=a=b@example.test\n\n",
	    1, "", "a=b@example.test", "", 0, 0, -1, NULL },
	{ "line without =", REQ_HEAD "protocol_state\n\n",
	    -1, NULL, NULL, NULL, 0, 0, 0, "attribute without '='" },
	{ "empty name", REQ_HEAD "=RCPT\n\n",
	    -1, NULL, NULL, NULL, 0, 0, 0, "empty attribute name" },
	{ "bad count", REQ_HEAD "recipient_count=many\n\n",
	    -1, NULL, NULL, NULL, 0, 0, 0, "bad number in request" },
	{ "negative size", REQ_HEAD "size=-1\n\n",
	    -1, NULL, NULL, NULL, 0, 0, 0, "bad number in request" },
	{ "huge size", REQ_HEAD "size=99999999999999999999999\n\n",
	    -1, NULL, NULL, NULL, 0, 0, 0, "bad number in request" },
	{ "no request attribute", "protocol_state=RCPT\n\n",
	    -1, NULL, NULL, NULL, 0, 0, 0, "request attribute missing" },
	{ "other request type", "request=junk\n\n",
	    -1, NULL, NULL, NULL, 0, 0, 0, "unknown request type" },
	{ "only an empty line", "\n",
	    -1, NULL, NULL, NULL, 0, 0, 0, "request attribute missing" },
	{ "HTTP instead", "GET / HTTP/1.0\r\n\r\n",
	    -1, NULL, NULL, NULL, 0, 0, 0, "attribute without '='" },
};

static void
check_parse(const struct parse_case *c, const char *input, size_t len)
{
	struct policy_server_request r;
	const char *error = NULL;
	size_t used = 0;
	int rc;

	rc = policy_server_request_parse(input, len, &r, &used, &error);
	is_int(rc, c->want_rc, "parse: %s: result", c->name);
	if (rc == 1) {
		is_str(r.req.protocol_state, c->want_state,
		    "parse: %s: protocol_state", c->name);
		is_str(r.req.sender, c->want_sender, "parse: %s: sender",
		    c->name);
		is_str(r.req.recipient, c->want_rcpt, "parse: %s: recipient",
		    c->name);
		is_int(r.req.recipient_count, c->want_count,
		    "parse: %s: recipient_count", c->name);
		is_int(r.req.size, c->want_size, "parse: %s: size", c->name);
		is_int(used, c->want_used == -1 ? (long)len : c->want_used,
		    "parse: %s: bytes used", c->name);
		ok(r.req.helo_name != NULL && r.req.sasl_username != NULL,
		    "parse: %s: absent attributes are \"\"", c->name);
		policy_server_request_deinit(&r);
	}
	if (rc == -1)
		is_str(error, c->want_error, "parse: %s: error", c->name);
}

/* repeat - text: head, then n copies of line, then tail (owned) */
static char *
repeat(const char *head, const char *line, size_t n, const char *tail)
{
	struct buf b;
	char *s;
	size_t i;

	buf_init(&b, 0);
	buf_append_str(&b, head);
	for (i = 0; i < n; i++)
		buf_append_str(&b, line);
	buf_append_str(&b, tail);
	s = buf_steal(&b);
	buf_deinit(&b);
	return s;
}

static void
test_parse(void)
{
	static const char nul_req[] = REQ_HEAD "sender=a\0b\n\n";
	struct parse_case c;
	char *in, *want, line[320];
	size_t i;

	for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++)
		check_parse(&parse_cases[i], parse_cases[i].input,
		    strlen(parse_cases[i].input));

	/* the cases that need built input */
	memset(&c, 0, sizeof(c));
	c.name = "NUL byte";
	c.want_rc = -1;
	c.want_error = "NUL byte in request";
	check_parse(&c, nul_req, sizeof(nul_req) - 1);

	c.name = "line over the limit, no newline yet";
	c.want_error = "attribute line too long";
	in = repeat("request=smtpd_access_policy\nsender=", "x",
	    POLICY_SERVER_LINE_MAX, "");
	check_parse(&c, in, strlen(in));
	free(in);

	c.name = "line at the limit";
	c.want_rc = 1;
	c.want_state = "";
	c.want_rcpt = "";
	c.want_used = -1;
	want = repeat("", "x", POLICY_SERVER_LINE_MAX - strlen("sender="), "");
	c.want_sender = want;
	in = repeat(REQ_HEAD "sender=", want, 1, "\n\n");
	check_parse(&c, in, strlen(in));
	free(in);
	free(want);

	memset(&c, 0, sizeof(c));
	c.name = "too many attributes";
	c.want_rc = -1;
	c.want_error = "too many attributes";
	in = repeat(REQ_HEAD, "x=y\n", POLICY_SERVER_ATTR_MAX, "\n");
	check_parse(&c, in, strlen(in));
	free(in);

	c.name = "as many attributes as allowed";
	c.want_rc = 1;
	c.want_state = c.want_sender = c.want_rcpt = "";
	c.want_used = -1;
	in = repeat(REQ_HEAD, "x=y\n", POLICY_SERVER_ATTR_MAX - 1, "\n");
	check_parse(&c, in, strlen(in));
	free(in);

	memset(&c, 0, sizeof(c));
	c.name = "request over the limit";
	c.want_rc = -1;
	c.want_error = "request too long";
	memset(line, 'x', sizeof(line));
	memcpy(line, "x=", 2);
	line[sizeof(line) - 2] = '\n';
	line[sizeof(line) - 1] = '\0';
	in = repeat(REQ_HEAD, line,
	    POLICY_SERVER_REQUEST_MAX / (sizeof(line) - 1) + 1, "");
	check_parse(&c, in, strlen(in));
	free(in);
}

/* ---- verdict -> action ---- */

static const struct {
	const char *name;
	enum filter_verdict verdict;
	const char *reply, *filter, *hname, *hvalue;
	const char *want;
} action_cases[] = {
	{ "continue", FILTER_CONTINUE, "", "relay", NULL, NULL, "DUNNO" },
	{ "accept is no permit", FILTER_ACCEPT, "", "x", NULL, NULL,
	    "DUNNO" },
	{ "reject", FILTER_REJECT,
	    "554 5.7.1 <x@example.com>: Relay access denied", "relay", NULL,
	    NULL, "554 5.7.1 <x@example.com>: Relay access denied" },
	{ "tempfail", FILTER_TEMPFAIL, "451 4.7.24 SPF temporary error: x",
	    "spf", NULL, NULL, "451 4.7.24 SPF temporary error: x" },
	{ "disconnect", FILTER_DISCONNECT, "421 4.7.0 go away", "x", NULL,
	    NULL, "421 4.7.0 go away" },
	{ "hold with text", FILTER_HOLD, "550 5.7.1 From: not owned",
	    "sender", NULL, NULL, "HOLD From: not owned" },
	{ "hold without text", FILTER_HOLD, "", "spf", NULL, NULL,
	    "HOLD held by Postern filter spf" },
	{ "discard", FILTER_DISCARD, "", "regex", NULL, NULL,
	    "DISCARD discarded by Postern filter regex" },
	{ "prepend", FILTER_CONTINUE, "", NULL, "Received-SPF",
	    "pass (example.test: domain of a@example.test designates "
	    "192.0.2.7 as permitted sender)",
	    "PREPEND Received-SPF: pass (example.test: domain of "
	    "a@example.test designates 192.0.2.7 as permitted sender)" },
	{ "prepend unfolds", FILTER_CONTINUE, "", NULL, "Received-SPF",
	    "fail (reason)\r\n\treceiver=relay.test; client-ip=192.0.2.7",
	    "PREPEND Received-SPF: fail (reason) receiver=relay.test; "
	    "client-ip=192.0.2.7" },
	{ "no line break gets through", FILTER_REJECT,
	    "550 5.7.1 bad\nname=value", "x", NULL, NULL,
	    "550 5.7.1 bad name=value" },
	{ "control and 8-bit bytes", FILTER_CONTINUE, "", NULL, "X-Test",
	    "a\001b\xc3\xa9", "PREPEND X-Test: a?b??" },
};

static void
test_actions(void)
{
	size_t i;
	char *got;

	for (i = 0; i < sizeof(action_cases) / sizeof(action_cases[0]);
	    i++) {
		got = policy_server_action(action_cases[i].verdict,
		    action_cases[i].reply, action_cases[i].filter,
		    action_cases[i].hname, action_cases[i].hvalue);
		is_str(got, action_cases[i].want, "action: %s",
		    action_cases[i].name);
		free(got);
	}
}

/* ---- whole answers: limits, relay, sender ---- */

static const char conf_text[] =
    "myhostname = relay.example.test\n"
    "mydomain = example.test\n"
    "mydestination = example.test\n"
    "relay_domains = partner.test\n"
    "mynetworks = 10.0.0.0/8 [2001:db8::]/32\n"
    "queue_directory = /tmp\n"
    "smtpd_sender_login_maps = inline:{ alice@example.test=alice, "
    "@shared.test=alice }\n"
    "policy_listen_filters = relay, sender\n"
    "message_size_limit = 10000\n"
    "smtpd_recipient_limit = 5\n";

#define BASE	REQ_HEAD "protocol_name=ESMTP\nhelo_name=client.test\n" \
		"client_name=unknown\ninstance=1.2.3\n"

static const struct {
	const char *name;
	const char *request;
	const char *want;
} answer_cases[] = {
	{ "foreign recipient from outside", BASE "protocol_state=RCPT\n"
	    "client_address=192.0.2.7\nsender=a@outside.test\n"
	    "recipient=x@example.com\n\n",
	    "554 5.7.1 <x@example.com>: Relay access denied" },
	{ "foreign recipient from mynetworks", BASE "protocol_state=RCPT\n"
	    "client_address=10.1.2.3\nsender=a@outside.test\n"
	    "recipient=x@example.com\n\n", "DUNNO" },
	{ "foreign recipient from mynetworks (IPv6)", BASE
	    "protocol_state=RCPT\nclient_address=2001:db8::25\n"
	    "sender=a@outside.test\nrecipient=x@example.com\n\n", "DUNNO" },
	{ "foreign recipient, authenticated", BASE "protocol_state=RCPT\n"
	    "client_address=192.0.2.7\nsasl_method=PLAIN\n"
	    "sasl_username=alice\nsender=alice@example.test\n"
	    "recipient=x@example.com\n\n",
	    "PREPEND Authentication-Results: relay.example.test; auth=pass "
	    "smtp.mailfrom=alice@example.test" },
	{ "our recipient from outside", BASE "protocol_state=RCPT\n"
	    "client_address=192.0.2.7\nsender=a@outside.test\n"
	    "recipient=bob@example.test\n\n", "DUNNO" },
	{ "relay_domains recipient from outside", BASE
	    "protocol_state=RCPT\nclient_address=192.0.2.7\n"
	    "sender=a@outside.test\nrecipient=bob@partner.test\n\n", "DUNNO" },
	{ "percent hack from outside", BASE "protocol_state=RCPT\n"
	    "client_address=192.0.2.7\nsender=\n"
	    "recipient=x%other.test@example.test\n\n",
	    "554 5.7.1 <x%other.test@example.test>: Relay access denied" },
	{ "garbage client address", BASE "protocol_state=RCPT\n"
	    "client_address=not-an-address\nsender=a@outside.test\n"
	    "recipient=x@example.com\n\n",
	    "554 5.7.1 <x@example.com>: Relay access denied" },
	{ "sender not owned by the login", BASE "protocol_state=RCPT\n"
	    "client_address=10.1.2.3\nsasl_method=PLAIN\n"
	    "sasl_username=alice\nsender=bob@example.test\n"
	    "recipient=x@example.com\n\n",
	    "553 5.7.1 <bob@example.test>: Sender address rejected: not owned "
	    "by user alice" },
	{ "sender owned through @domain", BASE "protocol_state=RCPT\n"
	    "client_address=10.1.2.3\nsasl_username=alice\n"
	    "sender=anyone@shared.test\nrecipient=x@example.com\n\n",
	    "PREPEND Authentication-Results: relay.example.test; auth=pass "
	    "smtp.mailfrom=anyone@shared.test" },
	{ "sender check at MAIL", BASE "protocol_state=MAIL\n"
	    "client_address=10.1.2.3\nsasl_username=alice\n"
	    "sender=bob@example.test\n\n",
	    "553 5.7.1 <bob@example.test>: Sender address rejected: not owned "
	    "by user alice" },
	{ "sender check without login", BASE "protocol_state=RCPT\n"
	    "client_address=10.1.2.3\nsender=bob@example.test\n"
	    "recipient=x@example.com\n\n", "DUNNO" },
	{ "size over the limit at END-OF-MESSAGE", BASE
	    "protocol_state=END-OF-MESSAGE\nclient_address=10.1.2.3\n"
	    "sender=a@example.test\nrecipient_count=1\nsize=10001\n\n",
	    "552 5.3.4 Message size exceeds fixed limit" },
	{ "size at the limit", BASE "protocol_state=END-OF-MESSAGE\n"
	    "client_address=10.1.2.3\nsender=a@example.test\n"
	    "recipient_count=1\nsize=10000\n\n", "DUNNO" },
	{ "SIZE= over the limit at RCPT", BASE "protocol_state=RCPT\n"
	    "client_address=10.1.2.3\nsender=a@example.test\n"
	    "recipient=x@example.com\nsize=20000\n\n",
	    "552 5.3.4 Message size exceeds fixed limit" },
	{ "VRFY is not judged", BASE "protocol_state=VRFY\n"
	    "client_address=192.0.2.7\nrecipient=x@example.com\nsize=99999\n\n",
	    "DUNNO" },
	{ "CONNECT from outside", BASE "protocol_state=CONNECT\n"
	    "client_address=192.0.2.7\n\n", "DUNNO" },
	{ "RCPT without a recipient", BASE "protocol_state=RCPT\n"
	    "client_address=192.0.2.7\nsender=a@outside.test\n\n", "DUNNO" },
};

/*
 * smtpd_recipient_limit (5 here): the caller counts the recipients it let
 * through; Postfix's recipient_count is 0 at RCPT and not used
 */
#define RCPT_OK		BASE "protocol_state=RCPT\nclient_address=10.1.2.3\n" \
			"sender=a@example.test\nrecipient=x@example.com\n" \
			"recipient_count=0\n\n"
#define TOO_MANY	"452 4.5.3 Error: too many recipients"

static const struct {
	const char *name;
	const char *request;
	size_t	 accepted;
	const char *want;
} limit_cases[] = {
	{ "first recipient", RCPT_OK, 0, "DUNNO" },
	{ "5th recipient (the limit)", RCPT_OK, 4, "DUNNO" },
	{ "6th recipient", RCPT_OK, 5, TOO_MANY },
	{ "101st recipient", RCPT_OK, 100, TOO_MANY },
	{ "6th, refused by relay anyway: limit first", BASE
	    "protocol_state=RCPT\nclient_address=192.0.2.7\n"
	    "sender=a@outside.test\nrecipient=x@example.com\n\n", 5,
	    TOO_MANY },
	{ "RCPT without a recipient", BASE "protocol_state=RCPT\n"
	    "client_address=10.1.2.3\nsender=a@example.test\n\n", 5,
	    "DUNNO" },
	{ "not applied at DATA", BASE "protocol_state=DATA\n"
	    "client_address=10.1.2.3\nsender=a@example.test\n"
	    "recipient_count=6\n\n", 6, "DUNNO" },
	{ "not applied at END-OF-MESSAGE", BASE
	    "protocol_state=END-OF-MESSAGE\nclient_address=10.1.2.3\n"
	    "sender=a@example.test\nrecipient_count=6\nsize=10\n\n", 6,
	    "DUNNO" },
	{ "not applied at MAIL", BASE "protocol_state=MAIL\n"
	    "client_address=10.1.2.3\nsender=a@example.test\n\n", 9,
	    "DUNNO" },
};

/* which answers count as a recipient let through */
static const struct {
	const char *name;
	const char *state;
	const char *recipient;
	enum filter_verdict verdict;
	bool	 want;
} takes_cases[] = {
	{ "RCPT, DUNNO", "RCPT", "x@a.test", FILTER_CONTINUE, true },
	{ "rcpt (case), DUNNO", "rcpt", "x@a.test", FILTER_CONTINUE, true },
	{ "RCPT, HOLD", "RCPT", "x@a.test", FILTER_HOLD, true },
	{ "RCPT, DISCARD", "RCPT", "x@a.test", FILTER_DISCARD, true },
	{ "RCPT, reject", "RCPT", "x@a.test", FILTER_REJECT, false },
	{ "RCPT, tempfail", "RCPT", "x@a.test", FILTER_TEMPFAIL, false },
	{ "RCPT, disconnect", "RCPT", "x@a.test", FILTER_DISCONNECT, false },
	{ "RCPT without recipient", "RCPT", "", FILTER_CONTINUE, false },
	{ "DATA", "DATA", "", FILTER_CONTINUE, false },
	{ "MAIL", "MAIL", "x@a.test", FILTER_CONTINUE, false },
};

/* authenticated mail gets sender's Authentication-Results at eom */
#define AUTH_RCPT	BASE "protocol_state=RCPT\nclient_address=10.1.2.3\n" \
			"sasl_username=alice\nsender=alice@example.test\n" \
			"recipient=x@example.com\n\n"

static struct config *
load_conf(void)
{
	char path[] = "/tmp/test_policy_server.XXXXXX";
	const char *err = NULL;
	struct config *cfg;
	FILE *f;
	int fd;

	if ((fd = mkstemp(path)) == -1 || (f = fdopen(fd, "w")) == NULL) {
		perror("mkstemp");
		exit(1);
	}
	fputs(conf_text, f);
	fclose(f);
	cfg = config_load(path, &err);
	unlink(path);
	if (cfg == NULL)
		printf("# config: %s\n", err);
	return cfg;
}

/*
 * answer_msg - the action for request text (owned), or NULL, with the
 * kept message outcome msg (may be NULL); *reused_r (may be NULL): the
 * outcome before RCPT came from msg
 */
static char *
answer_msg(const struct policy_chain *pc, const struct config *cfg,
    const char *text, bool want_prepend, size_t accepted, bool *prepended_r,
    struct policy_server_msg *msg, bool *reused_r)
{
	struct policy_server_request r;
	struct policy_server_result res;
	const char *error = NULL;
	size_t used;
	char *action;

	if (policy_server_request_parse(text, strlen(text), &r, &used,
	    &error) != 1) {
		printf("# request does not parse: %s\n", error);
		return NULL;
	}
	policy_server_answer(pc, cfg, &r.req, want_prepend, accepted, msg,
	    &res);
	action = res.action;
	res.action = NULL;
	if (prepended_r != NULL)
		*prepended_r = res.prepended;
	if (reused_r != NULL)
		*reused_r = res.reused;
	policy_server_result_deinit(&res);
	policy_server_request_deinit(&r);
	return action;
}

/* answer - answer_msg without a kept message outcome */
static char *
answer(const struct policy_chain *pc, const struct config *cfg,
    const char *text, bool want_prepend, size_t accepted, bool *prepended_r)
{
	return answer_msg(pc, cfg, text, want_prepend, accepted, prepended_r,
	    NULL, NULL);
}

static void
test_answers(void)
{
	struct config *cfg = load_conf();
	struct policy_chain *pc;
	struct policy_request rq;
	char *err = NULL, *got;
	bool prepended = false;
	size_t i;

	ok(cfg != NULL, "answers: configuration loads");
	if (cfg == NULL)
		return;
	pc = policy_chain_new(cfg, &err);
	ok(pc != NULL, "answers: chain of relay, sender builds");
	if (pc == NULL) {
		printf("# %s\n", err);
		free(err);
		config_unref(&cfg);
		return;
	}
	for (i = 0; i < sizeof(answer_cases) / sizeof(answer_cases[0]);
	    i++) {
		got = answer(pc, cfg, answer_cases[i].request, true, 0,
		    NULL);
		is_str(got, answer_cases[i].want, "answer: %s",
		    answer_cases[i].name);
		free(got);
	}

	/* the only header an eom adds becomes PREPEND, once per message */
	for (i = 0; i < sizeof(limit_cases) / sizeof(limit_cases[0]); i++) {
		got = answer(pc, cfg, limit_cases[i].request, true,
		    limit_cases[i].accepted, NULL);
		is_str(got, limit_cases[i].want, "recipient limit: %s",
		    limit_cases[i].name);
		free(got);
	}

	got = answer(pc, cfg, AUTH_RCPT, true, 0, &prepended);
	ok(got != NULL && strncmp(got, "PREPEND Authentication-Results: "
	    "relay.example.test; auth=pass smtp.mailfrom=alice@example.test",
	    83) == 0 && prepended, "answer: header as PREPEND");
	if (got != NULL && !prepended)
		printf("#   got \"%s\"\n", got);
	free(got);
	got = answer(pc, cfg, AUTH_RCPT, false, 0, &prepended);
	is_str(got, "DUNNO", "answer: no second PREPEND for the message");
	ok(!prepended, "answer: not marked prepended");
	free(got);

	/* neither relay nor sender may block: no hand-off to the pool */
	memset(&rq, 0, sizeof(rq));
	rq.protocol_state = "RCPT";
	rq.helo_name = rq.recipient = "x";
	ok(!policy_chain_may_block(pc, cfg, &rq, NULL),
	    "answer: relay, sender inline");
	policy_chain_free(&pc);
	ok(pc == NULL, "answer: chain freed");
	config_unref(&cfg);
}

static void
test_takes_rcpt(void)
{
	struct policy_request rq;
	struct policy_server_result res;
	size_t i;

	for (i = 0; i < sizeof(takes_cases) / sizeof(takes_cases[0]); i++) {
		memset(&rq, 0, sizeof(rq));
		memset(&res, 0, sizeof(res));
		rq.protocol_state = takes_cases[i].state;
		rq.recipient = takes_cases[i].recipient;
		res.verdict = takes_cases[i].verdict;
		is_int(policy_server_result_takes_rcpt(&rq, &res),
		    takes_cases[i].want, "counted: %s", takes_cases[i].name);
	}
}

/* ---- the outcome before RCPT, kept per message (instance) ---- */

/* a RCPT request of message 7.7.7 from outside, without a login */
#define MSG_ATTRS	"protocol_name=ESMTP\nclient_name=mx.outside.test\n" \
			"recipient_count=0\nsize=100\n"
#define MSG_REQ(state, inst, sender, addr, helo, user, rcpt)	\
	REQ_HEAD MSG_ATTRS "protocol_state=" state "\ninstance=" inst	\
	"\nsender=" sender "\nclient_address=" addr "\nhelo_name=" helo	\
	"\nsasl_username=" user "\nrecipient=" rcpt "\n\n"
#define KEY_BASE	MSG_REQ("RCPT", "7.7.7", "a@outside.test", \
			"192.0.2.7", "mx.outside.test", "", "x@example.com")

/* which requests share the key of KEY_BASE (NULL: no key at all) */
static const struct {
	const char *name;
	const char *request;
	int	 want;			/* 1 same, 0 other, -1 none */
} key_cases[] = {
	{ "same request", KEY_BASE, 1 },
	{ "another recipient", MSG_REQ("RCPT", "7.7.7", "a@outside.test",
	    "192.0.2.7", "mx.outside.test", "", "y@example.com"), 1 },
	{ "DATA of the message", MSG_REQ("DATA", "7.7.7", "a@outside.test",
	    "192.0.2.7", "mx.outside.test", "", ""), 1 },
	{ "MAIL of the message", MSG_REQ("MAIL", "7.7.7", "a@outside.test",
	    "192.0.2.7", "mx.outside.test", "", ""), 1 },
	{ "another instance", MSG_REQ("RCPT", "7.7.8", "a@outside.test",
	    "192.0.2.7", "mx.outside.test", "", "x@example.com"), 0 },
	{ "another sender", MSG_REQ("RCPT", "7.7.7", "b@outside.test",
	    "192.0.2.7", "mx.outside.test", "", "x@example.com"), 0 },
	{ "null sender", MSG_REQ("RCPT", "7.7.7", "", "192.0.2.7",
	    "mx.outside.test", "", "x@example.com"), 0 },
	{ "another client", MSG_REQ("RCPT", "7.7.7", "a@outside.test",
	    "192.0.2.8", "mx.outside.test", "", "x@example.com"), 0 },
	{ "another helo", MSG_REQ("RCPT", "7.7.7", "a@outside.test",
	    "192.0.2.7", "other.test", "", "x@example.com"), 0 },
	{ "a login", MSG_REQ("RCPT", "7.7.7", "a@outside.test",
	    "192.0.2.7", "mx.outside.test", "alice", "x@example.com"), 0 },
	{ "no instance", MSG_REQ("RCPT", "", "a@outside.test",
	    "192.0.2.7", "mx.outside.test", "", "x@example.com"), -1 },
	{ "CONNECT has none", MSG_REQ("CONNECT", "7.7.7", "a@outside.test",
	    "192.0.2.7", "mx.outside.test", "", ""), -1 },
	{ "VRFY has none", MSG_REQ("VRFY", "7.7.7", "a@outside.test",
	    "192.0.2.7", "mx.outside.test", "", "x@example.com"), -1 },
};

/* key_of - policy_server_msg_key of request text (owned), or NULL */
static char *
key_of(const char *text, bool *parsed_r)
{
	struct policy_server_request r;
	const char *error = NULL;
	size_t used;
	char *key;

	*parsed_r = policy_server_request_parse(text, strlen(text), &r, &used,
	    &error) == 1;
	if (!*parsed_r) {
		printf("# request does not parse: %s\n", error);
		return NULL;
	}
	key = policy_server_msg_key(&r.req);
	policy_server_request_deinit(&r);
	return key;
}

static void
test_msg_keys(void)
{
	char *base, *key;
	bool parsed;
	int got;
	size_t i;

	base = key_of(KEY_BASE, &parsed);
	ok(base != NULL, "msg key: a RCPT request with an instance has one");
	for (i = 0; i < sizeof(key_cases) / sizeof(key_cases[0]); i++) {
		key = key_of(key_cases[i].request, &parsed);
		got = key == NULL ? -1 : base != NULL &&
		    strcmp(key, base) == 0;
		ok(parsed, "msg key: %s: parses", key_cases[i].name);
		is_int(got, key_cases[i].want, "msg key: %s",
		    key_cases[i].name);
		free(key);
	}
	free(base);
}

/* sasl_username alice sending as herself, from outside (relayed: login) */
#define ALICE(state, inst, rcpt) MSG_REQ(state, inst, "alice@example.test", \
			"192.0.2.7", "mx.outside.test", "alice", rcpt)
#define ALICE_AR	"PREPEND Authentication-Results: relay.example.test; " \
			"auth=pass smtp.mailfrom=alice@example.test"
#define BOB_AS_ALICE(inst, rcpt) MSG_REQ("RCPT", inst, "bob@example.test", \
			"10.1.2.3", "mx.outside.test", "alice", rcpt)
#define NOT_OWNED	"553 5.7.1 <bob@example.test>: Sender address " \
			"rejected: not owned by user alice"
#define OUTSIDE(inst, rcpt) MSG_REQ("RCPT", inst, "a@outside.test", \
			"192.0.2.7", "mx.outside.test", "", rcpt)

/*
 * requests in order on one connection, sharing one kept outcome: the
 * stages before RCPT (sender here, SPF in 25_policy_listener.t) run once
 * per message, the RCPT stage (relay) for every recipient
 */
static const struct {
	const char *name;
	const char *request;
	bool	 want_prepend;
	const char *want;
	bool	 want_reused;
} msg_steps[] = {
	{ "1st recipient: run", ALICE("RCPT", "m.1", "x@example.com"), true,
	    ALICE_AR, false },
	{ "2nd recipient: reused", ALICE("RCPT", "m.1", "y@example.com"),
	    false, "DUNNO", true },
	{ "3rd recipient: the header replayed", ALICE("RCPT", "m.1",
	    "z@example.com"), true, ALICE_AR, true },
	{ "DATA: reused", ALICE("DATA", "m.1", ""), false, "DUNNO", true },
	{ "next message: run", ALICE("RCPT", "m.2", "x@example.com"), true,
	    ALICE_AR, false },
	{ "MAIL state: run", ALICE("MAIL", "m.3", ""), true, "DUNNO", false },
	{ "RCPT after MAIL: its eom replayed", ALICE("RCPT", "m.3",
	    "x@example.com"), true, ALICE_AR, true },
	{ "sender refused: run", BOB_AS_ALICE("m.4", "x@example.com"), true,
	    NOT_OWNED, false },
	{ "sender refused again: replayed", BOB_AS_ALICE("m.4",
	    "y@example.com"), true, NOT_OWNED, true },
	{ "outside, our domain: run", OUTSIDE("m.5", "bob@example.test"),
	    true, "DUNNO", false },
	{ "outside, foreign: relay still judges", OUTSIDE("m.5",
	    "x@example.com"), true,
	    "554 5.7.1 <x@example.com>: Relay access denied", true },
	{ "outside, our domain again", OUTSIDE("m.5", "carol@example.test"),
	    true, "DUNNO", true },
	{ "same instance, other sender: run", MSG_REQ("RCPT", "m.5",
	    "b@outside.test", "192.0.2.7", "mx.outside.test", "",
	    "bob@example.test"), true, "DUNNO", false },
	{ "CONNECT: never kept", MSG_REQ("CONNECT", "m.5", "b@outside.test",
	    "192.0.2.7", "mx.outside.test", "", ""), true, "DUNNO", false },
	{ "after CONNECT the message is still kept", MSG_REQ("RCPT", "m.5",
	    "b@outside.test", "192.0.2.7", "mx.outside.test", "",
	    "dave@example.test"), true, "DUNNO", true },
	{ "no instance: run", OUTSIDE("", "bob@example.test"), true, "DUNNO",
	    false },
	{ "no instance: run again", OUTSIDE("", "bob@example.test"), true,
	    "DUNNO", false },
};

static void
test_msg_reuse(void)
{
	struct config *cfg = load_conf(), *cfg2 = load_conf();
	struct policy_server_msg msg;
	struct policy_server_request r;
	struct policy_chain *pc;
	const char *error = NULL;
	char *err = NULL, *got;
	bool reused;
	size_t i, used;
	uintptr_t old_cfg = 0;

	if (cfg == NULL || cfg2 == NULL || (pc = policy_chain_new(cfg,
	    &err)) == NULL) {
		ok(0, "msg reuse: set up: %s", err != NULL ? err : "config");
		free(err);
		config_unref(&cfg);
		config_unref(&cfg2);
		return;
	}
	memset(&msg, 0, sizeof(msg));
	for (i = 0; i < sizeof(msg_steps) / sizeof(msg_steps[0]); i++) {
		reused = !msg_steps[i].want_reused;
		got = answer_msg(pc, cfg, msg_steps[i].request,
		    msg_steps[i].want_prepend, 0, NULL, &msg, &reused);
		is_str(got, msg_steps[i].want, "msg reuse: %s",
		    msg_steps[i].name);
		is_int(reused, msg_steps[i].want_reused,
		    "msg reuse: %s: reused", msg_steps[i].name);
		free(got);
	}
	ok(msg.key != NULL && msg.cfg_generation == cfg->generation,
	    "msg reuse: the last message is kept");

	/* a configuration reloaded: the kept outcome does not apply */
	if (policy_server_request_parse(ALICE("RCPT", "m.9", "x@example.com"),
	    strlen(ALICE("RCPT", "m.9", "x@example.com")), &r, &used,
	    &error) == 1) {
		free(answer_msg(pc, cfg, ALICE("RCPT", "m.9",
		    "x@example.com"), true, 0, NULL, &msg, NULL));
		ok(policy_server_msg_matches(&msg, cfg, &r.req),
		    "msg reuse: matches under its configuration");
		old_cfg = (uintptr_t)cfg;
		ok(!policy_server_msg_matches(&msg, cfg2, &r.req),
		    "msg reuse: not under another configuration");
		/*
		 * nor under one loaded after a reload freed another, maybe
		 * at the same address
		 */
		config_unref(&cfg);
		cfg = load_conf();
		ok(cfg != NULL && !policy_server_msg_matches(&msg, cfg,
		    &r.req), "msg reuse: not under a configuration loaded "
		    "after its own was freed (%s address)",
		    (uintptr_t)cfg == old_cfg ? "the same" : "another");
		policy_server_request_deinit(&r);
	} else
		ok(0, "msg reuse: request parses: %s", error);
	policy_server_msg_deinit(&msg);
	ok(msg.key == NULL && msg.header_name == NULL,
	    "msg reuse: deinit empties");
	policy_server_msg_deinit(&msg);	/* twice is fine */
	policy_chain_free(&pc);
	config_unref(&cfg);
	config_unref(&cfg2);
}

int
main(void)
{
	test_parse();
	test_actions();
	test_answers();
	test_takes_rcpt();
	test_msg_keys();
	test_msg_reuse();
	return done_testing();
}

/*
 * test_policy_proto.c - the policy delegation protocol without I/O:
 * request encoding (attribute set, order, cleaning of control
 * characters), answer parsing (complete, partial, malformed, oversized)
 * and the meaning of every access(5) action.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "policy_proto.h"
#include "tap.h"
#include "xmalloc.h"

/* ---- request encoding ---- */

static const char full_rcpt[] =
    "request=smtpd_access_policy\n"
    "protocol_state=RCPT\n"
    "protocol_name=ESMTP\n"
    "client_address=127.0.0.1\n"
    "client_name=localhost\n"
    "client_port=43588\n"
    "reverse_client_name=localhost\n"
    "server_address=\n"
    "server_port=\n"
    "helo_name=client.example.test\n"
    "sender=alice@example.test\n"
    "recipient=carol@example.net\n"
    "recipient_count=0\n"
    "queue_id=\n"
    "instance=1f.2.3\n"
    "size=0\n"
    "etrn_domain=\n"
    "stress=\n"
    "sasl_method=PLAIN\n"
    "sasl_username=alice\n"
    "sasl_sender=\n"
    "ccert_subject=\n"
    "ccert_issuer=\n"
    "ccert_fingerprint=\n"
    "ccert_pubkey_fingerprint=\n"
    "encryption_protocol=TLSv1.3\n"
    "encryption_cipher=TLS_AES_256_GCM_SHA384\n"
    "encryption_keysize=256\n"
    "policy_context=\n"
    "\n";

static void
test_encode(void)
{
	struct policy_request r;
	struct buf b;
	const char *s;

	memset(&r, 0, sizeof(r));
	r.protocol_state = "RCPT";
	r.protocol_name = "ESMTP";
	r.client_address = "127.0.0.1";
	r.client_name = "localhost";
	r.client_port = 43588;
	r.reverse_client_name = "localhost";
	r.helo_name = "client.example.test";
	r.sender = "alice@example.test";
	r.recipient = "carol@example.net";
	r.instance = "1f.2.3";
	r.sasl_method = "PLAIN";
	r.sasl_username = "alice";
	r.encryption_protocol = "TLSv1.3";
	r.encryption_cipher = "TLS_AES_256_GCM_SHA384";
	r.encryption_keysize = 256;
	buf_init(&b, 0);
	is_int(policy_request_encode(&b, &r), 0, "encode: full RCPT request");
	is_str(buf_cstr(&b), full_rcpt, "encode: attribute set and order");

	/* a CR/LF in a value would end the attribute or the request */
	buf_reset(&b);
	memset(&r, 0, sizeof(r));
	r.protocol_state = "END-OF-MESSAGE";
	r.helo_name = "evil\r\n\nrecipient=x";
	r.sender = "a\tb\x7f" "c";
	r.recipient_count = 3;
	r.size = 1234;
	r.queue_id = "4bKx7Q2mVZz9";
	r.recipient = "caf\xc3\xa9@example.test";	/* UTF-8 kept */
	policy_request_encode(&b, &r);
	s = buf_cstr(&b);
	ok(strstr(s, "helo_name=evil???recipient=x\n") != NULL,
	    "encode: CR/LF in a value replaced");
	ok(strstr(s, "sender=a?b?c\n") != NULL,
	    "encode: TAB and DEL replaced");
	ok(strstr(s, "recipient=caf\xc3\xa9@example.test\n") != NULL,
	    "encode: UTF-8 address kept");
	ok(strstr(s, "recipient_count=3\nqueue_id=4bKx7Q2mVZz9\n") != NULL,
	    "encode: recipient_count and queue_id");
	ok(strstr(s, "size=1234\n") != NULL, "encode: size");
	ok(strstr(s, "client_name=\n") != NULL, "encode: NULL sent empty");
	ok(strstr(s, "\n\n") == s + strlen(s) - 2,
	    "encode: the only empty line ends the request");

	/* the cap of the output buffer is honoured */
	buf_deinit(&b);
	buf_init(&b, 64);
	is_int(policy_request_encode(&b, &r), -1, "encode: cap reached");
	buf_deinit(&b);
}

/* ---- answer parsing ---- */

static const struct {
	const char *name;
	const char *in;
	size_t	 len;		/* 0: strlen(in) */
	int	 want_rc;
	const char *want_action;
	size_t	 want_used;	/* rc 1 only */
	const char *want_error;	/* rc -1 only */
} answers[] = {
	{ "plain", "action=DUNNO\n\n", 0, 1, "DUNNO", 14, NULL },
	{ "with text", "action=REJECT 5.7.1 no way\n\n", 0, 1,
	    "REJECT 5.7.1 no way", 28, NULL },
	{ "CRLF tolerated", "action=OK\r\n\r\n", 0, 1, "OK", 13, NULL },
	{ "unknown attributes ignored",
	    "foo=bar\naction=DEFER_IF_PERMIT x\nbaz=\n\n", 0, 1,
	    "DEFER_IF_PERMIT x", 39, NULL },
	{ "first action counts", "action=OK\naction=REJECT\n\n", 0, 1,
	    "OK", 25, NULL },
	{ "value with '='", "action=PREPEND X-A: b=c\n\n", 0, 1,
	    "PREPEND X-A: b=c", 25, NULL },
	{ "trailing bytes not used", "action=DUNNO\n\naction=OK\n\n", 0, 1,
	    "DUNNO", 14, NULL },
	{ "partial: no newline", "action=DUN", 0, 0, NULL, 0, NULL },
	{ "partial: no blank line", "action=DUNNO\n", 0, 0, NULL, 0, NULL },
	{ "empty input", "", 0, 0, NULL, 0, NULL },
	{ "no action", "foo=bar\n\n", 0, -1, NULL, 0,
	    "answer without an action" },
	{ "empty answer", "\n", 0, -1, NULL, 0, "answer without an action" },
	{ "empty action", "action=\n\n", 0, -1, NULL, 0, "empty action" },
	{ "not name=value", "hello world\n\n", 0, -1, NULL, 0,
	    "answer line is not name=value" },
	{ "empty name", "=x\n\n", 0, -1, NULL, 0,
	    "answer line is not name=value" },
	{ "NUL byte", "action=OK\0\n\n", 12, -1, NULL, 0,
	    "NUL byte in the answer" },
	{ "SMTP reply instead", "220 hello\r\n", 0, -1, NULL, 0,
	    "answer line is not name=value" },
};

static void
test_answers(void)
{
	char *action, *big;
	const char *error;
	size_t i, used, len;
	int rc;

	for (i = 0; i < sizeof(answers) / sizeof(*answers); i++) {
		len = answers[i].len != 0 ? answers[i].len :
		    strlen(answers[i].in);
		used = 0;
		error = NULL;
		rc = policy_answer_parse(answers[i].in, len, &action, &used,
		    &error);
		is_int(rc, answers[i].want_rc, "answer %s: rc",
		    answers[i].name);
		if (answers[i].want_rc == 1) {
			is_str(action, answers[i].want_action,
			    "answer %s: action", answers[i].name);
			is_int(used, answers[i].want_used, "answer %s: used",
			    answers[i].name);
		} else if (answers[i].want_rc == -1)
			is_str(error, answers[i].want_error,
			    "answer %s: error", answers[i].name);
		else
			ok(action == NULL, "answer %s: no action yet",
			    answers[i].name);
		free(action);
	}

	/* an endless line: refused once past the bound, not buffered on */
	big = xmalloc(POLICY_ANSWER_MAX + 8);
	memcpy(big, "action=", 7);
	memset(big + 7, 'x', POLICY_ANSWER_MAX - 7 + 1);
	big[POLICY_ANSWER_MAX + 1] = '\0';
	is_int(policy_answer_parse(big, POLICY_ANSWER_MAX, &action, &used,
	    &error), 0, "answer endless line: at the bound, more needed");
	free(action);
	is_int(policy_answer_parse(big, POLICY_ANSWER_MAX + 1, &action, &used,
	    &error), -1, "answer endless line: past the bound");
	is_str(error, "answer too long", "answer endless line: error");
	free(action);
	/* many short lines that never end the answer */
	for (i = 0; i <= POLICY_ANSWER_MAX; i += 4)
		memcpy(big + i, "a=b\n", 4);
	is_int(policy_answer_parse(big, i, &action, &used, &error), -1,
	    "answer endless attributes: refused");
	free(action);
	free(big);
}

/* ---- actions ---- */

static const struct {
	const char *in;
	int	 want_rc;
	enum policy_action_kind kind;
	const char *code;
	const char *enhanced;
	const char *text;
} actions[] = {
	{ "OK", 0, POLICY_ACT_OK, "", "", "" },
	{ "ok", 0, POLICY_ACT_OK, "", "", "" },
	{ "permit", 0, POLICY_ACT_OK, "", "", "" },
	{ "DUNNO", 0, POLICY_ACT_DUNNO, "", "", "" },
	{ "dunno", 0, POLICY_ACT_DUNNO, "", "", "" },
	{ "REJECT", 0, POLICY_ACT_REJECT, "554", "5.7.1", "Access denied" },
	{ "REJECT go away", 0, POLICY_ACT_REJECT, "554", "5.7.1", "go away" },
	{ "reject 5.7.26 bad", 0, POLICY_ACT_REJECT, "554", "5.7.26", "bad" },
	{ "REJECT 4.7.1 wrong class", 0, POLICY_ACT_REJECT, "554", "5.7.1",
	    "wrong class" },
	{ "REJECT 5.7.1234 not a code", 0, POLICY_ACT_REJECT, "554", "5.7.1",
	    "5.7.1234 not a code" },
	{ "DEFER", 0, POLICY_ACT_DEFER, "450", "4.7.1", "Access denied" },
	{ "DEFER later", 0, POLICY_ACT_DEFER, "450", "4.7.1", "later" },
	{ "DEFER_IF_PERMIT Greylisted, see http://x/", 0,
	    POLICY_ACT_DEFER_IF_PERMIT, "450", "4.7.1",
	    "Greylisted, see http://x/" },
	{ "DEFER_IF_PERMIT", 0, POLICY_ACT_DEFER_IF_PERMIT, "450", "4.7.1",
	    "Service is unavailable" },
	{ "DEFER_IF_REJECT 4.7.0 hmm", 0, POLICY_ACT_DEFER_IF_REJECT, "450",
	    "4.7.0", "hmm" },
	{ "550 5.7.23 Message rejected due to: SPF fail", 0,
	    POLICY_ACT_REJECT, "550", "5.7.23",
	    "Message rejected due to: SPF fail" },
	{ "450 4.7.25 greylisted", 0, POLICY_ACT_DEFER, "450", "4.7.25",
	    "greylisted" },
	{ "451", 0, POLICY_ACT_DEFER, "451", "4.7.1", "Access denied" },
	{ "550 no enhanced", 0, POLICY_ACT_REJECT, "550", "5.7.1",
	    "no enhanced" },
	{ "421 4.7.0 go", 0, POLICY_ACT_DISCONNECT, "421", "4.7.0", "go" },
	{ "521 5.7.0 go", 0, POLICY_ACT_REJECT, "521", "5.7.0", "go" },
	{ "250 ok", -1, 0, "", "", "" },
	{ "5500 x", -1, 0, "", "", "" },
	{ "55 x", -1, 0, "", "", "" },
	{ "HOLD", 0, POLICY_ACT_HOLD, "", "", "" },
	{ "HOLD look at it", 0, POLICY_ACT_HOLD, "", "", "look at it" },
	{ "DISCARD spam", 0, POLICY_ACT_DISCARD, "", "", "spam" },
	{ "PREPEND X-Greylist: delayed 62 seconds", 0, POLICY_ACT_PREPEND,
	    "", "", "X-Greylist: delayed 62 seconds" },
	{ "PREPEND no header", -1, 0, "", "", "" },
	{ "PREPEND", -1, 0, "", "", "" },
	{ "PREPEND : empty name", -1, 0, "", "", "" },
	{ "REDIRECT bob@example.test", 0, POLICY_ACT_REDIRECT, "", "",
	    "bob@example.test" },
	{ "REDIRECT", -1, 0, "", "", "" },
	{ "REDIRECT a b", -1, 0, "", "", "" },
	{ "BCC audit@example.test", 0, POLICY_ACT_BCC, "", "",
	    "audit@example.test" },
	{ "WARN odd client", 0, POLICY_ACT_WARN, "", "", "odd client" },
	{ "INFO noted", 0, POLICY_ACT_INFO, "", "", "noted" },
	{ "FILTER smtp:[127.0.0.1]:10025", 0, POLICY_ACT_FILTER, "", "",
	    "smtp:[127.0.0.1]:10025" },
	{ "FILTER", -1, 0, "", "", "" },
	{ "reject_unknown_client_hostname", -1, 0, "", "", "" },
	{ "OKAY", -1, 0, "", "", "" },
	{ "DEFERRED", -1, 0, "", "", "" },
	{ "", -1, 0, "", "", "" },
	{ "REJECT bad\x01text\xff", 0, POLICY_ACT_REJECT, "554", "5.7.1",
	    "bad?text?" },
};

static void
test_actions(void)
{
	struct policy_action a;
	const char *error;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(actions) / sizeof(*actions); i++) {
		error = NULL;
		rc = policy_action_parse(actions[i].in, &a, &error);
		is_int(rc, actions[i].want_rc, "action \"%s\": rc",
		    actions[i].in);
		if (actions[i].want_rc != 0) {
			ok(error != NULL, "action \"%s\": error set",
			    actions[i].in);
			continue;
		}
		is_str(policy_action_kind_name(a.kind),
		    policy_action_kind_name(actions[i].kind),
		    "action \"%s\": kind", actions[i].in);
		is_str(a.code, actions[i].code, "action \"%s\": code",
		    actions[i].in);
		is_str(a.enhanced, actions[i].enhanced,
		    "action \"%s\": enhanced", actions[i].in);
		is_str(a.text, actions[i].text, "action \"%s\": text",
		    actions[i].in);
	}
}

int
main(void)
{
	test_encode();
	test_answers();
	test_actions();
	return done_testing();
}

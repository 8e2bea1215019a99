/*
 * policy_proto.c - the Postfix SMTP access policy delegation protocol
 * (Postfix SMTPD_POLICY_README, "Protocol description"), without I/O.
 *
 * A request is "name=value" lines and an empty line; the answer is
 * "action=..." (plus attributes we ignore) and an empty line. The actions
 * are those of access(5). This module encodes requests, finds complete
 * answers in received bytes and says what an action means; the socket
 * work, the connection pool and the verdicts are policy_client.c's.
 *
 * Every byte of an answer comes from a peer: answers are bounded
 * (POLICY_ANSWER_MAX), texts that go into SMTP replies and headers are
 * cut to printable ASCII, and reply codes are checked (RFC 5321 4.2,
 * enhanced codes RFC 3463 2).
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "policy_proto.h"
#include "xmalloc.h"

/* add - one attribute; control characters in the value become '?' */
static int
add(struct buf *out, const char *name, const char *value)
{
	const unsigned char *p;
	char c;

	if (buf_append_str(out, name) == -1 || buf_append(out, "=", 1) == -1)
		return -1;
	if (value == NULL)
		value = "";
	for (p = (const unsigned char *)value; *p != '\0'; p++) {
		c = *p < 0x20 || *p == 0x7f ? '?' : (char)*p;
		if (buf_append(out, &c, 1) == -1)
			return -1;
	}
	return buf_append(out, "\n", 1);
}

/* add_num - a number attribute; "" for an absent port */
static int
add_num(struct buf *out, const char *name, unsigned long long n,
    bool zero_empty)
{
	char num[32];

	if (n == 0 && zero_empty)
		num[0] = '\0';
	else
		snprintf(num, sizeof(num), "%llu", n);
	return add(out, name, num);
}

int
policy_request_encode(struct buf *out, const struct policy_request *r)
{
	int rc = 0;

	/* the order of Postfix 3.7's smtpd_check.c requests */
	rc |= add(out, "request", "smtpd_access_policy");
	rc |= add(out, "protocol_state", r->protocol_state);
	rc |= add(out, "protocol_name", r->protocol_name);
	rc |= add(out, "client_address", r->client_address);
	rc |= add(out, "client_name", r->client_name);
	rc |= add_num(out, "client_port", r->client_port, true);
	rc |= add(out, "reverse_client_name", r->reverse_client_name);
	rc |= add(out, "server_address", r->server_address);
	rc |= add_num(out, "server_port", r->server_port, true);
	rc |= add(out, "helo_name", r->helo_name);
	rc |= add(out, "sender", r->sender);
	rc |= add(out, "recipient", r->recipient);
	rc |= add_num(out, "recipient_count", r->recipient_count, false);
	rc |= add(out, "queue_id", r->queue_id);
	rc |= add(out, "instance", r->instance);
	rc |= add_num(out, "size", r->size, false);
	rc |= add(out, "etrn_domain", r->etrn_domain);
	rc |= add(out, "stress", r->stress);
	rc |= add(out, "sasl_method", r->sasl_method);
	rc |= add(out, "sasl_username", r->sasl_username);
	rc |= add(out, "sasl_sender", r->sasl_sender);
	rc |= add(out, "ccert_subject", r->ccert_subject);
	rc |= add(out, "ccert_issuer", r->ccert_issuer);
	rc |= add(out, "ccert_fingerprint", r->ccert_fingerprint);
	rc |= add(out, "ccert_pubkey_fingerprint",
	    r->ccert_pubkey_fingerprint);
	rc |= add(out, "encryption_protocol", r->encryption_protocol);
	rc |= add(out, "encryption_cipher", r->encryption_cipher);
	rc |= add_num(out, "encryption_keysize",
	    (unsigned long long)(r->encryption_keysize < 0 ? 0 :
	    r->encryption_keysize), false);
	rc |= add(out, "policy_context", r->policy_context);
	rc |= buf_append(out, "\n", 1);
	return rc == 0 ? 0 : -1;
}

int
policy_answer_parse(const char *data, size_t len, char **action_r,
    size_t *used_r, const char **error_r)
{
	const char *line, *nl, *eq, *action = NULL;
	size_t pos = 0, n, action_len = 0;

	*action_r = NULL;
	if (memchr(data, '\0', len) != NULL) {
		*error_r = "NUL byte in the answer";
		return -1;
	}
	while (pos < len) {
		line = data + pos;
		if ((nl = memchr(line, '\n', len - pos)) == NULL)
			break;
		n = (size_t)(nl - line);
		if (n > 0 && line[n - 1] == '\r')
			n--;
		pos = (size_t)(nl - data) + 1;
		if (pos > POLICY_ANSWER_MAX)
			break;
		if (n == 0) {
			if (action == NULL) {
				*error_r = "answer without an action";
				return -1;
			}
			*action_r = xstrndup(action, action_len);
			*used_r = pos;
			return 1;
		}
		if ((eq = memchr(line, '=', n)) == NULL || eq == line) {
			*error_r = "answer line is not name=value";
			return -1;
		}
		/* the first action counts, as Postfix's attr_scan keeps it */
		if (action == NULL && (size_t)(eq - line) == 6 &&
		    memcmp(line, "action", 6) == 0) {
			action = eq + 1;
			action_len = n - 7;
			if (action_len == 0) {
				*error_r = "empty action";
				return -1;
			}
		}
	}
	if (pos > POLICY_ANSWER_MAX || len > POLICY_ANSWER_MAX) {
		*error_r = "answer too long";
		return -1;
	}
	return 0;
}

/* set_text - copy s into a->text, non-printable bytes as '?' */
static void
set_text(struct policy_action *a, const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i < sizeof(a->text) - 1; i++)
		a->text[i] = (unsigned char)s[i] < 0x20 ||
		    (unsigned char)s[i] > 0x7e ? '?' : s[i];
	a->text[i] = '\0';
}

/*
 * enhanced_len - length of an RFC 3463 code "c.sss.ddd" at s, followed by
 * a space or the end; 0 if there is none
 */
static size_t
enhanced_len(const char *s)
{
	size_t i = 0, n;
	int part;

	if (s[0] != '2' && s[0] != '4' && s[0] != '5')
		return 0;
	i = 1;
	for (part = 0; part < 2; part++) {
		if (s[i++] != '.')
			return 0;
		for (n = 0; isdigit((unsigned char)s[i]); n++, i++)
			if (n == 3)
				return 0;
		if (n == 0)
			return 0;
	}
	return s[i] == '\0' || s[i] == ' ' ? i : 0;
}

/*
 * set_reply - code, enhanced code and text for a reply; an enhanced
 * code at the start of text wins over dflt_enh, with its class set to
 * the reply's (Postfix does the same), and an empty text gets dflt_text
 */
static void
set_reply(struct policy_action *a, const char *code, const char *dflt_enh,
    const char *text, const char *dflt_text)
{
	size_t n;

	snprintf(a->code, sizeof(a->code), "%s", code);
	while (*text == ' ' || *text == '\t')
		text++;
	if ((n = enhanced_len(text)) > 0 && n < sizeof(a->enhanced)) {
		memcpy(a->enhanced, text, n);
		a->enhanced[n] = '\0';
		a->enhanced[0] = code[0];
		text += n;
		while (*text == ' ')
			text++;
	} else
		snprintf(a->enhanced, sizeof(a->enhanced), "%s", dflt_enh);
	set_text(a, *text != '\0' ? text : dflt_text);
}

/* keyword - true if action starts with word (any case) and then ends */
static bool
keyword(const char *action, const char *word, const char **rest_r)
{
	size_t n = strlen(word);

	if (strncasecmp(action, word, n) != 0 ||
	    (action[n] != '\0' && action[n] != ' ' && action[n] != '\t'))
		return false;
	for (action += n; *action == ' ' || *action == '\t'; action++)
		;
	*rest_r = action;
	return true;
}

/* header_ok - "Name: value" with a printable name (RFC 5322 2.2) */
static bool
header_ok(const char *s)
{
	const char *p;

	for (p = s; *p > 0x20 && *p < 0x7f && *p != ':'; p++)
		;
	return p > s && *p == ':';
}

/* address_ok - one token, no spaces or brackets */
static bool
address_ok(const char *s)
{
	return *s != '\0' && strpbrk(s, " \t<>") == NULL;
}

int
policy_action_parse(const char *action, struct policy_action *a,
    const char **error_r)
{
	const char *rest;

	memset(a, 0, sizeof(*a));
	while (*action == ' ' || *action == '\t')
		action++;
	if ((action[0] == '4' || action[0] == '5') &&
	    isdigit((unsigned char)action[1]) &&
	    isdigit((unsigned char)action[2]) &&
	    (action[3] == '\0' || action[3] == ' ')) {
		char code[4];

		memcpy(code, action, 3);
		code[3] = '\0';
		/* access(5): 421 and 521 disconnect; see policy_client.h */
		a->kind = strcmp(code, "421") == 0 ? POLICY_ACT_DISCONNECT :
		    code[0] == '4' ? POLICY_ACT_DEFER : POLICY_ACT_REJECT;
		set_reply(a, code, code[0] == '4' ? "4.7.1" : "5.7.1",
		    action + 3, "Access denied");
		return 0;
	}
	if (keyword(action, "OK", &rest) || keyword(action, "permit", &rest))
		a->kind = POLICY_ACT_OK;
	else if (keyword(action, "DUNNO", &rest))
		a->kind = POLICY_ACT_DUNNO;
	else if (keyword(action, "REJECT", &rest)) {
		a->kind = POLICY_ACT_REJECT;
		set_reply(a, "554", "5.7.1", rest, "Access denied");
	} else if (keyword(action, "DEFER", &rest)) {
		a->kind = POLICY_ACT_DEFER;
		set_reply(a, "450", "4.7.1", rest, "Access denied");
	} else if (keyword(action, "DEFER_IF_PERMIT", &rest)) {
		a->kind = POLICY_ACT_DEFER_IF_PERMIT;
		set_reply(a, "450", "4.7.1", rest, "Service is unavailable");
	} else if (keyword(action, "DEFER_IF_REJECT", &rest)) {
		a->kind = POLICY_ACT_DEFER_IF_REJECT;
		set_reply(a, "450", "4.7.1", rest, "Service is unavailable");
	} else if (keyword(action, "HOLD", &rest)) {
		a->kind = POLICY_ACT_HOLD;
		set_text(a, rest);
	} else if (keyword(action, "DISCARD", &rest)) {
		a->kind = POLICY_ACT_DISCARD;
		set_text(a, rest);
	} else if (keyword(action, "WARN", &rest)) {
		a->kind = POLICY_ACT_WARN;
		set_text(a, rest);
	} else if (keyword(action, "INFO", &rest)) {
		a->kind = POLICY_ACT_INFO;
		set_text(a, rest);
	} else if (keyword(action, "PREPEND", &rest)) {
		if (!header_ok(rest)) {
			*error_r = "PREPEND without a \"name: value\" header";
			return -1;
		}
		a->kind = POLICY_ACT_PREPEND;
		set_text(a, rest);
	} else if (keyword(action, "REDIRECT", &rest) ||
	    keyword(action, "BCC", &rest)) {
		if (!address_ok(rest)) {
			*error_r = "REDIRECT or BCC without one address";
			return -1;
		}
		a->kind = toupper((unsigned char)action[0]) == 'R' ?
		    POLICY_ACT_REDIRECT : POLICY_ACT_BCC;
		set_text(a, rest);
	} else if (keyword(action, "FILTER", &rest)) {
		if (*rest == '\0') {
			*error_r = "FILTER without transport:destination";
			return -1;
		}
		a->kind = POLICY_ACT_FILTER;
		set_text(a, rest);
	} else {
		*error_r = "unknown action";
		return -1;
	}
	return 0;
}

const char *
policy_action_kind_name(enum policy_action_kind k)
{
	static const char *const names[] = {
		[POLICY_ACT_DUNNO] = "DUNNO",
		[POLICY_ACT_OK] = "OK",
		[POLICY_ACT_REJECT] = "REJECT",
		[POLICY_ACT_DEFER] = "DEFER",
		[POLICY_ACT_DISCONNECT] = "421",
		[POLICY_ACT_DEFER_IF_PERMIT] = "DEFER_IF_PERMIT",
		[POLICY_ACT_DEFER_IF_REJECT] = "DEFER_IF_REJECT",
		[POLICY_ACT_HOLD] = "HOLD",
		[POLICY_ACT_DISCARD] = "DISCARD",
		[POLICY_ACT_PREPEND] = "PREPEND",
		[POLICY_ACT_REDIRECT] = "REDIRECT",
		[POLICY_ACT_BCC] = "BCC",
		[POLICY_ACT_WARN] = "WARN",
		[POLICY_ACT_INFO] = "INFO",
		[POLICY_ACT_FILTER] = "FILTER",
	};

	if ((size_t)k >= sizeof(names) / sizeof(*names) || names[k] == NULL)
		return "?";
	return names[k];
}

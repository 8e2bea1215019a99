/*
 * policy_proto.h - the Postfix SMTP access policy delegation protocol,
 * without I/O: encode a request, parse an answer, map an action text to
 * what it means (access(5)).
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_POLICY_PROTO_H
#define POSTERN_POLICY_PROTO_H

#include <stdbool.h>
#include <stddef.h>

struct buf;

/* an answer longer than this without its blank line is garbage */
#define POLICY_ANSWER_MAX	8192

/*
 * the attributes of one request; every string is borrowed for the call,
 * NULL is sent as an empty value
 */
struct policy_request {
	const char *protocol_state;	/* "RCPT", "END-OF-MESSAGE", ... */
	const char *protocol_name;	/* "SMTP" or "ESMTP" */
	const char *helo_name;
	const char *queue_id;
	const char *sender;
	const char *recipient;
	size_t	 recipient_count;
	const char *client_address;
	const char *client_name;
	const char *reverse_client_name;
	unsigned client_port;		/* 0: sent empty */
	const char *server_address;
	unsigned server_port;		/* 0: sent empty */
	const char *instance;
	const char *sasl_method;
	const char *sasl_username;
	const char *sasl_sender;
	size_t	 size;
	const char *ccert_subject;
	const char *ccert_issuer;
	const char *ccert_fingerprint;
	const char *ccert_pubkey_fingerprint;
	const char *encryption_protocol;
	const char *encryption_cipher;
	int	 encryption_keysize;
	const char *etrn_domain;
	const char *stress;
	const char *policy_context;
};

/*
 * policy_request_encode - append the request to out: "name=value\n" per
 * attribute, in Postfix's order, then the empty line. A control character
 * in a value (CR and LF above all: they would end the attribute or the
 * request) is replaced by '?'. Returns -1 when out's cap is reached.
 */
int	policy_request_encode(struct buf *out, const struct policy_request *);

/*
 * policy_answer_parse - look for one complete answer at the start of
 * data: "name=value\n" lines up to an empty line. Attributes other than
 * "action" are ignored (the set grows with Postfix versions); a trailing
 * CR on a line is tolerated.
 * Returns 1 when complete: *action_r is the action value (owned) and
 * *used_r the bytes the answer took; 0 when more input is needed; -1 on
 * a malformed answer (a line without '=', a NUL byte, no or an empty
 * action, more than POLICY_ANSWER_MAX bytes) with *error_r (static).
 */
int	policy_answer_parse(const char *data, size_t len, char **action_r,
	    size_t *used_r, const char **error_r);

enum policy_action_kind {
	POLICY_ACT_DUNNO,		/* DUNNO: no decision */
	POLICY_ACT_OK,			/* OK, permit: accept here */
	POLICY_ACT_REJECT,		/* REJECT, 5NN (521 included) */
	POLICY_ACT_DEFER,		/* DEFER, 4NN */
	POLICY_ACT_DISCONNECT,		/* 421: reply, then close */
	POLICY_ACT_DEFER_IF_PERMIT,
	POLICY_ACT_DEFER_IF_REJECT,
	POLICY_ACT_HOLD,
	POLICY_ACT_DISCARD,
	POLICY_ACT_PREPEND,		/* text: "Name: value" */
	POLICY_ACT_REDIRECT,		/* text: the address */
	POLICY_ACT_BCC,			/* text: the address */
	POLICY_ACT_WARN,		/* text: to log */
	POLICY_ACT_INFO,		/* text: to log */
	POLICY_ACT_FILTER,		/* text: transport:destination */
};

struct policy_action {
	enum policy_action_kind kind;
	char	 code[4];	/* REJECT/DEFER/DISCONNECT/DEFER_IF_*: "554" */
	char	 enhanced[16];	/* likewise: "5.7.1" */
	char	 text[400];	/* reply text, header, address or log text;
				   non-printable bytes replaced by '?' */
};

/*
 * policy_action_parse - what an action text means, as access(5) says
 * (keywords in any case). Replies get Postfix's codes (REJECT 554 5.7.1,
 * DEFER and DEFER_IF_* 450 4.7.1) and its generic texts when none is
 * given; an enhanced status code at the start of the text is used, its
 * class made to agree with the reply code. Returns 0, or -1 with
 * *error_r (static) for an unknown action or one missing its argument.
 */
int	policy_action_parse(const char *action, struct policy_action *a_r,
	    const char **error_r);

/* policy_action_kind_name - "REJECT", "DUNNO", ... (static) */
const char *policy_action_kind_name(enum policy_action_kind);

#endif

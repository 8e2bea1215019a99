/*
 * policy_server_answer.h - answer one Postfix policy delegation request
 * with posternd's own policies: the limits (message_size_limit,
 * smtpd_recipient_limit) and a chain of the filters of
 * policy_listen_filters (relay, sender, spf) run through the SMTP stages
 * up to the request's protocol_state.
 *
 * No I/O here: daemon/policy_server.c reads requests and writes answers.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_POLICY_SERVER_ANSWER_H
#define POSTERN_POLICY_SERVER_ANSWER_H

#include <stdbool.h>

#include "filter.h"
#include "policy_proto.h"

struct config;
struct policy_chain;

/* the filters that make sense as a policy, the only ones allowed */
#define POLICY_SERVER_FILTERS	"relay, sender, spf"

/*
 * policy_chain_new - the chain of cfg->policy_listen_filters (each
 * filter's init runs; spf may start helper processes later, on first
 * use). NULL and *error_r (owned) on failure. The chain borrows cfg,
 * which must outlive it.
 */
struct policy_chain *policy_chain_new(const struct config *cfg,
	    char **error_r);
void	policy_chain_free(struct policy_chain **);

/* what one stage run decided */
struct policy_server_outcome {
	enum filter_verdict verdict;	/* CONTINUE: nothing decided */
	const char *filter;		/* static: who decided, or NULL */
	enum filter_stage stage;
	char	 reply[512];		/* the decider's reply, or "" */
};

/*
 * struct policy_server_msg - what the stages before RCPT (connect, helo,
 * mail: SPF's check) and the end-of-message stage decided for one
 * message. Postfix sends one request per recipient with the same
 * client_address, helo_name, sender and instance, so the caller keeps
 * the last one (one per connection: Postfix's requests for a message
 * come on one connection, in order) and passes it to
 * policy_server_answer, which reuses it for the requests of the same
 * message: SPF is checked once per message, not once per recipient.
 * Only the RCPT stage (the relay check of that recipient) runs again.
 * Zero it to start; release with policy_server_msg_deinit.
 */
struct policy_server_msg {
	char	*key;			/* owned: policy_server_msg_key(),
					   NULL: empty */
	unsigned long cfg_generation;	/* the configuration it was
					   made with */
	struct policy_server_outcome pre;	/* connect, helo, mail */
	struct policy_server_outcome pre_hold;	/* a HOLD among them */
	struct policy_server_outcome eom;	/* end of message */
	struct policy_server_outcome eom_hold;
	char	*header_name;		/* owned: the header that may become
					   PREPEND, or NULL */
	char	*header_value;		/* owned, with header_name */
	char	*dropped;		/* owned: eom edits not passed on,
					   or NULL */
};

/*
 * policy_server_msg_key - the key of the message req belongs to (owned):
 * Postfix's instance with the envelope facts the stages before RCPT
 * judge (sender, client_address, client_name, helo_name, sasl_username)
 * as a safety net against a client that reuses an instance. NULL when
 * req has no instance (messages cannot be told apart) or its
 * protocol_state does not reach MAIL (CONNECT, HELO, VRFY, ETRN, ...).
 */
char	*policy_server_msg_key(const struct policy_request *);

/*
 * policy_server_msg_matches - true when m holds the outcome of req's
 * message under cfg, so policy_server_answer would reuse it
 */
bool	policy_server_msg_matches(const struct policy_server_msg *m,
	    const struct config *cfg, const struct policy_request *req);

/* policy_server_msg_deinit - free what m holds and empty it; NULL-safe */
void	policy_server_msg_deinit(struct policy_server_msg *m);

/*
 * policy_chain_may_block - true if answering req would run a filter
 * that may block (then it must run on the filter pool, not the loop).
 * msg (may be NULL) is the caller's kept message outcome: when it
 * matches req, only the RCPT stage runs.
 */
bool	policy_chain_may_block(const struct policy_chain *,
	    const struct config *, const struct policy_request *,
	    const struct policy_server_msg *msg);

/* the answer to one request */
struct policy_server_result {
	char	*action;		/* owned: the value of "action=" */
	enum filter_verdict verdict;
	const char *filter;		/* static: who decided, or NULL */
	enum filter_stage stage;	/* the stage that decided */
	char	 reply[512];		/* the decider's reply, or "" */
	bool	 prepended;		/* action is a PREPEND */
	char	*dropped;		/* owned: headers not passed on, or
					   NULL (for the log) */
	bool	 reused;		/* the outcome of the stages before
					   RCPT came from msg (no SPF check) */
};

/*
 * policy_server_answer - decide req. want_prepend: a header the filters
 * add (Received-SPF) may be returned as PREPEND (the caller passes
 * false for a message that already got one: Postfix asks once per
 * recipient). accepted_rcpts: the recipients of the same message
 * (instance) the caller already let through (see
 * policy_server_result_takes_rcpt); at RCPT, one more than
 * smtpd_recipient_limit allows is answered 452 4.5.3. Postfix's own
 * recipient_count is not used: it is 0 at RCPT, and at DATA and
 * END-OF-MESSAGE a refusal would refuse the whole message. msg (may be
 * NULL) is the caller's kept message outcome: when it matches req
 * (policy_server_msg_matches) the stages before RCPT and the end of
 * message are not run again but replayed from it (res->reused);
 * otherwise they run and msg is replaced by their outcome, the end of
 * message included even when this request does not need it (a refused
 * recipient, protocol_state MAIL), so that the message's next request
 * finds it. Never fails: a filter chain that cannot decide gives its own
 * TEMPFAIL reply. Fills *res (release with policy_server_result_deinit).
 */
void	policy_server_answer(const struct policy_chain *,
	    const struct config *, const struct policy_request *req,
	    bool want_prepend, size_t accepted_rcpts,
	    struct policy_server_msg *msg, struct policy_server_result *res);
void	policy_server_result_deinit(struct policy_server_result *);

/*
 * policy_server_result_takes_rcpt - true when res lets the recipient of
 * a RCPT request through (anything but a reject, tempfail or
 * disconnect): the caller counts it for the message's recipient limit
 */
bool	policy_server_result_takes_rcpt(const struct policy_request *,
	    const struct policy_server_result *);

/*
 * policy_server_action - the action text Postfix accepts for a verdict
 * (owned): CONTINUE and ACCEPT give "DUNNO", or "PREPEND name: value"
 * when header_name is set; REJECT, TEMPFAIL and DISCONNECT give the
 * reply itself ("554 5.7.1 text", "451 ...", "421 ..."); HOLD and
 * DISCARD give "HOLD text" / "DISCARD text" (text from the reply, else
 * one naming filter). The value of the header is unfolded onto one line
 * and control characters become '?', because the answer is line based.
 */
char	*policy_server_action(enum filter_verdict, const char *reply,
	    const char *filter, const char *header_name,
	    const char *header_value);

/*
 * policy_server_log - the log line of a result that is not DUNNO (none
 * for DUNNO): "NOQUEUE: reject: RCPT from name[addr]: reply; from=<>
 * to=<> proto= helo=<> filter= listener=policy"
 */
void	policy_server_log(const struct policy_request *,
	    const struct policy_server_result *);

#endif

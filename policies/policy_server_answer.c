/*
 * policy_server_answer.c - posternd's policies as a Postfix policy
 * service; see policy_server_answer.h.
 *
 * A request becomes the read-only views the filters know (struct
 * filter_conn, struct filter_tx) and runs through the SMTP stages the
 * client has reached, as a session of posternd would have run them:
 *
 *   protocol_state      stages run
 *   CONNECT             connect
 *   HELO, EHLO          connect, helo
 *   MAIL                connect, helo, mail
 *   RCPT                connect, helo, mail, rcpt, then eom (headers, hold)
 *   DATA                connect, helo, mail, then eom (headers, hold)
 *   END-OF-MESSAGE      connect, helo, mail, then eom (hold; no headers)
 *   VRFY, ETRN, other   none: DUNNO
 *
 * With Postfix's default smtpd_delay_reject = yes every restriction class
 * asks at RCPT (notes/libraries.md), so RCPT carries the whole envelope.
 * The stages before RCPT and the eom depend on the message, not on the
 * recipient, and Postfix asks once per recipient: the caller keeps their
 * outcome (struct policy_server_msg) and the next request of the same
 * message (instance, with the envelope facts as a safety key) replays it
 * and runs the RCPT stage only, so SPF is checked once per message. For
 * that the eom of a message whose MAIL passed always runs on the first
 * request, even one whose answer does not use it.
 *
 * The limits come first: size (SIZE= at MAIL and RCPT, the real size at
 * END-OF-MESSAGE) against message_size_limit, and the recipients against
 * smtpd_recipient_limit, with posternd's replies. Postfix's
 * recipient_count is 0 at RCPT (SMTPD_POLICY_README: non-zero only at DATA
 * and END-OF-MESSAGE), so the caller counts the recipients of a message
 * (instance) it let through on the connection and the one over the limit
 * gets 452 4.5.3 at RCPT, as posternd's own session does: the client
 * sends the rest later. At DATA and END-OF-MESSAGE the limit is not
 * applied: recipient_count there counts what Postfix accepted, and a
 * refusal would turn away the whole message, recipients within the limit
 * included.
 *
 * The chain is its own: the filters of policy_listen_filters, of which
 * only relay, sender and spf are allowed (schema.c). They decide on the
 * envelope; the content filters need the message, which Postfix does not
 * send, and the "policy" filter would make a policy server ask policy
 * servers. The eom stage runs with an empty header block, for what the
 * envelope filters add there (spf's Received-SPF, a hold action).
 *
 * Verdicts map to access(5) actions: see policy_server_action(). Our
 * CONTINUE is DUNNO, not OK: OK would end Postfix's restriction list
 * with a permit and skip the administrator's other restrictions (RBLs,
 * reject_unauth_destination); Postern's answer is one opinion among
 * them, as posternd's own chain is one stage of its session.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "buf.h"
#include "chain.h"
#include "config/config.h"
#include "log.h"
#include "matchlist.h"
#include "message_edit.h"
#include "policy_server_answer.h"
#include "xmalloc.h"

struct policy_chain {
	struct chain *chain;		/* owned */
};

/* one session id per request, for filters that log it */
static atomic_ullong next_request_id = 1;

struct policy_chain *
policy_chain_new(const struct config *cfg, char **error_r)
{
	const struct filter_ops **ops = NULL;
	struct policy_chain *pc;
	char **name;
	size_t n = 0;

	for (name = cfg->policy_listen_filters; name != NULL && *name != NULL;
	    name++) {
		ops = xreallocarray(ops, n + 1, sizeof(*ops));
		/* schema.c allowed only relay, sender and spf */
		if ((ops[n++] = filter_lookup(*name)) == NULL) {
			*error_r = xasprintf("policy_listen_filters: unknown "
			    "filter \"%s\"", *name);
			free(ops);
			return NULL;
		}
	}
	pc = xcalloc(1, sizeof(*pc));
	pc->chain = chain_new_ops(ops, n, cfg, error_r);
	free(ops);
	if (pc->chain == NULL) {
		free(pc);
		return NULL;
	}
	return pc;
}

void
policy_chain_free(struct policy_chain **pcp)
{
	struct policy_chain *pc = *pcp;

	if (pc == NULL)
		return;
	chain_free(&pc->chain);
	free(pc);
	*pcp = NULL;
}

/* the stages of a protocol_state; n is 0 for states we do not judge */
struct stage_plan {
	bool	 helo, mail, rcpt, eom;
	bool	 headers;		/* eom headers may become PREPEND */
	bool	 any;
};

static struct stage_plan
plan_for(const struct policy_request *req)
{
	struct stage_plan p;
	const char *st = req->protocol_state;

	memset(&p, 0, sizeof(p));
	if (strcasecmp(st, "CONNECT") == 0) {
		p.any = true;
		return p;
	}
	p.helo = *req->helo_name != '\0';
	if (strcasecmp(st, "HELO") == 0 || strcasecmp(st, "EHLO") == 0) {
		p.any = true;
		return p;
	}
	if (strcasecmp(st, "MAIL") == 0)
		p.any = p.mail = true;
	else if (strcasecmp(st, "RCPT") == 0)
		p.any = p.mail = p.rcpt = p.eom = p.headers = true;
	else if (strcasecmp(st, "DATA") == 0)
		p.any = p.mail = p.eom = p.headers = true;
	else if (strcasecmp(st, "END-OF-MESSAGE") == 0)
		p.any = p.mail = p.eom = true;
	/* a RCPT without a recipient has nothing for the relay check */
	if (p.rcpt && *req->recipient == '\0')
		p.rcpt = false;
	return p;
}

bool
policy_chain_may_block(const struct policy_chain *pc,
    const struct config *cfg, const struct policy_request *req,
    const struct policy_server_msg *msg)
{
	struct stage_plan p = plan_for(req);

	if (!p.any)
		return false;
	/* the stages before RCPT and the eom are replayed, not run */
	if (msg != NULL && policy_server_msg_matches(msg, cfg, req))
		return p.rcpt && chain_stage_may_block(pc->chain,
		    FILTER_STAGE_RCPT);
	return chain_stage_may_block(pc->chain, FILTER_STAGE_CONNECT) ||
	    (p.helo && chain_stage_may_block(pc->chain, FILTER_STAGE_HELO)) ||
	    (p.mail && chain_stage_may_block(pc->chain, FILTER_STAGE_MAIL)) ||
	    (p.rcpt && chain_stage_may_block(pc->chain, FILTER_STAGE_RCPT)) ||
	    (p.mail && chain_stage_may_block(pc->chain, FILTER_STAGE_EOM));
}

/* ---- the outcome of a message, kept between its requests ---- */

char *
policy_server_msg_key(const struct policy_request *req)
{
	struct stage_plan p = plan_for(req);

	if (!p.mail || *req->instance == '\0')
		return NULL;
	/* no attribute value holds a newline: the request is line based */
	return xasprintf("%s\n%s\n%s\n%s\n%s\n%s", req->instance,
	    req->sender, req->client_address, req->client_name,
	    req->helo_name, req->sasl_username);
}

bool
policy_server_msg_matches(const struct policy_server_msg *m,
    const struct config *cfg, const struct policy_request *req)
{
	char *key;
	bool same;

	if (m->key == NULL || m->cfg_generation != cfg->generation)
		return false;
	if ((key = policy_server_msg_key(req)) == NULL)
		return false;
	same = strcmp(key, m->key) == 0;
	free(key);
	return same;
}

void
policy_server_msg_deinit(struct policy_server_msg *m)
{
	if (m == NULL)
		return;
	free(m->key);
	free(m->header_name);
	free(m->header_value);
	free(m->dropped);
	memset(m, 0, sizeof(*m));
}

/* printable_into - s on one line: CR LF WSP folds become one space,
 * other control bytes and non-ASCII become '?' */
static void
printable_into(struct buf *out, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\r' || *s == '\n') {
			while (s[1] == '\r' || s[1] == '\n' || s[1] == ' ' ||
			    s[1] == '\t')
				s++;
			buf_append(out, " ", 1);
		} else if ((unsigned char)*s < 0x20 && *s != '\t')
			buf_append(out, "?", 1);
		else if ((unsigned char)*s > 0x7e)
			buf_append(out, "?", 1);
		else
			buf_append(out, s, 1);
	}
}

char *
policy_server_action(enum filter_verdict v, const char *reply,
    const char *filter, const char *header_name, const char *header_value)
{
	struct buf out;
	const char *text;
	char *action;

	buf_init(&out, 0);
	switch (v) {
	case FILTER_REJECT:
	case FILTER_TEMPFAIL:
	case FILTER_DISCONNECT:
		/* the chain checked the reply: "DDD D.D.D text" */
		printable_into(&out, reply);
		break;
	case FILTER_HOLD:
	case FILTER_DISCARD:
		buf_append_str(&out, v == FILTER_HOLD ? "HOLD " : "DISCARD ");
		/* the text of a reply, without its codes, else our own */
		text = reply != NULL && strlen(reply) > 4 ? reply + 4 : "";
		if (*text >= '2' && *text <= '5' && text[1] == '.' &&
		    strchr(text, ' ') != NULL)
			text = strchr(text, ' ') + 1;
		if (*text != '\0')
			printable_into(&out, text);
		else
			buf_printf(&out, "%s by Postern filter %s",
			    v == FILTER_HOLD ? "held" : "discarded",
			    filter != NULL ? filter : "limits");
		break;
	default:
		if (header_name == NULL) {
			buf_append_str(&out, "DUNNO");
			break;
		}
		buf_printf(&out, "PREPEND %s: ", header_name);
		printable_into(&out, header_value != NULL ? header_value : "");
		break;
	}
	action = buf_steal(&out);
	buf_deinit(&out);
	return action;
}

/* request_sa - client_address as a sockaddr; false if it is not one */
static bool
request_sa(const char *addr, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		return true;
	}
	if (strncasecmp(addr, "ipv6:", 5) == 0)
		addr += 5;
	if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		return true;
	}
	return false;
}

/* limits - message_size_limit and smtpd_recipient_limit, posternd's way */
static bool
limits(const struct config *cfg, const struct policy_request *req,
    const struct stage_plan *p, size_t accepted_rcpts,
    struct policy_server_result *res)
{
	if (req->size > cfg->message_size_limit) {
		res->verdict = FILTER_REJECT;
		snprintf(res->reply, sizeof(res->reply),
		    "552 5.3.4 Message size exceeds fixed limit");
		res->stage = FILTER_STAGE_MAIL;
		return true;
	}
	/* the RCPT that would be one too many (RFC 5321 4.5.3.1.8) */
	if (p->rcpt && accepted_rcpts >= cfg->smtpd_recipient_limit) {
		snprintf(res->reply, sizeof(res->reply),
		    "452 4.5.3 Error: too many recipients");
		res->verdict = FILTER_TEMPFAIL;
		res->stage = FILTER_STAGE_RCPT;
		return true;
	}
	return false;
}

/*
 * pick_header - the header to pass on as PREPEND from the eom edits:
 * the only one, else Received-SPF (what an SPF policy service is
 * expected to add), else none; the others are listed in *dropped_r
 */
static const struct filter_edit *
pick_header(const struct filter_edits *edits, char **dropped_r)
{
	const struct filter_edit *e, *pick = NULL;
	struct buf dropped;
	size_t n = 0;

	for (e = edits->head; e != NULL; e = e->next)
		if ((e->kind == FILTER_EDIT_ADD_HEADER ||
		    e->kind == FILTER_EDIT_INSERT_HEADER) && e->value != NULL) {
			n++;
			if (pick == NULL || strcasecmp(e->name,
			    "Received-SPF") == 0)
				pick = e;
		}
	if (n > 1 && strcasecmp(pick->name, "Received-SPF") != 0)
		pick = NULL;
	buf_init(&dropped, 0);
	for (e = edits->head; e != NULL; e = e->next) {
		if (e == pick)
			continue;
		if (dropped.len > 0)
			buf_append(&dropped, ", ", 2);
		if (e->name != NULL)
			buf_append_str(&dropped, e->name);
		else
			buf_append_str(&dropped, "(edit)");
	}
	*dropped_r = dropped.len > 0 ? buf_steal(&dropped) : NULL;
	buf_deinit(&dropped);
	return pick;
}

/*
 * run - one stage; true when it decided (*dec filled, ACCEPT included).
 * A HOLD does not stop the stages: the first one is kept in *hold.
 */
static bool
run(struct chain_tx *ctx, struct filter_call *call, enum filter_stage st,
    struct filter_message *view, struct policy_server_outcome *dec,
    struct policy_server_outcome *hold)
{
	enum filter_verdict v;
	const char *filter = NULL;

	call->stage = st;
	call->reply[0] = '\0';
	if (view != NULL)
		v = chain_run_eom(ctx, call, view, &filter);
	else
		v = chain_run(ctx, call, &filter);
	if (v == FILTER_CONTINUE)
		return false;
	if (v == FILTER_HOLD) {
		if (hold->verdict != FILTER_HOLD) {
			hold->verdict = v;
			hold->filter = filter;
			hold->stage = st;
			memcpy(hold->reply, call->reply, sizeof(hold->reply));
		}
		return false;
	}
	dec->verdict = v;
	dec->filter = filter;
	dec->stage = st;
	memcpy(dec->reply, call->reply, sizeof(dec->reply));
	return true;
}

/* run_pre - the stages before RCPT into m->pre and m->pre_hold */
static void
run_pre(struct chain_tx *ctx, struct filter_call *call,
    const struct stage_plan *p, const struct policy_request *req,
    struct filter_tx *tx, struct policy_server_msg *m)
{
	if (run(ctx, call, FILTER_STAGE_CONNECT, NULL, &m->pre,
	    &m->pre_hold))
		return;
	if (p->helo) {
		call->arg = req->helo_name;
		if (run(ctx, call, FILTER_STAGE_HELO, NULL, &m->pre,
		    &m->pre_hold))
			return;
	}
	call->tx = tx;
	if (p->mail) {
		call->arg = req->sender;
		run(ctx, call, FILTER_STAGE_MAIL, NULL, &m->pre, &m->pre_hold);
	}
}

/*
 * run_eom - the end-of-message stage (empty header block) into m->eom,
 * m->eom_hold and the header that may become PREPEND
 */
static void
run_eom(struct chain_tx *ctx, struct filter_call *call,
    struct policy_server_msg *m)
{
	struct filter_edits edits;
	struct header_list headers;
	struct filter_message view;
	const struct filter_edit *hdr;

	call->arg = NULL;
	call->rcpt = NULL;
	memset(&headers, 0, sizeof(headers));
	memset(&view, 0, sizeof(view));
	view.headers = &headers;
	filter_edits_init(&edits);
	call->edits = &edits;
	run(ctx, call, FILTER_STAGE_EOM, &view, &m->eom, &m->eom_hold);
	call->edits = NULL;
	if ((hdr = pick_header(&edits, &m->dropped)) != NULL) {
		m->header_name = xstrdup(hdr->name);
		m->header_value = xstrdup(hdr->value);
	}
	filter_edits_deinit(&edits);
	header_list_deinit(&headers);
	if (view.body != NULL) {
		buf_deinit(view.body);
		free(view.body);
	}
}

void
policy_server_answer(const struct policy_chain *pc,
    const struct config *cfg, const struct policy_request *req,
    bool want_prepend, size_t accepted_rcpts,
    struct policy_server_msg *msg, struct policy_server_result *res)
{
	struct stage_plan p = plan_for(req);
	struct sockaddr_storage ss;
	struct filter_conn conn;
	struct filter_tx tx;
	struct filter_rcpt rcpt;
	struct filter_call call;
	struct chain_tx ctx;
	struct policy_server_msg fresh, *m;
	struct policy_server_outcome rcpt_dec, rcpt_hold;
	const struct policy_server_outcome *dec = NULL, *hold = NULL;
	bool have_sa, reuse;

	memset(res, 0, sizeof(*res));
	res->verdict = FILTER_CONTINUE;
	if (p.any && limits(cfg, req, &p, accepted_rcpts, res)) {
		res->filter = "limits";
		goto out;
	}
	if (!p.any)
		goto out;

	memset(&conn, 0, sizeof(conn));
	have_sa = request_sa(req->client_address, &ss);
	conn.session_id = atomic_fetch_add(&next_request_id, 1);
	conn.client_sa = have_sa ? (const struct sockaddr *)&ss : NULL;
	conn.client_addr = req->client_address;
	conn.client_name = *req->client_name != '\0' ? req->client_name :
	    "unknown";
	conn.helo = *req->helo_name != '\0' ? req->helo_name : NULL;
	conn.tls_version = *req->encryption_protocol != '\0' ?
	    req->encryption_protocol : NULL;
	conn.tls_cipher = *req->encryption_cipher != '\0' ?
	    req->encryption_cipher : NULL;
	conn.is_authenticated = *req->sasl_username != '\0';
	conn.sasl_username = conn.is_authenticated ? req->sasl_username :
	    NULL;
	conn.sasl_method = conn.is_authenticated ? req->sasl_method : NULL;
	conn.is_mynetworks = have_sa && matchlist_match_addr(cfg->mynetworks,
	    (const struct sockaddr *)&ss);
	conn.is_esmtp = strcasecmp(req->protocol_name, "ESMTP") == 0;
	conn.config = cfg;

	memset(&tx, 0, sizeof(tx));
	tx.queue_id = *req->queue_id != '\0' ? req->queue_id : NULL;
	tx.sender = req->sender;
	tx.size = req->size;
	memset(&rcpt, 0, sizeof(rcpt));
	rcpt.address = req->recipient;
	memset(&rcpt_dec, 0, sizeof(rcpt_dec));
	memset(&rcpt_hold, 0, sizeof(rcpt_hold));
	memset(&fresh, 0, sizeof(fresh));

	chain_tx_begin(&ctx, pc->chain, &conn);
	memset(&call, 0, sizeof(call));
	call.conn = &conn;
	/*
	 * Another recipient of a message already judged: the stages before
	 * RCPT (SPF's check) are not run again. The relay filter, the only
	 * one with a RCPT stage (schema.c), keeps no state from MAIL.
	 */
	reuse = p.mail && msg != NULL && policy_server_msg_matches(msg, cfg,
	    req);
	m = reuse ? msg : &fresh;
	res->reused = reuse;
	if (!reuse)
		run_pre(&ctx, &call, &p, req, &tx, m);
	call.tx = &tx;
	if (m->pre.verdict != FILTER_CONTINUE)
		dec = &m->pre;
	if (m->pre_hold.verdict == FILTER_HOLD)
		hold = &m->pre_hold;
	if (dec == NULL && p.rcpt) {
		call.arg = req->recipient;
		call.rcpt = &rcpt;
		if (run(&ctx, &call, FILTER_STAGE_RCPT, NULL, &rcpt_dec,
		    &rcpt_hold))
			dec = &rcpt_dec;
		if (hold == NULL && rcpt_hold.verdict == FILTER_HOLD)
			hold = &rcpt_hold;
		/* the recipient is accepted: eom sees it in the envelope */
		tx.rcpts = &rcpt;
		tx.nrcpts = 1;
	}
	/*
	 * The eom of a message whose MAIL passed runs now even when this
	 * answer does not need it (a refused recipient, MAIL state): the
	 * next request of the message replays it. The filters allowed here
	 * decide at eom on what MAIL found, not on the recipient.
	 */
	if (!reuse && p.mail && m->pre.verdict == FILTER_CONTINUE) {
		/*
		 * Postfix sends no recipients at MAIL, DATA and
		 * END-OF-MESSAGE: one stands for them, or the chain would
		 * think the filters' edits removed every recipient
		 */
		tx.rcpts = &rcpt;
		tx.nrcpts = 1;
		run_eom(&ctx, &call, m);
	}
	chain_tx_end(&ctx);

	if (dec == NULL && p.eom) {
		if (m->eom.verdict != FILTER_CONTINUE)
			dec = &m->eom;
		if (hold == NULL && m->eom_hold.verdict == FILTER_HOLD)
			hold = &m->eom_hold;
		if (m->dropped != NULL)
			res->dropped = xstrdup(m->dropped);
		if (dec == NULL && hold == NULL && p.headers && want_prepend &&
		    m->header_name != NULL) {
			res->action = policy_server_action(FILTER_CONTINUE,
			    NULL, NULL, m->header_name, m->header_value);
			res->prepended = true;
		}
	}
	if (dec != NULL && dec->verdict != FILTER_ACCEPT) {
		res->verdict = dec->verdict;
		res->filter = dec->filter;
		res->stage = dec->stage;
		memcpy(res->reply, dec->reply, sizeof(res->reply));
	} else if (dec == NULL && hold != NULL) {
		res->verdict = FILTER_HOLD;
		res->filter = hold->filter;
		res->stage = FILTER_STAGE_EOM;
		memcpy(res->reply, hold->reply, sizeof(res->reply));
	}
	/* keep what was run for the message's next request */
	if (!reuse && msg != NULL && p.mail &&
	    (fresh.key = policy_server_msg_key(req)) != NULL) {
		policy_server_msg_deinit(msg);
		fresh.cfg_generation = cfg->generation;
		*msg = fresh;
	} else if (!reuse)
		policy_server_msg_deinit(&fresh);
out:
	if (res->action == NULL)
		res->action = policy_server_action(res->verdict, res->reply,
		    res->filter, NULL, NULL);
}

bool
policy_server_result_takes_rcpt(const struct policy_request *req,
    const struct policy_server_result *res)
{
	if (strcasecmp(req->protocol_state, "RCPT") != 0 ||
	    *req->recipient == '\0')
		return false;
	/* HOLD and DISCARD accept the recipient (and act on the message) */
	return res->verdict != FILTER_REJECT &&
	    res->verdict != FILTER_TEMPFAIL &&
	    res->verdict != FILTER_DISCONNECT;
}

void
policy_server_result_deinit(struct policy_server_result *res)
{
	if (res == NULL)
		return;
	free(res->action);
	res->action = NULL;
	free(res->dropped);
	res->dropped = NULL;
}

void
policy_server_log(const struct policy_request *req,
    const struct policy_server_result *res)
{
	char name[128], addr[64], from[256], to[256], helo[128], text[600];
	char qid[64];
	const char *what, *state;

	if (res->prepended || res->verdict == FILTER_CONTINUE ||
	    res->verdict == FILTER_ACCEPT)
		return;
	switch (res->verdict) {
	case FILTER_REJECT:	what = "reject"; break;
	case FILTER_TEMPFAIL:	what = "reject"; break;
	case FILTER_DISCONNECT:	what = "reject"; break;
	case FILTER_HOLD:	what = "hold"; break;
	default:		what = "discard"; break;
	}
	state = *req->protocol_state != '\0' ? req->protocol_state : "?";
	log_escape(name, sizeof(name), *req->client_name != '\0' ?
	    req->client_name : "unknown");
	log_escape(addr, sizeof(addr), req->client_address);
	log_escape(from, sizeof(from), req->sender);
	log_escape(to, sizeof(to), req->recipient);
	log_escape(helo, sizeof(helo), req->helo_name);
	log_escape(text, sizeof(text), res->action);
	log_escape(qid, sizeof(qid), *req->queue_id != '\0' ? req->queue_id :
	    "NOQUEUE");
	log_info("%s: %s: %s from %s[%s]: %s; from=<%s> to=<%s> proto=%s "
	    "helo=<%s> filter=%s stage=%s listener=policy",
	    qid, what, state,
	    name, addr, text, from, to, *req->protocol_name != '\0' ?
	    req->protocol_name : "SMTP", helo,
	    res->filter != NULL ? res->filter : "chain",
	    filter_stage_name(res->stage));
}

/*
 * milter.c - the "milters" filter: the external milters of smtpd_milters
 * asked in order, where the word "milters" stands in smtpd_filters.
 *
 * It owns, per configuration load, the parsed milter list and macro
 * lists; per SMTP session (the filter's conn_state), one connection per
 * milter, opened at CONNECT and kept for every transaction of the
 * session. CONNECT, HELO, MAIL, RCPT and DATA go to each milter as they
 * happen, with the macros of their stage (milter_macros.c); end of
 * message is milter_eom.c's: the header block and the body as the
 * filters before "milters" left them, then end of body, whose
 * modifications become filter edits (the filters after "milters", dkim,
 * see them). What a reply or a fault makes of the session is
 * milter_verdict.c's, the smtpd_milters syntax milter_spec.c's, the I/O
 * of one connection milter_conn.c's, packets milter_proto.c's.
 *
 * A failure at CONNECT or HELO is applied at MAIL: a session is never
 * refused at the greeting because of a milter (milter_verdict.c). A
 * refusal at CONNECT answers every MAIL of the session (a 421 or a
 * shutdown: the next HELO, with 421 and close); one at HELO answers that
 * HELO and every later MAIL, as Postfix's rejected-connection state.
 * A discard at CONNECT or HELO is logged and ignored (Postfix).
 *
 * Blocking I/O with deadlines: the filter declares may_block and runs on
 * the filter threads, except ABORT and CLOSE, which the session runs on
 * its loop: those only post a packet without waiting.
 *
 * References: Postfix MILTER_README and milter8.c behaviour (macros,
 * default action, timeouts); the libmilter protocol, version 6.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "log.h"
#include "milter-private.h"
#include "smtp_client.h"
#include "xmalloc.h"

static void milters_deinit(void *);

static void *
milters_init(const struct config *cfg, char **error_r)
{
	struct milters *in;
	char *const *tok;
	const char *lists[MILTER_MACROS_COUNT];
	size_t n = 0, i;

	for (tok = cfg->smtpd_milters; tok != NULL && *tok != NULL; tok++)
		n++;
	if (n == 0)
		return NULL;	/* nothing to ask: no instance, no error */
	in = xcalloc(1, sizeof(*in));
	in->specs = xcalloc(n, sizeof(*in->specs));
	for (i = 0; i < n; i++) {
		in->n = i + 1;
		if (milter_spec_parse(&in->specs[i], cfg->smtpd_milters[i],
		    cfg, error_r) == -1) {
			milters_deinit(in);
			return NULL;
		}
	}
	in->version = cfg->milter_protocol < 2 ? 2 :
	    cfg->milter_protocol > MILTER_VERSION ? MILTER_VERSION :
	    (uint32_t)cfg->milter_protocol;
	lists[MILTER_MACROS_CONNECT] = cfg->milter_connect_macros;
	lists[MILTER_MACROS_HELO] = cfg->milter_helo_macros;
	lists[MILTER_MACROS_MAIL] = cfg->milter_mail_macros;
	lists[MILTER_MACROS_RCPT] = cfg->milter_rcpt_macros;
	lists[MILTER_MACROS_DATA] = cfg->milter_data_macros;
	lists[MILTER_MACROS_EOH] = cfg->milter_end_of_header_macros;
	lists[MILTER_MACROS_EOM] = cfg->milter_end_of_data_macros;
	for (i = 0; i < MILTER_MACROS_COUNT; i++)
		in->lists[i] = xstrdup(lists[i] != NULL ? lists[i] : "");
	in->myhostname = xstrdup(cfg->myhostname != NULL ?
	    cfg->myhostname : "localhost");
	in->daemon_name = xstrdup(cfg->milter_macro_daemon_name != NULL ?
	    cfg->milter_macro_daemon_name : in->myhostname);
	in->max_body = cfg->message_size_limit;
	return in;
}

static void
milters_deinit(void *instance)
{
	struct milters *in = instance;
	size_t i;

	if (in == NULL)
		return;
	for (i = 0; i < in->n; i++)
		milter_spec_deinit(&in->specs[i]);
	free(in->specs);
	for (i = 0; i < MILTER_MACROS_COUNT; i++)
		free(in->lists[i]);
	free(in->myhostname);
	free(in->daemon_name);
	free(in);
}

static void *
milters_tx_begin(void *instance, const struct filter_conn *conn)
{
	if (instance == NULL)
		return NULL;
	/* small: the connections are made at CONNECT, in the session's */
	return xcalloc(1, sizeof(struct milters_state));
}

static void
milters_tx_end(void *instance, void *state)
{
	struct milters_state *st = state;
	size_t i;

	if (st == NULL)
		return;
	/* CLOSE said goodbye; anything left is closed without waiting */
	for (i = 0; i < st->n; i++) {
		milter_conn_close(&st->conns[i]);
		milter_reader_deinit(&st->conns[i].rd);
		milter_neg_deinit(&st->conns[i].neg);
	}
	free(st->conns);
	free(st);
}

/* ---- stages ---- */

/*
 * refuse_session - m refused the connection (at connect or helo: a
 * reject, tempfail or 421): Postfix's rejected-connection state, where
 * m is not asked again and every later MAIL gets its reply (a 421 the
 * next HELO already); the socket stays open for QUIT
 */
static void
refuse_session(struct milter_conn *m, enum filter_verdict v,
    const char *reply)
{
	m->sess_verdict = v;
	snprintf(m->sess_reply, sizeof(m->sess_reply), "%s", reply);
	if (m->state == MILTER_CONN_OK)
		m->state = MILTER_CONN_DONE;
}

static enum filter_verdict
milters_connect(struct filter_call *call)
{
	struct milters *in = call->instance;
	struct milters_state *st = call->conn_state;
	const struct filter_conn *c = call->conn;
	struct milter_conn *m;
	struct milter_macro_set mac;
	struct buf out;
	enum filter_verdict v;
	const char *err;
	char family = 'U';
	size_t i;

	if (in == NULL || st == NULL || st->conns != NULL)
		return FILTER_CONTINUE;
	st->conns = xcalloc(in->n, sizeof(*st->conns));
	st->n = in->n;
	for (i = 0; i < in->n; i++)
		milter_conn_init(&st->conns[i], &in->specs[i]);
	if (c->client_sa != NULL && c->client_sa->sa_family == AF_INET)
		family = '4';
	else if (c->client_sa != NULL && c->client_sa->sa_family == AF_INET6)
		family = '6';
	milter_macros_fill(&mac, in, call);
	buf_init(&out, 0);
	for (i = 0; i < st->n; i++) {
		m = &st->conns[i];
		if (milter_conn_open(m, in->version, &err) == -1) {
			(void)milter_verdict_failed(call, m, NULL,
			    MILTER_CMD_OPTNEG, err);
			continue;
		}
		buf_reset(&out);
		milter_macros_add(&out, in, m, &mac, MILTER_MACROS_CONNECT,
		    MILTER_CMD_CONNECT);
		if (milter_neg_sends(&m->neg, MILTER_CMD_CONNECT))
			(void)milter_pkt_connect(&out, c->client_name != NULL ?
			    c->client_name : "unknown", family,
			    (uint16_t)filter_sa_port(c->client_sa),
			    c->client_addr != NULL ? c->client_addr : "",
			    &err);
		v = milter_verdict_command(call, m, NULL, &out,
		    MILTER_CMD_CONNECT);
		if (m->msg_done) {
			/* accept: not asked again in this session */
			m->msg_done = false;
			if (m->state == MILTER_CONN_OK)
				m->state = MILTER_CONN_DONE;
		} else if (v == FILTER_REJECT || v == FILTER_TEMPFAIL ||
		    v == FILTER_DISCONNECT)
			refuse_session(m, v, call->reply);
		call->reply[0] = '\0';
	}
	buf_deinit(&out);
	return FILTER_CONTINUE;
}

static enum filter_verdict
milters_helo(struct filter_call *call)
{
	struct milters *in = call->instance;
	struct milters_state *st = call->conn_state;
	struct milter_conn *m;
	struct milter_macro_set mac;
	struct buf out;
	enum filter_verdict v = FILTER_CONTINUE;
	const char *err;
	size_t i;

	if (in == NULL || st == NULL)
		return FILTER_CONTINUE;
	milter_macros_fill(&mac, in, call);
	buf_init(&out, 0);
	for (i = 0; i < st->n && v == FILTER_CONTINUE; i++) {
		m = &st->conns[i];
		if (m->state == MILTER_CONN_DONE &&
		    m->sess_verdict == FILTER_DISCONNECT) {
			/* 421 at connect: this is the first answer */
			snprintf(call->reply, sizeof(call->reply), "%s",
			    m->sess_reply);
			v = FILTER_DISCONNECT;
			continue;
		}
		if (m->state != MILTER_CONN_OK)
			continue;
		buf_reset(&out);
		milter_macros_add(&out, in, m, &mac, MILTER_MACROS_HELO,
		    MILTER_CMD_HELO);
		if (milter_neg_sends(&m->neg, MILTER_CMD_HELO))
			(void)milter_pkt_helo(&out, call->arg != NULL ?
			    call->arg : "", &err);
		v = milter_verdict_command(call, m, NULL, &out,
		    MILTER_CMD_HELO);
		if (m->msg_done) {
			/* accept at HELO: done for the session */
			m->msg_done = false;
			m->state = MILTER_CONN_DONE;
		} else if (v == FILTER_REJECT || v == FILTER_TEMPFAIL)
			/* this HELO, and every later MAIL, refused */
			refuse_session(m, v, call->reply);
	}
	buf_deinit(&out);
	return v;
}

/* envelope_args - the ESMTP parameters of MAIL FROM as we know them */
static size_t
envelope_args(const struct filter_tx *tx, char size[32], const char **args)
{
	size_t n = 0;

	if (tx->size > 0) {
		snprintf(size, 32, "SIZE=%zu", tx->size);
		args[n++] = size;
	}
	if (tx->body_type != NULL)
		args[n++] = strcmp(tx->body_type, "8BITMIME") == 0 ?
		    "BODY=8BITMIME" : "BODY=7BIT";
	if (tx->smtputf8)
		args[n++] = "SMTPUTF8";
	return n;
}

/*
 * rcpt_args - the DSN parameters of RCPT TO as the client gave them
 * (ORCPT xtext-encoded again), written into b; args point into b
 */
static size_t
rcpt_args(const struct filter_rcpt *r, struct buf *b, const char **args)
{
	size_t off[2], i, n = 0;

	buf_reset(b);
	if (r == NULL)
		return 0;
	if (r->notify != NULL) {
		off[n++] = b->len;
		buf_printf(b, "NOTIFY=%s", r->notify);
		buf_append(b, "", 1);
	}
	if (r->orcpt != NULL) {
		off[n++] = b->len;
		buf_append_str(b, "ORCPT=");
		smtp_orcpt_encode(b, r->orcpt);
		buf_append(b, "", 1);
	}
	/* pointers only now: the buffer may have moved while it grew */
	for (i = 0; i < n; i++)
		args[i] = b->data + off[i];
	return n;
}

/*
 * envelope_stage - MAIL, RCPT or DATA to every milter still asked about
 * this message
 */
static enum filter_verdict
envelope_stage(struct filter_call *call)
{
	struct milters *in = call->instance;
	struct milters_state *st = call->conn_state;
	struct milters_state *t = call->tx_state;
	struct milter_conn *m;
	struct milter_macro_set mac;
	struct buf out, rargs;
	enum filter_verdict v = FILTER_CONTINUE;
	enum milter_macro_stage ms;
	const char *err, *args[3];
	char cmd, size[32];
	size_t i, nargs;

	if (in == NULL || st == NULL || call->tx == NULL)
		return FILTER_CONTINUE;
	switch (call->stage) {
	case FILTER_STAGE_MAIL:
		ms = MILTER_MACROS_MAIL, cmd = MILTER_CMD_MAIL;
		break;
	case FILTER_STAGE_RCPT:
		ms = MILTER_MACROS_RCPT, cmd = MILTER_CMD_RCPT;
		break;
	default:
		ms = MILTER_MACROS_DATA, cmd = MILTER_CMD_DATA;
		break;
	}
	milter_macros_fill(&mac, in, call);
	buf_init(&out, 0);
	buf_init(&rargs, 0);
	for (i = 0; i < st->n && v == FILTER_CONTINUE; i++) {
		m = &st->conns[i];
		if (cmd == MILTER_CMD_MAIL)
			m->msg_done = false;
		if (m->state != MILTER_CONN_OK) {
			v = milter_verdict_standing(call, m, t);
			continue;
		}
		if (m->msg_done)
			continue;
		buf_reset(&out);
		if (cmd == MILTER_CMD_MAIL && m->in_tx)
			/* an earlier message the milter did not see end */
			(void)milter_pkt_simple(&out, MILTER_CMD_ABORT, &err);
		milter_macros_add(&out, in, m, &mac, ms, cmd);
		if (milter_neg_sends(&m->neg, cmd)) {
			if (cmd == MILTER_CMD_MAIL) {
				nargs = envelope_args(call->tx, size, args);
				(void)milter_pkt_envelope(&out, cmd,
				    call->tx->sender, args, nargs, &err);
			} else if (cmd == MILTER_CMD_RCPT) {
				nargs = rcpt_args(call->rcpt, &rargs, args);
				(void)milter_pkt_envelope(&out, cmd,
				    call->arg != NULL ? call->arg : "", args,
				    nargs, &err);
			} else
				(void)milter_pkt_simple(&out, cmd, &err);
		}
		if (cmd == MILTER_CMD_MAIL)
			m->in_tx = true;
		v = milter_verdict_command(call, m, t, &out, cmd);
		if (cmd == MILTER_CMD_MAIL && m->state == MILTER_CONN_OK &&
		    (v == FILTER_REJECT || v == FILTER_TEMPFAIL))
			m->in_tx = false;	/* no transaction begun */
	}
	buf_deinit(&out);
	buf_deinit(&rargs);
	return v;
}

/* post_all - a packet without reply to every connected milter */
static void
post_all(struct milters_state *st, char cmd, bool only_in_tx)
{
	struct buf out;
	const char *err;
	size_t i;

	if (st == NULL)
		return;
	buf_init(&out, 0);
	(void)milter_pkt_simple(&out, cmd, &err);
	for (i = 0; i < st->n; i++) {
		if (st->conns[i].fd == -1 ||
		    (only_in_tx && !st->conns[i].in_tx))
			continue;
		(void)milter_conn_post(&st->conns[i], &out);
		st->conns[i].in_tx = false;
	}
	buf_deinit(&out);
}

static enum filter_verdict
milters_abort(struct filter_call *call)
{
	post_all(call->conn_state, MILTER_CMD_ABORT, true);
	return FILTER_CONTINUE;
}

static enum filter_verdict
milters_close(struct filter_call *call)
{
	struct milters_state *st = call->conn_state;
	size_t i;

	post_all(st, MILTER_CMD_QUIT, false);
	for (i = 0; st != NULL && i < st->n; i++)
		milter_conn_close(&st->conns[i]);
	return FILTER_CONTINUE;
}

const struct filter_ops filter_milters = {
	.name = "milters",
	.stages = FILTER_STAGE_BIT(FILTER_STAGE_CONNECT) |
	    FILTER_STAGE_BIT(FILTER_STAGE_HELO) |
	    FILTER_STAGE_BIT(FILTER_STAGE_MAIL) |
	    FILTER_STAGE_BIT(FILTER_STAGE_RCPT) |
	    FILTER_STAGE_BIT(FILTER_STAGE_DATA) |
	    FILTER_STAGE_BIT(FILTER_STAGE_EOM) |
	    FILTER_STAGE_BIT(FILTER_STAGE_ABORT) |
	    FILTER_STAGE_BIT(FILTER_STAGE_CLOSE),
	.may_block = true,
	.edits = true,
	.signs = false,
	.init = milters_init,
	.deinit = milters_deinit,
	.tx_begin = milters_tx_begin,
	.tx_end = milters_tx_end,
	.cb = {
		[FILTER_STAGE_CONNECT] = milters_connect,
		[FILTER_STAGE_HELO] = milters_helo,
		[FILTER_STAGE_MAIL] = envelope_stage,
		[FILTER_STAGE_RCPT] = envelope_stage,
		[FILTER_STAGE_DATA] = envelope_stage,
		[FILTER_STAGE_EOM] = milter_eom,
		[FILTER_STAGE_ABORT] = milters_abort,
		[FILTER_STAGE_CLOSE] = milters_close,
	},
};

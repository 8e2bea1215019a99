/*
 * session_cmd.c - SMTP command handlers of the server session.
 *
 * One static table maps each verb to a check (sequence and listener
 * rules; a failing check sends its own reply) and a handler. Syntax is
 * the parser's job (smtp_parser.c); every reply carries an enhanced status
 * code (RFC 3463, RFC 2034). The rules per listener kind:
 *   smtp        STARTTLS offered; AUTH only after TLS unless
 *               smtpd_tls_auth_only = no.
 *   submission  RFC 6409 / RFC 8314: STARTTLS before AUTH and before MAIL;
 *               MAIL needs AUTH unless the client is in mynetworks.
 *   smtps       RFC 8314 implicit TLS: no STARTTLS.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "chain.h"
#include "log.h"
#include "loop.h"
#include "pool.h"
#include "runtime.h"
#include "session-private.h"
#include "smtp_parser.h"
#include "spool.h"
#include "tls.h"
#include "xmalloc.h"

/* reset_tx_state - after a transaction ends: back to READY (or HELO) */
static void
reset_tx_state(struct session *s)
{
	session_tx_free(s);
	session_set_state(s, s->helo != NULL ? SMTP_STATE_READY :
	    SMTP_STATE_HELO);
}

void
session_tx_free(struct session *s)
{
	struct transaction *tx = s->tx;
	struct filter_call call;
	size_t i;

	if (tx == NULL)
		return;
	session_filter_call_init(s, &call, FILTER_STAGE_ABORT);
	chain_tx_close(&tx->chain, tx->completed, &call);
	spool_abort(&tx->spool);
	smtp_data_deinit(&tx->data);
	filter_edits_deinit(&tx->edits);
	for (i = 0; i < tx->nrcpts; i++) {
		free(tx->rcpts[i].address);
		free(tx->rcpts[i].orcpt);
		free(tx->rcpts[i].notify_text);
	}
	free(tx->rcpts);
	free(tx->frcpts);
	free(tx->sender);
	free(tx->envid);
	free(tx->ret);
	free(tx->body_type);
	free(tx);
	s->tx = NULL;
}

const char *
session_proto(const struct session *s)
{
	if (!s->esmtp)
		return "SMTP";
	if (s->tls)
		return s->sasl_username != NULL ? "ESMTPSA" : "ESMTPS";
	return s->sasl_username != NULL ? "ESMTPA" : "ESMTP";
}

void
session_log_reject(struct session *s, const char *cmd, const char *reply,
    const char *rcpt, const char *filter)
{
	struct transaction *tx = s->tx;
	char helo[128];

	log_escape(helo, sizeof(helo), s->helo != NULL ? s->helo : "");
	log_info("%s: reject: %s from %s: %s; from=<%s> to=<%s> proto=%s "
	    "helo=<%s>%s%s",
	    tx != NULL && tx->queue_id[0] != '\0' ? tx->queue_id : "NOQUEUE",
	    cmd, s->ident, reply, tx != NULL && tx->sender != NULL ?
	    tx->sender : "", rcpt != NULL ? rcpt : "", session_proto(s),
	    helo, filter != NULL ? " filter=" : "",
	    filter != NULL ? filter : "");
}

/* ---- filters ---- */

void
session_filter_call_init(struct session *s, struct filter_call *call,
    enum filter_stage stage)
{
	memset(call, 0, sizeof(*call));
	call->conn = &s->fconn;
	call->stage = stage;
	if (s->tx != NULL) {
		struct transaction *tx = s->tx;

		tx->ftx.queue_id = tx->queue_id[0] != '\0' ?
		    tx->queue_id : NULL;
		tx->ftx.sender = tx->sender;
		tx->ftx.rcpts = tx->frcpts;
		tx->ftx.nrcpts = tx->nrcpts;
		tx->ftx.smtputf8 = tx->smtputf8;
		tx->ftx.body_type = tx->body_type;
		call->tx = &tx->ftx;
	}
}

/* refresh_fconn - the filter view of the connection after a change */
static void
refresh_fconn(struct session *s)
{
	struct filter_conn *c = &s->fconn;
	struct sockaddr_storage ss;
	const struct sockaddr_in6 *sin6;
	const struct sockaddr_in *sin;
	socklen_t sslen = sizeof(ss);
	const void *a = NULL;
	evutil_socket_t fd;
	int af;

	c->session_id = s->id;
	c->client_sa = (const struct sockaddr *)&s->ss;
	c->client_addr = s->addr;
	c->client_name = s->name;
	/*
	 * the local end of the connection, once per session (milters get
	 * it as {daemon_addr} and {daemon_port}); an IPv4-mapped address
	 * of a dual-stack listener is given as IPv4, like the client's
	 */
	if (c->server_addr == NULL && s->bev != NULL &&
	    (fd = bufferevent_getfd(s->bev)) != -1 &&
	    getsockname(fd, (struct sockaddr *)&ss, &sslen) == 0) {
		af = ss.ss_family;
		if (af == AF_INET) {
			sin = (const struct sockaddr_in *)&ss;
			c->server_port = ntohs(sin->sin_port);
			a = &sin->sin_addr;
		} else if (af == AF_INET6) {
			sin6 = (const struct sockaddr_in6 *)&ss;
			c->server_port = ntohs(sin6->sin6_port);
			a = &sin6->sin6_addr;
			if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
				af = AF_INET;
				a = &sin6->sin6_addr.s6_addr[12];
			}
		}
		if (a != NULL && inet_ntop(af, a, c->server_addr_buf,
		    sizeof(c->server_addr_buf)) != NULL)
			c->server_addr = c->server_addr_buf;
	}
	c->helo = s->helo;
	c->tls_version = s->tls && s->tls_version[0] != '\0' ?
	    s->tls_version : NULL;
	c->tls_cipher = s->tls && s->tls_cipher[0] != '\0' ?
	    s->tls_cipher : NULL;
	c->tls_cipher_bits = s->tls ? s->tls_bits : 0;
	c->sasl_method = s->sasl_method;
	c->sasl_username = s->sasl_username;
	c->is_mynetworks = s->is_mynetworks;
	c->is_authenticated = s->sasl_username != NULL;
	c->is_esmtp = s->esmtp;
	c->config = s->cfg;
}

void
session_auth_refresh(struct session *s)
{
	refresh_fconn(s);
}

struct stage_job {
	struct session	*s;		/* borrowed; suspended meanwhile */
	struct chain_tx	*ctx;		/* borrowed */
	struct filter_call call;	/* copy the callbacks work on */
	enum filter_verdict verdict;
	const char	*who;
	session_stage_fn then;
};

static void
stage_work(void *arg)
{
	struct stage_job *j = arg;

	j->verdict = chain_run(j->ctx, &j->call, &j->who);
}

static void
stage_done(void *arg)
{
	struct stage_job *j = arg;
	struct session *s = j->s;

	if (!session_resume_begin(s)) {
		free(j);
		return;
	}
	j->then(s, j->verdict, &j->call, j->who);
	free(j);
	session_resume_end(s);
}

void
session_run_stage(struct session *s, struct chain_tx *ctx,
    struct filter_call *call, session_stage_fn then)
{
	struct stage_job *j;
	enum filter_verdict v;
	const char *who;

	if (!chain_has_stage(s->rt->chain, call->stage)) {
		then(s, FILTER_CONTINUE, call, NULL);
		return;
	}
	if (!chain_stage_may_block(s->rt->chain, call->stage)) {
		v = chain_run(ctx, call, &who);
		then(s, v, call, who);
		return;
	}
	j = xcalloc(1, sizeof(*j));
	j->s = s;
	j->ctx = ctx;
	j->call = *call;
	j->then = then;
	session_suspend(s);
	pool_submit_filter(s->loop, stage_work, stage_done, j);
}

/* verdict_reply - reply for a verdict that stops the command; true if sent */
static bool
verdict_reply(struct session *s, enum filter_verdict v,
    struct filter_call *call, const char *who, const char *cmd,
    const char *rcpt)
{
	switch (v) {
	case FILTER_REJECT:
	case FILTER_TEMPFAIL:
		session_log_reject(s, cmd, call->reply, rcpt, who);
		session_reply_text(s, call->reply);
		session_error(s);
		return true;
	case FILTER_DISCONNECT:
		session_log_reject(s, cmd, call->reply, rcpt, who);
		session_reply_text(s, call->reply);
		session_close(s);
		return true;
	default:
		return false;
	}
}

/* ---- greeting ---- */

void
session_conn_init(struct session *s)
{
	refresh_fconn(s);
	chain_tx_begin(&s->conn_chain, s->rt->chain, &s->fconn);
	session_set_state(s, SMTP_STATE_GREETING);
}

static void
greet_done(struct session *s, enum filter_verdict v,
    struct filter_call *call, const char *who)
{
	if (v == FILTER_REJECT || v == FILTER_TEMPFAIL ||
	    v == FILTER_DISCONNECT) {
		session_log_reject(s, "CONNECT", call->reply, NULL, who);
		/* RFC 5321 3.1: a refusing server may answer 554 and close */
		session_reply_text(s, call->reply);
		session_close(s);
		return;
	}
	session_reply(s, "220 %s", s->cfg->smtpd_banner);
	session_set_state(s, SMTP_STATE_HELO);
	session_arm_timer(s);
}

void
session_greet(struct session *s)
{
	struct filter_call call;

	session_filter_call_init(s, &call, FILTER_STAGE_CONNECT);
	session_run_stage(s, &s->conn_chain, &call, greet_done);
}

/* ---- TLS ---- */

void
session_tls_established(struct session *s)
{
	SSL *ssl;

	if (s->bev == NULL ||
	    (ssl = bufferevent_openssl_get_ssl(s->bev)) == NULL)
		return;
	snprintf(s->tls_version, sizeof(s->tls_version), "%s",
	    tls_version(ssl));
	snprintf(s->tls_cipher, sizeof(s->tls_cipher), "%s",
	    tls_cipher(ssl));
	s->tls_bits = tls_cipher_bits(ssl);
	s->tls_alg_bits = tls_cipher_alg_bits(ssl);
	log_info("%s TLS connection established from %s: %s with cipher "
	    "%s (%d/%d bits)", s->kind == LISTENER_SMTPS ? "Implicit" :
	    "Anonymous", s->ident, s->tls_version, s->tls_cipher,
	    s->tls_bits, s->tls_alg_bits);
	refresh_fconn(s);
}

static void
cmd_starttls(struct session *s, struct smtp_command *cmd)
{
	struct evbuffer *in;
	struct bufferevent *tlsbev;
	size_t pending;

	in = bufferevent_get_input(s->bev);
	pending = evbuffer_get_length(in);
	if (pending > 0) {
		/*
		 * CVE-2011-0411 class: plaintext pipelined behind STARTTLS
		 * must not be executed inside the TLS session.
		 */
		log_info("discarding %zu bytes pipelined after STARTTLS "
		    "from %s", pending, s->ident);
		evbuffer_drain(in, pending);
	}
	session_reply(s, "220 2.0.0 Ready to start TLS");
	tlsbev = bufferevent_openssl_filter_new(loop_base(s->loop), s->bev,
	    tls_server_new(s->rt->tls_server), BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (tlsbev == NULL) {
		log_warnx("cannot start TLS for %s", s->ident);
		session_close(s);
		return;
	}
	/*
	 * The TLS filter moves its output into the socket bufferevent at
	 * once; a high watermark there keeps replies in the filter, where
	 * the SESSION_OUTPUT_MAX check of a client that does not read them
	 * can see them.
	 */
	bufferevent_setwatermark(s->bev, EV_WRITE, 0, SESSION_OUTPUT_MAX);
	/* RFC 3207 4.2: forget everything learned before TLS */
	session_tx_free(s);
	free(s->helo);
	s->helo = NULL;
	s->esmtp = false;
	s->tls = true;
	session_install_bev(s, tlsbev);
	session_set_state(s, SMTP_STATE_HELO);
	refresh_fconn(s);
}

/* ---- HELO/EHLO ---- */

static void
helo_done(struct session *s, enum filter_verdict v, struct filter_call *call,
    const char *who)
{
	struct evbuffer *out;

	if (verdict_reply(s, v, call, who, s->esmtp ? "EHLO" : "HELO",
	    NULL)) {
		free(s->helo);
		s->helo = NULL;
		refresh_fconn(s);
		return;
	}
	session_set_state(s, SMTP_STATE_READY);
	if (!s->esmtp) {
		session_reply(s, "250 %s", s->cfg->myhostname);
		return;
	}
	out = bufferevent_get_output(s->bev);
	evbuffer_add_printf(out, "250-%s\r\n", s->cfg->myhostname);
	evbuffer_add_printf(out, "250-PIPELINING\r\n");
	evbuffer_add_printf(out, "250-SIZE %zu\r\n",
	    s->cfg->message_size_limit);
	if (!s->tls && s->rt->tls_server != NULL)
		evbuffer_add_printf(out, "250-STARTTLS\r\n");
	if (session_auth_offered(s))
		evbuffer_add_printf(out, "250-AUTH PLAIN LOGIN\r\n");
	evbuffer_add_printf(out, "250-ENHANCEDSTATUSCODES\r\n"
	    "250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n");
}

static void
cmd_helo(struct session *s, struct smtp_command *cmd)
{
	struct filter_call call;

	session_tx_free(s);
	free(s->helo);
	s->helo = xstrdup(cmd->arg);
	s->esmtp = cmd->verb == SMTP_VERB_EHLO;
	refresh_fconn(s);
	session_filter_call_init(s, &call, FILTER_STAGE_HELO);
	call.arg = s->helo;
	session_run_stage(s, &s->conn_chain, &call, helo_done);
}

/* ---- MAIL ---- */

static void
mail_done(struct session *s, enum filter_verdict v, struct filter_call *call,
    const char *who)
{
	if (verdict_reply(s, v, call, who, "MAIL", NULL)) {
		reset_tx_state(s);
		return;
	}
	session_set_state(s, SMTP_STATE_MAIL);
	session_reply(s, "250 2.1.0 Ok");
}

static void
cmd_mail(struct session *s, struct smtp_command *cmd)
{
	struct transaction *tx;
	struct filter_call call;

	if (cmd->body == SMTP_BODY_BINARYMIME) {
		session_reply(s, "555 5.5.4 Unsupported option: "
		    "BODY=BINARYMIME");
		session_error(s);
		return;
	}
	if (cmd->has_size && cmd->size > s->cfg->message_size_limit) {
		session_log_reject(s, "MAIL", "552 5.3.4 Message size "
		    "exceeds fixed limit", NULL, NULL);
		session_reply(s, "552 5.3.4 Message size exceeds fixed limit");
		session_error(s);
		return;
	}
	if (cmd->is_utf8_path && !cmd->smtputf8) {
		session_reply(s, SMTP_REPLY_NEED_SMTPUTF8);
		session_error(s);
		return;
	}
	tx = s->tx = xcalloc(1, sizeof(*tx));
	tx->sender = xstrdup(cmd->path);
	tx->smtputf8 = cmd->smtputf8;
	tx->declared_size = cmd->has_size ? (size_t)cmd->size : 0;
	if (cmd->envid_decoded != NULL)
		tx->envid = xstrdup(cmd->envid_decoded);
	if (cmd->ret != SMTP_RET_NONE)
		tx->ret = xstrdup(cmd->ret == SMTP_RET_FULL ? "FULL" : "HDRS");
	if (cmd->body != SMTP_BODY_NONE)
		tx->body_type = xstrdup(cmd->body == SMTP_BODY_8BITMIME ?
		    "8BITMIME" : "7BIT");
	filter_edits_init(&tx->edits);
	chain_tx_begin(&tx->chain, s->rt->chain, &s->fconn);
	tx->chain.conn = &s->conn_chain;
	session_filter_call_init(s, &call, FILTER_STAGE_MAIL);
	call.arg = tx->sender;
	session_run_stage(s, &tx->chain, &call, mail_done);
}

/* ---- RCPT ---- */

static void
rcpt_done(struct session *s, enum filter_verdict v, struct filter_call *call,
    const char *who)
{
	struct transaction *tx = s->tx;
	struct tx_rcpt *r = &tx->rcpts[tx->nrcpts];

	if (verdict_reply(s, v, call, who, "RCPT", r->address)) {
		free(r->address);
		free(r->orcpt);
		free(r->notify_text);
		memset(r, 0, sizeof(*r));
		return;
	}
	tx->frcpts[tx->nrcpts].address = r->address;
	tx->frcpts[tx->nrcpts].orcpt = r->orcpt;
	tx->frcpts[tx->nrcpts].notify = r->notify_text;
	tx->nrcpts++;
	session_set_state(s, SMTP_STATE_RCPT);
	session_reply(s, "250 2.1.5 Ok");
}

static void
cmd_rcpt(struct session *s, struct smtp_command *cmd)
{
	struct transaction *tx = s->tx;
	struct tx_rcpt *r;
	struct filter_call call;
	char reply[128];

	if (tx->nrcpts >= s->cfg->smtpd_recipient_limit) {
		snprintf(reply, sizeof(reply),
		    "452 4.5.3 Error: too many recipients");
		session_log_reject(s, "RCPT", reply, cmd->path, NULL);
		session_reply_text(s, reply);
		return;
	}
	if (cmd->is_utf8_path && !tx->smtputf8) {
		session_reply(s, SMTP_REPLY_NEED_SMTPUTF8);
		session_error(s);
		return;
	}
	tx->rcpts = xreallocarray(tx->rcpts, tx->nrcpts + 1,
	    sizeof(*tx->rcpts));
	tx->frcpts = xreallocarray(tx->frcpts, tx->nrcpts + 1,
	    sizeof(*tx->frcpts));
	r = &tx->rcpts[tx->nrcpts];
	memset(r, 0, sizeof(*r));
	r->address = xstrdup(cmd->path);
	r->orcpt = smtp_orcpt_decoded(cmd);
	r->notify = cmd->notify;
	r->notify_text = smtp_notify_text(cmd->notify);
	session_filter_call_init(s, &call, FILTER_STAGE_RCPT);
	call.arg = r->address;
	call.rcpt = &tx->frcpts[tx->nrcpts];
	tx->frcpts[tx->nrcpts].address = r->address;
	tx->frcpts[tx->nrcpts].orcpt = r->orcpt;
	tx->frcpts[tx->nrcpts].notify = r->notify_text;
	session_run_stage(s, &tx->chain, &call, rcpt_done);
}

/* ---- the rest ---- */

static void
cmd_data(struct session *s, struct smtp_command *cmd)
{
	session_data_begin(s);
}

static void
cmd_bdat(struct session *s, struct smtp_command *cmd)
{
	session_bdat_begin(s, (size_t)cmd->bdat_size, cmd->bdat_last);
}

static void
cmd_rset(struct session *s, struct smtp_command *cmd)
{
	reset_tx_state(s);
	session_reply(s, "250 2.0.0 Ok");
}

static void
cmd_noop(struct session *s, struct smtp_command *cmd)
{
	session_reply(s, "250 2.0.0 Ok");
}

static void
cmd_quit(struct session *s, struct smtp_command *cmd)
{
	session_reply(s, "221 2.0.0 Bye");
	session_close(s);
}

static void
cmd_vrfy(struct session *s, struct smtp_command *cmd)
{
	/* RFC 5321 3.5.3: 252 without revealing who exists */
	session_reply(s, "252 2.0.0 Cannot VRFY user, but will accept "
	    "message and attempt delivery");
}

static void
cmd_expn(struct session *s, struct smtp_command *cmd)
{
	session_reply(s, "502 5.5.1 Error: command not implemented");
	session_error(s);
}

static void
cmd_help(struct session *s, struct smtp_command *cmd)
{
	session_reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT "
	    "RSET NOOP QUIT VRFY HELP STARTTLS AUTH; see RFC 5321");
}

static void
cmd_auth(struct session *s, struct smtp_command *cmd)
{
	session_auth_begin(s, cmd->arg, cmd->auth_initial);
}

/* ---- checks: sequence and listener rules ---- */

/* refuse - a check fails: reply, count the error, return false */
static bool
refuse(struct session *s, const char *reply)
{
	session_reply_text(s, reply);
	session_error(s);
	return false;
}

static bool
need_helo(struct session *s, struct smtp_command *cmd)
{
	if (s->helo == NULL)
		return refuse(s, "503 5.5.1 Error: send HELO/EHLO first");
	return true;
}

static bool
need_tls_first(struct session *s)
{
	if (s->kind == LISTENER_SUBMISSION && !s->tls)
		return refuse(s, "530 5.7.0 Must issue a STARTTLS command "
		    "first");
	return true;
}

static bool
check_mail(struct session *s, struct smtp_command *cmd)
{
	if (!need_tls_first(s) || !need_helo(s, cmd))
		return false;
	if (s->tx != NULL)
		return refuse(s, "503 5.5.1 Error: nested MAIL command");
	if (s->kind == LISTENER_SUBMISSION && s->sasl_username == NULL &&
	    !s->is_mynetworks)
		return refuse(s, "530 5.7.0 Authentication required");
	return true;
}

static bool
check_rcpt(struct session *s, struct smtp_command *cmd)
{
	if (s->tx == NULL)
		return refuse(s, "503 5.5.1 Error: need MAIL command");
	if (s->tx->data_started)
		return refuse(s, "503 5.5.1 Error: BDAT in progress");
	return true;
}

static bool
check_data(struct session *s, struct smtp_command *cmd)
{
	const char *why = NULL;

	if (s->tx == NULL)
		why = "503 5.5.1 Error: need MAIL command";
	else if (s->tx->data_started && cmd->verb == SMTP_VERB_DATA)
		why = "503 5.5.1 Error: DATA not allowed after BDAT";
	else if (s->tx->nrcpts == 0)
		why = "503 5.5.1 Error: need RCPT command";
	if (why == NULL)
		return true;
	if (cmd->verb == SMTP_VERB_BDAT) {
		/* the chunk follows anyway: read and drop it, then answer */
		session_bdat_discard(s, (size_t)cmd->bdat_size, why);
		return false;
	}
	return refuse(s, why);
}

static bool
check_starttls(struct session *s, struct smtp_command *cmd)
{
	if (s->tls)
		return refuse(s, "554 5.5.1 Error: TLS already active");
	if (s->rt->tls_server == NULL)
		return refuse(s, "502 5.5.1 Error: command not implemented");
	if (s->tx != NULL)
		return refuse(s, "503 5.5.1 Error: MAIL transaction in "
		    "progress");
	return true;
}

static bool
check_auth(struct session *s, struct smtp_command *cmd)
{
	if (s->cfg->smtpd_sasl_password_maps == NULL)
		return refuse(s, "503 5.5.1 Error: authentication not "
		    "enabled");
	if (!s->tls && (s->kind == LISTENER_SUBMISSION ||
	    s->cfg->smtpd_tls_auth_only))
		return refuse(s, "530 5.7.0 Must issue a STARTTLS command "
		    "first");
	if (!need_helo(s, cmd))
		return false;
	if (s->sasl_username != NULL)
		return refuse(s, "503 5.5.1 Error: already authenticated");
	if (s->tx != NULL)
		return refuse(s, "503 5.5.1 Error: MAIL transaction in "
		    "progress");
	return true;
}

struct command_row {
	enum smtp_verb verb;
	bool	 (*check)(struct session *, struct smtp_command *);
	void	 (*run)(struct session *, struct smtp_command *);
};

static const struct command_row command_table[] = {
	{ SMTP_VERB_EHLO,	NULL,		cmd_helo },
	{ SMTP_VERB_HELO,	NULL,		cmd_helo },
	{ SMTP_VERB_MAIL,	check_mail,	cmd_mail },
	{ SMTP_VERB_RCPT,	check_rcpt,	cmd_rcpt },
	{ SMTP_VERB_DATA,	check_data,	cmd_data },
	{ SMTP_VERB_BDAT,	check_data,	cmd_bdat },
	{ SMTP_VERB_RSET,	NULL,		cmd_rset },
	{ SMTP_VERB_NOOP,	NULL,		cmd_noop },
	{ SMTP_VERB_QUIT,	NULL,		cmd_quit },
	{ SMTP_VERB_VRFY,	NULL,		cmd_vrfy },
	{ SMTP_VERB_EXPN,	NULL,		cmd_expn },
	{ SMTP_VERB_HELP,	NULL,		cmd_help },
	{ SMTP_VERB_STARTTLS,	check_starttls,	cmd_starttls },
	{ SMTP_VERB_AUTH,	check_auth,	cmd_auth },
};

void
session_command(struct session *s, const char *line, size_t len)
{
	struct smtp_command cmd;
	const struct command_row *row = NULL;
	const char *error;
	size_t i;

	smtp_command_init(&cmd);
	if (smtp_parse_command(line, len, &cmd, &error) == -1) {
		snprintf(s->last_cmd, sizeof(s->last_cmd), "%s",
		    cmd.verb == SMTP_VERB_UNKNOWN ? "UNKNOWN" :
		    smtp_verb_name(cmd.verb));
		if (cmd.verb == SMTP_VERB_BDAT) {
			/*
			 * A BDAT we cannot parse has no size we can trust:
			 * the stream is out of sync, so close (RFC 3030 2).
			 */
			session_reply_text(s, error);
			session_close(s);
		} else {
			session_reply_text(s, error);
			session_error(s);
		}
		smtp_command_deinit(&cmd);
		return;
	}
	snprintf(s->last_cmd, sizeof(s->last_cmd), "%s",
	    smtp_verb_name(cmd.verb));
	for (i = 0; i < sizeof(command_table) / sizeof(*command_table); i++)
		if (command_table[i].verb == cmd.verb)
			row = &command_table[i];
	if (row == NULL) {
		session_reply(s, "502 5.5.1 Error: command not implemented");
		session_error(s);
	} else if (row->check == NULL || row->check(s, &cmd))
		row->run(s, &cmd);
	smtp_command_deinit(&cmd);
}

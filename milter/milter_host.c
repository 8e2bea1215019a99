/*
 * milter_host.c - the libmilter callbacks of postern-milter: each one
 * runs a stage of the filter chain, the way posternd's session does
 * (daemon/session_cmd.c, session_eom.c), and maps the verdict to an
 * sfsistat with the chain's reply text for the MTA's client.
 *
 * Owns the per-connection state (one struct mconn per milter
 * connection, in smfi_setpriv: Debian's libmilter runs one connection's
 * callbacks on changing threads, so nothing lives in thread-local
 * storage). Each connection holds a reference on the runtime (the
 * configuration and its chain, milter_runtime.c) in force at its first
 * callback, the negotiation, and drops it at close: a reload swaps in a
 * new runtime for the connections that come after, and a connection
 * never sees two chains. The end of message - the edits
 * turned into smfi_* calls - is in milter_eom.c; the pure mappings are
 * in milter_map.c.
 *
 * Differences from posternd's session, forced by the milter protocol:
 * the HEADER stage runs at xxfi_eoh over the collected block (forged
 * Authentication-Results are removed first, as posternd does before its
 * content stages); a HOLD before end of message is remembered and
 * applied with smfi_quarantine there (the only place libmilter allows
 * it); DISCONNECT becomes a tempfail with the filter's 421 reply.
 *
 * ACCEPT is never libmilter's SMFIS_ACCEPT at CONNECT or HELO (libmilter
 * would then skip every message of the connection, DKIM signing
 * included): the connection's chain_tx remembers it and skips only its
 * own later stages, as in posternd. Before end of message it is
 * SMFIS_CONTINUE too: the message's chain_tx skips the rest of the
 * chain (filters/chain.c run_stage), but end of message still has work
 * that is not the chain's - removing forged Authentication-Results and
 * a HOLD seen earlier. Only from end of header on, when the header block
 * is known to carry no forged results and nothing is held, is
 * SMFIS_ACCEPT the same as going on, and the rest of the message is
 * not sent to us.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libmilter/mfapi.h>

#include "auth_results.h"
#include "chain.h"
#include "config/config.h"
#include "config/matchlist.h"
#include "log.h"
#include "message_edit.h"
#include "milter_host-private.h"
#include "milter_host.h"
#include "milter_map.h"
#include "milter_runtime.h"
#include "xmalloc.h"

static atomic_ullong host_session_ids;

/* our action bits are libmilter's (milter_map.c has no libmilter) */
_Static_assert(MILTER_MAP_ADDHDRS == SMFIF_ADDHDRS &&
    MILTER_MAP_CHGBODY == SMFIF_CHGBODY &&
    MILTER_MAP_ADDRCPT == SMFIF_ADDRCPT &&
    MILTER_MAP_DELRCPT == SMFIF_DELRCPT &&
    MILTER_MAP_CHGHDRS == SMFIF_CHGHDRS &&
    MILTER_MAP_QUARANTINE == SMFIF_QUARANTINE &&
    MILTER_MAP_CHGFROM == SMFIF_CHGFROM, "milter action bits");

/* the macros each stage needs (Sendmail allows five per stage) */
static const struct {
	int	 stage;
	const char *list;
} host_macros[] = {
	{ SMFIM_CONNECT, "j {daemon_name} v" },	/* v: is it Postfix */
	{ SMFIM_HELO, "{tls_version} {cipher}" },
	{ SMFIM_ENVFROM, "i {auth_type} {auth_authen}" },
	{ SMFIM_ENVRCPT, "i" },
	{ SMFIM_DATA, "i" },
	{ SMFIM_EOH, "i" },
	{ SMFIM_EOM, "i" },
};

int
milter_host_init(struct config *cfg, char **error_r)
{
	struct milter_runtime *rt;

	config_ref(cfg);	/* the runtime's; main keeps its own */
	if ((rt = milter_runtime_new(cfg, error_r)) == NULL)
		return -1;
	milter_runtime_swap(rt);
	return 0;
}

int
milter_host_reload(struct config *cfg, char **error_r)
{
	struct milter_runtime *rt;

	/*
	 * Built while the old runtime is still in force: a DKIM key only
	 * root may read is then found among the keys held (dkim_tables.c)
	 */
	if ((rt = milter_runtime_new(cfg, error_r)) == NULL)
		return -1;
	milter_runtime_swap(rt);
	return 0;
}

void
milter_host_deinit(void)
{
	milter_runtime_swap(NULL);
}

unsigned
mhost_needs(const struct mconn *c)
{
	return c->rt->needs;
}

const struct chain *
mhost_chain(const struct mconn *c)
{
	return c->rt->chain;
}

const struct config *
mhost_config(const struct mconn *c)
{
	return c->rt->config;
}

/* ---- connection and transaction state ---- */

/* refresh_fconn - the filter view after a change of the connection */
static void
refresh_fconn(struct mconn *c)
{
	struct filter_conn *f = &c->fconn;

	f->client_sa = c->have_sa ? (const struct sockaddr *)&c->ss : NULL;
	f->client_addr = c->client_addr != NULL ? c->client_addr : "unknown";
	f->client_name = c->client_name != NULL ? c->client_name : "unknown";
	f->helo = c->helo;
	f->tls_version = c->tls_version;
	f->tls_cipher = c->tls_cipher;
	f->sasl_method = c->sasl_method;
	f->sasl_username = c->sasl_username;
	f->is_authenticated = c->sasl_username != NULL;
	f->config = c->rt->config;
}

/* conn_get - the connection's state, made on first use */
static struct mconn *
conn_get(SMFICTX *ctx)
{
	struct mconn *c;

	if ((c = smfi_getpriv(ctx)) != NULL)
		return c;
	c = xcalloc(1, sizeof(*c));
	/* main swaps the first runtime in before smfi_main: never NULL */
	if ((c->rt = milter_runtime_current()) == NULL)
		fatalx("postern-milter: no configuration in force");
	c->fconn.session_id = atomic_fetch_add(&host_session_ids, 1) + 1;
	/*
	 * The MTA does not say HELO or EHLO; every MTA with milters speaks
	 * ESMTP
	 */
	c->fconn.is_esmtp = true;
	/* no negotiation (an old MTA): libmilter's own check decides */
	c->offered = MILTER_MAP_EDITS;
	refresh_fconn(c);
	smfi_setpriv(ctx, c);
	return c;
}

/* set_macro - *field = the macro's value (owned), NULL when unset/empty */
static void
set_macro(SMFICTX *ctx, const char *name, char **field)
{
	const char *v = smfi_getsymval(ctx, (char *)name);

	if (v == NULL)
		return;		/* not sent at this stage: keep what we had */
	free(*field);
	*field = v[0] != '\0' ? xstrdup(v) : NULL;
}

/* tx_queue_id - the queue ID from macro i, whenever the MTA sends it */
static void
tx_queue_id(SMFICTX *ctx, struct mtx *tx)
{
	set_macro(ctx, "i", &tx->queue_id);
}

void
mhost_call_init(struct mconn *c, struct filter_call *call,
    enum filter_stage stage)
{
	struct mtx *tx = c->tx;

	memset(call, 0, sizeof(*call));
	call->conn = &c->fconn;
	call->stage = stage;
	if (tx != NULL) {
		tx->ftx.queue_id = tx->queue_id;
		tx->ftx.sender = tx->sender;
		tx->ftx.rcpts = tx->frcpts;
		tx->ftx.nrcpts = tx->nrcpts;
		tx->ftx.smtputf8 = tx->smtputf8;
		tx->ftx.body_type = tx->body_type;
		call->tx = &tx->ftx;
	}
}

void
mhost_tx_end(struct mconn *c)
{
	struct mtx *tx = c->tx;
	struct filter_call call;
	size_t i;

	if (tx == NULL)
		return;
	mhost_call_init(c, &call, FILTER_STAGE_ABORT);
	chain_tx_close(&tx->chain, tx->completed, &call);
	for (i = 0; i < tx->nrcpts; i++) {
		free(tx->rcpts[i].address);
		free(tx->rcpts[i].orcpt);
		free(tx->rcpts[i].notify);
	}
	free(tx->rcpts);
	free(tx->frcpts);
	free(tx->sender);
	free(tx->queue_id);
	free(tx->body_type);
	buf_deinit(&tx->headers);
	buf_deinit(&tx->view);
	free(tx);
	c->tx = NULL;
}

static void
conn_free(SMFICTX *ctx, struct mconn *c)
{
	struct filter_call call;
	const char *who;

	mhost_tx_end(c);
	if (c->conn_chain.state != NULL) {
		memset(&call, 0, sizeof(call));
		call.conn = &c->fconn;
		call.stage = FILTER_STAGE_CLOSE;
		if (chain_has_stage(c->rt->chain, FILTER_STAGE_CLOSE))
			(void)chain_run(&c->conn_chain, &call, &who);
		chain_tx_end(&c->conn_chain);
	}
	free(c->client_addr);
	free(c->client_name);
	free(c->helo);
	free(c->tls_version);
	free(c->tls_cipher);
	free(c->sasl_method);
	free(c->sasl_username);
	/* the last connection of a replaced configuration frees it */
	milter_runtime_unref(&c->rt);
	free(c);
	smfi_setpriv(ctx, NULL);
}

/* ---- verdicts ---- */

void
mhost_log(struct mconn *c, const char *what, const char *stage,
    const char *reply, const char *rcpt, const char *who)
{
	struct mtx *tx = c->tx;
	char why[512], helo[128];

	log_escape(why, sizeof(why), reply != NULL ? reply : "");
	log_escape(helo, sizeof(helo), c->helo != NULL ? c->helo : "");
	log_info("%s: %s: %s from %s[%s]: %s; from=<%s> to=<%s> helo=<%s>%s%s",
	    tx != NULL && tx->queue_id != NULL ? tx->queue_id : "NOQUEUE",
	    what, stage, c->fconn.client_name, c->fconn.client_addr, why,
	    tx != NULL && tx->sender != NULL ? tx->sender : "",
	    rcpt != NULL ? rcpt : "", helo, who != NULL ? " filter=" : "",
	    who != NULL ? who : "");
}

sfsistat
mhost_refuse(SMFICTX *ctx, struct mconn *c, enum filter_verdict v,
    const char *reply, const char *who, const char *stage, const char *rcpt)
{
	struct milter_reply r;
	char want = v == FILTER_REJECT ? '5' : '4';

	if (milter_map_reply(reply, want, &r) == -1)
		log_warnx("filter %s: reply \"%s\" does not fit a %s; "
		    "sent %s %s %s", who != NULL ? who : "?", reply,
		    filter_verdict_name(v), r.code, r.enhanced, r.text);
	mhost_log(c, "reject", stage, reply, rcpt, who);
	if (smfi_setreply(ctx, r.code, r.enhanced[0] != '\0' ? r.enhanced :
	    NULL, r.text) != MI_SUCCESS)
		log_warnx("smfi_setreply %s %s failed: the MTA answers its "
		    "default", r.code, r.enhanced);
	return v == FILTER_REJECT ? SMFIS_REJECT : SMFIS_TEMPFAIL;
}

/*
 * map_verdict - a verdict before end of message as libmilter's status.
 * HOLD is remembered for xxfi_eom (smfi_quarantine works only there);
 * DISCARD before MAIL has no message to drop and is logged only.
 */
static sfsistat
map_verdict(SMFICTX *ctx, struct mconn *c, enum filter_verdict v,
    struct filter_call *call, const char *who, const char *stage,
    const char *rcpt)
{
	switch (v) {
	case FILTER_CONTINUE:
		return SMFIS_CONTINUE;
	case FILTER_ACCEPT:
		/*
		 * The chain_tx is marked accepted and skips its later stages;
		 * SMFIS_ACCEPT would skip more (see the top of this file):
		 * x_eoh and x_body give it when it is the same
		 */
		return SMFIS_CONTINUE;
	case FILTER_REJECT:
	case FILTER_TEMPFAIL:
	case FILTER_DISCONNECT:
		return mhost_refuse(ctx, c,
		    v == FILTER_DISCONNECT ? FILTER_TEMPFAIL : v, call->reply,
		    who, stage, rcpt);
	case FILTER_DISCARD:
		if (c->tx == NULL) {
			mhost_log(c, "warning", stage, "DISCARD before MAIL "
			    "ignored", rcpt, who);
			return SMFIS_CONTINUE;
		}
		c->tx->final = FILTER_DISCARD;
		mhost_log(c, "discard", stage, "message discarded", rcpt, who);
		return SMFIS_DISCARD;
	case FILTER_HOLD:
		mhost_hold_note(c, call->reply, who);
		return SMFIS_CONTINUE;
	}
	return SMFIS_CONTINUE;
}

void
mhost_hold_note(struct mconn *c, const char *reply, const char *who)
{
	char *hold = c->tx != NULL ? c->tx->hold_reply : c->hold_reply;

	if (hold[0] != '\0')
		return;		/* the first HOLD's reason, like posternd */
	snprintf(hold, sizeof(c->hold_reply), "%s", reply[0] != '\0' ?
	    reply : "held");
	snprintf(c->tx != NULL ? c->tx->hold_who : c->hold_who,
	    sizeof(c->hold_who), "%s", who != NULL ? who : "");
}

/* run - one stage through the given chain state, mapped */
static sfsistat
run(SMFICTX *ctx, struct mconn *c, struct chain_tx *ctx_chain,
    struct filter_call *call, const char *stage, const char *rcpt)
{
	enum filter_verdict v;
	const char *who = NULL;

	if (!chain_has_stage(c->rt->chain, call->stage))
		return SMFIS_CONTINUE;
	v = chain_run(ctx_chain, call, &who);
	log_debug("milter", "%s: %s -> %s%s%s", stage,
	    call->arg != NULL ? call->arg : "", filter_verdict_name(v),
	    who != NULL ? " by " : "", who != NULL ? who : "");
	return map_verdict(ctx, c, v, call, who, stage, rcpt);
}

/*
 * accept_early - SMFIS_ACCEPT from end of header on, when the chain
 * accepted the message and end of message has nothing left to do
 */
static bool
accept_early(const struct mtx *tx)
{
	return tx->chain.accepted && !tx->has_forged &&
	    tx->hold_reply[0] == '\0' && tx->final != FILTER_DISCARD;
}

/* ---- the callbacks ---- */

static sfsistat
x_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
    unsigned long f2, unsigned long f3, unsigned long *pf0,
    unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
	struct mconn *c = conn_get(ctx);
	char what[160];
	unsigned missing;
	size_t i;

	*pf0 = f0 & (SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY |
	    SMFIF_ADDRCPT | SMFIF_ADDRCPT_PAR | SMFIF_DELRCPT |
	    SMFIF_QUARANTINE | SMFIF_CHGFROM | SMFIF_SETSYMLIST);
	c->offered = (unsigned)(f0 & MILTER_MAP_EDITS);
	c->addrcpt_par = (f0 & SMFIF_ADDRCPT_PAR) != 0;
	/*
	 * Once per connection, loudly: what the chain may ask for and this
	 * MTA will not do (milter_eom.c then follows each filter's failure
	 * rule: a note is dropped, a signature follows
	 * dkim_sign_failure_action, anything else tempfails)
	 */
	if ((missing = c->rt->needs & ~c->offered) != 0)
		log_warnx("the MTA does not offer the milter actions: %s; "
		    "messages that need them are tempfailed or go without "
		    "(see postern-milter(8)); offered %#lx",
		    milter_map_actions_text(missing, what, sizeof(what)), f0);
	/*
	 * Headers exactly as received (the space after the colon is the
	 * sender's, a DKIM verifier needs it); no reply per header, since
	 * the header stage runs at end of header; no body when no filter
	 * reads it and no end of message needs its size.
	 */
	*pf1 = f1 & (SMFIP_HDR_LEADSPC | SMFIP_NR_HDR | SMFIP_NOUNKNOWN);
	if (!chain_has_stage(c->rt->chain, FILTER_STAGE_BODY) &&
	    !chain_has_stage(c->rt->chain, FILTER_STAGE_EOM))
		*pf1 |= f1 & SMFIP_NOBODY;
	*pf2 = *pf3 = 0;
	c->leadspc = (*pf1 & SMFIP_HDR_LEADSPC) != 0;
	c->noreply_hdr = (*pf1 & SMFIP_NR_HDR) != 0;
	if (*pf0 & SMFIF_SETSYMLIST)
		for (i = 0; i < sizeof(host_macros) / sizeof(host_macros[0]);
		    i++)
			if (smfi_setsymlist(ctx, host_macros[i].stage,
			    (char *)host_macros[i].list) != MI_SUCCESS)
				log_warnx("smfi_setsymlist %s failed",
				    host_macros[i].list);
	log_debug("milter", "negotiate: actions %#lx/%#lx protocol "
	    "%#lx/%#lx", *pf0, f0, *pf1, f1);
	return SMFIS_CONTINUE;
}

static sfsistat
x_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *sa)
{
	struct mconn *c = conn_get(ctx);
	struct filter_call call;
	socklen_t len = 0;

	free(c->client_addr);
	free(c->client_name);
	milter_map_client(sa, hostname, &c->client_addr, &c->client_name);
	if (sa != NULL && sa->sa_family == AF_INET)
		len = sizeof(struct sockaddr_in);
	else if (sa != NULL && sa->sa_family == AF_INET6)
		len = sizeof(struct sockaddr_in6);
	c->have_sa = len > 0;
	if (c->have_sa)
		memcpy(&c->ss, sa, len);
	c->fconn.is_mynetworks = c->have_sa &&
	    c->rt->config->mynetworks != NULL &&
	    matchlist_match_addr(c->rt->config->mynetworks,
	    (const struct sockaddr *)&c->ss);
	refresh_fconn(c);
	c->hides_received = milter_map_hides_received(smfi_getsymval(ctx,
	    "v"));
	log_info("connect from %s[%s]%s", c->client_name, c->client_addr,
	    c->fconn.is_mynetworks ? " (mynetworks)" : "");
	if (log_debug_enabled("milter"))
		log_debug("milter", "connect: j=%s daemon_name=%s v=%s",
		    smfi_getsymval(ctx, "j") != NULL ?
		    smfi_getsymval(ctx, "j") : "",
		    smfi_getsymval(ctx, "{daemon_name}") != NULL ?
		    smfi_getsymval(ctx, "{daemon_name}") : "",
		    smfi_getsymval(ctx, "v") != NULL ?
		    smfi_getsymval(ctx, "v") : "");
	if (c->conn_chain.state == NULL)
		chain_tx_begin(&c->conn_chain, c->rt->chain, &c->fconn);
	mhost_call_init(c, &call, FILTER_STAGE_CONNECT);
	return run(ctx, c, &c->conn_chain, &call, "CONNECT", NULL);
}

static sfsistat
x_helo(SMFICTX *ctx, char *helo)
{
	struct mconn *c = conn_get(ctx);
	struct filter_call call;

	/* RFC 5321 4.1.4: HELO resets the transaction */
	mhost_tx_end(c);
	free(c->helo);
	c->helo = xstrdup(helo != NULL ? helo : "");
	set_macro(ctx, "{tls_version}", &c->tls_version);
	set_macro(ctx, "{cipher}", &c->tls_cipher);
	refresh_fconn(c);
	if (c->conn_chain.state == NULL)
		chain_tx_begin(&c->conn_chain, c->rt->chain, &c->fconn);
	mhost_call_init(c, &call, FILTER_STAGE_HELO);
	call.arg = c->helo;
	return run(ctx, c, &c->conn_chain, &call, "HELO", NULL);
}

static sfsistat
x_envfrom(SMFICTX *ctx, char **argv)
{
	struct mconn *c = conn_get(ctx);
	struct milter_esmtp e;
	struct filter_call call;
	struct mtx *tx;
	sfsistat st;

	mhost_tx_end(c);
	/* Postfix sends the AUTH macros with MAIL */
	set_macro(ctx, "{auth_type}", &c->sasl_method);
	set_macro(ctx, "{auth_authen}", &c->sasl_username);
	refresh_fconn(c);
	if (c->conn_chain.state == NULL)
		chain_tx_begin(&c->conn_chain, c->rt->chain, &c->fconn);
	tx = c->tx = xcalloc(1, sizeof(*tx));
	tx->sender = milter_map_address(argv != NULL ? argv[0] : NULL);
	milter_map_esmtp(argv != NULL && argv[0] != NULL ? argv + 1 : NULL,
	    &e);
	tx->ftx.size = e.size;
	tx->smtputf8 = e.smtputf8;
	tx->body_type = e.body_type;
	e.body_type = NULL;
	milter_map_esmtp_deinit(&e);
	buf_init(&tx->headers, 0);
	buf_init(&tx->view, 0);
	tx_queue_id(ctx, tx);
	if (c->hold_reply[0] != '\0')
		mhost_hold_note(c, c->hold_reply, c->hold_who);
	chain_tx_begin(&tx->chain, c->rt->chain, &c->fconn);
	tx->chain.conn = &c->conn_chain;
	mhost_call_init(c, &call, FILTER_STAGE_MAIL);
	call.arg = tx->sender;
	st = run(ctx, c, &tx->chain, &call, "MAIL", NULL);
	if (st == SMFIS_REJECT || st == SMFIS_TEMPFAIL)
		mhost_tx_end(c);
	return st;
}

static sfsistat
x_envrcpt(SMFICTX *ctx, char **argv)
{
	struct mconn *c = conn_get(ctx);
	struct mtx *tx = c->tx;
	struct milter_esmtp e;
	struct filter_call call;
	struct mrcpt *r;
	sfsistat st;

	if (tx == NULL)
		return SMFIS_CONTINUE;
	tx_queue_id(ctx, tx);
	tx->rcpts = xreallocarray(tx->rcpts, tx->nrcpts + 1,
	    sizeof(*tx->rcpts));
	tx->frcpts = xreallocarray(tx->frcpts, tx->nrcpts + 1,
	    sizeof(*tx->frcpts));
	r = &tx->rcpts[tx->nrcpts];
	memset(r, 0, sizeof(*r));
	r->address = milter_map_address(argv != NULL ? argv[0] : NULL);
	milter_map_esmtp(argv != NULL && argv[0] != NULL ? argv + 1 : NULL,
	    &e);
	r->orcpt = e.orcpt;
	r->notify = e.notify;
	e.orcpt = e.notify = NULL;
	milter_map_esmtp_deinit(&e);
	/* the filters see the candidate as the last of tx->rcpts */
	tx->frcpts[tx->nrcpts].address = r->address;
	tx->frcpts[tx->nrcpts].orcpt = r->orcpt;
	tx->frcpts[tx->nrcpts].notify = r->notify;
	mhost_call_init(c, &call, FILTER_STAGE_RCPT);
	call.arg = r->address;
	call.rcpt = &tx->frcpts[tx->nrcpts];
	st = run(ctx, c, &tx->chain, &call, "RCPT", r->address);
	if (st == SMFIS_REJECT || st == SMFIS_TEMPFAIL) {
		free(r->address);
		free(r->orcpt);
		free(r->notify);
		memset(r, 0, sizeof(*r));
		return st;
	}
	tx->nrcpts++;
	return st;
}

static sfsistat
x_data(SMFICTX *ctx)
{
	struct mconn *c = conn_get(ctx);
	struct filter_call call;

	if (c->tx == NULL)
		return SMFIS_CONTINUE;
	tx_queue_id(ctx, c->tx);
	mhost_call_init(c, &call, FILTER_STAGE_DATA);
	return run(ctx, c, &c->tx->chain, &call, "DATA",
	    c->tx->nrcpts > 0 ? c->tx->rcpts[0].address : NULL);
}

/*
 * x_header - collect the field; the HEADER stage runs at end of header,
 * over the block with forged Authentication-Results removed
 */
static sfsistat
x_header(SMFICTX *ctx, char *name, char *value)
{
	struct mconn *c = conn_get(ctx);
	size_t before;

	if (c->tx != NULL && name != NULL) {
		before = c->tx->headers.len;
		(void)milter_map_field(&c->tx->headers, name,
		    value != NULL ? value : "", c->leadspc);
		/* the field as posternd counts it: CRLF lines */
		c->tx->data_size += c->tx->headers.len - before;
	}
	return c->noreply_hdr ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

static sfsistat
x_eoh(SMFICTX *ctx)
{
	struct mconn *c = conn_get(ctx);
	struct mtx *tx = c->tx;
	struct header_list hl;
	struct filter_message view;
	struct filter_call call;
	struct buf value;
	size_t i, n;
	sfsistat st = SMFIS_CONTINUE;
	const char *rcpt;

	if (tx == NULL)
		return SMFIS_CONTINUE;
	tx_queue_id(ctx, tx);
	tx->data_size += 2;	/* the empty line ending the header block */
	rcpt = tx->nrcpts > 0 ? tx->rcpts[0].address : NULL;
	buf_reset(&tx->view);
	if (tx->headers.len > 0)
		buf_append(&tx->view, tx->headers.data, tx->headers.len);
	tx->has_forged = false;
	if ((n = auth_results_strip(&tx->view,
	    c->rt->config->authserv_id)) > 0)
		tx->has_forged = true;
	if (n > 0)
		log_info("%s: removed %zu Authentication-Results field%s "
		    "claiming to be from %s", tx->queue_id != NULL ?
		    tx->queue_id : "NOQUEUE", n, n > 1 ? "s" : "",
		    c->rt->config->authserv_id);
	if (header_list_parse(&hl, tx->view.data != NULL ? tx->view.data :
	    "", tx->view.len) == -1) {
		hl.fields = NULL;
		hl.n = 0;
	}
	buf_init(&value, 0);
	mhost_call_init(c, &call, FILTER_STAGE_HEADER);
	for (i = 0; i < hl.n && st == SMFIS_CONTINUE &&
	    chain_has_stage(c->rt->chain, FILTER_STAGE_HEADER); i++) {
		call.arg = hl.fields[i].name;
		call.value = header_field_value(&hl.fields[i], &value);
		st = run(ctx, c, &tx->chain, &call, "END-OF-HEADER", rcpt);
	}
	call.arg = call.value = NULL;
	buf_deinit(&value);
	if (st == SMFIS_CONTINUE) {
		memset(&view, 0, sizeof(view));
		view.headers = &hl;
		call.stage = FILTER_STAGE_EOH;
		call.message = &view;
		st = run(ctx, c, &tx->chain, &call, "END-OF-HEADER", rcpt);
	}
	header_list_deinit(&hl);
	if (st == SMFIS_CONTINUE && accept_early(tx)) {
		log_debug("milter", "END-OF-HEADER: accepted, nothing left "
		    "for end of message");
		return SMFIS_ACCEPT;
	}
	return st;
}

static sfsistat
x_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
	struct mconn *c = conn_get(ctx);
	struct filter_call call;
	sfsistat st;

	if (c->tx == NULL || len == 0)
		return SMFIS_CONTINUE;
	c->tx->data_size += len;	/* CRLF lines, as posternd counts */
	mhost_call_init(c, &call, FILTER_STAGE_BODY);
	call.chunk = chunk;
	call.chunk_len = len;
	st = run(ctx, c, &c->tx->chain, &call, "END-OF-MESSAGE",
	    c->tx->nrcpts > 0 ? c->tx->rcpts[0].address : NULL);
	if (st == SMFIS_CONTINUE && accept_early(c->tx))
		return SMFIS_ACCEPT;
	return st;
}

static sfsistat
x_eom(SMFICTX *ctx)
{
	struct mconn *c = conn_get(ctx);
	sfsistat st;

	if (c->tx == NULL)
		return SMFIS_CONTINUE;
	tx_queue_id(ctx, c->tx);
	/* the real size, as posternd sets it at end of message */
	c->tx->ftx.size = c->tx->data_size;
	st = mhost_eom(ctx, c);
	mhost_tx_end(c);
	return st;
}

static sfsistat
x_abort(SMFICTX *ctx)
{
	struct mconn *c = smfi_getpriv(ctx);

	if (c != NULL)
		mhost_tx_end(c);
	return SMFIS_CONTINUE;
}

static sfsistat
x_close(SMFICTX *ctx)
{
	struct mconn *c = smfi_getpriv(ctx);

	/* libmilter may call close without connect: priv may be NULL */
	if (c != NULL) {
		if (c->client_addr != NULL)
			log_info("disconnect from %s[%s]", c->client_name,
			    c->client_addr);
		conn_free(ctx, c);
	}
	return SMFIS_CONTINUE;
}

void
milter_host_desc(struct smfiDesc *d, const char *name)
{
	memset(d, 0, sizeof(*d));
	d->xxfi_name = (char *)name;
	d->xxfi_version = SMFI_VERSION;
	d->xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY |
	    SMFIF_ADDRCPT | SMFIF_ADDRCPT_PAR | SMFIF_DELRCPT |
	    SMFIF_QUARANTINE | SMFIF_CHGFROM | SMFIF_SETSYMLIST;
	d->xxfi_connect = x_connect;
	d->xxfi_helo = x_helo;
	d->xxfi_envfrom = x_envfrom;
	d->xxfi_envrcpt = x_envrcpt;
	d->xxfi_header = x_header;
	d->xxfi_eoh = x_eoh;
	d->xxfi_body = x_body;
	d->xxfi_eom = x_eom;
	d->xxfi_abort = x_abort;
	d->xxfi_close = x_close;
	d->xxfi_data = x_data;
	d->xxfi_negotiate = x_negotiate;
}

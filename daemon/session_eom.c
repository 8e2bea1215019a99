/*
 * session_eom.c - the end of a message in a server session: the content
 * filter stages (header, eoh, body, eom), the edits filters request, the
 * Received header (RFC 5321 4.4) and the durable commit to the spool.
 *
 * The content stages run as one unit of work: inline when no filter of
 * those stages may block, otherwise as one pool job with the session
 * suspended (DESIGN.md: one hand-off per stage group, never one per
 * header). Body filters read the body back from the spool file, where it
 * streamed during DATA; headers come from the block kept in memory.
 *
 * The reply to the end of data comes only after the spool file and its
 * directory are fsynced (spool_commit on the worker pool): a 250 means
 * the message survives a crash.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth_results.h"
#include "chain.h"
#include "log.h"
#include "message_edit.h"
#include "pool.h"
#include "qmgr.h"
#include "received.h"
#include "runtime.h"
#include "session-private.h"
#include "smtp_parser.h"
#include "spool.h"
#include "xmalloc.h"

#define BODY_CHUNK	(64 * 1024)	/* body bytes per BODY callback */
/*
 * Bodies up to this size are filtered on the loop when no filter blocks;
 * a larger one is read back and checked on the pool, so that body rules
 * over a 10 MB message never hold up the loop's other sessions.
 */
#define CONTENT_INLINE_MAX	(256 * 1024)

/* ---- the content stages ---- */

struct content_job {
	struct session	*s;		/* borrowed; suspended if on the pool */
	struct chain_tx	*ctx;		/* borrowed: the transaction's */
	const struct buf *headers;	/* borrowed: tx->data.headers */
	struct spool_file *spool;	/* borrowed: tx->spool */
	struct filter_call call;	/* the template; the reply comes back */
	enum filter_verdict verdict;
	const char	*who;		/* lent: the deciding filter's name */
	char		 hold_reply[512];	/* the first HOLD's reply */
};

/*
 * decided - merge one chain run's verdict into the job's: a HOLD is kept
 * while the stages go on (the message is still checked and signed);
 * anything else but CONTINUE decides. True when the stages must stop.
 */
static bool
decided(struct content_job *j, enum filter_verdict v, const char *who,
    const struct filter_call *call)
{
	if (v == FILTER_CONTINUE || (v == FILTER_HOLD &&
	    j->verdict == FILTER_HOLD))
		return false;
	j->verdict = v;
	j->who = who;
	if (v == FILTER_HOLD)
		memcpy(j->hold_reply, call->reply, sizeof(j->hold_reply));
	return v != FILTER_HOLD;
}

/*
 * run_headers - HEADER once per field, then EOH, which sees the whole
 * header block as received (call->message) - a verifier needs it exact
 */
static bool
run_headers(struct content_job *j, struct filter_call *call)
{
	const struct chain *c = j->ctx->chain;
	struct filter_message view;
	struct header_list hl;
	struct buf value;
	enum filter_verdict v;
	const char *who;
	bool stop = false;
	size_t i;

	if (!chain_has_stage(c, FILTER_STAGE_HEADER) &&
	    !chain_has_stage(c, FILTER_STAGE_EOH))
		return false;
	if (header_list_parse(&hl, j->headers->data, j->headers->len) == -1) {
		hl.fields = NULL;
		hl.n = 0;
	}
	buf_init(&value, 0);
	call->stage = FILTER_STAGE_HEADER;
	for (i = 0; i < hl.n && !stop &&
	    chain_has_stage(c, FILTER_STAGE_HEADER); i++) {
		call->arg = hl.fields[i].name;
		call->value = header_field_value(&hl.fields[i], &value);
		v = chain_run(j->ctx, call, &who);
		stop = decided(j, v, who, call);
	}
	call->arg = call->value = NULL;
	buf_deinit(&value);
	if (!stop) {
		view.headers = &hl;
		view.body = NULL;
		view.read_body = NULL;
		view.read_body_ctx = NULL;
		call->stage = FILTER_STAGE_EOH;
		call->message = &view;
		v = chain_run(j->ctx, call, &who);
		stop = decided(j, v, who, call);
		call->message = NULL;
	}
	header_list_deinit(&hl);
	return stop;
}

/* run_body - BODY in chunks read back from the spool file */
static bool
run_body(struct content_job *j, struct filter_call *call)
{
	enum filter_verdict v;
	const char *error, *who;
	size_t off = 0, got;
	bool stop = false;
	char *chunk;

	if (!chain_has_stage(j->ctx->chain, FILTER_STAGE_BODY))
		return false;
	chunk = xmalloc(BODY_CHUNK);
	call->stage = FILTER_STAGE_BODY;
	while (!stop) {
		if (spool_read_body(j->spool, off, chunk, BODY_CHUNK, &got,
		    &error) == -1) {
			log_warnx("%s: %s", spool_file_queue_id(j->spool), error);
			snprintf(call->reply, sizeof(call->reply),
			    "451 4.3.0 Error: queue file read error");
			stop = decided(j, FILTER_TEMPFAIL, NULL, call);
			break;
		}
		if (got == 0)
			break;
		call->chunk = chunk;
		call->chunk_len = got;
		v = chain_run(j->ctx, call, &who);
		stop = decided(j, v, who, call);
		off += got;
	}
	call->chunk = NULL;
	call->chunk_len = 0;
	free(chunk);
	return stop;
}

/* read_spool_body - filter_message.read_body over the spool file */
static int
read_spool_body(void *ctx, size_t off, void *dst, size_t len, size_t *got_r,
    const char **error_r)
{
	return spool_read_body(ctx, off, dst, len, got_r, error_r);
}

/*
 * run_eom - EOM with a view of the message that follows the edits of
 * each filter, for the filters after it (dkim signs what is sent)
 */
static void
run_eom(struct content_job *j, struct filter_call *call,
    struct filter_edits *edits)
{
	struct filter_message view;
	struct header_list hl;
	enum filter_verdict v;
	const char *who;

	if (!chain_has_stage(j->ctx->chain, FILTER_STAGE_EOM))
		return;
	if (header_list_parse(&hl, j->headers->data, j->headers->len) == -1) {
		hl.fields = NULL;
		hl.n = 0;
	}
	view.headers = &hl;
	view.body = NULL;
	view.read_body = read_spool_body;
	view.read_body_ctx = j->spool;
	call->stage = FILTER_STAGE_EOM;
	call->edits = edits;
	/* two statements: who is set by the call, not before it */
	v = chain_run_eom(j->ctx, call, &view, &who);
	(void)decided(j, v, who, call);
	header_list_deinit(&hl);
	if (view.body != NULL) {
		buf_deinit(view.body);
		free(view.body);
	}
}

static void
content_work(void *arg)
{
	struct content_job *j = arg;
	struct filter_call call = j->call;
	struct filter_edits *edits = call.edits;

	call.edits = NULL;	/* only the EOM stage may edit */
	j->verdict = FILTER_CONTINUE;
	j->who = NULL;
	if (!run_headers(j, &call) && !run_body(j, &call))
		run_eom(j, &call, edits);
	if (j->verdict == FILTER_HOLD)
		memcpy(j->call.reply, j->hold_reply, sizeof(j->hold_reply));
	else
		memcpy(j->call.reply, call.reply, sizeof(call.reply));
}

static void eom_go(struct session *, enum filter_verdict,
    struct filter_call *, const char *);

static void
content_done(void *arg)
{
	struct content_job *j = arg;
	struct session *s = j->s;

	if (!session_resume_begin(s)) {
		free(j);
		return;
	}
	eom_go(s, j->verdict, &j->call, j->who);
	free(j);
	session_resume_end(s);
}

/* content_may_block - some filter of the content stages may block */
static bool
content_may_block(const struct chain *c)
{
	return chain_stage_may_block(c, FILTER_STAGE_HEADER) ||
	    chain_stage_may_block(c, FILTER_STAGE_EOH) ||
	    chain_stage_may_block(c, FILTER_STAGE_BODY) ||
	    chain_stage_may_block(c, FILTER_STAGE_EOM);
}

void
session_eom(struct session *s)
{
	struct transaction *tx = s->tx;
	struct content_job *j;
	size_t n;

	session_set_state(s, SMTP_STATE_RCPT);
	if (tx->data.error != SMTP_DATA_OK) {
		session_reject_content(s,
		    smtp_data_error_reply(tx->data.error));
		return;
	}
	tx->ftx.size = tx->data.size;
	if ((n = auth_results_strip(&tx->data.headers,
	    s->cfg->authserv_id)) > 0)
		log_info("%s: removed %zu Authentication-Results field%s "
		    "claiming to be from %s", tx->queue_id, n, n > 1 ? "s" : "",
		    s->cfg->authserv_id);
	j = xcalloc(1, sizeof(*j));
	j->s = s;
	j->ctx = &tx->chain;
	j->headers = &tx->data.headers;
	j->spool = tx->spool;
	session_filter_call_init(s, &j->call, FILTER_STAGE_EOM);
	filter_edits_deinit(&tx->edits);
	j->call.edits = &tx->edits;
	if (!content_may_block(s->rt->chain) &&
	    (tx->data.size <= CONTENT_INLINE_MAX ||
	    !chain_has_stage(s->rt->chain, FILTER_STAGE_BODY))) {
		content_work(j);
		eom_go(s, j->verdict, &j->call, j->who);
		free(j);
		return;
	}
	session_suspend(s);
	pool_submit_filter(s->loop, content_work, content_done, j);
}

/* ---- edits ---- */

/* already_listed - addr is one of the first n (copies are sent once) */
static bool
already_listed(const struct tx_rcpt *rcpts, size_t n, const char *addr)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcasecmp(rcpts[i].address, addr) == 0)
			return true;
	return false;
}

/* given_dsn - the DSN parameters an edit gave rcpt, taken over */
static void
given_dsn(struct tx_rcpt *rcpt, struct edit_dsn *d)
{
	rcpt->orcpt = d->orcpt;
	d->orcpt = NULL;
	rcpt->notify = d->notify;
	rcpt->notify_text = smtp_notify_text(d->notify);
}

/*
 * take_recipients - the edited recipient list becomes the transaction's;
 * recipients that stay keep their DSN parameters unless the edit that
 * added them gave new ones, duplicates go
 */
static void
take_recipients(struct transaction *tx, struct edit_envelope *env)
{
	struct tx_rcpt *rcpts;
	size_t i, k, n = 0;

	rcpts = xcalloc(env->nrcpts + 1, sizeof(*rcpts));
	for (i = 0; i < env->nrcpts; i++) {
		if (already_listed(rcpts, n, env->rcpts[i]))
			continue;
		rcpts[n].address = env->rcpts[i];
		env->rcpts[i] = NULL;
		if (env->dsn != NULL && env->dsn[i].given) {
			given_dsn(&rcpts[n++], &env->dsn[i]);
			continue;
		}
		for (k = 0; k < tx->nrcpts; k++) {
			if (tx->rcpts[k].address == NULL ||
			    strcmp(tx->rcpts[k].address, rcpts[n].address) != 0)
				continue;
			rcpts[n].orcpt = tx->rcpts[k].orcpt;
			rcpts[n].notify = tx->rcpts[k].notify;
			rcpts[n].notify_text = tx->rcpts[k].notify_text;
			tx->rcpts[k].orcpt = NULL;
			tx->rcpts[k].notify_text = NULL;
			free(tx->rcpts[k].address);
			tx->rcpts[k].address = NULL;
			break;
		}
		n++;
	}
	for (k = 0; k < tx->nrcpts; k++) {
		free(tx->rcpts[k].address);
		free(tx->rcpts[k].orcpt);
		free(tx->rcpts[k].notify_text);
	}
	free(tx->rcpts);
	tx->rcpts = rcpts;
	tx->nrcpts = n;
	free(tx->frcpts);
	tx->frcpts = xcalloc(n + 1, sizeof(*tx->frcpts));
	for (i = 0; i < n; i++) {
		tx->frcpts[i].address = tx->rcpts[i].address;
		tx->frcpts[i].orcpt = tx->rcpts[i].orcpt;
		tx->frcpts[i].notify = tx->rcpts[i].notify_text;
	}
}

/* take_sender - the edited sender, RET= and ENVID= become the tx's */
static void
take_sender(struct transaction *tx, struct edit_envelope *env)
{
	free(tx->sender);
	tx->sender = env->sender;
	env->sender = NULL;
	if (env->ret != NULL) {
		free(tx->ret);
		tx->ret = env->ret;
		env->ret = NULL;
	}
	if (env->envid != NULL) {
		free(tx->envid);
		tx->envid = env->envid;
		env->envid = NULL;
	}
}

/*
 * apply_edits - header and envelope edits to the transaction; a body
 * replacement goes to *body_r for the commit job. -1 (logged) if the
 * filters asked for something that would corrupt the message.
 */
static int
apply_edits(struct session *s, struct buf **body_r)
{
	struct transaction *tx = s->tx;
	struct header_list hl;
	struct edit_envelope env;
	const char *error;
	size_t i;
	int rc;

	*body_r = NULL;
	if (tx->edits.head == NULL)
		return 0;
	if (header_list_parse(&hl, tx->data.headers.data,
	    tx->data.headers.len) == -1) {
		hl.fields = NULL;
		hl.n = 0;
	}
	edit_envelope_init(&env, tx->sender, tx->nrcpts);
	for (i = 0; i < tx->nrcpts; i++)
		env.rcpts[i] = xstrdup(tx->rcpts[i].address);
	rc = message_edit_apply(&tx->edits, &hl, &env, body_r, &error);
	if (rc == -1)
		log_warnx("%s: filter edits refused: %s", tx->queue_id, error);
	else {
		buf_reset(&tx->data.headers);
		header_list_format(&hl, &tx->data.headers);
		take_sender(tx, &env);
		take_recipients(tx, &env);
	}
	header_list_deinit(&hl);
	edit_envelope_deinit(&env);
	if (rc == -1 && *body_r != NULL) {
		buf_deinit(*body_r);
		free(*body_r);
		*body_r = NULL;
	}
	return rc;
}

/* ---- commit ---- */

struct commit_job {
	struct session	*s;		/* borrowed; suspended meanwhile */
	struct spool_file *spool;	/* owned until committed */
	struct spool_envelope env;	/* owned */
	struct buf	 headers;	/* owned: Received + header block */
	struct buf	*new_body;	/* owned; a filter's replacement */
	enum spool_state target;
	int		 rc;
	int		 saved_errno;
	char		 error[256];
};

static void
commit_work(void *arg)
{
	struct commit_job *j = arg;
	const char *error = NULL;

	if (j->new_body != NULL && spool_replace_body(j->spool,
	    j->new_body->data, j->new_body->len, &error) == -1) {
		j->rc = -1;
		j->saved_errno = errno;
		snprintf(j->error, sizeof(j->error), "%s", error);
		return;
	}
	j->rc = spool_commit(&j->spool, &j->env, j->headers.data,
	    j->headers.len, j->target, &error);
	j->saved_errno = errno;
	if (j->rc == -1)
		snprintf(j->error, sizeof(j->error), "%s",
		    error != NULL ? error : "unknown error");
}

static void
commit_job_free(struct commit_job *j)
{
	spool_abort(&j->spool);
	spool_envelope_deinit(&j->env);
	buf_deinit(&j->headers);
	if (j->new_body != NULL) {
		buf_deinit(j->new_body);
		free(j->new_body);
	}
	free(j);
}

static void
commit_done(void *arg)
{
	struct commit_job *j = arg;
	struct session *s = j->s;
	char qid[QUEUE_ID_MAX];

	snprintf(qid, sizeof(qid), "%s", j->env.queue_id);
	if (j->rc == 0 && j->target == SPOOL_QUEUE)
		qmgr_notify(qid);
	else if (j->rc == 0)
		log_info("%s: hold: message held by a filter", qid);
	else
		log_warnx("%s: cannot commit queue file: %s", qid, j->error);
	if (!session_resume_begin(s)) {
		/* the client is gone; a committed message is still queued */
		commit_job_free(j);
		return;
	}
	if (j->rc == 0) {
		session_reply(s, "250 2.0.0 Ok: queued as %s", qid);
		s->tx->completed = true;
	}
	else
		session_reply(s, j->saved_errno == ENOSPC ?
		    "452 4.3.1 Insufficient system storage" :
		    "451 4.3.0 Error: queue file write error");
	commit_job_free(j);
	session_tx_free(s);
	session_set_state(s, SMTP_STATE_READY);
	session_resume_end(s);
}

/* build_envelope - the spool's copy of the transaction */
static void
build_envelope(struct session *s, struct spool_envelope *env)
{
	struct transaction *tx = s->tx;
	size_t i;

	spool_envelope_init(env);
	snprintf(env->queue_id, sizeof(env->queue_id), "%s", tx->queue_id);
	env->arrival = time(NULL);
	env->sender = xstrdup(tx->sender);
	env->envid = tx->envid != NULL ? xstrdup(tx->envid) : NULL;
	env->ret = tx->ret != NULL ? xstrdup(tx->ret) : NULL;
	/*
	 * What the content is, not what the client declared: clients say
	 * BODY=8BITMIME for plain ASCII, and raw 8-bit arrives undeclared.
	 * Delivery refuses only real 8-bit content to a 7-bit next hop.
	 */
	if (tx->data.eight_bit)
		env->body_type = xstrdup("8BITMIME");
	else if (tx->body_type != NULL &&
	    strcmp(tx->body_type, "7BIT") == 0)
		env->body_type = xstrdup("7BIT");
	env->smtputf8 = tx->smtputf8;
	env->client_addr = xstrdup(s->addr);
	env->client_name = xstrdup(s->name);
	env->helo = xstrdup(s->helo != NULL ? s->helo : "");
	env->sasl_username = s->sasl_username != NULL ?
	    xstrdup(s->sasl_username) : NULL;
	for (i = 0; i < tx->nrcpts; i++)
		spool_envelope_add_rcpt(env, tx->rcpts[i].address,
		    tx->rcpts[i].orcpt, tx->rcpts[i].notify);
}

/* add_received - the trace header goes first (RFC 5321 4.4) */
static void
add_received(struct session *s, struct buf *out)
{
	struct transaction *tx = s->tx;
	struct received_info ri;

	memset(&ri, 0, sizeof(ri));
	ri.helo = s->helo;
	ri.client_name = strcmp(s->name, "unknown") == 0 ? NULL : s->name;
	ri.client_addr = s->addr;
	ri.by = s->cfg->myhostname;
	ri.esmtp = s->esmtp;
	ri.tls = s->tls;
	ri.auth = s->sasl_username != NULL;
	ri.smtputf8 = tx->smtputf8;
	ri.tls_version = s->tls_version;
	ri.tls_cipher = s->tls_cipher;
	ri.tls_bits = s->tls_bits;
	ri.tls_alg_bits = s->tls_alg_bits;
	ri.queue_id = tx->queue_id;
	ri.rcpt = tx->nrcpts == 1 ? tx->rcpts[0].address : NULL;
	ri.nrcpt = tx->nrcpts;
	ri.date = time(NULL);
	if (received_build(out, &ri) == -1)
		log_warnx("%s: cannot build the Received header",
		    tx->queue_id);
}

/* log_hold - why a filter held the message (its reply text, its name) */
static void
log_hold(struct session *s, const struct filter_call *call, const char *who)
{
	struct transaction *tx = s->tx;
	char why[sizeof(call->reply)];

	log_escape(why, sizeof(why), call->reply[0] != '\0' ? call->reply :
	    "held");
	log_info("%s: hold: END-OF-MESSAGE from %s: %s; from=<%s> to=<%s>%s%s",
	    tx->queue_id, s->ident, why, tx->sender,
	    tx->nrcpts > 0 ? tx->rcpts[0].address : "",
	    who != NULL ? " filter=" : "", who != NULL ? who : "");
}

static void
eom_go(struct session *s, enum filter_verdict v, struct filter_call *call,
    const char *who)
{
	struct transaction *tx = s->tx;
	struct commit_job *j;
	struct buf *new_body;

	if (v == FILTER_REJECT || v == FILTER_TEMPFAIL ||
	    v == FILTER_DISCONNECT) {
		session_log_reject(s, "END-OF-MESSAGE", call->reply,
		    tx->nrcpts > 0 ? tx->rcpts[0].address : NULL, who);
		session_reply_text(s, call->reply);
		session_tx_free(s);
		if (v == FILTER_DISCONNECT)
			session_close(s);
		else
			session_set_state(s, SMTP_STATE_READY);
		return;
	}
	if (v == FILTER_DISCARD || tx->final == FILTER_DISCARD) {
		log_info("%s: discard: END-OF-MESSAGE from %s: %s%s%s",
		    tx->queue_id, s->ident, "message discarded",
		    who != NULL ? " by filter " : "", who != NULL ? who : "");
		session_reply(s, "250 2.0.0 Ok: queued as %s", tx->queue_id);
		tx->completed = true;
		session_tx_free(s);
		session_set_state(s, SMTP_STATE_READY);
		return;
	}
	if (apply_edits(s, &new_body) == -1) {
		session_log_reject(s, "END-OF-MESSAGE",
		    "451 4.3.0 Error: filter edits failed",
		    tx->nrcpts > 0 ? tx->rcpts[0].address : NULL, NULL);
		session_reply(s, "451 4.3.0 Error: filter edits failed");
		session_tx_free(s);
		session_set_state(s, SMTP_STATE_READY);
		return;
	}
	j = xcalloc(1, sizeof(*j));
	j->s = s;
	j->new_body = new_body;
	j->target = v == FILTER_HOLD || tx->final == FILTER_HOLD ?
	    SPOOL_HOLD : SPOOL_QUEUE;
	if (v == FILTER_HOLD)
		log_hold(s, call, who);
	buf_init(&j->headers, 0);
	add_received(s, &j->headers);
	buf_append(&j->headers, tx->data.headers.data, tx->data.headers.len);
	build_envelope(s, &j->env);
	j->spool = tx->spool;
	tx->spool = NULL;
	session_suspend(s);
	pool_submit(s->loop, commit_work, commit_done, j);
}

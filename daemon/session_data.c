/*
 * session_data.c - the content phase of a server session: DATA (RFC 5321
 * 4.1.1.4) and BDAT (RFC 3030), end-of-message filters, the Received
 * header (RFC 5321 4.4) and the durable commit to the spool.
 *
 * The reply to the end of data comes only after the spool file and its
 * directory are fsynced (spool_commit on the worker pool): a 250 means the
 * message survives a crash.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "log.h"
#include "pool.h"
#include "qmgr.h"
#include "received.h"
#include "runtime.h"
#include "session-private.h"
#include "spool.h"
#include "xmalloc.h"

static int
body_sink(void *arg, const char *p, size_t n)
{
	struct transaction *tx = arg;
	const char *error;

	return spool_write_body(tx->spool, p, n, &error);
}

/* open_spool - create the queue file; false (replied) on failure */
static bool
open_spool(struct session *s)
{
	struct transaction *tx = s->tx;
	struct smtp_data_limits lim;
	const char *error;

	if (tx->spool != NULL)
		return true;
	if ((tx->spool = spool_create(s->cfg->queue_directory, &error)) ==
	    NULL) {
		log_warnx("NOQUEUE: cannot create queue file: %s", error);
		session_reply(s, errno == ENOSPC ?
		    "452 4.3.1 Insufficient system storage" :
		    "451 4.3.0 Error: queue file write error");
		return false;
	}
	snprintf(tx->queue_id, sizeof(tx->queue_id), "%s",
	    spool_file_queue_id(tx->spool));
	tx->data_deadline = time(NULL) + s->cfg->smtpd_data_timeout;
	if (s->sasl_username != NULL)
		log_info("%s: client=%s, sasl_method=%s, sasl_username=%s",
		    tx->queue_id, s->ident, s->sasl_method, s->sasl_username);
	else
		log_info("%s: client=%s", tx->queue_id, s->ident);
	memset(&lim, 0, sizeof(lim));
	lim.max_size = s->cfg->message_size_limit;
	lim.max_line = s->cfg->line_length_limit;
	lim.max_header = s->cfg->header_size_limit;
	lim.max_header_count = s->cfg->header_count_limit;
	lim.max_hops = 50;	/* Postfix hopcount_limit */
	smtp_data_init(&tx->data, SMTP_DATA_DOT, &lim, body_sink, tx);
	return true;
}

static void
data_go(struct session *s, enum filter_verdict v, struct filter_call *call,
    const char *who)
{
	if (v == FILTER_REJECT || v == FILTER_TEMPFAIL ||
	    v == FILTER_DISCONNECT) {
		session_log_reject(s, "DATA", call->reply, NULL, who);
		session_reply_text(s, call->reply);
		if (v == FILTER_DISCONNECT)
			session_close(s);
		else {
			session_tx_free(s);
			session_set_state(s, SMTP_STATE_READY);
		}
		return;
	}
	if (v == FILTER_DISCARD || v == FILTER_HOLD)
		s->tx->final = v;
	s->tx->data.mode = SMTP_DATA_DOT;
	session_set_state(s, SMTP_STATE_DATA);
	session_reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

void
session_data_begin(struct session *s)
{
	struct filter_call call;

	if (!open_spool(s)) {
		session_tx_free(s);
		session_set_state(s, SMTP_STATE_READY);
		return;
	}
	s->tx->data_started = true;
	session_filter_call_init(s, &call, FILTER_STAGE_DATA);
	session_run_stage(s, &s->tx->chain, &call, data_go);
}

void
session_bdat_begin(struct session *s, size_t size, bool last)
{
	struct transaction *tx = s->tx;

	session_set_state(s, SMTP_STATE_BDAT);
	if (!tx->data_started && !tx->bdat_failed) {
		tx->data_started = true;
		if (!open_spool(s)) {
			/* already replied; the chunk must still be read */
			tx->bdat_failed = true;
			tx->bdat_replied = true;
		} else
			tx->data.mode = SMTP_DATA_CHUNK;
	}
	tx->bdat_remaining = size;
	tx->bdat_last = last;
}

static void session_eom(struct session *);

/* reject_content - answer a refused message and end the transaction */
static void
reject_content(struct session *s, const char *reply)
{
	session_log_reject(s, "END-OF-MESSAGE", reply, NULL, NULL);
	session_reply_text(s, reply);
	session_tx_free(s);
	session_set_state(s, SMTP_STATE_READY);
}

/* feed_input - feed up to max bytes from in; returns bytes consumed */
static size_t
feed_input(struct smtp_data *d, struct evbuffer *in, size_t max)
{
	struct evbuffer_iovec v[8];
	size_t used = 0, n, got;
	int i, nv;

	nv = evbuffer_peek(in, (ev_ssize_t)max, NULL, v, 8);
	for (i = 0; i < nv && i < 8 && used < max; i++) {
		n = v[i].iov_len;
		if (n > max - used)
			n = max - used;
		got = smtp_data_feed(d, v[i].iov_base, n);
		used += got;
		if (got < n || d->done)
			break;
	}
	evbuffer_drain(in, used);
	return used;
}

/* data_input_dot - DATA: returns false when more input is needed */
static bool
data_input_dot(struct session *s, struct evbuffer *in)
{
	struct transaction *tx = s->tx;
	size_t avail = evbuffer_get_length(in);

	if (avail == 0)
		return false;
	feed_input(&tx->data, in, avail);
	if (tx->data.error == SMTP_DATA_BARE_EOL) {
		/*
		 * We cannot know where this client thinks the data ends, so
		 * nothing after this point may be read as a command.
		 */
		session_log_reject(s, "DATA", smtp_data_error_reply(
		    SMTP_DATA_BARE_EOL), NULL, NULL);
		session_reply_text(s, smtp_data_error_reply(
		    SMTP_DATA_BARE_EOL));
		session_close(s);
		return false;
	}
	if (!tx->data.done)
		return false;
	session_eom(s);
	return true;
}

void
session_bdat_discard(struct session *s, size_t size, const char *reply)
{
	s->discarding = true;
	s->discard_bytes = size;
	s->discard_reply = reply;
	s->discard_state = s->state;
	session_set_state(s, SMTP_STATE_BDAT);
}

/* data_input_discard - a BDAT chunk that cannot be accepted */
static bool
data_input_discard(struct session *s, struct evbuffer *in)
{
	size_t n = evbuffer_get_length(in);

	if (n > s->discard_bytes)
		n = s->discard_bytes;
	evbuffer_drain(in, n);
	s->discard_bytes -= n;
	if (s->discard_bytes > 0)
		return false;
	session_reply_text(s, s->discard_reply);
	s->discard_reply = NULL;
	s->discarding = false;
	session_set_state(s, s->discard_state);
	session_error(s);
	return true;
}

/* data_input_chunk - BDAT: returns false when more input is needed */
static bool
data_input_chunk(struct session *s, struct evbuffer *in)
{
	struct transaction *tx = s->tx;
	size_t n = evbuffer_get_length(in), used;

	if (n > tx->bdat_remaining)
		n = tx->bdat_remaining;
	if (tx->bdat_failed || tx->data.error == SMTP_DATA_BARE_EOL) {
		evbuffer_drain(in, n);
		used = n;
	} else
		used = feed_input(&tx->data, in, n);
	if (used < n) {			/* stopped on a bare CR/LF */
		evbuffer_drain(in, n - used);
		used = n;
	}
	tx->bdat_remaining -= used;
	if (tx->bdat_remaining > 0)
		return false;
	if (!tx->bdat_failed && tx->data.error == SMTP_DATA_BARE_EOL)
		tx->bdat_failed = true;
	if (tx->bdat_failed) {
		/* RFC 3030 2: a failed chunk fails the transaction */
		if (!tx->bdat_replied)
			session_reply_text(s, tx->data.error != SMTP_DATA_OK ?
			    smtp_data_error_reply(tx->data.error) :
			    "554 5.5.0 Error: transaction failed");
		tx->bdat_replied = false;
		if (tx->bdat_last) {
			session_tx_free(s);
			session_set_state(s, SMTP_STATE_READY);
		} else
			session_set_state(s, SMTP_STATE_RCPT);
		return true;
	}
	if (!tx->bdat_last) {
		session_set_state(s, SMTP_STATE_RCPT);
		session_reply(s, "250 2.0.0 Ok: %zu octets received",
		    tx->data.size);
		return true;
	}
	smtp_data_finish(&tx->data);
	session_eom(s);
	return true;
}

bool
session_data_input(struct session *s, struct evbuffer *in)
{
	if (s->discarding)
		return data_input_discard(s, in);
	if (s->state == SMTP_STATE_DATA)
		return data_input_dot(s, in);
	return data_input_chunk(s, in);
}

/* ---- end of message: filters, Received, commit ---- */

struct commit_job {
	struct session	*s;		/* borrowed; suspended meanwhile */
	struct spool_file *spool;	/* owned until committed */
	struct spool_envelope env;	/* owned */
	struct buf	 headers;	/* owned: Received + header block */
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
	if (tx->body_type != NULL)
		env->body_type = xstrdup(tx->body_type);
	else if (tx->data.eight_bit)
		env->body_type = xstrdup("8BITMIME");
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

static void
eom_go(struct session *s, enum filter_verdict v, struct filter_call *call,
    const char *who)
{
	struct transaction *tx = s->tx;
	struct commit_job *j;

	if (v == FILTER_REJECT || v == FILTER_TEMPFAIL ||
	    v == FILTER_DISCONNECT) {
		session_log_reject(s, "END-OF-MESSAGE", call->reply, NULL, who);
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
	/* XXX #3: header edits requested at eom are applied with the
	 * content filters (no filter of this issue edits) */
	j = xcalloc(1, sizeof(*j));
	j->s = s;
	j->target = v == FILTER_HOLD || tx->final == FILTER_HOLD ?
	    SPOOL_HOLD : SPOOL_QUEUE;
	buf_init(&j->headers, 0);
	add_received(s, &j->headers);
	buf_append(&j->headers, tx->data.headers.data, tx->data.headers.len);
	build_envelope(s, &j->env);
	j->spool = tx->spool;
	tx->spool = NULL;
	session_suspend(s);
	pool_submit(s->loop, commit_work, commit_done, j);
}

static void
session_eom(struct session *s)
{
	struct transaction *tx = s->tx;
	struct filter_call call;

	session_set_state(s, SMTP_STATE_RCPT);
	if (tx->data.error != SMTP_DATA_OK) {
		reject_content(s, smtp_data_error_reply(tx->data.error));
		return;
	}
	session_filter_call_init(s, &call, FILTER_STAGE_EOM);
	filter_edits_init(&tx->edits);
	call.edits = &tx->edits;
	tx->ftx.size = tx->data.size;
	session_run_stage(s, &tx->chain, &call, eom_go);
}

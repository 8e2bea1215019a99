/*
 * session_data.c - the content phase of a server session: DATA (RFC 5321
 * 4.1.1.4) and BDAT (RFC 3030): reading the content into the spool.
 *
 * What happens at the end of the content (filters, edits, the Received
 * header, the durable commit) is in session_eom.c.
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

/* reject_content - answer a refused message and end the transaction */
void
session_reject_content(struct session *s, const char *reply)
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

/*
 * milter_eom.c - end of message for the milters filter: to each milter
 * in turn the header block and the body as the filters before
 * "milters" left them (a second milter sees the first's edits), then
 * end of body, whose modifications become filter edits for the filters
 * after "milters" (dkim signs what the milters made). Quarantine holds
 * the message, a discard asked earlier discards it.
 *
 * It owns, for the length of one call, its copy of the header and body
 * once a milter has edited them, and the edit map of each milter. The
 * packets are milter_proto.c's, the verdicts milter_verdict.c's.
 *
 * Reference: the libmilter protocol, version 6 (SMFIC_HEADER, EOH,
 * BODY, BODYEOB and the modification replies); Postfix milter8.c for the
 * order of milters and their edits.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "message_edit.h"
#include "milter-private.h"
#include "xmalloc.h"

/* the message as one milter is to see it at end of message */
struct eom_view {
	const struct header_list *headers;	/* borrowed */
	const struct buf *body;		/* borrowed; NULL: read_body */
	const struct filter_message *msg;	/* borrowed: the chain's */
};

/* packets without reply are written once they make this much */
#define FLUSH_AT	65536

/*
 * flush - out (packets of command cmd that get no reply) written if it
 * has FLUSH_AT bytes or more: a big message is never all in memory
 */
static enum milter_result
flush(struct milter_conn *m, struct buf *out, char cmd,
    struct milter_answer *a, const char **error_r)
{
	enum milter_result res;

	if (out->len < FLUSH_AT)
		return MILTER_RES_CONTINUE;
	res = milter_conn_command(m, out, cmd,
	    m->spec->content_timeout * 1000, NULL, a, error_r);
	buf_reset(out);
	return res;
}

/*
 * send_content - headers, EOH, body and end of body to one milter, then
 * its final answer. Packets that get no reply (NR_HDR, NR_BODY ...) go
 * out together with the next that does: one write per round trip, or
 * per FLUSH_AT bytes.
 */
static enum milter_result
send_content(const struct milters *in, struct milter_conn *m,
    const struct milter_macro_set *mac, const struct eom_view *view,
    struct milter_edit_map *map, struct milter_answer *a, char *cmd_r,
    const char **error_r)
{
	struct buf out, value;
	enum milter_result res = MILTER_RES_CONTINUE;
	bool leadspc = (m->neg.protocol & MILTER_P_HDR_LEADSPC) != 0;
	bool skip = false;
	char chunk[MILTER_CHUNK_SIZE];
	const char *data;
	size_t i, off, got;

	buf_init(&out, 0);
	buf_init(&value, 0);
	*cmd_r = MILTER_CMD_HEADER;
	for (i = 0; i < view->headers->n &&
	    milter_neg_sends(&m->neg, MILTER_CMD_HEADER); i++) {
		(void)milter_pkt_header(&out, view->headers->fields[i].name,
		    header_field_raw_value(&view->headers->fields[i], &value),
		    leadspc, error_r);
		if (!milter_neg_expects_reply(&m->neg, MILTER_CMD_HEADER)) {
			if ((res = flush(m, &out, MILTER_CMD_HEADER, a,
			    error_r)) != MILTER_RES_CONTINUE)
				goto out;
			continue;
		}
		res = milter_conn_command(m, &out, MILTER_CMD_HEADER,
		    m->spec->content_timeout * 1000, NULL, a, error_r);
		buf_reset(&out);
		if (res != MILTER_RES_CONTINUE)
			goto out;
	}
	*cmd_r = MILTER_CMD_EOH;
	milter_macros_add(&out, in, m, mac, MILTER_MACROS_EOH, MILTER_CMD_EOH);
	if (milter_neg_sends(&m->neg, MILTER_CMD_EOH))
		(void)milter_pkt_simple(&out, MILTER_CMD_EOH, error_r);
	if (milter_neg_sends(&m->neg, MILTER_CMD_EOH) &&
	    milter_neg_expects_reply(&m->neg, MILTER_CMD_EOH)) {
		res = milter_conn_command(m, &out, MILTER_CMD_EOH,
		    m->spec->content_timeout * 1000, NULL, a, error_r);
		buf_reset(&out);
		if (res != MILTER_RES_CONTINUE)
			goto out;
	}
	*cmd_r = MILTER_CMD_BODY;
	for (off = 0; !skip && milter_neg_sends(&m->neg, MILTER_CMD_BODY);
	    off += got) {
		if (view->body != NULL) {
			got = view->body->len - off;
			if (got > MILTER_CHUNK_SIZE)
				got = MILTER_CHUNK_SIZE;
			data = view->body->data + off;
		} else if (view->msg->read_body == NULL) {
			/* never let a message pass unseen */
			*error_r = "the body cannot be read back";
			res = MILTER_RES_FAILED;
			milter_conn_close(m);
			goto out;
		} else {
			if (view->msg->read_body(view->msg->read_body_ctx,
			    off, chunk, sizeof(chunk), &got, error_r) == -1) {
				res = MILTER_RES_FAILED;
				milter_conn_close(m);
				goto out;
			}
			data = chunk;
		}
		if (got == 0)
			break;
		(void)milter_pkt_body(&out, data, got, error_r);
		if (!milter_neg_expects_reply(&m->neg, MILTER_CMD_BODY)) {
			if ((res = flush(m, &out, MILTER_CMD_BODY, a,
			    error_r)) != MILTER_RES_CONTINUE)
				goto out;
			continue;
		}
		res = milter_conn_command(m, &out, MILTER_CMD_BODY,
		    m->spec->content_timeout * 1000, NULL, a, error_r);
		buf_reset(&out);
		if (res == MILTER_RES_SKIP)
			skip = true;
		else if (res != MILTER_RES_CONTINUE)
			goto out;
	}
	*cmd_r = MILTER_CMD_BODYEOB;
	milter_macros_add(&out, in, m, mac, MILTER_MACROS_EOM,
	    MILTER_CMD_BODYEOB);
	(void)milter_pkt_simple(&out, MILTER_CMD_BODYEOB, error_r);
	res = milter_conn_command(m, &out, MILTER_CMD_BODYEOB,
	    m->spec->content_timeout * 1000, map, a, error_r);
out:
	buf_deinit(&out);
	buf_deinit(&value);
	return res;
}

/* splice - append the edits of from to to (from ends empty) */
static void
splice(struct filter_edits *to, struct filter_edits *from)
{
	if (from->head == NULL)
		return;
	*to->tail = from->head;
	to->tail = from->tail;
	filter_edits_init(from);
}

/*
 * view_update - a milter's edits applied to our copy of the message, so
 * that the next milter sees them
 */
static int
view_update(struct eom_view *view, struct header_list *own_hl,
    struct buf **own_body, const struct filter_edits *edits,
    const struct filter_tx *tx, const char **error_r)
{
	struct header_list hl = { NULL, 0 };
	struct edit_envelope env;
	struct buf block, *body = NULL;
	size_t i;
	int rc;

	buf_init(&block, 0);
	header_list_format(view->headers, &block);
	if (block.len > 0 && header_list_parse(&hl, block.data,
	    block.len) == -1) {
		buf_deinit(&block);
		*error_r = "cannot copy the header";
		return -1;
	}
	buf_deinit(&block);
	edit_envelope_init(&env, tx->sender, tx->nrcpts);
	for (i = 0; i < tx->nrcpts; i++)
		env.rcpts[i] = xstrdup(tx->rcpts[i].address);
	rc = message_edit_apply(edits, &hl, &env, &body, error_r);
	edit_envelope_deinit(&env);
	if (rc == -1) {
		header_list_deinit(&hl);
		if (body != NULL) {
			buf_deinit(body);
			free(body);
		}
		return -1;
	}
	header_list_deinit(own_hl);
	*own_hl = hl;
	view->headers = own_hl;
	if (body != NULL) {
		if (*own_body != NULL) {
			buf_deinit(*own_body);
			free(*own_body);
		}
		*own_body = body;
		view->body = body;
	}
	return 0;
}

enum filter_verdict
milter_eom(struct filter_call *call)
{
	struct milters *in = call->instance;
	struct milters_state *st = call->conn_state;
	struct milters_state *t = call->tx_state;
	struct milter_conn *m;
	struct milter_edit_map map;
	struct milter_answer a;
	struct filter_edits edits;
	struct header_list own_hl = { NULL, 0 };
	struct buf *own_body = NULL;
	struct eom_view view;
	struct milter_macro_set mac;
	enum filter_verdict v = FILTER_CONTINUE;
	const char *err;
	char cmd;
	size_t i;

	if (in == NULL || st == NULL || call->tx == NULL ||
	    call->message == NULL)
		return FILTER_CONTINUE;
	view.headers = call->message->headers;
	view.body = call->message->body;
	view.msg = call->message;
	milter_macros_fill(&mac, in, call);
	for (i = 0; i < st->n && v == FILTER_CONTINUE; i++) {
		m = &st->conns[i];
		if (m->state != MILTER_CONN_OK) {
			v = milter_verdict_standing(call, m, t);
			continue;
		}
		if (m->msg_done) {
			/* accepted: libmilter skips the rest itself */
			m->in_tx = false;
			continue;
		}
		filter_edits_init(&edits);
		milter_edit_map_init(&map, &edits,
		    (m->neg.protocol & MILTER_P_HDR_LEADSPC) != 0,
		    in->max_body);
		memset(&a, 0, sizeof(a));
		switch (send_content(in, m, &mac, &view, &map, &a, &cmd,
		    &err)) {
		case MILTER_RES_CONTINUE:
		case MILTER_RES_ACCEPT:
			m->in_tx = false;
			milter_edit_map_finish(&map);
			if (a.quarantine && t != NULL && !t->hold) {
				t->hold = true;
				snprintf(t->hold_reason,
				    sizeof(t->hold_reason), "%s",
				    a.reason[0] != '\0' ? a.reason :
				    "quarantined by milter");
			}
			if (edits.head != NULL && i + 1 < st->n &&
			    view_update(&view, &own_hl, &own_body, &edits,
			    call->tx, &err) == -1)
				log_warnx("%s: milter %s: its edits cannot be "
				    "shown to the next milter: %s",
				    milter_qid(call), m->spec->name, err);
			if (call->edits != NULL)
				splice(call->edits, &edits);
			break;
		case MILTER_RES_FINAL:
			/* the milter's message ends with this reply */
			m->in_tx = false;
			v = milter_verdict_final(call, m, t, cmd, &a);
			break;
		case MILTER_RES_SKIP:
			v = milter_verdict_failed(call, m, t, cmd,
			    "skip out of place");
			break;
		case MILTER_RES_FAILED:
			v = milter_verdict_failed(call, m, t, cmd, err);
			break;
		}
		milter_edit_map_deinit(&map);
		filter_edits_deinit(&edits);
	}
	header_list_deinit(&own_hl);
	if (own_body != NULL) {
		buf_deinit(own_body);
		free(own_body);
	}
	if (v != FILTER_CONTINUE)
		return v;
	if (t != NULL && t->discard) {
		log_info("%s: milter: discard asked before end of message",
		    milter_qid(call));
		return FILTER_DISCARD;
	}
	if (t != NULL && t->hold) {
		snprintf(call->reply, sizeof(call->reply), "%s",
		    t->hold_reason);
		return FILTER_HOLD;
	}
	return FILTER_CONTINUE;
}

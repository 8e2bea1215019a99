/*
 * milter_eom.c - end of message in postern-milter: the EOM stage with a
 * view of the message (as posternd's session_eom.c runs it), then the
 * filters' edits sent to the MTA as libmilter modifications.
 *
 * Edits are first applied to a copy of the header block and envelope
 * with message_edit_apply, the same check posternd makes: an edit that
 * would corrupt the message (a bad header name, a bare CR, no recipient
 * left) tempfails it here too, before anything reaches the MTA. Then the
 * forged Authentication-Results are deleted (RFC 8601 5), then each edit
 * is sent in order, so that the MTA numbers headers as our chain did.
 *
 * An action the MTA did not offer in negotiation (milter_host.c logs
 * them once per connection) is checked here before anything is sent,
 * by milter_map_edit_fallback: an added header that only annotates (a
 * result, a note) is dropped with a warning and the message delivered;
 * a DKIM-Signature follows dkim_sign_failure_action, as when the dkim
 * filter cannot sign; anything that changes who gets the mail or
 * rewrites or removes content, a HOLD, and the deletion of forged
 * Authentication-Results fail closed: 451, with a warning naming the
 * action. Delivering forged authentication results, or mail to the
 * wrong recipients, is worse than a deferral the operator is told about
 * at every connection and can end by offering the action.
 *
 * Insert indexes are shifted for Postfix, which counts its own hidden
 * Received: header in them (milter_map_insert_index).
 *
 * What libmilter does not offer stays undone: a recipient's DSN
 * parameters on ADD_RCPT (smfi_addrcpt_par would need them per edit).
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libmilter/mfapi.h>

#include "buf.h"
#include "chain.h"
#include "config/config.h"
#include "log.h"
#include "message_edit.h"
#include "milter_host-private.h"
#include "milter_map.h"
#include "xmalloc.h"

#define REPLACE_CHUNK	(64 * 1024)	/* bytes per smfi_replacebody */

static const char *
qid(const struct mconn *c)
{
	return c->tx->queue_id != NULL ? c->tx->queue_id : "NOQUEUE";
}

/* not_offered - the warning for an action the MTA did not offer */
static void
not_offered(const struct mconn *c, unsigned action, const char *what,
    const char *outcome)
{
	char words[64];

	log_warnx("%s: %s: the MTA did not offer the milter action \"%s\"; "
	    "%s", qid(c), what, milter_map_actions_text(action, words,
	    sizeof(words)), outcome);
}

/*
 * mvalue - a header value as libmilter must get it: folding with LF only
 * (Postfix stores LF and would keep a CR), and with SMFIP_HDR_LEADSPC
 * the space after the colon ours to give. Owned.
 */
static char *
mvalue(const struct mconn *c, const char *value)
{
	struct buf b;
	const char *p;

	buf_init(&b, 0);
	if (c->leadspc)
		buf_append(&b, " ", 1);
	for (p = value; *p != '\0'; p++)
		if (!(p[0] == '\r' && p[1] == '\n'))
			buf_append(&b, p, 1);
	return buf_steal(&b);
}

/* delete_forged - smfi_chgheader deletions of forged A-R fields */
static int
delete_forged(SMFICTX *ctx, struct mconn *c)
{
	struct milter_delete *del;
	size_t i, n;
	int rc = 0;

	n = milter_map_forged_ar(c->tx->headers.data != NULL ?
	    c->tx->headers.data : "", c->tx->headers.len,
	    mhost_config(c)->authserv_id, &del);
	/* fail closed: never deliver results that claim to be ours */
	if (n > 0 && (c->offered & MILTER_MAP_CHGHDRS) == 0) {
		not_offered(c, MILTER_MAP_CHGHDRS, "cannot delete forged "
		    "Authentication-Results", "message tempfailed");
		rc = -1;
	}
	for (i = 0; i < n && rc == 0; i++)
		if (smfi_chgheader(ctx, del[i].name, del[i].index, NULL) !=
		    MI_SUCCESS)
			rc = -1;
	milter_map_deletes_free(&del, n);
	return rc;
}

/* send_edit - one edit as its libmilter call; -1 when that fails */
static int
send_edit(SMFICTX *ctx, struct mconn *c, const struct filter_edit *e)
{
	char *v = NULL, *addr = NULL;
	int rc = MI_FAILURE;

	switch (e->kind) {
	case FILTER_EDIT_ADD_HEADER:
		v = mvalue(c, e->value);
		rc = smfi_addheader(ctx, e->name, v);
		break;
	case FILTER_EDIT_INSERT_HEADER:
		v = mvalue(c, e->value);
		rc = smfi_insheader(ctx, milter_map_insert_index(e->index,
		    c->hides_received), e->name, v);
		break;
	case FILTER_EDIT_CHANGE_HEADER:
		if (e->value != NULL)
			v = mvalue(c, e->value);
		rc = smfi_chgheader(ctx, e->name, (int)e->index, v);
		break;
	case FILTER_EDIT_CHANGE_FROM:
		addr = milter_map_address(e->value);
		if (addr[0] == '\0') {
			free(addr);
			addr = xstrdup("<>");
		}
		rc = smfi_chgfrom(ctx, addr, e->args);
		break;
	case FILTER_EDIT_ADD_RCPT:
		addr = milter_map_address(e->value);
		if (e->args != NULL && c->addrcpt_par)
			rc = smfi_addrcpt_par(ctx, addr, e->args);
		else {
			if (e->args != NULL)
				log_warnx("%s: the MTA does not offer to add "
				    "a recipient with parameters: <%s> "
				    "added without %s", qid(c), addr,
				    e->args);
			rc = smfi_addrcpt(ctx, addr);
		}
		break;
	case FILTER_EDIT_DELETE_RCPT:
		addr = milter_map_address(e->value);
		rc = smfi_delrcpt(ctx, addr);
		break;
	case FILTER_EDIT_REPLACE_BODY:
		rc = MI_SUCCESS;	/* sent whole, after the others */
		break;
	}
	if (rc != MI_SUCCESS)
		log_warnx("%s: %s %s failed (not negotiated with the MTA?)",
		    c->tx->queue_id != NULL ? c->tx->queue_id : "NOQUEUE",
		    e->kind == FILTER_EDIT_CHANGE_FROM ? "smfi_chgfrom" :
		    e->kind == FILTER_EDIT_ADD_RCPT ? "smfi_addrcpt" :
		    e->kind == FILTER_EDIT_DELETE_RCPT ? "smfi_delrcpt" :
		    "header edit", e->name != NULL ? e->name : "");
	free(v);
	free(addr);
	return rc == MI_SUCCESS ? 0 : -1;
}

/* send_body - the replacement body in chunks (each call appends) */
static int
send_body(SMFICTX *ctx, const struct buf *body)
{
	size_t off = 0, n;

	if (body->len == 0)
		return smfi_replacebody(ctx, (unsigned char *)"", 0) ==
		    MI_SUCCESS ? 0 : -1;
	while (off < body->len) {
		n = body->len - off;
		if (n > REPLACE_CHUNK)
			n = REPLACE_CHUNK;
		if (smfi_replacebody(ctx, (unsigned char *)body->data + off,
		    (int)n) != MI_SUCCESS)
			return -1;
		off += n;
	}
	return 0;
}

/*
 * check_edits - the edits applied to a copy (message_edit_apply), so
 * that an edit posternd would refuse is refused here before any reaches
 * the MTA. *body_r: the replacement body or NULL (caller frees).
 */
static int
check_edits(struct mconn *c, const struct filter_edits *edits,
    struct buf **body_r)
{
	struct mtx *tx = c->tx;
	struct header_list hl;
	struct edit_envelope env;
	const char *error;
	size_t i;
	int rc;

	if (header_list_parse(&hl, tx->view.data != NULL ? tx->view.data : "",
	    tx->view.len) == -1) {
		hl.fields = NULL;
		hl.n = 0;
	}
	edit_envelope_init(&env, tx->sender, tx->nrcpts);
	for (i = 0; i < tx->nrcpts; i++)
		env.rcpts[i] = xstrdup(tx->rcpts[i].address);
	rc = message_edit_apply(edits, &hl, &env, body_r, &error);
	if (rc == -1) {
		log_warnx("%s: filter edits refused: %s", tx->queue_id != NULL ?
		    tx->queue_id : "NOQUEUE", error);
		if (*body_r != NULL) {
			buf_deinit(*body_r);
			free(*body_r);
			*body_r = NULL;
		}
	}
	header_list_deinit(&hl);
	edit_envelope_deinit(&env);
	return rc;
}

/*
 * plan_edits - which edits the MTA can take (milter_map_edit_fallback):
 * *skip_r[i] true for the i-th edit to leave out (owned array, NULL
 * when there are no edits). -1 when the message must be tempfailed
 * (logged).
 *
 * XXX issue 4: a skipped insert is still counted in the indexes of
 * later changes of a field of its name (only when the MTA offers change
 * but not add; no filter of ours inserts and then changes one name).
 */
static int
plan_edits(struct mconn *c, const struct filter_edits *edits,
    bool **skip_r)
{
	const struct filter_edit *e;
	const char *action = mhost_config(c)->dkim_sign_failure_action;
	char what[128];
	size_t i, n = 0;
	int rc = 0;

	for (e = edits->head; e != NULL; e = e->next)
		n++;
	*skip_r = n > 0 ? xcalloc(n, sizeof(**skip_r)) : NULL;
	for (e = edits->head, i = 0; e != NULL && rc == 0; e = e->next, i++) {
		snprintf(what, sizeof(what), "%s%s", e->name != NULL ?
		    "header " : "edit", e->name != NULL ? e->name : "");
		switch (milter_map_edit_fallback(e, c->offered)) {
		case MILTER_MAP_SEND:
			break;
		case MILTER_MAP_SKIP:
			not_offered(c, milter_map_edit_needs(e->kind), what,
			    "not added");
			(*skip_r)[i] = true;
			break;
		case MILTER_MAP_UNSIGNED:
			if (action != NULL && strcmp(action, "tempfail") == 0) {
				not_offered(c, MILTER_MAP_ADDHDRS, what,
				    "message tempfailed "
				    "(dkim_sign_failure_action = tempfail)");
				rc = -1;
				break;
			}
			not_offered(c, MILTER_MAP_ADDHDRS, what,
			    "delivered unsigned "
			    "(dkim_sign_failure_action = accept)");
			(*skip_r)[i] = true;
			break;
		case MILTER_MAP_FAIL:
			not_offered(c, milter_map_edit_needs(e->kind), what,
			    "message tempfailed");
			rc = -1;
			break;
		}
	}
	return rc;
}

/* send_edits - every modification, in order; -1 when one failed */
static int
send_edits(SMFICTX *ctx, struct mconn *c, const struct filter_edits *edits,
    const bool *skip, const struct buf *body)
{
	const struct filter_edit *e;
	size_t i;

	if (delete_forged(ctx, c) == -1)
		return -1;
	for (e = edits->head, i = 0; e != NULL; e = e->next, i++)
		if (!skip[i] && send_edit(ctx, c, e) == -1)
			return -1;
	if (body != NULL && send_body(ctx, body) == -1)
		return -1;
	return 0;
}

/* run_eom - the EOM stage over a view of the header block */
static enum filter_verdict
run_eom(struct mconn *c, struct filter_call *call, const char **who_r)
{
	struct mtx *tx = c->tx;
	struct filter_message view;
	struct header_list hl;
	enum filter_verdict v = FILTER_CONTINUE;

	*who_r = NULL;
	if (!chain_has_stage(mhost_chain(c), FILTER_STAGE_EOM))
		return v;
	if (header_list_parse(&hl, tx->view.data != NULL ? tx->view.data : "",
	    tx->view.len) == -1) {
		hl.fields = NULL;
		hl.n = 0;
	}
	/* the body went by in BODY chunks; libmilter cannot read it back */
	memset(&view, 0, sizeof(view));
	view.headers = &hl;
	v = chain_run_eom(&tx->chain, call, &view, who_r);
	header_list_deinit(&hl);
	if (view.body != NULL) {
		buf_deinit(view.body);
		free(view.body);
	}
	return v;
}

sfsistat
mhost_eom(SMFICTX *ctx, struct mconn *c)
{
	struct mtx *tx = c->tx;
	struct filter_edits edits;
	struct filter_call call;
	struct buf *body = NULL;
	bool *skip = NULL;
	enum filter_verdict v;
	const char *who, *rcpt;
	sfsistat st = SMFIS_CONTINUE;

	rcpt = tx->nrcpts > 0 ? tx->rcpts[0].address : NULL;
	if (tx->view.len == 0 && tx->headers.len > 0)
		buf_append(&tx->view, tx->headers.data, tx->headers.len);
	filter_edits_init(&edits);
	mhost_call_init(c, &call, FILTER_STAGE_EOM);
	call.edits = &edits;
	v = run_eom(c, &call, &who);
	switch (v) {
	case FILTER_REJECT:
	case FILTER_TEMPFAIL:
	case FILTER_DISCONNECT:
		st = mhost_refuse(ctx, c, v == FILTER_REJECT ? v :
		    FILTER_TEMPFAIL, call.reply, who, "END-OF-MESSAGE", rcpt);
		goto out;
	case FILTER_HOLD:
		mhost_hold_note(c, call.reply, who);
		break;
	default:
		break;
	}
	if (v == FILTER_DISCARD || tx->final == FILTER_DISCARD) {
		mhost_log(c, "discard", "END-OF-MESSAGE", "message discarded",
		    rcpt, who);
		tx->completed = true;
		st = SMFIS_DISCARD;
		goto out;
	}
	/* libmilter allows a quarantine only at end, after the edits */
	if (tx->hold_reply[0] != '\0' &&
	    (c->offered & MILTER_MAP_QUARANTINE) == 0) {
		not_offered(c, MILTER_MAP_QUARANTINE, "cannot hold the message",
		    "message tempfailed");
		st = mhost_refuse(ctx, c, FILTER_TEMPFAIL,
		    "451 4.3.0 Error: cannot hold the message", NULL,
		    "END-OF-MESSAGE", rcpt);
		goto out;
	}
	if (check_edits(c, &edits, &body) == -1 ||
	    plan_edits(c, &edits, &skip) == -1 ||
	    send_edits(ctx, c, &edits, skip, body) == -1) {
		st = mhost_refuse(ctx, c, FILTER_TEMPFAIL,
		    "451 4.3.0 Error: filter edits failed", NULL,
		    "END-OF-MESSAGE", rcpt);
		goto out;
	}
	if (tx->hold_reply[0] != '\0') {
		mhost_log(c, "hold", "END-OF-MESSAGE", tx->hold_reply, rcpt,
		    tx->hold_who[0] != '\0' ? tx->hold_who : NULL);
		if (smfi_quarantine(ctx, tx->hold_reply) != MI_SUCCESS) {
			st = mhost_refuse(ctx, c, FILTER_TEMPFAIL,
			    "451 4.3.0 Error: cannot hold the message", NULL,
			    "END-OF-MESSAGE", rcpt);
			goto out;
		}
	}
	tx->completed = true;
out:
	free(skip);
	if (body != NULL) {
		buf_deinit(body);
		free(body);
	}
	filter_edits_deinit(&edits);
	return st;
}

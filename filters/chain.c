/*
 * chain.c - run the configured filters in order; see chain.h.
 *
 * The chain also polices what filters answer (STYLE.md 5): a REJECT must
 * carry a 5xx reply, a TEMPFAIL a 4xx, DISCONNECT a 421; anything else is
 * replaced by "451 4.3.0" so that a buggy filter cannot make the server
 * send a malformed or misleading reply.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain.h"
#include "config/config.h"
#include "log.h"
#include "message_edit.h"
#include "xmalloc.h"

struct chain_link {
	const struct filter_ops *ops;	/* borrowed: static */
	void	*instance;		/* owned via ops->deinit */
};

struct chain {
	struct chain_link *links;	/* owned array */
	size_t	 nlinks;
	unsigned may_block_mask;	/* stages with a blocking filter */
	unsigned stage_mask;
};

struct chain *
chain_new_ops(const struct filter_ops *const *ops, size_t n,
    const struct config *cfg, char **error_r)
{
	struct chain *c;
	char *err = NULL;
	size_t i;

	c = xcalloc(1, sizeof(*c));
	c->links = xcalloc(n == 0 ? 1 : n, sizeof(*c->links));
	for (i = 0; i < n; i++) {
		c->links[i].ops = ops[i];
		if (ops[i]->init != NULL &&
		    (c->links[i].instance = ops[i]->init(cfg, &err)) == NULL &&
		    err != NULL) {
			*error_r = xasprintf("filter %s: %s", ops[i]->name,
			    err);
			free(err);
			c->nlinks = i;	/* deinit only what was set up */
			chain_free(&c);
			return NULL;
		}
		c->nlinks = i + 1;
		c->stage_mask |= ops[i]->stages;
		if (ops[i]->may_block)
			c->may_block_mask |= ops[i]->stages;
	}
	return c;
}

/*
 * chain_order_check - each filter once, and none that edits the message
 * after one that signs it (the signature would break)
 */
static int
chain_order_check(const struct filter_ops *const *ops, size_t n,
    char **error_r)
{
	size_t i, k;

	for (i = 0; i < n; i++)
		for (k = i + 1; k < n; k++) {
			if (ops[i] == ops[k]) {
				*error_r = xasprintf("smtpd_filters: \"%s\" "
				    "is listed twice", ops[i]->name);
				return -1;
			}
			if (ops[i]->signs && ops[k]->edits) {
				*error_r = xasprintf("smtpd_filters: \"%s\" "
				    "edits the message, so it must come before "
				    "\"%s\", which signs it", ops[k]->name,
				    ops[i]->name);
				return -1;
			}
		}
	return 0;
}

static bool
has_name(char **names, const char *name)
{
	for (; names != NULL && *names != NULL; names++)
		if (strcmp(*names, name) == 0)
			return true;
	return false;
}

struct chain *
chain_new(const struct config *cfg, char **error_r)
{
	const struct filter_ops **ops = NULL;
	struct chain *c;
	char **name;
	size_t n = 0;

	for (name = cfg->smtpd_filters; name != NULL && *name != NULL;
	    name++) {
		ops = xreallocarray(ops, n + 1, sizeof(*ops));
		if ((ops[n++] = filter_lookup(*name)) == NULL) {
			*error_r = xasprintf("smtpd_filters: unknown filter "
			    "\"%s\"", *name);
			free(ops);
			return NULL;
		}
	}
	if (!has_name(cfg->smtpd_filters, "policy") &&
	    cfg->smtpd_policy_services != NULL &&
	    cfg->smtpd_policy_services[0] != NULL) {
		*error_r = xstrdup("smtpd_policy_services is set but "
		    "smtpd_filters has no \"policy\" to say where they run");
		free(ops);
		return NULL;
	}
	if (!has_name(cfg->smtpd_filters, "milters") &&
	    cfg->smtpd_milters != NULL && cfg->smtpd_milters[0] != NULL) {
		*error_r = xstrdup("smtpd_milters is set but smtpd_filters "
		    "has no \"milters\" to say where they run");
		free(ops);
		return NULL;
	}
	if (chain_order_check(ops, n, error_r) == -1) {
		free(ops);
		return NULL;
	}
	c = chain_new_ops(ops, n, cfg, error_r);
	free(ops);
	return c;
}

void
chain_free(struct chain **cp)
{
	struct chain *c = *cp;
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->nlinks; i++)
		if (c->links[i].ops->deinit != NULL)
			c->links[i].ops->deinit(c->links[i].instance);
	free(c->links);
	free(c);
	*cp = NULL;
}

bool
chain_stage_may_block(const struct chain *c, enum filter_stage s)
{
	return (c->may_block_mask & FILTER_STAGE_BIT(s)) != 0;
}

bool
chain_has_stage(const struct chain *c, enum filter_stage s)
{
	return (c->stage_mask & FILTER_STAGE_BIT(s)) != 0;
}

void
chain_tx_begin(struct chain_tx *tx, const struct chain *c,
    const struct filter_conn *conn)
{
	size_t i;

	tx->chain = c;
	tx->accepted = false;
	tx->conn = NULL;
	tx->state = xcalloc(c->nlinks == 0 ? 1 : c->nlinks,
	    sizeof(*tx->state));
	for (i = 0; i < c->nlinks; i++)
		if (c->links[i].ops->tx_begin != NULL)
			tx->state[i] = c->links[i].ops->tx_begin(
			    c->links[i].instance, conn);
}

void
chain_tx_end(struct chain_tx *tx)
{
	const struct chain *c = tx->chain;
	size_t i;

	if (tx->state == NULL)
		return;
	for (i = 0; i < c->nlinks; i++)
		if (c->links[i].ops->tx_end != NULL)
			c->links[i].ops->tx_end(c->links[i].instance,
			    tx->state[i]);
	free(tx->state);
	tx->state = NULL;
}

void
chain_tx_close(struct chain_tx *tx, bool completed, struct filter_call *call)
{
	const char *who;

	if (tx->state == NULL)
		return;
	if (!completed && chain_has_stage(tx->chain, FILTER_STAGE_ABORT))
		(void)chain_run(tx, call, &who);
	chain_tx_end(tx);
}

/* digits - skip 1 to 3 digits; NULL if there are none or more */
static const char *
digits(const char *p)
{
	int n;

	for (n = 0; isdigit((unsigned char)p[n]); n++)
		if (n == 3)
			return NULL;
	return n == 0 ? NULL : p + n;
}

/*
 * reply_ok - "DDD C.S.D[ text]" (RFC 5321 4.2, RFC 3463 2) with the
 * class the verdict requires, printable ASCII only
 */
static bool
reply_ok(const char *r, char want_class)
{
	const char *p;

	if (r[0] != want_class || !isdigit((unsigned char)r[1]) ||
	    !isdigit((unsigned char)r[2]) || r[3] != ' ' ||
	    r[4] != want_class || r[5] != '.' ||
	    (p = digits(r + 6)) == NULL || *p != '.' ||
	    (p = digits(p + 1)) == NULL || (*p != ' ' && *p != '\0'))
		return false;
	for (p = r; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			return false;
	return true;
}

/* police - make a filter's verdict and reply safe to send */
static enum filter_verdict
police(enum filter_verdict v, struct filter_call *call, const char *name)
{
	bool good = true;

	switch (v) {
	case FILTER_REJECT:
		good = reply_ok(call->reply, '5');
		break;
	case FILTER_TEMPFAIL:
		good = reply_ok(call->reply, '4');
		break;
	case FILTER_DISCONNECT:
		good = strncmp(call->reply, "421 4.", 6) == 0 &&
		    reply_ok(call->reply, '4');
		break;
	default:
		return v;
	}
	if (!good) {
		char text[128];

		log_warnx("filter %s: malformed reply \"%s\" for %s; "
		    "using %s 4.3.0", name, log_escape(text, sizeof(text),
		    call->reply), filter_verdict_name(v),
		    v == FILTER_DISCONNECT ? "421" : "451");
		snprintf(call->reply, sizeof(call->reply),
		    v == FILTER_DISCONNECT ?
		    "421 4.3.0 Error: internal filter error" :
		    "451 4.3.0 Error: internal filter error");
		return v == FILTER_DISCONNECT ? FILTER_DISCONNECT :
		    FILTER_TEMPFAIL;
	}
	return v;
}

/*
 * run_link - one filter's callback at call->stage, policed. Returns its
 * verdict; a HOLD is recorded in *hold_r and reported as CONTINUE.
 */
static enum filter_verdict
run_link(struct chain_tx *tx, size_t i, struct filter_call *call,
    const char **hold_r, char *hold_reply)
{
	const struct chain_link *l = &tx->chain->links[i];
	enum filter_verdict v;

	call->instance = l->instance;
	call->tx_state = tx->state == NULL ? NULL : tx->state[i];
	if (tx->conn == NULL)
		call->conn_state = call->tx_state;
	else
		call->conn_state = tx->conn->state == NULL ? NULL :
		    tx->conn->state[i];
	call->reply[0] = '\0';
	v = police(l->ops->cb[call->stage](call), call, l->ops->name);
	if (v == FILTER_HOLD) {
		if (*hold_r == NULL) {
			*hold_r = l->ops->name;
			memcpy(hold_reply, call->reply, sizeof(call->reply));
		}
		return FILTER_CONTINUE;
	}
	return v;
}

/*
 * view_apply - the edits a filter just made, applied to the message view
 * so that the filters after it see them
 */
static void
view_apply(struct filter_message *view, const struct filter_call *call,
    struct filter_edit *first, const char *name)
{
	struct filter_edits sub;
	struct edit_envelope env;
	struct buf *body = NULL;
	const char *error;
	size_t i;

	sub.head = first;
	sub.tail = call->edits->tail;
	edit_envelope_init(&env, call->tx != NULL ? call->tx->sender : "",
	    call->tx != NULL ? call->tx->nrcpts : 0);
	for (i = 0; i < env.nrcpts; i++)
		env.rcpts[i] = xstrdup(call->tx->rcpts[i].address);
	if (message_edit_apply(&sub, view->headers, &env, &body,
	    &error) == -1)
		/* name the filter: the commit will say only what failed */
		log_warnx("%s: filter %s: its edits cannot be applied for the "
		    "filters after it: %s", call->tx != NULL &&
		    call->tx->queue_id != NULL ? call->tx->queue_id : "NOQUEUE",
		    name, error);
	else if (body != NULL) {
		if (view->body != NULL) {
			buf_deinit(view->body);
			free(view->body);
		}
		view->body = body;
		body = NULL;
	}
	if (body != NULL) {
		buf_deinit(body);
		free(body);
	}
	edit_envelope_deinit(&env);
}

static enum filter_verdict
run_stage(struct chain_tx *tx, struct filter_call *call,
    struct filter_message *view, const char **filter_r)
{
	const struct chain *c = tx->chain;
	struct filter_edit **before;
	enum filter_verdict v;
	const char *hold = NULL;
	char hold_reply[sizeof(call->reply)];
	size_t i;

	*filter_r = NULL;
	if (tx->accepted && call->stage != FILTER_STAGE_ABORT &&
	    call->stage != FILTER_STAGE_CLOSE)
		return FILTER_CONTINUE;
	if (view != NULL)
		call->message = view;
	for (i = 0; i < c->nlinks; i++) {
		if (c->links[i].ops->cb[call->stage] == NULL)
			continue;
		/* *before becomes the first edit this filter adds */
		before = call->edits != NULL ? call->edits->tail : NULL;
		v = run_link(tx, i, call, &hold, hold_reply);
		if (view != NULL && before != NULL && *before != NULL)
			view_apply(view, call, *before,
			    c->links[i].ops->name);
		if (v == FILTER_CONTINUE)
			continue;
		*filter_r = c->links[i].ops->name;
		if (v == FILTER_ACCEPT)
			tx->accepted = true;
		if (view != NULL)
			call->message = NULL;
		return v;
	}
	if (view != NULL)
		call->message = NULL;
	if (hold != NULL) {
		*filter_r = hold;
		memcpy(call->reply, hold_reply, sizeof(call->reply));
		return FILTER_HOLD;
	}
	return FILTER_CONTINUE;
}

enum filter_verdict
chain_run(struct chain_tx *tx, struct filter_call *call, const char **filter_r)
{
	return run_stage(tx, call, NULL, filter_r);
}

enum filter_verdict
chain_run_eom(struct chain_tx *tx, struct filter_call *call,
    struct filter_message *view, const char **filter_r)
{
	return run_stage(tx, call, view, filter_r);
}

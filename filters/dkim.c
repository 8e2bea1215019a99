/*
 * dkim.c - the "dkim" filter: signing for our own users, verification
 * for everyone else.
 *
 * Signing (authenticated and mynetworks clients): the body is hashed once
 * as it streams by; at end of message the From: address of the message as
 * the filters before this one left it (this filter goes last in
 * smtpd_filters) picks the keys in the signing table (dkim_tables.h), and
 * each key signs the header fields, with our own signer (dkim_sign.h:
 * keys parsed once per configuration load). A message that cannot be
 * signed (no key for the sender, an unreadable key, a signer error)
 * follows dkim_sign_failure_action: accept unsigned, with a log line, or
 * tempfail.
 *
 * Verification (other clients, dkim_verify = yes): libopendkim through
 * dkim_verify.h; the results go into an Authentication-Results header
 * (RFC 8601) under authserv_id.
 *
 * Both may block (crypto; key lookups), so the content stages run on the
 * worker pool when this filter is in the chain.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth_results.h"
#include "buf.h"
#include "config/config.h"
#include "dkim.h"
#include "dkim_sign.h"
#include "dkim_tables.h"
#include "dkim_verify.h"
#include "dns_sync.h"
#include "filter.h"
#include "header_address.h"
#include "log.h"
#include "message_edit.h"
#include "xmalloc.h"

#define DKIM_MAX_KEYS	8	/* signatures per message */
#define DKIM_MAX_RESULTS 8	/* verified signatures reported */

struct dkim_instance {
	struct dkim_tables *tables;	/* owned; NULL: no signing */
	struct dkim_verifier *verifier;	/* owned; NULL: no verification */
	enum sign_canon header_canon, body_canon;
	const char *const *sign_headers;	/* borrowed from the config */
	const char *const *oversign_headers;
	bool	 tempfail_unsigned;
	char	*authserv_id;		/* owned */
};

struct dkim_tx {
	bool	 sign, verify;
	struct signer *body;		/* owned: hashes the body, no key */
	char	*cannot_sign;		/* owned; why, when signing fails */
	struct dkim_verification *verification;	/* owned */
};

/* parse_canon - "header/body", or "header" alone (body simple, RFC 6376) */
static void
parse_canon(const char *text, enum sign_canon *h, enum sign_canon *b)
{
	const char *slash = strchr(text, '/');

	*h = strncmp(text, "relaxed", 7) == 0 ? SIGN_CANON_RELAXED :
	    SIGN_CANON_SIMPLE;
	*b = slash != NULL && strcmp(slash + 1, "relaxed") == 0 ?
	    SIGN_CANON_RELAXED : SIGN_CANON_SIMPLE;
}

/* list_or_null - an empty list parameter means "the default" (NULL) */
static const char *const *
list_or_null(char **list)
{
	return list != NULL && list[0] != NULL ?
	    (const char *const *)list : NULL;
}

static void
dkim_deinit(void *instance)
{
	struct dkim_instance *in = instance;

	dkim_tables_free(&in->tables);
	dkim_verifier_free(&in->verifier);
	free(in->authserv_id);
	free(in);
}

static void *
dkim_init(const struct config *cfg, char **error_r)
{
	struct dkim_instance *in;
	const char *error;

	if ((cfg->dkim_signing_table == NULL) !=
	    (cfg->dkim_key_table == NULL)) {
		*error_r = xstrdup("dkim_signing_table and dkim_key_table "
		    "go together: set both or neither");
		return NULL;
	}
	in = xcalloc(1, sizeof(*in));
	in->authserv_id = xstrdup(cfg->authserv_id);
	parse_canon(cfg->dkim_canonicalization, &in->header_canon,
	    &in->body_canon);
	in->sign_headers = list_or_null(cfg->dkim_signed_headers);
	in->oversign_headers = list_or_null(cfg->dkim_oversigned_headers);
	in->tempfail_unsigned =
	    strcmp(cfg->dkim_sign_failure_action, "tempfail") == 0;
	if (cfg->dkim_signing_table != NULL && (in->tables =
	    dkim_tables_load(cfg->dkim_signing_table, cfg->dkim_key_table,
	    error_r)) == NULL) {
		dkim_deinit(in);
		return NULL;
	}
	if (cfg->dkim_verify) {
		if (dns_sync_configure(cfg->dns_resolver, &error) == -1) {
			*error_r = xasprintf("dkim: dns_resolver: %s", error);
			dkim_deinit(in);
			return NULL;
		}
		if ((in->verifier = dkim_verifier_new(cfg->dkim_dns_timeout *
		    1000, NULL, error_r)) == NULL) {
			dkim_deinit(in);
			return NULL;
		}
	}
	return in;
}

static void *
dkim_tx_begin(void *instance, const struct filter_conn *conn)
{
	struct dkim_instance *in = instance;
	struct dkim_tx *t;

	t = xcalloc(1, sizeof(*t));
	if (conn->is_authenticated || conn->is_mynetworks)
		t->sign = in->tables != NULL;
	else
		t->verify = in->verifier != NULL;
	return t;
}

static void
dkim_tx_end(void *instance, void *state)
{
	struct dkim_tx *t = state;

	if (t == NULL)
		return;
	signer_free(&t->body);
	free(t->cannot_sign);
	dkim_verification_free(&t->verification);
	free(t);
}

/* from_address - the first address of the first From: field, owned */
static char *
from_address(const struct header_list *hl)
{
	struct buf value;
	char **addrs, *first = NULL;
	size_t i, n;

	buf_init(&value, 0);
	for (i = 0; i < hl->n && first == NULL; i++) {
		if (strcasecmp(hl->fields[i].name, "From") != 0)
			continue;
		header_field_value(&hl->fields[i], &value);
		n = header_addresses(buf_cstr(&value), value.len, &addrs);
		if (n > 0)
			first = xstrdup(addrs[0]);
		header_addresses_free(addrs, n);
		break;
	}
	buf_deinit(&value);
	return first;
}

static void
cannot_sign(struct dkim_tx *t, char *why)
{
	if (t->cannot_sign == NULL)
		t->cannot_sign = why;
	else
		free(why);
}

static const char *
queue_id(const struct filter_call *call)
{
	return call->tx != NULL && call->tx->queue_id != NULL ?
	    call->tx->queue_id : "NOQUEUE";
}

/* body_signer - a signer without a key that only hashes the body */
static struct signer *
body_signer(const struct dkim_instance *in)
{
	struct signer_params p;

	memset(&p, 0, sizeof(p));
	p.header_canon = in->header_canon;
	p.body_canon = in->body_canon;
	return signer_new(&p);
}

static enum filter_verdict
dkim_eoh(struct filter_call *call)
{
	struct dkim_instance *in = call->instance;
	struct dkim_tx *t = call->tx_state;

	if (t->sign)
		t->body = body_signer(in);
	if (t->verify && call->message != NULL) {
		t->verification = dkim_verification_new(in->verifier,
		    queue_id(call));
		dkim_verification_headers(t->verification,
		    call->message->headers);
	}
	return FILTER_CONTINUE;
}

static void
feed(struct dkim_tx *t, const void *data, size_t len)
{
	if (t->body != NULL)
		signer_body(t->body, data, len);
	if (t->verification != NULL)
		dkim_verification_body(t->verification, data, len);
}

static enum filter_verdict
dkim_body(struct filter_call *call)
{
	feed(call->tx_state, call->chunk, call->chunk_len);
	return FILTER_CONTINUE;
}

/*
 * sign_one - one signature by key for the message, added as a header
 * edit; false (and t->cannot_sign) on failure
 */
static bool
sign_one(struct filter_call *call, struct dkim_instance *in,
    struct dkim_tx *t, const struct dkim_keyent *key, const char *from)
{
	struct signer_params p;
	struct signer *s;
	const char *at = strrchr(from, '@');
	char *value, *error = NULL;

	if (key->key == NULL) {
		cannot_sign(t, xasprintf("key %s: %s", key->name, key->error));
		return false;
	}
	memset(&p, 0, sizeof(p));
	p.key = key->key;
	p.domain = strcmp(key->domain, "%") == 0 && at != NULL ? at + 1 :
	    key->domain;
	p.selector = key->selector;
	p.header_canon = in->header_canon;
	p.body_canon = in->body_canon;
	p.sign_headers = in->sign_headers;
	p.oversign_headers = in->oversign_headers;
	s = signer_new_like(t->body, &p);
	value = signer_finish(s, call->message->headers, &error);
	signer_free(&s);
	if (value == NULL) {
		cannot_sign(t, xasprintf("key %s: %s", key->name, error));
		free(error);
		return false;
	}
	filter_edits_add(call->edits, FILTER_EDIT_INSERT_HEADER, 0,
	    "DKIM-Signature", value);
	free(value);
	return true;
}

/*
 * sign - every key the signing table gives the From: address of the
 * message as it is now; all or nothing
 */
static enum filter_verdict
sign(struct filter_call *call, struct dkim_instance *in, struct dkim_tx *t)
{
	const struct dkim_keyent *keys[DKIM_MAX_KEYS];
	struct filter_edit **before = call->edits->tail;
	struct filter_edits added;
	char *from;
	size_t i, n = 0;

	if (call->message->body != NULL) {
		/* a filter before this one replaced the body */
		signer_free(&t->body);
		t->body = body_signer(in);
		signer_body(t->body, call->message->body->data,
		    call->message->body->len);
	}
	if ((from = from_address(call->message->headers)) == NULL)
		cannot_sign(t, xstrdup("no From: address"));
	else if ((n = dkim_tables_match(in->tables, from, keys,
	    DKIM_MAX_KEYS)) == 0)
		cannot_sign(t, xasprintf("no signing key for <%s>", from));
	for (i = 0; i < n && sign_one(call, in, t, keys[i], from); i++)
		;
	free(from);
	if (t->cannot_sign == NULL)
		return FILTER_CONTINUE;
	/* nothing half-signed: drop the signatures added above */
	added.head = *before;
	added.tail = call->edits->tail;
	*before = NULL;
	call->edits->tail = before;
	filter_edits_deinit(&added);
	if (in->tempfail_unsigned) {
		log_warnx("%s: dkim: cannot sign: %s; deferred", queue_id(call),
		    t->cannot_sign);
		filter_set_reply(call, "451", "4.7.5",
		    "DKIM signing failed, try again later");
		return FILTER_TEMPFAIL;
	}
	log_warnx("%s: dkim: cannot sign: %s; sent unsigned", queue_id(call),
	    t->cannot_sign);
	return FILTER_CONTINUE;
}

/* results - the Authentication-Results value for what was verified */
static char *
results(struct dkim_instance *in, struct dkim_tx *t)
{
	struct dkim_sig_result r[DKIM_MAX_RESULTS];
	struct buf out;
	size_t i, n;
	char *value;

	n = dkim_verification_finish(t->verification, r, DKIM_MAX_RESULTS);
	buf_init(&out, 0);
	buf_append(&out, in->authserv_id, strlen(in->authserv_id));
	if (n == 0)
		buf_append(&out, "; dkim=none", 11);
	for (i = 0; i < n; i++) {
		buf_append(&out, ";\r\n\tdkim=", 9);
		buf_append(&out, dkim_result_name(r[i].result),
		    strlen(dkim_result_name(r[i].result)));
		auth_results_add_comment(&out, r[i].reason);
		buf_append(&out, " header.d=", 10);
		auth_results_add_value(&out, r[i].domain);
		buf_append(&out, " header.s=", 10);
		auth_results_add_value(&out, r[i].selector);
		buf_append(&out, " header.b=", 10);
		auth_results_add_value(&out, r[i].b_prefix);
	}
	value = xstrdup(buf_cstr(&out));
	buf_deinit(&out);
	return value;
}

static enum filter_verdict
dkim_eom(struct filter_call *call)
{
	struct dkim_instance *in = call->instance;
	struct dkim_tx *t = call->tx_state;
	char *value;

	if (call->message == NULL || call->edits == NULL)
		return FILTER_CONTINUE;
	if (t->sign && t->body != NULL)
		return sign(call, in, t);
	if (t->verification != NULL) {
		value = results(in, t);
		filter_edits_add(call->edits, FILTER_EDIT_INSERT_HEADER, 0,
		    "Authentication-Results", value);
		free(value);
	}
	return FILTER_CONTINUE;
}

const struct filter_ops filter_dkim = {
	.name = "dkim",
	.stages = FILTER_STAGE_BIT(FILTER_STAGE_EOH) |
	    FILTER_STAGE_BIT(FILTER_STAGE_BODY) |
	    FILTER_STAGE_BIT(FILTER_STAGE_EOM),
	.may_block = true,
	.edits = true,
	.signs = true,
	.init = dkim_init,
	.deinit = dkim_deinit,
	.tx_begin = dkim_tx_begin,
	.tx_end = dkim_tx_end,
	.cb = {
		[FILTER_STAGE_EOH] = dkim_eoh,
		[FILTER_STAGE_BODY] = dkim_body,
		[FILTER_STAGE_EOM] = dkim_eom,
	},
};

/*
 * spf.c - the "spf" filter: SPF (RFC 7208) in both directions.
 *
 * Inbound (clients neither authenticated nor in mynetworks): check_host()
 * for the MAIL FROM identity, or for the HELO identity when the sender is
 * null; the result decides through spf_<result>_action (fail rejects with
 * 550 5.7.23, temperror tempfails with 451 4.7.24 by default), and the
 * message gets a Received-SPF header (RFC 7208 9.1) and an
 * Authentication-Results header (RFC 8601) with the result.
 *
 * Outbound (authenticated and mynetworks clients): the egress check.
 * The sender domain's SPF is evaluated against each of Postern's own
 * outgoing addresses (spf_egress_addresses), so that a record that does
 * not authorize this relay is noticed here - logged, held or rejected as
 * spf_egress_action says - before recipients' servers fail the mail.
 *
 * The checks run in postern-spf helper processes (spf_client.h), so the
 * MAIL stage may block and runs on the worker pool.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth_results.h"
#include "buf.h"
#include "config/config.h"
#include "filter.h"
#include "log.h"
#include "spf.h"
#include "spf_client.h"
#include "xmalloc.h"

#ifndef PKGLIBEXECDIR
#define PKGLIBEXECDIR	"/usr/local/libexec/postern"
#endif

struct spf_instance {
	struct spf_pool *pool;		/* owned */
	char	*receiver;		/* owned: myhostname */
	char	*authserv_id;		/* owned */
};

/* what the MAIL stage found, for the headers at end of message */
struct spf_tx {
	bool	 checked;		/* an inbound check was made */
	bool	 hold;			/* an action said hold */
	struct spf_answer answer;
	char	*received;		/* owned: Received-SPF value */
	char	*results;		/* owned: Authentication-Results */
};

/*
 * helper_path - spf_helper_path, else postern-spf beside the running
 * program (a build tree, or an install that keeps them together), else
 * the installed helper directory. Owned.
 */
static char *
helper_path(const struct config *cfg)
{
	char self[PATH_MAX], *slash, *path;
	ssize_t n;

	if (cfg->spf_helper_path != NULL)
		return xstrdup(cfg->spf_helper_path);
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		if ((slash = strrchr(self, '/')) != NULL) {
			*slash = '\0';
			path = xasprintf("%s/postern-spf", self);
			if (access(path, X_OK) == 0)
				return path;
			free(path);
		}
	}
	return xstrdup(PKGLIBEXECDIR "/postern-spf");
}

/* egress_addresses_ok - every spf_egress_addresses element is an IP */
static int
egress_addresses_ok(const struct config *cfg, char **error_r)
{
	unsigned char bin[sizeof(struct in6_addr)];
	char *const *a;

	for (a = cfg->spf_egress_addresses; a != NULL && *a != NULL; a++)
		if (inet_pton(AF_INET, *a, bin) != 1 &&
		    inet_pton(AF_INET6, *a, bin) != 1) {
			*error_r = xasprintf("spf_egress_addresses: \"%s\" is "
			    "not an IPv4 or IPv6 address", *a);
			return -1;
		}
	return 0;
}

static void *
spf_init(const struct config *cfg, char **error_r)
{
	struct spf_instance *in;
	struct spf_pool_params p;
	char *path;

	if (egress_addresses_ok(cfg, error_r) == -1)
		return NULL;
	path = helper_path(cfg);
	memset(&p, 0, sizeof(p));
	p.helper_path = path;
	p.resolver = cfg->dns_resolver;
	p.receiver = cfg->myhostname;
	p.max_helpers = (unsigned)cfg->spf_helper_limit;
	p.timeout_ms = cfg->spf_timeout * 1000;
	in = xcalloc(1, sizeof(*in));
	in->pool = spf_pool_new(&p, error_r);
	free(path);
	if (in->pool == NULL) {
		free(in);
		return NULL;
	}
	in->receiver = xstrdup(cfg->myhostname);
	in->authserv_id = xstrdup(cfg->authserv_id);
	return in;
}

static void
spf_deinit(void *instance)
{
	struct spf_instance *in = instance;

	spf_pool_free(&in->pool);
	free(in->receiver);
	free(in->authserv_id);
	free(in);
}

static void *
spf_tx_begin(void *instance, const struct filter_conn *conn)
{
	return xcalloc(1, sizeof(struct spf_tx));
}

static void
spf_tx_end(void *instance, void *state)
{
	struct spf_tx *t = state;

	if (t == NULL)
		return;
	free(t->received);
	free(t->results);
	free(t);
}

/* printable - s with anything but printable ASCII replaced (replies) */
static void
printable(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			*s = '?';
}

/* result_action - the configured action word for an inbound result */
static const char *
result_action(const struct config *cfg, enum spf_result r)
{
	switch (r) {
	case SPF_RES_FAIL:	return cfg->spf_fail_action;
	case SPF_RES_SOFTFAIL:	return cfg->spf_softfail_action;
	case SPF_RES_PERMERROR:	return cfg->spf_permerror_action;
	case SPF_RES_TEMPERROR:	return cfg->spf_temperror_action;
	default:		return "accept";
	}
}

/* apply_action - the reply and verdict the action word gives */
static enum filter_verdict
apply_action(struct filter_call *call, struct spf_tx *t, const char *action,
    const struct spf_answer *a)
{
	char why[sizeof(a->explanation)];

	snprintf(why, sizeof(why), "%s", *a->explanation != '\0' ?
	    a->explanation : a->comment);
	printable(why);
	if (strcmp(action, "reject") == 0 && a->result == SPF_RES_TEMPERROR) {
		/* a temporary error can only be refused for now */
		filter_set_reply(call, "451", "4.7.24",
		    "SPF temporary error: %s", why);
		return FILTER_TEMPFAIL;
	}
	if (strcmp(action, "reject") == 0) {
		filter_set_reply(call, "550", a->result == SPF_RES_PERMERROR ?
		    "5.7.24" : "5.7.23", "SPF %s: %s",
		    spf_result_name(a->result), why);
		return FILTER_REJECT;
	}
	if (strcmp(action, "tempfail") == 0) {
		filter_set_reply(call, "451", "4.7.24",
		    "SPF %s for %s, try again later",
		    spf_result_name(a->result), a->domain);
		return FILTER_TEMPFAIL;
	}
	if (strcmp(action, "hold") == 0)
		t->hold = true;
	return FILTER_CONTINUE;
}

/* results_value - the Authentication-Results value, owned */
static char *
results_value(const char *authserv_id, const struct spf_answer *a,
    const struct spf_query *q)
{
	struct buf out;
	char *value;

	buf_init(&out, 0);
	buf_append(&out, authserv_id, strlen(authserv_id));
	buf_append(&out, "; spf=", 6);
	buf_append(&out, spf_result_name(a->result),
	    strlen(spf_result_name(a->result)));
	if (*q->sender != '\0') {
		buf_append(&out, " smtp.mailfrom=", 15);
		auth_results_add_value(&out, q->sender);
	} else {
		buf_append(&out, " smtp.helo=", 11);
		auth_results_add_value(&out, q->helo);
	}
	value = xstrdup(buf_cstr(&out));
	buf_deinit(&out);
	return value;
}

static enum filter_verdict
inbound(struct filter_call *call, struct spf_instance *in, struct spf_tx *t)
{
	const struct filter_conn *conn = call->conn;
	struct spf_query q;

	memset(&q, 0, sizeof(q));
	q.client_addr = conn->client_addr;
	q.helo = conn->helo != NULL ? conn->helo : "";
	q.sender = call->arg;
	q.identity = *call->arg != '\0' ? "mailfrom" : "helo";
	if (*q.sender == '\0' && *q.helo == '\0')
		return FILTER_CONTINUE;	/* nothing to check */
	spf_pool_check(in->pool, &q, &t->answer);
	t->checked = true;
	free(t->received);
	free(t->results);
	t->received = spf_received_value(&q, &t->answer, in->receiver);
	t->results = results_value(in->authserv_id, &t->answer, &q);
	return apply_action(call, t,
	    result_action(conn->config, t->answer.result), &t->answer);
}

/*
 * egress - would the sender's SPF record pass this relay's own outgoing
 * addresses? fail, softfail and permerror are problems; temperror is
 * only logged
 */
static enum filter_verdict
egress(struct filter_call *call, struct spf_instance *in, struct spf_tx *t)
{
	const struct config *cfg = call->conn->config;
	struct spf_query q;
	struct spf_answer a;
	char *const *addr;
	enum spf_result r;
	const char *qid = call->tx != NULL && call->tx->queue_id != NULL ?
	    call->tx->queue_id : "NOQUEUE";

	if (cfg->spf_egress_addresses == NULL || *call->arg == '\0')
		return FILTER_CONTINUE;
	for (addr = cfg->spf_egress_addresses; *addr != NULL; addr++) {
		memset(&q, 0, sizeof(q));
		q.client_addr = *addr;
		q.helo = in->receiver;
		q.sender = call->arg;
		q.identity = "mailfrom";
		spf_pool_check(in->pool, &q, &a);
		r = a.result;
		if (r == SPF_RES_TEMPERROR)
			log_info("%s: spf egress: %s for <%s> from %s: %s",
			    qid, spf_result_name(r), q.sender, *addr,
			    a.comment);
		if (r != SPF_RES_FAIL && r != SPF_RES_SOFTFAIL &&
		    r != SPF_RES_PERMERROR)
			continue;
		log_warnx("%s: spf egress: the SPF record of %s gives %s for "
		    "this relay's address %s (sender <%s>): %s", qid, a.domain,
		    spf_result_name(r), *addr, q.sender, a.comment);
		if (strcmp(cfg->spf_egress_action, "reject") == 0) {
			filter_set_reply(call, "550", "5.7.23", "SPF record of "
			    "%s does not authorize this relay (%s); fix the "
			    "record or use another sender", a.domain, *addr);
			return FILTER_REJECT;
		}
		if (strcmp(cfg->spf_egress_action, "hold") == 0)
			t->hold = true;
	}
	return FILTER_CONTINUE;
}

static enum filter_verdict
spf_mail(struct filter_call *call)
{
	const struct filter_conn *conn = call->conn;

	if (conn->is_authenticated || conn->is_mynetworks)
		return egress(call, call->instance, call->tx_state);
	return inbound(call, call->instance, call->tx_state);
}

static enum filter_verdict
spf_eom(struct filter_call *call)
{
	struct spf_tx *t = call->tx_state;

	if (t->checked && call->edits != NULL) {
		filter_edits_add(call->edits, FILTER_EDIT_INSERT_HEADER, 0,
		    "Authentication-Results", t->results);
		filter_edits_add(call->edits, FILTER_EDIT_INSERT_HEADER, 0,
		    "Received-SPF", t->received);
	}
	return t->hold ? FILTER_HOLD : FILTER_CONTINUE;
}

const struct filter_ops filter_spf = {
	.name = "spf",
	.stages = FILTER_STAGE_BIT(FILTER_STAGE_MAIL) |
	    FILTER_STAGE_BIT(FILTER_STAGE_EOM),
	.may_block = true,
	.edits = true,
	.init = spf_init,
	.deinit = spf_deinit,
	.tx_begin = spf_tx_begin,
	.tx_end = spf_tx_end,
	.cb = {
		[FILTER_STAGE_MAIL] = spf_mail,
		[FILTER_STAGE_EOM] = spf_eom,
	},
};

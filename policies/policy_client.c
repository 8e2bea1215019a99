/*
 * policy_client.c - the "policy" filter: asks the Postfix policy
 * services of smtpd_policy_services (postgrey, policyd-spf, rate
 * limiters) about each recipient, and optionally at end of message.
 *
 * It owns, per configuration load, one small pool of connections per
 * service: connections are reused across transactions and sessions
 * (a policy round trip must not cost a TCP handshake), closed when idle
 * longer than smtpd_policy_service_max_idle or older than _max_ttl.
 * TCP connections get TCP_NODELAY and each request goes out in one
 * write, so that small request/answer pairs never wait on Nagle and
 * delayed ACKs. The I/O blocks with poll() timeouts: the filter declares
 * may_block and runs on the filter pool.
 *
 * The wire format and the meaning of actions are policy_proto.c's; the
 * SMTP replies are checked again by the chain. A service that cannot be
 * reached, times out, closes or answers garbage gets
 * smtpd_policy_service_default_action, logged once per request with the
 * service's name.
 *
 * Reference: Postfix SMTPD_POLICY_README (protocol), access(5) (actions).
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "config/config.h"
#include "filter.h"
#include "log.h"
#include "peer_socket.h"
#include "policy_client.h"
#include "policy_proto.h"
#include "xmalloc.h"

/* idle connections kept per service; more are closed when handed back */
#define POLICY_IDLE_MAX		16

struct policy_conn {
	int	 fd;
	time_t	 created;
	time_t	 used;
	struct policy_conn *next;	/* owned: the rest of the idle list */
};

struct policy_service {
	char	*name;			/* owned: as configured */
	struct peer_endpoint ep;	/* owned: where it listens */
	pthread_mutex_t lock;		/* guards idle and nidle */
	struct policy_conn *idle;	/* owned list, most recent first */
	size_t	 nidle;
};

struct policy_instance {
	struct policy_service *services;	/* owned array */
	size_t	 nservices;
	int	 timeout_ms;
	time_t	 max_idle;
	time_t	 max_ttl;
	int	 try_limit;
	bool	 end_of_data;
	char	*default_action;	/* owned: an access(5) action */
	atomic_ulong serial;		/* for instance= values */
};

/* what the stages remember for the end of the message */
struct policy_tx {
	char	 instance[64];		/* instance= of this transaction */
	bool	 hold;
	bool	 discard;
	char	**prepend;		/* owned array of owned "h: v" */
	size_t	 nprepend;
	char	**bcc;			/* owned array of owned addresses */
	size_t	 nbcc;
	char	*redirect;		/* owned or NULL */
};

/* ---- services and connections ---- */

/*
 * service_parse - "inet:host:port" ("inet:[v6]:port") or "unix:/path"
 * into svc; -1 with *error_r (owned)
 */
static int
service_parse(struct policy_service *svc, const char *spec, char **error_r)
{
	const char *err;

	svc->name = xstrdup(spec);
	if (peer_endpoint_parse(&svc->ep, spec, &err) == -1) {
		*error_r = xasprintf("smtpd_policy_services: \"%s\": %s",
		    spec, err);
		return -1;
	}
	return 0;
}

static void
conn_close(struct policy_conn **cp)
{
	if (*cp == NULL)
		return;
	close((*cp)->fd);
	free(*cp);
	*cp = NULL;
}

/* service_connect - a new connection to svc; NULL with *error_r */
static struct policy_conn *
service_connect(const struct policy_service *svc, int64_t deadline,
    const char **error_r)
{
	struct policy_conn *c;
	int fd;

	if ((fd = peer_connect(&svc->ep, deadline, error_r)) == -1)
		return NULL;
	c = xcalloc(1, sizeof(*c));
	c->fd = fd;
	c->created = c->used = time(NULL);
	return c;
}

/*
 * service_take - the most recently used idle connection, or NULL. Every
 * idle connection past max_idle or max_ttl is closed on the way, so that
 * a service sees its idle connections go even while other ones are busy.
 * XXX issue 4: with no requests at all, idle connections stay open until
 * the next request or reload (no timer runs on the filter pool).
 */
static struct policy_conn *
service_take(const struct policy_instance *in, struct policy_service *svc)
{
	struct policy_conn *c, *next, *keep = NULL, **tail = &keep;
	struct policy_conn *stale = NULL;
	time_t now = time(NULL);

	pthread_mutex_lock(&svc->lock);
	for (c = svc->idle; c != NULL; c = next) {
		next = c->next;
		if (now - c->used < in->max_idle &&
		    now - c->created < in->max_ttl) {
			*tail = c;
			tail = &c->next;
		} else {
			c->next = stale;
			stale = c;
			svc->nidle--;
		}
	}
	*tail = NULL;
	if ((c = keep) != NULL) {
		keep = c->next;
		c->next = NULL;
		svc->nidle--;
	}
	svc->idle = keep;
	pthread_mutex_unlock(&svc->lock);
	for (; stale != NULL; stale = next) {
		next = stale->next;
		conn_close(&stale);
	}
	return c;
}

/* service_give - hand a healthy connection back to the idle list */
static void
service_give(const struct policy_instance *in, struct policy_service *svc,
    struct policy_conn *c)
{
	c->used = time(NULL);
	if (c->used - c->created >= in->max_ttl) {
		conn_close(&c);
		return;
	}
	pthread_mutex_lock(&svc->lock);
	if (svc->nidle < POLICY_IDLE_MAX) {
		c->next = svc->idle;
		svc->idle = c;
		svc->nidle++;
		c = NULL;
	}
	pthread_mutex_unlock(&svc->lock);
	conn_close(&c);
}

/*
 * exchange - send the request in one write, read one answer. Returns 1
 * with *action_r (owned) and *clean_r (nothing but the answer came), 0
 * when the peer closed before a byte of the answer (a dead cached
 * connection), -1 on any other failure; *error_r set unless 1.
 */
static int
exchange(int fd, const struct buf *req, int64_t deadline, char **action_r,
    bool *clean_r, const char **error_r)
{
	char in[POLICY_ANSWER_MAX + 1];
	size_t got = 0, used, sent;
	ssize_t n;
	int rc;

	if (peer_write_all(fd, req->data, req->len, deadline, &sent,
	    error_r) == -1)
		return sent == 0 && (errno == EPIPE || errno == ECONNRESET) ?
		    0 : -1;
	for (;;) {
		n = peer_read(fd, in + got, sizeof(in) - got, deadline,
		    error_r);
		if (n > 0) {
			got += (size_t)n;
			rc = policy_answer_parse(in, got, action_r, &used,
			    error_r);
			if (rc == 1) {
				*clean_r = used == got;
				return 1;
			}
			if (rc == -1)
				return -1;
			if (got == sizeof(in)) {
				*error_r = "answer too long";
				return -1;
			}
			continue;
		}
		if (n == 0) {
			*error_r = got == 0 ? "connection closed" :
			    "connection closed in the middle of the answer";
			return got == 0 ? 0 : -1;
		}
		if (errno == ETIMEDOUT)
			*error_r = "timeout while reading the answer";
		return got == 0 && errno == ECONNRESET ? 0 : -1;
	}
}

/*
 * service_query - one request to svc, up to try_limit attempts (a cached
 * connection found dead before it answered is replaced once without
 * counting: the service may simply have closed an idle connection).
 * 0 with *action_r (owned), or -1 with *error_r (static).
 */
static int
service_query(const struct policy_instance *in, struct policy_service *svc,
    const struct buf *req, char **action_r, const char **error_r)
{
	struct policy_conn *c;
	bool reused, retried = false, clean = false;
	int attempt = 0, rc;
	int64_t deadline;

	*error_r = "no attempt made";
	while (attempt < in->try_limit) {
		deadline = peer_deadline(in->timeout_ms);
		c = service_take(in, svc);
		reused = c != NULL;
		if (c == NULL &&
		    (c = service_connect(svc, deadline, error_r)) == NULL) {
			attempt++;
			continue;
		}
		rc = exchange(c->fd, req, deadline, action_r, &clean,
		    error_r);
		if (rc == 1) {
			if (clean)
				service_give(in, svc, c);
			else
				conn_close(&c);	/* out of step: unusable */
			return 0;
		}
		conn_close(&c);
		if (rc == 0 && reused && !retried) {
			retried = true;
			continue;
		}
		attempt++;
	}
	return -1;
}

/* ---- the filter ---- */

static void policy_deinit(void *);

static void *
policy_init(const struct config *cfg, char **error_r)
{
	struct policy_instance *in;
	struct policy_action a;
	const char *err;
	char *const *spec;
	size_t n = 0;

	for (spec = cfg->smtpd_policy_services; spec != NULL &&
	    *spec != NULL; spec++)
		n++;
	if (n == 0)
		return NULL;	/* nothing to ask: no instance, no error */
	if (policy_action_parse(cfg->smtpd_policy_service_default_action,
	    &a, &err) == -1) {
		*error_r = xasprintf("smtpd_policy_service_default_action: "
		    "\"%s\": %s", cfg->smtpd_policy_service_default_action,
		    err);
		return NULL;
	}
	in = xcalloc(1, sizeof(*in));
	in->services = xcalloc(n, sizeof(*in->services));
	for (n = 0, spec = cfg->smtpd_policy_services; *spec != NULL;
	    spec++, n++) {
		pthread_mutex_init(&in->services[n].lock, NULL);
		in->nservices = n + 1;
		if (service_parse(&in->services[n], *spec, error_r) == -1) {
			policy_deinit(in);
			return NULL;
		}
	}
	in->timeout_ms = cfg->smtpd_policy_service_timeout * 1000;
	in->max_idle = cfg->smtpd_policy_service_max_idle;
	in->max_ttl = cfg->smtpd_policy_service_max_ttl;
	in->try_limit = cfg->smtpd_policy_service_try_limit;
	in->end_of_data = cfg->smtpd_policy_service_end_of_data;
	in->default_action = xstrdup(cfg->smtpd_policy_service_default_action);
	atomic_init(&in->serial, 0);
	return in;
}

static void
policy_deinit(void *instance)
{
	struct policy_instance *in = instance;
	struct policy_service *svc;
	struct policy_conn *c, *next;
	size_t i;

	if (in == NULL)
		return;
	for (i = 0; i < in->nservices; i++) {
		svc = &in->services[i];
		for (c = svc->idle; c != NULL; c = next) {
			next = c->next;
			conn_close(&c);
		}
		pthread_mutex_destroy(&svc->lock);
		free(svc->name);
		peer_endpoint_deinit(&svc->ep);
	}
	free(in->services);
	free(in->default_action);
	free(in);
}

static void *
policy_tx_begin(void *instance, const struct filter_conn *conn)
{
	struct policy_instance *in = instance;
	struct policy_tx *t;

	if (in == NULL)
		return NULL;
	t = xcalloc(1, sizeof(*t));
	/* unique per transaction, like Postfix's pid.time.counter form */
	snprintf(t->instance, sizeof(t->instance), "%lx.%llx.%lx",
	    (unsigned long)getpid(), conn->session_id,
	    atomic_fetch_add(&in->serial, 1) + 1);
	return t;
}

static void
free_list(char **list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

static void
policy_tx_end(void *instance, void *state)
{
	struct policy_tx *t = state;

	if (t == NULL)
		return;
	free_list(t->prepend, t->nprepend);
	free_list(t->bcc, t->nbcc);
	free(t->redirect);
	free(t);
}

/* keysize - the symmetric key size a cipher name implies, 0 unknown */
static int
keysize(const char *cipher)
{
	if (cipher == NULL)
		return 0;
	if (strstr(cipher, "AES256") != NULL ||
	    strstr(cipher, "AES_256") != NULL ||
	    strstr(cipher, "CHACHA20") != NULL)
		return 256;
	if (strstr(cipher, "AES128") != NULL ||
	    strstr(cipher, "AES_128") != NULL)
		return 128;
	return 0;
}

/* build_request - the attributes of call for protocol_state state */
static void
build_request(struct buf *out, const struct filter_call *call,
    const struct policy_tx *t, const char *state)
{
	const struct filter_conn *conn = call->conn;
	const struct filter_tx *tx = call->tx;
	struct policy_request r;

	memset(&r, 0, sizeof(r));
	r.protocol_state = state;
	/* XXX issue 4: filter_conn does not say HELO or EHLO */
	r.protocol_name = conn->is_esmtp ? "ESMTP" : "SMTP";
	r.helo_name = conn->helo;
	r.client_address = conn->client_addr;
	r.client_name = conn->client_name;
	r.reverse_client_name = conn->client_name;
	r.client_port = filter_sa_port(conn->client_sa);
	r.instance = t->instance;
	r.sasl_method = conn->sasl_method;
	r.sasl_username = conn->sasl_username;
	r.encryption_protocol = conn->tls_version;
	r.encryption_cipher = conn->tls_cipher;
	r.encryption_keysize = keysize(conn->tls_cipher);
	if (tx != NULL) {
		r.queue_id = tx->queue_id;
		r.sender = tx->sender;
		r.size = tx->size;
	}
	if (call->stage == FILTER_STAGE_RCPT) {
		/* as Postfix: recipient_count is 0 before DATA */
		r.recipient = call->arg;
	} else if (tx != NULL) {
		r.recipient_count = tx->nrcpts;
		/* Postfix names the recipient only when there is one */
		r.recipient = tx->nrcpts == 1 ? tx->rcpts[0].address : "";
	}
	policy_request_encode(out, &r);
}

static const char *
queue_id(const struct filter_call *call)
{
	return call->tx != NULL && call->tx->queue_id != NULL ?
	    call->tx->queue_id : "NOQUEUE";
}

/*
 * ask - the action of one service for req, or the default action when
 * the service fails or answers something unusable (logged once)
 */
static void
ask(const struct filter_call *call, const struct policy_instance *in,
    struct policy_service *svc, const struct buf *req,
    struct policy_action *a)
{
	char *action = NULL, esc[256];
	const char *err, *perr;

	if (service_query(in, svc, req, &action, &err) == -1) {
		log_warnx("%s: policy service %s failed (%s), stage=%s; "
		    "using smtpd_policy_service_default_action \"%s\"",
		    queue_id(call), svc->name, err,
		    filter_stage_name(call->stage), in->default_action);
		goto dflt;
	}
	if (policy_action_parse(action, a, &perr) == -1) {
		log_warnx("%s: policy service %s: %s \"%s\", stage=%s; "
		    "using smtpd_policy_service_default_action \"%s\"",
		    queue_id(call), svc->name, perr,
		    log_escape(esc, sizeof(esc), action),
		    filter_stage_name(call->stage), in->default_action);
		free(action);
		goto dflt;
	}
	if (log_debug_enabled("policy"))
		log_debug("policy", "%s: policy service %s: action=%s",
		    queue_id(call), svc->name,
		    log_escape(esc, sizeof(esc), action));
	free(action);
	return;
dflt:
	/* checked by policy_init */
	(void)policy_action_parse(in->default_action, a, &perr);
}

static void
push(char ***list, size_t *n, const char *s)
{
	*list = xreallocarray(*list, *n + 1, sizeof(**list));
	(*list)[(*n)++] = xstrdup(s);
}

static enum filter_verdict
reply(struct filter_call *call, const struct policy_action *a,
    enum filter_verdict v)
{
	filter_set_reply(call, a->code, a->enhanced, "%s", a->text);
	return v;
}

/*
 * run_services - ask every service in order, as Postfix evaluates a
 * restriction list of check_policy_service entries
 */
static enum filter_verdict
run_services(struct filter_call *call, struct policy_instance *in,
    struct policy_tx *t, const char *state)
{
	struct policy_action a, if_permit, if_reject;
	bool is_if_permit = false, is_if_reject = false;
	struct buf req;
	size_t i;
	const char *qid = queue_id(call);

	buf_init(&req, 0);
	build_request(&req, call, t, state);
	for (i = 0; i < in->nservices; i++) {
		ask(call, in, &in->services[i], &req, &a);
		switch (a.kind) {
		case POLICY_ACT_DUNNO:
			continue;
		case POLICY_ACT_OK:
			goto permit;
		case POLICY_ACT_REJECT:
			buf_deinit(&req);
			if (is_if_reject)
				return reply(call, &if_reject,
				    FILTER_TEMPFAIL);
			return reply(call, &a, FILTER_REJECT);
		case POLICY_ACT_DEFER:
			buf_deinit(&req);
			return reply(call, &a, FILTER_TEMPFAIL);
		case POLICY_ACT_DISCONNECT:
			buf_deinit(&req);
			return reply(call, &a, FILTER_DISCONNECT);
		case POLICY_ACT_DEFER_IF_PERMIT:
			if (!is_if_permit)
				if_permit = a;
			is_if_permit = true;
			continue;
		case POLICY_ACT_DEFER_IF_REJECT:
			if (!is_if_reject)
				if_reject = a;
			is_if_reject = true;
			continue;
		case POLICY_ACT_HOLD:
			log_info("%s: hold: %s from %s[%s]: %s; filter=policy "
			    "service=%s", qid, state, call->conn->client_name,
			    call->conn->client_addr, *a.text != '\0' ? a.text :
			    "(no text)", in->services[i].name);
			t->hold = true;
			continue;
		case POLICY_ACT_DISCARD:
			log_info("%s: discard: %s from %s[%s]: %s; "
			    "filter=policy service=%s", qid, state,
			    call->conn->client_name, call->conn->client_addr,
			    *a.text != '\0' ? a.text : "(no text)",
			    in->services[i].name);
			t->discard = true;
			goto permit;	/* Postfix: DISCARD permits */
		case POLICY_ACT_PREPEND:
			push(&t->prepend, &t->nprepend, a.text);
			continue;
		case POLICY_ACT_REDIRECT:
			log_info("%s: redirect: %s from %s[%s]: %s; "
			    "filter=policy service=%s", qid, state,
			    call->conn->client_name, call->conn->client_addr,
			    a.text, in->services[i].name);
			free(t->redirect);
			t->redirect = xstrdup(a.text);
			continue;
		case POLICY_ACT_BCC:
			push(&t->bcc, &t->nbcc, a.text);
			continue;
		case POLICY_ACT_WARN:
			log_warnx("%s: warn: %s from %s[%s]: %s; filter=policy "
			    "service=%s", qid, state, call->conn->client_name,
			    call->conn->client_addr, a.text,
			    in->services[i].name);
			continue;
		case POLICY_ACT_INFO:
			log_info("%s: info: %s from %s[%s]: %s; filter=policy "
			    "service=%s", qid, state, call->conn->client_name,
			    call->conn->client_addr, a.text,
			    in->services[i].name);
			continue;
		case POLICY_ACT_FILTER:
			log_warnx("%s: policy service %s: FILTER %s is not "
			    "supported; ignored", qid, in->services[i].name,
			    a.text);
			continue;
		}
	}
permit:
	buf_deinit(&req);
	/* the implicit permit at the end of the list sets it off too */
	if (is_if_permit)
		return reply(call, &if_permit, FILTER_TEMPFAIL);
	return FILTER_CONTINUE;
}

static enum filter_verdict
policy_rcpt(struct filter_call *call)
{
	if (call->instance == NULL || call->tx_state == NULL)
		return FILTER_CONTINUE;
	return run_services(call, call->instance, call->tx_state, "RCPT");
}

/* split_header - "Name: value" into name and value (both owned) */
static void
split_header(const char *h, char **name_r, char **value_r)
{
	const char *colon = strchr(h, ':'), *v;

	*name_r = xstrndup(h, (size_t)(colon - h));
	for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
		;
	*value_r = xstrdup(v);
}

/* eom_edits - the remembered PREPEND, REDIRECT and BCC actions */
static void
eom_edits(struct filter_call *call, const struct policy_tx *t)
{
	const struct filter_tx *tx = call->tx;
	char *name, *value;
	size_t i;
	bool kept = false;

	if (call->edits == NULL)
		return;
	for (i = 0; i < t->nprepend; i++) {
		split_header(t->prepend[i], &name, &value);
		filter_edits_add(call->edits, FILTER_EDIT_INSERT_HEADER, i,
		    name, value);
		free(name);
		free(value);
	}
	if (t->redirect != NULL && tx != NULL) {
		for (i = 0; i < tx->nrcpts; i++) {
			if (strcasecmp(tx->rcpts[i].address,
			    t->redirect) == 0) {
				kept = true;
				continue;
			}
			filter_edits_add(call->edits, FILTER_EDIT_DELETE_RCPT,
			    0, NULL, tx->rcpts[i].address);
		}
		if (!kept)
			filter_edits_add(call->edits, FILTER_EDIT_ADD_RCPT, 0,
			    NULL, t->redirect);
	}
	for (i = 0; i < t->nbcc; i++)
		filter_edits_add(call->edits, FILTER_EDIT_ADD_RCPT, 0, NULL,
		    t->bcc[i]);
}

static enum filter_verdict
policy_eom(struct filter_call *call)
{
	struct policy_instance *in = call->instance;
	struct policy_tx *t = call->tx_state;
	enum filter_verdict v;

	if (in == NULL || t == NULL)
		return FILTER_CONTINUE;
	if (in->end_of_data) {
		v = run_services(call, in, t, "END-OF-MESSAGE");
		if (v != FILTER_CONTINUE)
			return v;
	}
	eom_edits(call, t);
	if (t->discard)
		return FILTER_DISCARD;
	return t->hold ? FILTER_HOLD : FILTER_CONTINUE;
}

const struct filter_ops filter_policy = {
	.name = "policy",
	.stages = FILTER_STAGE_BIT(FILTER_STAGE_RCPT) |
	    FILTER_STAGE_BIT(FILTER_STAGE_EOM),
	.may_block = true,
	.edits = true,
	.init = policy_init,
	.deinit = policy_deinit,
	.tx_begin = policy_tx_begin,
	.tx_end = policy_tx_end,
	.cb = {
		[FILTER_STAGE_RCPT] = policy_rcpt,
		[FILTER_STAGE_EOM] = policy_eom,
	},
};

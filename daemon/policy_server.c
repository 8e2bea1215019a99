/*
 * policy_server.c - connections of the `policy` listener: Postfix's
 * check_policy_service talking to posternd; see policy_server.h.
 *
 * This module owns the sockets, the per-connection idle timer, the limits
 * on what a client may send (policy_server_request.h), the hand-off to
 * the filter pool and the policy chain kept per runtime. Parsing a
 * request is policy_server_request.c's job; what the answer is,
 * policy_server_answer.c's.
 *
 * Protocol (Postfix SMTPD_POLICY_README, "Protocol description"): the
 * client sends "name=value\n" lines and an empty line; the server answers
 * "action=...\n\n" and keeps the connection for the next request. Postfix
 * keeps one connection per smtpd process and may write the next request
 * before the answer to the previous one came; answers go out in request
 * order because a connection works on one request at a time (reading
 * stops while it is with the pool). A server in trouble closes without an
 * answer, which Postfix turns into its smtpd_policy_service_default_action
 * (451 4.3.5 by default) after its retries: so does this one for a
 * request it cannot take apart, after a log line.
 *
 * Who may ask: policy_listen_clients (an address match list, loopback by
 * default); anyone else is logged and closed before a byte is read. The
 * policy connections are not counted against smtpd_max_connections: a
 * Postfix keeps at most one per smtpd process.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "config/config.h"
#include "log.h"
#include "loop.h"
#include "matchlist.h"
#include "policy_server.h"
#include "policy_server_answer.h"
#include "policy_server_request.h"
#include "pool.h"
#include "runtime.h"
#include "xmalloc.h"

/* the policy chain built for one runtime, shared by the requests */
struct ps_chain {
	atomic_int refs;
	struct runtime *rt;		/* owned reference */
	struct policy_chain *pc;	/* owned */
};

struct pconn {
	struct loop *loop;		/* borrowed: the accepting loop */
	struct bufferevent *bev;	/* owned; closes the socket */
	struct event *idle;		/* owned: idle timer */
	char	 addr[64];		/* client address, for logs */
	char	 where[96];		/* listener, for logs */
	char	*prepended;		/* owned: the instance that got a
					   PREPEND, or NULL */
	unsigned long nrequests;	/* answered, for the log */
	bool	 busy;			/* a request is with the pool */
	bool	 closing;		/* free when the pool is done */
	bool	 close_on_drain;	/* free once the answer is out */
	struct pconn *prev, *next;	/* the loop's list */
};

/* one request on its way through the pool */
struct pjob {
	struct pconn *c;		/* borrowed: kept alive by c->busy */
	struct policy_server_request req;	/* owned */
	struct runtime *rt;		/* owned reference */
	struct ps_chain *chain;		/* owned reference; NULL: build */
	bool	 want_prepend;
	struct policy_server_result res;
};

/* the connections of the calling loop (loops are threads) */
static __thread struct pconn *loop_conns;

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct ps_chain *cache;		/* owned reference */
static bool cache_closed;

static bool pconn_process(struct pconn *);

/* ---- the policy chain of the runtime in force ---- */

static void
ps_chain_unref(struct ps_chain **pp)
{
	struct ps_chain *p = *pp;

	if (p == NULL)
		return;
	*pp = NULL;
	if (atomic_fetch_sub(&p->refs, 1) != 1)
		return;
	policy_chain_free(&p->pc);
	runtime_unref(&p->rt);
	free(p);
}

/* ps_chain_lookup - a reference on the cached chain of rt, or NULL */
static struct ps_chain *
ps_chain_lookup(const struct runtime *rt)
{
	struct ps_chain *p = NULL;

	pthread_mutex_lock(&cache_mu);
	if (cache != NULL && cache->rt == rt) {
		p = cache;
		atomic_fetch_add(&p->refs, 1);
	}
	pthread_mutex_unlock(&cache_mu);
	return p;
}

/*
 * ps_chain_get - the chain of rt, built if needed (filter inits: pool
 * threads only). NULL and *error_r (owned) if it cannot be built.
 */
static struct ps_chain *
ps_chain_get(struct runtime *rt, char **error_r)
{
	struct ps_chain *p, *old = NULL;
	struct policy_chain *pc;

	if ((p = ps_chain_lookup(rt)) != NULL)
		return p;
	/* built outside the lock: two threads may race, one copy wins */
	if ((pc = policy_chain_new(rt->config, error_r)) == NULL)
		return NULL;
	p = xcalloc(1, sizeof(*p));
	atomic_init(&p->refs, 1);
	runtime_ref(rt);
	p->rt = rt;
	p->pc = pc;
	pthread_mutex_lock(&cache_mu);
	if (cache != NULL && cache->rt == rt) {
		old = p;		/* lost the race */
		p = cache;
		atomic_fetch_add(&p->refs, 1);
	} else if (!cache_closed) {
		old = cache;
		cache = p;
		atomic_fetch_add(&p->refs, 1);
	}
	pthread_mutex_unlock(&cache_mu);
	ps_chain_unref(&old);
	return p;
}

void
policy_server_release(void)
{
	struct ps_chain *old;

	pthread_mutex_lock(&cache_mu);
	old = cache;
	cache = NULL;
	cache_closed = true;
	pthread_mutex_unlock(&cache_mu);
	ps_chain_unref(&old);
}

/* ---- connections ---- */

static void
pconn_free(struct pconn *c)
{
	if (c->bev != NULL)
		log_info("policy: disconnect from %s requests=%lu; listener=%s",
		    c->addr, c->nrequests, c->where);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		loop_conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	if (c->idle != NULL)
		event_free(c->idle);
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	free(c->prepended);
	free(c);
}

/* pconn_close - end the connection now, or when the pool gives it back */
static void
pconn_close(struct pconn *c)
{
	if (c->busy) {
		c->closing = true;
		bufferevent_disable(c->bev, EV_READ);
		return;
	}
	pconn_free(c);
}

/*
 * pconn_close_after_write - let the answers already queued go out first;
 * false when c is freed now
 */
static bool
pconn_close_after_write(struct pconn *c)
{
	bufferevent_disable(c->bev, EV_READ);
	evtimer_del(c->idle);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		pconn_free(c);
		return false;
	}
	c->close_on_drain = true;
	return true;
}

static void
pconn_arm_idle(struct pconn *c)
{
	struct runtime *rt = runtime_current();
	struct timeval tv = { rt->config->policy_listen_idle_timeout, 0 };

	runtime_unref(&rt);
	evtimer_add(c->idle, &tv);
}

/* pconn_answer - write the answer and log it; c is not busy */
static void
pconn_answer(struct pconn *c, struct pjob *j)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	/* one write per answer: evbuffer_add_printf fills one chain */
	evbuffer_add_printf(out, "action=%s\n\n", j->res.action);
	c->nrequests++;
	policy_server_log(&j->req.req, &j->res);
	if (j->res.dropped != NULL)
		log_debug("policy", "policy: %s from %s: edits not passed to "
		    "the client: %s", j->req.req.protocol_state, c->addr,
		    j->res.dropped);
	if (j->res.prepended) {
		free(c->prepended);
		c->prepended = xstrdup(j->req.req.instance);
	}
}

static void
pjob_free(struct pjob *j)
{
	policy_server_request_deinit(&j->req);
	policy_server_result_deinit(&j->res);
	ps_chain_unref(&j->chain);
	runtime_unref(&j->rt);
	free(j);
}

/* pjob_run - answer the request (on the pool, or inline on the loop) */
static void
pjob_run(void *arg)
{
	struct pjob *j = arg;
	char *error = NULL;

	if (j->chain == NULL &&
	    (j->chain = ps_chain_get(j->rt, &error)) == NULL) {
		/* cannot happen for a configuration that loaded; be safe */
		log_warnx("policy: cannot set up the policy filters: %s",
		    error != NULL ? error : "shutting down");
		free(error);
		memset(&j->res, 0, sizeof(j->res));
		j->res.verdict = FILTER_TEMPFAIL;
		j->res.filter = "chain";
		snprintf(j->res.reply, sizeof(j->res.reply),
		    "451 4.3.5 Server configuration problem");
		j->res.action = xstrdup(j->res.reply);
		return;
	}
	policy_server_answer(j->chain->pc, j->rt->config, &j->req.req,
	    j->want_prepend, &j->res);
}

/* pjob_done - back on the loop: answer, then go on with the input */
static void
pjob_done(void *arg)
{
	struct pjob *j = arg;
	struct pconn *c = j->c;

	c->busy = false;
	if (c->closing) {
		pjob_free(j);
		pconn_free(c);
		return;
	}
	pconn_answer(c, j);
	pjob_free(j);
	bufferevent_enable(c->bev, EV_READ);
	pconn_arm_idle(c);
	(void)pconn_process(c);	/* c may be freed */
}

/* pconn_dispatch - answer one request (takes req over) */
static void
pconn_dispatch(struct pconn *c, struct policy_server_request *req)
{
	struct pjob *j;
	const char *inst = req->req.instance;

	j = xcalloc(1, sizeof(*j));
	j->c = c;
	j->req = *req;
	j->rt = runtime_current();
	/* one PREPEND per message: Postfix asks once per recipient */
	j->want_prepend = *inst == '\0' || c->prepended == NULL ||
	    strcmp(c->prepended, inst) != 0;
	j->chain = ps_chain_lookup(j->rt);
	if (j->chain != NULL &&
	    !policy_chain_may_block(j->chain->pc, &j->req.req)) {
		/* relay and sender only: no hand-off (DESIGN.md) */
		pjob_run(j);
		pconn_answer(c, j);
		pjob_free(j);
		return;
	}
	c->busy = true;
	bufferevent_disable(c->bev, EV_READ);
	evtimer_del(c->idle);
	pool_submit_filter(c->loop, pjob_run, pjob_done, j);
}

/*
 * pconn_process - answer every complete request in the input, in order;
 * false when c was freed (a malformed request with nothing left to send)
 */
static bool
pconn_process(struct pconn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct policy_server_request req;
	const char *error = NULL;
	unsigned char *data;
	size_t len, used;
	int rc;

	while (!c->busy && !c->close_on_drain &&
	    (len = evbuffer_get_length(in)) > 0) {
		data = evbuffer_pullup(in, -1);
		rc = policy_server_request_parse((const char *)data, len,
		    &req, &used, &error);
		if (rc == 0)
			return true;
		if (rc == -1) {
			log_warnx("policy: malformed request from %s: %s; "
			    "connection closed; listener=%s", c->addr, error,
			    c->where);
			return pconn_close_after_write(c);
		}
		evbuffer_drain(in, used);
		pconn_dispatch(c, &req);
	}
	return true;
}

static void
pconn_read_cb(struct bufferevent *bev, void *arg)
{
	struct pconn *c = arg;

	if (c->busy || c->close_on_drain)
		return;
	evtimer_del(c->idle);
	if (!pconn_process(c))
		return;		/* freed */
	if (!c->busy && !c->close_on_drain)
		pconn_arm_idle(c);
}

static void
pconn_write_cb(struct bufferevent *bev, void *arg)
{
	struct pconn *c = arg;

	if (c->close_on_drain)
		pconn_free(c);
}

static void
pconn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct pconn *c = arg;

	if (what & BEV_EVENT_ERROR)
		log_debug("policy", "policy: connection from %s: %s",
		    c->addr, strerror(errno));
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		if (!c->busy && evbuffer_get_length(
		    bufferevent_get_input(bev)) > 0)
			log_warnx("policy: connection from %s closed in the "
			    "middle of a request; listener=%s", c->addr,
			    c->where);
		pconn_close(c);
	}
}

static void
pconn_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pconn *c = arg;

	log_debug("policy", "policy: connection from %s idle, closed",
	    c->addr);
	pconn_close(c);
}

/* addr_text - the numeric address of sa */
static void
addr_text(const struct sockaddr *sa, char *out, size_t n)
{
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
		    out, n);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &sin6->sin6_addr, out, n);
	else
		snprintf(out, n, "unknown");
}

void
policy_server_start(struct loop *loop, int fd, const struct sockaddr *sa,
    socklen_t salen, const char *where)
{
	struct runtime *rt;
	struct pconn *c;
	char addr[64];
	bool allowed;
	int one = 1;

	addr_text(sa, addr, sizeof(addr));
	rt = runtime_current();
	allowed = rt->config->policy_listen_clients != NULL &&
	    matchlist_match_addr(rt->config->policy_listen_clients, sa);
	runtime_unref(&rt);
	if (!allowed) {
		log_warnx("policy: connection from %s refused: not in "
		    "policy_listen_clients; listener=%s", addr, where);
		close(fd);
		return;
	}
	/* small request/answer packets: no Nagle delay (issue 4, speed) */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1)
		log_debug("policy", "TCP_NODELAY: %s", strerror(errno));
	evutil_make_socket_nonblocking(fd);
	c = xcalloc(1, sizeof(*c));
	c->loop = loop;
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	snprintf(c->where, sizeof(c->where), "%s", where);
	c->bev = bufferevent_socket_new(loop_base(loop), fd,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	c->idle = evtimer_new(loop_base(loop), pconn_idle_cb, c);
	if (c->bev == NULL || c->idle == NULL) {
		log_warnx("policy: cannot set up a connection from %s", addr);
		if (c->bev == NULL)
			close(fd);
		c->next = loop_conns;	/* pconn_free unlinks it */
		if (loop_conns != NULL)
			loop_conns->prev = c;
		loop_conns = c;
		pconn_free(c);
		return;
	}
	c->next = loop_conns;
	if (loop_conns != NULL)
		loop_conns->prev = c;
	loop_conns = c;
	/*
	 * the input never holds more than one request's limit: beyond it a
	 * request cannot be complete and the parser says so
	 */
	bufferevent_setwatermark(c->bev, EV_READ, 0,
	    POLICY_SERVER_REQUEST_MAX + 1);
	bufferevent_setcb(c->bev, pconn_read_cb, pconn_write_cb,
	    pconn_event_cb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	pconn_arm_idle(c);
	log_info("policy: connect from %s; listener=%s", addr, where);
}

void
policy_server_shutdown_loop(void)
{
	struct pconn *c, *next;

	for (c = loop_conns; c != NULL; c = next) {
		next = c->next;
		if (!c->closing)
			pconn_close(c);
	}
}

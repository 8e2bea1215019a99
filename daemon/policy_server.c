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
 * policy connections are not counted against smtpd_max_connections (a
 * Postfix keeps at most one per smtpd process) but against their own
 * policy_listen_max_connections; one over it is logged and closed.
 *
 * A client that half-closes (EOF on reading) still gets the answers to
 * the complete requests it sent, those waiting for the pool or for room
 * in the output included; then the connection closes once the answers
 * are written, and an incomplete request left in the input is logged
 * and dropped (pconn_check_eof). A reset closes at once.
 *
 * The outcome of the last message's stages before RCPT (SPF) is kept per
 * connection (policy_server_answer.h, struct policy_server_msg): Postfix
 * sends the requests of one message on one connection, in order, so one
 * entry is enough and memory stays bounded. It travels with the job to
 * the pool and back, so the loop and the pool never share it.
 *
 * What a client may cost: the input holds at most one request's limit
 * (the read watermark); the answers waiting for a client that writes
 * without reading at most PS_OUTPUT_MAX, past which reading stops until
 * the client reads (the write callback resumes it). Time: a connection
 * with nothing pending is closed after policy_listen_idle_timeout; a
 * request must be complete within that time of its first byte (the timer
 * restarts when a request completes, not on every byte, so a client
 * trickling a byte at a time is closed), and a client that does not read
 * its answers is closed as well.
 *
 * The chain of a configuration is built once and cached. The cache holds
 * a reference on the configuration only (the chain borrows it), not on
 * the runtime, so a reload frees the old TLS context and SMTP chain as
 * soon as their sessions end; the stale chain itself is dropped by
 * policy_server_reload(), or at the latest by the next policy connection
 * or request.
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

/* the most answer bytes waiting for a client before reading stops */
#define PS_OUTPUT_MAX	(64 * 1024)

/* the policy chain built for one configuration, shared by the requests */
struct ps_chain {
	atomic_int refs;
	struct config *cfg;		/* owned reference; the chain's */
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
	char	*rcpt_instance;		/* owned: the instance rcpts counts,
					   or NULL */
	size_t	 rcpts;			/* its recipients let through */
	struct policy_server_msg *msg;	/* owned: the last message's
					   outcome before RCPT (SPF); with
					   the job while busy */
	unsigned long nrequests;	/* answered, for the log */
	bool	 busy;			/* a request is with the pool */
	bool	 eof;			/* the client half-closed: answer
					   what is complete, then close */
	bool	 closing;		/* free when the pool is done */
	bool	 close_on_drain;	/* free once the answer is out */
	bool	 out_full;		/* reading stopped: PS_OUTPUT_MAX */
	bool	 pending;		/* the timer is a request's deadline */
	struct pconn *prev, *next;	/* the loop's list */
};

/* one request on its way through the pool */
struct pjob {
	struct pconn *c;		/* borrowed: kept alive by c->busy */
	struct policy_server_request req;	/* owned */
	struct runtime *rt;		/* owned reference */
	struct ps_chain *chain;		/* owned reference; NULL: build */
	bool	 want_prepend;
	size_t	 accepted_rcpts;	/* of the message, before this one */
	struct policy_server_msg *msg;	/* owned: c->msg, lent to the job
					   and given back by pconn_answer
					   (a pointer: a job per request
					   stays small) */
	struct policy_server_result res;
};

/* the connections of the calling loop (loops are threads) */
static __thread struct pconn *loop_conns;

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct ps_chain *cache;		/* owned reference */
static bool cache_closed;

/* policy connections, all loops: policy_listen_max_connections */
static atomic_uint nconns;

static bool pconn_process(struct pconn *);
static bool pconn_check_eof(struct pconn *);
static void pconn_arm_timer(struct pconn *);

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
	config_unref(&p->cfg);
	free(p);
}

/*
 * ps_chain_lookup - a reference on the cached chain of rt, or NULL; a
 * cached chain of another configuration (before a reload) is dropped
 */
static struct ps_chain *
ps_chain_lookup(const struct runtime *rt)
{
	struct ps_chain *p = NULL, *stale = NULL;

	pthread_mutex_lock(&cache_mu);
	if (cache != NULL && cache->cfg == rt->config) {
		p = cache;
		atomic_fetch_add(&p->refs, 1);
	} else {
		stale = cache;
		cache = NULL;
	}
	pthread_mutex_unlock(&cache_mu);
	/* freed outside the lock: a filter's deinit may take its time */
	ps_chain_unref(&stale);
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
	config_ref(rt->config);
	p->cfg = rt->config;
	p->pc = pc;
	pthread_mutex_lock(&cache_mu);
	if (cache != NULL && cache->cfg == rt->config) {
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
policy_server_reload(void)
{
	struct runtime *rt = runtime_current();
	struct ps_chain *p;

	if (rt == NULL)
		return;
	p = ps_chain_lookup(rt);	/* drops a stale one */
	ps_chain_unref(&p);
	runtime_unref(&rt);
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

/* pconn_msg_free - free a kept message outcome; NULL-safe */
static void
pconn_msg_free(struct policy_server_msg **mp)
{
	if (*mp == NULL)
		return;
	policy_server_msg_deinit(*mp);
	free(*mp);
	*mp = NULL;
}

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
	free(c->rcpt_instance);
	pconn_msg_free(&c->msg);
	free(c);
	atomic_fetch_sub(&nconns, 1);
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
	/* the write callback now when the output is empty, not half */
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	c->pending = false;
	pconn_arm_timer(c);	/* for a client that never reads */
	return true;
}

/*
 * pconn_arm_timer - after the input was looked at: with nothing pending
 * the idle timer starts over; with a request begun (or answers the
 * client does not read) the deadline set when it began stands, so that
 * trickling bytes do not keep a connection forever. A completed request
 * (pconn_dispatch) starts the next deadline afresh.
 */
static void
pconn_arm_timer(struct pconn *c)
{
	struct runtime *rt;
	struct timeval tv = { 0, 0 };
	bool pending;

	if (c->busy)
		return;		/* no timer while the pool works */
	pending = c->out_full || c->close_on_drain ||
	    evbuffer_get_length(bufferevent_get_input(c->bev)) > 0;
	if (pending && c->pending && evtimer_pending(c->idle, NULL))
		return;
	c->pending = pending;
	rt = runtime_current();
	tv.tv_sec = rt->config->policy_listen_idle_timeout;
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
	/* the message's outcome comes back from the job */
	pconn_msg_free(&c->msg);
	c->msg = j->msg;
	j->msg = NULL;
	if (j->res.reused)
		log_debug("policy", "policy: %s from %s: the outcome before "
		    "RCPT of instance %s reused", j->req.req.protocol_state,
		    c->addr, j->req.req.instance);
	policy_server_log(&j->req.req, &j->res);
	if (j->res.dropped != NULL)
		log_debug("policy", "policy: %s from %s: edits not passed to "
		    "the client: %s", j->req.req.protocol_state, c->addr,
		    j->res.dropped);
	if (j->res.prepended) {
		free(c->prepended);
		c->prepended = xstrdup(j->req.req.instance);
	}
	/* smtpd_recipient_limit: count per message (Postfix's instance) */
	if (*j->req.req.instance != '\0' &&
	    policy_server_result_takes_rcpt(&j->req.req, &j->res)) {
		if (c->rcpt_instance == NULL ||
		    strcmp(c->rcpt_instance, j->req.req.instance) != 0) {
			free(c->rcpt_instance);
			c->rcpt_instance = xstrdup(j->req.req.instance);
			c->rcpts = 0;
		}
		c->rcpts++;
	}
}

static void
pjob_free(struct pjob *j)
{
	policy_server_request_deinit(&j->req);
	policy_server_result_deinit(&j->res);
	pconn_msg_free(&j->msg);
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
	    j->want_prepend, j->accepted_rcpts, j->msg, &j->res);
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
	if (!c->eof)
		bufferevent_enable(c->bev, EV_READ);
	if (pconn_process(c) && pconn_check_eof(c))	/* else c is freed */
		pconn_arm_timer(c);
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
	/* without an instance messages cannot be told apart: no count */
	if (*inst != '\0' && c->rcpt_instance != NULL &&
	    strcmp(c->rcpt_instance, inst) == 0)
		j->accepted_rcpts = c->rcpts;
	/* the job holds the message's outcome until pconn_answer */
	j->msg = c->msg;
	c->msg = NULL;
	c->pending = false;	/* progress: the next deadline is new */
	j->chain = ps_chain_lookup(j->rt);
	if (j->chain != NULL && !policy_chain_may_block(j->chain->pc,
	    j->rt->config, &j->req.req, j->msg)) {
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
 * pconn_output_full - true when the client has PS_OUTPUT_MAX of answers
 * unread: reading stops (the write callback resumes it), so a client
 * pipelining without reading costs bounded memory
 */
static bool
pconn_output_full(struct pconn *c)
{
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) <=
	    PS_OUTPUT_MAX)
		return false;
	if (!c->out_full)
		log_debug("policy", "policy: %s does not read its answers; "
		    "reading paused", c->addr);
	c->out_full = true;
	bufferevent_disable(c->bev, EV_READ);
	return true;
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

	while (!c->busy && !c->close_on_drain && !pconn_output_full(c) &&
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

/*
 * pconn_check_eof - after the input was processed: a client that
 * half-closed has had every complete request answered (or queued to the
 * pool, or waits for room to answer), so what is left is an incomplete
 * request, dropped; the connection closes once the answers are out.
 * false when c was freed.
 */
static bool
pconn_check_eof(struct pconn *c)
{
	size_t left;

	if (!c->eof || c->busy || c->close_on_drain || c->out_full)
		return true;
	if ((left = evbuffer_get_length(bufferevent_get_input(c->bev))) > 0)
		log_warnx("policy: connection from %s closed in the middle of "
		    "a request (%zu bytes dropped); listener=%s", c->addr,
		    left, c->where);
	return pconn_close_after_write(c);
}

static void
pconn_read_cb(struct bufferevent *bev, void *arg)
{
	struct pconn *c = arg;

	if (c->busy || c->close_on_drain || c->out_full)
		return;
	if (!pconn_process(c) || !pconn_check_eof(c))
		return;		/* freed */
	pconn_arm_timer(c);
}

/* pconn_write_cb - the output drained to its low watermark */
static void
pconn_write_cb(struct bufferevent *bev, void *arg)
{
	struct pconn *c = arg;

	if (c->close_on_drain) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			pconn_free(c);
		return;
	}
	if (!c->out_full || c->busy || c->closing)
		return;
	/* the client reads again: go on with what it sent meanwhile */
	c->out_full = false;
	c->pending = false;
	if (!c->eof)
		bufferevent_enable(bev, EV_READ);
	if (pconn_process(c) && pconn_check_eof(c))	/* else c is freed */
		pconn_arm_timer(c);
}

static void
pconn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct pconn *c = arg;

	/* libevent sets the socket error again before a deferred event */
	if (what & BEV_EVENT_ERROR)
		log_debug("policy", "policy: connection from %s: %s",
		    c->addr, evutil_socket_error_to_string(
		    EVUTIL_SOCKET_ERROR()));
	if (what & BEV_EVENT_ERROR) {
		if (!c->busy && evbuffer_get_length(
		    bufferevent_get_input(bev)) > 0)
			log_warnx("policy: connection from %s closed in the "
			    "middle of a request; listener=%s", c->addr,
			    c->where);
		pconn_close(c);
		return;
	}
	if ((what & BEV_EVENT_EOF) && !c->eof) {
		/*
		 * A half-close (shutdown(SHUT_WR)) after the last request:
		 * the requests received are still answered. libevent stopped
		 * reading; what is in the input is all there will be.
		 */
		c->eof = true;
		if (c->busy || c->close_on_drain || c->out_full)
			return;	/* pjob_done or pconn_write_cb go on */
		if (pconn_process(c) && pconn_check_eof(c))
			pconn_arm_timer(c);
	}
}

static void
pconn_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pconn *c = arg;
	struct runtime *rt = runtime_current();
	int secs = rt->config->policy_listen_idle_timeout;

	runtime_unref(&rt);
	if (c->out_full || c->close_on_drain)
		log_warnx("policy: connection from %s does not read its "
		    "answers for %ds; closed; listener=%s", c->addr, secs,
		    c->where);
	else if (c->pending)
		log_warnx("policy: connection from %s: request not complete "
		    "within %ds; closed; listener=%s", c->addr, secs,
		    c->where);
	else
		log_debug("policy", "policy: connection from %s idle, "
		    "closed", c->addr);
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
	struct ps_chain *chain;
	struct pconn *c;
	char addr[64];
	bool allowed;
	unsigned max;
	int one = 1;

	addr_text(sa, addr, sizeof(addr));
	rt = runtime_current();
	allowed = rt->config->policy_listen_clients != NULL &&
	    matchlist_match_addr(rt->config->policy_listen_clients, sa);
	max = rt->config->policy_listen_max_connections;
	/* a chain cached before a reload goes now, not at the next request */
	chain = ps_chain_lookup(rt);
	ps_chain_unref(&chain);
	runtime_unref(&rt);
	if (!allowed) {
		log_warnx("policy: connection from %s refused: not in "
		    "policy_listen_clients; listener=%s", addr, where);
		close(fd);
		return;
	}
	/* counted from here; pconn_free gives it back */
	if (atomic_fetch_add(&nconns, 1) >= max) {
		atomic_fetch_sub(&nconns, 1);
		log_warnx("policy: connection from %s refused: "
		    "policy_listen_max_connections (%u) reached; listener=%s",
		    addr, max, where);
		close(fd);
		return;
	}
	/* small request/answer packets: no Nagle delay (issue 4, speed) */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1)
		log_debug("policy", "TCP_NODELAY: %s", strerror(errno));
	evutil_make_socket_nonblocking(fd);
	c = xcalloc(1, sizeof(*c));
	c->loop = loop;
	c->msg = xcalloc(1, sizeof(*c->msg));
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
	/* reading, stopped at PS_OUTPUT_MAX, resumes at half of it */
	bufferevent_setwatermark(c->bev, EV_WRITE, PS_OUTPUT_MAX / 2, 0);
	bufferevent_setcb(c->bev, pconn_read_cb, pconn_write_cb,
	    pconn_event_cb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	pconn_arm_timer(c);
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

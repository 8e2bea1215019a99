/*
 * deliver_smtp.c - the SMTP client transport: a job's start and finish,
 * the client session state machine, content streaming and the
 * per-destination connection cache.
 *
 * Owns, per event loop (one struct smtp_ctx per event_base): the
 * resolver, the idle connection cache and a content read buffer; per job
 * a struct smtp_delivery; per connection a struct smtp_session. A session
 * belongs either to the one delivery it works for, or to the cache, or to
 * itself while it says RSET/QUIT before being cached or closed.
 *
 * Leaves to other modules: routing, that is the MX and address lookups,
 * the order in which hosts and addresses are tried and the bookkeeping of
 * failed attempts (deliver_route.c), reply parsing and command building
 * (smtp_client.c, pure), DNS (dns.c), the TLS context (tls_client.c),
 * status log lines and the spool (the queue manager).
 *
 * RFCs: 5321 (3.3 transactions, 4.1.1 commands, 4.2 replies, 4.5.2 dot-
 * stuffing, 4.5.3.2 timeouts), 2920 (pipelining), 1870 (SIZE),
 * 3207 (STARTTLS), 6152, 6531, 3461 (DSN parameters), 3463, 7505.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/queue.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "config/config.h"
#include "deliver_smtp.h"
#include "deliver_smtp-private.h"
#include "delivery.h"
#include "dns.h"
#include "log.h"
#include "loop.h"
#include "smtp_client.h"
#include "tls_client.h"
#include "xmalloc.h"

#define CONTENT_CHUNK		(64 * 1024)	/* one pread */
#define CONTENT_HIGH		(256 * 1024)	/* stop filling above */
#define CONTENT_LOW		(64 * 1024)	/* refill below */
#define CACHE_IDLE_MAX		128	/* idle connections per loop */
#define SESSION_REUSE_TIME	300	/* seconds a connection may serve */
#define QUIT_TIMEOUT		5	/* seconds to wait for 221 */
#define DOT_REPLY_TIMEOUT	600	/* RFC 5321 4.5.3.2.6 */

static const char *const smtp_state_names[] = {
	[SMTP_STATE_CONNECT] = "CONNECT",
	[SMTP_STATE_GREETING] = "GREETING",
	[SMTP_STATE_EHLO] = "EHLO",
	[SMTP_STATE_HELO] = "HELO",
	[SMTP_STATE_STARTTLS] = "STARTTLS",
	[SMTP_STATE_TLS_HANDSHAKE] = "TLS_HANDSHAKE",
	[SMTP_STATE_TRANSACTION] = "TRANSACTION",
	[SMTP_STATE_CONTENT] = "CONTENT",
	[SMTP_STATE_DOT] = "DOT",
	[SMTP_STATE_RSET] = "RSET",
	[SMTP_STATE_IDLE] = "IDLE",
	[SMTP_STATE_QUIT] = "QUIT",
	[SMTP_STATE_CLOSED] = "CLOSED",
};

static pthread_mutex_t ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static struct smtp_ctx *ctx_list;	/* owned; one per base, never freed */

static void session_close(struct smtp_session *);
static void session_quit(struct smtp_session *);
static void session_read(struct bufferevent *, void *);
static void session_write(struct bufferevent *, void *);
static void session_event(struct bufferevent *, short, void *);
static void tx_begin(struct smtp_session *);
static void delivery_finish(struct smtp_delivery *);

/* ---- per-loop context ---- */

/* ctx_get - the context of base, created on first use */
static struct smtp_ctx *
ctx_get(struct event_base *base)
{
	struct smtp_ctx *ctx;

	pthread_mutex_lock(&ctx_lock);
	for (ctx = ctx_list; ctx != NULL; ctx = ctx->next)
		if (ctx->base == base)
			break;
	if (ctx == NULL) {
		ctx = xcalloc(1, sizeof(*ctx));
		ctx->base = base;
		TAILQ_INIT(&ctx->idle);
		TAILQ_INIT(&ctx->active);
		ctx->chunk = xmalloc(CONTENT_CHUNK);
		ctx->next = ctx_list;
		ctx_list = ctx;
	}
	pthread_mutex_unlock(&ctx_lock);
	return ctx;
}

/* ---- small helpers ---- */

static int
timeout_or(int v, int dflt)
{
	return v > 0 ? v : dflt;
}

/* arm - (re)start the session timer */
static void
arm(struct smtp_session *s, int seconds)
{
	struct timeval tv = { seconds, 0 };

	event_add(s->timer, &tv);
}

static void
session_set_state(struct smtp_session *s, enum smtp_state st)
{
	log_debug("smtp", "%s: %s -> %s", s->label,
	    smtp_state_names[s->state], smtp_state_names[st]);
	s->state = st;
}

/* send_str - queue a command; the trace hides nothing secret (no AUTH) */
static void
send_str(struct smtp_session *s, const char *cmd, size_t len)
{
	log_debug("smtp", "%s: > %.*s", s->label,
	    (int)(len >= 2 ? len - 2 : len), cmd);
	bufferevent_write(s->bev, cmd, len);
}

static void
send_cmd(struct smtp_session *s, const char *cmd)
{
	send_str(s, cmd, strlen(cmd));
}

/* stage - what we were doing, for "lost connection ... while <stage>" */
static const char *
stage(const struct smtp_session *s)
{
	size_t n;

	switch (s->state) {
	case SMTP_STATE_CONNECT:
		return "connecting";
	case SMTP_STATE_GREETING:
		return "receiving the initial server greeting";
	case SMTP_STATE_EHLO:
		return "performing the EHLO handshake";
	case SMTP_STATE_HELO:
		return "performing the HELO handshake";
	case SMTP_STATE_STARTTLS:
		return "sending STARTTLS";
	case SMTP_STATE_TLS_HANDSHAKE:
		return "performing the TLS handshake";
	case SMTP_STATE_TRANSACTION:
		n = s->dl != NULL ? s->dl->job->nrcpts : 0;
		if (s->nreplies == 0)
			return "sending MAIL FROM";
		if (s->nreplies <= n)
			return "sending RCPT TO";
		return "sending DATA command";
	case SMTP_STATE_CONTENT:
		return "sending message body";
	case SMTP_STATE_DOT:
		return "sending end of data -- message may be sent more "
		    "than once";
	case SMTP_STATE_RSET:
		return "sending RSET";
	case SMTP_STATE_IDLE:
		return "idle";
	case SMTP_STATE_QUIT:
		return "sending QUIT";
	case SMTP_STATE_CLOSED:
		break;
	}
	return "closing";
}

/* in_reply_to - the command a reply answers, Postfix style */
static const char *
in_reply_to(const struct smtp_session *s)
{
	switch (s->state) {
	case SMTP_STATE_GREETING:
		return "the initial server greeting";
	case SMTP_STATE_EHLO:
		return "EHLO command";
	case SMTP_STATE_HELO:
		return "HELO command";
	case SMTP_STATE_STARTTLS:
		return "STARTTLS command";
	case SMTP_STATE_TRANSACTION:
		if (s->nreplies == 0)
			return "MAIL FROM command";
		if (s->dl != NULL && s->nreplies <= s->dl->job->nrcpts)
			return "RCPT TO command";
		return "DATA command";
	case SMTP_STATE_CONTENT:
	case SMTP_STATE_DOT:
		return "end of DATA command";
	default:
		return "command";
	}
}

/* said - "host X said: 550 5.1.1 ... (in reply to RCPT TO command)" */
static char *
said(const struct smtp_session *s)
{
	char *flat, *out;

	flat = smtp_reply_flatten(&s->reply);
	out = xasprintf("host %s said: %s (in reply to %s)", s->peer, flat,
	    in_reply_to(s));
	free(flat);
	return out;
}

static enum delivery_status
status_of(int code)
{
	if (code < 300)
		return DELIVERY_SENT;
	return code < 500 ? DELIVERY_DEFERRED : DELIVERY_BOUNCED;
}

/* ---- delivery: failing and finishing ---- */

/*
 * deliver_smtp_fail_all - every pending recipient gets status, then
 * finish
 */
void
deliver_smtp_fail_all(struct smtp_delivery *dl, enum delivery_status st,
    const char *dsn, const char *reason)
{
	delivery_set_all(dl->job, st, dsn, reason);
	delivery_finish(dl);
}

/* done_cb - hand the job back, from the event loop */
static void
done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_delivery *dl = arg;
	struct delivery_job *job = dl->job;
	size_t i;

	if (dl->lookup != NULL)
		dns_cancel(&dl->lookup);
	for (i = 0; i < dl->nhosts; i++)
		free(dl->hosts[i]);
	free(dl->hosts);
	free(dl->addrs);
	free(dl->key);
	free(dl->soft_reason);
	free(dl->hard_reason);
	free(dl);
	job->done(job);
}

/*
 * delivery_finish - every recipient has a status (or gets one now); the
 * session, if any, has already been detached.
 */
static void
delivery_finish(struct smtp_delivery *dl)
{
	struct timeval now = { 0, 0 };

	if (!dl->finished) {
		TAILQ_REMOVE(&dl->ctx->active, dl, aentry);
		dl->finished = true;
	}
	/* Our own bug if something is left: never lose a recipient. */
	delivery_set_all(dl->job, DELIVERY_DEFERRED, "4.3.0",
	    "delivery ended without a status (internal error)");
	if (dl->job->relay == NULL)
		dl->job->relay = xstrdup("none");
	if (event_base_once(dl->ctx->base, -1, EV_TIMEOUT, done_cb, dl,
	    &now) == -1)
		fatalx("smtp: event_base_once failed");
}

/* ---- sessions ---- */

static void
reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	event_free(s->reaper);
	smtp_reply_deinit(&s->reply);
	free(s->key);
	free(s->host);
	free(s->peer);
	free(s->label);
	free(s);
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg);

/* port_of - "25" or "smtp" in network order; 25 when unusable */
static in_port_t
port_of(const char *port)
{
	struct servent *se;
	char *ep;
	long v;

	if (port == NULL)
		return htons(25);
	v = strtol(port, &ep, 10);
	if (*port != '\0' && *ep == '\0' && v > 0 && v < 65536)
		return htons((in_port_t)v);
	/* XXX(#2): getservbyname is not thread-safe; names are rare here. */
	if ((se = getservbyname(port, "tcp")) != NULL)
		return (in_port_t)se->s_port;
	return htons(25);
}

static struct smtp_session *
session_new(struct smtp_delivery *dl)
{
	struct smtp_session *s;
	const struct config *cf = dl->job->config;
	char addr[INET6_ADDRSTRLEN] = "?";
	const void *a;
	in_port_t port;

	s = xcalloc(1, sizeof(*s));
	s->ctx = dl->ctx;
	s->dl = dl;
	s->state = SMTP_STATE_CONNECT;
	s->ss = dl->addrs[dl->iaddr];
	port = port_of(dl->job->nexthop_port);
	if (s->ss.ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&s->ss;

		a = &sin->sin_addr;
		sin->sin_port = port;
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&s->ss;

		a = &sin6->sin6_addr;
		sin6->sin6_port = port;
	}
	inet_ntop(s->ss.ss_family, a, addr, sizeof(addr));
	s->key = xstrdup(dl->key);
	s->host = xstrdup(dl->hosts[dl->ihost]);
	s->peer = xasprintf("%s[%s]", s->host, addr);
	s->label = xasprintf("%s:%s", s->peer, dl->job->nexthop_port);
	s->created = time(NULL);
	s->cmd_timeout = timeout_or(cf->smtp_command_timeout, 300);
	s->data_timeout = timeout_or(cf->smtp_data_timeout, 180);
	s->helo_timeout = timeout_or(cf->smtp_helo_timeout, 300);
	s->cache_time = cf->smtp_connection_cache_time_limit;
	smtp_reply_init(&s->reply);
	if ((s->timer = event_new(s->ctx->base, -1, 0, timer_cb, s)) == NULL ||
	    (s->reaper = event_new(s->ctx->base, -1, 0, reap_cb, s)) == NULL)
		fatalx("smtp: event_new failed");
	return s;
}

/*
 * session_close - drop the connection now and free the session from the
 * event loop later: the caller may be one of its callbacks (STYLE.md 6).
 */
static void
session_close(struct smtp_session *s)
{
	if (s->state == SMTP_STATE_CLOSED)
		return;
	if (s->state == SMTP_STATE_IDLE) {
		TAILQ_REMOVE(&s->ctx->idle, s, entry);
		s->ctx->nidle--;
	}
	session_set_state(s, SMTP_STATE_CLOSED);
	if (s->dl != NULL && s->dl->sess == s)
		s->dl->sess = NULL;
	s->dl = NULL;
	if (s->bev != NULL)
		bufferevent_free(s->bev);	/* safe inside its callbacks */
	s->bev = NULL;
	event_free(s->timer);
	s->timer = NULL;
	event_active(s->reaper, EV_TIMEOUT, 0);
}

/*
 * attempt_failed - this connection attempt did not get as far as a
 * transaction: close it and try the next address or host.
 */
static void
attempt_failed(struct smtp_session *s, bool hard, const char *dsn,
    const char *reason)
{
	struct smtp_delivery *dl = s->dl;

	route_note_failure(dl, hard, dsn, reason);
	if (s->state != SMTP_STATE_CONNECT && s->bev != NULL &&
	    s->state != SMTP_STATE_TLS_HANDSHAKE) {
		/* Be polite where the server still listens. */
		s->dl = NULL;
		dl->sess = NULL;
		session_quit(s);
	} else
		session_close(s);
	route_next_attempt(dl);
}

/*
 * session_lost - a network error, timeout or protocol violation. Before
 * the transaction: try elsewhere. A cached connection that died before
 * the first reply: connect afresh. Within the transaction: defer what is
 * still pending.
 */
static void
session_lost(struct smtp_session *s, const char *why)
{
	struct smtp_delivery *dl = s->dl;

	if (dl == NULL) {
		log_debug("smtp", "%s: %s", s->label, why);
		session_close(s);
		return;
	}
	switch (s->state) {
	case SMTP_STATE_CONNECT:
		session_close(s);
		route_note_failure(dl, false, "4.4.1", why);
		route_next_attempt(dl);
		return;
	case SMTP_STATE_GREETING:
	case SMTP_STATE_EHLO:
	case SMTP_STATE_HELO:
	case SMTP_STATE_STARTTLS:
		session_close(s);
		route_note_failure(dl, false, "4.4.2", why);
		route_next_attempt(dl);
		return;
	case SMTP_STATE_TLS_HANDSHAKE:
		session_close(s);
		route_note_failure(dl, false, "4.7.5", why);
		if (dl->tls == TLS_LEVEL_MAY && !dl->plain_retried) {
			/* Opportunistic TLS: same server, in plaintext. */
			dl->no_tls = dl->plain_retried = true;
			route_next_addr(dl);
			return;
		}
		route_next_attempt(dl);
		return;
	case SMTP_STATE_TRANSACTION:
		if (dl->reused && s->nreplies == 0) {
			log_debug("smtp", "%s: cached connection failed (%s); "
			    "connecting afresh", s->label, why);
			session_close(s);
			dl->reused = false;
			route_begin(dl);
			return;
		}
		break;
	default:
		break;
	}
	session_close(s);
	deliver_smtp_fail_all(dl, DELIVERY_DEFERRED, "4.4.2", why);
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;
	char *why;

	switch (s->state) {
	case SMTP_STATE_IDLE:
	case SMTP_STATE_RSET:
		session_quit(s);
		return;
	case SMTP_STATE_QUIT:
		session_close(s);
		return;
	case SMTP_STATE_CONNECT:
		why = xasprintf("connect to %s: Connection timed out",
		    s->label);
		break;
	default:
		why = xasprintf("conversation with %s timed out while %s",
		    s->peer, stage(s));
		break;
	}
	session_lost(s, why);
	free(why);
}

/* session_quit - say goodbye, then close (RFC 5321 4.1.1.10) */
static void
session_quit(struct smtp_session *s)
{
	if (s->state == SMTP_STATE_IDLE) {
		TAILQ_REMOVE(&s->ctx->idle, s, entry);
		s->ctx->nidle--;
	}
	s->dl = NULL;
	session_set_state(s, SMTP_STATE_QUIT);
	send_cmd(s, "QUIT\r\n");
	arm(s, QUIT_TIMEOUT);
}

/* cache_put - keep a healthy idle session for the next job */
static void
cache_put(struct smtp_session *s)
{
	struct smtp_ctx *ctx = s->ctx;

	s->dl = NULL;
	if (s->cache_time <= 0 ||
	    time(NULL) - s->created >= SESSION_REUSE_TIME) {
		session_quit(s);
		return;
	}
	if (ctx->nidle >= CACHE_IDLE_MAX)
		session_quit(TAILQ_FIRST(&ctx->idle));
	session_set_state(s, SMTP_STATE_IDLE);
	TAILQ_INSERT_TAIL(&ctx->idle, s, entry);
	ctx->nidle++;
	arm(s, s->cache_time);
}

/* cache_take - an idle session to key, or NULL */
static struct smtp_session *
cache_take(struct smtp_ctx *ctx, const char *key)
{
	struct smtp_session *s;

	TAILQ_FOREACH(s, &ctx->idle, entry)
		if (strcmp(s->key, key) == 0)
			break;
	if (s == NULL)
		return NULL;
	TAILQ_REMOVE(&ctx->idle, s, entry);
	ctx->nidle--;
	event_del(s->timer);
	return s;
}

void
smtp_session_connect(struct smtp_delivery *dl)
{
	struct smtp_session *s;
	const struct config *cf = dl->job->config;
	socklen_t len;
	evutil_socket_t fd;
	int one = 1;
	char *why;

	s = session_new(dl);
	dl->sess = s;
	s->bev = bufferevent_socket_new(dl->ctx->base, -1,
	    BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL)
		fatalx("smtp: bufferevent_socket_new failed");
	bufferevent_setcb(s->bev, session_read, session_write, session_event,
	    s);
	free(dl->job->relay);
	dl->job->relay = xstrdup(s->label);
	log_debug("smtp", "%s: connecting", s->label);
	len = s->ss.ss_family == AF_INET ? sizeof(struct sockaddr_in) :
	    sizeof(struct sockaddr_in6);
	if (bufferevent_socket_connect(s->bev, (struct sockaddr *)&s->ss,
	    (int)len) == -1) {
		why = xasprintf("connect to %s: %s", s->label,
		    strerror(errno));
		attempt_failed(s, false, "4.4.1", why);
		free(why);
		return;
	}
	/* Small commands must not wait for Nagle (pipelined or not). */
	if ((fd = bufferevent_getfd(s->bev)) != -1)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	arm(s, timeout_or(cf->smtp_connect_timeout, 30));
}

static void
send_ehlo(struct smtp_session *s, const char *verb)
{
	const struct config *cf = s->dl->job->config;
	char *cmd;

	cmd = xasprintf("%s %s\r\n", verb,
	    cf->myhostname != NULL ? cf->myhostname : "localhost");
	send_cmd(s, cmd);
	free(cmd);
	arm(s, s->helo_timeout);
}

/* start_tls - RFC 3207 4: the 220 came; handshake on this connection */
static void
start_tls(struct smtp_session *s)
{
	struct bufferevent *tls;
	const char *err = NULL;
	char *why;
	SSL *ssl;

	if ((ssl = tls_client_ssl(s->host, &err)) == NULL) {
		why = xasprintf("cannot start TLS with %s: %s", s->peer, err);
		log_warnx("smtp: %s", why);
		session_set_state(s, SMTP_STATE_TLS_HANDSHAKE);
		session_lost(s, why);
		free(why);
		return;
	}
	/* Anything the server sent after its 220 is not to be trusted. */
	evbuffer_drain(bufferevent_get_input(s->bev),
	    evbuffer_get_length(bufferevent_get_input(s->bev)));
	tls = bufferevent_openssl_filter_new(s->ctx->base, s->bev, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (tls == NULL) {
		SSL_free(ssl);
		session_set_state(s, SMTP_STATE_TLS_HANDSHAKE);
		session_lost(s, "cannot create the TLS bufferevent");
		return;
	}
	s->bev = tls;		/* owns the TCP bufferevent now */
	bufferevent_setcb(tls, session_read, session_write, session_event, s);
	bufferevent_enable(tls, EV_READ | EV_WRITE);
	session_set_state(s, SMTP_STATE_TLS_HANDSHAKE);
	arm(s, s->helo_timeout);
}

/* after_ehlo - the handshake is done: TLS first if wanted, else work */
static void
after_ehlo(struct smtp_session *s)
{
	struct smtp_delivery *dl = s->dl;
	char *why;

	if (!s->tls && (s->ext.flags & SMTP_EXT_STARTTLS) &&
	    dl->tls != TLS_LEVEL_NONE && !dl->no_tls) {
		session_set_state(s, SMTP_STATE_STARTTLS);
		send_cmd(s, "STARTTLS\r\n");
		arm(s, s->cmd_timeout);
		return;
	}
	if (!s->tls && dl->tls == TLS_LEVEL_ENCRYPT) {
		why = xasprintf("TLS is required, but was not offered by "
		    "host %s", s->peer);
		attempt_failed(s, false, "4.7.4", why);
		free(why);
		return;
	}
	tx_begin(s);
}

/* ---- the transaction ---- */

static size_t
message_size(const struct delivery_job *job)
{
	return job->header_len + 2 + job->body_len;
}

static bool
has_non_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return true;
	return false;
}

/* tx_send_rcpt - non-pipelined: the next RCPT TO */
static void
tx_send_rcpt(struct smtp_session *s)
{
	struct buf b;

	buf_init(&b, 0);
	smtp_rcpt_cmd(&b, &s->dl->job->rcpts[s->nrcpt_sent], &s->ext);
	s->nrcpt_sent++;
	send_str(s, b.data, b.len);
	buf_deinit(&b);
}

/*
 * tx_after - the job is done with this session: hand the job back and
 * keep the session if healthy. RSET first when a transaction was left
 * open (RFC 5321 4.1.1.5); after a completed "." none is needed.
 */
static void
tx_after(struct smtp_session *s, bool need_rset)
{
	struct smtp_delivery *dl = s->dl;

	s->dl = NULL;
	dl->sess = NULL;
	delivery_finish(dl);
	if (need_rset) {
		session_set_state(s, SMTP_STATE_RSET);
		send_cmd(s, "RSET\r\n");
		arm(s, s->cmd_timeout);
		return;
	}
	cache_put(s);
}

static void
tx_begin(struct smtp_session *s)
{
	struct smtp_delivery *dl = s->dl;
	struct delivery_job *job = dl->job;
	struct buf b;
	size_t i, size = message_size(job);
	char *why;

	if (evbuffer_get_length(bufferevent_get_input(s->bev)) > 0) {
		/*
		 * The server said something we did not ask for: counting
		 * replies would pair RCPT replies with the wrong recipients.
		 */
		session_lost(s, "unexpected reply");
		return;
	}
	s->nreplies = s->nrcpt_sent = s->naccepted = 0;
	s->mail_ok = s->discard_dot = false;
	s->pipelining = (s->ext.flags & SMTP_EXT_PIPELINING) != 0;
	/* RFC 1870 6: do not send what the server said it will refuse. */
	if ((s->ext.flags & SMTP_EXT_SIZE) && s->ext.size_max > 0 &&
	    size > s->ext.size_max) {
		why = xasprintf("message size %zu exceeds size limit %zu of "
		    "server %s", size, s->ext.size_max, s->peer);
		delivery_set_all(job, DELIVERY_BOUNCED, "5.3.4", why);
		free(why);
		tx_after(s, false);
		return;
	}
	/* RFC 6531 3.4: no downgrade of non-ASCII addresses. */
	if (job->smtputf8 && !(s->ext.flags & SMTP_EXT_SMTPUTF8)) {
		bool need = has_non_ascii(job->sender);

		for (i = 0; i < job->nrcpts && !need; i++)
			need = has_non_ascii(job->rcpts[i].address);
		if (need) {
			why = xasprintf("SMTPUTF8 is required, but was not "
			    "offered by host %s", s->peer);
			delivery_set_all(job, DELIVERY_BOUNCED, "5.6.7", why);
			free(why);
			tx_after(s, false);
			return;
		}
	}
	/* RFC 6152 3: no 8-bit content to a server without 8BITMIME */
	if (job->body_type != NULL &&
	    strcasecmp(job->body_type, "8BITMIME") == 0 &&
	    !(s->ext.flags & SMTP_EXT_8BITMIME)) {
		why = xasprintf("message has 8-bit content, but host %s does "
		    "not support 8BITMIME", s->peer);
		delivery_set_all(job, DELIVERY_BOUNCED, "5.6.3", why);
		free(why);
		tx_after(s, false);
		return;
	}
	session_set_state(s, SMTP_STATE_TRANSACTION);
	buf_init(&b, 0);
	smtp_mail_cmd(&b, job, &s->ext, size);
	if (s->pipelining) {
		/* RFC 2920 3.1: MAIL, every RCPT and DATA in one write. */
		for (i = 0; i < job->nrcpts; i++)
			smtp_rcpt_cmd(&b, &job->rcpts[i], &s->ext);
		s->nrcpt_sent = job->nrcpts;
		buf_append_str(&b, "DATA\r\n");
	}
	send_str(s, b.data, b.len);
	buf_deinit(&b);
	arm(s, s->cmd_timeout);
}

/* content_fill - queue content until CONTENT_HIGH; then ".\r\n" */
static void
content_fill(struct smtp_session *s)
{
	struct smtp_delivery *dl;
	struct delivery_job *job = s->dl->job;
	struct evbuffer *out = bufferevent_get_output(s->bev);
	size_t want;
	ssize_t n;
	char *why;

	while (s->phase < 3 && evbuffer_get_length(out) < CONTENT_HIGH) {
		if (s->phase == 1) {
			smtp_dot_stuff(&s->dot, "\r\n", 2, out);
			s->phase = 2;
			s->cpos = job->body_offset;
			s->cleft = job->body_len;
			continue;
		}
		if (s->cleft == 0) {
			s->phase++;
			continue;
		}
		want = s->cleft < CONTENT_CHUNK ? s->cleft : CONTENT_CHUNK;
		n = pread(job->content_fd, s->ctx->chunk, want, s->cpos);
		if (n <= 0) {
			why = xasprintf("error reading queue file: %s",
			    n == 0 ? "unexpected end of file" :
			    strerror(errno));
			log_warnx("smtp: %s: %s", job->queue_id, why);
			/* The server has a partial message: drop it. */
			dl = s->dl;
			session_close(s);
			deliver_smtp_fail_all(dl, DELIVERY_DEFERRED, "4.3.0",
			    why);
			free(why);
			return;
		}
		smtp_dot_stuff(&s->dot, s->ctx->chunk, (size_t)n, out);
		s->cpos += n;
		s->cleft -= (size_t)n;
	}
	if (s->phase == 3) {
		smtp_dot_end(&s->dot, out);
		bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0);
		session_set_state(s, SMTP_STATE_DOT);
		/*
		 * RFC 5321 4.5.3.2.6: at least 10 minutes for the reply.
		 * Giving up earlier makes a slow server get the message again
		 * on every retry.
		 */
		arm(s, s->data_timeout > DOT_REPLY_TIMEOUT ? s->data_timeout :
		    DOT_REPLY_TIMEOUT);
	}
}

static void
content_begin(struct smtp_session *s)
{
	struct delivery_job *job = s->dl->job;

	session_set_state(s, SMTP_STATE_CONTENT);
	smtp_dot_init(&s->dot);
	s->phase = 0;
	s->cpos = job->header_offset;
	s->cleft = job->header_len;
	bufferevent_setwatermark(s->bev, EV_WRITE, CONTENT_LOW, 0);
	arm(s, s->data_timeout);
	content_fill(s);
}

/* tx_reply - one reply of MAIL (0), RCPT (1..n) or DATA (n + 1) */
static void
tx_reply(struct smtp_session *s)
{
	struct smtp_delivery *dl = s->dl;
	struct delivery_job *job = dl->job;
	size_t k = s->nreplies, n = job->nrcpts;
	char dsn[16], *text;
	int code = s->reply.code;

	text = said(s);		/* before counting: names the command */
	s->nreplies++;
	smtp_reply_dsn(&s->reply, NULL, dsn);
	if (k == 0) {
		s->mail_ok = code >= 200 && code < 300;
		/* A 5xx to MAIL bounces all, a 4xx defers all. */
		if (!s->mail_ok)
			delivery_set_all(job, status_of(code), dsn, text);
	} else if (k <= n) {
		if (s->mail_ok && code >= 200 && code < 300)
			s->naccepted++;
		else if (s->mail_ok)
			delivery_set_rcpt(job, k - 1, status_of(code), dsn,
			    text);
	} else {
		/* DATA */
		if (code == 354 && s->naccepted > 0) {
			free(text);
			content_begin(s);
			return;
		}
		if (code == 354) {
			/*
			 * RFC 2920 3.1: DATA was accepted though no RCPT
			 * was; send an empty message's end and ignore it.
			 */
			s->discard_dot = true;
			session_set_state(s, SMTP_STATE_DOT);
			send_cmd(s, ".\r\n");
			arm(s, s->data_timeout);
			free(text);
			return;
		}
		if (s->naccepted > 0)
			delivery_set_all(job, code < 300 ? DELIVERY_DEFERRED :
			    status_of(code), code < 300 ? "4.5.0" : dsn, text);
		free(text);
		tx_after(s, true);
		return;
	}
	free(text);
	if (code == 421) {
		/* RFC 5321 3.8: the server is closing. */
		session_close(s);
		deliver_smtp_fail_all(dl, DELIVERY_DEFERRED, "4.4.2",
		    "server closed the connection (421)");
		return;
	}
	if (s->pipelining) {
		/* the rest is on its way already */
		arm(s, s->cmd_timeout);
		return;
	}
	/* one command at a time */
	if (!s->mail_ok) {
		tx_after(s, true);
		return;
	}
	if (s->nrcpt_sent < n) {
		tx_send_rcpt(s);
		arm(s, s->cmd_timeout);
		return;
	}
	if (s->naccepted == 0) {
		tx_after(s, true);
		return;
	}
	send_cmd(s, "DATA\r\n");
	arm(s, s->cmd_timeout);
}

/* dot_reply - the reply to "." applies to every accepted recipient */
static void
dot_reply(struct smtp_session *s)
{
	struct smtp_delivery *dl = s->dl;
	char dsn[16], *text, *flat;
	int code = s->reply.code;

	if (s->discard_dot) {
		tx_after(s, code >= 300);
		return;
	}
	if (s->state == SMTP_STATE_CONTENT && code < 400) {
		/* a "success" before the end of the content is nonsense */
		session_lost(s, "unexpected reply");
		return;
	}
	smtp_reply_dsn(&s->reply, NULL, dsn);
	if (code >= 200 && code < 300) {
		/* Postfix style: "250 2.0.0 Ok: queued as X" */
		flat = smtp_reply_flatten(&s->reply);
		text = xasprintf("%s", flat);
		free(flat);
	} else
		text = said(s);
	delivery_set_all(dl->job, status_of(code), dsn, text);
	free(text);
	if (s->state == SMTP_STATE_CONTENT || code == 421) {
		/* An early reply: the server stopped listening. */
		session_close(s);
		delivery_finish(dl);
		return;
	}
	tx_after(s, code >= 300);
}

/* handshake_reply - greeting, EHLO, HELO, STARTTLS */
static void
handshake_reply(struct smtp_session *s)
{
	int code = s->reply.code;
	char *text, *why;

	if (s->state == SMTP_STATE_GREETING) {
		if (code / 100 == 2) {
			session_set_state(s, SMTP_STATE_EHLO);
			send_ehlo(s, "EHLO");
			return;
		}
	} else if (s->state == SMTP_STATE_EHLO) {
		if (code / 100 == 2) {
			smtp_ehlo_parse(&s->reply, &s->ext);
			after_ehlo(s);
			return;
		}
		if (code / 100 == 5 && !s->tls) {
			/* RFC 5321 3.2: an old server; try HELO. */
			session_set_state(s, SMTP_STATE_HELO);
			send_ehlo(s, "HELO");
			return;
		}
	} else if (s->state == SMTP_STATE_HELO) {
		if (code / 100 == 2) {
			memset(&s->ext, 0, sizeof(s->ext));
			after_ehlo(s);
			return;
		}
	} else if (s->state == SMTP_STATE_STARTTLS) {
		if (code == 220) {
			start_tls(s);
			return;
		}
		if (s->dl->tls == TLS_LEVEL_MAY) {
			tx_begin(s);	/* opportunistic: go on in clear */
			return;
		}
		text = said(s);
		why = xasprintf("TLS is required, but host %s refused to "
		    "start TLS: %s", s->peer, text);
		attempt_failed(s, false, "4.7.4", why);
		free(text);
		free(why);
		return;
	}
	/* refused: 4xx try elsewhere; 5xx too, but it counts as hard */
	if (s->state == SMTP_STATE_GREETING) {
		text = smtp_reply_flatten(&s->reply);
		why = xasprintf("host %s refused to talk to me: %s", s->peer,
		    text);
	} else {
		text = said(s);
		why = xstrdup(text);
	}
	{
		char dsn[16];

		smtp_reply_dsn(&s->reply, NULL, dsn);
		attempt_failed(s, code / 100 == 5, dsn, why);
	}
	free(text);
	free(why);
}

/* on_reply - one complete reply arrived */
static void
on_reply(struct smtp_session *s)
{
	if (log_debug_enabled("smtp")) {
		char *flat = smtp_reply_flatten(&s->reply);

		log_debug("smtp", "%s: < %s", s->label, flat);
		free(flat);
	}
	switch (s->state) {
	case SMTP_STATE_GREETING:
	case SMTP_STATE_EHLO:
	case SMTP_STATE_HELO:
	case SMTP_STATE_STARTTLS:
		handshake_reply(s);
		break;
	case SMTP_STATE_TRANSACTION:
		tx_reply(s);
		break;
	case SMTP_STATE_CONTENT:
	case SMTP_STATE_DOT:
		dot_reply(s);
		break;
	case SMTP_STATE_RSET:
		if (s->reply.code / 100 == 2)
			cache_put(s);
		else
			session_quit(s);
		break;
	case SMTP_STATE_QUIT:
		session_close(s);
		break;
	default:
		/* IDLE: e.g. a 421 on timeout; anything else: protocol error */
		session_lost(s, "unexpected reply");
		break;
	}
}

static void
session_read(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_ptr eol;
	size_t eol_len, len;
	const char *err;
	char *why;
	int rc;

	/*
	 * On loopback the greeting can be read before the connect event
	 * is seen: data proves the connection.
	 */
	if (s->state == SMTP_STATE_CONNECT) {
		session_set_state(s, SMTP_STATE_GREETING);
		arm(s, s->helo_timeout);
	}
	while (s->state != SMTP_STATE_CLOSED) {
		eol = evbuffer_search_eol(in, NULL, &eol_len,
		    EVBUFFER_EOL_CRLF);
		len = eol.pos == -1 ? evbuffer_get_length(in) :
		    (size_t)eol.pos;
		if (len + 2 > SMTP_REPLY_LINE_MAX) {
			why = xasprintf("malformed reply from %s while %s: "
			    "reply line too long", s->peer, stage(s));
			session_lost(s, why);
			free(why);
			return;
		}
		if (eol.pos == -1)
			return;
		rc = smtp_reply_add_line(&s->reply,
		    (const char *)evbuffer_pullup(in, (ssize_t)(len +
		    eol_len)), len, &err);
		evbuffer_drain(in, len + eol_len);
		if (rc == -1) {
			why = xasprintf("malformed reply from %s while %s: %s",
			    s->peer, stage(s), err);
			session_lost(s, why);
			free(why);
			return;
		}
		if (rc == 1) {
			event_del(s->timer);
			on_reply(s);
			if (s->state != SMTP_STATE_CLOSED)
				smtp_reply_reset(&s->reply);
		}
	}
}

static void
session_write(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;

	if (s->state == SMTP_STATE_CONTENT) {
		arm(s, s->data_timeout);	/* per write, as Postfix */
		content_fill(s);
	}
}

static void
session_event(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_session *s = arg;
	unsigned long e;
	char *why, tlsdesc[128];
	int err = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_CONNECTED) {
		if (s->state == SMTP_STATE_CONNECT) {
			log_debug("smtp", "%s: connected", s->label);
			session_set_state(s, SMTP_STATE_GREETING);
			arm(s, s->helo_timeout);
		} else if (s->state == SMTP_STATE_TLS_HANDSHAKE) {
			s->tls = true;
			if (log_debug_enabled("smtp")) {
				tls_client_describe(
				    bufferevent_openssl_get_ssl(s->bev),
				    tlsdesc, sizeof(tlsdesc));
				log_debug("smtp", "%s: TLS connection "
				    "established: %s", s->label, tlsdesc);
			}
			/* RFC 3207 4.2: forget everything, EHLO again. */
			memset(&s->ext, 0, sizeof(s->ext));
			session_set_state(s, SMTP_STATE_EHLO);
			send_ehlo(s, "EHLO");
		}
		return;
	}
	if (s->state == SMTP_STATE_CONNECT) {
		why = xasprintf("connect to %s: %s", s->label,
		    evutil_socket_error_to_string(err));
	} else if (s->state == SMTP_STATE_TLS_HANDSHAKE &&
	    (e = bufferevent_get_openssl_error(bev)) != 0) {
		why = xasprintf("TLS handshake with %s failed: %s", s->peer,
		    ERR_reason_error_string(e) != NULL ?
		    ERR_reason_error_string(e) : "unknown error");
		while (bufferevent_get_openssl_error(bev) != 0)
			;
	} else if (s->state == SMTP_STATE_QUIT ||
	    s->state == SMTP_STATE_IDLE) {
		session_close(s);
		return;
	} else if (what & BEV_EVENT_EOF)
		why = xasprintf("lost connection with %s while %s", s->peer,
		    stage(s));
	else
		why = xasprintf("lost connection with %s while %s: %s",
		    s->peer, stage(s), err != 0 ?
		    evutil_socket_error_to_string(err) : "network error");
	session_lost(s, why);
	free(why);
}

/* ---- entry points ---- */

static enum tls_level
tls_level_of(const struct config *cf)
{
	const char *v = cf->smtp_tls_security_level;

	if (v == NULL || strcasecmp(v, "may") == 0)
		return TLS_LEVEL_MAY;
	if (strcasecmp(v, "none") == 0)
		return TLS_LEVEL_NONE;
	/* "encrypt", and anything stricter until verification exists */
	return TLS_LEVEL_ENCRYPT;
}

void
deliver_smtp_start_base(struct delivery_job *job, struct event_base *base)
{
	struct smtp_delivery *dl;
	struct smtp_session *s;

	dl = xcalloc(1, sizeof(*dl));
	dl->job = job;
	dl->ctx = ctx_get(base);
	TAILQ_INSERT_TAIL(&dl->ctx->active, dl, aentry);
	dl->tls = tls_level_of(job->config);
	/* the TLS level is part of the key: a reload to "encrypt" must
	 * never reuse a plaintext connection */
	dl->key = xasprintf("%s:%s%s%s:%s:tls=%d", job->transport != NULL ?
	    job->transport : "smtp", job->nexthop_use_mx ? "" : "[",
	    job->nexthop_host, job->nexthop_use_mx ? "" : "]",
	    job->nexthop_port, (int)dl->tls);
	if (job->nrcpts == 0) {
		delivery_finish(dl);
		return;
	}
	if ((s = cache_take(dl->ctx, dl->key)) != NULL) {
		log_debug("smtp", "%s: reusing cached connection", s->label);
		dl->reused = true;
		dl->sess = s;
		s->dl = dl;
		free(job->relay);
		job->relay = xstrdup(s->label);
		tx_begin(s);
		return;
	}
	route_begin(dl);
}

void
deliver_smtp_start(struct delivery_job *job, struct loop *loop)
{
	deliver_smtp_start_base(job, loop_base(loop));
}

void
deliver_smtp_shutdown_base(struct event_base *base)
{
	struct smtp_ctx *ctx = ctx_get(base);
	struct smtp_session *s;
	evutil_socket_t fd;

	while ((s = TAILQ_FIRST(&ctx->idle)) != NULL) {
		/* Best effort: the loop may not run again to flush it. */
		if (!s->tls && (fd = bufferevent_getfd(s->bev)) != -1)
			(void)send(fd, "QUIT\r\n", 6, MSG_NOSIGNAL |
			    MSG_DONTWAIT);
		session_close(s);
	}
	if (ctx->dns != NULL && dns_pending(ctx->dns) == 0) {
		dns_free(&ctx->dns);
		free(ctx->resolver);
		ctx->resolver = NULL;
	}
}

void
deliver_smtp_abort_all(struct loop *loop)
{
	struct smtp_ctx *ctx = ctx_get(loop_base(loop));
	struct smtp_delivery *dl;

	while ((dl = TAILQ_FIRST(&ctx->active)) != NULL) {
		if (dl->lookup != NULL)
			dns_cancel(&dl->lookup);
		if (dl->sess != NULL)
			session_close(dl->sess);	/* detaches dl */
		deliver_smtp_fail_all(dl, DELIVERY_DEFERRED, "4.3.2",
		    "delivery interrupted: the mail system is shutting down");
	}
}

void
deliver_smtp_shutdown(struct loop *loop)
{
	deliver_smtp_shutdown_base(loop_base(loop));
}

/*
 * listener.c - listening sockets and pre-session connection limits; see
 * listener.h.
 *
 * Limits: smtpd_max_connections for all clients together and
 * smtpd_client_connection_count_limit per client address (clients in
 * mynetworks are exempt, as with Postfix's
 * smtpd_client_event_limit_exceptions default). A refused connection
 * gets a 421 (RFC 5321 3.8) and a log line; the daemon keeps serving.
 *
 * A `policy` listener's connections go to policy_server.c, which admits
 * its own clients (policy_listen_clients); they are not SMTP sessions
 * and are not counted by the limits above.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "listener.h"
#include "log.h"
#include "loop.h"
#include "policy_server.h"
#include "runtime.h"
#include "session.h"
#include "xmalloc.h"

struct listener {
	enum listener_kind kind;
	struct loop	*loop;		/* borrowed */
	struct evconnlistener *evl;	/* owned */
	char		 where[96];	/* "smtp/127.0.0.1:25" for logs */
	struct listener	*next;		/* owned list */
};

static struct listener *listeners;

/* per-client connection counts: a small open hash under one mutex */
#define CLIENT_SLOTS	4096
struct client_count {
	char	 addr[64];
	int	 count;
};
static struct client_count client_counts[CLIENT_SLOTS];
static pthread_mutex_t counts_mu = PTHREAD_MUTEX_INITIALIZER;
static int total_connections;

static void
addr_text(const struct sockaddr_storage *ss, char *out, size_t n)
{
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr,
		    out, n);
	else if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
		inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], out, n);
	else
		inet_ntop(AF_INET6, &sin6->sin6_addr, out, n);
}

static unsigned
hash_addr(const char *s)
{
	unsigned h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* slot - the counter of addr, created if absent; NULL when full (locked) */
static struct client_count *
slot(const char *addr, bool create)
{
	unsigned i, h = hash_addr(addr);
	struct client_count *c, *free_slot = NULL;

	for (i = 0; i < CLIENT_SLOTS; i++) {
		c = &client_counts[(h + i) % CLIENT_SLOTS];
		if (c->count > 0 && strcmp(c->addr, addr) == 0)
			return c;
		if (c->addr[0] == '\0') {
			if (free_slot == NULL)
				free_slot = c;
			break;		/* never used: end of the probe chain */
		}
		if (c->count == 0 && free_slot == NULL)
			free_slot = c;
	}
	if (!create || free_slot == NULL)
		return NULL;
	snprintf(free_slot->addr, sizeof(free_slot->addr), "%s", addr);
	free_slot->count = 0;
	return free_slot;
}

/* admit - count the connection; NULL if admitted, else the reason */
static const char *
admit(const struct config *cfg, const struct sockaddr_storage *ss)
{
	struct client_count *c;
	char addr[64];
	const char *why = NULL;
	bool exempt;

	addr_text(ss, addr, sizeof(addr));
	exempt = matchlist_match_addr(cfg->mynetworks,
	    (const struct sockaddr *)ss);
	pthread_mutex_lock(&counts_mu);
	if (total_connections >= cfg->smtpd_max_connections)
		why = "too many connections";
	else if ((c = slot(addr, true)) == NULL)
		why = "too many clients";
	else if (!exempt && cfg->smtpd_client_connection_count_limit > 0 &&
	    c->count >= cfg->smtpd_client_connection_count_limit)
		why = "too many connections from your address";
	else {
		c->count++;
		total_connections++;
	}
	pthread_mutex_unlock(&counts_mu);
	return why;
}

void
listener_release(struct listener *l, const struct sockaddr_storage *ss)
{
	struct client_count *c;
	char addr[64];

	if (l == NULL)
		return;
	addr_text(ss, addr, sizeof(addr));
	pthread_mutex_lock(&counts_mu);
	if ((c = slot(addr, false)) != NULL && c->count > 0)
		c->count--;
	if (total_connections > 0)
		total_connections--;
	pthread_mutex_unlock(&counts_mu);
}

enum listener_kind
listener_kind(const struct listener *l)
{
	return l->kind;
}

static void
accept_cb(struct evconnlistener *evl, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct listener *l = arg;
	struct sockaddr_storage ss;
	struct runtime *rt;
	const char *why;
	char addr[64], reply[192];
	int n;

	memset(&ss, 0, sizeof(ss));
	memcpy(&ss, sa, (size_t)salen < sizeof(ss) ? (size_t)salen :
	    sizeof(ss));
	if (l->kind == LISTENER_POLICY) {
		policy_server_start(l->loop, fd, (struct sockaddr *)&ss,
		    (socklen_t)salen, l->where);
		return;
	}
	rt = runtime_current();
	why = admit(rt->config, &ss);
	if (why != NULL) {
		addr_text(&ss, addr, sizeof(addr));
		log_warnx("NOQUEUE: reject: CONNECT from unknown[%s]: 421 "
		    "4.7.0 %s; listener=%s", addr, why, l->where);
		n = snprintf(reply, sizeof(reply), "421 4.7.0 %s Error: %s\r\n",
		    rt->config->myhostname, why);
		/* best effort on a fresh socket; the client may be gone */
		if (n > 0 && write(fd, reply, (size_t)n) < 0)
			log_debug("smtpd", "421 write: %s", strerror(errno));
		close(fd);
		runtime_unref(&rt);
		return;
	}
	runtime_unref(&rt);
	evutil_make_socket_nonblocking(fd);
	session_start(l->loop, l, fd, (struct sockaddr *)&ss,
	    (socklen_t)salen);
}

static void
accept_error_cb(struct evconnlistener *evl, void *arg)
{
	struct listener *l = arg;

	/* EMFILE and friends: log and keep listening */
	log_warn("accept on %s", l->where);
}

/* bind_one - one socket for spec on loop */
static int
bind_one(const struct listen_spec *spec, struct loop *loop, char **error_r)
{
	struct addrinfo hints, *res = NULL;
	struct listener *l;
	int fd = -1, one = 1, rc;
	static const char *const kinds[] = { "smtp", "submission", "smtps",
	    "policy" };

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rc = getaddrinfo(spec->host, spec->port, &hints, &res)) != 0) {
		*error_r = xasprintf("listen %s:%s: %s", spec->host,
		    spec->port, gai_strerror(rc));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
	    (res->ai_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &one, sizeof(one))) ||
	    bind(fd, res->ai_addr, res->ai_addrlen) == -1 ||
	    listen(fd, 511) == -1) {
		*error_r = xasprintf("listen %s:%s: %s", spec->host,
		    spec->port, strerror(errno));
		if (fd != -1)
			close(fd);
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	l = xcalloc(1, sizeof(*l));
	l->kind = spec->kind;
	l->loop = loop;
	snprintf(l->where, sizeof(l->where), "%s/%s:%s",
	    kinds[spec->kind], spec->host, spec->port);
	l->evl = evconnlistener_new(loop_base(loop), accept_cb, l,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_DISABLED, -1, fd);
	if (l->evl == NULL) {
		*error_r = xasprintf("listen %s: cannot create listener",
		    l->where);
		close(fd);
		free(l);
		return -1;
	}
	evconnlistener_set_error_cb(l->evl, accept_error_cb);
	l->next = listeners;
	listeners = l;
	return 0;
}

int
listeners_open(const struct config *cfg, struct loop **loops, int nloops,
    char **error_r)
{
	size_t i;
	int j;

	for (i = 0; i < cfg->nlisten; i++) {
		for (j = 0; j < nloops; j++)
			if (bind_one(&cfg->listen[i], loops[j], error_r) == -1)
				return -1;
	}
	return 0;
}

void
listeners_enable(void)
{
	struct listener *l;

	for (l = listeners; l != NULL; l = l->next)
		evconnlistener_enable(l->evl);
}

static void
close_one(void *arg)
{
	struct listener *l = arg;

	evconnlistener_free(l->evl);
	l->evl = NULL;
	/* policy clients hold no mail: close them with the listener */
	if (l->kind == LISTENER_POLICY)
		policy_server_shutdown_loop();
}

void
listeners_close(void)
{
	struct listener *l;

	for (l = listeners; l != NULL; l = l->next)
		if (l->evl != NULL)
			loop_post(l->loop, close_one, l);
	policy_server_release();
}

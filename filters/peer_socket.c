/*
 * peer_socket.c - blocking client sockets with deadlines for the filters
 * that talk to external peers (filters/milter.c, policies/
 * policy_client.c).
 *
 * It owns nothing but the sockets it hands out; what goes over them
 * (milter packets, policy attributes) and what a failure means (the
 * default action) are the callers'. The sockets are non-blocking and
 * every wait is a poll() bounded by a monotonic deadline, so that a peer
 * that never accepts, never reads or never answers costs at most the
 * caller's timeout. TCP sockets get TCP_NODELAY: a milter or policy
 * round trip is a small request and a small answer, which Nagle's
 * algorithm together with delayed ACKs would hold back by up to 40 ms
 * each (issue 4, "Speed"); and since the peer may not set TCP_NODELAY
 * itself (libmilter does not), every read ends with TCP_QUICKACK, so
 * that our ACK never waits either.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "peer_socket.h"
#include "xmalloc.h"

int
peer_endpoint_parse(struct peer_endpoint *ep, const char *spec,
    const char **error_r)
{
	const char *hp, *colon;
	size_t hlen;

	memset(ep, 0, sizeof(*ep));
	if (strncmp(spec, "unix:", 5) == 0) {
		if (spec[5] == '\0') {
			*error_r = "no socket path";
			return -1;
		}
		if (strlen(spec + 5) >=
		    sizeof(((struct sockaddr_un *)0)->sun_path)) {
			*error_r = "socket path too long";
			return -1;
		}
		ep->path = xstrdup(spec + 5);
		return 0;
	}
	if (strncmp(spec, "inet:", 5) != 0 ||
	    (colon = strrchr(spec + 5, ':')) == NULL || colon[1] == '\0' ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
	    strlen(colon + 1) > 5 || atoi(colon + 1) == 0 ||
	    atoi(colon + 1) > 65535) {
		*error_r = "not inet:host:port or unix:/path";
		return -1;
	}
	hp = spec + 5;
	hlen = (size_t)(colon - hp);
	if (hlen >= 2 && hp[0] == '[' && hp[hlen - 1] == ']') {
		hp++;
		hlen -= 2;
	}
	if (hlen == 0) {
		*error_r = "no host";
		return -1;
	}
	ep->host = xstrndup(hp, hlen);
	ep->port = xstrdup(colon + 1);
	return 0;
}

void
peer_endpoint_deinit(struct peer_endpoint *ep)
{
	free(ep->host);
	free(ep->port);
	free(ep->path);
	memset(ep, 0, sizeof(*ep));
}

int64_t
peer_deadline(int ms)
{
	return clock_ms() + ms;
}

int
peer_wait(int fd, short events, int64_t deadline)
{
	struct pollfd pfd;
	int64_t left;
	int rc;

	for (;;) {
		left = deadline - clock_ms();
		if (left <= 0)
			return 0;
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		rc = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
		if (rc > 0)
			return 1;
		if (rc == -1 && errno != EINTR)
			return -1;
	}
}

/*
 * retry_unix - a unix socket whose listener's backlog is full: connect()
 * says EAGAIN, and the socket is not connecting (poll would call it
 * writable at once). Try again after 10 ms, doubling to 100 ms, until
 * the deadline. 0 when connected, -1 with *error_r.
 */
static int
retry_unix(int fd, const struct sockaddr *sa, socklen_t salen,
    int64_t deadline, const char **error_r)
{
	int64_t left;
	int pause = 10;

	for (;;) {
		left = deadline - clock_ms();
		if (left <= 0) {
			*error_r = "timeout while connecting (listen queue "
			    "full)";
			return -1;
		}
		(void)poll(NULL, 0, left < pause ? (int)left : pause);
		if (pause < 100)
			pause = pause * 2 > 100 ? 100 : pause * 2;
		if (connect(fd, sa, salen) == 0)
			return 0;
		if (errno != EAGAIN && errno != EINTR) {
			*error_r = strerror(errno);
			return -1;
		}
	}
}

/* connect_addr - one non-blocking connect with the deadline; fd or -1 */
static int
connect_addr(const struct sockaddr *sa, socklen_t salen, int64_t deadline,
    const char **error_r)
{
	int fd, err = 0, one = 1;
	socklen_t len = sizeof(err);

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1) {
		*error_r = strerror(errno);
		return -1;
	}
	if (sa->sa_family != AF_UNIX)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
	if (connect(fd, sa, salen) == 0)
		return fd;
	if (sa->sa_family == AF_UNIX && errno == EAGAIN) {
		if (retry_unix(fd, sa, salen, deadline, error_r) == -1)
			goto fail;
		return fd;
	}
	if (errno != EINPROGRESS) {
		*error_r = strerror(errno);
		goto fail;
	}
	switch (peer_wait(fd, POLLOUT, deadline)) {
	case 0:
		*error_r = "timeout while connecting";
		goto fail;
	case -1:
		*error_r = strerror(errno);
		goto fail;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 ||
	    err != 0) {
		*error_r = strerror(err != 0 ? err : errno);
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

int
peer_connect(const struct peer_endpoint *ep, int64_t deadline,
    const char **error_r)
{
	struct addrinfo hints, *res = NULL, *ai;
	struct sockaddr_un sun;
	int fd = -1, gai;

	*error_r = "no address";
	if (ep->path != NULL) {
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		memcpy(sun.sun_path, ep->path, strlen(ep->path) + 1);
		return connect_addr((struct sockaddr *)&sun, sizeof(sun),
		    deadline, error_r);
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((gai = getaddrinfo(ep->host, ep->port, &hints, &res)) != 0) {
		*error_r = gai_strerror(gai);
		return -1;
	}
	for (ai = res; ai != NULL && fd == -1; ai = ai->ai_next)
		fd = connect_addr(ai->ai_addr, ai->ai_addrlen, deadline,
		    error_r);
	freeaddrinfo(res);
	return fd;
}

int
peer_write_all(int fd, const void *data, size_t len, int64_t deadline,
    size_t *sent_r, const char **error_r)
{
	const char *p = data;
	size_t off = 0;
	ssize_t n;
	int rc;

	while (off < len) {
		n = send(fd, p + off, len - off, MSG_NOSIGNAL);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK) {
			*error_r = strerror(errno);
			goto fail;
		}
		if ((rc = peer_wait(fd, POLLOUT, deadline)) <= 0) {
			if (rc == 0) {
				*error_r = "timeout while writing";
				errno = ETIMEDOUT;
			} else
				*error_r = strerror(errno);
			goto fail;
		}
	}
	if (sent_r != NULL)
		*sent_r = off;
	return 0;
fail:
	if (sent_r != NULL)
		*sent_r = off;
	return -1;
}

/*
 * quickack - ACK what was just read now, not in up to 40 ms.
 *
 * libmilter (opendkim) does not set TCP_NODELAY and answers end of
 * message with two packets, a modification then the verdict: Nagle's
 * algorithm on its side holds the second until the first is ACKed, and
 * our kernel, seeing a request/response exchange, delays that ACK (Linux
 * "pingpong" mode). Setting TCP_QUICKACK sends a pending delayed ACK at
 * once and leaves that mode; it is not sticky (the next write re-enters
 * it), hence once after every read. A unix socket refuses the option
 * (EOPNOTSUPP) without harm: one cheap syscall, no state to keep per fd.
 */
static void
quickack(int fd)
{
#ifdef TCP_QUICKACK
	int one = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
#else
	(void)fd;
#endif
}

ssize_t
peer_read(int fd, void *dst, size_t len, int64_t deadline,
    const char **error_r)
{
	ssize_t n;
	int rc;

	for (;;) {
		n = recv(fd, dst, len, 0);
		if (n > 0)
			quickack(fd);
		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			*error_r = strerror(errno);
			return -1;
		}
		if ((rc = peer_wait(fd, POLLIN, deadline)) <= 0) {
			if (rc == 0) {
				*error_r = "timeout";
				errno = ETIMEDOUT;
			} else
				*error_r = strerror(errno);
			return -1;
		}
	}
}

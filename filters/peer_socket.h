/*
 * peer_socket.h - blocking client sockets to the external peers of the
 * filters (milters, policy services) with deadlines: endpoint parsing
 * ("inet:host:port", "inet:[::1]:port", "unix:/path"), connect, write
 * all and read, each bounded by a monotonic deadline in milliseconds
 * (daemon/clock.h). For filters that run on the filter threads, never on
 * an event loop.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_PEER_SOCKET_H
#define POSTERN_PEER_SOCKET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* where a peer listens */
struct peer_endpoint {
	char	*host;		/* owned; NULL for unix: */
	char	*port;		/* owned; NULL for unix: */
	char	*path;		/* owned; NULL for inet: */
};

/*
 * peer_endpoint_parse - "inet:host:port" (host may be "[v6]") or
 * "unix:/path" into *ep. Returns 0, or -1 with *error_r (static text:
 * what is wrong, the caller names the parameter and the token); *ep is
 * then empty. peer_endpoint_deinit frees it in both cases.
 */
int	peer_endpoint_parse(struct peer_endpoint *ep, const char *spec,
	    const char **error_r);
void	peer_endpoint_deinit(struct peer_endpoint *ep);

/* peer_deadline - clock_ms() + ms */
int64_t	peer_deadline(int ms);

/*
 * peer_connect - a non-blocking, close-on-exec stream socket connected
 * to ep before deadline (every address of a host name is tried), with
 * TCP_NODELAY on TCP (small request/response packets must never wait
 * on Nagle and delayed ACKs). A unix listener whose queue is full
 * (EAGAIN) is tried again after 10 ms, doubling to 100 ms, until the
 * deadline. Returns the fd, or -1 with *error_r (static text or
 * strerror).
 */
int	peer_connect(const struct peer_endpoint *ep, int64_t deadline,
	    const char **error_r);

/*
 * peer_wait - poll fd for events until deadline: 1 ready, 0 timeout,
 * -1 error (errno set)
 */
int	peer_wait(int fd, short events, int64_t deadline);

/*
 * peer_write_all - write len bytes to the non-blocking fd before
 * deadline (no SIGPIPE). Returns 0, or -1 with *error_r and *sent_r
 * (may be NULL) the bytes that went out before the failure.
 */
int	peer_write_all(int fd, const void *data, size_t len, int64_t deadline,
	    size_t *sent_r, const char **error_r);

/*
 * peer_read - at most len bytes from the non-blocking fd, waiting until
 * deadline for the first. Returns the count (> 0), 0 at end of file, or
 * -1 with *error_r ("timeout" on the deadline, or strerror). On TCP,
 * every read that got bytes sets TCP_QUICKACK (not sticky on Linux), so
 * that a peer without TCP_NODELAY never waits on our delayed ACK.
 */
ssize_t	peer_read(int fd, void *dst, size_t len, int64_t deadline,
	    const char **error_r);

#endif

/*
 * qmgr_sched.h - the queue manager's decisions as pure functions: where a
 * recipient goes (transport and next hop), how recipients group into
 * delivery jobs, how long to back off, when a message expires.
 *
 * Nothing here does I/O or keeps state, so t/unit/test_qmgr.c checks the
 * decisions without threads, loops or a spool.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_QMGR_SCHED_H
#define POSTERN_QMGR_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct nexthop;

/* at most this many recipients of one message in one delivery job */
#define QMGR_RCPTS_PER_JOB	50

struct qmgr_route {
	const char *transport;	/* static: "smtp" or "maildir" */
	char	 host[256];	/* next hop (smtp) or "" (maildir) */
	char	 port[16];
	bool	 use_mx;
	bool	 is_relayhost;	/* the configured relayhost */
	char	 key[300];	/* "transport:host:port:mx", groups jobs */
};

/*
 * qmgr_rcpt_domain - the domain of address (after the last '@'),
 * lowercased, one trailing dot removed, into out. "" if there is none.
 */
void	qmgr_rcpt_domain(const char *address, char *out, size_t n);

/*
 * qmgr_route_rcpt - the destination of a recipient whose domain is
 * `domain` (from qmgr_rcpt_domain): maildir if is_local, else the
 * relayhost if one is set (relayhost->host non-NULL), else the domain
 * itself by MX. An address literal "[192.0.2.1]" is a host, not an MX
 * name. Returns -1 (with *error_r) when there is nowhere to send it.
 */
int	qmgr_route_rcpt(const char *domain, bool is_local,
	    const struct nexthop *relayhost, struct qmgr_route *,
	    const char **error_r);

struct qmgr_batch {
	size_t	 first;		/* into the order array */
	size_t	 n;		/* 1..max */
};

/*
 * qmgr_group - batch n recipients by key: order_r (n entries) receives
 * the recipient indices with equal keys next to each other (keys in order
 * of first appearance, recipients in their original order), batches_r
 * (room for n) the runs of at most max. Returns the number of batches.
 */
size_t	qmgr_group(const char *const *keys, size_t n, size_t max,
	    size_t *order_r, struct qmgr_batch *batches_r);

/*
 * qmgr_backoff - seconds until the next attempt: the time the message has
 * spent in the queue so far, clamped to [min, max] (roughly doubling the
 * interval each time, as Postfix does).
 */
int	qmgr_backoff(time_t arrival, time_t now, int min, int max);

/*
 * qmgr_expired - true once the message has been queued longer than its
 * lifetime: max_lifetime, or bounce_lifetime for a null-sender message.
 */
bool	qmgr_expired(time_t arrival, time_t now, bool null_sender,
	    int max_lifetime, int bounce_lifetime);

#endif

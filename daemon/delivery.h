/*
 * delivery.h - the contract between the queue manager and a transport.
 *
 * The queue manager fills a delivery_job for one message and one
 * destination (some of the message's recipients) and starts a transport
 * on its event loop. The transport sets each recipient's status and calls
 * job->done exactly once, on the queue manager's loop. It never touches
 * the spool state; it only reads the content through content_fd.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_DELIVERY_H
#define POSTERN_DELIVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct config;
struct event_base;

enum delivery_status {
	DELIVERY_PENDING,
	DELIVERY_SENT,
	DELIVERY_DEFERRED,	/* 4xx, network or local trouble: retry */
	DELIVERY_BOUNCED,	/* 5xx: permanent */
};

struct delivery_rcpt {
	size_t	 index;		/* in the message's envelope */
	const char *address;	/* borrowed from the message */
	const char *orcpt;	/* borrowed; or NULL */
	unsigned notify;	/* DSN_NOTIFY_* */
	enum delivery_status status;
	char	 dsn[16];	/* enhanced status, "2.0.0" */
	char	*reply;		/* owned; "250 2.0.0 Ok" or our diagnosis */
};

struct delivery_job {
	const struct config *config;	/* borrowed; qmgr holds a reference */
	const char *queue_id;		/* borrowed */
	const char *sender;		/* borrowed; "" for bounces */
	const char *envid;		/* borrowed; DSN ENVID or NULL */
	const char *ret;		/* borrowed; "FULL", "HDRS" or NULL */
	const char *body_type;		/* borrowed */
	bool	 smtputf8;

	/* content: header block, then "\r\n", then body (see spool.h) */
	int	 content_fd;		/* borrowed; read with pread */
	off_t	 header_offset;
	size_t	 header_len;
	off_t	 body_offset;
	size_t	 body_len;

	/* where to: for smtp, nexthop_host is a domain (MX) or a host */
	const char *transport;		/* "smtp" or "maildir" */
	const char *nexthop_host;	/* borrowed */
	const char *nexthop_port;	/* borrowed; "25" */
	bool	 nexthop_use_mx;
	bool	 nexthop_is_relayhost;	/* a lookup failure is our config */
	const char *maildir_base;	/* borrowed; maildir transport */

	struct delivery_rcpt *rcpts;	/* owned by qmgr */
	size_t	 nrcpts;

	/* set by the transport */
	char	*relay;			/* owned; "mx.example[192.0.2.25]:25" */

	/* done - called once on the qmgr loop when every rcpt has a status */
	void	 (*done)(struct delivery_job *);
	void	*done_arg;
};

/* delivery_set_rcpt - set status, dsn and reply (copied) of recipient i */
void	delivery_set_rcpt(struct delivery_job *, size_t i,
	    enum delivery_status, const char *dsn, const char *reply);
/* delivery_set_all - the same status for every recipient still pending */
void	delivery_set_all(struct delivery_job *, enum delivery_status,
	    const char *dsn, const char *reply);

#endif

/*
 * deliver_smtp-private.h - what deliver_smtp.c (job start and finish,
 * client sessions, the connection cache) and deliver_route.c (MX and
 * address lookups, the order of attempts, failure bookkeeping) share;
 * not for use outside the SMTP client transport.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_DELIVER_SMTP_PRIVATE_H
#define POSTERN_DELIVER_SMTP_PRIVATE_H

#include <sys/queue.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "delivery.h"
#include "smtp_client.h"

struct bufferevent;
struct dns;
struct dns_lookup;
struct event;
struct event_base;

enum smtp_state {
	SMTP_STATE_CONNECT,
	SMTP_STATE_GREETING,
	SMTP_STATE_EHLO,
	SMTP_STATE_HELO,
	SMTP_STATE_STARTTLS,
	SMTP_STATE_TLS_HANDSHAKE,
	SMTP_STATE_TRANSACTION,	/* replies to MAIL, RCPTs and DATA */
	SMTP_STATE_CONTENT,
	SMTP_STATE_DOT,
	SMTP_STATE_RSET,
	SMTP_STATE_IDLE,	/* in the cache */
	SMTP_STATE_QUIT,
	SMTP_STATE_CLOSED,
};

enum tls_level {
	TLS_LEVEL_NONE,
	TLS_LEVEL_MAY,
	TLS_LEVEL_ENCRYPT,
};

struct smtp_session;

/* per event loop */
struct smtp_ctx {
	struct event_base *base;	/* borrowed: the loop's */
	struct dns *dns;		/* owned; NULL until first needed */
	char	*resolver;		/* owned; what dns was made with */
	TAILQ_HEAD(, smtp_session) idle;	/* owned: the cache */
	TAILQ_HEAD(, smtp_delivery) active;	/* borrowed: jobs at work */
	size_t	 nidle;
	char	*chunk;			/* owned; CONTENT_CHUNK bytes */
	struct smtp_ctx *next;		/* registry */
};

/* one job */
struct smtp_delivery {
	TAILQ_ENTRY(smtp_delivery) aentry;	/* ctx->active, until finish */
	bool	 finished;
	struct delivery_job *job;	/* borrowed until job->done */
	struct smtp_ctx *ctx;		/* borrowed */
	struct smtp_session *sess;	/* borrowed; the one at work */
	struct dns_lookup *lookup;	/* owned by dns; cancel on free */
	char	*key;			/* owned; cache key */
	char	**hosts;		/* owned */
	size_t	 nhosts, ihost;
	struct sockaddr_storage *addrs;	/* owned; of hosts[ihost] */
	size_t	 naddrs, iaddr;
	enum tls_level tls;
	bool	 no_tls;		/* plaintext retry after TLS failed */
	bool	 plain_retried;
	bool	 reused;		/* the session came from the cache */
	/* the most telling failure so far */
	bool	 any_soft;
	char	*soft_reason, soft_dsn[16];
	char	*hard_reason, hard_dsn[16];
};

struct smtp_session {
	struct smtp_ctx *ctx;		/* borrowed */
	struct smtp_delivery *dl;	/* borrowed; NULL when not at work */
	enum smtp_state state;
	struct bufferevent *bev;	/* owned (TLS filter owns TCP) */
	struct event *timer;		/* owned */
	struct event *reaper;		/* owned; frees the closed session */
	char	*key;			/* owned; destination for the cache */
	char	*host;			/* owned; the name we looked up */
	char	*peer;			/* owned; "host[addr]" */
	char	*label;			/* owned; "host[addr]:port" */
	struct sockaddr_storage ss;
	struct smtp_ext ext;
	bool	 tls;
	struct smtp_reply reply;
	time_t	 created;
	int	 cache_time;		/* seconds to stay cached */
	int	 cmd_timeout, data_timeout, helo_timeout;
	TAILQ_ENTRY(smtp_session) entry;	/* in ctx->idle */
	/* the transaction (RFC 5321 3.3) */
	size_t	 nreplies;		/* MAIL, RCPTs, DATA replies */
	size_t	 nrcpt_sent;
	size_t	 naccepted;
	bool	 mail_ok;
	bool	 pipelining;
	bool	 discard_dot;		/* DATA got 354 with no recipient */
	/* content */
	int	 phase;			/* 0 hdr, 1 sep, 2 body, 3 end */
	off_t	 cpos;
	size_t	 cleft;
	struct smtp_dot dot;
};

/* deliver_smtp.c */

/*
 * deliver_smtp_fail_all - give every pending recipient of dl's job st,
 * dsn and reason, then finish the job (dl is freed from the event loop).
 */
void	deliver_smtp_fail_all(struct smtp_delivery *dl,
	    enum delivery_status st, const char *dsn, const char *reason);
/*
 * smtp_session_connect - connect to dl->addrs[dl->iaddr] of
 * dl->hosts[dl->ihost]; the session then reports back through
 * route_note_failure() and route_next_attempt() or finishes the job.
 */
void	smtp_session_connect(struct smtp_delivery *dl);

/* deliver_route.c */

/* route_begin - look up the next hop (MX or fixed), then connect */
void	route_begin(struct smtp_delivery *dl);
/*
 * route_next_addr - connect to the current address of the current host,
 * or go on to the next host when none is left
 */
void	route_next_addr(struct smtp_delivery *dl);
/* route_next_attempt - the next address; TLS is tried again there */
void	route_next_attempt(struct smtp_delivery *dl);
/*
 * route_note_failure - remember why an attempt failed (hard: a 5xx or
 * a permanent DNS error); decides whether the job bounces or defers once
 * no route is left.
 */
void	route_note_failure(struct smtp_delivery *dl, bool hard,
	    const char *dsn, const char *reason);

#endif /* POSTERN_DELIVER_SMTP_PRIVATE_H */

/*
 * session.h - one SMTP server session (RFC 5321, 6409, 8314 listeners).
 *
 * A session lives on one event loop. struct session holds the
 * per-connection data; struct transaction the per-message data, freed by
 * RSET, a new MAIL or the end of DATA. While blocking work runs on the
 * worker pool (AUTH check, a blocking filter stage, the spool commit) the
 * session is suspended: it stops reading and resumes in the completion.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_SESSION_H
#define POSTERN_SESSION_H

#include <sys/socket.h>

#include <time.h>

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "chain.h"
#include "config/config.h"
#include "filter.h"
#include "smtp_data.h"
#include "spool.h"

struct bufferevent;
struct event;
struct loop;
struct runtime;
struct listener;

enum smtp_state {
	SMTP_STATE_GREETING,	/* connect filters, 220 not sent yet */
	SMTP_STATE_HELO,	/* waiting for EHLO/HELO */
	SMTP_STATE_READY,	/* no transaction */
	SMTP_STATE_MAIL,	/* MAIL given */
	SMTP_STATE_RCPT,	/* at least one RCPT accepted */
	SMTP_STATE_DATA,	/* receiving DATA content */
	SMTP_STATE_BDAT,	/* receiving a BDAT chunk */
	SMTP_STATE_AUTH,	/* in an AUTH exchange */
	SMTP_STATE_QUIT,	/* closing after the last reply */
	SMTP_STATE_COUNT
};

struct tx_rcpt {
	char	*address;		/* owned */
	char	*orcpt;			/* owned or NULL */
	char	*notify_text;		/* owned or NULL */
	unsigned notify;		/* DSN_NOTIFY_* */
};

struct transaction {
	char	*sender;		/* owned; "" for <> */
	char	*envid;			/* owned or NULL */
	char	*ret;			/* owned or NULL */
	char	*body_type;		/* owned or NULL */
	bool	 smtputf8;
	size_t	 declared_size;		/* SIZE= */
	struct tx_rcpt *rcpts;		/* owned array */
	size_t	 nrcpts;
	struct filter_rcpt *frcpts;	/* owned: filter view of rcpts */

	struct chain_tx chain;		/* owned filter state */
	struct filter_tx ftx;		/* view handed to filters */

	struct spool_file *spool;	/* owned; from DATA/BDAT on */
	char	 queue_id[QUEUE_ID_MAX];
	struct smtp_data data;		/* content reader */
	bool	 data_started;
	time_t	 data_deadline;		/* smtpd_data_timeout; 0 before DATA */
	size_t	 bdat_remaining;	/* bytes of this chunk still to read */
	bool	 bdat_last;
	bool	 bdat_failed;		/* a chunk failed: refuse until LAST */
	bool	 bdat_replied;		/* the failure was answered already */
	bool	 completed;		/* queued or discarded: no ABORT */
	struct filter_edits edits;
	enum filter_verdict final;	/* HOLD/DISCARD from a filter */
};

struct session {
	unsigned long long id;
	struct loop	*loop;		/* borrowed: lives longer */
	struct runtime	*rt;		/* owned reference */
	const struct config *cfg;	/* borrowed from rt */
	enum listener_kind kind;
	struct listener	*listener;	/* borrowed; for connection counts */

	struct bufferevent *bev;	/* owned; TLS filter after STARTTLS */
	struct event	*timer;		/* owned */
	struct event	*tarpit;	/* owned: soft error limit delay */
	struct sockaddr_storage ss;
	char	 addr[64];		/* "192.0.2.7" */
	char	 name[256];		/* PTR name or "unknown" */
	char	 ident[330];		/* "name[addr]" for logs */

	enum smtp_state	state;
	bool	 esmtp;
	bool	 tls;
	bool	 suspended;		/* pool work outstanding */
	bool	 closing;		/* free once output drains */
	bool	 discard_line;		/* skipping the rest of a long line */
	bool	 output_blocked;	/* reading paused: replies not read */
	bool	 peer_eof;		/* the client shut down its side */
	time_t	 close_deadline;	/* closing: free by then */
	bool	 shutdown_pending;	/* SIGTERM came while suspended */
	bool	 discarding;		/* reading a BDAT chunk to drop it */
	enum smtp_state discard_state;	/* to return to after it */
	size_t	 discard_bytes;		/* of that chunk, still to read */
	const char *discard_reply;	/* BDAT without a transaction: the
					   chunk is read, dropped, answered */
	bool	 is_mynetworks;
	char	*helo;			/* owned */
	char	*sasl_method;		/* owned */
	char	*sasl_username;		/* owned */
	char	 tls_version[32];
	char	 tls_cipher[96];
	int	 tls_bits;
	int	 tls_alg_bits;
	int	 errors;
	int	 auth_failures;
	char	 last_cmd[16];		/* for "timeout after X" */
	char	*auth_user;		/* owned: AUTH LOGIN username */
	int	 auth_mech;		/* session_auth.c */
	int	 auth_step;

	struct filter_conn fconn;	/* view handed to filters */
	struct chain_tx conn_chain;	/* connection-level filter state */
	struct transaction *tx;		/* owned; NULL outside MAIL..DATA */
};

/*
 * session_start - take over an accepted socket. The session frees
 * itself when the connection ends.
 */
void	session_start(struct loop *, struct listener *, int fd,
	    const struct sockaddr *, socklen_t);
/* session_shutdown_all - 421 every session of this loop and close (SIGTERM) */
void	session_shutdown_all(struct loop *);
/* session_count - sessions alive in the whole process */
int	session_count(void);

#endif

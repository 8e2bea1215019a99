/*
 * filter.h - the filter API: the milter model, in-process.
 *
 * A filter is a struct of callbacks for the stages it cares about. The
 * chain (chain.h) runs the filters of smtpd_filters in order at each stage;
 * the first verdict other than FILTER_CONTINUE ends the stage, except
 * FILTER_HOLD, which is remembered while the other filters still run (a
 * held message is still signed, still checked). A stage
 * whose filters all declare may_block = false runs inline on the session's
 * event loop; otherwise the whole stage (every filter, every header of the
 * block, every recipient of a pipelined group) runs in one hand-off on the
 * worker pool while the session is suspended.
 *
 * Filters never see sockets or the spool. They see a read-only view of the
 * connection and transaction, and at end of message they may request edits
 * through struct filter_edits (milter's actions).
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_FILTER_H
#define POSTERN_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct buf;
struct config;
struct header_list;

enum filter_verdict {
	FILTER_CONTINUE,	/* go on to the next filter */
	FILTER_ACCEPT,		/* accept; skip the rest of the chain */
	FILTER_REJECT,		/* 5xx, reply in call->reply */
	FILTER_TEMPFAIL,	/* 4xx, reply in call->reply */
	FILTER_DISCARD,		/* 250, then drop the message */
	FILTER_HOLD,		/* 250, then put it in the hold queue */
	FILTER_DISCONNECT,	/* 421 and close */
};

enum filter_stage {
	FILTER_STAGE_CONNECT,
	FILTER_STAGE_HELO,
	FILTER_STAGE_AUTH,
	FILTER_STAGE_MAIL,
	FILTER_STAGE_RCPT,
	FILTER_STAGE_DATA,
	FILTER_STAGE_HEADER,
	FILTER_STAGE_EOH,
	FILTER_STAGE_BODY,
	FILTER_STAGE_EOM,
	FILTER_STAGE_ABORT,
	FILTER_STAGE_CLOSE,
	FILTER_STAGE_COUNT
};

#define FILTER_STAGE_BIT(s)	(1u << (s))

/* read-only view of the SMTP connection */
struct filter_conn {
	unsigned long long session_id;
	const struct sockaddr *client_sa;	/* borrowed */
	const char *client_addr;	/* "192.0.2.7" or "2001:db8::1" */
	const char *client_name;	/* PTR name or "unknown" */
	const char *server_addr;	/* the local address the client
					   connected to ("192.0.2.1"); NULL
					   if unknown: milter {daemon_addr} */
	unsigned server_port;		/* its port, 0 if unknown:
					   milter {daemon_port} */
	char	 server_addr_buf[64];	/* where server_addr points when
					   the session filled it */
	const char *helo;		/* NULL before HELO/EHLO */
	const char *tls_version;	/* NULL without TLS */
	const char *tls_cipher;
	int	 tls_cipher_bits;	/* secret bits of the cipher, 0
					   without TLS or if unknown */
	const char *sasl_method;	/* NULL unless authenticated */
	const char *sasl_username;
	bool	 is_mynetworks;		/* client address in mynetworks */
	bool	 is_authenticated;
	bool	 is_esmtp;		/* EHLO (not HELO) was said */
	const struct config *config;	/* borrowed: the session's config */
};

/* one envelope recipient as the filters see it */
struct filter_rcpt {
	const char *address;		/* without angle brackets, "" never */
	const char *orcpt;		/* DSN ORCPT or NULL */
	const char *notify;		/* DSN NOTIFY or NULL */
};

/* read-only view of the current transaction */
struct filter_tx {
	const char *queue_id;		/* NULL until a queue file exists */
	const char *sender;		/* "" for the null sender */
	const struct filter_rcpt *rcpts;/* accepted so far */
	size_t	 nrcpts;
	size_t	 size;			/* SIZE= parameter, then actual size */
	bool	 smtputf8;
	const char *body_type;		/* "7BIT", "8BITMIME" or NULL */
};

/* header edits requested at end of message (milter's actions) */
enum filter_edit_kind {
	FILTER_EDIT_ADD_HEADER,		/* append at the end of the header */
	FILTER_EDIT_INSERT_HEADER,	/* at index (0: before the first) */
	FILTER_EDIT_CHANGE_HEADER,	/* nth (1-based) name; NULL deletes */
	FILTER_EDIT_CHANGE_FROM,
	FILTER_EDIT_ADD_RCPT,
	FILTER_EDIT_DELETE_RCPT,
	FILTER_EDIT_REPLACE_BODY,
};

struct filter_edit {
	enum filter_edit_kind kind;
	size_t	 index;
	char	*name;			/* owned */
	char	*value;			/* owned; NULL to delete */
	char	*args;			/* owned: ESMTP parameters of a
					   CHANGE_FROM or ADD_RCPT
					   ("NOTIFY=NEVER"), or NULL */
	struct filter_edit *next;	/* owned */
};

struct filter_edits {
	struct filter_edit *head;	/* owned list, in request order */
	struct filter_edit **tail;
};

/*
 * the message as the filters before this one left it: their header edits
 * applied, their body replacement if any (EOM only). A filter that signs
 * or checks the final message (dkim, regex) reads it here.
 */
struct filter_message {
	struct header_list *headers;	/* owned by the chain's caller */
	struct buf *body;		/* replacement body or NULL: the
					   original, seen in the BODY stage */
	/*
	 * read_body - the original body (CRLF line ends, dot-unstuffed),
	 * for a filter that must send it on whole at EOM (milters): up to
	 * len bytes at offset off into dst, *got_r 0 at the end. Returns 0,
	 * or -1 with *error_r (static text). NULL where the caller has no
	 * way to read it back (only BODY chunks then).
	 */
	int	(*read_body)(void *ctx, size_t off, void *dst, size_t len,
		    size_t *got_r, const char **error_r);
	void	*read_body_ctx;		/* borrowed */
};

/* everything a callback gets; stage arguments are set per stage */
struct filter_call {
	const struct filter_conn *conn;
	const struct filter_tx *tx;	/* NULL at connect/helo/auth/close */
	void	*instance;		/* from ops->init */
	void	*tx_state;		/* from ops->tx_begin */
	/*
	 * the filter's state from the tx_begin at connection time, for
	 * what lives as long as the SMTP session (a milter's connection):
	 * the same as tx_state at CONNECT, HELO, AUTH and CLOSE, and
	 * wherever a chain_tx runs without a connection's (tests)
	 */
	void	*conn_state;
	enum filter_stage stage;

	/* stage arguments (borrowed for the duration of the call) */
	const char *arg;	/* HELO name, sender, recipient, header name */
	const char *value;	/* header value (as received, no CRLF) */
	const struct filter_rcpt *rcpt;	/* RCPT stage */
	const void *chunk;	/* BODY stage: CRLF line ends, dot-unstuffed */
	size_t	 chunk_len;

	/*
	 * EOH: the header block as received; EOM: the message as the
	 * filters before this one left it; NULL at other stages
	 */
	const struct filter_message *message;

	/* results */
	char	 reply[512];	/* "554 5.7.1 text" when not CONTINUE */
	struct filter_edits *edits;	/* EOM only; NULL otherwise */
};

typedef enum filter_verdict (*filter_cb_fn)(struct filter_call *);

struct filter_ops {
	const char *name;
	unsigned stages;		/* FILTER_STAGE_BIT mask */
	bool	 may_block;		/* true: run on the worker pool */
	bool	 edits;			/* may request edits at EOM */
	bool	 signs;			/* signs the message: no filter that
					   edits may come after it */

	/* init - per configuration load; NULL and *error_r (owned) on error */
	void	*(*init)(const struct config *, char **error_r);
	void	 (*deinit)(void *instance);
	/* tx_begin/tx_end - per-transaction state; tx_end runs on every exit */
	void	*(*tx_begin)(void *instance, const struct filter_conn *);
	void	 (*tx_end)(void *instance, void *tx_state);

	filter_cb_fn cb[FILTER_STAGE_COUNT];
};

/*
 * filter_set_reply - format call->reply, e.g.
 * filter_set_reply(call, "554", "5.7.1", "Relay access denied")
 */
void	filter_set_reply(struct filter_call *, const char *code,
	    const char *enhanced, const char *fmt, ...)
	    __attribute__((format(printf, 4, 5)));

/* filter_edits_add - append an edit; name and value are copied */
void	filter_edits_add(struct filter_edits *, enum filter_edit_kind,
	    size_t index, const char *name, const char *value);
/*
 * filter_edits_add_envelope - append a CHANGE_FROM, ADD_RCPT or
 * DELETE_RCPT of address with its ESMTP parameters (NULL or "": none);
 * both copied
 */
void	filter_edits_add_envelope(struct filter_edits *,
	    enum filter_edit_kind, const char *address, const char *args);
void	filter_edits_init(struct filter_edits *);
void	filter_edits_deinit(struct filter_edits *);

/* filter_sa_port - the port of an inet sockaddr, 0 for anything else */
unsigned filter_sa_port(const struct sockaddr *);

/* filter_lookup - a filter by its smtpd_filters name, or NULL */
const struct filter_ops *filter_lookup(const char *name);

const char *filter_stage_name(enum filter_stage);
const char *filter_verdict_name(enum filter_verdict);

#endif

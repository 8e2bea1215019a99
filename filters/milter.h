/*
 * milter.h - the "milters" filter: Postern calling the external milters
 * of smtpd_milters from its filter chain (milter.c), and the per-milter
 * connection it keeps for an SMTP session (milter_conn.c).
 *
 * The structs below are shared by those two files only; the rest of the
 * daemon knows the filter by its ops object, filter_milters.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_MILTER_H
#define POSTERN_MILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "filter.h"
#include "milter_proto.h"
#include "peer_socket.h"

struct config;

extern const struct filter_ops filter_milters;

/* what a milter that cannot be used makes of a session (Postfix's) */
enum milter_fallback {
	MILTER_FALLBACK_TEMPFAIL,	/* 451 4.7.1 for the rest of it */
	MILTER_FALLBACK_ACCEPT,		/* go on without that milter */
	MILTER_FALLBACK_REJECT,		/* 550 5.7.1 for the rest of it */
	MILTER_FALLBACK_QUARANTINE,	/* accept, and hold every message */
};

/* the longest timeout of a brace group, seconds (the schema's too) */
#define MILTER_TIMEOUT_MAX	86400

/* one milter of smtpd_milters, as configured */
struct milter_spec {
	char	*name;			/* owned: its address */
	struct peer_endpoint ep;	/* owned */
	int	 connect_timeout;	/* seconds */
	int	 command_timeout;
	int	 content_timeout;
	enum milter_fallback fallback;
};

/*
 * milter_spec_parse - one smtpd_milters token: "inet:host:port",
 * "unix:/path" or a Postfix group "{ address, connect_timeout=5s,
 * command_timeout=10s, content_timeout=60s, default_action=accept }";
 * what the group leaves out comes from cfg's milter_* parameters.
 * Returns 0, or -1 with *error_r (owned) naming smtpd_milters and the
 * token; milter_spec_deinit frees *spec in both cases.
 */
int	milter_spec_parse(struct milter_spec *spec, const char *token,
	    const struct config *cfg, char **error_r);
void	milter_spec_deinit(struct milter_spec *spec);
/* milter_fallback_parse - "tempfail" ... into *f; -1 if unknown */
int	milter_fallback_parse(const char *, enum milter_fallback *f);
const char *milter_fallback_name(enum milter_fallback);

/*
 * milter_replycode - police a milter's SMFIR_REPLYCODE text into an SMTP
 * reply the chain accepts: the last line of a multi-line reply, a 4xx
 * or 5xx code, an enhanced code of the same class (5.7.1 or 4.7.1 added
 * when missing or of the wrong class), printable ASCII only. Writes the
 * reply into out (size n) and returns FILTER_TEMPFAIL, FILTER_REJECT or
 * FILTER_DISCONNECT (421), or -1 for a text without a usable code.
 */
int	milter_replycode(const char *text, char *out, size_t n);

/* a milter's standing in one SMTP session */
enum milter_conn_state {
	MILTER_CONN_NEW,	/* not connected yet */
	MILTER_CONN_OK,		/* connected and negotiated */
	MILTER_CONN_FAILED,	/* gone: its fallback applies */
	MILTER_CONN_DONE,	/* accept, a refusal at connect/helo or a
				   shutdown: not asked again in this
				   session (sess_verdict, if any, stands) */
};

struct milter_conn {
	const struct milter_spec *spec;	/* borrowed: the instance's */
	int	 fd;			/* owned; -1 when closed */
	struct milter_reader rd;	/* owned */
	struct milter_neg neg;		/* owned */
	enum milter_conn_state state;
	bool	 in_tx;			/* MAIL sent, message not finished */
	bool	 msg_done;		/* accept or final reply this message */
	/*
	 * a refusal at connect or helo, or a shutdown: applies to every
	 * later MAIL of the session (Postfix's rejected-connection state)
	 */
	int	 sess_verdict;		/* FILTER_*, FILTER_CONTINUE if none */
	char	 sess_reply[512];
};

/*
 * the longest one command may wait, in timeouts, however many progress
 * replies come (Postfix has no such cap: a milter sending progress
 * forever would hold the session and a filter thread forever)
 */
#define MILTER_PROGRESS_CAP	4

/* what one command got */
enum milter_result {
	MILTER_RES_CONTINUE,
	MILTER_RES_SKIP,
	MILTER_RES_ACCEPT,
	MILTER_RES_FINAL,	/* reject, tempfail, replycode, discard or
				   shutdown */
	MILTER_RES_FAILED,	/* *error_r says why; the milter is closed */
};

/* the final answer of a command, and what came with it at EOM */
struct milter_answer {
	char	 code;			/* MILTER_REPLY_* of a FINAL result */
	char	 text[512];		/* replycode text, else "" */
	bool	 quarantine;		/* 'q' seen (EOM) */
	char	 reason[256];		/* its reason */
};

void	milter_conn_init(struct milter_conn *, const struct milter_spec *);
/*
 * milter_conn_open - connect and negotiate (version, every action and
 * protocol step offered), within the milter's connect_timeout. 0, or -1
 * with *error_r (static) and the connection closed.
 */
int	milter_conn_open(struct milter_conn *, uint32_t version,
	    const char **error_r);
/*
 * milter_conn_command - write out (packets ending with command cmd, e.g.
 * macros then 'M') in one write, then, if cmd expects a reply, read the
 * replies until a final one, each wait at most timeout_ms (a progress
 * reply restarts it, but one command waits MILTER_PROGRESS_CAP times
 * timeout_ms at most in all: then it is a timeout). SMFIR_SHUTDOWN is a
 * FINAL answer of code MILTER_REPLY_SHUTDOWN. Modifications are allowed
 * only with map != NULL (end of message) and go into it. On
 * MILTER_RES_FAILED the connection is closed and *error_r (static) says
 * why ("timeout" for a timeout).
 */
enum milter_result milter_conn_command(struct milter_conn *,
	    const struct buf *out, char cmd, int timeout_ms,
	    struct milter_edit_map *map, struct milter_answer *ans,
	    const char **error_r);
/*
 * milter_conn_post - write out without waiting (ABORT, QUIT: no reply),
 * from the event loop too: a milter that cannot take a few bytes at once
 * is closed. 0 or -1.
 */
int	milter_conn_post(struct milter_conn *, const struct buf *out);
/* milter_conn_close - close the socket (no QUIT), free what it holds */
void	milter_conn_close(struct milter_conn *);

#endif

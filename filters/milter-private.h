/*
 * milter-private.h - what the files of the milters filter share among
 * themselves: the instance (per configuration load), the per-session and
 * per-transaction state, the macro set, and the functions each file
 * lends the others: milter.c (stages, ops), milter_macros.c,
 * milter_verdict.c and milter_eom.c. The rest of the daemon knows the
 * filter by its ops object only (filter_milters).
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_MILTER_PRIVATE_H
#define POSTERN_MILTER_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "filter.h"
#include "milter.h"
#include "milter_proto.h"

struct sockaddr;

/* one per configuration load */
struct milters {
	struct milter_spec *specs;	/* owned array */
	size_t	 n;
	uint32_t version;
	char	*lists[MILTER_MACROS_COUNT];	/* owned: our macro lists */
	char	*myhostname;		/* owned */
	char	*daemon_name;		/* owned */
	size_t	 max_body;		/* cap of a replacement body */
};

/* one per tx_begin: the session's holds the connections */
struct milters_state {
	struct milter_conn *conns;	/* owned array, conn-level only */
	size_t	 n;
	bool	 hold;			/* this transaction is held */
	char	 hold_reason[256];
	bool	 discard;		/* discard asked before EOM */
};

/* every macro we can send; values borrowed from the call or owned here */
enum {
	MILTER_MAC_J, MILTER_MAC_DAEMON_NAME, MILTER_MAC_DAEMON_ADDR,
	MILTER_MAC_DAEMON_PORT, MILTER_MAC_V, MILTER_MAC_UNDERSCORE,
	MILTER_MAC_CLIENT_ADDR, MILTER_MAC_CLIENT_PORT, MILTER_MAC_CLIENT_NAME,
	MILTER_MAC_TLS_VERSION, MILTER_MAC_CIPHER, MILTER_MAC_CIPHER_BITS,
	MILTER_MAC_AUTH_TYPE, MILTER_MAC_AUTH_AUTHEN, MILTER_MAC_MAIL_ADDR,
	MILTER_MAC_MAIL_HOST, MILTER_MAC_MAIL_MAILER, MILTER_MAC_RCPT_ADDR,
	MILTER_MAC_RCPT_HOST, MILTER_MAC_RCPT_MAILER, MILTER_MAC_I,
	MILTER_MAC_COUNT
};

/* the macro values of one call */
struct milter_macro_set {
	struct milter_macro m[MILTER_MAC_COUNT];
	char	 underscore[512];
	char	 port[16];
	char	 daemon_port[16];
	char	 bits[16];
};

/* milter_qid - the queue ID for a log line, "NOQUEUE" before one */
static inline const char *
milter_qid(const struct filter_call *call)
{
	return call->tx != NULL && call->tx->queue_id != NULL ?
	    call->tx->queue_id : "NOQUEUE";
}

/* milter_macros.c */

/*
 * milter_macros_fill - every macro Postfix would define at the call's
 * stage into *mac; the values are borrowed from call and in, or kept in
 * *mac
 */
void	milter_macros_fill(struct milter_macro_set *mac,
	    const struct milters *in, const struct filter_call *call);
/*
 * milter_macros_add - append to out the 'D' packet of stage ms for
 * command cmd: the macros of m's own list (setsymlist) or of ours
 */
void	milter_macros_add(struct buf *out, const struct milters *in,
	    const struct milter_conn *m, const struct milter_macro_set *mac,
	    enum milter_macro_stage ms, char cmd);

/* milter_verdict.c */

/*
 * milter_verdict_command - send out (macros, then command cmd) to m and
 * make a verdict of the answer, its reply in call->reply; CONTINUE also
 * for accept (m->msg_done set). t is the transaction's state, NULL
 * before MAIL.
 */
enum filter_verdict milter_verdict_command(struct filter_call *call,
	    struct milter_conn *m, struct milters_state *t,
	    const struct buf *out, char cmd);
/*
 * milter_verdict_failed - m went wrong at cmd (what says how): log it
 * once, close and mark it, and return its default action
 */
enum filter_verdict milter_verdict_failed(struct filter_call *call,
	    struct milter_conn *m, struct milters_state *t, char cmd,
	    const char *what);
/*
 * milter_verdict_final - a final answer (reject, tempfail, replycode,
 * discard) into a verdict; an unusable replycode is m's failure
 */
enum filter_verdict milter_verdict_final(struct filter_call *call,
	    struct milter_conn *m, struct milters_state *t, char cmd,
	    const struct milter_answer *a);
/*
 * milter_verdict_standing - what a milter no longer asked says at a
 * message stage: its default action, or its refusal at connect
 */
enum filter_verdict milter_verdict_standing(struct filter_call *call,
	    struct milter_conn *m, struct milters_state *t);

/* milter_eom.c */

/* milter_eom - the EOM stage callback of filter_milters */
enum filter_verdict milter_eom(struct filter_call *call);

#endif

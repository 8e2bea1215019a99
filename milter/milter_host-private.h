/*
 * milter_host-private.h - the per-connection state of postern-milter,
 * shared by milter_host.c (the callbacks) and milter_eom.c (the end of
 * message and its edits).
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_MILTER_HOST_PRIVATE_H
#define POSTERN_MILTER_HOST_PRIVATE_H

#include <stdbool.h>
#include <sys/socket.h>

#include <libmilter/mfapi.h>

#include "buf.h"
#include "chain.h"
#include "filter.h"

struct milter_runtime;

#define MHOST_REPLY_MAX	512
#define MHOST_WHO_MAX	64

/* one recipient the filters let through */
struct mrcpt {
	char	*address;	/* owned */
	char	*orcpt;		/* owned or NULL */
	char	*notify;	/* owned or NULL */
};

/* one message: from xxfi_envfrom to xxfi_eom or xxfi_abort */
struct mtx {
	struct chain_tx chain;		/* owned states; .conn borrowed */
	struct filter_tx ftx;		/* the filters' view */
	char	*queue_id;		/* owned: macro i, or NULL */
	char	*sender;		/* owned: "" for <> */
	char	*body_type;		/* owned or NULL */
	bool	 smtputf8;
	struct mrcpt *rcpts;		/* owned array */
	struct filter_rcpt *frcpts;	/* owned array, borrows rcpts' */
	size_t	 nrcpts;
	struct buf headers;		/* the header block as received */
	struct buf view;		/* the same, forged A-R removed */
	bool	 has_forged;		/* view lost forged A-R fields */
	/* header block + CRLF + body as posternd counts: size at EOM */
	size_t	 data_size;
	enum filter_verdict final;	/* DISCARD seen before EOM */
	bool	 completed;		/* EOM passed: no ABORT stage */
	char	 hold_reply[MHOST_REPLY_MAX];	/* first HOLD, or "" */
	char	 hold_who[MHOST_WHO_MAX];
};

/* one milter connection (smfi_setpriv) */
struct mconn {
	struct filter_conn fconn;	/* the filters' view; borrows below */
	struct sockaddr_storage ss;
	bool	 have_sa;
	bool	 leadspc;		/* SMFIP_HDR_LEADSPC negotiated */
	bool	 noreply_hdr;		/* SMFIP_NR_HDR negotiated */
	unsigned offered;		/* MILTER_MAP_* the MTA offered (all
					   when it did not negotiate) */
	bool	 addrcpt_par;		/* it offered smfi_addrcpt_par */
	bool	 hides_received;	/* Postfix: insert indexes + 1 */
	char	*client_addr;		/* owned */
	char	*client_name;		/* owned */
	char	*helo;			/* owned or NULL */
	char	*tls_version;		/* owned or NULL: {tls_version} */
	char	*tls_cipher;		/* owned or NULL: {cipher} */
	char	*sasl_method;		/* owned or NULL: {auth_type} */
	char	*sasl_username;		/* owned or NULL: {auth_authen} */
	/* owned reference: the runtime in force at the first callback */
	struct milter_runtime *rt;
	struct chain_tx conn_chain;	/* owned: CONNECT, HELO, CLOSE */
	struct mtx *tx;			/* owned or NULL */
	char	 hold_reply[MHOST_REPLY_MAX];	/* HOLD at CONNECT/HELO */
	char	 hold_who[MHOST_WHO_MAX];
};

/*
 * the connection's chain and configuration (borrowed: until the
 * connection closes, even when a reload replaced them meanwhile)
 */
const struct chain *mhost_chain(const struct mconn *);
const struct config *mhost_config(const struct mconn *);

/* mhost_call_init - a call for stage with the current views */
void	mhost_call_init(struct mconn *, struct filter_call *,
	    enum filter_stage);
/* mhost_tx_end - end the message: ABORT unless completed, then tx_end */
void	mhost_tx_end(struct mconn *);
/* mhost_hold_note - remember the first HOLD (reason and filter) */
void	mhost_hold_note(struct mconn *, const char *reply, const char *who);
/*
 * mhost_log - one line like posternd's: "QID: what: STAGE from
 * name[addr]: reply; from=<> to=<> helo=<> filter=NAME"
 */
void	mhost_log(struct mconn *, const char *what, const char *stage,
	    const char *reply, const char *rcpt, const char *who);
/*
 * mhost_refuse - smfi_setreply with the filter's reply (a fallback
 * of the verdict's class when it does not fit), the reject line, and
 * SMFIS_REJECT or SMFIS_TEMPFAIL (v is FILTER_REJECT or FILTER_TEMPFAIL)
 */
sfsistat mhost_refuse(SMFICTX *, struct mconn *, enum filter_verdict v,
	    const char *reply, const char *who, const char *stage,
	    const char *rcpt);
/* mhost_needs - the MILTER_MAP_* actions the chain may need */
unsigned mhost_needs(const struct mconn *);
/* mhost_eom - the EOM stage and its edits (milter_eom.c) */
sfsistat mhost_eom(SMFICTX *, struct mconn *);

#endif

/*
 * milter_map.h - the pure half of postern-milter: what libmilter hands
 * us (sockaddr, envfrom/envrcpt argv, header name and value) turned into
 * the filter API's view, and the chain's replies turned into what
 * smfi_setreply accepts. No libmilter calls, no I/O: unit-tested.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_MILTER_MAP_H
#define POSTERN_MILTER_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "buf.h"
#include "filter.h"

/* a chain reply split for smfi_setreply */
struct milter_reply {
	char	 code[4];	/* "554" */
	char	 enhanced[16];	/* "5.7.1", or "" when the reply had none */
	char	 text[512];	/* '%' doubled, CR/LF/controls as spaces */
};

/*
 * milter_map_reply - split "554 5.7.1 text" (as chain_run leaves it in
 * call->reply) into r. want is '4' or '5', the class the verdict needs;
 * a reply of another class or without a code becomes the fallback
 * "451 4.3.0 Error: filter reply" or "554 5.7.1 Rejected" (libmilter
 * refuses a 5xx code with SMFIS_TEMPFAIL and vice versa). Returns 0 when
 * the reply was used as it is, -1 when the fallback was.
 */
int	milter_map_reply(const char *reply, char want, struct milter_reply *r);

/*
 * milter_map_address - the address of an envfrom/envrcpt argv[0]:
 * "<a@b.example>" gives "a@b.example", "<>" gives "", a route part
 * ("<@x,@y:a@b>") is dropped, spaces around are ignored. Owned.
 */
char	*milter_map_address(const char *arg);

/* the ESMTP parameters of MAIL or RCPT as far as filters see them */
struct milter_esmtp {
	size_t	 size;		/* SIZE=, 0 when absent or bad */
	char	*body_type;	/* owned: "7BIT", "8BITMIME" or NULL */
	bool	 smtputf8;
	char	*notify;	/* owned: NOTIFY= value or NULL */
	char	*orcpt;		/* owned: ORCPT= as the spool keeps it
				   (xtext decoded), or NULL */
};

/*
 * milter_map_esmtp - parse argv[0..] (the arguments after the address,
 * NULL-terminated; argv may be NULL) into e; unknown keywords are
 * ignored. Free with milter_map_esmtp_deinit.
 */
void	milter_map_esmtp(char *const *argv, struct milter_esmtp *e);
void	milter_map_esmtp_deinit(struct milter_esmtp *);

/*
 * milter_map_field - append one header field to the header block as
 * posternd keeps it ("Name:value\r\n", continuation lines CRLF). value is
 * what xxfi_header got: with leadspc (SMFIP_HDR_LEADSPC negotiated) the
 * white space after the colon is in it and kept as received; without,
 * one space is put back. Postfix folds with LF: each LF not already
 * after a CR becomes CRLF. Returns -1 when the block's cap is reached.
 */
int	milter_map_field(struct buf *block, const char *name,
	    const char *value, bool leadspc);

/* one header to delete with smfi_chgheader(ctx, name, index, NULL) */
struct milter_delete {
	char	*name;		/* owned: as written in the message */
	int	 index;		/* 1-based among fields of that name */
};

/*
 * milter_map_forged_ar - the Authentication-Results fields of the header
 * block (CRLF lines) that claim our authserv_id (auth_results_strip's
 * rule, RFC 8601 5), as deletions, the highest index of a name first so
 * that each deletion leaves the indexes of the next ones as they were.
 * *del_r is an owned array (free with milter_map_deletes_free); returns
 * the count.
 */
size_t	milter_map_forged_ar(const char *block, size_t len,
	    const char *authserv_id, struct milter_delete **del_r);
void	milter_map_deletes_free(struct milter_delete **, size_t n);

/*
 * milter_map_client - the client as the filters see it: client_addr from
 * sa (NULL, or not inet/inet6: "unknown"), client_name from hostname
 * (libmilter's hostname; "[192.0.2.1]" - a name the MTA could not
 * verify - or NULL gives "unknown"). Both owned.
 */
void	milter_map_client(const struct sockaddr *sa, const char *hostname,
	    char **addr_r, char **name_r);

/*
 * The milter actions (libmilter's SMFIF_* values, which milter_host.c
 * checks at compile time) an MTA may or may not offer in negotiation.
 */
#define MILTER_MAP_ADDHDRS	0x01u	/* add and insert headers */
#define MILTER_MAP_CHGBODY	0x02u	/* replace the body */
#define MILTER_MAP_ADDRCPT	0x04u	/* add recipients */
#define MILTER_MAP_DELRCPT	0x08u	/* delete recipients */
#define MILTER_MAP_CHGHDRS	0x10u	/* change and delete headers */
#define MILTER_MAP_QUARANTINE	0x20u	/* hold the message */
#define MILTER_MAP_CHGFROM	0x40u	/* change the sender */
#define MILTER_MAP_EDITS	0x7fu	/* all of the above */

/*
 * milter_map_filter_needs - the actions a filter of smtpd_filters may
 * need at end of message: its edits and HOLD (quarantine). name is its
 * smtpd_filters name; a filter not known here gets every edit action
 * when edits (its ops' edits flag) is true, and quarantine always.
 */
unsigned milter_map_filter_needs(const char *name, bool edits);

/* milter_map_edit_needs - the one action an edit of kind needs */
unsigned milter_map_edit_needs(enum filter_edit_kind kind);

/* what to do with an edit whose action the MTA did not offer */
enum milter_map_fallback {
	MILTER_MAP_SEND,	/* offered: send it */
	MILTER_MAP_SKIP,	/* an added header (a result, a note): drop
				   it and deliver, with a warning */
	MILTER_MAP_UNSIGNED,	/* a DKIM-Signature: dkim_sign_failure_action
				   decides (accept unsigned, or tempfail) */
	MILTER_MAP_FAIL,	/* anything that changes who gets the mail,
				   or removes or rewrites content: tempfail */
};

/*
 * milter_map_edit_fallback - what to do with edit e when the MTA
 * offered the actions in offered (MILTER_MAP_* bits)
 */
enum milter_map_fallback milter_map_edit_fallback(const struct filter_edit *e,
	    unsigned offered);

/*
 * milter_map_actions_text - the actions of mask in words for a log line
 * ("add headers, change headers"), into out (truncated to outlen); "none"
 * for 0. Returns out.
 */
const char *milter_map_actions_text(unsigned mask, char *out, size_t outlen);

/*
 * milter_map_hides_received - the MTA, by its macro v, hides its own
 * Received: header from milters but counts it in insert indexes: true
 * for Postfix ("Postfix 3.7.11"); false for others and NULL.
 */
bool	milter_map_hides_received(const char *v);

/*
 * milter_map_insert_index - smfi_insheader's index for a filter's
 * insert at index (0: above the first field of the header block the
 * filters saw). When the MTA hides a header of its own at the top
 * (hides_received) every index above 0 is one more; 0 stays the very
 * top. Clamped to INT_MAX.
 */
int	milter_map_insert_index(size_t index, bool hides_received);

#endif

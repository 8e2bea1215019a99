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
	char	*orcpt;		/* owned: ORCPT= value or NULL */
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

#endif

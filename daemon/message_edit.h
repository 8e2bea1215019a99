/*
 * message_edit.h - apply the edits filters request at end of message
 * (milter's actions, filters/filter.h) to the header block and envelope.
 *
 * Pure: no I/O. The header block is the one the session keeps in memory
 * (CRLF line ends, no blank separator line); body replacement is the
 * caller's, since the body lives in the spool file.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_MESSAGE_EDIT_H
#define POSTERN_MESSAGE_EDIT_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "filter.h"

/* one header field as received: "Name: value\r\n\tfolded\r\n" */
struct header_field {
	char	*name;		/* owned; as written, without spaces before
				   the colon */
	char	*raw;		/* owned; the whole field, CRLF-terminated */
};

struct header_list {
	struct header_field *fields;	/* owned array */
	size_t	 n;
};

/*
 * header_list_parse - split a header block into fields. Lines that start
 * with SP/HTAB continue the previous field. Never fails on the blocks the
 * DATA reader produces; returns -1 for a block that does not start with a
 * field name (a continuation first).
 */
int	header_list_parse(struct header_list *, const char *block, size_t len);
void	header_list_deinit(struct header_list *);
/* header_list_format - the block again, appended to out */
void	header_list_format(const struct header_list *, struct buf *out);
/*
 * header_field_value - the value as filters see it: after the colon, one
 * leading space removed, folding kept (CRLF), no final CRLF; into out
 * (reset first). Returns buf_cstr(out).
 */
const char *header_field_value(const struct header_field *, struct buf *out);
/*
 * header_field_raw_value - everything after the colon as received (the
 * leading space too, folding kept), no final CRLF; into out (reset
 * first). Returns buf_cstr(out). What a milter gets with HDR_LEADSPC.
 */
const char *header_field_raw_value(const struct header_field *,
	    struct buf *out);

/* the DSN parameters (RFC 3461 4) an ADD_RCPT edit gave its recipient */
struct edit_dsn {
	bool	 given;		/* the edit had ESMTP parameters */
	unsigned notify;	/* SMTP_NOTIFY_* bits, 0: none */
	char	*orcpt;		/* owned: ORCPT= as the spool keeps it
				   (smtp_orcpt_decoded), or NULL */
};

/*
 * the envelope a filter may change: made by edit_envelope_init, which
 * leaves the caller to copy the nrcpts addresses into rcpts; released
 * with edit_envelope_deinit
 */
struct edit_envelope {
	char	*sender;	/* owned */
	char	**rcpts;	/* owned array of owned strings */
	size_t	 nrcpts;
	struct edit_dsn *dsn;	/* owned array beside rcpts once an edit
				   adds a recipient with parameters, else
				   NULL (none given) */
	char	*ret;		/* owned: RET= of a CHANGE_FROM, or NULL */
	char	*envid;		/* owned: ENVID= (decoded) of a CHANGE_FROM,
				   or NULL */
};

void	edit_envelope_init(struct edit_envelope *, const char *sender,
	    size_t nrcpts);
void	edit_envelope_deinit(struct edit_envelope *);

/*
 * message_edit_apply - apply every header and envelope edit in order:
 * ADD_HEADER appends, INSERT_HEADER puts the field at index (0: first),
 * CHANGE_HEADER replaces the index-th (1-based) field of that name or
 * deletes it (value NULL) or appends it when there are fewer, CHANGE_FROM
 * sets the sender, ADD_RCPT/DELETE_RCPT add or remove a recipient (case
 * of the domain ignored). The ESMTP parameters of a CHANGE_FROM (RET=,
 * ENVID=; the others describe a transfer, not the message, and are
 * ignored) and of an ADD_RCPT (NOTIFY=, ORCPT=) are checked as in the
 * MAIL and RCPT commands and set in env. Values may use LF or CRLF for
 * folding; they are
 * written with CRLF. REPLACE_BODY edits are concatenated into *body_r
 * (NULL when there are none; caller frees).
 * Returns -1 with *error_r for an edit that would corrupt the message (a
 * bad header name, a bare CR, bad ESMTP parameters, an empty recipient
 * list).
 */
int	message_edit_apply(const struct filter_edits *, struct header_list *,
	    struct edit_envelope *, struct buf **body_r, const char **error_r);

#endif

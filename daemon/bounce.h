/*
 * bounce.h - build RFC 3464 delivery status notifications (bounces).
 *
 * bounce_build is a pure function: everything it needs comes in through
 * struct bounce_input, and it returns the DSN as a header block and a body
 * in two buffers, ready for spool_commit. Writing and scheduling the DSN is
 * the queue manager's business.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_BOUNCE_H
#define POSTERN_BOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "buf.h"

/* original message larger than this: return the headers only */
#define BOUNCE_SIZE_LIMIT	50000

struct bounce_rcpt {
	const char *address;	/* borrowed; the envelope recipient */
	const char *orcpt;	/* borrowed; "rfc822;addr" or NULL */
	unsigned notify;	/* DSN_NOTIFY_* of spool.h; 0: not given */
	const char *dsn;	/* borrowed; "5.1.1" */
	const char *reply;	/* borrowed; "550 5.1.1 ..." or our diagnosis */
	const char *relay;	/* borrowed; "host[addr]:port" or NULL */
};

struct bounce_input {
	const char *myhostname;		/* borrowed */
	const char *queue_id;		/* borrowed; the original message */
	const char *dsn_queue_id;	/* borrowed; the DSN's own ID */
	const char *sender;		/* borrowed; whom the DSN goes to */
	const char *envid;		/* borrowed; or NULL */
	const char *ret;		/* borrowed; "FULL", "HDRS" or NULL */
	bool	 eightbit;		/* original was 8BITMIME */
	time_t	 arrival;
	time_t	 now;
	const struct bounce_rcpt *rcpts;	/* borrowed */
	size_t	 nrcpts;
	/* the original: header block (no blank line) and body, or NULL */
	const char *headers;
	size_t	 header_len;
	const char *body;
	size_t	 body_len;
};

/*
 * bounce_wanted - true if a failure DSN is due for this recipient: NOTIFY
 * not given, or given with FAILURE (RFC 3461 section 4.1). NEVER wins.
 */
bool	bounce_wanted(unsigned notify);

/*
 * bounce_needed - true if the message is worth a DSN at all: the sender is
 * not the null sender and at least one recipient wants one.
 */
bool	bounce_needed(const char *sender, const struct bounce_rcpt *,
	    size_t nrcpts);

/*
 * bounce_build - append the DSN's header block (CRLF line ends, no blank
 * separator line) to *headers and its body to *body. Recipients that do
 * not want a DSN are left out. Returns the number of recipients reported
 * (0: the caller should send nothing).
 */
size_t	bounce_build(const struct bounce_input *, struct buf *headers,
	    struct buf *body);

#endif

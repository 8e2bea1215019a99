/*
 * smtp_data.h - the message content reader for DATA and BDAT: no I/O,
 * bytes in, header block and body lines out.
 *
 * In DATA mode it finds the end of data (CRLF.CRLF only), removes dot
 * stuffing (RFC 5321 4.5.2) and refuses any bare CR or bare LF at once
 * (RFC 5321 2.3.8), which is what makes SMTP smuggling impossible: a
 * terminator that another MTA might see differently never reaches the
 * command parser. In BDAT mode (RFC 3030) the same line discipline applies
 * without the terminator and the dots.
 *
 * The header block is collected in memory (it may be edited by filters
 * before it is written); body lines go to a sink function as they come.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_SMTP_DATA_H
#define POSTERN_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

enum smtp_data_mode {
	SMTP_DATA_DOT,		/* DATA: ends at CRLF.CRLF */
	SMTP_DATA_CHUNK,	/* BDAT: caller counts the bytes */
};

/* why the content is refused (the first problem seen wins) */
enum smtp_data_error {
	SMTP_DATA_OK,
	SMTP_DATA_BARE_EOL,	/* bare CR or LF: fatal at once */
	SMTP_DATA_LINE_TOO_LONG,
	SMTP_DATA_TOO_BIG,
	SMTP_DATA_HEADER_TOO_BIG,
	SMTP_DATA_TOO_MANY_HEADERS,
	SMTP_DATA_TOO_MANY_HOPS,
	SMTP_DATA_SINK_FAILED,	/* the body sink returned -1 */
};

/* body sink: -1 stops storing (SMTP_DATA_SINK_FAILED) */
typedef int (*smtp_data_sink_fn)(void *arg, const char *, size_t);

struct smtp_data_limits {
	size_t	 max_size;		/* message_size_limit, 0: none */
	size_t	 max_line;		/* line_length_limit */
	size_t	 max_header;		/* header_size_limit */
	size_t	 max_header_count;
	size_t	 max_hops;		/* Received: fields */
};

struct smtp_data {
	enum smtp_data_mode mode;
	struct smtp_data_limits limits;
	smtp_data_sink_fn sink;
	void	*sink_arg;

	struct buf headers;	/* the header block, CRLF line ends */
	struct buf line;	/* the line being assembled (no EOL) */
	bool	 in_header;
	bool	 cr_pending;	/* last byte seen was CR */
	bool	 line_overflow;	/* current line passed max_line */
	bool	 done;		/* DATA terminator seen */
	size_t	 size;		/* content bytes after unstuffing */
	size_t	 header_count;
	size_t	 hops;
	bool	 eight_bit;	/* a byte >= 0x80 was seen */
	enum smtp_data_error error;
};

void	smtp_data_init(struct smtp_data *, enum smtp_data_mode,
	    const struct smtp_data_limits *, smtp_data_sink_fn, void *sink_arg);
void	smtp_data_deinit(struct smtp_data *);
/*
 * smtp_data_feed - consume up to n bytes; returns how many were consumed.
 * Stops early when the DATA terminator is seen (d->done) or on a bare
 * CR/LF (d->error == SMTP_DATA_BARE_EOL); other errors are recorded and
 * the rest of the content is consumed without being stored, so that the
 * reply comes at the end of data as RFC 5321 requires.
 */
size_t	smtp_data_feed(struct smtp_data *, const char *, size_t n);
/*
 * smtp_data_finish - BDAT LAST: end of content. A partial last line (no
 * CRLF) is an error (bare line end), as is a pending CR.
 */
void	smtp_data_finish(struct smtp_data *);
/* smtp_data_error_reply - the SMTP reply for d->error ("554 5.6.0 ...") */
const char *smtp_data_error_reply(enum smtp_data_error);

#endif

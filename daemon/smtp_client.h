/*
 * smtp_client.h - the pure parts of the SMTP client: reply parser, EHLO
 * keyword parser, MAIL/RCPT command builders and dot-stuffing.
 *
 * Nothing here does I/O, so every function can be unit-tested and fuzzed
 * on its own; deliver_smtp.c drives them from the network.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_SMTP_CLIENT_H
#define POSTERN_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

struct delivery_job;
struct delivery_rcpt;
struct evbuffer;

/* Hard limits on what a server may send us (RFC 5321 4.5.3.1.5: 512 min) */
#define SMTP_REPLY_LINE_MAX	2048	/* per line, CRLF included */
#define SMTP_REPLY_LINES_MAX	100	/* lines per multi-line reply */

struct smtp_reply {
	int	 code;		/* 200..599 once the first line is parsed */
	char	 esc[16];	/* RFC 3463 code of the first line, or "" */
	struct buf text;	/* owned; texts after "NNN-", \n-joined */
	size_t	 nlines;
};

void	smtp_reply_init(struct smtp_reply *);
void	smtp_reply_deinit(struct smtp_reply *);
/* smtp_reply_reset - ready for the next reply, keeps the memory */
void	smtp_reply_reset(struct smtp_reply *);
/*
 * smtp_reply_add_line - feed one reply line without its line end.
 * Returns 1 when this was the last line of the reply, 0 when more lines
 * follow, -1 with *error_r (static text) when the line is malformed: no
 * three-digit code in 200..599, a code differing from the first line's,
 * a bad separator, a line over SMTP_REPLY_LINE_MAX or too many lines.
 */
int	smtp_reply_add_line(struct smtp_reply *, const char *line, size_t len,
	    const char **error_r);
/*
 * smtp_reply_parse - parse one whole reply at the start of data.
 * Lines end in CRLF (a bare LF is tolerated). Returns 1 and sets
 * *consumed_r to the bytes used when the reply is complete, 0 when more
 * input is needed, -1 with *error_r when it is malformed.
 */
int	smtp_reply_parse(struct smtp_reply *, const char *data, size_t len,
	    size_t *consumed_r, const char **error_r);
/*
 * smtp_reply_flatten - the reply on one line for logs and DSNs:
 * "550 5.1.1 line one line two", with bytes that are not printable ASCII
 * replaced by '?'. The string is the caller's.
 */
char	*smtp_reply_flatten(const struct smtp_reply *);
/*
 * smtp_reply_dsn - the enhanced status code to record for this reply:
 * the server's own when its class matches the reply code, else the
 * reply's class followed by dflt ("subject.detail", e.g. "0.0" or "5.0";
 * NULL means "0.0"). Writes into out.
 */
void	smtp_reply_dsn(const struct smtp_reply *, const char *dflt,
	    char out[16]);

/* EHLO keywords we act on (RFC 5321 4.1.1.1 and the extension RFCs) */
#define SMTP_EXT_PIPELINING	0x0001	/* RFC 2920 */
#define SMTP_EXT_SIZE		0x0002	/* RFC 1870 */
#define SMTP_EXT_STARTTLS	0x0004	/* RFC 3207 */
#define SMTP_EXT_8BITMIME	0x0008	/* RFC 6152 */
#define SMTP_EXT_SMTPUTF8	0x0010	/* RFC 6531 */
#define SMTP_EXT_DSN		0x0020	/* RFC 3461 */
#define SMTP_EXT_ENHANCEDSTATUSCODES 0x0040	/* RFC 2034 */
#define SMTP_EXT_CHUNKING	0x0080	/* RFC 3030 */

struct smtp_ext {
	unsigned flags;		/* SMTP_EXT_* */
	size_t	 size_max;	/* SIZE argument; 0 = no limit given */
};

/*
 * smtp_ehlo_parse - the extensions of a complete 250 EHLO reply (the
 * first line is the server's name and is skipped). Keywords are
 * case-insensitive; unknown ones are ignored.
 */
void	smtp_ehlo_parse(const struct smtp_reply *, struct smtp_ext *);

/* smtp_xtext_encode - append s as RFC 3461 4 xtext */
void	smtp_xtext_encode(struct buf *, const char *s);
/*
 * smtp_orcpt_encode - an ORCPT as the spool keeps it ("type;address",
 * decoded; "address" alone is rfc822) in its SMTP form: the address
 * xtext-encoded, except RFC 6533's utf-8 type, kept as it came
 */
void	smtp_orcpt_encode(struct buf *, const char *orcpt);
/*
 * smtp_mail_cmd - append "MAIL FROM:<sender> ...\r\n" for the job with the
 * parameters the server supports (ext): SIZE=, BODY=8BITMIME, SMTPUTF8,
 * RET= and ENVID= (DSN). msg_size is the size to announce.
 */
void	smtp_mail_cmd(struct buf *, const struct delivery_job *,
	    const struct smtp_ext *, size_t msg_size);
/* smtp_rcpt_cmd - append "RCPT TO:<addr> [NOTIFY=..] [ORCPT=..]\r\n" */
void	smtp_rcpt_cmd(struct buf *, const struct delivery_rcpt *,
	    const struct smtp_ext *);

/*
 * Dot-stuffing (RFC 5321 4.5.2) of a stream given in pieces: a line that
 * begins with '.' gets one more '.'. Start with smtp_dot_init; the state
 * remembers whether the next byte begins a line.
 */
struct smtp_dot {
	bool	 bol;		/* next byte begins a line */
	bool	 any;		/* something was written */
};

void	smtp_dot_init(struct smtp_dot *);
/* smtp_dot_stuff - append in[0..len) to out, stuffed */
void	smtp_dot_stuff(struct smtp_dot *, const char *in, size_t len,
	    struct evbuffer *out);
/* smtp_dot_end - append the missing CRLF if any, then ".\r\n" */
void	smtp_dot_end(struct smtp_dot *, struct evbuffer *out);

#endif

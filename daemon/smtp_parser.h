/*
 * smtp_parser.h - the SMTP command parser: bytes in, struct or reply out.
 *
 * The parser does no I/O and keeps no state between commands, so that it
 * can be unit-tested and fuzzed on its own. It checks the syntax of one
 * command line (RFC 5321 4.1, plus the ESMTP parameters of RFC 1870,
 * 6152, 3030, 3461, 4954 and 6531) and, on a syntax error, names the
 * complete reply the session must send. Sequence checks (MAIL before RCPT,
 * AUTH only once, ...) and every limit but the address lengths belong to
 * the session.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_SMTP_PARSER_H
#define POSTERN_SMTP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum smtp_verb {
	SMTP_VERB_UNKNOWN,
	SMTP_VERB_EHLO,
	SMTP_VERB_HELO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_BDAT,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_HELP,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
	SMTP_VERB_COUNT
};

/* MAIL BODY= (RFC 6152, RFC 3030) */
enum smtp_body {
	SMTP_BODY_NONE,		/* no BODY parameter */
	SMTP_BODY_7BIT,
	SMTP_BODY_8BITMIME,
	SMTP_BODY_BINARYMIME,	/* the session decides whether it is offered */
};

/* MAIL RET= (RFC 3461 4.3) */
enum smtp_ret {
	SMTP_RET_NONE,
	SMTP_RET_FULL,
	SMTP_RET_HDRS,
};

/* RCPT NOTIFY= bits (RFC 3461 4.1); 0 when the parameter is absent */
#define SMTP_NOTIFY_NEVER	0x01u
#define SMTP_NOTIFY_SUCCESS	0x02u
#define SMTP_NOTIFY_FAILURE	0x04u
#define SMTP_NOTIFY_DELAY	0x08u

/* hard limits on addresses, RFC 5321 4.5.3.1 */
#define SMTP_LOCAL_PART_MAX	64	/* 4.5.3.1.1 */
#define SMTP_DOMAIN_MAX		255	/* 4.5.3.1.2 */
#define SMTP_PATH_MAX		256	/* 4.5.3.1.3, with the angle brackets */
#define SMTP_ENVID_MAX		100	/* RFC 3461 4.4 */
#define SMTP_ORCPT_MAX		500	/* RFC 3461 4.2 */

/*
 * The reply for a RCPT whose path has non-ASCII characters in a
 * transaction whose MAIL did not carry SMTPUTF8 (RFC 6531 3.5). The parser
 * cannot know the transaction, so the session sends this when
 * cmd->is_utf8_path is set and the transaction is not SMTPUTF8.
 */
#define SMTP_REPLY_NEED_SMTPUTF8 \
	"553 5.6.7 Non-ASCII address requires SMTPUTF8"

/*
 * One parsed command. Initialize with smtp_command_init() and reuse it for
 * every command of a session: the strings point into storage the struct
 * owns and are lent until the next smtp_parse_command() or
 * smtp_command_deinit() on the same struct. Fields that do not apply to
 * the verb are zero / NULL.
 */
struct smtp_command {
	enum smtp_verb verb;

	/*
	 * EHLO/HELO: the domain or address literal as sent.
	 * VRFY/EXPN/HELP/NOOP: the argument (trimmed) or NULL.
	 * AUTH: the mechanism, upper-cased.
	 */
	const char *arg;

	/* MAIL, RCPT: the mailbox without <> and without a source route */
	const char *path;		/* "" for the null reverse-path <> */
	bool	 is_utf8_path;		/* path has non-ASCII (UTF-8) octets */

	/* MAIL parameters */
	bool	 has_size;
	uint64_t size;			/* SIZE=; UINT64_MAX if it overflowed */
	enum smtp_body body;
	bool	 smtputf8;		/* SMTPUTF8 given (RFC 6531 3.4) */
	enum smtp_ret ret;
	const char *envid;		/* ENVID= xtext as sent, or NULL */
	const char *envid_decoded;	/* the same, xtext-decoded */
	const char *mail_auth;		/* AUTH= as sent; not used */

	/* RCPT parameters */
	unsigned notify;		/* SMTP_NOTIFY_* bits, 0 when absent */
	const char *orcpt;		/* ORCPT= as sent ("rfc822;a+2Bb@c") */
	const char *orcpt_type;		/* addr-type, e.g. "rfc822" */
	const char *orcpt_addr;		/* decoded address */

	/* BDAT (RFC 3030) */
	uint64_t bdat_size;
	bool	 bdat_last;

	/* AUTH (RFC 4954 4): NULL when no initial response, "" for "=" */
	const char *auth_initial;

	/* storage */
	char	*arena;			/* owned: the strings above */
	size_t	 arena_len;
	size_t	 arena_cap;
	char	 errbuf[160];		/* formatted error replies */
};

void	smtp_command_init(struct smtp_command *);
void	smtp_command_deinit(struct smtp_command *);

/*
 * smtp_parse_command - parse one command line.
 *
 * line/len is the line without its CRLF; it need not be NUL-terminated
 * and may contain NUL bytes (which are rejected). The caller enforces the
 * line length limit. The verb is matched without regard to case.
 *
 * Returns 0 with *cmd filled in, or -1 with *error_r set to the complete
 * reply to send, without CRLF, e.g. "501 5.5.4 Syntax: MAIL
 * FROM:<address>". The reply is lent until the next call on cmd. On -1,
 * cmd->verb is still set when the verb was recognized (so the session can
 * count errors per command), SMTP_VERB_UNKNOWN otherwise.
 */
int	smtp_parse_command(const char *line, size_t len,
	    struct smtp_command *cmd, const char **error_r);

/* smtp_verb_name - "MAIL", "RCPT", ...; "UNKNOWN" for SMTP_VERB_UNKNOWN */
const char *smtp_verb_name(enum smtp_verb);

/*
 * smtp_xtext_decode - decode RFC 3461 4 xtext of length len into out,
 * which has room for len + 1 bytes; out is NUL-terminated. Returns the
 * decoded length, or -1 when the input is empty or not valid xtext (a
 * character outside "!".."~", a bare "=", "+" not followed by two hex
 * digits, or an encoded control character). Lower-case hex digits are
 * accepted although RFC 3461 writes them upper-case (be liberal).
 */
ssize_t	smtp_xtext_decode(const char *in, size_t len, char *out);

/*
 * smtp_orcpt_decoded - the ORCPT= of cmd as the spool keeps it,
 * "addr-type;address" with the xtext decoded (a utf-8 address as sent),
 * owned by the caller; NULL when cmd has none
 */
char	*smtp_orcpt_decoded(const struct smtp_command *cmd);

/*
 * smtp_notify_text - SMTP_NOTIFY_* bits as RFC 3461 text ("NEVER",
 * "SUCCESS,DELAY"); NULL for 0, else owned by the caller
 */
char	*smtp_notify_text(unsigned bits);

#endif

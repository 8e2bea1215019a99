/*
 * auth.h - SMTP AUTH (RFC 4954): SASL PLAIN (RFC 4616) and LOGIN
 * (draft-murchison-sasl-login) decoding, and the crypt(3) password check.
 *
 * The decoders are pure (bytes in, credentials or a status out) so that
 * they can be unit-tested and fuzzed; the session code does the I/O and
 * sends the reply that auth_reply() names for a status.
 *
 * Flow for the session (all on the event loop except the password check):
 *
 *   AUTH PLAIN [ir]   no ir: send "334 " and read one line.
 *                     auth_plain_decode(line) -> user + password
 *   AUTH LOGIN [ir]   no ir: send AUTH_LOGIN_PROMPT_USER, read one line,
 *                     auth_login_decode(line) -> user; then send
 *                     AUTH_LOGIN_PROMPT_PASS, read one line,
 *                     auth_login_decode(line) -> password.
 *                     (An initial response, which some clients send, is
 *                     the base64 user name.)
 *   then              auth_check_password() on the WORKER POOL: it runs
 *                     crypt(3), which takes tens of milliseconds by
 *                     design. 235 2.7.0 on success, 535 5.7.8 otherwise.
 *
 * Secrets: every buffer that held a password is wiped with explicit_bzero
 * before it is freed. The decoders wipe their own scratch space; the
 * caller wipes what it is given, with auth_creds_deinit() or auth_wipe().
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_AUTH_H
#define POSTERN_AUTH_H

#include <stdbool.h>
#include <stddef.h>

struct table;

/* Server challenges of the LOGIN mechanism ("Username:", "Password:") */
#define AUTH_LOGIN_PROMPT_USER	"334 VXNlcm5hbWU6"
#define AUTH_LOGIN_PROMPT_PASS	"334 UGFzc3dvcmQ6"

/*
 * AUTH_MAX_DECODED - hard limit on a decoded SASL response. RFC 4616
 * section 2 asks for at least 255 octets per field; 1024 holds three of
 * them with the separators. AUTH_MAX_LINE is the base64 length of that,
 * the longest response line (without CRLF) we decode at all.
 */
#define AUTH_MAX_DECODED	1024
#define AUTH_MAX_LINE		(((AUTH_MAX_DECODED + 2) / 3) * 4)

enum auth_status {
	AUTH_OK = 0,
	AUTH_CANCELLED,		/* client sent "*" (RFC 4954 section 4) */
	AUTH_BAD_BASE64,	/* not canonical base64 */
	AUTH_TOO_LONG,		/* longer than AUTH_MAX_LINE */
	AUTH_MALFORMED,		/* decoded, but not a valid response */
	AUTH_BAD_AUTHZID,	/* PLAIN: authzid given and != authcid */
};

/* Decoded credentials. Both fields are NUL-free C strings. */
struct auth_creds {
	char	*user;		/* owned */
	char	*password;	/* owned; wiped by auth_creds_deinit */
};

/*
 * auth_reply - the complete SMTP reply (without CRLF) for a status other
 * than AUTH_OK: 501 5.7.0 for a cancel, 501 5.5.2 for bad base64 or a
 * malformed response, 500 5.5.6 for an over-long line (RFC 4954
 * section 6), 535 5.7.8 for an authzid we do not allow. Static string.
 */
const char *auth_reply(enum auth_status);

/* auth_status_name - short name for logs ("cancelled", ...). Static. */
const char *auth_status_name(enum auth_status);

/*
 * auth_plain_decode - decode one PLAIN response line (len bytes, CRLF
 * already stripped): base64 of [authzid] NUL authcid NUL passwd.
 * "=" (an empty response) is malformed for PLAIN. The authcid must be
 * non-empty UTF-8 without control characters; the password non-empty;
 * the authzid empty or equal to the authcid (we do not offer proxy
 * authorization). On AUTH_OK fills *creds, which the caller owns and
 * must release with auth_creds_deinit(); otherwise *creds is zeroed.
 */
enum auth_status auth_plain_decode(const char *line, size_t len,
	    struct auth_creds *creds);

/*
 * auth_login_decode - decode one LOGIN response line (the user name or
 * the password). "=" decodes to the empty string, which we refuse as
 * AUTH_MALFORMED, as we refuse embedded NULs. On AUTH_OK *value_r is a
 * new string the caller owns; a password must be released with
 * auth_wipe(). Otherwise *value_r is NULL.
 */
enum auth_status auth_login_decode(const char *line, size_t len,
	    char **value_r);

/*
 * auth_user_is_valid - n bytes of user are a non-empty, well-formed UTF-8
 * name without control characters (C0, DEL, C1) or NULs. PLAIN decoding
 * and auth_check_password apply it; LOGIN decoding cannot (it does not
 * know whether the line is the user name or the password).
 */
bool	auth_user_is_valid(const char *user, size_t n);

/* auth_creds_deinit - wipe the password, free both fields. NULL-safe. */
void	auth_creds_deinit(struct auth_creds *);

/* auth_wipe - explicit_bzero and free a secret string; sets *s to NULL */
void	auth_wipe(char **s);

/*
 * auth_check_hash - true when password matches the crypt(3) hash. Only
 * yescrypt ($y$), bcrypt ($2b$, $2y$, $2a$) and sha512-crypt ($6$) are
 * accepted; locked ("!..."), disabled ("*"), DES, MD5 and other hashes
 * never match. BLOCKING (tens of ms). Does not wipe password.
 */
bool	auth_check_hash(const char *hash, const char *password);

/*
 * auth_check_password - look user up in the password table and check the
 * password against the hash found there (see auth_check_hash). Table
 * lines are "user: hash" or "user hash"; if the table kept the colon in
 * the key, "user:" is tried too. An unknown user, an unusable hash or an
 * empty password still costs one yescrypt computation, so that timing
 * does not tell which users exist. BLOCKING: call it on the worker pool,
 * never on an event loop. Thread-safe. Does not wipe password: the caller
 * owns it and wipes it (auth_creds_deinit) once this returns.
 */
bool	auth_check_password(const struct table *users, const char *user,
	    const char *password);

#endif

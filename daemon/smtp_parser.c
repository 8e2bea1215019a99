/*
 * smtp_parser.c - the SMTP command parser.
 *
 * Turns one command line (without CRLF) into a struct smtp_command, or
 * names the reply for a syntax error. It owns nothing but the storage of
 * the strings it hands out (an arena inside the command struct, reused for
 * every command of a session so that parsing allocates only when a line is
 * longer than any before). It deliberately leaves to the session: command
 * sequence, line length limits, whether an extension (BINARYMIME, DSN,
 * SMTPUTF8) is offered, and every policy decision about the addresses.
 *
 * Grammar: RFC 5321 4.1.1 (commands), 4.1.2 (paths and esmtp-param),
 * 4.5.3.1 (size limits), appendix C and 4.1.1.3 (source routes are
 * accepted and dropped); RFC 1870 (SIZE), RFC 6152 (BODY=8BITMIME),
 * RFC 3030 (BDAT, BODY=BINARYMIME), RFC 3461 (DSN parameters, xtext),
 * RFC 4954 (AUTH command and MAIL AUTH=), RFC 6531 (SMTPUTF8: UTF-8 in
 * local parts and domains), RFC 3207 (STARTTLS takes no parameter).
 *
 * Tolerated deviations, as Postfix tolerates them: spaces after "FROM:" /
 * "TO:", runs of spaces or tabs between words, trailing white space, and
 * one trailing dot in a domain (the relay policy strips it). Angle
 * brackets are required.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/types.h>
#include <arpa/inet.h>
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xmalloc.h"
#include "smtp_parser.h"

/* replies for errors not tied to one parameter */
#define R_NUL		"500 5.5.2 Error: NUL character in command"
#define R_CRLF		"500 5.5.2 Error: bare CR or LF in command"
#define R_EMPTY		"500 5.5.2 Error: bad syntax"
#define R_UNKNOWN	"500 5.5.2 Error: command not recognized"
#define R_EHLO		"501 5.5.4 Syntax: EHLO hostname"
#define R_HELO		"501 5.5.4 Syntax: HELO hostname"
#define R_MAIL		"501 5.5.4 Syntax: MAIL FROM:<address>"
#define R_RCPT		"501 5.5.4 Syntax: RCPT TO:<address>"
#define R_BDAT		"501 5.5.4 Syntax: BDAT size [LAST]"
#define R_AUTH		"501 5.5.4 Syntax: AUTH mechanism [initial-response]"
#define R_AUTH_B64	"501 5.5.2 Error: invalid base64 in initial response"
#define R_PARAM		"501 5.5.4 Error: bad parameter syntax"

/* address errors: RFC 3463 X.1.7 for the sender, X.1.3 for recipients */
#define R_MAIL_ADDR	"501 5.1.7 Bad sender address syntax"
#define R_RCPT_ADDR	"501 5.1.3 Bad recipient address syntax"

static const struct {
	const char *name;
	enum smtp_verb verb;
} verbs[] = {
	{ "EHLO", SMTP_VERB_EHLO },
	{ "HELO", SMTP_VERB_HELO },
	{ "MAIL", SMTP_VERB_MAIL },
	{ "RCPT", SMTP_VERB_RCPT },
	{ "DATA", SMTP_VERB_DATA },
	{ "BDAT", SMTP_VERB_BDAT },
	{ "RSET", SMTP_VERB_RSET },
	{ "NOOP", SMTP_VERB_NOOP },
	{ "QUIT", SMTP_VERB_QUIT },
	{ "VRFY", SMTP_VERB_VRFY },
	{ "EXPN", SMTP_VERB_EXPN },
	{ "HELP", SMTP_VERB_HELP },
	{ "STARTTLS", SMTP_VERB_STARTTLS },
	{ "AUTH", SMTP_VERB_AUTH },
};

/* ESMTP parameters; the bit is used to detect duplicates */
enum param {
	P_SIZE, P_BODY, P_SMTPUTF8, P_RET, P_ENVID, P_AUTH,	/* MAIL */
	P_NOTIFY, P_ORCPT,					/* RCPT */
};

static const struct {
	const char *name;
	enum param param;
	enum smtp_verb verb;
} params[] = {
	{ "SIZE", P_SIZE, SMTP_VERB_MAIL },
	{ "BODY", P_BODY, SMTP_VERB_MAIL },
	{ "SMTPUTF8", P_SMTPUTF8, SMTP_VERB_MAIL },
	{ "RET", P_RET, SMTP_VERB_MAIL },
	{ "ENVID", P_ENVID, SMTP_VERB_MAIL },
	{ "AUTH", P_AUTH, SMTP_VERB_MAIL },
	{ "NOTIFY", P_NOTIFY, SMTP_VERB_RCPT },
	{ "ORCPT", P_ORCPT, SMTP_VERB_RCPT },
};

/* a cursor over the argument part of a line */
struct cursor {
	const char *s;
	size_t	 n;
	size_t	 i;
};

static bool
is_alpha(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* is_atext - RFC 5322 3.2.3 atext, plus UTF-8 octets (RFC 6531 3.3) */
static bool
is_atext(unsigned char c)
{
	if (is_alpha(c) || is_digit(c) || c >= 0x80)
		return true;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* is_let_dig - RFC 5321 Let-dig, plus UTF-8 octets of U-labels */
static bool
is_let_dig(unsigned char c)
{
	return is_alpha(c) || is_digit(c) || c >= 0x80;
}

/*
 * arena_add - copy n bytes into the command's arena and NUL-terminate.
 * smtp_parse_command reserves enough room before parsing, so pointers
 * handed out earlier never move.
 */
static const char *
arena_add(struct smtp_command *cmd, const char *s, size_t n)
{
	char *p;

	assert(cmd->arena_cap - cmd->arena_len > n);
	p = cmd->arena + cmd->arena_len;
	memcpy(p, s, n);
	p[n] = '\0';
	cmd->arena_len += n + 1;
	return p;
}

/* arena_reserve - room for n bytes (the caller adds their own NUL) */
static char *
arena_reserve(struct smtp_command *cmd, size_t n)
{
	char *p;

	assert(cmd->arena_cap - cmd->arena_len > n);
	p = cmd->arena + cmd->arena_len;
	cmd->arena_len += n + 1;
	return p;
}

void
smtp_command_init(struct smtp_command *cmd)
{
	memset(cmd, 0, sizeof(*cmd));
}

void
smtp_command_deinit(struct smtp_command *cmd)
{
	free(cmd->arena);
	memset(cmd, 0, sizeof(*cmd));
}

const char *
smtp_verb_name(enum smtp_verb verb)
{
	size_t i;

	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (verbs[i].verb == verb)
			return verbs[i].name;
	return "UNKNOWN";
}

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

ssize_t
smtp_xtext_decode(const char *in, size_t len, char *out)
{
	size_t i, o;
	int hi, lo;
	unsigned char c;

	if (len == 0)
		return -1;
	for (i = 0, o = 0; i < len; i++) {
		c = (unsigned char)in[i];
		if (c == '+') {
			/* hexchar = "+" 2HEXDIG (RFC 3461 4) */
			if (len - i < 3 ||
			    (hi = hexval((unsigned char)in[i + 1])) < 0 ||
			    (lo = hexval((unsigned char)in[i + 2])) < 0)
				return -1;
			c = (unsigned char)(hi << 4 | lo);
			/*
			 * An encoded control character would end up in DSN
			 * header fields (Original-Envelope-Id,
			 * Original-Recipient): refuse it here.
			 */
			if (c < 0x20 || c == 0x7f)
				return -1;
			i += 2;
		} else if (c < '!' || c > '~' || c == '=')
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return (ssize_t)o;
}

/*
 * utf8_valid - true if s/n is well-formed UTF-8 (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF).
 */
static bool
utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0, k, need;
	uint32_t cp;

	while (i < n) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if (s[i] >= 0xc2 && s[i] <= 0xdf) {
			need = 1;
			cp = s[i] & 0x1f;
		} else if (s[i] >= 0xe0 && s[i] <= 0xef) {
			need = 2;
			cp = s[i] & 0x0f;
		} else if (s[i] >= 0xf0 && s[i] <= 0xf4) {
			need = 3;
			cp = s[i] & 0x07;
		} else
			return false;
		if (n - i <= need)
			return false;
		for (k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return false;
		i += need + 1;
	}
	return true;
}

/*
 * parse_domain - RFC 5321 Domain at c->i: sub-domain *("." sub-domain),
 * sub-domain = Let-dig [Ldh-str]. One trailing dot is tolerated (mail
 * software writes "example.com." and Postfix accepts it). Labels of ASCII
 * only are limited to 63 octets (RFC 1035 2.3.4); U-labels are checked by
 * the total only.
 */
static bool
parse_domain(struct cursor *c)
{
	size_t start = c->i, label;
	bool ascii;
	unsigned char ch;

	for (;;) {
		label = c->i;
		ascii = true;
		if (c->i >= c->n || !is_let_dig((unsigned char)c->s[c->i]))
			return false;
		while (c->i < c->n) {
			ch = (unsigned char)c->s[c->i];
			if (!is_let_dig(ch) && ch != '-')
				break;
			if (ch >= 0x80)
				ascii = false;
			c->i++;
		}
		/* a label may not end with a hyphen */
		if (c->s[c->i - 1] == '-')
			return false;
		if (ascii && c->i - label > 63)
			return false;
		if (c->i >= c->n || c->s[c->i] != '.')
			break;
		c->i++;
		/* the tolerated trailing dot */
		if (c->i >= c->n || !is_let_dig((unsigned char)c->s[c->i]))
			break;
	}
	return c->i > start;
}

/*
 * parse_address_literal - RFC 5321 4.1.3 address-literal at c->i, which
 * is "[": an IPv4 address or "IPv6:" and an IPv6 address. A
 * General-address-literal needs a Standardized-tag registered with IANA,
 * and "IPv6" is the only one, so anything else is refused: it could only
 * be a mistake (often "[2001:db8::1]" without the tag) or a trick.
 */
static bool
parse_address_literal(struct cursor *c)
{
	char tmp[64];
	unsigned char addr[16];
	size_t start, len;
	unsigned char ch;

	start = ++c->i;
	while (c->i < c->n && c->s[c->i] != ']') {
		ch = (unsigned char)c->s[c->i];
		/* dcontent = %d33-90 / %d94-126 */
		if (ch < 33 || ch > 126 || ch == '[' || ch == '\\')
			return false;
		c->i++;
	}
	if (c->i >= c->n)
		return false;
	len = c->i - start;
	c->i++;		/* the "]" */
	if (len > 5 && strncasecmp(c->s + start, "IPv6:", 5) == 0) {
		if (len - 5 >= sizeof(tmp))
			return false;
		memcpy(tmp, c->s + start + 5, len - 5);
		tmp[len - 5] = '\0';
		return inet_pton(AF_INET6, tmp, addr) == 1;
	}
	if (len == 0 || len >= sizeof(tmp))
		return false;
	memcpy(tmp, c->s + start, len);
	tmp[len] = '\0';
	/* inet_pton takes exactly dotted-quad decimal, as Snum demands */
	return inet_pton(AF_INET, tmp, addr) == 1;
}

static bool
parse_domain_or_literal(struct cursor *c)
{
	if (c->i < c->n && c->s[c->i] == '[')
		return parse_address_literal(c);
	return parse_domain(c);
}

/*
 * parse_local_part - Dot-string or Quoted-string (RFC 5321 4.1.2) at
 * c->i. Quoted-string: qtextSMTP is %d32-33 / %d35-91 / %d93-126 (and
 * UTF-8 octets), quoted-pairSMTP is "\" %d32-126.
 */
static bool
parse_local_part(struct cursor *c)
{
	unsigned char ch;

	if (c->i < c->n && c->s[c->i] == '"') {
		c->i++;
		while (c->i < c->n && c->s[c->i] != '"') {
			ch = (unsigned char)c->s[c->i];
			if (ch == '\\') {
				if (c->i + 1 >= c->n)
					return false;
				ch = (unsigned char)c->s[c->i + 1];
				if (ch < 32 || ch > 126)
					return false;
				c->i += 2;
				continue;
			}
			if (ch < 32 || ch == 127)
				return false;
			c->i++;
		}
		if (c->i >= c->n)
			return false;
		c->i++;
		return true;
	}
	for (;;) {
		if (c->i >= c->n || !is_atext((unsigned char)c->s[c->i]))
			return false;
		while (c->i < c->n && is_atext((unsigned char)c->s[c->i]))
			c->i++;
		if (c->i >= c->n || c->s[c->i] != '.')
			return true;
		c->i++;
	}
}

/*
 * parse_path - Reverse-path / Forward-path at c->i, which is "<". Sets
 * cmd->path (the Mailbox without the source route) and is_utf8_path.
 * Returns 0, or -1 with *error_r.
 */
static int
parse_path(struct smtp_command *cmd, struct cursor *c, bool is_mail,
    const char **error_r)
{
	const char *bad = is_mail ? R_MAIL_ADDR : R_RCPT_ADDR;
	const char *ec = is_mail ? "5.1.7" : "5.1.3";
	size_t start = c->i, mbox, local_end, domain;
	size_t k;

	c->i++;
	if (c->i < c->n && c->s[c->i] == '>') {
		/* the null reverse-path, RFC 5321 4.5.5; MAIL only */
		if (!is_mail) {
			*error_r = bad;
			return -1;
		}
		c->i++;
		cmd->path = arena_add(cmd, "", 0);
		return 0;
	}
	if (c->i < c->n && c->s[c->i] == '@') {
		/*
		 * A-d-l ":" (source route). RFC 5321 4.1.1.3 and appendix
		 * C: accept it and ignore everything but the mailbox.
		 */
		for (;;) {
			c->i++;		/* the "@" */
			if (!parse_domain_or_literal(c))
				goto bad;
			if (c->i < c->n && c->s[c->i] == ',') {
				c->i++;
				if (c->i >= c->n || c->s[c->i] != '@')
					goto bad;
				continue;
			}
			if (c->i < c->n && c->s[c->i] == ':') {
				c->i++;
				break;
			}
			goto bad;
		}
	}
	mbox = c->i;
	if (!parse_local_part(c))
		goto bad;
	local_end = c->i;
	if (local_end - mbox > SMTP_LOCAL_PART_MAX) {
		snprintf(cmd->errbuf, sizeof(cmd->errbuf),
		    "501 %s Local part of address too long", ec);
		*error_r = cmd->errbuf;
		return -1;
	}
	if (c->i < c->n && c->s[c->i] == '>') {
		/*
		 * RFC 5321 4.1.1.3: "Postmaster" without a domain must be
		 * accepted as a recipient; no other mailbox lacks one.
		 */
		if (is_mail || local_end - mbox != 10 ||
		    strncasecmp(c->s + mbox, "postmaster", 10) != 0)
			goto bad;
		domain = c->i;
	} else {
		if (c->i >= c->n || c->s[c->i] != '@')
			goto bad;
		c->i++;
		domain = c->i;
		if (!parse_domain_or_literal(c))
			goto bad;
		if (c->i - domain > SMTP_DOMAIN_MAX) {
			snprintf(cmd->errbuf, sizeof(cmd->errbuf),
			    "501 %s Domain of address too long", ec);
			*error_r = cmd->errbuf;
			return -1;
		}
	}
	if (c->i >= c->n || c->s[c->i] != '>')
		goto bad;
	c->i++;
	if (c->i - start > SMTP_PATH_MAX) {
		snprintf(cmd->errbuf, sizeof(cmd->errbuf),
		    "501 %s Path too long", ec);
		*error_r = cmd->errbuf;
		return -1;
	}
	for (k = mbox; k < c->i - 1; k++)
		if ((unsigned char)c->s[k] >= 0x80)
			break;
	if (k < c->i - 1) {
		if (!utf8_valid((const unsigned char *)c->s + mbox,
		    c->i - 1 - mbox))
			goto bad;
		cmd->is_utf8_path = true;
	}
	cmd->path = arena_add(cmd, c->s + mbox, c->i - 1 - mbox);
	return 0;
bad:
	*error_r = bad;
	return -1;
}

/* param_error - "501 5.5.4 Bad <NAME> parameter syntax" into errbuf */
static int
param_error(struct smtp_command *cmd, const char *name, const char **error_r)
{
	snprintf(cmd->errbuf, sizeof(cmd->errbuf),
	    "501 5.5.4 Bad %s parameter syntax", name);
	*error_r = cmd->errbuf;
	return -1;
}

/* parse_number - 1*DIGIT into *v, saturating at UINT64_MAX */
static bool
parse_number(const char *s, size_t n, uint64_t *v, bool *overflow_r)
{
	uint64_t x = 0;
	size_t i;
	unsigned d;

	*overflow_r = false;
	if (n == 0)
		return false;
	for (i = 0; i < n; i++) {
		if (!is_digit((unsigned char)s[i]))
			return false;
		d = (unsigned)(s[i] - '0');
		if (x > (UINT64_MAX - d) / 10)
			*overflow_r = true;
		else
			x = x * 10 + d;
	}
	*v = *overflow_r ? UINT64_MAX : x;
	return true;
}

/* value_is - case-insensitive comparison of a value with a keyword */
static bool
value_is(const char *v, size_t n, const char *word)
{
	return n == strlen(word) && strncasecmp(v, word, n) == 0;
}

/* parse_notify - "NEVER" / 1#("SUCCESS" / "FAILURE" / "DELAY") */
static bool
parse_notify(const char *v, size_t n, unsigned *bits_r)
{
	size_t i = 0, j;
	unsigned bits = 0;

	while (i <= n) {
		for (j = i; j < n && v[j] != ','; j++)
			;
		if (value_is(v + i, j - i, "NEVER"))
			bits |= SMTP_NOTIFY_NEVER;
		else if (value_is(v + i, j - i, "SUCCESS"))
			bits |= SMTP_NOTIFY_SUCCESS;
		else if (value_is(v + i, j - i, "FAILURE"))
			bits |= SMTP_NOTIFY_FAILURE;
		else if (value_is(v + i, j - i, "DELAY"))
			bits |= SMTP_NOTIFY_DELAY;
		else
			return false;
		i = j + 1;
	}
	/* RFC 3461 4.1: NEVER must appear alone */
	if ((bits & SMTP_NOTIFY_NEVER) && bits != SMTP_NOTIFY_NEVER)
		return false;
	*bits_r = bits;
	return true;
}

/*
 * parse_orcpt - addr-type ";" xtext (RFC 3461 4.2). addr-type is an atom;
 * the "utf-8" type of RFC 6533 carries UTF-8 and its own escapes, which
 * we keep as they are rather than decode.
 */
static bool
parse_orcpt(struct smtp_command *cmd, const char *v, size_t n)
{
	const char *semi;
	char *out;
	size_t tlen, k;

	if ((semi = memchr(v, ';', n)) == NULL)
		return false;
	tlen = (size_t)(semi - v);
	if (tlen == 0 || semi + 1 == v + n)
		return false;
	for (k = 0; k < tlen; k++)
		if (!is_alpha((unsigned char)v[k]) &&
		    !is_digit((unsigned char)v[k]) && v[k] != '-')
			return false;
	if (value_is(v, tlen, "utf-8")) {
		if (!utf8_valid((const unsigned char *)semi + 1,
		    n - tlen - 1))
			return false;
		cmd->orcpt_addr = arena_add(cmd, semi + 1, n - tlen - 1);
	} else {
		out = arena_reserve(cmd, n - tlen - 1);
		if (smtp_xtext_decode(semi + 1, n - tlen - 1, out) < 0)
			return false;
		cmd->orcpt_addr = out;
	}
	cmd->orcpt_type = arena_add(cmd, v, tlen);
	cmd->orcpt = arena_add(cmd, v, n);
	return true;
}

/*
 * apply_param - check and store one esmtp-param. v is NULL when the
 * keyword had no "=value".
 */
static int
apply_param(struct smtp_command *cmd, enum param p, const char *name,
    const char *v, size_t n, const char **error_r)
{
	char *out;
	bool overflow;

	switch (p) {
	case P_SIZE:
		/* RFC 1870: an estimate; saturate, the session compares */
		if (v == NULL || !parse_number(v, n, &cmd->size, &overflow))
			return param_error(cmd, name, error_r);
		cmd->has_size = true;
		return 0;
	case P_BODY:
		if (v == NULL)
			return param_error(cmd, name, error_r);
		if (value_is(v, n, "7BIT"))
			cmd->body = SMTP_BODY_7BIT;
		else if (value_is(v, n, "8BITMIME"))
			cmd->body = SMTP_BODY_8BITMIME;
		else if (value_is(v, n, "BINARYMIME"))
			cmd->body = SMTP_BODY_BINARYMIME;
		else
			return param_error(cmd, name, error_r);
		return 0;
	case P_SMTPUTF8:
		/* RFC 6531 3.4: a keyword without a value */
		if (v != NULL)
			return param_error(cmd, name, error_r);
		cmd->smtputf8 = true;
		return 0;
	case P_RET:
		if (v != NULL && value_is(v, n, "FULL"))
			cmd->ret = SMTP_RET_FULL;
		else if (v != NULL && value_is(v, n, "HDRS"))
			cmd->ret = SMTP_RET_HDRS;
		else
			return param_error(cmd, name, error_r);
		return 0;
	case P_ENVID:
		if (v == NULL)
			return param_error(cmd, name, error_r);
		if (n > SMTP_ENVID_MAX) {
			*error_r = "501 5.5.4 ENVID parameter too long";
			return -1;
		}
		out = arena_reserve(cmd, n);
		if (smtp_xtext_decode(v, n, out) < 0)
			return param_error(cmd, name, error_r);
		cmd->envid_decoded = out;
		cmd->envid = arena_add(cmd, v, n);
		return 0;
	case P_AUTH:
		/*
		 * RFC 4954 5: AUTH=<> or AUTH=xtext. We keep it for the
		 * record only; trusting it is a later decision.
		 */
		if (v == NULL)
			return param_error(cmd, name, error_r);
		if (!value_is(v, n, "<>")) {
			out = arena_reserve(cmd, n);
			if (smtp_xtext_decode(v, n, out) < 0)
				return param_error(cmd, name, error_r);
		}
		cmd->mail_auth = arena_add(cmd, v, n);
		return 0;
	case P_NOTIFY:
		if (v == NULL || !parse_notify(v, n, &cmd->notify))
			return param_error(cmd, name, error_r);
		return 0;
	case P_ORCPT:
		if (v == NULL)
			return param_error(cmd, name, error_r);
		if (n > SMTP_ORCPT_MAX) {
			*error_r = "501 5.5.4 ORCPT parameter too long";
			return -1;
		}
		if (!parse_orcpt(cmd, v, n))
			return param_error(cmd, name, error_r);
		return 0;
	}
	return param_error(cmd, name, error_r);
}

/*
 * parse_params - *(SP esmtp-param) after the path (RFC 5321 4.1.2):
 * esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"),
 * esmtp-value = 1*(%d33-60 / %d62-126), plus UTF-8 (RFC 6531 3.3).
 */
static int
parse_params(struct smtp_command *cmd, struct cursor *c, const char *usage,
    const char **error_r)
{
	unsigned seen = 0;
	size_t kw, kwlen, val, vlen, k, j;
	const char *name;
	bool has_value;
	unsigned char ch;

	while (c->i < c->n) {
		/* the path or the previous parameter must end at a space */
		if (!is_wsp((unsigned char)c->s[c->i])) {
			*error_r = usage;
			return -1;
		}
		while (c->i < c->n && is_wsp((unsigned char)c->s[c->i]))
			c->i++;
		if (c->i >= c->n)
			break;
		kw = c->i;
		while (c->i < c->n && !is_wsp((unsigned char)c->s[c->i]) &&
		    c->s[c->i] != '=')
			c->i++;
		kwlen = c->i - kw;
		if (!is_alpha((unsigned char)c->s[kw]) &&
		    !is_digit((unsigned char)c->s[kw])) {
			*error_r = R_PARAM;
			return -1;
		}
		for (k = kw; k < kw + kwlen; k++) {
			ch = (unsigned char)c->s[k];
			if (!is_alpha(ch) && !is_digit(ch) && ch != '-') {
				*error_r = R_PARAM;
				return -1;
			}
		}
		val = vlen = 0;
		has_value = c->i < c->n && c->s[c->i] == '=';
		if (has_value) {
			val = ++c->i;
			while (c->i < c->n &&
			    !is_wsp((unsigned char)c->s[c->i]))
				c->i++;
			vlen = c->i - val;
			if (vlen == 0) {
				*error_r = R_PARAM;
				return -1;
			}
			for (k = val; k < c->i; k++) {
				ch = (unsigned char)c->s[k];
				if (ch < 33 || ch == '=' || ch == 127) {
					*error_r = R_PARAM;
					return -1;
				}
			}
		}
		name = NULL;
		for (j = 0; j < sizeof(params) / sizeof(params[0]); j++) {
			if (params[j].verb == cmd->verb &&
			    value_is(c->s + kw, kwlen, params[j].name)) {
				name = params[j].name;
				break;
			}
		}
		if (name == NULL) {
			/* the keyword is checked printable ASCII above */
			snprintf(cmd->errbuf, sizeof(cmd->errbuf),
			    "555 5.5.4 Unsupported option: %.*s",
			    (int)(kwlen > 40 ? 40 : kwlen), c->s + kw);
			*error_r = cmd->errbuf;
			return -1;
		}
		if (seen & (1u << params[j].param)) {
			snprintf(cmd->errbuf, sizeof(cmd->errbuf),
			    "501 5.5.4 Duplicate %s parameter", name);
			*error_r = cmd->errbuf;
			return -1;
		}
		seen |= 1u << params[j].param;
		if (apply_param(cmd, params[j].param, name,
		    has_value ? c->s + val : NULL, vlen, error_r) == -1)
			return -1;
	}
	return 0;
}

/*
 * parse_mail_rcpt - "FROM:" / "TO:" [spaces] path [params]. The keyword
 * is case-insensitive; spaces after the colon are tolerated (Postfix does,
 * and enough clients send them), spaces before it are not.
 */
static int
parse_mail_rcpt(struct smtp_command *cmd, struct cursor *c,
    const char **error_r)
{
	bool is_mail = cmd->verb == SMTP_VERB_MAIL;
	const char *kw = is_mail ? "FROM:" : "TO:";
	const char *usage = is_mail ? R_MAIL : R_RCPT;
	size_t kwlen = strlen(kw);

	if (c->n - c->i < kwlen || strncasecmp(c->s + c->i, kw, kwlen) != 0) {
		*error_r = usage;
		return -1;
	}
	c->i += kwlen;
	while (c->i < c->n && is_wsp((unsigned char)c->s[c->i]))
		c->i++;
	if (c->i >= c->n || c->s[c->i] != '<') {
		*error_r = usage;
		return -1;
	}
	if (parse_path(cmd, c, is_mail, error_r) == -1)
		return -1;
	if (parse_params(cmd, c, usage, error_r) == -1)
		return -1;
	/* RFC 6531 3.4: UTF-8 in the sender only with SMTPUTF8 */
	if (is_mail && cmd->is_utf8_path && !cmd->smtputf8) {
		*error_r = SMTP_REPLY_NEED_SMTPUTF8;
		return -1;
	}
	return 0;
}

/*
 * parse_helo - RFC 5321 4.1.1.1: one word, the domain or address
 * literal. Its form is not checked further: RFC 5321 4.1.4 forbids
 * refusing a mismatching name, and checking it is a policy
 * (like Postfix's reject_invalid_helo_hostname), not syntax.
 */
static int
parse_helo(struct smtp_command *cmd, struct cursor *c, const char **error_r)
{
	const char *usage = cmd->verb == SMTP_VERB_EHLO ? R_EHLO : R_HELO;
	size_t k;

	if (c->i >= c->n) {
		*error_r = usage;
		return -1;
	}
	for (k = c->i; k < c->n; k++) {
		if ((unsigned char)c->s[k] <= ' ' || c->s[k] == 127) {
			*error_r = usage;
			return -1;
		}
	}
	cmd->arg = arena_add(cmd, c->s + c->i, c->n - c->i);
	return 0;
}

/* parse_bdat - RFC 3030 2: chunk-size [SP end-marker] */
static int
parse_bdat(struct smtp_command *cmd, struct cursor *c, const char **error_r)
{
	size_t start = c->i;
	bool overflow;

	while (c->i < c->n && !is_wsp((unsigned char)c->s[c->i]))
		c->i++;
	/* a size that does not fit 64 bits cannot be a real chunk */
	if (!parse_number(c->s + start, c->i - start, &cmd->bdat_size,
	    &overflow) || overflow)
		goto bad;
	while (c->i < c->n && is_wsp((unsigned char)c->s[c->i]))
		c->i++;
	if (c->i < c->n) {
		if (!value_is(c->s + c->i, c->n - c->i, "LAST"))
			goto bad;
		cmd->bdat_last = true;
	}
	return 0;
bad:
	*error_r = R_BDAT;
	return -1;
}

/*
 * parse_auth - RFC 4954 4: mechanism [SP initial-response]; "=" stands
 * for an empty initial response. Mechanism names are RFC 4422 3.1
 * sasl-mech (1-20 of A-Z 0-9 - _), compared without case.
 */
static int
parse_auth(struct smtp_command *cmd, struct cursor *c, const char **error_r)
{
	size_t start = c->i, mlen, k;
	char *mech;
	unsigned char ch;
	bool pad;

	while (c->i < c->n && !is_wsp((unsigned char)c->s[c->i]))
		c->i++;
	mlen = c->i - start;
	if (mlen == 0 || mlen > 20)
		goto bad;
	mech = arena_reserve(cmd, mlen);
	for (k = 0; k < mlen; k++) {
		ch = (unsigned char)c->s[start + k];
		if (!is_alpha(ch) && !is_digit(ch) && ch != '-' && ch != '_')
			goto bad;
		mech[k] = (char)(ch >= 'a' && ch <= 'z' ? ch - 32 : ch);
	}
	mech[mlen] = '\0';
	cmd->arg = mech;
	while (c->i < c->n && is_wsp((unsigned char)c->s[c->i]))
		c->i++;
	if (c->i >= c->n)
		return 0;
	start = c->i;
	while (c->i < c->n && !is_wsp((unsigned char)c->s[c->i]))
		c->i++;
	if (c->i < c->n)
		goto bad;	/* a third word */
	if (c->i - start == 1 && c->s[start] == '=') {
		cmd->auth_initial = arena_add(cmd, "", 0);
		return 0;
	}
	/* base64 alphabet, "=" only as trailing padding; decoding is AUTH's */
	pad = false;
	for (k = start; k < c->i; k++) {
		ch = (unsigned char)c->s[k];
		if (ch == '=')
			pad = true;
		else if (pad || (!is_alpha(ch) && !is_digit(ch) &&
		    ch != '+' && ch != '/')) {
			*error_r = R_AUTH_B64;
			return -1;
		}
	}
	cmd->auth_initial = arena_add(cmd, c->s + start, c->i - start);
	return 0;
bad:
	*error_r = R_AUTH;
	return -1;
}

static void
reset(struct smtp_command *cmd)
{
	cmd->verb = SMTP_VERB_UNKNOWN;
	cmd->arg = NULL;
	cmd->path = NULL;
	cmd->is_utf8_path = false;
	cmd->has_size = false;
	cmd->size = 0;
	cmd->body = SMTP_BODY_NONE;
	cmd->smtputf8 = false;
	cmd->ret = SMTP_RET_NONE;
	cmd->envid = cmd->envid_decoded = cmd->mail_auth = NULL;
	cmd->notify = 0;
	cmd->orcpt = cmd->orcpt_type = cmd->orcpt_addr = NULL;
	cmd->bdat_size = 0;
	cmd->bdat_last = false;
	cmd->auth_initial = NULL;
	cmd->arena_len = 0;
	cmd->errbuf[0] = '\0';
}

int
smtp_parse_command(const char *line, size_t len, struct smtp_command *cmd,
    const char **error_r)
{
	struct cursor c;
	size_t vstart, vlen, j, need;

	reset(cmd);
	if (memchr(line, '\0', len) != NULL) {
		*error_r = R_NUL;
		return -1;
	}
	if (memchr(line, '\r', len) != NULL ||
	    memchr(line, '\n', len) != NULL) {
		*error_r = R_CRLF;
		return -1;
	}

	/*
	 * Every string we hand out is a piece of the line, or a decoding
	 * no longer than the piece; no piece is stored more than twice.
	 */
	need = 2 * len + 32;
	if (cmd->arena_cap < need) {
		free(cmd->arena);
		cmd->arena_cap = need < 1024 ? 1024 : need;
		cmd->arena = xmalloc(cmd->arena_cap);
	}

	/* trailing and leading white space are tolerated */
	while (len > 0 && is_wsp((unsigned char)line[len - 1]))
		len--;
	c.s = line;
	c.n = len;
	c.i = 0;
	while (c.i < c.n && is_wsp((unsigned char)line[c.i]))
		c.i++;
	if (c.i >= c.n) {
		*error_r = R_EMPTY;
		return -1;
	}
	vstart = c.i;
	while (c.i < c.n && !is_wsp((unsigned char)line[c.i]))
		c.i++;
	vlen = c.i - vstart;
	for (j = 0; j < sizeof(verbs) / sizeof(verbs[0]); j++)
		if (value_is(line + vstart, vlen, verbs[j].name))
			break;
	if (j == sizeof(verbs) / sizeof(verbs[0])) {
		*error_r = R_UNKNOWN;
		return -1;
	}
	cmd->verb = verbs[j].verb;
	while (c.i < c.n && is_wsp((unsigned char)line[c.i]))
		c.i++;

	switch (cmd->verb) {
	case SMTP_VERB_EHLO:
	case SMTP_VERB_HELO:
		return parse_helo(cmd, &c, error_r);
	case SMTP_VERB_MAIL:
	case SMTP_VERB_RCPT:
		return parse_mail_rcpt(cmd, &c, error_r);
	case SMTP_VERB_BDAT:
		return parse_bdat(cmd, &c, error_r);
	case SMTP_VERB_AUTH:
		return parse_auth(cmd, &c, error_r);
	case SMTP_VERB_VRFY:
	case SMTP_VERB_EXPN:
	case SMTP_VERB_HELP:
	case SMTP_VERB_NOOP:
		/* RFC 5321 4.1.1.6-4.1.1.9: a free-form argument */
		if (c.i < c.n)
			cmd->arg = arena_add(cmd, line + c.i, c.n - c.i);
		return 0;
	case SMTP_VERB_DATA:
	case SMTP_VERB_RSET:
	case SMTP_VERB_QUIT:
	case SMTP_VERB_STARTTLS:
		/* no parameters (RFC 5321 4.1.1.4/5/10, RFC 3207 4) */
		if (c.i < c.n) {
			snprintf(cmd->errbuf, sizeof(cmd->errbuf),
			    "501 5.5.4 Syntax: %s", verbs[j].name);
			*error_r = cmd->errbuf;
			return -1;
		}
		return 0;
	case SMTP_VERB_UNKNOWN:
	case SMTP_VERB_COUNT:
		break;
	}
	*error_r = R_UNKNOWN;
	return -1;
}

char *
smtp_notify_text(unsigned bits)
{
	char *text, *p;

	if (bits == 0)
		return NULL;
	if (bits & SMTP_NOTIFY_NEVER)
		return xstrdup("NEVER");
	text = xasprintf("%s%s%s",
	    bits & SMTP_NOTIFY_SUCCESS ? ",SUCCESS" : "",
	    bits & SMTP_NOTIFY_FAILURE ? ",FAILURE" : "",
	    bits & SMTP_NOTIFY_DELAY ? ",DELAY" : "");
	p = text[0] == ',' ? text + 1 : text;
	memmove(text, p, strlen(p) + 1);
	return text;
}

char *
smtp_orcpt_decoded(const struct smtp_command *cmd)
{
	if (cmd->orcpt == NULL || cmd->orcpt_type == NULL ||
	    cmd->orcpt_addr == NULL)
		return NULL;
	return xasprintf("%s;%s", cmd->orcpt_type, cmd->orcpt_addr);
}

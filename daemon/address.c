/*
 * address.c - canonical forms of envelope addresses.
 *
 * Owns nothing beyond the strings of struct address. It does not judge
 * syntax (the SMTP parser did, RFC 5321 4.1.2) and makes no policy
 * decision (policies/relay.c does); it only takes a mailbox apart the way
 * a router must see it: the domain after the last "@" outside quotes
 * (RFC 5321 4.1.2 Mailbox), compared without case (RFC 5321 2.4), one
 * trailing dot dropped (the root label, RFC 1034 3.1), the local part
 * unquoted (RFC 5321 4.1.2 Quoted-string: the quotes are not part of the
 * mailbox name) and address literals (RFC 5321 4.1.3) in one spelling.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/socket.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "xmalloc.h"
#include "address.h"

static char
lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

/* canonical_literal - "[...]" in one spelling; family 0 if not IP */
static char *
canonical_literal(const char *lit, size_t len, int *family_r)
{
	char tmp[64], out[INET6_ADDRSTRLEN];
	unsigned char bin[16];
	const char *in = lit + 1;
	size_t n = len - 2;	/* without the brackets */
	size_t i;
	char *s;

	*family_r = 0;
	if (n > 5 && strncasecmp(in, "IPv6:", 5) == 0 &&
	    n - 5 < sizeof(tmp)) {
		memcpy(tmp, in + 5, n - 5);
		tmp[n - 5] = '\0';
		if (inet_pton(AF_INET6, tmp, bin) == 1 &&
		    inet_ntop(AF_INET6, bin, out, sizeof(out)) != NULL) {
			*family_r = AF_INET6;
			return xasprintf("[ipv6:%s]", out);
		}
	} else if (n < sizeof(tmp)) {
		memcpy(tmp, in, n);
		tmp[n] = '\0';
		if (inet_pton(AF_INET, tmp, bin) == 1 &&
		    inet_ntop(AF_INET, bin, out, sizeof(out)) != NULL) {
			*family_r = AF_INET;
			return xasprintf("[%s]", out);
		}
	}
	/* a General-address-literal or garbage: just lower-case it */
	s = xstrndup(lit, len);
	for (i = 0; s[i] != '\0'; i++)
		s[i] = lower(s[i]);
	return s;
}

/* canonical_domain - lower-case, one trailing dot dropped */
static char *
canonical_domain(const char *d, bool *is_literal_r, int *family_r)
{
	size_t len = strlen(d), i;
	char *s;

	*is_literal_r = false;
	*family_r = 0;
	if (len >= 2 && d[0] == '[' && d[len - 1] == ']') {
		*is_literal_r = true;
		return canonical_literal(d, len, family_r);
	}
	if (len > 0 && d[len - 1] == '.')
		len--;
	s = xstrndup(d, len);
	for (i = 0; i < len; i++)
		s[i] = lower(s[i]);
	return s;
}

char *
address_domain_canonical(const char *domain)
{
	bool is_literal;
	int family;

	return canonical_domain(domain, &is_literal, &family);
}

/*
 * skip_route - past "@d1,@d2:" at the start of a path (RFC 5321 4.1.2
 * A-d-l). Returns the mailbox, or NULL when the route does not end.
 */
static const char *
skip_route(const char *s)
{
	const char *colon;

	if (s[0] != '@')
		return s;
	/* domains and literals of the route contain no ":" but IPv6 ones */
	for (colon = s; *colon != '\0'; colon++) {
		if (*colon == '[') {
			if ((colon = strchr(colon, ']')) == NULL)
				return NULL;
			continue;
		}
		if (*colon == ':')
			return colon + 1;
		if (*colon == '"')
			return NULL;
	}
	return NULL;
}

int
address_parse(const char *mailbox, struct address *addr_r,
    const char **error_r)
{
	struct buf local;
	const char *s, *at, *p;

	memset(addr_r, 0, sizeof(*addr_r));
	if ((s = skip_route(mailbox)) == NULL) {
		*error_r = "malformed source route";
		return -1;
	}
	buf_init(&local, 0);
	if (s[0] == '"') {
		/* Quoted-string: drop the quotes, resolve quoted pairs */
		addr_r->is_quoted = true;
		for (p = s + 1; *p != '"'; p++) {
			if (*p == '\0')
				goto unterminated;
			if (*p == '\\' && *++p == '\0')
				goto unterminated;
			buf_append(&local, p, 1);
		}
		at = p + 1;
		if (*at != '\0' && *at != '@') {
			buf_deinit(&local);
			*error_r = "text after quoted local part";
			return -1;
		}
		if (*at == '\0')
			at = NULL;
	} else {
		at = strrchr(s, '@');
		buf_append(&local, s, at != NULL ? (size_t)(at - s) :
		    strlen(s));
	}
	if (at != NULL && at[1] == '\0') {
		buf_deinit(&local);
		*error_r = "empty domain";
		return -1;
	}
	addr_r->local = buf_steal(&local);
	buf_deinit(&local);
	addr_r->domain = canonical_domain(at != NULL ? at + 1 : "",
	    &addr_r->is_literal, &addr_r->literal_family);
	return 0;
unterminated:
	buf_deinit(&local);
	*error_r = "unterminated quoted local part";
	return -1;
}

void
address_deinit(struct address *addr)
{
	free(addr->local);
	free(addr->domain);
	addr->local = addr->domain = NULL;
}

bool
address_has_routing(const struct address *addr)
{
	return strpbrk(addr->local, "@%!") != NULL;
}

/* is_dot_string - RFC 5321 Dot-string: atoms of atext joined by dots */
static bool
is_dot_string(const char *s)
{
	unsigned char c;
	bool need_atext = true;

	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if (c == '.') {
			if (need_atext)
				return false;
			need_atext = true;
			continue;
		}
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c >= 0x80 ||
		    strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL))
			return false;
		need_atext = false;
	}
	return !need_atext;
}

char *
address_canonical(const struct address *addr)
{
	struct buf b;
	const char *p;
	char *res;

	buf_init(&b, 0);
	if (is_dot_string(addr->local) || (addr->local[0] == '\0' &&
	    addr->domain[0] == '\0'))
		buf_append_str(&b, addr->local);
	else {
		buf_append(&b, "\"", 1);
		for (p = addr->local; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				buf_append(&b, "\\", 1);
			buf_append(&b, p, 1);
		}
		buf_append(&b, "\"", 1);
	}
	if (addr->domain[0] != '\0')
		buf_printf(&b, "@%s", addr->domain);
	res = buf_steal(&b);
	buf_deinit(&b);
	return res;
}

/*
 * table_cidr.c - "cidr:/file": Postfix cidr_table(5) files, and the
 * binary network helpers that match lists share.
 *
 * A rule is "network/prefix result", "address result", "!pattern result",
 * or an "if pattern" ... "endif" block (they nest). Rules are tried in
 * file order and the first match wins. IPv6 patterns may be written in
 * [brackets]. As in Postfix, a pattern never matches (nor, negated,
 * matches by not matching) an address of the other family. Unlike
 * Postfix, which skips such a rule with a warning, a pattern with
 * non-zero host bits is an error: it is nearly always a typo that would
 * otherwise open or close a hole silently.
 *
 * IPv4-mapped IPv6 (::ffff:a.b.c.d), in keys and in patterns of /96 or
 * longer, is treated as the IPv4 address it carries, so that a dual-stack
 * listener's clients match IPv4 networks (Postfix does not do this for
 * cidr tables; it does for mynetworks).
 *
 * SPDX-License-Identifier: ISC
 */
#include <config.h>	/* autoconf's; this directory has its own config.h */

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "table.h"
#include "table-private.h"
#include "xmalloc.h"

/* the 12-byte prefix of IPv4-mapped IPv6 addresses, RFC 4291 2.5.5.2 */
static const uint8_t cidr_v4mapped[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

/* cidr_unmap - turn ::ffff:a.b.c.d/96+n into a.b.c.d/n */
static void
cidr_unmap(struct cidr *c)
{
	if (c->family != AF_INET6 || c->prefix < 96 ||
	    memcmp(c->addr, cidr_v4mapped, sizeof(cidr_v4mapped)) != 0)
		return;
	memmove(c->addr, c->addr + 12, 4);
	memset(c->addr + 4, 0, 12);
	c->family = AF_INET;
	c->prefix -= 96;
}

/* cidr_parse_addr - address text (brackets already gone) into c */
static int
cidr_parse_addr(const char *text, struct cidr *c)
{
	memset(c, 0, sizeof(*c));
	if (strchr(text, ':') != NULL) {
		if (inet_pton(AF_INET6, text, c->addr) != 1)
			return -1;
		c->family = AF_INET6;
		c->prefix = 128;
	} else {
		if (inet_pton(AF_INET, text, c->addr) != 1)
			return -1;
		c->family = AF_INET;
		c->prefix = 32;
	}
	return 0;
}

int
cidr_parse(const char *text, struct cidr *c, char **error_r)
{
	const char *p = text, *slash, *aend;
	char *addr = NULL, *end;
	unsigned long prefix;
	unsigned int i, maxbits;
	int rc = -1;

	if (*p == '[') {
		p++;
		if ((aend = strchr(p, ']')) == NULL) {
			*error_r = xasprintf("\"%s\": missing ']'", text);
			return -1;
		}
		slash = aend[1] == '/' ? aend + 1 : NULL;
		if (aend[1] != '\0' && slash == NULL) {
			*error_r = xasprintf("\"%s\": garbage after ']'", text);
			return -1;
		}
	} else {
		slash = strchr(p, '/');
		aend = slash != NULL ? slash : p + strlen(p);
	}
	addr = xstrndup(p, (size_t)(aend - p));
	if (cidr_parse_addr(addr, c) == -1) {
		*error_r = xasprintf("\"%s\": bad IP address", text);
		goto out;
	}
	maxbits = c->prefix;
	if (slash != NULL) {
		if (!isdigit((unsigned char)slash[1])) {
			*error_r = xasprintf("\"%s\": bad prefix length", text);
			goto out;
		}
		prefix = strtoul(slash + 1, &end, 10);
		if (*end != '\0' || prefix > maxbits) {
			*error_r = xasprintf("\"%s\": bad prefix length", text);
			goto out;
		}
		c->prefix = (unsigned int)prefix;
	}
	for (i = c->prefix; i < maxbits; i++)
		if (c->addr[i / 8] & (0x80 >> (i % 8))) {
			*error_r = xasprintf("\"%s\": non-null host address "
			    "bits beyond /%u", text, c->prefix);
			goto out;
		}
	cidr_unmap(c);
	rc = 0;
out:
	free(addr);
	return rc;
}

int
cidr_addr_from_string(const char *text, struct cidr *c)
{
	char *addr;
	size_t n = strlen(text);
	int rc;

	if (n >= 2 && text[0] == '[' && text[n - 1] == ']')
		addr = xstrndup(text + 1, n - 2);
	else
		addr = xstrdup(text);
	rc = cidr_parse_addr(addr, c);
	free(addr);
	if (rc == 0)
		cidr_unmap(c);
	return rc;
}

int
cidr_addr_from_sockaddr(const struct sockaddr *sa, struct cidr *c)
{
	memset(c, 0, sizeof(*c));
	switch (sa->sa_family) {
	case AF_INET:
		c->family = AF_INET;
		c->prefix = 32;
		memcpy(c->addr, &((const struct sockaddr_in *)(const void *)sa)
		    ->sin_addr, 4);
		return 0;
	case AF_INET6:
		c->family = AF_INET6;
		c->prefix = 128;
		memcpy(c->addr, &((const struct sockaddr_in6 *)(const void *)sa)
		    ->sin6_addr, 16);
		cidr_unmap(c);
		return 0;
	default:
		return -1;
	}
}

bool
cidr_match(const struct cidr *n, const struct cidr *a)
{
	unsigned int full = n->prefix / 8, rest = n->prefix % 8;
	uint8_t mask;

	if (n->family != a->family)
		return false;
	if (memcmp(n->addr, a->addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (uint8_t)(0xff << (8 - rest));
	return (n->addr[full] & mask) == (a->addr[full] & mask);
}

enum cidr_rule_kind {
	CIDR_RULE_MATCH,
	CIDR_RULE_IF,
	CIDR_RULE_ENDIF,
};

struct cidr_rule {
	enum cidr_rule_kind kind;
	bool	 is_negated;
	struct cidr net;
	char	*result;	/* owned; NULL for if/endif */
	size_t	 skip;		/* IF: index past its ENDIF */
};

struct cidr_table {
	struct cidr_rule *rules;	/* owned array */
	size_t	 nrules;
	size_t	*open_ifs;		/* owned; stack while loading */
	size_t	 nopen;
};

static struct cidr_rule *
cidr_table_add(struct cidr_table *ct, enum cidr_rule_kind kind)
{
	struct cidr_rule *r;

	ct->rules = xreallocarray(ct->rules, ct->nrules + 1,
	    sizeof(*ct->rules));
	r = &ct->rules[ct->nrules++];
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	return r;
}

/* cidr_parse_rule - one logical line of a cidr table */
static int
cidr_parse_rule(void *ctx, const char *path, int lineno, const char *line,
    char **error_r)
{
	struct cidr_table *ct = ctx;
	struct cidr_rule *r;
	enum cidr_rule_kind kind = CIDR_RULE_MATCH;
	enum table_rule_start start;
	const char *p = line, *pend, *res, *rend;
	char *pattern, *err = NULL;
	bool negate = false;
	struct cidr net;

	if (table_rule_start(path, lineno, line, &start, &negate, &p,
	    error_r) == -1)
		return -1;
	if (start == TABLE_RULE_ENDIF) {
		if (ct->nopen == 0) {
			*error_r = xasprintf("%s:%d: \"endif\" without \"if\"",
			    path, lineno);
			return -1;
		}
		cidr_table_add(ct, CIDR_RULE_ENDIF);
		ct->rules[ct->open_ifs[--ct->nopen]].skip = ct->nrules;
		return 0;
	}
	if (start == TABLE_RULE_IF)
		kind = CIDR_RULE_IF;
	for (pend = p; *pend != '\0' && !isspace((unsigned char)*pend); pend++)
		;
	for (res = pend; isspace((unsigned char)*res); res++)
		;
	rend = res + strlen(res);
	while (rend > res && isspace((unsigned char)rend[-1]))
		rend--;
	pattern = xstrndup(p, (size_t)(pend - p));
	if (cidr_parse(pattern, &net, &err) == -1) {
		*error_r = xasprintf("%s:%d: %s", path, lineno, err);
		free(err);
		free(pattern);
		return -1;
	}
	free(pattern);
	if (kind == CIDR_RULE_IF && res != rend) {
		*error_r = xasprintf("%s:%d: text after \"if\" pattern", path,
		    lineno);
		return -1;
	}
	if (kind == CIDR_RULE_MATCH && res == rend) {
		*error_r = xasprintf("%s:%d: missing result after pattern",
		    path, lineno);
		return -1;
	}
	r = cidr_table_add(ct, kind);
	r->is_negated = negate;
	r->net = net;
	if (kind == CIDR_RULE_IF) {
		ct->open_ifs = xreallocarray(ct->open_ifs, ct->nopen + 1,
		    sizeof(*ct->open_ifs));
		ct->open_ifs[ct->nopen++] = ct->nrules - 1;
	} else
		r->result = xstrndup(res, (size_t)(rend - res));
	return 0;
}

static int
cidr_open(struct table *t, const char *path, char **error_r)
{
	struct cidr_table *ct;
	int rc;

	ct = xcalloc(1, sizeof(*ct));
	t->priv = ct;
	rc = table_read_lines(path, cidr_parse_rule, ct, error_r);
	if (rc == 0 && ct->nopen > 0) {
		*error_r = xasprintf("%s: missing \"endif\"", path);
		rc = -1;
	}
	free(ct->open_ifs);
	ct->open_ifs = NULL;
	return rc;
}

/* cidr_search - the first rule that matches address a */
static const char *
cidr_search(const struct cidr_table *ct, const struct cidr *a)
{
	const struct cidr_rule *r;
	size_t i = 0;

	while (i < ct->nrules) {
		r = &ct->rules[i];
		switch (r->kind) {
		case CIDR_RULE_ENDIF:
			i++;
			break;
		case CIDR_RULE_IF:
			if (r->net.family == a->family &&
			    cidr_match(&r->net, a) != r->is_negated)
				i++;
			else
				i = r->skip;
			break;
		case CIDR_RULE_MATCH:
			if (r->net.family == a->family &&
			    cidr_match(&r->net, a) != r->is_negated)
				return r->result;
			i++;
			break;
		}
	}
	return NULL;
}

static const char *
cidr_lookup(const struct table *t, const char *key)
{
	struct cidr a;

	if (cidr_addr_from_string(key, &a) == -1)
		return NULL;
	return cidr_search(t->priv, &a);
}

static const char *
cidr_lookup_addr(const struct table *t, const struct sockaddr *sa)
{
	struct cidr a;

	if (cidr_addr_from_sockaddr(sa, &a) == -1)
		return NULL;
	return cidr_search(t->priv, &a);
}

static void
cidr_free(struct table *t)
{
	struct cidr_table *ct = t->priv;
	size_t i;

	for (i = 0; i < ct->nrules; i++)
		free(ct->rules[i].result);
	free(ct->rules);
	free(ct->open_ifs);
	free(ct);
	t->priv = NULL;
}

const struct table_ops table_cidr_ops = {
	.type = "cidr",
	.open = cidr_open,
	.lookup = cidr_lookup,
	.lookup_dup = NULL,
	.lookup_addr = cidr_lookup_addr,
	.free = cidr_free,
};

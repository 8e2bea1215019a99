/*
 * matchlist.c - Postfix-style match lists (mydestination, relay_domains,
 * mynetworks).
 *
 * Owns the parsed elements and any tables they name. The semantics are
 * Postfix's match_list: elements are tried in order and the first that
 * matches decides; "!element" turns that decision into "not listed".
 * Domain patterns match exactly (case-insensitive, one trailing dot
 * ignored) and ".example.com" matches every subdomain of example.com but
 * not example.com itself. Unlike Postfix's default for relay_domains
 * (parent_domain_matches_subdomains), a bare "example.com" never matches
 * its subdomains: listing a subdomain tree must be explicit.
 *
 * In a domain list a table is looked up with the domain, then with each
 * parent domain as ".parent" (Postfix's dot-style parent lookup); any
 * result counts as a match. In an address list a table is looked up with
 * the client address (cidr tables natively, other tables by the address
 * as text). IPv4-mapped IPv6 client addresses are matched as IPv4.
 *
 * SPDX-License-Identifier: ISC
 */
#include <config.h>	/* autoconf's; this directory has its own config.h */

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cf_parse.h"
#include "matchlist.h"
#include "table.h"
#include "table-private.h"
#include "xmalloc.h"

/* how deep "/file" elements may name further files */
#define MATCHLIST_MAX_FILE_DEPTH	8

enum matchlist_elem_kind {
	MATCHLIST_ELEM_DOMAIN,		/* example.com */
	MATCHLIST_ELEM_SUBDOMAINS,	/* .example.com */
	MATCHLIST_ELEM_NET,		/* 192.0.2.0/24 */
	MATCHLIST_ELEM_TABLE,		/* type:name */
};

struct matchlist_elem {
	enum matchlist_elem_kind kind;
	bool	 is_negated;
	char	*domain;	/* owned; DOMAIN, SUBDOMAINS (".x") */
	struct cidr net;	/* NET */
	struct table *table;	/* owned; TABLE */
};

struct matchlist {
	enum matchlist_kind kind;
	char	*text;			/* owned; as written */
	struct matchlist_elem *elems;	/* owned array */
	size_t	 nelems;
};

static int matchlist_add_text(struct matchlist *, const char *, int,
    char **);

/* matchlist_fold_domain - lower case, one trailing dot removed */
static char *
matchlist_fold_domain(const char *s)
{
	char *d = table_fold_key(s);
	size_t n = strlen(d);

	if (n > 0 && d[n - 1] == '.')
		d[n - 1] = '\0';
	return d;
}

/* matchlist_is_table - does the token look like "type:name" */
static bool
matchlist_is_table(const char *tok)
{
	const char *p = tok;

	while (isalnum((unsigned char)*p) || *p == '_')
		p++;
	return p != tok && *p == ':';
}

struct matchlist_file_ctx {
	struct matchlist *ml;	/* borrowed */
	int	 depth;
};

static int
matchlist_file_line(void *ctx, const char *path, int lineno,
    const char *line, char **error_r)
{
	struct matchlist_file_ctx *fc = ctx;
	char *err = NULL;

	if (matchlist_add_text(fc->ml, line, fc->depth, &err) == -1) {
		*error_r = xasprintf("%s:%d: %s", path, lineno, err);
		free(err);
		return -1;
	}
	return 0;
}

/* matchlist_add_elem - parse one token into the list */
static int
matchlist_add_elem(struct matchlist *ml, const char *tok, int depth,
    char **error_r)
{
	struct matchlist_elem e;
	char *err = NULL;

	memset(&e, 0, sizeof(e));
	if (*tok == '!') {
		e.is_negated = true;
		tok++;
	}
	if (*tok == '\0' || *tok == '!') {
		*error_r = xasprintf("\"%s\": bad negation", tok);
		return -1;
	}
	if (*tok == '/') {
		struct matchlist_file_ctx fc = { ml, depth + 1 };

		if (e.is_negated) {
			*error_r = xasprintf("\"!%s\": a file of patterns "
			    "cannot be negated; negate its elements", tok);
			return -1;
		}
		if (depth >= MATCHLIST_MAX_FILE_DEPTH) {
			*error_r = xasprintf("%s: files nested too deeply",
			    tok);
			return -1;
		}
		return table_read_lines(tok, matchlist_file_line, &fc,
		    error_r);
	}
	if (ml->kind == MATCHLIST_ADDRESS) {
		if (cidr_parse(tok, &e.net, &err) == 0)
			e.kind = MATCHLIST_ELEM_NET;
		else if (!matchlist_is_table(tok)) {
			*error_r = err;
			return -1;
		} else {
			free(err);
			err = NULL;
			e.kind = MATCHLIST_ELEM_TABLE;
		}
	} else if (matchlist_is_table(tok))
		e.kind = MATCHLIST_ELEM_TABLE;
	else {
		e.domain = matchlist_fold_domain(tok);
		e.kind = e.domain[0] == '.' ? MATCHLIST_ELEM_SUBDOMAINS :
		    MATCHLIST_ELEM_DOMAIN;
		if (e.domain[0] == '\0' || strcmp(e.domain, ".") == 0 ||
		    strchr(e.domain, '/') != NULL) {
			*error_r = xasprintf("\"%s\": bad domain pattern", tok);
			free(e.domain);
			return -1;
		}
	}
	if (e.kind == MATCHLIST_ELEM_TABLE &&
	    (e.table = table_open(tok, error_r)) == NULL)
		return -1;
	ml->elems = xreallocarray(ml->elems, ml->nelems + 1,
	    sizeof(*ml->elems));
	ml->elems[ml->nelems++] = e;
	return 0;
}

/* matchlist_add_text - split text into elements and add each */
static int
matchlist_add_text(struct matchlist *ml, const char *text, int depth,
    char **error_r)
{
	char **tokens;
	size_t i;
	int rc = 0;

	if (cf_tokenize(text, &tokens, NULL, error_r) == -1)
		return -1;
	for (i = 0; tokens[i] != NULL; i++)
		if ((rc = matchlist_add_elem(ml, tokens[i], depth, error_r))
		    == -1)
			break;
	cf_tokens_free(&tokens);
	return rc;
}

struct matchlist *
matchlist_new(enum matchlist_kind kind, const char *text, char **error_r)
{
	struct matchlist *ml;

	ml = xcalloc(1, sizeof(*ml));
	ml->kind = kind;
	ml->text = xstrdup(text);
	if (matchlist_add_text(ml, text, 0, error_r) == -1) {
		matchlist_free(&ml);
		return NULL;
	}
	return ml;
}

void
matchlist_free(struct matchlist **mlp)
{
	struct matchlist *ml = *mlp;
	size_t i;

	if (ml == NULL)
		return;
	for (i = 0; i < ml->nelems; i++) {
		free(ml->elems[i].domain);
		table_free(&ml->elems[i].table);
	}
	free(ml->elems);
	free(ml->text);
	free(ml);
	*mlp = NULL;
}

/* matchlist_table_has_domain - domain, then ".parent" keys */
static bool
matchlist_table_has_domain(const struct table *t, const char *domain)
{
	const char *p;

	if (table_lookup(t, domain) != NULL)
		return true;
	for (p = strchr(domain, '.'); p != NULL; p = strchr(p + 1, '.'))
		if (p[1] != '\0' && table_lookup(t, p) != NULL)
			return true;
	return false;
}

bool
matchlist_match_domain(const struct matchlist *ml, const char *domain)
{
	const struct matchlist_elem *e;
	char *d;
	size_t i, dlen, elen;
	bool hit = false, found = false;

	if (ml->kind != MATCHLIST_DOMAIN)
		return false;
	d = matchlist_fold_domain(domain);
	dlen = strlen(d);
	for (i = 0; i < ml->nelems && !found && dlen > 0; i++) {
		e = &ml->elems[i];
		switch (e->kind) {
		case MATCHLIST_ELEM_DOMAIN:
			found = strcmp(d, e->domain) == 0;
			break;
		case MATCHLIST_ELEM_SUBDOMAINS:
			elen = strlen(e->domain);
			found = dlen > elen &&
			    strcmp(d + dlen - elen, e->domain) == 0;
			break;
		case MATCHLIST_ELEM_TABLE:
			found = matchlist_table_has_domain(e->table, d);
			break;
		case MATCHLIST_ELEM_NET:
			break;
		}
		if (found)
			hit = !e->is_negated;
	}
	free(d);
	return hit;
}

bool
matchlist_match_addr(const struct matchlist *ml, const struct sockaddr *sa)
{
	const struct matchlist_elem *e;
	struct cidr a;
	size_t i;
	bool found = false;

	if (ml->kind != MATCHLIST_ADDRESS ||
	    cidr_addr_from_sockaddr(sa, &a) == -1)
		return false;
	for (i = 0; i < ml->nelems; i++) {
		e = &ml->elems[i];
		if (e->kind == MATCHLIST_ELEM_NET)
			found = cidr_match(&e->net, &a);
		else if (e->kind == MATCHLIST_ELEM_TABLE)
			found = table_lookup_addr(e->table, sa) != NULL;
		if (found)
			return !e->is_negated;
	}
	return false;
}

const char *
matchlist_text(const struct matchlist *ml)
{
	return ml->text;
}

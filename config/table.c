/*
 * table.c - lookup tables: parse "type:source", dispatch to the backend.
 *
 * Owns the table object and the spec string; the backends (texthash,
 * cidr, pcre, inline) own their parsed contents. Tables are built once
 * at configuration load and are read-only afterwards, so lookups need no
 * locking. Postfix table types we do not implement (hash, lmdb, regexp,
 * ...) are refused with a clear error instead of being guessed at.
 *
 * SPDX-License-Identifier: ISC
 */
#include <config.h>	/* autoconf's; this directory has its own config.h */

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "table.h"
#include "table-private.h"
#include "xmalloc.h"

static const struct table_ops *const table_backends[] = {
	&table_texthash_ops,
	&table_cidr_ops,
	&table_pcre_ops,
	&table_inline_ops,
};

struct table *
table_open(const char *spec, char **error_r)
{
	const struct table_ops *ops = NULL;
	const char *colon;
	struct table *t;
	size_t i, typelen;

	if ((colon = strchr(spec, ':')) == NULL || colon == spec) {
		*error_r = xasprintf("%s: expected type:name", spec);
		return NULL;
	}
	typelen = (size_t)(colon - spec);
	for (i = 0; i < sizeof(table_backends) / sizeof(table_backends[0]);
	    i++)
		if (strlen(table_backends[i]->type) == typelen &&
		    strncmp(table_backends[i]->type, spec, typelen) == 0)
			ops = table_backends[i];
	if (ops == NULL) {
		*error_r = xasprintf("%s: unsupported table type \"%.*s\" "
		    "(supported: texthash, cidr, pcre, inline)", spec,
		    (int)typelen, spec);
		return NULL;
	}
	if (colon[1] == '\0') {
		*error_r = xasprintf("%s: missing table name after \"%.*s:\"",
		    spec, (int)typelen, spec);
		return NULL;
	}
	t = xcalloc(1, sizeof(*t));
	t->ops = ops;
	t->spec = xstrdup(spec);
	if (ops->open(t, colon + 1, error_r) == -1) {
		table_free(&t);
		return NULL;
	}
	return t;
}

void
table_free(struct table **tp)
{
	struct table *t = *tp;

	if (t == NULL)
		return;
	if (t->priv != NULL)
		t->ops->free(t);
	free(t->spec);
	free(t);
	*tp = NULL;
}

const char *
table_spec(const struct table *t)
{
	return t->spec;
}

/*
 * XXX(#2) pcre results with $n substitutions cannot be lent for the
 * table's lifetime; table_pcre's lookup hands out a per-thread buffer
 * valid until that thread's next pcre lookup. table_lookup_dup has no
 * such caveat.
 */
const char *
table_lookup(const struct table *t, const char *key)
{
	return t->ops->lookup(t, key);
}

char *
table_lookup_dup(const struct table *t, const char *key)
{
	const char *v;

	if (t->ops->lookup_dup != NULL)
		return t->ops->lookup_dup(t, key);
	v = t->ops->lookup(t, key);
	return v != NULL ? xstrdup(v) : NULL;
}

const char *
table_lookup_addr(const struct table *t, const struct sockaddr *sa)
{
	char text[INET6_ADDRSTRLEN];
	struct cidr a;

	if (t->ops->lookup_addr != NULL)
		return t->ops->lookup_addr(t, sa);
	/* other tables are keyed by the address as text, mapped v4 unwrapped */
	if (cidr_addr_from_sockaddr(sa, &a) == -1 ||
	    inet_ntop(a.family, a.addr, text, sizeof(text)) == NULL)
		return NULL;
	return t->ops->lookup(t, text);
}

char *
table_fold_key(const char *key)
{
	char *k = xstrdup(key), *p;

	for (p = k; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return k;
}

int
table_read_lines(const char *path, table_line_fn fn, void *ctx,
    char **error_r)
{
	struct buf logical;
	FILE *fp;
	char *line = NULL;
	const char *s;
	size_t cap = 0, n;
	int lineno = 0, start = 0, rc = -1;

	if ((fp = fopen(path, "r")) == NULL) {
		*error_r = xasprintf("%s: cannot open: %s", path,
		    strerror(errno));
		return -1;
	}
	buf_init(&logical, 0);
	while (getline(&line, &cap, fp) != -1) {
		lineno++;
		n = strlen(line);
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		for (s = line; *s == ' ' || *s == '\t'; s++)
			;
		if (*s == '\0' || *s == '#')
			continue;
		if (s != line) {
			/* whitespace in column 1 continues the logical line */
			if (start == 0) {
				*error_r = xasprintf("%s:%d: logical line must "
				    "not start with whitespace", path, lineno);
				goto out;
			}
			buf_append_str(&logical, " ");
			buf_append_str(&logical, s);
			continue;
		}
		if (start != 0 && fn(ctx, path, start, buf_cstr(&logical),
		    error_r) == -1)
			goto out;
		buf_reset(&logical);
		buf_append_str(&logical, line);
		start = lineno;
	}
	if (ferror(fp)) {
		*error_r = xasprintf("%s: read error: %s", path,
		    strerror(errno));
		goto out;
	}
	if (start != 0 && fn(ctx, path, start, buf_cstr(&logical),
	    error_r) == -1)
		goto out;
	rc = 0;
out:
	buf_deinit(&logical);
	free(line);
	fclose(fp);
	return rc;
}

int
table_rule_start(const char *path, int lineno, const char *line,
    enum table_rule_start *kind_r, bool *negate_r, const char **rest_r,
    char **error_r)
{
	const char *p = line;

	*kind_r = TABLE_RULE_MATCH;
	*negate_r = false;
	if (strncmp(p, "endif", 5) == 0 && (p[5] == '\0' ||
	    isspace((unsigned char)p[5]))) {
		for (p += 5; isspace((unsigned char)*p); p++)
			;
		if (*p != '\0') {
			*error_r = xasprintf("%s:%d: text after \"endif\"",
			    path, lineno);
			return -1;
		}
		*kind_r = TABLE_RULE_ENDIF;
		*rest_r = p;
		return 0;
	}
	if (strncmp(p, "if", 2) == 0 && isspace((unsigned char)p[2])) {
		*kind_r = TABLE_RULE_IF;
		for (p += 2; isspace((unsigned char)*p); p++)
			;
	}
	if (*p == '!') {
		*negate_r = true;
		p++;
	}
	*rest_r = p;
	return 0;
}

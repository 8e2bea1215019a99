/*
 * table_texthash.c - "texthash:/file": Postfix's postmap(1) input format
 * read straight into an in-memory hash table.
 *
 * Each logical line is "key whitespace value"; '#' comment lines, blank
 * lines and continuation lines (starting with whitespace) work as in
 * main.cf. Keys are folded to lower case, as Postfix does by default, so
 * lookups ignore case. For the password file of smtpd_sasl_password_maps
 * the "user: hash" form is accepted too: a colon that ends the key is
 * dropped (Postfix would keep it in the key and warn). A duplicate key
 * keeps its first value, as postmap does; it is logged.
 *
 * The table owns its keys and values and is read-only after loading.
 *
 * SPDX-License-Identifier: ISC
 */
#include <config.h>	/* autoconf's; this directory has its own config.h */

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "table.h"
#include "table-private.h"
#include "xmalloc.h"

struct texthash_entry {
	char	*key;		/* owned; lower case */
	char	*value;		/* owned */
	struct texthash_entry *next;	/* owned; bucket chain */
};

struct texthash {
	struct texthash_entry **buckets;	/* owned array */
	size_t	 nbuckets;	/* a power of two */
	size_t	 nentries;
};

/* texthash_hash - FNV-1a over the (already folded) key */
static uint32_t
texthash_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

static struct texthash_entry *
texthash_find(const struct texthash *th, const char *folded)
{
	struct texthash_entry *e;

	e = th->buckets[texthash_hash(folded) & (th->nbuckets - 1)];
	for (; e != NULL; e = e->next)
		if (strcmp(e->key, folded) == 0)
			return e;
	return NULL;
}

static void
texthash_grow(struct texthash *th)
{
	struct texthash_entry **nb, *e, *next;
	size_t i, n = th->nbuckets * 2;
	uint32_t h;

	nb = xcalloc(n, sizeof(*nb));
	for (i = 0; i < th->nbuckets; i++)
		for (e = th->buckets[i]; e != NULL; e = next) {
			next = e->next;
			h = texthash_hash(e->key) & (n - 1);
			e->next = nb[h];
			nb[h] = e;
		}
	free(th->buckets);
	th->buckets = nb;
	th->nbuckets = n;
}

/*
 * texthash_add - insert key/value (copied); returns false if the key
 * was already there (the first value stays).
 */
static bool
texthash_add(struct texthash *th, const char *key, const char *value)
{
	struct texthash_entry *e;
	uint32_t h;
	char *folded = table_fold_key(key);

	if (texthash_find(th, folded) != NULL) {
		free(folded);
		return false;
	}
	if (th->nentries >= th->nbuckets)
		texthash_grow(th);
	e = xcalloc(1, sizeof(*e));
	e->key = folded;
	e->value = xstrdup(value);
	h = texthash_hash(folded) & (th->nbuckets - 1);
	e->next = th->buckets[h];
	th->buckets[h] = e;
	th->nentries++;
	return true;
}

/* texthash_parse_line - one logical line "key value" into th */
static int
texthash_parse_line(void *ctx, const char *path, int lineno,
    const char *line, char **error_r)
{
	struct texthash *th = ctx;
	const char *p = line, *kend, *v, *vend;
	char *key, *value;

	while (*p != '\0' && !isspace((unsigned char)*p))
		p++;
	kend = p;
	while (isspace((unsigned char)*p))
		p++;
	v = p;
	vend = v + strlen(v);
	while (vend > v && isspace((unsigned char)vend[-1]))
		vend--;
	/* "user: hash" - the colon ends the key */
	if (kend > line + 1 && kend[-1] == ':')
		kend--;
	if (v == vend) {
		*error_r = xasprintf("%s:%d: expected format: key whitespace "
		    "value", path, lineno);
		return -1;
	}
	key = xstrndup(line, (size_t)(kend - line));
	value = xstrndup(v, (size_t)(vend - v));
	if (!texthash_add(th, key, value))
		log_warnx("%s:%d: duplicate entry \"%s\", keeping the first",
		    path, lineno, key);
	free(key);
	explicit_bzero(value, strlen(value));
	free(value);
	return 0;
}

static int
texthash_open(struct table *t, const char *path, char **error_r)
{
	struct texthash *th;

	th = xcalloc(1, sizeof(*th));
	th->nbuckets = 16;
	th->buckets = xcalloc(th->nbuckets, sizeof(*th->buckets));
	t->priv = th;
	return table_read_lines(path, texthash_parse_line, th, error_r);
}

static const char *
texthash_lookup(const struct table *t, const char *key)
{
	const struct texthash *th = t->priv;
	struct texthash_entry *e;
	char *folded = table_fold_key(key);

	e = texthash_find(th, folded);
	free(folded);
	return e != NULL ? e->value : NULL;
}

static void
texthash_free(struct table *t)
{
	struct texthash *th = t->priv;
	struct texthash_entry *e, *next;
	size_t i;

	for (i = 0; i < th->nbuckets; i++)
		for (e = th->buckets[i]; e != NULL; e = next) {
			next = e->next;
			free(e->key);
			/* the values are password hashes for AUTH */
			explicit_bzero(e->value, strlen(e->value));
			free(e->value);
			free(e);
		}
	free(th->buckets);
	free(th);
	t->priv = NULL;
}

const struct table_ops table_texthash_ops = {
	.type = "texthash",
	.open = texthash_open,
	.lookup = texthash_lookup,
	.lookup_dup = NULL,
	.lookup_addr = NULL,
	.free = texthash_free,
};

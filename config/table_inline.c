/*
 * table_inline.c - "inline:{ key=value, key2=value2 }": a small table
 * written inside main.cf (Postfix 3.0 syntax).
 *
 * Elements are separated by commas or whitespace; an element whose value
 * contains either is written in braces: "inline:{ {key = text, more} }".
 * Keys are compared without case. The element list is kept as an array
 * and searched linearly: inline tables are meant to be short.
 *
 * SPDX-License-Identifier: ISC
 */
#include <config.h>	/* autoconf's; this directory has its own config.h */

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cf_parse.h"
#include "table.h"
#include "table-private.h"
#include "xmalloc.h"

struct inline_pair {
	char	*key;		/* owned; lower case */
	char	*value;		/* owned */
};

struct inline_table {
	struct inline_pair *pairs;	/* owned array */
	size_t	 npairs;
};

/* inline_trim - copy of [s, e) without surrounding whitespace */
static char *
inline_trim(const char *s, const char *e)
{
	while (s < e && isspace((unsigned char)*s))
		s++;
	while (e > s && isspace((unsigned char)e[-1]))
		e--;
	return xstrndup(s, (size_t)(e - s));
}

static int
inline_open(struct table *t, const char *source, char **error_r)
{
	struct inline_table *it;
	const char *s, *e, *eq;
	char *body, **tokens = NULL, *err = NULL, *key;
	size_t n = strlen(source), i, ntok;
	int rc = -1;

	it = xcalloc(1, sizeof(*it));
	t->priv = it;
	if (n < 2 || source[0] != '{' || source[n - 1] != '}') {
		*error_r = xasprintf("inline:%s: expected inline:{ key=value, "
		    "... }", source);
		return -1;
	}
	body = xstrndup(source + 1, n - 2);
	if (cf_tokenize(body, &tokens, &ntok, &err) == -1) {
		*error_r = xasprintf("inline:%s: %s", source, err);
		free(err);
		goto out;
	}
	it->pairs = xcalloc(ntok + 1, sizeof(*it->pairs));
	for (i = 0; i < ntok; i++) {
		s = tokens[i];
		e = s + strlen(s);
		if (*s == '{') {
			/* "{ key = value with spaces }" */
			if (e[-1] != '}') {
				*error_r = xasprintf("inline:%s: \"%s\": "
				    "missing '}'", source, tokens[i]);
				goto out;
			}
			s++;
			e--;
		}
		if ((eq = memchr(s, '=', (size_t)(e - s))) == NULL) {
			*error_r = xasprintf("inline:%s: \"%s\": expected "
			    "key=value", source, tokens[i]);
			goto out;
		}
		key = inline_trim(s, eq);
		if (*key == '\0') {
			free(key);
			*error_r = xasprintf("inline:%s: \"%s\": empty key",
			    source, tokens[i]);
			goto out;
		}
		it->pairs[it->npairs].key = table_fold_key(key);
		free(key);
		it->pairs[it->npairs].value = inline_trim(eq + 1, e);
		it->npairs++;
	}
	rc = 0;
out:
	cf_tokens_free(&tokens);
	free(body);
	return rc;
}

static const char *
inline_lookup(const struct table *t, const char *key)
{
	const struct inline_table *it = t->priv;
	size_t i;

	/* first match wins, as for a duplicate key in texthash */
	for (i = 0; i < it->npairs; i++)
		if (strcasecmp(it->pairs[i].key, key) == 0)
			return it->pairs[i].value;
	return NULL;
}

static void
inline_free(struct table *t)
{
	struct inline_table *it = t->priv;
	size_t i;

	for (i = 0; i < it->npairs; i++) {
		free(it->pairs[i].key);
		free(it->pairs[i].value);
	}
	free(it->pairs);
	free(it);
	t->priv = NULL;
}

const struct table_ops table_inline_ops = {
	.type = "inline",
	.open = inline_open,
	.lookup = inline_lookup,
	.lookup_dup = NULL,
	.lookup_addr = NULL,
	.free = inline_free,
};

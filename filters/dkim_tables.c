/*
 * dkim_tables.c - loading and matching the DKIM signing and key tables
 * (dkim_tables.h describes the formats).
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "dkim_sign.h"
#include "dkim_tables.h"
#include "log.h"
#include "xmalloc.h"

struct sign_rule {
	char	*pattern;	/* owned; lower case */
	size_t	 key;		/* index into keys */
};

struct dkim_tables {
	struct dkim_keyent *keys;	/* owned array */
	size_t	 nkeys;
	struct sign_rule *rules;	/* owned array, file order */
	size_t	 nrules;
};

/* one logical line of a table file */
struct line {
	char	*key;		/* owned */
	char	*value;		/* owned */
	unsigned lineno;	/* of its first physical line */
};

static void
lines_free(struct line *l, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(l[i].key);
		free(l[i].value);
	}
	free(l);
}

/* split - "key  value" of a logical line; -1 without a value */
static int
split(const char *text, struct line *l)
{
	size_t n = strcspn(text, " \t");

	if (n == 0 || text[n] == '\0')
		return -1;
	l->key = xstrndup(text, n);
	text += n;
	text += strspn(text, " \t");
	l->value = xstrdup(text);
	n = strlen(l->value);
	while (n > 0 && isspace((unsigned char)l->value[n - 1]))
		l->value[--n] = '\0';
	return 0;
}

/* flush - the collected logical line as lines[*n]; -1 if it has no value */
static int
flush(struct buf *logical, unsigned start, struct line **lines, size_t *n)
{
	int rc;

	if (logical->len == 0)
		return 0;
	*lines = xreallocarray(*lines, *n + 1, sizeof(**lines));
	memset(&(*lines)[*n], 0, sizeof(**lines));
	(*lines)[*n].lineno = start;
	rc = split(buf_cstr(logical), &(*lines)[*n]);
	(*n)++;
	buf_reset(logical);
	return rc;
}

/* read_lines - the logical lines of a texthash file; -1 and *error_r */
static int
read_lines(const char *spec, struct line **lines_r, size_t *n_r,
    char **error_r)
{
	const char *path = spec + strlen("texthash:");
	struct line *lines = NULL;
	struct buf logical;
	char *raw = NULL, *text;
	size_t cap = 0, n = 0;
	unsigned lineno = 0, start = 0;
	FILE *fp;

	if ((fp = fopen(path, "r")) == NULL) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	buf_init(&logical, 0);
	*error_r = NULL;
	while (*error_r == NULL && getline(&raw, &cap, fp) != -1) {
		lineno++;
		raw[strcspn(raw, "\r\n")] = '\0';
		text = raw + strspn(raw, " \t");
		if (*text == '#' || *text == '\0')
			continue;
		if (text != raw) {
			if (logical.len == 0)
				*error_r = xasprintf("%s:%u: continuation line "
				    "without a line to continue", path, lineno);
			buf_append(&logical, " ", 1);
			buf_append(&logical, text, strlen(text));
			continue;
		}
		if (flush(&logical, start, &lines, &n) == -1)
			*error_r = xasprintf("%s:%u: expected \"key value\"",
			    path, start);
		start = lineno;
		buf_append(&logical, raw, strlen(raw));
	}
	if (*error_r == NULL && flush(&logical, start, &lines, &n) == -1)
		*error_r = xasprintf("%s:%u: expected \"key value\"", path,
		    start);
	free(raw);
	fclose(fp);
	buf_deinit(&logical);
	if (*error_r != NULL) {
		lines_free(lines, n);
		return -1;
	}
	*lines_r = lines;
	*n_r = n;
	return 0;
}

/*
 * Keys shared between configuration loads. A reload runs as mail_owner;
 * a key file only root may read (the usual mode) then cannot be read
 * again, so the key loaded before from the same path is kept, as the TLS
 * key is (a warning says so). Keys are counted: each table that uses one
 * holds a reference.
 */
struct held_key {
	char	*path;			/* owned */
	struct sign_key *key;		/* owned */
	unsigned refs;
	struct held_key *next;		/* owned */
};

static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;
static struct held_key *held;		/* newest first */

/* key_get - the key at path: read now, or kept from before if unreadable */
static struct sign_key *
key_get(const char *path, char **error_r)
{
	struct sign_key *key;
	struct held_key *h;
	int denied;

	key = sign_key_load(path, error_r);
	denied = key == NULL && access(path, R_OK) == -1 && errno == EACCES;
	h = NULL;
	pthread_mutex_lock(&held_lock);
	if (key != NULL) {
		h = xcalloc(1, sizeof(*h));
		h->path = xstrdup(path);
		h->key = key;
		h->next = held;
		held = h;
	} else if (denied)
		for (h = held; h != NULL; h = h->next)
			if (strcmp(h->path, path) == 0)
				break;
	if (h != NULL)
		h->refs++;
	pthread_mutex_unlock(&held_lock);
	if (key == NULL && denied && h != NULL) {
		log_warnx("dkim: %s: %s; keeping the key read from it before",
		    path, *error_r);
		free(*error_r);
		*error_r = NULL;
		return h->key;
	}
	return key;
}

/* key_put - drop a reference taken by key_get */
static void
key_put(struct sign_key *key)
{
	struct held_key **hp, *h;

	if (key == NULL)
		return;
	pthread_mutex_lock(&held_lock);
	for (hp = &held; (h = *hp) != NULL; hp = &h->next)
		if (h->key == key)
			break;
	if (h != NULL && --h->refs == 0)
		*hp = h->next;
	else
		h = NULL;
	pthread_mutex_unlock(&held_lock);
	if (h != NULL) {
		sign_key_free(&h->key);
		free(h->path);
		free(h);
	}
}

/* parse_keyent - "domain:selector:path" */
static int
parse_keyent(const char *path, const struct line *l, struct dkim_keyent *k,
    char **error_r)
{
	const char *v = l->value, *c1, *c2;

	if ((c1 = strchr(v, ':')) == NULL || (c2 = strchr(c1 + 1, ':')) ==
	    NULL || c1 == v || c2 == c1 + 1 || c2[1] != '/') {
		*error_r = xasprintf("%s:%u: expected \"keyname "
		    "domain:selector:/path/to/key\"", path, l->lineno);
		return -1;
	}
	k->name = xstrdup(l->key);
	k->domain = xstrndup(v, (size_t)(c1 - v));
	k->selector = xstrndup(c1 + 1, (size_t)(c2 - c1 - 1));
	k->path = xstrdup(c2 + 1);
	k->key = key_get(k->path, &k->error);
	if (k->key == NULL)
		log_warnx("dkim: key %s (%s): %s; mail it should sign follows "
		    "dkim_sign_failure_action", k->name, k->path, k->error);
	return 0;
}

static void
keyents_free(struct dkim_keyent *keys, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(keys[i].name);
		free(keys[i].domain);
		free(keys[i].selector);
		free(keys[i].path);
		key_put(keys[i].key);
		free(keys[i].error);
	}
	free(keys);
}

static int
load_keys(struct dkim_tables *t, const char *spec, char **error_r)
{
	const char *path = spec + strlen("texthash:");
	struct line *lines;
	size_t i, n;
	int rc = 0;

	if (read_lines(spec, &lines, &n, error_r) == -1)
		return -1;
	t->keys = xcalloc(n + 1, sizeof(*t->keys));
	for (i = 0; i < n && rc == 0; i++) {
		rc = parse_keyent(path, &lines[i], &t->keys[t->nkeys],
		    error_r);
		if (rc == 0)
			t->nkeys++;
	}
	lines_free(lines, n);
	return rc;
}

static int
load_rules(struct dkim_tables *t, const char *spec, char **error_r)
{
	const char *path = spec + strlen("texthash:");
	struct line *lines;
	size_t i, k, n;
	char *p;

	if (read_lines(spec, &lines, &n, error_r) == -1)
		return -1;
	t->rules = xcalloc(n + 1, sizeof(*t->rules));
	for (i = 0; i < n; i++) {
		for (k = 0; k < t->nkeys; k++)
			if (strcmp(t->keys[k].name, lines[i].value) == 0)
				break;
		if (k == t->nkeys) {
			*error_r = xasprintf("%s:%u: key \"%s\" is not in the "
			    "key table", path, lines[i].lineno,
			    lines[i].value);
			lines_free(lines, n);
			return -1;
		}
		t->rules[t->nrules].pattern = xstrdup(lines[i].key);
		for (p = t->rules[t->nrules].pattern; *p != '\0'; p++)
			*p = (char)tolower((unsigned char)*p);
		t->rules[t->nrules++].key = k;
	}
	lines_free(lines, n);
	return 0;
}

struct dkim_tables *
dkim_tables_load(const char *signing_spec, const char *key_spec,
    char **error_r)
{
	struct dkim_tables *t;

	t = xcalloc(1, sizeof(*t));
	if (load_keys(t, key_spec, error_r) == -1 ||
	    load_rules(t, signing_spec, error_r) == -1) {
		dkim_tables_free(&t);
		return NULL;
	}
	return t;
}

void
dkim_tables_free(struct dkim_tables **tp)
{
	struct dkim_tables *t = *tp;
	size_t i;

	if (t == NULL)
		return;
	keyents_free(t->keys, t->nkeys);
	for (i = 0; i < t->nrules; i++)
		free(t->rules[i].pattern);
	free(t->rules);
	free(t);
	*tp = NULL;
}

/* glob - pattern with "*" (any run) against s; both lower case */
static bool
glob(const char *pat, const char *s)
{
	const char *star = NULL, *resume = NULL;

	while (*s != '\0') {
		if (*pat == '*') {
			star = pat++;
			resume = s;
		} else if (*pat == *s) {
			pat++;
			s++;
		} else if (star != NULL) {
			pat = star + 1;
			s = ++resume;
		} else
			return false;
	}
	while (*pat == '*')
		pat++;
	return *pat == '\0';
}

/* matches - the pattern covers address (lower case) */
static bool
matches(const char *pattern, const char *address)
{
	const char *at = strrchr(address, '@');

	if (pattern[0] == '@')	/* "@example.org": the whole domain */
		return at != NULL && strcmp(at, pattern) == 0;
	if (strchr(pattern, '@') == NULL && strchr(pattern, '*') == NULL)
		return at != NULL && strcmp(at + 1, pattern) == 0;
	if (strchr(pattern, '@') == NULL && at != NULL)
		return glob(pattern, at + 1);	/* "*.example.org" */
	return glob(pattern, address);
}

size_t
dkim_tables_match(const struct dkim_tables *t, const char *address,
    const struct dkim_keyent **keys, size_t max)
{
	const char *winner = NULL;
	char *lower, *p;
	size_t i, n = 0;

	lower = xstrdup(address);
	for (p = lower; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	for (i = 0; i < t->nrules && n < max; i++) {
		if (winner == NULL && matches(t->rules[i].pattern, lower))
			winner = t->rules[i].pattern;
		if (winner != NULL && strcmp(winner, t->rules[i].pattern) == 0)
			keys[n++] = &t->keys[t->rules[i].key];
	}
	free(lower);
	return n;
}

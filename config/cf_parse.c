/*
 * cf_parse.c - the main.cf lexer.
 *
 * Owns the reading of a configuration file into (name, raw value, line)
 * entries, the $name expansion of values, and the splitting of list
 * values into tokens. It deliberately knows no parameter names, types or
 * defaults: schema.c and config.c supply those through the lookup
 * callback of cf_expand().
 *
 * The syntax is that of Postfix main.cf (postconf(5)), so that an
 * administrator's habits carry over: a logical line starts in column 1,
 * continuation lines start with whitespace, '#' comments only at the
 * start of a line, and "$$" for a literal dollar sign.
 *
 * SPDX-License-Identifier: ISC
 */
#include <config.h>	/* autoconf's; this directory has its own config.h */

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cf_parse.h"
#include "xmalloc.h"

/* how deep $a -> $b -> ... may go before we call it a loop anyway */
#define CF_EXPAND_MAX_DEPTH	64
#define CF_EXPAND_MAX_LEN	65536	/* bytes of one expanded value */

static bool
cf_is_name_char(int c)
{
	return isalnum((unsigned char)c) || c == '_';
}

/* cf_add_entry - parse one logical line "name = value" into cf */
static int
cf_add_entry(struct cf_file *cf, const char *line, int lineno, char **error_r)
{
	const char *p = line, *name, *value, *end;
	struct cf_entry *e;
	size_t namelen;

	name = p;
	while (cf_is_name_char(*p))
		p++;
	namelen = (size_t)(p - name);
	if (namelen == 0) {
		*error_r = xasprintf("%s:%d: expected a parameter name",
		    cf->path, lineno);
		return -1;
	}
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '=') {
		*error_r = xasprintf("%s:%d: missing '=' after parameter "
		    "name \"%.*s\"", cf->path, lineno, (int)namelen, name);
		return -1;
	}
	p++;
	while (isspace((unsigned char)*p))
		p++;
	value = p;
	end = value + strlen(value);
	while (end > value && isspace((unsigned char)end[-1]))
		end--;

	cf->entries = xreallocarray(cf->entries, cf->nentries + 1,
	    sizeof(*cf->entries));
	e = &cf->entries[cf->nentries++];
	e->name = xstrndup(name, namelen);
	e->value = xstrndup(value, (size_t)(end - value));
	e->line = lineno;
	return 0;
}

/* cf_is_blank_or_comment - Postfix ignores these even between continuations */
static bool
cf_is_blank_or_comment(const char *s)
{
	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	return *s == '\0' || *s == '#';
}

/*
 * cf_parse_lines - the common body of cf_parse_file and cf_parse_text:
 * feed physical lines one at a time through next(), assemble logical
 * lines, and hand each to cf_add_entry.
 */
typedef char *(*cf_next_fn)(void *ctx);

static int
cf_parse_lines(struct cf_file *cf, cf_next_fn next, void *ctx,
    char **error_r)
{
	struct buf logical;
	char *raw;
	int lineno = 0, start = 0, rc = 0;
	size_t n;

	buf_init(&logical, 0);
	while ((raw = next(ctx)) != NULL) {
		lineno++;
		n = strlen(raw);
		while (n > 0 && (raw[n - 1] == '\n' || raw[n - 1] == '\r'))
			raw[--n] = '\0';
		if (cf_is_blank_or_comment(raw))
			continue;
		if (raw[0] == ' ' || raw[0] == '\t') {
			if (start == 0) {
				*error_r = xasprintf("%s:%d: logical line must "
				    "not start with whitespace", cf->path,
				    lineno);
				rc = -1;
				goto out;
			}
			/* join continuation text with one space */
			while (*raw == ' ' || *raw == '\t')
				raw++;
			buf_append_str(&logical, " ");
			buf_append_str(&logical, raw);
			continue;
		}
		if (start != 0 && cf_add_entry(cf, buf_cstr(&logical), start,
		    error_r) == -1) {
			rc = -1;
			goto out;
		}
		buf_reset(&logical);
		buf_append_str(&logical, raw);
		start = lineno;
	}
	if (start != 0 && cf_add_entry(cf, buf_cstr(&logical), start,
	    error_r) == -1)
		rc = -1;
out:
	buf_deinit(&logical);
	return rc;
}

struct cf_file_reader {
	FILE	*fp;		/* borrowed */
	char	*line;		/* owned; getline's buffer */
	size_t	 cap;
	int	 error;		/* errno of a read error */
};

static char *
cf_next_file_line(void *ctx)
{
	struct cf_file_reader *r = ctx;

	errno = 0;
	if (getline(&r->line, &r->cap, r->fp) == -1) {
		if (ferror(r->fp))
			r->error = errno != 0 ? errno : EIO;
		return NULL;
	}
	return r->line;
}

int
cf_parse_file(const char *path, struct cf_file **cf_r, char **error_r)
{
	struct cf_file_reader r = { NULL, NULL, 0, 0 };
	struct cf_file *cf;
	int rc;

	*cf_r = NULL;
	if ((r.fp = fopen(path, "r")) == NULL) {
		*error_r = xasprintf("%s: cannot open: %s", path,
		    strerror(errno));
		return -1;
	}
	cf = xcalloc(1, sizeof(*cf));
	cf->path = xstrdup(path);
	rc = cf_parse_lines(cf, cf_next_file_line, &r, error_r);
	if (rc == 0 && r.error != 0) {
		*error_r = xasprintf("%s: read error: %s", path,
		    strerror(r.error));
		rc = -1;
	}
	free(r.line);
	fclose(r.fp);
	if (rc == -1) {
		cf_file_free(&cf);
		return -1;
	}
	*cf_r = cf;
	return 0;
}

struct cf_text_reader {
	const char *p;		/* borrowed; next unread byte */
	char	*line;		/* owned; the current line */
};

static char *
cf_next_text_line(void *ctx)
{
	struct cf_text_reader *r = ctx;
	const char *nl;

	free(r->line);
	r->line = NULL;
	if (*r->p == '\0')
		return NULL;
	if ((nl = strchr(r->p, '\n')) == NULL)
		nl = r->p + strlen(r->p);
	r->line = xstrndup(r->p, (size_t)(nl - r->p));
	r->p = *nl == '\n' ? nl + 1 : nl;
	return r->line;
}

int
cf_parse_text(const char *label, const char *text, struct cf_file **cf_r,
    char **error_r)
{
	struct cf_text_reader r = { text, NULL };
	struct cf_file *cf;
	int rc;

	cf = xcalloc(1, sizeof(*cf));
	cf->path = xstrdup(label);
	rc = cf_parse_lines(cf, cf_next_text_line, &r, error_r);
	free(r.line);
	if (rc == -1) {
		cf_file_free(&cf);
		*cf_r = NULL;
		return -1;
	}
	*cf_r = cf;
	return 0;
}

void
cf_file_free(struct cf_file **cfp)
{
	struct cf_file *cf = *cfp;
	size_t i;

	if (cf == NULL)
		return;
	for (i = 0; i < cf->nentries; i++) {
		free(cf->entries[i].name);
		free(cf->entries[i].value);
	}
	free(cf->entries);
	free(cf->path);
	free(cf);
	*cfp = NULL;
}

const struct cf_entry *
cf_file_find(const struct cf_file *cf, const char *name)
{
	size_t i;

	for (i = cf->nentries; i > 0; i--)
		if (strcmp(cf->entries[i - 1].name, name) == 0)
			return &cf->entries[i - 1];
	return NULL;
}

/* the state of one cf_expand call: the chain of names being expanded */
struct cf_expander {
	cf_lookup_fn lookup;
	void	*ctx;
	const char *stack[CF_EXPAND_MAX_DEPTH];	/* borrowed: names */
	size_t	 depth;
	char	*error;		/* owned; first error */
};

static int cf_expand_into(struct cf_expander *, const char *, struct buf *);

/* cf_loop_error - describe the loop "a -> b -> a" that name closes */
static void
cf_loop_error(struct cf_expander *x, const char *name)
{
	struct buf b;
	size_t i;

	buf_init(&b, 0);
	buf_append_str(&b, "parameter loop: ");
	for (i = 0; i < x->depth; i++)
		buf_printf(&b, "$%s -> ", x->stack[i]);
	buf_printf(&b, "$%s", name);
	x->error = buf_steal(&b);
	buf_deinit(&b);
}

/* cf_expand_name - append the expansion of parameter name to out */
static int
cf_expand_name(struct cf_expander *x, const char *name, struct buf *out)
{
	const char *raw;
	size_t i;
	int rc;

	for (i = 0; i < x->depth; i++)
		if (strcmp(x->stack[i], name) == 0) {
			cf_loop_error(x, name);
			return -1;
		}
	if (x->depth == CF_EXPAND_MAX_DEPTH) {
		x->error = xasprintf("$%s: expansion nested too deeply", name);
		return -1;
	}
	if ((raw = x->lookup(x->ctx, name)) == NULL) {
		x->error = xasprintf("undefined parameter $%s", name);
		return -1;
	}
	x->stack[x->depth++] = name;
	rc = cf_expand_into(x, raw, out);
	x->depth--;
	/* "$a$a" nested 40 deep is 2^40 bytes: stop long before that */
	if (rc == 0 && out->len > CF_EXPAND_MAX_LEN) {
		x->error = xasprintf("$%s: expansion longer than %d bytes",
		    name, CF_EXPAND_MAX_LEN);
		return -1;
	}
	return rc;
}

/*
 * cf_expand_braced - handle ${name}, ${name?text}, ${name:text} and the
 * same with parentheses; *pp points just past the opening bracket and is
 * advanced past the closing one.
 */
static int
cf_expand_braced(struct cf_expander *x, const char **pp, char close,
    struct buf *out)
{
	const char *p = *pp, *start = p, *text = NULL;
	struct buf val;
	char *name, op = '\0', opening = close == '}' ? '{' : '(';
	int depth = 1, rc = -1;
	size_t textlen = 0;

	while (cf_is_name_char(*p))
		p++;
	if (p == start) {
		x->error = xstrdup("empty parameter name after '$'");
		return -1;
	}
	name = xstrndup(start, (size_t)(p - start));
	if (*p == '?' || *p == ':') {
		op = *p++;
		text = p;
		/* the text may itself contain ${...}; find our own close */
		for (; *p != '\0'; p++) {
			if (*p == opening)
				depth++;
			else if (*p == close && --depth == 0)
				break;
		}
		textlen = (size_t)(p - text);
	}
	if (*p != close) {
		x->error = xasprintf("missing '%c' after $%c%s", close,
		    opening, name);
		goto out;
	}
	*pp = p + 1;
	if (op == '\0') {
		rc = cf_expand_name(x, name, out);
		goto out;
	}
	/* conditional: expand the parameter to see whether it is empty */
	buf_init(&val, 0);
	rc = cf_expand_name(x, name, &val);
	if (rc == 0 && (val.len != 0) == (op == '?')) {
		char *t = xstrndup(text, textlen);

		rc = cf_expand_into(x, t, out);
		free(t);
	}
	buf_deinit(&val);
out:
	free(name);
	return rc;
}

/* cf_expand_into - append the expansion of text to out */
static int
cf_expand_into(struct cf_expander *x, const char *text, struct buf *out)
{
	const char *p = text, *start;
	char *name;
	int rc;

	while (*p != '\0') {
		if (*p != '$') {
			start = p;
			while (*p != '\0' && *p != '$')
				p++;
			buf_append(out, start, (size_t)(p - start));
			continue;
		}
		p++;
		if (*p == '$') {
			buf_append(out, "$", 1);
			p++;
		} else if (*p == '{' || *p == '(') {
			char close = *p == '{' ? '}' : ')';

			p++;
			if (cf_expand_braced(x, &p, close, out) == -1)
				return -1;
		} else if (cf_is_name_char(*p)) {
			start = p;
			while (cf_is_name_char(*p))
				p++;
			name = xstrndup(start, (size_t)(p - start));
			rc = cf_expand_name(x, name, out);
			free(name);
			if (rc == -1)
				return -1;
		} else {
			x->error = xstrdup("'$' must be followed by a "
			    "parameter name (write $$ for a dollar sign)");
			return -1;
		}
	}
	return 0;
}

int
cf_expand(const char *text, cf_lookup_fn lookup, void *ctx, char **out_r,
    char **error_r)
{
	struct cf_expander x;
	struct buf out;

	memset(&x, 0, sizeof(x));
	x.lookup = lookup;
	x.ctx = ctx;
	buf_init(&out, 0);
	if (cf_expand_into(&x, text, &out) == -1) {
		buf_deinit(&out);
		*error_r = x.error;
		*out_r = NULL;
		return -1;
	}
	*out_r = buf_steal(&out);
	buf_deinit(&out);
	return 0;
}

static bool
cf_is_sep(int c)
{
	return c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int
cf_tokenize(const char *text, char ***tokens_r, size_t *n_r, char **error_r)
{
	const char *p = text, *start;
	char **tokens = NULL;
	size_t n = 0;
	int depth;

	for (;;) {
		while (cf_is_sep(*p))
			p++;
		if (*p == '\0')
			break;
		start = p;
		depth = 0;
		while (*p != '\0' && (depth > 0 || !cf_is_sep(*p))) {
			if (*p == '{')
				depth++;
			else if (*p == '}' && --depth < 0)
				break;
			p++;
		}
		if (depth != 0) {
			*error_r = xasprintf("unbalanced '%c' in \"%s\"",
			    depth > 0 ? '{' : '}', start);
			tokens = xreallocarray(tokens, n + 1, sizeof(*tokens));
			tokens[n] = NULL;
			cf_tokens_free(&tokens);
			return -1;
		}
		tokens = xreallocarray(tokens, n + 2, sizeof(*tokens));
		tokens[n++] = xstrndup(start, (size_t)(p - start));
	}
	if (tokens == NULL)
		tokens = xcalloc(1, sizeof(*tokens));
	tokens[n] = NULL;
	*tokens_r = tokens;
	if (n_r != NULL)
		*n_r = n;
	return 0;
}

void
cf_tokens_free(char ***tokensp)
{
	char **t = *tokensp;
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; t[i] != NULL; i++)
		free(t[i]);
	free(t);
	*tokensp = NULL;
}

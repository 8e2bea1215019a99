/*
 * cf_parse.h - the main.cf lexer: logical lines, "name = value" entries,
 * $name expansion and list tokenizing.
 *
 * This layer knows nothing about which parameters exist or what their
 * values mean (schema.c does); it turns text into (name, raw value, line)
 * triples and expands $name references through a caller-supplied lookup.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_CF_PARSE_H
#define POSTERN_CF_PARSE_H

#include <stddef.h>

struct cf_entry {
	char	*name;		/* owned */
	char	*value;		/* owned; raw, before $ expansion */
	int	 line;		/* where the logical line starts */
};

struct cf_file {
	char	*path;			/* owned */
	struct cf_entry *entries;	/* owned array, in file order */
	size_t	 nentries;
};

/*
 * cf_parse_file - read a main.cf-style file. Logical lines start with
 * non-whitespace; a line starting with whitespace continues the previous
 * one; lines whose first non-whitespace byte is '#' are comments (a '#'
 * elsewhere is part of the value, as in Postfix). Returns 0 and a new
 * cf_file in *cf_r, or -1 and *error_r = "path:line: reason" (caller
 * frees).
 */
int	cf_parse_file(const char *path, struct cf_file **cf_r,
	    char **error_r);
/* cf_parse_text - the same for text in memory; label names it in errors */
int	cf_parse_text(const char *label, const char *text,
	    struct cf_file **cf_r, char **error_r);
void	cf_file_free(struct cf_file **);
/* cf_file_find - the last entry for name (later entries override), or NULL */
const struct cf_entry *cf_file_find(const struct cf_file *, const char *name);

/*
 * cf_lookup_fn - the raw (unexpanded) value of parameter name, or NULL
 * if there is no such parameter. The string is lent until the expansion
 * returns.
 */
typedef const char *(*cf_lookup_fn)(void *ctx, const char *name);

/*
 * cf_expand - expand $name, ${name}, $(name), ${name?text} (text if name
 * is not empty), ${name:text} (text if name is empty) and $$ in text.
 * Values found through lookup are expanded recursively; a parameter that
 * refers back to itself is an error naming the loop. Returns 0 and the
 * expansion in *out_r (caller frees), or -1 and *error_r (caller frees,
 * without a "path:line: " prefix).
 */
int	cf_expand(const char *text, cf_lookup_fn lookup, void *ctx,
	    char **out_r, char **error_r);

/*
 * cf_tokenize - split a list value at commas and whitespace. A token that
 * contains '{' runs to the matching '}' whatever it contains, so that
 * "inline:{ a=b, c=d }" stays one token. Returns 0 and a NULL-terminated
 * array of owned strings (free with cf_tokens_free) and its length, or -1
 * and *error_r (caller frees) on unbalanced braces.
 */
int	cf_tokenize(const char *text, char ***tokens_r, size_t *n_r,
	    char **error_r);
void	cf_tokens_free(char ***);

#endif

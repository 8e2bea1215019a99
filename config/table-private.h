/*
 * table-private.h - what the table backends (table_*.c), the dispatcher
 * (table.c) and match lists (matchlist.c) share inside config/.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_TABLE_PRIVATE_H
#define POSTERN_TABLE_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct table;

/*
 * One backend. open parses the source (a file path, or "{...}" for
 * inline) and sets t->priv; it returns -1 with *error_r ("path:line:
 * reason", caller frees) on error. lookup_dup returns an owned string or
 * NULL; lookup may be NULL when every result needs building (pcre), and
 * lookup_addr may be NULL when the table only knows strings.
 */
struct table_ops {
	const char *type;
	int	(*open)(struct table *, const char *source, char **error_r);
	const char *(*lookup)(const struct table *, const char *key);
	char	*(*lookup_dup)(const struct table *, const char *key);
	const char *(*lookup_addr)(const struct table *,
		    const struct sockaddr *);
	void	(*free)(struct table *);
};

struct table {
	const struct table_ops *ops;	/* borrowed: static */
	char	*spec;			/* owned; "type:source" */
	void	*priv;			/* owned by the backend */
};

extern const struct table_ops table_texthash_ops;
extern const struct table_ops table_cidr_ops;
extern const struct table_ops table_pcre_ops;
extern const struct table_ops table_inline_ops;

/*
 * A network (or single address) in binary. IPv4 is kept as 4 bytes with
 * family AF_INET; IPv4-mapped IPv6 addresses are turned into IPv4 before
 * matching so that ::ffff:192.0.2.1 matches 192.0.2.0/24.
 */
struct cidr {
	int	 family;	/* AF_INET or AF_INET6 */
	uint8_t	 addr[16];
	unsigned int prefix;	/* bits */
};

/*
 * cidr_parse - "192.0.2.0/24", "192.0.2.1", "[2001:db8::]/32",
 * "2001:db8::1", "[::1]". Host bits beyond the prefix must be zero.
 * Returns 0, or -1 with *error_r (caller frees, no path prefix).
 */
int	cidr_parse(const char *text, struct cidr *, char **error_r);
/* cidr_addr_from_sockaddr - the address of sa as a /32 or /128 cidr */
int	cidr_addr_from_sockaddr(const struct sockaddr *, struct cidr *);
/* cidr_addr_from_string - a bare address (brackets allowed) as a host cidr */
int	cidr_addr_from_string(const char *, struct cidr *);
/* cidr_match - does address a (a host cidr) fall inside network n */
bool	cidr_match(const struct cidr *n, const struct cidr *a);

/*
 * table_line_fn - called with each logical line of a table file (comments
 * and blank lines skipped, continuation lines joined with one space) and
 * the number of the physical line where it starts; returns 0 or -1 with
 * *error_r set (caller frees).
 */
typedef int (*table_line_fn)(void *ctx, const char *path, int lineno,
	    const char *line, char **error_r);

/*
 * table_read_lines - read path logical line by logical line, the way
 * Postfix reads its table files. Returns 0, or -1 with *error_r
 * ("path: reason" or what fn set; caller frees).
 */
int	table_read_lines(const char *path, table_line_fn fn, void *ctx,
	    char **error_r);

/* the start of a cidr or pcre rule line (Postfix: if/endif blocks, "!") */
enum table_rule_start {
	TABLE_RULE_MATCH,	/* an ordinary rule */
	TABLE_RULE_IF,		/* "if PATTERN": a block follows */
	TABLE_RULE_ENDIF,	/* "endif": nothing else on the line */
};

/*
 * table_rule_start - recognize "endif", "if " and "!" at the start of
 * line; *rest_r points past them (at the pattern), *negate_r tells "!".
 * -1 and *error_r ("path:line: ...") for text after "endif".
 */
int	table_rule_start(const char *path, int lineno, const char *line,
	    enum table_rule_start *kind_r, bool *negate_r, const char **rest_r,
	    char **error_r);

/* table_fold_key - lowercase copy of key (caller frees) */
char	*table_fold_key(const char *key);

#endif

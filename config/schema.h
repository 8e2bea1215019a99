/*
 * schema.h - one typed row per configuration parameter.
 *
 * The schema is the single list of parameters: config.c walks it to load
 * and print, doc/configuration.md documents it row by row. A row names
 * the parameter, its type, its default (main.cf text, expanded like a
 * value from the file), bounds, and the field of struct config that
 * receives the converted value.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_SCHEMA_H
#define POSTERN_SCHEMA_H

#include <stddef.h>

#include "buf.h"
#include "config.h"

enum schema_type {
	SCHEMA_STRING,		/* char *; empty -> NULL */
	SCHEMA_BOOL,		/* bool; yes/no */
	SCHEMA_SIZE,		/* size_t or int; bytes */
	SCHEMA_COUNT,		/* size_t or int; a number of things */
	SCHEMA_TIME,		/* int seconds; Postfix units s m h d w */
	SCHEMA_DOMAIN_LIST,	/* struct matchlist *, MATCHLIST_DOMAIN */
	SCHEMA_ADDRESS_LIST,	/* struct matchlist *, MATCHLIST_ADDRESS */
	SCHEMA_TABLE,		/* struct table *; empty -> NULL */
	SCHEMA_LIST,		/* char **, NULL-terminated */
	SCHEMA_LISTEN,		/* struct listen_spec * + nlisten */
	SCHEMA_NEXTHOP,		/* struct nexthop */
};

/* the value must not be empty */
#define SCHEMA_F_NONEMPTY	0x01
/* the default is computed by config.c (def is NULL) */
#define SCHEMA_F_COMPUTED	0x02
/* the value must be an absolute path */
#define SCHEMA_F_ABSPATH	0x04

/*
 * schema_check_fn - extra validation of an expanded string value; returns
 * 0 or -1 with *error_r (caller frees).
 */
typedef int (*schema_check_fn)(const char *value, char **error_r);

struct schema_param {
	const char *name;
	enum schema_type type;
	const char *def;	/* default main.cf text; NULL if computed */
	long long min, max;	/* SIZE, COUNT, TIME (in seconds) */
	char	 unit;		/* TIME: unit of a bare number */
	unsigned int flags;	/* SCHEMA_F_* */
	schema_check_fn check;	/* STRING: extra validation, or NULL */
	size_t	 offset;	/* of the field in struct config */
	size_t	 size;		/* of that field */
};

/* the rows, sorted by name */
extern const struct schema_param schema_params[];
extern const size_t schema_nparams;

/* schema_find - the row for name, or NULL */
const struct schema_param *schema_find(const char *name);

/*
 * schema_set - convert the expanded value text and store it in the
 * row's field of cfg (which must be empty: freshly zeroed or cleared).
 * Returns 0, or -1 with *error_r (caller frees; the message does not
 * repeat the parameter name or the file position).
 */
int	schema_set(const struct schema_param *, struct config *cfg,
	    const char *value, char **error_r);
/* schema_clear - free whatever schema_set stored in cfg for the row */
void	schema_clear(const struct schema_param *, struct config *cfg);
/* schema_format - append the effective value in main.cf syntax */
void	schema_format(const struct schema_param *, const struct config *cfg,
	    struct buf *out);

#endif

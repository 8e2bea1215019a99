/*
 * table.h - lookup tables named "type:path", reading Postfix's formats.
 *
 *   texthash:/file  "key value" lines (key ends at whitespace or a colon
 *                   followed by whitespace), # comments, continuation lines
 *                   beginning with whitespace; keys compared without case.
 *   cidr:/file      "network/len result" lines, first match wins, IPv4 and
 *                   IPv6, optional [brackets] around IPv6 networks.
 *   pcre:/file      "/regex/flags result" lines, if/endif blocks, !/re/,
 *                   first match wins; default flags "i" (see notes).
 *   inline:{ k=v, k2=v2 }  inline table in main.cf.
 *
 * A table is read once when the configuration loads and is read-only
 * afterwards; lookups are safe from any thread.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_TABLE_H
#define POSTERN_TABLE_H

#include <stdbool.h>
#include <sys/socket.h>

struct table;

/*
 * table_open - load "type:path". On error returns NULL and sets *error_r
 * to "path:line: reason" (caller must free it).
 */
struct table *table_open(const char *spec, char **error_r);
void	table_free(struct table **);
/* table_spec - the "type:path" it was opened from (lent) */
const char *table_spec(const struct table *);
/*
 * table_lookup - value for key, or NULL when absent. The value is lent
 * until the table is freed; for pcre tables with $1 substitutions the
 * caller must use table_lookup_dup instead.
 */
const char *table_lookup(const struct table *, const char *key);
/* table_lookup_dup - like table_lookup, result owned by the caller */
char	*table_lookup_dup(const struct table *, const char *key);
/* table_lookup_addr - cidr (or any) table lookup by client address */
const char *table_lookup_addr(const struct table *, const struct sockaddr *);

#endif

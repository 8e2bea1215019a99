/*
 * dkim_tables.h - the DKIM signing table and key table, in OpenDKIM's
 * SigningTable/KeyTable formats, loaded once per configuration.
 *
 *   signing table: "pattern  keyname" lines. A pattern is an address
 *                  ("alice@example.org"), a domain ("example.org": any
 *                  address in it), or a wildcard ("*@example.org",
 *                  "*.example.org", "*"). Lines are tried in file order;
 *                  the first matching pattern wins, with every line that
 *                  repeats the same pattern: several keys for one sender
 *                  sign it several times (rsa and ed25519, or the old and
 *                  the new selector during a rotation).
 *   key table:     "keyname  domain:selector:/path/to/private.key"; a
 *                  domain of "%" means the sender's own domain.
 *
 * Both read like texthash: "#" comments, blank lines ignored, lines that
 * start with whitespace continue the previous one.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_DKIM_TABLES_H
#define POSTERN_DKIM_TABLES_H

#include <stddef.h>

struct sign_key;

struct dkim_keyent {
	char	*name;		/* owned */
	char	*domain;	/* owned; "%": the sender's domain */
	char	*selector;	/* owned */
	char	*path;		/* owned */
	struct sign_key *key;	/* owned; NULL when it could not be read */
	char	*error;		/* owned; why key is NULL */
};

struct dkim_tables;

/*
 * dkim_tables_load - read both tables ("texthash:/path" specs) and every
 * key. A syntax error or a signing-table line naming an unknown key is an
 * error ("path:line: reason", owned); a key that cannot be read is not:
 * the entry keeps key NULL and the reason (logged as a warning here), and
 * messages that need it follow dkim_sign_failure_action.
 */
struct dkim_tables *dkim_tables_load(const char *signing_spec,
	    const char *key_spec, char **error_r);
void	dkim_tables_free(struct dkim_tables **);

/*
 * dkim_tables_match - the keys that sign mail from address (the From:
 * header's address): up to max entries into keys (lent). Returns how many
 * (0: the signing table has no line for it).
 */
size_t	dkim_tables_match(const struct dkim_tables *, const char *address,
	    const struct dkim_keyent **keys, size_t max);

#endif

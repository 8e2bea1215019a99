/*
 * matchlist.h - Postfix-style match lists: mynetworks, mydestination,
 * relay_domains.
 *
 * A list is written "a, b c" (commas and/or whitespace); an element is
 *   - a pattern: a domain ("example.com", ".example.com" for subdomains)
 *     or a network ("192.0.2.0/24", "[2001:db8::]/32", "127.0.0.1");
 *   - "type:path", a table whose keys are looked up (domain lists) or a
 *     cidr table matched against the address (address lists);
 *   - "/path/file", whose lines are more elements;
 *   - "!element" negates: the first matching element decides.
 * Domain comparison ignores case and one trailing dot.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_MATCHLIST_H
#define POSTERN_MATCHLIST_H

#include <stdbool.h>
#include <sys/socket.h>

enum matchlist_kind {
	MATCHLIST_DOMAIN,
	MATCHLIST_ADDRESS,
};

struct matchlist;

/* matchlist_new - parse a list; NULL and *error_r (caller frees) on error */
struct matchlist *matchlist_new(enum matchlist_kind, const char *text,
	    char **error_r);
void	matchlist_free(struct matchlist **);
/* matchlist_match_domain - true if domain (no trailing dot needed) is listed */
bool	matchlist_match_domain(const struct matchlist *, const char *domain);
bool	matchlist_match_addr(const struct matchlist *, const struct sockaddr *);
/* matchlist_text - the list as written (lent), for -P */
const char *matchlist_text(const struct matchlist *);

#endif

/*
 * address.h - canonical forms of envelope addresses.
 *
 * The SMTP parser hands out mailboxes as the client wrote them (quotes,
 * case and trailing dot included). Routing decisions - is this domain
 * ours, does this local part hide another destination - and the spool
 * need one canonical form; this module makes it.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_ADDRESS_H
#define POSTERN_ADDRESS_H

#include <stdbool.h>

struct address {
	char	*local;		/* owned; local part with quoting removed */
	char	*domain;	/* owned; canonical domain, "" when none */
	bool	 is_quoted;	/* the local part was a quoted-string */
	bool	 is_literal;	/* the domain is an address literal [..] */
	int	 literal_family;/* AF_INET, AF_INET6, or 0 (general/invalid) */
};

/*
 * address_parse - split mailbox into local part and domain.
 *
 * mailbox is a path without angle brackets, e.g. "user@Example.COM.",
 * "\"a b\"@example.com", "postmaster", "" (the null sender). A source
 * route ("@a,@b:user@c") is dropped, as RFC 5321 4.1.1.3 allows. The
 * domain is everything after the last "@" outside quotes (so "a@b@c" has
 * local part "a@b", which address_has_routing() reports), lower-cased
 * (ASCII only: UTF-8 U-labels are kept as sent), with one trailing dot
 * removed. Address literals are kept in brackets and rewritten to
 * "[192.0.2.1]" and "[ipv6:2001:db8::1]" (the inet_ntop(3) form) so that
 * spellings of the same address compare equal.
 *
 * Returns 0 and fills *addr_r (which the caller releases with
 * address_deinit), or -1 with *error_r (static text) when the mailbox
 * cannot be split: an unterminated quote, text after a closing quote other
 * than "@domain", an empty domain after "@", or a bad source route.
 */
int	address_parse(const char *mailbox, struct address *addr_r,
	    const char **error_r);
void	address_deinit(struct address *);

/*
 * address_has_routing - true if the local part (after unquoting) contains
 * "@", "%" or "!": the percent hack, bang paths and quoted addresses that
 * some software would forward to another destination.
 */
bool	address_has_routing(const struct address *);

/*
 * address_canonical - "local@domain" (or "local" without a domain) in
 * canonical form, quoting the local part only where RFC 5321 requires it
 * (it is not a Dot-string). The caller owns the returned string.
 */
char	*address_canonical(const struct address *);

/*
 * address_domain_canonical - the canonical form of a bare domain or
 * address literal, as address_parse() makes it. The caller owns it.
 */
char	*address_domain_canonical(const char *domain);

#endif

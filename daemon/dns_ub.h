/*
 * dns_ub.h - one setup of a libunbound context for both resolvers: the
 * loops' asynchronous one (dns.c) and the blocking one off the loops
 * (dns_sync.c).
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_DNS_UB_H
#define POSTERN_DNS_UB_H

struct ub_ctx;

/*
 * dns_ub_configure - forward to resolver ("IP@PORT", "IP"; NULL or "":
 * /etc/resolv.conf and /etc/hosts) and make the local zones libunbound
 * would answer itself transparent where our lookups need the resolver.
 * Call before the first resolve (options fail after it, notes 7.3).
 * Returns 0, or -1 with *error_r (static text).
 */
int	dns_ub_configure(struct ub_ctx *, const char *resolver,
	    const char **error_r);

#endif

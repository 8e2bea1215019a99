/*
 * dns.h - asynchronous DNS on one event loop (libunbound).
 *
 * One struct dns per event loop; every lookup and every callback happens
 * on that loop's thread. Callbacks are always called from the event
 * loop, never from inside dns_lookup_*(), and never after dns_cancel().
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_DNS_H
#define POSTERN_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct event_base;
struct dns;
struct dns_lookup;

enum dns_status {
	DNS_OK,			/* answers in the result */
	DNS_NXDOMAIN,		/* the name does not exist */
	DNS_NODATA,		/* the name exists, without such records */
	DNS_TEMPFAIL,		/* SERVFAIL, timeout, malformed answer */
	DNS_NULLMX,		/* RFC 7505 "MX 0 ." : accepts no mail */
};

struct dns_mx {
	unsigned pref;
	char	*host;		/* owned by the result; no trailing dot */
};

struct dns_mx_result {
	enum dns_status status;
	const char *error;	/* text for logs when status != DNS_OK */
	struct dns_mx *mx;	/* sorted by pref; equal prefs shuffled */
	size_t	 nmx;
	bool	 implicit;	/* no MX: RFC 5321 5.1 implicit MX (pref 0) */
};

struct dns_addr_result {
	enum dns_status status;
	const char *error;
	struct sockaddr_storage *addrs;	/* port 0; IPv4 first, then IPv6 */
	size_t	 naddrs;
};

/* Results are lent to the callback only; copy what you keep. */
typedef void (*dns_mx_fn)(const struct dns_mx_result *, void *arg);
typedef void (*dns_addr_fn)(const struct dns_addr_result *, void *arg);

/*
 * dns_new - a resolver on base. resolver is "IP@PORT", "IP" (port 53) or
 * NULL for /etc/resolv.conf and /etc/hosts. The ".test" zone (RFC 6761)
 * is always resolved through the configured server, for tests. Returns
 * NULL and sets *error_r (static text) on failure.
 */
struct dns *dns_new(struct event_base *base, const char *resolver,
	    const char **error_r);
/*
 * dns_free - cancel every pending lookup (their callbacks are never
 * called) and free the resolver. Accepts NULL; sets *dnsp to NULL.
 */
void	dns_free(struct dns **dnsp);
/* dns_set_timeout - give up on a lookup after seconds (default 30) */
void	dns_set_timeout(struct dns *, int seconds);
/* dns_pending - number of lookups not yet answered nor cancelled */
size_t	dns_pending(const struct dns *);

/*
 * dns_lookup_mx - MX records of domain. NXDOMAIN, null MX (DNS_NULLMX)
 * and temporary failures are reported as such; NODATA gives DNS_OK with
 * the implicit MX (the domain itself, pref 0, implicit = true).
 * An address literal ("[192.0.2.1]", "192.0.2.1", "[IPv6:2001:db8::1]")
 * is returned as its own implicit MX without DNS.
 * Returns a handle valid until the callback starts or dns_cancel.
 */
struct dns_lookup *dns_lookup_mx(struct dns *, const char *domain,
	    dns_mx_fn cb, void *arg);
/*
 * dns_lookup_addr - A and AAAA records of host (both queried). DNS_OK
 * when either gave addresses. An IP literal (optionally in brackets, or
 * "IPv6:..." ) gives itself without DNS.
 */
struct dns_lookup *dns_lookup_addr(struct dns *, const char *host,
	    dns_addr_fn cb, void *arg);
/* dns_cancel - the callback will not be called; sets *lp to NULL */
void	dns_cancel(struct dns_lookup **lp);

/*
 * dns_parse_ip_literal - parse host as an address literal as described
 * above; true and *ss (port 0) when it is one.
 */
bool	dns_parse_ip_literal(const char *host, struct sockaddr_storage *ss);

/* dns_status_str - "NXDOMAIN", ... for logs */
const char *dns_status_str(enum dns_status);

#endif

/*
 * dns_sync.h - blocking DNS lookups with a deadline, for code that runs
 * off the event loops: worker-pool threads (DKIM key records) and the SPF
 * helper processes.
 *
 * Every lookup goes to the configured resolver (dns_resolver), through
 * libunbound, like the loop's asynchronous resolver (dns.h). Each thread
 * has its own libunbound context, created on first use; a lookup never
 * waits longer than its timeout.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_DNS_SYNC_H
#define POSTERN_DNS_SYNC_H

#include <stddef.h>
#include <sys/socket.h>

enum dns_sync_status {
	DNS_SYNC_OK,		/* records in the answer (n may still be 0) */
	DNS_SYNC_NXDOMAIN,
	DNS_SYNC_NODATA,	/* the name exists, no records of that type */
	DNS_SYNC_TEMPFAIL,	/* SERVFAIL, REFUSED, timeout, malformed */
};

/* one record of the answer, by type */
struct dns_sync_rr {
	int	 type;		/* ns_t_a, ns_t_aaaa, ns_t_mx, ns_t_txt, ... */
	struct sockaddr_storage addr;	/* A, AAAA (port 0) */
	unsigned pref;		/* MX */
	char	*name;		/* MX exchange, PTR target, CNAME: owned,
				   no trailing dot */
	char	*text;		/* TXT: the character-strings concatenated,
				   NUL-terminated, owned */
	size_t	 text_len;	/* TXT: length without the NUL (may hold
				   NULs) */
};

struct dns_sync_answer {
	enum dns_sync_status status;
	const char *error;	/* static text when status != OK */
	struct dns_sync_rr *rrs;	/* owned array: records of the type
					   asked */
	size_t	 n;
};

/*
 * dns_sync_configure - resolver for every thread's context from now on:
 * "IP@PORT", "IP", or NULL for /etc/resolv.conf. Call before the first
 * lookup (contexts already created keep their resolver until
 * dns_sync_thread_reset). Returns 0 or -1 with *error_r (static text).
 */
int	dns_sync_configure(const char *resolver, const char **error_r);
/*
 * dns_sync_query - look up name/type (ns_t_*), waiting at most timeout_ms.
 * Fills *answer (free with dns_sync_answer_free) and returns its status.
 */
enum dns_sync_status dns_sync_query(const char *name, int type,
	    int timeout_ms, struct dns_sync_answer *answer);
void	dns_sync_answer_free(struct dns_sync_answer *);
/* dns_sync_thread_reset - drop this thread's context (next query rebuilds) */
void	dns_sync_thread_reset(void);

#endif

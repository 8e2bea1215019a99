/*
 * spf_client.h - SPF checks (RFC 7208) in helper processes.
 *
 * libspf2 cannot be trusted not to crash or abort (notes/libraries.md 2:
 * an unpatched CVE, SPF_error() aborts, DNS failures mapped to "invalid"),
 * so it never runs inside posternd. A pool of postern-spf helper
 * processes does the checks; a helper that dies, hangs past the deadline
 * or answers garbage is killed and replaced, and that one check is
 * answered temperror. Helpers look everything up through the configured
 * resolver (dns_sync.h), never through libspf2's own resolver.
 *
 * spf_pool_check blocks (worker-pool threads only) and is thread-safe.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_SPF_CLIENT_H
#define POSTERN_SPF_CLIENT_H

#include <stddef.h>

/* RFC 7208 section 2.6 results */
enum spf_result {
	SPF_RES_NONE,
	SPF_RES_NEUTRAL,
	SPF_RES_PASS,
	SPF_RES_FAIL,
	SPF_RES_SOFTFAIL,
	SPF_RES_TEMPERROR,
	SPF_RES_PERMERROR,
};

struct spf_query {
	const char *client_addr;	/* "192.0.2.7" or "2001:db8::7" */
	const char *helo;		/* HELO/EHLO name ("" if none) */
	const char *sender;		/* MAIL FROM address, "" for <> */
	/*
	 * identity checked: "mailfrom" (the sender; postmaster@helo when
	 * the sender is null, RFC 7208 2.4) or "helo" (the HELO name)
	 */
	const char *identity;
};

struct spf_answer {
	enum spf_result result;
	char	 domain[256];		/* the domain checked */
	/* for the SMTP reply of a fail: the expanded exp= or ours */
	char	 explanation[512];
	/* why, for logs and the Received-SPF comment */
	char	 comment[512];
};

struct spf_pool_params {
	const char *helper_path;	/* the postern-spf program */
	const char *resolver;		/* dns_resolver or NULL */
	const char *receiver;		/* our host name (%{r}, comments) */
	unsigned max_helpers;		/* processes at most */
	int	 timeout_ms;		/* per check, DNS included */
};

struct spf_pool;

/*
 * spf_pool_new - helpers start lazily, on first use. NULL and *error_r
 * (owned) when the helper program is missing or not executable.
 */
struct spf_pool *spf_pool_new(const struct spf_pool_params *,
	    char **error_r);
/* spf_pool_free - stop every helper (SIGKILL, then reap: no waiting) */
void	spf_pool_free(struct spf_pool **);
/*
 * spf_pool_check - the result for q, in *a. Never fails: helper trouble
 * gives SPF_RES_TEMPERROR with the reason in a->comment (logged there
 * once, as a warning).
 */
void	spf_pool_check(struct spf_pool *, const struct spf_query *,
	    struct spf_answer *);

/* spf_result_name - "pass", "fail", ... (RFC 7208 names) */
const char *spf_result_name(enum spf_result);

/*
 * spf_received_value - the Received-SPF field value (RFC 7208 9.1):
 * "fail (comment) client-ip=...; envelope-from=...; helo=...;
 * receiver=...; identity=mailfrom", owned
 */
char	*spf_received_value(const struct spf_query *,
	    const struct spf_answer *, const char *receiver);

#endif

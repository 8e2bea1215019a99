/*
 * dkim_verify.h - DKIM signature verification (libopendkim) with the
 * results in RFC 8601 form.
 *
 * libopendkim verifies; key records come from the configured resolver
 * through dns_sync.h (libopendkim's own res_nquery path is neither
 * thread-safe nor bounded in time, notes/libraries.md 1.4). Feeding is
 * the same as for signing: header fields, then body chunks, then finish.
 * Runs on worker-pool threads (key lookups block).
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_DKIM_VERIFY_H
#define POSTERN_DKIM_VERIFY_H

#include <stddef.h>

struct header_list;

/* RFC 8601 2.7.1 results */
enum dkim_result {
	DKIM_RES_NONE,		/* no signature */
	DKIM_RES_PASS,
	DKIM_RES_FAIL,		/* signature or body hash mismatch */
	DKIM_RES_NEUTRAL,	/* signature not verifiable, syntax */
	DKIM_RES_POLICY,
	DKIM_RES_TEMPERROR,	/* key lookup failed temporarily */
	DKIM_RES_PERMERROR,	/* key record missing or broken */
};

struct dkim_sig_result {
	enum dkim_result result;
	char	 domain[256];		/* d= */
	char	 selector[64];		/* s= */
	char	 b_prefix[16];		/* first 8 characters of b= */
	char	 reason[128];		/* for the comment / logs */
};

/* one per configuration load; shared by threads */
struct dkim_verifier;

/*
 * dkim_verifier_new - timeout_ms bounds each key lookup. NULL and
 * *error_r (owned) on error. Key records are looked up with dns_sync
 * (dns_sync_configure must have been called), or, when key_file is not
 * NULL, read from that file ("sel._domainkey.example.org v=DKIM1; ..."
 * lines; unit tests).
 */
struct dkim_verifier *dkim_verifier_new(int timeout_ms, const char *key_file,
	    char **error_r);
void	dkim_verifier_free(struct dkim_verifier **);

struct dkim_verification;

struct dkim_verification *dkim_verification_new(struct dkim_verifier *,
	    const char *queue_id);
/* the header fields (all of them, in order) */
void	dkim_verification_headers(struct dkim_verification *,
	    const struct header_list *);
/* the body, CRLF line ends, dot-unstuffed, any chunking */
void	dkim_verification_body(struct dkim_verification *, const void *,
	    size_t);
/*
 * dkim_verification_finish - verify; the results, one per signature (at
 * most max), in *results; returns how many (0: no signature: the caller
 * reports dkim=none)
 */
size_t	dkim_verification_finish(struct dkim_verification *,
	    struct dkim_sig_result *results, size_t max);
void	dkim_verification_free(struct dkim_verification **);

/* dkim_result_name - "pass", "fail", ... (RFC 8601) */
const char *dkim_result_name(enum dkim_result);

#endif

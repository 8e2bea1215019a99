/*
 * spf_eval.h - one SPF check (RFC 7208 check_host) with libspf2, inside
 * the postern-spf helper process only: posternd never links libspf2.
 *
 * Every DNS query of libspf2 goes through dns_sync (the configured
 * resolver, a deadline per check); libspf2's own resolver and cache
 * layers are never used. libspf2's results are mapped to RFC 7208's
 * here, with the limits libspf2 lacks (void lookups, MX address limit)
 * enforced on top.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_SPF_EVAL_H
#define POSTERN_SPF_EVAL_H

#include "spf_client.h"

struct spf_eval;

/*
 * spf_eval_new - an evaluator for receiver (our host name: %{r}, the
 * comments). dns_sync_configure must have been called. NULL and
 * *error_r (static text) when libspf2 cannot be set up.
 */
struct spf_eval *spf_eval_new(const char *receiver, const char **error_r);
void	spf_eval_free(struct spf_eval **);
/*
 * spf_eval_check - check_host() for q (identity "mailfrom" or "helo"),
 * DNS included within timeout_ms; the answer in *a. Never fails: DNS
 * trouble gives temperror, a broken record permerror.
 */
void	spf_eval_check(struct spf_eval *, const struct spf_query *q,
	    int timeout_ms, struct spf_answer *a);

#endif

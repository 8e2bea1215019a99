/*
 * spf_record.h - our own RFC 7208 record checker and rewriter, and the
 * macro expander for explanations, for the postern-spf helper.
 *
 * libspf2 accepts records RFC 7208 says are invalid and refuses some it
 * says are valid (doc/spf-conformance.md). Every "v=spf1" record is
 * first checked here against the ABNF of RFC 7208 section 12, then
 * rewritten into a form libspf2 evaluates with the same meaning.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_SPF_RECORD_H
#define POSTERN_SPF_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#include "buf.h"

/* RFC 7208 4.6.4, 7.3: name lengths */
#define SPF_RECORD_MAX_NAME	253
#define SPF_RECORD_MAX_LABEL	63

struct spf_record_opts {
	bool	 client_is_ip6;	/* after mapping ::ffff:a.b.c.d to IPv4 */
	/*
	 * any_label - a label only this check knows (borrowed). An "a" or
	 * "mx" term whose prefix length for the client's family is 0 is
	 * rewritten to look up <any_label>.<domain>: the DNS layer strips
	 * the label and answers with the client's address when the name
	 * has any address (RFC 7208 5.3, 5.4, 5.6: a /0 network matches
	 * every address). NULL: such terms are left as they are.
	 */
	const char *any_label;
};

/*
 * spf_record_is_spf1 - is the TXT string (len bytes) an SPF version 1
 * record: "v=spf1" alone or followed by a space (RFC 7208 4.5)?
 */
bool	spf_record_is_spf1(const char *text, size_t len);
/*
 * spf_record_rewrite - check the record (len bytes, may hold NULs)
 * against RFC 7208 section 12, and append to out the record libspf2
 * should evaluate: same meaning, with
 * - unknown modifiers dropped (RFC 7208 6: they are ignored),
 * - "redirect=" dropped when the record has an "all" term (6.1),
 * - ip4/ip6 networks of prefix length 0 written as two /1 halves,
 * - "a"/"mx" terms with prefix length 0 rewritten (see any_label),
 *   and the prefix length of the other family dropped.
 * Returns 0, or -1 with *error_r (static text) when the record is
 * invalid: check_host() is then permerror (RFC 7208 4.6).
 */
int	spf_record_rewrite(const char *text, size_t len,
	    const struct spf_record_opts *opts, struct buf *out,
	    const char **error_r);

/*
 * spf_record_name_check - can name (no trailing dot needed) be sent to
 * DNS: no empty label, none over 63 octets? Over 253 octets is allowed
 * here: see spf_record_name_trim.
 */
bool	spf_record_name_check(const char *name);
/*
 * spf_record_name_trim - RFC 7208 4.8: a macro-expanded name over 253
 * octets loses labels from the left until it fits. Returns the offset in
 * name of the first label kept (0 when it fits; strlen when nothing
 * does). A trailing dot does not count.
 */
size_t	spf_record_name_trim(const char *name);

/* what the macros of RFC 7208 7.3 expand to; all borrowed */
struct spf_macro_env {
	const char *sender;	/* s: local-part@domain */
	const char *domain;	/* d: the current domain */
	const char *helo;	/* h */
	const char *receiver;	/* r */
	const char *ptr_name;	/* p: validated name, NULL: "unknown" */
	int	 family;	/* AF_INET, AF_INET6: i, c, v */
	struct in_addr addr4;
	struct in6_addr addr6;
	int64_t	 now;		/* t: seconds since the epoch */
};

/*
 * spf_macro_expand - expand the macro-string s (len bytes) into out. In
 * an explanation (is_exp) spaces are allowed and c, r, t are macros
 * (RFC 7208 7.1, 7.3); elsewhere they are errors. Returns 0, or -1 with
 * *error_r (static text) on a syntax error or when out is full.
 */
int	spf_macro_expand(const char *s, size_t len,
	    const struct spf_macro_env *env, bool is_exp, struct buf *out,
	    const char **error_r);
/*
 * spf_macro_check - the syntax check of spf_macro_expand alone: 0 or -1
 * with *error_r.
 */
int	spf_macro_check(const char *s, size_t len, bool is_exp,
	    const char **error_r);
/* spf_macro_uses_p - does the macro-string use %{p}? */
bool	spf_macro_uses_p(const char *s, size_t len);

#endif

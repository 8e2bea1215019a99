/*
 * spf_eval.c - SPF checks (RFC 7208) with libspf2 over our own DNS
 * layer, for the postern-spf helper process.
 *
 * Owns the libspf2 server object and the DNS layer under it. Leaves the
 * process, the request loop and crash handling to postern-spf.c and
 * spf_client.c: libspf2 aborts on internal errors (SPF_error) and has an
 * unpatched CVE (notes 2.4), so it only ever runs here. Record syntax is
 * spf_record.c's.
 *
 * What libspf2 1.2.10 gets wrong and this file corrects (notes 0.3, 2,
 * doc/spf-conformance.md):
 * - DNS temporary failures and record syntax errors both end as
 *   SPF_RESULT_INVALID: we watch every DNS answer ourselves, so a
 *   temporary failure during evaluation is temperror (RFC 7208 2.6.6)
 *   and any other INVALID is permerror (2.6.7).
 * - it asks for the obsolete SPF RR type (99) first: RFC 7208 3.1 says
 *   only TXT is used, so the layer answers type 99 with "no data"
 *   without asking the resolver.
 * - it checks record syntax loosely and refuses valid records: every
 *   "v=spf1" record it asks for is checked and rewritten by spf_record.c
 *   first; an invalid one makes the check permerror (RFC 7208 4.6) and
 *   libspf2 gets "v=spf1" in its place. "a"/"mx" terms with a /0 prefix
 *   look up <any_label>.<domain>, which this layer answers (see
 *   spf_record.h).
 * - it counts DNS-querying terms per record, not per check, and has no
 *   void-lookup limit (RFC 7208 4.6.4): both are counted here, over the
 *   queries the layer sees.
 * - its explanations (6.2) take one TXT record of several and escape
 *   macros in lower case: the exp= lookup and its expansion are ours
 *   (the layer's get_exp hook).
 * - a name that cannot be sent to DNS (empty or long label) is no match
 *   rather than a DNS error (RFC 7208 4.8), and a DNS error on the
 *   address of a "ptr" candidate skips that name (5.5).
 * - it checks malformed and single-label domains (RFC 7208 4.3: result
 *   none) only partly; we check them before calling it.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ctype.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <spf2/spf.h>
#include <spf2/spf_dns.h>

#include "buf.h"
#include "clock.h"
#include "dns_sync.h"
#include "spf_client.h"
#include "spf_eval.h"
#include "spf_proto.h"
#include "spf_record.h"
#include "xmalloc.h"

/*
 * DNS queries per check, at most: 10 terms (RFC 7208 4.6.4), each "mx"
 * or "ptr" with up to 10 address lookups, %{p} lookups on top
 */
#define SPF_EVAL_MAX_QUERIES	150
#define SPF_EVAL_MAX_TERMS	10	/* RFC 7208 4.6.4 */
#define SPF_EVAL_MAX_VOID	2	/* RFC 7208 4.6.4 */
#define SPF_EVAL_MAX_MX		10	/* RFC 7208 4.6.4 */
#define SPF_EVAL_MAX_PTR	10	/* RFC 7208 4.6.4 */
#define SPF_EVAL_MAX_EXEMPT	32
#define SPF_EVAL_MAX_EXP	480	/* explanation octets kept */

/*
 * Our default explanation (RFC 7208 6.2), a macro-string: spaces must be
 * written %_ (notes 0.4). A domain's own exp= replaces it.
 */
#define SPF_EVAL_EXPLANATION \
	"%{i}%_is%_not%_allowed%_to%_send%_mail%_for%_%{d}"

enum eval_error {
	EVAL_ERR_NONE,
	EVAL_ERR_TEMP,
	EVAL_ERR_PERM,
};

/* per-check state of the DNS layer */
struct eval_dns {
	int64_t	 deadline;		/* clock_ms() clock */
	int	 nqueries;
	int	 nvoid;
	int	 ntxt;			/* TXT lookups: the first is <domain> */
	int	 nterms;		/* DNS-querying terms (4.6.4) */
	/* the first error that ends check_host(), and where it happened */
	enum eval_error error;
	char	 error_text[300];
	/*
	 * names from the last MX or PTR answer: their address lookups are
	 * part of that term, not terms of their own (void lookups)
	 */
	char	*exempt[SPF_EVAL_MAX_EXEMPT];	/* owned */
	size_t	 nexempt;
	bool	 exempt_is_ptr;		/* they came from a PTR answer */
	/* the client, for the /0 rewrites and the explanation */
	int	 family;
	struct in_addr addr4;
	struct in6_addr addr6;
	char	 any_label[32];		/* random, per check */
	const struct spf_query *query;	/* borrowed: this check */
	SPF_request_t *request;		/* borrowed: this check */
};

struct spf_eval {
	SPF_server_t *server;		/* owned */
	SPF_dns_server_t layer;		/* ours; libspf2 borrows it */
	struct eval_dns dns;
	char	*receiver;		/* owned */
};

/* quiet - libspf2 warnings and debug output go nowhere (stdout is ours) */
static void
quiet(const char *file, int line, const char *msg)
{
}

static void
exempt_clear(struct eval_dns *d)
{
	size_t i;

	for (i = 0; i < d->nexempt; i++)
		free(d->exempt[i]);
	d->nexempt = 0;
}

static bool
is_exempt(const struct eval_dns *d, const char *name)
{
	size_t i;

	for (i = 0; i < d->nexempt; i++)
		if (strcasecmp(d->exempt[i], name) == 0)
			return true;
	return false;
}

static void
set_error(struct eval_dns *d, enum eval_error e, const char *text)
{
	if (d->error != EVAL_ERR_NONE)
		return;
	d->error = e;
	snprintf(d->error_text, sizeof(d->error_text), "%s", text);
}

/* rr_set - copy len bytes into record i of rr; false on libspf2 error */
static bool
rr_set(SPF_dns_rr_t *rr, int i, const void *src, size_t len)
{
	if (SPF_dns_rr_buf_realloc(rr, i, len) != SPF_E_SUCCESS)
		return false;
	memcpy(rr->rr[i], src, len);
	return true;
}

/*
 * strip_any - is name <any_label>.<rest>? Then *rest points at rest. The
 * label is random per check, so no record or sender can forge it.
 */
static bool
strip_any(const struct eval_dns *d, const char *name, const char **rest)
{
	size_t n = strlen(d->any_label);

	if (n == 0 || strncasecmp(name, d->any_label, n) != 0 ||
	    name[n] != '.')
		return false;
	*rest = name + n + 1;
	return true;
}

/*
 * txt_records - the TXT answer for libspf2: its SPF records only, each
 * checked and rewritten (spf_record.c) when there is exactly one;
 * several are permerror in libspf2 already (RFC 7208 4.5). An invalid
 * record is permerror (4.6) and libspf2 gets a harmless "v=spf1".
 */
static bool
txt_records(struct eval_dns *d, const struct dns_sync_answer *ans,
    SPF_dns_rr_t *rr, size_t *np)
{
	struct spf_record_opts o;
	struct buf b;
	const char *err, *t;
	size_t i, nspf = 0, n = 0;
	char text[300];
	bool ok = true;

	for (i = 0; i < ans->n; i++)
		if (ans->rrs[i].text != NULL &&
		    spf_record_is_spf1(ans->rrs[i].text, ans->rrs[i].text_len))
			nspf++;
	memset(&o, 0, sizeof(o));
	o.client_is_ip6 = d->family == AF_INET6;
	o.any_label = d->any_label;
	buf_init(&b, 0);
	for (i = 0; i < ans->n && ok; i++) {
		const struct dns_sync_rr *r = &ans->rrs[i];

		t = r->text != NULL ? r->text : "";
		if (nspf == 1 && spf_record_is_spf1(t, r->text_len)) {
			buf_reset(&b);
			if (spf_record_rewrite(t, r->text_len, &o, &b,
			    &err) == -1) {
				snprintf(text, sizeof(text), "%s", err);
				set_error(d, EVAL_ERR_PERM, text);
				buf_reset(&b);
				buf_append_str(&b, "v=spf1 ");
			}
			ok = rr_set(rr, (int)n, buf_cstr(&b), b.len + 1);
		} else if (nspf > 1 && spf_record_is_spf1(t, r->text_len))
			/* libspf2 reads C strings: a NUL cuts the text */
			ok = rr_set(rr, (int)n, t, strlen(t) + 1);
		else
			/*
			 * Not an SPF record (RFC 7208 4.5): libspf2 does
			 * not get it, so it cannot judge "v=spf1\t..." or
			 * "v=spf1\0..." otherwise.
			 */
			continue;
		if (ok)
			n++;
	}
	buf_deinit(&b);
	*np = n;
	return ok;
}

/*
 * layer_lookup - the lookup of our libspf2 DNS layer: dns_sync with the
 * time left of this check, the answer converted to libspf2's records.
 */
static SPF_dns_rr_t *
layer_lookup(SPF_dns_server_t *layer, const char *domain, ns_type type,
    int should_cache)
{
	struct spf_eval *ev = layer->hook;
	struct eval_dns *d = &ev->dns;
	struct dns_sync_answer ans;
	SPF_dns_rr_t *rr;
	char text[300];
	const char *name = domain;
	int64_t left;
	size_t i, n;
	int herrno;
	bool is_void = false, is_any, was_exempt, from_ptr;

	/* RFC 7208 3.1: the SPF RR type is not used any more */
	if (type == ns_t_spf)
		return SPF_dns_rr_new_init(layer, domain, type, 0, NO_DATA);
	is_any = strip_any(d, domain, &name);
	/* RFC 7208 4.8: a long expanded name loses labels on the left */
	name += spf_record_name_trim(name);
	/*
	 * A name that cannot be a DNS name is not looked up: nothing can
	 * match it (RFC 7208 4.3, 4.8, 5), and no query means no void
	 * lookup either.
	 */
	if (!spf_record_name_check(name))
		return SPF_dns_rr_new_init(layer, domain, type, 0,
		    HOST_NOT_FOUND);
	was_exempt = is_exempt(d, name);
	from_ptr = d->exempt_is_ptr;
	/*
	 * RFC 7208 4.6.4: terms that query DNS, at most 10 per check: every
	 * TXT lookup after the first (include, redirect) and every other
	 * lookup that is not for an MX or PTR target.
	 * XXX(3): the PTR lookup of a %{p} macro counts as a term here, and
	 * as a void lookup when it finds nothing; the layer cannot tell it
	 * from a "ptr" term. Only records near the limits notice.
	 */
	if (type == ns_t_txt ? d->ntxt++ > 0 : !was_exempt) {
		if (++d->nterms > SPF_EVAL_MAX_TERMS) {
			set_error(d, EVAL_ERR_PERM,
			    "more than 10 DNS-querying terms");
			return SPF_dns_rr_new_init(layer, domain, type, 0,
			    NO_DATA);
		}
	}
	if (++d->nqueries > SPF_EVAL_MAX_QUERIES) {
		set_error(d, EVAL_ERR_PERM, "too many DNS lookups");
		return SPF_dns_rr_new_init(layer, domain, type, 0, NO_DATA);
	}
	left = d->deadline - clock_ms();
	if (left <= 0) {
		snprintf(text, sizeof(text), "DNS timeout for %.200s", name);
		set_error(d, EVAL_ERR_TEMP, text);
		return SPF_dns_rr_new_init(layer, domain, type, 0, TRY_AGAIN);
	}
	switch (dns_sync_query(name, type, (int)left, &ans)) {
	case DNS_SYNC_OK:
		herrno = ans.n > 0 ? NETDB_SUCCESS : NO_DATA;
		is_void = ans.n == 0;
		break;
	case DNS_SYNC_NXDOMAIN:
		herrno = HOST_NOT_FOUND;
		is_void = true;
		break;
	case DNS_SYNC_NODATA:
		herrno = NO_DATA;
		is_void = true;
		break;
	default:
		/*
		 * RFC 7208 5.5: a DNS error on the address of a "ptr"
		 * candidate (or of a %{p} one, 7.3) skips that name.
		 */
		if (was_exempt && from_ptr &&
		    (type == ns_t_a || type == ns_t_aaaa)) {
			herrno = HOST_NOT_FOUND;
			break;
		}
		snprintf(text, sizeof(text), "%s for %.200s",
		    ans.error != NULL ? ans.error : "DNS failure", name);
		set_error(d, EVAL_ERR_TEMP, text);
		herrno = TRY_AGAIN;
		break;
	}
	/* RFC 7208 4.6.4: void lookups of terms (not of MX/PTR targets) */
	if (is_void && (type == ns_t_a || type == ns_t_aaaa ||
	    type == ns_t_mx || type == ns_t_ptr) && !was_exempt &&
	    ++d->nvoid > SPF_EVAL_MAX_VOID)
		set_error(d, EVAL_ERR_PERM, "more than 2 void DNS lookups");
	if (type == ns_t_mx && ans.n > SPF_EVAL_MAX_MX)
		set_error(d, EVAL_ERR_PERM, "more than 10 MX records");
	/* RFC 7208 4.6.4: only the first 10 PTR names are used */
	if (type == ns_t_ptr)
		for (; ans.n > SPF_EVAL_MAX_PTR; ans.n--) {
			free(ans.rrs[ans.n - 1].name);
			free(ans.rrs[ans.n - 1].text);
		}
	if (type == ns_t_mx || type == ns_t_ptr) {
		exempt_clear(d);
		d->exempt_is_ptr = type == ns_t_ptr;
		for (i = 0; i < ans.n && d->nexempt < SPF_EVAL_MAX_EXEMPT; i++)
			if (ans.rrs[i].name != NULL)
				d->exempt[d->nexempt++] =
				    xstrdup(ans.rrs[i].name);
	}
	rr = SPF_dns_rr_new_init(layer, domain, type, 0, herrno);
	if (rr == NULL || herrno != NETDB_SUCCESS) {
		dns_sync_answer_free(&ans);
		return rr;
	}
	/* a /0 "a" term: any address of the name matches (RFC 7208 5.6) */
	if (is_any && ((type == ns_t_a && d->family == AF_INET) ||
	    (type == ns_t_aaaa && d->family == AF_INET6))) {
		rr->num_rr = rr_set(rr, 0, type == ns_t_a ?
		    (const void *)&d->addr4 : (const void *)&d->addr6,
		    type == ns_t_a ? sizeof(d->addr4) : sizeof(d->addr6)) ?
		    1 : 0;
		dns_sync_answer_free(&ans);
		return rr;
	}
	n = 0;
	if (type == ns_t_txt) {
		(void)txt_records(d, &ans, rr, &n);
		rr->num_rr = (int)n;
		/* no SPF record among them: what libspf2 takes for none */
		if (n == 0)
			rr->herrno = NO_DATA;
		dns_sync_answer_free(&ans);
		return rr;
	}
	for (i = 0; i < ans.n; i++) {
		const struct dns_sync_rr *r = &ans.rrs[i];
		bool ok = true;

		switch (type) {
		case ns_t_a:
			ok = rr_set(rr, (int)n, &((const struct sockaddr_in *)
			    &r->addr)->sin_addr, sizeof(struct in_addr));
			break;
		case ns_t_aaaa:
			ok = rr_set(rr, (int)n, &((const struct sockaddr_in6 *)
			    &r->addr)->sin6_addr, sizeof(struct in6_addr));
			break;
		case ns_t_mx:
		case ns_t_ptr:
			if (r->name == NULL)
				continue;
			if (is_any && type == ns_t_mx &&
			    strcmp(r->name, ".") != 0) {
				/* a /0 "mx" term: its hosts' too */
				snprintf(text, sizeof(text), "%s.%s",
				    d->any_label, r->name);
				ok = rr_set(rr, (int)n, text,
				    strlen(text) + 1);
			} else
				ok = rr_set(rr, (int)n, r->name,
				    strlen(r->name) + 1);
			break;
		default:
			continue;
		}
		if (!ok)
			break;
		n++;
	}
	rr->num_rr = (int)n;
	dns_sync_answer_free(&ans);
	return rr;
}

/*
 * validated_name - %{p} (RFC 7208 7.3): a name of the client's PTR
 * records whose addresses include the client, the current domain or a
 * subdomain of it preferred; NULL ("unknown") when none. Owned.
 */
static char *
validated_name(struct eval_dns *d, const char *domain)
{
	struct dns_sync_answer ptr, addr;
	struct buf rev;
	char *found = NULL;
	size_t i, j, dl = strlen(domain), nl;
	int64_t left;
	int type = d->family == AF_INET6 ? ns_t_aaaa : ns_t_a;
	const unsigned char *a;
	bool match;

	buf_init(&rev, 0);
	if (d->family == AF_INET6) {
		for (i = 16; i > 0; i--)
			buf_printf(&rev, "%x.%x.",
			    d->addr6.s6_addr[i - 1] & 0xf,
			    d->addr6.s6_addr[i - 1] >> 4);
		buf_append_str(&rev, "ip6.arpa");
	} else {
		a = (const unsigned char *)&d->addr4;
		buf_printf(&rev, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1],
		    a[0]);
	}
	left = d->deadline - clock_ms();
	if (left <= 0 || dns_sync_query(buf_cstr(&rev), ns_t_ptr, (int)left,
	    &ptr) != DNS_SYNC_OK) {
		buf_deinit(&rev);
		return NULL;
	}
	buf_deinit(&rev);
	for (i = 0; i < ptr.n && i < SPF_EVAL_MAX_PTR; i++) {
		if (ptr.rrs[i].name == NULL ||
		    (left = d->deadline - clock_ms()) <= 0)
			continue;
		if (dns_sync_query(ptr.rrs[i].name, type, (int)left,
		    &addr) != DNS_SYNC_OK) {
			dns_sync_answer_free(&addr);
			continue;
		}
		for (match = false, j = 0; j < addr.n && !match; j++)
			match = type == ns_t_a ? memcmp(&((const struct
			    sockaddr_in *)&addr.rrs[j].addr)->sin_addr,
			    &d->addr4, 4) == 0 : memcmp(&((const struct
			    sockaddr_in6 *)&addr.rrs[j].addr)->sin6_addr,
			    &d->addr6, 16) == 0;
		dns_sync_answer_free(&addr);
		if (!match)
			continue;
		nl = strlen(ptr.rrs[i].name);
		if (strcasecmp(ptr.rrs[i].name, domain) == 0 || (nl > dl &&
		    ptr.rrs[i].name[nl - dl - 1] == '.' &&
		    strcasecmp(ptr.rrs[i].name + nl - dl, domain) == 0)) {
			free(found);
			found = xstrdup(ptr.rrs[i].name);
			break;
		}
		if (found == NULL)
			found = xstrdup(ptr.rrs[i].name);
	}
	dns_sync_answer_free(&ptr);
	return found;
}

/* is_printable - explanations are US-ASCII text (RFC 7208 6.2) */
static bool
is_printable(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

/*
 * explain - expand the explanation text (or our default when NULL) for
 * the current domain into out; -1 on a syntax error
 */
static int
explain(struct spf_eval *ev, const char *text, size_t len, struct buf *out)
{
	struct eval_dns *d = &ev->dns;
	struct spf_macro_env env;
	const struct spf_query *q = d->query;
	const char *dom, *err;
	char *sender = NULL, *ptr_name = NULL;
	int rc;

	if (text == NULL) {
		text = SPF_EVAL_EXPLANATION;
		len = strlen(text);
	}
	dom = d->request != NULL && d->request->cur_dom != NULL ?
	    d->request->cur_dom : "";
	memset(&env, 0, sizeof(env));
	/* RFC 7208 2.3, 2.4: the HELO identity and <> use postmaster@helo */
	if (q->sender != NULL && *q->sender != '\0' &&
	    (q->identity == NULL || strcmp(q->identity, "helo") != 0))
		env.sender = q->sender;
	else
		env.sender = sender = xasprintf("postmaster@%s",
		    q->helo != NULL ? q->helo : "");
	env.domain = dom;
	env.helo = q->helo;
	env.receiver = ev->receiver;
	env.family = d->family;
	env.addr4 = d->addr4;
	env.addr6 = d->addr6;
	env.now = (int64_t)time(NULL);
	if (spf_macro_uses_p(text, len))
		env.ptr_name = ptr_name = validated_name(d, dom);
	rc = spf_macro_expand(text, len, &env, true, out, &err);
	free(sender);
	free(ptr_name);
	return rc;
}

/*
 * layer_get_exp - libspf2's hook for the exp= lookup (RFC 7208 6.2):
 * domain is the expanded exp= target. The explanation is the one TXT
 * record there, US-ASCII, expanded by spf_macro_expand; anything else
 * (no record, several, a DNS error, bad syntax) gives our default.
 * libspf2 takes *bufp as the explanation as it is.
 */
static SPF_errcode_t
layer_get_exp(SPF_server_t *server, const char *domain, char **bufp,
    size_t *buflenp)
{
	struct spf_eval *ev = server->resolver->hook;
	struct eval_dns *d = &ev->dns;
	struct dns_sync_answer ans;
	struct buf out;
	const char *name = domain;
	int64_t left;
	bool done = false;

	buf_init(&out, SPF_EVAL_MAX_EXP);
	memset(&ans, 0, sizeof(ans));
	name += spf_record_name_trim(name);
	left = d->deadline - clock_ms();
	if (spf_record_name_check(name) && left > 0 &&
	    dns_sync_query(name, ns_t_txt, (int)left, &ans) == DNS_SYNC_OK &&
	    ans.n == 1 && ans.rrs[0].text != NULL &&
	    is_printable(ans.rrs[0].text, ans.rrs[0].text_len))
		done = explain(ev, ans.rrs[0].text, ans.rrs[0].text_len,
		    &out) == 0;
	dns_sync_answer_free(&ans);
	if (!done) {
		buf_reset(&out);
		(void)explain(ev, NULL, 0, &out);
	}
	if (*buflenp < out.len + 1) {
		*bufp = xreallocarray(*bufp, 1, out.len + 1);
		*buflenp = out.len + 1;
	}
	memcpy(*bufp, buf_cstr(&out), out.len + 1);
	buf_deinit(&out);
	return SPF_E_SUCCESS;
}

struct spf_eval *
spf_eval_new(const char *receiver, const char **error_r)
{
	struct spf_eval *ev;
	SPF_response_t *resp = NULL;

	SPF_warning_handler = quiet;
	SPF_info_handler = quiet;
	SPF_debug_handler = quiet;
	ev = xcalloc(1, sizeof(*ev));
	ev->receiver = xstrdup(receiver != NULL && *receiver != '\0' ?
	    receiver : "localhost");
	/* destroy stays NULL: the layer is ours, not libspf2's to free */
	ev->layer.lookup = layer_lookup;
	ev->layer.name = "postern";
	ev->layer.get_exp = layer_get_exp;
	ev->layer.hook = ev;
	if ((ev->server = SPF_server_new_dns(&ev->layer, 0)) == NULL) {
		*error_r = "cannot create the libspf2 server";
		goto fail;
	}
	if (SPF_server_set_rec_dom(ev->server, ev->receiver) !=
	    SPF_E_SUCCESS) {
		*error_r = "cannot set the receiver name";
		goto fail;
	}
	/* never pass NULL as the response: it crashes (notes 0.4) */
	if (SPF_server_set_explanation(ev->server, SPF_EVAL_EXPLANATION,
	    &resp) != SPF_E_SUCCESS) {
		SPF_response_free(resp);
		*error_r = "cannot set the SPF explanation";
		goto fail;
	}
	SPF_response_free(resp);
	/*
	 * RFC 7208 4.6.4: the layer counts the terms that query DNS over
	 * the whole check and cuts PTR answers to 10 names; libspf2's own
	 * limits (per record) are only a backstop above ours.
	 */
	SPF_server_set_max_dns_mech(ev->server, 2 * SPF_EVAL_MAX_TERMS);
	SPF_server_set_max_dns_ptr(ev->server, SPF_EVAL_MAX_PTR);
	SPF_server_set_max_dns_mx(ev->server, SPF_EVAL_MAX_MX);
	return ev;
fail:
	spf_eval_free(&ev);
	return NULL;
}

void
spf_eval_free(struct spf_eval **evp)
{
	struct spf_eval *ev = *evp;

	if (ev == NULL)
		return;
	*evp = NULL;
	if (ev->server != NULL)
		SPF_server_free(ev->server);
	exempt_clear(&ev->dns);
	free(ev->receiver);
	free(ev);
}

/*
 * copy_text - src into dst (size n) with bytes that could break an SMTP
 * reply or a header (controls, non-ASCII) replaced by '?'
 */
static void
copy_text(char *dst, size_t n, const char *src)
{
	size_t i;

	snprintf(dst, n, "%s", src != NULL ? src : "");
	for (i = 0; dst[i] != '\0'; i++)
		if ((unsigned char)dst[i] < 0x20 ||
		    (unsigned char)dst[i] > 0x7e)
			dst[i] = '?';
}

/*
 * valid_domain - RFC 7208 4.3: a multi-label domain name, no empty or
 * over-long label (a trailing dot is allowed), not an address literal
 */
static bool
valid_domain(const char *dom)
{
	size_t len = strlen(dom), lab = 0, labels = 0, i;

	if (len > 0 && dom[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return false;
	for (i = 0; i <= len; i++) {
		if (i == len || dom[i] == '.') {
			if (lab == 0 || lab > 63)
				return false;
			labels++;
			lab = 0;
			continue;
		}
		if ((unsigned char)dom[i] <= 0x20 ||
		    (unsigned char)dom[i] >= 0x7f)
			return false;
		lab++;
	}
	return labels >= 2;
}

/* checked_domain - the <domain> of check_host() for q (RFC 7208 2.3, 2.4) */
static const char *
checked_domain(const struct spf_query *q, bool helo)
{
	const char *at;

	if (helo || q->sender == NULL || *q->sender == '\0')
		return q->helo != NULL ? q->helo : "";
	if ((at = strrchr(q->sender, '@')) != NULL)
		return at + 1;
	return q->sender;
}

/*
 * set_client - the client address into rq and d (family, address);
 * IPv4-mapped IPv6 as IPv4
 */
static bool
set_client(SPF_request_t *rq, struct eval_dns *d, const char *addr)
{
	struct in6_addr a6;
	struct in_addr a4;

	d->family = AF_INET;
	if (inet_pton(AF_INET, addr, &a4) == 1) {
		d->addr4 = a4;
		return SPF_request_set_ipv4(rq, a4) == SPF_E_SUCCESS;
	}
	if (inet_pton(AF_INET6, addr, &a6) != 1)
		return false;
	/* RFC 7208 5: an IPv4-mapped address is checked as IPv4 */
	if (IN6_IS_ADDR_V4MAPPED(&a6)) {
		memcpy(&a4, &a6.s6_addr[12], 4);
		d->addr4 = a4;
		return SPF_request_set_ipv4(rq, a4) == SPF_E_SUCCESS;
	}
	d->family = AF_INET6;
	d->addr6 = a6;
	return SPF_request_set_ipv6(rq, a6) == SPF_E_SUCCESS;
}

/* first_message - libspf2's first error message, for the comment */
static const char *
first_message(SPF_response_t *rs)
{
	SPF_error_t *e;
	int i;

	for (i = 0; i < SPF_response_messages(rs); i++)
		if ((e = SPF_response_message(rs, i)) != NULL &&
		    e->message != NULL && e->is_error)
			return e->message;
	return NULL;
}

static enum spf_result
map_result(SPF_result_t r)
{
	switch (r) {
	case SPF_RESULT_NEUTRAL:
		return SPF_RES_NEUTRAL;
	case SPF_RESULT_PASS:
		return SPF_RES_PASS;
	case SPF_RESULT_FAIL:
		return SPF_RES_FAIL;
	case SPF_RESULT_SOFTFAIL:
		return SPF_RES_SOFTFAIL;
	case SPF_RESULT_NONE:
		return SPF_RES_NONE;
	case SPF_RESULT_TEMPERROR:
		return SPF_RES_TEMPERROR;
	case SPF_RESULT_PERMERROR:
	default:
		return SPF_RES_PERMERROR;
	}
}

/*
 * query_mailfrom - SPF_request_query_mailfrom without its free pass:
 * libspf2 answers pass for any client in 127/8 or ::1 ("localhost is
 * always allowed") without looking at the record, which RFC 7208 does
 * not allow. The same steps through libspf2's exported functions.
 */
static SPF_errcode_t
query_mailfrom(SPF_request_t *rq, SPF_response_t **rsp)
{
	SPF_record_t *rec = NULL;
	SPF_errcode_t err;

	if ((*rsp = SPF_response_new(rq)) == NULL)
		return SPF_E_NO_MEMORY;
	rq->cur_dom = rq->use_helo ? rq->helo_dom : rq->env_from_dp;
	err = SPF_server_get_record(rq->spf_server, rq, *rsp, &rec);
	if (err != SPF_E_SUCCESS) {
		if (rec != NULL)
			SPF_record_free(rec);
		return err;
	}
	(*rsp)->spf_record_exp = rec;
	err = SPF_record_interpret(rec, rq, *rsp, 0);
	SPF_record_free(rec);
	return err;
}

void
spf_eval_check(struct spf_eval *ev, const struct spf_query *q,
    int timeout_ms, struct spf_answer *a)
{
	struct eval_dns *d = &ev->dns;
	SPF_request_t *rq = NULL;
	SPF_response_t *rs = NULL;
	SPF_result_t r;
	const char *dom, *msg, *s;
	char comment[400];
	uint32_t rnd[2];
	bool helo;

	memset(a, 0, sizeof(*a));
	helo = q->identity != NULL && strcmp(q->identity, "helo") == 0;
	dom = checked_domain(q, helo);
	copy_text(a->domain, sizeof(a->domain), dom);
	if (!valid_domain(dom)) {
		a->result = SPF_RES_NONE;
		snprintf(comment, sizeof(comment),
		    "%s: no valid domain to check", ev->receiver);
		copy_text(a->comment, sizeof(a->comment), comment);
		return;
	}

	exempt_clear(d);
	d->deadline = clock_ms() + (timeout_ms > 0 ? timeout_ms : 1);
	d->nqueries = d->nvoid = d->ntxt = d->nterms = 0;
	d->error = EVAL_ERR_NONE;
	d->error_text[0] = '\0';
	d->query = q;
	arc4random_buf(rnd, sizeof(rnd));
	snprintf(d->any_label, sizeof(d->any_label),
	    "x-postern-any-%08x%08x", rnd[0], rnd[1]);

	rq = SPF_request_new(ev->server);
	if (rq == NULL || q->client_addr == NULL ||
	    !set_client(rq, d, q->client_addr)) {
		a->result = SPF_RES_PERMERROR;
		snprintf(comment, sizeof(comment),
		    "%s: invalid client address", ev->receiver);
		copy_text(a->comment, sizeof(a->comment), comment);
		goto out;
	}
	if (q->helo != NULL && *q->helo != '\0')
		SPF_request_set_helo_dom(rq, q->helo);
	/*
	 * Without an envelope sender libspf2 checks postmaster@<helo>:
	 * exactly the HELO identity (RFC 7208 2.3) and the null-sender
	 * case (2.4).
	 */
	if (!helo && q->sender != NULL && *q->sender != '\0' &&
	    SPF_request_set_env_from(rq, q->sender) != 0) {
		a->result = SPF_RES_NONE;
		snprintf(comment, sizeof(comment),
		    "%s: invalid envelope sender", ev->receiver);
		copy_text(a->comment, sizeof(a->comment), comment);
		goto out;
	}
	d->request = rq;
	(void)query_mailfrom(rq, &rs);
	r = rs != NULL ? SPF_response_result(rs) : SPF_RESULT_INVALID;

	if (d->error == EVAL_ERR_TEMP) {
		a->result = SPF_RES_TEMPERROR;
		snprintf(comment, sizeof(comment), "%s: %s", ev->receiver,
		    d->error_text);
	} else if (d->error == EVAL_ERR_PERM) {
		a->result = SPF_RES_PERMERROR;
		snprintf(comment, sizeof(comment), "%s: %s in the SPF "
		    "record of %s", ev->receiver, d->error_text, dom);
	} else if (r == SPF_RESULT_INVALID) {
		msg = first_message(rs);
		a->result = rs != NULL && SPF_response_errcode(rs) ==
		    SPF_E_DNS_ERROR ? SPF_RES_TEMPERROR : SPF_RES_PERMERROR;
		snprintf(comment, sizeof(comment), "%s: %s", ev->receiver,
		    msg != NULL ? msg : a->result == SPF_RES_TEMPERROR ?
		    "temporary DNS failure" : "invalid SPF record");
	} else {
		a->result = map_result(r);
		s = SPF_response_get_header_comment(rs);
		msg = first_message(rs);
		if (a->result == SPF_RES_PERMERROR && msg != NULL)
			snprintf(comment, sizeof(comment), "%s: %s",
			    ev->receiver, msg);
		else if (s != NULL)
			snprintf(comment, sizeof(comment), "%s", s);
		else
			snprintf(comment, sizeof(comment), "%s: %s",
			    ev->receiver, spf_result_name(a->result));
	}
	copy_text(a->comment, sizeof(a->comment), comment);
	if (a->result == SPF_RES_FAIL && rs != NULL) {
		s = SPF_response_get_explanation(rs);
		if (s == NULL || *s == '\0')
			s = SPF_response_get_smtp_comment(rs);
		copy_text(a->explanation, sizeof(a->explanation), s);
	}
out:
	d->request = NULL;
	d->query = NULL;
	if (rs != NULL)
		SPF_response_free(rs);
	if (rq != NULL)
		SPF_request_free(rq);
	exempt_clear(d);
}

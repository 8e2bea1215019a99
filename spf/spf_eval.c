/*
 * spf_eval.c - SPF checks (RFC 7208) with libspf2 over our own DNS
 * layer, for the postern-spf helper process.
 *
 * Owns the libspf2 server object and the DNS layer under it. Leaves the
 * process, the request loop and crash handling to postern-spf.c and
 * spf_client.c: libspf2 aborts on internal errors (SPF_error) and has an
 * unpatched CVE (notes 2.4), so it only ever runs here.
 *
 * What libspf2 1.2.10 gets wrong and this file corrects (notes 0.3, 2):
 * - DNS temporary failures and record syntax errors both end as
 *   SPF_RESULT_INVALID: we watch every DNS answer ourselves, so a
 *   temporary failure during evaluation is temperror (RFC 7208 2.6.6)
 *   and any other INVALID is permerror (2.6.7).
 * - it asks for the obsolete SPF RR type (99) first: RFC 7208 3.1 says
 *   only TXT is used, so the layer answers type 99 with "no data"
 *   without asking the resolver.
 * - it only recognises "v=spf1 " with a space, so a record that is
 *   exactly "v=spf1" (RFC 7208 4.5) is given that space.
 * - it garbles plain spaces in an exp= explanation (RFC 7208 6.2 allows
 *   them): they are handed to it as "%_".
 * - it has no void-lookup limit (RFC 7208 4.6.4: more than two terms
 *   whose lookup gives NXDOMAIN or no records is permerror) and no
 *   limit on the MX records of one "mx" term (more than ten: permerror).
 * - it checks malformed and single-label domains (RFC 7208 4.3: result
 *   none) only partly; we check them before calling it.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/types.h>
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

#include <spf2/spf.h>
#include <spf2/spf_dns.h>

#include "buf.h"
#include "dns_sync.h"
#include "spf_client.h"
#include "spf_eval.h"
#include "spf_proto.h"
#include "xmalloc.h"

#define SPF_EVAL_MAX_QUERIES	40	/* DNS queries per check, at most */
#define SPF_EVAL_MAX_VOID	2	/* RFC 7208 4.6.4 */
#define SPF_EVAL_MAX_MX		10	/* RFC 7208 4.6.4 */
#define SPF_EVAL_MAX_EXEMPT	32

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
	int64_t	 deadline;		/* spf_proto_now_ms clock */
	int	 nqueries;
	int	 nvoid;
	/* the first error that ends check_host(), and where it happened */
	enum eval_error error;
	char	 error_text[300];
	int	 error_query;		/* index of the query (1-based) */
	int	 error_type;
	/*
	 * names from the last MX or PTR answer: their address lookups are
	 * part of that term, not terms of their own (void lookups)
	 */
	char	*exempt[SPF_EVAL_MAX_EXEMPT];	/* owned */
	size_t	 nexempt;
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
set_error(struct eval_dns *d, enum eval_error e, int type, const char *text)
{
	if (d->error != EVAL_ERR_NONE)
		return;
	d->error = e;
	d->error_query = d->nqueries;
	d->error_type = type;
	snprintf(d->error_text, sizeof(d->error_text), "%s", text);
}

/* is_spf1 - "v=spf1" alone, the record RFC 7208 4.5 allows */
static bool
is_bare_spf1(const char *t, size_t len)
{
	return len == 6 && strncasecmp(t, "v=spf1", 6) == 0;
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
 * rr_set_exp - a TXT record that is not an SPF record: maybe the target
 * of exp=. RFC 7208 6.2 allows plain spaces in an explanation, but
 * libspf2 garbles them (notes 0.4), so they become the macro "%_",
 * which expands to a space. Any other TXT record is ignored by SPF
 * anyway, and this cannot make it look like one.
 */
static bool
rr_set_exp(SPF_dns_rr_t *rr, int i, const char *t)
{
	struct buf b;
	bool ok;

	buf_init(&b, 0);
	for (; *t != '\0'; t++)
		if (*t == ' ')
			buf_append(&b, "%_", 2);
		else
			buf_append(&b, t, 1);
	ok = rr_set(rr, i, buf_cstr(&b), b.len + 1);
	buf_deinit(&b);
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
	struct eval_dns *d = layer->hook;
	struct dns_sync_answer ans;
	SPF_dns_rr_t *rr;
	char text[300];
	int64_t left;
	size_t i, n;
	int herrno;
	bool is_void = false;
	const char *t;

	/* RFC 7208 3.1: the SPF RR type is not used any more */
	if (type == ns_t_spf)
		return SPF_dns_rr_new_init(layer, domain, type, 0, NO_DATA);
	if (++d->nqueries > SPF_EVAL_MAX_QUERIES) {
		set_error(d, EVAL_ERR_PERM, type,
		    "too many DNS lookups");
		return SPF_dns_rr_new_init(layer, domain, type, 0, NO_DATA);
	}
	left = d->deadline - spf_proto_now_ms();
	if (left <= 0) {
		snprintf(text, sizeof(text), "DNS timeout for %.200s",
		    domain);
		set_error(d, EVAL_ERR_TEMP, type, text);
		return SPF_dns_rr_new_init(layer, domain, type, 0, TRY_AGAIN);
	}
	switch (dns_sync_query(domain, type, (int)left, &ans)) {
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
		snprintf(text, sizeof(text), "%s for %.200s",
		    ans.error != NULL ? ans.error : "DNS failure", domain);
		set_error(d, EVAL_ERR_TEMP, type, text);
		herrno = TRY_AGAIN;
		break;
	}
	/* RFC 7208 4.6.4: void lookups of terms (not of MX/PTR targets) */
	if (is_void && (type == ns_t_a || type == ns_t_aaaa ||
	    type == ns_t_mx || type == ns_t_ptr) && !is_exempt(d, domain) &&
	    ++d->nvoid > SPF_EVAL_MAX_VOID)
		set_error(d, EVAL_ERR_PERM, type,
		    "more than 2 void DNS lookups");
	if (type == ns_t_mx && ans.n > SPF_EVAL_MAX_MX)
		set_error(d, EVAL_ERR_PERM, type,
		    "more than 10 MX records");
	if (type == ns_t_mx || type == ns_t_ptr) {
		exempt_clear(d);
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
	for (i = 0, n = 0; i < ans.n; i++) {
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
			ok = rr_set(rr, (int)n, r->name, strlen(r->name) + 1);
			break;
		case ns_t_txt:
			/*
			 * libspf2 reads C strings: a record with a NUL in
			 * it is cut there, which at worst makes it invalid.
			 */
			t = r->text != NULL ? r->text : "";
			if (is_bare_spf1(t, r->text_len))
				t = "v=spf1 ";
			if (strncasecmp(t, "v=spf1 ", 7) == 0)
				ok = rr_set(rr, (int)n, t, strlen(t) + 1);
			else
				ok = rr_set_exp(rr, (int)n, t);
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
	ev->layer.hook = &ev->dns;
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
	/* RFC 7208 4.6.4: 10 terms that query DNS, 10 PTR names */
	SPF_server_set_max_dns_mech(ev->server, 10);
	SPF_server_set_max_dns_ptr(ev->server, 10);
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

/* set_client - the client address into rq; IPv4-mapped IPv6 as IPv4 */
static bool
set_client(SPF_request_t *rq, const char *addr)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (inet_pton(AF_INET, addr, &a4) == 1)
		return SPF_request_set_ipv4(rq, a4) == SPF_E_SUCCESS;
	if (inet_pton(AF_INET6, addr, &a6) != 1)
		return false;
	/* RFC 7208 5: an IPv4-mapped address is checked as IPv4 */
	if (IN6_IS_ADDR_V4MAPPED(&a6)) {
		memcpy(&a4, &a6.s6_addr[12], 4);
		return SPF_request_set_ipv4(rq, a4) == SPF_E_SUCCESS;
	}
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
	bool helo;
	int nq;

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
	d->deadline = spf_proto_now_ms() + (timeout_ms > 0 ? timeout_ms : 1);
	d->nqueries = d->nvoid = 0;
	d->error = EVAL_ERR_NONE;
	d->error_text[0] = '\0';

	rq = SPF_request_new(ev->server);
	if (rq == NULL || q->client_addr == NULL ||
	    !set_client(rq, q->client_addr)) {
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
	(void)SPF_request_query_mailfrom(rq, &rs);
	r = rs != NULL ? SPF_response_result(rs) : SPF_RESULT_INVALID;
	nq = d->nqueries;

	/*
	 * A temporary failure of the exp= lookup, which comes last and
	 * only after a fail, does not change the result (RFC 7208 6.2).
	 * XXX(3): recognised by position, not by name.
	 */
	if (d->error == EVAL_ERR_TEMP && r == SPF_RESULT_FAIL &&
	    d->error_type == ns_t_txt && d->error_query == nq && nq > 1)
		d->error = EVAL_ERR_NONE;

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
	if (rs != NULL)
		SPF_response_free(rs);
	if (rq != NULL)
		SPF_request_free(rq);
	exempt_clear(d);
}

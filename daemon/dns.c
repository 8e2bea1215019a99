/*
 * dns.c - asynchronous MX and address lookups with libunbound, run inside
 * the caller's libevent loop (ub_ctx_create_event: no helper thread or
 * process).
 *
 * Owns the unbound context, every lookup handle and every query in
 * flight. Leaves routing decisions (which MX to try, what a failure
 * means for a message) to the transports.
 *
 * Lifetime rules, because libunbound calls back with a bare pointer:
 * - a query (one ub_resolve_event) belongs to the dns object, not to the
 *   lookup; it lives until unbound answers it or the context is deleted.
 *   Cancelling a lookup only cuts the query's link to it, so a late
 *   answer lands in a live query and is dropped (STYLE.md 5).
 * - unbound may answer before ub_resolve_event returns (local data), so
 *   results are always handed over from our own event, never from inside
 *   dns_lookup_*() or an unbound callback. The caller may therefore free
 *   the dns object from its callback.
 *
 * RFCs: 1035 (wire format, parsed with libresolv's ns_* functions),
 * 5321 5.1 (MX order, implicit MX), 7505 (null MX), 6761 (.test).
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/queue.h>
#include <sys/types.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ctype.h>
#include <resolv.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <unbound.h>
#include <unbound-event.h>

#include "dns.h"
#include "dns_ub.h"
#include "log.h"
#include "xmalloc.h"

#define DNS_TIMEOUT_DEFAULT	30	/* seconds */
#define DNS_MX_MAX		64	/* records kept per answer */
#define DNS_ADDR_MAX		32	/* addresses kept per family */

#define RR_A		1
#define RR_MX		15
#define RR_AAAA		28

enum dns_kind {
	DNS_KIND_MX,
	DNS_KIND_ADDR,
};

struct dns_query;

struct dns_lookup {
	struct dns *dns;		/* borrowed: the owner */
	TAILQ_ENTRY(dns_lookup) entry;	/* in dns->lookups */
	enum dns_kind kind;
	char	*name;			/* owned */
	dns_mx_fn mx_cb;
	dns_addr_fn addr_cb;
	void	*arg;			/* borrowed: the caller's */
	struct event *ev;		/* owned: timeout and hand-over */
	struct dns_query *q[2];		/* borrowed from dns->queries */
	int	 outstanding;
	bool	 complete;
	bool	 literal;
	/* per query slot (MX uses slot 0; addr: 0 = A, 1 = AAAA) */
	enum dns_status st[2];
	const char *err[2];
	struct dns_mx *mx;		/* owned */
	size_t	 nmx;
	struct sockaddr_storage *addrs[2];	/* owned */
	size_t	 naddrs[2];
};

struct dns_query {
	struct dns *dns;		/* borrowed */
	struct dns_lookup *lookup;	/* borrowed; NULL once abandoned */
	int	 slot;
	int	 rrtype;
	TAILQ_ENTRY(dns_query) entry;	/* in dns->queries */
};

struct dns {
	struct event_base *base;	/* borrowed: the loop's */
	struct ub_ctx *ub;		/* owned */
	int	 timeout;
	bool	 closing;
	size_t	 npending;
	TAILQ_HEAD(, dns_lookup) lookups;	/* owned */
	TAILQ_HEAD(, dns_query) queries;	/* owned */
};

static void lookup_fire(evutil_socket_t, short, void *);

const char *
dns_status_str(enum dns_status st)
{
	switch (st) {
	case DNS_OK:
		return "OK";
	case DNS_NXDOMAIN:
		return "NXDOMAIN";
	case DNS_NODATA:
		return "NODATA";
	case DNS_TEMPFAIL:
		return "TEMPFAIL";
	case DNS_NULLMX:
		return "NULLMX";
	}
	return "?";
}

struct dns *
dns_new(struct event_base *base, const char *resolver, const char **error_r)
{
	struct dns *dns;

	dns = xcalloc(1, sizeof(*dns));
	dns->base = base;
	dns->timeout = DNS_TIMEOUT_DEFAULT;
	TAILQ_INIT(&dns->lookups);
	TAILQ_INIT(&dns->queries);
	if ((dns->ub = ub_ctx_create_event(base)) == NULL) {
		*error_r = "cannot create the libunbound context";
		goto fail;
	}
	if (dns_ub_configure(dns->ub, resolver, error_r) == -1)
		goto fail;
	return dns;
fail:
	if (dns->ub != NULL)
		ub_ctx_delete(dns->ub);
	free(dns);
	return NULL;
}

/* lookup_release - free a lookup that is off every list */
static void
lookup_release(struct dns_lookup *l)
{
	size_t i;

	for (i = 0; i < l->nmx; i++)
		free(l->mx[i].host);
	free(l->mx);
	free(l->addrs[0]);
	free(l->addrs[1]);
	if (l->ev != NULL)
		event_free(l->ev);
	free(l->name);
	free(l);
}

/* lookup_detach - cut the lookup from dns and from its queries */
static void
lookup_detach(struct dns_lookup *l)
{
	int i;

	for (i = 0; i < 2; i++)
		if (l->q[i] != NULL) {
			l->q[i]->lookup = NULL;
			l->q[i] = NULL;
		}
	TAILQ_REMOVE(&l->dns->lookups, l, entry);
	l->dns->npending--;
}

void
dns_free(struct dns **dnsp)
{
	struct dns *dns = *dnsp;
	struct dns_lookup *l;
	struct dns_query *q;

	if (dns == NULL)
		return;
	*dnsp = NULL;
	/* unbound may call back while it deletes: the callback checks this. */
	dns->closing = true;
	if (dns->ub != NULL)
		ub_ctx_delete(dns->ub);
	while ((l = TAILQ_FIRST(&dns->lookups)) != NULL) {
		lookup_detach(l);
		lookup_release(l);
	}
	while ((q = TAILQ_FIRST(&dns->queries)) != NULL) {
		TAILQ_REMOVE(&dns->queries, q, entry);
		free(q);
	}
	free(dns);
}

void
dns_set_timeout(struct dns *dns, int seconds)
{
	dns->timeout = seconds > 0 ? seconds : DNS_TIMEOUT_DEFAULT;
}

size_t
dns_pending(const struct dns *dns)
{
	return dns->npending;
}

bool
dns_parse_ip_literal(const char *host, struct sockaddr_storage *ss)
{
	char tmp[INET6_ADDRSTRLEN + 8];
	size_t len = strlen(host);
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
		host++;
		len -= 2;
	}
	if (len >= 5 && strncasecmp(host, "IPv6:", 5) == 0) {
		host += 5;
		len -= 5;
	}
	if (len == 0 || len >= sizeof(tmp))
		return false;
	memcpy(tmp, host, len);
	tmp[len] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, tmp, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, tmp, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		return true;
	}
	return false;
}

/* mx_cmp - qsort order by preference */
static int
mx_cmp(const void *a, const void *b)
{
	const struct dns_mx *x = a, *y = b;

	return x->pref < y->pref ? -1 : x->pref > y->pref;
}

/* mx_sort - RFC 5321 5.1: ascending preference, equal ones in random order */
static void
mx_sort(struct dns_mx *mx, size_t n)
{
	size_t i, j, k, run;
	struct dns_mx t;

	qsort(mx, n, sizeof(*mx), mx_cmp);
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && mx[j].pref == mx[i].pref; j++)
			;
		/* Fisher-Yates over the run [i, j) */
		for (run = j - i; run > 1; run--) {
			k = i + arc4random_uniform((uint32_t)run);
			t = mx[k];
			mx[k] = mx[i + run - 1];
			mx[i + run - 1] = t;
		}
	}
}

/*
 * parse_answer - the records of rrtype in the answer packet, into slot.
 * Sets l->st[slot] and l->err[slot]. Robust to malformed packets: any
 * parse failure is a temporary failure, a bad record is skipped.
 */
static void
parse_answer(struct dns_lookup *l, int slot, int rrtype, int rcode,
    const unsigned char *pkt, int len)
{
	ns_msg msg;
	ns_rr rr;
	char name[NS_MAXDNAME];
	const unsigned char *rd;
	struct sockaddr_storage *ss;
	int i, n, prcode;
	size_t found = 0, nulls = 0, j;

	if (rcode == ns_r_nxdomain) {
		l->st[slot] = DNS_NXDOMAIN;
		l->err[slot] = "host not found";
		return;
	}
	if (rcode != 0 || pkt == NULL) {
		l->st[slot] = DNS_TEMPFAIL;
		l->err[slot] = "temporary DNS failure (SERVFAIL)";
		return;
	}
	if (ns_initparse(pkt, len, &msg) == -1) {
		l->st[slot] = DNS_TEMPFAIL;
		l->err[slot] = "malformed DNS reply";
		return;
	}
	prcode = ns_msg_getflag(msg, ns_f_rcode);
	if (prcode == ns_r_nxdomain) {
		l->st[slot] = DNS_NXDOMAIN;
		l->err[slot] = "host not found";
		return;
	}
	if (prcode != ns_r_noerror) {
		l->st[slot] = DNS_TEMPFAIL;
		l->err[slot] = "temporary DNS failure (SERVFAIL)";
		return;
	}
	n = ns_msg_count(msg, ns_s_an);
	for (i = 0; i < n; i++) {
		if (ns_parserr(&msg, ns_s_an, i, &rr) == -1) {
			/* A truncated answer section: keep what parsed. */
			break;
		}
		if (ns_rr_class(rr) != ns_c_in || (int)ns_rr_type(rr) != rrtype)
			continue;	/* e.g. the CNAMEs of a chain */
		rd = ns_rr_rdata(rr);
		if (rrtype == RR_MX) {
			if (ns_rr_rdlen(rr) < 3 || l->nmx >= DNS_MX_MAX)
				continue;
			if (ns_name_uncompress(ns_msg_base(msg),
			    ns_msg_end(msg), rd + 2, name, sizeof(name)) == -1)
				continue;
			found++;
			/* RFC 7505: "." is the null MX. */
			if (name[0] == '\0' || strcmp(name, ".") == 0) {
				nulls++;
				continue;
			}
			l->mx = xreallocarray(l->mx, l->nmx + 1,
			    sizeof(*l->mx));
			/* Names are case-insensitive; compression copies
			 * the case of the question. */
			for (j = 0; name[j] != '\0'; j++)
				name[j] = (char)tolower((unsigned char)name[j]);
			l->mx[l->nmx].pref = ns_get16(rd);
			l->mx[l->nmx].host = xstrdup(name);
			l->nmx++;
		} else {
			if (l->naddrs[slot] >= DNS_ADDR_MAX)
				continue;
			if ((rrtype == RR_A && ns_rr_rdlen(rr) != 4) ||
			    (rrtype == RR_AAAA && ns_rr_rdlen(rr) != 16))
				continue;
			l->addrs[slot] = xreallocarray(l->addrs[slot],
			    l->naddrs[slot] + 1, sizeof(*ss));
			ss = &l->addrs[slot][l->naddrs[slot]++];
			memset(ss, 0, sizeof(*ss));
			if (rrtype == RR_A) {
				struct sockaddr_in *sin = (void *)ss;

				sin->sin_family = AF_INET;
				memcpy(&sin->sin_addr, rd, 4);
			} else {
				struct sockaddr_in6 *sin6 = (void *)ss;

				sin6->sin6_family = AF_INET6;
				memcpy(&sin6->sin6_addr, rd, 16);
			}
			found++;
		}
	}
	if (rrtype == RR_MX && nulls > 0 && l->nmx == 0) {
		l->st[slot] = DNS_NULLMX;
		l->err[slot] = "domain does not accept mail (null MX)";
		return;
	}
	if (found == 0) {
		l->st[slot] = DNS_NODATA;
		l->err[slot] = "no data record of the requested type";
		return;
	}
	/*
	 * A null MX mixed with real ones violates RFC 7505 3; the real
	 * ones were kept and the "." dropped.
	 */
	l->st[slot] = DNS_OK;
	l->err[slot] = NULL;
}

/* lookup_complete - every query answered: hand over from our own event */
static void
lookup_complete(struct dns_lookup *l)
{
	l->complete = true;
	event_del(l->ev);
	event_active(l->ev, EV_WRITE, 0);
}

/* ub_callback - one unbound answer (see the lifetime rules above) */
static void
ub_callback(void *mydata, int rcode, void *pkt, int len, int sec,
    char *why_bogus, int was_ratelimited)
{
	struct dns_query *q = mydata;
	struct dns_lookup *l = q->lookup;

	if (q->dns->closing)
		return;	/* dns_free frees the query */
	TAILQ_REMOVE(&q->dns->queries, q, entry);
	if (l != NULL) {
		l->q[q->slot] = NULL;
		parse_answer(l, q->slot, q->rrtype, rcode, pkt, len);
		if (--l->outstanding == 0)
			lookup_complete(l);
	}
	free(q);
}

/* lookup_new - a handle on the dns lists, its event armed for timeout */
static struct dns_lookup *
lookup_new(struct dns *dns, enum dns_kind kind, const char *name, void *arg)
{
	struct dns_lookup *l;
	struct timeval tv = { dns->timeout, 0 };

	l = xcalloc(1, sizeof(*l));
	l->dns = dns;
	l->kind = kind;
	l->name = xstrdup(name);
	l->arg = arg;
	l->st[0] = l->st[1] = DNS_TEMPFAIL;
	l->err[0] = l->err[1] = "DNS lookup not started";
	if ((l->ev = event_new(dns->base, -1, 0, lookup_fire, l)) == NULL)
		fatalx("dns: event_new failed");
	event_add(l->ev, &tv);
	TAILQ_INSERT_TAIL(&dns->lookups, l, entry);
	dns->npending++;
	return l;
}

/* lookup_query - start one unbound query for slot */
static void
lookup_query(struct dns_lookup *l, int slot, int rrtype)
{
	struct dns *dns = l->dns;
	struct dns_query *q;
	int rc;

	q = xcalloc(1, sizeof(*q));
	q->dns = dns;
	q->lookup = l;
	q->slot = slot;
	q->rrtype = rrtype;
	TAILQ_INSERT_TAIL(&dns->queries, q, entry);
	l->q[slot] = q;
	l->outstanding++;
	log_debug("dns", "query %s type %d", l->name, rrtype);
	/* The callback may run before this returns (local data). */
	rc = ub_resolve_event(dns->ub, l->name, rrtype, 1, q, ub_callback,
	    NULL);
	if (rc != 0) {
		/* Never queued: unbound will not call back for it. */
		TAILQ_REMOVE(&dns->queries, q, entry);
		free(q);
		l->q[slot] = NULL;
		l->st[slot] = DNS_TEMPFAIL;
		l->err[slot] = ub_strerror(rc);
		log_debug("dns", "ub_resolve_event %s: %s", l->name,
		    ub_strerror(rc));
		if (--l->outstanding == 0)
			lookup_complete(l);
	}
}

/* deliver_mx - build the MX result and call back */
static void
deliver_mx(struct dns_lookup *l)
{
	struct dns_mx_result res;
	struct dns_mx implicit;

	memset(&res, 0, sizeof(res));
	res.status = l->st[0];
	res.error = l->err[0];
	if (l->st[0] == DNS_OK) {
		mx_sort(l->mx, l->nmx);
		res.mx = l->mx;
		res.nmx = l->nmx;
	} else if (l->st[0] == DNS_NODATA || l->literal) {
		/* RFC 5321 5.1: no MX records: the domain is its own MX. */
		implicit.pref = 0;
		implicit.host = l->name;
		res.status = DNS_OK;
		res.error = NULL;
		res.mx = &implicit;
		res.nmx = 1;
		res.implicit = true;
	}
	log_debug("dns", "MX %s: %s, %zu host(s)%s", l->name,
	    dns_status_str(res.status), res.nmx,
	    res.implicit ? " (implicit)" : "");
	l->mx_cb(&res, l->arg);
}

/* deliver_addr - merge A and AAAA (IPv4 first) and call back */
static void
deliver_addr(struct dns_lookup *l)
{
	struct dns_addr_result res;
	struct sockaddr_storage *all = NULL;
	size_t n;

	memset(&res, 0, sizeof(res));
	n = l->naddrs[0] + l->naddrs[1];
	if (n > 0) {
		all = xreallocarray(NULL, n, sizeof(*all));
		if (l->naddrs[0] > 0)
			memcpy(all, l->addrs[0], l->naddrs[0] * sizeof(*all));
		if (l->naddrs[1] > 0)
			memcpy(all + l->naddrs[0], l->addrs[1],
			    l->naddrs[1] * sizeof(*all));
		res.status = DNS_OK;
		res.addrs = all;
		res.naddrs = n;
	} else if (l->st[0] == DNS_TEMPFAIL || l->st[1] == DNS_TEMPFAIL) {
		/* One family failing for now may hide the other's data. */
		res.status = DNS_TEMPFAIL;
		res.error = l->st[0] == DNS_TEMPFAIL ? l->err[0] : l->err[1];
	} else if (l->st[0] == DNS_NXDOMAIN && l->st[1] == DNS_NXDOMAIN) {
		res.status = DNS_NXDOMAIN;
		res.error = l->err[0];
	} else {
		res.status = DNS_NODATA;
		res.error = "no address record";
	}
	log_debug("dns", "A/AAAA %s: %s, %zu address(es)", l->name,
	    dns_status_str(res.status), res.naddrs);
	l->addr_cb(&res, l->arg);
	free(all);
}

/* lookup_fire - our event: hand the result over, or time out */
static void
lookup_fire(evutil_socket_t fd, short what, void *arg)
{
	struct dns_lookup *l = arg;
	int i;

	if (!l->complete) {
		for (i = 0; i < 2; i++)
			if (l->q[i] != NULL) {
				l->st[i] = DNS_TEMPFAIL;
				l->err[i] = "DNS lookup timed out";
			}
	}
	/* Off the lists first: the callback may free the dns object. */
	lookup_detach(l);
	if (l->kind == DNS_KIND_MX)
		deliver_mx(l);
	else
		deliver_addr(l);
	lookup_release(l);
}

struct dns_lookup *
dns_lookup_mx(struct dns *dns, const char *domain, dns_mx_fn cb, void *arg)
{
	struct dns_lookup *l;
	struct sockaddr_storage ss;

	l = lookup_new(dns, DNS_KIND_MX, domain, arg);
	l->mx_cb = cb;
	if (dns_parse_ip_literal(domain, &ss)) {
		l->literal = true;
		lookup_complete(l);
	} else {
		l->outstanding++;
		lookup_query(l, 0, RR_MX);
		if (--l->outstanding == 0)
			lookup_complete(l);
	}
	return l;
}

struct dns_lookup *
dns_lookup_addr(struct dns *dns, const char *host, dns_addr_fn cb,
    void *arg)
{
	struct dns_lookup *l;
	struct sockaddr_storage ss;
	int slot;

	l = lookup_new(dns, DNS_KIND_ADDR, host, arg);
	l->addr_cb = cb;
	if (dns_parse_ip_literal(host, &ss)) {
		l->literal = true;
		slot = ss.ss_family == AF_INET ? 0 : 1;
		l->addrs[slot] = xmalloc(sizeof(ss));
		l->addrs[slot][0] = ss;
		l->naddrs[slot] = 1;
		l->st[0] = l->st[1] = DNS_OK;
		lookup_complete(l);
		return l;
	}
	/* Hold the count up: the A answer may come before AAAA is asked. */
	l->outstanding++;
	lookup_query(l, 0, RR_A);
	lookup_query(l, 1, RR_AAAA);
	if (--l->outstanding == 0)
		lookup_complete(l);
	return l;
}

void
dns_cancel(struct dns_lookup **lp)
{
	struct dns_lookup *l = *lp;

	if (l == NULL)
		return;
	*lp = NULL;
	lookup_detach(l);
	lookup_release(l);
}

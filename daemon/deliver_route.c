/*
 * deliver_route.c - the routing of an SMTP delivery job: where to
 * connect, in which order, and what the failures add up to. Looks up the
 * MX hosts of the next hop (RFC 5321 5.1) or takes a fixed next hop,
 * looks up each host's addresses, tries them one by one, and keeps the
 * most telling soft and hard failure so that the job bounces only when
 * every attempt failed for good.
 *
 * Owns nothing of its own: it fills in the routing fields of struct
 * smtp_delivery (hosts, addrs, the failure reasons) and starts the
 * loop's resolver. Leaves to deliver_smtp.c the start and finish of a
 * job, the connections and SMTP sessions themselves (it calls
 * smtp_session_connect() for each address), the connection cache and
 * the recipients' statuses (deliver_smtp_fail_all()); DNS itself is
 * dns.c's.
 *
 * RFCs: 5321 (4.2.1 reply classes, 5.1 MX and address order), 7505
 * (null MX), 3463 (enhanced status codes).
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "deliver_smtp-private.h"
#include "delivery.h"
#include "dns.h"
#include "log.h"
#include "xmalloc.h"

static void route_next_host(struct smtp_delivery *);

/* ---- per-loop resolver ---- */

/*
 * ctx_dns - the loop's resolver for this configuration. A reload that
 * changes dns_resolver takes effect once no lookup is in flight.
 */
static struct dns *
ctx_dns(struct smtp_ctx *ctx, const struct config *cf, const char **error_r)
{
	const char *want = cf->dns_resolver != NULL ? cf->dns_resolver : "";

	if (ctx->dns != NULL && strcmp(ctx->resolver, want) != 0 &&
	    dns_pending(ctx->dns) == 0) {
		dns_free(&ctx->dns);
		free(ctx->resolver);
		ctx->resolver = NULL;
	}
	if (ctx->dns == NULL) {
		ctx->dns = dns_new(ctx->base, *want != '\0' ? want : NULL,
		    error_r);
		if (ctx->dns == NULL)
			return NULL;
		ctx->resolver = xstrdup(want);
	}
	return ctx->dns;
}

/* ---- delivery: routing and failures ---- */

/*
 * route_note_failure - remember why an attempt failed. The job fails hard
 * only when every failure was hard: one soft failure means a later
 * retry may succeed (RFC 5321 4.2.1, 5.1).
 */
void
route_note_failure(struct smtp_delivery *dl, bool hard, const char *dsn,
    const char *reason)
{
	log_debug("smtp", "%s: attempt failed (%s): %s",
	    dl->job->queue_id != NULL ? dl->job->queue_id : "-",
	    hard ? "hard" : "soft", reason);
	if (hard) {
		free(dl->hard_reason);
		dl->hard_reason = xstrdup(reason);
		snprintf(dl->hard_dsn, sizeof(dl->hard_dsn), "%s", dsn);
	} else {
		dl->any_soft = true;
		free(dl->soft_reason);
		dl->soft_reason = xstrdup(reason);
		snprintf(dl->soft_dsn, sizeof(dl->soft_dsn), "%s", dsn);
	}
}

/* route_exhausted - no host or address left to try */
static void
route_exhausted(struct smtp_delivery *dl)
{
	if (dl->any_soft || dl->hard_reason == NULL)
		deliver_smtp_fail_all(dl, DELIVERY_DEFERRED,
		    dl->soft_reason != NULL ? dl->soft_dsn : "4.4.1",
		    dl->soft_reason != NULL ? dl->soft_reason :
		    "no route to the next hop");
	else
		deliver_smtp_fail_all(dl, DELIVERY_BOUNCED, dl->hard_dsn,
		    dl->hard_reason);
}

static void
on_addr(const struct dns_addr_result *r, void *arg)
{
	struct smtp_delivery *dl = arg;
	const char *host = dl->hosts[dl->ihost];
	char *why;

	dl->lookup = NULL;
	if (r->status != DNS_OK) {
		why = xasprintf("Host or domain name not found. Name service "
		    "error for name=%s type=A: %s", host,
		    r->error != NULL ? r->error : dns_status_str(r->status));
		/*
		 * A missing MX host is hard; a fixed next hop that does not
		 * resolve is the operator's error: keep the mail.
		 */
		if (dl->job->nexthop_is_relayhost)
			route_note_failure(dl, false, "4.3.5", why);
		else if (r->status == DNS_TEMPFAIL || !dl->job->nexthop_use_mx)
			route_note_failure(dl, false, "4.4.3", why);
		else
			route_note_failure(dl, true, "5.4.4", why);
		free(why);
		dl->ihost++;
		route_next_host(dl);
		return;
	}
	free(dl->addrs);
	dl->addrs = xreallocarray(NULL, r->naddrs, sizeof(*dl->addrs));
	memcpy(dl->addrs, r->addrs, r->naddrs * sizeof(*dl->addrs));
	dl->naddrs = r->naddrs;
	dl->iaddr = 0;
	route_next_addr(dl);
}

static void
route_next_host(struct smtp_delivery *dl)
{
	if (dl->ihost >= dl->nhosts) {
		route_exhausted(dl);
		return;
	}
	dl->lookup = dns_lookup_addr(dl->ctx->dns, dl->hosts[dl->ihost],
	    on_addr, dl);
}

/* route_next_attempt - the next address; TLS is tried again there */
void
route_next_attempt(struct smtp_delivery *dl)
{
	dl->iaddr++;
	dl->no_tls = dl->plain_retried = false;
	route_next_addr(dl);
}

void
route_next_addr(struct smtp_delivery *dl)
{
	if (dl->iaddr >= dl->naddrs) {
		dl->ihost++;
		route_next_host(dl);
		return;
	}
	smtp_session_connect(dl);
}

static void
on_mx(const struct dns_mx_result *r, void *arg)
{
	struct smtp_delivery *dl = arg;
	const char *domain = dl->job->nexthop_host;
	char *why;
	size_t i;

	dl->lookup = NULL;
	if (r->status != DNS_OK && r->status != DNS_TEMPFAIL &&
	    dl->job->nexthop_is_relayhost) {
		/* Postfix likewise: never bounce for a broken relayhost */
		why = xasprintf("relayhost configuration problem: Host or "
		    "domain name not found. Name service error for name=%s "
		    "type=MX: %s", domain, r->status == DNS_NULLMX ?
		    "null MX" : "Host not found");
		deliver_smtp_fail_all(dl, DELIVERY_DEFERRED, "4.3.5", why);
		free(why);
		return;
	}
	switch (r->status) {
	case DNS_OK:
		break;
	case DNS_NULLMX:
		why = xasprintf("Domain %s does not accept mail (nullMX)",
		    domain);
		deliver_smtp_fail_all(dl, DELIVERY_BOUNCED, "5.1.10", why);
		free(why);
		return;
	case DNS_NXDOMAIN:
	case DNS_NODATA:
		why = xasprintf("Host or domain name not found. Name service "
		    "error for name=%s type=MX: Host not found", domain);
		deliver_smtp_fail_all(dl, DELIVERY_BOUNCED, "5.4.4", why);
		free(why);
		return;
	case DNS_TEMPFAIL:
		why = xasprintf("Host or domain name not found. Name service "
		    "error for name=%s type=MX: %s, try again", domain,
		    r->error != NULL ? r->error : "temporary failure");
		deliver_smtp_fail_all(dl, DELIVERY_DEFERRED, "4.4.3", why);
		free(why);
		return;
	}
	/* XXX(#2): an MX pointing back at myhostname is not detected. */
	dl->hosts = xreallocarray(NULL, r->nmx, sizeof(*dl->hosts));
	for (i = 0; i < r->nmx; i++)
		dl->hosts[i] = xstrdup(r->mx[i].host);
	dl->nhosts = r->nmx;
	dl->ihost = 0;
	route_next_host(dl);
}

/* route_begin - find where to connect, then connect */
void
route_begin(struct smtp_delivery *dl)
{
	struct delivery_job *job = dl->job;
	const char *err = NULL;
	char *why;

	if (ctx_dns(dl->ctx, job->config, &err) == NULL) {
		log_warnx("smtp: cannot start the DNS resolver: %s", err);
		why = xasprintf("DNS resolver unavailable: %s", err);
		deliver_smtp_fail_all(dl, DELIVERY_DEFERRED, "4.3.5", why);
		free(why);
		return;
	}
	if (job->nexthop_use_mx) {
		dl->lookup = dns_lookup_mx(dl->ctx->dns, job->nexthop_host,
		    on_mx, dl);
		return;
	}
	dl->hosts = xmalloc(sizeof(*dl->hosts));
	dl->hosts[0] = xstrdup(job->nexthop_host);
	dl->nhosts = 1;
	dl->ihost = 0;
	route_next_host(dl);
}

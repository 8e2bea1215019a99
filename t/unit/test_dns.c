/*
 * test_dns.c - dns.c against a real DNS server: dnsmasq on a free
 * loopback port with a generated zone (MX with equal preferences, A and
 * AAAA, CNAME, null MX, NXDOMAIN, NODATA), plus IP literals, temporary
 * failure, cancellation and freeing with lookups in flight.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "dns.h"
#include "log.h"
#include "xmalloc.h"

#include "tap.h"
#include "../helpers/testproc.h"


static struct event_base *base;
static char got[1024];
static int ncallbacks;

/* fmt_mx - "10 a,10 b,20 c" with equal preferences sorted by name */
static void
fmt_mx(const struct dns_mx_result *r)
{
	size_t i, j;
	struct dns_mx *v, t;

	v = xreallocarray(NULL, r->nmx + 1, sizeof(*v));
	if (r->nmx > 0)
		memcpy(v, r->mx, r->nmx * sizeof(*v));
	/* keep the preference order as returned; sort names within a run */
	for (i = 0; i < r->nmx; i++)
		for (j = i + 1; j < r->nmx && v[j].pref == v[i].pref; j++)
			if (strcmp(v[j].host, v[i].host) < 0) {
				t = v[i];
				v[i] = v[j];
				v[j] = t;
			}
	snprintf(got, sizeof(got), "%s", dns_status_str(r->status));
	for (i = 0; i < r->nmx; i++)
		snprintf(got + strlen(got), sizeof(got) - strlen(got),
		    "%s%u %s", i == 0 ? " " : ",", v[i].pref, v[i].host);
	if (r->implicit)
		strncat(got, " implicit", sizeof(got) - strlen(got) - 1);
	free(v);
}

static void
on_mx(const struct dns_mx_result *r, void *arg)
{
	fmt_mx(r);
	ncallbacks++;
	event_base_loopbreak(base);
}

static void
on_addr(const struct dns_addr_result *r, void *arg)
{
	char a[INET6_ADDRSTRLEN];
	size_t i;
	const void *p;
	bool ordered = true;
	char prev[INET6_ADDRSTRLEN] = "";
	int prevfam = 0;

	snprintf(got, sizeof(got), "%s", dns_status_str(r->status));
	for (i = 0; i < r->naddrs; i++) {
		/* DNS servers rotate records: within a family, any order */
		if (r->addrs[i].ss_family == prevfam && i > 0)
			ordered = false;
		prevfam = r->addrs[i].ss_family;
		const struct sockaddr *sa =
		    (const struct sockaddr *)&r->addrs[i];

		if (sa->sa_family == AF_INET)
			p = &((const struct sockaddr_in *)sa)->sin_addr;
		else
			p = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		inet_ntop(r->addrs[i].ss_family, p, a, sizeof(a));
		if (!ordered && strcmp(prev, a) > 0) {
			/* swap with the previous entry (two at most here) */
			got[strlen(got) - strlen(prev)] = '\0';
			snprintf(got + strlen(got), sizeof(got) - strlen(got),
			    "%s,%s", a, prev);
		} else
			snprintf(got + strlen(got), sizeof(got) - strlen(got),
			    "%s%s", i == 0 ? " " : ",", a);
		snprintf(prev, sizeof(prev), "%s", a);
		ordered = true;
	}
	ncallbacks++;
	event_base_loopbreak(base);
}

static void
on_never(const struct dns_addr_result *r, void *arg)
{
	ncallbacks++;
	snprintf(got, sizeof(got), "CALLED");
}

/* run - dispatch until a callback breaks the loop, or 10 s */
static void
run(void)
{
	struct timeval tv = { 10, 0 };

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

/* sleep_loop - run the loop for ms without expecting anything */
static void
sleep_loop(int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

struct dns_case {
	const char *name;
	bool	 mx;		/* MX lookup, else A/AAAA */
	const char *query;
	const char *want;
};

static const struct dns_case cases[] = {
	{ "MX, two at 10 and one at 20", true, "example.test",
	  "OK 10 mx1.example.test,10 mx3.example.test,20 mx2.example.test" },
	{ "MX lookup is case-insensitive", true, "EXAMPLE.test",
	  "OK 10 mx1.example.test,10 mx3.example.test,20 mx2.example.test" },
	{ "NODATA gives the implicit MX", true, "nodata.example.test",
	  "OK 0 nodata.example.test implicit" },
	{ "NXDOMAIN", true, "nx.example.test", "NXDOMAIN" },
	{ "null MX", true, "nullmx.example.test", "NULLMX" },
	{ "null MX mixed with a real one is ignored", true,
	  "mixednull.example.test", "OK 10 mx1.example.test" },
	{ "address literal domain", true, "[192.0.2.7]",
	  "OK 0 [192.0.2.7] implicit" },
	{ "A only", false, "mx1.example.test", "OK 192.0.2.10" },
	{ "A and AAAA, IPv4 first", false, "mx2.example.test",
	  "OK 192.0.2.20,2001:db8::20" },
	{ "AAAA only", false, "v6only.example.test", "OK 2001:db8::6" },
	{ "several A", false, "multi.example.test",
	  "OK 192.0.2.41,192.0.2.42" },
	{ "CNAME followed", false, "alias.example.test", "OK 192.0.2.10" },
	{ "NXDOMAIN host", false, "nx.example.test", "NXDOMAIN" },
	{ "NODATA host (MX only)", false, "example.test", "NODATA" },
	{ "IPv4 literal, no DNS", false, "127.0.0.1", "OK 127.0.0.1" },
	{ "bracketed IPv4 literal", false, "[127.0.0.1]", "OK 127.0.0.1" },
	{ "IPv6 literal", false, "::1", "OK ::1" },
	{ "RFC 5321 IPv6 literal", false, "[IPv6:2001:db8::1]",
	  "OK 2001:db8::1" },
};

static const char zone[] =
    "mx-host=example.test,mx1.example.test,10\n"
    "mx-host=example.test,mx3.example.test,10\n"
    "mx-host=example.test,mx2.example.test,20\n"
    "host-record=mx1.example.test,192.0.2.10\n"
    "host-record=mx2.example.test,192.0.2.20,2001:db8::20\n"
    "host-record=mx3.example.test,192.0.2.30\n"
    "host-record=v6only.example.test,2001:db8::6\n"
    "host-record=multi.example.test,192.0.2.41\n"
    "host-record=multi.example.test,192.0.2.42\n"
    "host-record=nodata.example.test,192.0.2.50\n"
    "cname=alias.example.test,mx1.example.test\n"
    /* RFC 7505 null MX: preference 0, root name */
    "dns-rr=nullmx.example.test,15,000000\n"
    "dns-rr=mixednull.example.test,15,000000\n"
    "mx-host=mixednull.example.test,mx1.example.test,10\n";

int
main(void)
{
	char dir[] = "/tmp/test_dns.XXXXXX";
	char resolver[64];
	const char *err = NULL;
	struct dns *dns;
	struct dns_lookup *l;
	size_t i;
	int port;

	log_init("test_dns", false);
	if (getenv("TEST_DEBUG") != NULL)
		log_set_debug("all");
	if (access(TESTPROC_DNSMASQ, X_OK) != 0) {
		printf("1..0 # SKIP dnsmasq not installed\n");
		return 0;
	}
	if (mkdtemp(dir) == NULL) {
		printf("Bail out! no temp dir\n");
		return 1;
	}
	if ((port = testproc_dnsmasq(dir, zone)) == -1)
		return 1;

	base = event_base_new();
	snprintf(resolver, sizeof(resolver), "127.0.0.1@%d", port);
	dns = dns_new(base, resolver, &err);
	ok(dns != NULL, "dns_new with %s", resolver);
	if (dns == NULL) {
		printf("#   error: %s\n", err);
		return done_testing();
	}

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		got[0] = '\0';
		ncallbacks = 0;
		if (cases[i].mx)
			l = dns_lookup_mx(dns, cases[i].query, on_mx, NULL);
		else
			l = dns_lookup_addr(dns, cases[i].query, on_addr,
			    NULL);
		ok(l != NULL && ncallbacks == 0,
		    "%s: callback not called synchronously", cases[i].name);
		run();
		is_str(got, cases[i].want, "%s (%s)", cases[i].name,
		    cases[i].query);
	}
	is_int(dns_pending(dns), 0, "nothing pending after the lookups");

	/* a cancelled lookup never calls back */
	ncallbacks = 0;
	got[0] = '\0';
	l = dns_lookup_addr(dns, "mx2.example.test", on_never, NULL);
	dns_cancel(&l);
	ok(l == NULL, "dns_cancel clears the handle");
	sleep_loop(300);
	is_int(ncallbacks, 0, "cancelled lookup: no callback");
	/* a cancelled literal lookup (already complete) never calls back */
	l = dns_lookup_addr(dns, "127.0.0.1", on_never, NULL);
	dns_cancel(&l);
	sleep_loop(50);
	is_int(ncallbacks, 0, "cancelled literal lookup: no callback");

	/* the resolver still works after the cancellations */
	l = dns_lookup_addr(dns, "mx1.example.test", on_addr, NULL);
	run();
	is_str(got, "OK 192.0.2.10", "lookup after cancellations");

	/* freeing with lookups in flight: no callback, no leak (ASan) */
	ncallbacks = 0;
	(void)dns_lookup_addr(dns, "mx2.example.test", on_never, NULL);
	(void)dns_lookup_mx(dns, "example.test", (dns_mx_fn)on_never, NULL);
	dns_free(&dns);
	ok(dns == NULL, "dns_free clears the pointer");
	sleep_loop(300);
	is_int(ncallbacks, 0, "dns_free: pending callbacks never called");

	/* temporary failure: a resolver that does not answer */
	testproc_kill_all();
	dns = dns_new(base, resolver, &err);
	dns_set_timeout(dns, 2);
	got[0] = '\0';
	l = dns_lookup_mx(dns, "example.test", on_mx, NULL);
	run();
	is_str(got, "TEMPFAIL", "dead resolver: temporary failure");
	got[0] = '\0';
	l = dns_lookup_addr(dns, "mx1.example.test", on_addr, NULL);
	run();
	is_str(got, "TEMPFAIL", "dead resolver: address temporary failure");
	dns_free(&dns);

	/* bad resolver syntax is reported */
	err = NULL;
	dns = dns_new(base, "not-an-address", &err);
	ok(dns == NULL && err != NULL, "dns_new rejects a bad resolver (%s)",
	    err != NULL ? err : "no error");
	dns_free(&dns);

	event_base_free(base);
	testproc_dnsmasq_remove(dir);
	return done_testing();
}

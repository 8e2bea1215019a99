/*
 * dns_ub.c - the libunbound options every context of ours gets.
 *
 * libunbound answers some names itself, without asking the forwarder:
 * .test (RFC 6761) and the reverse zones of the documentation networks
 * (RFC 5737, RFC 3849), which the tests' zones use, and the private and
 * link-local reverse zones (RFC 6303: RFC 1918, RFC 6598, RFC 3927, RFC
 * 4193, fe80::/10) and home.arpa (RFC 8375). A site's own resolver may
 * well serve the latter (%{p} and "ptr" of an internal client, RFC 7208
 * 5.5, 7.3), so when a resolver is configured it is asked. localhost,
 * 127/8, ::1, 0/8 and the broadcast address stay local. "nodefault"
 * does not work; "transparent" does (notes 0.2).
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <unbound.h>

#include "dns_ub.h"

static const char *const test_zones[] = {
	"test.", "2.0.192.in-addr.arpa.", "100.51.198.in-addr.arpa.",
	"113.0.203.in-addr.arpa.", "8.b.d.0.1.0.0.2.ip6.arpa.",
};

static const char *const private_zones[] = {
	"10.in-addr.arpa.", "168.192.in-addr.arpa.", "254.169.in-addr.arpa.",
	"d.f.ip6.arpa.", "8.e.f.ip6.arpa.", "9.e.f.ip6.arpa.",
	"a.e.f.ip6.arpa.", "b.e.f.ip6.arpa.", "home.arpa.",
};

static int
transparent(struct ub_ctx *ub, const char *zone)
{
	char opt[80];

	snprintf(opt, sizeof(opt), "%s transparent", zone);
	return ub_ctx_set_option(ub, "local-zone:", opt);
}

/* private_transparent - the RFC 6303 zones and home.arpa */
static int
private_transparent(struct ub_ctx *ub)
{
	char zone[40];
	size_t i;
	int rc, n;

	for (i = 0; i < sizeof(private_zones) / sizeof(*private_zones); i++)
		if ((rc = transparent(ub, private_zones[i])) != 0)
			return rc;
	/* 172.16/12 (RFC 1918) and 100.64/10 (RFC 6598) */
	for (n = 16; n <= 31; n++) {
		snprintf(zone, sizeof(zone), "%d.172.in-addr.arpa.", n);
		if ((rc = transparent(ub, zone)) != 0)
			return rc;
	}
	for (n = 64; n <= 127; n++) {
		snprintf(zone, sizeof(zone), "%d.100.in-addr.arpa.", n);
		if ((rc = transparent(ub, zone)) != 0)
			return rc;
	}
	return 0;
}

int
dns_ub_configure(struct ub_ctx *ub, const char *resolver,
    const char **error_r)
{
	bool has_resolver = resolver != NULL && *resolver != '\0';
	size_t i;
	int rc;

	if (has_resolver)
		rc = ub_ctx_set_fwd(ub, resolver);
	else if ((rc = ub_ctx_resolvconf(ub, NULL)) == 0)
		rc = ub_ctx_hosts(ub, NULL);
	for (i = 0; rc == 0 && i < sizeof(test_zones) / sizeof(*test_zones);
	    i++)
		rc = transparent(ub, test_zones[i]);
	if (rc == 0 && has_resolver)
		rc = private_transparent(ub);
	if (rc != 0) {
		*error_r = ub_strerror(rc);
		return -1;
	}
	return 0;
}

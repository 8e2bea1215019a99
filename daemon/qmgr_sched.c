/*
 * qmgr_sched.c - the queue manager's scheduling decisions as pure
 * functions (see qmgr_sched.h): routing, grouping, backoff, expiry.
 *
 * qmgr.c owns the state (messages, destinations, jobs) and the threads;
 * this file only answers questions about values, so that each rule can be
 * tested in isolation.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "qmgr_sched.h"
#include "xmalloc.h"

void
qmgr_rcpt_domain(const char *address, char *out, size_t n)
{
	const char *at = strrchr(address, '@');
	size_t i, len;

	out[0] = '\0';
	if (at == NULL || n == 0)
		return;
	len = strlen(at + 1);
	if (len >= n)
		len = n - 1;
	for (i = 0; i < len; i++)
		out[i] = (char)tolower((unsigned char)at[1 + i]);
	out[len] = '\0';
	if (len > 1 && out[len - 1] == '.')
		out[len - 1] = '\0';
}

int
qmgr_route_rcpt(const char *domain, bool is_local,
    const struct nexthop *relayhost, struct qmgr_route *r,
    const char **error_r)
{
	size_t len;

	memset(r, 0, sizeof(*r));
	if (is_local) {
		r->transport = "maildir";
	} else if (relayhost != NULL && relayhost->host != NULL &&
	    relayhost->host[0] != '\0') {
		r->transport = "smtp";
		snprintf(r->host, sizeof(r->host), "%s", relayhost->host);
		snprintf(r->port, sizeof(r->port), "%s",
		    relayhost->port != NULL ? relayhost->port : "25");
		r->use_mx = relayhost->use_mx;
		r->is_relayhost = true;
	} else if (domain[0] == '\0') {
		*error_r = "no domain in recipient address";
		return -1;
	} else if (domain[0] == '[') {
		/* RFC 5321 4.1.3 address literal: that host, no MX lookup */
		len = strlen(domain);
		if (len < 3 || domain[len - 1] != ']') {
			*error_r = "malformed address literal";
			return -1;
		}
		domain++;
		len -= 2;
		if (len > 5 && strncasecmp(domain, "ipv6:", 5) == 0) {
			domain += 5;
			len -= 5;
		}
		r->transport = "smtp";
		snprintf(r->host, sizeof(r->host), "%.*s", (int)len, domain);
		snprintf(r->port, sizeof(r->port), "25");
		r->use_mx = false;
	} else {
		r->transport = "smtp";
		snprintf(r->host, sizeof(r->host), "%s", domain);
		snprintf(r->port, sizeof(r->port), "25");
		r->use_mx = true;
	}
	snprintf(r->key, sizeof(r->key), "%s:%s:%s:%d", r->transport,
	    r->host, r->port, r->use_mx);
	return 0;
}

size_t
qmgr_group(const char *const *keys, size_t n, size_t max, size_t *order_r,
    struct qmgr_batch *batches_r)
{
	bool *taken;
	size_t i, j, o = 0, nb = 0, run;

	if (max == 0)
		max = 1;
	taken = xcalloc(n > 0 ? n : 1, sizeof(*taken));
	/* O(n^2) in the worst case; n is one message's recipients */
	for (i = 0; i < n; i++) {
		if (taken[i])
			continue;
		run = 0;
		for (j = i; j < n; j++) {
			if (taken[j] || strcmp(keys[i], keys[j]) != 0)
				continue;
			taken[j] = true;
			if (run == 0 || run == max) {
				batches_r[nb].first = o;
				batches_r[nb].n = 0;
				nb++;
				run = 0;
			}
			order_r[o++] = j;
			batches_r[nb - 1].n++;
			run++;
		}
	}
	free(taken);
	return nb;
}

int
qmgr_backoff(time_t arrival, time_t now, int min, int max)
{
	long long age = (long long)now - (long long)arrival;

	if (max < min)
		max = min;
	if (age < min)
		return min;
	if (age > max)
		return max;
	return (int)age;
}

bool
qmgr_expired(time_t arrival, time_t now, bool null_sender,
    int max_lifetime, int bounce_lifetime)
{
	int lifetime = null_sender ? bounce_lifetime : max_lifetime;

	return (long long)now - (long long)arrival >= (long long)lifetime;
}

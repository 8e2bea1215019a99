/*
 * test_dns_sync.c - dns_sync.c against a real DNS server: dnsmasq on a
 * free loopback port with A, AAAA, MX, TXT (several strings, an embedded
 * NUL), PTR, CNAME and SPF (type 99) records, NXDOMAIN and NODATA, a
 * forwarded zone whose server is down (SERVFAIL or timeout), a resolver
 * that never answers (timeout within the deadline), per-thread contexts
 * and bad resolver syntax.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "buf.h"
#include "dns_sync.h"
#include "log.h"
#include "xmalloc.h"

#include "tap.h"
#include "../helpers/testproc.h"


struct dns_case {
	const char *name;
	const char *query;
	int	 type;
	const char *want;
};

static const struct dns_case cases[] = {
	{ "A", "mail.example.test", ns_t_a, "OK 198.51.100.7" },
	{ "AAAA", "mail.example.test", ns_t_aaaa, "OK 2001:db8::7" },
	{ "two A records", "multi.example.test", ns_t_a,
	  "OK 192.0.2.41,192.0.2.42" },
	{ "MX", "example.test", ns_t_mx, "OK 10 mail.example.test" },
	{ "TXT", "example.test", ns_t_txt, "OK [v=spf1 mx -all]" },
	{ "TXT of two strings concatenated", "multi.example.test", ns_t_txt,
	  "OK [v=spf1 ip4:192.0.2.0/24 -all]" },
	{ "TXT with an embedded NUL keeps its length", "nul.example.test",
	  ns_t_txt, "OK [ab\\0c]/4" },
	{ "empty TXT", "empty.example.test", ns_t_txt, "OK []" },
	{ "SPF type 99", "spf99.example.test", 99, "OK [v=spf1 -all]" },
	{ "PTR", "7.100.51.198.in-addr.arpa", ns_t_ptr,
	  "OK mail.example.test" },
	{ "CNAME followed for A", "alias.example.test", ns_t_a,
	  "OK 198.51.100.7" },
	{ "NXDOMAIN", "nx.example.test", ns_t_a, "NXDOMAIN" },
	{ "NODATA (A only)", "mail.example.test", ns_t_mx, "NODATA" },
	{ "NODATA TXT", "mail.example.test", ns_t_txt, "NODATA" },
	{ "server of the zone down", "x.broken.test", ns_t_txt, "TEMPFAIL" },
};

static const char zone[] =
    "mx-host=example.test,mail.example.test,10\n"
    "txt-record=example.test,\"v=spf1 mx -all\"\n"
    "host-record=mail.example.test,198.51.100.7,2001:db8::7\n"
    "host-record=multi.example.test,192.0.2.41\n"
    "host-record=multi.example.test,192.0.2.42\n"
    "txt-record=multi.example.test,\"v=spf1 ip4:192.0.2.0/24\",\" -all\"\n"
    /* TXT rdata: one string of 4 bytes, "ab", NUL, "c" */
    "dns-rr=nul.example.test,16,0461620063\n"
    "dns-rr=empty.example.test,16,00\n"
    /* SPF RR: "v=spf1 -all" (11 bytes) */
    "dns-rr=spf99.example.test,99,0b763d73706631202d616c6c\n"
    "ptr-record=7.100.51.198.in-addr.arpa,mail.example.test\n"
    "cname=alias.example.test,mail.example.test\n"
    "server=/broken.test/127.0.0.1#1\n";

/* fmt - the answer as one comparable line */
static void
fmt(const struct dns_sync_answer *a, char *out, size_t n)
{
	static const char *names[] = { "OK", "NXDOMAIN", "NODATA",
	    "TEMPFAIL" };
	char addr[INET6_ADDRSTRLEN];
	struct buf b;
	size_t i, j;
	const struct dns_sync_rr *r;

	buf_init(&b, 0);
	buf_append_str(&b, names[a->status]);
	for (i = 0; i < a->n; i++) {
		r = &a->rrs[i];
		buf_append_str(&b, i == 0 ? " " : ",");
		switch (r->type) {
		case ns_t_a:
			inet_ntop(AF_INET, &((const struct sockaddr_in *)
			    &r->addr)->sin_addr, addr, sizeof(addr));
			buf_append_str(&b, addr);
			break;
		case ns_t_aaaa:
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)
			    &r->addr)->sin6_addr, addr, sizeof(addr));
			buf_append_str(&b, addr);
			break;
		case ns_t_mx:
			buf_printf(&b, "%u %s", r->pref, r->name);
			break;
		case ns_t_txt:
		case 99:
			buf_append_str(&b, "[");
			for (j = 0; j < r->text_len; j++)
				if (r->text[j] == '\0')
					buf_append_str(&b, "\\0");
				else
					buf_append(&b, &r->text[j], 1);
			buf_append_str(&b, "]");
			if (strlen(r->text) != r->text_len)
				buf_printf(&b, "/%zu", r->text_len);
			break;
		default:
			buf_append_str(&b, r->name != NULL ? r->name : "?");
			break;
		}
	}
	snprintf(out, n, "%s", buf_cstr(&b));
	buf_deinit(&b);
}

/* sort_list - "OK b,a" -> "OK a,b" so record order does not matter */
static void
sort_list(char *s)
{
	char *sp = strchr(s, ' '), *items[16], tmp[512], *t;
	size_t n = 0, i, j;

	if (sp == NULL || s[0] != 'O' || strchr(sp, '[') != NULL)
		return;
	snprintf(tmp, sizeof(tmp), "%s", sp + 1);
	for (t = strtok(tmp, ","); t != NULL && n < 16; t = strtok(NULL, ","))
		items[n++] = t;
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			if (strcmp(items[j], items[i]) < 0) {
				t = items[i];
				items[i] = items[j];
				items[j] = t;
			}
	*sp = '\0';
	for (i = 0; i < n; i++)
		snprintf(s + strlen(s), 512 - strlen(s), "%s%s",
		    i == 0 ? " " : ",", items[i]);
}

/* thread_lookup - a lookup from another thread (its own context) */
static void *
thread_lookup(void *arg)
{
	struct dns_sync_answer a;
	char *got = arg;
	int i;

	for (i = 0; i < 20; i++) {
		dns_sync_query("mail.example.test", ns_t_a, 3000, &a);
		fmt(&a, got, 512);
		dns_sync_answer_free(&a);
		if (strcmp(got, "OK 198.51.100.7") != 0)
			break;
	}
	return NULL;
}

int
main(void)
{
	char dir[] = "/tmp/test_dns_sync.XXXXXX";
	char resolver[64], got[512], tgot[4][512];
	struct dns_sync_answer a;
	const char *err = NULL;
	pthread_t th[4];
	int64_t t0, took;
	size_t i;
	int port, silent, silent_port;

	log_init("test_dns_sync", false);
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

	snprintf(resolver, sizeof(resolver), "127.0.0.1@%d", port);
	ok(dns_sync_configure(resolver, &err) == 0, "configure %s", resolver);

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		dns_sync_query(cases[i].query, cases[i].type, 3000, &a);
		fmt(&a, got, sizeof(got));
		sort_list(got);
		is_str(got, cases[i].want, "%s (%s)", cases[i].name,
		    cases[i].query);
		ok(a.status == DNS_SYNC_OK || a.error != NULL,
		    "%s: an error text unless OK", cases[i].name);
		dns_sync_answer_free(&a);
	}

	/* every thread has its own context; all answer right */
	for (i = 0; i < 4; i++) {
		tgot[i][0] = '\0';
		pthread_create(&th[i], NULL, thread_lookup, tgot[i]);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		is_str(tgot[i], "OK 198.51.100.7", "thread %zu: 20 lookups", i);
	}

	/* a resolver that never answers: TEMPFAIL within the deadline */
	if ((silent = testproc_silent_udp(&silent_port)) == -1)
		return 1;
	snprintf(resolver, sizeof(resolver), "127.0.0.1@%d",
	    silent_port);
	ok(dns_sync_configure(resolver, &err) == 0, "configure silent %s",
	    resolver);
	dns_sync_query("mail.example.test", ns_t_a, 3000, &a);
	fmt(&a, got, sizeof(got));
	is_str(got, "OK 198.51.100.7",
	    "the thread keeps its context until reset");
	dns_sync_answer_free(&a);
	dns_sync_thread_reset();
	t0 = clock_ms();
	dns_sync_query("mail.example.test", ns_t_a, 700, &a);
	took = clock_ms() - t0;
	fmt(&a, got, sizeof(got));
	is_str(got, "TEMPFAIL", "silent resolver: temporary failure");
	ok(took >= 650 && took < 1500, "silent resolver: gave up after "
	    "%lld ms (deadline 700)", (long long)took);
	is_str(a.error, "DNS timeout", "silent resolver: the reason");
	dns_sync_answer_free(&a);
	/* the context works after a cancelled query */
	snprintf(resolver, sizeof(resolver), "127.0.0.1@%d", port);
	dns_sync_configure(resolver, &err);
	dns_sync_thread_reset();
	dns_sync_query("example.test", ns_t_mx, 3000, &a);
	fmt(&a, got, sizeof(got));
	is_str(got, "OK 10 mail.example.test", "lookup after a timeout");
	dns_sync_answer_free(&a);

	/* bad input */
	err = NULL;
	ok(dns_sync_configure("not-an-address", &err) == -1 && err != NULL,
	    "bad resolver syntax rejected (%s)", err != NULL ? err : "-");
	ok(dns_sync_configure("127.0.0.1@99999", &err) == -1,
	    "bad resolver port rejected");
	ok(dns_sync_configure("::1@53", &err) == 0, "IPv6 resolver accepted");
	dns_sync_configure(resolver, &err);
	dns_sync_query("", ns_t_a, 1000, &a);
	is_int(a.status, DNS_SYNC_NXDOMAIN, "empty name: NXDOMAIN");
	dns_sync_answer_free(&a);

	dns_sync_thread_reset();
	close(silent);
	testproc_kill_all();
	testproc_dnsmasq_remove(dir);
	return done_testing();
}

/*
 * fuzz_dns.c - libFuzzer target for the DNS answer parsing of
 * daemon/dns.c: the wire-format packets libunbound hands over (RFC 1035,
 * parsed with libresolv's ns_* functions) and IP address literals.
 *
 * The packet parser, parse_answer(), is static in dns.c: it is only
 * reached from libunbound's callback. Rather than wait for a resolver
 * that serves hostile packets, this file includes dns.c itself so that
 * the target calls parse_answer() and the result hand-over
 * (deliver_mx(), deliver_addr()) directly. XXX a public pure function
 * (dns_parse_answer()) would let this target link dns.o instead.
 *
 * Input layout: byte 0 selects the lookup kind (bits 0-1: MX, A+AAAA,
 * A, AAAA) and the unbound rcode/packet presence of each query (bits
 * 2-3 and 4-5: NOERROR, NXDOMAIN, SERVFAIL, no packet); bytes 1-2 are
 * the big-endian length of the first packet; the rest is the first
 * packet, then the second (AAAA). The whole input after byte 0 is also
 * tried as an address literal.
 *
 * Besides "no crash, no leak, no overread" it checks what the transports
 * rely on: MX hosts are non-empty, lower case, at most DNS_MX_MAX, and
 * handed over sorted by preference; a null MX gives no hosts; the
 * implicit MX is the domain itself; addresses are AF_INET then AF_INET6,
 * at most DNS_ADDR_MAX per family; a status is one of the enum and an
 * error text is set exactly when the status is not DNS_OK; an address
 * literal that parses prints and parses back to the same address.
 *
 * Build for libFuzzer (see fuzz/README.md):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. -Idaemon \
 *     fuzz/fuzz_dns.c daemon/buf.c daemon/xmalloc.c daemon/log.c \
 *     -o fuzz_dns -levent -lunbound -lresolv
 * or with -DFUZZ_STANDALONE (any compiler) as a program that runs the
 * files named on its command line, or stdin, as inputs. Do not link it
 * with dns.o as well (libpostern.a is fine: nothing pulls dns.o in).
 *
 * SPDX-License-Identifier: ISC
 */
#include "../daemon/dns.c"

#include <stdio.h>

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define FUZZ_DNS_NAME	"example.test"

/* check_mx - the MX result as the smtp transport receives it */
static void
check_mx(const struct dns_mx_result *r, void *arg)
{
	size_t i, j;

	(*(int *)arg)++;
	if ((r->status == DNS_OK) != (r->error == NULL))
		abort();
	if (r->status != DNS_OK) {
		if (r->nmx != 0 || r->mx != NULL)
			abort();
		return;
	}
	if (r->nmx == 0 || r->nmx > DNS_MX_MAX)
		abort();
	if (r->implicit && (r->nmx != 1 ||
	    strcmp(r->mx[0].host, FUZZ_DNS_NAME) != 0 || r->mx[0].pref != 0))
		abort();
	for (i = 0; i < r->nmx; i++) {
		if (r->mx[i].host == NULL || r->mx[i].host[0] == '\0' ||
		    r->mx[i].pref > 65535)
			abort();
		if (i > 0 && r->mx[i - 1].pref > r->mx[i].pref)
			abort();
		for (j = 0; r->mx[i].host[j] != '\0'; j++)
			if (isupper((unsigned char)r->mx[i].host[j]))
				abort();
		if (j >= NS_MAXDNAME)
			abort();
	}
}

/* check_addr - the A/AAAA result as the transports receive it */
static void
check_addr(const struct dns_addr_result *r, void *arg)
{
	size_t i;
	bool v6 = false;

	(*(int *)arg)++;
	if ((r->status == DNS_OK) != (r->error == NULL))
		abort();
	if (r->status != DNS_OK) {
		if (r->naddrs != 0)
			abort();
		return;
	}
	if (r->naddrs == 0 || r->naddrs > 2 * DNS_ADDR_MAX)
		abort();
	for (i = 0; i < r->naddrs; i++) {
		if (r->addrs[i].ss_family == AF_INET6)
			v6 = true;
		else if (r->addrs[i].ss_family != AF_INET || v6)
			abort();	/* IPv4 first, then IPv6 */
	}
}

/* check_slot - what parse_answer leaves in one query slot */
static void
check_slot(const struct dns_lookup *l, int slot)
{
	switch (l->st[slot]) {
	case DNS_OK:
		if (l->err[slot] != NULL)
			abort();
		break;
	case DNS_NXDOMAIN:
	case DNS_NODATA:
	case DNS_TEMPFAIL:
	case DNS_NULLMX:
		if (l->err[slot] == NULL)
			abort();
		break;
	default:
		abort();
	}
	if (l->naddrs[slot] > DNS_ADDR_MAX || l->nmx > DNS_MX_MAX)
		abort();
}

/* rcode_of - the unbound rcode that the 2-bit field stands for */
static int
rcode_of(unsigned v)
{
	return v == 1 ? ns_r_nxdomain : v == 2 ? ns_r_servfail : 0;
}

/* run_answers - parse one or two answers and hand the result over */
static void
run_answers(uint8_t sel, const unsigned char *p0, size_t n0,
    const unsigned char *p1, size_t n1)
{
	struct dns_lookup *l;
	unsigned kind = sel & 3, f0 = (sel >> 2) & 3, f1 = (sel >> 4) & 3;
	int calls = 0;

	l = xcalloc(1, sizeof(*l));
	l->name = xstrdup(FUZZ_DNS_NAME);
	l->st[0] = l->st[1] = DNS_TEMPFAIL;
	l->err[0] = l->err[1] = "DNS lookup not started";
	l->arg = &calls;
	if (kind == 0) {
		l->kind = DNS_KIND_MX;
		l->mx_cb = check_mx;
		parse_answer(l, 0, RR_MX, rcode_of(f0), f0 == 3 ? NULL : p0,
		    (int)n0);
		check_slot(l, 0);
		deliver_mx(l);
	} else {
		l->kind = DNS_KIND_ADDR;
		l->addr_cb = check_addr;
		if (kind != 3) {
			parse_answer(l, 0, RR_A, rcode_of(f0),
			    f0 == 3 ? NULL : p0, (int)n0);
			check_slot(l, 0);
		}
		if (kind != 2) {
			parse_answer(l, 1, RR_AAAA, rcode_of(f1),
			    f1 == 3 ? NULL : p1, (int)n1);
			check_slot(l, 1);
		}
		deliver_addr(l);
	}
	if (calls != 1)
		abort();
	lookup_release(l);
}

/* run_literal - an address literal parses back to itself */
static void
run_literal(const uint8_t *data, size_t size)
{
	struct sockaddr_storage ss, ss2;
	char *s, text[INET6_ADDRSTRLEN + 8];
	const void *a;

	s = xstrndup((const char *)data, size);
	if (dns_parse_ip_literal(s, &ss)) {
		if (ss.ss_family == AF_INET)
			a = &((struct sockaddr_in *)&ss)->sin_addr;
		else if (ss.ss_family == AF_INET6)
			a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
		else
			abort();
		if (inet_ntop(ss.ss_family, a, text, sizeof(text)) == NULL ||
		    !dns_parse_ip_literal(text, &ss2) ||
		    memcmp(&ss, &ss2, sizeof(ss)) != 0)
			abort();
	}
	free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n0;

	if (size < 3)
		return 0;
	/* a DNS message is at most 64 KiB (RFC 1035 4.2.2 length field) */
	if (size > 3 + 2 * 65535)
		return 0;
	run_literal(data + 1, size - 1);
	n0 = (size_t)data[1] << 8 | data[2];
	if (n0 > size - 3)
		n0 = size - 3;
	run_answers(data[0], data + 3, n0, data + 3 + n0, size - 3 - n0);
	return 0;
}

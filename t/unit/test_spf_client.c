/*
 * test_spf_client.c - the SPF helper pool (spf_client.c) with the real
 * postern-spf helper against a real DNS server: dnsmasq on a free
 * loopback port serving SPF records for every result, the HELO and
 * null-sender identities, IPv6, a zone whose server is down, and a zone
 * whose server never answers (a UDP socket nobody reads). Then the
 * helper's failure modes (killed mid-check, exits, hangs, garbage, gone
 * after the request), many threads at once, and no zombie or descriptor
 * left after spf_pool_free.
 * Also spf_received_value and spf_result_name.
 *
 * The helper is $POSTERN_BUILD/postern-spf (default: ./postern-spf).
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "spf_client.h"
#include "xmalloc.h"

#include "clock.h"
#include "tap.h"
#include "../helpers/testproc.h"

#define RECEIVER "mx.postern.test"

struct spf_case {
	const char *name;
	const char *client;
	const char *helo;
	const char *sender;
	const char *identity;
	const char *want;	/* result */
	const char *domain;	/* the domain checked */
	const char *expl;	/* explanation, NULL: not checked */
};

static const struct spf_case cases[] = {
	{ "pass by ip4", "192.0.2.5", "client.example.test",
	  "alice@pass.example.test", "mailfrom", "pass", "pass.example.test",
	  "" },
	{ "fail, our explanation", "198.51.100.9", "client.example.test",
	  "alice@pass.example.test", "mailfrom", "fail", "pass.example.test",
	  "198.51.100.9 is not allowed to send mail for pass.example.test" },
	{ "fail with the domain's exp=", "203.0.113.1", "h.example.test",
	  "bob@exp.example.test", "mailfrom", "fail", "exp.example.test",
	  "203.0.113.1 may not send for exp.example.test" },
	{ "softfail", "192.0.2.5", "h.example.test", "a@soft.example.test",
	  "mailfrom", "softfail", "soft.example.test", "" },
	{ "neutral", "192.0.2.5", "h.example.test", "a@neutral.example.test",
	  "mailfrom", "neutral", "neutral.example.test", "" },
	{ "bare v=spf1 is neutral", "192.0.2.5", "h.example.test",
	  "a@bare.example.test", "mailfrom", "neutral", "bare.example.test",
	  NULL },
	{ "none: no record", "192.0.2.5", "h.example.test",
	  "a@norecord.example.test", "mailfrom", "none",
	  "norecord.example.test", "" },
	{ "none: NXDOMAIN", "192.0.2.5", "h.example.test",
	  "a@nx.example.test", "mailfrom", "none", "nx.example.test", "" },
	{ "none: single-label domain", "192.0.2.5", "h.example.test",
	  "a@localdomain", "mailfrom", "none", "localdomain", "" },
	{ "pass by include", "192.0.2.77", "h.example.test",
	  "a@inc.example.test", "mailfrom", "pass", "inc.example.test", "" },
	{ "fail after include", "198.51.100.1", "h.example.test",
	  "a@inc.example.test", "mailfrom", "fail", "inc.example.test",
	  NULL },
	{ "pass by mx", "198.51.100.7", "h.example.test", "a@mx.example.test",
	  "mailfrom", "pass", "mx.example.test", "" },
	{ "pass by mx, IPv6 client", "2001:db8::7", "h.example.test",
	  "a@mx.example.test", "mailfrom", "pass", "mx.example.test", "" },
	{ "fail by mx, IPv6 client", "2001:db8::8", "h.example.test",
	  "a@mx.example.test", "mailfrom", "fail", "mx.example.test", NULL },
	{ "pass by a", "198.51.100.7", "h.example.test", "a@a.example.test",
	  "mailfrom", "pass", "a.example.test", "" },
	{ "pass by ip6", "2001:db8:1::25", "h.example.test",
	  "a@v6.example.test", "mailfrom", "pass", "v6.example.test", "" },
	{ "IPv4-mapped IPv6 checked as IPv4", "::ffff:192.0.2.5",
	  "h.example.test", "a@pass.example.test", "mailfrom", "pass",
	  "pass.example.test", "" },
	{ "permerror: syntax", "192.0.2.5", "h.example.test",
	  "a@syntax.example.test", "mailfrom", "permerror",
	  "syntax.example.test", "" },
	{ "permerror: two records", "192.0.2.5", "h.example.test",
	  "a@two.example.test", "mailfrom", "permerror", "two.example.test",
	  "" },
	{ "permerror: 3 void lookups", "192.0.2.5", "h.example.test",
	  "a@void.example.test", "mailfrom", "permerror",
	  "void.example.test", "" },
	{ "2 void lookups are fine", "192.0.2.5", "h.example.test",
	  "a@void2.example.test", "mailfrom", "fail", "void2.example.test",
	  NULL },
	{ "permerror: include of a domain without SPF", "192.0.2.5",
	  "h.example.test", "a@incnone.example.test", "mailfrom",
	  "permerror", "incnone.example.test", "" },
	{ "temperror: zone server down", "192.0.2.5", "h.example.test",
	  "a@x.broken.test", "mailfrom", "temperror", "x.broken.test", "" },
	{ "temperror: include of a zone whose server is down", "192.0.2.5",
	  "h.example.test", "a@incbroken.example.test", "mailfrom",
	  "temperror", "incbroken.example.test", "" },
	{ "HELO identity: pass", "192.0.2.5", "helo.example.test",
	  "someone@fail.example.test", "helo", "pass", "helo.example.test",
	  "" },
	{ "HELO identity: fail", "198.51.100.3", "helo.example.test",
	  "someone@pass.example.test", "helo", "fail", "helo.example.test",
	  NULL },
	{ "null sender: postmaster@helo, pass", "192.0.2.5",
	  "helo.example.test", "", "mailfrom", "pass", "helo.example.test",
	  "" },
	{ "null sender: postmaster@helo, fail", "198.51.100.3",
	  "helo.example.test", "", "mailfrom", "fail", "helo.example.test",
	  NULL },
	{ "%{l} macro of the sender", "192.0.2.5", "h.example.test",
	  "alice@macro.example.test", "mailfrom", "pass",
	  "macro.example.test", "" },
	{ "%{l} macro, other sender", "192.0.2.5", "h.example.test",
	  "bob@macro.example.test", "mailfrom", "fail", "macro.example.test",
	  NULL },
};

static const char zone[] =
    "txt-record=pass.example.test,\"v=spf1 ip4:192.0.2.0/24 -all\"\n"
    "txt-record=exp.example.test,\"v=spf1 -all exp=why.example.test\"\n"
    "txt-record=why.example.test,\"%{i} may not send for %{d}\"\n"
    "txt-record=soft.example.test,\"v=spf1 ~all\"\n"
    "txt-record=neutral.example.test,\"v=spf1 ?all\"\n"
    "txt-record=bare.example.test,\"v=spf1\"\n"
    "txt-record=norecord.example.test,\"some other text\"\n"
    "txt-record=inc.example.test,"
    "\"v=spf1 include:pass.example.test -all\"\n"
    "txt-record=mx.example.test,\"v=spf1 mx -all\"\n"
    "mx-host=mx.example.test,mail.example.test,10\n"
    "host-record=mail.example.test,198.51.100.7,2001:db8::7\n"
    "txt-record=a.example.test,\"v=spf1 a:mail.example.test -all\"\n"
    "txt-record=v6.example.test,\"v=spf1 ip6:2001:db8:1::/48 -all\"\n"
    "txt-record=syntax.example.test,\"v=spf1 ip4:999.1.1.1 -all\"\n"
    "txt-record=two.example.test,\"v=spf1 -all\"\n"
    "txt-record=two.example.test,\"v=spf1 +all\"\n"
    "txt-record=void.example.test,\"v=spf1 a:n1.example.test "
    "a:n2.example.test a:n3.example.test -all\"\n"
    "txt-record=void2.example.test,\"v=spf1 a:n1.example.test "
    "a:n2.example.test -all\"\n"
    "txt-record=incnone.example.test,"
    "\"v=spf1 include:norecord.example.test -all\"\n"
    "txt-record=incbroken.example.test,"
    "\"v=spf1 include:y.broken.test -all\"\n"
    "txt-record=helo.example.test,\"v=spf1 ip4:192.0.2.5 -all\"\n"
    "txt-record=macro.example.test,\"v=spf1 exists:%{l}.ok.example.test "
    "-all\"\n"
    "host-record=alice.ok.example.test,127.0.0.2\n"
    "txt-record=slowinc.example.test,"
    "\"v=spf1 include:z.slow.test -all\"\n"
    "server=/broken.test/127.0.0.1#1\n";

/*
 * A stand-in postern-spf: answers its first request "pass" and exits on
 * reading the second, unanswered.
 */
#define ONCE_HELPER \
    "#!/usr/bin/perl\n" \
    "for my $n (1, 2) {\n" \
    "  sysread(STDIN, my $h, 4) == 4 or exit 0;\n" \
    "  my $len = unpack('N', $h);\n" \
    "  my $p = '';\n" \
    "  while (length $p < $len) {\n" \
    "    sysread(STDIN, $p, $len - length $p, length $p) or exit 0;\n" \
    "  }\n" \
    "  exit 0 if $n == 2;\n" \
    "  my ($id) = split /\\0/, $p;\n" \
    "  my $a = join '', map { \"$_\\0\" } $id, 2, 'x.test', '', 'once';\n" \
    "  syswrite(STDOUT, pack('N', length $a) . $a);\n" \
    "}\n"

static char helper[512];
static char resolver[64];

/* children - our child processes whose command is comm, zombies too */
static int
children(const char *comm, pid_t *first)
{
	char path[300], buf[512], name[64], *p;
	struct dirent *de;
	DIR *d;
	FILE *f;
	int n = 0, ppid;

	if ((d = opendir("/proc")) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		if (fgets(buf, sizeof(buf), f) != NULL &&
		    (p = strrchr(buf, ')')) != NULL &&
		    sscanf(p + 2, "%*c %d", &ppid) == 1 && ppid == getpid()) {
			snprintf(name, sizeof(name), "%.*s",
			    (int)(p - strchr(buf, '(') - 1),
			    strchr(buf, '(') + 1);
			if (strcmp(name, comm) == 0) {
				if (n == 0 && first != NULL)
					*first = atoi(de->d_name);
				n++;
			}
		}
		fclose(f);
	}
	closedir(d);
	return n;
}

/* open_fds - how many descriptors this process has */
static int
open_fds(void)
{
	struct dirent *de;
	DIR *d;
	int n = 0;

	if ((d = opendir("/proc/self/fd")) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;	/* the DIR's own descriptor */
}

static struct spf_pool *
pool_with(const char *path, unsigned max, int timeout_ms)
{
	struct spf_pool_params p;
	struct spf_pool *pool;
	char *err = NULL;

	memset(&p, 0, sizeof(p));
	p.helper_path = path;
	p.resolver = resolver;
	p.receiver = RECEIVER;
	p.max_helpers = max;
	p.timeout_ms = timeout_ms;
	if ((pool = spf_pool_new(&p, &err)) == NULL) {
		printf("# spf_pool_new: %s\n", err);
		free(err);
	}
	return pool;
}

static void
check(struct spf_pool *pool, const struct spf_case *c, struct spf_answer *a)
{
	struct spf_query q = { c->client, c->helo, c->sender, c->identity };

	spf_pool_check(pool, &q, a);
}

/* the many-threads test: every thread checks cases with known answers */
struct worker {
	struct spf_pool *pool;
	int	 id;
	int	 wrong;
	char	 first_wrong[1024];
};

static const int stress_cases[] = { 0, 1, 3, 4, 9, 11, 12, 24, 26 };

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	const struct spf_case *c;
	struct spf_answer a;
	int i;

	for (i = 0; i < 200; i++) {
		c = &cases[stress_cases[(i + w->id) %
		    (int)(sizeof(stress_cases) / sizeof(stress_cases[0]))]];
		check(w->pool, c, &a);
		if (strcmp(spf_result_name(a.result), c->want) != 0 ||
		    strcmp(a.domain, c->domain) != 0) {
			if (w->wrong++ == 0)
				snprintf(w->first_wrong,
				    sizeof(w->first_wrong), "%s: got %s %s",
				    c->name, spf_result_name(a.result),
				    a.comment);
		}
	}
	return NULL;
}

/* slow_check - a check on a zone that never answers, in a thread */
struct slow {
	struct spf_pool *pool;
	const char *sender;	/* its domain is never answered */
	struct spf_answer a;
	int64_t	 took;
};

static void *
slow_run(void *arg)
{
	struct slow *s = arg;
	struct spf_query q = { "192.0.2.5", "h.example.test", s->sender,
	    "mailfrom" };
	int64_t t0 = clock_ms();

	spf_pool_check(s->pool, &q, &s->a);
	s->took = clock_ms() - t0;
	return NULL;
}

struct rv_case {
	const char *name;
	struct spf_query q;
	enum spf_result result;
	const char *comment;
	const char *want;
};

static const struct rv_case rv_cases[] = {
	{ "pass, IPv4, quoted address",
	  { "192.0.2.5", "h.example.test", "a@example.test", "mailfrom" },
	  SPF_RES_PASS, "mx.postern.test: domain of example.test designates "
	  "192.0.2.5 as permitted sender",
	  "pass (mx.postern.test: domain of example.test designates "
	  "192.0.2.5 as permitted sender) client-ip=192.0.2.5; "
	  "envelope-from=\"a@example.test\"; helo=h.example.test; "
	  "receiver=mx.postern.test; identity=mailfrom" },
	{ "null sender, IPv6 quoted",
	  { "2001:db8::1", "h.example.test", "", "mailfrom" },
	  SPF_RES_NONE, "",
	  "none client-ip=\"2001:db8::1\"; "
	  "envelope-from=\"postmaster@h.example.test\"; helo=h.example.test; "
	  "receiver=mx.postern.test; identity=mailfrom" },
	{ "helo identity, odd helo quoted and escaped, comment parens",
	  { "192.0.2.5", "[bad\"helo]", "x@y.test", "helo" },
	  SPF_RES_TEMPERROR, "timeout (x)",
	  "temperror (timeout \\(x\\)) client-ip=192.0.2.5; "
	  "envelope-from=\"x@y.test\"; helo=\"[bad\\\"helo]\"; "
	  "receiver=mx.postern.test; identity=helo" },
};

/* lines_within - every line of a folded value is at most max long */
static bool
lines_within(const char *v, size_t max)
{
	size_t n;

	for (;;) {
		n = strcspn(v, "\r\n");
		if (n > max)
			return false;
		v += n;
		if (*v == '\0')
			return true;
		v += strspn(v, "\r\n");
	}
}

/* unfold - "\r\n\t" becomes " " (in place) */
static void
unfold(char *v)
{
	char *r, *w;

	for (r = w = v; *r != '\0'; r++) {
		if (r[0] == '\r' && r[1] == '\n' && r[2] == '\t') {
			*w++ = ' ';
			r += 2;
			continue;
		}
		*w++ = *r;
	}
	*w = '\0';
}

int
main(void)
{
	char dir[] = "/tmp/test_spf_client.XXXXXX";
	char script[4][160], extra[4096], *rv, *err = NULL;
	struct spf_pool *pool;
	struct spf_answer a;
	struct worker w[8];
	struct slow slow;
	pthread_t th[8];
	const char *build;
	int64_t t0, took;
	FILE *f;
	size_t i;
	int port, silent, silent_port, fds0, wrong, n;
	pid_t pid = 0, pid2 = 0;

	log_init("test_spf_client", false);
	build = getenv("POSTERN_BUILD") != NULL ? getenv("POSTERN_BUILD") :
	    ".";
	snprintf(helper, sizeof(helper), "%s/postern-spf", build);
	if (access(TESTPROC_DNSMASQ, X_OK) != 0) {
		printf("1..0 # SKIP dnsmasq not installed\n");
		return 0;
	}
	if (access(helper, X_OK) != 0) {
		printf("Bail out! no helper at %s (set POSTERN_BUILD)\n",
		    helper);
		return 1;
	}

	/* pure functions first */
	for (i = 0; i < sizeof(rv_cases) / sizeof(rv_cases[0]); i++) {
		memset(&a, 0, sizeof(a));
		a.result = rv_cases[i].result;
		snprintf(a.comment, sizeof(a.comment), "%s",
		    rv_cases[i].comment);
		rv = spf_received_value(&rv_cases[i].q, &a, RECEIVER);
		ok(lines_within(rv, 998 - strlen("Received-SPF: ")),
		    "Received-SPF: %s: lines within 998", rv_cases[i].name);
		unfold(rv);
		is_str(rv, rv_cases[i].want, "Received-SPF: %s",
		    rv_cases[i].name);
		free(rv);
	}
	{
		/*
		 * a HELO of 500 characters and a sender of 400: one line
		 * would pass 998, the folded field does not
		 */
		struct spf_query q = { "192.0.2.5", NULL, NULL, "mailfrom" };
		char helo[501], sender[420];

		memset(helo, 'h', 500);
		helo[500] = '\0';
		memset(sender, 's', 400);
		snprintf(sender + 400, sizeof(sender) - 400, "@example.test");
		q.helo = helo;
		q.sender = sender;
		memset(&a, 0, sizeof(a));
		a.result = SPF_RES_NONE;
		memset(a.comment, 'c', sizeof(a.comment) - 1);
		a.comment[sizeof(a.comment) - 1] = '\0';
		rv = spf_received_value(&q, &a, RECEIVER);
		ok(strlen(rv) > 998 && lines_within(rv, 998 -
		    strlen("Received-SPF: ")), "Received-SPF: long HELO, "
		    "sender and comment: folded into lines within 998");
		free(rv);
	}
	{
		static const char *names[] = { "none", "neutral", "pass",
		    "fail", "softfail", "temperror", "permerror" };

		for (i = 0; i < 7; i++)
			is_str(spf_result_name((enum spf_result)i), names[i],
			    "spf_result_name(%zu)", i);
	}

	if (mkdtemp(dir) == NULL) {
		printf("Bail out! no temp dir\n");
		return 1;
	}
	/* the server of slow.test: a UDP socket nobody reads */
	if ((silent = testproc_silent_udp(&silent_port)) == -1)
		return 1;
	snprintf(extra, sizeof(extra), "server=/slow.test/127.0.0.1#%d\n%s",
	    silent_port, zone);
	if ((port = testproc_dnsmasq(dir, extra)) == -1)
		return 1;
	snprintf(resolver, sizeof(resolver), "127.0.0.1@%d", port);
	fds0 = open_fds();

	/* a missing helper is reported at once */
	{
		struct spf_pool_params p = { "/nonexistent/postern-spf",
		    resolver, RECEIVER, 2, 1000 };

		err = NULL;
		ok(spf_pool_new(&p, &err) == NULL && err != NULL,
		    "missing helper refused (%s)", err != NULL ? err : "-");
		free(err);
	}

	/* every result, one helper */
	if ((pool = pool_with(helper, 1, 2500)) == NULL)
		return done_testing();
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		t0 = clock_ms();
		check(pool, &cases[i], &a);
		took = clock_ms() - t0;
		is_str(spf_result_name(a.result), cases[i].want, "%s",
		    cases[i].name);
		if (strcmp(spf_result_name(a.result), cases[i].want) != 0)
			printf("#   comment: %s\n", a.comment);
		is_str(a.domain, cases[i].domain, "%s: domain", cases[i].name);
		if (cases[i].expl != NULL)
			is_str(a.explanation, cases[i].expl,
			    "%s: explanation", cases[i].name);
		ok(a.comment[0] != '\0' && took < 2500,
		    "%s: comment \"%s\", %lld ms", cases[i].name, a.comment,
		    (long long)took);
	}
	is_int(children("postern-spf", NULL), 1, "one helper running");

	/* a zone whose server never answers: temperror within the deadline */
	memset(&slow, 0, sizeof(slow));
	slow.pool = pool;
	slow.sender = "a@slowinc.example.test";
	slow_run(&slow);
	is_str(spf_result_name(slow.a.result), "temperror",
	    "silent DNS server: temperror");
	ok(slow.took < 2500 && slow.took >= 2000,
	    "silent DNS server: answered in %lld ms (timeout 2500)",
	    (long long)slow.took);
	ok(strstr(slow.a.comment, "timeout") != NULL,
	    "silent DNS server: the comment says why (%s)", slow.a.comment);
	n = children("postern-spf", NULL);
	is_int(n, 1, "the helper answered itself, it was not killed");

	/*
	 * a helper that had served, killed with SIGKILL in the middle of a
	 * check (another name: libunbound remembers the failure of the
	 * first one): a new helper is asked, within the same deadline
	 */
	slow.pool = pool;
	slow.sender = "a@z2.slow.test";
	pthread_create(&th[0], NULL, slow_run, &slow);
	usleep(300000);
	n = children("postern-spf", &pid);
	ok(n == 1 && pid > 0 && kill(pid, SIGKILL) == 0,
	    "killed helper %ld mid-check", (long)pid);
	pthread_join(th[0], NULL);
	is_str(spf_result_name(slow.a.result), "temperror",
	    "killed helper: the check asked again still meets the silent "
	    "server");
	ok(slow.took < 2500 + 300, "killed helper: answered within the "
	    "check's one deadline (%lld ms, timeout 2500)",
	    (long long)slow.took);
	ok(strstr(slow.a.comment, "timeout") != NULL,
	    "killed helper: the comment says why \"%s\"",
	    slow.a.comment);
	/* the new helper is gone too if it answered later than we waited */
	n = children("postern-spf", &pid2);
	ok(n <= 1 && (n == 0 || pid2 != pid),
	    "killed helper: reaped, no zombie (%d helper running)", n);
	check(pool, &cases[0], &a);
	is_str(spf_result_name(a.result), "pass",
	    "the next check still works");
	/* killed while idle: the next check restarts it, no temperror */
	n = children("postern-spf", &pid);
	ok(n == 1 && kill(pid, SIGKILL) == 0, "killed idle helper %ld",
	    (long)pid);
	usleep(100000);
	check(pool, &cases[1], &a);
	is_str(spf_result_name(a.result), "fail",
	    "idle helper killed: the next check is answered by a new one");
	spf_pool_free(&pool);
	ok(pool == NULL, "spf_pool_free clears the pointer");
	is_int(children("postern-spf", NULL), 0, "no helper left");

	/* many threads, 4 helpers: no wrong answer */
	if ((pool = pool_with(helper, 4, 5000)) == NULL)
		return done_testing();
	for (i = 0; i < 8; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].pool = pool;
		w[i].id = (int)i;
		pthread_create(&th[i], NULL, worker_run, &w[i]);
	}
	wrong = 0;
	for (i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		wrong += w[i].wrong;
		if (w[i].wrong > 0)
			printf("# thread %zu: %s\n", i, w[i].first_wrong);
	}
	is_int(wrong, 0, "8 threads x 200 checks: wrong answers");
	n = children("postern-spf", NULL);
	ok(n >= 1 && n <= 4, "at most 4 helpers (%d)", n);
	spf_pool_free(&pool);
	is_int(children("postern-spf", NULL), 0,
	    "after spf_pool_free: no helper, no zombie");
	is_int(open_fds(), fds0, "no descriptor leaked");

	/* helpers that misbehave, written as scripts */
	snprintf(script[0], sizeof(script[0]), "%s/exits.sh", dir);
	snprintf(script[1], sizeof(script[1]), "%s/garbage.sh", dir);
	snprintf(script[2], sizeof(script[2]), "%s/hangs.sh", dir);
	{
		static const char *body[] = {
			"#!/bin/sh\nexit 0\n",
			"#!/bin/sh\nprintf 'garbage!garbage!'\nexec sleep 30\n",
			"#!/bin/sh\nexec sleep 30\n",
		};
		static const char *what[] = { "helper that exits",
		    "helper that sends garbage", "helper that hangs" };

		for (i = 0; i < 3; i++) {
			if ((f = fopen(script[i], "w")) == NULL)
				return 1;
			fputs(body[i], f);
			fclose(f);
			chmod(script[i], 0755);
			pool = pool_with(script[i], 1, 800);
			t0 = clock_ms();
			check(pool, &cases[0], &a);
			took = clock_ms() - t0;
			is_str(spf_result_name(a.result), "temperror", "%s",
			    what[i]);
			ok(took < 1300, "%s: answered in %lld ms (%s)",
			    what[i], (long long)took, a.comment);
			spf_pool_free(&pool);
			is_int(children("sh", NULL) +
			    children("sleep", NULL), 0,
			    "%s: killed and reaped", what[i]);
		}
	}

	/*
	 * a helper that answers its first check and dies on reading the
	 * next: death after the request went out, as when a helper killed
	 * between checks still has a thread exiting. Each such check is
	 * asked again of a new helper, never answered temperror.
	 */
	snprintf(script[3], sizeof(script[3]), "%s/once.pl", dir);
	if ((f = fopen(script[3], "w")) == NULL)
		return 1;
	fputs(ONCE_HELPER, f);
	fclose(f);
	chmod(script[3], 0755);
	pool = pool_with(script[3], 1, 2000);
	for (i = 0; i < 3; i++) {
		check(pool, &cases[0], &a);
		is_str(spf_result_name(a.result), "pass",
		    "helper gone after the request, check %zu: asked again",
		    i + 1);
		is_str(a.comment, "once", "check %zu: answered by the "
		    "stand-in", i + 1);
	}
	spf_pool_free(&pool);
	is_int(children("perl", NULL), 0, "stand-in helpers reaped");
	is_int(open_fds(), fds0, "no descriptor leaked at the end");

	close(silent);
	testproc_kill_all();
	for (i = 0; i < 4; i++)
		unlink(script[i]);
	testproc_dnsmasq_remove(dir);
	return done_testing();
}

/*
 * test_qmgr.c - unit tests of the queue manager's pure decisions
 * (daemon/qmgr_sched.c: routing, grouping, backoff, expiry) and of the
 * maildir transport (daemon/deliver_maildir.c: mailbox names, and a real
 * delivery through the loop and worker pool into a temporary directory).
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "deliver_maildir.h"
#include "delivery.h"
#include "loop.h"
#include "pool.h"
#include "qmgr_sched.h"
#include "spool.h"
#include "tap.h"
#include "xmalloc.h"

static void
test_domain(void)
{
	static const struct {
		const char *in, *want;
	} t[] = {
		{ "bob@Example.NET", "example.net" },
		{ "bob@example.net.", "example.net" },
		{ "\"a@b\"@x.example", "x.example" },
		{ "postmaster", "" },
		{ "a@[192.0.2.1]", "[192.0.2.1]" },
	};
	char out[256];
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		qmgr_rcpt_domain(t[i].in, out, sizeof(out));
		is_str(out, t[i].want, "domain of %s", t[i].in);
	}
}

static void
test_route(void)
{
	struct nexthop none = { NULL, NULL, true };
	struct nexthop relay = { "127.0.0.1", "2526", false };
	struct nexthop relay_mx = { "smarthost.example", "25", true };
	static const struct {
		const char *name;
		const char *domain;
		bool	 local;
		int	 relay;		/* 0 none, 1 [127.0.0.1]:2526, 2 MX */
		int	 rc;
		const char *key;
	} t[] = {
		{ "local domain", "example.test", true, 1, 0,
		    "maildir:::0" },
		{ "relayhost wins for remote", "example.net", false, 1, 0,
		    "smtp:127.0.0.1:2526:0" },
		{ "relayhost by MX", "example.net", false, 2, 0,
		    "smtp:smarthost.example:25:1" },
		{ "direct by MX", "example.net", false, 0, 0,
		    "smtp:example.net:25:1" },
		{ "address literal", "[192.0.2.1]", false, 0, 0,
		    "smtp:192.0.2.1:25:0" },
		{ "IPv6 literal", "[ipv6:2001:db8::1]", false, 0, 0,
		    "smtp:2001:db8::1:25:0" },
		{ "no domain, no relayhost", "", false, 0, -1, NULL },
		{ "no domain, relayhost", "", false, 1, 0,
		    "smtp:127.0.0.1:2526:0" },
		{ "broken literal", "[192.0.2.1", false, 0, -1, NULL },
	};
	const struct nexthop *nh[] = { &none, &relay, &relay_mx };
	struct qmgr_route r;
	const char *err;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		err = NULL;
		rc = qmgr_route_rcpt(t[i].domain, t[i].local, nh[t[i].relay],
		    &r, &err);
		is_int(rc, t[i].rc, "route %s: result", t[i].name);
		if (rc == 0)
			is_str(r.key, t[i].key, "route %s: key", t[i].name);
		else
			ok(err != NULL, "route %s: error given (%s)",
			    t[i].name, err ? err : "none");
	}
}

static void
test_group(void)
{
	static const struct {
		const char *name;
		const char *keys;	/* one letter per recipient */
		size_t	 max;
		const char *want;	/* batches: indices, '|' between */
	} t[] = {
		{ "one destination", "aaa", 50, "012" },
		{ "interleaved", "abab", 50, "02|13" },
		{ "order of first appearance", "bbaab", 50, "014|23" },
		{ "split at max", "aaaaa", 2, "01|23|4" },
		{ "split per key", "abaabab", 2, "02|35|14|6" },
		{ "empty", "", 50, "" },
	};
	size_t i, j, k, n, nb;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const char *keys[16];
		char kb[16][2];
		size_t order[16];
		struct qmgr_batch b[16];
		char got[64];
		size_t o = 0;

		n = strlen(t[i].keys);
		for (j = 0; j < n; j++) {
			kb[j][0] = t[i].keys[j];
			kb[j][1] = '\0';
			keys[j] = kb[j];
		}
		nb = qmgr_group(keys, n, t[i].max, order, b);
		got[0] = '\0';
		for (j = 0; j < nb; j++) {
			if (j > 0)
				got[o++] = '|';
			for (k = 0; k < b[j].n; k++)
				got[o++] = (char)('0' + order[b[j].first + k]);
		}
		got[o] = '\0';
		is_str(got, t[i].want, "group %s", t[i].name);
	}
	{
		/* 120 recipients of one destination: 50 + 50 + 20 */
		const char *keys[120];
		size_t order[120];
		struct qmgr_batch b[120];

		for (j = 0; j < 120; j++)
			keys[j] = "smtp:example.net:25:1";
		nb = qmgr_group(keys, 120, QMGR_RCPTS_PER_JOB, order, b);
		is_int(nb, 3, "120 recipients make 3 jobs");
		ok(nb == 3 && b[0].n == 50 && b[1].n == 50 && b[2].n == 20,
		    "jobs of 50, 50 and 20");
	}
}

static void
test_backoff(void)
{
	static const struct {
		const char *name;
		long	 age;
		int	 min, max;
		int	 want;
	} t[] = {
		{ "fresh message: minimum", 10, 300, 4000, 300 },
		{ "age between: age", 1000, 300, 4000, 1000 },
		{ "old message: maximum", 86400, 300, 4000, 4000 },
		{ "exactly minimum", 300, 300, 4000, 300 },
		{ "clock went back", -50, 300, 4000, 300 },
		{ "max below min", 1000, 300, 100, 300 },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		is_int(qmgr_backoff(1000000, 1000000 + t[i].age, t[i].min,
		    t[i].max), t[i].want, "backoff %s", t[i].name);
}

static void
test_expired(void)
{
	static const struct {
		const char *name;
		long	 age;
		bool	 null_sender;
		bool	 want;
	} t[] = {
		{ "young", 3600, false, false },
		{ "just past 5d", 5 * 86400, false, true },
		{ "null sender past 1d", 86401, true, true },
		{ "null sender young", 3600, true, false },
		{ "normal sender past 1d", 86401, false, false },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		is_int(qmgr_expired(1000000, 1000000 + t[i].age,
		    t[i].null_sender, 5 * 86400, 86400), t[i].want,
		    "expired %s", t[i].name);
	is_int(qmgr_expired(1000000, 1000000, false, 0, 0), true,
	    "lifetime 0: first deferral bounces");
}

static void
test_maildir_path(void)
{
	static const struct {
		const char *addr;
		const char *want;	/* NULL: refused */
	} t[] = {
		{ "Bob@Example.TEST", "/m/example.test/bob" },
		{ "bob@example.test.", "/m/example.test/bob" },
		{ "first.last@example.test", "/m/example.test/first.last" },
		{ "../etc@example.test", NULL },
		{ ".hidden@example.test", NULL },
		{ "a/b@example.test", NULL },
		{ "@example.test", NULL },
		{ "bob@", NULL },
		{ "bob", NULL },
		{ "bob@../x", NULL },
		{ "bob@a/b", NULL },
		{ "b\x7fo@example.test", NULL },
	};
	char out[256];
	const char *err;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		err = NULL;
		rc = deliver_maildir_path("/m", t[i].addr, out, sizeof(out),
		    &err);
		if (t[i].want != NULL) {
			is_int(rc, 0, "maildir path of %s accepted", t[i].addr);
			if (rc == 0)
				is_str(out, t[i].want, "maildir path of %s",
				    t[i].addr);
		} else
			ok(rc == -1 && err != NULL,
			    "maildir path of %s refused", t[i].addr);
	}
}

/* ---- maildir delivery through the real loop and pool ---- */

static struct loop *mloop;
static int ndone;

static void
job_done(struct delivery_job *job)
{
	ndone++;
	loop_exit(mloop);
}

static char *
read_file(const char *path)
{
	char buf[4096];
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY)) == -1)
		return NULL;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return NULL;
	buf[n] = '\0';
	return xstrdup(buf);
}

/* only_file - the name of the single entry of dir, or NULL */
static char *
only_file(const char *dir)
{
	struct dirent *de;
	char *name = NULL;
	int n = 0;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return NULL;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		n++;
		free(name);
		name = xasprintf("%s/%s", dir, de->d_name);
	}
	closedir(d);
	if (n != 1) {
		free(name);
		return NULL;
	}
	return name;
}

static void
test_maildir_delivery(void)
{
	char base[64], content[128], *path, *got, *dir;
	static const char data[] = "Body line 1\r\nline 2 with bare\rCR\r\n"
	    "From: a@x\r\nSubject: t\r\n";
	struct delivery_rcpt rcpts[3];
	struct delivery_job job;
	int fd;

	snprintf(base, sizeof(base), "/tmp/test_qmgr.%d", (int)getpid());
	snprintf(content, sizeof(content), "%s.content", base);
	fd = open(content, O_CREAT | O_RDWR | O_TRUNC, 0600);
	if (fd == -1 || write(fd, data, sizeof(data) - 1) !=
	    (ssize_t)sizeof(data) - 1) {
		ok(0, "maildir: content file");
		return;
	}
	memset(&job, 0, sizeof(job));
	memset(rcpts, 0, sizeof(rcpts));
	job.queue_id = "00TESTQUEUE";
	job.sender = "alice@example.org";
	job.content_fd = fd;
	job.body_offset = 0;
	job.body_len = 34;
	job.header_offset = 34;
	job.header_len = sizeof(data) - 1 - 34;
	job.transport = "maildir";
	job.maildir_base = base;
	rcpts[0].address = "Bob@Example.Test";
	rcpts[1].address = ".evil@example.test";
	rcpts[2].address = "carol@example.test";
	job.rcpts = rcpts;
	job.nrcpts = 3;
	job.done = job_done;

	mloop = loop_new("test");
	pool_start(2, 1);
	deliver_maildir_start(&job, mloop);
	loop_run_here(mloop);
	is_int(ndone, 1, "maildir: done called once");
	is_int(rcpts[0].status, DELIVERY_SENT, "maildir: bob sent");
	is_int(rcpts[1].status, DELIVERY_BOUNCED, "maildir: .evil bounced");
	is_str(rcpts[1].dsn, "5.1.1", "maildir: .evil dsn");
	is_int(rcpts[2].status, DELIVERY_SENT, "maildir: carol sent");
	is_str(job.relay, "maildir", "maildir: relay");

	dir = xasprintf("%s/example.test/bob/new", base);
	path = only_file(dir);
	ok(path != NULL, "maildir: one file in bob/new");
	got = path ? read_file(path) : NULL;
	is_str(got, "Return-Path: <alice@example.org>\n"
	    "Delivered-To: Bob@Example.Test\n"
	    "From: a@x\nSubject: t\n\nBody line 1\nline 2 with bare\rCR\n",
	    "maildir: content with LF line ends");
	free(got);
	free(path);
	free(dir);
	dir = xasprintf("%s/example.test/bob/tmp", base);
	path = only_file(dir);
	ok(path == NULL, "maildir: tmp/ is empty again");
	free(path);
	free(dir);
	dir = xasprintf("%s/example.test/bob/cur", base);
	ok(access(dir, F_OK) == 0, "maildir: cur/ exists");
	free(dir);
	dir = xasprintf("%s/example.test/carol/new", base);
	path = only_file(dir);
	ok(path != NULL, "maildir: one file in carol/new");
	free(path);
	free(dir);

	pool_stop();
	loop_free(&mloop);
	free(rcpts[0].reply);
	free(rcpts[1].reply);
	free(rcpts[2].reply);
	free(job.relay);
	close(fd);
	unlink(content);
	path = xasprintf("rm -rf '%s'", base);
	if (system(path) != 0)
		printf("# cleanup failed\n");
	free(path);
}

int
main(void)
{
	test_domain();
	test_route();
	test_group();
	test_backoff();
	test_expired();
	test_maildir_path();
	test_maildir_delivery();
	return done_testing();
}

/*
 * test_deliver_smtp.c - the SMTP client transport.
 *
 * Part 1, pure functions (smtp_client.c): reply parser, EHLO keywords,
 * MAIL/RCPT builders, xtext, dot-stuffing, table-driven.
 * Part 2, deliver_smtp_start on a real loop against Postfix's smtp-sink
 * (sent, dot-stuffing, 5xx/4xx at RCPT and MAIL, connection refused,
 * connection reuse and cache expiry) and against a scripted next hop
 * forked here for what smtp-sink cannot do (mixed RCPT replies,
 * pipelining check, malformed replies, HELO fallback, SIZE, timeouts).
 * Part 3, MX routing through dnsmasq when it is installed.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "config/config.h"
#include "deliver_smtp.h"
#include "delivery.h"
#include "log.h"
#include "loop.h"
#include "smtp_client.h"
#include "spool.h"
#include "xmalloc.h"

#include "tap.h"
#include "../helpers/testproc.h"

#define SMTP_SINK	"/usr/sbin/smtp-sink"
#define DNSMASQ		"/usr/sbin/dnsmasq"

/* ---------------- part 1: pure functions ---------------- */

struct reply_case {
	const char *name;
	const char *input;
	int	 want_rc;
	int	 want_code;
	const char *want_esc;
	const char *want_flat;	/* or the error for rc -1 */
};

static const struct reply_case reply_cases[] = {
	{ "single line", "250 2.0.0 Ok\r\n", 1, 250, "2.0.0",
	  "250 2.0.0 Ok" },
	{ "no enhanced code", "220 mx.example ESMTP\r\n", 1, 220, "",
	  "220 mx.example ESMTP" },
	{ "multi-line", "250-mx\r\n250-PIPELINING\r\n250 SIZE 100\r\n", 1,
	  250, "", "250 mx PIPELINING SIZE 100" },
	{ "repeated esc dropped", "550-5.1.1 no\r\n550 5.1.1 user\r\n", 1,
	  550, "5.1.1", "550 5.1.1 no user" },
	{ "bare code as last line", "250\r\n", 1, 250, "", "250" },
	{ "empty text", "250 \r\n", 1, 250, "", "250" },
	{ "bare LF tolerated", "250 ok\n", 1, 250, "", "250 ok" },
	{ "incomplete", "250-a\r\n250 b", 0, 0, "", NULL },
	{ "esc class must match", "550 4.1.1 odd\r\n", 1, 550, "",
	  "550 4.1.1 odd" },
	{ "non-digit code", "2x0 bad\r\n", -1, 0, "", "malformed reply code" },
	{ "code out of range", "650 bad\r\n", -1, 0, "",
	  "malformed reply code" },
	{ "second digit > 5", "260 bad\r\n", -1, 0, "",
	  "malformed reply code" },
	{ "short line", "25\r\n", -1, 0, "", "malformed reply code" },
	{ "bad separator", "250_ok\r\n", -1, 0, "",
	  "malformed reply separator" },
	{ "code changes mid-reply", "250-a\r\n251 b\r\n", -1, 0, "",
	  "reply code changed within a multi-line reply" },
	{ "control bytes made printable", "250 a\tb\x01\r\n", 1, 250, "",
	  "250 a?b?" },
};

static void
test_reply_parser(void)
{
	struct smtp_reply r;
	size_t i, used = 0;
	const char *err = NULL;
	char *flat, *big;
	struct buf b;
	int rc;

	smtp_reply_init(&r);
	for (i = 0; i < sizeof(reply_cases) / sizeof(reply_cases[0]); i++) {
		const struct reply_case *c = &reply_cases[i];

		err = NULL;
		rc = smtp_reply_parse(&r, c->input, strlen(c->input), &used,
		    &err);
		is_int(rc, c->want_rc, "reply %s: rc", c->name);
		if (rc == 1) {
			is_int(r.code, c->want_code, "reply %s: code", c->name);
			is_str(r.esc, c->want_esc, "reply %s: esc", c->name);
			flat = smtp_reply_flatten(&r);
			is_str(flat, c->want_flat, "reply %s: text", c->name);
			free(flat);
			is_int(used, strlen(c->input), "reply %s: consumed",
			    c->name);
		} else if (rc == -1)
			is_str(err, c->want_flat, "reply %s: error", c->name);
	}

	/* two pipelined replies: one at a time */
	rc = smtp_reply_parse(&r, "250 a\r\n354 b\r\n", 14, &used, &err);
	ok(rc == 1 && used == 7 && r.code == 250,
	    "pipelined replies: first consumed alone (used %zu)", used);

	/* line length limit: 2046 + CRLF is too long, 2045 is fine */
	big = xmalloc(3000);
	memset(big, 'a', 3000);
	memcpy(big, "250 ", 4);
	memcpy(big + 2046, "\r\n", 2);
	rc = smtp_reply_parse(&r, big, 2048, &used, &err);
	is_int(rc, 1, "reply line of 2048 bytes with CRLF accepted");
	memset(big, 'a', 3000);
	memcpy(big, "250 ", 4);
	memcpy(big + 2047, "\r\n", 2);
	rc = smtp_reply_parse(&r, big, 2049, &used, &err);
	is_int(rc, -1, "reply line of 2049 bytes with CRLF refused");
	memset(big, 'a', 3000);
	rc = smtp_reply_parse(&r, big, 3000, &used, &err);
	is_int(rc, -1, "unterminated line over the limit refused");
	free(big);

	/* continuation line limit */
	buf_init(&b, 0);
	for (i = 0; i < SMTP_REPLY_LINES_MAX; i++)
		buf_append_str(&b, "250-x\r\n");
	buf_append_str(&b, "250 end\r\n");
	rc = smtp_reply_parse(&r, b.data, b.len, &used, &err);
	ok(rc == -1 && strcmp(err, "too many lines in a multi-line reply")
	    == 0, "more than %d lines refused", SMTP_REPLY_LINES_MAX);
	buf_reset(&b);
	for (i = 0; i < SMTP_REPLY_LINES_MAX - 1; i++)
		buf_append_str(&b, "250-x\r\n");
	buf_append_str(&b, "250 end\r\n");
	rc = smtp_reply_parse(&r, b.data, b.len, &used, &err);
	is_int(rc, 1, "exactly %d lines accepted", SMTP_REPLY_LINES_MAX);
	buf_deinit(&b);
	smtp_reply_deinit(&r);
}

struct dsn_case {
	const char *input;
	const char *want;
};

static const struct dsn_case dsn_cases[] = {
	{ "550 5.1.1 no\r\n", "5.1.1" },
	{ "550 no\r\n", "5.0.0" },
	{ "451 4.3.0 later\r\n", "4.3.0" },
	{ "451 later\r\n", "4.0.0" },
	{ "250 2.0.0 ok\r\n", "2.0.0" },
	{ "550 4.1.1 mismatched class\r\n", "5.0.0" },
	{ "550 5.1234.1 too long\r\n", "5.0.0" },
};

static void
test_dsn(void)
{
	struct smtp_reply r;
	const char *err;
	size_t i, used;
	char dsn[16];

	smtp_reply_init(&r);
	for (i = 0; i < sizeof(dsn_cases) / sizeof(dsn_cases[0]); i++) {
		smtp_reply_parse(&r, dsn_cases[i].input,
		    strlen(dsn_cases[i].input), &used, &err);
		smtp_reply_dsn(&r, NULL, dsn);
		is_str(dsn, dsn_cases[i].want, "dsn of %.*s",
		    (int)strlen(dsn_cases[i].input) - 2, dsn_cases[i].input);
	}
	smtp_reply_deinit(&r);
}

struct ehlo_case {
	const char *name;
	const char *input;
	unsigned want_flags;
	size_t	 want_size;
};

static const struct ehlo_case ehlo_cases[] = {
	{ "smtp-sink", "250-smtp-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
	  "250-AUTH PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n"
	  "250 \r\n", SMTP_EXT_PIPELINING | SMTP_EXT_8BITMIME |
	  SMTP_EXT_ENHANCEDSTATUSCODES | SMTP_EXT_DSN, 0 },
	{ "postfix-like", "250-mx.example\r\n250-PIPELINING\r\n"
	  "250-SIZE 10240000\r\n250-STARTTLS\r\n250-SMTPUTF8\r\n"
	  "250 CHUNKING\r\n", SMTP_EXT_PIPELINING | SMTP_EXT_SIZE |
	  SMTP_EXT_STARTTLS | SMTP_EXT_SMTPUTF8 | SMTP_EXT_CHUNKING,
	  10240000 },
	{ "case-insensitive", "250-x\r\n250-pipelining\r\n250 starttls\r\n",
	  SMTP_EXT_PIPELINING | SMTP_EXT_STARTTLS, 0 },
	{ "SIZE without argument", "250-x\r\n250 SIZE\r\n", SMTP_EXT_SIZE, 0 },
	{ "SIZE garbage", "250-x\r\n250 SIZE 12abc\r\n", SMTP_EXT_SIZE, 0 },
	{ "prefix is not a keyword", "250-x\r\n250-PIPELININGX\r\n"
	  "250 XSTARTTLS\r\n", 0, 0 },
	{ "first line is the name", "250 STARTTLS\r\n", 0, 0 },
};

static void
test_ehlo(void)
{
	struct smtp_reply r;
	struct smtp_ext ext;
	const char *err;
	size_t i, used;

	smtp_reply_init(&r);
	for (i = 0; i < sizeof(ehlo_cases) / sizeof(ehlo_cases[0]); i++) {
		smtp_reply_parse(&r, ehlo_cases[i].input,
		    strlen(ehlo_cases[i].input), &used, &err);
		smtp_ehlo_parse(&r, &ext);
		is_int(ext.flags, ehlo_cases[i].want_flags, "ehlo %s: flags",
		    ehlo_cases[i].name);
		is_int(ext.size_max, ehlo_cases[i].want_size, "ehlo %s: size",
		    ehlo_cases[i].name);
	}
	smtp_reply_deinit(&r);
}

static void
test_commands(void)
{
	struct delivery_job job;
	struct delivery_rcpt rc;
	struct smtp_ext ext = { 0, 0 };
	struct buf b;

	memset(&job, 0, sizeof(job));
	memset(&rc, 0, sizeof(rc));
	job.sender = "alice@example.org";
	job.body_type = "8BITMIME";
	job.envid = "id+1=x y";
	job.ret = "HDRS";
	job.smtputf8 = true;
	buf_init(&b, 0);

	smtp_mail_cmd(&b, &job, &ext, 1234);
	is_str(buf_cstr(&b), "MAIL FROM:<alice@example.org>\r\n",
	    "MAIL without extensions");
	buf_reset(&b);
	ext.flags = SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_SMTPUTF8 |
	    SMTP_EXT_DSN;
	smtp_mail_cmd(&b, &job, &ext, 1234);
	is_str(buf_cstr(&b), "MAIL FROM:<alice@example.org> SIZE=1234 "
	    "BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=id+2B1+3Dx+20y\r\n",
	    "MAIL with SIZE, BODY, SMTPUTF8, RET, ENVID (xtext)");
	buf_reset(&b);
	job.sender = "";
	job.body_type = "7BIT";
	job.smtputf8 = false;
	job.envid = NULL;
	job.ret = NULL;
	smtp_mail_cmd(&b, &job, &ext, 5);
	is_str(buf_cstr(&b), "MAIL FROM:<> SIZE=5\r\n",
	    "null sender, 7bit body");

	rc.address = "bob@example.net";
	buf_reset(&b);
	smtp_rcpt_cmd(&b, &rc, &ext);
	is_str(buf_cstr(&b), "RCPT TO:<bob@example.net>\r\n", "plain RCPT");
	rc.notify = DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY;
	rc.orcpt = "rfc822;Bob+x@example.net";
	buf_reset(&b);
	smtp_rcpt_cmd(&b, &rc, &ext);
	is_str(buf_cstr(&b), "RCPT TO:<bob@example.net> NOTIFY=SUCCESS,"
	    "FAILURE,DELAY ORCPT=rfc822;Bob+2Bx@example.net\r\n",
	    "RCPT with NOTIFY list and ORCPT xtext");
	rc.notify = DSN_NOTIFY_NEVER;
	rc.orcpt = "bob=@example.net";
	buf_reset(&b);
	smtp_rcpt_cmd(&b, &rc, &ext);
	is_str(buf_cstr(&b), "RCPT TO:<bob@example.net> NOTIFY=NEVER "
	    "ORCPT=rfc822;bob+3D@example.net\r\n",
	    "RCPT NOTIFY=NEVER, ORCPT without type");
	rc.orcpt = "UTF-8;b\\x{E9}b@example.net";
	buf_reset(&b);
	smtp_rcpt_cmd(&b, &rc, &ext);
	is_str(buf_cstr(&b), "RCPT TO:<bob@example.net> NOTIFY=NEVER "
	    "ORCPT=UTF-8;b\\x{E9}b@example.net\r\n",
	    "RCPT with a utf-8 ORCPT sent in its own form");
	ext.flags = SMTP_EXT_PIPELINING;
	buf_reset(&b);
	smtp_rcpt_cmd(&b, &rc, &ext);
	is_str(buf_cstr(&b), "RCPT TO:<bob@example.net>\r\n",
	    "no DSN parameters when the server lacks DSN");
	buf_deinit(&b);
}

struct dot_case {
	const char *name;
	const char *pieces[4];
	const char *want;
};

static const struct dot_case dot_cases[] = {
	{ "no dots", { "a\r\nb\r\n", NULL }, "a\r\nb\r\n.\r\n" },
	{ "leading dot", { ".a\r\n", NULL }, "..a\r\n.\r\n" },
	{ "dot mid-stream", { "a\r\n.\r\n..b\r\n", NULL },
	  "a\r\n..\r\n...b\r\n.\r\n" },
	{ "dot after a piece boundary", { "a\r\n", ".b\r\n", NULL },
	  "a\r\n..b\r\n.\r\n" },
	{ "line split across pieces", { "a", ".b\r\n", NULL },
	  "a.b\r\n.\r\n" },
	{ "CR and LF split", { "a\r", "\n.", "x\r\n", NULL },
	  "a\r\n..x\r\n.\r\n" },
	{ "missing final CRLF added", { "a\r\n.b", NULL },
	  "a\r\n..b\r\n.\r\n" },
	{ "empty", { NULL }, ".\r\n" },
	{ "dot not at line start", { "a.b\r\n", NULL }, "a.b\r\n.\r\n" },
};

static void
test_dot(void)
{
	struct evbuffer *out;
	struct smtp_dot d;
	size_t i, j, len;
	char *got;

	for (i = 0; i < sizeof(dot_cases) / sizeof(dot_cases[0]); i++) {
		out = evbuffer_new();
		smtp_dot_init(&d);
		for (j = 0; dot_cases[i].pieces[j] != NULL; j++)
			smtp_dot_stuff(&d, dot_cases[i].pieces[j],
			    strlen(dot_cases[i].pieces[j]), out);
		smtp_dot_end(&d, out);
		len = evbuffer_get_length(out);
		got = xmalloc(len + 1);
		evbuffer_remove(out, got, len);
		got[len] = '\0';
		is_str(got, dot_cases[i].want, "dot-stuffing: %s",
		    dot_cases[i].name);
		free(got);
		evbuffer_free(out);
	}
}

/* ---------------- part 2: the transport ---------------- */

static struct loop *loop;
static struct event_base *base;
static struct event *tick;
static bool job_done;
static int content_fd = -1;
static struct config cf;
static char tmpdir[] = "/tmp/test_deliver_smtp.XXXXXX";

/* content: junk, body, header block; as spool.h lays it out */
static const char header_block[] =
    "From: alice@example.org\r\nTo: bob@example.net\r\n"
    "Subject: test\r\n";
static const char body[] =
    "first line\r\n.dotted line\r\n..two dots\r\n.\r\nlast line\r\n";

static void
on_done(struct delivery_job *job)
{
	job_done = true;
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
}

/* run_for - run the loop until job_done (or ms passed when wait_all) */
static void
run_until_done(int ms, bool wait_all)
{
	struct timespec t0, t;
	long el;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (job_done && !wait_all)
			return;
		clock_gettime(CLOCK_MONOTONIC, &t);
		el = (t.tv_sec - t0.tv_sec) * 1000 +
		    (t.tv_nsec - t0.tv_nsec) / 1000000;
		if (el >= ms)
			return;
		event_base_loop(base, EVLOOP_ONCE);
	}
}

struct test_job {
	struct delivery_job job;
	struct delivery_rcpt rcpts[4];
	char	 port[16];
};

static void
job_init(struct test_job *t, const char *host, int port, bool use_mx,
    size_t nrcpts)
{
	static const char *addrs[] = { "bob@example.net", "carol@example.net",
	    "dave@example.net", "erin@example.net" };
	size_t i;

	memset(t, 0, sizeof(*t));
	snprintf(t->port, sizeof(t->port), "%d", port);
	t->job.config = &cf;
	t->job.queue_id = "TESTQID";
	t->job.sender = "alice@example.org";
	t->job.body_type = "8BITMIME";
	t->job.content_fd = content_fd;
	t->job.body_offset = 7;
	t->job.body_len = strlen(body);
	t->job.header_offset = 7 + (off_t)strlen(body);
	t->job.header_len = strlen(header_block);
	t->job.transport = "smtp";
	t->job.nexthop_host = host;
	t->job.nexthop_port = t->port;
	t->job.nexthop_use_mx = use_mx;
	t->job.rcpts = t->rcpts;
	t->job.nrcpts = nrcpts;
	t->job.done = on_done;
	for (i = 0; i < nrcpts; i++) {
		t->rcpts[i].index = i;
		t->rcpts[i].address = addrs[i];
		t->rcpts[i].status = DELIVERY_PENDING;
	}
}

static void
job_run(struct test_job *t)
{
	job_done = false;
	deliver_smtp_start(&t->job, loop);
	ok(!job_done, "done is not called from inside deliver_smtp_start");
	run_until_done(20000, false);
	ok(job_done, "job done");
}

static void
job_deinit(struct test_job *t)
{
	size_t i;

	for (i = 0; i < t->job.nrcpts; i++)
		free(t->rcpts[i].reply);
	free(t->job.relay);
}

static const char *
status_str(enum delivery_status st)
{
	static const char *names[] = { "pending", "sent", "deferred",
	    "bounced" };

	return names[st];
}

/* slurp - a file's contents, "" when missing */
static char *
slurp(const char *path)
{
	struct buf b;
	char tmp[4096];
	ssize_t n;
	int fd;

	buf_init(&b, 0);
	buf_append(&b, "", 0);
	if ((fd = open(path, O_RDONLY)) != -1) {
		while ((n = read(fd, tmp, sizeof(tmp))) > 0)
			buf_append(&b, tmp, (size_t)n);
		close(fd);
	}
	return buf_steal(&b);
}

static int
count_str(const char *hay, const char *needle)
{
	int n = 0;

	while ((hay = strstr(hay, needle)) != NULL) {
		n++;
		hay += strlen(needle);
	}
	return n;
}

/* start_sink - smtp-sink on a free port with extra flags; the port */
static int
start_sink(const char *name, const char *flags)
{
	char listen[64], dump[256], logf[256];
	char *argv[16];
	int port, argc = 0;
	char *fl = flags != NULL ? xstrdup(flags) : NULL, *tok;

	port = testproc_free_port();
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	snprintf(dump, sizeof(dump), "%s/%s.dump", tmpdir, name);
	snprintf(logf, sizeof(logf), "%s/%s.log", tmpdir, name);
	argv[argc++] = SMTP_SINK;
	argv[argc++] = "-v";
	argv[argc++] = "-u";
	argv[argc++] = "nobody";
	argv[argc++] = "-D";
	argv[argc++] = dump;
	for (tok = fl != NULL ? strtok(fl, " ") : NULL; tok != NULL;
	    tok = strtok(NULL, " "))
		argv[argc++] = tok;
	argv[argc++] = listen;
	argv[argc++] = "100";
	argv[argc] = NULL;
	if (testproc_spawn(argv, logf) == -1 || !testproc_wait_tcp(port,
	    5000)) {
		printf("Bail out! smtp-sink did not start\n");
		exit(1);
	}
	free(fl);
	return port;
}

static char *
sink_file(const char *name, const char *ext)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s.%s", tmpdir, name, ext);
	return slurp(path);
}

static void
test_sink_sent(void)
{
	struct test_job t;
	char *dump, *logs, want[128];
	int port;

	port = start_sink("ok", NULL);
	job_init(&t, "127.0.0.1", port, false, 2);
	job_run(&t);
	is_str(status_str(t.rcpts[0].status), "sent", "sink: rcpt 1 sent");
	is_str(status_str(t.rcpts[1].status), "sent", "sink: rcpt 2 sent");
	is_str(t.rcpts[0].dsn, "2.0.0", "sink: dsn 2.0.0");
	is_str(t.rcpts[0].reply, "250 2.0.0 Ok", "sink: reply text");
	snprintf(want, sizeof(want), "127.0.0.1[127.0.0.1]:%d", port);
	is_str(t.job.relay, want, "sink: relay");
	job_deinit(&t);
	run_until_done(200, true);	/* let the sink write its dump */

	dump = sink_file("ok", "dump");
	ok(strstr(dump, "X-Mail-Args: <alice@example.org> BODY=8BITMIME\n")
	    != NULL, "sink: MAIL FROM with BODY=8BITMIME");
	ok(strstr(dump, "X-Rcpt-Args: <bob@example.net>\nX-Rcpt-Args: "
	    "<carol@example.net>\n") != NULL, "sink: both RCPT TO");
	ok(strstr(dump, "X-Helo-Args: client.example.test\n") != NULL,
	    "sink: EHLO myhostname");
	/* smtp-sink removes one dot: what it shows is what was meant */
	ok(strstr(dump, "Subject: test\n\nfirst line\n.dotted line\n"
	    "..two dots\n.\nlast line\n") != NULL,
	    "sink: header, blank line, body, dot-stuffing undone exactly");
	free(dump);

	/* a second job to the same destination reuses the connection */
	job_init(&t, "127.0.0.1", port, false, 1);
	job_run(&t);
	is_str(status_str(t.rcpts[0].status), "sent", "reuse: sent");
	is_str(t.job.relay, want, "reuse: relay");
	job_deinit(&t);
	run_until_done(200, true);
	logs = sink_file("ok", "log");
	/* one probe connection from testproc_wait_tcp, one from us */
	is_int(count_str(logs, "connect (AF_INET"), 2,
	    "reuse: one connection for two jobs");
	is_int(count_str(logs, "EHLO "), 1, "reuse: one EHLO for two jobs");
	is_int(count_str(logs, ": .\n"), 2, "reuse: two messages sent");
	is_int(count_str(logs, "QUIT"), 0, "reuse: connection still open");
	free(logs);
	/* the cache time limit (1 s) ends it with QUIT */
	run_until_done(1800, true);
	logs = sink_file("ok", "log");
	is_int(count_str(logs, "QUIT"), 1, "cache expiry sends QUIT");
	free(logs);
}

static void
test_sink_failures(void)
{
	struct test_job t;
	char *logs, want[160];
	int port;

	port = start_sink("rcpt5", "-f RCPT");
	job_init(&t, "127.0.0.1", port, false, 2);
	job_run(&t);
	is_str(status_str(t.rcpts[0].status), "bounced", "RCPT 5xx: bounced");
	is_str(status_str(t.rcpts[1].status), "bounced",
	    "RCPT 5xx: second bounced");
	is_str(t.rcpts[0].dsn, "5.3.0", "RCPT 5xx: dsn from the reply");
	snprintf(want, sizeof(want), "host 127.0.0.1[127.0.0.1] said: 500 "
	    "5.3.0 Error: command failed (in reply to RCPT TO command)");
	is_str(t.rcpts[0].reply, want, "RCPT 5xx: reply text");
	job_deinit(&t);
	run_until_done(200, true);
	logs = sink_file("rcpt5", "log");
	is_int(count_str(logs, ": DATA\n"), 0, "RCPT 5xx: no DATA sent");
	is_int(count_str(logs, ": RSET\n"), 1, "RCPT 5xx: RSET sent");
	free(logs);

	port = start_sink("rcpt4", "-r RCPT");
	job_init(&t, "127.0.0.1", port, false, 1);
	job_run(&t);
	is_str(status_str(t.rcpts[0].status), "deferred",
	    "RCPT 4xx: deferred");
	is_str(t.rcpts[0].dsn, "4.3.0", "RCPT 4xx: dsn");
	job_deinit(&t);

	port = start_sink("mail5", "-f MAIL");
	job_init(&t, "127.0.0.1", port, false, 2);
	job_run(&t);
	is_str(status_str(t.rcpts[0].status), "bounced", "MAIL 5xx: bounced");
	is_str(status_str(t.rcpts[1].status), "bounced",
	    "MAIL 5xx: all bounced");
	ok(t.rcpts[1].reply != NULL && strstr(t.rcpts[1].reply,
	    "(in reply to MAIL FROM command)") != NULL,
	    "MAIL 5xx: in reply to MAIL FROM");
	job_deinit(&t);

	port = start_sink("dot4", "-r .");
	job_init(&t, "127.0.0.1", port, false, 2);
	job_run(&t);
	is_str(status_str(t.rcpts[0].status), "deferred",
	    "4xx after DATA: deferred");
	is_str(status_str(t.rcpts[1].status), "deferred",
	    "4xx after DATA: every accepted recipient");
	job_deinit(&t);

	/* connection refused */
	port = testproc_free_port();
	job_init(&t, "127.0.0.1", port, false, 1);
	job_run(&t);
	is_str(status_str(t.rcpts[0].status), "deferred", "refused: deferred");
	snprintf(want, sizeof(want), "connect to 127.0.0.1[127.0.0.1]:%d: "
	    "Connection refused", port);
	is_str(t.rcpts[0].reply, want, "refused: reason");
	is_str(t.rcpts[0].dsn, "4.4.1", "refused: dsn");
	job_deinit(&t);
}

/*
 * A scripted next hop: greeting, then one reply per command line in
 * order (EHLO/HELO included); "354" starts data mode until ".". It
 * logs what it read; "FIRST:" marks what one read got 200 ms after the
 * EHLO reply, which shows whether the client pipelined.
 */
struct script {
	const char *greeting;		/* NULL: say nothing */
	const char *replies[10];	/* NULL ends; then "250 ok" */
};

static void
script_child(int lfd, const struct script *sc, const char *logpath)
{
	char buf[65536], *p, *nl;
	size_t len = 0, i = 0;
	bool data = false, first = false, after_ehlo = false;
	ssize_t n;
	FILE *lg;
	int fd;

	lg = fopen(logpath, "w");
	if ((fd = accept(lfd, NULL, NULL)) == -1)
		_exit(1);
	if (sc->greeting == NULL) {
		sleep(30);
		_exit(0);
	}
	(void)!write(fd, sc->greeting, strlen(sc->greeting));
	for (;;) {
		bool mark = false;

		if (after_ehlo && !first) {
			usleep(200000);
			first = mark = true;
		}
		n = read(fd, buf + len, sizeof(buf) - len - 1);
		if (n <= 0)
			break;
		if (mark)
			fprintf(lg, "FIRST:%.*s<END>\n", (int)n, buf + len);
		fprintf(lg, "%.*s", (int)n, buf + len);
		fflush(lg);
		len += (size_t)n;
		buf[len] = '\0';
		while ((nl = strstr(buf, "\r\n")) != NULL) {
			p = buf;
			*nl = '\0';
			if (data) {
				if (strcmp(p, ".") == 0) {
					data = false;
					const char *r = sc->replies[i] != NULL ?
					    sc->replies[i] : "250 ok\r\n";

					(void)!write(fd, r, strlen(r));
					if (sc->replies[i] != NULL)
						i++;
				}
			} else if (strncmp(p, "QUIT", 4) == 0) {
				(void)!write(fd, "221 bye\r\n", 9);
				_exit(0);
			} else {
				const char *r = sc->replies[i] != NULL ?
				    sc->replies[i] : "250 ok\r\n";

				if (sc->replies[i] != NULL)
					i++;
				(void)!write(fd, r, strlen(r));
				if (strncmp(r, "354", 3) == 0)
					data = true;
				if (strncmp(p, "EHLO", 4) == 0 &&
				    r[0] == '2')
					after_ehlo = true;
			}
			len -= (size_t)(nl + 2 - buf);
			memmove(buf, nl + 2, len);
			buf[len] = '\0';
		}
	}
	_exit(0);
}

/* start_script - fork a scripted server; its port */
static int
start_script(const struct script *sc, const char *name)
{
	struct sockaddr_in sin;
	socklen_t slen = sizeof(sin);
	char logpath[256];
	int lfd;

	lfd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(lfd, 5) == -1 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &slen) == -1) {
		printf("Bail out! scripted server\n");
		exit(1);
	}
	snprintf(logpath, sizeof(logpath), "%s/%s.log", tmpdir, name);
	if (testproc_fork() == 0)
		script_child(lfd, sc, logpath);
	close(lfd);
	return ntohs(sin.sin_port);
}

static void
test_scripted(void)
{
	struct test_job t;
	char *logs;
	int port;
	static const struct script mixed = {
		"220 scripted ESMTP\r\n",
		{ "250-scripted\r\n250-PIPELINING\r\n250-DSN\r\n"
		  "250 SIZE 1000000\r\n",
		  "250 2.1.0 sender ok\r\n",
		  "250 2.1.5 ok\r\n",
		  "550 5.1.1 no such user\r\n",
		  "450 4.2.0 mailbox busy\r\n",
		  "354 go ahead\r\n",
		  "250 2.0.0 Ok: queued as ABC\r\n", NULL } };
	static const struct script nopipe = {
		"220 scripted ESMTP\r\n",
		{ "250-scripted\r\n250 8BITMIME\r\n", "250 ok\r\n",
		  "250 ok\r\n", "250 ok\r\n", "354 go\r\n", "250 ok\r\n",
		  NULL } };
	static const struct script helo = {
		"220 scripted\r\n",
		{ "502 5.5.2 EHLO not implemented\r\n", "250 hello\r\n",
		  "250 ok\r\n", "250 ok\r\n", "354 go\r\n", "250 ok\r\n",
		  NULL } };
	static const struct script bad = {
		"220 scripted\r\n", { "2x0 garbage\r\n", NULL } };
	static const struct script size = {
		"220 scripted\r\n", { "250-scripted\r\n250 SIZE 10\r\n",
		NULL } };
	static const struct script greet421 = {
		"421 4.3.2 busy\r\n", { NULL } };
	static const struct script greet554 = {
		"554 5.7.1 go away\r\n", { NULL } };
	static const struct script mute = { NULL, { NULL } };
	static const struct script data554 = {
		"220 scripted\r\n", { "250-scripted\r\n250 PIPELINING\r\n",
		"250 ok\r\n", "250 ok\r\n", "554 5.6.0 no data for you\r\n",
		NULL } };

	/* mixed RCPT replies, pipelined, DSN parameters */
	port = start_script(&mixed, "mixed");
	job_init(&t, "127.0.0.1", port, false, 3);
	/* 7-bit content: the server offers no 8BITMIME */
	t.job.body_type = NULL;
	t.job.envid = "E1";
	t.job.ret = "FULL";
	t.rcpts[0].notify = DSN_NOTIFY_FAILURE;
	t.rcpts[0].orcpt = "rfc822;bob@example.net";
	job_run(&t);
	is_str(status_str(t.rcpts[0].status), "sent", "mixed: rcpt 1 sent");
	is_str(t.rcpts[0].reply, "250 2.0.0 Ok: queued as ABC",
	    "mixed: final reply");
	is_str(status_str(t.rcpts[1].status), "bounced",
	    "mixed: rcpt 2 bounced");
	is_str(t.rcpts[1].dsn, "5.1.1", "mixed: rcpt 2 dsn");
	is_str(t.rcpts[1].reply, "host 127.0.0.1[127.0.0.1] said: 550 5.1.1 "
	    "no such user (in reply to RCPT TO command)",
	    "mixed: rcpt 2 reason");
	is_str(status_str(t.rcpts[2].status), "deferred",
	    "mixed: rcpt 3 deferred");
	is_str(t.rcpts[2].dsn, "4.2.0", "mixed: rcpt 3 dsn");
	job_deinit(&t);
	run_until_done(300, true);
	logs = sink_file("mixed", "log");
	ok(strstr(logs, "FIRST:MAIL FROM:<alice@example.org> SIZE=") !=
	    NULL, "mixed: MAIL first, with SIZE");
	{
		char *first = strstr(logs, "FIRST:");
		char *end = first != NULL ? strstr(first, "DATA\r\n") : NULL;
		char *third = first != NULL ? strstr(first,
		    "RCPT TO:<dave@example.net>") : NULL;

		ok(first != NULL && end != NULL && third != NULL &&
		    third < end && strstr(first, "<END>") == end + 6,
		    "pipelining: MAIL, 3 RCPT and DATA in one read");
	}
	ok(strstr(logs, " RET=FULL ENVID=E1\r\n") != NULL,
	    "DSN: RET and ENVID sent");
	ok(strstr(logs, "RCPT TO:<bob@example.net> NOTIFY=FAILURE "
	    "ORCPT=rfc822;bob@example.net\r\n") != NULL,
	    "DSN: NOTIFY and ORCPT sent");
	ok(strstr(logs, "\r\n..dotted line\r\n...two dots\r\n..\r\n"
	    "last line\r\n.\r\n") != NULL, "dot-stuffing on the wire");
	free(logs);

	/* no PIPELINING: one command at a time */
	port = start_script(&nopipe, "nopipe");
	job_init(&t, "127.0.0.1", port, false, 2);
	job_run(&t);
	is_str(status_str(t.rcpts[1].status), "sent", "no pipelining: sent");
	job_deinit(&t);
	run_until_done(300, true);
	logs = sink_file("nopipe", "log");
	ok(strstr(logs, "FIRST:MAIL FROM:<alice@example.org> BODY=8BITMIME"
	    "\r\n<END>") != NULL, "no pipelining: MAIL alone in the first read");
	free(logs);

	/* EHLO refused: HELO */
	port = start_script(&helo, "helo");
	job_init(&t, "127.0.0.1", port, false, 1);
	/* 7-bit content: the server offers no 8BITMIME */
	t.job.body_type = NULL;
	job_run(&t);
	is_str(status_str(t.rcpts[0].status), "sent", "HELO fallback: sent");
	job_deinit(&t);
	run_until_done(300, true);
	logs = sink_file("helo", "log");
	ok(strstr(logs, "HELO client.example.test\r\n") != NULL,
	    "HELO fallback: HELO sent");
	ok(strstr(logs, "BODY=") == NULL, "HELO fallback: no ESMTP params");
	free(logs);

	/* malformed reply */
	/* RFC 6152 3: 8-bit content to a server without 8BITMIME */
	port = start_script(&helo, "helo8");
	job_init(&t, "127.0.0.1", port, false, 1);
	job_run(&t);
	is_str(status_str(t.rcpts[0].status), "bounced",
	    "8-bit to a server without 8BITMIME: bounced");
	is_str(t.rcpts[0].dsn, "5.6.3", "8-bit without 8BITMIME: dsn 5.6.3");
	job_deinit(&t);
	run_until_done(300, true);

	port = start_script(&bad, "bad");
	job_init(&t, "127.0.0.1", port, false, 1);
	job_run(&t);
	is_str(status_str(t.rcpts[0].status), "deferred",
	    "malformed: deferred");
	is_str(t.rcpts[0].reply, "malformed reply from 127.0.0.1[127.0.0.1] "
	    "while performing the EHLO handshake: malformed reply code",
	    "malformed: reason");
	job_deinit(&t);

	/* SIZE too small */
	port = start_script(&size, "size");
	job_init(&t, "127.0.0.1", port, false, 1);
	job_run(&t);
	is_str(status_str(t.rcpts[0].status), "bounced", "SIZE: bounced");
	is_str(t.rcpts[0].dsn, "5.3.4", "SIZE: dsn 5.3.4");
	job_deinit(&t);

	/* greetings */
	port = start_script(&greet421, "g421");
	job_init(&t, "127.0.0.1", port, false, 1);
	job_run(&t);
	is_str(status_str(t.rcpts[0].status), "deferred", "421 greeting: "
	    "deferred");
	is_str(t.rcpts[0].reply, "host 127.0.0.1[127.0.0.1] refused to talk "
	    "to me: 421 4.3.2 busy", "421 greeting: reason");
	job_deinit(&t);
	port = start_script(&greet554, "g554");
	job_init(&t, "127.0.0.1", port, false, 1);
	job_run(&t);
	is_str(status_str(t.rcpts[0].status), "bounced", "554 greeting: "
	    "bounced");
	is_str(t.rcpts[0].dsn, "5.7.1", "554 greeting: dsn");
	job_deinit(&t);

	/* 5xx to DATA after accepted recipients */
	port = start_script(&data554, "data554");
	job_init(&t, "127.0.0.1", port, false, 1);
	/* 7-bit content: the server offers no 8BITMIME */
	t.job.body_type = NULL;
	job_run(&t);
	is_str(status_str(t.rcpts[0].status), "bounced", "DATA 554: bounced");
	ok(t.rcpts[0].reply != NULL && strstr(t.rcpts[0].reply,
	    "(in reply to DATA command)") != NULL, "DATA 554: reason");
	job_deinit(&t);

	/* timeout waiting for the greeting */
	cf.smtp_helo_timeout = 1;
	port = start_script(&mute, "mute");
	job_init(&t, "127.0.0.1", port, false, 1);
	job_run(&t);
	is_str(status_str(t.rcpts[0].status), "deferred", "timeout: deferred");
	is_str(t.rcpts[0].reply, "conversation with 127.0.0.1[127.0.0.1] "
	    "timed out while receiving the initial server greeting",
	    "timeout: reason");
	job_deinit(&t);
	cf.smtp_helo_timeout = 300;
}

/* ---------------- part 3: MX routing ---------------- */

static void
test_mx(void)
{
	char conf[256], arg[300], logf[256], resolver[64], want[128];
	struct test_job t;
	FILE *f;
	int dport, sport;

	if (access(DNSMASQ, X_OK) != 0) {
		ok(1, "# SKIP dnsmasq not installed");
		return;
	}
	dport = testproc_free_port();
	snprintf(conf, sizeof(conf), "%s/dnsmasq.conf", tmpdir);
	snprintf(logf, sizeof(logf), "%s/dnsmasq.log", tmpdir);
	if ((f = fopen(conf, "w")) == NULL)
		return;
	fprintf(f, "port=%d\nlisten-address=127.0.0.1\nbind-interfaces\n"
	    "no-resolv\nno-hosts\nno-poll\nlocal=/example.test/\nuser=root\n"
	    "mx-host=example.test,v6.example.test,10\n"
	    "mx-host=example.test,gone.example.test,15\n"
	    "mx-host=example.test,mx.example.test,20\n"
	    "host-record=v6.example.test,::1\n"
	    "host-record=mx.example.test,127.0.0.1\n"
	    "dns-rr=nullmx.example.test,15,000000\n", dport);
	fclose(f);
	snprintf(arg, sizeof(arg), "--conf-file=%s", conf);
	{
		char *argv[] = { DNSMASQ, "-k", arg, "--pid-file=", NULL };

		if (testproc_spawn(argv, logf) == -1 ||
		    !testproc_wait_tcp(dport, 5000)) {
			printf("Bail out! dnsmasq did not start\n");
			exit(1);
		}
	}
	snprintf(resolver, sizeof(resolver), "127.0.0.1@%d", dport);
	cf.dns_resolver = resolver;
	/* smtp-sink on 127.0.0.1 only: ::1 is refused, falls back */
	sport = start_sink("mx", NULL);

	job_init(&t, "example.test", sport, true, 1);
	job_run(&t);
	is_str(status_str(t.rcpts[0].status), "sent",
	    "MX: sent via the third MX after two failures");
	snprintf(want, sizeof(want), "mx.example.test[127.0.0.1]:%d", sport);
	is_str(t.job.relay, want, "MX: relay names the MX host");
	job_deinit(&t);

	job_init(&t, "nullmx.example.test", sport, true, 1);
	job_run(&t);
	is_str(status_str(t.rcpts[0].status), "bounced", "null MX: bounced");
	is_str(t.rcpts[0].dsn, "5.1.10", "null MX: dsn 5.1.10");
	job_deinit(&t);

	job_init(&t, "nx.example.test", sport, true, 1);
	job_run(&t);
	is_str(status_str(t.rcpts[0].status), "bounced", "NXDOMAIN: bounced");
	is_str(t.rcpts[0].dsn, "5.4.4", "NXDOMAIN: dsn 5.4.4");
	job_deinit(&t);

	/* a fixed next hop by name (no MX) */
	job_init(&t, "mx.example.test", sport, false, 1);
	job_run(&t);
	is_str(status_str(t.rcpts[0].status), "sent", "[name]: sent");
	job_deinit(&t);
}

int
main(void)
{
	char path[256];

	log_init("test_deliver_smtp", false);
	if (getenv("TEST_DEBUG") != NULL)
		log_set_debug("all");
	test_reply_parser();
	test_dsn();
	test_ehlo();
	test_commands();
	test_dot();

	if (access(SMTP_SINK, X_OK) != 0) {
		ok(1, "# SKIP smtp-sink not installed");
		return done_testing();
	}
	if (mkdtemp(tmpdir) == NULL || chmod(tmpdir, 0777) == -1) {
		printf("Bail out! temp dir\n");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/content", tmpdir);
	content_fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (content_fd == -1 || write(content_fd, "JUNK\r\n\n", 7) != 7 ||
	    write(content_fd, body, strlen(body)) != (ssize_t)strlen(body) ||
	    write(content_fd, header_block, strlen(header_block)) !=
	    (ssize_t)strlen(header_block)) {
		printf("Bail out! content file\n");
		return 1;
	}
	cf.myhostname = "client.example.test";
	cf.smtp_tls_security_level = "may";
	cf.smtp_connect_timeout = 5;
	cf.smtp_helo_timeout = 300;
	cf.smtp_command_timeout = 300;
	cf.smtp_data_timeout = 180;
	cf.smtp_connection_cache_time_limit = 1;
	cf.dns_resolver = "127.0.0.1@1";	/* never asked for literals */

	loop = loop_new("test");
	base = loop_base(loop);
	tick = event_new(base, -1, EV_PERSIST, tick_cb, NULL);
	{
		struct timeval tv = { 0, 20000 };

		event_add(tick, &tv);
	}
	test_sink_sent();
	test_sink_failures();
	test_scripted();
	test_mx();

	deliver_smtp_shutdown(loop);
	run_until_done(100, true);
	event_free(tick);
	testproc_kill_all();
	close(content_fd);
	if (getenv("TEST_KEEP") == NULL) {
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		(void)!system(cmd);
	}
	return done_testing();
}

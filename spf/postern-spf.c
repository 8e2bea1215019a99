/*
 * postern-spf.c - the SPF helper process: reads check requests on fd 0,
 * answers each on fd 1, one at a time, until EOF.
 *
 * posternd (spf_client.c) starts a small pool of these, so that libspf2,
 * which aborts on internal errors and has known holes in its parsing of
 * DNS data (notes/libraries.md 2.3, 2.4), can only ever take down one
 * helper and one check. This file owns the process set-up and the
 * request loop; the check itself is spf_eval.c, the framing
 * spf_proto.c. A crash here is expected and handled by the client:
 * nothing is done to survive one.
 *
 * usage: postern-spf [-r resolver] [-n receiver] [-t timeout_ms]
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/types.h>
#include <sys/resource.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "dns_sync.h"
#include "log.h"
#include "spf_client.h"
#include "spf_eval.h"
#include "spf_proto.h"

#define SPF_HELPER_TIMEOUT_DEFAULT	10000	/* ms */
#define SPF_HELPER_TIMEOUT_MAX		600000

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: postern-spf [-r resolver] [-n receiver] "
	    "[-t timeout_ms]\n");
	exit(2);
}

/* parse_timeout - milliseconds in [1, MAX], or fallback */
static int
parse_timeout(const char *s, int fallback)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < 1 ||
	    v > SPF_HELPER_TIMEOUT_MAX)
		return fallback;
	return (int)v;
}

/*
 * setup_process - no core files (they could hold mail addresses), no
 * death by SIGPIPE when posternd goes away mid-answer (the write fails
 * instead), and no descriptors inherited by mistake beyond 0-2.
 */
static void
setup_process(void)
{
	struct rlimit rl = { 0, 0 };
	long maxfd;
	int fd;

	if (setrlimit(RLIMIT_CORE, &rl) == -1)
		fatal("setrlimit");
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		fatal("signal");
	maxfd = sysconf(_SC_OPEN_MAX);
	if (maxfd < 0 || maxfd > 65536)
		maxfd = 65536;
	for (fd = 3; fd < maxfd; fd++)
		(void)close(fd);
}

/* serve - answer one request payload; -1 when it is garbage */
static int
serve(struct spf_eval *ev, const struct buf *req, struct buf *out,
    int default_timeout)
{
	const char *f[SPF_PROTO_REQ_FIELDS], *ans[SPF_PROTO_ANS_FIELDS];
	struct spf_query q;
	struct spf_answer a;
	char result[16];
	int timeout;

	if (spf_proto_split(req->data != NULL ? req->data : "", req->len, f,
	    SPF_PROTO_REQ_FIELDS) == -1)
		return -1;
	q.client_addr = f[SPF_REQ_CLIENT_IP];
	q.helo = f[SPF_REQ_HELO];
	q.sender = f[SPF_REQ_SENDER];
	q.identity = f[SPF_REQ_IDENTITY];
	timeout = parse_timeout(f[SPF_REQ_TIMEOUT], default_timeout);
	spf_eval_check(ev, &q, timeout, &a);
	snprintf(result, sizeof(result), "%d", (int)a.result);
	ans[SPF_ANS_ID] = f[SPF_REQ_ID];
	ans[SPF_ANS_RESULT] = result;
	ans[SPF_ANS_DOMAIN] = a.domain;
	ans[SPF_ANS_EXPLANATION] = a.explanation;
	ans[SPF_ANS_COMMENT] = a.comment;
	buf_reset(out);
	return spf_proto_encode(out, ans, SPF_PROTO_ANS_FIELDS);
}

int
main(int argc, char *argv[])
{
	struct spf_eval *ev;
	struct buf req, out;
	const char *resolver = NULL, *receiver = NULL, *err = NULL;
	int ch, rc, timeout = SPF_HELPER_TIMEOUT_DEFAULT;

	setup_process();
	log_init("postern-spf", false);
	while ((ch = getopt(argc, argv, "n:r:t:")) != -1) {
		switch (ch) {
		case 'n':
			receiver = optarg;
			break;
		case 'r':
			resolver = strcmp(optarg, "-") == 0 ? NULL : optarg;
			break;
		case 't':
			timeout = parse_timeout(optarg, -1);
			if (timeout == -1)
				usage();
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (dns_sync_configure(resolver, &err) == -1)
		fatalx("dns_resolver %s: %s", resolver, err);
	if ((ev = spf_eval_new(receiver, &err)) == NULL)
		fatalx("%s", err);

	buf_init(&req, SPF_PROTO_MAX);
	buf_init(&out, SPF_PROTO_MAX + 4);
	for (;;) {
		rc = spf_proto_read(STDIN_FILENO, &req, -1, &err);
		if (rc == 0)
			break;
		if (rc == -1)
			fatalx("request: %s", err);
		if (serve(ev, &req, &out, timeout) == -1)
			fatalx("malformed request");
		if (spf_proto_write(STDOUT_FILENO, out.data, out.len,
		    &err) == -1)
			fatalx("answer: %s", err);
	}
	buf_deinit(&req);
	buf_deinit(&out);
	spf_eval_free(&ev);
	dns_sync_thread_reset();
	return 0;
}

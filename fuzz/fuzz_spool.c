/*
 * fuzz_spool.c - libFuzzer target for the spool file reader
 * (spool_msg_open in daemon/spool.c) and what the queue manager does
 * with a file that opened: the status byte updates and the bounce
 * (daemon/bounce.c).
 *
 * Spool files are our own, but a disk error, a crash in the middle of
 * an administrator's edit or a file copied in by hand can leave anything
 * there, and a damaged file must never crash the queue manager: it is
 * either refused (errno EBADMSG, moved to corrupt/ by the caller) or
 * read into an envelope that everything downstream can handle.
 *
 * The input is the whole content of queue/<ID> in a temporary queue
 * directory (under /dev/shm when it exists, so that the fsyncs of the
 * round trip below cost little). Besides "no crash, no leak" it checks:
 *   - a refused file sets *error_r and errno EBADMSG;
 *   - an accepted file has a sender and at least one recipient, header
 *     and body ranges inside the file, and each recipient's status
 *     offset points at its 'P' or 'D' byte;
 *   - bounce_build() accepts what the queue manager would give it;
 *   - marking every recipient done and opening the file again gives the
 *     same envelope with every recipient done;
 *   - writing the envelope, headers and body back out with
 *     spool_create/spool_commit and reading that file gives the same
 *     envelope, headers and body (the encoder and the parser agree).
 *
 * Build for libFuzzer (see fuzz/README.md):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. -Idaemon \
 *     fuzz/fuzz_spool.c daemon/spool.c daemon/bounce.c daemon/buf.c \
 *     daemon/xmalloc.c daemon/log.c -o fuzz_spool
 * or with -DFUZZ_STANDALONE (any compiler) as a program that runs the
 * files named on its command line, or stdin, as inputs.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bounce.h"
#include "buf.h"
#include "spool.h"
#include "xmalloc.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* a queue ID spool_new_queue_id could have made; seeds use it too */
#define FUZZ_QUEUE_ID	"0000000FUZZ"

static char queue_dir[PATH_MAX];	/* the temporary spool */

/* remove_spool - at exit: the test file, the state dirs, the spool */
static void
remove_spool(void)
{
	static const enum spool_state states[] = { SPOOL_INCOMING,
	    SPOOL_QUEUE, SPOOL_DEFERRED, SPOOL_HOLD, SPOOL_CORRUPT };
	char path[PATH_MAX + 64];
	size_t i;

	snprintf(path, sizeof(path), "%s/queue/%s", queue_dir, FUZZ_QUEUE_ID);
	unlink(path);
	for (i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", queue_dir,
		    spool_state_dir(states[i]));
		rmdir(path);
	}
	rmdir(queue_dir);
}

/* setup - the temporary spool, made once per process */
static void
setup(void)
{
	const char *base, *err;

	if (queue_dir[0] != '\0')
		return;
	if (access("/dev/shm", W_OK) == 0)
		base = "/dev/shm";
	else if ((base = getenv("TMPDIR")) == NULL)
		base = "/tmp";
	snprintf(queue_dir, sizeof(queue_dir), "%s/fuzz_spool.XXXXXX", base);
	if (mkdtemp(queue_dir) == NULL || spool_init(queue_dir, &err) == -1) {
		perror(queue_dir);
		abort();
	}
	atexit(remove_spool);
}

/* read_range - n bytes at off, as qmgr.c does for bounces */
static char *
read_range(int fd, off_t off, size_t n)
{
	char *p = xmalloc(n + 1);
	ssize_t r;
	size_t got = 0;

	while (got < n) {
		r = pread(fd, p + got, n - got, off + (off_t)got);
		if (r <= 0)
			abort();	/* the lengths were checked */
		got += (size_t)r;
	}
	p[n] = '\0';
	return p;
}

/* same_str - both NULL or both equal */
static bool
same_str(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* same_env - everything but the queue ID (and the file offsets) */
static bool
same_env(const struct spool_envelope *a, const struct spool_envelope *b)
{
	size_t i;

	if (a->arrival != b->arrival || !same_str(a->sender, b->sender) ||
	    !same_str(a->envid, b->envid) || !same_str(a->ret, b->ret) ||
	    !same_str(a->body_type, b->body_type) ||
	    a->smtputf8 != b->smtputf8 ||
	    !same_str(a->client_addr, b->client_addr) ||
	    !same_str(a->client_name, b->client_name) ||
	    !same_str(a->helo, b->helo) ||
	    !same_str(a->sasl_username, b->sasl_username) ||
	    a->nrcpts != b->nrcpts)
		return false;
	for (i = 0; i < a->nrcpts; i++)
		if (!same_str(a->rcpts[i].address, b->rcpts[i].address) ||
		    !same_str(a->rcpts[i].orcpt, b->rcpts[i].orcpt) ||
		    a->rcpts[i].notify != b->rcpts[i].notify ||
		    a->rcpts[i].done != b->rcpts[i].done)
			return false;
	return true;
}

/* check_msg - the properties of a file spool_msg_open accepted */
static void
check_msg(const struct spool_msg *m, size_t size)
{
	size_t i;
	char c;

	if (m->env.sender == NULL || m->env.nrcpts == 0 ||
	    strcmp(m->env.queue_id, FUZZ_QUEUE_ID) != 0)
		abort();
	if (m->body_offset != 0 || (size_t)m->header_offset != m->body_len ||
	    m->body_len + m->header_len > size)
		abort();
	for (i = 0; i < m->env.nrcpts; i++) {
		if (m->env.rcpts[i].address == NULL ||
		    m->env.rcpts[i].notify > 0x0f ||
		    m->env.rcpts[i].status_offset < 0 ||
		    (size_t)m->env.rcpts[i].status_offset >= size)
			abort();
		if (pread(m->fd, &c, 1, m->env.rcpts[i].status_offset) != 1 ||
		    c != (m->env.rcpts[i].done ? 'D' : 'P'))
			abort();
	}
}

/* run_bounce - what qmgr.c write_dsn() builds from the file */
static void
run_bounce(const struct spool_msg *m, const char *hdrs, const char *body)
{
	struct bounce_input in;
	struct bounce_rcpt *br;
	struct buf h, b;
	size_t i;

	br = xcalloc(m->env.nrcpts, sizeof(*br));
	for (i = 0; i < m->env.nrcpts; i++) {
		br[i].address = m->env.rcpts[i].address;
		br[i].orcpt = m->env.rcpts[i].orcpt;
		br[i].notify = m->env.rcpts[i].notify;
		br[i].dsn = "5.1.1";
		br[i].reply = "550 5.1.1 <x@example.net>: user unknown";
		br[i].relay = i % 2 ? "mx.example.net[192.0.2.25]:25" : NULL;
	}
	memset(&in, 0, sizeof(in));
	in.myhostname = "relay.example.test";
	in.queue_id = m->env.queue_id;
	in.dsn_queue_id = "0000000DSN0";
	in.sender = m->env.sender;
	in.envid = m->env.envid;
	in.ret = m->env.ret;
	in.eightbit = m->env.body_type != NULL &&
	    strcmp(m->env.body_type, "8BITMIME") == 0;
	in.arrival = m->env.arrival;
	in.now = m->env.arrival + 5 * 86400;
	in.rcpts = br;
	in.nrcpts = m->env.nrcpts;
	in.headers = hdrs;
	in.header_len = m->header_len;
	in.body = body;
	in.body_len = body != NULL ? m->body_len : 0;
	buf_init(&h, 0);
	buf_init(&b, 0);
	if (bounce_needed(m->env.sender, br, m->env.nrcpts))
		(void)bounce_build(&in, &h, &b);
	buf_deinit(&h);
	buf_deinit(&b);
	free(br);
}

/* run_rewrite - commit the parsed message again and read it back */
static void
run_rewrite(const struct spool_msg *m, const char *hdrs, const char *body)
{
	struct spool_file *sf;
	struct spool_msg *m2;
	char id[QUEUE_ID_MAX], *h2, *b2;
	const char *err;

	if ((sf = spool_create(queue_dir, &err)) == NULL) {
		fprintf(stderr, "spool_create: %s\n", err);
		abort();
	}
	snprintf(id, sizeof(id), "%s", spool_file_queue_id(sf));
	if (spool_write_body(sf, body, m->body_len, &err) == -1 ||
	    spool_commit(&sf, &m->env, hdrs, m->header_len, SPOOL_QUEUE,
	    &err) == -1) {
		fprintf(stderr, "spool write: %s\n", err);
		abort();
	}
	if ((m2 = spool_msg_open(queue_dir, SPOOL_QUEUE, id, &err)) == NULL)
		abort();	/* we wrote it: it must read */
	if (!same_env(&m->env, &m2->env) || m2->header_len != m->header_len ||
	    m2->body_len != m->body_len)
		abort();
	h2 = read_range(m2->fd, m2->header_offset, m2->header_len);
	b2 = read_range(m2->fd, m2->body_offset, m2->body_len);
	if (memcmp(h2, hdrs, m->header_len) != 0 ||
	    memcmp(b2, body, m->body_len) != 0)
		abort();
	free(h2);
	free(b2);
	if (spool_remove(m2, &err) == -1)
		abort();
	spool_msg_free(&m2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spool_msg *m, *m2;
	char path[PATH_MAX + 64], *hdrs, *body;
	const char *err;
	size_t i;
	int fd;

	setup();
	snprintf(path, sizeof(path), "%s/queue/%s", queue_dir, FUZZ_QUEUE_ID);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) == -1 || (size > 0 && write(fd, data, size) !=
	    (ssize_t)size) || close(fd) == -1) {
		perror(path);
		abort();
	}

	err = NULL;
	errno = 0;
	m = spool_msg_open(queue_dir, SPOOL_QUEUE, FUZZ_QUEUE_ID, &err);
	if (m == NULL) {
		if (err == NULL || errno != EBADMSG)
			abort();
		return 0;
	}
	check_msg(m, size);

	hdrs = read_range(m->fd, m->header_offset, m->header_len);
	body = read_range(m->fd, m->body_offset, m->body_len);
	run_bounce(m, hdrs, body);
	run_rewrite(m, hdrs, body);

	/* the queue manager's status updates keep the file readable */
	for (i = 0; i < m->env.nrcpts; i++)
		if (spool_mark_done_nosync(m, i, &err) == -1)
			abort();
	if ((m2 = spool_msg_open(queue_dir, SPOOL_QUEUE, FUZZ_QUEUE_ID,
	    &err)) == NULL || !same_env(&m->env, &m2->env))
		abort();
	for (i = 0; i < m2->env.nrcpts; i++)
		if (!m2->env.rcpts[i].done)
			abort();
	spool_msg_free(&m2);
	spool_msg_free(&m);
	free(hdrs);
	free(body);
	return 0;
}

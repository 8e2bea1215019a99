/*
 * spool.c - the on-disk queue: one file per message, named by queue ID.
 *
 * This module owns the file format (doc/spool.md) and the directory
 * states (incoming/, queue/, deferred/, hold/, corrupt/). It writes a
 * message durably for the SMTP session (spool_create, spool_write_body,
 * spool_commit) and reads and updates it for the queue manager
 * (spool_msg_open, spool_mark_done, spool_move, spool_remove). It does not
 * decide when anything happens: scheduling, retries and bounces belong to
 * qmgr.c, and nothing here runs on an event loop except what the caller
 * chooses (every function may block on the disk).
 *
 * Layout of a committed file, in file order:
 *	body | header block | envelope records | trailer (fixed size)
 * The body is streamed first because it arrives first and may be large;
 * headers are kept in memory by the session until end of data so that
 * filter edits never rewrite the body. The trailer holds the three
 * lengths, so the reader finds everything from the end and checks that
 * they add up to the file size. Envelope strings are xtext-like encoded
 * (see spool_encode) so that no CR, LF, NUL or space in a client-supplied
 * value can forge a record.
 *
 * Durability (RFC 5321 section 6.1: "the receiver-SMTP MUST NOT lose the
 * message" once it has said 250): fsync of the file, rename(2) into its
 * state directory, fsync of that directory, then the caller answers 250.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "spool.h"
#include "xmalloc.h"

#define SPOOL_WBUF_SIZE		(64 * 1024)
/* an envelope larger than this is not something we wrote */
#define SPOOL_ENV_MAX		(64 * 1024 * 1024)
#define SPOOL_MAGIC		"POSTERN-SPOOL 1"
/* "POSTERN-SPOOL 1 B=<16 hex> H=<16 hex> E=<16 hex>\n" */
#define SPOOL_TRAILER_LEN	(15 + 3 * (3 + 16) + 1)

#define RCPT_PENDING		'P'
#define RCPT_DONE		'D'

struct spool_file {
	char	*queue_dir;	/* owned */
	char	 queue_id[QUEUE_ID_MAX];
	char	*path;		/* owned; incoming/<id> */
	int	 fd;
	char	*wbuf;		/* owned; SPOOL_WBUF_SIZE bytes */
	size_t	 wlen;
	size_t	 body_size;
	bool	 failed;	/* a write failed: commit must fail */
	int	 saved_errno;
};

static const char *const state_dirs[] = {
	[SPOOL_INCOMING] = "incoming",
	[SPOOL_QUEUE] = "queue",
	[SPOOL_DEFERRED] = "deferred",
	[SPOOL_HOLD] = "hold",
	[SPOOL_CORRUPT] = "corrupt",
};

const char *
spool_state_dir(enum spool_state s)
{
	if ((size_t)s >= sizeof(state_dirs) / sizeof(state_dirs[0]))
		fatalx("spool_state_dir: bad state %d", (int)s);
	return state_dirs[s];
}

/* ---- envelope ---- */

void
spool_envelope_init(struct spool_envelope *env)
{
	memset(env, 0, sizeof(*env));
}

void
spool_envelope_deinit(struct spool_envelope *env)
{
	size_t i;

	free(env->sender);
	free(env->envid);
	free(env->ret);
	free(env->body_type);
	free(env->client_addr);
	free(env->client_name);
	free(env->helo);
	free(env->sasl_username);
	for (i = 0; i < env->nrcpts; i++) {
		free(env->rcpts[i].address);
		free(env->rcpts[i].orcpt);
	}
	free(env->rcpts);
	memset(env, 0, sizeof(*env));
}

void
spool_envelope_add_rcpt(struct spool_envelope *env, const char *address,
    const char *orcpt, unsigned notify)
{
	struct spool_rcpt *r;

	env->rcpts = xreallocarray(env->rcpts, env->nrcpts + 1,
	    sizeof(*env->rcpts));
	r = &env->rcpts[env->nrcpts++];
	memset(r, 0, sizeof(*r));
	r->address = xstrdup(address);
	r->orcpt = orcpt != NULL ? xstrdup(orcpt) : NULL;
	r->notify = notify;
}

/*
 * spool_encode - append s so that it holds no byte outside 0x21..0x7e and
 * no '+' or '=' unencoded (RFC 3461 section 4 xtext, extended to encode
 * '=' too because records use key=value). An empty string stays empty.
 */
static void
spool_encode(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;
	char esc[3];

	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p > 0x20 && *p < 0x7f && *p != '+' && *p != '=') {
			buf_append(b, p, 1);
			continue;
		}
		esc[0] = '+';
		esc[1] = hex[*p >> 4];
		esc[2] = hex[*p & 0x0f];
		buf_append(b, esc, 3);
	}
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * spool_decode - decode len bytes of p; NULL on any byte we would not
 * have written (so a damaged file is noticed, not half-trusted).
 */
static char *
spool_decode(const char *p, size_t len)
{
	char *out, *o;
	size_t i;
	int hi, lo;

	o = out = xmalloc(len + 1);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c <= 0x20 || c >= 0x7f || c == '=') {
			free(out);
			return NULL;
		}
		if (c != '+') {
			*o++ = (char)c;
			continue;
		}
		if (i + 2 >= len) {
			free(out);
			return NULL;
		}
		hi = hexval(p[i + 1]);
		lo = hexval(p[i + 2]);
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
			free(out);
			return NULL;
		}
		*o++ = (char)(hi << 4 | lo);
		i += 2;
	}
	*o = '\0';
	return out;
}

/* ---- queue IDs ---- */

static const char b62[] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
#define QUEUE_ID_LEN	11	/* 62^11 microseconds: far beyond 2100 */

/*
 * spool_new_queue_id - microseconds since the epoch, made strictly
 * increasing within the process (two IDs in the same microsecond get
 * consecutive values), in fixed-width base 62 whose alphabet is in ASCII
 * order, so that sorting names sorts by time. Across restarts the clock
 * has moved on; if it went backwards, spool_create's O_EXCL catches the
 * clash and asks for another ID.
 */
void
spool_new_queue_id(char out[QUEUE_ID_MAX])
{
	static uint64_t last;
	struct timeval tv;
	uint64_t now, prev, v;
	int i;

	gettimeofday(&tv, NULL);
	now = (uint64_t)tv.tv_sec * 1000000 + (uint64_t)tv.tv_usec;
	prev = __atomic_load_n(&last, __ATOMIC_RELAXED);
	do {
		v = now > prev ? now : prev + 1;
	} while (!__atomic_compare_exchange_n(&last, &prev, v, false,
	    __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	for (i = QUEUE_ID_LEN - 1; i >= 0; i--) {
		out[i] = b62[v % 62];
		v /= 62;
	}
	out[QUEUE_ID_LEN] = '\0';
}

/* valid_queue_id - only names we could have made (no '/', no dot-files) */
static bool
valid_queue_id(const char *id)
{
	size_t i;

	for (i = 0; id[i] != '\0'; i++) {
		if (i >= QUEUE_ID_MAX - 1 || strchr(b62, id[i]) == NULL)
			return false;
	}
	return i > 0;
}

/* ---- directories ---- */

int
spool_init(const char *queue_dir, const char **error_r)
{
	static __thread char err[256];
	char *path;
	size_t i;

	if (mkdir(queue_dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, sizeof(err), "mkdir %s: %s", queue_dir,
		    strerror(errno));
		*error_r = err;
		return -1;
	}
	for (i = 0; i < sizeof(state_dirs) / sizeof(state_dirs[0]); i++) {
		path = xasprintf("%s/%s", queue_dir, state_dirs[i]);
		if (mkdir(path, 0700) == -1 && errno != EEXIST) {
			snprintf(err, sizeof(err), "mkdir %s: %s", path,
			    strerror(errno));
			free(path);
			*error_r = err;
			return -1;
		}
		free(path);
	}
	return 0;
}

/* fsync_dir - make a rename or unlink in dir durable */
static int
fsync_dir(const char *dir)
{
	int fd, save;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	if (fsync(fd) == -1) {
		save = errno;
		close(fd);
		errno = save;
		return -1;
	}
	close(fd);
	return 0;
}

/* ---- writing ---- */

/* write_all - write(2) until done; -1 with errno on failure */
static int
write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	ssize_t w;

	while (n > 0) {
		if ((w = write(fd, c, n)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* sf_flush - write out the buffer; remembers the first failure */
static int
sf_flush(struct spool_file *sf)
{
	if (sf->failed) {
		errno = sf->saved_errno;
		return -1;
	}
	if (sf->wlen > 0 && write_all(sf->fd, sf->wbuf, sf->wlen) == -1) {
		sf->failed = true;
		sf->saved_errno = errno;
		return -1;
	}
	sf->wlen = 0;
	return 0;
}

/* sf_write - buffered append; large writes bypass the buffer */
static int
sf_write(struct spool_file *sf, const void *p, size_t n)
{
	if (sf->failed) {
		errno = sf->saved_errno;
		return -1;
	}
	if (sf->wlen + n <= SPOOL_WBUF_SIZE) {
		memcpy(sf->wbuf + sf->wlen, p, n);
		sf->wlen += n;
		return 0;
	}
	if (sf_flush(sf) == -1)
		return -1;
	if (n >= SPOOL_WBUF_SIZE) {
		if (write_all(sf->fd, p, n) == -1) {
			sf->failed = true;
			sf->saved_errno = errno;
			return -1;
		}
		return 0;
	}
	memcpy(sf->wbuf, p, n);
	sf->wlen = n;
	return 0;
}

struct spool_file *
spool_create(const char *queue_dir, const char **error_r)
{
	static __thread char err[256];
	struct spool_file *sf;
	int tries;

	sf = xcalloc(1, sizeof(*sf));
	sf->fd = -1;
	for (tries = 0; tries < 10; tries++) {
		spool_new_queue_id(sf->queue_id);
		free(sf->path);
		sf->path = xasprintf("%s/incoming/%s", queue_dir,
		    sf->queue_id);
		/* read+write: body filters read the body back (pread) */
		sf->fd = open(sf->path, O_CREAT | O_EXCL | O_RDWR |
		    O_CLOEXEC, 0600);
		if (sf->fd != -1 || errno != EEXIST)
			break;
	}
	if (sf->fd == -1) {
		int save = errno;

		snprintf(err, sizeof(err), "create %s: %s", sf->path,
		    strerror(save));
		free(sf->path);
		free(sf);
		errno = save;
		*error_r = err;
		return NULL;
	}
	sf->queue_dir = xstrdup(queue_dir);
	sf->wbuf = xmalloc(SPOOL_WBUF_SIZE);
	return sf;
}

const char *
spool_file_queue_id(const struct spool_file *sf)
{
	return sf->queue_id;
}

size_t
spool_body_size(const struct spool_file *sf)
{
	return sf->body_size;
}

int
spool_write_body(struct spool_file *sf, const void *p, size_t n,
    const char **error_r)
{
	static __thread char err[256];

	if (sf_write(sf, p, n) == -1) {
		int save = errno;

		snprintf(err, sizeof(err), "write %s: %s", sf->path,
		    strerror(save));
		errno = save;
		*error_r = err;
		return -1;
	}
	sf->body_size += n;
	return 0;
}

int
spool_read_body(struct spool_file *sf, size_t offset, void *p, size_t n,
    size_t *got_r, const char **error_r)
{
	static __thread char err[256];
	ssize_t r;

	*got_r = 0;
	if (offset >= sf->body_size)
		return 0;
	if (n > sf->body_size - offset)
		n = sf->body_size - offset;
	if (sf_flush(sf) == -1)
		goto fail;
	do
		r = pread(sf->fd, p, n, (off_t)offset);
	while (r == -1 && errno == EINTR);
	if (r == -1)
		goto fail;
	*got_r = (size_t)r;
	return 0;
fail:
	snprintf(err, sizeof(err), "read %s: %s", sf->path, strerror(errno));
	*error_r = err;
	return -1;
}

int
spool_replace_body(struct spool_file *sf, const void *p, size_t n,
    const char **error_r)
{
	static __thread char err[256];

	sf->wlen = 0;		/* the old body's unwritten tail goes too */
	if (sf->failed)
		errno = sf->saved_errno;
	else if (ftruncate(sf->fd, 0) == 0 &&
	    lseek(sf->fd, 0, SEEK_SET) == 0) {
		sf->body_size = 0;
		return spool_write_body(sf, p, n, error_r);
	}
	snprintf(err, sizeof(err), "truncate %s: %s", sf->path,
	    strerror(errno));
	*error_r = err;
	return -1;
}

static void
spool_file_free(struct spool_file **sfp)
{
	struct spool_file *sf = *sfp;

	if (sf == NULL)
		return;
	if (sf->fd != -1)
		close(sf->fd);
	free(sf->queue_dir);
	free(sf->path);
	free(sf->wbuf);
	free(sf);
	*sfp = NULL;
}

void
spool_abort(struct spool_file **sfp)
{
	int save = errno;

	if (*sfp == NULL)
		return;
	if (unlink((*sfp)->path) == -1 && errno != ENOENT)
		log_warn("%s: unlink %s", (*sfp)->queue_id, (*sfp)->path);
	spool_file_free(sfp);
	errno = save;
}

/*
 * envelope_format - the envelope records, one per line (doc/spool.md).
 * Optional values are simply absent; the null sender is "S " with an
 * empty value.
 */
static void
envelope_format(struct buf *b, const struct spool_envelope *env,
    const char *queue_id)
{
	size_t i;

	buf_printf(b, "I %s\n", queue_id);
	buf_printf(b, "T %lld\n", (long long)env->arrival);
	buf_append_str(b, "S ");
	spool_encode(b, env->sender != NULL ? env->sender : "");
	buf_append_str(b, "\n");
	if (env->envid != NULL) {
		buf_append_str(b, "E ");
		spool_encode(b, env->envid);
		buf_append_str(b, "\n");
	}
	if (env->ret != NULL) {
		buf_append_str(b, "N ");
		spool_encode(b, env->ret);
		buf_append_str(b, "\n");
	}
	if (env->body_type != NULL) {
		buf_append_str(b, "B ");
		spool_encode(b, env->body_type);
		buf_append_str(b, "\n");
	}
	if (env->smtputf8)
		buf_append_str(b, "U 1\n");
	if (env->client_addr != NULL) {
		buf_append_str(b, "C ");
		spool_encode(b, env->client_addr);
		buf_append_str(b, "\n");
	}
	if (env->client_name != NULL) {
		buf_append_str(b, "c ");
		spool_encode(b, env->client_name);
		buf_append_str(b, "\n");
	}
	if (env->helo != NULL) {
		buf_append_str(b, "H ");
		spool_encode(b, env->helo);
		buf_append_str(b, "\n");
	}
	if (env->sasl_username != NULL) {
		buf_append_str(b, "A ");
		spool_encode(b, env->sasl_username);
		buf_append_str(b, "\n");
	}
	for (i = 0; i < env->nrcpts; i++) {
		const struct spool_rcpt *r = &env->rcpts[i];

		/* the status byte is the second byte of the line */
		buf_printf(b, "R%c notify=%x addr=",
		    r->done ? RCPT_DONE : RCPT_PENDING, r->notify & 0x0f);
		spool_encode(b, r->address);
		if (r->orcpt != NULL) {
			buf_append_str(b, " orcpt=");
			spool_encode(b, r->orcpt);
		}
		buf_append_str(b, "\n");
	}
	buf_append_str(b, ".\n");
}

int
spool_commit(struct spool_file **sfp, const struct spool_envelope *env,
    const void *headers, size_t header_len, enum spool_state target,
    const char **error_r)
{
	static __thread char err[320];
	struct spool_file *sf = *sfp;
	struct buf eb;
	char trailer[SPOOL_TRAILER_LEN + 1];
	char *dst = NULL, *dstdir = NULL;
	const char *what;
	int save, n;

	if (target != SPOOL_QUEUE && target != SPOOL_HOLD)
		fatalx("spool_commit: bad target state %d", (int)target);
	buf_init(&eb, 0);
	envelope_format(&eb, env, sf->queue_id);
	n = snprintf(trailer, sizeof(trailer),
	    SPOOL_MAGIC " B=%016" PRIx64 " H=%016" PRIx64 " E=%016" PRIx64 "\n",
	    (uint64_t)sf->body_size, (uint64_t)header_len, (uint64_t)eb.len);
	if (n != SPOOL_TRAILER_LEN)
		fatalx("spool_commit: trailer length %d", n);

	what = "write";
	if (sf_write(sf, headers, header_len) == -1 ||
	    sf_write(sf, eb.data, eb.len) == -1 ||
	    sf_write(sf, trailer, SPOOL_TRAILER_LEN) == -1 ||
	    sf_flush(sf) == -1)
		goto fail;
	what = "fsync";
	if (fsync(sf->fd) == -1)
		goto fail;
	what = "close";
	if (close(sf->fd) == -1) {
		sf->fd = -1;
		goto fail;
	}
	sf->fd = -1;
	dstdir = xasprintf("%s/%s", sf->queue_dir, spool_state_dir(target));
	dst = xasprintf("%s/%s", dstdir, sf->queue_id);
	what = "rename";
	if (rename(sf->path, dst) == -1)
		goto fail;
	/*
	 * From here the file is in its target directory. If the directory
	 * fsync fails we cannot tell whether the rename is durable, so the
	 * caller must not answer 250: take the file back out.
	 */
	what = "fsync directory";
	if (fsync_dir(dstdir) == -1) {
		save = errno;
		unlink(dst);
		errno = save;
		goto fail;
	}
	/*
	 * No fsync of incoming/: the rename is one journal transaction that
	 * the fsync above already committed (ext4, xfs), and a second
	 * directory sync per message costs a second journal commit. Should
	 * an old name survive a crash anyway, it is only another link to the
	 * same file, which the queue manager's start-up cleanup unlinks.
	 */
	buf_deinit(&eb);
	free(dst);
	free(dstdir);
	spool_file_free(sfp);
	return 0;

fail:
	save = errno;
	snprintf(err, sizeof(err), "%s %s: %s", what, sf->path,
	    strerror(save));
	*error_r = err;
	buf_deinit(&eb);
	free(dst);
	free(dstdir);
	spool_abort(sfp);
	errno = save;
	return -1;
}

/* ---- reading ---- */

/* read_at - pread exactly n bytes; -1 with errno (EBADMSG if short) */
static int
read_at(int fd, void *p, size_t n, off_t off)
{
	char *c = p;
	ssize_t r;

	while (n > 0) {
		if ((r = pread(fd, c, n, off)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0) {
			errno = EBADMSG;
			return -1;
		}
		c += r;
		n -= (size_t)r;
		off += r;
	}
	return 0;
}

/* parse_hex16 - exactly 16 lowercase hex digits */
static int
parse_hex16(const char *p, uint64_t *v_r)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 16; i++) {
		if (p[i] >= '0' && p[i] <= '9')
			v = v << 4 | (uint64_t)(p[i] - '0');
		else if (p[i] >= 'a' && p[i] <= 'f')
			v = v << 4 | (uint64_t)(p[i] - 'a' + 10);
		else
			return -1;
	}
	*v_r = v;
	return 0;
}

/* parse_trailer - check magic and layout, return the three lengths */
static int
parse_trailer(const char *t, uint64_t *body_r, uint64_t *hdr_r,
    uint64_t *env_r)
{
	const size_t m = sizeof(SPOOL_MAGIC) - 1;

	if (memcmp(t, SPOOL_MAGIC, m) != 0 ||
	    memcmp(t + m, " B=", 3) != 0 || parse_hex16(t + m + 3, body_r) ||
	    memcmp(t + m + 19, " H=", 3) != 0 ||
	    parse_hex16(t + m + 22, hdr_r) ||
	    memcmp(t + m + 38, " E=", 3) != 0 ||
	    parse_hex16(t + m + 41, env_r) || t[m + 57] != '\n')
		return -1;
	return 0;
}

/* take_value - decode a record value into *dst; fails on duplicates */
static int
take_value(char **dst, const char *p, size_t len)
{
	if (*dst != NULL)
		return -1;
	*dst = spool_decode(p, len);
	return *dst == NULL ? -1 : 0;
}

/*
 * parse_rcpt - "R<status> notify=<hex> addr=<xtext>[ orcpt=<xtext>]".
 * line points at the 'R', len excludes the newline.
 */
static int
parse_rcpt(struct spool_envelope *env, const char *line, size_t len,
    off_t line_offset)
{
	const char *p = line, *end = line + len, *sp;
	struct spool_rcpt *r;
	char *addr = NULL, *orcpt = NULL;
	unsigned notify;
	char st;

	if (len < 2 + 9 + 1 + 5)
		return -1;
	st = p[1];
	if (st != RCPT_PENDING && st != RCPT_DONE)
		return -1;
	p += 2;
	if (end - p < 10 || memcmp(p, " notify=", 8) != 0)
		return -1;
	p += 8;
	if (*p >= '0' && *p <= '9')
		notify = (unsigned)(*p - '0');
	else if (*p >= 'a' && *p <= 'f')
		notify = (unsigned)(*p - 'a' + 10);
	else
		return -1;
	p++;
	if (end - p < 6 || memcmp(p, " addr=", 6) != 0)
		return -1;
	p += 6;
	sp = memchr(p, ' ', (size_t)(end - p));
	if ((addr = spool_decode(p, (size_t)((sp ? sp : end) - p))) == NULL)
		return -1;
	if (sp != NULL) {
		p = sp;
		if (end - p < 7 || memcmp(p, " orcpt=", 7) != 0 ||
		    (orcpt = spool_decode(p + 7,
		    (size_t)(end - p - 7))) == NULL) {
			free(addr);
			return -1;
		}
	}
	env->rcpts = xreallocarray(env->rcpts, env->nrcpts + 1,
	    sizeof(*env->rcpts));
	r = &env->rcpts[env->nrcpts++];
	r->address = addr;
	r->orcpt = orcpt;
	r->notify = notify;
	r->done = st == RCPT_DONE;
	r->status_offset = line_offset + 1;
	return 0;
}

/*
 * parse_envelope - strict parser of the records written by
 * envelope_format. Every line must be known, required records present,
 * the last line ".". env_offset is where the records start in the file.
 */
static int
parse_envelope(struct spool_envelope *env, const char *queue_id,
    const char *p, size_t len, off_t env_offset, const char **why_r)
{
	const char *line = p, *end = p + len, *nl;
	bool have_id = false, have_time = false, have_end = false;

	if (len == 0 || p[len - 1] != '\n') {
		*why_r = "envelope not terminated";
		return -1;
	}
	for (; line < end; line = nl + 1) {
		size_t ll;
		const char *v;
		size_t vl;

		nl = memchr(line, '\n', (size_t)(end - line));
		ll = (size_t)(nl - line);
		if (have_end) {
			*why_r = "data after end record";
			return -1;
		}
		if (ll == 1 && line[0] == '.') {
			have_end = true;
			continue;
		}
		if (ll >= 1 && line[0] == 'R') {
			if (parse_rcpt(env, line, ll,
			    env_offset + (line - p)) == -1) {
				*why_r = "bad recipient record";
				return -1;
			}
			continue;
		}
		if (ll < 2 || line[1] != ' ') {
			*why_r = "bad record";
			return -1;
		}
		v = line + 2;
		vl = ll - 2;
		*why_r = "bad or duplicate record";
		switch (line[0]) {
		case 'I':
			if (have_id || vl != strlen(queue_id) ||
			    memcmp(v, queue_id, vl) != 0) {
				*why_r = "queue ID does not match file name";
				return -1;
			}
			have_id = true;
			break;
		case 'T': {
			long long t = 0;
			size_t i;

			/* 12 digits reach the year 33658: enough for
			 * gmtime_r, which a larger value could fail */
			if (have_time || vl == 0 || vl > 12)
				return -1;
			for (i = 0; i < vl; i++) {
				if (v[i] < '0' || v[i] > '9')
					return -1;
				t = t * 10 + (v[i] - '0');
			}
			env->arrival = (time_t)t;
			have_time = true;
			break;
		}
		case 'S':
			/* the null sender is an empty value */
			if (env->sender != NULL)
				return -1;
			if (vl == 0)
				env->sender = xstrdup("");
			else if (take_value(&env->sender, v, vl) == -1)
				return -1;
			break;
		case 'E':
			if (take_value(&env->envid, v, vl) == -1)
				return -1;
			break;
		case 'N':
			if (take_value(&env->ret, v, vl) == -1)
				return -1;
			if (strcmp(env->ret, "FULL") != 0 &&
			    strcmp(env->ret, "HDRS") != 0)
				return -1;
			break;
		case 'B':
			if (take_value(&env->body_type, v, vl) == -1)
				return -1;
			break;
		case 'U':
			if (env->smtputf8 || vl != 1 || v[0] != '1')
				return -1;
			env->smtputf8 = true;
			break;
		case 'C':
			if (take_value(&env->client_addr, v, vl) == -1)
				return -1;
			break;
		case 'c':
			if (take_value(&env->client_name, v, vl) == -1)
				return -1;
			break;
		case 'H':
			if (take_value(&env->helo, v, vl) == -1)
				return -1;
			break;
		case 'A':
			if (take_value(&env->sasl_username, v, vl) == -1)
				return -1;
			break;
		default:
			*why_r = "unknown record";
			return -1;
		}
	}
	if (!have_end || !have_id || !have_time || env->sender == NULL ||
	    env->nrcpts == 0) {
		*why_r = "missing record";
		return -1;
	}
	return 0;
}

struct spool_msg *
spool_msg_open(const char *queue_dir, enum spool_state state,
    const char *queue_id, const char **error_r)
{
	static __thread char err[320];
	struct spool_msg *m;
	struct stat st;
	char trailer[SPOOL_TRAILER_LEN];
	uint64_t blen, hlen, elen, total;
	char *envbuf = NULL;
	const char *why = NULL;
	int save;

	if (!valid_queue_id(queue_id)) {
		snprintf(err, sizeof(err), "bad queue ID");
		*error_r = err;
		errno = EINVAL;
		return NULL;
	}
	m = xcalloc(1, sizeof(*m));
	spool_envelope_init(&m->env);
	m->state = state;
	m->path = xasprintf("%s/%s/%s", queue_dir, spool_state_dir(state),
	    queue_id);
	if ((m->fd = open(m->path, O_RDWR | O_CLOEXEC)) == -1)
		goto syserr;
	if (fstat(m->fd, &st) == -1)
		goto syserr;
	if (!S_ISREG(st.st_mode)) {
		why = "not a regular file";
		goto corrupt;
	}
	m->mtime = st.st_mtime;
	if (st.st_size < SPOOL_TRAILER_LEN) {
		why = "file too short";
		goto corrupt;
	}
	if (read_at(m->fd, trailer, sizeof(trailer),
	    st.st_size - SPOOL_TRAILER_LEN) == -1)
		goto syserr;
	if (parse_trailer(trailer, &blen, &hlen, &elen) == -1) {
		why = "bad trailer";
		goto corrupt;
	}
	/* the lengths must add up to the size exactly, without overflow */
	total = (uint64_t)st.st_size - SPOOL_TRAILER_LEN;
	if (blen > total || hlen > total - blen ||
	    elen != total - blen - hlen) {
		why = "lengths do not match the file size";
		goto corrupt;
	}
	if (elen == 0 || elen > SPOOL_ENV_MAX) {
		why = "bad envelope size";
		goto corrupt;
	}
	envbuf = xmalloc((size_t)elen);
	if (read_at(m->fd, envbuf, (size_t)elen, (off_t)(blen + hlen)) == -1)
		goto syserr;
	if (parse_envelope(&m->env, queue_id, envbuf, (size_t)elen,
	    (off_t)(blen + hlen), &why) == -1)
		goto corrupt;
	snprintf(m->env.queue_id, sizeof(m->env.queue_id), "%s", queue_id);
	m->body_offset = 0;
	m->body_len = (size_t)blen;
	m->header_offset = (off_t)blen;
	m->header_len = (size_t)hlen;
	free(envbuf);
	return m;

corrupt:
	snprintf(err, sizeof(err), "%s: %s", m->path, why);
	free(envbuf);
	spool_msg_free(&m);
	*error_r = err;
	errno = EBADMSG;
	return NULL;
syserr:
	save = errno;
	snprintf(err, sizeof(err), "%s: %s", m->path,
	    save == EBADMSG ? "file truncated" : strerror(save));
	free(envbuf);
	spool_msg_free(&m);
	*error_r = err;
	errno = save;
	return NULL;
}

void
spool_msg_free(struct spool_msg **mp)
{
	struct spool_msg *m = *mp;

	if (m == NULL)
		return;
	if (m->fd != -1)
		close(m->fd);
	spool_envelope_deinit(&m->env);
	free(m->path);
	free(m);
	*mp = NULL;
}

int
spool_mark_done_nosync(struct spool_msg *m, size_t i, const char **error_r)
{
	static __thread char err[320];
	const char c = RCPT_DONE;
	ssize_t w;

	if (i >= m->env.nrcpts)
		fatalx("spool_mark_done: recipient %zu of %zu", i,
		    m->env.nrcpts);
	do {
		w = pwrite(m->fd, &c, 1, m->env.rcpts[i].status_offset);
	} while (w == -1 && errno == EINTR);
	if (w != 1) {
		int save = w == -1 ? errno : EIO;

		snprintf(err, sizeof(err), "pwrite %s: %s", m->path,
		    strerror(save));
		*error_r = err;
		errno = save;
		return -1;
	}
	m->env.rcpts[i].done = true;
	return 0;
}

int
spool_sync(struct spool_msg *m, const char **error_r)
{
	static __thread char err[320];

	if (fdatasync(m->fd) == -1) {
		int save = errno;

		snprintf(err, sizeof(err), "fdatasync %s: %s", m->path,
		    strerror(save));
		*error_r = err;
		errno = save;
		return -1;
	}
	return 0;
}

int
spool_mark_done(struct spool_msg *m, size_t i, const char **error_r)
{
	if (spool_mark_done_nosync(m, i, error_r) == -1)
		return -1;
	return spool_sync(m, error_r);
}

int
spool_move(struct spool_msg *m, const char *queue_dir, enum spool_state to,
    time_t retry_at, const char **error_r)
{
	static __thread char err[320];
	struct timespec ts[2];
	char *dst;

	if (to == SPOOL_DEFERRED) {
		ts[0].tv_sec = 0;
		ts[0].tv_nsec = UTIME_OMIT;
		ts[1].tv_sec = retry_at;
		ts[1].tv_nsec = 0;
		if (futimens(m->fd, ts) == -1) {
			int save = errno;

			snprintf(err, sizeof(err), "futimens %s: %s",
			    m->path, strerror(save));
			*error_r = err;
			errno = save;
			return -1;
		}
		m->mtime = retry_at;
	}
	dst = xasprintf("%s/%s/%s", queue_dir, spool_state_dir(to),
	    m->env.queue_id);
	if (strcmp(dst, m->path) != 0 && rename(m->path, dst) == -1) {
		int save = errno;

		snprintf(err, sizeof(err), "rename %s to %s: %s", m->path,
		    dst, strerror(save));
		free(dst);
		*error_r = err;
		errno = save;
		return -1;
	}
	free(m->path);
	m->path = dst;
	m->state = to;
	return 0;
}

int
spool_move_id(const char *queue_dir, enum spool_state from,
    const char *queue_id, enum spool_state to, const char **error_r)
{
	static __thread char err[320];
	char *src, *dst;
	int save;

	if (!valid_queue_id(queue_id)) {
		*error_r = "bad queue ID";
		errno = EINVAL;
		return -1;
	}
	src = xasprintf("%s/%s/%s", queue_dir, spool_state_dir(from),
	    queue_id);
	dst = xasprintf("%s/%s/%s", queue_dir, spool_state_dir(to),
	    queue_id);
	if (rename(src, dst) == -1) {
		save = errno;
		snprintf(err, sizeof(err), "rename %s to %s: %s", src, dst,
		    strerror(save));
		free(src);
		free(dst);
		*error_r = err;
		errno = save;
		return -1;
	}
	free(src);
	free(dst);
	return 0;
}

int
spool_remove(struct spool_msg *m, const char **error_r)
{
	static __thread char err[320];

	if (unlink(m->path) == -1 && errno != ENOENT) {
		int save = errno;

		snprintf(err, sizeof(err), "unlink %s: %s", m->path,
		    strerror(save));
		*error_r = err;
		errno = save;
		return -1;
	}
	return 0;
}

int
spool_scan(const char *queue_dir, enum spool_state state,
    void (*fn)(const char *queue_id, time_t mtime, void *arg), void *arg)
{
	struct dirent *de;
	struct stat st;
	char *path;
	DIR *d;
	int n = 0;

	path = xasprintf("%s/%s", queue_dir, spool_state_dir(state));
	if ((d = opendir(path)) == NULL) {
		log_warn("opendir %s", path);
		free(path);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (!valid_queue_id(de->d_name))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW)
		    == -1) {
			if (errno != ENOENT)
				log_warn("stat %s/%s", path, de->d_name);
			continue;
		}
		if (!S_ISREG(st.st_mode))
			continue;
		fn(de->d_name, st.st_mtime, arg);
		n++;
	}
	closedir(d);
	free(path);
	return n;
}

/*
 * deliver_maildir.c - the maildir transport: mail for user@domain, where
 * domain is one of mydestination, goes into <maildir_base>/<domain>/<user>/
 * as a Maildir (tmp/, new/, cur/; https://cr.yp.to/proto/maildir.html).
 *
 * It owns nothing but the files it writes. The job, its recipients and the
 * spool file descriptor belong to the queue manager; routing (which
 * recipients come here) is qmgr's decision. All disk work runs on the
 * worker pool, one pool job per delivery job, and job->done is called back
 * on the queue manager's loop.
 *
 * Each recipient gets its own file because each gets its own Delivered-To
 * header. A file is written in tmp/ under a unique name, fsynced, linked
 * into new/ and the new/ directory fsynced before the recipient counts as
 * delivered, so a crash can duplicate a message but never lose one. Lines
 * are stored with LF ends, as Maildir readers expect.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "deliver_maildir.h"
#include "delivery.h"
#include "log.h"
#include "pool.h"
#include "xmalloc.h"

#define MD_BUF_SIZE	(64 * 1024)

/* out - a buffered writer that turns CRLF into LF */
struct md_out {
	int	 fd;
	char	*buf;		/* owned */
	size_t	 len;
	bool	 pending_cr;	/* last input byte was a CR */
	int	 error;		/* first errno, 0 if none */
};

int
deliver_maildir_path(const char *base, const char *address, char *out,
    size_t n, const char **error_r)
{
	const char *at = strrchr(address, '@');
	char local[256], domain[256];
	size_t ll, dl, i;
	int w;

	if (at == NULL) {
		*error_r = "no domain in address";
		return -1;
	}
	ll = (size_t)(at - address);
	dl = strlen(at + 1);
	if (ll == 0 || dl == 0) {
		*error_r = "empty local part or domain";
		return -1;
	}
	if (ll >= sizeof(local) || dl >= sizeof(domain)) {
		*error_r = "address too long";
		return -1;
	}
	for (i = 0; i < ll; i++)
		local[i] = (char)tolower((unsigned char)address[i]);
	local[ll] = '\0';
	for (i = 0; i < dl; i++)
		domain[i] = (char)tolower((unsigned char)at[1 + i]);
	domain[dl] = '\0';
	/* one trailing dot on the domain is the same domain */
	if (dl > 1 && domain[dl - 1] == '.')
		domain[--dl] = '\0';
	/*
	 * The names become path components: nothing that could climb out of
	 * the base ('/', "..", a leading '.') or hide in a listing.
	 */
	if (local[0] == '.' || domain[0] == '.' ||
	    strchr(local, '/') != NULL || strchr(domain, '/') != NULL) {
		*error_r = "mailbox name not allowed";
		return -1;
	}
	for (i = 0; i < ll; i++) {
		if ((unsigned char)local[i] < 0x20 || local[i] == 0x7f) {
			*error_r = "mailbox name not allowed";
			return -1;
		}
	}
	for (i = 0; i < dl; i++) {
		if ((unsigned char)domain[i] <= 0x20 || domain[i] == 0x7f) {
			*error_r = "mailbox name not allowed";
			return -1;
		}
	}
	w = snprintf(out, n, "%s/%s/%s", base, domain, local);
	if (w < 0 || (size_t)w >= n) {
		*error_r = "mailbox path too long";
		return -1;
	}
	return 0;
}

static int
md_flush(struct md_out *o)
{
	size_t off = 0;
	ssize_t w;

	while (off < o->len && o->error == 0) {
		if ((w = write(o->fd, o->buf + off, o->len - off)) == -1) {
			if (errno != EINTR)
				o->error = errno;
			continue;
		}
		off += (size_t)w;
	}
	o->len = 0;
	return o->error == 0 ? 0 : -1;
}

static void
md_byte(struct md_out *o, char c)
{
	if (o->len == MD_BUF_SIZE)
		md_flush(o);
	o->buf[o->len++] = c;
}

/* md_put - append text, turning each CRLF into LF (also across calls) */
static void
md_put(struct md_out *o, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (o->pending_cr) {
			o->pending_cr = false;
			if (p[i] == '\n') {
				md_byte(o, '\n');
				continue;
			}
			md_byte(o, '\r');
		}
		if (p[i] == '\r')
			o->pending_cr = true;
		else
			md_byte(o, p[i]);
	}
}

/* md_copy - copy len bytes of fd at off through md_put */
static int
md_copy(struct md_out *o, int fd, off_t off, size_t len)
{
	char buf[16384];
	ssize_t r;

	while (len > 0) {
		r = pread(fd, buf, len < sizeof(buf) ? len : sizeof(buf), off);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0) {
			errno = r == 0 ? EIO : errno;
			return -1;
		}
		md_put(o, buf, (size_t)r);
		off += r;
		len -= (size_t)r;
	}
	return 0;
}

/* mkdir_maildir - create base/domain/user and its tmp, new, cur */
static int
mkdir_maildir(const char *base, const char *dir)
{
	static const char *const subs[] = { "tmp", "new", "cur" };
	char path[PATH_MAX];
	size_t blen = strlen(base), i;
	char *p;

	if (mkdir(base, 0700) == -1 && errno != EEXIST)
		return -1;
	/* the components below base: domain, then user */
	if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (p = path + blen + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdir(path, 0700) == -1 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(path, 0700) == -1 && errno != EEXIST)
		return -1;
	for (i = 0; i < 3; i++) {
		if (snprintf(path, sizeof(path), "%s/%s", dir, subs[i]) >=
		    (int)sizeof(path)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		if (mkdir(path, 0700) == -1 && errno != EEXIST)
			return -1;
	}
	return 0;
}

/* host_part - gethostname with '/' and ':' escaped as Maildir asks */
static void
host_part(char *out, size_t n)
{
	char host[256];
	size_t i, o = 0;

	if (gethostname(host, sizeof(host)) == -1)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	for (i = 0; host[i] != '\0' && o + 5 < n; i++) {
		if (host[i] == '/' || host[i] == ':') {
			snprintf(out + o, n - o, "\\%03o",
			    (unsigned char)host[i]);
			o += 4;
		} else
			out[o++] = host[i];
	}
	out[o] = '\0';
}

static int
fsync_dir(const char *dir)
{
	int fd, rc;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/*
 * deliver_one - write one recipient's copy; 0, or -1 with errno and
 * *what_r naming the failed step.
 */
static int
deliver_one(const struct delivery_job *job, const char *dir,
    const char *address, const char **what_r)
{
	static unsigned counter;
	char host[256], name[512], tmp[PATH_MAX], new[PATH_MAX],
	    newdir[PATH_MAX];
	struct md_out o;
	struct timeval tv;
	int fd, save;

	host_part(host, sizeof(host));
	gettimeofday(&tv, NULL);
	*what_r = "name";
	if (snprintf(name, sizeof(name), "%lld.M%ldP%ldQ%u.%s",
	    (long long)tv.tv_sec, (long)tv.tv_usec, (long)getpid(),
	    __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED), host) >=
	    (int)sizeof(name) ||
	    snprintf(tmp, sizeof(tmp), "%s/tmp/%s", dir, name) >=
	    (int)sizeof(tmp) ||
	    snprintf(new, sizeof(new), "%s/new/%s", dir, name) >=
	    (int)sizeof(new) ||
	    snprintf(newdir, sizeof(newdir), "%s/new", dir) >=
	    (int)sizeof(newdir)) {
		errno = ENAMETOOLONG;
		return -1;
	}

	*what_r = "create";
	fd = open(tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	if (fd == -1 && errno == ENOENT) {
		if (mkdir_maildir(job->maildir_base, dir) == -1) {
			*what_r = "mkdir";
			return -1;
		}
		fd = open(tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	}
	if (fd == -1)
		return -1;

	memset(&o, 0, sizeof(o));
	o.fd = fd;
	o.buf = xmalloc(MD_BUF_SIZE);
	/* RFC 5321 section 4.4: the final delivery adds Return-Path */
	md_put(&o, "Return-Path: <", 14);
	md_put(&o, job->sender, strlen(job->sender));
	md_put(&o, ">\nDelivered-To: ", 16);
	md_put(&o, address, strlen(address));
	md_put(&o, "\n", 1);
	*what_r = "read spool";
	if (md_copy(&o, job->content_fd, job->header_offset,
	    job->header_len) == -1)
		goto fail;
	md_put(&o, "\r\n", 2);
	if (md_copy(&o, job->content_fd, job->body_offset,
	    job->body_len) == -1)
		goto fail;
	if (o.pending_cr)
		md_byte(&o, '\r');
	*what_r = "write";
	if (md_flush(&o) == -1) {
		errno = o.error;
		goto fail;
	}
	*what_r = "fsync";
	if (fsync(fd) == -1)
		goto fail;
	*what_r = "close";
	if (close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	*what_r = "link";
	if (link(tmp, new) == -1)
		goto fail;
	unlink(tmp);
	*what_r = "fsync new/";
	if (fsync_dir(newdir) == -1) {
		/* not durable: take it back so a retry does not duplicate */
		save = errno;
		unlink(new);
		errno = save;
		free(o.buf);
		return -1;
	}
	free(o.buf);
	return 0;

fail:
	save = errno;
	if (fd != -1)
		close(fd);
	unlink(tmp);
	free(o.buf);
	errno = save;
	return -1;
}

/* maildir_work - on a worker thread: every recipient of the job */
static void
maildir_work(void *arg)
{
	struct delivery_job *job = arg;
	char dir[PATH_MAX], reply[512];
	const char *why, *what;
	size_t i;

	for (i = 0; i < job->nrcpts; i++) {
		const char *addr = job->rcpts[i].address;

		if (deliver_maildir_path(job->maildir_base, addr, dir,
		    sizeof(dir), &why) == -1) {
			snprintf(reply, sizeof(reply),
			    "5.1.1 <%s>: cannot deliver to maildir: %s",
			    addr, why);
			delivery_set_rcpt(job, i, DELIVERY_BOUNCED, "5.1.1",
			    reply);
			continue;
		}
		if (deliver_one(job, dir, addr, &what) == -1) {
			int e = errno;
			const char *dsn = (e == ENOSPC || e == EDQUOT) ?
			    "4.2.2" : "4.3.0";

			char *msg = xasprintf("%s maildir delivery failed: "
			    "%s %s: %s", dsn, what, dir, strerror(e));

			delivery_set_rcpt(job, i, DELIVERY_DEFERRED, dsn, msg);
			free(msg);
			continue;
		}
		snprintf(reply, sizeof(reply), "delivered to maildir");
		delivery_set_rcpt(job, i, DELIVERY_SENT, "2.0.0", reply);
	}
}

/* maildir_done - on the queue manager's loop */
static void
maildir_done(void *arg)
{
	struct delivery_job *job = arg;

	job->done(job);
}

void
deliver_maildir_start(struct delivery_job *job, struct loop *loop)
{
	free(job->relay);
	job->relay = xstrdup("maildir");
	pool_submit(loop, maildir_work, maildir_done, job);
}

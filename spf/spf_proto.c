/*
 * spf_proto.c - framing of the requests and answers between posternd
 * and the postern-spf helpers (see spf_proto.h for the format).
 *
 * Owns nothing beyond the caller's buffers. Both peers treat the other
 * as untrusted in the sense that a bad length or a short message is an
 * error, never a crash: a helper may die in the middle of an answer.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "spf_proto.h"

int
spf_proto_encode(struct buf *out, const char *const *fields, size_t n)
{
	unsigned char hdr[4];
	size_t i, len = 0;
	const char *f;

	for (i = 0; i < n; i++)
		len += strlen(fields[i] != NULL ? fields[i] : "") + 1;
	if (len > SPF_PROTO_MAX)
		return -1;
	hdr[0] = (unsigned char)(len >> 24);
	hdr[1] = (unsigned char)(len >> 16);
	hdr[2] = (unsigned char)(len >> 8);
	hdr[3] = (unsigned char)len;
	if (buf_append(out, hdr, sizeof(hdr)) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		f = fields[i] != NULL ? fields[i] : "";
		if (buf_append(out, f, strlen(f) + 1) == -1)
			return -1;
	}
	return 0;
}

int
spf_proto_split(const char *payload, size_t len, const char **fields,
    size_t n)
{
	const char *p = payload, *end = payload + len, *nul;
	size_t i;

	for (i = 0; i < n; i++) {
		if (p >= end || (nul = memchr(p, '\0', (size_t)(end - p))) ==
		    NULL)
			return -1;
		fields[i] = p;
		p = nul + 1;
	}
	return p == end ? 0 : -1;
}

/*
 * read_full - exactly n bytes into dst before the deadline: 1, 0 (EOF
 * before any byte), -1
 */
static int
read_full(int fd, void *dst, size_t n, int64_t deadline_ms,
    const char **error_r)
{
	struct pollfd pfd;
	size_t got = 0;
	int64_t left;
	ssize_t r;
	int rc;

	while (got < n) {
		if (deadline_ms >= 0) {
			left = deadline_ms - clock_ms();
			if (left <= 0) {
				*error_r = "timeout";
				return -1;
			}
			pfd.fd = fd;
			pfd.events = POLLIN;
			pfd.revents = 0;
			rc = poll(&pfd, 1, (int)(left > 3600000 ? 3600000 :
			    left));
			if (rc == -1 && errno == EINTR)
				continue;
			if (rc == -1) {
				*error_r = "poll failed";
				return -1;
			}
			if (rc == 0)
				continue;
		}
		r = read(fd, (char *)dst + got, n - got);
		if (r == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		/* a peer that closed with our request unread: gone, as EOF */
		if (r == -1 && errno == ECONNRESET && got == 0)
			r = 0;
		if (r == -1) {
			*error_r = "read error";
			return -1;
		}
		if (r == 0) {
			if (got == 0)
				return 0;
			*error_r = "short message";
			return -1;
		}
		got += (size_t)r;
	}
	return 1;
}

int
spf_proto_read(int fd, struct buf *b, int64_t deadline_ms,
    const char **error_r)
{
	unsigned char hdr[4];
	char chunk[512];
	size_t len, n;
	int rc;

	buf_reset(b);
	if ((rc = read_full(fd, hdr, sizeof(hdr), deadline_ms, error_r)) <= 0)
		return rc;
	len = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 |
	    (size_t)hdr[2] << 8 | hdr[3];
	if (len > SPF_PROTO_MAX) {
		*error_r = "oversized message";
		return -1;
	}
	while (b->len < len) {
		n = len - b->len < sizeof(chunk) ? len - b->len :
		    sizeof(chunk);
		if ((rc = read_full(fd, chunk, n, deadline_ms, error_r)) <= 0) {
			if (rc == 0)
				*error_r = "short message";
			return -1;
		}
		if (buf_append(b, chunk, n) == -1) {
			*error_r = "oversized message";
			return -1;
		}
	}
	return 1;
}

int
spf_proto_write(int fd, const void *data, size_t len,
    const char **error_r)
{
	size_t off = 0;
	ssize_t w;
	int is_socket = 1;	/* send(MSG_NOSIGNAL) until ENOTSOCK */

	while (off < len) {
		if (is_socket) {
			w = send(fd, (const char *)data + off, len - off,
			    MSG_NOSIGNAL);
			if (w == -1 && errno == ENOTSOCK) {
				is_socket = 0;
				continue;
			}
		} else
			w = write(fd, (const char *)data + off, len - off);
		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1) {
			*error_r = errno == EPIPE ? "peer closed" :
			    "write error";
			return -1;
		}
		off += (size_t)w;
	}
	return 0;
}

/*
 * spf_proto.h - the framing between posternd's SPF client (spf_client.c)
 * and the postern-spf helper processes.
 *
 * A message is a 4-byte big-endian payload length followed by the
 * payload: a fixed number of NUL-terminated text fields. One request is
 * in flight per helper; the helper answers it before reading the next.
 *
 * request:  id, client_ip, helo, sender, identity, timeout_ms
 * answer:   id, result (enum spf_result as a decimal number), domain,
 *           explanation, comment
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_SPF_PROTO_H
#define POSTERN_SPF_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define SPF_PROTO_MAX		8192	/* payload bytes at most */
#define SPF_PROTO_REQ_FIELDS	6
#define SPF_PROTO_ANS_FIELDS	5

enum {
	SPF_REQ_ID,
	SPF_REQ_CLIENT_IP,
	SPF_REQ_HELO,
	SPF_REQ_SENDER,
	SPF_REQ_IDENTITY,
	SPF_REQ_TIMEOUT,
};

enum {
	SPF_ANS_ID,
	SPF_ANS_RESULT,
	SPF_ANS_DOMAIN,
	SPF_ANS_EXPLANATION,
	SPF_ANS_COMMENT,
};

/*
 * spf_proto_encode - append one framed message of n fields (NULL is sent
 * as "") to out. Returns -1 when it would exceed SPF_PROTO_MAX.
 */
int	spf_proto_encode(struct buf *out, const char *const *fields,
	    size_t n);
/*
 * spf_proto_split - point fields[0..n-1] into payload (len bytes, as
 * read by spf_proto_read). Returns 0, or -1 unless it holds exactly n
 * NUL-terminated fields. The fields are lent: they live in payload.
 */
int	spf_proto_split(const char *payload, size_t len, const char **fields,
	    size_t n);
/*
 * spf_proto_read - read one message's payload from fd into b (reset
 * first), waiting at most until deadline_ms (clock_ms() clock; -1:
 * forever). Returns 1, 0 at EOF (or a reset connection) before the
 * first byte, or -1 with *error_r (static text) on a read error,
 * timeout, short or oversized message.
 */
int	spf_proto_read(int fd, struct buf *b, int64_t deadline_ms,
	    const char **error_r);
/*
 * spf_proto_write - write len bytes to fd (a socket or a pipe) without
 * raising SIGPIPE. Returns 0 or -1 with *error_r (static text).
 */
int	spf_proto_write(int fd, const void *data, size_t len,
	    const char **error_r);

#endif

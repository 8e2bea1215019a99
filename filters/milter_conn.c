/*
 * milter_conn.c - one connection to one external milter for the length
 * of an SMTP session: connect and negotiate, then one command at a time
 * (written in one write), its replies read with a deadline.
 *
 * It owns the socket, the reply parser and the negotiated options of
 * each connection. It does not decide what a reply means for the SMTP
 * session, nor which macros go out: milter.c does. Packets are built
 * and parsed by milter_proto.c. All waits block (poll with a deadline):
 * the milters filter runs on the filter threads; only milter_conn_post
 * (ABORT, QUIT) is used from an event loop, and it never waits.
 *
 * Reference: the milter protocol as libmilter speaks it (version 6);
 * Postfix's milter8.c behaviour for timeouts and progress replies (but
 * one command waits MILTER_PROGRESS_CAP times its timeout at most).
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/socket.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "milter.h"

/*
 * the protocol steps we offer: all but SMFIP_RCPT_REJ, since we never
 * send the recipients that were rejected
 */
#define OFFERED	(MILTER_P_ALL & ~MILTER_P_RCPT_REJ)

void
milter_conn_init(struct milter_conn *m, const struct milter_spec *spec)
{
	memset(m, 0, sizeof(*m));
	m->spec = spec;
	m->fd = -1;
	m->state = MILTER_CONN_NEW;
	m->sess_verdict = FILTER_CONTINUE;
	milter_reader_init(&m->rd, 0);
}

void
milter_conn_close(struct milter_conn *m)
{
	if (m->fd != -1)
		close(m->fd);
	m->fd = -1;
	m->in_tx = false;
	milter_reader_deinit(&m->rd);
	milter_reader_init(&m->rd, 0);
}

/*
 * read_reply - the next reply packet, waiting until deadline for bytes.
 * 0 with *r, or -1 with *error_r.
 */
static int
read_reply(struct milter_conn *m, int64_t deadline, struct milter_reply *r,
    const char **error_r)
{
	char chunk[16384];
	ssize_t n;
	int rc;

	for (;;) {
		if ((rc = milter_reader_next(&m->rd, r, error_r)) == 1)
			return 0;
		if (rc == -1)
			return -1;
		n = peer_read(m->fd, chunk, sizeof(chunk), deadline, error_r);
		if (n == -1) {
			if (errno == ETIMEDOUT)
				*error_r = "timeout";
			return -1;
		}
		if (n == 0) {
			*error_r = milter_reader_pending(&m->rd) > 0 ?
			    "connection closed in the middle of a reply" :
			    "connection closed";
			return -1;
		}
		if (milter_reader_feed(&m->rd, chunk, (size_t)n,
		    error_r) == -1)
			return -1;
	}
}

int
milter_conn_open(struct milter_conn *m, uint32_t version,
    const char **error_r)
{
	struct milter_reply r;
	struct buf out;
	int64_t deadline;
	int rc = -1;

	deadline = peer_deadline(m->spec->connect_timeout * 1000);
	buf_init(&out, 0);
	if ((m->fd = peer_connect(&m->spec->ep, deadline, error_r)) == -1)
		goto out;
	/* offer every step we use: the milter picks what it wants */
	if (milter_pkt_optneg(&out, version, MILTER_ACT_ALL, OFFERED,
	    error_r) == -1 ||
	    peer_write_all(m->fd, out.data, out.len, deadline, NULL,
	    error_r) == -1)
		goto out;
	if (read_reply(m, deadline, &r, error_r) == -1) {
		if (strcmp(*error_r, "timeout") == 0)
			*error_r = "timeout during negotiation";
		goto out;
	}
	rc = milter_negotiate(&r, version, MILTER_ACT_ALL, OFFERED,
	    &m->neg, error_r);
	milter_reply_deinit(&r);
out:
	buf_deinit(&out);
	if (rc == -1) {
		milter_neg_deinit(&m->neg);
		milter_conn_close(m);
		return -1;
	}
	m->state = MILTER_CONN_OK;
	return 0;
}

/* answer_set - a final reply into *ans */
static void
answer_set(struct milter_answer *ans, const struct milter_reply *r)
{
	ans->code = r->code;
	ans->text[0] = '\0';
	if (r->code == MILTER_REPLY_REPLYCODE && r->value != NULL)
		snprintf(ans->text, sizeof(ans->text), "%s", r->value);
}

enum milter_result
milter_conn_command(struct milter_conn *m, const struct buf *out, char cmd,
    int timeout_ms, struct milter_edit_map *map, struct milter_answer *ans,
    const char **error_r)
{
	struct milter_reply r;
	enum milter_result res = MILTER_RES_FAILED;
	int64_t deadline, cap;

	if (m->fd == -1) {
		*error_r = "not connected";
		return MILTER_RES_FAILED;
	}
	deadline = peer_deadline(timeout_ms);
	cap = peer_deadline(0) + (int64_t)timeout_ms * MILTER_PROGRESS_CAP;
	if (out->len > 0 && peer_write_all(m->fd, out->data, out->len,
	    deadline, NULL, error_r) == -1) {
		if (errno == ETIMEDOUT)
			*error_r = "timeout";
		goto fail;
	}
	if (!milter_neg_sends(&m->neg, cmd) ||
	    !milter_neg_expects_reply(&m->neg, cmd))
		return MILTER_RES_CONTINUE;
	for (;;) {
		if (read_reply(m, deadline, &r, error_r) == -1) {
			if (deadline == cap && strcmp(*error_r, "timeout") == 0)
				*error_r = "timeout: still in progress past "
				    "4 times the timeout";
			goto fail;
		}
		if (r.code == MILTER_REPLY_PROGRESS) {
			/*
			 * Postfix: progress restarts the timer; ours stops
			 * at MILTER_PROGRESS_CAP times the timeout in all
			 */
			deadline = peer_deadline(timeout_ms);
			if (deadline > cap)
				deadline = cap;
			milter_reply_deinit(&r);
			continue;
		}
		if (!milter_neg_allows(&m->neg, r.code)) {
			*error_r = "reply not allowed by the negotiation";
			break;
		}
		if (milter_reply_is_modification(r.code)) {
			if (map == NULL) {
				*error_r = "modification before end of message";
				break;
			}
			if (r.code == MILTER_REPLY_QUARANTINE) {
				ans->quarantine = true;
				snprintf(ans->reason, sizeof(ans->reason), "%s",
				    r.value != NULL ? r.value : "");
			}
			if (milter_edit_map_add(map, &r, error_r) == -1)
				break;
			milter_reply_deinit(&r);
			continue;
		}
		switch (r.code) {
		case MILTER_REPLY_CONTINUE:
			res = MILTER_RES_CONTINUE;
			break;
		case MILTER_REPLY_ACCEPT:
			res = MILTER_RES_ACCEPT;
			break;
		case MILTER_REPLY_SKIP:
			/* only an answer to a body chunk may skip the rest */
			if (cmd == MILTER_CMD_BODY)
				res = MILTER_RES_SKIP;
			else
				*error_r = "skip out of place";
			break;
		case MILTER_REPLY_REJECT:
		case MILTER_REPLY_TEMPFAIL:
		case MILTER_REPLY_REPLYCODE:
		case MILTER_REPLY_DISCARD:
			answer_set(ans, &r);
			res = MILTER_RES_FINAL;
			break;
		case MILTER_REPLY_SHUTDOWN:
			/* Postfix: 421 and the connection refused */
			ans->code = r.code;
			ans->text[0] = '\0';
			res = MILTER_RES_FINAL;
			break;
		case MILTER_REPLY_CONN_FAIL:
			*error_r = "connection failure reply";
			break;
		default:
			*error_r = "unexpected reply";
			break;
		}
		break;
	}
	milter_reply_deinit(&r);
	if (res != MILTER_RES_FAILED)
		return res;
fail:
	milter_conn_close(m);
	return MILTER_RES_FAILED;
}

int
milter_conn_post(struct milter_conn *m, const struct buf *out)
{
	ssize_t n;

	if (m->fd == -1)
		return -1;
	do
		n = send(m->fd, out->data, out->len,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n == -1 && errno == EINTR);
	if (n != (ssize_t)out->len) {
		milter_conn_close(m);
		return -1;
	}
	return 0;
}

/*
 * delivery.c - the small shared part of the queue manager / transport
 * contract of delivery.h: setting a recipient's outcome.
 *
 * The transports (deliver_smtp.c, deliver_maildir.c) call these; the
 * queue manager reads the outcome in job->done and frees the replies.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "delivery.h"
#include "log.h"
#include "xmalloc.h"

void
delivery_set_rcpt(struct delivery_job *job, size_t i,
    enum delivery_status status, const char *dsn, const char *reply)
{
	struct delivery_rcpt *r;

	if (i >= job->nrcpts)
		fatalx("delivery_set_rcpt: recipient %zu of %zu", i,
		    job->nrcpts);
	r = &job->rcpts[i];
	r->status = status;
	/* enhanced status codes are at most "5.123.123" (RFC 3463) */
	snprintf(r->dsn, sizeof(r->dsn), "%s", dsn != NULL ? dsn : "");
	free(r->reply);
	r->reply = reply != NULL ? xstrdup(reply) : NULL;
}

void
delivery_set_all(struct delivery_job *job, enum delivery_status status,
    const char *dsn, const char *reply)
{
	size_t i;

	for (i = 0; i < job->nrcpts; i++) {
		if (job->rcpts[i].status == DELIVERY_PENDING)
			delivery_set_rcpt(job, i, status, dsn, reply);
	}
}

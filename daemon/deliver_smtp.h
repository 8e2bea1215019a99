/*
 * deliver_smtp.h - the SMTP client transport (RFC 5321 client side).
 *
 * The queue manager hands it a delivery_job (delivery.h); it finds the
 * next hop (MX or fixed host), talks SMTP with PIPELINING and STARTTLS
 * where offered, sets every recipient's status and calls job->done once,
 * always later from the event loop, never from inside deliver_smtp_start.
 * Healthy connections are kept for the next job to the same destination.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_DELIVER_SMTP_H
#define POSTERN_DELIVER_SMTP_H

struct delivery_job;
struct event_base;
struct loop;

/*
 * deliver_smtp_start - deliver job on loop (the caller's own loop: every
 * callback, job->done included, runs on it). The job and everything it
 * points to must stay valid until job->done is called. job->config must
 * be set; job->relay is set (owned by the job) to "host[addr]:port" of
 * the last server talked to, or "none".
 */
void	deliver_smtp_start(struct delivery_job *job, struct loop *loop);
/* deliver_smtp_start_base - the same on a bare event_base (unit tests) */
void	deliver_smtp_start_base(struct delivery_job *job,
	    struct event_base *base);
/*
 * deliver_smtp_shutdown - send QUIT on the cached connections of this
 * loop and close them; free the loop's resolver once no job runs. Call
 * on the loop's thread when no new job will be started.
 */
void	deliver_smtp_shutdown(struct loop *loop);
void	deliver_smtp_shutdown_base(struct event_base *base);

/*
 * deliver_smtp_abort_all - end every delivery running on loop now: close
 * its connection, defer its pending recipients (4.3.2, shutdown) and
 * call job->done from the loop soon after, as usual. For a stop that
 * must not wait for slow peers.
 */
void	deliver_smtp_abort_all(struct loop *);

#endif

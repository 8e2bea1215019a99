/*
 * qmgr.h - the queue manager: schedules spooled messages for delivery.
 *
 * It runs on its own thread with its own event loop, where the delivery
 * sessions (SMTP client, maildir via the pool) also run. It rebuilds its
 * schedule from the spool at start, groups recipients per destination,
 * enforces per-destination concurrency, retries with backoff, expires
 * messages past maximal_queue_lifetime and sends RFC 3464 bounces.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_QMGR_H
#define POSTERN_QMGR_H

#include <stdbool.h>

struct config;

/* qmgr_start - start the thread; takes its own reference on config */
int	qmgr_start(struct config *, const char **error_r);
/* qmgr_notify - a new message is in queue/ (thread-safe, never blocks) */
void	qmgr_notify(const char *queue_id);
/* qmgr_reload - use this configuration from now on (thread-safe) */
void	qmgr_reload(struct config *);
/* qmgr_flush - retry every deferred message now (thread-safe) */
void	qmgr_flush(void);
/* qmgr_stop - stop scheduling, let running deliveries end (up to a few
 * seconds), join the thread. Messages stay in the spool. */
void	qmgr_stop(void);

#endif

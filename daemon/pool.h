/*
 * pool.h - the worker pools: threads for work that may block (crypt(3),
 * fsync, maildir writes) and, apart, for filter stages that may wait on
 * the network.
 *
 * A job runs work(arg) on a worker thread, then done(arg) on the loop that
 * submitted it. Between the two the submitter must not touch arg.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_POOL_H
#define POSTERN_POOL_H

#include "loop.h"

/*
 * pool_start - start the threads of both queues (once, at daemon start):
 * nworkers for short work, nfilters for filter stages
 */
int	pool_start(int nworkers, int nfilters);
/* pool_stop - finish queued jobs, join the threads */
void	pool_stop(void);
/*
 * pool_submit - queue a job; done runs on `loop` (which must be the
 * caller's loop or another running loop). done may be NULL.
 */
void	pool_submit(struct loop *, loop_fn work, loop_fn done, void *arg);
/*
 * pool_submit_filter - the same on the filter queue: for filter stages,
 * which may wait on the network for seconds (SPF helpers, DKIM keys)
 */
void	pool_submit_filter(struct loop *, loop_fn work, loop_fn done,
	    void *arg);

#endif

/*
 * pool.h - the worker pool: threads for work that may block (crypt(3),
 * fsync, filter callbacks that do I/O, maildir writes).
 *
 * A job runs work(arg) on a worker thread, then done(arg) on the loop that
 * submitted it. Between the two the submitter must not touch arg.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_POOL_H
#define POSTERN_POOL_H

#include "loop.h"

/* pool_start - start n worker threads (once, at daemon start) */
int	pool_start(int nthreads);
/* pool_stop - finish queued jobs, join the threads */
void	pool_stop(void);
/*
 * pool_submit - queue a job; done runs on `loop` (which must be the
 * caller's loop or another running loop). done may be NULL.
 */
void	pool_submit(struct loop *, loop_fn work, loop_fn done, void *arg);

#endif

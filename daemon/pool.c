/*
 * pool.c - the worker pools; see pool.h.
 *
 * Two queues, each with its own fixed set of threads taking jobs from one
 * FIFO under one mutex: the work queue for short jobs (a crypt(3) check,
 * an fsync, a queue file update) and the filter queue for filter stages,
 * which may wait on the network (an SPF helper, a DKIM key record) for
 * seconds. Keeping them apart means a filter stuck on a dead DNS server
 * cannot hold up the commits, AUTH checks and queue work of everyone
 * else. The hand-off cost is a mutex, a condition signal and, for the
 * completion, one loop_post().
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "log.h"
#include "loop.h"
#include "pool.h"
#include "xmalloc.h"

struct job {
	struct loop	*loop;		/* borrowed: where done runs */
	loop_fn		 work;
	loop_fn		 done;
	void		*arg;
	struct job	*next;		/* owned */
};

struct queue {
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	struct job	*head;		/* owned list */
	struct job	**tail;
	bool		 stopping;
	pthread_t	*threads;	/* owned */
	int		 nthreads;
};

static struct queue work_q = {
	PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL,
	&work_q.head, false, NULL, 0
};
static struct queue filter_q = {
	PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL,
	&filter_q.head, false, NULL, 0
};

static void *
worker(void *arg)
{
	struct queue *q = arg;
	struct job *j;

	for (;;) {
		pthread_mutex_lock(&q->mu);
		while (q->head == NULL && !q->stopping)
			pthread_cond_wait(&q->cv, &q->mu);
		if (q->head == NULL) {
			pthread_mutex_unlock(&q->mu);
			return NULL;
		}
		j = q->head;
		q->head = j->next;
		if (q->head == NULL)
			q->tail = &q->head;
		pthread_mutex_unlock(&q->mu);

		j->work(j->arg);
		if (j->done != NULL)
			loop_post(j->loop, j->done, j->arg);
		free(j);
	}
}

static int
queue_start(struct queue *q, int nthreads)
{
	int i, rc;

	if (nthreads < 1)
		nthreads = 1;
	q->threads = xcalloc((size_t)nthreads, sizeof(*q->threads));
	q->stopping = false;
	for (i = 0; i < nthreads; i++) {
		rc = pthread_create(&q->threads[i], NULL, worker, q);
		if (rc != 0) {
			errno = rc;
			return -1;
		}
		q->nthreads++;
	}
	return 0;
}

static void
queue_stop(struct queue *q)
{
	int i;

	pthread_mutex_lock(&q->mu);
	q->stopping = true;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
	for (i = 0; i < q->nthreads; i++)
		pthread_join(q->threads[i], NULL);
	free(q->threads);
	q->threads = NULL;
	q->nthreads = 0;
}

static void
queue_submit(struct queue *q, struct loop *loop, loop_fn work, loop_fn done,
    void *arg)
{
	struct job *j;

	j = xmalloc(sizeof(*j));
	j->loop = loop;
	j->work = work;
	j->done = done;
	j->arg = arg;
	j->next = NULL;
	pthread_mutex_lock(&q->mu);
	*q->tail = j;
	q->tail = &j->next;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

int
pool_start(int nworkers, int nfilters)
{
	if (queue_start(&work_q, nworkers) == -1 ||
	    queue_start(&filter_q, nfilters) == -1)
		return -1;
	return 0;
}

void
pool_stop(void)
{
	/* filter jobs end in commits and other work: stop them first */
	queue_stop(&filter_q);
	queue_stop(&work_q);
}

void
pool_submit(struct loop *loop, loop_fn work, loop_fn done, void *arg)
{
	queue_submit(&work_q, loop, work, done, arg);
}

void
pool_submit_filter(struct loop *loop, loop_fn work, loop_fn done, void *arg)
{
	queue_submit(&filter_q, loop, work, done, arg);
}

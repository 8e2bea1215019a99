/*
 * pool.c - the worker pool; see pool.h.
 *
 * A fixed set of threads takes jobs from one FIFO. Jobs are small and
 * independent (a crypt(3) check, an fsync, a filter stage), so a single
 * queue under one mutex is simple and fair; the hand-off cost is a mutex,
 * a condition signal and, for the completion, one loop_post().
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

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cv = PTHREAD_COND_INITIALIZER;
static struct job *pool_head, **pool_tail = &pool_head;
static bool pool_stopping;
static pthread_t *pool_threads;
static int pool_nthreads;

static void *
worker(void *unused)
{
	struct job *j;

	for (;;) {
		pthread_mutex_lock(&pool_mu);
		while (pool_head == NULL && !pool_stopping)
			pthread_cond_wait(&pool_cv, &pool_mu);
		if (pool_head == NULL) {
			pthread_mutex_unlock(&pool_mu);
			return NULL;
		}
		j = pool_head;
		pool_head = j->next;
		if (pool_head == NULL)
			pool_tail = &pool_head;
		pthread_mutex_unlock(&pool_mu);

		j->work(j->arg);
		if (j->done != NULL)
			loop_post(j->loop, j->done, j->arg);
		free(j);
	}
}

int
pool_start(int nthreads)
{
	int i, rc;

	if (nthreads < 1)
		nthreads = 1;
	pool_threads = xcalloc((size_t)nthreads, sizeof(*pool_threads));
	pool_stopping = false;
	for (i = 0; i < nthreads; i++) {
		rc = pthread_create(&pool_threads[i], NULL, worker, NULL);
		if (rc != 0) {
			errno = rc;
			return -1;
		}
		pool_nthreads++;
	}
	return 0;
}

void
pool_stop(void)
{
	int i;

	pthread_mutex_lock(&pool_mu);
	pool_stopping = true;
	pthread_cond_broadcast(&pool_cv);
	pthread_mutex_unlock(&pool_mu);
	for (i = 0; i < pool_nthreads; i++)
		pthread_join(pool_threads[i], NULL);
	free(pool_threads);
	pool_threads = NULL;
	pool_nthreads = 0;
}

void
pool_submit(struct loop *loop, loop_fn work, loop_fn done, void *arg)
{
	struct job *j;

	j = xmalloc(sizeof(*j));
	j->loop = loop;
	j->work = work;
	j->done = done;
	j->arg = arg;
	j->next = NULL;
	pthread_mutex_lock(&pool_mu);
	*pool_tail = j;
	pool_tail = &j->next;
	pthread_cond_signal(&pool_cv);
	pthread_mutex_unlock(&pool_mu);
}

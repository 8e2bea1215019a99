/*
 * loop.c - event loop threads and cross-thread hand-off; see loop.h.
 *
 * Each loop owns one libevent event_base that only its own thread touches.
 * Other threads reach a loop through loop_post(): the call is queued under
 * a mutex and an eventfd wakes the loop, which runs the queued calls in
 * order. This keeps libevent free of locks (no evthread) and makes every
 * cross-thread interaction explicit.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/eventfd.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "loop.h"
#include "xmalloc.h"

struct posted {
	loop_fn		 fn;
	void		*arg;
	struct posted	*next;		/* owned */
};

struct loop {
	char		 name[32];
	struct event_base *base;	/* owned */
	struct event	*wake_ev;	/* owned */
	int		 wake_fd;	/* eventfd */
	pthread_t	 thread;
	bool		 started;
	pthread_mutex_t	 mu;		/* guards the posted queue */
	struct posted	*head;		/* owned */
	struct posted	**tail;
};

static __thread struct loop *current_loop;

/* run_posted - drain the queue: runs on the loop when the eventfd fires */
static void
run_posted(evutil_socket_t fd, short what, void *arg)
{
	struct loop *l = arg;
	struct posted *p, *next;
	uint64_t n;

	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_warn("loop %s: eventfd read", l->name);
	pthread_mutex_lock(&l->mu);
	p = l->head;
	l->head = NULL;
	l->tail = &l->head;
	pthread_mutex_unlock(&l->mu);
	for (; p != NULL; p = next) {
		next = p->next;
		p->fn(p->arg);
		free(p);
	}
}

struct loop *
loop_new(const char *name)
{
	struct loop *l;

	l = xcalloc(1, sizeof(*l));
	snprintf(l->name, sizeof(l->name), "%s", name);
	if ((l->base = event_base_new()) == NULL)
		fatalx("loop %s: event_base_new failed", name);
	l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->wake_fd == -1)
		fatal("loop %s: eventfd", name);
	l->wake_ev = event_new(l->base, l->wake_fd, EV_READ | EV_PERSIST,
	    run_posted, l);
	if (l->wake_ev == NULL || event_add(l->wake_ev, NULL) == -1)
		fatalx("loop %s: cannot add wake event", name);
	pthread_mutex_init(&l->mu, NULL);
	l->tail = &l->head;
	return l;
}

void
loop_free(struct loop **lp)
{
	struct loop *l = *lp;
	struct posted *p, *next;

	if (l == NULL)
		return;
	for (p = l->head; p != NULL; p = next) {
		next = p->next;
		free(p);
	}
	event_free(l->wake_ev);
	close(l->wake_fd);
	event_base_free(l->base);
	pthread_mutex_destroy(&l->mu);
	free(l);
	*lp = NULL;
}

struct event_base *
loop_base(const struct loop *l)
{
	return l->base;
}

static void *
loop_thread(void *arg)
{
	struct loop *l = arg;

	loop_run_here(l);
	return NULL;
}

int
loop_start(struct loop *l)
{
	int rc;

	if ((rc = pthread_create(&l->thread, NULL, loop_thread, l)) != 0) {
		errno = rc;
		return -1;
	}
	l->started = true;
	return 0;
}

void
loop_run_here(struct loop *l)
{
	current_loop = l;
	if (event_base_dispatch(l->base) == -1)
		log_warnx("loop %s: event_base_dispatch failed", l->name);
	current_loop = NULL;
}

static void
exit_now(void *arg)
{
	struct loop *l = arg;

	event_base_loopbreak(l->base);
}

void
loop_exit(struct loop *l)
{
	loop_post(l, exit_now, l);
}

void
loop_join(struct loop *l)
{
	if (l->started) {
		pthread_join(l->thread, NULL);
		l->started = false;
	}
}

void
loop_post(struct loop *l, loop_fn fn, void *arg)
{
	struct posted *p;
	uint64_t one = 1;
	bool was_empty;

	p = xmalloc(sizeof(*p));
	p->fn = fn;
	p->arg = arg;
	p->next = NULL;
	pthread_mutex_lock(&l->mu);
	was_empty = l->head == NULL;
	*l->tail = p;
	l->tail = &p->next;
	pthread_mutex_unlock(&l->mu);
	/* one wake-up per batch: the loop drains everything queued */
	if (was_empty && write(l->wake_fd, &one, sizeof(one)) < 0 &&
	    errno != EAGAIN)
		log_warn("loop %s: eventfd write", l->name);
}

bool
loop_is_current(const struct loop *l)
{
	return current_loop == l;
}

struct loop *
loop_current(void)
{
	return current_loop;
}

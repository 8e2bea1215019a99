/*
 * loop.h - event loop threads (one libevent event_base each) and the
 * thread-safe way to hand work back to a loop.
 *
 * A session lives on one loop for its whole life. Other threads (the
 * worker pool, the queue manager) never touch a loop's objects; they post
 * a function to run on it.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_LOOP_H
#define POSTERN_LOOP_H

#include <pthread.h>
#include <stdbool.h>

struct event_base;
struct loop;

typedef void (*loop_fn)(void *arg);

/* loop_new - a loop with its own event_base; not running yet */
struct loop *loop_new(const char *name);
void	loop_free(struct loop **);
struct event_base *loop_base(const struct loop *);
/* loop_start - run the loop on a new thread */
int	loop_start(struct loop *);
/* loop_run_here - run the loop on the calling thread until loop_exit */
void	loop_run_here(struct loop *);
/* loop_exit - make the loop return (thread-safe); loop_join waits for it */
void	loop_exit(struct loop *);
void	loop_join(struct loop *);
/*
 * loop_post - run fn(arg) on the loop's thread, soon (thread-safe, never
 * blocks). Calls posted from one thread run in the order posted.
 */
void	loop_post(struct loop *, loop_fn fn, void *arg);
/* loop_is_current - true when called from the loop's own thread */
bool	loop_is_current(const struct loop *);
/* loop_current - the loop of the calling thread, or NULL */
struct loop *loop_current(void);

#endif

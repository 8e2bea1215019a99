/*
 * milter_runtime.h - what postern-milter builds from one configuration
 * load: the configuration, its filter chain and the milter actions that
 * chain may need. Reference-counted and immutable once built, like
 * posternd's runtime (daemon/runtime.h): each milter connection holds
 * the runtime it started with until it closes, a reload builds a new one
 * and swaps it in, and the old one is freed when its last connection
 * ends. No libmilter here, so that it can be unit-tested.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_MILTER_RUNTIME_H
#define POSTERN_MILTER_RUNTIME_H

#include <stdatomic.h>

struct chain;
struct config;

struct milter_runtime {
	atomic_int refcount;
	struct config *config;		/* owned reference */
	struct chain *chain;		/* owned */
	unsigned needs;			/* MILTER_MAP_* the chain may need */
};

/*
 * milter_runtime_check - the configuration can be hosted: smtpd_filters
 * must not name "milters" (an MTA calling postern-milter calling milters
 * is a loop waiting to happen). Returns 0, or -1 with *error_r (owned).
 */
int	milter_runtime_check(const struct config *, char **error_r);

/*
 * milter_runtime_new - check cfg and build its chain (each filter's
 * init: DKIM keys are read here; a root-only key that cannot be read
 * again after the privilege drop is kept from the runtime still in
 * force, see filters/dkim_tables.c). Takes over the caller's reference
 * on cfg, also on failure. Returns a runtime with one reference, or NULL
 * and *error_r (owned).
 */
struct milter_runtime *milter_runtime_new(struct config *cfg,
	    char **error_r);
void	milter_runtime_ref(struct milter_runtime *);
/* milter_runtime_unref - drop a reference; the last frees; NULL is ok */
void	milter_runtime_unref(struct milter_runtime **);

/*
 * milter_runtime_current - a new reference on the runtime in force, or
 * NULL before the first swap and after milter_runtime_swap(NULL).
 * Thread-safe.
 */
struct milter_runtime *milter_runtime_current(void);
/*
 * milter_runtime_swap - make rt (NULL: none) the runtime in force.
 * Takes over the caller's reference and drops the process's reference
 * on the old one. Thread-safe.
 */
void	milter_runtime_swap(struct milter_runtime *rt);

/* milter_runtime_live - runtimes built and not yet freed (tests, logs) */
unsigned milter_runtime_live(void);

#endif

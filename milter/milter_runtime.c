/*
 * milter_runtime.c - build, count and swap postern-milter's per-
 * configuration runtime (see milter_runtime.h).
 *
 * Owns the runtime in force (one reference, behind a mutex: the reload
 * thread swaps while libmilter's threads take references). A connection
 * takes its reference once, at its first callback, so that it never sees
 * two chains; the reference count alone then keeps the old chain alive
 * for the connections that still use it. Reading the configuration and
 * logging the outcome of a reload are the caller's (postern_milter.c).
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "chain.h"
#include "config/config.h"
#include "filter.h"
#include "milter_map.h"
#include "milter_runtime.h"
#include "xmalloc.h"

static pthread_mutex_t runtime_lock = PTHREAD_MUTEX_INITIALIZER;
static struct milter_runtime *runtime_in_force;	/* owned reference */
static atomic_uint runtime_count;

int
milter_runtime_check(const struct config *cfg, char **error_r)
{
	size_t i;

	for (i = 0; cfg->smtpd_filters != NULL &&
	    cfg->smtpd_filters[i] != NULL; i++)
		if (strcmp(cfg->smtpd_filters[i], "milters") == 0) {
			*error_r = xstrdup("smtpd_filters: postern-milter "
			    "cannot run 'milters' (an MTA calling "
			    "postern-milter calling milters is a loop "
			    "waiting to happen); remove it from the chain "
			    "postern-milter runs");
			return -1;
		}
	return 0;
}

/* chain_needs - the milter actions cfg's chain may ask of the MTA */
static unsigned
chain_needs(const struct config *cfg)
{
	const struct filter_ops *ops;
	unsigned needs = 0;
	size_t i;

	for (i = 0; cfg->smtpd_filters != NULL &&
	    cfg->smtpd_filters[i] != NULL; i++) {
		ops = filter_lookup(cfg->smtpd_filters[i]);
		needs |= milter_map_filter_needs(cfg->smtpd_filters[i],
		    ops != NULL && ops->edits);
	}
	/* forged Authentication-Results are deleted (RFC 8601 5) */
	if (cfg->authserv_id != NULL && cfg->authserv_id[0] != '\0')
		needs |= MILTER_MAP_CHGHDRS;
	return needs;
}

struct milter_runtime *
milter_runtime_new(struct config *cfg, char **error_r)
{
	struct milter_runtime *rt;

	if (milter_runtime_check(cfg, error_r) == -1) {
		config_unref(&cfg);
		return NULL;
	}
	rt = xcalloc(1, sizeof(*rt));
	atomic_init(&rt->refcount, 1);
	rt->config = cfg;
	atomic_fetch_add(&runtime_count, 1);
	if ((rt->chain = chain_new(cfg, error_r)) == NULL) {
		milter_runtime_unref(&rt);
		return NULL;
	}
	rt->needs = chain_needs(cfg);
	return rt;
}

void
milter_runtime_ref(struct milter_runtime *rt)
{
	atomic_fetch_add_explicit(&rt->refcount, 1, memory_order_relaxed);
}

void
milter_runtime_unref(struct milter_runtime **rtp)
{
	struct milter_runtime *rt = *rtp;

	if (rt == NULL)
		return;
	*rtp = NULL;
	if (atomic_fetch_sub_explicit(&rt->refcount, 1,
	    memory_order_acq_rel) != 1)
		return;
	/* the chain's filters (SPF helpers, DKIM keys) go with it */
	chain_free(&rt->chain);
	config_unref(&rt->config);
	free(rt);
	atomic_fetch_sub(&runtime_count, 1);
}

struct milter_runtime *
milter_runtime_current(void)
{
	struct milter_runtime *rt;

	pthread_mutex_lock(&runtime_lock);
	if ((rt = runtime_in_force) != NULL)
		milter_runtime_ref(rt);
	pthread_mutex_unlock(&runtime_lock);
	return rt;
}

void
milter_runtime_swap(struct milter_runtime *rt)
{
	struct milter_runtime *old;

	pthread_mutex_lock(&runtime_lock);
	old = runtime_in_force;
	runtime_in_force = rt;
	pthread_mutex_unlock(&runtime_lock);
	/* outside the lock: the last unref may stop SPF helpers */
	milter_runtime_unref(&old);
}

unsigned
milter_runtime_live(void)
{
	return atomic_load(&runtime_count);
}

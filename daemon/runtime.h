/*
 * runtime.h - what a configuration load produces besides the config
 * itself: the filter chain and the server TLS context.
 *
 * Reference-counted and immutable like the config: a session holds the
 * runtime it started with; SIGHUP builds a new one and swaps it in. A
 * runtime that fails to build leaves the old one in force.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_RUNTIME_H
#define POSTERN_RUNTIME_H

#include <stdatomic.h>

#include <openssl/ssl.h>

struct config;
struct chain;

struct runtime {
	atomic_int refcount;
	struct config *config;		/* owned reference */
	struct chain *chain;		/* owned */
	SSL_CTX	*tls_server;		/* owned; NULL without cert/key */
};

/*
 * runtime_new - build from a loaded configuration (takes over the
 * caller's reference on cfg). NULL and *error_r (owned) on failure.
 * On a reload, old is the runtime in force: when the TLS files cannot be
 * read any more (we run as mail_owner by then, and keys are usually
 * root-only) but their names did not change, old's TLS context is kept,
 * with a warning.
 */
struct runtime *runtime_new(struct config *cfg, const struct runtime *old,
	    char **error_r);
void	runtime_ref(struct runtime *);
void	runtime_unref(struct runtime **);
/* runtime_current - a new reference on the runtime in force (thread-safe) */
struct runtime *runtime_current(void);
/* runtime_swap - make rt current (takes over the caller's reference) */
void	runtime_swap(struct runtime *);

#endif

/*
 * runtime.c - build and swap the per-configuration runtime; see runtime.h.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "chain.h"
#include "config/config.h"
#include "log.h"
#include "runtime.h"
#include "tls.h"
#include "xmalloc.h"

static pthread_mutex_t runtime_mu = PTHREAD_MUTEX_INITIALIZER;
static struct runtime *runtime_in_force;

/* tls_listener - the kind of a listener that cannot work without TLS */
static const char *
tls_listener(const struct config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->nlisten; i++) {
		if (cfg->listen[i].kind == LISTENER_SMTPS)
			return "smtps";
		if (cfg->listen[i].kind == LISTENER_SUBMISSION)
			return "submission";
	}
	return NULL;
}

/* same_tls_files - old was built from the same certificate and key */
static bool
same_tls_files(const struct runtime *old, const struct config *cfg)
{
	const struct config *o;

	if (old == NULL || old->tls_server == NULL)
		return false;
	o = old->config;
	return o->smtpd_tls_cert_file != NULL &&
	    o->smtpd_tls_key_file != NULL &&
	    cfg->smtpd_tls_key_file != NULL &&
	    strcmp(o->smtpd_tls_cert_file, cfg->smtpd_tls_cert_file) == 0 &&
	    strcmp(o->smtpd_tls_key_file, cfg->smtpd_tls_key_file) == 0;
}

struct runtime *
runtime_new(struct config *cfg, const struct runtime *old, char **error_r)
{
	struct runtime *rt;
	const char *error;

	rt = xcalloc(1, sizeof(*rt));
	rt->refcount = 1;
	rt->config = cfg;
	if ((rt->chain = chain_new(cfg, error_r)) == NULL) {
		runtime_unref(&rt);
		return NULL;
	}
	if (cfg->smtpd_tls_cert_file != NULL &&
	    cfg->smtpd_tls_cert_file[0] != '\0') {
		rt->tls_server = tls_server_ctx_new(cfg->smtpd_tls_cert_file,
		    cfg->smtpd_tls_key_file, cfg->smtpd_tls_protocols_min,
		    cfg->smtpd_tls_ciphers, &error);
		if (rt->tls_server == NULL && errno == EACCES &&
		    same_tls_files(old, cfg)) {
			log_warnx("reload: %s; keeping the certificate and key "
			    "loaded at start (make them readable by %s, or "
			    "restart, to replace them)", error,
			    cfg->mail_owner);
			SSL_CTX_up_ref(old->tls_server);
			rt->tls_server = old->tls_server;
		} else if (rt->tls_server == NULL) {
			*error_r = xasprintf("%s", error);
			runtime_unref(&rt);
			return NULL;
		}
	}
	if (rt->tls_server == NULL && (error = tls_listener(cfg)) != NULL) {
		*error_r = xasprintf("listen: %s listener needs "
		    "smtpd_tls_cert_file and smtpd_tls_key_file", error);
		runtime_unref(&rt);
		return NULL;
	}
	return rt;
}

void
runtime_ref(struct runtime *rt)
{
	atomic_fetch_add_explicit(&rt->refcount, 1,
	    memory_order_relaxed);
}

void
runtime_unref(struct runtime **rtp)
{
	struct runtime *rt = *rtp;

	if (rt == NULL)
		return;
	*rtp = NULL;
	if (atomic_fetch_sub_explicit(&rt->refcount, 1,
	    memory_order_acq_rel) != 1)
		return;
	chain_free(&rt->chain);
	if (rt->tls_server != NULL)
		SSL_CTX_free(rt->tls_server);
	config_unref(&rt->config);
	free(rt);
}

struct runtime *
runtime_current(void)
{
	struct runtime *rt;

	pthread_mutex_lock(&runtime_mu);
	rt = runtime_in_force;
	if (rt != NULL)
		runtime_ref(rt);
	pthread_mutex_unlock(&runtime_mu);
	return rt;
}

void
runtime_swap(struct runtime *rt)
{
	struct runtime *old;

	pthread_mutex_lock(&runtime_mu);
	old = runtime_in_force;
	runtime_in_force = rt;
	pthread_mutex_unlock(&runtime_mu);
	runtime_unref(&old);
}

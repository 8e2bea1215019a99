/*
 * config.c - load main.cf into an immutable, reference-counted struct
 * config; print it; publish the current one.
 *
 * Owns the struct config and everything in it (through schema_clear).
 * Loading is: cf_parse.c reads the file, every name is checked against
 * the schema (unknown names are errors), every parameter's text - from
 * the file or its default - is $-expanded and converted by schema.c,
 * then checks that span parameters run here. Any error aborts the load
 * with "path:line: parameter: reason" and leaves the previous
 * configuration in force (config_swap is only called on success).
 *
 * It leaves TLS certificates and keys alone (the TLS module loads them
 * before the privilege drop); tables, which must be readable at load
 * time, are opened here.
 *
 * SPDX-License-Identifier: ISC
 */
#include <config.h>	/* autoconf's; this directory has its own config.h */

#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "cf_parse.h"
#include "config.h"
#include "log.h"
#include "schema.h"
#include "xmalloc.h"

/*
 * the last config_load error, per thread (see config.h); the key's
 * destructor frees it when a thread that loaded a configuration exits
 */
static __thread char *config_error;
static pthread_key_t config_error_key;
static pthread_once_t config_error_once = PTHREAD_ONCE_INIT;

/* configurations loaded so far: the next one's generation */
static unsigned long config_generations;

static pthread_mutex_t config_current_lock = PTHREAD_MUTEX_INITIALIZER;
static struct config *config_current_cfg;	/* one reference */

/* what the $name lookup sees while one file loads */
struct config_loader {
	const struct cf_file *cf;	/* borrowed */
	char	*def_myhostname;	/* owned; computed default */
	char	*def_mydomain;		/* owned; computed default */
	bool	 in_mydomain;		/* in mydomain's default */
	bool	 is_computed_loop;	/* that computation looped */
};

/* config_default_myhostname - gethostname(), made fully qualified */
static char *
config_default_myhostname(void)
{
	char name[256];

	if (gethostname(name, sizeof(name)) == -1 || name[0] == '\0')
		return xstrdup("localhost.localdomain");
	name[sizeof(name) - 1] = '\0';
	if (strchr(name, '.') == NULL)
		return xasprintf("%s.localdomain", name);
	return xstrdup(name);
}

static const char *config_lookup(void *, const char *);

/* config_default_mydomain - $myhostname minus its first label */
static char *
config_default_mydomain(struct config_loader *ld)
{
	char *host, *err = NULL, *dot, *dom;

	if (ld->in_mydomain) {
		ld->is_computed_loop = true;
		return NULL;
	}
	ld->in_mydomain = true;
	if (cf_expand("$myhostname", config_lookup, ld, &host, &err) == -1) {
		ld->in_mydomain = false;
		free(err);
		return NULL;
	}
	ld->in_mydomain = false;
	dot = strchr(host, '.');
	dom = xstrdup(dot != NULL && dot[1] != '\0' ? dot + 1 : "localdomain");
	free(host);
	return dom;
}

/* config_lookup - raw text of a parameter: the file's, else the default */
static const char *
config_lookup(void *ctx, const char *name)
{
	struct config_loader *ld = ctx;
	const struct cf_entry *e;
	const struct schema_param *p;

	if ((e = cf_file_find(ld->cf, name)) != NULL)
		return e->value;
	if ((p = schema_find(name)) == NULL)
		return NULL;
	if (!(p->flags & SCHEMA_F_COMPUTED))
		return p->def;
	if (strcmp(name, "myhostname") == 0) {
		if (ld->def_myhostname == NULL)
			ld->def_myhostname = config_default_myhostname();
		return ld->def_myhostname;
	}
	if (strcmp(name, "mydomain") == 0) {
		if (ld->def_mydomain == NULL)
			ld->def_mydomain = config_default_mydomain(ld);
		return ld->def_mydomain;
	}
	return NULL;
}

static void
config_error_key_create(void)
{
	if (pthread_key_create(&config_error_key, free) != 0)
		fatalx("config: pthread_key_create failed");
}

/* config_error_set - the thread's last error is now err (owned) */
static void
config_error_set(char *err)
{
	(void)pthread_once(&config_error_once, config_error_key_create);
	free(config_error);
	config_error = err;
	(void)pthread_setspecific(config_error_key, err);
}

/* config_fail - set config_error to "path[:line]: fmt..." */
static void config_fail(const char *, int, const char *, ...)
    __attribute__((format(printf, 3, 4)));

static void
config_fail(const char *path, int line, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	if (line > 0)
		config_error_set(xasprintf("%s:%d: %s", path, line, msg));
	else
		config_error_set(xasprintf("%s: %s", path, msg));
	free(msg);
}

/* config_line - where name is set in the file, 0 if it is a default */
static int
config_line(const struct cf_file *cf, const char *name)
{
	const struct cf_entry *e = cf_file_find(cf, name);

	return e != NULL ? e->line : 0;
}

/* config_check_names - every name in the file must be a parameter */
static int
config_check_names(const struct cf_file *cf)
{
	const struct cf_entry *e;
	size_t i;

	for (i = 0; i < cf->nentries; i++) {
		e = &cf->entries[i];
		if (schema_find(e->name) == NULL) {
			config_fail(cf->path, e->line, "unknown parameter "
			    "\"%s\"", e->name);
			return -1;
		}
		if (cf_file_find(cf, e->name) != e)
			log_warnx("%s:%d: %s is set again later in the file; "
			    "the later value wins", cf->path, e->line,
			    e->name);
	}
	return 0;
}

/* config_cross_checks - rules that involve more than one parameter */
static int
config_cross_checks(struct config *cfg, const struct cf_file *cf)
{
	if (cfg->nlisten == 0) {
		config_fail(cf->path, config_line(cf, "listen"),
		    "listen: no listeners");
		return -1;
	}
	if (cfg->minimal_backoff_time > cfg->maximal_backoff_time) {
		int line = config_line(cf, "maximal_backoff_time");

		if (line == 0)
			line = config_line(cf, "minimal_backoff_time");
		config_fail(cf->path, line, "minimal_backoff_time (%ds) is "
		    "greater than maximal_backoff_time (%ds)",
		    cfg->minimal_backoff_time, cfg->maximal_backoff_time);
		return -1;
	}
	/* schema.c accepted only "maildir:/..." */
	cfg->maildir_base = xstrdup(cfg->local_transport +
	    strlen("maildir:"));
	return 0;
}

/* config_free - release everything; refcount has reached zero */
static void
config_free(struct config *cfg)
{
	size_t i;

	for (i = 0; i < schema_nparams; i++)
		schema_clear(&schema_params[i], cfg);
	free(cfg->maildir_base);
	free(cfg->path);
	free(cfg);
}

/*
 * config_load_param - expand and convert one parameter; e is its entry
 * in the file, or NULL when the default applies (only for messages)
 */
static int
config_load_param(struct config_loader *ld, struct config *cfg,
    const struct schema_param *p, const struct cf_entry *e)
{
	const char *path = ld->cf->path;
	char *err = NULL, *value, *ref;
	int line = e != NULL ? e->line : 0, rc;

	/* expand "$name" rather than the value, so loops name p first */
	ref = xasprintf("$%s", p->name);
	rc = cf_expand(ref, config_lookup, ld, &value, &err);
	free(ref);
	if (rc == -1) {
		if (ld->is_computed_loop) {
			free(err);
			err = xstrdup("parameter loop through the default of "
			    "$mydomain ($myhostname minus its first label)");
		}
		config_fail(path, line, "%s%s: %s", e != NULL ? "" :
		    "default of ", p->name, err);
		free(err);
		return -1;
	}
	if (schema_set(p, cfg, value, &err) == -1) {
		config_fail(path, line, "%s%s: %s", e != NULL ? "" :
		    "default of ", p->name, err);
		free(err);
		free(value);
		return -1;
	}
	free(value);
	return 0;
}

struct config *
config_load(const char *path, const char **error_r)
{
	struct config_loader ld;
	const struct schema_param *p;
	const struct cf_entry *e;
	struct config *cfg = NULL;
	struct cf_file *cf = NULL;
	char *err = NULL;
	size_t i;

	memset(&ld, 0, sizeof(ld));
	if (cf_parse_file(path, &cf, &err) == -1) {
		config_error_set(err);
		goto fail;
	}
	if (config_check_names(cf) == -1)
		goto fail;
	ld.cf = cf;
	cfg = xcalloc(1, sizeof(*cfg));
	/*
	 * The file's parameters first, in file order, so that the error
	 * an administrator sees is the first bad line; then the defaults.
	 */
	for (i = 0; i < cf->nentries; i++) {
		e = &cf->entries[i];
		if (cf_file_find(cf, e->name) != e)
			continue;	/* overridden later in the file */
		if (config_load_param(&ld, cfg, schema_find(e->name), e) == -1)
			goto fail;
	}
	for (i = 0; i < schema_nparams; i++) {
		p = &schema_params[i];
		if (cf_file_find(cf, p->name) == NULL &&
		    config_load_param(&ld, cfg, p, NULL) == -1)
			goto fail;
	}
	if (config_cross_checks(cfg, cf) == -1)
		goto fail;
	cfg->path = xstrdup(path);
	cfg->refcount = 1;
	cfg->generation = __atomic_add_fetch(&config_generations, 1,
	    __ATOMIC_RELAXED);
	cf_file_free(&cf);
	free(ld.def_myhostname);
	free(ld.def_mydomain);
	return cfg;
fail:
	if (cfg != NULL)
		config_free(cfg);
	cf_file_free(&cf);
	free(ld.def_myhostname);
	free(ld.def_mydomain);
	*error_r = config_error;
	return NULL;
}

void
config_ref(struct config *cfg)
{
	__atomic_add_fetch(&cfg->refcount, 1, __ATOMIC_RELAXED);
}

void
config_unref(struct config **cfgp)
{
	struct config *cfg = *cfgp;

	if (cfg == NULL)
		return;
	*cfgp = NULL;
	/* acq_rel: the last holder must see every other holder's reads done */
	if (__atomic_sub_fetch(&cfg->refcount, 1, __ATOMIC_ACQ_REL) == 0)
		config_free(cfg);
}

void
config_print(const struct config *cfg, FILE *fp)
{
	struct buf line;
	size_t i;

	/* schema_params is sorted by name, which is what -P promises */
	buf_init(&line, 0);
	for (i = 0; i < schema_nparams; i++) {
		buf_reset(&line);
		buf_printf(&line, "%s = ", schema_params[i].name);
		schema_format(&schema_params[i], cfg, &line);
		fprintf(fp, "%s\n", buf_cstr(&line));
	}
	buf_deinit(&line);
}

struct config *
config_current(void)
{
	struct config *cfg;

	pthread_mutex_lock(&config_current_lock);
	if ((cfg = config_current_cfg) != NULL)
		config_ref(cfg);
	pthread_mutex_unlock(&config_current_lock);
	return cfg;
}

void
config_swap(struct config *cfg)
{
	struct config *old;

	pthread_mutex_lock(&config_current_lock);
	old = config_current_cfg;
	config_current_cfg = cfg;
	pthread_mutex_unlock(&config_current_lock);
	/* sessions still holding the old one keep it alive */
	config_unref(&old);
}

int
config_parse_time(const char *s, char default_unit, int *seconds_r)
{
	unsigned long long n = 0, mult;
	const char *p = s;
	char unit;

	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		n = n * 10 + (unsigned long long)(*p - '0');
		if (n > INT_MAX)
			return -1;
	}
	unit = *p != '\0' ? *p++ : default_unit;
	if (*p != '\0')
		return -1;
	switch (unit) {
	case 's':
		mult = 1;
		break;
	case 'm':
		mult = 60;
		break;
	case 'h':
		mult = 3600;
		break;
	case 'd':
		mult = 86400;
		break;
	case 'w':
		mult = 7 * 86400;
		break;
	default:
		return -1;
	}
	if (n > INT_MAX / mult)
		return -1;
	*seconds_r = (int)(n * mult);
	return 0;
}

int
config_parse_size(const char *s, size_t *bytes_r)
{
	size_t n = 0, d;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		d = (size_t)(*p - '0');
		if (n > (SIZE_MAX - d) / 10)
			return -1;
		n = n * 10 + d;
	}
	if (*p != '\0')
		return -1;
	*bytes_r = n;
	return 0;
}

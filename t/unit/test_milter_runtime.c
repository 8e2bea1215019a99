/*
 * test_milter_runtime.c - postern-milter's reloadable runtime: which
 * configurations build (and why not), the milter actions a chain needs,
 * and the reference counting a reload relies on: a connection keeps the
 * runtime it started with across a swap, the old one is freed with its
 * last connection, a failed build leaves the runtime in force, and
 * threads taking references while another swaps see no freed runtime
 * (run under ASan in CI).
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "milter/milter_map.h"
#include "milter/milter_runtime.h"
#include "tap.h"
#include "xmalloc.h"

#define BASE	"myhostname = relay.example.test\n" \
		"queue_directory = /tmp\n" \
		"mynetworks = 127.0.0.1/32\n"

static char rules_path[] = "/tmp/test_milter_runtime.rules.XXXXXX";
static char broken_path[] = "/tmp/test_milter_runtime.broken.XXXXXX";

/* write_temp - a file made from path's template with text */
static void
write_temp(char *path, const char *text)
{
	FILE *f;
	int fd;

	if ((fd = mkstemp(path)) == -1 || (f = fdopen(fd, "w")) == NULL) {
		perror("mkstemp");
		exit(1);
	}
	fputs(text, f);
	fclose(f);
}

/*
 * load - the configuration of text, %R replaced by the good rules file
 * and %B by the broken one; NULL (and *error_r, static) when it does not
 * load
 */
static struct config *
load(const char *text, const char **error_r)
{
	char path[] = "/tmp/test_milter_runtime.conf.XXXXXX";
	char expanded[2048];
	const char *p;
	struct config *cfg;
	size_t n = 0;

	for (p = text; *p != '\0' && n + 128 < sizeof(expanded); p++) {
		if (p[0] == '%' && (p[1] == 'R' || p[1] == 'B')) {
			n += (size_t)snprintf(expanded + n,
			    sizeof(expanded) - n, "%s",
			    p[1] == 'R' ? rules_path : broken_path);
			p++;
		} else
			expanded[n++] = *p;
	}
	expanded[n] = '\0';
	write_temp(path, expanded);
	cfg = config_load(path, error_r);
	unlink(path);
	return cfg;
}

static const struct {
	const char *name;
	const char *conf;	/* after BASE */
	const char *want_error;	/* substring, or NULL: builds */
	unsigned want_needs;
} build_cases[] = {
	{ "relay only, authserv_id: deletes forged A-R",
	    "smtpd_filters = relay\n", NULL, MILTER_MAP_CHGHDRS },
	{ "regex: headers, recipients (REDIRECT, BCC), hold",
	    "smtpd_filters = relay, regex\nheader_checks = pcre:%R\n", NULL,
	    MILTER_MAP_ADDHDRS | MILTER_MAP_CHGHDRS | MILTER_MAP_ADDRCPT |
	    MILTER_MAP_DELRCPT | MILTER_MAP_QUARANTINE },
	{ "milters refused",
	    "smtpd_filters = relay, milters\n"
	    "smtpd_milters = inet:127.0.0.1:1\n",
	    "cannot run 'milters'", 0 },
	{ "a broken regex file does not load",
	    "smtpd_filters = relay, regex\nheader_checks = pcre:%B\n",
	    "missing closing parenthesis", 0 },
	{ "missing DKIM tables do not build",
	    "smtpd_filters = relay, dkim\n"
	    "dkim_signing_table = texthash:/nonexistent/signing\n"
	    "dkim_key_table = texthash:/nonexistent/keys\n",
	    "/nonexistent/", 0 },
};

static void
test_build(void)
{
	struct milter_runtime *rt;
	struct config *cfg;
	const char *lerr = NULL;
	char text[1024], *err;
	size_t i;

	for (i = 0; i < sizeof(build_cases) / sizeof(build_cases[0]); i++) {
		snprintf(text, sizeof(text), "%s%s", BASE,
		    build_cases[i].conf);
		err = NULL;
		rt = NULL;
		/* what a reload sees: refused at load or at build */
		if ((cfg = load(text, &lerr)) == NULL)
			err = xstrdup(lerr);
		else
			rt = milter_runtime_new(cfg, &err);
		if (build_cases[i].want_error == NULL) {
			ok(rt != NULL, "%s: builds", build_cases[i].name);
			if (rt == NULL)
				printf("#   got \"%s\"\n", err);
			else
				is_int(rt->needs, build_cases[i].want_needs,
				    "%s: needs", build_cases[i].name);
		} else {
			ok(rt == NULL && err != NULL &&
			    strstr(err, build_cases[i].want_error) != NULL,
			    "%s: refused", build_cases[i].name);
			if (rt != NULL || err == NULL ||
			    strstr(err, build_cases[i].want_error) == NULL)
				printf("#   got \"%s\", want \"...%s...\"\n",
				    err != NULL ? err : "(built)",
				    build_cases[i].want_error);
		}
		free(err);
		milter_runtime_unref(&rt);
		is_int(milter_runtime_live(), 0, "%s: nothing left over",
		    build_cases[i].name);
	}
}

/* build - a runtime of BASE + conf, or NULL */
static struct milter_runtime *
build(const char *conf)
{
	struct config *cfg;
	const char *lerr = NULL;
	char text[1024], *err = NULL;
	struct milter_runtime *rt;

	snprintf(text, sizeof(text), "%s%s", BASE, conf);
	if ((cfg = load(text, &lerr)) == NULL) {
		printf("# load: %s\n", lerr);
		return NULL;
	}
	if ((rt = milter_runtime_new(cfg, &err)) == NULL) {
		printf("# build: %s\n", err);
		free(err);
	}
	return rt;
}

/* the steps of a reload as the connections see them */
static void
test_swap(void)
{
	struct milter_runtime *a, *b, *conn1, *conn2, *cur;

	ok(milter_runtime_current() == NULL, "nothing in force at first");
	a = build("smtpd_filters = relay\n");
	milter_runtime_swap(a);
	conn1 = milter_runtime_current();	/* a connection before */
	ok(conn1 == a, "the first connection gets the first runtime");

	/* a configuration that does not build: the old one stays */
	b = build("smtpd_filters = relay, milters\n"
	    "smtpd_milters = inet:127.0.0.1:1\n");
	ok(b == NULL, "a refused configuration builds nothing");
	cur = milter_runtime_current();
	ok(cur == a, "after a failed reload the old runtime is in force");
	milter_runtime_unref(&cur);
	is_int(milter_runtime_live(), 1, "failed reload: one runtime");

	b = build("smtpd_filters = relay, regex\nheader_checks = pcre:%R\n");
	milter_runtime_swap(b);
	is_int(milter_runtime_live(), 2,
	    "after the swap: the old runtime lives for its connection");
	conn2 = milter_runtime_current();	/* a connection after */
	ok(conn2 == b && conn2 != conn1,
	    "a new connection gets the new runtime");
	ok(conn1->chain != NULL && conn1->needs == MILTER_MAP_CHGHDRS,
	    "the old connection still has its chain and needs");
	milter_runtime_unref(&conn1);
	ok(conn1 == NULL, "unref clears the pointer");
	is_int(milter_runtime_live(), 1,
	    "the old runtime is freed with its last connection");
	milter_runtime_swap(NULL);
	is_int(milter_runtime_live(), 1,
	    "stopped: a connection still open keeps its runtime");
	ok(milter_runtime_current() == NULL, "stopped: nothing in force");
	milter_runtime_unref(&conn2);
	is_int(milter_runtime_live(), 0, "and it goes with that connection");
	milter_runtime_unref(&conn2);	/* NULL is fine */
}

#define SWAPPERS	4
#define ROUNDS		20000
#define RELOADS		40

static atomic_bool stop_threads;
static atomic_int bad_views;

/* connections - take and drop references like milter connections */
static void *
connections(void *arg)
{
	struct milter_runtime *rt;
	unsigned i;

	for (i = 0; i < ROUNDS && !atomic_load(&stop_threads); i++) {
		if ((rt = milter_runtime_current()) == NULL)
			continue;
		/* a freed runtime would show here, or under ASan */
		if (rt->chain == NULL || rt->config == NULL ||
		    atomic_load(&rt->refcount) < 1)
			atomic_fetch_add(&bad_views, 1);
		milter_runtime_unref(&rt);
	}
	return NULL;
}

static void
test_threads(void)
{
	pthread_t t[SWAPPERS];
	int i, started = 0, built = 0;
	struct milter_runtime *rt;

	milter_runtime_swap(build("smtpd_filters = relay\n"));
	for (i = 0; i < SWAPPERS; i++)
		if (pthread_create(&t[i], NULL, connections, NULL) == 0)
			started++;
	for (i = 0; i < RELOADS; i++) {
		rt = build(i % 2 ? "smtpd_filters = relay\n" :
		    "smtpd_filters = relay, regex\nheader_checks = pcre:%R\n");
		if (rt != NULL)
			built++;
		milter_runtime_swap(rt != NULL ? rt :
		    milter_runtime_current());
	}
	for (i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	is_int(started, SWAPPERS, "threads: all started");
	is_int(built, RELOADS, "threads: every reload built");
	is_int(atomic_load(&bad_views), 0,
	    "threads: no connection saw a freed runtime");
	is_int(milter_runtime_live(), 1,
	    "threads: only the runtime in force is left");
	milter_runtime_swap(NULL);
	is_int(milter_runtime_live(), 0, "threads: all freed at the end");
}

int
main(void)
{
	write_temp(rules_path, "/^Subject:.*forbidden/\tREJECT 5.7.1 no\n");
	write_temp(broken_path, "/^Subject: (unclosed/\tREJECT 5.7.1 no\n");
	test_build();
	test_swap();
	test_threads();
	unlink(rules_path);
	unlink(broken_path);
	return done_testing();
}

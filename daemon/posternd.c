/*
 * posternd.c - the Postern daemon: start-up, privilege drop, threads,
 * signals, reload and graceful shutdown.
 *
 * Threads: the main thread runs a control loop (signals only); N session
 * loops (loop_threads, default one per core) accept and serve SMTP; the
 * queue manager has its own loop; a worker pool runs blocking work.
 *
 * Signals: SIGTERM/SIGINT stop accepting, answer 421 to idle sessions,
 * let sessions in the middle of a commit finish (up to 10 s), stop the
 * queue manager and exit. SIGHUP reloads the configuration; a broken one
 * is reported with file and line and the old one stays in force.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "config/config.h"
#include "listener.h"
#include "log.h"
#include "loop.h"
#include "policy_server.h"
#include "pool.h"
#include "qmgr.h"
#include "runtime.h"
#include "session.h"
#include "spool.h"
#include "xmalloc.h"

#define DEFAULT_CONFIG	SYSCONFDIR "/postern/main.cf"
#define SHUTDOWN_GRACE	10	/* seconds for sessions to finish */
#define FILTER_THREADS_PER_CPU	8	/* filter_threads = 0: per core */

static struct loop *control;
static struct loop **loops;
static int nloops;
static const char *config_path = DEFAULT_CONFIG;
static char *abs_config;	/* owned: config_path made absolute */
static struct event *shutdown_timer;
static int shutdown_ticks;

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: posternd [-dnP] [-c config_file] "
	    "[-D debug_subsystems]\n"
	    "  -c file  configuration file (default %s)\n"
	    "  -d       run as a daemon, log to syslog\n"
	    "  -n       check the configuration and exit\n"
	    "  -P       print the effective configuration and exit\n"
	    "  -D list  debug tracing for subsystems (smtpd,smtp,qmgr,all)\n",
	    DEFAULT_CONFIG);
	exit(2);
}

static int
ncpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : (int)n;
}

/* own_dir - create path if needed and give it to uid/gid */
static void
own_dir(const char *path, uid_t uid, gid_t gid)
{
	if (mkdir(path, 0700) == -1 && errno != EEXIST)
		fatal("mkdir %s", path);
	if (chown(path, uid, gid) == -1)
		fatal("chown %s", path);
}

/* chown_tree_top - the spool and its state directories to the mail owner */
static void
prepare_dirs(const struct config *cfg, uid_t uid, gid_t gid)
{
	static const enum spool_state states[] = { SPOOL_INCOMING,
	    SPOOL_QUEUE, SPOOL_DEFERRED, SPOOL_HOLD, SPOOL_CORRUPT };
	char path[4096];
	size_t i;

	own_dir(cfg->queue_directory, uid, gid);
	for (i = 0; i < sizeof(states) / sizeof(*states); i++) {
		snprintf(path, sizeof(path), "%s/%s", cfg->queue_directory,
		    spool_state_dir(states[i]));
		own_dir(path, uid, gid);
	}
	if (cfg->maildir_base != NULL)
		own_dir(cfg->maildir_base, uid, gid);
}

/*
 * drop_privileges - become mail_owner for good and prove it: after this
 * no code path may regain root (STYLE.md 11).
 */
static void
drop_privileges(const struct passwd *pw)
{
	if (setgroups(1, &pw->pw_gid) == -1 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1)
		fatal("cannot drop privileges to %s", pw->pw_name);
	if (setuid(0) != -1 || seteuid(0) != -1)
		fatalx("could regain root after dropping privileges");
	log_info("running as %s (uid %ld)", pw->pw_name, (long)pw->pw_uid);
}

static void
shutdown_tick(evutil_socket_t fd, short what, void *arg)
{
	struct timeval tv = { 0, 100000 };

	if (session_count() > 0 && ++shutdown_ticks < SHUTDOWN_GRACE * 10) {
		evtimer_add(shutdown_timer, &tv);
		return;
	}
	if (session_count() > 0)
		log_warnx("shutdown: %d sessions still busy after %d s",
		    session_count(), SHUTDOWN_GRACE);
	event_base_loopbreak(loop_base(control));
}

static void
shutdown_sessions(void *arg)
{
	session_shutdown_all(loop_current());
}

static void
on_terminate(evutil_socket_t sig, short what, void *arg)
{
	struct timeval tv = { 0, 0 };
	int i;

	if (shutdown_timer != NULL)
		return;
	log_info("terminating on signal %d", (int)sig);
	listeners_close();
	for (i = 0; i < nloops; i++)
		loop_post(loops[i], shutdown_sessions, NULL);
	shutdown_timer = evtimer_new(loop_base(control), shutdown_tick, NULL);
	evtimer_add(shutdown_timer, &tv);
}

static void
on_reload(evutil_socket_t sig, short what, void *arg)
{
	struct config *cfg;
	struct runtime *rt, *old;
	const char *error;
	char *rterr = NULL;

	if ((cfg = config_load(config_path, &error)) == NULL) {
		log_warnx("reload failed: %s; keeping the old configuration",
		    error);
		return;
	}
	config_ref(cfg);	/* one for the runtime, one for qmgr_reload */
	old = runtime_current();
	rt = runtime_new(cfg, old, &rterr);
	runtime_unref(&old);
	if (rt == NULL) {
		log_warnx("reload failed: %s; keeping the old configuration",
		    rterr);
		free(rterr);
		config_unref(&cfg);
		return;
	}
	runtime_swap(rt);
	policy_server_reload();
	qmgr_reload(cfg);
	config_unref(&cfg);
	log_info("reloaded configuration from %s", config_path);
}

int
main(int argc, char *argv[])
{
	struct config *cfg;
	struct runtime *rt;
	struct passwd *pw = NULL;
	struct event *ev_term, *ev_int, *ev_hup;
	const char *error, *debug = NULL;
	char *err = NULL;
	bool daemonize = false, check_only = false, print = false;
	int ch, i, nworkers, nfilters;

	while ((ch = getopt(argc, argv, "c:dnPD:")) != -1) {
		switch (ch) {
		case 'c':
			config_path = optarg;
			break;
		case 'd':
			daemonize = true;
			break;
		case 'n':
			check_only = true;
			break;
		case 'P':
			print = true;
			break;
		case 'D':
			debug = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	/* -d changes to /: SIGHUP must still find the file */
	if ((abs_config = realpath(config_path, NULL)) != NULL)
		config_path = abs_config;
	log_init("posternd", false);
	signal(SIGPIPE, SIG_IGN);

	if ((cfg = config_load(config_path, &error)) == NULL) {
		fprintf(stderr, "posternd: fatal: %s\n", error);
		return 1;
	}
	if (print) {
		config_print(cfg, stdout);
		config_unref(&cfg);
		return 0;
	}
	log_set_debug(debug != NULL ? debug : cfg->debug_subsystems);
	config_ref(cfg);	/* the runtime takes one, qmgr another */
	if ((rt = runtime_new(cfg, NULL, &err)) == NULL) {
		fprintf(stderr, "posternd: fatal: %s: %s\n", config_path, err);
		return 1;
	}
	if (check_only) {
		printf("posternd: %s: configuration OK\n", config_path);
		runtime_unref(&rt);
		config_unref(&cfg);
		return 0;
	}
	runtime_swap(rt);

	if (geteuid() == 0) {
		if ((pw = getpwnam(cfg->mail_owner)) == NULL)
			fatalx("mail_owner %s: no such user", cfg->mail_owner);
		if (pw->pw_uid == 0)
			fatalx("mail_owner %s must not be root",
			    cfg->mail_owner);
		prepare_dirs(cfg, pw->pw_uid, pw->pw_gid);
	}
	if (spool_init(cfg->queue_directory, &error) == -1)
		fatalx("%s", error);

	if (daemonize) {
		if (daemon(0, 0) == -1)
			fatal("daemon");
		log_init("posternd", true);
	}

	nloops = cfg->loop_threads > 0 ? cfg->loop_threads : ncpus();
	loops = xcalloc((size_t)nloops, sizeof(*loops));
	for (i = 0; i < nloops; i++)
		loops[i] = loop_new("smtpd");
	if (listeners_open(cfg, loops, nloops, &err) == -1)
		fatalx("%s", err);
	if (pw != NULL)
		drop_privileges(pw);

	nworkers = cfg->worker_threads > 0 ? cfg->worker_threads :
	    2 * ncpus();
	/* filter stages mostly wait (DNS, helpers): more of them */
	nfilters = cfg->filter_threads > 0 ? cfg->filter_threads :
	    FILTER_THREADS_PER_CPU * ncpus();
	if (pool_start(nworkers, nfilters) == -1)
		fatal("cannot start the worker pool");
	if (qmgr_start(cfg, &error) == -1)
		fatalx("queue manager: %s", error);

	control = loop_new("control");
	ev_term = evsignal_new(loop_base(control), SIGTERM, on_terminate, NULL);
	ev_int = evsignal_new(loop_base(control), SIGINT, on_terminate, NULL);
	ev_hup = evsignal_new(loop_base(control), SIGHUP, on_reload, NULL);
	evsignal_add(ev_term, NULL);
	evsignal_add(ev_int, NULL);
	evsignal_add(ev_hup, NULL);

	listeners_enable();
	for (i = 0; i < nloops; i++)
		if (loop_start(loops[i]) == -1)
			fatal("cannot start loop thread");
	log_info("daemon started -- version %s, configuration %s",
	    PACKAGE_VERSION, config_path);

	loop_run_here(control);

	qmgr_stop();
	for (i = 0; i < nloops; i++) {
		loop_exit(loops[i]);
		loop_join(loops[i]);
	}
	pool_stop();
	log_info("daemon stopped");
	event_free(ev_term);
	event_free(ev_int);
	event_free(ev_hup);
	if (shutdown_timer != NULL)
		event_free(shutdown_timer);
	runtime_swap(NULL);
	config_unref(&cfg);
	return 0;
}

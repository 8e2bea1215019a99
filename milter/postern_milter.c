/*
 * postern_milter.c - postern-milter: Postern's filter chain (the
 * smtpd_filters of postern.conf) offered to an existing MTA through
 * libmilter, so that Postfix's smtpd_milters gets Postern's DKIM
 * signing, SPF, regex rules and sender-identity checks.
 *
 * This file is the program: options, configuration, the listening
 * socket, the privilege drop, the reload thread and libmilter's main
 * loop. The callbacks are in milter_host.c.
 *
 * Signals: libmilter's smfi_main blocks SIGHUP, SIGTERM and SIGINT and
 * handles them in its own thread: SIGTERM and SIGHUP stop accepting and
 * let smfi_main return once the connections in progress end; SIGINT
 * aborts them. We then free the chain (SPF helpers stop) and exit 0.
 *
 * Reload is SIGUSR1, not SIGHUP as in posternd: libmilter's signal
 * thread sigwaits a fixed set that includes SIGHUP (libmilter/signal.c,
 * no API changes it), and a process-directed signal goes to any one
 * thread waiting for it, so a second waiter could not tell a reload
 * from a stop. SIGUSR1 is blocked first thing in main, so every thread
 * (the chain's, libmilter's) inherits the mask and only our reload
 * thread's sigwait takes it. The reload reads the -c file again, builds
 * a new runtime with the checks of the start and swaps it in
 * (milter_host_reload); a configuration that does not load or build
 * leaves the old one in force, with a warning.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

#include "config/config.h"
#include "log.h"
#include "milter_host.h"
#include "xmalloc.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG	SYSCONFDIR "/postern/postern.conf"
#define DEFAULT_SOCKET	"inet:8892@127.0.0.1"
#define MILTER_NAME	"postern-milter"

static const char *reload_path;		/* borrowed: main's config_path */
/* held during a reload; reload_stopping: no reload from now on */
static pthread_mutex_t reload_lock = PTHREAD_MUTEX_INITIALIZER;
static bool reload_stopping;

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: postern-milter [-dfnv] [-c config_file] "
	    "[-p inet:port@host | unix:/path] [-T timeout]\n");
	exit(2);
}

/*
 * absolute_conn - conn with a relative unix socket path made absolute
 * (owned), so that -d's chdir("/") does not lose it: libmilter unlinks
 * the socket by that path when it stops. NULL when conn needs no change.
 */
static char *
absolute_conn(const char *conn)
{
	const char *path;
	char *cwd, *abs;
	size_t plen;

	if (strncmp(conn, "unix:", 5) == 0)
		plen = 5;
	else if (strncmp(conn, "local:", 6) == 0)
		plen = 6;
	else
		return NULL;
	path = conn + plen;
	if (path[0] == '/' || path[0] == '\0')
		return NULL;
	if ((cwd = getcwd(NULL, 0)) == NULL)
		fatal("getcwd");
	abs = xasprintf("%.*s%s/%s", (int)plen, conn, cwd, path);
	free(cwd);
	return abs;
}

/*
 * drop_privileges - from root to mail_owner, verified: nothing the MTA
 * sends is parsed as root (the socket and the DKIM keys are open by now)
 */
static void
drop_privileges(const struct config *cfg, const char *conn)
{
	struct passwd *pw;

	if ((pw = getpwnam(cfg->mail_owner)) == NULL)
		fatalx("mail_owner %s: no such user", cfg->mail_owner);
	if (pw->pw_uid == 0)
		fatalx("mail_owner %s must not be root", cfg->mail_owner);
	/* the MTA's user must be in mail_owner's group to connect */
	if (strncmp(conn, "unix:", 5) == 0 || strncmp(conn, "local:", 6) == 0) {
		const char *path = strchr(conn, ':') + 1;

		if (chown(path, pw->pw_uid, pw->pw_gid) == -1 ||
		    chmod(path, 0660) == -1)
			fatal("%s", path);
	}
	if (setgroups(1, &pw->pw_gid) == -1 || setgid(pw->pw_gid) == -1 ||
	    setuid(pw->pw_uid) == -1)
		fatal("cannot drop privileges to %s", cfg->mail_owner);
	if (setuid(0) != -1 || geteuid() == 0)
		fatalx("privileges were not dropped");
	log_info("running as %s (uid %ld)", pw->pw_name, (long)pw->pw_uid);
}

/*
 * reload - read the configuration again and put it in force; on any
 * failure the old one stays (the same words as posternd's reload)
 */
static void
reload(void)
{
	struct config *cfg;
	const char *error;
	char *err = NULL;

	if ((cfg = config_load(reload_path, &error)) == NULL) {
		log_warnx("reload failed: %s; keeping the old configuration",
		    error);
		return;
	}
	if (milter_host_reload(cfg, &err) == -1) {
		log_warnx("reload failed: %s: %s; keeping the old "
		    "configuration", reload_path, err);
		free(err);
		return;
	}
	log_info("reloaded configuration from %s", reload_path);
}

/*
 * reload_main - the reload thread: one reload per SIGUSR1 (signals that
 * arrive during a reload are merged into one more). It never returns:
 * main sets reload_stopping and the process exits with the thread in
 * sigwait. (Ending it would leak config_load's per-thread error string
 * of a failed reload, which LeakSanitizer reports.)
 */
static void *
reload_main(void *arg)
{
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		pthread_mutex_lock(&reload_lock);
		if (!reload_stopping)
			reload();
		pthread_mutex_unlock(&reload_lock);
	}
	return NULL;
}

/* block - block signals in this thread and the threads it creates */
static void
block(const int *sigs, size_t n)
{
	sigset_t set;
	size_t i;

	sigemptyset(&set);
	for (i = 0; i < n; i++)
		sigaddset(&set, sigs[i]);
	if ((errno = pthread_sigmask(SIG_BLOCK, &set, NULL)) != 0)
		fatal("pthread_sigmask");
}

int
main(int argc, char *argv[])
{
	static const int reload_sig[] = { SIGUSR1 };
	static const int milter_sigs[] = { SIGHUP, SIGTERM, SIGINT };
	struct smfiDesc desc;
	struct config *cfg;
	pthread_t reloader;
	const char *config_path = DEFAULT_CONFIG, *conn = DEFAULT_SOCKET;
	const char *error;
	char *err = NULL, *abs_config, *abs_conn = NULL;
	bool daemonize = false, check_only = false, verbose = false;
	int ch, rc, timeout = -1;

	while ((ch = getopt(argc, argv, "c:dfnp:T:v")) != -1) {
		switch (ch) {
		case 'c':
			config_path = optarg;
			break;
		case 'd':
			daemonize = true;
			break;
		case 'f':
			daemonize = false;	/* the default */
			break;
		case 'n':
			check_only = true;
			break;
		case 'p':
			conn = optarg;
			break;
		case 'T':
			timeout = atoi(optarg);
			if (timeout <= 0)
				usage();
			break;
		case 'v':
			verbose = true;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if ((abs_config = realpath(config_path, NULL)) != NULL)
		config_path = abs_config;
	log_init(MILTER_NAME, false);
	signal(SIGPIPE, SIG_IGN);
	/*
	 * Before any thread exists (the chain may start some): SIGUSR1 is
	 * only ever taken by the reload thread's sigwait; libmilter's set
	 * waits, pending, for its signal thread, rather than killing the
	 * process through a thread that does not block it
	 */
	block(reload_sig, 1);
	if (!check_only)
		block(milter_sigs, sizeof(milter_sigs) /
		    sizeof(milter_sigs[0]));

	if ((cfg = config_load(config_path, &error)) == NULL) {
		fprintf(stderr, MILTER_NAME ": fatal: %s\n", error);
		return 1;
	}
	log_set_debug(verbose ? "all" : cfg->debug_subsystems);
	if (milter_host_init(cfg, &err) == -1) {
		fprintf(stderr, MILTER_NAME ": fatal: %s: %s\n", config_path,
		    err);
		free(err);
		config_unref(&cfg);
		return 1;
	}
	if (check_only) {
		printf(MILTER_NAME ": %s: configuration OK\n", config_path);
		milter_host_deinit();
		config_unref(&cfg);
		free(abs_config);
		return 0;
	}

	if ((abs_conn = absolute_conn(conn)) != NULL)
		conn = abs_conn;
	milter_host_desc(&desc, MILTER_NAME);
	if (smfi_register(desc) != MI_SUCCESS)
		fatalx("smfi_register failed");
	if (smfi_setconn((char *)conn) != MI_SUCCESS)
		fatalx("smfi_setconn %s failed", conn);
	if (timeout > 0 && smfi_settimeout(timeout) != MI_SUCCESS)
		fatalx("smfi_settimeout %d failed", timeout);
	/* listen now, as root if we are: a stale unix socket is removed */
	if (smfi_opensocket(true) != MI_SUCCESS)
		fatalx("cannot listen on %s", conn);
	if (geteuid() == 0)
		drop_privileges(cfg, conn);
	if (daemonize) {
		if (daemon(0, 0) == -1)
			fatal("daemon");
		log_init(MILTER_NAME, true);
	}
	/* after daemon(): a fork keeps only the thread that calls it */
	reload_path = config_path;
	if ((errno = pthread_create(&reloader, NULL, reload_main, NULL)) != 0)
		fatal("cannot start the reload thread");
	log_info("milter started -- version %s, configuration %s, "
	    "listening on %s", PACKAGE_VERSION, config_path, conn);

	rc = smfi_main();

	/* a reload in progress ends first; a later one never starts */
	pthread_mutex_lock(&reload_lock);
	reload_stopping = true;
	pthread_mutex_unlock(&reload_lock);

	log_info("milter stopped%s", rc == MI_SUCCESS ? "" :
	    " (smfi_main failed)");
	milter_host_deinit();
	config_unref(&cfg);
	free(abs_config);
	free(abs_conn);
	return rc == MI_SUCCESS ? 0 : 1;
}

/*
 * postern_milter.c - postern-milter: Postern's filter chain (the
 * smtpd_filters of postern.conf) offered to an existing MTA through
 * libmilter, so that Postfix's smtpd_milters gets Postern's DKIM
 * signing, SPF, regex rules and sender-identity checks.
 *
 * This file is the program: options, configuration, the listening
 * socket, the privilege drop and libmilter's main loop. The callbacks
 * are in milter_host.c.
 *
 * Signals: libmilter's smfi_main blocks SIGHUP, SIGTERM and SIGINT and
 * handles them in its own thread: SIGTERM and SIGHUP stop accepting and
 * let smfi_main return once the connections in progress end; SIGINT
 * aborts them. We then free the chain (SPF helpers stop) and exit 0.
 * There is no reload: restart to read a new configuration.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <grp.h>
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

int
main(int argc, char *argv[])
{
	struct smfiDesc desc;
	struct config *cfg;
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
	log_info("milter started -- version %s, configuration %s, "
	    "listening on %s", PACKAGE_VERSION, config_path, conn);

	rc = smfi_main();

	log_info("milter stopped%s", rc == MI_SUCCESS ? "" :
	    " (smfi_main failed)");
	milter_host_deinit();
	config_unref(&cfg);
	free(abs_config);
	free(abs_conn);
	return rc == MI_SUCCESS ? 0 : 1;
}

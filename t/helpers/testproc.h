/*
 * testproc.h - helpers for unit tests that run real peers on loopback
 * (dnsmasq, smtp-sink): a free port, start a program, wait until it
 * listens, and kill everything started on every exit path (atexit, and
 * PR_SET_PDEATHSIG when the test itself dies).
 *
 * Header-only (static functions) so each test stays one program.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_TESTPROC_H
#define POSTERN_TESTPROC_H

#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TESTPROC_MAX	32

static pid_t testproc_pids[TESTPROC_MAX];
static int testproc_n;

/* testproc_kill_all - SIGTERM then SIGKILL every child still running */
static void __attribute__((unused))
testproc_kill_all(void)
{
	int i, tries;

	for (i = 0; i < testproc_n; i++) {
		if (testproc_pids[i] <= 0)
			continue;
		kill(testproc_pids[i], SIGTERM);
		for (tries = 0; tries < 50; tries++) {
			if (waitpid(testproc_pids[i], NULL, WNOHANG) != 0)
				break;
			usleep(20000);
		}
		if (tries == 50) {
			kill(testproc_pids[i], SIGKILL);
			waitpid(testproc_pids[i], NULL, 0);
		}
		testproc_pids[i] = 0;
	}
	testproc_n = 0;
}

/* testproc_kill - stop one child started by testproc_spawn */
static void __attribute__((unused))
testproc_kill(pid_t pid)
{
	int i;

	for (i = 0; i < testproc_n; i++)
		if (testproc_pids[i] == pid) {
			kill(pid, SIGTERM);
			waitpid(pid, NULL, 0);
			testproc_pids[i] = 0;
		}
}

static void
testproc_on_signal(int sig)
{
	testproc_kill_all();
	signal(sig, SIG_DFL);
	raise(sig);
}

/*
 * testproc_spawn - run argv with stdout/stderr to logfile (or inherited
 * when NULL); returns the pid or -1.
 */
static pid_t __attribute__((unused))
testproc_spawn(char *const argv[], const char *logfile)
{
	static bool registered;
	pid_t pid;
	FILE *f;

	if (!registered) {
		atexit(testproc_kill_all);
		signal(SIGINT, testproc_on_signal);
		signal(SIGTERM, testproc_on_signal);
		signal(SIGSEGV, testproc_on_signal);
		signal(SIGABRT, testproc_on_signal);
		registered = true;
	}
	if (testproc_n == TESTPROC_MAX)
		return -1;
	fflush(stdout);
	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		/* Die with the test even if it is killed hard. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (logfile != NULL && (f = fopen(logfile, "w")) != NULL) {
			dup2(fileno(f), 1);
			dup2(fileno(f), 2);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	testproc_pids[testproc_n++] = pid;
	return pid;
}

/*
 * testproc_fork - fork a child that runs test code (a scripted server);
 * returns like fork(2), and the child is killed with the others.
 */
static pid_t __attribute__((unused))
testproc_fork(void)
{
	pid_t pid;

	if (testproc_n == TESTPROC_MAX)
		return -1;
	fflush(stdout);
	if ((pid = fork()) == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		testproc_n = 0;	/* the child owns no other process */
		return 0;
	}
	if (pid > 0)
		testproc_pids[testproc_n++] = pid;
	return pid;
}

/* testproc_free_port - a port free for TCP and UDP on 127.0.0.1 */
static int __attribute__((unused))
testproc_free_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int s, u, port = -1, tries;

	for (tries = 0; tries < 20 && port == -1; tries++) {
		s = socket(AF_INET, SOCK_STREAM, 0);
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (bind(s, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
		    getsockname(s, (struct sockaddr *)&sin, &len) == 0) {
			u = socket(AF_INET, SOCK_DGRAM, 0);
			if (bind(u, (struct sockaddr *)&sin, sizeof(sin)) == 0)
				port = ntohs(sin.sin_port);
			close(u);
		}
		close(s);
	}
	return port;
}

/* testproc_wait_tcp - wait up to ms until 127.0.0.1:port accepts */
static bool __attribute__((unused))
testproc_wait_tcp(int port, int ms)
{
	struct sockaddr_in sin;
	int s, waited;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((unsigned short)port);
	for (waited = 0; waited < ms; waited += 20) {
		s = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(s, (struct sockaddr *)&sin, sizeof(sin)) == 0) {
			close(s);
			return true;
		}
		close(s);
		usleep(20000);
	}
	return false;
}

#define TESTPROC_DNSMASQ	"/usr/sbin/dnsmasq"

/*
 * testproc_dnsmasq - start dnsmasq in the foreground on 127.0.0.1 (a free
 * port, no upstream, no /etc/hosts) serving the configuration lines in
 * zone; its files go into dir (dnsmasq.conf, dnsmasq.log). Returns the
 * port once it accepts TCP, or -1 with a "Bail out!" line printed.
 */
static int __attribute__((unused))
testproc_dnsmasq(const char *dir, const char *zone)
{
	char conf[512], logf[512], confarg[600];
	char *argv[] = { TESTPROC_DNSMASQ, "-k", confarg, "--pid-file=",
	    "--log-facility=-", NULL };
	FILE *f;
	int port;

	if ((port = testproc_free_port()) == -1) {
		printf("Bail out! no free port for dnsmasq\n");
		return -1;
	}
	snprintf(conf, sizeof(conf), "%s/dnsmasq.conf", dir);
	snprintf(logf, sizeof(logf), "%s/dnsmasq.log", dir);
	if ((f = fopen(conf, "w")) == NULL) {
		printf("Bail out! %s: cannot write\n", conf);
		return -1;
	}
	fprintf(f, "port=%d\nlisten-address=127.0.0.1\nbind-interfaces\n"
	    "no-resolv\nno-hosts\nno-poll\nlocal=/example.test/\n"
	    "user=root\n%s", port, zone);
	fclose(f);
	snprintf(confarg, sizeof(confarg), "--conf-file=%s", conf);
	if (testproc_spawn(argv, logf) == -1 ||
	    !testproc_wait_tcp(port, 5000)) {
		printf("Bail out! dnsmasq did not start (%s)\n", logf);
		return -1;
	}
	return port;
}

/* testproc_dnsmasq_remove - dnsmasq's files and dir, once it is stopped */
static void __attribute__((unused))
testproc_dnsmasq_remove(const char *dir)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/dnsmasq.conf", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/dnsmasq.log", dir);
	unlink(path);
	rmdir(dir);
}

/*
 * testproc_silent_udp - a UDP socket on 127.0.0.1 that nobody reads: a DNS
 * server that never answers. Returns the fd (its port in *port_r), or -1
 * with a "Bail out!" line printed.
 */
static int __attribute__((unused))
testproc_silent_udp(int *port_r)
{
	struct sockaddr_in sin;
	socklen_t slen = sizeof(sin);
	int fd;

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd == -1 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &slen) == -1) {
		printf("Bail out! no silent socket\n");
		if (fd != -1)
			close(fd);
		return -1;
	}
	*port_r = ntohs(sin.sin_port);
	return fd;
}

#endif

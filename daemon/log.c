/*
 * log.c - event logging to stderr or syslog; see log.h.
 *
 * Each line is formatted into a local buffer and written with one write(2)
 * (or one syslog(3) call), so that lines of concurrent threads never
 * interleave.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define LOG_LINE_MAX	4096

static const char *log_progname = "posternd";
static bool log_to_syslog;
static char log_debug_list[256];

void
log_init(const char *progname, bool to_syslog)
{
	log_progname = progname;
	log_to_syslog = to_syslog;
	if (to_syslog)
		openlog(progname, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void
log_set_debug(const char *subsystems)
{
	snprintf(log_debug_list, sizeof(log_debug_list), ",%s,",
	    subsystems == NULL ? "" : subsystems);
}

bool
log_debug_enabled(const char *subsystem)
{
	char key[64];

	if (log_debug_list[0] == '\0' || strcmp(log_debug_list, ",,") == 0)
		return false;
	if (strstr(log_debug_list, ",all,") != NULL)
		return true;
	snprintf(key, sizeof(key), ",%s,", subsystem);
	return strstr(log_debug_list, key) != NULL;
}

/* emit - one line, whole, to the configured destination */
static void
emit(int prio, const char *fmt, va_list ap, const char *suffix)
{
	char line[LOG_LINE_MAX];
	char stamp[32];
	struct tm tm;
	time_t now;
	size_t len;
	int n;

	n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n < 0)
		return;
	len = strlen(line);
	if (suffix != NULL)
		snprintf(line + len, sizeof(line) - len, ": %s", suffix);
	if (log_to_syslog) {
		syslog(prio, "%s", line);
		return;
	}
	now = time(NULL);
	localtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);
	{
		char out[LOG_LINE_MAX + 128];
		int m;

		m = snprintf(out, sizeof(out), "%s %s[%ld]: %s%s\n", stamp,
		    log_progname, (long)getpid(),
		    prio == LOG_WARNING ? "warning: " :
		    prio == LOG_CRIT ? "fatal: " : "", line);
		if (m > 0) {
			len = (size_t)m < sizeof(out) ? (size_t)m :
			    sizeof(out) - 1;
			if (write(STDERR_FILENO, out, len) < 0)
				return;
		}
	}
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(LOG_INFO, fmt, ap, NULL);
	va_end(ap);
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	emit(LOG_WARNING, fmt, ap, strerror(saved));
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(LOG_WARNING, fmt, ap, NULL);
	va_end(ap);
}

void
log_debug(const char *subsystem, const char *fmt, ...)
{
	va_list ap;

	if (!log_debug_enabled(subsystem))
		return;
	va_start(ap, fmt);
	emit(LOG_DEBUG, fmt, ap, NULL);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	emit(LOG_CRIT, fmt, ap, strerror(saved));
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(LOG_CRIT, fmt, ap, NULL);
	va_end(ap);
	exit(1);
}

char *
log_escape(char *out, size_t n, const char *s)
{
	size_t o = 0;
	unsigned char c;

	if (n == 0)
		return out;
	for (; *s != '\0' && o + 1 < n; s++) {
		c = (unsigned char)*s;
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			out[o++] = (char)c;
			continue;
		}
		if (o + 4 >= n)
			break;
		snprintf(out + o, n - o, "\\%03o", c);
		o += 4;
	}
	out[o] = '\0';
	return out;
}

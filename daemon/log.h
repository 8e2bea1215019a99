/*
 * log.h - one line per event, to stderr (foreground) or syslog (daemon).
 *
 * Lines follow the Postfix-like form of doc/logging.md: the queue ID (or
 * NOQUEUE) first, then key=value fields. Callers format the line; this
 * module only decides where it goes and keeps lines whole across threads.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_LOG_H
#define POSTERN_LOG_H

#include <stdbool.h>

/* log_init - to_syslog: send to syslog(3) (mail facility), else stderr */
void	log_init(const char *progname, bool to_syslog);
/*
 * log_set_debug - turn debug tracing on for a comma-separated list of
 * subsystems, or "all"
 */
void	log_set_debug(const char *subsystems);
bool	log_debug_enabled(const char *subsystem);

void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
/* log_warn - an error the operator must fix; appends strerror(errno) */
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
/* log_warnx - like log_warn without errno */
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *subsystem, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
/* fatal, fatalx - our own bug or an unusable environment: log and exit 1 */
void	fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

/*
 * log_escape - copy s into out (size n), replacing bytes that are not
 * printable ASCII with \ooo escapes, so that client-supplied text cannot
 * forge log lines. Truncates; always NUL-terminates. Returns out.
 */
char	*log_escape(char *out, size_t n, const char *s);

#endif

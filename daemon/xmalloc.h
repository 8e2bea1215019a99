/*
 * xmalloc.h - allocation that never returns NULL.
 *
 * Running out of memory in a mail relay is not a condition any caller can
 * recover from sensibly, so these exit with a log line instead of making
 * every call site check.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_XMALLOC_H
#define POSTERN_XMALLOC_H

#include <stdarg.h>
#include <stddef.h>

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xreallocarray(void *, size_t, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);
/* xasprintf - formatted string the caller owns */
char	*xasprintf(const char *, ...) __attribute__((format(printf, 1, 2)));
char	*xvasprintf(const char *, va_list)
	    __attribute__((format(printf, 1, 0)));

#endif

/*
 * fixtures.h - the unit tests' fixture directory, t/unit/data/config:
 * its absolute path (matchlist "/file" elements must be absolute) and
 * "@DIR@" substitution in table-driven cases; client addresses for
 * address lookups.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_FIXTURES_H
#define POSTERN_FIXTURES_H

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

/* data_dir - absolute path of the fixtures */
static const char * __attribute__((unused))
data_dir(void)
{
	static char dir[4096];
	const char *srcdir = getenv("srcdir");
	char rel[4096], *abs;

	if (dir[0] != '\0')
		return dir;
	snprintf(rel, sizeof(rel), "%s/t/unit/data/config",
	    srcdir != NULL ? srcdir : ".");
	if ((abs = realpath(rel, NULL)) == NULL) {
		printf("# cannot find the fixtures in %s\n", rel);
		snprintf(dir, sizeof(dir), "%s", rel);
	} else {
		snprintf(dir, sizeof(dir), "%s", abs);
		free(abs);
	}
	return dir;
}

/* with_dir - tmpl with every "@DIR@" replaced by data_dir() (caller frees) */
static char * __attribute__((unused))
with_dir(const char *tmpl)
{
	const char *at = strstr(tmpl, "@DIR@");
	char *rest, *out;

	if (at == NULL)
		return xstrdup(tmpl);
	rest = with_dir(at + 5);
	out = xasprintf("%.*s%s%s", (int)(at - tmpl), tmpl, data_dir(), rest);
	free(rest);
	return out;
}

/* make_sa - ip ("192.0.2.1" or "2001:db8::1") as a sockaddr, port 0 */
static void __attribute__((unused))
make_sa(const char *ip, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(ip, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		if (inet_pton(AF_INET6, ip, &s6->sin6_addr) != 1)
			printf("# bad test address %s\n", ip);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		if (inet_pton(AF_INET, ip, &s4->sin_addr) != 1)
			printf("# bad test address %s\n", ip);
	}
}

#endif

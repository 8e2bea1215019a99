/*
 * fixtures.h - the unit tests' fixture directory, t/unit/data/config:
 * its absolute path (matchlist "/file" elements must be absolute) and
 * "@DIR@" substitution in table-driven cases.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_FIXTURES_H
#define POSTERN_FIXTURES_H

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

#endif

/*
 * auth_results.c - removing forged Authentication-Results fields.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth_results.h"
#include "message_edit.h"

#define FIELD	"Authentication-Results"

/* skip_cfws - past whitespace, line folding and (nested) comments */
static const char *
skip_cfws(const char *p)
{
	int depth;

	for (;;) {
		while (isspace((unsigned char)*p))
			p++;
		if (*p != '(')
			return p;
		for (depth = 0; *p != '\0'; p++) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			else if (*p == '(')
				depth++;
			else if (*p == ')' && --depth == 0) {
				p++;
				break;
			}
		}
	}
}

/* claims - the field's authserv-id is id */
static bool
claims(const struct header_field *f, const char *id)
{
	const char *p = strchr(f->raw, ':');
	size_t n, len = strlen(id);

	if (p == NULL)
		return false;
	p = skip_cfws(p + 1);
	for (n = 0; p[n] != '\0' && p[n] != ';' && p[n] != '(' &&
	    !isspace((unsigned char)p[n]); n++)
		;
	return n == len && strncasecmp(p, id, len) == 0;
}

size_t
auth_results_strip(struct buf *headers, const char *authserv_id)
{
	struct header_list hl;
	size_t i, kept = 0, removed = 0;

	if (headers->len == 0 || strcasestr(headers->data, FIELD) == NULL ||
	    header_list_parse(&hl, headers->data, headers->len) == -1)
		return 0;
	for (i = 0; i < hl.n; i++) {
		if (strcasecmp(hl.fields[i].name, FIELD) == 0 &&
		    claims(&hl.fields[i], authserv_id)) {
			free(hl.fields[i].name);
			free(hl.fields[i].raw);
			removed++;
			continue;
		}
		hl.fields[kept++] = hl.fields[i];
	}
	hl.n = kept;
	if (removed > 0) {
		buf_reset(headers);
		header_list_format(&hl, headers);
	}
	header_list_deinit(&hl);
	return removed;
}

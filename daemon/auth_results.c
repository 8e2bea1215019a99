/*
 * auth_results.c - Authentication-Results (RFC 8601): incoming fields
 * that claim our authserv-id are removed before any filter runs (RFC 8601
 * section 5); the filters that add results (spf, dkim, sender) write
 * their values through the escaping here. Owns nothing between calls.
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

/* plain - every byte is atext, "." or "@" (RFC 5322 3.2.3) */
static bool
plain(const char *v)
{
	if (*v == '\0')
		return false;
	for (; *v != '\0'; v++)
		if (!isalnum((unsigned char)*v) &&
		    strchr("!#$%&'*+-/=?^_`{|}~.@", *v) == NULL)
			return false;
	return true;
}

void
auth_results_add_value(struct buf *out, const char *value)
{
	const char *p;

	if (plain(value)) {
		buf_append(out, value, strlen(value));
		return;
	}
	buf_append(out, "\"", 1);
	for (p = value; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			continue;
		if (*p == '"' || *p == '\\')
			buf_append(out, "\\", 1);
		buf_append(out, p, 1);
	}
	buf_append(out, "\"", 1);
}

void
auth_results_add_comment(struct buf *out, const char *text)
{
	const char *p;
	char c;

	if (*text == '\0')
		return;
	buf_append(out, " (", 2);
	for (p = text; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			continue;
		c = *p == '(' || *p == ')' || *p == '\\' ? ' ' : *p;
		buf_append(out, &c, 1);
	}
	buf_append(out, ")", 1);
}

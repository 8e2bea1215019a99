/*
 * regex_action.c - the result of a header_checks/body_checks rule, read
 * the way Postfix's header_checks(5) reads it: an action word, case
 * ignored, then optional text.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "regex_action.h"

static const struct {
	const char *word;
	enum regex_action_kind kind;
} action_words[] = {
	{ "REJECT", REGEX_REJECT },
	{ "DEFER", REGEX_DEFER },
	{ "DISCARD", REGEX_DISCARD },
	{ "HOLD", REGEX_HOLD },
	{ "WARN", REGEX_WARN },
	{ "INFO", REGEX_INFO },
	{ "PREPEND", REGEX_PREPEND },
	{ "REPLACE", REGEX_REPLACE },
	{ "IGNORE", REGEX_IGNORE },
	{ "STRIP", REGEX_STRIP },
	{ "DUNNO", REGEX_DUNNO },
	{ "OK", REGEX_DUNNO },
	{ "PASS", REGEX_DUNNO },
	{ "REDIRECT", REGEX_REDIRECT },
	{ "BCC", REGEX_BCC },
};

/*
 * enhanced_code - "5.7.1 " at the start of text: its length including the
 * space, or 0 (RFC 3463: class.subject.detail, 1-3 digits each)
 */
static size_t
enhanced_code(const char *t, char want_class)
{
	size_t i = 0, n;
	int part;

	if (t[0] != want_class || t[1] != '.')
		return 0;
	i = 2;
	for (part = 0; part < 2; part++) {
		for (n = 0; isdigit((unsigned char)t[i + n]); n++)
			;
		if (n == 0 || n > 3)
			return 0;
		i += n;
		if (t[i] != (part == 0 ? '.' : ' '))
			return 0;
		i++;
	}
	return i;
}

int
regex_action_parse(const char *result, struct regex_action *a)
{
	size_t i, n;
	char cls;

	memset(a, 0, sizeof(*a));
	a->kind = REGEX_UNKNOWN;
	result += strspn(result, " \t");
	n = strcspn(result, " \t");
	a->text = result + n;
	a->text += strspn(a->text, " \t");
	for (i = 0; i < sizeof(action_words) / sizeof(*action_words); i++)
		if (strlen(action_words[i].word) == n &&
		    strncasecmp(result, action_words[i].word, n) == 0) {
			a->kind = action_words[i].kind;
			break;
		}
	if (a->kind == REGEX_UNKNOWN)
		return -1;
	if (a->kind == REGEX_REJECT || a->kind == REGEX_DEFER) {
		cls = a->kind == REGEX_REJECT ? '5' : '4';
		if ((n = enhanced_code(a->text, cls)) > 0) {
			snprintf(a->enhanced, sizeof(a->enhanced), "%.*s",
			    (int)(n - 1), a->text);
			a->text += n;
		} else
			snprintf(a->enhanced, sizeof(a->enhanced), "%c.7.1",
			    cls);
	}
	if ((a->kind == REGEX_PREPEND || a->kind == REGEX_REPLACE ||
	    a->kind == REGEX_REDIRECT || a->kind == REGEX_BCC) &&
	    *a->text == '\0')
		return -1;
	return 0;
}

const char *
regex_action_name(enum regex_action_kind k)
{
	size_t i;

	for (i = 0; i < sizeof(action_words) / sizeof(*action_words); i++)
		if (action_words[i].kind == k)
			return action_words[i].word;
	return "UNKNOWN";
}

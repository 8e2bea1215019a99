/*
 * filter.c - helpers shared by every filter: replies, edits, the registry
 * of filters by name.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <netinet/in.h>

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "xmalloc.h"

extern const struct filter_ops filter_relay;
extern const struct filter_ops filter_sender;
extern const struct filter_ops filter_regex;
extern const struct filter_ops filter_spf;
extern const struct filter_ops filter_dkim;
extern const struct filter_ops filter_policy;
extern const struct filter_ops filter_milters;

/* every filter smtpd_filters may name */
static const struct filter_ops *const filter_registry[] = {
	&filter_relay,
	&filter_sender,
	&filter_regex,
	&filter_spf,
	&filter_dkim,
	&filter_policy,
	&filter_milters,
};

const struct filter_ops *
filter_lookup(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(filter_registry) / sizeof(*filter_registry);
	    i++)
		if (strcmp(filter_registry[i]->name, name) == 0)
			return filter_registry[i];
	return NULL;
}

void
filter_set_reply(struct filter_call *call, const char *code,
    const char *enhanced, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(call->reply, sizeof(call->reply), "%s %s ", code,
	    enhanced);
	if (n < 0 || (size_t)n >= sizeof(call->reply))
		return;
	va_start(ap, fmt);
	vsnprintf(call->reply + n, sizeof(call->reply) - (size_t)n, fmt, ap);
	va_end(ap);
}

void
filter_edits_init(struct filter_edits *e)
{
	e->head = NULL;
	e->tail = &e->head;
}

/* edit_append - a new edit at the end of the list, returned (owned by e) */
static struct filter_edit *
edit_append(struct filter_edits *e, enum filter_edit_kind kind,
    size_t index, const char *name, const char *value)
{
	struct filter_edit *ed;

	ed = xcalloc(1, sizeof(*ed));
	ed->kind = kind;
	ed->index = index;
	ed->name = name == NULL ? NULL : xstrdup(name);
	ed->value = value == NULL ? NULL : xstrdup(value);
	*e->tail = ed;
	e->tail = &ed->next;
	return ed;
}

void
filter_edits_add(struct filter_edits *e, enum filter_edit_kind kind,
    size_t index, const char *name, const char *value)
{
	(void)edit_append(e, kind, index, name, value);
}

void
filter_edits_add_envelope(struct filter_edits *e, enum filter_edit_kind kind,
    const char *address, const char *args)
{
	struct filter_edit *ed = edit_append(e, kind, 0, NULL, address);

	if (args != NULL && *args != '\0')
		ed->args = xstrdup(args);
}

void
filter_edits_deinit(struct filter_edits *e)
{
	struct filter_edit *ed, *next;

	for (ed = e->head; ed != NULL; ed = next) {
		next = ed->next;
		free(ed->name);
		free(ed->value);
		free(ed->args);
		free(ed);
	}
	filter_edits_init(e);
}

static const char *const stage_names[FILTER_STAGE_COUNT] = {
	"connect", "helo", "auth", "mail", "rcpt", "data", "header", "eoh",
	"body", "eom", "abort", "close",
};

const char *
filter_stage_name(enum filter_stage s)
{
	return s < FILTER_STAGE_COUNT ? stage_names[s] : "?";
}

const char *
filter_verdict_name(enum filter_verdict v)
{
	switch (v) {
	case FILTER_CONTINUE:	return "continue";
	case FILTER_ACCEPT:	return "accept";
	case FILTER_REJECT:	return "reject";
	case FILTER_TEMPFAIL:	return "tempfail";
	case FILTER_DISCARD:	return "discard";
	case FILTER_HOLD:	return "hold";
	case FILTER_DISCONNECT:	return "disconnect";
	}
	return "?";
}

unsigned
filter_sa_port(const struct sockaddr *sa)
{
	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

/*
 * message_edit.c - apply end-of-message edits; see message_edit.h.
 *
 * Semantics follow milter's actions (libmilter smfi_addheader,
 * smfi_insheader, smfi_chgheader, smfi_chgfrom, smfi_addrcpt,
 * smfi_delrcpt, smfi_replacebody) so that filters/milter can map them
 * one to one. Header names must be RFC 5322 2.2 field names; values
 * must not smuggle a line that is not a continuation.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "message_edit.h"
#include "smtp_parser.h"
#include "xmalloc.h"

static bool
name_ok(const char *name)
{
	const unsigned char *p = (const unsigned char *)name;

	if (*p == '\0')
		return false;
	for (; *p != '\0'; p++)
		if (*p <= 32 || *p >= 127 || *p == ':')
			return false;
	return true;
}

/*
 * name_length - of the field name before colon, without the spaces an
 * obsolete "Name : value" puts before it (RFC 5322 4.5.1), so that such
 * a From: or Authentication-Results: is recognized like any other
 */
static size_t
name_length(const char *p, const char *colon)
{
	size_t n = colon != NULL ? (size_t)(colon - p) : 0;

	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	return n;
}

int
header_list_parse(struct header_list *hl, const char *block, size_t len)
{
	const char *p = block, *end = block + len, *eol, *colon;
	struct header_field *f;

	hl->fields = NULL;
	hl->n = 0;
	while (p < end) {
		if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
			eol = end - 1;
		if (*p == ' ' || *p == '\t') {
			if (hl->n == 0)
				return -1;
			size_t have, add = (size_t)(eol - p + 1);

			f = &hl->fields[hl->n - 1];
			have = strlen(f->raw);
			f->raw = xreallocarray(f->raw, 1, have + add + 1);
			memcpy(f->raw + have, p, add);
			f->raw[have + add] = '\0';
		} else {
			colon = memchr(p, ':', (size_t)(eol - p));
			hl->fields = xreallocarray(hl->fields, hl->n + 1,
			    sizeof(*hl->fields));
			f = &hl->fields[hl->n++];
			f->name = xstrndup(p, name_length(p, colon));
			f->raw = xstrndup(p, (size_t)(eol - p + 1));
		}
		p = eol + 1;
	}
	return 0;
}

void
header_list_deinit(struct header_list *hl)
{
	size_t i;

	for (i = 0; i < hl->n; i++) {
		free(hl->fields[i].name);
		free(hl->fields[i].raw);
	}
	free(hl->fields);
	hl->fields = NULL;
	hl->n = 0;
}

void
header_list_format(const struct header_list *hl, struct buf *out)
{
	size_t i;

	for (i = 0; i < hl->n; i++)
		buf_append_str(out, hl->fields[i].raw);
}

const char *
header_field_value(const struct header_field *f, struct buf *out)
{
	const char *v = f->raw + strlen(f->name);
	size_t n;

	buf_reset(out);
	if (*v == ':')
		v++;
	if (*v == ' ')
		v++;
	n = strlen(v);
	if (n >= 2 && v[n - 2] == '\r' && v[n - 1] == '\n')
		n -= 2;
	buf_append(out, v, n);
	return buf_cstr(out);
}

const char *
header_field_raw_value(const struct header_field *f, struct buf *out)
{
	const char *colon = strchr(f->raw, ':');
	size_t n;

	buf_reset(out);
	if (colon != NULL) {
		colon++;
		n = strlen(colon);
		if (n >= 2 && colon[n - 2] == '\r' && colon[n - 1] == '\n')
			n -= 2;
		buf_append(out, colon, n);
	}
	return buf_cstr(out);
}

/* lines_fit - no line longer than RFC 5322 2.1.1's 998 characters */
static bool
lines_fit(const char *field)
{
	const char *p, *nl;

	for (p = field; (nl = strchr(p, '\n')) != NULL; p = nl + 1)
		if (nl - p > 999)	/* 998 plus the CR */
			return false;
	return strlen(p) <= 998;
}

/*
 * make_field - "name: value\r\n" with LF or CRLF folding turned into
 * CRLF; NULL if value has a bare CR or a line that does not continue
 */
static char *
make_field(const char *name, const char *value)
{
	struct buf b;
	const char *v;

	buf_init(&b, 0);
	buf_printf(&b, "%s: ", name);
	for (v = value; *v != '\0'; v++) {
		if (*v == '\r' && v[1] == '\n')
			continue;	/* the LF writes the CRLF */
		if (*v == '\r')
			goto bad;
		if (*v == '\n') {
			if (v[1] != ' ' && v[1] != '\t')
				goto bad;	/* would start a new field */
			buf_append(&b, "\r\n", 2);
			continue;
		}
		buf_append(&b, v, 1);
	}
	buf_append(&b, "\r\n", 2);
	if (!lines_fit(buf_cstr(&b)))
		goto bad;
	return buf_steal(&b);
bad:
	buf_deinit(&b);
	return NULL;
}

static void
insert_field(struct header_list *hl, size_t at, const char *name, char *raw)
{
	if (at > hl->n)
		at = hl->n;
	hl->fields = xreallocarray(hl->fields, hl->n + 1, sizeof(*hl->fields));
	memmove(&hl->fields[at + 1], &hl->fields[at],
	    (hl->n - at) * sizeof(*hl->fields));
	hl->fields[at].name = xstrdup(name);
	hl->fields[at].raw = raw;
	hl->n++;
}

/* change_field - the index-th (1-based) field called name */
static int
change_field(struct header_list *hl, const char *name, size_t index,
    const char *value)
{
	size_t i, seen = 0;
	char *raw = NULL;

	if (value != NULL && (raw = make_field(name, value)) == NULL)
		return -1;
	for (i = 0; i < hl->n; i++) {
		if (strcasecmp(hl->fields[i].name, name) != 0 ||
		    ++seen != (index == 0 ? 1 : index))
			continue;
		free(hl->fields[i].raw);
		if (raw != NULL) {
			hl->fields[i].raw = raw;
			return 0;
		}
		free(hl->fields[i].name);
		memmove(&hl->fields[i], &hl->fields[i + 1],
		    (hl->n - i - 1) * sizeof(*hl->fields));
		hl->n--;
		return 0;
	}
	if (raw != NULL)		/* fewer fields: milter appends */
		insert_field(hl, hl->n, name, raw);
	return 0;
}

/* same_address - equal but for the case of the domain */
static bool
same_address(const char *a, const char *b)
{
	const char *at_a = strrchr(a, '@'), *at_b = strrchr(b, '@');

	if (at_a == NULL || at_b == NULL)
		return strcmp(a, b) == 0;
	return at_a - a == at_b - b && strncmp(a, b, (size_t)(at_a - a)) == 0 &&
	    strcasecmp(at_a, at_b) == 0;
}

/*
 * address_ok - an envelope address a filter may set: printable ASCII or
 * UTF-8, no space, no angle brackets, no control bytes (a CR/LF here
 * would inject commands into the next hop's SMTP session), at most
 * RFC 5321 4.5.3.1.3's path length
 */
static bool
address_ok(const char *a)
{
	const unsigned char *p = (const unsigned char *)a;

	if (strlen(a) > 254)
		return false;
	for (; *p != '\0'; p++)
		if (*p <= 0x20 || *p == 0x7f || *p == '<' || *p == '>')
			return false;
	return true;
}

/* strip_brackets - "<a@b>" -> "a@b" (milter sends either) */
static char *
strip_brackets(const char *v)
{
	size_t n = strlen(v);

	if (n >= 2 && v[0] == '<' && v[n - 1] == '>')
		return xstrndup(v + 1, n - 2);
	return xstrdup(v);
}

/*
 * edit_params - the ESMTP parameters of a CHANGE_FROM or ADD_RCPT parsed
 * as those of a MAIL or RCPT command (the same checks: known names,
 * NOTIFY's words, xtext) into cmd; -1 when they would not pass there.
 * A fixed address stands in for the edit's, checked on its own.
 */
static int
edit_params(const struct filter_edit *e, struct smtp_command *cmd)
{
	const char *err;
	char *line;
	int rc;

	line = xasprintf("%s:<params@edit.invalid> %s",
	    e->kind == FILTER_EDIT_CHANGE_FROM ? "MAIL FROM" : "RCPT TO",
	    e->args);
	rc = smtp_parse_command(line, strlen(line), cmd, &err);
	free(line);
	return rc;
}

/* sender_params - RET= and ENVID= of a CHANGE_FROM into env */
static void
sender_params(struct edit_envelope *env, const struct smtp_command *cmd)
{
	if (cmd->ret != SMTP_RET_NONE) {
		free(env->ret);
		env->ret = xstrdup(cmd->ret == SMTP_RET_FULL ? "FULL" : "HDRS");
	}
	if (cmd->envid_decoded != NULL) {
		free(env->envid);
		env->envid = xstrdup(cmd->envid_decoded);
	}
}

/* add_rcpt - append addr (taken over) with the parameters in cmd */
static void
add_rcpt(struct edit_envelope *env, char *addr,
    const struct smtp_command *cmd)
{
	struct edit_dsn *d;

	/* the recipients before the first with parameters have none */
	if (cmd != NULL && env->dsn == NULL)
		env->dsn = xcalloc(env->nrcpts + 1, sizeof(*env->dsn));
	else if (env->dsn != NULL)
		env->dsn = xreallocarray(env->dsn, env->nrcpts + 1,
		    sizeof(*env->dsn));
	env->rcpts = xreallocarray(env->rcpts, env->nrcpts + 1,
	    sizeof(*env->rcpts));
	env->rcpts[env->nrcpts] = addr;
	if (env->dsn != NULL) {
		d = &env->dsn[env->nrcpts];
		memset(d, 0, sizeof(*d));
		if (cmd != NULL) {
			d->given = true;
			d->notify = cmd->notify;
			d->orcpt = smtp_orcpt_decoded(cmd);
		}
	}
	env->nrcpts++;
}

/* delete_rcpt - the first recipient that is addr, if any */
static void
delete_rcpt(struct edit_envelope *env, const char *addr)
{
	size_t i, rest;

	for (i = 0; i < env->nrcpts; i++) {
		if (!same_address(env->rcpts[i], addr))
			continue;
		rest = env->nrcpts - i - 1;
		free(env->rcpts[i]);
		memmove(&env->rcpts[i], &env->rcpts[i + 1],
		    rest * sizeof(*env->rcpts));
		if (env->dsn != NULL) {
			free(env->dsn[i].orcpt);
			memmove(&env->dsn[i], &env->dsn[i + 1],
			    rest * sizeof(*env->dsn));
		}
		env->nrcpts--;
		return;
	}
}

static int
envelope_edit(struct edit_envelope *env, const struct filter_edit *e,
    const char **error_r)
{
	struct smtp_command cmd;
	bool params;
	char *addr;

	if (e->value == NULL) {
		*error_r = "envelope edit without an address";
		return -1;
	}
	addr = strip_brackets(e->value);
	if (!address_ok(addr) ||
	    (addr[0] == '\0' && e->kind != FILTER_EDIT_CHANGE_FROM)) {
		free(addr);
		*error_r = "bad address in a filter's envelope edit";
		return -1;
	}
	params = e->args != NULL && e->kind != FILTER_EDIT_DELETE_RCPT;
	smtp_command_init(&cmd);
	if (params && edit_params(e, &cmd) == -1) {
		smtp_command_deinit(&cmd);
		free(addr);
		*error_r = "bad ESMTP parameters in a filter's envelope edit";
		return -1;
	}
	switch (e->kind) {
	case FILTER_EDIT_CHANGE_FROM:
		free(env->sender);
		env->sender = addr;
		if (params)
			sender_params(env, &cmd);
		break;
	case FILTER_EDIT_ADD_RCPT:
		add_rcpt(env, addr, params ? &cmd : NULL);
		break;
	default:			/* FILTER_EDIT_DELETE_RCPT */
		delete_rcpt(env, addr);
		free(addr);
		break;
	}
	smtp_command_deinit(&cmd);
	return 0;
}

void
edit_envelope_init(struct edit_envelope *env, const char *sender,
    size_t nrcpts)
{
	memset(env, 0, sizeof(*env));
	env->sender = xstrdup(sender);
	env->nrcpts = nrcpts;
	env->rcpts = xcalloc(nrcpts + 1, sizeof(*env->rcpts));
}

void
edit_envelope_deinit(struct edit_envelope *env)
{
	size_t i;

	for (i = 0; i < env->nrcpts; i++) {
		free(env->rcpts[i]);
		if (env->dsn != NULL)
			free(env->dsn[i].orcpt);
	}
	free(env->rcpts);
	free(env->dsn);
	free(env->sender);
	free(env->ret);
	free(env->envid);
	memset(env, 0, sizeof(*env));
}

int
message_edit_apply(const struct filter_edits *edits, struct header_list *hl,
    struct edit_envelope *env, struct buf **body_r, const char **error_r)
{
	const struct filter_edit *e;
	char *raw;

	*body_r = NULL;
	for (e = edits->head; e != NULL; e = e->next) {
		switch (e->kind) {
		case FILTER_EDIT_ADD_HEADER:
		case FILTER_EDIT_INSERT_HEADER:
		case FILTER_EDIT_CHANGE_HEADER:
			if (e->name == NULL || !name_ok(e->name)) {
				*error_r = "bad header name in a filter edit";
				return -1;
			}
			if (e->kind == FILTER_EDIT_CHANGE_HEADER) {
				if (change_field(hl, e->name, e->index,
				    e->value) == -1)
					goto bad_value;
				break;
			}
			if (e->value == NULL ||
			    (raw = make_field(e->name, e->value)) == NULL)
				goto bad_value;
			insert_field(hl, e->kind == FILTER_EDIT_ADD_HEADER ?
			    hl->n : e->index, e->name, raw);
			break;
		case FILTER_EDIT_CHANGE_FROM:
		case FILTER_EDIT_ADD_RCPT:
		case FILTER_EDIT_DELETE_RCPT:
			if (envelope_edit(env, e, error_r) == -1)
				return -1;
			break;
		case FILTER_EDIT_REPLACE_BODY:
			if (*body_r == NULL) {
				*body_r = xcalloc(1, sizeof(**body_r));
				buf_init(*body_r, 0);
			}
			if (e->value != NULL)
				buf_append_str(*body_r, e->value);
			break;
		}
	}
	if (env->nrcpts == 0) {
		*error_r = "filter edits removed every recipient";
		return -1;
	}
	return 0;
bad_value:
	*error_r = "header value in a filter edit would start a new field";
	return -1;
}

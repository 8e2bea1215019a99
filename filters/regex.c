/*
 * regex.c - the "regex" filter: Postfix's header_checks, mime_header_checks,
 * nested_header_checks and body_checks, plus attachment_checks.
 *
 * Tables are read by config/table_pcre.c, unchanged from Postfix, and
 * compiled once per configuration load. Each input is looked up once;
 * the first matching rule's result is the action (regex_action.h):
 *   - message headers, at end of message, one logical header at a time
 *     in Postfix's form (physical lines joined with "\n"); a header that
 *     does not match as written is tried again with its RFC 2047 encoded
 *     words decoded, so that encoding a phrase does not evade a rule;
 *   - MIME part headers and attached messages' headers, body lines (the
 *     first body_checks_size_limit bytes of each part; text parts
 *     decoded from quoted-printable and base64) and attachments (file
 *     name, then content type), as the body streams by (filters/mime.h).
 * The message headers are checked at end of message on the message as
 * the filters before this one left it, so that PREPEND, REPLACE and
 * IGNORE edit exactly the header that matched.
 *
 * REJECT, DEFER and DISCARD end the message's inspection; HOLD, REDIRECT
 * and BCC are remembered and the checks go on, as in Postfix. Editing a
 * MIME part header or a body line would mean rewriting the body: those
 * actions are logged and not applied (doc/configuration.md says so).
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "config/config.h"
#include "filter.h"
#include "log.h"
#include "message_edit.h"
#include "mime.h"
#include "regex.h"
#include "regex_action.h"
#include "table.h"
#include "xmalloc.h"

#define MIME_MAX_DEPTH	20
#define LOG_TEXT_MAX	200	/* of the matched input, in log lines */

/* the header names of the message as edits leave it (positions, nth) */
struct header_sim {
	char	**names;	/* owned array of owned names */
	size_t	 n, cap;
};

struct regex_tx {
	char	*content_type;		/* owned; top-level, or NULL */
	char	*transfer_encoding;	/* owned */
	struct mime_parser *mime;	/* owned; from the first BODY chunk */
	struct mime_callbacks mime_cb;	/* lent to mime */
	struct filter_call *call;	/* borrowed while feeding the parser */
	const struct config *cfg;	/* borrowed */
	size_t	 part_bytes;		/* body_checks bytes in this part */
	enum filter_verdict verdict;	/* REJECT/TEMPFAIL/DISCARD or not */
	char	 reply[512];
	bool	 hold;
	char	*redirect;		/* owned */
	char	**bcc;			/* owned array of owned addresses */
	size_t	 nbcc;
	struct buf key;			/* NUL-terminated lookup key */
};

static void *
regex_tx_begin(void *instance, const struct filter_conn *conn)
{
	struct regex_tx *t;

	t = xcalloc(1, sizeof(*t));
	t->cfg = conn->config;
	t->verdict = FILTER_CONTINUE;
	buf_init(&t->key, 0);
	return t;
}

static void
regex_tx_end(void *instance, void *state)
{
	struct regex_tx *t = state;
	size_t i;

	if (t == NULL)
		return;
	free(t->content_type);
	free(t->transfer_encoding);
	mime_parser_free(&t->mime);
	free(t->redirect);
	for (i = 0; i < t->nbcc; i++)
		free(t->bcc[i]);
	free(t->bcc);
	buf_deinit(&t->key);
	free(t);
}

static const char *
queue_id(const struct filter_call *call)
{
	return call->tx != NULL && call->tx->queue_id != NULL ?
	    call->tx->queue_id : "NOQUEUE";
}

/* log_action - one line per action taken, Postfix's shape */
static void
log_action(const struct filter_call *call, const struct regex_action *a,
    const char *where, const char *input)
{
	char text[LOG_TEXT_MAX + 1], why[256];

	log_escape(text, sizeof(text), input);
	log_escape(why, sizeof(why), a->text);
	if (a->kind == REGEX_WARN)
		log_warnx("%s: warning: %s %s; from=<%s>%s%s", queue_id(call),
		    where, text, call->tx != NULL ? call->tx->sender : "",
		    *why != '\0' ? ": " : "", why);
	else
		log_info("%s: %s: %s %s; from=<%s>%s%s", queue_id(call),
		    a->kind == REGEX_INFO ? "info" :
		    a->kind == REGEX_STRIP ? "strip" :
		    regex_action_name(a->kind), where, text,
		    call->tx != NULL ? call->tx->sender : "",
		    *why != '\0' ? ": " : "", why);
}

/*
 * lookup - the action for input in table; false when no rule matched (or
 * DUNNO), or the result is not an action (logged)
 */
static bool
lookup(struct regex_tx *t, const struct table *table, const char *input,
    char **result_r, struct regex_action *a)
{
	char text[LOG_TEXT_MAX + 1];

	if ((*result_r = table_lookup_dup(table, input)) == NULL)
		return false;
	if (regex_action_parse(*result_r, a) == -1) {
		log_escape(text, sizeof(text), *result_r);
		log_warnx("%s: %s: unknown action \"%s\"; ignored",
		    queue_id(t->call), table_spec(table), text);
		a->kind = REGEX_DUNNO;
	}
	if (a->kind == REGEX_DUNNO) {
		free(*result_r);
		*result_r = NULL;
		return false;
	}
	return true;
}

static void
add_bcc(struct regex_tx *t, const char *addr)
{
	size_t i;

	for (i = 0; i < t->nbcc; i++)
		if (strcasecmp(t->bcc[i], addr) == 0)
			return;
	t->bcc = xreallocarray(t->bcc, t->nbcc + 1, sizeof(*t->bcc));
	t->bcc[t->nbcc++] = xstrdup(addr);
}

/*
 * take - the actions every input class shares. Returns false for the
 * header edits (PREPEND, REPLACE, IGNORE, STRIP), which the caller
 * applies where it can.
 */
static bool
take(struct regex_tx *t, const struct regex_action *a)
{
	switch (a->kind) {
	case REGEX_REJECT:
	case REGEX_DEFER:
		t->verdict = a->kind == REGEX_REJECT ? FILTER_REJECT :
		    FILTER_TEMPFAIL;
		snprintf(t->reply, sizeof(t->reply), "%s %s %s",
		    a->kind == REGEX_REJECT ? "550" : "450", a->enhanced,
		    *a->text != '\0' ? a->text : a->kind == REGEX_REJECT ?
		    "Message content rejected" : "Message content deferred");
		return true;
	case REGEX_DISCARD:
		t->verdict = FILTER_DISCARD;
		return true;
	case REGEX_HOLD:
		t->hold = true;
		return true;
	case REGEX_REDIRECT:
		if (t->redirect == NULL)
			t->redirect = xstrdup(a->text);
		return true;
	case REGEX_BCC:
		add_bcc(t, a->text);
		return true;
	case REGEX_PREPEND:
	case REGEX_REPLACE:
	case REGEX_IGNORE:
	case REGEX_STRIP:
		return false;
	default:
		return true;
	}
}

/* check - look input up in table and act on it outside the header block */
static void
check(struct regex_tx *t, const struct table *table, const char *where,
    const char *input)
{
	struct regex_action a;
	char *result;

	if (table == NULL || t->verdict != FILTER_CONTINUE ||
	    !lookup(t, table, input, &result, &a))
		return;
	log_action(t->call, &a, where, input);
	if (!take(t, &a))
		log_warnx("%s: %s: %s cannot edit a %s; not applied",
		    queue_id(t->call), table_spec(table),
		    regex_action_name(a.kind), where);
	free(result);
}

/* ---- the body, through the MIME parser ---- */

static const char *
key_of(struct regex_tx *t, const char *text, size_t len)
{
	buf_reset(&t->key);
	buf_append(&t->key, text, len);
	return buf_cstr(&t->key);
}

static void
on_header(void *arg, enum mime_header_class cls, const char *text, size_t len)
{
	struct regex_tx *t = arg;
	const struct table *table = cls == MIME_HEADER_PART ?
	    t->cfg->mime_header_checks : t->cfg->nested_header_checks;

	if (cls == MIME_HEADER_PART)
		t->part_bytes = 0;
	check(t, table, cls == MIME_HEADER_PART ? "mime header" :
	    "nested header", key_of(t, text, len));
}

static void
on_body_line(void *arg, const char *line, size_t len, bool decoded)
{
	struct regex_tx *t = arg;

	if (t->cfg->body_checks == NULL ||
	    t->part_bytes >= t->cfg->body_checks_size_limit)
		return;
	t->part_bytes += len;
	check(t, t->cfg->body_checks, "body", key_of(t, line, len));
}

static void
on_attachment(void *arg, const char *filename, const char *content_type)
{
	struct regex_tx *t = arg;

	if (filename != NULL)
		check(t, t->cfg->attachment_checks, "attachment name",
		    filename);
	check(t, t->cfg->attachment_checks, "attachment type", content_type);
}

static bool
wants_body(const struct config *cfg)
{
	return cfg->body_checks != NULL || cfg->mime_header_checks != NULL ||
	    cfg->nested_header_checks != NULL || cfg->attachment_checks != NULL;
}

/* keep_first - the first value of a header the MIME parser needs */
static void
keep_first(char **slot, const char *value)
{
	if (*slot == NULL)
		*slot = xstrdup(value);
}

static enum filter_verdict
regex_header(struct filter_call *call)
{
	struct regex_tx *t = call->tx_state;

	if (strcasecmp(call->arg, "Content-Type") == 0)
		keep_first(&t->content_type, call->value);
	else if (strcasecmp(call->arg, "Content-Transfer-Encoding") == 0)
		keep_first(&t->transfer_encoding, call->value);
	return FILTER_CONTINUE;
}

static const struct mime_callbacks regex_mime_callbacks = {
	.header = on_header,
	.body_line = on_body_line,
	.attachment = on_attachment,
};

/* verdict - t's decision as the filter's, reply copied */
static enum filter_verdict
verdict(struct regex_tx *t, struct filter_call *call)
{
	if (t->verdict == FILTER_REJECT || t->verdict == FILTER_TEMPFAIL)
		snprintf(call->reply, sizeof(call->reply), "%s", t->reply);
	return t->verdict;
}

static enum filter_verdict
regex_body(struct filter_call *call)
{
	struct regex_tx *t = call->tx_state;

	if (!wants_body(t->cfg) || t->verdict != FILTER_CONTINUE)
		return verdict(t, call);
	if (t->mime == NULL) {
		t->mime_cb = regex_mime_callbacks;
		t->mime_cb.arg = t;
		t->mime = mime_parser_new(&t->mime_cb, t->content_type,
		    t->transfer_encoding, MIME_MAX_DEPTH);
	}
	t->call = call;
	mime_parser_feed(t->mime, call->chunk, call->chunk_len);
	t->call = NULL;
	return verdict(t, call);
}

/* ---- the message headers, at end of message ---- */

static void
sim_init(struct header_sim *sim, const struct header_list *hl)
{
	size_t i;

	sim->n = sim->cap = hl->n;
	sim->names = xcalloc(hl->n + 1, sizeof(*sim->names));
	for (i = 0; i < hl->n; i++)
		sim->names[i] = xstrdup(hl->fields[i].name);
}

static void
sim_deinit(struct header_sim *sim)
{
	size_t i;

	for (i = 0; i < sim->n; i++)
		free(sim->names[i]);
	free(sim->names);
}

static void
sim_insert(struct header_sim *sim, size_t pos, const char *name)
{
	if (sim->n == sim->cap) {
		sim->cap = sim->cap * 2 + 4;
		sim->names = xreallocarray(sim->names, sim->cap,
		    sizeof(*sim->names));
	}
	memmove(sim->names + pos + 1, sim->names + pos,
	    (sim->n - pos) * sizeof(*sim->names));
	sim->names[pos] = xstrdup(name);
	sim->n++;
}

/* sim_delete - CHANGE_HEADER's nth (1-based) for position pos, removed */
static size_t
sim_delete(struct header_sim *sim, size_t pos)
{
	size_t i, nth = 0;

	for (i = 0; i <= pos; i++)
		if (strcasecmp(sim->names[i], sim->names[pos]) == 0)
			nth++;
	free(sim->names[pos]);
	memmove(sim->names + pos, sim->names + pos + 1,
	    (sim->n - pos - 1) * sizeof(*sim->names));
	sim->n--;
	return nth;
}

/*
 * split_header - "Name: value" into name and value (one space after the
 * colon dropped); false if text is not a header field
 */
static bool
split_header(const char *text, char **name_r, const char **value_r)
{
	size_t n = strcspn(text, ":");
	size_t i;

	if (n == 0 || text[n] != ':')
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)text[i] <= ' ' ||
		    (unsigned char)text[i] > '~')
			return false;
	if (strpbrk(text, "\r\n") != NULL)
		return false;
	*name_r = xstrndup(text, n);
	*value_r = text + n + 1 + (text[n + 1] == ' ');
	return true;
}

/*
 * edit_header - PREPEND, REPLACE, IGNORE, STRIP on the header at *pos
 * (position in the edited list; moved past what was inserted)
 */
static void
edit_header(struct filter_call *call, struct header_sim *sim, size_t *pos,
    const struct regex_action *a)
{
	const char *value;
	char *name, *old;
	size_t nth;

	if (a->kind == REGEX_PREPEND || a->kind == REGEX_REPLACE) {
		if (!split_header(a->text, &name, &value)) {
			log_warnx("%s: %s text is not a header field: \"%s\"; "
			    "not applied", queue_id(call),
			    regex_action_name(a->kind), a->text);
			return;
		}
		filter_edits_add(call->edits, FILTER_EDIT_INSERT_HEADER, *pos,
		    name, value);
		sim_insert(sim, *pos, name);
		free(name);
		(*pos)++;
		if (a->kind == REGEX_PREPEND)
			return;
	}
	old = xstrdup(sim->names[*pos]);
	nth = sim_delete(sim, *pos);
	filter_edits_add(call->edits, FILTER_EDIT_CHANGE_HEADER, nth, old,
	    NULL);
	free(old);
	(*pos)--;	/* the next header moved into this slot */
}

/* logical - Postfix's form of a field: CRs removed, no final newline */
static const char *
logical(struct buf *out, const struct header_field *f)
{
	size_t i, len = strlen(f->raw);

	while (len > 0 && (f->raw[len - 1] == '\n' || f->raw[len - 1] == '\r'))
		len--;
	buf_reset(out);
	for (i = 0; i < len; i++)
		if (f->raw[i] != '\r')
			buf_append(out, &f->raw[i], 1);
	return buf_cstr(out);
}

/* lookup_header - as written, then with encoded words decoded */
static bool
lookup_header(struct regex_tx *t, const char *text, char **result_r,
    struct regex_action *a)
{
	const char *colon = strchr(text, ':');
	char *decoded, *key;
	bool found;

	if (lookup(t, t->cfg->header_checks, text, result_r, a))
		return true;
	if (colon == NULL || (decoded = mime_decode_words(colon + 1,
	    strlen(colon + 1))) == NULL)
		return false;
	key = xasprintf("%.*s:%s", (int)(colon - text), text, decoded);
	found = lookup(t, t->cfg->header_checks, key, result_r, a);
	free(key);
	free(decoded);
	return found;
}

static void
check_headers(struct regex_tx *t, struct filter_call *call)
{
	const struct header_list *hl = call->message->headers;
	struct header_sim sim;
	struct regex_action a;
	struct buf text;
	char *result;
	size_t i, pos;

	sim_init(&sim, hl);
	buf_init(&text, 0);
	t->call = call;
	for (i = 0, pos = 0; i < hl->n && t->verdict == FILTER_CONTINUE;
	    i++, pos++) {
		if (!lookup_header(t, logical(&text, &hl->fields[i]), &result,
		    &a))
			continue;
		log_action(call, &a, "header", buf_cstr(&text));
		if (!take(t, &a))
			edit_header(call, &sim, &pos, &a);
		free(result);
	}
	t->call = NULL;
	buf_deinit(&text);
	sim_deinit(&sim);
}

/* envelope_edits - REDIRECT and BCC as recipient edits */
static void
envelope_edits(struct regex_tx *t, struct filter_call *call)
{
	size_t i;

	if (t->redirect != NULL) {
		filter_edits_add(call->edits, FILTER_EDIT_ADD_RCPT, 0, NULL,
		    t->redirect);
		for (i = 0; i < call->tx->nrcpts; i++)
			if (strcasecmp(call->tx->rcpts[i].address,
			    t->redirect) != 0)
				filter_edits_add(call->edits,
				    FILTER_EDIT_DELETE_RCPT, 0, NULL,
				    call->tx->rcpts[i].address);
	}
	for (i = 0; i < t->nbcc; i++)
		filter_edits_add(call->edits, FILTER_EDIT_ADD_RCPT, 0, NULL,
		    t->bcc[i]);
}

static enum filter_verdict
regex_eom(struct filter_call *call)
{
	struct regex_tx *t = call->tx_state;

	if (t->mime != NULL) {
		t->call = call;
		mime_parser_finish(t->mime);
		t->call = NULL;
	}
	if (t->verdict == FILTER_CONTINUE && t->cfg->header_checks != NULL &&
	    call->message != NULL)
		check_headers(t, call);
	if (t->verdict != FILTER_CONTINUE)
		return verdict(t, call);
	if (call->edits != NULL && call->tx != NULL)
		envelope_edits(t, call);
	return t->hold ? FILTER_HOLD : FILTER_CONTINUE;
}

const struct filter_ops filter_regex = {
	.name = "regex",
	.stages = FILTER_STAGE_BIT(FILTER_STAGE_HEADER) |
	    FILTER_STAGE_BIT(FILTER_STAGE_BODY) |
	    FILTER_STAGE_BIT(FILTER_STAGE_EOM),
	.may_block = false,
	.tx_begin = regex_tx_begin,
	.tx_end = regex_tx_end,
	.cb = {
		[FILTER_STAGE_HEADER] = regex_header,
		[FILTER_STAGE_BODY] = regex_body,
		[FILTER_STAGE_EOM] = regex_eom,
	},
};

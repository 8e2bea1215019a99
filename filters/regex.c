/*
 * regex.c - the "regex" filter: Postfix's header_checks, mime_header_checks,
 * nested_header_checks and body_checks, plus attachment_checks.
 *
 * Tables are read by config/table_pcre.c, unchanged from Postfix, and
 * compiled once per configuration load. Each input is looked up once;
 * the first matching rule's result is the action (regex_action.h):
 *   - message headers, at the end of the header block, one logical header
 *     at a time in Postfix's form (physical lines joined with "\n"), as
 *     received; a header that does not match as written is tried again
 *     with its RFC 2047 encoded words decoded, so that encoding a phrase
 *     does not evade a rule;
 *   - MIME part headers and attached messages' headers, body lines (the
 *     first body_checks_size_limit bytes of each part; text parts
 *     decoded from quoted-printable and base64) and attachments (file
 *     name, then content type), as the body streams by (filters/mime.h).
 * Headers come before the body, as in Postfix. PREPEND, REPLACE and
 * IGNORE are recorded and become header edits at end of message, placed
 * on the matched field as it stands in the message the filters before
 * this one left (found again by its text).
 *
 * REJECT, DEFER and DISCARD end the message's inspection; HOLD, REDIRECT
 * and BCC are remembered and the checks go on, as in Postfix. Editing a
 * MIME part header or a body line would mean rewriting the body: those
 * actions are logged and not applied (doc/configuration.md says so).
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/types.h>

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

/* the header fields of the message as edits leave it (positions, nth) */
struct header_sim {
	char	**names;	/* owned array of owned names */
	char	**raws;		/* owned array of owned texts; "" if new */
	size_t	*occ;		/* owned: 1-based occurrence of that text
				   in the view, fixed at the start */
	size_t	 n, cap;
};

/* a PREPEND/REPLACE/IGNORE/STRIP found at EOH, applied at EOM */
struct header_action {
	enum regex_action_kind kind;
	char	*raw;		/* owned: the matched field as received */
	size_t	 nth;		/* 1-based among fields with that same text */
	char	*text;		/* owned: the action's text */
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
	struct header_action *edits;	/* owned array: header edits found */
	size_t	 nedits;
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
	for (i = 0; i < t->nedits; i++) {
		free(t->edits[i].raw);
		free(t->edits[i].text);
	}
	free(t->edits);
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
 * bad_address - a REDIRECT or BCC target that is not user@domain (logged;
 * Postfix skips such a target with a warning too)
 */
static bool
bad_address(const struct regex_tx *t, const struct regex_action *a)
{
	const char *at = strrchr(a->text, '@');

	if (at != NULL && at != a->text && at[1] != '\0' &&
	    strpbrk(a->text, " \t<>,;") == NULL)
		return false;
	log_warnx("%s: %s: \"%s\" is not an address; ignored",
	    queue_id(t->call), regex_action_name(a->kind), a->text);
	return true;
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
		if (!bad_address(t, a)) {
			/* the last one wins, as in Postfix */
			free(t->redirect);
			t->redirect = xstrdup(a->text);
		}
		return true;
	case REGEX_BCC:
		if (!bad_address(t, a))
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

/* ---- the message headers, at the end of the header block ---- */

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

/* same_text_before - fields before i with the raw text of field i */
static size_t
same_text_before(const struct header_list *hl, size_t i)
{
	size_t k, n = 0;

	for (k = 0; k < i; k++)
		if (strcmp(hl->fields[k].raw, hl->fields[i].raw) == 0)
			n++;
	return n;
}

static void
record_edit(struct regex_tx *t, const struct header_list *hl, size_t i,
    const struct regex_action *a)
{
	struct header_action *h;

	t->edits = xreallocarray(t->edits, t->nedits + 1, sizeof(*t->edits));
	h = &t->edits[t->nedits++];
	h->kind = a->kind;
	h->raw = xstrdup(hl->fields[i].raw);
	h->nth = same_text_before(hl, i) + 1;
	h->text = xstrdup(a->text);
}

/* check_headers - header_checks over the header block as received */
static void
check_headers(struct regex_tx *t, struct filter_call *call,
    const struct header_list *hl)
{
	struct regex_action a;
	struct buf text;
	char *result;
	size_t i;

	buf_init(&text, 0);
	for (i = 0; i < hl->n && t->verdict == FILTER_CONTINUE; i++) {
		if (!lookup_header(t, logical(&text, &hl->fields[i]), &result,
		    &a))
			continue;
		log_action(call, &a, "header", buf_cstr(&text));
		if (!take(t, &a))
			record_edit(t, hl, i, &a);
		free(result);
	}
	buf_deinit(&text);
}

/* first_value - the value of the first field called name, owned or NULL */
static char *
first_value(const struct header_list *hl, const char *name)
{
	struct buf value;
	char *v = NULL;
	size_t i;

	for (i = 0; i < hl->n && v == NULL; i++)
		if (strcasecmp(hl->fields[i].name, name) == 0) {
			buf_init(&value, 0);
			v = xstrdup(header_field_value(&hl->fields[i], &value));
			buf_deinit(&value);
		}
	return v;
}

static enum filter_verdict
regex_eoh(struct filter_call *call)
{
	struct regex_tx *t = call->tx_state;
	const struct header_list *hl;

	if (call->message == NULL)
		return FILTER_CONTINUE;
	hl = call->message->headers;
	t->content_type = first_value(hl, "Content-Type");
	t->transfer_encoding = first_value(hl, "Content-Transfer-Encoding");
	if (t->cfg->header_checks != NULL) {
		t->call = call;
		check_headers(t, call, hl);
		t->call = NULL;
	}
	return verdict(t, call);
}

/* ---- header edits, at end of message ---- */

static void
sim_init(struct header_sim *sim, const struct header_list *hl)
{
	size_t i;

	sim->n = sim->cap = hl->n;
	sim->names = xcalloc(hl->n + 1, sizeof(*sim->names));
	sim->raws = xcalloc(hl->n + 1, sizeof(*sim->raws));
	sim->occ = xcalloc(hl->n + 1, sizeof(*sim->occ));
	for (i = 0; i < hl->n; i++) {
		sim->names[i] = xstrdup(hl->fields[i].name);
		sim->raws[i] = xstrdup(hl->fields[i].raw);
		sim->occ[i] = same_text_before(hl, i) + 1;
	}
}

static void
sim_deinit(struct header_sim *sim)
{
	size_t i;

	for (i = 0; i < sim->n; i++) {
		free(sim->names[i]);
		free(sim->raws[i]);
	}
	free(sim->names);
	free(sim->raws);
	free(sim->occ);
}

/* sim_insert - a new field (no raw text: it never matches a recorded one) */
static void
sim_insert(struct header_sim *sim, size_t pos, const char *name)
{
	if (sim->n == sim->cap) {
		sim->cap = sim->cap * 2 + 4;
		sim->names = xreallocarray(sim->names, sim->cap,
		    sizeof(*sim->names));
		sim->raws = xreallocarray(sim->raws, sim->cap,
		    sizeof(*sim->raws));
		sim->occ = xreallocarray(sim->occ, sim->cap,
		    sizeof(*sim->occ));
	}
	memmove(sim->names + pos + 1, sim->names + pos,
	    (sim->n - pos) * sizeof(*sim->names));
	memmove(sim->raws + pos + 1, sim->raws + pos,
	    (sim->n - pos) * sizeof(*sim->raws));
	memmove(sim->occ + pos + 1, sim->occ + pos,
	    (sim->n - pos) * sizeof(*sim->occ));
	sim->names[pos] = xstrdup(name);
	sim->raws[pos] = xstrdup("");
	sim->occ[pos] = 0;
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
	free(sim->raws[pos]);
	memmove(sim->names + pos, sim->names + pos + 1,
	    (sim->n - pos - 1) * sizeof(*sim->names));
	memmove(sim->raws + pos, sim->raws + pos + 1,
	    (sim->n - pos - 1) * sizeof(*sim->raws));
	memmove(sim->occ + pos, sim->occ + pos + 1,
	    (sim->n - pos - 1) * sizeof(*sim->occ));
	sim->n--;
	return nth;
}

/*
 * sim_find - the position of the field that was the nth with this raw
 * text when the edits began, or -1
 */
static ssize_t
sim_find(const struct header_sim *sim, const char *raw, size_t nth)
{
	size_t i;

	for (i = 0; i < sim->n; i++)
		if (sim->occ[i] == nth && strcmp(sim->raws[i], raw) == 0)
			return (ssize_t)i;
	return -1;
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

/* edit_header - one recorded PREPEND, REPLACE, IGNORE or STRIP */
static void
edit_header(struct filter_call *call, struct header_sim *sim,
    const struct header_action *h)
{
	const char *value;
	char *name, *old;
	ssize_t found = sim_find(sim, h->raw, h->nth);
	size_t pos, nth;

	if (found == -1) {
		log_warnx("%s: %s: the matched header was changed by an "
		    "earlier filter; not applied", queue_id(call),
		    regex_action_name(h->kind));
		return;
	}
	pos = (size_t)found;
	if (h->kind == REGEX_PREPEND || h->kind == REGEX_REPLACE) {
		if (!split_header(h->text, &name, &value)) {
			log_warnx("%s: %s text is not a header field: \"%s\"; "
			    "not applied", queue_id(call),
			    regex_action_name(h->kind), h->text);
			return;
		}
		filter_edits_add(call->edits, FILTER_EDIT_INSERT_HEADER, pos,
		    name, value);
		sim_insert(sim, pos, name);
		free(name);
		pos++;
		if (h->kind == REGEX_PREPEND)
			return;
	}
	old = xstrdup(sim->names[pos]);
	nth = sim_delete(sim, pos);
	filter_edits_add(call->edits, FILTER_EDIT_CHANGE_HEADER, nth, old,
	    NULL);
	free(old);
}

static void
header_edits(struct regex_tx *t, struct filter_call *call)
{
	struct header_sim sim;
	size_t i;

	sim_init(&sim, call->message->headers);
	for (i = 0; i < t->nedits; i++)
		edit_header(call, &sim, &t->edits[i]);
	sim_deinit(&sim);
}

/* is_recipient - addr is already a recipient (one copy is enough) */
static bool
is_recipient(const struct filter_tx *tx, const char *addr)
{
	size_t i;

	for (i = 0; i < tx->nrcpts; i++)
		if (strcasecmp(tx->rcpts[i].address, addr) == 0)
			return true;
	return false;
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
		if (!is_recipient(call->tx, t->bcc[i]) &&
		    (t->redirect == NULL ||
		    strcasecmp(t->redirect, t->bcc[i]) != 0))
			filter_edits_add(call->edits, FILTER_EDIT_ADD_RCPT, 0,
			    NULL, t->bcc[i]);
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
	if (t->verdict != FILTER_CONTINUE)
		return verdict(t, call);
	if (call->edits != NULL && call->message != NULL && t->nedits > 0)
		header_edits(t, call);
	if (call->edits != NULL && call->tx != NULL)
		envelope_edits(t, call);
	return t->hold ? FILTER_HOLD : FILTER_CONTINUE;
}

const struct filter_ops filter_regex = {
	.name = "regex",
	.stages = FILTER_STAGE_BIT(FILTER_STAGE_EOH) |
	    FILTER_STAGE_BIT(FILTER_STAGE_BODY) |
	    FILTER_STAGE_BIT(FILTER_STAGE_EOM),
	.may_block = false,
	.edits = true,
	.tx_begin = regex_tx_begin,
	.tx_end = regex_tx_end,
	.cb = {
		[FILTER_STAGE_EOH] = regex_eoh,
		[FILTER_STAGE_BODY] = regex_body,
		[FILTER_STAGE_EOM] = regex_eom,
	},
};

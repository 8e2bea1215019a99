/*
 * test_message_edit.c - unit tests for daemon/message_edit.c: parsing
 * and formatting the header block (folding, many fields, a continuation
 * first), header_field_value, and every edit kind with milter semantics:
 * add, insert at an index, change or delete the nth field of a name,
 * refused names and values, envelope edits, body replacement, and edits
 * applied in request order.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "filter.h"
#include "log.h"
#include "message_edit.h"
#include "tap.h"
#include "xmalloc.h"

#define MAXEDITS	6
#define MAXRCPTS	4

/* ---- header_list_parse / header_list_format ---- */

static const struct parse_case {
	const char	*name;
	const char	*block;
	int		 want_rc;
	size_t		 want_n;
	const char	*want_names;	/* names joined with "|" */
	const char	*want_values;	/* header_field_value joined, "|" */
} parse_cases[] = {
	{ "empty block", "", 0, 0, "", "" },
	{ "one field", "Subject: hi\r\n", 0, 1, "Subject", "hi" },
	{ "two fields",
	    "From: a@example.org\r\nTo: b@example.net\r\n", 0, 2,
	    "From|To", "a@example.org|b@example.net" },
	{ "folding with tab and space",
	    "Subject: one\r\n\ttwo\r\n  three\r\nTo: b@example.net\r\n", 0, 2,
	    "Subject|To", "one\r\n\ttwo\r\n  three|b@example.net" },
	{ "no space after the colon", "X-A:v\r\n", 0, 1, "X-A", "v" },
	{ "only one leading space removed", "X-A:   v\r\n", 0, 1, "X-A",
	    "  v" },
	{ "empty value", "X-A:\r\nX-B: \r\n", 0, 2, "X-A|X-B", "|" },
	{ "colon in the value", "X-A: b: c\r\n", 0, 1, "X-A", "b: c" },
	{ "trailing whitespace kept", "X-A: v \r\n", 0, 1, "X-A", "v " },
	{ "last line without CRLF", "X-A: 1\r\nX-B: 2", 0, 2, "X-A|X-B",
	    "1|2" },
	{ "continuation first", "\tfolded\r\nX-A: 1\r\n", -1, 0, "", "" },
	{ "continuation first (space)", " x\r\n", -1, 0, "", "" },
};

static char *
join_fields(const struct header_list *hl, bool values)
{
	struct buf out, v;
	size_t i;

	buf_init(&out, 0);
	buf_init(&v, 0);
	for (i = 0; i < hl->n; i++) {
		if (i > 0)
			buf_append_str(&out, "|");
		buf_append_str(&out, values ?
		    header_field_value(&hl->fields[i], &v) :
		    hl->fields[i].name);
	}
	buf_deinit(&v);
	return buf_steal(&out);
}

static void
test_parse(void)
{
	const struct parse_case *c;
	struct header_list hl;
	struct buf out;
	char *s;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		c = &parse_cases[i];
		rc = header_list_parse(&hl, c->block, strlen(c->block));
		is_int(rc, c->want_rc, "parse %s: rc", c->name);
		if (rc == -1) {
			header_list_deinit(&hl);
			continue;
		}
		is_int(hl.n, c->want_n, "parse %s: fields", c->name);
		s = join_fields(&hl, false);
		is_str(s, c->want_names, "parse %s: names", c->name);
		free(s);
		s = join_fields(&hl, true);
		is_str(s, c->want_values, "parse %s: values", c->name);
		free(s);
		buf_init(&out, 0);
		header_list_format(&hl, &out);
		is_str(buf_cstr(&out), c->block, "parse %s: round trip",
		    c->name);
		buf_deinit(&out);
		header_list_deinit(&hl);
	}
}

/* many fields, some folded: the round trip is exact */
static void
test_parse_many(void)
{
	struct header_list hl;
	struct buf in, out, v;
	size_t i, bad_names = 0;
	char want[32];

	buf_init(&in, 0);
	for (i = 0; i < 500; i++) {
		buf_printf(&in, "X-F%zu: value %zu\r\n", i, i);
		if (i % 7 == 0)
			buf_printf(&in, "\tfold %zu\r\n", i);
	}
	is_int(header_list_parse(&hl, in.data, in.len), 0, "500 fields: rc");
	is_int(hl.n, 500, "500 fields: count");
	buf_init(&v, 0);
	for (i = 0; i < hl.n; i++) {
		snprintf(want, sizeof(want), "X-F%zu", i);
		if (strcmp(hl.fields[i].name, want) != 0)
			bad_names++;
	}
	is_int(bad_names, 0, "500 fields: names in order");
	is_str(header_field_value(&hl.fields[7], &v), "value 7\r\n\tfold 7",
	    "500 fields: folded value");
	is_str(header_field_raw_value(&hl.fields[7], &v),
	    " value 7\r\n\tfold 7", "500 fields: raw value keeps the space");
	buf_init(&out, 0);
	header_list_format(&hl, &out);
	ok(out.len == in.len && memcmp(out.data, in.data, in.len) == 0,
	    "500 fields: round trip");
	buf_deinit(&out);
	buf_deinit(&v);
	buf_deinit(&in);
	header_list_deinit(&hl);
}

/* ---- message_edit_apply: headers and body ---- */

struct edit_spec {
	enum filter_edit_kind kind;
	size_t		 index;
	const char	*name;
	const char	*value;
};

#define ADD(n, v)	{ FILTER_EDIT_ADD_HEADER, 0, n, v }
#define INS(i, n, v)	{ FILTER_EDIT_INSERT_HEADER, i, n, v }
#define CHG(i, n, v)	{ FILTER_EDIT_CHANGE_HEADER, i, n, v }
#define BODY(v)		{ FILTER_EDIT_REPLACE_BODY, 0, NULL, v }
#define FROM(v)		{ FILTER_EDIT_CHANGE_FROM, 0, NULL, v }
#define ARCPT(v)	{ FILTER_EDIT_ADD_RCPT, 0, NULL, v }
#define DRCPT(v)	{ FILTER_EDIT_DELETE_RCPT, 0, NULL, v }

#define H3	"A: 1\r\nB: 2\r\nA: 3\r\n"

static const struct header_case {
	const char	*name;
	const char	*block;
	size_t		 nedits;
	struct edit_spec edits[MAXEDITS];
	int		 want_rc;
	const char	*want_block;	/* NULL: not checked (rc -1) */
	const char	*want_body;	/* NULL: *body_r must be NULL */
} header_cases[] = {
	{ "add appends", H3, 1, { ADD("X", "y") }, 0, H3 "X: y\r\n", NULL },
	{ "add to an empty block", "", 1, { ADD("X", "y") }, 0, "X: y\r\n",
	    NULL },
	{ "add with LF folding", H3, 1, { ADD("X", "y\n\tz") }, 0,
	    H3 "X: y\r\n\tz\r\n", NULL },
	{ "add with CRLF folding", H3, 1, { ADD("X", "y\r\n z") }, 0,
	    H3 "X: y\r\n z\r\n", NULL },
	{ "add empty value", H3, 1, { ADD("X", "") }, 0, H3 "X: \r\n",
	    NULL },
	{ "insert at 0", H3, 1, { INS(0, "X", "y") }, 0, "X: y\r\n" H3,
	    NULL },
	{ "insert at 1", H3, 1, { INS(1, "X", "y") }, 0,
	    "A: 1\r\nX: y\r\nB: 2\r\nA: 3\r\n", NULL },
	{ "insert at n", H3, 1, { INS(3, "X", "y") }, 0, H3 "X: y\r\n",
	    NULL },
	{ "insert beyond n", H3, 1, { INS(99, "X", "y") }, 0,
	    H3 "X: y\r\n", NULL },
	{ "change 1st", H3, 1, { CHG(1, "A", "new") }, 0,
	    "A: new\r\nB: 2\r\nA: 3\r\n", NULL },
	{ "change 2nd", H3, 1, { CHG(2, "A", "new") }, 0,
	    "A: 1\r\nB: 2\r\nA: new\r\n", NULL },
	{ "change index 0 is 1", H3, 1, { CHG(0, "A", "new") }, 0,
	    "A: new\r\nB: 2\r\nA: 3\r\n", NULL },
	{ "change name case-insensitive", H3, 1, { CHG(2, "a", "new") }, 0,
	    "A: 1\r\nB: 2\r\na: new\r\n", NULL },
	{ "change past occurrences appends", H3, 1, { CHG(3, "A", "new") },
	    0, H3 "A: new\r\n", NULL },
	{ "change missing name appends", H3, 1, { CHG(1, "C", "new") }, 0,
	    H3 "C: new\r\n", NULL },
	{ "change folded field", "S: a\r\n\tb\r\nT: 1\r\n", 1,
	    { CHG(1, "S", "c\n d") }, 0, "S: c\r\n d\r\nT: 1\r\n", NULL },
	{ "delete 1st", H3, 1, { CHG(1, "A", NULL) }, 0,
	    "B: 2\r\nA: 3\r\n", NULL },
	{ "delete 2nd", H3, 1, { CHG(2, "A", NULL) }, 0,
	    "A: 1\r\nB: 2\r\n", NULL },
	{ "delete index 0 is 1", H3, 1, { CHG(0, "a", NULL) }, 0,
	    "B: 2\r\nA: 3\r\n", NULL },
	{ "delete past occurrences: no-op", H3, 1, { CHG(3, "A", NULL) }, 0,
	    H3, NULL },
	{ "delete the only field", "B: 2\r\n", 1, { CHG(1, "B", NULL) }, 0,
	    "", NULL },
	{ "delete both in turn", H3, 2,
	    { CHG(1, "A", NULL), CHG(1, "A", NULL) }, 0, "B: 2\r\n", NULL },
	{ "bare CR refused", H3, 1, { ADD("X", "a\rb") }, -1, NULL, NULL },
	{ "trailing bare CR refused", H3, 1, { ADD("X", "a\r") }, -1, NULL,
	    NULL },
	{ "LF new field refused", H3, 1, { ADD("X", "a\nX: injected") }, -1,
	    NULL, NULL },
	{ "CRLF new field refused", H3, 1,
	    { INS(0, "X", "a\r\nX: injected") }, -1, NULL, NULL },
	{ "change to a new field refused", H3, 1,
	    { CHG(1, "A", "a\nX: injected") }, -1, NULL, NULL },
	{ "blank line (end of header) refused", H3, 1,
	    { ADD("X", "a\n\nbody") }, -1, NULL, NULL },
	{ "add NULL value refused", H3, 1, { ADD("X", NULL) }, -1, NULL,
	    NULL },
	{ "name with space refused", H3, 1, { ADD("Bad Name", "v") }, -1,
	    NULL, NULL },
	{ "empty name refused", H3, 1, { ADD("", "v") }, -1, NULL, NULL },
	{ "name with colon refused", H3, 1, { INS(0, "a:b", "v") }, -1,
	    NULL, NULL },
	{ "NULL name refused", H3, 1, { ADD(NULL, "v") }, -1, NULL, NULL },
	{ "8-bit name refused", H3, 1, { ADD("N\xc3\xb6", "v") }, -1, NULL,
	    NULL },
	{ "change bad name refused", H3, 1, { CHG(1, "Bad Name", NULL) }, -1,
	    NULL, NULL },
	{ "add then change the same header", H3, 2,
	    { ADD("X", "1"), CHG(1, "X", "2") }, 0, H3 "X: 2\r\n", NULL },
	{ "change then add the same header", H3, 2,
	    { CHG(1, "X", "2"), ADD("X", "1") }, 0,
	    H3 "X: 2\r\nX: 1\r\n", NULL },
	{ "insert then delete 1st A", H3, 2,
	    { INS(0, "A", "0"), CHG(1, "A", NULL) }, 0, H3, NULL },
	{ "insert twice at 0", H3, 2,
	    { INS(0, "X", "1"), INS(0, "Y", "2") }, 0,
	    "Y: 2\r\nX: 1\r\n" H3, NULL },
	{ "replace body", H3, 1, { BODY("new body\r\n") }, 0, H3,
	    "new body\r\n" },
	{ "replace body in chunks, in order", H3, 3,
	    { BODY("one\r\n"), ADD("X", "y"), BODY("two\r\n") }, 0,
	    H3 "X: y\r\n", "one\r\ntwo\r\n" },
	{ "replace body with empty chunk", H3, 1, { BODY("") }, 0, H3, "" },
};


/* env_one - sender s@example.org, one recipient r@example.net */
static void
env_one(struct edit_envelope *env)
{
	edit_envelope_init(env, "s@example.org", 1);
	env->rcpts[0] = xstrdup("r@example.net");
}

static void
build_edits(struct filter_edits *fe, const struct edit_spec *e, size_t n)
{
	size_t i;

	filter_edits_init(fe);
	for (i = 0; i < n; i++)
		filter_edits_add(fe, e[i].kind, e[i].index, e[i].name,
		    e[i].value);
}

static void
test_header_edits(void)
{
	const struct header_case *c;
	struct filter_edits fe;
	struct header_list hl;
	struct edit_envelope env;
	struct buf out, *body;
	const char *error;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(header_cases) / sizeof(header_cases[0]);
	    i++) {
		c = &header_cases[i];
		build_edits(&fe, c->edits, c->nedits);
		if (header_list_parse(&hl, c->block, strlen(c->block)) != 0)
			fatalx("%s: bad test block", c->name);
		env_one(&env);
		error = NULL;
		body = NULL;
		rc = message_edit_apply(&fe, &hl, &env, &body, &error);
		is_int(rc, c->want_rc, "%s: rc", c->name);
		if (rc == -1)
			ok(error != NULL && *error != '\0',
			    "%s: error message (%s)", c->name,
			    error != NULL ? error : "(null)");
		if (c->want_block != NULL) {
			buf_init(&out, 0);
			header_list_format(&hl, &out);
			is_str(buf_cstr(&out), c->want_block, "%s: block",
			    c->name);
			buf_deinit(&out);
		}
		if (rc == 0 && c->want_body == NULL)
			ok(body == NULL, "%s: no body replacement", c->name);
		else if (rc == 0)
			is_str(body == NULL ? NULL : buf_cstr(body),
			    c->want_body, "%s: body", c->name);
		if (body != NULL) {
			buf_deinit(body);
			free(body);
		}
		edit_envelope_deinit(&env);
		header_list_deinit(&hl);
		filter_edits_deinit(&fe);
	}
}

/* the field the edit wrote is parsed back with the same value */
static void
test_value_round_trip(void)
{
	static const char *const values[] = {
		"plain", "x\n\ty", "x\r\n\ty\r\n z", "",
	};
	static const char *const want[] = {
		"plain", "x\r\n\ty", "x\r\n\ty\r\n z", "",
	};
	struct filter_edits fe;
	struct header_list hl;
	struct edit_envelope env;
	struct buf v, *body;
	const char *error;
	size_t i;
	int rc;

	memset(&env, 0, sizeof(env));
	env.nrcpts = 1;
	buf_init(&v, 0);
	for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		filter_edits_init(&fe);
		filter_edits_add(&fe, FILTER_EDIT_ADD_HEADER, 0, "X-V",
		    values[i]);
		hl.fields = NULL;
		hl.n = 0;
		rc = message_edit_apply(&fe, &hl, &env, &body, &error);
		is_int(rc, 0, "value round trip %zu: rc", i);
		if (rc == 0 && hl.n == 1)
			is_str(header_field_value(&hl.fields[0], &v), want[i],
			    "value round trip %zu: value", i);
		header_list_deinit(&hl);
		filter_edits_deinit(&fe);
	}
	buf_deinit(&v);
}

/* ---- message_edit_apply: envelope ---- */

static const struct env_case {
	const char	*name;
	const char	*rcpts[MAXRCPTS];
	size_t		 nedits;
	struct edit_spec edits[MAXEDITS];
	int		 want_rc;
	const char	*want_sender;	/* NULL: not checked */
	const char	*want_rcpts;	/* joined with ","; NULL: not checked */
} env_cases[] = {
	{ "change from with brackets", { "r@example.net" }, 1,
	    { FROM("<new@example.org>") }, 0, "new@example.org",
	    "r@example.net" },
	{ "change from without brackets", { "r@example.net" }, 1,
	    { FROM("new@example.org") }, 0, "new@example.org",
	    "r@example.net" },
	{ "change from to the null sender", { "r@example.net" }, 1,
	    { FROM("<>") }, 0, "", "r@example.net" },
	{ "add rcpt with brackets", { "r@example.net" }, 1,
	    { ARCPT("<c@example.com>") }, 0, "s@example.org",
	    "r@example.net,c@example.com" },
	{ "add rcpt without brackets", { "r@example.net" }, 1,
	    { ARCPT("c@example.com") }, 0, "s@example.org",
	    "r@example.net,c@example.com" },
	{ "delete rcpt exact", { "a@example.net", "b@example.net" }, 1,
	    { DRCPT("<a@example.net>") }, 0, "s@example.org",
	    "b@example.net" },
	{ "delete rcpt: domain case ignored",
	    { "a@example.net", "Bob@Example.NET" }, 1,
	    { DRCPT("Bob@example.net") }, 0, "s@example.org",
	    "a@example.net" },
	{ "delete rcpt: local part case kept",
	    { "a@example.net", "Bob@example.net" }, 1,
	    { DRCPT("bob@example.net") }, 0, "s@example.org",
	    "a@example.net,Bob@example.net" },
	{ "delete rcpt not present: no-op", { "a@example.net" }, 1,
	    { DRCPT("z@example.net") }, 0, "s@example.org", "a@example.net" },
	{ "delete middle keeps order",
	    { "a@example.net", "b@example.net", "c@example.net" }, 1,
	    { DRCPT("b@example.net") }, 0, "s@example.org",
	    "a@example.net,c@example.net" },
	{ "delete every rcpt refused", { "a@example.net", "b@example.net" },
	    2, { DRCPT("a@example.net"), DRCPT("<b@EXAMPLE.net>") }, -1, NULL,
	    NULL },
	{ "delete every rcpt then add one", { "a@example.net" }, 2,
	    { DRCPT("a@example.net"), ARCPT("n@example.net") }, 0,
	    "s@example.org", "n@example.net" },
	{ "add then delete the same rcpt", { "a@example.net" }, 2,
	    { ARCPT("n@example.net"), DRCPT("n@EXAMPLE.NET") }, 0,
	    "s@example.org", "a@example.net" },
	{ "envelope edit without a value refused", { "a@example.net" }, 1,
	    { FROM(NULL) }, -1, NULL, NULL },
	/* the addresses end up in MAIL FROM/RCPT TO to the next hop */
	{ "rcpt with CRLF refused", { "a@example.net" }, 1,
	    { ARCPT("x@example.net>\r\nRCPT TO:<evil@example.com") }, -1,
	    NULL, NULL },
	{ "sender with LF refused", { "a@example.net" }, 1,
	    { FROM("<x@example.org>\nRSET") }, -1, NULL, NULL },
	{ "empty rcpt refused", { "a@example.net" }, 1, { ARCPT("<>") }, -1,
	    NULL, NULL },
};

static void
test_envelope_edits(void)
{
	const struct env_case *c;
	struct filter_edits fe;
	struct header_list hl;
	struct edit_envelope env;
	struct buf joined, *body;
	const char *error;
	size_t i, k;
	int rc;

	for (i = 0; i < sizeof(env_cases) / sizeof(env_cases[0]); i++) {
		c = &env_cases[i];
		build_edits(&fe, c->edits, c->nedits);
		if (header_list_parse(&hl, H3, strlen(H3)) != 0)
			fatalx("bad test block");
		for (k = 0; k < MAXRCPTS && c->rcpts[k] != NULL; k++)
			;
		edit_envelope_init(&env, "s@example.org", k);
		for (k = 0; k < env.nrcpts; k++)
			env.rcpts[k] = xstrdup(c->rcpts[k]);
		error = NULL;
		body = NULL;
		rc = message_edit_apply(&fe, &hl, &env, &body, &error);
		is_int(rc, c->want_rc, "%s: rc", c->name);
		if (c->want_sender != NULL)
			is_str(env.sender, c->want_sender, "%s: sender",
			    c->name);
		if (c->want_rcpts != NULL) {
			buf_init(&joined, 0);
			for (k = 0; k < env.nrcpts; k++)
				buf_printf(&joined, "%s%s", k > 0 ? "," : "",
				    env.rcpts[k]);
			is_str(buf_cstr(&joined), c->want_rcpts,
			    "%s: rcpts", c->name);
			buf_deinit(&joined);
		}
		if (body != NULL) {
			buf_deinit(body);
			free(body);
		}
		edit_envelope_deinit(&env);
		header_list_deinit(&hl);
		filter_edits_deinit(&fe);
	}
}

/* ---- message_edit_apply: ESMTP parameters of envelope edits ---- */

/* dsn_of - "given:notify:orcpt" of the i-th recipient, "-" if none */
static char *
dsn_of(const struct edit_envelope *env, size_t i)
{
	const struct edit_dsn *d;

	if (env->dsn == NULL || !env->dsn[i].given)
		return xstrdup("-");
	d = &env->dsn[i];
	return xasprintf("%u:%s", d->notify, d->orcpt ? d->orcpt : "");
}

static const struct {
	const char *name;
	enum filter_edit_kind kind;
	const char *addr, *args;
	int	 want_rc;
	const char *want;	/* dsn_of the added rcpt, or "ret envid" */
} param_cases[] = {
	{ "rcpt NOTIFY=NEVER", FILTER_EDIT_ADD_RCPT, "<n@example.net>",
	    "NOTIFY=NEVER", 0, "1:" },
	{ "rcpt NOTIFY and ORCPT", FILTER_EDIT_ADD_RCPT, "n@example.net",
	    "NOTIFY=SUCCESS,DELAY ORCPT=rfc822;o+2Bx@example.net", 0,
	    "10:rfc822;o+x@example.net" },
	{ "rcpt parameters in any case", FILTER_EDIT_ADD_RCPT,
	    "n@example.net", "notify=failure", 0, "4:" },
	{ "rcpt NEVER with another word refused", FILTER_EDIT_ADD_RCPT,
	    "n@example.net", "NOTIFY=NEVER,DELAY", -1, NULL },
	{ "rcpt unknown parameter refused", FILTER_EDIT_ADD_RCPT,
	    "n@example.net", "XFOO=1", -1, NULL },
	{ "rcpt bad ORCPT xtext refused", FILTER_EDIT_ADD_RCPT,
	    "n@example.net", "ORCPT=rfc822;a+zzb", -1, NULL },
	{ "rcpt parameters with CRLF refused", FILTER_EDIT_ADD_RCPT,
	    "n@example.net", "NOTIFY=NEVER\r\nRSET", -1, NULL },
	{ "rcpt MAIL parameter refused", FILTER_EDIT_ADD_RCPT,
	    "n@example.net", "RET=FULL", -1, NULL },
	{ "from RET and ENVID", FILTER_EDIT_CHANGE_FROM, "<f@example.org>",
	    "RET=HDRS ENVID=id+2B1", 0, "HDRS id+1" },
	{ "from SIZE and BODY ignored", FILTER_EDIT_CHANGE_FROM,
	    "f@example.org", "SIZE=10 BODY=8BITMIME", 0, "- -" },
	{ "from RCPT parameter refused", FILTER_EDIT_CHANGE_FROM,
	    "f@example.org", "NOTIFY=NEVER", -1, NULL },
};

static void
test_envelope_params(void)
{
	struct filter_edits fe;
	struct header_list hl;
	struct edit_envelope env;
	struct buf *body;
	const char *error;
	char *got, *a, *b;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(param_cases) / sizeof(param_cases[0]); i++) {
		filter_edits_init(&fe);
		/* a recipient added without parameters comes first */
		filter_edits_add_envelope(&fe, FILTER_EDIT_ADD_RCPT,
		    "plain@example.net", NULL);
		filter_edits_add_envelope(&fe, param_cases[i].kind,
		    param_cases[i].addr, param_cases[i].args);
		hl.fields = NULL;
		hl.n = 0;
		env_one(&env);
		error = NULL;
		body = NULL;
		rc = message_edit_apply(&fe, &hl, &env, &body, &error);
		is_int(rc, param_cases[i].want_rc, "params %s: rc (%s)",
		    param_cases[i].name, error ? error : "-");
		if (rc == 0 && param_cases[i].kind == FILTER_EDIT_ADD_RCPT) {
			got = dsn_of(&env, 2);
			is_str(got, param_cases[i].want, "params %s",
			    param_cases[i].name);
			free(got);
			a = dsn_of(&env, 0);
			b = dsn_of(&env, 1);
			ok(strcmp(a, "-") == 0 && strcmp(b, "-") == 0,
			    "params %s: the others have none (%s, %s)",
			    param_cases[i].name, a, b);
			free(a);
			free(b);
		} else if (rc == 0) {
			got = xasprintf("%s %s", env.ret ? env.ret : "-",
			    env.envid ? env.envid : "-");
			is_str(got, param_cases[i].want, "params %s",
			    param_cases[i].name);
			free(got);
		}
		edit_envelope_deinit(&env);
		header_list_deinit(&hl);
		filter_edits_deinit(&fe);
	}

	/* a deletion before it moves a recipient with its parameters */
	filter_edits_init(&fe);
	filter_edits_add_envelope(&fe, FILTER_EDIT_ADD_RCPT, "n@example.net",
	    "NOTIFY=NEVER");
	filter_edits_add_envelope(&fe, FILTER_EDIT_DELETE_RCPT,
	    "r@example.net", NULL);
	hl.fields = NULL;
	hl.n = 0;
	env_one(&env);
	rc = message_edit_apply(&fe, &hl, &env, &body, &error);
	got = rc == 0 && env.nrcpts == 1 ? dsn_of(&env, 0) : NULL;
	ok(got != NULL && strcmp(env.rcpts[0], "n@example.net") == 0 &&
	    strcmp(got, "1:") == 0, "params: kept through a deletion (%s)",
	    got ? got : "-");
	free(got);
	edit_envelope_deinit(&env);
	filter_edits_deinit(&fe);
}

int
main(void)
{
	test_parse();
	test_parse_many();
	test_header_edits();
	test_value_round_trip();
	test_envelope_edits();
	test_envelope_params();
	return done_testing();
}

/*
 * test_regex.c - the regex filter on whole messages: header_checks with
 * every action (edits applied and compared), multi-line headers, RFC 2047
 * decoding, if/endif and negation, body_checks on decoded text parts,
 * MIME part and nested headers, attachment rules, body_checks_size_limit;
 * and the action parser.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config/config.h"
#include "filter.h"
#include "message_edit.h"
#include "regex.h"
#include "regex_action.h"
#include "tap.h"
#include "xmalloc.h"

/* ---- the action parser ---- */

static const struct {
	const char *result;
	int	 rc;
	enum regex_action_kind kind;
	const char *enhanced, *text;
} action_cases[] = {
	{ "REJECT", 0, REGEX_REJECT, "5.7.1", "" },
	{ "reject go away", 0, REGEX_REJECT, "5.7.1", "go away" },
	{ "REJECT 5.7.0 No pills", 0, REGEX_REJECT, "5.7.0", "No pills" },
	{ "REJECT 4.7.0 wrong class", 0, REGEX_REJECT, "5.7.1",
	    "4.7.0 wrong class" },
	{ "DEFER 4.3.2 busy", 0, REGEX_DEFER, "4.3.2", "busy" },
	{ "  WARN\tspaced", 0, REGEX_WARN, "", "spaced" },
	{ "OK", 0, REGEX_DUNNO, "", "" },
	{ "PREPEND X-A: b", 0, REGEX_PREPEND, "", "X-A: b" },
	{ "PREPEND", -1, REGEX_PREPEND, "", "" },
	{ "REDIRECT", -1, REGEX_REDIRECT, "", "" },
	{ "FILTER smtp:x", -1, REGEX_UNKNOWN, "", "smtp:x" },
	{ "", -1, REGEX_UNKNOWN, "", "" },
	{ "REJECT 5.7.1234 x", 0, REGEX_REJECT, "5.7.1", "5.7.1234 x" },
};

static void
test_actions(void)
{
	struct regex_action a;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(action_cases) / sizeof(*action_cases); i++) {
		rc = regex_action_parse(action_cases[i].result, &a);
		is_int(rc, action_cases[i].rc, "action \"%s\": rc",
		    action_cases[i].result);
		if (rc != 0)
			continue;
		is_str(regex_action_name(a.kind),
		    regex_action_name(action_cases[i].kind), "action \"%s\"",
		    action_cases[i].result);
		is_str(a.enhanced, action_cases[i].enhanced,
		    "action \"%s\": enhanced", action_cases[i].result);
		is_str(a.text, action_cases[i].text, "action \"%s\": text",
		    action_cases[i].result);
	}
}

/* ---- whole messages ---- */

struct outcome {
	enum filter_verdict verdict;
	char	 reply[512];
	struct buf headers;	/* after the edits */
	struct buf rcpts;	/* after the edits, "," separated */
};

static struct config cfg;

/* run - the filter's stages on one message, as the session runs them */
static void
run(const char *message, size_t chunk, struct outcome *out)
{
	const char *sep = strstr(message, "\r\n\r\n");
	size_t hlen = sep != NULL ? (size_t)(sep - message) + 2 :
	    strlen(message);
	const char *body = sep != NULL ? sep + 4 : "";
	static struct filter_rcpt rcpts[] = {
		{ "bob@example.net", NULL, NULL },
		{ "carol@example.net", NULL, NULL } };
	struct filter_conn conn;
	struct filter_tx ftx;
	struct filter_call call;
	struct filter_edits edits;
	struct filter_message view;
	struct header_list hl;
	struct edit_envelope env;
	struct buf *new_body = NULL;
	const char *error;
	void *state;
	size_t i, off, n;

	memset(&conn, 0, sizeof(conn));
	memset(&ftx, 0, sizeof(ftx));
	memset(&call, 0, sizeof(call));
	conn.config = &cfg;
	ftx.queue_id = "4TestQid";
	ftx.sender = "alice@example.org";
	ftx.rcpts = rcpts;
	ftx.nrcpts = 2;
	call.conn = &conn;
	call.tx = &ftx;
	state = filter_regex.tx_begin(NULL, &conn);
	call.tx_state = state;
	buf_init(&out->headers, 0);
	buf_init(&out->rcpts, 0);
	out->verdict = FILTER_CONTINUE;
	if (header_list_parse(&hl, message, hlen) == -1) {
		ok(0, "header block parses");
		filter_regex.tx_end(NULL, state);
		return;
	}
	view.headers = &hl;
	view.body = NULL;
	call.stage = FILTER_STAGE_EOH;
	call.message = &view;
	out->verdict = filter_regex.cb[FILTER_STAGE_EOH](&call);
	call.message = NULL;
	call.stage = FILTER_STAGE_BODY;
	for (off = 0; off < strlen(body) && out->verdict == FILTER_CONTINUE;
	    off += n) {
		n = strlen(body) - off < chunk ? strlen(body) - off : chunk;
		call.chunk = body + off;
		call.chunk_len = n;
		out->verdict = filter_regex.cb[FILTER_STAGE_BODY](&call);
	}
	filter_edits_init(&edits);
	if (out->verdict == FILTER_CONTINUE) {
		call.stage = FILTER_STAGE_EOM;
		call.edits = &edits;
		call.message = &view;
		out->verdict = filter_regex.cb[FILTER_STAGE_EOM](&call);
	}
	snprintf(out->reply, sizeof(out->reply), "%s", call.reply);
	edit_envelope_init(&env, ftx.sender, 2);
	env.rcpts[0] = xstrdup(rcpts[0].address);
	env.rcpts[1] = xstrdup(rcpts[1].address);
	if (message_edit_apply(&edits, &hl, &env, &new_body, &error) == -1)
		ok(0, "edits apply: %s", error);
	header_list_format(&hl, &out->headers);
	for (i = 0; i < env.nrcpts; i++) {
		if (i > 0)
			buf_append(&out->rcpts, ",", 1);
		buf_append(&out->rcpts, env.rcpts[i], strlen(env.rcpts[i]));
	}
	edit_envelope_deinit(&env);
	filter_edits_deinit(&edits);
	header_list_deinit(&hl);
	filter_regex.tx_end(NULL, state);
}

#define H	"From: alice@example.org\r\nTo: bob@example.net\r\n"
#define RCPTS	"bob@example.net,carol@example.net"

static const struct mcase {
	const char *name;
	const char *message;
	enum filter_verdict want;
	const char *want_reply;		/* NULL: do not compare */
	const char *want_headers;	/* NULL: unchanged */
	const char *want_rcpts;		/* NULL: RCPTS */
} mcases[] = {
	{ "clean message", H "Subject: hello\r\n\r\nhi\r\n",
	    FILTER_CONTINUE, "", NULL, NULL },
	{ "reject with own code", H "Subject: cheap VIAGRA\r\n\r\nx\r\n",
	    FILTER_REJECT, "550 5.7.0 No pills here", NULL, NULL },
	{ "reject default text", H "Subject: lottery\r\n\r\nx\r\n",
	    FILTER_REJECT, "550 5.7.1 Message content rejected", NULL, NULL },
	{ "defer", H "Subject: postpone\r\n\r\nx\r\n", FILTER_TEMPFAIL,
	    "450 4.7.1 try later", NULL, NULL },
	{ "discard", H "Subject: binary\r\n\r\nx\r\n", FILTER_DISCARD, NULL,
	    NULL, NULL },
	{ "hold", H "Subject: hold me\r\n\r\nx\r\n", FILTER_HOLD, NULL, NULL,
	    NULL },
	{ "warn continues", H "Subject: warn me\r\n\r\nx\r\n",
	    FILTER_CONTINUE, "", NULL, NULL },
	{ "folded header is one logical header",
	    H "Subject: first\r\n   second\r\n\r\nx\r\n", FILTER_REJECT,
	    "550 5.7.1 folded subject", NULL, NULL },
	{ "folded lines are not unfolded",
	    H "Subject: first second\r\n\r\nx\r\n", FILTER_CONTINUE, "", NULL,
	    NULL },
	{ "ignore deletes",
	    H "X-Mailer: Spammer 1.0\r\nSubject: a\r\n\r\nx\r\n",
	    FILTER_CONTINUE, "", H "Subject: a\r\n", NULL },
	{ "strip deletes", H "X-Secret: 42\r\nSubject: a\r\n\r\nx\r\n",
	    FILTER_CONTINUE, "", H "Subject: a\r\n", NULL },
	{ "replace with $1", H "X-Old: value one\r\nSubject: a\r\n\r\nx\r\n",
	    FILTER_CONTINUE, "", H "X-New: value one\r\nSubject: a\r\n", NULL },
	{ "prepend", H "X-Mark: 1\r\nSubject: a\r\n\r\nx\r\n", FILTER_CONTINUE,
	    "", H "X-Marked: yes\r\nX-Mark: 1\r\nSubject: a\r\n", NULL },
	{ "several edits keep their places",
	    "X-Mark: 1\r\nX-Old: a\r\nX-Mailer: Spammer\r\nX-Old: b\r\n"
	    "X-Mark: 2\r\nSubject: s\r\n\r\nx\r\n", FILTER_CONTINUE, "",
	    "X-Marked: yes\r\nX-Mark: 1\r\nX-New: a\r\nX-New: b\r\n"
	    "X-Marked: yes\r\nX-Mark: 2\r\nSubject: s\r\n", NULL },
	{ "redirect", H "Subject: redirect me\r\n\r\nx\r\n", FILTER_CONTINUE,
	    "", NULL, "audit@example.org" },
	{ "bcc", H "Subject: copy me\r\n\r\nx\r\n", FILTER_CONTINUE, "", NULL,
	    RCPTS ",archive@example.org" },
	{ "the last redirect wins", H "X-Redirect-A: 1\r\nX-Redirect-B: 1\r\n"
	    "\r\nx\r\n", FILTER_CONTINUE, "", NULL, "second@example.org" },
	{ "a redirect without a domain is ignored",
	    H "X-Bad-Redirect: 1\r\n\r\nx\r\n", FILTER_CONTINUE, "", NULL,
	    NULL },
	{ "bcc to a recipient adds no copy", H "X-Bcc-Existing: 1\r\n\r\nx\r\n",
	    FILTER_CONTINUE, "", NULL, NULL },
	{ "dunno stops at the first match", H "Subject: dunno\r\n\r\nx\r\n",
	    FILTER_CONTINUE, "", NULL, NULL },
	{ "unknown action ignored", H "Subject: bogus action\r\n\r\nx\r\n",
	    FILTER_CONTINUE, "", NULL, NULL },
	{ "encoded word decoded",
	    H "Subject: =?UTF-8?B?R2V3aW5uc3BpZWw=?=\r\n\r\nx\r\n",
	    FILTER_REJECT, "550 5.7.1 encoded words decoded", NULL, NULL },
	{ "encoded word q", H "Subject: =?iso-8859-1?q?Gewinnspiel?=\r\n"
	    "\r\nx\r\n", FILTER_REJECT, "550 5.7.1 encoded words decoded",
	    NULL, NULL },
	{ "if block", "Received: from evil.test by x\r\n" H "\r\nx\r\n",
	    FILTER_REJECT, "550 5.7.1 no evil relays", NULL, NULL },
	{ "outside the if block", H "Subject: from evil.test\r\n\r\nx\r\n",
	    FILTER_CONTINUE, "", NULL, NULL },
	{ "negated rule", H "X-Ok: 1\r\nReply-To: a@b\r\n\r\nx\r\n",
	    FILTER_REJECT, "550 5.7.1 odd header", NULL, NULL },
	{ "case-insensitive by default", H "SUBJECT: LOTTERY\r\n\r\nx\r\n",
	    FILTER_REJECT, "550 5.7.1 Message content rejected", NULL, NULL },
	/* body */
	{ "headers are checked before the body",
	    H "Subject: lottery\r\n\r\nbuy now\r\n", FILTER_REJECT,
	    "550 5.7.1 Message content rejected", NULL, NULL },
	{ "an edit and a body verdict", H "X-Mark: 1\r\n\r\nhold this line\r\n",
	    FILTER_HOLD, NULL, H "X-Marked: yes\r\nX-Mark: 1\r\n", NULL },
	{ "identical headers edited by position", "X-Old: same\r\n"
	    "X-Mark: 1\r\nX-Old: same\r\n\r\nx\r\n", FILTER_CONTINUE, "",
	    "X-New: same\r\nX-Marked: yes\r\nX-Mark: 1\r\nX-New: same\r\n",
	    NULL },
	{ "body line", H "\r\nhello\r\nbuy now\r\n", FILTER_REJECT,
	    "550 5.7.1 body rule matched", NULL, NULL },
	{ "body line is one line", H "\r\nbuy\r\nnow\r\n", FILTER_CONTINUE, "",
	    NULL, NULL },
	{ "body hold", H "\r\nhold this line\r\n", FILTER_HOLD, NULL, NULL,
	    NULL },
	{ "body prepend is not applied", H "\r\nprepend here\r\n",
	    FILTER_CONTINUE, "", NULL, NULL },
	{ "quoted-printable decoded", H "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=us-ascii\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
	    "get fr=\r\nee m=6Fney today\r\n", FILTER_REJECT,
	    "550 5.7.1 decoded body rule matched", NULL, NULL },
	{ "base64 decoded", H "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n"
	    "\r\nZ2V0IGZyZWUgbW9uZXkgbm93Cg==\r\n", FILTER_REJECT,
	    "550 5.7.1 decoded body rule matched", NULL, NULL },
	{ "attachment by name", H "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
	    "--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
	    "--b1\r\nContent-Type: application/octet-stream\r\n"
	    "Content-Disposition: attachment; filename=\"invoice.pdf.exe\"\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n"
	    "--b1--\r\n", FILTER_REJECT,
	    "550 5.7.1 executable attachments are not accepted", NULL, NULL },
	{ "attachment by type", H "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/mixed; boundary=b2\r\n\r\n"
	    "--b2\r\nContent-Type: application/x-msdownload\r\n\r\nxx\r\n"
	    "--b2--\r\n", FILTER_REJECT,
	    "550 5.7.1 executable content type", NULL, NULL },
	{ "harmless attachment", H "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/mixed; boundary=b3\r\n\r\n"
	    "--b3\r\nContent-Type: application/pdf; name=report.pdf\r\n\r\n"
	    "xx\r\n--b3--\r\n", FILTER_CONTINUE, "", NULL, NULL },
	{ "mime part header", H "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/mixed; boundary=b4\r\n\r\n"
	    "--b4\r\nContent-Type: application/msword;\r\n"
	    " name=\"evil.doc\"\r\n"
	    "\r\nxx\r\n--b4--\r\n", FILTER_REJECT,
	    "550 5.7.1 bad part header", NULL, NULL },
	{ "nested message header", H "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/mixed; boundary=b5\r\n\r\n"
	    "--b5\r\nContent-Type: message/rfc822\r\n\r\n"
	    "Subject: nested spam\r\nFrom: x@y\r\n\r\nbody\r\n--b5--\r\n",
	    FILTER_REJECT, "550 5.7.1 nested message refused", NULL, NULL },
};

static void
test_messages(void)
{
	static const size_t chunks[] = { 65536, 7, 1 };
	const struct mcase *c;
	struct outcome out;
	size_t i, k, hlen;
	char *want_headers;

	for (i = 0; i < sizeof(mcases) / sizeof(*mcases); i++) {
		c = &mcases[i];
		for (k = 0; k < sizeof(chunks) / sizeof(*chunks); k++) {
			run(c->message, chunks[k], &out);
			is_str(filter_verdict_name(out.verdict),
			    filter_verdict_name(c->want), "%s (chunks of %zu): "
			    "verdict", c->name, chunks[k]);
			if (c->want_reply != NULL)
				is_str(out.reply, c->want_reply,
				    "%s (chunks of %zu): reply", c->name,
				    chunks[k]);
			hlen = (size_t)(strstr(c->message, "\r\n\r\n") -
			    c->message) + 2;
			want_headers = c->want_headers != NULL ?
			    xstrdup(c->want_headers) :
			    xstrndup(c->message, hlen);
			if (c->want == FILTER_CONTINUE ||
			    c->want == FILTER_HOLD)
				is_str(buf_cstr(&out.headers), want_headers,
				    "%s (chunks of %zu): headers", c->name,
				    chunks[k]);
			free(want_headers);
			if (c->want == FILTER_CONTINUE)
				is_str(buf_cstr(&out.rcpts),
				    c->want_rcpts != NULL ? c->want_rcpts :
				    RCPTS,
				    "%s (chunks of %zu): recipients", c->name,
				    chunks[k]);
			buf_deinit(&out.headers);
			buf_deinit(&out.rcpts);
		}
	}
}

/* body_checks_size_limit - a rule past the limit of a part is not seen */
static void
test_size_limit(void)
{
	struct outcome out;
	struct buf msg;
	size_t i;

	buf_init(&msg, 0);
	buf_append(&msg, H "\r\n", strlen(H "\r\n"));
	for (i = 0; i < 200; i++)
		buf_append(&msg, "filler line of text\r\n", 21);
	buf_append(&msg, "buy now\r\n", 9);
	cfg.body_checks_size_limit = 1000;
	run(buf_cstr(&msg), 4096, &out);
	is_str(filter_verdict_name(out.verdict), "continue",
	    "size limit: a line past the limit is not checked");
	buf_deinit(&out.headers);
	buf_deinit(&out.rcpts);
	cfg.body_checks_size_limit = 51200;
	run(buf_cstr(&msg), 4096, &out);
	is_str(filter_verdict_name(out.verdict), "reject",
	    "size limit: within the limit it is");
	buf_deinit(&out.headers);
	buf_deinit(&out.rcpts);
	buf_deinit(&msg);
}

static struct table *
open_table(const char *name)
{
	const char *srcdir = getenv("srcdir");
	struct table *t;
	char spec[4096], *abs, *error = NULL;

	snprintf(spec, sizeof(spec), "%s/t/unit/data/regex/%s",
	    srcdir != NULL ? srcdir : ".", name);
	if ((abs = realpath(spec, NULL)) == NULL) {
		ok(0, "fixture %s", spec);
		return NULL;
	}
	snprintf(spec, sizeof(spec), "pcre:%s", abs);
	free(abs);
	if ((t = table_open(spec, &error)) == NULL) {
		ok(0, "open %s: %s", spec, error);
		free(error);
	}
	return t;
}

int
main(void)
{
	test_actions();
	cfg.header_checks = open_table("header_checks");
	cfg.body_checks = open_table("body_checks");
	cfg.mime_header_checks = open_table("mime_header_checks");
	cfg.nested_header_checks = open_table("nested_header_checks");
	cfg.attachment_checks = open_table("attachment_checks");
	cfg.body_checks_size_limit = 51200;
	if (cfg.header_checks != NULL && cfg.body_checks != NULL &&
	    cfg.mime_header_checks != NULL &&
	    cfg.nested_header_checks != NULL &&
	    cfg.attachment_checks != NULL) {
		test_messages();
		test_size_limit();
	}
	table_free(&cfg.header_checks);
	table_free(&cfg.body_checks);
	table_free(&cfg.mime_header_checks);
	table_free(&cfg.nested_header_checks);
	table_free(&cfg.attachment_checks);
	return done_testing();
}

/*
 * test_chain.c - unit tests for filters/chain.c with scripted test
 * filters: stages run in chain order, the first verdict that is not
 * CONTINUE decides, ACCEPT skips the rest of the transaction but for
 * abort/close, replies are policed (class, format, CR/LF), per-filter
 * transaction state, stage masks, and init failure cleanup.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "chain.h"
#include "config/config.h"
#include "filter.h"
#include "tap.h"
#include "xmalloc.h"

#define NTF	4

/* a scripted filter; its instance is the struct itself */
struct tfilter {
	const char	*name;
	enum filter_verdict verdict[FILTER_STAGE_COUNT];
	const char	*reply[FILTER_STAGE_COUNT];	/* copied to reply */
	bool		 fail_init;
	int		 inits, deinits, tx_begins, tx_ends;
	int		 live_tx;	/* tx_begin minus tx_end */
};

static struct tfilter tf[NTF];
static struct filter_ops tops[NTF];
static struct buf calls;		/* "A:mail[txA] B:mail[-] " */

static void *
tinit(int k, char **error_r)
{
	tf[k].inits++;
	if (tf[k].fail_init) {
		*error_r = xstrdup("no database");
		return NULL;
	}
	return &tf[k];
}

static void *
init0(const struct config *cfg, char **error_r)
{
	return tinit(0, error_r);
}

static void *
init1(const struct config *cfg, char **error_r)
{
	return tinit(1, error_r);
}

static void *
init2(const struct config *cfg, char **error_r)
{
	return tinit(2, error_r);
}

static void *
init3(const struct config *cfg, char **error_r)
{
	return tinit(3, error_r);
}

static void
tdeinit(void *instance)
{
	struct tfilter *t = instance;

	t->deinits++;
}

static void *
ttx_begin(void *instance, const struct filter_conn *conn)
{
	struct tfilter *t = instance;

	t->tx_begins++;
	t->live_tx++;
	return xasprintf("tx%s", t->name);
}

static void
ttx_end(void *instance, void *tx_state)
{
	struct tfilter *t = instance;

	t->tx_ends++;
	t->live_tx--;
	buf_printf(&calls, "%s:end[%s] ", t->name,
	    tx_state != NULL ? (char *)tx_state : "-");
	free(tx_state);
}

static enum filter_verdict
tcb(struct filter_call *call)
{
	struct tfilter *t = call->instance;

	buf_printf(&calls, "%s:%s[%s] ", t->name,
	    filter_stage_name(call->stage),
	    call->tx_state != NULL ? (char *)call->tx_state : "-");
	if (t->reply[call->stage] != NULL)
		snprintf(call->reply, sizeof(call->reply), "%s",
		    t->reply[call->stage]);
	return t->verdict[call->stage];
}

/*
 * setup - filters A, B, C, D with callbacks for the stages in masks[k];
 * tx state only for the filters in txmask; may_block per blockmask
 */
static void
setup(const unsigned masks[NTF], unsigned txmask, unsigned blockmask)
{
	static const char *const names[NTF] = { "A", "B", "C", "D" };
	static void *(*const inits[NTF])(const struct config *, char **) = {
		init0, init1, init2, init3,
	};
	int k, s;

	buf_reset(&calls);
	for (k = 0; k < NTF; k++) {
		memset(&tf[k], 0, sizeof(tf[k]));
		memset(&tops[k], 0, sizeof(tops[k]));
		tf[k].name = names[k];
		tops[k].name = names[k];
		tops[k].stages = masks[k];
		tops[k].may_block = (blockmask & (1u << k)) != 0;
		tops[k].init = inits[k];
		tops[k].deinit = tdeinit;
		if (txmask & (1u << k)) {
			tops[k].tx_begin = ttx_begin;
			tops[k].tx_end = ttx_end;
		}
		for (s = 0; s < FILTER_STAGE_COUNT; s++)
			if (masks[k] & FILTER_STAGE_BIT(s))
				tops[k].cb[s] = tcb;
	}
}

#define B(s)	FILTER_STAGE_BIT(FILTER_STAGE_##s)
#define ALL	((1u << FILTER_STAGE_COUNT) - 1)

static struct chain *
make_chain(size_t n)
{
	const struct filter_ops *p[NTF];
	struct chain *c;
	char *error = NULL;
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = &tops[i];
	if ((c = chain_new_ops(p, n, NULL, &error)) == NULL) {
		printf("# chain_new_ops: %s\n", error ? error : "(null)");
		free(error);
	}
	return c;
}

/* run - one stage; returns the verdict, *who_r and the reply */
static enum filter_verdict
run(struct chain_tx *tx, enum filter_stage stage, const char **who_r,
    char *reply, size_t replysz)
{
	struct filter_conn conn = { .client_addr = "127.0.0.1" };
	struct filter_tx ftx = { .sender = "s@example.org" };
	struct filter_call call;
	enum filter_verdict v;

	memset(&call, 0, sizeof(call));
	call.conn = &conn;
	call.tx = &ftx;
	call.stage = stage;
	v = chain_run(tx, &call, who_r);
	if (reply != NULL)
		snprintf(reply, replysz, "%s", call.reply);
	return v;
}

/* ---- order, deciding filter, ACCEPT ---- */

static const struct order_case {
	const char	*name;
	unsigned	 masks[NTF];
	enum filter_stage stage;
	enum filter_verdict verdict[NTF];	/* at that stage */
	enum filter_verdict want;
	const char	*want_who;
	const char	*want_calls;
} order_cases[] = {
	{ "all continue", { ALL, ALL, ALL }, FILTER_STAGE_MAIL,
	    { 0 }, FILTER_CONTINUE, NULL,
	    "A:mail[txA] B:mail[txB] C:mail[txC] " },
	{ "second rejects", { ALL, ALL, ALL }, FILTER_STAGE_RCPT,
	    { FILTER_CONTINUE, FILTER_REJECT }, FILTER_REJECT, "B",
	    "A:rcpt[txA] B:rcpt[txB] " },
	{ "first tempfails", { ALL, ALL, ALL }, FILTER_STAGE_HELO,
	    { FILTER_TEMPFAIL, FILTER_REJECT }, FILTER_TEMPFAIL, "A",
	    "A:helo[txA] " },
	{ "third discards", { ALL, ALL, ALL }, FILTER_STAGE_EOM,
	    { 0, 0, FILTER_DISCARD }, FILTER_DISCARD, "C",
	    "A:eom[txA] B:eom[txB] C:eom[txC] " },
	{ "hold lets the others run", { ALL, ALL, ALL }, FILTER_STAGE_EOM,
	    { 0, FILTER_HOLD }, FILTER_HOLD, "B",
	    "A:eom[txA] B:eom[txB] C:eom[txC] " },
	{ "reject after hold wins", { ALL, ALL, ALL }, FILTER_STAGE_RCPT,
	    { FILTER_HOLD, 0, FILTER_REJECT }, FILTER_REJECT, "C",
	    "A:rcpt[txA] B:rcpt[txB] C:rcpt[txC] " },
	{ "filter without the stage skipped", { B(MAIL), B(RCPT), B(RCPT) },
	    FILTER_STAGE_RCPT, { FILTER_REJECT, 0, FILTER_DISCONNECT },
	    FILTER_DISCONNECT, "C", "B:rcpt[txB] C:rcpt[txC] " },
	{ "nobody wants the stage", { B(MAIL), B(MAIL), B(MAIL) },
	    FILTER_STAGE_BODY, { FILTER_REJECT }, FILTER_CONTINUE, NULL, "" },
	{ "accept stops the stage", { ALL, ALL, ALL }, FILTER_STAGE_DATA,
	    { FILTER_ACCEPT, FILTER_REJECT }, FILTER_ACCEPT, "A",
	    "A:data[txA] " },
};

static void
test_order(void)
{
	const struct order_case *c;
	struct chain *ch;
	struct chain_tx tx;
	const char *who;
	char reply[512];
	enum filter_verdict v;
	size_t i;
	int k;

	for (i = 0; i < sizeof(order_cases) / sizeof(order_cases[0]); i++) {
		c = &order_cases[i];
		setup(c->masks, 0x7, 0);
		for (k = 0; k < 3; k++) {
			tf[k].verdict[c->stage] = c->verdict[k];
			if (c->verdict[k] == FILTER_REJECT)
				tf[k].reply[c->stage] = "550 5.7.1 no";
			else if (c->verdict[k] == FILTER_TEMPFAIL)
				tf[k].reply[c->stage] = "450 4.7.1 later";
			else if (c->verdict[k] == FILTER_DISCONNECT)
				tf[k].reply[c->stage] = "421 4.7.0 bye";
		}
		if ((ch = make_chain(3)) == NULL) {
			ok(0, "%s: chain", c->name);
			continue;
		}
		chain_tx_begin(&tx, ch, NULL);
		buf_reset(&calls);
		v = run(&tx, c->stage, &who, reply, sizeof(reply));
		is_str(filter_verdict_name(v), filter_verdict_name(c->want),
		    "%s: verdict", c->name);
		is_str(who, c->want_who, "%s: deciding filter", c->name);
		is_str(buf_cstr(&calls), c->want_calls, "%s: calls", c->name);
		chain_tx_end(&tx);
		chain_free(&ch);
	}
}

/* ACCEPT: later stages skipped without calls, except abort and close */
static void
test_accept(void)
{
	static const unsigned all3[NTF] = { ALL, ALL, ALL };
	struct chain *ch;
	struct chain_tx tx;
	const char *who;
	char reply[512];

	setup(all3, 0x7, 0);
	tf[1].verdict[FILTER_STAGE_RCPT] = FILTER_ACCEPT;
	tf[0].reply[FILTER_STAGE_RCPT] = "junk left by a continuing filter";
	tf[2].verdict[FILTER_STAGE_DATA] = FILTER_REJECT;
	tf[2].reply[FILTER_STAGE_DATA] = "550 5.7.1 no";
	if ((ch = make_chain(3)) == NULL) {
		ok(0, "accept: chain");
		return;
	}
	chain_tx_begin(&tx, ch, NULL);
	is_int(run(&tx, FILTER_STAGE_RCPT, &who, reply, sizeof(reply)),
	    FILTER_ACCEPT, "accept: verdict");
	is_str(who, "B", "accept: deciding filter");
	is_str(reply, "", "accept: reply reset per filter");
	ok(tx.accepted, "accept: tx.accepted set");
	buf_reset(&calls);
	is_int(run(&tx, FILTER_STAGE_DATA, &who, NULL, 0), FILTER_CONTINUE,
	    "accept: later stage continues");
	is_str(who, NULL, "accept: later stage has no deciding filter");
	is_str(buf_cstr(&calls), "", "accept: later stage calls nobody");
	is_int(run(&tx, FILTER_STAGE_EOM, &who, NULL, 0), FILTER_CONTINUE,
	    "accept: eom continues");
	is_str(buf_cstr(&calls), "", "accept: eom calls nobody");
	is_int(run(&tx, FILTER_STAGE_ABORT, &who, NULL, 0), FILTER_CONTINUE,
	    "accept: abort verdict");
	is_str(buf_cstr(&calls), "A:abort[txA] B:abort[txB] C:abort[txC] ",
	    "accept: abort still runs every filter");
	buf_reset(&calls);
	(void)run(&tx, FILTER_STAGE_CLOSE, &who, NULL, 0);
	is_str(buf_cstr(&calls), "A:close[txA] B:close[txB] C:close[txC] ",
	    "accept: close still runs every filter");
	chain_tx_end(&tx);

	/* a new transaction forgets the ACCEPT */
	chain_tx_begin(&tx, ch, NULL);
	ok(!tx.accepted, "accept: new transaction not accepted");
	buf_reset(&calls);
	is_int(run(&tx, FILTER_STAGE_DATA, &who, reply, sizeof(reply)),
	    FILTER_REJECT, "accept: new transaction runs the filters");
	is_str(buf_cstr(&calls), "A:data[txA] B:data[txB] C:data[txC] ",
	    "accept: new transaction calls");
	chain_tx_end(&tx);
	chain_free(&ch);
}

/* ---- reply policing ---- */

#define R451	"451 4.3.0 Error: internal filter error"
#define R421	"421 4.3.0 Error: internal filter error"

static const struct police_case {
	const char	*name;
	enum filter_verdict verdict;
	const char	*reply;
	enum filter_verdict want;
	const char	*want_reply;
} police_cases[] = {
	{ "reject 550", FILTER_REJECT, "550 5.7.1 no", FILTER_REJECT,
	    "550 5.7.1 no" },
	{ "reject 554", FILTER_REJECT, "554 5.7.1 Relay access denied",
	    FILTER_REJECT, "554 5.7.1 Relay access denied" },
	{ "reject with 4xx", FILTER_REJECT, "451 4.3.0 x", FILTER_TEMPFAIL,
	    R451 },
	{ "reject without reply", FILTER_REJECT, NULL, FILTER_TEMPFAIL,
	    R451 },
	{ "reject code only", FILTER_REJECT, "550", FILTER_TEMPFAIL, R451 },
	{ "reject without enhanced code", FILTER_REJECT, "550 go away",
	    FILTER_TEMPFAIL, R451 },
	{ "reject class mismatch", FILTER_REJECT, "550 4.7.1 mixed",
	    FILTER_TEMPFAIL, R451 },
	{ "reject multi-line", FILTER_REJECT, "550-5.7.1 first",
	    FILTER_TEMPFAIL, R451 },
	{ "reject bad digit", FILTER_REJECT, "5x0 5.7.1 no",
	    FILTER_TEMPFAIL, R451 },
	{ "reject bad enhanced code", FILTER_REJECT, "550 5.x.y no",
	    FILTER_TEMPFAIL, R451 },
	{ "reject with CRLF", FILTER_REJECT, "550 5.7.1 a\r\n250 ok",
	    FILTER_TEMPFAIL, R451 },
	{ "reject with LF", FILTER_REJECT, "550 5.7.1 a\nb",
	    FILTER_TEMPFAIL, R451 },
	{ "reject with CR", FILTER_REJECT, "550 5.7.1 a\rb",
	    FILTER_TEMPFAIL, R451 },
	{ "tempfail 450", FILTER_TEMPFAIL, "450 4.2.0 busy", FILTER_TEMPFAIL,
	    "450 4.2.0 busy" },
	{ "tempfail with 5xx", FILTER_TEMPFAIL, "550 5.7.1 no",
	    FILTER_TEMPFAIL, R451 },
	{ "tempfail without reply", FILTER_TEMPFAIL, NULL, FILTER_TEMPFAIL,
	    R451 },
	{ "tempfail with CRLF", FILTER_TEMPFAIL, "450 4.2.0 a\r\n",
	    FILTER_TEMPFAIL, R451 },
	{ "disconnect 421", FILTER_DISCONNECT, "421 4.7.0 bye",
	    FILTER_DISCONNECT, "421 4.7.0 bye" },
	{ "disconnect with 450", FILTER_DISCONNECT, "450 4.7.0 bye",
	    FILTER_DISCONNECT, R421 },
	{ "disconnect with 554", FILTER_DISCONNECT, "554 5.7.1 bye",
	    FILTER_DISCONNECT, R421 },
	{ "disconnect 421 5.x.x", FILTER_DISCONNECT, "421 5.7.0 bye",
	    FILTER_DISCONNECT, R421 },
	{ "disconnect without reply", FILTER_DISCONNECT, NULL,
	    FILTER_DISCONNECT, R421 },
	{ "disconnect with LF", FILTER_DISCONNECT, "421 4.7.0 a\nb",
	    FILTER_DISCONNECT, R421 },
	{ "discard keeps its verdict", FILTER_DISCARD, NULL, FILTER_DISCARD,
	    "" },
};

static void
test_police(void)
{
	static const unsigned one[NTF] = { B(MAIL), B(MAIL) };
	const struct police_case *c;
	struct chain *ch;
	struct chain_tx tx;
	const char *who;
	char reply[512];
	enum filter_verdict v;
	size_t i;

	for (i = 0; i < sizeof(police_cases) / sizeof(police_cases[0]);
	    i++) {
		c = &police_cases[i];
		setup(one, 0, 0);
		tf[0].verdict[FILTER_STAGE_MAIL] = c->verdict;
		tf[0].reply[FILTER_STAGE_MAIL] = c->reply;
		tf[1].verdict[FILTER_STAGE_MAIL] = FILTER_REJECT;
		tf[1].reply[FILTER_STAGE_MAIL] = "550 5.7.1 second";
		if ((ch = make_chain(2)) == NULL) {
			ok(0, "%s: chain", c->name);
			continue;
		}
		chain_tx_begin(&tx, ch, NULL);
		v = run(&tx, FILTER_STAGE_MAIL, &who, reply, sizeof(reply));
		is_str(filter_verdict_name(v), filter_verdict_name(c->want),
		    "police %s: verdict", c->name);
		is_str(reply, c->want_reply, "police %s: reply", c->name);
		is_str(who, "A", "police %s: deciding filter", c->name);
		chain_tx_end(&tx);
		chain_free(&ch);
	}
}

/* ---- transaction state, masks, init failure ---- */

static void
test_tx_state(void)
{
	static const unsigned masks[NTF] = { B(MAIL), B(MAIL), B(MAIL) };
	struct chain *ch;
	struct chain_tx tx, never;
	const char *who;
	int k, begins = 0, ends = 0;

	setup(masks, 0x5, 0);		/* A and C keep state, B does not */
	if ((ch = make_chain(3)) == NULL) {
		ok(0, "tx state: chain");
		return;
	}
	chain_tx_begin(&tx, ch, NULL);
	for (k = 0; k < 3; k++)
		begins += tf[k].tx_begins;
	is_int(begins, 2, "tx state: tx_begin once per filter that has it");
	is_int(tf[0].tx_begins, 1, "tx state: A tx_begin once");
	(void)run(&tx, FILTER_STAGE_MAIL, &who, NULL, 0);
	is_str(buf_cstr(&calls), "A:mail[txA] B:mail[-] C:mail[txC] ",
	    "tx state: each filter gets its own tx_state");
	buf_reset(&calls);
	chain_tx_end(&tx);
	is_str(buf_cstr(&calls), "A:end[txA] C:end[txC] ",
	    "tx state: tx_end gets the state back, in order");
	chain_tx_end(&tx);
	for (k = 0; k < 3; k++)
		ends += tf[k].tx_ends;
	is_int(ends, 2, "tx state: tx_end twice calls each filter once");
	ok(tx.state == NULL, "tx state: state freed");

	/* a chain_tx that was never begun: zeroed, chain_tx_end is a no-op */
	memset(&never, 0, sizeof(never));
	chain_tx_end(&never);
	is_int(tf[0].tx_ends, 1, "tx state: zeroed chain_tx end is a no-op");
	chain_free(&ch);
	ok(ch == NULL, "chain_free clears the pointer");
	is_int(tf[0].deinits + tf[1].deinits + tf[2].deinits, 3,
	    "chain_free deinits every filter once");
	chain_free(&ch);
	is_int(tf[0].deinits, 1, "chain_free twice is safe");
}

static const struct mask_case {
	const char	*name;
	enum filter_stage stage;
	bool		 want_has;
	bool		 want_block;
} mask_cases[] = {
	{ "connect", FILTER_STAGE_CONNECT, false, false },
	{ "mail (inline filter only)", FILTER_STAGE_MAIL, true, false },
	{ "rcpt (inline and blocking)", FILTER_STAGE_RCPT, true, true },
	{ "eom (blocking only)", FILTER_STAGE_EOM, true, true },
	{ "header (nobody)", FILTER_STAGE_HEADER, false, false },
	{ "close (inline)", FILTER_STAGE_CLOSE, true, false },
};

static void
test_masks(void)
{
	static const unsigned masks[NTF] = {
		B(MAIL) | B(RCPT) | B(CLOSE), B(RCPT) | B(EOM),
	};
	const struct mask_case *c;
	struct chain *ch;
	size_t i;

	setup(masks, 0, 0x2);		/* B may block */
	if ((ch = make_chain(2)) == NULL) {
		ok(0, "masks: chain");
		return;
	}
	for (i = 0; i < sizeof(mask_cases) / sizeof(mask_cases[0]); i++) {
		c = &mask_cases[i];
		is_int(chain_has_stage(ch, c->stage), c->want_has,
		    "chain_has_stage %s", c->name);
		is_int(chain_stage_may_block(ch, c->stage), c->want_block,
		    "chain_stage_may_block %s", c->name);
	}
	chain_free(&ch);
}

static void
test_init_failure(void)
{
	static const unsigned masks[NTF] = { ALL, ALL, ALL, ALL };
	const struct filter_ops *p[NTF];
	struct chain *ch;
	char *error = NULL;
	int k;

	setup(masks, 0, 0);
	tf[2].fail_init = true;
	for (k = 0; k < NTF; k++)
		p[k] = &tops[k];
	ch = chain_new_ops(p, NTF, NULL, &error);
	ok(ch == NULL, "init failure: no chain");
	is_str(error, "filter C: no database", "init failure: error_r");
	is_int(tf[0].inits, 1, "init failure: A initialized once");
	is_int(tf[1].inits, 1, "init failure: B initialized once");
	is_int(tf[2].inits, 1, "init failure: C init tried");
	is_int(tf[3].inits, 0, "init failure: D never initialized");
	is_int(tf[0].deinits, 1, "init failure: A deinit'ed");
	is_int(tf[1].deinits, 1, "init failure: B deinit'ed");
	is_int(tf[2].deinits, 0, "init failure: C (failed) not deinit'ed");
	is_int(tf[3].deinits, 0, "init failure: D not deinit'ed");
	free(error);
	chain_free(&ch);

	/* failing first: nothing to deinit */
	setup(masks, 0, 0);
	tf[0].fail_init = true;
	error = NULL;
	ch = chain_new_ops(p, NTF, NULL, &error);
	ok(ch == NULL, "init failure first: no chain");
	is_str(error, "filter A: no database", "init failure first: error_r");
	is_int(tf[0].deinits + tf[1].deinits + tf[1].inits, 0,
	    "init failure first: nothing else touched");
	free(error);
}

static void
test_empty_chain(void)
{
	struct chain *ch;
	struct chain_tx tx;
	const char *who = "x";
	char *error = NULL;

	ch = chain_new_ops(NULL, 0, NULL, &error);
	ok(ch != NULL, "empty chain: built");
	if (ch == NULL)
		return;
	chain_tx_begin(&tx, ch, NULL);
	is_int(run(&tx, FILTER_STAGE_MAIL, &who, NULL, 0), FILTER_CONTINUE,
	    "empty chain: continue");
	is_str(who, NULL, "empty chain: no deciding filter");
	ok(!chain_has_stage(ch, FILTER_STAGE_MAIL), "empty chain: no stage");
	chain_tx_end(&tx);
	chain_free(&ch);
}

/* ---- smtpd_filters: names, duplicates, signing order ---- */

static const struct {
	const char *name;
	const char *filters[6];
	const char *want_error;	/* NULL: the chain builds */
} names_cases[] = {
	{ "relay, sender, regex", { "relay", "sender", "regex" }, NULL },
	{ "unknown", { "relay", "antivirus" },
	    "smtpd_filters: unknown filter \"antivirus\"" },
	{ "twice", { "relay", "sender", "relay" },
	    "smtpd_filters: \"relay\" is listed twice" },
	{ "regex after dkim", { "relay", "dkim", "regex" },
	    "smtpd_filters: \"regex\" edits the message, so it must come "
	    "before \"dkim\", which signs it" },
	{ "spf after dkim", { "dkim", "spf" },
	    "smtpd_filters: \"spf\" edits the message, so it must come "
	    "before \"dkim\", which signs it" },
	{ "sender after dkim", { "relay", "dkim", "sender" },
	    "smtpd_filters: \"sender\" edits the message, so it must come "
	    "before \"dkim\", which signs it" },
	{ "the issue's order", { "relay", "sender", "regex", "dkim" }, NULL },
	{ "policy services without policy", { "relay" },
	    "smtpd_policy_services is set but smtpd_filters has no "
	    "\"policy\" to say where they run" },
};

static const char *const policy_services[] = {
	"inet:127.0.0.1:10023", NULL };

static void
test_names(void)
{
	struct config cfg;
	struct chain *c;
	char *error;
	size_t i;

	for (i = 0; i < sizeof(names_cases) / sizeof(*names_cases); i++) {
		memset(&cfg, 0, sizeof(cfg));
		cfg.smtpd_filters = (char **)names_cases[i].filters;
		cfg.body_checks_size_limit = 51200;
		/* what dkim's init reads; no tables, no verification */
		cfg.dkim_canonicalization = (char *)"relaxed/relaxed";
		cfg.dkim_sign_failure_action = (char *)"accept";
		cfg.authserv_id = (char *)"relay.test";
		cfg.smtpd_policy_services = strstr(names_cases[i].name,
		    "policy") != NULL ? (char **)policy_services : NULL;
		error = NULL;
		c = chain_new(&cfg, &error);
		if (names_cases[i].want_error == NULL)
			ok(c != NULL, "names: %s: builds (%s)",
			    names_cases[i].name, error != NULL ? error : "");
		else {
			ok(c == NULL, "names: %s: refused",
			    names_cases[i].name);
			is_str(error != NULL ? error : "",
			    names_cases[i].want_error, "names: %s: error",
			    names_cases[i].name);
		}
		free(error);
		chain_free(&c);
	}
}

int
main(void)
{
	buf_init(&calls, 0);
	test_names();
	test_order();
	test_accept();
	test_police();
	test_tx_state();
	test_masks();
	test_init_failure();
	test_empty_chain();
	buf_deinit(&calls);
	return done_testing();
}

/*
 * milter_verdict.c - what a milter's answer, or its failure, makes of
 * the SMTP session: one command sent and its answer turned into a
 * filter verdict with Postfix's texts (reject "550 5.7.1 Command
 * rejected", tempfail "451 4.7.1 Service unavailable - try again
 * later", replycode its own text policed by milter_replycode, discard,
 * accept: this milter is done with the message; shutdown "421 4.7.0
 * Server closing connection" and close). A discard at connect or helo
 * is logged and ignored, as Postfix does.
 *
 * A milter that cannot be reached, times out, closes or speaks garbage
 * is closed, logged once with what went wrong, and its default action
 * applies for the rest of the session (Postfix's milter_default_action):
 * tempfail and reject refuse every later MAIL, RCPT, DATA and end of
 * message, quarantine holds every message, accept goes on without it. A
 * failure at CONNECT or HELO is applied at MAIL: a session is never
 * refused at the greeting because of a milter.
 *
 * It owns nothing; the connection's I/O is milter_conn.c's.
 *
 * References: Postfix milter8.c behaviour (default action, timeouts);
 * RFC 5321 4.2 (reply codes) and RFC 3463 2 (enhanced status codes).
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "milter-private.h"

/* Postfix's texts for reject and tempfail */
#define REPLY_REJECT	"550 5.7.1 Command rejected"
#define REPLY_TEMPFAIL	"451 4.7.1 Service unavailable - try again later"
/* and for a shutdown reply */
#define REPLY_SHUTDOWN	"421 4.7.0 Server closing connection"

int
milter_replycode(const char *text, char *out, size_t n)
{
	const char *line = text, *p, *t, *enh;
	char cls, clean[400];
	size_t i, elen = 0;
	int v;

	/* a multi-line reply: its last line carries the final text */
	for (p = text; *p != '\0'; p++)
		if (*p == '\n' && p[1] != '\0')
			line = p + 1;
	if (!isdigit((unsigned char)line[0]) ||
	    !isdigit((unsigned char)line[1]) ||
	    !isdigit((unsigned char)line[2]) ||
	    (line[3] != ' ' && line[3] != '-' && line[3] != '\0' &&
	    line[3] != '\r' && line[3] != '\n'))
		return -1;
	cls = line[0];
	if (cls != '4' && cls != '5')
		return -1;
	t = line[3] == ' ' || line[3] == '-' ? line + 4 : line + 3;
	/* an enhanced code "c.d.d" of the reply's class (RFC 3463 2) */
	enh = t;
	p = t;
	if (isdigit((unsigned char)*p) && p[1] == '.') {
		p += 2;
		for (i = 0; isdigit((unsigned char)*p) && i < 4; i++)
			p++;
		if (i > 0 && i < 4 && *p == '.') {
			p++;
			for (i = 0; isdigit((unsigned char)*p) && i < 4; i++)
				p++;
			if (i > 0 && i < 4 && (*p == ' ' || *p == '\0' ||
			    *p == '\r' || *p == '\n'))
				elen = (size_t)(p - t);
		}
	}
	if (elen > 0) {
		t += elen;
		if (*t == ' ')
			t++;
	}
	for (i = 0; t[i] != '\0' && t[i] != '\r' && t[i] != '\n' &&
	    i + 1 < sizeof(clean); i++)
		clean[i] = (unsigned char)t[i] < 0x20 ||
		    (unsigned char)t[i] > 0x7e ? '?' : t[i];
	clean[i] = '\0';
	if (elen > 0 && enh[0] == cls)
		snprintf(out, n, "%.3s %.*s%s%s", line, (int)elen, enh,
		    clean[0] != '\0' ? " " : "", clean);
	else
		snprintf(out, n, "%.3s %c.7.1%s%s", line, cls,
		    clean[0] != '\0' ? " " : "", clean);
	if (strncmp(line, "421", 3) == 0)
		v = FILTER_DISCONNECT;
	else
		v = cls == '4' ? FILTER_TEMPFAIL : FILTER_REJECT;
	return v;
}

static const char *
timeout_name(char cmd)
{
	switch (cmd) {
	case MILTER_CMD_OPTNEG:
		return "connect_timeout";
	case MILTER_CMD_HEADER:
	case MILTER_CMD_EOH:
	case MILTER_CMD_BODY:
	case MILTER_CMD_BODYEOB:
		return "content_timeout";
	default:
		return "command_timeout";
	}
}

static int
timeout_of(const struct milter_spec *spec, char cmd)
{
	switch (cmd) {
	case MILTER_CMD_OPTNEG:
		return spec->connect_timeout;
	case MILTER_CMD_HEADER:
	case MILTER_CMD_EOH:
	case MILTER_CMD_BODY:
	case MILTER_CMD_BODYEOB:
		return spec->content_timeout;
	default:
		return spec->command_timeout;
	}
}

/*
 * fallback - the verdict of a failed milter at a message stage: its
 * default action, into call->reply; CONTINUE for accept (and before
 * MAIL: a session is never refused at the greeting)
 */
static enum filter_verdict
fallback(struct filter_call *call, const struct milter_conn *m,
    struct milters_state *t)
{
	if (call->stage == FILTER_STAGE_CONNECT ||
	    call->stage == FILTER_STAGE_HELO)
		return FILTER_CONTINUE;
	switch (m->spec->fallback) {
	case MILTER_FALLBACK_TEMPFAIL:
		snprintf(call->reply, sizeof(call->reply), "%s",
		    REPLY_TEMPFAIL);
		return FILTER_TEMPFAIL;
	case MILTER_FALLBACK_REJECT:
		snprintf(call->reply, sizeof(call->reply), "%s",
		    REPLY_REJECT);
		return FILTER_REJECT;
	case MILTER_FALLBACK_QUARANTINE:
		if (t != NULL && !t->hold) {
			t->hold = true;
			snprintf(t->hold_reason, sizeof(t->hold_reason),
			    "milter %s unavailable", m->spec->name);
		}
		return FILTER_CONTINUE;
	case MILTER_FALLBACK_ACCEPT:
		break;
	}
	return FILTER_CONTINUE;
}

/*
 * milter_verdict_failed - a milter went wrong: log it once, mark it,
 * and give its default action
 */
enum filter_verdict
milter_verdict_failed(struct filter_call *call, struct milter_conn *m,
    struct milters_state *t, char cmd, const char *what)
{
	const char *stage = filter_stage_name(call->stage);
	char when[64];

	if (cmd == MILTER_CMD_OPTNEG)
		snprintf(when, sizeof(when), "connect");
	else
		snprintf(when, sizeof(when), "%s", stage);
	if (strncmp(what, "timeout", 7) == 0)
		log_warnx("%s: milter %s: %s after %s (%s %ds); applying "
		    "milter_default_action %s", milter_qid(call), m->spec->name,
		    what, when, timeout_name(cmd), timeout_of(m->spec, cmd),
		    milter_fallback_name(m->spec->fallback));
	else
		log_warnx("%s: milter %s: %s at %s; applying "
		    "milter_default_action %s", milter_qid(call), m->spec->name,
		    what, when, milter_fallback_name(m->spec->fallback));
	milter_conn_close(m);
	m->in_tx = false;
	if (m->spec->fallback == MILTER_FALLBACK_ACCEPT)
		m->state = MILTER_CONN_DONE;
	else
		m->state = MILTER_CONN_FAILED;
	return fallback(call, m, t);
}

/*
 * milter_verdict_final - a reject, tempfail, replycode or discard into
 * a verdict; a replycode we cannot use is the milter's failure
 */
enum filter_verdict
milter_verdict_final(struct filter_call *call, struct milter_conn *m,
    struct milters_state *t, char cmd, const struct milter_answer *a)
{
	int v;

	switch (a->code) {
	case MILTER_REPLY_REJECT:
		snprintf(call->reply, sizeof(call->reply), "%s",
		    REPLY_REJECT);
		return FILTER_REJECT;
	case MILTER_REPLY_TEMPFAIL:
		snprintf(call->reply, sizeof(call->reply), "%s",
		    REPLY_TEMPFAIL);
		return FILTER_TEMPFAIL;
	case MILTER_REPLY_REPLYCODE:
		if ((v = milter_replycode(a->text, call->reply,
		    sizeof(call->reply))) == -1)
			return milter_verdict_failed(call, m, t, cmd,
			    "malformed replycode");
		return (enum filter_verdict)v;
	case MILTER_REPLY_SHUTDOWN:
		/*
		 * Postfix: the connection is refused, 421 and close, now or
		 * at the first stage that can answer
		 */
		log_warnx("%s: milter %s: shutdown at %s; the session is "
		    "closed with 421", milter_qid(call), m->spec->name,
		    filter_stage_name(call->stage));
		milter_conn_close(m);
		m->state = MILTER_CONN_DONE;
		m->sess_verdict = FILTER_DISCONNECT;
		snprintf(m->sess_reply, sizeof(m->sess_reply), "%s",
		    REPLY_SHUTDOWN);
		snprintf(call->reply, sizeof(call->reply), "%s",
		    REPLY_SHUTDOWN);
		return FILTER_DISCONNECT;
	case MILTER_REPLY_DISCARD:
		if (call->stage == FILTER_STAGE_CONNECT ||
		    call->stage == FILTER_STAGE_HELO) {
			/* Postfix: ignored, the milter is asked on */
			log_warnx("%s: milter %s: DISCARD action is not "
			    "allowed for connect or helo", milter_qid(call),
			    m->spec->name);
			return FILTER_CONTINUE;
		}
		log_info("%s: milter %s: discard at %s", milter_qid(call),
		    m->spec->name, filter_stage_name(call->stage));
		if (call->stage == FILTER_STAGE_EOM)
			return FILTER_DISCARD;
		if (t != NULL)
			t->discard = true;	/* applied at end of message */
		m->msg_done = true;
		return FILTER_CONTINUE;
	}
	return milter_verdict_failed(call, m, t, cmd, "unexpected reply");
}

/*
 * milter_verdict_command - send out (macros and command cmd) to m and
 * make a verdict of the answer; CONTINUE also for accept (m->msg_done
 * set)
 */
enum filter_verdict
milter_verdict_command(struct filter_call *call, struct milter_conn *m,
    struct milters_state *t, const struct buf *out, char cmd)
{
	struct milter_answer a;
	const char *err;

	memset(&a, 0, sizeof(a));
	switch (milter_conn_command(m, out, cmd,
	    timeout_of(m->spec, cmd) * 1000, NULL, &a, &err)) {
	case MILTER_RES_CONTINUE:
		return FILTER_CONTINUE;
	case MILTER_RES_ACCEPT:
		m->msg_done = true;
		return FILTER_CONTINUE;
	case MILTER_RES_FINAL:
		return milter_verdict_final(call, m, t, cmd, &a);
	case MILTER_RES_SKIP:
		break;		/* milter_conn allows it only for BODY */
	case MILTER_RES_FAILED:
		return milter_verdict_failed(call, m, t, cmd, err);
	}
	return milter_verdict_failed(call, m, t, cmd, "skip out of place");
}

/*
 * milter_verdict_standing - what a milter that is not asked any more
 * says at a message stage: its default action, or its refusal at
 * connect
 */
enum filter_verdict
milter_verdict_standing(struct filter_call *call, struct milter_conn *m,
    struct milters_state *t)
{
	if (m->state == MILTER_CONN_FAILED)
		return fallback(call, m, t);
	if (m->state == MILTER_CONN_DONE &&
	    m->sess_verdict != FILTER_CONTINUE) {
		snprintf(call->reply, sizeof(call->reply), "%s",
		    m->sess_reply);
		return (enum filter_verdict)m->sess_verdict;
	}
	return FILTER_CONTINUE;
}

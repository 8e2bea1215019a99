/*
 * milter.c - the "milters" filter: the external milters of smtpd_milters
 * asked in order, where the word "milters" stands in smtpd_filters.
 *
 * It owns, per configuration load, the parsed milter list and macro
 * lists; per SMTP session (the filter's conn_state), one connection per
 * milter, opened at CONNECT and kept for every transaction of the
 * session. CONNECT, HELO, MAIL, RCPT and DATA go to each milter as they
 * happen, with the macros of their stage; at end of message the header
 * block and the body as the filters before "milters" left them, then
 * end of body, whose modifications become filter edits (the filters
 * after "milters", dkim, see them). A second milter sees the first's
 * edits. The I/O of one connection is milter_conn.c's, packets are
 * milter_proto.c's.
 *
 * Replies become verdicts with Postfix's texts: reject "550 5.7.1
 * Command rejected", tempfail "451 4.7.1 Service unavailable - try
 * again later", replycode its own text (policed), discard, quarantine
 * (hold), accept (this milter is done with the message). A milter that
 * cannot be reached, times out, closes or speaks garbage is closed,
 * logged once with what went wrong, and its default action applies for
 * the rest of the session (Postfix's milter_default_action): tempfail
 * and reject refuse every later MAIL, RCPT, DATA and end of message,
 * quarantine holds every message, accept goes on without it. A failure
 * at CONNECT or HELO is applied at MAIL: a session is never refused at
 * the greeting because of a milter.
 *
 * Blocking I/O with deadlines: the filter declares may_block and runs on
 * the filter threads, except ABORT and CLOSE, which the session runs on
 * its loop: those only post a packet without waiting.
 *
 * References: Postfix MILTER_README and milter8.c behaviour (macros,
 * default action, timeouts); the libmilter protocol, version 6.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"
#include "log.h"
#include "message_edit.h"
#include "milter.h"
#include "xmalloc.h"

/* Postfix's texts for reject and tempfail */
#define REPLY_REJECT	"550 5.7.1 Command rejected"
#define REPLY_TEMPFAIL	"451 4.7.1 Service unavailable - try again later"

struct milters {
	struct milter_spec *specs;	/* owned array */
	size_t	 n;
	uint32_t version;
	char	*lists[MILTER_MACROS_COUNT];	/* owned: our macro lists */
	char	*myhostname;		/* owned */
	char	*daemon_name;		/* owned */
	size_t	 max_body;		/* cap of a replacement body */
};

/* one per tx_begin: the session's holds the connections */
struct milters_state {
	struct milter_conn *conns;	/* owned array, conn-level only */
	size_t	 n;
	bool	 hold;			/* this transaction is held */
	char	 hold_reason[256];
	bool	 discard;		/* discard asked before EOM */
};

/* every macro we can send; values borrowed from the call or owned here */
enum {
	MAC_J, MAC_DAEMON_NAME, MAC_V, MAC_UNDERSCORE, MAC_CLIENT_ADDR,
	MAC_CLIENT_PORT, MAC_CLIENT_NAME, MAC_TLS_VERSION, MAC_CIPHER,
	MAC_CIPHER_BITS, MAC_AUTH_TYPE, MAC_AUTH_AUTHEN, MAC_MAIL_ADDR,
	MAC_MAIL_HOST, MAC_MAIL_MAILER, MAC_RCPT_ADDR, MAC_RCPT_HOST,
	MAC_RCPT_MAILER, MAC_I, MAC_COUNT
};

struct macros {
	struct milter_macro m[MAC_COUNT];
	char	 underscore[512];
	char	 port[16];
	char	 bits[16];
};

/* ---- configuration ---- */

static const char *const fallback_names[] = {
	[MILTER_FALLBACK_TEMPFAIL] = "tempfail",
	[MILTER_FALLBACK_ACCEPT] = "accept",
	[MILTER_FALLBACK_REJECT] = "reject",
	[MILTER_FALLBACK_QUARANTINE] = "quarantine",
};

int
milter_fallback_parse(const char *s, enum milter_fallback *f)
{
	size_t i;

	for (i = 0; i < sizeof(fallback_names) / sizeof(*fallback_names); i++)
		if (strcasecmp(s, fallback_names[i]) == 0) {
			*f = (enum milter_fallback)i;
			return 0;
		}
	return -1;
}

const char *
milter_fallback_name(enum milter_fallback f)
{
	return fallback_names[f];
}

/* group_setting - one "name=value" of a brace group into spec */
static int
group_setting(struct milter_spec *spec, const char *item, const char **err)
{
	const char *eq = strchr(item, '=');
	size_t nlen;
	int *target = NULL;

	if (eq == NULL) {
		*err = "setting without '='";
		return -1;
	}
	nlen = (size_t)(eq - item);
	if (nlen == 15 && strncmp(item, "connect_timeout", nlen) == 0)
		target = &spec->connect_timeout;
	else if (nlen == 15 && strncmp(item, "command_timeout", nlen) == 0)
		target = &spec->command_timeout;
	else if (nlen == 15 && strncmp(item, "content_timeout", nlen) == 0)
		target = &spec->content_timeout;
	else if (nlen == 14 && strncmp(item, "default_action", nlen) == 0) {
		if (milter_fallback_parse(eq + 1, &spec->fallback) == -1) {
			*err = "default_action is not tempfail, accept, "
			    "reject or quarantine";
			return -1;
		}
		return 0;
	} else {
		*err = "unknown setting";
		return -1;
	}
	if (config_parse_time(eq + 1, 's', target) == -1 || *target <= 0) {
		*err = "bad time value";
		return -1;
	}
	return 0;
}

int
milter_spec_parse(struct milter_spec *spec, const char *token,
    const struct config *cfg, char **error_r)
{
	const char *err = NULL;
	char *copy = NULL, *p, *item;
	size_t len;
	int n = 0;

	memset(spec, 0, sizeof(*spec));
	spec->connect_timeout = cfg->milter_connect_timeout;
	spec->command_timeout = cfg->milter_command_timeout;
	spec->content_timeout = cfg->milter_content_timeout;
	if (milter_fallback_parse(cfg->milter_default_action,
	    &spec->fallback) == -1) {
		*error_r = xasprintf("milter_default_action: \"%s\" is not "
		    "tempfail, accept, reject or quarantine",
		    cfg->milter_default_action);
		return -1;
	}
	if (token[0] != '{') {
		spec->name = xstrdup(token);
		if (peer_endpoint_parse(&spec->ep, token, &err) == -1)
			goto bad;
		return 0;
	}
	/* "{ address, name=value, ... }": commas or spaces separate */
	len = strlen(token);
	if (len < 2 || token[len - 1] != '}') {
		err = "brace group without '}'";
		goto bad;
	}
	copy = xstrndup(token + 1, len - 2);
	for (p = copy; (item = strsep(&p, ", \t\r\n")) != NULL;) {
		if (*item == '\0')
			continue;
		if (n++ == 0) {
			spec->name = xstrdup(item);
			if (peer_endpoint_parse(&spec->ep, item, &err) == -1)
				goto bad;
			continue;
		}
		if (group_setting(spec, item, &err) == -1)
			goto bad;
	}
	if (n == 0) {
		err = "empty brace group";
		goto bad;
	}
	free(copy);
	return 0;
bad:
	*error_r = xasprintf("smtpd_milters: \"%s\": %s", token, err);
	free(copy);
	return -1;
}

void
milter_spec_deinit(struct milter_spec *spec)
{
	free(spec->name);
	peer_endpoint_deinit(&spec->ep);
	memset(spec, 0, sizeof(*spec));
}

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

static void milters_deinit(void *);

static void *
milters_init(const struct config *cfg, char **error_r)
{
	struct milters *in;
	char *const *tok;
	const char *lists[MILTER_MACROS_COUNT];
	size_t n = 0, i;

	for (tok = cfg->smtpd_milters; tok != NULL && *tok != NULL; tok++)
		n++;
	if (n == 0)
		return NULL;	/* nothing to ask: no instance, no error */
	in = xcalloc(1, sizeof(*in));
	in->specs = xcalloc(n, sizeof(*in->specs));
	for (i = 0; i < n; i++) {
		in->n = i + 1;
		if (milter_spec_parse(&in->specs[i], cfg->smtpd_milters[i],
		    cfg, error_r) == -1) {
			milters_deinit(in);
			return NULL;
		}
	}
	in->version = cfg->milter_protocol < 2 ? 2 :
	    cfg->milter_protocol > MILTER_VERSION ? MILTER_VERSION :
	    (uint32_t)cfg->milter_protocol;
	lists[MILTER_MACROS_CONNECT] = cfg->milter_connect_macros;
	lists[MILTER_MACROS_HELO] = cfg->milter_helo_macros;
	lists[MILTER_MACROS_MAIL] = cfg->milter_mail_macros;
	lists[MILTER_MACROS_RCPT] = cfg->milter_rcpt_macros;
	lists[MILTER_MACROS_DATA] = cfg->milter_data_macros;
	lists[MILTER_MACROS_EOH] = cfg->milter_end_of_header_macros;
	lists[MILTER_MACROS_EOM] = cfg->milter_end_of_data_macros;
	for (i = 0; i < MILTER_MACROS_COUNT; i++)
		in->lists[i] = xstrdup(lists[i] != NULL ? lists[i] : "");
	in->myhostname = xstrdup(cfg->myhostname != NULL ?
	    cfg->myhostname : "localhost");
	in->daemon_name = xstrdup(cfg->milter_macro_daemon_name != NULL ?
	    cfg->milter_macro_daemon_name : in->myhostname);
	in->max_body = cfg->message_size_limit;
	return in;
}

static void
milters_deinit(void *instance)
{
	struct milters *in = instance;
	size_t i;

	if (in == NULL)
		return;
	for (i = 0; i < in->n; i++)
		milter_spec_deinit(&in->specs[i]);
	free(in->specs);
	for (i = 0; i < MILTER_MACROS_COUNT; i++)
		free(in->lists[i]);
	free(in->myhostname);
	free(in->daemon_name);
	free(in);
}

static void *
milters_tx_begin(void *instance, const struct filter_conn *conn)
{
	if (instance == NULL)
		return NULL;
	/* small: the connections are made at CONNECT, in the session's */
	return xcalloc(1, sizeof(struct milters_state));
}

static void
milters_tx_end(void *instance, void *state)
{
	struct milters_state *st = state;
	size_t i;

	if (st == NULL)
		return;
	/* CLOSE said goodbye; anything left is closed without waiting */
	for (i = 0; i < st->n; i++) {
		milter_conn_close(&st->conns[i]);
		milter_reader_deinit(&st->conns[i].rd);
		milter_neg_deinit(&st->conns[i].neg);
	}
	free(st->conns);
	free(st);
}

/* ---- macros ---- */

static const char *
qid(const struct filter_call *call)
{
	return call->tx != NULL && call->tx->queue_id != NULL ?
	    call->tx->queue_id : "NOQUEUE";
}

static unsigned
sa_port(const struct sockaddr *sa)
{
	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

/* cipher_bits - the symmetric key size a cipher name implies, 0 unknown */
static int
cipher_bits(const char *cipher)
{
	if (cipher == NULL)
		return 0;
	if (strstr(cipher, "AES256") != NULL ||
	    strstr(cipher, "AES_256") != NULL ||
	    strstr(cipher, "CHACHA20") != NULL)
		return 256;
	if (strstr(cipher, "AES128") != NULL ||
	    strstr(cipher, "AES_128") != NULL)
		return 128;
	return 0;
}

static const char *
domain_of(const char *addr)
{
	const char *at;

	if (addr == NULL || *addr == '\0')
		return NULL;
	at = strrchr(addr, '@');
	return at != NULL ? at + 1 : NULL;
}

/* macros_fill - every macro Postfix would define at this point */
static void
macros_fill(struct macros *mac, const struct milters *in,
    const struct filter_call *call)
{
	const struct filter_conn *c = call->conn;
	const struct filter_tx *tx = call->tx;
	static const char *const names[MAC_COUNT] = {
		"j", "daemon_name", "v", "_", "client_addr", "client_port",
		"client_name", "tls_version", "cipher", "cipher_bits",
		"auth_type", "auth_authen", "mail_addr", "mail_host",
		"mail_mailer", "rcpt_addr", "rcpt_host", "rcpt_mailer", "i",
	};
	size_t i;
	int bits;

	for (i = 0; i < MAC_COUNT; i++) {
		mac->m[i].name = names[i];
		mac->m[i].value = NULL;
	}
	mac->m[MAC_J].value = in->myhostname;
	mac->m[MAC_DAEMON_NAME].value = in->daemon_name;
	mac->m[MAC_V].value = "Postern";
	snprintf(mac->underscore, sizeof(mac->underscore), "%s [%s]",
	    c->client_name != NULL ? c->client_name : "unknown",
	    c->client_addr != NULL ? c->client_addr : "");
	mac->m[MAC_UNDERSCORE].value = mac->underscore;
	mac->m[MAC_CLIENT_ADDR].value = c->client_addr;
	if (sa_port(c->client_sa) != 0) {
		snprintf(mac->port, sizeof(mac->port), "%u",
		    sa_port(c->client_sa));
		mac->m[MAC_CLIENT_PORT].value = mac->port;
	}
	mac->m[MAC_CLIENT_NAME].value = c->client_name;
	mac->m[MAC_TLS_VERSION].value = c->tls_version;
	mac->m[MAC_CIPHER].value = c->tls_cipher;
	if ((bits = cipher_bits(c->tls_cipher)) > 0) {
		snprintf(mac->bits, sizeof(mac->bits), "%d", bits);
		mac->m[MAC_CIPHER_BITS].value = mac->bits;
	}
	if (c->is_authenticated) {
		mac->m[MAC_AUTH_TYPE].value = c->sasl_method;
		mac->m[MAC_AUTH_AUTHEN].value = c->sasl_username;
	}
	if (tx != NULL) {
		mac->m[MAC_MAIL_ADDR].value = tx->sender;
		mac->m[MAC_MAIL_HOST].value = domain_of(tx->sender);
		mac->m[MAC_MAIL_MAILER].value = "smtp";
		mac->m[MAC_I].value = tx->queue_id;
	}
	if (call->stage == FILTER_STAGE_RCPT && call->arg != NULL) {
		mac->m[MAC_RCPT_ADDR].value = call->arg;
		mac->m[MAC_RCPT_HOST].value = domain_of(call->arg);
		mac->m[MAC_RCPT_MAILER].value = "smtp";
	}
}

/*
 * add_macros - the 'D' packet of a stage: the milter's own list when it
 * sent one (setsymlist), else ours
 */
static void
add_macros(struct buf *out, const struct milters *in,
    const struct milter_conn *m, const struct macros *mac,
    enum milter_macro_stage ms, char cmd)
{
	const char *list, *err;

	list = milter_neg_macros(&m->neg, ms);
	if (list == NULL)
		list = in->lists[ms];
	/* a macro packet cannot pass the buffer's cap: it has none */
	(void)milter_pkt_macros(out, cmd, mac->m, MAC_COUNT, list, &err);
}

/* ---- verdicts ---- */

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
 * failed - a milter went wrong: log it once, mark it, and give its
 * default action
 */
static enum filter_verdict
failed(struct filter_call *call, struct milter_conn *m,
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
		    "milter_default_action %s", qid(call), m->spec->name,
		    what, when, timeout_name(cmd), timeout_of(m->spec, cmd),
		    milter_fallback_name(m->spec->fallback));
	else
		log_warnx("%s: milter %s: %s at %s; applying "
		    "milter_default_action %s", qid(call), m->spec->name,
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
 * final - a reject, tempfail, replycode or discard into a verdict;
 * a replycode we cannot use is the milter's failure
 */
static enum filter_verdict
final(struct filter_call *call, struct milter_conn *m,
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
			return failed(call, m, t, cmd, "malformed replycode");
		return (enum filter_verdict)v;
	case MILTER_REPLY_DISCARD:
		log_info("%s: milter %s: discard at %s", qid(call),
		    m->spec->name, filter_stage_name(call->stage));
		if (call->stage == FILTER_STAGE_EOM)
			return FILTER_DISCARD;
		if (t != NULL)
			t->discard = true;	/* applied at end of message */
		m->msg_done = true;
		return FILTER_CONTINUE;
	}
	return failed(call, m, t, cmd, "unexpected reply");
}

/*
 * command - send out (macros and command cmd) to m and make a verdict
 * of the answer; CONTINUE also for accept (m->msg_done set)
 */
static enum filter_verdict
command(struct filter_call *call, struct milter_conn *m,
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
		return final(call, m, t, cmd, &a);
	case MILTER_RES_SKIP:
		break;		/* milter_conn allows it only for BODY */
	case MILTER_RES_FAILED:
		return failed(call, m, t, cmd, err);
	}
	return failed(call, m, t, cmd, "skip out of place");
}

/* ---- stages ---- */

static enum filter_verdict
milters_connect(struct filter_call *call)
{
	struct milters *in = call->instance;
	struct milters_state *st = call->conn_state;
	const struct filter_conn *c = call->conn;
	struct milter_conn *m;
	struct macros mac;
	struct buf out;
	const char *err;
	char family = 'U';
	size_t i;

	if (in == NULL || st == NULL || st->conns != NULL)
		return FILTER_CONTINUE;
	st->conns = xcalloc(in->n, sizeof(*st->conns));
	st->n = in->n;
	for (i = 0; i < in->n; i++)
		milter_conn_init(&st->conns[i], &in->specs[i]);
	if (c->client_sa != NULL && c->client_sa->sa_family == AF_INET)
		family = '4';
	else if (c->client_sa != NULL && c->client_sa->sa_family == AF_INET6)
		family = '6';
	macros_fill(&mac, in, call);
	buf_init(&out, 0);
	for (i = 0; i < st->n; i++) {
		m = &st->conns[i];
		if (milter_conn_open(m, in->version, &err) == -1) {
			(void)failed(call, m, NULL, MILTER_CMD_OPTNEG, err);
			continue;
		}
		buf_reset(&out);
		add_macros(&out, in, m, &mac, MILTER_MACROS_CONNECT,
		    MILTER_CMD_CONNECT);
		if (milter_neg_sends(&m->neg, MILTER_CMD_CONNECT))
			(void)milter_pkt_connect(&out, c->client_name != NULL ?
			    c->client_name : "unknown", family,
			    (uint16_t)sa_port(c->client_sa),
			    c->client_addr != NULL ? c->client_addr : "",
			    &err);
		if (command(call, m, NULL, &out, MILTER_CMD_CONNECT) !=
		    FILTER_CONTINUE || m->msg_done) {
			/*
			 * accept, or a refusal: not asked again; a refusal
			 * answers every MAIL of the session (Postfix)
			 */
			if (!m->msg_done && call->reply[0] != '\0') {
				m->sess_verdict = call->reply[0] == '5' ?
				    FILTER_REJECT : FILTER_TEMPFAIL;
				snprintf(m->sess_reply, sizeof(m->sess_reply),
				    "%s", call->reply);
			}
			m->msg_done = false;
			if (m->state == MILTER_CONN_OK)
				m->state = MILTER_CONN_DONE;
			call->reply[0] = '\0';
		}
	}
	buf_deinit(&out);
	return FILTER_CONTINUE;
}

static enum filter_verdict
milters_helo(struct filter_call *call)
{
	struct milters *in = call->instance;
	struct milters_state *st = call->conn_state;
	struct milter_conn *m;
	struct macros mac;
	struct buf out;
	enum filter_verdict v = FILTER_CONTINUE;
	const char *err;
	size_t i;

	if (in == NULL || st == NULL)
		return FILTER_CONTINUE;
	macros_fill(&mac, in, call);
	buf_init(&out, 0);
	for (i = 0; i < st->n && v == FILTER_CONTINUE; i++) {
		m = &st->conns[i];
		if (m->state != MILTER_CONN_OK)
			continue;
		buf_reset(&out);
		add_macros(&out, in, m, &mac, MILTER_MACROS_HELO,
		    MILTER_CMD_HELO);
		if (milter_neg_sends(&m->neg, MILTER_CMD_HELO))
			(void)milter_pkt_helo(&out, call->arg != NULL ?
			    call->arg : "", &err);
		v = command(call, m, NULL, &out, MILTER_CMD_HELO);
		if (m->msg_done) {
			/* accept at HELO: done for the session */
			m->msg_done = false;
			m->state = MILTER_CONN_DONE;
		}
		if (v == FILTER_DISCARD)
			v = FILTER_CONTINUE;
	}
	buf_deinit(&out);
	return v;
}

/*
 * standing - what a milter that is not asked any more says at a message
 * stage: its default action, or its refusal at connect
 */
static enum filter_verdict
standing(struct filter_call *call, struct milter_conn *m,
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

/* envelope_args - the ESMTP parameters of MAIL FROM as we know them */
static size_t
envelope_args(const struct filter_tx *tx, char size[32], const char **args)
{
	size_t n = 0;

	if (tx->size > 0) {
		snprintf(size, 32, "SIZE=%zu", tx->size);
		args[n++] = size;
	}
	if (tx->body_type != NULL)
		args[n++] = strcmp(tx->body_type, "8BITMIME") == 0 ?
		    "BODY=8BITMIME" : "BODY=7BIT";
	if (tx->smtputf8)
		args[n++] = "SMTPUTF8";
	return n;
}

/*
 * envelope_stage - MAIL, RCPT or DATA to every milter still asked about
 * this message
 */
static enum filter_verdict
envelope_stage(struct filter_call *call)
{
	struct milters *in = call->instance;
	struct milters_state *st = call->conn_state;
	struct milters_state *t = call->tx_state;
	struct milter_conn *m;
	struct macros mac;
	struct buf out;
	enum filter_verdict v = FILTER_CONTINUE;
	enum milter_macro_stage ms;
	const char *err, *args[3];
	char cmd, size[32];
	size_t i, nargs;

	if (in == NULL || st == NULL || call->tx == NULL)
		return FILTER_CONTINUE;
	switch (call->stage) {
	case FILTER_STAGE_MAIL:
		ms = MILTER_MACROS_MAIL, cmd = MILTER_CMD_MAIL;
		break;
	case FILTER_STAGE_RCPT:
		ms = MILTER_MACROS_RCPT, cmd = MILTER_CMD_RCPT;
		break;
	default:
		ms = MILTER_MACROS_DATA, cmd = MILTER_CMD_DATA;
		break;
	}
	macros_fill(&mac, in, call);
	buf_init(&out, 0);
	for (i = 0; i < st->n && v == FILTER_CONTINUE; i++) {
		m = &st->conns[i];
		if (cmd == MILTER_CMD_MAIL)
			m->msg_done = false;
		if (m->state != MILTER_CONN_OK) {
			v = standing(call, m, t);
			continue;
		}
		if (m->msg_done)
			continue;
		buf_reset(&out);
		if (cmd == MILTER_CMD_MAIL && m->in_tx)
			/* an earlier message the milter did not see end */
			(void)milter_pkt_simple(&out, MILTER_CMD_ABORT, &err);
		add_macros(&out, in, m, &mac, ms, cmd);
		if (milter_neg_sends(&m->neg, cmd)) {
			if (cmd == MILTER_CMD_MAIL) {
				nargs = envelope_args(call->tx, size, args);
				(void)milter_pkt_envelope(&out, cmd,
				    call->tx->sender, args, nargs, &err);
			} else if (cmd == MILTER_CMD_RCPT)
				(void)milter_pkt_envelope(&out, cmd,
				    call->arg != NULL ? call->arg : "", NULL,
				    0, &err);
			else
				(void)milter_pkt_simple(&out, cmd, &err);
		}
		if (cmd == MILTER_CMD_MAIL)
			m->in_tx = true;
		v = command(call, m, t, &out, cmd);
		if (cmd == MILTER_CMD_MAIL && m->state == MILTER_CONN_OK &&
		    (v == FILTER_REJECT || v == FILTER_TEMPFAIL))
			m->in_tx = false;	/* no transaction begun */
	}
	buf_deinit(&out);
	return v;
}

/* header_raw_value - what follows the colon, without the final CRLF */
static char *
header_raw_value(const struct header_field *f)
{
	const char *colon = strchr(f->raw, ':');
	size_t n;

	if (colon == NULL)
		return xstrdup("");
	colon++;
	n = strlen(colon);
	if (n >= 2 && colon[n - 2] == '\r' && colon[n - 1] == '\n')
		n -= 2;
	return xstrndup(colon, n);
}

/* the message as one milter is to see it at end of message */
struct eom_view {
	const struct header_list *headers;	/* borrowed */
	const struct buf *body;		/* borrowed; NULL: read_body */
	const struct filter_message *msg;	/* borrowed: the chain's */
};

/*
 * send_content - headers, EOH, body and end of body to one milter, then
 * its final answer. Packets that get no reply (NR_HDR, NR_BODY ...) go
 * out together with the next that does: one write per round trip.
 */
static enum milter_result
send_content(const struct milters *in, struct milter_conn *m,
    const struct macros *mac, const struct eom_view *view,
    struct milter_edit_map *map, struct milter_answer *a, char *cmd_r,
    const char **error_r)
{
	struct buf out;
	enum milter_result res = MILTER_RES_CONTINUE;
	bool leadspc = (m->neg.protocol & MILTER_P_HDR_LEADSPC) != 0;
	bool skip = false;
	char chunk[MILTER_CHUNK_SIZE], *v;
	const char *data;
	size_t i, off, got;

	buf_init(&out, 0);
	*cmd_r = MILTER_CMD_HEADER;
	for (i = 0; i < view->headers->n &&
	    milter_neg_sends(&m->neg, MILTER_CMD_HEADER); i++) {
		v = header_raw_value(&view->headers->fields[i]);
		(void)milter_pkt_header(&out, view->headers->fields[i].name,
		    v, leadspc, error_r);
		free(v);
		if (!milter_neg_expects_reply(&m->neg, MILTER_CMD_HEADER))
			continue;
		res = milter_conn_command(m, &out, MILTER_CMD_HEADER,
		    m->spec->content_timeout * 1000, NULL, a, error_r);
		buf_reset(&out);
		if (res != MILTER_RES_CONTINUE)
			goto out;
	}
	*cmd_r = MILTER_CMD_EOH;
	add_macros(&out, in, m, mac, MILTER_MACROS_EOH, MILTER_CMD_EOH);
	if (milter_neg_sends(&m->neg, MILTER_CMD_EOH))
		(void)milter_pkt_simple(&out, MILTER_CMD_EOH, error_r);
	if (milter_neg_sends(&m->neg, MILTER_CMD_EOH) &&
	    milter_neg_expects_reply(&m->neg, MILTER_CMD_EOH)) {
		res = milter_conn_command(m, &out, MILTER_CMD_EOH,
		    m->spec->content_timeout * 1000, NULL, a, error_r);
		buf_reset(&out);
		if (res != MILTER_RES_CONTINUE)
			goto out;
	}
	*cmd_r = MILTER_CMD_BODY;
	for (off = 0; !skip && milter_neg_sends(&m->neg, MILTER_CMD_BODY);
	    off += got) {
		if (view->body != NULL) {
			got = view->body->len - off;
			if (got > MILTER_CHUNK_SIZE)
				got = MILTER_CHUNK_SIZE;
			data = view->body->data + off;
		} else if (view->msg->read_body == NULL) {
			/* never let a message pass unseen */
			*error_r = "the body cannot be read back";
			res = MILTER_RES_FAILED;
			milter_conn_close(m);
			goto out;
		} else {
			if (view->msg->read_body(view->msg->read_body_ctx,
			    off, chunk, sizeof(chunk), &got, error_r) == -1) {
				res = MILTER_RES_FAILED;
				milter_conn_close(m);
				goto out;
			}
			data = chunk;
		}
		if (got == 0)
			break;
		(void)milter_pkt_body(&out, data, got, error_r);
		if (!milter_neg_expects_reply(&m->neg, MILTER_CMD_BODY))
			continue;
		res = milter_conn_command(m, &out, MILTER_CMD_BODY,
		    m->spec->content_timeout * 1000, NULL, a, error_r);
		buf_reset(&out);
		if (res == MILTER_RES_SKIP)
			skip = true;
		else if (res != MILTER_RES_CONTINUE)
			goto out;
	}
	*cmd_r = MILTER_CMD_BODYEOB;
	add_macros(&out, in, m, mac, MILTER_MACROS_EOM, MILTER_CMD_BODYEOB);
	(void)milter_pkt_simple(&out, MILTER_CMD_BODYEOB, error_r);
	res = milter_conn_command(m, &out, MILTER_CMD_BODYEOB,
	    m->spec->content_timeout * 1000, map, a, error_r);
out:
	buf_deinit(&out);
	return res;
}

/* splice - append the edits of from to to (from ends empty) */
static void
splice(struct filter_edits *to, struct filter_edits *from)
{
	if (from->head == NULL)
		return;
	*to->tail = from->head;
	to->tail = from->tail;
	filter_edits_init(from);
}

/*
 * view_update - a milter's edits applied to our copy of the message, so
 * that the next milter sees them
 */
static int
view_update(struct eom_view *view, struct header_list *own_hl,
    struct buf **own_body, const struct filter_edits *edits,
    const struct filter_tx *tx, const char **error_r)
{
	struct header_list hl = { NULL, 0 };
	struct edit_envelope env;
	struct buf block, *body = NULL;
	size_t i;
	int rc;

	buf_init(&block, 0);
	header_list_format(view->headers, &block);
	if (block.len > 0 && header_list_parse(&hl, block.data,
	    block.len) == -1) {
		buf_deinit(&block);
		*error_r = "cannot copy the header";
		return -1;
	}
	buf_deinit(&block);
	env.sender = xstrdup(tx->sender);
	env.nrcpts = tx->nrcpts;
	env.rcpts = xcalloc(env.nrcpts + 1, sizeof(*env.rcpts));
	for (i = 0; i < env.nrcpts; i++)
		env.rcpts[i] = xstrdup(tx->rcpts[i].address);
	rc = message_edit_apply(edits, &hl, &env, &body, error_r);
	free(env.sender);
	for (i = 0; i < env.nrcpts; i++)
		free(env.rcpts[i]);
	free(env.rcpts);
	if (rc == -1) {
		header_list_deinit(&hl);
		if (body != NULL) {
			buf_deinit(body);
			free(body);
		}
		return -1;
	}
	header_list_deinit(own_hl);
	*own_hl = hl;
	view->headers = own_hl;
	if (body != NULL) {
		if (*own_body != NULL) {
			buf_deinit(*own_body);
			free(*own_body);
		}
		*own_body = body;
		view->body = body;
	}
	return 0;
}

static enum filter_verdict
milters_eom(struct filter_call *call)
{
	struct milters *in = call->instance;
	struct milters_state *st = call->conn_state;
	struct milters_state *t = call->tx_state;
	struct milter_conn *m;
	struct milter_edit_map map;
	struct milter_answer a;
	struct filter_edits edits;
	struct header_list own_hl = { NULL, 0 };
	struct buf *own_body = NULL;
	struct eom_view view;
	struct macros mac;
	enum filter_verdict v = FILTER_CONTINUE;
	const char *err;
	char cmd;
	size_t i;

	if (in == NULL || st == NULL || call->tx == NULL ||
	    call->message == NULL)
		return FILTER_CONTINUE;
	view.headers = call->message->headers;
	view.body = call->message->body;
	view.msg = call->message;
	macros_fill(&mac, in, call);
	for (i = 0; i < st->n && v == FILTER_CONTINUE; i++) {
		m = &st->conns[i];
		if (m->state != MILTER_CONN_OK) {
			v = standing(call, m, t);
			continue;
		}
		if (m->msg_done) {
			/* accepted: libmilter skips the rest itself */
			m->in_tx = false;
			continue;
		}
		filter_edits_init(&edits);
		milter_edit_map_init(&map, &edits,
		    (m->neg.protocol & MILTER_P_HDR_LEADSPC) != 0,
		    in->max_body);
		memset(&a, 0, sizeof(a));
		switch (send_content(in, m, &mac, &view, &map, &a, &cmd,
		    &err)) {
		case MILTER_RES_CONTINUE:
		case MILTER_RES_ACCEPT:
			m->in_tx = false;
			milter_edit_map_finish(&map);
			if (a.note != NULL)
				log_info("%s: milter %s: %s", qid(call),
				    m->spec->name, a.note);
			if (a.quarantine && t != NULL && !t->hold) {
				t->hold = true;
				snprintf(t->hold_reason,
				    sizeof(t->hold_reason), "%s",
				    a.reason[0] != '\0' ? a.reason :
				    "quarantined by milter");
			}
			if (edits.head != NULL && i + 1 < st->n &&
			    view_update(&view, &own_hl, &own_body, &edits,
			    call->tx, &err) == -1)
				log_warnx("%s: milter %s: its edits cannot be "
				    "shown to the next milter: %s", qid(call),
				    m->spec->name, err);
			if (call->edits != NULL)
				splice(call->edits, &edits);
			break;
		case MILTER_RES_FINAL:
			/* the milter's message ends with this reply */
			m->in_tx = false;
			v = final(call, m, t, cmd, &a);
			break;
		case MILTER_RES_SKIP:
			v = failed(call, m, t, cmd, "skip out of place");
			break;
		case MILTER_RES_FAILED:
			v = failed(call, m, t, cmd, err);
			break;
		}
		milter_edit_map_deinit(&map);
		filter_edits_deinit(&edits);
	}
	header_list_deinit(&own_hl);
	if (own_body != NULL) {
		buf_deinit(own_body);
		free(own_body);
	}
	if (v != FILTER_CONTINUE)
		return v;
	if (t != NULL && t->discard) {
		log_info("%s: milter: discard asked before end of message",
		    qid(call));
		return FILTER_DISCARD;
	}
	if (t != NULL && t->hold) {
		snprintf(call->reply, sizeof(call->reply), "%s",
		    t->hold_reason);
		return FILTER_HOLD;
	}
	return FILTER_CONTINUE;
}

/* post_all - a packet without reply to every connected milter */
static void
post_all(struct milters_state *st, char cmd, bool only_in_tx)
{
	struct buf out;
	const char *err;
	size_t i;

	if (st == NULL)
		return;
	buf_init(&out, 0);
	(void)milter_pkt_simple(&out, cmd, &err);
	for (i = 0; i < st->n; i++) {
		if (st->conns[i].fd == -1 ||
		    (only_in_tx && !st->conns[i].in_tx))
			continue;
		(void)milter_conn_post(&st->conns[i], &out);
		st->conns[i].in_tx = false;
	}
	buf_deinit(&out);
}

static enum filter_verdict
milters_abort(struct filter_call *call)
{
	post_all(call->conn_state, MILTER_CMD_ABORT, true);
	return FILTER_CONTINUE;
}

static enum filter_verdict
milters_close(struct filter_call *call)
{
	struct milters_state *st = call->conn_state;
	size_t i;

	post_all(st, MILTER_CMD_QUIT, false);
	for (i = 0; st != NULL && i < st->n; i++)
		milter_conn_close(&st->conns[i]);
	return FILTER_CONTINUE;
}

const struct filter_ops filter_milters = {
	.name = "milters",
	.stages = FILTER_STAGE_BIT(FILTER_STAGE_CONNECT) |
	    FILTER_STAGE_BIT(FILTER_STAGE_HELO) |
	    FILTER_STAGE_BIT(FILTER_STAGE_MAIL) |
	    FILTER_STAGE_BIT(FILTER_STAGE_RCPT) |
	    FILTER_STAGE_BIT(FILTER_STAGE_DATA) |
	    FILTER_STAGE_BIT(FILTER_STAGE_EOM) |
	    FILTER_STAGE_BIT(FILTER_STAGE_ABORT) |
	    FILTER_STAGE_BIT(FILTER_STAGE_CLOSE),
	.may_block = true,
	.edits = true,
	.signs = false,
	.init = milters_init,
	.deinit = milters_deinit,
	.tx_begin = milters_tx_begin,
	.tx_end = milters_tx_end,
	.cb = {
		[FILTER_STAGE_CONNECT] = milters_connect,
		[FILTER_STAGE_HELO] = milters_helo,
		[FILTER_STAGE_MAIL] = envelope_stage,
		[FILTER_STAGE_RCPT] = envelope_stage,
		[FILTER_STAGE_DATA] = envelope_stage,
		[FILTER_STAGE_EOM] = milters_eom,
		[FILTER_STAGE_ABORT] = milters_abort,
		[FILTER_STAGE_CLOSE] = milters_close,
	},
};

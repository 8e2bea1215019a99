/*
 * milter_proto.c - the milter protocol (version 6) as the MTA speaks it:
 * packets we send, replies we parse, what the option negotiation allows,
 * and the milter's modifications turned into our filter edits.
 *
 * It owns only buffers: the reader's input buffer and the replies it
 * hands out. Sockets, timeouts, the order of the stages and what a
 * verdict means for the SMTP session belong to the milter filter; applying
 * the edits to the message belongs to daemon/message_edit.c.
 *
 * Every packet, both ways, is a 32-bit length in network byte order, a
 * command byte and length - 1 bytes of data; strings are NUL-terminated
 * (milter-protocol.txt, section "Packet format"). Nothing a milter sends
 * may crash us: every length is checked against the packet before it is
 * used, a packet over the reader's limit is refused as soon as its length
 * field arrives, and every malformed packet is an error, never a guess.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "milter_proto.h"
#include "xmalloc.h"

/* a packet being appended to the caller's buffer */
struct pkt {
	struct buf *out;	/* borrowed: the caller's */
	size_t	 start;		/* where this packet began in out */
	bool	 failed;	/* out's cap was reached */
};

static void
put(struct pkt *p, const void *data, size_t n)
{
	if (!p->failed && buf_append(p->out, data, n) == -1)
		p->failed = true;
}

static void
put_str(struct pkt *p, const char *s)
{
	put(p, s, strlen(s) + 1);
}

static void
put_u32(struct pkt *p, uint32_t v)
{
	unsigned char b[4];

	b[0] = v >> 24;
	b[1] = v >> 16;
	b[2] = v >> 8;
	b[3] = v;
	put(p, b, sizeof(b));
}

static void
pkt_begin(struct pkt *p, struct buf *out, char cmd)
{
	unsigned char hdr[MILTER_LEN_BYTES + 1] = { 0, 0, 0, 0, cmd };

	p->out = out;
	p->start = out->len;
	p->failed = false;
	put(p, hdr, sizeof(hdr));
}

/*
 * pkt_end - write the length field now that the data is known, or undo
 * the whole packet when the buffer was full
 */
static int
pkt_end(struct pkt *p, const char **error_r)
{
	size_t n;
	unsigned char *h;

	n = p->out->len - p->start - MILTER_LEN_BYTES;
	if (p->failed || n > UINT32_MAX) {
		p->out->len = p->start;
		if (p->out->data != NULL)
			p->out->data[p->out->len] = '\0';
		*error_r = "milter output buffer full";
		return -1;
	}
	h = (unsigned char *)p->out->data + p->start;
	h[0] = n >> 24;
	h[1] = n >> 16;
	h[2] = n >> 8;
	h[3] = n;
	return 0;
}

int
milter_pkt_optneg(struct buf *out, uint32_t version, uint32_t actions,
    uint32_t protocol, const char **error_r)
{
	struct pkt p;

	pkt_begin(&p, out, MILTER_CMD_OPTNEG);
	put_u32(&p, version);
	put_u32(&p, actions);
	put_u32(&p, protocol);
	return pkt_end(&p, error_r);
}

/* bare_name - a macro name without its braces: pointer and length */
static const char *
bare_name(const char *name, size_t len, size_t *len_r)
{
	if (len >= 2 && name[0] == '{' && name[len - 1] == '}') {
		*len_r = len - 2;
		return name + 1;
	}
	*len_r = len;
	return name;
}

/* macro_wanted - whether a setsymlist list names the macro */
static bool
macro_wanted(const char *wanted, const char *name)
{
	const char *w, *n, *bw;
	size_t wl, nl, tl;

	n = bare_name(name, strlen(name), &nl);
	for (w = wanted; *w != '\0'; w += tl) {
		w += strspn(w, " \t,");
		tl = strcspn(w, " \t,");
		if (tl == 0)
			break;
		bw = bare_name(w, tl, &wl);
		if (wl == nl && memcmp(bw, n, nl) == 0)
			return true;
	}
	return false;
}

int
milter_pkt_macros(struct buf *out, char cmd, const struct milter_macro *m,
    size_t n, const char *wanted, const char **error_r)
{
	struct pkt p;
	size_t i, nl, sent = 0;
	const char *bare;

	pkt_begin(&p, out, MILTER_CMD_MACRO);
	put(&p, &cmd, 1);
	for (i = 0; i < n; i++) {
		if (m[i].value == NULL || m[i].name[0] == '\0')
			continue;
		if (wanted != NULL && !macro_wanted(wanted, m[i].name))
			continue;
		/*
		 * libmilter finds a one-character macro as "i" or "{i}",
		 * a longer one only as "{name}" (notes 3.3)
		 */
		bare = bare_name(m[i].name, strlen(m[i].name), &nl);
		if (nl == 1)
			put(&p, bare, 1);
		else {
			put(&p, "{", 1);
			put(&p, bare, nl);
			put(&p, "}", 1);
		}
		put(&p, "", 1);
		put_str(&p, m[i].value);
		sent++;
	}
	if (sent == 0) {
		out->len = p.start;
		if (out->data != NULL)
			out->data[out->len] = '\0';
		return 0;
	}
	return pkt_end(&p, error_r);
}

int
milter_pkt_connect(struct buf *out, const char *hostname, char family,
    uint16_t port, const char *addr, const char **error_r)
{
	struct pkt p;
	unsigned char b[2];

	if (family != '4' && family != '6' && family != 'L' &&
	    family != 'U') {
		*error_r = "unknown address family for milter connect";
		return -1;
	}
	pkt_begin(&p, out, MILTER_CMD_CONNECT);
	put_str(&p, hostname);
	put(&p, &family, 1);
	if (family != 'U') {
		b[0] = port >> 8;
		b[1] = port;
		put(&p, b, 2);
		put_str(&p, addr);
	}
	return pkt_end(&p, error_r);
}

int
milter_pkt_helo(struct buf *out, const char *helo, const char **error_r)
{
	struct pkt p;

	pkt_begin(&p, out, MILTER_CMD_HELO);
	put_str(&p, helo);
	return pkt_end(&p, error_r);
}

int
milter_pkt_envelope(struct buf *out, char cmd, const char *addr,
    const char *const *args, size_t nargs, const char **error_r)
{
	struct pkt p;
	size_t i, n = strlen(addr);

	if (cmd != MILTER_CMD_MAIL && cmd != MILTER_CMD_RCPT) {
		*error_r = "not an envelope command";
		return -1;
	}
	pkt_begin(&p, out, cmd);
	if (n >= 2 && addr[0] == '<' && addr[n - 1] == '>')
		put_str(&p, addr);
	else {
		put(&p, "<", 1);
		put(&p, addr, n);
		put_str(&p, ">");
	}
	for (i = 0; i < nargs; i++)
		put_str(&p, args[i]);
	return pkt_end(&p, error_r);
}

int
milter_pkt_header(struct buf *out, const char *name, const char *raw_value,
    bool leadspc, const char **error_r)
{
	struct pkt p;
	const char *v = raw_value;

	/* Sendmail drops the space after the colon unless HDR_LEADSPC */
	if (!leadspc && *v == ' ')
		v++;
	pkt_begin(&p, out, MILTER_CMD_HEADER);
	put_str(&p, name);
	for (; *v != '\0'; v++) {
		if (*v == '\r' && v[1] == '\n')
			continue;	/* folding goes as a bare LF */
		put(&p, v, 1);
	}
	put(&p, "", 1);
	return pkt_end(&p, error_r);
}

int
milter_pkt_body(struct buf *out, const void *chunk, size_t len,
    const char **error_r)
{
	struct pkt p;

	if (len > MILTER_CHUNK_SIZE) {
		*error_r = "body chunk larger than 65535 bytes";
		return -1;
	}
	pkt_begin(&p, out, MILTER_CMD_BODY);
	put(&p, chunk, len);
	return pkt_end(&p, error_r);
}

int
milter_pkt_unknown(struct buf *out, const char *line, const char **error_r)
{
	struct pkt p;

	pkt_begin(&p, out, MILTER_CMD_UNKNOWN);
	put_str(&p, line);
	return pkt_end(&p, error_r);
}

int
milter_pkt_simple(struct buf *out, char cmd, const char **error_r)
{
	struct pkt p;

	if (strchr("TNEAQK", cmd) == NULL || cmd == '\0') {
		*error_r = "not a milter command without data";
		return -1;
	}
	pkt_begin(&p, out, cmd);
	return pkt_end(&p, error_r);
}

/* replies */

void
milter_reply_init(struct milter_reply *r)
{
	memset(r, 0, sizeof(*r));
}

void
milter_reply_deinit(struct milter_reply *r)
{
	size_t i;

	for (i = 0; i < MILTER_MACROS_COUNT; i++)
		free(r->symlist[i]);
	free(r->name);
	free(r->value);
	free(r->args);
	free(r->data);
	milter_reply_init(r);
}

static const struct {
	char	 code;
	const char *name;
} reply_names[] = {
	{ MILTER_REPLY_OPTNEG, "optneg" },
	{ MILTER_REPLY_ADDRCPT, "addrcpt" },
	{ MILTER_REPLY_DELRCPT, "delrcpt" },
	{ MILTER_REPLY_ADDRCPT_PAR, "addrcpt_par" },
	{ MILTER_REPLY_SHUTDOWN, "shutdown" },
	{ MILTER_REPLY_ACCEPT, "accept" },
	{ MILTER_REPLY_REPLBODY, "replbody" },
	{ MILTER_REPLY_CONTINUE, "continue" },
	{ MILTER_REPLY_DISCARD, "discard" },
	{ MILTER_REPLY_CHGFROM, "chgfrom" },
	{ MILTER_REPLY_CONN_FAIL, "conn_fail" },
	{ MILTER_REPLY_ADDHEADER, "addheader" },
	{ MILTER_REPLY_INSHEADER, "insheader" },
	{ MILTER_REPLY_CHGHEADER, "chgheader" },
	{ MILTER_REPLY_PROGRESS, "progress" },
	{ MILTER_REPLY_QUARANTINE, "quarantine" },
	{ MILTER_REPLY_REJECT, "reject" },
	{ MILTER_REPLY_SKIP, "skip" },
	{ MILTER_REPLY_TEMPFAIL, "tempfail" },
	{ MILTER_REPLY_REPLYCODE, "replycode" },
};

const char *
milter_reply_name(char code)
{
	size_t i;

	for (i = 0; i < sizeof(reply_names) / sizeof(*reply_names); i++)
		if (reply_names[i].code == code)
			return reply_names[i].name;
	return "?";
}

bool
milter_reply_is_modification(char code)
{
	return code != '\0' && strchr("himbe+2-q", code) != NULL;
}

/* reader */

void
milter_reader_init(struct milter_reader *rd, size_t max_packet)
{
	rd->max_packet = max_packet == 0 ? MILTER_MAX_PACKET : max_packet;
	buf_init(&rd->in, rd->max_packet + MILTER_LEN_BYTES +
	    MILTER_READ_SLACK);
	rd->error = NULL;
}

void
milter_reader_deinit(struct milter_reader *rd)
{
	buf_deinit(&rd->in);
}

int
milter_reader_feed(struct milter_reader *rd, const void *data, size_t n,
    const char **error_r)
{
	if (rd->error == NULL && buf_append(&rd->in, data, n) == -1)
		rd->error = "milter sent more than its packet limit";
	if (rd->error != NULL) {
		*error_r = rd->error;
		return -1;
	}
	return 0;
}

size_t
milter_reader_pending(const struct milter_reader *rd)
{
	return rd->in.len;
}

static uint32_t
get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* a cursor over the data of one packet */
struct cursor {
	const unsigned char *p;
	size_t	 left;
};

static int
take_u32(struct cursor *c, uint32_t *v)
{
	if (c->left < 4)
		return -1;
	*v = get_u32(c->p);
	c->p += 4;
	c->left -= 4;
	return 0;
}

/* take_str - a NUL-terminated string inside the packet, copied */
static int
take_str(struct cursor *c, char **s)
{
	const unsigned char *nul;
	size_t n;

	if ((nul = memchr(c->p, '\0', c->left)) == NULL)
		return -1;
	n = (size_t)(nul - c->p);
	*s = xstrndup((const char *)c->p, n);
	c->p += n + 1;
	c->left -= n + 1;
	return 0;
}

/*
 * replycode_ok - "4xx" or "5xx" then SP, '-' or the end: what Postfix
 * accepts from SMFIR_REPLYCODE (milter8.c checks the same shape)
 */
static bool
replycode_ok(const char *t)
{
	return (t[0] == '4' || t[0] == '5') &&
	    t[1] >= '0' && t[1] <= '9' && t[2] >= '0' && t[2] <= '9' &&
	    (t[3] == ' ' || t[3] == '-' || t[3] == '\0');
}

/* undouble - "%%" becomes "%" in place (smfi_setreply doubles them) */
static void
undouble(char *t)
{
	char *w = t;

	for (; *t != '\0'; t++) {
		*w++ = *t;
		if (t[0] == '%' && t[1] == '%')
			t++;
	}
	*w = '\0';
}

/* parse_optneg - version, actions, protocol, then setsymlist lists */
static const char *
parse_optneg(struct cursor *c, struct milter_reply *r)
{
	uint32_t stage;

	if (take_u32(c, &r->version) == -1 ||
	    take_u32(c, &r->actions) == -1 ||
	    take_u32(c, &r->protocol) == -1)
		return "short option negotiation reply";
	while (c->left > 0) {
		if (take_u32(c, &stage) == -1)
			return "truncated macro list in negotiation";
		if (stage >= MILTER_MACROS_COUNT)
			return "macro list for an unknown stage";
		if (r->symlist[stage] != NULL)
			return "two macro lists for one stage";
		if (take_str(c, &r->symlist[stage]) == -1)
			return "unterminated macro list in negotiation";
	}
	return NULL;
}

/* parse_data - the fields of reply r->code; NULL or an error */
static const char *
parse_data(struct cursor *c, struct milter_reply *r)
{
	switch (r->code) {
	case MILTER_REPLY_OPTNEG:
		return parse_optneg(c, r);
	case MILTER_REPLY_CONTINUE:
	case MILTER_REPLY_ACCEPT:
	case MILTER_REPLY_REJECT:
	case MILTER_REPLY_TEMPFAIL:
	case MILTER_REPLY_DISCARD:
	case MILTER_REPLY_SKIP:
	case MILTER_REPLY_PROGRESS:
	case MILTER_REPLY_CONN_FAIL:
	case MILTER_REPLY_SHUTDOWN:
		break;
	case MILTER_REPLY_REPLYCODE:
		if (take_str(c, &r->value) == -1)
			return "unterminated reply code";
		if (!replycode_ok(r->value))
			return "reply code not 4xx or 5xx";
		undouble(r->value);
		break;
	case MILTER_REPLY_INSHEADER:
	case MILTER_REPLY_CHGHEADER:
		if (take_u32(c, &r->index) == -1)
			return "header edit without an index";
		/* FALLTHROUGH */
	case MILTER_REPLY_ADDHEADER:
		if (take_str(c, &r->name) == -1 ||
		    take_str(c, &r->value) == -1)
			return "unterminated header edit";
		if (r->name[0] == '\0')
			return "header edit without a name";
		break;
	case MILTER_REPLY_REPLBODY:
		r->data = xmalloc(c->left + 1);
		memcpy(r->data, c->p, c->left);
		r->data[c->left] = '\0';
		r->len = c->left;
		c->p += c->left;
		c->left = 0;
		break;
	case MILTER_REPLY_CHGFROM:
	case MILTER_REPLY_ADDRCPT_PAR:
		if (take_str(c, &r->value) == -1)
			return "unterminated address";
		if (c->left > 0 && take_str(c, &r->args) == -1)
			return "unterminated ESMTP arguments";
		break;
	case MILTER_REPLY_ADDRCPT:
	case MILTER_REPLY_DELRCPT:
		if (take_str(c, &r->value) == -1)
			return "unterminated address";
		break;
	case MILTER_REPLY_QUARANTINE:
		if (take_str(c, &r->value) == -1)
			return "unterminated quarantine reason";
		break;
	default:
		return "unknown milter reply code";
	}
	if (c->left != 0)
		return "extra data after a milter reply";
	return NULL;
}

int
milter_reader_next(struct milter_reader *rd, struct milter_reply *r,
    const char **error_r)
{
	const unsigned char *p = (const unsigned char *)rd->in.data;
	struct cursor c;
	uint32_t len;
	const char *err;

	milter_reply_init(r);
	if (rd->error != NULL)
		goto fail;
	if (rd->in.len < MILTER_LEN_BYTES)
		return 0;
	len = get_u32(p);
	if (len == 0) {
		rd->error = "milter packet without a command";
		goto fail;
	}
	/* refuse before buffering: a length of 4 GB must cost nothing */
	if (len > rd->max_packet) {
		rd->error = "milter packet larger than the limit";
		goto fail;
	}
	if (rd->in.len - MILTER_LEN_BYTES < len)
		return 0;
	r->code = (char)p[MILTER_LEN_BYTES];
	c.p = p + MILTER_LEN_BYTES + 1;
	c.left = len - 1;
	if ((err = parse_data(&c, r)) != NULL) {
		milter_reply_deinit(r);
		rd->error = err;
		goto fail;
	}
	buf_consume(&rd->in, MILTER_LEN_BYTES + len);
	return 1;
fail:
	*error_r = rd->error;
	return -1;
}

/* negotiation */

int
milter_negotiate(const struct milter_reply *r, uint32_t our_version,
    uint32_t our_actions, uint32_t our_protocol, struct milter_neg *neg,
    const char **error_r)
{
	size_t i;
	bool lists = false;

	memset(neg, 0, sizeof(*neg));
	if (r->code != MILTER_REPLY_OPTNEG) {
		*error_r = "milter did not answer the option negotiation";
		return -1;
	}
	/* versions before 2 had no negotiation; above ours: not ours */
	if (r->version < 2 || r->version > our_version) {
		*error_r = "milter protocol version not supported";
		return -1;
	}
	/* Postfix milter8.c fails the milter here too */
	if ((r->actions & ~our_actions) != 0) {
		*error_r = "milter asks for actions we did not offer";
		return -1;
	}
	/*
	 * libmilter's internal bits (data size negotiation) are not
	 * protocol steps; everything else must be something we offered
	 */
	if ((r->protocol & ~MILTER_P_INTERNAL & ~our_protocol) != 0) {
		*error_r = "milter asks for protocol steps we did not offer";
		return -1;
	}
	for (i = 0; i < MILTER_MACROS_COUNT; i++)
		if (r->symlist[i] != NULL)
			lists = true;
	if (lists && (r->actions & MILTER_ACT_SETSYMLIST) == 0) {
		*error_r = "milter sets macro lists without SETSYMLIST";
		return -1;
	}
	neg->version = r->version;
	neg->actions = r->actions;
	neg->protocol = r->protocol & ~MILTER_P_INTERNAL;
	for (i = 0; i < MILTER_MACROS_COUNT; i++)
		if (r->symlist[i] != NULL)
			neg->symlist[i] = xstrdup(r->symlist[i]);
	return 0;
}

void
milter_neg_deinit(struct milter_neg *neg)
{
	size_t i;

	for (i = 0; i < MILTER_MACROS_COUNT; i++) {
		free(neg->symlist[i]);
		neg->symlist[i] = NULL;
	}
}

/* the protocol bits of each command: not sent, no reply */
static const struct {
	char	 cmd;
	uint32_t no;
	uint32_t nr;
	uint32_t since;		/* first protocol version with it */
} cmd_bits[] = {
	{ MILTER_CMD_CONNECT, MILTER_P_NOCONNECT, MILTER_P_NR_CONN, 2 },
	{ MILTER_CMD_HELO, MILTER_P_NOHELO, MILTER_P_NR_HELO, 2 },
	{ MILTER_CMD_MAIL, MILTER_P_NOMAIL, MILTER_P_NR_MAIL, 2 },
	{ MILTER_CMD_RCPT, MILTER_P_NORCPT, MILTER_P_NR_RCPT, 2 },
	{ MILTER_CMD_DATA, MILTER_P_NODATA, MILTER_P_NR_DATA, 4 },
	{ MILTER_CMD_HEADER, MILTER_P_NOHDRS, MILTER_P_NR_HDR, 2 },
	{ MILTER_CMD_EOH, MILTER_P_NOEOH, MILTER_P_NR_EOH, 2 },
	{ MILTER_CMD_BODY, MILTER_P_NOBODY, MILTER_P_NR_BODY, 2 },
	{ MILTER_CMD_UNKNOWN, MILTER_P_NOUNKNOWN, MILTER_P_NR_UNKN, 3 },
};

static size_t
cmd_index(char cmd)
{
	size_t i;

	for (i = 0; i < sizeof(cmd_bits) / sizeof(*cmd_bits); i++)
		if (cmd_bits[i].cmd == cmd)
			return i;
	return SIZE_MAX;
}

bool
milter_neg_sends(const struct milter_neg *neg, char cmd)
{
	size_t i = cmd_index(cmd);

	if (i == SIZE_MAX)
		return true;
	return neg->version >= cmd_bits[i].since &&
	    (neg->protocol & cmd_bits[i].no) == 0;
}

bool
milter_neg_expects_reply(const struct milter_neg *neg, char cmd)
{
	size_t i;

	switch (cmd) {
	case MILTER_CMD_MACRO:
	case MILTER_CMD_ABORT:
	case MILTER_CMD_QUIT:
	case MILTER_CMD_QUIT_NC:
		return false;
	}
	if ((i = cmd_index(cmd)) == SIZE_MAX)
		return true;
	return (neg->protocol & cmd_bits[i].nr) == 0;
}

bool
milter_neg_allows(const struct milter_neg *neg, char code)
{
	switch (code) {
	case MILTER_REPLY_ADDHEADER:
	case MILTER_REPLY_INSHEADER:
		return (neg->actions & MILTER_ACT_ADDHDRS) != 0;
	case MILTER_REPLY_CHGHEADER:
		return (neg->actions & MILTER_ACT_CHGHDRS) != 0;
	case MILTER_REPLY_REPLBODY:
		return (neg->actions & MILTER_ACT_CHGBODY) != 0;
	case MILTER_REPLY_CHGFROM:
		return (neg->actions & MILTER_ACT_CHGFROM) != 0;
	case MILTER_REPLY_ADDRCPT:
		return (neg->actions & MILTER_ACT_ADDRCPT) != 0;
	case MILTER_REPLY_ADDRCPT_PAR:
		return (neg->actions & MILTER_ACT_ADDRCPT_PAR) != 0;
	case MILTER_REPLY_DELRCPT:
		return (neg->actions & MILTER_ACT_DELRCPT) != 0;
	case MILTER_REPLY_QUARANTINE:
		return (neg->actions & MILTER_ACT_QUARANTINE) != 0;
	case MILTER_REPLY_SKIP:
		return (neg->protocol & MILTER_P_SKIP) != 0;
	}
	return true;
}

const char *
milter_neg_macros(const struct milter_neg *neg, enum milter_macro_stage s)
{
	return s < MILTER_MACROS_COUNT ? neg->symlist[s] : NULL;
}

/* edits */

void
milter_edit_map_init(struct milter_edit_map *m, struct filter_edits *edits,
    bool leadspc, size_t max_body)
{
	memset(m, 0, sizeof(*m));
	m->edits = edits;
	m->leadspc = leadspc;
	buf_init(&m->body, max_body);
}

void
milter_edit_map_deinit(struct milter_edit_map *m)
{
	buf_deinit(&m->body);
}

/*
 * header_value - a milter's header value as our edit API wants it: the
 * space HDR_LEADSPC leaves after the colon removed (we write ": "), LF
 * folding as CRLF. Caller frees.
 */
static char *
header_value(const char *v, bool leadspc)
{
	struct buf b;

	if (leadspc && *v == ' ')
		v++;
	buf_init(&b, 0);
	buf_append(&b, "", 0);
	for (; *v != '\0'; v++) {
		if (*v == '\n' && (b.len == 0 || b.data[b.len - 1] != '\r'))
			buf_append(&b, "\r", 1);
		buf_append(&b, v, 1);
	}
	return buf_steal(&b);
}

/* body_append - a REPLBODY chunk, bare LF as CRLF even across chunks */
static int
body_append(struct milter_edit_map *m, const struct milter_reply *r,
    const char **error_r)
{
	size_t i;
	char c;

	if (m->body_closed) {
		*error_r = "replacement body in two runs";
		return -1;
	}
	if (memchr(r->data, '\0', r->len) != NULL) {
		*error_r = "NUL byte in the replacement body";
		return -1;
	}
	m->has_body = true;
	for (i = 0; i < r->len; i++) {
		c = r->data[i];
		if ((c == '\n' && !m->body_cr &&
		    buf_append(&m->body, "\r", 1) == -1) ||
		    buf_append(&m->body, &c, 1) == -1) {
			*error_r = "replacement body too large";
			return -1;
		}
		m->body_cr = c == '\r';
	}
	return 0;
}

/* envelope_address - value without one pair of angle brackets */
static char *
envelope_address(const char *v)
{
	size_t n = strlen(v);

	if (n >= 2 && v[0] == '<' && v[n - 1] == '>')
		return xstrndup(v + 1, n - 2);
	return xstrdup(v);
}

int
milter_edit_map_add(struct milter_edit_map *m, const struct milter_reply *r,
    const char **error_r)
{
	enum filter_edit_kind kind;
	char *v;
	size_t index = 0;

	if (r->code == MILTER_REPLY_REPLBODY)
		return body_append(m, r, error_r);
	if (!milter_reply_is_modification(r->code)) {
		*error_r = "not a milter modification";
		return -1;
	}
	if (m->has_body)
		m->body_closed = true;
	switch (r->code) {
	case MILTER_REPLY_QUARANTINE:
		return 0;	/* the caller holds the message */
	case MILTER_REPLY_ADDHEADER:
	case MILTER_REPLY_INSHEADER:
	case MILTER_REPLY_CHGHEADER:
		if (r->code == MILTER_REPLY_ADDHEADER)
			kind = FILTER_EDIT_ADD_HEADER;
		else if (r->code == MILTER_REPLY_INSHEADER) {
			kind = FILTER_EDIT_INSERT_HEADER;
			index = r->index;
		} else {
			/* Sendmail and Postfix take index 0 as the first */
			kind = FILTER_EDIT_CHANGE_HEADER;
			index = r->index == 0 ? 1 : r->index;
		}
		if (kind == FILTER_EDIT_CHANGE_HEADER && r->value[0] == '\0') {
			filter_edits_add(m->edits, kind, index, r->name, NULL);
			return 0;
		}
		v = header_value(r->value, m->leadspc);
		filter_edits_add(m->edits, kind, index, r->name, v);
		free(v);
		return 0;
	case MILTER_REPLY_CHGFROM:
		kind = FILTER_EDIT_CHANGE_FROM;
		break;
	case MILTER_REPLY_DELRCPT:
		kind = FILTER_EDIT_DELETE_RCPT;
		break;
	default:		/* ADDRCPT, ADDRCPT_PAR */
		kind = FILTER_EDIT_ADD_RCPT;
		break;
	}
	v = envelope_address(r->value);
	if (v[0] == '\0' && kind != FILTER_EDIT_CHANGE_FROM) {
		free(v);
		*error_r = "empty recipient address in a milter edit";
		return -1;
	}
	/* the ESMTP parameters are checked where the edit is applied */
	filter_edits_add_envelope(m->edits, kind, v,
	    kind == FILTER_EDIT_DELETE_RCPT ? NULL : r->args);
	free(v);
	return 0;
}

void
milter_edit_map_finish(struct milter_edit_map *m)
{
	if (!m->has_body)
		return;
	filter_edits_add(m->edits, FILTER_EDIT_REPLACE_BODY, 0, NULL,
	    buf_cstr(&m->body));
	m->has_body = false;
	m->body_closed = true;
	buf_reset(&m->body);
}

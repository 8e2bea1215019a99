/*
 * milter_client_probe.c - drive one milter through one message with
 * filters/milter_proto.c, the way Postfix would, and show what it did.
 *
 *   milter_client_probe [-t MS] [-o OUT] [-f SENDER] [-r RCPT]...
 *       [-a AUTH_TYPE] [-u AUTH_USER] [-A MASK] [-V TEXT]
 *       PORT MESSAGE
 *   milter_client_probe [options] -U PATH MESSAGE
 *
 * Connects to the milter at 127.0.0.1:PORT (or, with -U, to the unix
 * socket PATH), negotiates (version 6, every protocol step offered; the
 * actions of -A MASK, hex, e.g. 0x1fe for all but add headers, default
 * all: 0x1ff), then sends connect, HELO, MAIL, RCPT,
 * DATA, the headers, EOH, the body in chunks and end of message, each
 * preceded by the macros of its stage (Postfix's default lists, or the
 * milter's setsymlist lists): {daemon_name}, {auth_type}, {mail_addr},
 * {rcpt_addr}, i, j ... MESSAGE is read from a file (LF or CRLF).
 * Macro v (the MTA's name and version, e.g. "Postfix 3.7.11") is sent at
 * connect only with -V TEXT, as TEXT.
 *
 * Prints one line per event on stdout:
 *
 *   negotiated version=V actions=0xA protocol=0xP
 *   symlist STAGE MACROS
 *   reply STAGE NAME [TEXT]          (anything but continue/progress)
 *   modification NAME [index=N] [name=H] value=V    (escaped)
 *   action NAME [TEXT]               (the verdict that ended the message)
 *   error STAGE: TEXT
 *
 * With -o, the message with the milter's edits applied (daemon/
 * message_edit.c) is written to OUT. Every read and write waits at most
 * -t milliseconds (default 10000; a progress reply restarts the wait).
 * A modification the negotiated actions do not allow is an error.
 * Exit status: 0 after an action, 1 after an error, 2 on usage errors.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "message_edit.h"
#include "milter_proto.h"
#include "xmalloc.h"

#define MAX_RCPTS	16

/* Postfix's default macro lists (postconf -d, notes 3.3) */
static const char *const default_lists[MILTER_MACROS_COUNT] = {
	[MILTER_MACROS_CONNECT] = "j {daemon_name} {daemon_addr} v _",
	[MILTER_MACROS_HELO] = "{tls_version} {cipher} {cipher_bits} "
	    "{cert_subject} {cert_issuer}",
	[MILTER_MACROS_MAIL] = "i {auth_type} {auth_authen} {auth_author} "
	    "{mail_addr} {mail_host} {mail_mailer}",
	[MILTER_MACROS_RCPT] = "i {rcpt_addr} {rcpt_host} {rcpt_mailer}",
	[MILTER_MACROS_DATA] = "i",
	[MILTER_MACROS_EOM] = "i",
	[MILTER_MACROS_EOH] = "i",
};

static const char *const stage_names[MILTER_MACROS_COUNT] = {
	"connect", "helo", "mail", "rcpt", "data", "eom", "eoh",
};

enum { POOL_RCPT_ADDR, POOL_RCPT_HOST, POOL_MAIL_HOST, POOL_N = 15 };

struct probe {
	int	 fd;
	int	 timeout_ms;
	uint32_t actions;	/* offered in negotiation (-A) */
	struct milter_reader rd;
	struct milter_neg neg;
	struct milter_macro pool[POOL_N];	/* every macro we know */
	struct filter_edits edits;
	struct milter_edit_map map;
	bool	 quarantined;
	const char *action;	/* the verdict that ended the message */
};

/* stage results */
enum await { AWAIT_CONTINUE, AWAIT_SKIP, AWAIT_DONE, AWAIT_ERROR };

static void
print_esc(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\n')
			fputs("\\n", stdout);
		else if (c == '\r')
			fputs("\\r", stdout);
		else if (c == '\t')
			fputs("\\t", stdout);
		else if (c < 0x20 || c >= 0x7f || c == '\\')
			printf("\\x%02x", c);
		else
			putchar(c);
	}
}

static int
fail(const char *stage, const char *what)
{
	printf("error %s: %s\n", stage, what);
	fflush(stdout);
	return -1;
}

/* send_all - write a packet buffer, waiting at most the timeout */
static int
send_all(struct probe *p, const char *stage, struct buf *b)
{
	struct pollfd pfd = { .fd = p->fd, .events = POLLOUT };
	size_t off = 0;
	ssize_t n;
	int r;

	while (off < b->len) {
		r = poll(&pfd, 1, p->timeout_ms);
		if (r == 0)
			return fail(stage, "timeout writing to the milter");
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			return fail(stage, strerror(errno));
		n = send(p->fd, b->data + off, b->len - off, MSG_NOSIGNAL);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n == -1)
			return fail(stage, strerror(errno));
		off += (size_t)n;
	}
	buf_reset(b);
	return 0;
}

/* read_reply - the next reply, waiting at most the timeout for bytes */
static int
read_reply(struct probe *p, const char *stage, struct milter_reply *r)
{
	struct pollfd pfd = { .fd = p->fd, .events = POLLIN };
	char chunk[16384];
	const char *err;
	ssize_t n;
	int rc;

	for (;;) {
		if ((rc = milter_reader_next(&p->rd, r, &err)) == 1)
			return 0;
		if (rc == -1)
			return fail(stage, err);
		rc = poll(&pfd, 1, p->timeout_ms);
		if (rc == 0)
			return fail(stage, "timeout waiting for the milter");
		if (rc == -1 && errno == EINTR)
			continue;
		if (rc == -1)
			return fail(stage, strerror(errno));
		n = recv(p->fd, chunk, sizeof(chunk), 0);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n == -1)
			return fail(stage, strerror(errno));
		if (n == 0)
			return fail(stage, "milter closed the connection");
		if (milter_reader_feed(&p->rd, chunk, (size_t)n, &err) == -1)
			return fail(stage, err);
	}
}

static void
print_modification(const struct milter_reply *r)
{
	printf("modification %s", milter_reply_name(r->code));
	if (r->code == MILTER_REPLY_INSHEADER ||
	    r->code == MILTER_REPLY_CHGHEADER)
		printf(" index=%u", r->index);
	if (r->name != NULL)
		printf(" name=%s", r->name);
	if (r->value != NULL) {
		fputs(" value=", stdout);
		print_esc(r->value, strlen(r->value));
	}
	if (r->args != NULL) {
		fputs(" args=", stdout);
		print_esc(r->args, strlen(r->args));
	}
	if (r->code == MILTER_REPLY_REPLBODY) {
		printf(" length=%zu data=", r->len);
		print_esc(r->data, r->len);
	}
	putchar('\n');
}

/*
 * await - the replies to one command: progress waits on, modifications
 * are collected at end of message, anything final ends the message
 */
static enum await
await(struct probe *p, const char *stage, bool eom)
{
	struct milter_reply r;
	const char *err;
	enum await ret = AWAIT_ERROR;

	for (;;) {
		if (read_reply(p, stage, &r) == -1)
			return AWAIT_ERROR;
		if (r.code == MILTER_REPLY_PROGRESS) {
			milter_reply_deinit(&r);
			continue;
		}
		if (!milter_neg_allows(&p->neg, r.code)) {
			fail(stage, "reply not allowed by the negotiation");
			break;
		}
		if (milter_reply_is_modification(r.code)) {
			if (!eom) {
				fail(stage, "modification before end of "
				    "message");
				break;
			}
			print_modification(&r);
			if (r.code == MILTER_REPLY_QUARANTINE)
				p->quarantined = true;
			if (milter_edit_map_add(&p->map, &r, &err) == -1) {
				fail(stage, err);
				break;
			}
			milter_reply_deinit(&r);
			continue;
		}
		switch (r.code) {
		case MILTER_REPLY_CONTINUE:
			ret = AWAIT_CONTINUE;
			break;
		case MILTER_REPLY_SKIP:
			ret = AWAIT_SKIP;
			break;
		case MILTER_REPLY_OPTNEG:
			fail(stage, "negotiation reply out of place");
			break;
		default:
			printf("reply %s %s%s%s\n", stage,
			    milter_reply_name(r.code), r.value ? " " : "",
			    r.value ? r.value : "");
			p->action = milter_reply_name(r.code);
			printf("action %s%s%s\n", p->action,
			    r.value ? " " : "", r.value ? r.value : "");
			ret = AWAIT_DONE;
			break;
		}
		break;
	}
	milter_reply_deinit(&r);
	return ret;
}

/*
 * step - the macros of a stage, then its command unless the milter
 * declined it, then its replies unless it asked for none
 */
static enum await
step(struct probe *p, enum milter_macro_stage stage, char cmd,
    struct buf *pkt)
{
	struct buf out;
	const char *list, *err;
	enum await ret = AWAIT_CONTINUE;

	buf_init(&out, 0);
	list = milter_neg_macros(&p->neg, stage);
	if (list == NULL)
		list = default_lists[stage];
	if (milter_pkt_macros(&out, cmd, p->pool, POOL_N, list, &err) == -1)
		ret = (fail(stage_names[stage], err), AWAIT_ERROR);
	if (ret == AWAIT_CONTINUE && milter_neg_sends(&p->neg, cmd))
		buf_append(&out, pkt->data, pkt->len);
	if (ret == AWAIT_CONTINUE &&
	    send_all(p, stage_names[stage], &out) == -1)
		ret = AWAIT_ERROR;
	if (ret == AWAIT_CONTINUE && milter_neg_sends(&p->neg, cmd) &&
	    milter_neg_expects_reply(&p->neg, cmd))
		ret = await(p, stage_names[stage], cmd == MILTER_CMD_BODYEOB);
	buf_deinit(&out);
	buf_reset(pkt);
	return ret;
}

static char *
read_file(const char *path, size_t *len_r)
{
	struct buf b;
	char chunk[8192];
	FILE *f;
	size_t n;

	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	buf_init(&b, 0);
	buf_append(&b, "", 0);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);
	*len_r = b.len;
	return buf_steal(&b);
}

/* crlf - LF line ends as CRLF (the file may have either) */
static char *
crlf(const char *s, size_t n, size_t *len_r)
{
	struct buf b;
	size_t i;

	buf_init(&b, 0);
	buf_append(&b, "", 0);
	for (i = 0; i < n; i++) {
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			buf_append(&b, "\r", 1);
		buf_append(&b, &s[i], 1);
	}
	*len_r = b.len;
	return buf_steal(&b);
}

static int
connect_milter(int port)
{
	struct sockaddr_in sin;
	int fd, one = 1;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		close(fd);
		return -1;
	}
	/* small request/response packets: no Nagle */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

/* connect_unix - the milter at a unix socket path; -1 with errno */
static int
connect_unix(const char *path)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

/* parse_mask - -A's hex action mask; -1 when it is not one */
static long
parse_mask(const char *s)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 16);
	if (errno != 0 || end == s || *end != '\0' || v > MILTER_ACT_ALL)
		return -1;
	return (long)v;
}

/* negotiate - our 'O' (the actions of -A), the milter's answer */
static int
negotiate(struct probe *p)
{
	struct milter_reply r;
	struct buf out;
	const char *err;
	size_t i;
	int rc = -1;

	buf_init(&out, 0);
	milter_pkt_optneg(&out, MILTER_VERSION, p->actions, MILTER_P_ALL,
	    &err);
	if (send_all(p, "negotiate", &out) == -1 ||
	    read_reply(p, "negotiate", &r) == -1)
		goto out;
	if (milter_negotiate(&r, MILTER_VERSION, p->actions,
	    MILTER_P_ALL, &p->neg, &err) == -1) {
		fail("negotiate", err);
		milter_reply_deinit(&r);
		goto out;
	}
	milter_reply_deinit(&r);
	printf("negotiated version=%u actions=0x%x protocol=0x%x\n",
	    p->neg.version, p->neg.actions, p->neg.protocol);
	for (i = 0; i < MILTER_MACROS_COUNT; i++)
		if (p->neg.symlist[i] != NULL)
			printf("symlist %s %s\n", stage_names[i],
			    p->neg.symlist[i]);
	rc = 0;
out:
	buf_deinit(&out);
	return rc;
}

/* message - every stage after negotiation; AWAIT_DONE when decided */
static enum await
message(struct probe *p, const char *sender, char **rcpts, size_t nrcpts,
    const struct header_list *hl, const char *body, size_t body_len)
{
	struct buf pkt, value;
	const char *err, *at;
	enum await a;
	size_t i, off, n;
	bool leadspc = (p->neg.protocol & MILTER_P_HDR_LEADSPC) != 0;

	buf_init(&pkt, 0);
	buf_init(&value, 0);
	milter_pkt_connect(&pkt, "client.example", '4', 40000, "127.0.0.1",
	    &err);
	if ((a = step(p, MILTER_MACROS_CONNECT, 'C', &pkt)) != AWAIT_CONTINUE)
		goto out;
	milter_pkt_helo(&pkt, "client.example", &err);
	if ((a = step(p, MILTER_MACROS_HELO, 'H', &pkt)) != AWAIT_CONTINUE)
		goto out;
	milter_pkt_envelope(&pkt, 'M', sender, NULL, 0, &err);
	if ((a = step(p, MILTER_MACROS_MAIL, 'M', &pkt)) != AWAIT_CONTINUE)
		goto out;
	for (i = 0; i < nrcpts; i++) {
		at = strrchr(rcpts[i], '@');
		p->pool[POOL_RCPT_ADDR].value = rcpts[i];
		p->pool[POOL_RCPT_HOST].value = at ? at + 1 : "localhost";
		milter_pkt_envelope(&pkt, 'R', rcpts[i], NULL, 0, &err);
		if ((a = step(p, MILTER_MACROS_RCPT, 'R', &pkt)) !=
		    AWAIT_CONTINUE)
			goto out;
	}
	milter_pkt_simple(&pkt, 'T', &err);
	if ((a = step(p, MILTER_MACROS_DATA, 'T', &pkt)) != AWAIT_CONTINUE)
		goto out;
	/* headers and body have no macros of their own */
	for (i = 0; i < hl->n; i++) {
		if (!milter_neg_sends(&p->neg, 'L'))
			break;
		milter_pkt_header(&pkt, hl->fields[i].name,
		    header_field_raw_value(&hl->fields[i], &value), leadspc,
		    &err);
		if (send_all(p, "header", &pkt) == -1) {
			a = AWAIT_ERROR;
			goto out;
		}
		if (milter_neg_expects_reply(&p->neg, 'L') &&
		    (a = await(p, "header", false)) != AWAIT_CONTINUE)
			goto out;
	}
	milter_pkt_simple(&pkt, 'N', &err);
	if ((a = step(p, MILTER_MACROS_EOH, 'N', &pkt)) != AWAIT_CONTINUE)
		goto out;
	for (off = 0; off < body_len && milter_neg_sends(&p->neg, 'B');
	    off += n) {
		n = body_len - off;
		if (n > MILTER_CHUNK_SIZE)
			n = MILTER_CHUNK_SIZE;
		milter_pkt_body(&pkt, body + off, n, &err);
		if (send_all(p, "body", &pkt) == -1) {
			a = AWAIT_ERROR;
			goto out;
		}
		if (!milter_neg_expects_reply(&p->neg, 'B'))
			continue;
		a = await(p, "body", false);
		if (a == AWAIT_SKIP)
			break;
		if (a != AWAIT_CONTINUE)
			goto out;
	}
	milter_pkt_simple(&pkt, 'E', &err);
	a = step(p, MILTER_MACROS_EOM, 'E', &pkt);
	if (a == AWAIT_CONTINUE) {
		p->action = "continue";
		printf("action continue\n");
		a = AWAIT_DONE;
	} else if (a == AWAIT_SKIP)
		a = AWAIT_ERROR, fail("eom", "skip at end of message");
out:
	buf_deinit(&pkt);
	buf_deinit(&value);
	return a;
}

/* write_out - the message with the edits applied */
static int
write_out(struct probe *p, const char *path, struct header_list *hl,
    char *sender, char **rcpts, size_t nrcpts, const char *body,
    size_t body_len)
{
	struct edit_envelope env;
	struct buf *new_body = NULL, out;
	const char *err;
	FILE *f;
	size_t i;
	int rc = -1;

	edit_envelope_init(&env, sender, nrcpts);
	for (i = 0; i < nrcpts; i++)
		env.rcpts[i] = xstrdup(rcpts[i]);
	buf_init(&out, 0);
	milter_edit_map_finish(&p->map);
	if (message_edit_apply(&p->edits, hl, &env, &new_body, &err) == -1) {
		fail("apply", err);
		goto out;
	}
	printf("envelope from=<%s>", env.sender);
	for (i = 0; i < env.nrcpts; i++)
		printf(" to=<%s>", env.rcpts[i]);
	printf("%s\n", p->quarantined ? " quarantined" : "");
	header_list_format(hl, &out);
	buf_append(&out, "\r\n", 2);
	if (new_body != NULL)
		buf_append(&out, new_body->data == NULL ? "" : new_body->data,
		    new_body->len);
	else
		buf_append(&out, body, body_len);
	if ((f = fopen(path, "wb")) == NULL ||
	    fwrite(out.data, 1, out.len, f) != out.len || fclose(f) != 0) {
		fail("write", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (new_body != NULL) {
		buf_deinit(new_body);
		free(new_body);
	}
	buf_deinit(&out);
	edit_envelope_deinit(&env);
	return rc;
}

static void
usage(void)
{
	fprintf(stderr, "usage: milter_client_probe [-t MS] [-o OUT] "
	    "[-f SENDER] [-r RCPT]... [-a AUTH_TYPE] [-u AUTH_USER] "
	    "[-A MASK] [-V TEXT] {PORT | -U PATH} MESSAGE\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct probe p;
	struct header_list hl = { NULL, 0 };
	struct buf pkt;
	const char *out_path = NULL, *auth_type = NULL, *auth_user = NULL;
	const char *mta_version = NULL, *unix_path = NULL, *msg_path;
	char *sender = "sender@example.org", *rcpts[MAX_RCPTS];
	char *raw, *msg, *sep;
	const char *err, *mail_host;
	size_t raw_len, msg_len, hdr_len, nrcpts = 0;
	int ch, port = 0, status = 1;
	long mask;

	memset(&p, 0, sizeof(p));
	p.timeout_ms = 10000;
	p.actions = MILTER_ACT_ALL;
	while ((ch = getopt(argc, argv, "A:a:f:o:r:t:U:u:V:")) != -1) {
		switch (ch) {
		case 'A':
			if ((mask = parse_mask(optarg)) == -1)
				usage();
			p.actions = (uint32_t)mask;
			break;
		case 'a': auth_type = optarg; break;
		case 'f': sender = optarg; break;
		case 'o': out_path = optarg; break;
		case 'r':
			if (nrcpts == MAX_RCPTS)
				usage();
			rcpts[nrcpts++] = optarg;
			break;
		case 't': p.timeout_ms = atoi(optarg); break;
		case 'U': unix_path = optarg; break;
		case 'u': auth_user = optarg; break;
		case 'V': mta_version = optarg; break;
		default: usage();
		}
	}
	/* PORT MESSAGE, or with -U only MESSAGE */
	if (argc - optind != (unix_path != NULL ? 1 : 2))
		usage();
	if (unix_path == NULL && ((port = atoi(argv[optind])) <= 0 ||
	    port > 65535))
		usage();
	msg_path = argv[argc - 1];
	if (nrcpts == 0)
		rcpts[nrcpts++] = "rcpt@example.net";
	if ((raw = read_file(msg_path, &raw_len)) == NULL) {
		perror(msg_path);
		return 2;
	}
	msg = crlf(raw, raw_len, &msg_len);
	free(raw);
	/* the header block ends at the first empty line */
	if ((sep = strstr(msg, "\r\n\r\n")) != NULL)
		hdr_len = (size_t)(sep - msg) + 2;
	else
		hdr_len = msg_len;
	if (header_list_parse(&hl, msg, hdr_len) == -1) {
		fprintf(stderr, "%s: not a message\n", msg_path);
		return 2;
	}
	mail_host = strrchr(sender, '@') ? strrchr(sender, '@') + 1 : "";
	{
		const struct milter_macro pool[POOL_N] = {
			[POOL_RCPT_ADDR] = { "rcpt_addr", NULL },
			[POOL_RCPT_HOST] = { "rcpt_host", NULL },
			[POOL_MAIL_HOST] = { "mail_host", mail_host },
			{ "rcpt_mailer", "smtp" },
			{ "j", "probe.example.test" },
			{ "daemon_name", "postern-probe" },
			{ "daemon_addr", "127.0.0.1" },
			{ "v", mta_version },
			{ "_", "client.example [127.0.0.1]" },
			{ "client_addr", "127.0.0.1" },
			{ "client_name", "client.example" },
			{ "i", "PROBE1" },
			{ "auth_type", auth_type },
			{ "auth_authen", auth_user },
			{ "mail_addr", sender },
		};
		memcpy(p.pool, pool, sizeof(pool));
	}
	milter_reader_init(&p.rd, 0);
	filter_edits_init(&p.edits);
	if ((p.fd = unix_path != NULL ? connect_unix(unix_path) :
	    connect_milter(port)) == -1) {
		fail("connect", strerror(errno));
		goto out;
	}
	if (negotiate(&p) == -1)
		goto out;
	milter_edit_map_init(&p.map, &p.edits,
	    (p.neg.protocol & MILTER_P_HDR_LEADSPC) != 0, 0);
	switch (message(&p, sender, rcpts, nrcpts, &hl,
	    msg + (sep != NULL ? hdr_len + 2 : msg_len),
	    sep != NULL ? msg_len - hdr_len - 2 : 0)) {
	case AWAIT_DONE:
		status = 0;
		break;
	default:
		break;
	}
	if (status == 0 && out_path != NULL &&
	    write_out(&p, out_path, &hl, sender, rcpts, nrcpts,
	    msg + (sep != NULL ? hdr_len + 2 : msg_len),
	    sep != NULL ? msg_len - hdr_len - 2 : 0) == -1)
		status = 1;
	/* say goodbye; the milter may already be gone */
	buf_init(&pkt, 0);
	milter_pkt_simple(&pkt, 'Q', &err);
	(void)send(p.fd, pkt.data, pkt.len, MSG_NOSIGNAL);
	buf_deinit(&pkt);
	milter_edit_map_deinit(&p.map);
out:
	if (p.fd > 0)
		close(p.fd);
	milter_neg_deinit(&p.neg);
	milter_reader_deinit(&p.rd);
	filter_edits_deinit(&p.edits);
	header_list_deinit(&hl);
	free(msg);
	fflush(stdout);
	return status;
}

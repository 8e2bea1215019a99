/*
 * session.c - SMTP server session: connection life cycle, input framing,
 * replies, timeouts and the state machine. Command handlers live in
 * session_cmd.c, the content phase in session_data.c, AUTH in
 * session_auth.c.
 *
 * Input framing follows RFC 5321 4.1.1 and RFC 2920: commands are read
 * one line at a time from whatever the client has sent, so a pipelined
 * group is answered in order and the replies leave in one write when the
 * input runs dry. Work that must not run on the loop suspends the
 * session: reading stops until the completion resumes it, so the order of
 * replies never changes.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "chain.h"
#include "listener.h"
#include "log.h"
#include "loop.h"
#include "runtime.h"
#include "session.h"
#include "session-private.h"
#include "tls.h"
#include "xmalloc.h"

static const char *const state_names[SMTP_STATE_COUNT] = {
	"GREETING", "HELO", "READY", "MAIL", "RCPT", "DATA", "BDAT", "AUTH",
	"QUIT",
};

static atomic_ullong session_next_id = 1;
static atomic_int sessions_alive;

/* the sessions of this loop's thread, for shutdown */
static __thread struct session_link {
	struct session *s;
	struct session_link *next;
} *loop_sessions;

static void session_read_cb(struct bufferevent *, void *);
static void session_write_cb(struct bufferevent *, void *);
static void session_event_cb(struct bufferevent *, short, void *);
static void session_timeout_cb(evutil_socket_t, short, void *);

int
session_count(void)
{
	return atomic_load(&sessions_alive);
}

void
session_set_state(struct session *s, enum smtp_state st)
{
	if (s->state == SMTP_STATE_QUIT)
		return;		/* closing is final */
	if (s->state != st)
		log_debug("smtpd", "session %llu: %s -> %s", s->id,
		    state_names[s->state], state_names[st]);
	s->state = st;
}

const char *
session_state_name(enum smtp_state st)
{
	return st < SMTP_STATE_COUNT ? state_names[st] : "?";
}

void
session_reply(struct session *s, const char *fmt, ...)
{
	struct evbuffer *out;
	va_list ap;

	if (s->bev == NULL)
		return;
	out = bufferevent_get_output(s->bev);
	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

/* session_reply_text - a full reply line as given (filters, data errors) */
void
session_reply_text(struct session *s, const char *reply)
{
	session_reply(s, "%s", reply);
}

/*
 * session_arm_timer - the time allowed for the next read: smtpd_timeout
 * per command, smtpd_starttls_timeout for a TLS handshake in progress,
 * and never beyond the smtpd_data_timeout deadline of a DATA/BDAT phase.
 */
void
session_arm_timer(struct session *s)
{
	struct timeval tv = { 0, 0 };
	time_t left;

	tv.tv_sec = s->cfg->smtpd_timeout;
	if (s->tls && s->tls_version[0] == '\0')
		tv.tv_sec = s->cfg->smtpd_starttls_timeout;
	if (s->tx != NULL && s->tx->data_deadline != 0) {
		left = s->tx->data_deadline - time(NULL);
		if (left < 1)
			left = 1;
		if (left < tv.tv_sec)
			tv.tv_sec = left;
	}
	evtimer_add(s->timer, &tv);
}

static void
tarpit_done(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	if (session_resume_begin(s))
		session_resume_end(s);
}

/*
 * session_error - count a client error; true if the session must end.
 * Past smtpd_soft_error_limit every further error costs the client one
 * second before its next command is read (Postfix's smtpd_error_sleep_time),
 * which slows down password guessing and address harvesting.
 */
bool
session_error(struct session *s)
{
	struct timeval one = { 1, 0 };

	s->errors++;
	if (s->errors >= s->cfg->smtpd_hard_error_limit) {
		log_info("NOQUEUE: too many errors after %s from %s",
		    s->last_cmd[0] != '\0' ? s->last_cmd : "CONNECT",
		    s->ident);
		session_reply(s, "421 4.7.0 %s Error: too many errors",
		    s->cfg->myhostname);
		session_close(s);
		return true;
	}
	if (s->errors >= s->cfg->smtpd_soft_error_limit && !s->suspended &&
	    !s->closing) {
		session_suspend(s);
		evtimer_add(s->tarpit, &one);
	}
	return false;
}

/* unlink_session - drop s from this thread's list */
static void
unlink_session(struct session *s)
{
	struct session_link **lp, *l;

	for (lp = &loop_sessions; (l = *lp) != NULL; lp = &l->next)
		if (l->s == s) {
			*lp = l->next;
			free(l);
			return;
		}
}

static void
session_free(struct session *s)
{
	struct filter_call call;
	const char *who;

	unlink_session(s);
	session_tx_free(s);
	if (s->conn_chain.state != NULL) {
		memset(&call, 0, sizeof(call));
		call.conn = &s->fconn;
		call.stage = FILTER_STAGE_CLOSE;
		if (chain_has_stage(s->rt->chain, FILTER_STAGE_CLOSE))
			(void)chain_run(&s->conn_chain, &call, &who);
		chain_tx_end(&s->conn_chain);
	}
	log_info("disconnect from %s%s", s->ident,
	    s->errors > 0 ? " (with errors)" : "");
	if (s->bev != NULL)
		bufferevent_free(s->bev);
	if (s->timer != NULL)
		event_free(s->timer);
	if (s->tarpit != NULL)
		event_free(s->tarpit);
	listener_release(s->listener, &s->ss);
	runtime_unref(&s->rt);
	free(s->helo);
	free(s->sasl_method);
	free(s->sasl_username);
	if (s->auth_user != NULL) {
		explicit_bzero(s->auth_user, strlen(s->auth_user));
		free(s->auth_user);
	}
	free(s);
	atomic_fetch_sub(&sessions_alive, 1);
}

/*
 * output_pending - replies not yet handed to the kernel: our buffer and,
 * under TLS, the socket bufferevent beneath the TLS filter
 */
static size_t
output_pending(struct session *s)
{
	struct bufferevent *under;
	size_t n;

	if (s->bev == NULL)
		return 0;
	n = evbuffer_get_length(bufferevent_get_output(s->bev));
	if ((under = bufferevent_get_underlying(s->bev)) != NULL)
		n += evbuffer_get_length(bufferevent_get_output(under));
	return n;
}

/* handshake_pending - TLS started but not finished: nothing can be sent */
static bool
handshake_pending(const struct session *s)
{
	return s->tls && s->tls_version[0] == '\0';
}

/* arm_reaper - check again soon whether the last replies are out */
static void
arm_reaper(struct session *s)
{
	struct timeval soon = { 0, 50000 }, now = { 0, 0 };

	evtimer_add(s->timer, output_pending(s) == 0 ||
	    handshake_pending(s) ? &now : &soon);
}

void
session_close(struct session *s)
{
	s->closing = true;
	session_set_state(s, SMTP_STATE_QUIT);
	if (s->bev != NULL)
		bufferevent_disable(s->bev, EV_READ);
	if (s->suspended)
		return;		/* the completion sees closing and frees */
	/*
	 * Never free here: a handler up the stack may still use s. The
	 * session is freed from the timer once the last reply is out, or
	 * when a client that does not read lets the deadline pass.
	 */
	s->close_deadline = time(NULL) + s->cfg->smtpd_timeout;
	arm_reaper(s);
}

static void
session_write_cb(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;

	if (s->closing && !s->suspended && output_pending(s) == 0) {
		session_free(s);
		return;
	}
	if (s->output_blocked && !s->closing && !s->suspended) {
		s->output_blocked = false;
		bufferevent_enable(bev, EV_READ);
		session_process_input(s);
	}
}

static void
session_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = arg;
	unsigned long e;
	char why[160];

	if (what & BEV_EVENT_CONNECTED) {
		session_tls_established(s);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		if (!s->closing && s->state != SMTP_STATE_QUIT &&
		    !s->suspended)
			log_info("lost connection after %s from %s",
			    s->last_cmd[0] != '\0' ? s->last_cmd : "CONNECT",
			    s->ident);
		if (!s->closing) {
			/*
			 * The client may only have shut down its sending
			 * side after a pipelined "...CRLF.CRLF QUIT": the
			 * commit in progress still answers, then we close.
			 */
			s->peer_eof = true;
			bufferevent_disable(bev, EV_READ);
			if (!s->suspended)
				session_close(s);
			return;
		}
	} else if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
		why[0] = '\0';
		while ((e = bufferevent_get_openssl_error(bev)) != 0)
			ERR_error_string_n(e, why, sizeof(why));
		if (why[0] == '\0')
			snprintf(why, sizeof(why), "%s",
			    strerror(EVUTIL_SOCKET_ERROR()));
		log_info("%s after %s from %s: %s",
		    s->tls || s->kind == LISTENER_SMTPS ?
		    "SSL/TLS error" : "connection error",
		    s->last_cmd[0] != '\0' ? s->last_cmd : "CONNECT",
		    s->ident, why);
	}
	s->closing = true;
	if (s->suspended) {
		/* the pool job still owns a pointer: let it finish */
		bufferevent_disable(bev, EV_READ | EV_WRITE);
		return;
	}
	session_free(s);
}

static void
session_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	if (s->closing) {
		if (s->suspended)
			return;
		if (output_pending(s) > 0 && !handshake_pending(s) &&
		    time(NULL) < s->close_deadline) {
			arm_reaper(s);
			return;
		}
		session_free(s);
		return;
	}
	if (s->suspended)
		return;
	if (s->state == SMTP_STATE_DATA || s->state == SMTP_STATE_BDAT)
		log_info("timeout after %s (%zu bytes) from %s",
		    s->state == SMTP_STATE_DATA ? "DATA" : "BDAT",
		    s->tx != NULL ? s->tx->data.size : 0, s->ident);
	else
		log_info("timeout after %s from %s",
		    s->last_cmd[0] != '\0' ? s->last_cmd : "CONNECT",
		    s->ident);
	session_reply(s, "421 4.4.2 %s Error: timeout exceeded",
	    s->cfg->myhostname);
	session_close(s);
}

void
session_suspend(struct session *s)
{
	s->suspended = true;
	if (s->bev != NULL)
		bufferevent_disable(s->bev, EV_READ);
	evtimer_del(s->timer);
}

bool
session_resume_begin(struct session *s)
{
	s->suspended = false;
	if (s->closing) {
		if (s->bev == NULL ||
		    !(bufferevent_get_enabled(s->bev) & EV_WRITE)) {
			session_free(s);	/* the connection is gone */
			return false;
		}
		s->close_deadline = time(NULL) + s->cfg->smtpd_timeout;
		arm_reaper(s);		/* frees once the output is out */
		return false;
	}
	return true;
}

void
session_resume_end(struct session *s)
{
	if (s->suspended || s->closing)
		return;
	if (s->shutdown_pending) {
		/* after the continuation replied: a commit gets its 250 */
		session_reply(s, "421 4.3.2 %s Service shutting down, closing "
		    "transmission channel", s->cfg->myhostname);
		session_close(s);
		return;
	}
	if (s->peer_eof) {
		/* answer what the client pipelined before its EOF, then go */
		session_process_input(s);
		if (!s->suspended && !s->closing)
			session_close(s);
		return;
	}
	bufferevent_enable(s->bev, EV_READ);
	session_arm_timer(s);
	/* input may have arrived while we were suspended */
	session_process_input(s);
}

/* take_line - the next command line without its line end, or NULL */
static char *
take_line(struct session *s, struct evbuffer *in, size_t *len_r, bool *long_r)
{
	struct evbuffer_ptr eol;
	size_t avail, limit;
	char *line;

	*long_r = false;
	limit = s->cfg->smtpd_line_length_limit;
	eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
	avail = evbuffer_get_length(in);
	if (eol.pos == -1) {
		if (avail > limit) {
			/* discard what we have; the rest of the line follows */
			evbuffer_drain(in, avail);
			s->discard_line = true;
		}
		return NULL;
	}
	if (s->discard_line || (size_t)eol.pos > limit) {
		evbuffer_drain(in, (size_t)eol.pos + 1);
		s->discard_line = false;
		*long_r = true;
		return NULL;
	}
	line = xmalloc((size_t)eol.pos + 1);
	evbuffer_remove(in, line, (size_t)eol.pos + 1);
	line[eol.pos] = '\0';
	*len_r = (size_t)eol.pos;
	if (*len_r > 0 && line[*len_r - 1] == '\r')
		line[--*len_r] = '\0';
	return line;
}

void
session_process_input(struct session *s)
{
	struct evbuffer *in;
	char *line;
	size_t len;
	bool too_long;

	while (!s->suspended && !s->closing && s->bev != NULL) {
		if (evbuffer_get_length(bufferevent_get_output(s->bev)) >
		    SESSION_OUTPUT_MAX) {
			/*
			 * The client pipelines without reading our replies:
			 * stop reading until they are out, so it cannot make
			 * us buffer without bound.
			 */
			s->output_blocked = true;
			bufferevent_disable(s->bev, EV_READ);
			return;
		}
		in = bufferevent_get_input(s->bev);
		if (s->state == SMTP_STATE_DATA ||
		    s->state == SMTP_STATE_BDAT) {
			if (!session_data_input(s, in))
				return;
			continue;
		}
		if (evbuffer_get_length(in) == 0)
			return;
		line = take_line(s, in, &len, &too_long);
		if (too_long) {
			log_info("NOQUEUE: reject: command line too long "
			    "from %s (limit %zu)", s->ident,
			    s->cfg->smtpd_line_length_limit);
			session_reply(s, "500 5.5.2 Error: line too long");
			if (session_error(s))
				return;
			continue;
		}
		if (line == NULL)
			return;
		if (s->state == SMTP_STATE_AUTH)
			session_auth_input(s, line, len);
		else
			session_command(s, line, len);
		explicit_bzero(line, len);
		free(line);
	}
}

static void
session_read_cb(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;

	if (s->closing || s->suspended) {
		if (s->suspended)
			return;
		evbuffer_drain(bufferevent_get_input(bev),
		    evbuffer_get_length(bufferevent_get_input(bev)));
		return;
	}
	session_arm_timer(s);
	session_process_input(s);
}

void
session_install_bev(struct session *s, struct bufferevent *bev)
{
	s->bev = bev;
	bufferevent_setcb(bev, session_read_cb, session_write_cb,
	    session_event_cb, s);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* client_ident - fill addr/name/ident from the peer address */
static void
client_ident(struct session *s, const struct sockaddr *sa)
{
	const struct sockaddr_in6 *sin6;
	struct sockaddr_in sin;

	if (sa->sa_family == AF_INET6) {
		sin6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			/* report and match IPv4-mapped clients as IPv4 */
			memset(&sin, 0, sizeof(sin));
			sin.sin_family = AF_INET;
			memcpy(&sin.sin_addr, &sin6->sin6_addr.s6_addr[12], 4);
			memcpy(&s->ss, &sin, sizeof(sin));
		}
	}
	if (s->ss.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&s->ss)->sin_addr,
		    s->addr, sizeof(s->addr));
	else
		inet_ntop(AF_INET6,
		    &((struct sockaddr_in6 *)&s->ss)->sin6_addr, s->addr,
		    sizeof(s->addr));
	/* XXX #2: no PTR lookup yet; Postfix says "unknown" likewise */
	snprintf(s->name, sizeof(s->name), "unknown");
	snprintf(s->ident, sizeof(s->ident), "%s[%s]", s->name, s->addr);
}

void
session_start(struct loop *loop, struct listener *lst, int fd,
    const struct sockaddr *sa, socklen_t salen)
{
	struct session *s;
	struct session_link *link;
	struct bufferevent *bev;
	int one = 1;

	s = xcalloc(1, sizeof(*s));
	s->id = atomic_fetch_add(&session_next_id, 1);
	atomic_fetch_add(&sessions_alive, 1);
	s->loop = loop;
	s->listener = lst;
	s->kind = listener_kind(lst);
	s->rt = runtime_current();
	s->cfg = s->rt->config;
	memcpy(&s->ss, sa, salen < sizeof(s->ss) ? salen : sizeof(s->ss));
	client_ident(s, sa);
	s->is_mynetworks = matchlist_match_addr(s->cfg->mynetworks,
	    (struct sockaddr *)&s->ss);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	link = xmalloc(sizeof(*link));
	link->s = s;
	link->next = loop_sessions;
	loop_sessions = link;

	s->timer = evtimer_new(loop_base(loop), session_timeout_cb, s);
	s->tarpit = evtimer_new(loop_base(loop), tarpit_done, s);
	log_info("connect from %s", s->ident);

	if (s->kind == LISTENER_SMTPS) {
		if (s->rt->tls_server == NULL) {
			log_warnx("smtps listener without "
			    "smtpd_tls_cert_file/smtpd_tls_key_file: "
			    "closing connection from %s", s->ident);
			close(fd);
			session_free(s);
			return;
		}
		bev = bufferevent_openssl_socket_new(loop_base(loop), fd,
		    tls_server_new(s->rt->tls_server),
		    BUFFEREVENT_SSL_ACCEPTING,
		    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
		s->tls = true;
	} else
		bev = bufferevent_socket_new(loop_base(loop), fd,
		    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL) {
		log_warnx("cannot create a bufferevent for %s", s->ident);
		close(fd);
		session_free(s);
		return;
	}
	session_install_bev(s, bev);
	session_conn_init(s);
	session_greet(s);
}

/* shutdown_one - 421 and close (SIGTERM); suspended ones finish first */
void
session_shutdown_all(struct loop *loop)
{
	struct session_link *l, *next;
	struct session *s;

	for (l = loop_sessions; l != NULL; l = next) {
		next = l->next;
		s = l->s;
		if (s->closing)
			continue;
		if (s->suspended) {
			s->shutdown_pending = true;
			continue;
		}
		session_reply(s, "421 4.3.2 %s Service shutting down, closing "
		    "transmission channel", s->cfg->myhostname);
		session_close(s);
	}
}

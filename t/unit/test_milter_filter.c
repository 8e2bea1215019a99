/*
 * test_milter_filter.c - unit tests of the milters filter's pure parts:
 * milter_spec_parse (filters/milter_spec.c: one smtpd_milters token,
 * with Postfix's brace groups, defaults from the milter_* parameters)
 * and milter_replycode (filters/milter_verdict.c: a milter's
 * SMFIR_REPLYCODE text policed into a reply the chain accepts), and
 * peer_connect (filters/peer_socket.c) to a unix listener whose queue
 * is full.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "config/config.h"
#include "filter.h"
#include "milter.h"
#include "peer_socket.h"
#include "tap.h"

#define NONE	NULL

/* the milter_* parameters the tokens fall back on */
static struct config cfg;

static void
cfg_setup(void)
{
	memset(&cfg, 0, sizeof(cfg));
	cfg.milter_connect_timeout = 30;
	cfg.milter_command_timeout = 30;
	cfg.milter_content_timeout = 300;
	cfg.milter_default_action = (char *)"tempfail";
}

static const struct spec_case {
	const char *name;
	const char *token;
	int	 rc;
	/* on success */
	const char *spec_name;
	const char *host, *port, *path;
	int	 connect, command, content;
	enum milter_fallback fallback;
	/* on failure: what the error must contain */
	const char *err;
} spec_cases[] = {
	{ "inet v4", "inet:127.0.0.1:8891", 0, "inet:127.0.0.1:8891",
	    "127.0.0.1", "8891", NONE, 30, 30, 300,
	    MILTER_FALLBACK_TEMPFAIL, NONE },
	{ "inet v6 in brackets", "inet:[::1]:8891", 0, "inet:[::1]:8891",
	    "::1", "8891", NONE, 30, 30, 300, MILTER_FALLBACK_TEMPFAIL,
	    NONE },
	{ "inet host name", "inet:localhost:10025", 0,
	    "inet:localhost:10025", "localhost", "10025", NONE, 30, 30, 300,
	    MILTER_FALLBACK_TEMPFAIL, NONE },
	{ "unix", "unix:/run/opendkim/od.sock", 0,
	    "unix:/run/opendkim/od.sock", NONE, NONE,
	    "/run/opendkim/od.sock", 30, 30, 300, MILTER_FALLBACK_TEMPFAIL,
	    NONE },
	{ "group, every option",
	    "{ inet:127.0.0.1:8891, connect_timeout=5s, command_timeout=10s, "
	    "content_timeout=2m, default_action=accept }", 0,
	    "inet:127.0.0.1:8891", "127.0.0.1", "8891", NONE, 5, 10, 120,
	    MILTER_FALLBACK_ACCEPT, NONE },
	{ "group, no spaces", "{inet:127.0.0.1:8891,default_action=quarantine}",
	    0, "inet:127.0.0.1:8891", "127.0.0.1", "8891", NONE, 30, 30, 300,
	    MILTER_FALLBACK_QUARANTINE, NONE },
	{ "group, spaces only, unix",
	    "{ unix:/x.sock default_action=reject }", 0, "unix:/x.sock",
	    NONE, NONE, "/x.sock", 30, 30, 300, MILTER_FALLBACK_REJECT,
	    NONE },
	{ "group, bare seconds", "{ inet:127.0.0.1:1, command_timeout=7 }", 0,
	    "inet:127.0.0.1:1", "127.0.0.1", "1", NONE, 30, 7, 300,
	    MILTER_FALLBACK_TEMPFAIL, NONE },
	{ "group, action in capitals",
	    "{ inet:127.0.0.1:1, default_action=ACCEPT }", 0,
	    "inet:127.0.0.1:1", "127.0.0.1", "1", NONE, 30, 30, 300,
	    MILTER_FALLBACK_ACCEPT, NONE },
	{ "group, blanks around =",
	    "{ inet:127.0.0.1:1, default_action = reject, "
	    "connect_timeout\t=  9s }",
	    0, "inet:127.0.0.1:1", "127.0.0.1", "1", NONE, 9, 30, 300,
	    MILTER_FALLBACK_REJECT, NONE },
	{ "group, only the address", "{ inet:127.0.0.1:1 }", 0,
	    "inet:127.0.0.1:1", "127.0.0.1", "1", NONE, 30, 30, 300,
	    MILTER_FALLBACK_TEMPFAIL, NONE },

	{ "unknown option", "{ inet:127.0.0.1:8891, bogus=1 }", -1,
	    NONE, NONE, NONE, NONE, 0, 0, 0, 0, "unknown setting" },
	{ "misspelt option", "{ inet:127.0.0.1:8891, connect_timeou=1s }", -1,
	    NONE, NONE, NONE, NONE, 0, 0, 0, 0, "unknown setting" },
	{ "option without =", "{ inet:127.0.0.1:8891, command_timeout }", -1,
	    NONE, NONE, NONE, NONE, 0, 0, 0, 0, "setting without '='" },
	{ "bad time", "{ inet:127.0.0.1:8891, command_timeout=abc }", -1,
	    NONE, NONE, NONE, NONE, 0, 0, 0, 0, "bad time value" },
	{ "bad time unit", "{ inet:127.0.0.1:8891, content_timeout=5x }", -1,
	    NONE, NONE, NONE, NONE, 0, 0, 0, 0, "bad time value" },
	{ "zero time", "{ inet:127.0.0.1:8891, connect_timeout=0s }", -1,
	    NONE, NONE, NONE, NONE, 0, 0, 0, 0, "bad time value" },
	{ "a day is the most", "{ inet:127.0.0.1:1, command_timeout=1d, "
	    "content_timeout=86400 }", 0, "inet:127.0.0.1:1", "127.0.0.1",
	    "1", NONE, 30, 86400, 86400, MILTER_FALLBACK_TEMPFAIL, NONE },
	{ "25 days overflow the ms", "{ inet:127.0.0.1:1, "
	    "content_timeout=25d }", -1, NONE, NONE, NONE, NONE, 0, 0, 0, 0,
	    "time value above 1 day" },
	{ "a day and a second", "{ inet:127.0.0.1:1, "
	    "connect_timeout=86401s }", -1, NONE, NONE, NONE, NONE, 0, 0, 0,
	    0, "time value above 1 day" },
	{ "empty time", "{ inet:127.0.0.1:8891, connect_timeout= }", -1,
	    NONE, NONE, NONE, NONE, 0, 0, 0, 0, "bad time value" },
	{ "bad action", "{ inet:127.0.0.1:8891, default_action=bounce }", -1,
	    NONE, NONE, NONE, NONE, 0, 0, 0, 0,
	    "default_action is not tempfail, accept, reject or quarantine" },
	{ "empty group", "{ }", -1, NONE, NONE, NONE, NONE, 0, 0, 0, 0,
	    "empty brace group" },
	{ "group without address", "{ connect_timeout=5s }", -1, NONE, NONE,
	    NONE, NONE, 0, 0, 0, 0, "not inet:host:port or unix:/path" },
	{ "unclosed group", "{ inet:127.0.0.1:8891", -1, NONE, NONE, NONE,
	    NONE, 0, 0, 0, 0, "brace group without '}'" },
	{ "inet without port", "inet:127.0.0.1", -1, NONE, NONE, NONE, NONE,
	    0, 0, 0, 0, "not inet:host:port or unix:/path" },
	{ "inet without host", "inet::8891", -1, NONE, NONE, NONE, NONE,
	    0, 0, 0, 0, "no host" },
	{ "inet port out of range", "inet:127.0.0.1:70000", -1, NONE, NONE,
	    NONE, NONE, 0, 0, 0, 0, "not inet:host:port or unix:/path" },
	{ "inet port not numeric", "inet:127.0.0.1:smtp", -1, NONE, NONE,
	    NONE, NONE, 0, 0, 0, 0, "not inet:host:port or unix:/path" },
	{ "unix without path", "unix:", -1, NONE, NONE, NONE, NONE, 0, 0, 0,
	    0, "no socket path" },
	{ "unknown transport", "tcp:127.0.0.1:25", -1, NONE, NONE, NONE,
	    NONE, 0, 0, 0, 0, "not inet:host:port or unix:/path" },
	{ "bare address", "127.0.0.1:8891", -1, NONE, NONE, NONE, NONE, 0, 0,
	    0, 0, "not inet:host:port or unix:/path" },
};

static void
test_spec(void)
{
	const struct spec_case *c;
	struct milter_spec spec;
	char *err, want[512];
	size_t i;
	int rc;

	cfg_setup();
	for (i = 0; i < sizeof(spec_cases) / sizeof(*spec_cases); i++) {
		c = &spec_cases[i];
		err = NULL;
		rc = milter_spec_parse(&spec, c->token, &cfg, &err);
		is_int(rc, c->rc, "spec %s: rc", c->name);
		if (rc == 0 && c->rc == 0) {
			is_str(spec.name, c->spec_name, "spec %s: name",
			    c->name);
			is_str(spec.ep.host, c->host, "spec %s: host",
			    c->name);
			is_str(spec.ep.port, c->port, "spec %s: port",
			    c->name);
			is_str(spec.ep.path, c->path, "spec %s: path",
			    c->name);
			is_int(spec.connect_timeout, c->connect,
			    "spec %s: connect_timeout", c->name);
			is_int(spec.command_timeout, c->command,
			    "spec %s: command_timeout", c->name);
			is_int(spec.content_timeout, c->content,
			    "spec %s: content_timeout", c->name);
			is_str(milter_fallback_name(spec.fallback),
			    milter_fallback_name(c->fallback),
			    "spec %s: default_action", c->name);
		} else if (rc == -1 && c->rc == -1) {
			/* the whole text: parameter, token, then why */
			snprintf(want, sizeof(want),
			    "smtpd_milters: \"%s\": %s", c->token, c->err);
			is_str(err, want, "spec %s: error", c->name);
		}
		free(err);
		milter_spec_deinit(&spec);
	}

	/* a bad milter_default_action spoils every token */
	cfg.milter_default_action = (char *)"bounce";
	err = NULL;
	rc = milter_spec_parse(&spec, "inet:127.0.0.1:8891", &cfg, &err);
	is_int(rc, -1, "spec with milter_default_action=bounce: rc");
	is_str(err, "milter_default_action: \"bounce\" is not tempfail, "
	    "accept, reject or quarantine",
	    "spec with milter_default_action=bounce: error");
	free(err);
	milter_spec_deinit(&spec);

	/* the group wins over the parameter it names, not over the others */
	cfg_setup();
	cfg.milter_default_action = (char *)"reject";
	cfg.milter_command_timeout = 11;
	err = NULL;
	rc = milter_spec_parse(&spec,
	    "{ inet:127.0.0.1:8891, default_action=accept }", &cfg, &err);
	is_int(rc, 0, "spec group over parameters: rc");
	is_str(milter_fallback_name(spec.fallback), "accept",
	    "spec group over parameters: default_action from the group");
	is_int(spec.command_timeout, 11,
	    "spec group over parameters: command_timeout from cfg");
	free(err);
	milter_spec_deinit(&spec);
}

static const struct reply_case {
	const char *name;
	const char *text;
	int	 verdict;	/* FILTER_*, or -1 */
	const char *reply;	/* NULL when -1 */
} reply_cases[] = {
	{ "reject with enhanced code", "550 5.7.1 Go away", FILTER_REJECT,
	    "550 5.7.1 Go away" },
	{ "tempfail with enhanced code", "450 4.2.0 Later", FILTER_TEMPFAIL,
	    "450 4.2.0 Later" },
	{ "421 disconnects", "421 4.7.0 Closing", FILTER_DISCONNECT,
	    "421 4.7.0 Closing" },
	{ "other detail kept", "554 5.7.26 DMARC policy", FILTER_REJECT,
	    "554 5.7.26 DMARC policy" },
	{ "no enhanced code: 5.7.1 added", "550 Go away", FILTER_REJECT,
	    "550 5.7.1 Go away" },
	{ "no enhanced code: 4.7.1 added", "451 Try later", FILTER_TEMPFAIL,
	    "451 4.7.1 Try later" },
	{ "enhanced code of the wrong class (4 in 5xx)",
	    "550 4.7.1 Wrong class", FILTER_REJECT, "550 5.7.1 Wrong class" },
	{ "enhanced code of the wrong class (5 in 4xx)",
	    "451 5.7.1 Wrong class", FILTER_TEMPFAIL,
	    "451 4.7.1 Wrong class" },
	{ "malformed enhanced code kept as text", "550 5.7.1234 x",
	    FILTER_REJECT, "550 5.7.1 5.7.1234 x" },
	{ "code alone", "550", FILTER_REJECT, "550 5.7.1" },
	{ "code and enhanced code alone", "550 5.7.0", FILTER_REJECT,
	    "550 5.7.0" },
	{ "multi-line: the last line", "550-5.7.1 first\r\n"
	    "550-5.7.1 second\r\n550 5.7.1 last", FILTER_REJECT,
	    "550 5.7.1 last" },
	{ "multi-line with a final CRLF", "550-5.7.1 first\r\n"
	    "550 5.7.1 last\r\n", FILTER_REJECT, "550 5.7.1 last" },
	{ "multi-line, LF only", "451-4.3.0 a\n451 4.3.0 b", FILTER_TEMPFAIL,
	    "451 4.3.0 b" },
	{ "single line with a final LF", "550 5.7.1 line\n", FILTER_REJECT,
	    "550 5.7.1 line" },
	{ "percent signs stay literal", "550 5.7.1 100% spam %s%n",
	    FILTER_REJECT, "550 5.7.1 100% spam %s%n" },
	{ "CRLF injection of a command: no usable code",
	    "550 5.7.1 bad\r\nRCPT TO:<victim@example.org>", -1, NULL },
	{ "CRLF injection of a second reply: only the last line",
	    "550 5.7.1 bad\r\n250 2.0.0 Ok", -1, NULL },
	{ "bare CR ends the text", "550 5.7.1 bad\rinjected", FILTER_REJECT,
	    "550 5.7.1 bad" },
	{ "control and 8-bit bytes become ?", "550 5.7.1 a\001b\177c\303\251",
	    FILTER_REJECT, "550 5.7.1 a?b?c??" },
	{ "2xx refused", "250 2.0.0 Ok", -1, NULL },
	{ "3xx refused", "354 go ahead", -1, NULL },
	{ "not a code", "abc", -1, NULL },
	{ "two digits", "55 x", -1, NULL },
	{ "four digits", "5500 x", -1, NULL },
	{ "empty", "", -1, NULL },
};

static void
test_replycode(void)
{
	const struct reply_case *c;
	char out[512], text[700];
	size_t i;
	int v;

	for (i = 0; i < sizeof(reply_cases) / sizeof(*reply_cases); i++) {
		c = &reply_cases[i];
		out[0] = '\0';
		v = milter_replycode(c->text, out, sizeof(out));
		is_int(v, c->verdict, "replycode %s: verdict", c->name);
		if (v != -1 && c->verdict != -1)
			is_str(out, c->reply, "replycode %s: reply", c->name);
	}

	/* a long text is cut, never overflows */
	memset(text, 'a', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	memcpy(text, "550 5.7.1 ", 10);
	v = milter_replycode(text, out, sizeof(out));
	is_int(v, FILTER_REJECT, "replycode long text: verdict");
	is_int(strlen(out), 10 + 399, "replycode long text: cut to 399");
	/* a small buffer truncates, still terminated */
	v = milter_replycode("550 5.7.1 Go away", out, 8);
	is_int(v, FILTER_REJECT, "replycode small buffer: verdict");
	is_str(out, "550 5.7", "replycode small buffer: truncated");
}

/* ---- peer_connect to a unix listener with a full queue ---- */

struct acceptor {
	int	 lfd;
	int	 delay_ms;
};

/* accept_later - after delay_ms, take one connection off the queue */
static void *
accept_later(void *arg)
{
	struct acceptor *a = arg;
	int fd;

	usleep((useconds_t)a->delay_ms * 1000);
	if ((fd = accept(a->lfd, NULL, NULL)) != -1)
		close(fd);
	return NULL;
}

static void
test_full_queue(void)
{
	static const struct queue_case {
		const char *name;
		int	 accept_after;	/* ms; -1: never */
		int	 deadline;	/* ms */
		bool	 connects;
		int	 min_ms, max_ms;	/* how long it may take */
	} cases[] = {
		{ "never accepted: timeout", -1, 300, false, 280, 1000 },
		{ "accepted after 150 ms: connects", 150, 2000, true, 100,
		    1500 },
	};
	const struct queue_case *c;
	struct sockaddr_un sun;
	struct peer_endpoint ep;
	struct acceptor acc;
	pthread_t th;
	char path[sizeof(sun.sun_path)];
	const char *err;
	int lfd, fds[64], nfds, fd, full;
	int64_t t0, took;
	size_t i;
	int j;

	for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		c = &cases[i];
		snprintf(path, sizeof(path), "/tmp/test_milter_filter.%d.%zu",
		    (int)getpid(), i);
		(void)unlink(path);
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
		lfd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (lfd == -1 || bind(lfd, (struct sockaddr *)&sun,
		    sizeof(sun)) == -1 || listen(lfd, 1) == -1) {
			ok(0, "queue %s: cannot listen on %s", c->name, path);
			continue;
		}
		/* fill the queue: connects until one says EAGAIN */
		full = 0;
		for (nfds = 0; nfds < 64 && !full; nfds++) {
			fds[nfds] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK,
			    0);
			if (connect(fds[nfds], (struct sockaddr *)&sun,
			    sizeof(sun)) == -1)
				full = 1;
		}
		ok(full, "queue %s: the listener's queue is full", c->name);
		if (c->accept_after >= 0) {
			acc.lfd = lfd;
			acc.delay_ms = c->accept_after;
			pthread_create(&th, NULL, accept_later, &acc);
		}
		memset(&ep, 0, sizeof(ep));
		ep.path = path;
		err = "";
		t0 = clock_ms();
		fd = peer_connect(&ep, peer_deadline(c->deadline), &err);
		took = clock_ms() - t0;
		is_int(fd != -1, c->connects, "queue %s: connected (%s)",
		    c->name, fd == -1 ? err : "ok");
		if (!c->connects)
			is_str(err, "timeout while connecting (listen queue "
			    "full)", "queue %s: error", c->name);
		ok(took >= c->min_ms && took <= c->max_ms,
		    "queue %s: took %lld ms, want %d..%d", c->name,
		    (long long)took, c->min_ms, c->max_ms);
		if (fd != -1) {
			/* really connected: the peer is known */
			struct sockaddr_un peer;
			socklen_t plen = sizeof(peer);

			ok(getpeername(fd, (struct sockaddr *)&peer,
			    &plen) == 0, "queue %s: has a peer", c->name);
			close(fd);
		}
		if (c->accept_after >= 0)
			pthread_join(th, NULL);
		for (j = 0; j < nfds; j++)
			close(fds[j]);
		close(lfd);
		(void)unlink(path);
	}
}

int
main(void)
{
	test_spec();
	test_replycode();
	test_full_queue();
	return done_testing();
}

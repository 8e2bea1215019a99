/*
 * spf_client.c - SPF checks for posternd's worker threads, done by a
 * pool of postern-spf helper processes (see spf_client.h for why).
 *
 * Owns the helper processes (started lazily, one request in flight per
 * helper), the parent's ends of their sockets, and the Received-SPF
 * formatting. Leaves the SPF evaluation itself to postern-spf and what a
 * result means for a message to the spf filter.
 *
 * A helper that dies, hangs past the deadline, or answers garbage is
 * killed (SIGKILL) and reaped at once, and started again on the next
 * check that picks its slot; that one check is answered temperror (RFC
 * 7208 2.6.6: the check could not be completed). Except once: a helper
 * that has answered before and is gone before answering this check
 * (killed or crashed between checks: its death may show only after our
 * request went out) is replaced and the check asked again of the new
 * one; a check is a pure question, and a request that kills helpers
 * costs one more. The helpers are
 * started with fork+execv from a threaded process, so the child calls
 * only async-signal-safe functions before execv.
 *
 * RFC 7208 9.1 (Received-SPF), 2.6 (results).
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "log.h"
#include "spf_client.h"
#include "spf_proto.h"
#include "xmalloc.h"

#define SPF_POOL_MAX_HELPERS	64

struct spf_helper {
	pid_t	 pid;		/* 0: not running */
	int	 fd;		/* owned: our end of its socket, or -1 */
	bool	 busy;		/* a check owns this slot */
	bool	 served;	/* it has answered a check */
};

struct spf_pool {
	char	*helper_path;	/* owned */
	char	*argv[8];	/* owned strings at [2], [4], [6] */
	unsigned max_helpers;
	int	 timeout_ms;
	struct spf_helper *helpers;	/* owned, max_helpers of them */
	pthread_mutex_t lock;	/* guards busy flags and seq */
	pthread_cond_t	 cond;	/* a slot became free */
	unsigned long seq;	/* request ids */
};

const char *
spf_result_name(enum spf_result r)
{
	switch (r) {
	case SPF_RES_NONE:
		return "none";
	case SPF_RES_NEUTRAL:
		return "neutral";
	case SPF_RES_PASS:
		return "pass";
	case SPF_RES_FAIL:
		return "fail";
	case SPF_RES_SOFTFAIL:
		return "softfail";
	case SPF_RES_TEMPERROR:
		return "temperror";
	case SPF_RES_PERMERROR:
		return "permerror";
	}
	return "permerror";
}

struct spf_pool *
spf_pool_new(const struct spf_pool_params *p, char **error_r)
{
	struct spf_pool *pool;

	if (p->helper_path == NULL || access(p->helper_path, X_OK) == -1) {
		*error_r = xasprintf("SPF helper %s: %s",
		    p->helper_path != NULL ? p->helper_path : "(none)",
		    strerror(p->helper_path != NULL ? errno : ENOENT));
		return NULL;
	}
	pool = xcalloc(1, sizeof(*pool));
	pool->helper_path = xstrdup(p->helper_path);
	pool->max_helpers = p->max_helpers == 0 ? 1 :
	    p->max_helpers > SPF_POOL_MAX_HELPERS ? SPF_POOL_MAX_HELPERS :
	    p->max_helpers;
	pool->timeout_ms = p->timeout_ms > 0 ? p->timeout_ms : 10000;
	pool->helpers = xcalloc(pool->max_helpers, sizeof(*pool->helpers));
	for (unsigned i = 0; i < pool->max_helpers; i++)
		pool->helpers[i].fd = -1;
	/* argv is built once: nothing may be allocated after fork() */
	pool->argv[0] = pool->helper_path;
	pool->argv[1] = "-r";
	pool->argv[2] = xstrdup(p->resolver != NULL && *p->resolver != '\0' ?
	    p->resolver : "-");
	pool->argv[3] = "-n";
	pool->argv[4] = xstrdup(p->receiver != NULL && *p->receiver != '\0' ?
	    p->receiver : "localhost");
	pool->argv[5] = "-t";
	pool->argv[6] = xasprintf("%d", pool->timeout_ms);
	pool->argv[7] = NULL;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->cond, NULL);
	return pool;
}

/* reap - wait for pid; ECHILD means someone else reaped it already */
static void
reap(pid_t pid)
{
	while (waitpid(pid, NULL, 0) == -1 && errno == EINTR)
		;
}

/* helper_stop - kill -9 a helper that failed, reap it, close its socket */
static void
helper_stop(struct spf_helper *h)
{
	if (h->fd != -1) {
		close(h->fd);
		h->fd = -1;
	}
	if (h->pid > 0) {
		(void)kill(h->pid, SIGKILL);
		reap(h->pid);
		h->pid = 0;
	}
}

/*
 * helper_start - fork+execv postern-spf on a socketpair (its fd 0 and
 * 1). Between fork and execv only async-signal-safe calls: the signal
 * mask and the dispositions posternd changed are reset so that SIGTERM
 * reaches the helper.
 */
static int
helper_start(struct spf_pool *pool, struct spf_helper *h,
    const char **error_r)
{
	struct sigaction sa;
	sigset_t all;
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		*error_r = "socketpair failed";
		return -1;
	}
	if ((pid = fork()) == -1) {
		close(sv[0]);
		close(sv[1]);
		*error_r = "fork failed";
		return -1;
	}
	if (pid == 0) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_DFL;
		(void)sigaction(SIGTERM, &sa, NULL);
		(void)sigaction(SIGINT, &sa, NULL);
		(void)sigaction(SIGHUP, &sa, NULL);
		(void)sigaction(SIGCHLD, &sa, NULL);
		sigemptyset(&all);
		(void)sigprocmask(SIG_SETMASK, &all, NULL);
		if (dup2(sv[1], STDIN_FILENO) == -1 ||
		    dup2(sv[1], STDOUT_FILENO) == -1)
			_exit(127);
		/* dup2 onto itself keeps FD_CLOEXEC: clear it explicitly */
		(void)fcntl(STDIN_FILENO, F_SETFD, 0);
		(void)fcntl(STDOUT_FILENO, F_SETFD, 0);
		execv(pool->argv[0], pool->argv);
		_exit(127);
	}
	close(sv[1]);
	h->pid = pid;
	h->fd = sv[0];
	h->served = false;
	return 0;
}

/* parse_answer - the helper's answer payload into a; -1 on garbage */
static int
parse_answer(const struct buf *b, unsigned long id, struct spf_answer *a)
{
	const char *f[SPF_PROTO_ANS_FIELDS];
	char idbuf[32];
	char *end;
	long r;

	if (spf_proto_split(b->data != NULL ? b->data : "", b->len, f,
	    SPF_PROTO_ANS_FIELDS) == -1)
		return -1;
	snprintf(idbuf, sizeof(idbuf), "%lu", id);
	if (strcmp(f[SPF_ANS_ID], idbuf) != 0)
		return -1;
	errno = 0;
	r = strtol(f[SPF_ANS_RESULT], &end, 10);
	if (f[SPF_ANS_RESULT][0] == '\0' || *end != '\0' || errno != 0 ||
	    r < SPF_RES_NONE || r > SPF_RES_PERMERROR)
		return -1;
	a->result = (enum spf_result)r;
	snprintf(a->domain, sizeof(a->domain), "%s", f[SPF_ANS_DOMAIN]);
	snprintf(a->explanation, sizeof(a->explanation), "%s",
	    f[SPF_ANS_EXPLANATION]);
	snprintf(a->comment, sizeof(a->comment), "%s", f[SPF_ANS_COMMENT]);
	return 0;
}

/*
 * died_idle - an idle helper's socket shows end of file or a hangup: it
 * died between checks (an idle helper never writes on its own)
 */
static bool
died_idle(int fd)
{
	struct pollfd p;

	p.fd = fd;
	p.events = POLLIN | POLLRDHUP;
	p.revents = 0;
	return poll(&p, 1, 0) == 1 &&
	    (p.revents & (POLLIN | POLLHUP | POLLRDHUP | POLLERR)) != 0;
}

/*
 * helper_ask - one request/answer with h, answered by deadline: 0, or
 * with *error_r -1 (the helper failed), -2 (the request cannot be sent;
 * the helper is fine), -3 (a helper that had served before was gone
 * before it answered)
 */
static int
helper_ask(struct spf_pool *pool, struct spf_helper *h, unsigned long id,
    int64_t deadline, const struct spf_query *q, struct spf_answer *a,
    const char **error_r)
{
	const char *f[SPF_PROTO_REQ_FIELDS];
	char idbuf[32], tbuf[32];
	struct buf b;
	int64_t budget;
	int rc = -1;

	/*
	 * The helper gets a little less time than we wait, so that a slow
	 * DNS answer comes back as its own temperror, with the reason,
	 * rather than as a killed helper.
	 */
	budget = deadline - clock_ms() - (pool->timeout_ms / 10 > 50 ?
	    pool->timeout_ms / 10 : 50);
	if (budget < 1)
		budget = 1;
	snprintf(idbuf, sizeof(idbuf), "%lu", id);
	snprintf(tbuf, sizeof(tbuf), "%lld", (long long)budget);
	f[SPF_REQ_ID] = idbuf;
	f[SPF_REQ_CLIENT_IP] = q->client_addr;
	f[SPF_REQ_HELO] = q->helo;
	f[SPF_REQ_SENDER] = q->sender;
	f[SPF_REQ_IDENTITY] = q->identity != NULL ? q->identity : "mailfrom";
	f[SPF_REQ_TIMEOUT] = tbuf;
	buf_init(&b, SPF_PROTO_MAX + 4);
	if (spf_proto_encode(&b, f, SPF_PROTO_REQ_FIELDS) == -1) {
		/* our input, not the helper's fault: keep the helper */
		*error_r = "request too long";
		rc = -2;
		goto out;
	}
	if (died_idle(h->fd)) {
		*error_r = "helper exited while idle";
		rc = -3;
		goto out;
	}
	if (spf_proto_write(h->fd, b.data, b.len, error_r) == -1) {
		/* it died while idle: nothing of this check is lost yet */
		rc = -3;
		goto out;
	}
	rc = spf_proto_read(h->fd, &b, deadline, error_r);
	if (rc == 0) {
		/*
		 * SIGKILL closes a helper's socket only when its last thread
		 * (libunbound's) is gone, so a death between checks can show
		 * here, after the write, as well as in died_idle
		 */
		*error_r = "helper exited before answering";
		rc = h->served ? -3 : -1;
	}
	if (rc < 0)
		goto out;
	if (parse_answer(&b, id, a) == -1) {
		*error_r = "garbled answer";
		rc = -1;
		goto out;
	}
	h->served = true;
	rc = 0;
out:
	buf_deinit(&b);
	return rc;
}

void
spf_pool_check(struct spf_pool *pool, const struct spf_query *q,
    struct spf_answer *a)
{
	struct spf_helper *h = NULL;
	const char *err = NULL;
	unsigned long id;
	int64_t deadline;
	unsigned i;
	int rc;

	memset(a, 0, sizeof(*a));
	pthread_mutex_lock(&pool->lock);
	for (;;) {
		/* a running idle helper first, then an empty slot */
		for (i = 0; i < pool->max_helpers; i++)
			if (!pool->helpers[i].busy &&
			    pool->helpers[i].pid > 0) {
				h = &pool->helpers[i];
				break;
			}
		for (i = 0; h == NULL && i < pool->max_helpers; i++)
			if (!pool->helpers[i].busy)
				h = &pool->helpers[i];
		if (h != NULL)
			break;
		pthread_cond_wait(&pool->cond, &pool->lock);
	}
	h->busy = true;
	id = ++pool->seq;
	pthread_mutex_unlock(&pool->lock);
	deadline = clock_ms() + pool->timeout_ms;

	if (h->pid == 0 && helper_start(pool, h, &err) == -1)
		rc = -1;
	else
		rc = helper_ask(pool, h, id, deadline, q, a, &err);
	if (rc == -3) {
		/* once more, with a new helper, within the same deadline */
		log_warnx("spf: helper %ld: %s, restarting it", (long)h->pid,
		    err);
		helper_stop(h);
		if (helper_start(pool, h, &err) == -1)
			rc = -1;
		else
			rc = helper_ask(pool, h, id, deadline, q, a, &err);
	}
	if (rc != 0) {
		memset(a, 0, sizeof(*a));
		a->result = SPF_RES_TEMPERROR;
		snprintf(a->comment, sizeof(a->comment),
		    "SPF check failed: %s", err != NULL ? err : "error");
		log_warnx("spf: helper %ld: %s, check answered temperror",
		    (long)h->pid, err != NULL ? err : "error");
		if (rc != -2)
			helper_stop(h);
	}

	pthread_mutex_lock(&pool->lock);
	h->busy = false;
	pthread_cond_signal(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
}

void
spf_pool_free(struct spf_pool **poolp)
{
	struct spf_pool *pool = *poolp;
	unsigned i;

	if (pool == NULL)
		return;
	*poolp = NULL;
	/*
	 * SIGKILL at once: a helper holds nothing worth a grace period, and
	 * this may run on an event loop (the last session of an old
	 * configuration), which must not sleep. Reaping a killed process
	 * takes the kernel microseconds.
	 */
	for (i = 0; i < pool->max_helpers; i++)
		helper_stop(&pool->helpers[i]);
	pthread_mutex_destroy(&pool->lock);
	pthread_cond_destroy(&pool->cond);
	free(pool->argv[2]);
	free(pool->argv[4]);
	free(pool->argv[6]);
	free(pool->helpers);
	free(pool->helper_path);
	free(pool);
}

/*
 * is_dot_atom - RFC 5322 3.2.3 dot-atom-text: a value that may stand
 * unquoted in a Received-SPF key=value pair (RFC 7208 9.1)
 */
static bool
is_dot_atom(const char *s)
{
	static const char specials[] = "!#$%&'*+-/=?^_`{|}~";
	bool prev_dot = true;

	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (*s == '.') {
			if (prev_dot)
				return false;
			prev_dot = true;
			continue;
		}
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || strchr(specials, *s) != NULL))
			return false;
		prev_dot = false;
	}
	return !prev_dot;
}

/*
 * add_pair - "key=value;" with value quoted unless it is a dot-atom,
 * after a fold when the line would pass 78 characters: a long HELO name
 * must not make the field longer than a header line may be
 */
static void
add_pair(struct buf *b, const char *key, const char *value)
{
	struct buf pair;
	const char *p, *nl;
	size_t line;

	buf_init(&pair, 0);
	buf_printf(&pair, "%s=", key);
	if (is_dot_atom(value))
		buf_printf(&pair, "%s;", value);
	else {
		buf_append(&pair, "\"", 1);
		for (p = value; *p != '\0'; p++) {
			/* quoted-string (RFC 5322 3.2.4): escape, no controls */
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				continue;
			if (*p == '"' || *p == '\\')
				buf_append(&pair, "\\", 1);
			buf_append(&pair, p, 1);
		}
		buf_append(&pair, "\";", 2);
	}
	nl = b->len > 0 ? memrchr(b->data, '\n', b->len) : NULL;
	line = nl != NULL ? b->len - (size_t)(nl + 1 - b->data) :
	    b->len + sizeof("Received-SPF: ") - 1;
	buf_append_str(b, line + 1 + pair.len > 78 ? "\r\n\t" : " ");
	buf_append(b, pair.data, pair.len);
	buf_deinit(&pair);
}

/* longest comment copied into Received-SPF (it goes on the first line) */
#define SPF_COMMENT_MAX	200

/* add_comment - "(text)" with parentheses and backslashes escaped */
static void
add_comment(struct buf *b, const char *text)
{
	const char *p;

	size_t n = 0;

	buf_append(b, " (", 2);
	for (p = text; *p != '\0' && n < SPF_COMMENT_MAX; p++, n++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			continue;
		if (*p == '(' || *p == ')' || *p == '\\')
			buf_append(b, "\\", 1);
		buf_append(b, p, 1);
	}
	buf_append(b, ")", 1);
}

char *
spf_received_value(const struct spf_query *q, const struct spf_answer *a,
    const char *receiver)
{
	struct buf b;
	const char *helo = q->helo != NULL ? q->helo : "";
	const char *sender = q->sender != NULL ? q->sender : "";
	char *from = NULL, *s;

	buf_init(&b, 0);
	buf_append_str(&b, spf_result_name(a->result));
	if (a->comment[0] != '\0')
		add_comment(&b, a->comment);
	add_pair(&b, "client-ip", q->client_addr != NULL ?
	    q->client_addr : "");
	/* RFC 7208 2.4: the null sender is checked as postmaster@helo */
	if (*sender == '\0' && *helo != '\0')
		from = xasprintf("postmaster@%s", helo);
	add_pair(&b, "envelope-from", from != NULL ? from : sender);
	if (*helo != '\0')
		add_pair(&b, "helo", helo);
	if (receiver != NULL && *receiver != '\0')
		add_pair(&b, "receiver", receiver);
	add_pair(&b, "identity", q->identity != NULL &&
	    strcmp(q->identity, "helo") == 0 ? "helo" : "mailfrom");
	/* no trailing ';' after the last pair (RFC 7208 9.1 example) */
	if (b.len > 0 && b.data[b.len - 1] == ';')
		b.len--;
	b.data[b.len] = '\0';
	free(from);
	s = buf_steal(&b);
	buf_deinit(&b);
	return s;
}

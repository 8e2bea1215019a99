/*
 * qmgr.c - the queue manager: takes spooled messages, groups their
 * recipients by destination, starts delivery jobs within per-destination
 * concurrency limits, records the outcome in the spool, retries deferred
 * mail with backoff, expires old mail and sends bounces.
 *
 * It owns the in-memory schedule (active messages, destinations, waiting
 * batches) and runs on its own thread and event loop, where the
 * transports also run. It does not talk SMTP (deliver_smtp.c), write
 * mailboxes (deliver_maildir.c), format DSNs (bounce.c) or know the file
 * format (spool.c); routing, grouping, backoff and expiry rules are pure
 * functions in qmgr_sched.c.
 *
 * Disk work never runs on the qmgr loop: loading a message (open + read
 * of the envelope), marking recipients done (pwrite + fdatasync), writing
 * a DSN, moving to deferred/ and unlinking all run on the worker pool,
 * with the result handed back to this loop. A message is touched by at
 * most one pool task at a time for its final step (finish_msg waits for
 * the marking tasks), so the spool_msg needs no lock.
 *
 * Durability: a recipient is marked done (and fdatasynced, unless the
 * file is removed right after) only after the transport reported it; a
 * crash in between delivers it again (at-least-once, DESIGN.md). A DSN is
 * committed before the recipients it reports are marked done, so a crash
 * can duplicate a bounce but not lose one. Nothing is ever deleted that
 * still has a pending recipient.
 *
 * Retry policy (Postfix's): a deferred message waits in deferred/ with
 * its mtime set to the next attempt, now + clamp(age, minimal_backoff_time,
 * maximal_backoff_time); a scan every queue_run_delay loads those that are
 * due. Past maximal_queue_lifetime (bounce_queue_lifetime for null-sender
 * mail) a deferral becomes a bounce (4.4.7, reported as 5.4.7).
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/queue.h>
#include <sys/time.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "bounce.h"
#include "buf.h"
#include "config/config.h"
#include "deliver_maildir.h"
#include "deliver_smtp.h"
#include "delivery.h"
#include "log.h"
#include "loop.h"
#include "pool.h"
#include "qmgr.h"
#include "qmgr_sched.h"
#include "spool.h"
#include "xmalloc.h"


/*
 * retry_due - a deferred file's mtime is its next retry time; one further
 * ahead than any backoff could put it (a clock that was wrong, a file
 * touched by hand) is due now rather than never
 */
static bool
retry_due(time_t retry_at, time_t now, int max_backoff)
{
	return retry_at <= now || retry_at > now + max_backoff;
}

#define ID_HASH_SIZE	4096
#define DEST_HASH_SIZE	1024
#define STOP_TIMEOUT	5	/* seconds qmgr_stop waits for deliveries */

enum qrcpt_state {
	QR_TODO,		/* waiting in a destination's batch */
	QR_RUNNING,		/* in a delivery job */
	QR_SENT,
	QR_BOUNCED,
	QR_DEFERRED,
	QR_DONE_BEFORE,		/* marked done in the file at load */
};

struct qrcpt {
	enum qrcpt_state state;
	char	 dsn[16];
	char	*reply;		/* owned; last outcome, or NULL */
	char	*relay;		/* owned; or NULL */
};

struct qmsg {
	TAILQ_ENTRY(qmsg) entry;	/* in q.msgs */
	struct spool_msg *sm;		/* owned */
	struct qrcpt *rcpts;		/* owned; sm->env.nrcpts entries */
	size_t	 nwaiting;		/* recipients in batches */
	size_t	 nrunning;		/* jobs in flight */
	int	 ninflight;		/* marking tasks on the pool */
	bool	 finish_pending;	/* finish once ninflight is 0 */
};

struct qentry {
	TAILQ_ENTRY(qentry) entry;	/* in dest->entries */
	struct qmsg *msg;		/* borrowed: outlives its entries */
	size_t	*idx;			/* owned; recipient indices */
	size_t	 n;
};

struct qdest {
	struct qdest *hnext;		/* hash chain */
	TAILQ_ENTRY(qdest) ready;	/* in q.ready when it has entries */
	bool	 in_ready;
	struct qmgr_route route;
	int	 active;		/* jobs running */
	TAILQ_HEAD(, qentry) entries;	/* owned */
};

struct qjob {
	struct delivery_job job;	/* what the transport sees */
	struct qmsg *msg;		/* borrowed */
	struct qdest *dest;		/* borrowed */
	struct config *config;		/* one reference */
};

struct qid {
	struct qid *next;		/* owned: hash chain or load FIFO */
	enum spool_state state;
	bool	 force;			/* load even if not due (flush) */
	char	 id[QUEUE_ID_MAX];
	/* load results, filled on the pool */
	struct spool_msg *sm;		/* owned until handed to a qmsg */
	int	 err_no;
	char	 err[320];
};

struct qmgr {
	struct loop *loop;		/* owned */
	struct config *config;		/* one reference */
	/*
	 * owned; queue_directory as at start (a change needs a restart).
	 * Pool tasks read this, never q.config, which a reload may free.
	 */
	char	*queue_dir;
	time_t	 start_time;
	TAILQ_HEAD(, qmsg) msgs;	/* owned */
	size_t	 nmsgs;			/* active + loading */
	struct qid *ids[ID_HASH_SIZE];	/* owned; active or queued IDs */
	struct qdest *dests[DEST_HASH_SIZE];	/* owned */
	TAILQ_HEAD(, qdest) ready;
	struct qid *loadq, **loadq_tail;	/* owned */
	struct event *scan_ev;		/* owned; periodic deferred scan */
	struct event *kick_ev;		/* owned; run dispatch soon */
	struct event *stop_ev;		/* owned; stop timeout */
	int	 njobs;			/* delivery jobs running */
	int	 npool;			/* pool tasks in flight */
	bool	 scan_running;
	bool	 stopping;
	bool	 aborted;	/* running deliveries were told to stop */
	bool	 stopped_clean;
};

static struct qmgr q;

static void	dispatch(void);
static void	finish_msg(struct qmsg *);
static void	log_rcpt(const struct qmsg *, size_t, const char *);
static void	maybe_exit(void);

/* ---- small helpers ---- */

static uint32_t
hash_str(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static double
now_double(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* id_known - is this queue ID active, loading or queued for loading? */
static bool
id_known(const char *id)
{
	const struct qid *e;

	for (e = q.ids[hash_str(id) % ID_HASH_SIZE]; e != NULL; e = e->next)
		if (strcmp(e->id, id) == 0)
			return true;
	return false;
}

static void
id_add(const char *id)
{
	struct qid *e = xcalloc(1, sizeof(*e));
	uint32_t h = hash_str(id) % ID_HASH_SIZE;

	snprintf(e->id, sizeof(e->id), "%s", id);
	e->next = q.ids[h];
	q.ids[h] = e;
}

static void
id_del(const char *id)
{
	struct qid **ep, *e;

	for (ep = &q.ids[hash_str(id) % ID_HASH_SIZE]; (e = *ep) != NULL;
	    ep = &e->next) {
		if (strcmp(e->id, id) == 0) {
			*ep = e->next;
			free(e);
			return;
		}
	}
}

static void
kick(void)
{
	if (!event_pending(q.kick_ev, EV_TIMEOUT, NULL))
		event_active(q.kick_ev, EV_TIMEOUT, 0);
}

/* ---- loading ---- */

static void	pump_loads(void);

/* load_work - on the pool: open and parse; a damaged file goes to corrupt/ */
static void
load_work(void *arg)
{
	struct qid *l = arg;
	const char *err = NULL, *err2 = NULL;

	l->sm = spool_msg_open(q.queue_dir, l->state, l->id,
	    &err);
	if (l->sm != NULL)
		return;
	l->err_no = errno;
	snprintf(l->err, sizeof(l->err), "%s", err);
	if (l->err_no == EBADMSG &&
	    spool_move_id(q.queue_dir, l->state, l->id,
	    SPOOL_CORRUPT, &err2) == -1)
		snprintf(l->err, sizeof(l->err), "%s; %s", err, err2);
}

/* route_msg - put each pending recipient of msg into a destination batch */
static void
route_msg(struct qmsg *m)
{
	const struct spool_envelope *env = &m->sm->env;
	struct qmgr_route *routes;
	const char **keys;
	size_t *todo, *order, ntodo = 0, nb, i, j;
	struct qmgr_batch *batches;

	routes = xcalloc(env->nrcpts, sizeof(*routes));
	keys = xcalloc(env->nrcpts, sizeof(*keys));
	todo = xcalloc(env->nrcpts, sizeof(*todo));
	order = xcalloc(env->nrcpts, sizeof(*order));
	batches = xcalloc(env->nrcpts, sizeof(*batches));
	for (i = 0; i < env->nrcpts; i++) {
		char domain[256];
		const char *why = NULL;
		bool local;

		if (m->rcpts[i].state != QR_TODO)
			continue;
		qmgr_rcpt_domain(env->rcpts[i].address, domain,
		    sizeof(domain));
		local = domain[0] != '\0' && q.config->mydestination != NULL &&
		    matchlist_match_domain(q.config->mydestination, domain);
		if (qmgr_route_rcpt(domain, local, &q.config->relayhost,
		    &routes[i], &why) == -1) {
			m->rcpts[i].state = QR_BOUNCED;
			snprintf(m->rcpts[i].dsn, sizeof(m->rcpts[i].dsn),
			    "5.1.3");
			m->rcpts[i].reply = xasprintf("5.1.3 %s", why);
			log_rcpt(m, i, "bounced");
			continue;
		}
		keys[ntodo] = routes[i].key;
		todo[ntodo++] = i;
	}
	nb = qmgr_group(keys, ntodo, QMGR_RCPTS_PER_JOB, order, batches);
	for (i = 0; i < nb; i++) {
		const struct qmgr_route *r =
		    &routes[todo[order[batches[i].first]]];
		uint32_t h = hash_str(r->key) % DEST_HASH_SIZE;
		struct qentry *e;
		struct qdest *d;

		for (d = q.dests[h]; d != NULL; d = d->hnext)
			if (strcmp(d->route.key, r->key) == 0)
				break;
		if (d == NULL) {
			d = xcalloc(1, sizeof(*d));
			d->route = *r;
			TAILQ_INIT(&d->entries);
			d->hnext = q.dests[h];
			q.dests[h] = d;
		}
		e = xcalloc(1, sizeof(*e));
		e->msg = m;
		e->n = batches[i].n;
		e->idx = xcalloc(e->n, sizeof(*e->idx));
		for (j = 0; j < e->n; j++)
			e->idx[j] = todo[order[batches[i].first + j]];
		m->nwaiting += e->n;
		TAILQ_INSERT_TAIL(&d->entries, e, entry);
		if (!d->in_ready) {
			TAILQ_INSERT_TAIL(&q.ready, d, ready);
			d->in_ready = true;
		}
	}
	free(routes);
	free(keys);
	free(todo);
	free(order);
	free(batches);
}

/* load_done - on the loop: the message enters the active queue */
static void
load_done(void *arg)
{
	struct qid *l = arg;
	struct qmsg *m;
	size_t i;

	q.npool--;
	if (l->sm == NULL) {
		if (l->err_no == EBADMSG)
			log_warnx("%s: corrupt queue file moved to %s/: %s",
			    l->id, spool_state_dir(SPOOL_CORRUPT), l->err);
		else if (l->err_no != ENOENT)
			log_warnx("%s: cannot open queue file: %s", l->id,
			    l->err);
		goto drop;
	}
	/*
	 * Loaded while stopping: leave it for the next start. Deferred and
	 * not yet due: it was rescheduled since the scan saw it.
	 */
	if (q.stopping || (l->state == SPOOL_DEFERRED && !l->force &&
	    !retry_due(l->sm->mtime, time(NULL),
	    q.config->maximal_backoff_time))) {
		spool_msg_free(&l->sm);
		goto drop;
	}
	m = xcalloc(1, sizeof(*m));
	m->sm = l->sm;
	m->rcpts = xcalloc(m->sm->env.nrcpts, sizeof(*m->rcpts));
	for (i = 0; i < m->sm->env.nrcpts; i++)
		m->rcpts[i].state = m->sm->env.rcpts[i].done ?
		    QR_DONE_BEFORE : QR_TODO;
	TAILQ_INSERT_TAIL(&q.msgs, m, entry);
	free(l);
	{
		char from[512];

		log_info("%s: from=<%s>, size=%zu, nrcpt=%zu",
		    m->sm->env.queue_id,
		    log_escape(from, sizeof(from), m->sm->env.sender),
		    m->sm->header_len + 2 + m->sm->body_len,
		    m->sm->env.nrcpts);
	}
	route_msg(m);
	if (m->nwaiting == 0)
		finish_msg(m);
	kick();
	return;

drop:
	id_del(l->id);
	q.nmsgs--;
	free(l);
	pump_loads();
	maybe_exit();
}

/* pump_loads - start loading queued IDs while under the active limit */
static void
pump_loads(void)
{
	struct qid *l;
	size_t limit = q.config->qmgr_message_active_limit > 0 ?
	    (size_t)q.config->qmgr_message_active_limit : 20000;

	while (!q.stopping && q.loadq != NULL && q.nmsgs < limit) {
		l = q.loadq;
		if ((q.loadq = l->next) == NULL)
			q.loadq_tail = &q.loadq;
		l->next = NULL;
		q.nmsgs++;
		q.npool++;
		pool_submit(q.loop, load_work, load_done, l);
	}
}

/* enqueue_load - remember a message to load, unless it is already known */
static void
enqueue_load(enum spool_state state, const char *id, bool force)
{
	struct qid *l;

	if (id_known(id))
		return;
	id_add(id);
	l = xcalloc(1, sizeof(*l));
	l->state = state;
	l->force = force;
	snprintf(l->id, sizeof(l->id), "%s", id);
	*q.loadq_tail = l;
	q.loadq_tail = &l->next;
	pump_loads();
}

/* ---- delivery ---- */

/* log_rcpt - the per-recipient result line of DESIGN.md */
static void
log_rcpt(const struct qmsg *m, size_t i, const char *status)
{
	const struct qrcpt *r = &m->rcpts[i];
	char to[512], reply[1024], relay[300];

	log_info("%s: to=<%s>, relay=%s, delay=%.2f, dsn=%s, status=%s (%s)",
	    m->sm->env.queue_id,
	    log_escape(to, sizeof(to), m->sm->env.rcpts[i].address),
	    log_escape(relay, sizeof(relay), r->relay ? r->relay : "none"),
	    now_double() - (double)m->sm->env.arrival,
	    r->dsn[0] != '\0' ? r->dsn : "4.0.0", status,
	    log_escape(reply, sizeof(reply), r->reply ? r->reply : ""));
}

struct mark_task {
	struct qmsg *msg;		/* borrowed */
	size_t	*idx;			/* owned */
	size_t	 n;
	char	 err[320];
	bool	 failed;
};

/* mark_work - on the pool: record finished recipients of a running message */
static void
mark_work(void *arg)
{
	struct mark_task *t = arg;
	const char *err = NULL;
	size_t i;

	for (i = 0; i < t->n; i++) {
		if (spool_mark_done_nosync(t->msg->sm, t->idx[i], &err) == -1)
			break;
	}
	if (i < t->n || spool_sync(t->msg->sm, &err) == -1) {
		t->failed = true;
		snprintf(t->err, sizeof(t->err), "%s", err);
	}
}

static void
mark_done(void *arg)
{
	struct mark_task *t = arg;
	struct qmsg *m = t->msg;

	q.npool--;
	if (t->failed)
		log_warnx("%s: cannot mark recipients done: %s",
		    m->sm->env.queue_id, t->err);
	m->ninflight--;
	if (m->finish_pending && m->ninflight == 0) {
		m->finish_pending = false;
		finish_msg(m);
	}
	free(t->idx);
	free(t);
	maybe_exit();
}

static void
free_dest_if_idle(struct qdest *d)
{
	struct qdest **dp;

	if (d->active > 0 || !TAILQ_EMPTY(&d->entries))
		return;
	if (d->in_ready) {
		TAILQ_REMOVE(&q.ready, d, ready);
		d->in_ready = false;
	}
	for (dp = &q.dests[hash_str(d->route.key) % DEST_HASH_SIZE];
	    *dp != NULL; dp = &(*dp)->hnext) {
		if (*dp == d) {
			*dp = d->hnext;
			break;
		}
	}
	free(d);
}

/* job_done - the transport's callback, on this loop */
static void
job_done(struct delivery_job *job)
{
	struct qjob *qj = job->done_arg;
	struct qmsg *m = qj->msg;
	struct mark_task *t;
	size_t i, nfinal = 0;

	q.njobs--;
	qj->dest->active--;
	m->nrunning--;
	t = xcalloc(1, sizeof(*t));
	t->msg = m;
	t->idx = xcalloc(job->nrcpts, sizeof(*t->idx));
	for (i = 0; i < job->nrcpts; i++) {
		struct delivery_rcpt *dr = &job->rcpts[i];
		struct qrcpt *r = &m->rcpts[dr->index];
		const char *status;

		free(r->reply);
		free(r->relay);
		r->reply = dr->reply;
		dr->reply = NULL;
		r->relay = job->relay != NULL ? xstrdup(job->relay) : NULL;
		snprintf(r->dsn, sizeof(r->dsn), "%s", dr->dsn);
		switch (dr->status) {
		case DELIVERY_SENT:
			r->state = QR_SENT;
			status = "sent";
			t->idx[nfinal++] = dr->index;
			break;
		case DELIVERY_BOUNCED:
			r->state = QR_BOUNCED;
			status = "bounced";
			break;
		case DELIVERY_DEFERRED:
			r->state = QR_DEFERRED;
			status = "deferred";
			break;
		default:
			/* a transport bug; never lose the recipient */
			log_warnx("%s: transport %s left <%s> pending",
			    m->sm->env.queue_id, job->transport, dr->address);
			r->state = QR_DEFERRED;
			snprintf(r->dsn, sizeof(r->dsn), "4.3.0");
			free(r->reply);
			r->reply = xstrdup("delivery status unknown");
			status = "deferred";
			break;
		}
		log_rcpt(m, dr->index, status);
	}
	free(job->rcpts);
	free(job->relay);
	config_unref(&qj->config);
	/*
	 * An idle destination is freed by dispatch (never here: a transport
	 * may call us from inside start_job, under dispatch's feet).
	 */
	if (!qj->dest->in_ready && qj->dest->active == 0) {
		TAILQ_INSERT_TAIL(&q.ready, qj->dest, ready);
		qj->dest->in_ready = true;
	}
	free(qj);

	if (m->nwaiting == 0 && m->nrunning == 0) {
		/* finish_msg marks everything; no separate task needed */
		free(t->idx);
		free(t);
		finish_msg(m);
	} else if (nfinal > 0) {
		/*
		 * Other recipients are still in flight: record the sent
		 * ones now so a crash does not deliver them twice. Bounced
		 * ones wait for the DSN (written in finish_msg).
		 */
		t->n = nfinal;
		m->ninflight++;
		q.npool++;
		pool_submit(q.loop, mark_work, mark_done, t);
	} else {
		free(t->idx);
		free(t);
	}
	kick();
	maybe_exit();
}

/* start_job - hand one batch to its transport */
static void
start_job(struct qdest *d, struct qentry *e)
{
	struct qmsg *m = e->msg;
	struct spool_msg *sm = m->sm;
	struct qjob *qj;
	struct delivery_job *job;
	size_t i;

	qj = xcalloc(1, sizeof(*qj));
	qj->msg = m;
	qj->dest = d;
	qj->config = q.config;
	config_ref(qj->config);
	job = &qj->job;
	job->config = qj->config;
	job->queue_id = sm->env.queue_id;
	job->sender = sm->env.sender;
	job->envid = sm->env.envid;
	job->ret = sm->env.ret;
	job->body_type = sm->env.body_type;
	job->smtputf8 = sm->env.smtputf8;
	job->content_fd = sm->fd;
	job->header_offset = sm->header_offset;
	job->header_len = sm->header_len;
	job->body_offset = sm->body_offset;
	job->body_len = sm->body_len;
	job->transport = d->route.transport;
	job->nexthop_host = d->route.host;
	job->nexthop_port = d->route.port;
	job->nexthop_use_mx = d->route.use_mx;
	job->nexthop_is_relayhost = d->route.is_relayhost;
	job->maildir_base = qj->config->maildir_base;
	job->rcpts = xcalloc(e->n, sizeof(*job->rcpts));
	job->nrcpts = e->n;
	for (i = 0; i < e->n; i++) {
		struct delivery_rcpt *dr = &job->rcpts[i];
		const struct spool_rcpt *sr = &sm->env.rcpts[e->idx[i]];

		dr->index = e->idx[i];
		dr->address = sr->address;
		dr->orcpt = sr->orcpt;
		dr->notify = sr->notify;
		dr->status = DELIVERY_PENDING;
		m->rcpts[e->idx[i]].state = QR_RUNNING;
	}
	job->done = job_done;
	job->done_arg = qj;
	m->nwaiting -= e->n;
	m->nrunning++;
	d->active++;
	q.njobs++;
	free(e->idx);
	free(e);
	if (strcmp(job->transport, "maildir") == 0)
		deliver_maildir_start(job, q.loop);
	else
		deliver_smtp_start(job, q.loop);
}

/*
 * dispatch - start jobs, one batch per destination in turn, so that a
 * destination with a long backlog does not starve the others.
 */
static void
dispatch(void)
{
	int limit = q.config->default_destination_concurrency_limit > 0 ?
	    q.config->default_destination_concurrency_limit : 1;
	struct qdest *d;
	struct qentry *e;
	bool progress = true;

	while (!q.stopping && progress) {
		progress = false;
		for (d = TAILQ_FIRST(&q.ready); d != NULL; ) {
			struct qdest *next = TAILQ_NEXT(d, ready);

			if (d->active < limit &&
			    (e = TAILQ_FIRST(&d->entries)) != NULL) {
				TAILQ_REMOVE(&d->entries, e, entry);
				start_job(d, e);
				progress = true;
			}
			if (TAILQ_EMPTY(&d->entries)) {
				TAILQ_REMOVE(&q.ready, d, ready);
				d->in_ready = false;
				free_dest_if_idle(d);
			}
			d = next;
		}
	}
}

static void
kick_cb(evutil_socket_t fd, short what, void *arg)
{
	dispatch();
}

/* ---- finishing a message ---- */

struct finish_task {
	struct qmsg *msg;		/* borrowed */
	size_t	*done_idx;		/* owned: recipients to mark done */
	size_t	 ndone;
	size_t	*bounce_idx;		/* owned: recipients in the DSN */
	size_t	 nbounce;
	bool	 want_dsn;
	bool	 keep;			/* some recipient still pending */
	time_t	 retry_at;
	time_t	 now;
	char	*myhostname;		/* owned */
	/* results */
	char	 dsn_id[QUEUE_ID_MAX];
	bool	 dsn_failed;
	bool	 removed;
	char	 err[320];
};

/* read_range - pread len bytes at off into a new buffer; NULL on error */
static char *
read_range(int fd, off_t off, size_t len)
{
	char *p = xmalloc(len + 1);
	size_t got = 0;
	ssize_t r;

	while (got < len) {
		r = pread(fd, p + got, len - got, off + (off_t)got);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0) {
			free(p);
			return NULL;
		}
		got += (size_t)r;
	}
	p[len] = '\0';
	return p;
}

/* write_dsn - on the pool: build and commit the bounce for t->msg */
static int
write_dsn(struct finish_task *t)
{
	struct qmsg *m = t->msg;
	struct spool_msg *sm = m->sm;
	struct bounce_input in;
	struct bounce_rcpt *br;
	struct spool_envelope env;
	struct spool_file *sf;
	struct buf h, b;
	char *hdrs = NULL, *body = NULL;
	const char *err = NULL;
	size_t i, total;
	int rc = -1;

	br = xcalloc(t->nbounce, sizeof(*br));
	for (i = 0; i < t->nbounce; i++) {
		size_t k = t->bounce_idx[i];

		br[i].address = sm->env.rcpts[k].address;
		br[i].orcpt = sm->env.rcpts[k].orcpt;
		br[i].notify = sm->env.rcpts[k].notify;
		br[i].dsn = m->rcpts[k].dsn;
		br[i].reply = m->rcpts[k].reply;
		br[i].relay = m->rcpts[k].relay;
	}
	total = sm->header_len + 2 + sm->body_len;
	hdrs = read_range(sm->fd, sm->header_offset, sm->header_len);
	if (total <= BOUNCE_SIZE_LIMIT)
		body = read_range(sm->fd, sm->body_offset, sm->body_len);
	if (hdrs == NULL) {
		snprintf(t->err, sizeof(t->err), "cannot read %s: %s",
		    sm->path, strerror(errno));
		free(br);
		free(body);
		return -1;
	}
	if ((sf = spool_create(q.queue_dir, &err)) == NULL) {
		snprintf(t->err, sizeof(t->err), "%s", err);
		free(br);
		free(hdrs);
		free(body);
		return -1;
	}
	memset(&in, 0, sizeof(in));
	in.myhostname = t->myhostname;
	in.queue_id = sm->env.queue_id;
	in.dsn_queue_id = spool_file_queue_id(sf);
	in.sender = sm->env.sender;
	in.envid = sm->env.envid;
	in.ret = sm->env.ret;
	in.eightbit = sm->env.body_type != NULL &&
	    strcmp(sm->env.body_type, "8BITMIME") == 0;
	in.arrival = sm->env.arrival;
	in.now = t->now;
	in.rcpts = br;
	in.nrcpts = t->nbounce;
	in.headers = hdrs;
	in.header_len = sm->header_len;
	in.body = body;
	in.body_len = body != NULL ? sm->body_len : 0;
	buf_init(&h, 0);
	buf_init(&b, 0);
	bounce_build(&in, &h, &b);

	/* RFC 3464 section 2: the DSN comes from the null sender */
	spool_envelope_init(&env);
	env.arrival = t->now;
	env.sender = xstrdup("");
	if (in.eightbit)
		env.body_type = xstrdup("8BITMIME");
	env.smtputf8 = sm->env.smtputf8;
	spool_envelope_add_rcpt(&env, sm->env.sender, NULL, 0);
	snprintf(t->dsn_id, sizeof(t->dsn_id), "%s", in.dsn_queue_id);
	if (spool_write_body(sf, b.data, b.len, &err) == -1) {
		snprintf(t->err, sizeof(t->err), "%s", err);
		spool_abort(&sf);
	} else if (spool_commit(&sf, &env, h.data, h.len, SPOOL_QUEUE,
	    &err) == -1)
		snprintf(t->err, sizeof(t->err), "%s", err);
	else
		rc = 0;
	if (rc == -1)
		t->dsn_id[0] = '\0';
	spool_envelope_deinit(&env);
	buf_deinit(&h);
	buf_deinit(&b);
	free(br);
	free(hdrs);
	free(body);
	return rc;
}

/* finish_work - on the pool: DSN, marks, then deferred/ or unlink */
static void
finish_work(void *arg)
{
	struct finish_task *t = arg;
	struct spool_msg *sm = t->msg->sm;
	const char *err = NULL;
	size_t i;

	if (t->want_dsn && write_dsn(t) == -1) {
		/* keep the bounced recipients pending: retried, not lost */
		t->dsn_failed = true;
		t->keep = true;
	}
	for (i = 0; i < t->ndone; i++) {
		size_t k = t->done_idx[i];

		if (t->dsn_failed && t->msg->rcpts[k].state == QR_BOUNCED)
			continue;
		if (spool_mark_done_nosync(sm, k, &err) == -1) {
			snprintf(t->err, sizeof(t->err), "%s", err);
			t->keep = true;
			break;
		}
	}
	if (!t->keep) {
		/*
		 * Nothing pending: no need to sync the marks, the unlink
		 * follows (a lost unlink reappears all-done and is removed
		 * at the next start).
		 */
		if (spool_remove(sm, &err) == -1)
			snprintf(t->err, sizeof(t->err), "%s", err);
		else
			t->removed = true;
		return;
	}
	if (spool_sync(sm, &err) == -1 ||
	    spool_move(sm, q.queue_dir, SPOOL_DEFERRED,
	    t->retry_at, &err) == -1)
		snprintf(t->err, sizeof(t->err), "%s", err);
}

static void
free_msg(struct qmsg *m)
{
	size_t i;

	for (i = 0; i < m->sm->env.nrcpts; i++) {
		free(m->rcpts[i].reply);
		free(m->rcpts[i].relay);
	}
	free(m->rcpts);
	spool_msg_free(&m->sm);
	free(m);
}

static void
finish_done(void *arg)
{
	struct finish_task *t = arg;
	struct qmsg *m = t->msg;
	const char *id = m->sm->env.queue_id;

	q.npool--;
	if (t->err[0] != '\0')
		log_warnx("%s: %s", id, t->err);
	if (t->dsn_id[0] != '\0')
		log_info("%s: sender non-delivery notification: %s", id,
		    t->dsn_id);
	if (t->removed)
		log_info("%s: removed", id);
	TAILQ_REMOVE(&q.msgs, m, entry);
	id_del(id);
	q.nmsgs--;
	/* schedule the DSN (enqueue_load skips it while stopping) */
	if (t->dsn_id[0] != '\0')
		enqueue_load(SPOOL_QUEUE, t->dsn_id, false);
	free_msg(m);
	free(t->done_idx);
	free(t->bounce_idx);
	free(t->myhostname);
	free(t);
	pump_loads();
	maybe_exit();
}

/*
 * finish_msg - every recipient has an outcome for this round: decide
 * expiry, whom to bounce, and whether the file stays, then do the disk
 * work on the pool.
 */
static void
finish_msg(struct qmsg *m)
{
	const struct spool_envelope *env = &m->sm->env;
	struct finish_task *t;
	time_t now = time(NULL);
	bool expired;
	size_t i;

	if (m->ninflight > 0) {
		m->finish_pending = true;
		return;
	}
	expired = qmgr_expired(env->arrival, now, env->sender[0] == '\0',
	    q.config->maximal_queue_lifetime,
	    q.config->bounce_queue_lifetime);
	t = xcalloc(1, sizeof(*t));
	t->msg = m;
	t->now = now;
	t->myhostname = xstrdup(q.config->myhostname != NULL ?
	    q.config->myhostname : "localhost");
	t->done_idx = xcalloc(env->nrcpts, sizeof(*t->done_idx));
	t->bounce_idx = xcalloc(env->nrcpts, sizeof(*t->bounce_idx));
	for (i = 0; i < env->nrcpts; i++) {
		struct qrcpt *r = &m->rcpts[i];

		if (r->state == QR_DEFERRED && expired && !q.stopping) {
			/* Postfix practice: 4.4.7 logged, 5.4.7 in the DSN */
			char *why = xasprintf("message expired%s%s",
			    r->reply ? ": " : "", r->reply ? r->reply : "");

			free(r->reply);
			r->reply = why;
			snprintf(r->dsn, sizeof(r->dsn), "4.4.7");
			r->state = QR_BOUNCED;
			log_rcpt(m, i, "expired");
		}
		switch (r->state) {
		case QR_SENT:
			t->done_idx[t->ndone++] = i;
			break;
		case QR_BOUNCED:
			t->done_idx[t->ndone++] = i;
			t->bounce_idx[t->nbounce++] = i;
			break;
		case QR_DONE_BEFORE:
			break;
		default:
			/* deferred, or never tried because we are stopping */
			t->keep = true;
			break;
		}
	}
	if (t->nbounce > 0) {
		struct bounce_rcpt *br = xcalloc(t->nbounce, sizeof(*br));

		for (i = 0; i < t->nbounce; i++)
			br[i].notify = env->rcpts[t->bounce_idx[i]].notify;
		t->want_dsn = bounce_needed(env->sender, br, t->nbounce);
		free(br);
	}
	t->retry_at = now + qmgr_backoff(env->arrival, now,
	    q.config->minimal_backoff_time, q.config->maximal_backoff_time);
	q.npool++;
	pool_submit(q.loop, finish_work, finish_done, t);
}

/* ---- scanning ---- */

struct scan_task {
	bool	 startup;	/* also clean incoming/ and read queue/ */
	bool	 force;		/* flush: every deferred message is due */
	time_t	 now;
	int	 max_backoff;	/* maximal_backoff_time */
	time_t	 start_time;
	char	*queue_dir;	/* owned */
	char	(*queue_ids)[QUEUE_ID_MAX];	/* owned */
	size_t	 nqueue, aqueue;
	char	(*deferred_ids)[QUEUE_ID_MAX];	/* owned */
	size_t	 ndeferred, adeferred;
	int	 removed_incoming;
};

struct scan_ctx {
	struct scan_task *t;
	enum spool_state state;
};

static void
scan_cb(const char *id, time_t mtime, void *arg)
{
	struct scan_ctx *c = arg;
	struct scan_task *t = c->t;
	char *path;

	switch (c->state) {
	case SPOOL_INCOMING:
		/* never acknowledged: the client did not get a 250 */
		if (mtime >= t->start_time)
			return;
		path = xasprintf("%s/%s/%s", t->queue_dir,
		    spool_state_dir(SPOOL_INCOMING), id);
		if (unlink(path) == 0)
			t->removed_incoming++;
		free(path);
		return;
	case SPOOL_QUEUE:
		if (t->nqueue == t->aqueue) {
			t->aqueue = t->aqueue ? t->aqueue * 2 : 64;
			t->queue_ids = xreallocarray(t->queue_ids, t->aqueue,
			    QUEUE_ID_MAX);
		}
		snprintf(t->queue_ids[t->nqueue++], QUEUE_ID_MAX, "%s", id);
		return;
	default:
		if (!t->force && !retry_due(mtime, t->now, t->max_backoff))
			return;
		if (t->ndeferred == t->adeferred) {
			t->adeferred = t->adeferred ? t->adeferred * 2 : 64;
			t->deferred_ids = xreallocarray(t->deferred_ids,
			    t->adeferred, QUEUE_ID_MAX);
		}
		snprintf(t->deferred_ids[t->ndeferred++], QUEUE_ID_MAX, "%s",
		    id);
		return;
	}
}

static int
cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void
scan_work(void *arg)
{
	struct scan_task *t = arg;
	struct scan_ctx c = { t, SPOOL_INCOMING };

	if (t->startup)
		spool_scan(t->queue_dir, SPOOL_INCOMING, scan_cb, &c);
	/*
	 * queue/ too, every time: a message whose move to deferred/ failed
	 * (ENOSPC, EIO) is still there and must not wait for a restart;
	 * enqueue_load skips the ones we already have.
	 */
	c.state = SPOOL_QUEUE;
	spool_scan(t->queue_dir, SPOOL_QUEUE, scan_cb, &c);
	/* oldest first: queue IDs sort by time */
	if (t->nqueue > 0)
		qsort(t->queue_ids, t->nqueue, QUEUE_ID_MAX, cmp_id);
	c.state = SPOOL_DEFERRED;
	spool_scan(t->queue_dir, SPOOL_DEFERRED, scan_cb, &c);
	if (t->ndeferred > 0)
		qsort(t->deferred_ids, t->ndeferred, QUEUE_ID_MAX, cmp_id);
}

static void
scan_done(void *arg)
{
	struct scan_task *t = arg;
	size_t i;

	q.npool--;
	q.scan_running = false;
	if (t->removed_incoming > 0)
		log_info("removed %d unfinished file(s) from %s/",
		    t->removed_incoming, spool_state_dir(SPOOL_INCOMING));
	for (i = 0; i < t->nqueue; i++)
		enqueue_load(SPOOL_QUEUE, t->queue_ids[i], false);
	for (i = 0; i < t->ndeferred; i++)
		enqueue_load(SPOOL_DEFERRED, t->deferred_ids[i], t->force);
	free(t->queue_ids);
	free(t->deferred_ids);
	free(t->queue_dir);
	free(t);
	maybe_exit();
}

static void
start_scan(bool startup, bool force)
{
	struct scan_task *t;

	if (q.stopping || (q.scan_running && !startup))
		return;
	t = xcalloc(1, sizeof(*t));
	t->startup = startup;
	t->force = force;
	t->now = time(NULL);
	t->max_backoff = q.config->maximal_backoff_time;
	t->start_time = q.start_time;
	t->queue_dir = xstrdup(q.queue_dir);
	q.scan_running = true;
	q.npool++;
	pool_submit(q.loop, scan_work, scan_done, t);
}

static void
arm_scan_timer(void)
{
	struct timeval tv = { q.config->queue_run_delay > 0 ?
	    q.config->queue_run_delay : 300, 0 };

	evtimer_add(q.scan_ev, &tv);
}

static void
scan_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	start_scan(false, false);
	if (!q.stopping)
		arm_scan_timer();
}

/* ---- the public interface and its loop-side halves ---- */

static void
startup_cb(void *arg)
{
	start_scan(true, false);
	arm_scan_timer();
}

static void
notify_cb(void *arg)
{
	char *id = arg;

	if (!q.stopping)
		enqueue_load(SPOOL_QUEUE, id, false);
	free(id);
}

static void
reload_cb(void *arg)
{
	struct config *c = arg;

	config_unref(&q.config);
	q.config = c;
	if (!q.stopping)
		arm_scan_timer();
	kick();
}

static void
flush_cb(void *arg)
{
	start_scan(false, true);
}

/* maybe_exit - when stopping and nothing runs any more, leave the loop */
static void
maybe_exit(void)
{
	if (q.stopping && q.njobs == 0 && q.npool == 0) {
		q.stopped_clean = true;
		event_base_loopbreak(loop_base(q.loop));
	}
}

static void
stop_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct timeval tv = { STOP_TIMEOUT, 0 };

	if (!q.aborted) {
		/* slow peers: defer what they still hold and wait for the
		 * transports to hand their jobs back */
		q.aborted = true;
		deliver_smtp_abort_all(q.loop);
		evtimer_add(q.stop_ev, &tv);
		return;
	}
	log_warnx("qmgr: %d deliveries and %d disk tasks still running at "
	    "stop; their messages stay queued", q.njobs, q.npool);
	event_base_loopbreak(loop_base(q.loop));
}

static void
stop_cb(void *arg)
{
	struct timeval tv = { 2, 0 };

	q.stopping = true;
	evtimer_del(q.scan_ev);
	evtimer_add(q.stop_ev, &tv);
	maybe_exit();
}

int
qmgr_start(struct config *config, const char **error_r)
{
	struct event_base *base;

	if (q.loop != NULL) {
		*error_r = "queue manager already running";
		return -1;
	}
	if (spool_init(config->queue_directory, error_r) == -1)
		return -1;
	memset(&q, 0, sizeof(q));
	config_ref(config);
	q.config = config;
	q.queue_dir = xstrdup(config->queue_directory);
	q.start_time = time(NULL);
	TAILQ_INIT(&q.msgs);
	TAILQ_INIT(&q.ready);
	q.loadq_tail = &q.loadq;
	q.loop = loop_new("qmgr");
	base = loop_base(q.loop);
	q.scan_ev = evtimer_new(base, scan_timer_cb, NULL);
	q.stop_ev = evtimer_new(base, stop_timeout_cb, NULL);
	q.kick_ev = event_new(base, -1, 0, kick_cb, NULL);
	if (q.scan_ev == NULL || q.stop_ev == NULL || q.kick_ev == NULL)
		fatalx("qmgr: cannot create events");
	loop_post(q.loop, startup_cb, NULL);
	if (loop_start(q.loop) == -1) {
		*error_r = "cannot start the queue manager thread";
		event_free(q.scan_ev);
		event_free(q.stop_ev);
		event_free(q.kick_ev);
		loop_free(&q.loop);
		config_unref(&q.config);
		free(q.queue_dir);
		q.queue_dir = NULL;
		return -1;
	}
	return 0;
}

void
qmgr_notify(const char *queue_id)
{
	if (q.loop == NULL) {
		/* not running: the start-up scan of queue/ will find it */
		return;
	}
	loop_post(q.loop, notify_cb, xstrdup(queue_id));
}

void
qmgr_reload(struct config *config)
{
	if (q.loop == NULL)
		return;
	config_ref(config);
	loop_post(q.loop, reload_cb, config);
}

void
qmgr_flush(void)
{
	if (q.loop != NULL)
		loop_post(q.loop, flush_cb, NULL);
}

void
qmgr_stop(void)
{
	struct qmsg *m;
	struct qid *l, *next;
	struct qdest *d, *dn;
	size_t i;

	if (q.loop == NULL)
		return;
	loop_post(q.loop, stop_cb, NULL);
	loop_join(q.loop);
	if (!q.stopped_clean) {
		/*
		 * Transports or pool tasks still hold pointers into our
		 * state: leak it rather than free under them. The process
		 * is exiting; every message is still in the spool.
		 */
		q.loop = NULL;
		return;
	}
	while ((m = TAILQ_FIRST(&q.msgs)) != NULL) {
		TAILQ_REMOVE(&q.msgs, m, entry);
		free_msg(m);
	}
	for (i = 0; i < DEST_HASH_SIZE; i++) {
		for (d = q.dests[i]; d != NULL; d = dn) {
			struct qentry *e;

			dn = d->hnext;
			while ((e = TAILQ_FIRST(&d->entries)) != NULL) {
				TAILQ_REMOVE(&d->entries, e, entry);
				free(e->idx);
				free(e);
			}
			free(d);
		}
	}
	for (l = q.loadq; l != NULL; l = next) {
		next = l->next;
		free(l);
	}
	for (i = 0; i < ID_HASH_SIZE; i++) {
		for (l = q.ids[i]; l != NULL; l = next) {
			next = l->next;
			free(l);
		}
	}
	event_free(q.scan_ev);
	event_free(q.stop_ev);
	event_free(q.kick_ev);
	loop_free(&q.loop);
	config_unref(&q.config);
	free(q.queue_dir);
	memset(&q, 0, sizeof(q));
}

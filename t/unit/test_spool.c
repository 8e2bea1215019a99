/*
 * test_spool.c - unit tests of daemon/spool.c: round trip of a committed
 * file, escaping of hostile strings, status bytes persisted in place,
 * state moves, rejection of damaged files, queue ID uniqueness and order.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "spool.h"
#include "tap.h"
#include "xmalloc.h"

static char qdir[256];

static void
rm_rf(const char *dir)
{
	char *cmd = xasprintf("rm -rf '%s'", dir);

	if (system(cmd) != 0)
		printf("# cleanup of %s failed\n", dir);
	free(cmd);
}

/* commit_msg - write a message with the given sender/rcpts; returns its ID */
static char *
commit_msg(const struct spool_envelope *env, const char *hdr,
    const char *body, enum spool_state target)
{
	struct spool_file *sf;
	const char *err = NULL;
	char *id;

	if ((sf = spool_create(qdir, &err)) == NULL) {
		printf("# spool_create: %s\n", err);
		return NULL;
	}
	id = xstrdup(spool_file_queue_id(sf));
	if (spool_write_body(sf, body, strlen(body), &err) == -1 ||
	    spool_commit(&sf, env, hdr, strlen(hdr), target, &err) == -1) {
		printf("# commit: %s\n", err);
		free(id);
		return NULL;
	}
	return id;
}

static void
fill_env(struct spool_envelope *env, const char *sender)
{
	spool_envelope_init(env);
	env->arrival = 1700000000;
	env->sender = xstrdup(sender);
}

/* read_range - the bytes of the content at off/len as a string */
static char *
read_range(int fd, off_t off, size_t len)
{
	char *p = xcalloc(1, len + 1);

	if (pread(fd, p, len, off) != (ssize_t)len)
		p[0] = '\0';
	return p;
}

static void
test_round_trip(void)
{
	static const struct {
		const char *name;
		const char *sender;
		const char *rcpt;
		const char *orcpt;
		const char *helo;
	} cases[] = {
		{ "plain", "alice@example.org", "bob@example.net",
		    "rfc822;bob@example.net", "client.example" },
		{ "null sender", "", "bob@example.net", NULL, "x" },
		{ "CRLF in strings", "a\r\nR bad@evil", "b\r\nRP x",
		    "rfc822;\r\n.\r\n", "helo\r\nS forged" },
		{ "spaces, plus, equals", "a b+c=d@x", "r =x+y@z",
		    "rfc822;a+2Bb", "h e l o" },
		{ "8-bit and controls", "\xc3\xa9@x", "\x01\x7f@y", NULL,
		    "\t\x1b" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct spool_envelope env;
		struct spool_msg *m;
		const char *err = NULL;
		char *id, *h, *b;

		fill_env(&env, cases[i].sender);
		env.envid = xstrdup("ENV+ID");
		env.ret = xstrdup("HDRS");
		env.body_type = xstrdup("8BITMIME");
		env.smtputf8 = true;
		env.client_addr = xstrdup("192.0.2.1");
		env.client_name = xstrdup("unknown");
		env.helo = xstrdup(cases[i].helo);
		spool_envelope_add_rcpt(&env, cases[i].rcpt, cases[i].orcpt,
		    DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY);
		spool_envelope_add_rcpt(&env, "second@example.net", NULL, 0);
		id = commit_msg(&env, "Subject: x\r\nFrom: a\r\n",
		    "line1\r\nline2\r\n", SPOOL_QUEUE);
		ok(id != NULL, "%s: committed", cases[i].name);
		if (id == NULL) {
			spool_envelope_deinit(&env);
			continue;
		}
		m = spool_msg_open(qdir, SPOOL_QUEUE, id, &err);
		ok(m != NULL, "%s: opened", cases[i].name);
		if (m == NULL) {
			printf("#   error: %s\n", err);
			spool_envelope_deinit(&env);
			free(id);
			continue;
		}
		is_str(m->env.queue_id, id, "%s: queue id", cases[i].name);
		is_str(m->env.sender, cases[i].sender, "%s: sender",
		    cases[i].name);
		is_str(m->env.helo, cases[i].helo, "%s: helo", cases[i].name);
		is_int(m->env.nrcpts, 2, "%s: nrcpts", cases[i].name);
		if (m->env.nrcpts == 2) {
			is_str(m->env.rcpts[0].address, cases[i].rcpt,
			    "%s: rcpt", cases[i].name);
			is_str(m->env.rcpts[0].orcpt, cases[i].orcpt,
			    "%s: orcpt", cases[i].name);
			is_int(m->env.rcpts[0].notify,
			    DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY,
			    "%s: notify", cases[i].name);
			is_str(m->env.rcpts[1].orcpt, NULL, "%s: no orcpt",
			    cases[i].name);
			ok(!m->env.rcpts[0].done && !m->env.rcpts[1].done,
			    "%s: pending", cases[i].name);
		}
		is_str(m->env.envid, "ENV+ID", "%s: envid", cases[i].name);
		is_str(m->env.ret, "HDRS", "%s: ret", cases[i].name);
		is_str(m->env.body_type, "8BITMIME", "%s: body type",
		    cases[i].name);
		ok(m->env.smtputf8, "%s: smtputf8", cases[i].name);
		is_str(m->env.sasl_username, NULL, "%s: no sasl",
		    cases[i].name);
		is_int(m->env.arrival, 1700000000, "%s: arrival",
		    cases[i].name);
		h = read_range(m->fd, m->header_offset, m->header_len);
		b = read_range(m->fd, m->body_offset, m->body_len);
		is_str(h, "Subject: x\r\nFrom: a\r\n", "%s: headers",
		    cases[i].name);
		is_str(b, "line1\r\nline2\r\n", "%s: body", cases[i].name);
		free(h);
		free(b);
		spool_msg_free(&m);
		spool_envelope_deinit(&env);
		free(id);
	}
}

static void
test_mark_move(void)
{
	struct spool_envelope env;
	struct spool_msg *m;
	const char *err = NULL;
	char *id, *path;
	struct stat st;
	time_t retry;

	fill_env(&env, "s@x");
	spool_envelope_add_rcpt(&env, "a@x", NULL, 0);
	spool_envelope_add_rcpt(&env, "b@x", NULL, 0);
	spool_envelope_add_rcpt(&env, "c@x", NULL, 0);
	id = commit_msg(&env, "H: v\r\n", "body\r\n", SPOOL_HOLD);
	spool_envelope_deinit(&env);
	ok(id != NULL, "hold: committed");
	if (id == NULL)
		return;
	m = spool_msg_open(qdir, SPOOL_QUEUE, id, &err);
	ok(m == NULL && errno == ENOENT, "hold: not in queue/");
	m = spool_msg_open(qdir, SPOOL_HOLD, id, &err);
	ok(m != NULL, "hold: in hold/");
	if (m == NULL)
		goto out;
	is_int(spool_mark_done(m, 1, &err), 0, "mark_done 1");
	is_int(spool_mark_done_nosync(m, 2, &err), 0, "mark_done_nosync 2");
	is_int(spool_sync(m, &err), 0, "sync");
	retry = time(NULL) + 3600;
	is_int(spool_move(m, qdir, SPOOL_DEFERRED, retry, &err), 0,
	    "move to deferred");
	spool_msg_free(&m);
	m = spool_msg_open(qdir, SPOOL_DEFERRED, id, &err);
	ok(m != NULL, "reopen from deferred/");
	if (m == NULL)
		goto out;
	ok(!m->env.rcpts[0].done, "rcpt 0 still pending");
	ok(m->env.rcpts[1].done, "rcpt 1 done after reopen");
	ok(m->env.rcpts[2].done, "rcpt 2 done after reopen");
	is_int(m->mtime, retry, "mtime is the retry time");
	is_int(spool_move(m, qdir, SPOOL_QUEUE, 0, &err), 0, "move to queue");
	path = xasprintf("%s/queue/%s", qdir, id);
	ok(stat(path, &st) == 0, "file is in queue/");
	is_int(spool_remove(m, &err), 0, "remove");
	ok(stat(path, &st) == -1 && errno == ENOENT, "file is gone");
	free(path);
	spool_msg_free(&m);
out:
	free(id);
}

static void
count_cb(const char *id, time_t mtime, void *arg)
{
	(void)id;
	(void)mtime;
	(*(int *)arg)++;
}

static void
test_abort_scan(void)
{
	struct spool_file *sf;
	const char *err = NULL;
	char *path;
	struct stat st;
	int n = 0;

	sf = spool_create(qdir, &err);
	ok(sf != NULL, "create for abort");
	if (sf == NULL)
		return;
	path = xasprintf("%s/incoming/%s", qdir, spool_file_queue_id(sf));
	ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600,
	    "incoming file exists with mode 0600");
	is_int(spool_scan(qdir, SPOOL_INCOMING, count_cb, &n), 1,
	    "scan incoming finds it");
	spool_abort(&sf);
	ok(sf == NULL && stat(path, &st) == -1, "abort removes it");
	free(path);
}

/* ---- corrupt files ---- */

struct corrupt_case {
	const char *name;
	int	 (*damage)(const char *path, size_t size);
};

static int
trunc_by(const char *path, size_t size, size_t n)
{
	return truncate(path, (off_t)(size - n));
}

static int
d_trunc1(const char *p, size_t s)
{
	return trunc_by(p, s, 1);
}

static int
d_trunc_half(const char *p, size_t s)
{
	return trunc_by(p, s, s / 2);
}

static int
d_empty(const char *p, size_t s)
{
	(void)s;
	return truncate(p, 0);
}

static int
poke(const char *path, off_t off, const char *bytes)
{
	int fd = open(path, O_WRONLY);
	ssize_t w;

	if (fd == -1)
		return -1;
	w = pwrite(fd, bytes, strlen(bytes), off);
	close(fd);
	return w == (ssize_t)strlen(bytes) ? 0 : -1;
}

static int
append(const char *path, const char *bytes)
{
	int fd = open(path, O_WRONLY | O_APPEND);
	ssize_t w;

	if (fd == -1)
		return -1;
	w = write(fd, bytes, strlen(bytes));
	close(fd);
	return w == (ssize_t)strlen(bytes) ? 0 : -1;
}

/* the trailer is the last 73 bytes: "POSTERN-SPOOL 1 B=... H=... E=...\n" */
static int
d_magic(const char *p, size_t s)
{
	return poke(p, (off_t)s - 73, "X");
}

static int
d_version(const char *p, size_t s)
{
	return poke(p, (off_t)s - 73 + 14, "2");
}

static int
d_body_len_huge(const char *p, size_t s)
{
	return poke(p, (off_t)s - 73 + 18, "f");
}

static int
d_env_len_bad(const char *p, size_t s)
{
	return poke(p, (off_t)s - 2, "0");
}

static int
d_hex_upper(const char *p, size_t s)
{
	return poke(p, (off_t)s - 73 + 18, "G");
}

static int
d_appended(const char *p, size_t s)
{
	(void)s;
	return append(p, "junk");
}

/* envelope damage: find a string in the file and overwrite it */
static int
replace_in_file(const char *path, const char *from, const char *to)
{
	char buf[4096];
	ssize_t n;
	char *hit;
	int fd;

	if ((fd = open(path, O_RDONLY)) == -1)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if ((hit = strstr(buf, from)) == NULL)
		return -1;
	return poke(path, hit - buf, to);
}

static int
d_status(const char *p, size_t s)
{
	(void)s;
	return replace_in_file(p, "\nRP notify", "\nRX notify");
}

static int
d_unknown_record(const char *p, size_t s)
{
	(void)s;
	return replace_in_file(p, "\nH ", "\nZ ");
}

static int
d_bad_escape(const char *p, size_t s)
{
	(void)s;
	return replace_in_file(p, "\nH hel", "\nH +zl");
}

static int
d_raw_space(const char *p, size_t s)
{
	(void)s;
	return replace_in_file(p, "\nH hel", "\nH h l");
}

static int
d_nul_escape(const char *p, size_t s)
{
	(void)s;
	return replace_in_file(p, "\nH hel", "\nH +00");
}

static int
d_wrong_id(const char *p, size_t s)
{
	(void)s;
	return replace_in_file(p, "\nI ", "\nI!");
}

static int
d_end_record(const char *p, size_t s)
{
	(void)s;
	return replace_in_file(p, "\n.\n", "\n,\n");
}

static int
d_bad_time(const char *p, size_t s)
{
	(void)s;
	return replace_in_file(p, "\nT 17", "\nT x7");
}

static int
d_bad_notify(const char *p, size_t s)
{
	(void)s;
	return replace_in_file(p, "notify=4", "notify=Z");
}

static int
d_ret_value(const char *p, size_t s)
{
	(void)s;
	return replace_in_file(p, "\nN FULL", "\nN FOOL");
}

static void
test_corrupt(void)
{
	static const struct corrupt_case cases[] = {
		{ "truncated by one byte", d_trunc1 },
		{ "truncated by half", d_trunc_half },
		{ "empty file", d_empty },
		{ "bad magic", d_magic },
		{ "bad version", d_version },
		{ "body length past EOF", d_body_len_huge },
		{ "envelope length wrong", d_env_len_bad },
		{ "non-hex in trailer", d_hex_upper },
		{ "bytes after the trailer", d_appended },
		{ "bad status byte", d_status },
		{ "unknown record", d_unknown_record },
		{ "bad escape", d_bad_escape },
		{ "raw space in value", d_raw_space },
		{ "escaped NUL", d_nul_escape },
		{ "queue ID mismatch", d_wrong_id },
		{ "missing end record", d_end_record },
		{ "bad arrival time", d_bad_time },
		{ "bad notify", d_bad_notify },
		{ "bad RET value", d_ret_value },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct spool_envelope env;
		struct spool_msg *m;
		const char *err = NULL;
		struct stat st;
		char *id, *path;
		int rc;

		fill_env(&env, "s@x");
		env.helo = xstrdup("helo.example");
		env.ret = xstrdup("FULL");
		spool_envelope_add_rcpt(&env, "a@x", NULL, DSN_NOTIFY_FAILURE);
		id = commit_msg(&env, "H: v\r\n", "body\r\n", SPOOL_QUEUE);
		spool_envelope_deinit(&env);
		if (id == NULL) {
			ok(0, "%s: commit", cases[i].name);
			continue;
		}
		path = xasprintf("%s/queue/%s", qdir, id);
		/* the undamaged file must open, or the case proves nothing */
		m = spool_msg_open(qdir, SPOOL_QUEUE, id, &err);
		ok(m != NULL, "%s: intact file opens", cases[i].name);
		spool_msg_free(&m);
		rc = stat(path, &st) == 0 ?
		    cases[i].damage(path, (size_t)st.st_size) : -1;
		ok(rc == 0, "%s: damage applied", cases[i].name);
		errno = 0;
		m = spool_msg_open(qdir, SPOOL_QUEUE, id, &err);
		ok(m == NULL && errno == EBADMSG,
		    "%s: rejected as corrupt", cases[i].name);
		if (m != NULL || errno != EBADMSG)
			printf("#   got %s (errno %d), want EBADMSG\n",
			    m ? "a message" : err, errno);
		else
			printf("#   %s\n", err);
		spool_msg_free(&m);
		ok(spool_move_id(qdir, SPOOL_QUEUE, id, SPOOL_CORRUPT,
		    &err) == 0, "%s: moved to corrupt/", cases[i].name);
		free(path);
		free(id);
	}
}

/* ---- queue IDs ---- */

#define ID_THREADS	4
#define ID_PER_THREAD	10000

static char ids[ID_THREADS * ID_PER_THREAD][QUEUE_ID_MAX];

static void *
id_thread(void *arg)
{
	size_t t = (size_t)arg, i;

	for (i = 0; i < ID_PER_THREAD; i++)
		spool_new_queue_id(ids[t * ID_PER_THREAD + i]);
	return NULL;
}

static int
cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void
test_queue_ids(void)
{
	pthread_t th[ID_THREADS];
	char a[QUEUE_ID_MAX], b[QUEUE_ID_MAX];
	size_t i, dups = 0, bad = 0, unsorted = 0;

	for (i = 0; i < ID_THREADS; i++)
		pthread_create(&th[i], NULL, id_thread, (void *)i);
	for (i = 0; i < ID_THREADS; i++)
		pthread_join(th[i], NULL);
	/* within each thread, IDs come out in increasing order */
	for (i = 1; i < ID_THREADS * ID_PER_THREAD; i++) {
		if (i % ID_PER_THREAD != 0 && strcmp(ids[i - 1], ids[i]) >= 0)
			unsorted++;
	}
	is_int(unsorted, 0, "IDs increase within a thread");
	qsort(ids, ID_THREADS * ID_PER_THREAD, QUEUE_ID_MAX, cmp_id);
	for (i = 0; i < ID_THREADS * ID_PER_THREAD; i++) {
		if (i > 0 && strcmp(ids[i - 1], ids[i]) == 0)
			dups++;
		if (strlen(ids[i]) < 10 || strchr(ids[i], '/') != NULL)
			bad++;
	}
	is_int(dups, 0, "40000 IDs from 4 threads are unique");
	is_int(bad, 0, "IDs have a sane length and no '/'");
	/* sorted by time: an ID taken later sorts after */
	spool_new_queue_id(a);
	usleep(2000);
	spool_new_queue_id(b);
	ok(strcmp(a, b) < 0, "later ID sorts after (%s < %s)", a, b);
	ok(strcmp(ids[ID_THREADS * ID_PER_THREAD - 1], a) < 0,
	    "IDs of the threads sort before a later one");
}

static void
test_write_big(void)
{
	struct spool_envelope env;
	struct spool_file *sf;
	struct spool_msg *m;
	const char *err = NULL;
	static char chunk[100000];
	char *id, *tail;
	size_t i;
	int good = 1;

	memset(chunk, 'x', sizeof(chunk));
	fill_env(&env, "s@x");
	spool_envelope_add_rcpt(&env, "a@x", NULL, 0);
	sf = spool_create(qdir, &err);
	if (sf == NULL) {
		ok(0, "big: create");
		spool_envelope_deinit(&env);
		return;
	}
	id = xstrdup(spool_file_queue_id(sf));
	for (i = 0; i < 30; i++)
		good &= spool_write_body(sf, chunk, 1000 + i * 3000, &err)
		    == 0;
	good &= spool_write_body(sf, "END", 3, &err) == 0;
	ok(good, "big: body written in uneven chunks");
	is_int(spool_body_size(sf), 30 * 1000 + 3000 * 435 + 3,
	    "big: body size");
	is_int(spool_commit(&sf, &env, "A: b\r\n", 6, SPOOL_QUEUE, &err), 0,
	    "big: commit");
	m = spool_msg_open(qdir, SPOOL_QUEUE, id, &err);
	ok(m != NULL, "big: open");
	if (m != NULL) {
		is_int(m->body_len, 30 * 1000 + 3000 * 435 + 3,
		    "big: body_len");
		tail = read_range(m->fd, m->body_offset + (off_t)m->body_len
		    - 3, 3);
		is_str(tail, "END", "big: body ends where it should");
		free(tail);
		spool_msg_free(&m);
	}
	spool_envelope_deinit(&env);
	free(id);
}

int
main(void)
{
	const char *err = NULL;

	snprintf(qdir, sizeof(qdir), "/tmp/test_spool.%d", (int)getpid());
	ok(spool_init(qdir, &err) == 0, "spool_init");
	ok(spool_init(qdir, &err) == 0, "spool_init twice is fine");
	test_round_trip();
	test_mark_move();
	test_abort_scan();
	test_corrupt();
	test_write_big();
	test_queue_ids();
	rm_rf(qdir);
	return done_testing();
}

/*
 * spool.h - the on-disk queue: one file per message, named by queue ID.
 *
 * Directories under queue_directory: incoming/ (being received), queue/
 * (active), deferred/ (waiting for a retry), hold/ (held by a filter or
 * the administrator), corrupt/ (unparseable; kept, never deleted
 * silently). The states are renames of the same file.
 *
 * File layout (doc/spool.md): the body is streamed to the file as it
 * arrives; at end of message the header block, the envelope records and a
 * fixed trailer are appended. Header edits therefore never rewrite the
 * body. The envelope holds one status byte per recipient that the queue
 * manager overwrites in place (pwrite + fdatasync) when the recipient is
 * done, so a crash never delivers a finished recipient again... except in
 * the window between the remote 250 and that write (at-least-once).
 *
 * The header block is the header fields exactly as they are to be sent
 * (CRLF line ends, no dot-stuffing) without the blank separator line; the
 * body is what follows that line (CRLF, no dot-stuffing).
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_SPOOL_H
#define POSTERN_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#define QUEUE_ID_MAX	24

enum spool_state {
	SPOOL_INCOMING,
	SPOOL_QUEUE,
	SPOOL_DEFERRED,
	SPOOL_HOLD,
	SPOOL_CORRUPT,
};

/* DSN NOTIFY bits (RFC 3461 4.1); 0 means "not given" (default behaviour) */
#define DSN_NOTIFY_NEVER	0x01
#define DSN_NOTIFY_SUCCESS	0x02
#define DSN_NOTIFY_FAILURE	0x04
#define DSN_NOTIFY_DELAY	0x08

struct spool_rcpt {
	char	*address;	/* owned */
	char	*orcpt;		/* owned; "rfc822;addr" as given, or NULL */
	unsigned notify;	/* DSN_NOTIFY_* */
	bool	 done;		/* delivered or bounced */
	off_t	 status_offset;	/* reader: where the status byte lives */
};

struct spool_envelope {
	char	 queue_id[QUEUE_ID_MAX];
	time_t	 arrival;
	char	*sender;	/* owned; "" is the null sender */
	char	*envid;		/* owned; DSN ENVID (xtext-decoded) or NULL */
	char	*ret;		/* owned; "FULL", "HDRS" or NULL */
	char	*body_type;	/* owned; "7BIT", "8BITMIME" or NULL */
	bool	 smtputf8;
	char	*client_addr;	/* owned; for logs and bounces */
	char	*client_name;	/* owned */
	char	*helo;		/* owned */
	char	*sasl_username;	/* owned or NULL */
	struct spool_rcpt *rcpts;	/* owned array */
	size_t	 nrcpts;
};

void	spool_envelope_init(struct spool_envelope *);
void	spool_envelope_deinit(struct spool_envelope *);
/* spool_envelope_add_rcpt - copies the strings */
void	spool_envelope_add_rcpt(struct spool_envelope *, const char *address,
	    const char *orcpt, unsigned notify);

/*
 * spool_init - create the directories under queue_dir if missing (mode
 * 0700); -1 and *error_r on failure.
 */
int	spool_init(const char *queue_dir, const char **error_r);

/* spool_new_queue_id - unique, sortable by time, safe from any thread */
void	spool_new_queue_id(char out[QUEUE_ID_MAX]);

/* ---- writing (the SMTP session) ---- */

struct spool_file;

/*
 * spool_create - open incoming/<new queue ID> with O_EXCL. NULL and
 * *error_r on failure (errno kept: ENOSPC means 452).
 */
struct spool_file *spool_create(const char *queue_dir, const char **error_r);
const char *spool_file_queue_id(const struct spool_file *);
/* spool_write_body - append body bytes (buffered); -1 and *error_r */
int	spool_write_body(struct spool_file *, const void *, size_t,
	    const char **error_r);
size_t	spool_body_size(const struct spool_file *);
/*
 * spool_read_body - read up to n body bytes at offset (the body filters
 * of end of message read it back); *got_r = 0 at the end. May block on
 * the disk: call it where blocking is allowed (pool) or accept a page
 * cache read. -1 and *error_r on failure.
 */
int	spool_read_body(struct spool_file *, size_t offset, void *, size_t n,
	    size_t *got_r, const char **error_r);
/* spool_replace_body - a filter's new body replaces what was received */
int	spool_replace_body(struct spool_file *, const void *, size_t n,
	    const char **error_r);
/*
 * spool_commit - append header block and envelope, flush, fsync, rename
 * into the target state (SPOOL_QUEUE or SPOOL_HOLD), fsync the directory.
 * BLOCKS: call it on the worker pool. On success the message is durable
 * and the spool_file is freed. On failure the incoming file is removed,
 * the spool_file freed, and -1 returned with *error_r set.
 */
int	spool_commit(struct spool_file **, const struct spool_envelope *,
	    const void *headers, size_t header_len, enum spool_state target,
	    const char **error_r);
/* spool_abort - remove the incoming file and free */
void	spool_abort(struct spool_file **);

/* ---- reading (the queue manager) ---- */

struct spool_msg {
	char	*path;		/* owned; current path of the file */
	enum spool_state state;
	int	 fd;		/* open for read+write (status bytes) */
	struct spool_envelope env;
	off_t	 header_offset;
	size_t	 header_len;
	off_t	 body_offset;
	size_t	 body_len;
	time_t	 mtime;		/* deferred/: the next retry time */
};

/*
 * spool_msg_open - read the envelope of queue_dir/<state>/<queue_id>.
 * NULL and *error_r on error; a file that does not parse is moved to
 * corrupt/ by the caller (spool_move_id). errno is EBADMSG when the file
 * is damaged (corrupt), otherwise the system error (ENOENT: gone).
 */
struct spool_msg *spool_msg_open(const char *queue_dir, enum spool_state,
	    const char *queue_id, const char **error_r);
void	spool_msg_free(struct spool_msg **);
/* spool_mark_done - set recipient i done on disk (pwrite + fdatasync) */
int	spool_mark_done(struct spool_msg *, size_t i, const char **error_r);
/*
 * spool_mark_done_nosync, spool_sync - the two halves of spool_mark_done,
 * so that several recipients cost one fdatasync, and none at all when
 * the file is about to be removed anyway (a lost mark then only means a
 * second delivery, which at-least-once allows).
 */
int	spool_mark_done_nosync(struct spool_msg *, size_t i,
	    const char **error_r);
int	spool_sync(struct spool_msg *, const char **error_r);
/* spool_move - rename to another state; SPOOL_DEFERRED: mtime = retry_at */
int	spool_move(struct spool_msg *, const char *queue_dir,
	    enum spool_state to, time_t retry_at, const char **error_r);
/*
 * spool_move_id - rename queue_dir/<from>/<id> to <to>/ without opening
 * it (a file spool_msg_open rejected goes to SPOOL_CORRUPT this way).
 */
int	spool_move_id(const char *queue_dir, enum spool_state from,
	    const char *queue_id, enum spool_state to, const char **error_r);
/* spool_remove - unlink the file (all recipients done) */
int	spool_remove(struct spool_msg *, const char **error_r);
/*
 * spool_scan - call fn for each queue ID in queue_dir/<state>/, with the
 * file's mtime. Returns the number found or -1.
 */
int	spool_scan(const char *queue_dir, enum spool_state,
	    void (*fn)(const char *queue_id, time_t mtime, void *arg),
	    void *arg);
const char *spool_state_dir(enum spool_state);

#endif

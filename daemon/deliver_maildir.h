/*
 * deliver_maildir.h - the maildir transport: local delivery for the
 * domains of mydestination into <maildir_base>/<domain>/<user>/.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_DELIVER_MAILDIR_H
#define POSTERN_DELIVER_MAILDIR_H

#include <stddef.h>

struct delivery_job;
struct loop;

/*
 * deliver_maildir_start - deliver the job's recipients; the disk work runs
 * on the worker pool and job->done is called on `loop` (the queue
 * manager's) when every recipient has a status. The job is borrowed until
 * then; job->content_fd must stay open.
 */
void	deliver_maildir_start(struct delivery_job *, struct loop *);

/*
 * deliver_maildir_path - the mailbox directory of address under base:
 * "<base>/<domain>/<local part>" with both lowercased, into out (size n).
 * Returns 0, or -1 with *error_r set for an address we refuse (empty
 * local part or domain, '/' anywhere, leading '.', control characters).
 */
int	deliver_maildir_path(const char *base, const char *address, char *out,
	    size_t n, const char **error_r);

#endif

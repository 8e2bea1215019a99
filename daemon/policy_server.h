/*
 * policy_server.h - the `policy` listener kind of posternd: a Postfix
 * SMTP access policy delegation server (check_policy_service) that
 * answers with posternd's own policies (policy_server_answer.h).
 *
 * A connection lives on the loop that accepted it. Requests are read and
 * answered one at a time, in order (a client may pipeline them); a
 * request whose filters may block is answered on the filter pool and its
 * answer written back on the loop.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_POLICY_SERVER_H
#define POSTERN_POLICY_SERVER_H

#include <sys/socket.h>

struct loop;

/*
 * policy_server_start - take over an accepted connection (fd, which is
 * closed on every path) on loop, the caller's. A client outside
 * policy_listen_clients is logged and closed. where names the listener
 * for the log ("policy/127.0.0.1:10045").
 */
void	policy_server_start(struct loop *, int fd, const struct sockaddr *,
	    socklen_t, const char *where);

/*
 * policy_server_shutdown_loop - close every policy connection of the
 * calling loop (run on that loop); one waiting for the filter pool is
 * closed when its answer comes back
 */
void	policy_server_shutdown_loop(void);

/*
 * policy_server_reload - drop the policy chain kept for a runtime that is
 * no longer in force (thread-safe; call after runtime_swap on SIGHUP) so
 * that the old configuration and the helpers of its filters go now; the
 * next request builds the new chain. Requests in flight keep theirs.
 * Without the call the stale chain goes at the next policy connection or
 * request.
 */
void	policy_server_reload(void);

/*
 * policy_server_release - drop the policy chain kept for the runtime in
 * force and build no new one (daemon shutdown; thread-safe). Requests in
 * flight keep the chain they hold.
 */
void	policy_server_release(void);

#endif

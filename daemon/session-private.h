/*
 * session-private.h - what the session_*.c files share (not for use
 * outside the SMTP server session).
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_SESSION_PRIVATE_H
#define POSTERN_SESSION_PRIVATE_H

#include "session.h"

/* replies queued beyond this stop the reading of commands */
#define SESSION_OUTPUT_MAX	(256 * 1024)

struct evbuffer;
struct bufferevent;

/* session.c */
void	session_set_state(struct session *, enum smtp_state);
const char *session_state_name(enum smtp_state);
void	session_reply(struct session *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	session_reply_text(struct session *, const char *);
void	session_arm_timer(struct session *);
bool	session_error(struct session *);
void	session_close(struct session *);
void	session_suspend(struct session *);
/*
 * session_resume_begin - pool work is done; false when the session ended
 * meanwhile (it is freed then: don't touch it). session_resume_end
 * re-enables reading unless the continuation suspended or closed again.
 */
bool	session_resume_begin(struct session *);
void	session_resume_end(struct session *);
void	session_process_input(struct session *);
void	session_install_bev(struct session *, struct bufferevent *);

/* session_cmd.c */
void	session_conn_init(struct session *);
void	session_greet(struct session *);
void	session_command(struct session *, const char *line, size_t len);
void	session_tls_established(struct session *);
void	session_tx_free(struct session *);
const char *session_proto(const struct session *);
/* session_auth_refresh - the filter view after AUTH succeeded */
void	session_auth_refresh(struct session *);

/*
 * session_run_stage - run a filter stage: inline when no filter of the
 * stage may block, otherwise on the pool with the session suspended.
 * then() runs with the verdict either way (it is the continuation).
 */
typedef void (*session_stage_fn)(struct session *, enum filter_verdict,
	    struct filter_call *, const char *filter);
void	session_run_stage(struct session *, struct chain_tx *,
	    struct filter_call *, session_stage_fn then);
void	session_filter_call_init(struct session *, struct filter_call *,
	    enum filter_stage);
/* session_log_reject - "QID: reject: CMD from ident: reply; from=<> to=<>" */
void	session_log_reject(struct session *, const char *cmd,
	    const char *reply, const char *rcpt, const char *filter);

/* session_data.c */
void	session_data_begin(struct session *);
void	session_bdat_begin(struct session *, size_t size, bool last);
/* session_bdat_discard - read size bytes, drop them, then send reply */
void	session_bdat_discard(struct session *, size_t size, const char *reply);
/* session_data_input - returns false when it needs more input */
bool	session_data_input(struct session *, struct evbuffer *);
/* session_reject_content - answer a refused message, end the transaction */
void	session_reject_content(struct session *, const char *reply);

/* session_eom.c */
/* session_eom - the content is complete: filters, edits, commit */
void	session_eom(struct session *);

/* session_auth.c */
bool	session_auth_offered(const struct session *);
void	session_auth_begin(struct session *, const char *mech,
	    const char *initial);
void	session_auth_input(struct session *, const char *line, size_t len);

#endif

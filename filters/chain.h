/*
 * chain.h - the filter chain: the filters of smtpd_filters, in order.
 *
 * A chain is built once per configuration load (each filter's init runs
 * then) and is read-only afterwards. A session keeps a chain_tx per
 * transaction holding each filter's per-transaction state.
 *
 * chain_run is synchronous; the session decides where it runs: inline on
 * the loop when chain_stage_may_block() is false, on the worker pool
 * otherwise.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_CHAIN_H
#define POSTERN_CHAIN_H

#include <stdbool.h>

#include "filter.h"

struct config;
struct chain;

/* chain_new - init every filter; NULL and *error_r (owned) on failure */
struct chain *chain_new(const struct config *, char **error_r);
/* chain_new_ops - the same from filter ops directly (tests, milter host) */
struct chain *chain_new_ops(const struct filter_ops *const *ops, size_t n,
	    const struct config *, char **error_r);
void	chain_free(struct chain **);
/* chain_stage_may_block - true if some filter of the stage may block */
bool	chain_stage_may_block(const struct chain *, enum filter_stage);
/* chain_has_stage - true if some filter wants the stage */
bool	chain_has_stage(const struct chain *, enum filter_stage);

/* per-transaction state of every filter in a chain */
struct chain_tx {
	const struct chain *chain;	/* borrowed: the session's runtime */
	void	**state;		/* owned array, one per filter */
	bool	 accepted;		/* ACCEPT seen: skip the rest */
	/*
	 * borrowed: the session's connection-level chain_tx when this one
	 * is a transaction's (call->conn_state comes from it), else NULL
	 */
	struct chain_tx *conn;
};

/* chain_tx_begin - tx_begin of every filter; tx->conn is set to NULL */
void	chain_tx_begin(struct chain_tx *, const struct chain *,
	    const struct filter_conn *);
/* chain_tx_end - tx_end of every filter; safe to call twice */
void	chain_tx_end(struct chain_tx *);
/*
 * chain_tx_close - the end of a transaction's filter state: the ABORT
 * stage first when the transaction did not complete (call: set up by the
 * caller for FILTER_STAGE_ABORT), then chain_tx_end; safe to call twice
 */
void	chain_tx_close(struct chain_tx *, bool completed,
	    struct filter_call *call);

/*
 * chain_run - run call->stage through the filters in order. call->conn,
 * tx and stage arguments are set by the caller; instance and tx_state are
 * set here per filter. Returns the first verdict that is not CONTINUE
 * or HOLD (with call->reply checked and normalized); else HOLD if a
 * filter said so (the first one's reply), else CONTINUE. *filter_r names
 * the filter that decided (lent).
 */
enum filter_verdict chain_run(struct chain_tx *, struct filter_call *,
	    const char **filter_r);
/*
 * chain_run_eom - the EOM stage with a view of the message: after each
 * filter, the edits it added to call->edits are applied to view, which
 * the next filters see as call->message. view->body may be replaced
 * (the caller frees view->body and view->headers).
 */
enum filter_verdict chain_run_eom(struct chain_tx *, struct filter_call *,
	    struct filter_message *view, const char **filter_r);

#endif

/*
 * relay.h - the relay policy: open-relay prevention at RCPT.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_RELAY_H
#define POSTERN_RELAY_H

#include <stdbool.h>
#include <stddef.h>

#include "filter.h"

struct config;

/*
 * filter_relay - the "relay" filter of smtpd_filters: stage RCPT only,
 * never blocks, no per-instance or per-transaction state. A recipient it
 * refuses gets FILTER_REJECT with "554 5.7.1 <rcpt>: Relay access denied";
 * every other recipient gets FILTER_CONTINUE (never ACCEPT, so the rest of
 * the chain still runs).
 */
extern const struct filter_ops filter_relay;

/*
 * relay_check - the decision of filter_relay without a session, for tests
 * and for posternctl's dry run.
 *
 * cfg supplies mydestination and relay_domains (either may be NULL:
 * empty). may_relay is true for clients in mynetworks and authenticated
 * clients. rcpt is the recipient as the parser returned it (no angle
 * brackets; a source route, if any, is ignored).
 *
 * Returns 0 when the recipient may be accepted, or -1 when it must be
 * refused, with reply (reply_size bytes, truncated and always
 * NUL-terminated) set to the complete SMTP reply without CRLF.
 */
int	relay_check(const struct config *cfg, bool may_relay, const char *rcpt,
	    char *reply, size_t reply_size);

#endif

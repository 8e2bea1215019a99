/*
 * sender.h - the sender identity policy (smtpd_sender_login_maps).
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_SENDER_H
#define POSTERN_SENDER_H

#include <stdbool.h>

#include "filter.h"

struct table;

/*
 * filter_sender - the "sender" filter: at MAIL, an authenticated user's
 * envelope sender must be theirs (553 5.7.1); at EOM, so must the
 * addresses of From: and Sender: (header_from_login_mismatch). Never
 * blocks.
 */
extern const struct filter_ops filter_sender;

/*
 * sender_login_owns - map (sender -> owners) gives login the sender
 * address: looked up as the canonical address, then as "@domain". The
 * null sender is owned by everyone.
 */
bool	sender_login_owns(const struct table *map, const char *login,
	    const char *sender);

#endif

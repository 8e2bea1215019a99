/*
 * auth_results.h - Authentication-Results fields (RFC 8601) that claim
 * to come from us.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_AUTH_RESULTS_H
#define POSTERN_AUTH_RESULTS_H

#include <stddef.h>

#include "buf.h"

/*
 * auth_results_strip - remove from the header block (CRLF lines, no
 * blank line) every Authentication-Results field whose authserv-id is
 * ours: a message from outside must not carry results we seem to have
 * vouched for (RFC 8601 5). Returns how many were removed.
 */
size_t	auth_results_strip(struct buf *headers, const char *authserv_id);

#endif

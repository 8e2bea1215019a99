/*
 * auth_results.h - Authentication-Results fields (RFC 8601): removing
 * those that claim to come from us, and writing values safely into ours.
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

/*
 * auth_results_add_value - append a property value (RFC 8601 2.2 pvalue)
 * to out: as it is when it is a plain address or domain (atext, ".",
 * "@"), else as a quoted-string with '"' and '\' escaped; control
 * characters are dropped. Text from the SMTP client or from a signature
 * can then never end the value and start a result of its own.
 */
void	auth_results_add_value(struct buf *out, const char *value);
/*
 * auth_results_add_comment - append " (text)" with parentheses and '\'
 * in text replaced and control characters dropped; nothing if text is ""
 */
void	auth_results_add_comment(struct buf *out, const char *text);

#endif

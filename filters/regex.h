/*
 * regex.h - the "regex" filter (header_checks, body_checks and friends).
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_REGEX_H
#define POSTERN_REGEX_H

#include "filter.h"

/*
 * filter_regex - stages HEADER (notes the top-level MIME type), BODY
 * (MIME headers, body lines, attachments) and EOM (the message headers,
 * edits, verdict). Never blocks.
 */
extern const struct filter_ops filter_regex;

#endif

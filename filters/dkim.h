/*
 * dkim.h - the "dkim" filter: DKIM signing and verification.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_DKIM_H
#define POSTERN_DKIM_H

#include "filter.h"

/*
 * filter_dkim - stages EOH (keys chosen, verification started), BODY
 * (hashing) and EOM (DKIM-Signature or Authentication-Results header).
 * May block: it runs on the worker pool. Put it last in smtpd_filters.
 */
extern const struct filter_ops filter_dkim;

#endif

/*
 * spf.h - the "spf" filter: inbound SPF checks and the egress check.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_SPF_H
#define POSTERN_SPF_H

#include "filter.h"

/*
 * filter_spf - stages MAIL (the check, on the worker pool: it waits for
 * a postern-spf helper) and EOM (Received-SPF and Authentication-Results
 * headers, or HOLD when an action said so)
 */
extern const struct filter_ops filter_spf;

#endif

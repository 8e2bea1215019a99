/*
 * clock.h - the monotonic clock in milliseconds, for deadlines of blocking
 * waits (DNS lookups off the loop, the SPF helpers) and for tests.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_CLOCK_H
#define POSTERN_CLOCK_H

#include <stdint.h>

/* clock_ms - CLOCK_MONOTONIC in milliseconds */
int64_t	clock_ms(void);

#endif

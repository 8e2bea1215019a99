/*
 * clock.c - the monotonic clock in milliseconds.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <time.h>

#include "clock.h"

int64_t
clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

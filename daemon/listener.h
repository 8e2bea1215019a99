/*
 * listener.h - listening sockets of the `listen` parameter and the
 * connection limits that apply before a session exists.
 *
 * Each listen entry gets one socket per event loop (SO_REUSEPORT), so the
 * kernel spreads connections over the loops with no hand-off. Sockets are
 * bound while the daemon still runs as root; accepting starts after the
 * privilege drop.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_LISTENER_H
#define POSTERN_LISTENER_H

#include <sys/socket.h>

#include "config/config.h"

struct loop;
struct listener;

/* listeners_open - bind every listen entry on every loop; -1 and *error_r */
int	listeners_open(const struct config *, struct loop **loops, int nloops,
	    char **error_r);
/* listeners_enable - start accepting */
void	listeners_enable(void);
/* listeners_close - stop accepting and close the sockets (on shutdown);
 * must be called from the thread that owns each loop or before loops run:
 * it posts the close to each loop */
void	listeners_close(void);
enum listener_kind listener_kind(const struct listener *);
/* listener_release - a session from this address ended (NULL-safe) */
void	listener_release(struct listener *, const struct sockaddr_storage *);

#endif

/*
 * milter_host.h - Postern's filter chain hosted in libmilter: the
 * callbacks that turn an MTA's milter conversation (Postfix's
 * smtpd_milters, Sendmail's INPUT_MAIL_FILTER) into the chain's stages,
 * and the chain's verdicts and edits back into libmilter calls.
 *
 * One runtime (configuration and chain, milter_runtime.h) in force,
 * built from postern.conf at start and again at each reload; one
 * connection state per milter connection (smfi_setpriv), holding the
 * runtime it started with, freed in xxfi_close.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_MILTER_HOST_H
#define POSTERN_MILTER_HOST_H

#include <stdbool.h>

#include <libmilter/mfapi.h>

struct config;

/*
 * milter_host_init - check cfg and build its runtime (each filter's
 * init: DKIM keys are read here, before a privilege drop; smtpd_filters
 * must not name "milters", see milter_runtime_check), and put it in
 * force. Takes a reference of its own on cfg. Returns 0, or -1 with
 * *error_r (owned).
 */
int	milter_host_init(struct config *cfg, char **error_r);

/*
 * milter_host_reload - the same with a configuration loaded again (takes
 * over the caller's reference on cfg, also on failure): the connections
 * from now on use it, those in progress finish with the runtime they
 * started with. Thread-safe. Returns 0, or -1 with *error_r (owned) and
 * the old configuration still in force.
 */
int	milter_host_reload(struct config *cfg, char **error_r);

/*
 * milter_host_deinit - drop the runtime in force; connections still
 * open keep theirs until they close
 */
void	milter_host_deinit(void);

/*
 * milter_host_desc - the filter description for smfi_register, named
 * name (borrowed: must outlive smfi_main)
 */
void	milter_host_desc(struct smfiDesc *desc, const char *name);

#endif

/*
 * milter_host.h - Postern's filter chain hosted in libmilter: the
 * callbacks that turn an MTA's milter conversation (Postfix's
 * smtpd_milters, Sendmail's INPUT_MAIL_FILTER) into the chain's stages,
 * and the chain's verdicts and edits back into libmilter calls.
 *
 * One chain per process, built from postern.conf at start; one
 * connection state per milter connection (smfi_setpriv), freed in
 * xxfi_close.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_MILTER_HOST_H
#define POSTERN_MILTER_HOST_H

#include <stdbool.h>

#include <libmilter/mfapi.h>

struct config;

/*
 * milter_host_check - the configuration can be hosted: smtpd_filters
 * must not name "milters" (an MTA calling us calling milters is a loop
 * waiting to happen). Returns 0, or -1 with *error_r (owned).
 */
int	milter_host_check(const struct config *, char **error_r);

/*
 * milter_host_init - check cfg and build its chain (each filter's init:
 * DKIM keys are read here, before a privilege drop). cfg is borrowed and
 * must outlive milter_host_deinit. Returns 0, or -1 with *error_r
 * (owned).
 */
int	milter_host_init(const struct config *cfg, char **error_r);
void	milter_host_deinit(void);

/*
 * milter_host_desc - the filter description for smfi_register, named
 * name (borrowed: must outlive smfi_main)
 */
void	milter_host_desc(struct smfiDesc *desc, const char *name);

#endif

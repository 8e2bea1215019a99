/*
 * policy_server_request.h - the server side of the Postfix SMTP access
 * policy delegation protocol, without I/O: take one request
 * ("name=value\n" lines up to an empty line) apart into the attributes
 * of struct policy_request (policy_proto.h).
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_POLICY_SERVER_REQUEST_H
#define POSTERN_POLICY_SERVER_REQUEST_H

#include <stddef.h>

#include "policy_proto.h"

/*
 * Hard limits on what a client may send. Postfix 3.7 sends about 30
 * attributes in under 1 KB; its own attribute reader stops at lines of
 * a few KB. Anything beyond these is not Postfix: the connection is
 * closed.
 */
#define POLICY_SERVER_LINE_MAX		2048	/* one "name=value" line */
#define POLICY_SERVER_ATTR_MAX		64	/* attributes per request */
#define POLICY_SERVER_REQUEST_MAX	16384	/* one request, all lines */

/* one parsed request */
struct policy_server_request {
	/*
	 * the attributes we use; every string points into store, "" for an
	 * attribute that was absent or empty (never NULL)
	 */
	struct policy_request req;
	const char *request;		/* "smtpd_access_policy" */
	size_t	 nattrs;		/* lines read, unknown ones included */
	char	*store;			/* owned: the request's bytes */
};

/*
 * policy_server_request_parse - look for one complete request at the
 * start of data. Unknown attributes are ignored (Postfix adds new ones
 * with new versions); a trailing CR on a line is tolerated; when an
 * attribute repeats, the last one counts.
 * Returns 1 when complete: *r is filled (release it with
 * policy_server_request_deinit) and *used_r is the number of bytes the
 * request took, its empty line included. Returns 0 when more input is
 * needed (nothing is set). Returns -1 for a request that must end the
 * connection, with *error_r (static text): a line or request over the
 * limits above, too many attributes, a NUL byte, a line without '=', an
 * empty attribute name, a bad number, or a request that is not
 * "request=smtpd_access_policy".
 */
int	policy_server_request_parse(const char *data, size_t len,
	    struct policy_server_request *r, size_t *used_r,
	    const char **error_r);

/* policy_server_request_deinit - free what parse set; NULL-safe */
void	policy_server_request_deinit(struct policy_server_request *);

#endif

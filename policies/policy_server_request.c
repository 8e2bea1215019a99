/*
 * policy_server_request.c - parse one Postfix policy delegation request;
 * see policy_server_request.h.
 *
 * Postfix's SMTPD_POLICY_README ("Protocol description"): the client
 * sends "name=value" lines, each ending in a newline, and an empty line
 * ends the request. Values never hold a newline or NUL; names are
 * lowercase. This module only takes the bytes apart and enforces the
 * limits; what the attributes mean for our filters is
 * policy_server_answer.c's business, sockets and timers are
 * daemon/policy_server.c's.
 *
 * A request is checked whole before anything is copied, so a malformed
 * one costs no allocation, and a partial one is only looked at again
 * when more bytes arrive (the caller's buffer never exceeds the request
 * limit by more than one read).
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "policy_server_request.h"
#include "xmalloc.h"

/* the string attributes we read, and where they go */
static const struct {
	const char *name;
	size_t	 offset;		/* in struct policy_request */
} str_attrs[] = {
	{ "protocol_state", offsetof(struct policy_request, protocol_state) },
	{ "protocol_name", offsetof(struct policy_request, protocol_name) },
	{ "helo_name", offsetof(struct policy_request, helo_name) },
	{ "queue_id", offsetof(struct policy_request, queue_id) },
	{ "sender", offsetof(struct policy_request, sender) },
	{ "recipient", offsetof(struct policy_request, recipient) },
	{ "client_address", offsetof(struct policy_request, client_address) },
	{ "client_name", offsetof(struct policy_request, client_name) },
	{ "reverse_client_name",
	    offsetof(struct policy_request, reverse_client_name) },
	{ "server_address", offsetof(struct policy_request, server_address) },
	{ "instance", offsetof(struct policy_request, instance) },
	{ "sasl_method", offsetof(struct policy_request, sasl_method) },
	{ "sasl_username", offsetof(struct policy_request, sasl_username) },
	{ "sasl_sender", offsetof(struct policy_request, sasl_sender) },
	{ "ccert_subject", offsetof(struct policy_request, ccert_subject) },
	{ "ccert_issuer", offsetof(struct policy_request, ccert_issuer) },
	{ "ccert_fingerprint",
	    offsetof(struct policy_request, ccert_fingerprint) },
	{ "ccert_pubkey_fingerprint",
	    offsetof(struct policy_request, ccert_pubkey_fingerprint) },
	{ "encryption_protocol",
	    offsetof(struct policy_request, encryption_protocol) },
	{ "encryption_cipher",
	    offsetof(struct policy_request, encryption_cipher) },
	{ "etrn_domain", offsetof(struct policy_request, etrn_domain) },
	{ "stress", offsetof(struct policy_request, stress) },
	{ "policy_context", offsetof(struct policy_request, policy_context) },
};

/*
 * find_end - the length of the first complete request in data (its empty
 * line included): >0 found, 0 more input needed, -1 and *error_r when
 * the limits are broken or a NUL byte is seen
 */
static long
find_end(const char *data, size_t len, const char **error_r)
{
	size_t pos = 0, eol, linelen, nattrs = 0;
	const char *nl;

	for (;;) {
		if (pos >= len)
			break;
		nl = memchr(data + pos, '\n', len - pos);
		eol = nl != NULL ? (size_t)(nl - data) : len;
		linelen = eol - pos;
		if (memchr(data + pos, '\0', linelen) != NULL) {
			*error_r = "NUL byte in request";
			return -1;
		}
		if (linelen > POLICY_SERVER_LINE_MAX) {
			*error_r = "attribute line too long";
			return -1;
		}
		if (eol + (nl != NULL) > POLICY_SERVER_REQUEST_MAX) {
			*error_r = "request too long";
			return -1;
		}
		if (nl == NULL)
			break;
		if (linelen == 0 || (linelen == 1 && data[pos] == '\r'))
			return (long)eol + 1;
		if (++nattrs > POLICY_SERVER_ATTR_MAX) {
			*error_r = "too many attributes";
			return -1;
		}
		pos = eol + 1;
	}
	return 0;
}

/* parse_number - a decimal count; -1 if not one (empty is 0) */
static int
parse_number(const char *s, size_t *n_r)
{
	unsigned long long n;
	char *end;

	if (*s == '\0') {
		*n_r = 0;
		return 0;
	}
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || n > (size_t)-1 / 2)
		return -1;
	*n_r = (size_t)n;
	return 0;
}

/* set_attr - store one name=value (both in store); -1 and *error_r */
static int
set_attr(struct policy_server_request *r, const char *name,
    const char *value, const char **error_r)
{
	size_t i, n;

	if (strcmp(name, "request") == 0) {
		r->request = value;
		return 0;
	}
	if (strcmp(name, "recipient_count") == 0 ||
	    strcmp(name, "size") == 0) {
		if (parse_number(value, &n) == -1) {
			*error_r = "bad number in request";
			return -1;
		}
		if (*name == 'r')
			r->req.recipient_count = n;
		else
			r->req.size = n;
		return 0;
	}
	for (i = 0; i < sizeof(str_attrs) / sizeof(str_attrs[0]); i++)
		if (strcmp(name, str_attrs[i].name) == 0) {
			*(const char **)((char *)&r->req +
			    str_attrs[i].offset) = value;
			return 0;
		}
	return 0;		/* unknown: ignored */
}

int
policy_server_request_parse(const char *data, size_t len,
    struct policy_server_request *r, size_t *used_r, const char **error_r)
{
	long end;
	size_t i;
	char *line, *nl, *eq;

	if ((end = find_end(data, len, error_r)) <= 0)
		return (int)end;
	memset(r, 0, sizeof(*r));
	r->store = xmalloc((size_t)end + 1);
	memcpy(r->store, data, (size_t)end);
	r->store[end] = '\0';
	r->request = "";
	for (i = 0; i < sizeof(str_attrs) / sizeof(str_attrs[0]); i++)
		*(const char **)((char *)&r->req + str_attrs[i].offset) = "";
	for (line = r->store; (nl = strchr(line, '\n')) != NULL;
	    line = nl + 1) {
		*nl = '\0';
		if (nl > line && nl[-1] == '\r')
			nl[-1] = '\0';
		if (*line == '\0')
			break;		/* the empty line: done */
		r->nattrs++;
		if ((eq = strchr(line, '=')) == NULL) {
			*error_r = "attribute without '='";
			goto bad;
		}
		if (eq == line) {
			*error_r = "empty attribute name";
			goto bad;
		}
		*eq = '\0';
		if (set_attr(r, line, eq + 1, error_r) == -1)
			goto bad;
	}
	if (strcmp(r->request, "smtpd_access_policy") != 0) {
		*error_r = *r->request == '\0' ? "request attribute missing" :
		    "unknown request type";
		goto bad;
	}
	*used_r = (size_t)end;
	return 1;
bad:
	policy_server_request_deinit(r);
	return -1;
}

void
policy_server_request_deinit(struct policy_server_request *r)
{
	if (r == NULL)
		return;
	free(r->store);
	r->store = NULL;
}

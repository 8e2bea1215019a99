/*
 * sender.c - the sender identity policy: a logged-in user may send only
 * as the addresses smtpd_sender_login_maps gives them.
 *
 * The map is Postfix's: the key is a sender address (or "@domain" for a
 * whole domain; pcre: tables give wildcards), the value the login names
 * that own it, separated by commas or spaces. As in Postfix's
 * reject_authenticated_sender_login_mismatch, an address the map does not
 * know is owned by nobody, and the null sender is always allowed.
 *
 * Beyond Postfix, the same ownership is required of the addresses in the
 * message's From: and Sender: fields at end of message, so that a user
 * cannot put someone else's address where the recipient sees it;
 * header_from_login_mismatch says whether that rejects, holds, warns or
 * is ignored.
 *
 * Only authenticated sessions are checked; mynetworks clients have no
 * login to bind to. Mail an authenticated user submits gets
 * "Authentication-Results: <authserv_id>; auth=pass smtp.mailfrom=<sender>"
 * (RFC 8601 2.7.4), naming the sender, never the login.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "address.h"
#include "auth_results.h"
#include "buf.h"
#include "config/config.h"
#include "filter.h"
#include "header_address.h"
#include "log.h"
#include "message_edit.h"
#include "sender.h"
#include "table.h"
#include "xmalloc.h"

/* longest address quoted in a reply; the reply itself has 512 bytes */
#define SENDER_REPLY_ADDR_MAX	256

/* owners_include - the owner list names login */
static bool
owners_include(const char *owners, const char *login)
{
	size_t len = strlen(login), n;
	const char *p = owners;

	while (*p != '\0') {
		p += strspn(p, ", \t");
		n = strcspn(p, ", \t");
		if (n == len && strncasecmp(p, login, len) == 0)
			return true;
		p += n;
	}
	return false;
}

bool
sender_login_owns(const struct table *map, const char *login,
    const char *sender)
{
	struct address addr;
	const char *error;
	char *canon, *key, *owners;
	bool owned = false;

	if (*sender == '\0')
		return true;
	if (address_parse(sender, &addr, &error) == -1)
		return false;
	canon = address_canonical(&addr);
	owners = table_lookup_dup(map, canon);
	if (owners == NULL && *addr.domain != '\0') {
		key = xasprintf("@%s", addr.domain);
		owners = table_lookup_dup(map, key);
		free(key);
	}
	if (owners != NULL)
		owned = owners_include(owners, login);
	free(owners);
	free(canon);
	address_deinit(&addr);
	return owned;
}

static enum filter_verdict
sender_mail(struct filter_call *call)
{
	const struct filter_conn *conn = call->conn;
	const struct table *map = conn->config->smtpd_sender_login_maps;
	char quoted[SENDER_REPLY_ADDR_MAX];

	if (map == NULL || !conn->is_authenticated ||
	    conn->sasl_username == NULL)
		return FILTER_CONTINUE;
	if (sender_login_owns(map, conn->sasl_username, call->arg))
		return FILTER_CONTINUE;
	log_escape(quoted, sizeof(quoted), call->arg);
	filter_set_reply(call, "553", "5.7.1",
	    "<%s>: Sender address rejected: not owned by user %s", quoted,
	    conn->sasl_username);
	return FILTER_REJECT;
}

/*
 * header_mismatch - the first address of From:/Sender: the user does not
 * own, copied into bad (with its field name); false if all are owned
 */
static bool
header_mismatch(const struct filter_call *call, const struct table *map,
    char *field_r, size_t fieldsz, char *bad, size_t badsz)
{
	const struct header_list *hl = call->message->headers;
	struct buf value;
	char **addrs;
	size_t i, k, n;
	bool found = false;

	buf_init(&value, 0);
	for (i = 0; i < hl->n && !found; i++) {
		if (strcasecmp(hl->fields[i].name, "From") != 0 &&
		    strcasecmp(hl->fields[i].name, "Sender") != 0)
			continue;
		header_field_value(&hl->fields[i], &value);
		n = header_addresses(value.data == NULL ? "" : value.data,
		    value.len, &addrs);
		for (k = 0; k < n && !found; k++) {
			if (sender_login_owns(map, call->conn->sasl_username,
			    addrs[k]))
				continue;
			found = true;
			snprintf(field_r, fieldsz, "%s", hl->fields[i].name);
			log_escape(bad, badsz, addrs[k]);
		}
		header_addresses_free(addrs, n);
	}
	buf_deinit(&value);
	return found;
}

/*
 * add_auth_results - "auth=pass" (RFC 8601 2.7.4) for a message a logged-in
 * user submitted; the property is the envelope sender, not the login name,
 * which stays private (as Postfix's smtpd_sasl_authenticated_header = no)
 */
static void
add_auth_results(struct filter_call *call)
{
	struct buf value;

	if (call->edits == NULL || call->tx == NULL)
		return;
	buf_init(&value, 0);
	buf_append(&value, call->conn->config->authserv_id,
	    strlen(call->conn->config->authserv_id));
	buf_append(&value, "; auth=pass", 11);
	if (*call->tx->sender != '\0') {
		buf_append(&value, " smtp.mailfrom=", 15);
		auth_results_add_value(&value, call->tx->sender);
	}
	filter_edits_add(call->edits, FILTER_EDIT_INSERT_HEADER, 0,
	    "Authentication-Results", buf_cstr(&value));
	buf_deinit(&value);
}

/* check_header_senders - From:/Sender: against the login's addresses */
static enum filter_verdict
check_header_senders(struct filter_call *call)
{
	const struct filter_conn *conn = call->conn;
	const struct config *cfg = conn->config;
	const char *action = cfg->header_from_login_mismatch;
	char field[32], bad[SENDER_REPLY_ADDR_MAX];

	if (cfg->smtpd_sender_login_maps == NULL || !conn->is_authenticated ||
	    conn->sasl_username == NULL || call->message == NULL ||
	    strcmp(action, "ignore") == 0)
		return FILTER_CONTINUE;
	if (!header_mismatch(call, cfg->smtpd_sender_login_maps, field,
	    sizeof(field), bad, sizeof(bad)))
		return FILTER_CONTINUE;
	if (strcmp(action, "warn") == 0) {
		log_warnx("%s: sender: %s: address <%s> not owned by user %s",
		    call->tx->queue_id != NULL ? call->tx->queue_id : "NOQUEUE",
		    field, bad, conn->sasl_username);
		return FILTER_CONTINUE;
	}
	filter_set_reply(call, "550", "5.7.1",
	    "%s: header address <%s> not owned by user %s", field, bad,
	    conn->sasl_username);
	return strcmp(action, "hold") == 0 ? FILTER_HOLD : FILTER_REJECT;
}

static enum filter_verdict
sender_eom(struct filter_call *call)
{
	const struct filter_conn *conn = call->conn;
	enum filter_verdict v;

	v = check_header_senders(call);
	if (v == FILTER_CONTINUE || v == FILTER_HOLD)
		if (conn->is_authenticated && call->tx != NULL)
			add_auth_results(call);
	return v;
}

const struct filter_ops filter_sender = {
	.name = "sender",
	.stages = FILTER_STAGE_BIT(FILTER_STAGE_MAIL) |
	    FILTER_STAGE_BIT(FILTER_STAGE_EOM),
	.may_block = false,
	.edits = true,
	.cb = {
		[FILTER_STAGE_MAIL] = sender_mail,
		[FILTER_STAGE_EOM] = sender_eom,
	},
};

/*
 * relay.c - the relay policy: open-relay prevention at RCPT.
 *
 * The rule (DESIGN.md, STYLE.md 5): a recipient in one of our domains -
 * mydestination or relay_domains - is accepted from anyone; any other
 * recipient only from a client in mynetworks or an authenticated one.
 * Everything else gets "554 5.7.1 <rcpt>: Relay access denied", the reply
 * Postfix's reject_unauth_destination gives, so that log tools recognize it.
 *
 * "Our domain" is decided on the canonical form of address.c, so that the
 * classic tricks cannot make a foreign recipient look local:
 *   - case and one trailing dot are normalized (USER@EXAMPLE.TEST. is
 *     local), but a subdomain is a different domain unless the match list
 *     says ".example.test";
 *   - the domain is the one after the last "@" outside quotes, and a
 *     source route (@example.test:user@other.example, RFC 5321 4.1.1.3)
 *     is dropped: the final domain counts;
 *   - an address literal ([192.0.2.1]) is ours only when that literal is
 *     listed in mydestination or relay_domains;
 *   - a local part that still holds routing syntax after unquoting - "%"
 *     (the percent hack), "!" (bang paths) or "@" (a quoted address) - is
 *     refused for clients that may not relay, as Postfix does with
 *     allow_untrusted_routing = no: some downstream system may honor it
 *     and forward the mail elsewhere;
 *   - a recipient without a domain is ours only if it is "postmaster"
 *     (RFC 5321 4.1.1.3).
 * Address syntax itself was checked by the SMTP parser; a recipient that
 * address.c cannot take apart is refused unless the client may relay.
 *
 * This module does no logging of its own: the session logs the reject
 * with filter=relay and stage=rcpt.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"
#include "matchlist.h"
#include "address.h"
#include "filter.h"
#include "log.h"
#include "relay.h"

/* longest recipient quoted in a reply; the reply itself has 512 bytes */
#define RELAY_REPLY_ADDR_MAX	300

/*
 * relay_domain_is_ours - the domain (canonical form) is in mydestination or
 * relay_domains. A domain with an empty label is never ours: the match
 * list drops one more trailing dot, so "example.test.." (canonical
 * "example.test.") would otherwise pass for example.test.
 */
static bool
relay_domain_is_ours(const struct config *cfg, const char *domain)
{
	size_t len = strlen(domain);

	if (len == 0 || domain[0] == '.' || domain[len - 1] == '.' ||
	    strstr(domain, "..") != NULL)
		return false;
	if (cfg->mydestination != NULL &&
	    matchlist_match_domain(cfg->mydestination, domain))
		return true;
	if (cfg->relay_domains != NULL &&
	    matchlist_match_domain(cfg->relay_domains, domain))
		return true;
	return false;
}

/* relay_allows - true if rcpt may be accepted (see the header comment) */
static bool
relay_allows(const struct config *cfg, bool may_relay, const char *rcpt)
{
	struct address addr;
	const char *error;
	bool allowed;

	if (may_relay)
		return true;
	if (rcpt == NULL || address_parse(rcpt, &addr, &error) == -1)
		return false;
	if (address_has_routing(&addr))
		allowed = false;
	else if (addr.domain[0] == '\0')
		allowed = strcasecmp(addr.local, "postmaster") == 0;
	else
		allowed = relay_domain_is_ours(cfg, addr.domain);
	address_deinit(&addr);
	return allowed;
}

/*
 * safe_copy - rcpt for a reply: control characters become "?", so that
 * nothing a client sent can split a reply line; long addresses are cut.
 */
static void
safe_copy(char *out, size_t size, const char *rcpt)
{
	size_t i;

	for (i = 0; rcpt[i] != '\0' && i + 1 < size; i++)
		out[i] = (unsigned char)rcpt[i] < 0x20 || rcpt[i] == 0x7f ?
		    '?' : rcpt[i];
	out[i] = '\0';
}

int
relay_check(const struct config *cfg, bool may_relay, const char *rcpt,
    char *reply, size_t reply_size)
{
	char safe[RELAY_REPLY_ADDR_MAX];

	assert(cfg != NULL);
	if (relay_allows(cfg, may_relay, rcpt))
		return 0;
	safe_copy(safe, sizeof(safe), rcpt != NULL ? rcpt : "");
	snprintf(reply, reply_size, "554 5.7.1 <%s>: Relay access denied",
	    safe);
	return -1;
}

/* relay_rcpt - the RCPT stage callback */
static enum filter_verdict
relay_rcpt(struct filter_call *call)
{
	const struct filter_conn *conn = call->conn;
	const char *rcpt;
	char safe[RELAY_REPLY_ADDR_MAX];
	bool may_relay;

	assert(conn != NULL && conn->config != NULL);
	rcpt = call->rcpt != NULL ? call->rcpt->address : call->arg;
	may_relay = conn->is_mynetworks || conn->is_authenticated;
	if (relay_allows(conn->config, may_relay, rcpt))
		return FILTER_CONTINUE;
	safe_copy(safe, sizeof(safe), rcpt != NULL ? rcpt : "");
	log_debug("relay", "session %llu: refused <%s>", conn->session_id,
	    safe);
	filter_set_reply(call, "554", "5.7.1", "<%s>: Relay access denied",
	    safe);
	return FILTER_REJECT;
}

const struct filter_ops filter_relay = {
	.name = "relay",
	.stages = FILTER_STAGE_BIT(FILTER_STAGE_RCPT),
	.may_block = false,
	.cb = {
		[FILTER_STAGE_RCPT] = relay_rcpt,
	},
};

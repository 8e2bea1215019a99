/*
 * milter_macros.c - the macros ("symbols") the milters get at each
 * stage: every value Postfix would define at that point, filled from
 * the filter call, then sent as the 'D' packet of the stage with the
 * milter's own list (setsymlist) or ours (milter_*_macros).
 *
 * It owns nothing: the values are borrowed from the call and the
 * instance, or formatted into the caller's struct milter_macro_set. The
 * packet is built by milter_proto.c.
 *
 * Reference: Postfix MILTER_README, "Macros"; sendmail's macro names
 * (j, v, _, i) as libmilter filters expect them.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "milter-private.h"

/* domain_of - the domain of an address, NULL for "" or none */
static const char *
domain_of(const char *addr)
{
	const char *at;

	if (addr == NULL || *addr == '\0')
		return NULL;
	at = strrchr(addr, '@');
	return at != NULL ? at + 1 : NULL;
}

/* milter_macros_fill - every macro Postfix would define at this point */
void
milter_macros_fill(struct milter_macro_set *mac, const struct milters *in,
    const struct filter_call *call)
{
	const struct filter_conn *c = call->conn;
	const struct filter_tx *tx = call->tx;
	static const char *const names[MILTER_MAC_COUNT] = {
		[MILTER_MAC_J] = "j",
		[MILTER_MAC_DAEMON_NAME] = "daemon_name",
		[MILTER_MAC_DAEMON_ADDR] = "daemon_addr",
		[MILTER_MAC_DAEMON_PORT] = "daemon_port",
		[MILTER_MAC_V] = "v",
		[MILTER_MAC_UNDERSCORE] = "_",
		[MILTER_MAC_CLIENT_ADDR] = "client_addr",
		[MILTER_MAC_CLIENT_PORT] = "client_port",
		[MILTER_MAC_CLIENT_NAME] = "client_name",
		[MILTER_MAC_TLS_VERSION] = "tls_version",
		[MILTER_MAC_CIPHER] = "cipher",
		[MILTER_MAC_CIPHER_BITS] = "cipher_bits",
		[MILTER_MAC_AUTH_TYPE] = "auth_type",
		[MILTER_MAC_AUTH_AUTHEN] = "auth_authen",
		[MILTER_MAC_MAIL_ADDR] = "mail_addr",
		[MILTER_MAC_MAIL_HOST] = "mail_host",
		[MILTER_MAC_MAIL_MAILER] = "mail_mailer",
		[MILTER_MAC_RCPT_ADDR] = "rcpt_addr",
		[MILTER_MAC_RCPT_HOST] = "rcpt_host",
		[MILTER_MAC_RCPT_MAILER] = "rcpt_mailer",
		[MILTER_MAC_I] = "i",
	};
	size_t i;
	int bits;

	for (i = 0; i < MILTER_MAC_COUNT; i++) {
		mac->m[i].name = names[i];
		mac->m[i].value = NULL;
	}
	mac->m[MILTER_MAC_J].value = in->myhostname;
	mac->m[MILTER_MAC_DAEMON_NAME].value = in->daemon_name;
	mac->m[MILTER_MAC_DAEMON_ADDR].value = c->server_addr;
	if (c->server_port != 0) {
		snprintf(mac->daemon_port, sizeof(mac->daemon_port), "%u",
		    c->server_port);
		mac->m[MILTER_MAC_DAEMON_PORT].value = mac->daemon_port;
	}
	mac->m[MILTER_MAC_V].value = "Postern";
	snprintf(mac->underscore, sizeof(mac->underscore), "%s [%s]",
	    c->client_name != NULL ? c->client_name : "unknown",
	    c->client_addr != NULL ? c->client_addr : "");
	mac->m[MILTER_MAC_UNDERSCORE].value = mac->underscore;
	mac->m[MILTER_MAC_CLIENT_ADDR].value = c->client_addr;
	if (filter_sa_port(c->client_sa) != 0) {
		snprintf(mac->port, sizeof(mac->port), "%u",
		    filter_sa_port(c->client_sa));
		mac->m[MILTER_MAC_CLIENT_PORT].value = mac->port;
	}
	mac->m[MILTER_MAC_CLIENT_NAME].value = c->client_name;
	mac->m[MILTER_MAC_TLS_VERSION].value = c->tls_version;
	mac->m[MILTER_MAC_CIPHER].value = c->tls_cipher;
	if ((bits = c->tls_cipher_bits) > 0) {
		snprintf(mac->bits, sizeof(mac->bits), "%d", bits);
		mac->m[MILTER_MAC_CIPHER_BITS].value = mac->bits;
	}
	if (c->is_authenticated) {
		mac->m[MILTER_MAC_AUTH_TYPE].value = c->sasl_method;
		mac->m[MILTER_MAC_AUTH_AUTHEN].value = c->sasl_username;
	}
	if (tx != NULL) {
		mac->m[MILTER_MAC_MAIL_ADDR].value = tx->sender;
		mac->m[MILTER_MAC_MAIL_HOST].value = domain_of(tx->sender);
		mac->m[MILTER_MAC_MAIL_MAILER].value = "smtp";
		mac->m[MILTER_MAC_I].value = tx->queue_id;
	}
	if (call->stage == FILTER_STAGE_RCPT && call->arg != NULL) {
		mac->m[MILTER_MAC_RCPT_ADDR].value = call->arg;
		mac->m[MILTER_MAC_RCPT_HOST].value = domain_of(call->arg);
		mac->m[MILTER_MAC_RCPT_MAILER].value = "smtp";
	}
}

/*
 * milter_macros_add - the 'D' packet of a stage: the milter's own list
 * when it sent one (setsymlist), else ours
 */
void
milter_macros_add(struct buf *out, const struct milters *in,
    const struct milter_conn *m, const struct milter_macro_set *mac,
    enum milter_macro_stage ms, char cmd)
{
	const char *list, *err;

	list = milter_neg_macros(&m->neg, ms);
	if (list == NULL)
		list = in->lists[ms];
	/* a macro packet cannot pass the buffer's cap: it has none */
	(void)milter_pkt_macros(out, cmd, mac->m, MILTER_MAC_COUNT, list,
	    &err);
}

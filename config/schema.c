/*
 * schema.c - the parameter table and the conversion of each parameter
 * type from text to its field in struct config (and back, for -P).
 *
 * Owns nothing at run time; the values it converts belong to the
 * struct config they are stored in, and schema_clear frees them. It
 * leaves reading files and $name expansion to cf_parse.c, and checks
 * that span several parameters (backoff order, maildir base) to
 * config.c.
 *
 * Names, meanings and defaults follow Postfix's postconf(5) where Postfix
 * has the parameter; doc/configuration.md describes every row.
 *
 * SPDX-License-Identifier: ISC
 */
#include <config.h>	/* autoconf's; this directory has its own config.h */

#include <arpa/inet.h>
#include <ctype.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cf_parse.h"
#include "config.h"
#include "schema.h"
#include "xmalloc.h"

static int schema_check_hostname(const char *, char **);
static int schema_check_tls_protocol(const char *, char **);
static int schema_check_tls_level(const char *, char **);
static int schema_check_dns_resolver(const char *, char **);
static int schema_check_local_transport(const char *, char **);
static int schema_check_result_action(const char *, char **);
static int schema_check_egress_action(const char *, char **);
static int schema_check_mismatch_action(const char *, char **);
static int schema_check_sign_failure(const char *, char **);
static int schema_check_canon(const char *, char **);
static int schema_check_texthash(const char *, char **);
static int schema_check_milter_action(const char *, char **);
static int schema_check_policy_filters(const char *, char **);

#define F(field)	offsetof(struct config, field), \
			sizeof(((struct config *)NULL)->field)

#define DAY	(24 * 3600LL)

/* Mozilla "intermediate" TLS 1.2 suites: forward secret AEAD only */
#define DEFAULT_CIPHERS	\
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:" \
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384"

/* Postfix's default macros for MAIL FROM */
#define MILTER_MAIL_MACROS \
	"i {auth_type} {auth_authen} {auth_author} {mail_addr} " \
	"{mail_host} {mail_mailer}"

/*
 * RFC 6376 5.4.1's list (libopendkim's default), plus the fields whose
 * change would alter what a reader sees or how the body is decoded
 */
#define DKIM_SIGNED_HEADERS \
	"From, Sender, Reply-To, Subject, Date, Message-ID, To, Cc, " \
	"MIME-Version, Content-Type, Content-Transfer-Encoding, " \
	"Resent-Date, Resent-From, Resent-Sender, Resent-To, Resent-Cc, " \
	"In-Reply-To, References, List-Id, List-Help, List-Unsubscribe, " \
	"List-Subscribe, List-Post, List-Owner, List-Archive"

/*
 * Sorted by name (schema_find does a binary search; a test checks the
 * order). Columns: name, type, default, min, max, time unit, flags,
 * check, field.
 */
const struct schema_param schema_params[] = {
	{ "attachment_checks", SCHEMA_TABLE, "",
	    0, 0, 0, 0, NULL, F(attachment_checks) },
	{ "authserv_id", SCHEMA_STRING, "$myhostname",
	    0, 0, 0, SCHEMA_F_NONEMPTY, schema_check_hostname,
	    F(authserv_id) },
	{ "body_checks", SCHEMA_TABLE, "",
	    0, 0, 0, 0, NULL, F(body_checks) },
	{ "body_checks_size_limit", SCHEMA_SIZE, "51200",
	    0, 1LL << 30, 0, 0, NULL, F(body_checks_size_limit) },
	{ "bounce_queue_lifetime", SCHEMA_TIME, "5d",
	    0, 100 * 365 * DAY, 'd', 0, NULL, F(bounce_queue_lifetime) },
	{ "debug_subsystems", SCHEMA_STRING, "",
	    0, 0, 0, 0, NULL, F(debug_subsystems) },
	{ "default_destination_concurrency_limit", SCHEMA_COUNT, "20",
	    1, 10000, 0, 0, NULL, F(default_destination_concurrency_limit) },
	{ "dkim_canonicalization", SCHEMA_STRING, "relaxed/relaxed",
	    0, 0, 0, SCHEMA_F_NONEMPTY, schema_check_canon,
	    F(dkim_canonicalization) },
	{ "dkim_dns_timeout", SCHEMA_TIME, "10s",
	    1, 300, 's', 0, NULL, F(dkim_dns_timeout) },
	{ "dkim_key_table", SCHEMA_STRING, "",
	    0, 0, 0, 0, schema_check_texthash, F(dkim_key_table) },
	{ "dkim_oversigned_headers", SCHEMA_LIST, "From",
	    0, 0, 0, 0, NULL, F(dkim_oversigned_headers) },
	{ "dkim_sign_failure_action", SCHEMA_STRING, "accept",
	    0, 0, 0, SCHEMA_F_NONEMPTY, schema_check_sign_failure,
	    F(dkim_sign_failure_action) },
	{ "dkim_signed_headers", SCHEMA_LIST, DKIM_SIGNED_HEADERS,
	    0, 0, 0, 0, NULL, F(dkim_signed_headers) },
	{ "dkim_signing_table", SCHEMA_STRING, "",
	    0, 0, 0, 0, schema_check_texthash, F(dkim_signing_table) },
	{ "dkim_verify", SCHEMA_BOOL, "yes",
	    0, 0, 0, 0, NULL, F(dkim_verify) },
	{ "dns_resolver", SCHEMA_STRING, "",
	    0, 0, 0, 0, schema_check_dns_resolver, F(dns_resolver) },
	{ "filter_threads", SCHEMA_COUNT, "0",
	    0, 1024, 0, 0, NULL, F(filter_threads) },
	{ "header_checks", SCHEMA_TABLE, "",
	    0, 0, 0, 0, NULL, F(header_checks) },
	{ "header_count_limit", SCHEMA_COUNT, "1000",
	    1, 1000000, 0, 0, NULL, F(header_count_limit) },
	{ "header_from_login_mismatch", SCHEMA_STRING, "reject",
	    0, 0, 0, SCHEMA_F_NONEMPTY, schema_check_mismatch_action,
	    F(header_from_login_mismatch) },
	{ "header_size_limit", SCHEMA_SIZE, "102400",
	    1000, 1LL << 30, 0, 0, NULL, F(header_size_limit) },
	{ "line_length_limit", SCHEMA_SIZE, "10240",
	    1000, 1LL << 30, 0, 0, NULL, F(line_length_limit) },
	{ "listen", SCHEMA_LISTEN, "smtp/127.0.0.1:25",
	    0, 0, 0, SCHEMA_F_NONEMPTY, NULL, F(listen) },
	{ "local_transport", SCHEMA_STRING, "maildir:$queue_directory/maildir",
	    0, 0, 0, SCHEMA_F_NONEMPTY, schema_check_local_transport,
	    F(local_transport) },
	{ "loop_threads", SCHEMA_COUNT, "0",
	    0, 1024, 0, 0, NULL, F(loop_threads) },
	{ "mail_owner", SCHEMA_STRING, "postern",
	    0, 0, 0, SCHEMA_F_NONEMPTY, NULL, F(mail_owner) },
	{ "maximal_backoff_time", SCHEMA_TIME, "4000s",
	    1, 100 * 365 * DAY, 's', 0, NULL, F(maximal_backoff_time) },
	{ "maximal_queue_lifetime", SCHEMA_TIME, "5d",
	    0, 100 * 365 * DAY, 'd', 0, NULL, F(maximal_queue_lifetime) },
	{ "message_size_limit", SCHEMA_SIZE, "10240000",
	    1000, (long long)INT32_MAX, 0, 0, NULL, F(message_size_limit) },
	{ "milter_command_timeout", SCHEMA_TIME, "30s",
	    1, DAY, 's', 0, NULL, F(milter_command_timeout) },
	{ "milter_connect_macros", SCHEMA_STRING,
	    "j {daemon_name} {daemon_addr} v _",
	    0, 0, 0, 0, NULL, F(milter_connect_macros) },
	{ "milter_connect_timeout", SCHEMA_TIME, "30s",
	    1, DAY, 's', 0, NULL, F(milter_connect_timeout) },
	{ "milter_content_timeout", SCHEMA_TIME, "300s",
	    1, DAY, 's', 0, NULL, F(milter_content_timeout) },
	{ "milter_data_macros", SCHEMA_STRING, "i",
	    0, 0, 0, 0, NULL, F(milter_data_macros) },
	{ "milter_default_action", SCHEMA_STRING, "tempfail",
	    0, 0, 0, SCHEMA_F_NONEMPTY, schema_check_milter_action,
	    F(milter_default_action) },
	{ "milter_end_of_data_macros", SCHEMA_STRING, "i",
	    0, 0, 0, 0, NULL, F(milter_end_of_data_macros) },
	{ "milter_end_of_header_macros", SCHEMA_STRING, "i",
	    0, 0, 0, 0, NULL, F(milter_end_of_header_macros) },
	{ "milter_helo_macros", SCHEMA_STRING,
	    "{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}",
	    0, 0, 0, 0, NULL, F(milter_helo_macros) },
	{ "milter_macro_daemon_name", SCHEMA_STRING, "$myhostname",
	    0, 0, 0, SCHEMA_F_NONEMPTY, NULL, F(milter_macro_daemon_name) },
	{ "milter_mail_macros", SCHEMA_STRING, MILTER_MAIL_MACROS,
	    0, 0, 0, 0, NULL, F(milter_mail_macros) },
	{ "milter_protocol", SCHEMA_COUNT, "6",
	    2, 6, 0, 0, NULL, F(milter_protocol) },
	{ "milter_rcpt_macros", SCHEMA_STRING,
	    "i {rcpt_addr} {rcpt_host} {rcpt_mailer}",
	    0, 0, 0, 0, NULL, F(milter_rcpt_macros) },
	{ "mime_header_checks", SCHEMA_TABLE, "$header_checks",
	    0, 0, 0, 0, NULL, F(mime_header_checks) },
	{ "minimal_backoff_time", SCHEMA_TIME, "300s",
	    1, 100 * 365 * DAY, 's', 0, NULL, F(minimal_backoff_time) },
	{ "mydestination", SCHEMA_DOMAIN_LIST,
	    "$myhostname, localhost.$mydomain, localhost",
	    0, 0, 0, 0, NULL, F(mydestination) },
	{ "mydomain", SCHEMA_STRING, NULL,
	    0, 0, 0, SCHEMA_F_NONEMPTY | SCHEMA_F_COMPUTED,
	    schema_check_hostname, F(mydomain) },
	{ "myhostname", SCHEMA_STRING, NULL,
	    0, 0, 0, SCHEMA_F_NONEMPTY | SCHEMA_F_COMPUTED,
	    schema_check_hostname, F(myhostname) },
	{ "mynetworks", SCHEMA_ADDRESS_LIST, "127.0.0.0/8 [::1]/128",
	    0, 0, 0, 0, NULL, F(mynetworks) },
	{ "myorigin", SCHEMA_STRING, "$myhostname",
	    0, 0, 0, SCHEMA_F_NONEMPTY, schema_check_hostname, F(myorigin) },
	{ "nested_header_checks", SCHEMA_TABLE, "$header_checks",
	    0, 0, 0, 0, NULL, F(nested_header_checks) },
	{ "policy_listen_clients", SCHEMA_ADDRESS_LIST,
	    "127.0.0.0/8 [::1]/128",
	    0, 0, 0, 0, NULL, F(policy_listen_clients) },
	{ "policy_listen_filters", SCHEMA_LIST, "relay, sender, spf",
	    0, 0, 0, 0, schema_check_policy_filters,
	    F(policy_listen_filters) },
	{ "policy_listen_idle_timeout", SCHEMA_TIME, "600s",
	    1, DAY, 's', 0, NULL, F(policy_listen_idle_timeout) },
	{ "policy_listen_max_connections", SCHEMA_COUNT, "100",
	    1, 100000, 0, 0, NULL, F(policy_listen_max_connections) },
	{ "qmgr_message_active_limit", SCHEMA_COUNT, "20000",
	    1, 10000000, 0, 0, NULL, F(qmgr_message_active_limit) },
	{ "queue_directory", SCHEMA_STRING, "/var/spool/postern",
	    0, 0, 0, SCHEMA_F_NONEMPTY | SCHEMA_F_ABSPATH, NULL,
	    F(queue_directory) },
	{ "queue_run_delay", SCHEMA_TIME, "300s",
	    1, 100 * 365 * DAY, 's', 0, NULL, F(queue_run_delay) },
	{ "relay_domains", SCHEMA_DOMAIN_LIST, "",
	    0, 0, 0, 0, NULL, F(relay_domains) },
	{ "relayhost", SCHEMA_NEXTHOP, "",
	    0, 0, 0, 0, NULL, F(relayhost) },
	{ "smtp_command_timeout", SCHEMA_TIME, "300s",
	    1, DAY, 's', 0, NULL, F(smtp_command_timeout) },
	{ "smtp_connect_timeout", SCHEMA_TIME, "30s",
	    1, DAY, 's', 0, NULL, F(smtp_connect_timeout) },
	{ "smtp_connection_cache_time_limit", SCHEMA_TIME, "2s",
	    0, DAY, 's', 0, NULL, F(smtp_connection_cache_time_limit) },
	{ "smtp_data_timeout", SCHEMA_TIME, "180s",
	    1, DAY, 's', 0, NULL, F(smtp_data_timeout) },
	{ "smtp_helo_timeout", SCHEMA_TIME, "300s",
	    1, DAY, 's', 0, NULL, F(smtp_helo_timeout) },
	{ "smtp_tls_security_level", SCHEMA_STRING, "may",
	    0, 0, 0, SCHEMA_F_NONEMPTY, schema_check_tls_level,
	    F(smtp_tls_security_level) },
	{ "smtpd_auth_failure_limit", SCHEMA_COUNT, "3",
	    1, 1000, 0, 0, NULL, F(smtpd_auth_failure_limit) },
	{ "smtpd_banner", SCHEMA_STRING, "$myhostname ESMTP Postern",
	    0, 0, 0, SCHEMA_F_NONEMPTY, NULL, F(smtpd_banner) },
	{ "smtpd_client_connection_count_limit", SCHEMA_COUNT, "50",
	    1, 1000000, 0, 0, NULL, F(smtpd_client_connection_count_limit) },
	{ "smtpd_data_timeout", SCHEMA_TIME, "600s",
	    1, DAY, 's', 0, NULL, F(smtpd_data_timeout) },
	{ "smtpd_filters", SCHEMA_LIST, "relay",
	    0, 0, 0, 0, NULL, F(smtpd_filters) },
	{ "smtpd_hard_error_limit", SCHEMA_COUNT, "20",
	    1, 100000, 0, 0, NULL, F(smtpd_hard_error_limit) },
	{ "smtpd_line_length_limit", SCHEMA_SIZE, "2048",
	    512, 1LL << 20, 0, 0, NULL, F(smtpd_line_length_limit) },
	{ "smtpd_max_connections", SCHEMA_COUNT, "1000",
	    1, 10000000, 0, 0, NULL, F(smtpd_max_connections) },
	{ "smtpd_milters", SCHEMA_LIST, "",
	    0, 0, 0, 0, NULL, F(smtpd_milters) },
	{ "smtpd_policy_service_default_action", SCHEMA_STRING,
	    "451 4.3.5 Server configuration problem",
	    0, 0, 0, SCHEMA_F_NONEMPTY, NULL,
	    F(smtpd_policy_service_default_action) },
	{ "smtpd_policy_service_end_of_data", SCHEMA_BOOL, "no",
	    0, 0, 0, 0, NULL, F(smtpd_policy_service_end_of_data) },
	{ "smtpd_policy_service_max_idle", SCHEMA_TIME, "300s",
	    1, DAY, 's', 0, NULL, F(smtpd_policy_service_max_idle) },
	{ "smtpd_policy_service_max_ttl", SCHEMA_TIME, "1000s",
	    1, DAY, 's', 0, NULL, F(smtpd_policy_service_max_ttl) },
	{ "smtpd_policy_service_timeout", SCHEMA_TIME, "100s",
	    1, DAY, 's', 0, NULL, F(smtpd_policy_service_timeout) },
	{ "smtpd_policy_service_try_limit", SCHEMA_COUNT, "2",
	    1, 100, 0, 0, NULL, F(smtpd_policy_service_try_limit) },
	{ "smtpd_policy_services", SCHEMA_LIST, "",
	    0, 0, 0, 0, NULL, F(smtpd_policy_services) },
	{ "smtpd_recipient_limit", SCHEMA_COUNT, "1000",
	    1, 10000000, 0, 0, NULL, F(smtpd_recipient_limit) },
	{ "smtpd_sasl_password_maps", SCHEMA_TABLE, "",
	    0, 0, 0, 0, NULL, F(smtpd_sasl_password_maps) },
	{ "smtpd_sender_login_maps", SCHEMA_TABLE, "",
	    0, 0, 0, 0, NULL, F(smtpd_sender_login_maps) },
	{ "smtpd_soft_error_limit", SCHEMA_COUNT, "10",
	    1, 100000, 0, 0, NULL, F(smtpd_soft_error_limit) },
	{ "smtpd_starttls_timeout", SCHEMA_TIME, "300s",
	    1, DAY, 's', 0, NULL, F(smtpd_starttls_timeout) },
	{ "smtpd_timeout", SCHEMA_TIME, "300s",
	    1, DAY, 's', 0, NULL, F(smtpd_timeout) },
	{ "smtpd_tls_auth_only", SCHEMA_BOOL, "yes",
	    0, 0, 0, 0, NULL, F(smtpd_tls_auth_only) },
	{ "smtpd_tls_cert_file", SCHEMA_STRING, "",
	    0, 0, 0, SCHEMA_F_ABSPATH, NULL, F(smtpd_tls_cert_file) },
	{ "smtpd_tls_ciphers", SCHEMA_STRING, DEFAULT_CIPHERS,
	    0, 0, 0, SCHEMA_F_NONEMPTY, NULL, F(smtpd_tls_ciphers) },
	{ "smtpd_tls_key_file", SCHEMA_STRING, "",
	    0, 0, 0, SCHEMA_F_ABSPATH, NULL, F(smtpd_tls_key_file) },
	{ "smtpd_tls_protocols_min", SCHEMA_STRING, "TLSv1.2",
	    0, 0, 0, SCHEMA_F_NONEMPTY, schema_check_tls_protocol,
	    F(smtpd_tls_protocols_min) },
	{ "spf_egress_action", SCHEMA_STRING, "warn",
	    0, 0, 0, SCHEMA_F_NONEMPTY, schema_check_egress_action,
	    F(spf_egress_action) },
	{ "spf_egress_addresses", SCHEMA_LIST, "",
	    0, 0, 0, 0, NULL, F(spf_egress_addresses) },
	{ "spf_fail_action", SCHEMA_STRING, "reject",
	    0, 0, 0, SCHEMA_F_NONEMPTY, schema_check_result_action,
	    F(spf_fail_action) },
	{ "spf_helper_limit", SCHEMA_COUNT, "8",
	    1, 1000, 0, 0, NULL, F(spf_helper_limit) },
	{ "spf_helper_path", SCHEMA_STRING, "",
	    0, 0, 0, SCHEMA_F_ABSPATH, NULL, F(spf_helper_path) },
	{ "spf_permerror_action", SCHEMA_STRING, "accept",
	    0, 0, 0, SCHEMA_F_NONEMPTY, schema_check_result_action,
	    F(spf_permerror_action) },
	{ "spf_softfail_action", SCHEMA_STRING, "accept",
	    0, 0, 0, SCHEMA_F_NONEMPTY, schema_check_result_action,
	    F(spf_softfail_action) },
	{ "spf_temperror_action", SCHEMA_STRING, "tempfail",
	    0, 0, 0, SCHEMA_F_NONEMPTY, schema_check_result_action,
	    F(spf_temperror_action) },
	{ "spf_timeout", SCHEMA_TIME, "20s",
	    1, 300, 's', 0, NULL, F(spf_timeout) },
	{ "worker_threads", SCHEMA_COUNT, "0",
	    0, 1024, 0, 0, NULL, F(worker_threads) },
};

const size_t schema_nparams = sizeof(schema_params) / sizeof(schema_params[0]);

static int
schema_cmp(const void *key, const void *row)
{
	return strcmp(key, ((const struct schema_param *)row)->name);
}

const struct schema_param *
schema_find(const char *name)
{
	return bsearch(name, schema_params, schema_nparams,
	    sizeof(schema_params[0]), schema_cmp);
}

/* schema_check_hostname - RFC 1035 2.3.1 letters, digits, '-' and dots */
static int
schema_check_hostname(const char *v, char **error_r)
{
	const char *p;
	size_t label = 0;

	for (p = v; *p != '\0'; p++) {
		if (*p == '.') {
			if (label == 0)
				goto bad;
			label = 0;
		} else if (isalnum((unsigned char)*p) || *p == '-' ||
		    *p == '_') {
			if (++label > 63)
				goto bad;
		} else
			goto bad;
	}
	if (p - v > 253 || v[0] == '-')
		goto bad;
	return 0;
bad:
	*error_r = xasprintf("\"%s\": not a valid host or domain name", v);
	return -1;
}

static int
schema_check_tls_protocol(const char *v, char **error_r)
{
	static const char *const ok[] = {
		"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3", NULL
	};
	size_t i;

	for (i = 0; ok[i] != NULL; i++)
		if (strcmp(v, ok[i]) == 0)
			return 0;
	*error_r = xasprintf("\"%s\": expected TLSv1, TLSv1.1, TLSv1.2 or "
	    "TLSv1.3", v);
	return -1;
}

static int
schema_check_tls_level(const char *v, char **error_r)
{
	if (strcmp(v, "none") == 0 || strcmp(v, "may") == 0 ||
	    strcmp(v, "encrypt") == 0)
		return 0;
	*error_r = xasprintf("\"%s\": expected none, may or encrypt", v);
	return -1;
}

/* check_word - v is one of words (NULL-terminated) */
static int check_word(const char *, const char *const *, const char *,
    char **);

static int
schema_check_milter_action(const char *v, char **error_r)
{
	static const char *const w[] = { "tempfail", "accept", "reject",
	    "quarantine", NULL };

	return check_word(v, w, "tempfail, accept, reject or quarantine",
	    error_r);
}

/*
 * schema_check_policy_filters - the policy listener runs only filters
 * that decide on the envelope without the message and without a loop of
 * their own: not "policy" (it would ask a policy server from a policy
 * server), not the content filters
 */
static int
schema_check_policy_filters(const char *v, char **error_r)
{
	static const char *const w[] = { "relay", "sender", "spf", NULL };
	char **tokens;
	size_t i, k, n;

	if (cf_tokenize(v, &tokens, &n, error_r) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		for (k = i + 1; k < n; k++)
			if (strcmp(tokens[i], tokens[k]) == 0) {
				*error_r = xasprintf("\"%s\" is listed twice",
				    tokens[i]);
				cf_tokens_free(&tokens);
				return -1;
			}
		if (check_word(tokens[i], w, "relay, sender or spf",
		    error_r) == -1) {
			cf_tokens_free(&tokens);
			return -1;
		}
	}
	cf_tokens_free(&tokens);
	return 0;
}

/* check_word - v is one of words (NULL-terminated) */
static int
check_word(const char *v, const char *const *words, const char *expect,
    char **error_r)
{
	for (; *words != NULL; words++)
		if (strcmp(v, *words) == 0)
			return 0;
	*error_r = xasprintf("\"%s\": expected %s", v, expect);
	return -1;
}

static int
schema_check_result_action(const char *v, char **error_r)
{
	static const char *const w[] = {
		"reject", "tempfail", "hold", "accept", NULL };

	return check_word(v, w, "reject, tempfail, hold or accept", error_r);
}

static int
schema_check_egress_action(const char *v, char **error_r)
{
	static const char *const w[] = { "warn", "hold", "reject", NULL };

	return check_word(v, w, "warn, hold or reject", error_r);
}

static int
schema_check_mismatch_action(const char *v, char **error_r)
{
	static const char *const w[] = {
		"reject", "hold", "warn", "ignore", NULL };

	return check_word(v, w, "reject, hold, warn or ignore", error_r);
}

static int
schema_check_sign_failure(const char *v, char **error_r)
{
	static const char *const w[] = { "accept", "tempfail", NULL };

	return check_word(v, w, "accept or tempfail", error_r);
}

/* schema_check_canon - "header/body" or one for both (DKIM c=) */
static int
schema_check_canon(const char *v, char **error_r)
{
	static const char *const w[] = {
		"relaxed", "simple", "relaxed/relaxed", "relaxed/simple",
		"simple/relaxed", "simple/simple", NULL };

	return check_word(v, w, "relaxed/relaxed, relaxed/simple, "
	    "simple/relaxed or simple/simple", error_r);
}

/*
 * schema_check_texthash - DKIM's signing and key tables keep every line
 * in file order (dual signing), which only a flat file gives
 */
static int
schema_check_texthash(const char *v, char **error_r)
{
	if (strncmp(v, "texthash:/", 10) == 0)
		return 0;
	*error_r = xasprintf("\"%s\": expected texthash:/absolute/path", v);
	return -1;
}

/* schema_parse_port - a decimal port 1..65535 */
static int
schema_parse_port(const char *s)
{
	char *end;
	long port;

	if (!isdigit((unsigned char)*s))
		return -1;
	port = strtol(s, &end, 10);
	if (*end != '\0' || port < 1 || port > 65535)
		return -1;
	return (int)port;
}

/* schema_check_dns_resolver - "IP" or "IP@PORT" (unbound's forwarder syntax) */
static int
schema_check_dns_resolver(const char *v, char **error_r)
{
	unsigned char addr[sizeof(struct in6_addr)];
	const char *at = strchr(v, '@');
	char *ip;
	int ok;

	ip = at != NULL ? xstrndup(v, (size_t)(at - v)) : xstrdup(v);
	ok = inet_pton(AF_INET, ip, addr) == 1 ||
	    inet_pton(AF_INET6, ip, addr) == 1;
	free(ip);
	if (!ok) {
		*error_r = xasprintf("\"%s\": expected IP or IP@PORT with a "
		    "numeric IP address", v);
		return -1;
	}
	if (at != NULL && schema_parse_port(at + 1) == -1) {
		*error_r = xasprintf("\"%s\": bad port after '@'", v);
		return -1;
	}
	return 0;
}

/*
 * schema_check_local_transport - only "maildir:/absolute/base" for now;
 * other local transports (lmtp) come with later issues.
 */
static int
schema_check_local_transport(const char *v, char **error_r)
{
	if (strncmp(v, "maildir:", 8) != 0) {
		*error_r = xasprintf("\"%s\": unsupported transport (only "
		    "maildir:/path is supported)", v);
		return -1;
	}
	if (v[8] != '/') {
		*error_r = xasprintf("\"%s\": the maildir base must be an "
		    "absolute path", v);
		return -1;
	}
	return 0;
}

/* schema_store_int - write n into an int or size_t field */
static void
schema_store_int(const struct schema_param *p, struct config *cfg,
    long long n)
{
	char *field = (char *)cfg + p->offset;

	if (p->size == sizeof(int)) {
		int v = (int)n;

		memcpy(field, &v, sizeof(v));
	} else {
		size_t v = (size_t)n;

		memcpy(field, &v, sizeof(v));
	}
}

static long long
schema_load_int(const struct schema_param *p, const struct config *cfg)
{
	const char *field = (const char *)cfg + p->offset;

	if (p->size == sizeof(int)) {
		int v;

		memcpy(&v, field, sizeof(v));
		return v;
	} else {
		size_t v;

		memcpy(&v, field, sizeof(v));
		return (long long)v;
	}
}

/* schema_parse_count - a plain non-negative decimal number */
static int
schema_parse_count(const char *v, long long *n_r)
{
	size_t n;

	if (config_parse_size(v, &n) == -1 || n > LLONG_MAX)
		return -1;
	*n_r = (long long)n;
	return 0;
}

/* schema_parse_listen - "kind/host:port" into spec */
static int
schema_parse_listen(const char *tok, struct listen_spec *spec,
    char **error_r)
{
	static const struct {
		const char *name;
		enum listener_kind kind;
	} kinds[] = {
		{ "smtp", LISTENER_SMTP },
		{ "submission", LISTENER_SUBMISSION },
		{ "smtps", LISTENER_SMTPS },
		{ "policy", LISTENER_POLICY },
	};
	const char *slash, *hp, *hend, *colon;
	size_t i;
	bool found = false;

	memset(spec, 0, sizeof(*spec));
	if ((slash = strchr(tok, '/')) == NULL) {
		*error_r = xasprintf("\"%s\": expected kind/host:port", tok);
		return -1;
	}
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strlen(kinds[i].name) == (size_t)(slash - tok) &&
		    strncmp(kinds[i].name, tok, (size_t)(slash - tok)) == 0) {
			spec->kind = kinds[i].kind;
			found = true;
		}
	if (!found) {
		*error_r = xasprintf("\"%s\": unknown listener kind (expected "
		    "smtp, submission, smtps or policy)", tok);
		return -1;
	}
	hp = slash + 1;
	if (*hp == '[') {
		hp++;
		if ((hend = strchr(hp, ']')) == NULL || hend[1] != ':') {
			*error_r = xasprintf("\"%s\": expected [address]:port",
			    tok);
			return -1;
		}
		colon = hend + 1;
	} else {
		colon = strrchr(hp, ':');
		hend = colon;
		if (colon != NULL && memchr(hp, ':', (size_t)(colon - hp))) {
			*error_r = xasprintf("\"%s\": write IPv6 addresses in "
			    "brackets: [::1]:25", tok);
			return -1;
		}
	}
	if (colon == NULL || hend == hp) {
		*error_r = xasprintf("\"%s\": expected kind/host:port", tok);
		return -1;
	}
	if (schema_parse_port(colon + 1) == -1) {
		*error_r = xasprintf("\"%s\": bad port", tok);
		return -1;
	}
	spec->host = xstrndup(hp, (size_t)(hend - hp));
	spec->port = xstrdup(colon + 1);
	return 0;
}

/*
 * schema_parse_nexthop - "[host]:port", "[host]", "host:port", "host";
 * brackets mean "no MX lookup" as in Postfix's relayhost.
 */
static int
schema_parse_nexthop(const char *v, struct nexthop *nh, char **error_r)
{
	const char *h = v, *hend, *port = NULL;

	if (*h == '[') {
		h++;
		if ((hend = strchr(h, ']')) == NULL) {
			*error_r = xasprintf("\"%s\": missing ']'", v);
			return -1;
		}
		if (hend[1] == ':')
			port = hend + 2;
		else if (hend[1] != '\0') {
			*error_r = xasprintf("\"%s\": garbage after ']'", v);
			return -1;
		}
		nh->use_mx = false;
	} else {
		hend = strchr(h, ':');
		if (hend != NULL && strchr(hend + 1, ':') != NULL) {
			*error_r = xasprintf("\"%s\": write IPv6 addresses in "
			    "brackets: [2001:db8::1]:25", v);
			return -1;
		}
		if (hend != NULL)
			port = hend + 1;
		else
			hend = h + strlen(h);
		nh->use_mx = true;
	}
	if (hend == h || memchr(h, ' ', (size_t)(hend - h)) != NULL ||
	    memchr(h, '\t', (size_t)(hend - h)) != NULL) {
		*error_r = xasprintf("\"%s\": bad host", v);
		return -1;
	}
	if (port != NULL && schema_parse_port(port) == -1) {
		*error_r = xasprintf("\"%s\": bad port", v);
		return -1;
	}
	nh->host = xstrndup(h, (size_t)(hend - h));
	nh->port = xstrdup(port != NULL ? port : "25");
	return 0;
}

int
schema_set(const struct schema_param *p, struct config *cfg,
    const char *value, char **error_r)
{
	void *field = (char *)cfg + p->offset;
	long long n;
	int secs;
	size_t i, ntok;
	char **tokens;

	if ((p->flags & SCHEMA_F_NONEMPTY) && *value == '\0') {
		*error_r = xstrdup("must not be empty");
		return -1;
	}
	if ((p->flags & SCHEMA_F_ABSPATH) && *value != '\0' &&
	    *value != '/') {
		*error_r = xasprintf("\"%s\": must be an absolute path",
		    value);
		return -1;
	}
	switch (p->type) {
	case SCHEMA_STRING:
		if (p->check != NULL && *value != '\0' &&
		    p->check(value, error_r) == -1)
			return -1;
		*(char **)field = *value != '\0' ? xstrdup(value) : NULL;
		return 0;
	case SCHEMA_BOOL:
		if (strcasecmp(value, "yes") == 0)
			*(bool *)field = true;
		else if (strcasecmp(value, "no") == 0)
			*(bool *)field = false;
		else {
			*error_r = xasprintf("\"%s\": expected yes or no",
			    value);
			return -1;
		}
		return 0;
	case SCHEMA_SIZE:
	case SCHEMA_COUNT:
		if (schema_parse_count(value, &n) == -1) {
			*error_r = xasprintf("\"%s\": expected a number%s",
			    value, p->type == SCHEMA_SIZE ? " of bytes" : "");
			return -1;
		}
		if (n < p->min || n > p->max) {
			*error_r = xasprintf("%lld: out of range %lld..%lld",
			    n, p->min, p->max);
			return -1;
		}
		schema_store_int(p, cfg, n);
		return 0;
	case SCHEMA_TIME:
		if (config_parse_time(value, p->unit, &secs) == -1) {
			*error_r = xasprintf("\"%s\": expected a time "
			    "(a number with unit s, m, h, d or w)", value);
			return -1;
		}
		if (secs < p->min || secs > p->max) {
			*error_r = xasprintf("\"%s\": out of range %llds.."
			    "%llds", value, p->min, p->max);
			return -1;
		}
		*(int *)field = secs;
		return 0;
	case SCHEMA_DOMAIN_LIST:
	case SCHEMA_ADDRESS_LIST:
		*(struct matchlist **)field = matchlist_new(
		    p->type == SCHEMA_DOMAIN_LIST ? MATCHLIST_DOMAIN :
		    MATCHLIST_ADDRESS, value, error_r);
		return *(struct matchlist **)field != NULL ? 0 : -1;
	case SCHEMA_TABLE:
		if (*value == '\0')
			return 0;
		*(struct table **)field = table_open(value, error_r);
		return *(struct table **)field != NULL ? 0 : -1;
	case SCHEMA_LIST:
		if (p->check != NULL && p->check(value, error_r) == -1)
			return -1;
		if (cf_tokenize(value, &tokens, NULL, error_r) == -1)
			return -1;
		*(char ***)field = tokens;
		return 0;
	case SCHEMA_LISTEN:
		if (cf_tokenize(value, &tokens, &ntok, error_r) == -1)
			return -1;
		cfg->listen = xcalloc(ntok, sizeof(*cfg->listen));
		for (i = 0; i < ntok; i++) {
			if (schema_parse_listen(tokens[i], &cfg->listen[i],
			    error_r) == -1) {
				cf_tokens_free(&tokens);
				return -1;
			}
			cfg->nlisten++;
		}
		cf_tokens_free(&tokens);
		return 0;
	case SCHEMA_NEXTHOP:
		if (*value == '\0') {
			cfg->relayhost.host = NULL;
			cfg->relayhost.port = xstrdup("25");
			cfg->relayhost.use_mx = false;
			return 0;
		}
		return schema_parse_nexthop(value, field, error_r);
	}
	*error_r = xstrdup("internal error: unknown parameter type");
	return -1;
}

void
schema_clear(const struct schema_param *p, struct config *cfg)
{
	void *field = (char *)cfg + p->offset;
	struct nexthop *nh;
	size_t i;

	switch (p->type) {
	case SCHEMA_STRING:
		free(*(char **)field);
		*(char **)field = NULL;
		break;
	case SCHEMA_DOMAIN_LIST:
	case SCHEMA_ADDRESS_LIST:
		matchlist_free(field);
		break;
	case SCHEMA_TABLE:
		table_free(field);
		break;
	case SCHEMA_LIST:
		cf_tokens_free(field);
		break;
	case SCHEMA_LISTEN:
		for (i = 0; i < cfg->nlisten; i++) {
			free(cfg->listen[i].host);
			free(cfg->listen[i].port);
		}
		free(cfg->listen);
		cfg->listen = NULL;
		cfg->nlisten = 0;
		break;
	case SCHEMA_NEXTHOP:
		nh = field;
		free(nh->host);
		free(nh->port);
		nh->host = nh->port = NULL;
		break;
	case SCHEMA_BOOL:
	case SCHEMA_SIZE:
	case SCHEMA_COUNT:
	case SCHEMA_TIME:
		break;
	}
}

static const char *
schema_listener_name(enum listener_kind kind)
{
	switch (kind) {
	case LISTENER_SMTP:
		return "smtp";
	case LISTENER_SUBMISSION:
		return "submission";
	case LISTENER_SMTPS:
		return "smtps";
	case LISTENER_POLICY:
		return "policy";
	}
	return "?";
}

/* schema_format_time - in the row's own unit when exact, else seconds */
static void
schema_format_time(const struct schema_param *p, int secs,
    struct buf *out)
{
	int unit = 1;

	switch (p->unit) {
	case 'm':
		unit = 60;
		break;
	case 'h':
		unit = 3600;
		break;
	case 'd':
		unit = 86400;
		break;
	case 'w':
		unit = 7 * 86400;
		break;
	}
	if (unit > 1 && secs % unit == 0)
		buf_printf(out, "%d%c", secs / unit, p->unit);
	else
		buf_printf(out, "%ds", secs);
}

void
schema_format(const struct schema_param *p, const struct config *cfg,
    struct buf *out)
{
	const void *field = (const char *)cfg + p->offset;
	const struct nexthop *nh;
	const char *s;
	char *const *list;
	size_t i;

	switch (p->type) {
	case SCHEMA_STRING:
		s = *(char *const *)field;
		buf_append_str(out, s != NULL ? s : "");
		break;
	case SCHEMA_BOOL:
		buf_append_str(out, *(const bool *)field ? "yes" : "no");
		break;
	case SCHEMA_SIZE:
	case SCHEMA_COUNT:
		buf_printf(out, "%lld", schema_load_int(p, cfg));
		break;
	case SCHEMA_TIME:
		schema_format_time(p, *(const int *)field, out);
		break;
	case SCHEMA_DOMAIN_LIST:
	case SCHEMA_ADDRESS_LIST:
		if (*(struct matchlist *const *)field != NULL)
			buf_append_str(out, matchlist_text(
			    *(struct matchlist *const *)field));
		break;
	case SCHEMA_TABLE:
		if (*(struct table *const *)field != NULL)
			buf_append_str(out, table_spec(
			    *(struct table *const *)field));
		break;
	case SCHEMA_LIST:
		list = *(char **const *)field;
		for (i = 0; list != NULL && list[i] != NULL; i++)
			buf_printf(out, "%s%s", i > 0 ? ", " : "", list[i]);
		break;
	case SCHEMA_LISTEN:
		for (i = 0; i < cfg->nlisten; i++) {
			bool v6 = strchr(cfg->listen[i].host, ':') != NULL;

			buf_printf(out, "%s%s/%s%s%s:%s", i > 0 ? " " : "",
			    schema_listener_name(cfg->listen[i].kind),
			    v6 ? "[" : "", cfg->listen[i].host, v6 ? "]" : "",
			    cfg->listen[i].port);
		}
		break;
	case SCHEMA_NEXTHOP:
		nh = field;
		if (nh->host == NULL)
			break;
		buf_printf(out, "%s%s%s:%s", nh->use_mx ? "" : "[", nh->host,
		    nh->use_mx ? "" : "]", nh->port);
		break;
	}
}

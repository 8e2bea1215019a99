/*
 * config.h - the loaded configuration: an immutable, reference-counted
 * snapshot of main.cf.
 *
 * A session takes a reference when it starts and keeps that configuration
 * for its whole life; a reload builds a new one and swaps the global
 * pointer (config_current). Nothing here is ever modified after
 * config_load() returns.
 *
 * Parameter names and meanings follow Postfix wherever a Postfix parameter
 * means the same thing (doc/configuration.md lists them all).
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_CONFIG_H
#define POSTERN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>

#include "table.h"
#include "matchlist.h"

enum listener_kind {
	LISTENER_SMTP,		/* port 25 style: STARTTLS offered */
	LISTENER_SUBMISSION,	/* RFC 6409: STARTTLS before AUTH and MAIL */
	LISTENER_SMTPS,		/* RFC 8314 implicit TLS */
	LISTENER_POLICY,	/* Postfix policy delegation server */
};

struct listen_spec {
	enum listener_kind kind;
	char	*host;		/* owned; numeric address or name */
	char	*port;		/* owned */
};

/* a next hop written as [host]:port (no MX lookup) or host:port (MX) */
struct nexthop {
	char	*host;		/* owned; NULL when unset */
	char	*port;		/* owned; "25" by default */
	bool	 use_mx;	/* false when written in brackets */
};

struct config {
	int	 refcount;	/* atomic; see config_ref */
	unsigned long generation;	/* which load made it: unique in
					   the process, unlike its address */
	char	*path;		/* owned; the file it came from */

	/* identity and routing */
	char	*myhostname;
	char	*mydomain;
	char	*myorigin;
	char	*smtpd_banner;
	struct matchlist *mydestination;	/* owned; domains */
	struct matchlist *relay_domains;	/* owned; domains */
	struct matchlist *mynetworks;		/* owned; addresses */
	struct nexthop relayhost;
	char	*local_transport;	/* "maildir:/base" */
	char	*maildir_base;		/* derived from local_transport */
	char	*dns_resolver;		/* "IP@PORT" or NULL: system resolver */
	char	*mail_owner;		/* user to run as after binding */
	char	*queue_directory;

	/* listeners */
	struct listen_spec *listen;	/* owned array */
	size_t	 nlisten;
	/* the policy listener (daemon/policy_server.c) */
	struct matchlist *policy_listen_clients;	/* owned; addresses */
	char	**policy_listen_filters;	/* owned, NULL-terminated */
	int	 policy_listen_idle_timeout;	/* seconds */
	int	 policy_listen_max_connections;	/* all policy listeners */

	/* TLS (server side) */
	char	*smtpd_tls_cert_file;
	char	*smtpd_tls_key_file;
	char	*smtpd_tls_protocols_min;	/* "TLSv1.2" */
	char	*smtpd_tls_ciphers;		/* OpenSSL list, TLS <= 1.2 */
	bool	 smtpd_tls_auth_only;		/* AUTH only after STARTTLS */
	/* TLS (client side) */
	char	*smtp_tls_security_level;	/* none, may, encrypt */

	/* AUTH */
	struct table *smtpd_sasl_password_maps;	/* owned; user -> crypt hash */

	/* filters, in chain order */
	char	**smtpd_filters;	/* owned, NULL-terminated */
	char	*authserv_id;		/* Authentication-Results id */

	/* regex content rules (filters/regex.c) */
	struct table *header_checks;		/* owned */
	struct table *mime_header_checks;	/* owned */
	struct table *nested_header_checks;	/* owned */
	struct table *body_checks;		/* owned */
	struct table *attachment_checks;	/* owned */
	size_t	 body_checks_size_limit;	/* per MIME part */

	/* sender identity (policies/sender.c) */
	struct table *smtpd_sender_login_maps;	/* owned */
	char	*header_from_login_mismatch;	/* reject hold warn ignore */

	/* SPF (filters/spf.c) */
	char	*spf_fail_action;	/* reject tempfail hold accept */
	char	*spf_softfail_action;
	char	*spf_permerror_action;
	char	*spf_temperror_action;
	char	**spf_egress_addresses;		/* owned, NULL-terminated */
	char	*spf_egress_action;		/* warn hold reject */
	char	*spf_helper_path;		/* NULL: beside posternd */
	int	 spf_helper_limit;
	int	 spf_timeout;

	/* Postfix policy services (policies/policy_client.c) */
	char	**smtpd_policy_services;	/* owned; inet:h:p or unix:/p */
	int	 smtpd_policy_service_timeout;	/* per request, seconds */
	int	 smtpd_policy_service_max_idle;	/* idle connection kept */
	int	 smtpd_policy_service_max_ttl;	/* connection reused for */
	int	 smtpd_policy_service_try_limit;
	char	*smtpd_policy_service_default_action;	/* when it fails */
	bool	 smtpd_policy_service_end_of_data;	/* also at EOM */

	/* external milters (filters/milter.c) */
	char	**smtpd_milters;	/* owned; inet:h:p, unix:/p, { ... } */
	int	 milter_connect_timeout;	/* seconds */
	int	 milter_command_timeout;
	int	 milter_content_timeout;
	char	*milter_default_action;	/* tempfail accept reject quarantine */
	int	 milter_protocol;		/* 2..6 offered */
	char	*milter_macro_daemon_name;	/* {daemon_name} */
	char	*milter_connect_macros;		/* space separated names */
	char	*milter_helo_macros;
	char	*milter_mail_macros;
	char	*milter_rcpt_macros;
	char	*milter_data_macros;
	char	*milter_end_of_header_macros;
	char	*milter_end_of_data_macros;

	/* DKIM (filters/dkim.c) */
	char	*dkim_signing_table;		/* "texthash:/path" */
	char	*dkim_key_table;
	char	*dkim_canonicalization;		/* "relaxed/relaxed" */
	char	**dkim_signed_headers;		/* NULL: the default list */
	char	**dkim_oversigned_headers;
	char	*dkim_sign_failure_action;	/* accept tempfail */
	bool	 dkim_verify;
	int	 dkim_dns_timeout;

	/* limits (bytes, counts) */
	size_t	 message_size_limit;
	size_t	 smtpd_recipient_limit;
	size_t	 smtpd_line_length_limit;	/* RFC 5321 4.5.3.1.4 */
	size_t	 line_length_limit;		/* text line in DATA */
	size_t	 header_size_limit;		/* whole header block */
	size_t	 header_count_limit;
	int	 smtpd_soft_error_limit;
	int	 smtpd_hard_error_limit;
	int	 smtpd_client_connection_count_limit;	/* per client IP */
	int	 smtpd_max_connections;			/* all clients */
	int	 smtpd_auth_failure_limit;		/* per session */

	/* timeouts (seconds) */
	int	 smtpd_timeout;			/* per command */
	int	 smtpd_data_timeout;		/* whole DATA/BDAT phase */
	int	 smtpd_starttls_timeout;
	int	 smtp_connect_timeout;
	int	 smtp_helo_timeout;
	int	 smtp_data_timeout;		/* per write during DATA */
	int	 smtp_command_timeout;
	int	 smtp_connection_cache_time_limit;

	/* queue (seconds) */
	int	 queue_run_delay;
	int	 minimal_backoff_time;
	int	 maximal_backoff_time;
	int	 maximal_queue_lifetime;
	int	 bounce_queue_lifetime;
	int	 default_destination_concurrency_limit;
	int	 qmgr_message_active_limit;

	/* threads */
	int	 loop_threads;			/* 0: one per core */
	int	 worker_threads;		/* 0: two per core */
	int	 filter_threads;		/* 0: eight per core */

	char	*debug_subsystems;
};

/*
 * config_load - parse the file at path. Returns a configuration with one
 * reference, or NULL with *error_r set to "path:line: what is wrong" (a
 * static or thread-local string, valid until the next call).
 */
struct config *config_load(const char *path, const char **error_r);
void	config_ref(struct config *);
void	config_unref(struct config **);
/* config_print - write every parameter with its effective value (-P) */
void	config_print(const struct config *, FILE *);

/*
 * config_current / config_swap - the configuration new sessions use.
 * config_current returns a new reference the caller must unref.
 * config_swap takes over the caller's reference and drops the old one.
 */
struct config *config_current(void);
void	config_swap(struct config *);

/*
 * config_parse_time - Postfix time values: "30s", "5m", "4h", "5d", "1w";
 * a bare number is in default_unit
 */
int	config_parse_time(const char *, char default_unit, int *seconds_r);
/* parse_size - plain byte count */
int	config_parse_size(const char *, size_t *bytes_r);

#endif

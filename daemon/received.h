/*
 * received.h - the Received: trace header we prepend to each message
 * (RFC 5321 section 4.4, RFC 5322 section 3.6.7).
 *
 * The form is Postfix's, which log tools and humans already read:
 *
 *   Received: from helo.example (client.example [192.0.2.7])
 *   	(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))
 *   	by relay.example.test (Postern) with ESMTPSA id 4bKx7Q2mVZz9
 *   	for <bob@example.net>; Tue, 14 May 2024 10:00:00 +0200
 *
 * IPv6 clients are written "[IPv6:2001:db8::1]", as RFC 5321 4.1.3
 * address literals and as Postfix writes them (smtpd_peer.c, rfc_addr).
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_RECEIVED_H
#define POSTERN_RECEIVED_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "buf.h"

/* Hard limits on each field; longer values are cut (see received.c). */
#define RECEIVED_NAME_MAX	255	/* RFC 5321 4.5.3.1.2 */
#define RECEIVED_ADDR_MAX	64
#define RECEIVED_TOKEN_MAX	64	/* queue id, TLS version and cipher */
#define RECEIVED_RCPT_MAX	512

/* Everything is borrowed for the duration of the received_build() call. */
struct received_info {
	const char	*helo;		/* HELO/EHLO argument, NULL if none */
	const char	*client_name;	/* verified PTR name, NULL: "unknown" */
	const char	*client_addr;	/* "192.0.2.7", "2001:db8::1" */
	const char	*by;		/* myhostname */
	bool		 esmtp;		/* EHLO (else HELO) */
	bool		 tls;		/* TLS active */
	bool		 auth;		/* AUTH succeeded */
	bool		 smtputf8;	/* MAIL ... SMTPUTF8 (RFC 6531) */
	const char	*tls_version;	/* "TLSv1.3"; used if tls */
	const char	*tls_cipher;	/* "TLS_AES_256_GCM_SHA384" */
	int		 tls_bits;	/* secret bits used */
	int		 tls_alg_bits;	/* bits of the algorithm */
	const char	*queue_id;
	const char	*rcpt;		/* the recipient, used if nrcpt == 1 */
	size_t		 nrcpt;
	time_t		 date;		/* arrival; written in local time */
};

/*
 * received_protocol - the "with" keyword: SMTP or ESMTP plus S (TLS) and
 * A (AUTH) per RFC 3848, or the UTF8SMTP family of RFC 6531 section
 * 3.7.3 for SMTPUTF8 transactions. Static string.
 */
const char *received_protocol(const struct received_info *);

/*
 * received_build - append the complete header field, ending in CRLF and
 * folded with CRLF TAB, to out. Client-supplied text is sanitized: bytes
 * that are not printable ASCII become '?' (UTF-8 is kept in the recipient
 * of an SMTPUTF8 transaction), as do characters that would end the
 * surrounding comment or angle brackets. Lines stay within 78 characters
 * where the words allow and never exceed 998 (the field limits above).
 * Returns 0, or -1 if out's cap was reached (out is then left as it was).
 */
int	received_build(struct buf *out, const struct received_info *);

/*
 * received_date - RFC 5322 3.3 date-time of t in local time with numeric
 * zone, "Tue, 14 May 2024 10:00:00 +0200", into out (size n >= 32).
 * Locale-independent. Returns out.
 */
char	*received_date(time_t t, char *out, size_t n);

#endif

/*
 * dkim_sign.h - a DKIM signer of our own (RFC 6376, RFC 8463) on OpenSSL.
 *
 * Why not libopendkim: it re-parses the private key on every message (most
 * of its cost), leaks about 1.3 KB per ed25519 signature and aborts on
 * some bad arguments (notes/libraries.md 1.5, 1.6). Keys here are parsed
 * once per configuration load and shared read-only by every thread.
 *
 * For rsa-sha256 the DKIM-Signature value is byte for byte what
 * libopendkim 2.11 produces for the same message, key, header list and
 * time (t/unit/test_dkim_sign.c proves it).
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_DKIM_SIGN_H
#define POSTERN_DKIM_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct header_list;

enum sign_key_type {
	SIGN_KEY_RSA,		/* rsa-sha256 */
	SIGN_KEY_ED25519,	/* ed25519-sha256 (RFC 8463) */
};

enum sign_canon {
	SIGN_CANON_SIMPLE,
	SIGN_CANON_RELAXED,
};

/* a parsed private key; immutable, shared by threads */
struct sign_key;

/*
 * sign_key_load - read a private key file: PEM (PKCS#8 or PKCS#1) or
 * base64 DER. The type is read from the key. RSA keys under 1024 bits
 * are refused. NULL and *error_r (owned) on error.
 */
struct sign_key *sign_key_load(const char *path, char **error_r);
/* sign_key_parse - the same from text in memory */
struct sign_key *sign_key_parse(const char *text, size_t len, char **error_r);
void	sign_key_free(struct sign_key **);
enum sign_key_type sign_key_type(const struct sign_key *);
/* sign_key_bits - RSA modulus size; 256 for ed25519 */
unsigned sign_key_bits(const struct sign_key *);
/*
 * sign_key_dns_record - the TXT record to publish, owned:
 * "v=DKIM1; k=rsa; p=<base64 SPKI>" or "v=DKIM1; k=ed25519; p=<raw 32>"
 */
char	*sign_key_dns_record(const struct sign_key *);

struct signer_params {
	const struct sign_key *key;	/* borrowed */
	const char *domain;		/* d= */
	const char *selector;		/* s= */
	enum sign_canon header_canon;	/* relaxed by default */
	enum sign_canon body_canon;
	/*
	 * Header names to sign, in no particular order (case ignored);
	 * each present field is signed, bottom-up per name as RFC 6376
	 * 5.4.2 says. NULL: sign_default_headers.
	 */
	const char *const *sign_headers;
	/* names signed once more than they occur (oversigning); NULL: none */
	const char *const *oversign_headers;
	time_t	 timestamp;		/* t=; 0: now */
	long	 expire_after;		/* x= = t + this; 0: no x= */
	const char *identity;		/* i=; NULL: none */
};

/* the default list: libopendkim's should-sign list (RFC 6376 5.4) */
extern const char *const sign_default_headers[];

struct signer;

struct signer *signer_new(const struct signer_params *);
/*
 * signer_new_like - a signer with the body fed to model so far and p's
 * key, domain, selector and header choices (p's body_canon is ignored:
 * model's stands). With a signer made with key NULL as the model, the
 * body is hashed once and the keys chosen at the end (dual signing, a
 * From: changed by a filter).
 */
struct signer *signer_new_like(const struct signer *model,
	    const struct signer_params *p);
/* signer_body - the body, CRLF line ends, dot-unstuffed, any chunking */
void	signer_body(struct signer *, const void *chunk, size_t len);
/*
 * signer_finish - sign the header fields (header_list: fields with their
 * CRLF folding, as message_edit.h parses them). Returns the
 * DKIM-Signature field value without the "DKIM-Signature: " prefix,
 * folded with "\r\n\t" where libopendkim folds; owned. NULL and *error_r
 * (owned) when signing fails (no From field, OpenSSL error).
 */
char	*signer_finish(struct signer *, const struct header_list *,
	    char **error_r);
void	signer_free(struct signer **);

#endif

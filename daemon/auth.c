/*
 * auth.c - SASL PLAIN and LOGIN response decoding and the crypt(3)
 * password check for SMTP AUTH; see auth.h.
 *
 * Owns: nothing long-lived. Decoded credentials are handed to the caller;
 * scratch buffers that held secrets are wiped here before they are freed.
 * Leaves to others: the AUTH command syntax, the exchange's state, the
 * "AUTH only under TLS" rule and the failure rate limit (session code),
 * running the check off the event loop (worker pool), and the password
 * table format (config/table).
 *
 * RFC 4954 (SMTP AUTH): section 4 ("*" cancels, "=" is an empty response,
 * 501 on cancel and on undecodable responses), section 6 (500 5.5.6 for an
 * over-long exchange line, 535 5.7.8 for bad credentials).
 * RFC 4616 (PLAIN): message = [authzid] UTF8NUL authcid UTF8NUL passwd.
 * LOGIN is draft-murchison-sasl-login-00: the user name and the password
 * in two base64 responses to the "Username:" and "Password:" challenges.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <crypt.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth.h"
#include "base64.h"
#include "table.h"
#include "xmalloc.h"

/*
 * A yescrypt hash of a random string nobody knows, with the default cost
 * of libxcrypt and mkpasswd ("j9T"). Unknown users and unusable hashes are
 * checked against it so that they cost as much as a real user with a
 * yescrypt hash. XXX(#2): tables full of bcrypt hashes of another cost
 * still show a timing difference for unknown users.
 */
static const char auth_dummy_hash[] =
    "$y$j9T$eSUmTviB.6g58KUOy1qbE.$Wq1e4RVth4Wa4fsFK9izueNHUxOLjSmKr4OmkqXhV67";

const char *
auth_reply(enum auth_status st)
{
	switch (st) {
	case AUTH_OK:
		return "235 2.7.0 Authentication successful";
	case AUTH_CANCELLED:
		return "501 5.7.0 Authentication aborted";
	case AUTH_BAD_BASE64:
		return "501 5.5.2 Cannot decode response";
	case AUTH_TOO_LONG:
		return "500 5.5.6 Authentication Exchange line is too long";
	case AUTH_MALFORMED:
		return "501 5.5.2 Malformed authentication response";
	case AUTH_BAD_AUTHZID:
		return "535 5.7.8 Authentication credentials invalid";
	}
	return "501 5.5.2 Malformed authentication response";
}

const char *
auth_status_name(enum auth_status st)
{
	switch (st) {
	case AUTH_OK:
		return "ok";
	case AUTH_CANCELLED:
		return "cancelled";
	case AUTH_BAD_BASE64:
		return "bad base64";
	case AUTH_TOO_LONG:
		return "too long";
	case AUTH_MALFORMED:
		return "malformed";
	case AUTH_BAD_AUTHZID:
		return "authzid not allowed";
	}
	return "unknown";
}

void
auth_wipe(char **s)
{
	if (*s == NULL)
		return;
	explicit_bzero(*s, strlen(*s));
	free(*s);
	*s = NULL;
}

void
auth_creds_deinit(struct auth_creds *c)
{
	if (c == NULL)
		return;
	free(c->user);
	c->user = NULL;
	auth_wipe(&c->password);
}

/*
 * The user name is shown in logs and looked up in a text table: it must
 * be well-formed UTF-8 (RFC 4616 section 2: UTF8SAFE) without control
 * characters, which would forge log lines or table keys.
 */
bool
auth_user_is_valid(const char *user, size_t n)
{
	const unsigned char *s = (const unsigned char *)user;
	size_t i, k, more;
	unsigned int cp, min;

	if (n == 0)
		return false;
	for (i = 0; i < n; i++) {
		if (s[i] < 0x80) {
			if (s[i] < 0x20 || s[i] == 0x7f)
				return false;
			continue;
		}
		if ((s[i] & 0xe0) == 0xc0) {
			more = 1;
			cp = s[i] & 0x1f;
			min = 0x80;
		} else if ((s[i] & 0xf0) == 0xe0) {
			more = 2;
			cp = s[i] & 0x0f;
			min = 0x800;
		} else if ((s[i] & 0xf8) == 0xf0) {
			more = 3;
			cp = s[i] & 0x07;
			min = 0x10000;
		} else
			return false;
		if (n - i - 1 < more)
			return false;
		for (k = 1; k <= more; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		/* Overlong forms, surrogates, beyond Unicode, C1 controls. */
		if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) ||
		    cp > 0x10ffff || (cp >= 0x80 && cp <= 0x9f))
			return false;
		i += more;
	}
	return true;
}

/*
 * decode_response - the steps common to both mechanisms: "*" cancels,
 * the length limit, base64. On AUTH_OK *out is a heap buffer of *outlen
 * bytes plus a NUL, which the caller must wipe and free.
 */
static enum auth_status
decode_response(const char *line, size_t len, unsigned char **out,
    size_t *outlen)
{
	unsigned char *raw;

	*out = NULL;
	*outlen = 0;
	if (len == 1 && line[0] == '*')
		return AUTH_CANCELLED;
	if (len > AUTH_MAX_LINE)
		return AUTH_TOO_LONG;
	/* RFC 4954 section 4: "=" is an empty initial response. */
	if (len == 1 && line[0] == '=')
		len = 0;
	raw = xmalloc(BASE64_DECODED_MAX(len) + 1);
	if (base64_decode(line, len, raw, BASE64_DECODED_MAX(len),
	    outlen) == -1) {
		explicit_bzero(raw, BASE64_DECODED_MAX(len) + 1);
		free(raw);
		*outlen = 0;
		return AUTH_BAD_BASE64;
	}
	if (*outlen > AUTH_MAX_DECODED) {
		/* AUTH_MAX_LINE rounds up to whole base64 groups. */
		explicit_bzero(raw, *outlen);
		free(raw);
		*outlen = 0;
		return AUTH_TOO_LONG;
	}
	raw[*outlen] = '\0';
	*out = raw;
	return AUTH_OK;
}

enum auth_status
auth_plain_decode(const char *line, size_t len, struct auth_creds *creds)
{
	unsigned char *raw, *authcid, *passwd, *nul;
	size_t rawlen, zlen, clen, plen;
	enum auth_status st;

	creds->user = NULL;
	creds->password = NULL;
	if ((st = decode_response(line, len, &raw, &rawlen)) != AUTH_OK)
		return st;

	st = AUTH_MALFORMED;
	/* [authzid] NUL authcid NUL passwd: exactly two NULs. */
	if ((nul = memchr(raw, '\0', rawlen)) == NULL)
		goto out;
	zlen = nul - raw;
	authcid = nul + 1;
	if ((nul = memchr(authcid, '\0', rawlen - zlen - 1)) == NULL)
		goto out;
	clen = nul - authcid;
	passwd = nul + 1;
	plen = rawlen - zlen - 1 - clen - 1;
	if (memchr(passwd, '\0', plen) != NULL || plen == 0)
		goto out;
	if (!auth_user_is_valid((char *)authcid, clen))
		goto out;
	/*
	 * RFC 4616 section 2: the authzid is who the client wants to act
	 * as. We authorize nobody to act as someone else, so it must be
	 * absent or the authcid itself (some clients always send it).
	 */
	if (zlen != 0 && (zlen != clen || memcmp(raw, authcid, clen) != 0)) {
		st = AUTH_BAD_AUTHZID;
		goto out;
	}
	creds->user = xstrndup((char *)authcid, clen);
	creds->password = xstrndup((char *)passwd, plen);
	st = AUTH_OK;
out:
	explicit_bzero(raw, rawlen + 1);
	free(raw);
	return st;
}

enum auth_status
auth_login_decode(const char *line, size_t len, char **value_r)
{
	unsigned char *raw;
	size_t rawlen;
	enum auth_status st;

	*value_r = NULL;
	if ((st = decode_response(line, len, &raw, &rawlen)) != AUTH_OK)
		return st;
	if (rawlen == 0 || memchr(raw, '\0', rawlen) != NULL) {
		explicit_bzero(raw, rawlen + 1);
		free(raw);
		return AUTH_MALFORMED;
	}
	/* raw is NUL-terminated and NUL-free: hand it over as it is. */
	*value_r = (char *)raw;
	return AUTH_OK;
}

/*
 * hash_allowed - only the hashes DESIGN.md names. DES and MD5 crypt are
 * too weak to protect a relay; "!" and "*" are how passwd files lock and
 * disable accounts, and crypt_rn would only fail on them anyway.
 */
static bool
hash_allowed(const char *hash)
{
	static const char *const prefixes[] = {
		"$y$", "$2b$", "$2y$", "$2a$", "$6$",
	};
	size_t i;

	for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (strncmp(hash, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	return false;
}

/*
 * crypt_matches - hash password with the setting of hash and compare the
 * result in constant time. The crypt_data (about 32 KB, too big for the
 * stacks of worker threads) holds derived secrets and is wiped.
 */
static bool
crypt_matches(const char *hash, const char *password)
{
	struct crypt_data *cd;
	const char *res;
	size_t hlen;
	bool match = false;

	cd = xcalloc(1, sizeof(*cd));
	res = crypt_rn(password, hash, cd, sizeof(*cd));
	hlen = strlen(hash);
	/* Lengths are not secret: they follow from the hash method. */
	if (res != NULL && strlen(res) == hlen &&
	    CRYPTO_memcmp(res, hash, hlen) == 0)
		match = true;
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return match;
}

bool
auth_check_hash(const char *hash, const char *password)
{
	if (hash == NULL || !hash_allowed(hash) || password == NULL ||
	    password[0] == '\0') {
		/* Same cost as a real check; the result is ignored. */
		(void)crypt_matches(auth_dummy_hash,
		    password != NULL ? password : "");
		return false;
	}
	return crypt_matches(hash, password);
}

/*
 * extract_hash - the first white-space separated word of a table value,
 * tolerating a leading ':' and white space (a "user : hash" line whose
 * key the table ended at the white space). Returns a new string or NULL.
 */
static char *
extract_hash(const char *value)
{
	const char *p, *end;

	p = value;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == ':')
		p++;
	while (*p == ' ' || *p == '\t')
		p++;
	end = p;
	while (*end != '\0' && *end != ' ' && *end != '\t')
		end++;
	if (end == p)
		return NULL;
	return xstrndup(p, end - p);
}

bool
auth_check_password(const struct table *users, const char *user,
    const char *password)
{
	const char *value = NULL;
	char *key, *hash = NULL;
	bool match;

	/* A LOGIN user name reaches us unchecked: treat junk as unknown. */
	if (users != NULL && user != NULL &&
	    auth_user_is_valid(user, strlen(user))) {
		value = table_lookup(users, user);
		if (value == NULL) {
			/*
			 * A table that ends keys only at white space keeps
			 * the colon of "user: hash" in the key.
			 */
			key = xasprintf("%s:", user);
			value = table_lookup(users, key);
			free(key);
		}
	}
	if (value != NULL)
		hash = extract_hash(value);
	/* hash NULL (unknown user) still pays for the dummy hash. */
	match = auth_check_hash(hash, password);
	free(hash);
	return match;
}

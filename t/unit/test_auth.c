/*
 * test_auth.c - unit tests for daemon/base64.c and daemon/auth.c: strict
 * base64, SASL PLAIN and LOGIN decoding, the crypt(3) password check and
 * the password table lookup.
 *
 * Hashes are made here with crypt_gensalt_rn/crypt_rn, and once with
 * mkpasswd(1) (package whois) as an independent producer.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <crypt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "base64.h"
#include "buf.h"
#include "table.h"
#include "tap.h"
#include "xmalloc.h"

#define RAW(s)	s, sizeof(s) - 1

/* encode - base64 of n bytes, as a new string */
static char *
encode(const void *p, size_t n)
{
	struct buf b;

	buf_init(&b, 0);
	base64_encode(&b, p, n);
	return buf_steal(&b);
}

/* prompt_text - decoded text of a "334 base64" prompt (static buffer) */
static const char *
prompt_text(const char *prompt)
{
	static unsigned char out[64];
	const char *b64 = &prompt[4];
	size_t outlen;

	if (strncmp(prompt, "334 ", 4) != 0 ||
	    base64_decode(b64, strlen(b64), out, sizeof(out) - 1,
	    &outlen) != 0)
		return "(bad prompt)";
	out[outlen] = '\0';
	return (const char *)out;
}

static const struct b64_case {
	const char	*name;
	const char	*in;
	int		 want_rc;
	const char	*want;		/* decoded text when want_rc == 0 */
} b64_cases[] = {
	{ "empty", "", 0, "" },
	{ "one byte", "YQ==", 0, "a" },
	{ "two bytes", "YWI=", 0, "ab" },
	{ "three bytes", "YWJj", 0, "abc" },
	{ "alice", "YWxpY2U=", 0, "alice" },
	{ "length not multiple of 4", "YWJjZA", -1, NULL },
	{ "padding in the middle", "YQ==YWJj", -1, NULL },
	{ "three pads", "Y===", -1, NULL },
	{ "only pads", "====", -1, NULL },
	{ "pad then data", "YW=j", -1, NULL },
	{ "non-canonical bits, 1 pad", "YWJ=", -1, NULL },
	{ "non-canonical bits, 2 pads", "YR==", -1, NULL },
	{ "space", "YWJj YWJj", -1, NULL },
	{ "newline", "YWJj\nYWJj", -1, NULL },
	{ "url-safe alphabet", "-_-_", -1, NULL },
	{ "bad char", "YW!j", -1, NULL },
};

static void
test_base64(void)
{
	unsigned char out[64];
	size_t i, outlen;
	int rc;
	char *enc;

	for (i = 0; i < sizeof(b64_cases) / sizeof(b64_cases[0]); i++) {
		const struct b64_case *c = &b64_cases[i];

		rc = base64_decode(c->in, strlen(c->in), out, sizeof(out),
		    &outlen);
		is_int(rc, c->want_rc, "base64 decode: %s", c->name);
		if (rc != 0 || c->want_rc != 0)
			continue;
		out[outlen] = '\0';
		is_str((char *)out, c->want, "base64 decode value: %s",
		    c->name);
		enc = encode(c->want, strlen(c->want));
		is_str(enc, c->in, "base64 round trip: %s", c->name);
		free(enc);
	}
	/* The output size is honoured. */
	rc = base64_decode("YWJj", 4, out, 2, &outlen);
	is_int(rc, -1, "base64 decode: output too small");
	/* An encoder honours a capped buffer and leaves it unchanged. */
	{
		struct buf b;

		buf_init(&b, 6);
		buf_append_str(&b, "x");
		is_int(base64_encode(&b, "abcdef", 6), -1,
		    "base64 encode: cap reached");
		is_str(buf_cstr(&b), "x", "base64 encode: buffer unchanged");
		buf_deinit(&b);
	}
	/* The LOGIN prompts are what the draft says. */
	is_str(prompt_text(AUTH_LOGIN_PROMPT_USER), "Username:",
	    "LOGIN user prompt");
	is_str(prompt_text(AUTH_LOGIN_PROMPT_PASS), "Password:",
	    "LOGIN password prompt");
}

/*
 * PLAIN cases: raw is encoded by the test unless line is given, which is
 * then sent as it is.
 */
static const struct plain_case {
	const char		*name;
	const char		*raw;
	size_t			 rawlen;
	const char		*line;
	enum auth_status	 want;
	const char		*want_user;
	const char		*want_pass;
} plain_cases[] = {
	{ "no authzid", RAW("\0alice\0s3cret"), NULL, AUTH_OK,
	    "alice", "s3cret" },
	{ "authzid equal to authcid", RAW("alice\0alice\0s3cret"), NULL,
	    AUTH_OK, "alice", "s3cret" },
	{ "password with spaces and utf-8", RAW("\0alice\0a b\xc3\xa9"),
	    NULL, AUTH_OK, "alice", "a b\xc3\xa9" },
	{ "utf-8 user", RAW("\0j\xc3\xbcrgen\0pw"), NULL, AUTH_OK,
	    "j\xc3\xbcrgen", "pw" },
	{ "authzid differs", RAW("bob\0alice\0s3cret"), NULL,
	    AUTH_BAD_AUTHZID, NULL, NULL },
	{ "authzid differs by case", RAW("Alice\0alice\0s3cret"), NULL,
	    AUTH_BAD_AUTHZID, NULL, NULL },
	{ "no NUL", RAW("alices3cret"), NULL, AUTH_MALFORMED, NULL, NULL },
	{ "one NUL", RAW("alice\0s3cret"), NULL, AUTH_MALFORMED, NULL, NULL },
	{ "three NULs", RAW("\0alice\0s3\0cret"), NULL, AUTH_MALFORMED,
	    NULL, NULL },
	{ "empty authcid", RAW("\0\0s3cret"), NULL, AUTH_MALFORMED,
	    NULL, NULL },
	{ "empty password", RAW("\0alice\0"), NULL, AUTH_MALFORMED,
	    NULL, NULL },
	{ "only NULs", RAW("\0\0"), NULL, AUTH_MALFORMED, NULL, NULL },
	{ "LF in authcid", RAW("\0al\nice\0pw"), NULL, AUTH_MALFORMED,
	    NULL, NULL },
	{ "DEL in authcid", RAW("\0al\x7fice\0pw"), NULL, AUTH_MALFORMED,
	    NULL, NULL },
	{ "broken utf-8 in authcid", RAW("\0j\xc3rgen\0pw"), NULL,
	    AUTH_MALFORMED, NULL, NULL },
	{ "overlong utf-8 in authcid", RAW("\0\xc0\xaf\0pw"), NULL,
	    AUTH_MALFORMED, NULL, NULL },
	{ "\"=\" (empty response)", NULL, 0, "=", AUTH_MALFORMED, NULL, NULL },
	{ "empty line", NULL, 0, "", AUTH_MALFORMED, NULL, NULL },
	{ "\"*\" cancels", NULL, 0, "*", AUTH_CANCELLED, NULL, NULL },
	{ "bad base64 char", NULL, 0, "AGFsaWNl!HMzY3JldA==",
	    AUTH_BAD_BASE64, NULL, NULL },
	{ "bad base64 length", NULL, 0, "AGFsaWNlAHMzY3JldA=",
	    AUTH_BAD_BASE64, NULL, NULL },
	{ "base64 with space", NULL, 0, "AGFsaWNl AHMzY3JldA==",
	    AUTH_BAD_BASE64, NULL, NULL },
	{ "\"**\" is not a cancel", NULL, 0, "**", AUTH_BAD_BASE64,
	    NULL, NULL },
};

static void
check_plain(const char *name, const char *line, size_t len,
    enum auth_status want, const char *want_user, const char *want_pass)
{
	struct auth_creds creds;
	enum auth_status st;

	st = auth_plain_decode(line, len, &creds);
	is_str(auth_status_name(st), auth_status_name(want), "PLAIN: %s",
	    name);
	if (want == AUTH_OK) {
		is_str(creds.user, want_user, "PLAIN user: %s", name);
		is_str(creds.password, want_pass, "PLAIN password: %s", name);
	} else
		ok(creds.user == NULL && creds.password == NULL,
		    "PLAIN no creds on failure: %s", name);
	auth_creds_deinit(&creds);
	ok(creds.user == NULL && creds.password == NULL,
	    "PLAIN deinit clears: %s", name);
}

/* plain_long - a PLAIN message of exactly n decoded bytes */
static void
plain_long(size_t n, enum auth_status want)
{
	char *raw, *line, name[64], *user, *pass;
	size_t ulen = 200;

	raw = xmalloc(n);
	raw[0] = '\0';
	memset(raw + 1, 'u', ulen);
	raw[1 + ulen] = '\0';
	memset(raw + 2 + ulen, 'p', n - 2 - ulen);
	line = encode(raw, n);
	user = xstrndup(raw + 1, ulen);
	pass = xstrndup(raw + 2 + ulen, n - 2 - ulen);
	snprintf(name, sizeof(name), "%zu decoded bytes (line %zu)", n,
	    strlen(line));
	check_plain(name, line, strlen(line), want, user, pass);
	free(user);
	free(pass);
	free(line);
	free(raw);
}

static void
test_plain(void)
{
	size_t i;
	char *line;

	for (i = 0; i < sizeof(plain_cases) / sizeof(plain_cases[0]); i++) {
		const struct plain_case *c = &plain_cases[i];

		line = c->line != NULL ? xstrdup(c->line) :
		    encode(c->raw, c->rawlen);
		check_plain(c->name, line, strlen(line), c->want,
		    c->want_user, c->want_pass);
		free(line);
	}
	plain_long(AUTH_MAX_DECODED, AUTH_OK);
	plain_long(AUTH_MAX_DECODED + 1, AUTH_TOO_LONG);
	plain_long(AUTH_MAX_DECODED + 300, AUTH_TOO_LONG);
	/* A huge line is refused before decoding. */
	line = xmalloc(100001);
	memset(line, 'A', 100000);
	line[100000] = '\0';
	check_plain("100000 base64 chars", line, 100000, AUTH_TOO_LONG,
	    NULL, NULL);
	free(line);
	/* Lengths are explicit: bytes after len are not read. */
	check_plain("len excludes trailing garbage", "AGEAYg==!!", 8,
	    AUTH_OK, "a", "b");
}

static const struct login_case {
	const char		*name;
	const char		*line;
	enum auth_status	 want;
	const char		*want_value;
} login_cases[] = {
	{ "user name", "YWxpY2U=", AUTH_OK, "alice" },
	{ "password", "czNjcmV0IHdpdGggc3BhY2U=", AUTH_OK,
	    "s3cret with space" },
	{ "\"*\" cancels", "*", AUTH_CANCELLED, NULL },
	{ "\"=\" empty", "=", AUTH_MALFORMED, NULL },
	{ "empty line", "", AUTH_MALFORMED, NULL },
	{ "embedded NUL", "YQBi", AUTH_MALFORMED, NULL },
	{ "bad base64", "YWxpY2U", AUTH_BAD_BASE64, NULL },
	{ "bad base64 char", "YWxp@2U=", AUTH_BAD_BASE64, NULL },
};

static void
test_login(void)
{
	size_t i;
	char *value, *line;
	enum auth_status st;

	for (i = 0; i < sizeof(login_cases) / sizeof(login_cases[0]); i++) {
		const struct login_case *c = &login_cases[i];

		st = auth_login_decode(c->line, strlen(c->line), &value);
		is_str(auth_status_name(st), auth_status_name(c->want),
		    "LOGIN: %s", c->name);
		is_str(value, c->want_value, "LOGIN value: %s", c->name);
		auth_wipe(&value);
		ok(value == NULL, "LOGIN wipe clears: %s", c->name);
	}
	line = xmalloc(AUTH_MAX_LINE + 5);
	memset(line, 'A', AUTH_MAX_LINE + 4);
	line[AUTH_MAX_LINE + 4] = '\0';
	st = auth_login_decode(line, strlen(line), &value);
	is_str(auth_status_name(st), auth_status_name(AUTH_TOO_LONG),
	    "LOGIN: too long");
	free(line);
	/* Replies carry the enhanced codes of RFC 4954. */
	is_str(auth_reply(AUTH_CANCELLED), "501 5.7.0 Authentication aborted",
	    "reply for cancel");
	ok(strncmp(auth_reply(AUTH_BAD_BASE64), "501 5.5.2 ", 10) == 0,
	    "reply for bad base64 is 501 5.5.2");
	ok(strncmp(auth_reply(AUTH_TOO_LONG), "500 5.5.6 ", 10) == 0,
	    "reply for too long is 500 5.5.6");
	ok(strncmp(auth_reply(AUTH_BAD_AUTHZID), "535 5.7.8 ", 10) == 0,
	    "reply for authzid is 535 5.7.8");
}

static const struct user_valid_case {
	const char	*name;
	const char	*user;
	bool		 want;
} user_valid_cases[] = {
	{ "ascii", "alice", true },
	{ "address", "alice@example.org", true },
	{ "space", "alice smith", true },
	{ "utf-8", "j\xc3\xbcrgen", true },
	{ "4-byte utf-8", "\xf0\x9f\x93\xa7", true },
	{ "empty", "", false },
	{ "tab", "a\tb", false },
	{ "CR", "a\rb", false },
	{ "DEL", "a\x7f", false },
	{ "C1 NEL", "a\xc2\x85", false },
	{ "lone continuation byte", "a\x80", false },
	{ "truncated sequence", "a\xe2\x82", false },
	{ "overlong slash", "\xc0\xaf", false },
	{ "surrogate", "\xed\xa0\x80", false },
	{ "beyond U+10FFFF", "\xf4\x90\x80\x80", false },
	{ "latin-1", "j\xfcrgen", false },
};

static void
test_user_valid(void)
{
	size_t i;

	for (i = 0; i < sizeof(user_valid_cases) /
	    sizeof(user_valid_cases[0]); i++) {
		const struct user_valid_case *c = &user_valid_cases[i];

		is_int(auth_user_is_valid(c->user, strlen(c->user)), c->want,
		    "user name valid: %s", c->name);
	}
}

/* make_hash - crypt(3) hash of pw with a fresh salt for prefix */
static char *
make_hash(const char *prefix, unsigned long count, const char *pw)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd;
	char *res;

	if (crypt_gensalt_rn(prefix, count, NULL, 0, salt,
	    sizeof(salt)) == NULL) {
		printf("# crypt_gensalt_rn(%s) failed\n", prefix);
		return xstrdup("*");
	}
	cd = xcalloc(1, sizeof(*cd));
	res = crypt_rn(pw, salt, cd, sizeof(*cd));
	res = xstrdup(res != NULL ? res : "*");
	free(cd);
	return res;
}

/* mkpasswd - hash made by mkpasswd(1), NULL if it is not installed */
static char *
mkpasswd(const char *method, const char *pw)
{
	char cmd[256], line[512];
	FILE *fp;
	size_t n;

	if (access("/usr/bin/mkpasswd", X_OK) != 0)
		return NULL;
	snprintf(cmd, sizeof(cmd), "/usr/bin/mkpasswd -m %s '%s'", method, pw);
	if ((fp = popen(cmd, "r")) == NULL)
		return NULL;
	if (fgets(line, sizeof(line), fp) == NULL)
		line[0] = '\0';
	pclose(fp);
	n = strcspn(line, "\r\n");
	line[n] = '\0';
	return n > 0 ? xstrdup(line) : NULL;
}

enum { H_YES, H_BCRYPT, H_SHA512, H_DES, H_MD5, H_MK_YES, H_MK_BCRYPT,
	H_MK_SHA512, H_LOCKED, H_STAR, H_EMPTY, H_COUNT };
static char *hashes[H_COUNT];

static const struct hash_case {
	const char	*name;
	int		 hash;
	const char	*password;
	bool		 want;
} hash_cases[] = {
	{ "yescrypt right", H_YES, "correct horse", true },
	{ "yescrypt wrong", H_YES, "correct hors", false },
	{ "yescrypt empty password", H_YES, "", false },
	{ "bcrypt right", H_BCRYPT, "correct horse", true },
	{ "bcrypt wrong", H_BCRYPT, "Correct horse", false },
	{ "sha512-crypt right", H_SHA512, "correct horse", true },
	{ "sha512-crypt wrong", H_SHA512, "correct horse ", false },
	{ "DES refused even if right", H_DES, "correct horse", false },
	{ "MD5 refused even if right", H_MD5, "correct horse", false },
	{ "mkpasswd yescrypt right", H_MK_YES, "pa55 word", true },
	{ "mkpasswd yescrypt wrong", H_MK_YES, "pa55word", false },
	{ "mkpasswd bcrypt right", H_MK_BCRYPT, "pa55 word", true },
	{ "mkpasswd sha-512 right", H_MK_SHA512, "pa55 word", true },
	{ "mkpasswd sha-512 wrong", H_MK_SHA512, "pa55 wore", false },
	{ "locked \"!\" hash with right password", H_LOCKED,
	    "correct horse", false },
	{ "disabled \"*\"", H_STAR, "*", false },
	{ "empty hash", H_EMPTY, "", false },
};

static void
make_hashes(void)
{
	hashes[H_YES] = make_hash("$y$", 0, "correct horse");
	hashes[H_BCRYPT] = make_hash("$2b$", 4, "correct horse");
	hashes[H_SHA512] = make_hash("$6$", 1000, "correct horse");
	hashes[H_DES] = make_hash("", 0, "correct horse");
	hashes[H_MD5] = make_hash("$1$", 0, "correct horse");
	hashes[H_MK_YES] = mkpasswd("yescrypt", "pa55 word");
	hashes[H_MK_BCRYPT] = mkpasswd("bcrypt", "pa55 word");
	hashes[H_MK_SHA512] = mkpasswd("sha-512", "pa55 word");
	hashes[H_LOCKED] = xasprintf("!%s", hashes[H_YES]);
	hashes[H_STAR] = xstrdup("*");
	hashes[H_EMPTY] = xstrdup("");
	/* The generated hashes really are of the kind we asked for. */
	ok(strncmp(hashes[H_YES], "$y$", 3) == 0, "made yescrypt hash %s",
	    hashes[H_YES]);
	ok(strncmp(hashes[H_BCRYPT], "$2b$04$", 7) == 0,
	    "made bcrypt hash %s", hashes[H_BCRYPT]);
	ok(strncmp(hashes[H_SHA512], "$6$", 3) == 0,
	    "made sha512-crypt hash %s", hashes[H_SHA512]);
	ok(strlen(hashes[H_DES]) == 13, "made DES hash %s", hashes[H_DES]);
}

static void
test_hash(void)
{
	size_t i;

	for (i = 0; i < sizeof(hash_cases) / sizeof(hash_cases[0]); i++) {
		const struct hash_case *c = &hash_cases[i];

		if (hashes[c->hash] == NULL) {
			ok(1, "%s # SKIP mkpasswd not installed", c->name);
			continue;
		}
		is_int(auth_check_hash(hashes[c->hash], c->password), c->want,
		    "check hash: %s", c->name);
	}
	is_int(auth_check_hash(NULL, "x"), false, "check hash: NULL hash");
	is_int(auth_check_hash(hashes[H_YES], NULL), false,
	    "check hash: NULL password");
}

static const struct user_case {
	const char	*name;
	const char	*user;
	const char	*password;
	bool		 want;
} user_cases[] = {
	{ "alice (\"user: hash\", yescrypt)", "alice", "correct horse", true },
	{ "alice wrong password", "alice", "wrong", false },
	{ "bob (\"user hash\", bcrypt)", "bob", "correct horse", true },
	{ "carol (sha512-crypt)", "carol", "correct horse", true },
	{ "carol wrong password", "carol", "correct horsE", false },
	{ "mk (mkpasswd yescrypt)", "mk", "pa55 word", true },
	{ "locked dave", "dave", "correct horse", false },
	{ "disabled erin", "erin", "correct horse", false },
	{ "unknown user", "mallory", "correct horse", false },
	{ "empty user", "", "correct horse", false },
	{ "user with colon", "alice:", "correct horse", false },
	{ "user with LF (from LOGIN)", "alice\n", "correct horse", false },
	{ "user with broken UTF-8", "alice\xc3", "correct horse", false },
};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
test_table(void)
{
	char dir[] = "/tmp/test_auth.XXXXXX", path[128], spec[160];
	struct table *t;
	char *err = NULL;
	FILE *fp;
	size_t i;
	double t0, known, unknown;

	if (mkdtemp(dir) == NULL) {
		ok(0, "mkdtemp");
		return;
	}
	snprintf(path, sizeof(path), "%s/users", dir);
	if ((fp = fopen(path, "w")) == NULL) {
		ok(0, "create %s", path);
		return;
	}
	fprintf(fp, "# users\nalice: %s\nbob\t%s\ncarol:  %s\n"
	    "dave: %s\nerin: *\n", hashes[H_YES], hashes[H_BCRYPT],
	    hashes[H_SHA512], hashes[H_LOCKED]);
	if (hashes[H_MK_YES] != NULL)
		fprintf(fp, "mk: %s\n", hashes[H_MK_YES]);
	fclose(fp);
	snprintf(spec, sizeof(spec), "texthash:%s", path);
	t = table_open(spec, &err);
	ok(t != NULL, "open %s", spec);
	if (t == NULL) {
		printf("#   error: %s\n", err);
		free(err);
		unlink(path);
		rmdir(dir);
		return;
	}
	for (i = 0; i < sizeof(user_cases) / sizeof(user_cases[0]); i++) {
		const struct user_case *c = &user_cases[i];

		if (strcmp(c->user, "mk") == 0 && hashes[H_MK_YES] == NULL) {
			ok(1, "%s # SKIP mkpasswd not installed", c->name);
			continue;
		}
		is_int(auth_check_password(t, c->user, c->password), c->want,
		    "password table: %s", c->name);
	}
	is_int(auth_check_password(NULL, "alice", "correct horse"), false,
	    "password table: no table");

	/*
	 * An unknown user costs a yescrypt computation too. Generous
	 * bound: without the dummy hash it would be thousands of times
	 * faster.
	 */
	t0 = now();
	(void)auth_check_password(t, "alice", "wrong");
	known = now() - t0;
	t0 = now();
	(void)auth_check_password(t, "nosuchuser", "wrong");
	unknown = now() - t0;
	ok(unknown > known * 0.3, "unknown user takes %.1f ms, known %.1f ms",
	    unknown * 1e3, known * 1e3);
	table_free(&t);
	unlink(path);
	rmdir(dir);
}

int
main(void)
{
	size_t i;

	test_base64();
	test_plain();
	test_login();
	test_user_valid();
	make_hashes();
	test_hash();
	test_table();
	for (i = 0; i < H_COUNT; i++)
		free(hashes[i]);
	return done_testing();
}

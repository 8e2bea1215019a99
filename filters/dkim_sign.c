/*
 * dkim_sign.c - a DKIM signer of our own on OpenSSL (RFC 6376, RFC 8463).
 *
 * Owns: parsed private keys (one EVP_PKEY per key, parsed once per
 * configuration load and only read afterwards, so threads share it) and
 * the per-message signer: the streaming body canonicalization and hash,
 * header selection and canonicalization, and the DKIM-Signature value.
 * Leaves to others: which key signs which message (the dkim filter and
 * its tables), where the field goes (message_edit.c), and verification
 * (dkim_verify.c, libopendkim).
 *
 * Byte identity with libopendkim 2.11 for rsa-sha256 (dkim_sign.h) fixes
 * several choices that RFC 6376 leaves open; each is marked "libopendkim"
 * below. Learned by experiment against Debian's library (the unit test
 * keeps proving them) and by reading its dkim.c and dkim-canon.c:
 * - tag order v a c d s t [x] [i] bh h b; x= is t + expire_after;
 * - h= lists the signed fields in message order, each name as written,
 *   then every oversigned name once more; the field hashed for the k-th
 *   occurrence of a name in h= is the bottom-most one not yet used, which
 *   is what a verifier picks (RFC 6376 5.4.2);
 * - From is always signed; i= must be in the d= domain or a subdomain;
 * - folding at 75 columns with "\r\n\t": tags joined by one space, a tag
 *   that does not fit starts a new line, h= then breaks after a colon
 *   ("\r\n\t "), b= (always on its own line) breaks anywhere.
 * Deliberate differences: a body that does not end in CRLF gets one
 * (RFC 6376 3.4.3 and 3.4.4; libopendkim refuses or, for simple, hashes
 * it without), and an oversigned name is also signed where it occurs
 * (libopendkim only lists it again, which no verifier accepts when the
 * field is present).
 *
 * Threads: a sign_key is immutable after sign_key_parse(); each signature
 * makes its own EVP_MD_CTX / EVP_PKEY_CTX. A signer belongs to one
 * message and one thread at a time.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "base64.h"
#include "buf.h"
#include "dkim_sign.h"
#include "log.h"
#include "message_edit.h"
#include "xmalloc.h"

#define SIGN_KEY_FILE_MAX	65536	/* a PEM key is a few KB */
#define SIGN_RSA_MIN_BITS	1024	/* RFC 8301 3.2 */
#define SIGN_MARGIN		75	/* libopendkim DKIM_HDRMARGIN */
#define SIGN_HDR_PREFIX		"DKIM-Signature: "
#define SIGN_ED25519_B64	88	/* 64 bytes of signature */
#define SIGN_BODY_BUF		4096

struct sign_key {
	EVP_PKEY *pkey;			/* owned; only read after parse */
	enum sign_key_type type;
	unsigned bits;
};

/* RFC 6376 5.4.1's list as libopendkim 2.11 has it (dkim_should_signhdrs) */
const char *const sign_default_headers[] = {
	"from", "reply-to", "subject", "date", "to", "cc", "resent-date",
	"resent-from", "resent-sender", "resent-to", "resent-cc",
	"in-reply-to", "references", "list-id", "list-help",
	"list-unsubscribe", "list-subscribe", "list-post", "list-owner",
	"list-archive", NULL
};

struct signer {
	const struct sign_key *key;	/* borrowed: the configuration's */
	char	*domain;		/* owned */
	char	*selector;		/* owned */
	char	*identity;		/* owned; NULL: no i= */
	char	**sign;			/* owned, NULL-terminated */
	char	**oversign;		/* owned, NULL-terminated */
	enum sign_canon hcanon;
	enum sign_canon bcanon;
	time_t	 timestamp;
	long	 expire_after;
	bool	 finished;

	/* body canonicalization state (RFC 6376 3.4.3, 3.4.4) */
	EVP_MD_CTX *body_md;		/* owned */
	bool	 cr;			/* a CR waits for its LF */
	bool	 wsp;			/* relaxed: a WSP run waits */
	size_t	 ncrlf;			/* line ends held back (trailing?) */
	bool	 nonempty;		/* some line had content */
	unsigned char out[SIGN_BODY_BUF];	/* canonical bytes to hash */
	size_t	 outlen;
};

static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md;		/* fetched once, never freed */

static void
sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* sha256 - the SHA-256 implementation, fetched once (not per message) */
static const EVP_MD *
sha256(void)
{
	pthread_once(&sha256_once, sha256_fetch);
	return sha256_md != NULL ? sha256_md : EVP_sha256();
}

/* ssl_reason - the first queued OpenSSL error as text; clears the queue */
static const char *
ssl_reason(void)
{
	unsigned long e = ERR_peek_error();
	const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return r != NULL ? r : "unknown OpenSSL error";
}

/* ---------------------------------------------------------------- keys */

/* no_passphrase - never prompt on a terminal for an encrypted key */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static bool
contains(const char *text, size_t len, const char *what)
{
	return memmem(text, len, what, strlen(what)) != NULL;
}

/* key_from_pem - the first private key of a PEM text */
static EVP_PKEY *
key_from_pem(const char *text, size_t len, char **error_r)
{
	EVP_PKEY *pkey;
	BIO *bio;

	if (contains(text, len, "ENCRYPTED")) {
		*error_r = xstrdup("encrypted private keys are not supported");
		return NULL;
	}
	if (!contains(text, len, "PRIVATE KEY-----") &&
	    (contains(text, len, "PUBLIC KEY-----") ||
	    contains(text, len, "CERTIFICATE-----"))) {
		*error_r = xstrdup("this is a public key or certificate, "
		    "not a private key");
		return NULL;
	}
	if ((bio = BIO_new_mem_buf(text, (int)len)) == NULL) {
		*error_r = xasprintf("BIO_new_mem_buf: %s", ssl_reason());
		return NULL;
	}
	pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	if (pkey == NULL)
		*error_r = xasprintf("cannot parse the PEM private key: %s",
		    ssl_reason());
	return pkey;
}

/*
 * key_from_der64 - a base64 DER private key (PKCS#8 or PKCS#1), white
 * space allowed. Unlike libopendkim, which takes only text starting with
 * "MII" for DER, this also reads ed25519 keys ("MC4...").
 */
static EVP_PKEY *
key_from_der64(const char *text, size_t len, char **error_r)
{
	EVP_PKEY *pkey = NULL, *pub;
	unsigned char *der = NULL;
	const unsigned char *p;
	char *b64;
	size_t i, n = 0, derlen = 0;

	b64 = xmalloc(len + 1);
	for (i = 0; i < len; i++)
		if (!isspace((unsigned char)text[i]))
			b64[n++] = text[i];
	if (n == 0) {
		*error_r = xstrdup("empty key");
		goto out;
	}
	der = xmalloc(BASE64_DECODED_MAX(n) + 1);
	if (base64_decode(b64, n, der, BASE64_DECODED_MAX(n) + 1,
	    &derlen) == -1) {
		*error_r = xstrdup("not a PEM or base64 DER private key");
		goto out;
	}
	p = der;
	pkey = d2i_AutoPrivateKey(NULL, &p, (long)derlen);
	if (pkey != NULL && p != der + derlen) {
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
	if (pkey == NULL) {
		p = der;
		if ((pub = d2i_PUBKEY(NULL, &p, (long)derlen)) != NULL) {
			EVP_PKEY_free(pub);
			*error_r = xstrdup("this is a public key, "
			    "not a private key");
		} else
			*error_r = xstrdup("cannot parse the DER private key");
	}
	ERR_clear_error();
out:
	explicit_bzero(b64, len + 1);
	free(b64);
	if (der != NULL) {
		explicit_bzero(der, BASE64_DECODED_MAX(n) + 1);
		free(der);
	}
	return pkey;
}

struct sign_key *
sign_key_parse(const char *text, size_t len, char **error_r)
{
	struct sign_key *key;
	EVP_PKEY *pkey;
	int bits;

	*error_r = NULL;
	if (len == 0) {
		*error_r = xstrdup("empty key");
		return NULL;
	}
	if (len > SIGN_KEY_FILE_MAX) {
		*error_r = xstrdup("key too large");
		return NULL;
	}
	if (contains(text, len, "-----BEGIN "))
		pkey = key_from_pem(text, len, error_r);
	else
		pkey = key_from_der64(text, len, error_r);
	if (pkey == NULL)
		return NULL;

	key = xcalloc(1, sizeof(*key));
	key->pkey = pkey;
	switch (EVP_PKEY_get_base_id(pkey)) {
	case EVP_PKEY_RSA:
		key->type = SIGN_KEY_RSA;
		bits = EVP_PKEY_get_bits(pkey);
		if (bits < SIGN_RSA_MIN_BITS) {
			*error_r = xasprintf("RSA key of %d bits is too "
			    "small (RFC 8301: at least %d)", bits,
			    SIGN_RSA_MIN_BITS);
			sign_key_free(&key);
			return NULL;
		}
		key->bits = (unsigned)bits;
		break;
	case EVP_PKEY_ED25519:
		key->type = SIGN_KEY_ED25519;
		key->bits = 256;
		break;
	default:
		*error_r = xasprintf("unsupported key type %s (DKIM signs "
		    "with RSA or Ed25519)", OBJ_nid2sn(
		    EVP_PKEY_get_base_id(pkey)));
		sign_key_free(&key);
		return NULL;
	}
	return key;
}

struct sign_key *
sign_key_load(const char *path, char **error_r)
{
	struct sign_key *key = NULL;
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	ssize_t n;
	int fd;

	*error_r = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > SIGN_KEY_FILE_MAX) {
		*error_r = xasprintf("%s: not a key file (a regular file "
		    "under %d bytes)", path, SIGN_KEY_FILE_MAX);
		goto out;
	}
	text = xmalloc((size_t)st.st_size + 1);
	while (len < (size_t)st.st_size) {
		n = read(fd, text + len, (size_t)st.st_size - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			*error_r = xasprintf("%s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if ((key = sign_key_parse(text, len, error_r)) == NULL) {
		char *e = *error_r;

		*error_r = xasprintf("%s: %s", path, e);
		free(e);
	}
out:
	if (text != NULL) {
		explicit_bzero(text, (size_t)st.st_size + 1);
		free(text);
	}
	close(fd);
	return key;
}

void
sign_key_free(struct sign_key **keyp)
{
	if (*keyp == NULL)
		return;
	/* OpenSSL clears the private numbers when it frees them */
	EVP_PKEY_free((*keyp)->pkey);
	free(*keyp);
	*keyp = NULL;
}

enum sign_key_type
sign_key_type(const struct sign_key *key)
{
	return key->type;
}

unsigned
sign_key_bits(const struct sign_key *key)
{
	return key->bits;
}

char *
sign_key_dns_record(const struct sign_key *key)
{
	unsigned char raw[32], *der = NULL;
	size_t rawlen = sizeof(raw);
	struct buf out;
	int derlen;

	buf_init(&out, 0);
	if (key->type == SIGN_KEY_ED25519) {
		/* RFC 8463 4.2: the raw 32-byte public key, not an SPKI */
		if (EVP_PKEY_get_raw_public_key(key->pkey, raw,
		    &rawlen) != 1)
			goto fail;
		buf_append_str(&out, "v=DKIM1; k=ed25519; p=");
		base64_encode(&out, raw, rawlen);
	} else {
		if ((derlen = i2d_PUBKEY(key->pkey, &der)) <= 0)
			goto fail;
		buf_append_str(&out, "v=DKIM1; k=rsa; p=");
		base64_encode(&out, der, (size_t)derlen);
		OPENSSL_free(der);
	}
	return buf_steal(&out);
fail:
	/* only an out-of-memory inside OpenSSL gets here */
	buf_deinit(&out);
	ERR_clear_error();
	return xstrdup("");
}

/* -------------------------------------------------------------- signer */

static char **
copy_names(const char *const *names)
{
	char **copy;
	size_t i, n = 0;

	while (names != NULL && names[n] != NULL)
		n++;
	copy = xcalloc(n + 1, sizeof(*copy));
	for (i = 0; i < n; i++)
		copy[i] = xstrdup(names[i]);
	return copy;
}

static void
free_names(char **names)
{
	size_t i;

	for (i = 0; names != NULL && names[i] != NULL; i++)
		free(names[i]);
	free(names);
}

/* set_params - what signer_params gives, into a signer without them */
static void
set_params(struct signer *s, const struct signer_params *p)
{
	s->key = p->key;
	s->domain = xstrdup(p->domain != NULL ? p->domain : "");
	s->selector = xstrdup(p->selector != NULL ? p->selector : "");
	s->identity = p->identity != NULL ? xstrdup(p->identity) : NULL;
	s->sign = copy_names(p->sign_headers != NULL ? p->sign_headers :
	    sign_default_headers);
	s->oversign = copy_names(p->oversign_headers);
	s->hcanon = p->header_canon;
	s->bcanon = p->body_canon;
	s->timestamp = p->timestamp;
	s->expire_after = p->expire_after;
}

struct signer *
signer_new(const struct signer_params *p)
{
	struct signer *s;

	s = xcalloc(1, sizeof(*s));
	set_params(s, p);
	if ((s->body_md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(s->body_md, sha256(), NULL) != 1)
		fatalx("dkim_sign: SHA-256: %s", ssl_reason());
	return s;
}

struct signer *
signer_new_like(const struct signer *model, const struct signer_params *p)
{
	struct signer *s;

	s = xcalloc(1, sizeof(*s));
	set_params(s, p);
	s->bcanon = model->bcanon;	/* the body is already canonical */
	s->cr = model->cr;
	s->wsp = model->wsp;
	s->ncrlf = model->ncrlf;
	s->nonempty = model->nonempty;
	memcpy(s->out, model->out, model->outlen);
	s->outlen = model->outlen;
	if ((s->body_md = EVP_MD_CTX_new()) == NULL ||
	    EVP_MD_CTX_copy_ex(s->body_md, model->body_md) != 1)
		fatalx("dkim_sign: SHA-256: %s", ssl_reason());
	return s;
}

void
signer_free(struct signer **sp)
{
	struct signer *s = *sp;

	if (s == NULL)
		return;
	free(s->domain);
	free(s->selector);
	free(s->identity);
	free_names(s->sign);
	free_names(s->oversign);
	EVP_MD_CTX_free(s->body_md);
	free(s);
	*sp = NULL;
}

static void
body_flush(struct signer *s)
{
	if (s->outlen > 0)
		EVP_DigestUpdate(s->body_md, s->out, s->outlen);
	s->outlen = 0;
}

static void
body_put(struct signer *s, const void *p, size_t n)
{
	if (s->outlen + n > sizeof(s->out)) {
		body_flush(s);
		if (n > sizeof(s->out)) {
			EVP_DigestUpdate(s->body_md, p, n);
			return;
		}
	}
	memcpy(s->out + s->outlen, p, n);
	s->outlen += n;
}

/*
 * body_content - bytes of a line: the line ends held back until now were
 * not trailing empty lines after all, and a WSP run before them becomes
 * one SP (relaxed).
 */
static void
body_content(struct signer *s, const void *p, size_t n)
{
	for (; s->ncrlf > 0; s->ncrlf--)
		body_put(s, "\r\n", 2);
	if (s->wsp) {
		body_put(s, " ", 1);
		s->wsp = false;
	}
	body_put(s, p, n);
	s->nonempty = true;
}

/*
 * signer_body - stream the body through the canonicalization. Any
 * chunking gives the same result: the only state between chunks is a
 * pending CR, a pending WSP run and the count of held-back line ends.
 * Simple (3.4.3): only trailing empty lines go. Relaxed (3.4.4): WSP
 * runs become one SP, WSP at the end of a line goes, and trailing empty
 * lines go. CR not before LF is an ordinary byte (the DATA reader never
 * lets one through).
 */
void
signer_body(struct signer *s, const void *chunk, size_t len)
{
	const unsigned char *p = chunk, *end = p + len, *run;
	bool relaxed = s->bcanon == SIGN_CANON_RELAXED;
	unsigned char c;

	while (p < end) {
		c = *p;
		if (s->cr) {
			s->cr = false;
			if (c == '\n') {
				s->wsp = false;
				s->ncrlf++;
				p++;
				continue;
			}
			body_content(s, "\r", 1);
		}
		if (c == '\r') {
			s->cr = true;
			p++;
			continue;
		}
		if (relaxed && (c == ' ' || c == '\t')) {
			s->wsp = true;
			p++;
			continue;
		}
		/* a run of ordinary bytes goes in one piece */
		run = p++;
		while (p < end && *p != '\r' &&
		    !(relaxed && (*p == ' ' || *p == '\t')))
			p++;
		body_content(s, run, (size_t)(p - run));
	}
}

/*
 * body_finish - the body hash. The last line gets its CRLF whether it had
 * one or not; held-back empty lines are dropped. An empty body is CRLF
 * for simple and nothing for relaxed (RFC 6376 3.4.3, 3.4.4).
 */
static void
body_finish(struct signer *s, unsigned char *md, unsigned *mdlen)
{
	if (s->cr) {
		s->cr = false;
		body_content(s, "\r", 1);
	}
	s->ncrlf = 0;
	s->wsp = false;
	if (s->bcanon == SIGN_CANON_SIMPLE || s->nonempty)
		body_put(s, "\r\n", 2);
	body_flush(s);
	EVP_DigestFinal_ex(s->body_md, md, mdlen);
}

/* ------------------------------------------------------------- headers */

/*
 * field_name - the field's name: up to the colon, trailing white space
 * dropped as libopendkim does ("Subject : x" is "Subject"). 0: no colon.
 */
static size_t
field_name(const char *raw, size_t rawlen)
{
	const char *colon = memchr(raw, ':', rawlen);
	size_t n;

	if (colon == NULL)
		return 0;
	n = (size_t)(colon - raw);
	while (n > 0 && isspace((unsigned char)raw[n - 1]))
		n--;
	return n;
}

/* name_is - a configured name (or "x-*" pattern) matches a field name */
static bool
name_is(const char *pattern, const char *name, size_t len)
{
	char tmp[256];

	if (strchr(pattern, '*') == NULL)
		return strlen(pattern) == len &&
		    strncasecmp(pattern, name, len) == 0;
	if (len >= sizeof(tmp))
		return false;
	memcpy(tmp, name, len);
	tmp[len] = '\0';
	return fnmatch(pattern, tmp, FNM_CASEFOLD) == 0;
}

/*
 * is_signed - From always (RFC 6376 5.4, and libopendkim adds it), the
 * configured names, and the oversigned ones (see the top of the file).
 */
static bool
is_signed(const struct signer *s, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (name[i] <= 0x20 || name[i] >= 0x7f || name[i] == ';')
			return false;
	if (len == 0)
		return false;
	if (name_is("from", name, len))
		return true;
	for (i = 0; s->sign[i] != NULL; i++)
		if (name_is(s->sign[i], name, len))
			return true;
	for (i = 0; s->oversign[i] != NULL; i++)
		if (name_is(s->oversign[i], name, len))
			return true;
	return false;
}

static bool
is_lwsp(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * canon_header - one field (without its final CRLF) in canonical form,
 * appended to out. Relaxed (RFC 6376 3.4.2) as libopendkim does it: the
 * name lowercased without any white space, white space after the colon
 * dropped, every white space run (folding included) one SP, none at the
 * end. The DKIM-Signature field itself is hashed without a CRLF.
 */
static void
canon_header(enum sign_canon canon, const char *text, size_t len,
    bool crlf, struct buf *out)
{
	unsigned char c;
	bool space = false;
	size_t i = 0;

	if (canon == SIGN_CANON_SIMPLE) {
		buf_append(out, text, len);
	} else {
		for (; i < len; i++) {
			c = (unsigned char)text[i];
			if (is_lwsp(c))
				continue;
			if (c == ':') {
				buf_append(out, ":", 1);
				i++;
				break;
			}
			c = (unsigned char)(isupper(c) ? tolower(c) : c);
			buf_append(out, &c, 1);
		}
		while (i < len && is_lwsp((unsigned char)text[i]))
			i++;
		for (; i < len; i++) {
			c = (unsigned char)text[i];
			if (c < 0x80 && isspace(c)) {
				space = true;
				continue;
			}
			if (space)
				buf_append(out, " ", 1);
			space = false;
			buf_append(out, &c, 1);
		}
	}
	if (crlf)
		buf_append(out, "\r\n", 2);
}

/* field_text - a field without its final CRLF (libopendkim's input) */
static size_t
field_text(const struct header_field *f)
{
	size_t len = strlen(f->raw);

	if (len > 0 && f->raw[len - 1] == '\n')
		len--;
	if (len > 0 && f->raw[len - 1] == '\r')
		len--;
	return len;
}

/* ------------------------------------------------ the signature field */

/*
 * fold - the tags (each "t=value;", the last "b=..." without ';') folded
 * as libopendkim's dkim_getsighdr_d() does at SIGN_MARGIN, starting in
 * the column after "DKIM-Signature: ". b_final is the length of the b=
 * tag once signed: where b= starts must not depend on whether it is
 * empty yet (the hashed and the final field must fold alike).
 */
static void
fold(struct buf *out, char *const *tags, size_t ntags,
    const struct sign_key *key, size_t b_final)
{
	const char *pv, *x, *y, *piece;
	size_t i, len, pvlen, which, plen, n;
	bool wrap, first = true, ifirst;

	len = strlen(SIGN_HDR_PREFIX);
	for (i = 0; i < ntags; i++) {
		pv = tags[i];
		pvlen = strlen(pv);
		which = strcspn(pv, "=");
		if (which == 1 && pv[0] == 'b') {
			/* libopendkim forces RSA's b= onto its own line */
			wrap = len + b_final > SIGN_MARGIN ||
			    (key->type == SIGN_KEY_RSA &&
			    len + b_final >= SIGN_MARGIN);
		} else
			wrap = len + pvlen > SIGN_MARGIN;
		if (first) {
			buf_append(out, pv, pvlen);
			len += pvlen;
			first = false;
		} else if (!wrap) {
			buf_append(out, " ", 1);
			buf_append(out, pv, pvlen);
			len += 1 + pvlen;
		} else if (which == 1 && pv[0] == 'h') {
			/* break after a colon of the header list */
			buf_append(out, "\r\n\t", 3);
			len = 8;
			ifirst = true;
			for (piece = pv; piece < pv + pvlen; piece += plen) {
				if ((plen = strcspn(piece, ":")) == 0) {
					plen = 1;
					continue;
				}
				if (ifirst) {
					ifirst = false;
				} else if (len + plen + 1 > SIGN_MARGIN) {
					buf_append(out, ":\r\n\t ", 5);
					len = 9;
				} else {
					buf_append(out, ":", 1);
					len++;
				}
				buf_append(out, piece, plen);
				len += plen;
			}
		} else if ((which == 1 && pv[0] == 'b') ||
		    (which == 2 && pv[0] == 'b' && pv[1] == 'h')) {
			/* base64: break anywhere at the margin */
			buf_append(out, "\r\n\t", 3);
			buf_append(out, pv, which + 1);
			len = 8 + which + 1;
			x = pv + which + 1;
			y = pv + pvlen;
			if (x < y) {
				buf_append(out, x++, 1);
				len++;
			}
			while (x < y) {
				if (len == SIGN_MARGIN) {
					buf_append(out, "\r\n\t ", 4);
					len = 9;
				}
				n = (size_t)(y - x);
				if (len < SIGN_MARGIN && n > SIGN_MARGIN - len)
					n = SIGN_MARGIN - len;
				buf_append(out, x, n);
				x += n;
				len += n;
			}
		} else {
			buf_append(out, "\r\n\t", 3);
			buf_append(out, pv, pvlen);
			len = 8 + pvlen;
		}
	}
}

/* tag_value_ok - printable ASCII without ';' or white space */
static bool
tag_value_ok(const char *v, const char *also_refused)
{
	if (*v == '\0')
		return false;
	for (; *v != '\0'; v++)
		if (*v <= 0x20 || *v >= 0x7f || *v == ';' ||
		    strchr(also_refused, *v) != NULL)
			return false;
	return true;
}

/* identity_ok - i= is in the d= domain or below it (RFC 6376 3.5) */
static bool
identity_ok(const char *i, const char *d)
{
	const char *at = strrchr(i, '@'), *dom;
	size_t dl = strlen(d), il;

	if (at == NULL || !tag_value_ok(i, "="))
		return false;
	dom = at + 1;
	il = strlen(dom);
	if (strcasecmp(dom, d) == 0)
		return true;
	return il > dl && dom[il - dl - 1] == '.' &&
	    strcasecmp(dom + il - dl, d) == 0;
}

static int
check_params(const struct signer *s, char **error_r)
{
	size_t i;

	if (s->key == NULL) {
		*error_r = xstrdup("no signing key");
		return -1;
	}
	if (!tag_value_ok(s->domain, "=:") ||
	    !tag_value_ok(s->selector, "=:")) {
		*error_r = xasprintf("bad domain \"%s\" or selector \"%s\"",
		    s->domain, s->selector);
		return -1;
	}
	if (s->identity != NULL && !identity_ok(s->identity, s->domain)) {
		*error_r = xasprintf("identity \"%s\" is not in domain %s",
		    s->identity, s->domain);
		return -1;
	}
	for (i = 0; s->oversign[i] != NULL; i++)
		if (!tag_value_ok(s->oversign[i], ":=*")) {
			*error_r = xasprintf("bad oversign header name "
			    "\"%s\"", s->oversign[i]);
			return -1;
		}
	return 0;
}

/*
 * sign_digest - RFC 6376 3.3: rsa-sha256 is PKCS#1 v1.5 over the
 * SHA-256 of the header data; ed25519-sha256 (RFC 8463 3) is PureEdDSA
 * over that same 32-byte digest. Fresh contexts: the key is shared.
 */
static int
sign_digest(const struct sign_key *key, const unsigned char *md,
    size_t mdlen, struct buf *b64, char **error_r)
{
	EVP_PKEY_CTX *pctx = NULL;
	EVP_MD_CTX *mctx = NULL;
	unsigned char *sig = NULL;
	size_t siglen = 0;
	int ret = -1;

	if (key->type == SIGN_KEY_RSA) {
		if ((pctx = EVP_PKEY_CTX_new(key->pkey, NULL)) == NULL ||
		    EVP_PKEY_sign_init(pctx) != 1 ||
		    EVP_PKEY_CTX_set_rsa_padding(pctx,
		    RSA_PKCS1_PADDING) != 1 ||
		    EVP_PKEY_CTX_set_signature_md(pctx, sha256()) != 1 ||
		    EVP_PKEY_sign(pctx, NULL, &siglen, md, mdlen) != 1)
			goto fail;
		sig = xmalloc(siglen);
		if (EVP_PKEY_sign(pctx, sig, &siglen, md, mdlen) != 1)
			goto fail;
	} else {
		if ((mctx = EVP_MD_CTX_new()) == NULL ||
		    EVP_DigestSignInit(mctx, NULL, NULL, NULL,
		    key->pkey) != 1 ||
		    EVP_DigestSign(mctx, NULL, &siglen, md, mdlen) != 1)
			goto fail;
		sig = xmalloc(siglen);
		if (EVP_DigestSign(mctx, sig, &siglen, md, mdlen) != 1)
			goto fail;
	}
	base64_encode(b64, sig, siglen);
	ret = 0;
	goto out;
fail:
	*error_r = xasprintf("%s signing failed: %s",
	    key->type == SIGN_KEY_RSA ? "RSA" : "Ed25519", ssl_reason());
out:
	free(sig);
	EVP_PKEY_CTX_free(pctx);
	EVP_MD_CTX_free(mctx);
	return ret;
}

/*
 * select_fields - the h= list and the header hash input. For each signed
 * field in message order its name goes into h=; the field hashed for it
 * is the bottom-most unused field of that name (libopendkim, and what a
 * verifier does, RFC 6376 5.4.2). Oversigned names follow once more: a
 * verifier finds no field left for them and hashes nothing.
 */
static int
select_fields(const struct signer *s, const struct header_list *hl,
    struct buf *hlist, struct buf *hdata, char **error_r)
{
	size_t *nlen, i, j, k, len;
	bool *used, from = false;
	const char *raw;

	nlen = xcalloc(hl->n + 1, sizeof(*nlen));
	used = xcalloc(hl->n + 1, sizeof(*used));
	for (i = 0; i < hl->n; i++) {
		raw = hl->fields[i].raw;
		nlen[i] = field_name(raw, strlen(raw));
		if (name_is("from", raw, nlen[i]))
			from = true;
	}
	if (!from) {
		*error_r = xstrdup("no From header field");
		free(nlen);
		free(used);
		return -1;
	}
	buf_append_str(hlist, "h=");
	for (i = 0; i < hl->n; i++) {
		raw = hl->fields[i].raw;
		if (!is_signed(s, raw, nlen[i]))
			continue;
		if (hlist->len > 2)
			buf_append(hlist, ":", 1);
		buf_append(hlist, raw, nlen[i]);
		for (k = 0, j = hl->n; j-- > 0;)
			if (!used[j] && nlen[j] == nlen[i] &&
			    strncasecmp(hl->fields[j].raw, raw,
			    nlen[i]) == 0) {
				k = j;
				break;
			}
		used[k] = true;
		len = field_text(&hl->fields[k]);
		canon_header(s->hcanon, hl->fields[k].raw, len, true, hdata);
	}
	for (i = 0; s->oversign[i] != NULL; i++) {
		buf_append(hlist, ":", 1);
		buf_append_str(hlist, s->oversign[i]);
	}
	buf_append(hlist, ";", 1);
	free(nlen);
	free(used);
	return 0;
}

char *
signer_finish(struct signer *s, const struct header_list *hl,
    char **error_r)
{
	static const char *const canon[] = { "simple", "relaxed" };
	unsigned char bmd[EVP_MAX_MD_SIZE], hmd[EVP_MAX_MD_SIZE];
	unsigned bmdlen = 0, hmdlen = 0;
	struct buf hlist, hdata, b64, value;
	EVP_MD_CTX *hctx = NULL;
	char *tags[12], *result = NULL;
	size_t ntags = 0, i, b_final;
	time_t t;

	*error_r = NULL;
	buf_init(&hlist, 0);
	buf_init(&hdata, 0);
	buf_init(&b64, 0);
	buf_init(&value, 0);
	if (s->finished) {
		*error_r = xstrdup("signer_finish called twice");
		goto out;
	}
	s->finished = true;
	if (check_params(s, error_r) == -1)
		goto out;
	if (select_fields(s, hl, &hlist, &hdata, error_r) == -1)
		goto out;
	body_finish(s, bmd, &bmdlen);
	base64_encode(&b64, bmd, bmdlen);

	t = s->timestamp != 0 ? s->timestamp : time(NULL);
	tags[ntags++] = xstrdup("v=1;");
	tags[ntags++] = xasprintf("a=%s;", s->key->type == SIGN_KEY_RSA ?
	    "rsa-sha256" : "ed25519-sha256");
	tags[ntags++] = xasprintf("c=%s/%s;", canon[s->hcanon],
	    canon[s->bcanon]);
	tags[ntags++] = xasprintf("d=%s;", s->domain);
	tags[ntags++] = xasprintf("s=%s;", s->selector);
	tags[ntags++] = xasprintf("t=%lld;", (long long)t);
	if (s->expire_after > 0)
		tags[ntags++] = xasprintf("x=%lld;",
		    (long long)t + s->expire_after);
	if (s->identity != NULL)
		tags[ntags++] = xasprintf("i=%s;", s->identity);
	tags[ntags++] = xasprintf("bh=%s;", buf_cstr(&b64));
	tags[ntags++] = buf_steal(&hlist);
	tags[ntags++] = xstrdup("b=");

	/* the b= tag's final length, as libopendkim estimates it */
	b_final = 2 + (s->key->type == SIGN_KEY_RSA ?
	    BASE64_ENCODED_LEN(s->key->bits / 8) : SIGN_ED25519_B64);

	/* RFC 6376 3.7: the signature field, b= empty, ends the hash */
	buf_append_str(&value, SIGN_HDR_PREFIX);
	fold(&value, tags, ntags, s->key, b_final);
	canon_header(s->hcanon, value.data, value.len, false, &hdata);
	if ((hctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(hctx, sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(hctx, hdata.data, hdata.len) != 1 ||
	    EVP_DigestFinal_ex(hctx, hmd, &hmdlen) != 1) {
		*error_r = xasprintf("SHA-256: %s", ssl_reason());
		goto out;
	}
	buf_reset(&b64);
	buf_append_str(&b64, "b=");
	if (sign_digest(s->key, hmd, hmdlen, &b64, error_r) == -1)
		goto out;
	free(tags[ntags - 1]);
	tags[ntags - 1] = buf_steal(&b64);
	buf_reset(&value);
	fold(&value, tags, ntags, s->key, b_final);
	result = buf_steal(&value);
out:
	for (i = 0; i < ntags; i++)
		free(tags[i]);
	EVP_MD_CTX_free(hctx);
	buf_deinit(&hlist);
	buf_deinit(&hdata);
	buf_deinit(&b64);
	buf_deinit(&value);
	return result;
}

/*
 * dkim_verify.c - DKIM signature verification (RFC 6376, RFC 8463) with
 * libopendkim, and the mapping of its per-signature outcome to the
 * result names of RFC 8601 section 2.7.1.
 *
 * Owns: one DKIM_LIB per verifier (configured once in dkim_verifier_new,
 * read-only afterwards, so the worker threads share it without locks:
 * notes/libraries.md 1.4), the key records of key_file mode, and per
 * message one DKIM handle plus the outcome of each key lookup.
 *
 * Leaves to others: DNS (dns_sync.h: libopendkim's own res_nquery path is
 * neither thread-safe nor bounded in time, so every key record comes
 * through our dns_set_key_lookup callback), the Authentication-Results
 * header itself and the verdict (the dkim filter), logging of results.
 *
 * Hostile input: never dkim_ohdrs() (heap overflow with a z= tag over
 * 32 KB, notes 1.6); canonicalisations are never passed by us (verifying);
 * at most DKIM_VERIFY_MAXSIGS signatures get a key lookup, the others are
 * marked ignored by the prescreen callback before any lookup.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/types.h>

#include <arpa/nameser.h>
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <opendkim/dkim.h>

#include "buf.h"
#include "dkim_verify.h"
#include "dns_sync.h"
#include "log.h"
#include "message_edit.h"
#include "xmalloc.h"

/*
 * Signatures verified per message. A forwarded mailing-list message has
 * two or three; more is an attack on our DNS budget (1000 signatures must
 * not cost 1000 lookups).
 */
#define DKIM_VERIFY_MAXSIGS	8
/* longest key record we accept: libopendkim copies it into 1 KB */
#define KEY_FILE_LINE_MAX	8192
/* a DNS name: RFC 1035 section 2.3.4 */
#define QNAME_MAX		253

/* one "selector._domainkey.domain record" line of key_file */
struct key_record {
	char	*name;		/* owned; lower case, no trailing dot */
	char	*record;	/* owned */
};

struct dkim_verifier {
	DKIM_LIB *lib;			/* owned */
	int	 timeout_ms;
	struct key_record *keys;	/* owned array; key_file mode */
	size_t	 nkeys;
	bool	 use_key_file;
};

/* what our key lookup callback found for one signature */
struct key_outcome {
	const DKIM_SIGINFO *sig;	/* borrowed: the handle's lifetime */
	enum dkim_result result;	/* TEMPERROR or PERMERROR */
	char	 reason[96];
};

enum verification_state {
	DV_HEADERS,		/* waiting for the header fields */
	DV_BODY,		/* eoh done, signatures to verify */
	DV_SKIP,		/* nothing to verify (no or unusable sigs) */
};

struct dkim_verification {
	struct dkim_verifier *v;	/* borrowed: outlives us */
	DKIM	*dkim;			/* owned */
	char	*queue_id;		/* owned */
	enum verification_state state;
	DKIM_STAT eoh_stat;
	/* set when the message cannot be verified at all (no From) */
	const char *message_error;	/* static text */
	enum dkim_result message_result;
	/* DKIM-Signature field values (message_error case), owned */
	char	**sigfields;
	size_t	 nsigfields;
	bool	 multiple_from;
	struct key_outcome outcomes[DKIM_VERIFY_MAXSIGS * 2];
	size_t	 noutcomes;
	struct timespec deadline;	/* key lookups stop here */
};

static void	strlcpy_trunc(char *, size_t, const char *);

/* strlcpy_trunc - bounded copy; truncation is fine for these fields */
static void
strlcpy_trunc(char *dst, size_t n, const char *src)
{
	if (n > 0)
		(void)snprintf(dst, n, "%s", src);
}

/* stat_str - dkim_getresultstr, which is NULL for some codes */
static const char *
stat_str(DKIM_STAT st)
{
	const char *s = dkim_getresultstr(st);

	return s != NULL ? s : "unknown status";
}

/* copy_printable - like strlcpy_trunc, replacing unprintable bytes by '?' */
static void
copy_printable(char *dst, size_t n, const char *src)
{
	size_t i;

	strlcpy_trunc(dst, n, src);
	for (i = 0; dst[i] != '\0'; i++)
		if (!isprint((unsigned char)dst[i]))
			dst[i] = '?';
}

const char *
dkim_result_name(enum dkim_result r)
{
	switch (r) {
	case DKIM_RES_NONE:
		return "none";
	case DKIM_RES_PASS:
		return "pass";
	case DKIM_RES_FAIL:
		return "fail";
	case DKIM_RES_NEUTRAL:
		return "neutral";
	case DKIM_RES_POLICY:
		return "policy";
	case DKIM_RES_TEMPERROR:
		return "temperror";
	case DKIM_RES_PERMERROR:
		return "permerror";
	}
	return "permerror";
}

/*
 * Key records
 */

/* qname_ok - sel._domainkey.dom looks like a DNS name we may ask for */
static bool
qname_ok(const char *s)
{
	size_t len = strlen(s), label = 0;

	if (len == 0 || len > QNAME_MAX)
		return false;
	for (; *s != '\0'; s++) {
		if (*s == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		/* RFC 6376 3.1: selectors and d= are LDH; "_" for _domainkey */
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_')
			return false;
		if (++label > 63)
			return false;
	}
	return true;
}

/* key_file_load - read "name record" lines; '#' starts a comment line */
static int
key_file_load(struct dkim_verifier *v, const char *path, char **error_r)
{
	FILE *fp;
	char *line = NULL, *p, *rec;
	size_t cap = 0, lineno = 0;
	ssize_t n;
	int ret = -1;

	if ((fp = fopen(path, "r")) == NULL) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	while ((n = getline(&line, &cap, fp)) != -1) {
		lineno++;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if ((size_t)n >= KEY_FILE_LINE_MAX) {
			*error_r = xasprintf("%s:%zu: line too long", path,
			    lineno);
			goto out;
		}
		p = line + strspn(line, " \t");
		if (*p == '\0' || *p == '#')
			continue;
		rec = p + strcspn(p, " \t");
		if (*rec == '\0') {
			*error_r = xasprintf("%s:%zu: no record after the "
			    "name", path, lineno);
			goto out;
		}
		*rec++ = '\0';
		rec += strspn(rec, " \t");
		v->keys = xreallocarray(v->keys, v->nkeys + 1,
		    sizeof(*v->keys));
		v->keys[v->nkeys].name = xstrdup(p);
		v->keys[v->nkeys].record = xstrdup(rec);
		for (p = v->keys[v->nkeys].name; *p != '\0'; p++)
			*p = (char)tolower((unsigned char)*p);
		v->nkeys++;
	}
	if (ferror(fp)) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	free(line);
	fclose(fp);
	return ret;
}

/* remaining_ms - time left before the verification's lookup deadline */
static long
remaining_ms(const struct dkim_verification *dv)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (dv->deadline.tv_sec - now.tv_sec) * 1000L +
	    (dv->deadline.tv_nsec - now.tv_nsec) / 1000000L;
}

/* note_outcome - remember why the lookup for sig failed */
static void
note_outcome(struct dkim_verification *dv, const DKIM_SIGINFO *sig,
    enum dkim_result result, const char *reason)
{
	struct key_outcome *o;

	if (dv->noutcomes == sizeof(dv->outcomes) / sizeof(*dv->outcomes))
		return;
	o = &dv->outcomes[dv->noutcomes++];
	o->sig = sig;
	o->result = result;
	strlcpy_trunc(o->reason, sizeof(o->reason), reason);
}

static const struct key_outcome *
find_outcome(const struct dkim_verification *dv, const DKIM_SIGINFO *sig)
{
	size_t i;

	/* the last lookup for a signature counts */
	for (i = dv->noutcomes; i > 0; i--)
		if (dv->outcomes[i - 1].sig == sig)
			return &dv->outcomes[i - 1];
	return NULL;
}

/* put_record - hand a record to libopendkim (NUL-terminated, must fit) */
static DKIM_CBSTAT
put_record(struct dkim_verification *dv, DKIM_SIGINFO *sig,
    const char *rec, size_t len, unsigned char *buf, size_t buflen)
{
	if (len >= buflen || memchr(rec, '\0', len) != NULL) {
		note_outcome(dv, sig, DKIM_RES_PERMERROR,
		    len >= buflen ? "key record too long" :
		    "NUL in key record");
		return DKIM_CBSTAT_NOTFOUND;
	}
	memcpy(buf, rec, len);
	buf[len] = '\0';
	return DKIM_CBSTAT_CONTINUE;
}

/* lookup_dns - the TXT record of qname through dns_sync */
static DKIM_CBSTAT
lookup_dns(struct dkim_verification *dv, DKIM_SIGINFO *sig, const char *qname,
    unsigned char *buf, size_t buflen)
{
	struct dns_sync_answer ans;
	DKIM_CBSTAT cb;
	long left;
	size_t i;
	char why[96];

	left = remaining_ms(dv);
	if (left <= 0) {
		note_outcome(dv, sig, DKIM_RES_TEMPERROR,
		    "key lookup time budget spent");
		return DKIM_CBSTAT_NOTFOUND;
	}
	if (left > dv->v->timeout_ms)
		left = dv->v->timeout_ms;
	memset(&ans, 0, sizeof(ans));
	switch (dns_sync_query(qname, ns_t_txt, (int)left, &ans)) {
	case DNS_SYNC_OK:
		break;
	case DNS_SYNC_NXDOMAIN:
	case DNS_SYNC_NODATA:
		dns_sync_answer_free(&ans);
		note_outcome(dv, sig, DKIM_RES_PERMERROR, "no key record");
		return DKIM_CBSTAT_NOTFOUND;
	case DNS_SYNC_TEMPFAIL:
	default:
		snprintf(why, sizeof(why), "key lookup: %s",
		    ans.error != NULL ? ans.error : "temporary failure");
		dns_sync_answer_free(&ans);
		note_outcome(dv, sig, DKIM_RES_TEMPERROR, why);
		return DKIM_CBSTAT_NOTFOUND;
	}
	/*
	 * RFC 6376 3.6.2.2: several TXT records give undefined results.
	 * Use the first that says it is a DKIM key or has a p= tag; a
	 * record without either is what libopendkim reports as invalid.
	 */
	for (i = 0; i < ans.n; i++)
		if (ans.rrs[i].text != NULL &&
		    (strncmp(ans.rrs[i].text, "v=DKIM1", 7) == 0 ||
		    strstr(ans.rrs[i].text, "p=") != NULL))
			break;
	if (ans.n == 0) {
		dns_sync_answer_free(&ans);
		note_outcome(dv, sig, DKIM_RES_PERMERROR, "no key record");
		return DKIM_CBSTAT_NOTFOUND;
	}
	if (i == ans.n)
		i = 0;
	cb = put_record(dv, sig, ans.rrs[i].text != NULL ?
	    ans.rrs[i].text : "", ans.rrs[i].text_len, buf, buflen);
	dns_sync_answer_free(&ans);
	return cb;
}

/*
 * key_lookup - libopendkim's key callback (dkim_set_key_lookup): the
 * record of s=._domainkey.d= from key_file or the configured resolver.
 *
 * Every failure is returned as NOTFOUND, with the real outcome kept in
 * dv->outcomes for sig_result: for DKIM_CBSTAT_ERROR or TRYAGAIN,
 * dkim_eoh() stops at that signature and leaves the others unverified.
 */
static DKIM_CBSTAT
key_lookup(DKIM *dkim, DKIM_SIGINFO *sig, unsigned char *buf, size_t buflen)
{
	struct dkim_verification *dv = dkim_get_user_context(dkim);
	const char *sel, *dom;
	char qname[QNAME_MAX + 2], *p;
	size_t i;
	int n;

	if (dv == NULL)
		return DKIM_CBSTAT_NOTFOUND;
	sel = (const char *)dkim_sig_getselector(sig);
	dom = (const char *)dkim_sig_getdomain(sig);
	if (sel == NULL || dom == NULL)
		return DKIM_CBSTAT_NOTFOUND;
	n = snprintf(qname, sizeof(qname), "%s._domainkey.%s", sel, dom);
	if (n < 0 || (size_t)n >= sizeof(qname) || !qname_ok(qname)) {
		note_outcome(dv, sig, DKIM_RES_PERMERROR,
		    "invalid key name (s= or d=)");
		return DKIM_CBSTAT_NOTFOUND;
	}
	for (p = qname; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);

	if (!dv->v->use_key_file)
		return lookup_dns(dv, sig, qname, buf, buflen);
	for (i = 0; i < dv->v->nkeys; i++)
		if (strcmp(dv->v->keys[i].name, qname) == 0)
			return put_record(dv, sig, dv->v->keys[i].record,
			    strlen(dv->v->keys[i].record), buf, buflen);
	note_outcome(dv, sig, DKIM_RES_PERMERROR, "no key record");
	return DKIM_CBSTAT_NOTFOUND;
}

/*
 * prescreen - before any key lookup: only the first DKIM_VERIFY_MAXSIGS
 * signatures (the topmost, added by the hops closest to us) are verified.
 */
static DKIM_CBSTAT
prescreen(DKIM *dkim, DKIM_SIGINFO **sigs, int nsigs)
{
	int i;

	(void)dkim;
	for (i = DKIM_VERIFY_MAXSIGS; i < nsigs; i++)
		dkim_sig_ignore(sigs[i]);
	return DKIM_CBSTAT_CONTINUE;
}

/*
 * Verifier
 */

struct dkim_verifier *
dkim_verifier_new(int timeout_ms, const char *key_file, char **error_r)
{
	struct dkim_verifier *v;
	unsigned int flags;
	DKIM_STAT st;

	*error_r = NULL;
	v = xcalloc(1, sizeof(*v));
	v->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
	if (key_file != NULL) {
		v->use_key_file = true;
		if (key_file_load(v, key_file, error_r) == -1)
			goto fail;
	}
	if ((v->lib = dkim_init(NULL, NULL)) == NULL) {
		*error_r = xstrdup("dkim_init failed");
		goto fail;
	}
	/*
	 * BADSIGHANDLES: a DKIM-Signature with a syntax error stays in the
	 * signature list (reported neutral) instead of vanishing, which
	 * would turn a broken signature into dkim=none.
	 */
	flags = DKIM_LIBFLAGS_BADSIGHANDLES;
	st = dkim_options(v->lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags,
	    sizeof(flags));
	if (st == DKIM_STAT_OK)
		st = dkim_set_key_lookup(v->lib, key_lookup);
	if (st == DKIM_STAT_OK)
		st = dkim_set_prescreen(v->lib, prescreen);
	if (st != DKIM_STAT_OK) {
		*error_r = xasprintf("libopendkim setup: %s",
		    stat_str(st));
		goto fail;
	}
	return v;
fail:
	dkim_verifier_free(&v);
	return NULL;
}

void
dkim_verifier_free(struct dkim_verifier **vp)
{
	struct dkim_verifier *v = *vp;
	size_t i;

	if (v == NULL)
		return;
	if (v->lib != NULL)
		dkim_close(v->lib);
	for (i = 0; i < v->nkeys; i++) {
		free(v->keys[i].name);
		free(v->keys[i].record);
	}
	free(v->keys);
	free(v);
	*vp = NULL;
}

/*
 * Verification of one message
 */

struct dkim_verification *
dkim_verification_new(struct dkim_verifier *v, const char *queue_id)
{
	struct dkim_verification *dv;
	DKIM_STAT st;

	dv = xcalloc(1, sizeof(*dv));
	dv->v = v;
	dv->queue_id = xstrdup(queue_id != NULL ? queue_id : "NOQUEUE");
	dv->state = DV_HEADERS;
	/* every lookup of this message together: two full timeouts */
	clock_gettime(CLOCK_MONOTONIC, &dv->deadline);
	dv->deadline.tv_sec += (2L * v->timeout_ms) / 1000;
	dv->deadline.tv_nsec += ((2L * v->timeout_ms) % 1000) * 1000000L;
	if (dv->deadline.tv_nsec >= 1000000000L) {
		dv->deadline.tv_sec++;
		dv->deadline.tv_nsec -= 1000000000L;
	}
	dv->dkim = dkim_verify(v->lib, (const unsigned char *)dv->queue_id,
	    NULL, &st);
	if (dv->dkim == NULL) {
		log_warnx("%s: dkim_verify: %s", dv->queue_id,
		    stat_str(st));
		dv->message_error = "verifier unavailable";
		dv->message_result = DKIM_RES_TEMPERROR;
	} else
		dkim_set_user_context(dv->dkim, dv);
	return dv;
}

/* is_field - the field's name is name (case-insensitive) */
static bool
is_field(const struct header_field *f, const char *name)
{
	return f->name != NULL && strcasecmp(f->name, name) == 0;
}

void
dkim_verification_headers(struct dkim_verification *dv,
    const struct header_list *hl)
{
	const struct header_field *f;
	size_t i, len, nfrom = 0;
	DKIM_STAT st;
	char name[64];

	if (dv->state != DV_HEADERS)
		return;
	for (i = 0; i < hl->n; i++)
		if (is_field(&hl->fields[i], "From"))
			nfrom++;
	dv->multiple_from = nfrom > 1;
	if (nfrom == 0 && dv->message_error == NULL) {
		/*
		 * RFC 6376 5.4: From is always signed, so no signature on a
		 * message without From can verify; libopendkim would give up
		 * on the message (notes 1.1). Each signature is a permerror
		 * (RFC 8601 2.7.1: a required header field is absent).
		 */
		dv->message_error = "no From header field";
		dv->message_result = DKIM_RES_PERMERROR;
	}
	if (dv->message_error != NULL) {
		for (i = 0; i < hl->n &&
		    dv->nsigfields < DKIM_VERIFY_MAXSIGS; i++) {
			f = &hl->fields[i];
			if (!is_field(f, DKIM_SIGNHEADER))
				continue;
			dv->sigfields = xreallocarray(dv->sigfields,
			    dv->nsigfields + 1, sizeof(*dv->sigfields));
			dv->sigfields[dv->nsigfields++] = xstrdup(f->raw);
		}
		dv->state = DV_SKIP;
		return;
	}
	for (i = 0; i < hl->n; i++) {
		f = &hl->fields[i];
		/* "Name: value" with its inner CRLFs, no final CRLF */
		len = strlen(f->raw);
		while (len > 0 && (f->raw[len - 1] == '\n' ||
		    f->raw[len - 1] == '\r'))
			len--;
		st = dkim_header(dv->dkim, (unsigned char *)f->raw, len);
		if (st != DKIM_STAT_OK && log_debug_enabled("dkim"))
			log_debug("dkim", "%s: dkim_header(%s): %s",
			    dv->queue_id, log_escape(name, sizeof(name),
			    f->name), stat_str(st));
	}
	dv->eoh_stat = dkim_eoh(dv->dkim);
	if (dv->eoh_stat == DKIM_STAT_OK)
		dv->state = DV_BODY;
	else {
		/*
		 * NOSIG: nothing to verify. Anything else: libopendkim gave
		 * up on the header block; finish reports what it can.
		 */
		log_debug("dkim", "%s: dkim_eoh: %s", dv->queue_id,
		    stat_str(dv->eoh_stat));
		dv->state = DV_SKIP;
	}
}

void
dkim_verification_body(struct dkim_verification *dv, const void *data,
    size_t len)
{
	if (dv->state != DV_BODY || len == 0)
		return;
	/* l= signatures are satisfied early: the status is not an error */
	(void)dkim_body(dv->dkim, (unsigned char *)data, len);
}

/* tag_value - the value of tag in a tag=value list; FWS removed (owned) */
static char *
tag_value(const char *list, const char *tag)
{
	const char *p = list, *v, *end;
	size_t taglen = strlen(tag), n;
	char *out;

	while (*p != '\0') {
		p += strspn(p, " \t\r\n;");
		v = p + strcspn(p, "=;");
		end = p + strcspn(p, ";");
		if (*v == '=' && v < end) {
			n = (size_t)(v - p);
			while (n > 0 && strchr(" \t\r\n", p[n - 1]) != NULL)
				n--;
			if (n == taglen && strncmp(p, tag, n) == 0) {
				out = xmalloc((size_t)(end - v));
				n = 0;
				for (v++; v < end; v++)
					if (strchr(" \t\r\n", *v) == NULL)
						out[n++] = *v;
				out[n] = '\0';
				return out;
			}
		}
		p = end;
	}
	return NULL;
}

/* fill_from_field - d=, s=, b= of a raw DKIM-Signature field */
static void
fill_from_field(struct dkim_sig_result *r, const char *raw)
{
	const char *colon = strchr(raw, ':');
	char *d, *s, *b;

	if (colon == NULL)
		return;
	d = tag_value(colon + 1, "d");
	s = tag_value(colon + 1, "s");
	b = tag_value(colon + 1, "b");
	copy_printable(r->domain, sizeof(r->domain), d != NULL ? d : "");
	copy_printable(r->selector, sizeof(r->selector), s != NULL ? s : "");
	copy_printable(r->b_prefix, 9, b != NULL ? b : "");
	free(d);
	free(s);
	free(b);
}

/*
 * map_sigerror - RFC 8601 2.7.1 result for a signature libopendkim could
 * not verify: neutral for signatures we cannot process (syntax, unknown
 * algorithm, expired), permerror for a missing or broken key record,
 * fail for a signature or body hash that does not match, policy for
 * what is valid but not acceptable (key too small).
 */
static enum dkim_result
map_sigerror(int err)
{
	switch (err) {
	case DKIM_SIGERROR_BADSIG:
	case DKIM_SIGERROR_TOOLARGE_L:
		return DKIM_RES_FAIL;
	case DKIM_SIGERROR_NOKEY:
	case DKIM_SIGERROR_DNSSYNTAX:
	case DKIM_SIGERROR_MULTIREPLY:
	case DKIM_SIGERROR_KEYVERSION:
	case DKIM_SIGERROR_KEYUNKNOWNHASH:
	case DKIM_SIGERROR_KEYHASHMISMATCH:
	case DKIM_SIGERROR_NOTEMAILKEY:
	case DKIM_SIGERROR_KEYTYPEMISSING:
	case DKIM_SIGERROR_KEYTYPEUNKNOWN:
	case DKIM_SIGERROR_KEYREVOKED:
	case DKIM_SIGERROR_KEYDECODE:
	case DKIM_SIGERROR_SUBDOMAIN:
		return DKIM_RES_PERMERROR;
	case DKIM_SIGERROR_KEYFAIL:
		return DKIM_RES_TEMPERROR;
	case DKIM_SIGERROR_KEYTOOSMALL:
	case DKIM_SIGERROR_MBSFAILED:
		return DKIM_RES_POLICY;
	default:
		return DKIM_RES_NEUTRAL;
	}
}

/* sig_result - the result of one signature after dkim_eom */
static void
sig_result(struct dkim_verification *dv, DKIM_SIGINFO *sig,
    struct dkim_sig_result *r)
{
	const struct key_outcome *o;
	unsigned char *val;
	unsigned int flags = dkim_sig_getflags(sig);
	int err = dkim_sig_geterror(sig), bh = dkim_sig_getbh(sig);
	ssize_t msglen, canonlen, signlen;
	const char *es;

	if ((val = dkim_sig_getdomain(sig)) != NULL)
		copy_printable(r->domain, sizeof(r->domain), (char *)val);
	if ((val = dkim_sig_getselector(sig)) != NULL)
		copy_printable(r->selector, sizeof(r->selector), (char *)val);
	/* RFC 8601 2.7.1 header.b: enough of b= to tell signatures apart */
	if ((val = dkim_sig_gettagvalue(sig, 0, (unsigned char *)"b")) != NULL)
		copy_printable(r->b_prefix, 9, (char *)val);

	if ((flags & DKIM_SIGFLAG_PASSED) != 0 && bh == DKIM_SIGBH_MATCH) {
		r->result = DKIM_RES_PASS;
		strlcpy_trunc(r->reason, sizeof(r->reason), "good signature");
		/*
		 * RFC 6376 8.2: with l= whatever follows the signed part of
		 * the body is unsigned. Still a pass; say so in the comment.
		 */
		if (dkim_sig_getcanonlen(dv->dkim, sig, &msglen, &canonlen,
		    &signlen) == DKIM_STAT_OK && signlen >= 0 &&
		    canonlen < msglen)
			strlcpy_trunc(r->reason, sizeof(r->reason),
			    "good signature, l= leaves part of the body "
			    "unsigned");
		if (dv->multiple_from) {
			/* RFC 6376 8.15: which From did the signer mean? */
			r->result = DKIM_RES_POLICY;
			strlcpy_trunc(r->reason, sizeof(r->reason),
			    "good signature, several From fields");
		}
		return;
	}
	if ((flags & DKIM_SIGFLAG_PASSED) != 0 && bh == DKIM_SIGBH_MISMATCH) {
		r->result = DKIM_RES_FAIL;
		strlcpy_trunc(r->reason, sizeof(r->reason),
		    "body hash mismatch");
		return;
	}
	if ((o = find_outcome(dv, sig)) != NULL) {
		r->result = o->result;
		strlcpy_trunc(r->reason, sizeof(r->reason), o->reason);
		return;
	}
	if (err == DKIM_SIGERROR_UNKNOWN || err == DKIM_SIGERROR_OK) {
		if ((flags & DKIM_SIGFLAG_PROCESSED) == 0) {
			/* libopendkim stopped before this one */
			r->result = DKIM_RES_TEMPERROR;
			strlcpy_trunc(r->reason, sizeof(r->reason),
			    "not verified");
		} else {
			r->result = DKIM_RES_FAIL;
			strlcpy_trunc(r->reason, sizeof(r->reason),
			    "bad signature");
		}
		return;
	}
	r->result = map_sigerror(err);
	es = dkim_sig_geterrorstr(err);
	strlcpy_trunc(r->reason, sizeof(r->reason),
	    es != NULL ? es : "signature error");
}

size_t
dkim_verification_finish(struct dkim_verification *dv,
    struct dkim_sig_result *results, size_t max)
{
	DKIM_SIGINFO **sigs;
	DKIM_STAT st;
	size_t i, n = 0;
	int nsigs = 0;

	if (max > DKIM_VERIFY_MAXSIGS)
		max = DKIM_VERIFY_MAXSIGS;
	if (dv->message_error != NULL) {
		for (i = 0; i < dv->nsigfields && n < max; i++, n++) {
			memset(&results[n], 0, sizeof(results[n]));
			fill_from_field(&results[n], dv->sigfields[i]);
			results[n].result = dv->message_result;
			strlcpy_trunc(results[n].reason,
			    sizeof(results[n].reason), dv->message_error);
		}
		return n;
	}
	if (dv->state == DV_HEADERS)
		return 0;	/* the caller never gave us the header fields */
	if (dv->state == DV_BODY) {
		st = dkim_eom(dv->dkim, NULL);
		log_debug("dkim", "%s: dkim_eom: %s", dv->queue_id,
		    stat_str(st));
	}
	if (dv->eoh_stat == DKIM_STAT_NOSIG)
		return 0;
	if (dkim_getsiglist(dv->dkim, &sigs, &nsigs) != DKIM_STAT_OK ||
	    sigs == NULL)
		return 0;
	for (i = 0; i < (size_t)nsigs && n < max; i++) {
		if ((dkim_sig_getflags(sigs[i]) & DKIM_SIGFLAG_IGNORE) != 0)
			continue;
		memset(&results[n], 0, sizeof(results[n]));
		sig_result(dv, sigs[i], &results[n]);
		log_debug("dkim", "%s: d=%s s=%s b=%s: %s (%s)", dv->queue_id,
		    results[n].domain, results[n].selector,
		    results[n].b_prefix, dkim_result_name(results[n].result),
		    results[n].reason);
		n++;
	}
	return n;
}

void
dkim_verification_free(struct dkim_verification **dvp)
{
	struct dkim_verification *dv = *dvp;
	size_t i;

	if (dv == NULL)
		return;
	if (dv->dkim != NULL)
		dkim_free(dv->dkim);
	for (i = 0; i < dv->nsigfields; i++)
		free(dv->sigfields[i]);
	free(dv->sigfields);
	free(dv->queue_id);
	free(dv);
	*dvp = NULL;
}

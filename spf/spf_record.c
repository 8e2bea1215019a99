/*
 * spf_record.c - an RFC 7208 record checker and rewriter of our own, and
 * the macro expander of explanations, for the postern-spf helper.
 *
 * libspf2 1.2.10 does not check domain-spec and macro syntax, accepts
 * duplicate modifiers and leading zeros, refuses prefix lengths of 0 and
 * modifier names with dots or dashes, and follows "redirect=" next to
 * "all" (doc/spf-conformance.md). spf_eval.c runs every "v=spf1" record
 * through spf_record_rewrite before libspf2 sees it: an invalid record
 * makes the check permerror, a valid one is handed over in a form
 * libspf2 evaluates the way RFC 7208 says.
 *
 * Owns nothing beyond the caller's buffers: pure functions, no DNS. The
 * DNS side of the rewrites (the any_label names) is spf_eval.c's.
 *
 * RFC 7208: 4.5 (record selection), 4.6.1 (term syntax), 5 (mechanisms),
 * 6 (modifiers), 7 (macros), 12 (collected ABNF).
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "spf_record.h"

#define SPF_MACRO_MAX_PARTS	128	/* parts of one macro value */

enum mtok_kind {
	MTOK_LITERAL,		/* a run of macro-literal (and SP in exp) */
	MTOK_ESCAPE,		/* %% %_ %- */
	MTOK_MACRO,		/* %{...} */
};

/* one token of a macro-string (RFC 7208 7.1) */
struct mtok {
	enum mtok_kind kind;
	const char *start;	/* borrowed: the token's text */
	size_t	 len;
	char	 letter;	/* MACRO: lower case */
	bool	 is_upper;	/* MACRO: URL-escape the value */
	unsigned digits;	/* MACRO: right-hand parts, 0: all */
	bool	 is_reverse;
	const char *delims;	/* MACRO: borrowed, ndelims bytes */
	size_t	 ndelims;
};

static bool
is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* is_literal - macro-literal = %x21-24 / %x26-7E, and SP in exp text */
static bool
is_literal(int c, bool is_exp)
{
	return (c >= 0x21 && c <= 0x7e && c != '%') || (is_exp && c == ' ');
}

/*
 * mtok_next - the next token of [*pp, end). Returns 1 with *t filled, 0
 * at the end, -1 with *error_r on a syntax error.
 */
static int
mtok_next(const char **pp, const char *end, bool is_exp, struct mtok *t,
    const char **error_r)
{
	const char *p = *pp, *q;
	char c;

	if (p >= end)
		return 0;
	memset(t, 0, sizeof(*t));
	t->start = p;
	if (*p != '%') {
		for (q = p; q < end && is_literal((unsigned char)*q, is_exp);
		    q++)
			;
		if (q == p) {
			*error_r = "invalid character in a macro-string";
			return -1;
		}
		t->kind = MTOK_LITERAL;
		t->len = (size_t)(q - p);
		*pp = q;
		return 1;
	}
	/* RFC 7208 7.1: "%" is followed by "{", "%", "_" or "-" only */
	if (p + 1 >= end) {
		*error_r = "a lone '%' in a macro-string";
		return -1;
	}
	if (p[1] == '%' || p[1] == '_' || p[1] == '-') {
		t->kind = MTOK_ESCAPE;
		t->len = 2;
		*pp = p + 2;
		return 1;
	}
	if (p[1] != '{') {
		*error_r = "'%' not followed by '{', '%', '_' or '-'";
		return -1;
	}
	q = p + 2;
	if (q >= end) {
		*error_r = "unterminated macro";
		return -1;
	}
	c = *q++;
	t->is_upper = c >= 'A' && c <= 'Z';
	if (t->is_upper)
		c = (char)(c - 'A' + 'a');
	if (strchr("slodiphv", c) == NULL &&
	    !(is_exp && strchr("crt", c) != NULL)) {
		*error_r = "invalid macro letter";
		return -1;
	}
	t->letter = c;
	/* transformers = *DIGIT [ "r" ]; the DIGIT value is nonzero (7.3) */
	if (q < end && is_digit((unsigned char)*q)) {
		unsigned long v = 0;

		for (; q < end && is_digit((unsigned char)*q); q++)
			if (v <= SPF_MACRO_MAX_PARTS)
				v = v * 10 + (unsigned long)(*q - '0');
		if (v == 0) {
			*error_r = "macro transformer of 0 parts";
			return -1;
		}
		t->digits = v > SPF_MACRO_MAX_PARTS ? SPF_MACRO_MAX_PARTS :
		    (unsigned)v;
	}
	if (q < end && (*q == 'r' || *q == 'R')) {
		t->is_reverse = true;
		q++;
	}
	t->delims = q;
	for (; q < end && strchr(".-+,/_=", *q) != NULL && *q != '\0'; q++)
		;
	t->ndelims = (size_t)(q - t->delims);
	if (q >= end || *q != '}') {
		*error_r = "invalid macro";
		return -1;
	}
	q++;
	t->kind = MTOK_MACRO;
	t->len = (size_t)(q - p);
	*pp = q;
	return 1;
}

int
spf_macro_check(const char *s, size_t len, bool is_exp, const char **error_r)
{
	const char *p = s, *end = s + len;
	struct mtok t;
	int rc;

	while ((rc = mtok_next(&p, end, is_exp, &t, error_r)) == 1)
		;
	return rc;
}

bool
spf_macro_uses_p(const char *s, size_t len)
{
	const char *p = s, *end = s + len, *err;
	struct mtok t;

	while (mtok_next(&p, end, true, &t, &err) == 1)
		if (t.kind == MTOK_MACRO && t.letter == 'p')
			return true;
	return false;
}

/*
 * is_toplabel - toplabel = ( *alphanum ALPHA *alphanum ) /
 * ( 1*alphanum "-" *( alphanum / "-" ) alphanum )  (RFC 7208 7.1)
 */
static bool
is_toplabel(const char *s, size_t len)
{
	size_t i;
	bool has_alpha = false, has_dash = false;

	if (len == 0)
		return false;
	for (i = 0; i < len; i++) {
		if (is_alpha((unsigned char)s[i]))
			has_alpha = true;
		else if (s[i] == '-')
			has_dash = true;
		else if (!is_digit((unsigned char)s[i]))
			return false;
	}
	if (!has_dash)
		return has_alpha;
	return s[0] != '-' && s[len - 1] != '-';
}

/*
 * check_domain_spec - domain-spec = macro-string domain-end, domain-end =
 * ( "." toplabel [ "." ] ) / macro-expand (RFC 7208 7.1). The syntax is
 * checked before expansion, never after (the suite's invalid-hello-macro).
 */
static int
check_domain_spec(const char *s, size_t len, const char **error_r)
{
	const char *p = s, *end = s + len, *dot;
	struct mtok t, last;
	size_t n;
	int rc;

	if (len == 0) {
		*error_r = "empty domain-spec";
		return -1;
	}
	memset(&last, 0, sizeof(last));
	while ((rc = mtok_next(&p, end, false, &t, error_r)) == 1)
		last = t;
	if (rc == -1)
		return -1;
	if (last.kind != MTOK_LITERAL)
		return 0;
	n = last.len;
	if (n > 0 && last.start[n - 1] == '.')
		n--;
	for (dot = NULL, p = last.start; p < last.start + n; p++)
		if (*p == '.')
			dot = p;
	if (dot == NULL || !is_toplabel(dot + 1,
	    (size_t)(last.start + n - dot - 1))) {
		*error_r = "domain-spec does not end in a valid top label";
		return -1;
	}
	return 0;
}

/*
 * parse_cidr - "/" length, no leading zero (RFC 7208 5.6
 * ip4-cidr-length, ip6-cidr-length), at most max. -1 when invalid.
 */
static int
parse_cidr(const char *s, size_t len, int max)
{
	int v = 0;
	size_t i;

	if (len == 0 || len > 3 || (s[0] == '0' && len > 1))
		return -1;
	for (i = 0; i < len; i++) {
		if (!is_digit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v <= max ? v : -1;
}

/* is_ip4_network - qnum "." qnum "." qnum "." qnum, no leading zeros */
static bool
is_ip4_network(const char *s, size_t len)
{
	size_t i = 0, start;
	int parts, v;

	for (parts = 0; parts < 4; parts++) {
		if (parts > 0) {
			if (i >= len || s[i] != '.')
				return false;
			i++;
		}
		start = i;
		v = 0;
		while (i < len && is_digit((unsigned char)s[i]) &&
		    i - start < 3)
			v = v * 10 + (s[i++] - '0');
		if (i == start || v > 255 ||
		    (s[start] == '0' && i - start > 1))
			return false;
	}
	return i == len;
}

static bool
is_ip6_network(const char *s, size_t len)
{
	char tmp[INET6_ADDRSTRLEN + 1];
	struct in6_addr a;

	if (len == 0 || len >= sizeof(tmp) || memchr(s, '\0', len) != NULL)
		return false;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	return inet_pton(AF_INET6, tmp, &a) == 1;
}

/*
 * split_dual_cidr - a/mx: dual-cidr-length = [ ip4-cidr-length ]
 * [ "/" ip6-cidr-length ] at the end of [s, s + *len). A domain-spec may
 * hold '/' itself (a macro-literal), so the lengths are taken from the
 * right. *len shrinks to what is left; c4/c6 are -1 when absent. -1 when
 * a length is invalid.
 */
static int
split_dual_cidr(const char *s, size_t *len, int *c4, int *c6,
    const char **error_r)
{
	size_t n = *len, d;

	*c4 = *c6 = -1;
	for (d = n; d > 0 && is_digit((unsigned char)s[d - 1]); d--)
		;
	if (d < n && d >= 2 && s[d - 1] == '/' && s[d - 2] == '/') {
		if ((*c6 = parse_cidr(s + d, n - d, 128)) == -1)
			goto bad;
		n = d - 2;
		for (d = n; d > 0 && is_digit((unsigned char)s[d - 1]); d--)
			;
	}
	if (d < n && d >= 1 && s[d - 1] == '/') {
		if ((*c4 = parse_cidr(s + d, n - d, 32)) == -1)
			goto bad;
		n = d - 1;
	}
	*len = n;
	return 0;
bad:
	*error_r = "invalid CIDR prefix length";
	return -1;
}

/* term_eq - is the term name [s, s+len) equal to name, ignoring case? */
static bool
term_eq(const char *s, size_t len, const char *name)
{
	return strlen(name) == len && strncasecmp(s, name, len) == 0;
}

bool
spf_record_is_spf1(const char *text, size_t len)
{
	return len >= 6 && strncasecmp(text, "v=spf1", 6) == 0 &&
	    (len == 6 || text[6] == ' ');
}

/* the state of one record's rewrite */
struct rewrite {
	const struct spf_record_opts *opts;
	struct buf *out;
	bool	 has_all;
	const char *redirect;	/* borrowed: the redirect= term */
	size_t	 redirect_len;
	const char *exp;
};

static void
emit(struct rewrite *rw, const char *s, size_t len)
{
	buf_append(rw->out, " ", 1);
	buf_append(rw->out, s, len);
}

/* mechanism_a_mx - "a" / "mx" [ ":" domain-spec ] [ dual-cidr-length ] */
static int
mechanism_a_mx(struct rewrite *rw, const char *q, size_t qlen,
    const char *name, const char *rest, size_t rlen, const char **error_r)
{
	const struct spf_record_opts *o = rw->opts;
	const char *spec = NULL;
	size_t slen = 0;
	int c4, c6, rel;

	if (split_dual_cidr(rest, &rlen, &c4, &c6, error_r) == -1)
		return -1;
	if (rlen > 0) {
		if (rest[0] != ':') {
			*error_r = "unknown mechanism";
			return -1;
		}
		spec = rest + 1;
		slen = rlen - 1;
		if (check_domain_spec(spec, slen, error_r) == -1)
			return -1;
	}
	rel = o->client_is_ip6 ? c6 : c4;
	buf_append(rw->out, " ", 1);
	buf_append(rw->out, q, qlen);
	buf_append_str(rw->out, name);
	if (rel == 0 && o->any_label != NULL) {
		/* RFC 7208 5.6: a /0 network holds every address */
		buf_printf(rw->out, ":%s.", o->any_label);
		if (spec != NULL)
			buf_append(rw->out, spec, slen);
		else
			buf_append_str(rw->out, "%{d}");
		return 0;
	}
	if (spec != NULL) {
		buf_append(rw->out, ":", 1);
		buf_append(rw->out, spec, slen);
	}
	/* only the client's family's length matters (RFC 7208 5.3) */
	if (!o->client_is_ip6 && c4 >= 0)
		buf_printf(rw->out, "/%d", c4);
	if (o->client_is_ip6 && c6 >= 0)
		buf_printf(rw->out, "//%d", c6);
	return 0;
}

/* mechanism_ip - "ip4" / "ip6" ":" network [ cidr-length ] */
static int
mechanism_ip(struct rewrite *rw, const char *q, size_t qlen, bool is_6,
    const char *term, size_t tlen, const char *rest, size_t rlen,
    const char **error_r)
{
	const char *slash;
	size_t nlen;
	int c = -1;

	if (rlen < 2 || rest[0] != ':') {
		*error_r = "ip4/ip6 without a network";
		return -1;
	}
	rest++;
	rlen--;
	slash = memchr(rest, '/', rlen);
	nlen = slash != NULL ? (size_t)(slash - rest) : rlen;
	if (is_6 ? !is_ip6_network(rest, nlen) :
	    !is_ip4_network(rest, nlen)) {
		*error_r = "invalid ip4/ip6 network";
		return -1;
	}
	if (slash != NULL && (c = parse_cidr(slash + 1, rlen - nlen - 1,
	    is_6 ? 128 : 32)) == -1) {
		*error_r = "invalid CIDR prefix length";
		return -1;
	}
	if (c != 0) {
		emit(rw, term, tlen);
		return 0;
	}
	/* libspf2 refuses /0 (RFC 7208 5.6 allows it): two halves */
	buf_append(rw->out, " ", 1);
	buf_append(rw->out, q, qlen);
	buf_append_str(rw->out, is_6 ? "ip6:::/1 " : "ip4:0.0.0.0/1 ");
	buf_append(rw->out, q, qlen);
	buf_append_str(rw->out, is_6 ? "ip6:8000::/1" : "ip4:128.0.0.0/1");
	return 0;
}

/* directive - [ qualifier ] mechanism (RFC 7208 4.6.1, 5) */
static int
directive(struct rewrite *rw, const char *term, size_t tlen,
    const char **error_r)
{
	const char *p = term, *end = term + tlen, *name;
	size_t qlen = 0, nlen;

	if (*p != '\0' && strchr("+-?~", *p) != NULL) {
		qlen = 1;
		p++;
	}
	for (name = p; p < end && (is_alpha((unsigned char)*p) ||
	    is_digit((unsigned char)*p)); p++)
		;
	nlen = (size_t)(p - name);
	if (term_eq(name, nlen, "all")) {
		if (p != end) {
			*error_r = "\"all\" takes no arguments";
			return -1;
		}
		rw->has_all = true;
		emit(rw, term, tlen);
		return 0;
	}
	if (term_eq(name, nlen, "include") || term_eq(name, nlen, "exists")) {
		if (p == end || *p != ':') {
			*error_r = "include/exists without a domain";
			return -1;
		}
		if (check_domain_spec(p + 1, (size_t)(end - p - 1),
		    error_r) == -1)
			return -1;
		emit(rw, term, tlen);
		return 0;
	}
	if (term_eq(name, nlen, "ptr")) {
		if (p != end && (*p != ':' || check_domain_spec(p + 1,
		    (size_t)(end - p - 1), error_r) == -1)) {
			if (*p != ':')
				*error_r = "unknown mechanism";
			return -1;
		}
		emit(rw, term, tlen);
		return 0;
	}
	if (term_eq(name, nlen, "a"))
		return mechanism_a_mx(rw, term, qlen, "a", p,
		    (size_t)(end - p), error_r);
	if (term_eq(name, nlen, "mx"))
		return mechanism_a_mx(rw, term, qlen, "mx", p,
		    (size_t)(end - p), error_r);
	if (term_eq(name, nlen, "ip4") || term_eq(name, nlen, "ip6"))
		return mechanism_ip(rw, term, qlen, name[2] == '6', term,
		    tlen, p, (size_t)(end - p), error_r);
	*error_r = "unknown mechanism";
	return -1;
}

/*
 * modifier_name - length of name = ALPHA *( ALPHA / DIGIT / "-" / "_" /
 * "." ) at s when "=" follows it (a modifier), else 0
 */
static size_t
modifier_name(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || !is_alpha((unsigned char)s[0]))
		return 0;
	for (i = 1; i < len; i++)
		if (!is_alpha((unsigned char)s[i]) &&
		    !is_digit((unsigned char)s[i]) &&
		    s[i] != '-' && s[i] != '_' && s[i] != '.')
			break;
	return i < len && s[i] == '=' ? i : 0;
}

/* modifier - redirect=, exp=, or an unknown one (RFC 7208 6) */
static int
modifier(struct rewrite *rw, const char *term, size_t tlen, size_t nlen,
    const char **error_r)
{
	const char *v = term + nlen + 1;
	size_t vlen = tlen - nlen - 1;

	if (term_eq(term, nlen, "redirect") || term_eq(term, nlen, "exp")) {
		bool is_redirect = nlen == 8;

		/* RFC 7208 6: each at most once */
		if (is_redirect ? rw->redirect != NULL : rw->exp != NULL) {
			*error_r = "redirect= or exp= given twice";
			return -1;
		}
		if (check_domain_spec(v, vlen, error_r) == -1)
			return -1;
		if (is_redirect) {
			rw->redirect = term;
			rw->redirect_len = tlen;
		} else {
			rw->exp = term;
			emit(rw, term, tlen);
		}
		return 0;
	}
	/* unknown-modifier = name "=" macro-string: checked, then dropped */
	return spf_macro_check(v, vlen, false, error_r);
}

int
spf_record_rewrite(const char *text, size_t len,
    const struct spf_record_opts *opts, struct buf *out,
    const char **error_r)
{
	struct rewrite rw;
	const char *p, *end = text + len, *term;
	size_t start = out->len, nlen;
	int rc = 0;

	if (!spf_record_is_spf1(text, len)) {
		*error_r = "not an SPF version 1 record";
		return -1;
	}
	memset(&rw, 0, sizeof(rw));
	rw.opts = opts;
	rw.out = out;
	buf_append_str(out, "v=spf1");
	/* terms = *( 1*SP ( directive / modifier ) ), then *SP */
	for (p = text + 6; p < end && rc == 0;) {
		while (p < end && *p == ' ')
			p++;
		if (p == end)
			break;
		for (term = p; p < end && *p != ' '; p++)
			;
		if ((nlen = modifier_name(term, (size_t)(p - term))) > 0)
			rc = modifier(&rw, term, (size_t)(p - term), nlen,
			    error_r);
		else
			rc = directive(&rw, term, (size_t)(p - term),
			    error_r);
	}
	if (rc == -1) {
		out->len = start;
		if (out->data != NULL)
			out->data[start] = '\0';
		return -1;
	}
	/* RFC 7208 6.1: redirect is ignored when there is an "all" */
	if (rw.redirect != NULL && !rw.has_all)
		emit(&rw, rw.redirect, rw.redirect_len);
	/* libspf2 wants the space after the version even with no terms */
	if (out->len == start + 6)
		buf_append(out, " ", 1);
	return 0;
}

bool
spf_record_name_check(const char *name)
{
	size_t lab = 0, len = strlen(name), i;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0)
		return false;
	for (i = 0; i <= len; i++) {
		if (i == len || name[i] == '.') {
			if (lab == 0 || lab > SPF_RECORD_MAX_LABEL)
				return false;
			lab = 0;
		} else
			lab++;
	}
	return true;
}

size_t
spf_record_name_trim(const char *name)
{
	size_t len = strlen(name), off = 0;
	const char *dot;

	if (len > 0 && name[len - 1] == '.')
		len--;
	while (len - off > SPF_RECORD_MAX_NAME) {
		if ((dot = memchr(name + off, '.', len - off)) == NULL)
			return strlen(name);
		off = (size_t)(dot - name) + 1;
	}
	return off;
}

/* macro_value - the value of macro letter c (RFC 7208 7.3) into b */
static void
macro_value(char c, const struct spf_macro_env *env, struct buf *b)
{
	char tmp[INET6_ADDRSTRLEN];
	const char *s = env->sender != NULL ? env->sender : "", *at;
	int i;

	at = strrchr(s, '@');
	switch (c) {
	case 's':
		buf_append_str(b, s);
		break;
	case 'l':
		if (at != NULL && at > s)
			buf_append(b, s, (size_t)(at - s));
		else
			buf_append_str(b, "postmaster");
		break;
	case 'o':
		buf_append_str(b, at != NULL ? at + 1 : s);
		break;
	case 'd':
		buf_append_str(b, env->domain != NULL ? env->domain : "");
		break;
	case 'i':
		if (env->family == AF_INET6) {
			/*
			 * dot-separated nibbles (7.3). Upper case, as the
			 * RFC 7208 suite wants; the RFC leaves the case
			 * open and DNS ignores it (RFC 4343).
			 */
			for (i = 0; i < 16; i++)
				buf_printf(b, "%s%X.%X", i > 0 ? "." : "",
				    env->addr6.s6_addr[i] >> 4,
				    env->addr6.s6_addr[i] & 0xf);
			break;
		}
		/* FALLTHROUGH */
	case 'c':
		if (env->family == AF_INET6)
			inet_ntop(AF_INET6, &env->addr6, tmp, sizeof(tmp));
		else
			inet_ntop(AF_INET, &env->addr4, tmp, sizeof(tmp));
		buf_append_str(b, tmp);
		break;
	case 'p':
		buf_append_str(b, env->ptr_name != NULL ? env->ptr_name :
		    "unknown");
		break;
	case 'v':
		buf_append_str(b, env->family == AF_INET6 ? "ip6" :
		    "in-addr");
		break;
	case 'h':
		buf_append_str(b, env->helo != NULL ? env->helo : "");
		break;
	case 'r':
		buf_append_str(b, env->receiver != NULL ? env->receiver :
		    "unknown");
		break;
	case 't':
		buf_printf(b, "%lld", (long long)env->now);
		break;
	}
}

/*
 * macro_transform - split v on the delimiters, reverse, keep the
 * right-most parts, join with "." (RFC 7208 7.3), URL-escape for an
 * upper-case letter (RFC 3986 unreserved characters stay), into out
 */
static int
macro_transform(const struct mtok *t, const char *v, size_t vlen,
    struct buf *out)
{
	const char *part[SPF_MACRO_MAX_PARTS];
	size_t plen[SPF_MACRO_MAX_PARTS];
	const char *delims = t->ndelims > 0 ? t->delims : ".";
	size_t nd = t->ndelims > 0 ? t->ndelims : 1, n = 0, i, first, k;
	const char *p = v, *end = v + vlen, *q;
	struct buf tmp;
	int rc = 0;

	for (;;) {
		for (q = p; q < end && memchr(delims, *q, nd) == NULL; q++)
			;
		if (n == SPF_MACRO_MAX_PARTS) {
			/* more parts than we keep: the last takes the rest */
			plen[n - 1] = (size_t)(end - part[n - 1]);
			break;
		}
		part[n] = p;
		plen[n++] = (size_t)(q - p);
		if (q >= end)
			break;
		p = q + 1;
	}
	if (t->is_reverse)
		for (i = 0; i < n / 2; i++) {
			const char *sp = part[i];
			size_t sl = plen[i];

			part[i] = part[n - 1 - i];
			plen[i] = plen[n - 1 - i];
			part[n - 1 - i] = sp;
			plen[n - 1 - i] = sl;
		}
	first = t->digits > 0 && t->digits < n ? n - t->digits : 0;
	buf_init(&tmp, 0);
	for (i = first; i < n; i++) {
		if (i > first)
			buf_append(&tmp, ".", 1);
		buf_append(&tmp, part[i], plen[i]);
	}
	if (!t->is_upper)
		rc = buf_append(out, tmp.data != NULL ? tmp.data : "", tmp.len);
	else
		for (k = 0; k < tmp.len && rc == 0; k++) {
			unsigned char c = (unsigned char)tmp.data[k];

			if (is_alpha(c) || is_digit(c) ||
			    strchr("-._~", c) != NULL)
				rc = buf_append(out, &c, 1);
			else
				rc = buf_printf(out, "%%%02X", c);
		}
	buf_deinit(&tmp);
	return rc;
}

int
spf_macro_expand(const char *s, size_t len, const struct spf_macro_env *env,
    bool is_exp, struct buf *out, const char **error_r)
{
	const char *p = s, *end = s + len;
	struct mtok t;
	struct buf v;
	int rc = 0, r = 0;

	while (r == 0 && (rc = mtok_next(&p, end, is_exp, &t,
	    error_r)) == 1) {
		switch (t.kind) {
		case MTOK_LITERAL:
			r = buf_append(out, t.start, t.len);
			break;
		case MTOK_ESCAPE:
			r = buf_append_str(out, t.start[1] == '%' ? "%" :
			    t.start[1] == '_' ? " " : "%20");
			break;
		case MTOK_MACRO:
			buf_init(&v, 0);
			macro_value(t.letter, env, &v);
			r = macro_transform(&t, v.data != NULL ? v.data : "",
			    v.len, out);
			buf_deinit(&v);
			break;
		}
	}
	if (r == -1) {
		*error_r = "macro expansion too long";
		return -1;
	}
	return rc;
}

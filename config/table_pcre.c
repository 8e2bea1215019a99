/*
 * table_pcre.c - "pcre:/file": Postfix pcre_table(5) files on PCRE2 with
 * JIT.
 *
 * A rule is "/regex/flags result" or "!/regex/flags result"; "if
 * /regex/flags" ... "endif" blocks nest; the first matching rule wins.
 * The delimiter may be any character that is not alphanumeric or
 * whitespace; a backslash-escaped delimiter stays in the regex. Flags
 * toggle PCRE2 options: i (caseless, on by default), s (dotall, on by
 * default), m (multiline), x (extended), A (anchored), E (dollar end
 * only), U (ungreedy); X is accepted and ignored (a PCRE1 option with no
 * PCRE2 equivalent). Results may use $1..$99, ${n}, $(n) and $$, checked
 * against the regex's capture count at load time; negated rules cannot
 * use them because nothing matched.
 *
 * Patterns are compiled in UTF mode with PCRE2_MATCH_INVALID_UTF (mail
 * headers are often not valid UTF-8), falling back to byte mode for a
 * pattern that is not valid UTF-8 itself (Latin-1 files).
 *
 * The compiled code is shared read-only by all threads; match data, the
 * match context and the JIT stack are per thread (libraries.md 6).
 *
 * Running every rule in turn costs one pcre2_match per rule per header
 * and per body line, too much for tables of thousands of rules, so at
 * load time table_pcre_fast.c analyses each pattern and builds "plans"
 * (a header-name index, required literals, combined prefilter regexes)
 * that give the same answer with less work; this file hands the lookup
 * to them. The first matching rule in file order still wins, and $n
 * results come from that rule's own match. The straightforward
 * rule-by-rule evaluation is kept here (pcre_eval_reference): with
 * POSTERN_PCRE_REFERENCE=1 in the environment when a table is opened,
 * that table uses it (for tests and benchmarks; see
 * t/unit/test_table_pcre_fast.c and bench/regex.c).
 *
 * SPDX-License-Identifier: ISC
 */
#include <config.h>	/* autoconf's; this directory has its own config.h */

#include <ctype.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "table.h"
#include "table-private.h"
#include "table_pcre-private.h"
#include "xmalloc.h"

/* CPU bound for the interpreter fallback; JIT stack bounds per thread */
#define PCRE_MATCH_LIMIT	1000000
#define PCRE_JIT_STACK_MIN	(32 * 1024)
#define PCRE_JIT_STACK_MAX	(1024 * 1024)
/* highest $n a result may name */
#define PCRE_MAX_SUBST		99

static pthread_key_t pcre_tls_key;
static pthread_once_t pcre_tls_once = PTHREAD_ONCE_INIT;

static void
pcre_tls_destroy(void *arg)
{
	struct pcre_tls *tls = arg;

	pcre2_match_data_free(tls->md);
	pcre2_match_context_free(tls->mc);
	pcre2_jit_stack_free(tls->js);
	buf_deinit(&tls->out);
	free(tls->stamp);
	free(tls);
}

static void
pcre_tls_init(void)
{
	if (pthread_key_create(&pcre_tls_key, pcre_tls_destroy) != 0)
		fatalx("pcre: pthread_key_create failed");
}

/* pcre_tls_get - this thread's state, with match data for pairs pairs */
static struct pcre_tls *
pcre_tls_get(uint32_t pairs)
{
	struct pcre_tls *tls;

	pthread_once(&pcre_tls_once, pcre_tls_init);
	if ((tls = pthread_getspecific(pcre_tls_key)) == NULL) {
		tls = xcalloc(1, sizeof(*tls));
		buf_init(&tls->out, 0);
		if ((tls->mc = pcre2_match_context_create(NULL)) == NULL ||
		    (tls->js = pcre2_jit_stack_create(PCRE_JIT_STACK_MIN,
		    PCRE_JIT_STACK_MAX, NULL)) == NULL)
			fatalx("pcre: out of memory");
		pcre2_jit_stack_assign(tls->mc, NULL, tls->js);
		pcre2_set_match_limit(tls->mc, PCRE_MATCH_LIMIT);
		if (pthread_setspecific(pcre_tls_key, tls) != 0)
			fatalx("pcre: pthread_setspecific failed");
	}
	if (pairs < 10)
		pairs = 10;
	if (tls->md == NULL || tls->md_pairs < pairs) {
		pcre2_match_data_free(tls->md);
		if ((tls->md = pcre2_match_data_create(pairs, NULL)) == NULL)
			fatalx("pcre: out of memory");
		tls->md_pairs = pairs;
	}
	return tls;
}

static struct pcre_rule *
pcre_table_add(struct pcre_table *pt, enum pcre_rule_kind kind)
{
	struct pcre_rule *r;

	pt->rules = xreallocarray(pt->rules, pt->nrules + 1,
	    sizeof(*pt->rules));
	r = &pt->rules[pt->nrules++];
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	return r;
}

/*
 * pcre_check_result - validate the $ syntax of a result template and
 * that every $n exists in a regex with ncapture groups.
 */
static int
pcre_check_result(const char *res, uint32_t ncapture, bool negated,
    bool *has_subst_r, char **error_r)
{
	const char *p;
	unsigned long n;
	char close;

	*has_subst_r = false;
	for (p = res; (p = strchr(p, '$')) != NULL; ) {
		*has_subst_r = true;
		p++;
		if (*p == '$') {
			p++;
			continue;
		}
		close = *p == '{' ? '}' : *p == '(' ? ')' : '\0';
		if (close != '\0')
			p++;
		if (!isdigit((unsigned char)*p)) {
			*error_r = xstrdup("bad '$' in result (write $$ for a "
			    "dollar sign)");
			return -1;
		}
		for (n = 0; isdigit((unsigned char)*p) && n <= PCRE_MAX_SUBST;
		    p++)
			n = n * 10 + (unsigned long)(*p - '0');
		if (close != '\0' && *p++ != close) {
			*error_r = xasprintf("missing '%c' in result", close);
			return -1;
		}
		if (negated) {
			*error_r = xasprintf("$%lu in the result of a negated "
			    "pattern: nothing matched", n);
			return -1;
		}
		if (n == 0 || n > ncapture) {
			*error_r = xasprintf("$%lu in result, but the pattern "
			    "has %u capture group%s", n, ncapture,
			    ncapture == 1 ? "" : "s");
			return -1;
		}
	}
	return 0;
}

/* pcre_flags - turn the flag letters after the pattern into options */
static int
pcre_flags(const char *p, const char *end, uint32_t *opts, char **error_r)
{
	for (; p < end; p++) {
		switch (*p) {
		case 'i':
			*opts ^= PCRE2_CASELESS;
			break;
		case 's':
			*opts ^= PCRE2_DOTALL;
			break;
		case 'm':
			*opts ^= PCRE2_MULTILINE;
			break;
		case 'x':
			*opts ^= PCRE2_EXTENDED;
			break;
		case 'A':
			*opts ^= PCRE2_ANCHORED;
			break;
		case 'E':
			*opts ^= PCRE2_DOLLAR_ENDONLY;
			break;
		case 'U':
			*opts ^= PCRE2_UNGREEDY;
			break;
		case 'X':
			break;
		default:
			*error_r = xasprintf("unknown regex flag '%c'", *p);
			return -1;
		}
	}
	return 0;
}

/* pcre_compile_one - compile, trying UTF first; error text on failure */
static pcre2_code *
pcre_compile_one(const char *pat, size_t len, uint32_t opts, char **error_r)
{
	PCRE2_UCHAR msg[256];
	PCRE2_SIZE off;
	pcre2_code *re;
	int ec;

	re = pcre2_compile((PCRE2_SPTR)pat, len,
	    opts | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &ec, &off, NULL);
	if (re == NULL && ec < 0)	/* the pattern is not UTF-8 */
		re = pcre2_compile((PCRE2_SPTR)pat, len, opts, &ec, &off,
		    NULL);
	if (re == NULL) {
		pcre2_get_error_message(ec, msg, sizeof(msg));
		*error_r = xasprintf("bad regex /%.*s/: %s at offset %zu",
		    (int)len, pat, (const char *)msg, (size_t)off);
		return NULL;
	}
	/* JIT is an optimisation: without it the interpreter still works */
	(void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
	return re;
}

/* pcre_parse_rule - one logical line of a pcre table */
static int
pcre_parse_rule(void *ctx, const char *path, int lineno, const char *line,
    char **error_r)
{
	struct pcre_table *pt = ctx;
	struct pcre_rule *r;
	enum pcre_rule_kind kind = PCRE_RULE_MATCH;
	enum table_rule_start start;
	const char *p = line, *pat, *pend, *flags, *res, *rend;
	uint32_t opts = PCRE2_CASELESS | PCRE2_DOTALL, ncap = 0;
	char delim, *err = NULL;
	bool negate = false, has_subst = false;
	pcre2_code *re;

	if (table_rule_start(path, lineno, line, &start, &negate, &p,
	    error_r) == -1)
		return -1;
	if (start == TABLE_RULE_ENDIF) {
		if (pt->nopen == 0) {
			*error_r = xasprintf("%s:%d: \"endif\" without \"if\"",
			    path, lineno);
			return -1;
		}
		pcre_table_add(pt, PCRE_RULE_ENDIF);
		pt->rules[pt->open_ifs[--pt->nopen]].skip = pt->nrules;
		return 0;
	}
	if (start == TABLE_RULE_IF)
		kind = PCRE_RULE_IF;
	delim = *p;
	if (delim == '\0' || isalnum((unsigned char)delim) ||
	    isspace((unsigned char)delim) || delim == '\\') {
		*error_r = xasprintf("%s:%d: expected /pattern/", path, lineno);
		return -1;
	}
	pat = ++p;
	for (; *p != '\0' && *p != delim; p++)
		if (*p == '\\' && p[1] != '\0')
			p++;
	if (*p != delim) {
		*error_r = xasprintf("%s:%d: missing closing '%c' after "
		    "pattern", path, lineno, delim);
		return -1;
	}
	pend = p++;
	for (flags = p; *p != '\0' && !isspace((unsigned char)*p); p++)
		;
	if (pcre_flags(flags, p, &opts, &err) == -1)
		goto fail;
	for (res = p; isspace((unsigned char)*res); res++)
		;
	rend = res + strlen(res);
	while (rend > res && isspace((unsigned char)rend[-1]))
		rend--;
	if (kind == PCRE_RULE_IF && res != rend) {
		err = xstrdup("text after \"if\" pattern");
		goto fail;
	}
	if (kind == PCRE_RULE_MATCH && res == rend) {
		err = xstrdup("missing result after pattern");
		goto fail;
	}
	if ((re = pcre_compile_one(pat, (size_t)(pend - pat), opts, &err))
	    == NULL)
		goto fail;
	if (kind == PCRE_RULE_MATCH) {
		char *result = xstrndup(res, (size_t)(rend - res));

		pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &ncap);
		if (pcre_check_result(result, ncap, negate, &has_subst,
		    &err) == -1) {
			free(result);
			pcre2_code_free(re);
			goto fail;
		}
		r = pcre_table_add(pt, kind);
		r->result = result;
	} else {
		r = pcre_table_add(pt, kind);
		pt->open_ifs = xreallocarray(pt->open_ifs, pt->nopen + 1,
		    sizeof(*pt->open_ifs));
		pt->open_ifs[pt->nopen++] = pt->nrules - 1;
	}
	r->re = re;
	pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &r->ncapture);
	r->is_negated = negate;
	r->has_subst = has_subst;
	if (r->ncapture + 1 > pt->max_pairs)
		pt->max_pairs = r->ncapture + 1;
	if (!pt->is_reference)
		pcre_analyse(r, pat, (size_t)(pend - pat), opts);
	return 0;
fail:
	*error_r = xasprintf("%s:%d: %s", path, lineno, err);
	free(err);
	return -1;
}

static int
pcre_open(struct table *t, const char *path, char **error_r)
{
	struct pcre_table *pt;
	const char *ref;
	int rc;

	pt = xcalloc(1, sizeof(*pt));
	t->priv = pt;
	ref = getenv("POSTERN_PCRE_REFERENCE");
	pt->is_reference = ref != NULL && *ref != '\0' && strcmp(ref, "0") != 0;
	pt->max_pairs = 1;
	rc = table_read_lines(path, pcre_parse_rule, pt, error_r);
	if (rc == 0 && pt->nopen > 0) {
		*error_r = xasprintf("%s: missing \"endif\"", path);
		rc = -1;
	}
	free(pt->open_ifs);
	pt->open_ifs = NULL;
	if (rc == 0 && !pt->is_reference)
		pcre_build_plans(pt);
	return rc;
}

/* pcre_expand - the result template of r with $n filled in from tls->md */
static const char *
pcre_expand(const struct pcre_rule *r, const char *key, struct pcre_tls *tls)
{
	PCRE2_SIZE *ov = pcre2_get_ovector_pointer(tls->md);
	const char *p = r->result;
	unsigned long n;
	char close;

	buf_reset(&tls->out);
	while (*p != '\0') {
		if (*p != '$') {
			buf_append(&tls->out, p++, 1);
			continue;
		}
		if (*++p == '$') {
			buf_append(&tls->out, p++, 1);
			continue;
		}
		/* syntax was checked at load time */
		close = *p == '{' ? '}' : *p == '(' ? ')' : '\0';
		if (close != '\0')
			p++;
		for (n = 0; isdigit((unsigned char)*p); p++)
			n = n * 10 + (unsigned long)(*p - '0');
		if (close != '\0')
			p++;
		if (n < tls->md_pairs && ov[2 * n] != PCRE2_UNSET)
			buf_append(&tls->out, key + ov[2 * n],
			    ov[2 * n + 1] - ov[2 * n]);
	}
	return buf_cstr(&tls->out);
}

/*
 * pcre_eval_reference - the first matching rule, trying every rule in
 * file order (POSTERN_PCRE_REFERENCE, and the meaning plans must keep)
 */
static const struct pcre_rule *
pcre_eval_reference(const struct pcre_table *pt, const char *key,
    size_t len, struct pcre_tls *tls)
{
	const struct pcre_rule *r;
	size_t i = 0;

	while (i < pt->nrules) {
		r = &pt->rules[i];
		switch (r->kind) {
		case PCRE_RULE_ENDIF:
			i++;
			break;
		case PCRE_RULE_IF:
			if (pcre_matches(r->re, key, len, tls) != r->is_negated)
				i++;
			else
				i = r->skip;
			break;
		case PCRE_RULE_MATCH:
			if (pcre_matches(r->re, key, len, tls) != r->is_negated)
				return r;
			i++;
			break;
		}
	}
	return NULL;
}

/* pcre_lookup - the first matching rule's result (lent, see table.c) */
static const char *
pcre_lookup(const struct table *t, const char *key)
{
	const struct pcre_table *pt = t->priv;
	const struct pcre_rule *r;
	struct pcre_tls *tls;
	size_t len = strlen(key);

	tls = pcre_tls_get(pt->max_pairs);
	if (pt->is_reference)
		r = pcre_eval_reference(pt, key, len, tls);
	else
		r = pcre_fast_eval(pt, key, len, tls);
	if (r == NULL)
		return NULL;
	return r->has_subst ? pcre_expand(r, key, tls) : r->result;
}

static char *
pcre_lookup_dup(const struct table *t, const char *key)
{
	const char *v = pcre_lookup(t, key);

	return v != NULL ? xstrdup(v) : NULL;
}

static void
pcre_free(struct table *t)
{
	struct pcre_table *pt = t->priv;
	struct pcre_rule *r;
	size_t i;

	pcre_fast_free(pt);
	for (i = 0; i < pt->nrules; i++) {
		r = &pt->rules[i];
		pcre2_code_free(r->re);
		free(r->result);
	}
	free(pt->rules);
	free(pt->open_ifs);
	free(pt);
	t->priv = NULL;
}

const struct table_ops table_pcre_ops = {
	.type = "pcre",
	.open = pcre_open,
	.lookup = pcre_lookup,
	.lookup_dup = pcre_lookup_dup,
	.lookup_addr = NULL,
	.free = pcre_free,
};

/*
 * table_pcre_fast.c - the fast path of "pcre:" tables (table_pcre.c):
 * what each pattern allows us to know, the plans built from that at load
 * time, and their evaluation for a key.
 *
 * Speed. Running every rule in turn costs one pcre2_match per rule per
 * header and per body line, which is too much for tables of thousands of
 * rules. At load time the rules of each nesting level are turned into
 * "plans" that give the same answer with less work:
 *
 *  - Header-name index: a rule (or if block) whose pattern starts with
 *    "^Name:" or "^(Name1|Name2):" (the usual header_checks form) can only
 *    match keys that begin with that name, so each such name gets a plan
 *    holding its own rules plus the rules that are not indexed, in file
 *    order; a key whose name is not indexed meets only the latter. Keys
 *    with non-ASCII bytes before the first colon use the plan of every
 *    rule (UTF caseless matching lets the Kelvin sign match 'k').
 *  - Prefilter blocks: runs of consecutive plain rules (not negated, not
 *    "if") are compiled, up to PCRE_BLOCK_RULES at a time, into one
 *    alternation "(?^flags:re1)|(?^flags:re2)|..." that keeps each rule's
 *    own options. When it does not match, no rule of the block can and
 *    the whole block is skipped; when it does, its rules run one by one,
 *    exactly as before. Rules whose meaning could change inside a larger
 *    pattern stay alone: back references and recursion (group numbers
 *    shift), named groups (names may clash), (*VERB)s, \K, \C, \Q,
 *    callouts, conditionals, "#" comments in extended mode, the A and E
 *    flags and patterns compiled in byte mode.
 *
 * Rules with a required literal (pcre_factor) are taken out of blocks and
 * found instead by one trigram pass over the key (pcre_mark_factors); a
 * rule whose literal is absent is skipped for a bit test.
 *
 * The first matching rule in file order still wins, and $n results come
 * from that rule's own match: the plans must give the answer of the
 * rule-by-rule path in table_pcre.c (pcre_eval_reference), which
 * t/unit/test_table_pcre_fast.c checks. This file reads no file and
 * compiles no rule of its own; it only ever builds prefilter regexes out
 * of rules table_pcre.c has already compiled. Figures: bench/README.md.
 *
 * SPDX-License-Identifier: ISC
 */
#include <config.h>	/* autoconf's; this directory has its own config.h */

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "xmalloc.h"
#include "table_pcre-private.h"

/* rules per prefilter block: 8, 32 and 128 were measured (bench/README.md) */
#ifndef PCRE_BLOCK_RULES
#define PCRE_BLOCK_RULES	32
#endif
/* shortest required literal (the trigram index needs three bytes) */
#define PCRE_FACTOR_MIN		3
/* longest header name the index keeps */
#define PCRE_NAME_MAX		128

/* rules combined into one prefilter regex */
struct pcre_block {
	pcre2_code *re;		/* owned; "(?^..:re1)|(?^..:re2)|..." */
	size_t	*members;	/* owned; rule indices, in file order */
	size_t	 nmembers;
};

/* one step of a plan: a block, or one rule or if block on its own */
struct pcre_step {
	const struct pcre_block *block;	/* borrowed: pcre_table.blocks */
	size_t	 rule;			/* when block is NULL */
};

/* a required literal of a rule, chained from its trigram's bucket */
struct pcre_factor {
	const char *text;	/* borrowed: the rule's factor; lowercase */
	size_t	 len;
	size_t	 rule;
	uint32_t next;		/* 1 + next entry of the bucket, or 0 */
};

/* a header name and the plan for keys that start with it */
struct pcre_name {
	char	*name;			/* owned; lowercase */
	struct pcre_plan plan;
};

/* what pcre_scan found out about a pattern */
struct pcre_scan {
	bool	 is_parsed;	/* the walk below can be trusted */
	bool	 is_combinable;	/* no construct that breaks in a block */
	bool	 has_top_alt;	/* a "|" outside every group */
};

/*
 * pcre_scan - walk a pattern the way PCRE2 parses it, far enough to
 * find the constructs that make it unsafe to put inside a larger regex
 * and to see top-level alternations. It only ever errs towards "unsafe":
 * a pattern it does not understand is left alone (t/unit/
 * test_table_pcre_fast.c checks the result against the plain path).
 */
static void
pcre_scan(const char *p, const char *end, bool is_extended,
    struct pcre_scan *sc)
{
	bool in_class = false, has_hash = false, inline_x = false;
	const char *q;
	int depth = 0;

	sc->is_parsed = sc->is_combinable = true;
	sc->has_top_alt = false;
	while (p < end) {
		if (*p == '\\') {
			if (p + 1 >= end) {
				sc->is_parsed = false;
				break;
			}
			/*
			 * \1-\9, \g, \k: back references (group numbers shift
			 * in a block); \K moves the match start; \C may split
			 * a UTF-8 character; \Q hides what follows from us.
			 */
			if (strchr("123456789gkKC", p[1]) != NULL)
				sc->is_combinable = false;
			if (p[1] == 'Q')
				sc->is_parsed = false;
			if (p[1] == 'c' && p + 2 < end)
				p++;	/* \cX: X is taken literally */
			p += 2;
			continue;
		}
		if (in_class) {
			if (*p == '[' && p + 1 < end &&
			    (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
				/* a POSIX class such as [:alpha:] */
				for (q = p + 2; q + 1 < end &&
				    !(q[0] == p[1] && q[1] == ']'); q++)
					;
				if (q + 1 >= end) {
					sc->is_parsed = false;
					break;
				}
				p = q + 2;
				continue;
			}
			if (*p == ']')
				in_class = false;
			p++;
			continue;
		}
		switch (*p) {
		case '[':
			in_class = true;
			if (++p < end && *p == '^')
				p++;
			if (p < end && *p == ']')
				p++;	/* a leading ']' is literal */
			continue;
		case '#':
			has_hash = true;
			break;
		case '|':
			if (depth == 0)
				sc->has_top_alt = true;
			break;
		case ')':
			depth--;
			break;
		case '(':
			depth++;
			if (p + 1 < end && p[1] == '*') {
				sc->is_combinable = false;	/* (*VERB) */
				break;
			}
			if (p + 1 >= end || p[1] != '?')
				break;
			p += 2;
			if (p >= end) {
				sc->is_parsed = false;
				continue;
			}
			if (*p == '#') {	/* (?#comment) */
				if ((q = memchr(p, ')', (size_t)(end - p))) ==
				    NULL) {
					sc->is_parsed = false;
					p = end;
					continue;
				}
				depth--;
				p = q + 1;
				continue;
			}
			if (*p == '<' && p + 1 < end &&
			    (p[1] == '=' || p[1] == '!'))
				continue;	/* lookbehind */
			if (strchr(":=!>|", *p) != NULL)
				continue;
			if (*p == '-' && p + 1 < end &&
			    isdigit((unsigned char)p[1])) {
				sc->is_combinable = false;	/* (?-1) */
				continue;
			}
			if (strchr("imnsxJU^-", *p) == NULL) {
				/*
				 * named groups, recursion, conditionals,
				 * callouts, (?P...): group names and numbers
				 * do not survive being put in a block
				 */
				sc->is_combinable = false;
				continue;
			}
			for (q = p; q < end && strchr("imnsxJU^-", *q) !=
			    NULL; q++)
				if (*q == 'x')
					inline_x = true;
			continue;
		}
		p++;
	}
	/* an extended-mode comment would swallow the block's ")" */
	if (has_hash && (is_extended || inline_x))
		sc->is_parsed = false;
	if (in_class || depth != 0)
		sc->is_parsed = false;
	if (!sc->is_parsed)
		sc->is_combinable = false;
}

/* pcre_is_name_char - a character of a header name in a pattern */
static bool
pcre_is_name_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '_';
}

/*
 * pcre_header_names - the header names a pattern is limited to: it
 * starts with "^Name:" or "^(Name1|Name2):" ("(?:" also), without a
 * quantifier on the name or the colon. Returns how many names it stored
 * in *names_r (lowercase, owned by the caller), 0 when it cannot tell.
 */
static size_t
pcre_header_names(const char *p, const char *end, char ***names_r)
{
	char **names = NULL;
	const char *start;
	size_t n = 0, i;
	bool is_grouped = false;

	if (p >= end || *p++ != '^')
		return 0;
	if (p < end && *p == '(') {
		is_grouped = true;
		p++;
		if (end - p >= 2 && p[0] == '?' && p[1] == ':')
			p += 2;
	}
	for (;;) {
		for (start = p; p < end && pcre_is_name_char(*p); p++)
			;
		names = xreallocarray(names, n + 1, sizeof(*names));
		names[n] = xstrndup(start, (size_t)(p - start));
		for (i = 0; names[n][i] != '\0'; i++)
			names[n][i] = (char)tolower((unsigned char)names[n][i]);
		n++;
		if (!is_grouped)
			break;
		if (p < end && *p == '|') {
			p++;
			continue;
		}
		if (p < end && *p == ')') {
			p++;
			break;
		}
		goto fail;
	}
	if (p >= end || *p != ':' ||
	    (p + 1 < end && strchr("?*+{", p[1]) != NULL))
		goto fail;
	*names_r = names;
	return n;
fail:
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return 0;
}

/* pcre_skip_class - p just past "[": past the class's "]", or NULL */
static const char *
pcre_skip_class(const char *p, const char *end)
{
	const char *q;

	if (p < end && *p == '^')
		p++;
	if (p < end && *p == ']')
		p++;		/* a leading ']' is literal */
	while (p < end) {
		if (*p == '\\') {
			p += 2;
			continue;
		}
		if (*p == '[' && p + 1 < end &&
		    (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
			for (q = p + 2; q + 1 < end &&
			    !(q[0] == p[1] && q[1] == ']'); q++)
				;
			if (q + 1 >= end)
				return NULL;
			p = q + 2;
			continue;
		}
		if (*p++ == ']')
			return p;
	}
	return NULL;
}

/* pcre_skip_group - p at "(": past its ")", or NULL */
static const char *
pcre_skip_group(const char *p, const char *end)
{
	const char *q;
	int depth = 0;

	while (p < end) {
		if (*p == '\\') {
			p += 2;
			continue;
		}
		if (*p == '[') {
			if ((p = pcre_skip_class(p + 1, end)) == NULL)
				return NULL;
			continue;
		}
		if (*p == '(' && end - p >= 3 && p[1] == '?' && p[2] == '#') {
			if ((q = memchr(p, ')', (size_t)(end - p))) == NULL)
				return NULL;
			p = q + 1;
			if (depth == 0)
				return p;
			continue;
		}
		if (*p == '(')
			depth++;
		else if (*p == ')' && --depth == 0)
			return p + 1;
		p++;
	}
	return NULL;
}

/* pcre_skip_escape - p at "\\" followed by a letter or digit: past it */
static const char *
pcre_skip_escape(const char *p, const char *end)
{
	const char *q;
	char c = p[1], close;

	p += 2;
	if (p < end && (*p == '{' || *p == '<' || *p == '\'') &&
	    strchr("xopPNgk", c) != NULL) {
		close = *p == '{' ? '}' : *p == '<' ? '>' : '\'';
		if ((q = memchr(p, close, (size_t)(end - p))) == NULL)
			return end;
		return q + 1;
	}
	switch (c) {
	case 'x':	/* \xhh */
		for (q = p; q < end && q < p + 2 &&
		    isxdigit((unsigned char)*q); q++)
			;
		return q;
	case 'c':	/* \cX */
	case 'p':	/* \pL */
	case 'P':
		return p < end ? p + 1 : p;
	case 'g':	/* \g1, \g-1, \g+1 */
		if (p < end && (*p == '-' || *p == '+'))
			p++;
		/* FALLTHROUGH */
	default:
		if (isdigit((unsigned char)c) || c == 'g')
			while (p < end && isdigit((unsigned char)*p))
				p++;
		return p;
	}
}

/*
 * pcre_factor - a literal of at least PCRE_FACTOR_MIN characters that
 * every match of the pattern contains (lowercase, caller frees), or NULL.
 * Only the top-level sequence is read: groups, classes, escapes other
 * than escaped punctuation, quantified characters and non-ASCII bytes
 * end a literal run; a top-level "|", (*VERB)s ((*ACCEPT) ends a match
 * early), \Q and extended mode give no literal. The letters k and s end
 * runs too: with UTF caseless matching U+212A and U+017F match them.
 * skip_first ignores the first run (the "Name:" of an indexed rule,
 * which the name index already checks).
 */
static char *
pcre_factor(const char *p, const char *end, bool skip_first)
{
	char run[256], best[256];
	size_t n = 0, nbest = 0;
	bool last_lit = false, seen_first = false;
	const char *q;
	char c;

#define PCRE_END_RUN() do {						\
	if (n > 0 && !(skip_first && !seen_first) && n > nbest) {	\
		memcpy(best, run, n);					\
		nbest = n;						\
	}								\
	if (n > 0)							\
		seen_first = true;					\
	n = 0;								\
	last_lit = false;						\
} while (0)

	while (p < end) {
		c = *p;
		if (c == '\\') {
			if (p + 1 >= end || p[1] == 'Q')
				return NULL;
			if (isalnum((unsigned char)p[1]) ||
			    (unsigned char)p[1] >= 0x80) {
				PCRE_END_RUN();
				p = pcre_skip_escape(p, end);
				continue;
			}
			c = p[1];	/* escaped punctuation: a literal */
			p += 2;
		} else if (c == '(') {
			if (p + 1 < end && p[1] == '*')
				return NULL;
			if (p + 1 < end && p[1] == '?')
				for (q = p + 2; q < end &&
				    strchr("imnsxJU^-", *q) != NULL; q++)
					if (*q == 'x')
						return NULL;
			PCRE_END_RUN();
			if ((p = pcre_skip_group(p, end)) == NULL)
				return NULL;
			continue;
		} else if (c == '[') {
			PCRE_END_RUN();
			if ((p = pcre_skip_class(p + 1, end)) == NULL)
				return NULL;
			continue;
		} else if (c == '|' || c == ')') {
			return NULL;
		} else if (c == '?' || c == '*' || c == '{') {
			/* the atom before may be absent: drop it */
			if (last_lit && n > 0)
				n--;
			PCRE_END_RUN();
			if (c == '{' && (q = memchr(p, '}',
			    (size_t)(end - p))) != NULL)
				p = q;
			p++;
			continue;
		} else if (c == '+' || c == '}' || c == '.' || c == '^' ||
		    c == '$' || (unsigned char)c < 0x20 ||
		    (unsigned char)c > 0x7e) {
			PCRE_END_RUN();
			p++;
			continue;
		} else
			p++;
		c = (char)tolower((unsigned char)c);
		if (c == 'k' || c == 's' || n == sizeof(run)) {
			PCRE_END_RUN();
			continue;
		}
		run[n++] = c;
		last_lit = true;
	}
	PCRE_END_RUN();
#undef PCRE_END_RUN
	return nbest >= PCRE_FACTOR_MIN ? xstrndup(best, nbest) : NULL;
}

/*
 * pcre_analyse - decide at load time whether rule r (pattern pat, flag
 * options opts) may join a prefilter block, and which header names, if
 * any, it is limited to.
 */
void
pcre_analyse(struct pcre_rule *r, const char *pat, size_t len,
    uint32_t opts)
{
	struct pcre_scan sc;
	uint32_t argopts = 0;
	char fl[8];
	size_t n = 0;

	pcre_scan(pat, pat + len, (opts & PCRE2_EXTENDED) != 0, &sc);
	pcre2_pattern_info(r->re, PCRE2_INFO_ARGOPTIONS, &argopts);
	/*
	 * A and E have no inline form; byte-mode patterns (not UTF-8) cannot
	 * share a UTF-mode regex. Inside a block "n" turns the rule's
	 * groups into non-capturing ones: only "did it match" is asked.
	 */
	if (r->kind == PCRE_RULE_MATCH && !r->is_negated &&
	    sc.is_combinable && (argopts & PCRE2_UTF) != 0 &&
	    (opts & (PCRE2_ANCHORED | PCRE2_DOLLAR_ENDONLY)) == 0) {
		if (opts & PCRE2_CASELESS)
			fl[n++] = 'i';
		fl[n++] = 'n';
		if (opts & PCRE2_MULTILINE)
			fl[n++] = 'm';
		if (opts & PCRE2_DOTALL)
			fl[n++] = 's';
		if (opts & PCRE2_EXTENDED)
			fl[n++] = 'x';
		if (opts & PCRE2_UNGREEDY)
			fl[n++] = 'U';
		fl[n] = '\0';
		r->is_combinable = true;
		r->wrapped = xasprintf("(?^%s:%.*s)", fl, (int)len, pat);
	}
	/* with m, "^" also matches after a newline: any line may match */
	if (!r->is_negated && sc.is_parsed && !sc.has_top_alt &&
	    (opts & (PCRE2_MULTILINE | PCRE2_EXTENDED)) == 0)
		r->nnames = pcre_header_names(pat, pat + len, &r->names);
	/*
	 * A rule with a required literal is cheaper alone: skipped for a
	 * bit test when its literal is not in the key (pcre_mark_factors).
	 */
	if (!r->is_negated && (opts & PCRE2_EXTENDED) == 0 &&
	    (r->factor = pcre_factor(pat, pat + len, r->nnames > 0)) != NULL &&
	    r->is_combinable) {
		r->is_combinable = false;
		free(r->wrapped);
		r->wrapped = NULL;
	}
}

/* pcre_plan_push - add a step (a block, or rule alone when b is NULL) */
static void
pcre_plan_push(struct pcre_plan *plan, const struct pcre_block *b,
    size_t rule)
{
	if (plan->nsteps == plan->nalloc) {
		plan->nalloc = plan->nalloc == 0 ? 8 : plan->nalloc * 2;
		plan->steps = xreallocarray(plan->steps, plan->nalloc,
		    sizeof(*plan->steps));
	}
	plan->steps[plan->nsteps].block = b;
	plan->steps[plan->nsteps].rule = rule;
	plan->nsteps++;
}

static void
pcre_plan_deinit(struct pcre_plan *plan)
{
	free(plan->steps);
	memset(plan, 0, sizeof(*plan));
}

/*
 * pcre_block_add - members[0..n) (combinable rules, in file order) as
 * one prefilter block appended to plan; when their alternation does not
 * compile (e.g. PCRE2's size limit with LINK_SIZE 2) each half is tried
 * on its own, down to single rules.
 */
static void
pcre_block_add(struct pcre_table *pt, struct pcre_plan *plan,
    const size_t *members, size_t n)
{
	struct pcre_block *b;
	struct buf src;
	pcre2_code *re;
	PCRE2_SIZE off;
	size_t i;
	int ec;

	if (n == 1) {
		pcre_plan_push(plan, NULL, members[0]);
		return;
	}
	buf_init(&src, 0);
	for (i = 0; i < n; i++) {
		if (i > 0)
			buf_append_str(&src, "|");
		buf_append_str(&src, pt->rules[members[i]].wrapped);
	}
	re = pcre2_compile((PCRE2_SPTR)buf_cstr(&src), PCRE2_ZERO_TERMINATED,
	    PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &ec, &off, NULL);
	buf_deinit(&src);
	if (re == NULL) {
		pcre_block_add(pt, plan, members, n / 2);
		pcre_block_add(pt, plan, members + n / 2, n - n / 2);
		return;
	}
	(void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
	b = xcalloc(1, sizeof(*b));
	b->re = re;
	b->members = xreallocarray(NULL, n, sizeof(*b->members));
	memcpy(b->members, members, n * sizeof(*b->members));
	b->nmembers = n;
	pt->blocks = xreallocarray(pt->blocks, pt->nblocks + 1,
	    sizeof(*pt->blocks));
	pt->blocks[pt->nblocks++] = b;
	pcre_plan_push(plan, b, 0);
}

/* pcre_plan_build - append items (rules of one level, in order) to plan */
static void
pcre_plan_build(struct pcre_table *pt, struct pcre_plan *plan,
    const size_t *items, size_t nitems)
{
	size_t i = 0, j;

	while (i < nitems) {
		if (!pt->rules[items[i]].is_combinable) {
			pcre_plan_push(plan, NULL, items[i++]);
			continue;
		}
		for (j = i; j < nitems && j - i < PCRE_BLOCK_RULES &&
		    pt->rules[items[j]].is_combinable; j++)
			;
		pcre_block_add(pt, plan, items + i, j - i);
		i = j;
	}
}

/* pcre_plan_append - add src's steps to dst */
static void
pcre_plan_append(struct pcre_plan *dst, const struct pcre_plan *src)
{
	size_t i;

	for (i = 0; i < src->nsteps; i++)
		pcre_plan_push(dst, src->steps[i].block, src->steps[i].rule);
}

/* pcre_level_items - the rules and if blocks of [start, end), one level */
static size_t *
pcre_level_items(const struct pcre_table *pt, size_t start, size_t end,
    size_t *n_r)
{
	size_t *items, i, n = 0;

	items = xreallocarray(NULL, end - start + 1, sizeof(*items));
	for (i = start; i < end; ) {
		items[n++] = i;
		i = pt->rules[i].kind == PCRE_RULE_IF ? pt->rules[i].skip :
		    i + 1;
	}
	*n_r = n;
	return items;
}

static int
pcre_name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct pcre_name *)a)->name,
	    ((const struct pcre_name *)b)->name);
}

/* pcre_name_find - the index entry for name, or NULL */
static struct pcre_name *
pcre_name_find(const struct pcre_table *pt, const char *name)
{
	struct pcre_name k;

	k.name = (char *)(uintptr_t)name;	/* only compared */
	return bsearch(&k, pt->names, pt->nnames, sizeof(*pt->names),
	    pcre_name_cmp);
}

/* pcre_index_names - the sorted, distinct header names of the items */
static void
pcre_index_names(struct pcre_table *pt, const size_t *items,
    size_t nitems)
{
	const struct pcre_rule *r;
	size_t i, j, n;

	for (i = 0; i < nitems; i++) {
		r = &pt->rules[items[i]];
		for (j = 0; j < r->nnames; j++) {
			pt->names = xreallocarray(pt->names, pt->nnames + 1,
			    sizeof(*pt->names));
			memset(&pt->names[pt->nnames], 0,
			    sizeof(*pt->names));
			pt->names[pt->nnames++].name = xstrdup(r->names[j]);
		}
	}
	if (pt->nnames == 0)
		return;
	qsort(pt->names, pt->nnames, sizeof(*pt->names), pcre_name_cmp);
	for (i = n = 0; i < pt->nnames; i++) {
		if (n > 0 && strcmp(pt->names[n - 1].name,
		    pt->names[i].name) == 0) {
			free(pt->names[i].name);
			continue;
		}
		pt->names[n++] = pt->names[i];
		if (strlen(pt->names[i].name) > pt->max_name_len)
			pt->max_name_len = strlen(pt->names[i].name);
	}
	pt->nnames = n;
}

/*
 * pcre_build_top - the plans of the top level. Items form runs of
 * unindexed and of indexed rules; an unindexed run's steps are built
 * once and shared by every plan, an indexed run gives each of its names
 * a plan of that name's rules (and "full" one of all of them), so that
 * no regex is compiled once per name.
 */
static void
pcre_build_top(struct pcre_table *pt, const size_t *items, size_t nitems)
{
	struct pcre_plan run;
	struct pcre_name *nm;
	const struct pcre_rule *r;
	size_t **sel, *nsel, *touched, ntouched, i, j, k, m;
	bool is_indexed;

	pcre_index_names(pt, items, nitems);
	if (pt->nnames == 0) {
		pcre_plan_build(pt, &pt->generic, items, nitems);
		return;
	}
	sel = xcalloc(pt->nnames, sizeof(*sel));
	nsel = xcalloc(pt->nnames, sizeof(*nsel));
	touched = xcalloc(pt->nnames, sizeof(*touched));
	for (i = 0; i < nitems; i = j) {
		is_indexed = pt->rules[items[i]].nnames > 0;
		for (j = i; j < nitems &&
		    (pt->rules[items[j]].nnames > 0) == is_indexed; j++)
			;
		if (!is_indexed) {
			memset(&run, 0, sizeof(run));
			pcre_plan_build(pt, &run, items + i, j - i);
			pcre_plan_append(&pt->generic, &run);
			pcre_plan_append(&pt->full, &run);
			for (k = 0; k < pt->nnames; k++)
				pcre_plan_append(&pt->names[k].plan, &run);
			pcre_plan_deinit(&run);
			continue;
		}
		pcre_plan_build(pt, &pt->full, items + i, j - i);
		ntouched = 0;
		for (m = i; m < j; m++) {
			r = &pt->rules[items[m]];
			for (k = 0; k < r->nnames; k++) {
				nm = pcre_name_find(pt, r->names[k]);
				if (nsel[nm - pt->names] == 0) {
					touched[ntouched++] =
					    (size_t)(nm - pt->names);
					sel[nm - pt->names] = xreallocarray(
					    sel[nm - pt->names], j - i,
					    sizeof(**sel));
				}
				/* "^(a|a):" names a twice: add it once */
				if (nsel[nm - pt->names] == 0 ||
				    sel[nm - pt->names][nsel[nm - pt->names] -
				    1] != items[m])
					sel[nm - pt->names]
					    [nsel[nm - pt->names]++] = items[m];
			}
		}
		for (k = 0; k < ntouched; k++) {
			m = touched[k];
			pcre_plan_build(pt, &pt->names[m].plan, sel[m],
			    nsel[m]);
			nsel[m] = 0;
		}
	}
	for (k = 0; k < pt->nnames; k++)
		free(sel[k]);
	free(sel);
	free(nsel);
	free(touched);
}

/* pcre_lower - ASCII lowercase, whatever the locale */
static inline unsigned char
pcre_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* pcre_trigram - the bucket of three (lowercase) bytes */
static inline uint32_t
pcre_trigram(unsigned char a, unsigned char b, unsigned char c)
{
	return (((uint32_t)a * 0x9e3779b1U) ^ ((uint32_t)b * 0x85ebca77U) ^
	    ((uint32_t)c * 0xc2b2ae3dU)) >> 20;	/* 4096 buckets */
}

/* pcre_index_factors - chain every rule's literal from its trigram */
static void
pcre_index_factors(struct pcre_table *pt)
{
	struct pcre_factor *f;
	const unsigned char *t;
	uint32_t h;
	size_t i;

	for (i = 0; i < pt->nrules; i++) {
		if (pt->rules[i].factor == NULL)
			continue;
		pt->factors = xreallocarray(pt->factors, pt->nfactors + 1,
		    sizeof(*pt->factors));
		f = &pt->factors[pt->nfactors];
		f->text = pt->rules[i].factor;
		f->len = strlen(f->text);
		f->rule = i;
		t = (const unsigned char *)f->text;
		h = pcre_trigram(t[0], t[1], t[2]);
		f->next = pt->factor_heads[h];
		pt->factor_heads[h] = (uint32_t)++pt->nfactors;
	}
}

/*
 * pcre_mark_factors - one pass over key: stamp every rule whose literal
 * occurs in it (compared without ASCII case), so that the others are
 * skipped without running their regex.
 */
static void
pcre_mark_factors(const struct pcre_table *pt, const char *key, size_t len,
    struct pcre_tls *tls)
{
	const unsigned char *k = (const unsigned char *)key;
	const struct pcre_factor *f;
	uint32_t e;
	size_t i, j;

	if (tls->nstamp < pt->nrules) {
		free(tls->stamp);
		tls->stamp = xcalloc(pt->nrules, sizeof(*tls->stamp));
		tls->nstamp = pt->nrules;
		tls->gen = 0;
	}
	if (++tls->gen == 0) {	/* wrapped: forget every old stamp */
		memset(tls->stamp, 0, tls->nstamp * sizeof(*tls->stamp));
		tls->gen = 1;
	}
	for (i = 0; i + PCRE_FACTOR_MIN <= len; i++) {
		e = pt->factor_heads[pcre_trigram(pcre_lower(k[i]),
		    pcre_lower(k[i + 1]), pcre_lower(k[i + 2]))];
		for (; e != 0; e = f->next) {
			f = &pt->factors[e - 1];
			if (f->len > len - i)
				continue;
			for (j = 0; j < f->len &&
			    pcre_lower(k[i + j]) == (unsigned char)f->text[j];
			    j++)
				;
			if (j == f->len)
				tls->stamp[f->rule] = tls->gen;
		}
	}
}

/* pcre_build_plans - turn the loaded rules into plans (see the top) */
void
pcre_build_plans(struct pcre_table *pt)
{
	struct pcre_rule *r;
	size_t *items, nitems, i, j;

	pcre_index_factors(pt);

	for (i = 0; i < pt->nrules; i++) {
		r = &pt->rules[i];
		if (r->kind != PCRE_RULE_IF)
			continue;
		/* the children: between the if and its endif */
		items = pcre_level_items(pt, i + 1, r->skip - 1, &nitems);
		pcre_plan_build(pt, &r->inner, items, nitems);
		free(items);
	}
	items = pcre_level_items(pt, 0, pt->nrules, &nitems);
	pcre_build_top(pt, items, nitems);
	free(items);
	for (i = 0; i < pt->nrules; i++) {
		r = &pt->rules[i];
		free(r->wrapped);
		r->wrapped = NULL;
		for (j = 0; j < r->nnames; j++)
			free(r->names[j]);
		free(r->names);
		r->names = NULL;
		r->nnames = 0;
	}
}

/*
 * pcre_eval_plan - the first matching rule of a plan. A block whose
 * alternation does not match is skipped whole; when it matches (or
 * fails with an error such as the match limit) its rules run one by one,
 * so the winner and its captures in tls->md are those of the rule alone.
 */
static const struct pcre_rule *
pcre_eval_plan(const struct pcre_table *pt, const struct pcre_plan *plan,
    const char *key, size_t len, struct pcre_tls *tls)
{
	const struct pcre_step *s;
	const struct pcre_rule *r, *hit;
	size_t i, j;
	int rc;

	for (i = 0; i < plan->nsteps; i++) {
		s = &plan->steps[i];
		if (s->block != NULL) {
			rc = pcre2_match(s->block->re, (PCRE2_SPTR)key, len, 0,
			    0, tls->md, tls->mc);
			if (rc == PCRE2_ERROR_NOMATCH)
				continue;
			for (j = 0; j < s->block->nmembers; j++) {
				r = &pt->rules[s->block->members[j]];
				if (pcre_matches(r->re, key, len, tls))
					return r;
			}
			continue;
		}
		r = &pt->rules[s->rule];
		/* its literal is not in the key: it cannot match */
		if (r->factor != NULL && tls->stamp[s->rule] != tls->gen)
			continue;
		if (pcre_matches(r->re, key, len, tls) == r->is_negated)
			continue;
		if (r->kind == PCRE_RULE_MATCH)
			return r;
		if ((hit = pcre_eval_plan(pt, &r->inner, key, len, tls)) !=
		    NULL)
			return hit;
	}
	return NULL;
}

/*
 * pcre_plan_for - the plan for key: that of the header name before its
 * first colon when indexed, the unindexed rules' when not (no indexed
 * rule can match a key without "Name:" in front), every rule's when the
 * name has non-ASCII bytes (caseless UTF-8 matching folds some of them
 * onto ASCII letters, e.g. U+212A KELVIN SIGN onto k).
 */
static const struct pcre_plan *
pcre_plan_for(const struct pcre_table *pt, const char *key)
{
	const struct pcre_name *nm;
	char name[PCRE_NAME_MAX + 1];
	size_t i;

	if (pt->nnames == 0)
		return &pt->generic;
	for (i = 0; key[i] != ':'; i++) {
		if (key[i] == '\0')
			return &pt->generic;
		if ((unsigned char)key[i] >= 0x80)
			return &pt->full;
	}
	if (i > pt->max_name_len)
		return &pt->generic;
	for (i = 0; key[i] != ':'; i++)
		name[i] = (char)tolower((unsigned char)key[i]);
	name[i] = '\0';
	nm = pcre_name_find(pt, name);
	return nm != NULL ? &nm->plan : &pt->generic;
}

/* pcre_fast_eval - mark the key's literals, then run its plan */
const struct pcre_rule *
pcre_fast_eval(const struct pcre_table *pt, const char *key, size_t len,
    struct pcre_tls *tls)
{
	if (pt->nfactors > 0)
		pcre_mark_factors(pt, key, len, tls);
	return pcre_eval_plan(pt, pcre_plan_for(pt, key), key, len, tls);
}

/* pcre_fast_free - what pcre_analyse and pcre_build_plans made */
void
pcre_fast_free(struct pcre_table *pt)
{
	struct pcre_rule *r;
	size_t i, j;

	for (i = 0; i < pt->nrules; i++) {
		r = &pt->rules[i];
		pcre_plan_deinit(&r->inner);
		free(r->factor);
		free(r->wrapped);
		for (j = 0; j < r->nnames; j++)
			free(r->names[j]);
		free(r->names);
	}
	for (i = 0; i < pt->nblocks; i++) {
		pcre2_code_free(pt->blocks[i]->re);
		free(pt->blocks[i]->members);
		free(pt->blocks[i]);
	}
	free(pt->blocks);
	free(pt->factors);
	pcre_plan_deinit(&pt->generic);
	pcre_plan_deinit(&pt->full);
	for (i = 0; i < pt->nnames; i++) {
		free(pt->names[i].name);
		pcre_plan_deinit(&pt->names[i].plan);
	}
	free(pt->names);
}

/*
 * table_pcre-private.h - what the two halves of the "pcre:" table share:
 * table_pcre.c (reading the file, compiling rules, the lookup entry
 * points and the rule-by-rule reference path) and table_pcre_fast.c (the
 * analysis of patterns, the plans built from them at load time and their
 * evaluation). Nothing outside these two files includes it.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_TABLE_PCRE_PRIVATE_H
#define POSTERN_TABLE_PCRE_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "buf.h"
#include "log.h"

/* trigram buckets of the required-literal index (pcre_trigram's range) */
#define PCRE_FACTOR_BUCKETS	4096

/* private to table_pcre_fast.c; the structures below only point to them */
struct pcre_block;
struct pcre_factor;
struct pcre_name;
struct pcre_step;

enum pcre_rule_kind {
	PCRE_RULE_MATCH,
	PCRE_RULE_IF,
	PCRE_RULE_ENDIF,
};

/*
 * The rules of one nesting level, in file order, as steps (a prefilter
 * block, or one rule or if block on its own). Built and freed by
 * table_pcre_fast.c; embedded in struct pcre_rule and struct pcre_table.
 */
struct pcre_plan {
	struct pcre_step *steps;	/* owned */
	size_t	 nsteps;
	size_t	 nalloc;
};

/*
 * One line of the file: a rule, "if" or "endif". table_pcre.c fills in
 * kind to has_subst, re, ncapture, result and skip while parsing;
 * pcre_analyse (table_pcre_fast.c) fills in is_combinable, factor,
 * wrapped and names, and pcre_build_plans builds inner, then frees
 * wrapped and names. A reference table (is_reference) leaves the fast
 * fields zero.
 */
struct pcre_rule {
	enum pcre_rule_kind kind;
	bool	 is_negated;
	bool	 has_subst;	/* result contains $n or $$ */
	bool	 is_combinable;	/* may join a prefilter block */
	char	*factor;	/* owned; literal in every match, or NULL */
	pcre2_code *re;		/* owned; NULL for endif */
	uint32_t ncapture;	/* capture groups in re */
	char	*result;	/* owned; template, NULL for if/endif */
	size_t	 skip;		/* IF: index past its ENDIF */
	struct pcre_plan inner;	/* IF: the rules inside, as a plan */
	char	*wrapped;	/* owned; "(?^flags:re)", only while loading */
	char	**names;	/* owned; header names (lowercase) the rule */
	size_t	 nnames;	/* is limited to; only while loading */
};

/*
 * One open table (struct table's priv). The rules and the fields up to
 * max_pairs belong to table_pcre.c; the rest is the fast path's, built
 * by pcre_build_plans and freed by pcre_fast_free.
 */
struct pcre_table {
	struct pcre_rule *rules;	/* owned array */
	size_t	 nrules;
	size_t	*open_ifs;		/* owned; stack while loading */
	size_t	 nopen;
	bool	 is_reference;		/* POSTERN_PCRE_REFERENCE: no plans */
	uint32_t max_pairs;		/* ovector pairs the rules need */
	struct pcre_block **blocks;	/* owned array of owned blocks */
	size_t	 nblocks;
	struct pcre_plan generic;	/* keys with no indexed name */
	struct pcre_plan full;		/* every rule; used when nnames > 0 */
	struct pcre_name *names;	/* owned; sorted by name */
	size_t	 nnames;
	size_t	 max_name_len;
	uint32_t factor_heads[PCRE_FACTOR_BUCKETS];	/* 1 + entry, or 0 */
	struct pcre_factor *factors;	/* owned array */
	size_t	 nfactors;
};

/*
 * Per-thread matching state, made by pcre_tls_get (table_pcre.c): the
 * compiled rules are shared read-only by every thread, this is not.
 */
struct pcre_tls {
	pcre2_match_data *md;		/* owned */
	uint32_t md_pairs;
	pcre2_match_context *mc;	/* owned */
	pcre2_jit_stack *js;		/* owned */
	struct buf out;			/* substituted results (lent) */
	uint32_t *stamp;		/* owned; per rule: gen when its */
	size_t	 nstamp;		/* factor occurs in the key */
	uint32_t gen;
};

/*
 * pcre_matches - run one regex against key; false on no match or error.
 * Both evaluation paths call it once per rule tried, so it is inline
 * here rather than a call into the other file.
 */
static inline bool
pcre_matches(const pcre2_code *re, const char *key, size_t len,
    struct pcre_tls *tls)
{
	int rc;

	rc = pcre2_match(re, (PCRE2_SPTR)key, len, 0, 0, tls->md, tls->mc);
	if (rc >= 0)
		return true;
	if (rc != PCRE2_ERROR_NOMATCH)
		log_warnx("pcre: match error %d for a rule; treated as no "
		    "match", rc);
	return false;
}

/* table_pcre_fast.c */

/*
 * pcre_analyse - at load time, for rule r just compiled from pat (len
 * bytes, flag options opts): whether it may join a prefilter block
 * (r->is_combinable, r->wrapped), the header names it is limited to
 * (r->names) and its required literal (r->factor). Not called for
 * reference tables.
 */
void	 pcre_analyse(struct pcre_rule *r, const char *pat, size_t len,
	    uint32_t opts);

/*
 * pcre_build_plans - once every rule is loaded (and every "if" has its
 * "endif"): index the literals and header names and build the plans;
 * frees what pcre_analyse kept only for this.
 */
void	 pcre_build_plans(struct pcre_table *pt);

/*
 * pcre_fast_eval - the first rule of a non-reference table matching key
 * (len bytes), or NULL; its captures are left in tls->md, as
 * pcre_eval_reference does.
 */
const struct pcre_rule *pcre_fast_eval(const struct pcre_table *pt,
	    const char *key, size_t len, struct pcre_tls *tls);

/*
 * pcre_fast_free - free the fast path's part of pt and of its rules
 * (plans, blocks, index, literals); the caller then frees the rest.
 * Safe on a table that failed to load or is a reference table.
 */
void	 pcre_fast_free(struct pcre_table *pt);

#endif

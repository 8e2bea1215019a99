/*
 * test_table_pcre_fast.c - the pcre table's fast path (header-name index
 * and prefilter blocks, config/table_pcre.c) gives the same answer as
 * the rule-by-rule reference path (POSTERN_PCRE_REFERENCE=1) for every
 * key: targeted cases for each construct that must stay out of a block
 * or out of the index, then seeded random tables of 1 to 3000 rules
 * (anchored, unanchored, negated, if/endif, flags, back references, $n)
 * against generated headers and body lines, and the same from threads.
 *
 * SPDX-License-Identifier: ISC
 */
#include <config.h>	/* autoconf's; config/ has its own config.h */

#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "table.h"
#include "tap.h"
#include "xmalloc.h"

static char tmpdir[] = "/tmp/test_table_pcre_fast.XXXXXX";
static int nfiles;

/* write_table - content into a new file of tmpdir; path (caller frees) */
static char *
write_table(const char *content)
{
	char *path = xasprintf("%s/t%d.pcre", tmpdir, nfiles++);
	FILE *fp;

	if ((fp = fopen(path, "w")) == NULL) {
		printf("# cannot create %s\n", path);
		return path;
	}
	fputs(content, fp);
	fclose(fp);
	return path;
}

/*
 * open_pair - the table at path opened twice: fast (the default) and
 * reference (POSTERN_PCRE_REFERENCE=1 while opening). 0 or -1.
 */
static int
open_pair(const char *path, struct table **fast_r, struct table **ref_r)
{
	char *spec = xasprintf("pcre:%s", path), *err = NULL;

	unsetenv("POSTERN_PCRE_REFERENCE");
	*fast_r = table_open(spec, &err);
	if (*fast_r == NULL) {
		printf("# %s\n", err);
		free(err);
		free(spec);
		return -1;
	}
	setenv("POSTERN_PCRE_REFERENCE", "1", 1);
	*ref_r = table_open(spec, &err);
	unsetenv("POSTERN_PCRE_REFERENCE");
	free(spec);
	if (*ref_r == NULL) {
		printf("# %s\n", err);
		free(err);
		table_free(fast_r);
		return -1;
	}
	return 0;
}

/*
 * Targeted cases: {name, table, key, want}. Each runs on both paths and
 * both must give want. Most tables put the construct among plain rules
 * so that it would share a block, or be indexed, if it were allowed to.
 */
static void
test_targeted(void)
{
	static const struct {
		const char *name, *table, *key, *want;
	} cases[] = {
		{ "file order beats match position",
		    "/zzz/ R1\n/aaa/ R2\n/bbb/ R3\n", "aaa bbb zzz", "R1" },
		{ "second block rule", "/zzz/ R1\n/aaa/ R2\n/bbb/ R3\n",
		    "xx bbb aaa", "R2" },
		{ "no rule", "/zzz/ R1\n/aaa/ R2\n", "nothing here", NULL },
		{ "$n from a rule inside a block",
		    "/zzz/ R1\n/(a+)(b+)/ R2 $2-$1\n/c/ R3\n", "c aab",
		    "R2 b-aa" },
		{ "back reference kept apart",
		    "/(x)y/ R1\n/(\\w+) \\1/ R2 $1\n/q/ R3\n", "go go q",
		    "R2 go" },
		{ "back reference does not see other groups",
		    "/(a)/ R1\n/(b)\\1/ R2\n", "ab", "R1" },
		{ "relative back reference",
		    "/zz/ R1\n/(o)\\g{-1}/ R2\n/q/ R3\n", "q oo", "R2" },
		{ "named groups with one name in two rules",
		    "/(?<w>zz)\\k<w>/ R1\n/(?<w>o)\\k<w>/ R2\n/q/ R3\n",
		    "q oo", "R2" },
		{ "recursion (?1)", "/zz/ R1\n/(a|b<(?1)>)c/ R2\n/q/ R3\n",
		    "q b<a>c", "R2" },
		{ "conditional group", "/zz/ R1\n/(<)?x(?(1)>)/ R2\n/q/ R3\n",
		    "<x>", "R2" },
		{ "(*SKIP)(*FAIL) verbs",
		    "/zz/ R1\n/aa(*SKIP)(*FAIL)|b/ R2\n/a/ R3\n", "aa", "R3" },
		{ "\\K", "/zz/ R1\n/a\\Kb/ R2 $$x\n/q/ R3\n", "ab", "R2 $x" },
		{ "\\Q...\\E with a bar", "/zz/ R1\n/\\Qa|b\\E/ R2\n/b/ R3\n",
		    "b", "R3" },
		{ "\\Q...\\E matching", "/zz/ R1\n/\\Qa|b\\E/ R2\n/b/ R3\n",
		    "a|b", "R2" },
		{ "\\Q hides a paren from the index",
		    "/^Subject:\\Q(\\E|foo/ R1\n/^From:/ R2\n", "foo bar",
		    "R1" },
		{ "x flag comment", "/zz/ R1\n/a b # c|d/x R2\n/d/ R3\n",
		    "d", "R3" },
		{ "x flag comment matching",
		    "/zz/ R1\n/a b # c|d/x R2\n/d/ R3\n", "ab", "R2" },
		{ "inline (?x) comment",
		    "/zz/ R1\n/(?x)a b # )|d/ R2\n/d/ R3\n", "d", "R3" },
		{ "(?#comment) with a bar",
		    "/zz/ R1\n/a(?#|)b/ R2\n/^b/ R3\n", "b", "R3" },
		{ "POSIX class", "/zz/ R1\n/[[:digit:]|]x/ R2\n/q/ R3\n",
		    "|x", "R2" },
		{ "class with ] first", "/zz/ R1\n/[]a]b/ R2\n/q/ R3\n",
		    "]b", "R2" },
		{ "A flag", "/zz/ R1\n/b/A R2\n/c/ R3\n", "abc", "R3" },
		{ "A flag matching", "/zz/ R1\n/b/A R2\n/c/ R3\n", "bc", "R2" },
		{ "E flag", "/zz/ R1\n/a$/E R2\n/c/ R3\n", "ca\n", "R3" },
		{ "no E flag", "/zz/ R1\n/a$/ R2\n/c/ R3\n", "ca\n", "R2" },
		{ "U flag", "/zz/ R1\n/^(?>a+)b/U R2\n/c/ R3\n", "aabc", "R3" },
		{ "i flag is case sensitive", "/zz/ R1\n/AB/i R2\n/ab/ R3\n",
		    "ab", "R3" },
		{ "s flag off", "/zz/ R1\n/a.b/s R2\n/ab/ R3\n", "a\nb ab",
		    "R3" },
		{ "m flag anchors lines",
		    "/^Subject:/ R0\n/^Foo: x$/m R1\n/q/ R2\n",
		    "X-Other: 1\nFoo: x\n\tz", "R1" },
		{ "byte-mode pattern (Latin-1)",
		    "/zz/ R1\n/caf\xe9/ R2\n/q/ R3\n", "un caf\xe9", "R2" },
		{ "index: name", "/^Subject:.*a/ R1\n/^From:.*a/ R2\n",
		    "From: a", "R2" },
		{ "index: name case", "/^Subject:.*a/ R1\n/^From:.*a/ R2\n",
		    "fROM: a", "R2" },
		{ "index: unindexed rule between",
		    "/^Subject:.*z/ R1\n/b/ R2\n/^Subject:.*a/ R3\n",
		    "Subject: a b", "R2" },
		{ "index: group of names",
		    "/^Subject:/ R1\n/^(To|Cc):.*@x\\.example/ R2\n",
		    "cc: <a@x.example>", "R2" },
		{ "index: (?: group", "/^Subject:/ R1\n/^(?:To|Cc):/ R2\n",
		    "TO: x", "R2" },
		{ "index: optional letter not indexed",
		    "/^Subject:/ R1\n/^Subjects?:/ R2\n", "Subjec: x", NULL },
		{ "index: optional letter matching",
		    "/^Subject:/ R1\n/^Subjects?:/ R2\n", "Subjects: x", "R2" },
		{ "index: optional colon",
		    "/^Subject:/ R1\n/^X-Y:?z/ R2\n", "X-Yz", "R2" },
		{ "index: top-level bar",
		    "/^Subject:/ R1\n/^From:|viagra/ R2\n", "To: viagra",
		    "R2" },
		{ "index: key without colon",
		    "/^Subject:/ R1\n/^From:/ R2\n/x/ R3\n", "plain x", "R3" },
		{ "index: Kelvin sign folds onto k",
		    "/^Subject:/ R1\n/^Keywords:/ R2\n/zz/ R3\n",
		    "\xe2\x84\xaa" "eywords: x", "R2" },
		{ "index: long s folds onto s",
		    "/^Subject:.*x/ R1\n/^From:/ R2\n", "\xc5\xbf" "ubject: x",
		    "R1" },
		{ "index: name longer than any",
		    "/^To:/ R1\n/long/ R2\n", "X-Very-Long-Name: long", "R2" },
		{ "index: if block by name",
		    "if /^Subject:/\n/a/ R1\nendif\n/b/ R2\n",
		    "From: a b", "R2" },
		{ "index: if block taken",
		    "if /^Subject:/\n/a/ R1\nendif\n/b/ R2\n",
		    "subject: a b", "R1" },
		{ "negated if", "if !/^Subject:/\n/a/ R1\nendif\n/b/ R2\n",
		    "From: a b", "R1" },
		{ "nested if", "if /a/\nif /b/\n/c/ R1\nendif\n/d/ R2\nendif\n"
		    "/e/ R3\n", "a b d e", "R2" },
		{ "negated rule among blocks", "/zz/ R1\n!/q/ R2\n/x/ R3\n",
		    "x", "R2" },
		{ "invalid UTF-8 in the key", "/zz/ R1\n/a.c/ R2\n/q/ R3\n",
		    "x \xff a\xff" "c abc", "R2" },
		{ "empty pattern", "/zz/ R1\n// R2\n", "", "R2" },
		{ "literal: \\x escape", "/zz/ R1\n/\\x41bcd/ R2\n", "Abcd",
		    "R2" },
		{ "literal: \\pL", "/zz/ R1\n/\\pLabcd/ R2\n", "Xabcd", "R2" },
		{ "literal: \\cA", "/zz/ R1\n/\\cAbcd/ R2\n", "\x01" "bcd",
		    "R2" },
		{ "literal: \\p{..}", "/zz/ R1\n/\\p{Lu}wxyz/ R2\n", "Qwxyz",
		    "R2" },
		{ "literal: optional letter", "/zz/ R1\n/ab?cde/ R2\n",
		    "acde", "R2" },
		{ "literal: {0}", "/zz/ R1\n/x{0}yzw/ R2\n", "yzw", "R2" },
		{ "literal: {2}", "/zz/ R1\n/wx{2}yz/ R2\n", "wxxyz", "R2" },
		{ "literal: (*ACCEPT)", "/zz/ R1\n/abc(*ACCEPT)defg/ R2\n",
		    "abc", "R2" },
		{ "literal: (?x)", "/zz/ R1\n/(?x)a b c d/ R2\n", "abcd",
		    "R2" },
		{ "literal: late (?x)", "/zz/ R1\n/abcd(?x) e f g h/ R2\n",
		    "abcdefgh", "R2" },
		{ "literal: top-level bar", "/zz/ R1\n/abcd|efgh/ R2\n",
		    "efgh", "R2" },
		{ "literal: escaped dot", "/zz/ R1\n/a\\.bcd/ R2\n", "a.bcd",
		    "R2" },
		{ "literal: case", "/zz/ R1\n/AbCdE/ R2\n", "aBcDe", "R2" },
		{ "literal: Kelvin sign", "/zz/ R1\n/xxkelvin/ R2\n",
		    "xx\xe2\x84\xaa" "elvin", "R2" },
		{ "literal: long s", "/zz/ R1\n/superstar/ R2\n",
		    "\xc5\xbf" "uper\xc5\xbf" "tar", "R2" },
		{ "literal: group then quantifier", "/zz/ R1\n/(ab)?cdef/ R2\n",
		    "cdef", "R2" },
		{ "literal: class", "/zz/ R1\n/[(]?wxyz[)]/ R2\n", "wxyz)",
		    "R2" },
		{ "literal: comment group", "/zz/ R1\n/(?#(|)wxyz/ R2\n",
		    "wxyz", "R2" },
		{ "literal: header rule", "/^Subject:.*\\bviagra\\b/ R1\n",
		    "subject: buy VIAGRA now", "R1" },
		{ "literal: header rule absent",
		    "/^Subject:.*\\bviagra\\b/ R1\n",
		    "subject: viagr a", NULL },
		{ "unicode caseless in a block",
		    "/zz/ R1\n/gr\xc3\x9c\xc3\x9f/ R2\n", "gr\xc3\xbc\xc3\x9f",
		    "R2" },
	};
	struct table *fast, *ref;
	char *path, *got;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		path = write_table(cases[i].table);
		if (open_pair(path, &fast, &ref) == -1) {
			ok(0, "%s: table loads", cases[i].name);
			free(path);
			continue;
		}
		got = table_lookup_dup(fast, cases[i].key);
		is_str(got, cases[i].want, "%s: fast", cases[i].name);
		free(got);
		got = table_lookup_dup(ref, cases[i].key);
		is_str(got, cases[i].want, "%s: reference", cases[i].name);
		free(got);
		table_free(&fast);
		table_free(&ref);
		free(path);
	}
}

/* random tables and keys */

static uint64_t rng_state;

static uint32_t
rng(void)
{
	/* xorshift64*: reproducible across platforms for a given seed */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 2685821657736338717ULL) >> 32);
}

static size_t
pick(size_t n)
{
	return rng() % n;
}

static const char *const hnames[] = {
	"Subject", "From", "To", "Cc", "Reply-To", "X-Mailer", "Received",
	"Content-Type", "Message-ID", "X-Spam-Flag", "Keywords", "Sender",
};
static const char *const words[] = {
	"viagra", "casino", "lottery", "winner", "bitcoin", "prince",
	"urgent", "invoice", "refund", "meeting", "budget", "report",
	"hello", "kiss", "offer", "free", "money", "agenda", "lunch",
	"ship", "Stock", "Kelvin", "ok", "yes",
};
static const char *const flagsets[] = {
	"", "", "", "", "", "", "i", "m", "s", "x", "U", "A", "E", "im",
};

#define NH	(sizeof(hnames) / sizeof(hnames[0]))
#define NW	(sizeof(words) / sizeof(words[0]))
#define NF	(sizeof(flagsets) / sizeof(flagsets[0]))

/*
 * The vocabulary grows with the table (the common words, then "tokN")
 * so that a key matches a few rules anywhere in the table, not always
 * one of the first.
 */
static size_t vocab = NW;

/* rand_word - a random word of the vocabulary into w[32] */
static const char *
rand_word(char w[32])
{
	size_t i = pick(vocab);

	if (i < NW)
		snprintf(w, 32, "%s", words[i]);
	else
		snprintf(w, 32, "tok%zu", i - NW);
	return w;
}

/* gen_pattern - one "/pattern/flags" (or !) for rule number n */
static void
gen_pattern(struct buf *b, bool allow_negate)
{
	const char *f = flagsets[pick(NF)];
	char b1[32], b2[32];
	const char *w1 = rand_word(b1), *w2 = rand_word(b2);
	const char *h1 = hnames[pick(NH)], *h2 = hnames[pick(NH)];

	if (allow_negate && pick(40) == 0) {
		/* fires only when the key holds w1: late and rare */
		buf_printf(b, "!/^(?:(?!%s).)*$/%s", w1, f);
		return;
	}
	switch (pick(16)) {
	case 0: case 1: case 2: case 3:
		buf_printf(b, "/^%s:.*%s/", h1, w1);
		break;
	case 4:
		buf_printf(b, "/^(%s|%s):.*%s/", h1, h2, w1);
		break;
	case 5:
		buf_printf(b, "/^%s:\\s*%s$/", h1, w1);
		break;
	case 6: case 7: case 8:
		buf_printf(b, "/%s\\s+%s/", w1, w2);
		break;
	case 9:
		buf_printf(b, "/\\b%s\\b/", w1);
		break;
	case 10:
		buf_printf(b, "/(%s) (\\w+) \\1/", w1);	/* back reference */
		break;
	case 11:
		buf_printf(b, "/(?<w>%s)\\s*\\k<w>|%s(*SKIP)(*F)|^%s:.*%s/",
		    w1, w2, h1, w2);
		break;
	case 12:
		buf_printf(b, "/%s \\K%s|\\Q%s|\\E/", w1, w2, w2);
		break;
	case 13:
		buf_printf(b, "/^%s:.*%s # comment|%sx/", h1, w1, w2);
		break;
	case 14:
		buf_printf(b, "/^%s: .*\\n\\s+%s/", h1, w1);	/* folded */
		break;
	default:
		buf_printf(b, "/%s/", w1);
		break;
	}
	buf_append_str(b, f);
}

/* gen_rules - n rules (recursing for if blocks) */
static void
gen_rules(struct buf *b, size_t n, int depth, size_t *id)
{
	size_t i, inner;
	const char *h;
	char w[32];

	for (i = 0; i < n; i++) {
		if (depth < 2 && pick(30) == 0) {
			inner = 1 + pick(6);
			if (pick(2) == 0) {
				h = hnames[pick(NH)];
				buf_printf(b, "if %s/^%s:/\n",
				    pick(5) == 0 ? "!" : "", h);
			} else {
				buf_append_str(b, "if ");
				gen_pattern(b, true);
				buf_append_str(b, "\n");
			}
			gen_rules(b, inner, depth + 1, id);
			buf_append_str(b, "endif\n");
			continue;
		}
		if (pick(25) == 0) {
			/* captures in the result */
			buf_printf(b, "/^%s:\\s*(\\w+)\\s+(%s)/%s R%zu $2/$1\n",
			    hnames[pick(NH)], rand_word(w), flagsets[pick(NF)],
			    (*id)++);
			continue;
		}
		gen_pattern(b, true);
		buf_printf(b, " R%zu\n", (*id)++);
	}
}

/* gen_key - a header (sometimes folded) or a body line */
static char *
gen_key(void)
{
	struct buf b;
	size_t i, n;
	const char *h;
	char w[32];

	buf_init(&b, 0);
	switch (pick(10)) {
	case 0: case 1: case 2: case 3: case 4:
		h = hnames[pick(NH)];
		for (i = 0; h[i] != '\0'; i++) {
			char c = h[i];

			if (pick(4) == 0 && isalpha((unsigned char)c))
				c ^= 0x20;	/* flip the case */
			buf_append(&b, &c, 1);
		}
		buf_append_str(&b, pick(8) == 0 ? ":" : ": ");
		break;
	case 5:
		/* non-ASCII names: Kelvin sign, long s, Latin-1 */
		buf_append_str(&b, (const char *[]){ "\xe2\x84\xaa" "eywords: ",
		    "\xc5\xbf" "ubject: ", "X-\xe9t\xe9: ",
		    "S\xc5\xbf" "ender:" }
		    [pick(4)]);
		break;
	case 6:
		buf_append_str(&b, "X-Unknown-Header-Name: ");
		break;
	default:
		break;		/* a body line */
	}
	n = pick(12);
	for (i = 0; i < n; i++) {
		if (i > 0)
			buf_append_str(&b, pick(15) == 0 ? "\n\t" : " ");
		if (pick(40) == 0)
			buf_append_str(&b, "\xff");
		buf_append_str(&b, rand_word(w));
	}
	return buf_steal(&b);
}

#define NKEYS	600

/* compare - every key, fast against reference; mismatches counted */
static size_t
compare(struct table *fast, struct table *ref, char **keys, size_t nkeys,
    size_t *matched_r, const char *label)
{
	size_t i, wrong = 0;
	char *a, *b;

	*matched_r = 0;
	for (i = 0; i < nkeys; i++) {
		a = table_lookup_dup(fast, keys[i]);
		b = table_lookup_dup(ref, keys[i]);
		if (b != NULL)
			(*matched_r)++;
		if ((a == NULL) != (b == NULL) ||
		    (a != NULL && strcmp(a, b) != 0)) {
			if (wrong++ < 3)
				printf("# %s: key \"%s\": got \"%s\", want "
				    "\"%s\"\n", label, keys[i],
				    a ? a : "(null)", b ? b : "(null)");
		}
		free(a);
		free(b);
	}
	return wrong;
}

static void
test_random(void)
{
	static const size_t sizes[] = {
		1, 2, 3, 5, 8, 13, 21, 34, 55, 100, 200, 500, 1000, 3000,
	};
	struct table *fast, *ref;
	char *keys[NKEYS], *path, label[64];
	size_t s, i, id, wrong, matched, total_matched = 0, total = 0;
	unsigned int seed;
	struct buf b;

	for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		for (seed = 1; seed <= (sizes[s] >= 500 ? 1U : 4U); seed++) {
			rng_state = 0x9e3779b97f4a7c15ULL * (seed + 100 * s);
			vocab = NW + 4 * sizes[s];
			buf_init(&b, 0);
			id = 1;
			gen_rules(&b, sizes[s], 0, &id);
			path = write_table(buf_cstr(&b));
			buf_deinit(&b);
			snprintf(label, sizeof(label), "%zu rules, seed %u",
			    sizes[s], seed);
			if (open_pair(path, &fast, &ref) == -1) {
				ok(0, "random %s: loads", label);
				free(path);
				continue;
			}
			for (i = 0; i < NKEYS; i++)
				keys[i] = gen_key();
			wrong = compare(fast, ref, keys, NKEYS, &matched,
			    label);
			is_int(wrong, 0, "random %s: %d keys agree (%zu "
			    "matched)", label, NKEYS, matched);
			total_matched += matched;
			total += NKEYS;
			for (i = 0; i < NKEYS; i++)
				free(keys[i]);
			table_free(&fast);
			table_free(&ref);
			free(path);
		}
	}
	/* the generator must produce both outcomes, or it proves nothing */
	ok(total_matched > total / 10 && total_matched < total * 9 / 10,
	    "random keys: %zu of %zu matched a rule", total_matched, total);
}

/* threads: one table, expected answers computed beforehand */
struct worker {
	struct table *t;
	char	**keys;
	char	**want;
	size_t	 nkeys;
	size_t	 wrong;
};

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	size_t round, i;
	char *got;

	for (round = 0; round < 5; round++)
		for (i = 0; i < w->nkeys; i++) {
			got = table_lookup_dup(w->t, w->keys[i]);
			if ((got == NULL) != (w->want[i] == NULL) ||
			    (got != NULL && strcmp(got, w->want[i]) != 0))
				w->wrong++;
			free(got);
		}
	return NULL;
}

static void
test_threads(void)
{
	struct worker w[4];
	pthread_t th[4];
	struct table *fast, *ref;
	char *keys[NKEYS], *want[NKEYS], *path;
	size_t i, id = 1, wrong = 0;
	int started = 0;
	struct buf b;

	rng_state = 0x1234567887654321ULL;
	vocab = NW + 4000;
	buf_init(&b, 0);
	gen_rules(&b, 1000, 0, &id);
	path = write_table(buf_cstr(&b));
	buf_deinit(&b);
	if (open_pair(path, &fast, &ref) == -1) {
		ok(0, "threads: table loads");
		free(path);
		return;
	}
	for (i = 0; i < NKEYS; i++) {
		keys[i] = gen_key();
		want[i] = table_lookup_dup(ref, keys[i]);
	}
	for (i = 0; i < 4; i++) {
		w[i] = (struct worker){ fast, keys, want, NKEYS, 0 };
		if (pthread_create(&th[i], NULL, worker_run, &w[i]) == 0)
			started++;
		else
			w[i].t = NULL;
	}
	for (i = 0; i < 4; i++)
		if (w[i].t != NULL) {
			pthread_join(th[i], NULL);
			wrong += w[i].wrong;
		}
	is_int(started, 4, "threads: started");
	is_int(wrong, 0, "threads: fast path right in 4 threads");
	for (i = 0; i < NKEYS; i++) {
		free(keys[i]);
		free(want[i]);
	}
	table_free(&fast);
	table_free(&ref);
	free(path);
}

/* remove_files - the temporary tables */
static void
remove_files(void)
{
	char *path;
	int i;

	for (i = 0; i < nfiles; i++) {
		path = xasprintf("%s/t%d.pcre", tmpdir, i);
		unlink(path);
		free(path);
	}
	rmdir(tmpdir);
}

int
main(void)
{
	if (mkdtemp(tmpdir) == NULL) {
		ok(0, "mkdtemp");
		return done_testing();
	}
	test_targeted();
	test_random();
	test_threads();
	remove_files();
	return done_testing();
}

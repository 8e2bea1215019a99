/*
 * header_address.c - the addresses of an address-list header (From:,
 * Sender:, RFC 5322 3.4): mailboxes with or without display names,
 * groups, comments, quoted strings and obsolete routes.
 *
 * What the sender policy needs is every addr-spec a mail reader could
 * show as the author, so the parser is lenient the way readers are and
 * errs towards finding more: whatever stands in angle brackets is an
 * address (each of two in one mailbox), a bare word with an "@" is one
 * too, also after the brackets ("<a@x.test>b@y.test").
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "header_address.h"
#include "xmalloc.h"

struct scan {
	const char *p, *end;
	struct buf word;	/* the current mailbox's text before <> */
	struct buf angle;	/* inside <> */
	struct buf after;	/* after <>: "<a@x>b@y" hides a second one */
	bool	 in_angle;
	bool	 had_angle;
	char	**out;		/* owned by the caller once returned */
	size_t	 n, cap;
};

static void
emit(struct scan *sc, const char *addr, size_t len)
{
	const char *colon;

	/* an obsolete route "@a,@b:user@host" keeps only user@host */
	if (len > 0 && addr[0] == '@' &&
	    (colon = memchr(addr, ':', len)) != NULL) {
		len -= (size_t)(colon + 1 - addr);
		addr = colon + 1;
	}
	while (len > 0 && isspace((unsigned char)*addr)) {
		addr++;
		len--;
	}
	while (len > 0 && isspace((unsigned char)addr[len - 1]))
		len--;
	if (len == 0 || memchr(addr, '@', len) == NULL)
		return;
	if (sc->n == sc->cap) {
		sc->cap = sc->cap == 0 ? 4 : sc->cap * 2;
		sc->out = xreallocarray(sc->out, sc->cap, sizeof(*sc->out));
	}
	sc->out[sc->n++] = xstrndup(addr, len);
}

/* end_mailbox - at "," or ";" or the end: what was collected */
static void
end_mailbox(struct scan *sc)
{
	if (sc->had_angle) {
		emit(sc, sc->angle.data, sc->angle.len);
		emit(sc, sc->after.data, sc->after.len);
	} else
		emit(sc, sc->word.data, sc->word.len);
	buf_reset(&sc->word);
	buf_reset(&sc->angle);
	buf_reset(&sc->after);
	sc->had_angle = sc->in_angle = false;
}

/* skip_comment - p at "("; nested comments, quoted pairs */
static void
skip_comment(struct scan *sc)
{
	int depth = 0;

	for (; sc->p < sc->end; sc->p++) {
		if (*sc->p == '\\' && sc->p + 1 < sc->end)
			sc->p++;
		else if (*sc->p == '(')
			depth++;
		else if (*sc->p == ')' && --depth == 0) {
			sc->p++;
			return;
		}
	}
}

/* copy_quoted - p at '"': the quoted string, quotes kept, into b */
static void
copy_quoted(struct scan *sc, struct buf *b)
{
	buf_append(b, sc->p++, 1);
	for (; sc->p < sc->end; sc->p++) {
		if (*sc->p == '\r' || *sc->p == '\n')
			continue;	/* folding inside the quotes */
		if (*sc->p == '\\' && sc->p + 1 < sc->end) {
			if (sc->p[1] != '\r' && sc->p[1] != '\n')
				buf_append(b, sc->p, 2);
			sc->p++;
			continue;
		}
		buf_append(b, sc->p, 1);
		if (*sc->p == '"') {
			sc->p++;
			return;
		}
	}
}

size_t
header_addresses(const char *value, size_t len, char ***addrs_r)
{
	struct scan sc;
	struct buf *b;
	char c;

	memset(&sc, 0, sizeof(sc));
	sc.p = value;
	sc.end = value + len;
	buf_init(&sc.word, 0);
	buf_init(&sc.angle, 0);
	buf_init(&sc.after, 0);
	while (sc.p < sc.end) {
		c = *sc.p;
		b = sc.in_angle ? &sc.angle : sc.had_angle ? &sc.after :
		    &sc.word;
		if (c == '(') {
			skip_comment(&sc);
			continue;
		}
		if (c == '"') {
			copy_quoted(&sc, b);
			continue;
		}
		sc.p++;
		if (c == '<' && !sc.in_angle) {
			/* a second <...> in one mailbox: both count */
			if (sc.had_angle)
				emit(&sc, sc.angle.data, sc.angle.len);
			sc.in_angle = sc.had_angle = true;
			buf_reset(&sc.angle);
		} else if (c == '>' && sc.in_angle)
			sc.in_angle = false;
		else if (c == ':' && !sc.in_angle)
			buf_reset(&sc.word);	/* a group's display name */
		else if ((c == ',' || c == ';') && !sc.in_angle)
			end_mailbox(&sc);
		else if (c == '\r' || c == '\n')
			continue;
		else if (isspace((unsigned char)c) && !sc.in_angle) {
			/* words without "@" are a display name */
			if (b->len == 0 || memchr(b->data, '@', b->len) == NULL)
				buf_reset(b);
		} else
			buf_append(b, &c, 1);
	}
	end_mailbox(&sc);
	buf_deinit(&sc.word);
	buf_deinit(&sc.angle);
	buf_deinit(&sc.after);
	*addrs_r = sc.out;
	return sc.n;
}

void
header_addresses_free(char **addrs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(addrs[i]);
	free(addrs);
}

/*
 * milter_map.c - the pure mappings between libmilter's view of an SMTP
 * transaction and the filter API's (see milter_map.h).
 *
 * Owns nothing beyond what it returns. Leaves every libmilter call to
 * milter_host.c, and the Authentication-Results rule itself to
 * daemon/auth_results.c (only its answer per field is used here).
 *
 * The action tables (which filter may need which milter action, what to
 * do with an edit the MTA cannot take) are the policy of postern-milter
 * on a short-handed MTA; doc/postern-milter.8 says it for operators.
 *
 * Protocol notes: RFC 5321 4.2 (reply codes), RFC 3463 (enhanced codes),
 * RFC 5322 2.2 (header fields, folding), RFC 8601 5 (removing results
 * that claim our authserv-id), RFC 3461 4 (NOTIFY, ORCPT).
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth_results.h"
#include "buf.h"
#include "message_edit.h"
#include "milter_map.h"
#include "smtp_parser.h"
#include "xmalloc.h"

/* is_enhanced - "c.sss.ddd" of RFC 3463 at p, length *n_r */
static bool
is_enhanced(const char *p, size_t *n_r)
{
	size_t i = 0, part, digits;

	for (part = 0; part < 3; part++) {
		if (part > 0) {
			if (p[i] != '.')
				return false;
			i++;
		}
		for (digits = 0; isdigit((unsigned char)p[i]); digits++)
			i++;
		if (digits == 0 || digits > 3)
			return false;
	}
	if (p[i] != '\0' && p[i] != ' ')
		return false;
	*n_r = i;
	return true;
}

/*
 * copy_text - the reply text for smfi_setreply: libmilter treats it as a
 * format ("%" must be "%%") and fails on CR or LF
 */
static void
copy_text(char *out, size_t outlen, const char *in)
{
	size_t o = 0;

	for (; *in != '\0' && o + 2 < outlen; in++) {
		unsigned char c = (unsigned char)*in;

		if (c == '%') {
			out[o++] = '%';
			out[o++] = '%';
		} else if (c < 0x20 || c == 0x7f)
			out[o++] = ' ';
		else
			out[o++] = (char)c;
	}
	out[o] = '\0';
}

int
milter_map_reply(const char *reply, char want, struct milter_reply *r)
{
	const char *p = reply;
	size_t n;

	memset(r, 0, sizeof(*r));
	if (reply == NULL || p[0] != want || !isdigit((unsigned char)p[1]) ||
	    !isdigit((unsigned char)p[2]) || (p[3] != ' ' && p[3] != '\0' &&
	    p[3] != '-'))
		goto fallback;
	memcpy(r->code, p, 3);
	p += 3;
	while (*p == ' ' || *p == '-')
		p++;
	if (is_enhanced(p, &n) && p[0] == want && n < sizeof(r->enhanced)) {
		memcpy(r->enhanced, p, n);
		p += n;
		while (*p == ' ')
			p++;
	}
	copy_text(r->text, sizeof(r->text), p);
	return 0;
fallback:
	if (want == '4') {
		memcpy(r->code, "451", 4);
		memcpy(r->enhanced, "4.3.0", 6);
		copy_text(r->text, sizeof(r->text), "Error: filter reply");
	} else {
		memcpy(r->code, "554", 4);
		memcpy(r->enhanced, "5.7.1", 6);
		copy_text(r->text, sizeof(r->text), "Rejected");
	}
	return -1;
}

char *
milter_map_address(const char *arg)
{
	const char *p, *end, *colon;

	if (arg == NULL)
		return xstrdup("");
	p = arg;
	while (*p == ' ' || *p == '\t')
		p++;
	end = p + strlen(p);
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (end - p >= 2 && *p == '<' && end[-1] == '>') {
		p++;
		end--;
	}
	/* RFC 5321 4.1.2: a source route "@a,@b:" is ignored */
	if (p < end && *p == '@' &&
	    (colon = memchr(p, ':', (size_t)(end - p))) != NULL)
		p = colon + 1;
	return xstrndup(p, (size_t)(end - p));
}

/* param_value - the value of "KEY=value" when arg's keyword is key */
static const char *
param_value(const char *arg, const char *key)
{
	size_t n = strlen(key);

	if (strncasecmp(arg, key, n) == 0 && arg[n] == '=')
		return arg + n + 1;
	return NULL;
}

/*
 * orcpt_decoded - an ORCPT= value in the form posternd's spool keeps
 * (smtp_orcpt_decoded), checked by the RCPT parser; NULL when it is
 * malformed
 */
static char *
orcpt_decoded(const char *v)
{
	struct smtp_command cmd;
	const char *err;
	char *line, *s = NULL;

	line = xasprintf("RCPT TO:<orcpt@param.invalid> ORCPT=%s", v);
	smtp_command_init(&cmd);
	if (smtp_parse_command(line, strlen(line), &cmd, &err) == 0)
		s = smtp_orcpt_decoded(&cmd);
	smtp_command_deinit(&cmd);
	free(line);
	return s;
}

void
milter_map_esmtp(char *const *argv, struct milter_esmtp *e)
{
	const char *v;
	char *end;
	unsigned long long size;
	size_t i;

	memset(e, 0, sizeof(*e));
	for (i = 0; argv != NULL && argv[i] != NULL; i++) {
		if ((v = param_value(argv[i], "SIZE")) != NULL) {
			size = strtoull(v, &end, 10);
			if (end != v && *end == '\0' && v[0] != '-')
				e->size = (size_t)size;
		} else if ((v = param_value(argv[i], "BODY")) != NULL) {
			free(e->body_type);
			e->body_type = strcasecmp(v, "8BITMIME") == 0 ?
			    xstrdup("8BITMIME") : strcasecmp(v, "7BIT") == 0 ?
			    xstrdup("7BIT") : NULL;
		} else if (strcasecmp(argv[i], "SMTPUTF8") == 0)
			e->smtputf8 = true;
		else if ((v = param_value(argv[i], "NOTIFY")) != NULL) {
			free(e->notify);
			e->notify = xstrdup(v);
		} else if ((v = param_value(argv[i], "ORCPT")) != NULL) {
			free(e->orcpt);
			e->orcpt = orcpt_decoded(v);
		}
	}
}

void
milter_map_esmtp_deinit(struct milter_esmtp *e)
{
	free(e->body_type);
	free(e->notify);
	free(e->orcpt);
	memset(e, 0, sizeof(*e));
}

int
milter_map_field(struct buf *block, const char *name, const char *value,
    bool leadspc)
{
	struct buf f;
	const char *p;
	int rc;

	buf_init(&f, 0);
	buf_append_str(&f, name);
	buf_append_str(&f, leadspc ? ":" : ": ");
	for (p = value; *p != '\0'; p++) {
		if (*p == '\n' && (p == value || p[-1] != '\r'))
			buf_append(&f, "\r\n", 2);
		else
			buf_append(&f, p, 1);
	}
	buf_append(&f, "\r\n", 2);
	rc = buf_append(block, f.data, f.len);
	buf_deinit(&f);
	return rc;
}

size_t
milter_map_forged_ar(const char *block, size_t len, const char *authserv_id,
    struct milter_delete **del_r)
{
	struct header_list hl;
	struct milter_delete *del = NULL, tmp;
	struct buf one;
	size_t i, k, n = 0;
	int index;

	*del_r = NULL;
	if (authserv_id == NULL || header_list_parse(&hl, block, len) == -1)
		return 0;
	buf_init(&one, 0);
	for (i = 0; i < hl.n; i++) {
		if (strcasecmp(hl.fields[i].name, "Authentication-Results") != 0)
			continue;
		/* the nth field of that name, as the MTA counts them */
		for (index = 0, k = 0; k <= i; k++)
			if (strcasecmp(hl.fields[k].name,
			    hl.fields[i].name) == 0)
				index++;
		buf_reset(&one);
		buf_append_str(&one, hl.fields[i].raw);
		if (auth_results_strip(&one, authserv_id) == 0)
			continue;
		del = xreallocarray(del, n + 1, sizeof(*del));
		del[n].name = xstrdup(hl.fields[i].name);
		del[n].index = index;
		n++;
	}
	buf_deinit(&one);
	header_list_deinit(&hl);
	/* highest index first: deleting one must not renumber the next */
	for (i = 1; i < n; i++)
		for (k = i; k > 0 && del[k - 1].index < del[k].index; k--) {
			tmp = del[k - 1];
			del[k - 1] = del[k];
			del[k] = tmp;
		}
	*del_r = del;
	return n;
}

void
milter_map_deletes_free(struct milter_delete **delp, size_t n)
{
	size_t i;

	if (*delp == NULL)
		return;
	for (i = 0; i < n; i++)
		free((*delp)[i].name);
	free(*delp);
	*delp = NULL;
}

void
milter_map_client(const struct sockaddr *sa, const char *hostname,
    char **addr_r, char **name_r)
{
	char text[INET6_ADDRSTRLEN];
	const void *a = NULL;

	if (sa != NULL && sa->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	else if (sa != NULL && sa->sa_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	if (a != NULL && inet_ntop(sa->sa_family, a, text,
	    sizeof(text)) != NULL)
		*addr_r = xstrdup(text);
	else
		*addr_r = xstrdup("unknown");
	/* Postfix and Sendmail send "[addr]" for a name they could not verify */
	if (hostname == NULL || hostname[0] == '\0' || hostname[0] == '[')
		*name_r = xstrdup("unknown");
	else
		*name_r = xstrdup(hostname);
}

/*
 * The filters of Postern and the actions they may need at end of message
 * (filters/, policies/: what each passes to filter_edits_add, and HOLD).
 * relay never edits nor holds.
 */
static const struct {
	const char *name;
	unsigned needs;
} filter_needs[] = {
	{ "relay", 0 },
	{ "dkim", MILTER_MAP_ADDHDRS },
	{ "sender", MILTER_MAP_ADDHDRS },
	{ "spf", MILTER_MAP_ADDHDRS | MILTER_MAP_QUARANTINE },
	{ "regex", MILTER_MAP_ADDHDRS | MILTER_MAP_CHGHDRS |
	    MILTER_MAP_ADDRCPT | MILTER_MAP_DELRCPT | MILTER_MAP_QUARANTINE },
	{ "policy", MILTER_MAP_ADDHDRS | MILTER_MAP_ADDRCPT |
	    MILTER_MAP_DELRCPT | MILTER_MAP_QUARANTINE },
};

unsigned
milter_map_filter_needs(const char *name, bool edits)
{
	size_t i;

	for (i = 0; i < sizeof(filter_needs) / sizeof(filter_needs[0]); i++)
		if (strcmp(filter_needs[i].name, name) == 0)
			return filter_needs[i].needs;
	return (edits ? MILTER_MAP_EDITS : 0) | MILTER_MAP_QUARANTINE;
}

unsigned
milter_map_edit_needs(enum filter_edit_kind kind)
{
	switch (kind) {
	case FILTER_EDIT_ADD_HEADER:
	case FILTER_EDIT_INSERT_HEADER:
		return MILTER_MAP_ADDHDRS;
	case FILTER_EDIT_CHANGE_HEADER:
		return MILTER_MAP_CHGHDRS;
	case FILTER_EDIT_CHANGE_FROM:
		return MILTER_MAP_CHGFROM;
	case FILTER_EDIT_ADD_RCPT:
		return MILTER_MAP_ADDRCPT;
	case FILTER_EDIT_DELETE_RCPT:
		return MILTER_MAP_DELRCPT;
	case FILTER_EDIT_REPLACE_BODY:
		return MILTER_MAP_CHGBODY;
	}
	return MILTER_MAP_EDITS;
}

enum milter_map_fallback
milter_map_edit_fallback(const struct filter_edit *e, unsigned offered)
{
	unsigned need = milter_map_edit_needs(e->kind);

	if ((offered & need) == need)
		return MILTER_MAP_SEND;
	if (e->kind != FILTER_EDIT_ADD_HEADER &&
	    e->kind != FILTER_EDIT_INSERT_HEADER)
		return MILTER_MAP_FAIL;
	/* RFC 6376 5.6: the signature is the one header that is not a note */
	if (e->name != NULL && strcasecmp(e->name, "DKIM-Signature") == 0)
		return MILTER_MAP_UNSIGNED;
	return MILTER_MAP_SKIP;
}

static const struct {
	unsigned bit;
	const char *words;
} action_words[] = {
	{ MILTER_MAP_ADDHDRS, "add headers" },
	{ MILTER_MAP_CHGHDRS, "change headers" },
	{ MILTER_MAP_CHGBODY, "replace body" },
	{ MILTER_MAP_ADDRCPT, "add recipients" },
	{ MILTER_MAP_DELRCPT, "delete recipients" },
	{ MILTER_MAP_CHGFROM, "change sender" },
	{ MILTER_MAP_QUARANTINE, "quarantine" },
};

const char *
milter_map_actions_text(unsigned mask, char *out, size_t outlen)
{
	size_t i, o = 0;
	int n;

	if (outlen == 0)
		return out;
	out[0] = '\0';
	for (i = 0; i < sizeof(action_words) / sizeof(action_words[0]); i++) {
		if ((mask & action_words[i].bit) == 0)
			continue;
		n = snprintf(out + o, outlen - o, "%s%s", o > 0 ? ", " : "",
		    action_words[i].words);
		if (n < 0 || (size_t)n >= outlen - o) {
			out[o] = '\0';	/* truncated: whole words only */
			return out;
		}
		o += (size_t)n;
	}
	if (o == 0)
		snprintf(out, outlen, "none");
	return out;
}

bool
milter_map_hides_received(const char *v)
{
	/* Postfix's v is "$mail_name $mail_version": "Postfix 3.7.11" */
	return v != NULL && strncmp(v, "Postfix", 7) == 0 &&
	    (v[7] == '\0' || v[7] == ' ');
}

int
milter_map_insert_index(size_t index, bool hides_received)
{
	/*
	 * Postfix (cleanup_milter.c) finds the insert position counting
	 * every header field, its own Received: (the first) included,
	 * although it never showed that one to the milter; changes and
	 * deletions skip it. So an insert below our first field is one
	 * further down; 0 (the top, above Postfix's Received:, where
	 * DKIM-Signature goes) needs no shift.
	 */
	if (hides_received && index > 0)
		index++;
	return index > INT_MAX ? INT_MAX : (int)index;
}

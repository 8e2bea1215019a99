/*
 * milter_spec.c - one entry of smtpd_milters as configured: a milter's
 * address, or Postfix's brace group with per-milter timeouts and
 * default action ("{ inet:127.0.0.1:8891, command_timeout=10s,
 * default_action=accept }"), what the group leaves out taken from the
 * milter_* parameters; and the names of the default actions.
 *
 * It owns the struct milter_spec it fills (the caller's storage). It
 * does not connect (peer_socket.c, milter_conn.c) nor apply a default
 * action (milter_verdict.c).
 *
 * Reference: Postfix MILTER_README, "Different settings for different
 * Milter applications".
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"
#include "milter.h"
#include "xmalloc.h"

static const char *const fallback_names[] = {
	[MILTER_FALLBACK_TEMPFAIL] = "tempfail",
	[MILTER_FALLBACK_ACCEPT] = "accept",
	[MILTER_FALLBACK_REJECT] = "reject",
	[MILTER_FALLBACK_QUARANTINE] = "quarantine",
};

int
milter_fallback_parse(const char *s, enum milter_fallback *f)
{
	size_t i;

	for (i = 0; i < sizeof(fallback_names) / sizeof(*fallback_names); i++)
		if (strcasecmp(s, fallback_names[i]) == 0) {
			*f = (enum milter_fallback)i;
			return 0;
		}
	return -1;
}

const char *
milter_fallback_name(enum milter_fallback f)
{
	return fallback_names[f];
}

/* group_setting - one "name=value" of a brace group into spec */
static int
group_setting(struct milter_spec *spec, const char *item, const char **err)
{
	const char *eq = strchr(item, '=');
	size_t nlen;
	int *target = NULL;

	if (eq == NULL) {
		*err = "setting without '='";
		return -1;
	}
	nlen = (size_t)(eq - item);
	if (nlen == 15 && strncmp(item, "connect_timeout", nlen) == 0)
		target = &spec->connect_timeout;
	else if (nlen == 15 && strncmp(item, "command_timeout", nlen) == 0)
		target = &spec->command_timeout;
	else if (nlen == 15 && strncmp(item, "content_timeout", nlen) == 0)
		target = &spec->content_timeout;
	else if (nlen == 14 && strncmp(item, "default_action", nlen) == 0) {
		if (milter_fallback_parse(eq + 1, &spec->fallback) == -1) {
			*err = "default_action is not tempfail, accept, "
			    "reject or quarantine";
			return -1;
		}
		return 0;
	} else {
		*err = "unknown setting";
		return -1;
	}
	if (config_parse_time(eq + 1, 's', target) == -1 || *target <= 0) {
		*err = "bad time value";
		return -1;
	}
	/* as the milter_*_timeout parameters: in milliseconds, an int */
	if (*target > MILTER_TIMEOUT_MAX) {
		*err = "time value above 1 day";
		return -1;
	}
	return 0;
}

/*
 * group_copy - the inside of "{ ... }" with the blanks around each '='
 * taken out, so that "default_action = accept" is one setting (Postfix
 * allows both forms)
 */
static char *
group_copy(const char *token, size_t len)
{
	char *copy = xmalloc(len + 1), *o = copy;
	const char *p, *end = token + len - 1;

	for (p = token + 1; p < end; p++) {
		if (*p == '=')
			while (o > copy && (o[-1] == ' ' || o[-1] == '\t'))
				o--;
		*o++ = *p;
		if (*p == '=')
			while (p + 1 < end && (p[1] == ' ' || p[1] == '\t'))
				p++;
	}
	*o = '\0';
	return copy;
}

int
milter_spec_parse(struct milter_spec *spec, const char *token,
    const struct config *cfg, char **error_r)
{
	const char *err = NULL;
	char *copy = NULL, *p, *item;
	size_t len;
	int n = 0;

	memset(spec, 0, sizeof(*spec));
	spec->connect_timeout = cfg->milter_connect_timeout;
	spec->command_timeout = cfg->milter_command_timeout;
	spec->content_timeout = cfg->milter_content_timeout;
	if (milter_fallback_parse(cfg->milter_default_action,
	    &spec->fallback) == -1) {
		*error_r = xasprintf("milter_default_action: \"%s\" is not "
		    "tempfail, accept, reject or quarantine",
		    cfg->milter_default_action);
		return -1;
	}
	if (token[0] != '{') {
		spec->name = xstrdup(token);
		if (peer_endpoint_parse(&spec->ep, token, &err) == -1)
			goto bad;
		return 0;
	}
	/* "{ address, name=value, ... }": commas or spaces separate */
	len = strlen(token);
	if (len < 2 || token[len - 1] != '}') {
		err = "brace group without '}'";
		goto bad;
	}
	copy = group_copy(token, len);
	for (p = copy; (item = strsep(&p, ", \t\r\n")) != NULL;) {
		if (*item == '\0')
			continue;
		if (n++ == 0) {
			spec->name = xstrdup(item);
			if (peer_endpoint_parse(&spec->ep, item, &err) == -1)
				goto bad;
			continue;
		}
		if (group_setting(spec, item, &err) == -1)
			goto bad;
	}
	if (n == 0) {
		err = "empty brace group";
		goto bad;
	}
	free(copy);
	return 0;
bad:
	*error_r = xasprintf("smtpd_milters: \"%s\": %s", token, err);
	free(copy);
	return -1;
}

void
milter_spec_deinit(struct milter_spec *spec)
{
	free(spec->name);
	peer_endpoint_deinit(&spec->ep);
	memset(spec, 0, sizeof(*spec));
}

/*
 * fuzz_smtp_parser.c - libFuzzer target for the SMTP command parser
 * (daemon/smtp_parser.c) and the canonical address forms
 * (daemon/address.c).
 *
 * The input is split at LF into command lines that are parsed with one
 * reused struct smtp_command, as a session does. Besides "no crash, no
 * leak, no overread" it checks properties:
 *   - an error reply is "[45]yz x.y.z text" with no CR or LF in it;
 *   - a MAIL/RCPT path has no NUL, is_utf8_path is set exactly when it
 *     has a non-ASCII octet, and address.c can take every path apart;
 *   - the canonical form is a fixed point: canonical(canonical(a)) is
 *     canonical(a).
 *
 * Build for libFuzzer (see fuzz/README.md):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. -Idaemon \
 *     fuzz/fuzz_smtp_parser.c daemon/smtp_parser.c daemon/address.c \
 *     daemon/buf.c daemon/xmalloc.c daemon/log.c -o fuzz_smtp_parser
 * or with -DFUZZ_STANDALONE (any compiler) as a program that runs the
 * files named on its command line, or stdin, as inputs.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "smtp_parser.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* check_reply - "[45]yz x.y.z text", one line */
static void
check_reply(const char *r)
{
	size_t i;

	if (r == NULL || strlen(r) < 12 || (r[0] != '4' && r[0] != '5') ||
	    !isdigit((unsigned char)r[1]) || !isdigit((unsigned char)r[2]) ||
	    r[3] != ' ' || r[4] != r[0] || r[5] != '.')
		abort();
	for (i = 0; r[i] != '\0'; i++)
		if (r[i] == '\r' || r[i] == '\n')
			abort();
}

/* check_path - properties of a MAIL/RCPT path that parsed */
static void
check_path(const struct smtp_command *cmd)
{
	struct address a, b;
	const char *error;
	char *c1, *c2;
	bool high = false;
	size_t i;

	if (cmd->path == NULL)
		abort();
	for (i = 0; cmd->path[i] != '\0'; i++)
		if ((unsigned char)cmd->path[i] >= 0x80)
			high = true;
	if (high != cmd->is_utf8_path || i > SMTP_PATH_MAX)
		abort();
	if (address_parse(cmd->path, &a, &error) == -1)
		abort();
	c1 = address_canonical(&a);
	if (address_parse(c1, &b, &error) == -1)
		abort();
	c2 = address_canonical(&b);
	if (strcmp(c1, c2) != 0 || strcmp(a.local, b.local) != 0 ||
	    strcmp(a.domain, b.domain) != 0 ||
	    address_has_routing(&a) != address_has_routing(&b))
		abort();
	free(c1);
	free(c2);
	address_deinit(&a);
	address_deinit(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_command cmd;
	const char *s = (const char *)data, *nl, *error;
	size_t len;

	smtp_command_init(&cmd);
	while (size > 0) {
		nl = memchr(s, '\n', size);
		len = nl != NULL ? (size_t)(nl - s) : size;
		/* a CRLF line end is the caller's to strip */
		if (len > 0 && s[len - 1] == '\r' && nl != NULL)
			len--;
		error = NULL;
		if (smtp_parse_command(s, len, &cmd, &error) == -1)
			check_reply(error);
		else if (cmd.verb == SMTP_VERB_MAIL ||
		    cmd.verb == SMTP_VERB_RCPT)
			check_path(&cmd);
		else if (cmd.verb == SMTP_VERB_UNKNOWN)
			abort();
		if (nl == NULL)
			break;
		size -= (size_t)(nl - s) + 1;
		s = nl + 1;
	}
	smtp_command_deinit(&cmd);
	return 0;
}

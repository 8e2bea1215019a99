/*
 * fuzz_headers.c - libFuzzer target for what reads message headers from
 * untrusted mail outside the MIME parser: the From:/Sender: address-list
 * parser of the sender policy (policies/header_address.c), the removal
 * of forged Authentication-Results (daemon/auth_results.c), and the
 * header block parser and edits those rely on (daemon/message_edit.c).
 *
 * Input: byte 0 selects the part; the rest is the text. Besides "no
 * crash, no leak, no overread" it checks properties:
 *   - every address found has an "@", no CR, LF or NUL, and is not
 *     longer than the input;
 *   - auth_results_strip leaves a block that parses, with no field
 *     claiming the id, and is idempotent; it never grows the block.
 *
 * Build for libFuzzer (see fuzz/README.md):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. -Idaemon \
 *     -Ifilters -Ipolicies fuzz/fuzz_headers.c policies/header_address.c \
 *     daemon/auth_results.c daemon/message_edit.c filters/filter.c ...
 * or with -DFUZZ_STANDALONE as a program that runs files as inputs.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth_results.h"
#include "buf.h"
#include "header_address.h"
#include "message_edit.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fuzz_addresses(const char *text, size_t len)
{
	char **addrs;
	size_t i, n;

	n = header_addresses(text, len, &addrs);
	for (i = 0; i < n; i++) {
		if (strchr(addrs[i], '@') == NULL ||
		    strpbrk(addrs[i], "\r\n") != NULL ||
		    strlen(addrs[i]) > len)
			abort();
	}
	header_addresses_free(addrs, n);
}

/* claims_id - some field of the block is Authentication-Results: id */
static void
check_stripped(const struct buf *b)
{
	struct header_list hl;
	struct buf again;
	size_t i;

	if (header_list_parse(&hl, b->data, b->len) == -1)
		return;
	for (i = 0; i < hl.n; i++)
		if (strcasecmp(hl.fields[i].name,
		    "Authentication-Results") == 0 &&
		    strncasecmp(strchr(hl.fields[i].raw, ':') + 1,
		    " relay.test;", 12) == 0)
			abort();
	header_list_deinit(&hl);
	buf_init(&again, 0);
	buf_append(&again, b->data, b->len);
	if (auth_results_strip(&again, "relay.test") != 0 ||
	    again.len != b->len || memcmp(again.data, b->data, b->len) != 0)
		abort();
	buf_deinit(&again);
}

static void
fuzz_auth_results(const char *text, size_t len)
{
	struct buf b;
	size_t before;

	buf_init(&b, 0);
	buf_append(&b, text, len);
	before = b.len;
	(void)auth_results_strip(&b, "relay.test");
	if (b.len > before)
		abort();
	check_stripped(&b);
	buf_deinit(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;

	if (size < 1)
		return 0;
	text = malloc(size);
	if (text == NULL)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	if (data[0] & 1)
		fuzz_auth_results(text, strlen(text));
	else
		fuzz_addresses(text, strlen(text));
	free(text);
	return 0;
}

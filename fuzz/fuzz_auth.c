/*
 * fuzz_auth.c - libFuzzer target for the SASL response decoders
 * (daemon/auth.c) and the strict base64 codec (daemon/base64.c).
 *
 * Besides "no crash, no leak" it checks properties: a PLAIN response that
 * decodes gives NUL-free, non-empty fields; anything base64_decode
 * accepts re-encodes to exactly the input (canonical decoding).
 *
 * Build for libFuzzer:
 *   clang -fsanitize=fuzzer,address,undefined -I. -Idaemon -Iconfig \
 *     fuzz/fuzz_auth.c daemon/auth.c daemon/base64.c daemon/buf.c \
 *     daemon/xmalloc.c daemon/log.c config/table*.c ... -lcrypt -lcrypto
 * or with -DFUZZ_STANDALONE as a program that runs one input from stdin.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "base64.h"
#include "buf.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *line = (const char *)data;
	struct auth_creds creds;
	unsigned char *out;
	size_t outlen;
	char *value;
	struct buf b;

	if (auth_plain_decode(line, size, &creds) == AUTH_OK) {
		if (creds.user[0] == '\0' || creds.password[0] == '\0')
			abort();
	} else if (creds.user != NULL || creds.password != NULL)
		abort();
	auth_creds_deinit(&creds);

	if (auth_login_decode(line, size, &value) == AUTH_OK) {
		if (value[0] == '\0')
			abort();
	} else if (value != NULL)
		abort();
	auth_wipe(&value);

	out = malloc(BASE64_DECODED_MAX(size) + 1);
	if (out == NULL)
		return 0;
	if (base64_decode(line, size, out, BASE64_DECODED_MAX(size),
	    &outlen) == 0) {
		buf_init(&b, 0);
		if (base64_encode(&b, out, outlen) != 0 || b.len != size ||
		    (size > 0 && memcmp(b.data, data, size) != 0))
			abort();
		buf_deinit(&b);
	}
	free(out);
	return 0;
}

/*
 * base64.h - strict base64 (RFC 4648 section 4) for SMTP AUTH.
 *
 * The decoder accepts only the canonical encoding: the standard alphabet,
 * no white space, a length that is a multiple of four, at most two '='
 * at the very end and zero bits in the unused part of the last group.
 * Anything else is an error, so that two different client strings never
 * decode to the same secret and parsers behind us see exactly what the
 * client meant.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_BASE64_H
#define POSTERN_BASE64_H

#include <stddef.h>

#include "buf.h"

/* BASE64_DECODED_MAX - room base64_decode needs for n input characters */
#define BASE64_DECODED_MAX(n)	(((n) / 4) * 3)
/* BASE64_ENCODED_LEN - characters base64_encode produces for n bytes */
#define BASE64_ENCODED_LEN(n)	((((n) + 2) / 3) * 4)

/*
 * base64_decode - decode inlen characters of in into out, which has room
 * for outsize bytes. Returns 0 and sets *outlen_r, or -1 when the input
 * is not canonical base64 or out is too small (out may then hold partial
 * data; callers decoding secrets wipe it). An empty input decodes to zero
 * bytes. out is not NUL-terminated.
 */
/* base64_value - the 6-bit value of c, or -1 when c is not in the alphabet */
int	base64_value(unsigned char c);

int	base64_decode(const char *in, size_t inlen, unsigned char *out,
	    size_t outsize, size_t *outlen_r);

/*
 * base64_encode - append the encoding of n bytes to out. Returns 0, or -1
 * when the buffer's cap would be passed (nothing is appended then).
 */
int	base64_encode(struct buf *out, const void *in, size_t n);

#endif

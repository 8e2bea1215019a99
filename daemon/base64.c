/*
 * base64.c - strict base64 codec (RFC 4648 section 4); see base64.h.
 *
 * Owns nothing; works on caller buffers. Used by SMTP AUTH (RFC 4954
 * section 4: responses are base64, "=" alone stands for an empty one,
 * which the AUTH code handles before calling us) and by the AUTH client
 * of delivery. OpenSSL's EVP_DecodeBlock is not used because it accepts
 * white space, keeps padding bytes in its length and does not reject
 * non-canonical trailing bits.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>

#include "base64.h"
#include "buf.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int
base64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
base64_decode(const char *in, size_t inlen, unsigned char *out,
    size_t outsize, size_t *outlen_r)
{
	size_t i, o, pad;
	int v[4], k;
	uint32_t group;

	*outlen_r = 0;
	if (inlen % 4 != 0)
		return -1;
	pad = 0;
	if (inlen > 0 && in[inlen - 1] == '=') {
		pad++;
		if (in[inlen - 2] == '=')
			pad++;
	}
	if (BASE64_DECODED_MAX(inlen) - pad > outsize)
		return -1;

	o = 0;
	for (i = 0; i < inlen; i += 4) {
		for (k = 0; k < 4; k++) {
			/* '=' is only valid in the padding we counted. */
			if (i + k >= inlen - pad) {
				v[k] = 0;
				continue;
			}
			if ((v[k] = base64_value((unsigned char)in[i + k])) < 0)
				return -1;
		}
		group = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
		    (uint32_t)v[2] << 6 | (uint32_t)v[3];
		if (i + 4 < inlen || pad == 0) {
			out[o++] = group >> 16;
			out[o++] = (group >> 8) & 0xff;
			out[o++] = group & 0xff;
		} else if (pad == 1) {
			/* RFC 4648 3.5: unused bits must be zero. */
			if ((group & 0xff) != 0)
				return -1;
			out[o++] = group >> 16;
			out[o++] = (group >> 8) & 0xff;
		} else {
			if ((group & 0xffff) != 0)
				return -1;
			out[o++] = group >> 16;
		}
	}
	*outlen_r = o;
	return 0;
}

int
base64_encode(struct buf *out, const void *in, size_t n)
{
	const unsigned char *p = in;
	char quad[4];
	size_t i, start;
	uint32_t group;

	start = out->len;
	for (i = 0; i < n; i += 3) {
		group = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			group |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			group |= p[i + 2];
		quad[0] = b64_alphabet[group >> 18];
		quad[1] = b64_alphabet[(group >> 12) & 0x3f];
		quad[2] = i + 1 < n ? b64_alphabet[(group >> 6) & 0x3f] : '=';
		quad[3] = i + 2 < n ? b64_alphabet[group & 0x3f] : '=';
		if (buf_append(out, quad, sizeof(quad)) == -1) {
			/* Leave the buffer as it was. */
			out->len = start;
			if (out->data != NULL)
				out->data[start] = '\0';
			return -1;
		}
	}
	return 0;
}

/*
 * mime-private.h - the decoders shared by the MIME parser (mime.c) and
 * implemented in mime_decode.c: charset conversion to UTF-8, streaming
 * base64, quoted-printable lines, and header field parameters (RFC 2045
 * section 5.1, RFC 2231).
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_MIME_PRIVATE_H
#define POSTERN_MIME_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include <iconv.h>

#include "buf.h"

/* MIME_CHARSET_MAX - longest charset name we hand to iconv_open */
#define MIME_CHARSET_MAX	40

/*
 * struct mime_conv - conversion of one charset to UTF-8. A charset that is
 * already UTF-8 (or US-ASCII), or that iconv does not know, passes bytes
 * through unchanged.
 */
struct mime_conv {
	iconv_t	 cd;		/* owned; (iconv_t)-1: pass through */
};

/* mime_conv_init - converter from charset (NULL: US-ASCII) to UTF-8 */
void	mime_conv_init(struct mime_conv *, const char *charset);
void	mime_conv_deinit(struct mime_conv *);
/*
 * mime_conv_append - append in[0..len) converted to UTF-8 to out. The
 * input is a complete piece (a line): the shift state starts afresh, and
 * every invalid or incomplete sequence becomes U+FFFD.
 */
void	mime_conv_append(struct mime_conv *, struct buf *out,
	    const void *in, size_t len);
/* mime_charset_append - the same, once, for a charset given by name */
void	mime_charset_append(struct buf *out, const char *charset,
	    const void *in, size_t len);

/*
 * struct mime_b64 - base64 decoder state across calls (RFC 2045 6.8):
 * characters outside the alphabet are ignored, "=" ends a group.
 */
struct mime_b64 {
	unsigned int	 bits;
	unsigned int	 n;	/* sextets in bits, 0..3 */
};

void	mime_b64_init(struct mime_b64 *);
/* mime_b64_decode - decode len characters, appending bytes to out */
void	mime_b64_decode(struct mime_b64 *, struct buf *out, const char *in,
	    size_t len);
/* mime_b64_flush - the bytes of an unfinished last group, as if padded */
void	mime_b64_flush(struct mime_b64 *, struct buf *out);

/*
 * mime_qp_decode_line - decode one quoted-printable line (or a piece of
 * one, complete = false) onto out (RFC 2045 6.7): "=XX" becomes a byte,
 * a malformed "=" stays as it is, and a complete line loses its trailing
 * white space and gets a "\n" unless it ends in a soft line break.
 */
void	mime_qp_decode_line(struct buf *out, const char *in, size_t len,
	    bool complete);

/*
 * mime_value_type - the lower-cased leading value of a Content-Type
 * ("type/subtype") or Content-Disposition / Content-Transfer-Encoding
 * (one token) header value; comments skipped. Owned; NULL when the value
 * does not start with one (or, with want_slash, lacks the subtype).
 */
char	*mime_value_type(const char *value, size_t len, bool want_slash);

/*
 * mime_param_get - the value of parameter name in a Content-Type or
 * Content-Disposition header value, unquoted, with RFC 2231 continuations
 * joined and extended values percent-decoded and converted to UTF-8 from
 * their charset. Owned; NULL when the parameter is absent.
 */
char	*mime_param_get(const char *value, size_t len, const char *name);

#endif

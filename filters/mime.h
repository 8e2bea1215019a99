/*
 * mime.h - the MIME structure of a message body, streamed, for content
 * rules: part headers, body lines (decoded for text parts), attachments.
 *
 * The parser is fed the body (after the header block) in chunks of any
 * size, CRLF line ends, and calls back once per logical part header,
 * once per body line and once per attachment. It never fails: malformed
 * MIME (missing boundaries, bad encodings, absurd nesting) degrades to
 * treating the rest as plain lines, the way a mail reader would show it.
 *
 * Beyond Postfix: text parts (text/plain, text/html, ...) in
 * quoted-printable or base64 are given to body_line decoded (and
 * converted to UTF-8 from their charset), so
 * that encoding a phrase does not hide it from body_checks; header
 * values can be decoded from RFC 2047 encoded words (mime_decode_words).
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_MIME_H
#define POSTERN_MIME_H

#include <stdbool.h>
#include <stddef.h>

enum mime_header_class {
	MIME_HEADER_PART,	/* a MIME part's header (mime_header_checks) */
	MIME_HEADER_NESTED,	/* an attached message's
				   (nested_header_checks) */
};

struct mime_callbacks {
	void	*arg;
	/*
	 * header - one logical header of a part or of an attached message:
	 * physical lines joined with "\n", CR removed, continuation
	 * whitespace kept, no final newline (Postfix's form, libraries.md 6)
	 */
	void	(*header)(void *arg, enum mime_header_class,
		    const char *text, size_t len);
	/*
	 * body_line - one body line without its line end: raw for parts
	 * that are not text or not encoded (and for boundary lines), decoded
	 * (and in UTF-8) for encoded text parts (decoded = true).
	 */
	void	(*body_line)(void *arg, const char *line, size_t len,
		    bool decoded);
	/*
	 * attachment - a part that is an attachment, has a file name, or
	 * is a leaf part that is not text:
	 * filename (RFC 2231/2047 decoded, UTF-8; NULL if none) and
	 * content type ("application/x-msdownload", lower case, never NULL)
	 */
	void	(*attachment)(void *arg, const char *filename,
		    const char *content_type);
};

struct mime_parser;

/*
 * mime_parser_new - a parser for a body whose top-level header block had
 * these Content-Type and Content-Transfer-Encoding values (NULL when
 * absent: text/plain, 7bit). Callbacks are borrowed; max_depth bounds
 * multipart nesting (deeper parts are plain lines).
 */
struct mime_parser *mime_parser_new(const struct mime_callbacks *,
	    const char *content_type, const char *transfer_encoding,
	    unsigned max_depth);
void	mime_parser_feed(struct mime_parser *, const void *data, size_t len);
/* mime_parser_finish - flush the last line and any pending decode */
void	mime_parser_finish(struct mime_parser *);
void	mime_parser_free(struct mime_parser **);

/*
 * mime_decode_words - value with RFC 2047 encoded words decoded to UTF-8
 * (whitespace between adjacent encoded words dropped), owned; NULL when
 * value holds no valid encoded word.
 */
char	*mime_decode_words(const char *value, size_t len);

#endif

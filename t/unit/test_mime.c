/*
 * test_mime.c - table-driven tests of the streaming MIME parser
 * (filters/mime.c) and its decoders (filters/mime_decode.c).
 *
 * Each parser case is a body, the top-level Content-Type and
 * Content-Transfer-Encoding, a nesting limit, and the transcript the
 * callbacks must produce: one line per event, "H:" a part header, "N:"
 * an attached message's header, "B:" a raw body line, "D:" a decoded
 * one, "A:" an attachment (file name;content type). Control characters
 * are shown escaped (\n, \t, \r, \xHH). Every case runs with CRLF and
 * with bare LF line ends, fed whole, one byte at a time and in random
 * chunk sizes: all must give the same transcript.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "mime.h"
#include "mime-private.h"
#include "tap.h"
#include "xmalloc.h"

struct record {
	struct buf	 t;		/* the transcript */
	size_t		 headers, raw, dec, att;
	size_t		 raw_bytes, dec_bytes, max_line, max_header;
};

static void
esc(struct buf *b, const char *s, size_t n)
{
	unsigned char c;
	size_t i;

	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if (c == '\n')
			buf_append_str(b, "\\n");
		else if (c == '\r')
			buf_append_str(b, "\\r");
		else if (c == '\t')
			buf_append_str(b, "\\t");
		else if (c < 0x20 || c == 0x7f)
			buf_printf(b, "\\x%02x", c);
		else
			buf_append(b, &c, 1);
	}
}

static void
rec_header(void *arg, enum mime_header_class cls, const char *text,
    size_t len)
{
	struct record *r = arg;

	r->headers++;
	if (len > r->max_header)
		r->max_header = len;
	if (strlen(text) != len)
		buf_append_str(&r->t, "(header not NUL-terminated)");
	buf_append_str(&r->t, cls == MIME_HEADER_NESTED ? "N:" : "H:");
	esc(&r->t, text, len);
	buf_append_str(&r->t, "\n");
}

static void
rec_body(void *arg, const char *line, size_t len, bool decoded)
{
	struct record *r = arg;

	if (decoded) {
		r->dec++;
		r->dec_bytes += len;
	} else {
		r->raw++;
		r->raw_bytes += len;
	}
	if (len > r->max_line)
		r->max_line = len;
	buf_append_str(&r->t, decoded ? "D:" : "B:");
	esc(&r->t, line, len);
	buf_append_str(&r->t, "\n");
}

static void
rec_attachment(void *arg, const char *filename, const char *type)
{
	struct record *r = arg;

	r->att++;
	buf_printf(&r->t, "A:%s;%s\n", filename ? filename : "(null)", type);
}

/* chunk modes: 0 whole, 1 one byte at a time, 2.. random sizes */
#define MODES	6

static uint32_t
lcg(uint32_t *x)
{
	*x = *x * 1103515245u + 12345u;
	return *x >> 8;
}

/* parse - run the parser over in, in the chunks of mode */
static void
parse(struct record *r, const char *ct, const char *cte, unsigned depth,
    const char *in, size_t len, int mode)
{
	struct mime_callbacks cb = { r, rec_header, rec_body,
	    rec_attachment };
	struct mime_parser *mp;
	uint32_t x = 0x1234u + (uint32_t)mode;
	size_t pos = 0, n;

	memset(r, 0, sizeof(*r));
	buf_init(&r->t, 0);
	mp = mime_parser_new(&cb, ct, cte, depth);
	while (pos < len) {
		if (mode == 0)
			n = len;
		else if (mode == 1)
			n = 1;
		else if (mode == 2)
			n = 1 + lcg(&x) % 3;
		else
			n = 1 + lcg(&x) % (mode == 5 ? 70000 : 97);
		if (n > len - pos)
			n = len - pos;
		mime_parser_feed(mp, in + pos, n);
		pos += n;
	}
	mime_parser_finish(mp);
	mime_parser_free(&mp);
}

/* crlf - the text with every LF made CRLF */
static char *
crlf(const char *s, size_t *len_r)
{
	struct buf b;

	buf_init(&b, 0);
	for (; *s != '\0'; s++) {
		if (*s == '\n')
			buf_append(&b, "\r", 1);
		buf_append(&b, s, 1);
	}
	*len_r = b.len;
	return buf_steal(&b);
}

struct pcase {
	const char	*name;
	const char	*ct;		/* top-level Content-Type */
	const char	*cte;
	unsigned	 depth;
	const char	*in;		/* LF line ends; run as CRLF too */
	const char	*want;
};

#define B64_HELLO "SGVsbG8sIFdvcmxkIQ0KU2Vjb25kIGxpbmUNCg=="

static const struct pcase pcases[] = {
	{ "plain text", NULL, NULL, 10,
	  "hello\nworld\n",
	  "B:hello\nB:world\n" },
	{ "last line without line end", NULL, NULL, 10,
	  "hello\nworld",
	  "B:hello\nB:world\n" },
	{ "empty body", NULL, NULL, 10, "", "" },
	{ "empty lines kept", NULL, NULL, 10,
	  "\n\na\n\n",
	  "B:\nB:\nB:a\nB:\n" },
	{ "bare CR inside a line stays", NULL, NULL, 10,
	  "a\rb\n",
	  "B:a\\rb\n" },
	{ "top-level quoted-printable text", "text/plain; charset=utf-8",
	  "quoted-printable", 10,
	  "caf=C3=A9 =\nsoft\n=3D\n",
	  "D:caf\xc3\xa9 soft\nD:=\n" },
	{ "top-level base64 text", "text/plain", " Base64 (comment)", 10,
	  "SGVsbG8sIFdv\ncmxkIQ0KU2Vjb25kIGxpbmUN\nCg==\n",
	  "D:Hello, World!\nD:Second line\n" },
	{ "top-level base64 non-text stays raw, is an attachment",
	  "application/pdf", "base64", 10,
	  B64_HELLO "\n",
	  "A:(null);application/pdf\nB:" B64_HELLO "\n" },
	{ "top-level attachment name", "application/zip; name=\"x.zip\"",
	  NULL, 10,
	  "PK\n",
	  "A:x.zip;application/zip\nB:PK\n" },
	{ "invalid content type falls back to text/plain",
	  "garbage", "quoted-printable", 10,
	  "a=41\n",
	  "D:aA\n" },
	{ "multipart/mixed", "multipart/mixed; boundary=\"XX\"", NULL, 10,
	  "preamble\n"
	  "--XX\n"
	  "Content-Type: text/plain\n"
	  "\n"
	  "part one\n"
	  "--XX\n"
	  "Content-Type: application/octet-stream; name=\"a.exe\"\n"
	  "Content-Transfer-Encoding: base64\n"
	  "\n"
	  "TVqQAAMAAAAEAAAA\n"
	  "--XX--\n"
	  "epilogue\n",
	  "B:preamble\n"
	  "B:--XX\n"
	  "H:Content-Type: text/plain\n"
	  "B:\n"
	  "B:part one\n"
	  "B:--XX\n"
	  "H:Content-Type: application/octet-stream; name=\"a.exe\"\n"
	  "H:Content-Transfer-Encoding: base64\n"
	  "A:a.exe;application/octet-stream\n"
	  "B:\n"
	  "B:TVqQAAMAAAAEAAAA\n"
	  "B:--XX--\n"
	  "B:epilogue\n" },
	{ "unquoted boundary, case of the type", "Multipart/Mixed; "
	  "BOUNDARY=b1", NULL, 10,
	  "--b1\n\nx\n--b1--\n",
	  "B:--b1\nB:\nB:x\nB:--b1--\n" },
	{ "transport padding after boundaries", "multipart/mixed; "
	  "boundary=XX", NULL, 10,
	  "--XX \t\n"
	  "Content-Type: text/plain; charset=iso-8859-1\n"
	  "Content-Transfer-Encoding: quoted-printable\n"
	  "\n"
	  "=E9\n"
	  "--XX--  \n"
	  "--XX\n",
	  "B:--XX \\t\n"
	  "H:Content-Type: text/plain; charset=iso-8859-1\n"
	  "H:Content-Transfer-Encoding: quoted-printable\n"
	  "B:\n"
	  "D:\xc3\xa9\n"
	  "B:--XX--  \n"
	  "B:--XX\n" },
	{ "boundary inside a line is no boundary", "multipart/mixed; "
	  "boundary=XX", NULL, 10,
	  "--XX\n"
	  "Content-Transfer-Encoding: quoted-printable\n"
	  "\n"
	  "text --XX\n"
	  " --XX\n"
	  "-XX\n"
	  "--XX--\n",
	  "B:--XX\n"
	  "H:Content-Transfer-Encoding: quoted-printable\n"
	  "B:\n"
	  "D:text --XX\n"
	  "D: --XX\n"
	  "D:-XX\n"
	  "B:--XX--\n" },
	{ "boundary with trailing garbage still counts (as Postfix)",
	  "multipart/mixed; boundary=XX", NULL, 10,
	  "--XXjunk\n"
	  "Content-Type: text/plain; name=a.txt\n"
	  "\n"
	  "x\n"
	  "--XX--junk\n"
	  "after\n",
	  "B:--XXjunk\n"
	  "H:Content-Type: text/plain; name=a.txt\n"
	  "A:a.txt;text/plain\n"
	  "B:\n"
	  "B:x\n"
	  "B:--XX--junk\n"
	  "B:after\n" },
	{ "nested multipart, inner boundary extends the outer",
	  "multipart/mixed; boundary=outer", NULL, 10,
	  "--outer\n"
	  "Content-Type: multipart/alternative; boundary=\"outer-alt\"\n"
	  "\n"
	  "--outer-alt\n"
	  "Content-Type: text/plain; charset=utf-8\n"
	  "Content-Transfer-Encoding: base64\n"
	  "\n"
	  "aGk=\n"
	  "--outer-alt\n"
	  "Content-Type: text/html\n"
	  "Content-Transfer-Encoding: quoted-printable\n"
	  "\n"
	  "<p>h=\n"
	  "i</p>\n"
	  "--outer-alt--\n"
	  "--outer\n"
	  "\n"
	  "second\n"
	  "--outer--\n",
	  "B:--outer\n"
	  "H:Content-Type: multipart/alternative; boundary=\"outer-alt\"\n"
	  "B:\n"
	  "B:--outer-alt\n"
	  "H:Content-Type: text/plain; charset=utf-8\n"
	  "H:Content-Transfer-Encoding: base64\n"
	  "B:\n"
	  "D:hi\n"
	  "B:--outer-alt\n"
	  "H:Content-Type: text/html\n"
	  "H:Content-Transfer-Encoding: quoted-printable\n"
	  "B:\n"
	  "D:<p>hi</p>\n"
	  "B:--outer-alt--\n"
	  "B:--outer\n"
	  "B:\n"
	  "B:second\n"
	  "B:--outer--\n" },
	{ "inner boundary is a prefix of the outer",
	  "multipart/mixed; boundary=abc-1", NULL, 10,
	  "--abc-1\n"
	  "Content-Type: multipart/mixed; boundary=abc\n"
	  "\n"
	  "--abc\n"
	  "\n"
	  "in\n"
	  "--abc-1\n"
	  "\n"
	  "out\n"
	  "--abc\n"
	  "--abc-1--\n",
	  "B:--abc-1\n"
	  "H:Content-Type: multipart/mixed; boundary=abc\n"
	  "B:\n"
	  "B:--abc\n"
	  "B:\n"
	  "B:in\n"
	  "B:--abc-1\n"
	  "B:\n"
	  "B:out\n"
	  "B:--abc\n"
	  "B:--abc-1--\n" },
	{ "outer boundary closes inner parts (missing inner close)",
	  "multipart/mixed; boundary=o", NULL, 10,
	  "--o\n"
	  "Content-Type: multipart/mixed; boundary=i\n"
	  "\n"
	  "--i\n"
	  "Content-Transfer-Encoding: base64\n"
	  "\n"
	  "YWJj\n"
	  "--o\n"
	  "\n"
	  "--i\n"
	  "--o--\n",
	  "B:--o\n"
	  "H:Content-Type: multipart/mixed; boundary=i\n"
	  "B:\n"
	  "B:--i\n"
	  "H:Content-Transfer-Encoding: base64\n"
	  "B:\n"
	  "D:abc\n"
	  "B:--o\n"
	  "B:\n"
	  "B:--i\n"
	  "B:--o--\n" },
	{ "missing closing boundary: last part flushed",
	  "multipart/mixed; boundary=XX", NULL, 10,
	  "--XX\n"
	  "Content-Type: text/plain; charset=\"iso-8859-1\"\n"
	  "Content-Transfer-Encoding: base64\n"
	  "\n"
	  "R3L832UgYXVzIEv2bG4NCnp3ZWl0ZSBaZWlsZQ==\n",
	  "B:--XX\n"
	  "H:Content-Type: text/plain; charset=\"iso-8859-1\"\n"
	  "H:Content-Transfer-Encoding: base64\n"
	  "B:\n"
	  "D:Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln\n"
	  "D:zweite Zeile\n" },
	{ "part header block cut off by the end",
	  "multipart/mixed; boundary=XX", NULL, 10,
	  "--XX\n"
	  "Content-Disposition: attachment\n"
	  " ; filename=\"cut.bin\"",
	  "B:--XX\n"
	  "H:Content-Disposition: attachment\\n ; filename=\"cut.bin\"\n"
	  "A:cut.bin;text/plain\n" },
	{ "boundary ends a part's header block",
	  "multipart/mixed; boundary=XX", NULL, 10,
	  "--XX\n"
	  "Content-Type: image/png; name=p.png\n"
	  "--XX--\n",
	  "B:--XX\n"
	  "H:Content-Type: image/png; name=p.png\n"
	  "A:p.png;image/png\n"
	  "B:--XX--\n" },
	{ "header block ended by a line that is no header",
	  "multipart/mixed; boundary=XX", NULL, 10,
	  "--XX\n"
	  "Subject: folded\n"
	  "\tcontinued\n"
	  "this is body\n"
	  "--XX--\n",
	  "B:--XX\n"
	  "H:Subject: folded\\n\\tcontinued\n"
	  "B:this is body\n"
	  "B:--XX--\n" },
	{ "header name with space before the colon",
	  "multipart/mixed; boundary=XX", NULL, 10,
	  "--XX\n"
	  "Content-Type : text/plain; name=n.txt\n"
	  "\n"
	  "--XX--\n",
	  "B:--XX\n"
	  "H:Content-Type : text/plain; name=n.txt\n"
	  "A:n.txt;text/plain\n"
	  "B:\n"
	  "B:--XX--\n" },
	{ "first Content-Type counts",
	  "multipart/mixed; boundary=XX", NULL, 10,
	  "--XX\n"
	  "Content-Type: image/gif\n"
	  "Content-Type: text/plain; name=second.txt\n"
	  "Content-Disposition: attachment\n"
	  "\n"
	  "--XX--\n",
	  "B:--XX\n"
	  "H:Content-Type: image/gif\n"
	  "H:Content-Type: text/plain; name=second.txt\n"
	  "H:Content-Disposition: attachment\n"
	  "A:(null);image/gif\n"
	  "B:\n"
	  "B:--XX--\n" },
	{ "attached message with nested multipart",
	  "multipart/mixed; boundary=XX", NULL, 10,
	  "--XX\n"
	  "Content-Type: message/rfc822\n"
	  "\n"
	  "From: a@example.org\n"
	  "Subject: =?utf-8?q?hi?=\n"
	  "Content-Type: multipart/mixed; boundary=in\n"
	  "\n"
	  "--in\n"
	  "Content-Type: text/plain; charset=utf-8\n"
	  "Content-Transfer-Encoding: base64\n"
	  "\n"
	  "aGVsbG8=\n"
	  "--in\n"
	  "Content-Disposition: attachment; "
	  "filename*=utf-8''%E2%82%AC.txt\n"
	  "\n"
	  "x\n"
	  "--in--\n"
	  "--XX--\n",
	  "B:--XX\n"
	  "H:Content-Type: message/rfc822\n"
	  "B:\n"
	  "N:From: a@example.org\n"
	  "N:Subject: =?utf-8?q?hi?=\n"
	  "N:Content-Type: multipart/mixed; boundary=in\n"
	  "B:\n"
	  "B:--in\n"
	  "H:Content-Type: text/plain; charset=utf-8\n"
	  "H:Content-Transfer-Encoding: base64\n"
	  "B:\n"
	  "D:hello\n"
	  "B:--in\n"
	  "H:Content-Disposition: attachment; "
	  "filename*=utf-8''%E2%82%AC.txt\n"
	  "A:\xe2\x82\xac.txt;text/plain\n"
	  "B:\n"
	  "B:x\n"
	  "B:--in--\n"
	  "B:--XX--\n" },
	{ "attached message ends with its enclosing part",
	  "multipart/mixed; boundary=XX", NULL, 10,
	  "--XX\n"
	  "Content-Type: message/rfc822; name=fwd.eml\n"
	  "Content-Disposition: attachment\n"
	  "\n"
	  "Subject: inner\n"
	  "\n"
	  "inner body\n"
	  "--XX\n"
	  "\n"
	  "outer again\n"
	  "--XX--\n",
	  "B:--XX\n"
	  "H:Content-Type: message/rfc822; name=fwd.eml\n"
	  "H:Content-Disposition: attachment\n"
	  "A:fwd.eml;message/rfc822\n"
	  "B:\n"
	  "N:Subject: inner\n"
	  "B:\n"
	  "B:inner body\n"
	  "B:--XX\n"
	  "B:\n"
	  "B:outer again\n"
	  "B:--XX--\n" },
	{ "base64 message/rfc822 is opaque",
	  "multipart/mixed; boundary=XX", NULL, 10,
	  "--XX\n"
	  "Content-Type: message/rfc822\n"
	  "Content-Transfer-Encoding: base64\n"
	  "\n"
	  "U3ViamVjdDogeA==\n"
	  "--XX--\n",
	  "B:--XX\n"
	  "H:Content-Type: message/rfc822\n"
	  "H:Content-Transfer-Encoding: base64\n"
	  "B:\n"
	  "B:U3ViamVjdDogeA==\n"
	  "B:--XX--\n" },
	{ "top-level message/rfc822", "message/rfc822", NULL, 10,
	  "Subject: top\n"
	  "Content-Type: text/plain; charset=utf-8\n"
	  "Content-Transfer-Encoding: quoted-printable\n"
	  "\n"
	  "=E2=82=AC\n",
	  "N:Subject: top\n"
	  "N:Content-Type: text/plain; charset=utf-8\n"
	  "N:Content-Transfer-Encoding: quoted-printable\n"
	  "B:\n"
	  "D:\xe2\x82\xac\n" },
	{ "multipart/digest parts are messages",
	  "multipart/digest; boundary=d", NULL, 10,
	  "--d\n"
	  "\n"
	  "From: x@example.org\n"
	  "Subject: one\n"
	  "\n"
	  "body one\n"
	  "--d\n"
	  "Content-Type: text/plain\n"
	  "\n"
	  "not a message\n"
	  "--d--\n",
	  "B:--d\n"
	  "B:\n"
	  "N:From: x@example.org\n"
	  "N:Subject: one\n"
	  "B:\n"
	  "B:body one\n"
	  "B:--d\n"
	  "H:Content-Type: text/plain\n"
	  "B:\n"
	  "B:not a message\n"
	  "B:--d--\n" },
	{ "digest part with Content-Disposition: default type",
	  "multipart/digest; boundary=d", NULL, 10,
	  "--d\n"
	  "Content-Disposition: attachment\n"
	  "\n"
	  "Subject: s\n"
	  "\n"
	  "--d--\n",
	  "B:--d\n"
	  "H:Content-Disposition: attachment\n"
	  "A:(null);message/rfc822\n"
	  "B:\n"
	  "N:Subject: s\n"
	  "B:\n"
	  "B:--d--\n" },
	{ "nesting beyond max_depth is plain lines",
	  "multipart/mixed; boundary=l1", NULL, 2,
	  "--l1\n"
	  "Content-Type: multipart/mixed; boundary=l2\n"
	  "\n"
	  "--l2\n"
	  "Content-Type: multipart/mixed; boundary=l3\n"
	  "\n"
	  "--l3\n"
	  "Content-Type: text/plain\n"
	  "Content-Transfer-Encoding: base64\n"
	  "\n"
	  "aGk=\n"
	  "--l3--\n"
	  "--l2--\n"
	  "--l1--\n",
	  "B:--l1\n"
	  "H:Content-Type: multipart/mixed; boundary=l2\n"
	  "B:\n"
	  "B:--l2\n"
	  "H:Content-Type: multipart/mixed; boundary=l3\n"
	  "B:\n"
	  "B:--l3\n"
	  "B:Content-Type: text/plain\n"
	  "B:Content-Transfer-Encoding: base64\n"
	  "B:\n"
	  "B:aGk=\n"
	  "B:--l3--\n"
	  "B:--l2--\n"
	  "B:--l1--\n" },
	{ "max_depth 0: no structure at all",
	  "multipart/mixed; boundary=l1", NULL, 0,
	  "--l1\n"
	  "Content-Type: text/plain\n"
	  "\n"
	  "--l1--\n",
	  "B:--l1\n"
	  "B:Content-Type: text/plain\n"
	  "B:\n"
	  "B:--l1--\n" },
	{ "attached messages count toward max_depth",
	  "message/rfc822", NULL, 1,
	  "Content-Type: message/rfc822\n"
	  "\n"
	  "Subject: deeper\n",
	  "N:Content-Type: message/rfc822\n"
	  "B:\n"
	  "B:Subject: deeper\n" },
	{ "multipart without boundary is plain",
	  "multipart/mixed", NULL, 10,
	  "--\n--x\n",
	  "B:--\nB:--x\n" },
	{ "quoted-printable soft breaks, padding, malformed =",
	  "text/plain; charset=iso-8859-1", "quoted-printable", 10,
	  "Caf=E9 cr=\n"
	  "=E8me  \n"
	  "line=20two=\n"
	  " end\n"
	  "bad =ZZ =4\n"
	  "tab\t=\t\n"
	  "x\n"
	  "trunc=",
	  "D:Caf\xc3\xa9 cr\xc3\xa8me\n"
	  "D:line two end\n"
	  "D:bad =ZZ =4\n"
	  "D:tab\\tx\n"
	  "D:trunc\n" },
	{ "quoted-printable truncated escape at the end",
	  "text/plain", "quoted-printable", 10,
	  "abc=4",
	  "D:abc=4\n" },
	{ "quoted-printable =0A makes two lines", "text/plain",
	  "quoted-printable", 10,
	  "one=0D=0Atwo\n",
	  "D:one\nD:two\n" },
	{ "invalid base64 characters are skipped", "text/plain",
	  "base64", 10,
	  "SGVs*bG8=\n"
	  "!!!!\n"
	  "IHdv\n"
	  "cmxk\n",
	  "D:Hello world\n" },
	{ "base64 without padding, glued encodings", "text/plain",
	  "base64", 10,
	  "SGk=SGk\n",
	  "D:HiHi\n" },
	{ "unknown charset passes bytes", "text/plain; charset=x-nonesuch",
	  "quoted-printable", 10,
	  "=E9\n",
	  "D:\xe9\n" },
	{ "windows-1252", "text/plain; charset=windows-1252",
	  "quoted-printable", 10,
	  "=80 =93q=94\n",
	  "D:\xe2\x82\xac \xe2\x80\x9cq\xe2\x80\x9d\n" },
	{ "invalid sequence becomes U+FFFD", "text/plain; charset=euc-jp",
	  "quoted-printable", 10,
	  "a=A4\n=A4=A2\n",
	  "D:a\xef\xbf\xbd\nD:\xe3\x81\x82\n" },
	{ "charset name with options is not given to iconv",
	  "text/plain; charset=\"utf-8//IGNORE\"", "quoted-printable", 10,
	  "=FF\n",
	  "D:\xff\n" },
	{ "utf-8 passes through unchanged", "text/plain; charset=UTF-8",
	  "quoted-printable", 10,
	  "=FF=C3=A9\n",
	  "D:\xff\xc3\xa9\n" },
	{ "RFC 2231 continuations, comments, escapes in file names",
	  "multipart/mixed; boundary=XX", NULL, 10,
	  "--XX\n"
	  "Content-Type: application/x-msdownload\n"
	  "Content-Disposition: attachment;\n"
	  " filename*0*=utf-8''%E2%82;\n"
	  " filename*1*=%AC;\n"
	  " filename*2=\".exe\"\n"
	  "\n"
	  "--XX\n"
	  "Content-Type: Application/X-Thing (comment (nested)); "
	  "name = \"a\\\"b.txt\" (c)\n"
	  "\n"
	  "--XX\n"
	  "Content-Type: application/x-msdownload; "
	  "name=\"=?utf-8?B?w6lsw6h2ZS5leGU=?=\"\n"
	  "\n"
	  "--XX\n"
	  "Content-Disposition: inline; filename=pic.jpg\n"
	  "Content-Type: image/jpeg\n"
	  "\n"
	  "--XX\n"
	  "Content-Disposition: inline\n"
	  "\n"
	  "--XX\n"
	  "Content-Disposition: inline; filename=\"\"\n"
	  "\n"
	  "--XX--\n",
	  "B:--XX\n"
	  "H:Content-Type: application/x-msdownload\n"
	  "H:Content-Disposition: attachment;\\n filename*0*=utf-8''%E2%82;"
	  "\\n filename*1*=%AC;\\n filename*2=\".exe\"\n"
	  "A:\xe2\x82\xac.exe;application/x-msdownload\n"
	  "B:\n"
	  "B:--XX\n"
	  "H:Content-Type: Application/X-Thing (comment (nested)); "
	  "name = \"a\\\"b.txt\" (c)\n"
	  "A:a\"b.txt;application/x-thing\n"
	  "B:\n"
	  "B:--XX\n"
	  "H:Content-Type: application/x-msdownload; "
	  "name=\"=?utf-8?B?w6lsw6h2ZS5leGU=?=\"\n"
	  "A:\xc3\xa9l\xc3\xa8ve.exe;application/x-msdownload\n"
	  "B:\n"
	  "B:--XX\n"
	  "H:Content-Disposition: inline; filename=pic.jpg\n"
	  "H:Content-Type: image/jpeg\n"
	  "A:pic.jpg;image/jpeg\n"
	  "B:\n"
	  "B:--XX\n"
	  "H:Content-Disposition: inline\n"
	  "B:\n"
	  "B:--XX\n"
	  "H:Content-Disposition: inline; filename=\"\"\n"
	  "B:\n"
	  "B:--XX--\n" },
};

static void
test_parser(void)
{
	const struct pcase *c;
	struct record r;
	char *in;
	size_t i, len;
	int mode, form;

	for (i = 0; i < sizeof(pcases) / sizeof(pcases[0]); i++) {
		c = &pcases[i];
		for (form = 0; form < 2; form++) {
			if (form == 0)
				in = crlf(c->in, &len);
			else {
				in = xstrdup(c->in);
				len = strlen(in);
			}
			for (mode = 0; mode < MODES; mode++) {
				parse(&r, c->ct, c->cte, c->depth, in, len,
				    mode);
				is_str(buf_cstr(&r.t), c->want,
				    "%s (%s, chunks %d)", c->name,
				    form == 0 ? "CRLF" : "LF", mode);
				buf_deinit(&r.t);
			}
			free(in);
		}
	}
}

/* a 1 MB line: given in pieces of at most 64 KB, nothing lost */
static void
test_long_lines(void)
{
	struct record r;
	struct buf in;
	size_t i, n = 1024 * 1024;
	int mode;

	buf_init(&in, 0);
	for (i = 0; i < n; i++)
		buf_append(&in, "a", 1);
	buf_append_str(&in, "\r\nend\r\n");
	for (mode = 0; mode < MODES; mode++) {
		parse(&r, NULL, NULL, 10, in.data, in.len, mode);
		is_int(r.raw_bytes, n + 3, "1 MB line: every byte (chunks %d)",
		    mode);
		is_int(r.raw, 16 + 1, "1 MB line: 16 pieces + 1 line "
		    "(chunks %d)", mode);
		is_int(r.max_line, 65536, "1 MB line: pieces of 64 KB "
		    "(chunks %d)", mode);
		buf_deinit(&r.t);
	}
	buf_deinit(&in);

	/* a line that fills the buffer, then its CR LF, and one past it */
	for (mode = 0; mode < MODES; mode++) {
		for (n = 65535; n <= 65537; n++) {
			buf_init(&in, 0);
			for (i = 0; i < n; i++)
				buf_append(&in, "b", 1);
			buf_append_str(&in, "\r\nnext\r\n");
			parse(&r, NULL, NULL, 10, in.data, in.len, mode);
			is_int(r.raw, n <= 65536 ? 2 : 3, "%zu byte line: "
			    "lines (chunks %d)", n, mode);
			is_int(r.raw_bytes, n + 4, "%zu byte line: bytes "
			    "(chunks %d)", n, mode);
			buf_deinit(&r.t);
			buf_deinit(&in);
		}
	}

	/* the rest of a long boundary line is body, not header */
	buf_init(&in, 0);
	buf_append_str(&in, "--b");
	for (i = 0; i < 100000; i++)
		buf_append(&in, "x", 1);
	buf_append_str(&in, "\r\nContent-Type: text/plain; name=a.txt\r\n"
	    "\r\nq\r\n");
	for (mode = 0; mode < MODES; mode++) {
		parse(&r, "multipart/mixed; boundary=b", NULL, 10, in.data,
		    in.len, mode);
		is_int(r.raw, 4, "long boundary line: raw lines (chunks %d)",
		    mode);
		is_int(r.raw_bytes, 100003 + 1, "long boundary line: bytes "
		    "(chunks %d)", mode);
		is_int(r.headers, 1, "long boundary line: then a header "
		    "(chunks %d)", mode);
		is_int(r.att, 1, "long boundary line: attachment (chunks %d)",
		    mode);
		buf_deinit(&r.t);
	}
	buf_deinit(&in);

	/* a 200 KB part header is cut at the limit */
	buf_init(&in, 0);
	buf_append_str(&in, "--b\r\nX-Long: ");
	for (i = 0; i < 200 * 1024; i++)
		buf_append(&in, "h", 1);
	buf_append_str(&in, "\r\nContent-Type: image/png; name=x.png\r\n"
	    "\r\nbody\r\n--b--\r\n");
	for (mode = 0; mode < MODES; mode++) {
		parse(&r, "multipart/mixed; boundary=b", NULL, 10, in.data,
		    in.len, mode);
		is_int(r.max_header, 102400, "200 KB header cut to 100 KB "
		    "(chunks %d)", mode);
		is_int(r.headers, 2, "long header, then the next header "
		    "(chunks %d)", mode);
		is_int(r.att, 1, "long header: attachment found (chunks %d)",
		    mode);
		is_int(r.raw, 4, "long header: body lines (chunks %d)", mode);
		buf_deinit(&r.t);
	}
	buf_deinit(&in);
}

/* decoding stops after 1 MB per part; the rest is given raw */
static void
test_decode_cap(void)
{
	struct record r;
	struct buf in;
	size_t i, j;
	int mode;

	buf_init(&in, 0);
	buf_append_str(&in, "--b\r\nContent-Type: text/plain\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
	for (i = 0; i < 2000; i++) {
		for (j = 0; j < 999; j++)
			buf_append(&in, "q", 1);
		buf_append_str(&in, "\r\n");
	}
	buf_append_str(&in, "--b\r\nContent-Type: text/plain\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\naGk=\r\n--b--\r\n");
	for (mode = 0; mode < MODES; mode += 2) {
		parse(&r, "multipart/mixed; boundary=b", NULL, 10, in.data,
		    in.len, mode);
		ok(r.dec_bytes <= 1024 * 1024 && r.dec_bytes > 1000 * 1000,
		    "decoded bytes capped near 1 MB (chunks %d)", mode);
		if (r.dec_bytes > 1024 * 1024)
			printf("#   got %zu\n", r.dec_bytes);
		/* 1049 decoded lines of 999 + 1 pass 1 MB; then raw */
		is_int(r.dec, 1049 + 1, "decoded lines, the next part too "
		    "(chunks %d)", mode);
		is_int(r.raw, 2000 - 1049 + 5, "raw lines after the cap "
		    "(chunks %d)", mode);
		buf_deinit(&r.t);
	}
	buf_deinit(&in);
}

struct wcase {
	const char *name;
	const char *in;
	const char *want;	/* NULL: nothing decoded */
};

static const struct wcase wcases[] = {
	{ "no encoded word", "plain subject", NULL },
	{ "Q", "=?utf-8?q?caf=C3=A9?=", "caf\xc3\xa9" },
	{ "Q underscore, adjacent words joined", "=?ISO-8859-1?Q?a_b?= "
	  "=?ISO-8859-1?Q?c?=", "a bc" },
	{ "B amid text", "x =?utf-8?b?w6k=?= y", "x \xc3\xa9 y" },
	{ "B without padding", "=?UTF-8?B?w6k?=", "\xc3\xa9" },
	{ "B with a bad character is left", "=?utf-8?b?w6k*?=", NULL },
	{ "B with text after padding is left", "=?utf-8?b?w6k=w?=", NULL },
	{ "unknown encoding is left", "=?utf-8?x?abc?=", NULL },
	{ "space inside a word is left", "=?utf-8?q?a b?=", NULL },
	{ "empty charset is left", "=?" "?q?a?=", NULL },
	{ "unterminated word is left", "=?utf-8?q?abc", NULL },
	{ "malformed next to good", "=?utf-8?q?a b?= =?utf-8?q?ok?=",
	  "=?utf-8?q?a b?= ok" },
	{ "character split across words", "=?utf-8?b?ww==?= "
	  "=?utf-8?b?qQ==?=", "\xc3\xa9" },
	{ "different charsets", "=?iso-8859-1?q?=E9?= =?utf-8?q?=C3=A9?=",
	  "\xc3\xa9\xc3\xa9" },
	{ "unknown charset passes bytes", "=?x-foo?q?a=41?=", "aA" },
	{ "RFC 2231 language", "=?utf-8*en?q?hi?=", "hi" },
	{ "word glued to text", "=?utf-8?q?a?=b", "ab" },
	{ "folded between words", "=?utf-8?q?a?=\n =?utf-8?q?b?=", "ab" },
	{ "text between words kept", "=?utf-8?q?a?= - =?utf-8?q?b?=",
	  "a - b" },
	{ "NUL dropped", "Re: =?utf-8?q?=00x?=", "Re: x" },
	{ "incomplete sequence", "=?euc-jp?q?=A4?=", "\xef\xbf\xbd" },
	{ "Q malformed = kept", "=?utf-8?q?a=zz?=", "a=zz" },
	{ "empty text", "=?utf-8?q?" "?=", "" },
	{ "koi8-r", "=?koi8-r?b?8NLJ18XU?=",
	  "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82" },
};

static void
test_words(void)
{
	const struct wcase *c;
	char *got;
	size_t i;

	for (i = 0; i < sizeof(wcases) / sizeof(wcases[0]); i++) {
		c = &wcases[i];
		got = mime_decode_words(c->in, strlen(c->in));
		is_str(got, c->want, "decode_words: %s", c->name);
		free(got);
	}
}

struct prcase {
	const char *value;
	const char *param;
	const char *want;
};

static const struct prcase prcases[] = {
	{ "text/plain; charset=us-ascii (Plain text)", "charset",
	  "us-ascii" },
	{ "text/plain; CHARSET=\"UTF-8\"", "charset", "UTF-8" },
	{ "attachment; filename=my file.exe", "filename", "my file.exe" },
	{ "attachment; filename=a(1).exe", "filename", "a(1).exe" },
	{ "attachment; filename=\"a\\\"b\"", "filename", "a\"b" },
	{ "attachment; filename*=iso-8859-1'en'%E9t%E9.txt", "filename",
	  "\xc3\xa9t\xc3\xa9.txt" },
	{ "x; filename*1=\"b.txt\"; filename*0=\"a\"", "filename",
	  "ab.txt" },
	{ "x; name*0=a; name*2=c", "name", "a" },
	{ "x; name*00=a", "name", NULL },
	{ "x; filename=plain.txt; filename*=utf-8''ext.exe", "filename",
	  "ext.exe" },
	{ "x; filename*=utf-8''a.txt%00.exe", "filename", "a.txt.exe" },
	{ "x; filename*=noquotes%41", "filename", "noquotesA" },
	{ "x; filename=first; filename=second", "filename", "first" },
	{ "x; other=1", "filename", NULL },
	{ "x; filenamex=1", "filename", NULL },
	{ "multipart/mixed (c; d); boundary=\"b\"", "boundary", "b" },
	{ "x; a=\"1;2\"; b=3", "b", "3" },
	{ "x; a=\"1;2\"; b=3", "a", "1;2" },
	{ "x; a=\"unterminated", "a", "unterminated" },
	{ "x;;; garbage here; a=1", "a", "1" },
	{ "x; a", "a", NULL },
	{ "x; a=", "a", "" },
};

struct tcase {
	const char *value;
	bool	 slash;
	const char *want;
};

static const struct tcase tcases[] = {
	{ "Text/Plain ; x", true, "text/plain" },
	{ " text / html", true, "text/html" },
	{ "(c) text/(c)plain", true, "text/plain" },
	{ "text", true, NULL },
	{ "text/", true, NULL },
	{ "", true, NULL },
	{ "(c) BASE64 ", false, "base64" },
	{ "attachment; filename=x", false, "attachment" },
	{ ";", false, NULL },
};

static void
test_params(void)
{
	char *got;
	size_t i;

	for (i = 0; i < sizeof(prcases) / sizeof(prcases[0]); i++) {
		got = mime_param_get(prcases[i].value,
		    strlen(prcases[i].value), prcases[i].param);
		is_str(got, prcases[i].want, "param %s in %s",
		    prcases[i].param, prcases[i].value);
		free(got);
	}
	for (i = 0; i < sizeof(tcases) / sizeof(tcases[0]); i++) {
		got = mime_value_type(tcases[i].value,
		    strlen(tcases[i].value), tcases[i].slash);
		is_str(got, tcases[i].want, "value type of \"%s\"",
		    tcases[i].value);
		free(got);
	}
}

/* callbacks may be left NULL; feeding after finish does nothing */
static void
test_null_callbacks(void)
{
	struct mime_callbacks cb = { NULL, NULL, NULL, NULL };
	struct record r;
	struct mime_callbacks rcb = { &r, rec_header, rec_body,
	    rec_attachment };
	struct mime_parser *mp;
	const char *m = "--b\r\nContent-Type: text/plain; name=a\r\n\r\n"
	    "x\r\n--b--\r\n";

	mp = mime_parser_new(&cb, "multipart/mixed; boundary=b", NULL, 5);
	mime_parser_feed(mp, m, strlen(m));
	mime_parser_finish(mp);
	mime_parser_free(&mp);
	mime_parser_free(&mp);
	ok(mp == NULL, "NULL callbacks, double free of NULL");

	memset(&r, 0, sizeof(r));
	buf_init(&r.t, 0);
	mp = mime_parser_new(&rcb, NULL, NULL, 5);
	mime_parser_feed(mp, "a\r\n", 3);
	mime_parser_finish(mp);
	mime_parser_feed(mp, "b\r\n", 3);
	mime_parser_finish(mp);
	mime_parser_free(&mp);
	is_str(buf_cstr(&r.t), "B:a\n", "nothing after finish");
	buf_deinit(&r.t);
}

int
main(void)
{
	test_parser();
	test_long_lines();
	test_decode_cap();
	test_words();
	test_params();
	test_null_callbacks();
	return done_testing();
}

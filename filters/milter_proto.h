/*
 * milter_proto.h - the MTA side of the milter protocol, version 6: packet
 * builders for every command we send, a streaming parser for every reply
 * a milter sends, the option negotiation decision and the mapping of
 * milter modifications to our filter edits (filters/filter.h).
 *
 * Pure: no I/O, no timers, no sockets. The milter filter (the chain
 * member that talks to external milters) owns connections, timeouts and
 * the per-stage state machine; this module only turns bytes into structs
 * and back. The wire format is described in doc/ and in Todd Vierling's
 * milter-protocol.txt; the numeric values are those of libmilter's
 * mfdef.h/mfapi.h (we define our own names so that nothing of libmilter
 * is pulled into the daemon).
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_MILTER_PROTO_H
#define POSTERN_MILTER_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "filter.h"

#define MILTER_VERSION		6	/* the protocol version we speak */
#define MILTER_LEN_BYTES	4	/* the length field of a packet */
#define MILTER_CHUNK_SIZE	65535	/* largest BODY chunk we send */
#define MILTER_MAX_PACKET	(1024 * 1024)	/* default reply limit */
#define MILTER_READ_SLACK	65536	/* largest single milter_reader_feed */

/* commands, MTA -> milter (SMFIC_*) */
#define MILTER_CMD_ABORT	'A'
#define MILTER_CMD_BODY		'B'
#define MILTER_CMD_CONNECT	'C'
#define MILTER_CMD_MACRO	'D'
#define MILTER_CMD_BODYEOB	'E'
#define MILTER_CMD_HELO		'H'
#define MILTER_CMD_QUIT_NC	'K'
#define MILTER_CMD_HEADER	'L'
#define MILTER_CMD_MAIL		'M'
#define MILTER_CMD_EOH		'N'
#define MILTER_CMD_OPTNEG	'O'
#define MILTER_CMD_QUIT		'Q'
#define MILTER_CMD_RCPT		'R'
#define MILTER_CMD_DATA		'T'
#define MILTER_CMD_UNKNOWN	'U'

/* replies, milter -> MTA (SMFIR_*) */
#define MILTER_REPLY_OPTNEG	'O'
#define MILTER_REPLY_ADDRCPT	'+'
#define MILTER_REPLY_DELRCPT	'-'
#define MILTER_REPLY_ADDRCPT_PAR '2'
#define MILTER_REPLY_SHUTDOWN	'4'
#define MILTER_REPLY_ACCEPT	'a'
#define MILTER_REPLY_REPLBODY	'b'
#define MILTER_REPLY_CONTINUE	'c'
#define MILTER_REPLY_DISCARD	'd'
#define MILTER_REPLY_CHGFROM	'e'
#define MILTER_REPLY_CONN_FAIL	'f'
#define MILTER_REPLY_ADDHEADER	'h'
#define MILTER_REPLY_INSHEADER	'i'
#define MILTER_REPLY_CHGHEADER	'm'
#define MILTER_REPLY_PROGRESS	'p'
#define MILTER_REPLY_QUARANTINE	'q'
#define MILTER_REPLY_REJECT	'r'
#define MILTER_REPLY_SKIP	's'
#define MILTER_REPLY_TEMPFAIL	't'
#define MILTER_REPLY_REPLYCODE	'y'

/* actions a milter may take (SMFIF_*) */
#define MILTER_ACT_ADDHDRS	0x001u
#define MILTER_ACT_CHGBODY	0x002u
#define MILTER_ACT_ADDRCPT	0x004u
#define MILTER_ACT_DELRCPT	0x008u
#define MILTER_ACT_CHGHDRS	0x010u
#define MILTER_ACT_QUARANTINE	0x020u
#define MILTER_ACT_CHGFROM	0x040u
#define MILTER_ACT_ADDRCPT_PAR	0x080u
#define MILTER_ACT_SETSYMLIST	0x100u
#define MILTER_ACT_ALL		0x1ffu

/* protocol steps (SMFIP_*) */
#define MILTER_P_NOCONNECT	0x000001u
#define MILTER_P_NOHELO		0x000002u
#define MILTER_P_NOMAIL		0x000004u
#define MILTER_P_NORCPT		0x000008u
#define MILTER_P_NOBODY		0x000010u
#define MILTER_P_NOHDRS		0x000020u
#define MILTER_P_NOEOH		0x000040u
#define MILTER_P_NR_HDR		0x000080u
#define MILTER_P_NOUNKNOWN	0x000100u
#define MILTER_P_NODATA		0x000200u
#define MILTER_P_SKIP		0x000400u
#define MILTER_P_RCPT_REJ	0x000800u
#define MILTER_P_NR_CONN	0x001000u
#define MILTER_P_NR_HELO	0x002000u
#define MILTER_P_NR_MAIL	0x004000u
#define MILTER_P_NR_RCPT	0x008000u
#define MILTER_P_NR_DATA	0x010000u
#define MILTER_P_NR_UNKN	0x020000u
#define MILTER_P_NR_EOH		0x040000u
#define MILTER_P_NR_BODY	0x080000u
#define MILTER_P_HDR_LEADSPC	0x100000u
#define MILTER_P_ALL		0x1fffffu	/* SMFI_CURR_PROT */
#define MILTER_P_INTERNAL	0x70000000u	/* libmilter's own bits */

/* the stages a milter may ask macros for (SMFIM_*) */
enum milter_macro_stage {
	MILTER_MACROS_CONNECT,
	MILTER_MACROS_HELO,
	MILTER_MACROS_MAIL,
	MILTER_MACROS_RCPT,
	MILTER_MACROS_DATA,
	MILTER_MACROS_EOM,
	MILTER_MACROS_EOH,
	MILTER_MACROS_COUNT
};

/* one macro to send: name without braces ("j", "auth_type") */
struct milter_macro {
	const char *name;
	const char *value;	/* NULL: not defined, not sent */
};

/*
 * Packet builders. Each appends one whole packet (length, command, data)
 * to out and returns 0, or -1 with *error_r (static text) when the
 * arguments cannot be sent (a chunk too large) or when out's cap would be
 * passed; out is then unchanged.
 */

/* milter_pkt_optneg - 'O': our version, offered actions and protocol */
int	milter_pkt_optneg(struct buf *out, uint32_t version, uint32_t actions,
	    uint32_t protocol, const char **error_r);
/*
 * milter_pkt_macros - 'D' for the command cmd (e.g. MILTER_CMD_MAIL):
 * name\0value\0 for each defined macro; multi-character names are sent
 * in braces ("{auth_type}"), one-character names bare ("i"). With only
 * wanted != NULL (a setsymlist list, space separated, braces optional),
 * only the macros it names are sent. Appends nothing when no macro is to
 * be sent.
 */
int	milter_pkt_macros(struct buf *out, char cmd,
	    const struct milter_macro *macros, size_t n, const char *wanted,
	    const char **error_r);
/*
 * milter_pkt_connect - 'C': the client's name, family ('4', '6', 'L' or
 * 'U'), port (host order) and address; 'U' sends neither port nor
 * address
 */
int	milter_pkt_connect(struct buf *out, const char *hostname, char family,
	    uint16_t port, const char *addr, const char **error_r);
/* milter_pkt_helo - 'H' */
int	milter_pkt_helo(struct buf *out, const char *helo,
	    const char **error_r);
/*
 * milter_pkt_envelope - 'M' or 'R': the address in angle brackets ("<>"
 * for the null sender; brackets already there are kept) then each ESMTP
 * argument ("SIZE=100") as its own string
 */
int	milter_pkt_envelope(struct buf *out, char cmd, const char *addr,
	    const char *const *args, size_t nargs, const char **error_r);
/*
 * milter_pkt_header - 'L': name\0value\0. raw_value is everything after
 * the colon, without the final line end; folding (CRLF or LF) is sent as
 * "\n" (what Sendmail sends). Without HDR_LEADSPC one leading space is
 * dropped, with it the value goes as it is.
 */
int	milter_pkt_header(struct buf *out, const char *name,
	    const char *raw_value, bool leadspc, const char **error_r);
/* milter_pkt_body - 'B': one chunk of at most MILTER_CHUNK_SIZE bytes */
int	milter_pkt_body(struct buf *out, const void *chunk, size_t len,
	    const char **error_r);
/* milter_pkt_unknown - 'U': an SMTP command line we did not know */
int	milter_pkt_unknown(struct buf *out, const char *line,
	    const char **error_r);
/*
 * milter_pkt_simple - a command without data: 'T' DATA, 'N' EOH,
 * 'E' BODYEOB, 'A' ABORT, 'Q' QUIT, 'K' QUIT_NC; -1 for any other cmd
 */
int	milter_pkt_simple(struct buf *out, char cmd, const char **error_r);

/* one reply packet, parsed and checked */
struct milter_reply {
	char	 code;			/* MILTER_REPLY_* */
	/* 'O' */
	uint32_t version;
	uint32_t actions;
	uint32_t protocol;
	char	*symlist[MILTER_MACROS_COUNT];	/* owned; NULL: default */
	/* 'i' 'm': the index as sent */
	uint32_t index;
	/*
	 * 'h' 'i' 'm': name and value; 'y': text ("550 5.7.1 ...", %%
	 * undoubled); 'e' '+' '2' '-': value is the address, name NULL;
	 * 'e' '2': args the ESMTP arguments or NULL; 'q': value the reason
	 */
	char	*name;			/* owned */
	char	*value;			/* owned */
	char	*args;			/* owned */
	/* 'b': a chunk of the new body */
	char	*data;			/* owned, NUL-terminated */
	size_t	 len;
};

void	milter_reply_init(struct milter_reply *);
void	milter_reply_deinit(struct milter_reply *);
/* milter_reply_name - "continue", "insheader", ...; "?" if unknown */
const char *milter_reply_name(char code);
/* milter_reply_is_modification - h i m b e + 2 - q */
bool	milter_reply_is_modification(char code);

/* streaming reply parser */
struct milter_reader {
	struct buf in;		/* owned: bytes not yet parsed */
	size_t	 max_packet;	/* largest length field accepted */
	const char *error;	/* borrowed static text: sticky error */
};

/* milter_reader_init - max_packet 0 means MILTER_MAX_PACKET */
void	milter_reader_init(struct milter_reader *, size_t max_packet);
void	milter_reader_deinit(struct milter_reader *);
/*
 * milter_reader_feed - add bytes read from the milter. Feed at most
 * MILTER_READ_SLACK bytes at a time and drain with milter_reader_next
 * before feeding more; -1 with *error_r when the buffer would pass its
 * cap or after an earlier error.
 */
int	milter_reader_feed(struct milter_reader *, const void *, size_t,
	    const char **error_r);
/*
 * milter_reader_next - the next complete reply into *r (initialised here;
 * the caller deinits it after a 1). Returns 1 with a reply, 0 when more
 * bytes are needed, -1 with *error_r for a malformed or oversized packet;
 * an error is final: every later call fails the same way.
 */
int	milter_reader_next(struct milter_reader *, struct milter_reply *r,
	    const char **error_r);
/* milter_reader_pending - bytes buffered but not yet parsed */
size_t	milter_reader_pending(const struct milter_reader *);

/* what both sides agreed on */
struct milter_neg {
	uint32_t version;
	uint32_t actions;	/* the milter's, a subset of ours */
	uint32_t protocol;	/* the milter's, internal bits removed */
	char	*symlist[MILTER_MACROS_COUNT];	/* owned; NULL: ours */
};

/*
 * milter_negotiate - check the milter's 'O' reply against what we offered
 * (the fields of our 'O') and fill *neg (the symlists are copied; the
 * caller deinits *neg, also after -1). Returns -1 with *error_r when the
 * reply is not 'O', its version is below 2 or above ours, it asks for
 * actions or protocol steps we did not offer, or it sets macro lists
 * without SETSYMLIST.
 */
int	milter_negotiate(const struct milter_reply *reply,
	    uint32_t our_version, uint32_t our_actions, uint32_t our_protocol,
	    struct milter_neg *neg, const char **error_r);
void	milter_neg_deinit(struct milter_neg *);
/*
 * milter_neg_sends - whether to send command cmd at all: false for a
 * step the milter declined (SMFIP_NO*) or its version lacks (DATA before
 * 4, UNKNOWN before 3). Macros for a declined step are still sent.
 */
bool	milter_neg_sends(const struct milter_neg *, char cmd);
/*
 * milter_neg_expects_reply - whether cmd gets a reply: never for 'D',
 * 'A', 'Q', 'K'; not for steps marked SMFIP_NR_*
 */
bool	milter_neg_expects_reply(const struct milter_neg *, char cmd);
/*
 * milter_neg_allows - whether a reply code is allowed by the negotiation:
 * a modification needs its action, 's' needs SMFIP_SKIP
 */
bool	milter_neg_allows(const struct milter_neg *, char code);
/* milter_neg_macros - the setsymlist list for a stage, NULL: ours */
const char *milter_neg_macros(const struct milter_neg *,
	    enum milter_macro_stage);

/*
 * Mapping modifications to filter edits. Header values lose the leading
 * space HDR_LEADSPC leaves on them (our edit API writes "name: value")
 * and their LF-only folding becomes CRLF; CHGHEADER index 0 counts as 1
 * and an empty value deletes; addresses lose one pair of angle brackets;
 * REPLBODY chunks are concatenated (bare LF -> CRLF) into one
 * REPLACE_BODY edit at milter_edit_map_finish; QUARANTINE is no edit (the
 * caller holds the message).
 */
struct milter_edit_map {
	struct filter_edits *edits;	/* borrowed: the caller's */
	bool	 leadspc;
	struct buf body;		/* owned: the replacement so far */
	bool	 has_body;
	bool	 body_closed;		/* another edit followed the body */
	bool	 body_cr;		/* the last body byte was CR */
};

/* milter_edit_map_init - max_body caps the replacement (0: none) */
void	milter_edit_map_init(struct milter_edit_map *, struct filter_edits *,
	    bool leadspc, size_t max_body);
void	milter_edit_map_deinit(struct milter_edit_map *);
/*
 * milter_edit_map_add - one modification reply. Returns 0, or -1 with
 * *error_r for one that cannot be applied (a NUL or a second run in the
 * body, a body over max_body, an empty address, not a modification).
 * The ESMTP parameters of 'e' and '2' go with the edit (filter_edit.args),
 * checked where the edit is applied (message_edit_apply).
 */
int	milter_edit_map_add(struct milter_edit_map *,
	    const struct milter_reply *, const char **error_r);
/* milter_edit_map_finish - append the REPLACE_BODY edit, if any */
void	milter_edit_map_finish(struct milter_edit_map *);

#endif

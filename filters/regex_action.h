/*
 * regex_action.h - actions of header_checks/body_checks rules.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_REGEX_ACTION_H
#define POSTERN_REGEX_ACTION_H

enum regex_action_kind {
	REGEX_UNKNOWN,
	REGEX_REJECT,	/* refuse the message: 550 text */
	REGEX_DEFER,	/* refuse for now: 450 text */
	REGEX_DISCARD,	/* say 250, drop it */
	REGEX_HOLD,	/* say 250, keep it in the hold queue */
	REGEX_WARN,	/* log a warning, go on */
	REGEX_INFO,	/* log at info level, go on */
	REGEX_PREPEND,	/* insert text (a header) before this header */
	REGEX_REPLACE,	/* replace this header with text */
	REGEX_IGNORE,	/* delete this header */
	REGEX_STRIP,	/* delete this header and log it */
	REGEX_DUNNO,	/* DUNNO, OK, PASS: no action for this input */
	REGEX_REDIRECT,	/* the recipients become text */
	REGEX_BCC,	/* text is added as a recipient */
};

struct regex_action {
	enum regex_action_kind kind;
	const char *text;	/* points into the parsed result; "" if none */
	char	 enhanced[16];	/* REJECT/DEFER: "5.7.1" or the rule's own */
};

/*
 * regex_action_parse - "REJECT 5.7.1 No thanks" -> REGEX_REJECT, enhanced
 * "5.7.1", text "No thanks". -1 for an unknown word or an action that
 * needs text and has none. a->text borrows from result.
 */
int	regex_action_parse(const char *result, struct regex_action *a);
const char *regex_action_name(enum regex_action_kind);

#endif

/*
 * session_auth.c - the AUTH exchange of a server session (RFC 4954) with
 * the PLAIN (RFC 4616) and LOGIN mechanisms.
 *
 * Decoding happens on the loop; the password check (crypt(3), tens of
 * milliseconds by design) runs on the worker pool with the session
 * suspended. The password is wiped as soon as the check is done and never
 * logged.
 *
 * SPDX-License-Identifier: ISC
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "log.h"
#include "pool.h"
#include "session-private.h"
#include "xmalloc.h"

enum {
	AUTH_MECH_PLAIN = 1,
	AUTH_MECH_LOGIN,
};

enum {
	AUTH_STEP_RESPONSE,	/* PLAIN: the one response */
	AUTH_STEP_USER,		/* LOGIN: user name */
	AUTH_STEP_PASSWORD,	/* LOGIN: password */
};

bool
session_auth_offered(const struct session *s)
{
	return s->cfg->smtpd_sasl_password_maps != NULL &&
	    s->sasl_username == NULL &&
	    (s->tls || (s->kind != LISTENER_SUBMISSION &&
	    !s->cfg->smtpd_tls_auth_only));
}

struct auth_job {
	struct session	*s;		/* borrowed; suspended meanwhile */
	const struct table *users;	/* borrowed from the session's config */
	struct auth_creds creds;	/* owned; password wiped after use */
	bool		 ok;
};

static void
auth_work(void *arg)
{
	struct auth_job *j = arg;

	j->ok = auth_check_password(j->users, j->creds.user,
	    j->creds.password);
	explicit_bzero(j->creds.password, strlen(j->creds.password));
}

static const char *
mech_name(int mech)
{
	return mech == AUTH_MECH_PLAIN ? "PLAIN" : "LOGIN";
}

static void
auth_done(void *arg)
{
	struct auth_job *j = arg;
	struct session *s = j->s;
	int mech = s->auth_mech;

	if (!session_resume_begin(s)) {
		auth_creds_deinit(&j->creds);
		free(j);
		return;
	}
	session_set_state(s, s->helo != NULL ? SMTP_STATE_READY :
	    SMTP_STATE_HELO);
	if (j->ok) {
		s->sasl_method = xstrdup(mech_name(mech));
		s->sasl_username = xstrdup(j->creds.user);
		session_auth_refresh(s);
		log_info("%s: sasl_method=%s, sasl_username=%s", s->ident,
		    s->sasl_method, s->sasl_username);
		session_reply(s, "235 2.7.0 Authentication successful");
	} else {
		char user[128];

		log_escape(user, sizeof(user), j->creds.user);
		log_warnx("%s: SASL %s authentication failed for \"%s\"",
		    s->ident, mech_name(mech), user);
		session_reply(s, "535 5.7.8 Error: authentication failed");
		if (++s->auth_failures >= s->cfg->smtpd_auth_failure_limit) {
			log_info("NOQUEUE: too many AUTH failures from %s",
			    s->ident);
			session_reply(s, "421 4.7.0 %s Error: too many "
			    "authentication failures", s->cfg->myhostname);
			session_close(s);
		} else
			session_error(s);
	}
	auth_creds_deinit(&j->creds);
	free(j);
	session_resume_end(s);
}

/* check - hand the credentials (taken over) to the pool */
static void
check(struct session *s, struct auth_creds *creds)
{
	struct auth_job *j;

	j = xcalloc(1, sizeof(*j));
	j->s = s;
	j->users = s->cfg->smtpd_sasl_password_maps;
	j->creds = *creds;
	memset(creds, 0, sizeof(*creds));
	session_suspend(s);
	pool_submit(s->loop, auth_work, auth_done, j);
}

/* fail - a decoding failure or cancel ends the exchange */
static void
fail(struct session *s, enum auth_status st)
{
	auth_wipe(&s->auth_user);
	session_set_state(s, s->helo != NULL ? SMTP_STATE_READY :
	    SMTP_STATE_HELO);
	session_reply_text(s, auth_reply(st));
	session_error(s);
}

/* step - one response (initial or after a 334) */
static void
step(struct session *s, const char *line, size_t len)
{
	struct auth_creds creds;
	enum auth_status st;
	char *value;

	if (len == 1 && line[0] == '*') {
		fail(s, AUTH_CANCELLED);
		return;
	}
	if (s->auth_mech == AUTH_MECH_PLAIN) {
		if ((st = auth_plain_decode(line, len, &creds)) != AUTH_OK) {
			fail(s, st);
			return;
		}
		check(s, &creds);
		return;
	}
	if ((st = auth_login_decode(line, len, &value)) != AUTH_OK) {
		fail(s, st);
		return;
	}
	if (s->auth_step == AUTH_STEP_USER) {
		s->auth_user = value;
		s->auth_step = AUTH_STEP_PASSWORD;
		session_set_state(s, SMTP_STATE_AUTH);
		session_reply(s, "%s", AUTH_LOGIN_PROMPT_PASS);
		return;
	}
	creds.user = s->auth_user;
	creds.password = value;
	s->auth_user = NULL;
	check(s, &creds);
}

void
session_auth_begin(struct session *s, const char *mech, const char *initial)
{
	if (strcasecmp(mech, "PLAIN") == 0) {
		s->auth_mech = AUTH_MECH_PLAIN;
		s->auth_step = AUTH_STEP_RESPONSE;
	} else if (strcasecmp(mech, "LOGIN") == 0) {
		s->auth_mech = AUTH_MECH_LOGIN;
		s->auth_step = AUTH_STEP_USER;
	} else {
		session_reply(s, "504 5.5.4 Unsupported authentication "
		    "mechanism");
		session_error(s);
		return;
	}
	if (initial != NULL) {
		step(s, initial, strlen(initial));
		return;
	}
	session_set_state(s, SMTP_STATE_AUTH);
	if (s->auth_mech == AUTH_MECH_PLAIN)
		session_reply(s, "334 ");
	else
		session_reply(s, "%s", AUTH_LOGIN_PROMPT_USER);
}

void
session_auth_input(struct session *s, const char *line, size_t len)
{
	step(s, line, len);
}

/*
 * policy_client.h - the "policy" filter: Postfix SMTP access policy
 * delegation to the services of smtpd_policy_services.
 *
 * SPDX-License-Identifier: ISC
 */
#ifndef POSTERN_POLICY_CLIENT_H
#define POSTERN_POLICY_CLIENT_H

#include "filter.h"

/*
 * filter_policy - stages RCPT (one request per recipient to each service,
 * in order) and EOM (a request with protocol_state=END-OF-MESSAGE when
 * smtpd_policy_service_end_of_data is set; always: the HOLD, DISCARD,
 * PREPEND, REDIRECT and BCC actions remembered from RCPT become verdicts
 * and edits). May block: it runs on the filter pool and waits on the
 * services' sockets with poll() and smtpd_policy_service_timeout.
 *
 * What the actions do (access(5)):
 *   OK, permit      no further service is asked in this stage; CONTINUE
 *                   (not ACCEPT: the rest of the chain, DKIM signing
 *                   included, still runs)
 *   DUNNO           ask the next service
 *   REJECT, 5NN     REJECT (554 5.7.1 by default); 521 does not
 *                   disconnect (the filter API has no 5xx disconnect)
 *   DEFER, 4NN      TEMPFAIL (450 4.7.1); 421: DISCONNECT
 *   DEFER_IF_PERMIT remembered; TEMPFAIL at the end of the stage unless a
 *                   later service rejects (Postern has no restrictions
 *                   after the policy services that could reject instead)
 *   DEFER_IF_REJECT remembered; a later REJECT in the same stage becomes
 *                   TEMPFAIL with this reply; otherwise nothing
 *   HOLD, DISCARD   the message is held / discarded at EOM (DISCARD also
 *                   stops asking further services, like OK)
 *   PREPEND h: v    header inserted on top at EOM
 *   REDIRECT a      at EOM: a becomes the only recipient
 *   BCC a           at EOM: a is added as a recipient
 *   WARN, INFO      logged
 *   FILTER          logged as unsupported; no effect
 *   anything else   smtpd_policy_service_default_action, as when the
 *                   service cannot be reached, times out or answers
 *                   garbage
 */
extern const struct filter_ops filter_policy;

#endif

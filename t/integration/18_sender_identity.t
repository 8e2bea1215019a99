#!/usr/bin/perl
# 18_sender_identity.t - the sender identity policy through a real
# posternd: users logged in with AUTH on submission (after STARTTLS, as
# in 04_tls_auth.t), smtpd_sender_login_maps = texthash:FILE.
#
#   envelope: MAIL FROM an owned address -> 250; someone else's -> 553
#   5.7.1; an address of an owned domain (@domain key) -> 250, of its
#   subdomain -> 553; an address owned by two users -> 250 for both;
#   case does not matter; null sender -> 250; a user without entries ->
#   553 (null sender still 250)
#   header From:/Sender: (header_from_login_mismatch): someone else's
#   address -> reject: 550 5.7.1 at end of data, nothing delivered;
#   hold: in hold/; warn: delivered and a log line; ignore: delivered.
#   Display name tricks ("alice@example.org" <ceo@example.org>, the
#   same RFC 2047 encoded), several addresses, a group, and Sender: are
#   refused; the user's own address, with any display name, is not.
#   Clients that are not authenticated are not checked.
#
# SPDX-License-Identifier: ISC

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use PosternTest qw(reply_is poll_until like_diag split_message);

my %U = %PosternTest::USERS;
my $RCPT = 'user@example.test';

my $t = PosternTest->new;
my $MAP = $t->path('senders');
{
	open my $fh, '>', $MAP or die "$MAP: $!";
	print $fh <<'EOF';
# smtpd_sender_login_maps: sender address -> the logins that own it
alice@example.org	alice
bob@example.org		bob
ceo@example.org		ceo
shared@example.org	alice, bob
@alice-corp.test	alice
EOF
	close $fh;
	chmod 0644, $MAP;
}

# --- local helpers ----------------------------------------------------------

# restart(%over) - posternd with the sender policy and the overrides;
# one test when a previous posternd was stopped: it exited 0
sub restart {
	my (%over) = @_;
	if ($t->is_running) {
		my $st = $t->stop;
		ok(defined $st && $st == 0, 'posternd exits 0 before restart')
		    or diag($t->log_tail(20));
	}
	$t->start_posternd(config => {
		smtpd_filters => 'relay, sender',
		smtpd_sender_login_maps => "texthash:$MAP",
		queue_run_delay => '1s',
		minimal_backoff_time => '1s',
		maximal_backoff_time => '2s',
		%over,
	});
}

# login(USER) - a submission session after STARTTLS and AUTH PLAIN as
# USER; dies when any step fails
sub login {
	my ($user) = @_;
	my $c = $t->session('submission');
	my $r = $c->starttls;
	die "STARTTLS: " . ($r ? $r->{last} : 'closed') . "\n"
	    unless $r && $r->{code} == 220 && $c->tls_ok;
	($r) = $c->ehlo;
	die "EHLO after TLS\n" unless $r && $r->{code} == 250;
	$r = $c->auth_plain($user, $U{$user}{password});
	die "AUTH as $user: " . ($r ? $r->{last} : 'closed') . "\n"
	    unless $r && $r->{code} == 235;
	return $c;
}

# mail_as(USER, FROM) - the reply to MAIL FROM:<FROM> of USER
sub mail_as {
	my ($user, $from) = @_;
	my $c = login($user);
	my $r = $c->cmd("MAIL FROM:<$from>");
	$c->cmd('QUIT');
	$c->close;
	return $r;
}

# message(ID, HEADERS...) - a message with the given From:/Sender: lines,
# Message-ID <ID@client.example>
sub message {
	my ($id, @h) = @_;
	return join '', map { "$_\r\n" } @h, "To: <$RCPT>",
	    "Subject: $id", "Message-ID: <$id\@client.example>", '',
	    "body of $id";
}

# send_as(USER, FROM, ID, HEADERS...) - one transaction of USER (undef:
# not logged in, on the smtp listener): (final reply, queue ID)
sub send_as {
	my ($user, $from, $id, @h) = @_;
	my $c = defined $user ? login($user) : $t->session('smtp');
	my ($r, $qid) = $c->transaction($from, $RCPT, message($id, @h));
	$c->cmd('QUIT');
	$c->close;
	return ($r, $qid);
}

# delivered(ID, TIMEOUT) - the message <ID@client.example> reached the
# Maildir
sub delivered {
	my ($id, $timeout) = @_;
	return scalar $t->wait_message('user',
	    qr/^Message-ID: <\Q$id\E\@client\.example>\r?$/mi, $timeout // 10);
}

sub held {
	my ($qid) = @_;
	return poll_until(sub {
		grep { $_ eq $qid } @{ $t->spool_files->{hold} // [] }
	}, 5);
}

# --- 1. the envelope sender -------------------------------------------------

restart();

reply_is(mail_as('alice', 'alice@example.org'), 250, undef,
    'alice: MAIL FROM her own address');
reply_is(mail_as('alice', 'ALICE@Example.ORG'), 250, undef,
    'alice: her own address in other case');
reply_is(mail_as('alice', 'bob@example.org'), 553, '5.7.1',
    qr/bob\@example\.org/, "alice: MAIL FROM bob's address refused");
reply_is(mail_as('alice', 'ceo@example.org'), 553, '5.7.1',
    "alice: MAIL FROM the ceo's address refused");
reply_is(mail_as('alice', 'nobody-knows@example.org'), 553, '5.7.1',
    'alice: an address the map does not know is owned by nobody');
reply_is(mail_as('alice', 'anyone@alice-corp.test'), 250, undef,
    'alice: any address of her domain (@alice-corp.test)');
reply_is(mail_as('alice', 'x@sub.alice-corp.test'), 553, '5.7.1',
    'alice: a subdomain of her domain is not hers');
reply_is(mail_as('bob', 'anyone@alice-corp.test'), 553, '5.7.1',
    "bob: an address of alice's domain refused");
reply_is(mail_as('alice', 'shared@example.org'), 250, undef,
    'alice: a shared address');
reply_is(mail_as('bob', 'shared@example.org'), 250, undef,
    'bob: the same shared address');
reply_is(mail_as('bob', 'bob@example.org'), 250, undef,
    'bob: his own address');
reply_is(mail_as('alice', ''), 250, undef, 'alice: null sender allowed');
reply_is(mail_as('carol', 'carol@example.org'), 553, '5.7.1',
    'carol (no entries): her "own" address refused');
reply_is(mail_as('carol', ''), 250, undef,
    'carol (no entries): null sender allowed');

{
	# a refused MAIL does not end the session: the next one may pass
	my $c = login('alice');
	reply_is($c->cmd('MAIL FROM:<bob@example.org>'), 553, '5.7.1',
	    'same session: refused first');
	my ($r) = $c->transaction('alice@example.org', $RCPT,
	    message('env-retry', 'From: <alice@example.org>'));
	reply_is($r, 250, '2.0.0', 'same session: then her own address');
	$c->close;
	ok(delivered('env-retry'), 'same session: delivered');
}

# not authenticated: not checked
{
	my ($r) = send_as(undef, 'bob@example.org', 'unauth-smtp',
	    'From: <ceo@example.org>', 'Sender: <bob@example.org>');
	reply_is($r, 250, '2.0.0',
	    'not authenticated: any sender and From: accepted');
	ok(delivered('unauth-smtp'), 'not authenticated: delivered');
	# submission wants AUTH before MAIL: nothing to check there
	my $c = $t->session('submission');
	$c->starttls;
	$c->ehlo;
	reply_is($c->cmd('MAIL FROM:<bob@example.org>'), 530, '5.7.0',
	    'not authenticated on submission: 530, not 553 (control)');
	$c->close;
}

# --- 2. header From: and Sender: (reject, the default) ----------------------

my @REFUSED = (
	[ 'hdr-other', "someone else's From:", 'From: <bob@example.org>' ],
	[ 'hdr-trick', 'a display name that looks like her address',
	    'From: "alice@example.org" <ceo@example.org>' ],
	[ 'hdr-trick-bare', 'an unquoted display name address',
	    'From: alice@example.org <ceo@example.org>' ],
	[ 'hdr-trick-2047', 'an RFC 2047 display name',
	    'From: =?UTF-8?B?YWxpY2VAZXhhbXBsZS5vcmc=?= <ceo@example.org>' ],
	[ 'hdr-two', 'two From: addresses, one not hers',
	    'From: <alice@example.org>, <ceo@example.org>' ],
	[ 'hdr-group', 'a group with an address not hers',
	    'From: team: alice@example.org, ceo@example.org;' ],
	[ 'hdr-folded', 'a folded From:',
	    "From: Alice\r\n <ceo\@example.org>" ],
	[ 'hdr-comment', 'her address in a comment',
	    'From: ceo@example.org (alice@example.org)' ],
	[ 'hdr-sender', "her From:, someone else's Sender:",
	    'From: <alice@example.org>', 'Sender: <bob@example.org>' ],
	[ 'hdr-two-from', 'a second From: field',
	    'From: <alice@example.org>', 'From: <ceo@example.org>' ],
);
my @ALLOWED = (
	[ 'hdr-own', 'her own From:', 'From: <alice@example.org>' ],
	[ 'hdr-own-name', 'her own From: with a display name',
	    'From: "Alice Example" <alice@example.org>' ],
	[ 'hdr-own-domain', 'From: of her domain',
	    'From: Sales <sales@alice-corp.test>' ],
	[ 'hdr-own-sender', 'From: shared, Sender: hers',
	    'From: <shared@example.org>', 'Sender: <alice@example.org>' ],
	[ 'hdr-own-case', 'her own From: in other case',
	    'From: <Alice@EXAMPLE.org>' ],
);

for my $c (@REFUSED) {
	my ($id, $what, @h) = @$c;
	my ($r) = send_as('alice', 'alice@example.org', $id, @h);
	reply_is($r, 550, '5.7.1', "reject: $what: 550 5.7.1 at end of data");
	ok(!delivered($id, 0.5), "reject: $what: not delivered");
}
for my $c (@ALLOWED) {
	my ($id, $what, @h) = @$c;
	my ($r) = send_as('alice', 'alice@example.org', $id, @h);
	reply_is($r, 250, '2.0.0', "reject: $what: accepted");
	ok(delivered($id), "reject: $what: delivered");
}
{
	my ($r) = send_as('alice', 'alice@example.org', 'hdr-reply-text',
	    'From: <bob@example.org>');
	like_diag($r && $r->{text}, qr/bob\@example\.org/,
	    'reject: the reply names the address');
}

# --- 3. hold, warn, ignore --------------------------------------------------

restart(header_from_login_mismatch => 'hold');
{
	my $mark = $t->log_mark;
	my ($r, $qid) = send_as('alice', 'alice@example.org', 'hold-other',
	    'From: <bob@example.org>');
	reply_is($r, 250, '2.0.0', 'hold: accepted');
	ok($qid && held($qid), 'hold: in hold/')
	    or diag(explain($t->spool_files), $t->log_tail(10));
	ok(!delivered('hold-other', 1), 'hold: not delivered');
	($r, $qid) = send_as('alice', 'alice@example.org', 'hold-own',
	    'From: <alice@example.org>');
	reply_is($r, 250, '2.0.0', 'hold: her own From: accepted');
	ok(delivered('hold-own'), 'hold: her own From: delivered');
	reply_is(mail_as('alice', 'bob@example.org'), 553, '5.7.1',
	    'hold: the envelope check still refuses');
}

restart(header_from_login_mismatch => 'warn');
{
	my $mark = $t->log_mark;
	my ($r, $qid) = send_as('alice', 'alice@example.org', 'warn-other',
	    'From: "alice@example.org" <ceo@example.org>');
	reply_is($r, 250, '2.0.0', 'warn: accepted');
	ok(delivered('warn-other'), 'warn: delivered');
	like_diag($t->wait_for_log(qr/ceo\@example\.org/, 5, $mark),
	    qr/warning: .*\Q$qid\E.*From.*ceo\@example\.org.*alice/,
	    'warn: a warning naming the field, the address and the user',
	    $t->log_tail(10));
	$mark = $t->log_mark;
	($r) = send_as('alice', 'alice@example.org', 'warn-own',
	    'From: <alice@example.org>');
	ok(delivered('warn-own'), 'warn: her own From: delivered');
	ok(!grep({ /warning: .*sender/ } $t->log_lines($mark)),
	    'warn: no warning for her own From:');
}

restart(header_from_login_mismatch => 'ignore');
{
	my $mark = $t->log_mark;
	my ($r) = send_as('alice', 'alice@example.org', 'ignore-other',
	    'From: <bob@example.org>', 'Sender: <ceo@example.org>');
	reply_is($r, 250, '2.0.0', 'ignore: accepted');
	ok(delivered('ignore-other'), 'ignore: delivered');
	ok(!grep({ /bob\@example\.org|ceo\@example\.org/ }
	    $t->log_lines($mark)), 'ignore: no log line about the From:')
	    or diag($t->log_tail(10));
	reply_is(mail_as('alice', 'bob@example.org'), 553, '5.7.1',
	    'ignore: the envelope check still refuses');
}

PosternTest->finish_all_ok;
done_testing;

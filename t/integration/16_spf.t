#!/usr/bin/perl
# 16_spf.t - the spf filter through a real posternd, with dnsmasq
# publishing the SPF records (TXT) of a few domains under .test and
# dns_resolver pointing at it.
#
# Inbound (the client, 127.0.0.1, is neither in mynetworks nor
# authenticated):
#   pass -> accepted, the delivered message has Received-SPF (RFC 7208
#   9.1: client-ip, envelope-from, helo, receiver, identity) and
#   "Authentication-Results: <authserv_id>; spf=pass smtp.mailfrom=...";
#   fail -> 550 5.7.23 at MAIL with the explanation (ours or exp=);
#   softfail, neutral, none, permerror (syntax error, two records) ->
#   accepted and marked; a domain whose DNS server fails -> 451 4.7.24;
#   null sender -> the HELO identity (smtp.helo=); each spf_*_action
#   changed (hold, reject, accept).
# Egress (mynetworks or authenticated, spf_egress_addresses =
# 192.0.2.10): a domain whose record leaves that address out -> warn
# (log line naming the domain and the address, mail relayed), hold,
# reject (550 5.7.23); a domain that includes it -> no warning.
# Robustness: every postern-spf helper of the daemon killed (SIGKILL, by
# pid) -> the next message still gets a result; a DNS server that never
# answers, spf_timeout = 3s -> 451 4.7.24 within the timeout.
#
# SPDX-License-Identifier: ISC

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use IO::Socket::IP;
use Test::More;
use Time::HiRes qw(time sleep);
use PosternTest qw(reply_is poll_until free_port simple_message
    split_message header_value like_diag);

my $AUTHSERV = 'mx.auth.test';
my $HELO = 'client.example';
my $RCPT = 'user@example.test';
my $REMOTE = 'someone@example.net';
my $EGRESS = '192.0.2.10';
my %U = %PosternTest::USERS;

my $t = PosternTest->new;
my $closed = free_port();	# nothing listens there: broken.test fails
# slow.test's server: a socket that never answers
my $silent = IO::Socket::IP->new(LocalHost => '127.0.0.1', LocalPort => 0,
    Proto => 'udp') or die "udp socket: $!";
my $dns = $t->start_dnsmasq(
    # answer .test from these lines only: unknown names are NXDOMAIN
    'local=/test/',
    "server=/broken.test/127.0.0.1#$closed",
    'server=/slow.test/127.0.0.1#' . $silent->sockport,
    'txt-record=pass.test,"v=spf1 ip4:127.0.0.1 -all"',
    'txt-record=fail.test,"v=spf1 ip4:192.0.2.1 -all"',
    'txt-record=failexp.test,"v=spf1 -all exp=why.failexp.test"',
    'txt-record=why.failexp.test,"%{i} may not send for %{d}, ask postmaster"',
    'txt-record=soft.test,"v=spf1 ip4:192.0.2.1 ~all"',
    'txt-record=neutral.test,"v=spf1 ?all"',
    'txt-record=perm.test,"v=spf1 ip4:127.0.0.1 frobnicate:x -all"',
    'txt-record=two.test,"v=spf1 ip4:127.0.0.1 -all"',
    'txt-record=two.test,"v=spf1 -all"',
    'txt-record=helo-pass.test,"v=spf1 ip4:127.0.0.1 -all"',
    'txt-record=helo-fail.test,"v=spf1 -all"',
    'txt-record=eg-ok.test,"v=spf1 ip4:192.0.2.10 -all"',
    'txt-record=eg-inc.test,"v=spf1 include:eg-ok.test -all"',
    'txt-record=eg-bad.test,"v=spf1 ip4:192.0.2.99 -all"',
    'txt-record=eg-soft.test,"v=spf1 ip4:192.0.2.99 ~all"',
);
$t->start_smtp_sink;

my %BASE = (
	smtpd_filters => 'relay, sender, spf, regex',
	dns_resolver => "127.0.0.1\@$dns",
	authserv_id => $AUTHSERV,
	spf_timeout => '5s',
	queue_run_delay => '1s',
	minimal_backoff_time => '1s',
	maximal_backoff_time => '2s',
);

# --- local helpers ----------------------------------------------------------


# restart(%over) - posternd again with %BASE and the overrides; one test:
# the previous one (if any) exited 0
sub restart {
	my (%over) = @_;
	if ($t->is_running) {
		my $st = $t->stop;
		ok(defined $st && $st == 0, 'posternd exits 0 before restart')
		    or diag($t->log_tail(20));
	}
	$t->start_posternd(config => { %BASE, %over });
}

# mail_reply(FROM, HELO) - the reply to MAIL FROM:<FROM> in a new smtp
# session that said EHLO HELO
sub mail_reply {
	my ($from, $helo) = @_;
	my $c = $t->session('smtp', helo => $helo // $HELO);
	my $r = $c->cmd("MAIL FROM:<$from>");
	$c->cmd('QUIT');
	$c->close;
	return $r;
}

# send_msg(FROM, SUBJECT, HELO, RCPT, KIND, AUTH) - one transaction:
# (final reply, queue ID). KIND: listener (smtp); AUTH: a user to log
# in as after STARTTLS
sub send_msg {
	my ($from, $subject, $helo, $rcpt, $kind, $auth) = @_;
	$rcpt //= $RCPT;
	my $c = $t->session($kind // 'smtp', helo => $helo // $HELO);
	if ($auth) {
		$c->starttls;
		$c->ehlo($helo // $HELO);
		my $r = $c->auth_plain($auth, $U{$auth}{password});
		return ($r) unless $r && $r->{code} == 235;
	}
	my ($r, $qid) = $c->transaction($from, $rcpt,
	    simple_message($subject, $from eq '' ? 'null@client.example' :
	    $from, $rcpt));
	$c->cmd('QUIT');
	$c->close;
	return ($r, $qid);
}

# delivered(SUBJECT) - the header lines of the message with SUBJECT in
# user's Maildir (waits up to 10 s), or undef
sub delivered {
	my ($subject) = @_;
	my ($m) = $t->wait_message('user', qr/^Subject: \Q$subject\E\r?$/m,
	    10);
	return undef unless defined $m;
	my ($head) = split_message($m);
	return $head;
}

# spf_headers_ok(SUBJECT, RESULT, PROP, VALUE, IDENTITY, FROM, HELO) -
# the delivered message has Received-SPF: RESULT with the RFC 7208 9.1
# fields and "Authentication-Results: AUTHSERV; spf=RESULT
# smtp.PROP=VALUE"
sub spf_headers_ok {
	my ($subject, $result, $prop, $value, $identity, $from, $helo) = @_;
	my $head = delivered($subject);
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	ok($head, "$subject: delivered") or return;
	my $rs = header_value($head, 'Received-SPF');
	my $ar = header_value($head, 'Authentication-Results');
	my $ctx = join "\n",
	    grep { /^(?:Received-SPF|Authentication-Results):/i }
	    @$head;
	like_diag($rs, qr/^\Q$result\E\b/i, "$subject: Received-SPF: $result",
	    $ctx);
	my %want = (
		'client-ip' => qr/127\.0\.0\.1/,
		'envelope-from' => ref $from ? $from : qr/"?\Q$from\E"?/,
		helo => qr/"?\Q$helo\E"?/,
		receiver => qr/"?relay\.example\.test"?/,
		identity => qr/\Q$identity\E/,
	);
	for my $k (sort keys %want) {
		like_diag($rs, qr/(?:^|[;)\s])\Q$k\E=$want{$k}(?:;|\s|$)/,
		    "$subject: Received-SPF $k=", $rs);
	}
	like_diag($ar, qr/^\Q$AUTHSERV\E;\s*spf=\Q$result\E\s+
	    smtp\.\Q$prop\E=\Q$value\E(?:\s|;|$)/x,
	    "$subject: Authentication-Results spf=$result smtp.$prop=",
	    $ctx);
}

# held(QID) - true when QID is in the hold queue (waits up to 5 s)
sub held {
	my ($qid) = @_;
	return poll_until(sub {
		grep { $_ eq $qid } @{ $t->spool_files->{hold} // [] }
	}, 5);
}

# alive(PID) - PID exists and is not a zombie
sub alive {
	my ($pid) = @_;
	open my $fh, '<', "/proc/$pid/stat" or return 0;
	my $l = <$fh> // '';
	close $fh;
	return $l !~ /^\d+ \(.*\) Z /;
}

# spf_helpers - the pids of the postern-spf children of posternd
sub spf_helpers {
	my $ppid = $t->posternd_pid;
	my @p;
	for my $stat (glob '/proc/[0-9]*/stat') {
		open my $fh, '<', $stat or next;
		my $l = <$fh> // '';
		close $fh;
		my ($pid, $comm, $pp) = $l =~ /^(\d+) \((.*)\) \S (\d+)/
		    or next;
		push @p, $pid if $pp == $ppid && $comm eq 'postern-spf' &&
		    alive($pid);
	}
	return @p;
}

# --- 1. inbound results with the default actions ---------------------------

restart();

{
	my ($r) = send_msg('a@pass.test', 'spf-pass');
	reply_is($r, 250, '2.0.0', 'pass: accepted');
	spf_headers_ok('spf-pass', 'pass', 'mailfrom', 'a@pass.test',
	    'mailfrom', 'a@pass.test', $HELO);
}

reply_is(mail_reply('a@fail.test'), 550, '5.7.23',
    qr/fail\.test/, 'fail: 550 5.7.23 at MAIL, the explanation names the '
    . 'domain');
reply_is(mail_reply('b@failexp.test'), 550, '5.7.23',
    qr/127\.0\.0\.1 may not send for failexp\.test, ask postmaster/,
    'fail: the exp= explanation of the record in the reply');

for my $case (
	[ 'soft.test', 'softfail', 'spf-softfail' ],
	[ 'neutral.test', 'neutral', 'spf-neutral' ],
	[ 'nospf.test', 'none', 'spf-none' ],
	[ 'perm.test', 'permerror', 'spf-permerror-syntax' ],
	[ 'two.test', 'permerror', 'spf-permerror-two' ],
    ) {
	my ($domain, $result, $subject) = @$case;
	my ($r) = send_msg("x\@$domain", $subject);
	reply_is($r, 250, '2.0.0', "$result ($domain): accepted");
	spf_headers_ok($subject, $result, 'mailfrom', "x\@$domain",
	    'mailfrom', "x\@$domain", $HELO);
}

{
	my $t0 = time;
	my $r = mail_reply('a@broken.test');
	reply_is($r, 451, '4.7.24', 'DNS server of the domain fails: 451 '
	    . '4.7.24 at MAIL');
	cmp_ok(time - $t0, '<', 8, 'the DNS failure is answered in time');
}

# null sender: the HELO identity
{
	my ($r) = send_msg('', 'spf-helo-pass', 'helo-pass.test');
	reply_is($r, 250, '2.0.0', 'null sender, HELO passes: accepted');
	# RFC 7208 2.4: the HELO check uses postmaster@HELO as sender
	spf_headers_ok('spf-helo-pass', 'pass', 'helo', 'helo-pass.test',
	    'helo', qr/(?:"?postmaster\@helo-pass\.test"?|<>|"")/,
	    'helo-pass.test');
	reply_is(mail_reply('', 'helo-fail.test'), 550, '5.7.23',
	    'null sender, HELO fails: 550 5.7.23');
	reply_is(mail_reply('', 'helo-pass.test'), 250, undef,
	    'null sender, HELO passes: MAIL 250 (control)');
}

ok(!$t->wait_for_log(qr/spf egress/, 0.1),
    'no egress check for an inbound client');

# --- 2. the actions changed ---------------------------------------------------

restart(spf_fail_action => 'hold', spf_softfail_action => 'reject',
    spf_temperror_action => 'accept', spf_permerror_action => 'reject');

{
	my $mark = $t->log_mark;
	my ($r, $qid) = send_msg('a@fail.test', 'spf-fail-hold');
	reply_is($r, 250, '2.0.0', 'spf_fail_action = hold: accepted');
	ok($qid && held($qid), 'spf_fail_action = hold: in hold/')
	    or diag(explain($t->spool_files), $t->log_tail(10));
	ok($qid && $t->wait_for_log(qr/\Q$qid\E: hold:/, 5, $mark),
	    'spf_fail_action = hold: the hold is logged');
	ok(!$t->wait_message('user', qr/^Subject: spf-fail-hold\r?$/m, 1),
	    'spf_fail_action = hold: not delivered');
}
reply_is(mail_reply('a@soft.test'), 550, qr/^5\.7\.2[34]$/,
    'spf_softfail_action = reject: 550');
reply_is(mail_reply('a@perm.test'), 550, '5.7.24',
    'spf_permerror_action = reject: 550 5.7.24');
{
	my ($r) = send_msg('a@broken.test', 'spf-temperror-accept');
	reply_is($r, 250, '2.0.0', 'spf_temperror_action = accept: accepted');
	spf_headers_ok('spf-temperror-accept', 'temperror', 'mailfrom',
	    'a@broken.test', 'mailfrom', 'a@broken.test', $HELO);
}
reply_is(mail_reply('a@pass.test'), 250, undef,
    'pass is still accepted with the changed actions');

restart(spf_fail_action => 'accept');
{
	my ($r) = send_msg('a@fail.test', 'spf-fail-accept');
	reply_is($r, 250, '2.0.0', 'spf_fail_action = accept: accepted');
	spf_headers_ok('spf-fail-accept', 'fail', 'mailfrom', 'a@fail.test',
	    'mailfrom', 'a@fail.test', $HELO);
}
restart(spf_fail_action => 'tempfail');
reply_is(mail_reply('a@fail.test'), 451, '4.7.24',
    'spf_fail_action = tempfail: 451 4.7.24');

# --- 3. egress ----------------------------------------------------------------

my %EGRESS = (mynetworks => '127.0.0.0/8', spf_egress_addresses => $EGRESS);

restart(%EGRESS);	# spf_egress_action = warn by default
{
	my $mark = $t->log_mark;
	my ($r, $qid) = send_msg('a@eg-bad.test', 'egress-warn', undef,
	    $REMOTE);
	reply_is($r, 250, '2.0.0', 'egress warn: accepted');
	my $l = $t->wait_for_log(qr/spf egress/, 5, $mark);
	like_diag($l, qr/warning:.*eg-bad\.test.*\Q$EGRESS\E/,
	    'egress warn: a warning naming the domain and the address',
	    $t->log_tail(10));
	ok(scalar $t->wait_sink(qr/^Subject: egress-warn$/m, 15),
	    'egress warn: relayed to the next hop');
	ok(!grep({ /^Received-SPF:|^Authentication-Results:.*spf=/m }
	    $t->wait_sink(qr/^Subject: egress-warn$/m, 1)),
	    'egress: no inbound SPF headers on outbound mail');

	$mark = $t->log_mark;
	($r) = send_msg('a@eg-soft.test', 'egress-warn-soft', undef, $REMOTE);
	reply_is($r, 250, '2.0.0', 'egress warn (softfail): accepted');
	like_diag($t->wait_for_log(qr/spf egress/, 5, $mark),
	    qr/eg-soft\.test.*softfail.*\Q$EGRESS\E|eg-soft\.test.*\Q$EGRESS\E/,
	    'egress softfail: warned', $t->log_tail(10));

	for my $d (qw(eg-ok.test eg-inc.test)) {
		$mark = $t->log_mark;
		($r) = send_msg("a\@$d", "egress-$d", undef, $REMOTE);
		reply_is($r, 250, '2.0.0', "egress: $d accepted");
		ok(scalar $t->wait_sink(qr/^Subject: egress-\Q$d\E$/m, 15),
		    "egress: $d relayed");
		ok(!grep({ /spf egress/ } $t->log_lines($mark)),
		    "egress: $d authorizes $EGRESS, no warning")
		    or diag($t->log_tail(10));
	}
}

# an authenticated client outside mynetworks is checked the same way
restart(spf_egress_addresses => $EGRESS);
{
	my $mark = $t->log_mark;
	my ($r) = send_msg('a@eg-bad.test', 'egress-auth', undef, $REMOTE,
	    'submission', 'alice');
	reply_is($r, 250, '2.0.0', 'egress, authenticated client: accepted');
	like_diag($t->wait_for_log(qr/spf egress/, 5, $mark),
	    qr/eg-bad\.test.*\Q$EGRESS\E/,
	    'egress, authenticated client: warned', $t->log_tail(10));
	ok(!grep({ /Received-SPF/ } $t->log_lines($mark)),
	    'egress, authenticated client: no inbound check logged');
}

restart(%EGRESS, spf_egress_action => 'hold');
{
	my ($r, $qid) = send_msg('a@eg-bad.test', 'egress-hold', undef,
	    $REMOTE);
	reply_is($r, 250, '2.0.0', 'egress hold: accepted');
	ok($qid && held($qid), 'egress hold: in hold/')
	    or diag(explain($t->spool_files), $t->log_tail(10));
	($r, $qid) = send_msg('a@eg-ok.test', 'egress-hold-ok', undef,
	    $REMOTE);
	ok(scalar $t->wait_sink(qr/^Subject: egress-hold-ok$/m, 15),
	    'egress hold: an authorizing domain is relayed');
}

restart(%EGRESS, spf_egress_action => 'reject');
reply_is(mail_reply('a@eg-bad.test'), 550, '5.7.23', qr/eg-bad\.test/,
    'egress reject: 550 5.7.23 naming the domain');
reply_is(mail_reply('a@eg-ok.test'), 250, undef,
    'egress reject: an authorizing domain is accepted');
reply_is(mail_reply('a@eg-inc.test'), 250, undef,
    'egress reject: a domain including the address is accepted');

# --- 4. robustness --------------------------------------------------------

restart();
{
	reply_is(mail_reply('a@pass.test'), 250, undef,
	    'robustness: a check starts the helpers');
	my @h = spf_helpers();
	ok(@h > 0, 'robustness: postern-spf helpers run as children of '
	    . 'posternd') or diag("posternd pid " . $t->posternd_pid);
	kill 'KILL', @h;
	ok(poll_until(sub { !grep { alive($_) } @h }, 5),
	    'robustness: every helper killed');
	# the first check after the kill may meet a dead helper
	my ($r) = send_msg('a@pass.test', 'spf-after-kill');
	reply_is($r, 250, '2.0.0',
	    'robustness: a message after the kill is accepted')
	    or diag($t->log_tail(15));
	spf_headers_ok('spf-after-kill', 'pass', 'mailfrom', 'a@pass.test',
	    'mailfrom', 'a@pass.test', $HELO);
	reply_is(mail_reply('a@fail.test'), 550, '5.7.23',
	    'robustness: fail still rejected after the kill');
	ok(scalar(spf_helpers()) > 0, 'robustness: helpers restarted');
	ok($t->is_running, 'robustness: posternd still running');
	$t->serves_ok('robustness: posternd still serves');
}

# a DNS server that never answers
{
	my $hole = IO::Socket::IP->new(LocalHost => '127.0.0.1',
	    LocalPort => 0, Proto => 'udp') or die "udp socket: $!";
	restart(dns_resolver => '127.0.0.1@' . $hole->sockport,
	    spf_timeout => '3s');
	my $t0 = time;
	my $r = mail_reply('a@silent.test');
	my $took = time - $t0;
	reply_is($r, 451, '4.7.24',
	    'DNS that never answers: 451 4.7.24 (temperror)');
	cmp_ok($took, '<', 6, 'DNS that never answers: answered within '
	    . 'spf_timeout (3s) and a margin');
	$t->serves_ok('DNS that never answers: posternd still serves');
	close $hole;
}

# slow SPF checks do not stall other clients: two sessions wait on a
# DNS server that never answers while a third sends a whole message (the
# filter stages have their own threads; commits have theirs)
{
	restart(spf_timeout => '6s', worker_threads => 2);
	my @waiting = map {
		my $c = $t->session('smtp', helo => "w$_.example");
		$c->send("MAIL FROM:<x\@slow.test>\r\n");
		$c;
	} 1 .. 2;
	sleep 0.3;
	my $t0 = time;
	my ($r) = send_msg('a@pass.test', 'not stalled');
	my $took = time - $t0;
	reply_is($r, 250, '2.0.0',
	    'slow SPF elsewhere: another client\'s message is accepted');
	cmp_ok($took, '<', 3, 'slow SPF elsewhere: without waiting for it '
	    . '(spf_timeout 6s)');
	$_->close for @waiting;
}

PosternTest->finish_all_ok;
done_testing;

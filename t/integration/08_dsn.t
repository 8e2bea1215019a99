#!/usr/bin/perl
# 08_dsn.t - bounces: a 5xx from the next hop gives an RFC 3464 DSN to
# the envelope sender (multipart/report, MAILER-DAEMON, Final-Recipient,
# Action: failed, Status: 5.x.x, the original headers); none to the null
# sender; none for NOTIFY=NEVER; a 4xx defers and is retried; past
# maximal_queue_lifetime a deferred message bounces with X.4.7.
#
# The sender is a local user (sender@example.test) so that its DSNs land
# in the Maildir.
#
# SPDX-License-Identifier: ISC

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use File::Find;
use Time::HiRes qw(time sleep);
use PosternTest qw(reply_is poll_until split_message);

my $t = PosternTest->new;
my %CONFIG = %PosternTest::QUICK_DELIVERY;
my $SENDER = 'sender@example.test';
my $HARD = '550 5.1.1 Error: no such user here';
my $SOFT = '451 4.3.0 Error: try again later';

# --- local helpers ----------------------------------------------------------

sub message {
	my ($subject) = @_;
	return "From: Sender <$SENDER>\r\nTo: <someone\@other.example>\r\n" .
	    "Subject: $subject\r\nMessage-ID: <$subject\@example.test>\r\n" .
	    "X-Original-Marker: $subject\r\n" .
	    "\r\nbody of $subject\r\n..dot line\r\n";
}

# send_msg(FROM, [RCPT...], SUBJECT, MAIL_ARGS) - one transaction with
# message(SUBJECT) in a new session; (reply, qid)
sub send_msg {
	my ($from, $rcpts, $subject, $margs) = @_;
	return $t->submit($from, $rcpts, message($subject), $margs);
}

# all_mail - number of files in every Maildir new/
sub all_mail {
	my $n = 0;
	my $top = $t->path('mail');
	return 0 unless -d $top;
	find({ no_chdir => 1, wanted => sub {
		$n++ if -f $_ && $File::Find::name =~ m{/new/[^/]+$};
	} }, $top);
	return $n;
}

# dsns_for(SUBJECT, COUNT, TIMEOUT) - the messages in sender's Maildir
# that return the message with SUBJECT (CRLF turned into LF)
sub dsns_for {
	my ($subject, $count, $timeout) = @_;
	my @m;
	poll_until(sub {
		@m = grep { /^X-Original-Marker: \Q$subject\E\r?$/m }
		    $t->maildir_messages('sender');
		return @m >= ($count // 1);
	}, $timeout // 20);
	s/\r\n/\n/g for @m;
	return @m;
}

# top_headers(TEXT) - { lc name => value } of the first header block,
# unfolded
sub top_headers {
	my ($lines) = split_message($_[0]);
	my %h;
	for (@$lines) {
		$h{ lc $1 } //= $2 if /^([^:\s]+):\s*(.*)$/;
	}
	return \%h;
}

# --- 1. the next hop answers 5xx to RCPT ----------------------------------

$t->start_smtp_sink(undef, '-f', 'RCPT', '-B', $HARD);
$t->start_posternd(config => \%CONFIG);

{
	my ($r, $qid) = send_msg($SENDER, [ 'nobody@other.example' ],
	    'DSN-5XX', 'ENVID=env-5xx-1');
	reply_is($r, 250, '2.0.0', '5xx: message accepted');
	$qid //= 'NO-QID';
	my $l = $t->wait_for_log(qr/\b\Q$qid\E: to=<nobody\@other\.example>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, delay=\S+, dsn=5\.1\.1, status=bounced \(.*550 5\.1\.1\b/, 15);
	ok($l, '5xx: log says dsn=5.1.1, status=bounced (... 550 5.1.1 ...)')
	    or diag("log tail:\n" . $t->log_tail(10));
	my $ndn = $t->wait_for_log(
	    qr/\b\Q$qid\E: sender non-delivery notification: ([A-Za-z0-9]+)$/,
	    5);
	ok($ndn, '5xx: log: QID: sender non-delivery notification: NEWQID');
	my ($bqid) = ($ndn // '') =~ /notification: ([A-Za-z0-9]+)$/;
	$bqid //= 'NO-BQID';
	ok($t->wait_for_log(qr/\b\Q$bqid\E: from=<>, /, 5),
	    '5xx: the DSN is queued from the null sender');

	my @d = dsns_for('DSN-5XX', 1, 20);
	is(scalar @d, 1, '5xx: one DSN in the sender\'s Maildir');
	my $dsn = $d[0] // '';
	my $h = top_headers($dsn);
	like($h->{from} // '', qr/MAILER-DAEMON/i, 'DSN: From: MAILER-DAEMON');
	like($h->{to} // '', qr/\Q$SENDER\E/, 'DSN: To: the original sender');
	ok(!defined $h->{'return-path'} || $h->{'return-path'} eq '<>',
	    'DSN: Return-Path, if present, is <>') or
	    diag("got Return-Path: $h->{'return-path'}");
	like($h->{'content-type'} // '', qr{^multipart/report\s*;}i,
	    'DSN: Content-Type: multipart/report');
	like($h->{'content-type'} // '',
	    qr/;\s*report-type\s*=\s*"?delivery-status"?/i,
	    'DSN: report-type=delivery-status');
	like($h->{'content-type'} // '', qr/;\s*boundary\s*=/i,
	    'DSN: has a MIME boundary');
	like($dsn, qr{^Content-Type:\s*message/delivery-status}mi,
	    'DSN: a message/delivery-status part');
	like($dsn, qr/^Reporting-MTA:\s*dns;\s*relay\.example\.test\s*$/mi,
	    'DSN: Reporting-MTA: dns; myhostname');
	like($dsn, qr/^Original-Envelope-Id:\s*env-5xx-1\s*$/mi,
	    'DSN: Original-Envelope-Id from ENVID');
	like($dsn,
	    qr/^Final-Recipient:\s*rfc822;\s*nobody\@other\.example\s*$/mi,
	    'DSN: Final-Recipient: rfc822; nobody@other.example');
	like($dsn, qr/^Action:\s*failed\s*$/mi, 'DSN: Action: failed');
	like($dsn, qr/^Status:\s*5\.\d{1,3}\.\d{1,3}\s*$/mi,
	    'DSN: Status: 5.x.x');
	like($dsn, qr/^Status:\s*5\.1\.1\s*$/mi,
	    'DSN: Status: 5.1.1, the next hop\'s enhanced code');
	like($dsn, qr/^Diagnostic-Code:\s*smtp;\s*550\b/mi,
	    'DSN: Diagnostic-Code: smtp; 550 ... (the reply, RFC 3464 2.3.6)')
	    or diag('got: ' . join("\n", $dsn =~ /^(Diagnostic-Code:.*)$/mi));
	like($dsn, qr/^Subject: DSN-5XX$/m,
	    'DSN: the original Subject is returned');
	like($dsn, qr/^Message-ID: <DSN-5XX\@example\.test>$/mi,
	    'DSN: the original Message-ID is returned');
	like($dsn,
	    qr{^Content-Type:\s*(?:message/rfc822|text/rfc822-headers)}mi,
	    'DSN: the original is a message/rfc822 or rfc822-headers part');
	ok($t->wait_for_log(qr/\b\Q$bqid\E: to=<\Q$SENDER\E>, .*status=sent/,
	    5), 'DSN: delivered with status=sent');
	ok($t->wait_for_log(qr/\b\Q$qid\E: removed$/, 5),
	    '5xx: the original is removed');
}

# --- 2. no DSN to the null sender; 3. none for NOTIFY=NEVER -------------

for my $case (
	# [ label, sender, recipient (with parameters), subject,
	#   the name of the last test ]
	[ 'null sender', '', 'nobody2@other.example', 'DSN-NULL',
	    'no new message in any Maildir' ],
	[ 'NOTIFY=NEVER', $SENDER, 'nobody3@other.example NOTIFY=NEVER',
	    'DSN-NEVER', 'no DSN in the Maildir' ],
) {
	my ($label, $from, $rcpt, $subject, $last) = @$case;
	my ($addr) = split ' ', $rcpt;
	my $before = all_mail();
	my ($r, $qid) = send_msg($from, [ $rcpt ], $subject);
	reply_is($r, 250, '2.0.0', "$label: message accepted");
	$qid //= 'NO-QID';
	ok($t->wait_for_log(qr/\b\Q$qid\E: to=<\Q$addr\E>, .*status=bounced/, 15),
	    "$label: status=bounced") or
	    diag("log tail:\n" . $t->log_tail(10));
	ok($t->wait_for_log(qr/\b\Q$qid\E: removed$/, 5),
	    "$label: the message is removed");
	ok(!grep({ /\b\Q$qid\E: sender non-delivery notification/ }
	    $t->log_lines), "$label: no non-delivery notification");
	my $new = poll_until(sub { all_mail() > $before }, 1.5);
	ok(!$new, "$label: $last");
}

# --- 4. NOTIFY=NEVER on one recipient, default on the other ---------------

{
	my ($r, $qid) = send_msg($SENDER,
	    [ 'quiet@other.example NOTIFY=NEVER', 'loud@other.example' ],
	    'DSN-MIXED');
	reply_is($r, 250, '2.0.0', 'mixed NOTIFY: message accepted');
	my @d = dsns_for('DSN-MIXED', 1, 20);
	is(scalar @d, 1, 'mixed NOTIFY: one DSN');
	my $dsn = $d[0] // '';
	like($dsn, qr/^Final-Recipient:\s*rfc822;\s*loud\@other\.example\s*$/mi,
	    'mixed NOTIFY: it reports loud@');
	unlike($dsn, qr/^Final-Recipient:.*quiet\@other\.example/mi,
	    'mixed NOTIFY: it does not report the NOTIFY=NEVER recipient');
}

# --- 5. a 4xx defers and is retried, then delivered ------------------------

{
	$t->stop('smtp-sink');
	$t->start_smtp_sink(undef, '-r', 'RCPT', '-b', $SOFT);
	my $mark = $t->log_mark;
	my ($r, $qid) = send_msg($SENDER, [ 'soft@other.example' ],
	    'DSN-SOFT');
	reply_is($r, 250, '2.0.0', '4xx: message accepted');
	$qid //= 'NO-QID';
	my $re = qr/\b\Q$qid\E: to=<soft\@other\.example>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, delay=\S+, dsn=4\.3\.0, status=deferred \(.*451 4\.3\.0\b/;
	ok($t->wait_for_log($re, 10, $mark),
	    '4xx: log says dsn=4.3.0, status=deferred (... 451 4.3.0 ...)') or
	    diag("log tail:\n" . $t->log_tail(10));
	my $twice = poll_until(sub {
		(grep { $_ =~ $re } $t->log_lines($mark)) >= 2
	}, 10);
	ok($twice, '4xx: retried (a second deferral after the backoff)') or
	    diag("log of $qid:\n" . join("\n",
	    grep { /\b\Q$qid\E\b/ } $t->log_lines($mark)));
	ok(!grep({ /\b\Q$qid\E: (?:sender non-delivery|to=.*status=bounced)/ }
	    $t->log_lines($mark)), '4xx: no bounce for a temporary failure');

	$t->stop('smtp-sink');
	$t->start_smtp_sink;
	my $got = $t->wait_sink(qr/^Subject: DSN-SOFT$/m, 15);
	ok($got, '4xx: delivered once the next hop accepts');
	ok($t->wait_for_log(qr/\b\Q$qid\E: to=<soft\@other\.example>, .*status=sent \(250\b/, 5),
	    '4xx: status=sent after the retry');
	is(scalar(dsns_for('DSN-SOFT', 1, 0.5)), 0, '4xx: no DSN was sent');
}

# --- 6. expiry: next hop down past maximal_queue_lifetime ------------------

{
	$t->stop('smtp-sink');
	$t->exit_ok('posternd exits 0 on SIGTERM (before the restart)');
	$t->start_posternd(config => { %CONFIG,
	    maximal_queue_lifetime => '2s', bounce_queue_lifetime => '2s' });
	my $mark = $t->log_mark;
	my ($r, $qid) = send_msg($SENDER, [ 'late@other.example' ],
	    'DSN-EXPIRE');
	reply_is($r, 250, '2.0.0', 'expiry: message accepted');
	$qid //= 'NO-QID';
	ok($t->wait_for_log(qr/\b\Q$qid\E: to=<late\@other\.example>, .*status=deferred \(.*connection refused/i, 10, $mark),
	    'expiry: first deferred (connection refused)') or
	    diag("log tail:\n" . $t->log_tail(10));
	ok($t->wait_for_log(qr/\b\Q$qid\E: to=<late\@other\.example>, .*dsn=[45]\.4\.7, status=(?:bounced|expired)\b/, 15, $mark),
	    'expiry: log says dsn=4.4.7 (or 5.4.7) bounced/expired') or
	    diag("log tail:\n" . $t->log_tail(10));
	my @d = dsns_for('DSN-EXPIRE', 1, 15);
	is(scalar @d, 1, 'expiry: one DSN');
	my $dsn = $d[0] // '';
	like($dsn, qr/^Final-Recipient:\s*rfc822;\s*late\@other\.example\s*$/mi,
	    'expiry: Final-Recipient');
	like($dsn, qr/^Action:\s*failed\s*$/mi, 'expiry: Action: failed');
	like($dsn, qr/^Status:\s*[45]\.4\.7\s*$/mi,
	    'expiry: Status: 4.4.7 or 5.4.7');
	ok($t->wait_for_log(qr/\b\Q$qid\E: removed$/, 5, $mark),
	    'expiry: the original is removed');
}

ok($t->is_running, 'posternd still running');
PosternTest->finish_all_ok;

done_testing;

#!/usr/bin/perl
# 06_delivery.t - delivery end to end: a message from a client in
# mynetworks to a remote recipient reaches the relayhost (Postfix's
# smtp-sink) with its envelope, headers (our Received first) and body
# intact, dot-stuffed lines and 8-bit bytes included; a message to a
# mydestination recipient lands in the Maildir; one message with a local
# and a remote recipient goes to both, each only where it belongs; 20
# parallel sessions all arrive; the log has the documented status=sent
# lines.
#
# SPDX-License-Identifier: ISC

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use PosternTest qw(reply_is poll_until simple_message parse_dump
    split_message header_value run_child wait_children);

my $FIXTURES = "$FindBin::Bin/data/delivery";

my $t = PosternTest->new;
$t->start_smtp_sink;
$t->start_posternd(config => { %PosternTest::QUICK_DELIVERY });
my $RELAY_PORT = $t->port('relay');

# --- local helpers ----------------------------------------------------------

# fixture(NAME, SUBJECT) - (header lines, body lines) of a fixture message
# with %SUBJECT% replaced
sub fixture {
	my ($name, $subject) = @_;
	open my $fh, '<:raw', "$FIXTURES/$name" or die "$FIXTURES/$name: $!";
	local $/;
	my $text = <$fh>;
	close $fh;
	$text =~ s/%SUBJECT%/$subject/g;
	my ($head, $body) = split /\n\n/, $text, 2;
	return ([ split /\n/, $head ], [ split /\n/, $body, -1 ]);
}

# wire(HEADER LINES, BODY LINES) - the message as sent after DATA: CRLF
# line ends, dot-stuffed
sub wire {
	my ($h, $b) = @_;
	my @l = (@$h, '', @$b);
	pop @l if @l && $l[-1] eq '';	# the fixture's final newline
	return join '', map { (/^\./ ? ".$_" : $_) . "\r\n" } @l;
}

# sink_by_subject(SUBJECT, TIMEOUT) - the parsed sink dumps whose
# Subject is SUBJECT, polling until at least one is there
sub sink_by_subject {
	my ($subject, $timeout) = @_;
	return map { parse_dump($_) }
	    $t->wait_sink(qr/^Subject: \Q$subject\E$/m, $timeout // 20);
}

# --- 1. remote recipient via the relayhost --------------------------------

my ($h8, $b8) = fixture('message-8bit.eml', 'DELIVERY-REMOTE-8BIT');
my $remote_qid;
{
	my $c = $t->session('smtp');
	my ($r, $qid) = $c->transaction('sender@client.example',
	    [ 'user@other.example' ], wire($h8, $b8), 'BODY=8BITMIME');
	reply_is($r, 250, '2.0.0', qr/queued as/,
	    'remote: 250 2.0.0 queued as ID');
	ok(defined $qid, 'remote: queue ID in the reply') or
	    diag('got: ' . ($r ? $r->{last} : 'nothing'));
	$remote_qid = $qid // 'NO-QID';
	$c->cmd('QUIT');

	my ($d) = sink_by_subject('DELIVERY-REMOTE-8BIT');
	ok($d, 'remote: the message reached smtp-sink');
	$d //= { rcpt => [], head => [], body => '', mail => '' };
	like($d->{mail} // '', qr/^<sender\@client\.example>(\s|$)/,
	    'remote: envelope sender kept (MAIL FROM)');
	like($d->{mail} // '', qr/\bBODY=8BITMIME\b/i,
	    'remote: BODY=8BITMIME passed on to the 8BITMIME next hop');
	is_deeply([ map { (split ' ', $_)[0] } @{ $d->{rcpt} } ],
	    [ '<user@other.example>' ], 'remote: envelope recipient kept');

	# our Received comes first, then the client's headers unchanged
	my @h = @{ $d->{head} };
	my ($ri) = grep { $h[$_] =~ /^Received:/i } 0 .. $#h;
	ok(defined $ri && $h[$ri] =~ /\bby relay\.example\.test\b/ &&
	    $h[$ri] =~ /\[127\.0\.0\.1\]/,
	    'remote: our Received (from [127.0.0.1] by myhostname) is on top')
	    or diag('got headers: ' . join("\n", @h));
	my $fi = (grep { $h[$_] =~ /^From: / } 0 .. $#h)[0];
	ok(defined $ri && defined $fi && $ri < $fi,
	    'remote: Received is prepended, before the original headers');
	my %have = map { $_ => 1 } @h;
	my @missing = grep { !$have{$_} } @$h8;
	ok(!@missing, 'remote: every original header arrives unchanged') or
	    diag("missing: @missing\ngot: " . join("\n", @h));

	my $want = join("\n", @$b8);
	is($d->{body}, $want,
	    'remote: body intact (dot lines, lone dot, 8-bit bytes)');
	my @sl = split /\n/, $d->{body}, -1;
	ok((grep { $_ eq '.' } @sl) == 1 &&
	    (grep { $_ eq '.a line that begins with one dot' } @sl) == 1 &&
	    (grep { $_ eq '..a line that begins with two dots' } @sl) == 1,
	    'remote: dot-stuffing undone once by us, redone to the next hop');
	ok($d->{body} =~ /Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln/,
	    'remote: 8-bit bytes arrive unchanged (no re-encoding)');

	my $l = $t->wait_for_log(qr/\b\Q$remote_qid\E: to=<user\@other\.example>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:$RELAY_PORT, delay=\d+(?:\.\d+)?, dsn=2\.\d+\.\d+, status=sent \(250 .*\)$/, 10);
	ok($l, 'log: to=<...>, relay=127.0.0.1[127.0.0.1]:PORT, delay=, ' .
	    'dsn=2.x.x, status=sent (250 ...)') or
	    diag("log tail:\n" . $t->log_tail(15));
	ok($t->wait_for_log(qr/\b\Q$remote_qid\E: client=\S*\[127\.0\.0\.1\]/,
	    2), 'log: QID: client=...[127.0.0.1]');
	ok($t->wait_for_log(qr/\b\Q$remote_qid\E: from=<sender\@client\.example>, size=\d+, nrcpt=1\b/, 2),
	    'log: QID: from=<...>, size=N, nrcpt=1');
	ok($t->wait_for_log(qr/\b\Q$remote_qid\E: removed$/, 5),
	    'log: QID: removed after delivery');
}

# --- 2. local recipient into the Maildir ----------------------------------

{
	my ($h, $b) = fixture('message-8bit.eml', 'DELIVERY-LOCAL-8BIT');
	my $c = $t->session('smtp');
	my ($r, $qid) = $c->transaction('sender@client.example',
	    [ 'user@example.test' ], wire($h, $b), 'BODY=8BITMIME');
	reply_is($r, 250, '2.0.0', qr/queued as/, 'local: 250 queued');
	$c->cmd('QUIT');

	my @m = $t->wait_maildir('user', 1, 20);
	is(scalar @m, 1, 'local: exactly one file in user/new/') or
	    diag('files: ' . scalar @m);
	my ($mh, $mb) = split_message($m[0] // '');
	is(header_value($mh, 'Subject'), 'DELIVERY-LOCAL-8BIT',
	    'local: Subject');
	my %have = map { $_ => 1 } @$mh;
	my @missing = grep { !$have{$_} } @$h;
	ok(!@missing, 'local: every original header present unchanged') or
	    diag("missing: @missing");
	ok((grep { /^Received:.*\bby relay\.example\.test\b/ } @$mh),
	    'local: our Received header');
	is($mb, join("\n", @$b), 'local: body intact (dots, 8-bit)');
	my $rp = header_value($mh, 'Return-Path');
	ok(!defined $rp || $rp eq '<sender@client.example>',
	    'local: Return-Path, if present, is the envelope sender') or
	    diag("got Return-Path: $rp");
	my $dt = header_value($mh, 'Delivered-To');
	ok(!defined $dt || lc($dt) eq 'user@example.test',
	    'local: Delivered-To, if present, is the recipient') or
	    diag("got Delivered-To: $dt");
	my @tmp = glob $t->path('mail/example.test/user/tmp/*');
	is(scalar @tmp, 0, 'local: nothing left in tmp/');
	ok(-d $t->path('mail/example.test/user/cur'),
	    'local: the Maildir has cur/');
	my $q = $qid // 'NO-QID';
	ok($t->wait_for_log(qr/\b\Q$q\E: to=<user\@example\.test>, relay=\S+, delay=\d+(?:\.\d+)?, dsn=2\.\d+\.\d+, status=sent \(/, 10),
	    'log: status=sent for the Maildir delivery') or
	    diag("log tail:\n" . $t->log_tail(10));
	is(scalar(grep { /^Subject: DELIVERY-LOCAL-8BIT$/m }
	    $t->sink_messages), 0, 'local: nothing went to the relayhost');
}

# --- 3. one message, a local and a remote recipient -----------------------

{
	my $c = $t->session('smtp');
	my ($r, $qid) = $c->transaction('sender@client.example',
	    [ 'multi@example.test', 'far@other.example' ],
	    simple_message('DELIVERY-MULTI', 'sender@client.example',
	    'multi@example.test'));
	reply_is($r, 250, '2.0.0', 'multi: 250 queued');
	$c->cmd('QUIT');
	my @m = grep { /^Subject: DELIVERY-MULTI\r?$/m }
	    $t->wait_maildir('multi', 1, 20);
	is(scalar @m, 1, 'multi: the local recipient got it once');
	my @d = sink_by_subject('DELIVERY-MULTI');
	is(scalar @d, 1, 'multi: the relayhost got it once');
	is_deeply([ map { (split ' ', $_)[0] } @{ ($d[0] // {})->{rcpt} } ],
	    [ '<far@other.example>' ],
	    'multi: only the remote recipient is given to the relayhost');
	my $q = $qid // 'NO-QID';
	ok($t->wait_for_log(qr/\b\Q$q\E: removed$/, 10),
	    'multi: removed once both are done');
	my @sent = grep { /\b\Q$q\E: to=<.*status=sent/ } $t->log_lines;
	is(scalar @sent, 2, 'multi: two status=sent lines') or
	    diag(join "\n", @sent);
}

# --- 4. 20 sessions in parallel -------------------------------------------

{
	my $n = 20;
	my %kid;
	for my $i (1 .. $n) {
		my $to = "p$i\@other.example";
		my $pid = run_child(sub {
			my $c = $t->session('smtp');
			my ($r) = $c->transaction('sender@client.example',
			    [ $to ], simple_message("PARALLEL-$i",
			    'sender@client.example', $to));
			$c->cmd('QUIT');
			$r && $r->{code} == 250;
		});
		$kid{$pid} = $i;
	}
	my $status = wait_children(\%kid, 30);
	my @failed = grep { ($status->{$_} // -1) != 0 } 1 .. $n;
	ok(!@failed, "parallel: all $n sessions got 250") or
	    diag("failed: @failed");

	my %seen;
	poll_until(sub {
		%seen = ();
		for ($t->sink_messages) {
			$seen{$1}++ if /^Subject: PARALLEL-(\d+)$/m;
		}
		return keys(%seen) >= $n;
	}, 30);
	my @missing = grep { !$seen{$_} } 1 .. $n;
	ok(!@missing, "parallel: all $n messages arrived at the relayhost")
	    or diag("missing: @missing");
	my @dup = grep { ($seen{$_} // 0) > 1 } 1 .. $n;
	ok(!@dup, 'parallel: none arrived twice (no crash, no re-send)') or
	    diag("duplicates: @dup");
	my @sent = grep { /: to=<p\d+\@other\.example>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:$RELAY_PORT, delay=\S+, dsn=2\.\d+\.\d+, status=sent \(250\b/ }
	    $t->log_lines;
	is(scalar @sent, $n, "parallel: $n status=sent log lines");
}

# --- the daemon is still healthy, then stops cleanly ----------------------

ok($t->is_running, 'posternd still running');
PosternTest->finish_all_ok;

done_testing;

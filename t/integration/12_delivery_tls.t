#!/usr/bin/perl
# 12_delivery_tls.t - the outbound SMTP client's STARTTLS and connection
# cache, end to end with two posternd instances on loopback: a sender A
# whose relayhost is a next hop B (a second posternd that offers STARTTLS
# and delivers example.net into a Maildir), and Postfix's smtp-sink as a
# next hop without TLS.
#
#   may      -> B: STARTTLS used (B's Received says ESMTPS and the TLS
#                  version; B logs the TLS connection); A logs status=sent
#   encrypt  -> B: the same
#   none     -> B: plaintext (B's Received says ESMTP, no TLS comment)
#   encrypt  -> smtp-sink: deferred with a TLS reason, nothing sent
#   may      -> smtp-sink: sent in clear
#   10 messages in a row through A: all arrive, B sees fewer connections
#                  than messages (connection cache)
#
# Every sender is a fresh instance with its own spool, so a message that
# one case leaves deferred is never delivered by the next one.
#
# SPDX-License-Identifier: ISC

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Time::HiRes qw(time sleep);
use PosternTest qw(reply_is poll_until split_message header_value
    like_diag);

# --- local helpers ----------------------------------------------------------

my $FROM = 'sender@client.example';

# first_received(MESSAGE) - the topmost Received field, unfolded
sub first_received {
	my ($msg) = @_;
	return header_value((split_message($msg))[0], 'Received') // '';
}

# --- the next hop B -----------------------------------------------------

my $B = PosternTest->instance(name => 'B', config => {
	myhostname => 'nexthop.example.net',
	mydestination => 'example.net',
	relayhost => undef,
});
my $PORT_B = $B->port('smtp');
my $RELAY_B = "[127.0.0.1]:$PORT_B";
my $RELAY_B_LOG = qr/relay=127\.0\.0\.1\[127\.0\.0\.1\]:\Q$PORT_B\E,/;

# to_b(LEVEL, SUBJECT) - a sender A at smtp_tls_security_level LEVEL
# (default when undef) sends one message to B; returns (B's copy, B's log
# line about the TLS connection)
sub to_b {
	my ($level, $subject) = @_;
	my %lvl = defined $level ? (smtp_tls_security_level => $level) : ();
	my $a = PosternTest->instance(name => "A($subject)",
	    config => { relayhost => $RELAY_B, %lvl });
	my $bmark = $B->log_mark;
	my $qid = $a->send_ok($FROM, 'user@example.net', $subject);
	my $sent = $a->wait_status($qid, 'sent');
	like_diag($sent, qr/$RELAY_B_LOG.*dsn=2\.0\.0, status=sent \(250 /,
	    "$subject: A logs status=sent with relay=127.0.0.1[127.0.0.1]:"
	    . "PORT_B", $a->log_tail(15));
	my ($m) = $B->wait_message('user', qr/^Subject: \Q$subject\E\r?$/m,
	    10, 'example.net');
	ok(defined $m, "$subject: in B's Maildir")
	    or diag($B->log_tail(15));
	my $tls = $B->wait_for_log(
	    qr/TLS connection established from \S+\[127\.0\.0\.1\]/, 1,
	    $bmark);
	$a->cleanup;	# posternd's exit is checked at the end
	return ($m // '', $tls);
}

# --- STARTTLS to the next hop -----------------------------------------------

for my $case ([ 'may (default)', undef ], [ 'encrypt', 'encrypt' ]) {
	my ($label, $level) = @$case;
	(my $subject = "tls-$label") =~ s/\W+/-/g;
	$subject =~ s/-+\z//;
	my ($m, $tls) = to_b($level, $subject);
	my $rcvd = first_received($m);
	like_diag($rcvd, qr/\bby nexthop\.example\.net \(Postern\)/,
	    "$label: the topmost Received is B's", $rcvd);
	like_diag($rcvd,
	    qr/\(using TLSv1\.[23] with cipher \S+ \(\d+\/\d+ bits\)\)/,
	    "$label: B's Received names the TLS version and cipher", $rcvd);
	like_diag($rcvd, qr/\bwith ESMTPS id \w+/,
	    "$label: B's Received says ESMTPS", $rcvd);
	like_diag($tls, qr/: TLSv1\.[23] with cipher /,
	    "$label: B logs the TLS connection from A", $B->log_tail(15));
}

{
	my ($m, $tls) = to_b('none', 'tls-none');
	my $rcvd = first_received($m);
	like_diag($rcvd,
	    qr/\bby nexthop\.example\.net \(Postern\) with ESMTP id \w+/,
	    'none: B\'s Received says ESMTP (no S)', $rcvd);
	unlike($rcvd, qr/\(using TLS/, 'none: no TLS comment in B\'s Received');
	ok(!defined $tls, 'none: B logs no TLS connection')
	    or diag("got: $tls");
}

# --- a next hop without STARTTLS (smtp-sink) --------------------------------

{
	my $a = PosternTest->instance(name => 'A(encrypt, sink)', sink => 1,
	    config => { smtp_tls_security_level => 'encrypt' });
	my $sink = $a->port('relay');
	my $qid = $a->send_ok($FROM, 'user@example.net', 'encrypt-sink');
	my $def = $a->wait_status($qid, 'deferred');
	like_diag($def, qr/relay=127\.0\.0\.1\[127\.0\.0\.1\]:\Q$sink\E,
	    .*dsn=4\.7\.\d+,\ status=deferred\ \(.*(?:TLS|STARTTLS)/x,
	    'encrypt, next hop without STARTTLS: deferred with a TLS reason',
	    $a->log_tail(15));
	note("A: $def") if $def;
	# the retries (1 s apart) must not give in either
	sleep 2.5;
	my @sent = grep { /\Q$qid\E: .*status=sent/ } $a->log_lines;
	is(scalar @sent, 0, 'encrypt: never sent in clear (log)')
	    or diag(join "\n", @sent);
	my @msgs = grep { /encrypt-sink/ } $a->sink_messages;
	is(scalar @msgs, 0, 'encrypt: smtp-sink received no message');
	$a->cleanup;	# posternd's exit is checked at the end
}

{
	my $a = PosternTest->instance(name => 'A(may, sink)', sink => 1,
	    config => { smtp_tls_security_level => 'may' });
	my $sink = $a->port('relay');
	my $qid = $a->send_ok($FROM, 'user@example.net', 'may-sink');
	my $sent = $a->wait_status($qid, 'sent');
	like_diag($sent,
	    qr/relay=127\.0\.0\.1\[127\.0\.0\.1\]:\Q$sink\E, .*status=sent/,
	    'may, next hop without STARTTLS: sent in clear', $a->log_tail(15));
	my @msgs = $a->wait_sink(qr/^Subject: may-sink\r?$/m, 5);
	is(scalar @msgs, 1, 'may: smtp-sink received the message');
	$a->cleanup;	# posternd's exit is checked at the end
}

# --- connection reuse -----------------------------------------------------

{
	my $N = 10;
	my $a = PosternTest->instance(name => 'A(reuse)', config => {
		relayhost => $RELAY_B,
		default_destination_concurrency_limit => 2,
		smtp_connection_cache_time_limit => '10s',
	});
	my $bmark = $B->log_mark;
	my $before = () = $B->maildir_messages('user', 'example.net');
	# one session, N transactions in quick succession
	my $c = $a->session('smtp');
	my @qids;
	for my $i (1 .. $N) {
		my ($r, $qid) = $c->send_simple($FROM, 'user@example.net',
		    "reuse-$i");
		push @qids, $qid if $r && $r->{code} == 250;
	}
	$c->cmd('QUIT');
	$c->close;
	is(scalar @qids, $N, "reuse: A accepted $N messages");
	my @got = $B->wait_maildir('user', $before + $N, 20, 'example.net');
	my @reuse = grep { /^Subject: reuse-\d+\r?$/m } @got;
	is(scalar @reuse, $N, "reuse: all $N messages in B's Maildir");
	my $esmtps = grep { first_received($_) =~ /\bwith ESMTPS id / }
	    @reuse;
	is($esmtps, scalar @reuse, 'reuse: every one came over TLS');
	my $nsent = 0;
	poll_until(sub {
		$nsent = grep { /status=sent/ } map {
			my $q = $_;
			grep { /\Q$q\E: to=/ } $a->log_lines
		} @qids;
		return $nsent >= $N;
	}, 5);
	is($nsent, $N, "reuse: A logs $N status=sent lines");
	my $conns = grep { /\bconnect from \S+\[127\.0\.0\.1\]/ }
	    $B->log_lines($bmark);
	note("B saw $conns connection(s) for $N messages");
	ok($conns > 0 && $conns < $N,
	    "reuse: B saw fewer connections than messages ($conns < $N)")
	    or diag("connect from lines in B's log: $conns\n" .
	    join("\n", grep { /connect from/ } $B->log_lines($bmark)));
	$a->cleanup;	# posternd's exit is checked at the end
}

# --- sanitizers and clean exits ----------------------------------------------

PosternTest->finish_all_ok;

done_testing;

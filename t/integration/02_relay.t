#!/usr/bin/perl
# 02_relay.t - open-relay prevention: every classic way of sneaking a
# remote recipient past a relay, from a client outside mynetworks, must
# get "554 5.7.1 ... Relay access denied" (or a 5xx syntax reject where
# the address itself is invalid); local recipients in every spelling are
# accepted; an authenticated client and a client in mynetworks may relay.
#
# SPDX-License-Identifier: ISC

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use PosternTest qw(reply_is);

my $t = PosternTest->new;
$t->start_smtp_sink;
$t->start_posternd;

my $SENDER = 'sender@client.example';

# rcpt(ENV, KIND, ADDRESS) - a new session: EHLO, MAIL, RCPT TO:<ADDRESS>;
# returns (reply to MAIL, reply to RCPT, client)
sub rcpt {
	my ($env, $kind, $addr) = @_;
	my $c = $env->session($kind);
	my $m = $c->cmd("MAIL FROM:<$SENDER>");
	my $r = $c->cmd("RCPT TO:<$addr>");
	return ($m, $r, $c);
}

# syntactically valid addresses that point outside example.test:
# 554 5.7.1 Relay access denied, nothing else
my @relay = (
	'user@other.example',
	'USER@OTHER.EXAMPLE',
	'User@Other.Example',
	'user@other.example.',
	'user%other.example@example.test',
	'USER%OTHER.EXAMPLE@EXAMPLE.TEST',
	'user%other.example@example.test.',
	'other.example!user@example.test',
	'OTHER.EXAMPLE!user@Example.Test',
	'"user@other.example"@example.test',
	'"user%other.example"@example.test',
	'"user%other"@example.test',
	'"other.example!user"@example.test',
	'user@[127.0.0.1]',
	'user@[192.0.2.1]',
	'user@[IPv6:::1]',
	'user@[IPv6:0:0:0:0:0:0:0:1]',
	'user@EXAMPLE.TEST.evil.example',
	'user@example.test.evil.example',
	'user@evil.example.test',
	'user@Evil.Example.TEST',
	'user@xexample.test',
	'user@example.testx',
);

# forms RFC 5321 obsoletes or forbids: a relay reject or a syntax reject
# (5xx with 5.1.x or 5.5.x), never acceptance
my @relay_or_syntax = (
	'@example.test:user@other.example',
	'@EXAMPLE.TEST:user@other.example',
	'@example.test,@other.example:user@other.example',
	'"user@other.example"',
	'user@other.example@example.test',
	'user@example.test@other.example',
	'user@[127.0.0.1',
	'user@example.test..',
	'user@.example.test',
	"user\@example.test\tother.example",
);

for my $a (@relay) {
	my ($m, $r) = rcpt($t, 'smtp', $a);
	reply_is($m, 250, undef, "MAIL before RCPT <$a>");
	reply_is($r, 554, '5.7.1', qr/Relay access denied/,
	    "<$a>: 554 5.7.1 Relay access denied");
}

for my $a (@relay_or_syntax) {
	my ($m, $r) = rcpt($t, 'smtp', $a);
	my $ok = $r && (
	    ($r->{code} == 554 && $r->{ecode} eq '5.7.1' &&
	    $r->{text} =~ /Relay access denied/) ||
	    ($r->{code} =~ /^5(01|50|53)$/ && $r->{ecode} =~ /^5\.[15]\.\d+$/));
	ok($ok, "<$a>: relay or syntax reject") or diag('got: ' .
	    ($r ? $r->{last} : '(nothing)') . "\nwant: 554 5.7.1 Relay " .
	    'access denied or 501/550/553 5.1.x/5.5.x');
}

# local recipients in every legitimate spelling
my @local = (
	'user@example.test',
	'USER@Example.Test',
	'user@EXAMPLE.TEST',
	'user@example.test.',
	'postmaster',
	'Postmaster',
	'postmaster@example.test',
	'POSTMASTER@EXAMPLE.TEST',
);
for my $a (@local) {
	my ($m, $r) = rcpt($t, 'smtp', $a);
	reply_is($r, 250, qr/^2\.1\.5$/, "<$a>: accepted (local)");
}

# the reject is logged in the form mail administrators grep for
{
	my $mark = $t->log_mark;
	my ($m, $r, $c) = rcpt($t, 'smtp', 'victim@other.example');
	reply_is($r, 554, '5.7.1', 'relay attempt for the log');
	my $l = $t->wait_for_log(qr/NOQUEUE: reject: RCPT from \S*\[127\.0\.0\.1\]: 554 5\.7\.1 <victim\@other\.example>: Relay access denied; from=<\Q$SENDER\E> to=<victim\@other\.example>/,
	    5, $mark);
	ok(defined $l, 'log: NOQUEUE: reject: RCPT from ...: 554 5.7.1 ' .
	    '<...>: Relay access denied; from=<...> to=<...>') or
	    diag("log:\n" . $t->log_tail(10));

	# the session goes on, and a rejected recipient is no recipient
	reply_is($c->cmd('DATA'), qr/^(503|554)$/, undef,
	    'DATA with only rejected recipients is refused');
	reply_is($c->cmd('RSET'), 250, undef, 'RSET after the reject');
}

# TLS alone does not authorize relaying (smtps, no AUTH)
{
	my ($m, $r) = rcpt($t, 'smtps', 'user@other.example');
	if ($m && $m->{code} == 530) {
		reply_is($m, 530, '5.7.0', 'smtps without AUTH: MAIL 530');
	} else {
		reply_is($r, 554, '5.7.1', qr/Relay access denied/,
		    'smtps without AUTH: relay denied');
	}
}

# an authenticated client may relay (submission after STARTTLS)
{
	my $c = $t->session('submission');
	reply_is($c->starttls, 220, undef, 'submission STARTTLS');
	ok($c->tls_ok, 'TLS handshake');
	reply_is(scalar $c->ehlo, 250, undef, 'EHLO after TLS');
	reply_is($c->auth_plain('alice', $PosternTest::USERS{alice}{password}),
	    235, '2.7.0', 'AUTH PLAIN alice');
	reply_is($c->cmd('MAIL FROM:<alice@example.test>'), 250, undef,
	    'authenticated MAIL');
	reply_is($c->cmd('RCPT TO:<user@other.example> NOTIFY=FAILURE '
	    . 'ORCPT=rfc822;first+2Blast@other.example'), 250, undef,
	    'authenticated client may relay to user@other.example');
	reply_is($c->cmd('RCPT TO:<user@example.test>'), 250, undef,
	    'and to a local user');
	my $r = $c->data("Subject: auth relay\r\n\r\nAUTH-RELAY-MARKER\r\n");
	reply_is($r, 250, '2.0.0', qr/queued as/, 'relayed message queued');
	$c->cmd('QUIT');
	my ($got) = $t->wait_sink(qr/AUTH-RELAY-MARKER/, 20);
	ok($got, 'relayed message reached the relayhost (smtp-sink)');
	like($got // '', qr/^X-Rcpt-Args: <user\@other\.example>/m,
	    'relayhost got RCPT TO:<user@other.example>');
	# the spool keeps ORCPT decoded; it is xtext-encoded once on the way
	like($got // '', qr/^X-Rcpt-Args:\ <user\@other\.example>\ NOTIFY=FAILURE
	    \ ORCPT=rfc822;first\+2Blast\@other\.example$/mx,
	    'relayhost got NOTIFY= and ORCPT= as the client sent them');
	unlike($got // '', qr/^X-Rcpt-Args: <user\@example\.test>/m,
	    'the local recipient was not sent to the relayhost');
}

# control: a client inside mynetworks may relay, so the rejects above
# come from the relay policy and not from a daemon that refuses everything
{
	my $t2 = PosternTest->new(name => 'mynetworks control');
	$t2->start_posternd(config => { mynetworks => '127.0.0.0/8' });
	my ($m, $r) = rcpt($t2, 'smtp', 'user@other.example');
	reply_is($r, 250, undef, 'client in mynetworks may relay');
	$t2->stop;	# its exit is checked at the end
}

ok($t->is_running, 'posternd still running');
PosternTest->finish_all_ok;
done_testing;

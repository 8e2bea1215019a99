#!/usr/bin/perl
# 25_policy_listener.t - posternd's `policy` listener: Postfix's
# check_policy_service asking Postern's relay, sender, SPF and limit
# policies.
#
# (a) The raw protocol from a Perl client: relay refused for a client
#     outside Postern's mynetworks to a foreign domain, allowed for
#     mynetworks and for sasl_username; a login sending as another's
#     address refused; SPF fail (dnsmasq publishes a record that leaves
#     the client out) -> 550 5.7.23; SPF pass -> PREPEND Received-SPF,
#     once per message (instance); size over message_size_limit;
#     several requests on one connection, pipelined, answered in order;
#     malformed and oversized requests close the connection and posternd
#     still serves SMTP and policy; a client outside
#     policy_listen_clients is refused.
# (b) A real Postfix (t/lib/PostfixTest.pm) with
#     smtpd_recipient_restrictions = check_policy_service ..., relaying to
#     smtp-sink: a refused relay and an SPF fail come back as Postfix's
#     reply with our text, an allowed message reaches the sink.
# (c) posternd stopped: Postfix answers 451 4.3.5 (its
#     smtpd_policy_service_default_action); started again: works again.
# (b) and (c) need root for Postfix's master: skipped otherwise.
#
# SPDX-License-Identifier: ISC

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use IO::Socket::IP;
use Test::More;
use Time::HiRes qw(time sleep);
use PosternTest qw(poll_until like_diag);

my $t = PosternTest->new;
my $PPORT = $t->port('policy');
my $dns = $t->start_dnsmasq(
    'local=/test/',
    'txt-record=spf-fail.test,"v=spf1 ip4:192.0.2.1 -all"',
    'txt-record=spf-pass.test,"v=spf1 ip4:127.0.0.0/8 ip4:203.0.113.0/24 -all"',
);
$t->start_smtp_sink;

my %CONF = (
	listen => 'smtp/127.0.0.1:' . $t->port('smtp') .
	    " policy/127.0.0.1:$PPORT",
	# 127.0.0.1 (Postfix, below) is not in Postern's mynetworks
	mynetworks => '192.0.2.0/24',
	smtpd_filters => 'relay, sender, spf',
	smtpd_sender_login_maps => 'inline:{ alice@example.test=alice }',
	dns_resolver => "127.0.0.1\@$dns",
	spf_timeout => '5s',
	policy_listen_clients => '127.0.0.1/32',
	policy_listen_idle_timeout => '60s',
);
$t->start_posternd(config => \%CONF);

# --- a policy client -------------------------------------------------------

sub pconnect {
	my (%o) = @_;
	return IO::Socket::IP->new(PeerHost => '127.0.0.1',
	    PeerPort => $PPORT, Proto => 'tcp', Timeout => 5, %o);
}

# request(%attrs) - the text of one request with Postfix's attributes
sub request {
	my (%a) = @_;
	my %base = (request => 'smtpd_access_policy', protocol_state => 'RCPT',
	    protocol_name => 'ESMTP', client_address => '203.0.113.9',
	    client_name => 'unknown', helo_name => 'client.test',
	    sender => 'someone@outside.test', recipient => 'x@example.com',
	    recipient_count => 0, queue_id => '', instance => 'a.b.c.' .
	    int(rand(1e9)), size => 0, sasl_method => '',
	    sasl_username => '', encryption_protocol => '');
	%base = (%base, %a);
	return join('', map { "$_=$base{$_}\n" } sort keys %base) . "\n";
}

# read_answer(SOCK) - the action of one answer, undef on EOF/timeout
sub read_answer {
	my ($s) = @_;
	my ($action, $line);
	my $deadline = time + 10;
	local $SIG{ALRM} = sub { die "timeout\n" };
	my $ok = eval {
		alarm 10;
		while (defined($line = <$s>)) {
			last if $line eq "\n";
			$action = $1 if $line =~ /^action=(.*)\n/;
		}
		alarm 0;
		1;
	};
	alarm 0;
	return undef unless $ok && defined $line;
	return $action;
}

# ask(%attrs) - one request on a new connection: the action
sub ask {
	my $s = pconnect() or return "connect: $!";
	print $s request(@_);
	my $a = read_answer($s);
	close $s;
	return $a;
}

# closed_ok(SOCK, NAME) - the server closed without an answer
sub closed_ok {
	my ($s, $name) = @_;
	my $buf = '';
	my $err;
	my $n = eval {
		local $SIG{ALRM} = sub { die "timeout\n" };
		alarm 10;
		my $r = sysread($s, $buf, 100);
		$err = $!;
		alarm 0;
		$r;
	};
	# a close with unread input is a reset: also closed
	ok((defined $n && $n == 0) || (!defined $n && !$@ &&
	    $err =~ /reset/i), $name) or diag("got '$buf' " .
	    ($@ || $err // ''));
}

# --- (a) the raw protocol -------------------------------------------------

my $mark = $t->log_mark;
like_diag(ask(), qr/^554 5\.7\.1 <x\@example\.com>: Relay access denied$/,
    'relay: outside client to a foreign domain refused', $t->log_tail(10));
ok($t->wait_for_log(qr/NOQUEUE: reject: RCPT from unknown\[203\.0\.113\.9\]: 554 5\.7\.1 .*from=<someone\@outside\.test> to=<x\@example\.com> .*filter=relay stage=rcpt listener=policy/,
    5, $mark), 'relay: reject logged with client, sender and filter')
    or diag($t->log_tail(10));
is(ask(client_address => '192.0.2.7'), 'DUNNO',
    'relay: mynetworks client allowed (DUNNO, not OK)');
like(ask(recipient => 'bob@example.test'),
    qr/^(?:DUNNO|PREPEND Received-SPF: none .*)$/i,
    'relay: our domain allowed from outside (SPF none)');
like(ask(sasl_method => 'PLAIN', sasl_username => 'alice',
    sender => 'alice@example.test'), qr/^(?:DUNNO|PREPEND .*)$/,
    'relay: sasl_username allowed');
like_diag(ask(sasl_method => 'PLAIN', sasl_username => 'alice',
    sender => 'bob@example.test', client_address => '192.0.2.7'),
    qr/^553 5\.7\.1 <bob\@example\.test>: Sender address rejected: not owned by user alice$/,
    'sender: alice sending as bob@ refused', $t->log_tail(5));

like_diag(ask(sender => 'u@spf-fail.test', recipient => 'bob@example.test'),
    qr/^550 5\.7\.23 SPF fail/, 'spf: fail for the client address',
    $t->log_tail(10));
my $inst = 'spf.pass.' . int(rand(1e9));
my $s = pconnect();
print $s request(sender => 'u@spf-pass.test', recipient => 'bob@example.test',
    instance => $inst);
my $a1 = read_answer($s);
like_diag($a1, qr/^PREPEND Received-SPF: Pass \(/i,
    'spf: pass gives a Received-SPF PREPEND', $t->log_tail(10));
like($a1 // '', qr/client-ip=203\.0\.113\.9/, 'spf: ... for the client');
print $s request(sender => 'u@spf-pass.test', recipient => 'carol@example.test',
    instance => $inst);
is(read_answer($s), 'DUNNO', 'spf: no second PREPEND for the same message');
close $s;

like(ask(protocol_state => 'END-OF-MESSAGE', client_address => '192.0.2.7',
    recipient_count => 1, size => 20000000, recipient => 'x@example.com'),
    qr/^552 5\.3\.4 Message size exceeds fixed limit$/,
    'limits: size over message_size_limit');
is(ask(protocol_state => 'DATA', client_address => '192.0.2.7',
    recipient_count => 101), '452 4.5.3 Error: too many recipients',
    'limits: recipient_count over smtpd_recipient_limit');

# several requests on one connection, all written before reading
$s = pconnect();
print $s request(), request(client_address => '192.0.2.7'),
    request(sender => 'u@spf-fail.test', recipient => 'bob@example.test'),
    request(recipient => 'y@example.org');
my @ans = map { read_answer($s) } 1 .. 4;
like($ans[0] // '', qr/^554 5\.7\.1 <x\@example\.com>/, 'pipelined: 1st');
is($ans[1], 'DUNNO', 'pipelined: 2nd');
like($ans[2] // '', qr/^550 5\.7\.23/, 'pipelined: 3rd (through the pool)');
like($ans[3] // '', qr/^554 5\.7\.1 <y\@example\.org>/, 'pipelined: 4th');
# and one more after a pause on the same connection
print $s request(client_address => '192.0.2.7');
is(read_answer($s), 'DUNNO', 'one connection, a later request');
close $s;

# malformed and oversized requests
$mark = $t->log_mark;
$s = pconnect();
print $s "request=smtpd_access_policy\nthis line has no equals sign\n\n";
closed_ok($s, 'malformed: connection closed without an answer');
ok($t->wait_for_log(qr/policy: malformed request from 127\.0\.0\.1: attribute without '='/,
    5, $mark), 'malformed: logged');
$s = pconnect();
print $s request(), "request=smtpd_access_policy\nsender=" . ('x' x 5000);
is(read_answer($s) =~ /^554/ ? 'answered' : 'no', 'answered',
    'oversized: the request before it is answered');
closed_ok($s, 'oversized line: connection closed');
$s = pconnect();
print $s "request=smtpd_access_policy\n" . ("a=b\n" x 70) . "\n";
closed_ok($s, 'too many attributes: connection closed');
$s = pconnect();
print $s "GET / HTTP/1.0\r\n\r\n";
closed_ok($s, 'HTTP: connection closed');
$s = pconnect();
syswrite $s, "request=smtpd_access_policy\0\n\n";
closed_ok($s, 'NUL byte: connection closed');
$t->serves_ok('after garbage: posternd still serves SMTP');
is(ask(client_address => '192.0.2.7'), 'DUNNO',
    'after garbage: and policy');

# a client outside policy_listen_clients (127.0.0.1/32 here)
$mark = $t->log_mark;
$s = pconnect(LocalHost => '127.0.0.2');
if ($s) {
	print $s request();
	closed_ok($s, 'client 127.0.0.2 outside policy_listen_clients closed');
	ok($t->wait_for_log(qr/policy: connection from 127\.0\.0\.2 refused: not in policy_listen_clients/,
	    5, $mark), 'refused client logged');
} else {
	fail("connect from 127.0.0.2: $!") for 1 .. 2;
}

# --- (b), (c): a real Postfix asking posternd ----------------------------

SKIP: {
	require PostfixTest;
	my $why = PostfixTest->unusable;
	skip "Postfix: $why", 12 if $why;

	my $pf = PostfixTest->new(dir => $t->dir,
	    sink_port => $t->port('relay'), main => {
		smtpd_recipient_restrictions => "check_policy_service " .
		    "inet:127.0.0.1:$PPORT, permit_mynetworks, reject",
		smtpd_policy_service_timeout => '10s',
		smtpd_policy_service_max_idle => '20s',
		smtpd_policy_service_retry_delay => '1s',
	});
	$pf->start;

	# smtp(FROM, RCPT, DATA?) - the replies of one session with Postfix:
	# (rcpt reply, final reply)
	my $smtp = sub {
		my ($from, $rcpt, $data) = @_;
		my $c = IO::Socket::IP->new(PeerHost => '127.0.0.1',
		    PeerPort => $pf->port, Proto => 'tcp', Timeout => 10)
		    or return ("connect: $!");
		my $read = sub {
			my $r = '';
			while (my $l = <$c>) {
				$r .= $l;
				last if $l =~ /^\d{3} /;
			}
			$r =~ s/\r?\n\z//;
			return $r;
		};
		my $cmd = sub { print $c "$_[0]\r\n"; return $read->() };
		$read->();
		$cmd->('EHLO client.test');
		$cmd->("MAIL FROM:<$from>");
		my $rr = $cmd->("RCPT TO:<$rcpt>");
		my $fin;
		if ($data && $rr =~ /^250/) {
			$cmd->('DATA');
			$fin = $cmd->("From: <$from>\r\nTo: <$rcpt>\r\n" .
			    "Subject: $data\r\n\r\nhello\r\n.");
		}
		$cmd->('QUIT');
		close $c;
		return ($rr, $fin);
	};

	my ($rr) = $smtp->('a@outside.test', 'x@example.com');
	like_diag($rr, qr/^554 5\.7\.1 .*Relay access denied/,
	    'postfix: relay refused with our text', $pf->log_tail(10));
	($rr) = $smtp->('u@spf-fail.test', 'bob@example.test');
	like_diag($rr, qr/^550 5\.7\.23 .*SPF fail/,
	    'postfix: SPF fail refused with our reply', $pf->log_tail(10));
	my ($r2, $fin) = $smtp->('u@spf-pass.test', 'bob@example.test',
	    'policy-allowed');
	like($r2, qr/^250/, 'postfix: allowed recipient accepted');
	like($fin // '', qr/^250/, 'postfix: message queued');
	my @m = $t->wait_sink(qr/Subject: policy-allowed/, 20);
	ok(@m == 1, 'postfix: the allowed message reached the sink')
	    or diag($pf->log_tail(20));
	like($m[0] // '', qr/^Received-SPF: Pass /mi,
	    'postfix: our Received-SPF PREPEND is in the message');

	# (c) posternd stopped: Postfix's own default action
	my $st = $t->stop;
	ok(defined $st && $st == 0, 'posternd exits 0 with Postfix connected')
	    or diag($t->log_tail(20));
	my $t0 = time;
	($rr) = $smtp->('a@outside.test', 'bob@example.test');
	like_diag($rr, qr/^451 4\.3\.5 /,
	    'postfix without posternd: 451 4.3.5', $pf->log_tail(10));
	ok(time - $t0 < 30, 'postfix without posternd: answered in time');
	$t->start_posternd(config => \%CONF);
	($rr) = $smtp->('a@outside.test', 'x@example.com');
	like_diag($rr, qr/^554 5\.7\.1 .*Relay access denied/,
	    'posternd restarted: refused again', $pf->log_tail(10));
	($rr) = $smtp->('a@outside.test', 'bob@example.test');
	like($rr, qr/^250/, 'posternd restarted: allowed again');
	$pf->stop;
	ok(!$pf->running, 'postfix stopped');
}

PosternTest->finish_all_ok;
done_testing;

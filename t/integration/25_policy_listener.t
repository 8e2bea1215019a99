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
#     once per message (instance); SPF checked once per message, not
#     per recipient (dnsmasq's query log: one TXT query for three RCPT
#     requests of an instance, a second one for the next instance);
#     size over message_size_limit;
#     several requests on one connection, pipelined, answered in order;
#     malformed and oversized requests close the connection and posternd
#     still serves SMTP and policy; a client outside
#     policy_listen_clients is refused; a client that pipelines requests
#     without reading the answers makes posternd stop reading (its
#     writes stall, posternd's memory stays put) and gets every answer
#     once it reads; a client that half-closes (shutdown(SHUT_WR))
#     after its requests gets every complete one answered, then EOF.
# (b) A real Postfix (t/lib/PostfixTest.pm) with
#     smtpd_recipient_restrictions = check_policy_service ..., relaying to
#     smtp-sink: a refused relay and an SPF fail come back as Postfix's
#     reply with our text, an allowed message reaches the sink.
# (c) posternd stopped: Postfix answers 451 4.3.5 (its
#     smtpd_policy_service_default_action); started again: works again.
# (d) posternd again with smtpd_recipient_limit = 3,
#     policy_listen_idle_timeout = 3s, policy_listen_max_connections = 3:
#     the recipient limit counted per instance over the RCPTs let through
#     (Postfix sends recipient_count=0 at RCPT), 452 4.5.3 at the 4th, not
#     applied at DATA/END-OF-MESSAGE; the 4th connection refused and
#     logged; a request trickled a byte at a time is closed at its
#     deadline while one complete request a second keeps a connection; a
#     client that never reads its answers is closed.
# (b) and (c) need root for Postfix's master: skipped otherwise.
#
# SPDX-License-Identifier: ISC

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use IO::Socket::IP;
use IO::Handle;
use Socket qw(PF_INET SOCK_STREAM SOL_SOCKET SO_RCVBUF inet_aton
    pack_sockaddr_in);
use Errno qw(EAGAIN EWOULDBLOCK);
use Test::More;
use Time::HiRes qw(time sleep);
use PosternTest qw(poll_until like_diag);

my $t = PosternTest->new;
my $PPORT = $t->port('policy');
my $dns = $t->start_dnsmasq(
    'local=/test/',
    'txt-record=spf-fail.test,"v=spf1 ip4:192.0.2.1 -all"',
    'txt-record=spf-pass.test,"v=spf1 ip4:127.0.0.0/8 ip4:203.0.113.0/24 -all"',
    'txt-record=spf-once.test,"v=spf1 ip4:203.0.113.0/24 -all"',
    'txt-record=spf-once-fail.test,"v=spf1 ip4:192.0.2.1 -all"',
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

# one SPF check per message: Postfix asks once per recipient with the same
# instance, sender, client and helo; dnsmasq logs every query it gets
# (log-queries), and the records have TTL 0, so nothing is cached on the
# way: a TXT query for the domain is an SPF check
sub spf_checks {
	my ($domain) = @_;
	open(my $f, '<', $t->path('dnsmasq.log')) or return -1;
	return scalar grep { /query\[TXT\] \Q$domain\E from / } <$f>;
}
{
	my $s = pconnect();
	my @a;
	for my $r (qw(bob carol dave)) {
		print $s request(sender => 'u@spf-once.test',
		    recipient => "$r\@example.test", instance => 'once.1');
		push @a, read_answer($s);
	}
	like_diag($a[0], qr/^PREPEND Received-SPF: Pass /i,
	    'spf once: the 1st recipient checked, PREPEND', $t->log_tail(5));
	is_deeply([@a[1, 2]], ['DUNNO', 'DUNNO'],
	    'spf once: the 2nd and 3rd DUNNO');
	is(spf_checks('spf-once.test'), 1,
	    'spf once: one check for three RCPT requests of one instance');
	print $s request(sender => 'u@spf-once.test',
	    recipient => 'bob@example.test', instance => 'once.2');
	like(read_answer($s) // '', qr/^PREPEND Received-SPF: Pass /i,
	    'spf once: a new instance: PREPEND again');
	is(spf_checks('spf-once.test'), 2,
	    'spf once: two checks for two instances');
	# a refusal is kept as well: three 550s, one check
	@a = ();
	for my $r (qw(bob carol dave)) {
		print $s request(sender => 'u@spf-once-fail.test',
		    recipient => "$r\@example.test", instance => 'once.3');
		push @a, read_answer($s) // '';
	}
	is(scalar(grep { /^550 5\.7\.23 SPF fail/ } @a), 3,
	    'spf once: a fail answers every recipient') or diag("@a");
	is(spf_checks('spf-once-fail.test'), 1,
	    'spf once: ... with one check');
	# the same instance from another client address is not the same
	print $s request(sender => 'u@spf-once.test', client_address =>
	    '203.0.113.10', recipient => 'bob@example.test',
	    instance => 'once.2');
	# (the message got its PREPEND already: one per instance)
	is(read_answer($s), 'DUNNO', 'spf once: same instance, other client');
	is(spf_checks('spf-once.test'), 3,
	    'spf once: ... is checked again (the key is more than instance)');
	close $s;
}

like(ask(protocol_state => 'END-OF-MESSAGE', client_address => '192.0.2.7',
    recipient_count => 1, size => 20000000, recipient => 'x@example.com'),
    qr/^552 5\.3\.4 Message size exceeds fixed limit$/,
    'limits: size over message_size_limit');
# recipient_count over smtpd_recipient_limit (100 here): counted at RCPT
# by posternd itself, see (d); at DATA refusing would refuse everyone
is(ask(protocol_state => 'DATA', client_address => '192.0.2.7',
    recipient_count => 101), 'DUNNO',
    'limits: recipient_count at DATA is not applied');

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

# a client that writes requests and reads no answer: posternd stops reading
# at 64 KB of unread answers, so the client's writes stall and posternd's
# memory stays put; once the client reads, every request gets its answer
my $VRFY = "request=smtpd_access_policy\nprotocol_state=VRFY\n\n";
my $ANSWER = "action=DUNNO\n\n";

# small_rcvbuf_connect - a policy connection whose receive buffer is small,
# so that the answers pile up on posternd's side, not in our kernel
sub small_rcvbuf_connect {
	socket(my $s, PF_INET, SOCK_STREAM, 0) or return;
	# before connect: the window is agreed in the handshake
	setsockopt($s, SOL_SOCKET, SO_RCVBUF, pack('i', 4096)) or return;
	connect($s, pack_sockaddr_in($PPORT, inet_aton('127.0.0.1')))
	    or return;
	$s->autoflush(1);
	$s->blocking(0);
	return $s;
}

# flood(SOCK, SECS) - write requests without reading until the writes
# stall for a second or SECS pass: (bytes sent, stalled?)
sub flood {
	my ($s, $secs) = @_;
	my $chunk = $VRFY x 1000;
	my ($sent, $off, $since) = (0, 0, time);
	my $t0 = time;
	while (time - $t0 < $secs) {
		my $n = syswrite($s, $chunk, length($chunk) - $off, $off);
		if (defined $n) {
			$sent += $n;
			$off = ($off + $n) % length($chunk);
			$since = time;
			next;
		}
		return ($sent, 0) unless $! == EAGAIN || $! == EWOULDBLOCK;
		return ($sent, 1) if time - $since > 1;
		sleep 0.01;
	}
	return ($sent, 0);
}

sub rss_kb {
	my $pid = $t->posternd_pid;
	open(my $f, '<', "/proc/$pid/status") or return 0;
	while (<$f>) { return $1 if /^VmRSS:\s+(\d+)/ }
	return 0;
}

# asan_build - posternd runs with AddressSanitizer (its maps name libasan)
sub asan_build
{
	my $pid = $t->posternd_pid;
	open(my $f, '<', "/proc/$pid/maps") or return 0;
	while (<$f>) { return 1 if /libasan/ }
	return 0;
}

{
	my $rss0 = rss_kb();
	$s = small_rcvbuf_connect();
	ok($s, 'no reading: connected') or diag("connect: $!");
	my ($sent, $stalled) = $s ? flood($s, 30) : (0, 0);
	ok($stalled, 'no reading: posternd stops reading, our writes stall')
	    or diag("sent $sent bytes without a stall");
	my $grown = rss_kb() - $rss0;
	# ASan keeps freed memory in quarantine (256 MB by default): there
	# the stall above is the proof, and the bound allows for it
	my $bound = (asan_build() ? 256 * 1024 : 0) + 32 * 1024;
	ok($grown < $bound, 'no reading: posternd memory bounded')
	    or diag("RSS grew by $grown kB after $sent bytes");
	# now read: every complete request is answered, in full
	my $nreq = int($sent / length($VRFY));
	# the last request may be cut: finish it while reading, so that the
	# count is exact (a blocking write would wait for posternd forever)
	my $rest = '';
	if ($sent % length($VRFY)) {
		$rest = substr($VRFY, $sent % length($VRFY));
		$nreq++;
	}
	my ($got, $buf, $t0) = (0, '', time);
	while ($s && $got < $nreq * length($ANSWER) && time - $t0 < 30) {
		if (length $rest) {
			my $w = syswrite($s, $rest);
			substr($rest, 0, $w) = '' if $w;
		}
		my $n = sysread($s, $buf, 65536);
		last if defined $n && $n == 0;
		if (defined $n) {
			$got += $n;
			next;
		}
		sleep 0.01;
	}
	is($got, $nreq * length($ANSWER),
	    "no reading: all $nreq requests answered once we read");
	$s->blocking(1) if $s;
	print $s request(client_address => '192.0.2.7') if $s;
	like($s ? read_answer($s) // '' : '', qr/^(?:DUNNO|PREPEND .*)$/,
	    'no reading: the connection goes on');
	close $s if $s;
}

# a client that half-closes after its requests (shutdown(SHUT_WR)) gets
# every complete request answered, then EOF; an incomplete one is dropped
{
	$s = pconnect();
	# one answered on the loop (relay), one through the pool (SPF)
	print $s request(), request(sender => 'u@spf-fail.test',
	    recipient => 'bob@example.test', client_address => '203.0.113.9');
	shutdown($s, 1);
	my @a = map { read_answer($s) } 1 .. 2;
	like_diag($a[0], qr/^554 5\.7\.1 <x\@example\.com>/,
	    'half-close: the 1st request answered', $t->log_tail(5));
	like($a[1] // '', qr/^550 5\.7\.23 SPF fail/,
	    'half-close: the 2nd (through the pool) answered');
	closed_ok($s, 'half-close: closed after the answers');
	close $s;

	$mark = $t->log_mark;
	$s = pconnect();
	print $s request(client_address => '192.0.2.7'),
	    "request=smtpd_access_policy\nprotocol_state=RCPT\n";
	shutdown($s, 1);
	is(read_answer($s), 'DUNNO', 'half-close: the complete request answered');
	closed_ok($s, 'half-close: the incomplete one dropped, closed');
	ok($t->wait_for_log(qr/policy: connection from 127\.0\.0\.1 closed in the middle of a request \(\d+ bytes dropped\)/,
	    5, $mark), 'half-close: the incomplete request logged')
	    or diag($t->log_tail(5));
	close $s;

	# a half-close while posternd has stopped reading (64 KB of answers
	# unread): every complete request is still answered, then EOF
	$s = small_rcvbuf_connect();
	my ($sent, $stalled) = $s ? flood($s, 30) : (0, 0);
	ok($stalled, 'half-close after a flood: writes stall');
	shutdown($s, 1) if $s;
	my $nreq = int($sent / length($VRFY));
	my ($got, $buf, $eof, $t0) = (0, '', 0, time);
	while ($s && time - $t0 < 30) {
		my $n = sysread($s, $buf, 65536);
		if (defined $n && $n == 0) {
			$eof = 1;
			last;
		}
		if (defined $n) {
			$got += $n;
			next;
		}
		last unless $! == EAGAIN || $! == EWOULDBLOCK;
		sleep 0.01;
	}
	is($got, $nreq * length($ANSWER),
	    "half-close after a flood: all $nreq complete requests answered");
	ok($eof, 'half-close after a flood: then EOF');
	close $s if $s;

	# only a half-close: closed at once, nothing written
	$s = pconnect();
	shutdown($s, 1);
	closed_ok($s, 'half-close without a request: closed');
	close $s;
	ok($t->wait_sessions_ended(5), 'half-close: no connection left');
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

# --- (d) the recipient limit, connections and time, tight -----------------

$t->stop if $t->is_running;
$t->start_posternd(config => { %CONF, smtpd_recipient_limit => 3,
    policy_listen_idle_timeout => '3s', policy_listen_max_connections => 3 });

# the recipient limit, counted per instance at RCPT (recipient_count=0 as
# Postfix sends it there); 192.0.2.7 is in mynetworks
{
	my $c = pconnect();
	my %m = (instance => 'lim.1', client_address => '192.0.2.7',
	    recipient_count => 0);
	my @a;
	for my $i (1 .. 2) {
		print $c request(%m, recipient => "r$i\@example.com");
		push @a, read_answer($c);
	}
	# refused by relay: does not count
	print $c request(%m, client_address => '203.0.113.9',
	    recipient => 'r9@example.com');
	push @a, read_answer($c);
	$mark = $t->log_mark;
	for my $i (3 .. 4) {
		print $c request(%m, recipient => "r$i\@example.com");
		push @a, read_answer($c);
	}
	like($a[$_] // '', qr/^(?:DUNNO|PREPEND .*)$/,
	    'recipient limit: RCPT ' . ($_ + 1) . ' allowed') for 0, 1, 3;
	like($a[2] // '', qr/^554 5\.7\.1 /, 'recipient limit: a relay refusal');
	is($a[4], '452 4.5.3 Error: too many recipients',
	    'recipient limit: the 4th recipient let through gets 452 4.5.3');
	ok($t->wait_for_log(qr/452 4\.5\.3 Error: too many recipients.*filter=limits stage=rcpt listener=policy/,
	    5, $mark), 'recipient limit: logged with filter=limits')
	    or diag($t->log_tail(5));
	print $c request(%m, protocol_state => 'DATA', recipient => '',
	    recipient_count => 3);
	is(read_answer($c), 'DUNNO', 'recipient limit: DATA not refused');
	print $c request(%m, protocol_state => 'END-OF-MESSAGE',
	    recipient => '', recipient_count => 3, size => 100);
	is(read_answer($c), 'DUNNO',
	    'recipient limit: END-OF-MESSAGE not refused');
	print $c request(%m, instance => 'lim.2', recipient => 'n@example.com');
	like(read_answer($c) // '', qr/^(?:DUNNO|PREPEND .*)$/,
	    'recipient limit: a new instance counts from 0');
	close $c;
}

# policy_listen_max_connections = 3
{
	$t->wait_sessions_ended(5);
	$mark = $t->log_mark;
	my @c = map { pconnect() } 1 .. 3;
	my $up = 0;
	for my $c (@c) {
		next unless $c;
		print $c request(client_address => '192.0.2.7');
		$up++ if defined read_answer($c);
	}
	is($up, 3, 'max connections: 3 connections served');
	my $c4 = pconnect();
	print $c4 request(client_address => '192.0.2.7') if $c4;
	closed_ok($c4, 'max connections: the 4th is closed') if $c4;
	fail('max connections: the 4th connects') unless $c4;
	ok($t->wait_for_log(qr/policy: connection from 127\.0\.0\.1 refused: policy_listen_max_connections \(3\) reached/,
	    5, $mark), 'max connections: refusal logged')
	    or diag($t->log_tail(5));
	close $c[0];
	my $ok;
	poll_until(sub {
		my $c = pconnect() or return 0;
		print $c request(client_address => '192.0.2.7');
		$ok = read_answer($c);
		close $c;
		return defined $ok;
	}, 5);
	ok(defined $ok, 'max connections: a slot freed is used again');
	close $_ for grep { defined } @c[1, 2];
	ok($t->wait_sessions_ended(5), 'max connections: all closed');
}

# a request trickled a byte at a time is closed at its deadline (3s from
# its first byte), while a complete request a second keeps a connection
{
	$mark = $t->log_mark;
	my $c = pconnect();
	my $req = request(client_address => '192.0.2.7');
	my ($t0, $closed) = (time, undef);
	local $SIG{PIPE} = 'IGNORE';
	for my $i (0 .. length($req) - 1) {
		last if time - $t0 > 12;
		if (!defined syswrite($c, substr($req, $i, 1))) {
			$closed = time - $t0;
			last;
		}
		sleep 0.25;
		# the close shows as EOF (or a reset) on our side first
		my $rin = '';
		vec($rin, fileno($c), 1) = 1;
		if (select(my $rout = $rin, undef, undef, 0)) {
			$closed = time - $t0;
			last;
		}
	}
	ok(defined $closed && $closed >= 2.5 && $closed < 8,
	    'slow request: closed at its deadline') or
	    diag('closed after ' . ($closed // 'never'));
	ok($t->wait_for_log(qr/policy: connection from 127\.0\.0\.1: request not complete within 3s; closed/,
	    5, $mark), 'slow request: logged') or diag($t->log_tail(5));
	close $c;

	$c = pconnect();
	my $n = 0;
	for (1 .. 5) {
		print $c request(client_address => '192.0.2.7');
		$n++ if defined read_answer($c);
		sleep 1;
	}
	is($n, 5, 'slow request: one request a second for 5s still served');
	close $c;
}

# a client that never reads its answers is closed after the timeout
{
	$mark = $t->log_mark;
	my $c = small_rcvbuf_connect();
	my ($sent, $stalled) = $c ? flood($c, 20) : (0, 0);
	ok($stalled, 'not reading: writes stall');
	ok($t->wait_for_log(qr/policy: connection from 127\.0\.0\.1 does not read its answers for 3s; closed/,
	    8, $mark), 'not reading: closed and logged')
	    or diag($t->log_tail(5));
	close $c if $c;
}
$t->serves_ok('after (d): posternd still serves SMTP');

PosternTest->finish_all_ok;
done_testing;

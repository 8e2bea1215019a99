#!/usr/bin/perl
# 13_mx_routing.t - MX routing of the outbound SMTP client through a local
# DNS server (dnsmasq, the zone in data/mx/records.conf) with smtp-sink
# peers on loopback addresses other than 127.0.0.1.
#
# MX routing always connects to port 25, which a test cannot count on, so
# the connection cases use "relayhost = example.org:PORT": without
# brackets, an MX lookup of example.org, and PORT on every MX host.
#
#   only mx2 listens       -> delivered to mx2 (mx1 refused, next MX)
#   mx1 and mx2 listen     -> delivered to mx1 (preference order)
#   no MX, an A record     -> delivered to that address (implicit MX)
#   MX host with only AAAA -> delivered to [::1] (skipped without ::1)
#   relayhost NXDOMAIN     -> deferred, the reason names the lookup
#   no relayhost: null MX  -> bounced 5.1.10, DSN to the sender;
#                 NXDOMAIN -> bounced 5.4.4; MX host NXDOMAIN -> 5.4.4
#
# SPDX-License-Identifier: ISC

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use IO::Socket::IP;
use Time::HiRes qw(time sleep);
use PosternTest qw(reply_is poll_until free_port);

my $FIXTURES = "$FindBin::Bin/data/mx";
my $IS_ROOT = ($> == 0);
my $RUN_USER = $ENV{POSTERN_TEST_USER} // 'nobody';

# every posternd environment, for the checks at the end
my @ENVS;

# --- local helpers ----------------------------------------------------------

# records(FILE) - the dnsmasq lines of a fixture, comments skipped
sub records {
	my ($file) = @_;
	open my $fh, '<', $file or die "$file: $!";
	my @l = grep { /\S/ && !/^\s*#/ } <$fh>;
	close $fh;
	chomp @l;
	return @l;
}

# can_connect(HOST, PORT) - a TCP connection to HOST:PORT succeeds
sub can_connect {
	my ($host, $port) = @_;
	my $s = IO::Socket::IP->new(PeerHost => $host, PeerPort => $port,
	    Proto => 'tcp', Timeout => 1) or return 0;
	close $s;
	return 1;
}

# have_ipv6_loopback - ::1 can be bound and reached
sub have_ipv6_loopback {
	my $l = IO::Socket::IP->new(LocalHost => '::1', LocalPort => 0,
	    Proto => 'tcp', Listen => 1) or return 0;
	my $ok = can_connect('::1', $l->sockport);
	close $l;
	return $ok;
}

# start_sink(ENV, NAME, HOST, PORT) - smtp-sink on HOST:PORT, dumping each
# transaction into ENV's directory NAME/ (the harness's start_smtp_sink
# binds 127.0.0.1 only)
sub start_sink {
	my ($t, $name, $host, $port) = @_;
	my $dump = $t->path($name);
	mkdir $dump;
	my @user;
	if ($IS_ROOT) {
		my (undef, undef, $uid, $gid) = getpwnam($RUN_USER);
		chown $uid, $gid, $dump if defined $uid;
		@user = ('-u', $RUN_USER);
	}
	my $addr = $host =~ /:/ ? "[$host]:$port" : "$host:$port";
	$t->spawn($name, '/usr/sbin/smtp-sink', '-d', "$dump/msg.", @user,
	    $addr, '64');
	poll_until(sub { can_connect($host, $port) }, 10)
	    or BAIL_OUT("smtp-sink $name on $addr did not start");
}

# sink_subjects(ENV, NAME) - the Subject of every message sink NAME got
sub sink_subjects {
	my ($t, $name) = @_;
	my @s;
	for my $f (sort glob $t->path("$name/msg.*")) {
		open my $fh, '<', $f or next;
		local $/;
		my $c = <$fh> // '';
		close $fh;
		push @s, $1 if $c =~ /^Subject: (\S+)\r?$/m;
	}
	return sort @s;
}

# instance(NAME, CONFIG OVERRIDES) - a fresh environment (own spool) with
# posternd running: smtp listener only, the local DNS server, no
# connection cache (each message is routed afresh), quick retries
sub instance {
	my ($name, %over) = @_;
	my $t = PosternTest->new(users => 0);
	$t->{test_name} = $name;
	push @ENVS, $t;
	$t->start_posternd(config => {
		listen => 'smtp/127.0.0.1:' . $t->port('smtp'),
		smtpd_sasl_password_maps => undef,
		mynetworks => '127.0.0.0/8',
		queue_run_delay => '1s',
		minimal_backoff_time => '1s',
		maximal_backoff_time => '2s',
		smtp_connect_timeout => '5s',
		smtp_connection_cache_time_limit => '0s',
		%over,
	});
	return $t;
}

# finish(ENV) - stop posternd, keeping its exit status for the end
sub finish {
	my ($t) = @_;
	my $st = $t->stop;
	$t->{exit_status} = $st if defined $st;
}

# send_one(ENV, TO, SUBJECT) - one message from sender@example.test (a
# local address, so bounces land in the Maildir); returns the queue ID
sub send_one {
	my ($t, $to, $subject) = @_;
	my $from = 'sender@example.test';
	my $c = $t->session('smtp');
	my $r = $c->cmd("MAIL FROM:<$from>");
	$r = $c->cmd("RCPT TO:<$to>") if $r && $r->{code} == 250;
	$r = $c->data(join '', map { "$_\r\n" } "From: <$from>",
	    "To: <$to>", "Subject: $subject",
	    "Message-ID: <$subject\@client.example>", '',
	    "body of $subject") if $r && $r->{code} == 250;
	$c->cmd('QUIT');
	$c->close;
	reply_is($r, 250, '2.0.0', "$t->{test_name}: $subject accepted");
	my ($qid) = $r && $r->{code} == 250 ?
	    $r->{text} =~ /queued as ([A-Za-z0-9]+)/ : ();
	return $qid // 'NOQID';
}

# outcome(ENV, QID, TIMEOUT) - QID's first delivery log line with a final
# or deferred status
sub outcome {
	my ($t, $qid, $timeout) = @_;
	return $t->wait_for_log(
	    qr/\Q$qid\E: to=<[^>]*>, .*status=(?:sent|deferred|bounced)/,
	    $timeout // 15);
}

# sent_via(HOST, ADDR) - the delivery log line of a message sent to
# HOST[ADDR]:$PORT
sub sent_via {
	my ($host, $addr) = @_;
	our $PORT;
	return qr/relay=\Q$host\E\[\Q$addr\E\]:\Q$PORT\E, .*status=sent/;
}

# like_log(LINE, RE, NAME, ENV) - like() that shows the log tail on failure
sub like_log {
	my ($line, $re, $name, $t) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	like($line // '(no delivery log line)', $re, $name)
	    or diag($t->log_tail(15));
	note($line) if defined $line;
}

# --- DNS and peers ----------------------------------------------------------

my $NET = PosternTest->new(cert => 0, users => 0);
my $DNS = $NET->start_dnsmasq(records("$FIXTURES/records.conf"));
my $RESOLVER = "127.0.0.1\@$DNS";
# one port for every MX host; the addresses differ
our $PORT = free_port();

# --- preference order and fallback ----------------------------------------

{
	start_sink($NET, 'mx2', '127.0.0.3', $PORT);
	ok(!can_connect('127.0.0.2', $PORT), 'mx1 (127.0.0.2) refuses '
	    . 'connections before its sink starts');
	my $t = instance('relayhost example.org',
	    relayhost => "example.org:$PORT", dns_resolver => $RESOLVER);

	my $qid = send_one($t, 'user@example.org', 'fallback');
	like_log(outcome($t, $qid),
	    sent_via('mx2.example.org', '127.0.0.3'),
	    'mx1 refused: delivered to mx2 (the next MX)', $t);
	my @got;
	poll_until(sub { @got = sink_subjects($NET, 'mx2'); @got >= 1 }, 5);
	is_deeply(\@got, [ 'fallback' ], 'mx2 received the message');

	start_sink($NET, 'mx1', '127.0.0.2', $PORT);
	my @q = map { send_one($t, 'user@example.org', "pref-$_") } 1 .. 3;
	for my $i (0 .. $#q) {
		like_log(outcome($t, $q[$i]),
		    sent_via('mx1.example.org', '127.0.0.2'),
		    'both up: pref-' . ($i + 1) . ' delivered to mx1 '
		    . '(preference 10)', $t);
	}
	poll_until(sub { @got = sink_subjects($NET, 'mx1'); @got >= 3 }, 5);
	is_deeply(\@got, [ 'pref-1', 'pref-2', 'pref-3' ],
	    'mx1 received the three messages');
	@got = sink_subjects($NET, 'mx2');
	is_deeply(\@got, [ 'fallback' ], 'mx2 received nothing more');
	finish($t);
}

# --- no MX record: the domain is its own MX ------------------------------

{
	start_sink($NET, 'plain', '127.0.0.4', $PORT);
	my $t = instance('relayhost plain.example.org',
	    relayhost => "plain.example.org:$PORT", dns_resolver => $RESOLVER);
	my $qid = send_one($t, 'user@example.org', 'implicit');
	like_log(outcome($t, $qid),
	    sent_via('plain.example.org', '127.0.0.4'),
	    'no MX record: delivered to the domain\'s own address', $t);
	my @got;
	poll_until(sub { @got = sink_subjects($NET, 'plain'); @got >= 1 }, 5);
	is_deeply(\@got, [ 'implicit' ], 'the sink on 127.0.0.4 received it');
	finish($t);
}

# --- an MX host with only an AAAA record ----------------------------------

SKIP: {
	skip 'IPv6 loopback ::1 is not available here', 3
	    unless have_ipv6_loopback();
	start_sink($NET, 'mx3', '::1', $PORT);
	my $t = instance('relayhost v6.example.org',
	    relayhost => "v6.example.org:$PORT", dns_resolver => $RESOLVER);
	my $qid = send_one($t, 'user@example.org', 'ipv6');
	like_log(outcome($t, $qid),
	    sent_via('mx3.example.org', '::1'),
	    'AAAA-only MX host: delivered to [::1]', $t);
	my @got;
	poll_until(sub { @got = sink_subjects($NET, 'mx3'); @got >= 1 }, 5);
	is_deeply(\@got, [ 'ipv6' ], 'the sink on [::1] received the message');
	finish($t);
}

# --- a relayhost that does not exist --------------------------------------

# Like Postfix (smtp_connect.c: "relayhost configuration problem", 4.3.5),
# a relayhost that does not resolve is the operator's error in either
# form, so the mail waits.
for my $rh ("nx.example.org:$PORT", "[nx.example.org]:$PORT") {
	my $t = instance("relayhost $rh", relayhost => $rh,
	    dns_resolver => $RESOLVER);
	my $qid = send_one($t, 'user@example.org', 'nxrelay');
	my $line = outcome($t, $qid);
	like_log($line,
	    qr/relay=none,\ .*dsn=4\.\d+\.\d+,\ status=deferred
	    \ \(.*nx\.example\.org.*not\ found/ix,
	    "relayhost = $rh (NXDOMAIN): deferred, the reason names the "
	    . 'lookup', $t);
	my @b = grep { /\Q$qid\E: .*status=bounced/ } $t->log_lines;
	is(scalar @b, 0, "relayhost = $rh: not bounced")
	    or diag(join "\n", @b);
	finish($t);
}

# --- no relayhost: routing by the recipient's domain ----------------------

{
	my $t = instance('no relayhost', relayhost => undef,
	    dns_resolver => $RESOLVER);
	my %case = (
	    nullmx => [ 'user@nullmx.example.org', '5\.1\.10',
		'null MX (RFC 7505): bounced 5.1.10' ],
	    nxdomain => [ 'user@nx.example.org', '5\.4\.4',
		'NXDOMAIN recipient domain: bounced 5.4.4' ],
	    deadmx => [ 'user@deadmx.example.org', '5\.4\.4',
		'the only MX host does not exist: bounced 5.4.4' ],
	);
	my %qid = map { $_ => send_one($t, $case{$_}[0], "nomx-$_") }
	    sort keys %case;
	for my $k (sort keys %case) {
		my ($rcpt, $dsn, $name) = @{ $case{$k} };
		like_log(outcome($t, $qid{$k}),
		    qr/to=<\Q$rcpt\E>,\ relay=none,\ .*dsn=$dsn,
		    \ status=bounced\ \(\S/x,
		    $name, $t);
	}
	my ($dsn) = $t->wait_message('sender',
	    qr/^Status: 5\.1\.10\r?$/m, 10);
	ok(defined $dsn, 'the null MX bounce reaches the sender as a DSN '
	    . 'with Status: 5.1.10') or diag($t->log_tail(15));
	like($dsn // '',
	    qr/^Final-Recipient:\ rfc822;\s*user\@nullmx\.example\.org\r?$/mix,
	    'the DSN names the recipient');
	finish($t);
}

# the resolver was used, not the system's
my @asked = grep { /query\[MX\] example\.org from 127\.0\.0\.1/ }
    split /\n/, do { local (@ARGV, $/) = ($NET->path('dnsmasq.log')); <> };
ok(scalar @asked, 'the MX lookups went to the local DNS server');

# --- sanitizers and clean exits ----------------------------------------------

for my $t (@ENVS) {
	finish($t);
	my $st = $t->{exit_status};
	ok(defined $st && $st == 0, "$t->{test_name}: posternd exits 0 on "
	    . 'SIGTERM') or diag('wait status ' . ($st // 'none') . "\n" .
	    $t->log_tail(20));
	my @bad = grep { /AddressSanitizer|LeakSanitizer|runtime error:/ }
	    $t->log_lines;
	is(scalar @bad, 0, "$t->{test_name}: no sanitizer report in the log")
	    or diag(join "\n", @bad[0 .. ($#bad < 20 ? $#bad : 20)]);
}

done_testing;

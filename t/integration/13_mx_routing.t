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
use Time::HiRes qw(time sleep);
use PosternTest qw(reply_is poll_until free_port can_connect
    have_ipv6_loopback like_diag);

my $FIXTURES = "$FindBin::Bin/data/mx";
# the sender: a local address, so bounces land in the Maildir
my $FROM = 'sender@example.test';

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

# sink_subjects(NAME, COUNT) - the sorted Subjects of the messages sink
# NAME (in $NET) got, waiting up to 5 s until there are COUNT
sub sink_subjects {
	my ($name, $count) = @_;
	our $NET;
	my @s;
	poll_until(sub {
		@s = sort map { /^Subject: (\S+)\r?$/m ? $1 : () }
		    $NET->sink_messages($name);
		return @s >= ($count // 0);
	}, 5);
	return @s;
}

# instance(NAME, CONFIG OVERRIDES) - a sender (PosternTest->instance)
# without a connection cache: each message is routed afresh
sub instance {
	my ($name, %over) = @_;
	return PosternTest->instance(name => $name, config => {
		smtp_connection_cache_time_limit => '0s',
		%over,
	});
}

# sent_via(HOST, ADDR) - the delivery log line of a message sent to
# HOST[ADDR]:$PORT
sub sent_via {
	my ($host, $addr) = @_;
	our $PORT;
	return qr/relay=\Q$host\E\[\Q$addr\E\]:\Q$PORT\E, .*status=sent/;
}

# routed_ok(DOMAIN, SINK, ADDR, MXHOST, SUBJECT, NAME, SINK_NAME) - with
# sink SINK on ADDR:$PORT, a sender whose relayhost is DOMAIN:$PORT
# sends SUBJECT: it goes to MXHOST[ADDR] (test NAME) and SINK gets it
# (test SINK_NAME); plus the test that SUBJECT is accepted
sub routed_ok {
	my ($domain, $sink, $addr, $mxhost, $subject, $name, $sink_name) = @_;
	our ($NET, $PORT, $RESOLVER);
	$NET->start_sink($sink, $addr, $PORT);
	my $t = instance("relayhost $domain",
	    relayhost => "$domain:$PORT", dns_resolver => $RESOLVER);
	my $qid = $t->send_ok($FROM, 'user@example.org', $subject);
	like_log($t->wait_status($qid), sent_via($mxhost, $addr), $name, $t);
	my @got = sink_subjects($sink, 1);
	is_deeply(\@got, [ $subject ], $sink_name);
	$t->stop;	# its exit is checked at the end
}

# like_log(LINE, RE, NAME, ENV) - like() that shows the log tail on failure
sub like_log {
	my ($line, $re, $name, $t) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	like_diag($line, $re, $name, $t->log_tail(15));
	note($line) if defined $line;
}

# --- DNS and peers ----------------------------------------------------------

our $NET = PosternTest->new(cert => 0, users => 0);
my $DNS = $NET->start_dnsmasq(records("$FIXTURES/records.conf"));
our $RESOLVER = "127.0.0.1\@$DNS";
# one port for every MX host; the addresses differ
our $PORT = free_port();

# --- preference order and fallback ----------------------------------------

{
	$NET->start_sink('mx2', '127.0.0.3', $PORT);
	ok(!can_connect('127.0.0.2', $PORT), 'mx1 (127.0.0.2) refuses '
	    . 'connections before its sink starts');
	my $t = instance('relayhost example.org',
	    relayhost => "example.org:$PORT", dns_resolver => $RESOLVER);

	my $qid = $t->send_ok($FROM, 'user@example.org', 'fallback');
	like_log($t->wait_status($qid),
	    sent_via('mx2.example.org', '127.0.0.3'),
	    'mx1 refused: delivered to mx2 (the next MX)', $t);
	my @got = sink_subjects('mx2', 1);
	is_deeply(\@got, [ 'fallback' ], 'mx2 received the message');

	$NET->start_sink('mx1', '127.0.0.2', $PORT);
	my @q = map { $t->send_ok($FROM, 'user@example.org', "pref-$_") } 1 .. 3;
	for my $i (0 .. $#q) {
		like_log($t->wait_status($q[$i]),
		    sent_via('mx1.example.org', '127.0.0.2'),
		    'both up: pref-' . ($i + 1) . ' delivered to mx1 '
		    . '(preference 10)', $t);
	}
	@got = sink_subjects('mx1', 3);
	is_deeply(\@got, [ 'pref-1', 'pref-2', 'pref-3' ],
	    'mx1 received the three messages');
	@got = sink_subjects('mx2');
	is_deeply(\@got, [ 'fallback' ], 'mx2 received nothing more');
	$t->stop;	# its exit is checked at the end
}

# --- no MX record: the domain is its own MX ------------------------------

routed_ok('plain.example.org', 'plain', '127.0.0.4', 'plain.example.org',
    'implicit', 'no MX record: delivered to the domain\'s own address',
    'the sink on 127.0.0.4 received it');

# --- an MX host with only an AAAA record ----------------------------------

SKIP: {
	skip 'IPv6 loopback ::1 is not available here', 3
	    unless have_ipv6_loopback();
	routed_ok('v6.example.org', 'mx3', '::1', 'mx3.example.org', 'ipv6',
	    'AAAA-only MX host: delivered to [::1]',
	    'the sink on [::1] received the message');
}

# --- a relayhost that does not exist --------------------------------------

# Like Postfix (smtp_connect.c: "relayhost configuration problem", 4.3.5),
# a relayhost that does not resolve is the operator's error in either
# form, so the mail waits.
for my $rh ("nx.example.org:$PORT", "[nx.example.org]:$PORT") {
	my $t = instance("relayhost $rh", relayhost => $rh,
	    dns_resolver => $RESOLVER);
	my $qid = $t->send_ok($FROM, 'user@example.org', 'nxrelay');
	my $line = $t->wait_status($qid);
	like_log($line,
	    qr/relay=none,\ .*dsn=4\.\d+\.\d+,\ status=deferred
	    \ \(.*nx\.example\.org.*not\ found/ix,
	    "relayhost = $rh (NXDOMAIN): deferred, the reason names the "
	    . 'lookup', $t);
	my @b = grep { /\Q$qid\E: .*status=bounced/ } $t->log_lines;
	is(scalar @b, 0, "relayhost = $rh: not bounced")
	    or diag(join "\n", @b);
	$t->stop;	# its exit is checked at the end
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
	my %qid = map { $_ => $t->send_ok($FROM, $case{$_}[0], "nomx-$_") }
	    sort keys %case;
	for my $k (sort keys %case) {
		my ($rcpt, $dsn, $name) = @{ $case{$k} };
		like_log($t->wait_status($qid{$k}),
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
	$t->stop;	# its exit is checked at the end
}

# the resolver was used, not the system's
my @asked = grep { /query\[MX\] example\.org from 127\.0\.0\.1/ }
    split /\n/, do { local (@ARGV, $/) = ($NET->path('dnsmasq.log')); <> };
ok(scalar @asked, 'the MX lookups went to the local DNS server');

# --- sanitizers and clean exits ----------------------------------------------

PosternTest->finish_all_ok;

done_testing;

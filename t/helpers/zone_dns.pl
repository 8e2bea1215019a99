#!/usr/bin/perl
#
# zone_dns.pl - a small authoritative DNS server for the tests.
#
# It serves one zone of test data on 127.0.0.1, over UDP and TCP, so that
# the code under test resolves through its ordinary path (libunbound
# forwarding to dns_resolver = 127.0.0.1@PORT). It answers for every name
# as if it were authoritative for the root, with the AA bit set: the
# records of the zone, NODATA (NOERROR, no answer, the root SOA in the
# authority section) for a name that exists without records of the type,
# NXDOMAIN for a name that does not exist. It deliberately does nothing
# else: no recursion, no DNSSEC, no wildcards.
#
# The zone is JSON, written by t/helpers/rfc7208_cases.py or by hand:
#
#   { "zone": { "name.example": [ ENTRY, ... ], ... } }
#
#   ENTRY = { "type": "A",     "address": "192.0.2.1" }
#         | { "type": "AAAA",  "address": "2001:db8::1" }
#         | { "type": "MX",    "preference": 10, "exchange": "mx.example" }
#         | { "type": "PTR" | "CNAME", "target": "host.example" }
#         | { "type": "TXT" | "SPF", "strings": [ HEX, ... ] }
#               (each HEX is one character-string, hex encoded, so that
#                the octets go out as they are; an empty list is an RR
#                with no strings at all, which is malformed on purpose)
#         | { "type": T, "timeout": true }  never answer a query for T
#         | { "type": "TIMEOUT" }           below
#         | { "type": "SERVFAIL" }          every query of the name
#                                           gets SERVFAIL
#
# TIMEOUT follows the openspf.org suite: a query is never answered when
# the marker comes before any entry of the queried type; entries of the
# type that come before it are answered. A server that never answers is
# what a client sees of a dead or filtered server; the client's own
# timeout has to turn it into a temporary error.
#
# Names are matched case-insensitively, octet by octet (labels may hold
# any octet, e.g. spaces or '%'). A name that only exists as the parent
# of listed names (an empty non-terminal) gets NODATA, as RFC 8020 wants.
# CNAMEs are followed inside the zone, the chain is put in the answer,
# and a loop ends the chain (the client sees the loop).
#
# Usage:
#   zone_dns.pl --zone FILE [--scenario N] [--port P] [--ttl S]
#               [--log FILE] [--parent PID]
#
# With --scenario, FILE is the whole output of rfc7208_cases.py and N the
# index of the scenario to serve. Without --port (or with 0) a free port
# is chosen. Once both sockets listen, "PORT <n>" is printed on stdout.
# With --parent, the server exits when that process is gone, so that a
# test that dies leaves no server behind. --log writes one line per
# query: "<qname> <qtype> <outcome>".
#
# SPDX-License-Identifier: ISC
#

use strict;
use warnings;

use Getopt::Long;
use IO::Handle;
use IO::Socket::IP;
use JSON::PP;
use Net::DNS;
use Net::DNS::Nameserver;
use Socket qw(SOCK_DGRAM SOCK_STREAM);

my %opt = (port => 0, ttl => 60);
GetOptions(\%opt, 'zone=s', 'scenario=i', 'port=i', 'ttl=i', 'log=s',
    'parent=i') && defined $opt{zone}
	or die "usage: zone_dns.pl --zone FILE [--scenario N] [--port P] "
	    . "[--ttl S] [--log FILE] [--parent PID]\n";

my $MAX_CHAIN = 16;		# CNAME links followed in one answer
my $ROOT_SOA = ". $opt{ttl} IN SOA ns.zone-dns.invalid. "
    . "hostmaster.zone-dns.invalid. 1 3600 600 86400 $opt{ttl}";

my ($zone, $parents) = load_zone($opt{zone}, $opt{scenario});

my $log;
if (defined $opt{log}) {
	open($log, '>>', $opt{log}) or die "zone_dns.pl: $opt{log}: $!\n";
	$log->autoflush(1);
}

my ($ns, $port) = start_server($opt{port});
STDOUT->autoflush(1);
print "PORT $port\n";

$SIG{TERM} = $SIG{INT} = sub { exit 0 };
for (;;) {
	$ns->loop_once(1);
	exit 0 if defined $opt{parent} && !kill(0, $opt{parent});
}

# load_zone - the zone of FILE (or of its scenario N), keyed by the
# lower-cased name, and the set of names that exist as parents only
sub load_zone {
	my ($file, $scenario) = @_;

	open(my $fh, '<:raw', $file) or die "zone_dns.pl: $file: $!\n";
	my $data = decode_json(do { local $/; <$fh> });
	close($fh);
	if (defined $scenario) {
		$data = $data->{scenarios}[$scenario]
		    or die "zone_dns.pl: $file: no scenario $scenario\n";
	}
	my (%zone, %parents);
	while (my ($name, $entries) = each %{$data->{zone} || {}}) {
		my $key = name_key(utf8::is_utf8($name)
		    ? do { my $n = $name; utf8::encode($n); $n } : $name);
		push @{$zone{$key}}, @$entries;
		my @labels = split /\./, $key;
		shift @labels;
		while (@labels) {
			$parents{join('.', @labels)} = 1;
			shift @labels;
		}
	}
	return (\%zone, \%parents);
}

# name_key - the lookup key of a name in octets: ASCII letters folded,
# no root dot
sub name_key {
	my ($name) = @_;

	$name =~ s/\.\z// unless $name eq '.';
	$name =~ tr/A-Z/a-z/;
	return $name;
}

# wire_key - the lookup key of a name in DNS wire format, read label by
# label so that octets such as '.' or ' ' inside a label stay as they are
sub wire_key {
	my ($wire) = @_;
	my @labels;
	my $off = 0;

	while ($off < length $wire) {
		my $len = ord(substr($wire, $off, 1));
		last if $len == 0;
		push @labels, substr($wire, $off + 1, $len);
		$off += 1 + $len;
	}
	return name_key(join('.', @labels));
}

# presentation - an octet name of the zone as Net::DNS reads it: every
# octet outside letters, digits, '-' and '_' escaped as \DDD
sub presentation {
	my ($name) = @_;

	$name =~ s/\.\z//;
	return '.' if $name eq '';
	return join('.', map {
		my $l = $_;
		$l =~ s/([^A-Za-z0-9_-])/sprintf('\\%03d', ord($1))/ge;
		$l;
	} split(/\./, $name, -1));
}

# make_rr - the RR of one zone entry, owned by OWNER (presentation form)
sub make_rr {
	my ($owner, $e) = @_;
	my %rr = (owner => $owner, type => $e->{type}, ttl => $opt{ttl},
	    class => 'IN');
	my $t = $e->{type};

	if ($t eq 'A' || $t eq 'AAAA') {
		$rr{address} = $e->{address};
	} elsif ($t eq 'MX') {
		$rr{preference} = $e->{preference};
		$rr{exchange} = presentation(octets($e->{exchange}));
	} elsif ($t eq 'PTR') {
		$rr{ptrdname} = presentation(octets($e->{target}));
	} elsif ($t eq 'CNAME') {
		$rr{cname} = presentation(octets($e->{target}));
	} elsif ($t eq 'TXT' || $t eq 'SPF') {
		# built as rdata so that no octet is reinterpreted
		$rr{rdata} = join('', map {
			my $s = pack('H*', $_);
			chr(length $s) . $s;
		} @{$e->{strings}});
	} else {
		die "zone_dns.pl: unsupported type $t\n";
	}
	return Net::DNS::RR->new(%rr);
}

sub octets {
	my ($s) = @_;

	utf8::encode($s) if utf8::is_utf8($s);
	return $s;
}

# lookup_type - the entries of KEY answering QTYPE: (status, entries),
# status "timeout", "servfail", "nxdomain" or "ok" (entries may be empty)
sub lookup_type {
	my ($key, $qtype) = @_;
	my $entries = $zone->{$key};

	unless ($entries) {
		return ('ok') if $parents->{$key};
		return ('nxdomain');
	}
	my ($seen, @found) = (0);
	for my $e (@$entries) {
		my $t = $e->{type};
		return ('servfail') if $t eq 'SERVFAIL';
		if ($t eq 'TIMEOUT') {
			return ('timeout') unless $seen;
			last;
		}
		next unless $t eq $qtype || $qtype eq 'ANY';
		$seen = 1;
		return ('timeout') if $e->{timeout};
		push @found, $e;
	}
	return ('ok', @found);
}

# cname_of - the CNAME entry of KEY, if the name is an alias
sub cname_of {
	my ($key) = @_;

	for my $e (@{$zone->{$key} || []}) {
		return $e if $e->{type} eq 'CNAME' && !$e->{timeout};
	}
	return;
}

# reply_handler - Net::DNS::Nameserver's callback: (rcode, answer,
# authority, additional, header bits); an undefined rcode means silence
sub reply_handler {
	my ($qname, $qclass, $qtype, $peer, $query) = @_;
	my ($q) = $query->question;
	my $key = wire_key($q->{qname}->encode);
	my $owner = $qname;
	my (@ans, %chain);
	my $rcode = 'NOERROR';
	my $what;

	if ($qclass ne 'IN') {
		log_query($qname, $qtype, 'REFUSED (class)');
		return ('REFUSED', [], [], [], { aa => 0 });
	}
	for (my $links = 0;; $links++) {
		my $alias = $qtype ne 'CNAME' ? cname_of($key) : undef;
		if ($alias && $links < $MAX_CHAIN && !$chain{$key}++) {
			push @ans, make_rr($owner, $alias);
			$key = name_key(octets($alias->{target}));
			$owner = presentation(octets($alias->{target}));
			next;
		}
		last if $alias;		# a loop or a long chain: stop there
		my ($status, @found) = lookup_type($key, $qtype);
		if ($status eq 'timeout') {
			log_query($qname, $qtype, 'TIMEOUT (no reply)');
			return;
		}
		if ($status eq 'servfail') {
			log_query($qname, $qtype, 'SERVFAIL');
			return ('SERVFAIL', [], [], [], { aa => 0, ra => 1 });
		}
		$rcode = 'NXDOMAIN' if $status eq 'nxdomain';
		push @ans, map { make_rr($owner, $_) } @found;
		last;
	}
	# negative answers carry the SOA, so that the client can cache them
	# (RFC 2308) and tell NODATA from a referral
	my @auth = ($rcode eq 'NXDOMAIN' || !grep { $_->type eq $qtype } @ans)
	    ? (Net::DNS::RR->new($ROOT_SOA)) : ();
	$what = $rcode eq 'NOERROR' && !@ans ? 'NODATA' : $rcode;
	log_query($qname, $qtype, sprintf('%s %d answer(s)', $what,
	    scalar @ans));
	return ($rcode, \@ans, \@auth, [], { aa => 1, ra => 1 });
}

sub log_query {
	my ($qname, $qtype, $outcome) = @_;

	print $log "$qname $qtype $outcome\n" if $log;
}

# start_server - the server on 127.0.0.1:PORT, UDP and TCP; with port 0,
# a port free for both is chosen (tried a few times: another process may
# take it between the probe and the bind)
sub start_server {
	my ($want) = @_;

	for my $try (1 .. 20) {
		my $p = $want || probe_port() or next;
		my @warned;
		local $SIG{__WARN__} = sub { push @warned, @_ };
		my $server = ZoneDNS::Server->new(
		    LocalAddr => ['127.0.0.1'],
		    LocalPort => $p,
		    ReplyHandler => \&reply_handler,
		    Truncate => 1,
		    Verbose => 0,
		);
		return ($server, $p) if $server && !@warned;
		die "zone_dns.pl: cannot listen on 127.0.0.1:$p: @warned\n"
		    if $want;
	}
	die "zone_dns.pl: no free port found\n";
}

# probe_port - a port that is free for UDP and TCP on 127.0.0.1 right now
sub probe_port {
	my $udp = IO::Socket::IP->new(LocalAddr => '127.0.0.1',
	    LocalPort => 0, Proto => 'udp', Type => SOCK_DGRAM) or return;
	my $p = $udp->sockport;
	my $tcp = IO::Socket::IP->new(LocalAddr => '127.0.0.1',
	    LocalPort => $p, Proto => 'tcp', Type => SOCK_STREAM,
	    Listen => 1, ReuseAddr => 1) or return;
	close($tcp);
	close($udp);
	return $p;
}

# Net::DNS::Nameserver 1.36 truncates a UDP reply to the query's EDNS size,
# but sends it whole when the query has no EDNS; such a client may only get
# 512 octets, the rest flagged TC (RFC 1035 4.2.1, RFC 6891 6.2.5). This
# subclass replaces only that step.
package ZoneDNS::Server;

use parent -norequire, 'Net::DNS::Nameserver';

sub udp_connection {
	my ($self, $sock) = @_;
	my $buf = '';

	defined $sock->recv($buf, 65535) or return;
	my $query = eval { Net::DNS::Packet->new(\$buf) };
	my $reply = $self->make_reply($query, $sock) or return;
	my $max = 512;
	if ($query && $query->edns->_specified && $query->edns->size > $max) {
		$max = $query->edns->size;
	}
	$sock->send($reply->data($max));
	return;
}

#!/usr/bin/perl
# bad_milter.pl - a milter that misbehaves on purpose, for the tests of
# Postern's milter client (what no real milter can be made to do).
#
#   bad_milter.pl PORT MODE
#
# Listens on 127.0.0.1:PORT, prints "ready" on stdout once listening, and
# serves connections one after the other until killed. Every mode answers
# the option negotiation normally (version 6, ADDHDRS, no protocol steps
# declined), then:
#
#   hang      reads every packet and never answers again
#   close     answers "continue" until the first header, then closes
#   garbage   answers connect with a packet of unknown code 'Z'
#   oversized answers connect with a length field of 2 GB and a few bytes,
#             then keeps the connection open
#   reject    answers "continue" until RCPT, then replycode
#             "550 5.7.1 100%% bad recipient" (a normal, final answer)
#   slow      answers end of message after 4 progress packets 0.5 s
#             apart (longer than a 1.5 s timeout in total, shorter each)
#
# SPDX-License-Identifier: ISC

use strict;
use warnings;
use IO::Socket::IP;
use Time::HiRes qw(sleep);

my ($port, $mode) = @ARGV;
die "usage: $0 PORT hang|close|garbage|oversized|reject|slow\n"
    unless defined $mode &&
    $mode =~ /^(hang|close|garbage|oversized|reject|slow)$/;

my $l = IO::Socket::IP->new(LocalHost => '127.0.0.1', LocalPort => $port,
    Proto => 'tcp', Listen => 5, ReuseAddr => 1)
    or die "listen 127.0.0.1:$port: $!\n";
$| = 1;
print "ready\n";

# read_n(SOCK, N) - exactly N bytes, or undef at EOF
sub read_n {
	my ($s, $n) = @_;
	my $data = '';
	while (length $data < $n) {
		my $r = sysread($s, $data, $n - length $data, length $data);
		return undef unless $r;
	}
	return $data;
}

sub packet {
	my ($code, $data) = @_;
	$data //= '';
	return pack('N', 1 + length $data) . $code . $data;
}

while (my $c = $l->accept) {
	while (defined(my $len = read_n($c, 4))) {
		$len = unpack 'N', $len;
		my $pkt = read_n($c, $len) // last;
		my $cmd = substr $pkt, 0, 1;
		if ($cmd eq 'O') {
			syswrite $c, packet('O', pack('NNN', 6, 0x1, 0));
			next;
		}
		# commands without a reply
		next if $cmd =~ /^[DA]$/;
		last if $cmd =~ /^[QK]$/;
		next if $mode eq 'hang';
		if ($mode eq 'close' && $cmd eq 'L') {
			last;
		}
		if ($mode eq 'garbage' && $cmd eq 'C') {
			syswrite $c, packet('Z', 'xy');
			next;
		}
		if ($mode eq 'oversized' && $cmd eq 'C') {
			syswrite $c, pack('N', 0x7fffffff) . 'c' . ('x' x 100);
			next;
		}
		if ($mode eq 'reject' && $cmd eq 'R') {
			syswrite $c, packet('y',
			    "550 5.7.1 100%% bad recipient\0");
			next;
		}
		if ($mode eq 'slow' && $cmd eq 'E') {
			for (1 .. 4) {
				sleep 0.5;
				syswrite $c, packet('p');
			}
		}
		syswrite $c, packet('c');
	}
	close $c;
}

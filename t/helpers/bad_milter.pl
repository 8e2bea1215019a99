#!/usr/bin/perl
# bad_milter.pl - a milter that misbehaves (or behaves in a scripted way)
# on purpose, for the tests of Postern's milter client: what no real
# milter can be made to do.
#
#   bad_milter.pl PORT MODE [LOGFILE]
#
# Listens on 127.0.0.1:PORT (or on a unix socket when PORT starts with
# "/"), prints "ready" on stdout once listening, and serves connections
# one after the other until killed. Every mode answers the option
# negotiation (version 6), then:
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
#   ok        "continue" to everything
#   nrbody    asks for no replies to headers and body (SMFIP_NR_HDR,
#             SMFIP_NR_BODY), "continue" to the rest, and logs
#             "bodybytes N" (the body it got) at end of message
#   record    "continue" to everything, asks (setsymlist) for "j
#             {rcpt_addr}" at RCPT, and logs what it got
#   ACTION@CMD  "continue" to everything but command CMD (a letter: C
#             connect, H helo, M mail, R rcpt, T data, L header, N end
#             of header, B body, E end of message, O negotiation), which
#             gets ACTION: reject, tempfail, accept, discard, shutdown,
#             skip, progress (three, then continue), progressloop (one
#             progress every 0.5 s until the connection goes), replycode
#             (550 5.7.1 custom text), replycode4 (451 4.7.1 ...),
#             replycode421 (421 4.7.0 go away), quarantine,
#             edits (every modification), badparams (a recipient
#             added with NOTIFY=NEVER,DELAY), addhdr (X-First-Milter), hang,
#             close, garbage, oversized, slowok (sleep 1.5 s then
#             continue); the action is taken once per connection
#   nonego    accepts the connection and never answers negotiation
#
# With LOGFILE every packet is logged, one line each: "cmd X" with the
# NUL-separated data escaped; "macro C name=value ..." for macros.
#
# SPDX-License-Identifier: ISC

use strict;
use warnings;
use IO::Socket::IP;
use IO::Socket::UNIX;
use Time::HiRes qw(sleep);

my ($port, $mode, $logfile) = @ARGV;
die "usage: $0 PORT MODE [LOGFILE]\n" unless defined $mode;
my ($action, $at) = $mode =~ /^(\w+)\@([A-Z])$/;

my $l;
if ($port =~ m{^/}) {
	unlink $port;
	$l = IO::Socket::UNIX->new(Local => $port, Listen => 5)
	    or die "listen $port: $!\n";
	chmod 0777, $port;
} else {
	$l = IO::Socket::IP->new(LocalHost => '127.0.0.1', LocalPort => $port,
	    Proto => 'tcp', Listen => 5, ReuseAddr => 1)
	    or die "listen 127.0.0.1:$port: $!\n";
}
$| = 1;
$SIG{PIPE} = 'IGNORE';
print "ready\n";

sub logline {
	return unless defined $logfile;
	open my $fh, '>>', $logfile or return;
	print $fh "@_\n";
	close $fh;
}

sub esc {
	my ($s) = @_;
	$s =~ s/([^\x20-\x7e])/sprintf('\\x%02x', ord $1)/ge;
	return $s;
}

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

# the modifications of mode edits@E
sub edits {
	return packet('h', "X-Added\0added value\0")
	    . packet('i', pack('N', 0) . "X-Inserted\0inserted value\0")
	    . packet('m', pack('N', 1) . "Subject\0changed subject\0")
	    . packet('m', pack('N', 1) . "X-Drop\0\0")
	    . packet('e', "<newfrom\@example.org>\0RET=HDRS ENVID=milter-1\0")
	    . packet('+', "<added\@example.net>\0")
	    . packet('2', "<addedpar\@example.net>\0"
		. "NOTIFY=NEVER ORCPT=rfc822;orig+2Bx\@example.net\0")
	    . packet('-', "<gone\@example.net>\0")
	    . packet('b', "replaced body\r\n");
}

# answer(CMD) - what this mode says to command CMD (undef: nothing)
my $done;
sub answer {
	my ($c, $cmd) = @_;
	my $a = 'continue';
	if (defined $action && $cmd eq $at && !$done) {
		$a = $action;
		$done = 1;
	}
	return packet('c') if $a eq 'continue';
	return packet('r') if $a eq 'reject';
	return packet('t') if $a eq 'tempfail';
	return packet('a') if $a eq 'accept';
	return packet('d') if $a eq 'discard';
	return packet('4') if $a eq 'shutdown';
	return packet('s') if $a eq 'skip';
	return packet('p') x 3 . packet('c') if $a eq 'progress';
	if ($a eq 'progressloop') {
		for (;;) {
			syswrite($c, packet('p')) or return undef;
			logline('progress');
			sleep 0.5;
		}
	}
	return packet('y', "421 4.7.0 go away\0") if $a eq 'replycode421';
	return packet('y', "550 5.7.1 custom text\0") if $a eq 'replycode';
	return packet('y', "451 4.7.1 later please\0") if $a eq 'replycode4';
	return packet('q', "quarantine reason\0") . packet('c')
	    if $a eq 'quarantine';
	return edits() . packet('c') if $a eq 'edits';
	return packet('2', "<bad\@example.net>\0NOTIFY=NEVER,DELAY\0")
	    . packet('c') if $a eq 'badparams';
	return packet('h', "X-First-Milter\0yes\0") . packet('c')
	    if $a eq 'addhdr';
	return packet('Z', 'xy') if $a eq 'garbage';
	return pack('N', 0x7fffffff) . 'c' . ('x' x 100) if $a eq 'oversized';
	if ($a eq 'slowok') {
		sleep 1.5;
		return packet('c');
	}
	return '' if $a eq 'hang';
	return undef if $a eq 'close';
	return packet('c');
}

my $bodybytes;
while (my $c = $l->accept) {
	$done = undef;
	$bodybytes = 0;
	logline('connection');
	if ($mode eq 'nonego') {
		my $x;
		1 while sysread($c, $x, 1024);
		next;
	}
	while (defined(my $len = read_n($c, 4))) {
		$len = unpack 'N', $len;
		my $pkt = read_n($c, $len) // last;
		my $cmd = substr $pkt, 0, 1;
		my $data = substr $pkt, 1;
		if ($cmd eq 'D') {
			my ($for, $rest) = (substr($data, 0, 1), substr($data, 1));
			my %m = split /\0/, $rest, -1;
			delete $m{''};
			logline("macro $for " . join ' ', map { "$_=" . esc($m{$_}) }
			    sort keys %m);
			next;
		}
		logline("cmd $cmd " . esc($data));
		if ($cmd eq 'O') {
			my ($prot) = 0;
			$prot = 0x400 if defined $action && $action eq 'skip';
			$prot = 0x80 | 0x80000 if $mode eq 'nrbody';
			my $sym = '';
			$sym = pack('N', 3) . "j {rcpt_addr}\0" if $mode eq 'record';
			if (defined $action && $action eq 'hang' &&
			    $at eq 'O') {
				next;
			}
			syswrite $c, packet('O', pack('NNN', 6, 0x1ff, $prot) .
			    $sym);
			next;
		}
		# commands without a reply
		next if $cmd =~ /^[DA]$/;
		last if $cmd =~ /^[QK]$/;
		next if $mode eq 'hang';
		if ($mode eq 'nrbody') {
			if ($cmd eq 'B') {
				$bodybytes += length $data;
				next;
			}
			next if $cmd eq 'L';
			logline("bodybytes $bodybytes") if $cmd eq 'E';
		}
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
		my $out = answer($c, $cmd);
		last unless defined $out;
		syswrite $c, $out if length $out;
	}
	logline('closed');
	close $c;
}

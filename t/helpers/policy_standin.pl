#!/usr/bin/perl
# policy_standin.pl - a Postfix policy service stand-in for the faults no
# real policy server produces on demand (t/integration/22_policy.t).
#
#   policy_standin.pl --port PORT --dir DIR
#
# Listens on 127.0.0.1:PORT, one forked child per connection. Each
# request is logged to DIR/log as one line "request conn=N name=value
# ..." and every accepted connection as "connect N". The answer depends
# on the request's recipient, looked up in DIR/actions ("ADDRESS ACTION"
# lines, re-read per request; "eom:ADDRESS" for protocol_state
# END-OF-MESSAGE); DUNNO when absent. ACTION is sent as "action=ACTION",
# except these faults:
#   HANG        read the request, never answer
#   CLOSE       close without answering
#   CLOSE_MID   send half an answer, then close
#   GARBAGE     answer lines that are not name=value
#   ENDLESS     one endless line (until the peer closes)
#   CLOSE_AFTER answer DUNNO, then close the connection
#
# SPDX-License-Identifier: ISC

use strict;
use warnings;
use Getopt::Long;
use IO::Socket::INET;
use IO::Handle;
use POSIX qw(:sys_wait_h);

my ($port, $dir);
GetOptions('port=i' => \$port, 'dir=s' => \$dir) or die "usage\n";
die "usage: $0 --port PORT --dir DIR\n" unless $port && $dir;

my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
    LocalPort => $port, Listen => 64, ReuseAddr => 1)
    or die "listen 127.0.0.1:$port: $!\n";

open my $log, '>>', "$dir/log" or die "$dir/log: $!\n";
$log->autoflush(1);

my %kids;
$SIG{CHLD} = sub { while ((my $p = waitpid(-1, WNOHANG)) > 0) {
	delete $kids{$p} } };
$SIG{TERM} = $SIG{INT} = sub { kill 'KILL', keys %kids; exit 0 };

sub action_for {
	my ($key) = @_;
	open my $fh, '<', "$dir/actions" or return 'DUNNO';
	while (my $l = <$fh>) {
		chomp $l;
		my ($k, $a) = split ' ', $l, 2;
		return $a if defined $a && lc $k eq lc $key;
	}
	return 'DUNNO';
}

sub serve {
	my ($c, $n) = @_;
	my %req;
	my @order;
	while (defined(my $line = <$c>)) {
		chomp $line;
		if ($line ne '') {
			my ($k, $v) = split /=/, $line, 2;
			push @order, $line;
			$req{$k} = $v;
			next;
		}
		print $log "request conn=$n @order\n";
		my $key = ($req{protocol_state} // '') eq 'END-OF-MESSAGE' ?
		    'eom:' . ($req{recipient} // '') : ($req{recipient} // '');
		my $a = action_for($key);
		@order = ();
		%req = ();
		if ($a eq 'HANG') {
			sleep 3600;
		} elsif ($a eq 'CLOSE') {
			return;
		} elsif ($a eq 'CLOSE_MID') {
			syswrite $c, "action=REJ";
			return;
		} elsif ($a eq 'GARBAGE') {
			syswrite $c, "hello there\nthis is not a policy answer\n\n";
		} elsif ($a eq 'ENDLESS') {
			my $chunk = 'x' x 4096;
			syswrite $c, "action=DUNNO ";
			1 while defined syswrite $c, $chunk;
			return;
		} elsif ($a eq 'CLOSE_AFTER') {
			syswrite $c, "action=DUNNO\n\n";
			return;
		} else {
			syswrite $c, "action=$a\n\n";
		}
	}
}

print $log "READY\n";
my $n = 0;
for (;;) {
	my $c = $srv->accept or next;
	$n++;
	print $log "connect $n\n";
	my $pid = fork;
	if (!defined $pid) {
		close $c;
		next;
	}
	if ($pid == 0) {
		$SIG{TERM} = 'DEFAULT';
		close $srv;
		$SIG{PIPE} = 'IGNORE';
		serve($c, $n);
		close $c;
		POSIX::_exit(0);
	}
	$kids{$pid} = 1;
	close $c;
}

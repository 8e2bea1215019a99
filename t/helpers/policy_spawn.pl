#!/usr/bin/perl
# policy_spawn.pl - what Postfix's spawn(8) does for a policy server that
# speaks on stdin/stdout (policyd-spf): one child per TCP connection,
# the connection as its stdin and stdout.
#
#   policy_spawn.pl --port PORT --log FILE -- COMMAND ARGS...
#
# Listens on 127.0.0.1:PORT; logs "READY" and "spawn N" lines to FILE.
# SIGTERM kills the children too.
#
# SPDX-License-Identifier: ISC

use strict;
use warnings;
use Getopt::Long;
use IO::Socket::INET;
use IO::Handle;
use POSIX qw(:sys_wait_h);

my ($port, $logfile);
GetOptions('port=i' => \$port, 'log=s' => \$logfile) or die "usage\n";
die "usage: $0 --port PORT --log FILE -- CMD...\n"
    unless $port && $logfile && @ARGV;

my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
    LocalPort => $port, Listen => 64, ReuseAddr => 1)
    or die "listen 127.0.0.1:$port: $!\n";
open my $log, '>>', $logfile or die "$logfile: $!\n";
$log->autoflush(1);

my %kids;
$SIG{CHLD} = sub { while ((my $p = waitpid(-1, WNOHANG)) > 0) {
	delete $kids{$p} } };
$SIG{TERM} = $SIG{INT} = sub { kill 'TERM', keys %kids; exit 0 };

print $log "READY\n";
my $n = 0;
for (;;) {
	my $c = $srv->accept or next;
	$n++;
	print $log "spawn $n\n";
	my $pid = fork;
	if (!defined $pid) {
		close $c;
		next;
	}
	if ($pid == 0) {
		close $srv;
		$SIG{TERM} = $SIG{INT} = $SIG{CHLD} = 'DEFAULT';
		open STDIN, '<&', $c or POSIX::_exit(126);
		open STDOUT, '>&', $c or POSIX::_exit(126);
		close $c;
		exec @ARGV or POSIX::_exit(127);
	}
	$kids{$pid} = 1;
	close $c;
}

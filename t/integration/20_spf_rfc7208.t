#!/usr/bin/perl
# 20_spf_rfc7208.t - the openspf.org RFC 7208 test suite against Postern's
# SPF module, through the path production uses: the postern-spf helper,
# libspf2 on top of our DNS layer (dns_sync, libunbound), forwarding to a
# DNS server on 127.0.0.1 that serves the suite's zone data
# (t/helpers/zone_dns.pl). doc/spf-conformance.md has the results and the
# reason for every case that fails.
#
# For each scenario (one YAML document of the suite): zone_dns.pl serves
# its zone data, t/helpers/spf_query runs its cases, one TAP assertion per
# case, named "scenario: case". A case passes when the result is one of
# the suite's acceptable results and, where the suite gives one, the
# explanation (the text of a fail reply) is the same. The suite's
# "DEFAULT" explanation (the receiver's own, no exp= applies) is matched
# against Postern's default explanation, $DEFAULT_EXPLANATION below.
#
# Scenarios whose zone has a TIMEOUT name run every case in a fresh
# spf_query (and so a fresh libunbound context). A name that never
# answers makes libunbound back off from the server that did not answer;
# in the suite one server stands for the servers of every domain, so the
# back-off would spill over into the next, unrelated cases, which it
# cannot do in real DNS where ip8.example.com and ip5.example.com have
# their own servers.
#
# Environment:
#   POSTERN_BUILD         build tree (default: the source tree)
#   RFC7208_SUITE         the suite (default ../shared/conformance/...)
#   SPF_RFC7208_TIMEOUT   per check, ms (default 3000)
#   SPF_RFC7208_ISOLATE   1: a fresh spf_query for every case
#   SPF_RFC7208_ONLY      regex: run only the cases whose name matches
#   SPF_RFC7208_REPORT    file: one line per case, tab separated
#                         (name, ok|FAIL, got, want, why, comment)
#   SPF_RFC7208_DNSLOG    1: print the DNS queries of each failing case
#                         (with SPF_RFC7208_ISOLATE=1 they are exact)
#   SPF_RFC7208_KEEP      1: keep the temporary directory
#
# SPDX-License-Identifier: ISC

use strict;
use warnings;
use FindBin;
use File::Temp qw(tempdir);
use IO::Handle;
use IO::Select;
use JSON::PP;
use POSIX qw(:sys_wait_h);
use Test::More;
our $TODO;	# set per case for %KNOWN_FAILURE (see record)

# Cases that fail for a reason outside Postern, each explained in
# doc/spf-conformance.md. They stay real assertions, run and reported as
# TODO (prove counts them apart: never as passes); when one starts to
# pass, prove says "TODO passed" and the entry must go.
my %KNOWN_FAILURE = (
	'null-text' => 'libunbound answers SERVFAIL for an RRset holding a '
	    . 'TXT record without strings, so the good record never arrives '
	    . '(doc/spf-conformance.md)',
);

use Time::HiRes qw(time sleep);

my $TOP = "$FindBin::Bin/../..";
my $BUILD = $ENV{POSTERN_BUILD} // $TOP;
my $SUITE = $ENV{RFC7208_SUITE}
    // "$TOP/../shared/conformance/rfc7208-tests.yml";
my $DRIVER = "$BUILD/t/helpers/spf_query";
my $HELPER = "$BUILD/postern-spf";
my $ZONE_DNS = "$FindBin::Bin/../helpers/zone_dns.pl";
my $CASES = "$FindBin::Bin/../helpers/rfc7208_cases.py";
my $PYTHON = '/usr/bin/python3';
my $RECEIVER = 'receiver.postern.invalid';
my $TIMEOUT_MS = $ENV{SPF_RFC7208_TIMEOUT} || 3000;
my $ONLY = $ENV{SPF_RFC7208_ONLY};

# Postern's default explanation (spf/spf_eval.c): "%{i} is not allowed to
# send mail for %{d}"
my $DEFAULT_EXPLANATION = qr/\A\S+ is not allowed to send mail for \S+\z/;

for my $need ([$SUITE, 'the RFC 7208 suite'], [$DRIVER, 'spf_query'],
    [$HELPER, 'postern-spf']) {
	plan skip_all => "$need->[1] not found ($need->[0])"
	    unless -e $need->[0];
}
plan skip_all => "$PYTHON with the yaml module is needed"
    unless system($PYTHON, '-c', 'import yaml') == 0;

my $dir = tempdir('spf7208.XXXXXX', TMPDIR => 1,
    CLEANUP => !$ENV{SPF_RFC7208_KEEP});
diag("temporary directory $dir kept") if $ENV{SPF_RFC7208_KEEP};

my $json = "$dir/cases.json";
system($PYTHON, $CASES, $SUITE, $json) == 0
    or BAIL_OUT("rfc7208_cases.py failed on $SUITE");
my $data = do {
	open(my $fh, '<:raw', $json) or die "$json: $!";
	local $/;
	decode_json(<$fh>);
};

my %children;			# pid => what, for the END clean-up
my ($total, $passed) = (0, 0);
my @failed;
my $report;
if ($ENV{SPF_RFC7208_REPORT}) {
	open($report, '>', $ENV{SPF_RFC7208_REPORT})
	    or die "$ENV{SPF_RFC7208_REPORT}: $!";
}

check_dns_server() unless defined $ONLY;

for my $i (0 .. $#{$data->{scenarios}}) {
	my $sc = $data->{scenarios}[$i];
	my @tests = grep { !defined $ONLY || $_->{name} =~ /$ONLY/ }
	    @{$sc->{tests}};
	next unless @tests;
	run_scenario($i, $sc, \@tests);
}

my $summary = sprintf('RFC 7208 suite: %d of %d cases pass', $passed,
    $total);
diag($summary);
diag('failing: ' . join(', ', @failed)) if @failed;
print $report "# $summary\n" if $report;
done_testing();

END {
	# a test that dies leaves no server or driver behind
	for my $pid (keys %children) {
		kill('TERM', $pid);
		waitpid($pid, 0);
	}
}

# --- scenarios ----------------------------------------------------------------

# run_scenario - serve the zone of scenario I, run its cases
sub run_scenario {
	my ($i, $sc, $tests) = @_;
	my $log = "$dir/dns-$i.log";
	my ($dns_pid, $port) = start_dns($i, $log);

	unless (defined $port) {
		for my $t (@$tests) {
			record($sc, $t, 0, undef,
			    'zone_dns.pl did not start');
		}
		return;
	}
	my $isolate = $ENV{SPF_RFC7208_ISOLATE}
	    || grep { grep { $_->{type} eq 'TIMEOUT' || $_->{timeout} } @$_ }
	    values %{$sc->{zone}};
	my @batches = $isolate ? map { [$_] } @$tests : ($tests);
	for my $batch (@batches) {
		my $mark = -s $log // 0;
		my ($answers, $trouble) = run_driver($port, $batch);
		for my $k (0 .. $#$batch) {
			check_case($sc, $batch->[$k], $answers->[$k], $trouble,
			    $log, $mark);
		}
	}
	stop_child($dns_pid);
}

# check_dns_server - the server itself, on the zone of "Record lookup",
# so that a fault of the test server is not taken for one of the module
# (these assertions are not counted as suite cases)
sub check_dns_server {
	my ($i) = grep { $data->{scenarios}[$_]{description} eq
	    'Record lookup' } 0 .. $#{$data->{scenarios}};
	return unless defined $i;
	require Net::DNS;
	my ($pid, $port) = start_dns($i, "$dir/dns-check.log");
	ok(defined $port, 'zone_dns: starts and prints its port')
	    or return;
	my $res = Net::DNS::Resolver->new(nameservers => ['127.0.0.1'],
	    port => $port, recurse => 1, retry => 1, udp_timeout => 2,
	    tcp_timeout => 2);
	my @cases = (
		# name, type, want: rcode/answers/aa, or undef for no reply
		['txtonly.example.net', 'TXT', 'NOERROR/1/1', 0],
		['spfonly.example.net', 'TXT', 'NOERROR/0/1', 0],
		['spfonly.example.net', 'SPF', 'NOERROR/1/1', 0],
		['EXAMPLE.net', 'A', 'NOERROR/0/1', 0],	# parent only
		['nothere.example.net', 'TXT', 'NXDOMAIN/0/1', 0],
		['txtonly.example.net', 'TXT', 'NOERROR/1/1', 1],	# TCP
		['txttimeout.example.net', 'TXT', undef, 0],
		['spftimeout.example.net', 'TXT', 'NOERROR/1/1', 0],
	);
	for my $c (@cases) {
		my ($name, $type, $want, $tcp) = @$c;
		$res->usevc($tcp);
		my $p = $res->send($name, $type);
		my $got = $p ? join('/', $p->header->rcode,
		    scalar($p->answer), $p->header->aa) : undef;
		is($got, $want, "zone_dns: $name $type" . ($tcp ? ' (TCP)'
		    : '') . ' -> ' . ($want // 'no reply'));
	}
	stop_child($pid);
}

# start_dns - zone_dns.pl for scenario I: (pid, port), port undef if it
# did not come up within 10 s
sub start_dns {
	my ($i, $log) = @_;

	pipe(my $rd, my $wr) or die "pipe: $!";
	my $pid = fork() // die "fork: $!";
	if ($pid == 0) {
		close($rd);
		open(STDOUT, '>&', $wr) or POSIX::_exit(127);
		no warnings 'exec';
		exec { 'perl' } 'perl', $ZONE_DNS, '--zone', $json,
		    '--scenario', $i, '--log', $log, '--parent', getppid();
		POSIX::_exit(127);
	}
	close($wr);
	$children{$pid} = 'zone_dns.pl';
	my $line = read_line($rd, time() + 10);
	close($rd);
	return ($pid, $1) if defined $line && $line =~ /^PORT (\d+)$/;
	diag("zone_dns.pl for scenario $i: " . ($line // 'no output'));
	stop_child($pid);
	return ($pid, undef);
}

# run_driver - one spf_query for the cases of BATCH: (answers, trouble),
# answers->[k] = [result, explanation, comment] or undef, trouble = text
# when the driver did not answer every case
sub run_driver {
	my ($port, $batch) = @_;
	my $err = "$dir/spf_query.err";

	pipe(my $in_rd, my $in_wr) or die "pipe: $!";
	pipe(my $out_rd, my $out_wr) or die "pipe: $!";
	my $pid = fork() // die "fork: $!";
	if ($pid == 0) {
		close($in_wr);
		close($out_rd);
		open(STDIN, '<&', $in_rd) or POSIX::_exit(127);
		open(STDOUT, '>&', $out_wr) or POSIX::_exit(127);
		open(STDERR, '>', $err) or POSIX::_exit(127);
		no warnings 'exec';
		exec { $DRIVER } $DRIVER, '--helper', $HELPER, '--resolver',
		    "127.0.0.1\@$port", '--receiver', $RECEIVER,
		    '--timeout', $TIMEOUT_MS;
		POSIX::_exit(127);
	}
	close($in_rd);
	close($out_wr);
	$children{$pid} = 'spf_query';

	# a few short lines: they fit in the pipe, no need to interleave
	local $SIG{PIPE} = 'IGNORE';
	for my $t (@$batch) {
		print $in_wr join("\t", map { clean($_) } $t->{host},
		    $t->{helo}, $t->{mailfrom}, $t->{identity}), "\n";
	}
	close($in_wr);

	my $deadline = time() + 10 + @$batch * ($TIMEOUT_MS / 1000 + 2);
	my @answers;
	while (@answers < @$batch) {
		my $line = read_line($out_rd, $deadline);
		last unless defined $line;
		my @f = split(/\t/, $line, -1);
		push @answers, [$f[0] // '', $f[1] // '', $f[2] // ''];
	}
	close($out_rd);
	my $status = stop_child($pid, 5);
	my $trouble;
	if (@answers < @$batch || $status != 0) {
		$trouble = sprintf('spf_query answered %d of %d, %s%s',
		    scalar @answers, scalar @$batch, describe_status($status),
		    tail($err));
	}
	return (\@answers, $trouble);
}

# check_case - one TAP assertion for case T of scenario SC
sub check_case {
	my ($sc, $t, $answer, $trouble, $log, $mark) = @_;
	my @why;

	unless ($answer) {
		record($sc, $t, 0, undef, $trouble // 'no answer');
		return;
	}
	my ($result, $exp, $comment) = @$answer;
	push @why, "result $result, want " . join(' or ', @{$t->{results}})
	    unless grep { lc($result) eq $_ } @{$t->{results}};
	if (defined $t->{explanation} && !@why) {
		my $want = $t->{explanation};
		my $ok = $want eq 'DEFAULT' ? $exp =~ $DEFAULT_EXPLANATION
		    : $exp eq $want;
		push @why, "explanation '$exp', want " . ($want eq 'DEFAULT'
		    ? "Postern's default" : "'$want'") unless $ok;
	}
	push @why, "spf_query: $trouble" if $trouble && @why;
	my $ok = record($sc, $t, !@why, $answer, join('; ', @why));
	if (!$ok && $ENV{SPF_RFC7208_DNSLOG}) {
		diag("  dns: $_") for dns_lines($log, $mark);
	}
}

# record - the assertion, the counters and the report line
sub record {
	my ($sc, $t, $ok, $answer, $why) = @_;
	my $name = "$sc->{description}: $t->{name}";
	my $got = $answer ? $answer->[0] : '-';
	local $TODO = $KNOWN_FAILURE{$t->{name}};

	$total++;
	if ($ok) {
		$passed++;
	} else {
		push @failed, $t->{name};
	}
	ok($ok, $name) or diag(sprintf("  %s (spec %s)\n  host=%s helo=%s "
	    . "mailfrom=<%s>\n  comment: %s", $why, $t->{spec}, $t->{host},
	    $t->{helo}, $t->{mailfrom}, $answer ? $answer->[2] : '-'));
	if ($report) {
		print $report join("\t", $name, $ok ? 'ok' : 'FAIL', $got,
		    join('|', @{$t->{results}}), clean($why // ''),
		    $answer ? clean($answer->[2]) : ''), "\n";
	}
	return $ok;
}

# --- processes and pipes ----------------------------------------------------

# read_line - one line from FH before DEADLINE (epoch seconds), or undef
sub read_line {
	my ($fh, $deadline) = @_;
	my $sel = IO::Select->new($fh);
	my $buf = '';

	for (;;) {
		my $left = $deadline - time();
		return undef if $left <= 0 || !$sel->can_read($left);
		my $n = sysread($fh, my $c, 1);
		return length $buf ? $buf : undef unless $n;
		return $buf if $c eq "\n";
		$buf .= $c;
	}
}

# stop_child - wait up to GRACE seconds for PID, then TERM, then KILL;
# its wait status
sub stop_child {
	my ($pid, $grace) = @_;
	my $end = time() + ($grace // 0);

	for my $sig (undef, 'TERM', 'KILL') {
		kill($sig, $pid) if defined $sig;
		$end = time() + 3 if defined $sig;
		while (time() < $end) {
			if (waitpid($pid, WNOHANG) == $pid) {
				delete $children{$pid};
				return $?;
			}
			sleep(0.02);
		}
	}
	waitpid($pid, 0);
	delete $children{$pid};
	return $?;
}

sub describe_status {
	my ($st) = @_;

	return 'exit 0' if $st == 0;
	return 'killed by signal ' . ($st & 127) if $st & 127;
	return 'exit ' . ($st >> 8);
}

# tail - the last lines of FILE, for a diagnostic
sub tail {
	my ($file) = @_;

	open(my $fh, '<', $file) or return '';
	my @l = <$fh>;
	close($fh);
	return '' unless @l;
	splice(@l, 0, @l - 5) if @l > 5;
	chomp(@l);
	return '; stderr: ' . join(' | ', @l);
}

# dns_lines - the query log of the DNS server from byte MARK on
sub dns_lines {
	my ($log, $mark) = @_;

	open(my $fh, '<', $log) or return;
	seek($fh, $mark, 0);
	my @l = <$fh>;
	close($fh);
	chomp(@l);
	return @l;
}

# clean - no tab or line break may reach the line protocol
sub clean {
	my ($s) = @_;

	$s //= '';
	$s =~ s/[\t\r\n]/ /g;
	return $s;
}

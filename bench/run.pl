#!/usr/bin/perl
# bench/run.pl - relay benchmark: Postfix's smtp-source sends into posternd
# or into a private stock Postfix, which relay to smtp-sink, all on 127.0.0.1.
# Runs the two systems alternately and prints messages per second end to end
# and CPU seconds per 1000 messages (median per cell, ratio postern/postfix).
# See bench/README.md.
# SPDX-License-Identifier: ISC

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(remove_tree);
use File::Temp qw(tempdir);
use Getopt::Long qw(GetOptions);
use IO::Socket::INET;
use POSIX qw(:sys_wait_h strftime);
use Time::HiRes qw(time sleep);

my $BENCH_DIR = dirname(abs_path($0));
my $TOP_DIR = dirname($BENCH_DIR);
my $TICK = POSIX::sysconf(POSIX::_SC_CLK_TCK) || 100;
my $ncpu = do {
	open my $fh, '<', '/proc/stat' or die "/proc/stat: $!\n";
	scalar grep { /^cpu\d+\s/ } <$fh>;
} || 1;

my %opt = (
	rounds		=> 3,
	sizes		=> '4k,100k',
	sessions	=> 20,
	warmup		=> 40,
	timeout		=> 30,
	settle		=> 1.0,
	tmpdir		=> '/var/tmp',
	posternd	=> $ENV{POSTERND} || "$TOP_DIR/posternd",
	master		=> '/usr/lib/postfix/sbin/master',
	postfix		=> '/usr/sbin/postfix',
	source		=> '/usr/sbin/smtp-source',
	sink		=> '/usr/sbin/smtp-sink',
);
my %count = ('4k' => 5000, '100k' => 2000);
my (@postern_opt, @postfix_opt);

sub usage
{
	print STDERR <<"EOF";
usage: $0 [options]
  --rounds R          rounds; each round runs every size on every system (3)
  --sizes LIST        message body sizes, e.g. 4k,100k or 512,1m (4k,100k)
  --count SIZE=N      messages per run for SIZE (4k=5000, 100k=2000,
                      other sizes 1000)
  --sessions S        concurrent smtp-source sessions (20)
  --warmup N          messages sent (not measured) before each run (40)
  --reuse             send all messages of a session over one connection
                      (smtp-source -d); default: one connection per message
  --only SYSTEM       run only postern or only postfix
  --posternd PATH     the daemon (\$POSTERND, else $TOP_DIR/posternd)
  --postern-opt LINE  extra posternd config line, e.g. 'x = y' (repeatable)
  --postfix-opt LINE  extra Postfix main.cf line (repeatable)
  --tmpdir DIR        where spools live; use a real disk, not tmpfs (/var/tmp)
  --timeout SEC       fail a run when the sink count stalls this long (30)
  --settle SEC        pause before and after the measured part (1)
  --master, --postfix, --source, --sink PATH
                      Postfix programs (Debian's paths by default)
  --out FILE          also write the results (markdown) to FILE
  --keep              keep the temporary directory (logs, spools)
  --check-targets     exit 3 unless postern reaches the issue's targets
                      (>= 2x Postfix's msg/s, <= 0.5x its CPU per message)
  --verbose           print progress details
EOF
	exit 2;
}

GetOptions(\%opt, 'rounds=i', 'sizes=s', 'sessions=i', 'warmup=i',
    'only=s', 'posternd=s', 'tmpdir=s', 'timeout=i', 'settle=f', 'out=s',
    'keep', 'verbose', 'check-targets', 'reuse', 'master=s', 'postfix=s',
    'source=s', 'sink=s',
    'count=s' => \%count, 'postern-opt=s' => \@postern_opt,
    'postfix-opt=s' => \@postfix_opt, 'help' => \&usage) or usage();
@ARGV and usage();
%count = map { lc($_) => $count{$_} } keys %count;
$opt{rounds} >= 1 && $opt{sessions} >= 1 && $opt{warmup} >= 0 or usage();

my @systems = ('postern', 'postfix');
if (defined $opt{only}) {
	grep { $_ eq $opt{only} } @systems
	    or die "--only must be postern or postfix\n";
	@systems = ($opt{only});
}

# Sizes: "4k" is 4096 bytes of body (smtp-source -l), "1m" is 1048576.
my @sizes;
for my $name (split /,/, $opt{sizes}) {
	$name =~ /^(\d+)([km]?)$/i or die "bad size '$name'\n";
	my $bytes = $1 * {'' => 1, k => 1024, m => 1048576}->{lc $2};
	my $n = $count{lc $name} // 1000;
	$n =~ /^\d+$/ && $n > 0 or die "bad count for $name\n";
	push @sizes, {name => lc $name, bytes => $bytes, count => $n};
}

my $is_root = $> == 0;
for my $prog ($opt{source}, $opt{sink}) {
	-x $prog or die "$prog not found (apt-get install postfix)\n";
}
if (grep { $_ eq 'postfix' } @systems) {
	-x $opt{master} && -x $opt{postfix}
	    or die "Postfix not found ($opt{master})\n";
	$is_root or die "the private Postfix needs root; use --only postern\n";
}
if (grep { $_ eq 'postern' } @systems) {
	-x $opt{posternd} or die "posternd not found: $opt{posternd} " .
	    "(build it, set \$POSTERND or use --only postfix)\n";
	$opt{posternd} = abs_path($opt{posternd});
}

# The file system type of a directory, from the longest matching mount point.
sub fs_type
{
	my ($dir) = @_;
	my ($best, $type) = ('', '?');
	open my $fh, '<', '/proc/mounts' or return $type;
	while (<$fh>) {
		my (undef, $mnt, $t) = split;
		next unless $dir eq $mnt || index("$dir/", "$mnt/") == 0 ||
		    $mnt eq '/';
		($best, $type) = ($mnt, $t) if length $mnt >= length $best;
	}
	return $type;
}
my $tmp_fs = fs_type(abs_path($opt{tmpdir}) // $opt{tmpdir});
warn "WARNING: $opt{tmpdir} is $tmp_fs: fsync costs nothing there\n"
    if $tmp_fs =~ /^(?:tmpfs|ramfs)$/;

my $TOP_TMP = tempdir('postern-bench.XXXXXX', DIR => $opt{tmpdir},
    CLEANUP => 0);
chmod 0755, $TOP_TMP;		# mail_owner must be able to traverse it

# Every process this script starts, so that an error or ^C stops them all.
my %children;			# pid => name

# Become the child subreaper (prctl PR_SET_CHILD_SUBREAPER): Postfix's
# daemons that outlive their master are re-parented to this script, which
# reaps them, instead of lingering under init between runs.
eval {
	require 'syscall.ph';
	syscall(&SYS_prctl, 36, 1, 0, 0, 0) == 0 or die;
	1;
} or note('cannot become subreaper; orphans go to init');

sub reap_orphans
{
	while ((my $pid = waitpid(-1, WNOHANG)) > 0) {
		delete $children{$pid};
	}
}

sub note
{
	print STDERR @_, "\n" if $opt{verbose};
}

sub cleanup
{
	for my $pid (keys %children) {
		kill 'TERM', $pid;
	}
	my $deadline = time + 10;
	while (%children && time < $deadline) {
		for my $pid (keys %children) {
			delete $children{$pid} if waitpid($pid, WNOHANG) != 0;
		}
		sleep 0.05;
	}
	for my $pid (keys %children) {
		kill 'KILL', $pid;
		waitpid($pid, 0);
		delete $children{$pid};
	}
	reap_orphans();
}

$SIG{INT} = $SIG{TERM} = sub {
	cleanup();
	print STDERR "interrupted; files kept in $TOP_TMP\n";
	POSIX::_exit(130);
};

sub spawn
{
	my ($name, $out, $err, @cmd) = @_;
	my $pid = fork;
	defined $pid or die "fork: $!\n";
	if ($pid == 0) {
		$SIG{INT} = $SIG{TERM} = 'DEFAULT';
		# Its own process group: Postfix's master signals its group
		# on SIGTERM, and ^C reaches only this script, which stops
		# every child itself.
		POSIX::setsid();
		open STDIN, '<', '/dev/null';
		open STDOUT, '>', $out or POSIX::_exit(127);
		open STDERR, '>', $err or POSIX::_exit(127);
		exec { $cmd[0] } @cmd
		    or print STDERR "exec $cmd[0]: $!\n";
		POSIX::_exit(127);
	}
	$children{$pid} = $name;
	note("started $name (pid $pid): @cmd");
	return $pid;
}

# Stops a process we started and waits for it; SIGKILL after $grace seconds.
sub stop
{
	my ($pid, $grace) = @_;
	return unless $children{$pid};
	kill 'TERM', $pid;
	my $deadline = time + $grace;
	while (time < $deadline) {
		if (waitpid($pid, WNOHANG) != 0) {
			delete $children{$pid};
			return;
		}
		sleep 0.02;
	}
	warn "pid $pid ($children{$pid}) ignored SIGTERM; killing it\n";
	kill 'KILL', $pid;
	waitpid($pid, 0);
	delete $children{$pid};
}

sub slurp
{
	my ($path) = @_;
	open my $fh, '<', $path or return '';
	local $/;
	my $s = <$fh>;
	return $s // '';
}

sub spew
{
	my ($path, $text) = @_;
	open my $fh, '>', $path or die "$path: $!\n";
	print $fh $text;
	close $fh or die "$path: $!\n";
}

sub tail_of
{
	my ($path, $lines) = @_;
	my @l = split /\n/, slurp($path);
	splice @l, 0, @l - $lines if @l > $lines;
	return join('', map { "    | $_\n" } @l);
}

sub template
{
	my ($in, $out, %vars) = @_;
	my $text = slurp($in);
	$text ne '' or die "$in: missing or empty\n";
	$text =~ s/\@(\w+)\@/exists $vars{$1} ? $vars{$1} :
	    die "$in: unknown \@$1\@\n"/ge;
	spew($out, $text);
}

# A free TCP port on 127.0.0.1 (the kernel picks one; racy but fine here).
sub free_port
{
	my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
	    LocalPort => 0, Proto => 'tcp', Listen => 1, ReuseAddr => 1)
	    or die "cannot bind a port: $!\n";
	my $port = $s->sockport;
	close $s;
	return $port;
}

# True when something listens on 127.0.0.1:$port (read from /proc, so that
# the check itself opens no SMTP session).
sub is_listening
{
	my ($port) = @_;
	my $want = sprintf('0100007F:%04X', $port);
	my $any = sprintf('00000000:%04X', $port);
	open my $fh, '<', '/proc/net/tcp' or return 0;
	while (<$fh>) {
		my @f = split;
		next unless @f > 3;
		return 1 if ($f[1] eq $want || $f[1] eq $any) && $f[3] eq '0A';
	}
	return 0;
}

sub wait_listening
{
	my ($port, $pid, $what, $log) = @_;
	my $deadline = time + 20;
	while (time < $deadline) {
		return if is_listening($port);
		if (waitpid($pid, WNOHANG) != 0) {
			delete $children{$pid};
			die "$what exited during start-up (" . describe_status($?) . "); " .
			    "log:\n" . tail_of($log, 15);
		}
		sleep 0.02;
	}
	die "$what does not listen on 127.0.0.1:$port after 20 s; log:\n" .
	    tail_of($log, 15);
}

# /proc/PID/stat fields after the command name: [1] ppid, [11] utime,
# [12] stime, [13] cutime, [14] cstime, [19] starttime.
sub proc_stat
{
	my ($pid) = @_;
	my $s = slurp("/proc/$pid/stat");
	$s =~ /\)\s+(.*)$/s or return undef;
	return [split /\s+/, $1];
}

# CPU ticks of the process tree under $root: for every live process its own
# time (all threads) plus that of its reaped children. A process that exits
# between two samples moves its time into its parent's cutime/cstime, so the
# difference of two samples counts it exactly once.
sub tree_cpu
{
	my ($root) = @_;
	my (%kids, %stat);
	opendir my $dh, '/proc' or die "/proc: $!\n";
	for my $pid (grep { /^\d+$/ } readdir $dh) {
		my $st = proc_stat($pid) or next;
		$stat{$pid} = $st;
		push @{$kids{$st->[1]}}, $pid;
	}
	closedir $dh;
	my ($ticks, @pids, @todo) = (0);
	@todo = ($root);
	while (defined(my $pid = shift @todo)) {
		my $st = $stat{$pid} or next;
		$ticks += $st->[11] + $st->[12] + $st->[13] + $st->[14];
		push @pids, $pid;
		push @todo, @{$kids{$pid} || []};
	}
	return ($ticks, \@pids);
}

# smtp-sink -c writes "sess=N quit=N mesg=N\r" after every event, unbuffered
# when stdout is a file; this reads what was added since the last call.
sub sink_reader
{
	my ($path) = @_;
	open my $fh, '<', $path or die "$path: $!\n";
	my ($partial, $mesg) = ('', 0);
	return sub {
		my $buf;
		while (sysread($fh, $buf, 65536)) {
			$partial .= $buf;
		}
		while ($partial =~ s/^([^\r\n]*)[\r\n]//) {
			my $line = $1;
			next unless $line =~ /\bmesg=(\d+)/;
			$mesg = $1 if $1 > $mesg;
		}
		return $mesg;
	};
}

sub describe_status
{
	my ($st) = @_;
	return 'killed by signal ' . ($st & 127) if $st & 127;
	return 'exit status ' . ($st >> 8);
}

# Dies when one of @pids (processes we started) has exited.
sub check_alive
{
	my ($what, @pids) = @_;
	for my $pid (@pids) {
		next unless $children{$pid};
		next if waitpid($pid, WNOHANG) == 0;
		my $name = delete $children{$pid};
		die "$what: $name (pid $pid) exited: " . describe_status($?) .
		    "\n";
	}
}

# Waits until the sink has counted $want messages; returns the time it did.
# Dies when the count does not move for --timeout seconds, or when the sink
# or the system is gone.
sub wait_sink
{
	my ($reader, $want, $what, $src, @watch) = @_;
	my ($last, $last_change) = ($reader->(), time);
	while (1) {
		my $n = $reader->();
		return time if $n >= $want;
		source_done($src);
		check_alive($what, @watch);
		if ($n != $last) {
			($last, $last_change) = ($n, time);
		} elsif (time - $last_change > $opt{timeout}) {
			die "$what: smtp-sink has $n of $want messages and " .
			    "no progress for $opt{timeout} s\n";
		}
		sleep 0.005;
	}
}

# Busy CPU seconds of the whole machine (all cores), from /proc/stat.
sub machine_busy
{
	my ($line) = slurp('/proc/stat') =~ /^cpu\s+(.*)$/m or return 0;
	my @f = split /\s+/, $line;
	my $busy = 0;
	$busy += $f[$_] // 0 for (0, 1, 2, 5, 6);
	return $busy / $TICK;
}

sub run_source
{
	my ($dir, $tag, $port, $n, $bytes) = @_;
	my $s = $n < $opt{sessions} ? $n : $opt{sessions};
	my $pid = spawn("smtp-source", "$dir/source-$tag.out",
	    "$dir/source-$tag.err", $opt{source},
	    ($opt{reuse} ? '-d' : ()), '-s', $s, '-m', $n,
	    '-l', $bytes, '-M', 'bench.example.test',
	    '-f', 'bench@bench.example.test', '-t', 'sink@example.net',
	    "127.0.0.1:$port");
	return {pid => $pid, err => "$dir/source-$tag.err", done => 0};
}

# Checks whether smtp-source is done; dies at once when it failed (it stops
# at the first reply that is not 2xx), so that a rejecting system does not
# wait for the --timeout.
sub source_done
{
	my ($src) = @_;
	return 1 if $src->{done};
	return 0 if waitpid($src->{pid}, WNOHANG) == 0;
	delete $children{$src->{pid}};
	$? == 0 or die "smtp-source failed (" . describe_status($?) . "):\n" .
	    tail_of($src->{err}, 10);
	$src->{done} = time;
	return 1;
}

sub wait_source
{
	my ($src) = @_;
	my $deadline = time + $opt{timeout};
	until (source_done($src)) {
		if (time > $deadline) {
			stop($src->{pid}, 1);
			die "smtp-source did not finish\n";
		}
		sleep 0.01;
	}
}

# Starts a system; returns {pid, port, log, count_sent} for the measurement.
sub start_postfix
{
	my ($dir, $sink_port) = @_;
	my $port = free_port();
	mkdir "$dir/$_" for qw(etc spool data);
	my (undef, undef, $uid, $gid) = getpwnam('postfix')
	    or die "no postfix user\n";
	chown $uid, $gid, "$dir/data";
	my %v = (DIR => $dir, PORT => $port, SINKPORT => $sink_port);
	template("$BENCH_DIR/postfix/main.cf.in", "$dir/etc/main.cf", %v);
	template("$BENCH_DIR/postfix/master.cf.in", "$dir/etc/master.cf", %v);
	if (@postfix_opt) {
		open my $fh, '>>', "$dir/etc/main.cf" or die "$!\n";
		print $fh "\n# --postfix-opt\n", map { "$_\n" } @postfix_opt;
	}
	system($opt{postfix}, '-c', "$dir/etc", 'check') == 0
	    or die "postfix -c $dir/etc check failed:\n" .
	    tail_of("$dir/maillog", 10);
	my $pid = spawn('postfix master', "$dir/master.out", "$dir/master.out",
	    $opt{master}, '-c', "$dir/etc", '-d');
	wait_listening($port, $pid, 'Postfix master', "$dir/maillog");
	return {pid => $pid, port => $port, log => "$dir/maillog",
	    grace => 15, count_sent => sub {
		my $log = slurp("$dir/maillog");
		my $sent = () = $log =~ /\bstatus=sent\b/g;
		my $bad = () = $log =~ /\bstatus=(?:deferred|bounced)\b/g;
		return ($sent, $bad);
	}};
}

sub start_postern
{
	my ($dir, $sink_port) = @_;
	my $port = free_port();
	mkdir "$dir/$_", 0700 for qw(spool mail);
	if ($is_root) {
		my (undef, undef, $uid, $gid) = getpwnam('nobody')
		    or die "no user nobody\n";
		chown $uid, $gid, "$dir/spool", "$dir/mail";
	}
	template("$BENCH_DIR/postern/postern.cf.in", "$dir/postern.cf",
	    DIR => $dir, PORT => $port, SINKPORT => $sink_port);
	if ($is_root || @postern_opt) {
		open my $fh, '>>', "$dir/postern.cf" or die "$!\n";
		print $fh "mail_owner = nobody\n" if $is_root;
		print $fh "# --postern-opt\n", map { "$_\n" } @postern_opt
		    if @postern_opt;
	}
	my $pid = spawn('posternd', "$dir/posternd.out", "$dir/posternd.log",
	    $opt{posternd}, '-c', "$dir/postern.cf");
	wait_listening($port, $pid, 'posternd', "$dir/posternd.log");
	return {pid => $pid, port => $port, log => "$dir/posternd.log",
	    grace => 15, count_sent => sub {
		my $log = slurp("$dir/posternd.log");
		my $sent = () = $log =~ /\bstatus=sent\b/g;
		my $bad = () = $log =~ /\bstatus=(?:deferred|bounced)\b/g;
		return ($sent, $bad);
	}};
}

# One measurement: fresh sink, fresh system, warm-up, then $size->{count}
# messages. Returns {rate, cpu1000, ...}; dies on any failure.
sub run_one
{
	my ($system, $size, $dir) = @_;
	mkdir $dir or die "$dir: $!\n";
	chmod 0755, $dir;
	my $sink_port = free_port();
	my @user = $is_root ? ('-u', 'nobody') : ();
	my $sink = spawn('smtp-sink', "$dir/sink.out", "$dir/sink.err",
	    $opt{sink}, '-c', @user, "127.0.0.1:$sink_port", 256);
	wait_listening($sink_port, $sink, 'smtp-sink', "$dir/sink.err");
	my $reader = sink_reader("$dir/sink.out");

	my $sys;
	my $res = eval {
		$sys = $system eq 'postfix' ? start_postfix($dir, $sink_port) :
		    start_postern($dir, $sink_port);
		measure($system, $size, $dir, $sys, $sink, $reader);
	};
	my $err = $@;
	if ($sys) {
		my (undef, $pids) = tree_cpu($sys->{pid});
		my %start = map { $_ => (proc_stat($_) || [])->[19] // '' }
		    @$pids;
		stop($sys->{pid}, $sys->{grace});
		# Postfix's master stops its children; make sure none is left.
		my $deadline = time + 5;
		for my $pid (grep { $_ != $sys->{pid} } @$pids) {
			while (time < $deadline && alive($pid, $start{$pid})) {
				sleep 0.05;
			}
			if (alive($pid, $start{$pid})) {
				warn "killing left-over pid $pid\n";
				kill 'KILL', $pid;
			}
		}
		reap_orphans();
	}
	stop($sink, 5);
	die $err if $err;
	return $res;
}

sub alive
{
	my ($pid, $start) = @_;
	my $st = proc_stat($pid) or return 0;
	return $st->[19] eq $start && $st->[0] ne 'Z';
}

sub measure
{
	my ($system, $size, $dir, $sys, $sink, $reader) = @_;
	my $what = "$system $size->{name}";
	my $n = $size->{count};
	my $base = 0;

	if ($opt{warmup} > 0) {
		my $src = run_source($dir, 'warmup', $sys->{port},
		    $opt{warmup}, $size->{bytes});
		wait_sink($reader, $opt{warmup}, "$what warm-up", $src, $sink,
		    $sys->{pid});
		wait_source($src);
		$base = $opt{warmup};
	}
	sleep $opt{settle};

	my ($cpu0) = tree_cpu($sys->{pid});
	my $sink0 = proc_stat($sink);
	my @times0 = times;
	my $busy0 = machine_busy();
	my $t0 = time;
	my $src = run_source($dir, 'run', $sys->{port}, $n, $size->{bytes});
	my $t_end = wait_sink($reader, $base + $n, $what, $src, $sink,
	    $sys->{pid});
	my $elapsed = $t_end - $t0;
	wait_source($src);
	my $t_source = $src->{done} - $t0;	# polled, within ~5 ms
	sleep $opt{settle};		# let the system finish its bookkeeping
	my ($cpu1) = tree_cpu($sys->{pid});
	my $sink1 = proc_stat($sink);
	my @times1 = times;
	my $busy1 = machine_busy();

	# Checks that the messages really went through the system once each.
	my $got = $reader->();
	check_alive($what, $sink, $sys->{pid});
	$got == $base + $n or die "$what: smtp-sink counted $got messages, " .
	    "expected " . ($base + $n) . "\n";
	my ($sent, $bad) = $sys->{count_sent}->();
	my @warn;
	push @warn, "log shows $sent status=sent, expected " . ($base + $n)
	    if $sent != $base + $n;
	push @warn, "log shows $bad deferred/bounced" if $bad;
	warn "WARNING: $what: $_\n" for @warn;

	my $cpu = ($cpu1 - $cpu0) / $TICK;
	my $source_cpu = ($times1[2] + $times1[3]) - ($times0[2] + $times0[3]);
	my $sink_cpu = ($sink1->[11] + $sink1->[12] - $sink0->[11] -
	    $sink0->[12]) / $TICK;
	# Whatever else ran meanwhile (kernel threads, other users of the
	# machine) competed with the system for the cores.
	my $self_cpu = ($times1[0] + $times1[1]) - ($times0[0] + $times0[1]);
	my $other = ($busy1 - $busy0) - $cpu - $source_cpu - $sink_cpu -
	    $self_cpu;
	$other = 0 if $other < 0;
	my $window = time - $t0;
	warn sprintf("WARNING: %s: other processes used %.1f%% of the " .
	    "machine during the run\n", $what, 100 * $other /
	    ($window * $ncpu)) if $other > 0.2 * $window * $ncpu;
	return {rate => $n / $elapsed, cpu1000 => $cpu / $n * 1000,
	    elapsed => $elapsed, cpu => $cpu, source_cpu => $source_cpu,
	    sink_cpu => $sink_cpu, source_done => $t_source, other => $other,
	    self_cpu => $self_cpu,
	    warnings => scalar @warn};
}

sub median
{
	my @v = sort { $a <=> $b } @_;
	return undef unless @v;
	return @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2;
}

sub version_of_postfix
{
	my $v = `postconf -h mail_version 2>/dev/null` // '';
	chomp $v;
	return $v || '?';
}

sub revision
{
	my $v = `git -C '$TOP_DIR' rev-parse --short HEAD 2>/dev/null` // '';
	chomp $v;
	return $v || 'unknown';
}

# The runs, alternating the systems inside every round and size.
my (%results, %failed, @log);
my $total = $opt{rounds} * @sizes * @systems;
my $i = 0;
my $started = time;
for my $round (1 .. $opt{rounds}) {
	for my $size (@sizes) {
		for my $system (@systems) {
			$i++;
			my $label = sprintf('[%d/%d] round %d %s %s', $i,
			    $total, $round, $size->{name}, $system);
			if ($failed{$system}) {
				print STDERR "$label: skipped (failed before)\n";
				next;
			}
			my $dir = "$TOP_TMP/r$round-$size->{name}-$system";
			my $r = eval { run_one($system, $size, $dir) };
			if (!$r) {
				my $err = $@;
				cleanup();
				print STDERR "$label: FAILED: $err" .
				    "    (files in $dir)\n";
				$failed{$system} = 1;
				$opt{keep} = 1;
				next;
			}
			push @{$results{$size->{name}}{$system}}, $r;
			my $line = sprintf('%s: %d msgs in %.2f s = %.1f msg/s,' .
			    ' CPU %.2f s = %.3f s/1000 msgs (smtp-source ' .
			    'done at %.2f s; CPU of source %.2f s, sink ' .
			    '%.2f s, run.pl %.2f s, others %.2f s)', $label,
			    $size->{count}, $r->{elapsed}, $r->{rate},
			    $r->{cpu}, $r->{cpu1000}, $r->{source_done},
			    $r->{source_cpu}, $r->{sink_cpu}, $r->{self_cpu},
			    $r->{other});
			print STDERR "$line\n";
			push @log, $line;
		}
	}
}

# The report.
my @out;
my $uname = join(' ', (POSIX::uname())[0, 2, 4]);
push @out, '# Postern relay benchmark', '',
    sprintf('%s, %s, %d CPUs, Postfix %s, posternd %s (tree at %s)',
    strftime('%Y-%m-%d %H:%M:%S %Z', localtime($started)), $uname, $ncpu,
    version_of_postfix(), (grep { $_ eq 'postern' } @systems) ?
    $opt{posternd} : '(not run)', revision()),
    sprintf('smtp-source -s %d%s into the system on 127.0.0.1, relayhost ' .
    'smtp-sink; %d round(s), alternating; warm-up %d msgs; spools in %s ' .
    '(%s)', $opt{sessions}, $opt{reuse} ? ' -d' : '', $opt{rounds},
    $opt{warmup}, $opt{tmpdir}, $tmp_fs), '',
    'msg/s: messages per second end to end (first smtp-source connection ' .
    'until smtp-sink has the last message).',
    'CPU/1000: user+sys seconds of all the system\'s processes per 1000 ' .
    'messages (not counting smtp-source and smtp-sink).',
    'Cells: median of the rounds, then every round in brackets.',
    'Every run checked: smtp-sink got exactly the messages sent (else the ' .
    'run fails), the system logged as many status=sent (else a warning).',
    '';
push @out, map({ "Extra posternd config: $_" } @postern_opt),
    map({ "Extra Postfix main.cf: $_" } @postfix_opt);
push @out, '' if @postern_opt || @postfix_opt;
my $both = @systems == 2;
push @out, '| size | messages | system | msg/s | CPU s/1000 msgs |',
    '|------|---------:|--------|------:|----------------:|';
my ($all_ok, $targets_met) = (1, 1);
for my $size (@sizes) {
	my %med;
	for my $system (@systems) {
		my $rs = $results{$size->{name}}{$system} || [];
		my @rate = map { $_->{rate} } @$rs;
		my @cpu = map { $_->{cpu1000} } @$rs;
		$med{$system} = [median(@rate), median(@cpu)];
		my ($rate_s, $cpu_s) = ('FAILED', 'FAILED');
		if (@$rs) {
			$rate_s = sprintf('%.1f [%s]', $med{$system}[0],
			    join(' ', map { sprintf '%.1f', $_ } @rate));
			$cpu_s = sprintf('%.3f [%s]', $med{$system}[1],
			    join(' ', map { sprintf '%.3f', $_ } @cpu));
		}
		$all_ok = 0 if @$rs < $opt{rounds};
		push @out, "| $size->{name} | $size->{count} | $system | " .
		    "$rate_s | $cpu_s |";
	}
	next unless $both && defined $med{postern}[0] &&
	    defined $med{postfix}[0];
	my $rr = $med{postern}[0] / $med{postfix}[0];
	my $cr = $med{postfix}[1] > 0 ? $med{postern}[1] / $med{postfix}[1] :
	    0;
	$targets_met = 0 unless $rr >= 2 && $cr <= 0.5;
	push @out, sprintf('| %s | | **postern/postfix** | **%.2f** %s | ' .
	    '**%.2f** %s |', $size->{name}, $rr,
	    $rr >= 2 ? '(target >= 2: met)' : '(target >= 2: NOT met)', $cr,
	    $cr <= 0.5 ? '(target <= 0.5: met)' : '(target <= 0.5: NOT met)');
}
push @out, '', 'Runs:', '', map({ "    $_" } @log), '';
push @out, sprintf('Total time %.0f s.', time - $started);
my $report = join("\n", @out) . "\n";
print $report;
spew($opt{out}, $report) if defined $opt{out};

cleanup();
if ($opt{keep}) {
	print STDERR "kept $TOP_TMP\n";
} else {
	remove_tree($TOP_TMP);
}
exit(1) unless $all_ok;
exit(3) if $opt{'check-targets'} && !($both && $targets_met);
exit(0);

# bench/lib/Bench.pm - what the benchmark scripts share: starting and
# stopping processes (smtp-sink, smtp-source, posternd, a private Postfix),
# CPU accounting from /proc, one measured run, medians. Used by bench/run.pl
# and bench/milter.pl. See bench/README.md.
# SPDX-License-Identifier: ISC

package Bench;

use strict;
use warnings;

use Cwd qw(abs_path);
use Exporter qw(import);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time sleep);

our @EXPORT = qw($BENCH_DIR $TOP_DIR $TICK $NCPU $IS_ROOT bench_setup
    fs_type note cleanup reap_orphans spawn stop slurp spew tail_of template
    free_port is_listening wait_listening wait_socket proc_stat tree_cpu
    sink_reader describe_status check_alive wait_sink machine_busy
    run_source source_done wait_source start_postfix start_postern run_one
    alive measure median version_of_postfix revision);

our $BENCH_DIR = dirname(dirname(abs_path(__FILE__)));
our $TOP_DIR = dirname($BENCH_DIR);
our $TICK = POSIX::sysconf(POSIX::_SC_CLK_TCK) || 100;
our $NCPU = do {
	open my $fh, '<', '/proc/stat' or die "/proc/stat: $!\n";
	scalar grep { /^cpu\d+\s/ } <$fh>;
} || 1;
our $IS_ROOT = $> == 0;

# The calling script's options (a reference to its %opt; read here:
# verbose, timeout, settle, warmup, sessions, reuse, source, sink, master,
# postfix, posternd) and its temporary directory.
my $O = {};
my $top_tmp;

# Every process started here, so that an error or ^C stops them all.
my %children;			# pid => name

# Takes the options, makes the temporary directory under $opt->{tmpdir},
# becomes the child subreaper and installs the ^C handler. Returns the
# directory.
sub bench_setup
{
	my ($opt, $prefix) = @_;
	$O = $opt;
	$top_tmp = tempdir("$prefix.XXXXXX", DIR => $O->{tmpdir},
	    CLEANUP => 0);
	chmod 0755, $top_tmp;	# mail_owner must be able to traverse it

	# Become the child subreaper (prctl PR_SET_CHILD_SUBREAPER):
	# Postfix's daemons that outlive their master are re-parented to
	# this script, which reaps them, instead of lingering under init
	# between runs.
	eval {
		require 'syscall.ph';
		syscall(&SYS_prctl, 36, 1, 0, 0, 0) == 0 or die;
		1;
	} or note('cannot become subreaper; orphans go to init');

	$SIG{INT} = $SIG{TERM} = sub {
		cleanup();
		print STDERR "interrupted; files kept in $top_tmp\n";
		POSIX::_exit(130);
	};
	return $top_tmp;
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

sub reap_orphans
{
	while ((my $pid = waitpid(-1, WNOHANG)) > 0) {
		delete $children{$pid};
	}
}

sub note
{
	print STDERR @_, "\n" if $O->{verbose};
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

# True when a unix socket $path is listening (from /proc/net/unix: state
# 01 with the accept flag, so that a milter is not sent a probe connection).
sub is_listening_unix
{
	my ($path) = @_;
	open my $fh, '<', '/proc/net/unix' or return 0;
	while (<$fh>) {
		my @f = split;
		return 1 if @f >= 8 && $f[7] eq $path && hex($f[3]) & 0x10000;
	}
	return 0;
}

# Waits until $pid listens on $where: a TCP port on 127.0.0.1, or the path
# of a unix socket.
sub wait_socket
{
	my ($where, $pid, $what, $log) = @_;
	my $deadline = time + 20;
	my $check = $where =~ /^\d+$/ ? \&is_listening : \&is_listening_unix;
	while (time < $deadline) {
		return if $check->($where);
		if (waitpid($pid, WNOHANG) != 0) {
			delete $children{$pid};
			die "$what exited during start-up (" .
			    describe_status($?) . "); log:\n" .
			    tail_of($log, 15);
		}
		sleep 0.02;
	}
	die "$what does not listen on $where after 20 s; log:\n" .
	    tail_of($log, 15);
}

sub wait_listening
{
	my ($port, $pid, $what, $log) = @_;
	wait_socket($port, $pid, $what, $log);
}

# /proc/PID/stat fields after the command name: [0] state, [1] ppid,
# [11] utime, [12] stime, [13] cutime, [14] cstime, [19] starttime.
sub proc_stat
{
	my ($pid) = @_;
	my $s = slurp("/proc/$pid/stat");
	$s =~ /\)\s+(.*)$/s or return undef;
	return [split /\s+/, $1];
}

# CPU ticks of the process trees under @roots: for every live process its
# own time (all threads) plus that of its reaped children. A process that
# exits between two samples moves its time into its parent's cutime/cstime,
# so the difference of two samples counts it exactly once.
sub tree_cpu
{
	my (@roots) = @_;
	my (%kids, %stat);
	opendir my $dh, '/proc' or die "/proc: $!\n";
	for my $pid (grep { /^\d+$/ } readdir $dh) {
		my $st = proc_stat($pid) or next;
		$stat{$pid} = $st;
		push @{$kids{$st->[1]}}, $pid;
	}
	closedir $dh;
	my ($ticks, @pids, @todo) = (0);
	@todo = @roots;
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
		} elsif (time - $last_change > $O->{timeout}) {
			die "$what: smtp-sink has $n of $want messages and " .
			    "no progress for $O->{timeout} s\n";
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
	my $s = $n < $O->{sessions} ? $n : $O->{sessions};
	my $pid = spawn("smtp-source", "$dir/source-$tag.out",
	    "$dir/source-$tag.err", $O->{source},
	    ($O->{reuse} ? '-d' : ()), '-s', $s, '-m', $n,
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
	my $deadline = time + $O->{timeout};
	until (source_done($src)) {
		if (time > $deadline) {
			stop($src->{pid}, 1);
			die "smtp-source did not finish\n";
		}
		sleep 0.01;
	}
}

# Counts status=sent and deferred/bounced lines in a system's log.
sub count_log
{
	my ($path) = @_;
	my $log = slurp($path);
	my $sent = () = $log =~ /\bstatus=sent\b/g;
	my $bad = () = $log =~ /\bstatus=(?:deferred|bounced)\b/g;
	return ($sent, $bad);
}

# Starts a private stock Postfix relaying to smtp-sink on $sink_port, with
# the lines of @$extra appended to its main.cf. Returns {pid, port, log,
# grace, count_sent} for measure().
sub start_postfix
{
	my ($dir, $sink_port, $extra) = @_;
	my $port = free_port();
	mkdir "$dir/$_" for qw(etc spool data);
	my (undef, undef, $uid, $gid) = getpwnam('postfix')
	    or die "no postfix user\n";
	chown $uid, $gid, "$dir/data";
	my %v = (DIR => $dir, PORT => $port, SINKPORT => $sink_port);
	template("$BENCH_DIR/postfix/main.cf.in", "$dir/etc/main.cf", %v);
	template("$BENCH_DIR/postfix/master.cf.in", "$dir/etc/master.cf", %v);
	if ($extra && @$extra) {
		open my $fh, '>>', "$dir/etc/main.cf" or die "$!\n";
		print $fh "\n# added by the benchmark\n",
		    map { "$_\n" } @$extra;
		close $fh;
	}
	system($O->{postfix}, '-c', "$dir/etc", 'check') == 0
	    or die "postfix -c $dir/etc check failed:\n" .
	    tail_of("$dir/maillog", 10);
	my $pid = spawn('postfix master', "$dir/master.out", "$dir/master.out",
	    $O->{master}, '-c', "$dir/etc", '-d');
	wait_listening($port, $pid, 'Postfix master', "$dir/maillog");
	return {pid => $pid, port => $port, log => "$dir/maillog",
	    grace => 15, count_sent => sub { count_log("$dir/maillog") }};
}

# Starts posternd relaying to smtp-sink on $sink_port, with the lines of
# @$extra appended to its configuration. Returns what start_postfix does.
sub start_postern
{
	my ($dir, $sink_port, $extra) = @_;
	my $port = free_port();
	mkdir "$dir/$_", 0700 for qw(spool mail);
	if ($IS_ROOT) {
		my (undef, undef, $uid, $gid) = getpwnam('nobody')
		    or die "no user nobody\n";
		chown $uid, $gid, "$dir/spool", "$dir/mail";
	}
	template("$BENCH_DIR/postern/postern.cf.in", "$dir/postern.cf",
	    DIR => $dir, PORT => $port, SINKPORT => $sink_port);
	if ($IS_ROOT || ($extra && @$extra)) {
		open my $fh, '>>', "$dir/postern.cf" or die "$!\n";
		print $fh "mail_owner = nobody\n" if $IS_ROOT;
		print $fh "# added by the benchmark\n", map { "$_\n" } @$extra
		    if $extra && @$extra;
		close $fh;
	}
	my $pid = spawn('posternd', "$dir/posternd.out", "$dir/posternd.log",
	    $O->{posternd}, '-c', "$dir/postern.cf");
	wait_listening($port, $pid, 'posternd', "$dir/posternd.log");
	return {pid => $pid, port => $port, log => "$dir/posternd.log",
	    grace => 15, count_sent => sub { count_log("$dir/posternd.log") }};
}

# One measurement: fresh sink, fresh system, warm-up, then $size->{count}
# messages. $start->($dir, $sink_port) starts the system and returns its
# hash; besides what start_postfix returns it may hold "also" (more pids
# whose CPU counts, e.g. a milter; stopped after the system), "check" (a
# sub called with the run's directory and the number of messages the sink
# got, after the run; it dies when the delivered mail is wrong and returns
# a note). @$sink_args are added to smtp-sink's options; the sink can write
# into $dir/sink.d.
# Returns {rate, cpu1000, ...}; dies on any failure.
sub run_one
{
	my ($what, $start, $size, $dir, $sink_args) = @_;
	mkdir $dir or die "$dir: $!\n";
	chmod 0755, $dir;
	my $sink_port = free_port();
	my @user = $IS_ROOT ? ('-u', 'nobody') : ();
	# where smtp-sink may write (a dump, with -D or -d)
	mkdir "$dir/sink.d", 0755 or die "$dir/sink.d: $!\n";
	if ($IS_ROOT) {
		my (undef, undef, $uid, $gid) = getpwnam('nobody')
		    or die "no user nobody\n";
		chown $uid, $gid, "$dir/sink.d";
	}
	my $sink = spawn('smtp-sink', "$dir/sink.out", "$dir/sink.err",
	    $O->{sink}, '-c', @user, @{$sink_args || []},
	    "127.0.0.1:$sink_port", 256);
	wait_listening($sink_port, $sink, 'smtp-sink', "$dir/sink.err");
	my $reader = sink_reader("$dir/sink.out");

	my $sys = {};
	my $res = eval {
		$start->($dir, $sink_port, $sys);
		measure($what, $size, $dir, $sys, $sink, $reader);
	};
	my $err = $@;
	if ($sys->{pid}) {
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
	stop($_, 10) for @{$sys->{also} || []};
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
	my ($what, $size, $dir, $sys, $sink, $reader) = @_;
	my $n = $size->{count};
	my $base = 0;
	my @roots = ($sys->{pid}, @{$sys->{also} || []});

	if ($O->{warmup} > 0) {
		my $src = run_source($dir, 'warmup', $sys->{port},
		    $O->{warmup}, $size->{bytes});
		wait_sink($reader, $O->{warmup}, "$what warm-up", $src, $sink,
		    @roots);
		wait_source($src);
		$base = $O->{warmup};
	}
	sleep $O->{settle};

	my ($cpu0) = tree_cpu(@roots);
	my $sink0 = proc_stat($sink);
	my @times0 = times;
	my $busy0 = machine_busy();
	my $t0 = time;
	my $src = run_source($dir, 'run', $sys->{port}, $n, $size->{bytes});
	my $t_end = wait_sink($reader, $base + $n, $what, $src, $sink,
	    @roots);
	my $elapsed = $t_end - $t0;
	wait_source($src);
	my $t_source = $src->{done} - $t0;	# polled, within ~5 ms
	sleep $O->{settle};		# let the system finish its bookkeeping
	my ($cpu1) = tree_cpu(@roots);
	my $sink1 = proc_stat($sink);
	my @times1 = times;
	my $busy1 = machine_busy();

	# Checks that the messages really went through the system once each.
	my $got = $reader->();
	check_alive($what, $sink, @roots);
	$got == $base + $n or die "$what: smtp-sink counted $got messages, " .
	    "expected " . ($base + $n) . "\n";
	my ($sent, $bad) = $sys->{count_sent}->();
	my @warn;
	push @warn, "log shows $sent status=sent, expected " . ($base + $n)
	    if $sent != $base + $n;
	push @warn, "log shows $bad deferred/bounced" if $bad;
	warn "WARNING: $what: $_\n" for @warn;
	my $checked = $sys->{check} ? $sys->{check}->($dir, $base + $n) : '';

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
	    ($window * $NCPU)) if $other > 0.2 * $window * $NCPU;
	return {rate => $n / $elapsed, cpu1000 => $cpu / $n * 1000,
	    elapsed => $elapsed, cpu => $cpu, source_cpu => $source_cpu,
	    sink_cpu => $sink_cpu, source_done => $t_source, other => $other,
	    self_cpu => $self_cpu, checked => $checked,
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

1;

#!/usr/bin/perl
# bench/milter.pl - what a milter costs: posternd signing with its own dkim
# filter, posternd and a stock Postfix each calling the Debian opendkim
# milter over TCP on 127.0.0.1 and over a unix socket, and (when it is
# built) Postfix calling postern-milter; all cells in one run, alternating
# round by round, every one relaying smtp-source's messages to smtp-sink.
# Prints messages per second and CPU seconds per 1000 messages of the whole
# system (posternd or Postfix plus the milter). See bench/README.md.
# SPDX-License-Identifier: ISC

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(remove_tree);
use Getopt::Long qw(GetOptions);
use POSIX qw(strftime);
use Time::HiRes qw(time);

use lib dirname(abs_path($0)) . '/lib';
use Bench;

my %opt = (
	rounds		=> 3,
	sizes		=> '4k',
	sessions	=> 20,
	warmup		=> 40,
	timeout		=> 30,
	settle		=> 1.0,
	tmpdir		=> '/var/tmp',
	posternd	=> $ENV{POSTERND} || "$TOP_DIR/posternd",
	'postern-milter' => "$TOP_DIR/postern-milter",
	opendkim	=> '/usr/sbin/opendkim',
	master		=> '/usr/lib/postfix/sbin/master',
	postfix		=> '/usr/sbin/postfix',
	source		=> '/usr/sbin/smtp-source',
	sink		=> '/usr/sbin/smtp-sink',
);
my %count = ('4k' => 3000, '100k' => 1000);

# The cells: who relays, who signs, how the milter is reached.
my @CELLS = (
	{name => 'postern-dkim', system => 'postern', milter => '',
	    what => 'posternd, its own dkim filter (rsa-sha256)'},
	{name => 'postern-od-tcp', system => 'postern', milter => 'opendkim',
	    sock => 'tcp', what => 'posternd + opendkim milter, TCP 127.0.0.1'},
	{name => 'postern-od-unix', system => 'postern', milter => 'opendkim',
	    sock => 'unix', what => 'posternd + opendkim milter, unix socket'},
	{name => 'postfix-od-tcp', system => 'postfix', milter => 'opendkim',
	    sock => 'tcp', what => 'Postfix + opendkim milter, TCP 127.0.0.1'},
	{name => 'postfix-od-unix', system => 'postfix', milter => 'opendkim',
	    sock => 'unix', what => 'Postfix + opendkim milter, unix socket'},
	{name => 'postfix-pm-tcp', system => 'postfix',
	    milter => 'postern-milter', sock => 'tcp',
	    what => 'Postfix + postern-milter (dkim), TCP 127.0.0.1'},
);

sub usage
{
	my $names = join(',', map { $_->{name} } @CELLS);
	print STDERR <<"EOF";
usage: $0 [options]
  --rounds R          rounds; each round runs every cell once (3)
  --sizes LIST        message body sizes, e.g. 4k or 4k,100k (4k)
  --count SIZE=N      messages per run for SIZE (4k=3000, 100k=1000,
                      other sizes 1000)
  --sessions S        concurrent smtp-source sessions (20)
  --warmup N          messages sent (not measured) before each run (40)
  --only LIST         run only these cells, of:
                      $names
  --posternd PATH     the daemon (\$POSTERND, else $TOP_DIR/posternd)
  --postern-milter PATH
                      ($TOP_DIR/postern-milter; its cell
                      runs only when it exists and starts)
  --opendkim PATH     the milter (/usr/sbin/opendkim)
  --tmpdir DIR        where spools live; use a real disk, not tmpfs (/var/tmp)
  --timeout SEC       fail a run when the sink count stalls this long (30)
  --settle SEC        pause before and after the measured part (1)
  --master, --postfix, --source, --sink PATH
                      Postfix programs (Debian's paths by default)
  --out FILE          also write the results (markdown) to FILE
  --keep              keep the temporary directory (logs, spools, dumps)
  --verbose           print progress details
EOF
	exit 2;
}

my $only;
GetOptions(\%opt, 'rounds=i', 'sizes=s', 'sessions=i', 'warmup=i',
    'posternd=s', 'postern-milter=s', 'opendkim=s', 'tmpdir=s',
    'timeout=i', 'settle=f', 'out=s', 'keep', 'verbose', 'master=s',
    'postfix=s', 'source=s', 'sink=s', 'only=s' => \$only,
    'count=s' => \%count, 'help' => \&usage) or usage();
@ARGV and usage();
%count = map { lc($_) => $count{$_} } keys %count;
$opt{rounds} >= 1 && $opt{sessions} >= 1 && $opt{warmup} >= 0 or usage();

my @cells = @CELLS;
if (defined $only) {
	my %want = map { $_ => 1 } split /,/, $only;
	@cells = grep { delete $want{$_->{name}} } @CELLS;
	die 'no such cell: ' . join(', ', sort keys %want) . "\n" if %want;
}

my @sizes;
for my $name (split /,/, $opt{sizes}) {
	$name =~ /^(\d+)([km]?)$/i or die "bad size '$name'\n";
	my $bytes = $1 * {'' => 1, k => 1024, m => 1048576}->{lc $2};
	my $n = $count{lc $name} // 1000;
	$n =~ /^\d+$/ && $n > 0 or die "bad count for $name\n";
	push @sizes, {name => lc $name, bytes => $bytes, count => $n};
}

$IS_ROOT or die "the private Postfix needs root\n";
for my $prog (@opt{qw(source sink master postfix opendkim posternd)}) {
	-x $prog or die "$prog not found\n";
}
$opt{posternd} = abs_path($opt{posternd});

my $tmp_fs = fs_type(abs_path($opt{tmpdir}) // $opt{tmpdir});
warn "WARNING: $opt{tmpdir} is $tmp_fs: fsync costs nothing there\n"
    if $tmp_fs =~ /^(?:tmpfs|ramfs)$/;
my $TOP_TMP = bench_setup(\%opt, 'postern-milter-bench');

# One RSA-2048 key for every signer: posternd's dkim filter, opendkim and
# postern-milter, selector "bench", d= the sender's domain.
my $KEY = "$TOP_TMP/rsa.pem";
system('openssl', 'genpkey', '-quiet', '-algorithm', 'RSA', '-pkeyopt',
    'rsa_keygen_bits:2048', '-out', $KEY) == 0 or die "openssl genpkey\n";
chmod 0644, $KEY;
spew("$TOP_TMP/dkim-keys", "bench %:bench:$KEY\n");
spew("$TOP_TMP/dkim-signing", "* bench\n");
my @DKIM_LINES = ("dkim_signing_table = texthash:$TOP_TMP/dkim-signing",
    "dkim_key_table = texthash:$TOP_TMP/dkim-keys");

# Cells that cannot run yet, with the reason (shown in the report).
my %pending;

# Does posternd know the milters filter? ("unknown filter" until it does.)
{
	my $cf = "$TOP_TMP/probe.cf";
	template("$BENCH_DIR/postern/postern.cf.in", $cf, DIR => $TOP_TMP,
	    PORT => 1, SINKPORT => 2);
	open my $fh, '>>', $cf or die "$cf: $!\n";
	print $fh "smtpd_filters = relay, milters\n",
	    "smtpd_milters = inet:127.0.0.1:1\n";
	close $fh;
	my $out = `'$opt{posternd}' -n -c '$cf' 2>&1`;
	if ($? != 0) {
		my ($why) = $out =~ /fatal: (?:.*?: )?(smtpd_\w+: .*)/;
		$pending{$_} = 'posternd: ' . ($why // 'rejects smtpd_milters')
		    for qw(postern-od-tcp postern-od-unix);
	}
}
$pending{'postfix-pm-tcp'} = "$opt{'postern-milter'} not built"
    unless -x $opt{'postern-milter'};

# Starts the opendkim milter on a TCP port or a unix socket in $dir;
# returns its pid and the address for smtpd_milters.
sub start_opendkim
{
	my ($dir, $sock) = @_;
	my ($where, $socket, $spec);
	if ($sock eq 'tcp') {
		$where = free_port();
		($socket, $spec) = ("inet:$where\@127.0.0.1",
		    "inet:127.0.0.1:$where");
	} else {
		$where = "$dir/opendkim.sock";
		($socket, $spec) = ("local:$where", "unix:$where");
	}
	template("$BENCH_DIR/milter/opendkim.conf.in", "$dir/opendkim.conf",
	    SOCKET => $socket, KEY => $KEY);
	my $pid = spawn('opendkim', "$dir/opendkim.log", "$dir/opendkim.log",
	    $opt{opendkim}, '-f', '-x', "$dir/opendkim.conf");
	wait_socket($where, $pid, 'opendkim', "$dir/opendkim.log");
	return ($pid, $spec);
}

# Starts postern-milter with posternd's dkim filter on a TCP port.
sub start_postern_milter
{
	my ($dir) = @_;
	my $port = free_port();
	mkdir "$dir/pm", 0755;
	template("$BENCH_DIR/postern/postern.cf.in", "$dir/pm/postern.cf",
	    DIR => "$dir/pm", PORT => free_port(), SINKPORT => 1);
	open my $fh, '>>', "$dir/pm/postern.cf" or die "$!\n";
	print $fh map { "$_\n" } 'mail_owner = nobody',
	    'smtpd_filters = relay, dkim', @DKIM_LINES;
	close $fh;
	my $pid = spawn('postern-milter', "$dir/pm/milter.log",
	    "$dir/pm/milter.log", $opt{'postern-milter'}, '-c',
	    "$dir/pm/postern.cf", '-p', "inet:$port\@127.0.0.1");
	wait_socket($port, $pid, 'postern-milter', "$dir/pm/milter.log");
	return ($pid, "inet:127.0.0.1:$port");
}

# Reads smtp-sink's dump (-D): every message must be there and carry a
# DKIM-Signature of d=bench.example.test in its header. Dies otherwise;
# returns a note for the report. A dump that passed is removed unless
# --keep.
sub check_dump
{
	my ($dir, $want) = @_;
	my $path = "$dir/sink.d/dump";
	open my $fh, '<', $path or die "$path: $!\n";
	my ($msgs, $signed, $hdr, $prev_blank) = (0, 0, undef, 1);
	my $sig = qr/^DKIM-Signature:[^\n]*(?:\n[ \t][^\n]*)*/mi;
	while (my $line = <$fh>) {
		my $blank = $line =~ /^\r?$/;
		if (!defined $hdr && $prev_blank &&
		    $line =~ /^X-Client-Addr: /) {
			$msgs++;
			$hdr = '';
		} elsif (defined $hdr && $blank) {
			# smtp-sink's fields and the message's: one block
			$hdr =~ s/\r//g;
			$signed++ if grep { /\bd=bench\.example\.test\s*;/ }
			    $hdr =~ /($sig)/g;
			$hdr = undef;
		} elsif (defined $hdr) {
			$hdr .= $line;
		}
		$prev_blank = $blank;
	}
	close $fh;
	$msgs == $want or die "sink dump has $msgs messages, expected $want\n";
	$signed == $want or die "only $signed of $want messages carry a " .
	    "DKIM-Signature with d=bench.example.test (see $path)\n";
	unlink $path unless $opt{keep};
	return "$signed/$want signed";
}

# The start function of a cell for Bench::run_one.
sub starter
{
	my ($cell) = @_;
	return sub {
		my ($dir, $sink_port, $sys) = @_;
		my @extra;
		if ($cell->{milter}) {
			my ($pid, $spec) = $cell->{milter} eq 'opendkim' ?
			    start_opendkim($dir, $cell->{sock}) :
			    start_postern_milter($dir);
			$sys->{also} = [$pid];
			@extra = $cell->{system} eq 'postern' ?
			    ('smtpd_filters = relay, milters',
			    "smtpd_milters = $spec") :
			    ("smtpd_milters = $spec",
			    'milter_default_action = tempfail');
		} else {
			@extra = ('smtpd_filters = relay, dkim', @DKIM_LINES);
		}
		my $s = $cell->{system} eq 'postern' ?
		    start_postern($dir, $sink_port, \@extra) :
		    start_postfix($dir, $sink_port, \@extra);
		%$sys = (%$sys, %$s, check => \&check_dump);
	};
}

my @active = grep { !$pending{$_->{name}} } @cells;
print STDERR "pending, not run: $_ ($pending{$_})\n"
    for grep { $pending{$_} } map { $_->{name} } @cells;
@active or die "no cell can run\n";

# The runs: every cell once per round and size; the order rotates by one
# cell each round so that no cell always runs first or last.
my (%results, %failed, @log);
my $total = $opt{rounds} * @sizes * @active;
my $i = 0;
my $started = time;
for my $round (1 .. $opt{rounds}) {
	my $k = ($round - 1) % @active;
	my @order = (@active[$k .. $#active], @active[0 .. $k - 1]);
	for my $size (@sizes) {
		for my $cell (@order) {
			$i++;
			my $label = sprintf('[%d/%d] round %d %s %s', $i,
			    $total, $round, $size->{name}, $cell->{name});
			if ($failed{$cell->{name}}) {
				print STDERR "$label: skipped (failed before)\n";
				next;
			}
			my $dir = "$TOP_TMP/r$round-$size->{name}-$cell->{name}";
			my $r = eval {
				run_one("$cell->{name} $size->{name}",
				    starter($cell), $size, $dir,
				    ['-D', "$dir/sink.d/dump"]);
			};
			if (!$r) {
				my $err = $@;
				cleanup();
				print STDERR "$label: FAILED: $err" .
				    "    (files in $dir)\n";
				$failed{$cell->{name}} = 1;
				$opt{keep} = 1;
				next;
			}
			push @{$results{$size->{name}}{$cell->{name}}}, $r;
			my $line = sprintf('%s: %d msgs in %.2f s = %.1f msg/s,' .
			    ' CPU %.2f s = %.3f s/1000 msgs, %s (smtp-source ' .
			    'done at %.2f s; CPU of source %.2f s, sink ' .
			    '%.2f s, bench %.2f s, others %.2f s)', $label,
			    $size->{count}, $r->{elapsed}, $r->{rate},
			    $r->{cpu}, $r->{cpu1000}, $r->{checked},
			    $r->{source_done}, $r->{source_cpu},
			    $r->{sink_cpu}, $r->{self_cpu}, $r->{other});
			print STDERR "$line\n";
			push @log, $line;
		}
	}
}

# The report.
my $od_version = (`'$opt{opendkim}' -V 2>&1` =~ /(OpenDKIM Filter v\S+)/)[0]
    // 'opendkim ?';
my @out;
my $uname = join(' ', (POSIX::uname())[0, 2, 4]);
my $load = (split ' ', slurp('/proc/loadavg'))[0] // '?';
push @out, '# Postern milter benchmark', '',
    sprintf('%s, %s, %d CPUs (load average %s at the end), Postfix %s, ' .
    '%s, posternd %s (tree at %s)',
    strftime('%Y-%m-%d %H:%M:%S %Z', localtime($started)), $uname, $NCPU,
    $load, version_of_postfix(), $od_version, $opt{posternd}, revision()),
    sprintf('smtp-source -s %d into the system on 127.0.0.1, relayhost ' .
    'smtp-sink; %d round(s), cells alternating; warm-up %d msgs; spools ' .
    'in %s (%s)', $opt{sessions}, $opt{rounds}, $opt{warmup},
    $opt{tmpdir}, $tmp_fs), '',
    'msg/s: messages per second end to end (first smtp-source connection ' .
    'until smtp-sink has the last message).',
    'CPU/1000: user+sys seconds per 1000 messages of the whole system: ' .
    'posternd or every Postfix process, plus the milter process.',
    'Cells: median of the rounds, then every round in brackets.',
    'Every run checked: smtp-sink got exactly the messages sent, each ' .
    'with a DKIM-Signature (else the run fails).', '',
    '| size | cell | what | msg/s | CPU s/1000 msgs |',
    '|------|------|------|------:|----------------:|';
my $all_ok = 1;
my %med;
for my $size (@sizes) {
	for my $cell (@cells) {
		my $name = $cell->{name};
		my ($rate_s, $cpu_s) = ('FAILED', 'FAILED');
		if ($pending{$name}) {
			($rate_s, $cpu_s) = ("pending: $pending{$name}", '-');
		} elsif (my $rs = $results{$size->{name}}{$name}) {
			my @rate = map { $_->{rate} } @$rs;
			my @cpu = map { $_->{cpu1000} } @$rs;
			$med{$size->{name}}{$name} = [median(@rate),
			    median(@cpu)];
			$rate_s = sprintf('%.1f [%s]', median(@rate),
			    join(' ', map { sprintf '%.1f', $_ } @rate));
			$cpu_s = sprintf('%.3f [%s]', median(@cpu),
			    join(' ', map { sprintf '%.3f', $_ } @cpu));
			$all_ok = 0 if @$rs < $opt{rounds};
		} else {
			$all_ok = 0;
		}
		push @out, "| $size->{name} | $name | $cell->{what} | " .
		    "$rate_s | $cpu_s |";
	}
}
push @out, '', 'Ratios of the medians (msg/s, CPU/1000):', '';
for my $size (@sizes) {
	my $m = $med{$size->{name}} || {};
	for my $pair (['postern-od-tcp', 'postern-od-unix',
	    'posternd: milter over TCP / over unix'],
	    ['postfix-od-tcp', 'postfix-od-unix',
	    'Postfix: milter over TCP / over unix'],
	    ['postern-od-tcp', 'postfix-od-tcp',
	    'opendkim over TCP: posternd / Postfix'],
	    ['postern-od-unix', 'postfix-od-unix',
	    'opendkim over unix: posternd / Postfix'],
	    ['postern-od-tcp', 'postern-dkim',
	    'posternd: opendkim milter (TCP) / own dkim filter'],
	    ['postfix-pm-tcp', 'postfix-od-tcp',
	    'Postfix: postern-milter / opendkim (TCP)']) {
		my ($a, $b, $what) = @$pair;
		next unless $m->{$a} && $m->{$b};
		push @out, sprintf('- %s, %s: %.2f, %.2f', $size->{name},
		    $what, $m->{$a}[0] / $m->{$b}[0],
		    $m->{$b}[1] > 0 ? $m->{$a}[1] / $m->{$b}[1] : 0);
	}
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
exit($all_ok ? 0 : 1);

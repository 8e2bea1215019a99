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
use Getopt::Long qw(GetOptions);
use POSIX qw(strftime);
use Time::HiRes qw(time);

use lib dirname(abs_path($0)) . '/lib';
use Bench;

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

for my $prog ($opt{source}, $opt{sink}) {
	-x $prog or die "$prog not found (apt-get install postfix)\n";
}
if (grep { $_ eq 'postfix' } @systems) {
	-x $opt{master} && -x $opt{postfix}
	    or die "Postfix not found ($opt{master})\n";
	$IS_ROOT or die "the private Postfix needs root; use --only postern\n";
}
if (grep { $_ eq 'postern' } @systems) {
	-x $opt{posternd} or die "posternd not found: $opt{posternd} " .
	    "(build it, set \$POSTERND or use --only postfix)\n";
	$opt{posternd} = abs_path($opt{posternd});
}

my $tmp_fs = fs_type(abs_path($opt{tmpdir}) // $opt{tmpdir});
warn "WARNING: $opt{tmpdir} is $tmp_fs: fsync costs nothing there\n"
    if $tmp_fs =~ /^(?:tmpfs|ramfs)$/;

my $TOP_TMP = bench_setup(\%opt, 'postern-bench');

my %start = (
	postfix => sub {
		my ($dir, $sink_port, $sys) = @_;
		%$sys = %{start_postfix($dir, $sink_port, \@postfix_opt)};
	},
	postern => sub {
		my ($dir, $sink_port, $sys) = @_;
		%$sys = %{start_postern($dir, $sink_port, \@postern_opt)};
	},
);

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
			my $r = eval { run_one("$system $size->{name}",
			    $start{$system}, $size, $dir) };
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
    strftime('%Y-%m-%d %H:%M:%S %Z', localtime($started)), $uname, $NCPU,
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

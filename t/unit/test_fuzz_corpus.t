#!/usr/bin/perl
# test_fuzz_corpus.t - the fuzz corpora as regression tests: every
# standalone fuzz binary (built with -DFUZZ_STANDALONE by "make check",
# see fuzz/fuzz.am) runs every file of its corpus directory
# fuzz/corpus/<target>/ once. A file passes when the program exits 0
# without a signal, within the time limit, and prints no sanitizer
# report; the targets' own property checks abort() on a violation.
#
# The binaries are found under $POSTERN_BUILD (the build directory;
# default: the top of the source tree): fuzz/fuzz_<target>_standalone,
# or fuzz/fuzz_<target> for targets whose fragment builds the
# standalone form under the plain name. A corpus without a binary is
# skipped, not failed, so that a partial build still runs the rest.
# Every fuzz/fuzz_*.c must come with a non-empty corpus.
#
# SPDX-License-Identifier: ISC

use strict;
use warnings;
use FindBin;
use File::Spec;
use File::Temp qw(tempfile);
use POSIX qw(WIFEXITED WEXITSTATUS WIFSIGNALED WTERMSIG);
use Test::More;

my $top = File::Spec->rel2abs("$FindBin::Bin/../..");
my $build = File::Spec->rel2abs($ENV{POSTERN_BUILD} // $top);
my $corpus_root = "$top/fuzz/corpus";
my $timeout = $ENV{POSTERN_FUZZ_TIMEOUT} // 60;	# seconds per input

# Sanitizer builds: report, and make UBSan's findings fatal too.
$ENV{ASAN_OPTIONS} //= 'detect_leaks=1:abort_on_error=0';
$ENV{UBSAN_OPTIONS} //= 'print_stacktrace=1:halt_on_error=1';

# A sanitizer report, whatever the exit status says.
my $SANITIZER = qr/(?:ERROR: (?:Address|Leak|Memory|Thread)Sanitizer|
    runtime\ error:|UndefinedBehaviorSanitizer|SUMMARY:\ \w+Sanitizer)/x;

# binary_for - the standalone program of a target, or undef
sub binary_for {
	my ($target) = @_;

	for my $name ("fuzz_${target}_standalone", "fuzz_$target") {
		my $path = "$build/fuzz/$name";
		return $path if -f $path && -x _;
	}
	return undef;
}

# run_one - run bin with input on stdin; (status, stderr text)
sub run_one {
	my ($bin, $input) = @_;
	my (undef, $errfile) = tempfile('fuzz-corpus-XXXXXX', TMPDIR => 1,
	    UNLINK => 1);

	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		open(STDIN, '<', $input) or die "$input: $!";
		open(STDOUT, '>', '/dev/null') or die "/dev/null: $!";
		open(STDERR, '>', $errfile) or die "$errfile: $!";
		exec($bin) or die "exec $bin: $!";
	}
	my $status;
	eval {
		local $SIG{ALRM} = sub { die "timeout\n" };
		alarm $timeout;
		waitpid($pid, 0);
		$status = $?;
		alarm 0;
	};
	if ($@ eq "timeout\n") {
		kill 'KILL', $pid;
		waitpid($pid, 0);
		$status = -1;
	}
	my $err = '';
	if (open(my $fh, '<', $errfile)) {
		local $/;
		$err = <$fh> // '';
		close $fh;
	}
	unlink $errfile;
	return ($status, $err);
}

opendir(my $dh, $corpus_root) or plan skip_all => "no $corpus_root";
my @targets = sort grep { !/^\./ && -d "$corpus_root/$_" } readdir $dh;
closedir $dh;

# every target source has a corpus with at least one seed
for my $src (sort glob("$top/fuzz/fuzz_*.c")) {
	my ($target) = $src =~ m{/fuzz_(\w+)\.c$};
	my @seeds = grep { -f } glob("$corpus_root/$target/*");
	ok(@seeds > 0, "fuzz/fuzz_$target.c has a corpus") or
	    diag("add seed inputs to fuzz/corpus/$target/");
}

for my $target (@targets) {
	my @inputs = sort grep { -f && !m{/\.[^/]*$} }
	    glob("$corpus_root/$target/*");
	my $bin = binary_for($target);
	SKIP: {
		skip("$target: no fuzz/fuzz_${target}_standalone in $build " .
		    "(run make check)", scalar @inputs) unless defined $bin;
		for my $input (@inputs) {
			my ($name) = $input =~ m{/([^/]+)$};
			my ($status, $err) = run_one($bin, $input);
			my $why;
			if ($status == -1) {
				$why = "no result within ${timeout}s";
			} elsif (WIFSIGNALED($status)) {
				$why = 'killed by signal ' . WTERMSIG($status);
			} elsif (WEXITSTATUS($status) != 0) {
				$why = 'exit status ' . WEXITSTATUS($status);
			} elsif ($err =~ $SANITIZER) {
				$why = 'sanitizer report';
			}
			ok(!defined $why, "$target/$name") or
			    diag("$why; reproduce with: $bin < $input\n" .
			    substr($err, 0, 4000));
		}
	}
}

done_testing();

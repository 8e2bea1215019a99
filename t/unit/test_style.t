#!/usr/bin/perl
# test_style.t - the parts of STYLE.md a machine can check, on every C file:
# a header comment and an SPDX line, 80 columns with 8-wide tabs, no
# trailing whitespace, and none of the banned functions (sprintf, strcpy,
# strcat, alloca, setjmp, longjmp). clang-format (.clang-format) is the
# formatting guide; it cannot express every KNF alignment, so this test is
# what CI enforces.
use strict;
use warnings;
use FindBin;
use Test::More;

my $top = "$FindBin::Bin/../..";
chdir $top or die "chdir $top: $!";
my @files = grep { -f } map { glob "$_/*.[ch]" }
    qw(daemon config filters policies t/unit t/helpers fuzz);
ok(@files > 20, "found the C sources (" . scalar(@files) . ")");

my $banned = qr/\b(sprintf|vsprintf|strcpy|strcat|alloca|setjmp|longjmp)\s*\(/;
for my $f (sort @files) {
	open(my $fh, '<', $f) or die "$f: $!";
	my @lines = <$fh>;
	close $fh;
	my (@long, @trail, @ban);
	my $n = 0;
	for my $l (@lines) {
		$n++;
		chomp(my $c = $l);
		my $w = 0;
		for my $ch (split //, $c) {
			$w = $ch eq "\t" ? ($w + 8) & ~7 : $w + 1;
		}
		# a table row of string literals may run long (STYLE.md 13)
		push @long, $n if $w > 80 && $c !~ /"[^"]{40,}/ &&
		    $c !~ /^\s*\{\s*"/;
		push @trail, $n if $c =~ /[ \t]+$/;
		my $code = $c;
		$code =~ s{/\*.*?\*/}{}g;
		$code =~ s{"(?:\\.|[^"\\])*"}{""}g;
		push @ban, $n if $code =~ $banned && $code !~ /^\s*\*/;
	}
	my $head = join('', @lines[0 .. ($#lines < 80 ? $#lines : 80)]);
	ok($head =~ m{^/\*}s, "$f starts with a header comment");
	ok($head =~ /SPDX-License-Identifier:/, "$f has an SPDX line");
	ok(!@long, "$f: 80 columns") or diag("lines: @long");
	ok(!@trail, "$f: no trailing whitespace") or diag("lines: @trail");
	ok(!@ban, "$f: no banned functions") or diag("lines: @ban");
}
done_testing();

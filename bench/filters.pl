#!/usr/bin/perl
# bench/filters.pl - what the content filters cost: posternd's messages per
# second and CPU per message with DKIM signing (rsa-2048, ed25519, both)
# and with 1,000 regex rules, against the bare relay. Each scenario is a
# bench/run.pl run of posternd alone (--only postern) with extra
# configuration lines; the scenarios alternate round by round so that
# machine noise spreads over all of them. See bench/README.md.
# SPDX-License-Identifier: ISC

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use Getopt::Long qw(GetOptions);

use lib dirname(abs_path($0)) . '/lib';
use Bench qw($BENCH_DIR median spew);

my %opt = (rounds => 3, sizes => '4k', rules => 1000, sessions => 20,
    count => 3000, tmpdir => '/var/tmp');
GetOptions(\%opt, 'rounds=i', 'sizes=s', 'rules=i', 'sessions=i',
    'count=i', 'tmpdir=s', 'only=s', 'out=s', 'posternd=s')
    or die "usage: $0 [--rounds R] [--sizes 4k,100k] [--rules N] " .
    "[--count N] [--only SCENARIO] [--out FILE]\n";

my $dir = tempdir('postern-filters-XXXXXX', DIR => $opt{tmpdir},
    CLEANUP => 1);
chmod 0755, $dir;

sub run_quiet {
	my (@cmd) = @_;
	system(@cmd) == 0 or die "@cmd: failed\n";
}

# keys and tables: every sender signs (smtp-source's From is the envelope
# sender), with one key or both
run_quiet('openssl', 'genpkey', '-algorithm', 'RSA', '-pkeyopt',
    'rsa_keygen_bits:2048', '-out', "$dir/rsa.pem", '-quiet');
run_quiet('openssl', 'genpkey', '-algorithm', 'ED25519', '-out',
    "$dir/ed.pem");
chmod 0644, "$dir/rsa.pem", "$dir/ed.pem";
spew("$dir/keys", "rsa %:rsa2048:$dir/rsa.pem\ned %:ed25519:$dir/ed.pem\n");
spew("$dir/sign-rsa", "* rsa\n");
spew("$dir/sign-ed", "* ed\n");
spew("$dir/sign-dual", "* rsa\n* ed\n");
chmod 0644, map { "$dir/$_" } qw(keys sign-rsa sign-ed sign-dual);

# rules that never match smtp-source's messages, so that every header and
# body line meets all of them: the worst case of a long table
my (@h, @b);
for my $i (1 .. $opt{rules}) {
	push @h, $i % 3 ? "/^Subject:.*\\bofferword$i\\b/ REJECT rule $i" :
	    "/^(To|Cc|Reply-To):.*\@spamdomain$i\\.example/ REJECT rule $i";
	push @b, $i % 2 ? "/buy cheap thing$i now/ REJECT rule $i" :
	    "/^click here for prize$i/ REJECT rule $i";
}
spew("$dir/header_checks", join("\n", @h) . "\n");
spew("$dir/body_checks", join("\n", @b) . "\n");
chmod 0644, "$dir/header_checks", "$dir/body_checks";

my %scenarios = (
	'relay' => ['smtpd_filters = relay'],
	'dkim-rsa' => ['smtpd_filters = relay, dkim',
	    "dkim_signing_table = texthash:$dir/sign-rsa",
	    "dkim_key_table = texthash:$dir/keys"],
	'dkim-ed25519' => ['smtpd_filters = relay, dkim',
	    "dkim_signing_table = texthash:$dir/sign-ed",
	    "dkim_key_table = texthash:$dir/keys"],
	'dkim-dual' => ['smtpd_filters = relay, dkim',
	    "dkim_signing_table = texthash:$dir/sign-dual",
	    "dkim_key_table = texthash:$dir/keys"],
	"regex-$opt{rules}" => ['smtpd_filters = relay, regex',
	    "header_checks = pcre:$dir/header_checks",
	    "body_checks = pcre:$dir/body_checks"],
	"regex-$opt{rules}+dkim-rsa" => ['smtpd_filters = relay, regex, dkim',
	    "header_checks = pcre:$dir/header_checks",
	    "body_checks = pcre:$dir/body_checks",
	    "dkim_signing_table = texthash:$dir/sign-rsa",
	    "dkim_key_table = texthash:$dir/keys"],
);
my @order = ('relay', 'dkim-rsa', 'dkim-ed25519', 'dkim-dual',
    "regex-$opt{rules}", "regex-$opt{rules}+dkim-rsa");
@order = grep { $_ eq $opt{only} } @order if defined $opt{only};
die "no such scenario\n" unless @order;

# results{scenario}{size} = [[rate, cpu], ...]
my %results;
for my $round (1 .. $opt{rounds}) {
	for my $name (@order) {
		my @cmd = ("$BENCH_DIR/run.pl", '--only', 'postern',
		    '--rounds', 1, '--sizes', $opt{sizes}, '--sessions',
		    $opt{sessions}, '--tmpdir', $opt{tmpdir},
		    map({ ('--count', "$_=$opt{count}") } split /,/,
		    $opt{sizes}), map({ ('--postern-opt', $_) }
		    @{$scenarios{$name}}));
		push @cmd, '--posternd', $opt{posternd} if $opt{posternd};
		print STDERR "round $round: $name\n";
		open my $fh, '-|', @cmd or die "run.pl: $!\n";
		while (my $line = <$fh>) {
			next unless $line =~ /^\| (\S+) \| \d+ \| postern \| ([\d.]+) \S* \| ([\d.]+) /;
			push @{$results{$name}{$1}}, [$2, $3];
		}
		close $fh;
		warn "$name: run.pl failed (status $?)\n" if $?;
	}
}

my @out = ('| scenario | size | msg/s (median [rounds]) | CPU s/1000 msgs | ' .
    'msg/s vs relay |', '|---|---|---:|---:|---:|');
for my $size (split /,/, $opt{sizes}) {
	my $base = median(map { $_->[0] } @{$results{relay}{$size} || []});
	for my $name (@order) {
		my $r = $results{$name}{$size} || [];
		my $rate = median(map { $_->[0] } @$r);
		my $cpu = median(map { $_->[1] } @$r);
		push @out, sprintf('| %s | %s | %s [%s] | %s | %s |', $name,
		    $size, defined $rate ? sprintf('%.1f', $rate) : 'FAILED',
		    join(' ', map { $_->[0] } @$r),
		    defined $cpu ? sprintf('%.3f', $cpu) : '-',
		    defined $rate && $base ? sprintf('%.2f', $rate / $base) :
		    '-');
	}
}
my $report = join("\n", @out) . "\n";
print $report;
spew($opt{out}, $report) if $opt{out};

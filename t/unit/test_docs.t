#!/usr/bin/perl
# test_docs.t - the documentation of the configuration does not drift from
# the code. The parameter names are those of the schema rows in
# config/schema.c (lines like `{ "name", SCHEMA_...`); each one must be
# documented in doc/configuration.md (as `name`), in doc/postern.conf.5 (as
# a .TP entry) and in README.md (as `name`), and nothing may be documented
# as a parameter that the schema does not have. The defaults the manual
# page and configuration.md give as literals must be the schema's. The
# manual page must render without groff warnings.
#
# SPDX-License-Identifier: ISC
use strict;
use warnings;
use FindBin;
use Test::More;

my $top = "$FindBin::Bin/../..";
chdir $top or die "chdir $top: $!";

# the sections of postern.conf.5 that hold no parameter entries
my %prose_section = map { $_ => 1 } ('NAME', 'SYNOPSIS', 'DESCRIPTION',
    'DIFFERENCES FROM POSTFIX', 'EXAMPLES', 'FILES', 'SEE ALSO', 'BUGS',
    'HISTORY', 'AUTHORS', 'STANDARDS', 'DIAGNOSTICS');
# a word that reads as a parameter name
my $param_re = qr/^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$/;

sub slurp
{
	my ($path) = @_;

	open(my $fh, '<', $path) or return undef;
	local $/;
	my $text = <$fh>;
	close $fh;
	return $text;
}

# schema_rows - name => default text (undef: computed at load time),
# name => SCHEMA_ type, and the names in file order
sub schema_rows
{
	my ($src) = @_;
	my (%macro, %rows, %type, @order);

	# #define NAME "..." "..." (string literals spread over lines)
	my $str = qr/"(?:[^"\\]|\\.)*"/;

	while ($src =~ /^\#define [ \t]+ (\w+) [ \t]* \\? \n?
	    ((?: [ \t]* $str [ \t]* \\? \n)+)/mgx) {
		my ($name, $body) = ($1, $2);
		$macro{$name} = join('', $body =~ /"((?:[^"\\]|\\.)*)"/g);
	}
	while ($src =~ /^\s* \{ \s* "(\w+)", \s* (SCHEMA_\w+), \s*
	    ($str|\w+)/mgx) {
		my ($name, $def) = ($1, $3);
		push @order, $name;
		$type{$name} = $2;
		if ($def =~ /^"(.*)"$/s) {
			$rows{$name} = $1;
		} elsif (exists $macro{$def}) {
			$rows{$name} = $macro{$def};
		} else {
			$rows{$name} = undef;	# NULL: computed at load time
		}
	}
	return (\%rows, \%type, \@order);
}

# roff_args - the arguments of a macro line, with roff's quoting
sub roff_args
{
	my ($s) = @_;
	my @args;

	while ($s =~ /\G[ \t]*(?:"((?:[^"]|"")*)"?|(\S+))/gc) {
		my $a = defined $1 ? $1 : $2;
		$a =~ s/""/"/g if defined $1;
		push @args, $a;
	}
	return @args;
}

# roff_text - what a text or font-macro line shows, escapes undone
sub roff_text
{
	my ($line) = @_;
	my %glyph = (em => '-', en => '-', hy => '-', aq => "'", dq => '"',
	    lq => '"', rq => '"', bu => '*', mi => '-');
	my $t;

	if ($line =~ /^\.(B|I|SM|SB)(?:\s+(.*))?$/) {
		$t = join(' ', roff_args($2 // ''));
	} elsif ($line =~ /^\.([BIR][BIR])(?:\s+(.*))?$/) {
		$t = join('', roff_args($2 // ''));
	} else {
		$t = $line;
	}
	$t =~ s/\\f(?:\[[^\]]*\]|\(..|.)//g;
	$t =~ s/\\\((..)/$glyph{$1} \/\/ ''/ge;
	$t =~ s/\\\[(\w+)\]/$glyph{$1} \/\/ ''/ge;
	$t =~ s/\\-/-/g;
	$t =~ s/\\[&%]//g;
	$t =~ s/\\e/\\/g;
	return $t;
}

# man_entries - the outermost .TP tags of a man page (a .TP list between
# .RS and .RE lists the values of the entry around it, not parameters):
# [section, tag text, line of the tag]
sub man_entries
{
	my ($text) = @_;
	my @lines = split /\n/, $text;
	my ($section, $depth, @entries) = ('', 0);

	for (my $i = 0; $i < @lines; $i++) {
		if ($lines[$i] =~ /^\.SH\s+(.*)$/) {
			$section = join(' ', roff_args($1));
			$depth = 0;
		} elsif ($lines[$i] =~ /^\.RS\b/) {
			$depth++;
		} elsif ($lines[$i] =~ /^\.RE\b/) {
			$depth-- if $depth > 0;
		} elsif ($lines[$i] =~ /^\.TP\b/ && $i + 1 < @lines &&
		    $depth == 0) {
			push @entries, [$section, roff_text($lines[$i + 1]),
			    $i + 2];
		}
	}
	return @entries;
}

# man_body - the text of the entry whose tag is on line n (1-based), up to
# the next entry or section, on one line with single spaces
sub man_body
{
	my ($text, $n) = @_;
	my @lines = split /\n/, $text;
	my @body;

	for (my $i = $n; $i < @lines; $i++) {
		last if $lines[$i] =~ /^\.(?:TP|SH|SS|PP|IP)\b/;
		next if $lines[$i] =~ /^\.(?:\\"|RS|RE|br|sp)/;
		push @body, roff_text($lines[$i]);
	}
	return join(' ', @body) =~ s/\s+/ /gr;
}

# man_default - the literal default of a tag "name (default: VALUE)"
sub man_default
{
	my ($tagline) = @_;
	my @a = $tagline =~ /^\.BR\s+(.*)$/ ? roff_args($1) : ();

	return '' if @a >= 2 && $a[1] =~ /^ \(default: empty\b/;
	return undef unless @a == 4 && $a[1] eq ' (default: ' &&
	    $a[3] eq ')';
	return roff_text($a[2]);
}

my $schema_src = slurp('config/schema.c');
my $md = slurp('doc/configuration.md');
my $man = slurp('doc/postern.conf.5');
my $readme = slurp('README.md');
ok(defined $schema_src, 'config/schema.c is readable') or BAIL_OUT('no schema');
ok(defined $md, 'doc/configuration.md is readable');
ok(defined $man, 'doc/postern.conf.5 is readable');
ok(defined $readme, 'README.md is readable');
$md //= '';
$man //= '';
$readme //= '';

my ($schema, $type, $order) = schema_rows($schema_src);
my @names = @$order;
ok(@names >= 50, "schema rows found in config/schema.c") or
    diag('got ' . scalar(@names) . ' rows, want at least 50');

# every schema parameter is documented in all three places
my @entries = man_entries($man);
my %man_tp;
for my $e (@entries) {
	my ($word) = $e->[1] =~ /^\s*(\S+)/;
	next unless defined $word;
	push @{$man_tp{$word}}, $e;
}
for my $name (@names) {
	my $q = quotemeta $name;

	ok($md =~ /`$q(?:\s*=[^`\n]*)?`/,
	    "doc/configuration.md documents `$name`") or
	    diag("got: no `$name` in doc/configuration.md, want it");
	ok(exists $man_tp{$name}, "doc/postern.conf.5 has a .TP entry $name")
	    or diag("got: no .TP entry for $name, want one");
	ok($readme =~ /`$q(?:\s*=[^`\n]*)?`/, "README.md names `$name`") or
	    diag("got: no `$name` in README.md, want it");
}

# conversely, nothing is documented as a parameter that does not exist
my @bogus_man;
for my $e (@entries) {
	my ($word) = $e->[1] =~ /^\s*(\S+)/;
	next unless defined $word && $word =~ $param_re;
	# in parameter sections every such tag is a parameter; elsewhere
	# only a name with an underscore reads as one
	next if $prose_section{$e->[0]} && $word !~ /_/;
	push @bogus_man, "$word (line $e->[2], $e->[0])"
	    unless exists $schema->{$word};
}
is(join(', ', @bogus_man), '',
    'every .TP parameter entry in postern.conf.5 is a schema row');
my @dup = grep { @{$man_tp{$_}} > 1 && exists $schema->{$_} }
    sort keys %man_tp;
is(join(', ', @dup), '', 'no parameter has two .TP entries');

my (@bogus_md, %md_default);
for my $row ($md =~ /^\|[^\n]*$/mg) {
	my @cell = map { s/^\s+|\s+$//gr } split /(?<!\\)\|/, $row;
	shift @cell;	# before the first '|'
	next unless @cell >= 3 && $cell[0] =~ /^`([a-z0-9_]+)`$/;
	my $name = $1;
	push @bogus_md, $name unless exists $schema->{$name};
	$md_default{$name} = $cell[1];
}
is(join(', ', @bogus_md), '',
    'every parameter row in configuration.md is a schema row');

# the defaults given as literals agree with the schema
for my $name (@names) {
	my $want = $schema->{$name};
	next unless defined $want;
	my ($e) = @{$man_tp{$name} // []};
	if (defined $e) {
		my @lines = split /\n/, $man;
		my $got = man_default($lines[$e->[2] - 1]);
		is($got, $want, "postern.conf.5: default of $name")
		    if defined $got;
		# a list too long for the tag is spelt out in the text
		if (!defined $got && $type->{$name} eq 'SCHEMA_LIST' &&
		    $want ne '') {
			my $body = man_body($man, $e->[2]);
			ok(index($body, $want) >= 0,
			    "postern.conf.5: $name lists its default") or
			    diag("got: $body\nwant it to contain: $want");
		}
	}
	my $cell = $md_default{$name};
	next unless defined $cell;
	my $got;
	if ($cell =~ /^`([^`]*)`/) {
		$got = $1;
	} elsif ($cell =~ /^\(empty\b/) {
		$got = '';
	}
	is($got, $want, "configuration.md: default of $name")
	    if defined $got;
}

# the page renders without warnings
SKIP: {
	my $groff = `sh -c 'command -v groff' 2>/dev/null`;
	chomp $groff;
	skip('groff is not installed', 1) unless $groff ne '';
	my $out = `groff -man -Tutf8 -ww -z doc/postern.conf.5 2>&1`;
	is($out, '', 'groff -man -ww renders postern.conf.5 without warnings');
}

done_testing();

#!/usr/bin/perl
# 09_config.t - configuration: "posternd -n" accepts a good file and
# rejects each kind of error with non-zero status and FILE:LINE; "-P"
# prints every parameter as "name = value", defaults included; SIGHUP
# with a changed valid file takes effect for new sessions (sessions in
# flight keep theirs), SIGHUP with a broken file logs FILE:LINE and keeps
# the old configuration.
#
# SPDX-License-Identifier: ISC

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use PosternTest qw(reply_is poll_until);

my $FIX = "$FindBin::Bin/data/delivery";
my $t = PosternTest->new;
my $BIN = $t->binary;
my @outputs;	# every -n/-P output, scanned for sanitizer reports

# --- local helpers ----------------------------------------------------------

# line_of(FILE, PARAM) - the line number of "PARAM =" in FILE
sub line_of {
	my ($file, $param) = @_;
	open my $fh, '<', $file or die "$file: $!";
	while (<$fh>) {
		return $. if /^\Q$param\E\s*=/;
	}
	return 0;
}

# run(ARGS...) - (exit status, stdout+stderr) of posternd ARGS
sub run {
	my (@args) = @_;
	my $cmd = join ' ', map { "'$_'" } $BIN, @args;
	my $out = qx{$cmd 2>&1};
	push @outputs, $out;
	return ($? >> 8, $out, $? & 127);
}

# greeting_text - the 220 greeting of a new smtp session (undef if none)
sub greeting_text {
	my $c = $t->client('smtp');
	my $g = $c->greeting;
	return $g && $g->{code} == 220 ? $g->{text} : undef;
}

# --- 1. posternd -n: a good configuration ---------------------------------

{
	my ($st, $out) = $t->check_config;
	push @outputs, $out;
	is($st, 0, '-n: the acceptance configuration is OK') or diag($out);

	($st, $out) = $t->check_config(
	    mydestination => "example.test, pcre:$FIX/good.pcre",
	    mynetworks => "127.0.0.0/8, cidr:$FIX/good.cidr",
	    queue_run_delay => '5m', minimal_backoff_time => '30s',
	    maximal_backoff_time => '4h', maximal_queue_lifetime => '5d',
	    bounce_queue_lifetime => '1w', message_size_limit => 20480000);
	push @outputs, $out;
	is($st, 0, '-n: pcre and cidr tables, Postfix time units are OK') or
	    diag($out);
}

# --- 2. posternd -n: one error each ---------------------------------------

# [ name, overrides, parameter whose line is reported, extra regex ]
my @errors = (
	[ 'unknown parameter', { no_such_parameter => 'yes' },
	    'no_such_parameter', qr/no_such_parameter/ ],
	[ 'bad time value "5x"', { queue_run_delay => '5x' },
	    'queue_run_delay', qr/queue_run_delay/ ],
	[ 'bad time unit in a backoff',
	    { maximal_backoff_time => '10 parsecs' },
	    'maximal_backoff_time', qr/maximal_backoff_time/ ],
	[ 'bad size', { message_size_limit => '12abc' },
	    'message_size_limit', qr/message_size_limit/ ],
	[ 'negative size', { message_size_limit => '-5' },
	    'message_size_limit', qr/message_size_limit/ ],
	[ 'bad CIDR in mynetworks (/33)', { mynetworks => '192.0.2.0/33' },
	    'mynetworks', qr/192\.0\.2\.0\/33/ ],
	[ 'bad address in mynetworks', { mynetworks => '192.0.2.300/24' },
	    'mynetworks', qr/192\.0\.2\.300/ ],
	[ 'missing texthash file',
	    { smtpd_sasl_password_maps => 'texthash:' . $t->path('no-such') },
	    'smtpd_sasl_password_maps', qr/\Q${\ $t->path('no-such') }\E/ ],
	[ 'broken pcre table', { mydestination =>
	    "example.test, pcre:$FIX/broken.pcre" },
	    undef, qr/\Q$FIX\E\/broken\.pcre:3:/ ],
	[ 'broken cidr table', { mynetworks => "cidr:$FIX/broken.cidr" },
	    undef, qr/\Q$FIX\E\/broken\.cidr:3:/ ],
);

for my $e (@errors) {
	my ($name, $over, $param, $re) = @$e;
	my ($st, $out) = $t->check_config(%$over);
	push @outputs, $out;
	my $file = $t->path('main.cf');
	isnt($st, 0, "-n: $name: exits non-zero") or diag("output: $out");
	if (defined $param) {
		my $line = line_of($file, $param);
		like($out, qr/\Q$file\E:$line:/, "-n: $name: names $file:$line")
		    or diag("output: $out");
	}
	like($out, $re, "-n: $name: says what is wrong") or
	    diag("output: $out");
}

{
	# a continuation line: the error is reported at the parameter's
	# first line, and the line count stays right after it
	my $file = $t->write_config;
	open my $fh, '>>', $file or die "$file: $!";
	print $fh "relay_domains = a.example,\n    b.example\n";
	print $fh "# a comment\n\nqueue_run_delay = 5x\n";
	close $fh;
	my $line = line_of($file, 'queue_run_delay');
	my ($st, $out) = run('-n', '-c', $file);
	isnt($st, 0, '-n: error after a continuation line: non-zero');
	like($out, qr/\Q$file\E:$line:/,
	    "-n: error after continuation and comment lines: line $line")
	    or diag("output: $out");
}

{
	my ($st, $out) = run('-n', '-c', $t->path('missing.cf'));
	isnt($st, 0, '-n: a missing configuration file: non-zero');
	like($out, qr/missing\.cf/, '-n: a missing file is named');
}

# --- 3. posternd -P ----------------------------------------------------------

{
	my $file = $t->write_config(message_size_limit => 20480000);
	my ($st, $out) = run('-P', '-c', $file);
	is($st, 0, '-P: exits 0') or diag($out);
	my @l = split /\n/, $out;
	my @odd = grep { !/^[a-z][a-z0-9_]* = .*$/ } @l;
	ok(@l > 20 && !@odd, '-P: every line is "name = value" (' .
	    scalar(@l) . ' lines)') or diag("odd lines:\n" . join "\n", @odd);
	my %p = map { /^(\S+) = (.*)$/ ? ($1 => $2) : () } @l;
	is($p{message_size_limit}, '20480000', '-P: message_size_limit = ' .
	    'the value set');
	like($p{queue_run_delay} // '', qr/^(?:300s?|5m)$/,
	    '-P: queue_run_delay = 300s (a default)');
	like($p{maximal_queue_lifetime} // '', qr/^(?:5d|432000s?)$/,
	    '-P: maximal_queue_lifetime = 5d (a default)');
	is($p{myhostname}, 'relay.example.test', '-P: myhostname as set');
	is($p{mynetworks}, '192.0.2.0/24', '-P: mynetworks as set');
	is($p{relayhost}, '[127.0.0.1]:' . $t->port('relay'),
	    '-P: relayhost as set');
	for my $k (qw(minimal_backoff_time maximal_backoff_time
	    bounce_queue_lifetime smtpd_banner smtpd_recipient_limit)) {
		ok(exists $p{$k}, "-P: prints $k");
	}
	ok(!exists $p{no_such_parameter}, '-P: prints no invented names');

	($st, $out) = run('-P', '-c',
	    $t->write_config(queue_run_delay => '5x'));
	isnt($st, 0, '-P: a broken configuration exits non-zero');
}

# --- 4. SIGHUP ---------------------------------------------------------------

my %BASE = (
	smtpd_banner => '$myhostname ESMTP banner-one',
	mydestination => "example.test, pcre:$FIX/good.pcre",
);
$t->start_posternd(config => \%BASE);
my $pid = $t->posternd_pid;
like(greeting_text() // '', qr/^relay\.example\.test ESMTP banner-one\b/,
    'HUP: the greeting before reload ($myhostname expanded)');

{
	# the pcre domain list works as a Postfix administrator wrote it
	my $c = $t->session('smtp');
	reply_is($c->cmd('MAIL FROM:<a@client.example>'), 250, undef,
	    'pcre: MAIL');
	reply_is($c->cmd('RCPT TO:<u@lists.example.test>'), 250, undef,
	    'pcre: u@lists.example.test is local (matched by good.pcre)');
	reply_is($c->cmd('RCPT TO:<u@other.example>'), 554, '5.7.1',
	    'pcre: u@other.example is not');
}

{
	$t->write_config(%BASE,
	    smtpd_banner => '$myhostname ESMTP banner-two',
	    message_size_limit => 2000000);
	my $mark = $t->log_mark;
	kill 'HUP', $pid;
	my $g = poll_until(sub {
		my $x = greeting_text() // '';
		return $x =~ /banner-two/ ? $x : 0;
	}, 5);
	# key.pem is root's, mode 0600, as an administrator installs it;
	# the daemon runs as mail_owner by now and must still reload
	ok($g, 'HUP: reload works with a root-only (0600) TLS key file') or
	    diag("log since HUP:\n" . join("\n",
	    grep { /reload|warning|error|fatal/i } $t->log_lines($mark)));
	if (!$g && $> == 0) {
		# let the remaining reload checks test the reload itself
		my $user = $ENV{POSTERN_TEST_USER} // 'nobody';
		my (undef, undef, $uid, $gid) = getpwnam($user);
		chown $uid, $gid, $t->path('key.pem');
		diag("key.pem given to $user for the remaining HUP checks");
		kill 'HUP', $pid;
		$g = poll_until(sub {
			my $x = greeting_text() // '';
			return $x =~ /banner-two/ ? $x : 0;
		}, 5);
	}
	ok($g, 'HUP: the new banner is used by new sessions') or
	    diag("log tail:\n" . $t->log_tail(5));
	my $c = $t->session('smtp', no_ehlo => 1);
	my (undef, $kw) = $c->ehlo;
	is($kw->{SIZE}, '2000000', 'HUP: the new message_size_limit in SIZE');
	ok($t->is_running, 'HUP: still running');
}

my $old = $t->session('smtp', no_ehlo => 1);	# opened under banner-two
{
	$t->write_config(%BASE,
	    smtpd_banner => '$myhostname ESMTP banner-three',
	    message_size_limit => 2000000,
	    queue_run_delay => '5x');
	my $file = $t->path('main.cf');
	my $line = line_of($file, 'queue_run_delay');
	my $mark = $t->log_mark;
	kill 'HUP', $pid;
	my $l = $t->wait_for_log(qr/\Q$file\E:\d+:/, 5, $mark);
	ok($l, 'HUP broken: an error with file and line is logged') or
	    diag("log tail:\n" . $t->log_tail(5));
	like($l // '', qr/\Q$file\E:$line:.*queue_run_delay/,
	    "HUP broken: it names line $line and the parameter");
	ok($t->is_running, 'HUP broken: the daemon is alive');
	like(greeting_text() // '', qr/banner-two/,
	    'HUP broken: the old configuration stays (banner-two)');
	my $c = $t->session('smtp', no_ehlo => 1);
	my (undef, $kw) = $c->ehlo;
	is($kw->{SIZE}, '2000000', 'HUP broken: old message_size_limit');

	# and it still does its job
	reply_is($c->cmd('MAIL FROM:<a@client.example>'), 250, undef,
	    'HUP broken: MAIL');
	reply_is($c->cmd('RCPT TO:<hup@example.test>'), 250, undef,
	    'HUP broken: RCPT');
	reply_is($c->data("Subject: HUP-BROKEN\r\n\r\nstill serving\r\n"),
	    250, '2.0.0', 'HUP broken: message queued');
	my @m = grep { /HUP-BROKEN/ } $t->wait_maildir('hup', 1, 15);
	is(scalar @m, 1, 'HUP broken: and delivered');
}

{
	$t->write_config(%BASE,
	    smtpd_banner => '$myhostname ESMTP banner-four',
	    message_size_limit => 3000000);
	kill 'HUP', $pid;
	my $g = poll_until(sub {
		my $x = greeting_text() // '';
		return $x =~ /banner-four/ ? $x : 0;
	}, 5);
	ok($g, 'HUP fixed: a later good reload takes effect');
	my $c = $t->session('smtp', no_ehlo => 1);
	my (undef, $kw) = $c->ehlo;
	is($kw->{SIZE}, '3000000', 'HUP fixed: new SIZE for a new session');
	# a session opened before the reload keeps its configuration
	my ($r, $okw) = $old->ehlo;
	reply_is($r, 250, undef, 'in-flight session: EHLO still served');
	is($okw->{SIZE}, '2000000',
	    'in-flight session keeps the configuration it started with');
}

ok($t->is_running, 'posternd still running');
$t->exit_ok;
$t->sanitizer_ok('no sanitizer report in the log or in -n/-P output',
    @outputs);

done_testing;

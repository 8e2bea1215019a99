#!/usr/bin/perl
# 05_limits.t - every input limit gives a clear reply and a log line and
# leaves the daemon serving: command line length, text line length,
# message size, recipients, errors per session, idle and stalled clients,
# connections per client, header block size.
#
# SPDX-License-Identifier: ISC

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Time::HiRes qw(time);
use PosternTest qw(reply_is poll_until);

my %limits = (
	smtpd_line_length_limit => 1000,
	line_length_limit => 2048,
	message_size_limit => 20000,
	smtpd_recipient_limit => 3,
	smtpd_soft_error_limit => 3,
	smtpd_hard_error_limit => 5,
	smtpd_timeout => '2s',
	smtpd_data_timeout => '4s',
	smtpd_client_connection_count_limit => 3,
	header_size_limit => 4096,
);
my $t = PosternTest->new;
$t->start_posternd(config => \%limits);

sub new_log_like {
	my ($mark, $re, $name) = @_;
	ok($t->wait_for_log($re, 5, $mark), "$name: logged") or
	    diag("want a log line =~ $re; log tail:\n" . $t->log_tail(8));
}

# transaction(CLIENT, RCPT) - MAIL and RCPT TO:<RCPT>
sub transaction {
	my ($c, $rcpt) = @_;
	return $c->envelope('sender@client.example', $rcpt);
}

# --- connections per client (first: nothing else is connected) ---------
{
	my @c = map { $t->session('smtp') } 1 .. 3;
	is(scalar @c, 3, 'three connections from 127.0.0.1 served');
	my $mark = $t->log_mark;
	my $x = $t->client('smtp');
	reply_is($x->read_reply, 421, '4.7.0',
	    'fourth connection: 421 4.7.0');
	ok($x->is_closed(5), 'fourth connection closed');
	new_log_like($mark, qr/127\.0\.0\.1.*(connection|limit)|(connection|limit).*127\.0\.0\.1/i,
	    'connection limit');
	$c[0]->cmd('QUIT');
	$c[0]->close;
	my $ok = poll_until(sub {
		my $y = $t->client('smtp');
		my $g = $y->read_reply;
		return $g && $g->{code} == 220;
	}, 5, 0.2);
	ok($ok, 'a slot freed by QUIT is usable again');
	$_->close for @c;
	# let the server see the closes before the next tests
	ok($t->wait_sessions_ended(10),
	    'every session of the connection-limit test has ended');
}

# --- command line too long -------------------------------------------------
{
	my $c = $t->session('smtp');
	my $mark = $t->log_mark;
	$c->send('NOOP ' . ('x' x 2000) . "\r\n");
	reply_is($c->read_reply, 500, '5.5.2', qr/line too long/i,
	    'command line over smtpd_line_length_limit: 500 5.5.2');
	my $r = $c->cmd('NOOP');
	if ($r) {
		reply_is($r, 250, undef, 'session continues after the long line');
		ok(!defined $c->read_reply(0.5),
		    'the rest of the long line was not read as a command');
	} else {
		ok($c->is_closed(1), 'session closed after the long line');
	}
	new_log_like($mark, qr/line|length|long/i, 'long command line');
	$t->serves_ok('long command line: server still serves');
}

# --- text line too long in DATA ------------------------------------------
{
	my $c = $t->session('smtp');
	transaction($c, 'longline@example.test');
	my $mark = $t->log_mark;
	my $r = $c->data("Subject: long line\r\n\r\nLONG-LINE-MARKER " .
	    ('y' x 5000) . "\r\n");
	reply_is($r, qr/^5\d\d$/, qr/^5\.\d\.\d+$/,
	    'text line over line_length_limit: 5xx after the data');
	reply_is($c->cmd('NOOP'), 250, undef, 'session continues');
	new_log_like($mark, qr/line/i, 'long text line');
}

# --- message size ---------------------------------------------------------
{
	my $c = $t->session('smtp', no_ehlo => 1);
	my ($e, $kw) = $c->ehlo;
	is($kw->{SIZE}, '20000', 'EHLO advertises SIZE 20000');
	reply_is($c->cmd('MAIL FROM:<sender@client.example> SIZE=30000'), 552,
	    '5.3.4', 'MAIL SIZE over the limit: 552 5.3.4');
	reply_is($c->cmd('MAIL FROM:<sender@client.example> SIZE=100'), 250,
	    undef, 'MAIL with a small SIZE');
	$c->cmd('RCPT TO:<big@example.test>');
	my $mark = $t->log_mark;
	my $body = join '', map { sprintf "BIG-MARKER %05d %s\r\n", $_,
	    'z' x 80 } 1 .. 300;
	my $r = $c->data("Subject: big\r\n\r\n$body");
	reply_is($r, 552, '5.3.4', 'message over message_size_limit: 552 5.3.4');
	reply_is($c->cmd('NOOP'), 250, undef, 'session continues');
	new_log_like($mark, qr/size|too (big|large)|exceed/i, 'message size');
}

# --- recipients per message ----------------------------------------------
{
	my $c = $t->session('smtp');
	$c->cmd('MAIL FROM:<sender@client.example>');
	for my $i (1 .. 3) {
		reply_is($c->cmd("RCPT TO:<r$i\@example.test>"), 250, undef,
		    "recipient $i accepted");
	}
	my $mark = $t->log_mark;
	reply_is($c->cmd('RCPT TO:<r4@example.test>'), 452, '4.5.3',
	    'recipient 4 over smtpd_recipient_limit: 452 4.5.3');
	reply_is($c->data("Subject: rcpts\r\n\r\nRCPT-MARKER\r\n"), 250,
	    '2.0.0', 'message goes to the accepted recipients');
	ok(scalar($t->wait_message('r3', qr/RCPT-MARKER/, 20)),
	    'delivered to r3');
	is(scalar($t->maildir_messages('r4')), 0, 'nothing for r4');
	new_log_like($mark, qr/recipient/i, 'recipient limit');
}

# --- errors per session -----------------------------------------------
{
	my $c = $t->session('smtp');
	my $mark = $t->log_mark;
	my ($at, $last);
	for my $i (1 .. 10) {
		my $r = $c->cmd("BOGUS$i");
		last unless $r;
		$last = $r;
		if ($r->{code} == 421) {
			$at = $i;
			last;
		}
	}
	reply_is($last, 421, '4.7.0', 'too many errors: 421 4.7.0');
	ok(defined $at && $at <= 6, 'the 421 comes by the hard limit (5) + 1')
	    or diag('421 at command ' . ($at // 'never'));
	ok($c->is_closed(5), 'disconnected after the 421');
	new_log_like($mark, qr/error/i, 'error limit');
	$t->serves_ok('error limit: server still serves');
}

# --- idle client ---------------------------------------------------------
{
	my $c = $t->session('smtp');
	my $mark = $t->log_mark;
	my $t0 = time;
	my $r = $c->read_reply(10);
	my $dt = time - $t0;
	reply_is($r, 421, '4.4.2', 'idle client: 421 4.4.2');
	ok($dt >= 1.5 && $dt < 8, 'after about smtpd_timeout (2s)') or
	    diag(sprintf 'took %.1fs', $dt);
	ok($c->is_closed(3), 'idle client disconnected');
	new_log_like($mark, qr/timeout|timed out/i, 'idle timeout');
}

# --- stalled DATA ---------------------------------------------------------
{
	my $c = $t->session('smtp');
	transaction($c, 'stall@example.test');
	reply_is($c->cmd('DATA'), 354, undef, 'DATA 354');
	$c->send("Subject: stall\r\n\r\nSTALL-MARKER half a mes");
	my $t0 = time;
	my $r = $c->read_reply(15);
	my $dt = time - $t0;
	reply_is($r, 421, '4.4.2', 'stalled DATA: 421 4.4.2');
	ok($dt < 10, 'within smtpd_data_timeout (4s) and slack') or
	    diag(sprintf 'took %.1fs', $dt);
	ok($c->is_closed(3), 'stalled client disconnected');

	# barrier: a good message to the same mailbox afterwards
	$c = $t->session('smtp');
	transaction($c, 'stall@example.test');
	reply_is($c->data("Subject: after\r\n\r\nAFTER-STALL\r\n"), 250,
	    '2.0.0', 'good message after the stall');
	my @m = $t->wait_message('stall', qr/AFTER-STALL/, 20);
	ok(scalar @m, 'the good message was delivered');
	@m = $t->maildir_messages('stall');
	ok(!(grep { /STALL-MARKER/ } @m), 'nothing of the stalled message ' .
	    'delivered');
	my $inc = $t->path('spool/incoming');
	my $empty = poll_until(sub { !(glob "$inc/*") }, 5);
	ok($empty, 'no leftover file in spool/incoming');
}

# --- header block over header_size_limit ------------------------------
{
	my $c = $t->session('smtp');
	transaction($c, 'hdr@example.test');
	my $mark = $t->log_mark;
	my $hdrs = join '', map { sprintf "X-Filler-%03d: %s\r\n", $_, 'h' x 70 }
	    1 .. 100;
	my $r = $c->data("Subject: big header\r\n${hdrs}\r\nHDR-MARKER\r\n");
	ok($r && ($r->{code} == 552 || $r->{code} == 250),
	    'header block over header_size_limit: 552 or 250') or
	    diag('got: ' . ($r ? $r->{last} : 'nothing'));
	reply_is($r, 552, '5.3.4', 'header block: 552 has 5.3.4')
	    if $r && $r->{code} == 552;
	new_log_like($mark, qr/header/i, 'header block size');
}

ok($t->is_running, 'posternd still running');
PosternTest->finish_all_ok;
done_testing;

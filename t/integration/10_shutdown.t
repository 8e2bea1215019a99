#!/usr/bin/perl
# 10_shutdown.t - graceful shutdown on SIGTERM: idle sessions get
# "421 4.3.2" and the daemon exits 0 within a few seconds; a DATA in
# progress is either finished (250, then delivered) or refused (421, then
# never delivered); queued messages stay in the spool and are delivered
# after the restart; a SIGTERM during a delivery loses nothing.
#
# SPDX-License-Identifier: ISC

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Time::HiRes qw(sleep);
use IO::Socket::IP;
use PosternTest qw(reply_is poll_until simple_message qid_of);

my $t = PosternTest->new;
my %CONFIG = %PosternTest::QUICK_DELIVERY;

# --- local helpers ----------------------------------------------------------

# send_msg(CLIENT, TO, SUBJECT) - one transaction from
# sender@client.example; (reply, qid)
sub send_msg {
	my ($c, $to, $subject) = @_;
	return $c->send_simple('sender@client.example', $to, $subject);
}

# sink_count(SUBJECT) - how many messages with SUBJECT smtp-sink got
sub sink_count {
	my ($subject) = @_;
	return scalar grep { /^Subject: \Q$subject\E$/m } $t->sink_messages;
}

# --- 1. SIGTERM with idle sessions, and one in the middle of DATA ---------

my ($data_reply, $data_qid);
{
	$t->start_posternd(config => \%CONFIG);
	my $pid = $t->posternd_pid;

	my $idle = $t->session('smtp');			# after EHLO
	my $tx = $t->session('smtp');			# after RCPT
	reply_is($tx->cmd('MAIL FROM:<sender@client.example>'), 250, undef,
	    'in transaction: MAIL');
	reply_is($tx->cmd('RCPT TO:<tx@other.example>'), 250, undef,
	    'in transaction: RCPT');
	my $data = $t->session('smtp');			# in DATA
	$data->cmd('MAIL FROM:<sender@client.example>');
	$data->cmd('RCPT TO:<indata@other.example>');
	reply_is($data->cmd('DATA'), 354, undef, 'in DATA: 354');
	my $m = simple_message('SHUTDOWN-IN-DATA', 'sender@client.example',
	    'indata@other.example');
	my $half = int(length($m) / 2);
	$data->send(substr($m, 0, $half));
	sleep 0.2;	# let the first half arrive before the signal

	my $mark = $t->log_mark;
	kill 'TERM', $pid;
	my $r = $idle->read_reply(5);
	reply_is($r, 421, '4.3.2', 'idle after EHLO: 421 4.3.2 on SIGTERM');
	like($r ? $r->{text} : '', qr/relay\.example\.test/,
	    '421 names myhostname');
	ok($idle->is_closed(5), 'idle: then the connection is closed');
	reply_is($tx->read_reply(5), 421, '4.3.2',
	    'idle in a transaction: 421 4.3.2');
	ok($tx->is_closed(5), 'in transaction: connection closed');

	# the rest of the message: either finished or refused, never both
	$data->send(substr($m, $half) . ".\r\n");
	$data_reply = $data->read_reply(10);
	ok($data_reply && ($data_reply->{code} == 250 ||
	    $data_reply->{code} == 421),
	    'in DATA: the transaction is finished (250) or refused (421)') or
	    diag('got: ' . ($data_reply ? $data_reply->{last} : 'nothing'));
	$data_qid = qid_of($data_reply);
	diag('in DATA: ' . ($data_reply ? $data_reply->{last} : 'no reply'));

	my ($st, $secs) = $t->wait_exit(12);
	ok(defined $st, 'posternd exits after SIGTERM') or
	    diag("log tail:\n" . $t->log_tail(10));
	is($st, 0, 'exit status 0');
	cmp_ok($secs, '<=', 5, 'within 5 seconds');
	ok(!eval { PosternTest::Client->new(port => $t->port('smtp')) },
	    'no longer accepting connections');

	my $f = $t->spool_files;
	is(scalar @{ $f->{incoming} // [] }, 0,
	    'nothing left in incoming/ after a graceful stop') or
	    diag('incoming: ' . join(' ', @{ $f->{incoming} }));
	if (defined $data_qid) {
		ok((grep { $_ eq $data_qid } @{ $f->{queue} // [] },
		    @{ $f->{deferred} // [] }),
		    'in DATA: the acknowledged message is in the spool');
	}
}

# --- 2. SIGTERM with messages queued (next hop down) ----------------------

my %qid;
{
	$t->start_posternd;
	my $c = $t->session('smtp');
	for my $i (1 .. 5) {
		my ($r, $qid) = send_msg($c, "q$i\@other.example",
		    "SHUTDOWN-QUEUED-$i");
		$qid{$i} = $qid if $r && $r->{code} == 250 && $qid;
	}
	$c->cmd('QUIT');
	is(scalar keys %qid, 5, 'queued: 5 messages acknowledged');
	ok($t->wait_for_log(qr/: to=<q\d\@other\.example>, .*status=deferred/,
	    10), 'queued: deferred while the next hop is down');

	my $pid = $t->posternd_pid;
	kill 'TERM', $pid;
	my ($st, $secs) = $t->wait_exit(12);
	is($st, 0, 'queued: exit 0 on SIGTERM');
	cmp_ok($secs, '<=', 5, 'queued: within 5 seconds');
	my $f = $t->spool_files;
	my %in = map { $_ => 1 } @{ $f->{queue} // [] },
	    @{ $f->{deferred} // [] };
	my @lost = grep { !$in{ $qid{$_} } } sort keys %qid;
	ok(!@lost, 'queued: all 5 are still in the spool') or
	    diag("not in the spool: @lost; spool: " .
	    join(' ', map { "$_=" . join(',', @{ $f->{$_} }) } keys %$f));
	is(scalar @{ $f->{corrupt} // [] }, 0, 'queued: nothing corrupt');

	$t->start_smtp_sink;
	$t->start_posternd;
	my $all = poll_until(sub {
		!grep { !sink_count("SHUTDOWN-QUEUED-$_") } keys %qid
	}, 20);
	ok($all, 'queued: all 5 delivered after the restart') or
	    diag('missing: ' . join(' ', grep {
	    !sink_count("SHUTDOWN-QUEUED-$_") } sort keys %qid));

	if (defined $data_qid) {
		ok(poll_until(sub { sink_count('SHUTDOWN-IN-DATA') }, 10),
		    'in DATA: the message acknowledged during shutdown ' .
		    'is delivered');
	} else {
		sleep 1.5;	# a wrongly kept message would be out by now
		is(sink_count('SHUTDOWN-IN-DATA'), 0,
		    'in DATA: the refused message is never delivered');
	}
	is(scalar(grep { /^X-Rcpt-Args: <tx\@other\.example>/m }
	    $t->sink_messages), 0,
	    'the interrupted transaction was never delivered');
}

# --- 3. SIGTERM during a delivery -----------------------------------------

{
	$t->stop('smtp-sink');
	$t->start_smtp_sink(undef, '-w', '3');	# 3 s before answering DATA
	my $c = $t->session('smtp');
	my ($r, $qid) = send_msg($c, 'slow@other.example', 'SHUTDOWN-SLOW');
	reply_is($r, 250, '2.0.0', 'slow next hop: message accepted');
	$c->cmd('QUIT');
	# the delivery starts at once and then waits 3 s for the 354
	sleep 1;
	is(sink_count('SHUTDOWN-SLOW'), 0,
	    'slow next hop: not delivered yet when SIGTERM comes');
	my $pid = $t->posternd_pid;
	kill 'TERM', $pid;
	my ($st, $secs) = $t->wait_exit(15);
	is($st, 0, 'during a delivery: exit 0 on SIGTERM');
	cmp_ok($secs, '<=', 12, 'during a delivery: exits in time');

	$t->stop('smtp-sink');
	$t->start_smtp_sink;
	$t->start_posternd;
	ok(poll_until(sub { sink_count('SHUTDOWN-SLOW') }, 20),
	    'during a delivery: the message arrives (at least once)') or
	    diag("log tail:\n" . $t->log_tail(10));
	my $drained = poll_until(sub {
		my $s = $t->spool_files;
		!@{ $s->{queue} // [] } && !@{ $s->{deferred} // [] }
	}, 10);
	ok($drained, 'the spool is empty at the end');
}

# --- 4. SIGTERM while the next hop stalls -----------------------------------
#
# A next hop that accepts the connection and never greets: the delivery
# waits on smtp_helo_timeout (300 s), far longer than a stop may take.
# The queue manager must abort it, defer the message, free everything
# (no LeakSanitizer report) and exit 0 in time; the message is delivered
# after the restart.

{
	$t->stop('smtp-sink');
	my $port = $t->port('relay');
	my $srv = IO::Socket::IP->new(LocalHost => '127.0.0.1',
	    LocalPort => $port, Listen => 5, ReuseAddr => 1)
	    or die "listen 127.0.0.1:$port: $!";
	my $holder = fork // die "fork: $!";
	if ($holder == 0) {
		my @held;
		while (my $a = $srv->accept) {
			push @held, $a;		# never say a word
		}
		exit 0;
	}
	close $srv;
	my $c = $t->session('smtp');
	my ($r, $qid) = send_msg($c, 'stall@other.example', 'SHUTDOWN-STALL');
	reply_is($r, 250, '2.0.0', 'stalled next hop: message accepted');
	$c->cmd('QUIT');
	ok($t->wait_for_log(qr/\Q$qid\E: from=/, 10),
	    'stalled next hop: the delivery has started');
	sleep 1;
	my $pid = $t->posternd_pid;
	kill 'TERM', $pid;
	my ($st, $secs) = $t->wait_exit(20);
	is($st, 0, 'stalled next hop: exit 0 on SIGTERM');
	cmp_ok($secs, '<=', 15, 'stalled next hop: exits in time');
	kill 'KILL', $holder;
	waitpid $holder, 0;
	ok(scalar(grep { /\Q$qid\E: .*status=deferred .*shutting down/ }
	    $t->log_lines), 'stalled next hop: deferred by the shutdown');
	$t->start_smtp_sink;
	$t->start_posternd;
	ok(poll_until(sub { sink_count('SHUTDOWN-STALL') }, 20),
	    'stalled next hop: delivered after the restart') or
	    diag("log tail:\n" . $t->log_tail(10));
}

ok($t->is_running, 'posternd still running');
PosternTest->finish_all_ok;

done_testing;

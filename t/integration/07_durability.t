#!/usr/bin/perl
# 07_durability.t - an acknowledged message is never lost.
#
# 1. Next hop down: 30 messages, each acknowledged with 250; the log says
#    status=deferred (connection refused); kill -9; the 30 files are in
#    the spool; next hop up, posternd restarted: all 30 arrive.
# 2. kill -9 in the middle of a burst of concurrent senders; restart:
#    every message that got its 250 arrives (at least once).
#
# SPDX-License-Identifier: ISC

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use PosternTest qw(reply_is poll_until run_child wait_children);

my $t = PosternTest->new;
my %CONFIG = %PosternTest::QUICK_DELIVERY;
my $RELAY_PORT = $t->port('relay');

# --- local helpers ----------------------------------------------------------

# sink_subjects(PREFIX) - { number => times seen } of "Subject: PREFIX-n"
sub sink_subjects {
	my ($prefix) = @_;
	my %seen;
	for ($t->sink_messages) {
		$seen{$1}++ while /^Subject: \Q$prefix\E-(\d+)$/mg;
	}
	return \%seen;
}

# --- 1. next hop down, kill -9, restart -----------------------------------

my $N = 30;
$t->start_posternd(config => \%CONFIG);
{
	my (%qid, @bad);
	my $c = $t->session('smtp');
	for my $i (1 .. $N) {
		my ($r, $qid) = $c->send_simple('sender@client.example',
		    "down$i\@other.example", "DOWN-$i");
		if ($r && $r->{code} == 250 && defined $qid) {
			$qid{$i} = $qid;
		} else {
			push @bad, "$i: " . ($r ? $r->{last} : 'no reply');
		}
	}
	$c->cmd('QUIT');
	ok(!@bad, "down: all $N messages acknowledged with 250 queued as ID")
	    or diag(join "\n", @bad);
	my %ids = map { $_ => 1 } values %qid;
	is(scalar keys %ids, $N, "down: $N distinct queue IDs");

	my $l = $t->wait_for_log(qr/: to=<down\d+\@other\.example>, .*status=deferred \(.*connection refused/i, 10);
	ok($l, 'down: log says status=deferred (... Connection refused)') or
	    diag("log tail:\n" . $t->log_tail(10));
	like($l // '', qr/\brelay=\S+, delay=\d+(?:\.\d+)?, dsn=4\.\d+\.\d+, status=deferred \(/,
	    'down: the deferred line has relay=, delay=, dsn=4.x.x');
	ok(!grep({ /: to=<down\d+\@other\.example>.*status=(?:bounced|sent)/ }
	    $t->log_lines), 'down: nothing bounced or "sent"');

	$t->kill9;
	ok(!$t->is_running, 'down: posternd killed with SIGKILL');
	my $f = $t->spool_files;
	my %in_spool = map { $_ => 1 } map { @{ $f->{$_} // [] } }
	    qw(queue deferred);
	my @lost = grep { !$in_spool{ $qid{$_} } } sort { $a <=> $b }
	    keys %qid;
	ok(!@lost, "down: each acknowledged ID is a file in queue/ or " .
	    "deferred/") or diag('missing: ' . join(' ',
	    map { "$_=$qid{$_}" } @lost) . "\nspool: " .
	    join(' ', map { "$_: " . join(',', @{ $f->{$_} }) } sort keys %$f));
	is(scalar keys %in_spool, $N, "down: $N files in the spool");
	is(scalar @{ $f->{incoming} // [] }, 0,
	    'down: nothing left in incoming/ for acknowledged messages');

	$t->start_smtp_sink;
	$t->start_posternd;	# same configuration file
	my $seen;
	poll_until(sub {
		$seen = sink_subjects('DOWN');
		return keys(%$seen) >= $N;
	}, 30);
	my @missing = grep { !$seen->{$_} } 1 .. $N;
	ok(!@missing, "down: all $N messages arrived after the restart") or
	    diag("missing: @missing\nlog tail:\n" . $t->log_tail(15));
	my @dup = grep { $seen->{$_} > 1 } keys %$seen;
	diag('delivered more than once (allowed, at-least-once): ' .
	    join(' ', sort { $a <=> $b } @dup)) if @dup;

	my $empty = poll_until(sub {
		my $s = $t->spool_files;
		return !@{ $s->{queue} // [] } && !@{ $s->{deferred} // [] };
	}, 10);
	ok($empty, 'down: queue/ and deferred/ are empty once delivered') or
	    diag('left: ' . join(' ', map { @$_ } values %{ $t->spool_files }));
}

# --- 2. kill -9 during a burst of concurrent senders ----------------------

{
	my $senders = 4;
	my $per = 40;
	my %kid;
	for my $s (1 .. $senders) {
		# record every 250 as soon as it is read; stop at the first
		# failure
		my $pid = run_child(sub {
			open my $rec, '>>', $t->path("acked.$s") or return 0;
			$rec->autoflush(1);
			my $c = $t->session('smtp');
			for my $i (1 .. $per) {
				my $n = $s * 1000 + $i;
				my ($r, $qid) = $c->send_simple(
				    'sender@client.example',
				    "burst$n\@other.example", "BURST-$n");
				last unless $r && $r->{code} == 250;
				print $rec "$n $qid\n";
			}
			return 1;
		});
		$kid{$pid} = $s;
	}
	my $acked = sub {
		my %got;
		for my $s (1 .. $senders) {
			open my $fh, '<', $t->path("acked.$s") or next;
			while (<$fh>) {
				$got{$1} = $2 if /^(\d+) (\S+)$/;
			}
		}
		return \%got;
	};
	# kill while the senders are busy: after a third of the messages
	my $mid = poll_until(sub { keys(%{ $acked->() }) >= 50 }, 20);
	ok($mid, 'burst: senders got at least 50 acknowledgements') or
	    diag('acked: ' . scalar keys %{ $acked->() });
	$t->kill9;
	wait_children(\%kid, 15);
	my $ack = $acked->();
	my $total = $senders * $per;
	ok(keys(%$ack) < $total, 'burst: the kill came in the middle ' .
	    '(not every message was acknowledged)') or
	    diag('acked ' . scalar(keys %$ack) . " of $total");

	$t->start_posternd;
	my $seen;
	poll_until(sub {
		$seen = sink_subjects('BURST');
		return !grep { !$seen->{$_} } keys %$ack;
	}, 30);
	my @missing = grep { !$seen->{$_} } sort { $a <=> $b } keys %$ack;
	ok(!@missing, 'burst: every message acknowledged with 250 ' .
	    'arrived (' . scalar(keys %$ack) . ')') or
	    diag('missing: ' . join(' ', map { "$_=$ack->{$_}" } @missing) .
	    "\nlog tail:\n" . $t->log_tail(15));
	my @unacked = grep { !$ack->{$_} } keys %$seen;
	diag(scalar(@unacked) . ' unacknowledged message(s) arrived too ' .
	    '(the 250 was in flight at the kill)') if @unacked;

	my $empty = poll_until(sub {
		my $s = $t->spool_files;
		return !@{ $s->{queue} // [] } && !@{ $s->{deferred} // [] };
	}, 10);
	ok($empty, 'burst: the spool drains after the restart');
	ok(!@{ $t->spool_files->{corrupt} // [] },
	    'burst: no file ended up in corrupt/') or
	    diag('corrupt: ' . join(' ', @{ $t->spool_files->{corrupt} }));
}

ok($t->is_running, 'posternd still running');
PosternTest->finish_all_ok;

done_testing;

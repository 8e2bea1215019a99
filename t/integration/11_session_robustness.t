#!/usr/bin/perl
# 11_session_robustness.t - the SMTP server session under hostile and
# unlucky clients: disconnects while pool work (AUTH check, spool commit)
# is outstanding, STARTTLS and BDAT edge cases, deep pipelining without
# reading replies, many concurrent connections, silent and non-reading
# clients past smtpd_timeout, SIGTERM during commits. Every scenario
# checks that each session ends (one "disconnect from" per "connect
# from"), that the daemon still serves, and at the end that the log has
# no sanitizer report (run with POSTERND=<a --enable-sanitizers build>).
#
# SPDX-License-Identifier: ISC

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Time::HiRes qw(time sleep);
use Errno qw(EAGAIN EWOULDBLOCK EINPROGRESS);
use Fcntl qw(F_GETFL F_SETFL O_NONBLOCK);
use File::Find;
use IO::Select;
use IO::Socket::SSL;
use MIME::Base64 qw(encode_base64);
use Socket qw(PF_INET SOCK_STREAM SOL_SOCKET SO_RCVBUF inet_aton
    pack_sockaddr_in);
use PosternTest qw(reply_is poll_until);

my %cfg = (
	smtpd_timeout => '3s',
	smtpd_starttls_timeout => '3s',
	smtpd_data_timeout => '20s',
	smtpd_hard_error_limit => 1000,
	smtpd_client_connection_count_limit => 1000,
	smtpd_max_connections => 1000,
	worker_threads => 1,	# commits queue up: widens the SIGTERM race
);
my $timeout = 3;

# keep ASan's quarantine from looking like a session leak in the RSS checks
if (($ENV{ASAN_OPTIONS} // '') !~ /quarantine_size_mb/) {
	$ENV{ASAN_OPTIONS} = join(':', grep { $_ ne '' }
	    $ENV{ASAN_OPTIONS} // '', 'quarantine_size_mb=8');
}

my $t = PosternTest->new;
$t->start_posternd(config => \%cfg);
my $alice = $PosternTest::USERS{alice};

# ---- helpers ----------------------------------------------------------------

# quiet_mark - a log mark taken once the log has been still for 0.3 s,
# so that the ends of earlier sessions are not counted after it
sub quiet_mark {
	my ($last, $since) = (-1, time);
	my $deadline = time + 5;
	while (time < $deadline) {
		my $m = $t->log_mark;
		if ($m != $last) {
			($last, $since) = ($m, time);
		} elsif (time - $since >= 0.3) {
			last;
		}
		sleep 0.05;
	}
	return $t->log_mark;
}

# counts of session starts and ends in the log since MARK
sub session_counts {
	my ($mark) = @_;
	my @l = $t->log_lines($mark);
	my $in = grep { /\]: connect from / } @l;
	my $out = grep { /\]: disconnect from / } @l;
	return ($in, $out);
}

# every session started since MARK ends within TIMEOUT seconds
sub sessions_end {
	my ($mark, $secs, $name) = @_;
	my ($in, $out);
	my $ok = poll_until(sub {
		($in, $out) = session_counts($mark);
		return $in > 0 && $in == $out;
	}, $secs, 0.1);
	ok($ok, "$name: every session ended") or diag(
	    "  got: $in connect, $out disconnect lines\n" .
	    " want: as many disconnects as connects within $secs s\n" .
	    "log tail:\n" . $t->log_tail(6));
	return $ok;
}

sub rss_kb {
	my $pid = $t->posternd_pid;
	open my $fh, '<', "/proc/$pid/status" or return 0;
	while (<$fh>) {
		return $1 if /^VmRSS:\s+(\d+)/;
	}
	return 0;
}

# raw_socket(PORT, RCVBUF) - a plain TCP socket with a small receive
# buffer, so that a client that never reads fills up quickly
sub raw_socket {
	my ($port, $rcvbuf) = @_;
	socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
	setsockopt($s, SOL_SOCKET, SO_RCVBUF, $rcvbuf) or die "rcvbuf: $!";
	connect($s, pack_sockaddr_in($port, inet_aton('127.0.0.1')))
	    or die "connect: $!";
	return $s;
}

# pump(SOCK, CHUNK, MAX_BYTES, SECS) - write CHUNK repeatedly without
# ever reading, until MAX_BYTES are out, the peer stops taking bytes for
# a second, or SECS pass; returns the bytes written
sub pump {
	my ($s, $chunk, $max, $secs) = @_;
	my $fl = fcntl($s, F_GETFL, 0);
	fcntl($s, F_SETFL, $fl | O_NONBLOCK);
	local $SIG{PIPE} = 'IGNORE';
	my ($sent, $off) = (0, 0);
	my $deadline = time + $secs;
	my $tls = ref($s) eq 'IO::Socket::SSL';
	while ($sent < $max && time < $deadline) {
		my $n = syswrite($s, $chunk, length($chunk) - $off, $off);
		if (defined $n && $n > 0) {
			$sent += $n;
			$off = ($off + $n) % length($chunk);
			next;
		}
		last if defined $n;
		my $again = $tls ? ($SSL_ERROR == SSL_WANT_WRITE ||
		    $SSL_ERROR == SSL_WANT_READ) : ($! == EAGAIN ||
		    $! == EWOULDBLOCK);
		last unless $again;
		last unless IO::Select->new($s)->can_write(1);
	}
	fcntl($s, F_SETFL, $fl);
	return $sent;
}

# ---- disconnect while the AUTH check runs on the pool -------------------------
{
	my $mark = quiet_mark();
	for my $i (1 .. 5) {
		my $c = $t->session('smtp');
		$c->starttls;
		$c->ehlo;
		$c->send('AUTH PLAIN ' . encode_base64("\0alice\0" .
		    $alice->{password}, '') . "\r\n");
		$c->close;
	}
	# a wrong password too, which takes the failure path
	my $c = $t->session('smtp');
	$c->starttls;
	$c->ehlo;
	$c->send('AUTH PLAIN ' . encode_base64("\0alice\0wrong", '') .
	    "\r\nNOOP\r\n");
	$c->close;
	sessions_end($mark, 10, 'disconnect during AUTH check');
	$t->serves_ok('disconnect during AUTH check: daemon still serves');
}

# ---- AUTH LOGIN interrupted by a disconnect ------------------------------------
{
	my $mark = quiet_mark();
	my $c = $t->session('smtp');
	$c->starttls;
	$c->ehlo;
	reply_is($c->cmd('AUTH LOGIN'), 334, undef, 'AUTH LOGIN: 334');
	reply_is($c->cmd(encode_base64('alice', '')), 334, undef,
	    'AUTH LOGIN user: 334');
	$c->close;
	sessions_end($mark, 5, 'AUTH LOGIN interrupted');
	$t->serves_ok('AUTH LOGIN interrupted: daemon still serves');
}

# ---- disconnect right after DATA's final dot --------------------------------
{
	my $mark = quiet_mark();
	for my $i (1 .. 5) {
		my $c = $t->session('smtp');
		$c->cmd('MAIL FROM:<s@client.example>');
		$c->cmd('RCPT TO:<alice@example.test>');
		reply_is($c->cmd('DATA'), 354, undef, "dot+close $i: 354");
		$c->send("Subject: dot-close-$i\r\n\r\nbody\r\n.\r\n");
		$c->close;
	}
	sessions_end($mark, 10, 'disconnect after the final dot');
	$t->serves_ok('disconnect after the final dot: daemon still serves');
}

# ---- pipelined DATA + QUIT and immediate close ---------------------------------
{
	my $mark = quiet_mark();
	my $c = $t->session('smtp');
	$c->send("MAIL FROM:<s\@client.example>\r\nRCPT TO:<alice\@example.test>"
	    . "\r\nBDAT 7 LAST\r\nhello\r\nQUIT\r\n");
	$c->close;
	sessions_end($mark, 5, 'pipelined BDAT LAST + QUIT + close');
}

# ---- STARTTLS, then an immediate disconnect ---------------------------------
{
	my $mark = quiet_mark();
	for my $i (1 .. 3) {
		my $c = $t->session('smtp');
		reply_is($c->cmd('STARTTLS'), 220, '2.0.0', "STARTTLS $i: 220");
		$c->close;
	}
	# and with a garbage "ClientHello"
	my $c = $t->session('smtp');
	$c->cmd('STARTTLS');
	$c->send("EHLO x\r\n" x 100);
	$c->close;
	# and with a TLS session that closes right after the handshake
	$c = $t->session('smtp');
	$c->starttls;
	$c->close;
	sessions_end($mark, 5, 'STARTTLS then disconnect');
	$t->serves_ok('STARTTLS then disconnect: daemon still serves');
}

# ---- BDAT with a huge declared size, then disconnect ----------------------------
{
	my $mark = quiet_mark();
	my $c = $t->session('smtp');
	$c->cmd('MAIL FROM:<s@client.example>');
	$c->cmd('RCPT TO:<alice@example.test>');
	$c->send("BDAT 18446744073709551615 LAST\r\n" . ('x' x 65536));
	$c->close;
	# without a transaction (read and drop), then disconnect
	$c = $t->session('smtp');
	$c->send("BDAT 18446744073709551615\r\n" . ('y' x 65536));
	$c->close;
	# a size that does not fit 64 bits: out of sync, the server closes
	$c = $t->session('smtp');
	$c->cmd('MAIL FROM:<s@client.example>');
	$c->cmd('RCPT TO:<alice@example.test>');
	my $r = $c->cmd('BDAT 99999999999999999999999 LAST');
	ok($r && $r->{code} >= 500, 'BDAT size beyond 2^64: 5xx') or
	    diag('  got: ' . ($r ? $r->{last} : 'none'));
	ok($c->is_closed(5), 'BDAT size beyond 2^64: connection closed');
	sessions_end($mark, 5, 'BDAT huge size then disconnect');
	my @inc = glob($t->path('spool/incoming') . '/*');
	is(scalar @inc, 0, 'BDAT huge size: no queue file left in incoming/')
	    or diag("  got: @inc");
	$t->serves_ok('BDAT huge size: daemon still serves');
}

# ---- RSET between BDAT chunks ---------------------------------------------
{
	my $c = $t->session('smtp');
	$c->cmd('MAIL FROM:<s@client.example>');
	$c->cmd('RCPT TO:<alice@example.test>');
	$c->send("BDAT 6\r\nSubjec");
	reply_is($c->read_reply, 250, '2.0.0', 'first chunk: 250');
	reply_is($c->cmd('RSET'), 250, '2.0.0', 'RSET between chunks: 250');
	$c->send("BDAT 5 LAST\r\nt: x\n");
	reply_is($c->read_reply, 503, '5.5.1',
	    'BDAT after RSET: 503 5.5.1 (chunk read and dropped)');
	reply_is($c->cmd('NOOP'), 250, '2.0.0', 'in sync after the dropped chunk');
	$c->cmd('MAIL FROM:<s@client.example>');
	$c->cmd('RCPT TO:<alice@example.test>');
	my $body = "Subject: after-rset\r\n\r\nok\r\n";
	$c->send('BDAT ' . length($body) . " LAST\r\n$body");
	reply_is($c->read_reply, 250, '2.0.0', qr/queued as/,
	    'a new BDAT transaction after RSET is queued');
	$c->cmd('QUIT');
}

# ---- BDAT without RCPT: the sequence error, not a generic failure -------------
{
	my $c = $t->session('smtp');
	reply_is($c->cmd('MAIL FROM:<s@client.example>'), 250, '2.1.0',
	    'MAIL for BDAT without RCPT');
	$c->send("BDAT 5 LAST\r\nhello");
	reply_is($c->read_reply, 503, '5.5.1',
	    'BDAT without RCPT: 503 5.5.1 like DATA without RCPT');
	reply_is($c->cmd('NOOP'), 250, '2.0.0', 'in sync after it');
	$c->cmd('QUIT');
}

# ---- 5000 pipelined NOOPs without reading, then read them all ---------------
{
	my $c = $t->session('smtp');
	ok($c->send("NOOP\r\n" x 5000), '5000 NOOPs sent in one go');
	my ($n, $bad) = (0, undef);
	for my $i (1 .. 5000) {
		my $r = $c->read_reply(10);
		if (!$r || $r->{code} != 250) {
			$bad = $r ? $r->{last} : 'no reply';
			last;
		}
		$n++;
	}
	is($n, 5000, '5000 pipelined NOOPs: 5000 replies, all 250, in order')
	    or diag("  first bad reply: $bad");
	reply_is($c->cmd('QUIT'), 221, '2.0.0', 'QUIT after 5000 NOOPs');
}

# ---- 200 concurrent connections opening and closing -------------------------
{
	my $mark = quiet_mark();
	my @c;
	for my $i (1 .. 200) {
		push @c, PosternTest::Client->new(port => $t->port('smtp'));
	}
	my $greeted = grep { my $r = $_->read_reply(10); $r && $r->{code} == 220 } @c;
	is($greeted, 200, '200 concurrent connections greeted');
	# half quit politely, half just vanish, some mid-command
	for my $i (0 .. $#c) {
		if ($i % 3 == 0) {
			$c[$i]->send("QUIT\r\n");
		} elsif ($i % 3 == 1) {
			$c[$i]->send("EHLO x\r\nMAIL FROM:<a\@b.example>\r\nRC");
		}
		$c[$i]->close;
	}
	@c = ();
	sessions_end($mark, 15, '200 concurrent connections');
	$t->serves_ok('200 concurrent connections: daemon still serves');
}

# ---- deep pipelining without reading: memory stays bounded ------------------
# HELP answers ~105 bytes for 6: a client that never reads must not make
# the daemon buffer replies without bound.
{
	my $before = rss_kb();
	my $s = raw_socket($t->port('smtp'), 4096);
	my $sent = pump($s, "HELP\r\n" x 2048, 3 * 1024 * 1024, 20);
	sleep 1;
	my $grew = rss_kb() - $before;
	diag("plaintext: sent $sent bytes of HELP, RSS grew $grew kB");
	cmp_ok($grew, "<", 12 * 1024,
	    'plaintext pipelining without reading: RSS growth < 12 MB');
	close $s;
}
{
	my $c = $t->session('smtp');
	$c->starttls;
	ok($c->tls_ok, 'TLS for the pipelining test');
	$c->ehlo;
	my $before = rss_kb();
	my $sent = pump($c->sock, "HELP\r\n" x 2048, 3 * 1024 * 1024, 20);
	sleep 1;
	my $grew = rss_kb() - $before;
	diag("TLS: sent $sent bytes of HELP, RSS grew $grew kB");
	cmp_ok($grew, "<", 12 * 1024,
	    'STARTTLS pipelining without reading: RSS growth < 12 MB');
	$c->close;
	$t->serves_ok('pipelining without reading: daemon still serves');
}

# ---- silent and stalled clients: smtpd_timeout must end the session ---------
{
	# STARTTLS, then not a byte of handshake
	my $mark = quiet_mark();
	my $c = $t->session('smtp');
	reply_is($c->cmd('STARTTLS'), 220, '2.0.0', 'STARTTLS for the silent client');
	ok($c->is_closed($timeout + 5),
	    'silent after STARTTLS: closed after smtpd_starttls_timeout');
	$c->close;
	sessions_end($mark, 5, 'silent after STARTTLS');
}
{
	# implicit TLS, not a byte of handshake
	my $mark = quiet_mark();
	my $s = raw_socket($t->port('smtps'), 65536);
	my $closed = poll_until(sub {
		return 0 unless IO::Select->new($s)->can_read(0);
		my $n = sysread($s, my $b, 4096);
		return !defined $n || $n == 0;
	}, $timeout + 5, 0.2);
	ok($closed, 'silent smtps client: closed after the timeout');
	close $s;
	sessions_end($mark, 5, 'silent smtps client');
}
{
	# a client that fills the pipe and then neither reads nor writes
	my $mark = quiet_mark();
	my $s = raw_socket($t->port('smtp'), 4096);
	my $sent = pump($s, "HELP\r\n" x 2048, 64 * 1024 * 1024, 8);
	diag("stalled reader: sent $sent bytes");
	ok($t->wait_for_log(qr/timeout after/, $timeout + 5, $mark),
	    'stalled reader: timeout logged');
	# the socket stays open and unread: the daemon must still let go
	my ($in, $out);
	my $ended = poll_until(sub {
		($in, $out) = session_counts($mark);
		return $in > 0 && $in == $out;
	}, 2 * $timeout + 3, 0.2);
	ok($ended, 'stalled reader: session freed while the client ' .
	    'still holds the socket') or diag("  got: $in connect, $out " .
	    "disconnect lines\n want: the session ended within " .
	    (2 * $timeout + 3) . " s of the timeout");
	close $s;
	sessions_end($mark, 5, 'stalled reader after close');
	$t->serves_ok('silent and stalled clients: daemon still serves');
}

# ---- SIGTERM while commits are outstanding: no acknowledgment lost ------------
{
	my $n = 30;
	my @c;
	for my $i (1 .. $n) {
		my $c = $t->session('smtp');
		$c->cmd('MAIL FROM:<s@client.example>');
		$c->cmd('RCPT TO:<alice@example.test>');
		my $r = $c->cmd('DATA');
		next unless $r && $r->{code} == 354;
		# 512 kB each: the commit's fsync takes a while
		$c->send("Subject: term-$i-tag\r\n\r\n" .
		    (('x' x 1022 . "\r\n") x 512));
		push @c, [ $i, $c ];
	}
	is(scalar @c, $n, "$n transactions in DATA");
	my $mark = $t->log_mark;	# the sessions wait for their dot
	$_->[1]->send(".\r\n") for @c;
	# TERM once the first commit is through: the others are queued
	# behind the single worker or being fsynced
	poll_until(sub { grep { /from=<s\@client\.example>, size=/ }
	    $t->log_lines($mark) }, 5, 0.001);
	kill 'TERM', $t->posternd_pid;
	my (%reply);
	for (@c) {
		my ($i, $c) = @$_;
		my $r = $c->read_reply(15);
		$reply{$i} = $r ? $r->{code} : 0;
	}
	poll_until(sub { !$t->is_running('posternd') }, 15, 0.2);
	ok(!$t->is_running('posternd'), 'posternd exited on SIGTERM');
	# where did each message end up?
	my %stored;
	for my $dir ($t->path('spool'), $t->path('mail')) {
		next unless -d $dir;
		find({ no_chdir => 1, wanted => sub {
			return unless -f $_ && $File::Find::dir !~ m{/incoming$};
			open my $fh, '<', $_ or return;
			local $/;
			my $m = <$fh> // '';
			$stored{$1}++ while $m =~ /term-(\d+)-tag/g;
		} }, $dir);
	}
	my @acked_lost = grep { $reply{$_} == 250 && !$stored{$_} } keys %reply;
	my @stored_unacked = grep { $reply{$_} != 250 && $stored{$_} }
	    keys %reply;
	my $got250 = grep { $_ == 250 } values %reply;
	diag("SIGTERM: $got250 of " . scalar(@c) . " got 250; " .
	    scalar(keys %stored) . ' stored');
	is(scalar @acked_lost, 0, 'SIGTERM: every 250-acknowledged message ' .
	    'is in the spool') or diag("  lost: @acked_lost");
	is(scalar @stored_unacked, 0, 'SIGTERM: a message committed during ' .
	    'shutdown got its 250 (not a bare 421, which makes clients ' .
	    'send it again)') or diag('  got: ' . join(', ', map {
	    "term-$_: reply $reply{$_}" } sort { $a <=> $b } @stored_unacked)
	    . "\n want: 250 before the 421");
	$_->[1]->close for @c;
}

# ---- the sanitizers saw nothing -----------------------------------------------
# (posternd is gone already: the SIGTERM test stopped it)
$t->exit_ok;
$t->sanitizer_ok('no sanitizer report in the posternd log');

# KEEP_LOG=FILE keeps a copy of the daemon's log for a post-mortem
system('cp', $t->path('posternd.log'), $ENV{KEEP_LOG}) if $ENV{KEEP_LOG};
done_testing;

#!/usr/bin/perl
# 01_esmtp.t - RFC 5321 / ESMTP conformance of the SMTP server, from a
# client outside mynetworks: greeting, EHLO keywords per listener, every
# command's reply, sequence and syntax errors, MAIL/RCPT parameters,
# DATA and BDAT transactions, RFC 2920 pipelining, the Received header.
#
# SPDX-License-Identifier: ISC

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use PosternTest qw(reply_is);

my $t = PosternTest->new;
$t->start_posternd;

my $FROM = 'MAIL FROM:<sender@client.example>';

# --- greeting and EHLO on each listener ---------------------------------

{
	my $c = $t->client('smtp');
	reply_is($c->greeting, 220, undef, qr/relay\.example\.test/,
	    'smtp: 220 greeting names myhostname');
	my ($r, $kw) = $c->ehlo('client.example');
	reply_is($r, 250, undef, 'smtp: EHLO 250');
	like($r->{lines}[0], qr/^250-relay\.example\.test\b/,
	    'EHLO first line is 250-myhostname') if $r;
	for my $k (qw(PIPELINING 8BITMIME SMTPUTF8 ENHANCEDSTATUSCODES
	    CHUNKING DSN STARTTLS)) {
		ok(exists $kw->{$k}, "smtp: EHLO offers $k") or
		    diag('got: ' . join(' ', sort keys %$kw));
	}
	is($kw->{SIZE}, '10485760', 'smtp: SIZE 10485760');
	ok(!exists $kw->{AUTH}, 'smtp: no AUTH before TLS (tls_auth_only)');
	reply_is($c->cmd('QUIT'), 221, '2.0.0', 'QUIT 221 2.0.0');
	ok($c->is_closed(5), 'connection closed after QUIT');
}
{
	my $c = $t->session('submission', no_ehlo => 1);
	my ($r, $kw) = $c->ehlo;
	ok(exists $kw->{STARTTLS}, 'submission: EHLO offers STARTTLS');
	ok(!exists $kw->{AUTH}, 'submission: no AUTH before STARTTLS');
	is($kw->{SIZE}, '10485760', 'submission: SIZE 10485760');
}
{
	my $c = $t->session('smtps', no_ehlo => 1);
	my ($r, $kw) = $c->ehlo;
	reply_is($r, 250, undef, 'smtps: EHLO 250');
	ok(!exists $kw->{STARTTLS}, 'smtps: no STARTTLS under implicit TLS');
	my %mech = map { uc($_) => 1 } split ' ', $kw->{AUTH} // '';
	is_deeply(\%mech, { PLAIN => 1, LOGIN => 1 },
	    'smtps: AUTH PLAIN LOGIN offered') or
	    diag('got AUTH: ' . ($kw->{AUTH} // '(none)'));
	for my $k (qw(PIPELINING 8BITMIME SMTPUTF8 ENHANCEDSTATUSCODES
	    CHUNKING DSN)) {
		ok(exists $kw->{$k}, "smtps: EHLO offers $k");
	}
}

# --- simple commands ------------------------------------------------------

{
	my $c = $t->session('smtp', no_ehlo => 1);
	my $r = $c->cmd('HELO client.example');
	reply_is($r, 250, undef, 'HELO 250');
	is(scalar @{ $r->{lines} }, 1, 'HELO reply is one line') if $r;

	my @cases = (
		# [ name, command, code, ecode ]
		[ 'NOOP', 'NOOP', 250, qr/^2\.0\.\d+$/ ],
		[ 'RSET', 'RSET', 250, qr/^2\.0\.\d+$/ ],
		[ 'VRFY', 'VRFY user@example.test', 252, qr/^2\.\d\.\d+$/ ],
		[ 'HELP', 'HELP', 214, qr/^2\.0\.\d+$/ ],
		[ 'unknown command', 'FROBNICATE now', 500, '5.5.2' ],
		[ 'RCPT before MAIL', 'RCPT TO:<user@example.test>', 503,
		    '5.5.1' ],
		[ 'DATA before MAIL', 'DATA', 503, '5.5.1' ],
		[ 'BDAT before MAIL', 'BDAT 0 LAST', 503, '5.5.1' ],
		[ 'MAIL without argument', 'MAIL', 501, qr/^5\.5\.\d+$/ ],
		[ 'MAIL FROM: broken address', 'MAIL FROM:<a@b', 501,
		    qr/^5\.[15]\.\d+$/ ],
		[ 'MAIL FROM: junk', 'MAIL FROM:<not an address>', 501,
		    qr/^5\.[15]\.\d+$/ ],
		[ 'EHLO without name', 'EHLO', 501, qr/^5\.5\.\d+$/ ],
		[ 'HELO without name', 'HELO', 501, qr/^5\.5\.\d+$/ ],
		[ 'unknown MAIL parameter', "$FROM FOO=BAR", 555, '5.5.4' ],
		[ 'SIZE too big', "$FROM SIZE=99999999", 552, '5.3.4' ],
		[ 'SIZE not a number', "$FROM SIZE=big", 501,
		    qr/^5\.5\.\d+$/ ],
		[ 'BODY unknown', "$FROM BODY=9BIT", qr/^(501|555)$/,
		    qr/^5\.5\.\d+$/ ],
	);
	# one session per case: the errors must not add up to the error limit
	for my $k (@cases) {
		my ($name, $cmd, $code, $ecode) = @$k;
		my $e = $t->session('smtp');
		reply_is($e->cmd($cmd), $code, $ecode, $name);
		reply_is($e->cmd('noop'), 250, undef, "session usable after $name");
	}
}

# --- sequence within a transaction ---------------------------------------

{
	my $c = $t->session('smtp');
	reply_is($c->cmd($FROM), 250, qr/^2\.1\.0$/, 'MAIL 250 2.1.0');
	reply_is($c->cmd('MAIL FROM:<other@client.example>'), 503, '5.5.1',
	    'MAIL twice 503 5.5.1');
	reply_is($c->cmd('DATA'), qr/^(503|554)$/, qr/^5\.5\.1$/,
	    'DATA before RCPT 503 5.5.1');
	reply_is($c->cmd('RCPT TO:<user@example.test>'), 250,
	    qr/^2\.1\.5$/, 'RCPT 250 2.1.5');
	reply_is($c->cmd('RSET'), 250, undef, 'RSET');
	reply_is($c->cmd('RCPT TO:<user@example.test>'), 503, '5.5.1',
	    'RSET forgot the transaction');
	reply_is($c->cmd($FROM), 250, undef, 'MAIL after RSET');
}

# --- parameters ----------------------------------------------------------

{
	my $c = $t->session('smtp');
	my @ok = (
		[ 'BODY=8BITMIME', "$FROM BODY=8BITMIME" ],
		[ 'BODY=7BIT', "$FROM BODY=7BIT" ],
		[ 'SMTPUTF8', "MAIL FROM:<j\xc3\xbcrgen\@client.example> SMTPUTF8" ],
		[ 'RET/ENVID', "$FROM RET=HDRS ENVID=QQ314159" ],
		[ 'SIZE in range', "$FROM SIZE=1000" ],
		[ 'lower-case keywords', "mail from:<x\@client.example> " .
		    'body=8bitmime size=10' ],
		[ 'null sender', 'MAIL FROM:<>' ],
	);
	for my $k (@ok) {
		my ($name, $cmd) = @$k;
		reply_is($c->cmd($cmd), 250, undef, "MAIL $name accepted");
		$c->cmd('RSET');
	}
	$c->cmd($FROM);
	reply_is($c->cmd('RCPT TO:<user@example.test> NOTIFY=SUCCESS,FAILURE' .
	    ' ORCPT=rfc822;user@example.test'), 250, undef,
	    'RCPT NOTIFY/ORCPT accepted');
	reply_is($c->cmd('RCPT TO:<user2@example.test> NOTIFY=NEVER'), 250,
	    undef, 'RCPT NOTIFY=NEVER accepted');
	reply_is($c->cmd('RCPT TO:<user3@example.test> NOTIFY=NEVER,SUCCESS'),
	    501, qr/^5\.5\.\d+$/, 'NOTIFY=NEVER combined is a syntax error');
	reply_is($c->cmd('RCPT TO:<user3@example.test> FOO=BAR'), 555,
	    '5.5.4', 'unknown RCPT parameter 555 5.5.4');
}

# --- a complete DATA transaction, case-insensitive ----------------------

my %queued;
{
	my $c = $t->session('smtp', no_ehlo => 1);
	reply_is($c->cmd('eHlO client.example'), 250, undef, 'eHlO');
	reply_is($c->cmd('mail FROM:<sender@client.example>'), 250, undef,
	    'mail FROM:');
	reply_is($c->cmd('rcpt to:<user@example.test>'), 250, undef,
	    'rcpt to:');
	reply_is($c->cmd('DaTa'), 354, undef, 'DaTa 354');
	$c->send("Subject: data test\r\nMessage-Id: <data1\@client.example>" .
	    "\r\n\r\nDATA-BODY-MARKER\r\n.\r\n");
	my $r = $c->read_reply;
	reply_is($r, 250, '2.0.0', qr/^Ok: queued as \S+/,
	    'end of DATA: 250 2.0.0 Ok: queued as ID');
	$queued{data} = ($r && $r->{text} =~ /queued as (\S+)/)[0];
	reply_is($c->cmd('quit'), 221, undef, 'quit');
}

# --- BDAT (RFC 3030) -----------------------------------------------------

{
	my $c = $t->session('smtp');
	my $msg = "Subject: bdat one\r\n\r\nBDAT-ONE-MARKER\r\n";
	$c->cmd($FROM);
	$c->cmd('RCPT TO:<user@example.test>');
	$c->send('BDAT ' . length($msg) . " LAST\r\n$msg");
	reply_is($c->read_reply, 250, '2.0.0', qr/queued as \S+/,
	    'BDAT n LAST queues the message');

	my @chunks = ("Subject: bdat two\r\n\r\nBDAT-", "TWO-MARKER\r\n");
	$c->cmd($FROM);
	$c->cmd('RCPT TO:<user@example.test>');
	for my $ch (@chunks) {
		$c->send('BDAT ' . length($ch) . "\r\n$ch");
		reply_is($c->read_reply, 250, undef, 'BDAT chunk 250');
	}
	reply_is($c->cmd('BDAT 0 LAST'), 250, '2.0.0', qr/queued as/,
	    'BDAT 0 LAST ends the message');

	# DATA after a BDAT chunk is refused (RFC 3030 section 3)
	$c->cmd($FROM);
	$c->cmd('RCPT TO:<user@example.test>');
	$c->send("BDAT 10\r\n0123456789");
	reply_is($c->read_reply, 250, undef, 'BDAT chunk before DATA');
	reply_is($c->cmd('DATA'), 503, '5.5.1', 'DATA after BDAT 503 5.5.1');
	reply_is($c->cmd('RSET'), 250, undef, 'RSET after BDAT/DATA mix');
	reply_is($c->cmd('NOOP'), 250, undef, 'session still in sync');

	# the chunk size is unknown: replying and closing is as right as
	# replying and going on
	reply_is($c->cmd('BDAT abc'), qr/^5\d\d$/, qr/^5\.5\.\d+$/,
	    'BDAT with a bad size: 5xx 5.5.x');
}

# --- RFC 2920 pipelining --------------------------------------------------

{
	my $c = $t->session('smtp');
	$c->send("MAIL FROM:<pipe\@client.example>\r\n" .
	    "RCPT TO:<user\@example.test>\r\n" .
	    "RCPT TO:<nobody\@other.example>\r\n" .
	    "RCPT TO:<user2\@example.test>\r\n" .
	    "DATA\r\n");
	my @r = $c->replies(5);
	reply_is($r[0], 250, undef, 'pipelined MAIL answered first');
	reply_is($r[1], 250, undef, 'pipelined RCPT 1 (local) 250');
	reply_is($r[2], 554, '5.7.1', qr/Relay access denied/,
	    'pipelined RCPT 2 (relay) 554');
	reply_is($r[3], 250, undef, 'pipelined RCPT 3 (local) 250');
	reply_is($r[4], 354, undef, 'pipelined DATA 354 last');
	$c->send("Subject: pipelined\r\n\r\nPIPE-MARKER\r\n.\r\nQUIT\r\n");
	reply_is($c->read_reply, 250, '2.0.0', qr/queued as/,
	    'pipelined message queued');
	reply_is($c->read_reply, 221, undef, 'pipelined QUIT after end of data');
}

# --- delivery into the maildir and the Received header ------------------

{
	# wait for the last message queued for user: the queue may deliver
	# in any order, so wait for each marker
	$t->wait_message('user', qr/$_/, 20)
	    for qw(BDAT-ONE-MARKER BDAT-TWO-MARKER PIPE-MARKER);
	my @m = $t->wait_message('user', qr/DATA-BODY-MARKER/, 20);
	is(scalar @m, 1, 'DATA message delivered once into ' .
	    'mail/example.test/user/new/');
	my $msg = $m[0] // '';
	(my $hdr = $msg) =~ s/\r?\n\r?\n.*//s;
	$hdr =~ s/\r?\n[ \t]+/ /g;
	my ($rcvd) = $hdr =~ /^(Received: .*)$/mi;
	ok(defined $rcvd, 'Received header present') or diag($msg);
	$rcvd //= '';
	like($rcvd, qr/^Received: from client\.example\b/i,
	    'Received: from <helo>');
	like($rcvd, qr/\[127\.0\.0\.1\]/, 'Received names the client IP');
	like($rcvd, qr/\bby relay\.example\.test\b/, 'Received: by myhostname');
	like($rcvd, qr/\bwith ESMTP\b/, 'Received: with ESMTP (no TLS)');
	like($rcvd, qr/\bid \Q$queued{data}\E\b/, 'Received: id <queue id>')
	    if $queued{data};
	like($rcvd, qr/;\s*\w{3}, +\d+ \w{3} \d{4} \d\d:\d\d:\d\d [-+]\d{4}/,
	    'Received ends with an RFC 5322 date');
	like($hdr, qr/^Subject: data test$/mi, 'original headers kept');
	my $bodies = join '', $t->maildir_messages('user');
	for my $mk (qw(BDAT-ONE-MARKER BDAT-TWO-MARKER PIPE-MARKER)) {
		like($bodies, qr/$mk/, "$mk delivered");
	}
	my @u2 = $t->wait_message('user2', qr/PIPE-MARKER/, 10);
	is(scalar @u2, 1, 'pipelined message delivered to user2 too');
	unlike($bodies, qr/0123456789/, 'the aborted BDAT chunk not delivered');
}

ok($t->is_running, 'posternd still running');
PosternTest->finish_all_ok;
done_testing;

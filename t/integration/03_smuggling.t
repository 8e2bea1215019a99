#!/usr/bin/perl
# 03_smuggling.t - SMTP smuggling: end of data is CRLF.CRLF only. Every
# bare-LF / bare-CR variant of the end-of-data marker is rejected with a
# 5xx, the smuggled second transaction is never executed and nothing of
# it is delivered; dot-stuffing is undone correctly in good messages.
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

# the second transaction an attacker hides after a fake end of data
my $SMUGGLED = "MAIL FROM:<smuggler\@evil.example>\r\n" .
    "RCPT TO:<victim\@example.test>\r\n" .
    "DATA\r\n" .
    "Subject: SMUGGLED\r\n\r\nevil\r\n.\r\n";

# [ name, bytes after the outer body line, smuggled payload follows? ]
my @variants = (
	[ 'LF.LF', "\n.\n", 1 ],
	[ 'LF.CRLF', "\n.\r\n", 1 ],
	[ 'CRLF.LF', "\r\n.\n", 1 ],
	[ 'CR.CRLF', "\r.\r\n", 1 ],
	[ 'CRLF.CR', "\r\n.\r", 1 ],
	[ 'CR.CR', "\r.\r", 1 ],
	[ 'LF.CR', "\n.\r", 1 ],
	[ 'bare CR mid-line', "\rmore text\r\n", 0 ],
	[ 'bare LF mid-line', "\nmore text\r\n", 0 ],
	[ 'bare LF line ending', "\nnext line\r\n", 0 ],
);

my $n = 0;
for my $v (@variants) {
	my ($name, $sep, $smuggle) = @$v;
	$n++;
	my $c = $t->session('smtp');
	$c->cmd('MAIL FROM:<sender@client.example>');
	$c->cmd('RCPT TO:<user@example.test>');
	reply_is($c->cmd('DATA'), 354, undef, "$name: DATA 354");
	my $msg = "Subject: outer $n\r\n\r\nOUTER-$n-MARKER$sep";
	$msg .= $smuggle ? $SMUGGLED : ".\r\n";
	$c->send($msg);
	my $r = $c->read_reply(15);
	reply_is($r, qr/^5\d\d$/, qr/^5\.\d\.\d+$/,
	    "$name: message rejected with 5xx");
	# nothing more may come: no 250 for a smuggled MAIL, RCPT, end of data
	my @more;
	while (my $x = $c->read_reply(1.5)) {
		push @more, $x;
	}
	ok(!(grep { $_->{code} < 400 } @more),
	    "$name: no positive reply to anything after the reject") or
	    diag('extra replies: ' . join(' | ', map { $_->{last} } @more));
	my $q = $c->cmd('QUIT');
	ok(!$q || $q->{code} == 221, "$name: QUIT answered 221 (or closed)")
	    or diag("got: $q->{last}");
}

# a good message with dot-stuffed lines (RFC 5321 4.5.2)
{
	my $c = $t->session('smtp');
	$c->cmd('MAIL FROM:<sender@client.example>');
	$c->cmd('RCPT TO:<user@example.test>');
	my $r = $c->data("Subject: dots\r\n\r\nDOTS-MARKER\r\n" .
	    "..foo\r\n" .
	    "..\r\n" .
	    "...bar\r\n" .
	    ".. leading dot and space\r\n" .
	    "end.\r\n" .
	    "x.y\r\n" .
	    "last line\r\n");
	reply_is($r, 250, '2.0.0', qr/queued as/, 'dot-stuffed message queued');

	# barrier: a message sent after every smuggling attempt; once it is
	# delivered, anything smuggled before it would have been too
	my @m = $t->wait_message('user', qr/DOTS-MARKER/, 20);
	is(scalar @m, 1, 'dot-stuffed message delivered once');
	(my $body = $m[0] // '') =~ s/\r\n/\n/g;
	$body =~ s/^.*?\n\n//s;
	is($body, "DOTS-MARKER\n.foo\n.\n..bar\n. leading dot and space\n" .
	    "end.\nx.y\nlast line\n", 'dots unstuffed exactly once');
}

# give a queue manager that would deliver out of order a moment more
PosternTest::poll_until(sub { 0 }, 2);

{
	my @all = $t->maildir_messages('user');
	my @outer = grep { /OUTER-\d+-MARKER/ } @all;
	is(scalar @outer, 0, 'no rejected (smuggling) message delivered') or
	    diag(join "\n----\n", @outer);
	# a message of its own, not text inside a (wrongly accepted) outer one
	my @own = grep { (split /\r?\n\r?\n/, $_, 2)[0] =~ /^Subject: SMUGGLED/m }
	    @all;
	is(scalar @own, 0, 'no smuggled message of its own for user');
	my @victim = $t->maildir_messages('victim');
	is(scalar @victim, 0, 'no smuggled message for victim@example.test');
	ok(!(grep { /from=<smuggler\@evil\.example>/ } $t->log_lines),
	    'the smuggled MAIL FROM never reached a transaction (log)');
}

# the session survives a bare LF inside a header line too
{
	my $c = $t->session('smtp');
	$c->cmd('MAIL FROM:<sender@client.example>');
	$c->cmd('RCPT TO:<user@example.test>');
	$c->cmd('DATA');
	$c->send("Subject: bad\nX-Injected: yes\r\n\r\nbody\r\n.\r\n");
	reply_is($c->read_reply(15), qr/^5\d\d$/, undef,
	    'bare LF in a header line rejected');
}

ok($t->is_running, 'posternd still running');
PosternTest->finish_all_ok;
done_testing;

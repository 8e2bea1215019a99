#!/usr/bin/perl
# 04_tls_auth.t - STARTTLS and AUTH rules on each listener kind: smtp
# (STARTTLS offered, AUTH only under TLS), submission (STARTTLS before
# MAIL and AUTH), smtps (implicit TLS); AUTH PLAIN/LOGIN against
# yescrypt, bcrypt and sha512-crypt hashes and their error replies; no
# command injection through STARTTLS; TLS 1.2 minimum; garbage instead
# of a ClientHello; the Received header under TLS (ESMTPS/ESMTPSA).
#
# SPDX-License-Identifier: ISC

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use MIME::Base64 qw(encode_base64);
use PosternTest qw(reply_is free_port poll_until can_connect);

my $t = PosternTest->new;
$t->start_posternd;
my %U = %PosternTest::USERS;

# tls_session(KIND) - session, STARTTLS, handshake, EHLO again
sub tls_session {
	my ($kind, %ssl) = @_;
	my $c = $t->session($kind);
	my $r = $c->starttls(%ssl);
	die "STARTTLS on $kind: " . ($r ? $r->{last} : 'closed') . "\n"
	    unless $r && $r->{code} == 220 && $c->tls_ok;
	my ($e) = $c->ehlo;
	die "EHLO after TLS on $kind: " . ($e ? $e->{last} : 'closed') . "\n"
	    unless $e && $e->{code} == 250;
	return $c;
}

# --- smtp listener --------------------------------------------------------
{
	my $c = $t->session('smtp', no_ehlo => 1);
	my ($r, $kw) = $c->ehlo;
	ok(exists $kw->{STARTTLS}, 'smtp: STARTTLS offered');
	ok(!exists $kw->{AUTH}, 'smtp: AUTH not offered before TLS');
	reply_is($c->auth_plain('alice', $U{alice}{password}),
	    qr/^(503|530|538)$/, qr/^5\.(5\.1|7\.0|7\.11)$/,
	    'smtp: AUTH before TLS refused');
	reply_is($c->starttls, 220, qr/^2\.0\.0$/, 'smtp: STARTTLS 220');
	ok($c->tls_ok, 'smtp: TLS handshake');
	reply_is($c->cmd('MAIL FROM:<sender@client.example>'), 503, '5.5.1',
	    'smtp: MAIL before EHLO after TLS: state was reset');
	($r, $kw) = $c->ehlo;
	reply_is($r, 250, undef, 'smtp: EHLO after TLS');
	ok(!exists $kw->{STARTTLS}, 'smtp: no STARTTLS once TLS is on');
	my %mech = map { uc($_) => 1 } split ' ', $kw->{AUTH} // '';
	is_deeply(\%mech, { PLAIN => 1, LOGIN => 1 },
	    'smtp: AUTH PLAIN LOGIN after TLS');
	reply_is($c->cmd('STARTTLS'), qr/^(503|554)$/, '5.5.1',
	    'smtp: second STARTTLS refused');
	reply_is($c->auth_plain('carol', $U{carol}{password}), 235, '2.7.0',
	    'smtp: AUTH PLAIN after TLS');
}

# --- submission: STARTTLS first -------------------------------------------
{
	my $c = $t->session('submission');
	reply_is($c->cmd('MAIL FROM:<sender@client.example>'), 530, '5.7.0',
	    qr/Must issue a STARTTLS command first/i,
	    'submission: MAIL before STARTTLS 530 5.7.0');
	reply_is($c->auth_plain('alice', $U{alice}{password}),
	    qr/^(530|538)$/, qr/^5\.7\.(0|11)$/,
	    'submission: AUTH before STARTTLS 530/538');
	reply_is($c->cmd('RCPT TO:<user@example.test>'), qr/^(503|530)$/,
	    qr/^5\.(5\.1|7\.0)$/, 'submission: RCPT before STARTTLS refused');
}

# --- AUTH PLAIN and LOGIN for every hash scheme -------------------------
for my $user (sort keys %U) {
	for my $mech (qw(PLAIN LOGIN)) {
		my $c = tls_session('submission');
		my $m = "auth_" . lc $mech;
		reply_is($c->$m($user, $U{$user}{password}), 235, '2.7.0',
		    "AUTH $mech $user ($U{$user}{method}) 235 2.7.0");
	}
}

{
	my $c = tls_session('submission');
	reply_is($c->auth_plain('alice', 'wrong'), 535, '5.7.8',
	    'AUTH PLAIN wrong password 535 5.7.8');
	$c = tls_session('submission');
	reply_is($c->auth_login('bob', 'wrong'), 535, '5.7.8',
	    'AUTH LOGIN wrong password 535 5.7.8');
	$c = tls_session('submission');
	reply_is($c->auth_plain('mallory', 'x'), 535, '5.7.8',
	    'AUTH unknown user 535 5.7.8');
	$c = tls_session('submission');
	reply_is($c->auth_plain('alice', "$U{alice}{password}x"), 535, '5.7.8',
	    'AUTH password with a suffix 535');

	$c = tls_session('submission');
	reply_is($c->cmd('AUTH PLAIN !!!not-base64!!!'), 501, '5.5.2',
	    'AUTH PLAIN bad base64 501 5.5.2');
	reply_is($c->cmd('AUTH LOGIN'), 334, undef, 'AUTH LOGIN 334');
	reply_is($c->cmd('%%%'), 501, '5.5.2', 'AUTH LOGIN bad base64 501');
	reply_is($c->cmd('AUTH PLAIN ' . encode_base64('no-nuls', '')),
	    qr/^(501|535)$/, qr/^5\.(5\.2|7\.8)$/,
	    'AUTH PLAIN without NULs refused');
	reply_is($c->cmd('AUTH CRAM-MD5'), 504, '5.5.4',
	    'AUTH unknown mechanism 504 5.5.4');

	$c = tls_session('submission');
	reply_is($c->cmd('AUTH PLAIN'), 334, undef, 'AUTH PLAIN: 334 prompt');
	reply_is($c->cmd('*'), 501, undef, 'AUTH PLAIN cancelled by * 501');
	reply_is($c->cmd('AUTH LOGIN'), 334, undef, 'AUTH LOGIN again');
	reply_is($c->cmd('*'), 501, undef, 'AUTH LOGIN cancelled by * 501');
	reply_is($c->cmd('NOOP'), 250, undef, 'session in sync after cancel');

	$c = tls_session('submission');
	reply_is($c->auth_plain('alice', $U{alice}{password}), 235, '2.7.0',
	    'AUTH once');
	reply_is($c->auth_plain('alice', $U{alice}{password}), 503, '5.5.1',
	    'AUTH twice 503 5.5.1');
}

# --- smtps: implicit TLS ------------------------------------------------
{
	my $c = $t->client('smtps');
	ok($c->is_tls, 'smtps: TLS before any SMTP');
	reply_is($c->greeting, 220, undef, 'smtps: 220 greeting under TLS');
	my ($r, $kw) = $c->ehlo;
	reply_is($r, 250, undef, 'smtps: EHLO');
	ok(!exists $kw->{STARTTLS}, 'smtps: no STARTTLS');
	ok(exists $kw->{AUTH}, 'smtps: AUTH offered');
	reply_is($c->cmd('STARTTLS'), qr/^(502|503|554)$/, undef,
	    'smtps: STARTTLS refused');
}

# --- STARTTLS with pipelined data behind it (CVE-2011-0411 class) -------
{
	my $c = $t->session('smtp');
	$c->send("STARTTLS\r\nMAIL FROM:<inject\@evil.example>\r\n");
	my $r = $c->read_reply;
	if ($r && $r->{code} == 220) {
		ok($c->tls_handshake, 'injection: handshake after 220');
		my ($e) = $c->ehlo;
		reply_is($e, 250, undef, qr/relay\.example\.test/,
		    'injection: first reply under TLS is the EHLO reply');
		reply_is($c->cmd('MAIL FROM:<real@client.example>'), 250, undef,
		    'injection: the pipelined MAIL was not executed');
	} elsif ($r && $r->{code} >= 500) {
		pass("injection: pipelined STARTTLS refused: $r->{last}");
		my @more;
		while (my $x = $c->read_reply(1)) { push @more, $x }
		ok(!(grep { $_->{code} == 250 } @more),
		    'injection: no 250 for the injected MAIL');
		my $m = $c->cmd('MAIL FROM:<real@client.example>');
		ok($m && $m->{code} == 250,
		    'injection: no transaction left open') or
		    diag('got: ' . ($m ? $m->{last} : 'closed'));
	} else {
		ok($c->is_closed(1), 'injection: connection dropped');
	}
	my $again = $t->session('smtp');
	ok($again, 'server serves after the injection attempt');
}

# --- TLS protocol versions ------------------------------------------------
my $LEGACY = { SSL_cipher_list => 'DEFAULT:@SECLEVEL=0' };
{
	# control: this client can speak TLS 1.1 at all
	my $port = free_port();
	$t->spawn('s_server', 'openssl', 's_server', '-quiet',
	    '-accept', "127.0.0.1:$port", '-cert', $t->path('cert.pem'),
	    '-key', $t->path('key.pem'), '-tls1_1',
	    '-cipher', 'DEFAULT:@SECLEVEL=0');
	poll_until(sub { can_connect('127.0.0.1', $port) }, 10);
	my $ctl = eval { PosternTest::Client->new(port => $port, tls => 1,
	    ssl => { SSL_version => 'TLSv1_1', %$LEGACY }) };
	is($ctl && $ctl->tls_version, 'TLSv1_1',
	    'control: the test client speaks TLS 1.1 to openssl s_server');
	$ctl->close if $ctl;
	$t->stop('s_server');

	my $old = eval { PosternTest::Client->new(port => $t->port('smtps'),
	    tls => 1, ssl => { SSL_version => 'TLSv1_1', %$LEGACY }) };
	ok(!$old, 'smtps: TLS 1.1 refused');
	for my $v (qw(TLSv1_2 TLSv1_3)) {
		my $c = eval { PosternTest::Client->new(
		    port => $t->port('smtps'), tls => 1,
		    ssl => { SSL_version => $v }) };
		is($c && $c->tls_version, $v, "smtps: $v accepted");
		reply_is($c && $c->greeting, 220, undef, "smtps: 220 over $v");
	}
	my $c = $t->session('smtp');
	$c->starttls(SSL_version => 'TLSv1_1', %$LEGACY);
	ok(!$c->tls_ok, 'STARTTLS: TLS 1.1 refused');
	$c = $t->session('smtp');
	$c->starttls(SSL_version => 'TLSv1_2');
	ok($c->tls_ok, 'STARTTLS: TLS 1.2 accepted');
}

# --- garbage instead of a ClientHello -------------------------------------
{
	my $c = PosternTest::Client->new(port => $t->port('smtps'));
	$c->send("EHLO this is not TLS\r\n" x 20);
	ok($c->is_closed(10), 'smtps: garbage ClientHello: disconnected');
	$c = $t->session('smtp');
	reply_is($c->cmd('STARTTLS'), 220, undef, 'STARTTLS before garbage');
	$c->send("\x16\x03\x01\x00\x05garbage-garbage\r\n" . ("\0" x 512));
	ok($c->is_closed(10), 'STARTTLS: garbage handshake: disconnected');
	my $s = eval { $t->session('smtps') };
	ok($s, 'smtps still serves after garbage');
	$s = eval { $t->session('smtp') };
	ok($s, 'smtp still serves after garbage');
}

# --- Received: ESMTPS / ESMTPSA with the TLS version and cipher --------
my %sent;
{
	my $c = tls_session('smtp');
	$sent{ESMTPS} = [ $c->tls_version, $c->tls_cipher ];
	$c->cmd('MAIL FROM:<sender@client.example>');
	$c->cmd('RCPT TO:<tlsuser@example.test>');
	reply_is($c->data("Subject: tls\r\n\r\nMARK-ESMTPS\r\n"), 250, '2.0.0',
	    'message over STARTTLS queued');

	$c = tls_session('submission', SSL_version => 'TLSv1_2');
	$c->auth_login('bob', $U{bob}{password});
	$sent{ESMTPSA} = [ $c->tls_version, $c->tls_cipher ];
	$c->cmd('MAIL FROM:<bob@example.test>');
	$c->cmd('RCPT TO:<tlsuser@example.test>');
	reply_is($c->data("Subject: tls+auth\r\n\r\nMARK-ESMTPSA\r\n"), 250,
	    '2.0.0', 'authenticated message over TLS 1.2 queued');
}
{
	$t->wait_message('tlsuser', qr/MARK-$_\b/, 20) for qw(ESMTPS ESMTPSA);
	my @m = $t->maildir_messages('tlsuser');
	for my $with (qw(ESMTPS ESMTPSA)) {
		my ($msg) = grep { /MARK-$with\b/ } @m;
		ok($msg, "$with message delivered") or next;
		(my $hdr = $msg) =~ s/\r?\n\r?\n.*//s;
		$hdr =~ s/\r?\n[ \t]+/ /g;
		my ($rcvd) = $hdr =~ /^(Received: .*)$/mi;
		$rcvd //= '';
		like($rcvd, qr/\bwith $with\b/, "Received: with $with");
		my ($ver, $cipher) = @{ $sent{$with} };
		(my $v = $ver // 'none') =~ s/_/./;
		like($rcvd, qr/\Q$v\E/, "Received names $v");
		like($rcvd, qr/\Q$cipher\E/, "Received names cipher $cipher")
		    if $cipher;
	}
	ok($t->wait_for_log(qr/sasl_username=bob\b/, 5),
	    'log: sasl_username=bob');
}

ok($t->is_running, 'posternd still running');
PosternTest->finish_all_ok;
done_testing;

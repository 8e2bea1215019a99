#!/usr/bin/perl
# 23_milters.t - the "milters" filter (filters/milter*.c): posternd calling
# external milters from its chain.
#
# - the real OpenDKIM milter in signing mode, over TCP and over a unix
#   socket: the message reaches the sink signed, and the signature
#   verifies with dkimpy and Mail::DKIM; then "relay, milters, dkim":
#   OpenDKIM as milter and posternd's own signer after it (another
#   selector), both signatures verify;
# - a scripted stand-in (t/helpers/bad_milter.pl): the macros it got
#   ({daemon_addr} and {daemon_port} too; a setsymlist list honoured),
#   every modification, every reply at each stage, two milters in order;
# - the fault battery: unreachable, never negotiating, hanging at RCPT
#   and at end of message, closing mid-message, garbage, an oversized
#   packet, a shutdown reply; for each, with milter_default_action
#   tempfail, accept and reject (and the per-milter brace syntax), the
#   documented reply, a log line naming the milter, the daemon still
#   serving, nothing lost.
#
# SPDX-License-Identifier: ISC

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use MIME::Base64 qw(encode_base64);
use PosternTest qw(reply_is poll_until free_port like_diag can_connect);

my $HELPERS = "$FindBin::Bin/../helpers";
my $PYTHON = '/usr/bin/python3';

sub slurp {
	my ($f) = @_;
	open my $fh, '<', $f or return '';
	local $/;
	return scalar <$fh>;
}

sub write_file {
	my ($f, $text) = @_;
	open my $fh, '>', $f or die "$f: $!";
	print $fh $text;
	close $fh or die "$f: $!";
}

my $t = PosternTest->new(users => 1);
$t->start_smtp_sink;
my $n = 0;

# milter(MODE) - a stand-in on a new port: (port, its log file)
sub milter {
	my ($mode) = @_;
	my $port = free_port();
	my $log = $t->path('milter' . ++$n . '.log');
	$t->spawn("milter$n", $^X, "$HELPERS/bad_milter.pl", $port, $mode,
	    $log);
	poll_until(sub { can_connect('127.0.0.1', $port) }, 10)
	    or BAIL_OUT("bad_milter $mode did not start");
	return ($port, $log);
}

# restart(MILTERS, %CONFIG) - posternd with these smtpd_milters
sub restart {
	my ($milters, %cfg) = @_;
	$t->stop if $t->is_running;
	$t->start_posternd(config => {
		%PosternTest::QUICK_DELIVERY,
		smtpd_filters => 'relay, milters',
		smtpd_milters => $milters,
		milter_connect_timeout => '2s',
		milter_command_timeout => '2s',
		milter_content_timeout => '2s',
		%cfg,
	});
}

sub message {
	my ($id, %o) = @_;
	return join '', map { "$_\r\n" } 'From: <alice@example.org>',
	    'To: <bob@example.net>', "Subject: $id", 'X-Drop: drop me',
	    "Message-ID: <$id\@client.example>",
	    'Date: Mon, 1 Jan 2024 00:00:00 +0000', '', "body of $id";
}

# send_one(ID, RCPTS) - a session with one transaction: the reply that
# ended it and the queue ID
sub send_one {
	my ($id, $rcpts, %o) = @_;
	my $c = $t->session('smtp');
	if ($o{auth}) {
		my $r = $c->auth_plain('alice', 'alice-secret-1');
		# AUTH may need TLS: try it if offered
		if (!$r || $r->{code} != 235) {
			$c->starttls;
			$c->ehlo;
			$c->auth_plain('alice', 'alice-secret-1');
		}
	}
	my ($r, $qid) = $c->transaction('alice@example.org',
	    $rcpts // 'bob@example.net', message($id));
	$c->cmd('QUIT');
	$c->close;
	return ($r, $qid);
}

sub at_sink {
	my ($id, $timeout) = @_;
	my ($m) = $t->wait_sink(qr/^Message-ID: <\Q$id\E\@/m, $timeout // 10);
	return $m;
}

# rsa_key(FILE) - a new RSA-2048 key in FILE; its DNS TXT record as the
# quoted 250-byte strings dnsmasq's txt-record wants
sub rsa_key {
	my ($key) = @_;
	system('openssl', 'genpkey', '-quiet', '-algorithm', 'RSA',
	    '-pkeyopt', 'rsa_keygen_bits:2048', '-out', $key) == 0 or die;
	chmod 0600, $key;
	my $der = qx{openssl pkey -in '$key' -pubout -outform DER};
	my @parts = ('v=DKIM1; k=rsa; p=' . encode_base64($der, '')) =~
	    /(.{1,250})/g;
	return join(',', map { qq("$_") } @parts);
}

# verify_dkim(MESSAGE AT THE SINK, NAME, DNS PORT) - the message as sent
# (the sink's own lines dropped) through dkimpy and Mail::DKIM: their
# outputs, one line per signature
sub verify_dkim {
	my ($m, $name, $dns) = @_;
	$m //= '';
	$m =~ s/\A.*?^Received:[^\n]*(?:\n[ \t][^\n]*)*?\(smtp-sink\)
	    [^\n]*(?:\n[ \t][^\n]*)*\n//msx;
	$m =~ s/\n\n\z/\n/;
	$m =~ s/\r?\n/\r\n/g;
	my $f = $t->path("$name.eml");
	write_file($f, $m);
	my $py = qx{'$PYTHON' '$HELPERS/dkim_verify.py' --dns 127.0.0.1:$dns '$f' 2>&1};
	my $pl = qx{'$^X' '$HELPERS/dkim_verify.pl' --dns 127.0.0.1:$dns '$f' 2>&1};
	return ($py, $pl);
}

# ---- the real OpenDKIM ----------------------------------------------------
SKIP: {
	skip 'opendkim, dkimpy or Mail::DKIM missing', 16
	    unless -x '/usr/sbin/opendkim' &&
	    system($PYTHON, '-c', 'import dkim, dns.query') == 0 &&
	    eval { require Mail::DKIM::Verifier; 1 };
	my $key = $t->path('rsa.pem');
	my $txt = rsa_key($key);
	# posternd's own dkim filter signs with another key and selector
	my $nkey = $t->path('native.pem');
	my $ntxt = rsa_key($nkey);
	if ($> == 0) {
		my (undef, undef, $uid, $gid) =
		    getpwnam($ENV{POSTERN_TEST_USER} // 'nobody');
		chown $uid, $gid, $nkey if defined $uid;
	}
	my $dns = $t->start_dnsmasq('local=/example.org/',
	    "txt-record=rsasel._domainkey.example.org,$txt",
	    "txt-record=natsel._domainkey.example.org,$ntxt");
	my $od_port = free_port();
	my $sock = $t->path('opendkim.sock');
	for my $kind ([ 'inet', "inet:$od_port\@127.0.0.1",
	    "inet:127.0.0.1:$od_port" ], [ 'unix', "local:$sock",
	    "unix:$sock" ]) {
		my ($name, $listen, $spec) = @$kind;
		my $conf = $t->path("opendkim-$name.conf");
		write_file($conf, join("\n", 'Mode s', "Socket $listen",
		    "KeyFile $key", 'Selector rsasel', 'Domain example.org',
		    'RequireSafeKeys false', 'Background no', 'Syslog no',
		    'UMask 000', ''));
		$t->spawn("opendkim-$name", '/usr/sbin/opendkim', '-f', '-x',
		    $conf);
		poll_until(sub { $name eq 'inet' ?
		    can_connect('127.0.0.1', $od_port) : -S $sock }, 15);
		restart($spec, milter_content_timeout => '20s',
		    milter_command_timeout => '20s');
		my ($r) = send_one("od-$name");
		reply_is($r, 250, '2.0.0', "opendkim $name: accepted");
		my $m = at_sink("od-$name");
		like_diag($m, qr/^DKIM-Signature: v=1; a=rsa-sha256;.*d=example\.org; s=rsasel;/m,
		    "opendkim $name: signed", $m // '');
		my ($py, $pl) = verify_dkim($m, "od-$name", $dns);
		like_diag($py, qr/^pass d=example\.org/m,
		    "opendkim $name: dkimpy verifies", $py);
		like_diag($pl, qr/^pass d=example\.org/m,
		    "opendkim $name: Mail::DKIM verifies", $pl);
		$t->stop("opendkim-$name") unless $name eq 'inet';
	}

	# OpenDKIM as a milter, then posternd's own dkim after it: two
	# signatures (selectors rsasel and natsel), both verify; the native
	# signer signs the message as the milter left it
	write_file($t->path('signing'),
	    "# OpenDKIM SigningTable\n*\@example.org\tnative\n");
	write_file($t->path('keytable'),
	    "# OpenDKIM KeyTable\nnative\texample.org:natsel:$nkey\n");
	restart("inet:127.0.0.1:$od_port",
	    smtpd_filters => 'relay, milters, dkim',
	    dkim_signing_table => 'texthash:' . $t->path('signing'),
	    dkim_key_table => 'texthash:' . $t->path('keytable'),
	    dns_resolver => "127.0.0.1\@$dns",
	    milter_content_timeout => '20s', milter_command_timeout => '20s');
	my ($r) = send_one('od-native');
	reply_is($r, 250, '2.0.0', 'milter and native dkim: accepted');
	my $m = at_sink('od-native') // '';
	(my $unfolded = $m) =~ s/\r?\n[ \t]+/ /g;
	my @sigs = $unfolded =~ /^DKIM-Signature:.*?\bs=(\w+);/mg;
	is_deeply([ sort @sigs ], [ 'natsel', 'rsasel' ],
	    'milter and native dkim: two signatures, one per signer')
	    or diag($m);
	my ($py, $pl) = verify_dkim($m, 'od-native', $dns);
	for my $sel (qw(rsasel natsel)) {
		like_diag($py, qr/^pass d=example\.org s=$sel /m,
		    "milter and native dkim: dkimpy verifies s=$sel", $py);
		like_diag($pl, qr/^pass d=example\.org s=$sel /m,
		    "milter and native dkim: Mail::DKIM verifies s=$sel", $pl);
	}
	unlike($py . $pl, qr/^(?:fail|unsupported)/m,
	    'milter and native dkim: no signature fails') or diag($py . $pl);
	# posternd signs after the milter: its signature is the upper one
	like_diag($unfolded,
	    qr/^DKIM-Signature:[^\n]*\bs=natsel;.*^DKIM-Signature:[^\n]*\bs=rsasel;/ms,
	    'milter and native dkim: the native signature above the milter\'s',
	    $m);
	$t->stop('opendkim-inet');
}

# ---- macros and setsymlist ------------------------------------------------
{
	my ($port, $log) = milter('record');
	restart("inet:127.0.0.1:$port",
	    milter_connect_macros =>
	    'j {daemon_name} {daemon_addr} {daemon_port} v _ {client_addr}');
	my ($r, $qid) = send_one('macros', undef, auth => 1);
	reply_is($r, 250, '2.0.0', 'record: accepted');
	ok(at_sink('macros'), 'record: delivered');
	my $got = slurp($log);
	like_diag($got, qr/^macro C .*\{client_addr\}=127\.0\.0\.1/m,
	    'macros: {client_addr} at connect', $got);
	like_diag($got, qr/^macro C .*\bj=\S+/m, 'macros: j at connect', $got);
	my $smtp_port = $t->port('smtp');
	like_diag($got, qr/^macro C .*\{daemon_addr\}=127\.0\.0\.1(?:\s|$)/m,
	    'macros: {daemon_addr} (the local address) at connect', $got);
	like_diag($got, qr/^macro C .*\{daemon_port\}=$smtp_port(?:\s|$)/m,
	    'macros: {daemon_port} (the listener\'s port) at connect', $got);
	like_diag($got, qr/^macro M .*\{auth_authen\}=alice/m,
	    'macros: {auth_authen} at MAIL', $got);
	like_diag($got, qr/^macro M .*\{mail_addr\}=alice\@example\.org/m,
	    'macros: {mail_addr} at MAIL', $got);
	like_diag($got, qr/^macro R .*\{rcpt_addr\}=bob\@example\.net/m,
	    'macros: {rcpt_addr} at RCPT', $got);
	like_diag($got, qr/^macro R (?=.*\bj=)/m,
	    'setsymlist: j sent at RCPT as the milter asked', $got);
	like_diag($got, qr/^macro E i=\Q$qid\E/m,
	    'macros: i (the queue ID) at end of message', $got) if $qid;
	like_diag($got, qr/^cmd L X-Drop\\x00/m, 'headers sent', $got);
	like_diag($got, qr/^cmd B body of macros/m, 'body sent', $got);
}

# ---- every modification ---------------------------------------------------
{
	my ($port) = milter('edits@E');
	restart("inet:127.0.0.1:$port");
	my ($r) = send_one('edits', [ 'bob@example.net', 'gone@example.net' ]);
	reply_is($r, 250, '2.0.0', 'edits: accepted');
	my $m = at_sink('edits') // '';
	like_diag($m, qr/^X-Added: added value/m, 'edits: addheader', $m);
	like_diag($m, qr/^X-Inserted: inserted value/m, 'edits: insheader',
	    $m);
	like_diag($m, qr/^Subject: changed subject/m, 'edits: chgheader', $m);
	unlike($m, qr/^X-Drop:/m, 'edits: chgheader with no value deletes');
	like_diag($m, qr/^replaced body/m, 'edits: replbody', $m);
	my $d = $m =~ /^X-Mail-Args: (.*)$/m ? $1 : '';
	my @rcpt = $m =~ /^X-Rcpt-Args: (.*)$/mg;
	my $all = join ' ', $m =~ /^(?:X-Rcpt-Args|RCPT|X-Rcpt[^:]*): (.*)$/mg;
	like_diag($m, qr/newfrom\@example\.org/, 'edits: chgfrom', $m);
	like_diag($m, qr/added\@example\.net/, 'edits: addrcpt', $m);
	like_diag($m, qr/addedpar\@example\.net/, 'edits: addrcpt_par', $m);
	unlike($m, qr/gone\@example\.net/, 'edits: delrcpt');
}

# ---- replies --------------------------------------------------------------
for my $case (
    [ 'reject@C', 'MAIL', 550, '5.7.1', qr/Command rejected/ ],
    [ 'reject@H', 'EHLO', 550, '5.7.1', qr/Command rejected/ ],
    [ 'reject@M', 'MAIL', 550, '5.7.1', qr/Command rejected/ ],
    [ 'reject@R', 'RCPT', 550, '5.7.1', qr/Command rejected/ ],
    [ 'reject@E', 'EOM', 550, '5.7.1', qr/Command rejected/ ],
    [ 'tempfail@M', 'MAIL', 451, '4.7.1', qr/try again later/ ],
    [ 'tempfail@E', 'EOM', 451, '4.7.1', qr/try again later/ ],
    [ 'replycode@R', 'RCPT', 550, '5.7.1', qr/custom text/ ],
    [ 'replycode4@E', 'EOM', 451, '4.7.1', qr/later please/ ],
) {
	my ($mode, $where, $code, $ecode, $re) = @$case;
	my ($port) = milter($mode);
	restart("inet:127.0.0.1:$port");
	my $c = $t->client('smtp');
	$c->greeting;
	my ($r) = $c->ehlo;
	if ($where ne 'EHLO') {
		$r = $c->cmd('MAIL FROM:<alice@example.org>');
		$r = $c->cmd('RCPT TO:<bob@example.net>')
		    if $where ne 'MAIL';
		$r = $c->data(message("reply-$mode")) if $where eq 'EOM';
	}
	reply_is($r, $code, $ecode, $re, "$mode: $code at $where");
	$c->cmd('QUIT');
	$c->close;
	# a milter that refuses every HELO refuses the probe's too
	$t->serves_ok("$mode: still serving") if $where ne 'EHLO';
}

# discard, quarantine, skip, progress, accept
{
	my ($port) = milter('discard@E');
	restart("inet:127.0.0.1:$port");
	my ($r) = send_one('discard');
	reply_is($r, 250, '2.0.0', 'discard: 250 to the client');
	ok($t->wait_for_log(qr/milter inet:127\.0\.0\.1:$port: discard/),
	    'discard: logged');
	ok(!at_sink('discard', 3), 'discard: nothing at the sink');

	($port) = milter('quarantine@E');
	restart("inet:127.0.0.1:$port");
	my $qid;
	($r, $qid) = send_one('quarantine');
	reply_is($r, 250, '2.0.0', 'quarantine: accepted');
	ok(poll_until(sub { grep { $_ eq ($qid // '') }
	    @{ $t->spool_files->{hold} // [] } }, 10), 'quarantine: held')
	    or diag(explain($t->spool_files));

	for my $mode ('skip@B', 'progress@E', 'accept@M', 'slowok@R') {
		($port) = milter($mode);
		my ($port2, $log2) = milter('record');
		restart("inet:127.0.0.1:$port, inet:127.0.0.1:$port2");
		($r) = send_one("ok-$mode");
		reply_is($r, 250, '2.0.0', "$mode: accepted");
		ok(at_sink("ok-$mode"), "$mode: delivered");
		if ($mode eq 'accept@M') {
			($r) = send_one("ok2-$mode");
			ok(at_sink("ok2-$mode"), "$mode: next message too");
		}
	}
}

# ---- two milters in order: the second sees the first's edit ---------------
{
	my ($p1) = milter('addhdr@E');
	my ($p2, $log2) = milter('record');
	restart("inet:127.0.0.1:$p1, inet:127.0.0.1:$p2");
	my ($r) = send_one('two');
	reply_is($r, 250, '2.0.0', 'two milters: accepted');
	my $m = at_sink('two') // '';
	like_diag($m, qr/^X-First-Milter: yes/m, 'two milters: edit applied',
	    $m);
	like_diag(slurp($log2), qr/^cmd L X-First-Milter\\x00/m,
	    'two milters: the second saw the first\'s header', slurp($log2));
}

# ---- faults ---------------------------------------------------------------
my $dead = free_port();
my @faults = grep { !$ENV{MILTER_FAULT} || $_->[0] eq $ENV{MILTER_FAULT} } (
    [ 'unreachable', sub { $dead }, 'MAIL', qr/Connection refused/ ],
    [ 'nonego', sub { (milter('nonego'))[0] }, 'MAIL', qr/timeout/ ],
    [ 'hang@R', sub { (milter('hang@R'))[0] }, 'RCPT', qr/timeout/ ],
    [ 'hang@E', sub { (milter('hang@E'))[0] }, 'EOM', qr/timeout/ ],
    [ 'close@L', sub { (milter('close@L'))[0] }, 'EOM', qr/closed/ ],
    [ 'garbage@M', sub { (milter('garbage@M'))[0] }, 'MAIL', qr/./ ],
    [ 'oversized@R', sub { (milter('oversized@R'))[0] }, 'RCPT', qr/./ ],
    [ 'shutdown@M', sub { (milter('shutdown@M'))[0] }, 'MAIL',
      qr/shutdown/ ],
);
for my $f (@faults) {
	my ($name, $make, $where, $why) = @$f;
	for my $act ('tempfail', 'accept', 'reject', 'brace-accept') {
		my $port = $make->();
		my $spec = "inet:127.0.0.1:$port";
		my %cfg = (milter_default_action => $act);
		if ($act eq 'brace-accept') {
			$spec = "{ $spec, command_timeout=1s, " .
			    'content_timeout=1s, default_action=accept }';
			%cfg = (milter_default_action => 'reject');
		}
		restart($spec, %cfg);
		my $mark = $t->log_mark;
		my $id = "fault-$name-$act";
		my $c = $t->session('smtp');
		my ($r, $qid) = $c->transaction('alice@example.org',
		    'bob@example.net', message($id));
		$c->cmd('QUIT');
		$c->close;
		if ($act =~ /accept/) {
			reply_is($r, 250, '2.0.0', "$name/$act: accepted");
			ok(at_sink($id), "$name/$act: delivered");
		} elsif ($act eq 'tempfail') {
			reply_is($r, 451, '4.7.1', "$name/$act: 451 at $where");
			ok(!at_sink($id, 1), "$name/$act: not delivered");
		} else {
			reply_is($r, 550, '5.7.1', "$name/$act: 550 at $where");
			ok(!at_sink($id, 1), "$name/$act: not delivered");
		}
		ok($t->wait_for_log(qr/milter\ inet:127\.0\.0\.1:$port: .*$why.*
		    applying\ milter_default_action/x, 5, $mark),
		    "$name/$act: logged with the milter's name")
		    or diag($t->log_tail(8));
		$t->serves_ok("$name/$act: still serving");
	}
}

PosternTest->finish_all_ok;
done_testing;

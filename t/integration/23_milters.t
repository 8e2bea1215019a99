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
# - Postfix's rejected-connection state: 421 or shutdown at connect
#   (421 at HELO), a refusal at HELO (that HELO and every later MAIL),
#   shutdown at MAIL (421 and close), discard at connect or helo
#   ignored, a milter sending progress forever (cut at 4 times the
#   timeout), a big body without replies (NR_HDR, NR_BODY);
# - the fault battery: unreachable, never negotiating, hanging at RCPT
#   and at end of message, closing mid-message, garbage, an oversized
#   packet; for each, with milter_default_action
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
use PosternTest qw(reply_is poll_until free_port like_diag can_connect
    slurp spew dkim_verify dkim_verifiers_unusable dkim_rsa_key);

my $HELPERS = "$FindBin::Bin/../helpers";

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
	spew($f, $m);
	my (undef, $py) = dkim_verify($f, $dns, 'dkimpy');
	my (undef, $pl) = dkim_verify($f, $dns, 'Mail::DKIM');
	return ($py, $pl);
}

# ---- the real OpenDKIM ----------------------------------------------------
SKIP: {
	skip 'opendkim, dkimpy or Mail::DKIM missing', 16
	    unless -x '/usr/sbin/opendkim' && !dkim_verifiers_unusable();
	my $key = $t->path('rsa.pem');
	my $txt = dkim_rsa_key($key);
	# posternd's own dkim filter signs with another key and selector
	my $nkey = $t->path('native.pem');
	my $ntxt = dkim_rsa_key($nkey);
	if ($> == 0) {
		my (undef, undef, $uid, $gid) =
		    getpwnam($ENV{POSTERN_TEST_USER} // 'nobody');
		chown $uid, $gid, $nkey if defined $uid;
	}
	my $dns = $t->start_dnsmasq('local=/example.org/',
	    "txt-record=rsasel._domainkey.example.org,$txt",
	    "txt-record=natsel._domainkey.example.org,$ntxt");
	my $od_spec;
	for my $name ('inet', 'unix') {
		my $spec = $t->start_opendkim(name => "opendkim-$name",
		    socket => $name, domain => 'example.org',
		    selector => 'rsasel', key => $key);
		$od_spec = $spec if $name eq 'inet';
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
	spew($t->path('signing'),
	    "# OpenDKIM SigningTable\n*\@example.org\tnative\n");
	spew($t->path('keytable'),
	    "# OpenDKIM KeyTable\nnative\texample.org:natsel:$nkey\n");
	restart($od_spec,
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
	my ($r, $qid) = send_one('macros', [ 'bob@example.net '
	    . 'NOTIFY=SUCCESS,DELAY ORCPT=rfc822;b+2Bb@example.net' ],
	    auth => 1);
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
	like_diag($got, qr/^cmd\ R\ <?bob\@example\.net>?\\x00NOTIFY=SUCCESS,DELAY
	    \\x00ORCPT=rfc822;b\+2Bb\@example\.net\\x00/mx,
	    'RCPT sent with the client\'s DSN parameters', $got);
	like_diag($got, qr/^macro R (?=.*\bj=)/m,
	    'setsymlist: j sent at RCPT as the milter asked', $got);
	like_diag($got, qr/^macro E i=\Q$qid\E/m,
	    'macros: i (the queue ID) at end of message', $got) if $qid;
	like_diag($got, qr/^cmd L X-Drop\\x00/m, 'headers sent', $got);
	like_diag($got, qr/^cmd B body of macros/m, 'body sent', $got);
	# we never send rejected recipients: SMFIP_RCPT_REJ not offered
	my ($prot) = $got =~ /^cmd O ((?:\\x[0-9a-f]{2}|.){12})/m;
	$prot = join '', map { /^\\x(..)$/ ? chr hex $1 : $_ }
	    ($prot // '') =~ /(\\x..|.)/g;
	my (undef, undef, $steps) = unpack 'NNN', $prot . "\0" x 12;
	ok($steps && !($steps & 0x800),
	    'negotiation: SMFIP_RCPT_REJ not offered')
	    or diag(sprintf('protocol offered 0x%x', $steps // 0));
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
	# the envelope as the next hop got it (smtp-sink's dump lines)
	my $d = $m =~ /^X-Mail-Args: (.*)$/m ? $1 : '';
	my @rcpt = $m =~ /^X-Rcpt-Args: (.*)$/mg;
	like_diag($d, qr/^<newfrom\@example\.org>/, 'edits: chgfrom', $m);
	like_diag($d, qr/ RET=HDRS\b/, 'edits: chgfrom RET= sent on', $m);
	like_diag($d, qr/ ENVID=milter-1\b/, 'edits: chgfrom ENVID= sent on',
	    $m);
	ok((grep { /^<added\@example\.net>$/ } @rcpt),
	    'edits: addrcpt, without parameters') or diag(explain(\@rcpt));
	ok((grep { m{^<addedpar\@example\.net>\ NOTIFY=NEVER
	    \ ORCPT=rfc822;orig\+2Bx\@example\.net$}x } @rcpt),
	    'edits: addrcpt_par with NOTIFY= and ORCPT= sent on')
	    or diag(explain(\@rcpt));
	ok(!(grep { /gone\@example\.net/ } @rcpt), 'edits: delrcpt')
	    or diag(explain(\@rcpt));
}

# a recipient added with parameters no RCPT command could carry: the
# edits are refused and the message tempfailed, never sent without them
{
	my ($port) = milter('badparams@E');
	restart("inet:127.0.0.1:$port");
	my ($r) = send_one('badparams');
	reply_is($r, 451, '4.3.0', 'bad ESMTP parameters in an edit: 451');
	my $log = $t->log_tail(20);
	like_diag($log, qr/filter edits refused: bad ESMTP parameters/,
	    'bad ESMTP parameters: logged', $log);
	ok(!at_sink('badparams', 2), 'bad ESMTP parameters: nothing sent');
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

# ---- refusals for the session, discard at connect, shutdown ---------------
{
	# 421 at connect: the first HELO answers it, and the session ends
	my ($port) = milter('replycode421@C');
	restart("inet:127.0.0.1:$port");
	my $c = $t->client('smtp');
	$c->greeting;
	my ($r) = $c->ehlo;
	reply_is($r, 421, '4.7.0', qr/go away/, 'replycode421@C: 421 at EHLO');
	ok(!defined $c->cmd('NOOP', 3), 'replycode421@C: session closed');
	$c->close;

	# a shutdown at connect: the same, with Postfix's text
	($port) = milter('shutdown@C');
	restart("inet:127.0.0.1:$port");
	$c = $t->client('smtp');
	$c->greeting;
	($r) = $c->ehlo;
	reply_is($r, 421, '4.7.0', qr/closing connection/,
	    'shutdown@C: 421 at EHLO');
	ok(!defined $c->cmd('NOOP', 3), 'shutdown@C: session closed');
	$c->close;

	# a shutdown at MAIL: 421 there and close, whatever the default
	# action (it is no fault); logged; the next session is served
	for my $act ('accept', 'tempfail') {
		($port) = milter('shutdown@M');
		restart("inet:127.0.0.1:$port", milter_default_action => $act);
		my $mark = $t->log_mark;
		$c = $t->session('smtp');
		($r) = $c->transaction('alice@example.org', 'bob@example.net',
		    message("shutdown-$act"));
		reply_is($r, 421, '4.7.0', qr/closing connection/,
		    "shutdown\@M/$act: 421 at MAIL");
		ok(!defined $c->cmd('NOOP', 3),
		    "shutdown\@M/$act: session closed");
		$c->close;
		ok($t->wait_for_log(qr/milter inet:127\.0\.0\.1:$port: shutdown/,
		    5, $mark), "shutdown\@M/$act: logged")
		    or diag($t->log_tail(8));
		ok(!at_sink("shutdown-$act", 1), "shutdown\@M/$act: not sent");
		$t->serves_ok("shutdown\@M/$act: still serving");
	}

	# a refusal at HELO refuses that HELO and every later MAIL of the
	# session (the stand-in answers only once per connection)
	for my $case ([ 'reject@H', 550, '5.7.1' ],
	    [ 'tempfail@H', 451, '4.7.1' ]) {
		my ($mode, $code, $ecode) = @$case;
		($port) = milter($mode);
		restart("inet:127.0.0.1:$port");
		$c = $t->client('smtp');
		$c->greeting;
		($r) = $c->ehlo;
		reply_is($r, $code, $ecode, "$mode: $code at EHLO");
		($r) = $c->ehlo('again.example');
		reply_is($r, 250, undef, "$mode: the next EHLO passes");
		for my $try (1, 2) {
			$r = $c->cmd('MAIL FROM:<alice@example.org>');
			reply_is($r, $code, $ecode,
			    "$mode: MAIL $try refused too");
			$c->cmd('RSET');
		}
		$c->cmd('QUIT');
		$c->close;
	}

	# discard at connect or helo: logged, ignored, the milter asked on
	for my $mode ('discard@C', 'discard@H') {
		my $log;
		($port, $log) = milter($mode);
		restart("inet:127.0.0.1:$port");
		my $mark = $t->log_mark;
		($r) = send_one("disc-$mode");
		reply_is($r, 250, '2.0.0', "$mode: accepted");
		ok(at_sink("disc-$mode"), "$mode: delivered");
		ok($t->wait_for_log(qr/DISCARD action is not allowed for connect or helo/,
		    5, $mark), "$mode: logged") or diag($t->log_tail(8));
		like_diag(slurp($log), qr/^cmd E/m,
		    "$mode: the milter still saw the message", slurp($log));
	}

	# progress forever: one command waits 4 times its timeout at most,
	# then it is a timeout (default action tempfail)
	($port) = milter('progressloop@E');
	restart("{ inet:127.0.0.1:$port, content_timeout=1s }");
	my $mark = $t->log_mark;
	$c = $t->session('smtp');
	$c->{timeout} = 15;
	my $t0 = time;
	($r) = $c->transaction('alice@example.org', 'bob@example.net',
	    message('progressloop'));
	my $took = time - $t0;
	reply_is($r, 451, '4.7.1', 'progressloop@E: 451 at end of message');
	ok($took <= 8, "progressloop\@E: given up in time (${took}s)");
	ok($t->wait_for_log(qr/milter inet:127\.0\.0\.1:$port: timeout: still in progress/,
	    5, $mark), 'progressloop@E: logged as a timeout')
	    or diag($t->log_tail(8));
	$c->close;
	$t->serves_ok('progressloop@E: still serving');

	# no replies to headers and body: a body of 300 KB goes out (in
	# writes of 64 KiB or so) whole
	my $log;
	($port, $log) = milter('nrbody');
	restart("inet:127.0.0.1:$port");
	$c = $t->session('smtp');
	my $big = message('nrbody');
	$big .= ('x' x 98 . "\r\n") x 3000;
	($r) = $c->transaction('alice@example.org', 'bob@example.net', $big);
	reply_is($r, 250, '2.0.0', 'nrbody: accepted');
	$c->cmd('QUIT');
	$c->close;
	ok(at_sink('nrbody'), 'nrbody: delivered');
	my ($bytes) = slurp($log) =~ /^bodybytes (\d+)/m;
	ok(($bytes // 0) >= 300000, 'nrbody: the milter got the whole body')
	    or diag('body bytes: ' . ($bytes // 'none'));
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

#!/usr/bin/perl
# 24_postern_milter.t - postern-milter behind a real Postfix (PostfixTest):
# Postern's filters through smtpd_milters, relayed to smtp-sink.
#
#   postern.conf: smtpd_filters = sender, spf, regex, dkim; an RSA key for
#   example.test (TXT record in dnsmasq), a header_checks REJECT rule, an
#   SPF record for spf.example.test, smtpd_sender_login_maps;
#   mynetworks = 127.0.0.1/32 (Postfix's clients from 127.0.0.1 are
#   "ours" and signed; those from 127.0.0.2 come from outside: SPF)
#
#   (a) mail through Postfix arrives signed by Postern's DKIM filter; the
#       signature verifies with Mail::DKIM and dkimpy
#   (b) the regex REJECT rule is Postfix's reply to its client, our text
#   (c) from outside: Received-SPF and Authentication-Results (spf=pass)
#       in the delivered message; a forged A-R of our id is removed
#   (g) sender identity through Postfix's own SMTP AUTH (Cyrus SASL, a
#       sasldb of the test's, PostfixTest sasl_users) on a second smtpd
#       port whose milter connection goes through a tap that logs every
#       macro Postfix sends: alice's own address is delivered, signed,
#       with "auth=pass"; MAIL FROM someone else's address is Postern's
#       553 5.7.1, a From: she does not own Postern's 550 5.7.1
#       (filter=sender); {auth_type} and {auth_authen} reached
#       postern-milter. Skipped, with the reason, without Cyrus SASL.
#   (d) the same MAIL-stage binding with t/helpers/milter_client_probe
#       -a/-u against postern-milter directly
#   (e) postern-milter killed: Postfix applies milter_default_action =
#       tempfail (4xx to its client); restarted: mail flows again
#   (f) milter_client_probe directly: the modifications it sees
#   (h) posternd's own milter client ("milters" in its chain) calling
#       postern-milter: signed by postern-milter's dkim (Mail::DKIM and
#       dkimpy verify), a regex REJECT is posternd's reply to its client
#       (skipped, with the reason, while posternd refuses the chain)
#   (i) actions the MTA does not offer (the probe's -A): without "add
#       headers" the DKIM-Signature is left out, warned, and the message
#       goes on (dkim_sign_failure_action = accept, the default); a second
#       postern-milter with dkim_sign_failure_action = tempfail gives 451;
#       without "change headers" a forged Authentication-Results of our
#       authserv_id is a 451 and the log names "change headers"
#   (j) insert positions: with -V "Postfix 3.7.11" (macro v) a PREPEND
#       (inserted before the matched Subject:) is one lower than without
#       or with another MTA's v; the DKIM-Signature stays at 0
#   (k) the policy filter's END-OF-MESSAGE request (policy_standin.pl,
#       smtpd_policy_service_end_of_data = yes): size= is the message's
#       length with CRLF lines, not 0
#   (l) postern-milter -d -p unix:rel.sock from a directory of the test
#       (owned by mail_owner): the probe (-U) is served over the socket,
#       SIGTERM stops the daemon (found by its command line in /proc) and
#       it removes its socket by the absolute path
#   (m) reload on SIGUSR1 (libmilter's own signal thread takes SIGHUP
#       to stop): a Postfix session opened before the reload (MAIL and
#       RCPT done) ends with the old chain - a subject the new rules
#       refuse goes through, signed with the old selector only; after it,
#       a new header_checks REJECT rule is Postfix's reply; the DKIM key
#       rotated in two reloads (old and new selector, then the new one;
#       the old key root-only, kept from the start), each signature
#       verified by Mail::DKIM and dkimpy; an unknown parameter, 'milters'
#       in the chain and a broken regex each log "reload failed: ...;
#       keeping the old configuration" and mail is still signed and
#       filtered as before
#   and postern-milter -n refuses 'milters' in the chain, SIGTERM stops it.
#
# SPDX-License-Identifier: ISC

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Time::HiRes qw(sleep time);
use PosternTest qw(poll_until can_connect free_port reply_is spew
    dkim_verify dkim_verifiers_unusable dkim_rsa_key);
use PostfixTest;

my $TOP = "$FindBin::Bin/../..";
my $BUILD = $ENV{POSTERN_BUILD} // $TOP;
my $HELPERS = "$FindBin::Bin/../helpers";
my $MILTER = "$BUILD/postern-milter";
my $PROBE = "$BUILD/t/helpers/milter_client_probe";
my $RUN_USER = $ENV{POSTERN_TEST_USER} // 'nobody';

my $why = PostfixTest->unusable;
plan skip_all => $why if $why;
plan skip_all => "$MILTER not built" unless -x $MILTER;
plan skip_all => 'swaks is needed' unless -x '/usr/bin/swaks';
$why = dkim_verifiers_unusable();
plan skip_all => $why if $why;

my $T = PosternTest->new(users => 0, cert => 0);

# --- keys, DNS, tables, postern.conf -----------------------------------------

my $key = $T->path('rsa.pem');
# root's (mode 0600): read before the privilege drop
my $txt = dkim_rsa_key($key);
# (m): the key a reload rotates to, mail_owner's as a new key would be
# (a reload runs as mail_owner); its record is published from the start
my $key2 = $T->path('rsa2.pem');
my $txt2 = dkim_rsa_key($key2);
if ($> == 0) {
	my (undef, undef, $kuid, $kgid) = getpwnam($RUN_USER) or
	    die $RUN_USER;
	chown $kuid, $kgid, $key2 or die "chown $key2: $!";
}
my $DNS = $T->start_dnsmasq('local=/example.test/',
    "txt-record=sel._domainkey.example.test,$txt",
    "txt-record=sel2._domainkey.example.test,$txt2",
    'txt-record=spf.example.test,"v=spf1 ip4:127.0.0.2 -all"');

spew($T->path('signing'), "*\@example.test\tk1\n");
spew($T->path('keytable'), "k1\texample.test:sel:$key\n");
spew($T->path('header_checks'),
    "/^Subject:.*forbidden/\tREJECT 5.7.1 Postern refuses forbidden " .
    "subjects\n");
spew($T->path('logins'), "alice\@example.test\talice\n");

my $MPORT = free_port();
my $CONF = $T->path('postern.conf');
# write_conf(FILTERS, [FILE, [HEADER_CHECKS, EXTRA LINES...]]) - the
# test's postern.conf (FILE: $CONF, HEADER_CHECKS: header_checks)
sub write_conf {
	my ($filters, $file, $checks, @extra) = @_;
	spew($file // $CONF, join('', map { "$_\n" }
	    'myhostname = relay.example.test',
	    'queue_directory = ' . $T->path('spool'),
	    'mynetworks = 127.0.0.1/32',
	    "mail_owner = $RUN_USER",
	    "smtpd_filters = $filters",
	    'header_checks = pcre:' . $T->path($checks // 'header_checks'),
	    'smtpd_sender_login_maps = texthash:' . $T->path('logins'),
	    'dkim_signing_table = texthash:' . $T->path('signing'),
	    'dkim_key_table = texthash:' . $T->path('keytable'),
	    "dns_resolver = 127.0.0.1\@$DNS",
	    'authserv_id = relay.example.test', @extra));
}

# --- -n ----------------------------------------------------------------------

write_conf('relay, milters');
open my $fh, '>>', $CONF or die;
print $fh "smtpd_milters = inet:127.0.0.1:1\n";
close $fh;
my $out = qx{'$MILTER' -n -c '$CONF' 2>&1};
isnt($? >> 8, 0, '-n: milters in the chain refused');
like($out, qr/cannot run 'milters'/, '-n: says why') or diag $out;
write_conf('sender, spf, regex, dkim');
$out = qx{'$MILTER' -n -c '$CONF' 2>&1};
is($? >> 8, 0, '-n: the test configuration is OK') or diag $out;

# --- postern-milter, smtp-sink, Postfix --------------------------------------

sub start_milter {
	$T->spawn('postern-milter', $MILTER, '-c', $CONF, '-p',
	    "inet:$MPORT\@127.0.0.1");
	return poll_until(sub {
		$T->wait_for_log(qr/milter started/, 0.1, undef) &&
		    can_connect('127.0.0.1', $MPORT)
	}, 10);
}
$T->{log} = $T->path('postern-milter.log');	# log_lines/wait_for_log
ok(start_milter(), 'postern-milter listens') or BAIL_OUT('no milter');

# The tap for (g): a relay between Postfix and postern-milter that logs
# each packet Postfix sends, "N cmd C" and "N macro C name=value ...", N
# the connection (one per SMTP session). One process, no fork.
my $TAP_SCRIPT = <<'EOT';
use strict;
use warnings;
use IO::Select;
use IO::Socket::IP;
my ($listen, $up, $log) = @ARGV;
my $srv = IO::Socket::IP->new(LocalHost => '127.0.0.1',
    LocalPort => $listen, Listen => 16, ReuseAddr => 1)
    or die "tap: listen $listen: $!";
open my $lf, '>>', $log or die "tap: $log: $!";
$lf->autoflush(1);
$| = 1;
$SIG{PIPE} = 'IGNORE';
print "ready\n";
my $sel = IO::Select->new($srv);
my (%peer, %buf, %id);		# socket -> other side; MTA side -> bytes, N
my $n = 0;
sub esc {
	my ($v) = @_;
	$v =~ s/([^\x21-\x7e])/sprintf '\\x%02x', ord $1/ge;
	return $v;
}
for (;;) {
	for my $fh ($sel->can_read) {
		if ($fh == $srv) {
			my $c = $srv->accept or next;
			$n++;
			my $u = IO::Socket::IP->new(PeerHost => '127.0.0.1',
			    PeerPort => $up, Proto => 'tcp');
			unless ($u) {
				print $lf "$n refused\n";
				close $c;
				next;
			}
			($peer{$c}, $peer{$u}, $buf{$c}, $id{$c}) =
			    ($u, $c, '', $n);
			$sel->add($c, $u);
			print $lf "$n connect\n";
			next;
		}
		my $o = $peer{$fh} or next;	# closed in this round
		my $r = sysread $fh, my $data, 65536;
		if (!$r) {
			for my $s ($fh, $o) {
				$sel->remove($s);
				delete $peer{$s};
				delete $buf{$s};
				delete $id{$s};
				close $s;
			}
			next;
		}
		for (my $off = 0; $off < length $data;) {
			my $w = syswrite $o, $data, length($data) - $off, $off;
			last unless $w;
			$off += $w;
		}
		next unless exists $buf{$fh};	# the milter's answers
		$buf{$fh} .= $data;
		while (length $buf{$fh} >= 5) {
			my $len = unpack 'N', $buf{$fh};
			last if length $buf{$fh} < 4 + $len;
			my $p = substr $buf{$fh}, 4, $len;
			substr($buf{$fh}, 0, 4 + $len) = '';
			my $cmd = substr $p, 0, 1, '';
			if ($cmd ne 'D') {
				print $lf "$id{$fh} cmd $cmd\n";
				next;
			}
			my $stage = substr $p, 0, 1, '';
			$p =~ s/\0\z//;
			my @kv = split /\0/, $p, -1;
			my @out;
			push @out, esc(shift @kv) . '=' . esc(shift(@kv) // '')
			    while @kv;
			print $lf "$id{$fh} macro $stage @out\n";
		}
	}
}
EOT

my $SASL_WHY = PostfixTest->sasl_unusable;
my ($TAP, $SUBPORT, $TAPLOG) = (free_port(), free_port(),
    $T->path('tap.log'));
my @SASL_OPTS;
unless ($SASL_WHY) {
	spew($T->path('milter_tap.pl'), $TAP_SCRIPT);
	$T->spawn('milter-tap', $^X, $T->path('milter_tap.pl'), $TAP, $MPORT,
	    $TAPLOG);
	poll_until(sub {
		open my $l, '<', $T->path('milter-tap.log') or return 0;
		local $/;
		return (<$l> // '') =~ /^ready$/m;
	}, 10) or BAIL_OUT('the milter tap did not start');
	# submission-like: AUTH only, milters through the tap
	@SASL_OPTS = (sasl_users => { alice => 'alice-secret' },
	    master_extra => [ "127.0.0.1:$SUBPORT inet n - n - - smtpd " .
		"-o smtpd_milters=inet:127.0.0.1:$TAP -o smtpd_relay_" .
		'restrictions=permit_sasl_authenticated,reject' ]);
}

$T->start_smtp_sink;
my $PF = PostfixTest->new(dir => $T->dir, sink_port => $T->port('relay'),
    main => {
	smtpd_milters => "inet:127.0.0.1:$MPORT",
	milter_default_action => 'tempfail',
	milter_protocol => 6,
	mynetworks => '127.0.0.0/8',
	smtpd_relay_restrictions => 'permit_mynetworks, reject',
    }, @SASL_OPTS);
$PF->start;
ok($PF->running, 'Postfix runs with smtpd_milters');

# swaks(FROM, SUBJECT, LOCAL ADDRESS, EXTRA HEADER) - one message to
# Postfix; returns swaks' transcript
sub swaks {
	my ($from, $subject, $local, @hdr) = @_;
	return run_swaks('--server', '127.0.0.1:' . $PF->port,
	    '--from', $from, '--to', 'bob@example.net', '--helo',
	    'client.example.test', '--h-Subject', $subject,
	    '--h-From', "<$from>", '--body', "Hello.\nSecond line.\n",
	    '--local-interface', $local, map { ('--add-header', $_) } @hdr);
}

# swaks_auth(%o) - one message to Postfix's AUTH port from 127.0.0.2 (not
# in postern.conf's mynetworks): user/pass (none: no AUTH), mech (PLAIN),
# from (MAIL FROM), hfrom (the From: address, default from), subject
sub swaks_auth {
	my (%o) = @_;
	my $hfrom = $o{hfrom} // $o{from};
	return run_swaks('--server', "127.0.0.1:$SUBPORT", '--from', $o{from},
	    '--to', 'bob@example.net', '--helo', 'client.example.test',
	    '--h-Subject', $o{subject}, '--h-From', "<$hfrom>",
	    '--body', "Hello.\nSecond line.\n",
	    '--local-interface', '127.0.0.2',
	    defined $o{user} ? ('--auth', $o{mech} // 'PLAIN', '--auth-user',
	    $o{user}, '--auth-password', $o{pass}) : ());
}

# run_swaks(ARGS) - swaks' transcript (stdout and stderr)
sub run_swaks {
	my (@cmd) = ('swaks', @_);
	my $pid = open(my $p, '-|') // die "fork: $!";
	if ($pid == 0) {
		open STDERR, '>&', \*STDOUT;
		exec @cmd or POSIX::_exit(127);
	}
	local $/;
	my $t = <$p>;
	close $p;
	return $t;
}

# --- (a) DKIM -------------------------------------------------------------

$out = swaks('alice@example.test', 'signed via milter', '127.0.0.1');
like($out, qr/<-  250 2\.0\.0 Ok: queued/, '(a) Postfix accepts')
    or diag $out;
my ($m) = $T->wait_sink(qr/signed via milter/, 15);
ok($m, '(a) delivered to the sink') or diag $PF->log_tail(20);
$m //= '';
like($m, qr/^DKIM-Signature: .*d=example\.test/ms,
    '(a) DKIM-Signature by Postern');
my $file = $T->path('signed.eml');
spew($file, $m);
for my $name ('Mail::DKIM', 'dkimpy') {
	my (undef, $r) = dkim_verify($file, $DNS, $name);
	like($r, qr/^pass d=example\.test s=sel/m, "(a) $name verifies")
	    or diag $r;
}

# --- (b) regex REJECT ------------------------------------------------------

$out = swaks('alice@example.test', 'a forbidden subject', '127.0.0.1');
like($out, qr/<\*\* +550 5\.7\.1 Postern refuses forbidden subjects/,
    '(b) the regex reply is Postfix\'s reply') or diag $out;
ok($T->wait_for_log(qr/reject: END-OF-HEADER from .*filter=regex/, 5),
    '(b) postern-milter logs the reject with filter=regex');

# --- (c) SPF and Authentication-Results ---------------------------------

$out = swaks('carol@spf.example.test', 'from outside', '127.0.0.2',
    'Authentication-Results: relay.example.test; spf=pass (forged)');
like($out, qr/<-  250 2\.0\.0 Ok: queued/, '(c) Postfix accepts')
    or diag $out;
($m) = $T->wait_sink(qr/from outside/, 15);
$m //= '';
like($m, qr/^Received-SPF: pass\b/m, '(c) Received-SPF: pass') or diag $m;
like($m, qr/^Authentication-Results: relay\.example\.test;\s+spf=pass/m,
    '(c) Authentication-Results spf=pass');
unlike($m, qr/\(forged\)/, '(c) the forged Authentication-Results is gone');

# --- (g) SMTP AUTH through Postfix (Cyrus SASL) ----------------------------

# tap_session(RE) - the tap's lines of the first connection that has a
# line matching RE (every line of it), or ()
sub tap_session {
	my ($re) = @_;
	open my $l, '<', $TAPLOG or return ();
	my @l = <$l>;
	chomp @l;
	my ($hit) = grep { $_ =~ $re } @l;
	return () unless defined $hit;
	my ($n) = $hit =~ /^(\d+) /;
	return grep { /^\Q$n\E / } @l;
}

SKIP: {
	skip "no SMTP AUTH in Postfix here: $SASL_WHY", 19 if $SASL_WHY;

	$out = swaks_auth(from => 'alice@example.test',
	    subject => 'no auth');
	like($out, qr/<\*\* +554 5\.7\.1 <bob\@example\.net>: .*denied/,
	    '(g) without AUTH Postfix refuses to relay on its AUTH port')
	    or diag $out;
	$out = swaks_auth(from => 'alice@example.test', subject => 'bad pw',
	    user => 'alice', pass => 'wrong');
	like($out, qr/<\*\* +535 5\.7\.8 /, '(g) a wrong password: 535')
	    or diag $out;

	# (a) her own address: delivered, signed, auth=pass
	my $mark = $PF->log_mark;
	$out = swaks_auth(from => 'alice@example.test',
	    subject => 'authenticated alice', user => 'alice',
	    pass => 'alice-secret');
	like($out, qr/<-  235 2\.7\.0 /, '(g) AUTH PLAIN alice: 235')
	    or diag $out;
	like($out, qr/<-  250 2\.0\.0 Ok: queued/,
	    '(g) alice as alice@: Postfix accepts') or diag $out;
	ok($PF->wait_for_log(qr/client=\S+\[127\.0\.0\.2\],
	    \ sasl_method=PLAIN,\ sasl_username=alice$/x, 5, $mark),
	    '(g) Postfix logs sasl_method=PLAIN, sasl_username=alice')
	    or diag $PF->log_tail(10);
	($m) = $T->wait_sink(qr/authenticated alice/, 15);
	ok($m, '(g) delivered') or diag $PF->log_tail(20);
	$m //= '';
	like($m, qr/^Authentication-Results:\ relay\.example\.test;\s+
	    auth=pass\ smtp\.mailfrom=alice\@example\.test$/mx,
	    '(g) Authentication-Results: auth=pass from postern-milter')
	    or diag $m;
	like($m, qr/^DKIM-Signature: .*d=example\.test/ms,
	    '(g) signed (authenticated, from outside mynetworks)');
	$file = $T->path('auth-signed.eml');
	spew($file, $m);
	my (undef, $r) = dkim_verify($file, $DNS, 'Mail::DKIM');
	like($r, qr/^pass d=example\.test s=sel/m, '(g) Mail::DKIM verifies')
	    or diag $r;

	# the macros Postfix sent postern-milter at MAIL (what it asked
	# for with setsymlist: i {auth_type} {auth_authen})
	my @s = tap_session(qr/ macro M .*\{auth_authen\}=alice\b/);
	my ($mac) = grep { / macro M / } @s;
	$mac //= '';
	like($mac, qr/ \{auth_authen\}=alice( |$)/,
	    '(g) {auth_authen}=alice reached postern-milter at MAIL')
	    or diag join "\n", @s;
	like($mac, qr/ \{auth_type\}=PLAIN( |$)/,
	    '(g) {auth_type}=PLAIN reached postern-milter at MAIL');
	ok((grep { / cmd M$/ } @s) && (grep { / cmd E$/ } @s),
	    '(g) that session went through the tap: MAIL .. end of message')
	    or diag join "\n", @s;
	@s = tap_session(qr/ macro M .*\bi=/);
	($mac) = grep { / macro M / } @s;
	unlike($mac // '', qr/\{auth_authen\}=\S/,
	    '(g) the session without AUTH: no {auth_authen}') or diag $mac;

	# (b) MAIL FROM an address she does not own
	$mark = $T->log_mark;
	$out = swaks_auth(from => 'bob@example.test',
	    hfrom => 'alice@example.test', subject => 'alice as bob',
	    user => 'alice', pass => 'alice-secret');
	like($out, qr/<\*\*\ +553\ 5\.7\.1\ <bob\@example\.test>:\ Sender
	    \ address\ rejected:\ not\ owned\ by\ user\ alice/x,
	    '(g) alice as bob@: Postern\'s 553 5.7.1 is Postfix\'s reply')
	    or diag $out;
	my $re = qr/reject: MAIL .*not owned by user alice;.*filter=sender/;
	ok($T->wait_for_log($re, 5, $mark),
	    '(g) postern-milter logs the reject, filter=sender')
	    or diag join "\n", $T->log_lines($mark);

	# (c) her own MAIL FROM, a From: she does not own
	$mark = $T->log_mark;
	$out = swaks_auth(from => 'alice@example.test',
	    hfrom => 'ceo@example.test', subject => 'alice as ceo',
	    user => 'alice', pass => 'alice-secret', mech => 'LOGIN');
	like($out, qr/<\*\*\ +550\ 5\.7\.1\ From:\ header\ address
	    \ <ceo\@example\.test>\ not\ owned\ by\ user\ alice/x,
	    '(g) From: ceo@: Postern\'s 550 5.7.1 is Postfix\'s reply')
	    or diag $out, $PF->log_tail(15);
	ok($T->wait_for_log(qr/reject: .*ceo\@example\.test.*filter=sender/,
	    5, $mark), '(g) postern-milter logs it, filter=sender')
	    or diag join "\n", $T->log_lines($mark);
	@s = tap_session(qr/ macro M .*\{auth_type\}=LOGIN/);
	ok(scalar @s,
	    '(g) AUTH LOGIN: {auth_type}=LOGIN reached postern-milter')
	    or diag join "\n", $T->log_lines($mark);
	sleep 1;
	ok(!grep({ /alice as (bob|ceo)/ } $T->sink_messages),
	    '(g) neither refused message was delivered');
}

# --- (d) sender identity (MAIL binding), (f) the probe ---------------------

my $msg = $T->path('probe.eml');
spew($msg, "From: <alice\@example.test>\nTo: bob\@example.net\n" .
    "Subject: probe\nAuthentication-Results: relay.example.test; " .
    "auth=pass\n\nbody\n");
$out = qx{'$PROBE' -f bob\@example.test -r bob\@example.net -a PLAIN -u alice $MPORT '$msg' 2>&1};
like($out, qr/reply mail replycode 553 5\.7\.1 .*not owned by user alice/,
    '(d) MAIL as someone else\'s address: 553 5.7.1') or diag $out;
$out = qx{'$PROBE' -f alice\@example.test -r bob\@example.net -a PLAIN -u alice $MPORT '$msg' 2>&1};
like($out, qr/^action (continue|accept)/m, '(f) own address passes')
    or diag $out;
like($out, qr/^modification chgheader index=1 name=Authentication-Results value=$/m,
    '(f) forged A-R deleted') or diag $out;
like($out, qr/^modification insheader index=0 name=Authentication-Results value= relay\.example\.test; auth=pass smtp\.mailfrom=alice\@example\.test/m,
    '(f) auth=pass A-R inserted');
like($out, qr/^modification insheader index=0 name=DKIM-Signature value= v=1; a=rsa-sha256/m,
    '(f) DKIM-Signature inserted');

# --- (e) milter down, then back -----------------------------------------

$T->kill9('postern-milter');
$out = swaks('alice@example.test', 'milter down', '127.0.0.1');
like($out, qr/<\*\* +4\d\d /, '(e) milter down: Postfix tempfails')
    or diag $out;
ok(!$T->sink_messages || !grep({ /milter down/ } $T->sink_messages),
    '(e) nothing delivered unfiltered');
ok(start_milter(), '(e) postern-milter restarted');
$out = swaks('alice@example.test', 'milter back', '127.0.0.1');
like($out, qr/<-  250 2\.0\.0 Ok: queued/, '(e) mail flows again')
    or diag $out;
ok(scalar $T->wait_sink(qr/milter back/, 15),
    '(e) delivered');

# --- (h) posternd's milter client calling postern-milter ----------------

my $P = PosternTest->new(users => 1, name => 'posternd');
my %PCONF = (%PosternTest::QUICK_DELIVERY,
    smtpd_filters => 'relay, milters',
    smtpd_milters => "inet:127.0.0.1:$MPORT",
    milter_default_action => 'tempfail');
$P->write_config(%PCONF);
my $pcheck = qx{'${\ $P->binary}' -n -c '${\ $P->path('main.cf')}' 2>&1};
my $pst = $?;
($pcheck) = split /\n/, $pcheck // '';
SKIP: {
	# a posternd without its milter client says "unknown filter":
	# skipped; any other refusal of this configuration is a failure
	skip 'posternd has no milter client yet (posternd -n: ' .
	    "$pcheck)", 11 if $pst != 0 && $pcheck =~ /unknown filter/;
	unless (is($pst, 0, '(h) posternd -n accepts relay, milters')) {
		diag $pcheck;
		skip 'posternd refuses the configuration', 10;
	}
	$P->start_smtp_sink;
	$P->start_posternd(config => \%PCONF);
	my $body = sub {
		my ($subject) = @_;
		return join '', map { "$_\r\n" } 'From: <alice@example.test>',
		    'To: <bob@example.net>', "Subject: $subject",
		    "Message-ID: <${\ time}.$$\@client.example.test>",
		    'Date: Mon, 1 Jan 2024 00:00:00 +0000', '',
		    'Hello through posternd.', 'Second line.';
	};
	my $c = $P->session('smtp');
	my ($r) = $c->transaction('alice@example.test', 'bob@example.net',
	    $body->('posternd to milter'));
	reply_is($r, 250, '2.0.0', '(h) posternd accepts') or
	    diag $P->log_tail(20);
	my ($pm) = $P->wait_sink(qr/posternd to milter/, 15);
	ok($pm, '(h) delivered') or diag $P->log_tail(20);
	$pm //= '';
	like($pm, qr/^DKIM-Signature: .*d=example\.test/ms,
	    '(h) signed by postern-milter\'s dkim');
	$file = $T->path('posternd-signed.eml');
	spew($file, $pm);
	for my $name ('Mail::DKIM', 'dkimpy') {
		my (undef, $vr) = dkim_verify($file, $DNS, $name);
		like($vr, qr/^pass d=example\.test s=sel/m,
		    "(h) $name verifies") or diag $vr;
	}
	my $mark = $T->log_mark;
	($r) = $c->transaction('alice@example.test', 'bob@example.net',
	    $body->('a forbidden subject via posternd'));
	reply_is($r, 550, '5.7.1', qr/Postern refuses forbidden subjects/,
	    '(h) the regex REJECT is posternd\'s reply');
	ok($T->wait_for_log(qr/reject: END-OF-HEADER from .*filter=regex/, 5,
	    $mark), '(h) postern-milter rejected it, filter=regex');
	$c->cmd('QUIT');
	$c->close;
	sleep 1;
	ok(!grep({ /forbidden subject via posternd/ } $P->sink_messages),
	    '(h) the rejected message was not delivered');
	$P->finish_ok;
}

# --- (i)-(l) the probe against postern-milter's fixes ----------------------

# probe(ARGS) - the probe's output (stdout and stderr) and exit status
my @probe_out;
sub probe {
	my $cmd = join ' ', map { "'$_'" } $PROBE, @_;
	my $o = qx{$cmd 2>&1};
	push @probe_out, $o;
	return ($o, $? >> 8);
}

# file_log_wait(FILE, RE, SINCE) - wait_for_log on another log file
sub file_log_wait {
	my ($file, $re, $since) = @_;
	local $T->{log} = $file;
	return $T->wait_for_log($re, 5, $since);
}

my $ALICE = [ '-f', 'alice@example.test', '-r', 'bob@example.net',
    '-a', 'PLAIN', '-u', 'alice' ];
my $NO_ADD = sprintf '0x%x', 0x1ff & ~0x01;	# all but add headers
my $NO_CHG = sprintf '0x%x', 0x1ff & ~0x10;	# all but change headers
my $plain = "From: <alice\@example.test>\nTo: bob\@example.net\n" .
    "Subject: actions\n\nbody\nline two\n";
my $plain_file = $T->path('plain.eml');
spew($plain_file, $plain);

# (i) no "add headers": the test config's dkim_sign_failure_action is
# the default, accept (config/schema.c): delivered unsigned, warned
my ($mark, $rc) = ($T->log_mark);
($out, $rc) = probe('-A', $NO_ADD, @$ALICE, $MPORT, $plain_file);
my ($acts) = $out =~ /^negotiated version=\d+ actions=(0x[0-9a-f]+)/m;
ok(defined $acts && !(hex($acts) & 0x01),
    '(i) -A without add headers: the milter does not ask for it')
    or diag $out;
like($out, qr/^action continue$/m,
    '(i) without add headers: the message goes on (accept)') or diag $out;
unlike($out, qr/^(error|modification (addheader|insheader))/m,
    '(i) no header added, nothing the negotiation forbids') or diag $out;
ok($T->wait_for_log(qr/the MTA does not offer the milter actions: add headers;/,
    5, $mark),
    '(i) the connection\'s warning names "add headers"')
    or diag join "\n", $T->log_lines($mark);
my $re = 'header DKIM-Signature: the MTA did not offer the milter action ' .
    '"add headers"; delivered unsigned (dkim_sign_failure_action = accept)';
ok($T->wait_for_log(qr/\Q$re\E/, 5, $mark),
    '(i) the DKIM-Signature is left out: dkim_sign_failure_action=accept')
    or diag join "\n", $T->log_lines($mark);
# the same with every action: signed (what (i) took away)
($out, $rc) = probe(@$ALICE, $MPORT, $plain_file);
like($out, qr/^modification insheader index=0 name=DKIM-Signature /m,
    '(i) with add headers offered: signed') or diag $out;

# (i) no "change headers" and a forged Authentication-Results of our
# authserv_id (relay.example.test): fail closed
my $forged_file = $T->path('forged.eml');
spew($forged_file, "From: <alice\@example.test>\nTo: " .
    "bob\@example.net\nSubject: forged\nAuthentication-Results: " .
    "relay.example.test; spf=pass (forged)\n\nbody\n");
$mark = $T->log_mark;
($out, $rc) = probe('-A', $NO_CHG, @$ALICE, $MPORT, $forged_file);
like($out, qr/^action replycode 451 4\.\d\.\d /m,
    '(i) forged A-R without change headers: tempfail 451') or diag $out;
unlike($out, qr/^modification/m, '(i) no modification sent')
    or diag $out;
$re = 'cannot delete forged Authentication-Results: the MTA did not ' .
    'offer the milter action "change headers"; message tempfailed';
ok($T->wait_for_log(qr/\Q$re\E/, 5, $mark),
    '(i) the log names "change headers"')
    or diag join "\n", $T->log_lines($mark);
($out, $rc) = probe('-A', $NO_CHG, @$ALICE, $MPORT, $plain_file);
like($out, qr/^action continue$/m,
    '(i) without change headers, nothing forged: the message goes on')
    or diag $out;

# a second postern-milter: dkim_sign_failure_action = tempfail, a
# PREPEND rule, and the policy filter asking at end of message
my ($MPORT2, $SPORT) = (free_port(), free_port());
my $CONF2 = $T->path('postern2.conf');
my $SDIR = $T->path('standin');
mkdir $SDIR or die "$SDIR: $!";
spew($T->path('header_checks2'),
    "/^Subject:.*prepend me/\tPREPEND X-Postern-Note: prepended\n");
write_conf('sender, spf, regex, policy, dkim', $CONF2, 'header_checks2',
    'dkim_sign_failure_action = tempfail',
    "smtpd_policy_services = inet:127.0.0.1:$SPORT",
    'smtpd_policy_service_end_of_data = yes',
    'smtpd_policy_service_timeout = 5s');
$T->spawn('standin', $^X, "$HELPERS/policy_standin.pl", '--port', $SPORT,
    '--dir', $SDIR);
my $LOG2 = $T->path('postern-milter-2.log');
$T->spawn('postern-milter-2', $MILTER, '-c', $CONF2, '-p',
    "inet:$MPORT2\@127.0.0.1");
ok(poll_until(sub { can_connect('127.0.0.1', $MPORT2) &&
    can_connect('127.0.0.1', $SPORT) }, 10),
    'a second postern-milter (tempfail, PREPEND, policy) and the policy ' .
    'stand-in listen') or diag $T->log_tail(10), `cat '$LOG2'`;

my @l2 = do { local $T->{log} = $LOG2; $T->log_lines };
($out, $rc) = probe('-A', $NO_ADD, @$ALICE, $MPORT2, $plain_file);
like($out, qr/^action replycode 451 4\.\d\.\d /m,
    '(i) no add headers, dkim_sign_failure_action = tempfail: 451')
    or diag $out;
$re = '"add headers"; message tempfailed ' .
    '(dkim_sign_failure_action = tempfail)';
ok(file_log_wait($LOG2, qr/header DKIM-Signature: .*\Q$re\E/, scalar @l2),
    '(i) the log says dkim_sign_failure_action = tempfail')
    or diag `tail -n 10 '$LOG2'`;

# (j) insert positions: the sender filter first inserts its
# Authentication-Results (auth=pass) at 0, so a PREPEND of Subject (then
# the fourth field) is an insert at 3; Postfix (macro v) counts its
# hidden Received: so 4
my $prep_file = $T->path('prepend.eml');
my $prep = "From: <alice\@example.test>\nTo: bob\@example.net\n" .
    "Subject: prepend me\nMessage-ID: <prep\@client.example.test>\n\n" .
    "body\n";
spew($prep_file, $prep);
my %ins;
for my $v ([ 'none' ], [ 'Postfix', '-V', 'Postfix 3.7.11' ],
    [ 'other', '-V', 'Sendmail 8.17.1' ]) {
	my ($k, @opt) = @$v;
	($out, $rc) = probe(@opt, @$ALICE, $MPORT2, $prep_file);
	($ins{$k}) = $out =~ /^modification\ insheader\ index=(\d+)
	    \ name=X-Postern-Note\ value=\ ?prepended$/mx;
	($ins{"dkim $k"}) = $out =~ /^modification\ insheader\ index=(\d+)
	    \ name=DKIM-Signature\ /mx;
	diag $out unless defined $ins{$k};
}
is($ins{none}, 3, '(j) PREPEND before Subject: insheader index 3 without v');
is($ins{Postfix}, 4,
    '(j) with v = "Postfix 3.7.11": index 4 (its hidden Received:)');
is($ins{other}, 3, '(j) with v of another MTA: index 3');
is($ins{'dkim Postfix'}, 0,
    '(j) with v = Postfix the DKIM-Signature stays at the very top (0)');

# (k) the policy requests at end of message: size is the message's
# length with CRLF lines (header block, empty line, body), not 0: the
# first for plain.eml ((i), tempfail), the last for prepend.eml ((j))
my @eom = grep { /protocol_state=END-OF-MESSAGE/ }
    do { open my $sl, '<', "$SDIR/log"; <$sl> };
my @sizes = map { /\bsize=(\d+)/ ? $1 : undef } @eom;
for my $c ([ 'first', $plain, $sizes[0] ], [ 'last', $prep, $sizes[-1] ]) {
	my ($which, $text, $got) = @$c;
	(my $crlf = $text) =~ s/\n/\r\n/g;
	is($got, length $crlf, "(k) the $which END-OF-MESSAGE policy " .
	    'request: size = the CRLF length of its message')
	    or diag `cat '$SDIR/log'`;
}
is(scalar @eom, 4, '(k) one END-OF-MESSAGE request per message') or
    diag `cat '$SDIR/log'`;

# (l) -d with a relative unix socket, started with a directory of the
# test's as cwd: one mail_owner owns, so that postern-milter, no longer
# root, can remove its socket when it stops (by the absolute path: -d
# went to /)
my $DDIR = $T->path('d');
mkdir $DDIR or die "$DDIR: $!";
my (undef, undef, $ruid, $rgid) = getpwnam $RUN_USER or die $RUN_USER;
chown $ruid, $rgid, $DDIR or die "chown $DDIR: $!";
my $sock = "$DDIR/rel.sock";
my @dcmd = ($MILTER, '-d', '-c', $CONF, '-p', 'unix:rel.sock');
my $dpid = fork // die "fork: $!";
if ($dpid == 0) {
	chdir $DDIR or POSIX::_exit(126);
	open STDOUT, '>>', $T->path('postern-milter-d.log');
	open STDERR, '>&', \*STDOUT;
	exec @dcmd or POSIX::_exit(127);
}
waitpid $dpid, 0;
is($? >> 8, 0, '(l) postern-milter -d -p unix:rel.sock: the parent exits 0')
    or diag `cat '${\ $T->path('postern-milter-d.log')}'`;
# the daemon: the process whose command line is ours
my $want_cmd = join "\0", @dcmd;
my @daemons;
poll_until(sub {
	@daemons = grep {
		open my $c, '<', "/proc/$_/cmdline" or 0;
		my $l = $c ? do { local $/; <$c> } // '' : '';
		$l =~ s/\0\z//;
		$l eq $want_cmd;
	} map { m{/proc/(\d+)$} } glob '/proc/[0-9]*';
	return @daemons && -S $sock;
}, 10);
is(scalar @daemons, 1, '(l) one daemon runs') or diag "pids: @daemons";
ok(-S $sock, '(l) the socket is in the test directory');
($out, $rc) = probe('-U', $sock, @$ALICE, $plain_file);
like($out, qr/^modification insheader index=0 name=DKIM-Signature /m,
    '(l) a probe over the unix socket: signed') or diag $out;
like($out, qr/^action continue$/m, '(l) and the message goes on')
    or diag $out;
kill 'TERM', @daemons;
my $gone = poll_until(sub {
	!grep { my $s = "/proc/$_/stat"; -e $s &&
	    (do { open my $f, '<', $s; <$f> } // '') !~ /^\d+ \(.*\) Z /
	} @daemons
}, 10);
ok($gone, '(l) SIGTERM stops the daemon') or do {
	diag "still running: @daemons";
	kill 'KILL', @daemons;
};
ok(poll_until(sub { !-e $sock }, 5),
    '(l) it removed its socket (by the absolute path)');

$rc = $T->stop('postern-milter-2');
is($rc, 0, 'the second postern-milter exits 0 on SIGTERM');
$T->stop('standin');
ok(!grep({ /Sanitizer|runtime error:/ } @probe_out),
    '(i)-(l) no sanitizer report from the probe (when built with one)')
    or diag grep { /Sanitizer|runtime error:/ } @probe_out;

# --- (m) reload on SIGUSR1 ------------------------------------------------

# verified_selectors(MESSAGE, NAME) - "s=SEL" of each signature that Mail::DKIM and dkimpy
# both verify, sorted, joined by spaces; the verifiers' output on
# disagreement goes to diag
sub verified_selectors {
	my ($msg, $name) = @_;
	my $f = $T->path("$name.eml");
	spew($f, $msg);
	my %got;
	for my $vname ('Mail::DKIM', 'dkimpy') {
		my (undef, $r) = dkim_verify($f, $DNS, $vname);
		$got{$vname} = join ' ', sort map { "s=$_" }
		    $r =~ /^pass d=example\.test s=(\S+)/mg;
		diag "$vname: $r" unless $got{$vname};
	}
	diag "Mail::DKIM: $got{'Mail::DKIM'}, dkimpy: $got{dkimpy}"
	    if $got{'Mail::DKIM'} ne $got{dkimpy};
	return $got{'Mail::DKIM'} eq $got{dkimpy} ? $got{dkimpy} : 'differ';
}

my $MPID = $T->{pids}{'postern-milter'};
# reload_milter(RE) - SIGUSR1 to postern-milter; the first new log line
# matching RE (a reload's outcome), or undef after 10 s
sub reload_milter {
	my ($re) = @_;
	my $mark = $T->log_mark;
	kill 'USR1', $MPID or return undef;
	return $T->wait_for_log($re, 10, $mark);
}
my $RELOADED = qr/reloaded configuration from \S*postern\.conf$/;
my $FAILED = qr/reload failed: .*; keeping the old configuration$/;
my $NEW_RULE = "/^Subject:.*newly banned/\tREJECT 5.7.1 Postern now " .
    "refuses newly banned subjects\n";

# the session held across the reload: MAIL and RCPT seen by the milter
my $held = PosternTest::Client->new(port => $PF->port);
my $g = $held->greeting;
my ($hr) = $held->ehlo('held.example.test');
$hr = $held->envelope('alice@example.test', 'bob@example.net')
    if $hr && $hr->{code} == 250;
reply_is($hr, 250, undef, '(m) a session open before the reload: RCPT ok');

# new rules and the rotation's overlap: old and new selector sign
spew($T->path('header_checks'), join '', map { "$_\n" }
    "/^Subject:.*forbidden/\tREJECT 5.7.1 Postern refuses forbidden " .
    'subjects', $NEW_RULE =~ s/\n\z//r);
spew($T->path('signing'), "*\@example.test\tk1\n*\@example.test\tk2\n");
spew($T->path('keytable'), "k1\texample.test:sel:$key\n" .
    "k2\texample.test:sel2:$key2\n");
$mark = $T->log_mark;
my $line = reload_milter(qr/$RELOADED|$FAILED/);
like($line // '', $RELOADED, '(m) SIGUSR1: "reloaded configuration from ' .
    'FILE"') or diag $T->log_tail(15);
ok($T->is_running('postern-milter'), '(m) still running after SIGUSR1');
SKIP: {
	skip 'the old key is root-only only when run as root', 1 if $> != 0;
	ok($T->wait_for_log(qr/dkim: \Q$key\E: .*keeping the key read from it before/,
	    2, $mark), '(m) the root-only key, unreadable as mail_owner, is ' .
	    'kept from the start') or diag join "\n", $T->log_lines($mark);
}

# (4) the held session ends with the chain it started with
my $hmsg = join '', map { "$_\r\n" } 'From: <alice@example.test>',
    'To: <bob@example.net>', 'Subject: newly banned, held across the reload',
    "Message-ID: <held.$$\@client.example.test>",
    'Date: Mon, 1 Jan 2024 00:00:00 +0000', '', 'Held.';
$hr = $held->data($hmsg);
reply_is($hr, 250, '2.0.0', '(m) the session opened before the reload ' .
    'finishes with the old rules (no newly banned rule)')
    or diag join "\n", $T->log_lines($mark);
$held->cmd('QUIT');
$held->close;
($m) = $T->wait_sink(qr/held across the reload/, 15);
is(verified_selectors($m // '', 'held'), 's=sel',
    '(m) and the old signing table: signed with s=sel only, verified');

# (1) the new rule applies to the next message
$mark = $T->log_mark;
$out = swaks('alice@example.test', 'a newly banned subject', '127.0.0.1');
like($out, qr/<\*\* +550 5\.7\.1 Postern now refuses newly banned subjects/,
    '(m) after the reload the new REJECT rule is Postfix\'s reply')
    or diag $out;
ok($T->wait_for_log(qr/reject: END-OF-HEADER from .*filter=regex/, 5,
    $mark), '(m) logged with filter=regex');
$out = swaks('alice@example.test', 'a forbidden subject again',
    '127.0.0.1');
like($out, qr/<\*\* +550 5\.7\.1 Postern refuses forbidden subjects/,
    '(m) the old rule still applies') or diag $out;

# (2) rotation: the overlap, then the old selector retired
$out = swaks('alice@example.test', 'rotation overlap', '127.0.0.1');
like($out, qr/<-  250 2\.0\.0 Ok: queued/, '(m) overlap: accepted')
    or diag $out;
($m) = $T->wait_sink(qr/rotation overlap/, 15);
is(verified_selectors($m // '', 'overlap'), 's=sel s=sel2',
    '(m) overlap: signed with the old and the new selector, verified');
spew($T->path('signing'), "*\@example.test\tk2\n");
$line = reload_milter(qr/$RELOADED|$FAILED/);
like($line // '', $RELOADED, '(m) second reload') or diag $T->log_tail(10);
$out = swaks('alice@example.test', 'rotation done', '127.0.0.1');
($m) = $T->wait_sink(qr/rotation done/, 15);
is(verified_selectors($m // '', 'rotated'), 's=sel2',
    '(m) the old selector retired: signed with s=sel2 only, verified')
    or diag $out;

# (3) broken configurations: the old one stays in force
my $good_conf = do { local $/; open my $cf, '<', $CONF or die; <$cf> };
my $good_checks = do {
	local $/;
	open my $cf, '<', $T->path('header_checks') or die;
	<$cf>;
};
my @broken = (
    [ 'an unknown parameter', sub {
	spew($CONF, $good_conf . "no_such_parameter = 1\n") },
      qr/no_such_parameter/ ],
    [ "'milters' in the chain", sub {
	write_conf('sender, spf, regex, milters, dkim', undef, undef,
	    'smtpd_milters = inet:127.0.0.1:1') },
      qr/cannot run 'milters'/ ],
    [ 'a broken regex', sub {
	spew($CONF, $good_conf);
	spew($T->path('header_checks'),
	    $good_checks . "/^Subject: (unclosed/\tREJECT 5.7.1 x\n") },
      qr/header_checks/ ],
);
for my $b (@broken) {
	my ($what, $break, $why) = @$b;
	$break->();
	$line = reload_milter(qr/$RELOADED|$FAILED/);
	like($line // '', qr/$FAILED/, "(m) $what: reload failed, old " .
	    'configuration kept') or diag $T->log_tail(10);
	like($line // '', $why, "(m) $what: the log says why");
	ok($T->is_running('postern-milter'), "(m) $what: still running");
	(my $subj = "after $what") =~ s/\W+/ /g;
	$out = swaks('alice@example.test', $subj, '127.0.0.1');
	($m) = $T->wait_sink(qr/\Q$subj\E/, 15);
	is(verified_selectors($m // '', 'broken'), 's=sel2',
	    "(m) $what: mail still signed as before") or diag $out;
}
$out = swaks('alice@example.test', 'newly banned after the failures',
    '127.0.0.1');
like($out, qr/<\*\* +550 5\.7\.1 Postern now refuses newly banned/,
    '(m) after the failed reloads the rules in force are unchanged')
    or diag $out;
# repaired: a reload works again
spew($T->path('header_checks'), $good_checks);
$line = reload_milter(qr/$RELOADED|$FAILED/);
like($line // '', $RELOADED, '(m) repaired: the reload works again')
    or diag $T->log_tail(10);

# --- SIGTERM ---------------------------------------------------------------

my $t0 = time;
my $st = $T->stop('postern-milter');
my $took = time - $t0;
is($st, 0, 'SIGTERM: postern-milter exits 0');
cmp_ok($took, '<', 9, "SIGTERM: stopped in ${\ sprintf '%.1f', $took} s");
$T->sanitizer_ok('postern-milter: no sanitizer report in its log');

$PF->stop;
done_testing;

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
#   (d) sender identity: Postfix here has no SASL (no Dovecot or Cyrus
#       sasldb tools installed), so the MAIL-stage binding is checked with
#       t/helpers/milter_client_probe -a/-u against postern-milter
#   (e) postern-milter killed: Postfix applies milter_default_action =
#       tempfail (4xx to its client); restarted: mail flows again
#   (f) milter_client_probe directly: the modifications it sees
#   and postern-milter -n refuses 'milters' in the chain, SIGTERM stops it.
#
# SPDX-License-Identifier: ISC

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use MIME::Base64 qw(encode_base64);
use Time::HiRes qw(sleep time);
use PosternTest qw(poll_until can_connect free_port);
use PostfixTest;

my $TOP = "$FindBin::Bin/../..";
my $BUILD = $ENV{POSTERN_BUILD} // $TOP;
my $HELPERS = "$FindBin::Bin/../helpers";
my $MILTER = "$BUILD/postern-milter";
my $PROBE = "$BUILD/t/helpers/milter_client_probe";
my $PYTHON = '/usr/bin/python3';
my $RUN_USER = $ENV{POSTERN_TEST_USER} // 'nobody';

my $why = PostfixTest->unusable;
plan skip_all => $why if $why;
plan skip_all => "$MILTER not built" unless -x $MILTER;
plan skip_all => 'swaks is needed' unless -x '/usr/bin/swaks';
plan skip_all => 'Mail::DKIM and dkimpy are needed'
    unless eval { require Mail::DKIM::Verifier; 1 } &&
    system($PYTHON, '-c', 'import dkim, dns.query') == 0;

my $T = PosternTest->new(users => 0, cert => 0);

sub write_file {
	my ($file, $text) = @_;
	open my $fh, '>:raw', $file or die "$file: $!";
	print $fh $text;
	close $fh or die "$file: $!";
}

# --- keys, DNS, tables, postern.conf -----------------------------------------

my $key = $T->path('rsa.pem');
system('openssl', 'genpkey', '-quiet', '-algorithm', 'RSA', '-pkeyopt',
    'rsa_keygen_bits:2048', '-out', $key) == 0 or die 'openssl genpkey';
my $der = qx{openssl pkey -in '$key' -pubout -outform DER};
chmod 0600, $key;		# root's: read before the privilege drop
my $txt = 'v=DKIM1; k=rsa; p=' . encode_base64($der, '');
my @parts = $txt =~ /(.{1,250})/g;
my $DNS = $T->start_dnsmasq('local=/example.test/',
    'txt-record=sel._domainkey.example.test,' .
    join(',', map { qq("$_") } @parts),
    'txt-record=spf.example.test,"v=spf1 ip4:127.0.0.2 -all"');

write_file($T->path('signing'), "*\@example.test\tk1\n");
write_file($T->path('keytable'), "k1\texample.test:sel:$key\n");
write_file($T->path('header_checks'),
    "/^Subject:.*forbidden/\tREJECT 5.7.1 Postern refuses forbidden " .
    "subjects\n");
write_file($T->path('logins'), "alice\@example.test\talice\n");

my $MPORT = free_port();
my $CONF = $T->path('postern.conf');
sub write_conf {
	my ($filters) = @_;
	write_file($CONF, join('', map { "$_\n" }
	    'myhostname = relay.example.test',
	    'queue_directory = ' . $T->path('spool'),
	    'mynetworks = 127.0.0.1/32',
	    "mail_owner = $RUN_USER",
	    "smtpd_filters = $filters",
	    'header_checks = pcre:' . $T->path('header_checks'),
	    'smtpd_sender_login_maps = texthash:' . $T->path('logins'),
	    'dkim_signing_table = texthash:' . $T->path('signing'),
	    'dkim_key_table = texthash:' . $T->path('keytable'),
	    "dns_resolver = 127.0.0.1\@$DNS",
	    'authserv_id = relay.example.test'));
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

$T->start_smtp_sink;
my $PF = PostfixTest->new(dir => $T->dir, sink_port => $T->port('relay'),
    main => {
	smtpd_milters => "inet:127.0.0.1:$MPORT",
	milter_default_action => 'tempfail',
	milter_protocol => 6,
	mynetworks => '127.0.0.0/8',
	smtpd_relay_restrictions => 'permit_mynetworks, reject',
    });
$PF->start;
ok($PF->running, 'Postfix runs with smtpd_milters');

# swaks(FROM, SUBJECT, LOCAL ADDRESS, EXTRA HEADER) - one message to
# Postfix; returns swaks' transcript
sub swaks {
	my ($from, $subject, $local, @hdr) = @_;
	my @cmd = ('swaks', '--server', '127.0.0.1:' . $PF->port,
	    '--from', $from, '--to', 'bob@example.net', '--helo',
	    'client.example.test', '--h-Subject', $subject,
	    '--h-From', "<$from>", '--body', "Hello.\nSecond line.\n",
	    '--local-interface', $local, map { ('--add-header', $_) } @hdr);
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
write_file($file, $m);
for my $v ([ 'Mail::DKIM', $^X, "$HELPERS/dkim_verify.pl" ],
    [ 'dkimpy', $PYTHON, "$HELPERS/dkim_verify.py" ]) {
	my ($name, @cmd) = @$v;
	my $r = qx{'$cmd[0]' '$cmd[1]' --dns 127.0.0.1:$DNS '$file' 2>&1};
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

# --- (d) sender identity (MAIL binding), (f) the probe ---------------------

my $msg = $T->path('probe.eml');
write_file($msg, "From: <alice\@example.test>\nTo: bob\@example.net\n" .
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

# --- SIGTERM ---------------------------------------------------------------

my $t0 = time;
my $st = $T->stop('postern-milter');
my $took = time - $t0;
is($st, 0, 'SIGTERM: postern-milter exits 0');
cmp_ok($took, '<', 9, "SIGTERM: stopped in ${\ sprintf '%.1f', $took} s");

$PF->stop;
done_testing;

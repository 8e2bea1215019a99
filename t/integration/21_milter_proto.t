#!/usr/bin/perl
# 21_milter_proto.t - filters/milter_proto.c against real milters, through
# t/helpers/milter_client_probe (one message, Postfix's macros):
#
#   the Debian opendkim daemon in signing mode (RSA-2048 key made here,
#   published by dnsmasq) -> negotiates version 6 with ADDHDRS and
#   HDR_LEADSPC, inserts DKIM-Signature at index 0; the message with that
#   edit applied verifies with dkimpy and Mail::DKIM, and fails with both
#   once a body byte is changed; a second message (authenticated sender,
#   a 150 KB body in three chunks, folded headers) verifies too
#
#   t/helpers/bad_milter.pl -> hang: a timeout error; close mid-message:
#   "closed the connection"; garbage: "unknown milter reply code";
#   oversized length: refused at once; slow with progress at end of
#   message: progress restarts the wait; reject: the replycode with %%
#   undoubled. The probe never crashes or hangs (each run is timed).
#
# Needs /usr/sbin/opendkim, python3-dkim and python3-dnspython,
# libmail-dkim-perl, dnsmasq.
#
# SPDX-License-Identifier: ISC

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Time::HiRes qw(time);
use PosternTest qw(poll_until free_port slurp spew dkim_verify
    dkim_verifiers_unusable dkim_rsa_key);

my $TOP = "$FindBin::Bin/../..";
my $BUILD = $ENV{POSTERN_BUILD} // $TOP;
my $HELPERS = "$FindBin::Bin/../helpers";

plan skip_all => '/usr/sbin/opendkim is needed' unless -x '/usr/sbin/opendkim';
my $why = dkim_verifiers_unusable();
plan skip_all => $why if $why;

my $T = PosternTest->new(cert => 0, users => 0);

# probe - the built helper, or one compiled here from the sources
sub probe {
	my $built = "$BUILD/t/helpers/milter_client_probe";
	return $built if -x $built;
	my $bin = $T->path('milter_client_probe');
	my $lib = "$BUILD/libpostern.a";
	my $libs = qx{pkg-config --libs libevent libevent_openssl \\
	    libevent_pthreads libssl libcrypto libunbound libpcre2-8 \\
	    libxcrypt opendkim};
	chomp $libs;
	# the library may predate filters/milter.am
	my $proto = qx{nm '$lib' 2>/dev/null} =~ /T milter_pkt_optneg/ ?
	    '' : "'$TOP/filters/milter_proto.c'";
	my $out = qx{cc -std=gnu11 -pthread -I'$BUILD' -I'$TOP' \\
	    -I'$TOP/daemon' -I'$TOP/config' -I'$TOP/filters' -o '$bin' \\
	    '$HELPERS/milter_client_probe.c' $proto '$lib' $libs \\
	    -lspf2 -lresolv 2>&1};
	BAIL_OUT("cannot build milter_client_probe: $out") if $? != 0;
	return $bin;
}
my $PROBE = probe();

# run_probe(PORT, OPTIONS..., MESSAGE) - output, exit status, seconds
sub run_probe {
	my ($port, @args) = @_;
	my $msg = pop @args;
	my $t0 = time;
	my $cmd = join ' ', map { "'$_'" } 'timeout', '60', $PROBE, @args,
	    $port, $msg;
	my $out = qx{$cmd 2>&1};
	return ($out, $? >> 8, time - $t0);
}

# --- keys, DNS, opendkim -----------------------------------------------

my $KEY = $T->path('rsa.pem');
my $DNS = $T->start_dnsmasq('local=/example.org/',
    'txt-record=rsasel._domainkey.example.org,' . dkim_rsa_key($KEY));

# the helper dies on either failure: two tests, as when they were here
my $OD = eval { $T->start_opendkim(name => 'opendkim', socket => 'inet',
    domain => 'example.org', selector => 'rsasel', key => $KEY) };
my $od_err = $@;
unlike($od_err, qr/refuses its configuration/,
    'opendkim accepts the configuration') or diag $od_err;
ok($OD, 'opendkim listens on 127.0.0.1') or diag $od_err;
my $OD_PORT = $T->port('opendkim');

# verify(FILE) - [dkimpy status, output], [Mail::DKIM status, output]
sub verify {
	my ($file) = @_;
	return map { [ dkim_verify($file, $DNS, $_) ] } 'dkimpy', 'Mail::DKIM';
}

# --- 1. opendkim signs, the signature verifies -----------------------------

my $MSG1 = $T->path('msg1.eml');
spew($MSG1, "From: Alice <alice\@example.org>\n"
    . "To: Bob <bob\@example.net>,\n\tCarol <carol\@example.net>\n"
    . "Subject: milter probe\n"
    . "Date: Mon, 1 Jan 2024 00:00:00 +0000\n"
    . "Message-ID: <probe1\@example.org>\n\n"
    . "Hello Bob,\n\n.a dot line, trailing blanks  \n\ttab\n\n\n");
my $OUT1 = $T->path('out1.eml');
my ($out, $rc, $secs) = run_probe($OD_PORT, '-f', 'alice@example.org',
    '-r', 'bob@example.net', '-r', 'carol@example.net', '-o', $OUT1, $MSG1);
is($rc, 0, 'opendkim: the probe ends with an action') or diag $out;
like($out, qr/^negotiated version=6 actions=0x\w+ protocol=0x\w+$/m,
    'opendkim: version 6 negotiated');
my ($acts, $proto) = $out =~ /actions=0x(\w+) protocol=0x(\w+)/;
ok(defined $acts && (hex($acts) & 0x1), 'opendkim: asks for ADDHDRS');
ok(defined $proto && (hex($proto) & 0x100000),
    'opendkim: asks for HDR_LEADSPC');
like($out, qr/^modification\ insheader\ index=0\ name=DKIM-Signature
    \ value=\ v=1;\ a=rsa-sha256;.*d=example\.org;\ s=rsasel;/mx,
    'opendkim: inserts DKIM-Signature at the top, leading space kept');
like($out, qr/^action (accept|continue)$/m, 'opendkim: accepts');
unlike($out, qr/^error/m, 'opendkim: no error');
my $signed = slurp($OUT1);
like($signed, qr/\ADKIM-Signature: v=1; a=rsa-sha256;[^\n]*\r\n\t/,
    'opendkim: applied as the first field, "name: value", CRLF folding');
unlike($signed, qr/(?<!\r)\n/, 'opendkim: no bare LF in the result');
like($signed, qr/\r\nMessage-ID: <probe1\@example\.org>\r\n\r\nHello Bob/,
    'opendkim: rest of the message unchanged');
my ($py, $pl) = verify($OUT1);
is($py->[0], 0, 'opendkim signature: dkimpy passes') or diag $py->[1];
like($py->[1], qr/^pass d=example\.org s=rsasel a=rsa-sha256$/m,
    'opendkim signature: dkimpy d= s= a=');
is($pl->[0], 0, 'opendkim signature: Mail::DKIM passes') or diag $pl->[1];
like($pl->[1], qr/^pass d=example\.org s=rsasel/m,
    'opendkim signature: Mail::DKIM d= s=');

# a changed body byte must fail: the verifiers really verify
(my $tampered = $signed) =~ s/Hello Bob/Hello Bab/;
my $BAD = $T->path('tampered.eml');
spew($BAD, $tampered);
($py, $pl) = verify($BAD);
like($py->[1], qr/^fail d=example\.org/m, 'tampered: dkimpy fails');
like($pl->[1], qr/^fail d=example\.org/m, 'tampered: Mail::DKIM fails');

# --- 2. authenticated sender, a body of three chunks ------------------------

my $body = join '', map { sprintf "line %05d of a long body, %s\n", $_,
    'x' x 40 } 1 .. 2500;
my $MSG2 = $T->path('msg2.eml');
spew($MSG2, "From: alice\@example.org\nTo: bob\@example.net\n"
    . "Subject: a long\n one, folded\n twice\nX-Empty:\n\n$body");
my $OUT2 = $T->path('out2.eml');
($out, $rc) = run_probe($OD_PORT, '-f', 'alice@example.org', '-a', 'PLAIN',
    '-u', 'alice', '-o', $OUT2, $MSG2);
is($rc, 0, 'long body: the probe ends with an action') or diag $out;
ok(length($body) > 2 * 65535, 'long body: more than two chunks');
like($out, qr/^modification insheader index=0 name=DKIM-Signature /m,
    'long body: signed');
($py, $pl) = verify($OUT2);
is($py->[0], 0, 'long body: dkimpy passes') or diag $py->[1];
is($pl->[0], 0, 'long body: Mail::DKIM passes') or diag $pl->[1];

$T->stop('opendkim');

# --- 3. misbehaving milters --------------------------------------------------

my @BAD = (
	# mode, probe exit, output, max seconds
	[ 'hang', 1, qr/^error connect: timeout waiting for the milter$/m, 8 ],
	[ 'close', 1, qr/^error header: milter closed the connection$/m, 8 ],
	[ 'garbage', 1, qr/^error connect: unknown milter reply code$/m, 8 ],
	[ 'oversized', 1,
	    qr/^error connect: milter packet larger than the limit$/m, 1.4 ],
	[ 'reject', 0, qr/^action replycode 550 5\.7\.1 100% bad recipient$/m,
	    8 ],
	[ 'slow', 0, qr/^action continue$/m, 8 ],
);
for my $b (@BAD) {
	my ($mode, $want_rc, $want, $max) = @$b;
	my $port = free_port();
	$T->spawn("bad_$mode", $^X, "$HELPERS/bad_milter.pl", $port, $mode);
	ok(poll_until(sub { slurp($T->path("bad_$mode.log")) =~ /ready/ }, 10),
	    "$mode: stand-in listening");
	($out, $rc, $secs) = run_probe($port, '-t', '1500',
	    '-o', $T->path("out_$mode.eml"), $MSG1);
	is($rc, $want_rc, "$mode: probe exit status") or diag $out;
	like($out, $want, "$mode: reported") or diag $out;
	cmp_ok($secs, '<', $max, "$mode: no hang (${max}s)");
	unlike($out, qr/AddressSanitizer|runtime error:|Segmentation/,
	    "$mode: no crash");
	$T->stop("bad_$mode");
}

done_testing();

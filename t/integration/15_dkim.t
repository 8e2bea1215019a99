#!/usr/bin/perl
# 15_dkim.t - DKIM signing and verification through a real posternd,
# checked with three verifiers that share no code with Postern: dkimpy
# (t/helpers/dkim_verify.py), Perl Mail::DKIM (t/helpers/dkim_verify.pl,
# no ed25519: it must say "unsupported", never "pass") and libopendkim's
# own verifier (t/helpers/opendkim_verify, keys from a file). The keys are
# made with openssl at test time and published by dnsmasq (TXT records
# split into strings of at most 255 bytes).
#
# The signer (a posternd with smtp-sink as its relayhost, mynetworks
# 127.0.0.2/32) signs mail from a client in mynetworks (a session from
# 127.0.0.2) and from an authenticated submission client:
#
#   rsa-2048, ed25519, dual  -> the expected DKIM-Signature(s): d=, s=, a=,
#                               c=relaxed/relaxed, t= now, From oversigned,
#                               h= covering the default list; every
#                               verifier passes each signature
#   altered after signing    -> a body byte, a signed header: all fail
#   header_checks edits      -> PREPEND Reply-To, REPLACE Subject, REPLACE
#                               From (masquerading): signed as edited, by
#                               the keys of the From: that is sent
#   BDAT in odd chunks, no body, 8-bit, lower-case field names, a folded
#   From:                    -> signed, verifies
#   no key, bad key files    -> a warning per bad key at start; sent
#                               unsigned with "cannot sign" (accept), or
#                               451 4.7.5, a reject line with filter=dkim
#                               and nothing sent (tempfail)
#   key rotation on SIGHUP   -> old+new selector during the overlap, the
#                               new one alone afterwards; a root-only key
#                               (read at start) still signs after a reload
#   unauthenticated client   -> not signed (verified: dkim=none)
#
# The verifier (a second posternd, the client outside mynetworks and not
# authenticated) delivers to a Maildir with Authentication-Results:
# dkim=pass for what the signer signed, fail when altered, permerror
# without a key record, temperror when the DNS server refuses, none when
# unsigned; incoming Authentication-Results that claim its authserv-id
# (any case, with a comment, folded) are removed (logged), foreign ones
# stay.
#
# Needs /usr/bin/python3 with python3-dkim, python3-nacl and
# python3-dnspython, libmail-dkim-perl, and t/helpers/opendkim_verify
# (built by "make check"; compiled here with cc when the build tree has
# none).
#
# SPDX-License-Identifier: ISC

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use IO::Socket::IP;
use MIME::Base64 qw(encode_base64);
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(sleep time);
use PosternTest qw(reply_is poll_until like_diag split_message);

my $TOP = "$FindBin::Bin/../..";
my $BUILD = $ENV{POSTERN_BUILD} // $TOP;
my $HELPERS = "$FindBin::Bin/../helpers";
my $PYTHON = '/usr/bin/python3';
my $RUN_USER = $ENV{POSTERN_TEST_USER} // 'nobody';

plan skip_all => "$PYTHON with dkim, nacl and dns (python3-dkim, "
    . 'python3-nacl, python3-dnspython) is needed'
    unless system($PYTHON, '-c', 'import dkim, nacl, dns.query') == 0;
plan skip_all => 'Mail::DKIM (libmail-dkim-perl) is needed'
    unless eval { require Mail::DKIM::Verifier; 1 };

my $SIGNER_ID = 'signer.example.test';	# authserv_id of the signer
my $MX_ID = 'mx.example.test';		# authserv_id of the verifier

# --- environment: keys, DNS, tables -------------------------------------------

my $S = PosternTest->new(name => 'signer');
my $KEYS = $S->path('keys');
mkdir $KEYS or die "$KEYS: $!";
chmod 0755, $KEYS;

my $OPENDKIM_VERIFY = opendkim_verifier();

# the keys: name => [ algorithm, file, owner ]; rsanew is read only
# after a reload (rotation); root stays root's, mode 0600 (the others
# belong to the user posternd runs as)
my %KEY = (
	rsa => [ 'rsa', "$KEYS/rsa.pem" ],
	ed => [ 'ed25519', "$KEYS/ed.pem" ],
	rsanew => [ 'rsa', "$KEYS/rsanew.pem" ],
	root => [ 'ed25519', "$KEYS/root.pem", 'root' ],
);
my %PUB = map { $_ => make_key(@{ $KEY{$_} }) } sort keys %KEY;

# the broken keys: garbage text, a file that does not exist, a directory
my %BAD = (
	garbage => "$KEYS/garbage.pem",
	missing => "$KEYS/missing.pem",
	dir => "$KEYS/dir.pem",
);
write_file($BAD{garbage}, "-----BEGIN PRIVATE KEY-----\nnot a key\n"
    . "-----END PRIVATE KEY-----\n");
mkdir $BAD{dir};
give_to_run_user($BAD{garbage}, $BAD{dir});

# the published keys: selector._domainkey.domain => key name
my %DNS_KEYS = (
	'rsa2048._domainkey.rsa.example.org' => 'rsa',
	'rsanew._domainkey.rsa.example.org' => 'rsanew',
	'ed1._domainkey.ed.example.org' => 'ed',
	'rsasel._domainkey.example.org' => 'rsa',
	'edsel._domainkey.example.org' => 'ed',
	'rootsel._domainkey.root.example.org' => 'root',
);
my @records = ('local=/example.org/');
my $keyfile = '';
for my $name (sort keys %DNS_KEYS) {
	my $txt = $PUB{ $DNS_KEYS{$name} };
	my @parts = $txt =~ /(.{1,250})/g;
	push @records, "txt-record=$name," . join(',', map { qq("$_") } @parts);
	$keyfile .= "$name $txt\n";
}
my $DNS = $S->start_dnsmasq(@records);
my $KEYFILE = $S->path('dkim-keys.txt');
write_file($KEYFILE, $keyfile);

# key table lines: key name => "domain:selector:file"
my %KEYTABLE = (
	rsa => "rsa.example.org:rsa2048:$KEY{rsa}[1]",
	rsanew => "rsa.example.org:rsanew:$KEY{rsanew}[1]",
	ed => "ed.example.org:ed1:$KEY{ed}[1]",
	'dual-rsa' => "example.org:rsasel:$KEY{rsa}[1]",
	'dual-ed' => "example.org:edsel:$KEY{ed}[1]",
	root => "root.example.org:rootsel:$KEY{root}[1]",
	garbage => "garbage.example.org:bad:$BAD{garbage}",
	missing => "missing.example.org:gone:$BAD{missing}",
	dir => "dir.example.org:dir:$BAD{dir}",
);
my @SIGNING = (
	[ '*@rsa.example.org', 'rsa' ],
	[ '*@ed.example.org', 'ed' ],
	[ '*@example.org', 'dual-rsa' ],
	[ '*@example.org', 'dual-ed' ],
	[ '*@garbage.example.org', 'garbage' ],
	[ '*@missing.example.org', 'missing' ],
	[ '*@dir.example.org', 'dir' ],
	[ '*@root.example.org', 'root' ],
);
write_tables(\@SIGNING, [ grep { $_ ne 'rsanew' } sort keys %KEYTABLE ]);

my $HEADER_CHECKS = $S->path('header_checks');
write_file($HEADER_CHECKS, <<'EOF');
# Postfix header_checks
/^Subject: prepend-me\b/	PREPEND Reply-To: replies@example.org
/^Subject: replace-me\b/	REPLACE Subject: replaced by header_checks
/^From:.*@masq\.example\.net>/	REPLACE From: Masqueraded <sender@example.org>
/^From:.*<moved@ed\.example\.org>/	REPLACE From: <moved@rsa.example.org>
EOF

my %SIGNER_CONFIG = (
	%PosternTest::QUICK_DELIVERY,
	mynetworks => '127.0.0.2/32',
	smtpd_filters => 'relay, regex, dkim',
	header_checks => "pcre:$HEADER_CHECKS",
	dkim_signing_table => 'texthash:' . $S->path('signing'),
	dkim_key_table => 'texthash:' . $S->path('keytable'),
	dns_resolver => "127.0.0.1\@$DNS",
	authserv_id => $SIGNER_ID,
);

# --- local helpers ------------------------------------------------------------

sub write_file {
	my ($file, $text) = @_;
	open my $fh, '>:raw', $file or die "$file: $!";
	print $fh $text;
	close $fh or die "$file: $!";
}

# give_to_run_user(FILES) - as root, hand FILES to the user posternd runs
# as (it reads keys again on SIGHUP, after the privilege drop), mode
# 0600 for files, as an administrator installs a private key
sub give_to_run_user {
	for my $f (@_) {
		chmod((-d $f ? 0700 : 0600), $f);
		next unless $> == 0;
		my (undef, undef, $uid, $gid) = getpwnam($RUN_USER);
		chown $uid, $gid, $f if defined $uid;
	}
}

# make_key(ALGORITHM, FILE, OWNER) - a private key in FILE (PKCS#8 PEM),
# mode 0600, the run user's unless OWNER is root; returns its DNS record
# "v=DKIM1; k=...; p=..."
sub make_key {
	my ($alg, $file, $owner) = @_;
	my @gen = $alg eq 'rsa' ?
	    ('-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048') :
	    ('-algorithm', 'ED25519');
	system('openssl', 'genpkey', '-quiet', @gen, '-out', $file) == 0
	    or die "openssl genpkey $alg failed";
	my $der = qx{openssl pkey -in '$file' -pubout -outform DER};
	die "openssl pkey -pubout $file failed" if $? != 0 || !length $der;
	chmod 0600, $file;
	give_to_run_user($file) unless ($owner // '') eq 'root';
	# ed25519 (RFC 8463): the raw 32-byte key, the end of the SPKI DER
	return $alg eq 'rsa' ?
	    'v=DKIM1; k=rsa; p=' . encode_base64($der, '') :
	    'v=DKIM1; k=ed25519; p=' . encode_base64(substr($der, -32), '');
}

# opendkim_verifier - the built t/helpers/opendkim_verify, or one
# compiled here when the build tree has none
sub opendkim_verifier {
	my $built = "$BUILD/t/helpers/opendkim_verify";
	return $built if -x $built;
	my $bin = $S->path('opendkim_verify');
	my $flags = qx{pkg-config --cflags --libs opendkim};
	chomp $flags;
	my $out = qx{cc -std=gnu11 -I'$TOP' -I'$BUILD' -o '$bin' \\
	    '$HELPERS/opendkim_verify.c' $flags 2>&1};
	BAIL_OUT("cannot build opendkim_verify: $out") if $? != 0;
	return $bin;
}

# write_tables(SIGNING ROWS, KEY NAMES) - the signing table ([pattern,
# key] rows) and the key table (the named rows of %KEYTABLE)
sub write_tables {
	my ($signing, $keys) = @_;
	write_file($S->path('signing'), "# OpenDKIM SigningTable\n" .
	    join('', map { "$_->[0]\t$_->[1]\n" } @$signing));
	write_file($S->path('keytable'), "# OpenDKIM KeyTable\n" .
	    join('', map { "$_\t$KEYTABLE{$_}\n" } @$keys));
}

# message(FROM, ID, SUBJECT, EXTRA HEADERS...) - a message as sent after
# DATA (CRLF, dot-stuffed): a folded To:, Date, Message-ID <ID@client>,
# and a body that relaxed canonicalization must handle (a dot-stuffed
# line, trailing blanks, a tab, empty lines at the end)
sub message {
	my ($from, $id, $subject, @extra) = @_;
	return join '', map { "$_\r\n" }
	    "From: Sender Name <$from>",
	    "To: First <first\@example.net>,",
	    "\tSecond <second\@example.net>",
	    "Subject: $subject",
	    'Date: Sun, 29 Nov 2026 05:00:00 +0000',
	    "Message-ID: <$id\@client.example>",
	    'MIME-Version: 1.0',
	    @extra,
	    '',
	    'Hello,',
	    '',
	    '..a line that starts with a dot',
	    "trailing blanks   \t",
	    "a\ttab and  two spaces",
	    '-- ',
	    "the end of $id",
	    '', '';
}

# session_from(ENV, LOCAL ADDRESS) - an smtp session from LOCAL (e.g.
# 127.0.0.2, in mynetworks) to ENV's smtp listener; greeting and EHLO
# done. PosternTest::Client connects from 127.0.0.1 only, so the socket
# is made here and handed to it.
sub session_from {
	my ($t, $local) = @_;
	my $sock = IO::Socket::IP->new(LocalHost => $local,
	    PeerHost => '127.0.0.1', PeerPort => $t->port('smtp'),
	    Proto => 'tcp', Timeout => 5)
	    or die "connect from $local: $!";
	my $c = bless { port => $t->port('smtp'), timeout => 10, buf => '',
	    eof => 0, sock => $sock }, 'PosternTest::Client';
	my $g = $c->greeting;
	die 'no greeting' unless $g && $g->{code} == 220;
	my ($r) = $c->ehlo;
	die 'EHLO refused' unless $r && $r->{code} == 250;
	return $c;
}

# send_as(KIND, FROM, TO, TEXT, MAIL_ARGS) - one transaction to the signer; KIND
# "mynet" (a session from 127.0.0.2), "auth" (submission, STARTTLS,
# AUTH PLAIN as alice) or "plain" (127.0.0.1: neither); returns the
# final reply, undef when the session failed
sub send_as {
	my ($kind, $from, $to, $text, $margs) = @_;
	# a daemon that died fails the test that wanted the reply, and the
	# rest of the file still runs
	my $r = eval { send_as_or_die($kind, $from, $to, $text, $margs) };
	diag("send_as $kind <$from>: $@") if $@;
	return $r;
}

sub send_as_or_die {
	my ($kind, $from, $to, $text, $margs) = @_;
	my $c;
	if ($kind eq 'mynet') {
		$c = session_from($S, '127.0.0.2');
	} elsif ($kind eq 'auth') {
		$c = $S->session('submission');
		my $r = $c->starttls;
		die 'STARTTLS failed' unless $r && $r->{code} == 220 &&
		    $c->tls_ok;
		$c->ehlo;
		$r = $c->auth_plain('alice',
		    $PosternTest::USERS{alice}{password});
		die 'AUTH failed: ' . ($r ? $r->{last} : 'no reply')
		    unless $r && $r->{code} == 235;
	} else {
		$c = $S->session('smtp');
	}
	my ($r) = $c->transaction($from, $to, $text, $margs);
	$c->cmd('QUIT');
	$c->close;
	return $r;
}

# from_sink(ID, TIMEOUT) - the message with Message-ID <ID@...> as the
# sink got it, without the sink's own lines (LF line ends, the sink's
# trailing empty line removed); undef when it does not come
sub from_sink {
	my ($id, $timeout) = @_;
	my $re = qr/^Message-ID: <\Q$id\E\@/mi;
	my ($dump) = $S->wait_sink($re, $timeout // 15);
	return undef unless defined $dump;
	# smtp-sink may still be writing a large one: read it again once
	# posternd has logged its 250 (status=sent)
	my ($qid) = $dump =~ /\(Postern\) with E?SMTP\w* id (\w+)/;
	if (defined $qid && $S->wait_status($qid, qr/sent/, 15)) {
		($dump) = grep { $_ =~ $re } $S->sink_messages;
	}
	$dump =~ s/\A.*?^Received:[^\n]*(?:\n[ \t][^\n]*)*?\(smtp-sink\)
	    [^\n]*(?:\n[ \t][^\n]*)*\n//msx
	    or die "no smtp-sink Received in the dump:\n$dump";
	$dump =~ s/\n\n\z/\n/;
	return $dump;
}

# signatures(MESSAGE) - the DKIM-Signature fields, top to bottom, each a
# hash of its tags (folding whitespace removed)
sub signatures {
	my ($msg) = @_;
	my ($head) = split_message($msg);
	my @sigs;
	for my $l (@$head) {
		my ($v) = $l =~ /^DKIM-Signature:\s*(.*)$/i or next;
		my %tag;
		for my $t (split /;/, $v) {
			my ($k, $val) = $t =~ /^\s*([a-z]+)\s*=\s*(.*?)\s*$/s
			    or next;
			$val =~ s/\s+//g;
			$tag{$k} = $val;
		}
		push @sigs, \%tag;
	}
	return @sigs;
}

my $nfile = 0;

# run_verifier(KIND, MESSAGE) - (stdout lines, stderr) of one verifier
# (py, pl, c) on MESSAGE
sub run_verifier {
	my ($kind, $msg) = @_;
	my $file = $S->path('verify-' . ++$nfile . '.eml');
	write_file($file, $msg);
	my @cmd = $kind eq 'py' ?
	    ($PYTHON, "$HELPERS/dkim_verify.py", '--dns', "127.0.0.1:$DNS",
	    $file) : $kind eq 'pl' ?
	    ($^X, "$HELPERS/dkim_verify.pl", '--dns', "127.0.0.1:$DNS",
	    $file) : ($OPENDKIM_VERIFY, $KEYFILE, $file);
	my $err = "$file.$kind.err";
	my $pid = open(my $fh, '-|');
	die "fork: $!" unless defined $pid;
	if ($pid == 0) {
		open STDERR, '>', $err or POSIX::_exit(126);
		exec @cmd or POSIX::_exit(127);
	}
	my @out = <$fh>;
	close $fh;
	chomp @out;
	my $e = do { local (@ARGV, $/) = ($err); <> } // '';
	return (\@out, $e);
}

# the fields signed by default (RFC 6376 5.4.1's list, as libopendkim)
my @DEFAULT_SIGNED = qw(from reply-to subject date to cc resent-date
    resent-from resent-sender resent-to resent-cc in-reply-to references
    list-id list-help list-unsubscribe list-subscribe list-post list-owner
    list-archive);

my %VERIFIER = (py => 'dkimpy', pl => 'Mail::DKIM', c => 'libopendkim');

# verifiers_say(NAME, MESSAGE, WANT) - one test per verifier: the sorted
# lines it prints for MESSAGE are those of WANT, a list of [result, d,
# s, a]; a result "pass/unsupported" is "unsupported" for Mail::DKIM with
# ed25519 and "pass" for the others, likewise "fail/unsupported"
sub verifiers_say {
	my ($name, $msg, $want) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	for my $kind (qw(py pl c)) {
		my @w = sort map {
			my ($res, $d, $s, $a) = @$_;
			$res = $res =~ m{^(\w+)/unsupported$} ?
			    ($kind eq 'pl' && $a =~ /^ed25519/ ? 'unsupported' :
			    $1) : $res;
			"$res d=$d s=$s a=$a";
		} @$want;
		my ($out, $err) = run_verifier($kind, $msg);
		is_deeply([ sort @$out ], \@w, "$name: $VERIFIER{$kind} says "
		    . join(', ', map { (split ' ')[0] } @w))
		    or diag("stderr: $err");
	}
}

# signed_ok(NAME, MESSAGE, WANT) - MESSAGE carries exactly the signatures
# of WANT ([d, s, a] each), every one with v=1, c=relaxed/relaxed, bh=,
# b=, From twice in h= (oversigned) and t=; and every verifier passes
# them (Mail::DKIM: unsupported for ed25519). Tests: 2 + signatures + 3.
sub signed_ok {
	my ($name, $msg, $want) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	if (!defined $msg) {
		fail("$name: delivered to the sink") for 1 .. 2 + @$want + 3;
		diag($S->log_tail(15));
		return;
	}
	pass("$name: delivered to the sink");
	my @sigs = signatures($msg);
	is_deeply([ sort map { join ' ', @$_{qw(d s a)} } @sigs ],
	    [ sort map { join ' ', @$_ } @$want ],
	    "$name: DKIM-Signature d= s= a=") or diag($msg, log_of($msg));
	my %present = map { /^([^:]+):/ ? (lc $1 => 1) : () }
	    @{ (split_message($msg))[0] };
	my @should = grep { $present{$_} } @DEFAULT_SIGNED;
	for my $i (0 .. $#$want) {
		my $g = $sigs[$i] // {};
		my @h = map { lc } split /:/, $g->{h} // '';
		my %h = map { $_ => 1 } @h;
		my @missing = grep { !$h{$_} } @should;
		ok(($g->{v} // '') eq '1' &&
		    ($g->{c} // '') eq 'relaxed/relaxed' &&
		    ($g->{bh} // '') ne '' && ($g->{b} // '') ne '' &&
		    ($g->{t} // '') =~ /^\d+$/ && abs($g->{t} - time) < 600 &&
		    !exists $g->{x} && (grep { $_ eq 'from' } @h) == 2 &&
		    !@missing,
		    "$name: signature " . ($i + 1) . ' has v=1, '
		    . 'c=relaxed/relaxed, bh=, b=, t= about now, no x=, From '
		    . 'oversigned (twice in h=), h= covering '
		    . join(' ', @should)) or diag(explain($g),
		    @missing ? "not in h=: @missing\n" : '');
	}
	verifiers_say($name, $msg,
	    [ map { [ 'pass/unsupported', @$_ ] } @$want ]);
}

# log_of(MESSAGE) - the signer's log lines about MESSAGE (its queue ID
# from our Received), for diagnostics
sub log_of {
	my ($msg) = @_;
	my ($qid) = ($msg // '') =~ /\(Postern\) with E?SMTP\w* id (\w+)/;
	return "(no queue ID)\n" unless defined $qid;
	return join('', map { "$_\n" } grep { /\Q$qid\E/ } $S->log_lines);
}

# unsigned_ok(NAME, MESSAGE) - delivered, without DKIM-Signature: 2 tests
sub unsigned_ok {
	my ($name, $msg) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	ok(defined $msg, "$name: delivered to the sink")
	    or diag($S->log_tail(15));
	is(scalar(signatures($msg // '')), 0,
	    "$name: no DKIM-Signature") or diag($msg);
}

# reload(NAME) - SIGHUP the signer, wait for "reloaded configuration";
# one test
sub reload {
	my ($name) = @_;
	my $mark = $S->log_mark;
	kill 'HUP', $S->posternd_pid;
	my $l = $S->wait_for_log(qr/reloaded configuration|reload failed/,
	    10, $mark);
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	like_diag($l, qr/reloaded configuration/, "$name: SIGHUP reloaded",
	    $S->log_tail(10));
	return $mark;
}

# alter_body(MESSAGE) / alter_header(MESSAGE) - one body byte changed
# ("Hello," -> "Jello,"); the signed Subject changed
sub alter_body {
	my ($m) = @_;
	$m =~ s/^Hello,$/Jello,/m or die 'no body line to alter';
	return $m;
}

sub alter_header {
	my ($m) = @_;
	$m =~ s/^(Subject: .*)$/$1 (altered)/m or die 'no Subject to alter';
	return $m;
}

# --- the signer ---------------------------------------------------------------

$S->start_smtp_sink;
my $start_mark = $S->log_mark;
$S->start_posternd(config => \%SIGNER_CONFIG);

# --- 6. broken keys do not stop the configuration -----------------------------

for my $k (sort keys %BAD) {
	like_diag($S->wait_for_log(qr/\bkey \Q$k\E\b/, 2, $start_mark),
	    qr/\bkey \Q$k\E\b.*\Q$BAD{$k}\E/,
	    "start: a warning names the broken key $k ($BAD{$k})",
	    $S->log_tail(20));
}
{
	my ($st, $out) = $S->check_config(%SIGNER_CONFIG);
	is($st, 0, 'posternd -n: a configuration with broken keys is valid')
	    or diag($out);
	like($out, qr/\bgarbage\b.*\Q$BAD{garbage}\E/,
	    'posternd -n: and warns about the garbage key');
}

# --- 1. signing: rsa-2048, ed25519, dual; mynetworks and authenticated -------

my %WANT = (
	'rsa.example.org' => [ [ 'rsa.example.org', 'rsa2048', 'rsa-sha256' ] ],
	'ed.example.org' => [ [ 'ed.example.org', 'ed1', 'ed25519-sha256' ] ],
	'example.org' => [ [ 'example.org', 'rsasel', 'rsa-sha256' ],
	    [ 'example.org', 'edsel', 'ed25519-sha256' ] ],
);
my %LABEL = ('rsa.example.org' => 'rsa-2048', 'ed.example.org' => 'ed25519',
    'example.org' => 'dual');
my %SIGNED;	# "kind domain" => the message as the sink got it

for my $kind (qw(mynet auth)) {
	for my $dom ('rsa.example.org', 'ed.example.org', 'example.org') {
		my $id = "sign-$kind-$dom";
		my $name = "$LABEL{$dom} from " .
		    ($kind eq 'mynet' ? 'a mynetworks' : 'an authenticated') .
		    ' client';
		my $r = send_as($kind, "sender\@$dom", 'rcpt@example.net',
		    message("sender\@$dom", $id, "test $id",
		    'Cc: <copy@example.net>'));
		reply_is($r, 250, '2.0.0', "$name: accepted");
		my $m = from_sink($id);
		$SIGNED{"$kind $dom"} = $m;
		signed_ok($name, $m, $WANT{$dom});
	}
}

# a key only root can read, as many administrators install one: posternd
# reads it at start, before it drops privileges
my $ROOT_ONLY = $> == 0 && $RUN_USER ne 'root';
SKIP: {
	skip 'a root-only key needs a run as root', 6 unless $ROOT_ONLY;
	my $r = send_as('mynet', 'sender@root.example.org', 'rcpt@example.net',
	    message('sender@root.example.org', 'root-start', 'root key'));
	signed_ok('a root-only (0600) key at start', from_sink('root-start'),
	    [ [ 'root.example.org', 'rootsel', 'ed25519-sha256' ] ]);
}

# --- 2. altered after signing -------------------------------------------------

for my $dom ('rsa.example.org', 'ed.example.org', 'example.org') {
	my $m = $SIGNED{"auth $dom"} // '';
	my @want = map { [ 'fail/unsupported', @$_ ] } @{ $WANT{$dom} };
	verifiers_say("$LABEL{$dom}, a body byte changed after signing",
	    alter_body($m), \@want);
	verifiers_say("$LABEL{$dom}, the signed Subject changed after "
	    . 'signing', alter_header($m), \@want);
}

# --- 3. signing sees the edits of the filters before it -----------------------

{
	my $r = send_as('mynet', 'sender@example.org', 'rcpt@example.net',
	    message('sender@example.org', 'edit-prepend', 'prepend-me please'));
	reply_is($r, 250, '2.0.0', 'header_checks PREPEND: accepted');
	my $m = from_sink('edit-prepend');
	like($m // '', qr/^Reply-To: replies\@example\.org$/m,
	    'header_checks PREPEND: Reply-To added');
	signed_ok('header_checks PREPEND', $m, $WANT{'example.org'});
	my @h = map { [ split /:/, lc($_->{h} // '') ] } signatures($m // '');
	is(scalar(grep { grep { $_ eq 'reply-to' } @$_ } @h), 2,
	    'header_checks PREPEND: both signatures cover Reply-To (h=)')
	    or diag(explain(\@h));

	$r = send_as('auth', 'sender@rsa.example.org', 'rcpt@example.net',
	    message('sender@rsa.example.org', 'edit-replace',
	    'replace-me please'));
	reply_is($r, 250, '2.0.0', 'header_checks REPLACE: accepted');
	$m = from_sink('edit-replace');
	like($m // '', qr/^Subject: replaced by header_checks$/m,
	    'header_checks REPLACE: Subject replaced');
	unlike($m // '', qr/replace-me/, 'header_checks REPLACE: the old '
	    . 'Subject is gone');
	signed_ok('header_checks REPLACE', $m, $WANT{'rsa.example.org'});
	my ($sig) = signatures($m // '');
	like(lc($sig->{h} // ''), qr/(?:^|:)subject(?::|$)/,
	    'header_checks REPLACE: h= covers Subject');
}

# --- harder messages: a From: rewritten by header_checks, BDAT, no body,
# lower-case field names and a folded From: -----------------------------------

# bdat(KIND, FROM, TO, TEXT, CHUNK SIZES) - TEXT (not dot-stuffed) in BDAT
# chunks of the given sizes (the rest in the last one); the final reply
sub bdat {
	my ($kind, $from, $to, $text, @sizes) = @_;
	my $c = $kind eq 'mynet' ? session_from($S, '127.0.0.2') :
	    $S->session('smtp');
	my $r = $c->envelope($from, $to);
	return $r unless $r && $r->{code} == 250;
	my $off = 0;
	while ($off < length $text) {
		my $n = shift(@sizes) // length($text) - $off;
		$n = length($text) - $off if $off + $n > length $text;
		my $last = $off + $n == length $text ? ' LAST' : '';
		$c->send("BDAT $n$last\r\n" . substr($text, $off, $n));
		$off += $n;
		$r = $c->read_reply;
		last unless $r && $r->{code} == 250;
	}
	$c->cmd('QUIT');
	$c->close;
	return $r;
}

{
	# a masquerading rule rewrites From: to a domain that has keys: the
	# new From: chooses the keys (signing comes after header_checks)
	my $r = send_as('mynet', 'sender@masq.example.net', 'rcpt@example.net',
	    message('sender@masq.example.net', 'edit-from', 'masquerade'));
	reply_is($r, 250, '2.0.0', 'header_checks REPLACE From: accepted');
	my $m = from_sink('edit-from');
	like($m // '', qr/^From: Masqueraded <sender\@example\.org>$/m,
	    'header_checks REPLACE From: rewritten');
	signed_ok('header_checks REPLACE From: signed for the new From: '
	    . 'domain', $m, $WANT{'example.org'});

	# the same from a domain with a key to another one with a key
	$r = send_as('auth', 'moved@ed.example.org', 'rcpt@example.net',
	    message('moved@ed.example.org', 'edit-from-keyed', 'moved'));
	reply_is($r, 250, '2.0.0', 'header_checks REPLACE From: (keyed to '
	    . 'keyed): accepted');
	$m = from_sink('edit-from-keyed');
	like($m // '', qr/^From: <moved\@rsa\.example\.org>$/m,
	    'header_checks REPLACE From: (keyed to keyed): rewritten');
	signed_ok('header_checks REPLACE From: (keyed to keyed): signed for '
	    . 'the new domain only', $m, $WANT{'rsa.example.org'});

	# BDAT: a large body in odd chunks (the body is hashed as it streams)
	my $big = message('sender@example.org', 'bdat-big', 'bdat');
	$big =~ s/^\.\././mg;			# BDAT is not dot-stuffed
	my $lines = join '', map {
		sprintf("line %05d %s%s\r\n", $_, 'x' x ($_ % 70),
		    $_ % 7 ? '' : " \t ")
	} 1 .. 4000;
	$big =~ s/(\r\nHello,\r\n)/$1$lines/ or die;
	$r = eval { bdat('mynet', 'sender@example.org', 'rcpt@example.net',
	    $big, 1, 2, 3, 4093, 65536, 7, 100000) };
	diag("BDAT: $@") if $@;
	reply_is($r, 250, '2.0.0', 'BDAT, ' . length($big) . ' bytes in odd '
	    . 'chunks: accepted');
	signed_ok('BDAT, large body', from_sink('bdat-big'),
	    $WANT{'example.org'});

	# no body at all
	my $empty = message('sender@example.org', 'empty-body', 'no body');
	$empty =~ s/\r\n\r\n.*\z/\r\n/s or die;
	$r = send_as('auth', 'sender@example.org', 'rcpt@example.net', $empty);
	reply_is($r, 250, '2.0.0', 'no body: accepted');
	signed_ok('no body', from_sink('empty-body'), $WANT{'example.org'});

	# 8-bit: UTF-8 in the body and a raw UTF-8 Subject, BODY=8BITMIME
	my $utf8 = message('sender@example.org', 'eight-bit',
	    "gr\xc3\xbc\xc3\x9fe \xe2\x9c\x93", 'Content-Type: text/plain; '
	    . 'charset=utf-8', 'Content-Transfer-Encoding: 8bit');
	$utf8 =~ s/^Hello,/Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln,/m or die;
	$utf8 =~ s/^(the end of [^\r]*)/$1 \xe6\x97\xa5\xe6\x9c\xac/m or die;
	$r = send_as('auth', 'sender@example.org', 'rcpt@example.net', $utf8,
	    'BODY=8BITMIME');
	reply_is($r, 250, '2.0.0', '8-bit body and Subject: accepted');
	$m = from_sink('eight-bit');
	like($m // '', qr/K\xc3\xb6ln/, '8-bit: the body arrives unchanged');
	signed_ok('8-bit body and Subject', $m, $WANT{'example.org'});

	# lower-case field names, From: folded with a quoted display name
	my $odd = message('sender@ed.example.org', 'odd-fields', 'odd');
	my $folded = "from: \"Sender, the\r\n\t(first)\" "
	    . "<SENDER\@Ed.Example.Org>\r\n";
	$odd =~ s/^From: [^\r]*\r\n/$folded/m or die;
	$odd =~ s/^Subject:/subject:/m or die;
	$r = send_as('auth', 'sender@ed.example.org', 'rcpt@example.net', $odd);
	reply_is($r, 250, '2.0.0', 'lower-case field names, folded From: '
	    . 'accepted');
	signed_ok('lower-case field names, folded From:',
	    from_sink('odd-fields'), $WANT{'ed.example.org'});
}

# --- an unauthenticated client outside mynetworks is not signed ---------------

{
	my $r = send_as('plain', 'sender@example.org', 'local@example.test',
	    message('sender@example.org', 'plain-local', 'from outside'));
	reply_is($r, 250, '2.0.0', 'unauthenticated client to a local '
	    . 'recipient: accepted');
	my ($m) = $S->wait_message('local', qr/plain-local\@client/, 15);
	ok(defined $m, 'unauthenticated client: delivered to the Maildir');
	is(scalar(signatures($m // '')), 0, 'unauthenticated client: '
	    . 'not signed') or diag($m);
	like($m // '',
	    qr/^Authentication-Results: \Q$SIGNER_ID\E;\s+dkim=none/m,
	    'unauthenticated client: verified instead (dkim=none)');
	$r = send_as('plain', 'sender@example.org', 'rcpt@example.net',
	    message('sender@example.org', 'plain-relay', 'relay attempt'));
	reply_is($r, 554, '5.7.1', 'unauthenticated client: no relaying '
	    . '(control)');
}

# --- 4 and 6. no key, broken keys: dkim_sign_failure_action = accept ----------

my %CANNOT = (
	'no-from.example.org' => qr/no From: address/,
	'nokey.example.net' => qr/no signing key/,
	'garbage.example.org' => qr/\bkey garbage\b/,
	'missing.example.org' => qr/\bkey missing\b/,
	'dir.example.org' => qr/\bkey dir\b/,
);
# unsignable(DOMAIN, ID, SUBJECT) - message() from sender@DOMAIN; for
# no-from.example.org, without a From: field
sub unsignable {
	my ($dom, $id, $subject) = @_;
	my $m = message("sender\@$dom", $id, $subject);
	$m =~ s/^From: [^\r]*\r\n//m if $dom eq 'no-from.example.org';
	return $m;
}

for my $dom (sort keys %CANNOT) {
	my $id = "accept-$dom";
	my $mark = $S->log_mark;
	my $r = send_as('mynet', "sender\@$dom", 'rcpt@example.net',
	    unsignable($dom, $id, "unsignable $id"));
	reply_is($r, 250, '2.0.0', "accept: mail from $dom accepted");
	my $qid = PosternTest::qid_of($r) // 'NOQID';
	unsigned_ok("accept: mail from $dom", from_sink($id));
	like_diag($S->wait_for_log(qr/cannot sign/, 5, $mark),
	    qr/\Q$qid\E: .*cannot sign: .*$CANNOT{$dom}/,
	    "accept: \"$qid: ... cannot sign\" logged for $dom",
	    $S->log_tail(10));
}

# --- 7. inbound verification ----------------------------------------------

my $V = PosternTest->instance(name => 'verifier', config => {
	mynetworks => '192.0.2.0/24',
	smtpd_filters => 'relay, dkim',
	dns_resolver => "127.0.0.1\@$DNS",
	authserv_id => $MX_ID,
	dkim_dns_timeout => '3s',
});

# wire(MESSAGE) - a message from the sink as sent after DATA: CRLF line
# ends, dot-stuffed
sub wire {
	my ($m) = @_;
	my @l = split /\n/, $m, -1;
	pop @l if @l && $l[-1] eq '';
	return join '', map { (/^\./ ? ".$_" : $_) . "\r\n" } @l;
}

# deliver_inbound(TEXT, ID) - send TEXT to inbox@example.test at the
# verifier from 127.0.0.1; returns (reply, the delivered message)
sub deliver_inbound {
	my ($text, $id) = @_;
	my ($r) = eval {
		my $c = $V->session('smtp');
		my @r = $c->transaction('sender@example.org',
		    'inbox@example.test', $text);
		$c->cmd('QUIT');
		$c->close;
		@r;
	};
	diag("deliver_inbound $id: $@") if $@;
	my ($m) = $V->wait_message('inbox', qr/^Message-ID: <\Q$id\E\@/mi,
	    15);
	return ($r, $m);
}

# our_results(MESSAGE) - the Authentication-Results fields that name our
# authserv-id, unfolded
sub our_results {
	my ($m) = @_;
	my ($head) = split_message($m // '');
	return grep { /^Authentication-Results:\s*\Q$MX_ID\E\s*;/i } @$head;
}

# dkim_results(FIELD) - the "dkim=..." results of one field, whitespace
# squeezed
sub dkim_results {
	my ($f) = @_;
	my (undef, @parts) = split /;/, $f;
	return map { s/\s+/ /gr =~ s/^ | $//gr } grep { /^\s*dkim=/ } @parts;
}

{
	my $signed = $SIGNED{'auth example.org'} // '';
	my ($r, $m) = deliver_inbound(wire($signed),
	    'sign-auth-example.org');
	reply_is($r, 250, '2.0.0', 'inbound signed (dual): accepted');
	my @ar = our_results($m);
	is(scalar @ar, 1, 'inbound signed: one Authentication-Results '
	    . "from $MX_ID") or diag($m // '(not delivered)');
	my @res = dkim_results($ar[0] // '');
	is(scalar @res, 2, 'inbound signed: a result per signature')
	    or diag(explain(\@res));
	for my $s (qw(rsasel edsel)) {
		ok((grep { /^dkim=pass\b.*\bheader\.d=example\.org\b/ &&
		    /\bheader\.s=\Q$s\E\b/ } @res) == 1,
		    "inbound signed: dkim=pass header.d=example.org "
		    . "header.s=$s") or diag(explain(\@res));
	}

	($r, $m) = deliver_inbound(wire($SIGNED{'mynet ed.example.org'} //
	    ''), 'sign-mynet-ed.example.org');
	reply_is($r, 250, '2.0.0', 'inbound signed (ed25519): accepted');
	@res = dkim_results((our_results($m))[0] // '');
	like_diag(join(' | ', @res),
	    qr/^dkim=pass\b.*\bheader\.d=ed\.example\.org\b.*\bheader\.s=ed1\b/,
	    'inbound signed (ed25519): dkim=pass header.d=ed.example.org '
	    . 'header.s=ed1', $m);

	# a body byte changed (and the Message-ID, which is not signed, so
	# that the Maildir has two messages to tell apart)
	my $bad = alter_body($signed);
	$bad =~ s/<sign-auth-example\.org\@/<altered-body\@/ or die;
	($r, $m) = deliver_inbound(wire($bad), 'altered-body');
	reply_is($r, 250, '2.0.0', 'inbound altered body: accepted');
	@res = dkim_results((our_results($m))[0] // '');
	is(scalar(grep { /^dkim=fail\b/ } @res), 2,
	    'inbound altered body: dkim=fail for both signatures')
	    or diag(explain(\@res), $m // '(not delivered)');

	$bad = alter_header($SIGNED{'auth rsa.example.org'} // '');
	($r, $m) = deliver_inbound(wire($bad), 'sign-auth-rsa.example.org');
	reply_is($r, 250, '2.0.0', 'inbound altered Subject: accepted');
	@res = dkim_results((our_results($m))[0] // '');
	like_diag(join(' | ', @res),
	    qr/^dkim=fail\b.*\bheader\.d=rsa\.example\.org\b
	    .*\bheader\.s=rsa2048\b/x,
	    'inbound altered Subject (rsa): dkim=fail header.d=rsa.example.org '
	    . 'header.s=rsa2048', $m);

	# a selector that has no key record: permerror (RFC 8601 2.7.1)
	$bad = $SIGNED{'mynet rsa.example.org'} // '';
	$bad =~ s/\bs=rsa2048;/s=nosuchsel;/ or diag('no s=rsa2048 to change');
	($r, $m) = deliver_inbound(wire($bad), 'sign-mynet-rsa.example.org');
	reply_is($r, 250, '2.0.0', 'inbound, no key record: accepted');
	@res = dkim_results((our_results($m))[0] // '');
	like_diag(join(' | ', @res),
	    qr/^dkim=permerror\b.*\bheader\.s=nosuchsel\b/,
	    'inbound, no key record for the selector: dkim=permerror', $m);

	# a domain the DNS server refuses to answer for: temperror
	$bad = $SIGNED{'mynet ed.example.org'} // '';
	$bad =~ s/\bd=ed\.example\.org;/d=refused.example.net;/
	    or diag('no d=ed.example.org to change');
	$bad =~ s/<sign-mynet-ed\.example\.org\@/<refused-domain\@/ or die;
	($r, $m) = deliver_inbound(wire($bad), 'refused-domain');
	reply_is($r, 250, '2.0.0', 'inbound, key lookup refused: accepted');
	@res = dkim_results((our_results($m))[0] // '');
	like_diag(join(' | ', @res),
	    qr/^dkim=temperror\b.*\bheader\.d=refused\.example\.net\b/,
	    'inbound, the DNS server refuses the key lookup: dkim=temperror',
	    $m);

	# malformed signatures must not hurt the daemon, nor pass: a z= of
	# 33 KB (libopendkim's dkim_ohdrs() overflows on those), no tags at
	# all, an unknown algorithm, an empty b=
	my $z = join "\r\n\t", map { 'A' x 1000 } 1 .. 33;
	my @malformed = (
	    [ 'huge z=', "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;"
		. "\r\n\td=example.org; s=rsasel; h=From; bh=AAAA; b=AAAA;"
		. "\r\n\tz=$z" ],
	    [ 'no tags', 'DKIM-Signature: garbage' ],
	    [ 'unknown a=', 'DKIM-Signature: v=1; a=rsa-sha999; '
		. 'd=example.org; s=rsasel; h=From; bh=AAAA; b=AAAA' ],
	    [ 'empty b=', 'DKIM-Signature: v=1; a=rsa-sha256; '
		. 'd=example.org; s=rsasel; h=From; bh=AAAA; b=' ],
	);
	for my $i (0 .. $#malformed) {
		my ($what, $field) = @{ $malformed[$i] };
		($r, $m) = deliver_inbound(message('sender@example.org',
		    "malformed-$i", "malformed $what", $field),
		    "malformed-$i");
		reply_is($r, 250, '2.0.0', "inbound, malformed signature "
		    . "($what): accepted");
		@res = dkim_results((our_results($m))[0] // '');
		like_diag(join(' | ', @res),
		    qr/^dkim=(?:neutral|permerror|fail|policy)\b/,
		    "inbound, malformed signature ($what): dkim=neutral, "
		    . 'permerror, fail or policy', $m);
	}
	ok($V->is_running, 'verifier: still running after the malformed '
	    . 'signatures');

	($r, $m) = deliver_inbound(message('sender@example.org',
	    'inbound-unsigned', 'not signed'), 'inbound-unsigned');
	reply_is($r, 250, '2.0.0', 'inbound unsigned: accepted');
	@ar = our_results($m);
	is(scalar @ar, 1, 'inbound unsigned: one Authentication-Results');
	like($ar[0] // '',
	    qr/^Authentication-Results:\s*\Q$MX_ID\E;\s*dkim=none\s*$/i,
	    'inbound unsigned: dkim=none');

	my $mark = $V->log_mark;
	($r, $m) = deliver_inbound(message('sender@example.org',
	    'inbound-forged', 'forged results',
	    "Authentication-Results: $MX_ID; dkim=pass header.d=example.org",
	    'Authentication-Results: ' . uc($MX_ID) . ' (comment);',
	    "\tdkim=pass header.d=example.org header.s=forged",
	    'Authentication-Results: other.example; dkim=pass '
	    . 'header.d=example.org'), 'inbound-forged');
	reply_is($r, 250, '2.0.0', 'inbound forged: accepted');
	@ar = our_results($m);
	is(scalar @ar, 1, "inbound forged: one Authentication-Results from "
	    . "$MX_ID is left (ours)") or diag($m // '(not delivered)');
	like($ar[0] // '', qr/dkim=none/, 'inbound forged: and it is ours '
	    . '(dkim=none), the forged dkim=pass fields are gone');
	unlike($m // '', qr/header\.s=forged/, 'inbound forged: the folded, '
	    . 'upper-case, commented one is gone too');
	like($m // '', qr/^Authentication-Results: other\.example; dkim=pass /m,
	    'inbound forged: a foreign authserv-id stays');
	like_diag($V->wait_for_log(qr/removed \d+ Authentication-Results/, 5,
	    $mark), qr/removed 2 Authentication-Results fields? .*\Q$MX_ID\E/,
	    'inbound forged: "removed 2 Authentication-Results fields" '
	    . 'logged', $V->log_tail(10));
}

# --- 5. key rotation without a restart -----------------------------------

{
	# the overlap: the old and the new selector both sign
	my @signing = map { $_->[0] eq '*@rsa.example.org' ?
	    ($_, [ '*@rsa.example.org', 'rsanew' ]) : $_ } @SIGNING;
	write_tables(\@signing, [ sort keys %KEYTABLE ]);
	reload('rotation, overlap');
	my $r = send_as('auth', 'sender@rsa.example.org', 'rcpt@example.net',
	    message('sender@rsa.example.org', 'rotate-overlap', 'overlap'));
	reply_is($r, 250, '2.0.0', 'rotation, overlap: accepted');
	signed_ok('rotation, overlap', from_sink('rotate-overlap'), [
	    [ 'rsa.example.org', 'rsa2048', 'rsa-sha256' ],
	    [ 'rsa.example.org', 'rsanew', 'rsa-sha256' ] ]);

	# the old selector retired
	@signing = map { $_->[0] eq '*@rsa.example.org' ?
	    [ '*@rsa.example.org', 'rsanew' ] : $_ } @SIGNING;
	write_tables(\@signing, [ grep { $_ ne 'rsa' } sort keys %KEYTABLE ]);
	reload('rotation, retired');
	$r = send_as('mynet', 'sender@rsa.example.org', 'rcpt@example.net',
	    message('sender@rsa.example.org', 'rotate-new', 'new only'));
	reply_is($r, 250, '2.0.0', 'rotation, retired: accepted');
	signed_ok('rotation, retired', from_sink('rotate-new'),
	    [ [ 'rsa.example.org', 'rsanew', 'rsa-sha256' ] ]);

	# the root-only key was not in the rotation: a reload must not stop
	# it from signing (the TLS key is kept the same way, with a warning)
	SKIP: {
		skip 'a root-only key needs a run as root', 6 unless $ROOT_ONLY;
		$r = send_as('mynet', 'sender@root.example.org',
		    'rcpt@example.net', message('sender@root.example.org',
		    'root-reload', 'root key after reload'));
		signed_ok('the unchanged root-only key after two reloads',
		    from_sink('root-reload'),
		    [ [ 'root.example.org', 'rootsel', 'ed25519-sha256' ] ]);
	}

	# the other keys were not disturbed by the reloads
	$r = send_as('mynet', 'sender@example.org', 'rcpt@example.net',
	    message('sender@example.org', 'rotate-dual', 'dual after'));
	signed_ok('dual after two reloads', from_sink('rotate-dual'),
	    $WANT{'example.org'});
}

# --- 4 and 6. dkim_sign_failure_action = tempfail -------------------------

{
	$S->write_config(%SIGNER_CONFIG,
	    dkim_sign_failure_action => 'tempfail');
	reload('tempfail');
	my @sent;
	for my $dom (sort keys %CANNOT) {
		my $id = "tempfail-$dom";
		my $mark = $S->log_mark;
		for my $kind (qw(mynet auth)) {
			my $m = $S->log_mark;
			my $r = send_as($kind, "sender\@$dom",
			    'rcpt@example.net',
			    unsignable($dom, "$id-$kind", "tf $id"));
			reply_is($r, 451, '4.7.5', "tempfail: mail from $dom "
			    . "($kind) gets 451 4.7.5");
			push @sent, "$id-$kind";
			# doc/logging.md: filter= names the filter that decided
			like_diag($S->wait_for_log(
			    qr/reject: END-OF-MESSAGE .*from=<sender\@\Q$dom\E>/
			    ,
			    5, $m),
			    qr/: 451 4\.7\.5 .* filter=dkim$/,
			    "tempfail: the reject log line for $dom ($kind) "
			    . 'says filter=dkim', $S->log_tail(10));
		}
		like_diag($S->wait_for_log(qr/cannot sign/, 5, $mark),
		    qr/cannot sign: .*$CANNOT{$dom}.*deferred/,
		    "tempfail: \"cannot sign ... deferred\" logged for $dom",
		    $S->log_tail(10));
	}
	# a control sent last: once it has arrived, nothing refused before
	# it is still on its way
	my $r = send_as('mynet', 'sender@example.org', 'rcpt@example.net',
	    message('sender@example.org', 'tempfail-control', 'control'));
	reply_is($r, 250, '2.0.0', 'tempfail: a signable message is still '
	    . 'accepted');
	signed_ok('tempfail, signable', from_sink('tempfail-control'),
	    $WANT{'example.org'});
	my @leaked = grep { my $id = $_;
	    grep { /^Message-ID: <\Q$id\E\@/mi } $S->sink_messages } @sent;
	is_deeply(\@leaked, [], 'tempfail: none of the refused messages '
	    . 'reached the sink');
	my $spool;
	ok(poll_until(sub {
		$spool = $S->spool_files;
		return !grep { @{ $spool->{$_} } } keys %$spool;
	}, 10), 'tempfail: nothing left in the spool') or diag(explain($spool));
}

# --- 8. clean exits, sanitizers quiet -------------------------------------

ok($S->is_running, 'signer: still running');
ok($V->is_running, 'verifier: still running');
PosternTest->finish_all_ok;

done_testing;

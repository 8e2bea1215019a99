#!/usr/bin/perl
# 22_policy.t - the policy delegation client (filter "policy",
# policies/policy_client.c) against real Debian policy servers and a
# stand-in for faults:
#
# - a stand-in (t/helpers/policy_standin.pl) answering per recipient:
#   the attributes of RCPT and END-OF-MESSAGE requests, every access(5)
#   action end to end, an unknown action, connection reuse across
#   sessions, a cached connection the service closed; the faults no real
#   server produces (never answers, closes mid-answer, garbage, an endless
#   line): each gets smtpd_policy_service_default_action, the daemon keeps
#   serving and earlier mail is delivered; a DUNNO default action, an
#   unreachable service, max_idle; two services in order (OK,
#   DEFER_IF_PERMIT, DEFER_IF_REJECT and PREPEND across them);
# - postgrey: the first attempt is greylisted (450), a retry after the
#   delay passes and carries postgrey's X-Greylist header;
# - policyd-spf (postfix-policyd-spf-python) behind a spawn(8)-like TCP
#   wrapper (t/helpers/policy_spawn.pl). It uses the system resolver, not
#   the test's DNS, so only a check that needs no DNS is made: the HELO
#   identity of an IP-literal HELO with the null sender ("None").
#
# SPDX-License-Identifier: ISC

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Time::HiRes qw(time sleep);
use PosternTest qw(reply_is poll_until free_port like_diag simple_message);

my $HELPERS = "$FindBin::Bin/../helpers";
my $is_root = $> == 0;

sub slurp {
	my ($f) = @_;
	open my $fh, '<', $f or return '';
	local $/;
	return <$fh>;
}

sub set_actions {
	my ($dir, %a) = @_;
	open my $fh, '>', "$dir/actions.tmp" or die $!;
	print $fh map { "$_ $a{$_}\n" } sort keys %a;
	close $fh;
	rename "$dir/actions.tmp", "$dir/actions" or die $!;
}

sub connects {
	my ($dir) = @_;
	my @c = slurp("$dir/log") =~ /^connect (\d+)$/mg;
	return scalar @c;
}

sub requests {
	my ($dir) = @_;
	return [ slurp("$dir/log") =~ /^request (.*)$/mg ];
}

# one transaction in a new session; (RCPT or final reply, queue ID)
sub send_one {
	my ($t, $to, $subject, %o) = @_;
	my $c = $t->session('smtp', $o{helo} ? (helo => $o{helo}) : ());
	my $from = $o{from} // 'sender@client.example';
	my ($r, $qid) = $c->transaction($from, $to,
	    simple_message($subject, $from, ref $to ? $to->[0] : $to));
	$c->cmd('QUIT');
	$c->close;
	return ($r, $qid);
}

# ---- the stand-in ------------------------------------------------------

my $t = PosternTest->new(cert => 1, users => 0);
my $sdir = $t->path('standin');
mkdir $sdir or die $!;
my $sport = free_port();
$t->spawn('standin', $^X, "$HELPERS/policy_standin.pl", '--port', $sport,
    '--dir', $sdir);
poll_until(sub { slurp("$sdir/log") =~ /^READY$/m }, 10)
    or BAIL_OUT('policy stand-in did not start');

$t->start_posternd(config => {
	%PosternTest::QUICK_DELIVERY,
	mynetworks => '192.0.2.0/24',
	smtpd_sasl_password_maps => undef,
	listen => 'smtp/127.0.0.1:' . $t->port('smtp'),
	smtpd_filters => 'relay, policy',
	smtpd_policy_services => "inet:127.0.0.1:$sport",
	smtpd_policy_service_timeout => '1s',
	smtpd_policy_service_try_limit => 2,
	smtpd_policy_service_end_of_data => 'yes',
});

set_actions($sdir,
    'reject@example.test' => 'REJECT 5.7.1 go away',
    'reject2@example.test' => 'reject',
    'defer@example.test' => 'DEFER come back later',
    'code550@example.test' => '550 5.7.23 Message rejected due to: SPF fail',
    'code450@example.test' => '450 4.2.0 slow down',
    'bye@example.test' => '421 4.7.0 closing',
    'difp@example.test' => 'DEFER_IF_PERMIT Greylisted, try later',
    'difr@example.test' => 'DEFER_IF_REJECT maybe',
    'hold@example.test' => 'HOLD look at it',
    'discard@example.test' => 'DISCARD drop it',
    'prepend@example.test' => 'PREPEND X-Policy-Test: prepended value',
    'redirect@example.test' => 'REDIRECT other@example.test',
    'bcc@example.test' => 'BCC audit@example.test',
    'warn@example.test' => 'WARN odd recipient',
    'ok@example.test' => 'OK',
    'filter@example.test' => 'FILTER smtp:[127.0.0.1]:1',
    'unknown@example.test' => 'reject_unknown_client_hostname',
    'eom:eomreject@example.test' => '554 5.7.1 not at end of data',
    'hang@example.test' => 'HANG',
    'closemid@example.test' => 'CLOSE_MID',
    'garbage@example.test' => 'GARBAGE',
    'endless@example.test' => 'ENDLESS',
    'close@example.test' => 'CLOSE',
    'closeafter@example.test' => 'CLOSE_AFTER',
);

# -- the request attributes
{
	my $mark = $t->log_mark;
	my ($r, $qid) = send_one($t, 'dunno@example.test', 'attrs',
	    helo => 'client.example');
	reply_is($r, 250, '2.0.0', 'DUNNO: accepted');
	ok(scalar $t->wait_maildir('dunno', 1, 10), 'DUNNO: delivered');
	my @req = @{ requests($sdir) };
	my ($rcpt) = grep { /protocol_state=RCPT / &&
	    /recipient=dunno\@example.test / } @req;
	my ($eom) = grep { /protocol_state=END-OF-MESSAGE / &&
	    /recipient=dunno\@example.test / } @req;
	ok($rcpt, 'RCPT request seen') or diag(join "\n", @req);
	for my $want ('request=smtpd_access_policy', 'protocol_name=ESMTP',
	    'client_address=127.0.0.1', 'helo_name=client.example',
	    'sender=sender@client.example', 'recipient_count=0',
	    'queue_id= ', 'sasl_username= ', 'encryption_protocol= ',
	    'reverse_client_name=', 'ccert_subject=', 'stress=') {
		like_diag($rcpt, qr/(?:^| )\Q$want\E/, "RCPT request: $want");
	}
	like_diag($rcpt, qr/ client_port=\d+ /, 'RCPT request: client_port');
	ok($eom, 'END-OF-MESSAGE request seen') or diag(join "\n", @req);
	like_diag($eom, qr/ recipient_count=1 /, 'EOM request: recipient_count');
	like_diag($eom, qr/ queue_id=\Q$qid\E /, 'EOM request: queue_id')
	    if defined $qid;
	like_diag($eom, qr/ size=[1-9]\d* /, 'EOM request: size');
	my ($i1) = ($rcpt // '') =~ / instance=(\S+)/;
	my ($i2) = ($eom // '') =~ / instance=(\S+)/;
	ok(defined $i1 && defined $i2 && $i1 eq $i2,
	    'one instance value per transaction');

	# a second transaction in the same session gets another instance
	my $c = $t->session('smtp');
	$c->send_simple('a@client.example', 'dunno@example.test', 'i1');
	$c->send_simple('a@client.example', 'dunno@example.test', 'i2');
	$c->cmd('QUIT');
	$c->close;
	my %inst = map { / instance=(\S+)/ ? ($1 => 1) : () }
	    @{ requests($sdir) };
	is(scalar keys %inst, 3, 'three transactions, three instances');
}

# -- every action
my @cases = (
	[ 'reject@example.test', 554, '5.7.1', qr/go away/ ],
	[ 'reject2@example.test', 554, '5.7.1', qr/Access denied/ ],
	[ 'defer@example.test', 450, '4.7.1', qr/come back later/ ],
	[ 'code550@example.test', 550, '5.7.23', qr/SPF fail/ ],
	[ 'code450@example.test', 450, '4.2.0', qr/slow down/ ],
	[ 'difp@example.test', 450, '4.7.1', qr/Greylisted/ ],
	[ 'unknown@example.test', 451, '4.3.5',
	    qr/Server configuration problem/ ],
);
for my $case (@cases) {
	my ($to, $code, $ecode, $re) = @$case;
	my ($r) = send_one($t, $to, "case $to");
	reply_is($r, $code, $ecode, $re, "$to: $code $ecode");
}
my $unknown_re = "policy service inet:127\\.0\\.0\\.1:$sport: " .
    'unknown action "reject_unknown_client_hostname"';
like_diag($t->wait_for_log(qr/$unknown_re/),
    qr/smtpd_policy_service_default_action/, 'unknown action logged',
    $t->log_tail(10));
like_diag($t->wait_for_log(qr/reject: RCPT .*reject\@example\.test/),
    qr/: 554 5\.7\.1 go away; .* filter=policy$/,
    'reject logged with the filter', $t->log_tail(10));

{
	my $c = $t->session('smtp');
	my $r = $c->envelope('s@client.example', 'bye@example.test');
	reply_is($r, 421, '4.7.0', qr/closing/, '421: reply');
	ok($c->is_closed(5), '421: connection closed');
	$c->close;
}

# DEFER_IF_REJECT alone does nothing
{
	my ($r) = send_one($t, 'difr@example.test', 'difr');
	reply_is($r, 250, '2.0.0', 'DEFER_IF_REJECT alone: accepted');
	ok(scalar $t->wait_maildir('difr', 1, 10), 'DEFER_IF_REJECT: delivered');
}

# OK, WARN, FILTER: accepted and delivered
for my $u (qw(ok warn filter)) {
	my ($r) = send_one($t, "$u\@example.test", $u);
	reply_is($r, 250, '2.0.0', "$u: accepted");
	ok(scalar $t->wait_maildir($u, 1, 10), "$u: delivered");
}
ok($t->wait_for_log(qr/warn: RCPT .*odd recipient/), 'WARN logged');
ok($t->wait_for_log(qr/FILTER smtp:\[127\.0\.0\.1\]:1 is not supported/),
    'FILTER logged as unsupported');

# HOLD: accepted, in the hold queue, not delivered
{
	my ($r, $qid) = send_one($t, 'hold@example.test', 'hold');
	reply_is($r, 250, '2.0.0', 'HOLD: accepted');
	ok(poll_until(sub { grep { $_ eq ($qid // '') }
	    @{ $t->spool_files->{hold} // [] } }, 10), 'HOLD: in hold/')
	    or diag(explain($t->spool_files));
	ok(!$t->maildir_messages('hold'), 'HOLD: not delivered');
}

# DISCARD: accepted, never delivered
{
	my ($r) = send_one($t, 'discard@example.test', 'discard');
	reply_is($r, 250, '2.0.0', 'DISCARD: accepted');
	ok($t->wait_for_log(qr/discard: RCPT .*drop it/), 'DISCARD: logged');
}

# PREPEND, REDIRECT, BCC: edits at end of message
{
	my ($r) = send_one($t, 'prepend@example.test', 'prepend');
	reply_is($r, 250, '2.0.0', 'PREPEND: accepted');
	my ($m) = $t->wait_maildir('prepend', 1, 10);
	like_diag($m, qr/^X-Policy-Test: prepended value\r?$/m,
	    'PREPEND: header in the delivered message', $m);

	($r) = send_one($t, 'redirect@example.test', 'redirected');
	reply_is($r, 250, '2.0.0', 'REDIRECT: accepted');
	ok(scalar $t->wait_message('other', qr/Subject: redirected/, 10),
	    'REDIRECT: delivered to the new address');

	($r) = send_one($t, 'bcc@example.test', 'bcced');
	reply_is($r, 250, '2.0.0', 'BCC: accepted');
	ok(scalar $t->wait_message('audit', qr/Subject: bcced/, 10),
	    'BCC: copy delivered');
	ok(scalar $t->wait_message('bcc', qr/Subject: bcced/, 10),
	    'BCC: original recipient delivered');
	sleep 1;
	ok(!grep({ /Subject: redirected/ } $t->maildir_messages('redirect')),
	    'REDIRECT: old recipient got nothing');
}

# END-OF-MESSAGE answer
{
	my ($r) = send_one($t, 'eomreject@example.test', 'eom');
	reply_is($r, 554, '5.7.1', qr/not at end of data/,
	    'END-OF-MESSAGE reject');
}

# -- connection reuse
{
	my $before = connects($sdir);
	for my $i (1 .. 5) {
		send_one($t, 'dunno@example.test', "reuse $i");
	}
	my $after = connects($sdir);
	ok($after - $before <= 1,
	    "5 sessions, 10 requests: at most one new connection (got " .
	    ($after - $before) . ")");
}

# a cached connection the service closed: replaced once, not a failure
{
	my ($r) = send_one($t, 'closeafter@example.test', 'closeafter');
	reply_is($r, 250, '2.0.0', 'service closes after answering: accepted');
	my $mark = $t->log_mark;
	($r) = send_one($t, 'dunno@example.test', 'after close');
	reply_is($r, 250, '2.0.0', 'next request on a new connection: accepted');
	ok(!grep({ /policy service .* failed/ } $t->log_lines($mark)),
	    'dead cached connection: no failure logged');
}

# -- faults: default action, still serving, nothing lost
my ($before_r, $before_qid) = send_one($t, 'keep@example.test', 'keep');
reply_is($before_r, 250, '2.0.0', 'message before the faults accepted');
for my $f (qw(hang closemid garbage endless close)) {
	my $mark = $t->log_mark;
	my $t0 = time;
	my ($r) = send_one($t, "$f\@example.test", "fault $f");
	reply_is($r, 451, '4.3.5', qr/Server configuration problem/,
	    "$f: default action");
	ok(time - $t0 < 8, "$f: answered in time (" .
	    sprintf('%.1f', time - $t0) . " s)");
	like_diag($t->wait_for_log(qr/policy service inet:127\.0\.0\.1:$sport/,
	    5, $mark), qr/failed|answer/, "$f: logged with the service name",
	    $t->log_tail(5));
	$t->serves_ok("$f: still serving");
}
ok(scalar $t->wait_message('keep', qr/Subject: keep/, 10),
    'message accepted before the faults delivered');
{
	my ($r) = send_one($t, 'dunno@example.test', 'after faults');
	reply_is($r, 250, '2.0.0', 'after the faults: accepted');
	ok(scalar $t->wait_message('dunno', qr/Subject: after faults/, 10),
	    'after the faults: delivered');
}
ok($t->is_running, 'posternd still running');

# the default action can let mail through
{
	my $t2 = PosternTest->instance(name => 'dunno-default', config => {
		mynetworks => '192.0.2.0/24',
		smtpd_filters => 'relay, policy',
		smtpd_policy_services => "inet:127.0.0.1:$sport",
		smtpd_policy_service_timeout => '1s',
		smtpd_policy_service_try_limit => 1,
		smtpd_policy_service_default_action => 'DUNNO',
		smtpd_policy_service_max_idle => '2s',
	});
	my ($r) = send_one($t2, 'garbage@example.test', 'dunno default');
	reply_is($r, 250, '2.0.0', 'default action DUNNO: accepted');

	# max_idle: a connection idle past it is not used again
	send_one($t2, 'dunno@example.test', 'idle 1');
	my $before = connects($sdir);
	send_one($t2, 'dunno@example.test', 'idle 2');
	is(connects($sdir) - $before, 0, 'max_idle: reused while fresh');
	sleep 3.2;
	send_one($t2, 'dunno@example.test', 'idle 3');
	is(connects($sdir) - $before, 1, 'max_idle: new connection after it');
	my $dead = free_port();
	my $t3 = PosternTest->instance(name => 'unreachable', config => {
		mynetworks => '192.0.2.0/24',
		smtpd_filters => 'relay, policy',
		smtpd_policy_services => "inet:127.0.0.1:$dead",
		smtpd_policy_service_default_action => '450 4.7.1 policy down',
	});
	($r) = send_one($t3, 'x@example.test', 'unreachable');
	reply_is($r, 450, '4.7.1', qr/policy down/,
	    'unreachable service: configured default action');
	ok($t3->wait_for_log(qr/policy service inet:127\.0\.0\.1:$dead failed/),
	    'unreachable service: logged');
}

# two services in order: how the answers combine, as in a Postfix
# restriction list of two check_policy_service entries
{
	my $bdir = $t->path('standin2');
	mkdir $bdir or die $!;
	my $bport = free_port();
	$t->spawn('standin2', $^X, "$HELPERS/policy_standin.pl", '--port',
	    $bport, '--dir', $bdir);
	poll_until(sub { slurp("$bdir/log") =~ /^READY$/m }, 10)
	    or BAIL_OUT('second policy stand-in did not start');
	my $t4 = PosternTest->instance(name => 'two services', config => {
		mynetworks => '192.0.2.0/24',
		smtpd_filters => 'relay, policy',
		smtpd_policy_services =>
		    "inet:127.0.0.1:$sport, inet:127.0.0.1:$bport",
		smtpd_policy_service_timeout => '1s',
	});
	set_actions($sdir,
	    'difr@example.test' => 'DEFER_IF_REJECT 4.7.0 first said maybe',
	    'difp@example.test' => 'DEFER_IF_PERMIT first said later',
	    'ok@example.test' => 'OK',
	    'dunno@example.test' => 'DUNNO',
	    'prepend@example.test' => 'PREPEND X-First: 1',
	);
	set_actions($bdir,
	    'difr@example.test' => 'REJECT second said no',
	    'difp@example.test' => 'REJECT second said no',
	    'ok@example.test' => 'REJECT second said no',
	    'dunno@example.test' => 'REJECT second said no',
	    'prepend@example.test' => 'PREPEND X-Second: 2',
	);
	my ($r) = send_one($t4, 'difr@example.test', 'two difr');
	reply_is($r, 450, '4.7.0', qr/first said maybe/,
	    'DEFER_IF_REJECT then REJECT: deferred with the first text');
	($r) = send_one($t4, 'difp@example.test', 'two difp');
	reply_is($r, 554, '5.7.1', qr/second said no/,
	    'DEFER_IF_PERMIT then REJECT: rejected');
	($r) = send_one($t4, 'ok@example.test', 'two ok');
	reply_is($r, 250, '2.0.0', 'OK: the second service is not asked');
	($r) = send_one($t4, 'dunno@example.test', 'two dunno');
	reply_is($r, 554, '5.7.1', qr/second said no/,
	    'DUNNO: the second service decides');
	($r) = send_one($t4, 'prepend@example.test', 'two prepend');
	reply_is($r, 250, '2.0.0', 'PREPEND from both: accepted');
	my ($m) = $t4->wait_maildir('prepend', 1, 10);
	like_diag($m, qr/^X-First: 1\r?\nX-Second: 2\r?$/m,
	    "PREPEND from both: in order", $m);
}

# ---- postgrey ----------------------------------------------------------
SKIP: {
	skip 'postgrey not installed', 5 unless -x '/usr/sbin/postgrey';
	my $pg = PosternTest->new(users => 0, name => 'postgrey');
	my $db = $pg->path('pgdb');
	mkdir $db or die $!;
	for my $f (qw(wl_clients wl_recipients)) {
		open my $fh, '>', $pg->path($f) or die $!;
		close $fh;
	}
	my $pgport = free_port();
	my @user;
	if ($is_root) {
		my ($uid, $gid) = (getpwnam('nobody'))[2, 3];
		chown $uid, $gid, $db;
		@user = ('--user=nobody', '--group=' . getgrgid($gid));
	}
	$pg->spawn('postgrey', '/usr/sbin/postgrey',
	    "--inet=127.0.0.1:$pgport", "--dbdir=$db", '--delay=2',
	    '--hostname=relay.example.test',
	    '--whitelist-clients=' . $pg->path('wl_clients'),
	    '--whitelist-recipients=' . $pg->path('wl_recipients'),
	    '--auto-whitelist-clients=0', @user);
	ok(poll_until(sub { PosternTest::can_connect('127.0.0.1', $pgport) },
	    20), 'postgrey listening') or diag(slurp($pg->path('postgrey.log')));
	$pg->start_posternd(config => {
		%PosternTest::QUICK_DELIVERY,
		mynetworks => '192.0.2.0/24',
		smtpd_sasl_password_maps => undef,
		listen => 'smtp/127.0.0.1:' . $pg->port('smtp'),
		smtpd_filters => 'relay, policy',
		smtpd_policy_services => "inet:127.0.0.1:$pgport",
		smtpd_policy_service_timeout => '10s',
	});
	my ($r) = send_one($pg, 'grey@example.test', 'greylisted',
	    from => 'someone@sender.example');
	# 4.2.0: postgrey adds it when etrn_domain is sent, as for Postfix
	reply_is($r, 450, '4.2.0', qr/Greylisted/,
	    'postgrey: first attempt greylisted');
	sleep 3;
	($r) = send_one($pg, 'grey@example.test', 'greylisted',
	    from => 'someone@sender.example');
	reply_is($r, 250, '2.0.0', 'postgrey: retry after the delay accepted');
	my ($m) = $pg->wait_maildir('grey', 1, 10);
	like_diag($m, qr/^X-Greylist: delayed \d+ seconds by postgrey/m,
	    'postgrey: X-Greylist header prepended', $m);
	$pg->serves_ok('postgrey: still serving');
}

# ---- policyd-spf behind a spawn(8)-like wrapper ------------------------
SKIP: {
	skip 'policyd-spf not installed', 5 unless -x '/usr/bin/policyd-spf';
	my $sp = PosternTest->new(users => 0, name => 'policyd-spf');
	my $conf = $sp->path('policyd-spf.conf');
	open my $fh, '>', $conf or die $!;
	# the default skip_addresses would skip our 127.0.0.1 client
	print $fh "debugLevel = 1\nTestOnly = 1\nHELO_reject = Fail\n",
	    "Mail_From_reject = Fail\nPermError_reject = False\n",
	    "TempError_Defer = False\nskip_addresses = 192.0.2.250/32\n";
	close $fh;
	my $port = free_port();
	my $log = $sp->path('spawn.log');
	$sp->spawn('spawn', $^X, "$HELPERS/policy_spawn.pl", '--port', $port,
	    '--log', $log, '--', '/usr/bin/policyd-spf', $conf);
	ok(poll_until(sub { slurp($log) =~ /^READY$/m }, 10),
	    'policyd-spf wrapper listening');
	$sp->start_posternd(config => {
		%PosternTest::QUICK_DELIVERY,
		mynetworks => '192.0.2.0/24',
		smtpd_sasl_password_maps => undef,
		listen => 'smtp/127.0.0.1:' . $sp->port('smtp'),
		smtpd_filters => 'relay, policy',
		smtpd_policy_services => "inet:127.0.0.1:$port",
		smtpd_policy_service_timeout => '20s',
	});
	for my $i (1, 2) {
		my ($r) = send_one($sp, 'spf@example.test', "spf $i",
		    helo => '[127.0.0.1]', from => '');
		reply_is($r, 250, '2.0.0', "policyd-spf: null sender $i accepted");
	}
	my @m = $sp->wait_maildir('spf', 2, 10);
	my $spf_re = '^Received-SPF: None \(no SPF record\) identity=helo; ' .
	    'client-ip=127\.0\.0\.1';
	like_diag($m[0], qr/$spf_re/m,
	    'policyd-spf: Received-SPF (HELO identity) prepended', $m[0]);
	my @spawns = slurp($log) =~ /^spawn \d+$/mg;
	is(scalar @spawns, 1, 'policyd-spf: one process served both sessions');
}

PosternTest->finish_all_ok;
done_testing;

#!/usr/bin/perl
# 17_content_rules.t - the regex filter through a real posternd
# (smtpd_filters = relay, regex; local Maildir recipients), with the rule
# files and messages of data/content/.
#
# Postfix compatibility: header_checks and body_checks are files written
# for Postfix (if/endif, !/re/, comments, flags, a rule continued on the
# next line, multi-line headers, case-insensitive by default). For each
# data/content/compat-*.eml, Postfix's own "postmap -hmq - pcre:FILE"
# and "postmap -bmq - pcre:FILE" say which headers and body lines match
# and with which action; Postern must act the same: the first REJECT,
# DEFER or DISCARD (headers before the body, as Postfix's cleanup reads
# the message) decides the reply (code, enhanced code, text); before
# it, WARN gives a log line, HOLD puts the message in hold/, PREPEND,
# REPLACE and IGNORE show in the delivered header block, REDIRECT
# delivers to that address only, BCC adds a recipient.
#
# Beyond Postfix (data/content/beyond-*.eml): a phrase in a
# quoted-printable or base64 text part is caught by a body rule and an
# RFC 2047 encoded Subject by a header rule (postmap does not match
# them: that is the point); attachment_checks refuses a file named x.exe
# and a part of type application/x-msdownload.
#
# Broken rules: posternd -n names FILE:LINE of a bad regex; SIGHUP with a
# broken rule file logs the error and keeps the old rules in force.
#
# SPDX-License-Identifier: ISC

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use File::Copy qw(copy);
use Test::More;
use PosternTest qw(reply_is poll_until split_message header_value
    like_diag);

my $FIXTURES = "$FindBin::Bin/data/content";
my $POSTMAP = '/usr/sbin/postmap';
my $FROM = 'sender@client.example';
my $RCPT = 'user@example.test';

plan skip_all => "$POSTMAP (Postfix) is needed" unless -x $POSTMAP;

my $t = PosternTest->new;
# the rules are copied so that the reload test can change them
my %RULES;
for my $f (qw(header_checks body_checks attachment_checks)) {
	copy("$FIXTURES/$f", $t->path($f)) or die "copy $f: $!";
	$RULES{$f} = $t->path($f);
}
$t->start_posternd(config => {
	smtpd_filters => 'relay, regex',
	header_checks => "pcre:$RULES{header_checks}",
	body_checks => "pcre:$RULES{body_checks}",
	attachment_checks => "pcre:$RULES{attachment_checks}",
	queue_run_delay => '1s',
	minimal_backoff_time => '1s',
	maximal_backoff_time => '2s',
});

# --- local helpers ----------------------------------------------------------

sub slurp {
	my ($file) = @_;
	open my $fh, '<:raw', $file or die "$file: $!";
	local $/;
	my $text = <$fh>;
	close $fh;
	return $text;
}

# wire(TEXT) - a fixture as sent after DATA: CRLF line ends, dot-stuffed
sub wire {
	my ($text) = @_;
	$text =~ s/\r?\n/\n/g;
	$text =~ s/\n\z//;
	return join '', map { (/^\./ ? ".$_" : $_) . "\r\n" }
	    split /\n/, $text, -1;
}

# postmap(FLAGS, TABLE, FILE) - Postfix's matches for the message FILE:
# a list of [key, action word, text], in message order. A folded header
# is one key: its continuation lines start with white space.
sub postmap {
	my ($flags, $table, $file) = @_;
	my $out = qx{'$POSTMAP' $flags - 'pcre:$table' < '$file' 2>&1};
	# exit 1: nothing matched
	die "postmap $flags pcre:$table < $file: $out"
	    if ($? >> 8) > 1 || $out =~ /^postmap: /m;
	my @lines = split /\n/, $out;
	my (@rec, @m);
	for my $i (0 .. $#lines) {
		push @rec, $lines[$i];
		next if $i < $#lines && $lines[$i + 1] =~ /^[ \t]/ &&
		    $flags =~ /h/;
		my $r = join "\n", @rec;
		@rec = ();
		my ($key, $value) = $r =~ /^(.*)\t([^\t]*)$/s
		    or die "postmap output '$r'";
		my ($word, $text) = $value =~ /^(\S+)\s*(.*)$/;
		push @m, [ $key, uc $word, $text ];
	}
	return @m;
}

# postfix_matches(FILE) - header matches (message and MIME headers) then
# body matches
sub postfix_matches {
	my ($file) = @_;
	return (postmap('-hmq', $RULES{header_checks}, $file),
	    postmap('-bmq', $RULES{body_checks}, $file));
}

# message_id(FILE) - the Message-ID of a fixture, for finding it
sub message_id {
	my ($file) = @_;
	my ($id) = slurp($file) =~ /^Message-ID: (<[^>]+>)/mi;
	return $id;
}

# delivered(USER, ID, TIMEOUT) - header lines of USER's message with
# Message-ID ID (undef when it does not come)
sub delivered {
	my ($user, $id, $timeout) = @_;
	my ($m) = $t->wait_message($user, qr/^Message-ID: \Q$id\E\r?$/mi,
	    $timeout // 10);
	return undef unless defined $m;
	my ($head) = split_message($m);
	return $head;
}

# held(QID) - QID is in hold/ (polling 5 s)
sub held {
	my ($qid) = @_;
	return poll_until(sub {
		grep { $_ eq $qid } @{ $t->spool_files->{hold} // [] }
	}, 5);
}

# send_file(FILE, RCPTS) - (final reply, queue ID)
sub send_file {
	my ($file, $rcpts) = @_;
	return $t->submit($FROM, $rcpts // $RCPT, wire(slurp($file)));
}

# reply_of(ACTION, TEXT) - the reply Postfix gives for a REJECT or DEFER
# result: (code, enhanced code, text)
sub reply_of {
	my ($word, $text) = @_;
	my ($cls, $code) = $word eq 'REJECT' ? (5, 550) : (4, 450);
	my $ecode = "$cls.7.1";
	$ecode = $1 if $text =~ s/^(\Q$cls\E\.\d{1,3}\.\d{1,3})\s*//;
	$text = $word eq 'REJECT' ? 'Message content rejected' :
	    'Message content deferred' if $text eq '';
	return ($code, $ecode, $text);
}

# --- 1. Postfix compatibility ---------------------------------------------

my %TERMINAL = map { $_ => 1 } qw(REJECT DEFER DISCARD);
my %seen_action;

for my $file (sort glob "$FIXTURES/compat-*.eml") {
	my ($name) = $file =~ m{/([^/]+)\.eml$};
	my $id = message_id($file);
	my @m = postfix_matches($file);
	my ($term) = grep { $TERMINAL{ $_->[1] } } @m;
	my @before;
	for (@m) {
		last if $term && $_ == $term;
		push @before, $_;
	}
	$seen_action{ $_->[1] }++ for ($term // (), @before);
	note("$name: postmap: " . (@m ? join('; ', map { "$_->[1] $_->[2]" }
	    @m) : 'no match'));

	my $mark = $t->log_mark;
	my ($r, $qid) = send_file($file);
	if ($term && $term->[1] ne 'DISCARD') {
		my ($code, $ecode, $text) = reply_of($term->[1], $term->[2]);
		reply_is($r, $code, $ecode, qr/^\Q$text\E$/,
		    "$name: $term->[1] as Postfix: $code $ecode $text");
		ok(!delivered('user', $id, 0.5), "$name: not delivered");
		next;
	}
	reply_is($r, 250, '2.0.0', "$name: accepted");
	if ($term) {	# DISCARD
		ok(!delivered('user', $id, 2), "$name: DISCARD: not delivered");
		like_diag($t->wait_for_log(qr/\bdiscard\b/i, 5, $mark),
		    qr/\Q$qid\E.*discard/i, "$name: DISCARD: logged",
		    $t->log_tail(10));
	}
	my @warn = grep { $_->[1] eq 'WARN' } @before;
	for my $w (@warn) {
		like_diag($t->wait_for_log(qr/warning:.*\Q$w->[2]\E/, 5,
		    $mark), qr/\Q$qid\E: warning: (?:header|body|mime header)/,
		    "$name: WARN: the log line ($w->[2])", $t->log_tail(10));
	}
	if (grep { $_->[1] eq 'HOLD' } @before) {
		ok($qid && held($qid), "$name: HOLD: in hold/")
		    or diag(explain($t->spool_files));
		ok(!delivered('user', $id, 1), "$name: HOLD: not delivered");
		next;
	}
	next if $term;
	my ($redirect) = map { $_->[2] } grep { $_->[1] eq 'REDIRECT' }
	    @before;
	my @bcc = map { $_->[2] } grep { $_->[1] eq 'BCC' } @before;
	my $to = $redirect // $RCPT;
	my ($user) = $to =~ /^([^@]+)/;
	my $head = delivered($user, $id);
	ok($head, "$name: delivered to <$to>") or next;
	if ($redirect) {
		ok(!delivered('user', $id, 1),
		    "$name: REDIRECT: not delivered to <$RCPT>");
	}
	for my $b (@bcc) {
		my ($bu) = $b =~ /^([^@]+)/;
		ok(delivered($bu, $id), "$name: BCC: a copy for <$b>");
	}
	my @h = @$head;
	for my $e (@before) {
		my ($key, $word, $text) = @$e;
		my ($kname) = $key =~ /^([^:]+):/;
		if ($word eq 'PREPEND') {
			my ($pi) = grep { $h[$_] eq $text } 0 .. $#h;
			my ($ki) = grep { $h[$_] =~ /^\Q$kname\E:/i } 0 .. $#h;
			ok(defined $pi && defined $ki && $pi < $ki,
			    "$name: PREPEND: '$text' right before $kname")
			    or diag(join "\n", @h);
		} elsif ($word eq 'REPLACE') {
			ok((grep { $_ eq $text } @h) &&
			    !(grep { /^\Q$kname\E:/i } @h),
			    "$name: REPLACE: '$text' instead of $kname")
			    or diag(join "\n", @h);
		} elsif ($word eq 'IGNORE') {
			ok(!(grep { /^\Q$kname\E:/i } @h),
			    "$name: IGNORE: $kname removed")
			    or diag(join "\n", @h);
		}
	}
	if (!@m) {
		my ($orig) = split_message(slurp($file));
		my %got = map { $_ => 1 } @h;
		my @lost = grep { !$got{$_} } @$orig;
		is_deeply(\@lost, [],
		    "$name: no rule matches: every header kept");
	}
}

# the fixtures exercise every action of the brief
for my $a (qw(REJECT DEFER DISCARD HOLD WARN PREPEND REPLACE IGNORE
    REDIRECT BCC)) {
	ok($seen_action{$a}, "compat fixtures exercise $a");
}

# an unchanged header block also keeps "X-Keep" around the edits
{
	my $head = delivered('user', message_id("$FIXTURES/compat-edit.eml"),
	    1);
	is(header_value($head // [], 'X-Keep'), 'delta',
	    'compat-edit: headers without a rule are kept');
}

# --- 2. beyond Postfix ----------------------------------------------------

for my $case (
	[ 'beyond-qp', 'body', 'Pharmacy spam in the body',
	    'a phrase split by a quoted-printable soft break' ],
	[ 'beyond-base64', 'body', 'Pharmacy spam in the body',
	    'a phrase in a base64 text/plain part' ],
	[ 'beyond-rfc2047-b', 'header', 'Medication spam is not accepted',
	    'an RFC 2047 B-encoded Subject' ],
	[ 'beyond-rfc2047-q', 'header', 'Medication spam is not accepted',
	    'an RFC 2047 Q-encoded Subject' ],
    ) {
	my ($name, $kind, $text, $what) = @$case;
	my $file = "$FIXTURES/$name.eml";
	my @pf = $kind eq 'body' ?
	    postmap('-bmq', $RULES{body_checks}, $file) :
	    postmap('-hmq', $RULES{header_checks}, $file);
	is(scalar @pf, 0, "$name: Postfix's postmap does not see it");
	my ($r) = send_file($file);
	reply_is($r, 550, '5.7.1', qr/^\Q$text\E$/, "$name: $what: refused");
}

{
	my ($r) = send_file("$FIXTURES/beyond-exe-name.eml");
	reply_is($r, 550, '5.7.1', qr/^Executable attachments are not/,
	    'attachment_checks: x.exe refused');
	($r) = send_file("$FIXTURES/beyond-exe-type.eml");
	reply_is($r, 550, '5.7.1', qr/^Executable content type/,
	    'attachment_checks: application/x-msdownload refused');
	($r) = send_file("$FIXTURES/beyond-pdf.eml");
	reply_is($r, 250, '2.0.0', 'attachment_checks: report.pdf accepted');
	ok(delivered('user', message_id("$FIXTURES/beyond-pdf.eml")),
	    'attachment_checks: report.pdf delivered');
}

# --- 3. broken rules --------------------------------------------------------

{
	# a separate configuration file for -n, so the running one stays
	my $bad = "$FIXTURES/broken_header_checks";
	my $cfg = $t->path('check.cf');
	open my $fh, '>', $cfg or die "$cfg: $!";
	print $fh $t->config_text(smtpd_filters => 'relay, regex',
	    header_checks => "pcre:$bad");
	close $fh;
	my $bin = $t->binary;
	my $out = qx{'$bin' -n -c '$cfg' 2>&1};
	my $st = $? >> 8;
	isnt($st, 0, 'posternd -n: a bad regex is a configuration error');
	like($out, qr/\Q$bad\E:5\b/, 'posternd -n: FILE:LINE of the bad regex')
	    or diag($out);
}

{
	my $old = slurp($RULES{header_checks});
	# control: a reload with a valid new rule applies it
	open my $fh, '>', $RULES{header_checks} or die;
	print $fh $old, "/^Subject:.*reload marker/\tREJECT 5.7.1 new rule\n";
	close $fh;
	my $mark = $t->log_mark;
	kill 'HUP', $t->posternd_pid;
	ok($t->wait_for_log(qr/reload|configuration/i, 10, $mark),
	    'SIGHUP: reload logged') or diag($t->log_tail(10));
	my $msg = join '', map { "$_\r\n" } "From: <$FROM>", "To: <$RCPT>",
	    'Subject: the reload marker', 'Message-ID: <reload@client.example>',
	    '', 'body';
	my $r;
	poll_until(sub {
		($r) = $t->submit($FROM, $RCPT, $msg);
		return $r && $r->{code} == 550;
	}, 10, 0.5);
	reply_is($r, 550, '5.7.1', qr/^new rule$/,
	    'SIGHUP with valid rules: the new rule is in force');

	# now a broken file: the rules of the last good load stay
	open $fh, '>', $RULES{header_checks} or die;
	print $fh $old, "/^Subject: (unclosed/\tREJECT broken\n";
	close $fh;
	my $line = () = ($old . "x\n") =~ /\n/g;
	$mark = $t->log_mark;
	kill 'HUP', $t->posternd_pid;
	my $err = $t->wait_for_log(qr/\Q$RULES{header_checks}\E/, 10, $mark);
	like_diag($err, qr/\Q$RULES{header_checks}\E:$line\b/,
	    'SIGHUP with a bad regex: the error is logged with FILE:LINE',
	    $t->log_tail(10));
	ok($t->is_running, 'SIGHUP with a bad regex: posternd still runs');
	sleep 1;
	($r) = send_file("$FIXTURES/compat-reject-code.eml");
	reply_is($r, 550, '5.7.1', qr/^Medication spam is not accepted$/,
	    'SIGHUP with a bad regex: the old rules still reject');
	($r) = $t->submit($FROM, $RCPT, $msg);
	reply_is($r, 550, '5.7.1', qr/^new rule$/,
	    'SIGHUP with a bad regex: the last good rules stay in force');
	$t->serves_ok('posternd still serves');
}

PosternTest->finish_all_ok;
done_testing;

#!/usr/bin/perl
# scripted_smtpd.pl - a next-hop SMTP server whose every answer comes from
# a script, for the delivery robustness tests: mixed RCPT results, a
# dropped connection after ".", late final replies, extra or missing
# replies, no 8BITMIME, a server that closes idle connections.
#
# usage: scripted_smtpd.pl --port PORT --dir DIR
#
# Listens on 127.0.0.1:PORT, one forked child per connection. The script
# is DIR/script.json, read again at every connection (a test may change
# it between deliveries; a cached connection follows the change at its
# next MAIL). Connections are numbered from 1 in accept
# order. Everything is recorded under DIR:
#   DIR/log          "N C: <command>" and "N S: <reply line>" lines, plus
#                    "N connect", "N eof", "N close" and "READY" at start
#   DIR/msg.N.K      a message whose "." got a 2xx reply that was sent:
#                    X-Conn, X-Mail, X-Rcpt (each accepted recipient)
#                    header lines, a blank line, then the raw bytes
#                    received after the 354 (still dot-stuffed, the
#                    ".\r\n" terminator included)
#
# Script (JSON object; every key optional), read at each connection and
# again at each MAIL command:
#   greeting  "220 ..."                       the banner
#   ehlo      ["PIPELINING", "8BITMIME", ...] keywords after the first line
#   after_ehlo  ACTION                        sent unsolicited after the
#                                             EHLO reply
#   mail      ACTION                          reply to MAIL
#   rcpt      [[REGEX, ACTION], ...]          first REGEX matching the
#                                             address wins; default 250
#   data      ACTION                          reply to DATA (354 or not)
#   dot       ACTION                          reply to the end of data
#   dot_rules [[REGEX, ACTION], ...]          instead of dot when an
#                                             accepted recipient matches
#   after_dot ACTION                          after the reply to "."
#   rset, quit, noop   ACTION
#   conn      { "N": { ...keys... } }         overrides for connection N
# An ACTION is a string of steps separated by "|": "DELAY seconds",
# "CLOSE" (close the connection now), "NONE" (say nothing), or reply
# text (several lines separated by "\n", each sent with CRLF).
#
# SPDX-License-Identifier: ISC

use strict;
use warnings;

use Fcntl qw(:flock);
use Getopt::Long;
use IO::Socket::IP;
use JSON::PP;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(sleep time);

my ($port, $dir);
GetOptions('port=i' => \$port, 'dir=s' => \$dir)
    or die "usage: $0 --port PORT --dir DIR\n";
die "usage: $0 --port PORT --dir DIR\n" unless $port && $dir;

my %kids;
my $nconn = 0;

# the connection a child serves
my ($sock, $n, $buf, $closed);

sub logline {
	my ($line) = @_;
	open my $fh, '>>', "$dir/log" or return;
	flock $fh, LOCK_EX;
	print $fh "$line\n";
	close $fh;
}

sub load_script {
	my ($n) = @_;
	my $s = {};
	if (open my $fh, '<', "$dir/script.json") {
		local $/;
		my $text = <$fh>;
		close $fh;
		$s = eval { decode_json($text) } // {};
	}
	my $o = ($s->{conn} // {})->{$n} // {};
	return { %$s, %$o };
}

my $srv = IO::Socket::IP->new(LocalHost => '127.0.0.1', LocalPort => $port,
    Proto => 'tcp', Listen => 64, ReuseAddr => 1)
    or die "listen 127.0.0.1:$port: $!\n";

$SIG{TERM} = $SIG{INT} = sub {
	kill 'KILL', keys %kids;
	exit 0;
};
$SIG{CHLD} = sub {
	while ((my $pid = waitpid(-1, WNOHANG)) > 0) {
		delete $kids{$pid};
	}
};

logline('READY');
for (;;) {
	my $c = $srv->accept or next;
	$nconn++;
	my $pid = fork;
	if (!defined $pid) {
		close $c;
		next;
	}
	if ($pid == 0) {
		$SIG{TERM} = $SIG{INT} = 'DEFAULT';
		$SIG{CHLD} = 'DEFAULT';
		close $srv;
		serve($c, $nconn);
		POSIX::_exit(0);
	}
	$kids{$pid} = 1;
	close $c;
}

# ---- one connection ----

sub out {
	my ($text) = @_;
	for my $l (split /\n/, $text) {
		logline("$n S: $l");
		local $SIG{PIPE} = 'IGNORE';
		syswrite($sock, "$l\r\n") or return 0;
	}
	return 1;
}

# act(ACTION) - perform the steps; returns the reply code sent (or 0)
sub act {
	my ($action) = @_;
	my $code = 0;
	for my $step (split /\|/, $action // '') {
		if ($step =~ /^DELAY\s+([\d.]+)$/) {
			sleep $1;
		} elsif ($step eq 'CLOSE') {
			logline("$n close");
			close $sock;
			$closed = 1;
			return $code;
		} elsif ($step eq 'NONE') {
			next;
		} else {
			($code) = $step =~ /^(\d{3})/;
			out($step) or return 0;
		}
	}
	return $code // 0;
}

# readline_raw - one line with its line end, undef on EOF (60 s idle)
sub readline_raw {
	for (;;) {
		if ($buf =~ s/^(.*?\n)//s) {
			return $1;
		}
		my $rin = '';
		vec($rin, fileno($sock), 1) = 1;
		return undef unless select($rin, undef, undef, 60);
		my $r = sysread($sock, my $chunk, 65536);
		return undef unless $r;
		$buf .= $chunk;
	}
}

# read_data - the raw content up to and including CRLF.CRLF, or undef
sub read_data {
	my $data = '';
	for (;;) {
		my $i = index($buf, "\r\n.\r\n");
		if ($data eq '' && substr($buf, 0, 3) eq ".\r\n") {
			$buf = substr($buf, 3);
			return ".\r\n";
		}
		if ($i >= 0) {
			$data .= substr($buf, 0, $i + 5);
			$buf = substr($buf, $i + 5);
			return $data;
		}
		# keep a tail that may begin the terminator
		if (length $buf > 4) {
			$data .= substr($buf, 0, length($buf) - 4);
			$buf = substr($buf, length($buf) - 4);
		}
		my $rin = '';
		vec($rin, fileno($sock), 1) = 1;
		return undef unless select($rin, undef, undef, 60);
		my $r = sysread($sock, my $chunk, 65536);
		return undef unless $r;
		$buf .= $chunk;
	}
}

sub serve {
	($sock, $n) = @_;
	$buf = '';
	$closed = 0;
	my $s = load_script($n);
	my ($mail, @rcpts, $k);
	$k = 0;
	logline("$n connect");
	act($s->{greeting} // '220 scripted.test ESMTP scripted_smtpd');
	return if $closed;
	for (;;) {
		my $line = readline_raw();
		if (!defined $line) {
			logline("$n eof");
			return;
		}
		(my $cmd = $line) =~ s/\r?\n\z//;
		logline("$n C: $cmd");
		my $verb = uc((split ' ', $cmd)[0] // '');
		if ($verb eq 'EHLO') {
			my @kw = @{ $s->{ehlo} // [ 'PIPELINING', '8BITMIME',
			    'SIZE 10240000', 'ENHANCEDSTATUSCODES', 'DSN',
			    'SMTPUTF8' ] };
			my @l = ('scripted.test', @kw);
			my $text = join "\n", map {
			    ($_ == $#l ? '250 ' : '250-') . $l[$_] } 0 .. $#l;
			act($text);
			act($s->{after_ehlo}) if defined $s->{after_ehlo};
		} elsif ($verb eq 'HELO') {
			act('250 scripted.test');
		} elsif ($verb eq 'MAIL') {
			# a new transaction follows the current script
			$s = load_script($n);
			$mail = $cmd;
			@rcpts = ();
			act($s->{mail} // '250 2.1.0 Ok');
		} elsif ($verb eq 'RCPT') {
			my ($addr) = $cmd =~ /<([^>]*)>/;
			$addr //= '';
			my $reply = '250 2.1.5 Ok';
			for my $r (@{ $s->{rcpt} // [] }) {
				if ($addr =~ /$r->[0]/) {
					$reply = $r->[1];
					last;
				}
			}
			my $code = act($reply);
			push @rcpts, $addr if $code && $code =~ /^2/;
		} elsif ($verb eq 'DATA') {
			my $code = act($s->{data} // '354 End data with <CR><LF>.<CR><LF>');
			next unless $code && $code == 354;
			my $data = read_data();
			if (!defined $data) {
				logline("$n eof in data");
				return;
			}
			logline("$n data " . length($data) . " bytes");
			my $reply = $s->{dot} // "250 2.0.0 Ok: queued as C${n}M" . ($k + 1);
			RULE: for my $r (@{ $s->{dot_rules} // [] }) {
				for my $a (@rcpts) {
					if ($a =~ /$r->[0]/) {
						$reply = $r->[1];
						last RULE;
					}
				}
			}
			$code = act($reply);
			if ($code && $code =~ /^2/ && @rcpts) {
				$k++;
				my $f = "$dir/msg.$n.$k";
				open my $fh, '>', "$f.tmp" or die "$f: $!";
				binmode $fh;
				print $fh "X-Conn: $n\n", "X-Mail: $mail\n",
				    map({ "X-Rcpt: $_\n" } @rcpts), "\n", $data;
				close $fh;
				rename "$f.tmp", $f;
			}
			@rcpts = ();
			return if $closed;
			act($s->{after_dot}) if defined $s->{after_dot};
		} elsif ($verb eq 'RSET') {
			@rcpts = ();
			act($s->{rset} // '250 2.0.0 Ok');
		} elsif ($verb eq 'NOOP') {
			act($s->{noop} // '250 2.0.0 Ok');
		} elsif ($verb eq 'QUIT') {
			act($s->{quit} // '221 2.0.0 Bye');
			close $sock;
			logline("$n close");
			return;
		} else {
			act('502 5.5.2 Error: command not recognized');
		}
		return if $closed;
	}
}

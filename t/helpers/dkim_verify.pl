#!/usr/bin/perl
# dkim_verify.pl - verify every DKIM-Signature of a message with Perl's
# Mail::DKIM (Debian's libmail-dkim-perl), an implementation independent
# of Postern's, looking the keys up in one DNS server.
#
#   dkim_verify.pl --dns 127.0.0.1:PORT FILE
#
# FILE holds one message (CRLF or LF line ends). For each DKIM-Signature,
# top to bottom, one line on stdout:
#
#   pass|fail|unsupported d=DOMAIN s=SELECTOR a=ALGORITHM
#
# "unsupported": Mail::DKIM itself refuses the signature's algorithm (the
# Debian 12 version has no ed25519-sha256); the detail of every result
# that is not pass goes to stderr. Exit status: 0 when there is at least
# one signature and all pass, 3 when every one passes or is unsupported
# (at least one pass), 1 otherwise, 2 on usage errors.
#
# SPDX-License-Identifier: ISC

use strict;
use warnings;

use Getopt::Long;
use Mail::DKIM::DNS;
use Mail::DKIM::Verifier;
use Net::DNS::Resolver;

my $dns;
GetOptions('dns=s' => \$dns) && defined $dns && @ARGV == 1
    or die "usage: $0 --dns ADDR:PORT FILE\n";
my ($server, $port) = $dns =~ /^(.+):(\d+)$/
    or die "--dns wants ADDR:PORT\n";
$server =~ s/^\[(.*)\]$/$1/;

Mail::DKIM::DNS::resolver(Net::DNS::Resolver->new(
    nameservers => [ $server ], port => $port, recurse => 1,
    udp_timeout => 5, tcp_timeout => 5, retry => 2,
    searchlist => [], defnames => 0, dnsrch => 0));

open my $fh, '<:raw', $ARGV[0] or die "$ARGV[0]: $!\n";
my $msg = do { local $/; <$fh> };
close $fh;

$msg =~ s/\r?\n\z//;
my $v = Mail::DKIM::Verifier->new;
for my $line (split /\r?\n/, $msg, -1) {
	$v->PRINT("$line\015\012");
}
$v->CLOSE;

my @sigs = grep { $_->isa('Mail::DKIM::Signature') } $v->signatures;
if (!@sigs) {
	print STDERR "no DKIM-Signature\n";
	exit 1;
}
my ($pass, $unsupported, $other) = (0, 0, 0);
for my $s (@sigs) {
	my $r = $s->result // 'none';
	my $detail = $s->result_detail // $r;
	my $word;
	if ($r eq 'pass') {
		$word = 'pass';
		$pass++;
	} elsif ($detail =~ /unsupported algorithm/) {
		$word = 'unsupported';
		$unsupported++;
	} else {
		$word = 'fail';
		$other++;
	}
	my ($d, $sel, $a) = map { $_ // '?' }
	    ($s->domain, $s->selector, $s->algorithm);
	print "$word d=$d s=$sel a=$a\n";
	print STDERR "d=$d s=$sel: $detail\n" unless $word eq 'pass';
}
exit 1 if $other;
exit 3 if $unsupported;
exit 0;

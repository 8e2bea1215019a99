# PostfixTest.pm - a private, real Postfix instance for integration tests.
#
# One PostfixTest object is one Postfix: its own config directory, queue,
# data directory and log file under a test directory, an smtpd listening
# on a free port of 127.0.0.1, nothing chrooted, and (optionally) every
# message relayed to a sink on 127.0.0.1. It never touches the system's
# Postfix: the system main.cf is not read, no system port is bound.
#
# Postfix's master must run as root (it binds, then its daemons switch to
# mail_owner). A test that needs an instance checks PostfixTest->usable
# and skips otherwise:
#
#	my $why = PostfixTest->unusable;
#	plan skip_all => $why if $why;
#
# The master runs in the foreground (master -d) in its own process group;
# stop() ends it and every process left in that group, and so do DESTROY,
# END and SIGINT/SIGTERM/SIGHUP. The API (keep it stable, other tests use
# it):
#
#	my $pf = PostfixTest->new(dir => $dir, sink_port => $port,
#	    main => { smtpd_milters => 'inet:127.0.0.1:8892' },
#	    master_extra => [ 'policy unix - n n - 0 spawn ...' ]);
#	$pf->start;			# dies with the log tail on failure
#	$pf->port;			# the smtpd port on 127.0.0.1
#	$pf->wait_for_log(qr/status=sent/, 10, $mark);
#	$pf->log_lines($since); $pf->log_mark;
#	$pf->postfix('flush');		# postfix -c ETC flush
#	$pf->stop;
#
# SMTP AUTH (Cyrus SASL with a sasldb of the instance's own; check
# PostfixTest->sasl_unusable first):
#
#	my $pf = PostfixTest->new(..., sasl_users => { alice => 'secret' });
#	$pf->sasl_realm;		# the realm the users are stored in
#	$pf->sasldb;			# the sasldb file
#
# Postfix then reports (and sends milters as {auth_authen}) the bare user
# name, "alice": the realm is Postfix's myhostname, Cyrus's default.
#
# The helpers it shares with posternd's harness (free_port, can_connect,
# slurp, spew, log_mark, log_tail, wait_for_log) are PosternTest's.
#
# SPDX-License-Identifier: ISC

package PostfixTest;

use strict;
use warnings;

use Carp qw(croak);
use File::Temp qw(tempdir);
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time sleep);
use PosternTest qw(free_port can_connect slurp spew);

our $MASTER = $ENV{POSTFIX_MASTER} // '/usr/lib/postfix/sbin/master';
our $POSTFIX = $ENV{POSTFIX_BIN} // '/usr/sbin/postfix';
our $POSTCONF = $ENV{POSTCONF_BIN} // '/usr/sbin/postconf';
our $SASLPASSWD = $ENV{SASLPASSWD2} // '/usr/sbin/saslpasswd2';
# where Cyrus SASL's plugins are (Debian: /usr/lib/<multiarch>/sasl2)
our $SASL_PLUGINS = $ENV{SASL_PLUGINS} //
    (grep { -d } glob('/usr/lib/*/sasl2'), '/usr/lib/sasl2')[0];

# every running instance (stringified object => object), for END/signals
my %running;

# the defaults of main.cf; new()'s main => {...} overrides them, and an
# undef value removes a line. @DIR@, @PORT@, @SINKPORT@ are filled in.
my @MAIN_DEFAULTS = (
	[ compatibility_level => '3.6' ],
	[ queue_directory => '@DIR@/spool' ],
	[ data_directory => '@DIR@/data' ],
	[ mail_owner => 'postfix' ],
	[ maillog_file => '@DIR@/maillog' ],
	[ maillog_file_prefixes => '@DIR@' ],
	[ inet_interfaces => '127.0.0.1' ],
	[ inet_protocols => 'ipv4' ],
	[ myhostname => 'postfix.example.test' ],
	[ mydomain => 'example.test' ],
	[ mydestination => '' ],
	[ mynetworks => '127.0.0.0/8' ],
	[ relayhost => '[127.0.0.1]:@SINKPORT@' ],
	[ alias_maps => '' ],
	[ alias_database => '' ],
	[ biff => 'no' ],
	# the tests want retries and failures to show at once
	[ queue_run_delay => '1s' ],
	[ minimal_backoff_time => '1s' ],
	[ maximal_backoff_time => '2s' ],
	[ smtp_connect_timeout => '5s' ],
);

# the main.cf lines of an instance with sasl_users (main => {...} still
# overrides them). Debian's Postfix reads smtpd.conf from
# $config_directory/sasl whatever cyrus_sasl_config_path says; upstream's
# reads it from cyrus_sasl_config_path: both point to the same directory.
# An empty smtpd_sasl_local_domain makes the realm Postfix's myhostname
# and the user names bare ("alice", not "alice@realm").
my @SASL_DEFAULTS = (
	[ smtpd_sasl_auth_enable => 'yes' ],
	[ smtpd_sasl_type => 'cyrus' ],
	[ smtpd_sasl_path => 'smtpd' ],
	[ cyrus_sasl_config_path => '@DIR@/etc/sasl' ],
	[ smtpd_sasl_local_domain => '' ],
	[ smtpd_sasl_security_options => 'noanonymous' ],
	[ smtpd_tls_auth_only => 'no' ],
);

# master.cf: Debian's stock services without chroot, smtpd on @PORT@
my $MASTER_CF = <<'EOF';
127.0.0.1:@PORT@ inet n -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF

# unusable - why no instance can run here (a string), or undef when one can
sub unusable {
	return 'needs root for a Postfix instance' if $> != 0;
	return "no Postfix ($MASTER)" unless -x $MASTER && -x $POSTFIX;
	return 'no postfix user' unless defined getpwnam('postfix');
	return undef;
}

# sasl_unusable - why an instance with sasl_users cannot run here (a
# string), or undef when it can: Postfix built with Cyrus SASL,
# saslpasswd2 (sasl2-bin), the sasldb, PLAIN and LOGIN plugins
# (libsasl2-modules-db, libsasl2-modules)
sub sasl_unusable {
	my $why = unusable();
	return $why if $why;
	return "no saslpasswd2 ($SASLPASSWD): install sasl2-bin"
	    unless -x $SASLPASSWD;
	for my $p (qw(sasldb plain login)) {
		return "no Cyrus SASL $p plugin in $SASL_PLUGINS"
		    unless glob("$SASL_PLUGINS/lib$p.so*");
	}
	my $types = qx{'$POSTCONF' -a 2>/dev/null};
	return 'Postfix lacks Cyrus SASL support (postconf -a)'
	    unless $types =~ /^cyrus$/m;
	return undef;
}

# new(%opts) - write the instance's configuration; nothing runs yet.
#   dir => DIR (default: a new temporary directory, removed at exit);
#     the instance lives in DIR/postfix/
#   port => the smtpd port (default: a free one)
#   sink_port => the port of the relayhost [127.0.0.1]:PORT (without it,
#     no relayhost line is written unless main sets one)
#   main => { param => value } over the defaults (undef removes a line)
#   master_extra => [ master.cf lines appended as they are ]
#   sasl_users => { user => password }: SMTP AUTH (PLAIN, LOGIN) with
#     Cyrus SASL against a sasldb of these users (see @SASL_DEFAULTS)
sub new {
	my ($class, %o) = @_;
	my $top = $o{dir} // tempdir('postfix-t-XXXXXX', TMPDIR => 1,
	    CLEANUP => 1);
	my $dir = "$top/postfix";
	mkdir $dir;
	# mail_owner must traverse the directories above its queue
	chmod 0755, $top, $dir;
	my $self = bless {
		dir => $dir,
		port => $o{port} // free_port(),
		sink_port => $o{sink_port},
		main => $o{main} // {},
		master_extra => $o{master_extra} // [],
		sasl_users => $o{sasl_users},
	}, $class;
	$self->write_config;
	return $self;
}

sub dir { $_[0]{dir} }
sub config_dir { "$_[0]{dir}/etc" }
sub port { $_[0]{port} }
sub log_file { "$_[0]{dir}/maillog" }
sub pid { $_[0]{pid} }
sub sasldb { "$_[0]{dir}/sasldb2" }

# sasl_realm - the realm the sasldb users live in: smtpd_sasl_local_domain
# when main sets it, else Postfix's myhostname (what Cyrus falls back to)
sub sasl_realm {
	my ($self) = @_;
	my $m = $self->{main};
	return $m->{smtpd_sasl_local_domain}
	    if defined $m->{smtpd_sasl_local_domain} &&
	    $m->{smtpd_sasl_local_domain} ne '';
	return $m->{myhostname} if exists $m->{myhostname};
	my ($d) = grep { $_->[0] eq 'myhostname' } @MAIN_DEFAULTS;
	return $d->[1];
}

sub _fill {
	my ($self, $s) = @_;
	$s =~ s/\@DIR\@/$self->{dir}/g;
	$s =~ s/\@PORT\@/$self->{port}/g;
	my $sp = $self->{sink_port} // '';
	$s =~ s/\@SINKPORT\@/$sp/g;
	return $s;
}

# write_config - (re)write main.cf and master.cf from the options
sub write_config {
	my ($self) = @_;
	my $d = $self->{dir};
	mkdir "$d/$_" for qw(etc spool data);
	my (undef, undef, $uid, $gid) = getpwnam('postfix');
	chown $uid, $gid, "$d/data" if defined $uid;
	my @defaults = @MAIN_DEFAULTS;
	push @defaults, @SASL_DEFAULTS if $self->{sasl_users};
	my %main = map { $_->[0] => $_->[1] } @defaults;
	delete $main{relayhost} unless defined $self->{sink_port};
	my @order = map { $_->[0] } @defaults;
	for my $k (sort keys %{ $self->{main} }) {
		push @order, $k unless exists $main{$k};
		$main{$k} = $self->{main}{$k};
	}
	my $text = "# written by t/lib/PostfixTest.pm\n";
	for my $k (@order) {
		next unless defined $main{$k};
		$text .= "$k = " . $self->_fill($main{$k}) . "\n";
	}
	spew("$d/etc/main.cf", $text);
	spew("$d/etc/master.cf", $self->_fill($MASTER_CF) .
	    join('', map { "$_\n" } @{ $self->{master_extra} }));
	$self->_write_sasl if $self->{sasl_users};
}

# _write_sasl - the sasldb (DIR/sasldb2, the postfix user's: smtpd reads it
# after dropping privileges) and etc/sasl/smtpd.conf
sub _write_sasl {
	my ($self) = @_;
	my $d = $self->{dir};
	my $db = $self->sasldb;
	my $realm = $self->sasl_realm;
	mkdir "$d/etc/sasl";
	chmod 0755, "$d/etc/sasl";
	unlink $db;
	for my $u (sort keys %{ $self->{sasl_users} }) {
		# -p: the password on stdin; -c: create the user
		open my $p, '|-', $SASLPASSWD, '-f', $db, '-p', '-c', '-u',
		    $realm, $u or croak "$SASLPASSWD: $!";
		print $p "$self->{sasl_users}{$u}\n";
		close $p or croak "$SASLPASSWD -u $realm $u failed ($?)";
	}
	my (undef, undef, $uid, $gid) = getpwnam('postfix');
	chown $uid, $gid, $db if defined $uid;
	chmod 0600, $db;
	spew("$d/etc/sasl/smtpd.conf", join('', map { "$_\n" }
	    'pwcheck_method: auxprop',
	    'auxprop_plugin: sasldb',
	    "sasldb_path: $db",
	    'mech_list: PLAIN LOGIN'));
}

# postfix(ARGS...) - run "postfix -c ETC ARGS"; returns (exit status,
# output)
sub postfix {
	my ($self, @args) = @_;
	my $etc = $self->config_dir;
	my $out = qx{'$POSTFIX' -c '$etc' @args 2>&1};
	return ($? >> 8, $out);
}

# start(timeout => 20) - "postfix check" (creates the queue), then the
# master in the foreground; returns when smtpd accepts connections. Dies
# with the log tail when Postfix does not come up.
sub start {
	my ($self, %o) = @_;
	my $why = unusable();
	croak $why if $why;
	croak 'already running' if $self->{pid};
	my ($st, $out) = $self->postfix('check');
	croak "postfix check failed ($st): $out" . $self->log_tail(20)
	    if $st;
	_install_signals();
	my $mout = "$self->{dir}/master.out";
	my $pid = fork;
	croak "fork: $!" unless defined $pid;
	if ($pid == 0) {
		# its own session and process group: stop() signals the
		# whole group, and nothing reaches the test's group
		POSIX::setsid();
		open STDIN, '<', '/dev/null';
		open STDOUT, '>>', $mout or POSIX::_exit(126);
		open STDERR, '>>', $mout or POSIX::_exit(126);
		exec $MASTER, '-c', $self->config_dir, '-d'
		    or POSIX::_exit(127);
	}
	$self->{pid} = $pid;
	$running{"$self"} = $self;
	my $deadline = time + ($o{timeout} // 20);
	for (;;) {
		if (waitpid($pid, WNOHANG) == $pid) {
			delete $self->{pid};
			delete $running{"$self"};
			croak "Postfix master exited ($?):\n" .
			    slurp($mout) . $self->log_tail(20);
		}
		last if can_connect('127.0.0.1', $self->{port});
		if (time > $deadline) {
			$self->stop;
			croak "Postfix smtpd not listening on port " .
			    "$self->{port}:\n" . slurp($mout) .
			    $self->log_tail(20);
		}
		sleep 0.1;
	}
	return $pid;
}

# running - true while the master runs
sub running {
	my ($self) = @_;
	return 0 unless $self->{pid};
	return waitpid($self->{pid}, WNOHANG) == 0;
}

# stop - SIGTERM to the master (it stops its daemons), then, after at most
# 10 s, SIGKILL to whatever is left in its process group. Safe to call
# twice; returns the master's wait status (undef when it was not running).
sub stop {
	my ($self) = @_;
	my $pid = delete $self->{pid};
	delete $running{"$self"};
	return undef unless $pid;
	my $st;
	kill 'TERM', $pid;
	my $deadline = time + 10;
	while (time < $deadline) {
		my $r = waitpid $pid, WNOHANG;
		if ($r == $pid || $r == -1) {
			$st = $?;
			last;
		}
		sleep 0.05;
	}
	unless (defined $st) {
		kill 'KILL', $pid;
		waitpid $pid, 0;
		$st = $?;
	}
	# daemons that outlive the master (smtpd in a session, postlogd)
	# stay in its process group: give them a moment, then kill the group
	$deadline = time + 3;
	while (kill(0, -$pid) && time < $deadline) {
		sleep 0.05;
	}
	kill 'KILL', -$pid if kill 0, -$pid;
	return $st;
}

# log_lines(SINCE) - the lines of the instance's maillog from line SINCE
sub log_lines {
	my ($self, $since) = @_;
	my @l = split /\n/, slurp($self->log_file);
	return @l[($since // 0) .. $#l];
}

# log_mark, log_tail(N) - PosternTest's, over this log_lines: the number
# of log lines now (to pass as SINCE), the last N lines as one string
sub log_mark { PosternTest::log_mark(@_) }
sub log_tail { PosternTest::log_tail(@_) }

# wait_for_log(RE, TIMEOUT, SINCE) - the first maillog line (from line
# SINCE) matching RE, polling up to TIMEOUT (10) seconds; undef if none
sub wait_for_log {
	my ($self, $re, $timeout, $since) = @_;
	return PosternTest::wait_for_log($self, $re, $timeout // 10, $since);
}

sub _stop_all {
	$_->stop for values %running;
}

# _install_signals - stop the instances on INT/TERM/HUP, then run the
# handler that was there (PosternTest's, for instance) or exit
my $signals_installed;
sub _install_signals {
	return if $signals_installed++;
	for my $sig (qw(INT TERM HUP)) {
		my $prev = $SIG{$sig};
		$SIG{$sig} = sub {
			_stop_all();
			$prev->(@_) if ref $prev eq 'CODE';
			exit 1;
		};
	}
}

sub DESTROY {
	my ($self) = @_;
	local ($?, $!, $@);
	$self->stop;
}

END {
	local $?;
	_stop_all();
}

1;

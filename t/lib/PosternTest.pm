# PosternTest.pm - harness for the black-box integration tests of posternd.
#
# One PosternTest object is one test environment: a temporary directory
# (removed at exit), a self-signed certificate, a password table, a
# configuration file built from the acceptance configuration of issue 2,
# and the processes started for it (posternd, smtp-sink, dnsmasq). Every
# process started here is killed when the object goes away, in END, and on
# SIGINT/SIGTERM, even when a test dies. Everything listens on 127.0.0.1.
#
# PosternTest::Client is a raw SMTP client for exact protocol tests.
#
# Besides the environment, the module holds the helpers the test files
# share: further posternd instances (instance, %QUICK_DELIVERY), sending
# messages (simple_message, submit, send_ok, the client's envelope,
# transaction and send_simple), smtp-sink (start_sink, sink_messages,
# wait_sink, parse_dump), the spool (spool_files), the log (wait_status),
# processes (wait_exit, run_child, wait_children), headers
# (split_message, header_value), files (slurp, spew), DKIM keys
# (dkim_rsa_key), the independent DKIM verifiers (dkim_verify,
# dkim_verifiers_unusable), the OpenDKIM milter (start_opendkim), small
# checks (serves_ok, like_diag) and the checks every file ends with
# (exit_ok, sanitizer_ok, finish_ok, finish_all_ok).
#
# SPDX-License-Identifier: ISC

package PosternTest;

use strict;
use warnings;

use Carp qw(croak);
use Exporter qw(import);
use File::Temp qw(tempdir);
use File::Spec;
use File::Find ();
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use IO::Socket::IP;
use MIME::Base64 qw(encode_base64);
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time sleep);
use Test::More ();

our @EXPORT_OK = qw(free_port poll_until reply_is can_connect
    have_ipv6_loopback simple_message qid_of parse_dump split_message
    header_value like_diag run_child wait_children slurp spew
    dkim_verifiers_unusable dkim_verify dkim_rsa_key);

# pid -> name of every process started by this module, for END
my %children;

# pid -> wait status of a child that _alive found gone (for exit_ok)
my %reaped;

# every environment that started posternd, in order (for finish_all_ok)
my @started;

# what the sanitizers print: a report of ASan, LSan or UBSan
my $SANITIZER_RE = qr/AddressSanitizer|LeakSanitizer|runtime error:/;

my $is_root = ($> == 0);
my $run_user = $ENV{POSTERN_TEST_USER} // 'nobody';

# free_port - bind port 0 on 127.0.0.1 and return the port the kernel chose
sub free_port {
	my $s = IO::Socket::IP->new(
	    LocalHost => '127.0.0.1', LocalPort => 0, Proto => 'tcp',
	    Listen => 1, ReuseAddr => 1)
	    or croak "free_port: $!";
	my $port = $s->sockport;
	close $s;
	return $port;
}

# poll_until(CODE, TIMEOUT, STEP) - call CODE until it returns true or
# TIMEOUT seconds pass; returns CODE's last value
sub poll_until {
	my ($code, $timeout, $step) = @_;
	$timeout //= 10;
	$step //= 0.05;
	my $deadline = time + $timeout;
	for (;;) {
		my $v = $code->();
		return $v if $v;
		return $v if time >= $deadline;
		sleep $step;
	}
}

# new(%opts) - a fresh environment. Options:
#   users => 1 (default) make the password table; cert => 1 (default);
#   name => NAME, the prefix "NAME: " of the names of the tests that
#   send_ok, exit_ok, sanitizer_ok and finish_ok run for this environment
#   (for files with several environments)
sub new {
	my ($class, %opts) = @_;
	my $dir = tempdir('postern-t-XXXXXX', TMPDIR => 1, CLEANUP => 1);
	# posternd chowns what it writes itself, but the unprivileged user
	# must be able to reach the directories
	chmod 0755, $dir;
	my $self = bless {
		dir => $dir,
		ports => {},
		pids => {},
		log => "$dir/posternd.log",
		name => $opts{name},
	}, $class;
	$self->make_cert unless defined $opts{cert} && !$opts{cert};
	$self->make_users unless defined $opts{users} && !$opts{users};
	return $self;
}

sub dir { $_[0]{dir} }
sub name { $_[0]{name} }

# the prefix of this environment's test names: "NAME: " or ""
sub _prefix { defined $_[0]{name} ? "$_[0]{name}: " : '' }
sub path { my ($self, $rel) = @_; return "$self->{dir}/$rel" }

# port(NAME) - the port of a listener kind (smtp, submission, smtps,
# relay), chosen once per environment
sub port {
	my ($self, $name) = @_;
	$self->{ports}{$name} //= free_port();
	return $self->{ports}{$name};
}

sub binary {
	return $ENV{POSTERND} if $ENV{POSTERND};
	my $top = abs_path(dirname(__FILE__) . '/../..');
	return "$top/posternd";
}

sub _run {
	my (@cmd) = @_;
	my $out = qx{@cmd 2>&1};
	croak "@cmd: failed ($?): $out" if $? != 0;
	return $out;
}

# make_cert(CN) - self-signed RSA certificate and key in cert.pem/key.pem
sub make_cert {
	my ($self, $cn) = @_;
	$cn //= 'relay.example.test';
	my $d = $self->{dir};
	_run('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
	    '-keyout', "$d/key.pem", '-out', "$d/cert.pem", '-days', '2',
	    '-subj', "/CN=$cn", '-addext', "subjectAltName=DNS:$cn");
	chmod 0644, "$d/cert.pem";
	chmod 0600, "$d/key.pem";
	return ("$d/cert.pem", "$d/key.pem");
}

# the overrides of the delivery tests: clients in 127.0.0.0/8 may relay,
# the queue runs and retries every 1-2 s
our %QUICK_DELIVERY = (
	mynetworks => '127.0.0.0/8',
	queue_run_delay => '1s',
	minimal_backoff_time => '1s',
	maximal_backoff_time => '2s',
);

# the users of the password table, one per crypt(3) scheme
our %USERS = (
	alice => { password => 'alice-secret-1', method => 'yescrypt' },
	bob => { password => 'bob-secret-2', method => 'bcrypt' },
	carol => { password => 'carol-secret-3', method => 'sha512crypt' },
);

# make_users(%users) - "user: hash" lines in DIR/users; default %USERS
sub make_users {
	my ($self, %users) = @_;
	%users = %USERS unless %users;
	my $file = "$self->{dir}/users";
	open my $fh, '>', $file or croak "$file: $!";
	print $fh "# user: crypt(3) hash\n";
	for my $u (sort keys %users) {
		my $pw = $users{$u}{password};
		my $m = $users{$u}{method};
		open my $p, '-|', 'mkpasswd', '-m', $m, $pw
		    or croak "mkpasswd: $!";
		my $hash = <$p>;
		close $p or croak "mkpasswd -m $m failed";
		chomp $hash;
		print $fh "$u: $hash\n";
	}
	close $fh or croak "$file: $!";
	chmod 0644, $file;
	$self->{users} = { %users };
	return $file;
}

# config_text(%overrides) - the acceptance configuration with this
# environment's paths and ports; an override whose value is undef removes
# the parameter
sub config_text {
	my ($self, %over) = @_;
	my $d = $self->{dir};
	my @p = (
		myhostname => 'relay.example.test',
		mydestination => 'example.test',
		mynetworks => '192.0.2.0/24',
		relayhost => '[127.0.0.1]:' . $self->port('relay'),
		queue_directory => "$d/spool",
		local_transport => "maildir:$d/mail",
		listen => join(' ',
		    'smtp/127.0.0.1:' . $self->port('smtp'),
		    'submission/127.0.0.1:' . $self->port('submission'),
		    'smtps/127.0.0.1:' . $self->port('smtps')),
		smtpd_tls_cert_file => "$d/cert.pem",
		smtpd_tls_key_file => "$d/key.pem",
		smtpd_sasl_password_maps => "texthash:$d/users",
		smtpd_filters => 'relay',
		message_size_limit => 10485760,
		smtpd_recipient_limit => 100,
	);
	push @p, (mail_owner => $run_user) if $is_root;
	my (@order, %val);
	while (my ($k, $v) = splice @p, 0, 2) {
		push @order, $k;
		$val{$k} = $v;
	}
	for my $k (sort keys %over) {
		push @order, $k unless exists $val{$k};
		$val{$k} = $over{$k};
	}
	my $text = "# generated by t/lib/PosternTest.pm\n";
	for my $k (@order) {
		next unless defined $val{$k};
		$text .= "$k = $val{$k}\n";
	}
	return $text;
}

# write_config(%overrides) - write DIR/main.cf and return its path
sub write_config {
	my ($self, %over) = @_;
	my $file = "$self->{dir}/main.cf";
	open my $fh, '>', $file or croak "$file: $!";
	print $fh $self->config_text(%over);
	close $fh or croak "$file: $!";
	$self->{config} = $file;
	# the listeners to wait for
	my $text = $self->config_text(%over);
	my ($listen) = $text =~ /^listen = (.*)$/m;
	$self->{listen} = [ map { (split m{/}, $_)[1] } split ' ',
	    $listen // '' ];
	return $file;
}

sub _spawn {
	my ($self, $name, $stdout, $stderr, @cmd) = @_;
	my $pid = fork;
	croak "fork: $!" unless defined $pid;
	if ($pid == 0) {
		open STDIN, '<', '/dev/null';
		open STDOUT, '>>', $stdout or POSIX::_exit(126);
		open STDERR, '>>', $stderr or POSIX::_exit(126);
		setpgrp(0, 0);
		exec @cmd or POSIX::_exit(127);
	}
	$children{$pid} = $name;
	$self->{pids}{$name} = $pid;
	return $pid;
}

# spawn(NAME, CMD...) - run any helper process (output in DIR/NAME.log);
# it is stopped with stop(NAME), at cleanup, or in END
sub spawn {
	my ($self, $name, @cmd) = @_;
	my $log = "$self->{dir}/$name.log";
	return $self->_spawn($name, $log, $log, @cmd);
}

sub _alive {
	my ($pid) = @_;
	return 0 unless $pid;
	my $r = waitpid $pid, WNOHANG;
	if ($r == $pid || $r == -1) {
		$reaped{$pid} = $? if $r == $pid;
		delete $children{$pid};
		return 0;
	}
	return 1;
}

# can_connect(HOST, PORT) - true when a TCP connection to HOST:PORT
# succeeds within a second (HOST may be an IPv6 address)
sub can_connect {
	my ($host, $port) = @_;
	my $s = IO::Socket::IP->new(PeerHost => $host, PeerPort => $port,
	    Proto => 'tcp', Timeout => 1) or return 0;
	close $s;
	return 1;
}

# have_ipv6_loopback - true when ::1 can be bound and reached
sub have_ipv6_loopback {
	my $l = IO::Socket::IP->new(LocalHost => '::1', LocalPort => 0,
	    Proto => 'tcp', Listen => 1) or return 0;
	my $ok = can_connect('::1', $l->sockport);
	close $l;
	return $ok;
}

# _can_connect("HOST:PORT" or "[HOST]:PORT")
sub _can_connect {
	my ($hostport) = @_;
	my ($host, $port) = $hostport =~ /^\[?([^\]]*)\]?:(\d+)$/ or return 0;
	return can_connect($host, $port);
}

# start_posternd(%opts) - write the configuration (opts{config} = hash of
# overrides) unless already written, start posternd in the foreground
# with stderr in DIR/posternd.log, wait until every listener accepts a
# connection (10 s). Dies with the log tail if posternd exits early.
# The environment is remembered for finish_all_ok.
sub start_posternd {
	my ($self, %opts) = @_;
	$self->write_config(%{ $opts{config} // {} })
	    if $opts{config} || !$self->{config};
	push @started, $self unless $self->{started}++;
	delete $self->{exit_status};
	my @args = @{ $opts{args} // [] };
	my $mark = $self->log_mark;
	my $pid = $self->_spawn('posternd', $self->{log}, $self->{log},
	    $self->binary, @args, '-c', $self->{config});
	my $deadline = time + ($opts{timeout} // 10);
	my @wait = @{ $self->{listen} };
	my $probes = 0;
	while (@wait) {
		if (!_alive($pid)) {
			croak "posternd exited early (status $?):\n" .
			    $self->log_tail(30);
		}
		if (time > $deadline) {
			$self->stop;
			croak "posternd: listeners @wait not ready in time:\n" .
			    $self->log_tail(30);
		}
		my @ready = grep { _can_connect($_) } @wait;
		$probes += @ready;
		my %r = map { $_ => 1 } @ready;
		@wait = grep { !$r{$_} } @wait;
		sleep 0.05 if @wait;
	}
	# The probes were sessions too: wait until the daemon has ended
	# them, so that they do not count against a test's connection
	# limits (a slow sanitizer build may take a while).
	poll_until(sub {
		(grep { /: disconnect from / } $self->log_lines($mark)) >=
		    $probes
	}, 5);
	return $pid;
}

sub posternd_pid { $_[0]{pids}{posternd} }

# wait_sessions_ended(TIMEOUT) - wait until every session the daemon
# logged as "connect from" has logged its "disconnect from": nothing of
# an earlier test part still holds a connection slot. Returns true then.
sub wait_sessions_ended {
	my ($self, $timeout) = @_;
	return poll_until(sub {
		my @l = $self->log_lines;
		my $in = grep { /: connect from / } @l;
		my $out = grep { /: disconnect from / } @l;
		return $in == $out;
	}, $timeout // 5);
}

# instance(name => NAME, sink => 1, config => {...}) - a further, fresh
# environment (own directory and spool, no password table) with posternd
# running: an smtp listener only, %QUICK_DELIVERY, smtp_connect_timeout
# = 5s, then the overrides in config. sink => 1 starts smtp-sink (the
# relayhost) before posternd. For files that run several posternd.
sub instance {
	my ($class, %o) = @_;
	my $t = $class->new(users => 0, name => $o{name});
	$t->start_smtp_sink if $o{sink};
	$t->start_posternd(config => {
		listen => 'smtp/127.0.0.1:' . $t->port('smtp'),
		smtpd_sasl_password_maps => undef,
		%QUICK_DELIVERY,
		smtp_connect_timeout => '5s',
		%{ $o{config} // {} },
	});
	return $t;
}

# check_config(%overrides) - run "posternd -n -c FILE"; returns
# (exit status, output)
sub check_config {
	my ($self, %over) = @_;
	my $file = $self->write_config(%over);
	my $bin = $self->binary;
	my $out = qx{'$bin' -n -c '$file' 2>&1};
	return ($? >> 8, $out);
}

sub _stop_pid {
	my ($pid, $sig, $timeout) = @_;
	return undef unless $pid && _alive($pid);
	kill $sig, $pid;
	my $deadline = time + $timeout;
	while (time < $deadline) {
		my $r = waitpid $pid, WNOHANG;
		if ($r == $pid || $r == -1) {
			my $st = $?;
			delete $children{$pid};
			return $st;
		}
		sleep 0.02;
	}
	kill 'KILL', $pid;
	waitpid $pid, 0;
	my $st = $?;
	delete $children{$pid};
	return $st;
}

# _ended(NAME, PID, STATUS) - note how posternd ended, for exit_ok
sub _ended {
	my ($self, $name, $pid, $st) = @_;
	return unless $pid && $name eq 'posternd';
	$self->{exit_status} = $st // delete $reaped{$pid};
}

# _signal_stop(NAME, SIGNAL) - stop, kill9
sub _signal_stop {
	my ($self, $name, $sig) = @_;
	$name //= 'posternd';
	my $pid = delete $self->{pids}{$name};
	my $st = _stop_pid($pid, $sig, 10);
	$self->_ended($name, $pid, $st);
	return $st;
}

# stop(NAME) - SIGTERM, wait up to 10 s, then SIGKILL; returns the wait
# status (undef when it was not running). NAME defaults to posternd.
sub stop { $_[0]->_signal_stop($_[1], 'TERM') }

# kill9(NAME) - SIGKILL at once
sub kill9 { $_[0]->_signal_stop($_[1], 'KILL') }

# wait_exit(TIMEOUT, NAME) - wait up to TIMEOUT seconds for NAME
# (posternd) to exit by itself, after a signal the test sent; returns
# (wait status, seconds taken), or (undef, TIMEOUT) while it still runs
# ((undef, 0) when it is not running)
sub wait_exit {
	my ($self, $timeout, $name) = @_;
	$name //= 'posternd';
	my $pid = $self->{pids}{$name};
	return (undef, 0) unless $pid;
	my $t0 = time;
	while (time - $t0 < $timeout) {
		my $r = waitpid $pid, WNOHANG;
		if ($r == $pid || $r == -1) {
			my $st = $r == $pid ? $? : delete $reaped{$pid};
			delete $children{$pid};
			delete $self->{pids}{$name};
			$self->_ended($name, $pid, $st);
			return (defined $st ? ($st, time - $t0) : (undef, 0));
		}
		sleep 0.02;
	}
	return (undef, $timeout);
}

# run_child(CODE) - fork; the child runs CODE (in an eval) and leaves
# with POSIX::_exit, status 0 when CODE returned true and 1 otherwise, so
# that it never runs the harness' END or DESTROY. Returns the pid.
sub run_child {
	my ($code) = @_;
	my $pid = fork;
	croak "fork: $!" unless defined $pid;
	if ($pid == 0) {
		my $ok = eval { $code->() };
		POSIX::_exit($ok ? 0 : 1);
	}
	return $pid;
}

# wait_children(PIDS, TIMEOUT) - wait up to TIMEOUT seconds for the
# children in PIDS (a hash reference pid => key), SIGKILL those left;
# returns { key => wait status } of the children that ended in time
sub wait_children {
	my ($kids, $timeout) = @_;
	my %left = %$kids;
	my %status;
	my $deadline = time + $timeout;
	while (%left && time < $deadline) {
		for my $pid (keys %left) {
			next unless waitpid($pid, WNOHANG) == $pid;
			$status{ delete $left{$pid} } = $?;
		}
		sleep 0.05;
	}
	kill 'KILL', keys %left;
	waitpid $_, 0 for keys %left;
	return \%status;
}

sub is_running {
	my ($self, $name) = @_;
	return _alive($self->{pids}{$name // 'posternd'});
}

# log_lines(SINCE) - the lines of posternd's log, from line SINCE (0)
sub log_lines {
	my ($self, $since) = @_;
	open my $fh, '<', $self->{log} or return ();
	my @l = <$fh>;
	close $fh;
	chomp @l;
	return @l[($since // 0) .. $#l];
}

# log_mark - the current number of log lines, to pass as SINCE
sub log_mark {
	my ($self) = @_;
	my @l = $self->log_lines;
	return scalar @l;
}

sub log_tail {
	my ($self, $n) = @_;
	my @l = $self->log_lines;
	@l = @l[-$n .. -1] if @l > $n;
	return join("\n", @l) . "\n";
}

# wait_for_log(RE, TIMEOUT, SINCE) - the first log line matching RE,
# polling until TIMEOUT (5 s); undef when none appears
sub wait_for_log {
	my ($self, $re, $timeout, $since) = @_;
	my $found;
	poll_until(sub {
		($found) = grep { $_ =~ $re } $self->log_lines($since);
		return defined $found;
	}, $timeout // 5);
	return $found;
}

# start_sink(NAME, HOST, PORT, ARGS...) - Postfix's smtp-sink as process
# NAME on HOST:PORT (any loopback address, IPv6 too); every transaction
# is dumped into its own file under DIR/NAME/ (see sink_messages), its
# output goes to DIR/NAME.log. Extra ARGS go before the address.
sub start_sink {
	my ($self, $name, $host, $port, @args) = @_;
	my $dump = "$self->{dir}/$name";
	mkdir $dump;
	if ($is_root) {
		my (undef, undef, $uid, $gid) = getpwnam($run_user);
		chown $uid, $gid, $dump if defined $uid;
		unshift @args, '-u', $run_user;
	}
	my $addr = $host =~ /:/ ? "[$host]:$port" : "$host:$port";
	my $pid = $self->spawn($name, '/usr/sbin/smtp-sink',
	    '-d', "$dump/msg.", @args, $addr, '64');
	my $ok = poll_until(sub {
		_alive($pid) && can_connect($host, $port)
	}, 10);
	croak "smtp-sink $name on $addr did not start" unless $ok;
	return $pid;
}

# start_smtp_sink(PORT, ARGS...) - the relayhost: start_sink named
# smtp-sink on 127.0.0.1:PORT (default port('relay'))
sub start_smtp_sink {
	my ($self, $port, @args) = @_;
	return $self->start_sink('smtp-sink', '127.0.0.1',
	    $port // $self->port('relay'), @args);
}

# sink_messages(NAME) - contents of the files sink NAME (smtp-sink)
# dumped, oldest first
sub sink_messages {
	my ($self, $name) = @_;
	$name //= 'smtp-sink';
	my @f = sort { -M $b <=> -M $a || $a cmp $b }
	    glob "$self->{dir}/$name/msg.*";
	return map { slurp($_) } @f;
}

# wait_sink(RE, TIMEOUT, NAME) - poll until a message of sink NAME
# (smtp-sink) matches RE; returns the matching messages (empty list on
# timeout)
sub wait_sink {
	my ($self, $re, $timeout, $name) = @_;
	my @m;
	poll_until(sub {
		@m = grep { $_ =~ $re } $self->sink_messages($name);
		return scalar @m;
	}, $timeout // 10);
	return @m;
}

# parse_dump(TEXT) - one smtp-sink dump: { mail => X-Mail-Args,
# rcpt => [X-Rcpt-Args...], head => [the header lines after the sink's
# own Received, unfolded], body => the body (LF line ends, the sink's
# trailing empty line removed) }
sub parse_dump {
	my ($text) = @_;
	my ($head, $body) = split /\n\n/, $text, 2;
	$body //= '';
	$body =~ s/\n\z//;
	$head =~ s/\n[ \t]+/ /g;
	my @h = split /\n/, $head;
	my %d = (rcpt => [], body => $body);
	while (@h) {
		my $l = shift @h;
		$d{mail} = $1 if $l =~ /^X-Mail-Args: (.*)/;
		push @{ $d{rcpt} }, $1 if $l =~ /^X-Rcpt-Args: (.*)/;
		last if $l =~ /^Received: .*\(smtp-sink\)/;
	}
	$d{head} = \@h;
	return \%d;
}

# start_dnsmasq(RECORDS...) - dnsmasq on a free port of 127.0.0.1 with
# the given configuration lines (mx-host=..., txt-record=...); returns
# the port. No upstream, no /etc/hosts, loopback only.
sub start_dnsmasq {
	my ($self, @records) = @_;
	my $port = $self->port('dns');
	my $d = $self->{dir};
	my $conf = "$d/dnsmasq.conf";
	open my $fh, '>', $conf or croak "$conf: $!";
	print $fh join("\n",
	    "port=$port", 'listen-address=127.0.0.1', 'bind-interfaces',
	    'no-resolv', 'no-hosts', 'no-poll', 'log-queries',
	    "log-facility=$d/dnsmasq.log", "pid-file=",
	    ($is_root ? ("user=$run_user") : ()),
	    @records), "\n";
	close $fh;
	# the log is written after the privilege drop
	open my $lf, '>', "$d/dnsmasq.log";
	close $lf;
	chmod 0666, "$d/dnsmasq.log";
	my $pid = $self->_spawn('dnsmasq', "$d/dnsmasq.out", "$d/dnsmasq.out",
	    '/usr/sbin/dnsmasq', '-k', '-C', $conf);
	my $ok = poll_until(sub {
		return 0 unless _alive($pid);
		return slurp("$d/dnsmasq.log") =~ /started/;
	}, 10);
	croak "dnsmasq did not start: " . slurp("$d/dnsmasq.out") .
	    slurp("$d/dnsmasq.log") unless $ok;
	return $port;
}

# maildir_messages(USER, DOMAIN) - contents of the files in
# mail/DOMAIN/USER/new/, oldest first
sub maildir_messages {
	my ($self, $user, $domain) = @_;
	$domain //= 'example.test';
	my @f = sort { -M $b <=> -M $a || $a cmp $b }
	    glob "$self->{dir}/mail/$domain/$user/new/*";
	return map { slurp($_) } @f;
}

# wait_maildir(USER, COUNT, TIMEOUT) - poll until USER has at least
# COUNT messages; returns the messages
sub wait_maildir {
	my ($self, $user, $count, $timeout, $domain) = @_;
	my @m;
	poll_until(sub {
		@m = $self->maildir_messages($user, $domain);
		return @m >= $count;
	}, $timeout // 10);
	return @m;
}

# wait_message(USER, RE, TIMEOUT, DOMAIN) - poll until a message of USER
# matches RE; returns the matching messages (empty list on timeout)
sub wait_message {
	my ($self, $user, $re, $timeout, $domain) = @_;
	my @m;
	poll_until(sub {
		@m = grep { $_ =~ $re } $self->maildir_messages($user, $domain);
		return scalar @m;
	}, $timeout // 10);
	return @m;
}

# spool_files - { state directory => [file names (queue IDs)] } of every
# file under the spool (queue, deferred, incoming, corrupt, ...)
sub spool_files {
	my ($self) = @_;
	my %f;
	my $top = "$self->{dir}/spool";
	return \%f unless -d $top;
	File::Find::find({ no_chdir => 1, wanted => sub {
		return unless -f $_;
		my ($state) = $File::Find::name =~ m{^\Q$top\E/([^/]+)/};
		return unless defined $state;
		push @{ $f{$state} }, (m{([^/]+)$})[0];
	} }, $top);
	return \%f;
}

# split_message(TEXT) - (the unfolded header lines of the top header
# block, the body), CRLF turned into LF
sub split_message {
	my ($text) = @_;
	$text =~ s/\r\n/\n/g;
	my ($head, $body) = split /\n\n/, $text, 2;
	$head =~ s/\n[ \t]+/ /g;
	return ([ split /\n/, $head ], $body // '');
}

# header_value(LINES, NAME) - the value of the first NAME field in LINES
# (header lines as split_message returns them), undef when there is none
sub header_value {
	my ($lines, $name) = @_;
	for (@$lines) {
		return $1 if /^\Q$name\E:\s*(.*)$/i;
	}
	return undef;
}

# simple_message(SUBJECT, FROM, TO) - a small 7-bit message as sent after
# DATA (CRLF lines): From, To, Subject, Message-ID <SUBJECT@client.example>
# and the body "body of SUBJECT"
sub simple_message {
	my ($subject, $from, $to) = @_;
	return join '', map { "$_\r\n" } "From: <$from>", "To: <$to>",
	    "Subject: $subject", "Message-ID: <$subject\@client.example>",
	    '', "body of $subject";
}

# qid_of(REPLY) - the queue ID of a "250 ... queued as ID" reply, or undef
sub qid_of {
	my ($r) = @_;
	return undef unless $r && $r->{code} == 250;
	my ($qid) = $r->{text} =~ /queued as ([A-Za-z0-9]+)/;
	return $qid;
}

# submit(FROM, RCPTS, TEXT, MAIL_ARGS) - one transaction in a new session
# to the smtp listener (see PosternTest::Client::transaction), then QUIT;
# returns (final reply, queue ID)
sub submit {
	my ($self, $from, $rcpts, $text, $margs) = @_;
	my $c = $self->session('smtp');
	my ($r, $qid) = $c->transaction($from, $rcpts, $text, $margs);
	$c->cmd('QUIT');
	$c->close;
	return ($r, $qid);
}

# send_ok(FROM, TO, SUBJECT) - submit simple_message(SUBJECT, FROM, TO);
# one test: "SUBJECT accepted" (250 2.0.0). Returns the queue ID, or
# 'NOQID'.
sub send_ok {
	my ($self, $from, $to, $subject) = @_;
	my $c = $self->session('smtp');
	my ($r, $qid) = $c->send_simple($from, $to, $subject);
	$c->cmd('QUIT');
	$c->close;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	reply_is($r, 250, '2.0.0', $self->_prefix . "$subject accepted");
	return $qid // 'NOQID';
}

# wait_status(QID, STATUS_RE, TIMEOUT, SINCE) - the first delivery log
# line "QID: to=<...>, ... status=STATUS" (default sent, deferred or
# bounced), polling until TIMEOUT (15 s); undef when none appears
sub wait_status {
	my ($self, $qid, $status, $timeout, $since) = @_;
	$status //= qr/sent|deferred|bounced/;
	return $self->wait_for_log(
	    qr/\Q$qid\E: to=<[^>]*>, .*status=(?:$status)\b/,
	    $timeout // 15, $since);
}

# serves_ok(NAME) - one test: a new smtp session is greeted and NOOP
# gets 250 (the daemon still serves)
sub serves_ok {
	my ($self, $name) = @_;
	my $c = eval { $self->session('smtp') };
	my $err = $@;
	my $r = $c ? $c->cmd('NOOP') : undef;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $ok = Test::More::ok($r && $r->{code} == 250, $name);
	Test::More::diag($err || 'no NOOP reply') unless $ok;
	if ($c) {
		$c->cmd('QUIT');
		$c->close;
	}
	return $ok;
}

# like_diag(GOT, RE, NAME, CONTEXT) - Test::More::like that also prints
# CONTEXT (a log tail, the text GOT came from) on failure; GOT undef is
# shown as "(nothing)"
sub like_diag {
	my ($got, $re, $name, $context) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $ok = Test::More::like($got // '(nothing)', $re, $name);
	Test::More::diag($context // '') unless $ok;
	return $ok;
}

# --- the checks every test file ends with ------------------------------

# exit_ok(NAME) - stop posternd if it runs (SIGTERM), then one test: the
# last time it ended (stop, kill9, wait_exit) its wait status was 0.
# NAME defaults to "posternd exits 0 on SIGTERM".
sub exit_ok {
	my ($self, $name) = @_;
	$self->stop;
	my $st = $self->{exit_status};
	$name //= $self->_prefix . 'posternd exits 0 on SIGTERM';
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $ok = Test::More::ok(defined $st && $st == 0, $name);
	Test::More::diag('wait status ' . ($st // 'none') . "\n" .
	    $self->log_tail(20)) unless $ok;
	return $ok;
}

# sanitizer_ok(NAME, EXTRA TEXT...) - one test: no AddressSanitizer,
# LeakSanitizer or UBSan ("runtime error:") report in posternd's log nor
# in the EXTRA TEXT (other output of posternd). Call it once posternd
# has stopped: LeakSanitizer reports at exit. NAME defaults to "no
# sanitizer report in the log". Prints the report on failure.
sub sanitizer_ok {
	my ($self, $name, @extra) = @_;
	my @l = ($self->log_lines, map { split /\n/ } @extra);
	my ($i) = grep { $l[$_] =~ $SANITIZER_RE } 0 .. $#l;
	$name //= $self->_prefix . 'no sanitizer report in the log';
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $ok = Test::More::ok(!defined $i, $name);
	Test::More::diag(join "\n",
	    @l[$i .. ($i + 60 < $#l ? $i + 60 : $#l)]) unless $ok;
	return $ok;
}

# finish_ok - exit_ok, then sanitizer_ok: two tests
sub finish_ok {
	my ($self) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $exit = $self->exit_ok;
	my $clean = $self->sanitizer_ok;
	return $exit && $clean;
}

# PosternTest->finish_all_ok - finish_ok for every environment that has
# started posternd, in the order they started it: the end of every test
# file. Give each environment a name when there are several.
sub finish_all_ok {
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $ok = 1;
	for my $t (@started) {
		$ok = 0 unless $t->finish_ok;
	}
	return $ok;
}

# PosternTest->started - the environments that have started posternd
sub started { return @started }

# --- files, DKIM keys and verifiers, OpenDKIM ---------------------------

# slurp(FILE) - the whole content of FILE, '' when it cannot be read
sub slurp {
	my ($file) = @_;
	open my $fh, '<', $file or return '';
	local $/;
	my $c = <$fh>;
	close $fh;
	return $c // '';
}

# spew(FILE, TEXT) - write TEXT to FILE as it is (bytes, no newline
# translation), replacing what was there; dies on failure
sub spew {
	my ($file, $text) = @_;
	open my $fh, '>:raw', $file or croak "$file: $!";
	print $fh $text;
	close $fh or croak "$file: $!";
}

my $HELPERS = abs_path(dirname(__FILE__) . '/../helpers');
my $PYTHON = '/usr/bin/python3';

# the independent DKIM verifiers of t/helpers: name => interpreter,
# script; each prints "pass|fail|unsupported d=D s=S a=A" per signature
my %DKIM_VERIFIERS = (
	'Mail::DKIM' => [ $^X, "$HELPERS/dkim_verify.pl" ],
	dkimpy => [ $PYTHON, "$HELPERS/dkim_verify.py" ],
);

# dkim_verifiers_unusable - why the DKIM verifiers cannot run here (a
# string), or undef when both can: dkimpy needs python3-dkim and
# python3-dnspython, Mail::DKIM libmail-dkim-perl
sub dkim_verifiers_unusable {
	return "$PYTHON with dkim and dns is needed"
	    unless system($PYTHON, '-c', 'import dkim, dns.query') == 0;
	return 'Mail::DKIM (libmail-dkim-perl) is needed'
	    unless eval { require Mail::DKIM::Verifier; 1 };
	return undef;
}

# dkim_verify(FILE, DNS_PORT, VERIFIER) - verify every DKIM-Signature of
# the message in FILE with VERIFIER ('Mail::DKIM' or 'dkimpy'), the keys
# looked up in the DNS server 127.0.0.1:DNS_PORT; returns (exit status,
# output with stderr)
sub dkim_verify {
	my ($file, $dns, $verifier) = @_;
	my $v = $DKIM_VERIFIERS{$verifier} or
	    croak "dkim_verify: unknown verifier $verifier";
	my $out = qx{'$v->[0]' '$v->[1]' --dns 127.0.0.1:$dns '$file' 2>&1};
	return ($? >> 8, $out);
}

# dkim_rsa_key(FILE) - a new RSA-2048 private key in FILE (mode 0600);
# returns its DKIM TXT record ("v=DKIM1; k=rsa; p=...") as the quoted
# strings of at most 250 bytes, comma-separated, that dnsmasq's
# txt-record wants
sub dkim_rsa_key {
	my ($key) = @_;
	_run('openssl', 'genpkey', '-quiet', '-algorithm', 'RSA',
	    '-pkeyopt', 'rsa_keygen_bits:2048', '-out', $key);
	chmod 0600, $key;
	my $der = qx{openssl pkey -in '$key' -pubout -outform DER};
	croak "openssl pkey -pubout -in $key failed"
	    if $? != 0 || !length $der;
	my @parts = ('v=DKIM1; k=rsa; p=' . encode_base64($der, '')) =~
	    /(.{1,250})/g;
	return join(',', map { qq("$_") } @parts);
}

our $OPENDKIM = $ENV{OPENDKIM} // '/usr/sbin/opendkim';

# start_opendkim(%opts) - the Debian OpenDKIM daemon as a signing milter,
# in the foreground, as process NAME (stopped with stop(NAME), at
# cleanup or in END; output in DIR/NAME.log). Options:
#   name => NAME (default "opendkim"); its configuration is DIR/NAME.conf
#   socket => 'inet' (default: 127.0.0.1, port(NAME)) or 'unix'
#     (DIR/NAME.sock, mode 0777: UMask 000, for an unprivileged posternd)
#   domain => the d= (default example.org), selector => the s= (default
#   rsasel), key => the private key file (see dkim_rsa_key; required)
# Dies when OpenDKIM refuses the configuration ("refuses its
# configuration", with its output) or does not listen within 15 s (with
# its log). Returns the milter's address as smtpd_milters writes it:
# "inet:127.0.0.1:PORT" or "unix:PATH".
sub start_opendkim {
	my ($self, %o) = @_;
	my $name = $o{name} // 'opendkim';
	my $kind = $o{socket} // 'inet';
	croak 'start_opendkim: key => FILE is required' unless $o{key};
	my ($listen, $spec, $ready);
	if ($kind eq 'inet') {
		my $port = $self->port($name);
		$listen = "inet:$port\@127.0.0.1";
		$spec = "inet:127.0.0.1:$port";
		$ready = sub { can_connect('127.0.0.1', $port) };
	} elsif ($kind eq 'unix') {
		my $sock = $self->path("$name.sock");
		$listen = "local:$sock";
		$spec = "unix:$sock";
		$ready = sub { -S $sock };
	} else {
		croak "start_opendkim: socket $kind: not inet or unix";
	}
	my $conf = $self->path("$name.conf");
	spew($conf, join("\n", 'Mode s', "Socket $listen",
	    "KeyFile $o{key}", 'Selector ' . ($o{selector} // 'rsasel'),
	    'Domain ' . ($o{domain} // 'example.org'),
	    'RequireSafeKeys false', 'Background no', 'Syslog no',
	    'UMask 000', ''));
	my $out = qx{'$OPENDKIM' -x '$conf' -n 2>&1};
	croak "opendkim refuses its configuration $conf: $out" if $? != 0;
	my $pid = $self->spawn($name, $OPENDKIM, '-f', '-x', $conf);
	poll_until(sub { _alive($pid) && $ready->() }, 15) or
	    croak "opendkim $name does not listen on $spec: " .
	    slurp($self->path("$name.log"));
	return $spec;
}

# client(KIND, %opts) - a connected PosternTest::Client to a listener
# (smtps connects with implicit TLS)
sub client {
	my ($self, $kind, %opts) = @_;
	$kind //= 'smtp';
	return PosternTest::Client->new(port => $self->port($kind),
	    tls => ($kind eq 'smtps'), %opts);
}

# session(KIND, helo => NAME, no_ehlo => 1) - a client that has read
# the 220 greeting and (unless no_ehlo) said EHLO successfully
sub session {
	my ($self, $kind, %o) = @_;
	my $c = $self->client($kind, %o);
	my $g = $c->greeting;
	croak "no 220 greeting from $kind: " . ($g ? $g->{last} : 'closed')
	    unless $g && $g->{code} == 220;
	return $c if $o{no_ehlo};
	my ($r) = $c->ehlo($o{helo});
	croak "EHLO refused on $kind: " . ($r ? $r->{last} : 'closed')
	    unless $r && $r->{code} == 250;
	return $c;
}

# reply_is(REPLY, CODE, ECODE, [TEXT_RE], NAME) - a Test::More check of
# one reply. CODE is a number or a regex; ECODE a string (exact), a regex
# or undef (not checked); TEXT_RE, when given, must match the text.
# Prints got/want on failure.
sub reply_is {
	my ($r, $code, $ecode, @rest) = @_;
	my $name = pop @rest;
	my ($text_re) = @rest;
	my $ok = defined $r;
	if ($ok) {
		$ok &&= ref $code ? $r->{code} =~ $code : $r->{code} == $code;
		if (defined $ecode) {
			$ok &&= ref $ecode ? $r->{ecode} =~ $ecode :
			    $r->{ecode} eq $ecode;
		}
		$ok &&= $r->{text} =~ $text_re if $text_re;
	}
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	Test::More::ok($ok, $name) or Test::More::diag(
	    '  got: ' . ($r ? join("\n", @{ $r->{lines} }) :
	    '(no reply: connection closed or timeout)') . "\n" .
	    ' want: ' . $code . ' ' . ($ecode // '*') .
	    ($text_re ? " text =~ $text_re" : ''));
	return $ok;
}

# stop every process of this environment
sub cleanup {
	my ($self) = @_;
	for my $name (keys %{ $self->{pids} }) {
		$self->stop($name);
	}
}

sub DESTROY {
	my ($self) = @_;
	local ($?, $!, $@);
	$self->cleanup;
}

sub _kill_all {
	for my $pid (keys %children) {
		_stop_pid($pid, 'TERM', 5);
	}
}

END {
	local $?;
	_kill_all();
}

$SIG{INT} = $SIG{TERM} = $SIG{HUP} = $SIG{PIPE} = sub { _kill_all(); exit 1 };

package PosternTest::Client;

# A raw SMTP client: bytes in, replies out, nothing hidden.

use strict;
use warnings;

use Carp qw(croak);
use IO::Select;
use IO::Socket::IP;
use IO::Socket::SSL;
use MIME::Base64 qw(encode_base64);
use Time::HiRes qw(time);

# new(port => P, tls => 0|1, ssl => {IO::Socket::SSL options},
#     timeout => seconds for each read, 10 by default)
# Connects to 127.0.0.1; dies when the connection fails. The greeting is
# not read: call read_reply.
sub new {
	my ($class, %o) = @_;
	my $self = bless {
		port => $o{port},
		timeout => $o{timeout} // 10,
		buf => '',
		eof => 0,
	}, $class;
	my $s = IO::Socket::IP->new(PeerHost => '127.0.0.1',
	    PeerPort => $o{port}, Proto => 'tcp', Timeout => 5)
	    or croak "connect 127.0.0.1:$o{port}: $!";
	$self->{sock} = $s;
	if ($o{tls}) {
		$self->tls_handshake(%{ $o{ssl} // {} })
		    or croak "TLS handshake with 127.0.0.1:$o{port}: " .
		    IO::Socket::SSL::errstr();
	}
	return $self;
}

sub sock { $_[0]{sock} }
sub is_tls { ref($_[0]{sock}) eq 'IO::Socket::SSL' }

# tls_handshake(%ssl_opts) - start TLS on the connection now (after the
# 220 to STARTTLS, or at once for smtps); true on success
sub tls_handshake {
	my ($self, %ssl) = @_;
	croak "unread plaintext before TLS: '$self->{buf}'"
	    if length $self->{buf};
	my $ok = IO::Socket::SSL->start_SSL($self->{sock},
	    SSL_verify_mode => SSL_VERIFY_NONE,
	    SSL_hostname => '',
	    Timeout => $self->{timeout},
	    %ssl);
	return $ok ? 1 : 0;
}

# tls_version / tls_cipher of the session, undef without TLS
sub tls_version {
	my ($self) = @_;
	return undef unless $self->is_tls;
	return $self->{sock}->get_sslversion;
}

sub tls_cipher {
	my ($self) = @_;
	return undef unless $self->is_tls;
	return $self->{sock}->get_cipher;
}

# send(BYTES) - write all of BYTES in one go (a single write when the
# kernel allows); false when the peer has gone
sub send {
	my ($self, $data) = @_;
	local $SIG{PIPE} = 'IGNORE';
	my $off = 0;
	while ($off < length $data) {
		my $n = syswrite($self->{sock}, $data, length($data) - $off,
		    $off);
		return 0 unless defined $n && $n > 0;
		$off += $n;
	}
	return 1;
}

# _fill(DEADLINE) - read more into the buffer; false on EOF/timeout
sub _fill {
	my ($self, $deadline) = @_;
	return 0 if $self->{eof};
	my $s = $self->{sock};
	for (;;) {
		my $pending = $self->is_tls ? $s->pending : 0;
		if (!$pending) {
			my $left = $deadline - time;
			return 0 if $left <= 0;
			my @r = IO::Select->new($s)->can_read($left);
			return 0 unless @r;
		}
		my $n = sysread($s, my $chunk, 65536);
		if (defined $n && $n > 0) {
			$self->{buf} .= $chunk;
			return 1;
		}
		if (defined $n && $n == 0) {
			$self->{eof} = 1;
			return 0;
		}
		# TLS wants more input, or EINTR: try again
		next if $self->is_tls && $SSL_ERROR == SSL_WANT_READ;
		next if $!{EINTR} || $!{EAGAIN};
		$self->{eof} = 1;
		return 0;
	}
}

# read_line(TIMEOUT) - one line without CRLF, undef on EOF/timeout
sub read_line {
	my ($self, $timeout) = @_;
	my $deadline = time + ($timeout // $self->{timeout});
	for (;;) {
		if ($self->{buf} =~ s/^(.*?)\r?\n//s) {
			return $1;
		}
		return undef unless $self->_fill($deadline);
	}
}

# read_reply(TIMEOUT) - one reply, multi-line aware. Returns a hash
# reference { code => 250, ecode => '2.0.0' (or ''), text => all lines'
# text joined by "\n" (enhanced code of each line removed),
# lines => [ raw lines ], last => last raw line }, or undef when the
# connection closed or nothing complete came before the timeout.
sub read_reply {
	my ($self, $timeout) = @_;
	my $deadline = time + ($timeout // $self->{timeout});
	my (@lines, @text, $code, $ecode);
	for (;;) {
		my $left = $deadline - time;
		$left = 0.001 if $left <= 0;
		my $l = $self->read_line($left);
		return undef unless defined $l;
		push @lines, $l;
		my ($c, $sep, $rest) = $l =~ /^(\d{3})([ -]?)(.*)$/s;
		croak "malformed reply line '$l'" unless defined $c;
		$code //= $c;
		if ($rest =~ s/^([245]\.\d{1,3}\.\d{1,3})(?: |$)//) {
			$ecode //= $1;
		}
		push @text, $rest;
		next if $sep eq '-';
		return {
			code => $code + 0,
			ecode => $ecode // '',
			text => join("\n", @text),
			lines => \@lines,
			last => $l,
		};
	}
}

# replies(N) - read N replies; a missing one is undef
sub replies {
	my ($self, $n, $timeout) = @_;
	return map { $self->read_reply($timeout) } 1 .. $n;
}

# cmd(LINE) - send LINE CRLF and read the reply
sub cmd {
	my ($self, $line, $timeout) = @_;
	$self->send("$line\r\n") or return undef;
	return $self->read_reply($timeout);
}

# greeting - read the 220 banner
sub greeting { $_[0]->read_reply }

# ehlo(NAME) - (reply, { KEYWORD => 'params' }) ; keywords upper-cased
sub ehlo {
	my ($self, $name) = @_;
	my $r = $self->cmd('EHLO ' . ($name // 'client.example'));
	my %kw;
	if ($r && $r->{code} == 250) {
		my @l = @{ $r->{lines} };
		shift @l;
		for (@l) {
			my ($k, $v) = /^\d{3}[ -](\S+)\s*(.*)$/ or next;
			$kw{uc $k} = $v;
		}
	}
	return wantarray ? ($r, \%kw) : $r;
}

# starttls(%ssl_opts) - STARTTLS, then the handshake; returns the reply
# to STARTTLS and sets {tls_ok} to the handshake's result
sub starttls {
	my ($self, %ssl) = @_;
	my $r = $self->cmd('STARTTLS');
	$self->{tls_ok} = 0;
	if ($r && $r->{code} == 220) {
		$self->{tls_ok} = $self->tls_handshake(%ssl);
	}
	return $r;
}

sub tls_ok { $_[0]{tls_ok} }

# auth_plain(USER, PASS) - AUTH PLAIN with an initial response
sub auth_plain {
	my ($self, $user, $pass) = @_;
	my $b = encode_base64("\0$user\0$pass", '');
	return $self->cmd("AUTH PLAIN $b");
}

# auth_login(USER, PASS) - AUTH LOGIN, both challenges; returns the last
# reply (an early failure is returned as it comes)
sub auth_login {
	my ($self, $user, $pass) = @_;
	my $r = $self->cmd('AUTH LOGIN');
	return $r unless $r && $r->{code} == 334;
	$r = $self->cmd(encode_base64($user, ''));
	return $r unless $r && $r->{code} == 334;
	return $self->cmd(encode_base64($pass, ''));
}

# envelope(FROM, RCPTS, MAIL_ARGS) - MAIL FROM:<FROM> MAIL_ARGS, then
# RCPT TO for each of RCPTS (one address or an array reference; an
# element may carry parameters after a space: "a@b NOTIFY=NEVER");
# stops at the first reply that is not 250 and returns it, else the
# reply to the last RCPT
sub envelope {
	my ($self, $from, $rcpts, $margs) = @_;
	my $r = $self->cmd("MAIL FROM:<$from>" . ($margs ? " $margs" : ''));
	return $r unless $r && $r->{code} == 250;
	for my $rc (ref $rcpts ? @$rcpts : $rcpts) {
		my ($addr, $args) = split ' ', $rc, 2;
		$r = $self->cmd("RCPT TO:<$addr>" . ($args ? " $args" : ''));
		return $r unless $r && $r->{code} == 250;
	}
	return $r;
}

# transaction(FROM, RCPTS, TEXT, MAIL_ARGS) - envelope, then data(TEXT);
# returns (final reply, queue ID from "queued as ID" or undef); stops
# at the first reply that is not 250 and returns just it
sub transaction {
	my ($self, $from, $rcpts, $text, $margs) = @_;
	my $r = $self->envelope($from, $rcpts, $margs);
	return ($r) unless $r && $r->{code} == 250;
	$r = $self->data($text);
	return ($r, PosternTest::qid_of($r));
}

# send_simple(FROM, TO, SUBJECT) - transaction(FROM, TO,
# simple_message(SUBJECT, FROM, TO)): (final reply, queue ID)
sub send_simple {
	my ($self, $from, $to, $subject) = @_;
	return $self->transaction($from, $to,
	    PosternTest::simple_message($subject, $from, $to));
}

# data(MESSAGE) - DATA, the message (CRLF lines, dot-stuffed by the
# caller), CRLF.CRLF; returns the final reply (or the reply to DATA
# when it was not 354)
sub data {
	my ($self, $msg) = @_;
	my $r = $self->cmd('DATA');
	return $r unless $r && $r->{code} == 354;
	$msg .= "\r\n" unless $msg =~ /\r\n\z/;
	$self->send("$msg.\r\n") or return undef;
	return $self->read_reply;
}

# is_closed(TIMEOUT) - true when the server closes the connection within
# TIMEOUT seconds; bytes that arrive meanwhile stay in the buffer
sub is_closed {
	my ($self, $timeout) = @_;
	my $deadline = time + ($timeout // 5);
	for (;;) {
		return 1 if $self->{eof};
		return 0 if time >= $deadline;
		$self->_fill($deadline);
	}
}

# pending_input - what the server sent that no read has consumed
sub pending_input { $_[0]{buf} }

sub close {
	my ($self) = @_;
	return unless $self->{sock};
	if ($self->is_tls) {
		$self->{sock}->close(SSL_no_shutdown => 1);
	} else {
		CORE::close($self->{sock});
	}
	delete $self->{sock};
}

sub DESTROY {
	my ($self) = @_;
	local ($?, $!, $@);
	$self->close if $self->{sock};
}

1;

#!/usr/bin/perl
# Master harness (conformance/MASTER.md, MHP v1) around PeepsyMaster.pm.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use PeepsyMaster;
use JSON::PP;
use IO::Handle;
use POSIX ();

my $J = JSON::PP->new->ascii->allow_nonref;
my %KIND = (
    TIMEOUT => 'timeout', EXITED => 'exited', NOT_FOUND => 'notFound',
    SHUTTING_DOWN => 'shuttingDown', INVALID => 'invalid', CANCELLED => 'cancelled',
);

my $master;
my %outstanding;    # seq -> 1
my @events;
my $stopping = 0;
my $inbuf = '';
STDIN->blocking(0);

sub reply {
    my ($seq, $r) = @_;
    delete $outstanding{$seq};
    my $line = $J->encode({ seq => $seq, %$r }) . "\n";
    my $off = 0;
    while ($off < length $line) {
        my $n = syswrite(STDOUT, $line, length($line) - $off, $off);
        die "stdout: $!" unless defined $n;
        $off += $n;
    }
}

sub outcome_of_error {
    my ($e) = @_;
    return { kind => 'other', message => "$e" } unless ref $e eq 'HASH';
    if ($e->{code} eq 'REMOTE') {
        my %o = (kind => 'remote', status => $e->{status}, message => $e->{message});
        $o{name} = $e->{name} if defined $e->{name};
        $o{code} = $e->{remote_code} if defined $e->{remote_code};
        return \%o;
    }
    return { kind => $KIND{ $e->{code} } // 'other', message => $e->{message} // 'error' };
}

my %commands;
%commands = (
    start => sub {
        my ($c) = @_;
        my $o = $c->{master} || {};
        return { unsupported => 'retries' } if $o->{retries};
        return { unsupported => 'legacy request shape' } if ($o->{requestShape} // 'unified') ne 'unified';
        $master = PeepsyMaster->new(map { exists $o->{$_} ? ($_ => $o->{$_}) : () } qw(timeout heartbeatInterval));
        $master->handle(echo => sub { $_[0] });
        $master->handle(fail => sub {
            my ($msg, $ctx) = @_;
            $ctx->{deferred} = 1;
            $ctx->{master}->timer(0, sub { $ctx->{reject}->({ message => $msg }) });
            return;
        });
        $master->handle(throw => sub { die { message => $_[0] } });
        $master->handle(sleep => sub {
            my ($ms, $ctx) = @_;
            $ctx->{deferred} = 1;
            $ctx->{master}->timer($ms, sub { $ctx->{resolve}->($ms) });
            return;
        });
        $master->{on_event} = sub { push @events, { kind => $_[0], target => $_[1] } };
        $master->watch(\*STDIN, \&on_stdin);
        return { version => 1, implementation => { name => 'PeepsyMaster.pm', version => $PeepsyMaster::VERSION, language => 'perl' },
            capabilities => ['profile', 'events'] };
    },
    group => sub { return { unsupported => 'no groups' } },
    spawn => sub {
        my ($c) = @_;
        return { unsupported => 'no groups' } if defined $c->{group};
        return { unsupported => 'no restarts' } if $c->{restart};
        $master->spawn($c->{name}, $c->{argv}, env => $c->{env}, mode => $c->{mode});
        if (my $d = $ENV{PEEPSY_EXAMPLE_SPAWN_DELAY}) {    # MHP allows a late answer: tests hold the suite to it
            my $seq = $c->{seq};
            $master->timer($d, sub { reply($seq, { ok => JSON::PP::true }) });
            return;
        }
        return { ok => JSON::PP::true };
    },
    request => sub {
        my ($c) = @_;
        return { unsupported => 'no retries' } if $c->{retries};
        my $seq = $c->{seq};
        my %o = (has_data => exists $c->{data} ? 1 : 0);
        $o{timeout} = $c->{timeout} if exists $c->{timeout};
        $master->request($c->{target}, $c->{action}, $c->{data}, \%o, sub {
            my ($err, $res) = @_;
            if ($err) { reply($seq, { outcome => outcome_of_error($err) }) }
            else {
                my %out = (kind => 'ok', status => $res->{status});
                $out{data} = $res->{data} if exists $res->{data};
                reply($seq, { outcome => \%out });
            }
        });
        return;    # answered later
    },
    cancel => sub { return { unsupported => 'no cancel' } },
    shutdown => sub {
        my ($c) = @_;
        my $seq = $c->{seq};
        $master->shutdown($c->{target}, $c->{timeout}, sub { reply($seq, { ok => JSON::PP::true }) });
        return;
    },
    events => sub { my @e = @events; @events = (); return { events => \@e } },
);

sub run_command {
    my ($c) = @_;
    my $seq = $c->{seq};
    $outstanding{$seq} = 1;
    my $r = eval { my $f = $commands{ $c->{cmd} }; $f ? $f->($c) : { unsupported => "no command $c->{cmd}" } };
    if (my $e = $@) { $r = { errored => { message => ref $e ? $J->encode($e) : "$e" } } }
    reply($seq, $r) if $r;
}

sub stop {
    return if $stopping;
    $stopping = 1;
    my $done = 0;
    if ($master) { $master->close_all(sub { $done = 1 }) } else { $done = 1 }
    while (!$done || %outstanding) { $master->run_once(20) }
    exit 0;
}

sub on_line {
    my ($line) = @_;
    return if $line =~ /^\s*$/;
    my $c = eval { my $t = $line; utf8::decode($t) or die "utf8"; PeepsyMaster::_decode_line($t) };
    if (!$c || ref $c ne 'HASH') { warn "harness: bad command line: $line\n"; return }
    if ($c->{cmd} eq 'stop') { stop(); return }
    run_command($c);
}

sub on_stdin {
    my $n = sysread(STDIN, my $chunk, 65536);
    return if !defined $n && $!{EAGAIN};
    if (!$n) { $master->unwatch(\*STDIN) if $master; stop(); return }
    $inbuf .= $chunk;
    while ((my $i = index($inbuf, "\n")) >= 0) {
        my $line = substr($inbuf, 0, $i + 1, '');
        on_line($line);
    }
}

# before start there is no master, so no loop: read with select until it comes
while (!$master) {
    my $rin = '';
    vec($rin, fileno(STDIN), 1) = 1;
    select(my $rout = $rin, undef, undef, undef);
    my $n = sysread(STDIN, my $chunk, 65536);
    next if !defined $n && $!{EAGAIN};
    exit 0 unless $n;
    $inbuf .= $chunk;
    while (!$master && (my $i = index($inbuf, "\n")) >= 0) {
        on_line(substr($inbuf, 0, $i + 1, ''));
    }
}
# lines that came with start
while ((my $i = index($inbuf, "\n")) >= 0) { on_line(substr($inbuf, 0, $i + 1, '')) }
$master->run_once(50) while 1;

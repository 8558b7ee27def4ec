package PeepsyMaster;
# A small peepsy master (docs/protocol.md, protocol 1.0) in core Perl.
# Single-threaded event loop: IO::Select over the children's pipes plus any
# handles the user watches; timers on the monotonic clock.
use strict;
use warnings;
use POSIX qw(:sys_wait_h WNOHANG EAGAIN EINTR);
use Time::HiRes qw(clock_gettime CLOCK_MONOTONIC);
use IO::Select;
use IO::Handle;
use JSON::PP;
use B ();

our $VERSION = '0.1.0';
my $FAULT = $ENV{PEEPSY_EXAMPLE_FAULT} // '';

my $ENC = JSON::PP->new->ascii->allow_nonref->canonical(0);

sub now_ms { clock_gettime(CLOCK_MONOTONIC) * 1000 }

# ---------------------------------------------------------------- JSON helpers
# JSON::PP refuses lone surrogate escapes (FRAME-9): swap them for a marker
# before decoding and put the code points back afterwards.
my $MARK = "\x{10FFFF}\x{10FFFE}";
sub _decode_line {
    my ($chars) = @_;    # a character string
    my $had = 0;
    my @toks;
    # tokenise escapes so that "\\udc80" (escaped backslash) is left alone
    $chars =~ s{\\(u([0-9a-fA-F]{4})(?:\\u([0-9a-fA-F]{4}))?|.)}{
        my ($all, $h1, $h2) = ($1, $2, $3);
        if (defined $h1) {
            my $c1 = hex $h1; my $out = '';
            if ($c1 >= 0xD800 && $c1 <= 0xDBFF && defined $h2 && hex($h2) >= 0xDC00 && hex($h2) <= 0xDFFF) {
                "\\u$h1\\u$h2";
            } else {
                my $r = '';
                for my $h (grep { defined } ($h1, $h2)) {
                    my $c = hex $h;
                    if ($c >= 0xD800 && $c <= 0xDFFF) { $had = 1; $r .= $MARK . lc($h) }
                    else { $r .= "\\u$h" }
                }
                # a high surrogate then a non-low escape: second one handled alone
                $r;
            }
        } else { "\\$all" }
    }ge;
    my $v = JSON::PP->new->allow_nonref->decode($chars);
    $v = _unmark($v) if $had;
    return $v;
}
sub _unmark {
    my ($v) = @_;
    if (ref $v eq 'HASH') {
        my %h; for my $k (keys %$v) { $h{_unmark($k)} = _unmark($v->{$k}) } return \%h;
    } elsif (ref $v eq 'ARRAY') {
        return [ map { _unmark($_) } @$v ];
    } elsif (defined $v && !ref $v && index($v, $MARK) >= 0) {
        no warnings;
        (my $s = $v) =~ s/\x{10FFFF}\x{10FFFE}([0-9a-f]{4})/chr(hex $1)/ge;
        return $s;
    }
    return $v;
}
sub encode_json_line { no warnings; return $ENC->encode($_[0]) . "\n" }

sub _is_str { my $v = shift; defined $v && !ref $v && do { my $f = B::svref_2object(\$v)->FLAGS; ($f & B::SVp_POK) && !($f & (B::SVp_IOK | B::SVp_NOK)) } }
sub _is_num { my $v = shift; defined $v && !ref $v && do { my $f = B::svref_2object(\$v)->FLAGS; ($f & (B::SVp_IOK | B::SVp_NOK)) ? 1 : 0 } }
sub _is_int { my $v = shift; _is_num($v) && $v == int($v) }
sub _is_bool { ref($_[0]) && JSON::PP::is_bool($_[0]) }

# ---------------------------------------------------------------- construction
sub new {
    my ($class, %opt) = @_;
    $SIG{PIPE} = 'IGNORE';
    my $self = bless {
        timeout   => $opt{timeout} // 5000,
        heartbeat => $opt{heartbeatInterval},
        children  => {},      # name -> child
        handlers  => {},
        watches   => {},      # fileno -> [fh, cb]
        timers    => [],
        next_id   => 1,
        closing   => 0,
        grace     => $opt{grace} // 300,
    }, $class;
    return $self;
}

sub handle { my ($self, $action, $cb) = @_; $self->{handlers}{$action} = $cb; $self }

sub timer {
    my ($self, $ms, $cb) = @_;
    my $t = { at => now_ms() + $ms, cb => $cb };
    push @{ $self->{timers} }, $t;
    return $t;
}
sub cancel_timer { my ($self, $t) = @_; $t->{dead} = 1 if $t }

sub watch { my ($self, $fh, $cb) = @_; $self->{watches}{ fileno $fh } = [ $fh, $cb ] }
sub unwatch { my ($self, $fh) = @_; delete $self->{watches}{ fileno $fh } }

# ---------------------------------------------------------------- spawning
sub spawn {
    my ($self, $name, $argv, %o) = @_;
    die { code => 'SHUTTING_DOWN', message => 'master is closing' } if $self->{closing};
    if (my $old = $self->{children}{$name}) {
        die { code => 'OTHER', message => "child $name already running" } if $old->{running};
    }
    my $mode = $o{mode} // 'sequential';
    pipe(my $in_r, my $in_w) or die "pipe: $!";
    pipe(my $out_r, my $out_w) or die "pipe: $!";
    pipe(my $err_r, my $err_w) or die "pipe: $!";
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        close $in_w; close $out_r; close $err_r;
        POSIX::dup2(fileno $in_r, 0); POSIX::dup2(fileno $out_w, 1); POSIX::dup2(fileno $err_w, 2);
        $SIG{PIPE} = 'DEFAULT'; $SIG{TERM} = 'DEFAULT';
        for my $k (keys %{ $o{env} || {} }) { $ENV{$k} = $o{env}{$k} }
        { exec { $argv->[0] } @$argv; }
        POSIX::_exit(127);
    }
    close $in_r; close $out_w; close $err_w;
    $in_w->autoflush(1);
    $_->blocking(0) for $out_r, $err_r;
    my $c = {
        name => $name, pid => $pid, mode => $mode, in => $in_w, out => $out_r, err => $err_r,
        buf => '', first => 1, running => 1, out_open => 1, pending => {}, serving => {},
        stopping => 0,
    };
    $self->{children}{$name} = $c;
    my %init = (type => 'INIT', mode => $mode, protocol => '1.0', target => $name);
    $init{heartbeatInterval} = int($self->{heartbeat}) if $self->{heartbeat} && $self->{heartbeat} >= 1;
    $self->_send($c, \%init) unless $FAULT eq 'no-init';
    return $c;
}

sub _send {
    my ($self, $c, $msg) = @_;
    return 0 unless $c->{in};
    my $line = encode_json_line($msg);
    my $off = 0;
    while ($off < length $line) {
        my $n = syswrite($c->{in}, $line, length($line) - $off, $off);
        if (!defined $n) { next if $! == EINTR; return 0 }
        $off += $n;
    }
    return 1;
}

# ---------------------------------------------------------------- requests
# $cb->($err, $result): $err = { code => TIMEOUT|EXITED|NOT_FOUND|SHUTTING_DOWN|INVALID|REMOTE|OTHER, message, status, name, remote_code }
sub request {
    my ($self, $target, $action, $data, $o, $cb) = @_;
    $o ||= {};
    my $fail = sub { my $e = shift; $self->timer(0, sub { $cb->($e, undef) }) };
    return $fail->({ code => 'SHUTTING_DOWN', message => 'master is closing' }) if $self->{closing};
    my $c = $self->{children}{$target};
    return $fail->({ code => 'NOT_FOUND', message => "no child named $target" }) unless $c;
    return $fail->({ code => 'SHUTTING_DOWN', message => "child $target is shutting down" }) if $c->{stopping} && $c->{running};
    return $fail->({ code => 'EXITED', message => "child $target is not running" }) unless $c->{running} && $c->{out_open};
    my $timeout = $o->{timeout} // $self->{timeout};
    $timeout = int($timeout + 0.999);
    $timeout = 1 if $timeout < 1;
    $timeout = 300000 if $timeout > 300000;
    my $id = $FAULT eq 'reuse-id' ? 'm1'                                        # bug: one id for everything
           : $FAULT eq 'cycle-ids' ? 'm' . (($self->{next_id}++ % 2) + 1)        # bug: ids cycle over two values
           : 'm' . $self->{next_id}++;
    my %msg = (type => 'REQUEST', id => $id, action => $action, timeout => $timeout);
    $msg{data} = $data if exists $o->{has_data} ? $o->{has_data} : 1;
    my $p = { id => $id, cb => $cb, target => $target };
    $c->{pending}{$id} = $p;
    unless ($self->_send($c, \%msg)) {
        delete $c->{pending}{$id};
        return $fail->({ code => 'EXITED', message => "could not write to $target" });
    }
    unless ($FAULT eq 'no-timeout') {
        $p->{timer} = $self->timer($timeout, sub {
            return unless $c->{pending}{$id} && $c->{pending}{$id} == $p;
            delete $c->{pending}{$id};
            $p->{settled} = 1;
            $cb->({ code => 'TIMEOUT', message => "no answer from $target within $timeout ms" }, undef);
        });
    }
    return $id;
}

sub _settle {
    my ($self, $c, $id, $err, $res) = @_;
    my $p = delete $c->{pending}{$id} or return;
    $self->cancel_timer($p->{timer});
    return if $p->{settled};    # only with FAULT=late-answer... (see below)
    $p->{settled} = 1;
    $p->{cb}->($err, $res);
}

# ---------------------------------------------------------------- reading
sub _on_readable_out {
    my ($self, $c) = @_;
    my $n = sysread($c->{out}, my $chunk, 65536);
    if (!defined $n) { return if $! == EAGAIN || $! == EINTR; $n = 0 }
    if ($n == 0) { $self->_out_closed($c); return }
    $c->{buf} .= $chunk;
    if ($c->{first}) {    # a BOM may open the stream (FRAME-7), possibly split over reads
        return if length($c->{buf}) < 3 && index($c->{buf}, "\n") < 0;
        $c->{buf} =~ s/^\xEF\xBB\xBF//;
        $c->{first} = 0;
    }
    while ((my $i = index($c->{buf}, "\n")) >= 0) {
        my $line = substr($c->{buf}, 0, $i + 1, '');
        chop $line;
        $self->_on_line($c, $line);
    }
}

sub _on_line {
    my ($self, $c, $bytes) = @_;
    return if $bytes =~ /^[ \t\r]*$/;
    my $chars = $bytes;
    unless (utf8::decode($chars)) { warn "peepsy: $c->{name}: line not UTF-8, ignored\n"; return }
    my $msg = eval { _decode_line($chars) };
    if ($@ || ref $msg ne 'HASH') { warn "peepsy: $c->{name}: not a JSON object, ignored\n"; return }
    my $type = $msg->{type};
    return unless defined $type && _is_str($type);
    if ($type eq 'RESPONSE') { $self->_on_response($c, $msg) }
    elsif ($type eq 'REQUEST') { $self->_on_child_request($c, $msg) }
    elsif ($type eq 'READY') { $c->{ready} = $msg }
    elsif ($type eq 'HEARTBEAT') { $c->{last_hb} = now_ms() }
    # anything else: ignored (MSG-5, MSG-6)
}

sub _valid_id { my $v = shift; _is_str($v) && length($v) >= 1 && length($v) <= 128 }

sub _on_response {
    my ($self, $c, $m) = @_;
    my $id = $m->{id};
    return unless _valid_id($id);
    my $p = $c->{pending}{$id};
    if (!$p && $FAULT eq 'late-answer') {    # bug on purpose: hand an unknown answer to the oldest call
        my ($oldest) = sort { substr($a, 1) <=> substr($b, 1) } keys %{ $c->{pending} };
        ($id, $p) = ($oldest, $c->{pending}{$oldest}) if defined $oldest;
    }
    unless ($p) { warn "peepsy: $c->{name}: RESPONSE for unknown id $id ignored\n"; return }
    my $st = $m->{status};
    my $ok = _is_int($st) && $st >= 100 && $st <= 599;
    $ok &&= !exists $m->{error} || _is_str($m->{error});
    my $ep = $m->{errorPayload};
    if ($ok && exists $m->{errorPayload}) {
        $ok = ref $ep eq 'HASH' && _is_str($ep->{name}) && length($ep->{name}) >= 1 && length($ep->{name}) <= 256
            && _is_str($ep->{message})
            && (!exists $ep->{code} || (_is_str($ep->{code}) && length($ep->{code}) >= 1 && length($ep->{code}) <= 256))
            && (!exists $ep->{stack} || _is_str($ep->{stack}));
    }
    unless ($ok) {
        return $self->_settle($c, $id, { code => 'INVALID', message => "invalid RESPONSE from $c->{name}" });
    }
    $st = int $st;
    if ($st < 400) {
        my %r = (status => $st);
        $r{data} = $m->{data} if exists $m->{data};
        return $self->_settle($c, $id, undef, \%r);
    }
    my $text = $m->{error} // (ref $ep eq 'HASH' ? $ep->{message} : undef) // "request failed with status $st";
    my %e = (code => 'REMOTE', status => $st, message => $text);
    if (ref $ep eq 'HASH') { $e{name} = $ep->{name}; $e{remote_code} = $ep->{code} if exists $ep->{code} }
    $self->_settle($c, $id, \%e);
}

sub _out_closed {
    my ($self, $c) = @_;
    return unless $c->{out_open};
    $c->{out_open} = 0;
    $c->{buf} = '';    # a partial line is no answer (FRAME-2)
    close $c->{out};
    $self->_fail_all($c, "child $c->{name}'s output ended");
}

sub _fail_all {
    my ($self, $c, $why) = @_;
    for my $id (keys %{ $c->{pending} }) {
        $self->_settle($c, $id, { code => 'EXITED', message => $why });
    }
}

sub _on_exit {
    my ($self, $c, $status) = @_;
    $c->{running} = 0;
    $c->{exit_status} = $status;
    $self->cancel_timer($_) for @{ $c->{esc_timers} || [] };
    # drain whatever stdout still holds, then treat it as closed
    if ($c->{out_open}) {
        $c->{out}->blocking(0);
        while (1) {
            my $n = sysread($c->{out}, my $chunk, 65536);
            last unless $n;
            $c->{buf} .= $chunk;
            while ((my $i = index($c->{buf}, "\n")) >= 0) {
                my $line = substr($c->{buf}, 0, $i + 1, ''); chop $line; $self->_on_line($c, $line);
            }
        }
        $self->_out_closed($c);
    }
    $self->_fail_all($c, "child $c->{name} exited");
    if ($c->{in}) { close $c->{in}; $c->{in} = undef }
    if ($c->{err}) { close $c->{err}; $c->{err} = undef }
    my $cbs = delete $c->{on_exit} || [];
    $_->() for @$cbs;
    $self->{on_event}->('exit', $c->{name}) if $self->{on_event};
}

# ---------------------------------------------------------------- serving children
sub _answer {
    my ($self, $c, $id, $status, $data_or_err, $has_data) = @_;
    delete $c->{serving}{$id};
    return unless $c->{running} && $c->{in};
    my %r = (type => 'RESPONSE', id => $id, status => $status);
    if ($status < 400) { $r{data} = $data_or_err if $has_data }
    else {
        my ($msg, $name, $code) = @$data_or_err;
        $r{error} = $msg;
        $r{errorPayload} = { name => $name, message => $msg, code => $code };
    }
    $self->_send($c, \%r);
}

sub _err_text {
    my ($e) = @_;
    my $t = ref $e eq 'HASH' && defined $e->{message} ? $e->{message} : "$e";
    $t =~ s/ at \S+ line \d+\.?\n?\z//;
    $t =~ s/\n\z//;
    $t = 'handler failed' if $t eq '';
    return $t;
}

sub _on_child_request {
    my ($self, $c, $m) = @_;
    my ($id, $action, $data, $has_data, $valid);
    if (exists $m->{request}) {
        my $r = $m->{request};
        return unless ref $r eq 'HASH' && _valid_id($r->{id});   # not readable (REQ-10)
        $id = $r->{id}; $action = $r->{action}; $has_data = exists $r->{data}; $data = $r->{data};
    } else {
        return unless _valid_id($m->{id});
        $id = $m->{id}; $action = $m->{action}; $has_data = exists $m->{data}; $data = $m->{data};
    }
    return if $c->{serving}{$id};    # duplicate while outstanding (ID-2)
    $valid = _is_str($action) && length($action) >= 1 && length($action) <= 256;
    for my $k (qw(timeout)) {
        next unless exists $m->{$k};
        $valid &&= _is_int($m->{$k}) && $m->{$k} >= 1 && $m->{$k} <= 300000;
    }
    if (exists $m->{priority}) { $valid &&= _is_int($m->{priority}) && $m->{priority} >= -2147483648 && $m->{priority} <= 2147483647 }
    $c->{serving}{$id} = 1;
    unless ($valid) {
        return $self->_answer($c, $id, 400, [ 'Invalid REQUEST', 'PeepsyBadRequestError', 'PEEPSY_BAD_REQUEST' ]);
    }
    my $h = $self->{handlers}{$action};
    unless ($h) {
        return $self->_answer($c, $id, 404,
            [ "No handler registered for action: $action", 'PeepsyNotFoundError', 'PEEPSY_NOT_FOUND' ]);
    }
    my $done = 0;
    my $ctx = {
        resolve => sub { return if $done++; $self->_answer($c, $id, 200, $_[0], 1) },
        reject  => sub { return if $done++; $self->_answer($c, $id, 500, [ _err_text($_[0]), 'Error', 'PEEPSY_HANDLER_ERROR' ]) },
        deferred => 0,
        master => $self,
    };
    my $res = eval { $h->($data, $ctx) };
    if (my $e = $@) { $ctx->{reject}->($e); return }
    $ctx->{resolve}->($res) unless $ctx->{deferred};
}

# ---------------------------------------------------------------- shutdown
sub shutdown {
    my ($self, $target, $timeout, $cb) = @_;
    my @cs = defined $target ? ($self->{children}{$target} // ()) : values %{ $self->{children} };
    $timeout //= 5000;
    my $left = scalar @cs;
    my $one = sub { $cb->() if --$left == 0 && $cb };
    if (!@cs) { $self->timer(0, sub { $cb->() if $cb }); return }
    for my $c (@cs) { $self->_stop_child($c, $timeout, $one) }
}

sub _stop_child {
    my ($self, $c, $timeout, $cb) = @_;
    unless ($c->{running}) { $self->timer(0, $cb); return }
    push @{ $c->{on_exit} }, $cb;
    return if $c->{stopping};
    $c->{stopping} = 1;
    my $t = int($timeout); $t = 1 if $t < 1; $t = 300000 if $t > 300000;
    $self->_send($c, { type => 'SHUTDOWN', timeout => $t });
    my $g = $self->{grace};
    my @tm;
    push @tm, $self->timer($timeout, sub {
        return unless $c->{running};
        if ($c->{in}) { close $c->{in}; $c->{in} = undef }
    });
    push @tm, $self->timer($timeout + $g, sub { kill 'TERM', $c->{pid} if $c->{running} });
    push @tm, $self->timer($timeout + 2 * $g, sub { kill 'KILL', $c->{pid} if $c->{running} });
    $c->{esc_timers} = \@tm;
}

sub close_all {
    my ($self, $cb, $timeout) = @_;
    $self->{closing} = 1;
    $self->shutdown(undef, $timeout // 1000, $cb);
}

# ---------------------------------------------------------------- loop
sub run_once {
    my ($self, $max_ms) = @_;
    $max_ms //= 50;
    my $now = now_ms();
    # timers
    my @due = sort { $a->{at} <=> $b->{at} } grep { !$_->{dead} && $_->{at} <= $now } @{ $self->{timers} };
    if (@due) {
        $_->{dead} = 1 for @due;
        $self->{timers} = [ grep { !$_->{dead} } @{ $self->{timers} } ];
        $_->{cb}->() for @due;
        $now = now_ms();
    }
    # reap
    for my $c (values %{ $self->{children} }) {
        next unless $c->{running};
        my $r = waitpid($c->{pid}, WNOHANG);
        if ($r == $c->{pid}) { $self->_on_exit($c, $?) }
        elsif ($r == -1) { $self->_on_exit($c, -1) }
    }
    my $wait = $max_ms;
    for my $t (@{ $self->{timers} }) { my $d = $t->{at} - $now; $wait = $d if $d < $wait }
    $wait = 0 if $wait < 0;
    $wait = 20 if $wait > 20;   # waitpid polling
    my $sel = IO::Select->new;
    my %what;
    for my $c (values %{ $self->{children} }) {
        if ($c->{out_open}) { $sel->add($c->{out}); $what{ fileno $c->{out} } = [ 'out', $c ] }
        if ($c->{err}) { $sel->add($c->{err}); $what{ fileno $c->{err} } = [ 'err', $c ] }
    }
    for my $w (values %{ $self->{watches} }) { $sel->add($w->[0]); $what{ fileno $w->[0] } = [ 'watch', $w ] }
    my @ready = $sel->can_read($wait / 1000);
    for my $fh (@ready) {
        my $w = $what{ fileno $fh } or next;
        if ($w->[0] eq 'out') { $self->_on_readable_out($w->[1]) if $w->[1]{out_open} }
        elsif ($w->[0] eq 'err') {
            my $c = $w->[1];
            my $n = sysread($c->{err}, my $chunk, 65536);
            if (!defined $n) { next if $! == EAGAIN || $! == EINTR }
            if (!$n) { close $c->{err}; $c->{err} = undef }
            else { print STDERR "[$c->{name}] $chunk" if $ENV{PEEPSY_PASS_STDERR} }   # never parsed (STREAM-2)
        }
        else { $w->[1][1]->() }
    }
}

1;

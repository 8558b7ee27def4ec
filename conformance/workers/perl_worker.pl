#!/usr/bin/env perl
# A peepsy worker in Perl, with JSON::PP and other core modules only, no peepsy library.
#
# It was written from docs/protocol.md and schema/ alone, as an example for people who
# write workers in other languages, and it serves the conformance profile
# (conformance/workers/python_worker.py describes it):
#
#   echo        answers with the request's data, unchanged
#   fail        fails with status 500; the error text is the request's data
#   sleep       waits data milliseconds, then answers with data
#   callMaster  asks the master to run data.action with data.data and relays its answer
#
# Check it with:  python -m peepsy.conformance -- perl conformance/workers/perl_worker.pl
#
# One process, one thread, one select() loop. Nothing ever blocks except select itself:
# a handler that has to wait (sleep, callMaster) registers a timer or a pending call and
# returns, and finishes later by calling its `done` callback. That is what lets
# heartbeats keep their cadence while requests run (HB-1), lets a queued request expire
# on time (SCHED-3), and lets concurrent mode overlap sleeps without threads (SCHED-2).
# The requirement ids in the comments (FRAME-6, SCHED-3, ...) are those of
# docs/protocol.md.

use strict;
use warnings;

use B ();
use Encode ();
use Errno qw(EAGAIN EINTR);
use JSON::PP ();
use POSIX ();
use Time::HiRes ();

# --- settings ------------------------------------------------------------------------

# FRAME-6 asks for at least 1 MiB. JSON::PP is pure Perl and parses about 5 MB a second,
# and while it parses nothing else happens (no heartbeat, no timer), so we take up to
# 4 MiB and drop longer lines whole, without parsing them.
use constant MAX_LINE_BYTES => 4 * 1024 * 1024;
# FRAME-3 lets a receiver reject nesting deeper than 64 levels; JSON::PP refuses more
# than max_depth (512 by default), which makes such a line invalid JSON.
use constant MAX_DEPTH => 512;
use constant DEFAULT_TIMEOUT_MS => 5000;       # REQ-4: an absent `timeout`
use constant DEFAULT_HEARTBEAT_MS => 2000;     # HB-1: until INIT says otherwise
use constant SHUTDOWN_GRACE_MS => 10000;       # SHUT-1: when SHUTDOWN names no timeout
use constant MASTER_CALL_TIMEOUT_MS => 5000;   # how long callMaster waits for the master
use constant IMPLEMENTATION => 'peepsy-perl-example/1.0';

# Decoding takes characters: the UTF-8 check is done first, and strictly (FRAME-3).
my $decoder = JSON::PP->new->allow_nonref(1)->max_depth(MAX_DEPTH);
# Encoding writes UTF-8 bytes. JSON::PP escapes line feeds and control characters inside
# strings and writes no BOM and no CR (FRAME-1, FRAME-4, FRAME-7).
my $encoder = JSON::PP->new->utf8(1)->canonical(1)->allow_nonref(1)->max_depth(MAX_DEPTH);

# --- state ---------------------------------------------------------------------------

# Sequential until INIT says otherwise (INIT-2: a child not configured with a mode of
# its own adopts INIT's).
my $mode = 'sequential';
my $heartbeat_ms = DEFAULT_HEARTBEAT_MS;
my $init_seen = 0;
my $stopping = 0;        # after SHUTDOWN or end of input: no new work (SHUT-1)
my $input_open = 1;
my $running = 0;
my @queue;               # {id, action, data, priority, seq, handler, timer}
my $arrival = 0;         # breaks priority ties in arrival order (SCHED-1)
# Ids of requests we have accepted and not yet answered. ID-2: a second request with one
# of these ids must be neither run nor answered, since its answer would be taken for the
# first one's.
my %owed;
# Our own requests to the master, by id, awaiting its RESPONSE (ID-4: anything else is
# ignored).
my %pending_calls;
my $next_call_id = 1;
my $exit_at;             # set once shutting down: the end of the grace period
my $heartbeat_timer;     # the id of the timer that sends the next HEARTBEAT

# --- clock and timers ----------------------------------------------------------------

# A monotonic clock for timers (the wall clock can jump); the wall clock only for the
# HEARTBEAT's informational timestamp.
sub now_ms { return Time::HiRes::clock_gettime(Time::HiRes::CLOCK_MONOTONIC()) * 1000 }

my %timers;              # id -> [due_ms, callback]
my $next_timer = 1;

sub add_timer {
    my ($delay_ms, $callback) = @_;
    my $id = $next_timer++;
    $timers{$id} = [now_ms() + $delay_ms, $callback];
    return $id;
}

sub cancel_timer {
    my ($id) = @_;
    delete $timers{$id} if defined $id;
    return;
}

# --- writing -------------------------------------------------------------------------

# STREAM-1: stdout carries protocol lines and nothing else, so everything a human might
# want to read goes to stderr. Never `print` to STDOUT in a worker.
sub logline {
    my ($text) = @_;
    print STDERR "perl-worker: $text\n";
    return;
}

# One syswrite per whole line, retried until all of it is out (STREAM-4): there is no
# buffer to flush, so no message waits while we are idle, and a single-threaded writer
# cannot interleave two lines.
sub send_message {
    my ($message) = @_;
    my $line = eval { $encoder->encode($message) };
    if (!defined $line) {
        # Only a RESPONSE's data can fail to encode; its sender still needs an answer
        # (RESP-1), so report the failure instead of the result.
        die $@ unless $message->{type} eq 'RESPONSE' && $message->{status} < 400;
        $line = $encoder->encode(failure_message($message->{id}, 500,
            {name => 'EncodeError', message => 'cannot write the result as JSON'}));
    }
    $line .= "\n";
    my $offset = 0;
    while ($offset < length $line) {
        my $wrote = syswrite(STDOUT, $line, length($line) - $offset, $offset);
        if (!defined $wrote) {
            next if $! == EINTR || $! == EAGAIN;
            # The master is gone (EPIPE): nobody is left to talk to.
            logline("stdout failed ($!); exiting");
            POSIX::_exit(0);
        }
        $offset += $wrote;
    }
    return;
}

# JSON::PP writes a non-finite number as a bare `Inf` or `NaN`, which is not JSON
# (FRAME-3). `1e400` in a request decodes to infinity, so before echoing data back we
# turn such numbers into null, as JavaScript's JSON.stringify does.
sub finite_only {
    my ($value) = @_;
    no warnings 'recursion';   # data may nest up to MAX_DEPTH levels
    my $kind = ref $value;
    if ($kind eq 'HASH') {
        return {map { ($_ => finite_only($value->{$_})) } keys %$value};
    }
    if ($kind eq 'ARRAY') {
        return [map { finite_only($_) } @$value];
    }
    if (!$kind && is_number($value)) {
        return undef if $value != $value || $value == 9**9**9 || $value == -9**9**9;
    }
    return $value;
}

sub failure_message {
    my ($id, $status, $failure) = @_;
    # RESP-3: a failure carries `error` (every peer reads it) and the structured
    # `errorPayload` with the same text. No `data`, and no stack (RESP-5).
    # name and code hold 1..256 characters; a relayed failure may bring longer ones.
    my %payload = (name => substr($failure->{name} // 'Error', 0, 256),
                   message => $failure->{message});
    $payload{code} = substr($failure->{code}, 0, 256)
        if is_string($failure->{code}) && length $failure->{code};
    $payload{details} = $failure->{details} if exists $failure->{details};
    return {type => 'RESPONSE', id => $id, status => $status + 0,
            error => $failure->{message}, errorPayload => \%payload};
}

sub answer {
    my ($id, $result) = @_;
    delete $owed{$id};
    # RESP-3: a success carries `data` and neither `error` nor `errorPayload`.
    send_message({type => 'RESPONSE', id => $id, status => 200, data => finite_only($result)});
    return;
}

sub answer_failure {
    my ($id, $status, $failure) = @_;
    delete $owed{$id};
    send_message(failure_message($id, $status, $failure));
    return;
}

# --- telling JSON types apart --------------------------------------------------------

# Perl scalars do not say whether they came from a JSON string or a JSON number, but
# JSON::PP leaves the flags that do: a string has a string value (POK), a number only a
# numeric one. Looking at a number as a string would add POK and make JSON::PP write it
# back as a string, so data is never interpolated into text below.
sub is_number {
    my ($value) = @_;
    return 0 if !defined $value || ref $value;
    my $flags = B::svref_2object(\$value)->FLAGS;
    return ($flags & (B::SVp_IOK() | B::SVp_NOK())) && !($flags & B::SVp_POK()) ? 1 : 0;
}

sub is_string {
    my ($value) = @_;
    return 0 if !defined $value || ref $value;
    return (B::svref_2object(\$value)->FLAGS & B::SVp_POK()) ? 1 : 0;
}

sub is_int_in {
    my ($value, $low, $high) = @_;
    return is_number($value) && $value == int($value) && $value >= $low && $value <= $high;
}

sub is_object { return ref $_[0] eq 'HASH' }

# JSON Schema counts characters as code points, as Perl's length does on decoded text.
sub valid_id     { my ($v) = @_; return is_string($v) && length($v) >= 1 && length($v) <= 128 }
sub valid_action { my ($v) = @_; return is_string($v) && length($v) >= 1 && length($v) <= 256 }

# --- handlers ------------------------------------------------------------------------

# Each handler gets the request's data and a `done` callback, and calls
# done->(ok => RESULT) or done->(fail => {status, name, message, code}) exactly once,
# now or later from a timer or a RESPONSE.
my %handlers = (
    echo => sub {
        my ($data, $done) = @_;
        $done->(ok => $data);
    },
    fail => sub {
        my ($data, $done) = @_;
        my $text = !defined $data ? 'failed on purpose'
                 : is_string($data) ? $data
                 : $encoder->encode($data);
        $done->(fail => {status => 500, name => 'HandlerError', message => $text, code => 'E_FAIL'});
    },
    sleep => sub {
        my ($data, $done) = @_;
        if (!is_number($data) || $data != $data) {
            $done->(fail => {status => 500, name => 'HandlerError',
                             message => 'sleep wants a number of milliseconds'});
            return;
        }
        my $ms = $data < 0 ? 0 : $data;
        add_timer($ms, sub { $done->(ok => $data) });
    },
    callMaster => sub {
        my ($data, $done) = @_;
        if (!is_object($data) || !valid_action($data->{action})) {
            $done->(fail => {status => 500, name => 'HandlerError',
                             message => 'callMaster wants {"action": NAME, "data": ANY}'});
            return;
        }
        call_master($data->{action}, $data, $done);
    },
);

# --- requests to the master ----------------------------------------------------------

# The child side of a REQUEST (ID-3): ids of our own ("c1", "c2", ...), the unified
# shape (REQ-6), and a timer of our own, since the master owes us nothing if it never
# answers.
sub call_master {
    my ($action, $args, $done) = @_;
    if (!$input_open) {
        $done->(fail => {status => 500, name => 'HandlerError',
                         message => 'the master has closed the channel'});
        return;
    }
    my $id = 'c' . $next_call_id++;
    my $timer = add_timer(MASTER_CALL_TIMEOUT_MS, sub {
        # From now on a late answer is an unmatched RESPONSE (ID-4).
        delete $pending_calls{$id};
        $done->(fail => {status => 500, name => 'PeepsyTimeoutError', code => 'PEEPSY_TIMEOUT',
                         message => "the master did not answer $action within "
                                    . MASTER_CALL_TIMEOUT_MS . ' ms'});
    });
    $pending_calls{$id} = {done => $done, timer => $timer};
    my %request = (type => 'REQUEST', id => $id, action => $action,
                   timeout => MASTER_CALL_TIMEOUT_MS);
    $request{data} = $args->{data} if exists $args->{data};
    send_message(\%request);
    return;
}

sub on_response {
    my ($msg) = @_;
    my $id = $msg->{id};
    my $call = is_string($id) ? $pending_calls{$id} : undef;
    if (!$call) {
        # ID-4: late or never asked for. Never deliver it to anyone.
        logline('ignored a RESPONSE that answers none of our requests');
        return;
    }
    my $status = $msg->{status};
    if (!is_int_in($status, 100, 599)) {
        logline("ignored an invalid RESPONSE to $id (no valid status)");
        return;
    }
    delete $pending_calls{$id};
    cancel_timer($call->{timer});
    # RESP-2: anything below 400 is a success.
    if ($status < 400) {
        $call->{done}->(ok => exists $msg->{data} ? $msg->{data} : undef);
        return;
    }
    # RESP-3: the text is `error`, else errorPayload.message, else a generic one.
    my $payload = is_object($msg->{errorPayload}) ? $msg->{errorPayload} : {};
    my $text = is_string($msg->{error}) ? $msg->{error}
             : is_string($payload->{message}) ? $payload->{message}
             : "the master answered with status $status";
    # Relay the failure as the master described it. 408 and 503 say "did not run, safe
    # to resend", which is not true of our request (it ran; the call inside it failed).
    my %failure = (
        status => ($status == 408 || $status == 503) ? 500 : $status,
        name => is_string($payload->{name}) && length $payload->{name} ? $payload->{name} : 'RemoteError',
        message => $text,
    );
    $failure{code} = $payload->{code} if is_string($payload->{code});
    $failure{details} = $payload->{details} if exists $payload->{details};
    $call->{done}->(fail => \%failure);
    return;
}

# --- validation (MSG-2) --------------------------------------------------------------

# Both REQUEST shapes (REQ-3): a `request` member makes it legacy, whatever else the
# message holds. Returns ($request) or (undef, $problem, $readable_id); REQ-7 answers a
# readable id with 400.
sub read_request {
    my ($msg) = @_;
    my $legacy = exists $msg->{request};
    my $body = $legacy ? $msg->{request} : $msg;
    my $readable;
    if (is_object($body) && valid_id($body->{id})) { $readable = $body->{id} }
    elsif ($legacy && !is_object($body) && valid_id($msg->{id})) { $readable = $msg->{id} }
    return (undef, '`request` is not an object', $readable) unless is_object($body);
    return (undef, '`id` is not a string of 1..128 characters', $readable)
        unless valid_id($body->{id});
    return (undef, '`action` is not a string of 1..256 characters', $readable)
        unless valid_action($body->{action});
    # MSG-2: optional members are absent or valid; null is not a way to leave them out.
    return (undef, '`timeout` is not an integer of 1..300000', $readable)
        if exists $msg->{timeout} && !is_int_in($msg->{timeout}, 1, 300000);
    return (undef, '`priority` is not a 32-bit integer', $readable)
        if exists $msg->{priority} && !is_int_in($msg->{priority}, -2**31, 2**31 - 1);
    return ({
        id => $body->{id},
        action => $body->{action},
        # REQ-8: data as it came; absent becomes undef, Perl's null.
        data => $body->{data},
        timeout => exists $msg->{timeout} ? $msg->{timeout} : DEFAULT_TIMEOUT_MS,
        priority => exists $msg->{priority} ? $msg->{priority} : 0,
    });
}

# --- scheduling (SCHED-1..3) ---------------------------------------------------------

sub capacity { return $mode eq 'sequential' ? 1 : 9**9**9 }

sub shutting_down_failure {
    return {name => 'PeepsyShutdownError', message => 'the worker is shutting down',
            code => 'PEEPSY_SHUTTING_DOWN'};
}

sub on_request {
    my ($msg) = @_;
    my ($request, $problem, $readable) = read_request($msg);
    if (!$request) {
        if (defined $readable && !$owed{$readable}) {
            answer_failure($readable, 400, {name => 'PeepsyBadRequestError',
                message => "invalid REQUEST: $problem", code => 'PEEPSY_BAD_REQUEST'});
        } else {
            logline("dropped an invalid REQUEST: $problem");
        }
        return;
    }
    my $id = $request->{id};
    if ($owed{$id}) {
        logline('ignored a second REQUEST with an id that is still running (ID-2)');
        return;
    }
    $owed{$id} = 1;
    if ($stopping) {
        answer_failure($id, 503, shutting_down_failure());
        return;
    }
    my $handler = $handlers{$request->{action}};
    if (!$handler) {
        # RESP-4, with the text Node peepsy sends. An unknown action needs no queue slot,
        # so it is answered at once even while another request runs.
        my $text = "No handler registered for action: $request->{action}";
        answer_failure($id, 404, {name => 'PeepsyNotFoundError', message => $text,
                                  code => 'PEEPSY_NOT_FOUND'});
        return;
    }
    $request->{handler} = $handler;
    $request->{seq} = $arrival++;
    if ($running < capacity() && !@queue) {
        start($request);
        return;
    }
    # SCHED-3: a request that waits longer than its sender will wait is answered 408
    # and never run. Its clock starts when it reaches us, as close as we can get to
    # "when it was sent".
    $request->{timer} = add_timer($request->{timeout}, sub { expire($request) });
    push @queue, $request;
    return;
}

sub expire {
    my ($request) = @_;
    my $before = @queue;
    @queue = grep { $_ != $request } @queue;
    return if @queue == $before;
    answer_failure($request->{id}, 408, {name => 'PeepsyTimeoutError', code => 'PEEPSY_TIMEOUT',
        message => "Request expired in the queue after $request->{timeout}ms"});
    return;
}

# Highest priority first, equal priorities in arrival order (SCHED-1). A linear scan:
# queues at a worker are short, and this is easier to check than a heap.
sub take_next {
    my $best = 0;
    for my $i (1 .. $#queue) {
        my ($this, $that) = ($queue[$i], $queue[$best]);
        $best = $i if $this->{priority} > $that->{priority}
                   || ($this->{priority} == $that->{priority} && $this->{seq} < $that->{seq});
    }
    my ($request) = splice @queue, $best, 1;
    cancel_timer($request->{timer});
    return $request;
}

sub pump {
    start(take_next()) while !$stopping && @queue && $running < capacity();
    return;
}

sub start {
    my ($request) = @_;
    $running++;
    my $answered = 0;
    my $done = sub {
        my ($how, $value) = @_;
        return if $answered++;   # RESP-1: exactly one answer, whatever the handler does
        if ($how eq 'ok') {
            answer($request->{id}, $value);
        } else {
            answer_failure($request->{id}, $value->{status} // 500, $value);
        }
        $running--;
        pump();
    };
    # A handler that dies is a bug, but its request still gets an answer (RESP-1).
    if (!eval { $request->{handler}->($request->{data}, $done); 1 }) {
        my $error = "$@";
        $error =~ s/\s+\z//;
        $done->(fail => {status => 500, name => 'Error', message => $error,
                         code => 'PEEPSY_HANDLER_ERROR'});
    }
    return;
}

# --- INIT, SHUTDOWN, end of input ----------------------------------------------------

sub on_init {
    my ($msg) = @_;
    if ($init_seen) {
        logline('ignored a repeated INIT (INIT-2)');
        return;
    }
    my $new_mode = $msg->{mode};
    if (!is_string($new_mode) || ($new_mode ne 'sequential' && $new_mode ne 'concurrent')) {
        logline('ignored an INIT without a valid mode');
        return;
    }
    $init_seen = 1;
    if (is_string($msg->{protocol}) && $msg->{protocol} !~ /^1\./) {
        # VER-2: a different MAJOR version may not understand us; say so and carry on.
        logline("the master speaks protocol $msg->{protocol}; this worker speaks 1.0");
    }
    $mode = $new_mode;
    pump();   # concurrent mode may start what sequential mode queued
    if (is_int_in($msg->{heartbeatInterval}, 1, 300000)) {
        $heartbeat_ms = $msg->{heartbeatInterval};
        # Apply the new interval now, without waiting out the old one.
        my $due = $timers{$heartbeat_timer}[0];
        my $sooner = now_ms() + $heartbeat_ms;
        $timers{$heartbeat_timer}[0] = $sooner if $sooner < $due;
    }
    return;
}

# SHUT-1: take nothing new (on_request answers 503 from now on), answer what still
# waits in the queue with 503, let what runs finish, then exit 0. A handler that
# outlives the grace period is abandoned: the master would kill us anyway (SHUT-3).
sub begin_stop {
    my ($grace_ms) = @_;
    return if $stopping;
    $stopping = 1;
    answer_failure(take_next()->{id}, 503, shutting_down_failure()) while @queue;
    $exit_at = now_ms() + $grace_ms;
    return;
}

sub on_shutdown {
    my ($msg) = @_;
    begin_stop(is_int_in($msg->{timeout}, 1, 300000) ? $msg->{timeout} : SHUTDOWN_GRACE_MS);
    return;
}

# STREAM-3, SHUT-2: end of input means the master is gone or done with us. Nobody will
# answer our own requests any more, so fail them now rather than at their timeout.
sub on_end {
    $input_open = 0;
    for my $id (keys %pending_calls) {
        my $call = delete $pending_calls{$id};
        cancel_timer($call->{timer});
        $call->{done}->(fail => {status => 500, name => 'HandlerError',
                                 message => 'the master closed the channel before it answered'});
    }
    begin_stop(SHUTDOWN_GRACE_MS);
    return;
}

# --- heartbeats (HB-1) ---------------------------------------------------------------

# From our own timer, at once and then every interval. The loop below never blocks
# anywhere but in select, so this timer fires on time whatever the handlers are doing.
sub beat {
    send_message({type => 'HEARTBEAT', pid => $$ + 0, timestamp => int(Time::HiRes::time() * 1000),
                  requestsActive => $running + @queue});
    $heartbeat_timer = add_timer($heartbeat_ms, \&beat);
    return;
}

# --- reading lines (FRAME-1..8) ------------------------------------------------------

my $line = '';           # the current line so far, as bytes
my $skipping = 0;        # inside a line that is too long: read on to its \n, keep nothing
my $line_number = 0;

sub on_bytes {
    my ($chunk) = @_;
    my $from = 0;
    while ($from < length $chunk) {
        my $nl = index($chunk, "\n", $from);
        my $end = $nl < 0 ? length $chunk : $nl;
        if (!$skipping) {
            $line .= substr($chunk, $from, $end - $from);
            # The \n counts towards the limit (FRAME-6).
            if (length($line) + 1 > MAX_LINE_BYTES) {
                $skipping = 1;
                $line = '';
            }
        }
        return if $nl < 0;
        $line_number++;
        if ($skipping) {
            # FRAME-6, FRAME-8: the long line costs only itself.
            logline("line $line_number: longer than " . MAX_LINE_BYTES . ' bytes; dropped');
            $skipping = 0;
        } else {
            my $complete = $line;
            $line = '';
            on_line($complete);
        }
        $from = $nl + 1;
    }
    return;
}

sub on_line {
    my ($bytes) = @_;
    # FRAME-7: a BOM is ignored at the very start of the stream, and only there.
    $bytes =~ s/\A\xEF\xBB\xBF// if $line_number == 1;
    # FRAME-5: blank lines are nothing. (FRAME-4: a CR before the \n is JSON whitespace.)
    return if $bytes =~ /\A[ \t\r\n]*\z/;
    # Strict UTF-8 (FRAME-3): "UTF-8" with a hyphen is Encode's strict variant.
    my $text = eval { Encode::decode('UTF-8', $bytes, Encode::FB_CROAK()) };
    if (!defined $text) {
        logline("line $line_number: not valid UTF-8; ignored");
        return;
    }
    # JSON::PP is strict: no NaN, comments, single quotes or trailing commas (FRAME-3),
    # and it refuses nesting beyond max_depth.
    my $msg = eval { $decoder->decode($text) };
    if (!defined $msg && $@) {
        # FRAME-8: a bad line costs only itself; say what and where, on stderr.
        (my $why = $@) =~ s/ at \S+ line \d+.*//s;
        logline("line $line_number: not JSON ($why); ignored");
        return;
    }
    if (!is_object($msg) || !is_string($msg->{type})) {
        logline("line $line_number: not a message (an object with a string type); ignored");
        return;
    }
    # MSG-4: members we do not know are simply never looked at.
    my $type = $msg->{type};
    if    ($type eq 'REQUEST')  { on_request($msg) }
    elsif ($type eq 'RESPONSE') { on_response($msg) }
    elsif ($type eq 'INIT')     { on_init($msg) }
    elsif ($type eq 'SHUTDOWN') { on_shutdown($msg) }
    elsif ($type eq 'READY' || $type eq 'HEARTBEAT') {
        # MSG-6: a child receives neither; ignore them without an answer.
        logline("line $line_number: a child does not receive $type; ignored");
    } else {
        # MSG-5: perhaps from a later minor version. Never answered.
        logline("line $line_number: unknown message type; ignored");
    }
    return;
}

# --- the loop ------------------------------------------------------------------------

binmode STDIN;
binmode STDOUT;
binmode STDERR, ':encoding(UTF-8)';
# A master that has gone away makes writes fail with EPIPE, handled in send_message,
# instead of killing us with SIGPIPE.
$SIG{PIPE} = 'IGNORE';

# READY-1 is optional; it names us for the master's logs. It leaves out `mode`, since
# INIT may still change it.
send_message({type => 'READY', pid => $$ + 0, protocol => '1.0',
              actions => [sort keys %handlers], implementation => IMPLEMENTATION});
beat();

while (1) {
    # Run every timer that is due, earliest first. A callback may add timers (beat does).
    while (1) {
        my $now = now_ms();
        my ($first) = sort { $timers{$a}[0] <=> $timers{$b}[0] || $a <=> $b }
                      grep { $timers{$_}[0] <= $now } keys %timers;
        last unless defined $first;
        my $timer = delete $timers{$first};
        $timer->[1]->();
    }
    if ($stopping && ($running == 0 || now_ms() >= $exit_at)) {
        logline("$running request(s) still running after the grace period; abandoning them")
            if $running;
        exit 0;
    }
    my ($next_due) = sort { $a <=> $b } map { $_->[0] } values %timers;
    $next_due = $exit_at if $stopping && (!defined $next_due || $exit_at < $next_due);
    my $wait = defined $next_due ? ($next_due - now_ms()) / 1000 : undef;
    $wait = 0 if defined $wait && $wait < 0;
    my $readable = '';
    vec($readable, fileno(STDIN), 1) = 1 if $input_open;
    my $ready = select(my $got = $readable, undef, undef, $wait);
    next if $ready <= 0;   # a timer is due, or a signal interrupted select
    my $chunk;
    my $count = sysread(STDIN, $chunk, 1 << 20);
    if (!defined $count) {
        next if $! == EINTR || $! == EAGAIN;
        logline("stdin failed ($!)");
        $count = 0;
    }
    if ($count == 0) {
        # FRAME-2: bytes that end of input cut off before their \n are not a message.
        logline('input ended inside a line; it was not acted on') if length $line || $skipping;
        on_end();
        next;
    }
    on_bytes($chunk);
}

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
# It speaks protocol 1.1: it states so in READY and honours CANCEL (docs/protocol.md,
# section CANCEL), so it is also checked at the suite's cancel level.
#
# One process, one thread, one select() loop. Nothing ever blocks except select itself:
# a handler that has to wait (sleep, callMaster) registers a timer or a pending call and
# returns, and finishes later by calling its `done` callback. That is what lets
# heartbeats keep their cadence while requests run (HB-1, HB-4), lets a queued request
# expire on time (SCHED-3), and lets concurrent mode overlap sleeps without threads
# (SCHED-2).
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
# FRAME-12: of a line too long to keep we keep its first bytes, enough to read a
# REQUEST's id from (128 characters, each escaped as up to 12 bytes, and what precedes).
use constant HEAD_BYTES => 2048;
# FRAME-3 lets a receiver reject nesting deeper than 64 levels; JSON::PP refuses more
# than max_depth (512 by default), which makes such a line invalid JSON.
use constant MAX_DEPTH => 512;
use constant DEFAULT_TIMEOUT_MS => 5000;       # REQ-4: an absent `timeout`
use constant DEFAULT_HEARTBEAT_MS => 2000;     # HB-1: until INIT says otherwise
use constant SHUTDOWN_GRACE_MS => 10000;       # SHUT-6: when SHUTDOWN names no timeout
# STREAM-3: after end of input we exit within 1000 ms whatever runs. We give running
# handlers half of that to finish (their answers are welcome, not required: SHUT-2).
use constant END_OF_INPUT_GRACE_MS => 500;
use constant IMPLEMENTATION => 'peepsy-perl-example/1.0';

# Both work on characters: the UTF-8 check is done first, and strictly (FRAME-3), and
# lone surrogates need handling on both sides (FRAME-9; see decode_json and encode_line).
my $decoder = JSON::PP->new->allow_nonref(1)->max_depth(MAX_DEPTH);
# JSON::PP escapes line feeds and control characters inside strings and writes no BOM
# and no CR (FRAME-1, FRAME-4, FRAME-7).
my $encoder = JSON::PP->new->canonical(1)->allow_nonref(1)->max_depth(MAX_DEPTH);

# --- state ---------------------------------------------------------------------------

# Sequential, with no cap, until INIT says otherwise (INIT-2: a child not configured
# with a mode or a cap of its own adopts INIT's).
my $mode = 'sequential';
my $max_concurrency;     # the cap in concurrent mode (SCHED-2); undef: none
my $heartbeat_ms = DEFAULT_HEARTBEAT_MS;
my $init_seen = 0;       # the first valid INIT has come (INIT-2, READY-2)
# FRAME-11: the longest line the master accepts, from its first INIT's maxLineBytes. A
# master that states none has promised only 1 MiB (FRAME-6), but FRAME-11 binds us to a
# stated limit only: like the reference, we then write what we must and risk the drop.
my $peer_max_line_bytes;
my $stopping = 0;        # after SHUTDOWN or end of input: no new work (SHUT-1)
my $shutdown_seen = 0;   # a valid SHUTDOWN has come: later ones change nothing (SHUT-6)
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
# The requests running now, by id, for CANCEL to stop (CANCEL-4).
my %active;
# The master stated protocol 1.1 or later in its INIT: it may be sent CANCEL (CANCEL-1).
my $master_cancels = 0;
my $exit_at;             # set once stopping: when we exit, whatever still runs
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

# A message as one JSON line of UTF-8 bytes, without its \n. Perl strings can hold lone
# surrogates (decode_json below makes them), and JSON::PP would write them as raw bytes,
# which are not UTF-8 (FRAME-3): FRAME-9 wants the \uXXXX escape instead. In JSON text
# such a character can only stand inside a string, where its escape means the same.
sub encode_line {
    my ($message) = @_;
    my $text = $encoder->encode($message);
    $text =~ s/([\x{D800}-\x{DFFF}])/sprintf('\\u%04x', ord $1)/ge;
    utf8::encode($text);
    return $text;
}

# One syswrite per whole line, retried until all of it is out (STREAM-4): there is no
# buffer to flush, so no message waits while we are idle, and a single-threaded writer
# cannot interleave two lines.
#
# FRAME-11: no line longer than the master's maxLineBytes. A RESPONSE that would be is
# replaced by a 413 failure. A REQUEST that would be (callMaster) is not sent: the
# failure is returned, for the call to fail with. Otherwise it returns nothing.
sub send_message {
    my ($message) = @_;
    my $line = eval { encode_line($message) };
    if (!defined $line) {
        # Only a RESPONSE's data can fail to encode; its sender still needs an answer
        # (RESP-1), so report the failure instead of the result.
        die $@ unless $message->{type} eq 'RESPONSE' && $message->{status} < 400;
        $line = encode_line(failure_message($message->{id}, 500,
            {name => 'EncodeError', message => 'cannot write the result as JSON'}));
    }
    my $bytes = length($line) + 1;   # the \n counts (FRAME-6)
    if (defined $peer_max_line_bytes && $bytes > $peer_max_line_bytes) {
        my %too_long = (name => 'PeepsyLineTooLongError', code => 'PEEPSY_LINE_TOO_LONG',
            message => "the $message->{type} of $bytes bytes exceeds the master's line limit"
                       . " of $peer_max_line_bytes bytes (maxLineBytes)");
        return {%too_long, status => 502} if $message->{type} ne 'RESPONSE';
        $line = encode_line(failure_message($message->{id}, 413, \%too_long));
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

# MSG-8: JSON::PP reads 5000.0 and 5e3 as floating-point numbers; their value is an
# integer, so they are integers here. 5000.5 is not, and neither is the string "5000".
sub is_int_in {
    my ($value, $low, $high) = @_;
    return is_number($value) && $value == int($value) && $value >= $low && $value <= $high;
}

sub is_object { return ref $_[0] eq 'HASH' }

# JSON Schema counts characters as code points, as Perl's length does on decoded text.
# Action names, errorPayload names and codes, INIT's target: 1..256 characters.
sub valid_id     { my ($v) = @_; return is_string($v) && length($v) >= 1 && length($v) <= 128 }
sub valid_name   { my ($v) = @_; return is_string($v) && length($v) >= 1 && length($v) <= 256 }
sub valid_action { return valid_name(@_) }

# --- handlers ------------------------------------------------------------------------

# Each handler gets the request's data, a `done` callback and the request itself, and
# calls done->(ok => RESULT) or done->(fail => {status, name, message, code}) exactly
# once, now or later from a timer or a RESPONSE. A handler that finishes later says how
# to stop it early: it sets $request->{stop}, which a CANCEL calls (CANCEL-4).
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
        my ($data, $done, $request) = @_;
        if (!is_number($data) || $data != $data) {
            $done->(fail => {status => 500, name => 'HandlerError',
                             message => 'sleep wants a number of milliseconds'});
            return;
        }
        my $ms = $data < 0 ? 0 : $data;
        my $timer = add_timer($ms, sub { $done->(ok => $data) });
        $request->{stop} = sub { cancel_timer($timer) };   # CANCEL-4: it stops at once
    },
    callMaster => sub {
        my ($data, $done, $request) = @_;
        if (!is_object($data) || !valid_action($data->{action})
            || (exists $data->{timeout} && !is_int_in($data->{timeout}, 1, 300000))) {
            $done->(fail => {status => 500, name => 'HandlerError', message =>
                'callMaster wants {"action": NAME, "data": ANY, "timeout": MS (optional)}'});
            return;
        }
        call_master($data->{action}, $data, $done, $request);
    },
);

# --- requests to the master ----------------------------------------------------------

# A call to the master that gave no usable answer (no answer in time, an invalid one,
# a closed channel, a request too long to send) fails the request that made it with 502,
# as the reference worker does: any status from 400 on is a failure (RESP-2).
sub call_failed {
    my ($text, %more) = @_;
    return {status => 502, name => 'PeepsyCallError', message => $text, %more};
}

# The child side of a REQUEST (ID-3): ids of our own ("c1", "c2", ...), the unified
# shape (REQ-6), and a timer of our own (REQ-11): the master owes us nothing if it never
# answers, so when the REQUEST's timeout has passed we fail the call ourselves, and a
# later answer finds no pending call (ID-4). A call we give up on, at its timeout or
# because the request that made it was cancelled, is cancelled at the master too, when
# the master speaks 1.1 (CANCEL-1); its answer, which still comes (CANCEL-5), then finds
# no pending call either.
sub call_master {
    my ($action, $args, $done, $caller) = @_;
    if (!$input_open) {
        $done->(fail => call_failed('the master has closed the channel'));
        return;
    }
    my $timeout = exists $args->{timeout} ? int($args->{timeout}) : DEFAULT_TIMEOUT_MS;
    my $id = 'c' . $next_call_id++;
    my %request = (type => 'REQUEST', id => $id, action => $action, timeout => $timeout);
    $request{data} = $args->{data} if exists $args->{data};
    if (my $failure = send_message(\%request)) {
        $done->(fail => $failure);   # FRAME-11: too long to send; nothing went out
        return;
    }
    my $timer = add_timer($timeout, sub {
        delete $pending_calls{$id};
        cancel_at_master($id, 'timeout');
        $done->(fail => call_failed("the master did not answer $action within $timeout ms",
                                    name => 'PeepsyTimeoutError', code => 'PEEPSY_TIMEOUT'));
    });
    $pending_calls{$id} = {done => $done, timer => $timer};
    $caller->{stop} = sub {
        my $call = delete $pending_calls{$id} or return;
        cancel_timer($call->{timer});
        cancel_at_master($id, 'cancelled');
    };
    return;
}

sub cancel_at_master {
    my ($id, $reason) = @_;
    send_message({type => 'CANCEL', id => $id, reason => $reason}) if $master_cancels;
    return;
}

# What is wrong with a RESPONSE (MSG-2), or undef when it is valid.
sub response_problem {
    my ($msg) = @_;
    return '`id` is not a string of 1..128 characters' unless valid_id($msg->{id});
    return '`status` is not an integer of 100..599' unless is_int_in($msg->{status}, 100, 599);
    return '`error` is not a string' if exists $msg->{error} && !is_string($msg->{error});
    return unless exists $msg->{errorPayload};
    my $payload = $msg->{errorPayload};
    return '`errorPayload` is not an object' unless is_object($payload);
    return '`errorPayload.name` is not a string of 1..256 characters'
        unless valid_name($payload->{name});
    return '`errorPayload.message` is not a string' unless is_string($payload->{message});
    return '`errorPayload.code` is not a string of 1..256 characters'
        if exists $payload->{code} && !valid_name($payload->{code});
    return '`errorPayload.stack` is not a string'
        if exists $payload->{stack} && !is_string($payload->{stack});
    return;
}

sub on_response {
    my ($msg) = @_;
    my $id = $msg->{id};
    my $call = is_string($id) ? $pending_calls{$id} : undef;
    my $problem = response_problem($msg);
    if (!$call) {
        # ID-4, MSG-9: late, never asked for, or invalid without one of our ids. Never
        # deliver it to anyone.
        logline('ignored a RESPONSE that answers none of our requests'
                . ($problem ? " (and is invalid: $problem)" : ''));
        return;
    }
    delete $pending_calls{$id};
    cancel_timer($call->{timer});
    if ($problem) {
        # MSG-9: an invalid answer to one of our requests fails it at once; nothing
        # waits for the timeout.
        $call->{done}->(fail => call_failed("the master's answer to $id is invalid: $problem"));
        return;
    }
    my $status = $msg->{status};
    # RESP-2: anything below 400 is a success.
    if ($status < 400) {
        $call->{done}->(ok => exists $msg->{data} ? $msg->{data} : undef);
        return;
    }
    # RESP-3: the text is `error`, else errorPayload.message, else a generic one.
    my $payload = exists $msg->{errorPayload} ? $msg->{errorPayload} : {};
    my $text = exists $msg->{error} ? $msg->{error}
             : exists $payload->{message} ? $payload->{message}
             : "the master answered with status $status";
    # Relay the failure as the master described it. 408 and 503 say "did not run, safe
    # to resend", which is not true of our request (it ran; the call inside it failed).
    my %failure = (
        status => ($status == 408 || $status == 503) ? 500 : int($status),
        name => exists $payload->{name} ? $payload->{name} : 'RemoteError',
        message => $text,
    );
    $failure{code} = $payload->{code} if exists $payload->{code};
    $failure{details} = $payload->{details} if exists $payload->{details};
    $call->{done}->(fail => \%failure);
    return;
}

# --- validation (MSG-2) --------------------------------------------------------------

# Both REQUEST shapes (REQ-3): a `request` member makes it legacy, whatever else the
# message holds. Returns ($request) or (undef, $problem, $readable_id); REQ-7 answers a
# readable id with 400.
#
# REQ-10: the id is readable when it is a string of 1..128 characters where the shape
# puts it: in `request` when there is a `request` member, else at the top. Nothing else
# is read; in particular not a flat `id` beside a `request` that is not an object.
sub read_request {
    my ($msg) = @_;
    my $legacy = exists $msg->{request};
    my $body = $legacy ? $msg->{request} : $msg;
    my $readable = is_object($body) && valid_id($body->{id}) ? $body->{id} : undef;
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

# SCHED-1, SCHED-2: one at a time in sequential mode; in concurrent mode up to the cap
# INIT asked for, if any.
sub capacity { return $mode eq 'sequential' ? 1 : $max_concurrency // 9**9**9 }

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
    $active{$request->{id}} = $request;
    my $answered = 0;
    my $done = sub {
        my ($how, $value) = @_;
        return if $answered++;   # RESP-1: exactly one answer, whatever the handler does
        delete $active{$request->{id}};
        delete @$request{qw(done stop)};   # they refer to this closure: no cycle kept
        if ($how eq 'ok') {
            answer($request->{id}, $value);
        } else {
            answer_failure($request->{id}, $value->{status} // 500, $value);
        }
        $running--;
        pump();
    };
    $request->{done} = $done;
    # A handler that dies is a bug, but its request still gets an answer (RESP-1).
    if (!eval { $request->{handler}->($request->{data}, $done, $request); 1 }) {
        my $error = "$@";
        $error =~ s/\s+\z//;
        $done->(fail => {status => 500, name => 'Error', message => $error,
                         code => 'PEEPSY_HANDLER_ERROR'});
    }
    return;
}

# --- CANCEL (protocol 1.1) -----------------------------------------------------------

sub cancelled_failure {
    return {status => 499, name => 'PeepsyCancelledError', code => 'PEEPSY_CANCELLED',
            message => 'the request was cancelled by the master'};
}

# CANCEL-2: a CANCEL for an id we owe no answer for (never read, answered already, or
# one of our own requests to the master) is ignored, unanswered; so is a second CANCEL
# for a request already answered (CANCEL-6). CANCEL-3: a request still in the queue is
# taken out, answered 499 at once, and never runs. CANCEL-4: a running request whose
# handler can stop (sleep, callMaster) is stopped and answered 499; echo and fail answer
# at once, so nothing of theirs is ever running when a CANCEL is read. CANCEL-5: either
# way the request gets exactly one answer: `done` answers only once.
sub on_cancel {
    my ($msg) = @_;
    my $id = $msg->{id};
    if (!valid_id($id) || (exists $msg->{reason} && !valid_name($msg->{reason}))) {
        logline('ignored an invalid CANCEL');
        return;
    }
    if (!$owed{$id}) {
        logline('ignored a CANCEL for an id we owe no answer for (CANCEL-2)');
        return;
    }
    my ($queued) = grep { $_->{id} eq $id } @queue;
    if ($queued) {
        @queue = grep { $_ != $queued } @queue;
        cancel_timer($queued->{timer});
        answer_failure($id, 499, cancelled_failure());
        return;
    }
    my $request = $active{$id};
    my $stop = $request ? delete $request->{stop} : undef;
    return unless $stop;
    my $done = $request->{done};
    $stop->();
    $done->(fail => cancelled_failure());
    return;
}

# --- INIT, SHUTDOWN, end of input ----------------------------------------------------

# MSG-2: what is wrong with an INIT, or undef when it is valid.
sub init_problem {
    my ($msg) = @_;
    my $mode = $msg->{mode};
    return '`mode` is not "sequential" or "concurrent"'
        unless is_string($mode) && ($mode eq 'sequential' || $mode eq 'concurrent');
    return '`protocol` is not a version MAJOR.MINOR'
        if exists $msg->{protocol} && !(is_string($msg->{protocol})
            && $msg->{protocol} =~ /\A(?:0|[1-9][0-9]{0,5})\.(?:0|[1-9][0-9]{0,5})\z/);
    return '`target` is not a string of 1..256 characters'
        if exists $msg->{target} && !valid_name($msg->{target});
    return '`heartbeatInterval` is not an integer of 1..300000'
        if exists $msg->{heartbeatInterval} && !is_int_in($msg->{heartbeatInterval}, 1, 300000);
    return '`maxConcurrency` is not an integer of 1..65536'
        if exists $msg->{maxConcurrency} && !is_int_in($msg->{maxConcurrency}, 1, 65536);
    return '`maxLineBytes` is not an integer of 1048576..2^53-1'
        if exists $msg->{maxLineBytes} && !is_int_in($msg->{maxLineBytes}, 1048576, 2**53 - 1);
    return;
}

# INIT-2: the first valid INIT sets the mode, the cap, the heartbeat interval and the
# master's line limit; later ones are ignored. MSG-9: an invalid one is ignored as if it
# had not come, and the next valid one is the first.
sub on_init {
    my ($msg) = @_;
    if ($init_seen) {
        logline('ignored a repeated INIT (INIT-2)');
        return;
    }
    if (my $problem = init_problem($msg)) {
        logline("ignored an invalid INIT: $problem (MSG-9)");
        return;
    }
    $init_seen = 1;
    if (exists $msg->{protocol} && $msg->{protocol} !~ /\A1\./) {
        # VER-2: a different MAJOR version may not understand us; say so and carry on.
        logline("the master speaks protocol $msg->{protocol}; this worker speaks 1.1");
    }
    # CANCEL-1: CANCEL goes only to a master that stated 1.1 or later (absent: 1.0).
    my ($major, $minor) = split /\./, exists $msg->{protocol} ? $msg->{protocol} : '1.0';
    $master_cancels = $major > 1 || ($major == 1 && $minor >= 1) ? 1 : 0;
    $mode = $msg->{mode};
    $max_concurrency = int($msg->{maxConcurrency}) if exists $msg->{maxConcurrency};
    $peer_max_line_bytes = int($msg->{maxLineBytes}) if exists $msg->{maxLineBytes};
    # READY-1 is optional; we send it, and READY-2 says when: once, in answer to this
    # INIT, before anything else we write, describing us as we now run.
    my %ready = (type => 'READY', pid => $$ + 0, protocol => '1.1', mode => $mode,
                 actions => [sort keys %handlers], implementation => IMPLEMENTATION,
                 maxLineBytes => MAX_LINE_BYTES);
    $ready{maxConcurrency} = capacity() if $mode eq 'sequential' || defined $max_concurrency;
    send_message(\%ready);
    if (exists $msg->{heartbeatInterval}) {
        $heartbeat_ms = int($msg->{heartbeatInterval});
        # Apply the new interval now, without waiting out the old one.
        my $due = $timers{$heartbeat_timer}[0];
        my $sooner = now_ms() + $heartbeat_ms;
        $timers{$heartbeat_timer}[0] = $sooner if $sooner < $due;
    }
    pump();   # concurrent mode may start what sequential mode queued
    return;
}

# SHUT-1, SHUT-4: take nothing new (on_request answers 503 from now on) and answer what
# still waits in the queue with 503. What runs goes on (SHUT-5).
sub stop_taking_work {
    return if $stopping;
    $stopping = 1;
    answer_failure(take_next()->{id}, 503, shutting_down_failure()) while @queue;
    return;
}

# The loop below exits once nothing runs any more (SHUT-5), and in any case at $exit_at,
# abandoning the handlers still running (SHUT-6, STREAM-3). The earliest deadline wins.
sub exit_within {
    my ($ms) = @_;
    my $at = now_ms() + $ms;
    $exit_at = $at if !defined $exit_at || $at < $exit_at;
    return;
}

sub on_shutdown {
    my ($msg) = @_;
    if (exists $msg->{timeout} && !is_int_in($msg->{timeout}, 1, 300000)) {
        # MSG-9: an invalid SHUTDOWN does not stop us.
        logline('ignored an invalid SHUTDOWN: `timeout` is not an integer of 1..300000 (MSG-9)');
        return;
    }
    if ($shutdown_seen) {
        logline("ignored a repeated SHUTDOWN: the first one's deadline stands (SHUT-6)");
        return;
    }
    $shutdown_seen = 1;
    stop_taking_work();
    # SHUT-6: the deadline counts from now; absent, our own grace period.
    exit_within(exists $msg->{timeout} ? $msg->{timeout} : SHUTDOWN_GRACE_MS);
    return;
}

# STREAM-3, SHUT-2: end of input means the master is gone or done with us. Nothing new
# starts, and nobody will answer our own requests any more, so they fail now rather than
# at their timeout. We exit within 1000 ms, SHUTDOWN or not.
sub on_end {
    $input_open = 0;
    for my $id (keys %pending_calls) {
        my $call = delete $pending_calls{$id};
        cancel_timer($call->{timer});
        $call->{done}->(fail => call_failed('the master closed the channel before it answered'));
    }
    stop_taking_work();
    exit_within(END_OF_INPUT_GRACE_MS);
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
my $skipped_head;        # ... but its first HEAD_BYTES bytes (FRAME-12)
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
                $skipped_head = substr($line, 0, HEAD_BYTES);
                $line = '';
            }
        }
        return if $nl < 0;
        $line_number++;
        if ($skipping) {
            # FRAME-6, FRAME-8: the long line costs only itself.
            logline("line $line_number: longer than " . MAX_LINE_BYTES . ' bytes; dropped');
            $skipping = 0;
            on_over_long_line($skipped_head);
        } else {
            my $complete = $line;
            $line = '';
            on_line($complete);
        }
        $from = $nl + 1;
    }
    return;
}

# FRAME-12: a REQUEST line we dropped for its length is answered 413 when its first
# bytes show its id: the type first, then the id (flat, or first in `request`), as
# senders write them. REQ-9 still holds: an id we owe an answer for gets none.
my $HEAD_ID = qr/\A[ \t\r]*\{[ \t\r]*"type"[ \t\r]*:[ \t\r]*"REQUEST"[ \t\r]*,[ \t\r]*
                 (?:"request"[ \t\r]*:[ \t\r]*\{[ \t\r]*)?"id"[ \t\r]*:[ \t\r]*("(?:[^"\\]|\\.)*")/x;

sub on_over_long_line {
    my ($head) = @_;
    $head =~ s/\A\xEF\xBB\xBF// if $line_number == 1;   # FRAME-7
    return unless $head =~ $HEAD_ID;
    my $json = $1;
    return unless is_utf8_text($json);
    utf8::decode($json);
    my $id = eval { decode_json($json) };
    return unless valid_id($id) && !$owed{$id};
    answer_failure($id, 413, {name => 'PeepsyLineTooLongError', code => 'PEEPSY_LINE_TOO_LONG',
        message => "the REQUEST line is longer than this worker's limit of " . MAX_LINE_BYTES
                   . ' bytes (maxLineBytes); it was dropped'});
    return;
}

# FRAME-3: is this byte string valid UTF-8 (RFC 3629)? Encode's strict "UTF-8" would also
# refuse noncharacters such as U+FFFF, which are valid UTF-8; hence this, a sequence at a
# time (a single `(...)*` pattern overflows Perl's regex recursion on long lines).
sub is_utf8_text {
    my ($bytes) = @_;
    pos($bytes) = 0;
    1 while $bytes =~ /\G(?:[\x00-\x7F]+
                          | [\xC2-\xDF][\x80-\xBF]
                          | \xE0[\xA0-\xBF][\x80-\xBF] | [\xE1-\xEC\xEE\xEF][\x80-\xBF]{2}
                          | \xED[\x80-\x9F][\x80-\xBF]          # not U+D800..U+DFFF
                          | \xF0[\x90-\xBF][\x80-\xBF]{2} | [\xF1-\xF3][\x80-\xBF]{3}
                          | \xF4[\x80-\x8F][\x80-\xBF]{2}       # not above U+10FFFF
                          )/gcx;
    return pos($bytes) == length $bytes;
}

# FRAME-9: a JSON string may hold an escaped lone surrogate ("x\ud800y"), which JSON::PP
# refuses. A Perl string can hold one, so we get it past JSON::PP: before decoding, each
# lone surrogate escape becomes MARK and a stand-in character (U+D800..U+DFFF stand in as
# U+E000..U+E7FF), and MARK itself, raw or escaped, becomes MARK MARK; after decoding,
# every string (keys too) is turned back. The escapes are matched from the left, so in
# "\\ud800" (an escaped backslash, then the text "ud800") nothing is taken for one.
use constant MARK => "\x{FDD0}";    # a noncharacter: rare in data, and doubled when it is
use constant STAND_IN => 0xE000 - 0xD800;

sub decode_json {
    my ($text) = @_;
    return $decoder->decode($text) unless $text =~ /\\u[dD][89a-fA-F]/;
    $text =~ s{
        ( \\u[dD][89abAB][0-9a-fA-F]{2} \\u[dD][c-fC-F][0-9a-fA-F]{2} )   # a pair: as it is
      | \\u ( [dD][89a-fA-F][0-9a-fA-F]{2} )                              # a lone surrogate
      | ( \\u[fF][dD][dD]0 | \x{FDD0} )                                   # MARK
      | ( \\. )                                                           # another escape
    }{
        defined $1 ? $1 : defined $2 ? MARK . chr(hex($2) + STAND_IN) : defined $3 ? MARK . MARK : $4
    }gex;
    return unmark($decoder->decode($text));
}

sub unmark {
    my ($value) = @_;
    no warnings 'recursion';   # data may nest up to MAX_DEPTH levels
    my $kind = ref $value;
    return {map { (unmark_string($_) => unmark($value->{$_})) } keys %$value} if $kind eq 'HASH';
    return [map { unmark($_) } @$value] if $kind eq 'ARRAY';
    return is_string($value) ? unmark_string($value) : $value;
}

sub unmark_string {
    my ($text) = @_;
    $text =~ s/\x{FDD0}(.)/$1 eq MARK ? MARK : chr(ord($1) - STAND_IN)/gse;
    return $text;
}

sub on_line {
    my ($bytes) = @_;
    # FRAME-7: a BOM is ignored at the very start of the stream, and only there.
    $bytes =~ s/\A\xEF\xBB\xBF// if $line_number == 1;
    # FRAME-5: blank lines are nothing. (FRAME-4: a CR before the \n is JSON whitespace.)
    return if $bytes =~ /\A[ \t\r\n]*\z/;
    if (!is_utf8_text($bytes)) {
        logline("line $line_number: not valid UTF-8; ignored");
        return;
    }
    my $text = $bytes;
    utf8::decode($text);
    # JSON::PP is strict: no NaN, comments, single quotes or trailing commas (FRAME-3),
    # and it refuses nesting beyond max_depth.
    my $msg = eval { decode_json($text) };
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
    elsif ($type eq 'CANCEL')   { on_cancel($msg) }
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

# HB-1: a HEARTBEAT at once, and then every interval. READY waits for INIT (READY-2).
beat();

# Is there input to read now? With a timeout of 0, select only looks.
sub input_waiting {
    my $readable = '';
    vec($readable, fileno(STDIN), 1) = 1;
    return select(my $got = $readable, undef, undef, 0) > 0;
}

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
        # SHUT-7: what reached us with the SHUTDOWN is read and answered (503) before we
        # exit, even if the write that carried it was split; but the deadline stands.
        my $read_first = $running == 0 && $input_open && now_ms() < $exit_at && input_waiting();
        if (!$read_first) {
            logline("$running request(s) still running at the deadline; abandoning them")
                if $running;
            exit 0;
        }
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

// One-fault variants of peepsy-master.js, for the tests that prove the master suite
// catches them (tests/conformance/master/test_node_masters.py). PEEPSY_EXAMPLE_FAULT=NAME
// makes the library commit exactly the fault NAME; the comment names the check(s) that
// must catch it. Each replaces one small method of the library.
'use strict';

const FAULTS = {
  // m.init.first-once
  'no-init': (M) => patch(M, '_sendInit', () => function () {}),
  // m.id.unique-outstanding: every request is m1
  'reuse-id': (M) => patch(M, '_nextId', () => () => 'm1'),
  // m.id.not-reused: ids taken in turn from two values, never two outstanding at once
  'cycle-ids': (M) => patch(M, '_nextId', () => function () {
    this._cycle = (this._cycle || 0) + 1;
    return this._cycle % 2 ? 'm1' : 'm2';
  }),
  // m.req.timeout-enforced: a silent child holds its caller forever
  'no-timeout': (M) => patch(M, '_armTimer', () => function () {}),
  // m.req.unmatched-ignored: an answer nobody waits for goes to the oldest call instead
  'deliver-late-answer': (M) =>
    patch(M, '_match', (match) => function (child, id) {
      return match.call(this, child, id) ?? child.pending.values().next().value;
    }),
  // m.death.fails-in-flight, m.death.stdout-closed: callers wait for their timeout
  'no-fail-fast': (M) => patch(M, '_failInFlight', () => function () {}),
  // m.stream.stderr-not-parsed
  'parse-stderr': (M) =>
    patch(M, '_attachStderr', () => function (child, proc) {
      const { LineReader } = require('./peepsy-master.js');
      const reader = new LineReader((message) => this._receive(child, message));
      proc.stderr.on('data', (chunk) => reader.push(chunk));
    }),
  // m.serve.no-stack
  'stack-leak': (M) =>
    patch(M, '_handlerFailure', (original) => function (err) {
      const answer = original.call(this, err);
      answer.errorPayload.stack = String(err?.stack);
      return answer;
    }),
  // m.serve.unknown-404: an unknown action is answered 500
  'no-404': (M) =>
    patch(M, '_notFound', () => (action) => {
      const text = `unknown action ${action}`;
      return { status: 500, error: text, errorPayload: { name: 'Error', message: text } };
    }),
  // m.serve.throw-500: a handler that throws synchronously is never answered
  'throw-no-answer': (M) =>
    patch(M, '_run', () => (handler, data, target) => {
      try {
        return Promise.resolve(handler(data, { target }));
      } catch {
        return new Promise(() => {});
      }
    }),
  // m.hb.silent-child-not-killed: a child is judged by its silence from its spawn on
  'kill-silent': (M) =>
    patch(M, '_sendInit', (original) => function (child) {
      original.call(this, child);
      child.lastBeat = performance.now();
    }),
  // m.sup.hb-only-heartbeat: any message counts as a heartbeat
  'any-message-heartbeat': (M) =>
    patch(M, '_receive', (original) => function (child, message) {
      if (child.lastBeat !== undefined) child.lastBeat = performance.now();
      return original.call(this, child, message);
    }),
  // m.shut.escalation: SIGKILL at the deadline, without closing stdin or SIGTERM first
  'no-escalation': (M) => patch(M, '_escalation', () => (proc) => [() => proc.kill('SIGKILL')]),
  // m.retry.not-after-500, m.retry.not-after-404: answers are re-sent too
  'retry-after-500': (M) => patch(M, '_retriable', () => () => true),
  // m.sup.restart-limit
  'restart-forever': (M) =>
    patch(M, '_mayRestart', () => function (child) {
      return child.restart && !child.stopped && !this.closing;
    }),
  // m.shut.no-respawn-after-stop
  'respawn-after-stop': (M) => patch(M, '_markStopped', () => function () {}),
  // m.group.timeout-frees-capacity: a call that timed out keeps its group capacity
  'timeout-leaks-capacity': (M) =>
    patch(M, '_giveUp', (original) => function (call, code, ...rest) {
      if (code === 'PEEPSY_TIMEOUT') call.holds = false;
      return original.call(this, call, code, ...rest);
    }),
  // m.group.queue-deadline: a call's clock starts when it leaves its group's queue
  'queue-no-deadline': (M) => {
    const arm = M.prototype._armTimer;
    patch(M, '_armTimer', () => function (call) {
      if (!call.group) arm.call(this, call);
    });
    patch(M, '_dispatch', (dispatch) => function (child, call) {
      if (call.group) call.sentAt = performance.now();
      dispatch.call(this, child, call);
      if (call.group && !call.done) arm.call(this, call);
    });
  },
  // m.cancel.not-to-1-0: CANCEL to every child
  'cancel-to-1-0': (M) => patch(M, '_speaksCancel', () => () => true),
  // m.frame.no-cr
  'crlf-out': (M) => patch(M, '_encode', () => (message) => JSON.stringify(message) + '\r\n'),
};

function patch(Master, method, make) {
  Master.prototype[method] = make(Master.prototype[method]);
}

function inject(Master, name) {
  const fault = FAULTS[name];
  if (!fault) throw new Error(`PEEPSY_EXAMPLE_FAULT: no fault ${name}; known: ${Object.keys(FAULTS).join(', ')}`);
  fault(Master);
}

module.exports = { inject, FAULTS };

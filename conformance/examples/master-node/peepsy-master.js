// peepsy-master.js: a small peepsy master in plain Node.js (builtins only).
//
// It was written from docs/protocol.md and schema/ as the example for teams that write
// a master in another language: it spawns children and talks NDJSON over their stdin and
// stdout. What it does, with the requirement ids of docs/protocol.md:
//
//   spawn       INIT first to every incarnation (INIT-1); never waits for READY (READY-3)
//   request     unified (or legacy) REQUESTs, ids m1, m2, ... never reused (ID-2); its own
//               timeout, a late answer ignored (REQ-11, ID-4); calls in flight fail at once
//               when the child exits or its stdout ends (MASTER-1); retries only after a
//               timeout or an exit, with a new id (MASTER-2); a caller's AbortSignal
//               cancels, and a 1.1 child gets CANCEL (CANCEL-1)
//   groups      round-robin, maxConcurrency held at the master, queued calls keep their
//               deadline (MASTER-3, SCHED-4)
//   serving     handlers for the children's requests: 400, 404 with the Node text, 500
//               with the error text and no stack, whether a handler throws or rejects
//               (REQ-9, RESP-7, RESP-5, MASTER-6)
//   health      only a child that has sent a HEARTBEAT can miss one (HB-2, HB-3);
//               restarts up to maxRestarts, never after a shutdown (MASTER-4)
//   shutdown    SHUTDOWN, then stdin closed, SIGTERM, SIGKILL (SHUT-3)
//
// Errors carry a `code`: PEEPSY_REMOTE (the child answered >= 400: `status`,
// `remoteName`, `remoteCode`), PEEPSY_TIMEOUT, PEEPSY_EXITED, PEEPSY_NOT_FOUND,
// PEEPSY_SHUTTING_DOWN, PEEPSY_CANCELLED, PEEPSY_INVALID_RESPONSE.

'use strict';

const { spawn } = require('node:child_process');
const { EventEmitter } = require('node:events');
const { TextDecoder } = require('node:util');

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const ESCALATION_STEP_MS = 1000; // SHUT-3: between stdin closed, SIGTERM and SIGKILL
const EXIT_DRAIN_MS = 200; // a child's last lines may still be in its pipe when it exits

const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

class PeepsyError extends Error {
  constructor(code, message, details = {}) {
    super(message);
    this.name = 'PeepsyError';
    this.code = code;
    Object.assign(this, details);
  }
}

// --- the wire: validation of what children send ---------------------------------------

const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v, lo, hi) => Number.isInteger(v) && v >= lo && v <= hi;
// Lengths count code points (ID-1); a lone surrogate counts as one.
const isText = (v, max) =>
  typeof v === 'string' && v.length > 0 && (v.length <= max || [...v].length <= max);

function isValidResponse(m) {
  if (!isText(m.id, 128) || !isInt(m.status, 100, 599)) return false;
  if ('error' in m && typeof m.error !== 'string') return false;
  if (!('errorPayload' in m)) return true;
  const p = m.errorPayload;
  return (
    isObject(p) &&
    isText(p.name, 256) &&
    typeof p.message === 'string' &&
    (!('code' in p) || isText(p.code, 256)) &&
    (!('stack' in p) || typeof p.stack === 'string')
  );
}

// REQ-10: the id is readable from `request` when it is there (legacy), else from the top.
function readRequest(m) {
  const body = 'request' in m ? m.request : m;
  if (!isObject(body) || !isText(body.id, 128)) return null;
  const valid =
    isText(body.action, 256) &&
    (!('timeout' in m) || isInt(m.timeout, 1, 300000)) &&
    (!('priority' in m) || isInt(m.priority, -(2 ** 31), 2 ** 31 - 1));
  return { id: body.id, action: body.action, data: 'data' in body ? body.data : null, valid };
}

function failure(status, message, name, code) {
  return { status, error: message, errorPayload: { name, message, code } };
}

// Splits a child's stdout into lines; what cannot be used costs only its line (FRAME-8).
class LineReader {
  constructor(onMessage) {
    this.onMessage = onMessage;
    this.parts = [];
    this.first = true;
    this.decoder = new TextDecoder('utf-8', { fatal: true });
  }

  push(chunk) {
    let start = 0;
    let nl;
    while ((nl = chunk.indexOf(10, start)) !== -1) {
      this.parts.push(chunk.subarray(start, nl));
      this.line(Buffer.concat(this.parts));
      this.parts = [];
      start = nl + 1;
    }
    // FRAME-2: bytes without their \n are kept until it comes, and dropped at the end.
    if (start < chunk.length) this.parts.push(chunk.subarray(start));
  }

  line(bytes) {
    if (this.first) {
      this.first = false;
      if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3); // FRAME-7
    }
    let message;
    try {
      message = JSON.parse(this.decoder.decode(bytes)); // \r and blank lines: JSON whitespace
    } catch {
      return; // not UTF-8 or not JSON (FRAME-3, FRAME-5)
    }
    if (isObject(message)) this.onMessage(message);
  }
}

// --- the master -------------------------------------------------------------------------

class Master extends EventEmitter {
  constructor(options = {}) {
    super();
    this.options = {
      timeout: 5000,
      retries: 0,
      retryDelay: 0,
      heartbeatInterval: 2000,
      heartbeatMissThreshold: 3,
      maxRestarts: 3,
      requestShape: 'unified',
      exposeStack: false,
      ...options,
    };
    this.children = new Map();
    this.groups = new Map();
    this.handlers = new Map();
    this.lastId = 0;
    this.closing = false;
    const tick = Math.max(1, Math.ceil(this.options.heartbeatInterval / 4));
    this.healthTimer = setInterval(() => this._checkHealth(), tick).unref();
  }

  handle(action, handler) {
    this.handlers.set(action, handler);
    return this;
  }

  group(name, { maxConcurrency = Infinity } = {}) {
    this.groups.set(name, { members: [], next: 0, maxConcurrency, busy: 0, queue: [] });
  }

  spawn(name, argv, { env = {}, mode = 'sequential', group, restart = false } = {}) {
    if (this.children.has(name) || this.groups.has(name)) throw new Error(`${name} exists`);
    if (group && !this.groups.has(group)) this.group(group);
    const child = { name, argv, env, mode, restart, restarts: 0, stopped: false };
    this.children.set(name, child);
    if (group) this.groups.get(group).members.push(child);
    this._start(child);
  }

  async request(target, action, data, options = {}) {
    const { retries = this.options.retries } = options;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this._call(target, action, data, options);
      } catch (err) {
        if (attempt >= retries || !this._retriable(err)) throw err;
        await delay(this.options.retryDelay);
      }
    }
  }

  async shutdown(target, timeout = 5000) {
    const children = target === undefined ? [...this.children.values()] : [this.children.get(target)];
    if (!children.every(Boolean)) throw new PeepsyError('PEEPSY_NOT_FOUND', `no child ${target}`);
    await Promise.all(children.map((child) => this._stop(child, timeout)));
  }

  async close(timeout = 1000) {
    this.closing = true;
    clearInterval(this.healthTimer);
    await this.shutdown(undefined, timeout);
  }

  // --- children: start, health, exit, stop ---

  _start(child) {
    const proc = spawn(child.argv[0], child.argv.slice(1), {
      env: { ...process.env, ...child.env },
      stdio: 'pipe',
    });
    const reader = new LineReader((message) => this._receive(child, message));
    Object.assign(child, { proc, pending: new Map(), serving: new Set(), protocol: '1.0' });
    Object.assign(child, { running: true, readable: true, lastBeat: undefined });
    child.exited = new Promise((resolve) => (child.onExit = resolve));
    const outputEnded = new Promise((resolve) => proc.stdout.on('end', resolve));
    child.drained = Promise.race([outputEnded, child.exited.then(() => delay(EXIT_DRAIN_MS))]);
    outputEnded.then(() => this._outputEnded(child, proc));
    proc.stdout.on('data', (chunk) => reader.push(chunk));
    this._attachStderr(child, proc);
    proc.stdin.on('error', () => {}); // EPIPE: its exit is what counts
    proc.on('error', () => proc.pid === undefined && this._exited(child, proc, null, null));
    proc.on('exit', (code, signal) => this._exited(child, proc, code, signal));
    this._sendInit(child);
  }

  _sendInit(child) {
    const { heartbeatInterval } = this.options;
    this._send(child, { type: 'INIT', mode: child.mode, protocol: '1.1', target: child.name, heartbeatInterval });
  }

  _attachStderr(child, proc) {
    proc.stderr.resume(); // STREAM-2: the child's logs, never parsed
  }

  _checkHealth() {
    const limit = this.options.heartbeatInterval * this.options.heartbeatMissThreshold;
    for (const child of this.children.values()) {
      if (!child.running || child.stopped || !this._heartbeated(child)) continue;
      if (performance.now() - child.lastBeat > limit) {
        child.lastBeat = undefined;
        this.emit('unhealthy', { target: child.name });
        child.proc.kill('SIGKILL'); // its exit restarts it when restart is on
      }
    }
  }

  // HB-2: a child that never sent a HEARTBEAT made no promise; its exit tells us enough.
  _heartbeated(child) {
    return child.lastBeat !== undefined;
  }

  _outputEnded(child, proc) {
    if (child.proc !== proc || !child.readable) return;
    child.readable = false;
    this._failInFlight(child);
    proc.stdin.end(); // nothing it says can reach us any more (STREAM-3 makes it exit)
  }

  _exited(child, proc, code, signal) {
    if (child.proc !== proc || !child.running) return;
    child.running = false;
    child.onExit();
    this.emit('exit', { target: child.name, code, signal });
    // Its last answers may still be in the pipe: they are read before the rest fails.
    child.drained.then(() => {
      this._outputEnded(child, proc);
      if (!this._mayRestart(child)) return;
      child.restarts++;
      this.emit('restart', { target: child.name });
      this._start(child);
    });
  }

  _mayRestart(child) {
    return child.restart && !child.stopped && !this.closing && child.restarts < this.options.maxRestarts;
  }

  _failInFlight(child) {
    for (const call of child.pending.values()) {
      this._settle(call, new PeepsyError('PEEPSY_EXITED', `${child.name} exited or closed its output`));
    }
  }

  async _stop(child, timeout) {
    this._markStopped(child);
    if (!child.running) return;
    this._send(child, { type: 'SHUTDOWN', timeout });
    const steps = this._escalation(child.proc);
    let wait = timeout;
    for (const step of steps) {
      const exited = await Promise.race([child.exited.then(() => true), delay(wait).then(() => false)]);
      if (exited) return;
      step();
      wait = ESCALATION_STEP_MS;
    }
    await child.exited;
  }

  _markStopped(child) {
    child.stopped = true; // MASTER-4: a child stopped on purpose is never restarted
  }

  _escalation(proc) {
    return [() => proc.stdin.end(), () => proc.kill('SIGTERM'), () => proc.kill('SIGKILL')];
  }

  // --- calls ---

  _call(target, action, data, { timeout = this.options.timeout, priority, signal } = {}) {
    return new Promise((resolve, reject) => {
      const call = { action, data, timeout, priority, resolve, reject, sentAt: performance.now() };
      if (this.closing) return this._settle(call, new PeepsyError('PEEPSY_SHUTTING_DOWN', 'the master is closing'));
      const group = this.groups.get(target);
      const child = this.children.get(target);
      if (!group && !child) return this._settle(call, new PeepsyError('PEEPSY_NOT_FOUND', `no child or group ${target}`));
      call.group = group;
      if (signal?.aborted) return this._settle(call, new PeepsyError('PEEPSY_CANCELLED', 'cancelled'));
      this._armTimer(call);
      signal?.addEventListener('abort', () => this._giveUp(call, 'PEEPSY_CANCELLED', 'cancelled'), { once: true });
      if (!group) return this._dispatch(child, call);
      group.queue.push(call);
      this._drain(group);
    });
  }

  _armTimer(call) {
    const message = `no answer within ${call.timeout} ms`;
    call.timer = setTimeout(() => this._giveUp(call, 'PEEPSY_TIMEOUT', 'timeout', message), call.timeout);
  }

  _retriable(err) {
    // MASTER-2: an answer, whatever its status, is never re-sent.
    return err.code === 'PEEPSY_TIMEOUT' || err.code === 'PEEPSY_EXITED';
  }

  _drain(group) {
    while (group.queue.length > 0 && group.busy < group.maxConcurrency) {
      const call = group.queue.shift();
      const members = group.members.filter((c) => c.running && c.readable && !c.stopped);
      if (members.length === 0) {
        this._settle(call, new PeepsyError('PEEPSY_EXITED', 'no member of the group is running'));
        continue;
      }
      const member = members[group.next++ % members.length];
      group.busy++;
      call.holds = true; // MASTER-3: released exactly once, in _settle
      this._dispatch(member, call);
    }
  }

  _dispatch(child, call) {
    if (!child.running || !child.readable || !child.proc.stdin.writable) {
      return this._settle(call, new PeepsyError('PEEPSY_EXITED', `${child.name} is not running`));
    }
    if (child.stopped) return this._settle(call, new PeepsyError('PEEPSY_SHUTTING_DOWN', `${child.name} is stopping`));
    const id = this._nextId();
    Object.assign(call, { id, child });
    child.pending.set(id, call);
    // A call that waited in its group's queue sends what is left of its deadline.
    const left = Math.ceil(call.timeout - (performance.now() - call.sentAt));
    const timeout = call.group ? Math.max(1, Math.min(call.timeout, left)) : call.timeout;
    const { action, data, priority } = call;
    const message =
      this.options.requestShape === 'legacy'
        ? { type: 'REQUEST', request: { id, action, data }, timeout, priority }
        : { type: 'REQUEST', id, action, data, timeout, priority };
    try {
      this._send(child, message);
    } catch (err) {
      this._settle(call, err); // data that JSON cannot hold
    }
  }

  _nextId() {
    return `m${++this.lastId}`;
  }

  _giveUp(call, code, reason, message = reason) {
    if (call.done) return;
    const { child, id } = call;
    // CANCEL-1: only for our own unanswered REQUEST, only to a child that stated 1.1+.
    if (child?.pending.get(id) === call && child.running && this._speaksCancel(child)) {
      this._send(child, { type: 'CANCEL', id, reason });
    }
    this._settle(call, new PeepsyError(code, message));
  }

  _speaksCancel(child) {
    const [major, minor] = child.protocol.split('.').map(Number);
    return major > 1 || (major === 1 && minor >= 1);
  }

  _settle(call, error, answer) {
    if (call.done) return;
    call.done = true;
    clearTimeout(call.timer);
    call.child?.pending.delete(call.id);
    const { group } = call;
    if (group && group.queue.includes(call)) group.queue.splice(group.queue.indexOf(call), 1); // SCHED-4
    if (call.holds) {
      call.holds = false;
      group.busy--;
      setImmediate(() => this._drain(group));
    }
    if (error) call.reject(error);
    else call.resolve(answer);
  }

  // --- what children send ---

  _receive(child, message) {
    switch (message.type) {
      case 'RESPONSE':
        return this._answered(child, message);
      case 'REQUEST':
        return this._serve(child, message);
      case 'HEARTBEAT':
        if (isInt(message.pid, 0, MAX_SAFE) && isInt(message.timestamp, 0, MAX_SAFE)) child.lastBeat = performance.now();
        return;
      case 'READY':
        if (isInt(message.pid, 0, MAX_SAFE)) child.protocol = String(message.protocol ?? '1.0');
        return;
      default:
        return; // MSG-5, MSG-6: ignored
    }
  }

  _answered(child, message) {
    const call = this._match(child, message.id);
    if (!call) return; // ID-4: late, unknown, or the acknowledgement of a CANCEL
    if (!isValidResponse(message)) {
      return this._settle(call, new PeepsyError('PEEPSY_INVALID_RESPONSE', 'the answer was not a valid RESPONSE'));
    }
    if (message.status < 400) {
      const answer = { status: message.status };
      if ('data' in message) answer.data = message.data;
      return this._settle(call, null, answer);
    }
    const p = message.errorPayload ?? {};
    const text = message.error ?? p.message ?? `failed with status ${message.status}`; // RESP-3
    const details = { status: message.status, remoteName: p.name, remoteCode: p.code };
    this._settle(call, new PeepsyError('PEEPSY_REMOTE', text, details));
  }

  _match(child, id) {
    return typeof id === 'string' ? child.pending.get(id) : undefined;
  }

  _serve(child, message) {
    const request = readRequest(message);
    if (!request) return; // REQ-9 rule 1: no readable id
    const { proc, serving } = child;
    if (serving.has(request.id)) return; // ID-2: neither run nor answered
    const reply = (answer) => {
      serving.delete(request.id);
      if (child.proc === proc) this._send(child, { type: 'RESPONSE', id: request.id, ...answer });
    };
    if (!request.valid) return reply(failure(400, 'invalid REQUEST', 'PeepsyBadRequestError', 'PEEPSY_BAD_REQUEST'));
    const handler = this.handlers.get(request.action);
    if (!handler) return reply(this._notFound(request.action));
    serving.add(request.id);
    this._run(handler, request.data, child.name).then(
      (data) => reply(data === undefined ? { status: 200 } : { status: 200, data }),
      (err) => reply(this._handlerFailure(err)),
    );
  }

  _notFound(action) {
    const text = `No handler registered for action: ${action}`; // RESP-7
    return failure(404, text, 'PeepsyNotFoundError', 'PEEPSY_NOT_FOUND');
  }

  // A handler that throws and one that rejects end alike (MASTER-6).
  _run(handler, data, target) {
    return new Promise((resolve) => resolve(handler(data, { target })));
  }

  _handlerFailure(err) {
    const message = (err instanceof Error ? err.message : String(err)) || 'handler failed';
    const name = (err instanceof Error && err.name) || 'Error';
    const code = typeof err?.code === 'string' && err.code ? err.code : 'PEEPSY_HANDLER_ERROR';
    const answer = failure(500, message, name, code);
    if (this.options.exposeStack && err?.stack) answer.errorPayload.stack = err.stack; // RESP-5
    return answer;
  }

  _send(child, message) {
    if (!child.proc.stdin.writable) return;
    let line;
    try {
      line = this._encode(message);
    } catch (err) {
      if (message.type !== 'RESPONSE') throw err;
      // A handler's result that JSON cannot hold (a cycle, a BigInt) still gets its answer.
      line = this._encode({ type: 'RESPONSE', id: message.id, ...this._handlerFailure(err) });
    }
    child.proc.stdin.write(line);
  }

  _encode(message) {
    return JSON.stringify(message) + '\n'; // lone surrogates come out escaped (FRAME-9)
  }
}

module.exports = { Master, PeepsyError, LineReader };

// The conformance suite's broken variants (tests/conformance/master/test_node_masters.py).
if (process.env.PEEPSY_EXAMPLE_FAULT) require('./faults.js').inject(Master, process.env.PEEPSY_EXAMPLE_FAULT);

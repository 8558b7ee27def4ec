#!/usr/bin/env node
// A model of the Node original's master (peepsy 1.0.1's PeepsyMaster), with its MHP v1
// harness (conformance/MASTER.md) at the end of this file:
//   python -m peepsy.conformance master \
//     --expected-failures conformance/masters/node_original.expected-failures \
//     -- node conformance/masters/node_original_model.js
//
// It behaves as /work/shared/reference/node-peepsy-wire-facts.md says the original does,
// except that it speaks NDJSON on the child's stdin/stdout instead of Node's IPC channel:
// legacy nested REQUESTs with UUID ids, INIT without heartbeatInterval or protocol, a
// 5000 ms default timeout, retries after every failure, a group's maxConcurrency held
// as a queue at the master, auto-restart after any exit, and a heartbeat check on its
// own tick that SIGKILLs a silent child. It commits every documented defect of the
// original's master, each marked DEFECT n below (the numbers of the facts file and of
// node_original.expected-failures); elsewhere it behaves correctly, so that the suite
// can be shown to fail it on exactly those defects.

'use strict';

const { spawn } = require('node:child_process');
const { randomUUID } = require('node:crypto');
const { EventEmitter } = require('node:events');
const readline = require('node:readline');
const { TextDecoder } = require('node:util');

const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

class PeepsyError extends Error {
  constructor(message, code = 'PEEPSY_ERROR', details = {}) {
    super(message);
    this.code = code;
    Object.assign(this, details);
  }
}

const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);
const isId = (v) => typeof v === 'string' && v.length > 0 && [...v].length <= 128;

function validResponse(m) {
  const p = m.errorPayload;
  return (
    isId(m.id) &&
    Number.isInteger(m.status) && m.status >= 100 && m.status <= 599 &&
    (m.error === undefined || typeof m.error === 'string') &&
    (p === undefined || (isObject(p) && typeof p.name === 'string' && p.name !== '' && typeof p.message === 'string'))
  );
}

// Lines from a child's stdout; unusable lines are skipped, a cut-off last line dropped.
function readLines(stream, onMessage) {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let parts = [];
  let first = true;
  stream.on('data', (chunk) => {
    let start = 0;
    let nl;
    while ((nl = chunk.indexOf(10, start)) !== -1) {
      let bytes = Buffer.concat([...parts, chunk.subarray(start, nl)]);
      parts = [];
      start = nl + 1;
      if (first && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);
      first = false;
      let message;
      try {
        message = JSON.parse(decoder.decode(bytes));
      } catch {
        continue;
      }
      if (isObject(message)) onMessage(message);
    }
    if (start < chunk.length) parts.push(chunk.subarray(start));
  });
}

class PeepsyMaster extends EventEmitter {
  constructor(options = {}) {
    super();
    this.timeout = options.timeout ?? 5000;
    this.maxRetries = options.maxRetries ?? 0;
    this.retryDelay = options.retryDelay ?? 1000;
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? 2000;
    this.heartbeatMissThreshold = options.heartbeatMissThreshold ?? 3;
    this.processes = new Map();
    this.groups = new Map();
    this.handlers = new Map();
    this.pending = new Map();
    this.isShuttingDown = false;
    this.heartbeatTimer = setInterval(() => this.checkHeartbeats(), this.heartbeatIntervalMs).unref();
  }

  registerHandler(action, handler) {
    this.handlers.set(action, handler);
  }

  configureGroup(groupId, { strategy = 'round-robin', maxConcurrency, disableAutoRestart = false } = {}) {
    const group = this.group(groupId);
    Object.assign(group, { strategy, maxConcurrency, disableAutoRestart });
  }

  group(groupId) {
    if (!this.groups.has(groupId)) {
      this.groups.set(groupId, { members: [], next: 0, strategy: 'round-robin', queue: [], disableAutoRestart: false });
    }
    return this.groups.get(groupId);
  }

  spawnChild(target, argv, mode = 'sequential', groupId, options = {}) {
    const child = { target, argv, mode, groupId, env: options.env ?? {}, disableAutoRestart: !!options.disableAutoRestart };
    this.processes.set(target, child);
    if (groupId) this.group(groupId).members.push(target);
    this.start(child);
  }

  start(child) {
    const proc = spawn(child.argv[0], child.argv.slice(1), { env: { ...process.env, ...child.env } });
    Object.assign(child, { proc, alive: true, connected: true, requestsActive: 0, spawnedAt: Date.now() });
    child.lastHeartbeatAt = undefined;
    proc.stdin.on('error', () => {});
    // The channel's end, as the original's `disconnect`: nothing more is sent on it.
    proc.stdout.on('end', () => child.proc === proc && (child.connected = false));
    proc.stderr.resume();
    readLines(proc.stdout, (message) => this.handleMessage(child, proc, message));
    proc.on('exit', (code, signal) => {
      child.alive = false;
      // DEFECT 2: the requests in flight to it are not failed; they wait for their timeout.
      const group = this.groups.get(child.groupId);
      const disabled = child.disableAutoRestart || group?.disableAutoRestart;
      // The exit listener does not know about shutdownChild: a child stopped on purpose is
      // respawned too (m.shut.no-respawn-after-stop).
      if (!this.isShuttingDown && !disabled) {
        this.emit('auto-restart', { target: child.target, code, signal });
        this.start(child);
      } else {
        this.emit('exit', { target: child.target, code, signal });
      }
    });
    this.send(child, { type: 'INIT', mode: child.mode });
  }

  // `done` hears of a failed write, as the original's process.send callback does.
  send(child, message, done = () => {}) {
    if (child.proc.stdin.writable) child.proc.stdin.write(JSON.stringify(message) + '\n', done);
    else done(new Error('channel closed'));
  }

  // DEFECT 9: the check runs on its own tick and judges a child that never sent a
  // HEARTBEAT from its spawn on, so every silent child is killed (and respawned).
  checkHeartbeats() {
    const limit = this.heartbeatIntervalMs * this.heartbeatMissThreshold;
    for (const child of this.processes.values()) {
      if (!child.alive) continue;
      if (Date.now() - (child.lastHeartbeatAt ?? child.spawnedAt) > limit) {
        this.emit('heartbeat-missed', { target: child.target, timestamp: Date.now() });
        child.proc.kill('SIGKILL');
      }
    }
  }

  async sendRequest(action, targetOrGroup, data, options = {}) {
    const retries = options.retries ?? this.maxRetries;
    let lastError;
    for (let attempt = 0; attempt <= retries; attempt++) {
      try {
        return await this.sendOnce(action, targetOrGroup, data, options.timeout ?? this.timeout);
      } catch (err) {
        lastError = err; // DEFECT 7: every failure is retried, a 404 or 500 answer included
        if (attempt < retries) await delay(this.retryDelay);
      }
    }
    throw lastError;
  }

  async sendOnce(action, targetOrGroup, data, timeout) {
    let target = targetOrGroup;
    const group = this.groups.get(targetOrGroup);
    if (group) {
      // DEFECT 3: a request queued for capacity has no deadline while it waits.
      while (group.maxConcurrency && this.groupActive(group) >= group.maxConcurrency) {
        await new Promise((resolve) => group.queue.push(resolve));
      }
      target = this.pick(group);
    }
    await new Promise(setImmediate); // I/O already in (an exit, the channel's end) is seen first
    const child = this.processes.get(target);
    if (!child) throw new PeepsyError(`No process found for target or group: ${targetOrGroup}`, 'PEEPSY_NOT_FOUND');
    if (!child.alive || !child.connected) throw new PeepsyError(`Process ${target} is not running`, 'PEEPSY_PROCESS');
    const id = randomUUID();
    child.requestsActive++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        // DEFECT 1: requestsActive is not decremented: the group's capacity leaks.
        reject(new PeepsyError(`Request timed out after ${timeout}ms for target: ${target}`, 'PEEPSY_TIMEOUT'));
      }, timeout);
      this.pending.set(id, { child, resolve, reject, timer, group });
      this.send(child, { type: 'REQUEST', request: { id, action, data }, timeout }, (err) => {
        if (!err || !this.pending.delete(id)) return;
        clearTimeout(timer);
        reject(new PeepsyError(`Process ${target} is not running`, 'PEEPSY_PROCESS'));
      });
    });
  }

  groupActive(group) {
    return group.members.reduce((sum, target) => sum + (this.processes.get(target)?.requestsActive ?? 0), 0);
  }

  pick(group) {
    const alive = group.members.filter((target) => this.processes.get(target)?.alive);
    const members = alive.length > 0 ? alive : group.members;
    return members[group.next++ % members.length];
  }

  handleMessage(child, proc, message) {
    if (message.type === 'RESPONSE') return this.handleResponse(message);
    if (message.type === 'HEARTBEAT') child.lastHeartbeatAt = Date.now();
    if (message.type === 'REQUEST') this.handleChildRequest(child, proc, message);
  }

  handleResponse(message) {
    const entry = typeof message.id === 'string' ? this.pending.get(message.id) : undefined;
    if (!entry) return;
    this.pending.delete(message.id);
    clearTimeout(entry.timer);
    entry.child.requestsActive--;
    const waiting = entry.group?.queue.shift();
    if (waiting) waiting();
    if (!validResponse(message)) return entry.reject(new PeepsyError('Invalid response', 'PEEPSY_INVALID'));
    if (message.status >= 400) {
      const p = message.errorPayload ?? {};
      const text = message.error ?? p.message ?? `Request failed with status ${message.status}`;
      return entry.reject(new PeepsyError(text, 'PEEPSY_REMOTE', { status: message.status, remoteName: p.name, remoteCode: p.code }));
    }
    entry.resolve(message.data === undefined ? { status: message.status } : { status: message.status, data: message.data });
  }

  handleChildRequest(child, proc, message) {
    const body = 'request' in message ? message.request : message;
    if (!isObject(body) || !isId(body.id)) return;
    child.serving ??= new Set();
    if (child.serving.has(body.id)) return;
    const respond = (answer) => {
      child.serving.delete(body.id);
      if (child.proc === proc) this.send(child, { type: 'RESPONSE', id: body.id, ...answer });
    };
    const timeoutOk = message.timeout === undefined || (Number.isInteger(message.timeout) && message.timeout >= 1 && message.timeout <= 300000);
    if (typeof body.action !== 'string' || body.action === '' || !timeoutOk) {
      return respond({ status: 400, error: 'Invalid request', errorPayload: { name: 'PeepsyError', message: 'Invalid request' } });
    }
    const handler = this.handlers.get(body.action);
    if (!handler) {
      const text = `No handler registered for action: ${body.action}`;
      return respond({ status: 404, error: text, errorPayload: { name: 'PeepsyNotFoundError', message: text } });
    }
    child.serving.add(body.id);
    let result;
    try {
      result = handler(body.data);
    } catch {
      return; // a synchronously throwing handler is never answered (m.serve.throw-500)
    }
    Promise.resolve(result).then(
      (data) => respond({ status: 200, data }),
      (err) => {
        // DEFECT 8: the handler's stack goes to the child.
        const errorPayload = { name: err.name ?? 'Error', message: String(err.message), stack: err.stack };
        respond({ status: 500, error: String(err.message), errorPayload });
      },
    );
  }

  // The child is SIGKILLed at the deadline: no closing of stdin, no SIGTERM first.
  async shutdownChild(target, timeout = 5000) {
    const child = this.processes.get(target);
    if (!child) throw new PeepsyError(`No process found for target or group: ${target}`, 'PEEPSY_NOT_FOUND');
    if (child.alive) {
      const { proc } = child;
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      this.send(child, { type: 'SHUTDOWN' });
      const timer = setTimeout(() => proc.kill('SIGKILL'), timeout);
      await exited;
      clearTimeout(timer);
    }
    this.processes.delete(target); // the respawned child, if any, is lost track of
  }

  async gracefulShutdown(timeout = 30000) {
    this.isShuttingDown = true;
    clearInterval(this.heartbeatTimer);
    await Promise.all([...this.processes.keys()].map((target) => this.shutdownChild(target, timeout)));
  }
}

// --- the MHP v1 harness ---------------------------------------------------------------

const KINDS = { PEEPSY_TIMEOUT: 'timeout', PEEPSY_PROCESS: 'exited', PEEPSY_NOT_FOUND: 'notFound', PEEPSY_INVALID: 'invalid' };
let master;
const events = [];
const outstanding = new Map(); // seq -> the reply that settles it

function outcomeOf(err) {
  if (err.code !== 'PEEPSY_REMOTE') return { kind: KINDS[err.code] ?? 'other', message: err.message };
  const outcome = { kind: 'remote', status: err.status, message: err.message };
  if (err.remoteName !== undefined) outcome.name = err.remoteName;
  if (err.remoteCode !== undefined) outcome.code = err.remoteCode;
  return outcome;
}

const commands = {
  start({ master: options = {} }) {
    if (options.maxRestarts !== undefined) return { unsupported: 'the original restarts without a limit' };
    if (options.requestShape === 'unified') return { unsupported: 'the original sends the legacy shape only' };
    master = new PeepsyMaster({
      timeout: options.timeout,
      maxRetries: options.retries,
      retryDelay: options.retryDelay,
      heartbeatIntervalMs: options.heartbeatInterval,
      heartbeatMissThreshold: options.heartbeatMissThreshold,
    });
    master.registerHandler('echo', async (data) => data);
    master.registerHandler('fail', async (message) => { throw new Error(message); });
    master.registerHandler('throw', (message) => { throw new Error(message); });
    master.registerHandler('sleep', (ms) => delay(ms).then(() => ms));
    master.on('exit', ({ target }) => events.push({ kind: 'exit', target }));
    master.on('auto-restart', ({ target }) => events.push({ kind: 'exit', target }, { kind: 'restart', target }));
    master.on('heartbeat-missed', ({ target }) => events.push({ kind: 'unhealthy', target }));
    const implementation = { name: 'peepsy-node-model', version: '1.0.1', language: 'javascript' };
    return { version: 1, implementation, capabilities: ['profile', 'supervision', 'groups', 'retry', 'legacy', 'events'] };
  },
  group({ name, strategy, maxConcurrency }) {
    master.configureGroup(name, { strategy, maxConcurrency });
    return { ok: true };
  },
  spawn({ name, argv, env, mode, group, restart = false }) {
    master.spawnChild(name, argv, mode, group, { env, disableAutoRestart: !restart });
    return { ok: true };
  },
  async request({ target, action, data, timeout, retries }) {
    try {
      return { outcome: { kind: 'ok', ...(await master.sendRequest(action, target, data, { timeout, retries })) } };
    } catch (err) {
      return { outcome: outcomeOf(err) };
    }
  },
  async shutdown({ target, timeout }) {
    if (target === undefined) await master.gracefulShutdown(timeout);
    else await master.shutdownChild(target, timeout);
    return { ok: true };
  },
  events() {
    return { events: events.splice(0) };
  },
};

const reply = (response) => process.stdout.write(JSON.stringify(response) + '\n');

function run(command) {
  const carry = commands[command.cmd] ?? (() => ({ unsupported: `no command ${command.cmd}` }));
  const answer = (response) => {
    if (outstanding.delete(command.seq)) reply({ seq: command.seq, ...response });
  };
  outstanding.set(command.seq, answer);
  new Promise((resolve) => resolve(carry(command)))
    .catch((err) => ({ errored: { message: String(err?.message ?? err), traceback: String(err?.stack ?? '') } }))
    .then(answer);
}

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await master?.gracefulShutdown(1000);
  await new Promise(setImmediate); // calls that failed at once have answered by now
  // DEFECT 2 again: calls in flight to the children just stopped would wait for their
  // timeout; the harness answers them now rather than hold the suite.
  for (const answer of outstanding.values()) answer({ outcome: { kind: 'other', message: 'the master closed with the call unsettled' } });
  process.exit(0);
}

if (require.main === module) {
  const input = readline.createInterface({ input: process.stdin });
  input.on('line', (line) => {
    const command = JSON.parse(line);
    if (command.cmd === 'stop') stop();
    else run(command);
  });
  input.on('close', stop);
  process.on('SIGTERM', () => process.exit(0));
}

module.exports = { PeepsyMaster };

#!/usr/bin/env node
// A peepsy worker in plain Node.js: no npm packages, no peepsy library.
//
// It was written from docs/protocol.md and schema/ alone, as an example for people who
// write workers in other languages, and it serves the conformance profile
// (conformance/workers/python_worker.py describes it):
//
//   echo        answers with the request's data, unchanged
//   fail        fails with status 500; the error text is the request's data
//   sleep       waits data milliseconds, then answers with data
//   callMaster  asks the master to run data.action with data.data and relays its answer
//
// Check it with:  python -m peepsy.conformance -- node conformance/workers/node_worker.js
//
// The whole worker is one event loop. Handlers are async functions and never block, so
// the heartbeat timer, the queue's expiry timers and the reading of stdin all keep going
// while requests run (HB-1, HB-4). The requirement ids in the comments (FRAME-6, SCHED-3, ...)
// are those of docs/protocol.md.

'use strict';

const { TextDecoder } = require('node:util');

// --- settings -------------------------------------------------------------------------

// FRAME-6 asks for at least 1 MiB. We take up to 16 MiB (the reference's default) and
// drop longer lines whole: a line is held in memory as one string, so some bound is
// needed, and 16 MiB is far above anything a sane master sends.
const MAX_LINE_BYTES = 16 * 1024 * 1024;
// FRAME-12: of a line too long to keep we keep its first bytes, enough to read a
// REQUEST's id from (128 characters, each escaped as up to 12 bytes, and what precedes).
const HEAD_BYTES = 2048;
// FRAME-3 lets a receiver reject nesting deeper than 64 levels. V8 parses any depth, but
// JSON.stringify recurses and overflows the stack somewhere in the thousands, so data we
// accept must stay shallow enough for us to write back (echo).
const MAX_DEPTH = 512;
const DEFAULT_TIMEOUT_MS = 5000; // REQ-4: an absent `timeout`
const DEFAULT_HEARTBEAT_MS = 2000; // HB-1: until INIT says otherwise
const SHUTDOWN_GRACE_MS = 10000; // SHUT-6: when SHUTDOWN names no timeout
// STREAM-3: after end of input we exit within 1000 ms whatever runs. We give running
// handlers half of that to finish (their answers are welcome, not required: SHUT-2).
const END_OF_INPUT_GRACE_MS = 500;
const IMPLEMENTATION = 'peepsy-node-example/1.0';

// --- state ----------------------------------------------------------------------------

// Sequential, with no cap, until INIT says otherwise (INIT-2: a child not configured
// with a mode or a cap of its own adopts INIT's).
let mode = 'sequential';
let maxConcurrency = Infinity; // the cap in concurrent mode (SCHED-2)
let heartbeatMs = DEFAULT_HEARTBEAT_MS;
let initSeen = false; // the first valid INIT has come (INIT-2, READY-2)
// FRAME-11: the longest line the master accepts, from its first INIT's maxLineBytes. A
// master that states none has promised only 1 MiB (FRAME-6), but FRAME-11 binds us to a
// stated limit only: like the reference, we then write what we must and risk the drop.
let peerMaxLineBytes = Infinity;
let stopping = false; // after SHUTDOWN or end of input: no new work (SHUT-1)
let inputEnded = false;
let running = 0;
const queue = []; // {id, action, data, priority, seq, timer}
let arrival = 0; // breaks priority ties in arrival order (SCHED-1)
// Ids of requests we have accepted and not yet answered. ID-2: a second request with one
// of these ids must be neither run nor answered, since its answer would be taken for the
// first one's.
const owed = new Set();
// Our own requests to the master, by id, awaiting its RESPONSE (ID-4: anything else is
// ignored).
const pendingCalls = new Map();
let nextCallId = 1;

// --- writing --------------------------------------------------------------------------

// STREAM-1: stdout carries protocol lines and nothing else, so everything a human might
// want to read goes to stderr. Never use console.log in a worker.
function log(text) {
  process.stderr.write(`node-worker: ${text}\n`);
}

// One write per whole line (STREAM-4). On Linux, writes to a pipe are synchronous in
// Node, and on other systems they are queued in order, so lines never interleave.
// JSON.stringify escapes line feeds and control characters inside strings, writes no
// BOM and no CR (FRAME-1, FRAME-4, FRAME-7), turns non-finite numbers into null, as
// FRAME-3 recommends, and writes a lone surrogate as its \uXXXX escape (FRAME-9).
//
// FRAME-11: no line longer than the master's maxLineBytes. A RESPONSE that would be is
// replaced by a 413 failure; a REQUEST (callMaster) is not sent, and its call fails.
function send(message) {
  let text;
  try {
    text = JSON.stringify(message);
  } catch (err) {
    // Only a RESPONSE's data can fail to serialize; its sender still needs an answer
    // (RESP-1), so report the failure instead of the result.
    if (message.type !== 'RESPONSE' || message.status >= 400) throw err;
    text = JSON.stringify(failureMessage(message.id, 500, {
      name: 'EncodeError', message: `cannot write the result as JSON: ${err.message}`,
    }));
  }
  const bytes = Buffer.byteLength(text) + 1; // the \n counts (FRAME-6)
  if (bytes > peerMaxLineBytes) {
    const tooLong = `the ${message.type} of ${bytes} bytes exceeds the master's line limit `
      + `of ${peerMaxLineBytes} bytes (maxLineBytes)`;
    if (message.type !== 'RESPONSE') {
      throw new HandlerError(tooLong, { status: 502, name: 'PeepsyLineTooLongError', code: 'PEEPSY_LINE_TOO_LONG' });
    }
    text = JSON.stringify(failureMessage(message.id, 413, {
      name: 'PeepsyLineTooLongError', message: tooLong, code: 'PEEPSY_LINE_TOO_LONG',
    }));
  }
  process.stdout.write(`${text}\n`);
}

// A master that has gone away makes stdout fail with EPIPE: nobody is left to talk to.
process.stdout.on('error', (err) => {
  log(`stdout failed (${err.code || err.message}); exiting`);
  process.exit(0);
});

function failureMessage(id, status, failure) {
  // RESP-3: a failure carries `error` (every peer reads it) and the structured
  // `errorPayload` with the same text. No `data`, and no stack (RESP-5).
  // name and code hold 1..256 characters; a relayed failure may bring longer ones.
  const payload = { name: (failure.name || 'Error').slice(0, 256), message: failure.message };
  if (typeof failure.code === 'string' && failure.code.length > 0) {
    payload.code = failure.code.slice(0, 256);
  }
  if (failure.details !== undefined) payload.details = failure.details;
  return { type: 'RESPONSE', id, status, error: failure.message, errorPayload: payload };
}

function answer(id, result) {
  owed.delete(id);
  // RESP-3: a success carries `data` and neither `error` nor `errorPayload`.
  send({ type: 'RESPONSE', id, status: 200, data: result === undefined ? null : result });
}

function answerFailure(id, status, failure) {
  owed.delete(id);
  send(failureMessage(id, status, failure));
}

// --- handlers -------------------------------------------------------------------------

// A handler that fails throws one of these; anything else thrown becomes a plain 500.
class HandlerError extends Error {
  constructor(message, { status = 500, name = 'HandlerError', code, details } = {}) {
    super(message);
    this.status = status;
    this.errorName = name;
    this.code = code;
    this.details = details;
  }
}

// A Map, not an object literal: an action named "toString" or "__proto__" must find no
// handler rather than something inherited from Object.prototype.
const handlers = new Map([
  ['echo', async (data) => data],
  ['fail', async (data) => {
    const text = typeof data === 'string' ? data
      : data === null ? 'failed on purpose' : JSON.stringify(data);
    throw new HandlerError(text, { code: 'E_FAIL' });
  }],
  ['sleep', async (data) => {
    if (typeof data !== 'number' || !Number.isFinite(data)) {
      throw new HandlerError(`sleep wants a number of milliseconds, not ${JSON.stringify(data)}`);
    }
    // setTimeout fires at once for delays beyond 2^31-1 ms; no request waits that long.
    await new Promise((resolve) => setTimeout(resolve, Math.min(Math.max(data, 0), 2 ** 31 - 1)));
    return data;
  }],
  ['callMaster', async (data) => {
    if (!isObject(data) || !validAction(data.action)
        || (hasOwn(data, 'timeout') && !validInt(data.timeout, 1, 300000))) {
      throw new HandlerError('callMaster wants {"action": NAME, "data": ANY, "timeout": MS (optional)}');
    }
    return callMaster(data.action, data.data, hasOwn(data, 'data'), data.timeout);
  }],
]);

// --- requests to the master -----------------------------------------------------------

// A call to the master that gave no usable answer (no answer in time, an invalid one,
// a closed channel, a request too long to send) fails the request that made it with 502,
// as the reference worker does: any status from 400 on is a failure (RESP-2).
function callFailed(text, name = 'PeepsyCallError', code = undefined) {
  return new HandlerError(text, { status: 502, name, code });
}

// The child side of a REQUEST (ID-3): ids of our own ("c1", "c2", ...), the unified
// shape (REQ-6), and a timer of our own (REQ-11): the master owes us nothing if it never
// answers, so when the REQUEST's timeout has passed we fail the call ourselves, and a
// later answer finds no pending call (ID-4).
function callMaster(action, data, withData, timeout = DEFAULT_TIMEOUT_MS) {
  if (inputEnded) {
    return Promise.reject(callFailed('the master has closed the channel'));
  }
  const id = `c${nextCallId++}`;
  const request = { type: 'REQUEST', id, action, timeout };
  if (withData) request.data = data;
  try {
    send(request);
  } catch (err) {
    return Promise.reject(err); // FRAME-11: too long to send; nothing went out
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      pendingCalls.delete(id);
      reject(callFailed(`the master did not answer ${action} within ${timeout} ms`,
        'PeepsyTimeoutError', 'PEEPSY_TIMEOUT'));
    }, timeout);
    pendingCalls.set(id, { resolve, reject, timer });
  });
}

// What is wrong with a RESPONSE (MSG-2), or null when it is valid.
function responseProblem(msg) {
  if (!validId(msg.id)) return '`id` is not a string of 1..128 characters';
  if (!validInt(msg.status, 100, 599)) return '`status` is not an integer of 100..599';
  if (hasOwn(msg, 'error') && typeof msg.error !== 'string') return '`error` is not a string';
  if (hasOwn(msg, 'errorPayload')) {
    const payload = msg.errorPayload;
    if (!isObject(payload)) return '`errorPayload` is not an object';
    if (!validName(payload.name)) return '`errorPayload.name` is not a string of 1..256 characters';
    if (typeof payload.message !== 'string') return '`errorPayload.message` is not a string';
    if (hasOwn(payload, 'code') && !validName(payload.code)) {
      return '`errorPayload.code` is not a string of 1..256 characters';
    }
    if (hasOwn(payload, 'stack') && typeof payload.stack !== 'string') return '`errorPayload.stack` is not a string';
  }
  return null;
}

function onResponse(msg) {
  const id = msg.id;
  const call = typeof id === 'string' ? pendingCalls.get(id) : undefined;
  const problem = responseProblem(msg);
  if (call === undefined) {
    // ID-4, MSG-9: late, never asked for, or invalid without one of our ids. Never
    // deliver it to anyone.
    log(`ignored a RESPONSE to ${JSON.stringify(id)}, which is not one of our requests${
      problem ? ` (and is invalid: ${problem})` : ''}`);
    return;
  }
  pendingCalls.delete(id);
  clearTimeout(call.timer);
  if (problem !== null) {
    // MSG-9: an invalid answer to one of our requests fails it at once; nothing waits
    // for the timeout.
    call.reject(callFailed(`the master's answer to ${id} is invalid: ${problem}`));
    return;
  }
  // RESP-2: anything below 400 is a success.
  if (msg.status < 400) {
    call.resolve(hasOwn(msg, 'data') ? msg.data : null);
    return;
  }
  // RESP-3: the text is `error`, else errorPayload.message, else a generic one.
  const payload = hasOwn(msg, 'errorPayload') ? msg.errorPayload : {};
  const text = typeof msg.error === 'string' ? msg.error
    : typeof payload.message === 'string' ? payload.message
      : `the master answered with status ${msg.status}`;
  // Relay the failure as the master described it. 408 and 503 say "did not run, safe to
  // resend", which is not true of our request (it ran, and the call inside it failed).
  const status = msg.status === 408 || msg.status === 503 ? 500 : msg.status;
  call.reject(new HandlerError(text, {
    status,
    name: typeof payload.name === 'string' ? payload.name : 'RemoteError',
    code: payload.code,
    details: payload.details,
  }));
}

// --- validation (MSG-2) ---------------------------------------------------------------

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function hasOwn(obj, key) {
  return Object.prototype.hasOwnProperty.call(obj, key);
}

// JSON Schema counts characters as code points; JavaScript's .length counts UTF-16 units.
function codePoints(text) {
  let n = 0;
  for (const _ of text) n += 1; // eslint-disable-line no-unused-vars
  return n;
}

function validId(value) {
  return typeof value === 'string' && value.length > 0 && codePoints(value) <= 128;
}

// Action names, errorPayload names and codes, INIT's target: 1..256 characters.
function validName(value) {
  return typeof value === 'string' && value.length > 0 && codePoints(value) <= 256;
}
const validAction = validName;

// MSG-8: JSON.parse reads 5000, 5000.0 and 5e3 as the same number, so an integral float
// is an integer here without any effort; 5000.5 is not.
function validInt(value, low, high) {
  return Number.isInteger(value) && value >= low && value <= high;
}

// Both REQUEST shapes (REQ-3): a `request` member makes it legacy, whatever else the
// message holds. Returns {request} or {problem, id}, where id is the readable id, if any
// (REQ-7 answers it with 400).
//
// REQ-10: the id is readable when it is a string of 1..128 characters where the shape
// puts it: in `request` when there is a `request` member, else at the top. Nothing else
// is read; in particular not a flat `id` beside a `request` that is not an object.
function readRequest(msg) {
  const legacy = hasOwn(msg, 'request');
  const body = legacy ? msg.request : msg;
  const readableId = isObject(body) && validId(body.id) ? body.id : undefined;
  const problem = (text) => ({ problem: text, id: readableId });
  if (!isObject(body)) return problem('`request` is not an object');
  if (!validId(body.id)) return problem('`id` is not a string of 1..128 characters');
  if (!validAction(body.action)) return problem('`action` is not a string of 1..256 characters');
  // MSG-2: optional members are absent or valid; null is not a way to leave them out.
  if (hasOwn(msg, 'timeout') && !validInt(msg.timeout, 1, 300000)) {
    return problem('`timeout` is not an integer of 1..300000');
  }
  if (hasOwn(msg, 'priority') && !validInt(msg.priority, -(2 ** 31), 2 ** 31 - 1)) {
    return problem('`priority` is not a 32-bit integer');
  }
  return {
    request: {
      id: body.id,
      action: body.action,
      // REQ-8: data as it came; absent becomes the language's null.
      data: hasOwn(body, 'data') ? body.data : null,
      timeout: hasOwn(msg, 'timeout') ? msg.timeout : DEFAULT_TIMEOUT_MS,
      priority: hasOwn(msg, 'priority') ? msg.priority : 0,
    },
  };
}

// --- scheduling (SCHED-1..3) ----------------------------------------------------------

// SCHED-1, SCHED-2: one at a time in sequential mode; in concurrent mode up to the cap
// INIT asked for, if any.
function capacity() {
  return mode === 'sequential' ? 1 : maxConcurrency;
}

function onRequest(msg) {
  const { request, problem, id } = readRequest(msg);
  if (request === undefined) {
    if (id !== undefined && !owed.has(id)) {
      answerFailure(id, 400, {
        name: 'PeepsyBadRequestError', message: `invalid REQUEST: ${problem}`, code: 'PEEPSY_BAD_REQUEST',
      });
    } else {
      log(`dropped an invalid REQUEST: ${problem}`);
    }
    return;
  }
  if (owed.has(request.id)) {
    log(`ignored a second REQUEST with the id ${request.id}, which is still running (ID-2)`);
    return;
  }
  owed.add(request.id);
  if (stopping) {
    answerFailure(request.id, 503, {
      name: 'PeepsyShutdownError', message: 'the worker is shutting down', code: 'PEEPSY_SHUTTING_DOWN',
    });
    return;
  }
  const handler = handlers.get(request.action);
  if (handler === undefined) {
    // RESP-4, with the text Node peepsy sends. An unknown action needs no queue slot, so
    // it is answered at once even while another request runs.
    const text = `No handler registered for action: ${request.action}`;
    answerFailure(request.id, 404, { name: 'PeepsyNotFoundError', message: text, code: 'PEEPSY_NOT_FOUND' });
    return;
  }
  request.handler = handler;
  request.seq = arrival++;
  if (running < capacity() && queue.length === 0) {
    start(request);
    return;
  }
  // SCHED-3: a request that waits longer than its sender will wait is answered 408 and
  // never run. Its clock starts when we read it (REQ-4), which is as close as we can get
  // to "when it was sent".
  request.expiresAt = performance.now() + request.timeout;
  request.timer = setTimeout(() => expire(request), request.timeout);
  queue.push(request);
}

function expire(request) {
  const index = queue.indexOf(request);
  if (index === -1) return;
  // REQ-4: never before its time. Node's timers may fire a millisecond early.
  const left = request.expiresAt - performance.now();
  if (left > 0) {
    request.timer = setTimeout(() => expire(request), Math.ceil(left));
    return;
  }
  queue.splice(index, 1);
  answerFailure(request.id, 408, {
    name: 'PeepsyTimeoutError',
    message: `Request expired in the queue after ${request.timeout}ms`,
    code: 'PEEPSY_TIMEOUT',
  });
}

// Highest priority first, equal priorities in arrival order (SCHED-1). A linear scan:
// queues at a worker are short, and this is easier to check than a heap.
function takeNext() {
  let best = 0;
  for (let i = 1; i < queue.length; i += 1) {
    const a = queue[i];
    const b = queue[best];
    if (a.priority > b.priority || (a.priority === b.priority && a.seq < b.seq)) best = i;
  }
  const [request] = queue.splice(best, 1);
  clearTimeout(request.timer);
  return request;
}

function pump() {
  while (!stopping && queue.length > 0 && running < capacity()) start(takeNext());
}

async function start(request) {
  running += 1;
  try {
    const result = await request.handler(request.data);
    answer(request.id, result);
  } catch (err) {
    if (err instanceof HandlerError) {
      answerFailure(request.id, err.status, {
        name: err.errorName, message: err.message, code: err.code, details: err.details,
      });
    } else {
      // A bug in a handler is still an answer (RESP-1), just a less helpful one.
      const text = (err && err.message) || String(err);
      answerFailure(request.id, 500, { name: (err && err.name) || 'Error', message: text, code: 'PEEPSY_HANDLER_ERROR' });
    }
  } finally {
    running -= 1;
    pump();
    if (stopping && running === 0) exit();
  }
}

// --- INIT, SHUTDOWN, end of input -----------------------------------------------------

// MSG-2: what is wrong with an INIT, or null when it is valid.
function initProblem(msg) {
  if (msg.mode !== 'sequential' && msg.mode !== 'concurrent') {
    return '`mode` is not "sequential" or "concurrent"';
  }
  if (hasOwn(msg, 'protocol')
      && !(typeof msg.protocol === 'string' && /^(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})$/.test(msg.protocol))) {
    return '`protocol` is not a version MAJOR.MINOR';
  }
  if (hasOwn(msg, 'target') && !validName(msg.target)) return '`target` is not a string of 1..256 characters';
  if (hasOwn(msg, 'heartbeatInterval') && !validInt(msg.heartbeatInterval, 1, 300000)) {
    return '`heartbeatInterval` is not an integer of 1..300000';
  }
  if (hasOwn(msg, 'maxConcurrency') && !validInt(msg.maxConcurrency, 1, 65536)) {
    return '`maxConcurrency` is not an integer of 1..65536';
  }
  if (hasOwn(msg, 'maxLineBytes') && !validInt(msg.maxLineBytes, 1048576, Number.MAX_SAFE_INTEGER)) {
    return '`maxLineBytes` is not an integer of 1048576..2^53-1';
  }
  return null;
}

// INIT-2: the first valid INIT sets the mode, the cap, the heartbeat interval and the
// master's line limit; later ones are ignored. MSG-9: an invalid one is ignored as if it
// had not come, and the next valid one is the first.
function onInit(msg) {
  if (initSeen) {
    log('ignored a repeated INIT (INIT-2)');
    return;
  }
  const problem = initProblem(msg);
  if (problem !== null) {
    log(`ignored an invalid INIT: ${problem} (MSG-9)`);
    return;
  }
  initSeen = true;
  if (hasOwn(msg, 'protocol') && !msg.protocol.startsWith('1.')) {
    // VER-2: a different MAJOR version may not understand us; say so and carry on.
    log(`the master speaks protocol ${msg.protocol}; this worker speaks 1.0`);
  }
  mode = msg.mode;
  if (hasOwn(msg, 'maxConcurrency')) maxConcurrency = msg.maxConcurrency;
  if (hasOwn(msg, 'maxLineBytes')) peerMaxLineBytes = msg.maxLineBytes;
  // READY-1 is optional; we send it, and READY-2 says when: once, in answer to this INIT,
  // before anything else we write, describing us as we now run.
  const ready = {
    type: 'READY',
    pid: process.pid,
    protocol: '1.0',
    mode,
    actions: [...handlers.keys()],
    implementation: IMPLEMENTATION,
  };
  const cap = capacity();
  if (cap !== Infinity) ready.maxConcurrency = cap; // absent: no cap
  ready.maxLineBytes = MAX_LINE_BYTES; // FRAME-6: what we read before dropping a line
  send(ready);
  if (hasOwn(msg, 'heartbeatInterval')) {
    heartbeatMs = msg.heartbeatInterval;
    // Apply the new interval now, without waiting out the old one.
    scheduleHeartbeat(Math.min(nextHeartbeatAt, Date.now() + heartbeatMs));
  }
  pump(); // concurrent mode may start what sequential mode queued
}

// SHUT-1, SHUT-4: take nothing new (onRequest answers 503 from now on) and answer what
// still waits in the queue with 503. What runs goes on (SHUT-5).
function stopTakingWork() {
  if (stopping) return;
  stopping = true;
  while (queue.length > 0) {
    const request = takeNext();
    answerFailure(request.id, 503, {
      name: 'PeepsyShutdownError', message: 'the worker is shutting down', code: 'PEEPSY_SHUTTING_DOWN',
    });
  }
}

// Exit when nothing runs any more (SHUT-5), and in any case within `ms` from now,
// abandoning the handlers still running (SHUT-6, STREAM-3). The earliest deadline wins.
let exitTimer = null;
let exitDeadline = Infinity;
function exitWithin(ms) {
  if (running === 0) {
    exit();
    return;
  }
  const deadline = performance.now() + ms;
  if (deadline >= exitDeadline) return;
  exitDeadline = deadline;
  clearTimeout(exitTimer);
  exitTimer = setTimeout(() => {
    log(`${running} request(s) still running at the deadline; abandoning them`);
    exit();
  }, ms);
}

let shutdownSeen = false;
function onShutdown(msg) {
  if (hasOwn(msg, 'timeout') && !validInt(msg.timeout, 1, 300000)) {
    // MSG-9: an invalid SHUTDOWN does not stop us.
    log('ignored an invalid SHUTDOWN: `timeout` is not an integer of 1..300000 (MSG-9)');
    return;
  }
  if (shutdownSeen) {
    log('ignored a repeated SHUTDOWN: the first one\'s deadline stands (SHUT-6)');
    return;
  }
  shutdownSeen = true;
  stopTakingWork();
  // SHUT-6: the deadline counts from now; absent, our own grace period.
  exitWithin(hasOwn(msg, 'timeout') ? msg.timeout : SHUTDOWN_GRACE_MS);
}

// STREAM-3, SHUT-2: end of input means the master is gone or done with us. Nothing new
// starts, and nobody will answer our own requests any more, so they fail now rather than
// at their timeout. We exit within 1000 ms, SHUTDOWN or not.
function onEnd() {
  inputEnded = true;
  for (const [id, call] of pendingCalls) {
    clearTimeout(call.timer);
    call.reject(callFailed('the master closed the channel before it answered'));
    pendingCalls.delete(id);
  }
  stopTakingWork();
  exitWithin(END_OF_INPUT_GRACE_MS);
}

let exiting = false;
function exit() {
  if (exiting) return;
  exiting = true;
  clearTimeout(heartbeatTimer);
  // The empty write's callback runs once everything written before it is flushed, so no
  // line is cut short by the exit (FRAME-2).
  process.stdout.write('', () => process.exit(0));
}

// --- heartbeats (HB-1) ----------------------------------------------------------------

// From our own timer, at once and then every interval, whatever the handlers are doing:
// they all wait asynchronously, so this timer always gets its turn.
let heartbeatTimer = null;
let nextHeartbeatAt = Date.now();

function scheduleHeartbeat(at) {
  clearTimeout(heartbeatTimer);
  nextHeartbeatAt = at;
  heartbeatTimer = setTimeout(beat, Math.max(0, at - Date.now()));
}

function beat() {
  if (exiting) return;
  send({
    type: 'HEARTBEAT',
    pid: process.pid,
    timestamp: Date.now(),
    requestsActive: running + queue.length,
  });
  scheduleHeartbeat(Date.now() + heartbeatMs);
}

// --- reading lines (FRAME-1..8) -------------------------------------------------------

// stdin is read as bytes, not through readline: readline would decode invalid UTF-8
// into U+FFFD without telling us (FRAME-3 wants such a line rejected), and it has no
// bound on line length (FRAME-6).
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
let pieces = []; // the current line so far, as Buffers
let pieceBytes = 0;
let skipping = false; // inside a line that is too long: read on to its \n, keep nothing
let skippedHead = null; // ... but its first HEAD_BYTES bytes (FRAME-12)
let lineNumber = 0;

function onData(chunk) {
  let from = 0;
  while (from < chunk.length) {
    const nl = chunk.indexOf(0x0a, from);
    const end = nl === -1 ? chunk.length : nl;
    if (!skipping) {
      pieces.push(chunk.subarray(from, end));
      pieceBytes += end - from;
      // The \n counts towards the limit (FRAME-6).
      if (pieceBytes + 1 > MAX_LINE_BYTES) {
        skipping = true;
        skippedHead = Buffer.concat(pieces, Math.min(pieceBytes, HEAD_BYTES));
        pieces = [];
        pieceBytes = 0;
      }
    }
    if (nl === -1) return;
    lineNumber += 1;
    if (skipping) {
      // FRAME-6, FRAME-8: the long line costs only itself.
      log(`line ${lineNumber}: longer than ${MAX_LINE_BYTES} bytes; dropped`);
      skipping = false;
      onOverLongLine(skippedHead);
      skippedHead = null;
    } else {
      const line = pieces.length === 1 ? pieces[0] : Buffer.concat(pieces);
      pieces = [];
      pieceBytes = 0;
      onLine(line);
    }
    from = nl + 1;
  }
}

// FRAME-12: a REQUEST line we dropped for its length is answered 413 when its first
// bytes show its id: the type first, then the id (flat, or first in `request`), as
// senders write them. REQ-9 still holds: an id we owe an answer for gets none.
const HEAD_ID = /^[ \t\r]*\{[ \t\r]*"type"[ \t\r]*:[ \t\r]*"REQUEST"[ \t\r]*,[ \t\r]*(?:"request"[ \t\r]*:[ \t\r]*\{[ \t\r]*)?"id"[ \t\r]*:[ \t\r]*("(?:[^"\\]|\\.)*")/;

function onOverLongLine(head) {
  if (lineNumber === 1 && head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) {
    head = head.subarray(3); // FRAME-7
  }
  // Read as latin1, one character per byte, so that the match's offsets are byte offsets;
  // then the id's JSON string is decoded properly (strict UTF-8, then JSON).
  const match = HEAD_ID.exec(head.toString('latin1'));
  if (match === null) return;
  let id;
  try {
    id = JSON.parse(utf8.decode(head.subarray(match[0].length - match[1].length, match[0].length)));
  } catch {
    return;
  }
  if (!validId(id) || owed.has(id)) return;
  answerFailure(id, 413, {
    name: 'PeepsyLineTooLongError',
    message: `the REQUEST line is longer than this worker's limit of ${MAX_LINE_BYTES} bytes (maxLineBytes); it was dropped`,
    code: 'PEEPSY_LINE_TOO_LONG',
  });
}

function onLine(bytes) {
  // FRAME-7: a BOM is ignored at the very start of the stream, and only there.
  if (lineNumber === 1 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    bytes = bytes.subarray(3);
  }
  let text;
  try {
    text = utf8.decode(bytes);
  } catch {
    log(`line ${lineNumber}: not valid UTF-8; ignored`);
    return;
  }
  // FRAME-5: blank lines are nothing. (FRAME-4: a CR before the \n is JSON whitespace.)
  if (/^[ \t\r\n]*$/.test(text)) return;
  if (depthOver(text, MAX_DEPTH)) {
    log(`line ${lineNumber}: nested deeper than ${MAX_DEPTH} levels; ignored`);
    return;
  }
  let msg;
  try {
    // JSON.parse is strict: no NaN, comments, single quotes or trailing commas (FRAME-3).
    msg = JSON.parse(text);
  } catch (err) {
    // FRAME-8: a bad line costs only itself; say what and where, on stderr.
    log(`line ${lineNumber}: not JSON (${err.message}); ignored`);
    return;
  }
  if (!isObject(msg) || typeof msg.type !== 'string') {
    log(`line ${lineNumber}: not a message (an object with a string type); ignored`);
    return;
  }
  // MSG-4: members we do not know are simply never looked at.
  switch (msg.type) {
    case 'REQUEST': onRequest(msg); break;
    case 'RESPONSE': onResponse(msg); break;
    case 'INIT': onInit(msg); break;
    case 'SHUTDOWN': onShutdown(msg); break;
    case 'READY':
    case 'HEARTBEAT':
      // MSG-6: a child receives neither; ignore them without an answer.
      log(`line ${lineNumber}: a child does not receive ${msg.type}; ignored`);
      break;
    default:
      // MSG-5: perhaps from a later minor version. Never answered.
      log(`line ${lineNumber}: unknown message type ${JSON.stringify(msg.type)}; ignored`);
  }
}

// Is the JSON text nested deeper than `limit`? Brackets inside strings do not count.
function depthOver(text, limit) {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i += 1; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      depth += 1;
      if (depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth -= 1;
    }
  }
  return false;
}

process.stdin.on('data', onData);
process.stdin.on('end', () => {
  // FRAME-2: bytes that end of input cut off before their \n are not a message.
  if (pieceBytes > 0 || skipping) log('input ended inside a line; it was not acted on');
  onEnd();
});
process.stdin.on('error', (err) => {
  log(`stdin failed (${err.message})`);
  onEnd();
});

// HB-1: a HEARTBEAT at once, and then every interval. READY waits for INIT (READY-2).
beat();

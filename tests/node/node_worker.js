// Behaves on the wire like an unmodified Node peepsy 1.0.1 child (see
// shared/reference/node-peepsy-wire-facts.md), with process.send / process.on('message')
// alone: accepts both REQUEST shapes, answers 200/404/500 with only the `error` string,
// sends its own REQUESTs in the unified shape with UUID ids, and on SHUTDOWN finishes
// in-flight work and disconnects. Like 1.0.1 it sends NO heartbeat, unless HEARTBEAT_MS
// is set (as a worker that rebinds process.send would).
'use strict';
const crypto = require('crypto');

// Its mode comes from its own constructor, as in Node peepsy; INIT is only logged.
const mode = process.env.MODE || 'sequential';
let active = 0;
const queue = [];
let shuttingDown = false;
const pending = new Map();

const handlers = {
  echo: async (data) => data,
  fail: async (data) => { throw new Error(String(data || 'failed on purpose')); },
  sleep: (ms) => new Promise((resolve) => setTimeout(() => resolve(ms), ms)),
  callMaster: async (data) => requestMaster(data.action, data.data),
};

function requestMaster(action, data) {
  const id = crypto.randomUUID();
  process.send({ type: 'REQUEST', id, action, data, timeout: 5000 });
  return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
}

async function serve(msg) {
  const req = msg.request || msg;
  const handler = handlers[req.action];
  if (!handler) {
    process.send({ type: 'RESPONSE', id: req.id, status: 404, error: `No handler registered for action: ${req.action}` });
    return;
  }
  active += 1;
  try {
    const data = await handler(req.data);
    process.send({ type: 'RESPONSE', id: req.id, status: 200, data });
  } catch (err) {
    process.send({ type: 'RESPONSE', id: req.id, status: 500, error: err.message });
  } finally {
    active -= 1;
    if (shuttingDown && active === 0) process.disconnect();
  }
}

function next() {
  // Sequential: one at a time from the queue; a request whose timeout passed while it
  // waited is dropped without an answer (Node peepsy defect 5, kept here on purpose).
  while (active === 0 && queue.length > 0) {
    const { msg, expires } = queue.shift();
    if (Date.now() > expires) continue;
    serve(msg).then(next);
  }
}

process.on('message', (msg) => {
  if (msg.type === 'INIT') {
    console.log(`INIT received, mode ${msg.mode} (kept: ${mode})`);
  } else if (msg.type === 'REQUEST' && !shuttingDown) {
    if (mode === 'concurrent') {
      serve(msg);
    } else {
      queue.push({ msg, expires: Date.now() + (msg.timeout || 5000) });
      next();
    }
  } else if (msg.type === 'RESPONSE' && pending.has(msg.id)) {
    const { resolve, reject } = pending.get(msg.id);
    pending.delete(msg.id);
    if (msg.status >= 400) reject(new Error(msg.error || (msg.errorPayload && msg.errorPayload.message)));
    else resolve(msg.data);
  } else if (msg.type === 'SHUTDOWN') {
    shuttingDown = true;
    if (active === 0) process.disconnect();
  }
});

if (process.env.HEARTBEAT_MS) {
  setInterval(() => {
    process.send({ type: 'HEARTBEAT', pid: process.pid, timestamp: Date.now(), requestsActive: active });
  }, Number(process.env.HEARTBEAT_MS)).unref();
}
if (process.env.SEND_NODE_INTERNAL) {
  // What Node itself may put on the channel: not a peepsy message (NODE-1).
  process.send({ cmd: 'NODE_PEEPSY_TEST', note: 'internal' });
}
if (process.env.EXIT_AFTER_MS) {
  setTimeout(() => process.exit(0), Number(process.env.EXIT_AFTER_MS));
}

#!/usr/bin/env node
// The master harness (conformance/MASTER.md, MHP v1) around peepsy-master.js:
//   python -m peepsy.conformance master -- node conformance/examples/master-node/harness.js
// One JSON command per line on stdin, one JSON response per line on stdout.
'use strict';

const readline = require('node:readline');
const { Master } = require('./peepsy-master.js');

// The library's error codes, as MHP outcome kinds.
const KINDS = {
  PEEPSY_TIMEOUT: 'timeout',
  PEEPSY_EXITED: 'exited',
  PEEPSY_NOT_FOUND: 'notFound',
  PEEPSY_SHUTTING_DOWN: 'shuttingDown',
  PEEPSY_CANCELLED: 'cancelled',
  PEEPSY_INVALID_RESPONSE: 'invalid',
};

function outcomeOf(err) {
  if (err.code !== 'PEEPSY_REMOTE') return { kind: KINDS[err.code] ?? 'other', message: err.message };
  const outcome = { kind: 'remote', status: err.status, message: err.message };
  if (err.remoteName !== undefined) outcome.name = err.remoteName;
  if (err.remoteCode !== undefined) outcome.code = err.remoteCode;
  return outcome;
}

let master;
const calls = new Map(); // seq of a request -> the AbortController that cancels it
const events = [];

const commands = {
  start({ master: options }) {
    master = new Master(options);
    master
      .handle('echo', (data) => data)
      .handle('fail', async (message) => { throw new Error(message); })
      .handle('throw', (message) => { throw new Error(message); })
      .handle('sleep', (ms) => new Promise((resolve) => setTimeout(resolve, ms, ms)));
    for (const kind of ['exit', 'restart', 'unhealthy']) {
      master.on(kind, ({ target }) => events.push({ kind, target }));
    }
    const capabilities = ['profile', 'supervision', 'groups', 'retry', 'cancel', 'legacy', 'events'];
    const implementation = { name: 'peepsy-master.js', version: '1.0.0', language: 'javascript' };
    return { version: 1, implementation, capabilities };
  },
  group({ name, strategy, maxConcurrency }) {
    if (strategy !== undefined && strategy !== 'round-robin') return { unsupported: `strategy ${strategy}` };
    master.group(name, { maxConcurrency });
    return { ok: true };
  },
  spawn({ name, argv, env, mode, group, restart }) {
    master.spawn(name, argv, { env, mode, group, restart });
    return { ok: true };
  },
  async request({ seq, target, action, data, timeout, retries, priority }) {
    const abort = new AbortController();
    calls.set(seq, abort);
    try {
      const answer = await master.request(target, action, data, { timeout, retries, priority, signal: abort.signal });
      return { outcome: { kind: 'ok', ...answer } };
    } catch (err) {
      return { outcome: outcomeOf(err) };
    } finally {
      calls.delete(seq);
    }
  },
  cancel({ request }) {
    calls.get(request)?.abort();
    return { ok: true };
  },
  async shutdown({ target, timeout }) {
    await master.shutdown(target, timeout);
    return { ok: true };
  },
  events() {
    return { events: events.splice(0) };
  },
};

const outstanding = new Set();
const reply = (response) => process.stdout.write(JSON.stringify(response) + '\n');

function run(command) {
  const carry = commands[command.cmd] ?? (() => ({ unsupported: `no command ${command.cmd}` }));
  // The command starts now, so that a `stop` after it finds it under way.
  const work = new Promise((resolve) => resolve(carry(command)))
    .catch((err) => ({ errored: { message: String(err?.message ?? err), traceback: String(err?.stack ?? '') } }))
    .then((response) => reply({ seq: command.seq, ...response }));
  outstanding.add(work);
  work.finally(() => outstanding.delete(work));
}

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await master?.close(); // stops every child, so every call in flight settles
  await Promise.all(outstanding);
  process.exit(0);
}

const input = readline.createInterface({ input: process.stdin });
input.on('line', (line) => {
  const command = JSON.parse(line);
  if (command.cmd === 'stop') stop();
  else run(command);
});
input.on('close', stop);
process.on('SIGTERM', () => process.exit(0));

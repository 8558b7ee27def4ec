// A Node master that behaves like Node peepsy 1.0.1's on the wire, built on
// child_process.fork alone: it forks a worker with an execPath (Python here), sends
// INIT and legacy nested REQUESTs, answers the worker's own REQUESTs, counts its
// HEARTBEATs, then sends SHUTDOWN and reports everything as one JSON line on stdout.
// HEALTH_MS set: it also checks health as Node peepsy's master does with
// heartbeatIntervalMs = HEALTH_MS and the default heartbeatMissThreshold of 3: every
// HEALTH_MS, a child silent (no HEARTBEAT since spawn or since its last one) for more
// than HEALTH_MS * 3 is SIGKILLed, and the report says when ("killedForSilenceAt", ms
// after spawn). Its INIT states no heartbeat interval, like the real one's.
'use strict';
const { fork } = require('child_process');

const [execPath, script, ...rest] = process.argv.slice(2);
// fork gives the child this process's Node flags (process.execArgv) unless execArgv says
// otherwise; Node peepsy's spawnChild does not pass execArgv on. EXEC_ARGV=clear sets it to [].
const options = { execPath, serialization: 'json', stdio: ['ignore', 'pipe', 'pipe', 'ipc'] };
if (process.env.EXEC_ARGV === 'clear') options.execArgv = [];
const child = fork(script, rest, options);
const report = { responses: {}, heartbeats: 0, childRequests: [], exit: null, stdout: '', stderr: '' };
const spawnedAt = Date.now();
let lastHeartbeat = spawnedAt;
const healthMs = Number(process.env.HEALTH_MS || 0);
const health = healthMs > 0 ? setInterval(() => {
  if (Date.now() - lastHeartbeat > healthMs * 3 && report.exit === null) {
    report.killedForSilenceAt = Date.now() - spawnedAt;
    child.kill('SIGKILL');
  }
}, healthMs) : null;
child.stdout.on('data', (d) => { report.stdout += d; });
child.stderr.on('data', (d) => { report.stderr += d; });

let next = 1;
const waiting = new Map();
function request(action, data, shape) {
  const id = `node-${next++}`;
  const msg = shape === 'unified'
    ? { type: 'REQUEST', id, action, data, timeout: 5000 }
    : { type: 'REQUEST', request: { id, action, data }, timeout: 5000 };
  child.send(msg);
  return new Promise((resolve) => waiting.set(id, resolve));
}

child.on('message', (m) => {
  if (m.type === 'RESPONSE' && waiting.has(m.id)) {
    report.responses[m.id] = m;
    waiting.get(m.id)(m);
    waiting.delete(m.id);
  } else if (m.type === 'HEARTBEAT') {
    report.heartbeats += 1;
    lastHeartbeat = Date.now();
  } else if (m.type === 'REQUEST') {
    const r = m.request || m;
    report.childRequests.push(m);
    if (r.action === 'getMasterInfo') {
      child.send({ type: 'RESPONSE', id: r.id, status: 200, data: { masterPid: process.pid, got: r.data } });
    } else {
      const error = `No handler registered for action: ${r.action}`;
      child.send({ type: 'RESPONSE', id: r.id, status: 404, error, errorPayload: { name: 'PeepsyNotFoundError', message: error } });
    }
  }
});
// As Node peepsy's master does: a send to a child that is gone is an 'error' event.
child.on('error', (err) => { report.errors = [...(report.errors || []), err.message]; });
child.on('exit', (code, signal) => {
  report.exit = { code, signal };
  if (health) clearInterval(health);
  process.stdout.write(JSON.stringify(report) + '\n');
});

(async () => {
  child.send({ type: 'INIT', mode: 'sequential' });
  await request('add', { a: 1, b: 2 }, 'legacy');
  await request('add', { a: 5, b: 6 }, 'unified');
  await request('nope', null, 'legacy');
  await request('boom', null, 'legacy');
  await request('askMaster', { who: 'python' }, 'legacy');
  await new Promise((r) => setTimeout(r, Number(process.env.IDLE_MS || 2500)));
  await request('add', { a: 10, b: 20 }, 'legacy');
  child.send({ type: 'SHUTDOWN' });
})();

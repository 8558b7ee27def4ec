'use strict';
// Node.js master for the benchmark, builtins only: spawns child.js over stdio pipes and
// measures it the way benchmarks/common.py's drive() does (a window of callers, each
// awaiting its answer and sending the next; warm-up, then completions between two
// clock readings). Usage: node master.js CONFIG_JSON; prints one JSON line.
const { spawn } = require('node:child_process');
const path = require('node:path');
const { onLines } = require('./lines');

const config = JSON.parse(process.argv[2]);
// As LaneConfig.child_prefix: taskset pins the child and all its threads from its exec on.
const prefix = config.child_cores.length ? ['taskset', '-c', config.child_cores.join(',')] : [];
const argv = [...prefix, process.execPath, path.join(__dirname, 'child.js')];
const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
const waiting = new Map();
let counter = 0;

onLines(child.stdout, (line) => {
  const msg = JSON.parse(line);
  if (msg.type !== 'RESPONSE') return;
  const resolve = waiting.get(msg.id);
  waiting.delete(msg.id);
  resolve(msg.data);
});

function request(data) {
  return new Promise((resolve) => {
    const id = String(++counter);
    waiting.set(id, resolve);
    child.stdin.write(
      JSON.stringify({ type: 'REQUEST', id, action: 'echo', data, timeout: 5000 }) + '\n');
  });
}

function payload(size) { // as benchmarks.common.payload: compact JSON of `size` bytes
  const base = JSON.stringify({ n: 1, text: '' }).length;
  return { n: 1, text: 'x'.repeat(Math.max(0, size - base)) };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const now = () => Number(process.hrtime.bigint());

async function waitFor(done, seconds) {
  await sleep(seconds * 1000);
  while (!done()) await sleep(5);
}

async function drive(window, size) {
  const data = payload(size);
  const latencies = [];
  let stop = false;
  async function caller() {
    while (!stop) {
      const start = now();
      await request(data);
      latencies.push(now() - start);
    }
  }
  const callers = Array.from({ length: window }, caller);
  await waitFor(() => latencies.length >= config.min_count, config.warmup);
  const first = latencies.length;
  const start = now();
  await waitFor(() => latencies.length - first >= config.min_count, config.seconds);
  const last = latencies.length;
  const elapsed = (now() - start) / 1e9;
  stop = true;
  await Promise.all(callers);
  const lat = latencies.slice(first, last).sort((a, b) => a - b);
  const pct = (q) => lat[Math.min(lat.length - 1, Math.floor(q * lat.length))] / 1000;
  const rate = (last - first) / elapsed;
  return {
    rate, p50_us: pct(0.5), p99_us: pct(0.99), count: last - first, seconds: elapsed,
    mb_per_s: rate * size / 1e6,
  };
}

async function main() {
  const check = payload(config.payload);
  const answer = await request(check);
  if (JSON.stringify(answer) !== JSON.stringify(check)) throw new Error('bad echo');
  const windows = {};
  for (const w of config.windows) windows[String(w)] = await drive(w, config.payload);
  const payloads = {};
  for (const size of config.sweep) {
    payloads[String(size)] = size === config.payload && windows['1']
      ? windows['1'] : await drive(1, size);
  }
  child.stdin.end();
  process.stdout.write(JSON.stringify({ windows, payloads, node: process.version }) + '\n');
}

main().catch((err) => { console.error(err); process.exit(1); });

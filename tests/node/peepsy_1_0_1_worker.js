// A model of a Node peepsy 1.0.1 WORKER (the child side), written with Node's built-ins
// alone (process.send / process.on('message')), so that tests can hold the Python master
// and the conformance suite to what the real library does on Node's IPC channel.
// The facts it models are those of shared/reference/node-peepsy-wire-facts.md; the last
// section of that file ("More facts, from running the real 1.0.1 library") is the list a
// model "should behave exactly so" by. Each behaviour, and the fact behind it:
//
//  1. Transport: Node's own IPC channel (NODE_CHANNEL_FD, json serialization). Node parses
//     the lines, not this file: so Node's behaviour is the model's by construction.
//     - {"cmd":"NODE_..."} messages are Node's own: Node emits them as 'internalMessage',
//       never as 'message', so the worker never sees them ("Transport").
//     - A line that is not JSON (also an empty line, a BOM, bytes that are not UTF-8)
//       makes Node's parser throw inside the channel's read callback. That is an uncaught
//       exception; 1.0.1 installs an 'uncaughtException' handler that starts its graceful
//       shutdown, so the worker stops serving, disconnects and ends ("Lines Node's own IPC
//       parser cannot take"). Every later line is ignored.
//  2. INIT is only logged (at debug level, so not at all by default); the mode comes from
//     the worker's own constructor: MODE=sequential (default) or concurrent, and
//     MAX_CONCURRENCY for a bounded concurrent worker ("Messages, master to child").
//  3. REQUEST, both shapes: a truthy `request` member wins (legacy nested shape), else the
//     flat `id`, `action`, `data`; `timeout` is the outer one, `?? 5000`. Nothing is
//     validated: the fields go straight to the handler lookup ("The child accepts both
//     REQUEST shapes: nested `request` if present, else the flat fields").
//  4. So an invalid REQUEST is never answered 400: no `action` (or any action without a
//     handler) is answered 404 "No handler registered for action: undefined" under
//     whatever id it read (an id-less answer when there was none); a `request` member
//     that is not an object reads as a request with no id and no action; a `timeout` that
//     is not a positive number makes the request expire at once (dropped, see 7) ("it
//     answers an invalid REQUEST with 404 (it never answers 400)").
//  5. RESPONSE: 200 with `data`; 404 with the exact text "No handler registered for
//     action: X"; 500 with the handler's error message. Only `error`: no errorPayload
//     ("Messages, child to master"; "its RESPONSE has no `errorPayload`").
//  6. Handlers are looked up in a Map, so "toString" or "__proto__" find none (404).
//  7. Sequential mode (and concurrent mode with MAX_CONCURRENCY) queues requests with
//     expiry = arrival + timeout; an expired one is dropped when it reaches the head,
//     with no answer, never 408 (defect 5; "it drops a request that expired in its
//     queue (no 408)"). The queue also drops expired entries every 5 s.
//  8. Every request is queued with priority 0 and the queue sorts ascending, so a
//     REQUEST's `priority` changes nothing (defect 4; "it ignores priority (its queue
//     sorts ascending)").
//  9. No duplicate-id check: a second REQUEST with a running request's id is run and
//     answered too ("it runs a duplicate id twice").
// 10. No HEARTBEAT: the heartbeat timer calls `process.send` detached from `process`; the
//     call throws and the error is swallowed. REBIND_SEND=1 runs
//     `process.send = process.send.bind(process)` first, as a worker that works around it
//     does; then one comes every HEARTBEAT_MS (default 2000) ("HEARTBEAT" row; "it sends
//     no HEARTBEAT").
// 11. SHUTDOWN (also SIGTERM, SIGINT, a closed channel, an uncaught exception): from then
//     on every message is ignored, so a later REQUEST is dropped, never answered 503
//     ("it drops requests that arrive after SHUTDOWN (no 503)"). It waits up to 10 s, in
//     100 ms steps, for the requests it counts as in progress, drops its queue unanswered,
//     waits 100 ms more, disconnects and sets exit code 0 without exiting ("Shutdown").
//     Only concurrent mode counts running requests as in progress, so in sequential mode
//     the running request is abandoned: the channel closes before it is answered, and the
//     process lives on until the handler's own timer lets it end ("in sequential mode
//     SHUTDOWN abandons the running request"; "A Node worker can lose its IPC channel and
//     live on").
// 12. The worker's own requests (callMaster): the unified flat shape with a random UUID id
//     and `timeout` (5000), `data` defaulting to {}; the master's RESPONSE rejects when it
//     has a truthy `error` and resolves with `data` otherwise (whatever its status); no
//     answer within the timeout rejects "Request timed out after 5000ms". RESPONSEs to
//     ids it is not waiting for are ignored ("REQUEST, unified flat shape").
//
// The conformance profile's actions, as a worker script would register them: echo, fail
// (throws an Error whose message is the data), sleep (data ms), callMaster ({action,
// data}: asks the master). SEND_NODE_INTERNAL=1 makes the script send a {"cmd":"NODE_..."}
// message of its own at start-up, as Node itself may. Logs go where 1.0.1's default logger
// puts them: debug and info on stdout, warn and error on stderr (PEEPSY_LOG_LEVEL,
// default info); over the IPC channel both are free for logs.
'use strict';

const { randomUUID } = require('node:crypto');

// --- the library: PeepsyChild 1.0.1 as seen from the wire ----------------------------

const DEFAULT_TIMEOUT_MS = 5000;
const SHUTDOWN_WAIT_MS = 10000;
const LEVELS = { debug: 0, info: 1, warn: 2, error: 3 };

function makeLogger(level) {
  const threshold = LEVELS[level] ?? LEVELS.info;
  const write = (name, out) => (message, ...args) => {
    if (LEVELS[name] < threshold) return;
    const rest = args.map((a) => (typeof a === 'object' ? JSON.stringify(a) : String(a))).join(' ');
    out(`[${new Date().toISOString()}] [${name.toUpperCase()}] [Peepsy] ${message}${rest ? ` ${rest}` : ''}`);
  };
  return {
    debug: write('debug', console.debug),
    info: write('info', console.info),
    warn: write('warn', console.warn),
    error: write('error', console.error),
  };
}

function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function errorText(error) {
  if (error instanceof Error) return error.message;
  if (typeof error === 'string') return error;
  return 'Unknown error occurred';
}

// Behaviours 7 and 8: expiry is plain arithmetic on whatever `timeout` held (a string
// concatenates, an object gives NaN: never "not yet expired"); the sort is ascending and
// every caller passes priority 0.
class ExpiringQueue {
  constructor() {
    this.items = [];
  }

  enqueue(item, priority, timeout) {
    this.items.push({ item, priority, expiry: Date.now() + timeout });
    this.items.sort((a, b) => a.priority - b.priority);
  }

  dequeue() {
    while (this.items.length > 0) {
      const entry = this.items.shift();
      if (Date.now() < entry.expiry) return entry.item;
    }
    return null;
  }

  peek() {
    while (this.items.length > 0) {
      if (Date.now() < this.items[0].expiry) return this.items[0].item;
      this.items.shift();
    }
    return null;
  }

  isEmpty() {
    return this.items.length === 0;
  }

  dropExpired() {
    this.items = this.items.filter(({ expiry }) => Date.now() < expiry);
  }

  clear() {
    this.items = [];
  }
}

class Child {
  constructor(mode, { maxConcurrency, heartbeatIntervalMs = 2000, logLevel = 'info' } = {}) {
    this.mode = mode;
    this.maxConcurrency = maxConcurrency;
    this.logger = makeLogger(logLevel);
    this.handlers = new Map(); // behaviour 6
    this.waiting = new Map(); // our own requests to the master, by id
    this.isProcessing = false;
    this.isShuttingDown = false;
    this.inProgress = 0; // counted in concurrent mode only (behaviour 11)
    this.handled = 0;
    this.queue = null;
    if (mode === 'sequential' || (mode === 'concurrent' && this.bounded())) {
      this.queue = new ExpiringQueue();
      this.cleanup = setInterval(() => {
        if (this.queue && !this.isShuttingDown) this.queue.dropExpired();
      }, 5000);
      this.cleanup.unref();
    }
    if (!process.send) throw new Error('This Node.js script was not spawned with an IPC channel');
    process.on('message', (message) => this.onMessage(message));
    const shutdown = () => void this.gracefulShutdown();
    process.on('SIGINT', shutdown);
    process.on('SIGTERM', shutdown);
    process.on('disconnect', shutdown);
    process.on('uncaughtException', (error) => {
      // Behaviour 1: Node's IPC parser throwing on a line lands here.
      this.logger.error('Uncaught exception in child process', errorText(error));
      void this.gracefulShutdown();
    });
    process.on('unhandledRejection', (reason) => {
      this.logger.error('Unhandled rejection in child process', errorText(reason));
    });
    this.startHeartbeat(heartbeatIntervalMs);
    this.logger.debug(`PeepsyChild initialized in ${mode} mode`);
  }

  bounded() {
    return typeof this.maxConcurrency === 'number' && this.maxConcurrency > 0;
  }

  registerHandler(action, handler) {
    this.handlers.set(action, handler);
  }

  onMessage(message) {
    try {
      if (this.isShuttingDown) return; // behaviour 11: dropped, never answered 503
      if (message?.type === 'INIT') {
        this.logger.debug('Child process initialized', { mode: message.mode }); // behaviour 2
        return;
      }
      if (message?.type === 'REQUEST') {
        // Behaviours 3 and 4: a truthy `request` wins; nothing is validated.
        const request = message.request
          ? message.request
          : { id: message.id, action: message.action, data: message.data };
        const timeout = message.timeout ?? DEFAULT_TIMEOUT_MS;
        if (this.mode === 'sequential') {
          this.enqueue(request, timeout);
        } else if (this.queue && this.bounded()) {
          this.enqueue(request, timeout);
          this.runQueuedConcurrently();
        } else {
          void this.runCounted(request);
        }
      } else if (message?.type === 'RESPONSE' && this.waiting.has(message.id)) {
        const settle = this.waiting.get(message.id);
        this.waiting.delete(message.id);
        settle(message);
      } else if (message?.type === 'SHUTDOWN') {
        void this.gracefulShutdown();
      }
    } catch (error) {
      this.logger.error('Error handling message from master', errorText(error));
    }
  }

  enqueue(request, timeout) {
    this.queue.enqueue(request, 0, timeout); // behaviour 8: always priority 0
    void this.drainQueue();
  }

  // Sequential: one at a time. What it runs is NOT counted in inProgress (behaviour 11).
  async drainQueue() {
    if (this.isProcessing || !this.queue.peek() || this.isShuttingDown) return;
    this.isProcessing = true;
    try {
      while (!this.queue.isEmpty() && !this.isShuttingDown) {
        const request = this.queue.dequeue(); // expired ones: dropped (behaviour 7)
        if (request) await this.serve(request);
      }
    } catch (error) {
      this.logger.error('Error processing queue', errorText(error));
    } finally {
      this.isProcessing = false;
    }
  }

  runQueuedConcurrently() {
    if (this.isShuttingDown || !this.queue) return;
    while (!this.queue.isEmpty() && this.inProgress < this.maxConcurrency) {
      const request = this.queue.dequeue();
      if (request) void this.runCounted(request);
    }
  }

  async runCounted(request) {
    this.inProgress += 1;
    try {
      await this.serve(request);
    } catch (error) {
      this.logger.error('Error processing immediate request', errorText(error));
    } finally {
      this.inProgress -= 1;
    }
  }

  // Behaviour 5. After a disconnect, process.send emits an 'error' on process (no
  // listener: an uncaught exception, handled above), so a late answer goes nowhere.
  async serve(request) {
    const { id, action, data } = request;
    const handler = this.handlers.get(action);
    if (!handler) {
      process.send({ type: 'RESPONSE', id, status: 404, error: `No handler registered for action: ${action}` });
      return;
    }
    try {
      const result = await handler(data);
      process.send({ type: 'RESPONSE', id, status: 200, data: result });
      this.handled += 1;
    } catch (error) {
      process.send({ type: 'RESPONSE', id, status: 500, error: errorText(error) });
      this.logger.error('Request processing failed', { action, error: errorText(error) });
    }
  }

  // Behaviour 12 (one attempt: 1.0.1's retries default to 0).
  sendRequest(action, data = {}, timeout = DEFAULT_TIMEOUT_MS) {
    if (this.isShuttingDown) return Promise.reject(new Error('Cannot send request during shutdown'));
    return new Promise((resolve, reject) => {
      const id = randomUUID();
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`Request timed out after ${timeout}ms`));
      }, timeout);
      this.waiting.set(id, (response) => {
        clearTimeout(timer);
        if (response.error) reject(new Error(response.error));
        else resolve(response.data);
      });
      try {
        process.send({ type: 'REQUEST', id, action, data, timeout });
      } catch (error) {
        clearTimeout(timer);
        this.waiting.delete(id);
        reject(error);
      }
    });
  }

  // Behaviour 10: the 1.0.1 bug, kept as it is. `send` is called without its `this`.
  startHeartbeat(intervalMs) {
    this.heartbeat = setInterval(() => {
      try {
        const send = process.send;
        if (send) send({ type: 'HEARTBEAT', pid: process.pid, timestamp: Date.now(), requestsActive: this.inProgress });
      } catch (error) {
        void error; // swallowed, as in 1.0.1
      }
    }, intervalMs);
    this.heartbeat.unref();
  }

  // Behaviour 11.
  async gracefulShutdown() {
    if (this.isShuttingDown) return;
    this.isShuttingDown = true;
    this.logger.info('Starting graceful shutdown...');
    clearInterval(this.cleanup);
    const started = Date.now();
    while (this.inProgress > 0 && Date.now() - started < SHUTDOWN_WAIT_MS) {
      await delay(100);
    }
    if (this.inProgress > 0) this.logger.warn(`Forced shutdown with ${this.inProgress} requests still in progress`);
    this.queue?.clear();
    for (const event of ['message', 'disconnect', 'SIGINT', 'SIGTERM']) process.removeAllListeners(event);
    this.logger.info(`Child process shutting down. Handled ${this.handled} requests.`);
    await delay(100);
    clearInterval(this.heartbeat);
    try {
      // Throws (an 'error' event with no listener) when the channel is already closed.
      if (typeof process.disconnect === 'function') process.disconnect();
      process.exitCode = 0;
    } catch (error) {
      void error;
    }
  }
}

// --- the worker script: the conformance profile --------------------------------------

if (process.env.REBIND_SEND) process.send = process.send.bind(process);

const child = new Child(process.env.MODE || 'sequential', {
  maxConcurrency: process.env.MAX_CONCURRENCY ? Number(process.env.MAX_CONCURRENCY) : undefined,
  heartbeatIntervalMs: process.env.HEARTBEAT_MS ? Number(process.env.HEARTBEAT_MS) : 2000,
  logLevel: process.env.PEEPSY_LOG_LEVEL || 'info',
});

child.registerHandler('echo', (data) => data);
child.registerHandler('fail', (data) => {
  throw new Error(data);
});
child.registerHandler('sleep', (ms) => delay(ms).then(() => ms));
child.registerHandler('callMaster', (data) => child.sendRequest(data.action, data.data));

if (process.env.SEND_NODE_INTERNAL) {
  // What Node itself may put on the channel: not a peepsy message (NODE-1).
  process.send({ cmd: 'NODE_PEEPSY_TEST', note: 'internal' });
}

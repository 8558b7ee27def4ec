'use strict';
// Node echo child with builtins only: one RESPONSE per REQUEST, in peepsy's envelopes;
// the answers to one read leave in one write, as in the bare Python child.
const { onLines } = require('./lines');

let out = [];
onLines(process.stdin, (line) => {
  const msg = JSON.parse(line);
  if (msg.type !== 'REQUEST') return;
  out.push(JSON.stringify({ type: 'RESPONSE', id: msg.id, status: 200, data: msg.data }) + '\n');
}, () => {
  if (out.length === 0) return;
  const text = out.join('');
  out = [];
  process.stdout.write(text);
});

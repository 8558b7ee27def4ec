'use strict';
// NDJSON framing for both sides: the unfinished line is kept as Buffer parts and joined
// once its newline arrives, so a 10 MB line read in 64 KB chunks costs linear time.
// `chunkDone`, if given, runs after the lines of each read are handled.
function onLines(stream, handle, chunkDone) {
  let parts = [];
  stream.on('data', (chunk) => {
    let start = 0;
    let end;
    while ((end = chunk.indexOf(10, start)) !== -1) {
      parts.push(chunk.subarray(start, end));
      const line = parts.length === 1 ? parts[0] : Buffer.concat(parts);
      parts = [];
      handle(line.toString('utf8'));
      start = end + 1;
    }
    if (start < chunk.length) parts.push(chunk.subarray(start));
    if (chunkDone) chunkDone();
  });
}
module.exports = { onLines };

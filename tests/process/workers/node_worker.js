// A peepsy worker in Node.js with only built-ins: one JSON message per line on stdin/stdout.
const readline = require("node:readline");
const send = (message) => process.stdout.write(JSON.stringify(message) + "\n");
readline
  .createInterface({ input: process.stdin })
  .on("line", (line) => {
    if (!line.trim()) return;
    const msg = JSON.parse(line);
    if (msg.type === "SHUTDOWN") process.exit(0);
    if (msg.type !== "REQUEST") return;
    const req = msg.request || msg; // legacy nested or unified flat shape
    if (req.action === "add") {
      const sum = req.data.a + req.data.b;
      send({ type: "RESPONSE", id: req.id, status: 200, data: { sum, runtime: "node", pid: process.pid } });
    } else {
      const error = `No handler registered for action: ${req.action}`;
      send({ type: "RESPONSE", id: req.id, status: 404, error });
    }
  })
  .on("close", () => process.exit(0));

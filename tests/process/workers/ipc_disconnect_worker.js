// A worker on Node's IPC channel that disconnects it and lives on (issue 10): on the
// action "disconnect" it calls process.disconnect() without answering, and a timer
// keeps the process alive.
process.on("message", (msg) => {
  if (msg.type === "INIT") {
    process.send({ type: "READY", pid: process.pid, actions: ["echo", "disconnect"] });
  } else if (msg.type === "SHUTDOWN") {
    process.exit(0);
  } else if (msg.type === "REQUEST") {
    if (msg.action === "disconnect") {
      process.disconnect();
      setInterval(() => {}, 1000);
    } else {
      process.send({ type: "RESPONSE", id: msg.id, status: 200, data: msg.data });
    }
  }
});

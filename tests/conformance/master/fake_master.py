"""A tiny MHP harness around a tiny master, for the engine's tests: spawns argv, sends
INIT, relays requests with ids of its own, fails in-flight calls when the child's output
ends, times calls out. ``--fault NAME`` breaks one thing (the tests' broken masters)."""

import asyncio
import json
import os
import sys

FAULT = sys.argv[2] if len(sys.argv) > 2 and sys.argv[1] == "--fault" else ""


def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class Child:
    def __init__(self, proc):
        self.proc, self.pending, self.next = proc, {}, 0

    async def read(self):
        while line := await self.proc.stdout.readline():
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if msg.get("type") == "RESPONSE" and msg.get("id") in self.pending:
                self.pending.pop(msg["id"]).set_result(msg)
        if FAULT != "no-fail-on-exit":
            for fut in self.pending.values():
                fut.set_result(None)
            self.pending.clear()

    def write(self, obj):
        text = json.dumps(obj) + "\n"
        if FAULT == "crlf":
            text = text[:-1] + "\r\n"
        self.proc.stdin.write(text.encode())


async def main():
    children, tasks = {}, set()
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def request(cmd):
        child = children.get(cmd["target"])
        if child is None:
            return {"kind": "notFound"}
        if child.proc.returncode is not None:
            return {"kind": "exited"}
        child.next += 1
        ident = f"m{child.next}"
        fut = loop.create_future()
        child.pending[ident] = fut
        msg = {"type": "REQUEST", "id": ident, "action": cmd["action"]}
        if "data" in cmd:
            msg["data"] = cmd["data"]
        timeout = cmd.get("timeout", 30000)
        msg["timeout"] = timeout
        child.write(msg)
        try:
            got = await asyncio.wait_for(asyncio.shield(fut), timeout / 1000)
        except TimeoutError:
            child.pending.pop(ident, None)
            return {"kind": "timeout"}
        if got is None:
            return {"kind": "exited"}
        if got["status"] < 400:
            out = {"kind": "ok", "status": got["status"]}
            if "data" in got:
                out["data"] = got["data"]
            return out
        return {"kind": "remote", "status": got["status"], "message": got.get("error", "")}

    async def run(cmd):
        seq = cmd["seq"]
        if cmd["cmd"] == "start":
            say(
                {
                    "seq": seq,
                    "version": 1,
                    "capabilities": [],
                    "implementation": {"name": "fake", "version": "0", "language": "python"},
                }
            )
        elif cmd["cmd"] == "spawn":
            env = {**os.environ, **cmd.get("env", {})}
            proc = await asyncio.create_subprocess_exec(*cmd["argv"], stdin=-1, stdout=-1, env=env)
            child = children[cmd["name"]] = Child(proc)
            tasks.add(asyncio.create_task(child.read()))
            child.write({"type": "INIT", "mode": cmd.get("mode", "sequential")})
            say({"seq": seq, "ok": True})
        elif cmd["cmd"] == "request":
            say({"seq": seq, "outcome": await request(cmd)})
        elif cmd["cmd"] == "shutdown":
            for name, child in children.items():
                if cmd.get("target") in (None, name):
                    child.write({"type": "SHUTDOWN"})
                    await child.proc.wait()
            say({"seq": seq, "ok": True})
        else:
            say({"seq": seq, "unsupported": "not in this fake"})

    while line := await reader.readline():
        cmd = json.loads(line)
        if cmd["cmd"] == "stop":
            break
        tasks.add(asyncio.create_task(run(cmd)))
    for child in children.values():
        if child.proc.returncode is None:
            child.proc.stdin.close()
    for child in children.values():
        await child.proc.wait()


asyncio.run(main())

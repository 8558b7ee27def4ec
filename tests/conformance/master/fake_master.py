# mypy: ignore-errors
# (a stand-in for a master in another language: kept as short as such a harness)
"""A tiny MHP harness around a tiny master, for the engine's tests: spawns argv, sends
INIT, relays requests with ids of its own, fails in-flight calls when the child's output
ends, times calls out, cancels, restarts (up to maxRestarts) and stops a child with
SHUTDOWN, end of input, SIGTERM, SIGKILL. ``--fault NAME`` breaks one thing (the tests'
broken masters): no-fail-on-exit, junk, no-escalation, restart-forever, errored."""

import asyncio
import json
import os
import sys

FAULT = sys.argv[2] if len(sys.argv) > 2 and sys.argv[1] == "--fault" else ""


def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class Child:
    def __init__(self, proc, spec):
        self.proc, self.pending, self.next, self.spec = proc, {}, 0, spec
        self.restarts, self.stopping = 0, False

    async def read(self):
        while line := await self.proc.stdout.readline():
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if msg.get("type") == "RESPONSE" and msg.get("id") in self.pending:
                fut = self.pending.pop(msg["id"])
                if not fut.done():
                    fut.set_result(msg)
        if FAULT != "no-fail-on-exit":
            for fut in self.pending.values():
                if not fut.done():
                    fut.set_result(None)
            self.pending.clear()

    def write(self, obj):
        text = json.dumps(obj) + "\n"
        if FAULT == "crlf":
            text = text[:-1] + "\r\n"
        self.proc.stdin.write(text.encode())


async def main():
    children, tasks, calls, options = {}, set(), {}, {}
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def spawn(spec):
        env = {**os.environ, **spec.get("env", {})}
        proc = await asyncio.create_subprocess_exec(*spec["argv"], stdin=-1, stdout=-1, env=env)
        old = children.get(spec["name"])
        child = children[spec["name"]] = Child(proc, spec)
        if old is not None:
            child.restarts = old.restarts + 1
        tasks.add(asyncio.create_task(child.read()))
        tasks.add(asyncio.create_task(supervise(child)))
        child.write({"type": "INIT", "mode": spec.get("mode", "sequential")})
        if FAULT == "junk":
            proc.stdin.write(b"not json\n")

    async def supervise(child):
        await child.proc.wait()
        limit = options.get("maxRestarts", 3)
        again = child.restarts < limit or FAULT == "restart-forever"
        if child.spec.get("restart") and not child.stopping and again:
            await spawn(child.spec)

    async def stop_child(child, timeout):
        child.stopping = True
        child.write({"type": "SHUTDOWN"})
        exited = asyncio.ensure_future(child.proc.wait())
        for step in ("eof", "term", "kill"):
            # asyncio.wait, not wait_for: no cancellation to get wrong (see request).
            await asyncio.wait({exited}, timeout=timeout / 1000)
            if exited.done() or FAULT == "no-escalation":
                continue
            if step == "eof":
                child.proc.stdin.close()
            elif step == "term":
                child.proc.terminate()
            else:
                child.proc.kill()
        await exited

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
        # asyncio.wait, not wait_for: under coverage's subprocess patch on Python 3.11 a
        # wait_for that times out can raise CancelledError instead of TimeoutError.
        await asyncio.wait({fut}, timeout=timeout / 1000)
        if not fut.done():
            child.pending.pop(ident, None)
            return {"kind": "timeout"}
        got = fut.result()
        if got == "cancelled":
            return {"kind": "cancelled"}
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
            options.update(cmd.get("master", {}))
            implementation = {"name": "fake", "version": "0", "language": "python"}
            capabilities = ["supervision", "cancel"]
            say(
                {
                    "seq": seq,
                    "version": 1,
                    "capabilities": capabilities,
                    "implementation": implementation,
                }
            )
        elif FAULT == "errored":
            say({"seq": seq, "errored": {"message": "the fake broke", "traceback": "here"}})
        elif cmd["cmd"] == "spawn":
            await spawn(cmd)
            say({"seq": seq, "ok": True})
        elif cmd["cmd"] == "request":
            calls[seq] = cmd["target"]
            say({"seq": seq, "outcome": await request(cmd)})
        elif cmd["cmd"] == "cancel":
            child = children[calls[cmd["request"]]]
            for ident in list(child.pending):
                child.write({"type": "CANCEL", "id": ident})
                child.pending.pop(ident).set_result("cancelled")
            say({"seq": seq, "ok": True})
        elif cmd["cmd"] == "shutdown":
            for name, child in children.items():
                if cmd.get("target") in (None, name):
                    await stop_child(child, cmd.get("timeout", 1000))
            say({"seq": seq, "ok": True})
        else:
            say({"seq": seq, "unsupported": "not in this fake"})

    while line := await reader.readline():
        cmd = json.loads(line)
        if cmd["cmd"] == "stop":
            break
        tasks.add(asyncio.create_task(run(cmd)))
    for child in children.values():
        child.stopping = True
        if child.proc.returncode is None:
            child.write({"type": "SHUTDOWN"})
            child.proc.stdin.close()
    for child in children.values():
        await child.proc.wait()


asyncio.run(main())

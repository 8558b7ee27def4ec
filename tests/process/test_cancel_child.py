"""CANCEL against a real peepsy child process (issue 11): a sequential worker whose
handler would run for 60 s is cancelled, answers 499 at once, shows by its side effects
that the handler stopped, and serves the next request; a sync handler that polls its
request's context stops too. The master here is the protocol alone (a Connection over
the child's pipes), so that only the child is under test."""

from __future__ import annotations

import asyncio
import json
import os
import textwrap
import time
from pathlib import Path
from typing import Any

from peepsy.protocol import (
    PROTOCOL_VERSION,
    Connection,
    Event,
    Init,
    ReadyReceived,
    ResponseReceived,
    Role,
    Shutdown,
    UnmatchedResponse,
)
from tests.process._support import PYTHON, ROOT, eventually, run

#: A sequential child whose handlers write what they do to the file named in argv[1].
WORKER = textwrap.dedent(
    """
    import asyncio, sys, time
    from peepsy import Child
    from peepsy.child import current_request

    effects = sys.argv[1]

    def note(text):
        with open(effects, "a") as f:
            f.write(text + "\\n")

    child = Child(mode="sequential")

    @child.handler("slow")
    async def slow(data):
        note(f"slow started {data}")
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            note(f"slow stopped {data}")
            raise
        note(f"slow finished {data}")
        return data

    @child.handler("poll")
    def poll(data):
        context = current_request()
        note(f"poll started {data}")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if context.wait_cancelled(0.05):
                note(f"poll stopped {data} ({context.reason})")
                context.raise_if_cancelled()
        note(f"poll finished {data}")
        return data

    @child.handler("fast")
    async def fast(data):
        note(f"fast ran {data}")
        return data

    child.run()
    """
)


class Wire:
    """The master's end of a child's pipes, speaking through a Connection."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.conn = Connection(Role.MASTER)
        self.answers: dict[str, tuple[int, float]] = {}
        self.events: list[Event] = []
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            for event in self.conn.receive_data(line):
                self.events.append(event)
                if isinstance(event, ResponseReceived):
                    self.answers[event.id] = (event.status, time.monotonic())
                elif isinstance(event, UnmatchedResponse):
                    self.answers[event.response.id] = (event.response.status, time.monotonic())

    def write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)

    def request(self, action: str, data: Any, timeout: int = 60_000) -> str:
        rid, line = self.conn.send_request(action, data, timeout=timeout)
        self.write(line)
        return rid

    def cancel(self, rid: str, reason: str) -> float:
        self.conn.forget(rid)  # given up, as a master does at a timeout
        self.write(self.conn.send_cancel(rid, reason))
        return time.monotonic()

    async def close(self) -> int:
        self.write(self.conn.send(Shutdown(type="SHUTDOWN", timeout=5000)))
        code = await asyncio.wait_for(self.proc.wait(), 10)
        await asyncio.wait_for(self._reader, 10)
        return code


def effects(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


async def start(tmp_path: Path) -> tuple[Wire, Path]:
    script = tmp_path / "cancel_worker.py"
    script.write_text(WORKER)
    out = tmp_path / "effects.txt"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        PYTHON,
        str(script),
        str(out),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )
    wire = Wire(proc)
    init = Init(type="INIT", mode="sequential", protocol=PROTOCOL_VERSION)
    wire.write(wire.conn.send(init))
    await eventually(
        lambda: any(isinstance(e, ReadyReceived) for e in wire.events), "READY", within=20
    )
    assert wire.conn.peer_cancels  # the child stated 1.1
    return wire, out


def test_a_cancelled_60s_async_handler_stops_answers_499_and_the_next_runs(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        wire, out = await start(tmp_path)
        try:
            slow = wire.request("slow", "one", timeout=1000)
            after = wire.request("fast", "two")  # queued behind it: sequential
            await eventually(lambda: "slow started one" in effects(out), "the handler ran")
            cancelled_at = wire.cancel(slow, "timeout")
            await eventually(lambda: after in wire.answers, "the next request answered")
            status, answered_at = wire.answers[slow]
            assert status == 499
            # Far sooner than the 60 s the handler would have run (the issue asks for
            # about a second; the bound is loose so that a busy machine cannot fail it).
            assert answered_at - cancelled_at < 10
            assert wire.answers[after][0] == 200
            assert effects(out) == ["slow started one", "slow stopped one", "fast ran two"]
        finally:
            assert await wire.close() == 0

    run(main())


def test_a_sync_handler_polling_its_context_stops(tmp_path: Path) -> None:
    async def main() -> None:
        wire, out = await start(tmp_path)
        try:
            poll = wire.request("poll", "p")
            after = wire.request("fast", "next")
            await eventually(lambda: "poll started p" in effects(out), "the handler ran")
            wire.cancel(poll, "cancelled")
            await eventually(lambda: after in wire.answers, "the next request answered")
            assert wire.answers[poll][0] == 499
            assert effects(out) == [
                "poll started p",
                "poll stopped p (cancelled)",
                "fast ran next",
            ]
        finally:
            assert await wire.close() == 0

    run(main())


def test_a_cancel_for_nothing_owed_is_ignored_by_the_child(tmp_path: Path) -> None:
    async def main() -> None:
        wire, _ = await start(tmp_path)
        try:
            done = wire.request("fast", "a")
            await eventually(lambda: done in wire.answers, "answered")
            # Already answered, and never sent: no answer, no error, the child goes on.
            wire.write(json.dumps({"type": "CANCEL", "id": done}).encode() + b"\n")
            wire.write(b'{"type":"CANCEL","id":"m404"}\n')
            later = wire.request("fast", "b")
            await eventually(lambda: later in wire.answers, "the next answered")
            assert set(wire.answers) == {done, later}
        finally:
            assert await wire.close() == 0

    run(main())

"""Real processes under the issue-8 decisions: the conformance worker and a peepsy child,
driven over raw pipes (STREAM-3, SHUT-6, SHUT-7, FRAME-9, REQ-11, MSG-9, READY-2)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tests.process._support import PYTHON, ROOT, peepsy_worker, run

WORKER = [PYTHON, str(ROOT / "conformance" / "workers" / "python_worker.py")]


class Pipe:
    """A worker process and its protocol lines, heartbeats left out."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, argv: list[str]) -> Pipe:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        return cls(proc)

    def write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)

    def send(self, message: dict[str, Any]) -> None:
        self.write(json.dumps(message).encode() + b"\n")

    async def raw(self) -> bytes:
        """The next line that is not a HEARTBEAT (b"" at end of output)."""
        assert self.proc.stdout is not None
        while True:
            line = await self.proc.stdout.readline()
            if not line or b'"type":"HEARTBEAT"' not in line:
                return line

    async def next(self) -> dict[str, Any]:
        line = await self.raw()
        assert line, "the worker's output ended"
        message: dict[str, Any] = json.loads(line)
        return message

    async def close_input(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    async def exit_code(self) -> int:
        assert self.proc.stdout is not None
        rest = (await self.proc.stdout.read()).splitlines()
        assert all(b'"type":"HEARTBEAT"' in line for line in rest), rest
        return await self.proc.wait()

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()


async def with_worker(argv: list[str], body: Any) -> None:
    pipe = await Pipe.start(argv)
    try:
        await body(pipe)
    finally:
        pipe.kill()
        await pipe.proc.wait()


def test_end_of_input_stops_a_child_whose_sync_handler_blocks() -> None:
    # STREAM-3: status 0, whatever the handler does; before, the thread held the exit.
    async def body(pipe: Pipe) -> None:
        pipe.send({"type": "REQUEST", "id": "b1", "action": "block", "data": 60_000})
        pipe.send({"type": "REQUEST", "id": "p1", "action": "info"})
        assert (await pipe.next())["id"] == "p1"  # concurrent: block is running by now
        await pipe.close_input()
        assert await pipe.exit_code() == 0

    run(with_worker(peepsy_worker("concurrent"), body))


def test_shutdown_deadline_abandons_a_blocking_handler_with_status_0() -> None:
    async def body(pipe: Pipe) -> None:
        pipe.send({"type": "REQUEST", "id": "b1", "action": "block", "data": 60_000})
        pipe.send({"type": "REQUEST", "id": "p1", "action": "info"})
        assert (await pipe.next())["id"] == "p1"  # concurrent: block is running by now
        pipe.send({"type": "SHUTDOWN", "timeout": 500})
        assert await pipe.exit_code() == 0

    run(with_worker(peepsy_worker("concurrent"), body))


def test_shutdown_and_a_request_in_one_write() -> None:
    async def body(pipe: Pipe) -> None:
        pipe.write(
            b'{"type":"SHUTDOWN"}\n{"type":"REQUEST","id":"r1","action":"nope","timeout":5000}\n'
        )
        answer = await pipe.next()
        assert (answer["id"], answer["status"]) == ("r1", 503)
        assert await pipe.exit_code() == 0

    run(with_worker(WORKER, body))


def test_echo_of_lone_surrogates_round_trips_exactly() -> None:
    async def body(pipe: Pipe) -> None:
        pipe.write(
            b'{"type":"REQUEST","id":"e1","action":"echo","data":{"s":"x\\ud800y","t":"\\udc00"}}\n'
            b'{"type":"REQUEST","id":"e2","action":"nope","data":"x\\ud800y"}\n'
        )
        assert await pipe.raw() == (
            b'{"type":"RESPONSE","id":"e1","status":200,"data":{"s":"x\\ud800y","t":"\\udc00"}}\n'
        )
        assert (await pipe.next())["status"] == 404

    run(with_worker(WORKER, body))


def test_ready_comes_only_after_init() -> None:
    async def body(pipe: Pipe) -> None:
        pipe.send({"type": "REQUEST", "id": "n1", "action": "nope"})
        assert (await pipe.next())["id"] == "n1"
        pipe.write(
            b'{"type":"INIT","mode":"concurrent","maxConcurrency":1,"maxLineBytes":1048576}\n'
            b'{"type":"REQUEST","id":"n2","action":"nope"}\n'
        )
        ready = await pipe.next()
        assert ready["type"] == "READY"
        assert (ready["mode"], ready["maxConcurrency"]) == ("concurrent", 1)
        assert ready["maxLineBytes"] >= 1048576
        assert (await pipe.next())["id"] == "n2"

    run(with_worker(WORKER, body))


def test_call_master_passes_its_timeout_and_fails_when_no_answer_comes() -> None:
    async def body(pipe: Pipe) -> None:
        pipe.send(
            {
                "type": "REQUEST",
                "id": "c1",
                "action": "callMaster",
                "data": {"action": "echo", "data": 1, "timeout": 300},
            }
        )
        request = await pipe.next()
        assert (request["type"], request["timeout"]) == ("REQUEST", 300)
        answer = await pipe.next()
        assert answer["id"] == "c1"
        assert answer["status"] >= 400
        assert isinstance(answer["error"], str)
        # the late answer is ignored, and the worker keeps serving
        pipe.send({"type": "RESPONSE", "id": request["id"], "status": 200, "data": 1})
        pipe.send({"type": "REQUEST", "id": "n1", "action": "nope"})
        assert (await pipe.next())["id"] == "n1"

    run(with_worker(WORKER, body))


def test_call_master_fails_at_once_on_an_invalid_answer() -> None:
    async def body(pipe: Pipe) -> None:
        pipe.send(
            {
                "type": "REQUEST",
                "id": "c1",
                "action": "callMaster",
                "data": {"action": "echo", "data": 1, "timeout": 300_000},
            }
        )
        request = await pipe.next()
        pipe.send({"type": "RESPONSE", "id": request["id"], "status": "200", "data": 1})
        answer = await pipe.next()
        assert (answer["id"], answer["status"]) == ("c1", 502)
        assert "invalid" in answer["error"]

    run(with_worker(WORKER, body))


def test_call_master_relays_the_masters_failure() -> None:
    async def body(pipe: Pipe) -> None:
        pipe.send({"type": "REQUEST", "id": "c1", "action": "callMaster", "data": {"action": "x"}})
        request = await pipe.next()
        pipe.send({"type": "RESPONSE", "id": request["id"], "status": 418, "error": "teapot"})
        answer = await pipe.next()
        assert (answer["id"], answer["status"], answer["error"]) == ("c1", 418, "teapot")

    run(with_worker(WORKER, body))

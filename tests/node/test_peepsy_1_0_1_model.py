"""The model of a Node peepsy 1.0.1 worker (tests/node/peepsy_1_0_1_worker.js) does what
the real library does on Node's IPC channel (shared/reference/node-peepsy-wire-facts.md),
message by message. Absence of an answer is shown by order, not by waiting: the model is
sequential and answers in arrival order, so a marker request sent after a case is answered
after anything the case gets."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from peepsy.conformance._wire import Session

HERE = Path(__file__).resolve().parent
NODE = shutil.which("node")
MODEL = str(HERE / "peepsy_1_0_1_worker.js")
T = TypeVar("T")
NOT_FOUND = "No handler registered for action: "

pytestmark = pytest.mark.skipif(NODE is None, reason="needs Node.js")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def started(**env: str) -> Session:
    assert NODE is not None
    session = Session([NODE, MODEL], {**os.environ, **env}, transport="node-ipc")
    await session.start()
    return session


async def answers_until(session: Session, marker: str) -> list[Any]:
    """Every message before the RESPONSE to `marker` (which must come)."""
    seen: list[Any] = []
    while True:
        line = await session.next_message(10_000)
        assert line is not None, f"no answer to {marker}; before it: {seen}"
        if line.message.get("id") == marker:
            return seen
        seen.append(line.message)


async def answers_to(session: Session, *messages: dict[str, Any]) -> list[Any]:
    for message in messages:
        session.send(message)
    session.send({"type": "REQUEST", "id": "marker", "action": "echo", "data": "marker"})
    return await answers_until(session, "marker")


def req(**members: Any) -> dict[str, Any]:
    return {"type": "REQUEST", **members}


def response(rid: Any, status: int, **members: Any) -> dict[str, Any]:
    out = {"type": "RESPONSE", "id": rid, "status": status, **members}
    return {k: v for k, v in out.items() if v is not None}


CASES = {
    # Nothing is validated: a missing action is looked up as undefined.
    "no action": (req(id="bad1"), [response("bad1", 404, error=NOT_FOUND + "undefined")]),
    "action not a string": (req(id="a1", action=42), [response("a1", 404, error=NOT_FOUND + "42")]),
    "inherited name": (
        req(id="p1", action="toString"),
        [response("p1", 404, error=NOT_FOUND + "toString")],
    ),
    # A truthy `request` wins, whatever it is; a falsy one leaves the flat fields.
    "request a string": (
        req(request="oops", id="flat1", action="echo"),
        [response(None, 404, error=NOT_FOUND + "undefined")],
    ),
    "request null": (
        req(request=None, id="f2", action="echo", data=1),
        [response("f2", 200, data=1)],
    ),
    "nested wins": (
        req(request={"id": "n1", "action": "echo", "data": 2}, id="flat3", action="nope"),
        [response("n1", 200, data=2)],
    ),
    # The timeout is arithmetic: not a number means expired at once, so dropped unanswered.
    "timeout not a number": (req(id="t1", action="echo", timeout="abc"), []),
    "timeout 0": (req(id="t2", action="echo", timeout=0), []),
    "timeout a numeric string": (
        req(id="t3", action="echo", data="s", timeout="5000"),
        [response("t3", 200, data="s")],
    ),
    # Node's own messages never reach the worker.
    "NODE_ internal": ({"cmd": "NODE_TEST", "type": "REQUEST", "id": "i1", "action": "echo"}, []),
    "unknown type": ({"type": "PING", "id": "u1"}, []),
    "no errorPayload": (
        req(id="f1", action="fail", data="bad"),
        [response("f1", 500, error="bad")],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_how_the_model_answers_each_request(case: str) -> None:
    message, expected = CASES[case]

    async def main() -> None:
        session = await started()
        try:
            assert await answers_to(session, message) == expected
        finally:
            await session.stop()

    run(main())


def test_a_duplicate_id_runs_twice() -> None:
    async def main() -> None:
        session = await started()
        try:
            seen = await answers_to(
                session,
                req(id="dup", action="sleep", data=100),
                req(id="dup", action="echo", data="second"),
            )
            assert seen == [response("dup", 200, data=100), response("dup", 200, data="second")]
        finally:
            await session.stop()

    run(main())


def test_priority_changes_nothing_and_expired_requests_are_dropped() -> None:
    async def main() -> None:
        session = await started()
        try:
            seen = await answers_to(
                session,
                req(id="busy", action="sleep", data=200),
                req(id="expires", action="echo", data="x", timeout=50),
                req(id="A", action="echo", data="A", priority=0),
                req(id="B", action="echo", data="B", priority=5),
            )
            assert [m["id"] for m in seen] == ["busy", "A", "B"]
        finally:
            await session.stop()

    run(main())


@pytest.mark.parametrize("rebind", [False, True])
def test_heartbeats_only_after_process_send_is_rebound(rebind: bool) -> None:
    """The 1.0.1 timer calls process.send unbound. With a 50 ms interval, its timer fires
    before a 300 ms sleep ends (Node runs timers in deadline order), so a worker that
    can heartbeat has sent one before the sleep's answer."""

    async def main() -> None:
        env = {"HEARTBEAT_MS": "50", **({"REBIND_SEND": "1"} if rebind else {})}
        session = await started(**env)
        try:
            await answers_to(session, req(id="s", action="sleep", data=300))
            beats = [line.message for line in session.heartbeats]
            if rebind:
                assert beats
                assert set(beats[0]) == {"type", "pid", "timestamp", "requestsActive"}
            else:
                assert beats == []
        finally:
            await session.stop()

    run(main())


def test_a_line_that_is_not_json_shuts_the_worker_down() -> None:
    """Node's parser throws; 1.0.1's uncaughtException handler shuts down: the channel
    closes unanswered and the process exits 0."""

    async def main() -> None:
        session = await started()
        try:
            session.send_raw(b"not JSON\n")
            session.send(req(id="after", action="echo", data=1))
            assert await session.next_message(10_000) is None  # closed, nothing answered
            assert await session.wait_exit(10_000) == 0
            assert "Uncaught exception" in session.stderr.decode()
        finally:
            await session.stop()

    run(main())


def test_requests_after_shutdown_are_dropped() -> None:
    async def main() -> None:
        session = await started()
        try:
            session.send_raw(
                b'{"type":"SHUTDOWN"}\n{"type":"REQUEST","id":"late","action":"echo"}\n'
            )
            assert await session.next_message(10_000) is None
            assert await session.wait_exit(10_000) == 0
        finally:
            await session.stop()

    run(main())


@pytest.mark.parametrize("mode", ["sequential", "concurrent"])
def test_shutdown_abandons_running_work_only_in_sequential_mode(mode: str) -> None:
    async def main() -> None:
        session = await started(MODE=mode)
        try:
            # In order on the channel: the sleep starts before SHUTDOWN is read.
            session.send(req(id="run", action="sleep", data=300))
            session.send(req(id="queued", action="echo", data="q"))
            session.send({"type": "SHUTDOWN"})
            seen: list[Any] = []
            while (line := await session.next_message(10_000)) is not None:
                seen.append(line.message)
            if mode == "sequential":
                assert seen == []  # the channel closed before the sleep ended
            else:
                # Concurrent: both run at once; it waits for them, then disconnects.
                assert sorted(m["id"] for m in seen) == ["queued", "run"]
            assert await session.wait_exit(10_000) == 0
        finally:
            await session.stop()

    run(main())


def test_its_own_requests_are_unified_with_uuid_ids() -> None:
    async def main() -> None:
        session = await started()
        try:
            session.send(req(id="c1", action="callMaster", data={"action": "ask"}))
            line = await session.next_message(10_000)
            assert line is not None
            asked = line.message
            assert set(asked) == {"type", "id", "action", "data", "timeout"}
            assert (asked["action"], asked["data"], asked["timeout"]) == ("ask", {}, 5000)
            assert uuid.UUID(asked["id"]).version == 4
            # A failure answer without `error` text still resolves (1.0.1 reads `error` only).
            session.send({"type": "RESPONSE", "id": asked["id"], "status": 500, "data": 7})
            line = await session.next_message(10_000)
            assert line is not None
            assert line.message == response("c1", 200, data=7)
        finally:
            await session.stop()

    run(main())

"""The reference child under the issue-8 decisions: READY-2, INIT's maxConcurrency,
MSG-9, REQ-9/REQ-10, FRAME-9, FRAME-11/12, REQ-11 and the end of life (STREAM-3,
SHUT-1, SHUT-4..7)."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest

from peepsy import Child, PeepsyShutdownError, PeepsyTimeoutError
from peepsy.child import Mode
from peepsy.protocol import DEFAULT_MAX_LINE_BYTES, InvalidResponse, LineTooLongForPeer
from tests.child._support import FakeMaster, line, run, serving, settle, until

MIB = 1024 * 1024


async def started(child: Child) -> tuple[FakeMaster, asyncio.Task[int]]:
    master = FakeMaster()
    task = asyncio.ensure_future(child.serve(master))
    await until(lambda: master.listener is not None)
    master.task = task
    return master, task


def ready_lines(master: FakeMaster) -> list[int]:
    """Where, among the lines the child wrote (heartbeats left out), READY stands."""
    return [i for i, kind in enumerate(kinds(master)) if kind == "READY"]


def kinds(master: FakeMaster) -> list[str]:
    out = []
    for chunk in master.written:
        for raw in chunk.splitlines():
            kind = json.loads(raw)["type"]
            if kind != "HEARTBEAT":
                out.append(kind)
    return out


# --- READY-2 --------------------------------------------------------------------------------


def test_no_ready_without_init() -> None:
    async def main() -> None:
        child = Child("concurrent")
        child.register_handler("echo", lambda data: data, inline=True)
        async with serving(child) as master:
            assert (await master.response(master.request("echo", 1))).data == 1
            assert master.readies == []

    run(main())


def test_ready_is_the_first_line_after_init_and_comes_once() -> None:
    async def main() -> None:
        async with serving(Child()) as master:
            before = master.request("nope")  # answered before INIT: allowed
            await master.response(before)
            rid, request = master.conn.send_request("nope")
            init = b'{"type":"INIT","mode":"sequential"}\n'
            master.feed(init + request)
            await master.response(rid)
            assert kinds(master) == ["RESPONSE", "READY", "RESPONSE"]
            master.init("concurrent")
            again = master.request("nope")
            await master.response(again)
            assert len(master.readies) == 1
            assert ready_lines(master) == [1]

    run(main())


def test_ready_states_the_mode_cap_and_line_limit_init_settled() -> None:
    async def main() -> None:
        child = Child()
        async with serving(child) as master:
            master.init("concurrent", maxConcurrency=1)
            await until(lambda: bool(master.readies))
            ready = master.readies[0]
            assert ready.mode == "concurrent"
            assert ready.max_concurrency == 1
            assert ready.max_line_bytes == DEFAULT_MAX_LINE_BYTES

    run(main())


@pytest.mark.parametrize(
    ("options", "mode", "init", "cap"),
    [
        ({"mode": "concurrent", "max_concurrency": 3}, "concurrent", {"maxConcurrency": 1}, 3),
        ({"mode": "concurrent"}, "concurrent", {}, None),
        ({}, "concurrent", {}, None),
        ({}, "sequential", {"maxConcurrency": 8}, 1),  # one at a time
        ({"mode": "sequential"}, "concurrent", {"maxConcurrency": 8}, 1),
    ],
)
def test_ready_states_the_cap_the_child_runs_with(
    options: dict[str, Any], mode: str, init: dict[str, Any], cap: int | None
) -> None:
    async def main() -> None:
        child = Child(**options)
        async with serving(child) as master:
            master.init(mode, **init)
            await until(lambda: bool(master.readies))
            stated = master.readies[0].max_concurrency
            assert (None if not isinstance(stated, int) else stated) == cap

    run(main())


def test_an_action_named_with_a_lone_surrogate_is_served_but_not_listed_in_ready() -> None:
    """A Node peer can name an action with a lone surrogate (FRAME-9); READY, which only
    informs, lists the names it can carry, and the child still serves the other one."""

    async def main() -> None:
        child = Child()
        child.register_handler("plain", lambda data: data)
        child.register_handler("odd\ud800", lambda data: data)
        async with serving(child) as master:
            master.init("concurrent")
            await until(lambda: bool(master.readies))
            assert master.readies[0].actions == ["plain"]
            master.feed(b'{"type":"REQUEST","id":"r1","action":"odd\\ud800","data":7}\n')
            await until(lambda: "r1" in master.responses)
            answer = master.responses["r1"]
            assert (answer.status, answer.data) == (200, 7)

    run(main())


def test_a_line_limit_under_1_mib_is_not_stated() -> None:
    async def main() -> None:
        async with serving(Child(max_line_bytes=4096)) as master:
            master.init("sequential")
            await until(lambda: bool(master.readies))
            assert not isinstance(master.readies[0].max_line_bytes, int)

    run(main())


def test_the_cap_from_init_queues_the_second_request() -> None:
    async def main() -> None:
        child = Child()
        gate = asyncio.Event()

        @child.handler("work")
        async def work(data: Any) -> Any:
            await gate.wait()
            return data

        async with serving(child) as master:
            master.init("concurrent", maxConcurrency=1)
            ids = master.requests_at_once(("work", 1), ("work", 2))
            await until(lambda: child.queue_size == 1)
            assert child.requests_in_progress == 1
            gate.set()
            assert [(await master.response(r)).data for r in ids] == [1, 2]

    run(main())


# --- MSG-9: invalid INIT and SHUTDOWN change nothing ------------------------------------------


def test_an_invalid_init_is_ignored() -> None:
    async def main() -> None:
        child = Child()
        async with serving(child) as master:
            master.feed(b'{"type":"INIT","mode":"parallel","maxConcurrency":1}\n')
            assert (await master.response(master.request("nope"))).status == 404
            assert master.readies == []
            before: str = child.mode
            assert before == "sequential"
            master.init("concurrent")  # the first valid INIT is the first INIT
            await until(lambda: bool(master.readies))
            assert master.readies[0].mode == "concurrent"

    run(main())


def test_an_invalid_shutdown_does_not_stop_the_child() -> None:
    async def main() -> None:
        child = Child()
        master, task = await started(child)
        master.feed(b'{"type":"SHUTDOWN","timeout":0}\n')
        assert (await master.response(master.request("nope"))).status == 404
        assert child.is_active
        master.shutdown()
        assert await asyncio.wait_for(task, 3) == 0

    run(main())


# --- REQ-9 / REQ-10 ---------------------------------------------------------------------------


def test_requests_without_a_readable_id_are_never_answered() -> None:
    async def main() -> None:
        async with serving(Child()) as master:
            master.feed(
                line({"type": "REQUEST", "request": None, "id": "m1", "action": "a"})
                + line({"type": "REQUEST", "id": 7, "action": "a"})
                + line({"type": "REQUEST", "id": "i" * 129, "action": "a"})
            )
            rid = master.request("nope")
            assert (await master.response(rid)).status == 404
            assert set(master.responses) == {rid}

    run(main())


def test_an_id_of_128_code_points_is_answered_exactly() -> None:
    async def main() -> None:
        rid = "\U0001f389" * 128
        async with serving(Child()) as master:
            master.feed(line({"type": "REQUEST", "id": rid, "action": "nope"}))
            assert (await master.response(rid)).status == 404

    run(main())


def test_an_invalid_duplicate_of_a_running_request_is_neither_run_nor_answered() -> None:
    async def main() -> None:
        child = Child("concurrent")
        gate = asyncio.Event()
        runs: list[Any] = []

        @child.handler("sleep")
        async def sleep(data: Any) -> Any:
            runs.append(data)
            await gate.wait()
            return data

        async with serving(child) as master:
            master.feed(line({"type": "REQUEST", "id": "x1", "action": "sleep", "data": 1}))
            await until(lambda: runs == [1])
            master.feed(line({"type": "REQUEST", "id": "x1", "action": "sleep", "timeout": 0}))
            probe = master.request("nope")
            await master.response(probe)
            assert "x1" not in master.responses
            gate.set()
            assert (await master.response("x1")).data == 1
            assert runs == [1]
            written = b"".join(master.written)
            assert written.count(b'"type":"RESPONSE","id":"x1"') == 1

    run(main())


def test_after_shutdown_unknown_is_503_and_invalid_is_400() -> None:
    async def main() -> None:
        child = Child("concurrent")
        gate = asyncio.Event()

        @child.handler("sleep")
        async def sleep(data: Any) -> Any:
            await gate.wait()
            return data

        master, task = await started(child)
        running = master.request("sleep", 1)
        await until(lambda: child.requests_in_progress == 1)
        master.shutdown(timeout=5000)
        unknown = master.request("nope")
        master.feed(line({"type": "REQUEST", "id": "bad", "action": "nope", "timeout": 0}))
        assert (await master.response(unknown)).status == 503
        assert (await master.response("bad")).status == 400
        gate.set()
        assert (await master.response(running)).status == 200
        assert await asyncio.wait_for(task, 3) == 0

    run(main())


# --- FRAME-9 ----------------------------------------------------------------------------------


def test_echo_of_lone_surrogates_comes_back_exactly() -> None:
    async def main() -> None:
        child = Child()
        child.register_handler("echo", lambda data: data, inline=True)
        async with serving(child) as master:
            master.feed(
                b'{"type":"REQUEST","id":"s1","action":"echo",'
                b'"data":{"s":"x\\ud800y","t":"\\udc00"}}\n'
                b'{"type":"REQUEST","id":"s2","action":"nope\\ud800","data":"x\\ud800y"}\n'
            )
            await master.response("s2")
            written = b"".join(master.written)
            assert (
                b'{"type":"RESPONSE","id":"s1","status":200,'
                b'"data":{"s":"x\\ud800y","t":"\\udc00"}}\n' in written
            )
            assert master.responses["s2"].status == 404
            written.decode("utf-8")

    run(main())


# --- FRAME-11 / FRAME-12 ----------------------------------------------------------------------


def test_a_result_longer_than_the_masters_limit_is_answered_413() -> None:
    async def main() -> None:
        child = Child()
        child.register_handler("echo", lambda data: data, inline=True)
        async with serving(child) as master:
            master.init("sequential", maxLineBytes=MIB)
            rid = master.request("echo", "x" * 1_100_000)
            answer = await master.response(rid)
            assert answer.status == 413
            assert master.payload(rid)["name"] == "PeepsyLineTooLongError"
            assert master.payload(rid)["code"] == "PEEPSY_LINE_TOO_LONG"
            assert str(MIB) in str(answer.error)
            assert all(len(raw) <= MIB for raw in master.written)

    run(main())


def test_a_request_to_the_master_over_its_limit_fails_locally() -> None:
    async def main() -> None:
        child = Child()
        async with serving(child) as master:
            master.init("sequential", maxLineBytes=MIB)
            with pytest.raises(LineTooLongForPeer, match=str(MIB)):
                await child.request("big", "x" * MIB)
            assert master.requests == []

    run(main())


def test_an_over_long_request_with_a_readable_id_is_answered_413() -> None:
    async def main() -> None:
        child = Child(max_line_bytes=MIB)
        child.register_handler("echo", lambda data: data, inline=True)
        async with serving(child) as master:
            rid = master.request("echo", "x" * MIB)
            answer = await master.response(rid)
            assert answer.status == 413
            assert master.payload(rid)["code"] == "PEEPSY_LINE_TOO_LONG"
            assert str(MIB) in str(answer.error)

    run(main())


# --- MSG-9 and REQ-11: the child's own requests -----------------------------------------------


def test_an_invalid_answer_fails_the_childs_request_at_once() -> None:
    async def main() -> None:
        child = Child(timeout=300_000)
        async with serving(child) as master:
            call = asyncio.ensure_future(child.request("echo", 1))
            await until(lambda: bool(master.requests))
            rid = master.requests[0].id
            master.feed(line({"type": "RESPONSE", "id": rid, "status": "200"}))
            with pytest.raises(InvalidResponse, match="invalid"):
                await call
            # a valid answer after it is late, and ignored
            master.feed(line({"type": "RESPONSE", "id": rid, "status": 200, "data": 2}))
            assert (await master.response(master.request("nope"))).status == 404

    run(main())


def test_the_childs_request_times_out_and_a_late_answer_is_ignored() -> None:
    async def main() -> None:
        child = Child()
        async with serving(child) as master:
            call = asyncio.ensure_future(child.request("echo", 1, timeout=30))
            await until(lambda: bool(master.requests))
            assert master.requests[0].timeout == 30
            with pytest.raises(PeepsyTimeoutError):
                await call
            master.answer(master.requests[0], 200, "late")
            assert (await master.response(master.request("nope"))).status == 404

    run(main())


def test_the_default_timeout_of_the_childs_request_is_5000() -> None:
    async def main() -> None:
        child = Child()
        async with serving(child) as master:
            call = asyncio.ensure_future(child.request("echo", 1))
            await until(lambda: bool(master.requests))
            assert master.requests[0].timeout == 5000
            master.answer(master.requests[0], 200, 1)
            assert await call == 1

    run(main())


# --- end of life ------------------------------------------------------------------------------


def blocking(child: Child) -> tuple[threading.Event, threading.Event]:
    """A sync handler ``block`` that holds its thread until released."""
    entered, release = threading.Event(), threading.Event()

    @child.handler("block")
    def block(data: Any) -> Any:
        entered.set()
        release.wait(30)
        return data

    return entered, release


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_end_of_input_stops_within_the_grace_whatever_handlers_do(kind: str) -> None:
    async def main() -> None:
        child = Child("concurrent", eof_grace=50)
        entered, release = blocking(child)

        @child.handler("forever")
        async def forever(data: Any) -> Any:
            await asyncio.Event().wait()

        master, task = await started(child)
        master.request("block" if kind == "sync" else "forever")
        if kind == "sync":
            await until(entered.is_set)
        else:
            await until(lambda: child.requests_in_progress == 1)
        master.eof()
        try:
            assert await asyncio.wait_for(task, 3) == 0
        finally:
            release.set()
        assert master.responses == {}

    run(main())


def test_end_of_input_fails_the_childs_own_requests_at_once() -> None:
    async def main() -> None:
        child = Child(timeout=300_000, eof_grace=5000)
        master, task = await started(child)
        call = asyncio.ensure_future(child.request("echo", 1))
        await until(lambda: bool(master.requests))
        master.eof()
        with pytest.raises(PeepsyShutdownError):
            await call
        assert await asyncio.wait_for(task, 3) == 0

    run(main())


def test_end_of_input_brings_a_long_shutdown_deadline_closer() -> None:
    async def main() -> None:
        child = Child("concurrent", eof_grace=50)
        entered, release = blocking(child)
        master, task = await started(child)
        master.request("block")
        await until(entered.is_set)
        master.shutdown(timeout=300_000)
        master.eof()
        try:
            assert await asyncio.wait_for(task, 3) == 0
        finally:
            release.set()

    run(main())


def test_shutdown_deadline_abandons_a_sync_handler_with_status_0() -> None:
    async def main() -> None:
        child = Child("concurrent")
        entered, release = blocking(child)
        master, task = await started(child)
        rid = master.request("block")
        await until(entered.is_set)
        master.shutdown(timeout=50)
        try:
            assert await asyncio.wait_for(task, 3) == 0
        finally:
            release.set()
        assert rid not in master.responses

    run(main())


def test_requests_in_the_same_write_as_shutdown_are_answered_503() -> None:
    async def main() -> None:
        child = Child()
        child.register_handler("echo", lambda data: data, inline=True)
        master, task = await started(child)
        rid, request = master.conn.send_request("echo", 1)
        master.feed(b'{"type":"SHUTDOWN"}\n' + request)
        assert await asyncio.wait_for(task, 3) == 0
        assert master.responses[rid].status == 503

    run(main())


@pytest.mark.parametrize("mode", ["sequential", "concurrent"])
def test_queued_requests_get_503_and_never_run(mode: Mode) -> None:
    async def main() -> None:
        child = Child(mode, max_concurrency=1 if mode == "concurrent" else None)
        gate = asyncio.Event()
        runs: list[Any] = []

        @child.handler("work")
        async def work(data: Any) -> Any:
            runs.append(data)
            await gate.wait()
            return data

        master, task = await started(child)
        ids = master.requests_at_once(("work", 1), ("work", 2), ("work", 3))
        await until(lambda: child.queue_size == 2)
        master.shutdown(timeout=5000)
        assert [(await master.response(r)).status for r in ids[1:]] == [503, 503]
        gate.set()
        assert (await master.response(ids[0])).status == 200
        assert await asyncio.wait_for(task, 3) == 0
        await settle()
        assert runs == [1]

    run(main())


def test_eof_grace_is_checked() -> None:
    with pytest.raises(ValueError, match="eof_grace"):
        Child(eof_grace=-1)


def test_a_later_shutdown_does_not_push_the_deadline_back() -> None:
    async def main() -> None:
        child = Child("concurrent")
        entered, release = blocking(child)
        master, task = await started(child)
        master.request("block")
        await until(entered.is_set)
        master.shutdown(timeout=50)
        master.shutdown(timeout=300_000)
        child.shutdown()
        try:
            assert await asyncio.wait_for(task, 3) == 0
        finally:
            release.set()

    run(main())

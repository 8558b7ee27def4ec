"""Cancellation in the session engine (issue 11): the calling side sends CANCEL when it
gives a call up, the serving side stops what was cancelled (CANCEL-1..6), and handlers
see their request through peepsy.current_request(). Two sessions back to back, no
processes; every wait is for an event."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest

from peepsy import (
    Action,
    PeepsyCancelledError,
    PeepsyTimeoutError,
    RemoteError,
    RequestContext,
    current_request,
)
from peepsy._actions import Handlers
from peepsy._errors import RemoteProtocolError
from peepsy._failures import error_from_wire, error_to_wire
from peepsy.protocol import Connection, Event, Response, Role, UnmatchedResponse
from peepsy.session import Call, Deadlines, RetryPolicy, Server, Session, answer_of, expire

LIMIT_S = 10


class Recorder:
    """A SessionListener that keeps what it is told, with an event per kind."""

    def __init__(self) -> None:
        self.timeouts: list[str] = []
        self.lates: list[str] = []
        self.sent: list[tuple[str, str]] = []
        self.acknowledged: list[tuple[str, int]] = []
        self.bad: list[RemoteProtocolError] = []
        self.heard = asyncio.Event()

    def answered(self, call: Call[Any], status: int) -> None:
        pass

    def timed_out(self, call: Call[Any]) -> None:
        self.timeouts.append(call.id)

    def rejected(self, error: RemoteProtocolError) -> None:
        self.bad.append(error)

    def late(self, event: UnmatchedResponse) -> None:
        self.lates.append(event.response.id)
        self.heard.set()

    def lifecycle(self, event: Event) -> None:
        pass

    def cancel_sent(self, call: Call[Any], reason: str) -> None:
        self.sent.append((call.id, reason))

    def cancel_acknowledged(self, request_id: str, status: int) -> None:
        self.acknowledged.append((request_id, status))
        self.heard.set()


class Wire:
    """Two sessions back to back, and every line the master writes."""

    def __init__(
        self,
        handlers: Handlers,
        *,
        capacity: int | None = None,
        version: str | None = "1.1",
    ) -> None:
        loop = asyncio.get_running_loop()
        self.to_child: list[bytes] = []
        self.recorder = Recorder()
        deadlines: Deadlines[Call[Any]] = Deadlines(loop, expire)

        def server(session: Session) -> Server:
            return Server(handlers, session.respond, loop, capacity=lambda: capacity)

        def master_writes(line: bytes) -> None:
            self.to_child.append(line)
            loop.call_soon(self.child.receive, line)

        def child_writes(line: bytes) -> None:
            loop.call_soon(self.master.receive, line)

        self.master = Session(
            Connection(Role.MASTER),
            master_writes,
            loop,
            deadlines,
            self.recorder,
            server,
            peer="w1",
        )
        self.child = Session(
            Connection(Role.CHILD),
            child_writes,
            loop,
            deadlines,
            Recorder(),
            server,
            peer="master",
        )
        # The greetings, as if each side had stated its version (VER-1).
        stated = {} if version is None else {"protocol": version}
        ready = {"type": "READY", "pid": 1, "mode": "concurrent", **stated}
        init = {"type": "INIT", "mode": "concurrent", **stated}
        self.master.conn.receive_data(json.dumps(ready).encode() + b"\n")
        self.child.conn.receive_data(json.dumps(init).encode() + b"\n")

    def cancels(self) -> list[dict[str, Any]]:
        """The CANCEL lines the master wrote, parsed."""
        out = []
        for chunk in self.to_child:
            for text in chunk.splitlines():
                message = json.loads(text)
                if message["type"] == "CANCEL":
                    out.append(message)
        return out


def run(coro: Any) -> Any:
    async def bounded() -> Any:
        async with asyncio.timeout(LIMIT_S):
            return await coro

    return asyncio.run(bounded())


class Effects:
    """What handlers did, with an event to wait on for each."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.changed = asyncio.Event()
        self._loop = asyncio.get_running_loop()

    def add(self, what: str) -> None:
        def note() -> None:
            self.seen.append(what)
            self.changed.set()

        if threading.current_thread() is threading.main_thread():
            note()
        else:
            self._loop.call_soon_threadsafe(note)

    async def until(self, what: str) -> None:
        while what not in self.seen:
            self.changed.clear()
            await self.changed.wait()


# --- the calling side ----------------------------------------------------------------


def test_a_timeout_cancels_a_running_async_handler_and_its_499_acknowledges_it() -> None:
    async def main() -> None:
        effects = Effects()
        handlers = Handlers()

        async def slow(_: Any) -> Any:
            effects.add("started")
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                effects.add("stopped")
                raise
            effects.add("finished")  # pragma: no cover - must not happen

        handlers.add("slow", slow)
        wire = Wire(handlers)
        call = wire.master.call("slow", None, timeout=50)
        with pytest.raises(PeepsyTimeoutError):
            await call
        await wire.recorder.heard.wait()
        assert wire.cancels() == [{"type": "CANCEL", "id": call.id, "reason": "timeout"}]
        assert wire.recorder.sent == [(call.id, "timeout")]
        assert wire.recorder.acknowledged == [(call.id, 499)]
        assert wire.recorder.lates == []  # an acknowledgement, not a late answer (CANCEL-5)
        assert effects.seen == ["started", "stopped"]
        assert wire.master.cancelled == frozenset()
        assert wire.child.server.running == 0
        assert wire.child.conn.owed == frozenset()

    run(main())


def test_a_caller_cancelled_while_waiting_cancels_at_the_peer() -> None:
    async def main() -> None:
        effects = Effects()
        handlers = Handlers()

        async def slow(_: Any) -> Any:
            effects.add("started")
            await asyncio.sleep(60)

        handlers.add("slow", slow)
        wire = Wire(handlers)
        call = wire.master.call("slow", None, timeout=60_000)
        waiter = asyncio.ensure_future(answer_of(call))
        await effects.until("started")
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await wire.recorder.heard.wait()
        assert wire.cancels() == [{"type": "CANCEL", "id": call.id, "reason": "cancelled"}]
        assert wire.recorder.acknowledged == [(call.id, 499)]
        assert wire.master.outstanding == 0

    run(main())


def test_asyncio_timeout_around_a_call_cancels_it_too() -> None:
    async def main() -> None:
        handlers = Handlers()

        async def slow(_: Any) -> Any:
            await asyncio.sleep(60)

        handlers.add("slow", slow)
        wire = Wire(handlers)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await answer_of(wire.master.call("slow", None, timeout=60_000))
        await wire.recorder.heard.wait()
        assert [c["reason"] for c in wire.cancels()] == ["cancelled"]

    run(main())


def test_a_1_0_peer_is_never_sent_cancel_and_its_answer_stays_late() -> None:
    async def main() -> None:
        gate = asyncio.Event()
        handlers = Handlers()

        async def slow(_: Any) -> Any:
            await gate.wait()
            return "late"

        handlers.add("slow", slow)
        wire = Wire(handlers, version=None)
        assert not wire.master.conn.peer_cancels
        call = wire.master.call("slow", None, timeout=20)
        with pytest.raises(PeepsyTimeoutError):
            await call
        waiter = wire.master.call("slow", None, timeout=60_000)
        waiter.cancel()
        assert wire.master.cancel_all("shutdown") == 0
        gate.set()
        while len(wire.recorder.lates) < 2:
            wire.recorder.heard.clear()
            await wire.recorder.heard.wait()
        assert wire.cancels() == []
        assert wire.recorder.sent == []
        assert sorted(wire.recorder.lates) == sorted([call.id, waiter.id])

    run(main())


def test_cancel_all_settles_every_call_and_sends_one_cancel_each() -> None:
    async def main() -> None:
        effects = Effects()
        handlers = Handlers()

        async def slow(data: Any) -> Any:
            effects.add(f"started {data}")
            await asyncio.sleep(60)

        handlers.add("slow", slow)
        wire = Wire(handlers)
        calls = [wire.master.call("slow", i, timeout=60_000) for i in range(3)]
        await effects.until("started 2")
        assert wire.master.cancel_all("shutdown") == 3
        for call in calls:
            with pytest.raises(PeepsyCancelledError, match="shutdown") as info:
                await call
            assert (info.value.reason, info.value.target) == ("shutdown", "w1")
        assert wire.master.outstanding == 0
        assert wire.master.cancelled == {c.id for c in calls}
        while len(wire.recorder.acknowledged) < 3:
            wire.recorder.heard.clear()
            await wire.recorder.heard.wait()
        assert sorted(wire.recorder.acknowledged) == sorted((c.id, 499) for c in calls)
        assert [c["reason"] for c in wire.cancels()] == ["shutdown"] * 3

    run(main())


def test_cancel_all_leaves_a_call_its_owner_settled_as_it_is() -> None:
    async def main() -> None:
        wire = Wire(Handlers())
        call = wire.master.call("x", None, timeout=60_000)
        super(Call, call).set_result("settled by its owner")  # type: ignore[arg-type]  # its owner, not the session
        assert wire.master.cancel_all("shutdown") == 1
        assert call.result() == "settled by its owner"
        assert [c["id"] for c in wire.cancels()] == [call.id]

    run(main())


def test_the_session_forgets_the_oldest_cancelled_id_past_its_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("peepsy.session._session.MAX_CANCELLED", 2)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        written: list[bytes] = []
        master = Session(  # toward a peer that never answers
            Connection(Role.MASTER),
            written.append,
            loop,
            Deadlines(loop, expire),
            Recorder(),
            lambda s: Server(Handlers(), s.respond, loop, capacity=lambda: None),
            peer="w1",
        )
        master.conn.receive_data(b'{"type":"READY","pid":1,"mode":"concurrent","protocol":"1.1"}\n')
        calls = [master.call("x", None, timeout=60_000) for _ in range(3)]
        for call in calls:
            call.cancel()
        assert sum(line.startswith(b'{"type":"CANCEL"') for line in written) == 3
        assert master.cancelled == {calls[1].id, calls[2].id}
        # The channel's end: no answer can come any more.
        master.fail_all(lambda c: RemoteError("gone", status=503))
        assert master.cancelled == frozenset()

    run(main())


# --- the serving side ----------------------------------------------------------------


def test_a_queued_request_is_removed_answered_499_and_never_runs() -> None:
    async def main() -> None:
        effects = Effects()
        gate = asyncio.Event()
        handlers = Handlers()

        async def work(data: Any) -> Any:
            effects.add(f"ran {data}")
            await gate.wait()
            return data

        handlers.add("work", work)
        wire = Wire(handlers, capacity=1)
        first = wire.master.call("work", 1, timeout=60_000)
        queued = wire.master.call("work", 2, timeout=60_000)
        third = wire.master.call("work", 3, timeout=60_000)
        await effects.until("ran 1")
        assert wire.child.server.queued == 2
        queued.cancel()
        await wire.recorder.heard.wait()
        assert wire.recorder.acknowledged == [(queued.id, 499)]
        assert wire.child.server.queued == 1
        gate.set()
        assert (await first).data == 1
        assert (await third).data == 3
        assert "ran 2" not in effects.seen  # CANCEL-3: it must not run

    run(main())


def test_server_cancel_is_idempotent_and_ignores_what_it_does_not_hold() -> None:
    async def main() -> None:
        gate = asyncio.Event()
        handlers = Handlers()

        async def work(_: Any) -> Any:
            await gate.wait()

        handlers.add("work", work)
        answers: list[tuple[str, Any, BaseException | None]] = []
        both = asyncio.Event()

        def respond(rid: str, result: Any, error: BaseException | None, ran: bool) -> None:
            answers.append((rid, result, error))
            if len(answers) == 2:
                both.set()

        server = Server(handlers, respond, asyncio.get_running_loop(), capacity=lambda: 1)
        from peepsy.protocol import RequestReceived

        server.accept(RequestReceived("a", "work", None, None, 0, False))
        server.accept(RequestReceived("b", "work", None, 60_000, 0, False))
        assert server.cancel("nope") is False
        assert server.cancel("b", "timeout") is True
        assert server.cancel("b") is False  # already removed and answered
        assert server.cancel("a", "timeout") is True
        assert server.cancel("a") is False  # CANCEL-6: the second changes nothing
        await both.wait()
        assert [(rid, type(err)) for rid, _, err in answers] == [
            ("b", PeepsyCancelledError),
            ("a", PeepsyCancelledError),
        ]
        assert "before it ran (timeout)" in str(answers[0][2])
        assert "cancelled by its sender (timeout)" in str(answers[1][2])
        assert server.running == 0

    run(main())


def test_a_typed_async_handler_is_cancelled_too() -> None:
    # A typed action's handler runs inside the server's own wrapper coroutine.
    async def main() -> None:
        effects = Effects()
        handlers = Handlers()

        async def slow(n: int) -> int:
            effects.add("started")
            await asyncio.sleep(60)
            return n  # pragma: no cover - cancelled

        handlers.add(Action("slow", int, int), slow)
        wire = Wire(handlers)
        call = wire.master.call("slow", 1, timeout=60_000)
        await effects.until("started")
        call.cancel()
        await wire.recorder.heard.wait()
        assert wire.recorder.acknowledged == [(call.id, 499)]
        assert wire.child.server.running == 0

    run(main())


def test_a_cancel_for_a_task_that_just_finished_changes_nothing() -> None:
    async def main() -> None:
        gate = asyncio.Event()
        handlers = Handlers()

        async def work(_: Any) -> Any:
            await gate.wait()
            return "done"

        handlers.add("work", work)
        answers: list[tuple[str, Any]] = []
        answered = asyncio.Event()

        def respond(rid: str, result: Any, error: BaseException | None, ran: bool) -> None:
            answers.append((rid, result))
            answered.set()  # we wake before the task's done callbacks run

        server = Server(handlers, respond, asyncio.get_running_loop(), capacity=lambda: None)
        from peepsy.protocol import RequestReceived

        server.accept(RequestReceived("a", "work", None, None, 0, False))
        (task,) = server._tasks
        gate.set()
        await answered.wait()
        assert task.done()
        assert task in server._tasks
        assert server.cancel("a") is False
        assert answers == [("a", "done")]
        assert server._contexts == {}

    run(main())


def test_an_async_handler_that_finishes_anyway_has_its_answer_stand() -> None:
    async def main() -> None:
        handlers = Handlers()

        async def stubborn(_: Any) -> Any:
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                assert current_request().cancelled
                return "finished anyway"

        handlers.add("stubborn", stubborn)
        wire = Wire(handlers)
        with pytest.raises(PeepsyTimeoutError):
            await wire.master.call("stubborn", None, timeout=20)
        await wire.recorder.heard.wait()
        assert [status for _, status in wire.recorder.acknowledged] == [200]

    run(main())


def test_a_sync_handler_polling_its_context_stops_with_499() -> None:
    async def main() -> None:
        effects = Effects()
        handlers = Handlers()

        def polls(_: Any) -> Any:
            context = current_request()
            effects.add("started")
            while not context.wait_cancelled(0.01):
                pass
            effects.add(f"told {context.reason}")
            context.raise_if_cancelled()

        handlers.add("polls", polls)
        wire = Wire(handlers)
        call = wire.master.call("polls", None, timeout=60_000)
        await effects.until("started")
        call.cancel()
        await wire.recorder.heard.wait()
        assert wire.recorder.acknowledged == [(call.id, 499)]
        assert "told cancelled" in effects.seen

    run(main())


def test_a_sync_handler_that_ignores_its_context_is_answered_with_its_result() -> None:
    async def main() -> None:
        release = threading.Event()
        effects = Effects()
        handlers = Handlers()

        def ignores(_: Any) -> Any:
            effects.add("started")
            release.wait(LIMIT_S)
            effects.add(f"cancelled={current_request().cancelled}")
            return "done"

        handlers.add("ignores", ignores)
        wire = Wire(handlers)
        call = wire.master.call("ignores", None, timeout=60_000)
        await effects.until("started")
        call.cancel()  # its CANCEL is written now, and read at the loop's next pass
        await asyncio.sleep(0)
        # The thread cannot be stopped: it still runs, holding its slot.
        assert wire.child.server.running == 1
        release.set()
        await wire.recorder.heard.wait()
        assert wire.recorder.acknowledged == [(call.id, 200)]
        assert "cancelled=True" in effects.seen

    run(main())


def test_a_handler_raising_cancelled_itself_is_answered_499() -> None:
    async def main() -> None:
        handlers = Handlers()

        def gives_up(_: Any) -> Any:
            raise PeepsyCancelledError("not worth it")

        handlers.add("gives_up", gives_up, inline=True)
        wire = Wire(handlers)
        answer = await wire.master.call("gives_up", None, timeout=60_000)
        assert answer.status == 499
        error = error_from_wire(answer.response)
        assert (error.status, error.remote_code) == (499, "PEEPSY_CANCELLED")

    run(main())


def test_abandon_still_stops_handlers_without_answering() -> None:
    async def main() -> None:
        effects = Effects()
        release = threading.Event()
        handlers = Handlers()

        async def slow(_: Any) -> Any:
            await asyncio.sleep(0)  # in its task from here on
            effects.add("started")
            await asyncio.sleep(60)

        def blocked(_: Any) -> Any:
            effects.add("blocked")
            release.wait(LIMIT_S)

        handlers.add("slow", slow)
        handlers.add("blocked", blocked)
        wire = Wire(handlers)
        calls = [
            wire.master.call("slow", None, timeout=60_000),
            wire.master.call("blocked", None, timeout=60_000),
        ]
        await effects.until("started")
        await effects.until("blocked")
        tasks = list(wire.child.server._tasks)
        wire.child.server.abandon()
        await asyncio.wait(tasks)
        assert all(task.cancelled() for task in tasks)
        assert wire.child.server.running == 0
        assert wire.child.conn.owed == {c.id for c in calls}  # no answer written
        release.set()
        for call in calls:
            call.withdraw()

    run(main())


def test_an_async_handler_failing_after_it_waited_is_answered_500() -> None:
    async def main() -> None:
        handlers = Handlers()

        async def fails(_: Any) -> Any:
            await asyncio.sleep(0)
            raise ValueError("no")

        handlers.add("fails", fails)
        wire = Wire(handlers)
        assert (await wire.master.call("fails", None, timeout=60_000)).status == 500

    run(main())


# --- the request context ---------------------------------------------------------------


def test_every_kind_of_handler_sees_its_own_request() -> None:
    async def main() -> None:
        seen: dict[str, tuple[str, str]] = {}
        handlers = Handlers()

        def who(name: str) -> None:
            context = current_request()
            seen[name] = (context.id, context.action)

        async def eager(_: Any) -> Any:
            who("eager")

        async def waits(_: Any) -> Any:
            await asyncio.sleep(0)
            await asyncio.create_task(_child_task())
            who("waits")

        async def _child_task() -> None:
            who("task")

        def thread(_: Any) -> Any:
            who("thread")

        def inline(_: Any) -> Any:
            who("inline")

        handlers.add("eager", eager)
        handlers.add("waits", waits)
        handlers.add("thread", thread)
        handlers.add("inline", inline, inline=True)
        wire = Wire(handlers)
        calls = {
            name: wire.master.call(name, None, timeout=60_000)
            for name in ("eager", "waits", "thread", "inline")
        }
        for call in calls.values():
            assert (await call).status == 200
        assert seen == {
            "eager": (calls["eager"].id, "eager"),
            "waits": (calls["waits"].id, "waits"),
            "task": (calls["waits"].id, "waits"),
            "thread": (calls["thread"].id, "thread"),
            "inline": (calls["inline"].id, "inline"),
        }
        with pytest.raises(RuntimeError, match="only valid inside a handler"):
            current_request()

    run(main())


def test_the_context_api_on_its_own() -> None:
    context = RequestContext("m1", "act")
    assert not context.cancelled
    assert context.wait_cancelled(0) is False
    context.raise_if_cancelled()
    assert repr(context) == "RequestContext(id='m1', action='act')"
    assert context.cancel("timeout") is True
    assert context.wait_cancelled() is True  # the event made before is set
    assert context.cancel("again") is False
    assert context.reason == "timeout"
    with pytest.raises(PeepsyCancelledError) as info:
        context.raise_if_cancelled()
    assert (info.value.action, info.value.reason) == ("act", "timeout")
    assert "cancelled" in repr(context)
    # Cancelled before anyone waited: the event is made already set.
    early = RequestContext("m2", "act")
    early.cancel(None)
    assert early.wait_cancelled(0) is True
    with pytest.raises(PeepsyCancelledError, match=r"was cancelled by its sender$"):
        early.raise_if_cancelled()


def test_a_thread_waiting_on_the_context_wakes_when_cancelled() -> None:
    context = RequestContext("m1", "act")
    woke = threading.Event()

    def waiter() -> None:
        if context.wait_cancelled(LIMIT_S):
            woke.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    context.cancel("cancelled")
    thread.join(LIMIT_S)
    assert woke.is_set()


# --- the error and its status ----------------------------------------------------------


def test_cancelled_maps_to_499_and_is_never_retried() -> None:
    status, payload = error_to_wire(PeepsyCancelledError(), ran=True)
    assert (status, payload.name, payload.code) == (
        499,
        "PeepsyCancelledError",
        "PEEPSY_CANCELLED",
    )
    response = Response(type="RESPONSE", id="m1", status=499, error_payload=payload)
    back = error_from_wire(response)
    assert (back.status, back.remote_code, back.message) == (
        499,
        "PEEPSY_CANCELLED",
        "the request was cancelled",
    )
    policy = RetryPolicy(retries=3, statuses=(499, 500))
    assert not policy.allows(back)
    assert not policy.allows(PeepsyCancelledError())
    assert policy.allows(RemoteError("x", status=500))

"""The session engine on its own: two sessions wired back to back, no processes."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from peepsy import PeepsyTimeoutError, RemoteError
from peepsy._actions import Handlers
from peepsy._errors import PeepsyProcessError, RemoteProtocolError
from peepsy.protocol import Connection, ErrorPayload, Event, Role, UnmatchedResponse
from peepsy.session import Call, Deadlines, RetryPolicy, Server, Session, expire

LIMIT_S = 10


class Recorder:
    def __init__(self) -> None:
        self.answered: list[tuple[str, int]] = []
        self.timed_out: list[str] = []
        self.rejected: list[RemoteProtocolError] = []
        self.late: list[str] = []
        self.heard_late = asyncio.Event()
        self.lifecycle: list[Event] = []

    def on_answered(self, call: Call[Any], status: int) -> None:
        self.answered.append((call.action, status))

    def on_timed_out(self, call: Call[Any]) -> None:
        self.timed_out.append(call.action)

    def on_rejected(self, error: RemoteProtocolError) -> None:
        self.rejected.append(error)

    def on_late(self, event: UnmatchedResponse) -> None:
        self.late.append(event.response.id)
        self.heard_late.set()

    def on_lifecycle(self, event: Event) -> None:
        self.lifecycle.append(event)


class Listener:
    """Adapts a Recorder to the SessionListener protocol."""

    def __init__(self, recorder: Recorder) -> None:
        self.answered = recorder.on_answered
        self.timed_out = recorder.on_timed_out
        self.rejected = recorder.on_rejected
        self.late = recorder.on_late
        self.lifecycle = recorder.on_lifecycle

    def cancel_sent(self, call: Call[Any], reason: str) -> None:
        raise AssertionError("no CANCEL toward a peer that stated no 1.1")

    def cancel_acknowledged(self, request_id: str, status: int) -> None:
        raise AssertionError("nothing was cancelled")


def _never(_: Call[Any]) -> None:
    """A deadline wheel's callback that lets nothing time out."""


def pair(
    handlers: Handlers, *, capacity: int | None = None, master_times_out: bool = True
) -> tuple[Session, Session, Recorder, Deadlines[Call[Any]]]:
    """A master-side session whose lines reach a child-side one, and back.
    ``master_times_out=False``: the master's calls wait for their answer whatever their
    timeout, so that what the child does at the timeout is seen without a race."""
    loop = asyncio.get_running_loop()
    deadlines: Deadlines[Call[Any]] = Deadlines(loop, expire)
    master_deadlines = deadlines if master_times_out else Deadlines(loop, _never)
    recorder = Recorder()
    sides: dict[str, Session] = {}

    def server(session: Session) -> Server:
        return Server(handlers, session.respond, loop, capacity=lambda: capacity)

    def to_child(line: bytes) -> None:
        loop.call_soon(sides["child"].receive, line)

    def to_master(line: bytes) -> None:
        loop.call_soon(sides["master"].receive, line)

    master = Session(
        Connection(Role.MASTER),
        to_child,
        loop,
        master_deadlines,
        Listener(recorder),
        server,
        peer="w1",
    )
    child = Session(
        Connection(Role.CHILD),
        to_master,
        loop,
        deadlines,
        Listener(Recorder()),
        server,
        peer="master",
    )
    sides.update(master=master, child=child)
    return master, child, recorder, deadlines


def run(coro: Any) -> Any:
    async def bounded() -> Any:
        async with asyncio.timeout(LIMIT_S):
            return await coro

    return asyncio.run(bounded())


def test_a_call_is_answered_and_nothing_of_it_is_kept() -> None:
    handlers = Handlers()

    async def echo(data: Any) -> Any:
        return data

    handlers.add("echo", echo)

    async def main() -> None:
        master, _, recorder, deadlines = pair(handlers)
        calls = [master.call("echo", {"n": i}, timeout=60_000) for i in range(100)]
        answers = [await c for c in calls]
        assert [a.data for a in answers] == [{"n": i} for i in range(100)]
        assert master.outstanding == 0
        assert len(deadlines) == 0  # off the wheel the moment it was answered
        # No table of ours (the core's dict, the wheel's sets) refers to an answered call.
        gc.collect()
        assert not [r for r in gc.get_referrers(calls[0]) if isinstance(r, dict | set)]
        assert recorder.answered == [("echo", 200)] * 100

    run(main())


def test_an_unanswered_call_times_out_once_and_a_late_answer_is_only_counted() -> None:
    handlers = Handlers()
    gate = asyncio.Event()

    async def slow(data: Any) -> Any:
        await gate.wait()
        return data

    handlers.add("slow", slow)

    async def main() -> None:
        master, _, recorder, deadlines = pair(handlers)
        call = master.call("slow", 1, timeout=20)
        with pytest.raises(PeepsyTimeoutError, match="after 20ms for target: w1"):
            await call
        assert recorder.timed_out == ["slow"]
        gate.set()
        await recorder.heard_late.wait()
        assert recorder.late == [call.id]
        assert len(deadlines) == 0

    run(main())


def test_a_failure_answer_arrives_as_its_status_and_unknown_actions_get_404() -> None:
    handlers = Handlers()

    def boom(_: Any) -> Any:
        raise ValueError("no")

    handlers.add("boom", boom, inline=True)

    async def main() -> None:
        master, _, _, _ = pair(handlers)
        failed = await master.call("boom", None, timeout=1000)
        assert failed.status == 500
        missing = await master.call("nope", None, timeout=1000)
        assert missing.status == 404

    run(main())


def test_withdraw_releases_the_slot_once_and_forgets_the_id() -> None:
    released: list[int] = []

    class Slot:
        def release(self) -> None:
            released.append(1)

    async def main() -> None:
        master, _, _, deadlines = pair(Handlers())
        call = master.call("never", None, timeout=60_000, slot=Slot())
        call.withdraw()
        call.withdraw()
        assert released == [1]
        assert master.outstanding == 0
        assert len(deadlines) == 0

    run(main())


def test_fail_all_fails_every_waiting_call_with_its_own_error() -> None:
    async def main() -> None:
        gate = asyncio.Event()
        handlers = Handlers()

        async def wait(_: Any) -> Any:
            await gate.wait()

        handlers.add("wait", wait)
        master, _, _, deadlines = pair(handlers)
        calls = [master.call("wait", None, timeout=60_000) for _ in range(3)]
        assert master.fail_all(lambda c: PeepsyProcessError(f"gone: {c.id}")) == 3
        for call in calls:
            with pytest.raises(PeepsyProcessError, match=f"gone: {call.id}"):
                await call
        assert len(deadlines) == 0
        gate.set()

    run(main())


def test_the_server_queues_over_its_cap_and_expires_in_the_queue() -> None:
    gate = asyncio.Event()
    handlers = Handlers()

    async def wait(_: Any) -> Any:
        await gate.wait()
        return "done"

    handlers.add("wait", wait)

    async def main() -> None:
        # The master's own 30 ms would race the child's: only the child's counts here.
        master, child, _, _ = pair(handlers, capacity=1, master_times_out=False)
        first = master.call("wait", None, timeout=60_000)
        queued = master.call("wait", None, timeout=30)  # its REQUEST states 30 ms
        expired = await queued
        assert expired.status == 408  # answered from the queue, before its handler ran
        assert child.server.running == 1
        gate.set()
        assert (await first).data == "done"

    run(main())


def test_the_retry_policy_retries_only_what_cannot_have_run() -> None:
    policy = RetryPolicy(retries=2, delay=0, statuses=(500,))
    assert policy.allows(PeepsyTimeoutError("t"))
    assert policy.allows(RemoteError("x", status=503))
    assert policy.allows(RemoteError("x", status=500))
    assert not policy.allows(RemoteError("x", status=404))
    assert not RetryPolicy().allows(RemoteError("x", status=500))

    attempts: list[int] = []

    async def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise PeepsyTimeoutError("t")
        return "ok"

    async def main() -> None:
        assert await policy.run(flaky, "flaky") == "ok"
        assert len(attempts) == 3
        attempts.clear()
        with pytest.raises(PeepsyTimeoutError):
            await RetryPolicy(retries=1, delay=0).run(flaky, "flaky")
        assert len(attempts) == 2

    run(main())


# --- issue 10: no silent limits, end to end between two sessions ---------------------------


def _deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


def test_a_request_the_child_could_not_read_fails_when_sent() -> None:
    from peepsy.protocol import NestingTooDeepForPeer, NumberTooLongForPeer

    handlers = Handlers()

    async def echo(data: Any) -> Any:
        return data

    handlers.add("echo", echo)

    async def main() -> None:
        master, _, _, deadlines = pair(handlers)
        with pytest.raises(NestingTooDeepForPeer):
            master.call("echo", _deep(500), timeout=60_000)
        with pytest.raises(NumberTooLongForPeer):
            master.call("echo", [10**5000], timeout=60_000)
        assert master.outstanding == 0
        assert len(deadlines) == 0
        answer = await master.call("echo", _deep(254), timeout=60_000)
        assert answer.data == _deep(254)

    run(main())


@pytest.mark.parametrize(
    ("result", "code"),
    [(_deep(300), "PEEPSY_NESTING_TOO_DEEP"), ({"n": 10**5000}, "PEEPSY_NUMBER_TOO_LONG")],
)
def test_a_result_the_master_could_not_read_is_answered_as_a_failure(
    result: Any, code: str
) -> None:
    handlers = Handlers()

    async def produce(_: Any) -> Any:
        return result

    handlers.add("produce", produce)

    async def main() -> None:
        master, _, _, _ = pair(handlers)
        answer = await master.call("produce", None, timeout=60_000)
        assert answer.status == 500
        payload = answer.response.error_payload
        assert isinstance(payload, ErrorPayload)
        assert payload.code == code

    run(main())


def test_an_answer_with_a_number_beyond_a_double_fails_its_call_at_once() -> None:
    from peepsy.protocol import InvalidResponse

    async def main() -> None:
        loop = asyncio.get_running_loop()
        sides: list[Session] = []

        def peer(line: bytes) -> None:
            # A peer whose numbers overflow answers every request so.
            answer = b'{"type":"RESPONSE","id":"m1","status":200,"data":[1e999]}\n'
            loop.call_soon(sides[0].receive, answer)

        master = Session(
            Connection(Role.MASTER),
            peer,
            loop,
            Deadlines(loop, expire),
            Listener(Recorder()),
            lambda session: Server(Handlers(), session.respond, loop, capacity=lambda: None),
            peer="w1",
        )
        sides.append(master)
        with pytest.raises(InvalidResponse, match="double"):
            await master.call("echo", None, timeout=60_000)
        assert master.outstanding == 0

    run(main())

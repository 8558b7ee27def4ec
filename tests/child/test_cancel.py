"""Cancellation at the child (issue 11): what the master cancels is removed or stopped
through the shared Server, handlers see their request through
peepsy.child.current_request(), and the child's own requests to the master are
cancelled when it gives them up, if the master stated 1.1 in INIT (CANCEL-1)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

import pytest

from peepsy import Child, PeepsyTimeoutError
from peepsy.child import RequestContext, current_request
from peepsy.protocol import CancelReceived
from tests.child._support import FakeMaster, line, run, serving, until


def cancel(master: FakeMaster, rid: str, reason: str | None = None) -> None:
    extra = {} if reason is None else {"reason": reason}
    master.feed(line({"type": "CANCEL", "id": rid, **extra}))


def cancels_from(master: FakeMaster) -> list[CancelReceived]:
    return [e for e in master.events if isinstance(e, CancelReceived)]


def test_a_sequential_child_stops_the_running_handler_and_skips_the_queued_one() -> None:
    async def main() -> None:
        child = Child(mode="sequential")
        ran: list[str] = []
        stopped = asyncio.Event()

        @child.handler("slow")
        async def slow(data: Any) -> Any:
            ran.append(data)
            try:
                await asyncio.sleep(60)
            finally:
                stopped.set()

        @child.handler("fast")
        async def fast(data: Any) -> Any:
            ran.append(data)
            return data

        async with serving(child) as master:
            master.init("sequential", protocol="1.1")
            first = master.request("slow", "first")
            queued = master.request("slow", "queued")
            after = master.request("fast", "after")
            await until(lambda: ran == ["first"])
            cancel(master, queued, "timeout")
            assert (await master.response(queued)).status == 499  # CANCEL-3, at once
            assert master.payload(queued)["code"] == "PEEPSY_CANCELLED"
            cancel(master, first, "timeout")
            assert (await master.response(first)).status == 499  # CANCEL-4
            await stopped.wait()
            assert (await master.response(after)).data == "after"
            assert ran == ["first", "after"]  # the queued one never ran
            cancel(master, first)  # answered already: ignored (CANCEL-2)
            cancel(master, "m99")  # never sent: ignored
            assert child.requests_in_progress == 0

    run(main())


def test_a_sync_handler_sees_its_cancellation_in_its_thread() -> None:
    async def main() -> None:
        child = Child(mode="concurrent")
        contexts: list[RequestContext] = []
        started = threading.Event()

        @child.handler("poll")
        def poll(_: Any) -> Any:
            context = current_request()
            contexts.append(context)
            started.set()
            for _ in range(600):  # at most 60 s, in steps of 0.1 s
                if context.wait_cancelled(0.1):
                    context.raise_if_cancelled()
            return "never cancelled"  # pragma: no cover - the test cancels it

        async with serving(child) as master:
            rid = master.request("poll")
            await until(started.is_set)
            cancel(master, rid, "cancelled")
            response = await master.response(rid)
            assert response.status == 499
            assert isinstance(response.error, str)
            assert "cancelled by its sender (cancelled)" in response.error
            assert (contexts[0].id, contexts[0].action, contexts[0].reason) == (
                rid,
                "poll",
                "cancelled",
            )

    run(main())


def test_the_childs_own_request_is_cancelled_at_its_timeout_when_the_master_speaks_1_1(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        child = Child()
        async with serving(child) as master:
            master.init("sequential", protocol="1.1")
            await until(lambda: bool(master.readies))
            assert master.readies[0].protocol == "1.1"
            with pytest.raises(PeepsyTimeoutError):
                await child.request("slow", timeout=30)
            await until(lambda: bool(cancels_from(master)))
            (event,) = cancels_from(master)
            (request,) = master.requests
            assert (event.id, event.reason) == (request.id, "timeout")
            # The master's answer now acknowledges it: no late answer (CANCEL-5).
            with caplog.at_level(logging.DEBUG, logger="peepsy.child"):
                master.answer(request, 499, error="cancelled")
                await until(lambda: "answered 499 to cancelled" in caplog.text)
            assert "late RESPONSE" not in caplog.text

            # A caller that stops waiting cancels too.
            call = asyncio.ensure_future(child.request("slow", timeout=60_000))
            await until(lambda: len(master.requests) == 2)
            call.cancel()
            await until(lambda: len(cancels_from(master)) == 2)
            assert cancels_from(master)[1].reason == "cancelled"
            master.answer(master.requests[1], 200, "done anyway")

    run(main())


@pytest.mark.parametrize("stated", [None, "1.0"])
def test_a_master_that_does_not_speak_1_1_is_never_sent_cancel(stated: str | None) -> None:
    async def main() -> None:
        child = Child()
        async with serving(child) as master:
            if stated is not None:
                master.init("sequential", protocol=stated)
            else:
                master.init("sequential")
            with pytest.raises(PeepsyTimeoutError):
                await child.request("slow", timeout=30)
            call = asyncio.ensure_future(child.request("slow", timeout=60_000))
            await until(lambda: len(master.requests) == 2)
            call.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await call
            for request in master.requests:
                master.answer(request, 200)
            assert cancels_from(master) == []
            assert b'"CANCEL"' not in b"".join(master.written)

    run(main())


def test_current_request_is_exported_from_the_child_package() -> None:
    import peepsy
    import peepsy.child

    assert peepsy.child.current_request is peepsy.current_request
    assert peepsy.child.RequestContext is peepsy.RequestContext
    with pytest.raises(RuntimeError):
        current_request()

"""Issue 11, the master's side: CANCEL on timeout and on the caller's cancellation, on
both request paths, to children that stated protocol 1.1 only; the acknowledgement; group
slots released once; CANCEL at a shutdown's deadline."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from peepsy import (
    Action,
    ErrorEvent,
    PeepsyCancelledError,
    PeepsyProcessError,
    PeepsyTimeoutError,
)
from peepsy.protocol import RequestReceived
from tests.master._support import Farm, Peer, echo, hold, run, settle, until


async def spawn_speaking(
    farm: Farm, master: Any, target: str, group: str | None = None, **options: Any
) -> Peer:
    """Spawn ``target`` and wait until the master has read its READY (the version)."""
    peer = await farm.spawn(master, target, group, **options)
    await until(lambda: master.get_process_stats(target).actions is not None)
    return peer


def hold_slow(peer: Peer, request: RequestReceived) -> None:
    """Hold ``slow`` (the test answers it, or not); echo the rest."""
    if request.action != "slow":
        echo(peer, request)


def errors_of(master: Any) -> list[ErrorEvent]:
    errors: list[ErrorEvent] = []
    master.on("error", errors.append)
    return errors


# --- timeouts ------------------------------------------------------------------------------


def test_a_timeout_sends_cancel_and_the_499_is_its_acknowledgement() -> None:
    async def main() -> None:
        farm = Farm(hold_slow, protocol="1.1")
        async with farm.master() as master:
            w1 = await spawn_speaking(farm, master, "w1")
            errors = errors_of(master)
            with pytest.raises(PeepsyTimeoutError):
                await master.request("slow", "w1", None, timeout=30)
            await until(lambda: len(w1.cancels) == 1)
            rid = w1.requests[0].id
            assert w1.cancels == [{"type": "CANCEL", "id": rid, "reason": "timeout"}]
            stats = master.get_process_stats("w1")
            assert (stats.cancels_sent, stats.cancels_acknowledged, stats.timeouts) == (1, 0, 1)
            w1.reply(rid, 499, error="cancelled")
            await until(lambda: master.get_process_stats("w1").cancels_acknowledged == 1)
            stats = master.get_process_stats("w1")
            # CANCEL-5: the answer is the acknowledgement, not a late answer nor an error.
            assert (stats.late_responses, stats.rejected_lines, stats.stuck) == (0, 0, 0)
            assert errors == []
            assert (await master.request("echo", "w1", 1, timeout=1000)) is not None

    run(main())


def test_a_handler_that_finished_anyway_acknowledges_with_its_own_answer() -> None:
    async def main() -> None:
        farm = Farm(hold, protocol="1.1")
        async with farm.master() as master:
            w1 = await spawn_speaking(farm, master, "w1")
            with pytest.raises(PeepsyTimeoutError):
                await master.request("slow", "w1", None, timeout=30)
            await until(lambda: len(w1.cancels) == 1)
            w1.reply(w1.requests[0], 200, "done anyway")  # CANCEL-4: its answer stands
            await until(lambda: master.get_process_stats("w1").cancels_acknowledged == 1)
            assert master.get_process_stats("w1").late_responses == 0

    run(main())


# --- the caller's cancellation, on both request paths ------------------------------------


def test_task_cancel_on_the_immediate_path_sends_cancel() -> None:
    async def main() -> None:
        farm = Farm(hold, protocol="1.1")
        async with farm.master() as master:
            w1 = await spawn_speaking(farm, master, "w1")
            task = asyncio.ensure_future(master.request("slow", "w1", None, timeout=5000))
            request = await w1.next_request()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await until(lambda: len(w1.cancels) == 1)
            assert w1.cancels[0] == {"type": "CANCEL", "id": request.id, "reason": "cancelled"}
            assert master.active_requests == 0
            w1.reply(request, 499, error="cancelled")
            await until(lambda: master.get_process_stats("w1").cancels_acknowledged == 1)

    run(main())


def test_wait_for_on_the_immediate_path_sends_cancel() -> None:
    async def main() -> None:
        farm = Farm(hold, protocol="1.1")
        async with farm.master() as master:
            w1 = await spawn_speaking(farm, master, "w1")
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(master.request("slow", "w1", None, timeout=5000), 0.02)
            await until(lambda: len(w1.cancels) == 1)
            assert w1.cancels[0]["reason"] == "cancelled"
            assert w1.cancels[0]["id"] == w1.requests[0].id

    run(main())


ECHO: Action[int, int] = Action("slow", int, int)


@pytest.mark.parametrize("how", ["asyncio.timeout", "task.cancel", "wait_for"])
def test_the_general_path_sends_cancel(how: str) -> None:
    # A typed action always takes Router._request and _attempt.
    async def main() -> None:
        farm = Farm(hold, protocol="1.1")
        async with farm.master() as master:
            w1 = await spawn_speaking(farm, master, "w1")
            if how == "asyncio.timeout":
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.02):
                        await master.request(ECHO, "w1", 1, timeout=5000)
            elif how == "wait_for":
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(master.request(ECHO, "w1", 1, timeout=5000), 0.02)
            else:
                task = asyncio.ensure_future(master.request(ECHO, "w1", 1, timeout=5000))
                await w1.next_request()
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            await until(lambda: len(w1.cancels) == 1)
            assert w1.cancels[0] == {
                "type": "CANCEL",
                "id": w1.requests[0].id,
                "reason": "cancelled",
            }
            assert master.active_requests == 0

    run(main())


def test_a_timeout_on_the_general_path_sends_cancel() -> None:
    async def main() -> None:
        farm = Farm(hold, protocol="1.1")
        async with farm.master(max_retries=1, retry_delay=1) as master:
            w1 = await spawn_speaking(farm, master, "w1")
            with pytest.raises(PeepsyTimeoutError):
                await master.request("slow", "w1", None, timeout=20)
            # Each attempt is cancelled when it times out.
            await until(lambda: len(w1.cancels) == 2)
            assert [c["id"] for c in w1.cancels] == [r.id for r in w1.requests]
            assert {c["reason"] for c in w1.cancels} == {"timeout"}

    run(main())


# --- group slots ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["immediate", "general"])
def test_a_cancelled_request_gives_its_group_slot_back_once(path: str) -> None:
    async def main() -> None:
        farm = Farm(hold, protocol="1.1")
        async with farm.master() as master:
            master.configure_group("g", max_concurrency=1)
            w1 = await spawn_speaking(farm, master, "w1", "g")
            action: Any = "slow" if path == "immediate" else ECHO
            task = asyncio.ensure_future(master.request(action, "g", 1, timeout=5000))
            first = await w1.next_request()
            assert master.get_group_stats("g").active_requests == 1
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert master.get_group_stats("g").active_requests == 0
            await until(lambda: len(w1.cancels) == 1)
            w1.reply(first, 499, error="cancelled")  # the acknowledgement releases nothing
            await until(lambda: master.get_process_stats("w1").cancels_acknowledged == 1)
            assert master.get_group_stats("g").active_requests == 0
            # The cap still admits one at a time, and only one.
            calls = [
                asyncio.ensure_future(master.request("slow", "g", i, timeout=5000))
                for i in range(2)
            ]
            second = await w1.next_request()
            await settle()
            stats = master.get_group_stats("g")
            assert (stats.active_requests, stats.queued_requests) == (1, 1)
            w1.reply(second, data="a")
            third = await w1.next_request()
            w1.reply(third, data="b")
            assert [r.data for r in await asyncio.gather(*calls)] == ["a", "b"]
            stats = master.get_group_stats("g")
            assert (stats.active_requests, stats.queued_requests) == (0, 0)

    run(main())


# --- a 1.0 peer is never sent CANCEL ------------------------------------------------------


@pytest.mark.parametrize("stated", [None, "1.0"])
def test_a_1_0_child_is_never_sent_cancel(stated: str | None) -> None:
    async def main() -> None:
        farm = Farm(hold, protocol=stated)
        async with farm.master(stall_grace=5000) as master:
            w1 = await farm.spawn(master, "w1")
            if stated is not None:
                await until(lambda: master.get_process_stats("w1").actions is not None)
            with pytest.raises(PeepsyTimeoutError):
                await master.request("slow", "w1", None, timeout=20)
            task = asyncio.ensure_future(master.request("slow", "w1", None, timeout=5000))
            await w1.next_request(1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            w1.reply(w1.requests[0], 200, "late")
            await until(lambda: master.get_process_stats("w1").late_responses == 1)
            stats = master.get_process_stats("w1")
            assert (stats.cancels_sent, stats.cancels_acknowledged) == (0, 0)
            assert w1.cancels == []

    run(main())


# --- shutdown ------------------------------------------------------------------------------


def test_shutdown_cancels_what_still_runs_at_its_deadline_before_closing_input() -> None:
    async def main() -> None:
        farm = Farm(hold, protocol="1.1", exit_on_shutdown=False, exit_on_eof=False)
        async with farm.master() as master:
            w1 = await spawn_speaking(farm, master, "w1")
            call = asyncio.ensure_future(master.request("slow", "w1", None, timeout=10_000))
            request = await w1.next_request()
            stopping = asyncio.ensure_future(master.shutdown_child("w1", timeout=30))
            await until(lambda: len(w1.cancels) == 1)
            assert w1.cancels[0] == {"type": "CANCEL", "id": request.id, "reason": "shutdown"}
            assert not w1.eof  # the cancel's grace comes before the input is closed
            w1.reply(request, 499, error="cancelled")
            w1.exit(0)
            assert await stopping == 0
            assert not w1.eof
            with pytest.raises(PeepsyCancelledError) as caught:  # settled at the deadline
                await call
            assert caught.value.reason == "shutdown"
            assert master.targets == []

    run(main())


def test_shutdown_sends_no_cancel_when_nothing_runs_or_to_a_1_0_child() -> None:
    async def main() -> None:
        for protocol in ("1.1", None):
            farm = Farm(hold, protocol=protocol, exit_on_shutdown=False, exit_on_eof=True)
            async with farm.master() as master:
                w1 = await farm.spawn(master, "w1")
                await settle()
                if protocol is None:  # a 1.0 child holding a request
                    call = asyncio.ensure_future(master.request("slow", "w1", None, timeout=10_000))
                    await w1.next_request()
                # Straight from the deadline to closing the input (which ends it here).
                assert await master.shutdown_child("w1", timeout=20) == 0
                assert w1.eof
                assert w1.cancels == []
                if protocol is None:
                    with pytest.raises(PeepsyProcessError):
                        await call

    run(main())

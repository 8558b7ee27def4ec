"""Groups: load-balancing strategies and the group concurrency cap (SCHED-4, Node defects
1 and 3)."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest

from peepsy import (
    EncodeError,
    LocalProtocolError,
    Master,
    PeepsyNotFoundError,
    PeepsyProcessError,
    PeepsyShutdownError,
    PeepsyTimeoutError,
    Reply,
)
from tests.master._support import Farm, hold, in_flight_is, run, settle, until


async def spawn_group(
    farm: Farm, master: Master[Any, Any], group: str, *targets: str, **options: Any
) -> None:
    for target in targets:
        await farm.spawn(master, target, group, **options)


def answered_by(replies: list[Reply[Any]]) -> list[str]:
    return [r.target for r in replies]


# --- configure_group ------------------------------------------------------------------


def test_unknown_strategy_is_refused() -> None:
    master = Farm().master()
    with pytest.raises(ValueError, match=r"unknown strategy 'fastest'.*round-robin"):
        master.configure_group("g", strategy="fastest")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [0, -1])
def test_max_concurrency_below_one_is_refused(value: int) -> None:
    master = Farm().master()
    with pytest.raises(ValueError, match=r"max_concurrency.*1"):
        master.configure_group("g", max_concurrency=value)


@pytest.mark.parametrize(
    ("value", "error"), [(1.5, ValueError), (True, ValueError), ("2", TypeError)]
)
def test_max_concurrency_that_is_not_an_integer_is_refused(
    value: object, error: type[Exception]
) -> None:
    # As for timeouts (True, 1.5 -> ValueError): 1.5 would let 2 requests in flight; a
    # value that is not a number at all is a TypeError.
    master = Farm().master()
    with pytest.raises(error, match="max_concurrency"):
        master.configure_group("g", max_concurrency=value)  # type: ignore[arg-type]


def test_a_child_name_is_not_a_group() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            await farm.spawn(master, "w1")
            with pytest.raises(ValueError, match="'w1' is a child, not a group"):
                master.configure_group("w1", strategy="random")

    run(main())


def test_configuration_shows_in_group_stats() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            master.configure_group("g", strategy="least-busy", max_concurrency=3)
            master.configure_group("g", auto_restart=False)
            await spawn_group(farm, master, "g", "w1", "w2")
            stats = master.get_group_stats("g")
            assert stats.group == "g"
            assert stats.strategy == "least-busy"
            assert stats.max_concurrency == 3
            assert stats.auto_restart is False
            assert sorted(stats.processes) == ["w1", "w2"]
            assert stats.processes["w1"].group == "g"
            assert (stats.total_requests, stats.active_requests, stats.queued_requests) == (0, 0, 0)
            with pytest.raises(PeepsyNotFoundError, match="nope"):
                master.get_group_stats("nope")

    run(main())


def test_default_group_strategy_is_round_robin_without_cap() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            await farm.spawn(master, "w1", "g")
            stats = master.get_group_stats("g")
            assert (stats.strategy, stats.max_concurrency, stats.auto_restart) == (
                "round-robin",
                None,
                True,
            )

    run(main())


# --- strategies -------------------------------------------------------------------------


def test_round_robin_cycles_through_members_in_order() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            await spawn_group(farm, master, "g", "w1", "w2", "w3")
            replies = [await master.request("echo", "g", i) for i in range(7)]
            assert answered_by(replies) == ["w1", "w2", "w3", "w1", "w2", "w3", "w1"]
            assert [r.data for r in replies] == list(range(7))
            stats = master.get_group_stats("g")
            assert stats.total_requests == 7
            assert {t: p.requests_handled for t, p in stats.processes.items()} == {
                "w1": 3,
                "w2": 2,
                "w3": 2,
            }

    run(main())


def test_round_robin_skips_a_dead_member() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            await spawn_group(farm, master, "g", "w1", "w2", "w3", auto_restart=False)
            farm.peer("w2").exit(1)
            await until(lambda: not master.is_process_alive("w2"))
            replies = [await master.request("echo", "g", i) for i in range(4)]
            assert "w2" not in answered_by(replies)
            assert sorted(answered_by(replies)) == ["w1", "w1", "w3", "w3"]

    run(main())


def test_least_busy_picks_the_member_with_fewest_in_flight() -> None:
    async def main() -> None:
        farm = Farm(auto=hold)
        async with farm.master() as master:
            master.configure_group("g", strategy="least-busy")
            await spawn_group(farm, master, "g", "w1", "w2", "w3")
            w1, w2, w3 = (farm.peer(t) for t in ("w1", "w2", "w3"))
            # Load w1 with two requests and w2 with one (direct to the members).
            held = [
                asyncio.ensure_future(master.request("x", "w1")),
                asyncio.ensure_future(master.request("x", "w1")),
                asyncio.ensure_future(master.request("x", "w2")),
            ]
            await until(lambda: len(w1.requests) == 2 and len(w2.requests) == 1)
            first = asyncio.ensure_future(master.request("y", "g"))
            await until(lambda: len(w3.requests) == 1)
            # Now w2 and w3 have one each: the tie goes to the first member in order.
            second = asyncio.ensure_future(master.request("y", "g"))
            await until(lambda: len(w2.requests) == 2)
            assert master.get_active_requests_count() == 5
            # Answer everything held by w1: it becomes the least busy.
            for request in list(w1.unanswered.values()):
                w1.reply(request)
            await asyncio.gather(*held[:2])
            third = asyncio.ensure_future(master.request("y", "g"))
            await until(lambda: len(w1.requests) == 3)
            assert w1.requests[2].action == "y"
            for peer in (w1, w2, w3):
                for request in list(peer.unanswered.values()):
                    peer.reply(request, data=peer.target)
            assert [(await f).data for f in (first, second, third)] == ["w3", "w2", "w1"]
            await held[2]

    run(main())


def test_random_picks_only_live_members() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            master.configure_group("g", strategy="random")
            await spawn_group(farm, master, "g", "w1", "w2", "w3", auto_restart=False)
            random.seed(7)
            replies = [await master.request("echo", "g", i) for i in range(30)]
            assert set(answered_by(replies)) == {"w1", "w2", "w3"}
            farm.peer("w1").exit(0)
            await until(lambda: not master.is_process_alive("w1"))
            replies = [await master.request("echo", "g", i) for i in range(30)]
            assert set(answered_by(replies)) == {"w2", "w3"}

    run(main())


def test_no_live_member_fails_with_a_process_error() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            await spawn_group(farm, master, "g", "w1", auto_restart=False)
            master.configure_group("g", max_concurrency=1)
            farm.peer("w1").exit(3)
            await until(lambda: not master.is_process_alive("w1"))
            with pytest.raises(PeepsyProcessError, match="no running member in group g"):
                await master.request("echo", "g", 1)
            # The failed pick gave its slot back.
            assert master.get_group_stats("g").active_requests == 0

    run(main())


def test_an_empty_configured_group_has_no_running_member() -> None:
    async def main() -> None:
        master = Farm().master()
        master.configure_group("empty", strategy="random")
        with pytest.raises(PeepsyProcessError, match="no running member in group empty"):
            await master.request("x", "empty", timeout=100)
        await master.graceful_shutdown()

    run(main())


# --- max_concurrency (SCHED-4; Node defects 1 and 3) ----------------------------------------


def test_cap_holds_at_most_n_in_flight_at_the_children() -> None:
    async def main() -> None:
        farm = Farm(auto=hold)
        async with farm.master() as master:
            master.configure_group("g", max_concurrency=2)
            await spawn_group(farm, master, "g", "w1", "w2", "w3")
            calls = [asyncio.ensure_future(master.request("x", "g", i)) for i in range(7)]
            await settle()
            assert farm.in_flight == 2
            stats = master.get_group_stats("g")
            assert (stats.active_requests, stats.queued_requests) == (2, 5)
            # Answer one at a time, always the oldest held; the cap is never exceeded.
            done = 0
            while done < 7:
                await until(in_flight_is(farm, min(2, 7 - done)))
                peer = next(p for p in farm.peers if p.unanswered)
                peer.reply(next(iter(peer.unanswered.values())), data=done)
                done += 1
            results = await asyncio.gather(*calls)
            assert len(results) == 7
            assert farm.peak_in_flight == 2
            stats = master.get_group_stats("g")
            assert (stats.active_requests, stats.queued_requests) == (0, 0)

    run(main())


def test_cap_counts_requests_sent_to_a_member_by_name() -> None:
    async def main() -> None:
        farm = Farm(auto=hold)
        async with farm.master() as master:
            master.configure_group("g", max_concurrency=1)
            await spawn_group(farm, master, "g", "w1", "w2")
            first = asyncio.ensure_future(master.request("x", "w1"))
            second = asyncio.ensure_future(master.request("x", "w2"))
            await settle()
            assert farm.in_flight == 1
            assert master.get_group_stats("g").queued_requests == 1
            farm.peer("w1").reply(farm.peer("w1").requests[0])
            await first
            await until(lambda: len(farm.peer("w2").requests) == 1)
            farm.peer("w2").reply(farm.peer("w2").requests[0])
            await second

    run(main())


def test_queued_requests_go_by_priority_then_arrival() -> None:
    async def main() -> None:
        farm = Farm(auto=hold)
        async with farm.master() as master:
            master.configure_group("g", max_concurrency=1)
            peer = await farm.spawn(master, "w1", "g")
            blocker = asyncio.ensure_future(master.request("x", "g", "blocker"))
            await until(lambda: len(peer.requests) == 1)
            order = [("low-a", 0), ("high-a", 5), ("low-b", 0), ("high-b", 5), ("neg", -3)]
            calls = []
            for label, priority in order:
                calls.append(
                    asyncio.ensure_future(master.request("x", "g", label, priority=priority))
                )
                await settle(2)
            assert master.get_group_stats("g").queued_requests == 5
            peer.reply(peer.requests[0], data="blocker")
            for index in range(1, 6):
                request = await peer.next_request(index)
                peer.reply(request, data=request.data)
            assert [r.data for r in peer.requests] == [
                "blocker",
                "high-a",
                "high-b",
                "low-a",
                "low-b",
                "neg",
            ]
            # The priority travels with the request (REQ-5).
            assert [r.priority for r in peer.requests[1:]] == [5, 5, 0, 0, -3]
            await asyncio.gather(blocker, *calls)

    run(main())


def test_a_queued_request_times_out_while_waiting() -> None:
    async def main() -> None:
        farm = Farm(auto=hold)
        async with farm.master() as master:
            master.configure_group("g", max_concurrency=1)
            peer = await farm.spawn(master, "w1", "g")
            blocker = asyncio.ensure_future(master.request("x", "g", timeout=5000))
            await until(lambda: len(peer.requests) == 1)
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(PeepsyTimeoutError, match=r"after 80ms for target: g") as info:
                await master.request("x", "g", timeout=80)
            assert loop.time() - started >= 0.075
            assert info.value.timeout_ms == 80
            assert info.value.target == "g"
            # The queued request never reached the child, and left no trace in the queue.
            assert len(peer.requests) == 1
            stats = master.get_group_stats("g")
            assert (stats.active_requests, stats.queued_requests) == (1, 0)
            peer.reply(peer.requests[0])
            await blocker
            assert master.get_group_stats("g").active_requests == 0
            # The slot is free again: the next request goes straight through.
            follow = asyncio.ensure_future(master.request("x", "g"))
            await until(lambda: len(peer.requests) == 2)
            peer.reply(peer.requests[1], data="ok")
            assert (await follow).data == "ok"

    run(main())


def test_a_request_admitted_late_gets_only_the_rest_of_its_timeout() -> None:
    async def main() -> None:
        farm = Farm(auto=hold)
        async with farm.master() as master:
            master.configure_group("g", max_concurrency=1)
            peer = await farm.spawn(master, "w1", "g")
            blocker = asyncio.ensure_future(master.request("x", "g"))
            await until(lambda: len(peer.requests) == 1)
            waiting = asyncio.ensure_future(master.request("x", "g", timeout=1000))
            await asyncio.sleep(0.3)
            peer.reply(peer.requests[0])
            await blocker
            request = await peer.next_request(1)
            # It waited about 300 ms of its 1000: the child is told what is left.
            assert request.timeout is not None
            assert 1 <= request.timeout <= 700
            peer.reply(request)
            await waiting

    run(main())


def test_capacity_is_released_after_a_timeout_at_the_child() -> None:
    async def main() -> None:
        farm = Farm(auto=hold)
        async with farm.master() as master:
            master.configure_group("g", max_concurrency=1)
            peer = await farm.spawn(master, "w1", "g")
            with pytest.raises(PeepsyTimeoutError):
                await master.request("x", "g", timeout=60)
            assert master.get_group_stats("g").active_requests == 0
            follow = asyncio.ensure_future(master.request("x", "g"))
            await until(lambda: len(peer.requests) == 2)
            peer.reply(peer.requests[1])
            await follow
            stats = master.get_group_stats("g")
            assert (stats.active_requests, stats.queued_requests) == (0, 0)

    run(main())


def test_capacity_is_released_when_a_member_dies() -> None:
    async def main() -> None:
        farm = Farm(auto=hold)
        async with farm.master() as master:
            master.configure_group("g", max_concurrency=2)
            await spawn_group(farm, master, "g", "w1", "w2", auto_restart=False)
            calls = [asyncio.ensure_future(master.request("x", "g", i)) for i in range(2)]
            queued = asyncio.ensure_future(master.request("x", "g", 99))
            await settle()
            assert master.get_group_stats("g").queued_requests == 1
            farm.peer("w1").exit(1)
            with pytest.raises(PeepsyProcessError):
                await calls[0]
            # The freed slot went to the queued request, which went to the live member.
            w2 = farm.peer("w2")
            await until(lambda: len(w2.requests) == 2)
            for request in list(w2.unanswered.values()):
                w2.reply(request, data=request.data)
            assert (await queued).data == 99
            await calls[1]
            stats = master.get_group_stats("g")
            assert (stats.active_requests, stats.queued_requests) == (0, 0)

    run(main())


def test_capacity_is_released_when_the_caller_gives_up() -> None:
    async def main() -> None:
        farm = Farm(auto=hold)
        async with farm.master() as master:
            master.configure_group("g", max_concurrency=1)
            peer = await farm.spawn(master, "w1", "g")
            in_flight = asyncio.ensure_future(master.request("x", "g"))
            queued = asyncio.ensure_future(master.request("x", "g"))
            await settle()
            assert master.get_group_stats("g").queued_requests == 1
            queued.cancel()
            await settle()
            assert master.get_group_stats("g").queued_requests == 0
            in_flight.cancel()
            await settle()
            stats = master.get_group_stats("g")
            assert (stats.active_requests, stats.queued_requests) == (0, 0)
            assert master.get_process_stats("w1").requests_active == 0
            # A cancelled request's answer, if it still comes, is late and dropped.
            peer.reply(peer.requests[0])
            await until(lambda: master.get_process_stats("w1").late_responses == 1)
            follow = asyncio.ensure_future(master.request("x", "g"))
            await until(lambda: len(peer.requests) == 2)
            peer.reply(peer.requests[1], data="next")
            assert (await follow).data == "next"

    run(main())


def test_a_caller_cancelled_as_its_slot_is_granted_stays_cancelled() -> None:
    # The slot is granted (the blocker's answer arrives) and the caller cancels in the
    # same loop iteration. The cancel must win: nothing is sent, the slot goes on to the
    # next waiter. (On Python 3.11 asyncio.wait_for swallows a cancel that arrives as the
    # awaited future completes, so a master built on it sends the request anyway.)
    async def main() -> None:
        farm = Farm(auto=hold)
        async with farm.master() as master:
            master.configure_group("g", max_concurrency=1)
            peer = await farm.spawn(master, "w1", "g")
            blocker = asyncio.ensure_future(master.request("x", "g", "blocker"))
            await until(lambda: len(peer.requests) == 1)
            queued = asyncio.ensure_future(master.request("x", "g", "queued"))
            later = asyncio.ensure_future(master.request("x", "g", "later"))
            await settle()
            peer.reply(peer.requests[0])
            await settle(1)  # the answer is in: the first waiter has just been admitted
            queued.cancel()
            await blocker
            request = await peer.next_request(1)
            peer.reply(request, data=request.data)
            for _ in range(3):
                for extra in list(peer.unanswered.values()):
                    peer.reply(extra, data=extra.data)
                await settle()
            assert queued.cancelled(), "the cancelled request went ahead"
            assert [r.data for r in peer.requests] == ["blocker", "later"]
            assert (await later).data == "later"
            stats = master.get_group_stats("g")
            assert (stats.active_requests, stats.queued_requests) == (0, 0)

    run(main())


def test_raising_the_cap_admits_waiting_requests() -> None:
    async def main() -> None:
        farm = Farm(auto=hold)
        async with farm.master() as master:
            master.configure_group("g", max_concurrency=1)
            peer = await farm.spawn(master, "w1", "g")
            calls = [asyncio.ensure_future(master.request("x", "g", i)) for i in range(3)]
            await settle()
            assert len(peer.requests) == 1
            master.configure_group("g", max_concurrency=3)
            await until(lambda: len(peer.requests) == 3)
            for request in list(peer.unanswered.values()):
                peer.reply(request)
            await asyncio.gather(*calls)

    run(main())


def test_shutdown_fails_queued_waiters_and_refuses_new_requests() -> None:
    async def main() -> None:
        farm = Farm(auto=hold)
        master = farm.master()
        master.configure_group("g", max_concurrency=1)
        peer = await farm.spawn(master, "w1", "g")
        blocker = asyncio.ensure_future(master.request("x", "g"))
        queued = [asyncio.ensure_future(master.request("x", "g", i)) for i in range(2)]
        await settle()
        assert master.get_group_stats("g").queued_requests == 2
        shutdown = asyncio.ensure_future(master.graceful_shutdown(timeout=2000))
        for call in queued:
            with pytest.raises(PeepsyShutdownError, match="shutting down"):
                await call
        with pytest.raises(PeepsyShutdownError):
            await master.request("x", "g")
        with pytest.raises(PeepsyShutdownError):
            await master.spawn_child("w2", ["peer", "w2"])
        await shutdown
        # The in-flight request died with its child, which got SHUTDOWN and exited.
        assert peer.shutdowns == 1
        with pytest.raises(PeepsyProcessError):
            await blocker

    run(main())


def test_a_request_by_name_waiting_for_its_group_fails_cleanly_if_the_child_is_stopped() -> None:
    async def main() -> None:
        farm = Farm(auto=hold)
        async with farm.master() as master:
            master.configure_group("g", max_concurrency=1)
            await spawn_group(farm, master, "g", "w1", "w2")
            w2 = farm.peer("w2")
            blocker = asyncio.ensure_future(master.request("x", "w2"))
            await until(lambda: len(w2.requests) == 1)
            waiting = asyncio.ensure_future(master.request("x", "w1"))
            await settle()
            await master.shutdown_child("w1", timeout=1000)
            w2.reply(w2.requests[0])
            await blocker
            with pytest.raises((PeepsyNotFoundError, PeepsyProcessError)):
                await waiting
            stats = master.get_group_stats("g")
            assert (stats.active_requests, stats.queued_requests) == (0, 0)

    run(main())


def test_a_request_admitted_after_its_deadline_fails_without_reaching_the_child() -> None:
    async def main() -> None:
        farm = Farm(auto=hold)
        async with farm.master() as master:
            master.configure_group("g", max_concurrency=1)
            peer = await farm.spawn(master, "w1", "g")
            blocker = asyncio.ensure_future(master.request("x", "g"))
            await until(lambda: len(peer.requests) == 1)
            queued = asyncio.ensure_future(master.request("x", "g", "queued", timeout=100))
            await asyncio.sleep(0.02)
            # The slot frees, then the loop stalls past the queued request's deadline
            # before it can resume: it must not be sent with no time left.
            peer.reply(peer.requests[0])
            asyncio.get_running_loop().call_soon(time.sleep, 0.15)
            await blocker
            with pytest.raises(PeepsyTimeoutError, match="after 100ms for target: g"):
                await queued
            await settle()
            assert len(peer.requests) == 1
            stats = master.get_group_stats("g")
            assert (stats.active_requests, stats.queued_requests) == (0, 0)

    run(main())


def test_shutdown_with_expired_waiters_still_queued() -> None:
    async def main() -> None:
        farm = Farm(auto=hold)
        master = farm.master()
        master.configure_group("g", max_concurrency=1)
        peer = await farm.spawn(master, "w1", "g")
        blocker = asyncio.ensure_future(master.request("x", "g"))
        await until(lambda: len(peer.requests) == 1)
        with pytest.raises(PeepsyTimeoutError):
            await master.request("x", "g", timeout=30)
        gave_up = asyncio.ensure_future(master.request("x", "g"))
        await settle()
        gave_up.cancel()
        await settle()
        assert master.get_group_stats("g").queued_requests == 0
        await master.graceful_shutdown(timeout=1000)
        with pytest.raises(PeepsyProcessError):
            await blocker
        assert master.get_group_stats("g").active_requests == 0

    run(main())


def test_a_request_that_cannot_be_written_releases_its_slot() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            master.configure_group("g", max_concurrency=1)
            peer = await farm.spawn(master, "w1", "g")
            with pytest.raises(EncodeError):
                await master.request("x", "g", object())
            with pytest.raises(LocalProtocolError):
                await master.request("x", "g", 1, priority=2**31)
            with pytest.raises(EncodeError):
                await master.request("x", "w1", {"bad": object()})
            assert peer.requests == []
            stats = master.get_group_stats("g")
            assert (stats.active_requests, stats.queued_requests) == (0, 0)
            assert master.get_process_stats("w1").requests_active == 0
            assert (await master.request("x", "g", 1)).data == 1

    run(main())

"""Timeouts against real children: a group's concurrency cap never leaks (Node defect 1)
and answers that come after a timeout are counted, never delivered (ID-4)."""

from __future__ import annotations

import asyncio

import pytest

from peepsy import Master, PeepsyTimeoutError
from tests.process._support import eventually, peepsy_worker, run


def test_timeouts_under_a_group_cap_do_not_leak_capacity() -> None:
    async def main() -> None:
        async with Master() as m:
            m.configure_group("capped", max_concurrency=2)
            await m.spawn_child("c1", peepsy_worker("concurrent"), group="capped")
            await m.spawn_child("c2", peepsy_worker("concurrent"), group="capped")
            for _ in range(3):  # a few rounds: a leak would pile up
                results = await asyncio.gather(
                    *(m.request("sleep", "capped", 1200, timeout=250) for _ in range(10)),
                    return_exceptions=True,
                )
                assert all(isinstance(r, PeepsyTimeoutError) for r in results), results
                stats = m.get_group_stats("capped")
                assert (stats.active_requests, stats.queued_requests) == (0, 0)
                for p in stats.processes.values():
                    assert p.requests_active == 0
            # The cap still admits two at once, and only two.
            calls = [
                asyncio.ensure_future(m.request("sleep", "capped", 500, timeout=10_000))
                for _ in range(3)
            ]
            await eventually(
                lambda: m.get_group_stats("capped").queued_requests == 1, "third one queued"
            )
            assert m.get_group_stats("capped").active_requests == 2
            assert [r.data for r in await asyncio.gather(*calls)] == [500] * 3
            more = await asyncio.gather(
                *(m.request("echo", "capped", i, timeout=10_000) for i in range(20))
            )
            assert [r.data for r in more] == list(range(20))
            stats = m.get_group_stats("capped")
            assert (stats.active_requests, stats.queued_requests) == (0, 0)
            timed_out = sum(p.timeouts for p in stats.processes.values())
            assert timed_out >= 6  # at least the two sent per round
            # Every request that reached a child is answered late, counted, and dropped:
            # as the acknowledgement of its CANCEL once the child's READY said it speaks
            # 1.1, as a late answer before (a child still starting up is not told).
            await eventually(
                lambda: (
                    sum(
                        p.late_responses + p.cancels_acknowledged
                        for p in m.get_group_stats("capped").processes.values()
                    )
                    == timed_out
                ),
                "late answers counted",
            )
            assert all(
                p.rejected_lines == 0 for p in m.get_group_stats("capped").processes.values()
            )

    run(main())


def test_group_cap_is_respected_while_requests_wait() -> None:
    async def main() -> None:
        async with Master() as m:
            m.configure_group("one", max_concurrency=1)
            await m.spawn_child("w", peepsy_worker("concurrent"), group="one")
            calls = [
                asyncio.ensure_future(m.request("track", "one", 250, timeout=20_000))
                for _ in range(6)
            ]
            await eventually(lambda: m.get_group_stats("one").queued_requests == 5, "queued")
            assert m.get_group_stats("one").active_requests == 1
            replies = await asyncio.gather(*calls)
            # The child never saw two at once although it runs concurrently.
            assert max(r.data for r in replies) == 1

    run(main())


def late(m: Master) -> int:
    stats = m.get_process_stats("w")
    return stats.late_responses + stats.cancels_acknowledged


def test_late_answer_is_counted_and_never_delivered() -> None:
    async def main() -> None:
        async with Master() as m:
            await m.spawn_child("w", peepsy_worker("concurrent"))
            with pytest.raises(PeepsyTimeoutError) as caught:
                await m.request("sleep", "w", 800, timeout=200)
            assert caught.value.target == "w"
            assert caught.value.timeout_ms == 200
            stats = m.get_process_stats("w")
            assert (stats.timeouts, stats.requests_active) == (1, 0)
            # Requests sent meanwhile get their own answers, not the late one.
            replies = await asyncio.gather(*(m.request("echo", "w", i) for i in range(5)))
            assert [r.data for r in replies] == list(range(5))
            # The late answer is the acknowledgement of a CANCEL if the child's READY (1.1)
            # came before the timeout, else a plain late answer: counted either way.
            await eventually(lambda: late(m) == 1, "late answer")
            reply = await m.request("echo", "w", "after")
            assert reply.data == "after"
            stats = m.get_process_stats("w")
            assert late(m) == 1
            assert stats.rejected_lines == 0
            assert stats.requests_handled == 6

    run(main())

"""Thousands of concurrent requests over real pipes, and the processing modes."""

from __future__ import annotations

import asyncio

from peepsy import Master
from tests.process._support import peepsy_worker, run

MANY = 5000


def test_5000_concurrent_requests_to_one_child() -> None:
    async def main() -> None:
        async with Master() as m:
            await m.spawn_child("w", peepsy_worker("concurrent"))
            replies = await asyncio.gather(
                *(
                    m.request("echo", "w", {"i": i, "s": f"x{i}"}, timeout=60_000)
                    for i in range(MANY)
                )
            )
            assert [r.data for r in replies] == [{"i": i, "s": f"x{i}"} for i in range(MANY)]
            assert len({r.id for r in replies}) == MANY
            stats = m.get_process_stats("w")
            assert (stats.requests_handled, stats.requests_active, stats.errors) == (MANY, 0, 0)
            assert stats.rejected_lines == 0

    run(main())


def test_5000_concurrent_requests_to_a_group_of_two() -> None:
    async def main() -> None:
        async with Master() as m:
            await m.spawn_child("a", peepsy_worker("concurrent"), group="pool")
            await m.spawn_child("b", peepsy_worker("concurrent"), group="pool")
            replies = await asyncio.gather(
                *(m.request("add", "pool", {"a": i, "b": 1}, timeout=60_000) for i in range(MANY))
            )
            assert [r.data for r in replies] == [i + 1 for i in range(MANY)]
            by_target = {t: sum(1 for r in replies if r.target == t) for t in ("a", "b")}
            assert by_target == {"a": MANY // 2, "b": MANY // 2}  # round-robin
            group = m.get_group_stats("pool")
            assert group.total_requests == MANY
            assert (group.active_requests, group.queued_requests) == (0, 0)

    run(main())


def test_sequential_child_runs_one_request_at_a_time() -> None:
    async def main() -> None:
        async with Master() as m:
            await m.spawn_child("seq", peepsy_worker("sequential"))
            replies = await asyncio.gather(
                *(m.request("track", "seq", 5, timeout=30_000) for _ in range(40))
            )
            assert max(r.data for r in replies) == 1

    run(main())


def test_concurrent_child_overlaps_requests() -> None:
    """The probe of the test above can see overlap: here it does."""

    async def main() -> None:
        async with Master() as m:
            await m.spawn_child("con", peepsy_worker("concurrent"))
            replies = await asyncio.gather(
                *(m.request("track", "con", 200, timeout=30_000) for _ in range(8))
            )
            assert max(r.data for r in replies) > 1

    run(main())


def test_child_taking_concurrent_mode_from_init_runs_sync_handlers_concurrently() -> None:
    """A Child built without a mode adopts INIT's (INIT-2). In concurrent mode its plain
    (thread-run) handlers must overlap as well (SCHED-2), not run one at a time."""

    async def main() -> None:
        async with Master() as m:
            await m.spawn_child("auto", peepsy_worker("auto"), "concurrent")
            assert (await m.request("info", "auto")).data["mode"] == "concurrent"
            replies = await asyncio.gather(
                *(m.request("track_sync", "auto", 300, timeout=30_000) for _ in range(4))
            )
            assert max(r.data for r in replies) > 1

    run(main())


def test_sync_handlers_overlap_in_an_explicitly_concurrent_child() -> None:
    async def main() -> None:
        async with Master() as m:
            await m.spawn_child("con", peepsy_worker("concurrent"), "concurrent")
            replies = await asyncio.gather(
                *(m.request("track_sync", "con", 300, timeout=30_000) for _ in range(4))
            )
            assert max(r.data for r in replies) > 1

    run(main())

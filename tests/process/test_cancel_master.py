"""Issue 11 against real processes: a sequential peepsy child with a 60 s handler, a
request that times out after 1 s, then a second request.

A handler that can be stopped (async, or sync and watching its context) is stopped by
the CANCEL: the second request is served within about a second of the first timing
out, the handler's side effect shows it stopped, and the worker is not restarted. A
handler deaf to cancellation is stuck: its worker is replaced, and the second request,
failed with it, is served by the new process on its retry.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from peepsy import Master, PeepsyTimeoutError, ReplacedEvent, StuckEvent
from tests.process._support import eventually, peepsy_worker, raw_worker, run

#: How soon after the first request's timeout the second must be answered when the
#: handler stops. The issue asks "about a second": the CANCEL's round trip is
#: milliseconds, so this leaves room for a loaded machine without letting a 60 s
#: handler (or a 2 s grace) pass.
SERVED_WITHIN_S = 1.5


def marks(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split() if path.exists() else []


@pytest.mark.parametrize("action", ["sleep_marked", "block_cooperative"])
def test_a_cancelled_handler_stops_and_the_next_request_is_served_at_once(
    action: str, tmp_path: Path
) -> None:
    side_effect = tmp_path / "marks"

    async def main() -> None:
        async with Master() as master:
            stuck: list[StuckEvent] = []
            master.on("stuck", stuck.append)
            await master.spawn_child("w", peepsy_worker("sequential"))
            pid = master.get_process_stats("w").pid
            await master.request("echo", "w", "warm", timeout=10_000)  # READY read: 1.1
            data: dict[str, Any] = {"ms": 60_000, "path": str(side_effect)}
            with pytest.raises(PeepsyTimeoutError):
                await master.request(action, "w", data, timeout=1000)
            timed_out = time.monotonic()
            reply = await master.request("echo", "w", "second", timeout=10_000)
            served = time.monotonic()
            assert reply.data == "second"
            assert served - timed_out < SERVED_WITHIN_S
            await eventually(lambda: "cancelled" in marks(side_effect), "the handler stopped")
            assert marks(side_effect) == ["started", "cancelled"]
            await eventually(
                lambda: master.get_process_stats("w").cancels_acknowledged == 1,
                "the 499 read as the acknowledgement",
            )
            stats = master.get_process_stats("w")
            assert (stats.cancels_sent, stats.late_responses) == (1, 0)
            assert (stats.stuck, stats.replacements, stats.restarts) == (0, 0, 0)
            assert stats.pid == pid
            assert stuck == []

    run(main())


def test_a_handler_deaf_to_cancel_gets_its_worker_replaced(tmp_path: Path) -> None:
    side_effect = tmp_path / "marks"

    async def main() -> None:
        async with Master(cancel_grace=500, retry_delay=10) as master:
            stuck: list[StuckEvent] = []
            replaced: list[ReplacedEvent] = []
            master.on("stuck", stuck.append)
            master.on("replaced", replaced.append)
            await master.spawn_child("w", peepsy_worker("sequential"))
            pid = master.get_process_stats("w").pid
            await master.request("echo", "w", "warm", timeout=10_000)
            data = {"ms": 60_000, "path": str(side_effect)}
            with pytest.raises(PeepsyTimeoutError):
                await master.request("block_marked", "w", data, timeout=1000)
            # Queued behind the deaf handler, then failed with the process it was sent
            # to, and retried on the new one.
            reply = await master.request("echo", "w", "second", timeout=10_000, retries=1)
            assert reply.data == "second"
            assert [(e.target, e.action, e.policy) for e in stuck] == [
                ("w", "block_marked", "replace")
            ]
            assert replaced == [ReplacedEvent("w", "stuck")]
            stats = master.get_process_stats("w")
            assert stats.pid != pid
            assert (stats.stuck, stats.replacements, stats.restarts) == (1, 1, 1)
            assert marks(side_effect) == ["started"]  # killed mid-handler

    run(main())


def test_a_1_0_child_is_never_sent_cancel_nor_judged_stuck() -> None:
    # raw_worker behaves like an unmodified Node peepsy 1.0.1 child: no version stated.
    async def main() -> None:
        async with Master(cancel_grace=100) as master:
            stuck: list[StuckEvent] = []
            master.on("stuck", stuck.append)
            await master.spawn_child("w", raw_worker())
            pid = master.get_process_stats("w").pid
            with pytest.raises(PeepsyTimeoutError):
                await master.request("sleep", "w", 600, timeout=100)
            # It just runs the handler to the end; its answer is a late one.
            reply = await master.request("echo", "w", "second", timeout=10_000)
            assert reply.data == "second"
            await eventually(
                lambda: master.get_process_stats("w").late_responses == 1, "the late answer"
            )
            stats = master.get_process_stats("w")
            assert (stats.cancels_sent, stats.cancels_acknowledged, stats.stuck) == (0, 0, 0)
            assert (stats.replacements, stats.pid) == (0, pid)
            assert stuck == []

    run(main())

"""What a child writes that is not protocol: bad lines cost only themselves (FRAME-8,
ID-4), and prints inside a peepsy handler end up on stderr, not in the protocol
stream (STREAM-1)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from peepsy import Master
from peepsy.protocol import InvalidJson, InvalidMessage, LineTooLong
from tests.process._support import (
    Events,
    eventually,
    peepsy_worker,
    raw_worker,
    run,
)


def test_garbage_lines_are_logged_counted_and_survived(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="peepsy.master")

    async def main() -> None:
        async with Master(max_line_bytes=2048) as m:
            events = Events(m)
            await m.spawn_child("dirty", raw_worker("--beats", "-1"))
            await m.spawn_child("clean", peepsy_worker())
            # The worker writes, in order: a line that is not JSON, an envelope without
            # an id, its answer padded past 2048 bytes, an answer to an id never sent,
            # and then its real answer.
            reply = await m.request("garbage", "dirty", timeout=10_000)
            assert reply.data == "clean"  # neither the oversized nor the stray answer
            stats = m.get_process_stats("dirty")
            assert stats.rejected_lines == 4
            assert stats.late_responses == 0
            assert stats.status == "running"
            assert stats.restarts == 0
            # An "error" event for each line that broke the protocol, naming the child
            # (the stray answer is the subject of the next test).
            kinds = [type(e.error) for e in events.error if e.target == "dirty"]
            assert kinds[:3] == [InvalidJson, InvalidMessage, LineTooLong]
            assert all(e.target == "dirty" for e in events.error)
            # Everything else still works, on this child and the others.
            assert (await m.request("echo", "dirty", [1, 2])).data == [1, 2]
            assert (await m.request("add", "clean", {"a": 1, "b": 2})).data == 3
            assert m.get_process_stats("clean").rejected_lines == 0
            again = await m.request("garbage", "dirty", timeout=10_000)
            assert again.data == "clean"
            assert m.get_process_stats("dirty").rejected_lines == 8
            assert len([e for e in events.error if isinstance(e.error, LineTooLong)]) == 2

    run(main())
    logged = [r.getMessage() for r in caplog.records if r.name == "peepsy.master"]
    about_dirty = [w for w in logged if "dirty" in w]
    assert len(about_dirty) >= 8, logged
    assert any("never-sent-1" in w for w in about_dirty), logged
    assert not any("clean" in w for w in logged if "dirty" not in w), logged


def test_answer_to_a_request_never_sent_is_an_error_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A RESPONSE whose id the master never issued (ID-4) is garbage like any other bad
    line: dropped, logged with the child's name, counted, and reported as an "error"
    event (the one channel that tells an application about a misbehaving child)."""
    caplog.set_level(logging.WARNING, logger="peepsy.master")

    async def main() -> None:
        async with Master() as m:
            events = Events(m)
            await m.spawn_child("strayer", raw_worker())
            reply = await m.request("stray", "strayer", timeout=10_000)
            assert reply.data == "clean"
            stats = m.get_process_stats("strayer")
            assert (stats.rejected_lines, stats.late_responses) == (1, 0)
            assert [e.target for e in events.error] == ["strayer"]

    run(main())
    logged = [r.getMessage() for r in caplog.records if r.name == "peepsy.master"]
    assert any("never-sent-2" in text and "strayer" in text for text in logged), logged


def test_invalid_request_from_child_is_answered_400() -> None:
    """REQ-7: a REQUEST from the child that breaks the protocol but names its id gets a
    400 answer at once (the worker reports the status it got)."""

    async def main() -> None:
        async with Master() as m:
            events = Events(m)
            await m.spawn_child("w", raw_worker())
            reply = await m.request("bad_request", "w", timeout=10_000)
            assert reply.data["status"] == 400
            assert reply.data["error"]
            assert m.get_process_stats("w").rejected_lines == 1
            assert [e.target for e in events.error] == ["w"]

    run(main())


def test_prints_in_handlers_go_to_stderr_not_the_protocol() -> None:
    async def main() -> None:
        async with Master() as m:
            events = Events(m)
            # Sequential: print() writes its text and its newline apart, so prints from
            # handlers running at once could share a line.
            await m.spawn_child("noisy", peepsy_worker("sequential"), stderr="capture")
            replies = await asyncio.gather(
                *(m.request("prints", "noisy", f"t{i}") for i in range(5))
            )
            assert [r.data for r in replies] == [f"t{i}" for i in range(5)]
            expected = {
                f"t{i} via {how}" for i in range(5) for how in ("print", "sys.stdout", "fd 1")
            }
            await eventually(lambda: expected <= set(m.get_stderr("noisy")), "prints on stderr")
            assert (await m.request("add", "noisy", {"a": 2, "b": 2})).data == 4
            stats = m.get_process_stats("noisy")
            assert stats.rejected_lines == 0
            assert events.error == []

    run(main())

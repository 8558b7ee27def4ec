"""The master under the issue-8 decisions: it states its line limit in INIT, respects the
one READY states (FRAME-11), fails a call at once on an invalid answer (MSG-9), and reads
integral floats and lone surrogates from children (MSG-8, FRAME-9)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from peepsy import ErrorEvent, Master, PeepsyNotFoundError, PeepsyTimeoutError
from peepsy.protocol import (
    DEFAULT_MAX_LINE_BYTES,
    InvalidResponse,
    LineTooLongForPeer,
    Ready,
)
from tests.master._support import Farm, hold, run, until

MIB = 1024 * 1024


def test_init_states_the_masters_line_limit() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            peer = await farm.spawn(master, "w1")
            await until(lambda: bool(peer.inits))
            assert peer.inits[0].max_line_bytes == DEFAULT_MAX_LINE_BYTES

    run(main())


@pytest.mark.parametrize(("limit", "stated"), [(2 * MIB, 2 * MIB), (4096, None)])
def test_init_states_a_configured_limit_only_when_it_can(limit: int, stated: int | None) -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master(max_line_bytes=limit) as master:
            peer = await farm.spawn(master, "w1")
            await until(lambda: bool(peer.inits))
            got = peer.inits[0].max_line_bytes
            assert (got if isinstance(got, int) else None) == stated

    run(main())


def test_a_request_over_the_childs_limit_fails_at_once_unsent() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            peer = await farm.spawn(master, "w1")
            peer.write(peer.conn.send(Ready(type="READY", pid=1, max_line_bytes=MIB)))
            await until(lambda: _peer_limit(master) == MIB)
            with pytest.raises(LineTooLongForPeer, match=str(MIB)) as info:
                await master.request("echo", "w1", "x" * MIB, timeout=300_000)
            assert info.value.limit == MIB
            assert master.get_active_requests_count() == 0
            # what fits still goes
            assert (await master.request("echo", "w1", "small")).data == "small"
            assert [r.data for r in peer.requests] == ["small"]

    run(main())


def test_a_request_over_a_group_members_limit_frees_the_group_slot() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            master.configure_group("g", max_concurrency=1)
            peer = await farm.spawn(master, "w1", group="g")
            peer.write(peer.conn.send(Ready(type="READY", pid=1, max_line_bytes=MIB)))
            await until(lambda: _peer_limit(master) == MIB)
            with pytest.raises(LineTooLongForPeer):
                await master.request("echo", "g", "x" * MIB)
            assert (await master.request("echo", "g", 1, timeout=2000)).data == 1

    run(main())


@pytest.mark.parametrize(
    "answer",
    [
        {"status": "200", "data": 1},
        {"status": 200, "error": 5},
        {"status": 404, "errorPayload": {"message": "no name"}},
    ],
)
def test_an_invalid_answer_fails_the_call_at_once(answer: dict[str, Any]) -> None:
    async def main() -> None:
        farm = Farm(hold)
        async with farm.master() as master:
            errors: list[ErrorEvent] = []
            master.on("error", errors.append)
            peer = await farm.spawn(master, "w1")
            call = asyncio.ensure_future(master.request("echo", "w1", 1, timeout=300_000))
            request = await peer.next_request()
            peer.reply_raw(request.id, **answer)
            with pytest.raises(InvalidResponse) as info:
                await call
            assert request.id in str(info.value)
            assert master.get_active_requests_count() == 0
            assert [type(e.error) for e in errors] == [InvalidResponse]
            assert master.get_process_stats("w1").rejected_lines == 1
            # a valid answer after it is late
            peer.reply_raw(request.id, 200, data=1)
            await until(lambda: master.get_process_stats("w1").late_responses == 1)

    run(main())


def test_an_invalid_answer_to_no_outstanding_request_fails_nothing() -> None:
    async def main() -> None:
        farm = Farm(hold)
        async with farm.master() as master:
            peer = await farm.spawn(master, "w1")
            call = asyncio.ensure_future(master.request("echo", "w1", 1, timeout=200))
            await peer.next_request()
            peer.write(peer.raw_line({"type": "RESPONSE", "id": "m99", "status": "200"}))
            with pytest.raises(PeepsyTimeoutError):
                await call

    run(main())


def test_answers_with_integral_floats_and_lone_surrogates_are_taken() -> None:
    async def main() -> None:
        farm = Farm(hold)
        async with farm.master() as master:
            peer = await farm.spawn(master, "w1")
            call = asyncio.ensure_future(master.request("echo", "w1", 1))
            request = await peer.next_request()
            peer.write(
                b'{"type":"RESPONSE","id":"%s","status":200.0,"data":"x\\ud800y"}\n'
                % request.id.encode()
            )
            reply = await call
            assert (reply.status, reply.data) == (200, "x\ud800y")

    run(main())


def test_the_master_writes_lone_surrogates_as_escapes() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            peer = await farm.spawn(master, "w1")
            assert (await master.request("echo", "w1", "\udc00")).data == "\udc00"
            assert b'"data":"\\udc00"' in bytes(peer.raw)
            bytes(peer.raw).decode("utf-8")
            assert json.loads(bytes(peer.raw).splitlines()[-1])["data"] == "\udc00"

    run(main())


def _peer_limit(master: Master[Any, Any]) -> int | None:
    session = master._workers["w1"].session
    assert session is not None
    return session.conn.peer_max_line_bytes


def test_a_childs_own_line_limit_is_stated_and_held_both_ways() -> None:
    """spawn_child(max_line_bytes=...) replaces the master's limit for that child: its
    INIT states it, a request over it is refused unsent before any READY, and a line
    from the child over it is dropped; another child keeps the master's limit."""

    async def main() -> None:
        farm = Farm(hold)
        async with farm.master() as master:
            errors: list[ErrorEvent] = []
            master.on("error", errors.append)
            small = await farm.spawn(master, "small", max_line_bytes=MIB)
            wide = await farm.spawn(master, "wide")
            await until(lambda: bool(small.inits) and bool(wide.inits))
            assert small.inits[0].max_line_bytes == MIB
            assert wide.inits[0].max_line_bytes == DEFAULT_MAX_LINE_BYTES
            with pytest.raises(LineTooLongForPeer) as info:
                await master.request("echo", "small", "x" * MIB, timeout=300_000)
            assert info.value.limit == MIB
            sent = asyncio.ensure_future(master.request("echo", "wide", "x" * MIB))
            assert (await wide.next_request()).data == "x" * MIB
            sent.cancel()
            # A line from "small" over its limit is dropped and reported.
            small.write(b'{"type":"HEARTBEAT","pad":"' + b"y" * MIB + b'"}\n')
            await until(lambda: master.get_process_stats("small").rejected_lines == 1)
            assert errors[-1].target == "small"

    run(main())


@pytest.mark.parametrize("value", [1, 0, "big", 2.5, True])
def test_a_childs_line_limit_must_be_an_integer_of_two_or_more(value: object) -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            with pytest.raises((ValueError, TypeError), match="max_line_bytes is an integer >= 2"):
                await master.spawn_child("w1", ["peer", "w1"], max_line_bytes=value)  # type: ignore[arg-type]
            with pytest.raises(PeepsyNotFoundError):  # nothing was left registered
                master.get_process_stats("w1")

    run(main())

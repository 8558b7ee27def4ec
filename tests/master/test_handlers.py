"""Handlers on the master for requests that children send (RESP-1, RESP-4, RESP-5;
Node defect 8)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from pydantic import BaseModel

from peepsy import Action, HandlerError, Master, PeepsyShutdownError
from peepsy.protocol import ErrorPayload, Response
from tests.master._support import Farm, Peer, run, until


def payload_of(answer: Response) -> dict[str, Any]:
    assert isinstance(answer.error_payload, ErrorPayload)
    dumped: dict[str, Any] = answer.error_payload.model_dump()
    return dumped


async def ask(master: Master[Any, Any], farm: Farm, action: str, data: Any = None) -> Response:
    peer = farm.peer("w1") if farm.peers else await farm.spawn(master, "w1")
    return await peer.answer(peer.ask(action, data))


def test_sync_and_async_handlers_answer_200() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:

            @master.handler("double")
            def double(data: int) -> int:
                return data * 2

            async def triple(data: int) -> int:
                await asyncio.sleep(0)
                return data * 3

            master.register_handler("triple", triple)
            master.register_handler("inline", lambda data: data + 1, inline=True)
            assert master.actions == ["double", "inline", "triple"]
            assert double(2) == 4  # the decorator returns the function
            for action, expected in (("double", 10), ("triple", 15), ("inline", 6)):
                answer = await ask(master, farm, action, 5)
                assert (answer.status, answer.data) == (200, expected)

    run(main())


def test_unknown_action_is_answered_404() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            answer = await ask(master, farm, "nope")
            assert answer.status == 404
            assert answer.error == "No handler registered for action: nope"
            assert payload_of(answer) == {
                "name": "PeepsyNotFoundError",
                "message": "No handler registered for action: nope",
                "code": "PEEPSY_NOT_FOUND",
            }

    run(main())


def test_unregistered_handler_is_gone() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            master.register_handler("x", lambda data: data)
            assert master.unregister_handler("x") is True
            assert master.unregister_handler("x") is False
            assert (await ask(master, farm, "x")).status == 404

    run(main())


def test_failing_handler_is_answered_500_without_stack() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:

            @master.handler("boom")
            def boom(data: Any) -> Any:
                raise KeyError("missing")

            answer = await ask(master, farm, "boom")
            assert answer.status == 500
            assert answer.error == "'missing'"
            assert payload_of(answer) == {
                "name": "KeyError",
                "message": "'missing'",
                "code": "PEEPSY_HANDLER_ERROR",
            }

    run(main())


def test_failing_handler_sends_its_stack_only_when_configured() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master(include_stack=True) as master:

            @master.handler("boom")
            async def boom(data: Any) -> Any:
                raise ValueError("bad value")

            payload = payload_of(await ask(master, farm, "boom"))
            assert payload["name"] == "ValueError"
            assert "Traceback" in payload["stack"]
            assert "bad value" in payload["stack"]

    run(main())


def test_a_masters_failing_handler_is_logged_by_the_master(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="peepsy.master")

    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:

            @master.handler("boom")
            async def boom(data: Any) -> Any:
                raise ValueError("bad value")

            assert (await ask(master, farm, "boom")).status == 500

    run(main())
    [record] = [r for r in caplog.records if "handler for 'boom'" in r.getMessage()]
    assert (record.name, record.levelno) == ("peepsy.master", logging.ERROR)
    assert record.getMessage().endswith("raised ValueError: bad value")
    assert record.exc_info is not None


def test_a_handler_that_raised_a_shutdown_error_is_answered_500_not_503() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:

            @master.handler("relay")
            async def relay(data: Any) -> Any:
                raise PeepsyShutdownError("someone else is stopping")

            answer = await ask(master, farm, "relay")
            assert answer.status == 500
            assert payload_of(answer)["code"] == "PEEPSY_SHUTTING_DOWN"

    run(main())


def test_handler_error_chooses_status_code_and_details() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:

            @master.handler("find")
            def find(data: Any) -> Any:
                raise HandlerError("no such user", status=404, code="E_NO_USER", details={"id": 7})

            answer = await ask(master, farm, "find")
            assert answer.status == 404
            assert payload_of(answer) == {
                "name": "HandlerError",
                "message": "no such user",
                "code": "E_NO_USER",
                "details": {"id": 7},
            }

    run(main())


class Point(BaseModel):
    x: int
    y: int


NORM = Action("norm", Point, int)


def test_typed_handler_validates_the_childs_data() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:

            @master.handler(NORM)
            def norm(point: Point) -> int:
                return abs(point.x) + abs(point.y)

            good = await ask(master, farm, "norm", {"x": -2, "y": 3})
            assert (good.status, good.data) == (200, 5)
            bad = await ask(master, farm, "norm", {"x": "far"})
            assert bad.status == 422
            payload = payload_of(bad)
            assert (payload["name"], payload["code"]) == (
                "PeepsyValidationError",
                "PEEPSY_VALIDATION",
            )
            assert [d["path"] for d in payload["details"]] == ["$.x", "$.y"]

    run(main())


def test_unserializable_result_is_answered_500() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            master.register_handler("obj", lambda data: object(), inline=True)
            answer = await ask(master, farm, "obj")
            assert answer.status == 500
            assert payload_of(answer)["name"] == "EncodeError"

    run(main())


def test_handler_error_with_unserializable_details_still_gets_an_answer() -> None:
    # RESP-1: every accepted request gets exactly one answer, even when the error
    # itself cannot be written as given.
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:

            @master.handler("odd")
            def odd(data: Any) -> Any:
                raise HandlerError("odd details", status=409, details={"when": object()})

            peer = await farm.spawn(master, "w1")
            rid = peer.ask("odd", timeout=1000)
            await until(lambda: rid in peer.answers, limit=1)
            assert peer.answers[rid].status >= 400

    run(main())


def test_a_duplicate_request_id_from_a_child_is_not_run_nor_answered_twice() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            gate = asyncio.Event()
            runs: list[Any] = []

            @master.handler("slow")
            async def slow(data: Any) -> Any:
                runs.append(data)
                await gate.wait()
                return data

            peer = await farm.spawn(master, "w1")
            request = {"type": "REQUEST", "id": "c1", "action": "slow"}
            peer.write(peer.raw_line({**request, "data": 1}))
            await until(lambda: runs == [1])
            peer.write(peer.raw_line({**request, "data": 2}))
            await until(lambda: master.get_process_stats("w1").rejected_lines == 1)
            gate.set()
            answer = await peer.answer("c1")
            await asyncio.sleep(0.02)
            assert (answer.data, runs) == (1, [1])
            assert len([line for line in peer.lines if line["type"] == "RESPONSE"]) == 1

    run(main())


def test_an_answer_for_a_restarted_child_is_not_sent_to_its_successor() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            gate = asyncio.Event()
            started = asyncio.Event()

            @master.handler("slow")
            async def slow(data: Any) -> str:
                started.set()
                await gate.wait()
                return "done"

            first = await farm.spawn(master, "w1")
            first.ask("slow")
            await started.wait()
            first.exit(1)
            await until(lambda: len(farm.incarnations("w1")) == 2)
            second: Peer = farm.peer("w1")
            await second.started.wait()
            gate.set()
            await asyncio.sleep(0.05)
            assert second.answers == {}
            assert not [line for line in second.lines if line["type"] == "RESPONSE"]

    run(main())


def test_shutdown_cancels_handlers_still_running() -> None:
    async def main() -> None:
        farm = Farm()
        master = farm.master()
        cancelled = asyncio.Event()
        started = asyncio.Event()

        @master.handler("forever")
        async def forever(data: Any) -> None:
            started.set()
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        peer = await farm.spawn(master, "w1")
        peer.ask("forever")
        await started.wait()
        await master.graceful_shutdown(timeout=1000)
        await asyncio.wait_for(cancelled.wait(), 2)

    run(main())


def test_handler_registration_rejects_bad_names_and_non_callables() -> None:
    master = Farm().master()
    with pytest.raises(ValueError, match="action name"):
        master.register_handler("", lambda data: data)
    with pytest.raises(TypeError, match="callable"):
        master.register_handler("x", 5)  # type: ignore[call-overload]

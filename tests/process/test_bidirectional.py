"""Requests from a child to its master, over real pipes (ID-3, RESP-5)."""

from __future__ import annotations

import asyncio
from typing import Any

from peepsy import Master
from tests.process._support import peepsy_worker, run


def _with_master_handlers(m: Master) -> None:
    @m.handler("getMasterInfo")
    async def get_master_info(data: Any) -> dict[str, Any]:
        return {"from": "master", "got": data, "children": sorted(m.targets)}

    @m.handler("explode")
    def explode(data: Any) -> None:
        raise ValueError("kaboom in the master")


def test_child_handler_calls_the_master() -> None:
    async def main() -> None:
        async with Master() as m:
            _with_master_handlers(m)
            await m.spawn_child("w", peepsy_worker("concurrent"))
            reply = await m.request("ask_master", "w", {"q": [1, 2, 3]})
            assert reply.data == {"from": "master", "got": {"q": [1, 2, 3]}, "children": ["w"]}
            # Several at once, each answered with its own data.
            many = await asyncio.gather(*(m.request("ask_master", "w", i) for i in range(5)))
            assert [r.data["got"] for r in many] == list(range(5))

    run(main())


def test_master_handler_error_reaches_child_without_stack() -> None:
    async def main() -> None:
        async with Master() as m:
            _with_master_handlers(m)
            await m.spawn_child("w", peepsy_worker())
            seen = (await m.request("ask_master_failure", "w", "explode")).data
            assert seen["status"] == 500
            assert seen["message"] == "kaboom in the master"
            assert seen["name"] == "ValueError"
            assert seen["code"] == "PEEPSY_HANDLER_ERROR"
            assert not seen["stack"]  # RESP-5, Node defect 8: no stack sent, and falsy
            # An action the master does not serve: 404.
            missing = (await m.request("ask_master_failure", "w", "noSuchAction")).data
            assert missing["status"] == 404
            assert missing["message"] == "No handler registered for action: noSuchAction"

    run(main())


def test_master_handler_error_carries_stack_when_configured() -> None:
    async def main() -> None:
        async with Master(include_stack=True) as m:
            _with_master_handlers(m)
            await m.spawn_child("w", peepsy_worker())
            seen = (await m.request("ask_master_failure", "w", "explode")).data
            assert seen["status"] == 500
            assert seen["stack"] is not None
            assert "Traceback" in seen["stack"]
            assert "kaboom in the master" in seen["stack"]
            assert "explode" in seen["stack"]

    run(main())

"""Child.request(): asking the master, with answers, failures, timeouts and retries."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from peepsy import (
    Action,
    Child,
    PeepsyError,
    PeepsyShutdownError,
    PeepsyTimeoutError,
    PeepsyValidationError,
    RemoteError,
)
from peepsy.protocol import ErrorPayload
from tests.child._support import FakeMaster, line, run, serving, until


def test_a_request_is_sent_and_its_answer_returned() -> None:
    async def main() -> None:
        child = Child(timeout=4000)
        async with serving(child) as master:
            call = asyncio.ensure_future(child.request("lookup", {"key": "k"}, priority=3))
            await until(lambda: len(master.requests) == 1)
            request = master.requests[0]
            assert (request.action, request.data) == ("lookup", {"key": "k"})
            assert (request.timeout, request.priority, request.legacy) == (4000, 3, False)
            assert request.id.startswith("c")
            master.answer(request, 200, {"value": 1})
            assert await call == {"value": 1}
            # No data in the answer is None.
            call = asyncio.ensure_future(child.request("ping"))
            await until(lambda: len(master.requests) == 2)
            assert master.requests[1].data is None
            rid = master.requests[1].id
            master.feed(line({"type": "RESPONSE", "id": rid, "status": 200}))
            assert await call is None

    run(main())


def test_a_failure_answer_raises_remote_error() -> None:
    async def main() -> None:
        child = Child()
        async with serving(child) as master:
            call = asyncio.ensure_future(child.request("lookup", 1))
            await until(lambda: len(master.requests) == 1)
            payload = ErrorPayload(name="KeyError", message="no key 1", code="E_KEY")
            master.answer(master.requests[0], 404, error_payload=payload)
            with pytest.raises(RemoteError) as info:
                await call
            error = info.value
            assert (error.message, error.status) == ("no key 1", 404)
            assert str(error) == (
                "KeyError: no key 1 (action 'lookup' on 'master', status 404, code 'E_KEY')"
            )
            assert (error.action, error.target) == ("lookup", "master")
            assert (error.remote_name, error.remote_code) == ("KeyError", "E_KEY")

    run(main())


def test_no_answer_in_time_raises_timeout_after_the_retries() -> None:
    async def main() -> None:
        child = Child(retries=2, retry_delay=40)
        async with serving(child) as master:
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(PeepsyTimeoutError) as info:
                await child.request("slow", timeout=50)
            # Three attempts of 50 ms, 40 ms apart.
            assert loop.time() - started >= 0.2
            assert str(info.value) == "Request timed out after 50ms for target: master"
            assert (info.value.action, info.value.target, info.value.timeout_ms) == (
                "slow",
                "master",
                50,
            )
            assert len(master.requests) == 3
            assert len({r.id for r in master.requests}) == 3
            # A late answer to a forgotten attempt is ignored.
            master.answer(master.requests[0], 200, "late")

    run(main())


def test_a_retry_can_succeed() -> None:
    async def main() -> None:
        child = Child(retry_delay=10)
        async with serving(child) as master:
            call = asyncio.ensure_future(child.request("flaky", timeout=40, retries=1))
            await until(lambda: len(master.requests) == 2)
            master.answer(master.requests[1], 200, "second")
            assert await call == "second"

    run(main())


def test_a_failure_after_the_handler_ran_is_not_retried() -> None:
    async def main() -> None:
        child = Child(retries=3, retry_delay=10)
        async with serving(child) as master:
            call = asyncio.ensure_future(child.request("x"))
            await until(lambda: len(master.requests) == 1)
            master.answer(master.requests[0], 500, error="boom")
            with pytest.raises(RemoteError, match="boom"):
                await call
            # The next request on the channel is a new one, not a retry of "x".
            later = asyncio.ensure_future(child.request("y"))
            await until(lambda: len(master.requests) == 2)
            assert master.requests[1].action == "y"
            master.answer(master.requests[1], 200, data=1)
            assert await later == 1

    run(main())


def test_an_answer_saying_it_never_ran_is_retried_under_the_one_retry_rule() -> None:
    # 503 and 408 say the request never ran (RESP-2): the master retries them, and so
    # does a child, with the same policy.
    async def main() -> None:
        child = Child(retries=1, retry_delay=0)
        async with serving(child) as master:
            call = asyncio.ensure_future(child.request("x"))
            await until(lambda: len(master.requests) == 1)
            master.answer(master.requests[0], 503, error="busy")
            await until(lambda: len(master.requests) == 2)
            assert master.requests[1].action == "x"
            master.answer(master.requests[1], 200, data="ok")
            assert await call == "ok"

    run(main())


def test_a_request_needs_a_serving_child() -> None:
    async def main() -> None:
        with pytest.raises(PeepsyError, match="not serving"):
            await Child().request("x")

    run(main())


def test_a_request_during_shutdown_is_refused_and_pending_ones_fail_at_stop() -> None:
    async def main() -> None:
        child = Child()
        master = FakeMaster()
        task = asyncio.ensure_future(child.serve(master))
        await until(lambda: master.listener is not None)
        pending = asyncio.ensure_future(child.request("x", timeout=5000))
        await until(lambda: len(master.requests) == 1)
        child.shutdown()
        with pytest.raises(PeepsyShutdownError):
            await child.request("y")
        assert await asyncio.wait_for(task, 3) == 0
        with pytest.raises(PeepsyShutdownError, match="stopping"):
            await pending

    run(main())


@pytest.mark.parametrize("value", [0, 300_001, True, 2.5])
def test_invalid_timeouts_are_refused(value: Any) -> None:
    async def main() -> None:
        child = Child()
        async with serving(child) as master:
            with pytest.raises(ValueError, match="timeout"):
                await child.request("x", timeout=value)
            assert master.requests == []

    run(main())


def test_a_negative_retry_count_is_refused() -> None:
    async def main() -> None:
        child = Child()
        async with serving(child):
            with pytest.raises(ValueError, match="retries"):
                await child.request("x", retries=-1)

    run(main())


class Query(BaseModel):
    key: str


class Found(BaseModel):
    value: int


LOOKUP = Action("lookup", Query, Found)


def test_typed_request_dumps_and_validates() -> None:
    async def main() -> None:
        child = Child()
        async with serving(child) as master:
            call = asyncio.ensure_future(child.request(LOOKUP, Query(key="k")))
            await until(lambda: len(master.requests) == 1)
            assert master.requests[0].data == {"key": "k"}
            master.answer(master.requests[0], 200, {"value": 3})
            assert await call == Found(value=3)
            call = asyncio.ensure_future(child.request(LOOKUP, Query(key="k")))
            await until(lambda: len(master.requests) == 2)
            master.answer(master.requests[1], 200, {"value": "three"})
            with pytest.raises(PeepsyValidationError) as info:
                await call
            assert info.value.action == "lookup"
            assert [i.path for i in info.value.issues] == ["$.value"]

    run(main())


def test_a_cancelled_request_leaves_nothing_behind() -> None:
    async def main() -> None:
        child = Child()
        async with serving(child) as master:
            answered_late = asyncio.ensure_future(child.request("a", timeout=60))
            timed_out = asyncio.ensure_future(child.request("b", timeout=60))
            await until(lambda: len(master.requests) == 2)
            answered_late.cancel()
            timed_out.cancel()
            # One answer comes after the cancel, the other never; neither reaches anyone.
            master.answer(master.requests[0], 200, "late")
            await asyncio.sleep(0.1)
            assert answered_late.cancelled()
            assert timed_out.cancelled()
            call = asyncio.ensure_future(child.request("c"))
            await until(lambda: len(master.requests) == 3)
            master.answer(master.requests[2], 200, "fresh")
            assert await call == "fresh"
            still_pending = asyncio.ensure_future(child.request("d"))
            await until(lambda: len(master.requests) == 4)
            still_pending.cancel()
            await asyncio.sleep(0)
        # Stopping with a cancelled request still pending is quiet.
        assert still_pending.cancelled()

    run(main())

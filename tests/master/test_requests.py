"""Master requests: timeouts, late answers, retries, child deaths, answers of every kind,
typed actions and the request shapes on the wire."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from pydantic import BaseModel

from peepsy import (
    Action,
    EncodeError,
    ErrorEvent,
    ExitEvent,
    PeepsyNotFoundError,
    PeepsyProcessError,
    PeepsyTimeoutError,
    PeepsyValidationError,
    RemoteError,
)
from peepsy.protocol import (
    ErrorPayload,
    InvalidJson,
    InvalidMessage,
    TruncatedLine,
    UnexpectedMessage,
)
from tests.master._support import Farm, echo, hold, run, settle, until

# --- timeouts -------------------------------------------------------------------------


def test_timeout_fails_the_request_and_releases_it() -> None:
    async def main() -> None:
        farm = Farm(auto=hold)
        async with farm.master() as master:
            peer = await farm.spawn(master, "w1")
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(PeepsyTimeoutError) as info:
                await master.request("slow", "w1", {"n": 1}, timeout=80)
            assert loop.time() - started >= 0.075
            error = info.value
            assert str(error) == "Request timed out after 80ms for target: w1"
            assert (error.action, error.target, error.timeout_ms) == ("slow", "w1", 80)
            assert error.code == "PEEPSY_TIMEOUT"
            stats = master.get_process_stats("w1")
            assert stats.requests_active == 0
            assert master.get_active_requests_count() == 0
            assert (stats.errors, stats.timeouts, stats.requests_handled) == (1, 1, 0)
            # The child was told how long the master would wait (REQ-4).
            assert peer.requests[0].timeout == 80

    run(main())


def test_a_late_answer_is_counted_and_never_delivered() -> None:
    async def main() -> None:
        farm = Farm(auto=hold)
        async with farm.master() as master:
            peer = await farm.spawn(master, "w1")
            with pytest.raises(PeepsyTimeoutError):
                await master.request("slow", "w1", timeout=50)
            second = asyncio.ensure_future(master.request("slow", "w1", timeout=2000))
            await until(lambda: len(peer.requests) == 2)
            peer.reply(peer.requests[0], data="late")
            await until(lambda: master.get_process_stats("w1").late_responses == 1)
            assert not second.done()
            peer.reply(peer.requests[1], data="on time")
            reply = await second
            assert reply.data == "on time"
            stats = master.get_process_stats("w1")
            assert (stats.late_responses, stats.requests_handled, stats.rejected_lines) == (1, 1, 0)

    run(main())


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (0, ValueError),
        (300_001, ValueError),
        (-5, ValueError),
        (True, ValueError),
        (1.5, ValueError),
        ("100", TypeError),
    ],
)
def test_invalid_request_timeouts_are_refused(value: object, error: type[Exception]) -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            await farm.spawn(master, "w1")
            with pytest.raises(error, match=r"timeout is an integer number of milliseconds"):
                await master.request("x", "w1", timeout=value)  # type: ignore[call-overload]
            assert farm.peer("w1").requests == []

    run(main())


@pytest.mark.parametrize("value", [0, 300_001, True, 1.5])
def test_invalid_default_timeouts_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match=r"timeout is an integer number of milliseconds"):
        Farm().master(timeout=value)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("max_retries", -1),
        ("retry_delay", -1),
        ("heartbeat_miss_threshold", 0),
        ("heartbeat_interval", 0),
        ("request_shape", "nested"),
    ],
)
def test_invalid_master_options_are_refused(option: str, value: object) -> None:
    with pytest.raises(ValueError, match=option):
        Farm().master(**{option: value})


def test_the_largest_timeout_is_accepted_and_sent() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master(timeout=300_000) as master:
            peer = await farm.spawn(master, "w1")
            assert (await master.request("x", "w1", 1)).data == 1
            assert peer.requests[0].timeout == 300_000

    run(main())


# --- answers --------------------------------------------------------------------------------


def test_reply_carries_status_data_id_target_and_action() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            peer = await farm.spawn(master, "w1")
            reply = await master.request("echo", "w1", {"a": [1, 2]})
            assert reply.status == 200
            assert reply.data == {"a": [1, 2]}
            assert reply.id == peer.requests[0].id
            assert (reply.target, reply.action) == ("w1", "echo")

    run(main())


def test_a_success_status_other_than_200_is_a_success_and_absent_data_is_none() -> None:
    async def main() -> None:
        farm = Farm(auto=lambda peer, request: peer.reply_raw(request.id, 204))
        async with farm.master() as master:
            await farm.spawn(master, "w1")
            reply = await master.request("x", "w1", 5)
            assert (reply.status, reply.data) == (204, None)

    run(main())


def test_a_failure_answer_raises_remote_error() -> None:
    async def main() -> None:
        payload = ErrorPayload(
            name="KeyError", message="no such key", code="E_KEY", details={"key": "k"}
        )
        farm = Farm(auto=lambda peer, request: peer.reply(request, 500, error_payload=payload))
        async with farm.master() as master:
            await farm.spawn(master, "w1")
            with pytest.raises(RemoteError) as info:
                await master.request("lookup", "w1", "k")
            error = info.value
            assert error.message == "no such key"
            assert str(error) == (
                "KeyError: no such key (action 'lookup' on 'w1', status 500, code 'E_KEY')"
            )
            assert (error.status, error.action, error.target) == (500, "lookup", "w1")
            assert error.group is None
            assert (error.remote_name, error.remote_code, error.details) == (
                "KeyError",
                "E_KEY",
                {"key": "k"},
            )
            stats = master.get_process_stats("w1")
            assert (stats.requests_handled, stats.errors) == (1, 1)

    run(main())


@pytest.mark.parametrize(
    ("target", "options"),
    [
        ("pool", {}),  # sent at once through the group
        ("pool", {"retries": 1}),  # the general path
        ("w2", {}),  # a member asked by name
    ],
)
def test_a_group_member_failure_names_the_group_and_the_member(
    target: str, options: dict[str, Any]
) -> None:
    async def main() -> None:
        farm = Farm(
            auto=lambda peer, request: peer.reply(
                request, 500, error_payload=ErrorPayload(name="ValueError", message="bad")
            )
        )
        async with farm.master() as master:
            await farm.spawn(master, "w2", group="pool")
            with pytest.raises(RemoteError) as info:
                await master.request("parse", target, "x", **options)
            error = info.value
            assert (error.target, error.group) == ("w2", "pool")
            assert str(error) == (
                "ValueError: bad (action 'parse' on 'w2' in group 'pool', status 500)"
            )

    run(main())


def test_unknown_target() -> None:
    async def main() -> None:
        async with Farm().master() as master:
            with pytest.raises(
                PeepsyNotFoundError, match="No process found for target or group: x"
            ):
                await master.request("echo", "x")
            with pytest.raises(PeepsyNotFoundError):
                master.get_process_stats("x")
            assert not master.is_process_alive("x")

    run(main())


def test_a_stopped_child_refuses_requests() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            await farm.spawn(master, "w1", auto_restart=False)
            farm.peer("w1").exit(0)
            await until(lambda: master.get_process_stats("w1").status == "stopped")
            with pytest.raises(PeepsyProcessError, match=r"w1 is not running \(stopped\)"):
                await master.request("echo", "w1")

    run(main())


# --- child deaths (Node defect 2) -----------------------------------------------------------


def test_child_death_fails_requests_in_flight_at_once() -> None:
    async def main() -> None:
        farm = Farm(auto=hold)
        async with farm.master() as master:
            exits: list[ExitEvent] = []
            master.on("exit", exits.append)
            peer = await farm.spawn(master, "w1", auto_restart=False)
            calls = [
                asyncio.ensure_future(master.request("x", "w1", i, timeout=60_000))
                for i in range(3)
            ]
            await until(lambda: len(peer.requests) == 3)
            loop = asyncio.get_running_loop()
            started = loop.time()
            peer.exit(3)
            results = await asyncio.gather(*calls, return_exceptions=True)
            assert loop.time() - started < 5
            for result in results:
                assert isinstance(result, PeepsyProcessError)
                assert "w1 exited (code 3) before answering 'x'" in str(result)
                assert (result.target, result.returncode) == ("w1", 3)
            stats = master.get_process_stats("w1")
            assert (stats.requests_active, stats.errors, stats.status) == (0, 3, "stopped")
            assert [
                (e.target, e.returncode, e.signal, e.expected, e.failed_requests) for e in exits
            ] == [("w1", 3, None, False, 3)]

    run(main())


def test_a_killed_child_reports_the_signal() -> None:
    async def main() -> None:
        farm = Farm(auto=hold)
        async with farm.master() as master:
            exits: list[ExitEvent] = []
            master.on("exit", exits.append)
            peer = await farm.spawn(master, "w1", auto_restart=False)
            call = asyncio.ensure_future(master.request("x", "w1"))
            await until(lambda: len(peer.requests) == 1)
            peer.crash(asyncio.CancelledError())  # what a kill looks like in memory
            with pytest.raises(PeepsyProcessError, match=r"exited \(signal SIGKILL\)"):
                await call
            assert (exits[0].returncode, exits[0].signal) == (-9, 9)

    run(main())


# --- retries (Node defect 7) ----------------------------------------------------------------


def test_retry_after_a_timeout_sends_a_new_request() -> None:
    async def main() -> None:
        def second_time(peer: Any, request: Any) -> None:
            if len(peer.requests) > 1:
                peer.reply(request, data="second")

        farm = Farm(auto=second_time)
        async with farm.master(retry_delay=10) as master:
            peer = await farm.spawn(master, "w1")
            reply = await master.request("x", "w1", timeout=60, retries=1)
            assert reply.data == "second"
            assert len(peer.requests) == 2
            assert peer.requests[0].id != peer.requests[1].id
            assert master.get_process_stats("w1").timeouts == 1

    run(main())


def test_retry_after_the_child_died_reaches_its_restart() -> None:
    async def main() -> None:
        farm = Farm(auto=hold)
        async with farm.master(retry_delay=50) as master:
            first = await farm.spawn(master, "w1")
            farm.auto = echo  # the restarted child answers
            call = asyncio.ensure_future(master.request("x", "w1", "data", retries=2))
            await until(lambda: len(first.requests) == 1)
            first.exit(1)
            reply = await call
            assert reply.data == "data"
            assert len(farm.incarnations("w1")) == 2

    run(main())


def test_retry_after_an_unknown_target_finds_it_once_spawned() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master(retry_delay=100) as master:
            call = asyncio.ensure_future(master.request("x", "late", 7, retries=1))
            await asyncio.sleep(0.02)
            await farm.spawn(master, "late")
            assert (await call).data == 7

    run(main())


@pytest.mark.parametrize("status", [408, 503])
def test_statuses_that_mean_never_ran_are_retried(status: int) -> None:
    async def main() -> None:
        def refuse_once(peer: Any, request: Any) -> None:
            if len(peer.requests) == 1:
                peer.reply(request, status)
            else:
                peer.reply(request, data="ok")

        farm = Farm(auto=refuse_once)
        async with farm.master(max_retries=1, retry_delay=10) as master:
            peer = await farm.spawn(master, "w1")
            assert (await master.request("x", "w1")).data == "ok"
            assert len(peer.requests) == 2

    run(main())


@pytest.mark.parametrize("status", [400, 404, 422, 500])
def test_statuses_after_which_it_may_have_run_are_not_retried(status: int) -> None:
    async def main() -> None:
        farm = Farm(auto=lambda peer, request: peer.reply(request, status))
        async with farm.master(max_retries=3, retry_delay=10) as master:
            peer = await farm.spawn(master, "w1")
            with pytest.raises(RemoteError) as info:
                await master.request("x", "w1")
            assert info.value.status == status
            assert len(peer.requests) == 1

    run(main())


def test_retry_statuses_opt_in_to_more_retries() -> None:
    async def main() -> None:
        farm = Farm(auto=lambda peer, request: peer.reply(request, 500))
        async with farm.master(retry_delay=10) as master:
            peer = await farm.spawn(master, "w1")
            with pytest.raises(RemoteError):
                await master.request("x", "w1", retries=2, retry_statuses={500})
            assert len(peer.requests) == 3
            with pytest.raises(RemoteError):
                await master.request("x", "w1", retries=2, retry_statuses=[404])
            assert len(peer.requests) == 4

    run(main())


def test_retry_delay_is_waited_between_attempts() -> None:
    async def main() -> None:
        arrivals: list[float] = []
        loop = asyncio.get_running_loop()

        def note(peer: Any, request: Any) -> None:
            arrivals.append(loop.time())
            peer.reply(request, 503)

        farm = Farm(auto=note)
        async with farm.master(max_retries=2, retry_delay=120) as master:
            await farm.spawn(master, "w1")
            with pytest.raises(RemoteError):
                await master.request("x", "w1")
            assert len(arrivals) == 3
            assert arrivals[1] - arrivals[0] >= 0.11
            assert arrivals[2] - arrivals[1] >= 0.11

    run(main())


def test_no_retries_by_default() -> None:
    async def main() -> None:
        farm = Farm(auto=lambda peer, request: peer.reply(request, 503))
        async with farm.master(retry_delay=10) as master:
            peer = await farm.spawn(master, "w1")
            with pytest.raises(RemoteError):
                await master.request("x", "w1")
            assert len(peer.requests) == 1

    run(main())


def test_a_negative_retry_count_is_refused() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            await farm.spawn(master, "w1")
            with pytest.raises(ValueError, match="retries"):
                await master.request("x", "w1", retries=-1)

    run(main())


# --- what a misbehaving child sends ---------------------------------------------------------


def test_garbage_lines_are_counted_reported_and_survived() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            errors: list[ErrorEvent] = []
            master.on("error", errors.append)
            peer = await farm.spawn(master, "w1")
            peer.write(b"this is not json\n")
            peer.write(b'{"type":"RESPONSE","id":"m9"}\n')
            peer.write(b'{"type":"INIT","mode":"sequential"}\n')  # not a child's (MSG-6)
            await until(lambda: len(errors) == 3)
            assert [e.target for e in errors] == ["w1", "w1", "w1"]
            assert isinstance(errors[0].error, InvalidJson)
            assert isinstance(errors[1].error, InvalidMessage)
            assert isinstance(errors[2].error, UnexpectedMessage)
            assert master.get_process_stats("w1").rejected_lines == 3
            # Nothing of it was answered.
            assert peer.answers == {}
            # The stream goes on (FRAME-8).
            assert (await master.request("echo", "w1", 1)).data == 1

    run(main())


def test_a_line_cut_off_by_the_childs_exit_is_reported() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            errors: list[ErrorEvent] = []
            master.on("error", errors.append)
            peer = await farm.spawn(master, "w1", auto_restart=False)
            peer.write(b'{"type":"HEARTBEAT"')
            peer.exit(0)
            await until(lambda: len(errors) == 1)
            assert isinstance(errors[0].error, TruncatedLine)
            # Bytes cut off by the end of the stream are not acted on (FRAME-2).
            assert master.get_process_stats("w1").last_heartbeat_at is None

    run(main())


def test_an_invalid_request_from_a_child_is_answered_400() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            peer = await farm.spawn(master, "w1")
            peer.write(peer.raw_line({"type": "REQUEST", "id": "c77", "action": 5}))
            answer = await peer.answer("c77")
            assert answer.status == 400
            assert answer.error_payload.name == "PeepsyBadRequestError"  # type: ignore[union-attr]
            assert answer.error_payload.code == "PEEPSY_BAD_REQUEST"  # type: ignore[union-attr]
            assert master.get_process_stats("w1").rejected_lines == 1

    run(main())


def test_answers_to_requests_never_sent_or_answered_twice() -> None:
    async def main() -> None:
        def twice(peer: Any, request: Any) -> None:
            peer.reply(request, data="first")
            peer.reply_raw(request.id, 200, data="second")

        farm = Farm(auto=twice)
        async with farm.master() as master:
            peer = await farm.spawn(master, "w1")
            assert (await master.request("x", "w1")).data == "first"
            await until(lambda: master.get_process_stats("w1").late_responses == 1)
            peer.reply_raw("m999", 200)
            peer.reply_raw("bogus", 200)
            await until(lambda: master.get_process_stats("w1").rejected_lines == 2)
            stats = master.get_process_stats("w1")
            assert (stats.requests_handled, stats.late_responses) == (1, 1)

    run(main())


# --- typed actions ---------------------------------------------------------------------------


class AddParams(BaseModel):
    a: int
    b: int


class AddResult(BaseModel):
    total: int


ADD = Action("add", AddParams, AddResult)


def test_typed_action_round_trip() -> None:
    async def main() -> None:
        def add(peer: Any, request: Any) -> None:
            peer.reply(request, data={"total": request.data["a"] + request.data["b"]})

        farm = Farm(auto=add)
        async with farm.master() as master:
            peer = await farm.spawn(master, "w1")
            result = await master.request(ADD, "w1", AddParams(a=2, b=3))
            assert result == AddResult(total=5)
            assert peer.requests[0].data == {"a": 2, "b": 3}

    run(main())


def test_typed_action_with_a_response_of_the_wrong_shape() -> None:
    async def main() -> None:
        farm = Farm(auto=lambda peer, request: peer.reply(request, data={"sum": 5}))
        async with farm.master() as master:
            await farm.spawn(master, "w1")
            with pytest.raises(PeepsyValidationError) as info:
                await master.request(ADD, "w1", AddParams(a=2, b=3))
            error = info.value
            assert error.action == "add"
            assert "response data of action 'add' is invalid" in str(error)
            assert [issue.path for issue in error.issues] == ["$.total"]
            assert "$.total" in str(error)

    run(main())


def test_typed_action_with_a_list_response() -> None:
    async def main() -> None:
        farm = Farm(auto=lambda peer, request: peer.reply(request, data=[1, "x"]))
        async with farm.master() as master:
            await farm.spawn(master, "w1")
            with pytest.raises(PeepsyValidationError) as info:
                await master.request(Action("nums", int, list[int]), "w1", 1)
            assert [issue.path for issue in info.value.issues] == ["$[1]"]

    run(main())


# --- request shapes on the wire (REQ-6) ----------------------------------------------------


def request_lines(peer: Any) -> list[dict[str, Any]]:
    return [line for line in peer.lines if line["type"] == "REQUEST"]


def test_unified_shape_by_default() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            peer = await farm.spawn(master, "w1")
            await master.request("add", "w1", {"a": 1}, timeout=4000, priority=2)
            line = bytes(peer.raw).splitlines()[1]
            assert json.loads(line) == {
                "type": "REQUEST",
                "id": "m1",
                "action": "add",
                "data": {"a": 1},
                "timeout": 4000,
                "priority": 2,
            }

    run(main())


def test_legacy_shape_sends_the_nested_request() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master(request_shape="legacy", timeout=4000) as master:
            peer = await farm.spawn(master, "w1")
            reply = await master.request("add", "w1", {"a": 1, "b": 2})
            assert reply.data == {"a": 1, "b": 2}
            raw = bytes(peer.raw).splitlines()[1]
            assert raw == (
                b'{"type":"REQUEST","request":{"id":"m1","action":"add",'
                b'"data":{"a":1,"b":2}},"timeout":4000}'
            )
            assert peer.requests[0].legacy

    run(main())


def test_request_shape_can_be_chosen_per_child() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master(request_shape="legacy") as master:
            legacy = await farm.spawn(master, "old")
            unified = await farm.spawn(master, "new", request_shape="unified")
            await master.request("x", "old", 1)
            await master.request("x", "new", 1)
            assert "request" in request_lines(legacy)[0]
            assert "request" not in request_lines(unified)[0]
            assert request_lines(unified)[0]["id"] == "m1"

    run(main())


def test_requests_to_one_child_are_numbered_per_channel() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            w1 = await farm.spawn(master, "w1")
            w2 = await farm.spawn(master, "w2")
            for _ in range(2):
                await master.request("x", "w1")
            await master.request("x", "w2")
            await settle()
            assert [r.id for r in w1.requests] == ["m1", "m2"]
            assert [r.id for r in w2.requests] == ["m1"]

    run(main())


# --- when a request leaves ----------------------------------------------------------------


def test_a_plain_request_is_written_when_called_and_its_errors_come_where_awaited() -> None:
    async def main() -> None:
        farm = Farm(auto=echo)
        async with farm.master() as master:
            await farm.spawn(master, "w1")
            pending = master.request("echo", "w1", {"n": 1})
            assert master.get_process_stats("w1").requests_active == 1  # sent already
            reply = await pending
            assert (reply.data, reply.target, reply.action) == ({"n": 1}, "w1", "echo")
            # A request that cannot be sent raises where it is awaited, not where called.
            unsendable = master.request("echo", "w1", object())
            assert master.get_process_stats("w1").requests_active == 0
            with pytest.raises(EncodeError, match="cannot write REQUEST as JSON"):
                await unsendable
            # So does one for a target that does not exist.
            missing = master.request("echo", "nobody", 1)
            with pytest.raises(PeepsyNotFoundError):
                await missing
            # A coroutine all the same: create_task takes it.
            assert (await asyncio.create_task(master.request("echo", "w1", 2))).data == 2

    run(main())


def test_a_caller_cancelled_while_waiting_withdraws_its_request() -> None:
    async def main() -> None:
        farm = Farm(auto=hold)
        async with farm.master() as master:
            peer = await farm.spawn(master, "w1")
            task = asyncio.create_task(master.request("slow", "w1", 1))
            request = await peer.next_request()
            assert master.get_process_stats("w1").requests_active == 1
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert master.get_active_requests_count() == 0
            # The answer that still comes is late, and goes nowhere.
            peer.reply(request, data=1)
            await until(lambda: master.get_process_stats("w1").late_responses == 1)

    run(main())


def test_a_caller_cancelled_after_its_answer_came_stays_cancelled() -> None:
    """The answer settles the request, then the task is cancelled before it resumes:
    the task ends cancelled, and the request counts as answered."""

    async def main() -> None:
        farm = Farm(auto=hold)
        async with farm.master() as master:
            peer = await farm.spawn(master, "w1")
            pending = master.request("slow", "w1", 1)
            assert asyncio.iscoroutine(pending)
            assert isinstance(pending, asyncio.Future)
            task: asyncio.Task[Any] = asyncio.create_task(pending)
            # Runs before the task's own wake-up, which was not registered yet.
            pending.add_done_callback(lambda _: task.cancel())
            peer.reply(await peer.next_request(), data=1)
            with pytest.raises(asyncio.CancelledError):
                await task
            stats = master.get_process_stats("w1")
            assert (stats.requests_active, stats.requests_handled) == (0, 1)

    run(main())


def test_a_request_driven_as_a_coroutine_by_hand() -> None:
    """What a task does with ``request()``'s result, done by hand: ``send`` until
    ``StopIteration``, ``throw`` to end it early, ``close`` a no-op."""

    async def main() -> None:
        farm = Farm(auto=hold)
        async with farm.master() as master:
            peer = await farm.spawn(master, "w1")
            pending = master.request("slow", "w1", 1)
            assert pending.send(None) is pending  # not answered: wait on it
            peer.reply(await peer.next_request(), data=7)
            await until(lambda: master.get_process_stats("w1").requests_active == 0)
            with pytest.raises(StopIteration) as stop:
                pending.send(None)
            assert stop.value.value.data == 7
            pending.close()

            thrown = master.request("slow", "w1", 2)
            assert master.get_process_stats("w1").requests_active == 1
            with pytest.raises(RuntimeError, match="given up"):
                thrown.throw(RuntimeError("given up"))
            assert master.get_process_stats("w1").requests_active == 0
            with pytest.raises(asyncio.CancelledError):
                await thrown
            with pytest.raises(asyncio.CancelledError):  # the old form: a class
                master.request("slow", "w1", 3).throw(asyncio.CancelledError)
            assert master.get_process_stats("w1").requests_active == 0

    run(main())

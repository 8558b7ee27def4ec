"""Realistic user code that ``mypy --strict`` must accept; ``assert_type`` pins the types.

test_typing.py type-checks this file with the project's configuration and expects no
error at all. Importing it starts nothing: it only defines workers, handlers and
coroutines. test_typing.py also runs :func:`drive` against in-memory children
(``MemoryLauncher``, no process), so what the annotations promise is what arrives.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, assert_type

from peepsy import (
    Action,
    AutoRestartEvent,
    Child,
    ErrorEvent,
    ExitEvent,
    GroupStats,
    HandlerError,
    HeartbeatMissedEvent,
    Master,
    PeepsyError,
    PeepsyNotFoundError,
    PeepsyProcessError,
    PeepsyTimeoutError,
    PeepsyValidationError,
    ProcessStats,
    RemoteError,
    Reply,
    RestartFailedEvent,
    SpawnEvent,
    error_from_wire,
    error_to_wire,
)
from peepsy.child import Mode
from peepsy.master import ProcessStatus, Strategy
from peepsy.protocol import ErrorPayload, Issue, Response
from peepsy.transport import Launcher, MemoryLauncher, SpawnSpec
from tests.typing.models import AddParams, AddResult, MulParams, MulResult, add, mul

# --- actions ------------------------------------------------------------------------

assert_type(add, Action[AddParams, AddResult])
assert_type(add.name, str)
assert_type(add.request_type, type[AddParams])
assert_type(add.response_type, type[AddResult])

# Any type pydantic validates and mypy accepts as a ``type[...]``, not only models.
total = Action("total", list[int], int)
assert_type(total, Action[list[int], int])
ping = Action("ping", type(None), str)
assert_type(ping, Action[None, str])

# --- a worker -----------------------------------------------------------------------


def build_worker() -> Child:
    """A worker as a user writes one; a fresh Child for each spawn."""
    worker = Child("concurrent", max_concurrency=4, heartbeat_interval=1000, timeout=2000)
    assert_type(worker.mode, Mode)

    @worker.handler(add)
    def add_numbers(params: AddParams) -> AddResult:
        return AddResult(sum=params.a + params.b)

    @worker.handler(total)
    async def total_numbers(numbers: list[int]) -> int:
        await asyncio.sleep(0)
        return sum(numbers)

    def multiply(params: MulParams) -> MulResult:
        return MulResult(product=params.x * params.y)

    worker.register_handler(mul, multiply, inline=True)

    async def say_pong(_: None) -> str:
        return "pong"

    worker.register_handler(ping, say_pong)

    # A handler for an untyped action keeps its own signature.
    @worker.handler("echo")
    def echo(data: Any) -> Any:
        return data

    @worker.handler("describe")
    async def describe(data: int) -> str:
        return f"number {data}"

    async def call_handlers_directly() -> None:
        # As a unit test would (not run here): the decorator kept each signature.
        assert_type(echo({"a": 1}), Any)
        assert_type(await describe(1), str)

    worker.register_handler("upper", lambda text: str(text).upper(), inline=True)

    @worker.handler("strict")
    def strict(data: Any) -> None:
        raise HandlerError("no such user", status=404, code="E_NO_USER", details={"id": 7})

    @worker.handler("sum-from-master")
    async def ask_master(data: Any) -> int:
        # A handler may call back its master, typed or not.
        result = await worker.request(add, AddParams(a=2, b=3), timeout=1000)
        assert_type(result, AddResult)
        anything = await worker.request("config", {"key": "x"}, retries=1, priority=5)
        assert_type(anything, Any)
        return result.sum

    assert_type(worker.actions, list[str])
    assert_type(worker.unregister_handler("upper"), bool)
    assert_type(worker.unregister_handler(mul), bool)
    worker.register_handler(mul, multiply)
    return worker


def worker_introspection(worker: Child) -> None:
    assert_type(worker.requests_handled, int)
    assert_type(worker.requests_in_progress, int)
    assert_type(worker.queue_size, int)
    assert_type(worker.is_active, bool)
    assert_type(worker.get_requests_handled(), int)
    assert_type(worker.get_queue_size(), int)
    assert_type(worker.target, str | None)
    assert_type(worker.shutdown(), None)
    assert_type(worker.shutdown(500), None)


def run_worker_forever(worker: Child) -> None:
    assert_type(worker.run(), None)


# --- event callbacks ----------------------------------------------------------------


def on_spawn(event: SpawnEvent) -> None:
    assert_type(event.target, str)
    assert_type(event.pid, int | None)
    assert_type(event.group, str | None)
    assert_type(event.restart, bool)


def on_exit(event: ExitEvent) -> None:
    assert_type(event.returncode, int | None)
    assert_type(event.signal, int | None)
    assert_type(event.expected, bool)
    assert_type(event.failed_requests, int)


def on_heartbeat_missed(event: HeartbeatMissedEvent) -> None:
    assert_type(event.timestamp, int)
    assert_type(event.silent_for, int)


def on_auto_restart(event: AutoRestartEvent) -> None:
    assert_type(event.code, int | None)
    assert_type(event.attempt, int)


def on_restart_failed(event: RestartFailedEvent) -> None:
    assert_type(event.restarts, int)
    assert_type(event.window, int)


def on_error(event: ErrorEvent) -> None:
    assert_type(event.target, str | None)
    assert_type(event.error, BaseException)


def subscribe(master: Master[Any, Any], seen: list[object]) -> list[Callable[[], None]]:
    unsubscribers = [
        master.on("spawn", on_spawn),
        master.on("exit", on_exit),
        master.on("heartbeat-missed", on_heartbeat_missed),
        master.on("auto-restart", on_auto_restart),
        master.on("restart-failed", on_restart_failed),
        master.on("error", on_error),
        # A lambda's parameter is the event of that name (a wrong attribute is an error,
        # see fail/on_lambda_wrong_attribute.py).
        master.on("exit", lambda event: seen.append(event.returncode)),
        master.on("spawn", seen.append),
    ]
    assert_type(unsubscribers[0], Callable[[], None])
    assert_type(unsubscribers[0](), None)
    return unsubscribers


# --- statistics ---------------------------------------------------------------------


def read_stats(master: Master[Any, Any], stats: ProcessStats, group: GroupStats) -> None:
    assert_type(master.get_process_stats("w1"), ProcessStats)
    assert_type(master.get_group_stats("pool"), GroupStats)
    assert_type(master.get_unhealthy_processes(), list[str])
    assert_type(master.is_process_alive("w1"), bool)
    assert_type(master.get_active_requests_count(), int)
    assert_type(master.active_requests, int)
    assert_type(master.targets, list[str])
    assert_type(master.get_stderr("w1"), list[str])
    assert_type(master.actions, list[str])

    assert_type(stats.target, str)
    assert_type(stats.group, str | None)
    assert_type(stats.mode, str)
    assert_type(stats.pid, int | None)
    assert_type(stats.status, ProcessStatus)
    assert_type(stats.requests_handled, int)
    assert_type(stats.requests_active, int)
    assert_type(stats.average_response_time, float)
    assert_type(stats.last_activity, int | None)
    assert_type(stats.errors, int)
    assert_type(stats.timeouts, int)
    assert_type(stats.last_heartbeat_at, int | None)
    assert_type(stats.restarts, int)
    assert_type(stats.rejected_lines, int)
    assert_type(stats.late_responses, int)
    assert_type(stats.actions, tuple[str, ...] | None)

    assert_type(group.group, str)
    assert_type(group.strategy, Strategy)
    assert_type(group.max_concurrency, int | None)
    assert_type(group.auto_restart, bool)
    assert_type(group.total_requests, int)
    assert_type(group.active_requests, int)
    assert_type(group.queued_requests, int)
    assert_type(group.processes, dict[str, ProcessStats])


# --- errors -------------------------------------------------------------------------


def inspect_error(exc: PeepsyError) -> None:
    assert_type(exc.code, str)
    if isinstance(exc, RemoteError):
        assert_type(exc.status, int)
        assert_type(exc.payload, ErrorPayload | None)
        assert_type(exc.message, str)
        assert_type(exc.action, str | None)
        assert_type(exc.target, str | None)
        assert_type(exc.remote_name, str | None)
        assert_type(exc.remote_code, str | None)
        assert_type(exc.details, Any)
        if exc.payload is not None:
            assert_type(exc.payload.name, str)
            assert_type(exc.payload.message, str)
    elif isinstance(exc, PeepsyTimeoutError):
        assert_type(exc.timeout_ms, int | None)
        assert_type(exc.action, str | None)
        assert_type(exc.target, str | None)
    elif isinstance(exc, PeepsyProcessError):
        assert_type(exc.returncode, int | None)
        assert_type(exc.target, str | None)
    elif isinstance(exc, PeepsyValidationError):
        assert_type(exc.action, str)
        assert_type(exc.issues, tuple[Issue, ...])
        assert_type(exc.issues[0].path, str)
    elif isinstance(exc, HandlerError):
        assert_type(exc.status, int)
        assert_type(exc.details, Any)


def wire_errors() -> None:
    status, payload = error_to_wire(ValueError("bad"), include_stack=False)
    assert_type(status, int)
    assert_type(payload, ErrorPayload)
    response = Response(type="RESPONSE", id="m1", status=500, error="bad", error_payload=payload)
    assert_type(error_from_wire(response, action="add", target="w1"), RemoteError)


# --- a master -----------------------------------------------------------------------

untyped = Master()
assert_type(untyped, Master[Any, Any])
typed = Master[int, str](timeout=2000)
assert_type(typed, Master[int, str])
# The run-time checks of a subscripted master can be turned off; the types stay.
trusting = Master[AddParams, AddResult](validate_types=False)
assert_type(trusting, Master[AddParams, AddResult])


async def use_untyped(master: Master[Any, Any]) -> None:
    reply = await master.request("echo", "w1", {"anything": [1, 2]})
    assert_type(reply, Reply[Any])
    assert_type(reply.status, int)
    assert_type(reply.id, str)
    assert_type(reply.target, str)
    assert_type(reply.action, str)
    without_data = await master.request("echo", "w1")
    assert_type(without_data, Reply[Any])


async def use_typed_master(master: Master[int, str]) -> None:
    reply = await master.request("describe", "w1", 1)
    assert_type(reply, Reply[str])
    assert_type(reply.data, str)
    # A typed Action is typed on its own, whatever the master's parameters.
    result = await master.request(add, "w1", AddParams(a=1, b=2))
    assert_type(result, AddResult)


async def use_model_typed_master(master: Master[AddParams, AddResult]) -> int:
    # At run time too, reply.data is an AddResult (validated as the reply lands).
    reply = await master.request("add", "w1", AddParams(a=1, b=2))
    assert_type(reply, Reply[AddResult])
    assert_type(reply.data, AddResult)
    return reply.data.sum


async def requests(master: Master[Any, Any]) -> int:
    result = await master.request(add, "w1", AddParams(a=1, b=2))
    assert_type(result, AddResult)
    product = await master.request(
        mul,
        "pool",
        MulParams(x=3, y=4),
        timeout=1000,
        retries=2,
        priority=10,
        retry_statuses={500},
    )
    assert_type(product, MulResult)
    summed = await master.request(total, "pool", [1, 2, 3])
    assert_type(summed, int)
    pong = await master.request(ping, "w1", None)
    assert_type(pong, str)
    return result.sum + product.product + summed


async def handlers_on_the_master(master: Master[Any, Any]) -> None:
    # Children may ask the master too; its handlers are registered the same way.
    @master.handler(add)
    async def add_for_child(params: AddParams) -> AddResult:
        return AddResult(sum=params.a + params.b)

    master.register_handler("config", lambda data: {"key": data}, inline=True)


async def lifecycle(master: Master[Any, Any]) -> None:
    stats = await master.spawn_child(
        "w1",
        ["python", "worker.py"],
        "concurrent",
        "pool",
        env={"PATH": "/usr/bin"},
        cwd="/tmp",
        stderr="capture",
        auto_restart=False,
        request_shape="legacy",
    )
    assert_type(stats, ProcessStats)
    await master.spawn_child("w2", "node worker.js", group="pool", stderr="log")
    master.configure_group("pool", strategy="least-busy", max_concurrency=8, auto_restart=True)
    code = await master.shutdown_child("w1", timeout=1000)
    assert_type(code, int | None)
    assert_type(await master.graceful_shutdown(timeout=5000), None)


async def with_block() -> None:
    async with Master(timeout=2000, max_retries=2, retry_delay=100) as master:
        assert_type(master, Master[Any, Any])
    async with Master[int, str](heartbeat_interval=500) as typed_master:
        assert_type(typed_master, Master[int, str])


async def catching(master: Master[Any, Any]) -> None:
    try:
        await master.request(add, "w1", AddParams(a=1, b=2))
    except RemoteError as exc:
        assert_type(exc.status, int)
        assert_type(exc.payload, ErrorPayload | None)
    except PeepsyTimeoutError as exc:
        assert_type(exc.timeout_ms, int | None)
    except (PeepsyProcessError, PeepsyNotFoundError) as exc:
        assert_type(exc, PeepsyProcessError | PeepsyNotFoundError)


# --- run against in-memory children (test_typing.py calls this) ----------------------


def memory_launcher() -> Launcher:
    def factory(spec: SpawnSpec) -> Child:
        assert_type(spec.argv[0], str)
        return build_worker()

    return MemoryLauncher({"worker": factory})


async def drive(launcher: Launcher) -> dict[str, object]:
    """Exercise the typed API for real and return what came back, for runtime checks."""
    seen: list[object] = []
    out: dict[str, object] = {}
    async with Master(launcher=launcher, timeout=2000) as master:
        unsubscribers = subscribe(master, seen)
        await handlers_on_the_master(master)
        await master.spawn_child("w1", ["worker"], "concurrent", stderr="discard")
        await master.spawn_child("w2", ["worker"], group="pool")
        await master.spawn_child("w3", ["worker"], group="pool")
        master.configure_group("pool", strategy="least-busy", max_concurrency=2)
        out["sum"] = await requests(master)
        added = await master.request(add, "w1", AddParams(a=2, b=2))
        out["add"] = added
        out["reply"] = await master.request("echo", "w1", {"x": 1})
        out["from_master"] = (await master.request("sum-from-master", "w1")).data
        try:
            await master.request("strict", "w1")
        except RemoteError as exc:
            inspect_error(exc)
            out["remote"] = exc
        read_stats(master, master.get_process_stats("w1"), master.get_group_stats("pool"))
        out["stats"] = master.get_process_stats("w1")
        out["group"] = master.get_group_stats("pool")
        for unsubscribe in unsubscribers:
            unsubscribe()
    typed_master = Master[int, str](launcher=launcher)
    async with typed_master:
        await typed_master.spawn_child("w1", ["worker"])
        out["typed_reply"] = await typed_master.request("describe", "w1", 1)
    async with Master[AddParams, AddResult](launcher=launcher) as model_master:
        await model_master.spawn_child("w1", ["worker"])
        out["typed_model"] = await use_model_typed_master(model_master)
        out["typed_model_reply"] = await model_master.request("add", "w1", AddParams(a=2, b=5))
    wire_errors()
    out["events"] = seen
    return out

"""Observe mode: a master application that cannot be wrapped in a harness runs as it
is, with ``PEEPSY_CONFORMANCE_CHILD`` (the stub's argv, as JSON) in its environment for
it to spawn as its children. The suite plays a well-behaved child on every connection
and, when the application exits (or after ``seconds``), judges the wire checks alone.
A wire check that saw no relevant traffic is ``untestable``, never a pass."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from peepsy.conformance._transcript import Outcome
from peepsy.conformance.master._hub import Channel, Hub, private_folder
from peepsy.conformance.master._suite import MasterResult
from peepsy.conformance.master._wire import WireRow, judge

ENV = "PEEPSY_CONFORMANCE_CHILD"


async def observe(
    argv: Sequence[str],
    rows: Sequence[WireRow],
    seconds: float,
    progress: Callable[[Outcome, int, int], None] | None = None,
) -> MasterResult:
    result = MasterResult(harness=list(argv), observe=True)
    with private_folder() as folder:
        hub = Hub(Path(folder), "observe", observe=True)
        children: list[asyncio.Task[None]] = []
        hub.on_channel = lambda channel: children.append(asyncio.create_task(_play(channel)))
        await hub.start()
        env = {**os.environ, ENV: json.dumps(hub.argv("observed"))}
        try:
            process = await asyncio.create_subprocess_exec(*argv, env=env, start_new_session=True)
        except OSError as exc:
            result.startup_problem = f"the application cannot be started: {exc}"
            await hub.close()
            return result
        try:
            await asyncio.wait_for(process.wait(), seconds)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            await process.wait()
        for task in children:
            task.cancel()
        await asyncio.gather(*children, return_exceptions=True)
        await hub.close()
    result.outcomes = judge(hub.records, rows, observe=True)
    for index, outcome in enumerate(result.outcomes, start=1):
        if progress is not None:
            progress(outcome, index, len(result.outcomes))
    result.levels = {"wire": _state(result.outcomes)}
    return result


def _state(outcomes: list[Outcome]) -> str:
    verdicts = {o.verdict for o in outcomes}
    if verdicts & {"fail", "error", "timeout"}:
        return "not-reached"
    return "reached" if verdicts & {"pass", "warn"} else "not-run"


async def _play(channel: Channel) -> None:
    """A well-behaved child: READY after INIT, HEARTBEATs at INIT's interval, ``echo``-
    like requests answered 200 with their data, any other action 404; exit 0 on
    SHUTDOWN or at the end of input."""
    seen = 0
    beating: asyncio.Task[None] | None = None
    try:
        while True:
            at = seen
            await channel.wait(
                lambda: len(channel.record.events) > at or channel.closed,  # noqa: B023
                time.monotonic() + 3600,
            )
            if channel.closed and len(channel.record.events) <= seen:
                return
            event = channel.record.events[seen]
            seen += 1
            if event.kind == "eof":
                channel.exit(0)
                return
            message = event.message if event.kind == "line" else None
            if message is None:
                continue
            kind = message.get("type")
            if kind == "INIT":
                _say(channel, {"type": "READY", "pid": channel.record.pid, "protocol": "1.0"})
                every = message.get("heartbeatInterval")
                if isinstance(every, int | float) and every > 0 and beating is None:
                    beating = asyncio.create_task(_beat(channel, every / 1000))
            elif kind == "SHUTDOWN":
                channel.exit(0)
                return
            elif kind == "REQUEST":
                _answer(channel, message)
    finally:
        if beating is not None:
            beating.cancel()


def _answer(channel: Channel, message: dict[str, Any]) -> None:
    inner = message.get("request") if isinstance(message.get("request"), dict) else message
    assert isinstance(inner, dict)
    ident, action = inner.get("id"), inner.get("action")
    if not isinstance(ident, str):
        return
    if isinstance(action, str) and "echo" in action.lower():
        response: dict[str, Any] = {"type": "RESPONSE", "id": ident, "status": 200}
        if "data" in inner:
            response["data"] = inner["data"]
    else:
        response = {"type": "RESPONSE", "id": ident, "status": 404, "error": "unknown action"}
    _say(channel, response)


def _say(channel: Channel, message: dict[str, Any]) -> None:
    channel.write_stdout((json.dumps(message, ensure_ascii=False) + "\n").encode())


async def _beat(channel: Channel, every: float) -> None:
    while not channel.closed:
        stamp = time.time_ns() // 10**6
        _say(channel, {"type": "HEARTBEAT", "pid": channel.record.pid, "timestamp": stamp})
        await asyncio.sleep(every)

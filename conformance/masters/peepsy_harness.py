"""The reference master harness: peepsy's own :class:`~peepsy.Master` behind the master
harness protocol, version 1 (conformance/MASTER.md).

    python -m peepsy.conformance master -- python conformance/masters/peepsy_harness.py

It reads one command per line on stdin, runs each as a task of its own (so a request
that waits does not hold up the next command) and writes each response, one flushed
line, as it settles. Everything peepsy says for itself goes to stderr.
"""

from __future__ import annotations

import asyncio
import json
import sys
import traceback
from collections.abc import Callable, Coroutine
from typing import Any

from peepsy import (
    Master,
    PeepsyCancelledError,
    PeepsyNotFoundError,
    PeepsyProcessError,
    PeepsyShutdownError,
    PeepsyTimeoutError,
    RemoteError,
    __version__,
)
from peepsy.protocol import InvalidResponse

VERSION = 1
CAPABILITIES = ["profile", "supervision", "groups", "retry", "cancel", "legacy", "events"]
# MHP option -> Master keyword argument.
OPTIONS = {
    "timeout": "timeout",
    "retries": "max_retries",
    "retryDelay": "retry_delay",
    "heartbeatInterval": "heartbeat_interval",
    "heartbeatMissThreshold": "heartbeat_miss_threshold",
    "maxRestarts": "max_restarts",
    "requestShape": "request_shape",
}
# How long ``stop`` waits for commands still running once the master is closed.
STOP_GRACE = 5.0
Response = dict[str, Any]


class Unsupported(Exception):
    """The master has no such feature: answered ``unsupported``, the case is skipped."""


# --- the master profile (MASTER.md): handlers for the children's requests -------------


async def echo(data: Any) -> Any:
    return data


async def fail(data: Any) -> Any:
    raise RuntimeError(str(data))


def throw(data: Any) -> Any:
    raise RuntimeError(str(data))


async def sleep(data: Any) -> Any:
    await asyncio.sleep(data / 1000)
    return data


def outcome_of(error: BaseException) -> Response:
    """The MHP outcome of a failed call: the exception types peepsy's guide documents
    for ``Master.request``, one kind each."""
    if isinstance(error, RemoteError):
        out: Response = {"kind": "remote", "status": error.status, "message": error.message}
        if error.remote_name is not None:
            out["name"] = error.remote_name
        if error.remote_code is not None:
            out["code"] = error.remote_code
        return out
    kinds: list[tuple[type[BaseException], str]] = [
        (PeepsyTimeoutError, "timeout"),
        (PeepsyProcessError, "exited"),
        (PeepsyNotFoundError, "notFound"),
        (PeepsyShutdownError, "shuttingDown"),
        (PeepsyCancelledError, "cancelled"),
        (InvalidResponse, "invalid"),
    ]
    for kind_type, kind in kinds:
        if isinstance(error, kind_type):
            return {"kind": kind, "message": str(error)}
    return {"kind": "other", "message": f"{type(error).__name__}: {error}"}


class Harness:
    def __init__(self, write: Callable[[Response], None]) -> None:
        self._write = write
        self._master: Master | None = None
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._requests: dict[int, asyncio.Task[None]] = {}
        # Requests the suite gave up with ``cancel``: their CancelledError is the
        # ``cancelled`` outcome, not the harness being torn down.
        self._cancelled: set[int] = set()
        self._events: list[Response] = []

    @property
    def master(self) -> Master:
        if self._master is None:
            raise RuntimeError("no master yet: the first command is start")
        return self._master

    def dispatch(self, command: dict[str, Any]) -> None:
        seq = command.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool):
            print(f"peepsy_harness: a command without a seq: {command!r}", file=sys.stderr)
            return
        handler = {
            "start": self._start,
            "group": self._group,
            "spawn": self._spawn,
            "request": self._request,
            "cancel": self._cancel,
            "shutdown": self._shutdown,
            "events": self._events_since,
        }.get(command.get("cmd"))  # type: ignore[arg-type]
        if handler is None:
            self._write({"seq": seq, "unsupported": f"unknown command {command.get('cmd')!r}"})
            return
        task = asyncio.create_task(self._answer(seq, handler(command)))
        self._tasks[seq] = task
        task.add_done_callback(lambda _: self._tasks.pop(seq, None))
        if command["cmd"] == "request":
            self._requests[seq] = task

    async def _answer(self, seq: int, work: Coroutine[Any, Any, Response]) -> None:
        try:
            response = await work
        except Unsupported as why:
            response = {"unsupported": str(why)}
        except asyncio.CancelledError:
            if seq not in self._cancelled:
                # torn down by stop: the command still gets its one response
                self._write({"seq": seq, "errored": {"message": "the harness stopped first"}})
                raise
            response = {"outcome": {"kind": "cancelled"}}
        except Exception as error:  # the harness failed to carry the command out
            message = f"{type(error).__name__}: {error}"
            response = {"errored": {"message": message, "traceback": traceback.format_exc()}}
        self._write({"seq": seq, **response})

    # --- commands ------------------------------------------------------------------

    async def _start(self, command: dict[str, Any]) -> Response:
        if command.get("version") != VERSION:
            raise Unsupported(f"this harness speaks MHP version {VERSION} only")
        options = command.get("master") or {}
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise Unsupported(f"options peepsy's Master does not have: {', '.join(unknown)}")
        master: Master = Master(**{OPTIONS[k]: v for k, v in options.items()})
        master.register_handler("echo", echo)
        master.register_handler("fail", fail)
        # inline: the handler raises synchronously on the loop, as the profile asks,
        # instead of in a worker thread.
        master.register_handler("throw", throw, inline=True)
        master.register_handler("sleep", sleep)
        master.on("exit", lambda e: self._events.append({"kind": "exit", "target": e.target}))
        master.on(
            "auto-restart", lambda e: self._events.append({"kind": "restart", "target": e.target})
        )
        master.on(
            "heartbeat-missed",
            lambda e: self._events.append({"kind": "unhealthy", "target": e.target}),
        )
        self._master = master
        return {
            "version": VERSION,
            "implementation": {"name": "peepsy", "version": __version__, "language": "Python"},
            "capabilities": CAPABILITIES,
        }

    async def _group(self, command: dict[str, Any]) -> Response:
        self.master.configure_group(
            command["name"],
            strategy=command.get("strategy"),
            max_concurrency=command.get("maxConcurrency"),
        )
        return {"ok": True}

    async def _spawn(self, command: dict[str, Any]) -> Response:
        await self.master.spawn_child(
            command["name"],
            command["argv"],
            command.get("mode", "sequential"),
            command.get("group"),
            env=command.get("env"),
            # A harness spawns a child that is not restarted unless the case asks:
            # the core cases judge a master's behaviour after a death without one.
            auto_restart=command.get("restart", False),
        )
        return {"ok": True}

    async def _request(self, command: dict[str, Any]) -> Response:
        options = {k: command[k] for k in ("timeout", "retries", "priority") if k in command}
        try:
            reply = await self.master.request(
                command["action"], command["target"], command.get("data"), **options
            )
        except asyncio.CancelledError:
            raise
        except Exception as error:
            return {"outcome": outcome_of(error)}
        outcome: Response = {"kind": "ok", "status": reply.status}
        if reply.data is not None:
            outcome["data"] = reply.data
        return {"outcome": outcome}

    async def _cancel(self, command: dict[str, Any]) -> Response:
        request = command["request"]
        task = self._requests.get(request)
        if task is not None and not task.done():
            # as a user gives up a call: cancel the task awaiting it (peepsy sends CANCEL)
            self._cancelled.add(request)
            task.cancel()
        return {"ok": True}

    async def _shutdown(self, command: dict[str, Any]) -> Response:
        timeout = command.get("timeout", 5000)
        target = command.get("target")
        targets = self.master.targets if target is None else [target]
        for outcome in await asyncio.gather(
            *(self.master.shutdown_child(t, timeout) for t in targets), return_exceptions=True
        ):
            # A child already gone is stopped; anything else is the harness's failure.
            if isinstance(outcome, BaseException) and not isinstance(outcome, PeepsyNotFoundError):
                raise outcome
        return {"ok": True}

    async def _events_since(self, command: dict[str, Any]) -> Response:
        if self._master is None:
            raise RuntimeError("no master yet: the first command is start")
        events, self._events = self._events, []
        return {"events": events}

    async def stop(self) -> None:
        """Close the master as a program ends, then answer what is still running."""
        if self._master is not None:
            await self._master.graceful_shutdown()
        pending = [t for t in self._tasks.values() if not t.done()]
        if pending:
            _, late = await asyncio.wait(pending, timeout=STOP_GRACE)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)


def write_line(response: Response) -> None:
    sys.stdout.buffer.write(json.dumps(response).encode() + b"\n")
    sys.stdout.buffer.flush()


async def main() -> None:
    loop = asyncio.get_running_loop()
    # Commands may carry large data (an echo of a megabyte): no line limit of note.
    reader = asyncio.StreamReader(limit=1 << 30)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    harness = Harness(write_line)
    while line := await reader.readline():
        if not line.strip():
            continue
        try:
            command = json.loads(line)
        except ValueError:
            print(f"peepsy_harness: not JSON: {line!r}", file=sys.stderr)
            continue
        if not isinstance(command, dict):
            print(f"peepsy_harness: not a command: {line!r}", file=sys.stderr)
            continue
        if command.get("cmd") == "stop":
            break
        harness.dispatch(command)
    await harness.stop()


if __name__ == "__main__":
    asyncio.run(main())

"""The suite's client of a master harness (MHP v1, conformance/MASTER.md): starts the
harness command in a process group of its own, sends commands, and checks every
response against conformance/harness.schema.json. Anything the harness does wrong (an
invalid, duplicate, unknown-``seq`` or missing response, ``errored``, a crash) is a
:class:`HarnessError`: the suite does not blame the master for its harness.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import Sequence
from functools import cache
from typing import Any

from peepsy.conformance._schemas import _jsonschema, data_dir, json_path, load_json

MHP_VERSION = 1
#: How long the harness has to exit after ``stop`` (x --timeout-scale), then SIGTERM.
STOP_GRACE_S = 5.0
#: After SIGTERM, how long before SIGKILL.
TERM_GRACE_S = 2.0
_STDERR_KEEP = 16_384


class HarnessError(Exception):
    """The harness broke the harness protocol, or died: the case's verdict is
    ``harness-error``."""


class Unsupported(Exception):
    """The harness answered ``unsupported``: the case is skipped for this reason."""


@cache
def harness_schema() -> dict[str, Any]:
    schema: dict[str, Any] = load_json(data_dir() / "conformance" / "harness.schema.json")
    return schema


@cache
def _validator(cmd: str) -> Any:
    schema = harness_schema()
    kinds = [schema["x-responses"][cmd], "UnsupportedResponse", "ErroredResponse"]
    validator_cls, _ = _jsonschema()
    return validator_cls(
        {"$defs": schema["$defs"], "anyOf": [{"$ref": f"#/$defs/{k}"} for k in kinds]}
    )


def response_problems(cmd: str, response: Any) -> list[str]:
    """What is wrong with ``response`` as the answer to a ``cmd`` command."""
    errors = _validator(cmd).iter_errors(response)
    out = []
    for error in errors:
        # anyOf hides the reason; the branch of the command's own response says it best.
        best = min(error.context or [error], key=lambda e: (len(e.relative_schema_path), 0))
        out.append(f"{json_path(best.absolute_path)}: {best.message}")
    return out[:3]


class Harness:
    """One harness process (one case). :meth:`send` numbers a command and returns its
    ``seq``; :meth:`response` waits for its answer."""

    def __init__(self, argv: Sequence[str], timeout_scale: float = 1.0) -> None:
        self.argv = list(argv)
        self.scale = timeout_scale
        self.process: asyncio.subprocess.Process | None = None
        #: The first thing the harness did wrong; once set, every wait raises it.
        self.problem = ""
        self.sent_at: dict[int, float] = {}
        self._commands: dict[int, str] = {}
        self._responses: dict[int, dict[str, Any]] = {}
        self._arrived: dict[int, float] = {}
        self._changed = asyncio.Event()
        self._stderr = bytearray()
        self._tasks: list[asyncio.Task[None]] = []
        self._next = 0
        self._stopping = False
        #: What crossed, for the wire log of a failed case: (time, "> "/"< " + line).
        self.log: list[tuple[float, str]] = []

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            limit=64 * 1024 * 1024,
        )
        self._tasks = [
            asyncio.create_task(self._read_stdout()),
            asyncio.create_task(self._read_stderr()),
        ]

    @property
    def stderr_tail(self) -> str:
        return self._stderr.decode("utf-8", "replace")

    def _fault(self, problem: str) -> None:
        if not self.problem:
            self.problem = problem
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _read_stdout(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        while True:
            try:
                line = await self.process.stdout.readline()
            except (ValueError, asyncio.LimitOverrunError):
                self._fault("a response line longer than 64 MiB")
                return
            if not line:
                break
            self._take(line)
        status = await self.process.wait()
        if not self._stopping:
            self._fault(f"the harness exited (status {status}) before the suite sent stop")
        self._wake()

    def _take(self, line: bytes) -> None:
        self.log.append((time.monotonic(), "harness< " + line.decode("utf-8", "replace").rstrip()))
        try:
            response = json.loads(line)
        except ValueError:
            self._fault(f"a line on stdout that is not JSON: {line[:200]!r}")
            return
        seq = response.get("seq") if isinstance(response, dict) else None
        if not isinstance(seq, int) or isinstance(seq, bool):
            self._fault(f"a response without an integer seq: {line[:200]!r}")
            return
        if seq not in self._commands:
            self._fault(f"a response to seq {seq}, which the suite never sent: {line[:200]!r}")
            return
        if seq in self._responses:
            self._fault(f"a second response to seq {seq}: {line[:200]!r}")
            return
        problems = response_problems(self._commands[seq], response)
        if problems:
            what = self._commands[seq]
            self._fault(f"an invalid response to {what} (seq {seq}): {'; '.join(problems)}")
            return
        self._responses[seq] = response
        self._arrived[seq] = time.monotonic()
        self._wake()

    async def _read_stderr(self) -> None:
        assert self.process is not None
        assert self.process.stderr is not None
        while chunk := await self.process.stderr.read(65536):
            self._stderr += chunk
            del self._stderr[:-_STDERR_KEEP]

    def _write(self, command: dict[str, Any]) -> None:
        assert self.process is not None
        assert self.process.stdin is not None
        text = json.dumps(command)
        self.log.append((time.monotonic(), "harness> " + text))
        with contextlib.suppress(OSError, RuntimeError):
            self.process.stdin.write((text + "\n").encode())

    def send(self, command: dict[str, Any]) -> int:
        seq = self._next
        self._next += 1
        self._commands[seq] = str(command["cmd"])
        self.sent_at[seq] = time.monotonic()
        self._write({"cmd": command["cmd"], "seq": seq, **command})
        return seq

    def answered(self, seq: int) -> dict[str, Any] | None:
        return self._responses.get(seq)

    def arrived_at(self, seq: int) -> float | None:
        return self._arrived.get(seq)

    async def response(self, seq: int, deadline: float) -> dict[str, Any] | None:
        """The response to ``seq``, or None at ``deadline``. Raises :class:`HarnessError`
        when the harness has broken the protocol, and :class:`Unsupported` or
        :class:`HarnessError` for an ``unsupported`` or ``errored`` answer."""
        while True:
            if self.problem:
                raise HarnessError(self.problem)
            got = self._responses.get(seq)
            if got is not None:
                return _judged(got)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def call(self, command: dict[str, Any], deadline: float) -> dict[str, Any]:
        """Sends ``command`` and waits for its answer: a missing one is a harness error."""
        seq = self.send(command)
        got = await self.response(seq, deadline)
        if got is None:
            raise HarnessError(f"no response to {command['cmd']} (seq {seq}) in time")
        return got

    async def stop(self) -> int | None:
        """``stop``, then the harness's exit status: after STOP_GRACE_S its group gets
        SIGTERM, and SIGKILL if that does not end it (the status is then None)."""
        process = self.process
        if process is None:
            return None
        self._stopping = True
        if process.returncode is None:
            self._write({"cmd": "stop"})
            if process.stdin is not None:
                with contextlib.suppress(OSError, RuntimeError):
                    process.stdin.close()
        status = await self._exit_within(STOP_GRACE_S * self.scale)
        if status is None:
            self._signal(signal.SIGTERM)
            if await self._exit_within(TERM_GRACE_S * self.scale) is None:
                self.kill()
                await process.wait()
        # A harness that exited leaves its group alone: the stubs it left exit when the
        # hub closes their sockets, after the case has judged how its master stopped them.
        await asyncio.gather(*self._tasks, return_exceptions=True)
        return status

    async def _exit_within(self, seconds: float) -> int | None:
        assert self.process is not None
        try:
            return await asyncio.wait_for(asyncio.shield(self.process.wait()), seconds)
        except TimeoutError:
            return None

    def _signal(self, signum: int) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signum)

    def kill(self) -> None:
        self._stopping = True
        self._signal(signal.SIGKILL)


def _judged(response: dict[str, Any]) -> dict[str, Any]:
    if "unsupported" in response:
        raise Unsupported(str(response["unsupported"]))
    if "errored" in response:
        errored = response["errored"]
        trace = errored.get("traceback")
        raise HarnessError(
            f"the harness could not carry it out: {errored.get('message')}"
            + (f"\n{trace}" if trace else "")
        )
    return response

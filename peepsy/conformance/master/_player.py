"""Plays one master case's steps (conformance/MASTER.md, Cases): master-side steps drive
the harness, child steps act as, or expect something of, a child's current incarnation.
A step that does not hold raises :class:`StepFailed`; the harness's faults raise
:class:`HarnessError` or :class:`Unsupported` (``_harness.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from typing import Any

from peepsy.conformance._matchers import MatchContext, match, resolve
from peepsy.conformance._schemas import schema_errors
from peepsy.conformance._transcript import DEFAULT_WITHIN, StepFailed
from peepsy.conformance.master._case import MasterCase, step_op
from peepsy.conformance.master._harness import Harness, HarnessError
from peepsy.conformance.master._hub import Channel, Hub
from peepsy.conformance.master._record import Event

#: How long a spawned child has to connect, and the harness to answer a setup command:
#: process start-up on a busy machine, not a rule being timed.
STARTUP_MS = 10_000
#: ``not_before`` allows this much early (MASTER.md, Timing).
EARLY_MS = 10.0
_ENDS = ("eof", "signal", "killed", "exit")


class Player:
    def __init__(self, case: MasterCase, harness: Harness, hub: Hub, scale: float) -> None:
        self.case = case
        self.harness = harness
        self.hub = hub
        self.scale = scale
        self.ctx = MatchContext(schema_check=schema_errors)
        self.names: dict[str, int] = {}
        self.current: dict[str, Channel] = {}
        self.cursor: dict[int, int] = {}  # id(channel) -> index of its next unread event
        self.end_cursor: dict[int, int] = {}  # id(channel) -> past its last matched end
        self.stubborn: set[int] = set()  # id(channel) of children ignoring SIGTERM
        self.beats: dict[int, asyncio.Task[None]] = {}
        self.stopped = False
        #: From the ``stop`` command to the harness's own exit (or the suite's kill of it).
        self.stop_window: tuple[float, float] | None = None
        #: The case line of the step being played, for a case that runs out of budget.
        self.line: int | None = None

    def where(self) -> str:
        """Where a case that ran out of budget was waiting."""
        if self.line is None:
            return ""
        step = self.case.steps[self.case.step_lines.index(self.line)]
        return f", waiting at line {self.line} ({step_op(step)})"

    def _deadline(self, step: dict[str, Any], default: float = DEFAULT_WITHIN) -> float:
        return time.monotonic() + float(step.get("within", default)) * self.scale / 1000

    async def play(self) -> None:
        try:
            for line, step in zip(self.case.step_lines, self.case.steps, strict=True):
                self.line = line
                await getattr(self, "_" + step_op(step))(step)
            self.line = None
        finally:
            for task in self.beats.values():
                task.cancel()

    # -- master-side steps -------------------------------------------------------------

    async def _setup(self, command: dict[str, Any], step: dict[str, Any]) -> None:
        got = await self.harness.call(command, self._deadline(step, STARTUP_MS))
        if got.get("ok") is not True:
            raise HarnessError(f"{command['cmd']}: the answer is not ok: {got}")

    async def _group(self, step: dict[str, Any]) -> None:
        await self._setup({"cmd": "group", **step["group"]}, step)

    async def _spawn(self, step: dict[str, Any]) -> None:
        name = step["spawn"]
        command: dict[str, Any] = {"cmd": "spawn", "name": name, "argv": self.hub.argv(name)}
        command |= {k: step[k] for k in ("env", "mode", "group", "restart") if k in step}
        # Counted before the command: a harness may answer only after the new stub has
        # connected, and that stub is the incarnation this step waits for.
        number = len(self.hub.channels.get(name, ())) + 1
        await self._setup(command, step)
        channel = await self.hub.incarnation(name, number, self._deadline(step, STARTUP_MS))
        if channel is None:
            raise StepFailed(f"the master did not start child {name!r} (no stub connected)")
        self._adopt(name, channel)

    def _adopt(self, name: str, channel: Channel) -> None:
        self.current[name] = channel
        self.cursor[id(channel)] = 0

    async def _do(self, step: dict[str, Any]) -> None:
        command = resolve(step["do"], self.ctx)
        if command["cmd"] == "cancel" and isinstance(command.get("request"), str):
            command["request"] = self.names[command["request"]]
        seq = self.harness.send(command)
        if "as" in step:
            self.names[step["as"]] = seq

    async def _outcome(self, step: dict[str, Any]) -> None:
        name = step["outcome"]
        seq = self.names[name]
        got = await self.harness.response(seq, self._deadline(step))
        if got is None:
            within = step.get("within", DEFAULT_WITHIN)
            raise StepFailed(f"no outcome for {name!r} within {within} ms", step.get("is"))
        actual = got.get("outcome", got)
        if "is" in step:
            problems = match(step["is"], actual, self.ctx)
            if problems:
                raise StepFailed(
                    f"the outcome of {name!r} does not match: {problems[0]}",
                    step["is"],
                    actual,
                    problems,
                )
        if "not_before" in step:
            arrived = self.harness.arrived_at(seq) or time.monotonic()
            took = (arrived - self.harness.sent_at[seq]) * 1000
            if took < float(step["not_before"]) - EARLY_MS:
                raise StepFailed(
                    f"the outcome of {name!r} came after {took:.0f} ms, before"
                    f" {step['not_before']} ms",
                    actual=actual,
                )

    async def _no_outcome(self, step: dict[str, Any]) -> None:
        got = self.harness.answered(self.names[step["no_outcome"]])
        if self.harness.problem:
            raise HarnessError(self.harness.problem)
        if got is not None:
            raise StepFailed(f"{step['no_outcome']!r} has an outcome already", None, got)

    async def _stop(self, step: dict[str, Any]) -> None:
        self.stopped = True
        # The children behave well (exit at end of input or SHUTDOWN), so that a master
        # that waits for them stops in time; a child told to ignore SIGTERM is left be.
        ends = [
            asyncio.create_task(c.exit_when_told())
            for c in self.current.values()
            if not c.closed and id(c) not in self.stubborn
        ]
        try:
            await self.harness.stop()
        finally:
            for task in ends:
                task.cancel()
        harness = self.harness
        # Until the harness's own exit; a harness the suite had to kill: what its
        # group's signals did to the children is not the master's doing.
        until = harness.signalled_at or harness.exited_at or time.monotonic()
        self.stop_window = (harness.stop_sent_at or until, until)

    # -- child steps -------------------------------------------------------------------

    def _channel(self, step: dict[str, Any]) -> Channel:
        return self.current[step["child"]]

    def _lines(self, channel: Channel, start: int) -> list[tuple[int, Event]]:
        events = channel.record.events
        return [(i, e) for i, e in enumerate(events[start:], start) if e.kind == "line"]

    async def _expect(self, step: dict[str, Any]) -> None:
        channel = self._channel(step)
        pattern = step["expect"]
        wants_init = isinstance(pattern, dict) and pattern.get("type") == "INIT"
        allowed = step.get("allow", [])

        def next_line() -> tuple[int, Event] | str | None:
            for index, event in self._lines(channel, self.cursor[id(channel)]):
                self.cursor[id(channel)] = index + 1
                message = event.message
                if message is None:
                    continue  # not a JSON object: judged by the wire checks, once
                if message.get("type") == "INIT" and not wants_init:
                    continue
                if any(not match(a, message, self.ctx) for a in allowed):
                    continue
                return index, event
            return "ended" if channel.ended else None

        found = await channel.wait(next_line, self._deadline(step))
        if found is None or found == "ended":
            why = "the child ended first" if found else f"within {step.get('within', 2000)} ms"
            raise StepFailed(f"{step['child']} got no matching line ({why})", pattern)
        index, event = found
        problems = match(pattern, event.message, self.ctx)
        if not problems and "unlike" in step and not match(step["unlike"], event.message, self.ctx):
            raise StepFailed(
                f"{step['child']} got a line that matches what it must not: {step['unlike']}",
                pattern,
                event.message,
            )
        if problems:
            invalid = channel.problems.get(index)
            note = f" (not valid: {invalid[0]})" if invalid else ""
            raise StepFailed(
                f"{step['child']} got a line that does not match: {problems[0]}{note}",
                pattern,
                event.message,
                problems,
            )

    async def _expect_silence(self, step: dict[str, Any]) -> None:
        channel = self._channel(step)
        start = self.cursor[id(channel)]
        await asyncio.sleep(float(step["expect_silence"]) * self.scale / 1000)
        allowed = step.get("allow", [])
        for _, event in self._lines(channel, start):
            # A line that is not JSON is judged by the wire checks, once, not here; so is
            # an allowed message (a CANCEL, whose right to be sent m.cancel.* judge).
            message = event.message
            if message is None or message.get("type") == "INIT":
                continue
            if not any(not match(a, message, self.ctx) for a in allowed):
                raise StepFailed(
                    f"{step['child']} got a line while it expected silence",
                    None,
                    event.data.decode("utf-8", "replace"),
                )

    async def _send(self, step: dict[str, Any]) -> None:
        # ASCII escapes: a lone surrogate in the data has no UTF-8 bytes (FRAME-9).
        text = json.dumps(resolve(step["send"], self.ctx)) + step.get("end", "\n")
        self._channel(step).write_stdout(text.encode())

    async def _send_raw(self, step: dict[str, Any]) -> None:
        tail = "\n" if step.get("newline", True) else ""
        self._channel(step).write_stdout((step["send_raw"] + tail).encode("utf-8"))

    async def _send_hex(self, step: dict[str, Any]) -> None:
        self._channel(step).write_stdout(bytes.fromhex(step["send_hex"]))

    async def _stderr(self, step: dict[str, Any]) -> None:
        text = step["stderr"]
        if isinstance(text, dict):  # a message on the wrong stream, as its JSON line
            text = json.dumps(resolve(text, self.ctx)) + "\n"
        self._channel(step).write_stderr(text.encode("utf-8"))

    async def _heartbeat(self, step: dict[str, Any]) -> None:
        channel = self._channel(step)
        old = self.beats.pop(id(channel), None)
        if old is not None:
            old.cancel()
        if step["heartbeat"] > 0:
            every = float(step["heartbeat"]) / 1000
            self.beats[id(channel)] = asyncio.create_task(_beat(channel, every))

    async def _exit(self, step: dict[str, Any]) -> None:
        channel = self._channel(step)
        channel.exit(int(step["exit"]))
        await channel.wait(lambda: channel.closed, self._deadline(step, STARTUP_MS))

    async def _ignore_sigterm(self, step: dict[str, Any]) -> None:
        channel = self._channel(step)
        self.stubborn.add(id(channel))
        await channel.ignore_sigterm(self._deadline(step, STARTUP_MS))

    async def _close_stdout(self, step: dict[str, Any]) -> None:
        await self._channel(step).close_stdout(self._deadline(step, STARTUP_MS))

    def _ends(self, channel: Channel) -> list[tuple[int, Event]]:
        """The channel's ends of input, signals and deaths not yet matched by a step,
        in order, and only those before the suite began to signal the harness's group
        (those are the suite's doing, not the master's)."""
        cut = self.harness.signalled_at
        start = self.end_cursor.get(id(channel), 0)
        return [
            (i, e)
            for i, e in enumerate(channel.record.events[start:], start)
            if e.kind in ("eof", "signal", "killed") and (cut is None or e.at < cut)
        ]

    async def _expect_end(self, step: dict[str, Any], what: str, kind: str) -> None:
        """The next end of this ``kind`` after the one the previous such step matched: so
        that ``expect_eof``, ``expect_signal``, ``expect_killed`` in a row check their
        order."""
        channel = self._channel(step)

        def seen() -> int | None:
            for index, event in self._ends(channel):
                if event.kind == "signal" and event.value != signal.SIGTERM:
                    continue
                if event.kind == kind:
                    return index + 1
            return None

        found = await channel.wait(seen, self._deadline(step))
        if not found:
            within = step.get("within", DEFAULT_WITHIN)
            raise StepFailed(f"{step['child']}: {what} did not come within {within} ms")
        self.end_cursor[id(channel)] = found

    async def _expect_eof(self, step: dict[str, Any]) -> None:
        await self._expect_end(step, "end of input", "eof")

    async def _expect_signal(self, step: dict[str, Any]) -> None:
        await self._expect_end(step, "SIGTERM", "signal")

    async def _expect_killed(self, step: dict[str, Any]) -> None:
        await self._expect_end(step, "death by SIGKILL", "killed")

    async def _expect_alive(self, step: dict[str, Any]) -> None:
        channel = self._channel(step)
        since = len(channel.record.events)
        await asyncio.sleep(float(step["expect_alive"]) * self.scale / 1000)
        for event in channel.record.events[since:]:
            if event.kind in _ENDS:
                raise StepFailed(f"{step['child']} was not left alive: {event.kind}")
        if channel.closed:
            raise StepFailed(f"{step['child']} was not left alive: it is gone")

    async def _expect_respawn(self, step: dict[str, Any]) -> None:
        name = step["child"]
        number = self.current[name].record.incarnation + 1
        # Any newer incarnation will do, one that came before the step too; the steps
        # then address the newest.
        newest = len(self.hub.channels.get(name, ()))
        channel = await self.hub.incarnation(name, max(number, newest), self._deadline(step))
        if channel is None:
            within = step.get("within", DEFAULT_WITHIN)
            raise StepFailed(f"{name} was not restarted within {within} ms")
        self._adopt(name, channel)

    async def _expect_no_respawn(self, step: dict[str, Any]) -> None:
        name = step["child"]
        number = self.current[name].record.incarnation + 1
        ms = float(step["expect_no_respawn"])
        deadline = time.monotonic() + ms * self.scale / 1000
        if await self.hub.incarnation(name, number, deadline) is not None:
            raise StepFailed(f"{name} was restarted (incarnation {number})")

    async def _expect_stopped(self, step: dict[str, Any]) -> None:
        # End of input does not count: the harness's exit closes its children's stdin
        # too, so a black box cannot tell a master that closed it from one that left.
        name = step["child"]
        if self.stop_window is None:
            raise StepFailed(f"expect_stopped for {name} before any stop step")
        sent, until = self.stop_window
        for channel in self.hub.channels.get(name, []):
            for event in channel.record.events:
                if not sent <= event.at <= until:
                    continue
                shutdown = event.message is not None and event.message.get("type") == "SHUTDOWN"
                if shutdown or event.kind in ("signal", "killed"):
                    return
        raise StepFailed(
            f"{name} was left running by the stopped master: no SHUTDOWN, signal or kill"
            " between stop and the harness's exit"
        )


async def _beat(channel: Channel, every: float) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        while not channel.closed:
            beat = {
                "type": "HEARTBEAT",
                "pid": channel.record.pid,
                "timestamp": time.time_ns() // 10**6,
            }
            channel.write_stdout((json.dumps(beat) + "\n").encode())
            await asyncio.sleep(every)

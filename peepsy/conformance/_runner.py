"""The :class:`Runner`: plays one transcript's steps against one session of the worker,
one branch per kind of step, and raises :class:`StepFailed` or :class:`NotTestable`
when the worker does not do what a step expects. Apart from ``_transcript.py``, which
defines what a transcript and an outcome are and loads the files, because the reports,
the global checks and ``--list`` need those without playing anything.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from dataclasses import dataclass
from typing import Any

from peepsy.conformance._matchers import MatchContext, Mismatch, match, resolve
from peepsy.conformance._transcript import (
    DEFAULT_WITHIN,
    STARTUP_ALLOWANCE_MS,
    NotTestable,
    StepFailed,
    Transcript,
    TranscriptError,
)
from peepsy.conformance._wire import Session, WireLine


@dataclass(slots=True)
class Runner:
    """Plays one transcript against one fresh session of the worker."""

    session: Session
    ctx: MatchContext
    init_message: dict[str, Any] | None

    async def play(self, transcript: Transcript) -> None:
        if transcript.init and self.init_message is not None:
            extra = transcript.init if isinstance(transcript.init, dict) else {}
            self.session.send({**self.init_message, **extra})
        lines = transcript.step_lines or range(2, len(transcript.steps) + 2)
        for number, step in zip(lines, transcript.steps, strict=True):
            try:
                await self._step(step)
            except StepFailed as exc:
                raise StepFailed(
                    f"line {number}: {exc}", exc.expected, exc.actual, exc.mismatches
                ) from None

    async def _step(self, step: dict[str, Any]) -> None:  # noqa: PLR0915 - one branch per op
        s = self.session
        startup = 0.0 if s.heard else STARTUP_ALLOWANCE_MS
        within = float(step.get("within", DEFAULT_WITHIN)) + startup
        if "send" in step:
            s.send(resolve(step["send"], self.ctx))
            await s.drain()
        elif "send_raw" in step:
            tail = "\n" if step.get("newline", True) else ""
            s.send_raw((step["send_raw"] + tail).encode("utf-8"))
            await s.drain()
        elif "send_hex" in step:
            s.send_raw(bytes.fromhex(step["send_hex"]))
            await s.drain()
        elif "send_base64" in step:
            s.send_raw(base64.b64decode(step["send_base64"]))
            await s.drain()
        elif "send_large" in step:
            spec = step["send_large"]
            message = {
                "type": "REQUEST",
                "id": spec["id"],
                "action": spec["action"],
                "data": "x" * spec["bytes"],
            }
            s.send(message)
            await s.drain()
        elif "send_nested" in step:
            spec = step["send_nested"]
            # Written as text: the depth may exceed what a JSON encoder recurses through.
            leaf = json.dumps(spec.get("leaf", 1))
            head = json.dumps({"type": "REQUEST", "id": spec["id"], "action": spec["action"]})
            data = "[" * spec["depth"] + leaf + "]" * spec["depth"]
            s.send_raw(f'{head[:-1]},"data":{data}}}\n'.encode())
            await s.drain()
        elif "expect" in step:
            await self._expect(
                step["expect"],
                within,
                step.get("allow", ()),
                step.get("untestable_if_silent"),
                step.get("untestable_if_mismatch"),
            )
        elif "expect_ready" in step:
            await self._expect_ready(
                step["expect_ready"], within, step.get("untestable_if_missing")
            )
        elif "expect_unordered" in step:
            await self._expect_unordered(step["expect_unordered"], within)
        elif "answer" in step:
            spec = step["answer"]
            await self._expect(spec["request"], within)
            s.send(resolve(spec["response"], self.ctx))
            await s.drain()
        elif "expect_silence" in step:
            line = await s.next_message(float(step["expect_silence"]))
            if line is not None:
                raise StepFailed(
                    f"expected no message for {step['expect_silence']} ms, got one",
                    "no message (heartbeats aside)",
                    _payload(line),
                )
        elif "expect_heartbeats" in step:
            await self._expect_heartbeats(step)
        elif "close_stdin" in step:
            s.close_stdin()
        elif "expect_exit" in step:
            spec = step["expect_exit"]
            code = await s.wait_exit(float(spec.get("within", 5000)) + startup)
            if code is None:
                raise StepFailed(
                    f"expected the worker to exit within {spec.get('within', 5000)} ms;"
                    " it is still running",
                    "exit",
                    "still running",
                )
            want = spec.get("code", {"$any": True})
            problems = match(want, code, self.ctx, "$exit")
            if problems:
                raise StepFailed(f"exit status {code}", want, code, problems)
        elif "wait" in step:
            await asyncio.sleep(float(step["wait"]) / 1000)
        else:
            raise TranscriptError(f"unknown step {sorted(step)}")

    async def _expect_heartbeats(self, step: dict[str, Any]) -> None:
        """At least ``count`` HEARTBEATs within ``within`` ms. For a worker that has not
        written yet, the window opens at its first line: how long a process takes to
        start says nothing of its cadence, yet a window opened before it would count it
        (a check that fails on a busy machine). Waiting for that first line is bounded
        by the start-up allowance every other step has. Only HEARTBEATs read inside the
        window count: one read after it, yet before this step woke, does not."""
        s, spec = self.session, step["expect_heartbeats"]
        first, now = len(s.heartbeats), s.now()
        opened = now if s.heard else None
        limit = now + STARTUP_ALLOWANCE_MS + spec["within"]
        while True:
            if opened is None and s.heard:
                opened = s.heard_at
            deadline = limit if opened is None else opened + spec["within"]
            got = sum(1 for beat in s.heartbeats[first:] if beat.t <= deadline)
            if got >= spec["count"]:
                return
            left = deadline - s.now()
            if left <= 0 or s.output_closed:
                break
            # Woken by the next HEARTBEAT (or the end of the output), not a poll.
            s.heartbeat_seen.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(s.heartbeat_seen.wait(), left / 1000)
        if not s.heartbeats and step.get("untestable_if_none"):
            raise NotTestable(step["untestable_if_none"])
        silent = "" if opened is not None else " (it wrote nothing, start-up allowed for)"
        raise StepFailed(
            f"expected {spec['count']} HEARTBEATs within {spec['within']} ms, got {got}{silent}",
            f"{spec['count']} heartbeats",
            f"{got} heartbeats",
        )

    async def _expect(
        self,
        expected: Any,
        within: float,
        allow: Any = (),
        untestable: str | None = None,
        untestable_mismatch: str | None = None,
    ) -> WireLine:
        """The next message must match ``expected``; messages matching one of ``allow``
        may come before it and are passed over. With ``untestable``, silence makes the
        check untestable rather than failed; with ``untestable_mismatch``, so does a
        message that does not match (a worker that has not opted in to what the check
        needs)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within / 1000
        while True:
            line = await self.session.next_message((deadline - loop.time()) * 1000)
            if line is None:
                if untestable:
                    raise NotTestable(untestable)
                raise StepFailed(
                    self._nothing(f"expected a message within {within:.0f} ms"), expected, None
                )
            problems = match(expected, _payload(line), self.ctx)
            if not problems:
                return line
            if any(not match(other, _payload(line), self.ctx) for other in allow):
                continue
            if untestable_mismatch:
                raise NotTestable(
                    f"{untestable_mismatch} ({problems[0].path}: got {problems[0].actual})"
                )
            raise StepFailed("message does not match", expected, _payload(line), problems)

    async def _expect_ready(self, expected: Any, within: float, untestable: str | None) -> None:
        """A READY matching ``expected`` (READY lines never reach ``expect``)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.session.ready_seen.wait(), within / 1000)
        ready = self.session.ready[0] if self.session.ready else None
        actual = None if ready is None else _payload(ready)
        problems = [] if actual is None else match(expected, actual, self.ctx)
        if actual is not None and not problems:
            return
        if untestable:
            raise NotTestable(untestable)
        if actual is None:
            raise StepFailed(self._nothing(f"expected a READY within {within:.0f} ms"), expected)
        raise StepFailed("READY does not match", expected, actual, problems)

    def _nothing(self, what: str) -> str:
        if self.session.output_closed:
            return f"{what}; the worker closed its output (exited?) first"
        return f"{what}, got none"

    async def _expect_unordered(self, expected: list[Any], within: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within / 1000
        waiting = list(expected)
        while waiting:
            line = await self.session.next_message((deadline - loop.time()) * 1000)
            if line is None:
                raise StepFailed(
                    self._nothing(
                        f"expected {len(waiting)} more message(s) within {within:.0f} ms"
                    ),
                    waiting,
                    None,
                )
            best: list[Mismatch] | None = None
            for i, want in enumerate(waiting):
                problems = match(want, _payload(line), self.ctx)
                if not problems:
                    del waiting[i]
                    break
                if best is None or len(problems) < len(best):
                    best = problems
            else:
                raise StepFailed(
                    "message matches none of those expected", waiting, _payload(line), best or []
                )


def _payload(line: WireLine) -> Any:
    if line.message is not None:
        return line.message
    return {"(not JSON)": line.raw.decode("utf-8", "replace")}

"""One master case's run: a fresh hub and a fresh harness, ``start`` with the case's
options, the steps, ``stop``, and the verdict as an :class:`Outcome` (with a wire log
of the harness and every child channel, and the harness's stderr)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from peepsy.conformance._transcript import Outcome, StepFailed
from peepsy.conformance.master._case import MasterCase
from peepsy.conformance.master._harness import MHP_VERSION, Harness, HarnessError, Unsupported
from peepsy.conformance.master._hub import Channel, Hub
from peepsy.conformance.master._player import STARTUP_MS, Player
from peepsy.conformance.master._record import ChannelRecord


def start_command(master: dict[str, Any] | None) -> dict[str, Any]:
    return {"cmd": "start", "version": MHP_VERSION, "master": dict(master or {})}


async def run_case(
    case: MasterCase,
    argv: Sequence[str],
    folder: Path,
    scale: float,
    claimed: Sequence[str],
    live: set[Harness] | None = None,
) -> tuple[Outcome, list[ChannelRecord]]:
    """Plays ``case`` against a fresh harness; the records of every child it saw."""
    outcome = Outcome.of(case)
    missing = [c for c in case.claims_needed if c not in claimed]
    if missing:
        outcome.verdict, outcome.message = "skip", f"not claimed: {', '.join(missing)}"
        return outcome, []
    hub = Hub(folder, case.check)
    await hub.start()
    harness = Harness(argv, scale)
    player = Player(case, harness, hub, scale)
    started = time.monotonic()
    try:
        try:
            await harness.start()
        except OSError as exc:
            outcome.verdict, outcome.message = "error", f"could not start the harness: {exc}"
            return outcome, hub.records
        if live is not None:
            live.add(harness)
        await _within(_play(case, harness, player, scale), case.timeout * scale / 1000)
        if case.policy:
            outcome.verdict = "info"
            outcome.message = "library policy, not scored: this master does what the case describes"
    except StepFailed as exc:
        outcome.verdict = "info" if case.policy else "fail" if case.severity == "MUST" else "warn"
        outcome.message = ("library policy, not scored: " if case.policy else "") + str(exc)
        outcome.expected, outcome.actual, outcome.mismatches = (
            exc.expected,
            exc.actual,
            exc.mismatches,
        )
    except Unsupported as exc:
        outcome.verdict, outcome.message = "skip", f"unsupported: {exc}"
    except HarnessError as exc:
        outcome.verdict, outcome.message = "harness-error", str(exc)
    except TimeoutError:
        outcome.verdict = "timeout"
        outcome.message = f"the case did not finish within {case.timeout} ms{player.where()}"
    except Exception as exc:  # the suite itself broke: say so, go on with the next case
        outcome.verdict, outcome.message = "error", f"{type(exc).__name__}: {exc}"
    finally:
        outcome.duration_ms = (time.monotonic() - started) * 1000
        if not player.stopped:
            # Teardown is not judged here (only m.shut.* cases judge it): the children
            # behave well, so that a master waiting for them to exit is not kept waiting.
            ends = [asyncio.create_task(c.exit_when_told()) for c in _live(hub)]
            await harness.stop()
            for task in ends:
                task.cancel()
        if live is not None:
            live.discard(harness)
        await hub.close()
    if outcome.verdict not in ("pass", "skip"):
        outcome.trace = wire_log(harness, hub.records, started)
        outcome.stderr = harness.stderr_tail
    return outcome, hub.records


async def _play(case: MasterCase, harness: Harness, player: Player, scale: float) -> None:
    deadline = time.monotonic() + STARTUP_MS * scale / 1000
    answer = await harness.call(start_command(case.master), deadline)
    if answer.get("version") != MHP_VERSION:
        raise HarnessError(f"start: the harness speaks MHP {answer.get('version')}, not 1")
    await player.play()


async def _within(work: Coroutine[Any, Any, None], seconds: float) -> None:
    """``work`` in a task of its own, cancelled (TimeoutError) after ``seconds``: the
    case's task itself is never cancelled by its own budget (see wake_or_deadline)."""
    task = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    if not done:
        raise TimeoutError
    task.result()


def _live(hub: Hub) -> list[Channel]:
    return [c for channels in hub.channels.values() for c in channels if not c.closed]


def wire_log(harness: Harness, records: Sequence[ChannelRecord], started: float) -> list[str]:
    """Everything that crossed, in time order: harness commands and answers, and each
    child's lines both ways and its ends."""
    rows: list[tuple[float, str]] = list(harness.log)
    for record in records:
        who = f"{record.name}#{record.incarnation}"
        for event in record.events:
            if event.kind == "line":
                text = f"{who}< " + event.data.decode("utf-8", "replace").rstrip("\n")
            elif event.kind == "sent":
                text = f"{who}> " + event.data.decode("utf-8", "replace").rstrip("\n")
            else:
                extra = f" {event.value}" if event.value is not None else ""
                data = f" {event.data!r}" if event.data else ""
                text = f"{who}: {event.kind}{extra}{data}"
            rows.append((event.at, text))
    rows.sort(key=lambda row: row[0])
    return [f"{(at - started) * 1000:8.1f} ms  {text}" for at, text in rows][-400:]

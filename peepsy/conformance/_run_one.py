"""One check's run: a fresh worker, the transcript played within its budget, and the
verdict (with how the worker ended, its wire log and its stderr) as an
:class:`Outcome`. Apart from the scheduling in ``_suite.py``, which runs many of these
at once and knows nothing of how a single one is judged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from peepsy.conformance._matchers import MatchContext
from peepsy.conformance._runner import Runner
from peepsy.conformance._schemas import schema_errors
from peepsy.conformance._suite_setup import Options, init_message
from peepsy.conformance._transcript import (
    STARTUP_ALLOWANCE_MS,
    NotTestable,
    Outcome,
    StepFailed,
    Transcript,
)
from peepsy.conformance._wire import Session


async def run_one(
    transcript: Transcript,
    options: Options,
    mode: str,
    live: set[Session] | None = None,
    judged: Callable[[], None] | None = None,
) -> tuple[Outcome, Session]:
    """Plays one transcript against a fresh worker. ``judged`` is called once the
    verdict is known, before the worker is stopped (which may take its grace)."""
    outcome = Outcome.of(transcript)
    session = Session(options.argv, options.env, options.cwd, transport=options.transport)
    ctx = MatchContext(schema_check=schema_errors)
    started = time.monotonic()
    try:
        await session.start()
    except OSError as exc:
        outcome.verdict, outcome.message = "error", f"could not start the worker: {exc}"
        return outcome, session
    if live is not None:
        live.add(session)
    runner = Runner(session, ctx, init_message(mode))
    try:
        await _within_budget(
            runner.play(transcript), session, transcript.timeout * options.timeout_scale
        )
    except StepFailed as exc:
        outcome.verdict = "fail" if transcript.severity == "MUST" else "warn"
        outcome.message = str(exc)
        outcome.expected, outcome.actual, outcome.mismatches = (
            exc.expected,
            exc.actual,
            exc.mismatches,
        )
    except NotTestable as exc:
        outcome.verdict, outcome.message = "untestable", f"not testable: {exc}"
    except TimeoutError:
        outcome.verdict = "timeout"
        outcome.message = f"the case did not finish within {transcript.timeout} ms"
    except Exception as exc:  # the run itself broke: say so, and go on with the next case
        outcome.verdict, outcome.message = "error", f"{type(exc).__name__}: {exc}"
    except asyncio.CancelledError:
        session.kill()  # SIGINT: no grace for the worker, the user is waiting
        raise
    finally:
        if outcome.verdict != "pass":
            await _note_exit(session, outcome)
        if judged is not None:
            judged()
        await session.stop()
        if live is not None:
            live.discard(session)
    outcome.duration_ms = (time.monotonic() - started) * 1000
    outcome.trace = [line.render() for line in session.trace]
    outcome.stderr = session.stderr.decode("utf-8", "replace")[-4000:]
    return outcome, session


async def _note_exit(session: Session, outcome: Outcome) -> None:
    """A check that did not pass because the worker died says how it died: its exit
    status or signal (the stderr's end is shown with every failure)."""
    if session.returncode is None and session.output_closed:
        # Its output closed: it is exiting, as a rule. Wait for that, not for a time.
        await session.wait_exit(1000)
    if session.returncode is not None:
        outcome.worker_exit = session.exit_text()
        outcome.message += f" (the worker {outcome.worker_exit} during the check)"


async def _within_budget(play: Coroutine[Any, Any, None], session: Session, ms: float) -> None:
    """Play a case within its budget; a worker not heard from by then gets the start-up
    allowance on top (its start-up is the machine's load, not the case's doing)."""
    task = asyncio.ensure_future(play)
    try:
        done, _ = await asyncio.wait({task}, timeout=ms / 1000)
        if not done and not session.heard:
            done, _ = await asyncio.wait({task}, timeout=STARTUP_ALLOWANCE_MS / 1000)
        if not done:
            raise TimeoutError
        task.result()
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

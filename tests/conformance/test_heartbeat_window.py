"""``expect_heartbeats`` judges cadence, not start-up.

A worker's first line can come seconds after it is spawned on a busy machine (CI ran
eight checks' workers at once beside the test suite, and the reference worker missed
hb.cadence by one HEARTBEAT). Every other step allows for start-up until the worker
has written; a heartbeat window opened at spawn would instead count it against the
cadence. These workers start slowly on purpose (a pause before their first line stands
in for a slow start): one with the cadence INIT asks for must pass, and ones whose
cadence is too slow, or that never write, must still be caught. Load only delays them
further: that cannot save the slow ones, and the passing worker has 1.6 s to spare.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
import time
from pathlib import Path
from typing import Any

from peepsy.conformance._matchers import MatchContext
from peepsy.conformance._runner import Runner
from peepsy.conformance._transcript import StepFailed
from peepsy.conformance._wire import Session, WireLine
from tests.conformance._cli import PYTHON, run_cli, write_transcript

#: Starts after ``PAUSE`` s, then answers 404 to every REQUEST and sends a HEARTBEAT
#: every ``EVERY`` s (the first one at once) until its input ends.
WORKER = textwrap.dedent(
    """
    import json, sys, threading, time
    PAUSE, EVERY = {pause}, {every}
    lock = threading.Lock()
    def send(m):
        with lock:
            sys.stdout.write(json.dumps(m) + "\\n")
            sys.stdout.flush()
    time.sleep(PAUSE)
    def beat():
        while True:
            send({{"type": "HEARTBEAT", "timestamp": int(time.time() * 1000)}})
            time.sleep(EVERY)
    if EVERY:
        threading.Thread(target=beat, daemon=True).start()
    for raw in sys.stdin:
        msg = json.loads(raw)
        if msg.get("type") == "REQUEST":
            send({{"type": "RESPONSE", "id": msg["id"], "status": 404,
                  "error": "No handler registered for action: " + msg["action"]}})
    """
)


def judge(tmp_path: Path, pause: float, every: float, check: str, *selection: str) -> Any:
    """Runs the checks ``selection`` picks on such a worker; ``check``'s result."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(pause=pause, every=every), encoding="utf-8")
    report = tmp_path / "r.json"
    proc = run_cli(*selection, "--json", str(report), "--", PYTHON, str(script), cwd=tmp_path)
    assert report.exists(), proc.stdout + proc.stderr
    checks = json.loads(report.read_text(encoding="utf-8"))["checks"]
    [result] = [c for c in checks if c["check"] == check]
    return result


def cadence(tmp_path: Path, pause: float, every: float) -> Any:
    """The built-in hb.cadence check (3 HEARTBEATs within 2600 ms) on such a worker."""
    return judge(tmp_path, pause, every, "hb.cadence", "--only", "hb.cadence")


def test_a_slow_start_does_not_count_against_the_cadence(tmp_path: Path) -> None:
    # Beats at 2.0, 2.5 and 3.0 s: a window opened at spawn (2.6 s) would miss the third.
    check = cadence(tmp_path, pause=2.0, every=0.5)
    assert check["verdict"] == "pass", check


def test_a_slow_cadence_is_caught_after_a_slow_start(tmp_path: Path) -> None:
    # Beats at 2.0, 3.5 and 5.0 s: the window from the first line (2.0 to 4.6 s) holds
    # two. Had start-up only lengthened the window, all three would be in it.
    check = cadence(tmp_path, pause=2.0, every=1.5)
    assert check["verdict"] == "warn", check
    assert "expected 3 HEARTBEATs within 2600 ms, got 2" in check["message"], check


def test_a_worker_that_never_writes_is_caught_once_start_up_is_over(tmp_path: Path) -> None:
    case = write_transcript(
        tmp_path / "beats.ndjson",
        '{"check": "mine.beats", "requirement": ["HB-1"], "severity": "SHOULD",'
        ' "description": "d"}',
        '{"expect_heartbeats": {"count": 1, "within": 100}}',
    )
    check = judge(tmp_path, 0, 0, "mine.beats", "--no-builtin", "--transcripts", str(case))
    assert check["verdict"] == "warn", check
    assert check["message"].endswith(
        "expected 1 HEARTBEATs within 100 ms, got 0 (it wrote nothing, start-up allowed for)"
    ), check


# The window's rule itself, on a session without a process: the HEARTBEATs are lines the
# test hands over, each stamped with the time (ms since the worker started) it was read.


def _beat(t: float) -> WireLine:
    return WireLine(t, "from-worker", b'{"type":"HEARTBEAT"}\n', {"type": "HEARTBEAT"})


async def _hand_over(session: Session, stamps: list[float]) -> None:
    """Gives the runner the lines once it waits, as the reader would."""
    await asyncio.sleep(0)
    for t in stamps:
        if not session.heard:
            session.heard, session.heard_at = True, t
        session.heartbeats.append(_beat(t))
        session.heartbeat_seen.set()


def _window(stamps: list[float], count: int, within: int, now: float) -> StepFailed | None:
    """Plays the step ``now`` ms after the worker's start, with the beats ``stamps``."""

    async def play() -> StepFailed | None:
        session = Session(["(none)"])
        session._start = time.monotonic() - now / 1000  # Session.now() counts from here
        runner = Runner(session, MatchContext(), None)
        step = {"expect_heartbeats": {"count": count, "within": within}}
        handing = asyncio.ensure_future(_hand_over(session, stamps))
        try:
            await asyncio.wait_for(runner._step(step), 30)
        except StepFailed as exc:
            return exc
        finally:
            await handing
        return None

    return asyncio.run(play())


def test_the_window_opens_at_the_first_line_read() -> None:
    # The step begins at 1000 ms, the first line is read at 4000 ms: the three beats fall
    # within 100 ms of that line, and far outside 100 ms of the step's start.
    assert _window([4000, 4040, 4090], count=3, within=100, now=1000) is None


def test_a_beat_read_after_the_window_does_not_count_though_the_step_had_not_woken() -> None:
    # All three are handed over at once, before the step wakes; the third was read at
    # 4101 ms, one past the window.
    failed = _window([4000, 4040, 4101], count=3, within=100, now=4000)
    assert failed is not None
    assert str(failed) == "expected 3 HEARTBEATs within 100 ms, got 2"

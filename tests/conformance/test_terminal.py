"""Colour and the live progress line: on a terminal only, NO_COLOR honoured, and output
to a pipe or file byte for byte plain."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import time

import pytest

from peepsy.conformance._report import Expectations, format_progress, summary
from peepsy.conformance._suite import SuiteResult
from peepsy.conformance._terminal import PLAIN, LiveLine, Painter, wants_colour, wants_live_line
from peepsy.conformance._transcript import Outcome
from tests.conformance._cli import PYTHON, REFERENCE, ROOT, WORKER, run_cli

ESC = "\x1b["


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


class _Closed(io.StringIO):
    def isatty(self) -> bool:
        raise ValueError("I/O operation on closed file")


@pytest.mark.parametrize(
    ("tty", "choice", "env", "expected"),
    [
        (True, "auto", {}, True),
        (False, "auto", {}, False),
        (True, "auto", {"NO_COLOR": "1"}, False),
        # An empty NO_COLOR is unset, as the convention says.
        (True, "auto", {"NO_COLOR": ""}, True),
        (False, "auto", {"FORCE_COLOR": "1"}, True),
        (True, "auto", {"NO_COLOR": "1", "FORCE_COLOR": "1"}, False),
        (True, "auto", {"TERM": "dumb"}, False),
        (False, "always", {"NO_COLOR": "1"}, True),
        (True, "never", {"FORCE_COLOR": "1"}, False),
    ],
)
def test_when_colour_is_used(tty: bool, choice: str, env: dict[str, str], expected: bool) -> None:
    assert wants_colour(_Stream(tty), choice, env) is expected  # type: ignore[arg-type]


def test_the_live_line_needs_a_real_terminal() -> None:
    assert wants_live_line(_Stream(True), {}) is True
    assert wants_live_line(_Stream(False), {}) is False
    assert wants_live_line(_Stream(True), {"TERM": "dumb"}) is False
    # NO_COLOR is about colour: the tally still redraws itself.
    assert wants_live_line(_Stream(True), {"NO_COLOR": "1"}) is True
    assert wants_live_line(_Closed(), {}) is False
    assert wants_colour(_Closed(), "auto", {}) is False


def test_a_painter_wraps_only_when_enabled() -> None:
    assert Painter(True).paint("PASS", "pass") == "\x1b[32mPASS\x1b[0m"
    assert Painter(True).paint("x", "no-such-style") == "x"
    assert PLAIN.paint("FAIL", "fail") == "FAIL"


def _outcome(check: str, verdict: str) -> Outcome:
    return Outcome(
        check=check,
        requirement=("RESP-1",),
        level="core",
        severity="must",
        description="d",
        verdict=verdict,  # type: ignore[arg-type]
        source="s",
    )


def test_a_live_line_is_redrawn_below_each_result_and_cleared_at_the_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    out = _Stream(True)
    line = LiveLine(out, Painter(False), live=True)
    line.result("first", "pass", 1, 3)
    line.result("second", "fail", 2, 3)
    line.close()
    line.close()  # twice is harmless
    assert out.getvalue() == ("first\n[1/3] 1 pass\r\x1b[Ksecond\n[2/3] 1 pass 1 fail\r\x1b[K")


def test_a_tally_wider_than_the_terminal_keeps_to_its_head(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "12")
    out = _Stream(True)
    line = LiveLine(out, Painter(True), live=True)
    line.result("r", "pass", 1, 100)
    assert out.getvalue() == "r\n[1/100]"


def test_without_a_terminal_the_lines_are_the_plain_progress_lines() -> None:
    out = _Stream(False)
    line = LiveLine(out, PLAIN, live=False)
    for index, verdict in enumerate(("pass", "fail"), 1):
        line.result(format_progress(_outcome(f"c{index}", verdict), index, 2), verdict, index, 2)
    line.close()
    assert out.getvalue() == (
        "[  1/2] PASS  c1                                       RESP-1\n"
        "[  2/2] FAIL  c2                                       RESP-1\n"
    )


def test_the_summary_colours_failures_and_the_result() -> None:
    result = SuiteResult(outcomes=[_outcome("bad", "fail")], mode="sequential", worker=["w"])
    out = io.StringIO()
    summary(result, Expectations(frozenset()), trace=False, out=out, painter=Painter(True))
    text = out.getvalue()
    assert "\x1b[1;31m=== FAIL bad\x1b[0m: d" in text
    assert "result: \x1b[1;31mFAILED\x1b[0m" in text
    assert "| \x1b[1;31mfail      \x1b[0m |     1 |" in text
    # A verdict that did not occur keeps its cell plain.
    assert "| pass       |     0 |" in text


def _run_on_a_terminal(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """The command line with its stdout on a pseudo-terminal; what it showed there."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [PYTHON, "-m", "peepsy.conformance", *args],
        stdout=follower,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
        env={**os.environ, **env},
    )
    os.close(follower)
    shown = bytearray()
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1)
            if not ready:
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: every writer of the terminal has gone
                break
            if not chunk:
                break
            shown += chunk
        code = proc.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        proc.kill()
        os.close(leader)
    return code, shown.decode()


CLEAN_ENV = {"NO_COLOR": "", "FORCE_COLOR": "", "TERM": "xterm"}


def test_a_terminal_gets_colour_and_a_live_tally() -> None:
    code, shown = _run_on_a_terminal("--only", "resp.*", "--", PYTHON, str(WORKER), env=CLEAN_ENV)
    assert code == 0, shown
    assert "\x1b[32mPASS\x1b[0m" in shown
    assert "\r\x1b[K" in shown  # the tally was drawn and redrawn
    assert "result: \x1b[32mPASSED\x1b[0m" in shown


def test_no_color_keeps_the_tally_but_drops_the_colour() -> None:
    code, shown = _run_on_a_terminal(
        "--only", "resp.*", "--", PYTHON, str(WORKER), env={**CLEAN_ENV, "NO_COLOR": "1"}
    )
    assert code == 0, shown
    assert "\r\x1b[K" in shown
    without_tally = shown.replace("\r\x1b[K", "")
    assert ESC not in without_tally
    assert "result: PASSED" in shown


def test_a_pipe_gets_plain_text_even_from_a_colour_terminal_session() -> None:
    run = run_cli("--only", "resp.*", "--", PYTHON, str(WORKER))
    assert run.returncode == 0, run.stdout + run.stderr
    assert ESC not in run.stdout
    assert "\r" not in run.stdout
    forced = run_cli("--color", "always", "--only", "resp.unknown-action", *REFERENCE)
    assert "\x1b[32mPASS\x1b[0m" in forced.stdout

"""How the command line talks to a person at a terminal: colour and a live progress line.

Output that goes to a file or a pipe stays plain text, byte for byte what it was before
colour existed, because CI logs and scripts read it. Colour follows the conventions
users already set once for all their tools: ``NO_COLOR`` (any non-empty value) turns it
off, ``FORCE_COLOR`` (any non-empty value) turns it on for a pipe too, ``TERM=dumb``
turns it off; ``--color always|never`` beats all of them. The live line is a separate
choice: it rewrites itself with carriage returns, which only a terminal can show, so it
is drawn only when the stream is one (and not ``TERM=dumb``), whatever the colour.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Mapping
from typing import Literal, TextIO

ColorChoice = Literal["auto", "always", "never"]

_RESET = "\x1b[0m"
_CLEAR_LINE = "\r\x1b[K"
# Severity picks the colour: green passes, red failures of any kind, yellow a warning,
# and dim for everything that judged nothing.
_SGR = {
    "pass": "32",
    "fail": "1;31",
    "timeout": "1;31",
    "error": "1;31",
    "warn": "33",
    "skip": "2",
    "untestable": "36",
    "not-run": "2",
    "bold": "1",
}


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or stub stream is no terminal
        return False


def wants_colour(
    stream: TextIO, choice: ColorChoice = "auto", environ: Mapping[str, str] | None = None
) -> bool:
    """Whether to colour what goes to ``stream``: ``choice`` first, then ``NO_COLOR``,
    ``FORCE_COLOR`` and ``TERM``, then whether ``stream`` is a terminal."""
    if choice != "auto":
        return choice == "always"
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR"):
        return False
    if env.get("FORCE_COLOR"):
        return True
    if env.get("TERM") == "dumb":
        return False
    return _is_terminal(stream)


def wants_live_line(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``stream`` can show a line that redraws itself (a terminal that is not
    ``TERM=dumb``)."""
    env = os.environ if environ is None else environ
    return env.get("TERM") != "dumb" and _is_terminal(stream)


class Painter:
    """Wraps text in colour codes, or hands it back untouched when colour is off."""

    __slots__ = ("enabled",)

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def paint(self, text: str, style: str) -> str:
        """``text`` in the colour of ``style`` (a verdict, or ``"bold"``)."""
        if not self.enabled or style not in _SGR:
            return text
        return f"\x1b[{_SGR[style]}m{text}{_RESET}"


_TALLIED = ("pass", "fail", "warn", "timeout", "error", "skip", "untestable")

#: No colour: what files, pipes and ``NO_COLOR`` get.
PLAIN = Painter(False)


class LiveLine:
    """A one-line tally at the bottom of a terminal, redrawn after each result line.

    Result lines are written above it (the line is cleared first, then drawn again), so
    scrolling history keeps every result while the bottom always shows how far the run
    is. Drawn only when ``live``; otherwise every method but :meth:`result` does nothing.
    """

    def __init__(self, out: TextIO, painter: Painter, *, live: bool) -> None:
        self._out = out
        self._painter = painter
        self._live = live
        self._counts: Counter[str] = Counter()
        self._shown = False

    def result(self, text: str, verdict: str, index: int, total: int) -> None:
        """Write one finished check's line, then the tally of ``index`` of ``total``."""
        self._counts[verdict] += 1
        if self._shown:
            self._out.write(_CLEAR_LINE)
        self._out.write(text + "\n")
        if self._live:
            self._out.write(self._tally(index, total))
            self._shown = True
        self._out.flush()

    def _tally(self, index: int, total: int) -> str:
        head = f"[{index}/{total}]"
        shown = [(f"{self._counts[v]} {v}", v) for v in _TALLIED if self._counts[v]]
        # A line wider than the terminal wraps, and a carriage return then redraws only
        # its last row: keep it inside the width (colour codes take no columns).
        width = shutil.get_terminal_size((80, 20)).columns - 1
        if len(" ".join([head] + [text for text, _ in shown])) > width:
            return head[:width]
        return " ".join([head] + [self._painter.paint(text, v) for text, v in shown])

    def close(self) -> None:
        """Take the tally away, leaving the terminal as plain output would."""
        if self._shown:
            self._out.write(_CLEAR_LINE)
            self._out.flush()
            self._shown = False

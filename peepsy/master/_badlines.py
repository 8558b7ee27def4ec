"""Warnings for the bad lines one child sends, throttled so that a child spewing garbage
cannot flood the log: the first :data:`BAD_LINE_WARNINGS` within a window are logged,
the rest only counted (``rejected_lines``) and summed up when the next window opens."""

from __future__ import annotations

import logging
from typing import Final

from peepsy._errors import RemoteProtocolError

BAD_LINE_WARNINGS: Final = 10
BAD_LINE_WINDOW_S: Final = 10.0

log = logging.getLogger("peepsy.master")


class BadLineLog:
    __slots__ = ("_since", "_target", "_unlogged", "_warned")

    def __init__(self, target: str) -> None:
        self._target = target
        self._since = float("-inf")
        self._warned = 0
        self._unlogged = 0

    def warn(self, now: float, error: RemoteProtocolError) -> None:
        """Log ``error`` from a line read at ``now`` (loop time), unless over the limit."""
        if now - self._since >= BAD_LINE_WINDOW_S:
            if self._unlogged:
                log.warning("%s sent %d more bad lines", self._target, self._unlogged)
            self._since, self._warned, self._unlogged = now, 0, 0
        if self._warned < BAD_LINE_WARNINGS:
            self._warned += 1
            more = (
                f" (more within {BAD_LINE_WINDOW_S:.0f} s are only counted in rejected_lines)"
                if self._warned == BAD_LINE_WARNINGS
                else ""
            )
            log.warning("%s sent a bad line: %s%s", self._target, error, more)
        else:
            self._unlogged += 1

"""Validation of the integer options master and child share (durations are ms)."""

from __future__ import annotations


def check_int(name: str, value: int, minimum: int) -> None:
    # bool is an int to Python, never to us.
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} is an integer >= {minimum}, not {value!r}")


def check_ms(name: str, value: int) -> None:
    """A duration as on the wire: whole milliseconds, 1..300000 (REQ-4)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 300_000:
        raise ValueError(f"{name} is an integer number of milliseconds, 1..300000, not {value!r}")

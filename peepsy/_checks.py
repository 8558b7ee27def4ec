"""Validation of the arguments master and child share (durations are ms).

A value of the wrong type (a string, None, a list) raises :class:`TypeError`; a number
that is not an integer in range (``1.5``, ``True``, ``0``) raises :class:`ValueError`,
as it always has: a float or a bool is a number, only not one we take. Both name the
argument.
"""

from __future__ import annotations

from typing import Any


def _kind(name: str, value: object, what: str) -> None:
    if not isinstance(value, int | float):
        raise TypeError(f"{name} is {what}, not {type(value).__name__} ({value!r})")


def check_int(name: str, value: int, minimum: int) -> None:
    # bool is an int to Python, never to us.
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        _kind(name, value, f"an integer >= {minimum}")
        raise ValueError(f"{name} is an integer >= {minimum}, not {value!r}")


def check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name} is True or False, not {type(value).__name__} ({value!r})")


def check_ms(name: str, value: int) -> None:
    """A duration as on the wire: whole milliseconds, 1..300000 (REQ-4)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 300_000:
        what = "an integer number of milliseconds, 1..300000"
        _kind(name, value, what)
        raise ValueError(f"{name} is {what}, not {value!r}")


def check_priority(value: int) -> None:
    """A REQUEST's priority is an int; its range (32 bits, REQ-5) is the protocol
    core's to check, as for every line it writes (a LocalProtocolError)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"priority is an int, not {type(value).__name__} ({value!r})")


def check_str(name: str, value: Any, what: str) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{name} is {what}, not {type(value).__name__} ({value!r})")

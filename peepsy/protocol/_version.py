"""Protocol versions (spec VER-1..VER-3).

A version is MAJOR.MINOR. Minor versions only add optional members and messages, so a
peer of the same major understands the other with unknown members ignored. A peer that
states no version (every Node peepsy 1.x peer) speaks 1.0.
"""

from __future__ import annotations

from typing import Final

PROTOCOL_VERSION: Final = "1.0"
ASSUMED_VERSION: Final = "1.0"


def parse_version(text: str | None) -> tuple[int, int]:
    """``"1.2"`` -> ``(1, 2)``; ``None`` (no version stated) -> ``(1, 0)``."""
    major, _, minor = (text or ASSUMED_VERSION).partition(".")
    if not (major.isdigit() and minor.isdigit()):
        raise ValueError(f"not a MAJOR.MINOR protocol version: {text!r}")
    return int(major), int(minor)


def supports(peer_version: str | None, ours: str = PROTOCOL_VERSION) -> bool:
    """Whether we can talk to a peer announcing ``peer_version`` (same major, VER-2)."""
    return parse_version(peer_version)[0] == parse_version(ours)[0]

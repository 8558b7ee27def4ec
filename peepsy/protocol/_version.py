"""Protocol versions (spec VER-1..VER-3).

A version is MAJOR.MINOR. Minor versions only add optional members and messages, so a
peer of the same major understands the other with unknown members ignored. A peer that
states no version (every Node peepsy 1.x peer) speaks 1.0. 1.1 adds CANCEL (and the 499
answer), sent only to a peer that stated 1.1 or later.
"""

from __future__ import annotations

import re
from typing import Final

PROTOCOL_VERSION: Final = "1.1"
ASSUMED_VERSION: Final = "1.0"
#: The first version whose peers understand CANCEL (CANCEL-1).
CANCEL_SINCE: Final = (1, 1)


_VERSION = re.compile(r"(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})", re.ASCII)


def parse_version(text: object) -> tuple[int, int]:
    """``"1.2"`` -> ``(1, 2)``. Anything that is not a string (``None``, the absent
    marker of the message models) means no version was stated: ``(1, 0)``."""
    if not isinstance(text, str):
        text = ASSUMED_VERSION
    match = _VERSION.fullmatch(text)
    if match is None:
        raise ValueError(f"not a MAJOR.MINOR protocol version (VER-1): {text!r}")
    return int(match.group(1)), int(match.group(2))


def supports(peer_version: object, ours: str = PROTOCOL_VERSION) -> bool:
    """Whether we can talk to a peer announcing ``peer_version`` (same major, VER-2)."""
    return parse_version(peer_version)[0] == parse_version(ours)[0]

"""What a receiver can read, checked by the sender before it writes (FRAME-3, FRAME-13).

Three limits, each refused with its own error when sending:

- the line length, ``maxLineBytes``: each side's own, stated in INIT and READY (FRAME-6,
  FRAME-11; checked by the connection);
- the nesting: pydantic's serializer writes a value inside at most :data:`MAX_DEPTH`
  containers, and every peepsy receiver reads deeper than that: msgspec (the hot path)
  and, for what pydantic's parser (200 levels) refuses, msgspec again or the stdlib,
  both bounded only by Python's recursion limit (about 900 levels). So nothing is
  checked on the way out but the serializer's own refusal, and a line deeper than a
  receiver reads (from a peer that writes deeper) is answered as invalid (FRAME-13);
- the integer size: both of a receiver's parsers refuse an integer of more than
  :data:`MAX_INT_DIGITS` digits (whatever ``sys.set_int_max_str_digits`` says), while
  pydantic writes any: :func:`check_outgoing` looks for one, at C speed, in a line long
  enough to hold one.
"""

from __future__ import annotations

import re
from typing import Final

from peepsy._errors import LineTooLongForPeer, NumberTooLongForPeer

#: How many containers a value of ``data`` (or ``details``) may be inside: what
#: pydantic's serializer writes, and fewer than any peepsy receiver reads.
MAX_DEPTH: Final = 254
#: Digits an integer may have: what both parsers of a receiver read.
MAX_INT_DIGITS: Final = 4300
#: A line up to this long holds no integer too long, so needs no look.
QUICK: Final = MAX_INT_DIGITS

_DIGIT_BYTES: Final = b"0123456789"
_DIGITS: Final = bytes(48 if 48 <= i <= 57 else 32 for i in range(256))
_LONG_INT: Final = b"0" * (MAX_INT_DIGITS + 1)
_NOT_STRUCTURE: Final = bytes(i for i in range(256) if i not in b'[]{}"')
#: An exponent of three digits or more, or a run of 309 digits: what a number needs to
#: overflow a double (FRAME-3). Only a line that holds one is parsed again.
_HUGE_NUMBER: Final = re.compile(rb"[0-9][eE]\+?0*[1-9][0-9]{2}|[0-9]{309}")
#: A neighbourhood that holds a non-digit on each side shows a short number.
_NEAR: Final = 20


def could_overflow(line: bytes) -> bool:
    """Whether ``line`` holds a number that could be beyond a double's range."""
    return _HUGE_NUMBER.search(line) is not None


def _outside_strings(line: bytes) -> bytes:
    """``line`` (valid JSON) with the contents of its strings left out (the quotes
    stay). Escaped backslashes go first, so that what is left of a ``\\"`` is an
    escaped quote."""
    if b"\\" in line:
        line = line.replace(b"\\\\", b"").replace(b'\\"', b"")
    return b'""'.join(line.split(b'"')[0::2])


def depth(line: bytes) -> int:
    """How deep the containers of ``line`` (valid JSON) nest: each pass removes the
    innermost empty containers (a ``[]`` is marked before any ``{}`` is looked for, so
    that a pass removes one level only). For the rare lines that are written without
    pydantic's serializer, which counts for itself."""
    rest = _outside_strings(line).translate(None, _NOT_STRUCTURE).replace(b'"', b"")
    levels = 0
    while rest:
        rest = rest.replace(b"[]", b"0").replace(b"{}", b"0").replace(b"0", b"")
        levels += 1
    return levels


def has_long_integer(line: bytes) -> bool:
    """Whether ``line`` (valid JSON) holds a number with more than
    :data:`MAX_INT_DIGITS` digits in a row, outside its strings.

    Such a run holds one of the bytes at ``MAX_INT_DIGITS - 1``, ``2 * MAX_INT_DIGITS
    - 1``, ...: only those are looked at, and around one that is a digit, a few bytes
    each side tell a short number. A long line of text pays a slice; one of numbers, a
    few slices per 4 KB."""
    step = MAX_INT_DIGITS
    if len(line) <= step:
        return False
    samples = line[step - 1 :: step]
    if len(samples.translate(None, _DIGIT_BYTES)) == len(samples):
        return False  # no sampled byte is a digit
    for index, byte in enumerate(samples):
        if 48 <= byte <= 57:
            at = step - 1 + index * step
            if line[at + 1 : at + 1 + _NEAR].isdigit() or line[max(0, at - _NEAR) : at].isdigit():
                return _outside_strings(line).translate(_DIGITS).find(_LONG_INT) >= 0
    return False


def check_outgoing(line: bytes, what: str) -> None:
    """Raise if the peer's parser would refuse ``line`` (a line we are about to send)
    for an integer it holds; ``what`` names it in the message (``REQUEST for 'add'``)."""
    if has_long_integer(line):
        raise NumberTooLongForPeer(
            f"{what} not sent: it holds an integer of more than {MAX_INT_DIGITS} digits, "
            f"which a receiver does not read",
            limit=MAX_INT_DIGITS,
        )


def check_request(line: bytes, action: str, peer_limit: int) -> None:
    """Raise if the peer would not read this REQUEST line: too long for it (FRAME-11),
    or with too long an integer."""
    if len(line) > peer_limit:
        raise LineTooLongForPeer(
            f"REQUEST for {action!r} not sent: its line of {len(line)} bytes exceeds "
            f"the peer's limit of {peer_limit} bytes (maxLineBytes)",
            size=len(line),
            limit=peer_limit,
        )
    check_outgoing(line, f"REQUEST for {action!r}")

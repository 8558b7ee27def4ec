"""What a receiver can read, checked by the sender before it writes (spec FRAME-3, FRAME-6).

A receiver has three limits: the longest line (``maxLineBytes``, stated in INIT and
READY), the deepest nesting and the longest integer. The last two are the decoders':
pydantic's JSON parser (the models, which judge every line) refuses a line nested more
than :data:`MAX_DEPTH` levels deep and an integer of more than :data:`MAX_INT_DIGITS`
digits, whatever ``sys.set_int_max_str_digits`` says; msgspec (the hot path) goes deeper,
so the hot path sends the deep lines to the models. A sender that wrote such a line would
have it dropped by its peer and learn of it only at its timeout; it checks the same
numbers first, and refuses the line with a typed error.

The checks cost nothing on a short line and two ``bytes.count`` calls on a long one; only
a line that could break a limit is looked at closely.
"""

from __future__ import annotations

import re
from typing import Final

from peepsy._errors import LineTooLongForPeer, NestingTooDeepForPeer, NumberTooLongForPeer

#: Containers a line may nest, the message object included: pydantic's parser reads a
#: value inside this many and no more (so ``data`` of a flat REQUEST may nest 199 levels).
MAX_DEPTH: Final = 200
#: Digits an integer may have: both decoders refuse longer ones (Python's own default
#: ``sys.get_int_max_str_digits()``, fixed in the decoders).
MAX_INT_DIGITS: Final = 4300

#: Lines up to this long need no check of nesting or integers (nor of length: every
#: peer reads 1 MiB).
QUICK: Final = 2 * MAX_DEPTH
_OPENERS: Final = (b"[", b"{")
_DIGITS: Final = bytes(48 if 48 <= i <= 57 else 32 for i in range(256))
_LONG_INT: Final = b"0" * (MAX_INT_DIGITS + 1)
_EMPTY: Final = re.compile(rb"\[\]|\{\}")
_NOT_STRUCTURE: Final = bytes(i for i in range(256) if i not in b"[]{}")
#: An exponent of three digits or more, or a run of 309 digits: what a number needs to
#: overflow a double (FRAME-3). Only a line that holds one is parsed again.
_HUGE_NUMBER: Final = re.compile(rb"[0-9][eE]\+?0*[1-9][0-9]{2}|[0-9]{309}")


def could_be_too_deep(line: bytes) -> bool:
    """A cheap test that lets through every line nested deeper than :data:`MAX_DEPTH`."""
    return len(line) > QUICK and sum(map(line.count, _OPENERS)) > MAX_DEPTH


def could_overflow(line: bytes) -> bool:
    """Whether ``line`` holds a number that could be beyond a double's range."""
    return _HUGE_NUMBER.search(line) is not None


def _outside_strings(line: bytes) -> bytes:
    """``line`` without the contents of its JSON strings (the quotes stay). Escaped
    backslashes go first, so that what is left of a ``\\"`` is an escaped quote."""
    plain = line.replace(b"\\\\", b"").replace(b'\\"', b"")
    return b'""'.join(plain.split(b'"')[0::2])


def depth(line: bytes) -> int:
    """How deep the containers of ``line`` (valid JSON) nest, counted up to one level
    past :data:`MAX_DEPTH`: each pass removes the innermost empty containers."""
    rest = _outside_strings(line).translate(None, _NOT_STRUCTURE)
    levels = 0
    while rest and levels <= MAX_DEPTH:
        rest = _EMPTY.sub(b"", rest)  # one scan: a pass removes one level, no more
        levels += 1
    return levels


def has_long_integer(line: bytes) -> bool:
    """Whether ``line`` (valid JSON) holds a number with more than
    :data:`MAX_INT_DIGITS` digits in a row, outside its strings."""
    if len(line) <= MAX_INT_DIGITS or line.translate(_DIGITS).find(_LONG_INT) < 0:
        return False
    return _outside_strings(line).translate(_DIGITS).find(_LONG_INT) >= 0


def check_outgoing(line: bytes, what: str) -> None:
    """Raise if the peer's decoder would refuse ``line`` (a line we are about to send);
    ``what`` names it in the message (``REQUEST for 'add'``)."""
    if could_be_too_deep(line) and depth(line) > MAX_DEPTH:
        raise NestingTooDeepForPeer(
            f"{what} not sent: its JSON nests deeper than the {MAX_DEPTH} levels a "
            f"receiver reads (the message object is the first)",
            limit=MAX_DEPTH,
        )
    if has_long_integer(line):
        raise NumberTooLongForPeer(
            f"{what} not sent: it holds an integer of more than {MAX_INT_DIGITS} digits, "
            f"which a receiver does not read",
            limit=MAX_INT_DIGITS,
        )


def check_request(line: bytes, action: str, peer_limit: int) -> None:
    """Raise if the peer would not read this REQUEST line: too long for it (FRAME-11),
    too deep, or with too long an integer."""
    if len(line) > peer_limit:
        raise LineTooLongForPeer(
            f"REQUEST for {action!r} not sent: its line of {len(line)} bytes exceeds "
            f"the peer's limit of {peer_limit} bytes (maxLineBytes)",
            size=len(line),
            limit=peer_limit,
        )
    check_outgoing(line, f"REQUEST for {action!r}")

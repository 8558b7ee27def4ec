"""The common lines, read fast: a success RESPONSE and a flat REQUEST of the usual shape.

Nearly every line on a busy channel is one of the two. msgspec reads them straight into
the small structs below and checks each member's type and range as it reads (in C, with
no dict built on the way), which costs a fraction of a full validation through the
generated models. Whatever msgspec does not take (another type, a failure, a member the
structs do not know, any value outside the schema's range, JSON that msgspec refuses:
lone surrogates, NaN, numbers beyond a double) makes :func:`read` return ``None``, and
the full path through the models decides. So the models stay the only judge of what is
valid; this is a shortcut for lines they would accept, and a test holds the two to the
same verdict and the same values (tests/protocol/test_hot_path.py).
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import msgspec
from msgspec import Meta
from pydantic import MISSING

# Bounds from schema/common.json: RequestId, ActionName, StatusCode, TimeoutMs, Priority.
_Id = Annotated[str, Meta(min_length=1, max_length=128)]
_Action = Annotated[str, Meta(min_length=1, max_length=256)]
# A success status: failures carry members the models judge.
_SuccessStatus = Annotated[int, Meta(ge=100, lt=400)]
_TimeoutMs = Annotated[int, Meta(ge=1, le=300_000)]
_Priority = Annotated[int, Meta(ge=-(2**31), lt=2**31)]


# gc=False: a struct is read, taken apart and dropped at once, and JSON cannot make a
# cycle through it, so the collector need not track it.
class HotResponse(
    msgspec.Struct, tag_field="type", tag="RESPONSE", forbid_unknown_fields=True, gc=False
):
    """A RESPONSE with a success status, ``data`` or nothing (``MISSING``), nothing else."""

    id: _Id
    status: _SuccessStatus
    data: Any = MISSING


class HotRequest(
    msgspec.Struct, tag_field="type", tag="REQUEST", forbid_unknown_fields=True, gc=False
):
    """A flat REQUEST with only known members, each in range; an absent member is
    ``MISSING`` (a null timeout or priority is invalid, and is not taken)."""

    id: _Id
    action: _Action
    data: Any = MISSING
    timeout: _TimeoutMs = MISSING  # type: ignore[assignment]
    priority: _Priority = MISSING  # type: ignore[assignment]


# msgspec, not orjson: orjson reads an integer beyond 64 bits as a float, where the
# models (and JSON) keep it exact. Strict: 200.0 is not taken as 200, nor true as 1.
decode: Final = msgspec.json.Decoder(HotResponse | HotRequest).decode
#: What :data:`decode` raises for a line it does not take.
REFUSED: Final = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)
_decode_all: Final = msgspec.json.Decoder(list[HotResponse | HotRequest]).decode


def read(line: bytes) -> HotResponse | HotRequest | None:
    """The line as one of the common messages, or ``None`` for the models to judge."""
    try:
        # Declared here: msgspec's own types say as much from 0.23 on, not before.
        message: HotResponse | HotRequest = decode(line)
    except REFUSED:
        # Not the common shape (msgspec's ValidationError is a DecodeError), invalid
        # UTF-8 inside a string, or nesting deeper than msgspec goes: the models decide
        # (they answer a line too deep for any parser as invalid, FRAME-13).
        return None
    return message


def read_all(lines: bytes) -> list[HotResponse | HotRequest] | None:
    """Lines joined by newlines (a :class:`~peepsy.protocol.LineRun`'s data), each read
    as :func:`read` reads one, in one pass: as a JSON array, their newlines made commas.
    ``None`` when any of them is not taken (or is blank): each line must then be read
    alone, since one line's refusal must not cost the others. A newline cannot occur
    inside a JSON value, and a CR ending a line is whitespace to JSON, so each element
    is exactly one line. The array nests one level deeper than a line alone: a line
    within one level of msgspec's limit is refused here and read alone."""
    try:
        return _decode_all(b"[%b]" % lines.replace(b"\n", b","))
    except REFUSED:
        return None

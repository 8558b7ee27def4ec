"""The common lines, read fast: a success RESPONSE and a flat REQUEST of the usual shape.

Nearly every line on a busy channel is one of the two. Reading them with msgspec and
checking their few members directly costs a fifth of a full validation through the
generated models. Whatever this module does not recognise at a glance (another type,
a failure, a member it does not know, any value outside the schema's range, JSON that
msgspec refuses: lone surrogates, NaN, numbers beyond a double) returns ``None``, and
the full path through the models decides. So the models stay the only judge of what
is valid; this is a shortcut for lines they would accept, and a test holds the two to
the same verdict and the same values (tests/protocol/test_hot_path.py).
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

# msgspec, not orjson: orjson reads an integer beyond 64 bits as a float, where the
# models (and JSON) keep it exact.
_loads: Final = msgspec.json.Decoder().decode
_DecodeError: Final = msgspec.DecodeError
_INT32: Final = 2**31
# Bounds from schema/common.json: RequestId, ActionName, StatusCode, TimeoutMs.
_MAX_ID: Final = 128
_MAX_ACTION: Final = 256
_MAX_TIMEOUT: Final = 300_000
_ABSENT: Final = object()

#: The members the hot path knows; a line with any other goes to the models.
_REQUEST_KEYS: Final = frozenset({"type", "id", "action", "data", "timeout", "priority"})
_RESPONSE_KEYS: Final = frozenset({"type", "id", "status", "data"})


def read(line: bytes) -> dict[str, Any] | None:
    """The line as a JSON object, or ``None`` when msgspec does not take it."""
    try:
        obj = _loads(line)
    except (_DecodeError, UnicodeDecodeError, RecursionError):
        # Invalid UTF-8 inside a string, or nesting deeper than msgspec goes: the
        # models decide (they answer a line too deep for any parser as invalid, FRAME-13).
        return None
    return obj if type(obj) is dict else None


def success_response(obj: dict[str, Any]) -> bool:
    """Whether ``obj`` is a RESPONSE with a success status, ``data`` or nothing, and
    no other member: the models would accept it as it is."""
    if not obj.keys() <= _RESPONSE_KEYS:
        return False  # a failure's members, or one the models decide about
    rid = obj.get("id")
    status = obj.get("status")
    return (
        type(rid) is str and 0 < len(rid) <= _MAX_ID and type(status) is int and 100 <= status < 400
    )


def flat_request(obj: dict[str, Any]) -> bool:
    """Whether ``obj`` is a flat REQUEST with only known members, each in range."""
    if not obj.keys() <= _REQUEST_KEYS:
        return False  # an unknown member, or a legacy `request`: the models decide
    rid = obj.get("id")
    action = obj.get("action")
    if not (
        type(rid) is str
        and 0 < len(rid) <= _MAX_ID
        and type(action) is str
        and 0 < len(action) <= _MAX_ACTION
    ):
        return False
    # Absent and null differ: a null timeout or priority is invalid, so `get` with a
    # default that JSON cannot hold.
    timeout = obj.get("timeout", _ABSENT)
    if timeout is not _ABSENT and not (type(timeout) is int and 0 < timeout <= _MAX_TIMEOUT):
        return False
    priority = obj.get("priority", _ABSENT)
    return priority is _ABSENT or (type(priority) is int and -_INT32 <= priority < _INT32)

"""What a line that cannot be used still tells: the id of the REQUEST it was, so that
it can be answered (REQ-7, REQ-10, FRAME-12), or of the RESPONSE it was, so that the
request it answers can fail at once (MSG-9)."""

from __future__ import annotations

import json
import re
from typing import Any, Final

NOT_JSON: Final = object()
TOO_DEEP: Final = object()


def loads(line: bytes | str) -> Any:
    """The stdlib's reading of a line, ``NOT_JSON`` or, nested deeper than it reads,
    ``TOO_DEEP``. Bytes must be UTF-8: the stdlib would also guess UTF-16 and let
    encoded surrogates through."""
    try:
        return json.loads(line.decode() if isinstance(line, bytes) else line)
    except ValueError:
        return NOT_JSON
    except RecursionError:
        return TOO_DEEP


def recover_ids(line: bytes | str) -> tuple[str | None, str | None]:
    """What a broken line still tells: the readable id of a REQUEST (REQ-10), so that it
    can be answered (REQ-7), or the string id of a RESPONSE, so that the request it
    answers can fail at once (MSG-9)."""
    obj = loads(line)
    if not isinstance(obj, dict):
        return None, None
    kind = obj.get("type")
    if kind == "RESPONSE":
        rid = obj.get("id")
        return None, rid if isinstance(rid, str) else None
    if kind != "REQUEST":
        return None, None
    # REQ-10: a `request` member, whatever it holds, is where the id is; the flat id
    # beside a broken `request` is not read.
    if "request" in obj:
        body = obj["request"]
        candidate = body.get("id") if isinstance(body, dict) else None
    else:
        candidate = obj.get("id")
    if isinstance(candidate, str) and 0 < len(candidate) <= 128:
        return candidate, None
    return None, None


# How senders write a message's start: the type, then the id (or the legacy body's id).
_HEAD_ID: Final = re.compile(
    rb'[ \t\r]*\{[ \t\r]*"type"[ \t\r]*:[ \t\r]*"(REQUEST|RESPONSE)"[ \t\r]*,[ \t\r]*'
    rb'("request"[ \t\r]*:[ \t\r]*\{[ \t\r]*)?"id"[ \t\r]*:[ \t\r]*("(?:[^"\\]|\\.)*")'
)


def ids_from_head(head: bytes) -> tuple[str | None, str | None]:
    """The id of a REQUEST, or of a RESPONSE, read from the start of its line alone,
    when the line cannot be parsed whole (too long, FRAME-12; too deep or with too long
    a number, FRAME-3); ``None`` when the start does not show one."""
    match = _HEAD_ID.match(head)
    if match is None:
        return None, None
    kind, legacy, text = match.groups()
    rid = loads(text)
    if not (isinstance(rid, str) and 0 < len(rid) <= 128):
        return None, None
    if kind == b"REQUEST":
        return rid, None
    return (None, None) if legacy else (None, rid)


def request_id_from_head(head: bytes) -> str | None:
    """The id of a REQUEST read from the start of its line (see :func:`ids_from_head`)."""
    return ids_from_head(head)[0]

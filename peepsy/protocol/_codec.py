"""One line of bytes to one validated message, and back (spec FRAME-*, MSG-*)."""

from __future__ import annotations

import json
from typing import Any, Final, NoReturn

from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from peepsy._errors import (
    EncodeError,
    InvalidJson,
    InvalidMessage,
    Issue,
    UnknownMessageType,
)
from peepsy.protocol._messages import LEGACY_TAG, MESSAGE_ADAPTER, Message

_validate_json: Final = MESSAGE_ADAPTER.validate_json


def parse(line: bytes | str, *, line_number: int | None = None) -> Message:
    """Validate one line (without its newline) into a message model.

    Raises a :class:`~peepsy.RemoteProtocolError` subclass that says what is wrong,
    where (JSON paths), and which request id the line carried, if any.
    """
    try:
        message = _validate_json(line)
    except ValidationError as exc:
        _raise_for(exc, line, line_number)
    # JSON has no NaN or Infinity (RFC 8259), but the parser takes them: look closer only
    # when the bytes could hold one, so the common line pays two substring searches.
    raw = line if isinstance(line, bytes) else line.encode()
    if (b"NaN" in raw or b"Infinity" in raw) and _has_constant(line):
        raise InvalidJson(
            "NaN and Infinity are not JSON numbers",
            line=line_number,
            request_id=_recover_id(line),
        )
    return message


def encode(message: Message) -> bytes:
    """Serialize a message as one line, newline included, keys in schema order (FRAME-1).

    ``data`` and ``details`` are written as pydantic writes JSON: models, dataclasses,
    dates and UUIDs become JSON values, and a float that is NaN or infinite becomes
    ``null`` as in JavaScript's ``JSON.stringify``.
    """
    try:
        return message.__pydantic_serializer__.to_json(message, by_alias=True) + b"\n"
    except PydanticSerializationError as exc:
        raise EncodeError(f"cannot write {message.type} as JSON: {exc}") from exc


class _Constant(Exception):
    pass


def _reject_constant(_name: str) -> NoReturn:
    raise _Constant


def _has_constant(line: bytes | str) -> bool:
    try:
        json.loads(line, parse_constant=_reject_constant)
    except _Constant:
        return True
    return False


def _recover_id(line: bytes | str) -> str | None:
    """The request id a broken REQUEST line still carries, so it can be answered (REQ-7)."""
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, dict) or obj.get("type") != "REQUEST":
        return None
    body = obj.get("request")
    candidate = body.get("id") if isinstance(body, dict) else obj.get("id")
    if isinstance(candidate, str) and 0 < len(candidate) <= 128:
        return candidate
    return None


def json_path(loc: tuple[int | str, ...]) -> str:
    """``("request", "id")`` -> ``$.request.id``; ``("actions", 3)`` -> ``$.actions[3]``."""
    out = ["$"]
    for part in loc:
        out.append(f"[{part}]" if isinstance(part, int) else f".{part}")
    return "".join(out)


def _raise_for(exc: ValidationError, line: bytes | str, line_number: int | None) -> NoReturn:
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    first = errors[0]
    # string_unicode: a str line that is not valid Unicode (a lone surrogate), so no JSON.
    if first["type"] in ("json_invalid", "string_unicode"):
        raise InvalidJson(first["msg"], line=line_number) from None
    if not first["loc"]:
        # No union member was chosen: not an object, or no known `type`.
        _raise_untyped(line, line_number)
    # Locations start with the tags that routed the message: its type, and for a
    # REQUEST its shape. They are not part of the JSON path.
    kind = first["loc"][0]
    skip = 2 if kind == "REQUEST" else 1
    shape = "legacy REQUEST" if kind == "REQUEST" and first["loc"][1] == LEGACY_TAG else str(kind)
    issues = tuple(Issue(json_path(err["loc"][skip:]), err["msg"]) for err in errors)
    summary = "; ".join(str(i) for i in issues)
    raise InvalidMessage(
        f"invalid {shape}: {summary}",
        line=line_number,
        request_id=_recover_id(line),
        issues=issues,
    ) from None


def _raise_untyped(line: bytes | str, line_number: int | None) -> NoReturn:
    obj: Any = json.loads(line)  # valid JSON: the parser accepted it a moment ago
    if not isinstance(obj, dict):
        raise InvalidMessage(
            f"a message is a JSON object, not {_json_kind(obj)}",
            line=line_number,
            issues=(Issue("$", "expected an object"),),
        )
    kind = obj.get("type")
    if "type" not in obj:
        issue = Issue("$.type", "missing")
        raise InvalidMessage("message has no `type`", line=line_number, issues=(issue,))
    if not isinstance(kind, str):
        issue = Issue("$.type", f"expected a string, got {_json_kind(kind)}")
        raise InvalidMessage(f"`type` is {_json_kind(kind)}", line=line_number, issues=(issue,))
    raise UnknownMessageType(
        f"unknown message type {kind!r}",
        line=line_number,
        issues=(Issue("$.type", f"unknown type {kind!r}"),),
    )


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"

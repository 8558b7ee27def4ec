"""One line of bytes to one validated message, and back (spec FRAME-*, MSG-*)."""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final, NoReturn

import msgspec
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError, to_json, to_jsonable_python

from peepsy._errors import (
    EncodeError,
    InvalidJson,
    InvalidMessage,
    Issue,
    NestingTooDeepForPeer,
    UnknownMessageType,
)
from peepsy.protocol._ids import NOT_JSON, TOO_DEEP, ids_from_head, loads, recover_ids
from peepsy.protocol._limits import (
    MAX_DEPTH,
    MAX_INT_DIGITS,
    could_overflow,
    depth,
    has_long_integer,
)
from peepsy.protocol._messages import LEGACY_TAG, MESSAGE_ADAPTER, Message
from peepsy.protocol._plain_json import (
    FAST_OPTIONS,
    FAST_REFUSED,
    PLAIN_TYPES,
    fast_dumps,
    refuse,
)

_validate_json: Final = MESSAGE_ADAPTER.validate_json
_validate_python: Final = MESSAGE_ADAPTER.validate_python
#: A JSON escape of a UTF-16 surrogate, which pydantic's parser refuses when it stands alone.
_SURROGATE_ESCAPE: Final = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_msgspec_loads: Final = msgspec.json.Decoder().decode
_TOO_DEEP: Final = "the line nests deeper than the parser reads (Python's recursion limit)"
_TOO_LONG: Final = f"an integer has more than {MAX_INT_DIGITS} digits"


def parse(line: bytes | str, *, line_number: int | None = None) -> Message:
    """Validate one line (without its newline) into a message model.

    A number that equals an integer (``5000.0``, ``5e3``) is taken as that integer
    wherever the schema wants one (MSG-8), and strings may hold lone surrogate escapes
    (FRAME-9). Both cost nothing on the common line: they are handled only after the
    strict parse has failed.

    Raises a :class:`~peepsy.RemoteProtocolError` subclass that says what is wrong,
    where (JSON paths), and which request id the line carried, if any.
    """
    try:
        message = _validate_json(line)
    except ValidationError as exc:
        message = _parse_leniently(exc, line, line_number)
    # JSON has no NaN or Infinity (RFC 8259), but the parser takes them: look closer only
    # when the bytes could hold one, so the common line pays two substring searches.
    raw = line if isinstance(line, bytes) else line.encode(errors="surrogatepass")
    if (b"NaN" in raw or b"Infinity" in raw) and _has_constant(line):
        _refuse("NaN and Infinity are not JSON numbers", line, line_number)
    if could_overflow(raw) and _has_overflow(line):
        # The parser would read it as infinity, which no peer can send back (FRAME-3).
        _refuse("a number beyond the range of a double", line, line_number)
    return message


def _refuse(reason: str, line: bytes | str, line_number: int | None) -> NoReturn:
    request_id, response_id = recover_ids(line)
    raise InvalidJson(reason, line=line_number, request_id=request_id, response_id=response_id)


def _beyond_parsers(reason: str, raw: bytes, line_number: int | None) -> NoReturn:
    """Refuse valid JSON that no parser here reads (too deep, too long an integer,
    FRAME-13): its ids are read from its start, as nothing reads it whole."""
    request_id, response_id = ids_from_head(raw)
    raise InvalidJson(reason, line=line_number, request_id=request_id, response_id=response_id)


def encode(message: Message) -> bytes:
    """Serialize a message as one line, newline included, keys in schema order (FRAME-1).

    ``data`` and ``details`` are written as pydantic writes JSON: models, dataclasses,
    dates and UUIDs become JSON values, and a float that is NaN or infinite becomes
    ``null`` as in JavaScript's ``JSON.stringify``. A lone surrogate in a string is
    written as its ``\\uXXXX`` escape (FRAME-9), never as bytes that are not UTF-8.
    """
    serializer = message.__pydantic_serializer__
    try:
        return serializer.to_json(message, by_alias=True) + b"\n"
    except PydanticSerializationError as exc:
        if not _is_surrogate_failure(exc, message.type):
            raise EncodeError(f"cannot write {message.type} as JSON: {exc}") from exc
        return _dumps_escaping(serializer.to_python(message, by_alias=True), message.type) + b"\n"


def dumps(value: Any, kind: str) -> bytes:
    """One JSON value as bytes, written as :func:`encode` writes a message's ``data``."""
    if type(value) in PLAIN_TYPES:
        try:
            return fast_dumps(value, refuse, FAST_OPTIONS)
        except FAST_REFUSED:
            pass  # something inside it is not plain: pydantic writes the whole
    try:
        return to_json(value, by_alias=True, inf_nan_mode="null")
    except PydanticSerializationError as exc:
        if not _is_surrogate_failure(exc, kind):
            raise EncodeError(f"cannot write {kind} as JSON: {exc}") from exc
        return _dumps_escaping(value, kind)


def printable(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD: for messages meant for
    people (error texts), which the models hold only as valid Unicode."""
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


def _is_surrogate_failure(exc: Exception, kind: str) -> bool:
    if "Maximum serialization depth" in str(exc):
        raise _too_deep(kind) from exc
    return "surrogates not allowed" in str(exc)


def _too_deep(kind: str) -> NestingTooDeepForPeer:
    return NestingTooDeepForPeer(
        f"{kind} not sent: a value in it is inside more than {MAX_DEPTH} containers, "
        f"more than peepsy writes",
        limit=MAX_DEPTH,
    )


def _dumps_escaping(value: Any, kind: str) -> bytes:
    # The slow path of FRAME-9: the stdlib writes lone surrogates as characters, which
    # are then turned into escapes; they can only stand inside JSON strings.
    try:
        text = json.dumps(_plain(value), ensure_ascii=False, separators=(",", ":"))
    except RecursionError:
        raise _too_deep(kind) from None
    except (TypeError, ValueError, PydanticSerializationError) as exc:
        raise EncodeError(f"cannot write {kind} as JSON: {exc}") from exc
    out = _SURROGATE.sub(_escape, text).encode()
    # The stdlib goes deeper than pydantic's serializer: hold it to the same limit.
    if out.count(b"[") + out.count(b"{") > MAX_DEPTH and depth(out) > MAX_DEPTH:
        raise _too_deep(kind)
    return out


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match[0]):04x}"


def _plain(value: Any) -> Any:
    """``value`` as the JSON types the stdlib writes, mapped as pydantic maps them."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {_plain_key(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return _plain(to_jsonable_python(value, by_alias=True, inf_nan_mode="null"))


def _plain_key(key: Any) -> Any:
    return key if isinstance(key, str) else to_jsonable_python(key)


def _parse_leniently(exc: ValidationError, line: bytes | str, line_number: int | None) -> Message:
    """The slow path, taken only when the strict parse failed: it may have failed on a
    lone surrogate escape (FRAME-9) or an integral float (MSG-8) alone."""
    first = exc.errors(include_url=False, include_context=False)[0]
    if first["type"] == "json_invalid":
        obj = _read_again(first["msg"], line, line_number)
    elif _repairable(exc):
        obj = loads(line)
    else:
        _raise_for(exc, line, line_number)
    try:
        return _validate_python(obj)
    except ValidationError as again:
        exc = again
    originals: list[tuple[tuple[int | str, ...], str]] = []
    if _repair(obj, exc, originals):
        try:
            message = _validate_python(obj)
        except ValidationError as last:
            exc = last
        else:
            for loc, text in originals:
                _put_back(message, loc, text)
            return message
    return _raise_for(exc, line, line_number)


def _read_again(reason: str, line: bytes | str, line_number: int | None) -> Any:
    """What pydantic's parser refused as JSON, read by one that goes further: msgspec for
    a line nested deeper than its 200 levels (the hot path reads such a line, FRAME-13),
    the stdlib for a lone surrogate escape (FRAME-9). A line no parser reads is invalid,
    and answered by the ids at its start."""
    raw = line if isinstance(line, bytes) else line.encode(errors="surrogatepass")
    what = reason.removeprefix("Invalid JSON: ")
    if what.startswith("number out of range"):
        _beyond_parsers(_TOO_LONG, raw, line_number)
    if what.startswith("recursion limit"):
        try:
            return _msgspec_loads(raw)
        except RecursionError:
            _beyond_parsers(_TOO_DEEP, raw, line_number)
        except (msgspec.DecodeError, UnicodeDecodeError):
            pass  # a lone surrogate, or a number beyond a double, further on
    elif _SURROGATE_ESCAPE.search(raw) is None:
        raise InvalidJson(reason, line=line_number) from None
    if has_long_integer(raw):
        # The stdlib reads as many digits as sys.set_int_max_str_digits lets it; the
        # parsers of the hot path and the models, 4300.
        _beyond_parsers(_TOO_LONG, raw, line_number)
    obj = loads(line)
    if obj is TOO_DEEP:
        _beyond_parsers(_TOO_DEEP, raw, line_number)
    if obj is NOT_JSON:
        raise InvalidJson(reason, line=line_number) from None
    return obj


def _repairable(exc: ValidationError) -> bool:
    return any(err["type"] == "int_type" and _integral_float(err["input"]) for err in exc.errors())


def _integral_float(value: object) -> bool:
    return type(value) is float and math.isfinite(value) and value.is_integer()


def _repair(
    obj: Any, exc: ValidationError, originals: list[tuple[tuple[int | str, ...], str]]
) -> bool:
    """Turn, in place, each integral float the models refused into its integer (MSG-8)
    and each string they refused for a lone surrogate into a stand-in of the same
    length (FRAME-9), remembered in ``originals``. Returns whether anything changed."""
    changed = False
    for err in exc.errors(include_url=False, include_context=False):
        if not err["loc"]:
            continue  # the message as a whole: no member to repair
        loc = _object_path(err["loc"])
        value = err["input"]
        if err["type"] == "int_type" and _integral_float(value):
            replacement: Any = int(value)
        elif err["type"] == "string_unicode" and isinstance(value, str):
            replacement = _SURROGATE.sub("\ufffd", value)
            originals.append((loc, value))
        else:
            continue
        container = obj
        for part in loc[:-1]:
            container = container[part]
        container[loc[-1]] = replacement
        changed = True
    return changed


def _object_path(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    # The tags that routed the message (its type, a REQUEST's shape) are not members.
    return loc[2:] if loc[0] == "REQUEST" else loc[1:]


def _put_back(message: BaseModel, loc: tuple[int | str, ...], text: str) -> None:
    target: Any = message
    for part in loc[:-1]:
        target = target[part] if isinstance(part, int) else getattr(target, _attr(target, part))
    last = loc[-1]
    if isinstance(last, int):
        target[last] = text
    else:
        object.__setattr__(target, _attr(target, last), text)


def _attr(model: BaseModel, alias: str) -> str:
    for name, field in type(model).model_fields.items():
        if alias in (field.alias, name):
            return name
    raise KeyError(alias)  # pragma: no cover - the loc came from this model


class _Constant(Exception):
    pass


def _reject_constant(_name: str) -> NoReturn:
    raise _Constant


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _Constant
    return value


def _has_overflow(line: bytes | str) -> bool:
    return _stdlib_finds(line, parse_float=_finite)


def _has_constant(line: bytes | str) -> bool:
    return _stdlib_finds(line, parse_constant=_reject_constant)


def _stdlib_finds(line: bytes | str, **hook: Any) -> bool:
    """Whether the stdlib's parser, given ``hook``, finds what it raises for. A line
    too deep for it was read by msgspec (FRAME-13), which takes neither NaN nor a
    number beyond a double: there is nothing to find."""
    try:
        json.loads(line, **hook)
    except _Constant:
        return True
    except RecursionError:
        return False
    return False


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
    request_id, response_id = recover_ids(line)
    raise InvalidMessage(
        f"invalid {shape}: {summary}",
        line=line_number,
        request_id=request_id,
        response_id=response_id,
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

"""How the generalizer writes one recorded message as a step: members that differ from
run to run become matchers, request ids become captures, and data that a transcript
would read as a matcher, a ``$ref`` or a ``$literal`` is wrapped in ``$literal``. These
are pure functions over JSON values, apart from the walk over the recording
(``_generalize_lines.py``), so that the escaping rules read (and change) on their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from peepsy.conformance._matchers import is_matcher

#: Members of a worker's message that differ from run to run.
VOLATILE_INTEGERS: Final = ("pid", "timestamp", "requestsActive")


def _request_id(msg: Mapping[str, Any]) -> str | None:
    inner = msg.get("request")
    if "request" in msg:
        rid = inner.get("id") if isinstance(inner, dict) else None
    else:
        rid = msg.get("id")
    return rid if isinstance(rid, str) else None


def _set_request_id(expected: dict[str, Any], value: Any) -> None:
    if "request" in expected and isinstance(expected["request"], dict):
        expected["request"]["id"] = value
    else:
        expected["id"] = value


def _captures(expected: Any) -> str | None:
    if not isinstance(expected, dict):
        return None
    target = expected.get("request") if "request" in expected else expected
    rid = target.get("id") if isinstance(target, dict) else None
    return rid.get("$capture") if isinstance(rid, dict) else None


def _looks_special(value: dict[str, Any]) -> bool:
    return any(isinstance(k, str) and k.startswith("$") for k in value)


def _escape_send(value: Any) -> Any:
    """A message to send, with data that ``resolve`` would take for a ``$ref`` or a
    ``$literal`` wrapped in ``$literal``."""
    if isinstance(value, dict):
        if set(value) in ({"$ref"}, {"$literal"}):
            return {"$literal": value}
        return {k: _escape_send(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escape_send(v) for v in value]
    return value


def _escape_expected(value: Any, exact: bool) -> Any:
    """A value to expect as it is: objects that could be read as matchers are wrapped in
    ``$literal``; with ``exact``, objects get ``"$exact": true``."""
    if isinstance(value, dict):
        if _looks_special(value) or is_matcher(value):
            return {"$literal": value}
        inner = {k: _escape_expected(v, exact) for k, v in value.items()}
        return {"$exact": True, **inner} if exact else inner
    if isinstance(value, list):
        return [_escape_expected(v, exact) for v in value]
    return value


def _expected(msg: Mapping[str, Any], exact_data: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in msg.items():
        if key in VOLATILE_INTEGERS and isinstance(value, int) and not isinstance(value, bool):
            out[key] = {"$type": "integer"}
        elif key == "data":
            out[key] = _escape_expected(value, exact_data)
        elif key == "request" and isinstance(value, dict):
            out[key] = {
                k: (_escape_expected(v, exact_data) if k == "data" else _escape_expected(v, False))
                for k, v in value.items()
            }
        elif key == "errorPayload" and isinstance(value, dict):
            payload = {k: _escape_expected(v, False) for k, v in value.items()}
            if isinstance(value.get("stack"), str):
                payload["stack"] = {"$type": "string"}
            out[key] = payload
        else:
            out[key] = _escape_expected(value, False)
    return out

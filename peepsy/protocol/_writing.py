"""Writing the lines a side sends: requests and answers, from their fields.

The common lines (a flat REQUEST, a 200 RESPONSE) are written by the connection
directly, from pieces, without building and validating a model (a property test holds
the bytes equal to the models'); what is rarer (a legacy REQUEST, a failure, an answer
too long for the peer) goes through the generated models here, which check every
member. Kept apart from the connection, which decides what to send and when.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import ValidationError

from peepsy._errors import LocalProtocolError
from peepsy.protocol._codec import dumps, encode, printable
from peepsy.protocol._generated import (
    Cancel,
    ErrorPayload,
    RequestBody,
    RequestLegacy,
    Response,
)

ACTION_CACHE: Final = 1024
#: Action names as JSON, for the REQUEST lines: a sender uses a few names, many times.
ACTION_JSON: dict[str, bytes] = {}
_INT32: Final = 2**31


#: The end of a REQUEST line for each timeout seen: most senders use one or two.
TIMEOUT_TAILS: dict[int | None, bytes] = {None: b"}\n"}


def _timeout_tail(action: str, timeout: int | None) -> bytes:
    tail = _int_members(action, timeout, None) + b"}\n"
    if len(TIMEOUT_TAILS) < ACTION_CACHE:
        TIMEOUT_TAILS[timeout] = tail
    return tail


def _int_members(action: str, timeout: int | None, priority: int | None) -> bytes:
    out = b""
    if timeout is not None:
        if type(timeout) is not int or not 1 <= timeout <= 300_000:
            raise LocalProtocolError(
                f"invalid REQUEST for {action!r}: timeout is 1..300000 ms, not {timeout!r}"
            )
        out = b',"timeout":%d' % timeout
    if priority is not None:
        if type(priority) is not int or not -_INT32 <= priority < _INT32:
            raise LocalProtocolError(
                f"invalid REQUEST for {action!r}: priority is a 32-bit integer, not {priority!r}"
            )
        out += b',"priority":%d' % priority
    return out


def checked_action_json(action: str) -> bytes:
    """``action`` as JSON, after checking it is a name a REQUEST may carry."""
    if not isinstance(action, str) or not 0 < len(action) <= 256:
        raise LocalProtocolError(
            f"invalid REQUEST for {action!r}: an action is a string of 1..256 characters"
        )
    if len(ACTION_JSON) >= ACTION_CACHE:
        ACTION_JSON.clear()
    encoded = ACTION_JSON[action] = dumps(action, "REQUEST")
    return encoded


def success_line(request_id: str, data: Any) -> bytes:
    """A 200 RESPONSE, written from pieces: the bytes the model would give."""
    head, body = dumps(request_id, "RESPONSE"), dumps(data, "RESPONSE")
    return b'{"type":"RESPONSE","id":%b,"status":200,"data":%b}\n' % (head, body)


def request_tail(action: str, timeout: int | None, priority: int | None) -> bytes:
    """The end of a flat REQUEST line: its timeout and priority, if any, and ``}``."""
    if priority is None and (timeout is None or type(timeout) is int):
        return TIMEOUT_TAILS.get(timeout) or _timeout_tail(action, timeout)
    return _int_members(action, timeout, priority) + b"}\n"


def legacy_request_line(
    rid: str, action: str, data: Any, timeout: int | None, priority: int | None
) -> bytes:
    extra: dict[str, int] = {}
    if timeout is not None:
        extra["timeout"] = timeout
    if priority is not None:
        extra["priority"] = priority
    checked_action_json(action)  # the same check, and words, as for the flat shape
    # As for an answer's id: a lone surrogate (FRAME-9) is validated through a stand-in.
    wire_action = printable(action)
    try:
        body = RequestBody(id=rid, action=wire_action, data=data)
        message = RequestLegacy(type="REQUEST", request=body, **extra)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise LocalProtocolError(f"invalid REQUEST for {action!r}: {problems}") from None
    if wire_action is not action:
        object.__setattr__(body, "action", action)
    return encode(message)


def too_long_answer_line(request_id: str, size: int, limit: int) -> bytes:
    # FRAME-11: the answer cannot be sent, so its failure is; it fits (an id is short).
    message = (
        f"the RESPONSE of {size} bytes exceeds the peer's line limit of {limit} bytes "
        f"(maxLineBytes)"
    )
    payload = ErrorPayload(
        name="PeepsyLineTooLongError", message=message, code="PEEPSY_LINE_TOO_LONG"
    )
    return answer_line(request_id, 413, None, None, payload)


def answer_line(
    request_id: str,
    status: int,
    data: Any,
    error: str | None,
    error_payload: ErrorPayload | None,
) -> bytes:
    # The models hold only valid Unicode; an id with a lone surrogate (FRAME-9) is
    # validated through a stand-in and put back for writing.
    wire_id = printable(request_id)
    try:
        if status < 400:
            if error is not None or error_payload is not None:
                raise LocalProtocolError(f"a {status} RESPONSE carries no error")
            message = Response(type="RESPONSE", id=wire_id, status=status, data=data)
        else:
            if error is None:
                if error_payload is None:
                    raise LocalProtocolError(f"a {status} RESPONSE needs an error message")
                error = error_payload.message
            extra = {} if error_payload is None else {"error_payload": error_payload}
            message = Response(type="RESPONSE", id=wire_id, status=status, error=error, **extra)
    except ValidationError as exc:
        raise LocalProtocolError(f"invalid RESPONSE to {request_id!r}: {exc}") from exc
    if wire_id is not request_id:
        object.__setattr__(message, "id", request_id)
    return encode(message)


def cancel_line(request_id: str, reason: str | None) -> bytes:
    """A CANCEL (rare: written through the model, which checks the reason's length).
    The id is one of ours (the connection checks), so valid Unicode."""
    extra = {} if reason is None else {"reason": reason}
    try:
        message = Cancel(type="CANCEL", id=request_id, **extra)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise LocalProtocolError(f"invalid CANCEL for {request_id!r}: {problems}") from None
    return encode(message)

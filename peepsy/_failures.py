"""How an exception crosses the wire: :func:`error_to_wire` turns any exception into a
status and an error payload, :func:`error_from_wire` turns a failed RESPONSE back into a
:class:`~peepsy.RemoteError`, and :func:`bare_payload` strips what may not be sendable.

The exception classes themselves, and their tree, are in peepsy._errors.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import traceback
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from pydantic import MISSING

from peepsy._errors import (
    HandlerError,
    LineTooLong,
    PeepsyCancelledError,
    PeepsyNotFoundError,
    PeepsyProcessError,
    PeepsyShutdownError,
    PeepsyTimeoutError,
    PeepsyValidationError,
    RemoteError,
    RemoteProtocolError,
    RemoteTraceback,
)
from peepsy.protocol import ErrorPayload, Response
from peepsy.protocol._codec import printable

NOT_FOUND_TEMPLATE: Final = "No handler registered for action: {action}"
#: Statuses that tell the sender its request never ran, so it may go again (RESP-2).
NOT_RUN_STATUSES: Final = frozenset({408, 503})
#: The answer to a request its sender cancelled (CANCEL-3/4): never sent again, as the
#: sender gave it up.
CANCELLED_STATUS: Final = 499

#: Where the frames that run a handler live (peepsy's serving, asyncio, the executor's
#: thread): a handler's traceback starts after them.
_RUNNER_DIRS: Final = tuple(
    str(Path(path).parent) + os.sep
    for path in (asyncio.__file__, concurrent.futures.__file__, __file__)
)

_BY_CLASS: Final[dict[type[BaseException], tuple[int, str, str]]] = {
    PeepsyTimeoutError: (408, "PeepsyTimeoutError", "PEEPSY_TIMEOUT"),
    PeepsyNotFoundError: (404, "PeepsyNotFoundError", "PEEPSY_NOT_FOUND"),
    PeepsyValidationError: (422, "PeepsyValidationError", "PEEPSY_VALIDATION"),
    PeepsyShutdownError: (503, "PeepsyShutdownError", "PEEPSY_SHUTTING_DOWN"),
    PeepsyProcessError: (503, "PeepsyProcessError", "PEEPSY_PROCESS"),
    PeepsyCancelledError: (CANCELLED_STATUS, "PeepsyCancelledError", "PEEPSY_CANCELLED"),
}


def error_to_wire(
    exc: BaseException, *, include_stack: bool = False, ran: bool = False
) -> tuple[int, ErrorPayload]:
    """The status and error payload that answer a request whose handling raised ``exc``.

    The stack is left out unless ``include_stack`` (RESP-5). The payload's ``message``
    is also the RESPONSE's legacy ``error`` text. ``ran`` says the handler ran and
    raised: then the answer is never 408 or 503, which tell the sender the request did
    not run and may safely be sent again (a handler whose own call timed out has run).
    """
    # An error text may quote data with a lone surrogate (FRAME-9); texts are for people.
    message = printable(str(exc)) or type(exc).__name__
    extra: dict[str, Any] = {}
    if isinstance(exc, RemoteError):
        # Relaying a failure from further away keeps its status, identity and own text
        # (its name travels in the payload: str() would repeat it).
        message = printable(exc.message) or f"request failed with status {exc.status}"
        status = exc.status
        if exc.payload is not None:
            extra = exc.payload.model_dump(exclude={"stack"})
            extra.pop("message", None)
        else:
            extra = {"name": "RemoteError", "code": exc.code}
    elif isinstance(exc, HandlerError):
        status = exc.status
        extra = {"name": type(exc).__name__, "code": exc.code}
        if exc.details is not None:
            extra["details"] = exc.details
    elif isinstance(exc, LineTooLong):
        # FRAME-12: the request was dropped unread because its line was over our limit.
        status = 413
        extra = {"name": "PeepsyLineTooLongError", "code": "PEEPSY_LINE_TOO_LONG"}
    elif isinstance(exc, RemoteProtocolError) and not ran:
        status = 400
        extra = {"name": "PeepsyBadRequestError", "code": "PEEPSY_BAD_REQUEST"}
        if exc.issues:
            extra["details"] = [{"path": i.path, "message": i.message} for i in exc.issues]
    else:
        status, name, code = 500, type(exc).__name__, "PEEPSY_HANDLER_ERROR"
        for cls in type(exc).__mro__:
            if cls in _BY_CLASS:
                status, name, code = _BY_CLASS[cls]
                break
        else:
            own = getattr(exc, "code", None)
            if isinstance(own, str) and own:
                code = own
        extra = {"name": name, "code": code}
        if isinstance(exc, PeepsyValidationError) and exc.issues:
            extra["details"] = [{"path": i.path, "message": i.message} for i in exc.issues]
    if ran and status in NOT_RUN_STATUSES:
        status = 500
    given = extra.get("code")
    if given is not None and not (isinstance(given, str) and 0 < len(given) <= 256):
        # A code the protocol cannot carry (RESP-3 payload bounds) must not cost the
        # answer itself: leave it out.
        del extra["code"]
    if len(str(extra.get("name", ""))) > 256:
        extra["name"] = str(extra["name"])[:256]
    if include_stack and exc.__traceback__ is not None:
        extra["stack"] = "".join(traceback.format_exception(type(exc), exc, handler_frames(exc)))
    return status, ErrorPayload(message=message, **extra)


def handler_frames(exc: BaseException) -> TracebackType | None:
    """``exc``'s traceback from the first frame that is not peepsy's, asyncio's or the
    executor's own: what a handler's author wants to read. All of it when every frame
    is theirs (a failure inside peepsy, shown whole)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_RUNNER_DIRS):
        tb = tb.tb_next
    return tb or exc.__traceback__


def bare_payload(payload: ErrorPayload) -> ErrorPayload:
    """The payload without ``details`` and ``stack``: what is left to send when those
    cannot be written as JSON (a failure must still be answered, RESP-1)."""
    code = {} if payload.code is MISSING else {"code": payload.code}
    return ErrorPayload(name=payload.name, message=payload.message, **code)


def error_from_wire(
    response: Response,
    *,
    action: str | None = None,
    target: str | None = None,
    group: str | None = None,
) -> RemoteError:
    """The exception for a failed RESPONSE. Its ``message`` is ``error``, else
    ``errorPayload.message``, else empty (RESP-3); a ``stack`` sent becomes its
    ``__cause__``, a :class:`~peepsy.RemoteTraceback`, so that it prints like a chained
    local exception."""
    payload = None if response.error_payload is MISSING else response.error_payload
    if payload is not None and payload.stack is MISSING:
        # MISSING is truthy: `if err.payload.stack:` must not take an absent stack for one.
        # The empty text stays out of the fields set, as it was not sent.
        payload = payload.model_copy(update={"stack": ""})
        payload.__pydantic_fields_set__.discard("stack")
    if response.error is not MISSING and response.error:
        message = response.error
    elif payload is not None and payload.message:
        message = payload.message
    else:
        message = ""
    error = RemoteError(
        message,
        status=response.status,
        payload=payload,
        action=action,
        target=target,
        group=group,
    )
    if payload is not None and payload.stack:
        error.__cause__ = RemoteTraceback(payload.stack)
    return error


#: Codes peepsy gives by itself: they repeat the name, so the text leaves them out.
_OWN_CODE_PREFIX: Final = "PEEPSY_"


def describe(error: RemoteError) -> str:
    """A :class:`~peepsy.RemoteError`'s text: the remote exception as Python prints one,
    then where it happened: ``ZeroDivisionError: division by zero (action 'div' on 'w1',
    status 500)``. A peer that sends no name (a Node child's legacy ``error``) gives its
    message alone; one that sends no message, "no error message"."""
    message = error.message or "no error message"
    name = error.remote_name
    head = f"{name}: {message}" if name else message
    where = [f"action {error.action!r}"] if error.action is not None else []
    if error.target is not None:
        where.append(f"on {error.target!r}")
    if error.group is not None and error.group != error.target:
        where.append(f"in group {error.group!r}")
    facts = [" ".join(where)] if where else []
    facts.append(f"status {error.status}")
    code = error.remote_code
    if code and not code.startswith(_OWN_CODE_PREFIX) and code != HandlerError.code:
        facts.append(f"code {code!r}")
    return f"{head} ({', '.join(facts)})"

"""Runtime errors, and the two functions that carry an error across the wire.

    PeepsyError                         code PEEPSY_ERROR
    ├── PeepsyTimeoutError              PEEPSY_TIMEOUT: no answer in time (wire status 408)
    ├── PeepsyProcessError              PEEPSY_PROCESS: the child died, could not start, ...
    ├── PeepsyNotFoundError             PEEPSY_NOT_FOUND: no such target, group or action (404)
    ├── PeepsyValidationError           PEEPSY_VALIDATION: data does not fit a declared type (422)
    ├── PeepsyShutdownError             PEEPSY_SHUTTING_DOWN: refused while stopping (503)
    ├── HandlerError                    raised by a handler to choose status, code and details
    └── RemoteError                     PEEPSY_REMOTE: the peer answered with a failure status

:func:`error_to_wire` turns any exception into a status and an error payload;
:func:`error_from_wire` turns a failed RESPONSE back into a :class:`RemoteError`.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from typing import Any, Final

from pydantic import MISSING, ValidationError

from peepsy._errors import Issue, LineTooLong, PeepsyError, RemoteProtocolError
from peepsy.protocol import ErrorPayload, Response, json_path
from peepsy.protocol._codec import printable

NOT_FOUND_TEMPLATE: Final = "No handler registered for action: {action}"
#: Statuses that tell the sender its request never ran, so it may go again (RESP-2).
NOT_RUN_STATUSES: Final = frozenset({408, 503})


class PeepsyTimeoutError(PeepsyError):
    """A request got no answer within its timeout (or expired in a queue)."""

    code = "PEEPSY_TIMEOUT"
    status = 408

    def __init__(
        self,
        message: str,
        *,
        action: str | None = None,
        target: str | None = None,
        timeout_ms: int | None = None,
    ) -> None:
        super().__init__(message)
        self.action = action
        self.target = target
        self.timeout_ms = timeout_ms


class PeepsyProcessError(PeepsyError):
    """A child process failed: it died with the request in flight, could not be spawned,
    or is not running."""

    code = "PEEPSY_PROCESS"
    status = 503

    def __init__(
        self,
        message: str,
        *,
        target: str | None = None,
        returncode: int | None = None,
    ) -> None:
        super().__init__(message)
        self.target = target
        self.returncode = returncode


class PeepsyNotFoundError(PeepsyError):
    """No target or group by that name, or no handler for an action."""

    code = "PEEPSY_NOT_FOUND"
    status = 404


class PeepsyValidationError(PeepsyError):
    """Data did not match the type an :class:`~peepsy.Action` declares.

    ``issues`` lists each problem with its JSON path inside the data.
    """

    code = "PEEPSY_VALIDATION"
    status = 422

    def __init__(self, message: str, *, action: str, issues: Sequence[Issue] = ()) -> None:
        super().__init__(message)
        self.action = action
        self.issues = tuple(issues)

    @classmethod
    def from_pydantic(
        cls, exc: ValidationError, *, action: str, what: str
    ) -> PeepsyValidationError:
        issues = tuple(
            Issue(json_path(tuple(err["loc"])), err["msg"])
            for err in exc.errors(include_url=False, include_input=False, include_context=False)
        )
        listed = "; ".join(str(i) for i in issues)
        return cls(
            f"{what} of action {action!r} is invalid: {listed}", action=action, issues=issues
        )


class PeepsyShutdownError(PeepsyError):
    """The receiver is shutting down and takes no new requests."""

    code = "PEEPSY_SHUTTING_DOWN"
    status = 503


class HandlerError(PeepsyError):
    """Raise from a handler to answer with a chosen status, code and details.

    ``raise HandlerError("no such user", status=404, code="E_NO_USER", details={"id": 7})``
    """

    code = "HANDLER_ERROR"
    status = 500

    def __init__(
        self,
        message: str,
        *,
        status: int = 500,
        code: str | None = None,
        details: Any = None,
    ) -> None:
        if not 400 <= status <= 599:
            raise ValueError(f"a HandlerError status is 400..599, not {status}")
        super().__init__(message)
        self.status = status
        if code is not None:
            self.code = code
        self.details = details


class RemoteError(PeepsyError):
    """The peer answered a request with a failure status (>= 400).

    ``status``, ``message`` and, when the peer sent one, the structured ``payload``
    (name, code, details, stack) come from the RESPONSE.
    """

    code = "PEEPSY_REMOTE"

    def __init__(
        self,
        message: str,
        *,
        status: int,
        payload: ErrorPayload | None = None,
        action: str | None = None,
        target: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.payload = payload
        self.action = action
        self.target = target

    @property
    def remote_name(self) -> str | None:
        return None if self.payload is None else self.payload.name

    @property
    def remote_code(self) -> str | None:
        if self.payload is None or self.payload.code is MISSING:
            return None
        return self.payload.code

    @property
    def details(self) -> Any:
        if self.payload is None or self.payload.details is MISSING:
            return None
        return self.payload.details


_BY_CLASS: Final[dict[type[BaseException], tuple[int, str, str]]] = {
    PeepsyTimeoutError: (408, "PeepsyTimeoutError", "PEEPSY_TIMEOUT"),
    PeepsyNotFoundError: (404, "PeepsyNotFoundError", "PEEPSY_NOT_FOUND"),
    PeepsyValidationError: (422, "PeepsyValidationError", "PEEPSY_VALIDATION"),
    PeepsyShutdownError: (503, "PeepsyShutdownError", "PEEPSY_SHUTTING_DOWN"),
    PeepsyProcessError: (503, "PeepsyProcessError", "PEEPSY_PROCESS"),
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
        # Relaying a failure from further away keeps its status and identity.
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
        extra["stack"] = "".join(traceback.format_exception(exc))
    return status, ErrorPayload(message=message, **extra)


def bare_payload(payload: ErrorPayload) -> ErrorPayload:
    """The payload without ``details`` and ``stack``: what is left to send when those
    cannot be written as JSON (a failure must still be answered, RESP-1)."""
    code = {} if payload.code is MISSING else {"code": payload.code}
    return ErrorPayload(name=payload.name, message=payload.message, **code)


def error_from_wire(
    response: Response, *, action: str | None = None, target: str | None = None
) -> RemoteError:
    """The exception for a failed RESPONSE. Its message is ``error``, else
    ``errorPayload.message``, else a generic text naming the status (RESP-3)."""
    payload = None if response.error_payload is MISSING else response.error_payload
    if response.error is not MISSING and response.error:
        message = response.error
    elif payload is not None and payload.message:
        message = payload.message
    else:
        message = f"request failed with status {response.status}"
    return RemoteError(
        message, status=response.status, payload=payload, action=action, target=target
    )

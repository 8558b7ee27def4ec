"""Every exception peepsy raises, and :class:`Issue`: the tree is drawn here and nowhere
else in the code. docs/guide.md ("Errors") shows the same lines, and
tests/test_errors_tree.py holds both drawings to the classes below::

    PeepsyError                        PEEPSY_ERROR              base of every peepsy error
    ├── PeepsyTimeoutError             PEEPSY_TIMEOUT            no answer in time (408)
    ├── PeepsyProcessError             PEEPSY_PROCESS            a child died/is not running (503)
    │   └── PeepsySshError             PEEPSY_SSH                its host out of reach over ssh
    ├── PeepsyNotFoundError            PEEPSY_NOT_FOUND          no such target/group/action (404)
    ├── PeepsyValidationError          PEEPSY_VALIDATION         data does not fit an Action (422)
    ├── PeepsyShutdownError            PEEPSY_SHUTTING_DOWN      refused while stopping (503)
    ├── PeepsyCancelledError           PEEPSY_CANCELLED          its sender cancelled it (499)
    ├── HandlerError                   HANDLER_ERROR             raised to pick status/code/details
    ├── RemoteError                    PEEPSY_REMOTE             the peer answered status >= 400
    └── ProtocolError                  PEEPSY_PROTOCOL           a message broke docs/protocol.md
        ├── LocalProtocolError         PEEPSY_LOCAL_PROTOCOL     we were about to send it (our bug)
        │   ├── EncodeError            PEEPSY_ENCODE             a value cannot be written as JSON
        │   │   ├── NestingTooDeepForPeer PEEPSY_NESTING_TOO_DEEP data nested deeper than written
        │   │   └── NumberTooLongForPeer PEEPSY_NUMBER_TOO_LONG  an integer longer than a peer reads
        │   └── LineTooLongForPeer     PEEPSY_LINE_TOO_LONG      a REQUEST over the peer's limit
        └── RemoteProtocolError        PEEPSY_REMOTE_PROTOCOL    the peer sent it (its bug)
            ├── LineTooLong            PEEPSY_LINE_TOO_LONG      a line over the receiver's limit
            ├── TruncatedLine          PEEPSY_TRUNCATED_LINE     the stream ended inside a line
            ├── InvalidJson            PEEPSY_INVALID_JSON       the line is not UTF-8 JSON
            ├── InvalidMessage         PEEPSY_INVALID_MESSAGE    JSON, but not a peepsy message
            │   └── UnknownMessageType PEEPSY_UNKNOWN_TYPE       a type this version does not know
            ├── UnexpectedMessage      PEEPSY_UNEXPECTED_MESSAGE valid, but not for this role
            ├── DuplicateRequestId     PEEPSY_DUPLICATE_ID       a REQUEST reused a pending id
            └── InvalidResponse        PEEPSY_INVALID_RESPONSE   a bad answer to our request

The middle column is the stable ``code`` (a :class:`HandlerError` may be given its own);
in brackets, the status answered when a handler raises it. Remote protocol errors say
where (``line``, the JSON path of each of ``issues``) and, if the bad line names one, its
``request_id`` (to answer it, not leave its sender waiting) or ``response_id`` (to fail
the request it answers at once). peepsy._failures turns exceptions into wire errors and
back.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from pydantic import MISSING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pydantic import ValidationError

    from peepsy.protocol import ErrorPayload


class PeepsyError(Exception):
    """Base class of every error peepsy raises."""

    code: str = "PEEPSY_ERROR"


# --- failures of a request or a process -------------------------------------------------


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


class PeepsySshError(PeepsyProcessError):
    """A child's host could not be reached over ssh: unknown host, connection refused,
    authentication failed, host key refused, or no worker running in time.

    ``host`` is the ssh destination, ``ssh_message`` what ssh wrote on its stderr.
    """

    code = "PEEPSY_SSH"

    def __init__(
        self,
        message: str,
        *,
        host: str,
        ssh_message: str = "",
        target: str | None = None,
    ) -> None:
        super().__init__(message, target=target, returncode=255)
        self.host = host
        self.ssh_message = ssh_message


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
        """The error for pydantic's ``exc`` about ``what`` (``"request data"``, say) of
        ``action``, with one :class:`Issue` per problem, each at its JSON path."""
        # Not at the top: peepsy.protocol imports this module.
        from peepsy.protocol._codec import json_path  # noqa: PLC0415

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


class PeepsyCancelledError(PeepsyError):
    """The request was cancelled: its sender gave it up (CANCEL, protocol 1.1).

    A handler raises it, or :meth:`RequestContext.raise_if_cancelled
    <peepsy.RequestContext.raise_if_cancelled>` does, to stop early: the request is then
    answered 499. A caller whose request a shutdown cancelled gets it too; ``reason``
    says why (``"timeout"``, ``"cancelled"``, ``"shutdown"``) when known.
    """

    code = "PEEPSY_CANCELLED"
    status = 499

    def __init__(
        self,
        message: str = "the request was cancelled",
        *,
        action: str | None = None,
        target: str | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.action = action
        self.target = target
        self.reason = reason


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
    """The peer answered a request with a failure status (>= 400): ``status``,
    ``message`` (the peer's text) and any ``payload`` (name, code, details, stack) come
    from the RESPONSE; ``action``, ``target`` (who answered) and ``group`` say which
    request failed. ``str()`` reads ``ZeroDivisionError: division by zero (action 'div' on
    'w1', status 500)``; a stack sent is its ``__cause__``, a :class:`RemoteTraceback`."""

    code = "PEEPSY_REMOTE"

    def __init__(
        self,
        message: str,
        *,
        status: int,
        payload: ErrorPayload | None = None,
        action: str | None = None,
        target: str | None = None,
        group: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.payload = payload
        self.action = action
        self.target = target
        self.group = group

    def __str__(self) -> str:
        # The remote exception as Python prints one, then where it happened. A peer that
        # sends no name (a Node child's legacy ``error``) gives its message alone.
        head = f"{self.remote_name}: " if self.remote_name else ""
        where = [f"action {self.action!r}"] if self.action is not None else []
        if self.target is not None:
            where.append(f"on {self.target!r}")
        if self.group is not None and self.group != self.target:
            where.append(f"in group {self.group!r}")
        facts = [" ".join(where)] if where else []
        facts.append(f"status {self.status}")
        code = self.remote_code
        # peepsy's own codes repeat the name; a code the handler chose says more.
        if code and not code.startswith("PEEPSY_") and code != HandlerError.code:
            facts.append(f"code {code!r}")
        return f"{head}{self.message or 'no error message'} ({', '.join(facts)})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception's own reduce keeps neither its keyword arguments nor its cause.
        kept = {k: getattr(self, k) for k in ("status", "payload", "action", "target", "group")}
        return (partial(type(self), self.message, **kept), (), {"__cause__": self.__cause__})

    @property
    def remote_name(self) -> str | None:
        """The peer's name for its error (``errorPayload.name``, e.g. ``"ValueError"``), if it
        sent one."""
        return None if self.payload is None else self.payload.name

    @property
    def remote_code(self) -> str | None:
        """The peer's code for its error (``errorPayload.code``), if it sent one."""
        if self.payload is None or self.payload.code is MISSING:
            return None
        return self.payload.code

    @property
    def details(self) -> Any:
        """The peer's structured details about its error (``errorPayload.details``), if any."""
        if self.payload is None or self.payload.details is MISSING:
            return None
        return self.payload.details


class RemoteTraceback(Exception):
    """The ``__cause__`` of a :class:`RemoteError` whose peer sent its stack: its text is
    the remote traceback, so the caller's traceback shows it first. Never raised."""

    def __str__(self) -> str:
        return f'"""\n{str(self.args[0]).rstrip()}\n"""'


# The protocol errors live in their own module (this one would pass 400 lines); they are
# imported last, as they derive from PeepsyError above.
from peepsy._protocol_errors import (  # noqa: E402
    DuplicateRequestId,
    EncodeError,
    InvalidJson,
    InvalidMessage,
    InvalidResponse,
    Issue,
    LineTooLong,
    LineTooLongForPeer,
    LocalProtocolError,
    NestingTooDeepForPeer,
    NumberTooLongForPeer,
    ProtocolError,
    RemoteProtocolError,
    TruncatedLine,
    UnexpectedMessage,
    UnknownMessageType,
)

__all__ = [
    "DuplicateRequestId",
    "EncodeError",
    "HandlerError",
    "InvalidJson",
    "InvalidMessage",
    "InvalidResponse",
    "Issue",
    "LineTooLong",
    "LineTooLongForPeer",
    "LocalProtocolError",
    "NestingTooDeepForPeer",
    "NumberTooLongForPeer",
    "PeepsyCancelledError",
    "PeepsyError",
    "PeepsyNotFoundError",
    "PeepsyProcessError",
    "PeepsyShutdownError",
    "PeepsyTimeoutError",
    "PeepsyValidationError",
    "ProtocolError",
    "RemoteError",
    "RemoteProtocolError",
    "RemoteTraceback",
    "TruncatedLine",
    "UnexpectedMessage",
    "UnknownMessageType",
]

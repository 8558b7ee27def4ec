"""The runtime error classes (peepsy._errors) and how errors cross the wire
(peepsy._failures; section 9, RESP-3, RESP-5, ERR-2)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import MISSING

from peepsy import (
    EncodeError,
    HandlerError,
    LocalProtocolError,
    PeepsyError,
    PeepsyNotFoundError,
    PeepsyProcessError,
    PeepsyShutdownError,
    PeepsyTimeoutError,
    PeepsyValidationError,
    RemoteError,
    error_from_wire,
    error_to_wire,
)
from peepsy._failures import bare_payload
from peepsy.protocol import ErrorPayload, InvalidJson, InvalidMessage, Issue, Response


def wire(exc: BaseException, **options: Any) -> tuple[int, dict[str, Any]]:
    status, payload = error_to_wire(exc, **options)
    dumped: dict[str, Any] = payload.model_dump()
    return status, dumped


def raised(exc: BaseException) -> BaseException:
    """``exc`` with a traceback, as a handler's exception has."""
    try:
        raise exc
    except BaseException as caught:
        return caught


# --- error_to_wire ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "status", "name", "code"),
    [
        (PeepsyTimeoutError("slow"), 408, "PeepsyTimeoutError", "PEEPSY_TIMEOUT"),
        (PeepsyNotFoundError("gone"), 404, "PeepsyNotFoundError", "PEEPSY_NOT_FOUND"),
        (
            PeepsyValidationError("bad", action="a"),
            422,
            "PeepsyValidationError",
            "PEEPSY_VALIDATION",
        ),
        (PeepsyShutdownError("closing"), 503, "PeepsyShutdownError", "PEEPSY_SHUTTING_DOWN"),
        (PeepsyProcessError("died"), 503, "PeepsyProcessError", "PEEPSY_PROCESS"),
        (PeepsyError("base"), 500, "PeepsyError", "PEEPSY_ERROR"),
        (EncodeError("not json"), 500, "EncodeError", "PEEPSY_ENCODE"),
        (LocalProtocolError("ours"), 500, "LocalProtocolError", "PEEPSY_LOCAL_PROTOCOL"),
        (ValueError("plain"), 500, "ValueError", "PEEPSY_HANDLER_ERROR"),
    ],
)
def test_each_error_class_has_its_status_name_and_code(
    exc: Exception, status: int, name: str, code: str
) -> None:
    message = str(exc)
    assert wire(exc) == (status, {"name": name, "message": message, "code": code})


def test_the_class_constants_agree_with_the_wire() -> None:
    for cls in (
        PeepsyTimeoutError,
        PeepsyNotFoundError,
        PeepsyShutdownError,
        PeepsyProcessError,
    ):
        exc = cls("x")
        status, payload = wire(exc)
        assert (status, payload["code"]) == (cls.status, cls.code)
    assert PeepsyValidationError.status == 422
    assert RemoteError.code == "PEEPSY_REMOTE"


def test_a_subclass_maps_like_its_peepsy_base() -> None:
    class SlowBackend(PeepsyTimeoutError):
        pass

    status, payload = wire(SlowBackend("backend slow"))
    assert (status, payload["code"]) == (408, "PEEPSY_TIMEOUT")


def test_validation_issues_become_details() -> None:
    exc = PeepsyValidationError(
        "bad", action="a", issues=[Issue("$.a", "missing"), Issue("$.b[0]", "not an int")]
    )
    assert wire(exc)[1]["details"] == [
        {"path": "$.a", "message": "missing"},
        {"path": "$.b[0]", "message": "not an int"},
    ]


def test_plain_exceptions_keep_their_class_and_an_own_string_code() -> None:
    class Quota(Exception):
        code = "E_QUOTA"

    class Numbered(Exception):
        code = 7

    class Blank(Exception):
        code = ""

    assert wire(Quota("over"))[1] == {"name": "Quota", "message": "over", "code": "E_QUOTA"}
    assert wire(Numbered("n"))[1]["code"] == "PEEPSY_HANDLER_ERROR"
    assert wire(Blank("b"))[1]["code"] == "PEEPSY_HANDLER_ERROR"
    # No message: the class name stands in, so `error` is never empty (RESP-3).
    assert wire(KeyboardInterrupt())[1]["message"] == "KeyboardInterrupt"
    assert wire(KeyError("k"))[1]["message"] == "'k'"


def test_handler_error_status_code_and_details() -> None:
    exc = HandlerError("no user", status=404, code="E_NO_USER", details={"id": 7})
    assert wire(exc) == (
        404,
        {"name": "HandlerError", "message": "no user", "code": "E_NO_USER", "details": {"id": 7}},
    )

    class Conflict(HandlerError):
        pass

    status, payload = wire(Conflict("taken", status=409, code="E_TAKEN"))
    assert (status, payload["name"], payload["code"]) == (409, "Conflict", "E_TAKEN")
    assert "details" not in payload
    # details=None means none; a falsy value is still sent.
    assert wire(HandlerError("zero", details=0))[1]["details"] == 0


def test_handler_error_defaults() -> None:
    exc = HandlerError("plain")
    assert (exc.status, exc.details) == (500, None)
    # Its default code stays out of the reserved PEEPSY_ prefix (ERR-1).
    assert wire(exc) == (500, {"name": "HandlerError", "message": "plain", "code": "HANDLER_ERROR"})


@pytest.mark.parametrize(
    "exc",
    [
        PeepsyTimeoutError("its own call timed out"),
        PeepsyShutdownError("its own call was refused"),
        PeepsyProcessError("its own child died"),
        HandlerError("busy", status=503, code="E_BUSY"),
        RemoteError("relayed", status=408),
    ],
    ids=["timeout", "shutdown", "process", "handler-503", "remote-408"],
)
def test_a_handler_that_ran_never_answers_a_status_that_means_never_ran(exc: Exception) -> None:
    # 408 and 503 tell the sender the request did not run and may go again.
    status, payload = wire(exc)
    assert status in (408, 503)
    ran_status, ran_payload = wire(exc, ran=True)
    assert ran_status == 500
    # Only the status changes: the error keeps its name and code.
    assert ran_payload == payload


@pytest.mark.parametrize(
    "exc", [ValueError("v"), HandlerError("h", status=404), RemoteError("r", status=422)]
)
def test_ran_leaves_other_statuses_alone(exc: Exception) -> None:
    assert wire(exc, ran=True) == wire(exc)


def test_bare_payload_keeps_name_message_and_code_only() -> None:
    full = ErrorPayload(name="E", message="m", code="C", details={"x": object()}, stack="s")
    assert bare_payload(full).model_dump() == {"name": "E", "message": "m", "code": "C"}
    assert bare_payload(ErrorPayload(name="E", message="m", details=1)).model_dump() == {
        "name": "E",
        "message": "m",
    }


@pytest.mark.parametrize("status", [399, 600, 200, -1])
def test_handler_error_rejects_a_status_outside_400_to_599(status: int) -> None:
    with pytest.raises(ValueError, match=f"400..599, not {status}"):
        HandlerError("x", status=status)


@pytest.mark.parametrize("status", [400, 599])
def test_handler_error_accepts_the_bounds(status: int) -> None:
    assert HandlerError("x", status=status).status == status


def test_remote_error_is_relayed_with_its_status_and_identity() -> None:
    payload = ErrorPayload(
        name="KeyError", message="far away", code="E_FAR", details=[1], stack="remote stack"
    )
    exc = RemoteError("far away", status=409, payload=payload)
    status, dumped = wire(exc)
    assert status == 409
    # The remote stack is not passed on.
    assert dumped == {"name": "KeyError", "message": "far away", "code": "E_FAR", "details": [1]}
    bare = RemoteError("no payload", status=502)
    assert wire(bare) == (
        502,
        {"name": "RemoteError", "message": "no payload", "code": "PEEPSY_REMOTE"},
    )


def test_a_relayed_remote_error_without_code_has_none() -> None:
    exc = RemoteError("m", status=500, payload=ErrorPayload(name="Error", message="m"))
    assert wire(exc) == (500, {"name": "Error", "message": "m"})


def test_remote_protocol_errors_are_bad_requests() -> None:
    exc = InvalidMessage("invalid REQUEST", issues=(Issue("$.timeout", "too small"),))
    assert wire(exc) == (
        400,
        {
            "name": "PeepsyBadRequestError",
            "message": "invalid REQUEST",
            "code": "PEEPSY_BAD_REQUEST",
            "details": [{"path": "$.timeout", "message": "too small"}],
        },
    )
    status, payload = wire(InvalidJson("not JSON", line=3))
    assert (status, payload["message"]) == (400, "line 3: not JSON")
    assert "details" not in payload


def test_the_stack_is_included_only_when_asked_and_only_if_raised() -> None:
    exc = raised(ValueError("deep"))
    assert "stack" not in wire(exc)[1]
    stack = wire(exc, include_stack=True)[1]["stack"]
    assert stack.startswith("Traceback")
    assert "ValueError: deep" in stack
    # An exception that was never raised has no stack to show.
    assert "stack" not in wire(ValueError("never raised"), include_stack=True)[1]
    handler = raised(HandlerError("h", status=400))
    assert "HandlerError: h" in wire(handler, include_stack=True)[1]["stack"]


@pytest.mark.parametrize(
    "exc",
    [
        HandlerError("empty code", code=""),
        HandlerError("long code", code="E" * 300),
        type("Long", (Exception,), {"code": "C" * 300})("long own code"),
    ],
    ids=["empty-code", "long-code", "long-own-code"],
)
def test_error_to_wire_always_gives_a_payload_that_can_be_sent(exc: Exception) -> None:
    # Whatever a handler raises, the request must still be answered (RESP-1), so
    # error_to_wire must not raise: a code the schema refuses (1..256 characters) has
    # to be replaced, not passed on.
    status, payload = error_to_wire(exc)
    assert 400 <= status <= 599
    assert ErrorPayload.model_validate(payload.model_dump()) == payload


# --- error_from_wire (RESP-3) ----------------------------------------------------------------


def response(**members: Any) -> Response:
    return Response.model_validate({"type": "RESPONSE", "id": "m1", **members})


def test_the_message_is_error_first() -> None:
    payload = {"name": "E", "message": "from payload"}
    exc = error_from_wire(
        response(status=500, error="from error", errorPayload=payload), action="a", target="t"
    )
    assert isinstance(exc, RemoteError)
    assert (exc.message, exc.status) == ("from error", 500)
    assert str(exc) == "E: from error (action 'a' on 't', status 500)"
    assert (exc.action, exc.target) == ("a", "t")
    assert exc.remote_name == "E"


def test_the_message_falls_back_to_the_payload_then_to_nothing() -> None:
    payload = {"name": "E", "message": "from payload"}
    assert error_from_wire(response(status=500, errorPayload=payload)).message == "from payload"
    assert error_from_wire(response(status=500, error="", errorPayload=payload)).message == (
        "from payload"
    )
    generic = error_from_wire(response(status=503))
    assert generic.message == ""
    assert str(generic) == "no error message (status 503)"
    assert generic.payload is None
    empty = error_from_wire(response(status=418, errorPayload={"name": "E", "message": ""}))
    assert str(empty) == "E: no error message (status 418)"
    assert (error_from_wire(response(status=404)).action, generic.target) == (None, None)


def test_remote_error_properties() -> None:
    full = error_from_wire(
        response(
            status=422,
            error="bad",
            errorPayload={"name": "V", "message": "bad", "code": "C", "details": {"x": 1}},
        )
    )
    assert (full.remote_name, full.remote_code, full.details) == ("V", "C", {"x": 1})
    assert isinstance(full.payload, ErrorPayload)
    sparse = error_from_wire(
        response(status=500, error="e", errorPayload={"name": "N", "message": "e"})
    )
    assert (sparse.remote_name, sparse.remote_code, sparse.details) == ("N", None, None)
    assert sparse.payload is not None
    assert sparse.payload.code is MISSING
    bare = error_from_wire(response(status=500, error="e"))
    assert (bare.remote_name, bare.remote_code, bare.details) == (None, None, None)
    assert bare.code == "PEEPSY_REMOTE"
    # A details value of null is a value.
    nulled = error_from_wire(
        response(status=500, error="e", errorPayload={"name": "N", "message": "e", "details": None})
    )
    assert nulled.details is None


def test_an_error_survives_the_round_trip() -> None:
    exc = HandlerError("no user", status=404, code="E_NO_USER", details={"id": 7})
    status, payload = error_to_wire(exc)
    back = error_from_wire(
        Response(
            type="RESPONSE", id="m1", status=status, error=payload.message, error_payload=payload
        )
    )
    assert (back.status, back.message, back.remote_name, back.remote_code, back.details) == (
        404,
        "no user",
        "HandlerError",
        "E_NO_USER",
        {"id": 7},
    )
    # ... and relaying it keeps it as it was.
    assert error_to_wire(back) == (status, payload)


# --- the error classes -------------------------------------------------------------------------


def test_error_attributes() -> None:
    timeout = PeepsyTimeoutError("t", action="a", target="w", timeout_ms=5)
    assert (timeout.action, timeout.target, timeout.timeout_ms) == ("a", "w", 5)
    assert PeepsyTimeoutError("t").action is None
    process = PeepsyProcessError("p", target="w", returncode=-9)
    assert (process.target, process.returncode) == ("w", -9)
    validation = PeepsyValidationError("v", action="a", issues=[Issue("$", "bad")])
    assert validation.issues == (Issue("$", "bad"),)
    for cls in (
        PeepsyTimeoutError,
        PeepsyProcessError,
        PeepsyNotFoundError,
        PeepsyShutdownError,
        HandlerError,
        RemoteError,
        PeepsyValidationError,
    ):
        assert issubclass(cls, PeepsyError)


def test_an_absent_stack_is_falsy_and_a_sent_one_is_kept() -> None:
    bare = Response(
        type="RESPONSE",
        id="m1",
        status=500,
        error="boom",
        error_payload=ErrorPayload(name="E", message="boom"),
    )
    error = error_from_wire(bare)
    assert error.payload is not None
    assert not error.payload.stack
    assert "stack" not in error.payload.model_dump(exclude_unset=True)
    # Relayed on, it is still not sent.
    assert "stack" not in error_to_wire(error)[1].model_dump(exclude_unset=True)
    sent = Response(
        type="RESPONSE",
        id="m1",
        status=500,
        error="boom",
        error_payload=ErrorPayload(name="E", message="boom", stack="at f"),
    )
    payload = error_from_wire(sent).payload
    assert payload is not None
    assert payload.stack == "at f"

"""The exact bytes of every message shape the reference implementation sends.

Each line is produced through :class:`Connection`, as the master and child policies
produce it, and compared with a stored file in ``__snapshots__/``. A changed byte fails;
regenerate with ``pytest tests/protocol/test_wire_snapshots.py --snapshot-update`` and
review the diff, since other implementations read these bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from syrupy.assertion import SnapshotAssertion

from peepsy.protocol import (
    PROTOCOL_VERSION,
    Connection,
    ErrorPayload,
    Heartbeat,
    Init,
    MessageRejected,
    Ready,
    RequestReceived,
    Role,
    Shutdown,
    parse,
)

ACTION = "add"


def _child_owing(action: str = ACTION) -> tuple[Connection, str]:
    """A child that has received one REQUEST from a master and owes it an answer."""
    master, child = Connection(Role.MASTER), Connection(Role.CHILD)
    rid, line = master.send_request(action, {"a": 1, "b": 2})
    (event,) = child.receive_data(line)
    assert isinstance(event, RequestReceived)
    return child, rid


def _failure(status: int, name: str, code: str, message: str, details: Any = None) -> bytes:
    child, rid = _child_owing()
    extra = {} if details is None else {"details": details}
    payload = ErrorPayload(name=name, message=message, code=code, **extra)
    return child.send_response(rid, status, error_payload=payload)


def request_unified_minimal() -> bytes:
    return Connection(Role.MASTER).send_request("ping")[1]


def request_unified_full() -> bytes:
    master = Connection(Role.MASTER)
    return master.send_request(ACTION, {"a": 1, "b": 2}, timeout=5000, priority=10)[1]


def request_legacy() -> bytes:
    master = Connection(Role.MASTER)
    return master.send_request(ACTION, {"a": 1, "b": 2}, timeout=5000, legacy=True)[1]


def request_from_child() -> bytes:
    return Connection(Role.CHILD).send_request("log", ["é", "日本"])[1]


def response_200_data() -> bytes:
    child, rid = _child_owing()
    return child.send_response(rid, 200, {"sum": 3})


def response_200_null() -> bytes:
    child, rid = _child_owing()
    return child.send_response(rid, 200)


def response_404() -> bytes:
    child, rid = _child_owing("nope")
    message = "No handler registered for action: nope"
    payload = ErrorPayload(name="PeepsyNotFoundError", message=message, code="PEEPSY_NOT_FOUND")
    return child.send_response(rid, 404, error_payload=payload)


def response_400() -> bytes:
    """REQ-7: a REQUEST whose id survived its invalid body is answered 400."""
    child = Connection(Role.CHILD)
    (event,) = child.receive_data(b'{"type":"REQUEST","id":"m1","action":""}\n')
    assert isinstance(event, MessageRejected)
    rid = event.error.request_id
    assert rid == "m1"
    payload = ErrorPayload(
        name="PeepsyBadRequestError",
        message="Invalid REQUEST: $.action: String should have at least 1 character",
        code="PEEPSY_BAD_REQUEST",
        details=[{"path": "$.action", "message": "String should have at least 1 character"}],
    )
    return child.send_response(rid, 400, error_payload=payload)


def response_408() -> bytes:
    return _failure(
        408, "PeepsyTimeoutError", "PEEPSY_TIMEOUT", "Request expired after 5000ms before it ran"
    )


def response_422() -> bytes:
    return _failure(
        422,
        "PeepsyValidationError",
        "PEEPSY_VALIDATION",
        "Invalid data for action: add",
        details=[
            {"path": "$.a", "message": "Input should be a valid integer"},
            {"path": "$.items[2].name", "message": "Field required"},
        ],
    )


def response_500() -> bytes:
    return _failure(
        500, "ValueError", "PEEPSY_HANDLER_ERROR", "invalid literal for int() with base 10: 'x'"
    )


def response_503() -> bytes:
    return _failure(
        503,
        "PeepsyShutdownError",
        "PEEPSY_SHUTTING_DOWN",
        "Worker is shutting down; request not accepted",
    )


def response_499() -> bytes:
    """CANCEL-3/4: the answer to a request its sender cancelled."""
    return _failure(
        499,
        "PeepsyCancelledError",
        "PEEPSY_CANCELLED",
        "request 'm1' for 'add' was cancelled by its sender (timeout)",
    )


def cancel() -> bytes:
    """CANCEL-1: a master gives up its request, saying why."""
    master = Connection(Role.MASTER)
    rid, _ = master.send_request(ACTION, {"a": 1, "b": 2}, timeout=1000)
    master.forget(rid)
    return master.send_cancel(rid, "timeout")


def cancel_from_child() -> bytes:
    """Either side cancels its own requests; the reason is optional."""
    child = Connection(Role.CHILD)
    rid, _ = child.send_request("log", None)
    return child.send_cancel(rid)


def init_minimal() -> bytes:
    return Connection(Role.MASTER).send(Init(type="INIT", mode="sequential"))


def init_full() -> bytes:
    message = Init(
        type="INIT",
        mode="concurrent",
        protocol=PROTOCOL_VERSION,
        target="worker1",
        heartbeat_interval=2000,
    )
    return Connection(Role.MASTER).send(message)


def ready() -> bytes:
    message = Ready(
        type="READY",
        pid=4242,
        protocol=PROTOCOL_VERSION,
        mode="sequential",
        actions=["add", "echo"],
        implementation="peepsy-python/0.1.0",
    )
    return Connection(Role.CHILD).send(message)


def heartbeat() -> bytes:
    message = Heartbeat(type="HEARTBEAT", pid=4242, timestamp=1764310000000, requests_active=3)
    return Connection(Role.CHILD).send(message)


def shutdown() -> bytes:
    return Connection(Role.MASTER).send(Shutdown(type="SHUTDOWN"))


def shutdown_timeout() -> bytes:
    return Connection(Role.MASTER).send(Shutdown(type="SHUTDOWN", timeout=5000))


SHAPES: dict[str, Callable[[], bytes]] = {
    "request-unified-minimal": request_unified_minimal,
    "request-unified-full": request_unified_full,
    "request-legacy": request_legacy,
    "request-from-child": request_from_child,
    "response-200-data": response_200_data,
    "response-200-null": response_200_null,
    "response-400": response_400,
    "response-404": response_404,
    "response-408": response_408,
    "response-422": response_422,
    "response-500": response_500,
    "response-499": response_499,
    "response-503": response_503,
    "init-minimal": init_minimal,
    "init-full": init_full,
    "ready": ready,
    "heartbeat": heartbeat,
    "shutdown": shutdown,
    "shutdown-timeout": shutdown_timeout,
    "cancel": cancel,
    "cancel-from-child": cancel_from_child,
}


@pytest.mark.parametrize("shape", SHAPES)
def test_wire_bytes(shape: str, wire: SnapshotAssertion) -> None:
    line = SHAPES[shape]()
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    parse(line)  # what we send, we accept
    assert line == wire


def test_every_status_of_the_reference_table_is_snapshotted() -> None:
    statuses = {int(name.split("-")[1]) for name in SHAPES if name.startswith("response-")}
    assert statuses == {200, 400, 404, 408, 422, 499, 500, 503}

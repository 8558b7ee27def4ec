# GENERATED FILE: DO NOT EDIT.
# source: schema/bundle.json (bundled from schema/*.json)
# source sha256: 41060c6f20d6ea892112b1d08083ac84daef582da573d2d0a1f76e7b1b0ccabb
# regenerate: python -m tools.generate
# generator: datamodel-code-generator (flags in tools/generate.py)

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from pydantic import MISSING
from typing_extensions import TypeAliasType

PeepsyBundle = TypeAliasType(
    "PeepsyBundle", Annotated[Any, Field(title="PeepsyBundle")]
)
"""
Root of the codegen input; the message models are the definitions.
"""


RequestId = TypeAliasType(
    "RequestId",
    Annotated[StrictStr, Field(max_length=128, min_length=1, title="RequestId")],
)
"""
Correlates a REQUEST with its RESPONSE. Any non-empty string of at most 128 characters; unique among the sender's outstanding requests. The two directions have separate id spaces.
"""


ActionName = TypeAliasType(
    "ActionName",
    Annotated[StrictStr, Field(max_length=256, min_length=1, title="ActionName")],
)
"""
The name of the handler a REQUEST asks for: any non-empty string of at most 256 characters, compared exactly (case-sensitive, no normalization).
"""


TimeoutMs = TypeAliasType(
    "TimeoutMs", Annotated[StrictInt, Field(ge=1, le=300000, title="TimeoutMs")]
)
"""
How long the sender will wait for the answer, in whole milliseconds (1..300000).
"""


Priority = TypeAliasType(
    "Priority",
    Annotated[StrictInt, Field(ge=-2147483648, le=2147483647, title="Priority")],
)
"""
Scheduling priority of a REQUEST at a receiver that queues: higher runs first, equal priorities run in arrival order. Absent means 0.
"""


StatusCode = TypeAliasType(
    "StatusCode", Annotated[StrictInt, Field(ge=100, le=599, title="StatusCode")]
)
"""
HTTP-like outcome of a REQUEST (100..599). 200 is success; any status >= 400 is a failure.
"""


ProcessId = TypeAliasType(
    "ProcessId",
    Annotated[StrictInt, Field(ge=0, le=9007199254740991, title="ProcessId")],
)
"""
An operating-system process id.
"""


EpochMs = TypeAliasType(
    "EpochMs", Annotated[StrictInt, Field(ge=0, le=9007199254740991, title="EpochMs")]
)
"""
Wall-clock time in whole milliseconds since the Unix epoch.
"""


Count = TypeAliasType(
    "Count", Annotated[StrictInt, Field(ge=0, le=9007199254740991, title="Count")]
)
"""
A non-negative count.
"""


Concurrency = TypeAliasType(
    "Concurrency", Annotated[StrictInt, Field(ge=1, le=65536, title="Concurrency")]
)
"""
A cap on how many requests a child runs at once (1..65536).
"""


LineBytes = TypeAliasType(
    "LineBytes",
    Annotated[StrictInt, Field(ge=1048576, le=9007199254740991, title="LineBytes")],
)
"""
The longest line, in bytes with its newline, that a receiver accepts: at least 1 MiB (1048576), which every receiver accepts (FRAME-6).
"""


ProcessingMode = TypeAliasType(
    "ProcessingMode",
    Annotated[Literal["sequential", "concurrent"], Field(title="ProcessingMode")],
)
"""
How a child schedules the requests it receives: one at a time (sequential) or overlapping (concurrent).
"""


ProtocolVersion = TypeAliasType(
    "ProtocolVersion",
    Annotated[
        StrictStr,
        Field(
            pattern="^(0|[1-9][0-9]{0,5})\\.(0|[1-9][0-9]{0,5})$",
            title="ProtocolVersion",
        ),
    ],
)
"""
A peepsy protocol version, MAJOR.MINOR. A peer that sends none (every Node peepsy 1.x peer) speaks 1.0.
"""


class Heartbeat(BaseModel):
    """
    HEARTBEAT: a child's sign of life, sent every heartbeat interval whether or not handlers are busy.
    """

    model_config = ConfigDict(
        extra="ignore",
        validate_by_name=True,
    )
    type: Literal["HEARTBEAT"]
    """
    Message type tag.
    """
    pid: ProcessId
    """
    The child's process id.
    """
    timestamp: EpochMs
    """
    The child's wall clock when it sent this message (informational; the master times health with its own clock).
    """
    requests_active: Annotated[Count | MISSING, Field(alias="requestsActive")] = MISSING
    """
    Requests the child is running or holding in its queue.
    """


class Init(BaseModel):
    """
    INIT: the master's first message to a child it has just started.
    """

    model_config = ConfigDict(
        extra="ignore",
        validate_by_name=True,
    )
    type: Literal["INIT"]
    """
    Message type tag.
    """
    mode: ProcessingMode
    """
    The processing mode the master spawned the child in.
    """
    protocol: ProtocolVersion | MISSING = MISSING
    """
    The master's protocol version; absent means 1.0.
    """
    target: Annotated[StrictStr | MISSING, Field(max_length=256, min_length=1)] = (
        MISSING
    )
    """
    The name the master knows this child by, for the child's logs.
    """
    heartbeat_interval: Annotated[
        TimeoutMs | MISSING, Field(alias="heartbeatInterval")
    ] = MISSING
    """
    How often, in ms, the master expects a HEARTBEAT; absent means 2000.
    """
    max_concurrency: Annotated[Concurrency | MISSING, Field(alias="maxConcurrency")] = (
        MISSING
    )
    """
    The concurrency cap the master asks for. A child configured with its own cap keeps it (INIT-2); otherwise it SHOULD adopt this one. Absent: no cap asked for.
    """
    max_line_bytes: Annotated[LineBytes | MISSING, Field(alias="maxLineBytes")] = (
        MISSING
    )
    """
    The longest line the master accepts; the child MUST NOT write a longer one (FRAME-11). Absent: the child may assume only 1048576.
    """


class Ready(BaseModel):
    """
    READY: an optional announcement of who a child is and what it serves (READY-1). A child that sends it sends it at most once, in answer to the first INIT, as the first message it writes after reading that INIT (HEARTBEATs aside), and never when no INIT came (READY-2). Node peepsy children never send it; a master never waits for it.
    """

    model_config = ConfigDict(
        extra="ignore",
        validate_by_name=True,
    )
    type: Literal["READY"]
    """
    Message type tag.
    """
    pid: ProcessId
    """
    The child's process id.
    """
    protocol: ProtocolVersion | MISSING = MISSING
    """
    The child's protocol version; absent means 1.0.
    """
    mode: ProcessingMode | MISSING = MISSING
    """
    The processing mode the child actually runs in.
    """
    actions: Annotated[list[ActionName] | MISSING, Field(max_length=65536)] = MISSING
    """
    The actions the child has handlers for, each an ActionName, each named once.
    """
    implementation: Annotated[
        StrictStr | MISSING, Field(max_length=256, min_length=1)
    ] = MISSING
    """
    Name and version of the peepsy implementation, for logs (for example peepsy-python/0.1.0).
    """
    max_concurrency: Annotated[Concurrency | MISSING, Field(alias="maxConcurrency")] = (
        MISSING
    )
    """
    The concurrency cap the child actually runs with. Absent: no cap.
    """
    max_line_bytes: Annotated[LineBytes | MISSING, Field(alias="maxLineBytes")] = (
        MISSING
    )
    """
    The longest line the child accepts; the master MUST NOT write a longer one (FRAME-11). Absent: the master may assume only 1048576.
    """


class RequestBody(BaseModel):
    """
    The nested part of a legacy REQUEST.
    """

    model_config = ConfigDict(
        extra="ignore",
        validate_by_name=True,
    )
    id: RequestId
    """
    Request id, echoed by the RESPONSE.
    """
    action: ActionName
    """
    Name of the handler to run.
    """
    data: Any | MISSING = MISSING
    """
    The action's argument: any JSON value. Absent and null are different values.
    """


class RequestLegacy(BaseModel):
    """
    REQUEST in the legacy nested shape that the Node peepsy master sends: id, action and data sit inside `request`. Receivers accept it beside the unified shape.
    """

    model_config = ConfigDict(
        extra="ignore",
        validate_by_name=True,
    )
    type: Literal["REQUEST"]
    """
    Message type tag.
    """
    request: RequestBody
    """
    The request proper.
    """
    timeout: TimeoutMs | MISSING = MISSING
    """
    How long the sender will wait for the RESPONSE; absent means the receiver's default (5000 ms).
    """
    priority: Priority | MISSING = MISSING
    """
    Queueing priority at the receiver; absent means 0.
    """


class RequestUnified(BaseModel):
    """
    REQUEST in the unified flat shape: asks the receiver to run one action. Sent by children (and by the reference master unless configured otherwise). A message with a `request` member is the legacy nested shape instead.
    """

    model_config = ConfigDict(
        extra="ignore",
        validate_by_name=True,
    )
    type: Literal["REQUEST"]
    """
    Message type tag.
    """
    id: RequestId
    """
    Request id, echoed by the RESPONSE.
    """
    action: ActionName
    """
    Name of the handler to run.
    """
    data: Any | MISSING = MISSING
    """
    The action's argument: any JSON value. Absent and null are different values.
    """
    timeout: TimeoutMs | MISSING = MISSING
    """
    How long the sender will wait for the RESPONSE; absent means the receiver's default (5000 ms).
    """
    priority: Priority | MISSING = MISSING
    """
    Queueing priority at the receiver; absent means 0.
    """


class ErrorPayload(BaseModel):
    """
    Structured description of a failure.
    """

    model_config = ConfigDict(
        extra="ignore",
        validate_by_name=True,
    )
    name: Annotated[StrictStr, Field(max_length=256, min_length=1)]
    """
    Error class name, for example PeepsyNotFoundError or ValueError.
    """
    message: StrictStr
    """
    Human-readable message; the same text as `error` when both are sent.
    """
    code: Annotated[StrictStr | MISSING, Field(max_length=256, min_length=1)] = MISSING
    """
    Stable machine-readable code, for example PEEPSY_NOT_FOUND.
    """
    details: Any | MISSING = MISSING
    """
    Any JSON value that helps diagnose the failure, for example validation errors.
    """
    stack: StrictStr | MISSING = MISSING
    """
    Stack trace of the failing side. Sent only when that side is configured to disclose it.
    """


class Response(BaseModel):
    """
    RESPONSE: the one answer to a REQUEST, sent by whichever side received the REQUEST. A failure (status >= 400) carries the legacy `error` string and, from peepsy 1.0 senders on, the structured `errorPayload`.
    """

    model_config = ConfigDict(
        extra="ignore",
        validate_by_name=True,
    )
    type: Literal["RESPONSE"]
    """
    Message type tag.
    """
    id: RequestId
    """
    The id of the REQUEST this answers.
    """
    status: StatusCode
    """
    Outcome: 200 success, 400 malformed request, 404 unknown action, 408 expired before it ran, 422 data rejected by the action's declared type, 500 handler failed, 499 cancelled by its sender (CANCEL, protocol 1.1), 503 not accepting requests (shutting down).
    """
    data: Any | MISSING = MISSING
    """
    The handler's result on success: any JSON value. Absent and null are different values.
    """
    error: StrictStr | MISSING = MISSING
    """
    Human-readable failure message (legacy field, understood by every peepsy peer).
    """
    error_payload: Annotated[ErrorPayload | MISSING, Field(alias="errorPayload")] = (
        MISSING
    )
    """
    Structured failure details.
    """


class Shutdown(BaseModel):
    """
    SHUTDOWN: the master asks a child to stop: take no new requests, finish those in flight, then exit with status 0.
    """

    model_config = ConfigDict(
        extra="ignore",
        validate_by_name=True,
    )
    type: Literal["SHUTDOWN"]
    """
    Message type tag.
    """
    timeout: TimeoutMs | MISSING = MISSING
    """
    How long the master will wait before it escalates (closes stdin, then terminates the child); absent means the child's own grace period applies.
    """


class Cancel(BaseModel):
    """
    CANCEL (protocol 1.1, either direction): the sender of a REQUEST gives it up and asks the receiver to stop it: a queued request is removed and answered 499, a running one is stopped if it can be. The REQUEST is still answered exactly once. Sent only to a peer that stated protocol 1.1 or later.
    """

    model_config = ConfigDict(
        extra="ignore",
        validate_by_name=True,
    )
    type: Literal["CANCEL"]
    """
    Message type tag.
    """
    id: RequestId
    """
    The id of the REQUEST being cancelled, one the sender sent and has not had answered.
    """
    reason: Annotated[StrictStr | MISSING, Field(max_length=256, min_length=1)] = (
        MISSING
    )
    """
    Why, for logs: the reference sends timeout, cancelled or shutdown. Informative only.
    """

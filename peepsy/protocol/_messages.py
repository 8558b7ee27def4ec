"""The hand-written part of the message models: the discriminated unions.

Everything else is generated from ``schema/`` into ``_generated.py``. Both REQUEST shapes
carry ``"type": "REQUEST"``, so no generator can discriminate them on ``type``; the
callable below routes a REQUEST to the legacy model when it has a ``request`` member
(the rule Node peepsy children apply, spec REQ-3) and every other message by its type.
One validation pass, one error for one bad message.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, TypeAlias

from pydantic import Discriminator, Tag, TypeAdapter

from peepsy.protocol._generated import (
    Heartbeat,
    Init,
    Ready,
    RequestBody,
    RequestLegacy,
    RequestUnified,
    Response,
    Shutdown,
)

LEGACY_TAG: Final = "REQUEST/legacy"


def _route(value: Any) -> str | None:
    if isinstance(value, dict):
        kind = value.get("type")
        if kind == "REQUEST" and "request" in value:
            return LEGACY_TAG
        if isinstance(kind, str):
            return kind
    return None


_ROUTE: Final = Discriminator(
    _route,
    custom_error_type="peepsy_message_type",
    custom_error_message="not a peepsy message: no known `type`",
)

Request: TypeAlias = RequestUnified | RequestLegacy

Message: TypeAlias = Annotated[
    Annotated[Init, Tag("INIT")]
    | Annotated[Ready, Tag("READY")]
    | Annotated[RequestUnified, Tag("REQUEST")]
    | Annotated[RequestLegacy, Tag(LEGACY_TAG)]
    | Annotated[Response, Tag("RESPONSE")]
    | Annotated[Heartbeat, Tag("HEARTBEAT")]
    | Annotated[Shutdown, Tag("SHUTDOWN")],
    _ROUTE,
]
"""Any peepsy message (``schema/message.json``)."""

MasterMessage: TypeAlias = Init | RequestUnified | RequestLegacy | Response | Shutdown
"""A message a master may send (``schema/master-message.json``)."""

ChildMessage: TypeAlias = Ready | RequestUnified | RequestLegacy | Response | Heartbeat
"""A message a child may send (``schema/child-message.json``)."""

MESSAGE_ADAPTER: Final[TypeAdapter[Message]] = TypeAdapter(Message)

#: The value of ``type`` for each message model, the tag a receiver dispatches on.
MESSAGE_TYPES: Final = frozenset({"INIT", "READY", "REQUEST", "RESPONSE", "HEARTBEAT", "SHUTDOWN"})
MASTER_MESSAGE_TYPES: Final = (Init, RequestUnified, RequestLegacy, Response, Shutdown)
CHILD_MESSAGE_TYPES: Final = (Ready, RequestUnified, RequestLegacy, Response, Heartbeat)


def to_unified(request: RequestUnified | RequestLegacy) -> RequestUnified:
    """The same request in the unified flat shape (REQ-3: both shapes mean the same)."""
    if isinstance(request, RequestUnified):
        return request
    body = request.request
    return RequestUnified(
        type="REQUEST",
        id=body.id,
        action=body.action,
        data=body.data,
        timeout=request.timeout,
        priority=request.priority,
    )


def to_legacy(request: RequestUnified | RequestLegacy) -> RequestLegacy:
    """The same request in the legacy nested shape, as Node peepsy masters send it."""
    if isinstance(request, RequestLegacy):
        return request
    body = RequestBody(id=request.id, action=request.action, data=request.data)
    return RequestLegacy(
        type="REQUEST", request=body, timeout=request.timeout, priority=request.priority
    )

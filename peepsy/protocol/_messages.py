"""The hand-written part of the message models: the discriminated unions.

Everything else is generated from ``schema/`` into ``_generated.py``. Both REQUEST shapes
carry ``"type": "REQUEST"``, so no generator can discriminate them on ``type``; a nested
union routes a REQUEST to the legacy model when it has a ``request`` member (the rule
Node peepsy children apply, spec REQ-3). One validation pass, one error for one bad
message.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, TypeAlias

from pydantic import Discriminator, Field, Tag, TypeAdapter

from peepsy.protocol._generated import (
    Cancel,
    Heartbeat,
    Init,
    Ready,
    RequestBody,
    RequestLegacy,
    RequestUnified,
    Response,
    Shutdown,
)

LEGACY_TAG: Final = "legacy"
UNIFIED_TAG: Final = "unified"


def _route_request(value: Any) -> str:
    # REQ-3: a `request` member makes it the legacy shape, whatever else it holds.
    return LEGACY_TAG if isinstance(value, dict) and "request" in value else UNIFIED_TAG


Request: TypeAlias = Annotated[
    Annotated[RequestLegacy, Tag(LEGACY_TAG)] | Annotated[RequestUnified, Tag(UNIFIED_TAG)],
    Discriminator(_route_request),
]
"""A REQUEST in either shape."""

# Every message is routed on its `type` inside pydantic-core; only a REQUEST then calls
# back into Python to pick its shape, so the RESPONSEs a master mostly reads never do.
Message: TypeAlias = Annotated[
    Init | Ready | Request | Response | Heartbeat | Shutdown | Cancel,
    Field(discriminator="type"),
]
"""Any peepsy message (``schema/message.json``)."""

MasterMessage: TypeAlias = Init | RequestUnified | RequestLegacy | Response | Shutdown | Cancel
"""A message a master may send (``schema/master-message.json``)."""

ChildMessage: TypeAlias = Ready | RequestUnified | RequestLegacy | Response | Heartbeat | Cancel
"""A message a child may send (``schema/child-message.json``)."""

MESSAGE_ADAPTER: Final[TypeAdapter[Message]] = TypeAdapter(Message)

#: The models a master may send (MSG-6), and those a child may send.
MASTER_MESSAGE_TYPES: Final = (Init, RequestUnified, RequestLegacy, Response, Shutdown, Cancel)
CHILD_MESSAGE_TYPES: Final = (Ready, RequestUnified, RequestLegacy, Response, Heartbeat, Cancel)


def to_unified(request: RequestUnified | RequestLegacy) -> RequestUnified:
    """The same request in the unified flat shape (REQ-3: both shapes mean the same)."""
    if isinstance(request, RequestUnified):
        return request
    body = request.request
    # Built from a valid message, whose strings may hold lone surrogates (FRAME-9) that
    # validating again would refuse.
    return RequestUnified.model_construct(
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
    body = RequestBody.model_construct(id=request.id, action=request.action, data=request.data)
    return RequestLegacy.model_construct(
        type="REQUEST", request=body, timeout=request.timeout, priority=request.priority
    )

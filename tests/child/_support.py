"""A fake master for Child tests: a MasterChannel that records what the child writes and
lets the test feed it bytes, speaking through a ``Connection(Role.MASTER)``."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from peepsy import Child
from peepsy.protocol import (
    Connection,
    ErrorPayload,
    Event,
    Heartbeat,
    HeartbeatReceived,
    Init,
    MessageRejected,
    Ready,
    ReadyReceived,
    RequestReceived,
    Response,
    ResponseReceived,
    Role,
    Shutdown,
    UnmatchedResponse,
)
from peepsy.transport import ChannelListener, MasterChannel

T = TypeVar("T")

#: No test comes near this; it only turns a hang into a failure.
TEST_LIMIT_S = 10.0


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one test's coroutine on a fresh event loop, bounded by TEST_LIMIT_S."""
    return asyncio.run(asyncio.wait_for(coro, TEST_LIMIT_S))


async def settle(rounds: int = 10) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


async def until(predicate: Callable[[], bool], limit: float = 3.0) -> None:
    """Wait (polling) until ``predicate()`` holds; fail after ``limit`` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while not predicate():
        if loop.time() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.001)


def line(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


class FakeMaster(MasterChannel):
    """The master end of a child's channel, driven by the test."""

    def __init__(self) -> None:
        self.listener: ChannelListener | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.conn = Connection(Role.MASTER)
        self.written: list[bytes] = []
        self.events: list[Event] = []
        self.responses: dict[str, Response] = {}
        self.heartbeats: list[Heartbeat] = []
        self.readies: list[Ready] = []
        self.requests: list[RequestReceived] = []
        self.rejected: list[MessageRejected] = []
        self.closed = False
        self.task: asyncio.Task[int] | None = None

    # --- MasterChannel ------------------------------------------------------------------

    def start(self, listener: ChannelListener) -> None:
        self.listener = listener
        self.loop = asyncio.get_running_loop()

    def write(self, data: bytes) -> None:
        assert not self.closed, "the child wrote after closing its channel"
        self._absorb(data)

    def write_now(self, data: bytes) -> None:
        # Called from the heartbeat thread.
        loop = self.loop
        if self.closed or loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed under the thread
            loop.call_soon_threadsafe(self._absorb, data)

    def close(self) -> None:
        self.closed = True

    def _absorb(self, data: bytes) -> None:
        self.written.append(data)
        for event in self.conn.receive_data(data):
            self.events.append(event)
            if isinstance(event, ResponseReceived | UnmatchedResponse):
                self.responses[event.response.id] = event.response
            elif isinstance(event, HeartbeatReceived):
                self.heartbeats.append(event.message)
            elif isinstance(event, ReadyReceived):
                self.readies.append(event.message)
            elif isinstance(event, RequestReceived):
                self.requests.append(event)
            elif isinstance(event, MessageRejected):  # pragma: no cover - a child bug
                self.rejected.append(event)

    # --- the test's side ----------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        assert self.listener is not None
        self.listener.data_received(data)

    def request(
        self,
        action: str,
        data: Any = None,
        *,
        timeout: int | None = None,
        priority: int | None = None,
        legacy: bool = False,
    ) -> str:
        rid, raw = self.conn.send_request(
            action, data, timeout=timeout, priority=priority, legacy=legacy
        )
        self.feed(raw)
        return rid

    def requests_at_once(self, *calls: tuple[str, Any]) -> list[str]:
        """Several requests in one chunk of bytes, as a pipe may deliver them."""
        ids: list[str] = []
        chunk = b""
        for action, data in calls:
            rid, raw = self.conn.send_request(action, data)
            ids.append(rid)
            chunk += raw
        self.feed(chunk)
        return ids

    def init(self, mode: str = "sequential", **extra: Any) -> None:
        self.feed(self.conn.send(Init.model_validate({"type": "INIT", "mode": mode, **extra})))

    def shutdown(self, timeout: int | None = None) -> None:
        message = (
            Shutdown(type="SHUTDOWN")
            if timeout is None
            else Shutdown(type="SHUTDOWN", timeout=timeout)
        )
        self.feed(self.conn.send(message))

    def eof(self) -> None:
        assert self.listener is not None
        self.listener.eof_received()

    def answer(
        self,
        request: RequestReceived,
        status: int = 200,
        data: Any = None,
        *,
        error_payload: ErrorPayload | None = None,
        error: str | None = None,
    ) -> None:
        self.feed(
            self.conn.send_response(
                request.id, status, data, error=error, error_payload=error_payload
            )
        )

    async def response(self, rid: str, limit: float = 3.0) -> Response:
        await until(lambda: rid in self.responses, limit)
        return self.responses[rid]

    def payload(self, rid: str) -> dict[str, Any]:
        payload = self.responses[rid].error_payload
        assert isinstance(payload, ErrorPayload)
        dumped: dict[str, Any] = payload.model_dump()
        return dumped


@asynccontextmanager
async def serving(child: Child) -> AsyncIterator[FakeMaster]:
    """Serve ``child`` on a FakeMaster; stop it (and check it stopped) afterwards."""
    master = FakeMaster()
    master.task = asyncio.ensure_future(child.serve(master))
    await until(lambda: master.listener is not None)
    try:
        yield master
    finally:
        if not master.task.done():
            child.shutdown(grace=1000)
        assert await asyncio.wait_for(master.task, 5) == 0

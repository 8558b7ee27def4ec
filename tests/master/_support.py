"""In-memory children for master tests: scripted fake peers, and a runner.

A :class:`Peer` is a child that speaks the protocol through a ``Connection(Role.CHILD)``
and does exactly what the test tells it: answer, hold an answer, answer late, answer
garbage, answer twice, exit or crash. A :class:`Farm` makes peers for a
``MemoryLauncher`` (command ``["peer", TARGET]``) and keeps every incarnation.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from pydantic import MISSING

from peepsy import Master
from peepsy.protocol import (
    Connection,
    ErrorPayload,
    Event,
    Heartbeat,
    Init,
    InitReceived,
    Ready,
    RequestReceived,
    Response,
    ResponseReceived,
    Role,
    ShutdownReceived,
    StreamEnded,
    UnmatchedResponse,
)
from peepsy.transport import MasterChannel, MemoryLauncher, SpawnSpec

T = TypeVar("T")

#: No test comes near this; it only turns a hang into a failure.
TEST_LIMIT_S = 10.0

Auto = Callable[["Peer", RequestReceived], None]


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one test's coroutine on a fresh event loop, bounded by TEST_LIMIT_S."""
    return asyncio.run(asyncio.wait_for(coro, TEST_LIMIT_S))


async def settle(rounds: int = 10) -> None:
    """Let in-memory pipes deliver: each hop takes one loop iteration."""
    for _ in range(rounds):
        await asyncio.sleep(0)


def in_flight_is(farm: Farm, count: int) -> Callable[[], bool]:
    return lambda: farm.in_flight == count


async def until(predicate: Callable[[], bool], limit: float = 3.0) -> None:
    """Wait (polling) until ``predicate()`` holds; fail after ``limit`` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while not predicate():
        if loop.time() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.001)


def echo(peer: Peer, request: RequestReceived) -> None:
    """Answer every request at once with its own data."""
    peer.reply(request, data=request.data)


def hold(peer: Peer, request: RequestReceived) -> None:
    """Never answer (the test answers with ``peer.reply`` when it wants)."""


class Peer:
    """A scripted child. Everything it receives is kept: raw bytes, parsed lines, events."""

    def __init__(self, spec: SpawnSpec, farm: Farm) -> None:
        self.spec = spec
        self.farm = farm
        self.target = spec.argv[1] if len(spec.argv) > 1 else spec.argv[0]
        self.auto: Auto = farm.auto
        self.conn = Connection(Role.CHILD)
        self.channel: MasterChannel | None = None
        self.raw = bytearray()
        self.events: list[Event] = []
        self.requests: list[RequestReceived] = []
        self.unanswered: dict[str, RequestReceived] = {}
        self.answers: dict[str, Response] = {}
        self.inits: list[Init] = []
        self.shutdowns = 0
        self.terms = 0
        self.eof = False
        self.exit_on_shutdown = farm.exit_on_shutdown
        self.exit_on_eof = farm.exit_on_eof
        loop = asyncio.get_running_loop()
        self._exit: asyncio.Future[int] = loop.create_future()
        self.started = asyncio.Event()

    # --- what the master sees ---------------------------------------------------------

    async def serve(self, channel: MasterChannel) -> int:
        self.channel = channel
        channel.start(self)
        self.started.set()
        try:
            return await asyncio.shield(self._exit)
        except asyncio.CancelledError:
            # The in-memory SIGTERM and SIGKILL both cancel this task: with ignore_term
            # the first (always a SIGTERM) is survived, as by a child that ignores it.
            task = asyncio.current_task()
            if self.farm.ignore_term and not self.terms and task is not None:
                task.uncancel()
                self.terms += 1
                try:
                    return await asyncio.shield(self._exit)
                except asyncio.CancelledError:
                    self._exit.cancel()  # killed: exited
                    raise
            self._exit.cancel()
            raise

    def data_received(self, data: bytes) -> None:
        self.raw += data
        for event in self.conn.receive_data(data):
            self._on_event(event)

    def eof_received(self) -> None:
        self.eof = True
        for event in self.conn.receive_data(b""):
            self._on_event(event)

    def _on_event(self, event: Event) -> None:
        self.events.append(event)
        if isinstance(event, RequestReceived):
            self.requests.append(event)
            self.unanswered[event.id] = event
            self.farm.arrived(self)
            self.auto(self, event)
        elif isinstance(event, ResponseReceived | UnmatchedResponse):
            self.answers[event.response.id] = event.response
        elif isinstance(event, InitReceived):
            self.inits.append(event.message)
            if self.farm.protocol is not None and len(self.inits) == 1:
                self.ready([], protocol=self.farm.protocol)
        elif isinstance(event, ShutdownReceived):
            self.shutdowns += 1
            if self.exit_on_shutdown:
                self.exit(0)
        elif isinstance(event, StreamEnded) and self.exit_on_eof:
            self.exit(0)

    @property
    def lines(self) -> list[dict[str, Any]]:
        """Every line received, as JSON."""
        return [json.loads(line) for line in bytes(self.raw).splitlines() if line.strip()]

    # --- what the test makes it do ----------------------------------------------------

    def write(self, line: bytes) -> None:
        assert self.channel is not None, "the peer has not started"
        self.channel.write(line)

    def reply(
        self,
        request: RequestReceived | str,
        status: int = 200,
        data: Any = None,
        *,
        error: str | None = None,
        error_payload: ErrorPayload | None = None,
    ) -> None:
        rid = request if isinstance(request, str) else request.id
        if status >= 400 and error is None and error_payload is None:
            error = f"failed with {status}"
        self.unanswered.pop(rid, None)
        self.write(
            self.conn.send_response(rid, status, data, error=error, error_payload=error_payload)
        )

    def reply_raw(self, rid: str, status: int = 200, **extra: Any) -> None:
        """Answer without the core's bookkeeping (late, twice, or to an unknown id)."""
        self.unanswered.pop(rid, None)
        self.write(self.raw_line({"type": "RESPONSE", "id": rid, "status": status, **extra}))

    @staticmethod
    def raw_line(message: dict[str, Any]) -> bytes:
        return json.dumps(message, separators=(",", ":")).encode() + b"\n"

    def heartbeat(self, active: int = 0) -> None:
        self.write(
            self.conn.send(
                Heartbeat(
                    type="HEARTBEAT", pid=4242, timestamp=1_764_310_000_000, requests_active=active
                )
            )
        )

    def ready(self, actions: list[str], protocol: str | None = None) -> None:
        stated = MISSING if protocol is None else protocol
        self.write(self.conn.send(Ready(type="READY", pid=4242, actions=actions, protocol=stated)))

    @property
    def cancels(self) -> list[dict[str, Any]]:
        """The CANCEL lines received, as JSON."""
        return [line for line in self.lines if line["type"] == "CANCEL"]

    def ask(self, action: str, data: Any = None, timeout: int | None = None) -> str:
        """Send the master a request; its answer lands in ``answers``."""
        rid, line = self.conn.send_request(action, data, timeout=timeout)
        self.write(line)
        return rid

    async def answer(self, rid: str) -> Response:
        await until(lambda: rid in self.answers)
        return self.answers[rid]

    async def next_request(self, index: int | None = None) -> RequestReceived:
        """The request number ``index`` (default: the next unseen one)."""
        want = len(self.requests) if index is None else index
        await until(lambda: len(self.requests) > want)
        return self.requests[want]

    @property
    def exited(self) -> bool:
        return self._exit.done()

    def exit(self, code: int = 0) -> None:
        if not self._exit.done():
            self._exit.set_result(code)

    def crash(self, exc: BaseException | None = None) -> None:
        if not self._exit.done():
            self._exit.set_exception(exc or RuntimeError("the peer crashed"))


class Farm:
    """Makes peers for a MemoryLauncher and remembers every one, restarts included.
    With ``protocol``, each peer answers its INIT with a READY stating that version; with
    ``ignore_term``, each survives its first SIGTERM (the next signal ends it)."""

    def __init__(
        self,
        auto: Auto = echo,
        *,
        exit_on_shutdown: bool = True,
        exit_on_eof: bool = True,
        protocol: str | None = None,
        ignore_term: bool = False,
    ) -> None:
        self.auto = auto
        self.protocol = protocol
        self.ignore_term = ignore_term
        self.exit_on_shutdown = exit_on_shutdown
        self.exit_on_eof = exit_on_eof
        self.peers: list[Peer] = []
        self.peak_in_flight = 0
        self.spawn_errors: list[Exception] = []

    def factory(self, spec: SpawnSpec) -> Peer:
        if self.spawn_errors:
            raise self.spawn_errors.pop(0)
        peer = Peer(spec, self)
        self.peers.append(peer)
        return peer

    def launcher(self) -> MemoryLauncher:
        return MemoryLauncher({"peer": self.factory})

    def master(self, **options: Any) -> Master[Any, Any]:
        return Master(launcher=self.launcher(), **options)

    def arrived(self, peer: Peer) -> None:
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    @property
    def in_flight(self) -> int:
        """Requests that live peers hold unanswered."""
        return sum(len(p.unanswered) for p in self.peers if not p.exited)

    def incarnations(self, target: str) -> list[Peer]:
        return [p for p in self.peers if p.target == target]

    def peer(self, target: str) -> Peer:
        """The latest incarnation of ``target``."""
        found = self.incarnations(target)
        assert found, f"no peer spawned for {target!r}"
        return found[-1]

    async def spawn(
        self, master: Master[Any, Any], target: str, group: str | None = None, **options: Any
    ) -> Peer:
        await master.spawn_child(target, ["peer", target], group=group, **options)
        peer = self.peer(target)
        await peer.started.wait()
        return peer

"""The child's side of its channel, apart from the policy: the reader that hands the
master's bytes to the session, the listener that hands the session's reports back to
the child, READY as the child states itself, SIGTERM, and the heartbeats (HB-1), on
their own thread so that no handler holds them up.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any, Final

from peepsy._errors import RemoteProtocolError
from peepsy.protocol import (
    MIN_MAX_LINE_BYTES,
    PROTOCOL_VERSION,
    Connection,
    Event,
    Heartbeat,
    ProcessingMode,
    Ready,
    UnmatchedResponse,
)
from peepsy.protocol._codec import printable
from peepsy.session import Call, Session
from peepsy.transport import MasterChannel

log = logging.getLogger("peepsy.child")

IMPLEMENTATION: Final = "peepsy-python/0.1.0"
_MAX_STATED_LINE_BYTES: Final = 2**53 - 1


def ready_message(
    mode: ProcessingMode, cap: int | None, max_line_bytes: int, actions: list[str]
) -> Ready:
    """READY, sent once INIT has settled the mode and the cap: it states what the child
    actually runs with (READY-2, SCHED-2); one at a time is a cap of 1."""
    limits: dict[str, int] = {} if cap is None else {"max_concurrency": cap}
    # A limit under the 1 MiB every receiver takes (FRAME-6) cannot be stated.
    if max_line_bytes >= MIN_MAX_LINE_BYTES:
        limits["max_line_bytes"] = min(max_line_bytes, _MAX_STATED_LINE_BYTES)
    # A name holding a lone surrogate (one a Node peer can send) is served, but READY's
    # model takes only valid Unicode: it is left out of the list, which only informs.
    named = [name for name in actions if printable(name) == name]
    return Ready(
        type="READY",
        pid=os.getpid(),
        protocol=PROTOCOL_VERSION,
        mode=mode,
        actions=named,
        implementation=IMPLEMENTATION,
        **limits,
    )


def take_sigterm(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> list[int]:
    """Stop on SIGTERM (the process's, so only from its main thread); the signals taken."""
    if threading.current_thread() is not threading.main_thread():
        return []
    try:
        loop.add_signal_handler(signal.SIGTERM, callback)
    except (NotImplementedError, RuntimeError):  # pragma: no cover - not on Unix
        return []
    return [signal.SIGTERM]


class Reader:
    """The channel's listener: bytes and their end go to the session."""

    __slots__ = ("data_received", "eof_received")

    def __init__(self, session: Session) -> None:
        self.data_received = session.receive
        self.eof_received = session.end


class Listener:
    """The session's listener on a child: what is neither a request nor an answer goes
    to the child's two callbacks; the rest is logged."""

    __slots__ = ("_lifecycle", "_rejected")

    def __init__(
        self, rejected: Callable[[RemoteProtocolError], None], lifecycle: Callable[[Event], None]
    ) -> None:
        self._rejected = rejected
        self._lifecycle = lifecycle

    def answered(self, call: Call[Any], status: int) -> None:
        pass

    def timed_out(self, call: Call[Any]) -> None:
        log.info("no answer from the master to %r within %d ms", call.action, call.timeout)

    def rejected(self, error: RemoteProtocolError) -> None:
        self._rejected(error)

    def late(self, event: UnmatchedResponse) -> None:
        log.debug("ignored a late RESPONSE to %r", event.response.id)

    def lifecycle(self, event: Event) -> None:
        self._lifecycle(event)

    def cancel_sent(self, call: Call[Any], reason: str) -> None:
        log.debug("cancelled %r (%s) at the master", call.action, reason)

    def cancel_acknowledged(self, request_id: str, status: int) -> None:
        log.debug("the master answered %s to cancelled request %r", status, request_id)


class Heartbeats:
    """Writes a HEARTBEAT every ``interval_ms`` on ``channel`` until :meth:`stop`.

    ``busy()`` is the count the HEARTBEAT reports (running and queued requests). The
    interval can change while running (:meth:`set_interval`), and applies at once.
    """

    def __init__(
        self, conn: Connection, channel: MasterChannel, busy: Callable[[], int], interval_ms: int
    ) -> None:
        self._conn = conn
        self._channel = channel
        self._busy = busy
        self._interval_ms = interval_ms
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="peepsy-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def set_interval(self, interval_ms: int) -> None:
        self._interval_ms = interval_ms
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    def _loop(self) -> None:
        pid = os.getpid()
        next_at = time.monotonic()
        while True:
            now = time.monotonic()
            if now >= next_at:
                line = self._conn.send(
                    Heartbeat(
                        type="HEARTBEAT",
                        pid=pid,
                        timestamp=int(time.time() * 1000),
                        requests_active=self._busy(),
                    )
                )
                self._channel.write_now(line)
                next_at = now + self._interval_ms / 1000
            # Woken early when the interval changes, so that the new one applies now.
            if self._wake.wait(max(0.0, next_at - time.monotonic())):
                if self._stopping:
                    return
                self._wake.clear()
                next_at = min(next_at, time.monotonic() + self._interval_ms / 1000)

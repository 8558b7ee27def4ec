"""The child's heartbeats (HB-1), on their own thread so that no handler holds them up."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from peepsy.protocol import Connection, Heartbeat
from peepsy.transport import MasterChannel


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

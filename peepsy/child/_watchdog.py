"""The end-of-input watchdog: a child outlives its master by at most ``eof_grace`` ms
(STREAM-3), whatever its handlers do.

The event loop cannot promise that on its own: a handler that blocks the loop keeps it
from even reading the end of input, and the threads of sync handlers are joined when the
interpreter exits. So a thread of its own watches the input for a hang-up (``poll``, not
reading: the bytes stay the loop's), and the loop tells it too when it reads the end.
From the first of the two it waits out the grace, flushes what it can within a short
bound, and ends the process with status 0 (``os._exit``): no handler, lock or blocked
loop can hold it up.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import sys
import threading
import time
from collections.abc import Callable
from typing import Final

log = logging.getLogger("peepsy.child")

#: At most this share of the grace (and never more than ``FLUSH_LIMIT_S``) is kept for
#: flushing at its end, so that the process is gone by the grace itself.
FLUSH_SHARE: Final = 0.1
FLUSH_LIMIT_S: Final = 0.1

# A hang-up shows as POLLHUP on a pipe whose writers are all gone, and as POLLRDHUP (or
# POLLHUP) on a socket whose peer has closed. POLLIN is left out: data is not our affair.
# (POLLERR and POLLNVAL come unasked; they end the input too.)
_HANGUP: Final = select.POLLHUP | getattr(select, "POLLRDHUP", 0)


class EofWatchdog:
    """Watches ``fd`` (a duplicate of it, so the channel may close its own) and ends the
    process ``grace_ms`` after its end, or after :meth:`ended`, whichever comes first.

    ``flush`` is called (on a helper thread, bounded in time) just before the process
    ends with ``end(0)``. :meth:`stop` disarms it: the child stopped in time and the
    process is the application's again.
    """

    def __init__(
        self,
        fd: int | None,
        grace_ms: int,
        flush: Callable[[], None],
        end: Callable[[int], object] = os._exit,
    ) -> None:
        self._fd = -1 if fd is None else os.dup(fd)
        self._grace_s = grace_ms / 1000
        self.margin_s = min(self._grace_s * FLUSH_SHARE, FLUSH_LIMIT_S)
        self._flush = flush
        self._end = end
        self._wake_r, self._wake_w = os.pipe()
        self._lock = threading.Lock()
        self._ended_at: float | None = None
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="peepsy-eof-watchdog", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def ended(self) -> None:
        """The loop read the end of input: count the grace from now (if not yet)."""
        with self._lock:
            if self._stopped:
                return
            if self._ended_at is None:
                self._ended_at = time.monotonic()
            os.write(self._wake_w, b"x")

    def stop(self) -> None:
        """Disarm: the process will not be ended. Safe to call more than once."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            os.write(self._wake_w, b"x")
        if self._thread.ident is not None:
            self._thread.join()
        # Closed only once the thread is done with them, so no number is reused under it.
        for fd in (self._fd, self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)

    def _run(self) -> None:
        if self._wait_for_end():
            self._end_process()

    def _wait_for_end(self) -> bool:
        """Wait out the end of input and the grace; whether the process must end."""
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        if self._fd >= 0:
            poller.register(self._fd, _HANGUP)
        while True:
            with self._lock:
                if self._stopped:
                    return False
                ended_at = self._ended_at
            if ended_at is None:
                timeout_ms = None
            else:
                left = ended_at + self._grace_s - self.margin_s - time.monotonic()
                if left <= 0:
                    return True
                timeout_ms = max(1, int(left * 1000))
            for fd, _ in poller.poll(timeout_ms):
                if fd == self._wake_r:
                    os.read(self._wake_r, 64)
                else:  # only a hang-up (or a closed fd) is asked for, or always told
                    # Seen once is enough; a hung-up fd would report again at once.
                    poller.unregister(fd)
                    with self._lock:
                        if self._ended_at is None:
                            self._ended_at = time.monotonic()

    def _end_process(self) -> None:
        # The flush may block (a full pipe, a lock a stuck thread holds): it gets the
        # margin, on a thread of its own, and the process ends either way.
        flusher = threading.Thread(target=self._flush_all, name="peepsy-eof-flush", daemon=True)
        flusher.start()
        flusher.join(self.margin_s)
        self._end(0)

    def _flush_all(self) -> None:
        with contextlib.suppress(Exception):
            log.warning(
                "end of input %d ms ago and still running: exiting now (STREAM-3)",
                int(self._grace_s * 1000),
            )
        for flush in (self._flush, sys.stdout.flush, sys.stderr.flush, _flush_logs):
            with contextlib.suppress(Exception):
                flush()


def _flush_logs() -> None:
    for handler in logging.getLogger().handlers:
        handler.flush()

"""The reference child: serves the master's requests, sends heartbeats, calls the master.

Policy only: the protocol core parses and encodes, the session runs calls and serves
requests, the channel moves bytes. What is the child's own: which mode and cap it runs
with, READY, heartbeats, and when it stops.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Final

from peepsy._actions import HandlerRegistry, Handlers
from peepsy._checks import check_int, check_ms
from peepsy._errors import PeepsyShutdownError, RemoteProtocolError
from peepsy.child._calls import CallsMaster, MasterCalls
from peepsy.child._channel import Heartbeats, Listener, Reader, ready_message, take_sigterm
from peepsy.child._watchdog import EofWatchdog
from peepsy.protocol import (
    DEFAULT_MAX_LINE_BYTES,
    Connection,
    Event,
    InitReceived,
    ProcessingMode,
    Role,
    ShutdownReceived,
    StreamEnded,
)
from peepsy.session import Deadlines, RetryPolicy, Server, Session, expire
from peepsy.transport import MasterChannel, NodeIpcChannel, StdioChannel

Mode = ProcessingMode

DEFAULT_TIMEOUT_MS: Final = 5000
DEFAULT_HEARTBEAT_MS: Final = 2000
#: The interval for a master that states none: a Node peepsy master (its INIT has no
#: ``heartbeatInterval``, yet it kills a child silent for its own interval times 3).
UNSTATED_HEARTBEAT_MS: Final = 250
DEFAULT_SHUTDOWN_GRACE_MS: Final = 10_000
DEFAULT_EOF_GRACE_MS: Final = 1000

log = logging.getLogger("peepsy.child")


class Child(CallsMaster, HandlerRegistry):
    """A peepsy worker. Register handlers, then :meth:`run` it::

        child = Child("sequential")

        @child.handler("add")
        def add(data):
            return data["a"] + data["b"]

        if __name__ == "__main__":
            child.run()

    ``mode`` is ``"sequential"`` (one request at a time, SCHED-1) or ``"concurrent"`` (up
    to ``max_concurrency`` at once, SCHED-2). Left as ``None``, the child takes the mode
    its master's INIT names (sequential until then), and likewise the ``maxConcurrency``
    cap. Durations are integer milliseconds, as on the wire.

    The child answers the first INIT with READY (READY-2; ``send_ready=False`` turns it
    off), stating its mode, its cap and ``max_line_bytes``, the longest line it reads.

    Stopping: after SHUTDOWN (or SIGTERM) every request read is answered 503, queued ones
    too, and running ones finish; the child stops when they are done, or after the
    SHUTDOWN's ``timeout`` (else ``shutdown_grace``), abandoning what still runs (SHUT-1,
    SHUT-4..6). At the end of its input the child stops within ``eof_grace`` ms (1000 by
    default) whatever its handlers do (STREAM-3): on its process's own channel a watchdog
    thread ends the process then, even if a handler blocks the event loop. Abandoned
    requests go unanswered; the exit status is 0 either way.

    Heartbeats go every ``heartbeat_interval`` ms when given; else at the interval INIT
    states, 250 ms when INIT states none or on Node's IPC channel, else 2000 (HB-1).
    """

    def __init__(
        self,
        mode: Mode | None = None,
        *,
        max_concurrency: int | None = None,
        heartbeat_interval: int | None = None,
        shutdown_grace: int = DEFAULT_SHUTDOWN_GRACE_MS,
        eof_grace: int = DEFAULT_EOF_GRACE_MS,
        timeout: int = DEFAULT_TIMEOUT_MS,
        retries: int = 0,
        retry_delay: int = 1000,
        include_stack: bool = False,
        send_ready: bool = True,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    ) -> None:
        if mode not in (None, "sequential", "concurrent"):
            raise ValueError(f"mode is 'sequential' or 'concurrent', not {mode!r}")
        if max_concurrency is not None:
            check_int("max_concurrency", max_concurrency, 1)
        check_ms("timeout", timeout)
        check_int("retries", retries, 0)
        check_int("retry_delay", retry_delay, 0)
        check_int("shutdown_grace", shutdown_grace, 0)
        check_int("eof_grace", eof_grace, 0)
        if heartbeat_interval is not None:
            check_ms("heartbeat_interval", heartbeat_interval)
        self._handlers = Handlers()
        self._mode: Mode = mode or "sequential"
        self._mode_explicit = mode is not None
        self._max_concurrency = max_concurrency
        self._max_concurrency_explicit = max_concurrency is not None
        self._heartbeat_fixed = heartbeat_interval
        self._shutdown_grace = shutdown_grace
        self._eof_grace = eof_grace
        self._calls = MasterCalls(
            lambda: None if self._stopping else self._session,
            timeout,
            RetryPolicy(retries, retry_delay),
        )
        self._include_stack = include_stack
        self._send_ready = send_ready
        self._max_line_bytes = max_line_bytes
        self.target: str | None = None
        self._session: Session | None = None
        self._channel: MasterChannel | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reset()

    def _reset(self) -> None:
        self._rejected = 0
        self._init_seen = False
        self._stopping = False
        self._stopped: asyncio.Future[int] | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._abandoned = False
        self._pool: ThreadPoolExecutor | None = None
        self._heartbeats: Heartbeats | None = None
        self._watchdog: EofWatchdog | None = None

    # --- introspection ------------------------------------------------------------------

    @property
    def mode(self) -> Mode:
        """``"sequential"`` or ``"concurrent"``: as constructed, or as the master's INIT set it."""
        return self._mode

    @property
    def requests_handled(self) -> int:
        """Requests answered after running their handler (successfully or not)."""
        return self._session.server.handled if self._session is not None else 0

    @property
    def requests_in_progress(self) -> int:
        """Requests whose handler is running now (0 when not serving)."""
        return self._session.server.running if self._session is not None else 0

    @property
    def queue_size(self) -> int:
        """Requests waiting for a free handler slot (0 when not serving)."""
        return self._session.server.queued if self._session is not None else 0

    @property
    def is_active(self) -> bool:
        """Serving, and not shutting down."""
        return self._channel is not None and not self._stopping

    def get_requests_handled(self) -> int:
        """Node peepsy's spelling of :attr:`requests_handled`."""
        return self.requests_handled

    def get_queue_size(self) -> int:
        """Node peepsy's spelling of :attr:`queue_size`."""
        return self.queue_size

    # --- running ------------------------------------------------------------------------

    def run(self) -> None:
        """Serve until SHUTDOWN, SIGTERM or end of input, then return: on stdin/stdout,
        or on Node's IPC channel when a Node peepsy master forked this process.

        When handlers had to be abandoned (still running at the stop deadline), the
        process exits with status 0 at once instead of returning: a handler's thread
        cannot be stopped, and Python would wait for it at exit.
        """
        asyncio.run(self._serve_process())

    async def _serve_process(self) -> int:
        status = await self.serve()
        if self._abandoned:
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
        return status

    async def serve(self, channel: MasterChannel | None = None) -> int:
        """Serve on ``channel`` (stdin/stdout by default) until told to stop. Returns the
        exit status (0)."""
        if self._channel is not None:
            raise RuntimeError("this Child is already serving")
        self._reset()
        loop = self._loop = asyncio.get_running_loop()
        self._stopped = loop.create_future()
        # SIGTERM belongs to the process: only a child on its own channel takes it.
        signals = take_sigterm(loop, self.shutdown) if channel is None else []
        own: StdioChannel | NodeIpcChannel | None = None
        if channel is None:
            # Forked by a Node peepsy master: its IPC channel; otherwise stdin/stdout.
            channel = own = NodeIpcChannel.from_environment() or StdioChannel()
        self._channel = channel
        conn = Connection(Role.CHILD, max_line_bytes=self._max_line_bytes)
        session = self._session = Session(
            conn,
            channel.write,
            loop,
            Deadlines(loop, expire),
            Listener(self._rejected_line, self._lifecycle),
            self._server,
            peer="master",
            include_stack=self._include_stack,
        )
        # HB-1: a Node master states no interval but kills a child silent for its own.
        interval = self._heartbeat_fixed or (
            UNSTATED_HEARTBEAT_MS if isinstance(channel, NodeIpcChannel) else DEFAULT_HEARTBEAT_MS
        )
        heartbeats = self._heartbeats = Heartbeats(conn, channel, self._busy, interval)
        try:
            channel.start(Reader(session))
            heartbeats.start()
            if own is not None:
                # STREAM-3 even when a handler blocks the loop: see _watchdog.
                watchdog = self._watchdog = EofWatchdog(
                    own.input_fd(), self._eof_grace, lambda: _flush_last(session, own)
                )
                watchdog.start()
            return await self._stopped
        finally:
            if self._watchdog is not None:
                # Stopped in time: the process is the caller's again (run() ends it at
                # once when handlers were abandoned).
                self._watchdog.stop()
            if self._deadline is not None:
                self._deadline.cancel()
            for sig in signals:
                loop.remove_signal_handler(sig)
            heartbeats.stop()
            session.fail_all(lambda _: PeepsyShutdownError("the child is stopping"))
            channel.close()
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
            self._channel = None

    def _server(self, session: Session) -> Server:
        assert self._loop is not None
        server = Server(
            self._handlers,
            session.respond,
            self._loop,
            capacity=self._capacity,
            executor=self._executor,
            name=lambda: self.target,
        )
        server.on_idle = self._stopped_serving
        return server

    def _capacity(self) -> int | None:
        return 1 if self._mode == "sequential" else self._max_concurrency

    def _busy(self) -> int:
        session = self._session
        return 0 if session is None else session.server.running + session.server.queued

    def _executor(self) -> ThreadPoolExecutor:
        # Made on first use, once INIT has settled the mode: 1 thread, or the cap (or 32).
        if self._pool is None:
            workers = 1 if self._mode == "sequential" else (self._max_concurrency or 32)
            self._pool = ThreadPoolExecutor(
                max_workers=workers, thread_name_prefix="peepsy-handler"
            )
        return self._pool

    # --- what the master sends besides requests and answers -------------------------------

    def _lifecycle(self, event: Event) -> None:
        if isinstance(event, InitReceived):
            self._init(event)
        elif isinstance(event, ShutdownReceived):
            grace = event.message.timeout
            self.shutdown(grace if isinstance(grace, int) else None)
        elif isinstance(event, StreamEnded):
            # The master is gone (STREAM-3, SHUT-2): nothing will answer our requests,
            # and nothing will read our answers for long.
            log.info("stdin closed: stopping within %d ms", self._eof_grace)
            if self._watchdog is not None:
                self._watchdog.ended()
            assert self._session is not None
            self._session.fail_all(lambda _: PeepsyShutdownError("the master closed the channel"))
            self.shutdown(self._eof_grace)
        # HEARTBEAT and READY never get here: the core rejects them for a child (MSG-6).

    def _rejected_line(self, error: RemoteProtocolError) -> None:
        # An invalid INIT or SHUTDOWN lands here too, and changes nothing (MSG-9); a bad
        # REQUEST whose id could be read was answered by the session, even while
        # stopping (REQ-9).
        self._rejected += 1
        log.warning("bad line from master: %s", error)

    def _init(self, event: InitReceived) -> None:
        if self._init_seen:
            log.info("ignored a repeated INIT (INIT-2)")
            return
        self._init_seen = True
        msg = event.message
        if isinstance(msg.target, str):
            self.target = msg.target
        if not self._mode_explicit and msg.mode != self._mode and self.requests_in_progress == 0:
            self._mode = msg.mode
            log.info("mode set to %s by INIT", msg.mode)
            if self._pool is not None:  # sized for the old mode
                self._pool.shutdown(wait=False)
                self._pool = None
        if not self._max_concurrency_explicit and isinstance(msg.max_concurrency, int):
            self._max_concurrency = msg.max_concurrency
            log.info("concurrency cap set to %d by INIT", msg.max_concurrency)
        if self._heartbeat_fixed is None and self._heartbeats is not None:
            # HB-1: no stated interval is a master (Node's) that may check at any pace.
            stated = msg.heartbeat_interval
            self._heartbeats.set_interval(
                stated if isinstance(stated, int) else UNSTATED_HEARTBEAT_MS
            )
        if self._send_ready and self._session is not None:
            self._session.write(
                self._session.conn.send(
                    ready_message(
                        self._mode, self._capacity(), self._max_line_bytes, self._handlers.names()
                    )
                )
            )

    # --- stopping (SHUT-1, SHUT-2) ------------------------------------------------------

    def shutdown(self, grace: int | None = None) -> None:
        """Stop taking requests: answer the queued ones 503, let the running ones finish
        for at most ``grace`` ms (default ``shutdown_grace``), then stop serving. A later
        call can bring that deadline closer, never push it back."""
        if self._loop is None or self._stopped is None or self._stopped.done():
            return
        self._stop_within(self._shutdown_grace if grace is None else grace)
        if self._stopping:
            return
        self._stopping = True
        assert self._session is not None
        server = self._session.server
        server.close()
        if server.running == 0:
            self._stopped_serving()

    def _stop_within(self, grace_ms: int) -> None:
        assert self._loop is not None
        when = self._loop.time() + grace_ms / 1000
        if self._deadline is not None:
            if self._deadline.when() <= when:
                return
            self._deadline.cancel()
        self._deadline = self._loop.call_at(when, self._abandon)

    def _abandon(self) -> None:
        """The stop deadline passed with handlers still running (SHUT-6, STREAM-3): leave
        them unanswered; the master fails their requests."""
        log.warning(
            "%d request(s) still running at the stop deadline; abandoning them",
            self.requests_in_progress,
        )
        self._abandoned = True
        if self._session is not None:
            self._session.server.abandon()
        self._stopped_serving()

    def _stopped_serving(self) -> None:
        assert self._stopped is not None
        if self._deadline is not None:
            self._deadline.cancel()
        if not self._stopped.done():
            self._stopped.set_result(0)


def _flush_last(session: Session, channel: StdioChannel | NodeIpcChannel) -> None:
    """What the watchdog flushes before it ends the process: the lines the channel holds,
    then the answers of a read that a loop-blocking handler interrupted."""
    channel.flush()
    unsent = session.take_unsent()
    if unsent:
        channel.write_now(unsent)

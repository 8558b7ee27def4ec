"""The reference child: serves the master's requests, sends heartbeats, calls the master.

Policy only: the protocol core parses and encodes, the channel moves bytes.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import os
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, Literal, TypeVar, overload

from pydantic import MISSING as _MISSING

from peepsy._actions import ActionLike, HandlerEntry, HandlerRegistry, Handlers
from peepsy._checks import check_int, check_ms
from peepsy._eager import start_eagerly
from peepsy._errors import EncodeError, PeepsyError, PeepsyShutdownError, PeepsyTimeoutError
from peepsy._failures import NOT_FOUND_TEMPLATE, bare_payload, error_from_wire, error_to_wire
from peepsy.protocol import (
    DEFAULT_MAX_LINE_BYTES,
    MIN_MAX_LINE_BYTES,
    PROTOCOL_VERSION,
    Connection,
    ErrorPayload,
    Event,
    Heartbeat,
    HeartbeatReceived,
    InitReceived,
    InvalidResponseReceived,
    MessageRejected,
    Ready,
    ReadyReceived,
    RequestReceived,
    ResponseReceived,
    Role,
    ShutdownReceived,
    StreamEnded,
    UnmatchedResponse,
)
from peepsy.protocol._codec import printable
from peepsy.transport import MasterChannel, NodeIpcChannel, StdioChannel

Mode = Literal["sequential", "concurrent"]
Req = TypeVar("Req")
Resp = TypeVar("Resp")

DEFAULT_TIMEOUT_MS: Final = 5000
DEFAULT_HEARTBEAT_MS: Final = 2000
DEFAULT_SHUTDOWN_GRACE_MS: Final = 10_000
DEFAULT_EOF_GRACE_MS: Final = 1000
_MAX_STATED_LINE_BYTES: Final = 2**53 - 1
IMPLEMENTATION: Final = "peepsy-python/0.1.0"

log = logging.getLogger("peepsy.child")


class _Queued:
    __slots__ = ("done", "entry", "event", "timer")

    def __init__(self, event: RequestReceived, entry: HandlerEntry) -> None:
        self.event = event
        self.entry = entry
        self.done = False
        self.timer: asyncio.TimerHandle | None = None


class Child(HandlerRegistry):
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
    default) whatever its handlers do (STREAM-3). Abandoned requests go unanswered; the
    exit status is 0 either way.
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
        self._heartbeat_ms = heartbeat_interval or DEFAULT_HEARTBEAT_MS
        self._heartbeat_explicit = heartbeat_interval is not None
        self._shutdown_grace = shutdown_grace
        self._eof_grace = eof_grace
        self._timeout = timeout
        self._retries = retries
        self._retry_delay = retry_delay
        self._include_stack = include_stack
        self._send_ready = send_ready
        self._max_line_bytes = max_line_bytes
        self.target: str | None = None
        self._reset()

    def _reset(self) -> None:
        self._conn = Connection(Role.CHILD, max_line_bytes=self._max_line_bytes)
        self._channel: MasterChannel | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: list[tuple[int, int, _Queued]] = []
        self._seq = itertools.count()
        self._queued = 0
        self._running = 0
        self._handled = 0
        self._rejected = 0
        self._draining = False
        self._batch: list[bytes] | None = None
        self._init_seen = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending: dict[str, tuple[asyncio.Future[Any], asyncio.TimerHandle]] = {}
        self._stopping = False
        self._stopped: asyncio.Future[int] | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._abandoned = False
        self._pool: ThreadPoolExecutor | None = None
        self._hb_stop = threading.Event()
        self._stopping_heartbeats = False
        self._hb_thread: threading.Thread | None = None

    # --- introspection ------------------------------------------------------------------

    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def requests_handled(self) -> int:
        """Requests answered after running their handler (successfully or not)."""
        return self._handled

    @property
    def requests_in_progress(self) -> int:
        return self._running

    @property
    def queue_size(self) -> int:
        return self._queued

    @property
    def is_active(self) -> bool:
        """Serving, and not shutting down."""
        return self._channel is not None and not self._stopping

    def get_requests_handled(self) -> int:
        return self._handled

    def get_queue_size(self) -> int:
        return self._queued

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
        signals = self._install_signals(loop) if channel is None else []
        if channel is None:
            # Forked by a Node peepsy master: its IPC channel; otherwise stdin/stdout.
            node = NodeIpcChannel.from_environment()
            if node is not None:
                self._conn = Connection(
                    Role.CHILD, max_line_bytes=self._max_line_bytes, node_ipc=True
                )
            channel = node if node is not None else StdioChannel()
        self._channel = channel
        try:
            channel.start(self)
            self._start_heartbeats()
            return await self._stopped
        finally:
            if self._deadline is not None:
                self._deadline.cancel()
            for sig in signals:
                loop.remove_signal_handler(sig)
            self._stopping_heartbeats = True
            self._hb_stop.set()
            self._fail_pending(PeepsyShutdownError("the child is stopping"))
            channel.close()
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
            self._channel = None

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> list[int]:
        if threading.current_thread() is not threading.main_thread():
            return []
        try:
            loop.add_signal_handler(signal.SIGTERM, self.shutdown)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - not on Unix
            return []
        return [signal.SIGTERM]

    def _ready(self) -> Ready:
        # Sent once INIT has settled the mode and the cap: READY states what the child
        # actually runs with (READY-2, SCHED-2). One at a time is a cap of 1.
        cap = 1 if self._mode == "sequential" else self._max_concurrency
        limits: dict[str, int] = {} if cap is None else {"max_concurrency": cap}
        # A limit under the 1 MiB every receiver takes (FRAME-6) cannot be stated.
        if self._max_line_bytes >= MIN_MAX_LINE_BYTES:
            limits["max_line_bytes"] = min(self._max_line_bytes, _MAX_STATED_LINE_BYTES)
        return Ready(
            type="READY",
            pid=os.getpid(),
            protocol=PROTOCOL_VERSION,
            mode=self._mode,
            actions=self._handlers.names(),
            implementation=IMPLEMENTATION,
            **limits,
        )

    def _write(self, line: bytes) -> None:
        if self._batch is not None:
            self._batch.append(line)
        elif self._channel is not None:
            self._channel.write(line)

    # --- heartbeats (HB-1): on their own thread, so no handler can hold them up ---------

    def _start_heartbeats(self) -> None:
        self._stopping_heartbeats = False
        self._hb_stop.clear()
        thread = threading.Thread(target=self._heartbeat_loop, name="peepsy-heartbeat", daemon=True)
        self._hb_thread = thread
        thread.start()

    def _heartbeat_loop(self) -> None:
        channel = self._channel
        pid = os.getpid()
        next_at = time.monotonic()
        while channel is not None:
            now = time.monotonic()
            if now >= next_at:
                line = self._conn.send(
                    Heartbeat(
                        type="HEARTBEAT",
                        pid=pid,
                        timestamp=int(time.time() * 1000),
                        requests_active=self._running + self._queued,
                    )
                )
                channel.write_now(line)
                next_at = now + self._heartbeat_ms / 1000
            # Woken early when INIT changes the interval, so the new one applies at once.
            if self._hb_stop.wait(max(0.0, next_at - time.monotonic())):
                if self._stopping_heartbeats:
                    return
                self._hb_stop.clear()
                next_at = min(next_at, time.monotonic() + self._heartbeat_ms / 1000)

    # --- receiving ----------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        # The answers written while this chunk is handled (every eager one) leave in one
        # write when it is done: no per-line system call, no extra loop pass to flush.
        batch = self._batch = []
        try:
            for event in self._conn.receive_data(data):
                self._handle(event)
        finally:
            self._batch = None
            if batch and self._channel is not None:
                self._channel.write_now(batch[0] if len(batch) == 1 else b"".join(batch))

    def eof_received(self) -> None:
        for event in self._conn.receive_data(b""):
            self._handle(event)

    def _handle(self, event: Event) -> None:
        if isinstance(event, RequestReceived):
            self._accept(event)
        elif isinstance(event, ResponseReceived):
            self._settle(event)
        elif isinstance(event, MessageRejected):
            self._rejected_line(event)
        elif isinstance(event, InitReceived):
            self._init(event)
        elif isinstance(event, ShutdownReceived):
            grace = event.message.timeout
            self.shutdown(grace if isinstance(grace, int) else None)
        elif isinstance(event, StreamEnded):
            # The master is gone (STREAM-3, SHUT-2): nothing will answer our requests,
            # and nothing will read our answers for long.
            log.info("stdin closed: stopping within %d ms", self._eof_grace)
            self._fail_pending(PeepsyShutdownError("the master closed the channel"))
            self.shutdown(self._eof_grace)
        elif isinstance(event, InvalidResponseReceived):
            self._settle_invalid(event)
        elif isinstance(event, UnmatchedResponse):
            log.debug("ignored a RESPONSE to %r (late=%s)", event.response.id, event.late)
        elif isinstance(event, HeartbeatReceived | ReadyReceived):  # pragma: no cover
            pass  # the core rejects these for a child (MSG-6)

    def _rejected_line(self, event: MessageRejected) -> None:
        # An invalid INIT or SHUTDOWN lands here too, and changes nothing (MSG-9); a bad
        # REQUEST whose id could be read is answered even while stopping (REQ-9).
        self._rejected += 1
        err = event.error
        log.warning("bad line from master: %s", err)
        if err.request_id is not None:
            status, payload = error_to_wire(err)
            self._write(self._conn.send_response(err.request_id, status, error_payload=payload))

    def _init(self, event: InitReceived) -> None:
        if self._init_seen:
            log.info("ignored a repeated INIT (INIT-2)")
            return
        self._init_seen = True
        msg = event.message
        if isinstance(msg.target, str):
            self.target = msg.target
        if not self._mode_explicit and msg.mode != self._mode and self._running == 0:
            self._mode = msg.mode
            log.info("mode set to %s by INIT", msg.mode)
            if self._pool is not None:  # sized for the old mode
                self._pool.shutdown(wait=False)
                self._pool = None
        if not self._max_concurrency_explicit and isinstance(msg.max_concurrency, int):
            self._max_concurrency = msg.max_concurrency
            log.info("concurrency cap set to %d by INIT", msg.max_concurrency)
        if not self._heartbeat_explicit and isinstance(msg.heartbeat_interval, int):
            self._heartbeat_ms = msg.heartbeat_interval
            self._hb_stop.set()  # wake the heartbeat thread to apply it now
        if self._send_ready:
            self._write(self._conn.send(self._ready()))

    # --- scheduling (SCHED-1..3) --------------------------------------------------------

    @property
    def _capacity(self) -> int | float:
        if self._mode == "sequential":
            return 1
        return self._max_concurrency or float("inf")

    def _accept(self, event: RequestReceived) -> None:
        if self._stopping:
            self._answer_error(event.id, PeepsyShutdownError("the child is shutting down"))
            return
        entry = self._handlers.get(event.action)
        if entry is None:
            message = NOT_FOUND_TEMPLATE.format(action=printable(event.action))
            payload = ErrorPayload(
                name="PeepsyNotFoundError", message=message, code="PEEPSY_NOT_FOUND"
            )
            self._write(self._conn.send_response(event.id, 404, error_payload=payload))
            return
        if self._running < self._capacity and not self._queued:
            self._start(event, entry)
        else:
            self._enqueue(event, entry)

    def _enqueue(self, event: RequestReceived, entry: HandlerEntry) -> None:
        item = _Queued(event, entry)
        heapq.heappush(self._queue, (-event.priority, next(self._seq), item))
        self._queued += 1
        assert self._loop is not None
        timeout = event.timeout or DEFAULT_TIMEOUT_MS
        item.timer = self._loop.call_later(timeout / 1000, self._expire, item)

    def _expire(self, item: _Queued) -> None:
        if item.done:
            return
        item.done = True
        self._queued -= 1
        timeout = item.event.timeout or DEFAULT_TIMEOUT_MS
        self._answer_error(
            item.event.id,
            PeepsyTimeoutError(
                f"Request expired in the queue after {timeout}ms", action=item.event.action
            ),
        )

    def _pop(self) -> _Queued | None:
        while self._queue:
            _, _, item = heapq.heappop(self._queue)
            if not item.done:
                item.done = True
                self._queued -= 1
                if item.timer is not None:
                    item.timer.cancel()
                return item
        return None

    def _start(self, event: RequestReceived, entry: HandlerEntry) -> None:
        """Run a request now. The handler is stepped eagerly: one that does not wait is
        answered before this returns, with no Task; one that waits gets a Task."""
        self._running += 1
        assert self._loop is not None
        task = start_eagerly(self._loop, self._execute(event, entry))
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _start_queued(self) -> None:
        """Start queued requests while there is capacity. Not re-entered: a request that
        finishes eagerly inside the loop below only frees its slot."""
        if self._draining:
            return
        self._draining = True
        try:
            while self._running < self._capacity and self._queued:
                item = self._pop()
                if item is None:  # pragma: no cover - _queued counts live entries
                    break
                self._start(item.event, item.entry)
        finally:
            self._draining = False

    async def _execute(self, event: RequestReceived, entry: HandlerEntry) -> None:
        try:
            result = await entry.run(event.data, self._executor())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._handled += 1
            self._answer_error(event.id, exc, ran=True)
        else:
            self._handled += 1
            try:
                line = self._conn.send_response(event.id, 200, result)
            except EncodeError as exc:
                self._answer_error(event.id, exc, ran=True)
            else:
                self._write(line)
        finally:
            self._running -= 1
            if self._stopping:
                if self._running == 0:
                    self._stopped_serving()
            elif self._queued:
                self._start_queued()

    def _executor(self) -> ThreadPoolExecutor:
        """The threads for sync handlers, made on first use (after INIT has settled the
        mode): one for sequential mode, ``max_concurrency`` (or 32) for concurrent."""
        if self._pool is None:
            workers = 1 if self._mode == "sequential" else (self._max_concurrency or 32)
            self._pool = ThreadPoolExecutor(
                max_workers=workers, thread_name_prefix="peepsy-handler"
            )
        return self._pool

    def _answer_error(self, request_id: str, exc: BaseException, *, ran: bool = False) -> None:
        status, payload = error_to_wire(exc, include_stack=self._include_stack, ran=ran)
        try:
            line = self._conn.send_response(request_id, status, error_payload=payload)
        except EncodeError:
            line = self._conn.send_response(request_id, status, error_payload=bare_payload(payload))
        self._write(line)

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
        while (item := self._pop()) is not None:
            self._answer_error(item.event.id, PeepsyShutdownError("the child is shutting down"))
        if self._running == 0:
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
            "%d request(s) still running at the stop deadline; abandoning them", self._running
        )
        self._abandoned = True
        for task in list(self._tasks):
            task.cancel()
        self._stopped_serving()

    def _stopped_serving(self) -> None:
        assert self._stopped is not None
        if self._deadline is not None:
            self._deadline.cancel()
        if not self._stopped.done():
            self._stopped.set_result(0)

    # --- requests to the master ---------------------------------------------------------

    @overload
    async def request(
        self,
        action: ActionLike[Req, Resp],
        data: Req,
        *,
        timeout: int | None = None,
        retries: int | None = None,
        priority: int | None = None,
    ) -> Resp: ...
    @overload
    async def request(
        self,
        action: str,
        data: Any = None,
        *,
        timeout: int | None = None,
        retries: int | None = None,
        priority: int | None = None,
    ) -> Any: ...
    async def request(
        self,
        action: str | ActionLike[Any, Any],
        data: Any = None,
        *,
        timeout: int | None = None,
        retries: int | None = None,
        priority: int | None = None,
    ) -> Any:
        """Ask the master to run ``action``; return its response data.

        Raises :class:`~peepsy.RemoteError` when the master answers with a failure,
        :class:`~peepsy.protocol.InvalidResponse` when its answer is invalid (MSG-9),
        :class:`~peepsy.PeepsyTimeoutError` when it does not answer within ``timeout``
        ms (REQ-11; a late answer is then ignored; retried up to ``retries`` times,
        ``retry_delay`` ms apart: a timeout is the one failure where the master may not
        have seen the request), :class:`~peepsy.protocol.LineTooLongForPeer` when the
        request would be longer than the master's ``maxLineBytes`` (FRAME-11), and
        :class:`~peepsy.PeepsyShutdownError` when the child stops first.
        """
        if self._channel is None or self._loop is None:
            raise PeepsyError("the child is not serving")
        timeout = self._timeout if timeout is None else timeout
        check_ms("timeout", timeout)
        if retries is not None:
            check_int("retries", retries, 0)
        name = action if isinstance(action, str) else action.name
        payload = data if isinstance(action, str) else action.dump_request(data)
        attempts = 1 + (self._retries if retries is None else retries)
        for attempt in range(attempts):
            try:
                result = await self._request_once(name, payload, timeout, priority)
            except PeepsyTimeoutError:
                if attempt + 1 >= attempts:
                    raise
                await asyncio.sleep(self._retry_delay / 1000)
                continue
            if not isinstance(action, str):
                return action.parse_response(result)
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    async def _request_once(
        self, action: str, data: Any, timeout: int, priority: int | None
    ) -> Any:
        assert self._loop is not None
        if self._stopping:
            raise PeepsyShutdownError("the child is shutting down")
        rid, line = self._conn.send_request(action, data, timeout=timeout, priority=priority)
        future: asyncio.Future[Any] = self._loop.create_future()
        timer = self._loop.call_later(timeout / 1000, self._timed_out, rid, action, timeout)
        self._pending[rid] = (future, timer)
        self._write(line)
        return await future

    def _timed_out(self, rid: str, action: str, timeout: int) -> None:
        entry = self._pending.pop(rid, None)
        self._conn.forget(rid)
        if entry is not None and not entry[0].done():
            entry[0].set_exception(
                PeepsyTimeoutError(
                    f"Request timed out after {timeout}ms for target: master",
                    action=action,
                    target="master",
                    timeout_ms=timeout,
                )
            )

    def _settle_invalid(self, event: InvalidResponseReceived) -> None:
        # MSG-9: the answer came and was invalid; no valid one will follow, so the
        # caller learns it now rather than at its timeout.
        log.warning("invalid answer from the master: %s", event.error)
        entry = self._pending.pop(event.id, None)
        if entry is None:  # pragma: no cover - the core only reports ids we await
            return
        future, timer = entry
        timer.cancel()
        if not future.done():
            future.set_exception(event.error)

    def _settle(self, event: ResponseReceived) -> None:
        entry = self._pending.pop(event.response.id, None)
        if entry is None:  # pragma: no cover - the core only reports ids we await
            return
        future, timer = entry
        timer.cancel()
        if future.done():  # pragma: no cover - the caller was cancelled
            return
        if event.ok:
            data = event.response.data
            future.set_result(None if data is _MISSING else data)
        else:
            future.set_exception(
                error_from_wire(event.response, action=event.action, target="master")
            )

    def _fail_pending(self, exc: PeepsyError) -> None:
        pending, self._pending = self._pending, {}
        for future, timer in pending.values():
            timer.cancel()
            if not future.done():
                future.set_exception(exc)

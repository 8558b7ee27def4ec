"""Starting and stopping a worker's processes: the process, its session, INIT, SHUTDOWN.

Each process a worker runs gets a fresh :class:`~peepsy.session.Session`, made before the
process is up so that nothing it says first is lost, and a :class:`~peepsy.session.Server`
for the requests it sends the master: the same serving path as a child's, bounded per
child, refused with 503 once the master shuts down (``Server.close``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Final

from peepsy._actions import Handlers
from peepsy._errors import PeepsyProcessError
from peepsy.master._events import Emitter, SpawnEvent
from peepsy.master._supervisor import KILL_GRACE_S
from peepsy.master._worker import Worker
from peepsy.protocol import MIN_MAX_LINE_BYTES, PROTOCOL_VERSION, Connection, Init, Role, Shutdown
from peepsy.session import Call, Deadlines, Server, Session, expire
from peepsy.transport import ChildTransport, Launcher, SshHost, SshLauncher

_MAX_STATED_LINE_BYTES: Final = 2**53 - 1
#: The most a shutdown waits after its CANCELs (the master's ``cancel_grace`` if less).
SHUTDOWN_CANCEL_GRACE_MS: Final = 1000

log = logging.getLogger("peepsy.master")


class Spawner:
    def __init__(
        self,
        launcher: Launcher,
        handlers: Handlers,
        emitter: Emitter,
        *,
        max_line_bytes: int,
        heartbeat_interval: int,
        include_stack: bool,
        serve_concurrency: int | None,
        cancel_grace: int,
    ) -> None:
        self._launcher = launcher
        self._handlers = handlers
        self._emitter = emitter
        self._max_line_bytes = max_line_bytes
        self._heartbeat_interval = heartbeat_interval
        self._include_stack = include_stack
        self._serve_concurrency = serve_concurrency
        #: How long a 1.1 child has to stop its handlers after the CANCELs sent at a
        #: SHUTDOWN's deadline, before its input is closed (s).
        self._cancel_grace = min(cancel_grace, SHUTDOWN_CANCEL_GRACE_MS) / 1000
        self._deadlines: Deadlines[Call[Any]] | None = None
        self._ssh: SshLauncher | None = None  # made by the first child on another host

    async def start(self, worker: Worker, *, restart: bool) -> None:
        """Start ``worker``'s process with a fresh session and send it INIT."""
        loop = asyncio.get_running_loop()
        if self._deadlines is None:
            self._deadlines = Deadlines(loop, expire)
        line_limit = worker.max_line_bytes or self._max_line_bytes
        conn = Connection(Role.MASTER, max_line_bytes=line_limit)
        session = Session(
            conn,
            None,  # held until the process is up (Worker.attach binds it)
            loop,
            self._deadlines,
            worker,
            self._server,
            peer=worker.target,
            include_stack=self._include_stack,
            legacy=worker.legacy,
        )
        if worker.status == "restarting":
            worker.move("starting")
        worker.begin(session, restart=restart)
        host = worker.spec.extra.get("host")
        try:
            if isinstance(host, SshHost):
                if self._ssh is None:
                    self._ssh = SshLauncher()
                transport = await self._ssh.spawn(worker.spec, host, worker)
            else:
                transport = await self._launcher.spawn(worker.spec, worker)
        except PeepsyProcessError as exc:  # PeepsySshError: the host, not the command
            worker.move("failed")
            exc.target = worker.target
            raise
        except Exception as exc:  # OSError, or ValueError for a NUL in an argument, ...
            worker.move("failed")
            raise PeepsyProcessError(
                f"could not start {worker.target}: {exc}", target=worker.target
            ) from exc
        # FRAME-6/11: the child may write lines up to our limit, when we can state it (a
        # limit under the 1 MiB every receiver takes cannot be).
        limit = (
            {"max_line_bytes": min(line_limit, _MAX_STATED_LINE_BYTES)}
            if line_limit >= MIN_MAX_LINE_BYTES
            else {}
        )
        init = Init(
            type="INIT",
            mode=worker.mode,  # type: ignore[arg-type]
            protocol=PROTOCOL_VERSION,
            target=worker.target,
            heartbeat_interval=self._heartbeat_interval,
            **limit,
        )
        transport.write(conn.send(init))  # INIT first, before any answer written early
        worker.attach(transport)
        log.info("spawned %s (pid %s)", worker.target, transport.pid)
        self._emitter.emit("spawn", SpawnEvent(worker.target, transport.pid, worker.group, restart))

    async def close(self) -> None:
        """End the shared ssh connections (``ssh -O exit``) and remove their sockets."""
        if self._ssh is not None:
            await self._ssh.close()

    def _server(self, session: Session) -> Server:
        # The children's requests to the master: the same serving path as a child's,
        # bounded per child (SCHED-2), refused with 503 once the master shuts down.
        cap = self._serve_concurrency
        return Server(
            self._handlers,
            session.respond,
            asyncio.get_running_loop(),
            capacity=lambda: cap,
            who="the master",
        )

    async def stop(self, worker: Worker, timeout: int) -> int | None:
        """Send SHUTDOWN and wait; escalate at the deadline: CANCEL what it still runs
        (a 1.1 child), then close its input, then SIGTERM, then SIGKILL. Returns the
        exit status."""
        transport = worker.transport
        if transport is None or transport.returncode is not None:
            return None if transport is None else transport.returncode
        session = worker.session
        assert session is not None
        if worker.replacing:  # sent SIGTERM already; the SIGKILL after it is ours now
            return await _escalate(transport, [(None, KILL_GRACE_S), (transport.kill, 5.0)])
        if not worker.alive:  # pragma: no cover - a live transport is a live worker
            return None
        worker.move("stopping")
        shutdown = Shutdown(type="SHUTDOWN", timeout=max(1, min(timeout, 300_000)))
        session.write(session.conn.send(shutdown))

        def cancel() -> bool:
            # A 1.1 child is told to stop its handlers before it is made to; one that
            # holds nothing, or cannot be told (1.0), goes straight to the next step.
            return session.cancel_all("shutdown") > 0

        return await _escalate(
            transport,
            [
                (None, timeout / 1000),
                (cancel, self._cancel_grace),
                (transport.close_input, 1.0),
                (transport.terminate, 1.0),
                (transport.kill, 5.0),
            ],
        )


async def _escalate(
    transport: ChildTransport, steps: list[tuple[Callable[[], object] | None, float]]
) -> int | None:
    """Each step's action, then a wait for the exit (an action that returns False has
    nothing to wait for); the exit status, once there is one."""
    for action, wait in steps:
        if action is not None and action() is False:
            continue
        try:
            return await asyncio.wait_for(transport.wait(), wait)
        except TimeoutError:
            continue
    return transport.returncode  # pragma: no cover - SIGKILL did not end it

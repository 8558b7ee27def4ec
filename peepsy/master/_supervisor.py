"""Deaths, restarts and health: what happens to a worker whose process ends or goes quiet.

The supervisor decides; it starts nothing itself. ``respawn(worker)`` is how a worker
is started again, given by the master. Restarts are limited by intensity: at most
``max_restarts`` within ``restart_window`` ms, after which the worker is ``failed``
(Node defect 2). A worker that sent heartbeats and then stops sending them for
``miss_threshold`` intervals is ``unhealthy`` and, when it may restart, killed so that
it restarts (HB-2; Node defects 6 and 9).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import signal as signal_module
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Final, Literal

from peepsy._errors import PeepsyProcessError, PeepsySshError
from peepsy.master._events import (
    AutoRestartEvent,
    Emitter,
    ErrorEvent,
    ExitEvent,
    HeartbeatMissedEvent,
    RearmEvent,
    ReplacedEvent,
    RestartFailedEvent,
)
from peepsy.master._worker import Worker
from peepsy.transport import ChildTransport

log = logging.getLogger("peepsy.master")

#: After SIGTERM, how long a child whose channel broke has before SIGKILL.
KILL_GRACE_S: Final = 1.0
#: A host that could not be reached is tried again after this, doubled on each failed
#: attempt within the restart window, up to the maximum.
RECONNECT_BACKOFF_S: Final = 0.25
RECONNECT_BACKOFF_MAX_S: Final = 8.0


class Supervisor:
    def __init__(
        self,
        emitter: Emitter,
        respawn: Callable[[Worker], Coroutine[Any, Any, None]],
        may_restart: Callable[[Worker], bool],
        *,
        max_restarts: int,
        restart_window: int,
        heartbeat_interval: int,
        miss_threshold: int,
        restart_cooldown: int | None = None,
    ) -> None:
        self._emitter = emitter
        self._respawn = respawn
        self._may_restart = may_restart
        self._max_restarts = max_restarts
        self._window = restart_window
        self._interval = heartbeat_interval
        self._miss_threshold = miss_threshold
        self._cooldown = restart_cooldown
        self._restart_times: dict[str, collections.deque[float]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}  # re-arms and SIGKILLs, by target
        self._restarts: set[asyncio.Task[None]] = set()
        self._health: asyncio.TimerHandle | None = None
        self.closing = False

    # --- deaths and restarts --------------------------------------------------------------

    def exited(self, worker: Worker, returncode: int | None) -> None:
        """A worker's process ended: fail what it held, then stop or restart it."""
        expected = worker.stop_requested or self.closing or worker.replacing
        sig = -returncode if returncode is not None and returncode < 0 else None
        how = f"signal {signal_module.Signals(sig).name}" if sig else f"code {returncode}"
        failed = 0
        if worker.session is not None:
            failed = worker.session.fail_all(
                lambda call: PeepsyProcessError(
                    f"{worker.target} exited ({how}) before answering {call.action!r}",
                    target=worker.target,
                    returncode=returncode,
                )
            )
            worker.session.server.close()
        worker.errors += failed
        failed += worker.failed_early
        worker.failed_early = 0
        self._cancel_timer(worker)
        pid = worker.transport.pid if worker.transport is not None else None
        (log.info if expected else log.warning)(
            "%s (pid %s) exited with %s", worker.target, pid, how
        )
        self._emitter.emit("exit", ExitEvent(worker.target, pid, returncode, sig, expected, failed))
        if worker.replacing:
            worker.replacing = False
            if worker.status == "restarting" and not worker.stop_requested and not self.closing:
                # Not a death: no restart intensity, and auto_restart does not apply.
                worker.restarts += 1
                worker.replacements += 1
                log.info("%s replaced (stuck)", worker.target)
                self._emitter.emit("replaced", ReplacedEvent(worker.target, "stuck"))
                self._start_restart(worker)
                return
        if worker.status == "stopped":
            return
        if expected or worker.status == "stopping" or not self._may_restart(worker):
            worker.move("stopped")
            return
        if self._count_restart(worker):
            self._emitter.emit(
                "auto-restart",
                AutoRestartEvent(worker.target, returncode, sig, self._restarts_in_window(worker)),
            )
            self._start_restart(worker)

    def _count_restart(self, worker: Worker) -> bool:
        """Count one more restart of ``worker`` under the intensity rules: False (and the
        worker ``failed``, re-armed after the cooldown if there is one) past the limit."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        times = self._restart_times.setdefault(worker.target, collections.deque())
        while times and now - times[0] > self._window / 1000:
            times.popleft()
        if len(times) >= self._max_restarts:
            if worker.status != "failed":
                worker.move("failed")
            log.error(
                "%s restarted %d times within %d ms; giving up",
                worker.target,
                len(times),
                self._window,
            )
            self._emitter.emit(
                "restart-failed", RestartFailedEvent(worker.target, len(times), self._window)
            )
            if self._cooldown is not None:
                self._timers[worker.target] = loop.call_later(
                    self._cooldown / 1000, self.rearm, worker, "cooldown"
                )
            return False
        times.append(now)
        worker.restarts += 1
        worker.move("restarting")
        return True

    def _restarts_in_window(self, worker: Worker) -> int:
        return len(self._restart_times.get(worker.target, ()))

    def _start_restart(self, worker: Worker) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(self._restart(worker))
        self._restarts.add(task)
        task.add_done_callback(self._restarts.discard)
        return task

    def rearm(self, worker: Worker, reason: Literal["manual", "cooldown"]) -> asyncio.Task[None]:
        """Start a ``failed`` worker again with a fresh restart count (the way back after
        the restart limit); the task ends once it is started, or could not be."""
        self._cancel_timer(worker)
        self._restart_times.pop(worker.target, None)
        worker.move("restarting")
        log.info("%s re-armed (%s)", worker.target, reason)
        self._emitter.emit("rearm", RearmEvent(worker.target, reason))
        return self._start_restart(worker)

    def _cancel_timer(self, worker: Worker) -> None:
        timer = self._timers.pop(worker.target, None)
        if timer is not None:
            timer.cancel()

    def broken(self, worker: Worker, reason: str) -> None:
        """``worker``'s channel ended or refused a write while its process may live on:
        the child is gone for us. Its requests fail now, its process is stopped (SIGTERM,
        then SIGKILL), and its exit restarts it as any death does."""
        transport = worker.transport
        if (
            transport is None
            or transport.returncode is not None
            or not worker.alive
            or worker.stop_requested
            or self.closing
            or worker.target in self._timers
        ):
            return
        self._fail_held(worker, f"{reason} before answering")
        log.warning("%s %s while its process runs; stopping it", worker.target, reason)
        self._emitter.emit(
            "error", ErrorEvent(worker.target, PeepsyProcessError(f"{worker.target} {reason}"))
        )
        if worker.status == "running":
            worker.move("unhealthy")  # out of its group's rotation until its exit
        self._stop(worker, transport)

    def replace(self, worker: Worker) -> None:
        """``worker`` has a stuck handler (its ``on_stuck`` is ``replace``): what else it
        held fails now with PeepsyProcessError (retried under the usual rules), its
        process is stopped (SIGTERM, then SIGKILL), and its exit starts a new one. It is
        ``restarting`` meanwhile: requests by name wait for the new process."""
        transport = worker.transport
        if (
            transport is None
            or transport.returncode is not None
            or not worker.accepts
            or worker.stop_requested
            or self.closing
            or worker.target in self._timers  # its channel broke: already being stopped
        ):
            return
        self._fail_held(worker, "was replaced (a handler was stuck) before answering")
        worker.replacing = True
        worker.move("restarting")
        self._stop(worker, transport)

    def _fail_held(self, worker: Worker, what: str) -> None:
        """Fail what ``worker`` still holds now, with PeepsyProcessError (retried under
        the usual rules), counted as failed before its exit."""
        session = worker.session
        assert session is not None  # made before its process started
        failed = session.fail_all(
            lambda call: PeepsyProcessError(
                f"{worker.target} {what} {call.action!r}", target=worker.target
            )
        )
        worker.errors += failed
        worker.failed_early += failed

    def _stop(self, worker: Worker, transport: ChildTransport) -> None:
        """SIGTERM now, SIGKILL after ``KILL_GRACE_S``; its exit does the rest."""
        transport.terminate()
        self._timers[worker.target] = asyncio.get_running_loop().call_later(
            KILL_GRACE_S, transport.kill
        )

    async def _restart(self, worker: Worker) -> None:
        if self.closing or worker.stop_requested:
            worker.move("stopped")
            return
        try:
            await self._respawn(worker)
        except PeepsySshError as exc:
            # The host is out of reach: a failed restart, tried again with backoff
            # until the restart intensity says to give up.
            log.warning("%s could not be restarted: %s", worker.target, exc)
            self._emitter.emit("error", ErrorEvent(worker.target, exc))
            if self.closing or worker.stop_requested or not self._count_restart(worker):
                return
            attempts = self._restarts_in_window(worker)
            delay = min(RECONNECT_BACKOFF_S * 2 ** (attempts - 1), RECONNECT_BACKOFF_MAX_S)
            self._emitter.emit(
                "auto-restart", AutoRestartEvent(worker.target, exc.returncode, None, attempts)
            )
            self._timers[worker.target] = asyncio.get_running_loop().call_later(
                delay, self._retry, worker
            )
        except PeepsyProcessError as exc:
            log.error("%s could not be restarted: %s", worker.target, exc)
            self._emitter.emit("error", ErrorEvent(worker.target, exc))

    def _retry(self, worker: Worker) -> None:
        del self._timers[worker.target]  # a pending timer means "being stopped" to broken()
        self._start_restart(worker)

    async def settle_restarts(self) -> None:
        """Wait for respawns under way, so that their processes can be stopped too."""
        if self._restarts:
            await asyncio.gather(*self._restarts, return_exceptions=True)

    def forget(self, worker: Worker) -> None:
        self._restart_times.pop(worker.target, None)
        self._cancel_timer(worker)

    # --- health (HB-2) --------------------------------------------------------------------

    def watch(self, workers: Callable[[], Iterable[Worker]]) -> None:
        """Check the heartbeats of ``workers()`` every heartbeat interval."""
        if self._health is None and not self.closing:
            loop = asyncio.get_running_loop()
            self._health = loop.call_later(self._interval / 1000, self._check, workers)

    def _check(self, workers: Callable[[], Iterable[Worker]]) -> None:
        self._health = None
        now = asyncio.get_running_loop().time()
        limit = self._interval * self._miss_threshold / 1000
        any_worker = False
        for worker in list(workers()):
            any_worker = True
            # A child that never sent a HEARTBEAT promised none (HB-2): its exit tells.
            if worker.last_heartbeat is None or worker.status != "running":
                continue
            silent = now - worker.last_heartbeat
            if silent <= limit:
                continue
            worker.move("unhealthy")
            log.warning("%s sent no heartbeat for %.1f s", worker.target, silent)
            self._emitter.emit(
                "heartbeat-missed",
                HeartbeatMissedEvent(worker.target, int(time.time() * 1000), int(silent * 1000)),
            )
            if self._may_restart(worker) and worker.transport is not None:
                worker.transport.kill()
        if any_worker:
            self.watch(workers)

    def close(self) -> None:
        self.closing = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        if self._health is not None:
            self._health.cancel()
            self._health = None

"""Children on other hosts: the same worker command, run there over OpenSSH.

The local ``ssh`` process is the child as far as the master is concerned: its stdin and
stdout carry the protocol, its exit is the child's exit. A lost connection therefore *is*
a dead child (ssh exits 255), and the remote worker sees end of input when the local
ssh process or its connection dies, as a local child does when its master dies.

The remote command prints one byte before it ``exec``\\ s the worker; the launcher
swallows it and waits for it, so that a host that cannot be reached (ssh exits before the
byte) is told apart from a worker that fails, and :meth:`~peepsy.Master.spawn_child`
raises :class:`~peepsy.PeepsySshError` with ssh's own message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from peepsy._errors import PeepsyProcessError, PeepsySshError
from peepsy.transport._base import ChildTransport, SpawnSpec, TransportListener
from peepsy.transport._process import ProcessTransport, _StdioWatch

#: The byte the remote shell writes before it runs the worker (swallowed here).
_HELLO: Final = "."
#: How much of ssh's stderr from before the worker started is kept for the error.
_MESSAGE_LIMIT: Final = 8192
#: A link that answers none of ssh's keepalives for this long (3 x 5 s) is dead.
_ALIVE_INTERVAL_S: Final = 5
_ALIVE_COUNT: Final = 3
#: After ssh exits, how long its stderr may stay open (something it started holding it)
#: before the spawn fails with what was read of it.
STDERR_GRACE_S: Final = 1.0
#: How long ``ssh -O exit`` may take at shutdown.
_EXIT_TIMEOUT_S: Final = 5.0
_ENV_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

log = logging.getLogger("peepsy.transport")


@dataclass(frozen=True, slots=True)
class SshHost:
    """A host to run children on, reached with OpenSSH (``ssh`` on the master's host).

    ``destination`` is what ``ssh`` takes (``host``, ``user@host`` or a ``Host`` alias
    of ``~/.ssh/config``). ``port``, ``identity_file`` and ``known_hosts_file`` are
    ``-p``, ``-i`` (with ``IdentitiesOnly``) and ``UserKnownHostsFile`` (with
    ``StrictHostKeyChecking=yes``: an unknown or changed host key is refused).
    ``options`` are more ``-o`` options; they win over peepsy's defaults except
    ``BatchMode=yes``, which is always on: ssh never prompts. ``connect_timeout`` (ms)
    is ssh's ``ConnectTimeout``; a child whose worker is not running within twice
    that is given up. ``control_persist`` (s) keeps one shared connection per host
    open that long after its last child (a restart does not pay a new handshake);
    0 gives every child its own connection. ``ssh`` is the client's argv.
    """

    destination: str
    port: int | None = None
    identity_file: str | None = None
    known_hosts_file: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)
    connect_timeout: int = 10_000
    control_persist: int = 60
    ssh: Sequence[str] = ("ssh",)

    def __post_init__(self) -> None:
        if not isinstance(self.destination, str) or not self.destination:
            raise ValueError("SshHost needs a destination (host, user@host or an alias)")
        if self.destination.startswith("-") or any(c.isspace() for c in self.destination):
            raise ValueError(f"not an ssh destination: {self.destination!r}")
        port = self.port
        if port is not None and (
            isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536
        ):
            raise ValueError(f"port is 1..65535, not {self.port!r}")
        for name in ("connect_timeout", "control_persist"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} is an int >= 0, not {value!r}")
        if self.connect_timeout < 1:
            raise ValueError("connect_timeout is at least 1 ms")
        for key, value in self.options.items():
            if not key.isalnum() or not isinstance(value, str) or "\n" in value:
                raise ValueError(f"not an ssh option: {key!r}={value!r}")
        ssh = tuple(self.ssh)
        if not ssh or not all(isinstance(part, str) and part for part in ssh):
            raise ValueError("ssh is a non-empty argv, e.g. ('ssh',)")
        object.__setattr__(self, "ssh", ssh)
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))


def as_host(host: str | SshHost | None, transport: str) -> SshHost | None:
    """``spawn_child``'s ``host`` argument: a string is ``SshHost(that)``."""
    if host is None:
        return None
    if isinstance(host, str):
        host = SshHost(host)
    elif not isinstance(host, SshHost):
        raise TypeError(f"host is a str or an SshHost, not {type(host).__name__}")
    if transport != "stdio":
        raise ValueError(
            f"a child on another host speaks on its stdin/stdout: transport 'stdio', "
            f"not {transport!r} (Node's IPC channel does not cross ssh)"
        )
    return host


def ssh_options(host: SshHost, control_dir: str) -> list[str]:
    """The options every ssh command for ``host`` takes (a child's and ``-O exit``)."""
    # For -o, ssh keeps the first value it is given: the user's options come before
    # peepsy's defaults, BatchMode before both.
    argv = ["-o", "BatchMode=yes"]
    for key, value in host.options.items():
        argv += ["-o", f"{key}={value}"]
    argv += [
        "-o",
        f"ConnectTimeout={max(1, math.ceil(host.connect_timeout / 1000))}",
        "-o",
        f"ServerAliveInterval={_ALIVE_INTERVAL_S}",
        "-o",
        f"ServerAliveCountMax={_ALIVE_COUNT}",
    ]
    if host.control_persist:
        argv += [
            "-o",
            "ControlMaster=auto",
            "-o",
            f"ControlPath={control_dir}/%C",
            "-o",
            f"ControlPersist={host.control_persist}",
        ]
    else:
        argv += ["-o", "ControlMaster=no", "-o", "ControlPath=none"]
    if host.port is not None:
        argv += ["-p", str(host.port)]
    if host.identity_file is not None:
        argv += ["-i", host.identity_file, "-o", "IdentitiesOnly=yes"]
    if host.known_hosts_file is not None:
        argv += [
            "-o",
            f"UserKnownHostsFile={host.known_hosts_file}",
            "-o",
            "StrictHostKeyChecking=yes",
        ]
    return argv


def remote_command(spec: SpawnSpec) -> str:
    """The command line the remote shell runs: every argument quoted, the environment
    given explicitly (the remote login environment is the base, unless ``inherit_env``
    is false: then ``env`` alone), the hello byte once the directory is entered."""
    words = []
    if spec.cwd is not None:
        words += ["cd", shlex.quote(spec.cwd), "&&"]
    words += ["printf", _HELLO, "&&", "exec"]
    env = dict(spec.env or {})
    if env or not spec.inherit_env:
        words.append("env")
        if not spec.inherit_env:
            words.append("-i")
        for key, value in env.items():
            if not _ENV_NAME.match(key):
                raise ValueError(f"not an environment variable name: {key!r}")
            words.append(shlex.quote(f"{key}={value}"))
    if "=" in spec.argv[0] and words[-1] != "exec":
        raise ValueError(f"env would take {spec.argv[0]!r} for a variable")
    words += [shlex.quote(arg) for arg in spec.argv]
    return " ".join(words)


class _SshWatch(_StdioWatch):
    """A child's ssh process: the first stdout byte is the hello, swallowed; an exit or
    an end of output before it is held back from the listener (the spawn fails instead);
    stderr is read always, handed on as the spec's ``stderr`` mode says."""

    def __init__(self, listener: TransportListener, stderr: str) -> None:
        super().__init__(listener)
        self.started: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.message = bytearray()
        self._stderr_mode = stderr
        self._early_exit = False
        self._early_eof = False
        self._stderr_eof = False
        self._stderr_grace: asyncio.TimerHandle | None = None

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd != 1:
            self._stderr(data)
            return
        if not self.started.done():
            self.started.set_result(True)
            data = data[1:]
        if data:
            self.listener.data_received(data)
        if self._early_exit:  # the worker started and ended before the exit was read
            self._early_exit = False
            super().process_exited()

    def _stderr(self, data: bytes) -> None:
        if not self.started.done():
            del self.message[: max(0, len(self.message) + len(data) - _MESSAGE_LIMIT)]
            self.message += data[-_MESSAGE_LIMIT:]
        if self._stderr_mode == "inherit":  # what a local child's stderr would do
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.buffer.write(data)
                sys.stderr.flush()
        elif self._stderr_mode != "discard":
            self.listener.stderr_received(data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 2:
            self._stderr_eof = True
        elif fd == 1 and not self.started.done():
            self._early_eof = True
        else:
            super().pipe_connection_lost(fd, exc)
            return
        self._settle()

    def process_exited(self) -> None:
        if not self.started.done():
            self._early_exit = True
            self._settle()
            return
        super().process_exited()

    def _settle(self) -> None:
        """Ended before the hello: once ssh's message is read to its end (its stderr
        may be read after its exit), or after ``STDERR_GRACE_S`` without."""
        if self.started.done() or not (self._early_exit and self._early_eof):
            return
        if self._stderr_eof:
            self._fail()
        elif self._stderr_grace is None:
            self._stderr_grace = asyncio.get_running_loop().call_later(STDERR_GRACE_S, self._fail)

    def _fail(self) -> None:
        if self._stderr_grace is not None:
            self._stderr_grace.cancel()
        if not self.started.done():
            self.started.set_result(False)


class SshLauncher:
    """Starts children on other hosts; owns the master's private directory of control
    sockets (one shared connection per host) and closes them with :meth:`close`."""

    def __init__(self) -> None:
        self._dir: str | None = None
        self._hosts: list[SshHost] = []

    def _control_dir(self) -> str:
        if self._dir is None:
            # Short and private (0700): a socket path is limited to about 100 bytes.
            self._dir = tempfile.mkdtemp(prefix="peepsy-ssh-", dir="/tmp")
        return self._dir

    def argv(self, spec: SpawnSpec, host: SshHost) -> list[str]:
        """The local command that runs ``spec`` on ``host``."""
        options = ssh_options(host, self._control_dir())
        return [*host.ssh, "-T", *options, "--", host.destination, remote_command(spec)]

    async def spawn(
        self, spec: SpawnSpec, host: SshHost, listener: TransportListener
    ) -> ChildTransport:
        """Start ``spec``'s command on ``host`` and wait until it runs there (the hello):
        :class:`~peepsy.PeepsySshError` when ssh cannot get it there, PeepsyProcessError
        when the remote shell cannot start it (no such directory, ...)."""
        argv = self.argv(spec, host)
        if host.control_persist and host not in self._hosts:
            self._hosts.append(host)
        loop = asyncio.get_running_loop()
        watch = _SshWatch(listener, spec.stderr)
        proc, _ = await loop.subprocess_exec(
            lambda: watch,
            *argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,  # read always: ssh's message if it cannot connect
            start_new_session=True,
        )
        transport = ProcessTransport(loop, proc, watch)
        watch.transport = transport
        try:
            started = await asyncio.wait_for(
                asyncio.shield(watch.started), 2 * host.connect_timeout / 1000
            )
        except TimeoutError:
            transport.kill()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(watch.started), _EXIT_TIMEOUT_S)
            proc.close()
            # A shared connection that hangs would hang the next child too.
            await self._exit_control(host)
            raise PeepsySshError(
                f"{host.destination}: no worker running after {2 * host.connect_timeout} ms",
                host=host.destination,
                ssh_message=watch.message.decode(errors="replace").strip(),
            ) from None
        if started:
            log.debug("spawned %s on %s (pid %s)", spec.argv, host.destination, proc.get_pid())
            return transport
        proc.close()
        code = proc.get_returncode()
        message = watch.message.decode(errors="replace").strip()
        if code == 255:
            raise PeepsySshError(
                f"cannot reach {host.destination}: {message or 'ssh exited with 255'}",
                host=host.destination,
                ssh_message=message,
            )
        raise PeepsyProcessError(
            f"the command did not start on {host.destination} (code {code}): {message}",
            returncode=code,
        )

    async def _exit_control(self, host: SshHost) -> None:
        """Tell ``host``'s shared connection, if any, to end."""
        if not host.control_persist or self._dir is None:
            return
        argv = [*host.ssh, *ssh_options(host, self._dir), "-O", "exit", "--", host.destination]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError:  # pragma: no cover - the client ran a moment ago
            return
        try:
            await asyncio.wait_for(proc.wait(), _EXIT_TIMEOUT_S)
        except TimeoutError:  # pragma: no cover - a local socket answers at once
            proc.kill()
            await proc.wait()

    async def close(self) -> None:
        """End the shared connections and remove the control directory."""
        hosts, self._hosts = self._hosts, []
        await asyncio.gather(*(self._exit_control(host) for host in hosts))
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

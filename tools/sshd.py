"""A throwaway OpenSSH server on the loopback interface, for tests and benchmarks.

    with Sshd(tmp_path) as sshd:
        await master.spawn_child("w", [sys.executable, "worker.py"], host=sshd.host)

It runs ``/usr/sbin/sshd -D -e`` on 127.0.0.1 on a free port with a fresh ed25519 host
key and a fresh user key authorized for the current user, and gives an
:class:`~peepsy.SshHost` that uses that key and a known_hosts file holding that host key
(host key checking stays on). Nothing outside the directory it is given is touched but
``/run/sshd`` (sshd's privilege separation directory), created when missing.

Run as a script it serves until Ctrl-C and prints the ``ssh`` command that reaches it.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Final

from peepsy.transport import SshHost

SSHD: Final = Path("/usr/sbin/sshd")
#: How long sshd may take to accept connections (it reads its keys, then listens).
START_LIMIT_S: Final = 15.0


def available() -> bool:
    """Whether this machine has an OpenSSH server to run."""
    return SSHD.exists() and os.access(SSHD, os.X_OK)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _keygen(path: Path, comment: str) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )


class Sshd:
    """One sshd, started on enter (or :meth:`start`) and stopped on exit (:meth:`stop`)."""

    def __init__(self, directory: Path | str, *, control_persist: int = 60) -> None:
        self.dir = Path(directory)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.dir / "sshd.log"
        self._control_persist = control_persist

    @property
    def host(self) -> SshHost:
        """An SshHost that reaches this server as the current user, host key checked."""
        return self.host_with()

    def host_with(self, **changes: object) -> SshHost:
        """:attr:`host` with some fields changed (``control_persist=0``, ...)."""
        fields: dict[str, object] = {
            "destination": f"{getpass.getuser()}@127.0.0.1",
            "port": self.port,
            "identity_file": str(self.dir / "user_key"),
            "known_hosts_file": str(self.dir / "known_hosts"),
            "control_persist": self._control_persist,
            "connect_timeout": 5000,
        }
        fields.update(changes)
        return SshHost(**fields)  # type: ignore[arg-type]

    def ssh_argv(self) -> list[str]:
        """A plain ``ssh`` command line (no connection sharing) up to the destination."""
        host = self.host
        return [
            "ssh",
            "-T",
            "-o",
            "BatchMode=yes",
            "-p",
            str(self.port),
            "-i",
            str(host.identity_file),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            f"UserKnownHostsFile={host.known_hosts_file}",
            "-o",
            "StrictHostKeyChecking=yes",
            host.destination,
        ]

    def start(self) -> Sshd:
        self.dir.mkdir(parents=True, exist_ok=True)
        host_key = self.dir / "host_key"
        user_key = self.dir / "user_key"
        for key, comment in ((host_key, "peepsy-test-host"), (user_key, "peepsy-test-user")):
            if not key.exists():
                _keygen(key, comment)
        (self.dir / "authorized_keys").write_text((self.dir / "user_key.pub").read_text())
        self.port = _free_port()
        host_pub = (self.dir / "host_key.pub").read_text().split()
        (self.dir / "known_hosts").write_text(
            f"[127.0.0.1]:{self.port} {host_pub[0]} {host_pub[1]}\n"
        )
        config = self.dir / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {host_key}",
                    f"AuthorizedKeysFile {self.dir / 'authorized_keys'}",
                    f"PidFile {self.dir / 'sshd.pid'}",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PubkeyAuthentication yes",
                    "PermitRootLogin prohibit-password",
                    "StrictModes no",
                    "UsePAM no",
                    "X11Forwarding no",
                    "PrintMotd no",
                    "LogLevel ERROR",
                    # Many children, started at once, each a session of one connection.
                    "MaxSessions 100",
                    "MaxStartups 100:30:200",
                    "",
                ]
            )
        )
        # Privilege separation needs this directory (a package install makes it at boot).
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(SSHD), "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        self._wait_listening()
        return self

    def _wait_listening(self) -> None:
        end = time.monotonic() + START_LIMIT_S
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited ({self.proc.returncode}): {self.log.read_text()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as conn,
            ):
                conn.settimeout(1.0)
                if conn.recv(4).startswith(b"SSH-"):  # the banner: sshd is serving
                    return
            if time.monotonic() > end:
                self.stop()
                raise RuntimeError(f"sshd did not listen within {START_LIMIT_S} s")
            time.sleep(0.05)  # polling a port, bounded above: not a synchronization sleep

    def stop(self) -> None:
        """Stop the listener and every connection it serves."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:  # pragma: no cover - sshd ends on SIGTERM
                proc.kill()
                proc.wait()
        # The per-connection processes outlive the listener: end them too.
        for pid in connection_pids(proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def __enter__(self) -> Sshd:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def parent(pid: int) -> int | None:
    """``pid``'s parent process, or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def descendants(pid: int) -> list[int]:
    """Every live process under ``pid`` (children first), read from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            up = parent(int(entry.name))
            if up is not None:
                parents[int(entry.name)] = up
    found: list[int] = []
    frontier = [pid]
    while frontier:
        children = [p for p, up in parents.items() if up in frontier]
        found += children
        frontier = children
    return found


def connection_pids(listener: int) -> list[int]:
    """The sshd processes serving connections for the listener ``listener``: its
    children (sshd re-executes itself per connection) and theirs that are sshd too."""
    return [pid for pid in descendants(listener) if _is_sshd(pid)]


def _is_sshd(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"sshd")
    except OSError:
        return False


def main() -> None:  # pragma: no cover - a manual tool
    import tempfile  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="peepsy-sshd-") as tmp, Sshd(tmp) as sshd:
        print(" ".join(sshd.ssh_argv()), flush=True)
        print(sshd.host, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    sys.exit(0)


if __name__ == "__main__":  # pragma: no cover
    main()

"""SshHost, the ssh command line, and the launcher's edges, without an sshd: a stand-in
``ssh`` (fake_ssh.py) runs the remote command with ``sh -c`` or fails on demand."""

from __future__ import annotations

import asyncio
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest

import peepsy.transport._ssh as ssh_module
from peepsy import Master, PeepsyProcessError, PeepsySshError, SshHost
from peepsy.transport import SpawnSpec, SshLauncher
from peepsy.transport._ssh import _SshWatch, as_host, remote_command, ssh_options
from tests.process._support import (
    ROOT,
    Events,
    eventually,
    live_children,
    peepsy_worker,
    pid_running,
    run,
)
from tests.ssh._support import kill

FAKE = str(Path(__file__).resolve().parent / "fake_ssh.py")
ENV = {"PYTHONPATH": str(ROOT)}


def fake(destination: str = "local", *, down_if: Path | None = None, **kw: Any) -> SshHost:
    flag = ["--down-if", str(down_if)] if down_if is not None else []
    return SshHost(destination, ssh=(sys.executable, FAKE, *flag), **kw)


# --- SshHost and the command line ---------------------------------------------------------


@pytest.mark.parametrize(
    "kw",
    [
        {"destination": ""},
        {"destination": "-oProxyCommand=evil"},
        {"destination": "two words"},
        {"destination": "h", "port": 0},
        {"destination": "h", "port": 65536},
        {"destination": "h", "port": True},
        {"destination": "h", "port": "22"},
        {"destination": "h", "connect_timeout": 0},
        {"destination": "h", "connect_timeout": 1.5},
        {"destination": "h", "control_persist": -1},
        {"destination": "h", "options": {"Bad Key": "x"}},
        {"destination": "h", "options": {"ProxyCommand": "a\nb"}},
        {"destination": "h", "ssh": ()},
        {"destination": "h", "ssh": ("",)},
    ],
)
def test_a_bad_host_is_refused_when_made(kw: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each message names its field
        SshHost(**kw)


def test_a_host_is_frozen_and_compares_by_value() -> None:
    options = {"Compression": "yes"}
    host = SshHost("h", options=options, ssh=["ssh", "-v"])
    options["Compression"] = "no"  # the caller's dict is copied
    assert host.options == {"Compression": "yes"}
    assert host.ssh == ("ssh", "-v")
    with pytest.raises(TypeError):
        host.options["x"] = "y"  # type: ignore[index]
    assert host == SshHost("h", options={"Compression": "yes"}, ssh=("ssh", "-v"))


def test_spawn_child_s_host_argument() -> None:
    assert as_host(None, "stdio") is None
    assert as_host("box", "stdio") == SshHost("box")
    assert as_host(SshHost("box", port=2222), "stdio") == SshHost("box", port=2222)
    with pytest.raises(TypeError, match="str or an SshHost"):
        as_host(42, "stdio")  # type: ignore[arg-type]

    async def go() -> None:
        async with Master() as master:
            with pytest.raises(ValueError, match="Node's IPC channel does not cross ssh"):
                await master.spawn_child("w", ["node", "w.js"], host="box", transport="node-ipc")

    run(go())


def test_the_options_batch_mode_first_and_the_user_s_before_the_defaults() -> None:
    host = SshHost(
        "box",
        port=2222,
        identity_file="/k",
        known_hosts_file="/kh",
        options={"ServerAliveInterval": "1"},
        connect_timeout=1500,
    )
    argv = ssh_options(host, "/ctl")
    pairs = [argv[i + 1] for i, word in enumerate(argv) if word == "-o"]
    assert pairs[0] == "BatchMode=yes"
    # ssh keeps the first value of an option: the user's wins over peepsy's default
    assert pairs.index("ServerAliveInterval=1") < pairs.index("ServerAliveInterval=5")
    assert "ConnectTimeout=2" in pairs  # ms rounded up to whole seconds
    assert {"ControlMaster=auto", "ControlPath=/ctl/%C", "ControlPersist=60"} <= set(pairs)
    assert {"UserKnownHostsFile=/kh", "StrictHostKeyChecking=yes", "IdentitiesOnly=yes"} <= set(
        pairs
    )
    assert argv[argv.index("-p") + 1] == "2222"
    assert argv[argv.index("-i") + 1] == "/k"
    unshared = ssh_options(SshHost("box", control_persist=0), "/ctl")
    assert "ControlMaster=no" in unshared
    assert "ControlPath=none" in unshared
    assert "-p" not in unshared


def test_the_remote_command_quotes_every_word() -> None:
    spec = SpawnSpec(
        argv=["/usr/bin/python3", "w.py", "it's", "$HOME"],
        env={"A": "x y", "B": "'"},
        cwd="/srv/my dir",
    )
    command = remote_command(spec)
    assert shlex.split(command) == [
        "cd",
        "/srv/my dir",
        "&&",
        "printf",
        ".",
        "&&",
        "exec",
        "env",
        "A=x y",
        "B='",
        "/usr/bin/python3",
        "w.py",
        "it's",
        "$HOME",
    ]
    alone = remote_command(SpawnSpec(argv=["w"], env={"A": "1"}, inherit_env=False))
    assert shlex.split(alone) == ["printf", ".", "&&", "exec", "env", "-i", "A=1", "w"]
    assert remote_command(SpawnSpec(argv=["a=b"])) == "printf . && exec a=b"
    with pytest.raises(ValueError, match="not an environment variable name"):
        remote_command(SpawnSpec(argv=["w"], env={"A B": "1"}))
    with pytest.raises(ValueError, match="env would take"):
        remote_command(SpawnSpec(argv=["a=b"], env={"A": "1"}))


# --- the launcher, with a stand-in ssh ------------------------------------------------------


@pytest.mark.parametrize("stderr", ["inherit", "log", "capture", "discard"])
def test_a_child_through_the_stand_in(stderr: Any, capfd: pytest.CaptureFixture[str]) -> None:
    async def go() -> None:
        async with Master() as master:
            await master.spawn_child(
                "w", peepsy_worker(), host=fake(), env=ENV, inherit_env=False, stderr=stderr
            )
            assert (await master.request("stderr", "w", "to stderr")).data == "to stderr"
            names = (await master.request("env", "w", "PYTHONPATH")).data["names"]
            assert "PYTHONPATH" in names
            assert "PATH" not in names  # inherit_env=False: env alone (Python may add LC_*)
            if stderr in ("log", "capture"):
                await eventually(lambda: "to stderr" in master.get_stderr("w"), "stderr kept")

    run(go())
    assert ("to stderr" in capfd.readouterr().err) is (stderr == "inherit")


@pytest.mark.parametrize(
    ("destination", "message"),
    [("refuse", "Connection refused"), ("mute", "")],
)
def test_ssh_exiting_255_first_is_a_ssh_error(destination: str, message: str) -> None:
    async def go() -> None:
        async with Master() as master:
            with pytest.raises(PeepsySshError) as caught:
                await master.spawn_child("w", ["w"], host=fake(destination), stderr="discard")
            assert caught.value.host == destination
            assert message in caught.value.ssh_message
            assert caught.value.returncode == 255

    run(go())


@pytest.mark.parametrize("shared", [60, 0])
def test_a_host_that_never_runs_the_worker_is_given_up(shared: int) -> None:
    host = fake("hang", connect_timeout=100, control_persist=shared)

    async def go() -> None:
        async with Master() as master:
            with pytest.raises(PeepsySshError, match="no worker running after 200 ms"):
                await master.spawn_child("w", ["w"], host=host)
            assert "w" not in master.targets

    run(go())


def test_a_spawn_given_up_while_connecting_leaves_no_ssh() -> None:
    async def go() -> None:
        theirs = set(live_children())  # children of the session's, not this test's
        async with Master() as master:
            spawning = asyncio.ensure_future(
                master.spawn_child("w", ["w"], host=fake("hang"), stderr="discard")
            )
            await eventually(lambda: bool(live_children(excluding=theirs)), "ssh started")
            (ssh,) = live_children(excluding=theirs)
            spawning.cancel()
            with pytest.raises(asyncio.CancelledError):
                await spawning
            await eventually(lambda: not pid_running(ssh), "its ssh killed")

    run(go())


def test_a_failed_restart_is_retried_with_backoff_then_succeeds(tmp_path: Path) -> None:
    down = tmp_path / "down"

    async def go() -> None:
        async with Master() as master:
            events = Events(master)
            host = fake(down_if=down)
            stats = await master.spawn_child("w", peepsy_worker(), host=host, env=ENV)
            down.touch()
            assert stats.pid is not None
            kill(stats.pid)
            await eventually(lambda: len(events.auto_restart) == 2, "a failed restart")
            assert isinstance(events.error[-1].error, PeepsySshError)
            assert master.get_process_stats("w").status == "restarting"
            down.unlink()  # the host is back: the next attempt, after the backoff, works
            await eventually(lambda: events.respawned("w"), "restarted")
            assert (await master.request("echo", "w", 1)).data == 1

    run(go())


def test_shutdown_during_the_backoff_ends_it(tmp_path: Path) -> None:
    down = tmp_path / "down"

    async def go() -> None:
        master: Master[Any, Any] = Master(restart_window=60_000)
        events = Events(master)
        stats = await master.spawn_child("w", peepsy_worker(), host=fake(down_if=down), env=ENV)
        down.touch()
        assert stats.pid is not None
        kill(stats.pid)
        await eventually(lambda: len(events.auto_restart) == 2, "in its backoff")
        await master.graceful_shutdown()
        assert not events.respawned("w")

    run(go())


def test_the_command_failing_there_is_a_process_error() -> None:
    async def go() -> None:
        async with Master() as master:
            with pytest.raises(PeepsyProcessError) as caught:
                await master.spawn_child(
                    "w", ["w"], host=fake(), cwd="/no/such/dir", stderr="discard"
                )
            assert not isinstance(caught.value, PeepsySshError)
            assert caught.value.returncode not in (0, 255)

    run(go())


def test_an_exit_read_before_the_hello_is_held_back_then_told() -> None:
    """The loop may see the ssh process exit before the last bytes it wrote (a worker
    that started and ended at once): the exit waits for them, then is reported."""

    class Listener:
        def __init__(self) -> None:
            self.seen: list[Any] = []

        def data_received(self, data: bytes) -> None:
            self.seen.append(data)

        def stderr_received(self, data: bytes) -> None:
            self.seen.append(("stderr", data))

        def eof_received(self) -> None:
            self.seen.append("eof")

        def channel_broken(self, reason: str) -> None:  # pragma: no cover - not here
            self.seen.append(reason)

        def process_exited(self, returncode: int | None) -> None:
            self.seen.append(("exit", returncode))

    async def go() -> None:
        listener = Listener()
        watch = _SshWatch(listener, "log")
        watch.process_exited()
        assert not watch.started.done()
        watch.pipe_data_received(2, b"note\n")
        watch.pipe_data_received(1, b".line\n")
        assert watch.started.result() is True
        watch.pipe_connection_lost(1, None)
        await asyncio.wait_for(watch.done, 5)
        assert listener.seen == [("stderr", b"note\n"), b"line\n", "eof", ("exit", None)]

    run(go())


@pytest.mark.parametrize("closes", [True, False])
def test_ssh_s_message_read_after_its_exit_is_kept(
    closes: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ssh's stderr may be read after its exit and its stdout's end: the spawn waits
    for its end (or a grace, when something holds it open) before it fails."""
    monkeypatch.setattr(ssh_module, "STDERR_GRACE_S", 0.01)

    class Listener:
        def stderr_received(self, data: bytes) -> None:
            pass

    async def go() -> None:
        watch = _SshWatch(Listener(), "log")  # type: ignore[arg-type]
        watch.process_exited()
        watch.pipe_connection_lost(1, None)
        assert not watch.started.done()
        watch.pipe_data_received(2, b"ssh: Connection refused\n")
        if closes:
            watch.pipe_connection_lost(2, None)
        assert await asyncio.wait_for(watch.started, 5) is False
        assert bytes(watch.message) == b"ssh: Connection refused\n"

    run(go())


def test_closing_a_launcher_that_started_nothing() -> None:
    run(SshLauncher().close())

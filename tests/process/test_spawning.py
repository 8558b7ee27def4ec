"""Spawning real children: any command that speaks the protocol, its environment, working
directory and stderr, and commands that cannot start."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import warnings
from pathlib import Path

import pytest

from peepsy import Master, PeepsyProcessError, RemoteError
from tests.process._support import (
    PYTHON,
    ROOT,
    WORKERS,
    Events,
    eventually,
    peepsy_worker,
    raw_worker,
    run,
)


def test_python_script_worker_answers() -> None:
    async def main() -> None:
        async with Master() as m:
            stats = await m.spawn_child("py", peepsy_worker())
            assert stats.pid is not None
            reply = await m.request("add", "py", {"a": 2, "b": 40})
            assert (reply.status, reply.data, reply.target, reply.action) == (200, 42, "py", "add")
            info = await m.request("info", "py")
            assert info.data["pid"] == stats.pid
            # The child announced itself (READY) with the actions it serves.
            actions = m.get_process_stats("py").actions
            assert actions is not None
            assert {"add", "echo", "info"} <= set(actions)

    run(main())


def test_python_m_peepsy_child_module_attr() -> None:
    async def main() -> None:
        async with Master() as m:
            command = [PYTHON, "-m", "peepsy.child", "tests.process.workers.peepsy_worker:child"]
            await m.spawn_child("mod", command, "concurrent", cwd=str(ROOT))
            reply = await m.request("add", "mod", {"a": 1, "b": 2})
            assert reply.data == 3
            info = await m.request("info", "mod")
            assert info.data["mode"] == "concurrent"  # adopted from INIT
            with pytest.raises(RemoteError) as caught:
                await m.request("no-such-action", "mod")
            assert caught.value.status == 404
            assert caught.value.message == "No handler registered for action: no-such-action"

    run(main())


def test_shell_style_command_string() -> None:
    async def main() -> None:
        async with Master() as m:
            await m.spawn_child("str", f"{PYTHON} {WORKERS / 'raw_worker.py'} --beats -1")
            reply = await m.request("echo", "str", {"x": [1, 2]})
            assert reply.data == {"x": [1, 2]}

    run(main())


def test_node_worker_with_builtins_only() -> None:
    async def main() -> None:
        async with Master() as m:
            stats = await m.spawn_child("node", ["node", str(WORKERS / "node_worker.js")])
            reply = await m.request("add", "node", {"a": 20, "b": 22})
            assert reply.data == {"sum": 42, "runtime": "node", "pid": stats.pid}
            with pytest.raises(RemoteError) as caught:
                await m.request("nope", "node")
            assert caught.value.status == 404
            code = await m.shutdown_child("node")
            assert code == 0

    run(main())


def test_node_worker_with_legacy_request_shape() -> None:
    async def main() -> None:
        async with Master(request_shape="legacy") as m:
            await m.spawn_child("node", ["node", str(WORKERS / "node_worker.js")])
            reply = await m.request("add", "node", {"a": 1, "b": 1})
            assert reply.data["sum"] == 2

    run(main())


def test_perl_worker_with_json_pp() -> None:
    async def main() -> None:
        async with Master() as m:
            stats = await m.spawn_child("perl", ["perl", str(WORKERS / "perl_worker.pl")])
            reply = await m.request("add", "perl", {"a": 5, "b": 6})
            assert reply.data == {"sum": 11, "runtime": "perl", "pid": stats.pid}
            with pytest.raises(RemoteError) as caught:
                await m.request("nope", "perl")
            assert caught.value.status == 404
            assert await m.shutdown_child("perl") == 0

    run(main())


def test_env_extends_the_masters_environment() -> None:
    async def main() -> None:
        async with Master() as m:
            await m.spawn_child("w", peepsy_worker(), env={"PEEPSY_PROBE": "from-the-test"})
            probe = await m.request("env", "w", "PEEPSY_PROBE")
            assert probe.data["value"] == "from-the-test"
            path = await m.request("env", "w", "PATH")
            assert path.data["value"] == os.environ["PATH"]
            # Another child, spawned without it, does not see it.
            await m.spawn_child("plain", peepsy_worker())
            plain = await m.request("env", "plain", "PEEPSY_PROBE")
            assert plain.data["value"] is None

    run(main())


def test_env_without_inheriting_is_the_whole_environment() -> None:
    async def main() -> None:
        async with Master() as m:
            env = {"PEEPSY_PROBE": "alone"}
            await m.spawn_child("w", peepsy_worker(), env=env, inherit_env=False)
            reply = await m.request("env", "w", "PEEPSY_PROBE")
            assert reply.data["value"] == "alone"
            assert "PATH" not in reply.data["names"]

    run(main())


def test_cwd_is_passed_through(tmp_path: Path) -> None:
    async def main() -> str:
        async with Master() as m:
            await m.spawn_child("w", peepsy_worker(), cwd=str(tmp_path))
            reply = await m.request("info", "w")
            return str(reply.data["cwd"])

    assert Path(run(main())).resolve() == tmp_path.resolve()


def test_stderr_capture() -> None:
    async def main() -> None:
        async with Master() as m:
            await m.spawn_child("cap", peepsy_worker(), stderr="capture")
            await m.request("stderr", "cap", "first captured line")
            await m.request("stderr", "cap", "second captured line")
            await eventually(
                lambda: "second captured line" in m.get_stderr("cap"), "stderr captured"
            )
            lines = m.get_stderr("cap")
            assert lines.index("first captured line") < lines.index("second captured line")

    run(main())


def test_stderr_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="peepsy")

    async def main() -> None:
        async with Master() as m:
            await m.spawn_child("logged", peepsy_worker(), stderr="log")
            await m.request("stderr", "logged", "a line for the log")
            await eventually(
                lambda: any(r.getMessage() == "a line for the log" for r in caplog.records),
                "stderr line logged",
            )

    run(main())
    [record] = [r for r in caplog.records if r.getMessage() == "a line for the log"]
    assert record.name == "peepsy.stderr.logged"
    assert record.levelno == logging.INFO


def test_stderr_inherit(capfd: pytest.CaptureFixture[str]) -> None:
    async def main() -> None:
        async with Master() as m:
            await m.spawn_child("inh", peepsy_worker(), stderr="inherit")
            await m.request("stderr", "inh", "inherited-marker-7f3a")
            assert m.get_stderr("inh") == []  # not kept: it went straight to our fd 2

    run(main())
    assert "inherited-marker-7f3a" in capfd.readouterr().err


def test_stderr_discard(capfd: pytest.CaptureFixture[str]) -> None:
    async def main() -> None:
        async with Master() as m:
            await m.spawn_child("dis", peepsy_worker(), stderr="discard")
            reply = await m.request("stderr", "dis", "discarded-marker-91c2")
            assert reply.data == "discarded-marker-91c2"
            assert m.get_stderr("dis") == []

    run(main())
    assert "discarded-marker-91c2" not in capfd.readouterr().err


def test_missing_command_raises_process_error() -> None:
    async def main() -> None:
        async with Master() as m:
            events = Events(m)
            with pytest.raises(PeepsyProcessError) as caught:
                await m.spawn_child("ghost", ["/nonexistent/peepsy-worker-binary", "--x"])
            assert caught.value.target == "ghost"
            assert "ghost" not in m.targets
            assert events.spawn == []
            with pytest.raises(PeepsyProcessError):
                await m.spawn_child("ghost", "no-such-command-peepsy-test")
            # The failed name is free again for a child that can start.
            await m.spawn_child("ghost", raw_worker())
            assert (await m.request("echo", "ghost", 1)).data == 1

    run(main())


def test_missing_cwd_raises_process_error(tmp_path: Path) -> None:
    async def main() -> None:
        async with Master() as m:
            with pytest.raises(PeepsyProcessError):
                await m.spawn_child("w", peepsy_worker(), cwd=str(tmp_path / "missing"))
            assert m.targets == []

    run(main())


def test_transport_closed_after_exit() -> None:
    """A child that has exited leaves nothing unclosed behind (no ResourceWarning)."""

    async def main() -> None:
        async with Master() as m:
            await m.spawn_child("w", raw_worker())
            await m.request("echo", "w", 1)
            assert await m.shutdown_child("w") == 0

    asyncio.run(main())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    unclosed = [w for w in caught if "unclosed transport" in str(w.message)]
    assert unclosed == [], [str(w.message) for w in unclosed]

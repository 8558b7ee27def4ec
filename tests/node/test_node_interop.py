"""Interoperability with Node peepsy: Python master <-> Node worker, Node master <-> Python
child, over Node's own IPC channel. The Node programs use only Node's built-ins and behave
on the wire as Node peepsy 1.0.1 does (shared/reference/node-peepsy-wire-facts.md); the
worker is the model tests/node/peepsy_1_0_1_worker.js, whose conformance run is in
test_expected_failures.py."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from peepsy import (
    AutoRestartEvent,
    HeartbeatMissedEvent,
    Master,
    PeepsyProcessError,
    RemoteError,
    SpawnEvent,
)

HERE = Path(__file__).resolve().parent
NODE = shutil.which("node")
WORKER = str(HERE / "peepsy_1_0_1_worker.js")
T = TypeVar("T")

pytestmark = pytest.mark.skipif(NODE is None, reason="needs Node.js")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def spawn_node(master: Master, target: str = "n1", **env: str) -> None:
    assert NODE is not None
    await master.spawn_child(
        target, [NODE, WORKER], transport="node-ipc", env=env, stderr="capture"
    )


async def written(master: Master, target: str = "n1") -> None:
    """Lets a request task just created run its first step, in which the master writes a
    request to a lone child (no timed wait), and checks that it did."""
    await asyncio.sleep(0)
    assert master.get_process_stats(target).requests_active == 1


def test_python_master_serves_requests_with_an_unmodified_node_worker() -> None:
    async def main() -> None:
        async with Master(timeout=5000) as master:
            calls: list[Any] = []

            @master.handler("getMasterInfo")
            def info(data: Any) -> dict[str, Any]:
                calls.append(data)
                return {"master": "python", "got": data}

            await spawn_node(master, PEEPSY_LOG_LEVEL="debug")
            reply = await master.request("echo", "n1", {"a": [1, "é"], "n": None})
            assert reply.data == {"a": [1, "é"], "n": None}
            with pytest.raises(RemoteError) as nope:
                await master.request("nope", "n1")
            assert nope.value.status == 404
            assert nope.value.message == "No handler registered for action: nope"
            assert str(nope.value) == (
                "No handler registered for action: nope (action 'nope' on 'n1', status 404)"
            )
            assert nope.value.payload is None  # Node children send only the error string
            with pytest.raises(RemoteError) as boom:
                await master.request("fail", "n1", "bad input")
            assert (boom.value.status, boom.value.message) == (500, "bad input")
            assert str(boom.value) == "bad input (action 'fail' on 'n1', status 500)"
            # Bidirectional: the worker's own request reaches the master's handler.
            relayed = await master.request(
                "callMaster", "n1", {"action": "getMasterInfo", "data": 7}
            )
            assert relayed.data == {"master": "python", "got": 7}
            assert calls == [7]
            # Its stdout is free for logs: INIT was logged there (at debug level), not parsed.
            stats = master.get_process_stats("n1")
            assert stats.rejected_lines == 0
            logs = master.get_stderr("n1")
            assert any("Child process initialized" in line for line in logs), logs

    run(main())


@pytest.mark.parametrize("shape", ["unified", "legacy"])
def test_both_request_shapes_reach_a_node_worker(shape: str) -> None:
    async def main() -> None:
        async with Master(request_shape=shape) as master:  # type: ignore[arg-type]
            await spawn_node(master)
            assert (await master.request("echo", "n1", shape)).data == shape

    run(main())


def test_a_node_worker_that_never_heartbeats_is_not_killed_for_it() -> None:
    """HB-2: an unmodified 1.0.1 child promised no heartbeat. The Node master kills it
    every ~6 s (defect 9); ours serves it for as long as it lives."""

    async def main() -> None:
        async with Master(heartbeat_interval=100, heartbeat_miss_threshold=2) as master:
            missed: list[HeartbeatMissedEvent] = []
            master.on("heartbeat-missed", missed.append)
            await spawn_node(master)
            pid = master.get_process_stats("n1").pid
            await asyncio.sleep(1.5)  # 15 heartbeat windows
            assert missed == []
            stats = master.get_process_stats("n1")
            assert (stats.status, stats.pid, stats.restarts) == ("running", pid, 0)
            assert stats.last_heartbeat_at is None
            assert (await master.request("echo", "n1", 1)).data == 1

    run(main())


def test_heartbeats_of_a_node_worker_feed_the_masters_health_checks() -> None:
    async def main() -> None:
        async with Master(heartbeat_interval=150, heartbeat_miss_threshold=3) as master:
            missed: list[HeartbeatMissedEvent] = []
            restarts: list[AutoRestartEvent] = []
            master.on("heartbeat-missed", missed.append)
            master.on("auto-restart", restarts.append)
            # A worker that rebinds process.send heartbeats; health then uses them.
            await spawn_node(master, REBIND_SEND="1", HEARTBEAT_MS="100")
            await asyncio.sleep(0.8)
            stats = master.get_process_stats("n1")
            assert stats.last_heartbeat_at is not None
            assert stats.status == "running"
            assert missed == []

    run(main())


def test_node_internal_messages_are_ignored_silently() -> None:
    async def main() -> None:
        async with Master() as master:
            errors: list[Any] = []
            master.on("error", errors.append)
            await spawn_node(master, SEND_NODE_INTERNAL="1")
            assert (await master.request("echo", "n1", "after")).data == "after"
            assert master.get_process_stats("n1").rejected_lines == 0
            assert errors == []

    run(main())


def test_shutdown_lets_a_concurrent_node_worker_finish_and_exit_0() -> None:
    """A concurrent 1.0.1 child counts its running requests and waits for them (up to
    10 s) before it disconnects."""

    async def main() -> None:
        async with Master() as master:
            await spawn_node(master, MODE="concurrent")
            # The channel is ordered: the worker starts the sleep before it reads SHUTDOWN.
            slow = asyncio.create_task(master.request("sleep", "n1", 400))
            await written(master)
            code = await master.shutdown_child("n1", timeout=5000)
            assert code == 0
            assert (await slow).data == 400

    run(main())


def test_shutdown_abandons_the_request_a_sequential_node_worker_is_running() -> None:
    """A sequential 1.0.1 child does not count the request it runs as in progress: on
    SHUTDOWN it disconnects at once, and the request is never answered. Our master fails
    it when the channel closes, not at its timeout."""

    async def main() -> None:
        async with Master(timeout=30_000) as master:
            await spawn_node(master)
            slow = asyncio.create_task(master.request("sleep", "n1", 1500))
            await written(master)
            started = time.monotonic()
            code = await master.shutdown_child("n1", timeout=5000)
            assert code == 0
            with pytest.raises(PeepsyProcessError) as lost:
                await slow
            assert "before answering 'sleep'" in str(lost.value)
            assert time.monotonic() - started < 10

    run(main())


def test_a_killed_node_worker_fails_in_flight_requests_at_once_and_comes_back() -> None:
    async def main() -> None:
        async with Master(timeout=30_000) as master:
            respawned = asyncio.Event()

            def on_spawn(event: SpawnEvent) -> None:
                if event.restart:
                    respawned.set()

            master.on("spawn", on_spawn)
            await spawn_node(master)
            first = master.get_process_stats("n1").pid
            slow = asyncio.create_task(master.request("sleep", "n1", 20_000))
            await written(master)
            started = time.monotonic()
            assert first is not None
            os.kill(first, signal.SIGKILL)
            with pytest.raises(PeepsyProcessError):
                await slow
            assert time.monotonic() - started < 10
            async with asyncio.timeout(10):
                await respawned.wait()
            assert master.get_process_stats("n1").pid != first
            assert (await master.request("echo", "n1", "back")).data == "back"
            assert master.get_process_stats("n1").restarts == 1

    run(main())


def test_a_node_master_uses_a_python_child_like_a_node_worker() -> None:
    assert NODE is not None
    out = subprocess.run(
        [NODE, str(HERE / "node_master.js"), sys.executable, str(HERE / "python_child.py")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "IDLE_MS": "1500", "PYTHONPATH": str(HERE.parents[1])},
        check=True,
    )
    report = json.loads(out.stdout)
    responses = report["responses"]
    assert responses["node-1"]["data"] == 3  # legacy shape
    assert responses["node-2"]["data"] == 11  # unified shape
    assert responses["node-3"]["status"] == 404
    assert responses["node-3"]["error"] == "No handler registered for action: nope"
    assert (responses["node-4"]["status"], responses["node-4"]["error"]) == (500, "boom")
    assert "stack" not in responses["node-4"]["errorPayload"]
    assert responses["node-5"]["data"]["got"] == {"who": "python"}  # child -> Node master
    assert responses["node-6"]["data"] == 30  # still serving after idling
    [asked] = report["childRequests"]
    assert asked["action"] == "getMasterInfo"
    assert "request" not in asked  # the unified shape
    assert report["heartbeats"] >= 2  # every 500 ms, over ~2 s
    assert report["exit"] == {"code": 0, "signal": None}
    # Its prints were logs on stdout, not on the channel.
    assert "a print inside a handler" in report["stdout"]


@pytest.mark.parametrize("health_ms", [500, 300])
def test_a_default_python_child_survives_a_node_masters_health_check(health_ms: int) -> None:
    """HB-1: a Node master states no heartbeat interval in INIT yet SIGKILLs a child
    silent for its own interval x 3 (1.5 s at 500 ms); a Python child on its IPC channel
    beats often enough for any such master, from its start."""
    assert NODE is not None
    out = subprocess.run(
        [NODE, str(HERE / "node_master.js"), sys.executable, str(HERE / "python_child.py")],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ, "IDLE_MS": "2500", "HEALTH_MS": str(health_ms),
            "CHILD_HEARTBEAT_MS": "default", "PYTHONPATH": str(HERE.parents[1]),
        },
        check=True,
    )  # fmt: skip
    report = json.loads(out.stdout)
    assert "killedForSilenceAt" not in report
    assert report["responses"]["node-6"]["data"] == 30  # served across the idle time
    assert report["exit"] == {"code": 0, "signal": None}


@pytest.mark.parametrize("exec_argv", ["inherited", "clear"])
def test_a_node_master_started_with_node_flags_must_clear_execargv(exec_argv: str) -> None:
    """fork hands the master's Node flags to the child's executable: Python refuses
    --enable-source-maps unless the fork options say execArgv: []."""
    assert NODE is not None
    out = subprocess.run(
        [
            NODE, "--enable-source-maps", str(HERE / "node_master.js"),
            sys.executable, str(HERE / "python_child.py"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ, "IDLE_MS": "0", "EXEC_ARGV": exec_argv,
            "PYTHONPATH": str(HERE.parents[1]),
        },
        check=False,
    )  # fmt: skip
    report = json.loads(out.stdout.splitlines()[0])
    if exec_argv == "clear":
        assert report["responses"]["node-1"]["data"] == 3
        assert report["exit"] == {"code": 0, "signal": None}
    else:
        assert report["responses"] == {}
        assert report["exit"]["code"] == 2  # Python's usage error
        assert "--enable-source-maps" in report["stderr"]


def test_an_idle_node_worker_is_alive_and_serving_after_a_minute(
    idle_node_minute: subprocess.Popen[str] | None,
) -> None:
    """tests/node/idle_minute.py, started with the session (tests/conftest.py): the
    worker idles a minute under a 200 ms heartbeat, then is the same process, answering."""
    assert idle_node_minute is not None  # selected, so started
    out, err = idle_node_minute.communicate(timeout=240)
    assert idle_node_minute.returncode == 0, out + err
    assert out.splitlines() == ["spawned"]


#: A Node worker that answers every REQUEST with the names in its environment.
ENV_WORKER = """
process.on('message', (m) => {
  if (m.type === 'REQUEST') {
    process.send({ type: 'RESPONSE', id: m.id, status: 200, data: Object.keys(process.env) });
  } else if (m.type === 'SHUTDOWN') {
    process.disconnect();
  }
});
"""


@pytest.mark.parametrize(
    ("env", "inherit", "expected"),
    [(None, False, []), ({"PEEPSY_PROBE": "alone"}, False, ["PEEPSY_PROBE"])],
    ids=["no-env", "env-alone"],
)
def test_a_node_ipc_child_that_does_not_inherit_gets_only_its_env(
    env: dict[str, str] | None, inherit: bool, expected: list[str]
) -> None:
    """inherit_env=False means the child's environment is ``env`` alone, none at all
    without it, on Node's IPC channel as on stdin/stdout (Node removes the channel's
    own variables from process.env)."""

    async def main() -> list[str]:
        assert NODE is not None
        async with Master() as master:
            await master.spawn_child(
                "n1", [NODE, "-e", ENV_WORKER], transport="node-ipc", env=env, inherit_env=inherit
            )
            names = (await master.request("names", "n1")).data
            assert isinstance(names, list)
            return sorted(names)

    assert run(main()) == expected

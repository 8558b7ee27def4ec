"""Interoperability with Node peepsy: Python master <-> Node worker, Node master <-> Python
child, over Node's own IPC channel. The Node programs use only Node's built-ins and behave
on the wire as Node peepsy 1.0.1 does (shared/reference/node-peepsy-wire-facts.md)."""

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

from peepsy import AutoRestartEvent, HeartbeatMissedEvent, Master, PeepsyProcessError, RemoteError

HERE = Path(__file__).resolve().parent
NODE = shutil.which("node")
WORKER = str(HERE / "node_worker.js")
T = TypeVar("T")

pytestmark = pytest.mark.skipif(NODE is None, reason="needs Node.js")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def spawn_node(master: Master, target: str = "n1", **env: str) -> None:
    assert NODE is not None
    await master.spawn_child(
        target, [NODE, WORKER], transport="node-ipc", env=env, stderr="capture"
    )


def test_python_master_serves_requests_with_an_unmodified_node_worker() -> None:
    async def main() -> None:
        async with Master(timeout=5000) as master:
            calls: list[Any] = []

            @master.handler("getMasterInfo")
            def info(data: Any) -> dict[str, Any]:
                calls.append(data)
                return {"master": "python", "got": data}

            await spawn_node(master)
            reply = await master.request("echo", "n1", {"a": [1, "é"], "n": None})
            assert reply.data == {"a": [1, "é"], "n": None}
            with pytest.raises(RemoteError) as nope:
                await master.request("nope", "n1")
            assert nope.value.status == 404
            assert str(nope.value) == "No handler registered for action: nope"
            assert nope.value.payload is None  # Node children send only the error string
            with pytest.raises(RemoteError) as boom:
                await master.request("fail", "n1", "bad input")
            assert (boom.value.status, str(boom.value)) == (500, "bad input")
            # Bidirectional: the worker's own request reaches the master's handler.
            relayed = await master.request(
                "callMaster", "n1", {"action": "getMasterInfo", "data": 7}
            )
            assert relayed.data == {"master": "python", "got": 7}
            assert calls == [7]
            # Its stdout is free for logs: INIT was logged there, not parsed.
            stats = master.get_process_stats("n1")
            assert stats.rejected_lines == 0
            assert any("INIT received" in line for line in master.get_stderr("n1"))

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
            await spawn_node(master, HEARTBEAT_MS="100")
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


def test_shutdown_lets_a_node_worker_finish_and_exit_0() -> None:
    async def main() -> None:
        async with Master() as master:
            await spawn_node(master)
            slow = asyncio.create_task(master.request("sleep", "n1", 400))
            await asyncio.sleep(0.1)
            code = await master.shutdown_child("n1", timeout=5000)
            assert code == 0
            assert (await slow).data == 400

    run(main())


def test_a_killed_node_worker_fails_in_flight_requests_at_once_and_comes_back() -> None:
    async def main() -> None:
        async with Master(timeout=30_000) as master:
            await spawn_node(master)
            first = master.get_process_stats("n1").pid
            slow = asyncio.create_task(master.request("sleep", "n1", 20_000))
            await asyncio.sleep(0.2)
            started = time.monotonic()
            assert first is not None
            os.kill(first, signal.SIGKILL)
            with pytest.raises(PeepsyProcessError):
                await slow
            assert time.monotonic() - started < 10
            for _ in range(100):
                if master.is_process_alive("n1") and master.get_process_stats("n1").pid != first:
                    break
                await asyncio.sleep(0.05)
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


def test_an_idle_node_worker_is_alive_and_serving_after_a_minute() -> None:
    async def main() -> None:
        async with Master(heartbeat_interval=200, heartbeat_miss_threshold=3) as master:
            await spawn_node(master)
            pid = master.get_process_stats("n1").pid
            await asyncio.sleep(60)
            stats = master.get_process_stats("n1")
            assert (stats.status, stats.pid, stats.restarts) == ("running", pid, 0)
            assert (await master.request("echo", "n1", "still here")).data == "still here"

    run(main())


def test_the_conformance_suite_validates_a_node_worker_over_its_ipc_channel(
    tmp_path: Path,
) -> None:
    """--transport node-ipc: a Node peepsy worker is checked as it is. It passes
    everything but the known departures of 1.0.1, listed in an expected-failures file;
    an entry that started passing would fail the run as stale."""
    assert NODE is not None
    report = tmp_path / "report.json"
    out = subprocess.run(
        [
            sys.executable, "-m", "peepsy.conformance", "--quiet", "--transport", "node-ipc",
            "--expected-failures", str(HERE / "node-worker-expected-failures.txt"),
            "--json", str(report), "--", NODE, WORKER,
        ],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:]
    data = json.loads(report.read_text(encoding="utf-8"))
    verdicts = {c["check"]: c["verdict"] for c in data["checks"]}
    assert verdicts["profile.echo"] == "pass"
    assert verdicts["req.legacy-shape"] == "pass"
    assert verdicts["profile.call-master"] == "pass"
    assert verdicts["resp.unknown-action-text"] == "pass"
    assert verdicts["frame.invalid-json-survived"] == "fail"

"""Supervision across the network: a lost connection is a dead child, heartbeats judge
liveness across the link, a host out of reach is a failed restart (backoff, then the
restart intensity gives up), and a group mixes local and remote members."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from peepsy import Master, PeepsyProcessError, PeepsySshError, Reply
from tests.process._support import Events, eventually, run
from tests.ssh._support import connection_of, kill, marked, new_mark, remote_env, worker
from tools.sshd import Sshd


async def _in_flight(master: Master[Any, Any], target: str) -> asyncio.Task[Any]:
    """A request the worker holds (it sleeps), once the worker has it."""
    task = asyncio.ensure_future(master.request("sleep", target, 60_000, timeout=60_000))
    await eventually(lambda: master.get_process_stats(target).requests_active == 1, "in flight")
    return task


@pytest.mark.parametrize("victim", ["ssh client", "remote worker", "sshd connection"])
def test_a_lost_link_or_worker_fails_in_flight_requests_and_restarts(
    sshd: Sshd, victim: str
) -> None:
    mark = new_mark()

    async def go() -> None:
        async with Master() as master:
            events = Events(master)
            stats = await master.spawn_child("w", worker(), host=sshd.host, env=remote_env(mark))
            remote = (await master.request("info", "w", None)).data["pid"]
            held = await _in_flight(master, "w")
            pid = {
                "ssh client": stats.pid,
                "remote worker": remote,
                "sshd connection": connection_of(sshd, remote),
            }[victim]
            assert pid is not None
            kill(pid)
            with pytest.raises(PeepsyProcessError):
                await held
            await eventually(lambda: events.respawned("w"), "restarted")
            assert [e.target for e in events.auto_restart] == ["w"]
            assert (await master.request("echo", "w", "again")).data == "again"
            await eventually(lambda: remote not in marked(mark), "the old worker gone")
            assert len(marked(mark)) == 1
        await eventually(lambda: not marked(mark), "no remote worker left")

    run(go())


def test_heartbeats_judge_liveness_across_the_link(sshd: Sshd) -> None:
    """A worker that goes silent (stopped: its link carries nothing) is judged by its
    heartbeats, killed and replaced; once it runs again it sees end of input and exits."""
    mark = new_mark()

    async def go() -> None:
        async with Master(heartbeat_interval=200, heartbeat_miss_threshold=3) as master:
            events = Events(master)
            await master.spawn_child("w", worker(), host=sshd.host, env=remote_env(mark))
            remote = (await master.request("info", "w", None)).data["pid"]
            await eventually(
                lambda: master.get_process_stats("w").last_heartbeat_at is not None, "hb"
            )
            kill(remote, signal.SIGSTOP)
            try:
                await eventually(lambda: bool(events.heartbeat_missed), "heartbeat missed", 10)
                await eventually(lambda: events.respawned("w"), "restarted", 10)
                assert (await master.request("echo", "w", 1)).data == 1
            finally:
                kill(remote, signal.SIGCONT)
            await eventually(lambda: remote not in marked(mark), "the stopped worker gone")
        await eventually(lambda: not marked(mark), "no remote worker left")

    run(go())


def test_a_host_out_of_reach_is_a_failed_restart_with_backoff(tmp_path: Path) -> None:
    """The listener is killed, then the connection: the restarts cannot connect. Each
    is a failed restart (PeepsySshError in an error event, the next one later), until
    the restart intensity gives up; requests meanwhile end, none hangs."""
    from tools import sshd as sshd_tool

    if not sshd_tool.available():
        pytest.skip(f"no OpenSSH server at {sshd_tool.SSHD}")
    mark = new_mark()
    with Sshd(tmp_path / "sshd") as server:
        assert server.proc is not None
        listener = server.proc.pid

        async def go() -> None:
            async with Master(max_restarts=3, restart_window=60_000) as master:
                events = Events(master)
                await master.spawn_child(
                    "w", worker(), host=server.host, env=remote_env(mark), stderr="discard"
                )
                remote = (await master.request("info", "w", None)).data["pid"]
                connection = connection_of(server, remote)
                kill(listener)
                # The connection outlives its listener: a child still starts over it.
                await master.spawn_child(
                    "x", worker(), host=server.host, env=remote_env(mark), stderr="discard"
                )
                assert (await master.request("echo", "x", 1)).data == 1
                held = await _in_flight(master, "w")
                kill(connection)
                with pytest.raises(PeepsyProcessError):
                    await held
                await eventually(lambda: len(events.restart_failed) == 2, "both gave up", 20)
                failures = [e for e in events.error if isinstance(e.error, PeepsySshError)]
                assert failures
                # (a restart that finds the dying shared connection may get no message)
                assert any("refused" in e.error.ssh_message for e in failures)  # type: ignore[attr-defined]
                # the first restart (the death) and each failed one, counted as restarts
                assert Counter(e.target for e in events.auto_restart) == {"w": 3, "x": 3}
                with pytest.raises(PeepsyProcessError):
                    await master.request("echo", "w", 1)
                assert master.get_process_stats("w").status == "failed"
            await eventually(lambda: not marked(mark), "no remote worker left")

        run(go())


def test_a_group_of_remote_and_local_members_under_load(sshd: Sshd) -> None:
    """Least-busy balancing across two remote members and a local one, while one remote
    member's link is cut: every request ends (an answer, or PeepsyProcessError for one
    the cut link held), all three members serve, and the cut one comes back."""
    mark = new_mark()

    async def go() -> None:
        async with Master(timeout=20_000) as master:
            events = Events(master)
            master.configure_group("pool", strategy="least-busy")
            for target, host in (("r1", sshd.host), ("r2", sshd.host), ("local", None)):
                await master.spawn_child(
                    target, worker("concurrent"), group="pool", host=host, env=remote_env(mark)
                )
            cut = master.get_process_stats("r1").pid
            assert cut is not None

            async def one(i: int) -> Reply[Any] | BaseException:
                try:
                    return await master.request("sleep", "pool", 20 + i % 7)
                except PeepsyProcessError as exc:
                    return exc

            warm = await asyncio.gather(*(one(i) for i in range(60)))
            assert {a.target for a in warm if isinstance(a, Reply)} == {"r1", "r2", "local"}
            first = [asyncio.ensure_future(one(i)) for i in range(150)]
            await eventually(lambda: master.get_process_stats("r1").requests_active > 0, "r1 busy")
            kill(cut)
            outcomes = await asyncio.gather(*first, *(one(i) for i in range(150)))
            answers = [o for o in outcomes if isinstance(o, Reply)]
            failures = [o for o in outcomes if not isinstance(o, Reply)]
            assert len(answers) + len(failures) == 300
            assert all(isinstance(f, PeepsyProcessError) for f in failures)
            assert {"r2", "local"} <= {a.target for a in answers}
            await eventually(lambda: events.respawned("r1"), "r1 restarted")
            assert (await master.request("echo", "r1", 1)).data == 1
        await eventually(lambda: not marked(mark), "no remote worker left")

    run(go())

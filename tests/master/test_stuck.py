"""Issue 11, stuck workers: a handler still running ``cancel_grace`` after its CANCEL.

``replace`` (the default) stops the process, fails what else it held with
PeepsyProcessError and starts a new one; ``rotate-out`` keeps it out of its group's
rotation until the answer comes. A 1.0 child, never sent CANCEL, is never judged.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from peepsy import (
    AutoRestartEvent,
    ExitEvent,
    PeepsyProcessError,
    PeepsyTimeoutError,
    ReplacedEvent,
    SpawnEvent,
    StuckEvent,
)
from peepsy.master import RecoveredEvent, StalledEvent
from peepsy.protocol import RequestReceived
from tests.master._support import Farm, Peer, echo, hold, run, settle, until
from tests.master.test_cancel import spawn_speaking


class Recorded:
    def __init__(self, master: Any) -> None:
        self.stuck: list[StuckEvent] = []
        self.replaced: list[ReplacedEvent] = []
        self.recovered: list[RecoveredEvent] = []
        self.stalled: list[StalledEvent] = []
        self.exits: list[ExitEvent] = []
        self.spawns: list[SpawnEvent] = []
        self.auto_restarts: list[AutoRestartEvent] = []
        master.on("stuck", self.stuck.append)
        master.on("replaced", self.replaced.append)
        master.on("recovered", self.recovered.append)
        master.on("stalled", self.stalled.append)
        master.on("exit", self.exits.append)
        master.on("spawn", self.spawns.append)
        master.on("auto-restart", self.auto_restarts.append)


def hold_first(peer: Peer, request: RequestReceived) -> None:
    """The first incarnation of each peer holds everything; later ones echo."""
    if len(peer.farm.incarnations(peer.target)) == 1:
        return
    echo(peer, request)


async def time_out(master: Any, target: str, timeout: int = 20) -> None:
    with pytest.raises(PeepsyTimeoutError):
        await master.request("slow", target, None, timeout=timeout)


# --- replace -------------------------------------------------------------------------------


def test_a_stuck_worker_is_replaced_and_what_else_it_held_fails() -> None:
    async def main() -> None:
        farm = Farm(hold_first, protocol="1.1")
        async with farm.master(cancel_grace=50, stall_grace=10_000) as master:
            events = Recorded(master)
            w1 = await spawn_speaking(farm, master, "w1", mode="concurrent")
            other = asyncio.ensure_future(master.request("other", "w1", None, timeout=10_000))
            await w1.next_request()
            await time_out(master, "w1")
            await until(lambda: len(events.replaced) == 1)
            rid = w1.requests[1].id
            assert events.stuck == [StuckEvent("w1", rid, "slow", "replace")]
            assert events.replaced == [ReplacedEvent("w1", "stuck")]
            with pytest.raises(PeepsyProcessError, match="replaced"):
                await other
            assert w1.exited
            assert [(e.expected, e.failed_requests) for e in events.exits] == [(True, 1)]
            assert events.auto_restarts == []  # not a death
            await until(lambda: len(farm.incarnations("w1")) == 2)
            await until(lambda: master.get_process_stats("w1").status == "running")
            assert events.spawns[-1].restart
            stats = master.get_process_stats("w1")
            assert (stats.stuck, stats.replacements, stats.restarts) == (1, 1, 1)
            assert (stats.cancels_sent, stats.cancels_acknowledged) == (1, 0)
            assert (await master.request("echo", "w1", 7, timeout=1000)).data == 7

    run(main())


def test_what_a_replaced_worker_held_is_retried_on_its_successor() -> None:
    async def main() -> None:
        farm = Farm(hold_first, protocol="1.1")
        async with farm.master(cancel_grace=50, stall_grace=10_000, retry_delay=1) as master:
            w1 = await spawn_speaking(farm, master, "w1", mode="concurrent")
            other = asyncio.ensure_future(
                master.request("other", "w1", "again", timeout=10_000, retries=1)
            )
            await w1.next_request()
            await time_out(master, "w1")
            assert (await other).data == "again"
            assert len(farm.incarnations("w1")) == 2

    run(main())


def test_requests_by_name_wait_for_the_replacement() -> None:
    async def main() -> None:
        # The old process outlives its SIGTERM: the master SIGKILLs it a second later.
        farm = Farm(hold_first, protocol="1.1", ignore_term=True)
        async with farm.master(cancel_grace=30) as master:
            events = Recorded(master)
            w1 = await spawn_speaking(farm, master, "w1")
            await time_out(master, "w1")
            await until(lambda: w1.terms == 1)
            assert master.get_process_stats("w1").status == "restarting"
            assert not w1.exited
            reply = await master.request("echo", "w1", 1, timeout=5000)
            assert reply.data == 1
            assert len(w1.requests) == 1  # nothing more was sent to the old process
            assert [e.signal for e in events.exits] == [9]
            assert len(events.replaced) == 1

    run(main())


def test_replace_ignores_auto_restart_and_restart_intensity() -> None:
    async def main() -> None:
        farm = Farm(hold, protocol="1.1")
        async with farm.master(cancel_grace=30, max_restarts=0) as master:
            events = Recorded(master)
            await spawn_speaking(farm, master, "w1", auto_restart=False)
            for round_ in (1, 2):
                await time_out(master, "w1")
                await until(lambda r=round_: len(events.replaced) == r)  # type: ignore[misc]
                await until(lambda: master.get_process_stats("w1").status == "running")
                peer = farm.peer("w1")
                await until(lambda p=peer: bool(p.inits))  # type: ignore[misc]
                await until(lambda: master.get_process_stats("w1").actions is not None)
            assert master.get_process_stats("w1").replacements == 2

    run(main())


def test_an_acknowledged_cancel_is_not_stuck() -> None:
    async def main() -> None:
        farm = Farm(hold, protocol="1.1")
        async with farm.master(cancel_grace=10_000) as master:
            w1 = await spawn_speaking(farm, master, "w1")
            watch = master._workers["w1"].cancels
            await time_out(master, "w1")
            await until(lambda: len(w1.cancels) == 1)
            assert list(watch._pending) == [w1.requests[0].id]  # its grace runs
            w1.reply(w1.requests[0], 499, error="cancelled")
            await until(lambda: master.get_process_stats("w1").cancels_acknowledged == 1)
            assert watch._pending == {}  # and is over: nothing left to judge

    run(main())


def test_a_1_0_child_is_never_judged_stuck() -> None:
    async def main() -> None:
        farm = Farm(hold)
        async with farm.master(cancel_grace=20, stall_grace=20) as master:
            events = Recorded(master)
            master.configure_group("g")
            await farm.spawn(master, "w1", "g")
            await time_out(master, "w1")
            await until(lambda: len(events.stalled) == 1)  # issue 10's rule still holds
            assert master._workers["w1"].cancels._pending == {}  # no grace to run out
            assert master.get_process_stats("w1").cancels_sent == 0

    run(main())


@pytest.mark.parametrize("where", ["master", "child"])
def test_a_1_0_child_is_judged_from_its_timeout_when_configured(where: str) -> None:
    """judge_uncancellable: a child that cannot be sent CANCEL gets the same grace from
    its timeout, and is replaced at its end like a stuck one."""

    async def main() -> None:
        farm = Farm(hold_first)
        master_option = {"judge_uncancellable": True} if where == "master" else {}
        async with farm.master(cancel_grace=50, stall_grace=10_000, **master_option) as master:
            events = Recorded(master)
            child_option: dict[str, Any] = {"judge_uncancellable": True} if where == "child" else {}
            await farm.spawn(master, "w1", **child_option)
            await time_out(master, "w1")
            await until(lambda: len(events.replaced) == 1)
            rid = farm.incarnations("w1")[0].requests[0].id
            assert events.stuck == [StuckEvent("w1", rid, "slow", "replace")]
            stats = master.get_process_stats("w1")
            assert (stats.cancels_sent, stats.stuck, stats.replacements) == (0, 1, 1)
            await until(lambda: master.get_process_stats("w1").status == "running")
            assert (await master.request("echo", "w1", 7, timeout=1000)).data == 7

    run(main())


def test_a_1_0_child_judged_without_cancel_that_answers_in_time_is_not_stuck() -> None:
    async def main() -> None:
        farm = Farm(hold)
        async with farm.master(
            cancel_grace=60_000, stall_grace=60_000, judge_uncancellable=True, on_stuck="rotate-out"
        ) as master:
            events = Recorded(master)
            master.configure_group("g")
            w1 = await farm.spawn(master, "w1", "g")
            await time_out(master, "w1")
            assert len(master._workers["w1"].cancels._pending) == 1  # its grace runs
            w1.reply(w1.requests[0], data="late")
            await until(lambda: master.get_process_stats("w1").late_responses == 1)
            assert master._workers["w1"].cancels._pending == {}
            stats = master.get_process_stats("w1")
            assert (stats.stuck, stats.cancels_acknowledged, stats.in_rotation) == (0, 0, True)
            assert events.stuck == events.replaced == []  # type: ignore[comparison-overlap]

    run(main())


@pytest.mark.parametrize("value", [1, "yes", None])
def test_judge_uncancellable_is_a_bool(value: object) -> None:
    with pytest.raises(TypeError, match="judge_uncancellable is True or False"):
        Farm().master(judge_uncancellable=value)


def test_no_judgement_while_a_worker_is_being_stopped() -> None:
    async def main() -> None:
        farm = Farm(hold, protocol="1.1", exit_on_shutdown=False, exit_on_eof=False)
        async with farm.master(cancel_grace=10_000) as master:
            events = Recorded(master)
            w1 = await spawn_speaking(farm, master, "w1")
            watch = master._workers["w1"].cancels
            await time_out(master, "w1")
            stopping = asyncio.ensure_future(master.shutdown_child("w1", timeout=5000))
            await until(lambda: w1.shutdowns == 1)
            rid = w1.requests[0].id
            timer = watch._pending[rid][1]
            assert timer is not None
            timer.cancel()
            watch._over(rid)  # its grace ends while it is being stopped
            assert events.stuck == []
            assert watch.stuck == 0
            w1.exit(0)
            assert await stopping == 0

    run(main())


@pytest.mark.parametrize("how", ["shutdown_child", "graceful_shutdown"])
def test_a_worker_being_replaced_is_stopped_not_restarted_at_shutdown(how: str) -> None:
    async def main() -> None:
        farm = Farm(hold, protocol="1.1", ignore_term=True)
        master = farm.master(cancel_grace=30)
        events = Recorded(master)
        w1 = await spawn_speaking(farm, master, "w1")
        await time_out(master, "w1")
        await until(lambda: w1.terms == 1)  # being replaced, its process still up
        if how == "shutdown_child":
            assert await master.shutdown_child("w1", timeout=1000) == -9
        else:
            await master.graceful_shutdown(timeout=1000)
        assert w1.exited
        await settle()
        assert len(farm.incarnations("w1")) == 1
        assert events.replaced == []
        assert [e.expected for e in events.exits] == [True]
        assert master.targets == []

    run(main())


def test_a_worker_whose_channel_broke_is_not_replaced_twice() -> None:
    async def main() -> None:
        farm = Farm(hold, protocol="1.1", ignore_term=True)
        async with farm.master(cancel_grace=10_000) as master:
            events = Recorded(master)
            w1 = await spawn_speaking(farm, master, "w1")
            worker = master._workers["w1"]
            await time_out(master, "w1")
            rid = w1.requests[0].id
            timer = worker.cancels._pending[rid][1]
            assert timer is not None
            timer.cancel()
            worker.channel_broken("closed its protocol stream")  # SIGTERM, SIGKILL soon
            assert master.get_process_stats("w1").status == "unhealthy"
            worker.cancels._over(rid)  # the grace ends meanwhile
            assert [e.policy for e in events.stuck] == ["replace"]
            await until(lambda: len(events.auto_restarts) == 1)  # the broken path's
            assert events.replaced == []
            assert [e.signal for e in events.exits] == [9]

    run(main())


# --- rotate-out ----------------------------------------------------------------------------


def only_w1_holds(peer: Peer, request: RequestReceived) -> None:
    if peer.target != "w1":
        echo(peer, request)


@pytest.mark.parametrize("where", ["master", "group", "child"])
def test_rotate_out_until_the_stuck_request_is_answered(where: str) -> None:
    async def main() -> None:
        farm = Farm(only_w1_holds, protocol="1.1")
        options: dict[str, Any] = {"on_stuck": "rotate-out"} if where == "master" else {}
        async with farm.master(cancel_grace=30, stall_grace=10_000, **options) as master:
            events = Recorded(master)
            if where == "group":
                master.configure_group("g", on_stuck="rotate-out")
            child = {"on_stuck": "rotate-out"} if where == "child" else {}
            w1 = await spawn_speaking(farm, master, "w1", "g", mode="concurrent", **child)
            await spawn_speaking(farm, master, "w2", "g")
            await time_out(master, "w1")
            await until(lambda: len(events.stuck) == 1)
            assert events.stuck[0].policy == "rotate-out"
            stats = master.get_process_stats("w1")
            assert (stats.in_rotation, stats.status, stats.stuck) == (False, "running", 1)
            targets = {(await master.request("echo", "g", i)).target for i in range(4)}
            assert targets == {"w2"}
            w1.reply(w1.requests[0], 499, error="cancelled")
            await until(lambda: len(events.recovered) == 1)
            assert events.recovered == [RecoveredEvent("w1", "answered")]
            assert master.get_process_stats("w1").in_rotation
            assert len(farm.incarnations("w1")) == 1
            assert events.replaced == []

    run(main())


def test_a_member_policy_wins_over_its_group_and_the_group_over_the_master() -> None:
    async def main() -> None:
        farm = Farm(hold, protocol="1.1")
        async with farm.master(on_stuck="rotate-out") as master:
            master.configure_group("g", on_stuck="replace")
            await farm.spawn(master, "a", "g", on_stuck="rotate-out")
            await farm.spawn(master, "b", "g")
            await farm.spawn(master, "c")
            policy = master._stuck.policy_of
            workers = master._workers
            assert policy(workers["a"]) == "rotate-out"
            assert policy(workers["b"]) == "replace"
            assert policy(workers["c"]) == "rotate-out"
            master.configure_group("g", strategy="random")  # leaves on_stuck alone
            assert policy(workers["b"]) == "replace"

    run(main())


def test_rotate_out_holds_for_every_stuck_request_and_ends_with_the_process() -> None:
    async def main() -> None:
        farm = Farm(only_w1_holds, protocol="1.1")
        async with farm.master(
            cancel_grace=30, stall_grace=10_000, on_stuck="rotate-out"
        ) as master:
            events = Recorded(master)
            w1 = await spawn_speaking(farm, master, "w1", "g", mode="concurrent")
            await spawn_speaking(farm, master, "w2", "g")
            await asyncio.gather(time_out(master, "w1"), time_out(master, "w1"))
            await until(lambda: len(events.stuck) == 2)
            w1.reply(w1.requests[0], 499, error="cancelled")
            await until(lambda: master.get_process_stats("w1").cancels_acknowledged == 1)
            assert not master.get_process_stats("w1").in_rotation  # still one stuck
            assert events.recovered == []
            w1.exit(1)  # it dies: the request it held with it
            await until(lambda: len(events.recovered) == 1)
            assert events.recovered == [RecoveredEvent("w1", "exited")]

    run(main())


def test_a_stalled_and_stuck_member_recovers_once() -> None:
    async def main() -> None:
        farm = Farm(only_w1_holds, protocol="1.1")
        async with farm.master(cancel_grace=60, stall_grace=20, on_stuck="rotate-out") as master:
            events = Recorded(master)
            w1 = await spawn_speaking(farm, master, "w1", "g")
            await time_out(master, "w1")
            await until(lambda: len(events.stuck) == 1)
            assert len(events.stalled) == 1
            w1.reply(w1.requests[0], 499, error="cancelled")
            await until(lambda: master.get_process_stats("w1").in_rotation)
            await settle()
            assert events.recovered == [RecoveredEvent("w1", "answered")]

    run(main())


# --- options -------------------------------------------------------------------------------


def test_options_are_checked() -> None:
    farm = Farm()
    for bad in (0, 300_001, 1.5, True):
        with pytest.raises(ValueError, match="cancel_grace"):
            farm.master(cancel_grace=bad)
    with pytest.raises(TypeError, match="cancel_grace"):
        farm.master(cancel_grace="2000")
    for value in ("kill", None, 1):
        with pytest.raises(ValueError, match="on_stuck"):
            farm.master(on_stuck=value)

    async def main() -> None:
        async with farm.master() as master:
            with pytest.raises(ValueError, match="on_stuck"):
                await master.spawn_child("w1", ["peer", "w1"], on_stuck="never")  # type: ignore[arg-type]
            assert master.targets == []
            with pytest.raises(ValueError, match="on_stuck"):
                master.configure_group("g", on_stuck="never")  # type: ignore[arg-type]

    run(main())

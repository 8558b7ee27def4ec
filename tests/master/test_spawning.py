"""spawn_child: argument checks, the command, the spawn spec and INIT (INIT-1)."""

from __future__ import annotations

from typing import Any

import pytest

from peepsy import Master, PeepsyProcessError
from peepsy.protocol import PROTOCOL_VERSION
from tests.master._support import Farm, run, until


def test_init_is_the_first_line_a_child_gets() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master(heartbeat_interval=1500) as master:
            peer = await farm.spawn(master, "w1", mode="concurrent")
            await master.request("echo", "w1", 1)
            first = bytes(peer.raw).splitlines()[0]
            assert first == (
                b'{"type":"INIT","mode":"concurrent","protocol":"'
                + PROTOCOL_VERSION.encode()
                + b'","target":"w1","heartbeatInterval":1500,"maxLineBytes":16777216}'
            )
            assert len(peer.inits) == 1

    run(main())


def test_the_spawn_spec_carries_command_env_cwd_and_stderr() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            await master.spawn_child(
                "w1", ["peer", "w1", "--fast"], env={"A": "1"}, cwd="/tmp", stderr="capture"
            )
            spec = farm.peer("w1").spec
            assert list(spec.argv) == ["peer", "w1", "--fast"]
            assert (spec.env, spec.inherit_env) == ({"A": "1"}, True)
            assert (spec.cwd, spec.stderr) == ("/tmp", "capture")
            await master.spawn_child("w2", ["peer", "w2"], env={"B": "2"}, inherit_env=False)
            assert (farm.peer("w2").spec.env, farm.peer("w2").spec.inherit_env) == (
                {"B": "2"},
                False,
            )

    run(main())


def test_a_string_command_is_split_like_a_shell() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            await master.spawn_child("w1", "peer 'w 1' --name=\"x y\" plain")
            assert list(farm.peers[0].spec.argv) == ["peer", "w 1", "--name=x y", "plain"]

    run(main())


async def refused(master: Master[Any, Any], target: str, command: Any, **options: Any) -> str:
    with pytest.raises(ValueError, match=r".") as info:
        await master.spawn_child(target, command, **options)
    return str(info.value)


def test_spawn_argument_checks() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            await farm.spawn(master, "w1", "g")
            assert "already in use" in await refused(master, "w1", ["peer", "w1"])
            assert "empty" in await refused(master, "", ["peer", "x"])
            assert "group 'w1' has the name of a child" in await refused(
                master, "w2", ["peer", "w2"], group="w1"
            )
            assert "target 'g' has the name of a group" in await refused(master, "g", ["peer"])
            assert "mode is 'sequential' or 'concurrent', not 'parallel'" in await refused(
                master, "w3", ["peer"], mode="parallel"
            )
            assert "stderr is inherit, log, capture or discard, not 'pipe'" in await refused(
                master, "w3", ["peer"], stderr="pipe"
            )
            commands: list[str | list[str]] = [[], "", "   "]
            for command in commands:
                assert "command is empty" in await refused(master, "w3", command)
            # Nothing was started by a refused spawn.
            assert master.targets == ["w1"]
            assert len(farm.peers) == 1

    run(main())


def test_a_failed_spawn_leaves_no_child_behind() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            with pytest.raises(PeepsyProcessError, match="could not start w1") as info:
                await master.spawn_child("w1", ["no-such-command"], group="g")
            assert info.value.target == "w1"
            assert master.targets == []
            assert master.get_group_stats("g").processes == {}
            # The name can be used again.
            await farm.spawn(master, "w1", "g")
            assert master.is_process_alive("w1")

    run(main())


def test_mode_defaults_to_sequential() -> None:
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            stats = await master.spawn_child("w1", ["peer", "w1"])
            assert stats.mode == "sequential"
            peer = farm.peer("w1")
            await until(lambda: bool(peer.inits))
            assert peer.inits[0].mode == "sequential"

    run(main())


def test_a_launcher_error_that_is_not_an_os_error_leaves_no_child_behind() -> None:
    # asyncio.create_subprocess_exec raises ValueError for an argument with a NUL byte,
    # TypeError for a non-string env value: not every launch failure is an OSError.
    async def main() -> None:
        farm = Farm()
        async with farm.master() as master:
            farm.spawn_errors.append(ValueError("embedded null byte"))
            with pytest.raises((ValueError, PeepsyProcessError), match="embedded null byte"):
                await master.spawn_child("w1", ["peer", "w1"])
            assert master.targets == []
            assert not master.is_process_alive("w1")
            # The name is free again.
            await farm.spawn(master, "w1")
            assert (await master.request("echo", "w1", 1)).data == 1

    run(main())

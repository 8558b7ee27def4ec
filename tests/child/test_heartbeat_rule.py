"""HB-1 for a master that states no heartbeat interval: a Node peepsy master sends INIT
without ``heartbeatInterval`` yet kills a child silent for its own interval times 3. A
child that read such an INIT, or that serves on Node's IPC channel, beats every
``UNSTATED_HEARTBEAT_MS``; an interval fixed in the Child still wins."""

from __future__ import annotations

import asyncio
import json
import socket

from peepsy import Child
from peepsy.child._child import UNSTATED_HEARTBEAT_MS
from peepsy.transport import NodeIpcChannel
from tests.child._support import run, serving, until

#: Four beats at the unstated interval (1 s) fit in this three times over; at the
#: default interval (2000 ms) they take 8 s.
FOUR_BEATS_LIMIT_S = 3.0


def test_an_init_without_an_interval_makes_the_child_beat_fast() -> None:
    async def main() -> None:
        child = Child()
        async with serving(child) as master:
            await until(lambda: len(master.heartbeats) == 1)
            master.init("sequential")  # as a Node master sends it: mode alone
            await until(lambda: len(master.heartbeats) >= 5, limit=FOUR_BEATS_LIMIT_S)

    run(main())


def test_a_fixed_interval_wins_over_an_init_without_one() -> None:
    async def main() -> None:
        child = Child(heartbeat_interval=5000)
        async with serving(child) as master:
            await until(lambda: len(master.heartbeats) == 1)
            master.init("sequential")
            await asyncio.sleep(4 * UNSTATED_HEARTBEAT_MS / 1000)  # a beat here is a bug
            assert len(master.heartbeats) == 1

    run(main())


async def beats_on_node_ipc(child: Child, count: int) -> int:
    """Serve ``child`` on a Node IPC socket until ``count`` HEARTBEATs came (or the
    limit passed); the HEARTBEATs that came."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    ours.setblocking(False)
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(child.serve(NodeIpcChannel(theirs.detach())))
    beats = 0
    buffer = b""
    try:
        async with asyncio.timeout(FOUR_BEATS_LIMIT_S):
            while beats < count:
                buffer += await loop.sock_recv(ours, 4096)
                *lines, buffer = buffer.split(b"\n")
                beats += sum(json.loads(raw)["type"] == "HEARTBEAT" for raw in lines)
    except TimeoutError:
        pass
    finally:
        child.shutdown(0)
        assert await asyncio.wait_for(task, 5) == 0
        ours.close()
    return beats


def test_a_child_on_node_ipc_beats_fast_before_any_init() -> None:
    assert run(beats_on_node_ipc(Child(), 5)) == 5


def test_a_fixed_interval_wins_on_node_ipc_too() -> None:
    assert run(beats_on_node_ipc(Child(heartbeat_interval=5000), 2)) == 1

"""Children on another host, reached through a real sshd on loopback: spawning,
requests both ways, connection sharing, the host's failures as PeepsySshError, and no
process left on the remote side once the master is gone."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from peepsy import Master, PeepsyProcessError, PeepsySshError, SshHost
from tests.process._support import Events, eventually, run
from tests.ssh._support import connection_of, kill, marked, new_mark, remote_env, worker
from tools.sshd import Sshd


def test_requests_both_ways_with_env_and_cwd(sshd: Sshd, tmp_path: Path) -> None:
    mark = new_mark()
    odd = """a 'b' "c" $HOME `x` \\ ; |"""
    here = tmp_path / "a dir 'with' quotes"
    here.mkdir()

    async def go() -> None:
        async with Master() as master:

            @master.handler("getMasterInfo")
            async def info(data: Any) -> dict[str, Any]:
                return {"got": data}

            stats = await master.spawn_child(
                "w", worker(), host=sshd.host, env={**remote_env(mark), "ODD": odd}, cwd=str(here)
            )
            reply = await master.request("echo", "w", {"x": [1, "é", None]})
            assert reply.data == {"x": [1, "é", None]}
            assert (await master.request("ask_master", "w", {"q": 1})).data == {"got": {"q": 1}}
            assert (await master.request("env", "w", "ODD")).data["value"] == odd
            where = (await master.request("info", "w", None)).data
            assert where["cwd"] == str(here)
            # The child's pid is the local ssh client's; the worker runs under sshd.
            assert marked(mark) == [where["pid"]] != [stats.pid]
        await eventually(lambda: not marked(mark), "no remote worker left after the master")

    run(go())


def test_a_string_host_and_no_connection_sharing(sshd: Sshd) -> None:
    # A string is SshHost(that): here an alias given with -F, as a user's ~/.ssh/config.
    host = sshd.host_with(control_persist=0)
    config = Path(str(host.identity_file)).parent / "ssh_config"
    config.write_text(
        textwrap.dedent(f"""\
            Host peepsy-test
                HostName 127.0.0.1
                User {host.destination.split("@")[0]}
                Port {host.port}
                IdentityFile {host.identity_file}
                IdentitiesOnly yes
                UserKnownHostsFile {host.known_hosts_file}
                StrictHostKeyChecking yes
            """)
    )
    mark = new_mark()

    async def go() -> None:
        async with Master() as master:
            await master.spawn_child("a", worker(), host=host, env=remote_env(mark))
            aliased = SshHost("peepsy-test", ssh=("ssh", "-F", str(config)), control_persist=0)
            await master.spawn_child("b", worker(), host=aliased, env=remote_env(mark))
            for target in ("a", "b"):
                assert (await master.request("echo", target, target)).data == target
            assert len(marked(mark)) == 2
        await eventually(lambda: not marked(mark), "no remote worker left")

    run(go())


def test_children_on_one_host_share_its_connection(sshd: Sshd) -> None:
    """The second child rides the first one's connection: the one sshd process serving
    it carries both, and killing it ends both (each restarts on a new connection)."""
    mark = new_mark()

    async def go() -> None:
        async with Master() as master:
            events = Events(master)
            for target in ("a", "b"):
                await master.spawn_child(target, worker(), host=sshd.host, env=remote_env(mark))
            pids = [(await master.request("info", t, None)).data["pid"] for t in ("a", "b")]
            connections = {connection_of(sshd, pid) for pid in pids}
            assert len(connections) == 1, "one sshd connection serves both workers"
            kill(connections.pop())
            await eventually(lambda: events.respawned("a") and events.respawned("b"), "restarts")
            for target in ("a", "b"):
                assert (await master.request("echo", target, 1)).data == 1
            await eventually(lambda: len(marked(mark)) == 2, "the old workers gone")
            assert not set(pids) & set(marked(mark))
        await eventually(lambda: not marked(mark), "no remote worker left")

    run(go())


def test_a_closed_port_is_a_ssh_error_with_ssh_s_message(sshd: Sshd) -> None:
    async def go() -> None:
        async with Master() as master:
            with pytest.raises(PeepsySshError) as caught:
                await master.spawn_child("w", worker(), host=sshd.host_with(port=1), stderr="log")
            assert "Connection refused" in caught.value.ssh_message
            assert caught.value.host == sshd.host.destination
            assert caught.value.target == "w"
            assert caught.value.code == "PEEPSY_SSH"
            assert isinstance(caught.value, PeepsyProcessError)
            assert "w" not in master.targets  # the name is free again

    run(go())


def test_a_wrong_host_key_is_refused(sshd: Sshd, tmp_path: Path) -> None:
    other = tmp_path / "other_key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)],
        check=True,
    )
    known = tmp_path / "known_hosts"
    key = (tmp_path / "other_key.pub").read_text().split()
    known.write_text(f"[127.0.0.1]:{sshd.port} {key[0]} {key[1]}\n")

    async def go() -> None:
        async with Master() as master:
            host = sshd.host_with(known_hosts_file=str(known))
            with pytest.raises(PeepsySshError) as caught:
                await master.spawn_child("w", worker(), host=host, stderr="discard")
            assert "Host key verification failed" in caught.value.ssh_message

    run(go())


def test_a_command_that_cannot_start_there_is_a_process_error(sshd: Sshd) -> None:
    async def go() -> None:
        async with Master() as master:
            with pytest.raises(PeepsyProcessError) as caught:
                await master.spawn_child(
                    "w", worker(), host=sshd.host, cwd="/no/such/dir", stderr="capture"
                )
            assert not isinstance(caught.value, PeepsySshError)
            assert "/no/such/dir" in str(caught.value)

    run(go())


MASTER_SCRIPT = """
import asyncio, json, sys
from peepsy import Master, SshHost

async def main():
    host = SshHost(**json.loads(sys.argv[1]))
    master = Master()
    for target in ("a", "b"):
        await master.spawn_child(target, json.loads(sys.argv[2]), host=host,
                                 env=json.loads(sys.argv[3]))
    print(json.dumps({
        "clients": [master.get_process_stats(t).pid for t in ("a", "b")],
        "remote": [(await master.request("info", t, None)).data["pid"] for t in ("a", "b")],
    }), flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


@pytest.mark.parametrize("victim", ["master", "ssh client"])
def test_no_remote_process_outlives_a_killed_master_or_ssh_client(sshd: Sshd, victim: str) -> None:
    """kill -9 of the master (its ssh clients see their input end) or of its ssh
    client: the remote worker sees end of input and exits."""
    mark = new_mark()
    host = sshd.host
    spec = {
        "destination": host.destination,
        "port": host.port,
        "identity_file": host.identity_file,
        "known_hosts_file": host.known_hosts_file,
        "control_persist": 2,  # the shared connection of a killed master ends soon
    }
    env = remote_env(mark)
    argv = [sys.executable, "-c", MASTER_SCRIPT, json.dumps(spec), json.dumps(worker())]
    proc = subprocess.Popen(
        [*argv, json.dumps(env)],
        stdout=subprocess.PIPE,
        text=True,
        env={"PYTHONPATH": env["PYTHONPATH"], "PATH": "/usr/bin:/bin"},
    )
    try:
        assert proc.stdout is not None
        started = json.loads(proc.stdout.readline())
        assert sorted(marked(mark)) == sorted(started["remote"])

        async def go() -> None:
            if victim == "master":
                kill(proc.pid)
                await eventually(lambda: not marked(mark), "remote workers gone", 15)
            else:
                kill(started["clients"][0])
                gone = started["remote"][0]
                await eventually(lambda: gone not in marked(mark), "its worker gone", 15)
                # ... and the master restarted it: a new worker, the other one untouched
                await eventually(lambda: len(marked(mark)) == 2, "a new worker", 15)
                assert started["remote"][1] in marked(mark)

        run(go())
    finally:
        kill(proc.pid)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    run(eventually(lambda: not marked(mark), "no remote worker left", 15))

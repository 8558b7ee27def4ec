"""The README's scaling-out example works as written, against a real sshd on loopback.

The example names its host on one line, ``HOST = "..."``, and says that a host with a
port, a key or a known_hosts file of its own is an ``SshHost``: that is the one line a
user changes, and the one line this test changes (to the ``SshHost`` of the throwaway
sshd of tools/sshd.py). Everything else runs as printed, from the repository root.
docs/scaling-out.md's own snippets are checked below it.
"""

from __future__ import annotations

import ast
import asyncio
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from peepsy import Master, SshHost
from tests._paths import DOCS, ROOT
from tools import sshd as sshd_tool

README = (ROOT / "README.md").read_text(encoding="utf-8")
PAGE = (DOCS / "scaling-out.md").read_text(encoding="utf-8")
HOST_LINE = re.compile(r'^HOST = "[^"]+"  # .*$', re.MULTILINE)
LIMIT_S = 120


def readme_example() -> str:
    section = README.split("\n## Scaling out\n", 1)[1].split("\n## ", 1)[0]
    [code] = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    return str(code)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sshd_tool.Sshd]:
    if not sshd_tool.available():
        pytest.skip(f"no OpenSSH server at {sshd_tool.SSHD} (apt-get install openssh-server)")
    with sshd_tool.Sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


def with_host(code: str, host: SshHost) -> str:
    """The example with its HOST line pointing at ``host``, as a user would write it."""
    [line] = HOST_LINE.findall(code)
    given = (
        f"SshHost({host.destination!r}, port={host.port}, "
        f"identity_file={host.identity_file!r}, known_hosts_file={host.known_hosts_file!r})"
    )
    code = code.replace(line, f"HOST = {given}")
    return code.replace("from peepsy import Master\n", "from peepsy import Master, SshHost\n")


def run(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "scaling_out.py"
    script.write_text(code, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path[1:]])}
    env.pop("COVERAGE_PROCESS_CONFIG", None)
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=ROOT,  # the README runs its examples from the repository root
        env=env,
        capture_output=True,
        text=True,
        timeout=LIMIT_S,
        check=False,
    )


def no_sessions_within(server: sshd_tool.Sshd, seconds: float) -> list[int]:
    """The sshd listener's remaining descendants, polled until none or ``seconds``."""
    assert server.proc is not None
    end = time.monotonic() + seconds
    while (left := sshd_tool.descendants(server.proc.pid)) and time.monotonic() < end:
        time.sleep(0.05)  # polling with a generous bound, not synchronization
    return left


def test_the_readme_example_runs_over_ssh_and_prints_what_it_says(
    sshd: sshd_tool.Sshd, tmp_path: Path
) -> None:
    code = readme_example()
    assert "host=HOST" in code
    done = run(with_host(code, sshd.host), tmp_path)
    assert done.returncode == 0, done.stderr
    printed = re.search(r"print\(.*\)  # (.*)$", code, re.MULTILINE)
    assert printed is not None
    assert done.stdout == printed[1] + "\n"
    # The master is gone: so are the remote worker, its session and the shared connection.
    assert no_sessions_within(sshd, 30) == []


def test_the_example_really_goes_through_its_host(tmp_path: Path) -> None:
    # The same example aimed at a port nobody listens on fails with ssh's own words: the
    # printed answer above came from a worker reached over ssh, not from a local one.
    with socket.socket() as sock:  # bound, never listening: the port refuses
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        closed = SshHost("nobody@127.0.0.1", port=port, connect_timeout=5000)
        done = run(with_host(readme_example(), closed), tmp_path)
    assert done.returncode != 0
    assert "PeepsySshError" in done.stderr
    assert "Connection refused" in done.stderr


def test_the_page_is_in_the_site_and_the_readme_points_at_it() -> None:
    assert "scaling-out.md" in (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert "blob/main/docs/scaling-out.md" in README


@pytest.mark.parametrize(
    "code",
    re.findall(r"```python\n(.*?)```", PAGE, re.DOTALL),
)
def test_the_page_s_python_blocks_compile(code: str) -> None:
    compile(code, "docs/scaling-out.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


# --- the forced command of "Security" -------------------------------------------------

FORCED = re.compile(r'^ *(restrict,command="[^"]+" ssh-ed25519 AAAA\.\.\. peepsy-master)$', re.M)
WORKER = """\
import os

from peepsy import Child

child = Child("concurrent")


@child.handler("add")
def add(data):
    return data["a"] + data["b"]


@child.handler("env")
def env(name):
    return [os.getcwd(), os.environ.get(name)]


if __name__ == "__main__":
    child.run()
"""


def test_the_forced_command_line_lets_the_master_in_and_runs_only_the_worker(
    tmp_path: Path,
) -> None:
    if not sshd_tool.available():
        pytest.skip(f"no OpenSSH server at {sshd_tool.SSHD} (apt-get install openssh-server)")
    [line] = FORCED.findall(PAGE)
    app = tmp_path / "app"
    app.mkdir()
    (app / "worker.py").write_text(WORKER, encoding="utf-8")
    with sshd_tool.Sshd(tmp_path / "sshd") as server:
        key = (server.dir / "user_key.pub").read_text(encoding="utf-8").strip()
        # The page's line with this test's directory, interpreter and key in it.
        line = line.replace("/srv/app", str(app)).replace(".venv/bin/python", sys.executable)
        (server.dir / "authorized_keys").write_text(
            line.replace("ssh-ed25519 AAAA... peepsy-master", key) + "\n", encoding="utf-8"
        )

        async def go() -> None:
            async with Master(timeout=10_000) as master:
                # Whatever the master asks for, the key runs the worker and nothing else.
                await master.spawn_child("w", ["false"], host=server.host, env={"X": "1"})
                assert (await master.request("add", "w", {"a": 1, "b": 2})).data == 3
                assert (await master.request("env", "w", "X")).data == [str(app), None]

        run_bounded(go())
        assert no_sessions_within(server, 30) == []


def run_bounded(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, LIMIT_S))


# --- the container recipes, with stand-in docker and kubectl ---------------------------

# Each stand-in parses its tool's `exec` the way the tool does for the options the page
# uses, refuses a terminal (-t) and a missing -i, then runs the command in FAKE_ROOT,
# the "container", where /app is FAKE_ROOT/app (its working directory).
STAND_IN = """\
import os
import sys

tool, args = os.path.basename(sys.argv[0]), sys.argv[1:]
assert args.pop(0) == "exec", "not exec"
flags, env, workdir, target = set(), {}, "/app", None
while args:
    arg = args.pop(0)
    if arg == "--":
        break
    if arg in ("-e", "-w", "-c"):
        value = args.pop(0)
        if arg == "-e":
            key, _, val = value.partition("=")
            env[key] = val
        elif arg == "-w":
            workdir = value
        continue
    if arg.startswith("-"):
        flags.update(arg[1:])
        continue
    target = arg
    if tool == "docker":  # docker: the command follows the container, no --
        break
if "t" in flags:  # -t, -it, --tty
    sys.exit(f"{tool}: a terminal would mangle the stream")
if "i" not in flags:
    sys.exit(f"{tool}: without -i, stdin is closed")
if not target or not args:
    sys.exit(f"{tool}: no target or no command")
with open(os.path.join(os.environ["FAKE_ROOT"], tool + ".log"), "a") as log:
    log.write(target + "\\n")
os.chdir(os.environ["FAKE_ROOT"] + workdir)
command = [sys.executable if args[0] == "python" else args[0], *args[1:]]
os.execve(command[0], command, {**os.environ, **env})
"""


def containers_block() -> str:
    [code] = [c for c in re.findall(r"```python\n(.*?)```", PAGE, re.DOTALL) if "docker" in c]
    return str(code)


def test_the_container_recipes_run_as_written_through_stand_ins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir, app = tmp_path / "bin", tmp_path / "app"
    bin_dir.mkdir()
    app.mkdir()
    (app / "worker.py").write_text(WORKER, encoding="utf-8")
    for tool in ("docker", "kubectl"):
        (bin_dir / tool).write_text(f"#!{sys.executable}\n{STAND_IN}", encoding="utf-8")
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ROOT", str(tmp_path))
    # The page's block, and then, inside its `async with`, what this test asks.
    code = containers_block() + (
        "    results.append((await master.request('env', 'in-docker', 'LOG_LEVEL')).data)\n"
        "    results.append((await master.request('add', 'in-k8s', {'a': 1, 'b': 2})).data)\n"
    )
    results: list[object] = []
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    coro = eval(compile(code, "docs/scaling-out.md", "exec", flags=flags), {"results": results})
    run_bounded(coro)
    assert results == [[str(app), "info"], 3]
    assert (tmp_path / "docker.log").read_text() == "workers\n"
    assert (tmp_path / "kubectl.log").read_text() == "deploy/workers\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["docker", "exec", "-it", "workers", "python", "worker.py"],
        ["docker", "exec", "workers", "python", "worker.py"],
        ["kubectl", "exec", "-i", "-t", "deploy/workers", "--", "python", "worker.py"],
    ],
)
def test_the_stand_ins_refuse_a_terminal_and_a_closed_stdin(
    tmp_path: Path, argv: list[str]
) -> None:
    # What the stand-ins hold the page to: they would catch a recipe with -t or no -i.
    stand_in = tmp_path / argv[0]
    stand_in.write_text(STAND_IN, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(stand_in), *argv[1:]],
        env={**os.environ, "FAKE_ROOT": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=LIMIT_S,
        check=False,
    )
    assert done.returncode == 1
    assert "terminal" in done.stderr or "without -i" in done.stderr

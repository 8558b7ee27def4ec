"""The README's scaling-out example works as written, against a real sshd on loopback.

The example names its host on one line, ``HOST = "..."``, and says that a host with a
port, a key or a known_hosts file of its own is an ``SshHost``: that is the one line a
user changes, and the one line this test changes (to the ``SshHost`` of the throwaway
sshd of tools/sshd.py). Everything else runs as printed, from the repository root.
docs/scaling-out.md's own snippets are checked below it.
"""

from __future__ import annotations

import ast
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from peepsy import SshHost
from tests._paths import DOCS, ROOT
from tools import sshd as sshd_tool

README = (ROOT / "README.md").read_text(encoding="utf-8")
PAGE = (DOCS / "scaling-out.md").read_text(encoding="utf-8")
HOST_LINE = re.compile(r'^HOST = "[^"]+"  # .*$', re.MULTILINE)
LIMIT_S = 120


def readme_example() -> str:
    section = README.split("\n## Scaling out\n", 1)[1].split("\n## ", 1)[0]
    [code] = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    return code


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

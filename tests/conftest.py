from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from peepsy.testing import WireSnapshotExtension
from tests._install import build_dist


def pytest_configure(config: pytest.Config) -> None:
    # --maxprocesses (4, in pyproject.toml) caps an explicit -n as well: `-n 6` starts
    # four workers. syrupy counts the workers it should hear from in -n, so it would wait
    # for six reports, get four, and warn, which filterwarnings makes an error after every
    # test has passed. Stating the count that really runs keeps the two in agreement.
    count, cap = (
        getattr(config.option, "numprocesses", None),
        config.getoption("maxprocesses", None),
    )
    if isinstance(count, int) and isinstance(cap, int) and 0 < cap < count:
        config.option.numprocesses = cap


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The sdist and the wheel of ``python -m build``, built once for every test that
    installs peepsy as a user would (tests/_install.py)."""
    return build_dist(tmp_path_factory.mktemp("dist"))


@pytest.fixture
def wire(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """``assert line == wire``: compares exact bytes with a stored ``.ndjson`` file, with
    the extension a third party uses (peepsy.testing)."""
    return snapshot.use_extension(WireSnapshotExtension)


#: The test that waits for an idle minute of a Node worker (tests/node/idle_minute.py).
IDLE_MINUTE_TEST = (
    "tests/node/test_node_interop.py::test_an_idle_node_worker_is_alive_and_serving_after_a_minute"
)


@pytest.fixture(scope="session", autouse=True)
def idle_node_minute(request: pytest.FixtureRequest) -> Iterator[subprocess.Popen[str] | None]:
    """The idle minute starts with the session when its test is selected, in a process
    of its own, and its test collects the verdict: the minute passes while the rest runs.
    A session that ends first (a run stopped early) kills it rather than waiting."""
    if not any(item.nodeid == IDLE_MINUTE_TEST for item in request.session.items):
        yield None
        return
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.node.idle_minute"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()

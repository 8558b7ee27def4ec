"""A real OpenSSH server on loopback for the tests here, one per module (starting one
takes a key generation and a fork; the tests share it and never leave it changed).

Skipped, with the reason, only when this machine has no ``/usr/sbin/sshd``: CI installs
Debian's openssh-server, so there the tests always run.
"""

from __future__ import annotations

import gc
from collections.abc import Generator, Iterator

import pytest

from tools import sshd as sshd_tool


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sshd_tool.Sshd]:
    if not sshd_tool.available():
        pytest.skip(f"no OpenSSH server at {sshd_tool.SSHD} (apt-get install openssh-server)")
    with sshd_tool.Sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, object, object]:
    """As in tests/process: collect what a test left while it is still the one blamed."""
    try:
        return (yield)
    finally:
        gc.collect()

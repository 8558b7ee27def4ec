"""The fixtures that start workers for a project's own tests, and the sync harness
behind them, with a real worker (conformance/workers/python_worker.py)."""

from __future__ import annotations

import sys

import pytest

from peepsy import RemoteError
from peepsy.testing import WorkerHarness
from tests.plugin._support import PYTHON_WORKER, command, plugin_args

pytest_plugins = ["pytester"]

WORKER = [sys.executable, str(PYTHON_WORKER)]


def test_the_factory_fixture_starts_a_worker_and_a_request_round_trips(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        f"""
        import pytest
        from peepsy import PeepsyError

        WORKER = {WORKER!r}

        def test_echo(peepsy_worker_factory):
            worker = peepsy_worker_factory(WORKER)
            assert worker.request("echo", {{"a": [1, 2]}}).data == {{"a": [1, 2]}}

        def test_two_workers_and_a_typed_error(peepsy_worker_factory, peepsy_master):
            one, two = peepsy_worker_factory(WORKER), peepsy_worker_factory(WORKER, "two")
            assert (one.name, two.name) == ("worker1", "two")
            with pytest.raises(PeepsyError):
                two.request("fail", {{"message": "no"}})
            assert peepsy_master.run(peepsy_master.master.request("echo", "worker1", 5)).data == 5
        """
    )
    result = pytester.runpytest(*plugin_args())
    result.assert_outcomes(passed=2)


def test_the_worker_fixture_starts_the_configured_worker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_echo(peepsy_worker):
            assert peepsy_worker.request("echo", "hi").data == "hi"
        """
    )
    result = pytester.runpytest(
        *plugin_args(), "--peepsy-worker", command(PYTHON_WORKER), "--peepsy-no-conformance"
    )
    result.assert_outcomes(passed=1)


def test_the_worker_fixture_without_a_worker_says_what_is_missing(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile("def test_echo(peepsy_worker):\n    pass\n")
    result = pytester.runpytest(*plugin_args())
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*needs --peepsy-worker or peepsy_worker in the ini*"])


def test_the_harness_spawns_requests_and_stops() -> None:
    with WorkerHarness(limit=30) as harness:
        worker = harness.spawn(WORKER)
        assert worker.request("echo", [1, "x"]).data == [1, "x"]
        with pytest.raises(RemoteError, match="No handler"):
            worker.request("no-such-action")
        assert worker.stop() == 0
    harness.close()  # twice is harmless


def test_a_harness_that_started_nothing_closes() -> None:
    WorkerHarness().close()


def test_the_harness_bounds_every_wait() -> None:
    with WorkerHarness() as harness:
        worker = harness.spawn(WORKER, mode="sequential")
        harness.limit = 0.2  # a hang of the test, not of the worker: it sleeps 1.5 s
        with pytest.raises(TimeoutError):
            worker.request("sleep", 1500)


def test_a_recording_needs_record() -> None:
    with WorkerHarness() as harness:
        worker = harness.spawn(" ".join(map(str, WORKER)))  # a string is split like a shell
        with pytest.raises(RuntimeError, match="was not spawned with record=True"):
            worker.recording()

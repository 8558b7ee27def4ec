"""Testing with peepsy: helpers for a project's own tests of its workers.

- :class:`WorkerHarness` and :class:`Worker`: a master for plain (sync) tests, behind
  the pytest fixtures ``peepsy_master``, ``peepsy_worker_factory`` and ``peepsy_worker``;
- :class:`WireRecording`, :func:`tap_command` and :func:`mask_message`: what a worker
  wrote, with what differs from run to run masked, for snapshot tests;
- :class:`WireSnapshotExtension`: syrupy's extension for them (needs syrupy);
- :class:`ConformanceWarning`: what a SHOULD check the worker misses raises in pytest.

The pytest plugin itself is ``peepsy.pytest_plugin``; the guide is docs/testing.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from peepsy.testing._harness import Worker, WorkerHarness
from peepsy.testing._recording import WireRecording, mask_message, tap_command

if TYPE_CHECKING:
    from peepsy.testing._snapshot import WireSnapshotExtension

__all__ = [
    "ConformanceWarning",
    "WireRecording",
    "WireSnapshotExtension",
    "Worker",
    "WorkerHarness",
    "mask_message",
    "tap_command",
]


class ConformanceWarning(UserWarning):
    """A SHOULD check the worker does not meet (verdict ``warn``): its pytest item
    passes with this warning. ``-W error::peepsy.testing.ConformanceWarning`` (or a
    ``filterwarnings`` entry) makes such checks fail."""


def __getattr__(name: str) -> Any:
    # syrupy is optional: imported when the extension is asked for, not with the module.
    if name == "WireSnapshotExtension":
        from peepsy.testing._snapshot import WireSnapshotExtension  # noqa: PLC0415

        return WireSnapshotExtension
    raise AttributeError(f"module 'peepsy.testing' has no attribute {name!r}")

"""Checks that hold in every master test."""

from __future__ import annotations

import pytest

from peepsy.master._groups import Group
from peepsy.master._worker import Worker


def _in_rotation(worker: Worker) -> bool:
    """What :attr:`Worker.available` means, computed afresh."""
    return (
        worker.status == "running"
        and worker.ready
        and not worker.stalled
        and not worker.cancels.held
    )


@pytest.fixture(autouse=True)
def _availability_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker keeps ``available`` as an attribute, updated where its parts change,
    for the least-busy scan's sake: every pick in every test checks that the kept value
    is what a fresh computation says, for each member."""
    pick = Group.pick_or_none

    def checked(group: Group) -> Worker | None:
        for worker in group.members:
            assert worker.available == _in_rotation(worker), (worker.target, worker.status)
        return pick(group)

    monkeypatch.setattr(Group, "pick_or_none", checked)

from __future__ import annotations

import pytest
from syrupy.assertion import SnapshotAssertion

from tests.snapshot_ext import WireSnapshotExtension


@pytest.fixture
def wire(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """``assert line == wire``: compares exact bytes with a stored ``.ndjson`` file."""
    return snapshot.use_extension(WireSnapshotExtension)

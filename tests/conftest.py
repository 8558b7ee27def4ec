from __future__ import annotations

import pytest
from syrupy.assertion import SnapshotAssertion

from peepsy.testing import WireSnapshotExtension


@pytest.fixture
def wire(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """``assert line == wire``: compares exact bytes with a stored ``.ndjson`` file, with
    the extension a third party uses (peepsy.testing)."""
    return snapshot.use_extension(WireSnapshotExtension)

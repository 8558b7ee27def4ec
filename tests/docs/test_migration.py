"""The migration guide's Python compiles, and it names every Node API it maps."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEXT = (ROOT / "docs" / "migration.md").read_text(encoding="utf-8")


def test_python_blocks_compile() -> None:
    blocks = re.findall(r"```python\n(.*?)```", TEXT, re.DOTALL)
    assert blocks
    for block in blocks:
        compile(block, "docs/migration.md", "exec")


def test_every_node_method_of_the_seed_readme_is_mapped() -> None:
    for name in (
        "spawnChild",
        "sendRequest",
        "registerHandler",
        "shutdownChild",
        "gracefulShutdown",
        "getProcessStats",
        "getGroupStats",
        "isProcessAlive",
        "getRequestsHandled",
        "getQueueSize",
        "isActive",
        "configureGroup",
        "getUnhealthyProcesses",
        "getActiveRequestsCount",
    ):
        assert name in TEXT, name

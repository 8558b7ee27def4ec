"""What the plugin's tests share: how to load the plugin in pytester's runs, and the
workers they check."""

from __future__ import annotations

import importlib.metadata
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MUTANT = ROOT / "conformance" / "mutants" / "mutant.py"
PYTHON_WORKER = ROOT / "conformance" / "workers" / "python_worker.py"


def plugin_args() -> list[str]:
    """``-p peepsy.pytest_plugin`` unless the installed package's entry point loads it
    already (registering the module twice is an error)."""
    names = {e.name for e in importlib.metadata.entry_points(group="pytest11")}
    return [] if "peepsy" in names else ["-p", "peepsy.pytest_plugin"]


def command(*argv: str | Path) -> str:
    """A worker command line, as --peepsy-worker and the ini option take it."""
    return shlex.join([sys.executable, *map(str, argv)])

"""The expected-failures list of the Node peepsy 1.0.1 worker model, made from a real run.

``tests/node/node-worker-expected-failures.txt`` says which conformance checks the model
(``tests/node/peepsy_1_0_1_worker.js``) fails over Node's IPC channel, one check id a
line, each with a ``#`` comment naming the fact (shared/reference/node-peepsy-wire-facts.md)
that makes it fail. This module runs the suite against the model and writes that list::

    python -m tests.node.expected_failures            # compare: exit 1 and a diff if stale
    python -m tests.node.expected_failures --write    # rewrite the file from the run

A rewrite keeps the comment of every id the file already lists and marks a new id with
``PLACEHOLDER``, for a person to replace with the fact that explains it (the test refuses
placeholders). ``tests/node/test_expected_failures.py`` runs the same comparison.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MODEL = HERE / "peepsy_1_0_1_worker.js"
LIST = HERE / "node-worker-expected-failures.txt"
#: The verdicts that --expected-failures tolerates for a listed check (and so the ones a
#: listed check must have); a listed check that passes is STALE and fails the run.
FAILING_VERDICTS = frozenset({"fail", "warn", "error", "timeout"})
PLACEHOLDER = "TODO: name the fact that makes it fail"
COMMAND = "python -m tests.node.expected_failures --write"

HEADER = f"""\
# Conformance checks that a Node peepsy 1.0.1 worker fails, run as it is over Node's IPC
# channel (python -m peepsy.conformance --transport node-ipc -- node worker.js), as the
# model tests/node/peepsy_1_0_1_worker.js shows them. Each reason names the fact of
# shared/reference/node-peepsy-wire-facts.md that makes the check fail.
# Generated from a run of the suite; to update it: {COMMAND}
"""

_ENTRY = re.compile(r"^\s*([^\s#]+)\s*(?:#\s*(.*?))?\s*$")


@dataclass(frozen=True, slots=True)
class Run:
    """One run of the suite against the model, with --expected-failures LIST."""

    returncode: int
    output: str
    report: dict[str, Any]

    @property
    def verdicts(self) -> dict[str, str]:
        return {c["check"]: c["verdict"] for c in self.report["checks"]}

    def failing(self) -> list[str]:
        return sorted(check for check, v in self.verdicts.items() if v in FAILING_VERDICTS)


def suite_command(node: str, report: Path, expected_failures: Path | None) -> list[str]:
    listed = ["--expected-failures", str(expected_failures)] if expected_failures else []
    return [
        sys.executable, "-m", "peepsy.conformance", "--quiet", "--transport", "node-ipc",
        *listed, "--json", str(report), "--", node, str(MODEL),
    ]  # fmt: skip


def run_suite(node: str, expected_failures: Path | None = LIST, timeout: float = 600) -> Run:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        out = subprocess.run(
            suite_command(node, report, expected_failures),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=ROOT,
        )
        if not report.exists():
            raise RuntimeError(f"the suite wrote no report (exit {out.returncode}):\n{out.stderr}")
        data = json.loads(report.read_text(encoding="utf-8"))
    return Run(out.returncode, out.stdout + out.stderr, data)


def read_reasons(text: str) -> dict[str, str]:
    """Each listed id with its ``#`` comment ("" when it has none)."""
    reasons = {}
    for line in text.splitlines():
        match = _ENTRY.match(line)
        if match:
            reasons[match[1]] = match[2] or ""
    return reasons


def render(failing: Iterable[str], reasons: Mapping[str, str]) -> str:
    """The file for these failing ids: sorted, each with its reason (kept) or PLACEHOLDER."""
    ids = sorted(set(failing))
    width = max((len(i) for i in ids), default=0)
    lines = [f"{i:<{width}}  # {reasons.get(i) or PLACEHOLDER}" for i in ids]
    return HEADER + "".join(line + "\n" for line in lines)


def diff(current: str, wanted: str) -> str:
    return "".join(
        difflib.unified_diff(
            current.splitlines(keepends=True),
            wanted.splitlines(keepends=True),
            f"{LIST.name} (committed)",
            f"{LIST.name} (from this run)",
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.node.expected_failures",
        description="Run the conformance suite against the Node peepsy 1.0.1 worker model"
        f" and compare {LIST.name} with what fails (--write: rewrite it).",
    )
    parser.add_argument("--write", action="store_true", help=f"rewrite {LIST.name}")
    args = parser.parse_args(argv)
    node = shutil.which("node")
    if node is None:
        print("needs Node.js (node on PATH)", file=sys.stderr)
        return 2
    current = LIST.read_text(encoding="utf-8") if LIST.exists() else ""
    run = run_suite(node, LIST if LIST.exists() else None)
    wanted = render(run.failing(), read_reasons(current))
    if args.write:
        LIST.write_text(wanted, encoding="utf-8")
        todo = [i for i, reason in read_reasons(wanted).items() if reason == PLACEHOLDER]
        print(f"wrote {LIST} ({len(run.failing())} checks)")
        for check in todo:
            print(f"  {check}: new; replace its {PLACEHOLDER!r} with the fact behind it")
        return 0
    if current == wanted:
        print(f"{LIST.name} is up to date ({len(run.failing())} checks)")
        return 0
    print(diff(current, wanted) + f"\nout of date; to update it: {COMMAND}")
    return 1


if __name__ == "__main__":
    sys.exit(main())

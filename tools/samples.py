"""The sample outputs the docs show come from real runs, and are held true.

A sample is a fenced block of output in a doc, marked by an HTML comment on the line
before it, ``<!-- sample: NAME -->``, and registered below with the command that
produces it (or, for the benchmark, the data it is rendered from)::

    python -m tools.samples            # run every sample, rewrite the blocks that drifted
    python -m tools.samples --check    # exit 1, with a diff, if any block drifted
    python -m tools.samples reference  # only these samples

tests/docs/test_samples.py runs the same comparison. A block is rewritten only when it
differs from the real output beyond what varies from run to run, so re-running this
leaves the docs alone when nothing changed. What varies is masked, and only that
(:data:`MASKS`): check durations, the ``[done/total]`` counter's *done* (with ``-j``
checks finish in any order, so the order of the progress lines is free too), and a
child's pid and timestamps. Everything else, totals and verdict counts included, must
match exactly.

A sample may be shortened: ``progress`` names the check lines it keeps, ``drop`` the
other lines it leaves out; each run of left-out lines is shown as one ``...`` line.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ELLIPSIS = "..."
#: A check's progress line: ``[ 17/90] PASS  cancel.queued-never-runs  CANCEL-3 ... 2867 ms``.
PROGRESS = re.compile(r"^\[ *\d+/\d+\] +\S+ +(?P<check>\S+)")
BLOCK = r"<!-- sample: {name} -->\n```(?P<lang>\w*)\n(?P<body>.*?)^```$"
#: What varies from run to run, and nothing else: each pattern and what it becomes.
MASKS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r" +\d+ ms$"), " N ms"),  # a check's duration (right-aligned)
    (re.compile(r"^\[ *\d+/"), "[N/"),  # how many checks had finished (their order is free)
    (re.compile(r'"pid":\d+'), '"pid":N'),
    (re.compile(r'"timestamp":\d+'), '"timestamp":N'),
)
#: Applied to the real output before it is shown: where the package is installed.
DISPLAY: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\S*/conformance/transcripts/"), ".../conformance/transcripts/"),
    (re.compile(r"\S*/conformance/master/"), ".../conformance/master/"),
)
#: The summary's verdict table (drop all of it, or all but one row).
TABLE = (r"^\+-", r"^\| ")


@dataclass(frozen=True)
class Sample:
    """One sample block: where it is, what produces it, what it shows of that."""

    name: str
    doc: str
    #: The command, run from the repository's root, or from a scratch folder holding
    #: ``files`` (``python`` is this interpreter, first on the PATH too); empty when
    #: ``render`` makes the text instead.
    argv: tuple[str, ...] = ()
    status: int = 0
    #: Check ids whose progress lines are shown; None: every progress line.
    progress: frozenset[str] | None = None
    #: Patterns of the other lines left out.
    drop: tuple[str, ...] = ()
    #: A program that must be on the PATH (the sample is skipped without it).
    requires: str | None = None
    #: The block opens with this line (a ``$ command`` prompt), kept as it is.
    prompt: str | None = None
    #: Files copied into a scratch folder, where the command then runs: (source, name).
    files: tuple[tuple[str, str], ...] = ()
    render: Callable[[], str] | None = field(default=None, compare=False)


def _benchmark_table() -> str:
    # Not re-run (it takes minutes and its numbers are the machine's): the table is
    # rendered again from the run's JSON, which the page links, by the benchmark's code.
    from benchmarks import report  # noqa: PLC0415  (only this sample needs it)

    result = json.loads((ROOT / "docs" / "performance-run.json").read_text(encoding="utf-8"))
    return report.table(result)


def _fanout_table() -> str:
    # As for the benchmark: rendered again from the run's JSON by the benchmark's code.
    from benchmarks import fanout  # noqa: PLC0415  (only this sample needs it)

    run = json.loads((ROOT / "docs" / "performance-fanout.json").read_text(encoding="utf-8"))
    return fanout.table(run)


def _ssh_table() -> str:
    # As for the benchmark: rendered again from the run's JSON by the benchmark's code.
    from benchmarks import ssh  # noqa: PLC0415  (only this sample needs it)

    run = json.loads((ROOT / "docs" / "performance-ssh.json").read_text(encoding="utf-8"))
    return ssh.table(run)


CONFORMANCE = ("python", "-m", "peepsy.conformance")
DEAD = 'import sys; print("starting"); sys.exit("fatal: no config file at /etc/w.conf")'
NO_400 = ("conformance/mutants/mutant.py", "--mutation", "no-400")
FIRST_WORKER = (
    """echo '{"type":"REQUEST","id":"1","action":"add","data":{"a":1,"b":2}}' | python worker.py"""
)
MASTER_FAULT = (
    "python -m peepsy.conformance master --check 'm.death.*'"
    " -- node conformance/examples/master-node/harness.js"
)
SAMPLES: tuple[Sample, ...] = (
    Sample(
        "reference",
        "docs/conformance.md",
        (*CONFORMANCE, "--", "python", "conformance/workers/python_worker.py"),
        progress=frozenset(
            {
                "cancel.concurrent-queued-never-runs",
                "cancel.running-stops",
                "cancel.queued-never-runs",
                "frame.blank-lines-ignored",
                "profile.queue-expiry-default-5000",
                "resp.unknown-action",
                "profile.echo",
                "msg.integers-without-fraction",
                "resp.no-stack-by-default",
            }
        ),
    ),
    Sample(
        "no-priority",
        "docs/conformance.md",
        (
            *CONFORMANCE,
            "--",
            "python",
            "conformance/mutants/mutant.py",
            "--mutation",
            "no-priority",
        ),
        status=1,
        progress=frozenset({"profile.sequential-priority"}),
        drop=TABLE,
    ),
    Sample(
        "dead",
        "docs/conformance.md",
        (*CONFORMANCE, "--", "python", "-c", DEAD),
        status=1,
        drop=(r"^\+-", r"^\| (?!not-run)"),
    ),
    Sample(
        "node-1.0-levels",
        "docs/conformance.md",
        (
            *CONFORMANCE,
            "--transport",
            "node-ipc",
            "--",
            "node",
            "tests/node/peepsy_1_0_1_worker.js",
        ),
        status=1,
        progress=frozenset(),
        drop=(r"^(?!levels:)",),
        requires="node",
    ),
    Sample(
        "master-fault",
        "docs/conformance.md",
        ("sh", "-c", f"PEEPSY_EXAMPLE_FAULT=no-fail-fast {MASTER_FAULT}"),
        status=1,
        requires="node",
        prompt=f"$ PEEPSY_EXAMPLE_FAULT=no-fail-fast {MASTER_FAULT}",
    ),
    Sample(
        "fuzz",
        "docs/conformance.md",
        (*CONFORMANCE, "--fuzz", "150", "--seed", "7", "--", "python", *NO_400),
        status=1,
        drop=TABLE,
    ),
    Sample(
        "first-worker",
        "docs/guide.md",
        ("sh", "-c", FIRST_WORKER),
        prompt=f"$ {FIRST_WORKER}",
        files=(("examples/worker.py", "worker.py"),),
    ),
    Sample("benchmark", "docs/performance.md", render=_benchmark_table),
    Sample("fanout-benchmark", "docs/performance.md", render=_fanout_table),
    Sample("ssh-benchmark", "docs/performance.md", render=_ssh_table),
    Sample("ssh-benchmark-page", "docs/scaling-out.md", render=_ssh_table),
)


def run(sample: Sample) -> str:
    """The sample's real output (stdout), as the doc would show it in full."""
    if sample.render is not None:
        return sample.render()
    python = Path(sys.executable).parent
    env = dict(os.environ, COLUMNS="100", NO_COLOR="1")
    env["PATH"] = str(python) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    argv = [sys.executable if a == "python" and i == 0 else a for i, a in enumerate(sample.argv)]
    with tempfile.TemporaryDirectory(prefix="peepsy-sample-") as scratch:
        for source, name in sample.files:
            shutil.copy(ROOT / source, Path(scratch) / name)
        done = subprocess.run(
            argv,
            cwd=scratch if sample.files else ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    if done.returncode != sample.status:
        raise SampleError(
            f"{sample.name}: exit status {done.returncode}, not {sample.status}:\n"
            + done.stdout
            + done.stderr
        )
    return done.stdout


class SampleError(RuntimeError):
    """A sample's command did not end as registered."""


def shown(sample: Sample, output: str) -> str:
    """What the doc shows of ``output``: its chosen lines, each gap one ``...``."""
    lines: list[str] = []
    for raw in output.splitlines():
        line = raw
        for pattern, replacement in DISPLAY:
            line = pattern.sub(replacement, line)
        if _kept(sample, line):
            lines.append(line.rstrip())
        elif not lines or lines[-1] != ELLIPSIS:
            lines.append(ELLIPSIS)
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    if sample.prompt is not None:
        lines.insert(0, sample.prompt)
    return "\n".join(lines) + "\n"


def _kept(sample: Sample, line: str) -> bool:
    progress = PROGRESS.match(line)
    if progress is not None:
        return sample.progress is None or progress["check"] in sample.progress
    return not any(re.search(pattern, line) for pattern in sample.drop)


def canonical(text: str) -> list[str]:
    """``text`` up to what varies between runs: masked, progress lines in sorted order
    (the ``...`` between them dropped, since where the gaps fall depends on the order)."""
    lines = text.splitlines()
    masked = [_masked(line) for line in lines]
    marks = [i for i, line in enumerate(lines) if PROGRESS.match(line)]
    if not marks:
        return masked
    first = next(i for i, line in enumerate(lines) if i in marks or line == ELLIPSIS)
    last = marks[-1]
    while last + 1 < len(lines) and lines[last + 1] == ELLIPSIS:
        last += 1
    return [*masked[:first], *sorted(masked[i] for i in marks), *masked[last + 1 :]]


def _masked(line: str) -> str:
    for pattern, replacement in MASKS:
        line = pattern.sub(replacement, line)
    return line


def block(sample: Sample, text: str | None = None) -> re.Match[str]:
    """The sample's block in its doc."""
    if text is None:
        text = (ROOT / sample.doc).read_text(encoding="utf-8")
    found = re.search(BLOCK.format(name=re.escape(sample.name)), text, re.DOTALL | re.MULTILINE)
    if found is None:
        raise SampleError(f"{sample.doc} has no block marked <!-- sample: {sample.name} -->")
    return found


def drift(sample: Sample, real: str) -> list[str]:
    """A diff of the doc's block against ``real`` (what it would show now), up to the
    masks; empty when the block is true."""
    old = block(sample)["body"]
    new = shown(sample, real)
    if canonical(old) == canonical(new):
        return []
    return list(
        difflib.unified_diff(
            old.splitlines(), new.splitlines(), f"{sample.doc} (shown)", "real run", lineterm=""
        )
    )


def rewrite(sample: Sample, real: str) -> None:
    """Put ``real``'s shown lines in the sample's block."""
    path = ROOT / sample.doc
    text = path.read_text(encoding="utf-8")
    found = block(sample, text)
    text = text[: found.start("body")] + shown(sample, real) + text[found.end("body") :]
    path.write_text(text, encoding="utf-8")


def available(sample: Sample) -> bool:
    """Whether the sample can run here (its ``requires`` program is on the PATH)."""
    return sample.requires is None or shutil.which(sample.requires) is not None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.samples", description=__doc__)
    parser.add_argument("names", nargs="*", help="samples to run (default: all)")
    parser.add_argument("--check", action="store_true", help="report drift, change nothing")
    args = parser.parse_args(argv)
    known = {s.name: s for s in SAMPLES}
    unknown = [n for n in args.names if n not in known]
    if unknown:
        parser.error(f"no such sample: {', '.join(unknown)} (known: {', '.join(known)})")
    stale = 0
    for sample in [known[n] for n in args.names] or list(SAMPLES):
        if not available(sample):
            print(f"{sample.name}: skipped, {sample.requires} is not on the PATH")
            continue
        real = run(sample)
        diff = drift(sample, real)
        if not diff:
            print(f"{sample.name}: up to date")
            continue
        stale += 1
        if args.check:
            print(f"{sample.name}: drifted", *diff, sep="\n")
        else:
            rewrite(sample, real)
            print(f"{sample.name}: rewritten in {sample.doc}")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())

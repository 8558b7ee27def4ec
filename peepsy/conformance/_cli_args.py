"""The command line's arguments: the parsers of the three commands (the suite, ``record``
and ``generalize``) and the checks of the suite's settings and selection, refused with
exit status 2 before any worker starts. Apart from ``__main__.py``, which runs what the
arguments ask for, so that the long option tables do not hide the order of a run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from peepsy.conformance._checks import GLOBAL_CHECKS
from peepsy.conformance._fuzz_oracle import WAIVABLE
from peepsy.conformance._suite import load_all, selected
from peepsy.conformance._transcript import LEVELS


def default_jobs() -> int:
    """Checks mostly wait on the worker's timers, not on a CPU, so several per core keep
    the cores busy: on 2 cores the bundled worker's run took 19.8 s at -j 2, 12.4 s at
    -j 4 and 9.9 s at -j 8, and passed at -j 8 beside two CPU hogs. The cap keeps a big
    machine from starting dozens of workers at once."""
    return min(16, 4 * (os.cpu_count() or 1))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m peepsy.conformance",
        description="Check that a worker speaks the peepsy protocol (docs/protocol.md).",
        epilog="Example: python -m peepsy.conformance -- node my_worker.js. To record a"
        " master and a worker as a transcript: python -m peepsy.conformance record --help;"
        " to turn a raw recording into one: python -m peepsy.conformance generalize --help."
        " Exit status: 0 passed, 1 a check failed, 2 the suite could not run,"
        " 130 stopped by Ctrl-C (SIGINT; the reports then hold what finished).",
    )
    p.add_argument("command", nargs="*", help="the worker command and its arguments (after --)")
    p.add_argument("--list", action="store_true", help="list the checks and exit")
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="PATTERN",
        help="run only checks matching (glob; repeatable)",
    )
    p.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="PATTERN",
        help="skip checks matching (glob; repeatable)",
    )
    p.add_argument(
        "--mode",
        choices=["sequential", "concurrent"],
        help="the worker's mode (default: from READY, else sequential)",
    )
    p.add_argument(
        "--transport",
        choices=["stdio", "node-ipc"],
        default="stdio",
        help="stdio: the protocol on the worker's stdin/stdout (default); node-ipc: on "
        "Node's IPC channel, as child_process.fork gives it (Node peepsy workers as they are)",
    )
    p.add_argument(
        "--level",
        choices=["auto", "core", "profile", "cancel"],
        default="auto",
        help="the highest level to run, even when the probe says the worker does not offer"
        " it: core: no actions needed; profile: echo, fail, sleep, callMaster; cancel: the"
        " profile and CANCEL (protocol 1.1) (default: each level the probe finds)",
    )
    p.add_argument(
        "--transcripts",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help="more transcripts to run: a directory (every *.ndjson under it) or a file; repeatable",
    )
    p.add_argument("--no-builtin", action="store_true", help="run only the --transcripts given")
    p.add_argument(
        "--expected-failures",
        type=Path,
        metavar="FILE",
        help="check ids expected to fail, one per line (# comments); a listed check that"
        " fails is tolerated, one that passes is STALE and fails the run",
    )
    p.add_argument("--junit", type=Path, metavar="FILE", help="write a JUnit XML report")
    p.add_argument(
        "--json",
        type=Path,
        metavar="FILE",
        help="write a JSON report (conformance/report.schema.json)",
    )
    p.add_argument("--trace", action="store_true", help="show the wire log of each failed check")
    p.add_argument(
        "--timeout-scale",
        type=float,
        default=1.0,
        help="multiply every case budget (slow machines)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour the output: auto (a terminal, unless NO_COLOR is set; FORCE_COLOR"
        " forces it), always or never",
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=default_jobs(),
        metavar="N",
        help="run N checks at once, each with its own worker (default: four per core, at"
        " most 16: %(default)s here)",
    )
    _fuzz_options(p)
    return p


def _fuzz_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("fuzzing (docs/conformance.md, Fuzzing)")
    g.add_argument(
        "--fuzz",
        type=_examples,
        metavar="N",
        help="instead of the checks: send N generated and mutated lines to one worker"
        " process and judge every answer by id (one check, fuzz.envelopes)",
    )
    g.add_argument(
        "--seed",
        type=int,
        metavar="S",
        help="with --fuzz: the seed (default: a random one, printed); a seed sends the"
        " same lines again",
    )
    g.add_argument(
        "--fuzz-waive",
        action="append",
        default=[],
        choices=WAIVABLE,
        metavar="RULE",
        help=f"with --fuzz: send no line whose verdict rests on RULE ({', '.join(WAIVABLE)}:"
        " rules issue 8 added), for a worker known not to follow it yet; repeatable",
    )


def _examples(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"N is at least 1, not {count}")
    return count


def _header_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("the transcript's header (edit it afterwards in any case)")
    g.add_argument("--check", help="check id (default: recorded.NAME, from the output file)")
    g.add_argument(
        "--requirement",
        action="append",
        default=[],
        metavar="ID",
        help="requirement id of docs/protocol.md it checks (repeatable; default RESP-1)",
    )
    g.add_argument("--description", help="what it checks")
    g.add_argument("--level", choices=list(LEVELS), help="core, profile or cancel")
    g.add_argument(
        "--mode",
        choices=["any", "sequential", "concurrent"],
        help="the worker mode it needs (default: INIT's mode when the master had two"
        " requests out at once, else any)",
    )
    g.add_argument("--recorded", metavar="TEXT", help='the header\'s "recorded" text')
    g.add_argument(
        "--exact",
        action="store_true",
        help='expect data objects exactly ("$exact": true): no member more',
    )


def record_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m peepsy.conformance record",
        description="A tap: run it in place of a worker. It runs COMMAND, relays stdin and"
        " stdout byte for byte, and writes what crossed the pipe as a transcript.",
        epilog="Example: master spawns `python -m peepsy.conformance record -o add.ndjson --"
        " python worker.py` instead of `python worker.py`.",
    )
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE")
    p.add_argument("--raw", action="store_true", help="write the raw recording, not a transcript")
    _header_options(p)
    p.add_argument("command", nargs="+", help="the worker command and its arguments (after --)")
    return p


def generalize_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m peepsy.conformance generalize",
        description="Turn a raw recording (record --raw) into a transcript.",
    )
    p.add_argument("recording", type=Path, help="the raw recording")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        metavar="FILE",
        help="the transcript; - for stdout",
    )
    _header_options(p)
    return p


def _check_settings(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Settings no run can honour: refused (exit 2) before any worker starts."""
    if not math.isfinite(args.timeout_scale) or args.timeout_scale <= 0:
        p.error(f"--timeout-scale must be a finite number above 0, not {args.timeout_scale}")
    if args.jobs < 1:
        p.error(f"-j/--jobs must be 1 or more, not {args.jobs}")
    for flag, path in (("--json", args.json), ("--junit", args.junit)):
        if path is None:
            continue
        # Made now, so that a run of minutes does not end in "cannot write the report".
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            p.error(f"{flag} {path}: cannot create its folder: {exc}")
        if path.is_dir():
            p.error(f"{flag} {path}: is a folder")
        if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            p.error(f"{flag} {path}: not writable")


def _check_selection(
    p: argparse.ArgumentParser, args: argparse.Namespace, dirs: list[Path]
) -> None:
    """A selection that leaves nothing to run is a mistake (a typo in a glob, say): exit 2,
    rather than a green run that checked nothing."""
    chosen = [t for t in load_all(dirs) if selected(t.check, args.only, args.skip)]
    ladder = list(LEVELS)
    top = ladder.index(args.level) if args.level in ladder else len(ladder)
    runnable = [t for t in chosen if ladder.index(t.level) <= top]
    if runnable:
        return
    what = " ".join(
        [f"--only {o!r}" for o in args.only]
        + [f"--skip {s!r}" for s in args.skip]
        + ([f"--level {args.level}"] if args.level != "auto" else [])
    )
    if chosen:
        above = " and ".join(level for level in ladder if any(t.level == level for t in chosen))
        p.error(
            f"the selection ({what}) leaves only {above} checks,"
            f" and --level {args.level} skips them"
        )
    if any(selected(g.check, args.only, args.skip) for g in GLOBAL_CHECKS):
        p.error(
            f"the selection ({what or 'no transcripts'}) matches only checks over every run;"
            " they judge what the other checks' runs wrote, so select some of those too"
        )
    p.error(f"the selection ({what or 'no transcripts'}) matches no check (see --list)")


#: Lone surrogates are data the cases send on purpose (FRAME-9) and so can be in a
#: report or a printed case; no UTF-8 text can hold them raw, so they keep their escape.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def readable_json(value: Any, indent: int | None = None) -> str:
    """JSON text as people read it (non-ASCII characters as they are), still valid UTF-8."""
    text = json.dumps(value, indent=indent, ensure_ascii=False)
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def write_reports(
    prog: str,
    json_path: Path | None,
    report: Callable[[], dict[str, Any]],
    junit_path: Path | None,
    junit: Callable[[], bytes],
) -> bool:
    """Write the reports asked for (``--json``, ``--junit``); False, once the reason is
    on stderr, when one cannot be written (exit status 2)."""
    try:
        if json_path:
            text = readable_json(report(), indent=2)
            json_path.write_text(text + "\n", encoding="utf-8")
        if junit_path:
            junit_path.write_bytes(junit())
    except OSError as exc:
        print(f"{prog}: cannot write the report: {exc}", file=sys.stderr)
        return False
    return True

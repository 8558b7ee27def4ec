"""Record the conformance suite's profile transcripts, and the ``--transcripts`` example.

    python -m tools.record_transcripts                  # every scenario, into build/recordings/
    python -m tools.record_transcripts --out DIR --only 'profile.sequential-*'

Each scenario runs the reference master (``peepsy.Master``) against the reference worker
(``conformance/workers/python_worker.py``, or ``examples/worker.py`` for the example)
through the tap, ``python -m peepsy.conformance record --raw``, which the master spawns
in place of the worker. The raw recording goes to ``DIR/CHECK.raw.jsonl`` and the
generalized draft to ``DIR/CHECK.ndjson``.

The drafts are not the committed transcripts: a person reviews each one against the
check it is for, makes the matchers say what the requirement says (and no more), and
commits it under ``conformance/transcripts/profile/`` (or ``conformance/examples/``).
``conformance/README.md`` ("Recording") says what was edited in each.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import fnmatch
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from peepsy import Master, PeepsyError, RemoteError
from peepsy.conformance._record import HeaderFields, generalize, read_events, write_records

ROOT = Path(__file__).resolve().parent.parent
WORKER = ROOT / "conformance" / "workers" / "python_worker.py"
EXAMPLE_WORKER = ROOT / "examples" / "worker.py"
TARGET = "worker"
#: Unicode that often goes wrong: accents, a symbol, an emoji (astral plane), U+2028,
#: a NUL, quotes and a backslash.
TRICKY_TEXT = 'héllo wörld ✓ 🎉 \u2028 \u0000 "quoted" \\ back'
ECHO_DATA: list[Any] = [
    {
        "text": TRICKY_TEXT,
        "empty": "",
        "null": None,
        "true": True,
        "false": False,
        "int": 42,
        "negative": -7,
        "float": 1.5,
        "big": 1e300,
        "maxSafe": 9007199254740991,
        "minSafe": -9007199254740991,
        "nested": {"list": [1, [2, [3, {"deep": None}]], {}], "object": {"a": {"b": {"c": []}}}},
    },
    "just a string: ü 🎉",
    9007199254740991,
    [1, "two", None, True, {"three": 3.25}],
    None,
]

Run = Callable[[Master[Any, Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Scenario:
    check: str
    requirement: tuple[str, ...]
    description: str
    run: Run
    mode: Literal["sequential", "concurrent"] = "sequential"
    request_shape: Literal["unified", "legacy"] = "unified"
    worker: Path = WORKER
    level: str | None = "profile"
    header_mode: str | None = None
    exact: bool = False
    out_name: str | None = None


async def _warm_up(master: Master[Any, Any]) -> None:
    """One answered request first, so that the timed part does not include the
    worker's start-up."""
    await master.request("echo", TARGET, "warm-up")


async def _echo(master: Master[Any, Any]) -> None:
    for data in ECHO_DATA:
        reply = await master.request("echo", TARGET, data)
        assert reply.data == data, (reply.data, data)


async def _echo_legacy(master: Master[Any, Any]) -> None:
    data = {"shape": "legacy", "list": [1, 2, "three"], "text": "ü"}
    reply = await master.request("echo", TARGET, data)
    assert reply.data == data


async def _fail(master: Master[Any, Any]) -> None:
    with contextlib.suppress(RemoteError):
        await master.request("fail", TARGET, "deliberately failed: ü ✓")
        raise AssertionError("fail did not fail")


async def _one_at_a_time(master: Master[Any, Any]) -> None:
    await _warm_up(master)
    await asyncio.gather(master.request("sleep", TARGET, 400), master.request("sleep", TARGET, 400))


async def _priority(master: Master[Any, Any]) -> None:
    await _warm_up(master)
    order: list[str] = []

    async def echo(text: str, priority: int) -> None:
        await master.request("echo", TARGET, text, priority=priority)
        order.append(text)

    await asyncio.gather(master.request("sleep", TARGET, 500), echo("A", 0), echo("B", 5))
    assert order == ["B", "A"], order


async def _overlap(master: Master[Any, Any]) -> None:
    await _warm_up(master)
    await asyncio.gather(master.request("sleep", TARGET, 600), master.request("sleep", TARGET, 600))


async def _expiry(master: Master[Any, Any]) -> None:
    await _warm_up(master)
    results = await asyncio.gather(
        master.request("sleep", TARGET, 800),
        master.request("echo", TARGET, "expired in the queue", timeout=200),
        return_exceptions=True,
    )
    assert isinstance(results[1], PeepsyError), results
    # Give the worker's 408 time to arrive, should it come after the master's own timeout.
    await asyncio.sleep(0.2)


async def _shutdown(master: Master[Any, Any]) -> None:
    await _warm_up(master)
    task = asyncio.create_task(master.request("sleep", TARGET, 500))
    await asyncio.sleep(0.1)
    code = await master.shutdown_child(TARGET)
    reply = await task
    assert reply.data == 500, reply
    assert code == 0, code


async def _call_master(master: Master[Any, Any]) -> None:
    @master.handler("conformance.ping")
    def ping(data: Any) -> Any:
        return {"pong": data}

    data = {"n": 1, "text": "ü 🎉"}
    reply = await master.request("callMaster", TARGET, {"action": "conformance.ping", "data": data})
    assert reply.data == {"pong": data}, reply


async def _call_master_failure(master: Master[Any, Any]) -> None:
    @master.handler("conformance.refuse")
    def refuse(data: Any) -> Any:
        raise ValueError("refused on purpose")

    with contextlib.suppress(RemoteError):
        await master.request("callMaster", TARGET, {"action": "conformance.refuse", "data": 1})
        raise AssertionError("callMaster did not fail")


async def _example_add(master: Master[Any, Any]) -> None:
    reply = await master.request("add", TARGET, {"a": 1, "b": 2})
    assert reply.data == 3
    reply = await master.request("add", TARGET, {"a": -5, "b": 1000000})
    assert reply.data == 999995
    with contextlib.suppress(RemoteError):
        await master.request("add", TARGET, {"a": 1})
        raise AssertionError("add without b did not fail")


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "profile.echo",
        ("RESP-1",),
        "echo answers with the request's data exactly: strings in any Unicode, numbers up"
        " to 2^53-1, booleans, null, nested arrays and objects",
        _echo,
        exact=True,
    ),
    Scenario(
        "profile.echo-legacy",
        ("REQ-3",),
        "a REQUEST in the legacy nested shape runs its action and is answered under its nested id",
        _echo_legacy,
        request_shape="legacy",
        exact=True,
    ),
    Scenario(
        "profile.fail-500",
        ("RESP-3", "RESP-2"),
        "a handler that fails is answered 500 with the failure's text as error (and as"
        " errorPayload.message, with a name, when there is an errorPayload)",
        _fail,
    ),
    Scenario(
        "profile.sequential-one-at-a-time",
        ("SCHED-1",),
        "a sequential worker runs one request at a time: the second of two 400 ms sleeps"
        " is answered at least 300 ms after the first",
        _one_at_a_time,
        header_mode="sequential",
    ),
    Scenario(
        "profile.sequential-priority",
        ("SCHED-1",),
        "a sequential worker runs waiting requests highest priority first: B (priority 5)"
        " before A (priority 0), though A came first",
        _priority,
        header_mode="sequential",
    ),
    Scenario(
        "profile.concurrent-overlap",
        ("SCHED-2",),
        "a concurrent worker runs requests at once: two 600 ms sleeps are both answered"
        " within 1100 ms",
        _overlap,
        mode="concurrent",
        header_mode="concurrent",
    ),
    Scenario(
        "profile.queue-expiry-408",
        ("SCHED-3",),
        "a request whose timeout passes while it waits in the queue is answered 408 and not run",
        _expiry,
        header_mode="sequential",
    ),
    Scenario(
        "profile.shutdown-finishes-work",
        ("SHUT-1",),
        "on SHUTDOWN the request already running finishes and is answered 200, then the"
        " worker exits 0",
        _shutdown,
    ),
    Scenario(
        "profile.call-master",
        ("RESP-1", "ID-3", "REQ-6"),
        "callMaster makes the worker send the master a unified REQUEST with an id of its"
        " own; the master's answer becomes the worker's answer",
        _call_master,
    ),
    Scenario(
        "profile.call-master-failure",
        ("RESP-3",),
        "when the master answers the worker's request with a failure, the worker's"
        " answer to the original request is a failure too",
        _call_master_failure,
    ),
    Scenario(
        "example.add",
        ("RESP-1",),
        "examples/worker.py adds: 1 + 2 is 3, -5 + 1000000 is 999995, and a missing"
        " operand is a failure",
        _example_add,
        worker=EXAMPLE_WORKER,
        level=None,
        out_name="add",
    ),
)


async def record(scenario: Scenario, out: Path) -> Path:
    """Run one scenario through the tap; returns the raw recording."""
    raw = out / f"{scenario.check}.raw.jsonl"
    tap = [sys.executable, "-m", "peepsy.conformance", "record", "--raw", "-o", str(raw)]
    async with Master(timeout=5000, request_shape=scenario.request_shape) as master:
        await master.spawn_child(
            TARGET,
            [*tap, "--", sys.executable, str(scenario.worker)],
            mode=scenario.mode,
            cwd=str(ROOT),
            auto_restart=False,
        )
        await scenario.run(master)
    return raw


def draft(scenario: Scenario, raw: Path, out: Path) -> Path:
    worker = scenario.worker.relative_to(ROOT)
    fields = HeaderFields(
        check=scenario.check,
        requirement=scenario.requirement,
        description=scenario.description,
        level=scenario.level,
        mode=scenario.header_mode,
        recorded=f"{datetime.datetime.now(datetime.UTC).date().isoformat()}: reference"
        f" master (peepsy.Master) and child ({worker}), by tools/record_transcripts.py",
        exact_data=scenario.exact,
    )
    path = out / f"{scenario.out_name or scenario.check}.ndjson"
    write_records(generalize(read_events(raw), **fields.options(path)), path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.record_transcripts", description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "recordings")
    parser.add_argument("--only", action="append", default=[], metavar="PATTERN")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    chosen = [
        s for s in SCENARIOS if not args.only or any(fnmatch.fnmatch(s.check, p) for p in args.only)
    ]
    for scenario in chosen:
        raw = asyncio.run(record(scenario, args.out))
        path = draft(scenario, raw, args.out)
        print(f"{scenario.check}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

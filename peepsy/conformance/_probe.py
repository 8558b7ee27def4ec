"""The probe that starts a suite run: one worker, sent INIT and an echo, to learn the
mode its READY announces and whether it serves the conformance profile, and to find
what would fail every check alike (a worker that dies at start-up, or one that does
not flush its answers). Apart from the scheduling in ``_suite.py`` because it is a
conversation of its own, with its own deadlines and diagnoses.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from peepsy.conformance._suite_setup import Options, WorkerNotStarted, init_message
from peepsy.conformance._wire import Session, WireLine


@dataclass(slots=True)
class ProbeResult:
    profile: bool
    note: str
    announced: str | None
    #: The ``protocol`` member of the worker's READY, when it sent one with it.
    protocol: str | None = None
    #: Set when the worker cannot be checked at all: every check is then ``not-run``.
    problem: str = ""
    stderr: list[str] = field(default_factory=list)


#: The probe's echo; the worker must answer it within this (times --timeout-scale).
PROBE_MS = 5000
#: After a silent probe, how long the suite waits for answers once the input is closed.
FLUSH_CHECK_MS = 2000


async def probe(options: Options, mode: str, live: set[Session] | None = None) -> ProbeResult:
    """Does the worker serve the conformance profile? Also learns its READY mode, and
    finds the causes that would make every check fail alike: a worker that dies at
    start-up, and one whose answers only come out when its input closes (no flush)."""
    session = Session(options.argv, options.env, options.cwd, transport=options.transport)
    try:
        await session.start()
    except OSError as exc:
        raise WorkerNotStarted(f"could not start the worker {list(options.argv)}: {exc}") from exc
    if live is not None:
        live.add(session)
    try:
        return await _probe(session, options, mode)
    except asyncio.CancelledError:
        session.kill()
        raise
    finally:
        await session.stop()
        if live is not None:
            live.discard(session)


def _probe_answer(line: WireLine) -> dict[str, Any] | None:
    msg = line.message
    if isinstance(msg, dict) and msg.get("type") == "RESPONSE" and msg.get("id") == "probe-1":
        return msg
    return None


async def _probe(session: Session, options: Options, mode: str) -> ProbeResult:
    # 1.1, as a master that can send CANCEL: a worker's READY then states what it
    # speaks even if it were to answer a 1.0 master with 1.0.
    session.send(init_message(mode, "1.1"))
    session.send(
        {"type": "REQUEST", "id": "probe-1", "action": "echo", "data": {"probe": [1, "é"]}}
    )
    await session.drain()
    answer: dict[str, Any] | None = None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PROBE_MS / 1000 * options.timeout_scale
    while answer is None:
        line = await session.next_message((deadline - loop.time()) * 1000)
        if line is None:
            break
        answer = _probe_answer(line)
    result = ProbeResult(False, "", None)
    if answer is not None:
        result.profile = answer.get("status") == 200 and answer.get("data") == {"probe": [1, "é"]}
        if not result.profile:
            status = answer.get("status")
            result.note = f"echo answered status {status!r}, so only core checks run"
    elif session.output_closed:
        # It closed its output (it exited, as a rule) before answering anything: every
        # check would fail the same way, so this is said once, with its exit and stderr.
        await session.wait_exit(1000)
        how = session.exit_text()
        result.problem = f"the worker {how} at start-up, before it answered the probe"
        if session.returncode is None:
            result.problem = "the worker closed its stdout at start-up, before it answered"
    else:
        # Silent but alive. Close its input: a worker that buffers its stdout (no flush
        # per line) lets its answers out only now, as it exits. That is seen, not guessed.
        session.close_stdin()
        deadline = loop.time() + FLUSH_CHECK_MS / 1000 * options.timeout_scale
        while answer is None:
            line = await session.next_message((deadline - loop.time()) * 1000)
            if line is None:
                break
            answer = _probe_answer(line)
        if answer is not None:
            result.problem = (
                "the worker did not answer the probe's echo within"
                f" {PROBE_MS * options.timeout_scale:.0f} ms; its answers arrived only after"
                " its input closed: does it flush stdout after each line? (A worker that"
                " only starts slowly looks the same: then raise --timeout-scale.)"
            )
        else:
            result.note = (
                f"the worker did not answer an echo request within"
                f" {PROBE_MS * options.timeout_scale:.0f} ms"
            )
    for ready in session.ready:
        if isinstance(ready.message, dict) and isinstance(ready.message.get("mode"), str):
            result.announced = ready.message["mode"]
        if isinstance(ready.message, dict) and isinstance(ready.message.get("protocol"), str):
            result.protocol = ready.message["protocol"]
    if result.problem:
        result.stderr = session.stderr_tail(10)
    return result

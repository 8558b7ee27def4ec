"""What every lane shares: payloads, JSON codecs, the measuring loop and its statistics.

Every lane measures the same way: a window of ``window`` requests is kept full (each
caller sends its next request as soon as its answer arrives), completions are counted
between two clock readings after a warm-up, and each completed request's latency is kept
for percentiles. Lanes print one JSON line (a :data:`LaneResult`) on stdout.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

REQUEST_TIMEOUT_MS = 5000

#: A measurement of one lane at one window and payload, as the lanes print it.
Point = dict[str, float]
#: ``{"windows": {"1": Point, ...}, "payloads": {"100": Point, ...}, ...}``
LaneResult = dict[str, Any]


@dataclass(frozen=True)
class LaneConfig:
    """What the driver asks of one lane process (passed as JSON on its command line)."""

    windows: tuple[int, ...] = (1, 64, 512)
    payload: int = 100
    sweep: tuple[int, ...] = ()
    seconds: float = 1.0
    warmup: float = 0.2
    #: The fewest completions a measurement waits for (a 10 MB echo can take 0.1 s).
    min_count: int = 3
    #: The cores the lane's children are pinned to (none: they share the master's).
    child_cores: tuple[int, ...] = ()
    #: Requests held in flight by the memory measurement; 0 to skip it.
    memory: int = 0
    #: The fast codec's module name for the ``bare-fast`` lane.
    codec: str = "json"

    @property
    def child_prefix(self) -> tuple[str, ...]:
        """Put before each child's argv: taskset sets the affinity, then execs the child,
        so the child and every thread it ever starts stay on ``child_cores``."""
        return taskset(self.child_cores)

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> LaneConfig:
        raw = json.loads(text)
        for key in ("windows", "sweep", "child_cores"):
            raw[key] = tuple(raw[key])
        return cls(**raw)


def taskset(cores: tuple[int, ...]) -> tuple[str, ...]:
    """A command prefix that pins what follows to ``cores`` from its exec on (pinning a
    running process by pid with ``os.sched_setaffinity`` would pin its main thread only,
    not the threads it already has: Node's, the peepsy child's heartbeat)."""
    return ("taskset", "-c", ",".join(map(str, cores))) if cores else ()


def payload(size: int) -> dict[str, Any]:
    """An echo payload whose compact JSON is ``size`` bytes (at least 20): an object,
    as real requests carry, with one string that makes up the size."""
    base = len(json.dumps({"n": 1, "text": ""}, separators=(",", ":")))
    return {"n": 1, "text": "x" * max(0, size - base)}


# --- codecs -------------------------------------------------------------------------


class Codec(Protocol):
    name: str

    def dumps(self, obj: Any) -> bytes: ...
    def loads(self, data: bytes) -> Any: ...


class _Stdlib:
    name = "json"

    def dumps(self, obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()

    def loads(self, data: bytes) -> Any:
        return json.loads(data)


class _Orjson:
    name = "orjson"

    def __init__(self) -> None:
        import orjson  # noqa: PLC0415 - optional (the bench extra)

        self.dumps: Callable[[Any], bytes] = orjson.dumps
        self.loads: Callable[[bytes], Any] = orjson.loads


class _Msgspec:
    name = "msgspec"

    def __init__(self) -> None:
        import msgspec  # noqa: PLC0415 - optional (the bench extra)

        self.dumps: Callable[[Any], bytes] = msgspec.json.encode
        self.loads: Callable[[bytes], Any] = msgspec.json.decode


_CODECS: dict[str, Callable[[], Codec]] = {
    "json": _Stdlib,
    "orjson": _Orjson,
    "msgspec": _Msgspec,
}
FAST_CODECS = ("orjson", "msgspec")


def codec(name: str) -> Codec:
    return _CODECS[name]()


def codec_available(name: str) -> bool:
    return name == "json" or importlib.util.find_spec(name) is not None


def pick_fast_codec(size: int = 100, loops: int = 10_000) -> tuple[str | None, dict[str, float]]:
    """The faster of the installed fast codecs at a request and its response (encode and
    decode of each, microseconds per round trip); ``None`` if neither is installed.

    The codecs take turns, seven times, and each keeps its best time: on a busy machine
    a single timing is often one that another process interrupted.
    """
    data = payload(size)
    request = {"type": "REQUEST", "id": "123", "action": "echo", "data": data, "timeout": 5000}
    response = {"type": "RESPONSE", "id": "123", "status": 200, "data": data}
    codecs = {name: codec(name) for name in ("json", *FAST_CODECS) if codec_available(name)}
    best = dict.fromkeys(codecs, float("inf"))
    for _ in range(7):
        for name, c in codecs.items():
            start = time.perf_counter()
            for _ in range(loops):
                c.loads(c.dumps(request))
                c.loads(c.dumps(response))
            best[name] = min(best[name], (time.perf_counter() - start) / loops * 1e6)
    fast = [n for n in FAST_CODECS if n in best]
    return (min(fast, key=best.__getitem__) if fast else None), best


def codec_passes_ms(size: int, repeats: int = 5) -> dict[str, float]:
    """Milliseconds of the four JSON passes one echo of a ``size``-byte payload needs
    (encode and decode of the request, then of the response) with each fast codec
    installed, each keeping its best of ``repeats``. No JSON worker and master can skip
    them, whatever carries the bytes: with the whole-message raw pipe's round trip, they
    bound what any JSON echo of that size can reach (see report.py)."""
    data = payload(size)
    request = {"type": "REQUEST", "id": "123", "action": "echo", "data": data, "timeout": 5000}
    best: dict[str, float] = {}
    for name in FAST_CODECS:
        if not codec_available(name):
            continue
        c = codec(name)
        for _ in range(repeats):
            start = time.perf_counter()
            got = c.loads(c.dumps(request))["data"]
            c.loads(c.dumps({"type": "RESPONSE", "id": "123", "status": 200, "data": got}))
            took = (time.perf_counter() - start) * 1e3
            best[name] = min(best.get(name, took), took)
    return best


# --- statistics -----------------------------------------------------------------------


def point(count: int, elapsed: float, latencies_ns: list[int], size: int) -> Point:
    """Rate, latency percentiles (us) and payload throughput (MB/s) of one measurement."""
    lat = sorted(latencies_ns)

    def pct(q: float) -> float:
        return lat[min(len(lat) - 1, int(q * len(lat)))] / 1000 if lat else float("nan")

    rate = count / elapsed
    return {
        "rate": rate,
        "p50_us": pct(0.50),
        "p99_us": pct(0.99),
        "count": count,
        "seconds": elapsed,
        "mb_per_s": rate * size / 1e6,
    }


# --- the asyncio window driver (peepsy and the bare asyncio pipes) --------------------


async def drive(
    one: Callable[[], Awaitable[object]], window: int, size: int, config: LaneConfig
) -> Point:
    """Keep ``window`` requests in flight with ``window`` callers, each awaiting ``one()``
    in a loop: the window refills as each answer arrives, unlike ``gather`` batches,
    which drain to zero before the next batch goes out."""
    latencies: list[int] = []
    stop = False

    async def caller() -> None:
        clock = time.perf_counter_ns
        while not stop:
            start = clock()
            await one()
            latencies.append(clock() - start)

    callers = [asyncio.ensure_future(caller()) for _ in range(window)]
    try:
        await _wait_for(lambda: len(latencies) >= config.min_count, config.warmup)
        first, start = len(latencies), time.perf_counter()
        await _wait_for(lambda: len(latencies) - first >= config.min_count, config.seconds)
        last, end = len(latencies), time.perf_counter()
    finally:
        stop = True
        await asyncio.gather(*callers)
    return point(last - first, end - start, latencies[first:last], size)


async def _wait_for(done: Callable[[], bool], seconds: float) -> None:
    """Sleep ``seconds``, then on until ``done()``: slow echoes still get counted."""
    await asyncio.sleep(seconds)
    # Polled, not an Event: setting an Event per completion would cost every request of
    # the measured loop; this runs only after the measured time is up.
    while not done():  # noqa: ASYNC110
        await asyncio.sleep(0.005)


def rss_bytes() -> int:
    """This process's resident set size now."""
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def emit(result: LaneResult) -> None:
    """The lane's answer to the driver: one JSON line, the last on stdout."""
    print(json.dumps(result), flush=True)


def lane_in_process(argv: list[str], cwd: Path, timeout: float) -> dict[str, Any]:
    """Run one lane as ``argv`` (a fresh interpreter, so lanes do not share a heap or a
    loop) and read the JSON object its last line prints; ``{"error": ...}`` when it
    does not finish in ``timeout`` seconds or exits with a failure."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(cwd), *sys.path[1:]])}
    env.pop("COVERAGE_PROCESS_CONFIG", None)  # traced, a lane runs several times slower
    try:
        done = subprocess.run(
            argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"no result within {timeout:.0f} s"}
    if done.returncode != 0:
        return {"error": f"exit status {done.returncode}: {done.stderr.strip()[-500:]}"}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result

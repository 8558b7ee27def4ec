"""What the ssh link costs: the same echo worker over a local pipe and over OpenSSH.

    python -m benchmarks.ssh [--rounds 3] [--seconds 1] [--json out.json]
    python -m benchmarks.ssh --quick          # a smoke run in seconds, not a measurement

Two lanes run the very same worker (``benchmarks/echo_child.py``) with the very same
``spawn_child`` arguments; ``ssh`` adds ``host=``. Without ``--host`` the remote end is
a throwaway sshd on 127.0.0.1 (``tools/sshd.py``, needs Debian's openssh-server), so
what is measured is the link itself (the ssh client, encryption, sshd and its session
process relaying every byte), not a network. Each lane measures, in a process of its
own: round trips per second at 1 and at 64 requests in flight (p50 and p99 at 1), MB/s
of a 1 MB echo at 1 in flight, and the seconds from ``spawn_child`` to the first answer,
for a first child (over ssh: a new connection) and a second (over ssh: one that shares
the first's connection). The lanes' order alternates from round to round, each ratio
is taken within its round, and the report gives the median over rounds and their range.
See docs/scaling-out.md ("What the link costs") and docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks.common import LaneConfig, LaneResult, drive, lane_in_process, payload

ROOT = Path(__file__).resolve().parent.parent
WORKER = ROOT / "benchmarks" / "echo_child.py"
SSHD = Path("/usr/sbin/sshd")
LANES: dict[str, str] = {
    "local": "the echo worker on a local pipe",
    "ssh": "the same worker, spawn_child(..., host=...) over OpenSSH",
}
#: (key in a lane's result, label, format): what each round compares, ssh / local.
MEASURES: tuple[tuple[str, str, str], ...] = (
    ("rate_1", "round trips/s, 1 in flight", ",.0f"),
    ("p50_us_1", "p50 us, 1 in flight", ",.0f"),
    ("p99_us_1", "p99 us, 1 in flight", ",.0f"),
    ("rate_64", "round trips/s, 64 in flight", ",.0f"),
    ("mb_per_s", "MB/s, {big} echo, 1 in flight", ",.1f"),
    ("first_spawn_s", "s from spawn to first answer, first child", ".3f"),
    ("second_spawn_s", "s from spawn to first answer, second child", ".3f"),
)
BIG = 1_000_000


def _lane_config(seconds: float, quick: bool) -> LaneConfig:
    return LaneConfig(
        windows=(1, 64),
        payload=100,
        sweep=(10_000 if quick else BIG,),
        seconds=seconds,
        warmup=0.02 if quick else 0.3,
        min_count=1 if quick else 3,
    )


async def _lane(name: str, host: dict[str, Any] | None, config: LaneConfig) -> LaneResult:
    from peepsy import Master, SshHost  # noqa: PLC0415 - the driver never needs peepsy

    where = SshHost(**host) if name == "ssh" and host is not None else None
    command = [sys.executable, str(WORKER)]
    # The remote login environment is the base over ssh: the worker finds this checkout's
    # peepsy through PYTHONPATH, given the same way in both lanes.
    env = {"PYTHONPATH": str(ROOT)}
    check = payload(config.payload)
    async with Master() as master:
        spawns: list[float] = []
        for target in ("first", "second"):
            start = time.perf_counter()
            await master.spawn_child(
                target, command, "concurrent", env=env, cwd=str(ROOT), host=where
            )
            if (await master.request("echo", target, check)).data != check:
                raise RuntimeError("the echo came back different")
            spawns.append(time.perf_counter() - start)
        await master.shutdown_child("first")

        async def one(data: Any) -> object:
            return (await master.request("echo", "second", data)).data

        points = {}
        for window in config.windows:
            points[window] = await drive(lambda: one(check), window, config.payload, config)
        [size] = config.sweep
        big = payload(size)
        sweep = await drive(lambda: one(big), 1, size, config)
    return {
        "rate_1": points[1]["rate"],
        "p50_us_1": points[1]["p50_us"],
        "p99_us_1": points[1]["p99_us"],
        "rate_64": points[64]["rate"],
        "mb_per_s": sweep["mb_per_s"],
        "payload_bytes": size,
        "first_spawn_s": spawns[0],
        "second_spawn_s": spawns[1],
    }


def _in_process(
    name: str, host: dict[str, Any] | None, config: LaneConfig, timeout: float
) -> dict[str, Any]:
    argv = [sys.executable, "-m", "benchmarks.ssh", "--lane", name, config.to_json()]
    argv.append(json.dumps(host))
    return lane_in_process(argv, ROOT, timeout)


def measure(
    host: dict[str, Any],
    rounds: int,
    config: LaneConfig,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Every lane once per round, in alternating order; ratios ssh / local per round."""
    load_before = os.getloadavg()
    all_rounds: list[dict[str, Any]] = []
    names = list(LANES)
    for r in range(rounds):
        this: dict[str, Any] = {}
        for name in names if r % 2 == 0 else names[::-1]:
            progress(f"round {r + 1}/{rounds}: {name}")
            this[name] = _in_process(name, host, config, 120 + 10 * config.seconds)
        if not any("error" in got for got in this.values()):
            this["ratio"] = {key: this["ssh"][key] / this["local"][key] for key, _, _ in MEASURES}
        all_rounds.append(this)
    ok = [r for r in all_rounds if "ratio" in r]
    median: dict[str, dict[str, float]] = {
        lane: {key: statistics.median(r[lane][key] for r in ok) for key, _, _ in MEASURES}
        for lane in (*names, "ratio")
        if ok
    }
    return {
        "meta": {
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "python": platform.python_version(),
            "ssh": _ssh_version(),
            "cpus": os.cpu_count(),
            "load_before": load_before,
            "load_after": os.getloadavg(),
            "rounds": rounds,
            "seconds": config.seconds,
            "payload_bytes": config.sweep[0],
            "host": host.get("destination"),
        },
        "lanes": LANES,
        "rounds": all_rounds,
        "median": median,
    }


def _ssh_version() -> str:
    done = subprocess.run(["ssh", "-V"], capture_output=True, text=True, check=False)
    return done.stderr.strip() or done.stdout.strip()


def table(result: dict[str, Any]) -> str:
    meta = result["meta"]
    before, after = (" / ".join(f"{x:.2f}" for x in meta[k]) for k in ("load_before", "load_after"))
    lines = [
        f"peepsy over ssh against a local pipe, {meta['date']}: Python {meta['python']}, "
        f"{meta['ssh']}, {meta['cpus']} CPUs",
        f"ssh to {meta['host']}; load average (1/5/15 min) {before} before, {after} after",
        f"{meta['rounds']} round(s) of {meta['seconds']:g} s per measurement, medians",
    ]
    failed = [
        f"round {i + 1}, {lane}: {r[lane]['error']}"
        for i, r in enumerate(result["rounds"])
        for lane in LANES
        if "error" in r[lane]
    ]
    lines += [f"failed: {f}" for f in failed]
    median = result["median"]
    if not median:
        return "\n".join(lines)
    ok = [r for r in result["rounds"] if "ratio" in r]
    big = f"{meta['payload_bytes'] / 1e6:g} MB" if meta["payload_bytes"] >= BIG else "10 KB"
    lines.append(f"{'':<44} {'local':>10} {'ssh':>10}   ssh / local [rounds' range]")
    for key, label, fmt in MEASURES:
        ratios = [r["ratio"][key] for r in ok]
        spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
        ratio = f"{median['ratio'][key]:.2f}"
        lines.append(
            f"{label.format(big=big):<44} {format(median['local'][key], fmt):>10} "
            f"{format(median['ssh'][key], fmt):>10}   {ratio:>5} [{spread}]"
        )
    return "\n".join(lines)


@contextlib.contextmanager
def _loopback_sshd() -> Iterator[dict[str, Any]]:
    from tools.sshd import Sshd  # noqa: PLC0415 - only when no --host is given

    with tempfile.TemporaryDirectory(prefix="peepsy-bench-sshd-") as tmp, Sshd(tmp) as sshd:
        host = sshd.host
        fields = {f.name: getattr(host, f.name) for f in dataclasses.fields(host)}
        yield {**fields, "options": dict(host.options), "ssh": list(host.ssh)}


def _given_host(args: argparse.Namespace) -> dict[str, Any]:
    host: dict[str, Any] = {"destination": args.host}
    if args.port is not None:
        host["port"] = args.port
    if args.identity_file is not None:
        host["identity_file"] = args.identity_file
    if args.known_hosts_file is not None:
        host["known_hosts_file"] = args.known_hosts_file
    return host


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.ssh", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--quick", action="store_true", help="a smoke run, not a measurement")
    parser.add_argument("--json", type=Path, help="write every round and the medians here")
    parser.add_argument("--host", help="an ssh destination instead of a loopback sshd")
    parser.add_argument("--port", type=int)
    parser.add_argument("--identity-file")
    parser.add_argument("--known-hosts-file")
    parser.add_argument("--lane", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.lane is not None:
        name, config, host = args.lane
        result = asyncio.run(_lane(name, json.loads(host), LaneConfig.from_json(config)))
        print(json.dumps(result), flush=True)
        return 0
    if args.quick:
        args.rounds, args.seconds = 1, 0.02
    if args.host is None and not (SSHD.exists() and shutil.which("ssh")):
        print(f"needs {SSHD} and ssh (Debian: openssh-server), or --host", file=sys.stderr)
        return 2
    config = _lane_config(args.seconds, args.quick)
    with (
        _loopback_sshd() if args.host is None else contextlib.nullcontext(_given_host(args))
    ) as host:
        result = measure(host, args.rounds, config, lambda s: print(s, file=sys.stderr, flush=True))
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0 if result["median"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

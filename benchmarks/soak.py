"""A soak: many answered requests, and the master's memory as they go.

    python -m benchmarks.soak                       # 1,000,000 requests, timeouts 5 s and 30 s
    python -m benchmarks.soak --requests 200000 --timeouts 300000

Each run keeps ``--window`` requests in flight to one peepsy child with the given
timeout and samples the master's resident set size every tenth of the run. An answered
request that stayed referenced until its deadline would make the memory grow with the
requests answered within one timeout (at 100k requests/s, a 30 s timeout is 3 million
requests); a released one leaves it flat after the warm-up. It prints one row per
sample and, per timeout, the growth from the first sample to the last. Exit status 1
when that growth exceeds ``--limit-mb``, so that it can serve as a check.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys

from benchmarks.common import payload, rss_bytes
from benchmarks.lanes import BENCH
from peepsy import Master

MB = 1024 * 1024


async def soak(requests: int, window: int, timeout: int) -> list[tuple[int, int]]:
    """(requests answered, master RSS) samples over one run."""
    samples: list[tuple[int, int]] = []
    every = max(1, requests // 10)
    data = payload(100)
    async with Master() as master:
        await master.spawn_child("c0", [sys.executable, str(BENCH / "echo_child.py")])
        answered = 0

        async def caller(n: int) -> None:
            nonlocal answered
            for _ in range(n):
                await master.request("echo", "c0", data, timeout=timeout)
                answered += 1
                if answered % every == 0:
                    gc.collect()
                    samples.append((answered, rss_bytes()))

        share, extra = divmod(requests, window)
        await asyncio.gather(*(caller(share + (i < extra)) for i in range(window)))
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak")
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--timeouts", type=int, nargs="+", default=[5_000, 30_000])
    parser.add_argument("--limit-mb", type=float, default=16.0)
    args = parser.parse_args()
    worst = 0.0
    for timeout in args.timeouts:
        samples = asyncio.run(soak(args.requests, args.window, timeout))
        print(f"timeout {timeout} ms, {args.window} in flight")
        for answered, rss in samples:
            print(f"  {answered:>10,} answered   master RSS {rss / MB:8.1f} MB")
        grown = (samples[-1][1] - samples[0][1]) / MB
        print(f"  growth from the first sample to the last: {grown:+.1f} MB")
        worst = max(worst, grown)
    return 1 if worst > args.limit_mb else 0


if __name__ == "__main__":
    raise SystemExit(main())

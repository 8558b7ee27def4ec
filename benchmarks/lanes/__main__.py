"""``python -m benchmarks.lanes NAME CONFIG_JSON``: run one lane, print its result."""

from __future__ import annotations

import sys

from benchmarks.common import LaneConfig, emit


def main() -> None:
    name, config = sys.argv[1], LaneConfig.from_json(sys.argv[2])
    # Imported here, so that a lane loads only what it uses (no peepsy in the pools).
    if name in ("peepsy", "peepsy-group4"):
        from benchmarks.lanes.peepsy_lane import run  # noqa: PLC0415
    elif name in ("bare-json", "bare-fast"):
        from benchmarks.lanes.bare import run  # noqa: PLC0415
    elif name in ("process-pool", "mp-pool"):
        from benchmarks.lanes.pools import run  # noqa: PLC0415
    elif name in ("raw-pipe", "raw-whole"):
        from benchmarks.lanes.raw import run  # noqa: PLC0415
    else:
        raise SystemExit(f"unknown lane {name!r}")
    emit(run(name, config))


if __name__ == "__main__":
    main()

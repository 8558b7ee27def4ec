"""Medians, the issue's targets as ratios within each round, the table and the plot."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from benchmarks.lanes import Lane
    from benchmarks.run import Layout

Round = dict[str, Any]
BARES = ("bare-json", "bare-fast")


def _get(rnd: Round, layout: str, lane: str, *keys: str) -> float | None:
    node: Any = rnd["layouts"].get(layout, {}).get(lane)
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return float(node) if isinstance(node, int | float) else None


def _rate(rnd: Round, layout: str, lane: str, window: int) -> float | None:
    return _get(rnd, layout, lane, "windows", str(window), "rate")


def _div(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _best(values: Sequence[float | None], pick: Callable[..., float] = max) -> float | None:
    present = [v for v in values if v is not None]
    return pick(present) if present else None


@dataclass(frozen=True)
class Target:
    id: str
    text: str
    op: str  # ">=" or "<="
    threshold: float
    value: Callable[[Round, str], float | None]
    per_layout: bool = True


TARGETS = (
    Target(
        "vs-bare-512",
        "512 in flight: peepsy / the faster bare asyncio pipe",
        ">=",
        0.7,
        lambda r, lay: _div(
            _rate(r, lay, "peepsy", 512), _best([_rate(r, lay, b, 512) for b in BARES])
        ),
    ),
    Target(
        "no-drop",
        "no drop from 64 to 512 in flight: peepsy 512 / 64",
        ">=",
        1.0,
        lambda r, lay: _div(_rate(r, lay, "peepsy", 512), _rate(r, lay, "peepsy", 64)),
    ),
    Target(
        "no-drop-group",
        "no drop from 64 to 512 in flight: group of 4, 512 / 64",
        ">=",
        1.0,
        lambda r, lay: _div(
            _rate(r, lay, "peepsy-group4", 512), _rate(r, lay, "peepsy-group4", 64)
        ),
    ),
    Target(
        "group-64",
        "64 in flight: group of 4 / one child",
        ">=",
        1.0,
        lambda r, lay: _div(_rate(r, lay, "peepsy-group4", 64), _rate(r, lay, "peepsy", 64)),
    ),
    Target(
        "group-512",
        "512 in flight: group of 4 / one child",
        ">=",
        1.0,
        lambda r, lay: _div(_rate(r, lay, "peepsy-group4", 512), _rate(r, lay, "peepsy", 512)),
    ),
    Target(
        "p50",
        "p50 at 1 in flight: peepsy / bare asyncio pipe (the lower)",
        "<=",
        1.3,
        lambda r, lay: _div(
            _get(r, lay, "peepsy", "windows", "1", "p50_us"),
            _best([_get(r, lay, b, "windows", "1", "p50_us") for b in BARES], min),
        ),
    ),
    Target(
        "vs-ppe-512",
        "512 in flight: peepsy / ProcessPoolExecutor",
        ">=",
        8.0,
        lambda r, lay: _div(_rate(r, lay, "peepsy", 512), _rate(r, lay, "process-pool", 512)),
    ),
    Target(
        "memory",
        "master memory per request in flight: peepsy / bare asyncio pipe (json)",
        "<=",
        1.5,
        lambda r, _: _div(
            r["memory"].get("peepsy", {}).get("kb_per_request"),
            r["memory"].get("bare-json", {}).get("kb_per_request"),
        ),
        per_layout=False,
    ),
    Target(
        "10mb",
        "10 MB payload, 1 in flight: peepsy / raw pipe bandwidth",
        ">=",
        0.5,
        lambda r, lay: _div(
            _get(r, lay, "peepsy", "payloads", "10000000", "mb_per_s"),
            _get(r, lay, "raw-pipe", "payloads", "10000000", "mb_per_s"),
        ),
    ),
)


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(present) if present else None


def _lane_medians(rounds: list[Round], layout: str, lane: str) -> dict[str, Any]:
    got: dict[str, Any] = {"windows": {}, "payloads": {}}
    for part in ("windows", "payloads"):
        keys = {k for r in rounds for k in r["layouts"][layout][lane].get(part, {})}
        for key in sorted(keys, key=int):
            got[part][key] = {
                stat: _median([_get(r, layout, lane, part, key, stat) for r in rounds])
                for stat in ("rate", "p50_us", "p99_us", "mb_per_s")
            }
    errors = [r["layouts"][layout][lane].get("error") for r in rounds]
    got["errors"] = [e for e in errors if e]
    return got


def build(
    meta: dict[str, Any], layouts: Sequence[Layout], lanes: Sequence[Lane], rounds: list[Round]
) -> dict[str, Any]:
    codec = meta.get("fast_codec") or "json"
    titles = {ln.name: ln.title.replace("fast codec", codec) for ln in lanes}
    median: dict[str, Any] = {"layouts": {}, "memory": {}}
    for layout in layouts:
        median["layouts"][layout.id] = {
            lane.name: _lane_medians(rounds, layout.id, lane.name) for lane in lanes
        }
    for name in {n for r in rounds for n in r["memory"]}:
        median["memory"][name] = {
            key: _median([r["memory"].get(name, {}).get(key) for r in rounds])
            for key in ("kb_per_request", "seconds_to_send", "seconds_to_answer")
        }
    # Each lane's bandwidth as a fraction of the raw pipe's, per payload, within rounds.
    median["vs_raw_pipe"] = {
        layout.id: {
            lane.name: {
                key: _median(
                    [
                        _div(
                            _get(r, layout.id, lane.name, "payloads", key, "mb_per_s"),
                            _get(r, layout.id, "raw-pipe", "payloads", key, "mb_per_s"),
                        )
                        for r in rounds
                    ]
                )
                for key in median["layouts"][layout.id][lane.name]["payloads"]
            }
            for lane in lanes
            if lane.sweep and lane.name != "raw-pipe"
        }
        for layout in layouts
    }
    median["json_bound"] = _json_bound(meta, layouts, median)
    targets = []
    for target in TARGETS:
        for layout in layouts if target.per_layout else layouts[:1]:
            values = [target.value(r, layout.id) for r in rounds]
            value = _median(values)
            met = None
            if value is not None:
                met = value >= target.threshold if target.op == ">=" else value <= target.threshold
            present = [v for v in values if v is not None]
            straddle = bool(present) and (
                min(present) < target.threshold <= max(present)
                or min(present) <= target.threshold < max(present)
            )
            targets.append(
                {
                    "id": target.id,
                    "text": target.text,
                    "want": f"{target.op} {target.threshold:g}",
                    "layout": layout.id if target.per_layout else None,
                    "median": value,
                    "rounds": values,
                    "met": met,
                    "rounds_straddle": straddle,
                }
            )
    return {
        "meta": meta,
        "layouts": [layout.__dict__ for layout in layouts],
        "lanes": titles,
        "median": median,
        "targets": targets,
        "rounds": rounds,
    }


def _json_bound(
    meta: dict[str, Any], layouts: Sequence[Layout], median: dict[str, Any]
) -> dict[str, Any]:
    """Per layout, the most a JSON echo of the sweep's largest payload could reach: the
    fastest codec's four passes (timed in this process) in turn with the whole-message
    raw pipe's round trip (measured in the run), as a fraction of the streaming raw
    pipe's bandwidth. A bound, not a measurement: a real echo also allocates and copies."""
    passes = meta.get("codec_passes") or {}
    ms = min(passes.get("ms", {}).values(), default=None)
    size = passes.get("size")
    bound: dict[str, Any] = {}
    for layout in layouts:
        lanes = median["layouts"][layout.id]
        whole, raw = (
            lanes.get(lane, {}).get("payloads", {}).get(str(size), {}).get("mb_per_s")
            for lane in ("raw-whole", "raw-pipe")
        )
        if ms is None or not size or not whole or not raw:
            continue
        trip_ms = size / whole / 1e3  # MB/s of payload echoed: size bytes per round trip
        bound[layout.id] = {
            "size": size,
            "codec_ms": ms,
            "whole_round_trip_ms": trip_ms,
            "vs_raw_pipe": size / (ms + trip_ms) / 1e3 / raw,
        }
    return bound


# --- text ---------------------------------------------------------------------------


def _fmt(value: float | None, spec: str = ",.0f", unit: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{unit}"


def _size(n: int) -> str:
    return f"{n / 1e6:g} MB" if n >= 1_000_000 else f"{n / 1e3:g} KB" if n >= 1000 else f"{n} B"


def table(result: dict[str, Any]) -> str:
    meta, med = result["meta"], result["median"]
    load = " / ".join(f"{x:.2f}" for x in meta["load_before"])
    load_after = " / ".join(f"{x:.2f}" for x in meta["load_after"])
    out = [
        f"peepsy echo benchmark, {meta['date']}: Python {meta['python']}, Node {meta['node']}, "
        f"{meta['cpus']} CPUs",
        f"load average (1/5/15 min) {load} before, {load_after} after; {meta['rounds']} rounds "
        f"of {meta['seconds']:g} s per measurement, medians (rounds' spread in the JSON)",
        f"fast codec: {meta['fast_codec']} (us per request+response encode/decode: "
        + ", ".join(f"{k} {v:.2f}" for k, v in meta["codec_us_per_round_trip"].items())
        + ")",
    ]
    loads = ", ".join(f"{r['load'][0]:.2f}" for r in result["rounds"])
    out.append(f"1-min load average as each round began: {loads}")
    for name, why in meta["skipped"].items():
        out.append(f"skipped {name}: {why}")
    if meta["layout_note"]:
        out.append(meta["layout_note"])
    for layout in result["layouts"]:
        lanes = med["layouts"][layout["id"]]
        out += ["", f"Layout ({layout['id']}): {layout['title']}. Round trips/s, 100 B payload"]
        out.append(f"{'lane':34} {'1':>9} {'p50 us':>8} {'p99 us':>8} {'64':>9} {'512':>9}")
        for name, got in lanes.items():
            w = got["windows"]
            if not w:
                continue
            out.append(
                f"{result['lanes'][name]:34} {_fmt(w.get('1', {}).get('rate')):>9} "
                f"{_fmt(w.get('1', {}).get('p50_us')):>8} {_fmt(w.get('1', {}).get('p99_us')):>8} "
                f"{_fmt(w.get('64', {}).get('rate')):>9} {_fmt(w.get('512', {}).get('rate')):>9}"
                + (f"  errors: {got['errors']}" if got["errors"] else "")
            )
        sizes = sorted({int(k) for got in lanes.values() for k in got["payloads"]})
        if sizes:
            out += ["", "Payload sweep, 1 in flight: MB/s of payload echoed"]
            out.append(f"{'lane':34}" + "".join(f"{_size(s):>10}" for s in sizes))
            for name, got in lanes.items():
                if got["payloads"]:
                    cells = [got["payloads"].get(str(s), {}).get("mb_per_s") for s in sizes]
                    row = "".join(f"{_fmt(c, ',.1f'):>10}" for c in cells)
                    out.append(f"{result['lanes'][name]:34}{row}")
            out += ["", "... as a fraction of the raw pipe's (median of the rounds' ratios)"]
            for name, fractions in med["vs_raw_pipe"][layout["id"]].items():
                row = "".join(f"{_fmt(fractions.get(str(s)), '.2f'):>10}" for s in sizes)
                out.append(f"{result['lanes'][name]:34}{row}")
    if med["memory"]:
        out += ["", f"Master memory, {meta['memory_in_flight']:,} requests in flight"]
        for name, got in sorted(med["memory"].items()):
            kb = _fmt(got["kb_per_request"], ".2f")
            out.append(
                f"{result['lanes'].get(name, name):34} {kb} KB/request"
                f"  (sent in {_fmt(got['seconds_to_send'], '.1f')} s, "
                f"answered in {_fmt(got['seconds_to_answer'], '.1f')} s)"
            )
    for layout_id, b in med.get("json_bound", {}).items():
        out.append(
            f"\n({layout_id}) Bound for any JSON echo of {_size(b['size'])}: four passes of the "
            f"fastest codec ({b['codec_ms']:.1f} ms) plus the whole-message raw round trip "
            f"({b['whole_round_trip_ms']:.1f} ms): at most {b['vs_raw_pipe']:.2f}x the raw pipe"
        )
    out += ["", "Targets (issue 9): ratio, median of rounds [rounds' range]"]
    for t in result["targets"]:
        present = [v for v in t["rounds"] if v is not None]
        spread = f"[{min(present):.2f}-{max(present):.2f}]" if present else ""
        verdict = {True: "met", False: "NOT MET", None: "n/a"}[t["met"]]
        if t["rounds_straddle"]:
            verdict += " (rounds straddle)"
        where = f"({t['layout']})" if t["layout"] else "   "
        out.append(
            f"{where} {t['text']:66} {t['want']:>6}  {_fmt(t['median'], '.2f'):>6} "
            f"{spread:13} {verdict}"
        )
    return "\n".join(out)


# --- plot ---------------------------------------------------------------------------


def plot(result: dict[str, Any], path: Path) -> str | None:
    """Throughput against requests in flight, one line per lane, one panel per layout;
    the reason when it cannot be drawn (no matplotlib), else ``None``."""
    try:
        import matplotlib as mpl  # noqa: PLC0415 - optional (the bench extra)

        mpl.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        return "needs matplotlib (pip install -e '.[bench]')"
    layouts = result["layouts"]
    fig, axes = plt.subplots(1, len(layouts), figsize=(6 * len(layouts), 4.5), squeeze=False)
    for ax, layout in zip(axes[0], layouts, strict=True):
        for name, got in result["median"]["layouts"][layout["id"]].items():
            points = sorted((int(k), v["rate"]) for k, v in got["windows"].items() if v["rate"])
            if points:
                xs, ys = zip(*points, strict=True)
                style = "-" if name.startswith("peepsy") else "--"
                ax.plot(xs, ys, style, marker="o", label=result["lanes"][name])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks([1, 64, 512], ["1", "64", "512"])
        ax.set_xlabel("requests in flight")
        ax.set_ylabel("echo round trips/s (100 B)")
        ax.set_title(f"({layout['id']}) {layout['title']}", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    axes[0][-1].legend(fontsize=8, loc="best")
    meta = result["meta"]
    fig.suptitle(
        f"peepsy echo benchmark, {meta['date']}, median of {meta['rounds']} rounds\n"
        f"load average {meta['load_before'][0]:.2f} before, {meta['load_after'][0]:.2f} after",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return None

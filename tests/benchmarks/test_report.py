"""How the report turns rounds into ratios and verdicts, on made-up rounds (no timing)."""

from __future__ import annotations

from typing import Any

from benchmarks.lanes import BY_NAME
from benchmarks.report import build, table
from benchmarks.run import Layout

LAYOUT = Layout("a", "master on core 0, children on core 1", 0, 1)


def _round(peepsy: float, bare: float, fast: float, load: float = 1.0) -> dict[str, Any]:
    def lane(rate: float) -> dict[str, Any]:
        windows = {
            w: {"rate": rate, "p50_us": 1e6 / rate, "p99_us": 2e6 / rate}
            for w in ["1", "64", "512"]
        }
        return {"windows": windows, "payloads": {}}

    return {
        "load": (load, load, load),
        "layouts": {
            "a": {"peepsy": lane(peepsy), "bare-json": lane(bare), "bare-fast": lane(fast)}
        },
        "memory": {},
    }


def _result(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    meta = {
        "date": "today",
        "python": "3",
        "node": None,
        "cpus": 2,
        "load_before": (1.0, 1.0, 1.0),
        "load_after": (1.0, 1.0, 1.0),
        "rounds": len(rounds),
        "seconds": 1.0,
        "memory_in_flight": 0,
        "fast_codec": "orjson",
        "codec_us_per_round_trip": {"json": 10.0, "orjson": 1.0},
        "skipped": {},
        "layout_note": None,
    }
    lanes = [BY_NAME[n] for n in ("peepsy", "bare-json", "bare-fast")]
    return build(meta, [LAYOUT], lanes, rounds)


def _target(result: dict[str, Any], target_id: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [t for t in result["targets"] if t["id"] == target_id]
    [target] = found
    return target


def test_ratios_are_taken_within_rounds_then_the_median() -> None:
    # The fast pipe is the faster bare one in two rounds, the json one in the third.
    rounds = [_round(50, 60, 100), _round(80, 60, 100), _round(30, 100, 40)]
    target = _target(_result(rounds), "vs-bare-512")
    assert target["rounds"] == [0.5, 0.8, 0.3]
    assert target["median"] == 0.5
    assert target["met"] is False
    assert target["rounds_straddle"] is True  # 0.8 >= 0.7 > 0.5


def test_a_target_whose_lanes_did_not_run_is_not_applicable() -> None:
    result = _result([_round(50, 60, 100)])
    for target_id in ("vs-ppe-512", "group-512", "memory", "10mb"):
        assert _target(result, target_id)["met"] is None
    assert "n/a" in table(result)


def test_p50_is_compared_with_the_lower_of_the_bare_pipes() -> None:
    target = _target(_result([_round(50, 100, 200)]), "p50")
    # The fast pipe (200/s) has the lower p50: 1e6/50 us over 1e6/200 us.
    assert target["median"] == 4.0
    assert target["met"] is False


def _sweep_round(raw: float, whole: float | None) -> dict[str, Any]:
    size = "10000000"
    lanes = {"raw-pipe": {"windows": {}, "payloads": {size: {"mb_per_s": raw}}}}
    if whole is not None:
        lanes["raw-whole"] = {"windows": {}, "payloads": {size: {"mb_per_s": whole}}}
    return {"load": (1.0, 1.0, 1.0), "layouts": {"a": lanes}, "memory": {}}


def test_the_json_bound_adds_the_fastest_codec_passes_to_the_whole_message_round_trip() -> None:
    meta = _result([_round(50, 60, 100)])["meta"] | {
        "codec_passes": {"size": 10_000_000, "ms": {"orjson": 10.0, "msgspec": 8.0}}
    }
    lanes = [BY_NAME[n] for n in ("raw-pipe", "raw-whole")]
    result = build(meta, [LAYOUT], lanes, [_sweep_round(1000.0, 2000.0)])
    bound = result["median"]["json_bound"]["a"]
    # 10 MB at 2,000 MB/s is a 5 ms round trip; with msgspec's 8 ms, 13 ms per 10 MB
    # echo, 769 MB/s: 0.77 of the raw pipe's 1,000.
    assert bound["whole_round_trip_ms"] == 5.0
    assert bound["codec_ms"] == 8.0
    assert abs(bound["vs_raw_pipe"] - 10 / 13) < 1e-9
    assert "at most 0.77x the raw pipe" in table(result)


def test_no_json_bound_without_the_whole_message_lane() -> None:
    meta = _result([_round(50, 60, 100)])["meta"] | {
        "codec_passes": {"size": 10_000_000, "ms": {"orjson": 10.0}}
    }
    result = build(meta, [LAYOUT], [BY_NAME["raw-pipe"]], [_sweep_round(1000.0, None)])
    assert result["median"]["json_bound"] == {}
    assert "Bound for any JSON echo" not in table(result)

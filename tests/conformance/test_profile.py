"""The reference worker passes the profile level in each mode, with the checks of the
other mode skipped; and the --transcripts example passes against its worker."""

from __future__ import annotations

import json
from pathlib import Path

from peepsy.conformance._schemas import builtin_transcripts
from peepsy.conformance._suite import load_all
from tests.conformance._cli import EXAMPLE_WORKER, PYTHON, REFERENCE, ROOT, run_cli


def profile_checks_by_mode() -> dict[str, set[str]]:
    """The built-in checks named ``profile.*``, by the mode their header asks for."""
    out: dict[str, set[str]] = {"any": set(), "sequential": set(), "concurrent": set()}
    for t in load_all([builtin_transcripts()]):
        if t.check.startswith("profile."):
            out[t.mode].add(t.check)
    return out


BY_MODE = profile_checks_by_mode()
ANY_MODE, SEQUENTIAL_ONLY, CONCURRENT_ONLY = (
    BY_MODE["any"],
    BY_MODE["sequential"],
    BY_MODE["concurrent"],
)


def profile_run(tmp_path: Path, *options: str) -> dict[str, dict[str, str]]:
    report = tmp_path / "report.json"
    run = run_cli("--only", "profile.*", "--json", str(report), *options, *REFERENCE)
    assert run.returncode == 0, run.stdout + run.stderr
    data = json.loads(report.read_text(encoding="utf-8"))
    return {c["check"]: c for c in data["checks"]}


def verdicts(checks: dict[str, dict[str, str]]) -> dict[str, str]:
    return {check: c["verdict"] for check, c in checks.items()}


def test_the_modes_each_have_profile_checks() -> None:
    assert {"profile.sequential-priority", "profile.queue-expiry-408"} <= SEQUENTIAL_ONLY
    assert {"profile.concurrent-overlap", "profile.concurrent-priority"} <= CONCURRENT_ONLY
    assert {"profile.echo", "profile.call-master"} <= ANY_MODE


def test_sequential(tmp_path: Path) -> None:
    checks = profile_run(tmp_path)
    assert verdicts(checks) == {
        **dict.fromkeys(ANY_MODE | SEQUENTIAL_ONLY, "pass"),
        **dict.fromkeys(CONCURRENT_ONLY, "skip"),
    }
    assert checks["profile.concurrent-overlap"]["message"] == (
        "for concurrent workers; this one is sequential"
    )


def test_concurrent(tmp_path: Path) -> None:
    checks = profile_run(tmp_path, "--mode", "concurrent")
    assert verdicts(checks) == {
        **dict.fromkeys(ANY_MODE | CONCURRENT_ONLY, "pass"),
        **dict.fromkeys(SEQUENTIAL_ONLY, "skip"),
    }
    assert checks["profile.sequential-priority"]["message"] == (
        "for sequential workers; this one is concurrent"
    )


def test_level_core_skips_the_profile(tmp_path: Path) -> None:
    checks = profile_run(tmp_path, "--only", "resp.unknown-action", "--level", "core")
    profile = {check: c for check, c in checks.items() if check.startswith("profile.")}
    assert set(verdicts(profile).values()) == {"skip"}
    assert all(c["message"].startswith("profile level not offered") for c in profile.values())
    assert checks["resp.unknown-action"]["verdict"] == "pass"
    # Profile checks alone with --level core would run nothing: refused before the run.
    run = run_cli("--only", "profile.*", "--level", "core", *REFERENCE)
    assert run.returncode == 2
    assert "leaves only profile checks, and --level core skips them" in run.stderr


def test_the_user_example_passes_against_its_worker(tmp_path: Path) -> None:
    mine = ROOT / "conformance" / "examples" / "my-actions"
    run = run_cli(
        "--no-builtin",
        "--transcripts",
        str(mine),
        "--",
        PYTHON,
        str(EXAMPLE_WORKER),
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PASS  example.add" in run.stdout
    # The example worker has no profile: the probe says so.
    assert "profile: not run (echo answered status 404" in run.stdout

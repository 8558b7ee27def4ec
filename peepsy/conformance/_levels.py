"""The levels a worker is checked at, and what a run made of each.

A level is offered by what the probe learns: ``core`` always; ``profile`` when the
probe's echo comes back exactly; ``cancel`` when the profile is offered and the worker's
READY states protocol 1.1 or later (the version that has CANCEL: a 1.0 worker, the Node
original among them, is never sent one, CANCEL-1). ``--level L`` names the highest level
to run: L runs even when not offered (its checks then fail), the levels above it do not.
Apart from the probe and the reports because both need it, and neither is about levels.
"""

from __future__ import annotations

import re

from peepsy.conformance._probe import ProbeResult
from peepsy.conformance._suite_setup import Options, SuiteResult
from peepsy.conformance._transcript import LEVELS, Level

#: The first protocol version with CANCEL.
CANCEL_SINCE = (1, 1)
_VERSION = re.compile(r"^(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})$")


def states_cancel(protocol: str | None) -> bool:
    """Does a READY stating ``protocol`` promise CANCEL? Absent means 1.0 (VER-1); a
    version that is not MAJOR.MINOR promises nothing."""
    found = _VERSION.match(protocol or "")
    return found is not None and (int(found[1]), int(found[2])) >= CANCEL_SINCE


def _cancel_reason(found: ProbeResult) -> str:
    """Why the cancel level is not offered (it is not)."""
    if not found.profile:
        return "it needs the profile's actions, and the profile level does not run"
    if found.protocol is None:
        return (
            "the worker's READY states no protocol, so it speaks 1.0 (VER-1);"
            " CANCEL needs 1.1 (CANCEL-1)"
        )
    return f"the worker's READY states protocol {found.protocol}; CANCEL needs 1.1 (CANCEL-1)"


def learn_levels(options: Options, result: SuiteResult, found: ProbeResult) -> None:
    """Which levels run, and why one does not (or runs although not offered). A worker
    that cannot be checked at all (``found.problem``, said once) gets no note."""
    asked = options.level
    result.worker_protocol = found.protocol
    if asked == "core":
        result.profile, result.profile_note = False, "--level core"
    elif asked in ("profile", "cancel") and not found.profile:
        result.profile = True
        result.profile_note = f"{found.note} (--level {asked}: profile checks run and fail)"
    else:
        result.profile, result.profile_note = found.profile, found.note
    offers = found.profile and states_cancel(found.protocol)
    if asked in ("core", "profile"):
        result.cancel, result.cancel_note = False, f"--level {asked}"
    elif asked == "cancel" and not offers:
        why = _cancel_reason(found)
        result.cancel, result.cancel_note = True, f"{why} (--level cancel: its checks run and fail)"
    else:
        why = "" if offers or found.problem else _cancel_reason(found)
        result.cancel, result.cancel_note = offers, why


def offered(level: Level, result: SuiteResult) -> str:
    """Why checks of ``level`` do not run against this worker, or "" when they do."""
    if level == "profile" and not result.profile:
        return f"profile level not offered: {result.profile_note}"
    if level == "cancel" and not result.cancel:
        return f"cancel level not offered: {result.cancel_note}"
    return ""


def level_states(result: SuiteResult) -> dict[str, str]:
    """Each level: ``reached`` (its checks ran and none failed), ``not-reached`` (one
    failed) or ``not-run`` (none of its checks ran)."""
    states: dict[str, str] = {}
    for level in LEVELS:
        mine = [
            o
            for o in result.outcomes
            if o.level == level and o.verdict not in ("skip", "untestable", "not-run")
        ]
        if not mine:
            states[level] = "not-run"
        else:
            states[level] = "not-reached" if any(o.failed for o in mine) else "reached"
    return states


def levels_line(result: SuiteResult) -> str:
    """The terminal's ``levels:`` line: each level's state, with the reason a level
    the worker does not offer did not run."""
    notes = {
        "profile": "" if result.profile else result.profile_note,
        "cancel": "" if result.cancel else result.cancel_note,
    }
    parts = []
    for level, state in level_states(result).items():
        if state == "not-run":
            note = notes.get(level, "")
            parts.append(f"{level}: not run" + (f" ({note})" if note else ""))
            continue
        bad = [o for o in result.outcomes if o.level == level and o.failed]
        parts.append(f"{level}: " + ("reached" if not bad else f"not reached ({len(bad)} failing)"))
    return "; ".join(parts)

"""The files of recording, read and written: a raw recording's events and a transcript's
records, both newline-delimited JSON (one :func:`dumps` line each). Apart from the tap
(``_record.py``) and the generalizer (``_generalize.py``) because both of them, the
``generalize`` command and tools/record_transcripts.py read and write these files the
same way.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from peepsy.conformance._schemas import record_problems


def dumps(value: Any) -> str:
    """One NDJSON line: UTF-8 as it is, except U+2028 and U+2029, escaped so that no
    editor takes them for line breaks."""
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def write_events(events: Iterable[Mapping[str, Any]], path: Path) -> None:
    with path.open("w", encoding="utf-8") as out:
        for event in events:
            out.write(dumps(event) + "\n")


def read_events(path: Path) -> list[dict[str, Any]]:
    events = []
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: not JSON: {exc}") from exc
        if not isinstance(event, dict) or "t" not in event:
            raise ValueError(f"{path}:{number}: not a recording event (no 't')")
        events.append(event)
    return events


def write_records(records: Sequence[Mapping[str, Any]], path: Path | None) -> None:
    """A transcript, one JSON record per line (to stdout when ``path`` is None)."""
    text = "".join(dumps(r) + "\n" for r in records)
    if path is None:
        sys.stdout.write(text)
    else:
        path.write_text(text, encoding="utf-8")


def validate_records(records: Sequence[Any]) -> list[str]:
    return [
        f"line {number}: {problem}"
        for number, record in enumerate(records, start=1)
        for problem in record_problems(record, header=number == 1)
    ]

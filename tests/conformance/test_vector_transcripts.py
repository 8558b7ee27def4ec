"""The vector transcripts are what conformance/vectors/messages.json says, and REQ-10's
readable id is read as the protocol defines it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conformance._cli import ROOT
from tools import vector_transcripts as tool


def test_the_committed_transcripts_are_generated_from_the_vectors() -> None:
    assert tool.main(["--check"]) == 0, "run: python -m tools.vector_transcripts"


def test_check_reports_drift(tmp_path: Path) -> None:
    vectors = json.loads(tool.VECTORS.read_text(encoding="utf-8"))
    for vector in vectors["vectors"]:
        if vector["id"] == "request-timeout-zero":
            vector["valid"] = True  # as if the vectors had changed their mind
    edited = tmp_path / "messages.json"
    edited.write_text(json.dumps(vectors), encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    for name in tool.HEADERS:
        (out / name).write_bytes((tool.OUT / name).read_bytes())
    assert tool.main(["--check", "--vectors", str(edited), "--out", str(out)]) == 1
    assert tool.main(["--vectors", str(edited), "--out", str(out)]) == 0
    assert tool.main(["--check", "--vectors", str(edited), "--out", str(out)]) == 0
    moved = (out / "vectors-valid.ndjson").read_text(encoding="utf-8")
    assert "vector request-timeout-zero" in moved


@pytest.mark.parametrize(
    ("message", "readable"),
    [
        ({"type": "REQUEST", "id": "a"}, "a"),
        ({"type": "REQUEST", "id": "i" * 128}, "i" * 128),
        ({"type": "REQUEST", "id": "i" * 129}, None),
        ({"type": "REQUEST", "id": "\U0001f389" * 128}, "\U0001f389" * 128),
        ({"type": "REQUEST", "id": ""}, None),
        ({"type": "REQUEST", "id": 7}, None),
        ({"type": "REQUEST", "request": {"id": "n"}, "id": "flat"}, "n"),
        ({"type": "REQUEST", "request": None, "id": "flat"}, None),
        ({"type": "REQUEST", "request": "x", "id": "flat"}, None),
        ({"type": "REQUEST", "request": {"id": 1}, "id": "flat"}, None),
        ({"type": "RESPONSE", "id": "a"}, None),
        (["REQUEST"], None),
    ],
)
def test_readable_id(message: Any, readable: str | None) -> None:
    assert tool.readable_id(message) == readable


def test_every_request_vector_is_sent() -> None:
    """No REQUEST vector is left out, except invalid ones breaking a sender's rule and
    those with more than one right answer (MSG-8's integral floats, which a sender must
    not write; REQ-10's flat id beside a `request` that is not an object)."""
    vectors = json.loads(tool.VECTORS.read_text(encoding="utf-8"))["vectors"]
    sent = "".join(
        (ROOT / "conformance/transcripts/core" / name).read_text() for name in tool.HEADERS
    )
    for vector in vectors:
        message = vector.get("message")
        request = isinstance(message, dict) and message.get("type") == "REQUEST"
        if not (request or "line" in vector):
            continue
        left_out = (
            (not vector["valid"] and vector.get("rule") in tool.SENDER_RULES)
            or vector.get("sendable") is False
            or tool.either_way(message)
        )
        assert (f'vector {vector["id"]}"' in sent) != left_out, vector["id"]

"""Wire recordings for snapshot tests: the lines a worker wrote, with what differs from
run to run masked, as bytes a snapshot stores.

A recording is made by the conformance suite's tap (``python -m peepsy.conformance
record --raw``), which a master spawns in place of the worker: :func:`tap_command`
builds that command, :meth:`WireRecording.load` reads what the tap wrote. The sync
harness does both (``spawn(..., record=True)`` then ``worker.recording()``).
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, overload

#: Members of a worker's message that differ from run to run, whatever its type: the
#: conformance generalizer turns the same ones into matchers.
VOLATILE: Final = ("pid", "timestamp", "requestsActive")


def tap_command(command: str | Sequence[str], output: str | Path) -> list[str]:
    """``command`` run through the recording tap, which writes the raw recording to
    ``output`` when the worker exits: spawn this in place of ``command``."""
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    tap = [sys.executable, "-m", "peepsy.conformance", "record", "--raw", "-o", str(output)]
    return [*tap, "--", *argv]


def mask_message(message: Any, ids: dict[str, str] | None = None) -> Any:
    """``message`` with what differs from run to run replaced by ``"<name>"``: ``pid``,
    ``timestamp``, ``requestsActive``, every member of a HEARTBEAT but its type, and an
    error's ``stack``. With ``ids`` (a dict, filled as it goes), request ids become
    ``<id1>``, ``<id2>``... in order of first appearance, so that the pairs still show."""
    if not isinstance(message, dict):
        return message
    beat = message.get("type") == "HEARTBEAT"
    out: dict[str, Any] = {}
    for key, value in message.items():
        if key != "type" and (beat or (key in VOLATILE and _number(value))):
            out[key] = f"<{key}>"
        elif key == "errorPayload" and isinstance(value, dict) and "stack" in value:
            out[key] = {k: ("<stack>" if k == "stack" else v) for k, v in value.items()}
        elif key == "id" and ids is not None and isinstance(value, str):
            out[key] = ids.setdefault(value, f"<id{len(ids) + 1}>")
        elif key == "request" and isinstance(value, dict):
            out[key] = mask_message(value, ids)
        else:
            out[key] = value
    return out


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class WireRecording(Sequence[bytes]):
    """The recorded lines, each with its newline (a line cut off by the worker's exit
    has none): a sequence of ``bytes`` whose
    :func:`bytes` is what a snapshot stores. Lines that needed no mask are the exact
    bytes written; masked lines are written again as compact JSON, in their member
    order. With ``sent=True`` the master's lines are in too, and every line starts
    with ``master: `` or ``worker: ``."""

    __slots__ = ("_lines",)

    def __init__(self, lines: Iterable[bytes]) -> None:
        self._lines = tuple(lines)
        for line in self._lines:
            # A line the worker left without its newline (it exited) is kept so.
            if b"\n" in line[:-1]:
                raise ValueError(f"a recorded line holds one line: {line!r}")

    @classmethod
    def from_events(
        cls,
        events: Iterable[Mapping[str, Any]],
        *,
        sent: bool = False,
        heartbeats: bool = False,
        mask: bool = True,
        mask_ids: bool = False,
    ) -> WireRecording:
        """The lines of a raw recording's events (``read_events``). ``heartbeats``
        keeps HEARTBEATs (dropped by default: how many come depends on timing);
        ``mask=False`` keeps every byte; ``mask_ids`` renumbers request ids."""
        ids: dict[str, str] | None = {} if mask_ids else None
        lines: list[bytes] = []
        for event in events:
            direction = event.get("dir")
            if direction not in ("to-worker", "from-worker") or "eof" in event:
                continue
            if direction == "to-worker" and not sent:
                continue
            if "line" in event:
                body = str(event["line"]).encode("utf-8", "surrogatepass")
            else:  # not UTF-8: the tap kept its bytes as hex
                body = bytes.fromhex(str(event.get("hex", "")))
            kept = _masked(body, heartbeats, mask, ids)
            if kept is None:
                continue
            if sent:
                kept = (b"master: " if direction == "to-worker" else b"worker: ") + kept
            lines.append(kept if event.get("partial") else kept + b"\n")
        return cls(lines)

    @classmethod
    def load(cls, path: str | Path, **options: Any) -> WireRecording:
        """A raw recording file, as the tap wrote it (see :meth:`from_events`)."""
        from peepsy.conformance._record_files import read_events  # noqa: PLC0415 - the suite

        return cls.from_events(read_events(Path(path)), **options)

    def messages(self) -> list[Any]:
        """Each line parsed as JSON (``sent=True`` recordings: without the prefix);
        a line that is not JSON comes back as its bytes."""
        out: list[Any] = []
        for line in self._lines:
            body = line.split(b": ", 1)[1] if line.startswith((b"master: ", b"worker: ")) else line
            try:
                out.append(json.loads(body))
            except ValueError:
                out.append(line)
        return out

    def __bytes__(self) -> bytes:
        return b"".join(self._lines)

    def __len__(self) -> int:
        return len(self._lines)

    @overload
    def __getitem__(self, index: int) -> bytes: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[bytes]: ...
    def __getitem__(self, index: int | slice) -> bytes | Sequence[bytes]:
        return self._lines[index]

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._lines)

    def __eq__(self, other: object) -> bool:
        # Anything else (syrupy's snapshot among them) gets its own say.
        if isinstance(other, WireRecording):
            return self._lines == other._lines
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._lines)

    def __repr__(self) -> str:
        shown = "".join(f"\n  {line.decode('utf-8', 'replace').rstrip()}" for line in self)
        return f"WireRecording({len(self)} lines){shown}"


def _masked(body: bytes, heartbeats: bool, mask: bool, ids: dict[str, str] | None) -> bytes | None:
    """The line to store, or None to drop it (a HEARTBEAT, unless kept)."""
    try:
        message = json.loads(body)
    except ValueError:
        return body  # not JSON: exactly as written, that is the point
    if not isinstance(message, dict):
        return body
    if message.get("type") == "HEARTBEAT" and not heartbeats:
        return None
    if not mask:
        return body
    masked = mask_message(message, ids)
    if masked == message:
        return body
    return json.dumps(masked, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

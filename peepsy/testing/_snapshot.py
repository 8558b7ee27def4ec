"""The syrupy extension that stores wire lines as their exact bytes. syrupy is an
optional dependency: this module is the only one that imports it, and only when the
extension is asked for (``peepsy.testing.WireSnapshotExtension``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

try:
    from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode
except ImportError as exc:
    raise ImportError(
        "peepsy.testing.WireSnapshotExtension needs syrupy: pip install syrupy"
    ) from exc

from peepsy.testing._recording import WireRecording


class WireSnapshotExtension(SingleFileSnapshotExtension):
    """One ``<test>.ndjson`` file per snapshot, holding the lines byte for byte.

    syrupy's JSON extension re-sorts and re-indents; this one writes what crossed the
    wire, so that a diff of a stored file is a diff on the wire. It takes a
    :class:`WireRecording` or ``bytes`` of whole lines (each ending in a newline)."""

    _write_mode = WriteMode.BINARY
    file_extension = "ndjson"

    def serialize(self, data: Any, **kwargs: Any) -> bytes:
        """The bytes to store: a recording's lines, or ``bytes`` of whole lines."""
        if isinstance(data, WireRecording):
            return bytes(data)
        if not isinstance(data, bytes):
            raise TypeError(
                f"a wire snapshot takes a WireRecording or bytes, not {type(data).__name__}"
            )
        if not data.endswith(b"\n"):
            raise ValueError(f"a wire snapshot is whole lines, each ending in a newline: {data!r}")
        return data

    def diff_lines(self, serialized_data: Any, snapshot_data: Any) -> Iterator[str]:
        """A diff line by line, as text: syrupy shows ``bytes`` as one long repr."""
        yield from super().diff_lines(_text(serialized_data), _text(snapshot_data))


def _text(data: Any) -> Any:
    return data.decode("utf-8", "backslashreplace") if isinstance(data, bytes) else data

"""A syrupy extension that stores one wire line as its exact bytes.

syrupy's JSON extension re-sorts and re-indents; this one writes the bytes as they are,
newline included, one file per snapshot, so a diff of a stored file is a diff on the wire.
"""

from __future__ import annotations

from typing import Any

from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode


class WireSnapshotExtension(SingleFileSnapshotExtension):
    """Exact bytes of one newline-terminated message, in ``<test>.ndjson``."""

    _write_mode = WriteMode.BINARY
    file_extension = "ndjson"

    def serialize(self, data: Any, **kwargs: Any) -> bytes:
        if not isinstance(data, bytes):
            raise TypeError(f"a wire snapshot takes bytes, not {type(data).__name__}")
        if not data.endswith(b"\n") or data.count(b"\n") != 1:
            raise ValueError(f"a wire snapshot is one newline-terminated line: {data!r}")
        return data

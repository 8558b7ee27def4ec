"""Newline-delimited framing (spec FRAME-1..FRAME-7), with no I/O of its own.

Bytes go in as they arrive, in chunks of any size; complete lines come out. A bad line
costs only itself: the stream resynchronizes at the next newline.
"""

from __future__ import annotations

from typing import Final

from peepsy._errors import LineTooLong, RemoteProtocolError, TruncatedLine

#: Default largest line (message plus newline) a receiver accepts: 16 MiB. The spec
#: requires at least 1 MiB (FRAME-6); the reference goes further so large payloads work.
DEFAULT_MAX_LINE_BYTES: Final = 16 * 1024 * 1024
MIN_MAX_LINE_BYTES: Final = 1024 * 1024
_BOM: Final = b"\xef\xbb\xbf"


class LineFramer:
    """Split a byte stream into lines without their terminators.

    ``feed`` returns ``(line_number, line)`` pairs and framing errors, in stream order; ``close``
    reports a partial last line. Blank lines are skipped (FRAME-5), a ``\\r`` before the
    ``\\n`` is dropped (FRAME-4) and a UTF-8 byte-order mark opening the stream is
    ignored (FRAME-7).
    """

    __slots__ = ("_at_start", "_buf", "_discarding", "_line_no", "_max")

    def __init__(self, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        if max_line_bytes < 2:
            raise ValueError("max_line_bytes must be at least 2")
        self._max = max_line_bytes
        self._buf = b""
        self._discarding = False
        self._at_start = True
        self._line_no = 0

    @property
    def max_line_bytes(self) -> int:
        return self._max

    @property
    def line_number(self) -> int:
        """How many lines have been completed so far (the number of the last one)."""
        return self._line_no

    @property
    def buffered(self) -> int:
        """Bytes held for an unfinished line."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[tuple[int, bytes] | RemoteProtocolError]:
        out: list[tuple[int, bytes] | RemoteProtocolError] = []
        if self._buf:
            data = self._buf + data
            self._buf = b""
        if self._at_start and data:
            if len(data) < len(_BOM) and _BOM.startswith(data):
                self._buf = data
                return out
            self._at_start = False
            if data.startswith(_BOM):
                data = data[len(_BOM) :]
        limit = self._max - 1  # the limit counts the newline
        start = 0
        find = data.find
        while (end := find(b"\n", start)) >= 0:
            self._line_no += 1
            if self._discarding:
                self._discarding = False
            elif end - start > limit:
                out.append(self._too_long(end - start + 1))
            else:
                line = data[start:end]
                if line.endswith(b"\r"):
                    line = line[:-1]
                if line and not line.isspace():
                    out.append((self._line_no, line))
            start = end + 1
        if start < len(data):
            rest = data[start:]
            if self._discarding:
                pass
            elif len(rest) > limit:
                # Report now, not at the newline that may never come, and stop buffering.
                self._discarding = True
                out.append(self._too_long(len(rest), self._line_no + 1, so_far=True))
            else:
                self._buf = rest
        return out

    def close(self) -> list[RemoteProtocolError]:
        """End of stream. Returns an error if it cut a line short (FRAME-2)."""
        rest, self._buf = self._buf, b""
        discarding, self._discarding = self._discarding, False
        if discarding or not rest.strip():
            return []
        return [
            TruncatedLine(
                f"stream ended inside a line ({len(rest)} bytes without a newline)",
                line=self._line_no + 1,
            )
        ]

    def _too_long(self, size: int, line: int | None = None, *, so_far: bool = False) -> LineTooLong:
        more = " at least" if so_far else ""
        return LineTooLong(
            f"line of{more} {size} bytes exceeds the limit of {self._max} bytes; it is dropped",
            line=self._line_no if line is None else line,
        )

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
#: How much of an over-long line is kept to read its request id from (FRAME-12): enough
#: for the longest id (128 characters, each escaped as 12 bytes) after the members before it.
HEAD_BYTES: Final = 2048
_BOM: Final = b"\xef\xbb\xbf"
_JSON_SPACE: Final = frozenset(b" \t\r")


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
        self._buf = bytearray()
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

    def feed(self, data: bytes) -> list[tuple[int, bytes] | LineTooLong]:
        out: list[tuple[int, bytes] | LineTooLong] = []
        if self._at_start:
            if self._buf:
                data = bytes(self._buf) + data
                self._buf.clear()
            if len(data) < len(_BOM) and _BOM.startswith(data):
                self._buf += data
                return out
            self._at_start = False
            if data.startswith(_BOM):
                data = data[len(_BOM) :]
        limit = self._max - 1  # the limit counts the newline
        start = 0
        if self._buf or self._discarding:
            # Finish the pending line. Only the new bytes are searched: what is buffered
            # holds no newline, so a long line fed in small chunks costs linear time.
            end = data.find(b"\n")
            if end < 0:
                if not self._discarding:
                    if len(self._buf) + len(data) > limit:
                        size = len(self._buf) + len(data)
                        out.append(self._too_long(size, self._head(data), self._line_no + 1, True))
                        self._buf.clear()
                        self._discarding = True
                    else:
                        self._buf += data
                return out
            self._line_no += 1
            if self._discarding:
                self._discarding = False
            elif len(self._buf) + end > limit:
                out.append(self._too_long(len(self._buf) + end + 1, self._head(data)))
                self._buf.clear()
            else:
                self._buf += data[:end]
                line = bytes(self._buf)
                self._buf.clear()
                self._emit(line, out)
            start = end + 1
        find = data.find
        while (end := find(b"\n", start)) >= 0:
            self._line_no += 1
            if end - start > limit:
                out.append(self._too_long(end - start + 1, data[start : start + HEAD_BYTES]))
            else:
                self._emit(data[start:end], out)
            start = end + 1
        if start < len(data):
            if len(data) - start > limit:
                # Report now, not at the newline that may never come, and stop buffering.
                self._discarding = True
                head = data[start : start + HEAD_BYTES]
                out.append(self._too_long(len(data) - start, head, self._line_no + 1, True))
            else:
                self._buf += data[start:]
        return out

    def _emit(self, line: bytes, out: list[tuple[int, bytes] | LineTooLong]) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        # Blank means JSON whitespace only (FRAME-5); a form feed is not JSON whitespace.
        if line and (line[0] not in _JSON_SPACE or line.strip(b" \t\r")):
            out.append((self._line_no, line))

    def close(self) -> list[RemoteProtocolError]:
        """End of stream. Returns an error if it cut a line short (FRAME-2)."""
        rest = bytes(self._buf)
        self._buf.clear()
        discarding, self._discarding = self._discarding, False
        if discarding or not rest.strip(b" \t\r"):
            return []
        return [
            TruncatedLine(
                f"stream ended inside a line ({len(rest)} bytes without a newline)",
                line=self._line_no + 1,
            )
        ]

    def _head(self, data: bytes) -> bytes:
        """The first bytes of the pending line, continued by ``data``."""
        head = bytes(self._buf[:HEAD_BYTES])
        return head + data[: HEAD_BYTES - len(head)]

    def _too_long(
        self, size: int, head: bytes, line: int | None = None, so_far: bool = False
    ) -> LineTooLong:
        more = " at least" if so_far else ""
        return LineTooLong(
            f"line of{more} {size} bytes exceeds the limit of {self._max} bytes; it is dropped",
            line=self._line_no if line is None else line,
            head=head,
        )

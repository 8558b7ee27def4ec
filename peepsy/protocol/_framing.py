"""Newline-delimited framing (spec FRAME-1..FRAME-7), with no I/O of its own.

Bytes go in as they arrive, in chunks of any size; complete lines come out. A bad line
costs only itself: the stream resynchronizes at the next newline.
"""

from __future__ import annotations

from typing import Any, Final

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
#: A pending line is held as the chunks it came in and joined once, at its newline: one
#: copy of a 10 MB line, where growing one buffer copied it several times over. Chunks
#: smaller than this are gathered into one part, so that a peer writing a byte at a
#: time cannot make a long line cost an object per byte.
_SMALL_PART: Final = 4096


class LineRun:
    """Two or more complete lines that came in one chunk, as they came: :attr:`data`
    holds them joined by their newlines (the last one's dropped), the first numbered
    :attr:`first`. From :meth:`LineFramer.feed_runs`, for a reader that reads them all
    in one pass; :meth:`LineFramer.split` gives its lines one by one, as
    :meth:`LineFramer.feed` would have."""

    __slots__ = ("data", "first")

    def __init__(self, data: bytes, first: int) -> None:
        self.data = data
        self.first = first

    def __repr__(self) -> str:
        return f"LineRun(first={self.first}, {len(self.data)} bytes)"


class LineFramer:
    """Split a byte stream into lines without their terminators.

    ``feed`` returns ``(line_number, line)`` pairs and framing errors, in stream order; ``close``
    reports a partial last line. Blank lines are skipped (FRAME-5), a ``\\r`` before the
    ``\\n`` is dropped (FRAME-4) and a UTF-8 byte-order mark opening the stream is
    ignored (FRAME-7).
    """

    __slots__ = ("_at_start", "_discarding", "_held", "_line_no", "_max", "_parts")

    def __init__(self, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        if max_line_bytes < 2:
            raise ValueError("max_line_bytes must be at least 2")
        self._max = max_line_bytes
        self._parts: list[bytes | bytearray] = []
        self._held = 0  # bytes in _parts
        self._discarding = False
        self._at_start = True
        self._line_no = 0

    @property
    def max_line_bytes(self) -> int:
        """The longest line accepted, in bytes, its newline included (FRAME-4)."""
        return self._max

    @property
    def line_number(self) -> int:
        """How many lines have been completed so far (the number of the last one)."""
        return self._line_no

    @property
    def buffered(self) -> int:
        """Bytes held for an unfinished line."""
        return self._held

    def feed(self, data: bytes) -> list[tuple[int, bytes] | LineTooLong]:
        """Split ``data`` into lines, keeping an unfinished one for the next call.

        Returns ``(line number, line)`` for each complete line, without its newline or a
        CR before it (blank lines are skipped, FRAME-5; a UTF-8 BOM opening the stream is
        dropped), and a :class:`LineTooLong` in place of a line over
        :attr:`max_line_bytes`, whose rest is then skipped."""
        return self._feed(data, False)  # type: ignore[return-value]  # no runs asked for

    def feed_runs(self, data: bytes) -> list[tuple[int, bytes] | LineRun | LineTooLong]:
        """As :meth:`feed`, except that the complete lines of ``data``, when there are
        two or more of them, come as one :class:`LineRun` (not yet split, blank lines and
        CRs in it) for a reader that reads them in one pass. The end of a line left
        unfinished by the chunk before still comes alone, first. A run is never longer
        than :attr:`max_line_bytes`, so no line in it is too long."""
        return self._feed(data, True)

    def split(self, run: LineRun) -> list[tuple[int, bytes]]:
        """The lines of ``run``, numbered, as :meth:`feed` gives them."""
        out: list[tuple[int, bytes] | LineTooLong] = []
        number = run.first
        for line in run.data.split(b"\n"):
            self._emit(line, number, out)
            number += 1
        return out  # type: ignore[return-value]  # a run holds no line too long

    def _feed(self, data: bytes, runs: bool) -> list[tuple[int, bytes] | LineRun | LineTooLong]:
        out: list[tuple[int, bytes] | LineRun | LineTooLong] = []
        if self._at_start:
            if self._parts:
                data = self._take() + data
            if len(data) < len(_BOM) and _BOM.startswith(data):
                self._hold(data)
                return out
            self._at_start = False
            if data.startswith(_BOM):
                data = data[len(_BOM) :]
        limit = self._max - 1  # the limit counts the newline
        start = 0
        if self._parts or self._discarding:
            start = self._finish_pending(data, limit, out)
            if start < 0:
                return out
        find = data.find
        end = find(b"\n", start)
        if runs and end >= 0:
            # Pipelined traffic: every complete line of the chunk but the pending one's
            # end, taken whole: two C scans instead of a Python step per line. (A chunk
            # of one line, one request at a time, costs only the backward scan, which
            # stops at once at its newline.)
            last = data.rfind(b"\n")
            if last > end and last - start <= limit:
                out.append(LineRun(data[start:last], self._line_no + 1))
                self._line_no += data.count(b"\n", start, last) + 1
                start = last + 1
                end = -1
        while end >= 0:
            self._line_no += 1
            if end - start > limit:
                out.append(self._too_long(end - start + 1, data[start : start + HEAD_BYTES]))
            elif end > start and data[end - 1] != 13 and data[start] not in _JSON_SPACE:
                out.append((self._line_no, data[start:end]))  # the common line, as is
            else:
                self._emit(data[start:end], self._line_no, out)
            start = end + 1
            end = find(b"\n", start)
        if start < len(data):
            if len(data) - start > limit:
                # Report now, not at the newline that may never come, and stop buffering.
                self._discarding = True
                head = data[start : start + HEAD_BYTES]
                out.append(self._too_long(len(data) - start, head, self._line_no + 1, True))
            else:
                self._hold(data[start:])
        return out

    def _finish_pending(self, data: bytes, limit: int, out: list[Any]) -> int:
        """Finish the pending line with ``data``; where the rest of ``data`` starts, or
        -1 when it has no newline (then held, or skipped). Only the new bytes are
        searched: what is held holds no newline, so a long line fed in small chunks
        costs linear time."""
        end = data.find(b"\n")
        if end < 0:
            if not self._discarding:
                size = self._held + len(data)
                if size > limit:
                    out.append(self._too_long(size, self._head(data), self._line_no + 1, True))
                    self._take()
                    self._discarding = True
                else:
                    self._hold(data)
            return -1
        self._line_no += 1
        if self._discarding:
            self._discarding = False
        elif self._held + end > limit:
            out.append(self._too_long(self._held + end + 1, self._head(data)))
            self._take()
        else:
            self._hold(data[:end])
            self._emit(self._take(), self._line_no, out)
        return end + 1

    def _hold(self, chunk: bytes) -> None:
        parts = self._parts
        if len(chunk) >= _SMALL_PART:
            parts.append(chunk)
        elif parts and type(last := parts[-1]) is bytearray and len(last) < _SMALL_PART:
            last += chunk
        else:
            parts.append(bytearray(chunk))
        self._held += len(chunk)

    def _take(self) -> bytes:
        """The pending line's bytes; nothing is held after."""
        parts = self._parts
        line = bytes(parts[0]) if len(parts) == 1 else b"".join(parts)
        self._parts = []
        self._held = 0
        return line

    @staticmethod
    def _emit(line: bytes, number: int, out: list[Any]) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        # Blank means JSON whitespace only (FRAME-5); a form feed is not JSON whitespace.
        if line and (line[0] not in _JSON_SPACE or line.strip(b" \t\r")):
            out.append((number, line))

    def close(self) -> list[RemoteProtocolError]:
        """End of stream. Returns an error if it cut a line short (FRAME-2)."""
        rest = self._take()
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
        head = b""
        for part in self._parts:
            head += part[: HEAD_BYTES - len(head)]
            if len(head) >= HEAD_BYTES:
                return head
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

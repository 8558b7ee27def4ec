"""A child's pipes widened while large lines cross them, and narrowed again after (Linux).

A pipe holds 64 KiB by default on Linux, so a 10 MB line crosses it in 160 writes and as
many reads and wake-ups on each side. Widened to :data:`WIDE_BYTES` it takes a quarter
of those; measured on the 2-core development machine, a 10 MB echo went from about 130
to about 185 MB/s (docs/performance.md). Wide pipes are not kept for small lines:
pipelined small requests measured a tenth to a third slower with both pipes widened, so
the pipes go back to their own size at the first small write that finds them drained.

Nothing here is needed for correctness: where the system has no ``F_SETPIPE_SZ``, or
refuses it (over the user's pipe quota, ``EPERM``; a pipe holding more than the smaller
size, ``EBUSY``), the pipe keeps the size it has.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
from typing import Final

_SET: Final = getattr(fcntl, "F_SETPIPE_SZ", None)
_GET: Final = getattr(fcntl, "F_GETPIPE_SZ", None)
#: The capacity a pipe is given while large lines cross it. 256 KiB measured better
#: than 1 MiB for a 10 MB echo (about 200 against 170 MB/s): the wider ring of pages
#: no longer stays in the cache.
WIDE_BYTES: Final = 256 * 1024
#: Threshold used when a pipe's size cannot be read: nothing is ever widened.
_NEVER: Final = 1 << 62
#: The most one read asks for. asyncio asks for 256 KiB, and a buffer that large is
#: past glibc's mmap threshold (128 KiB): every read mapped a fresh buffer, shrank it to
#: what came (mremap) and unmapped it, three system calls and a page fault or more per
#: read (measured at one request in flight: the master's CPU per request fell from 75-83
#: to 55 us; see docs/performance.md). A default pipe never holds more than 64 KiB, so
#: one read of this size still empties it.
READ_BYTES: Final = 64 * 1024
#: The most the master reads of a child's output at a time while the child's pipes have
#: their own size (small lines; :data:`READ_BYTES` while they are wide). At 512 requests
#: in flight a read then brought about 40 KB (median of 574 reads), some 260 answers,
#: and the master woke as many callers in one loop pass. With 16 KiB reads (about 107
#: answers each), three interleaved pairs went from 113k-119k to 123k-127k round
#: trips/s, the master's CPU per request from 8.4-8.9 to 7.9-8.1 us
#: (docs/performance.md); our reading is that a smaller pass keeps its objects in the
#: CPU's cache. Large payloads measured the same either way.
SMALL_READ_BYTES: Final = 16 * 1024


def holds_long_line(data: bytes, threshold: int) -> bool:
    """Whether ``data`` (a write of at least ``threshold`` bytes, cut anywhere in a stream
    of lines) begins or ends inside a line of at least ``threshold`` bytes. Only that is
    large traffic: a pipelined burst of short lines can fill a pipe too, and widening
    for it measured slower (the pipes then widened and narrowed hundreds of times a
    second). Each search stops at the first newline, a few bytes in for short lines."""
    end = len(data)
    return data.find(b"\n", 0, threshold) < 0 or data.rfind(b"\n", end - threshold, end - 1) < 0


def limit_reads(transport: asyncio.BaseTransport | None, size: int = READ_BYTES) -> None:
    """Make ``transport`` (asyncio's read side of a pipe) read at most ``size`` bytes at a
    time; a transport without that setting (another event loop's) is left as is."""
    if transport is not None and isinstance(getattr(transport, "max_size", None), int):
        with contextlib.suppress(AttributeError):
            transport.max_size = size  # type: ignore[attr-defined]


class PipeSizer:
    """The two pipes of one child: its stdin (we write) and its stdout (we read).

    :attr:`threshold` is the smaller of the pipes' own sizes: a line written that is
    longer (:func:`holds_long_line`), or reads that brought that much of one line, is
    large traffic, and both pipes are widened; :meth:`settle` narrows them again.
    """

    __slots__ = ("_pipes", "_reader", "_sizes", "threshold", "wide")

    def __init__(
        self, *pipes: asyncio.BaseTransport, reader: asyncio.BaseTransport | None = None
    ) -> None:
        self._pipes = pipes
        #: The pipe we read (one of ``pipes``): it reads :data:`SMALL_READ_BYTES` at a
        #: time, and :data:`READ_BYTES` while the pipes are wide.
        self._reader = reader
        limit_reads(reader, SMALL_READ_BYTES)
        self._sizes: list[int] = []
        self.wide = False
        self.threshold = _NEVER
        if _GET is None or _SET is None:
            return
        for pipe in pipes:
            fd = _fileno(pipe)
            if fd is None:
                return
            try:
                self._sizes.append(fcntl.fcntl(fd, _GET))
            except OSError:
                return
        if self._sizes and min(self._sizes) < WIDE_BYTES:
            self.threshold = min(self._sizes)

    def widen(self) -> None:
        """Large lines are crossing: give both pipes :data:`WIDE_BYTES`."""
        if self.wide or self.threshold == _NEVER:
            return
        self.wide = True
        limit_reads(self._reader, READ_BYTES)
        for pipe, size in zip(self._pipes, self._sizes, strict=True):
            if size < WIDE_BYTES:
                self._set(pipe, WIDE_BYTES)

    def settle(self) -> None:
        """A small line is being written: narrow the pipes back, if they hold no more than
        their own size by now (otherwise the system refuses, and a later call tries again)."""
        narrowed = True
        for pipe, size in zip(self._pipes, self._sizes, strict=True):
            if size < WIDE_BYTES and not self._set(pipe, size):
                narrowed = False
        self.wide = not narrowed
        if narrowed:
            limit_reads(self._reader, SMALL_READ_BYTES)

    @staticmethod
    def _set(pipe: asyncio.BaseTransport, size: int) -> bool:
        # The descriptor is looked up each time, and only on an open transport: a closed
        # one's number may already belong to another file.
        fd = _fileno(pipe)
        if fd is None or _SET is None:
            return False
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, _SET, size)
            return True
        return False


def _fileno(pipe: asyncio.BaseTransport) -> int | None:
    if pipe.is_closing():
        return None
    file = pipe.get_extra_info("pipe")
    try:
        return int(file.fileno())
    except (AttributeError, OSError, ValueError):
        return None

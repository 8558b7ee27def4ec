"""The writers: a line after the peer spoke goes at once; a burst is one write, or two."""

from __future__ import annotations

import asyncio

from peepsy.transport import BatchingWriter, ChannelListener
from peepsy.transport._base import EARLY_BYTES, LockedChannel


class _Recorder(BatchingWriter):
    __slots__ = ("sent",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.sent: list[bytes] = []

    def _send(self, data: bytes) -> None:
        self.sent.append(data)


async def _one_pass() -> None:
    """Let the loop run what is ready now (a flush scheduled with call_soon)."""
    await asyncio.sleep(0)


def test_sequential_lines_each_go_at_once_and_schedule_nothing() -> None:
    async def main() -> None:
        w = _Recorder(asyncio.get_running_loop())
        for n in range(3):
            w.write(b"%d\n" % n)
            assert w.sent[-1] == b"%d\n" % n  # written inside write(), not a pass later
            assert not w._scheduled
            w.heard()  # the answer came
        assert w.sent == [b"0\n", b"1\n", b"2\n"]

    asyncio.run(main())


def test_a_burst_leaves_as_its_first_line_then_one_write() -> None:
    async def main() -> None:
        w = _Recorder(asyncio.get_running_loop())
        for n in range(4):
            w.write(b"%d\n" % n)
        assert w.sent == [b"0\n"]
        await _one_pass()
        assert w.sent == [b"0\n", b"1\n2\n3\n"]
        w.write(b"4\n")  # after a flush, the next line is a first again
        assert w.sent[-1] == b"4\n"

    asyncio.run(main())


def test_a_read_during_a_burst_does_not_let_a_line_overtake_the_batch() -> None:
    async def main() -> None:
        w = _Recorder(asyncio.get_running_loop())
        w.write(b"a\n")
        w.write(b"b\n")  # batched, flush scheduled
        w.heard()
        w.write(b"c\n")  # must follow b, not go ahead of it
        assert w.sent == [b"a\n"]
        await _one_pass()
        assert w.sent == [b"a\n", b"b\nc\n"]

    asyncio.run(main())


def test_flush_by_hand_sends_what_is_batched_and_nothing_twice() -> None:
    async def main() -> None:
        w = _Recorder(asyncio.get_running_loop())
        w.write(b"a\n")
        w.write(b"b\n")
        w.flush()
        assert w.sent == [b"a\n", b"b\n"]
        await _one_pass()  # the scheduled flush finds nothing left
        assert w.sent == [b"a\n", b"b\n"]

    asyncio.run(main())


class _Locked(LockedChannel):
    """A child's channel that records its writes."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__()
        if loop is not None:
            self._begin(loop)
        self.sent: list[bytes] = []

    def start(self, listener: ChannelListener) -> None:
        self._begin(asyncio.get_running_loop())

    def close(self) -> None: ...

    def _write_all(self, view: memoryview) -> None:
        self.sent.append(bytes(view))


def test_a_child_s_answers_to_one_read_leave_at_once_and_a_later_burst_is_batched() -> None:
    async def main() -> None:
        ch = _Locked(asyncio.get_running_loop())
        ch.heard()
        ch.write(b"a\n")  # the answers of a read, gathered into one write by the session
        assert ch.sent == [b"a\n"]
        ch.write(b"b\n")  # a handler that finished later, before the master spoke again
        ch.write(b"c\n")
        assert ch.sent == [b"a\n"]
        await _one_pass()
        assert ch.sent == [b"a\n", b"b\nc\n"]
        ch.write(b"d\n")  # after a flush, the next line is a first again
        assert ch.sent[-1] == b"d\n"
        ch.write_now(b"hb\n")  # the heartbeat thread's way: never batched
        assert ch.sent[-1] == b"hb\n"

    asyncio.run(main())


def test_a_child_s_lines_before_its_channel_starts_are_dropped() -> None:
    async def main() -> None:
        ch = _Locked()
        ch.write(b"early\n")  # no master to reach yet
        ch.flush()
        assert ch.sent == []
        ch.start(None)  # type: ignore[arg-type]
        ch.write(b"a\n")
        assert ch.sent == [b"a\n"]

    asyncio.run(main())


def test_a_burst_s_lines_leave_early_once_they_fill_the_early_size_then_once_more() -> None:
    async def main() -> None:
        w = _Recorder(asyncio.get_running_loop())
        line = b"x" * 99 + b"\n"
        per_early = -(-EARLY_BYTES // len(line))  # lines that reach EARLY_BYTES
        w.write(b"first\n")
        for _ in range(per_early - 1):
            w.write(line)
        assert w.sent == [b"first\n"]  # still short of EARLY_BYTES
        w.write(line)
        assert w.sent == [b"first\n", line * per_early]  # the peer can start on these
        for _ in range(3 * per_early):  # no second early write in the same pass
            w.write(line)
        assert len(w.sent) == 2
        await _one_pass()
        assert w.sent == [b"first\n", line * per_early, line * (3 * per_early)]
        w.write(b"again\n")  # a new pass: first line at once, then a fresh allowance
        for _ in range(per_early):
            w.write(line)
        assert w.sent[-2:] == [b"again\n", line * per_early]

    asyncio.run(main())


def test_a_line_larger_than_the_early_size_leaves_as_soon_as_it_is_batched() -> None:
    async def main() -> None:
        w = _Recorder(asyncio.get_running_loop())
        big = b"y" * EARLY_BYTES + b"\n"
        w.write(b"a\n")
        w.write(big)
        assert w.sent == [b"a\n", big]
        w.write(b"b\n")
        assert w.sent == [b"a\n", big]
        await _one_pass()
        assert w.sent == [b"a\n", big, b"b\n"]

    asyncio.run(main())

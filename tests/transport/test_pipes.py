"""A child's pipes are widened while large lines cross them and narrowed after (Linux)."""

from __future__ import annotations

import asyncio
import fcntl
import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from peepsy.transport import ProcessLauncher, SpawnSpec, _pipes
from peepsy.transport._pipes import WIDE_BYTES, PipeSizer, holds_long_line
from peepsy.transport._process import ProcessTransport, _StdioWatch
from tests.process._support import run

pytestmark = pytest.mark.skipif(
    not hasattr(fcntl, "F_SETPIPE_SZ"), reason="pipe sizes are set on Linux only"
)

#: Echoes its stdin to its stdout, byte for byte: no framing, so the test sees the pipes.
ECHO = (
    "import os\n"
    "while chunk := os.read(0, 1 << 20):\n"
    "    view = memoryview(chunk)\n"
    "    while view:\n"
    "        view = view[os.write(1, view):]\n"
)


class _End:
    """What PipeSizer needs of an asyncio pipe transport: its file, and whether it closes."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.closing = False

    def fileno(self) -> int:
        return self.fd

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str) -> Any:
        return self if name == "pipe" else None


class _Quiet:
    """A transport listener that ignores everything."""

    def data_received(self, data: bytes) -> None: ...
    def stderr_received(self, data: bytes) -> None: ...
    def eof_received(self) -> None: ...
    def channel_broken(self, reason: str) -> None: ...
    def process_exited(self, returncode: int | None) -> None: ...


def _watch_on(w: int) -> tuple[_StdioWatch, PipeSizer]:
    """A child's stdout watch (in a running loop) whose pipes are sized through ``w``."""
    watch = _StdioWatch(_Quiet())
    watch.pipes = sizer = PipeSizer(_End(w))  # type: ignore[arg-type]
    return watch, sizer


def _size(fd: int) -> int:
    return fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ)


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    os.set_blocking(w, False)
    yield r, w
    os.close(r)
    os.close(w)


def test_widen_then_settle_restores_the_pipe_s_own_size(pipe: tuple[int, int]) -> None:
    r, w = pipe
    own = _size(w)
    sizer = PipeSizer(_End(w))  # type: ignore[arg-type]
    assert sizer.threshold == own
    assert not sizer.wide
    sizer.widen()
    assert sizer.wide
    assert _size(w) == WIDE_BYTES
    sizer.settle()
    assert not sizer.wide
    assert _size(r) == own


def test_a_pipe_holding_more_than_its_own_size_stays_wide_until_drained(
    pipe: tuple[int, int],
) -> None:
    r, w = pipe
    own = _size(w)
    sizer = PipeSizer(_End(w))  # type: ignore[arg-type]
    sizer.widen()
    assert os.write(w, b"x" * (own + 4096)) == own + 4096  # fits only in the wide pipe
    sizer.settle()  # the system refuses (EBUSY): nothing written may be lost
    assert sizer.wide
    assert _size(w) == WIDE_BYTES
    got = b""
    while len(got) < own + 4096:
        got += os.read(r, 1 << 20)
    sizer.settle()
    assert not sizer.wide
    assert _size(w) == own


def test_a_closed_transport_s_descriptor_is_never_touched(pipe: tuple[int, int]) -> None:
    _, w = pipe
    end = _End(w)
    sizer = PipeSizer(end)  # type: ignore[arg-type]
    end.closing = True  # its number may belong to another file by now
    sizer.widen()
    assert _size(w) != WIDE_BYTES


def test_without_pipe_sizes_nothing_is_large(
    pipe: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_pipes, "_GET", None)
    _, w = pipe
    sizer = PipeSizer(_End(w))  # type: ignore[arg-type]
    assert sizer.threshold > 1 << 40
    sizer.widen()
    assert not sizer.wide
    assert _size(w) != WIDE_BYTES


def test_a_read_that_filled_the_pipe_widens_it(pipe: tuple[int, int]) -> None:
    _, w = pipe
    seen: list[bytes] = []

    class Listener:
        def data_received(self, data: bytes) -> None:
            seen.append(data)

    async def main() -> None:
        watch = _StdioWatch(Listener())  # type: ignore[arg-type]
        watch.pipes = sizer = PipeSizer(_End(w))  # type: ignore[arg-type]
        watch.pipe_data_received(1, b"x" * (sizer.threshold - 1))
        assert not sizer.wide
        watch.pipe_data_received(1, b"x" * sizer.threshold)
        assert sizer.wide
        assert _size(w) == WIDE_BYTES
        assert [len(d) for d in seen] == [sizer.threshold - 1, sizer.threshold]

    run(main())


def test_only_a_long_line_is_large_traffic_not_a_burst_of_short_ones() -> None:
    short = b'{"type":"RESPONSE","id":"m1","status":200}\n'
    burst = short * (70_000 // len(short))
    assert not holds_long_line(burst, 65536)
    assert not holds_long_line(burst[17:-9], 65536)  # a read cut anywhere
    assert holds_long_line(b"y" * 70_000 + b"\n", 65536)
    assert holds_long_line(b"y" * 70_000, 65536)  # a read inside a long line
    assert holds_long_line(short + b"y" * 70_000 + b"\n", 65536)  # a burst ending in one
    assert holds_long_line(b"y" * 70_000 + b"\n" + short, 65536)  # or starting with one


def test_a_full_read_of_short_lines_leaves_the_pipe_as_it_is(pipe: tuple[int, int]) -> None:
    _, w = pipe

    async def main() -> None:
        watch, sizer = _watch_on(w)
        line = b'{"type":"RESPONSE","id":"m1","status":200}\n'
        watch.pipe_data_received(1, line * (sizer.threshold // len(line) + 1))
        assert not sizer.wide
        assert _size(w) != WIDE_BYTES

    run(main())


def test_a_real_child_s_pipes_widen_for_a_large_line_and_narrow_for_a_small_one() -> None:
    async def main() -> None:
        received = bytearray()
        want = 0
        arrived = asyncio.Event()

        class Listener(_Quiet):
            def data_received(self, data: bytes) -> None:
                received.extend(data)
                if len(received) >= want:
                    arrived.set()

        transport = await ProcessLauncher().spawn(
            SpawnSpec([sys.executable, "-c", ECHO]), Listener()
        )
        assert isinstance(transport, ProcessTransport)
        proc: Any = transport._proc
        fds = [proc.get_pipe_transport(i).get_extra_info("pipe").fileno() for i in (0, 1)]
        own = [_size(fd) for fd in fds]
        try:
            big = b"y" * (1 << 20) + b"\n"
            want = len(big)
            transport.write(big)  # widened before it is written
            assert [_size(fd) for fd in fds] == [WIDE_BYTES, WIDE_BYTES]
            await asyncio.wait_for(arrived.wait(), 20)
            arrived.clear()
            want += 6
            transport.write(b"small\n")  # both pipes are drained: back to their own size
            assert [_size(fd) for fd in fds] == own
            await asyncio.wait_for(arrived.wait(), 20)
            assert bytes(received) == big + b"small\n"
        finally:
            transport.close_input()
            await transport.wait()

    run(main())


def test_reads_are_small_for_small_lines_and_a_default_pipe_s_size_for_long_ones() -> None:
    async def main() -> None:
        transport = await ProcessLauncher().spawn(SpawnSpec([sys.executable, "-c", ECHO]), _Quiet())
        assert isinstance(transport, ProcessTransport)
        try:
            # asyncio asks for 256 KiB a read: past glibc's mmap threshold, a buffer
            # mapped and unmapped per read.
            stdout: Any = transport._proc.get_pipe_transport(1)
            assert stdout.max_size == _pipes.SMALL_READ_BYTES == 16384
            transport._pipes.widen()
            assert stdout.max_size == _pipes.READ_BYTES == 65536
            transport._pipes.settle()  # nothing written yet: the pipes are drained
            assert stdout.max_size == _pipes.SMALL_READ_BYTES
        finally:
            transport.close_input()
            await transport.wait()

    run(main())


def test_a_long_line_in_reads_smaller_than_the_pipe_widens_it_once_that_much_came(
    pipe: tuple[int, int],
) -> None:
    _, w = pipe

    async def main() -> None:
        watch, sizer = _watch_on(w)
        quarter = sizer.threshold // 4
        watch.pipe_data_received(1, b"short\n" + b"y" * (quarter - 1))
        watch.pipe_data_received(1, b"y" * quarter)
        watch.pipe_data_received(1, b"y" * quarter)
        watch.pipe_data_received(1, b"y\n" + b"z" * quarter)  # a newline: count anew
        assert not sizer.wide
        for _ in range(3):
            watch.pipe_data_received(1, b"z" * quarter)
        assert sizer.wide  # four quarters of one line, its newline not come yet
        assert _size(w) == WIDE_BYTES

    run(main())


def test_a_transport_without_a_read_size_is_left_as_it_is() -> None:
    class Other:
        """Another event loop's transport: no max_size to set."""

    other = Other()
    _pipes.limit_reads(other)  # type: ignore[arg-type]
    assert not hasattr(other, "max_size")
    _pipes.limit_reads(None)


def test_a_child_that_cannot_start_leaves_no_descriptor_open() -> None:
    async def main() -> None:
        before = set(os.listdir("/proc/self/fd"))
        with pytest.raises(FileNotFoundError):
            await ProcessLauncher().spawn(SpawnSpec(["/nonexistent/peepsy-child"]), _Quiet())
        assert set(os.listdir("/proc/self/fd")) <= before

    run(main())

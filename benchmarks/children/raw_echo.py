"""Raw pipe echo child: bytes in, the same bytes out, no JSON.

    python raw_echo.py            # each chunk echoed as it comes (streaming)
    python raw_echo.py whole      # each newline-ended message echoed once it has all come

Streaming is the ceiling a pipe sets for every lane. ``whole`` is the ceiling for any
request/response protocol, peepsy's among them: a worker cannot answer a message before
it has read all of it, so a large payload crosses the pipe twice in turn rather than
both ways at once.
"""

import os
import sys


def _write_all(data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(1, view) :]


def _stream() -> None:
    # 64 KiB, a default pipe's capacity: a larger buffer is past glibc's mmap threshold,
    # and each read would map, shrink and unmap one (see docs/performance.md).
    while True:
        chunk = os.read(0, 1 << 16)
        if not chunk:
            return
        _write_all(chunk)


def _whole() -> None:
    # One buffer, kept and grown, read into in place: the ceiling must not pay for
    # allocating and joining a message's pieces, which a careful worker could avoid.
    buf = bytearray(1 << 16)
    end = 0
    while True:
        if len(buf) - end < 1 << 16:
            buf.extend(bytes(len(buf)))
        got = os.readv(0, [memoryview(buf)[end : end + (1 << 16)]])
        if not got:
            return
        end += got
        if buf[end - 1] == 0x0A:  # the master sends one message at a time
            _write_all(memoryview(buf)[:end])
            end = 0


def main() -> None:
    if sys.argv[1:] == ["whole"]:
        _whole()
    else:
        _stream()


if __name__ == "__main__":
    main()

"""Raw pipe echo child: bytes in, the same bytes out, no framing and no JSON.

The ceiling a pipe sets for every lane: what ``os.read``/``os.write`` move between two
processes.
"""

import os


def main() -> None:
    # 64 KiB, a default pipe's capacity: a larger buffer is past glibc's mmap threshold,
    # and each read would map, shrink and unmap one (see docs/performance.md).
    while True:
        chunk = os.read(0, 1 << 16)
        if not chunk:
            return
        view = memoryview(chunk)
        while view:
            view = view[os.write(1, view) :]


if __name__ == "__main__":
    main()

"""Raw pipe echo child: bytes in, the same bytes out, no framing and no JSON.

The ceiling a pipe sets for every lane: what ``os.read``/``os.write`` move between two
processes.
"""

import os


def main() -> None:
    while True:
        chunk = os.read(0, 1 << 20)
        if not chunk:
            return
        view = memoryview(chunk)
        while view:
            view = view[os.write(1, view) :]


if __name__ == "__main__":
    main()

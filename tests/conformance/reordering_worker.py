"""A worker that answers out of order: conformance/mutants/mutant.py behind a relay that
holds back each answer to a fuzzed line (an id beginning ``z``) until it has passed on
the next other answer (the sentinel's). RESP-6 allows that order, so ``--fuzz`` must not
fail it. With ``--drop`` the held answers are never written: that worker is broken.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

MUTANT = Path(__file__).resolve().parents[2] / "conformance" / "mutants" / "mutant.py"


def relay_input(source: IO[bytes], inner: IO[bytes]) -> None:
    for line in source:
        inner.write(line)
        inner.flush()
    inner.close()


def held_back(line: bytes) -> bool:
    try:
        message = json.loads(line)
    except ValueError:
        return False
    return (
        isinstance(message, dict)
        and message.get("type") == "RESPONSE"
        and str(message.get("id", "")).startswith("z")
    )


def main() -> int:
    drop = "--drop" in sys.argv[1:]
    inner = subprocess.Popen(
        [sys.executable, str(MUTANT)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert inner.stdin is not None
    assert inner.stdout is not None
    threading.Thread(target=relay_input, args=(sys.stdin.buffer, inner.stdin), daemon=True).start()
    out = sys.stdout.buffer
    held: list[bytes] = []
    for line in inner.stdout:
        if held_back(line):
            held.append(line)
            continue
        out.write(line)
        if b'"RESPONSE"' in line and not drop:
            out.writelines(held)
            held.clear()
        out.flush()
    return inner.wait()


if __name__ == "__main__":
    sys.exit(main())

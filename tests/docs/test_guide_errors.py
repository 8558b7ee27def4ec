"""The guide's sample outputs in "Errors" come from real runs: ``divider.py`` (the guide's
own file) fails in a real child, and what its stderr holds and what the caller prints
are compared with the guide's text blocks. Only what varies from machine to machine is
evened out: the directory, the request id, and the ``^~~`` marks that some Python
versions draw under a failing expression; the guide's ``...`` line stands for the
caller's own frames."""

from __future__ import annotations

import asyncio
import re
import sys
import traceback
from pathlib import Path

import pytest

from peepsy import Master, RemoteError
from tests.docs.test_guide import BLOCKS, FILES

#: Where the guide pretends divider.py lives.
SHOWN_DIR = "/srv/app"
CARETS = re.compile(r"^\s*[\^~]+\s*$")
LIMIT_S = 30.0


def sample(first_line: str) -> list[str]:
    [block] = [b for b in BLOCKS if b.lang == "text" and b.code.startswith(first_line)]
    return block.code.splitlines()


def even_out(text: str, where: Path) -> list[str]:
    text = text.replace(str(where), SHOWN_DIR)
    text = re.sub(r"\(request '[^']*'\)", "(request 'm1')", text)
    return [line.rstrip() for line in text.splitlines() if not CARETS.match(line)]


def matches(shown: list[str], real: list[str]) -> bool:
    """Whether ``real`` is ``shown``, where a ``  ...`` line of ``shown`` stands for any
    number of lines."""
    if not shown:
        return not real
    if shown[0].strip() == "...":
        return any(matches(shown[1:], real[i:]) for i in range(len(real) + 1))
    return bool(real) and shown[0] == real[0] and matches(shown[1:], real[1:])


def test_matches_understands_the_ellipsis() -> None:
    assert matches(["a", "  ...", "z"], ["a", "b", "c", "z"])
    assert matches(["a", "  ...", "z"], ["a", "z"])
    assert not matches(["a", "  ...", "z"], ["a", "b"])
    assert not matches(["a"], ["a", "b"])


async def fail_once(where: Path, *flags: str) -> tuple[RemoteError, list[str]]:
    argv = [sys.executable, str(where / "divider.py"), *flags]
    async with Master() as master:
        await master.spawn_child("w1", argv, stderr="capture", cwd=str(where))
        with pytest.raises(RemoteError) as info:
            await master.request("div", "w1", {"a": 1, "b": 0})
        # The log line is written before the answer, but stderr is another pipe.
        loop = asyncio.get_running_loop()
        end = loop.time() + LIMIT_S / 2
        while not any(line.startswith("ZeroDivisionError") for line in master.get_stderr("w1")):
            assert loop.time() < end, master.get_stderr("w1")
            await asyncio.sleep(0.02)
        return info.value, master.get_stderr("w1")


@pytest.fixture
def divider(tmp_path: Path) -> Path:
    [block] = [b for b in FILES if b.file == "divider.py"]
    (tmp_path / "divider.py").write_text(block.code, encoding="utf-8")
    return tmp_path.resolve()


def test_the_logged_traceback_is_the_guides(divider: Path) -> None:
    error, stderr = asyncio.run(asyncio.wait_for(fail_once(divider), LIMIT_S))
    assert error.__cause__ is None
    real = even_out("\n".join(stderr), divider)
    assert real == sample("handler for 'div'")


def test_the_chained_traceback_is_the_guides(divider: Path) -> None:
    error, _ = asyncio.run(asyncio.wait_for(fail_once(divider, "--stack"), LIMIT_S))
    real = even_out("".join(traceback.format_exception(error)), divider)
    shown = sample("peepsy._errors.RemoteTraceback")
    assert matches(shown, real), "\n".join(real)

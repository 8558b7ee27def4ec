"""The protocol core does no I/O: it imports nothing that could start a process, read a
clock, sleep, open a socket or run an event loop, and loading it loads none of them."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests._paths import ROOT

PACKAGE = ROOT / "peepsy"
CORE_FILES = [
    *sorted((PACKAGE / "protocol").glob("*.py")),
    PACKAGE / "_errors.py",
    PACKAGE / "_protocol_errors.py",
]

# Modules the core may import: exact names, and packages whose submodules are allowed too.
ALLOWED = frozenset(
    {
        "__future__",
        "collections.abc",
        "json",
        "enum",
        "dataclasses",
        "typing",
        "typing_extensions",
        "functools",
        "math",
        "re",
        "types",  # MappingProxyType: a read-only view of a table, no I/O
        "pydantic",
        "pydantic_core",
        "msgspec",  # the hot path's reader (_hot.py); a pure function, no I/O
        "orjson",  # the hot path's writer of plain values (_codec.py); no I/O
        "peepsy._errors",
        "peepsy._protocol_errors",
        "peepsy.protocol",
    }
)
ALLOWED_PACKAGES = frozenset({"pydantic", "pydantic_core", "json", "msgspec", "peepsy.protocol"})

FORBIDDEN = (
    "asyncio",
    "subprocess",
    "threading",
    "socket",
    "select",
    "selectors",
    "signal",
    "os",
    "time",
    "multiprocessing",
    "concurrent",
    "sys",
)

# Builtins that do I/O or load code at run time.
FORBIDDEN_CALLS = frozenset(
    {"open", "print", "input", "__import__", "exec", "eval", "compile", "breakpoint"}
)


def module_of(path: Path) -> str:
    """``peepsy/protocol/_codec.py`` -> ``peepsy.protocol._codec``."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """Every module ``source`` imports, at any depth, relative imports resolved."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if not is_package:
                    base.pop()
                base = base[: len(base) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.append(name)
    return found


def is_allowed(name: str) -> bool:
    if name in ALLOWED:
        return True
    return any(name.startswith(package + ".") for package in ALLOWED_PACKAGES)


def violations(source: str, module: str, *, is_package: bool = False) -> list[str]:
    bad = [name for name in imports(source, module, is_package=is_package) if not is_allowed(name)]
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in FORBIDDEN_CALLS
        ):
            bad.append(f"{node.func.id}()")
    return bad


def test_the_core_files_are_found() -> None:
    names = {path.name for path in CORE_FILES}
    assert {
        "__init__.py",
        "_codec.py",
        "_connection.py",
        "_framing.py",
        "_generated.py",
        "_messages.py",
        "_version.py",
        "_errors.py",
    } <= names


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: p.name)
def test_core_imports_only_allowed_modules(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    module = module_of(path)
    found = imports(source, module, is_package=path.name == "__init__.py")
    assert found, "every core file imports something; an empty list means the scan is broken"
    assert violations(source, module, is_package=path.name == "__init__.py") == []
    for name in found:
        assert name.split(".")[0] not in FORBIDDEN, name


@pytest.mark.parametrize(
    ("source", "bad"),
    [
        ("import asyncio", ["asyncio"]),
        ("import os.path", ["os.path"]),
        ("from time import monotonic", ["time"]),
        ("from concurrent.futures import Future", ["concurrent.futures"]),
        ("import json, subprocess", ["subprocess"]),
        ("def f():\n    import threading\n", ["threading"]),
        ("if True:\n    from socket import socket\n", ["socket"]),
        ("import pydanticx", ["pydanticx"]),
        ("import peepsy.transport", ["peepsy.transport"]),
        ("from peepsy import _actions", ["peepsy"]),
        ("from .. import transport", ["peepsy"]),
        ("from ..transport import Transport", ["peepsy.transport"]),
        ("x = open('f')", ["open()"]),
        ("print('hi')", ["print()"]),
        ("m = __import__('asyncio')", ["__import__()"]),
        ("from . import _codec\nfrom ._codec import parse\nimport json.decoder", []),
        ("from peepsy._errors import Issue\nfrom pydantic_core import core_schema", []),
    ],
)
def test_the_import_check_catches_violations(source: str, bad: list[str]) -> None:
    """The check above cannot pass vacuously."""
    assert violations(source, "peepsy.protocol._codec") == bad


def test_relative_imports_resolve_from_a_package() -> None:
    source = "from . import _codec\nfrom .._errors import Issue\nfrom .x import y"
    found = imports(source, "peepsy.protocol", is_package=True)
    assert found == ["peepsy.protocol", "peepsy._errors", "peepsy.protocol.x"]


# --- what loading the core loads ------------------------------------------------------

RUNTIME_FORBIDDEN = ("asyncio", "subprocess", "multiprocessing", "concurrent.futures", "signal")


def loaded_after(statements: str) -> list[str]:
    """Which RUNTIME_FORBIDDEN modules a fresh interpreter holds after ``statements``."""
    script = (
        "import json, sys\n"
        f"{statements}\n"
        f"print(json.dumps([m for m in {list(RUNTIME_FORBIDDEN)!r} if m in sys.modules]))\n"
    )
    # Keep coverage's subprocess start-up hook out: it is no part of what is measured.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    loaded: list[str] = json.loads(result.stdout)
    return loaded


# Load peepsy.protocol without running peepsy/__init__.py (which pulls in the master and
# the child): an empty parent package that only knows where its files are.
CORE_ONLY = (
    "import types\n"
    "package = types.ModuleType('peepsy')\n"
    f"package.__path__ = [{str(PACKAGE)!r}]\n"
    "sys.modules['peepsy'] = package\n"
    "import peepsy.protocol\n"
    "assert 'peepsy.protocol' in sys.modules and 'peepsy.master' not in sys.modules\n"
)


def test_the_protocol_core_loads_no_io_machinery() -> None:
    assert loaded_after(CORE_ONLY) == []


def test_importing_peepsy_protocol_loads_no_io_machinery() -> None:
    assert loaded_after("import peepsy.protocol") == []


def test_the_runtime_check_would_catch_a_violation() -> None:
    assert "asyncio" in loaded_after(CORE_ONLY + "import asyncio")
    assert "subprocess" in loaded_after(CORE_ONLY + "import subprocess")
    assert "signal" in loaded_after("import signal")

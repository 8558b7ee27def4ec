"""The function worker's references: how a function is named, and found again in a child
(in-process: resolving is plain importing)."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

from peepsy.child import __main__ as child_main
from peepsy.child import _functions
from peepsy.child._functions import SCRIPT_MODULE, function_ref, resolve


def test_a_function_of_an_interactive_session_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    main = types.ModuleType("__main__")  # no __file__: a prompt, a notebook
    exec("def typed_at_the_prompt(x):\n    return x\n", main.__dict__)
    monkeypatch.setitem(sys.modules, "__main__", main)
    with pytest.raises(TypeError, match="interactive session"):
        function_ref(main.typed_at_the_prompt)


def test_a_scripts_function_is_named_by_path_and_imported_without_its_main_block(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    script = tmp_path / "job.py"
    script.write_text(
        "RAN = []\n"
        "def triple(x):\n    return 3 * x + len(RAN)\n"
        "def twice(x):\n    return 2 * x\n"
        "if __name__ == '__main__':\n    RAN.append(1)\n",
        encoding="utf-8",
    )
    main = types.ModuleType("__main__")
    main.__file__ = str(script)
    exec(script.read_text(encoding="utf-8"), main.__dict__)
    monkeypatch.setitem(sys.modules, "__main__", main)
    monkeypatch.delitem(sys.modules, SCRIPT_MODULE, raising=False)
    monkeypatch.setattr(_functions, "_resolved", {})
    monkeypatch.setattr(sys, "path", list(sys.path))
    ref = function_ref(main.triple)
    assert ref == f"{script}:triple"
    assert resolve(ref)(2) == 6  # RAN is empty in the imported copy
    assert sys.modules[SCRIPT_MODULE].__name__ == SCRIPT_MODULE
    # A second function of the same script reuses the module imported for the first.
    loaded = sys.modules[SCRIPT_MODULE]
    assert resolve(f"{script}:twice")(4) == 8
    assert sys.modules[SCRIPT_MODULE] is loaded


def test_the_module_runner_serves_functions_with_no_target(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ran: list[str] = []

    class Fake:
        def run(self) -> None:
            ran.append("run")

    def fake_child() -> Any:
        return Fake()

    monkeypatch.setattr(child_main, "function_child", fake_child)
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert child_main.main(["--functions"]) == 0
    assert ran == ["run"]

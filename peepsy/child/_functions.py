"""A generic worker that runs plain Python functions, named by reference.

It is what :class:`peepsy.sync.Executor` spawns (``python -m peepsy.child
--functions``): no worker script to write. A reference is ``module:qualname``, or
``/path/to/script.py:qualname`` for a function defined in a script run as
``__main__``; the script is then imported under another name, so its ``if __name__ ==
"__main__":`` block does not run again in the child (what ProcessPoolExecutor's
``spawn`` does too). The master is the party that started this process, so importing
what it names is no wider trust than running the command it chose.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from typing import Any, Final

from peepsy.child._child import Child

#: Run one call: ``{"fn": REF, "args": [...], "kwargs": {...}}`` -> the result.
CALL: Final = "peepsy.call"
#: Run a chunk: ``{"fn": REF, "args": [[...], [...]]}`` -> the list of results.
CALL_MANY: Final = "peepsy.call_many"
#: The module name a script's ``__main__`` is imported under in the child.
SCRIPT_MODULE: Final = "__peepsy_main__"

_resolved: dict[str, Callable[..., Any]] = {}


def function_ref(fn: Callable[..., Any]) -> str:
    """The reference a child resolves ``fn`` by; TypeError when a child cannot import
    it (a lambda, a nested function, one defined at an interactive prompt)."""
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not callable(fn) or not isinstance(module, str) or not isinstance(qualname, str):
        raise TypeError(f"{fn!r} is not a function a child can import")
    if "<" in qualname:  # <lambda>, <locals>
        raise TypeError(
            f"{module}.{qualname} cannot be imported by a child: define it at the top "
            "level of a module (as ProcessPoolExecutor requires for pickling)"
        )
    if module == "__main__":
        path = getattr(sys.modules.get("__main__"), "__file__", None)
        if not path:
            raise TypeError(
                f"{qualname} is defined in an interactive session: a child cannot import "
                "it; move it to a module"
            )
        return f"{os.path.abspath(path)}:{qualname}"
    return f"{module}:{qualname}"


def resolve(ref: str) -> Callable[..., Any]:
    """The function ``ref`` names (imported once per child)."""
    fn = _resolved.get(ref)
    if fn is not None:
        return fn
    if not isinstance(ref, str) or ":" not in ref:
        raise ValueError(f"a function reference is MODULE:QUALNAME, not {ref!r}")
    where, _, qualname = ref.rpartition(":")
    if where.endswith(".py"):
        module = sys.modules.get(SCRIPT_MODULE)
        if module is None or getattr(module, "__file__", None) != where:
            spec = importlib.util.spec_from_file_location(SCRIPT_MODULE, where)
            # A path ending in .py always has a spec and a source loader.
            assert spec is not None
            assert spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[SCRIPT_MODULE] = module
            sys.path.insert(0, os.path.dirname(where))
            spec.loader.exec_module(module)
    else:
        module = importlib.import_module(where)
    found: Any = module
    for part in qualname.split("."):
        found = getattr(found, part)
    if not callable(found):
        raise TypeError(f"{ref} is not callable")
    function: Callable[..., Any] = found
    _resolved[ref] = function
    return function


def _call(data: Any) -> Any:
    fn = resolve(data["fn"])
    return fn(*data.get("args", ()), **data.get("kwargs", {}))


def _call_many(data: Any) -> list[Any]:
    fn = resolve(data["fn"])
    return [fn(*args) for args in data["args"]]


def function_child() -> Child:
    """A sequential child serving :data:`CALL` and :data:`CALL_MANY`: one call at a time
    per process, as in a ProcessPoolExecutor's worker. The functions run off the event
    loop, so a long one does not stop the child's heartbeats."""
    child = Child("sequential")
    child.register_handler(CALL, _call)
    child.register_handler(CALL_MANY, _call_many)
    return child


def single_function_child(fn: Callable[..., Any], name: str) -> Child:
    """A child serving one function under the action ``name``: the request data is its
    one argument, its return value the response data."""
    child = Child()
    child.register_handler(name, fn)
    return child

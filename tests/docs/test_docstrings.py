"""Every public callable has a docstring: the API reference (docs/api/) is built from them.

The public API is found, not listed: every module of peepsy whose dotted name has no
``_``-prefixed part (so a new public module such as ``peepsy.sync`` is covered the day it
lands), every name in its ``__all__`` (or, without ``__all__``, every public name it
defines), and for each class defined in peepsy the public methods, properties,
classmethods and staticmethods of the classes of its MRO that peepsy defines.

A class must have its own docstring (one inherited from a base says nothing about the
subclass, and the signature ``@dataclass`` fills in is not one). A method may inherit
its base's: an implementation of ``ChildTransport.kill`` does what the interface says.
Fields of hand-written models and dataclasses are documented by their class; those of
the generated models by the schema's descriptions, each of which the last test requires.
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import peepsy

#: pydantic's own names on every model: documented by pydantic, not by peepsy.
PYDANTIC = {"model_post_init"}


def public_modules() -> list[ModuleType]:
    """peepsy and its public modules, found by walking its public packages (private
    ones, such as peepsy._data, are neither imported nor entered)."""
    found: list[ModuleType] = []

    def walk(package: ModuleType) -> None:
        found.append(package)
        for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            last = info.name.rsplit(".", 1)[-1]
            if last.startswith("_") or last == "conftest":
                continue
            module = importlib.import_module(info.name)
            if info.ispkg:
                walk(module)
            else:
                found.append(module)

    walk(peepsy)
    return found


def public_names(module: ModuleType) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    return [
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == module.__name__
    ]


def ours(obj: object) -> bool:
    return str(getattr(obj, "__module__", "") or "").startswith("peepsy")


def own_doc(cls: type) -> str | None:
    doc = cls.__dict__.get("__doc__")
    if not isinstance(doc, str):
        return None
    if issubclass(cls, enum.Enum) and doc.startswith("An enumeration"):
        return None
    if dataclasses.is_dataclass(cls) and doc.startswith(f"{cls.__name__}("):
        return None  # the signature @dataclass writes in, not a description
    return doc if isinstance(doc, str) and doc.strip() else None


def members(cls: type) -> Iterator[tuple[str, object]]:
    seen: set[str] = set()
    for base in cls.__mro__:
        if not ours(base):
            continue
        for name, value in vars(base).items():
            if name.startswith("_") or name in seen or name in PYDANTIC:
                continue
            seen.add(name)
            if isinstance(value, staticmethod | classmethod):
                yield name, value.__func__
            elif isinstance(value, property) or inspect.isfunction(value):
                yield name, value


def undocumented() -> tuple[list[str], int]:
    missing: list[str] = []
    checked: set[str] = set()
    for module in public_modules():
        if not (module.__doc__ or "").strip():
            missing.append(module.__name__ + " (module)")
        for name in public_names(module):
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)) or not ours(obj):
                continue
            where = f"{obj.__module__}.{obj.__qualname__}"
            if where in checked:
                continue
            checked.add(where)
            if inspect.isfunction(obj):
                if not inspect.getdoc(obj):
                    missing.append(f"{module.__name__}.{name}")
                continue
            if own_doc(obj) is None:
                missing.append(f"{module.__name__}.{name}")
            for member, value in members(obj):
                key = f"{where}.{member}"
                if key in checked:
                    continue
                checked.add(key)
                if enum_member(obj, member):
                    continue
                if not inspect.getdoc(value) and not inherited_doc(obj, member):
                    missing.append(f"{module.__name__}.{name}.{member}")
    return missing, len(checked)


def enum_member(cls: type, name: str) -> bool:
    return issubclass(cls, enum.Enum) and name in cls.__members__


def inherited_doc(cls: type, name: str) -> bool:
    """True when a base (an ABC, a Protocol) documents the method this class implements."""
    for base in cls.__mro__[1:]:
        value = vars(base).get(name)
        if value is None:
            continue
        if isinstance(value, staticmethod | classmethod):
            value = value.__func__
        if inspect.getdoc(value):
            return True
    return False


def test_the_walk_finds_the_public_api() -> None:
    names = {m.__name__ for m in public_modules()}
    assert {"peepsy", "peepsy.protocol", "peepsy.transport", "peepsy.session"} <= names
    assert {"peepsy.child", "peepsy.master", "peepsy.conformance"} <= names
    assert not any(part.startswith("_") for name in names for part in name.split("."))
    _, count = undocumented()
    assert count > 150  # callables and members checked: the walk did not come back empty


def test_every_public_callable_has_a_docstring() -> None:
    missing, _ = undocumented()
    assert missing == [], f"{len(missing)} public callables without a docstring:\n" + "\n".join(
        missing
    )


def test_every_field_of_the_generated_models_is_documented() -> None:
    """The generated models' fields carry the schema's descriptions as attribute
    docstrings (the reference shows them): a schema property without a description
    fails here."""
    generated = Path(peepsy.__file__).parent / "protocol" / "_generated.py"
    tree = ast.parse(generated.read_text(encoding="utf-8"))
    fields = 0
    missing: list[str] = []
    for cls in (node for node in tree.body if isinstance(node, ast.ClassDef)):
        body = cls.body
        for i, node in enumerate(body):
            if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
                continue
            fields += 1
            after = body[i + 1] if i + 1 < len(body) else None
            if not (
                isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
                and after.value.value.strip()
            ):
                missing.append(f"{cls.name}.{node.target.id}")
    assert fields > 40
    assert missing == [], "fields of the generated models without a description"

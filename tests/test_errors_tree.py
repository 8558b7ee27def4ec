"""The exception tree is drawn once, in peepsy._errors' docstring, and copied line for line
into docs/guide.md ("Errors"). Both drawings are held to the classes themselves: every
subclass of PeepsyError that peepsy defines is drawn, under its real parent, with its real
``code``, and nothing else is. Adding an exception without drawing it fails here."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pytest

import peepsy
import peepsy._errors
import peepsy.protocol
from tests._paths import DOCS

GUIDE = DOCS / "guide.md"
#: One drawn line: tree prefix, class name, code, meaning.
LINE = re.compile(
    r"^(?P<prefix>(?:│   |    )*(?:├── |└── )?)(?P<name>\w+)"
    r" +(?P<code>[A-Z][A-Z0-9_]*) +(?P<meaning>\S.*)$"
)


@dataclass(frozen=True)
class Drawn:
    depth: int
    name: str
    code: str
    meaning: str


def docstring_drawing() -> str:
    """The literal block after the ``::`` of peepsy._errors' docstring, dedented."""
    doc = peepsy._errors.__doc__ or ""
    assert "::\n\n" in doc, "peepsy._errors' docstring draws the tree in a '::' block"
    block = doc.split("::\n\n", 1)[1].split("\n\n", 1)[0]
    return textwrap.dedent(block).rstrip("\n")


def guide_drawing() -> str:
    """The ```text block of the guide's "## Errors" section."""
    text = GUIDE.read_text(encoding="utf-8")
    section = text.split("\n## Errors\n", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"^```text\n(.*?)^```$", section, re.DOTALL | re.MULTILINE)
    assert found, 'the "Errors" section of docs/guide.md draws the tree in a ```text block'
    return found[1].rstrip("\n")


def parse(drawing: str) -> list[Drawn]:
    rows = []
    for line in drawing.splitlines():
        match = LINE.match(line)
        assert match, f"not a tree line (prefix, class, CODE, meaning): {line!r}"
        rows.append(
            Drawn(len(match["prefix"]) // 4, match["name"], match["code"], match["meaning"])
        )
    return rows


Error = type[peepsy.PeepsyError]


def render(
    root: Error, drawn: Sequence[Drawn], include: Callable[[type], bool] = lambda c: True
) -> list[str]:
    """The tree of ``root``'s real subclasses, one ``prefix name code`` line each; siblings
    in the order they are drawn (classes not drawn come last, by name)."""
    order = {row.name: i for i, row in enumerate(drawn)}

    def children(cls: Error) -> list[Error]:
        found = [c for c in cls.__subclasses__() if include(c)]
        return sorted(found, key=lambda c: (order.get(c.__name__, len(order)), c.__name__))

    lines = [f"{root.__name__} {root.code}"]

    def walk(cls: Error, indent: str) -> None:
        kids = children(cls)
        for i, kid in enumerate(kids):
            last = i == len(kids) - 1
            branch = "└── " if last else "├── "
            lines.append(f"{indent}{branch}{kid.__name__} {kid.code}")
            walk(kid, indent + ("    " if last else "│   "))

    walk(root, "")
    return lines


def normalized(drawing: str) -> list[str]:
    """Each drawn line as ``prefix name code``, the meaning and the padding dropped."""
    out = []
    for line in drawing.splitlines():
        match = LINE.match(line)
        assert match, f"not a tree line (prefix, class, CODE, meaning): {line!r}"
        out.append(f"{match['prefix']}{match['name']} {match['code']}")
    return out


def ours(cls: type) -> bool:
    """Defined by peepsy (tests define subclasses of their own)."""
    return cls.__module__.split(".")[0] == "peepsy"


def every_error(root: Error = peepsy.PeepsyError) -> list[Error]:
    found: list[Error] = []
    for kid in root.__subclasses__():
        if ours(kid):
            found.append(kid)
            found.extend(every_error(kid))
    return found


# --- the docstring's drawing is the tree --------------------------------------------------


def test_the_docstring_draws_the_real_tree() -> None:
    drawing = docstring_drawing()
    assert normalized(drawing) == render(peepsy.PeepsyError, parse(drawing), include=ours)


def test_every_line_says_what_the_error_means() -> None:
    for row in parse(docstring_drawing()):
        assert len(row.meaning) >= 10, row


def test_every_error_lives_in_peepsy_errors() -> None:
    # Defined in peepsy._errors, or (the protocol's own) in the module it imports them
    # from: either way one import place, and one drawing, for the whole tree.
    assert {cls.__module__ for cls in every_error()} == {
        "peepsy._errors",
        "peepsy._protocol_errors",
    }
    for cls in every_error():
        assert getattr(peepsy._errors, cls.__name__) is cls, cls


def test_every_error_is_public() -> None:
    exported = {
        getattr(module, name) for module in (peepsy, peepsy.protocol) for name in module.__all__
    }
    assert [cls.__name__ for cls in every_error() if cls not in exported] == []


# --- the guide shows the same drawing -----------------------------------------------------


def test_the_guide_shows_the_docstrings_drawing() -> None:
    assert guide_drawing().splitlines() == docstring_drawing().splitlines()


# --- the check cannot pass vacuously ------------------------------------------------------


class Root(peepsy.PeepsyError):
    """Defined here, so ``ours`` leaves it out of peepsy's tree."""

    code = "ROOT"


class Middle(Root):
    code = "MIDDLE"


class Leaf(Middle):
    code = "LEAF"


class Other(Root):
    code = "OTHER"


DRAWN = """\
Root                ROOT     the root
├── Middle          MIDDLE   in between
│   └── Leaf        LEAF     at the bottom
└── Other           OTHER    beside it"""


def test_a_faithful_drawing_passes() -> None:
    assert normalized(DRAWN) == render(Root, parse(DRAWN))


@pytest.mark.parametrize(
    "drawing",
    [
        # Other is not drawn.
        "\n".join(DRAWN.splitlines()[:3]).replace("├── Middle", "└── Middle"),
        # Leaf drawn under Root instead of Middle.
        DRAWN.replace("│   └── Leaf", "├── Leaf    "),
        # Wrong code.
        DRAWN.replace("LEAF ", "LEAVES"),
        # A class that does not exist.
        DRAWN + "\n    └── Ghost       GHOST    not a class",
        # Wrong connector: the last child drawn with ├──.
        DRAWN.replace("└── Other", "├── Other"),
    ],
    ids=["missing", "wrong-parent", "wrong-code", "extra", "connector"],
)
def test_an_unfaithful_drawing_fails(drawing: str) -> None:
    assert normalized(drawing) != render(Root, parse(drawing))


def test_an_undrawn_peepsy_subclass_would_fail() -> None:
    """A new class under PeepsyError that peepsy defines shows up in the rendering."""
    drawing = docstring_drawing()

    class Undrawn(peepsy.PeepsyError):
        code = "PEEPSY_UNDRAWN"

    Undrawn.__module__ = "peepsy._errors"
    try:
        assert normalized(drawing) != render(peepsy.PeepsyError, parse(drawing), include=ours)
    finally:
        Undrawn.__module__ = __name__  # leave no peepsy-looking class behind

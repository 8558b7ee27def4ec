"""A griffe extension for the API reference: Sphinx roles in docstrings read as code.

The docstrings cite names the Sphinx way (``:class:`Master```, ``:meth:`~x.Y.z```),
which a reader of the source and ``help()`` understands; mkdocstrings would print the
role itself. Each becomes a code span of the name (``~`` keeps its last part, as in
Sphinx). A reST literal block's ``::`` becomes ``:`` (or goes, alone on its line): the
indented block after it is a code block in Markdown as it is.
"""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension, Object

ROLE = re.compile(r":(?:class|meth|func|attr|data|exc|mod|obj):`(?P<tilde>~?)(?P<name>[^`]+)`")
LITERAL = re.compile(r"^[ \t]*::[ \t]*\n|(?<=\S)::$", re.MULTILINE)


def plain(text: str) -> str:
    """``text`` with each Sphinx role replaced by a code span of its name, and each
    literal block's ``::`` made Markdown."""

    def span(match: re.Match[str]) -> str:
        name = match["name"]
        return f"`{name.rsplit('.', 1)[-1] if match['tilde'] else name}`"

    text = LITERAL.sub(lambda m: "" if m[0].endswith("\n") else ":", text)
    return ROLE.sub(span, text)


class SphinxRoles(Extension):
    """Rewrites the roles of every docstring griffe loads."""

    def on_instance(self, *, obj: Object, **_: Any) -> None:
        """griffe's hook, once per object loaded."""
        if obj.docstring is not None:
            obj.docstring.value = plain(obj.docstring.value)

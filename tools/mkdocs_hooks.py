"""mkdocs hooks (``hooks:`` in mkdocs.yml): links out of docs/ become repository URLs.

The pages link the repository's files relatively (``../schema/init.json``), which works
where people read them most (GitHub, a checkout, an editor) and which the tests can
check against the tree. The site holds only docs/, so there each such link is rewritten
to the file on GitHub; a link to a file that does not exist is a warning, which
``mkdocs build --strict`` turns into a failure.
"""

from __future__ import annotations

import logging
import posixpath
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REPOSITORY = "https://github.com/peepsy/peepsy-python"
BRANCH = "main"
DOCS_DIR = "docs"

#: A Markdown link whose target climbs out of the page's folder: ``](../x/y.md#anchor)``.
OUTWARD = re.compile(r"\]\((?P<target>(?:\.\./)+[^)\s#]*)(?P<anchor>#[^)\s]*)?\)")

log = logging.getLogger("mkdocs.plugins.peepsy")


def repository_url(page_path: str, target: str) -> str | None:
    """The GitHub URL of ``target`` linked from docs/``page_path``; None when the link
    stays inside docs/ (mkdocs resolves those) or leaves the repository."""
    joined = posixpath.normpath(posixpath.join(DOCS_DIR, posixpath.dirname(page_path), target))
    if joined.startswith("../") or joined == "..":
        return None
    if joined == DOCS_DIR or joined.startswith(DOCS_DIR + "/"):
        return None
    kind = "tree" if (ROOT / joined).is_dir() else "blob"
    return f"{REPOSITORY}/{kind}/{BRANCH}/{joined}"


def rewrite(markdown: str, page_path: str) -> tuple[str, list[str]]:
    """``markdown`` with its outward links made absolute, and the targets not found."""
    missing: list[str] = []

    def replace(match: re.Match[str]) -> str:
        target = match["target"]
        url = repository_url(page_path, target)
        if url is None:
            return match[0]
        if not (ROOT / url.split(f"/{BRANCH}/", 1)[1]).exists():
            missing.append(target)
        return f"]({url}{match['anchor'] or ''})"

    return OUTWARD.sub(replace, markdown), missing


def on_page_markdown(markdown: str, *, page: Any, **_: Any) -> str:
    """mkdocs' hook: rewrite one page before it is rendered."""
    text, missing = rewrite(markdown, page.file.src_uri)
    for target in missing:
        log.warning("%s links %s, which is not in the repository", page.file.src_uri, target)
    return text

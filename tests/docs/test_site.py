"""The docs site builds with ``mkdocs build --strict`` and its API reference is complete.

One build (a few seconds) serves every test here: a broken link, a missing anchor, a
docstring griffe cannot parse or a page left out of the nav fails the build; a public
name that no API page renders fails the last test, which names it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests._paths import ROOT
from tests.docs.test_docstrings import members, ours, public_modules, public_names
from tools.mkdocs_hooks import REPOSITORY, repository_url, rewrite

pytest.importorskip("mkdocs")
pytest.importorskip("mkdocstrings_handlers.python")

ANCHOR = re.compile(r'\bid="(peepsy[\w.]*)"')


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    return out


def test_the_site_builds_strictly(site: Path) -> None:
    assert (site / "index.html").is_file()
    assert (site / "api" / "peepsy" / "index.html").is_file()
    # A link out of docs/ became a repository URL (the site holds docs/ only).
    protocol = (site / "protocol" / "index.html").read_text(encoding="utf-8")
    assert f'href="{REPOSITORY}/blob/main/schema/init.json"' in protocol
    # Sphinx roles in docstrings were turned into code, not printed.
    for page in (site / "api").rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert ":class:" not in html, page
        assert "<p>::</p>" not in html, page


def test_every_public_name_has_an_entry_in_the_api_reference(site: Path) -> None:
    anchors: set[str] = set()
    for page in (site / "api").rglob("*.html"):
        anchors |= set(ANCHOR.findall(page.read_text(encoding="utf-8")))
    modules = public_modules()
    exported: dict[int, set[str]] = {}
    for module in modules:
        for name in public_names(module):
            exported.setdefault(id(getattr(module, name)), set()).add(f"{module.__name__}.{name}")
    missing = sorted(
        path
        for module in modules
        for name in public_names(module)
        if not name.startswith("__")
        for path in [f"{module.__name__}.{name}"]
        if not exported[id(getattr(module, name))] & anchors
    )
    assert missing == [], (
        "not rendered on any page of docs/api/ (give a new module a page with a "
        "`::: module` block, and put it in mkdocs.yml's nav): " + ", ".join(missing)
    )


def test_the_api_reference_shows_the_members_of_each_class(site: Path) -> None:
    anchors: set[str] = set()
    for page in (site / "api").rglob("*.html"):
        anchors |= set(ANCHOR.findall(page.read_text(encoding="utf-8")))
    missing: list[str] = []
    shown = 0
    for module in public_modules():
        for name in public_names(module):
            obj = getattr(module, name)
            path = f"{module.__name__}.{name}"
            if not (isinstance(obj, type) and ours(obj)) or path not in anchors:
                continue
            listed = [f"{path}.{m}" for m, _ in members(obj)]
            missing += [m for m in listed if m not in anchors]
            shown += len(listed)
    assert shown > 100  # the classes were found on the pages, with their members
    assert missing == [], "members the API reference leaves out: " + ", ".join(missing)


@pytest.mark.parametrize(
    ("page", "target", "url"),
    [
        ("protocol.md", "../schema/init.json", f"{REPOSITORY}/blob/main/schema/init.json"),
        ("protocol.md", "../schema", f"{REPOSITORY}/tree/main/schema"),
        ("api/index.md", "../../README.md", f"{REPOSITORY}/blob/main/README.md"),
        ("api/index.md", "../guide.md", None),  # inside docs/: mkdocs resolves it
        ("guide.md", "../../elsewhere.md", None),  # out of the repository: left alone
    ],
)
def test_outward_links_become_repository_urls(page: str, target: str, url: str | None) -> None:
    assert repository_url(page, target) == url


def test_a_link_to_a_missing_file_is_reported() -> None:
    text, missing = rewrite("[a](../schema/nope.json#x) [b](../README.md) [c](guide.md)", "x.md")
    assert missing == ["../schema/nope.json"]
    assert f"[a]({REPOSITORY}/blob/main/schema/nope.json#x)" in text
    assert f"[b]({REPOSITORY}/blob/main/README.md)" in text
    assert "[c](guide.md)" in text


def test_sphinx_roles_read_as_code() -> None:
    from tools.griffe_roles import plain  # griffe comes with mkdocstrings, checked above

    text = ":class:`Master`, :meth:`~peepsy.Master.request` and :func:`peepsy.encode`"
    assert plain(text) == "`Master`, `request` and `peepsy.encode`"
    literal = "Use it::\n\n    run()\n\nOr:\n\n::\n\n    go()\n"
    assert plain(literal) == "Use it:\n\n    run()\n\nOr:\n\n\n    go()\n"

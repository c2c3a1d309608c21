"""Every link in the README and the design notes resolves in a fresh clone.

A relative link must name a file or folder of the repository; an ``#anchor`` (alone or
after a Markdown file) must be a heading of that file, by GitHub's slug rules
(``web.help.slug``: the same ids the box's ``/help`` page gives its headings). Text that
names a file outside the repository (``../shared/...``) is refused even unlinked.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from web.help import anchors, render

REPO = Path(__file__).resolve().parents[2]
DOCS = ["README.md", "docs/architecture.md"]
# [text](target) outside code spans and fenced blocks.
_LINK = re.compile(r"\[[^\]]+\]\(([^)\s]+)\)")
_FENCED = re.compile(r"^\s*```.*?^\s*```", re.S | re.M)
_CODE = re.compile(r"`[^`\n]*`")


def links(markdown: str) -> list[str]:
    text = _CODE.sub("", _FENCED.sub("", markdown))
    return _LINK.findall(text)


@pytest.mark.parametrize("doc", DOCS)
def test_every_link_resolves(doc: str) -> None:
    path = REPO / doc
    text = path.read_text(encoding="utf-8")
    found = links(text)
    assert found or doc != "README.md", "README.md: no links found (is the pattern right?)"
    problems = []
    for target in found:
        if re.match(r"^[a-z]+:", target):
            continue  # another site: not checked offline
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists() or REPO not in (linked, *linked.parents):
            problems.append(f"{target}: no such file in the repository")
            continue
        if anchor and anchor not in anchors(str(render(linked.read_text(encoding="utf-8")))):
            problems.append(f"{target}: no heading with that anchor in {linked.name}")
    assert not problems, f"{doc}:\n" + "\n".join(problems)


@pytest.mark.parametrize("doc", DOCS)
def test_no_doc_points_outside_the_repository(doc: str) -> None:
    assert "../shared/" not in (REPO / doc).read_text(encoding="utf-8")


def test_the_checker_catches_a_bad_anchor_and_a_missing_file() -> None:
    sample = "[a](#nowhere) [b](missing.md) `[c](#in-code)` [d](https://x.example/)"
    assert links(sample) == ["#nowhere", "missing.md", "https://x.example/"]

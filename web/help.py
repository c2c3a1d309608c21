"""``/help``: the README, rendered by the box itself, so help needs no internet.

A tiny renderer for the Markdown README uses (headings, paragraphs, lists, tables, fenced
code, inline code, bold, italics, links), not a general one: every piece of text is
escaped first, and only the tags below are made. Heading ids follow GitHub's slugs, so
``README.md#dial-out`` on GitHub and ``/help#dial-out`` on the box are the same place.
Only ``#anchor`` links become links: a link to a file of the repository or to another
site shows as its text (the box serves neither, and the page must not reach out).

Login required (any role but the wallboard's): the README describes the box's ports and
security model in detail, which an anonymous visitor on the LAN need not read.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from flask import Blueprint, abort, render_template, url_for
from markupsafe import Markup, escape

from web.security import for_agents, for_supervisors

bp = Blueprint("help", __name__)

#: Where the README is: beside the package in a checkout (``make run``, editable
#: installs); in the venv's ``share/keepline`` on an installed box (pyproject data-files).
README_PLACES = (Path(__file__).resolve().parents[1] / "README.md",
                 Path(sys.prefix) / "share" / "keepline" / "README.md")

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_ITEM = re.compile(r"^(\s*)([-*+]|\d+[.)])\s+(.*)$")
_FENCE = re.compile(r"^(\s*)(```|~~~)")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_INLINE = re.compile(
    r"(?P<code>`+)(?P<code_text>.+?)(?P=code)"
    r"|\[(?P<link_text>[^\]]+)\]\((?P<href>[^)\s]+)\)"
    r"|\*\*(?P<bold>.+?)\*\*"
    r"|(?<![\w*])\*(?P<em>[^*\s](?:[^*]*[^*\s])?)\*(?![\w*])")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's Markdown text: lower case, punctuation dropped,
    spaces to hyphens (runs kept), after the inline formatting is taken away."""
    text = _plain(heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _plain(text: str) -> str:
    """A heading's text as GitHub reads it for its slug: code, links and emphasis bare."""
    def bare(m: re.Match[str]) -> str:
        return m.group("code_text") or m.group("link_text") or m.group("bold") \
            or m.group("em") or ""
    return _INLINE.sub(bare, text)


def inline(text: str) -> Markup:
    """One line or paragraph's inline Markdown as safe HTML (everything else escaped)."""
    out: list[str] = []
    last = 0
    for m in _INLINE.finditer(text):
        out.append(escape(text[last:m.start()]))
        last = m.end()
        if m.group("code") is not None:
            out.append(Markup("<code>{}</code>").format(m.group("code_text").strip()))
        elif m.group("href") is not None:
            href = m.group("href")
            label = inline(m.group("link_text"))
            if href.startswith("#"):
                out.append(Markup('<a href="{}">{}</a>').format(href, label))
            else:  # a repository file or another site: its text only
                out.append(label)
        elif m.group("bold") is not None:
            out.append(Markup("<strong>{}</strong>").format(inline(m.group("bold"))))
        else:
            out.append(Markup("<em>{}</em>").format(inline(m.group("em"))))
    out.append(escape(text[last:]))
    return Markup("").join(out)


def _cells(row: str) -> list[str]:
    row = row.strip()
    row = row.removeprefix("|").removesuffix("|")
    # A pipe inside `code` does not split a cell.
    cells, cell, in_code = [], "", False
    for ch in row:
        if ch == "`":
            in_code = not in_code
        if ch == "|" and not in_code:
            cells.append(cell.strip())
            cell = ""
        else:
            cell += ch
    cells.append(cell.strip())
    return cells


def _table(rows: list[str]) -> Markup:
    head, body = _cells(rows[0]), [_cells(r) for r in rows[2:]]
    parts = [Markup("<div class=\"help-table\"><table><thead><tr>")]
    parts += [Markup("<th>{}</th>").format(inline(c)) for c in head]
    parts.append(Markup("</tr></thead><tbody>"))
    for cells in body:
        parts.append(Markup("<tr>"))
        parts += [Markup("<td>{}</td>").format(inline(c)) for c in cells]
        parts.append(Markup("</tr>"))
    parts.append(Markup("</tbody></table></div>"))
    return Markup("").join(parts)


def _is_table_start(lines: list[str], i: int) -> bool:
    return (lines[i].lstrip().startswith("|") and i + 1 < len(lines)
            and bool(_TABLE_RULE.match(lines[i + 1])))


def _blocks(lines: list[str]) -> Iterator[Markup]:
    """Block-level Markdown, line by line; list items hold their indented lines."""
    seen: dict[str, int] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        if fence := _FENCE.match(line):
            indent, marker = len(fence.group(1)), fence.group(2)
            body: list[str] = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(marker):
                body.append(lines[i][indent:] if lines[i][:indent].isspace() else lines[i])
                i += 1
            i += 1
            yield Markup("<pre><code>{}</code></pre>").format("\n".join(body))
            continue
        if heading := _HEADING.match(line):
            level, text = len(heading.group(1)), heading.group(2)
            anchor = slug(text)
            if anchor in seen:  # GitHub numbers repeated headings: x, x-1, x-2
                seen[anchor] += 1
                anchor = f"{anchor}-{seen[anchor]}"
            else:
                seen[anchor] = 0
            yield Markup('<h{0} id="{1}">{2}</h{0}>').format(level, anchor, inline(text))
            i += 1
            continue
        if _is_table_start(lines, i):
            rows = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append(lines[i])
                i += 1
            yield _table(rows)
            continue
        if item := _ITEM.match(line):
            ordered = item.group(2)[0].isdigit()
            tag = "ol" if ordered else "ul"
            items: list[Markup] = []
            while i < len(lines) and (item := _ITEM.match(lines[i])) \
                    and item.group(2)[0].isdigit() == ordered:
                offset = len(item.group(1)) + len(item.group(2)) + 1
                body = [item.group(3)]
                i += 1
                while i < len(lines) and _continues(lines, i):
                    body.append(lines[i][min(offset, _indent(lines[i])):])
                    i += 1
                items.append(_item(body))
                if i + 1 < len(lines) and not lines[i].strip() and _ITEM.match(lines[i + 1]):
                    i += 1  # a blank line between items of one list
            yield Markup("<{0}>{1}</{0}>").format(tag, Markup("").join(
                Markup("<li>{}</li>").format(x) for x in items))
            continue
        para: list[str] = []
        while i < len(lines) and lines[i].strip() and not (
                para and (_HEADING.match(lines[i]) or _FENCE.match(lines[i])
                          or _is_table_start(lines, i) or _ITEM.match(lines[i]))):
            para.append(lines[i].strip())
            i += 1
        yield Markup("<p>{}</p>").format(inline(" ".join(para)))


def _continues(lines: list[str], i: int) -> bool:
    """Line ``i`` belongs to the list item above: indented, or a blank before an indented one."""
    if lines[i].startswith((" ", "\t")):
        return True
    return not lines[i].strip() and i + 1 < len(lines) and lines[i + 1].startswith(" ") \
        and not _ITEM.match(lines[i + 1])


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _item(body: list[str]) -> Markup:
    """A list item: one paragraph as inline text, more blocks (a table, code) as blocks."""
    if all(b.strip() and not b.lstrip().startswith(("|", "```", "~~~")) for b in body):
        return inline(" ".join(b.strip() for b in body))
    return Markup("").join(_blocks(body))


def render(markdown: str) -> Markup:
    """The whole document as HTML."""
    return Markup("\n").join(_blocks(markdown.splitlines()))


def anchors(html: str) -> set[str]:
    """The ids a rendered page has, for the tests and the help links' check."""
    return set(re.findall(r'\bid="([^"]+)"', html))


@lru_cache(maxsize=1)
def _readme() -> tuple[str, Markup]:
    for place in README_PLACES:
        if place.is_file():
            text = place.read_text(encoding="utf-8")
            # Installed, the first place is site-packages/README.md: another package's, if any.
            if text.startswith("# Keepline\n"):
                return str(place), render(text)
    return "", Markup("")


@bp.app_template_global()
def help_link(anchor: str) -> Markup:
    """A "Help" link to a README section on this box (ends a page's "what is this" line)."""
    return Markup('<a class="help-link" href="{}">Help</a>').format(
        url_for("help.page") + "#" + anchor)


@bp.app_template_global()
def help_line(text: str, anchor: str) -> Markup:
    """A settings page's "what is this" line with its Help link, for pages without one."""
    return Markup('<p class="help-line">{} {}</p>').format(text, help_link(anchor))


@bp.get("/help")
@for_agents
@for_supervisors
def page() -> str:
    """The README as this box's help page."""
    place, body = _readme()
    if not place:
        abort(404, description="The help (README.md) is not installed on this box.")
    return render_template("help.html", body=body)

"""The documentation: README.md stays short, and every relative link in it, docs/ and
benchmarks/README.md points at a file, folder or heading that exists. No network, no imports
of tunelab."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
README_MAX_BYTES = 20_000
FAMILIES = ("melody_rnn", "music_transformer", "musenet", "music_vae", "jukebox", "performance_rnn")

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
# [text](target) or ![alt](target), with an optional "title"; text may hold one level of [..].
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s<>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
EXTERNAL = re.compile(r"^(?:https?://|mailto:)", re.IGNORECASE)


def doc_files() -> list[Path]:
    files = [README, REPO / "benchmarks" / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    return [f for f in files if f.is_file()]


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks."""
    lines, fence = [], None
    for line in text.splitlines():
        m = FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)
        elif fence is not None and m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
            fence = None
        elif fence is None:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped except hyphens and spaces
    (GitHub keeps word characters, so underscores stay), spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading counts as its text
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file, with GitHub's -1, -2 ... for repeated headings."""
    seen: dict[str, int] = {}
    out = set()
    for line in prose_lines(path.read_text(encoding="utf-8")):
        m = HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(path: Path) -> list[str]:
    """The link targets outside code, paragraph by paragraph (a link's text may wrap)."""
    targets = []
    for paragraph in "\n".join(prose_lines(path.read_text(encoding="utf-8"))).split("\n\n"):
        targets += LINK.findall(CODE_SPAN.sub("", paragraph))
    return targets


def rel(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def broken_link(source: Path, target: str) -> str | None:
    """Why a relative link is broken, or None when it resolves."""
    file_part, _, anchor = target.partition("#")
    dest = (source.parent / unquote(file_part)).resolve() if file_part else source
    if not dest.exists():
        return f"{rel(dest)} does not exist"
    if anchor:
        if dest.is_dir() or dest.suffix.lower() != ".md":
            return f"an anchor on {dest.name}, which is not a Markdown file"
        if unquote(anchor).lower() not in anchors(dest):
            return f"no heading with the anchor #{anchor} in {rel(dest)}"
    return None


def test_readme_is_short():
    size = README.stat().st_size
    assert size <= README_MAX_BYTES, (
        f"README.md is {size:,} bytes, over {README_MAX_BYTES:,}: move detail into docs/ and link to it")


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(path: Path):
    broken = []
    for target in links(path):
        if EXTERNAL.match(target):
            continue
        why = broken_link(path, target)
        if why:
            broken.append(f"{rel(path)}: ({target}): {why}")
    assert not broken, "broken links:\n" + "\n".join(broken)


@pytest.mark.parametrize("family", FAMILIES)
def test_family_page_exists_and_is_linked_from_readme(family: str):
    page = REPO / "docs" / "families" / f"{family}.md"
    assert page.is_file(), f"docs/families/{family}.md is missing"
    linked = {(README.parent / unquote(t.partition("#")[0])).resolve()
              for t in links(README) if not EXTERNAL.match(t) and not t.startswith("#")}
    assert page.resolve() in linked, f"README.md does not link to docs/families/{family}.md"


def test_slug_follows_github():
    assert slug("Set up (a fresh machine with Python 3.11)") == "set-up-a-fresh-machine-with-python-311"
    assert slug("What `evaluate` measures") == "what-evaluate-measures"
    assert slug("Flat vs hierarchical (the paper's Table 1)") == "flat-vs-hierarchical-the-papers-table-1"
    assert slug("Scale out: sweeps, DVC experiments") == "scale-out-sweeps-dvc-experiments"


def test_checker_catches_broken_links(tmp_path: Path):
    page = tmp_path / "page.md"
    page.write_text("# A title\n\n[ok](#a-title) [bad](#nope) [gone](missing.md) [wrapped\ntext](gone2.md)\n"
                    "```\n[in code](missing2.md)\n```\n`[span\n](missing3.md)`\n", encoding="utf-8")
    found = {t: broken_link(page, t) for t in links(page)}
    assert set(found) == {"#a-title", "#nope", "missing.md", "gone2.md"}
    assert found["#a-title"] is None
    assert found["#nope"] and found["missing.md"]

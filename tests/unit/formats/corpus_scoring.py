"""Corpus access and token-F1 scoring for the text-format parser tests.

Documents are rendered here to plain Markdown-like text (headings, list
markers, pipe rows with each cell's text once, links and images inline), so
the parser tests do not depend on the renderer module. The score follows the
project's definition: markup stripped (links and images reduced to their
labels, HTML comments, table rules and ``# * _ ` | > \\`` removed), lower-cased
``\\w+`` tokens, F1 of the two multisets.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import pytest

from docworker.document import Block, BlockKind, Document
from docworker.formats.base import ParseContext, Parser, Source

CORPUS = Path(
    os.environ.get(
        "DOCWORKER_CORPUS", Path(__file__).resolve().parents[3] / ".." / "shared" / "corpus"
    )
)
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="test corpus not present")

_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_TABLE_RULE = re.compile(r"^[ \t]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$", re.M)
_MARKUP = re.compile(r"[#*_`|>\\]")


def parse(parser: Parser, path: Path, mime: str, ctx: ParseContext | None = None) -> Document:
    return parser.parse(Source(path=path, mime=mime, name=path.name), ctx or ParseContext())


def truth(relative: str) -> str:
    """The ground truth Markdown beside a corpus file."""
    path = CORPUS / relative
    return (path.parent / f"{path.stem}.expected.md").read_text(encoding="utf-8")


def tokens(markdown: str) -> Counter[str]:
    text = _HTML_COMMENT.sub(" ", markdown)
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _MARKUP.sub(" ", _TABLE_RULE.sub(" ", text))
    return Counter(re.findall(r"\w+", text.lower()))


def token_f1(output: str, expected: str) -> float:
    got, want = tokens(output), tokens(expected)
    common = sum((got & want).values())
    if not common:
        return 0.0
    precision, recall = common / sum(got.values()), common / sum(want.values())
    return 2 * precision * recall / (precision + recall)


def _with_links(block: Block) -> str:
    """The block's text with each link written where its label first appears."""
    text, out, pos = block.text, [], 0
    for link in block.links:
        at = text.find(link.text, pos)
        if at >= 0:
            out += [text[pos:at], f"[{link.text}]({link.url})"]
            pos = at + len(link.text)
    return "".join([*out, text[pos:]])


def _table(block: Block) -> str:
    assert block.table is not None
    rows = [["" for _ in range(block.table.n_cols)] for _ in range(block.table.n_rows)]
    for cell in block.table.cells:
        rows[cell.row][cell.col] = cell.text
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def render(doc: Document) -> str:
    """The document as Markdown-like text, enough for scoring."""
    parts: list[str] = []
    numbers: dict[int, int] = {}
    for block in doc.blocks:
        if block.kind != BlockKind.LIST_ITEM:
            numbers = {}
        if block.table is not None:
            parts.append(_table(block))
        elif block.kind == BlockKind.IMAGE:
            parts.append(f"![{block.text}]()")
        elif block.kind == BlockKind.HEADING:
            parts.append("#" * (block.level or 1) + " " + _with_links(block))
        elif block.kind == BlockKind.LIST_ITEM:
            level = block.level or 1
            numbers = {lv: n for lv, n in numbers.items() if lv <= level}
            numbers[level] = numbers.get(level, 0) + 1
            marker = f"{numbers[level]}." if block.ordered else "-"
            parts.append("    " * (level - 1) + f"{marker} {_with_links(block)}")
        else:
            parts.append(_with_links(block))
    return "\n\n".join(parts)


def corpus_f1(parser: Parser, relative: str, mime: str) -> float:
    """Token-F1 of a corpus file's parse against its ground truth."""
    return token_f1(render(parse(parser, CORPUS / relative, mime)), truth(relative))

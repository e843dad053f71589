"""Corpus access and token-F1 for the parser tests, scored as the benchmarks score.

Parsed documents are rendered by the service's own Markdown renderer and scored
by :mod:`bench.scoring` (the project's definition of token-F1), so a parser
test's threshold means the same as the golden tests' and the benchmark's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.scoring import corpus_root, score
from docworker.document import Document
from docworker.formats.base import ParseContext, Parser, Source
from docworker.render.document import render_markdown

CORPUS = corpus_root()
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="test corpus not present")


def parse(parser: Parser, path: Path, mime: str, ctx: ParseContext | None = None) -> Document:
    return parser.parse(Source(path=path, mime=mime, name=path.name), ctx or ParseContext())


def truth(relative: str) -> str:
    """The ground truth Markdown beside a corpus file."""
    path = CORPUS / relative
    return (path.parent / f"{path.stem}.expected.md").read_text(encoding="utf-8")


def render(doc: Document) -> str:
    return render_markdown(doc)


def token_f1(output: str, expected: str) -> float:
    """Token-F1 of Markdown ``output`` against Markdown ``expected``."""
    return score(output, "md", expected, "md")


def corpus_f1(parser: Parser, relative: str, mime: str) -> float:
    """Token-F1 of a corpus file's parse against its ground truth."""
    return token_f1(render(parse(parser, CORPUS / relative, mime)), truth(relative))

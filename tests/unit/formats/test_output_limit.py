"""The limit on what a parse may read (``limits.max_output_chars``, ``limits.max_blocks``):
counted where every parser adds text to its document, so a document that unpacks to far
more text than its size suggests is refused while it is read, in bounded memory."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.large_docx import RUN_TEXT, RUNS, write_docx
from bench.scoring import corpus_root
from docworker.document import BlockKind, DocumentBuilder, Table, TableCell
from docworker.errors import LimitExceeded
from docworker.formats.base import ParseContext, ParseLimits
from docworker.formats.registry import parse_path

CORPUS = corpus_root()
#: One file of each parser (the PDF, Word, spreadsheet, slides, OpenDocument, EPUB, RTF,
#: mail, HTML, Markdown, plain text, CSV, JSON and XML readers).
FILES = [
    "pdf/multi-page-article.pdf",
    "office/word-sample.docx",
    "office/workbook-multi-sheet.xlsx",
    "office/powerpoint-sample.pptx",
    "office/text-document.odt",
    "office/poetry.epub",
    "office/japanese.rtf",
    "office/email-simple.msg",
    "web/wiki-duck.html",
    "web/wiki.md",
    "text/norwich-city.txt",
    "web/comma.csv",
    "web/simple.json",
    "web/jats-article.xml",
]
#: Enough room for a title or a heading, not for any of these documents' text.
SMALL = ParseLimits(max_output_chars=40)


def _limits(**fields: int) -> ParseLimits:
    return ParseLimits(**fields)


def test_the_builder_counts_text_and_table_cells() -> None:
    builder = DocumentBuilder("x", "text/plain", limits=_limits(max_output_chars=30))
    builder.add(BlockKind.PARAGRAPH, "0123456789")
    table = Table(n_rows=1, n_cols=2, cells=[TableCell(row=0, col=i, text="abcde") for i in (0, 1)])
    builder.add(BlockKind.TABLE, table=table)
    assert builder.chars == 20
    builder.add(BlockKind.PARAGRAPH, "0123456789")
    with pytest.raises(LimitExceeded) as refused:
        builder.add(BlockKind.PARAGRAPH, "x")
    assert refused.value.fields == {"limit": "output characters", "value": 31, "maximum": 30}
    assert "limits.max_output_chars" in refused.value.detail
    assert len(builder.document.blocks) == 3


def test_the_builder_counts_blocks() -> None:
    builder = DocumentBuilder("x", "text/plain", limits=_limits(max_blocks=3))
    for _ in range(3):
        builder.add(BlockKind.PAGE_BREAK)
    with pytest.raises(LimitExceeded, match=r"limits\.max_blocks") as refused:
        builder.add(BlockKind.PARAGRAPH, "one more")
    assert refused.value.fields["limit"] == "blocks"


def test_moving_blocks_to_the_front_renumbers_them() -> None:
    builder = DocumentBuilder("x", "text/plain")
    for text in ("body 1", "body 2", "header"):
        builder.add(BlockKind.PARAGRAPH, text)
    builder.move_to_front(2)
    assert [(b.id, b.text) for b in builder.document.blocks] == [
        ("b1", "header"),
        ("b2", "body 1"),
        ("b3", "body 2"),
    ]


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"corpus not found at {CORPUS}")
@pytest.mark.parametrize("relative", FILES)
def test_every_parser_stops_at_the_limit(relative: str) -> None:
    path = CORPUS / relative
    whole = parse_path(path, ParseContext())
    assert whole.metadata.char_count > SMALL.max_output_chars, "pick a file with more text"
    with pytest.raises(LimitExceeded) as refused:
        parse_path(path, ParseContext(limits=SMALL))
    assert refused.value.fields["limit"] == "output characters"


#: Two shapes of a 200 MB body packed in under 1 MB: many paragraphs, or one paragraph
#: of many runs (whose text piles up before the paragraph is whole).
BOMBS = {"paragraphs": (141_000, RUNS), "runs": (1, 1_410_000)}


@pytest.mark.parametrize("shape", BOMBS)
def test_a_word_bomb_is_refused_while_it_is_read(tmp_path: Path, shape: str) -> None:
    """Refused once 2 million characters were read, at once."""
    paragraphs, runs = BOMBS[shape]
    bomb = write_docx(tmp_path / "bomb.docx", paragraphs, runs=runs)
    assert bomb.stat().st_size < 1024 * 1024
    started = time.monotonic()
    with pytest.raises(LimitExceeded) as refused:
        parse_path(bomb, ParseContext(limits=_limits(max_output_chars=2_000_000)))
    assert time.monotonic() - started < 5
    assert refused.value.fields["limit"] == "output characters"
    # Counted a run at a time as the XML is parsed: refused at the run that passes.
    assert refused.value.fields["value"] == 2_000_000 + len(RUN_TEXT)


@pytest.mark.parametrize("shape", BOMBS)
def test_a_word_bomb_parse_holds_little_memory(tmp_path: Path, shape: str) -> None:
    """Measured in a process of its own: its peak resident memory while it refuses the
    bomb above, against the same process that only imported the parsers."""
    paragraphs, runs = BOMBS[shape]
    bomb = write_docx(tmp_path / "bomb.docx", paragraphs, runs=runs)
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from bench.memory import peak_rss_kib\n"
        "from docworker.errors import LimitExceeded\n"
        "from docworker.formats.base import ParseContext, ParseLimits\n"
        "from docworker.formats.registry import parse_path, preload\n"
        "preload()\n"
        "before = peak_rss_kib()\n"
        "limits = ParseLimits(max_output_chars=2_000_000)\n"
        "try:\n"
        "    parse_path(Path(sys.argv[1]), ParseContext(limits=limits))\n"
        "except LimitExceeded:\n"
        "    pass\n"
        "print(json.dumps([before, peak_rss_kib()]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(bomb)], capture_output=True, text=True, check=True
    )
    before, after = json.loads(done.stdout)
    # The body alone is 200 MB unpacked; its tree would be several times that.
    assert (after - before) / 1024 < 64, (before, after)

"""RtfParser on the corpus files and on small documents written here for edge cases."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest
from corpus_scoring import CORPUS, needs_corpus

from docworker.document import Block, BlockKind, Document
from docworker.errors import CorruptDocument, HostileInput, LimitExceeded
from docworker.formats.base import PageSelection, ParseContext, ParseLimits, Source
from docworker.formats.rtf.parser import MAX_DEPTH, RTF_MIME, RtfParser

OFFICE = CORPUS / "office"


def parse(path: Path, ctx: ParseContext | None = None) -> Document:
    return RtfParser().parse(Source(path, RTF_MIME), ctx or ParseContext())


def parse_rtf(tmp_path: Path, source: str | bytes, ctx: ParseContext | None = None) -> Document:
    path = tmp_path / "doc.rtf"
    path.write_bytes(source.encode("ascii") if isinstance(source, str) else source)
    return parse(path, ctx)


def texts(doc: Document) -> list[tuple[BlockKind, str]]:
    return [(b.kind, b.text) for b in doc.blocks]


def of_kind(doc: Document, kind: BlockKind) -> list[Block]:
    return [b for b in doc.blocks if b.kind is kind]


# -- the corpus --------------------------------------------------------------------------


@needs_corpus
def test_word_document_text_and_info() -> None:
    doc = parse(OFFICE / "tika-test.rtf")
    assert texts(doc) == [(BlockKind.PARAGRAPH, "Test d\u2019indexation Word")]
    metadata = doc.metadata
    assert metadata.title == "Test d\u2019indexation Word"
    assert metadata.authors == ["Bibliotheque"]
    assert metadata.created == datetime(2006, 5, 18, 12, 19)
    assert metadata.extra["company"] == "Universite Laval"
    assert metadata.page_count == 1


@needs_corpus
def test_japanese_double_byte_escapes_decode_whole() -> None:
    doc = parse(OFFICE / "japanese.rtf")
    text = "\n".join(b.text for b in doc.blocks)
    # \u escapes (the title) and Shift-JIS \'hh pairs in an \fcharset128 font (the body).
    assert of_kind(doc, BlockKind.PARAGRAPH)[0].text == "ゾルゲと尾崎、淡々と最期"
    assert "古書店で処刑記録見つかる" in text
    assert "ＧＨＱ報告書は９３ページあり翻訳中。" in text
    assert "\ufffd" not in text
    items = of_kind(doc, BlockKind.LIST_ITEM)
    assert [(b.level, b.ordered) for b in items[:4]] == [(1, True)] * 4
    assert items[0].text == "ゾルゲの処刑記録、"
    assert [b.level for b in items[4:]] == [2, 2]
    # The title's \upr group: its Unicode half is read, not its ANSI "?????" half.
    assert doc.metadata.title == "ゾルゲと尾崎、淡々と最期"
    assert of_kind(doc, BlockKind.HEADER)[0].text == "ゾルゲの処刑記録、"
    table = of_kind(doc, BlockKind.TABLE)[0].table
    assert table is not None and table.grid()[0][0] == "今回発見されたのは、"


@needs_corpus
def test_a_page_selection_is_ignored_with_a_warning() -> None:
    doc = parse(OFFICE / "tika-test.rtf", ParseContext(pages=PageSelection.parse("1")))
    assert [w.code for w in doc.warnings] == ["pages-ignored"]


# -- documents written here --------------------------------------------------------------

_HEADER = r"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0\fcharset0 Times;}{\f1\fcharset204 Arial;}}"


def test_code_pages_unicode_escapes_and_their_fallbacks(tmp_path: Path) -> None:
    doc = parse_rtf(
        tmp_path,
        _HEADER + r"caf\'e9 {\f1 \'cf\'f0\'e8\'e2\'e5\'f2} "
        r"\uc2\u8364 xx\uc1 \u-10179\'3f\u-8704\'3f\emdash\~\{x\}\par}",
    )
    assert doc.blocks[0].text == "café Привет €😀\u2014 {x}"


def test_the_document_code_page_applies_to_fonts_without_their_own(tmp_path: Path) -> None:
    doc = parse_rtf(tmp_path, r"{\rtf1\ansi\ansicpg1251 \'c4\'e0\par}")
    assert doc.blocks[0].text == "Да"
    assert doc.metadata.encoding == "cp1251"


def test_headings_from_outline_levels_and_heading_styles(tmp_path: Path) -> None:
    source = (
        _HEADER + r"{\stylesheet{\s0 Normal;}{\s1 heading 1;}{\s2\outlinelevel2 Custom;}"
        r"{\s3 Title;}}\pard\s3 Book\par\pard\s1 One\par\pard\s2 Three\par"
        r"\pard\outlinelevel1 Two\par\pard Body\par}"
    )
    doc = parse_rtf(tmp_path, source)
    assert [(b.kind, b.level, b.text) for b in doc.blocks] == [
        (BlockKind.TITLE, None, "Book"),
        (BlockKind.HEADING, 1, "One"),
        (BlockKind.HEADING, 3, "Three"),
        (BlockKind.HEADING, 2, "Two"),
        (BlockKind.PARAGRAPH, None, "Body"),
    ]


def test_list_items_from_their_list_text(tmp_path: Path) -> None:
    source = (
        _HEADER + r"{\listtext 1.\tab}\pard\ls1\ilvl0 first\par"
        r"{\listtext\f1 \'b7\tab}\pard\ls2\ilvl1 bullet\par"
        r"{\pntext a)\tab}\pard old style\par\pard plain\par}"
    )
    doc = parse_rtf(tmp_path, source)
    assert [(b.kind, b.level, b.ordered, b.text) for b in doc.blocks] == [
        (BlockKind.LIST_ITEM, 1, True, "first"),
        (BlockKind.LIST_ITEM, 2, False, "bullet"),
        (BlockKind.LIST_ITEM, 1, True, "old style"),
        (BlockKind.PARAGRAPH, None, None, "plain"),
    ]


def test_numbered_headings_stay_headings(tmp_path: Path) -> None:
    source = (
        _HEADER + r"{\stylesheet{\s0 Normal;}{\s1\outlinelevel0 heading 1;}}"
        r"\pard\s1\outlinelevel0{\listtext\pard\plain 1.\tab}\ls1 Introduction\par"
        r"\pard\s0{\listtext 1.\tab}\ls2\ilvl0 An item\par}"
    )
    doc = parse_rtf(tmp_path, source)
    assert [(b.kind, b.level, b.text) for b in doc.blocks] == [
        (BlockKind.HEADING, 1, "Introduction"),
        (BlockKind.LIST_ITEM, 1, "An item"),
    ]


def test_hidden_text_and_tracked_deletions_are_not_read(tmp_path: Path) -> None:
    source = (
        _HEADER + r"\pard Keep {\deleted\revauthdel1 removed }{\revised inserted }"
        r"and {\v hidden }{\v0 shown }\v secret\v0  end \v gone\plain  plain\par}"
    )
    [block] = parse_rtf(tmp_path, source).blocks
    assert block.text == "Keep inserted and shown end plain"


def test_tables_with_widened_and_merged_cells(tmp_path: Path) -> None:
    source = (
        _HEADER + r"\trowd\trhdr\cellx1000\cellx2000\cellx3000\intbl A\cell B\cell C\cell\row"
        r"\trowd\cellx2000\clvmgf\cellx3000\intbl wide\cell D\cell\row"
        r"\trowd\clmgf\cellx1000\clmrg\cellx2000\clvmrg\cellx3000\intbl E\cell\cell\cell\row"
        r"\pard after\par}"
    )
    doc = parse_rtf(tmp_path, source)
    assert [b.kind for b in doc.blocks] == [BlockKind.TABLE, BlockKind.PARAGRAPH]
    table = doc.blocks[0].table
    assert table is not None
    assert table.grid() == [["A", "B", "C"], ["wide", "wide", "D"], ["E", "E", "D"]]
    assert table.header_rows() == 1


def test_a_table_at_the_end_of_the_document_is_kept(tmp_path: Path) -> None:
    doc = parse_rtf(tmp_path, _HEADER + r"\trowd\cellx1000\intbl only\cell\row}")
    table = doc.blocks[0].table
    assert table is not None and table.grid() == [["only"]]


def test_table_cells_count_against_the_cell_limit(tmp_path: Path) -> None:
    row = r"\trowd\cellx1000\cellx2000\intbl a\cell b\cell\row"
    ctx = ParseContext(limits=ParseLimits(max_cells=10))
    with pytest.raises(LimitExceeded):
        parse_rtf(tmp_path, _HEADER + row * 6 + "}", ctx)


def test_fields_notes_headers_and_skipped_destinations(tmp_path: Path) -> None:
    source = (
        _HEADER + r"{\header \pard Running head\par}{\footer \pard Foot\par}"
        r"{\*\generator Writer;}{\*\unknown hidden}{\pict\pngblip 89504e470d0a}"
        r"{\object{\*\objdata 0102}{\result Shown result}}\par"
        r'\pard See {\field{\*\fldinst HYPERLINK "https://example.org/" \o "tip"}'
        r"{\fldrslt the site}}.{\super\chftn}{\footnote\pard Note one.\par Line two.}\par"
        r"{\*\bkmkstart b}\bin3 {}x tail\par}"
    )
    doc = parse_rtf(tmp_path, source)
    assert texts(doc) == [
        (BlockKind.HEADER, "Running head"),
        (BlockKind.FOOTER, "Foot"),
        (BlockKind.PARAGRAPH, "Shown result"),
        (BlockKind.PARAGRAPH, "See the site."),
        (BlockKind.FOOTNOTE, "Note one.\nLine two."),
        (BlockKind.PARAGRAPH, "tail"),
    ]
    links = doc.blocks[3].links
    assert [(link.text, link.url) for link in links] == [("the site", "https://example.org/")]


def test_info_times_and_counts(tmp_path: Path) -> None:
    source = (
        r"{\rtf1{\info{\title T}{\subject S}{\keywords a, b}{\operator Op}"
        r"{\creatim\yr2021\mo4\dy5\hr6\min7}{\revtim\yr0}{\nofpages3}{\nofwords12}}x\par}"
    )
    metadata = parse_rtf(tmp_path, source).metadata
    assert (metadata.title, metadata.subject, metadata.keywords) == ("T", "S", ["a", "b"])
    assert metadata.created == datetime(2021, 4, 5, 6, 7)
    assert metadata.modified is None
    assert metadata.page_count == 3
    assert metadata.extra["last_modified_by"] == "Op"


# -- hostile and broken input ------------------------------------------------------------


def test_info_times_past_what_a_date_holds_are_left_out(tmp_path: Path) -> None:
    source = r"{\rtf1{\info{\creatim\yr6\mo2949672962}{\revtim\yr2429496729}}x\par}"
    metadata = parse_rtf(tmp_path, source).metadata
    assert (metadata.created, metadata.modified) == (None, None)


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    source = "{\\rtf1 " + "{" * (MAX_DEPTH + 10) + "x" + "}" * (MAX_DEPTH + 10) + "}"
    with pytest.raises(HostileInput):
        parse_rtf(tmp_path, source)


def test_nesting_up_to_the_limit_reads(tmp_path: Path) -> None:
    depth = MAX_DEPTH - 2
    doc = parse_rtf(tmp_path, "{\\rtf1 " + "{" * depth + "deep" + "}" * depth + "}")
    assert doc.blocks[0].text == "deep"


def test_huge_hex_runs_read_in_linear_time(tmp_path: Path) -> None:
    hexes = b"\\'41" * 1_000_000
    picture = b"{\\pict " + b"0123456789abcdef" * 250_000 + b"}"
    started = time.perf_counter()
    doc = parse_rtf(tmp_path, b"{\\rtf1 " + picture + hexes + b"}")
    assert time.perf_counter() - started < 3
    assert doc.blocks[0].text == "A" * 1_000_000


def test_unbalanced_braces_and_a_truncated_file_still_read(tmp_path: Path) -> None:
    doc = parse_rtf(tmp_path, r"{\rtf1 one\par}} two\par {\b three")
    assert [b.text for b in doc.blocks] == ["one", "two", "three"]


def test_not_rtf_is_corrupt(tmp_path: Path) -> None:
    with pytest.raises(CorruptDocument):
        parse_rtf(tmp_path, "plain text, no rtf header")


def test_an_empty_document_says_so(tmp_path: Path) -> None:
    doc = parse_rtf(tmp_path, r"{\rtf1{\fonttbl{\f0 Times;}}}")
    assert doc.blocks == []
    assert [w.code for w in doc.warnings] == ["empty"]
